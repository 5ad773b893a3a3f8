// Package backoff is the one retry policy of modelgate: a wait that starts
// at Base and doubles with each attempt up to Max, optionally jittered so
// that racing retriers spread out. The catalog waits by it before loading a
// failed version again and before reading an unreachable registry again;
// the registry before retrying a release write that lost its race and a
// download whose stream broke.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff.
type Policy struct {
	// Base is the wait before the first retry.
	Base time.Duration
	// Max bounds every wait.
	Max time.Duration
	// Jitter, in [0, 1], is the part of each wait drawn at random: a wait
	// of d is uniform in [d·(1-Jitter), d]. 0 waits exactly.
	Jitter float64
}

// Delay is the wait before retry n (n ≥ 1), without jitter:
// min(Base·2^(n-1), Max).
func (p Policy) Delay(n int) time.Duration {
	d := p.Base
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}

// Next is the wait before retry n, jittered.
func (p Policy) Next(n int) time.Duration {
	d := p.Delay(n)
	if p.Jitter <= 0 || d <= 0 {
		return d
	}
	spread := time.Duration(float64(d) * min(p.Jitter, 1))
	return d - spread + rand.N(spread+1)
}

// Wait sleeps Next(n), or until ctx ends (its error).
func (p Policy) Wait(ctx context.Context, n int) error {
	return Sleep(ctx, p.Next(n))
}

// Sleep waits for d, or until ctx ends (its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
