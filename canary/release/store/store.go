// Package store keeps release states in the registry: it reads a model's
// release.json into a release.State, and changes it by one release
// transition with the registry's compare-and-swap. It is the only code that
// joins the two: the registry stores bytes and decides nothing, release
// decides and does no I/O.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/registry"
)

// Reader reads release states; *registry.Registry is one.
type Reader interface {
	ReleaseJSON(ctx context.Context, name string) ([]byte, error)
}

// Registry is where release states live; *registry.Registry is one.
type Registry interface {
	Reader
	UpdateReleaseJSON(ctx context.Context, name string, fn func(cur []byte) ([]byte, error)) ([]byte, error)
}

// Read returns a model's release state, registry.ErrNotFound when it has
// none.
func Read(ctx context.Context, r Reader, model string) (release.State, error) {
	b, err := r.ReleaseJSON(ctx, model)
	if err != nil {
		return release.State{}, err
	}
	return release.Decode(model, b)
}

// Change applies t at now to the model's release state with
// compare-and-swap (retried on a concurrent write, t applied again to what
// is there then) and returns the state in effect after it. A refusal
// (release.ErrRefused, release.ErrStaleTick) comes back as it is and
// writes nothing.
func Change(ctx context.Context, r Registry, model string, t release.Transition, now time.Time) (release.State, error) {
	b, err := r.UpdateReleaseJSON(ctx, model, release.Update(model, t, now))
	if err != nil {
		return release.State{}, err
	}
	return release.Decode(model, b)
}

// Pusher stores model versions; *registry.Registry is one.
type Pusher interface {
	Registry
	Push(ctx context.Context, req registry.PushRequest) (registry.Manifest, bool, error)
}

// Push stores a version (registry.Push) and records the push in the release
// state (release.Push): the first version of a model becomes stable. If the
// version is stored but its release state cannot be written, Push returns
// the manifest, whether this call created it and the error; pushing again
// completes it.
func Push(ctx context.Context, r Pusher, req registry.PushRequest, now time.Time) (registry.Manifest, bool, error) {
	return PushBy(ctx, r, req, now, nil)
}

// PushBy is Push with the release transition wrapped by by (a
// release.By that records who pushed and signs the event); nil is Push.
func PushBy(ctx context.Context, r Pusher, req registry.PushRequest, now time.Time, by func(release.Transition) release.Transition) (registry.Manifest, bool, error) {
	m, created, err := r.Push(ctx, req)
	if err != nil {
		return m, created, err
	}
	var t release.Transition = release.Push{Version: req.Version}
	if by != nil {
		t = by(t)
	}
	if _, err := Change(ctx, r, req.Name, t, now); err != nil {
		return m, created, fmt.Errorf("registry: model %q version %q stored, but not made stable: %w", req.Name, req.Version, err)
	}
	return m, created, nil
}

// Gate reads a version's gate verdict from its stored gate report.
func Gate(ctx context.Context, r interface {
	GatePassed(ctx context.Context, name, version string) (bool, error)
}, model, version string) (release.Gate, error) {
	passed, err := r.GatePassed(ctx, model, version)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return release.GateNotRun, nil
	case err != nil:
		return release.GateNotRun, err
	case passed:
		return release.GatePassed, nil
	}
	return release.GateFailed, nil
}
