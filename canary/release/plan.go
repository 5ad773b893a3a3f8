package release

import (
	"cmp"
	"errors"
	"fmt"
	"time"
)

// Thresholds are the limits each step's observations are checked against.
// A zero limit disables its check.
type Thresholds struct {
	// Each threshold is the effect a check must catch: the check fails a
	// step when the evidence says the candidate's true rate is above it, and
	// passes it when the evidence says the rate is at most it.
	//
	// MaxErrorRateIncrease: candidate error rate minus stable error rate
	// (fractions, e.g. 0.01 for one point).
	MaxErrorRateIncrease float64 `json:"max_error_rate_increase"`
	// MaxP99LatencyRatio: candidate p99 latency over stable p99, tested as
	// the share of candidate requests slower than this many times stable's
	// p99 (at most 1 %: the candidate's p99 is within the limit).
	MaxP99LatencyRatio float64 `json:"max_p99_latency_ratio"`
	// MaxNonFiniteRate: the fraction of candidate answers with NaN or Inf.
	MaxNonFiniteRate float64 `json:"max_nonfinite_rate"`
	// MaxDisagreement: the fraction of distinct inputs scored by both
	// versions on which they disagree (by each output's kind: equal labels,
	// the same top-1 class, the same side of a probability threshold, or a
	// regression within tolerance).
	MaxDisagreement float64 `json:"max_disagreement"`
	// P99LatencySlack: a candidate p99 at most this much above stable's
	// passes the latency check whatever the ratio, so that noise on a
	// sub-millisecond model does not roll it back.
	P99LatencySlack time.Duration `json:"-"`
}

// Plan is a declarative canary release: the weights of the steps, how long
// each lasts, how many samples a step needs, and the thresholds.
type Plan struct {
	// Steps are candidate weights in percent, increasing, ending at 100.
	Steps []float64 `json:"steps"`
	// Interval is the least time a step lasts.
	Interval time.Duration `json:"interval"`
	// MinSamples is the least number of candidate requests a step needs
	// before it can pass.
	MinSamples int64 `json:"min_samples"`
	// FailureLimit is how many failed checks in a row roll back.
	FailureLimit int `json:"failure_limit"`
	// Alpha is the false-rollback rate the canary allows: the chance that
	// a candidate whose true rates are all within their thresholds is
	// rolled back, over the whole canary (every check, every step, every
	// tick). It is spread evenly over the statistical checks of all steps.
	// A step resumed after a pause, or whose in-process counts a restart
	// lost, starts a fresh sequence that the split does not charge, and a
	// failed analysis query counts as a failed check. 0 means DefaultAlpha.
	Alpha float64 `json:"alpha,omitempty"`
	// Beta is the chance that one check passes one step although the
	// candidate's true rate is above the check's threshold; a candidate is
	// promoted only after passing every check in every step. 0 means
	// DefaultBeta.
	Beta float64 `json:"beta,omitempty"`
	Thresholds

	// The rollout controls (controls.go): manual steps, webhooks,
	// notifications of phase changes, and requests matched to the
	// candidate by header or cookie.
	Pauses   []StepPause `json:"pauses,omitempty"`
	Webhooks []Webhook   `json:"webhooks,omitempty"`
	Notify   []Notifier  `json:"notify,omitempty"`
	Match    []MatchRule `json:"match,omitempty"`
}

// DefaultAlpha and DefaultBeta are a canary's false-rollback rate and a
// check's chance of passing a step it should not.
const (
	DefaultAlpha = 0.01
	DefaultBeta  = 0.05
)

func (p Plan) alpha() float64 { return cmp.Or(p.Alpha, DefaultAlpha) }
func (p Plan) beta() float64  { return cmp.Or(p.Beta, DefaultBeta) }

// DefaultPlan is 5, 25, 50 and 100 % a minute each, 200 samples per step,
// rollback after 2 failed checks.
func DefaultPlan() Plan {
	return Plan{
		Steps:        []float64{5, 25, 50, 100},
		Interval:     time.Minute,
		MinSamples:   200,
		FailureLimit: 2,
		Thresholds: Thresholds{
			MaxErrorRateIncrease: 0.01,
			MaxP99LatencyRatio:   1.5,
			MaxNonFiniteRate:     0,
			MaxDisagreement:      0.05,
			P99LatencySlack:      2 * time.Millisecond,
		},
	}
}

// ErrInvalidPlan wraps every plan validation error.
var ErrInvalidPlan = errors.New("invalid canary plan")

// Validate reports every problem of the plan at once.
func (p Plan) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidPlan, fmt.Sprintf(format, args...)))
	}
	if len(p.Steps) == 0 {
		bad("steps: at least one step is needed (e.g. 5,25,50,100)")
	}
	for i, w := range p.Steps {
		if w <= 0 || w > 100 {
			bad("steps: weight %g is not in (0, 100]", w)
		}
		if i > 0 && w <= p.Steps[i-1] {
			bad("steps: weights must increase, but %g follows %g", w, p.Steps[i-1])
		}
	}
	if n := len(p.Steps); n > 0 && p.Steps[n-1] != 100 {
		bad("steps: the last step must be 100, not %g", p.Steps[n-1])
	}
	if p.Interval <= 0 {
		bad("interval: must be positive, got %s", p.Interval)
	}
	if p.MinSamples < 1 {
		bad("min_samples: must be at least 1, got %d", p.MinSamples)
	}
	if p.FailureLimit < 1 {
		bad("failure_limit: must be at least 1, got %d", p.FailureLimit)
	}
	t := p.Thresholds
	for name, v := range map[string]float64{
		"max_error_rate_increase": t.MaxErrorRateIncrease, "max_nonfinite_rate": t.MaxNonFiniteRate, "max_disagreement": t.MaxDisagreement,
	} {
		if v < 0 || v > 1 {
			bad("%s: must be a fraction in [0, 1], got %g", name, v)
		}
	}
	if !(p.Alpha >= 0 && p.Alpha < 1) { // NaN too
		bad("alpha: must be in (0, 1) (0 for the default %g), got %g", DefaultAlpha, p.Alpha)
	}
	if !(p.Beta >= 0 && p.Beta < 1) {
		bad("beta: must be in (0, 1) (0 for the default %g), got %g", DefaultBeta, p.Beta)
	}
	if t.P99LatencySlack < 0 {
		bad("p99_latency_slack: must not be negative, got %s", t.P99LatencySlack)
	}
	if t.MaxP99LatencyRatio < 0 {
		bad("max_p99_latency_ratio: must not be negative, got %g", t.MaxP99LatencyRatio)
	}
	p.validateControls(bad)
	return errors.Join(errs...)
}
