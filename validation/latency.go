package validation

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/modelgate/modelgate/internal/report"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// Bounds of a latency measurement.
const (
	// latencyWarmUp is the number of untimed runs of each model before a
	// measurement (fewer for a slow model: see measure).
	latencyWarmUp = 10
	// latencyTimeCap stops a measurement early, once latencyMinRuns runs
	// are done, so that a slow model keeps the gate short.
	latencyTimeCap = 2 * time.Second
	latencyMinRuns = 20
)

// latencyGate measures p50 and p99 latencies of the candidate (and the
// baseline, interleaved run by run) at batch 1 and at o.LargeBatch, on the
// sessions' execution provider, and holds the candidate to the budget and
// the ratio. The error is only for a cancelled context.
//
// The ratio check decides on the p50 ratio and reports the p99 ratio
// beside it. The p99 of short runs cannot be compared reliably on a machine
// that does anything else: the scheduler preempting the process for a few
// milliseconds hits whichever model happens to be running, on either side.
// With two CPU-bound processes beside the tests, models of equal cost
// showed p99 ratios of 40x, and a model 38x slower in the median showed a
// p99 ratio of 1.4x because noise had inflated the baseline's p99; the
// medians told the truth both times. A p99 ratio over the limit with the
// p50 within it is noted in the message.
func latencyGate(ctx context.Context, o Options, cand, base *serving.Session) (GateResult, error) {
	g := GateResult{Name: GateLatency, Metrics: map[string]float64{}}
	var problems, notes []string
	thresholds := map[string]string{}
	sizes := []int{1}
	switch {
	case o.LargeBatch <= 1:
	case !freeBatch(cand.Inputs()):
		notes = append(notes, fmt.Sprintf("no batch of %d measured: the model's batch size is fixed", o.LargeBatch))
	default:
		sizes = append(sizes, o.LargeBatch)
	}
	for _, size := range sizes {
		key := func(what string) string { return fmt.Sprintf("batch%d_%s", size, what) }
		in, err := dummyInputs(cand.Inputs(), int64(size))
		if err != nil {
			problems = append(problems, err.Error())
			break
		}
		var baseIn []wire.Tensor
		if base != nil && (size == 1 || freeBatch(base.Inputs())) {
			if baseIn, err = dummyInputs(base.Inputs(), int64(size)); err != nil {
				return g, fmt.Errorf("%w: dummy input for the baseline: %v", ErrBaseline, err)
			}
		}
		t, err := measure(ctx, o.LatencyRuns, cand, in, base, baseIn)
		if err != nil {
			if ctx.Err() != nil {
				return g, ctx.Err()
			}
			problems = append(problems, fmt.Sprintf("batch %d: %v", size, err))
			break
		}
		cp50, cp99 := percentile(t.cand, 0.50), percentile(t.cand, 0.99)
		g.Metrics[key("p50_ms")], g.Metrics[key("p99_ms")] = millis(cp50), millis(cp99)
		g.Metrics[key("runs")] = float64(len(t.cand))
		if size == 1 && o.LatencyBudget > 0 {
			thresholds[key("p99_ms")] = "<= " + report.FormatLimit(millis(o.LatencyBudget))
			if cp99 > o.LatencyBudget {
				problems = append(problems, fmt.Sprintf("p99 at batch 1 is %v, over the budget of %v", roundDuration(cp99), o.LatencyBudget))
			}
		}
		if len(t.base) == 0 {
			continue
		}
		if g.Baseline == nil {
			g.Baseline = map[string]float64{}
		}
		bp50, bp99 := percentile(t.base, 0.50), percentile(t.base, 0.99)
		g.Baseline[key("p50_ms")], g.Baseline[key("p99_ms")] = millis(bp50), millis(bp99)
		g.Baseline[key("runs")] = float64(len(t.base))
		if bp50 <= 0 || bp99 <= 0 {
			continue
		}
		r99, r50 := float64(cp99)/float64(bp99), float64(cp50)/float64(bp50)
		g.Metrics[key("p99_ratio")], g.Metrics[key("p50_ratio")] = r99, r50
		if o.MaxLatencyRatio <= 0 {
			continue
		}
		thresholds[key("p50_ratio")] = "<= " + report.FormatLimit(o.MaxLatencyRatio)
		switch {
		case r50 > o.MaxLatencyRatio:
			problems = append(problems, fmt.Sprintf("p50 at batch %d is %sx the baseline's (%v vs %v; p99 %sx: %v vs %v), more than the allowed %sx",
				size, report.FormatValue(r50), roundDuration(cp50), roundDuration(bp50), report.FormatValue(r99), roundDuration(cp99), roundDuration(bp99), report.FormatLimit(o.MaxLatencyRatio)))
		case r99 > o.MaxLatencyRatio:
			notes = append(notes, fmt.Sprintf("p99 at batch %d is %sx the baseline's but the p50 only %sx: taken for noise on the machine, not a slower model", size, report.FormatValue(r99), report.FormatValue(r50)))
		}
	}
	switch {
	case len(thresholds) > 0:
		g.Thresholds = thresholds
	case len(problems) > 0:
	case o.MaxLatencyRatio > 0 && base == nil:
		notes = append(notes, "no latency budget, and no baseline to hold the ratio to: measured only")
	default:
		notes = append(notes, "no latency budget or ratio set: measured only")
	}
	g.Passed = len(problems) == 0
	g.Message = strings.Join(append(problems, notes...), "; ")
	return g, nil
}

// timings are the run times of a measurement; base is nil without a
// baseline.
type timings struct {
	cand, base []time.Duration
}

// measure warms both models up, then times up to runs runs of each,
// interleaved (A B, B A, A B, …) so that noise on the machine hits both
// alike and neither always runs right after the other. A slow model cuts
// both short: the warm-up after a quarter of latencyTimeCap once two runs
// are done, the timed runs after latencyTimeCap once latencyMinRuns are.
func measure(ctx context.Context, runs int, cand *serving.Session, in []wire.Tensor, base *serving.Session, baseIn []wire.Tensor) (timings, error) {
	var t timings
	withBase := base != nil && baseIn != nil
	// Collect garbage now rather than in the middle of the timed runs.
	runtime.GC()
	warm := time.Now()
	for i := range latencyWarmUp {
		if i >= 2 && time.Since(warm) > latencyTimeCap/4 {
			break
		}
		if _, err := cand.Run(ctx, in, nil); err != nil {
			return t, err
		}
		if withBase {
			if _, err := base.Run(ctx, baseIn, nil); err != nil {
				return t, fmt.Errorf("baseline: %w", err)
			}
		}
	}
	t.cand = make([]time.Duration, 0, runs)
	if withBase {
		t.base = make([]time.Duration, 0, runs)
	}
	timeA := func() error {
		start := time.Now()
		_, err := cand.Run(ctx, in, nil)
		t.cand = append(t.cand, time.Since(start))
		return err
	}
	timeB := func() error {
		start := time.Now()
		_, err := base.Run(ctx, baseIn, nil)
		t.base = append(t.base, time.Since(start))
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		return nil
	}
	order := [][]func() error{{timeA}, {timeA}}
	if withBase {
		order = [][]func() error{{timeA, timeB}, {timeB, timeA}}
	}
	start := time.Now()
	for i := range runs {
		for _, f := range order[i%2] {
			if err := f(); err != nil {
				return t, err
			}
		}
		if i+1 >= latencyMinRuns && time.Since(start) > latencyTimeCap {
			break
		}
	}
	return t, nil
}

// percentile is the nearest-rank q-quantile of ds (0 for none).
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}
