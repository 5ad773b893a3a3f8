package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/modelgate/modelgate/internal/backoff"
	"github.com/modelgate/modelgate/serving"
)

// role names a slot of a model: its stable version, or the candidate of a
// canary in progress.
type role string

const (
	roleStable    role = "stable"
	roleCandidate role = "candidate"
)

// slot is one role's version of a model: the session serving it, the
// version the release state names for it, and why that version is not
// served. A version that failed to load is retried with backoff, not at
// every poll: failed, how often in a row, and not before retryAt.
type slot struct {
	sess *serving.Session
	want string
	err  error

	failed   string
	failures int
	retryAt  time.Time
}

// serves reports whether the slot's session is version v.
func (s *slot) serves(v string) bool { return s.sess != nil && s.sess.Version() == v }

// settle records that the slot serves v: any earlier failure is over.
func (s *slot) settle(v string) {
	s.want, s.err = v, nil
	s.failed, s.failures = "", 0
}

// reloadBackoff is how long a version that failed to load waits before the
// next attempt: ten poll intervals, doubling, at most five minutes (a bad
// version stays bad; the registry may be repaired).
func reloadBackoff(poll time.Duration) backoff.Policy {
	return backoff.Policy{Base: 10 * poll, Max: 5 * time.Minute}
}

// registryBackoff is the wait before reading an unreachable registry
// again: a tenth of the poll interval, doubling, at most six intervals.
func registryBackoff(poll time.Duration) backoff.Policy {
	return backoff.Policy{Base: poll / 10, Max: 6 * poll}
}

func (e *entry) slot(r role) *slot {
	if r == roleCandidate {
		return &e.cand
	}
	return &e.stable
}

// syncSlot makes version the session of e's slot r: at once when it is
// loaded already (as the other slot's, or for pinned requests), else
// fetched, verified, loaded and warmed up. A version that fails never
// replaces the one serving; the slot keeps the reason and waits out its
// backoff before trying again. The candidate's slot takes no traffic
// here: ApplyRelease gives it its weight once it is loaded.
func (c *Catalog) syncSlot(ctx context.Context, e *entry, r role, version string) error {
	c.mu.Lock()
	s := e.slot(r)
	if s.serves(version) {
		s.settle(version)
		c.mu.Unlock()
		return nil
	}
	if s.failed == version && c.now().Before(s.retryAt) {
		err := s.err // failed before; not yet time to try again
		c.mu.Unlock()
		return err
	}
	if s.want != version {
		s.want, s.err = version, nil // loading: Status shows it wanted
	}
	c.mu.Unlock()
	c.loadMu.Lock()
	defer c.loadMu.Unlock()
	c.mu.Lock()
	if sess := c.takeLoadedLocked(e, r, version); sess != nil {
		c.installLocked(e, r, sess)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	sess, err := c.load(ctx, e.name, version)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if r == roleCandidate {
			err = fmt.Errorf("canary candidate: %w", err)
		}
		s.want, s.err = version, err
		if s.failed != version {
			s.failed, s.failures = version, 0
		}
		s.failures++
		s.retryAt = c.now().Add(reloadBackoff(c.opts.PollInterval).Delay(s.failures))
		return err
	}
	c.installLocked(e, r, sess)
	return nil
}

// takeLoadedLocked takes version out of where it is loaded already for
// slot r: a pinned copy, or, for stable, the canary candidate (promoted
// without a reload). nil when it is not loaded. c.mu must be held.
func (c *Catalog) takeLoadedLocked(e *entry, r role, version string) *serving.Session {
	if p := e.pinned[version]; p != nil {
		delete(e.pinned, version)
		c.metrics.unloaded(e.name, p.sess)
		return p.sess
	}
	if r == roleStable && e.cand.serves(version) {
		sess := e.cand.sess
		c.metrics.setSession(e.name, sess, "candidate", false)
		e.cand, e.weight = slot{}, 0
		return sess
	}
	return nil
}

// installLocked makes sess the session of e's slot r and retires the one
// it replaces, which is destroyed after its last request. c.mu must be
// held.
func (c *Catalog) installLocked(e *entry, r role, sess *serving.Session) {
	s := e.slot(r)
	old := s.sess
	s.sess = sess
	s.settle(sess.Version())
	if r == roleCandidate {
		if old != nil {
			c.metrics.setSession(e.name, old, "candidate", false)
			old.Close()
		}
		e.weight = 0
		c.metrics.setSession(e.name, sess, "candidate", true)
		c.log.Info("canary candidate loaded", "model", e.name, "version", sess.Version(), "provider", sess.Provider())
		return
	}
	c.metrics.serving(e.name, old, sess)
	if old != nil {
		old.Close()
		c.log.Info("swapped stable version", "model", e.name, "from", old.Version(), "to", sess.Version(), "provider", sess.Provider())
	} else {
		c.log.Info("serving model", "model", e.name, "version", sess.Version(), "provider", sess.Provider())
	}
}
