package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/metadata"
)

// failingLoader loads fake models; version 2's runs fail, once armed,
// for inputs whose first feature is 99 (its warm-up passes).
type failingLoader struct {
	catalog.Loader
	armed *atomic.Bool
}

func (l failingLoader) Load(b []byte, o serving.ModelOptions) (serving.Model, error) {
	m, err := l.Loader.Load(b, o)
	if err != nil || o.Version != "2" {
		return m, err
	}
	return failingModel{m, l.armed}, nil
}

type failingModel struct {
	serving.Model
	armed *atomic.Bool
}

func (m failingModel) Run(ctx context.Context, in []wire.Tensor, outputs []string) ([]wire.Tensor, error) {
	if x, ok := in[0].Data.([]float32); ok && m.armed.Load() && len(x) > 0 && x[0] == 99 {
		return nil, errors.New("candidate blew up")
	}
	return m.Model.Run(ctx, in, outputs)
}

// matchGateway serves m/1 (stable) and m/2 in a canary at weight percent
// whose plan has rules, recording into the returned recorder.
func matchGateway(t *testing.T, weight float64, armed *atomic.Bool, rules ...string) (*gateway, *canary.Recorder, release.State) {
	t.Helper()
	rec := canary.NewRecorder(prometheus.NewRegistry())
	g := newGateway(t, false, nil, func(c *catalog.Options, o *Options) {
		c.Recorder, o.Recorder = rec, rec
		c.Loader = failingLoader{&servingtest.Loader{}, armed}
	})
	g.push("m", "1", servingtest.Scaled(1))
	g.push("m", "2", servingtest.Scaled(2))
	ctx := context.Background()
	if err := g.cat.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	plan := release.DefaultPlan()
	plan.Steps = []float64{weight, 100}
	for _, r := range rules {
		m, err := release.ParseMatch(r)
		if err != nil {
			t.Fatal(err)
		}
		plan.Match = append(plan.Match, m)
	}
	rel, err := g.reg.StartCanary(ctx, "m", "2", plan, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cat.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := g.cat.Status(); st.Models[0].Candidate != "2" || st.Models[0].Weight != weight {
		t.Fatalf("canary not at %g%%: %+v", weight, st.Models)
	}
	return g, rec, rel
}

// post sends an inference request with headers ("Name: value" lines)
// and returns the version that answered.
func (g *gateway) post(path, body string, headers ...string) string {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.http.URL+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	resp, err := g.http.Client().Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Version      string `json:"version"`
		ModelVersion string `json:"model_version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		g.t.Fatalf("POST %s %v: %d, %v", path, headers, resp.StatusCode, err)
	}
	return got.Version + got.ModelVersion
}

const (
	predictBody = `{"features": [1, 0, 0.5, 0.25]}`
	oipBody     = `{"inputs": [{"name": "features", "shape": [1, 4], "datatype": "FP32", "data": [1, 0, 0.5, 0.25]}]}`
)

// Over HTTP (/predict, /v2 infer) and gRPC, a request whose header,
// cookie or metadata matches a rule goes to the candidate at a weight of
// 1 %, whatever its key, and is recorded as the matched cohort; the rest
// follow the weight; a pinned version wins over the rules.
func TestMatchRulesRouteToTheCandidate(t *testing.T) {
	g, rec, rel := matchGateway(t, 1, new(atomic.Bool), "header:x-beta-user=true", "cookie:cohort=~beta-.*")
	c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{}))
	infer := func(version string, md ...string) string {
		t.Helper()
		ctx := grpcCtx(t)
		if len(md) > 0 {
			ctx = metadata.AppendToOutgoingContext(ctx, md...)
		}
		r, err := c.ModelInfer(ctx, &grpcapi.ModelInferRequest{ModelName: "m", ModelVersion: version,
			Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", []float64{1, 0, 0.5, 0.25})}})
		if err != nil {
			t.Fatal(err)
		}
		return r.ModelVersion
	}
	const n = 50
	matched := 0
	for i := range n {
		key := KeyHeader + ": " + fmt.Sprintf("user-%d", i)
		for _, got := range []string{
			g.post("/predict", predictBody, "X-Beta-User: true", key),
			g.post("/v2/models/m/infer", oipBody, "x-beta-user: true", key),
			g.post("/predict", predictBody, "Cookie: lang=en; cohort=beta-7", key),
			g.post("/v2/models/m/infer", oipBody, "Cookie: cohort=beta-x"),
			infer("", "x-beta-user", "true", KeyMetadata, fmt.Sprintf("user-%d", i)),
			infer("", "cookie", "cohort=beta-1"),
		} {
			if got != "2" {
				t.Fatalf("request %d: a matching request answered by %s, want the candidate", i, got)
			}
			matched++
		}
		// Pinned versions are served as asked, match or not.
		if got := g.post("/predict?version=1", predictBody, "X-Beta-User: true"); got != "1" {
			t.Fatalf("pinned to 1 with a matching header: answered by %s", got)
		}
		if got := infer("1", "x-beta-user", "true"); got != "1" {
			t.Fatalf("gRPC pinned to 1 with matching metadata: answered by %s", got)
		}
	}
	onCandidate := 0
	for i := range 400 {
		key := KeyHeader + ": " + fmt.Sprintf("user-%d", i)
		for _, h := range []string{"X-Beta-User: false", "Cookie: cohort=alpha-1", "X-Other: true"} {
			got := g.post("/predict", predictBody, h, key)
			want := "1"
			if canary.ToCandidate(fmt.Sprintf("user-%d", i), 1) {
				want = "2"
				onCandidate++
			}
			if got != want {
				t.Fatalf("key user-%d with %q: answered by %s, want %s by weight", i, h, got, want)
			}
		}
	}
	g.srv.WaitBackground()
	o := rec.Observations("m", rel.Canary.Epoch())
	if o.Matched.Requests != int64(matched) {
		t.Errorf("matched cohort: %d requests recorded, %d sent", o.Matched.Requests, matched)
	}
	if o.Candidate.Requests != int64(onCandidate) {
		t.Errorf("candidate's weighted split: %d requests recorded, %d routed by weight", o.Candidate.Requests, onCandidate)
	}
	if want := int64(3*400 - onCandidate); o.Stable.Requests != want {
		t.Errorf("stable: %d requests recorded, want %d (pinned ones are not recorded)", o.Stable.Requests, want)
	}
}

// A matched request the candidate fails is answered by stable, counted as
// an error in the matched cohort, and in neither side of the split.
func TestMatchedCandidateFailureFallsBackToStable(t *testing.T) {
	armed := new(atomic.Bool)
	g, rec, rel := matchGateway(t, 1, armed, "header:x-beta-user=true")
	armed.Store(true)
	const n = 20
	for range n {
		if got := g.post("/predict", `{"features": [99, 0, 0.5, 0.25]}`, "X-Beta-User: true"); got != "1" {
			t.Fatalf("a failed matched request answered by %s, want stable's answer", got)
		}
		if got := g.post("/predict", predictBody, "X-Beta-User: true"); got != "2" {
			t.Fatalf("a matched request answered by %s", got)
		}
	}
	g.srv.WaitBackground()
	o := rec.Observations("m", rel.Canary.Epoch())
	if m := o.Matched; m.Requests != 2*n || m.Errors != n {
		t.Errorf("matched cohort %+v, want %d requests, %d errors", m, 2*n, n)
	}
	if o.Candidate.Requests != 0 || o.Stable.Requests != 0 {
		t.Errorf("the split recorded candidate %d, stable %d requests; want none", o.Candidate.Requests, o.Stable.Requests)
	}
}
