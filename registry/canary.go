package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/modelgate/modelgate/canary"
)

// Release history actions of canary releases.
const (
	ActionCanaryStart    = "canary-start"
	ActionCanaryStep     = "canary-step"
	ActionCanaryPause    = "canary-pause"
	ActionCanaryResume   = "canary-resume"
	ActionCanaryAbort    = "canary-abort"
	ActionCanaryPromote  = "canary-promote"  // the candidate became stable
	ActionCanaryRollback = "canary-rollback" // the candidate was taken out
)

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

// ErrStaleTick: a canary tick was decided on a state that has changed
// since (another replica ticked, an operator acted); it is dropped.
var ErrStaleTick = errors.New("canary state changed since the tick read it")

// StartCanary starts a canary release of version against the stable
// version: the candidate takes the plan's first weight. The version must
// exist and differ from stable, the plan must be valid, and no other
// canary may be in progress (abort it first).
func (r *Registry) StartCanary(ctx context.Context, name, version string, plan canary.Plan, forced bool, reason string) (ReleaseState, error) {
	if err := plan.Validate(); err != nil {
		return ReleaseState{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	if _, err := r.Manifest(ctx, name, version); err != nil {
		return ReleaseState{}, err
	}
	s, err := r.UpdateRelease(ctx, name, func(s *ReleaseState) error {
		switch {
		case s.Stable == "":
			return fmt.Errorf("%w: model %q has no stable version to compare a canary with", ErrInvalidRequest, name)
		case s.Stable == version:
			return fmt.Errorf("%w: version %s is already the stable version of %q", ErrInvalidRequest, version, name)
		case s.Canary.Active():
			return fmt.Errorf("%w: a canary of %q version %s is in progress (%s); abort it first", ErrInvalidRequest, name, s.Canary.State.Candidate, s.Canary.State.Phase)
		}
		now := r.now().UTC()
		s.Canary = &canary.Release{
			Plan:    plan,
			State:   canary.State{Phase: canary.Progressing, Candidate: version, Weight: plan.Steps[0], StepStart: now, Reason: "started"},
			Started: now, Forced: forced, Reason: reason,
		}
		s.Candidate = version
		s.History = append(s.History, Event{Time: now, Action: ActionCanaryStart, Version: version, From: s.Stable, Forced: forced, Reason: reason})
		return nil
	})
	if err != nil {
		return ReleaseState{}, err
	}
	r.log.Info("canary started", "model", name, "version", version, "stable", s.Stable, "steps", plan.Steps, "interval", plan.Interval)
	return s, nil
}

// Operator actions on a canary, for CanaryAction.
const (
	CanaryPause   = "pause"
	CanaryResume  = "resume"
	CanaryAbort   = "abort"
	CanaryPromote = "promote"
)

// CanaryAction applies an operator's action to the model's canary: pause
// (the weight stays), resume (the current step starts over), abort (the
// candidate takes no traffic) or promote (the candidate becomes stable
// now, skipping the remaining steps).
func (r *Registry) CanaryAction(ctx context.Context, name, action, reason string) (ReleaseState, error) {
	s, err := r.UpdateRelease(ctx, name, func(s *ReleaseState) error {
		c := s.Canary
		if !c.Active() {
			return fmt.Errorf("%w: model %q has no canary in progress", ErrInvalidRequest, name)
		}
		now := r.now().UTC()
		next := *c
		ev := Event{Time: now, Version: c.State.Candidate, From: s.Stable, Reason: reason}
		switch action {
		case CanaryPause:
			if c.State.Phase == canary.Paused {
				return nil
			}
			next.State.Phase, ev.Action = canary.Paused, ActionCanaryPause
		case CanaryResume:
			if c.State.Phase == canary.Progressing {
				return nil
			}
			next.State.Phase, next.State.StepStart, ev.Action = canary.Progressing, now, ActionCanaryResume
		case CanaryAbort:
			next.State.Phase, next.State.Weight, ev.Action = canary.Aborted, 0, ActionCanaryAbort
			s.Candidate = ""
		case CanaryPromote:
			next.State.Phase, next.State.Weight, ev.Action = canary.Promoted, 100, ActionCanaryPromote
			ev.Forced = true // past the remaining steps
			s.Stable, s.Candidate = c.State.Candidate, ""
		default:
			return fmt.Errorf("%w: unknown canary action %q (want pause, resume, abort or promote)", ErrInvalidRequest, action)
		}
		next.State.Reason = fmt.Sprintf("%s by an operator", action)
		if reason != "" {
			next.State.Reason += ": " + reason
		}
		s.Canary = &next
		s.History = append(s.History, ev)
		return nil
	})
	if err != nil {
		return ReleaseState{}, err
	}
	r.log.Info("canary "+action, "model", name, "reason", reason)
	return s, nil
}

// CanaryTick records one tick of a canary: the analysis, and the state
// Decide returned. It is applied only if the canary is still at the epoch
// and failure count the tick was decided on and still progressing;
// otherwise it returns ErrStaleTick and writes nothing. A decision that
// changes the state is also dropped when another one was recorded after
// notBefore, so that replicas ticking together take one change per tick
// period; one that changes nothing only refreshes the recorded analysis,
// and is dropped when another replica refreshed it after notBefore.
// Promotion makes the candidate stable; a rollback takes it out and
// records the evidence in the history.
func (r *Registry) CanaryTick(ctx context.Context, name, epoch string, notBefore time.Time, d canary.Decision, a canary.Analysis) (ReleaseState, error) {
	return r.UpdateRelease(ctx, name, func(s *ReleaseState) error {
		c := s.Canary
		if c == nil || c.Epoch() != epoch || c.State.Phase != canary.Progressing {
			return ErrStaleTick
		}
		if d.Changed && c.Decided.After(notBefore) {
			return ErrStaleTick
		}
		if !d.Changed && c.Analysis != nil && c.Analysis.Time.After(notBefore) {
			return ErrStaleTick
		}
		if d.Changed && d.Next.Failures > 0 && d.Next.Failures != c.State.Failures+1 {
			return ErrStaleTick // decided on a failure count since changed
		}
		next := *c
		next.State, next.Analysis = d.Next, &a
		s.Canary = &next
		if !d.Changed {
			return nil
		}
		next.Decided = a.Time
		ev := Event{Time: a.Time, Version: c.State.Candidate, From: s.Stable, Reason: d.Reason}
		switch {
		case d.Next.Phase == canary.Promoted:
			ev.Action = ActionCanaryPromote
			s.Stable, s.Candidate = c.State.Candidate, ""
		case d.Next.Phase == canary.RolledBack:
			ev.Action = ActionCanaryRollback
			s.Candidate = ""
			if evidence, err := json.Marshal(a); err == nil {
				ev.Extra = map[string]json.RawMessage{"analysis": evidence}
			}
		case d.Next.Step != c.State.Step:
			ev.Action = ActionCanaryStep
		default:
			return nil // a failed check short of the limit: in the state, not the history
		}
		s.History = append(s.History, ev)
		return nil
	})
}
