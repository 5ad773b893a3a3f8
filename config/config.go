// Package config loads the gateway's configuration with spf13/viper: a YAML
// file (--config), environment variables MODELGATE_* (a dot in a key
// becomes an underscore: ort.providers is MODELGATE_ORT_PROVIDERS) and
// command-line flags, over the defaults of Default. Unknown keys are
// rejected and every value is validated at load, with messages that say
// which key is wrong and what it accepts.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/registry"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is the gateway's configuration. docs/configuration.md documents
// every key; keep the two in step.
type Config struct {
	// Listen is the HTTP listen address, host:port.
	Listen string `mapstructure:"listen"`
	// Registry is where models live: a directory, a file:// URL, or (with
	// the S3 backend) s3://bucket/prefix.
	Registry string `mapstructure:"registry"`
	// Models narrows the served models; empty serves every model.
	Models []string `mapstructure:"models"`
	// DefaultModel answers /predict without ?model=; empty: the only
	// served model, when there is one.
	DefaultModel string `mapstructure:"default_model"`
	// PollInterval is how often the registry's release state is re-read.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// MaxPinnedVersions caps the non-stable versions loaded for pinned
	// requests (least recently used unloaded first); 0 disables pinning
	// versions that are not loaded.
	MaxPinnedVersions int `mapstructure:"max_pinned_versions"`
	// MaxPinnedBytes caps the summed model size of those versions; 0: no cap.
	MaxPinnedBytes int64 `mapstructure:"max_pinned_bytes"`
	// CacheDir keeps verified copies of downloaded models, by sha256.
	CacheDir string `mapstructure:"cache_dir"`

	// Batching merges concurrent requests into one ONNX Runtime run.
	Batching Batching `mapstructure:"batching"`

	HTTP   HTTP   `mapstructure:"http"`
	GRPC   GRPC   `mapstructure:"grpc"`
	ORT    ORT    `mapstructure:"ort"`
	Log    Log    `mapstructure:"log"`
	Canary Canary `mapstructure:"canary"`
	Drift  Drift  `mapstructure:"drift"`
	// PayloadLogging: config/payloadlog.go.
	PayloadLogging PayloadLogging `mapstructure:"payload_logging"`

	Security Security `mapstructure:"security"`
}

// Canary settings: how this gateway routes and judges canary releases.
// The plan of each release (steps, interval, thresholds) is in the
// registry's release state, set by `promote canary start`.
type Canary struct {
	// Source of the analysis: "in-process" (each replica judges the
	// traffic it served) or "prometheus" (every replica's traffic, summed).
	Source string `mapstructure:"source"`
	// PrometheusURL is the Prometheus HTTP API for source "prometheus".
	PrometheusURL string `mapstructure:"prometheus_url"`
	// PrometheusQueries override the PromQL templates; empty: defaults.
	PrometheusQueries canary.PromQueries `mapstructure:"prometheus_queries"`
	// Tick is the time between analyses; 0: a quarter of the plan's
	// interval, between 100ms and 15s.
	Tick time.Duration `mapstructure:"tick"`
	// ShadowFraction of stable-served requests also run on the candidate
	// in the background and are compared.
	ShadowFraction float64 `mapstructure:"shadow_fraction"`
	// CompareSplit also scores candidate-served requests on stable.
	CompareSplit bool `mapstructure:"compare_split"`
	// ShadowConcurrency caps background comparison runs.
	ShadowConcurrency int `mapstructure:"shadow_concurrency"`
	// KeyField names the request field with the sticky routing key (the
	// X-Modelgate-Key header takes precedence).
	KeyField string `mapstructure:"key_field"`
	// RegressionTolerance: the rtol of a compared output read as a
	// regression when neither version stores its kind (versions pushed
	// before output kinds); stored kinds carry their own tolerances.
	RegressionTolerance float64 `mapstructure:"regression_tolerance"`
}

// Batching settings: dynamic batching merges concurrent requests for a
// model version into one ONNX Runtime run. It applies only to models whose
// every input and output has a free first dimension, and is meant for
// models whose rows are independent of each other (any model served row by
// row). The gateway turns it off, and logs why, for other models.
type Batching struct {
	// MaxBatchSize is the most rows one merged run takes; 0 (or 1): off.
	MaxBatchSize int `mapstructure:"max_batch_size"`
	// MaxQueueDelay is the longest a request waits for others to join.
	MaxQueueDelay time.Duration `mapstructure:"max_queue_delay"`
	// MaxQueue bounds the requests waiting per model version; beyond it
	// requests get 429 with Retry-After.
	MaxQueue int `mapstructure:"max_queue"`
	// Models overrides any of the three for one model.
	Models map[string]BatchingOverride `mapstructure:"models"`
}

// BatchingOverride holds one model's batching settings; a key left out
// keeps the global value.
type BatchingOverride struct {
	MaxBatchSize  *int           `mapstructure:"max_batch_size"`
	MaxQueueDelay *time.Duration `mapstructure:"max_queue_delay"`
	MaxQueue      *int           `mapstructure:"max_queue"`
}

// For is the batching in effect for model: the global settings with the
// model's overrides applied (Models is nil in the result).
func (b Batching) For(model string) Batching {
	eff := Batching{MaxBatchSize: b.MaxBatchSize, MaxQueueDelay: b.MaxQueueDelay, MaxQueue: b.MaxQueue}
	o := b.Models[model]
	if o.MaxBatchSize != nil {
		eff.MaxBatchSize = *o.MaxBatchSize
	}
	if o.MaxQueueDelay != nil {
		eff.MaxQueueDelay = *o.MaxQueueDelay
	}
	if o.MaxQueue != nil {
		eff.MaxQueue = *o.MaxQueue
	}
	return eff
}

// Bounds of the batching settings: beyond them a value is a mistake.
const (
	maxBatchSizeLimit  = 1 << 16
	maxQueueDelayLimit = time.Second
)

// validate checks the batching section; served holds the configured models
// (empty: every model in the registry is served).
func (b Batching) validate(bad func(key, format string, args ...any), served map[string]bool) {
	check := func(prefix string, o BatchingOverride) {
		if v := o.MaxBatchSize; v != nil && (*v < 0 || *v > maxBatchSizeLimit) {
			bad(prefix+"max_batch_size", "must be between 0 (off) and %d, got %d", maxBatchSizeLimit, *v)
		}
		if v := o.MaxQueueDelay; v != nil && (*v < 0 || *v > maxQueueDelayLimit) {
			bad(prefix+"max_queue_delay", "must be between 0s and %s (e.g. 500us or 2ms), got %s", maxQueueDelayLimit, *v)
		}
		if v := o.MaxQueue; v != nil && *v < 1 {
			bad(prefix+"max_queue", "must be at least 1, got %d", *v)
		}
	}
	check("batching.", BatchingOverride{MaxBatchSize: &b.MaxBatchSize, MaxQueueDelay: &b.MaxQueueDelay, MaxQueue: &b.MaxQueue})
	names := make([]string, 0, len(b.Models))
	for name := range b.Models {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := registry.ValidateName(name); err != nil {
			bad("batching.models", "%v", err)
			continue
		}
		if len(served) > 0 && !served[name] {
			bad("batching.models", "%q is not among the served models", name)
		}
		check("batching.models."+name+".", b.Models[name])
	}
}

// HTTP settings.
type HTTP struct {
	MaxBodyBytes      int64         `mapstructure:"max_body_bytes"`
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	// DrainDelay: after SIGTERM, readiness fails at once and requests keep
	// being served this long, so that load balancers stop sending traffic.
	DrainDelay time.Duration `mapstructure:"drain_delay"`
	// ShutdownTimeout bounds the wait for in-flight requests after the
	// listener closes.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
}

// GRPC settings: the gRPC front end (inference.GRPCInferenceService, the
// grpc.health.v1 service and server reflection). It shuts down with HTTP:
// after http.drain_delay it stops gracefully within http.shutdown_timeout.
type GRPC struct {
	// Listen is the gRPC listen address, host:port; empty turns gRPC off.
	Listen string `mapstructure:"listen"`
	// MaxMessageBytes limits a received message; 0: http.max_body_bytes.
	MaxMessageBytes int64 `mapstructure:"max_message_bytes"`
}

// maxGRPCMessage is the largest message limit: protobuf messages are
// smaller than 2 GiB.
const maxGRPCMessage = 1<<31 - 1

// ORT settings: ONNX Runtime and execution providers.
type ORT struct {
	// LibraryPath of libonnxruntime.so; empty: env ONNXRUNTIME_LIB, else
	// the Makefile's cache folder.
	LibraryPath string `mapstructure:"library_path"`
	// Providers in order of preference (cuda, cpu), or [auto]: each model
	// is measured on every provider that can be used and runs on the
	// faster (serving's provider.go).
	Providers []string `mapstructure:"providers"`
	// CUDAPlugin is libonnxruntime_providers_cuda.so for the plugin path;
	// empty: env ONNXRUNTIME_CUDA_PLUGIN, else the core's own CUDA provider.
	CUDAPlugin string `mapstructure:"cuda_plugin"`
	// CUDADevice is the GPU ordinal.
	CUDADevice int `mapstructure:"cuda_device"`
	// RequireGPU makes a missing GPU a startup error instead of a quiet
	// fallback to the CPU. With providers auto it keeps every model on
	// CUDA, whatever the CPU measured.
	RequireGPU bool `mapstructure:"require_gpu"`
	// IntraOpThreads per session; 0: the container's CPU quota.
	IntraOpThreads int `mapstructure:"intra_op_threads"`
	// InterOpThreads per session; 0: 1.
	InterOpThreads int `mapstructure:"inter_op_threads"`
	// IntraOpSpin lets idle intra-op threads spin between tasks; false:
	// they sleep and leave the cores to HTTP.
	IntraOpSpin bool `mapstructure:"intra_op_spin"`
}

// Log settings.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // text or json
}

// Default is the configuration with no file, environment or flags.
func Default() Config {
	return Config{
		Listen:            ":8080",
		Registry:          ".modelgate/registry",
		PollInterval:      5 * time.Second,
		MaxPinnedVersions: 4,
		MaxPinnedBytes:    2 << 30,
		CacheDir:          ".modelgate/cache",
		Batching:          Batching{MaxQueueDelay: 500 * time.Microsecond, MaxQueue: 1024},
		HTTP: HTTP{
			MaxBodyBytes:      64 << 20,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			DrainDelay:        0,
			ShutdownTimeout:   30 * time.Second,
		},
		GRPC: GRPC{Listen: ":8081"},
		ORT:  ORT{Providers: []string{"cuda", "cpu"}},
		Log:  Log{Level: "info", Format: "text"},
		Canary: Canary{
			Source:              "in-process",
			ShadowFraction:      0.1,
			CompareSplit:        true,
			ShadowConcurrency:   2,
			RegressionTolerance: 0.05,
		},
		Drift:          defaultDrift(),
		PayloadLogging: defaultPayloadLogging(),
	}
}

// Flags registers the gateway's command-line flags on fs.
func Flags(fs *pflag.FlagSet) {
	d := Default()
	fs.String("config", "", "YAML configuration file")
	fs.String("listen", d.Listen, "HTTP listen address (env MODELGATE_LISTEN)")
	fs.String("grpc-listen", d.GRPC.Listen, "gRPC listen address; empty turns gRPC off (env MODELGATE_GRPC_LISTEN)")
	fs.String("registry", d.Registry, "model registry: a directory, file:// or s3:// URL (env MODELGATE_REGISTRY)")
	fs.StringSlice("models", nil, "models to serve (default: every model in the registry)")
	fs.String("default-model", "", "model for /predict without ?model=")
	fs.Duration("poll-interval", d.PollInterval, "how often to re-read the registry's release state")
	fs.StringSlice("providers", d.ORT.Providers, "execution providers in order of preference: cuda, cpu; or auto: each model on the one that runs its warm-up faster")
	fs.Bool("require-gpu", false, "fail at startup unless the CUDA provider can be used")
	fs.StringSlice("trusted-keys", nil, "trusted public keys (PEM files or directories): only versions signed by one of them load (env MODELGATE_SECURITY_TRUSTED_KEYS)")
	fs.Bool("require-signature", false, "refuse unsigned versions (default: on when --trusted-keys are given; env MODELGATE_SECURITY_REQUIRE_SIGNATURE)")
	fs.String("log-level", d.Log.Level, "log level: debug, info, warn, error")
	fs.String("log-format", d.Log.Format, "log format: text or json")
}

// flagKeys maps flag names to configuration keys.
var flagKeys = map[string]string{
	"listen":        "listen",
	"grpc-listen":   "grpc.listen",
	"registry":      "registry",
	"models":        "models",
	"default-model": "default_model",
	"poll-interval": "poll_interval",
	"providers":     "ort.providers",
	"require-gpu":   "ort.require_gpu",
	"log-level":     "log.level",
	"log-format":    "log.format",

	"trusted-keys":      "security.trusted_keys",
	"require-signature": "security.require_signature",
}

// Load reads the configuration: defaults, then the file named by --config
// (if any), then MODELGATE_* environment variables, then the flags set on
// the command line, each over the one before.
func Load(fs *pflag.FlagSet) (Config, error) {
	v := viper.New()
	setDefaults(v, Default())
	v.SetEnvPrefix("MODELGATE")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if fs != nil {
		if file, _ := fs.GetString("config"); file != "" {
			v.SetConfigFile(file)
			v.SetConfigType("yaml")
			if err := v.ReadInConfig(); err != nil {
				return Config{}, fmt.Errorf("reading %s: %w", file, err)
			}
		}
		for name, key := range flagKeys {
			if f := fs.Lookup(name); f != nil && f.Changed {
				if err := v.BindPFlag(key, f); err != nil {
					return Config{}, err
				}
			}
		}
	}
	var c Config
	if err := v.UnmarshalExact(&c, decodeHook()); err != nil {
		return Config{}, cleanDecodeError(err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func decodeHook() viper.DecoderConfigOption {
	return viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	))
}

func cleanDecodeError(err error) error {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, "decoding failed due to the following error(s):\n\n", "")
	msg = strings.ReplaceAll(msg, "'' has invalid keys", "unknown keys")
	return errors.New(strings.TrimSpace(msg))
}

// setDefaults registers every key with viper so that environment variables
// and UnmarshalExact know them.
func setDefaults(v *viper.Viper, c Config) {
	m := map[string]any{}
	_ = mapstructure.Decode(c, &m)
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, val := range m {
			key := prefix + k
			if sub, ok := val.(map[string]any); ok {
				walk(key+".", sub)
				continue
			}
			v.SetDefault(key, val)
		}
	}
	walk("", m)
}

// Validate checks every value and reports all problems at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		bad("listen", "%q is not host:port (e.g. \":8080\" or \"127.0.0.1:8080\")", c.Listen)
	}
	if c.Registry == "" {
		bad("registry", "must be set: a directory, file:///path or s3://bucket/prefix")
	} else if u, err := url.Parse(c.Registry); err == nil && u.Scheme != "" && len(u.Scheme) > 1 {
		switch u.Scheme {
		case "file", "s3":
		default:
			bad("registry", "scheme %q is not supported (use a directory, file:// or s3://)", u.Scheme)
		}
	}
	seen := map[string]bool{}
	for _, m := range c.Models {
		if err := registry.ValidateName(m); err != nil {
			bad("models", "%v", err)
		}
		if seen[m] {
			bad("models", "%q is listed twice", m)
		}
		seen[m] = true
	}
	if c.DefaultModel != "" {
		if err := registry.ValidateName(c.DefaultModel); err != nil {
			bad("default_model", "%v", err)
		} else if len(c.Models) > 0 && !seen[c.DefaultModel] {
			bad("default_model", "%q is not among models %v", c.DefaultModel, c.Models)
		}
	}
	if c.PollInterval < 100*time.Millisecond {
		bad("poll_interval", "%s is too short (at least 100ms)", c.PollInterval)
	}
	if c.MaxPinnedBytes < 0 {
		bad("max_pinned_bytes", "must be 0 (no cap) or more, got %d", c.MaxPinnedBytes)
	}
	if c.CacheDir == "" {
		bad("cache_dir", "must be set: a writable directory for verified model downloads")
	}
	if c.MaxPinnedVersions < 0 {
		bad("max_pinned_versions", "must be 0 or more, got %d", c.MaxPinnedVersions)
	}
	h := c.HTTP
	if h.MaxBodyBytes < 1024 {
		bad("http.max_body_bytes", "must be at least 1024, got %d", h.MaxBodyBytes)
	}
	for key, d := range map[string]time.Duration{
		"http.read_header_timeout": h.ReadHeaderTimeout, "http.read_timeout": h.ReadTimeout,
		"http.write_timeout": h.WriteTimeout, "http.idle_timeout": h.IdleTimeout, "http.shutdown_timeout": h.ShutdownTimeout,
	} {
		if d <= 0 {
			bad(key, "must be a positive duration such as 30s, got %s", d)
		}
	}
	if h.DrainDelay < 0 {
		bad("http.drain_delay", "must not be negative, got %s", h.DrainDelay)
	}
	if g := c.GRPC; g.Listen != "" {
		if host, port, err := net.SplitHostPort(g.Listen); err != nil || port == "" {
			bad("grpc.listen", "%q is not host:port (e.g. \":8081\"), or empty to turn gRPC off", g.Listen)
		} else if lhost, lport, err := net.SplitHostPort(c.Listen); err == nil && port == lport && port != "0" && (host == lhost || host == "" || lhost == "") {
			bad("grpc.listen", "%q takes the port of listen %q: give gRPC a port of its own", g.Listen, c.Listen)
		}
	}
	if m := c.GRPC.MaxMessageBytes; m != 0 && (m < 1024 || m > maxGRPCMessage) {
		bad("grpc.max_message_bytes", "must be 0 (http.max_body_bytes) or between 1024 and %d, got %d", maxGRPCMessage, m)
	}
	if len(c.ORT.Providers) == 0 {
		bad("ort.providers", "must list at least one of cuda, cpu (or be [auto])")
	}
	pseen := map[string]bool{}
	for _, p := range c.ORT.Providers {
		switch p {
		case "cuda", "cpu", "auto":
		default:
			bad("ort.providers", "unknown provider %q (want cuda or cpu, or auto alone)", p)
		}
		if pseen[p] && p != "auto" {
			bad("ort.providers", "%q is listed twice", p)
		}
		pseen[p] = true
	}
	if pseen["auto"] && len(c.ORT.Providers) > 1 {
		bad("ort.providers", "auto measures cuda and cpu itself and must be alone, got %v: use [auto], or list cuda and cpu in order of preference", c.ORT.Providers)
	}
	// With auto, require_gpu keeps every model on CUDA (and a missing GPU
	// stops the gateway at start-up, as with cuda listed).
	if c.ORT.RequireGPU && !pseen["cuda"] && !pseen["auto"] {
		bad("ort.require_gpu", "is true but ort.providers %v does not include cuda", c.ORT.Providers)
	}
	if c.ORT.CUDADevice < 0 {
		bad("ort.cuda_device", "must be 0 or more, got %d", c.ORT.CUDADevice)
	}
	if c.ORT.IntraOpThreads < 0 || c.ORT.InterOpThreads < 0 {
		bad("ort.intra_op_threads", "thread counts must be 0 (automatic) or more")
	}
	c.Batching.validate(bad, seen)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	c.Drift.validate(bad)
	c.PayloadLogging.validate(bad, seen)
	c.Security.validate(bad)
	cn := c.Canary
	switch cn.Source {
	case "in-process":
	case "prometheus":
		if u, err := url.Parse(cn.PrometheusURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("canary.prometheus_url", "source prometheus needs the Prometheus URL, e.g. http://prometheus:9090, got %q", cn.PrometheusURL)
		}
	default:
		bad("canary.source", "%q is not one of in-process, prometheus", cn.Source)
	}
	if _, err := canary.NewPrometheus("http://localhost", cn.PrometheusQueries); err != nil {
		bad("canary.prometheus_queries", "%v", err)
	}
	if cn.Tick < 0 {
		bad("canary.tick", "must be 0 (automatic) or positive, got %s", cn.Tick)
	}
	if cn.ShadowFraction < 0 || cn.ShadowFraction > 1 {
		bad("canary.shadow_fraction", "must be a fraction in [0, 1], got %g", cn.ShadowFraction)
	}
	if cn.ShadowConcurrency < 1 {
		bad("canary.shadow_concurrency", "must be at least 1, got %d", cn.ShadowConcurrency)
	}
	if cn.RegressionTolerance <= 0 {
		bad("canary.regression_tolerance", "must be positive, got %g", cn.RegressionTolerance)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	return errors.Join(errs...)
}
