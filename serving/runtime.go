// Package serving runs ONNX models with ONNX Runtime.
//
// It owns the one ONNX Runtime environment of the process, a Session per
// model version created from the model's bytes, the choice of execution
// provider (in the configured order, CUDA where it can be had, then the
// CPU; or by measurement, provider.go) and the provider actually in effect,
// warm-up, and draining a session before it is destroyed. It does not know
// where model bytes come from: that is the registry's business.
//
// All cgo lives in this package, behind the engine interface (provider.go)
// and the Model it opens. Callers see Tensors of plain Go slices.
package serving

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// Errors returned by this package. Request errors (the caller sent something
// the model cannot take) wrap wire.ErrBadInput; a tensor element type
// modelgate does not serve wraps wire.ErrUnsupportedType.
var (
	// ErrLibraryNotFound: the ONNX Runtime shared library could not be found.
	ErrLibraryNotFound = errors.New("ONNX Runtime library not found")
	// ErrGPURequired: the configuration requires a GPU and none could be used.
	ErrGPURequired = errors.New("GPU required but not available")
	// ErrInvalidModel: ONNX Runtime refused the model bytes.
	ErrInvalidModel = errors.New("invalid model")
	// ErrClosed: the session has been closed.
	ErrClosed = errors.New("session closed")
	// ErrOverloaded: the session's batching queue is full; retry later.
	ErrOverloaded = errors.New("overloaded")
	// ErrWarmUp: the model opened but could not run its warm-up input, on
	// any provider that providers auto measured.
	ErrWarmUp = errors.New("warm-up failed")
)

// LibraryVersion is the ONNX Runtime release the Makefile fetches, and
// DefaultLibraryPath where it puts the shared library, relative to the
// repository root.
const (
	LibraryVersion     = "1.30.0"
	DefaultLibraryPath = ".cache/onnxruntime/" + LibraryVersion + "/libonnxruntime.so.1"
)

// Execution provider names, as configured and as reported. ProviderAuto is
// configured only, and alone: each model is measured on every provider
// that can be used and runs on the faster (provider.go); what is reported
// is the provider chosen.
const (
	ProviderCUDA = "cuda"
	ProviderCPU  = "cpu"
	ProviderAuto = "auto"
)

// Options configure the Runtime. The zero value is usable: the library is
// looked up as ResolveLibrary describes, providers are [cuda, cpu] and the
// intra-op thread count follows the CPU quota of the container.
type Options struct {
	// LibraryPath is the ONNX Runtime shared library; empty: ResolveLibrary.
	LibraryPath string
	// Providers in order of preference: "cuda", "cpu". Empty: [cuda, cpu].
	// ["auto"] instead measures each model on every provider that can be
	// used and keeps the faster (provider.go).
	Providers []string
	// CUDAPlugin is the CUDA execution-provider plugin library
	// (libonnxruntime_providers_cuda.so) for CPU builds of the core; empty:
	// env ONNXRUNTIME_CUDA_PLUGIN, else the legacy in-core CUDA provider.
	CUDAPlugin string
	// CUDADevice is the GPU ordinal.
	CUDADevice int
	// RequireGPU turns a session that cannot use CUDA into an error instead
	// of a fallback to the CPU. With providers auto the CPU is still
	// measured, for the record, but every model runs on CUDA.
	RequireGPU bool
	// IntraOpThreads per session; 0: the container's CPU quota (CPUQuota).
	IntraOpThreads int
	// InterOpThreads per session; 0: 1 (models run sequentially inside).
	InterOpThreads int
	// IntraOpSpin lets idle intra-op threads spin, waiting for the next
	// task. Off (the default), they sleep between runs and leave the cores
	// to the HTTP work around them: on 2 cores, the digits MLP served 40%
	// more requests at c = 32 without spinning, and a compute-bound batched
	// model ran as fast.
	IntraOpSpin bool
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock of load times and of the measurement of providers
	// auto; nil: time.Now. A test that sets it decides which provider
	// measures faster without depending on the machine it runs on.
	Now func() time.Time
}

// Runtime creates sessions on the process's ONNX Runtime environment.
type Runtime struct {
	opts    Options
	log     *slog.Logger
	library string
	now     func() time.Time
	// engine opens models on execution providers: ONNX Runtime's
	// (ortEngine) in service, a fake in the tests of the provider choice.
	engine engine

	cudaOnce sync.Once
	cudaDev  []ort.EpDevice // plugin devices, when the plugin path is used
	cudaErr  error          // why CUDA cannot be used, decided once
}

var env struct {
	sync.Mutex
	library string
	users   int
}

// NewRuntime initialises the process's ONNX Runtime environment (once; every
// Runtime of the process shares it, and must agree on the library) and
// returns a Runtime that creates sessions with opts.
func NewRuntime(opts Options) (*Runtime, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	lib, err := ResolveLibrary(opts.LibraryPath)
	if err != nil {
		return nil, err
	}
	if err := acquireEnv(lib); err != nil {
		return nil, err
	}
	rt := &Runtime{opts: opts, log: log, library: lib, now: opts.Now}
	rt.engine = ortEngine{rt}
	log.Info("ONNX Runtime ready", "library", lib, "version", ort.GetVersion(), "providers", opts.Providers,
		"intra_op_threads", opts.IntraOpThreads, "intra_op_spin", opts.IntraOpSpin, "require_gpu", opts.RequireGPU)
	if opts.RequireGPU {
		if err := rt.cudaAvailable(); err != nil {
			rt.Close()
			return nil, fmt.Errorf("%w: %v", ErrGPURequired, err)
		}
	}
	return rt, nil
}

// withDefaults checks the options and fills in their defaults; it touches
// no ONNX Runtime, so that the tests of the provider choice share it.
func (opts Options) withDefaults() (Options, error) {
	if len(opts.Providers) == 0 {
		opts.Providers = []string{ProviderCUDA, ProviderCPU}
	}
	for _, p := range opts.Providers {
		switch p {
		case ProviderCUDA, ProviderCPU:
		case ProviderAuto:
			if len(opts.Providers) > 1 {
				return opts, fmt.Errorf("execution provider %q measures %q and %q itself and must be alone, got %v: list cuda and cpu in order instead to choose by preference", ProviderAuto, ProviderCUDA, ProviderCPU, opts.Providers)
			}
		default:
			return opts, fmt.Errorf("unknown execution provider %q (want %q or %q in order of preference, or %q alone)", p, ProviderCUDA, ProviderCPU, ProviderAuto)
		}
	}
	if opts.RequireGPU && !contains(opts.Providers, ProviderCUDA) && !contains(opts.Providers, ProviderAuto) {
		return opts, fmt.Errorf("%w: require_gpu is set but %q is not among the providers %v", ErrGPURequired, ProviderCUDA, opts.Providers)
	}
	if opts.CUDAPlugin == "" {
		opts.CUDAPlugin = os.Getenv("ONNXRUNTIME_CUDA_PLUGIN")
	}
	if opts.IntraOpThreads <= 0 {
		opts.IntraOpThreads = CPUQuota()
	}
	if opts.InterOpThreads <= 0 {
		opts.InterOpThreads = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return opts, nil
}

// auto reports whether the provider of each model is chosen by
// measurement (providers auto).
func (rt *Runtime) auto() bool { return rt.opts.Providers[0] == ProviderAuto }

// acquireEnv initialises the environment on first use and counts its users.
func acquireEnv(lib string) error {
	env.Lock()
	defer env.Unlock()
	if env.users == 0 && !ort.IsInitialized() {
		// ONNX Runtime's own log goes to stderr unstructured; every error it
		// reports comes back to us as an error value, so keep it quiet.
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
			return fmt.Errorf("initialising ONNX Runtime from %s: %w", lib, err)
		}
		env.library = lib
	} else if env.library != lib {
		return fmt.Errorf("ONNX Runtime is already initialised from %s in this process; cannot also use %s", env.library, lib)
	}
	env.users++
	return nil
}

// Close releases this Runtime's hold on the environment; the last one
// destroys it. Sessions must be closed first.
func (rt *Runtime) Close() error {
	env.Lock()
	defer env.Unlock()
	if env.users == 0 {
		return nil
	}
	env.users--
	if env.users > 0 {
		return nil
	}
	env.library = ""
	return ort.DestroyEnvironment()
}

// Version is the ONNX Runtime version string of the loaded library.
func (rt *Runtime) Version() string { return ort.GetVersion() }

// Library is the path of the loaded shared library.
func (rt *Runtime) Library() string { return rt.library }

// Options returns the effective options (defaults filled in).
func (rt *Runtime) Options() Options { return rt.opts }

// ResolveLibrary finds the ONNX Runtime shared library: the configured path,
// else env ONNXRUNTIME_LIB, else DefaultLibraryPath under the working
// directory, under the executable's parent folder (bin/..), or under the
// nearest folder above the working directory that holds go.mod.
func ResolveLibrary(configured string) (string, error) {
	if configured != "" {
		return checkLibrary(configured, "ort.library_path")
	}
	if p := os.Getenv("ONNXRUNTIME_LIB"); p != "" {
		return checkLibrary(p, "ONNXRUNTIME_LIB")
	}
	var tried []string
	for _, dir := range libraryDirs() {
		p := filepath.Join(dir, DefaultLibraryPath)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("%w (looked in %s): run `make ort`, or set ONNXRUNTIME_LIB or ort.library_path", ErrLibraryNotFound, strings.Join(tried, ", "))
}

func checkLibrary(p, source string) (string, error) {
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w at %s (from %s): run `make ort`, or point %s at libonnxruntime.so", ErrLibraryNotFound, p, source, source)
	}
	return p, nil
}

func libraryDirs() []string {
	var dirs []string
	if wd, err := os.Getwd(); err == nil {
		dirs = append(dirs, wd)
		for d := wd; ; {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				if d != wd {
					dirs = append(dirs, d)
				}
				break
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(filepath.Dir(exe)))
	}
	return dirs
}

// cudaAvailable decides once whether CUDA can be used, and how: through the
// plugin library when one is configured, else through the core's own
// (legacy) CUDA provider.
func (rt *Runtime) cudaAvailable() error {
	rt.cudaOnce.Do(func() {
		if rt.opts.CUDAPlugin != "" {
			rt.cudaDev, rt.cudaErr = registerCUDAPlugin(rt.opts.CUDAPlugin, rt.opts.CUDADevice)
		} else {
			if err := probeLegacyCUDA(rt.opts.CUDADevice); err != nil {
				rt.cudaErr = fmt.Errorf("no CUDA plugin configured (ort.cuda_plugin, ONNXRUNTIME_CUDA_PLUGIN) and this ONNX Runtime core has no CUDA provider of its own: %w", err)
			}
		}
		if rt.cudaErr != nil {
			rt.log.Info("CUDA execution provider unavailable", "reason", rt.cudaErr)
		}
	})
	return rt.cudaErr
}

// plugin registration is process-wide, like the environment.
var plugin struct {
	sync.Mutex
	path string
}

func registerCUDAPlugin(path string, device int) ([]ort.EpDevice, error) {
	plugin.Lock()
	defer plugin.Unlock()
	if plugin.path == "" {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("CUDA plugin %s: %w", path, err)
		}
		if err := ort.RegisterExecutionProviderLibrary("CUDA", path); err != nil {
			return nil, fmt.Errorf("registering CUDA plugin %s: %w", path, err)
		}
		plugin.path = path
	}
	devices, err := ort.GetEpDevices()
	if err != nil {
		return nil, fmt.Errorf("listing execution-provider devices: %w", err)
	}
	var cuda []ort.EpDevice
	for _, d := range devices {
		if d.EpName() == "CUDAExecutionProvider" {
			cuda = append(cuda, d)
		}
	}
	if len(cuda) == 0 {
		return nil, fmt.Errorf("the CUDA plugin %s found no GPU", path)
	}
	if device < 0 || device >= len(cuda) {
		return nil, fmt.Errorf("CUDA device %d requested but the plugin found %d", device, len(cuda))
	}
	return cuda[device : device+1], nil
}

func probeLegacyCUDA(device int) error {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return err
	}
	defer so.Destroy()
	return appendLegacyCUDA(so, device)
}

func appendLegacyCUDA(so *ort.SessionOptions, device int) error {
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer co.Destroy()
	if err := co.Update(map[string]string{"device_id": fmt.Sprint(device)}); err != nil {
		return err
	}
	return so.AppendExecutionProviderCUDA(co)
}

// sessionOptions builds ONNX Runtime session options for one provider.
func (rt *Runtime) sessionOptions(provider string) (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*ort.SessionOptions, error) {
		so.Destroy()
		return nil, err
	}
	if err := so.SetIntraOpNumThreads(rt.opts.IntraOpThreads); err != nil {
		return fail(err)
	}
	if err := so.SetInterOpNumThreads(rt.opts.InterOpThreads); err != nil {
		return fail(err)
	}
	if !rt.opts.IntraOpSpin {
		if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
			return fail(err)
		}
	}
	if provider == ProviderCUDA {
		if err := rt.cudaAvailable(); err != nil {
			return fail(err)
		}
		if rt.cudaDev != nil {
			err = so.AppendExecutionProviderV2(rt.cudaDev, nil)
		} else {
			err = appendLegacyCUDA(so, rt.opts.CUDADevice)
		}
		if err != nil {
			return fail(err)
		}
	}
	return so, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// numCPU is runtime.NumCPU, a variable for tests.
var numCPU = runtime.NumCPU
