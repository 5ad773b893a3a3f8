package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Retry policy of UpdateRelease: at most releaseAttempts tries, waiting a
// random time up to an exponentially growing bound between them, so that
// racing writers spread out instead of colliding again.
const (
	releaseAttempts   = 10
	releaseBackoff    = 2 * time.Millisecond
	releaseMaxBackoff = 250 * time.Millisecond
)

// Release returns a model's release state, ErrNotFound if it has none.
func (r *Registry) Release(ctx context.Context, name string) (ReleaseState, error) {
	if err := validateName("name", name); err != nil {
		return ReleaseState{}, err
	}
	s, _, err := r.readRelease(ctx, name)
	return s, err
}

// readRelease reads and decodes release.json with its ETag.
func (r *Registry) readRelease(ctx context.Context, name string) (ReleaseState, string, error) {
	data, etag, err := r.bucket.ReadVersioned(ctx, releaseKey(name))
	if errors.Is(err, ErrNotFound) {
		return ReleaseState{}, "", fmt.Errorf("%w: release state of model %q", ErrNotFound, name)
	}
	if err != nil {
		return ReleaseState{}, "", fmt.Errorf("registry: read release state of model %q: %w", name, err)
	}
	var s ReleaseState
	if err := json.Unmarshal(data, &s); err != nil {
		return ReleaseState{}, "", fmt.Errorf("registry: decode release state of model %q: %w", name, err)
	}
	if s.Model == "" {
		s.Model = name
	}
	if s.Model != name {
		return ReleaseState{}, "", fmt.Errorf("registry: release state of model %q names model %q", name, s.Model)
	}
	return s, etag, nil
}

// UpdateRelease changes a model's release state with compare-and-swap. It
// reads the state (a zero state naming the model if there is none), calls
// fn to change it, and writes it back only if nobody wrote it meanwhile;
// if somebody did, it reads again and calls fn again, up to 10 times with
// a jittered backoff, then gives up with ErrConflict. fn must therefore
// decide from the state it is given, without side effects. An error from
// fn aborts the update and is returned as is.
//
// When fn changes nothing, nothing is written. Otherwise Updated is set to
// the current time. fn may only append to History: an update that rewrites
// or drops an earlier event is refused with ErrInvalidRequest. The Model
// field always stays the model's name.
func (r *Registry) UpdateRelease(ctx context.Context, name string, fn func(*ReleaseState) error) (ReleaseState, error) {
	if err := validateName("name", name); err != nil {
		return ReleaseState{}, err
	}
	key := releaseKey(name)
	for attempt := range releaseAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return ReleaseState{}, err
			}
		}
		s, etag, err := r.readRelease(ctx, name)
		if errors.Is(err, ErrNotFound) {
			s, etag = ReleaseState{Model: name}, ""
		} else if err != nil {
			return ReleaseState{}, err
		}
		before, err := json.Marshal(s)
		if err != nil {
			return ReleaseState{}, fmt.Errorf("registry: encode release state of model %q: %w", name, err)
		}
		history, err := json.Marshal(s.History)
		if err != nil {
			return ReleaseState{}, fmt.Errorf("registry: encode release history of model %q: %w", name, err)
		}
		oldLen := len(s.History)

		if err := fn(&s); err != nil {
			return ReleaseState{}, err
		}

		s.Model = name
		after, err := json.Marshal(s)
		if err != nil {
			return ReleaseState{}, fmt.Errorf("registry: encode release state of model %q: %w", name, err)
		}
		if bytes.Equal(before, after) {
			return s, nil
		}
		if len(s.History) < oldLen {
			return ReleaseState{}, errRewrite(name)
		}
		if oldLen > 0 {
			if prefix, err := json.Marshal(s.History[:oldLen]); err != nil || !bytes.Equal(prefix, history) {
				return ReleaseState{}, errRewrite(name)
			}
		}
		if s.History == nil {
			s.History = []Event{} // "history": [], not null
		}
		s.Updated = r.now().UTC()
		data, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return ReleaseState{}, fmt.Errorf("registry: encode release state of model %q: %w", name, err)
		}
		_, err = r.bucket.WriteIf(ctx, key, data, etag)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, ErrConflict) {
			return ReleaseState{}, fmt.Errorf("registry: write release state of model %q: %w", name, err)
		}
		r.log.Debug("release state changed concurrently, retrying", "model", name, "attempt", attempt+1)
	}
	return ReleaseState{}, fmt.Errorf("%w: release state of model %q changed concurrently %d times in a row", ErrConflict, name, releaseAttempts)
}

// errRewrite refuses an update that does not only append to the history.
func errRewrite(name string) error {
	return fmt.Errorf("%w: release history of model %q is append-only: the update rewrote or dropped earlier events",
		ErrInvalidRequest, name)
}

// backoff waits before retry number attempt (1, 2, ...), or until ctx is
// done.
func backoff(ctx context.Context, attempt int) error {
	bound := min(releaseBackoff<<attempt, releaseMaxBackoff)
	t := time.NewTimer(bound/4 + rand.N(bound))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SetStable makes version the stable version of a model and records an
// ActionStable event with the previous stable version, whether the change
// was forced (past failing gates, say) and why. The version must exist
// (ErrNotFound otherwise). Setting the version that is already stable
// changes nothing and records no event.
func (r *Registry) SetStable(ctx context.Context, name, version string, forced bool, reason string) (ReleaseState, error) {
	if _, err := r.Manifest(ctx, name, version); err != nil {
		return ReleaseState{}, err
	}
	var ev *Event
	s, err := r.UpdateRelease(ctx, name, func(s *ReleaseState) error {
		ev = nil
		if s.Stable == version {
			return nil
		}
		ev = &Event{Time: r.now().UTC(), Action: ActionStable, Version: version, From: s.Stable, Forced: forced, Reason: reason}
		s.History = append(s.History, *ev)
		s.Stable = version
		return nil
	})
	if err != nil {
		return ReleaseState{}, err
	}
	if ev != nil {
		r.log.Info("stable version changed", "model", name, "version", version, "from", ev.From, "forced", forced, "reason", reason)
	}
	return s, nil
}
