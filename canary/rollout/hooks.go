package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/internal/backoff"
)

// Webhooks and notifications (release/controls.go for their meaning).
// Asked hooks (pre-rollout, confirm-rollout, rollout, confirm-promotion)
// are called by the replica that claims the tick (release.ClaimTick, with
// compare-and-swap: one per tick period), and their answers go into the
// tick's decision. Told hooks (post-rollout, rollback) and the notifiers
// are called by the replica that claims the events (release.Tell): each
// canary event is told once, at most (a replica that dies between the
// claim and the call loses that message). No call runs on a request's
// path: the controller runs beside the catalog's watcher.

// hookBackoff spaces a webhook's retries.
var hookBackoff = backoff.Policy{Base: 200 * time.Millisecond, Max: 2 * time.Second, Jitter: 0.5}

// HookPayload is the JSON body POSTed to a webhook.
type HookPayload struct {
	Model     string            `json:"model"`
	Stable    string            `json:"stable"`
	Candidate string            `json:"candidate"`
	Type      release.HookType  `json:"type"`
	Name      string            `json:"name"`
	Phase     release.Phase     `json:"phase"`
	Weight    float64           `json:"weight"`
	Step      int               `json:"step"` // 1-based
	Steps     int               `json:"steps"`
	Hold      *release.Hold     `json:"hold,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	Analysis  *release.Analysis `json:"analysis,omitempty"`
	Replica   string            `json:"replica"`
	Time      time.Time         `json:"time"`
}

// Notification is the JSON body POSTed to a "json" notifier; a "slack"
// one gets {"text": Summary}.
type Notification struct {
	Model     string        `json:"model"`
	Stable    string        `json:"stable"`
	Candidate string        `json:"candidate"`
	Event     string        `json:"event"` // the history action: canary-start, canary-step, ...
	Phase     release.Phase `json:"phase"`
	Weight    float64       `json:"weight"`
	Reason    string        `json:"reason,omitempty"`
	Actor     string        `json:"actor,omitempty"`
	Summary   string        `json:"summary"`
	Time      time.Time     `json:"time"`
}

// askedHooks are the webhooks a tick of this canary must call.
func askedHooks(c *release.Canary) []release.Webhook {
	p := c.Progress
	switch {
	case p.Hold != nil && p.Hold.For == release.HoldPreRollout:
		return c.Plan.Hooks(release.HookPreRollout)
	case p.Hold != nil && p.Hold.For == release.HoldConfirmRollout:
		return c.Plan.Hooks(release.HookConfirmRollout)
	case p.Hold != nil && p.Hold.For == release.HoldConfirmPromotion:
		return append(c.Plan.Hooks(release.HookRollout), c.Plan.Hooks(release.HookConfirmPromotion)...)
	}
	return c.Plan.Hooks(release.HookRollout)
}

// payload is the body of hook h for state rel.
func (c *Controller) payload(rel release.State, h release.Webhook) HookPayload {
	cn := rel.Canary
	return HookPayload{
		Model: rel.Model, Stable: rel.Stable, Candidate: cn.Progress.Candidate, Type: h.Type, Name: h.Name,
		Phase: cn.Progress.Phase, Weight: cn.Progress.Weight, Step: cn.Progress.Step + 1, Steps: len(cn.Plan.Steps),
		Hold: cn.Progress.Hold, Reason: cn.Progress.Reason, Analysis: cn.Analysis, Replica: c.opts.Replica, Time: c.now().UTC(),
	}
}

// callHooks calls hooks at once (each within its timeout and retries) and
// returns their answers in order.
func (c *Controller) callHooks(ctx context.Context, rel release.State, hooks []release.Webhook) []release.HookCall {
	out := make([]release.HookCall, len(hooks))
	var wg sync.WaitGroup
	for i, h := range hooks {
		wg.Go(func() {
			out[i] = c.call(ctx, h, c.payload(rel, h))
			c.metrics.hookCalled(rel.Model, h.Type, out[i].OK)
		})
	}
	wg.Wait()
	return out
}

// call POSTs body to h, tried up to 1+Retries times; a 2xx answer is OK.
func (c *Controller) call(ctx context.Context, h release.Webhook, body any) release.HookCall {
	res := release.HookCall{Type: h.Type, Name: h.Name}
	data, err := json.Marshal(body)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	for attempt := range h.Retries + 1 {
		if attempt > 0 {
			if err := hookBackoff.Wait(ctx, attempt); err != nil {
				break
			}
		}
		res.Attempts++
		status, err := c.post(ctx, h.URL, h.Timeout, data)
		res.Status, res.Error = status, ""
		if err != nil {
			res.Error = err.Error()
			continue
		}
		if status >= 200 && status < 300 {
			res.OK = true
			return res
		}
	}
	return res
}

// post sends one POST within timeout and returns the status.
func (c *Controller) post(ctx context.Context, url string, timeout time.Duration, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "modelgate-rollout")
	resp, err := c.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %s", timeout)
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// claimHooks claims this tick for calling the canary's webhooks; false
// when another replica has the tick (or the canary moved on).
func (c *Controller) claimHooks(ctx context.Context, rel release.State, notBefore, now time.Time) bool {
	_, err := store.Change(ctx, c.opts.Registry, rel.Model, release.ClaimTick{
		Epoch: rel.Canary.Epoch(), NotBefore: notBefore, Replica: c.opts.Replica, At: now,
	}, now)
	if err != nil && !errors.Is(err, release.ErrStaleTick) {
		c.log.Warn("canary: claiming the tick for its webhooks failed", "model", rel.Model, "err", err)
	}
	return err == nil
}

// tell announces the canary's events not yet told: it claims them
// (release.Tell; one replica wins) and then, in the background, posts each
// to the notifiers and calls the post-rollout and rollback webhooks when
// the canary ended.
func (c *Controller) tell(ctx context.Context, rel release.State) {
	cn := rel.Canary
	if cn == nil || cn.Told >= len(rel.History) {
		return
	}
	plan := cn.Plan
	told := append(plan.Hooks(release.HookPostRollout), plan.Hooks(release.HookRollback)...)
	if len(plan.Notify) == 0 && len(told) == 0 {
		return
	}
	from, to := cn.Told, len(rel.History)
	if _, err := store.Change(ctx, c.opts.Registry, rel.Model, release.Tell{From: from, To: to}, c.now()); err != nil {
		if !errors.Is(err, release.ErrStaleTick) {
			c.log.Warn("canary: claiming its events to tell failed", "model", rel.Model, "err", err)
		}
		return
	}
	events := rel.History[from:to]
	c.background.Go(func() {
		ctx := context.WithoutCancel(ctx)
		for _, e := range events {
			n := notification(rel, e)
			for _, nt := range plan.Notify {
				var body any = n
				if nt.Kind == "slack" {
					body = map[string]string{"text": n.Summary}
				}
				res := c.call(ctx, release.Webhook{Type: "notify", Name: nt.Kind, URL: nt.URL, Timeout: release.DefaultHookTimeout, Retries: release.DefaultHookRetries}, body)
				c.metrics.notified(rel.Model, nt.Kind, res.OK)
				if !res.OK {
					c.log.Warn("canary: notification failed", "model", rel.Model, "kind", nt.Kind, "event", e.Action, "status", res.Status, "err", res.Error)
				}
			}
			ended := e.Action == release.ActionCanaryPromote || e.Action == release.ActionCanaryRollback || e.Action == release.ActionCanaryAbort
			if !ended {
				continue
			}
			for _, h := range told {
				if h.Type == release.HookRollback && e.Action == release.ActionCanaryPromote {
					continue
				}
				p := c.payload(rel, h)
				p.Reason = e.Reason
				res := c.call(ctx, h, p)
				c.metrics.hookCalled(rel.Model, h.Type, res.OK)
				if !res.OK {
					c.log.Warn("canary: webhook failed (told, not asked: nothing changes)", "model", rel.Model, "type", h.Type, "name", h.Name, "status", res.Status, "err", res.Error)
				}
			}
		}
	})
}

// notification describes history event e of rel's canary.
func notification(rel release.State, e release.Event) Notification {
	cn := rel.Canary
	n := Notification{
		Model: rel.Model, Stable: rel.Stable, Candidate: e.Version, Event: e.Action, Phase: cn.Progress.Phase,
		Weight: cn.Progress.Weight, Reason: e.Reason, Actor: e.Actor, Time: e.Time,
	}
	what := e.Action
	switch e.Action {
	case release.ActionCanaryStart:
		what = fmt.Sprintf("started against stable %s", e.From)
	case release.ActionCanaryStep:
		what = "moved to the next step"
	case release.ActionCanaryPause:
		what = "paused"
	case release.ActionCanaryResume:
		what = "resumed"
	case release.ActionCanaryAbort:
		what = "aborted"
	case release.ActionCanaryPromote:
		what = fmt.Sprintf("promoted: %s is stable", e.Version)
	case release.ActionCanaryRollback:
		what = fmt.Sprintf("rolled back: %s stays stable", e.From)
	}
	n.Summary = fmt.Sprintf("%s: canary of %s %s", rel.Model, e.Version, what)
	if e.Reason != "" {
		n.Summary += " (" + e.Reason + ")"
	}
	// One line, and no links: chat clients render those, and a webhook's
	// URL may carry a token.
	n.Summary = strings.Join(strings.Fields(urlRE.ReplaceAllString(n.Summary, "<url>")), " ")
	return n
}

var urlRE = regexp.MustCompile(`"?[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"]*"?`)
