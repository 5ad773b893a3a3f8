package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/wire"
)

// fakeClock is the Runtime's clock in the tests of the provider choice:
// time moves only when a fake model runs, by what that run costs.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeEngine opens fakeModels, whose runs cost, on the fake clock, what
// costs says for their provider: run i (0 is the untimed first) costs
// costs[p][i], or the last entry once they run out.
type fakeEngine struct {
	clock   *fakeClock
	costs   map[string][]time.Duration
	unavail map[string]error // providers that cannot be used, and why
	openErr map[string]error // providers that refuse to open the model
	runErr  map[string]error // providers on which every run fails

	mu     sync.Mutex
	opened []*fakeModel
}

func (e *fakeEngine) unavailable(p string) error { return e.unavail[p] }

func (e *fakeEngine) prepare(_ []byte, o ModelOptions) (preparedModel, error) {
	return fakePrepared{e, o}, nil
}

type fakePrepared struct {
	e *fakeEngine
	o ModelOptions
}

func (p fakePrepared) open(provider string) (openedModel, error) {
	if err := p.e.openErr[provider]; err != nil {
		return nil, err
	}
	m := &fakeModel{e: p.e, info: Info{
		Name: p.o.Name, Version: p.o.Version, Provider: provider,
		Inputs:  []wire.TensorSpec{{Name: "x", DType: wire.FP32, Shape: []int64{-1, 4}}},
		Outputs: []wire.TensorSpec{{Name: "y", DType: wire.FP32, Shape: []int64{-1, 4}}},
	}}
	p.e.mu.Lock()
	p.e.opened = append(p.e.opened, m)
	p.e.mu.Unlock()
	return m, nil
}

// open lists the providers of the models opened and not closed.
func (e *fakeEngine) open() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, m := range e.opened {
		if !m.closed {
			out = append(out, m.info.Provider)
		}
	}
	return out
}

// providersOpened lists the providers of every model opened.
func (e *fakeEngine) providersOpened() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, m := range e.opened {
		out = append(out, m.info.Provider)
	}
	return out
}

type fakeModel struct {
	e      *fakeEngine
	info   Info
	runs   int
	closed bool
}

func (m *fakeModel) Info() Info { return m.info }

func (m *fakeModel) Run(_ context.Context, in []wire.Tensor, _ []string) ([]wire.Tensor, error) {
	if m.closed {
		panic("run of a closed model")
	}
	if len(in) != 1 || !reflect.DeepEqual(in[0].Shape, []int64{1, 4}) {
		panic("the measurement did not run the warm-up input")
	}
	costs := m.e.costs[m.info.Provider]
	m.e.clock.advance(costs[min(m.runs, len(costs)-1)])
	m.runs++
	if err := m.e.runErr[m.info.Provider]; err != nil {
		return nil, err
	}
	return []wire.Tensor{{Name: "y", Shape: in[0].Shape, Data: in[0].Data}}, nil
}

func (m *fakeModel) Close() { m.closed = true }

func (m *fakeModel) setLoad(d time.Duration, c *ProviderChoice) {
	m.info.LoadTime, m.info.ProviderChoice = d, c
}

// fakeRuntime is a Runtime over e with opts, and the log it writes. It
// holds no ONNX Runtime environment: never Close it.
func fakeRuntime(t *testing.T, opts Options, e *fakeEngine) (*Runtime, *bytes.Buffer) {
	t.Helper()
	if e.clock == nil {
		e.clock = &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	}
	opts.Now = e.clock.now
	opts, err := opts.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	return &Runtime{opts: opts, log: slog.New(slog.NewTextHandler(&log, nil)), now: opts.Now, engine: e}, &log
}

const ms = time.Millisecond

// costs is a provider's cost per run: first the untimed one, then the
// five timed.
func costs(first time.Duration, timed ...time.Duration) []time.Duration {
	return append([]time.Duration{first}, timed...)
}

var errNoGPU = errors.New("no GPU here")

func TestProvidersAuto(t *testing.T) {
	cases := []struct {
		name       string
		requireGPU bool
		e          *fakeEngine
		want       string // the provider kept
		warmup     map[string]time.Duration
		reason     string // the whole reason
		opened     []string
	}{
		{
			name: "cuda faster",
			e: &fakeEngine{costs: map[string][]time.Duration{
				ProviderCUDA: costs(500*ms, 1*ms),
				ProviderCPU:  costs(3*ms, 3*ms),
			}},
			want:   ProviderCUDA,
			warmup: map[string]time.Duration{ProviderCUDA: 1 * ms, ProviderCPU: 3 * ms},
			reason: "median warm-up run 1ms on cuda, 3ms on cpu; chose cuda, the faster",
			opened: []string{ProviderCUDA, ProviderCPU},
		},
		{
			// A small model: the GPU's launch and copy cost per run is
			// more than the CPU's whole run.
			name: "cuda slower on a small model",
			e: &fakeEngine{costs: map[string][]time.Duration{
				ProviderCUDA: costs(800*ms, 90*time.Microsecond),
				ProviderCPU:  costs(40*time.Microsecond, 12*time.Microsecond),
			}},
			want:   ProviderCPU,
			warmup: map[string]time.Duration{ProviderCUDA: 90 * time.Microsecond, ProviderCPU: 12 * time.Microsecond},
			reason: "median warm-up run 90µs on cuda, 12µs on cpu; chose cpu, the faster",
			opened: []string{ProviderCUDA, ProviderCPU},
		},
		{
			// The untimed first run and two outliers do not decide: the
			// median of the five timed runs does.
			name: "median, not mean",
			e: &fakeEngine{costs: map[string][]time.Duration{
				ProviderCUDA: costs(time.Second, 2*ms, 50*ms, 2*ms, 40*ms, 2*ms),
				ProviderCPU:  costs(3*ms, 3*ms),
			}},
			want:   ProviderCUDA,
			warmup: map[string]time.Duration{ProviderCUDA: 2 * ms, ProviderCPU: 3 * ms},
			reason: "median warm-up run 2ms on cuda, 3ms on cpu; chose cuda, the faster",
			opened: []string{ProviderCUDA, ProviderCPU},
		},
		{
			name: "tie goes to the cpu",
			e: &fakeEngine{costs: map[string][]time.Duration{
				ProviderCUDA: costs(2*ms, 2*ms),
				ProviderCPU:  costs(2*ms, 2*ms),
			}},
			want:   ProviderCPU,
			warmup: map[string]time.Duration{ProviderCUDA: 2 * ms, ProviderCPU: 2 * ms},
			reason: "median warm-up run 2ms on cuda, 2ms on cpu; chose cpu, as fast, which leaves the GPU to other models",
			opened: []string{ProviderCUDA, ProviderCPU},
		},
		{
			name: "cuda unavailable",
			e: &fakeEngine{
				costs:   map[string][]time.Duration{ProviderCPU: costs(3*ms, 3*ms)},
				unavail: map[string]error{ProviderCUDA: errNoGPU},
			},
			want:   ProviderCPU,
			warmup: map[string]time.Duration{ProviderCPU: 3 * ms},
			reason: "cuda unavailable: no GPU here; chose cpu",
			opened: []string{ProviderCPU},
		},
		{
			name: "cuda refuses the model",
			e: &fakeEngine{
				costs:   map[string][]time.Duration{ProviderCPU: costs(3*ms, 3*ms)},
				openErr: map[string]error{ProviderCUDA: errors.New("out of memory")},
			},
			want:   ProviderCPU,
			warmup: map[string]time.Duration{ProviderCPU: 3 * ms},
			reason: "cuda could not open the model: out of memory; chose cpu",
			opened: []string{ProviderCPU},
		},
		{
			name: "cuda cannot run the model",
			e: &fakeEngine{
				costs:  map[string][]time.Duration{ProviderCUDA: costs(ms), ProviderCPU: costs(3*ms, 3*ms)},
				runErr: map[string]error{ProviderCUDA: errors.New("no kernel for op Foo")},
			},
			want:   ProviderCPU,
			warmup: map[string]time.Duration{ProviderCPU: 3 * ms},
			reason: "cuda warm-up failed: no kernel for op Foo; chose cpu",
			opened: []string{ProviderCUDA, ProviderCPU},
		},
		{
			name:       "require_gpu keeps cuda though cpu is faster",
			requireGPU: true,
			e: &fakeEngine{costs: map[string][]time.Duration{
				ProviderCUDA: costs(800*ms, 90*time.Microsecond),
				ProviderCPU:  costs(40*time.Microsecond, 12*time.Microsecond),
			}},
			want:   ProviderCUDA,
			warmup: map[string]time.Duration{ProviderCUDA: 90 * time.Microsecond, ProviderCPU: 12 * time.Microsecond},
			reason: "median warm-up run 90µs on cuda, 12µs on cpu; kept cuda as ort.require_gpu asks, though cpu is as fast or faster",
			opened: []string{ProviderCUDA, ProviderCPU},
		},
		{
			name:       "require_gpu and cuda faster",
			requireGPU: true,
			e: &fakeEngine{costs: map[string][]time.Duration{
				ProviderCUDA: costs(500*ms, 1*ms),
				ProviderCPU:  costs(3*ms, 3*ms),
			}},
			want:   ProviderCUDA,
			warmup: map[string]time.Duration{ProviderCUDA: 1 * ms, ProviderCPU: 3 * ms},
			reason: "median warm-up run 1ms on cuda, 3ms on cpu; chose cuda",
			opened: []string{ProviderCUDA, ProviderCPU},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt, log := fakeRuntime(t, Options{Providers: []string{ProviderAuto}, RequireGPU: c.requireGPU}, c.e)
			m, err := rt.Load(nil, ModelOptions{Name: "m", Version: "1"})
			if err != nil {
				t.Fatal(err)
			}
			info := m.Info()
			if info.Provider != c.want {
				t.Errorf("provider = %q, want %q", info.Provider, c.want)
			}
			if info.ProviderChoice == nil {
				t.Fatal("no provider choice recorded")
			}
			if got := info.ProviderChoice.Warmup; !reflect.DeepEqual(got, c.warmup) {
				t.Errorf("warm-up times = %v, want %v", got, c.warmup)
			}
			if got := info.ProviderChoice.Reason; got != c.reason {
				t.Errorf("reason = %q\n          want %q", got, c.reason)
			}
			if got := c.e.providersOpened(); !reflect.DeepEqual(got, c.opened) {
				t.Errorf("opened on %v, want %v", got, c.opened)
			}
			if got := c.e.open(); !reflect.DeepEqual(got, []string{c.want}) {
				t.Errorf("models left open on %v, want only the one kept, on %s", got, c.want)
			}
			// The load time is on the same clock: every run measured.
			var total time.Duration
			for _, m := range c.e.opened {
				cs := c.e.costs[m.info.Provider]
				for i := range m.runs {
					total += cs[min(i, len(cs)-1)]
				}
			}
			if info.LoadTime != total {
				t.Errorf("load time = %s, want %s (the runs measured)", info.LoadTime, total)
			}
			line := log.String()
			for _, want := range []string{"msg=\"model loaded\"", "provider=" + c.want, "choice=\"" + c.reason + "\""} {
				if !strings.Contains(line, want) {
					t.Errorf("log %q does not say %s", line, want)
				}
			}
			for _, p := range slices.Sorted(maps.Keys(c.warmup)) {
				if want := "warmup_" + p + "=" + c.warmup[p].String(); !strings.Contains(line, want) {
					t.Errorf("log %q does not say %s", line, want)
				}
			}
		})
	}
}

func TestProvidersAutoFailures(t *testing.T) {
	cases := []struct {
		name       string
		requireGPU bool
		e          *fakeEngine
		is         error
		says       []string
		opened     []string
	}{
		{
			name:       "require_gpu and cuda unavailable",
			requireGPU: true,
			e:          &fakeEngine{unavail: map[string]error{ProviderCUDA: errNoGPU}},
			is:         ErrGPURequired,
			says:       []string{"ort.providers is auto with ort.require_gpu, and cuda unavailable: no GPU here", "unset ort.require_gpu"},
		},
		{
			name:       "require_gpu and cuda cannot run the model",
			requireGPU: true,
			e: &fakeEngine{
				costs:  map[string][]time.Duration{ProviderCUDA: costs(ms)},
				runErr: map[string]error{ProviderCUDA: errors.New("no kernel for op Foo")},
			},
			is:     ErrGPURequired,
			says:   []string{"cuda warm-up failed: no kernel for op Foo"},
			opened: []string{ProviderCUDA}, // and the CPU never tried
		},
		{
			name: "no provider opens the model",
			e: &fakeEngine{
				unavail: map[string]error{ProviderCUDA: errNoGPU},
				openErr: map[string]error{ProviderCPU: errors.New("bad graph")},
			},
			is:   ErrInvalidModel,
			says: []string{"no execution provider accepted the model (cuda unavailable: no GPU here; cpu could not open the model: bad graph)"},
		},
		{
			name: "no provider runs the model",
			e: &fakeEngine{
				costs:  map[string][]time.Duration{ProviderCUDA: costs(ms), ProviderCPU: costs(ms)},
				runErr: map[string]error{ProviderCUDA: errors.New("cuda says no"), ProviderCPU: errors.New("cpu says no")},
			},
			is:     ErrWarmUp,
			says:   []string{"warm-up failed on every provider (cuda warm-up failed: cuda says no; cpu warm-up failed: cpu says no)"},
			opened: []string{ProviderCUDA, ProviderCPU},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rt, _ := fakeRuntime(t, Options{Providers: []string{ProviderAuto}, RequireGPU: c.requireGPU}, c.e)
			m, err := rt.Load(nil, ModelOptions{Name: "m", Version: "1"})
			if !errors.Is(err, c.is) {
				t.Fatalf("err = %v (model %v), want %v", err, m, c.is)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %q, want it to say %q", err, s)
				}
			}
			if got := c.e.providersOpened(); !reflect.DeepEqual(got, c.opened) {
				t.Errorf("opened on %v, want %v", got, c.opened)
			}
			if got := c.e.open(); len(got) != 0 {
				t.Errorf("models left open on %v", got)
			}
		})
	}
}

// TestProvidersInOrder: the configured order, over the same engine seam,
// falls back as it did before providers auto, measures nothing and
// records no choice.
func TestProvidersInOrder(t *testing.T) {
	e := &fakeEngine{unavail: map[string]error{ProviderCUDA: errNoGPU}, costs: map[string][]time.Duration{ProviderCPU: costs(ms)}}
	rt, log := fakeRuntime(t, Options{Providers: []string{ProviderCUDA, ProviderCPU}}, e)
	m, err := rt.Load(nil, ModelOptions{Name: "m", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if info := m.Info(); info.Provider != ProviderCPU || info.ProviderChoice != nil {
		t.Errorf("provider %q, choice %+v; want cpu and no choice", info.Provider, info.ProviderChoice)
	}
	if runs := e.opened[0].runs; runs != 0 {
		t.Errorf("the configured order ran the model %d times at load", runs)
	}
	if !strings.Contains(log.String(), "fallback_from=\"cuda: unavailable") {
		t.Errorf("log %q does not say why cuda was passed over", log)
	}

	e = &fakeEngine{unavail: map[string]error{ProviderCUDA: errNoGPU}}
	rt, _ = fakeRuntime(t, Options{Providers: []string{ProviderCUDA, ProviderCPU}, RequireGPU: true}, e)
	if _, err := rt.Load(nil, ModelOptions{Name: "m", Version: "1"}); !errors.Is(err, ErrGPURequired) {
		t.Errorf("require_gpu without cuda: err = %v", err)
	}
	if got := e.open(); len(got) != 0 {
		t.Errorf("models left open on %v", got)
	}
}

func TestProvidersOptions(t *testing.T) {
	cases := []struct {
		name      string
		providers []string
		require   bool
		want      string // "" accepted
	}{
		{"auto", []string{"auto"}, false, ""},
		{"auto with require_gpu", []string{"auto"}, true, ""},
		{"auto mixed", []string{"auto", "cpu"}, false, `"auto" measures "cuda" and "cpu" itself and must be alone, got [auto cpu]`},
		{"auto twice", []string{"auto", "auto"}, false, "must be alone"},
		{"unknown", []string{"tpu"}, false, `unknown execution provider "tpu"`},
		{"require_gpu without cuda", []string{"cpu"}, true, "require_gpu is set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Options{Providers: c.providers, RequireGPU: c.require}.withDefaults()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to say %s", err, c.want)
			}
		})
	}
}

// TestProviderChoiceJSON: the choice reads in seconds, as the gauge.
func TestProviderChoiceJSON(t *testing.T) {
	b, err := json.Marshal(Info{Provider: "cpu", ProviderChoice: &ProviderChoice{
		Warmup: map[string]time.Duration{ProviderCPU: 1200 * time.Microsecond, ProviderCUDA: 3400 * time.Microsecond},
		Reason: "median warm-up run 3.4ms on cuda, 1.2ms on cpu; chose cpu, the faster",
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `"provider_choice":{"warmup_seconds":{"cpu":0.0012,"cuda":0.0034},"reason":"median warm-up run 3.4ms on cuda, 1.2ms on cpu; chose cpu, the faster"}`
	if !strings.Contains(string(b), want) {
		t.Errorf("JSON %s\ndoes not hold %s", b, want)
	}
}

// TestProvidersAutoOnONNXRuntime: on this machine's CPU build of ONNX
// Runtime, with no CUDA plugin to be found, auto loads a real model on the
// CPU, says why, has measured the CPU, and serves what the CPU serves.
func TestProvidersAutoOnONNXRuntime(t *testing.T) {
	var log bytes.Buffer
	rt, err := NewRuntime(Options{
		Providers:      []string{ProviderAuto},
		CUDAPlugin:     "/nonexistent/libonnxruntime_providers_cuda.so",
		IntraOpThreads: 1,
		Logger:         slog.New(slog.NewTextHandler(&log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	model := testmodels.Scaled(3)
	s, err := rt.NewSession(model, SessionOptions{Name: "m", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close(); <-s.Done() }()
	if s.Provider() != ProviderCPU {
		t.Fatalf("provider = %q, want cpu", s.Provider())
	}
	ch := s.Info().ProviderChoice
	if ch == nil {
		t.Fatal("no provider choice recorded")
	}
	if !strings.HasPrefix(ch.Reason, "cuda unavailable: ") || !strings.Contains(ch.Reason, "/nonexistent/libonnxruntime_providers_cuda.so") || !strings.HasSuffix(ch.Reason, "; chose cpu") {
		t.Errorf("reason = %q, want \"cuda unavailable: <the plugin's error>; chose cpu\"", ch.Reason)
	}
	if got := slices.Sorted(maps.Keys(ch.Warmup)); !reflect.DeepEqual(got, []string{ProviderCPU}) || ch.Warmup[ProviderCPU] <= 0 {
		t.Errorf("warm-up times = %v, want a measured cpu alone", ch.Warmup)
	}
	if line := log.String(); !strings.Contains(line, "choice=\"cuda unavailable: ") || !strings.Contains(line, "warmup_cpu=") {
		t.Errorf("the load log does not say why and what was measured: %s", line)
	}
	in := []wire.Tensor{{Name: "features", Shape: []int64{2, 4}, Data: []float32{1, 2, 3, 4, -1, 0.5, 2, 0}}}
	got, err := s.Run(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := newSession(t, model).Run(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("auto's session answers %+v, the cpu session %+v", got, want)
	}

	// require_gpu with auto and no GPU stops the runtime at start-up.
	_, err = NewRuntime(Options{Providers: []string{ProviderAuto}, RequireGPU: true, CUDAPlugin: "/nonexistent/libonnxruntime_providers_cuda.so"})
	if !errors.Is(err, ErrGPURequired) {
		t.Fatalf("auto with require_gpu and no GPU: err = %v, want ErrGPURequired", err)
	}
}
