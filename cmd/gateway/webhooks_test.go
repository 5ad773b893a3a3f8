package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/canary/rollout"
	"github.com/modelgate/modelgate/internal/testmodels"
)

// hookLog is a real HTTP server for a canary's webhooks and notifications:
// it records every call (path, body, when) and answers confirm-promotion
// with 403 until approved.
type hookLog struct {
	mu       sync.Mutex
	calls    map[string][]time.Time
	bodies   map[string][]string
	approved bool
}

func (h *hookLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls[r.URL.Path] = append(h.calls[r.URL.Path], time.Now())
	h.bodies[r.URL.Path] = append(h.bodies[r.URL.Path], string(b))
	if r.URL.Path == "/confirm" && !h.approved {
		w.WriteHeader(http.StatusForbidden)
	}
}

func (h *hookLog) count(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls[path])
}

// TestCanaryWebhooksTwoGateways: two gateways on one registry run a canary
// whose plan has a rollout webhook, a confirm-promotion webhook and a
// notifier. The rollout hook is called once per tick period between them;
// the canary waits at its last step for confirm-promotion, also across a
// restart of both gateways, and is promoted once the hook approves; the
// notifier is told each event once.
func TestCanaryWebhooksTwoGateways(t *testing.T) {
	hooks := &hookLog{calls: map[string][]time.Time{}, bodies: map[string][]string{}}
	hs := httptest.NewServer(hooks)
	t.Cleanup(hs.Close)

	dir := t.TempDir()
	reg := canaryRig(t, dir, testmodels.CanaryGood())
	cfg := canaryConfig(t, dir)
	tick := 250 * time.Millisecond
	cfg.Canary.Tick = tick
	a, stopA := startGatewayCancel(t, cfg)
	b, stopB := startGatewayCancel(t, cfg)
	for _, g := range []string{a, b} {
		waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(g, "m") == "1" })
	}
	tr := startTraffic(t, 4, a, b)
	plan := testPlan(time.Second)
	plan.Steps = []float64{50, 100}
	for _, spec := range []string{"rollout=" + hs.URL + "/rollout,retries=0", "confirm-promotion=" + hs.URL + "/confirm,retries=0"} {
		h, err := release.ParseWebhook(spec)
		if err != nil {
			t.Fatal(err)
		}
		plan.Webhooks = append(plan.Webhooks, h)
	}
	plan.Notify = []release.Notifier{{Kind: "json", URL: hs.URL + "/notify"}}
	started := time.Now()
	if _, err := reg.StartCanary(context.Background(), "m", "2", plan, false, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, "the canary to wait for confirm-promotion", func() bool {
		rel, err := reg.Release(context.Background(), "m")
		return err == nil && rel.Canary.Progress.Hold != nil && rel.Canary.Progress.Hold.For == release.HoldConfirmPromotion
	})
	waitFor(t, 30*time.Second, "confirm-promotion asked twice", func() bool { return hooks.count("/confirm") >= 2 })
	// One call per tick period between the two replicas: the claims are
	// at least 0.8 of a period apart (release.ClaimTick), so in the time
	// elapsed there is room for at most elapsed/(0.8 tick) + 1 of them.
	elapsed := time.Since(started)
	if n, most := hooks.count("/rollout"), int(elapsed/(tick*8/10))+1; n > most || n == 0 {
		t.Fatalf("the rollout hook was called %d times in %s by two gateways ticking every %s, want 1 to %d", n, elapsed, tick, most)
	}
	tr.Stop()
	stopA()
	stopB()

	// Both restarted: the canary still waits.
	c := startGateway(t, cfg)
	waitFor(t, 30*time.Second, "the restarted gateway to ask confirm-promotion", func() bool { return hooks.count("/confirm") >= 4 })
	if rel, _ := reg.Release(context.Background(), "m"); rel.Canary.Progress.Phase != release.Progressing || rel.Stable != "1" {
		t.Fatalf("after the restart, before approval: stable %s, %s", rel.Stable, rel.Canary.Progress.Phase)
	}
	startTraffic(t, 2, c)
	hooks.mu.Lock()
	hooks.approved = true
	hooks.mu.Unlock()
	rel := waitTerminal(t, reg, 60*time.Second)
	if rel.Canary.Progress.Phase != release.Promoted || rel.Stable != "2" {
		t.Fatalf("after approval: %s (%s)", rel.Canary.Progress.Phase, rel.Canary.Progress.Reason)
	}
	waitFor(t, 30*time.Second, "the promotion told", func() bool { return hooks.count("/notify") >= 3 })
	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	seen := map[string]int{}
	for _, body := range hooks.bodies["/notify"] {
		var n rollout.Notification
		if err := json.Unmarshal([]byte(body), &n); err != nil {
			t.Fatal(err)
		}
		seen[n.Event]++
	}
	if seen[release.ActionCanaryStart] != 1 || seen[release.ActionCanaryStep] != 1 || seen[release.ActionCanaryPromote] != 1 {
		t.Fatalf("notifications by event %v, want each of start, step, promote once", seen)
	}
}

// TestCanaryManualStepTwoGateways: a canary with a manual step holds at
// its weight on both gateways until an operator resumes it, then goes on
// to promotion.
func TestCanaryManualStepTwoGateways(t *testing.T) {
	dir := t.TempDir()
	reg := canaryRig(t, dir, testmodels.CanaryGood())
	cfg := canaryConfig(t, dir)
	cfg.Canary.Tick = 250 * time.Millisecond
	a := startGateway(t, cfg)
	b := startGateway(t, cfg)
	for _, g := range []string{a, b} {
		waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(g, "m") == "1" })
	}
	startTraffic(t, 4, a, b)
	plan := testPlan(time.Second)
	var err error
	if plan.Steps, plan.Pauses, err = release.ParseSteps("50,pause,100"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.StartCanary(context.Background(), "m", "2", plan, false, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, "the manual step", func() bool {
		rel, err := reg.Release(context.Background(), "m")
		return err == nil && rel.Canary.Progress.Hold != nil && rel.Canary.Progress.Hold.For == release.HoldPause
	})
	// Held: the gateways go on ticking (the analysis recorded three
	// intervals after the hold began) and it is still at 50 % on both.
	waitFor(t, 30*time.Second, "ticks three intervals into the manual step", func() bool {
		rel, err := reg.Release(context.Background(), "m")
		p := rel.Canary.Progress
		return err == nil && p.Hold != nil && rel.Canary.Analysis != nil && rel.Canary.Analysis.Time.After(p.Hold.Since.Add(3*plan.Interval))
	})
	for _, g := range []string{a, b} {
		if st := modelStatus(g); st.Weight != 50 || st.Candidate != "2" {
			t.Fatalf("%s during the manual step: %+v", g, st)
		}
	}
	if rel, _ := reg.Release(context.Background(), "m"); rel.Canary.Progress.Weight != 50 || rel.Canary.Progress.Phase != release.Progressing {
		t.Fatalf("the manual step moved on by itself: %+v", rel.Canary.Progress)
	}
	if _, err := reg.CanaryAction(context.Background(), "m", "resume", "looks good"); err != nil {
		t.Fatal(err)
	}
	rel := waitTerminal(t, reg, 60*time.Second)
	if rel.Canary.Progress.Phase != release.Promoted || rel.Stable != "2" {
		t.Fatalf("after resume: %s (%s)", rel.Canary.Progress.Phase, rel.Canary.Progress.Reason)
	}
}
