package rollout_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/canary/rollout"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/internal/testclock"
	"github.com/prometheus/client_golang/prometheus"
)

// hookServer is a real HTTP server standing in for webhooks and
// notification sinks: each path answers what status says (a 0 status
// hangs until the request's context ends), and every body is kept.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	status map[string]int
	bodies map[string][]string
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{status: map[string]int{}, bodies: map[string][]string{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies[r.URL.Path] = append(h.bodies[r.URL.Path], string(b))
		code, ok := h.status[r.URL.Path]
		h.mu.Unlock()
		if !ok {
			code = 200
		}
		if code == 0 {
			<-r.Context().Done() // hang
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) set(path string, code int) {
	h.mu.Lock()
	h.status[path] = code
	h.mu.Unlock()
}

func (h *hookServer) got(path string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bodies[path]...)
}

func hook(t *testing.T, spec string) release.Webhook {
	t.Helper()
	h, err := release.ParseWebhook(spec)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// setupPlan is setup with a plan of the test's and two controllers on one
// registry (replicas gw-1 and gw-2).
func setupPlan(t *testing.T, plan release.Plan) (releasetest.Registry, *testclock.Clock, *rollout.Controller, *rollout.Controller, *prometheus.Registry) {
	t.Helper()
	reg, clk := rig(t, plan)
	metrics := prometheus.NewRegistry()
	src := &fixedSource{obs: healthy}
	one := rollout.New(rollout.Options{Registry: reg.Registry, Catalog: &fakeCatalog{}, Source: src, Replica: "gw-1", Registerer: metrics, Now: clk.Now, Tick: 15 * time.Second})
	two := rollout.New(rollout.Options{Registry: reg.Registry, Catalog: &fakeCatalog{}, Source: src, Replica: "gw-2", Now: clk.Now, Tick: 15 * time.Second})
	t.Cleanup(func() { one.Wait(); two.Wait() })
	return reg, clk, one, two, metrics
}

func progress(t *testing.T, reg releasetest.Registry) release.Progress {
	t.Helper()
	rel, err := reg.Release(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	return rel.Canary.Progress
}

// run ticks both controllers on the state as it is (each reads it
// first), n times, a tick period apart.
func run(t *testing.T, reg releasetest.Registry, clk *testclock.Clock, n int, ctls ...*rollout.Controller) {
	t.Helper()
	for range n {
		for _, c := range ctls {
			rel, err := reg.Release(context.Background(), "m")
			if err != nil {
				t.Fatal(err)
			}
			c.Tick(context.Background(), rel)
		}
		clk.Add(15 * time.Second)
	}
}

func TestPreRolloutAndConfirmRollout(t *testing.T) {
	hs := newHookServer(t)
	plan := release.DefaultPlan()
	plan.Webhooks = []release.Webhook{hook(t, "pre-rollout="+hs.URL+"/pre"), hook(t, "confirm-rollout="+hs.URL+"/confirm,retries=0")}
	hs.set("/confirm", 403)
	reg, clk, one, two, _ := setupPlan(t, plan)
	if p := progress(t, reg); p.Weight != 0 || p.Hold == nil || p.Hold.For != release.HoldPreRollout {
		t.Fatalf("a canary with a pre-rollout hook starts at %g%% holding %+v, want 0%% waiting", p.Weight, p.Hold)
	}
	run(t, reg, clk, 1, one, two)
	if p := progress(t, reg); p.Hold == nil || p.Hold.For != release.HoldConfirmRollout || p.Weight != 0 {
		t.Fatalf("after the pre-rollout hook passed: %+v", p)
	}
	if n := len(hs.got("/pre")); n != 1 {
		t.Fatalf("the pre-rollout hook was called %d times by two replicas in one tick, want 1", n)
	}
	var body rollout.HookPayload
	if err := json.Unmarshal([]byte(hs.got("/pre")[0]), &body); err != nil || body.Model != "m" || body.Candidate != "2" || body.Stable != "1" || body.Type != release.HookPreRollout {
		t.Fatalf("pre-rollout body %+v (%v)", body, err)
	}
	run(t, reg, clk, 3, one, two)
	if p := progress(t, reg); p.Weight != 0 || !strings.Contains(p.Reason, "") {
		t.Fatalf("the confirm-rollout hook answers 403, yet weight %g", p.Weight)
	}
	if n := len(hs.got("/confirm")); n != 3 {
		t.Fatalf("confirm-rollout called %d times in 3 tick periods by two replicas, want 3", n)
	}
	hs.set("/confirm", 204)
	run(t, reg, clk, 1, one, two)
	if p := progress(t, reg); p.Weight != 5 || p.Hold != nil || p.Phase != release.Progressing {
		t.Fatalf("after approval: %+v", p)
	}
}

func TestPreRolloutFailureStopsTheCanary(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(hs *hookServer) string // the pre-rollout URL
	}{
		{"500", func(hs *hookServer) string { hs.set("/pre", 500); return hs.URL + "/pre" }},
		{"hangs", func(hs *hookServer) string { hs.set("/pre", 0); return hs.URL + "/pre,timeout=100ms" }},
		{"down", func(hs *hookServer) string {
			down := httptest.NewServer(http.NotFoundHandler())
			down.Close()
			return down.URL + "/pre"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHookServer(t)
			plan := release.DefaultPlan()
			plan.Webhooks = []release.Webhook{hook(t, "pre-rollout="+tc.setup(hs)+",retries=1"),
				hook(t, "rollback="+hs.URL+"/rollback"), hook(t, "post-rollout="+hs.URL+"/post")}
			plan.Notify = []release.Notifier{{Kind: "json", URL: hs.URL + "/notify"}, {Kind: "slack", URL: hs.URL + "/slack"}}
			reg, clk, one, two, metrics := setupPlan(t, plan)
			run(t, reg, clk, 1, one, two)
			p := progress(t, reg)
			if p.Phase != release.RolledBack || p.Weight != 0 || !strings.Contains(p.Reason, "stopped before any traffic: pre-rollout webhook") {
				t.Fatalf("after a failed pre-rollout hook: %+v", p)
			}
			if got := counterValue(t, metrics, "modelgate_canary_webhook_calls_total", "result", "failed"); got != 1 {
				t.Errorf("failed webhook calls %g, want 1", got)
			}
			run(t, reg, clk, 1, one, two) // tell what happened, once
			one.Wait()
			two.Wait()
			if n, m := len(hs.got("/rollback")), len(hs.got("/post")); n != 1 || m != 1 {
				t.Fatalf("rollback hook called %d times, post-rollout %d, want 1 each", n, m)
			}
			notes := hs.got("/notify")
			if len(notes) != 2 {
				t.Fatalf("notifications %q, want the start and the rollback", notes)
			}
			var n rollout.Notification
			if err := json.Unmarshal([]byte(notes[1]), &n); err != nil || n.Event != release.ActionCanaryRollback || !strings.Contains(n.Summary, "m: canary of 2 rolled back: 1 stays stable") {
				t.Fatalf("rollback notification %+v (%v)", n, err)
			}
			slack := hs.got("/slack")
			if len(slack) != 2 || !strings.HasPrefix(slack[1], `{"text":"m: canary of 2 rolled back`) || strings.Contains(slack[1], "http") {
				t.Fatalf("slack bodies %q", slack)
			}
		})
	}
}

// A rollout hook that answers 500 counts as a failed check: two in a row
// roll back.
func TestRolloutHookFailureCountsAsAFailedCheck(t *testing.T) {
	hs := newHookServer(t)
	plan := release.DefaultPlan()
	plan.Webhooks = []release.Webhook{hook(t, "rollout="+hs.URL+"/load-test,retries=0")}
	reg, clk, one, two, _ := setupPlan(t, plan)
	run(t, reg, clk, 2, one, two)
	if p := progress(t, reg); p.Phase != release.Progressing || p.Failures != 0 {
		t.Fatalf("with the rollout hook answering 200: %+v", p)
	}
	hs.set("/load-test", 500)
	run(t, reg, clk, 1, one, two)
	if p := progress(t, reg); p.Failures != 1 || !strings.Contains(p.Reason, `rollout webhook "rollout" answered 500`) {
		t.Fatalf("one 500: %+v", p)
	}
	run(t, reg, clk, 1, one, two)
	if p := progress(t, reg); p.Phase != release.RolledBack {
		t.Fatalf("two 500s in a row: %+v", p)
	}
	if n := len(hs.got("/load-test")); n != 4 {
		t.Fatalf("rollout hook called %d times in 4 tick periods by two replicas, want 4", n)
	}
}

// Manual steps: an untimed pause holds until resumed, a timed one until
// its time is up; confirm-promotion holds the last step until approved.
func TestPausesAndConfirmPromotion(t *testing.T) {
	hs := newHookServer(t)
	hs.set("/approve", 409)
	plan := release.DefaultPlan()
	var err error
	if plan.Steps, plan.Pauses, err = release.ParseSteps("5,pause,50,pause:3m,100"); err != nil {
		t.Fatal(err)
	}
	plan.Webhooks = []release.Webhook{hook(t, "confirm-promotion="+hs.URL+"/approve,retries=0")}
	reg, clk, one, _, _ := setupPlan(t, plan)
	ctx := context.Background()
	run(t, reg, clk, 5, one) // a 1m step passes after its interval
	p := progress(t, reg)
	if p.Hold == nil || p.Hold.For != release.HoldPause || p.Weight != 5 || !p.Hold.Until.IsZero() {
		t.Fatalf("after step 1: %+v", p)
	}
	run(t, reg, clk, 20, one)
	if p := progress(t, reg); p.Weight != 5 || p.Hold == nil {
		t.Fatalf("an untimed pause moved on by itself: %+v", p)
	}
	if _, err := reg.CanaryAction(ctx, "m", "resume", "looks fine"); err != nil {
		t.Fatal(err)
	}
	if p := progress(t, reg); p.Weight != 50 || p.Hold != nil || p.Step != 1 {
		t.Fatalf("after resume: %+v", p)
	}
	run(t, reg, clk, 5, one)
	if p := progress(t, reg); p.Hold == nil || p.Hold.Until.IsZero() || p.Weight != 50 {
		t.Fatalf("after step 2, a timed pause: %+v", p)
	}
	if _, err := reg.CanaryAction(ctx, "m", "resume", ""); err != nil {
		t.Fatal(err)
	}
	run(t, reg, clk, 5, one) // 100 % for its interval
	p = progress(t, reg)
	if p.Hold == nil || p.Hold.For != release.HoldConfirmPromotion || p.Weight != 100 {
		t.Fatalf("after the last step: %+v", p)
	}
	if _, err := reg.CanaryAction(ctx, "m", "resume", ""); err == nil || !strings.Contains(err.Error(), "waits for its confirm-promotion webhooks") {
		t.Fatalf("resume while waiting for confirm-promotion: %v", err)
	}
	run(t, reg, clk, 3, one)
	if p := progress(t, reg); p.Phase != release.Progressing {
		t.Fatalf("promoted although confirm-promotion answers 409: %+v", p)
	}
	hs.set("/approve", 200)
	run(t, reg, clk, 1, one)
	rel, err := reg.Release(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Canary.Progress.Phase != release.Promoted || rel.Stable != "2" {
		t.Fatalf("after approval: stable %s %+v", rel.Stable, rel.Canary.Progress)
	}
}

// A timed pause moves on by itself once its time is up.
func TestTimedPause(t *testing.T) {
	plan := release.DefaultPlan()
	var err error
	if plan.Steps, plan.Pauses, err = release.ParseSteps("5,pause:2m,100"); err != nil {
		t.Fatal(err)
	}
	reg, clk, one, _, _ := setupPlan(t, plan)
	run(t, reg, clk, 5, one)
	if p := progress(t, reg); p.Hold == nil || p.Weight != 5 {
		t.Fatalf("after step 1: %+v", p)
	}
	run(t, reg, clk, 7, one) // 1m45s: not yet
	if p := progress(t, reg); p.Weight != 5 {
		t.Fatalf("the 2m pause ended early: %+v", p)
	}
	run(t, reg, clk, 2, one)
	if p := progress(t, reg); p.Weight != 100 || p.Hold != nil {
		t.Fatalf("after 2m: %+v", p)
	}
}
