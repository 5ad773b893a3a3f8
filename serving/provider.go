package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// engine is the seam between the choice of execution provider, plain Go in
// this file, and the inference engine that opens models: ortEngine
// (ONNX Runtime, cgo) in service, a fake in the tests, so that the order of
// preference, the fallback, require_gpu and the measurement of providers
// auto are tested without ONNX Runtime's CUDA provider or a GPU.
type engine interface {
	// unavailable says why provider cannot be used in this process at
	// all, nil when it can.
	unavailable(provider string) error
	// prepare reads a model's bytes once: its signature, checked. What it
	// returns opens the model on one provider at a time.
	prepare(model []byte, o ModelOptions) (preparedModel, error)
}

// preparedModel is a model read by an engine, ready to be opened.
type preparedModel interface {
	// open creates the model on provider; its error is the engine's
	// reason, to be read after the provider's name.
	open(provider string) (openedModel, error)
}

// openedModel is a Model that Load finishes describing once it has chosen
// it: how long loading took and, with providers auto, how its provider was
// chosen. Load calls setLoad once, before the model is handed out.
type openedModel interface {
	Model
	setLoad(loadTime time.Duration, choice *ProviderChoice)
}

// ProviderChoice is how providers auto chose a model version's provider:
// what the warm-up input took on each provider measured, and why the one
// in effect (Info.Provider) was kept.
type ProviderChoice struct {
	// Warmup is the median of measureRuns warm-up runs (after an untimed
	// one) on each provider that opened the model and ran it.
	Warmup map[string]time.Duration
	// Reason says which provider was kept and why, and why a provider
	// that was not measured was not: "cuda unavailable: <why>; chose cpu".
	Reason string
}

// MarshalJSON writes the choice as {"warmup_seconds": {"cpu": 0.0012,
// ...}, "reason": "..."}: seconds, as the Prometheus gauge has them.
func (c ProviderChoice) MarshalJSON() ([]byte, error) {
	w := make(map[string]float64, len(c.Warmup))
	for p, d := range c.Warmup {
		w[p] = d.Seconds()
	}
	return json.Marshal(struct {
		Warmup map[string]float64 `json:"warmup_seconds"`
		Reason string             `json:"reason"`
	}{w, c.Reason})
}

// measureRuns is how many warm-up runs are timed on each provider, after
// an untimed first one that pays for lazy initialisation (CUDA's kernels
// and allocations above all). Their median shrugs off a run or two slowed
// by whatever else the process is doing, and five runs of one row cost
// little next to creating the session.
const measureRuns = 5

// autoProviders are the providers that providers auto measures.
var autoProviders = []string{ProviderCUDA, ProviderCPU}

// Load creates a Model from a model's bytes: on the first configured
// provider that accepts it, or with providers auto on the one that ran
// its warm-up input faster. It reads the model's signature and checks that
// every input and output is a tensor of a type modelgate serves. It does
// not warm up (Session.WarmUp does), although providers auto has run the
// warm-up input already to measure.
func (rt *Runtime) Load(model []byte, o ModelOptions) (Model, error) {
	start := rt.now()
	pm, err := rt.engine.prepare(model, o)
	if err != nil {
		return nil, err
	}
	if rt.auto() {
		return rt.loadMeasured(pm, o, start)
	}
	return rt.loadInOrder(pm, o, start)
}

// loadInOrder opens pm on the first configured provider that accepts it.
func (rt *Runtime) loadInOrder(pm preparedModel, o ModelOptions, start time.Time) (Model, error) {
	var reasons []string
	var m openedModel
	for _, p := range rt.opts.Providers {
		if err := rt.engine.unavailable(p); err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: unavailable (see the log line \"CUDA execution provider unavailable\")", p))
			continue
		}
		var err error
		if m, err = pm.open(p); err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		break
	}
	if m == nil {
		return nil, fmt.Errorf("%w: no execution provider accepted the model (%s)", ErrInvalidModel, strings.Join(reasons, "; "))
	}
	provider := m.Info().Provider
	if rt.opts.RequireGPU && provider != ProviderCUDA {
		m.Close()
		return nil, fmt.Errorf("%w: %s", ErrGPURequired, strings.Join(reasons, "; "))
	}
	loadTime := rt.now().Sub(start)
	m.setLoad(loadTime, nil)
	attrs := []any{"model", o.Name, "version", o.Version, "provider", provider, "load_time", loadTime}
	if len(reasons) > 0 {
		attrs = append(attrs, "fallback_from", strings.Join(reasons, "; "))
	}
	rt.log.Info("model loaded", attrs...)
	return m, nil
}

// measured is a provider that opened a model and ran its warm-up input.
type measured struct {
	provider string
	model    openedModel
	median   time.Duration
}

// loadMeasured opens pm on every provider of autoProviders that can be
// used, times its warm-up input on each (measure), keeps the faster and
// closes the other. A tie goes to the CPU, which leaves the GPU to models
// that gain from it. With require_gpu the model must open and run on CUDA,
// and stays there whatever the CPU measured: an operator who asked for the
// GPU gets it, and the record says what the CPU would have done.
func (rt *Runtime) loadMeasured(pm preparedModel, o ModelOptions, start time.Time) (Model, error) {
	var (
		got    []measured
		notes  []string // why a provider is out: "cuda unavailable: ..."
		opened bool     // some provider opened the model
	)
	closeAll := func() {
		for _, c := range got {
			c.model.Close()
		}
	}
	for _, p := range autoProviders {
		if err := rt.engine.unavailable(p); err != nil {
			notes = append(notes, fmt.Sprintf("%s unavailable: %v", p, err))
		} else if m, err := pm.open(p); err != nil {
			notes = append(notes, fmt.Sprintf("%s could not open the model: %v", p, err))
		} else if d, err := rt.measure(m); err != nil {
			opened = true
			m.Close()
			notes = append(notes, fmt.Sprintf("%s warm-up failed: %v", p, err))
		} else {
			opened = true
			got = append(got, measured{p, m, d})
			continue
		}
		if p == ProviderCUDA && rt.opts.RequireGPU {
			closeAll()
			return nil, fmt.Errorf("%w: ort.providers is auto with ort.require_gpu, and %s (unset ort.require_gpu to let auto choose the CPU)", ErrGPURequired, notes[len(notes)-1])
		}
	}
	if len(got) == 0 {
		if opened {
			return nil, fmt.Errorf("%w on every provider (%s)", ErrWarmUp, strings.Join(notes, "; "))
		}
		return nil, fmt.Errorf("%w: no execution provider accepted the model (%s)", ErrInvalidModel, strings.Join(notes, "; "))
	}
	keep, reason := rt.choose(got, notes)
	choice := &ProviderChoice{Warmup: make(map[string]time.Duration, len(got)), Reason: reason}
	for _, c := range got {
		choice.Warmup[c.provider] = c.median
		if c.provider != keep.provider {
			c.model.Close()
		}
	}
	loadTime := rt.now().Sub(start)
	keep.model.setLoad(loadTime, choice)
	attrs := []any{"model", o.Name, "version", o.Version, "provider", keep.provider, "load_time", loadTime, "choice", reason}
	for _, p := range slices.Sorted(maps.Keys(choice.Warmup)) {
		attrs = append(attrs, "warmup_"+p, roundDuration(choice.Warmup[p]))
	}
	rt.log.Info("model loaded", attrs...)
	return keep.model, nil
}

// choose picks among the measured providers (in the order of
// autoProviders) and says why; notes are why the others are out.
func (rt *Runtime) choose(got []measured, notes []string) (measured, string) {
	if len(got) == 1 {
		why := "chose " + got[0].provider
		if len(notes) > 0 {
			why = strings.Join(notes, "; ") + "; " + why
		}
		return got[0], why
	}
	cuda, cpu := got[0], got[1]
	why := fmt.Sprintf("median warm-up run %s on cuda, %s on cpu", roundDuration(cuda.median), roundDuration(cpu.median))
	switch {
	case rt.opts.RequireGPU && cuda.median < cpu.median:
		return cuda, why + "; chose cuda"
	case rt.opts.RequireGPU:
		return cuda, why + "; kept cuda as ort.require_gpu asks, though cpu is as fast or faster"
	case cuda.median < cpu.median:
		return cuda, why + "; chose cuda, the faster"
	case cpu.median < cuda.median:
		return cpu, why + "; chose cpu, the faster"
	default:
		return cpu, why + "; chose cpu, as fast, which leaves the GPU to other models"
	}
}

// measure runs m on its warm-up input (zeros, free dimensions as 1: what
// Session.WarmUp runs) once untimed, then measureRuns times on rt's clock,
// and returns the median. One row is what a lone request costs, which is
// where a GPU's fixed cost per run (launches, copies) shows.
func (rt *Runtime) measure(m Model) (time.Duration, error) {
	in, err := zeroInputs(m.Info().Inputs, 1)
	if err != nil {
		return 0, err
	}
	// Load takes no context (the catalog's Loader), and the runs are few.
	ctx := context.Background()
	if _, err := m.Run(ctx, in, nil); err != nil {
		return 0, err
	}
	times := make([]time.Duration, measureRuns)
	for i := range times {
		start := rt.now()
		if _, err := m.Run(ctx, in, nil); err != nil {
			return 0, err
		}
		times[i] = rt.now().Sub(start)
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// roundDuration keeps three or four significant digits of d, for logs and
// reasons that a person reads: 1.234ms, 56.7µs.
func roundDuration(d time.Duration) time.Duration {
	for unit := time.Duration(1); unit < time.Second; unit *= 10 {
		if d < 1000*unit {
			return d.Round(unit)
		}
	}
	return d.Round(time.Millisecond)
}
