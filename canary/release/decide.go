package release

import (
	"fmt"
	"strings"
	"time"
)

// Progress is the canary part of a model's release state.
type Progress struct {
	Phase     Phase     `json:"phase"`
	Candidate string    `json:"candidate,omitempty"`
	Step      int       `json:"step"`   // index into Plan.Steps
	Weight    float64   `json:"weight"` // candidate's share of traffic, percent
	StepStart time.Time `json:"step_started"`
	Failures  int       `json:"failures"` // failed checks in a row
	Reason    string    `json:"reason,omitempty"`
	// Baseline is stable's figures from the last step that passed with
	// enough stable traffic; checks that compare with stable use it when
	// stable has too little traffic of its own (at 100 % it has none).
	Baseline *VersionStats `json:"baseline,omitempty"`
}

// VersionStats are one version's numbers over the current step.
type VersionStats struct {
	Requests  int64         `json:"requests"`
	Errors    int64         `json:"errors"`
	NonFinite int64         `json:"nonfinite"`
	P99       time.Duration `json:"p99_ns"`
}

// Observations are what the analysis saw during the current step.
type Observations struct {
	Stable    VersionStats `json:"stable"`
	Candidate VersionStats `json:"candidate"`
	// Compared counts requests scored by both versions (shadow pairs);
	// Disagreements those on which they disagreed.
	Compared      int64 `json:"compared"`
	Disagreements int64 `json:"disagreements"`
	// Err is set when the analysis source could not be queried.
	Err error `json:"-"`
}

// Check is one metric against its threshold.
type Check struct {
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Held: too few samples to judge; neither a pass nor a failure.
	Held   bool `json:"held,omitempty"`
	Passed bool `json:"passed"`
}

// Decision is the outcome of one tick.
type Decision struct {
	Next   Progress `json:"next"`
	Reason string   `json:"reason"`
	Checks []Check  `json:"checks,omitempty"`
	// Changed reports whether Next differs from the state given.
	Changed bool `json:"changed"`
}

// Decide is one tick of a canary release. It is pure: the same plan,
// state, observations and time give the same decision. Observations are
// for the current step only (callers reset them when the step changes).
func Decide(plan Plan, st Progress, obs Observations, now time.Time) Decision {
	if st.Phase != Progressing {
		return Decision{Next: st, Reason: fmt.Sprintf("phase %s: nothing to do", st.Phase)}
	}
	if obs.Err != nil {
		return fail(plan, st, fmt.Sprintf("analysis query failed: %v", obs.Err), nil)
	}
	if obs.Stable.Requests < plan.MinSamples && st.Baseline != nil {
		obs.Stable = *st.Baseline
	}
	checks := evaluate(plan, obs)
	var failed, held []string
	for _, c := range checks {
		switch {
		case c.Held:
			held = append(held, c.Metric)
		case !c.Passed:
			failed = append(failed, fmt.Sprintf("%s %.4g > %.4g", c.Metric, c.Value, c.Threshold))
		}
	}
	if len(failed) > 0 {
		return fail(plan, st, "check failed: "+strings.Join(failed, ", "), checks)
	}
	if obs.Candidate.Requests < plan.MinSamples {
		return Decision{Next: st, Checks: checks,
			Reason: fmt.Sprintf("holding step %d (%g%%): %d of %d samples", st.Step+1, st.Weight, obs.Candidate.Requests, plan.MinSamples)}
	}
	if len(held) > 0 {
		return Decision{Next: st, Checks: checks, Reason: "holding: too few samples for " + strings.Join(held, ", ")}
	}
	if elapsed := now.Sub(st.StepStart); elapsed < plan.Interval {
		return Decision{Next: st, Checks: checks,
			Reason: fmt.Sprintf("step %d (%g%%) healthy; %s of its %s interval left", st.Step+1, st.Weight, (plan.Interval - elapsed).Round(time.Second), plan.Interval)}
	}
	next := st
	next.Failures = 0
	if obs.Stable.Requests >= plan.MinSamples {
		b := obs.Stable
		next.Baseline = &b
	}
	if st.Step+1 >= len(plan.Steps) {
		next.Phase, next.Weight, next.Reason = Promoted, 100, fmt.Sprintf("passed all %d steps", len(plan.Steps))
		return Decision{Next: next, Checks: checks, Reason: next.Reason, Changed: true}
	}
	next.Step++
	next.Weight = plan.Steps[next.Step]
	next.StepStart = now
	next.Reason = fmt.Sprintf("step %d passed; now %g%%", st.Step+1, next.Weight)
	return Decision{Next: next, Checks: checks, Reason: next.Reason, Changed: true}
}

// fail counts a failed check and rolls back at the plan's limit: weight 0
// at once (the caller then unloads the candidate and records the reason).
func fail(plan Plan, st Progress, why string, checks []Check) Decision {
	next := st
	next.Failures++
	if next.Failures >= plan.FailureLimit {
		next.Phase, next.Weight = RolledBack, 0
		next.Reason = fmt.Sprintf("rolled back after %d failed checks: %s", next.Failures, why)
	} else {
		next.Reason = fmt.Sprintf("failed check %d of %d allowed: %s", next.Failures, plan.FailureLimit, why)
	}
	return Decision{Next: next, Checks: checks, Reason: next.Reason, Changed: true}
}

// minLatencySamples is the least number of requests per version the p99
// latency check needs.
const minLatencySamples = 100

// evaluate checks each enabled threshold. A rate needs MinSamples requests
// of the candidate (and of stable, for comparisons), disagreement
// MinSamples compared pairs; with fewer the check is held.
func evaluate(plan Plan, obs Observations) []Check {
	t := plan.Thresholds
	min := plan.MinSamples
	c, s := obs.Candidate, obs.Stable
	rate := func(n, d int64) float64 {
		if d == 0 {
			return 0
		}
		return float64(n) / float64(d)
	}
	var checks []Check
	add := func(metric string, value, threshold float64, enough bool) {
		ch := Check{Metric: metric, Value: value, Threshold: threshold, Held: !enough}
		ch.Passed = enough && value <= threshold
		checks = append(checks, ch)
	}
	// Non-finite outputs fail at once, even before a step has its samples:
	// a model that emits NaN is broken, however little traffic it took.
	if c.NonFinite > 0 || t.MaxNonFiniteRate > 0 {
		add("nonfinite_rate", rate(c.NonFinite, c.Requests), t.MaxNonFiniteRate, c.Requests > 0 && (c.NonFinite > 0 || c.Requests >= min))
	}
	if t.MaxErrorRateIncrease > 0 {
		add("error_rate_increase", rate(c.Errors, c.Requests)-rate(s.Errors, s.Requests), t.MaxErrorRateIncrease, c.Requests >= min && s.Requests >= min)
	}
	if t.MaxP99LatencyRatio > 0 {
		ratio := 0.0
		if s.P99 > 0 {
			ratio = float64(c.P99) / float64(s.P99)
		}
		// A p99 of fewer than 100 requests is their maximum: one pause
		// would fail the check.
		lmin := max(min, minLatencySamples)
		add("p99_latency_ratio", ratio, t.MaxP99LatencyRatio, c.Requests >= lmin && s.Requests >= lmin && s.P99 > 0)
		if ch := &checks[len(checks)-1]; !ch.Held && !ch.Passed && c.P99-s.P99 <= t.P99LatencySlack {
			ch.Passed = true // within the slack: noise, not a regression
		}
	}
	if t.MaxDisagreement > 0 {
		add("disagreement", rate(obs.Disagreements, obs.Compared), t.MaxDisagreement, obs.Compared >= min)
	}
	return checks
}
