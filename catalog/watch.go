package catalog

import (
	"context"
	"errors"
	"time"

	"github.com/modelgate/modelgate/canary/release"
)

// A Listener is told each release state Watch reads, after the catalog has
// applied its routing; it answers how soon it wants the next one (0: the
// poll interval is soon enough). The rollout controller is one: it ticks
// the canary a state shows in progress.
type Listener interface {
	OnRelease(ctx context.Context, rel release.State) time.Duration
}

// Watch keeps the catalog in line with the registry until ctx ends, and is
// a gateway's one reader of release.json: every poll interval (sooner when
// a listener asks: a canary's tick period) it reads the served models'
// release states, applies each state's routing at once, has the loader
// (a goroutine beside it) load what the state names, and tells each
// listener. A slow load never delays a tick. When the registry cannot be
// read, what is loaded keeps serving and readiness is unaffected; Watch
// retries after a tenth of the poll interval, doubling up to six
// intervals, counts the errors in a metric and logs them at most once a
// minute.
func (c *Catalog) Watch(ctx context.Context, listeners ...Listener) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.loader(ctx)
	}()
	defer func() { <-done }()
	failures := 0
	for {
		next := c.opts.PollInterval
		err := c.pass(ctx, func(name string, rel release.State) error {
			c.offer(name, rel)
			for _, l := range listeners {
				if d := l.OnRelease(ctx, rel); d > 0 {
					next = min(next, d)
				}
			}
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRegistry) {
			failures++
			next = registryBackoff(c.opts.PollInterval).Delay(failures)
		} else if failures > 0 {
			c.log.Info("registry reachable again", "after_errors", failures)
			failures = 0
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// offer applies rel's routing at once and leaves the loading to the
// loader.
func (c *Catalog) offer(name string, rel release.State) {
	c.ApplyRelease(rel)
	c.mu.Lock()
	if e := c.models[name]; e != nil {
		e.latest, e.dirty = &rel, true
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// loader converges each model on the release state last offered, one
// model at a time, until ctx ends.
func (c *Catalog) loader(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		for _, name := range c.Names() {
			c.mu.Lock()
			e := c.models[name]
			rel, dirty := e.latest, e.dirty
			e.dirty = false
			c.mu.Unlock()
			if !dirty {
				continue
			}
			c.syncMu.Lock()
			_ = c.converge(ctx, name, *rel) // the reasons are in Status, the metrics and the log
			c.syncMu.Unlock()
			if ctx.Err() != nil {
				return
			}
		}
	}
}
