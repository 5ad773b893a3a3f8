package release

import (
	"cmp"
	"fmt"
	"math"
	"slices"
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
	// Hold, when set, is what the canary waits for before it moves on
	// (controls.go): a pre-rollout or confirm-rollout webhook before any
	// traffic (weight 0), a manual step, or a confirm-promotion webhook
	// after the last step.
	Hold *Hold `json:"hold,omitempty"`
}

// What a canary can wait for (Hold.For).
const (
	HoldPreRollout       = "pre-rollout"
	HoldConfirmRollout   = "confirm-rollout"
	HoldPause            = "pause"
	HoldConfirmPromotion = "confirm-promotion"
)

// Hold is what a canary waits for, since when, and until when (a timed
// pause; zero: until resumed or approved).
type Hold struct {
	For   string    `json:"for"`
	Since time.Time `json:"since"`
	Until time.Time `json:"until,omitzero"`
}

// BeforeTraffic reports whether the canary waits before its candidate
// takes any traffic (matched requests included).
func (p Progress) BeforeTraffic() bool {
	return p.Hold != nil && (p.Hold.For == HoldPreRollout || p.Hold.For == HoldConfirmRollout)
}

// VersionStats are one version's numbers over the current step.
type VersionStats struct {
	Requests  int64         `json:"requests"`
	Errors    int64         `json:"errors"`
	NonFinite int64         `json:"nonfinite"`
	P99       time.Duration `json:"p99_ns"`
	// P99Low, when set, is the lower end of the histogram bucket holding
	// the p99 (P99 being its upper end): a step's baseline keeps it.
	P99Low time.Duration `json:"p99_low_ns,omitempty"`
	// Latency is the histogram of the served requests' latency, buckets
	// in increasing order; the latency check counts the candidate's
	// requests slower than a limit in it.
	Latency []LatencyBucket `json:"-"`
}

// LatencyBucket is one bucket of a latency histogram: Count requests took
// more than the previous bucket's Le (0 for the first) and at most Le.
type LatencyBucket struct {
	Le    time.Duration
	Count int64
}

// slower brackets the number of h's requests slower than a limit, from
// below and from above: at least counts the buckets wholly above the
// limit (their lower end at least it), atMost also those that straddle it
// (their upper end above it). n is all of h's requests. Nothing is assumed
// about where requests lie within a bucket.
func slower(h []LatencyBucket, limit time.Duration) (atLeast, atMost, n int64) {
	var lower time.Duration
	for _, b := range h {
		n += b.Count
		if lower >= limit {
			atLeast += b.Count
		}
		if b.Le > limit {
			atMost += b.Count
		}
		lower = b.Le
	}
	return atLeast, atMost, n
}

// p99Bracket is the bucket of h that holds its 99th percentile: the p99 is
// more than lo and at most hi. ok is false for an empty histogram or a p99
// in the last, unbounded bucket.
func p99Bracket(h []LatencyBucket) (lo, hi time.Duration, ok bool) {
	var n int64
	for _, b := range h {
		n += b.Count
	}
	if n == 0 {
		return 0, 0, false
	}
	rank := int64(math.Ceil(0.99 * float64(n)))
	var cum int64
	var lower time.Duration
	for _, b := range h {
		cum += b.Count
		if cum >= rank {
			return lower, b.Le, b.Le != math.MaxInt64
		}
		lower = b.Le
	}
	return 0, 0, false
}

// Observations are what the analysis saw during the current step.
type Observations struct {
	// Stable and Candidate are the weighted split: the requests the
	// weight sent to each version (and the candidate's shadow copies).
	// The checks compare these two alone.
	Stable    VersionStats `json:"stable"`
	Candidate VersionStats `json:"candidate"`
	// Matched is the candidate's cohort of requests sent to it by the
	// plan's match rules (a header or a cookie) whatever the weight. They
	// are no random sample of the traffic, so no check reads them: they
	// are reported beside the split, not compared with stable.
	Matched VersionStats `json:"matched,omitzero"`
	// Compared counts requests scored by both versions (shadow pairs);
	// Disagreements those on which they disagreed.
	Compared      int64 `json:"compared"`
	Disagreements int64 `json:"disagreements"`
	// Distinct counts the distinct inputs (by hash) among the compared
	// requests, DistinctDisagreements those on which the versions ever
	// disagreed: the disagreement test counts each input once.
	Distinct              int64 `json:"distinct"`
	DistinctDisagreements int64 `json:"distinct_disagreements"`
	// Err is set when the analysis source could not be queried.
	Err error `json:"-"`
	// Hooks are the webhooks this tick called (the replica that claimed
	// the tick calls them; controls.go): their answers feed the holds and
	// the rollout check.
	Hooks []HookCall `json:"hooks,omitempty"`
}

// HookCall is one webhook's answer in a tick.
type HookCall struct {
	Type     HookType `json:"type"`
	Name     string   `json:"name"`
	OK       bool     `json:"ok"`               // a 2xx answer
	Status   int      `json:"status,omitempty"` // the last HTTP status, 0 when none came
	Error    string   `json:"error,omitempty"`
	Attempts int      `json:"attempts"`
}

// hooksAnswered says whether every hook of type t was called in this tick
// and answered 2xx, and describes the first that did not.
func hooksAnswered(plan Plan, calls []HookCall, t HookType) (called, ok bool, why string) {
	want := plan.Hooks(t)
	for _, h := range want {
		i := slices.IndexFunc(calls, func(c HookCall) bool { return c.Type == t && c.Name == h.Name })
		if i < 0 {
			return false, false, fmt.Sprintf("%s webhook %q not called yet", t, h.Name)
		}
		if c := calls[i]; !c.OK {
			why := c.Error
			if c.Status != 0 {
				why = fmt.Sprintf("answered %d", c.Status)
				if c.Error != "" {
					why += ": " + c.Error
				}
			}
			return true, false, fmt.Sprintf("%s webhook %q %s", t, h.Name, why)
		}
	}
	return true, true, ""
}

// Check is one check of a step: its estimate, the confidence bounds on
// the true value, the samples they rest on, and what it decided.
type Check struct {
	Metric string `json:"metric"`
	// Value is the estimate: a rate (errors, non-finite answers,
	// disagreeing inputs, requests slower than the latency limit) or, for
	// error_rate_increase, a difference of two rates.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Lower and Upper bound the true value: Lower at this check's share of
	// the canary's false-rollback rate (Alpha over the statistical checks
	// of every step; a check fails when Lower > Threshold), Upper at Beta,
	// the chance of a wrong pass (it passes when Upper <= Threshold). Both
	// hold at every tick of the step (anytime-valid confidence sequences).
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	// Samples and Events are what the estimate counts: requests, compared
	// distinct inputs or candidate requests with a latency.
	Samples int64 `json:"samples"`
	Events  int64 `json:"events"`
	// Detail says what was counted, in words.
	Detail string `json:"detail,omitempty"`
	// Decision is "pass", "fail" or "hold" (the evidence is not enough
	// either way yet).
	Decision string `json:"decision"`
	// Held and Passed say the same as Decision, for readers of earlier
	// release states.
	Held   bool `json:"held,omitempty"`
	Passed bool `json:"passed"`
}

// Decisions of a check.
const (
	CheckPass = "pass"
	CheckFail = "fail"
	CheckHold = "hold"
)

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
//
// Each check is a sequential test that stays valid however often it is
// looked at (see Check): a check fails as soon as its evidence is enough,
// mid-step and before MinSamples, and FailureLimit failed ticks in a row
// roll back; a step passes when its interval is over, the candidate has
// MinSamples requests, and every check passed.
func Decide(plan Plan, st Progress, obs Observations, now time.Time) Decision {
	if st.Phase != Progressing {
		return Decision{Next: st, Reason: fmt.Sprintf("phase %s: nothing to do", st.Phase)}
	}
	if st.BeforeTraffic() {
		return beforeTraffic(plan, st, obs, now)
	}
	if called, ok, why := hooksAnswered(plan, obs.Hooks, HookRollout); called && !ok {
		return fail(plan, st, why, nil)
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
		switch c.Decision {
		case CheckHold:
			held = append(held, fmt.Sprintf("%s %.3g (bound %.3g > %.3g)", c.Metric, c.Value, c.Upper, c.Threshold))
		case CheckFail:
			failed = append(failed, fmt.Sprintf("%s %.3g > %.3g (at least %.3g, %d of %d)", c.Metric, c.Value, c.Threshold, c.Lower, c.Events, c.Samples))
		}
	}
	if len(failed) > 0 {
		return fail(plan, st, "check failed: "+strings.Join(failed, ", "), checks)
	}
	if st.Hold != nil {
		return holding(plan, st, obs, checks, now)
	}
	if obs.Candidate.Requests < plan.MinSamples {
		return Decision{Next: st, Checks: checks,
			Reason: fmt.Sprintf("holding step %d (%g%%): %d of %d samples", st.Step+1, st.Weight, obs.Candidate.Requests, plan.MinSamples)}
	}
	if len(held) > 0 {
		return Decision{Next: st, Checks: checks, Reason: "holding: not yet enough evidence: " + strings.Join(held, ", ")}
	}
	if elapsed := now.Sub(st.StepStart); elapsed < plan.Interval {
		return Decision{Next: st, Checks: checks,
			Reason: fmt.Sprintf("step %d (%g%%) healthy; %s of its %s interval left", st.Step+1, st.Weight, (plan.Interval - elapsed).Round(time.Second), plan.Interval)}
	}
	next := st
	next.Failures = 0
	if obs.Stable.Requests >= plan.MinSamples {
		b := obs.Stable
		if lo, hi, ok := p99Bracket(b.Latency); ok {
			b.P99Low, b.P99 = lo, hi // the bracket outlives the histogram
		}
		b.Latency = nil
		next.Baseline = &b
	}
	return advance(plan, next, checks, now, false)
}

// advance moves a canary past its current step, which has passed: into
// the pause that follows it (unless paused is set: the pause is over),
// then to the next step, or after the last one into the wait for the
// confirm-promotion webhooks, or to promotion.
func advance(plan Plan, next Progress, checks []Check, now time.Time, paused bool) Decision {
	step := next.Step
	changed := func() Decision { return Decision{Next: next, Checks: checks, Reason: next.Reason, Changed: true} }
	if p, ok := plan.PauseAfter(step); ok && !paused {
		next.Hold = &Hold{For: HoldPause, Since: now}
		next.Reason = fmt.Sprintf("step %d (%g%%) passed; paused until `promote canary resume`", step+1, next.Weight)
		if p.For > 0 {
			next.Hold.Until = now.Add(p.For)
			next.Reason = fmt.Sprintf("step %d (%g%%) passed; paused for %s", step+1, next.Weight, p.For)
		}
		return changed()
	}
	next.Hold = nil
	if step+1 >= len(plan.Steps) {
		if len(plan.Hooks(HookConfirmPromotion)) > 0 {
			next.Hold = &Hold{For: HoldConfirmPromotion, Since: now}
			next.Reason = fmt.Sprintf("passed all %d steps; waiting for the confirm-promotion webhooks", len(plan.Steps))
			return changed()
		}
		next.Phase, next.Weight, next.Reason = Promoted, 100, fmt.Sprintf("passed all %d steps", len(plan.Steps))
		return changed()
	}
	next.Step++
	next.Weight = plan.Steps[next.Step]
	next.StepStart = now
	next.Reason = fmt.Sprintf("step %d passed; now %g%%", step+1, next.Weight)
	return changed()
}

// holding decides a tick of a canary that waits after a step (a pause, or
// the confirm-promotion webhooks); its checks have passed or held.
func holding(plan Plan, st Progress, obs Observations, checks []Check, now time.Time) Decision {
	h := st.Hold
	hold := func(reason string) Decision { return Decision{Next: st, Checks: checks, Reason: reason} }
	switch h.For {
	case HoldConfirmPromotion:
		if _, ok, why := hooksAnswered(plan, obs.Hooks, HookConfirmPromotion); !ok {
			return hold("waiting to promote: " + why)
		}
		next := st
		next.Hold = nil
		next.Phase, next.Weight = Promoted, 100
		next.Reason = fmt.Sprintf("passed all %d steps; the confirm-promotion webhooks approved", len(plan.Steps))
		return Decision{Next: next, Checks: checks, Reason: next.Reason, Changed: true}
	case HoldPause:
		if h.Until.IsZero() {
			return hold(fmt.Sprintf("paused after step %d (%g%%): waiting for `promote canary resume`", st.Step+1, st.Weight))
		}
		if now.Before(h.Until) {
			return hold(fmt.Sprintf("paused after step %d (%g%%): %s left", st.Step+1, st.Weight, h.Until.Sub(now).Round(time.Second)))
		}
		return advance(plan, st, checks, now, true)
	}
	return hold("waiting for " + h.For)
}

// beforeTraffic decides a tick of a canary that waits at weight 0 for its
// pre-rollout webhooks (a failure stops it) or its confirm-rollout ones (it
// waits until they approve).
func beforeTraffic(plan Plan, st Progress, obs Observations, now time.Time) Decision {
	hold := func(reason string) Decision { return Decision{Next: st, Reason: reason} }
	next := st
	switch st.Hold.For {
	case HoldPreRollout:
		called, ok, why := hooksAnswered(plan, obs.Hooks, HookPreRollout)
		switch {
		case !called:
			return hold("waiting for the pre-rollout webhooks: " + why)
		case !ok:
			next.Phase, next.Weight, next.Hold = RolledBack, 0, nil
			next.Reason = "stopped before any traffic: " + why
			return Decision{Next: next, Reason: next.Reason, Changed: true}
		}
		if len(plan.Hooks(HookConfirmRollout)) > 0 {
			next.Hold = &Hold{For: HoldConfirmRollout, Since: now}
			next.Reason = "the pre-rollout webhooks passed; waiting for the confirm-rollout webhooks"
			return Decision{Next: next, Reason: next.Reason, Changed: true}
		}
	case HoldConfirmRollout:
		if _, ok, why := hooksAnswered(plan, obs.Hooks, HookConfirmRollout); !ok {
			return hold("waiting to start: " + why)
		}
	}
	next.Hold = nil
	next.Weight, next.StepStart = plan.Steps[0], now
	next.Reason = fmt.Sprintf("the webhooks approved; now %g%%", next.Weight)
	return Decision{Next: next, Reason: next.Reason, Changed: true}
}

// FirstHold is where a canary of plan starts: waiting at weight 0 for its
// pre-rollout or confirm-rollout webhooks, or nil (traffic at once).
func FirstHold(plan Plan, now time.Time) *Hold {
	switch {
	case len(plan.Hooks(HookPreRollout)) > 0:
		return &Hold{For: HoldPreRollout, Since: now}
	case len(plan.Hooks(HookConfirmRollout)) > 0:
		return &Hold{For: HoldConfirmRollout, Since: now}
	}
	return nil
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

// minLatencySamples is the least number of stable requests whose p99 the
// latency check takes as the reference (fewer: the baseline's, or hold).
const minLatencySamples = 100

// latencyTail is the share of requests a p99 leaves above it: a candidate
// whose p99 is within the limit has at most this share slower than it.
const latencyTail = 0.01

// statChecks is the number of statistical checks plan enables: the tests
// its false-rollback rate is spread over in each step.
func statChecks(plan Plan) int {
	t := plan.Thresholds
	n := 0
	for _, on := range []bool{t.MaxErrorRateIncrease > 0, t.MaxP99LatencyRatio > 0, t.MaxDisagreement > 0, t.MaxNonFiniteRate > 0} {
		if on {
			n++
		}
	}
	return n
}

// evaluate runs each enabled check, on the weighted split only (stable
// and candidate; obs.Matched is not evidence about the candidate's share
// of the traffic). Every statistical check of every step
// gets an equal share of the plan's false-rollback rate (a union bound:
// the canary as a whole rolls back a candidate within its thresholds with
// probability at most Alpha), and passes at the plan's Beta.
func evaluate(plan Plan, obs Observations) []Check {
	t := plan.Thresholds
	c, s := obs.Candidate, obs.Stable
	alpha := plan.alpha() / float64(max(1, statChecks(plan)*len(plan.Steps)))
	beta := plan.beta()
	var checks []Check
	// rate tests k events in n trials against threshold.
	rate := func(metric string, k, n int64, threshold float64, detail string) {
		ch := Check{Metric: metric, Threshold: threshold, Samples: n, Events: k, Detail: detail}
		if n > 0 {
			ch.Value = float64(k) / float64(n)
		}
		ch.Lower, _ = RateBounds(k, n, threshold, alpha)
		_, ch.Upper = RateBounds(k, n, threshold, beta)
		checks = append(checks, decided(ch))
	}

	// Non-finite answers: with the default limit of 0 any one fails at
	// once (a model that never emits NaN cannot have emitted one), and a
	// step passes only with none.
	if t.MaxNonFiniteRate > 0 {
		rate("nonfinite_rate", c.NonFinite, c.Requests, t.MaxNonFiniteRate, "candidate answers with NaN or Inf")
	} else {
		ch := Check{Metric: "nonfinite_rate", Samples: c.Requests, Events: c.NonFinite, Detail: "candidate answers with NaN or Inf (none allowed)"}
		if c.Requests > 0 {
			ch.Value = float64(c.NonFinite) / float64(c.Requests)
		}
		ch.Lower, ch.Upper = ch.Value, ch.Value
		ch.Decision = CheckPass
		if c.NonFinite > 0 {
			ch.Decision = CheckFail
		}
		checks = append(checks, flags(ch))
	}
	if t.MaxErrorRateIncrease > 0 {
		ch := Check{Metric: "error_rate_increase", Threshold: t.MaxErrorRateIncrease, Samples: c.Requests, Events: c.Errors,
			Detail: fmt.Sprintf("candidate %d errors in %d requests, stable %d in %d", c.Errors, c.Requests, s.Errors, s.Requests)}
		if c.Requests > 0 {
			ch.Value = float64(c.Errors) / float64(c.Requests)
		}
		if s.Requests > 0 {
			ch.Value -= float64(s.Errors) / float64(s.Requests)
		}
		ch.Lower, _ = DiffBounds(c.Errors, c.Requests, s.Errors, s.Requests, t.MaxErrorRateIncrease, alpha)
		_, ch.Upper = DiffBounds(c.Errors, c.Requests, s.Errors, s.Requests, t.MaxErrorRateIncrease, beta)
		checks = append(checks, decided(ch))
	}
	if t.MaxP99LatencyRatio > 0 {
		checks = append(checks, latencyCheck(t, c, s, alpha, beta))
	}
	if t.MaxDisagreement > 0 {
		k, n := obs.DistinctDisagreements, obs.Distinct
		detail := fmt.Sprintf("%d of %d distinct inputs disagreed (%d of %d compared requests)", k, n, obs.Disagreements, obs.Compared)
		if n == 0 && obs.Compared > 0 {
			// A source without distinct counts (a custom query that gives
			// none): each compared request counts.
			k, n = obs.Disagreements, obs.Compared
			detail = fmt.Sprintf("%d of %d compared requests disagreed (no distinct counts)", k, n)
		}
		rate("disagreement", k, n, t.MaxDisagreement, detail)
	}
	return checks
}

// latencyCheck tests the share of candidate requests slower than the
// limit, MaxP99LatencyRatio times stable's p99 (or stable's p99 plus the
// slack, when that is more), against 1 %: the candidate's p99 is within
// the limit when at most 1 % of its requests are slower.
//
// Latency is known only to a histogram bucket, so every figure is taken on
// the side that favours the decision not taken: a failure counts only the
// candidate's requests certainly slower than the limit drawn at the top of
// stable's p99 bucket, a pass counts every request possibly slower than
// the limit drawn at the bottom of it. A candidate within a bucket's width
// of the limit may therefore hold rather than pass or fail; neither error
// rate grows.
func latencyCheck(t Thresholds, c, s VersionStats, alpha, beta float64) Check {
	ch := Check{Metric: "p99_latency", Threshold: latencyTail}
	lo, hi, ok := p99Bracket(s.Latency)
	if !ok && len(s.Latency) == 0 && s.P99 > 0 { // a baseline: its bracket, or (older states) its p99
		lo, hi, ok = cmp.Or(s.P99Low, s.P99), s.P99, true
	}
	switch {
	case s.Requests < minLatencySamples:
		ch.Decision, ch.Upper = CheckHold, 1
		ch.Detail = fmt.Sprintf("stable p99 from %d requests; %d needed", s.Requests, minLatencySamples)
		return flags(ch)
	case !ok:
		ch.Decision, ch.Upper = CheckHold, 1
		ch.Detail = "stable's p99 is beyond its histogram's last bucket"
		return flags(ch)
	case len(c.Latency) == 0:
		ch.Decision, ch.Upper = CheckHold, 1
		ch.Detail = "no latency histogram of the candidate"
		return flags(ch)
	}
	limit := func(p99 time.Duration) time.Duration {
		return max(time.Duration(float64(p99)*t.MaxP99LatencyRatio), p99+t.P99LatencySlack)
	}
	failLimit, passLimit := limit(hi), limit(lo)
	kFail, _, n := slower(c.Latency, failLimit)
	_, kPass, _ := slower(c.Latency, passLimit)
	ch.Samples, ch.Events = n, kFail
	if n > 0 {
		ch.Value = float64(kFail) / float64(n)
	}
	ch.Lower, _ = RateBounds(kFail, n, latencyTail, alpha)
	_, ch.Upper = RateBounds(kPass, n, latencyTail, beta)
	ch.Detail = fmt.Sprintf("stable p99 in (%s, %s]: %d of %d candidate requests certainly slower than %s, %d possibly slower than %s",
		lo, hi, kFail, n, failLimit, kPass, passLimit)
	return decided(ch)
}

// decided sets a statistical check's decision from its bounds.
func decided(ch Check) Check {
	switch {
	case ch.Lower > ch.Threshold:
		ch.Decision = CheckFail
	case ch.Upper <= ch.Threshold:
		ch.Decision = CheckPass
	default:
		ch.Decision = CheckHold
	}
	return flags(ch)
}

func flags(ch Check) Check {
	ch.Held, ch.Passed = ch.Decision == CheckHold, ch.Decision == CheckPass
	return ch
}
