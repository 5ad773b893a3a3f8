package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Errors of the transitions.
var (
	// ErrRefused: the transition is not allowed in this state (a canary in
	// progress, no stable version, an ungated version, ...). Its message
	// says why and what to do.
	ErrRefused = errors.New("release: refused")
	// ErrStaleTick: a canary tick was decided on a state that has changed
	// since (another replica ticked, an operator acted); it is dropped.
	ErrStaleTick = errors.New("canary state changed since the tick read it")
)

// refused is an ErrRefused with the detail.
func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefused, fmt.Sprintf(format, args...))
}

// A Transition is one event of a release: a push, a change of the stable
// version, a canary's start, tick, pause, resume, promotion or abort, a
// rollback. Apply runs it.
type Transition interface {
	// apply changes s (a copy the caller owns) as the event asks at now,
	// or refuses; changing nothing is a no-op.
	apply(s *State, now time.Time) error
}

// Apply is the release state after t at now, or why t is refused; it is
// pure. A transition that changes the state sets Updated to now; one that
// changes nothing returns s as it is. Every transition only appends to the
// history, which Apply checks.
func Apply(s State, t Transition, now time.Time) (State, error) {
	next, _, err := apply(s, t, now)
	return next, err
}

// apply is Apply, and whether t changed the state.
func apply(s State, t Transition, now time.Time) (State, bool, error) {
	before, err := json.Marshal(s)
	if err != nil {
		return State{}, false, fmt.Errorf("release: encode the state of model %q: %w", s.Model, err)
	}
	next := s
	next.History = slices.Clone(s.History)
	if s.Canary != nil {
		c := *s.Canary
		next.Canary = &c
	}
	if err := t.apply(&next, now.UTC()); err != nil {
		return State{}, false, err
	}
	after, err := json.Marshal(next)
	if err != nil {
		return State{}, false, fmt.Errorf("release: encode the state of model %q: %w", s.Model, err)
	}
	if bytes.Equal(before, after) {
		return s, false, nil
	}
	if err := AppendOnly(s.History, next.History); err != nil {
		return State{}, false, fmt.Errorf("%w: model %q: %v", ErrRefused, s.Model, err)
	}
	if err := link(next.History, len(s.History)); err != nil {
		return State{}, false, fmt.Errorf("release: model %q: %w", s.Model, err)
	}
	if next.History == nil {
		next.History = []Event{} // "history": [], not null
	}
	next.Updated = now.UTC()
	return next, true, nil
}

// AppendOnly reports a history after that rewrote or dropped an event of
// before: the invariant of every release state.
func AppendOnly(before, after []Event) error {
	if len(after) < len(before) {
		return errors.New("the release history is append-only: the update dropped earlier events")
	}
	if len(before) == 0 {
		return nil
	}
	old, err := json.Marshal(before)
	if err != nil {
		return err
	}
	if prefix, err := json.Marshal(after[:len(before)]); err != nil || !bytes.Equal(prefix, old) {
		return errors.New("the release history is append-only: the update rewrote earlier events")
	}
	return nil
}

// Decode reads model's release.json; no bytes (nil: there is none yet) is
// the zero state of the model.
func Decode(model string, b []byte) (State, error) {
	if len(b) == 0 {
		return State{Model: model}, nil
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("release: decode the release state of model %q: %w", model, err)
	}
	if s.Model == "" {
		s.Model = model
	}
	if s.Model != model {
		return State{}, fmt.Errorf("release: the release state of model %q names model %q", model, s.Model)
	}
	return s, nil
}

// Encode writes s as release.json (indented).
func Encode(s State) ([]byte, error) {
	if s.History == nil {
		s.History = []Event{}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("release: encode the release state of model %q: %w", s.Model, err)
	}
	return b, nil
}

// Update is t at now as a change of release.json's bytes, for a store's
// compare-and-swap (registry.UpdateReleaseDoc): decode, Apply, encode.
// When t changes nothing it returns the bytes it was given, which the store
// does not write.
func Update(model string, t Transition, now time.Time) func(cur []byte) ([]byte, error) {
	return func(cur []byte) ([]byte, error) {
		s, err := Decode(model, cur)
		if err != nil {
			return nil, err
		}
		next, changed, err := apply(s, t, now)
		if err != nil {
			return nil, err
		}
		if !changed {
			return cur, nil
		}
		next.Model = model
		return Encode(next)
	}
}

// Gate is a version's gate verdict, as its stored gate report says.
type Gate int

const (
	// GateNotRun: the version has no gate report.
	GateNotRun Gate = iota
	// GatePassed: its gate report says "pass".
	GatePassed
	// GateFailed: its gate report says "fail".
	GateFailed
)

// gated is the rule that a version takes traffic from a stable change or a
// canary only with a passed gate, unless forced with a reason.
func gated(model, version string, g Gate, forced bool, reason string) error {
	if forced {
		if reason == "" {
			return refused("overriding the gates of %s version %s needs a reason", model, version)
		}
		return nil
	}
	switch g {
	case GatePassed:
		return nil
	case GateFailed:
		return refused("%s version %s failed its gates (see `promote show %s %s`); fix the model, or override with --force --reason TEXT", model, version, model, version)
	}
	return refused("%s version %s has not been gated: run `promote gate %s %s --holdout CSV` first, or override with --force --reason TEXT", model, version, model, version)
}

// Push records the push of a version: the first version of a model becomes
// its stable version (ActionInitialStable); later pushes change nothing.
type Push struct {
	Version string
}

func (t Push) apply(s *State, now time.Time) error {
	if s.Stable != "" {
		return nil
	}
	s.Stable = t.Version
	s.History = append(s.History, Event{Time: now, Action: ActionInitialStable, Version: t.Version})
	return nil
}

// SetStable makes Version the stable version (ActionStable, with the one
// it replaces), which needs a passed gate (Gate) unless Forced with a
// Reason. Setting the version that is already stable changes nothing.
type SetStable struct {
	Version string
	Gate    Gate
	Forced  bool
	Reason  string
}

func (t SetStable) apply(s *State, now time.Time) error {
	if s.Stable == t.Version {
		return nil
	}
	if err := gated(s.Model, t.Version, t.Gate, t.Forced, t.Reason); err != nil {
		return err
	}
	s.History = append(s.History, Event{Time: now, Action: ActionStable, Version: t.Version, From: s.Stable, Forced: t.Forced, Reason: t.Reason})
	s.Stable = t.Version
	return nil
}

// madeStable reports whether an event with action made its Version the
// stable version, so that Rollback finds the version before stable in its
// From. Other events name stable too: an operator's rollback of a canary
// names stable with the rejected candidate as From.
func madeStable(action string) bool {
	switch action {
	case ActionStable, ActionRollback, ActionCanaryPromote:
		return true
	}
	return false
}

// Rollback puts back the stable version that preceded the current one (the
// From of the event that made it stable) and records why. During a canary
// it takes the candidate out instead (ActionCanaryRollback): stable stays.
type Rollback struct {
	Reason string
}

func (t Rollback) apply(s *State, now time.Time) error {
	if s.Stable == "" {
		return refused("model %q has no stable version", s.Model)
	}
	if c := s.Canary; c.Active() {
		c.Progress.Phase, c.Progress.Weight = RolledBack, 0
		c.Progress.Reason = "rolled back by an operator"
		if t.Reason != "" {
			c.Progress.Reason += ": " + t.Reason
		}
		s.History = append(s.History, Event{Time: now, Action: ActionCanaryRollback, Version: c.Progress.Candidate, From: s.Stable, Reason: t.Reason})
		s.Candidate = ""
		return nil
	}
	prev := ""
	for i := len(s.History) - 1; i >= 0; i-- {
		if e := s.History[i]; e.Version == s.Stable && e.From != "" && madeStable(e.Action) {
			prev = e.From
			break
		}
	}
	if prev == "" {
		return refused("model %q: stable version %s has no previous stable version to roll back to", s.Model, s.Stable)
	}
	s.History = append(s.History, Event{Time: now, Action: ActionRollback, Version: prev, From: s.Stable, Reason: t.Reason})
	s.Stable = prev
	return nil
}

// StartCanary starts a canary of Version against the stable version: the
// candidate takes the plan's first weight. The plan must be valid, the
// version must differ from stable, no other canary may be in progress
// (abort it first), and the version needs a passed gate unless Forced
// with a Reason.
type StartCanary struct {
	Version string
	Plan    Plan
	Gate    Gate
	Forced  bool
	Reason  string
}

func (t StartCanary) apply(s *State, now time.Time) error {
	if err := t.Plan.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	switch {
	case s.Stable == "":
		return refused("model %q has no stable version to compare a canary with", s.Model)
	case s.Stable == t.Version:
		return refused("version %s is already the stable version of %q", t.Version, s.Model)
	case s.Canary.Active():
		return refused("a canary of %q version %s is in progress (%s); abort it first", s.Model, s.Canary.Progress.Candidate, s.Canary.Progress.Phase)
	}
	if err := gated(s.Model, t.Version, t.Gate, t.Forced, t.Reason); err != nil {
		return err
	}
	s.Canary = &Canary{
		Plan:     t.Plan,
		Progress: Progress{Phase: Progressing, Candidate: t.Version, Weight: t.Plan.Steps[0], StepStart: now, Reason: "started"},
		Started:  now, Forced: t.Forced, Reason: t.Reason,
		Told: len(s.History), // the start event is the first to tell
	}
	if h := FirstHold(t.Plan, now); h != nil {
		s.Canary.Progress.Weight, s.Canary.Progress.Hold = 0, h
		s.Canary.Progress.Reason = "started; waiting for the " + h.For + " webhooks before any traffic"
	}
	s.Candidate = t.Version
	s.History = append(s.History, Event{Time: now, Action: ActionCanaryStart, Version: t.Version, From: s.Stable, Forced: t.Forced, Reason: t.Reason})
	return nil
}

// operator applies an operator's action to the canary in progress: set is
// the change of its progress (false: nothing to change), action the
// history event.
func operator(s *State, now time.Time, what, action, reason string, set func(c *Canary) bool) error {
	c := s.Canary
	if !c.Active() {
		return refused("model %q has no canary in progress", s.Model)
	}
	ev := Event{Time: now, Action: action, Version: c.Progress.Candidate, From: s.Stable, Reason: reason}
	if !set(c) {
		return nil
	}
	if action == ActionCanaryPromote {
		ev.Forced = true // past the remaining steps
	}
	c.Progress.Reason = what + " by an operator"
	if reason != "" {
		c.Progress.Reason += ": " + reason
	}
	s.History = append(s.History, ev)
	return nil
}

// Pause holds the canary at its weight; pausing a paused canary changes
// nothing.
type Pause struct{ Reason string }

func (t Pause) apply(s *State, now time.Time) error {
	return operator(s, now, "pause", ActionCanaryPause, t.Reason, func(c *Canary) bool {
		if c.Progress.Phase == Paused {
			return false
		}
		c.Progress.Phase = Paused
		return true
	})
}

// Resume resumes a paused canary (its current step starts over), or
// ends a manual step's pause: the canary moves on to its next step (or,
// after the last, to the confirm-promotion webhooks or promotion).
type Resume struct{ Reason string }

func (t Resume) apply(s *State, now time.Time) error {
	if c := s.Canary; c.Active() && c.Progress.Phase == Progressing && c.Progress.Hold != nil {
		h := c.Progress.Hold
		if h.For != HoldPause {
			return refused("the canary of %q version %s waits for its %s webhooks, not for resume: approve it there, or `promote canary promote`/`abort`", s.Model, c.Progress.Candidate, h.For)
		}
		candidate, from := c.Progress.Candidate, s.Stable
		d := advance(c.Plan, c.Progress, nil, now, true)
		c.Progress = d.Next
		c.Progress.Reason = "resumed by an operator after a manual step"
		if t.Reason != "" {
			c.Progress.Reason += ": " + t.Reason
		}
		c.Decided = now
		s.History = append(s.History, Event{Time: now, Action: ActionCanaryResume, Version: candidate, From: from, Reason: t.Reason})
		if d.Next.Phase == Promoted {
			s.Stable, s.Candidate = candidate, ""
			s.History = append(s.History, Event{Time: now, Action: ActionCanaryPromote, Version: candidate, From: from, Reason: "passed all steps after the last manual step"})
		}
		return nil
	}
	return operator(s, now, "resume", ActionCanaryResume, t.Reason, func(c *Canary) bool {
		if c.Progress.Phase == Progressing {
			return false
		}
		c.Progress.Phase, c.Progress.StepStart = Progressing, now
		return true
	})
}

// Abort ends the canary: the candidate takes no more traffic.
type Abort struct{ Reason string }

func (t Abort) apply(s *State, now time.Time) error {
	return operator(s, now, "abort", ActionCanaryAbort, t.Reason, func(c *Canary) bool {
		c.Progress.Phase, c.Progress.Weight = Aborted, 0
		s.Candidate = ""
		return true
	})
}

// Promote makes the candidate stable now, skipping the remaining steps
// (recorded as forced).
type Promote struct{ Reason string }

func (t Promote) apply(s *State, now time.Time) error {
	return operator(s, now, "promote", ActionCanaryPromote, t.Reason, func(c *Canary) bool {
		c.Progress.Phase, c.Progress.Weight = Promoted, 100
		s.Stable, s.Candidate = c.Progress.Candidate, ""
		return true
	})
}

// ClaimTick claims the tick of a canary whose webhooks must be called: it
// succeeds for one replica per tick period (ErrStaleTick for the others,
// and when the canary has moved on from Epoch).
type ClaimTick struct {
	Epoch     string
	NotBefore time.Time
	Replica   string
	At        time.Time
}

func (t ClaimTick) apply(s *State, _ time.Time) error {
	c := s.Canary
	if c == nil || c.Epoch() != t.Epoch || c.Progress.Phase != Progressing || (c.Claimed != nil && c.Claimed.At.After(t.NotBefore)) {
		return ErrStaleTick
	}
	c.Claimed = &Claim{Replica: t.Replica, At: t.At.UTC()}
	return nil
}

// Tell claims the announcement of the history's events From (the canary's
// Told) to To: one replica wins and tells them; the others get
// ErrStaleTick.
type Tell struct{ From, To int }

func (t Tell) apply(s *State, _ time.Time) error {
	c := s.Canary
	if c == nil || c.Told != t.From || t.To <= t.From || t.To > len(s.History) {
		return ErrStaleTick
	}
	c.Told = t.To
	return nil
}

// Tick records one tick of a canary: the Analysis, and the progress Decide
// returned. It is applied only if the canary is still at the Epoch and
// failure count the tick was decided on and still progressing; otherwise it
// fails with ErrStaleTick. A decision that changes the state is also
// dropped when another one was recorded after NotBefore, so that replicas
// ticking together take one change per tick period; one that changes
// nothing only refreshes the recorded analysis, and is dropped when
// another replica refreshed it after NotBefore. Promotion makes the
// candidate stable; a rollback takes it out and records the evidence in
// the history.
type Tick struct {
	Epoch     string
	NotBefore time.Time
	Decision  Decision
	Analysis  Analysis
}

// ChangedSince reports whether a tick changed the canary after t: the rule
// that gives replicas one change per tick period, which a controller also
// asks before it gathers observations.
func (c *Canary) ChangedSince(t time.Time) bool { return c != nil && c.Decided.After(t) }

func (t Tick) apply(s *State, _ time.Time) error {
	c, d, a := s.Canary, t.Decision, t.Analysis
	switch {
	case c == nil || c.Epoch() != t.Epoch || c.Progress.Phase != Progressing:
		return ErrStaleTick
	case d.Changed && c.ChangedSince(t.NotBefore):
		return ErrStaleTick
	case !d.Changed && c.Analysis != nil && c.Analysis.Time.After(t.NotBefore):
		return ErrStaleTick
	case d.Changed && d.Next.Failures > 0 && d.Next.Failures != c.Progress.Failures+1:
		return ErrStaleTick // decided on a failure count since changed
	}
	candidate, step := c.Progress.Candidate, c.Progress.Step
	c.Progress, c.Analysis = d.Next, &a
	if !d.Changed {
		return nil
	}
	c.Decided = a.Time
	ev := Event{Time: a.Time, Version: candidate, From: s.Stable, Reason: d.Reason, Actor: strings.TrimSpace(ActorGateway + " " + a.Replica)}
	switch {
	case d.Next.Phase == Promoted:
		ev.Action = ActionCanaryPromote
		s.Stable, s.Candidate = candidate, ""
	case d.Next.Phase == RolledBack:
		ev.Action = ActionCanaryRollback
		s.Candidate = ""
		if evidence, err := json.Marshal(a); err == nil {
			ev.Extra = map[string]json.RawMessage{"analysis": evidence}
		}
	case d.Next.Step != step:
		ev.Action = ActionCanaryStep
	default:
		return nil
	}
	s.History = append(s.History, ev)
	return nil
}
