package catalog_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/registry"
	"github.com/prometheus/client_golang/prometheus"
)

// countingSource counts the fetches of each version.
type countingSource struct {
	catalog.Source
	mu      sync.Mutex
	fetches map[string]int
}

func (s *countingSource) Fetch(ctx context.Context, name, version string) ([]byte, registry.Manifest, error) {
	s.mu.Lock()
	s.fetches[name+"/"+version]++
	s.mu.Unlock()
	return s.Source.Fetch(ctx, name, version)
}

func (s *countingSource) count(nv string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches[nv]
}

// newCanaryFixture is a fixture over m/1 (stable) and m/2 whose source
// counts fetches.
func newCanaryFixture(t *testing.T, opts ...func(*catalog.Options)) (*fixture, *countingSource) {
	t.Helper()
	var src *countingSource
	f := newFixture(t, []string{"m/1", "m/2"}, append([]func(*catalog.Options){func(o *catalog.Options) {
		src = &countingSource{Source: o.Source, fetches: map[string]int{}}
		o.Source = src
	}}, opts...)...)
	return f, src
}

func (f *fixture) startCanary(version string) release.State {
	f.t.Helper()
	s, err := f.reg.StartCanary(f.t.Context(), "m", version, release.DefaultPlan(), false, "")
	if err != nil {
		f.t.Fatalf("start canary of %s: %v", version, err)
	}
	return s
}

// setStep moves the canary to step (index into the default plan's
// steps) in the registry and returns the new release state.
func (f *fixture) setStep(step int) release.State {
	f.t.Helper()
	s, err := f.reg.Edit(f.t.Context(), "m", func(s *release.State) error {
		c := *s.Canary
		c.Progress.Step, c.Progress.Weight = step, c.Plan.Steps[step]
		s.Canary = &c
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// route is Route that must succeed; it returns the version and role that
// serve key and whether a comparison came with them, releasing everything.
func (f *fixture) route(key string) (version, role string, compare string) {
	f.t.Helper()
	r, err := f.cat.Route(f.t.Context(), "m", key)
	if err != nil {
		f.t.Fatalf("Route(%q): %v", key, err)
	}
	defer r.Release()
	if r.Compare != nil {
		compare = r.Compare.Version()
	}
	return r.Session.Version(), r.Role, compare
}

func routingKeys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("customer-%d", i)
	}
	return out
}

// Without a canary every request goes to stable, keyed or not.
func TestRouteWithoutCanary(t *testing.T) {
	f, _ := newCanaryFixture(t)
	f.sync()
	for _, k := range append(routingKeys(500), "") {
		if v, role, cmp := f.route(k); v != "1" || role != canary.RoleStable || cmp != "" {
			t.Fatalf("Route(%q) = version %s, role %s, compare %q; want stable 1 alone", k, v, role, cmp)
		}
	}
	if err := f.cat.CandidateError("m"); err != nil {
		t.Fatalf("CandidateError without a canary: %v", err)
	}
}

// The candidate is loaded by Sync and takes its weight of the traffic,
// stickily by key; stepping up keeps every key that was on it.
func TestRouteCanaryWeightAndStickiness(t *testing.T) {
	rec := canary.NewRecorder(prometheus.NewRegistry())
	f, src := newCanaryFixture(t, func(o *catalog.Options) { o.Recorder = rec })
	f.sync()
	rel := f.startCanary("2")
	// Not loaded yet: stable serves everything.
	for _, k := range routingKeys(200) {
		if v, _, _ := f.route(k); v != "1" {
			t.Fatalf("before Sync loaded the candidate, key %q went to %s", k, v)
		}
	}
	f.sync()
	ms := f.modelStatus("m")
	if ms.Candidate != "2" || ms.Weight != 5 || ms.Phase != string(release.Progressing) || ms.CandidateError != "" || ms.Version != "1" {
		t.Fatalf("status after Sync: %+v", ms)
	}
	// The recorder's window is the canary's current step.
	rec.Observe("m", "2", canary.RoleCandidate, canary.OutcomeOK, time.Millisecond, true)
	if o := rec.Observations("m", rel.Canary.Epoch()); o.Candidate.Requests != 1 {
		t.Fatalf("recorder window is not the canary's epoch: %+v", o)
	}

	keys := routingKeys(4000)
	onCandidate := func(weight float64) map[string]bool {
		t.Helper()
		on := map[string]bool{}
		for _, k := range keys {
			v, role, _ := f.route(k)
			switch {
			case v == "2" && role == canary.RoleCandidate:
				on[k] = true
			case v == "1" && role == canary.RoleStable:
			default:
				t.Fatalf("key %q: version %s as %s", k, v, role)
			}
			if want := canary.ToCandidate(k, weight); on[k] != want {
				t.Fatalf("key %q on the candidate: %v, want %v at %g%%", k, on[k], want, weight)
			}
		}
		if share := 100 * float64(len(on)) / float64(len(keys)); math.Abs(share-weight) > 2.5 {
			t.Fatalf("%.1f%% of keys on the candidate at weight %g%%", share, weight)
		}
		return on
	}
	at5 := onCandidate(5)
	// The same key again goes the same way.
	for k := range at5 {
		if v, _, _ := f.route(k); v != "2" {
			t.Fatalf("key %q moved back to %s at the same weight", k, v)
		}
	}
	f.setStep(1)
	f.sync()
	at25 := onCandidate(25)
	for k := range at5 {
		if !at25[k] {
			t.Fatalf("key %q was on the candidate at 5%% but not at 25%%", k)
		}
	}
	if src.count("m/2") != 1 {
		t.Errorf("the candidate was fetched %d times, want once", src.count("m/2"))
	}
	// The candidate answers as version 2 does.
	s := f.acquire("m", "2", "2")
	defer s.Release()
	if got, want := mustRun(t, s), reference(t, "2"); !got.equal(want) {
		t.Errorf("candidate answers %+v, want %+v", got, want)
	}
}

// A request pinned to the candidate's version gets the candidate's
// session, not a second copy.
func TestPinnedCandidateIsTheCandidate(t *testing.T) {
	f, src := newCanaryFixture(t)
	f.sync()
	f.startCanary("2")
	f.sync()
	f.setStep(3) // 100 %: every unpinned request goes to the candidate
	f.sync()
	r, err := f.cat.Route(t.Context(), "m", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if r.Role != canary.RoleCandidate {
		t.Fatalf("at 100%% Route gave %s %s", r.Role, r.Session.Version())
	}
	pinned := f.acquire("m", "2", "2")
	defer pinned.Release()
	if pinned != r.Session {
		t.Error("a request pinned to the candidate's version got another session")
	}
	if n := src.count("m/2"); n != 1 {
		t.Errorf("version 2 fetched %d times, want once", n)
	}
	if ms := f.modelStatus("m"); len(ms.Pinned) != 0 {
		t.Errorf("the candidate is listed as pinned: %+v", ms)
	}
}

// A rolled-back canary's candidate takes no more traffic at once and is
// destroyed after its last request.
func TestRolledBackCandidateIsUnloaded(t *testing.T) {
	f, _ := newCanaryFixture(t)
	f.sync()
	f.startCanary("2")
	f.sync()
	cand := f.acquire("m", "2", "2") // a request in flight on the candidate
	rel, err := f.reg.Rollback(t.Context(), "m", "test")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Canary.Progress.Phase != release.RolledBack {
		t.Fatalf("phase %s", rel.Canary.Progress.Phase)
	}
	f.cat.ApplyRelease(rel)
	if isDone(cand) {
		t.Fatal("the candidate was destroyed under a request in flight")
	}
	for _, k := range routingKeys(500) {
		if v, role, _ := f.route(k); v != "1" || role != canary.RoleStable {
			t.Fatalf("after the rollback key %q went to %s (%s)", k, v, role)
		}
	}
	if ms := f.modelStatus("m"); ms.Candidate != "" || ms.Weight != 0 || ms.Version != "1" {
		t.Fatalf("status after the rollback: %+v", ms)
	}
	cand.Release()
	waitDone(t, cand)
	// A later Sync does not load it again.
	f.sync()
	if v, _, _ := f.route(""); v != "1" {
		t.Fatalf("after Sync: %s", v)
	}
	if loaded := series(t, f.metrics, "modelgate_model_loaded"); loaded["model=m,provider=cpu,role=candidate,version=2"] != 0 {
		t.Errorf("modelgate_model_loaded still shows the candidate: %v", loaded)
	}
}

// A promoted candidate becomes stable as it is: the same session, no
// second fetch, and the old stable is destroyed.
func TestPromotedCandidateBecomesStable(t *testing.T) {
	for _, via := range []string{"ApplyRelease", "Sync"} {
		t.Run(via, func(t *testing.T) {
			f, src := newCanaryFixture(t)
			f.sync()
			old := f.acquire("m", "", "1")
			old.Release()
			f.startCanary("2")
			f.sync()
			cand := f.acquire("m", "2", "2")
			cand.Release()
			rel, err := f.reg.CanaryAction(t.Context(), "m", releasetest.CanaryPromote, "")
			if err != nil {
				t.Fatal(err)
			}
			if via == "ApplyRelease" {
				f.cat.ApplyRelease(rel)
			} else {
				f.sync()
			}
			s := f.acquire("m", "", "2")
			defer s.Release()
			if s != cand {
				t.Error("the promoted stable is not the candidate's session")
			}
			f.sync()
			if n := src.count("m/2"); n != 1 {
				t.Errorf("version 2 fetched %d times, want once", n)
			}
			waitDone(t, old)
			ms := f.modelStatus("m")
			if ms.Version != "2" || ms.Candidate != "" || ms.Weight != 0 {
				t.Errorf("status after promotion: %+v", ms)
			}
			for _, k := range routingKeys(100) {
				if v, role, _ := f.route(k); v != "2" || role != canary.RoleStable {
					t.Fatalf("key %q: %s as %s, want stable 2", k, v, role)
				}
			}
		})
	}
}

// A release state older than one applied already (a slow Sync finishing
// after a controller tick) changes nothing.
func TestOlderReleaseStateIgnored(t *testing.T) {
	f, _ := newCanaryFixture(t)
	f.sync()
	f.startCanary("2")
	f.sync()
	at5, err := f.reg.Release(t.Context(), "m")
	if err != nil {
		t.Fatal(err)
	}
	at25 := f.setStep(1)
	at25.Updated = at5.Updated.Add(time.Second) // strictly newer, whatever the clock did
	f.cat.ApplyRelease(at25)
	if ms := f.modelStatus("m"); ms.Weight != 25 {
		t.Fatalf("weight %g after applying step 2, want 25", ms.Weight)
	}
	f.cat.ApplyRelease(at5)
	if ms := f.modelStatus("m"); ms.Weight != 25 {
		t.Fatalf("an older release state set the weight back to %g", ms.Weight)
	}
	// An older state in which the canary had ended does not unload it.
	ended := at5
	c := *ended.Canary
	c.Progress.Phase, c.Progress.Weight = release.Aborted, 0
	ended.Canary, ended.Candidate = &c, ""
	f.cat.ApplyRelease(ended)
	if ms := f.modelStatus("m"); ms.Candidate != "2" || ms.Weight != 25 {
		t.Fatalf("an older aborted state was applied: %+v", ms)
	}
	s := f.acquire("m", "2", "2")
	s.Release()
	if isDone(s) {
		t.Fatal("the candidate was unloaded by an older state")
	}
}

// A candidate that does not load takes no traffic, and says why.
func TestCandidateLoadFailure(t *testing.T) {
	f := newFixture(t, []string{"m/1"})
	f.push("m", "2", []byte("this is not an ONNX model"))
	f.sync()
	f.startCanary("2")
	err := f.cat.Sync(t.Context())
	if err == nil || !strings.Contains(err.Error(), "canary candidate") {
		t.Fatalf("Sync with a candidate that does not load: %v", err)
	}
	cerr := f.cat.CandidateError("m")
	if cerr == nil || !strings.Contains(cerr.Error(), "invalid model") {
		t.Fatalf("CandidateError = %v", cerr)
	}
	ms := f.modelStatus("m")
	if ms.Candidate != "2" || ms.Weight != 0 || ms.CandidateError != cerr.Error() || ms.State != "ready" || ms.Version != "1" || ms.Error != "" {
		t.Fatalf("status %+v", ms)
	}
	if st := f.cat.Status(); !st.Ready {
		t.Fatalf("a failed candidate made the gateway unready: %+v", st)
	}
	for _, k := range routingKeys(200) {
		if v, _, _ := f.route(k); v != "1" {
			t.Fatalf("key %q went to %s", k, v)
		}
	}
	if err := f.cat.CandidateError("ghost"); err != nil {
		t.Fatalf("CandidateError of an unknown model: %v", err)
	}
	// Once the canary ends, its load error is no longer reported.
	rel, err := f.reg.CanaryAction(t.Context(), "m", releasetest.CanaryAbort, "")
	if err != nil {
		t.Fatal(err)
	}
	f.cat.ApplyRelease(rel)
	if err := f.cat.CandidateError("m"); err != nil {
		t.Fatalf("CandidateError after abort: %v", err)
	}
	if ms := f.modelStatus("m"); ms.CandidateError != "" || ms.Candidate != "" {
		t.Fatalf("status after abort: %+v", ms)
	}
}

// With a shadow fraction of 1 every stable-served request also comes with
// the candidate to compare; with CompareSplit a candidate-served one comes
// with stable.
func TestRouteComparisons(t *testing.T) {
	f, _ := newCanaryFixture(t, func(o *catalog.Options) { o.ShadowFraction, o.CompareSplit = 1, true })
	f.sync()
	f.startCanary("2")
	f.sync()
	seen := map[string]bool{}
	for _, k := range routingKeys(1000) {
		v, role, cmp := f.route(k)
		want := map[string]string{"1": "2", "2": "1"}[v]
		if cmp != want {
			t.Fatalf("key %q: %s (%s) compared with %q, want %q", k, v, role, cmp, want)
		}
		seen[role] = true
	}
	if !seen[canary.RoleStable] || !seen[canary.RoleCandidate] {
		t.Fatalf("roles seen: %v", seen)
	}
}

// routeReq is RouteRequest that must succeed, like route.
func (f *fixture) routeReq(req canary.Request) (version, role, compare string) {
	f.t.Helper()
	r, err := f.cat.RouteRequest(f.t.Context(), "m", req)
	if err != nil {
		f.t.Fatalf("RouteRequest(%+v): %v", req, err)
	}
	defer r.Release()
	if r.Compare != nil {
		compare = r.Compare.Version()
	}
	return r.Session.Version(), r.Role, compare
}

// edit changes the canary's progress in the registry and syncs.
func (f *fixture) editProgress(change func(p *release.Progress)) {
	f.t.Helper()
	if _, err := f.reg.Edit(f.t.Context(), "m", func(s *release.State) error {
		c := *s.Canary
		change(&c.Progress)
		s.Canary = &c
		return nil
	}); err != nil {
		f.t.Fatal(err)
	}
	f.sync()
}

// A request matching the plan's header or cookie rules goes to the
// candidate whatever the weight (0 during a later hold too), alone and as
// the matched role; the others follow the weighted split exactly as
// Route does; while the canary waits before any traffic, and once it
// ended, nothing goes to the candidate.
func TestRouteMatchRules(t *testing.T) {
	f, _ := newCanaryFixture(t, func(o *catalog.Options) { o.ShadowFraction, o.CompareSplit = 1, true })
	f.sync()
	plan := release.DefaultPlan()
	for _, r := range []string{"header:x-beta-user=true", "cookie:cohort=~beta-.*"} {
		m, err := release.ParseMatch(r)
		if err != nil {
			t.Fatal(err)
		}
		plan.Match = append(plan.Match, m)
	}
	if _, err := f.reg.StartCanary(t.Context(), "m", "2", plan, false, ""); err != nil {
		t.Fatal(err)
	}
	// Before the candidate is loaded, a matching request goes to stable.
	beta := canary.Request{Header: http.Header{"X-Beta-User": {"true"}}}
	if v, role, _ := f.routeReq(beta); v != "1" || role != canary.RoleStable {
		t.Fatalf("before the candidate loaded: %s as %s", v, role)
	}
	f.sync()
	matching := []canary.Request{
		beta,
		{Header: http.Header{"Cookie": {"lang=en; cohort=beta-3"}}},
		{Metadata: map[string][]string{"x-beta-user": {"true"}}},
		{Metadata: map[string][]string{"cookie": {"cohort=beta-x"}}},
	}
	others := []http.Header{nil, {"X-Beta-User": {"false"}}, {"Cookie": {"cohort=alpha-1"}}}
	check := func(weight float64, matchedGo bool) {
		t.Helper()
		for _, k := range routingKeys(300) {
			for _, req := range matching {
				req.Key = k
				v, role, cmp := f.routeReq(req)
				switch {
				case matchedGo && (v != "2" || role != canary.RoleMatched || cmp != ""):
					t.Fatalf("weight %g: matching %+v went to %s as %s (compared with %q), want the candidate alone as matched", weight, req, v, role, cmp)
				case !matchedGo && v != "1":
					t.Fatalf("weight %g, before any traffic: matching %+v went to %s as %s", weight, req, v, role)
				}
			}
			for _, h := range others {
				v, role, _ := f.routeReq(canary.Request{Key: k, Header: h})
				wantV, wantRole := "1", canary.RoleStable
				if canary.ToCandidate(k, weight) {
					wantV, wantRole = "2", canary.RoleCandidate
				}
				if v != wantV || role != wantRole {
					t.Fatalf("weight %g: key %q with %v went to %s as %s, want %s as %s", weight, k, h, v, role, wantV, wantRole)
				}
				if pv, prole, _ := f.route(k); pv != v || prole != role {
					t.Fatalf("weight %g: key %q: Route says %s as %s, RouteRequest %s as %s", weight, k, pv, prole, v, role)
				}
			}
		}
	}
	check(5, true)
	f.setStep(2)
	f.sync()
	check(50, true)
	// A later hold at weight 0 (the rules hold; the split sends nothing).
	f.editProgress(func(p *release.Progress) {
		p.Weight, p.Hold = 0, &release.Hold{For: release.HoldPause, Since: time.Now()}
	})
	check(0, true)
	// Waiting for a confirm-rollout (or pre-rollout) webhook: no traffic.
	for _, hold := range []string{release.HoldConfirmRollout, release.HoldPreRollout} {
		f.editProgress(func(p *release.Progress) {
			p.Step, p.Weight, p.Hold = 0, 5, &release.Hold{For: hold, Since: time.Now()}
		})
		if ms := f.modelStatus("m"); ms.Weight != 0 {
			t.Fatalf("%s hold: weight %g in effect, want 0", hold, ms.Weight)
		}
		check(0, false)
	}
	f.editProgress(func(p *release.Progress) { p.Hold = nil })
	check(5, true)
	// Rules changed in the state take effect at the next apply.
	if _, err := f.reg.Edit(t.Context(), "m", func(s *release.State) error {
		c := *s.Canary
		c.Plan.Match = []release.MatchRule{{Header: "X-Tenant", Value: "acme"}}
		s.Canary = &c
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.sync()
	if v, role, _ := f.routeReq(beta); role == canary.RoleMatched {
		t.Fatalf("an old rule still matches: %s as %s", v, role)
	}
	if v, role, _ := f.routeReq(canary.Request{Header: http.Header{"X-Tenant": {"acme"}}}); v != "2" || role != canary.RoleMatched {
		t.Fatalf("the new rule: %s as %s", v, role)
	}
	// Once the canary ended, nothing matches.
	rel, err := f.reg.CanaryAction(t.Context(), "m", releasetest.CanaryAbort, "")
	if err != nil {
		t.Fatal(err)
	}
	f.cat.ApplyRelease(rel)
	for _, req := range matching {
		if v, role, _ := f.routeReq(req); v != "1" || role != canary.RoleStable {
			t.Fatalf("after the abort %+v went to %s as %s", req, v, role)
		}
	}
}

// Without rules RouteRequest allocates no more than Route does.
func TestRouteRequestWithoutRulesCostsNothing(t *testing.T) {
	f, _ := newCanaryFixture(t)
	f.sync()
	f.startCanary("2")
	f.sync()
	ctx := t.Context()
	h := http.Header{"X-Beta-User": {"true"}, "Cookie": {"cohort=beta"}}
	route := testing.AllocsPerRun(200, func() {
		r, _ := f.cat.Route(ctx, "m", "user-1")
		r.Release()
	})
	routeReq := testing.AllocsPerRun(200, func() {
		r, _ := f.cat.RouteRequest(ctx, "m", canary.Request{Key: "user-1", Header: h})
		r.Release()
	})
	if routeReq > route {
		t.Fatalf("RouteRequest without rules: %g allocations a request, Route %g", routeReq, route)
	}
}
