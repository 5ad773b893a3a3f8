package catalog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/serving"
)

// ApplyRelease brings the routing of rel.Model in line with its release
// state at once, without loading anything: the candidate's weight and the
// plan's match rules (compiled here, again only when they change) while a
// canary is in progress and the candidate is loaded; otherwise weight 0
// and no rules, and a candidate that is no longer wanted is unloaded
// (after its last request), or becomes stable if it was promoted. While
// the canary waits before any traffic (Progress.BeforeTraffic: a
// pre-rollout or confirm-rollout webhook) neither the weight nor the
// rules send it anything. The canary controller calls it at every tick,
// Sync at every poll.
func (c *Catalog) ApplyRelease(rel release.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.models[rel.Model]
	if e == nil {
		return
	}
	if rel.Updated.Before(e.applied) {
		return // an older read than one applied already (a slow Sync)
	}
	e.applied = rel.Updated
	e.canary = rel.Canary
	if rel.Canary.Active() && e.cand.serves(rel.Canary.Progress.Candidate) {
		if c.opts.Recorder != nil {
			c.opts.Recorder.Begin(e.name, rel.Canary.Epoch())
		}
		e.weight = rel.Canary.Progress.Weight
		c.applyMatchLocked(e, rel.Canary)
		if rel.Canary.Progress.BeforeTraffic() {
			e.weight = 0
		}
		return
	}
	e.weight = 0
	e.match, e.matchFor, e.matchRules = nil, "", nil
	if e.cand.sess == nil || (rel.Canary.Active() && e.cand.serves(rel.Canary.Progress.Candidate)) {
		return
	}
	if e.cand.serves(rel.Stable) && !e.stable.serves(rel.Stable) {
		c.installLocked(e, roleStable, c.takeLoadedLocked(e, roleStable, rel.Stable)) // promoted: no reload
		return
	}
	old := e.cand.sess
	e.cand.sess = nil
	c.metrics.setSession(e.name, old, "candidate", false)
	old.Close()
	reason := "no canary in progress"
	if rel.Canary != nil {
		reason = fmt.Sprintf("canary %s: %s", rel.Canary.Progress.Phase, rel.Canary.Progress.Reason)
	}
	c.log.Info("canary candidate unloaded", "model", e.name, "version", old.Version(), "reason", reason)
}

// applyMatchLocked puts the match rules of an active canary in effect,
// compiling them when they differ from those in effect; none while it
// waits before any traffic. c.mu must be held.
func (c *Catalog) applyMatchLocked(e *entry, rc *release.Canary) {
	rules := rc.Plan.Match
	if rc.Progress.BeforeTraffic() {
		rules = nil
	}
	e.matchFor = rc.Progress.Candidate
	if slices.Equal(rules, e.matchRules) {
		return
	}
	m, err := canary.NewMatcher(rules)
	if err != nil { // Plan.Validate refuses such rules: a state written by hand
		c.log.Warn("canary match rules not applied", "model", e.name, "err", err)
		m = nil
	}
	e.match, e.matchRules = m, slices.Clone(rules)
}

// CandidateError is why the model's canary candidate is not loaded, if
// it failed to load.
func (c *Catalog) CandidateError(model string) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.models[model]
	if e == nil || !e.canary.Active() || e.cand.sess != nil || e.cand.want != e.canary.Progress.Candidate {
		return nil
	}
	return e.cand.err
}

// Routed is the session chosen for an unpinned request, acquired.
type Routed struct {
	// Session serves the request; Role is canary.RoleStable,
	// canary.RoleCandidate, or canary.RoleMatched (the candidate, for a
	// request a match rule sent it).
	Session *serving.Session
	Role    string
	// Compare, when set, is the other version of a canary, acquired too:
	// run the request on it in the background and compare the answers
	// (a shadow copy when stable serves, a comparison when the candidate
	// does). Nobody waits for it.
	Compare *serving.Session
}

// Release gives back the sessions of r that the caller still holds.
func (r Routed) Release() {
	if r.Session != nil {
		r.Session.Release()
	}
	if r.Compare != nil {
		r.Compare.Release()
	}
}

// Route picks the version for an unpinned request: the candidate of a
// canary in progress with its weight's probability (sticky for a
// non-empty key: the same key keeps its version as the weight grows),
// else stable. Both sessions come back acquired when the other version
// should score the request too.
func (c *Catalog) Route(ctx context.Context, model, key string) (Routed, error) {
	return c.RouteRequest(ctx, model, canary.Request{Key: key})
}

// RouteRequest is Route for a request whose headers the canary's match
// rules read: a request that matches one goes to the candidate whatever
// the weight (0 included), as canary.RoleMatched, alone (it is compared
// with nothing: the disagreement check reads the weighted split only).
// Without rules it routes as Route does, at the same cost.
func (c *Catalog) RouteRequest(ctx context.Context, model string, req canary.Request) (Routed, error) {
	stable, err := c.Acquire(ctx, model, "")
	if err != nil {
		return Routed{}, err
	}
	r := Routed{Session: stable, Role: canary.RoleStable}
	c.mu.RLock()
	e := c.models[stable.Name()]
	cand, weight, match := e.cand.sess, e.weight, e.match
	if match != nil && (cand == nil || cand.Version() != e.matchFor) {
		match = nil // a candidate the rules were not applied for
	}
	c.mu.RUnlock()
	if cand == nil || (weight <= 0 && match == nil) {
		return r, nil
	}
	switch canary.Choose(req, weight, match) {
	case canary.RoleMatched:
		if !cand.Acquire() {
			return r, nil // unloaded meanwhile: stable serves
		}
		stable.Release()
		r.Session, r.Role = cand, canary.RoleMatched
		return r, nil
	case canary.RoleCandidate:
		if !cand.Acquire() {
			return r, nil // unloaded meanwhile: stable serves
		}
		r.Session, r.Role = cand, canary.RoleCandidate
		if c.opts.CompareSplit {
			r.Compare = stable
		} else {
			stable.Release()
		}
		return r, nil
	}
	if weight > 0 && c.opts.ShadowFraction > 0 && rand.Float64() < c.opts.ShadowFraction && cand.Acquire() {
		r.Compare = cand
	}
	return r, nil
}
