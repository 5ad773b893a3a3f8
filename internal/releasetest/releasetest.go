// Package releasetest gives tests one line per release event on a real
// registry: each method checks what the command line checks (the version
// exists) and applies the release transition through package store, as
// promote and the gateway do. Gates are taken as passed: tests of the gate
// rule call the release package directly.
package releasetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/registry"
)

// Registry is a registry with release events.
type Registry struct {
	*registry.Registry
	// Now is the clock of the events; nil is time.Now.
	Now func() time.Time
}

// Wrap is r with release events on clock now (nil: time.Now).
func Wrap(r *registry.Registry, now func() time.Time) Registry {
	if now == nil {
		now = time.Now
	}
	return Registry{Registry: r, Now: now}
}

func (r Registry) change(ctx context.Context, name string, t release.Transition) (release.State, error) {
	return store.Change(ctx, r.Registry, name, t, r.Now())
}

// Release is the model's release state.
func (r Registry) Release(ctx context.Context, name string) (release.State, error) {
	return store.Read(ctx, r.Registry, name)
}

// Push stores a version; the model's first becomes stable.
func (r Registry) Push(ctx context.Context, req registry.PushRequest) (registry.Manifest, bool, error) {
	return store.Push(ctx, r.Registry, req, r.Now())
}

// SetStable makes an existing version stable.
func (r Registry) SetStable(ctx context.Context, name, version string, forced bool, reason string) (release.State, error) {
	if _, err := r.Manifest(ctx, name, version); err != nil {
		return release.State{}, err
	}
	return r.change(ctx, name, release.SetStable{Version: version, Gate: release.GatePassed, Forced: forced, Reason: reason})
}

// StartCanary starts a canary of an existing version.
func (r Registry) StartCanary(ctx context.Context, name, version string, plan release.Plan, forced bool, reason string) (release.State, error) {
	if _, err := r.Manifest(ctx, name, version); err != nil {
		return release.State{}, err
	}
	return r.change(ctx, name, release.StartCanary{Version: version, Plan: plan, Gate: release.GatePassed, Forced: forced, Reason: reason})
}

// Operator actions on a canary, for CanaryAction.
const (
	CanaryPause   = "pause"
	CanaryResume  = "resume"
	CanaryAbort   = "abort"
	CanaryPromote = "promote"
)

// CanaryAction applies an operator's action: pause, resume, abort or
// promote.
func (r Registry) CanaryAction(ctx context.Context, name, action, reason string) (release.State, error) {
	var t release.Transition
	switch action {
	case CanaryPause:
		t = release.Pause{Reason: reason}
	case CanaryResume:
		t = release.Resume{Reason: reason}
	case CanaryAbort:
		t = release.Abort{Reason: reason}
	case CanaryPromote:
		t = release.Promote{Reason: reason}
	default:
		return release.State{}, fmt.Errorf("%w: unknown canary action %q", release.ErrRefused, action)
	}
	return r.change(ctx, name, t)
}

// Rollback rolls back the stable version, or a canary in progress.
func (r Registry) Rollback(ctx context.Context, name, reason string) (release.State, error) {
	return r.change(ctx, name, release.Rollback{Reason: reason})
}

// CanaryTick records a controller's tick.
func (r Registry) CanaryTick(ctx context.Context, name, epoch string, notBefore time.Time, d release.Decision, a release.Analysis) (release.State, error) {
	return r.change(ctx, name, release.Tick{Epoch: epoch, NotBefore: notBefore, Decision: d, Analysis: a})
}

// Edit changes the release state by hand, past every release rule, with
// the registry's compare-and-swap (but not the append-only history, which
// it checks as release.Apply does), Updated set to now when fn changed
// anything: for tests that need a state no transition makes (an emptied
// stable version, say).
func (r Registry) Edit(ctx context.Context, name string, fn func(*release.State) error) (release.State, error) {
	b, err := r.UpdateReleaseJSON(ctx, name, func(cur []byte) ([]byte, error) {
		s, err := release.Decode(name, cur)
		if err != nil {
			return nil, err
		}
		before, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		history := slices.Clone(s.History)
		if err := fn(&s); err != nil {
			return nil, err
		}
		s.Model = name
		if after, err := json.Marshal(s); err != nil || bytes.Equal(after, before) {
			return cur, err
		}
		if err := release.AppendOnly(history, s.History); err != nil {
			return nil, fmt.Errorf("%w: %v", release.ErrRefused, err)
		}
		s.Updated = r.Now().UTC()
		return release.Encode(s)
	})
	if err != nil {
		return release.State{}, err
	}
	return release.Decode(name, b)
}

// Healthy is a canary step's observations of a candidate as good as
// stable, with evidence enough for every check of the default plan to
// pass: n candidate requests and 4n stable ones without errors, the same
// latency, n/2 distinct compared inputs that all agreed. n of 2000 is
// enough.
func Healthy(n int64) release.Observations {
	lat := func(n int64) []release.LatencyBucket {
		return []release.LatencyBucket{{Le: 8 * time.Millisecond}, {Le: 10 * time.Millisecond, Count: n}}
	}
	return release.Observations{
		Stable:    release.VersionStats{Requests: 4 * n, P99: 10 * time.Millisecond, Latency: lat(4 * n)},
		Candidate: release.VersionStats{Requests: n, P99: 10 * time.Millisecond, Latency: lat(n)},
		Compared:  n, Distinct: n / 2,
	}
}
