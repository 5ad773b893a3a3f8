package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/modelgate/modelgate/internal/backoff"
)

// A model's release state lives in release.json beside its versions. The
// registry stores it and swaps it with compare-and-swap, and knows nothing
// of what it says: package release owns its format and every transition,
// and package store passes one through here.

// Retry policy of UpdateReleaseJSON: at most releaseAttempts tries,
// waiting a random time up to an exponentially growing bound between them,
// so that racing writers spread out instead of colliding again.
const releaseAttempts = 10

var releaseBackoff = backoff.Policy{Base: 4 * time.Millisecond, Max: 250 * time.Millisecond, Jitter: 0.75}

// ReleaseJSON returns a model's release.json, ErrNotFound if it has none.
func (r *Registry) ReleaseJSON(ctx context.Context, name string) ([]byte, error) {
	if err := validateName("name", name); err != nil {
		return nil, err
	}
	b, _, err := r.readRelease(ctx, name)
	if err == nil && b == nil {
		return nil, fmt.Errorf("%w: release state of model %q", ErrNotFound, name)
	}
	return b, err
}

// readRelease reads release.json with its ETag; nil bytes when there is
// none.
func (r *Registry) readRelease(ctx context.Context, name string) ([]byte, string, error) {
	data, etag, err := r.bucket.ReadVersioned(ctx, releaseKey(name))
	if errors.Is(err, ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("registry: read release state of model %q: %w", name, err)
	}
	if data == nil {
		data = []byte{}
	}
	return data, etag, nil
}

// UpdateReleaseJSON changes a model's release.json with compare-and-swap.
// It reads the object (nil when there is none), calls fn with it, and
// writes what fn returns only if nobody wrote the object meanwhile; if
// somebody did, it reads again and calls fn again, up to 10 times with a
// jittered backoff, then gives up with ErrConflict. fn must therefore
// decide from the bytes it is given, without side effects. An error from
// fn aborts the update and is returned as is. When fn returns the bytes it
// was given, nothing is written. It returns the bytes in effect after the
// update.
func (r *Registry) UpdateReleaseJSON(ctx context.Context, name string, fn func(cur []byte) ([]byte, error)) ([]byte, error) {
	if err := validateName("name", name); err != nil {
		return nil, err
	}
	key := releaseKey(name)
	for attempt := range releaseAttempts {
		if attempt > 0 {
			if err := releaseBackoff.Wait(ctx, attempt); err != nil {
				return nil, err
			}
		}
		cur, etag, err := r.readRelease(ctx, name)
		if err != nil {
			return nil, err
		}
		next, err := fn(cur)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(next, cur) && (next == nil) == (cur == nil) {
			return cur, nil
		}
		if next == nil {
			return nil, fmt.Errorf("%w: release state of model %q: an update may not delete it", ErrInvalidRequest, name)
		}
		_, err = r.bucket.WriteIf(ctx, key, next, etag)
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("registry: write release state of model %q: %w", name, err)
		}
		r.log.Debug("release state changed concurrently, retrying", "model", name, "attempt", attempt+1)
	}
	return nil, fmt.Errorf("%w: release state of model %q changed concurrently %d times in a row", ErrConflict, name, releaseAttempts)
}
