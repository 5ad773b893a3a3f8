package release

import (
	"encoding/json"
	"fmt"
	"time"
)

// Canary is the canary part of a model's release state (the "canary"
// field of release.json): the plan, where the release stands, and the last
// analysis. It is written with compare-and-swap, so that any replica may
// tick and exactly one transition per tick wins.
type Canary struct {
	Plan     Plan     `json:"plan"`
	Progress Progress `json:"state"`
	// Started is when the canary began, and who asked for it how.
	Started time.Time `json:"started"`
	Forced  bool      `json:"forced,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	// Analysis is the last tick's, whichever replica took it.
	Analysis *Analysis `json:"analysis,omitempty"`
	// Decided is when a tick last changed the state (a failed check, a
	// step, the end); replicas take one such change per tick period.
	Decided time.Time `json:"decided,omitzero"`
	// Claimed is the replica that claimed the last tick whose webhooks had
	// to be called, and when: one replica calls them per tick period.
	Claimed *Claim `json:"claimed,omitempty"`
	// Told is how many events of the history have been announced (the
	// notifiers, the post-rollout and rollback webhooks): the canary's
	// own events from its start on are told once, by one replica.
	Told int `json:"told,omitempty"`
}

// Claim is a replica's claim on a tick.
type Claim struct {
	Replica string    `json:"replica"`
	At      time.Time `json:"at"`
}

// Active reports whether the release routes traffic to its candidate.
func (r *Canary) Active() bool {
	return r != nil && r.Progress.Candidate != "" && (r.Progress.Phase == Progressing || r.Progress.Phase == Paused)
}

// Epoch names the current step of the release: observations are kept per
// epoch and start afresh when it changes.
func (r *Canary) Epoch() string {
	if r == nil {
		return ""
	}
	return fmt.Sprintf("%s/%d/%d", r.Progress.Candidate, r.Progress.Step, r.Progress.StepStart.UnixNano())
}

// Analysis is what one tick saw and decided.
type Analysis struct {
	Time         time.Time    `json:"time"`
	Source       string       `json:"source"`            // "in-process" or "prometheus"
	Replica      string       `json:"replica,omitempty"` // the gateway that ticked
	Observations Observations `json:"observations"`
	Error        string       `json:"error,omitempty"` // the analysis query error, if any
	Checks       []Check      `json:"checks,omitempty"`
	Reason       string       `json:"reason"`
}

// planJSON is Plan with the interval as a Go duration string ("1m0s").
type planJSON struct {
	Steps        []float64 `json:"steps"`
	Interval     string    `json:"interval"`
	MinSamples   int64     `json:"min_samples"`
	FailureLimit int       `json:"failure_limit"`
	Alpha        float64   `json:"alpha,omitempty"`
	Beta         float64   `json:"beta,omitempty"`
	Thresholds
	P99LatencySlack string      `json:"p99_latency_slack"`
	Pauses          []StepPause `json:"pauses,omitempty"`
	Webhooks        []Webhook   `json:"webhooks,omitempty"`
	Notify          []Notifier  `json:"notify,omitempty"`
	Match           []MatchRule `json:"match,omitempty"`
}

// MarshalJSON writes the interval as a duration string.
func (p Plan) MarshalJSON() ([]byte, error) {
	return json.Marshal(planJSON{Steps: p.Steps, Interval: p.Interval.String(), MinSamples: p.MinSamples, FailureLimit: p.FailureLimit,
		Alpha: p.Alpha, Beta: p.Beta, Thresholds: p.Thresholds, P99LatencySlack: p.P99LatencySlack.String(),
		Pauses: p.Pauses, Webhooks: p.Webhooks, Notify: p.Notify, Match: p.Match})
}

// UnmarshalJSON reads the interval as a duration string.
func (p *Plan) UnmarshalJSON(data []byte) error {
	var v planJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	d, err := time.ParseDuration(v.Interval)
	if err != nil {
		return fmt.Errorf("canary plan: interval: %w", err)
	}
	slack := time.Duration(0)
	if v.P99LatencySlack != "" {
		if slack, err = time.ParseDuration(v.P99LatencySlack); err != nil {
			return fmt.Errorf("canary plan: p99_latency_slack: %w", err)
		}
	}
	*p = Plan{Steps: v.Steps, Interval: d, MinSamples: v.MinSamples, FailureLimit: v.FailureLimit,
		Alpha: v.Alpha, Beta: v.Beta, Thresholds: v.Thresholds,
		Pauses: v.Pauses, Webhooks: v.Webhooks, Notify: v.Notify, Match: v.Match}
	p.P99LatencySlack = slack
	return nil
}
