package release

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// lat is a histogram of n requests that each took about d (more than
// 4/5 d, at most d).
func lat(n int64, d time.Duration) []LatencyBucket {
	return []LatencyBucket{{Le: d * 4 / 5}, {Le: d, Count: n}}
}

// healthy is a step's observations of a candidate as good as stable: n
// candidate requests and 4n stable ones, no errors, the same latency,
// n/2 distinct compared inputs, all agreeing.
func healthy(n int64) Observations {
	return Observations{
		Stable:    VersionStats{Requests: 4 * n, P99: 10 * time.Millisecond, Latency: lat(4*n, 10*time.Millisecond)},
		Candidate: VersionStats{Requests: n, P99: 10 * time.Millisecond, Latency: lat(n, 10*time.Millisecond)},
		Compared:  n, Distinct: n / 2,
	}
}

// slowed is o with every candidate request taking d.
func slowed(o Observations, d time.Duration) Observations {
	o.Candidate.P99, o.Candidate.Latency = d, lat(o.Candidate.Requests, d)
	return o
}

func start(plan Plan) Progress {
	return Progress{Phase: Progressing, Candidate: "2", Step: 0, Weight: plan.Steps[0], StepStart: t0}
}

// A good candidate walks 5 → 25 → 50 → 100 and is promoted, one interval
// per step, tick by tick.
func TestGoodCandidateIsPromoted(t *testing.T) {
	plan := DefaultPlan()
	st := start(plan)
	now := t0
	var weights []float64
	for tick := 0; tick < 20 && st.Phase == Progressing; tick++ {
		now = now.Add(30 * time.Second)
		d := Decide(plan, st, healthy(2000), now)
		if d.Next.Weight != st.Weight {
			weights = append(weights, d.Next.Weight)
		}
		st = d.Next
	}
	if st.Phase != Promoted || st.Weight != 100 {
		t.Fatalf("ended %+v", st)
	}
	if want := []float64{25, 50, 100}; len(weights) != 3 || weights[0] != want[0] || weights[1] != want[1] || weights[2] != want[2] {
		t.Fatalf("weights %v, want %v", weights, want)
	}
	if !now.After(t0.Add(4*plan.Interval - time.Second)) {
		t.Fatalf("promoted after %s, before four intervals", now.Sub(t0))
	}
}

func TestTicks(t *testing.T) {
	plan := DefaultPlan()
	afterInterval := t0.Add(plan.Interval)
	cases := []struct {
		name      string
		state     Progress
		obs       Observations
		now       time.Time
		phase     Phase
		step      int
		weight    float64
		failures  int
		changed   bool
		reasonHas string
	}{
		{"healthy within the interval holds", start(plan), healthy(2000), t0.Add(10 * time.Second), Progressing, 0, 5, 0, false, "interval left"},
		{"healthy after the interval advances", start(plan), healthy(2000), afterInterval, Progressing, 1, 25, 0, true, "step 1 passed; now 25%"},
		{"no traffic holds, never passes", start(plan), Observations{}, t0.Add(time.Hour), Progressing, 0, 5, 0, false, "0 of 200 samples"},
		{"too few samples holds", start(plan), healthy(150), t0.Add(time.Hour), Progressing, 0, 5, 0, false, "150 of 200 samples"},
		{"too few distinct inputs holds", start(plan), func() Observations { o := healthy(2000); o.Distinct = 10; return o }(), afterInterval, Progressing, 0, 5, 0, false, "not yet enough evidence: disagreement"},
		{"few requests without errors hold", start(plan), healthy(250), afterInterval, Progressing, 0, 5, 0, false, "not yet enough evidence: error_rate_increase"},
		{"errors fail a check", start(plan), func() Observations { o := healthy(2000); o.Candidate.Errors = 100; return o }(), afterInterval, Progressing, 0, 5, 1, true, "error_rate_increase"},
		{"errors fail mid-step, before min samples", start(plan), func() Observations { o := healthy(150); o.Candidate.Errors = 30; return o }(), t0.Add(time.Second), Progressing, 0, 5, 1, true, "error_rate_increase 0.2 > 0.01"},
		{"second failure rolls back", func() Progress { s := start(plan); s.Failures = 1; return s }(), func() Observations { o := healthy(2000); o.Candidate.Errors = 100; return o }(), afterInterval, RolledBack, 0, 0, 2, true, "rolled back after 2 failed checks"},
		{"3x slower fails", start(plan), slowed(healthy(2000), 30*time.Millisecond), afterInterval, Progressing, 0, 5, 1, true, "p99_latency 1 > 0.01"},
		{"slower within the slack passes", start(plan), slowed(healthy(2000), 11*time.Millisecond), afterInterval, Progressing, 1, 25, 0, true, "now 25%"},
		{"disagreement fails", start(plan), func() Observations { o := healthy(2000); o.DistinctDisagreements = 340; return o }(), afterInterval, Progressing, 0, 5, 1, true, "disagreement 0.34"},
		{"repeated agreeing inputs do not dilute disagreement", start(plan), func() Observations {
			o := healthy(2000)
			o.Compared, o.Disagreements, o.Distinct, o.DistinctDisagreements = 20000, 200, 300, 100
			return o
		}(), afterInterval, Progressing, 0, 5, 1, true, "disagreement 0.333"},
		{"without distinct counts each compared request counts", start(plan), func() Observations {
			o := healthy(2000)
			o.Distinct, o.Compared, o.Disagreements = 0, 2000, 600
			return o
		}(), afterInterval, Progressing, 0, 5, 1, true, "disagreement 0.3"},
		{"one NaN fails even with few samples", start(plan), Observations{Candidate: VersionStats{Requests: 3, NonFinite: 1}}, t0.Add(time.Second), Progressing, 0, 5, 1, true, "nonfinite_rate"},
		{"a query error counts as a failure", start(plan), Observations{Err: errors.New("prometheus: 503")}, afterInterval, Progressing, 0, 5, 1, true, "analysis query failed: prometheus: 503"},
		{"a good tick does not clear failures before the step passes", func() Progress { s := start(plan); s.Failures = 1; return s }(), healthy(2000), t0.Add(time.Second), Progressing, 0, 5, 1, false, "interval left"},
		{"passing a step clears failures", func() Progress { s := start(plan); s.Failures = 1; return s }(), healthy(2000), afterInterval, Progressing, 1, 25, 0, true, "now 25%"},
		{"last step passes to promoted", Progress{Phase: Progressing, Candidate: "2", Step: 3, Weight: 100, StepStart: t0}, healthy(2000), afterInterval, Promoted, 3, 100, 0, true, "passed all 4 steps"},
		{"paused does nothing", Progress{Phase: Paused, Candidate: "2", Step: 1, Weight: 25, StepStart: t0}, healthy(2000), afterInterval, Paused, 1, 25, 0, false, "nothing to do"},
		{"terminal does nothing", Progress{Phase: RolledBack, Candidate: "2"}, healthy(2000), afterInterval, RolledBack, 0, 0, 0, false, "nothing to do"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(plan, c.state, c.obs, c.now)
			n := d.Next
			if n.Phase != c.phase || n.Step != c.step || n.Weight != c.weight || n.Failures != c.failures || d.Changed != c.changed {
				t.Fatalf("next %+v changed=%v; want phase %s step %d weight %g failures %d changed %v", n, d.Changed, c.phase, c.step, c.weight, c.failures, c.changed)
			}
			if !strings.Contains(d.Reason, c.reasonHas) {
				t.Fatalf("reason %q lacks %q", d.Reason, c.reasonHas)
			}
		})
	}
}

// A failing candidate is rolled back within two intervals of ticks (in
// fact within two ticks: the evidence is enough at the first).
func TestBadCandidatesRollBackWithinTwoIntervals(t *testing.T) {
	plan := DefaultPlan()
	bad := map[string]func(Observations) Observations{
		"errors":   func(o Observations) Observations { o.Candidate.Errors = o.Candidate.Requests / 5; return o },
		"nan":      func(o Observations) Observations { o.Candidate.NonFinite = 1; return o },
		"slow":     func(o Observations) Observations { return slowed(o, 3*o.Stable.P99) },
		"disagree": func(o Observations) Observations { o.DistinctDisagreements = o.Distinct / 3; return o },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			st := start(plan)
			now := t0
			for now.Before(t0.Add(2*plan.Interval)) && st.Phase == Progressing {
				now = now.Add(plan.Interval / 2)
				st = Decide(plan, st, mutate(healthy(2000)), now).Next
			}
			if st.Phase != RolledBack || st.Weight != 0 {
				t.Fatalf("after two intervals: %+v", st)
			}
		})
	}
}

func TestPlanValidate(t *testing.T) {
	if err := DefaultPlan().Validate(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		edit func(*Plan)
		want string
	}{
		{"no steps", func(p *Plan) { p.Steps = nil }, "at least one step"},
		{"not increasing", func(p *Plan) { p.Steps = []float64{5, 50, 25, 100} }, "must increase"},
		{"not ending at 100", func(p *Plan) { p.Steps = []float64{5, 50} }, "last step must be 100"},
		{"out of range", func(p *Plan) { p.Steps = []float64{0, 100} }, "not in (0, 100]"},
		{"interval", func(p *Plan) { p.Interval = 0 }, "interval"},
		{"min samples", func(p *Plan) { p.MinSamples = 0 }, "min_samples"},
		{"failure limit", func(p *Plan) { p.FailureLimit = 0 }, "failure_limit"},
		{"rate above 1", func(p *Plan) { p.MaxDisagreement = 2 }, "max_disagreement"},
		{"negative ratio", func(p *Plan) { p.MaxP99LatencyRatio = -1 }, "max_p99_latency_ratio"},
		{"alpha", func(p *Plan) { p.Alpha = 1 }, "alpha"},
		{"beta", func(p *Plan) { p.Beta = -0.1 }, "beta"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultPlan()
			c.edit(&p)
			err := p.Validate()
			if !errors.Is(err, ErrInvalidPlan) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestPhases(t *testing.T) {
	for p, terminal := range map[Phase]bool{Idle: false, Progressing: false, Paused: false, Promoted: true, RolledBack: true, Aborted: true} {
		if p.IsTerminal() != terminal {
			t.Errorf("%s.IsTerminal() = %v", p, !terminal)
		}
	}
}

// At 100 % stable takes no traffic: the checks that compare with stable
// use its figures from the last step instead of holding for ever.
func TestLastStepComparesWithBaseline(t *testing.T) {
	plan := DefaultPlan()
	st := Progress{Phase: Progressing, Candidate: "2", Step: 2, Weight: 50, StepStart: t0}
	d := Decide(plan, st, healthy(2000), t0.Add(plan.Interval))
	if d.Next.Weight != 100 || d.Next.Baseline == nil || d.Next.Baseline.Requests != 8000 || d.Next.Baseline.Latency != nil {
		t.Fatalf("after step 3: %+v", d.Next)
	}
	alone := healthy(2000)
	alone.Stable = VersionStats{}
	d = Decide(plan, d.Next, alone, t0.Add(2*plan.Interval))
	if d.Next.Phase != Promoted {
		t.Fatalf("at 100%% with a baseline: %s (%s)", d.Next.Phase, d.Reason)
	}
	slow := slowed(alone, 50*time.Millisecond)
	st = Progress{Phase: Progressing, Candidate: "2", Step: 3, Weight: 100, StepStart: t0, Baseline: &VersionStats{Requests: 900, P99: 10 * time.Millisecond}}
	if d := Decide(plan, st, slow, t0.Add(plan.Interval)); d.Next.Failures != 1 || !strings.Contains(d.Reason, "p99_latency 1 > 0.01") {
		t.Fatalf("slow at 100%%: %+v (%s)", d.Next, d.Reason)
	}
}

// Every check reports its estimate, bounds, samples and decision; the
// bounds hold the estimate between them.
func TestChecksReportTheirEvidence(t *testing.T) {
	plan := DefaultPlan()
	o := healthy(2000)
	o.Candidate.Errors = 4
	d := Decide(plan, start(plan), o, t0.Add(plan.Interval))
	if len(d.Checks) != 4 {
		t.Fatalf("%d checks, want 4: %+v", len(d.Checks), d.Checks)
	}
	for _, c := range d.Checks {
		if c.Decision != CheckPass || !c.Passed || c.Held {
			t.Errorf("%s: decision %q, want pass", c.Metric, c.Decision)
		}
		if c.Lower > c.Value || c.Value > c.Upper || c.Upper > c.Threshold && c.Metric != "nonfinite_rate" {
			t.Errorf("%s: %g not within [%g, %g] under %g", c.Metric, c.Value, c.Lower, c.Upper, c.Threshold)
		}
		if c.Samples == 0 || c.Detail == "" {
			t.Errorf("%s: samples %d, detail %q", c.Metric, c.Samples, c.Detail)
		}
	}
}

// The false-rollback rate is spread over the statistical checks of every
// step: a plan with more steps or checks judges each more strictly, so a
// borderline failure that one check of one step would call is held by a
// plan of sixteen.
func TestAlphaIsSpreadOverChecksAndSteps(t *testing.T) {
	one := Plan{Steps: []float64{100}, Interval: time.Minute, MinSamples: 1, FailureLimit: 1, Alpha: 0.01,
		Thresholds: Thresholds{MaxErrorRateIncrease: 0.01}}
	many := one
	many.Steps = []float64{5, 10, 25, 50, 75, 90, 95, 100}
	many.MaxDisagreement = 0.05
	if statChecks(one) != 1 || statChecks(many) != 2 {
		t.Fatalf("statistical checks: %d and %d, want 1 and 2", statChecks(one), statChecks(many))
	}
	// Find the fewest errors in 2000 requests the single check rolls back on.
	var k int64
	for k = 0; k < 2000; k++ {
		o := healthy(2000)
		o.Stable = VersionStats{Requests: 8000, P99: time.Millisecond}
		o.Candidate.Errors = k
		if Decide(one, Progress{Phase: Progressing, Candidate: "2", Weight: 100, StepStart: t0}, o, t0).Next.Phase == RolledBack {
			break
		}
	}
	o := healthy(2000)
	o.Stable = VersionStats{Requests: 8000, P99: time.Millisecond}
	o.Candidate.Errors = k
	st := Progress{Phase: Progressing, Candidate: "2", Weight: 5, StepStart: t0}
	if d := Decide(many, st, o, t0); d.Next.Phase == RolledBack {
		t.Fatalf("%d errors in 2000 roll back a 16-test plan as they do a single test: %s", k, d.Reason)
	}
}

// slower brackets the requests over a limit by whole buckets, p99Bracket
// finds the bucket of the p99; the unbounded last bucket gives no p99.
func TestHistogramReading(t *testing.T) {
	h := []LatencyBucket{{Le: time.Millisecond, Count: 900}, {Le: 4 * time.Millisecond, Count: 100}, {Le: math.MaxInt64, Count: 10}}
	if lo, hi, n := slower(h, 2*time.Millisecond); n != 1010 || lo != 10 || hi != 110 {
		t.Errorf("slower than 2ms: %d to %d of %d, want 10 (the open bucket) to 110 (and the 1-4ms one) of 1010", lo, hi, n)
	}
	if lo, hi, _ := slower(h, 4*time.Millisecond); lo != 10 || hi != 10 {
		t.Errorf("slower than 4ms: %d to %d, want 10", lo, hi)
	}
	if lo, hi, _ := slower(h, 0); lo != 1010 || hi != 1010 {
		t.Errorf("slower than 0: %d to %d, want all", lo, hi)
	}
	if lo, hi, ok := p99Bracket(h[:2]); !ok || lo != time.Millisecond || hi != 4*time.Millisecond {
		t.Errorf("p99 in (%s, %s] %v, want (1ms, 4ms]", lo, hi, ok)
	}
	if _, _, ok := p99Bracket([]LatencyBucket{{Le: time.Millisecond, Count: 1}, {Le: math.MaxInt64, Count: 99}}); ok {
		t.Error("a p99 in the unbounded bucket has a bracket")
	}
	if _, _, ok := p99Bracket(nil); ok {
		t.Error("an empty histogram has a p99")
	}
}

// A candidate within a bucket of the latency limit holds: neither a
// false rollback nor a wrong pass; far beyond it, it fails.
func TestLatencyWithinABucketHolds(t *testing.T) {
	plan := DefaultPlan()
	b := func(counts ...int64) []LatencyBucket {
		var h []LatencyBucket
		for i, c := range counts {
			h = append(h, LatencyBucket{Le: time.Duration(i+1) * 10 * time.Millisecond, Count: c})
		}
		return h
	}
	stable := VersionStats{Requests: 10000, Latency: b(9950, 50)} // p99 in (0, 10ms]
	near := VersionStats{Requests: 10000, Latency: b(9000, 1000)} // 10% in (10, 20ms]: limit 15ms falls inside
	far := VersionStats{Requests: 10000, Latency: b(0, 0, 10000)} // all in (20, 30ms]
	if ch := latencyCheck(plan.Thresholds, near, stable, 0.001, 0.05); ch.Decision != CheckHold {
		t.Errorf("near the limit: %s (%s)", ch.Decision, ch.Detail)
	}
	if ch := latencyCheck(plan.Thresholds, far, stable, 0.001, 0.05); ch.Decision != CheckFail {
		t.Errorf("far beyond the limit: %s (%s)", ch.Decision, ch.Detail)
	}
	// A/A with a coarse first bucket: the pass limit drawn at its lower
	// end (0) leaves every request possibly slower, so it holds; it never
	// fails.
	if ch := latencyCheck(plan.Thresholds, stable, stable, 0.001, 0.05); ch.Decision != CheckHold {
		t.Errorf("A/A with a coarse bucket: %s (%s), want hold", ch.Decision, ch.Detail)
	}
}
