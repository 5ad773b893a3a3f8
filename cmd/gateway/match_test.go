package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/internal/testmodels"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// matchPlan is a plan whose steps never pass by themselves (an hour
// each), at 5 % first, with rules.
func matchPlan(t *testing.T, rules ...string) release.Plan {
	t.Helper()
	p := testPlan(time.Hour)
	for _, r := range rules {
		m, err := release.ParseMatch(r)
		if err != nil {
			t.Fatal(err)
		}
		p.Match = append(p.Match, m)
	}
	return p
}

// askVersion posts one /predict (or /v2 infer) with headers ("Name:
// value") and returns the version that answered.
func askVersion(t *testing.T, base, path string, headers ...string) string {
	t.Helper()
	body := `{"features":[1,0,0.5,0.25]}`
	if strings.HasPrefix(path, "/v2") {
		body = `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,0,0.5,0.25]}]}`
	}
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Version      string `json:"version"`
		ModelVersion string `json:"model_version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST %s%s %v: %d (%v)", base, path, headers, resp.StatusCode, err)
	}
	return got.Version + got.ModelVersion
}

// Two gateways on one registry, a canary at 5 % with a header and a cookie
// rule: on both, every matching request (/predict, /v2 infer, gRPC
// metadata) goes to the candidate, whatever its key; every other request
// goes by weight, by its key; pinned requests go where pinned; and the
// recorded analysis shows the matched requests as their own cohort, apart
// from the weighted split. Once the canary is aborted, matching requests
// go to stable.
func TestCanaryMatchRulesTwoGateways(t *testing.T) {
	dir := t.TempDir()
	reg := canaryRig(t, dir, testmodels.CanaryGood())
	type gw struct {
		base string
		grpc grpcapi.GRPCInferenceServiceClient
	}
	var gws []gw
	for range 2 {
		cfg := canaryConfig(t, dir)
		cfg.Canary.ShadowFraction = 0 // the split's counts are then exact
		cfg.Canary.Tick = 100 * time.Millisecond
		cfg.GRPC.Listen = freePort(t)
		base, _ := startGatewayCancel(t, cfg)
		conn, err := grpc.NewClient(cfg.GRPC.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "m") == "1" })
		gws = append(gws, gw{base, grpcapi.NewGRPCInferenceServiceClient(conn)})
	}
	ctx := context.Background()
	if _, err := reg.StartCanary(ctx, "m", "2", matchPlan(t, "header:x-beta-user=true", "cookie:cohort=~beta-.*"), false, ""); err != nil {
		t.Fatal(err)
	}
	for _, g := range gws {
		waitFor(t, 30*time.Second, "weight 5 applied", func() bool { return modelStatus(g.base).Weight == 5 })
	}
	infer := func(g gw, version string, md ...string) string {
		t.Helper()
		cctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, md...), 10*time.Second)
		defer cancel()
		r, err := g.grpc.ModelInfer(cctx, &grpcapi.ModelInferRequest{ModelName: "m", ModelVersion: version,
			Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{{Name: "features", Datatype: "FP32", Shape: []int64{1, 4},
				Contents: &grpcapi.InferTensorContents{Fp32Contents: []float32{1, 0, 0.5, 0.25}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.ModelVersion
	}

	const keys = 60
	var matchedEach, candEach, stableEach int64
	for i, g := range gws {
		for k := range keys {
			key := fmt.Sprintf("user-%d", k)
			for _, got := range []string{
				askVersion(t, g.base, "/predict", "X-Beta-User: true", "X-Modelgate-Key: "+key),
				askVersion(t, g.base, "/v2/models/m/infer", "Cookie: lang=en; cohort=beta-42", "X-Modelgate-Key: "+key),
				infer(g, "", "x-beta-user", "true", "x-modelgate-key", key),
			} {
				if got != "2" {
					t.Fatalf("gateway %d: a matching request (key %s) answered by %s, want the candidate", i, key, got)
				}
				if i == 0 {
					matchedEach++
				}
			}
			want := "1"
			if canary.ToCandidate(key, 5) {
				want = "2"
			}
			for _, got := range []string{
				askVersion(t, g.base, "/predict", "X-Beta-User: false", "X-Modelgate-Key: "+key),
				askVersion(t, g.base, "/predict", "Cookie: cohort=alpha-1", "X-Modelgate-Key: "+key),
				infer(g, "", "x-modelgate-key", key),
			} {
				if got != want {
					t.Fatalf("gateway %d: a request that matches no rule (key %s) answered by %s, want %s by weight", i, key, got, want)
				}
				if i == 0 && want == "2" {
					candEach++
				} else if i == 0 {
					stableEach++
				}
			}
			if k%10 == 0 { // pinned requests are not recorded for the canary
				if got := askVersion(t, g.base, "/predict?version=1", "X-Beta-User: true"); got != "1" {
					t.Fatalf("gateway %d: pinned to 1 with a matching header: answered by %s", i, got)
				}
				if got := infer(g, "1", "x-beta-user", "true"); got != "1" {
					t.Fatalf("gateway %d: gRPC pinned to 1 with matching metadata: answered by %s", i, got)
				}
			}
		}
	}
	if candEach == 0 || stableEach == 0 {
		t.Fatalf("%d keys' requests on the candidate by weight, %d on stable: pick other keys", candEach, stableEach)
	}

	// Each gateway judges its own traffic (in-process), the same on both:
	// whichever ticks, the analysis shows it.
	var rel release.State
	waitFor(t, 30*time.Second, "an analysis of all the traffic", func() bool {
		var err error
		rel, err = reg.Release(ctx, "m")
		if err != nil || rel.Canary.Analysis == nil {
			return false
		}
		o := rel.Canary.Analysis.Observations
		return o.Matched.Requests == matchedEach && o.Candidate.Requests == candEach && o.Stable.Requests == stableEach
	})
	a := rel.Canary.Analysis
	if st := rel.Canary.Progress; st.Phase != release.Progressing || st.Step != 0 || st.Failures != 0 {
		t.Fatalf("canary %+v", st)
	}
	if !strings.Contains(a.Reason, fmt.Sprintf("%d of 100 samples", candEach)) {
		t.Fatalf("analysis reason %q: the step's samples should be the weighted candidate's %d alone", a.Reason, candEach)
	}
	raw, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), fmt.Sprintf(`"matched":{"requests":%d,`, matchedEach)) {
		t.Fatalf("release.json's analysis has no matched cohort of %d: %s", matchedEach, raw)
	}
	t.Logf("analysis by %s: matched %d, candidate %d, stable %d", a.Replica, a.Observations.Matched.Requests, a.Observations.Candidate.Requests, a.Observations.Stable.Requests)

	// Until the canary ends: aborted, matching requests go to stable.
	if _, err := reg.CanaryAction(ctx, "m", releasetest.CanaryAbort, "test"); err != nil {
		t.Fatal(err)
	}
	for _, g := range gws {
		waitFor(t, 30*time.Second, "the abort applied", func() bool { return modelStatus(g.base).Candidate == "" })
		if got := askVersion(t, g.base, "/predict", "X-Beta-User: true"); got != "1" {
			t.Fatalf("after the abort a matching request answered by %s", got)
		}
		if got := infer(g, "", "cookie", "cohort=beta-1"); got != "1" {
			t.Fatalf("after the abort a matching gRPC request answered by %s", got)
		}
	}
}

// With canary.source prometheus (a real one scraping two gateways), the
// matched_* queries fill the matched cohort and the weighted split's
// queries leave it out: with every candidate request a matched one, the
// split's candidate has none. (Counts from increase() are extrapolated,
// so the test does not compare them with what was sent.)
func TestCanaryMatchRulesPrometheus(t *testing.T) {
	dir := t.TempDir()
	reg := canaryRig(t, dir, testmodels.CanaryGood())
	addrs := []string{freePort(t), freePort(t)}
	promURL := startPrometheus(t, addrs...)
	var bases []string
	for _, addr := range addrs {
		cfg := canaryConfig(t, dir)
		cfg.Listen = addr
		cfg.Canary.Source = "prometheus"
		cfg.Canary.PrometheusURL = promURL
		cfg.Canary.ShadowFraction = 0
		cfg.Canary.Tick = 250 * time.Millisecond
		base, _ := startGatewayCancel(t, cfg)
		waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "m") == "1" })
		bases = append(bases, base)
	}
	ctx := context.Background()
	if _, err := reg.StartCanary(ctx, "m", "2", matchPlan(t, "header:x-beta-user=true"), false, ""); err != nil {
		t.Fatal(err)
	}
	for _, base := range bases {
		waitFor(t, 30*time.Second, "weight 5 applied", func() bool { return modelStatus(base).Weight == 5 })
	}
	// Keys that the weight leaves on stable.
	var stableKeys []string
	for k := 0; len(stableKeys) < 20; k++ {
		if key := fmt.Sprintf("user-%d", k); !canary.ToCandidate(key, 5) {
			stableKeys = append(stableKeys, key)
		}
	}
	var sent int64
	var a *release.Analysis
	waitFor(t, 90*time.Second, "a Prometheus analysis with the matched cohort of both gateways", func() bool {
		for _, base := range bases {
			for _, key := range stableKeys[:5] {
				if got := askVersion(t, base, "/predict", "X-Beta-User: true", "X-Modelgate-Key: "+key); got != "2" {
					t.Fatalf("a matching request answered by %s", got)
				}
				if got := askVersion(t, base, "/predict", "X-Modelgate-Key: "+key); got != "1" {
					t.Fatalf("key %s answered by %s, want stable", key, got)
				}
				sent++
			}
		}
		rel, err := reg.Release(ctx, "m")
		if err != nil || rel.Canary.Analysis == nil {
			return false
		}
		a = rel.Canary.Analysis
		if a.Source != "prometheus" {
			return false
		}
		o := a.Observations
		if o.Candidate.Requests != 0 {
			t.Fatalf("the split's candidate has %d requests, but every candidate request was a matched one: %+v", o.Candidate.Requests, o)
		}
		return o.Matched.Requests > 0 && o.Matched.P99 > 0 && o.Stable.Requests > 0
	})
	o := a.Observations
	t.Logf("%d matched requests sent; Prometheus analysis: matched %+v, candidate %d, stable %d", sent, o.Matched, o.Candidate.Requests, o.Stable.Requests)
	if o.Matched.Errors != 0 || o.Matched.NonFinite != 0 || o.Matched.P99 <= 0 {
		t.Fatalf("matched cohort %+v", o.Matched)
	}
}
