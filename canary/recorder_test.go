package canary_test

import (
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newRecorder(t *testing.T) (*canary.Recorder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return canary.NewRecorder(reg), reg
}

// The recorder counts per role and outcome within the current epoch;
// shadow runs count for the candidate.
func TestRecorderCounts(t *testing.T) {
	r, _ := newRecorder(t)
	r.Begin("m", "2/0/1")
	for range 10 {
		r.Observe("m", "1", canary.RoleStable, canary.OutcomeOK, time.Millisecond, true)
	}
	r.Observe("m", "1", canary.RoleStable, canary.OutcomeError, time.Millisecond, true)
	r.Observe("m", "2", canary.RoleCandidate, canary.OutcomeOK, time.Millisecond, true)
	r.Observe("m", "2", canary.RoleCandidate, canary.OutcomeNonFinite, time.Millisecond, true)
	r.Observe("m", "2", canary.RoleShadow, canary.OutcomeError, time.Millisecond, false)
	r.Compare("m", "2", 1, false)
	r.Compare("m", "2", 2, true)
	r.Compare("m", "2", 2, true) // the same input again
	// Another model's runs do not mix in.
	r.Begin("other", "9/0/1")
	r.Observe("other", "9", canary.RoleCandidate, canary.OutcomeError, time.Millisecond, true)

	got := r.Observations("m", "2/0/1")
	if s := got.Stable; s.Requests != 11 || s.Errors != 1 || s.NonFinite != 0 {
		t.Errorf("stable %+v, want 11 requests, 1 error", s)
	}
	if c := got.Candidate; c.Requests != 3 || c.Errors != 1 || c.NonFinite != 1 {
		t.Errorf("candidate %+v, want 3 requests (one a shadow copy), 1 error, 1 non-finite", c)
	}
	if got.Compared != 3 || got.Disagreements != 2 {
		t.Errorf("compared %d, disagreements %d; want 3, 2", got.Compared, got.Disagreements)
	}
	if got.Distinct != 2 || got.DistinctDisagreements != 1 {
		t.Errorf("distinct %d, distinct disagreements %d; want 2, 1", got.Distinct, got.DistinctDisagreements)
	}
	if o := r.Observations("other", "9/0/1"); o.Candidate.Errors != 1 || o.Stable.Requests != 0 {
		t.Errorf("other model: %+v", o)
	}
	if o := r.Observations("ghost", "2/0/1"); !reflect.DeepEqual(o, release.Observations{}) {
		t.Errorf("a model never begun: %+v, want nothing", o)
	}
}

// A new epoch starts from zero; asking for the old one gives nothing; the
// same epoch again keeps the counts.
func TestRecorderEpochReset(t *testing.T) {
	r, _ := newRecorder(t)
	// Runs before any window are exported but not kept.
	r.Observe("m", "2", canary.RoleCandidate, canary.OutcomeOK, time.Millisecond, true)
	r.Begin("m", "2/0/1")
	if o := r.Observations("m", "2/0/1"); o.Candidate.Requests != 0 {
		t.Fatalf("a run before Begin counted: %+v", o)
	}
	r.Observe("m", "2", canary.RoleCandidate, canary.OutcomeOK, time.Millisecond, true)
	r.Compare("m", "2", 7, true)
	r.Begin("m", "2/0/1") // the same step again: nothing lost
	if o := r.Observations("m", "2/0/1"); o.Candidate.Requests != 1 || o.Compared != 1 {
		t.Fatalf("same epoch again lost counts: %+v", o)
	}
	r.Begin("m", "2/1/2")
	if o := r.Observations("m", "2/1/2"); !reflect.DeepEqual(o, release.Observations{}) {
		t.Fatalf("new epoch starts with %+v, want nothing", o)
	}
	r.Observe("m", "2", canary.RoleCandidate, canary.OutcomeError, time.Millisecond, true)
	if o := r.Observations("m", "2/0/1"); !reflect.DeepEqual(o, release.Observations{}) {
		t.Fatalf("the previous epoch's observations: %+v, want nothing", o)
	}
	if o := r.Observations("m", "2/1/2"); o.Candidate.Requests != 1 || o.Candidate.Errors != 1 {
		t.Fatalf("new epoch: %+v", o)
	}
}

// Runs nobody waited for count as requests, errors and non-finite
// answers, never as latency: a slow shadow copy does not make the p99.
func TestRecorderUnservedRunsHaveNoLatency(t *testing.T) {
	r, reg := newRecorder(t)
	r.Begin("m", "e")
	for range 200 {
		r.Observe("m", "2", canary.RoleShadow, canary.OutcomeOK, 5*time.Second, false)
	}
	r.Observe("m", "2", canary.RoleShadow, canary.OutcomeNonFinite, 5*time.Second, false)
	o := r.Observations("m", "e")
	if o.Candidate.Requests != 201 || o.Candidate.NonFinite != 1 || o.Candidate.P99 != 0 {
		t.Fatalf("candidate %+v, want 201 requests, 1 non-finite, no p99", o.Candidate)
	}
	if n, err := testutil.GatherAndCount(reg, "modelgate_canary_request_duration_seconds"); err != nil || n != 0 {
		t.Fatalf("duration series after unserved runs only: %d (%v), want 0", n, err)
	}
	for range 100 {
		r.Observe("m", "2", canary.RoleCandidate, canary.OutcomeOK, 2*time.Millisecond, true)
	}
	if p := r.Observations("m", "e").Candidate.P99; p < 2*time.Millisecond || p > 2500*time.Microsecond {
		t.Fatalf("p99 %s after served runs of 2ms (and slower unserved ones), want 2ms to 2.5ms", p)
	}
}

// The p99 read from the logarithmic buckets is within 25 % of the true
// p99 of the observed latencies.
func TestRecorderP99(t *testing.T) {
	uniform := make([]time.Duration, 1000) // 0.1 ms to 100 ms
	for i := range uniform {
		uniform[i] = time.Duration(i+1) * 100 * time.Microsecond
	}
	tail := func(fast, slow int) []time.Duration {
		var d []time.Duration
		for range fast {
			d = append(d, 800*time.Microsecond)
		}
		for range slow {
			d = append(d, 430*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		name string
		lat  []time.Duration
		want time.Duration // the true p99: the ceil(0.99 n)-th smallest
	}{
		{"uniform", uniform, 99 * time.Millisecond},
		{"1 % slow", tail(990, 10), 800 * time.Microsecond},
		{"1.1 % slow", tail(989, 11), 430 * time.Millisecond},
		{"below the first bucket", []time.Duration{10 * time.Microsecond, 20 * time.Microsecond}, 20 * time.Microsecond},
		{"a single run", []time.Duration{7 * time.Millisecond}, 7 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRecorder(t)
			r.Begin("m", "e")
			for _, d := range tc.lat {
				r.Observe("m", "1", canary.RoleStable, canary.OutcomeOK, d, true)
				r.Observe("m", "2", canary.RoleCandidate, canary.OutcomeOK, 2*d, true)
			}
			o := r.Observations("m", "e")
			// Below 50 µs everything is one bucket, reported as 50 µs.
			want := max(tc.want, 50*time.Microsecond)
			for _, side := range []struct {
				name string
				got  time.Duration
				want time.Duration
			}{{"stable", o.Stable.P99, want}, {"candidate", o.Candidate.P99, max(2*tc.want, 50*time.Microsecond)}} {
				if rel := math.Abs(float64(side.got-side.want)) / float64(side.want); rel > 0.25 {
					t.Errorf("%s p99 %s, true p99 %s: off by %.0f%%", side.name, side.got, side.want, 100*rel)
				}
			}
		})
	}
}

// Runs in the matched role are a cohort of their own: counted, with their
// errors, non-finite answers and latency, in Observations.Matched, never
// in the candidate's (or stable's) weighted figures, and begun afresh
// with each epoch like the rest.
func TestRecorderMatchedCohort(t *testing.T) {
	r, _ := newRecorder(t)
	r.Begin("m", "2/0/1")
	for range 5 {
		r.Observe("m", "1", canary.RoleStable, canary.OutcomeOK, time.Millisecond, true)
		r.Observe("m", "2", canary.RoleCandidate, canary.OutcomeOK, time.Millisecond, true)
	}
	for range 7 {
		r.Observe("m", "2", canary.RoleMatched, canary.OutcomeOK, 40*time.Millisecond, true)
	}
	r.Observe("m", "2", canary.RoleMatched, canary.OutcomeError, 40*time.Millisecond, true)
	r.Observe("m", "2", canary.RoleMatched, canary.OutcomeNonFinite, 40*time.Millisecond, true)

	got := r.Observations("m", "2/0/1")
	if s, c := got.Stable, got.Candidate; s.Requests != 5 || s.Errors != 0 || c.Requests != 5 || c.Errors != 0 || c.NonFinite != 0 {
		t.Errorf("weighted split: stable %+v, candidate %+v; want 5 requests each, no failures", s, c)
	}
	if c := got.Candidate; c.P99 > 2*time.Millisecond {
		t.Errorf("candidate p99 %s: the matched cohort's 40 ms leaked into it", c.P99)
	}
	m := got.Matched
	if m.Requests != 9 || m.Errors != 1 || m.NonFinite != 1 {
		t.Errorf("matched %+v, want 9 requests, 1 error, 1 non-finite", m)
	}
	if m.P99 < 40*time.Millisecond || m.P99 > 43*time.Millisecond || len(m.Latency) == 0 {
		t.Errorf("matched p99 %s (%d buckets), want the bucket of 40 ms", m.P99, len(m.Latency))
	}
	r.Begin("m", "2/1/2")
	if o := r.Observations("m", "2/1/2"); o.Matched.Requests != 0 {
		t.Errorf("a new step starts with %d matched requests, want none", o.Matched.Requests)
	}
}

// The recorder exports its figures on the registry it is given, with
// names and labels that pass promlint.
func TestRecorderMetrics(t *testing.T) {
	r, reg := newRecorder(t)
	r.Begin("m", "e")
	r.Observe("m", "1", canary.RoleStable, canary.OutcomeOK, 3*time.Millisecond, true)
	r.Observe("m", "1", canary.RoleStable, canary.OutcomeOK, 3*time.Millisecond, true)
	r.Observe("m", "2", canary.RoleCandidate, canary.OutcomeError, time.Millisecond, true)
	r.Observe("m", "2", canary.RoleShadow, canary.OutcomeNonFinite, time.Millisecond, false)
	r.Observe("m", "2", canary.RoleMatched, canary.OutcomeOK, time.Millisecond, true)
	r.Compare("m", "2", 1, true)
	r.Compare("m", "2", 2, false)
	r.Compare("m", "2", 2, false)

	want := `
# HELP modelgate_canary_requests_total Runs of a model version by role (stable, candidate, shadow; matched: the candidate serving a request a match rule sent it, a cohort apart from the weighted split) and outcome (ok, error, nonfinite), for canary analysis.
# TYPE modelgate_canary_requests_total counter
modelgate_canary_requests_total{model="m",outcome="error",role="candidate",version="2"} 1
modelgate_canary_requests_total{model="m",outcome="ok",role="matched",version="2"} 1
modelgate_canary_requests_total{model="m",outcome="nonfinite",role="shadow",version="2"} 1
modelgate_canary_requests_total{model="m",outcome="ok",role="stable",version="1"} 2
# HELP modelgate_canary_shadow_comparisons_total Requests scored by both stable and the candidate (shadow copies and compared split traffic), by candidate version.
# TYPE modelgate_canary_shadow_comparisons_total counter
modelgate_canary_shadow_comparisons_total{model="m",version="2"} 3
# HELP modelgate_canary_shadow_disagreements_total Compared requests on which the candidate disagreed with stable (top-1 label, or relative error for regressors).
# TYPE modelgate_canary_shadow_disagreements_total counter
modelgate_canary_shadow_disagreements_total{model="m",version="2"} 1
# HELP modelgate_canary_distinct_comparisons_total Distinct inputs (by hash) scored by both stable and the candidate, first seen in this replica's current canary step; summed over replicas, an input several replicas saw counts once per replica.
# TYPE modelgate_canary_distinct_comparisons_total counter
modelgate_canary_distinct_comparisons_total{model="m",version="2"} 2
# HELP modelgate_canary_distinct_disagreements_total Distinct compared inputs on which the candidate disagreed with stable at least once, in this replica's current canary step.
# TYPE modelgate_canary_distinct_disagreements_total counter
modelgate_canary_distinct_disagreements_total{model="m",version="2"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"modelgate_canary_requests_total", "modelgate_canary_shadow_comparisons_total", "modelgate_canary_shadow_disagreements_total",
		"modelgate_canary_distinct_comparisons_total", "modelgate_canary_distinct_disagreements_total"); err != nil {
		t.Error(err)
	}
	// Served runs only: stable, the candidate and its matched cohort, not
	// the shadow copy.
	if n, err := testutil.GatherAndCount(reg, "modelgate_canary_request_duration_seconds"); err != nil || n != 3 {
		t.Errorf("duration series: %d (%v), want 3", n, err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// Registering twice on one registry is refused: the recorder does not
	// fall back to the global one.
	defer func() {
		if recover() == nil {
			t.Error("a second recorder on the same registry registered its metrics again")
		}
	}()
	canary.NewRecorder(reg)
}

// Recording, comparing, reading and moving to a new epoch from many
// goroutines at once is safe (run with -race) and loses no count.
func TestRecorderConcurrent(t *testing.T) {
	r, _ := newRecorder(t)
	r.Begin("m", "e")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				r.Observe("m", "2", canary.RoleCandidate, canary.OutcomeOK, time.Duration(g+1)*time.Millisecond, true)
				r.Compare("m", "2", uint64(g), g%2 == 0)
				r.Begin("m", "e")
				_ = r.Observations("m", "e")
			}
		}()
	}
	wg.Wait()
	o := r.Observations("m", "e")
	if o.Candidate.Requests != 4000 || o.Compared != 4000 || o.Disagreements != 2000 || o.Distinct != 8 || o.DistinctDisagreements != 4 {
		t.Fatalf("after 8×500 concurrent runs: %+v", o)
	}
}

// Repeated inputs count once among the distinct ones; an input that
// agreed and later disagreed (a nondeterministic model) counts as
// disagreeing, once; a new epoch forgets them.
func TestRecorderDistinct(t *testing.T) {
	r, _ := newRecorder(t)
	r.Begin("m", "e")
	for range 100 {
		r.Compare("m", "2", 1, false) // one popular input the versions agree on
	}
	r.Compare("m", "2", 2, true)
	r.Compare("m", "2", 3, false)
	r.Compare("m", "2", 3, true)
	r.Compare("m", "2", 3, true)
	o := r.Observations("m", "e")
	if o.Compared != 104 || o.Disagreements != 3 {
		t.Errorf("compared %d, disagreements %d; want 104, 3", o.Compared, o.Disagreements)
	}
	if o.Distinct != 3 || o.DistinctDisagreements != 2 {
		t.Errorf("distinct %d, distinct disagreements %d; want 3, 2", o.Distinct, o.DistinctDisagreements)
	}
	r.Begin("m", "f")
	r.Compare("m", "2", 2, false)
	if o := r.Observations("m", "f"); o.Distinct != 1 || o.DistinctDisagreements != 0 {
		t.Errorf("new epoch: distinct %d, disagreements %d; want 1, 0", o.Distinct, o.DistinctDisagreements)
	}
}

// InputHash tells inputs apart by value, shape, name and element type,
// and gives equal inputs one hash.
func TestInputHash(t *testing.T) {
	f := func(name string, shape []int64, data any) []wire.Tensor {
		return []wire.Tensor{{Name: name, Shape: shape, Data: data}}
	}
	base := canary.InputHash(f("x", []int64{1, 2}, []float32{1, 2}))
	if canary.InputHash(f("x", []int64{1, 2}, []float32{1, 2})) != base {
		t.Error("equal inputs hash differently")
	}
	for name, in := range map[string][]wire.Tensor{
		"value": f("x", []int64{1, 2}, []float32{1, 3}),
		"shape": f("x", []int64{2, 1}, []float32{1, 2}),
		"name":  f("y", []int64{1, 2}, []float32{1, 2}),
		"type":  f("x", []int64{1, 2}, []float64{1, 2}),
	} {
		if canary.InputHash(in) == base {
			t.Errorf("a different %s hashes the same", name)
		}
	}
	for name, pair := range map[string][2]any{
		"BOOL":  {[]bool{true, false}, []bool{false, true}},
		"FP16":  {[]wire.Float16{1, 2}, []wire.Float16{3, 4}},
		"BF16":  {[]wire.BFloat16{1, 2}, []wire.BFloat16{3, 4}},
		"BYTES": {[][]byte{[]byte("hello")}, [][]byte{[]byte("world")}},
		"INT64": {[]int64{1 << 60, 2}, []int64{1<<60 + 1, 2}}, // beyond float64's integers
	} {
		if canary.InputHash(f("x", []int64{2}, pair[0])) == canary.InputHash(f("x", []int64{2}, pair[1])) {
			t.Errorf("%s inputs are not hashed by value", name)
		}
	}
}

// Decide's checks read the weighted split alone: the matched cohort,
// however many requests and however bad (errors, NaN, slow), changes no
// check and no decision, nor does it count towards a step's samples;
// and a cohort however good does not save a failing split.
func TestDecideIgnoresMatchedCohort(t *testing.T) {
	plan := release.DefaultPlan()
	plan.MaxDisagreement = 0 // no comparisons in this test
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := release.Progress{Phase: release.Progressing, Candidate: "2", Weight: plan.Steps[0], StepStart: t0}
	now := t0.Add(2 * plan.Interval)
	type cohort struct {
		requests, errors, nonFinite int
		took                        time.Duration
	}
	tests := []struct {
		name             string
		stable, cand     cohort
		matched          cohort
		wantStep         int
		wantFailures     int
		wantReasonPrefix string
	}{
		{"a healthy split passes whatever the cohort",
			cohort{8000, 0, 0, 10 * time.Millisecond}, cohort{2000, 0, 0, 10 * time.Millisecond},
			cohort{5000, 1000, 500, 900 * time.Millisecond}, 1, 0, "step 1 passed"},
		{"a failing split fails whatever the cohort",
			cohort{8000, 0, 0, 10 * time.Millisecond}, cohort{2000, 200, 0, 10 * time.Millisecond},
			cohort{20000, 0, 0, 10 * time.Millisecond}, 0, 1, "failed check 1"},
		{"the cohort is no step's samples",
			cohort{8000, 0, 0, 10 * time.Millisecond}, cohort{50, 0, 0, 10 * time.Millisecond},
			cohort{20000, 0, 0, 10 * time.Millisecond}, 0, 0, "holding step 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRecorder(t)
			r.Begin("m", "e")
			record := func(version, role string, c cohort) {
				for i := range c.requests {
					outcome := canary.OutcomeOK
					switch {
					case i < c.errors:
						outcome = canary.OutcomeError
					case i < c.errors+c.nonFinite:
						outcome = canary.OutcomeNonFinite
					}
					r.Observe("m", version, role, outcome, c.took, true)
				}
			}
			record("1", canary.RoleStable, tc.stable)
			record("2", canary.RoleCandidate, tc.cand)
			record("2", canary.RoleMatched, tc.matched)
			obs := r.Observations("m", "e")
			if obs.Matched.Requests != int64(tc.matched.requests) || obs.Candidate.Requests != int64(tc.cand.requests) {
				t.Fatalf("recorded candidate %d and matched %d requests", obs.Candidate.Requests, obs.Matched.Requests)
			}
			without := obs
			without.Matched = release.VersionStats{}
			d, dWithout := release.Decide(plan, st, obs, now), release.Decide(plan, st, without, now)
			if !reflect.DeepEqual(d, dWithout) {
				t.Fatalf("the matched cohort changed the decision:\nwith    %+v\nwithout %+v", d, dWithout)
			}
			if d.Next.Step != tc.wantStep || d.Next.Failures != tc.wantFailures || !strings.HasPrefix(d.Reason, tc.wantReasonPrefix) {
				t.Fatalf("decision: step %d, failures %d, %q; want step %d, failures %d, %q…", d.Next.Step, d.Next.Failures, d.Reason, tc.wantStep, tc.wantFailures, tc.wantReasonPrefix)
			}
			// The same figures as the candidate's would decide otherwise:
			// the test is not vacuous.
			swapped := without
			swapped.Candidate = obs.Matched
			if reflect.DeepEqual(release.Decide(plan, st, swapped, now).Checks, d.Checks) {
				t.Fatalf("the cohort's figures as the candidate's give the same checks: a vacuous test")
			}
		})
	}
}
