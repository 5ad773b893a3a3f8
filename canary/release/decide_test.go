package release

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func healthy(n int64) Observations {
	return Observations{
		Stable:    VersionStats{Requests: 4 * n, Errors: 4, P99: 10 * time.Millisecond},
		Candidate: VersionStats{Requests: n, Errors: 1, P99: 11 * time.Millisecond},
		Compared:  n, Disagreements: n / 100,
	}
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
		d := Decide(plan, st, healthy(500), now)
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
		{"healthy within the interval holds", start(plan), healthy(500), t0.Add(10 * time.Second), Progressing, 0, 5, 0, false, "interval left"},
		{"healthy after the interval advances", start(plan), healthy(500), afterInterval, Progressing, 1, 25, 0, true, "step 1 passed; now 25%"},
		{"no traffic holds, never passes", start(plan), Observations{}, t0.Add(time.Hour), Progressing, 0, 5, 0, false, "0 of 200 samples"},
		{"too few samples holds", start(plan), healthy(150), t0.Add(time.Hour), Progressing, 0, 5, 0, false, "150 of 200 samples"},
		{"too few compared pairs holds", start(plan), func() Observations { o := healthy(500); o.Compared = 10; o.Disagreements = 0; return o }(), afterInterval, Progressing, 0, 5, 0, false, "too few samples for disagreement"},
		{"errors fail a check", start(plan), func() Observations { o := healthy(500); o.Candidate.Errors = 100; return o }(), afterInterval, Progressing, 0, 5, 1, true, "error_rate_increase"},
		{"second failure rolls back", func() Progress { s := start(plan); s.Failures = 1; return s }(), func() Observations { o := healthy(500); o.Candidate.Errors = 100; return o }(), afterInterval, RolledBack, 0, 0, 2, true, "rolled back after 2 failed checks"},
		{"3x slower fails", start(plan), func() Observations { o := healthy(500); o.Candidate.P99 = 30 * time.Millisecond; return o }(), afterInterval, Progressing, 0, 5, 1, true, "p99_latency_ratio 3"},
		{"disagreement fails", start(plan), func() Observations { o := healthy(500); o.Disagreements = 170; return o }(), afterInterval, Progressing, 0, 5, 1, true, "disagreement 0.34"},
		{"one NaN fails even with few samples", start(plan), Observations{Candidate: VersionStats{Requests: 3, NonFinite: 1}}, t0.Add(time.Second), Progressing, 0, 5, 1, true, "nonfinite_rate"},
		{"a query error counts as a failure", start(plan), Observations{Err: errors.New("prometheus: 503")}, afterInterval, Progressing, 0, 5, 1, true, "analysis query failed: prometheus: 503"},
		{"a good tick does not clear failures before the step passes", func() Progress { s := start(plan); s.Failures = 1; return s }(), healthy(500), t0.Add(time.Second), Progressing, 0, 5, 1, false, "interval left"},
		{"passing a step clears failures", func() Progress { s := start(plan); s.Failures = 1; return s }(), healthy(500), afterInterval, Progressing, 1, 25, 0, true, "now 25%"},
		{"last step passes to promoted", Progress{Phase: Progressing, Candidate: "2", Step: 3, Weight: 100, StepStart: t0}, healthy(500), afterInterval, Promoted, 3, 100, 0, true, "passed all 4 steps"},
		{"paused does nothing", Progress{Phase: Paused, Candidate: "2", Step: 1, Weight: 25, StepStart: t0}, healthy(500), afterInterval, Paused, 1, 25, 0, false, "nothing to do"},
		{"terminal does nothing", Progress{Phase: RolledBack, Candidate: "2"}, healthy(500), afterInterval, RolledBack, 0, 0, 0, false, "nothing to do"},
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

// A failing candidate is rolled back within two intervals of ticks.
func TestBadCandidatesRollBackWithinTwoIntervals(t *testing.T) {
	plan := DefaultPlan()
	bad := map[string]func(Observations) Observations{
		"errors":   func(o Observations) Observations { o.Candidate.Errors = o.Candidate.Requests / 5; return o },
		"nan":      func(o Observations) Observations { o.Candidate.NonFinite = 1; return o },
		"slow":     func(o Observations) Observations { o.Candidate.P99 = 3 * o.Stable.P99; return o },
		"disagree": func(o Observations) Observations { o.Disagreements = o.Compared / 3; return o },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			st := start(plan)
			now := t0
			for now.Before(t0.Add(2*plan.Interval)) && st.Phase == Progressing {
				now = now.Add(plan.Interval / 2)
				st = Decide(plan, st, mutate(healthy(500)), now).Next
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
	d := Decide(plan, st, healthy(500), t0.Add(plan.Interval))
	if d.Next.Weight != 100 || d.Next.Baseline == nil || d.Next.Baseline.Requests != 2000 {
		t.Fatalf("after step 3: %+v", d.Next)
	}
	alone := healthy(500)
	alone.Stable = VersionStats{}
	d = Decide(plan, d.Next, alone, t0.Add(2*plan.Interval))
	if d.Next.Phase != Promoted {
		t.Fatalf("at 100%% with a baseline: %s (%s)", d.Next.Phase, d.Reason)
	}
	slow := alone
	slow.Candidate.P99 = 50 * time.Millisecond
	st = Progress{Phase: Progressing, Candidate: "2", Step: 3, Weight: 100, StepStart: t0, Baseline: &VersionStats{Requests: 900, P99: 10 * time.Millisecond}}
	if d := Decide(plan, st, slow, t0.Add(plan.Interval)); d.Next.Failures != 1 || !strings.Contains(d.Reason, "p99_latency_ratio 5") {
		t.Fatalf("slow at 100%%: %+v (%s)", d.Next, d.Reason)
	}
}
