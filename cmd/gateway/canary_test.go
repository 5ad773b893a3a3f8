package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/config"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/internal/testmodels"
)

// The canary tests run real gateways over HTTP with real ONNX Runtime
// models (internal/testmodels): stable answers label argmax(x0, 0); the
// load sends x0 = 1 and x1 = 3 on every third request, 0 otherwise.

// traffic is a load of /predict requests on one or more gateways.
type traffic struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	ok       atomic.Int64
	failed   atomic.Int64
	firstErr atomic.Value
	mu       sync.Mutex
	versions map[string]int64
	targets  atomic.Pointer[[]string]
}

func startTraffic(t *testing.T, clients int, bases ...string) *traffic {
	t.Helper()
	tr := &traffic{stop: make(chan struct{}), versions: map[string]int64{}}
	tr.targets.Store(&bases)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
	for c := range clients {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			for n := 0; ; n++ {
				select {
				case <-tr.stop:
					return
				default:
				}
				x1 := 0
				if n%3 == 0 {
					x1 = 3
				}
				targets := *tr.targets.Load()
				base := targets[(c+n)%len(targets)]
				// Varied inputs, as real traffic has: the disagreement check
				// counts distinct inputs. x2 stays below 1, so only x1
				// decides what the test models do.
				x2 := float64((c*7919+n)%997) / 1000
				resp, err := hc.Post(base+"/predict", "application/json", strings.NewReader(fmt.Sprintf(`{"features":[1,%d,%g,0.25]}`, x1, x2)))
				if err != nil {
					tr.fail(err.Error())
					continue
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var got struct{ Version string }
				if resp.StatusCode != 200 || json.Unmarshal(raw, &got) != nil {
					tr.fail(fmt.Sprintf("%d %s", resp.StatusCode, raw))
					continue
				}
				tr.ok.Add(1)
				tr.mu.Lock()
				tr.versions[got.Version]++
				tr.mu.Unlock()
			}
		}()
	}
	t.Cleanup(tr.Stop)
	return tr
}

func (tr *traffic) fail(msg string) {
	tr.failed.Add(1)
	tr.firstErr.CompareAndSwap(nil, msg)
}

// Stop ends the load and waits for it; safe to call twice.
func (tr *traffic) Stop() {
	select {
	case <-tr.stop:
	default:
		close(tr.stop)
	}
	tr.wg.Wait()
}

// canaryRig is a registry with a stable version 1 and the given
// candidates as versions 2, 3, ...
func canaryRig(t *testing.T, location string, candidates ...[]byte) releasetest.Registry {
	t.Helper()
	return pushVersions(t, location, append([][]byte{testmodels.CanaryStable()}, candidates...)...)
}

func canaryConfig(t *testing.T, location string) config.Config {
	cfg := testConfig(t)
	cfg.Registry = location
	cfg.PollInterval = 100 * time.Millisecond
	cfg.Canary.ShadowFraction = 0.2
	return cfg
}

// testPlan is the default plan with a short interval and few samples.
// The p99 slack is 25 ms, not 2: the test machine is shared, and under
// its load a sub-millisecond model's p99 jumps by several milliseconds
// from one small sample to the next. The slow candidate is slower by far
// more than that.
func testPlan(interval time.Duration) release.Plan {
	p := release.DefaultPlan()
	p.Interval = interval
	p.MinSamples = 100
	p.P99LatencySlack = 25 * time.Millisecond
	return p
}

// waitPhase polls the release state until the canary of version reaches
// a terminal phase and returns the state.
func waitTerminal(t *testing.T, reg releasetest.Registry, timeout time.Duration) release.State {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rel, err := reg.Release(context.Background(), "m")
		if err == nil && rel.Canary != nil && rel.Canary.Progress.Phase.IsTerminal() {
			return rel
		}
		if time.Now().After(deadline) {
			dump, _ := json.MarshalIndent(rel, "", "  ")
			t.Fatalf("timed out waiting for the canary to end (err %v); release state:\n%s", err, dump)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func modelStatus(base string) catalog.ModelStatus {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return catalog.ModelStatus{}
	}
	defer resp.Body.Close()
	var st catalog.Status
	_ = json.NewDecoder(resp.Body).Decode(&st)
	for _, m := range st.Models {
		if m.Name == "m" {
			return m
		}
	}
	return catalog.ModelStatus{}
}

// stepReasons are the reasons of the canary-step and promote events.
func stepReasons(rel release.State) []string {
	var out []string
	for _, e := range rel.History {
		if e.Action == release.ActionCanaryStep || e.Action == release.ActionCanaryPromote {
			out = append(out, e.Action+": "+e.Reason)
		}
	}
	return out
}

// A good candidate walks 5 → 25 → 50 → 100 % under steady load and
// becomes stable, with zero failed requests.
func TestCanaryGoodCandidateIsPromoted(t *testing.T) {
	dir := t.TempDir()
	reg := canaryRig(t, dir, testmodels.CanaryGood())
	base := startGateway(t, canaryConfig(t, dir))
	waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "m") == "1" })
	tr := startTraffic(t, 4, base)

	// Watch the weights the gateway applies while the canary runs.
	var seen []float64
	watchDone := make(chan struct{})
	watchStop := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-watchStop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if w := modelStatus(base).Weight; w > 0 && (len(seen) == 0 || seen[len(seen)-1] != w) {
				seen = append(seen, w)
			}
		}
	}()
	start := time.Now()
	if _, err := reg.StartCanary(context.Background(), "m", "2", testPlan(time.Second), false, ""); err != nil {
		t.Fatal(err)
	}
	rel := waitTerminal(t, reg, 90*time.Second)
	took := time.Since(start)
	if rel.Canary.Progress.Phase != release.Promoted || rel.Stable != "2" || rel.Candidate != "" {
		evidence, _ := json.Marshal(rel.Canary.Analysis)
		t.Fatalf("canary ended %s (%s); stable %s, candidate %q; last analysis %s", rel.Canary.Progress.Phase, rel.Canary.Progress.Reason, rel.Stable, rel.Candidate, evidence)
	}
	waitFor(t, 30*time.Second, "version 2 served as stable", func() bool { return servingVersion(base, "m") == "2" })
	close(watchStop)
	<-watchDone
	tr.Stop()

	want := []string{"canary-step: step 1 passed; now 25%", "canary-step: step 2 passed; now 50%", "canary-step: step 3 passed; now 100%", "canary-promote: passed all 4 steps"}
	if got := stepReasons(rel); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("history steps:\n got %q\nwant %q", got, want)
	}
	if n := tr.failed.Load(); n > 0 {
		t.Fatalf("%d failed requests of %d; first: %v", n, n+tr.ok.Load(), tr.firstErr.Load())
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] < seen[i-1] {
			t.Fatalf("weights seen went down: %v", seen)
		}
	}
	if len(seen) == 0 || seen[0] != 5 {
		t.Fatalf("weights seen %v, want them to start at 5", seen)
	}
	t.Logf("promoted after %s; %d requests, by version %v; weights seen %v", took.Round(time.Millisecond), tr.ok.Load(), tr.versions, seen)
}

// Candidates that fail, answer NaN, are much slower, or disagree with
// stable on a third of the inputs are rolled back within two intervals,
// stable serving throughout; what clients see fail stays within the
// candidate's share of the traffic (the gateway answers a failed
// candidate request from stable, so here: none).
func TestCanaryBadCandidatesRollBack(t *testing.T) {
	dir := t.TempDir()
	reg := canaryRig(t, dir,
		testmodels.CanaryFailing(),       // 2
		testmodels.CanaryNaN(),           // 3
		testmodels.CanarySlow(1024, 200), // 4
		testmodels.CanaryDisagree(),      // 5
	)
	cfg := canaryConfig(t, dir)
	cfg.Canary.ShadowConcurrency = 1 // shadow copies of the slow one take a core each
	base := startGateway(t, cfg)
	waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "m") == "1" })
	tr := startTraffic(t, 8, base)
	const interval = 8 * time.Second
	for _, c := range []struct {
		name, version, metric string
	}{
		{"errors", "2", "error_rate_increase"},
		{"nan", "3", "nonfinite_rate"},
		{"slow", "4", "p99_latency"},
		{"disagrees", "5", "disagreement"},
	} {
		t.Run(c.name, func(t *testing.T) {
			okBefore, failedBefore := tr.ok.Load(), tr.failed.Load()
			rel, err := reg.StartCanary(context.Background(), "m", c.version, testPlan(interval), true, "test")
			if err != nil {
				t.Fatal(err)
			}
			started := rel.Canary.Started
			rel = waitTerminal(t, reg, 60*time.Second)
			st := rel.Canary.Progress
			if st.Phase != release.RolledBack || st.Weight != 0 || rel.Stable != "1" || rel.Candidate != "" {
				t.Fatalf("canary ended %s weight %g (%s); stable %s", st.Phase, st.Weight, st.Reason, rel.Stable)
			}
			if !strings.Contains(st.Reason, c.metric) {
				t.Fatalf("rolled back for %q, want %s", st.Reason, c.metric)
			}
			last := rel.History[len(rel.History)-1]
			if last.Action != release.ActionCanaryRollback || last.Extra["analysis"] == nil {
				t.Fatalf("last event %+v, want a canary-rollback with the analysis as evidence", last)
			}
			if took := last.Time.Sub(started); took > 2*interval {
				t.Fatalf("rolled back %s after the start, more than two intervals (%s)", took, 2*interval)
			}
			waitFor(t, 10*time.Second, "the candidate unloaded", func() bool { return modelStatus(base).Candidate == "" })
			requests := tr.ok.Load() - okBefore + tr.failed.Load() - failedBefore
			failed := tr.failed.Load() - failedBefore
			if bound := int64(float64(requests) * 5 / 100); failed > bound {
				t.Fatalf("%d of %d requests failed, more than the candidate's 5%% share; first: %v", failed, requests, tr.firstErr.Load())
			}
			o := rel.Canary.Analysis.Observations
			t.Logf("rolled back after %s: %s; %d requests, %d failed; p99 stable %s, candidate %s", last.Time.Sub(started).Round(time.Millisecond), st.Reason, requests, failed, o.Stable.P99, o.Candidate.P99)
		})
	}
	tr.Stop()
	if v := servingVersion(base, "m"); v != "1" {
		t.Fatalf("stable served %q after the canaries, want 1", v)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.versions["1"] == 0 {
		t.Fatalf("versions answered: %v", tr.versions)
	}
}

// With no traffic at all the canary holds at its first step: it is not
// promoted, however long it waits.
func TestCanaryHoldsWithoutTraffic(t *testing.T) {
	dir := t.TempDir()
	reg := canaryRig(t, dir, testmodels.CanaryGood())
	base := startGateway(t, canaryConfig(t, dir))
	waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "m") == "1" })
	const interval = 200 * time.Millisecond
	if _, err := reg.StartCanary(context.Background(), "m", "2", testPlan(interval), false, ""); err != nil {
		t.Fatal(err)
	}
	// Wait for ten analyses past several intervals, each holding.
	var rel release.State
	waitFor(t, 30*time.Second, "analyses after five intervals", func() bool {
		var err error
		rel, err = reg.Release(context.Background(), "m")
		return err == nil && rel.Canary.Analysis != nil && rel.Canary.Analysis.Time.Sub(rel.Canary.Started) > 5*interval
	})
	st := rel.Canary.Progress
	if st.Phase != release.Progressing || st.Step != 0 || st.Weight != 5 || st.Failures != 0 {
		t.Fatalf("without traffic the canary is %+v, want it holding at step 1 (5%%)", st)
	}
	if !strings.Contains(rel.Canary.Analysis.Reason, "0 of 100 samples") {
		t.Fatalf("analysis says %q, want it to hold on 0 of 100 samples", rel.Canary.Analysis.Reason)
	}
}

// A routing key keeps its version as the weight grows, and pinned
// requests bypass the split.
func TestCanaryStickyKeysAndPins(t *testing.T) {
	dir := t.TempDir()
	reg := canaryRig(t, dir, testmodels.CanaryGood())
	base := startGateway(t, canaryConfig(t, dir))
	waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "m") == "1" })
	plan := testPlan(time.Hour) // no step passes by itself
	ctx := context.Background()
	if _, err := reg.StartCanary(ctx, "m", "2", plan, false, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "weight 5 applied", func() bool { return modelStatus(base).Weight == 5 })

	ask := func(key, query string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/predict"+query, strings.NewReader(`{"features":[1,0,0.5,0.25]}`))
		if key != "" {
			req.Header.Set("X-Modelgate-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct{ Version string }
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&got) != nil {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return got.Version
	}
	const keys = 400
	at5 := map[string]string{}
	onCandidate := 0
	for i := range keys {
		k := fmt.Sprintf("user-%d", i)
		at5[k] = ask(k, "")
		if at5[k] == "2" {
			onCandidate++
		}
		if again := ask(k, ""); again != at5[k] {
			t.Fatalf("key %s went to %s, then %s at the same weight", k, at5[k], again)
		}
	}
	if onCandidate == 0 || onCandidate > keys*15/100 {
		t.Fatalf("%d of %d keys on the candidate at 5%%", onCandidate, keys)
	}
	for range 20 {
		if v := ask("", "?version=1"); v != "1" {
			t.Fatalf("pinned to 1, answered by %s", v)
		}
		if v := ask("", "?version=2"); v != "2" {
			t.Fatalf("pinned to 2, answered by %s", v)
		}
	}
	// Move to the next step as the controller would.
	if _, err := reg.Edit(ctx, "m", func(s *release.State) error {
		c := *s.Canary
		c.Progress.Step, c.Progress.Weight, c.Progress.StepStart = 1, 25, time.Now()
		s.Canary = &c
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "weight 25 applied", func() bool { return modelStatus(base).Weight == 25 })
	at25 := 0
	for k, v := range at5 {
		now := ask(k, "")
		if v == "2" && now != "2" {
			t.Fatalf("key %s was on the candidate at 5%% and left it at 25%%", k)
		}
		if now == "2" {
			at25++
		}
	}
	if at25 <= onCandidate || at25 > keys*40/100 {
		t.Fatalf("%d keys on the candidate at 25%% (%d at 5%%), of %d", at25, onCandidate, keys)
	}
	t.Logf("keys on the candidate: %d at 5%%, %d at 25%% of %d", onCandidate, at25, keys)
}

// startGatewayCancel is startGateway with a way to stop it early. It
// listens on cfg.Listen when that names a port, else on a free one.
func startGatewayCancel(t *testing.T, cfg config.Config) (string, func()) {
	t.Helper()
	if !strings.HasPrefix(cfg.Listen, "127.0.0.1:") {
		cfg.Listen = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), ready) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case addr := <-ready:
		return "http://" + addr, stop
	case err := <-done:
		t.Fatalf("serve returned early: %v", err)
	}
	return "", stop
}

// Two gateways on one MinIO registry follow the same weights and take one
// transition per tick between them; when one is killed mid-canary the
// other carries it to the end.
func TestCanaryTwoGatewaysOneMinIO(t *testing.T) {
	_, reg, location := minioRegistry(t, testmodels.CanaryStable(), testmodels.CanaryGood())
	a, stopA := startGatewayCancel(t, canaryConfig(t, location))
	b, _ := startGatewayCancel(t, canaryConfig(t, location))
	for _, base := range []string{a, b} {
		waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "m") == "1" })
	}
	tr := startTraffic(t, 4, a, b)
	if _, err := reg.StartCanary(context.Background(), "m", "2", testPlan(time.Second), false, ""); err != nil {
		t.Fatal(err)
	}
	steps := []float64{5, 25, 50, 100}
	inPlan := func(w float64) bool {
		for _, s := range steps {
			if w == s {
				return true
			}
		}
		return false
	}
	// Both follow the plan's weights; once the first step has passed,
	// gateway a is killed and the load goes to b alone.
	killed := false
	waitFor(t, 90*time.Second, "the canary to end", func() bool {
		for _, base := range []string{a, b} {
			if killed && base == a {
				continue
			}
			if w := modelStatus(base).Weight; w != 0 && !inPlan(w) {
				t.Fatalf("gateway %s applies weight %g, not a step of the plan", base, w)
			}
		}
		rel, err := reg.Release(context.Background(), "m")
		if err != nil {
			return false
		}
		if !killed && rel.Canary.Progress.Step >= 1 {
			tr.targets.Store(&[]string{b})
			stopA()
			killed = true
		}
		return rel.Canary.Progress.Phase.IsTerminal()
	})
	tr.Stop()
	rel, err := reg.Release(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	if !killed || rel.Canary.Progress.Phase != release.Promoted || rel.Stable != "2" {
		t.Fatalf("killed=%v; canary ended %s (%s), stable %s", killed, rel.Canary.Progress.Phase, rel.Canary.Progress.Reason, rel.Stable)
	}
	want := []string{"canary-step: step 1 passed; now 25%", "canary-step: step 2 passed; now 50%", "canary-step: step 3 passed; now 100%", "canary-promote: passed all 4 steps"}
	if got := stepReasons(rel); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("history steps (one transition per tick, none twice):\n got %q\nwant %q", got, want)
	}
	// Requests in flight on a when it was killed may fail; none on b.
	t.Logf("%d requests, %d failed (on the killed gateway), by version %v", tr.ok.Load(), tr.failed.Load(), tr.versions)
}

// A gateway restarted mid-canary carries on from the release state.
func TestCanaryResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	reg := canaryRig(t, dir, testmodels.CanaryGood())
	first, stopFirst := startGatewayCancel(t, canaryConfig(t, dir))
	waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(first, "m") == "1" })
	tr := startTraffic(t, 4, first)
	if _, err := reg.StartCanary(context.Background(), "m", "2", testPlan(time.Second), false, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the first step to pass", func() bool {
		rel, err := reg.Release(context.Background(), "m")
		return err == nil && rel.Canary.Progress.Step >= 1
	})
	tr.Stop()
	stopFirst()
	rel, err := reg.Release(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	stepAtStop := rel.Canary.Progress.Step

	second := startGateway(t, canaryConfig(t, dir))
	waitFor(t, 30*time.Second, "the candidate loaded at the recorded weight", func() bool {
		return modelStatus(second).Weight == rel.Canary.Progress.Weight
	})
	startTraffic(t, 4, second)
	rel = waitTerminal(t, reg, 90*time.Second)
	if rel.Canary.Progress.Phase != release.Promoted || rel.Stable != "2" {
		t.Fatalf("after the restart the canary ended %s (%s)", rel.Canary.Progress.Phase, rel.Canary.Progress.Reason)
	}
	starts := 0
	for _, e := range rel.History {
		if e.Action == release.ActionCanaryStart {
			starts++
		}
	}
	if starts != 1 || len(stepReasons(rel)) != 4 {
		t.Fatalf("history after a restart at step %d: %d starts, steps %q", stepAtStop+1, starts, stepReasons(rel))
	}
}
