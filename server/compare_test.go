package server

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/prometheus/client_golang/prometheus"
)

// withComparisons records canary runs in rec and compares every request
// on both versions: stable-served ones as shadow copies, candidate-served
// ones on stable.
func withComparisons(rec *canary.Recorder) gwOption {
	return func(c *catalog.Options, o *Options) {
		c.Recorder, c.ShadowFraction, c.CompareSplit = rec, 1, true
		o.Recorder = rec
	}
}

// The canary compares a one-output sigmoid classifier by its kind,
// probability: a candidate whose probabilities move a long way (1.4e-7
// against stable's 5.2e-3, 0.90 against 0.68) but stay on the same side of
// 0.5 does not disagree;
// one that flips the class does, on every request. Versions stored without
// kinds read the same output as a regression (within
// canary.regression_tolerance), as before kinds existed, and the first
// candidate then disagrees.
func TestCanaryComparesByOutputKind(t *testing.T) {
	w, b := []float32{2, -1, 0.5, 3}, float32(-0.25)
	scaled := []float32{6, -3, 1.5, 9} // 3·w, and 3·b: every logit ×3, same sign
	flipped := []float32{-2, 1, -0.5, -3}
	probability := map[string]semantics.Output{"probability": semantics.Of(semantics.Probability)}
	type models struct{ stable, agreeing, flipping []byte }
	for _, impl := range []struct {
		name   string
		opts   func(t *testing.T) []gwOption
		models models
	}{
		{"fake models", func(*testing.T) []gwOption { return nil }, models{
			servingtest.Sigmoid(4, w, b), servingtest.Sigmoid(4, scaled, 3*b), servingtest.Sigmoid(4, flipped, -b)}},
		{"onnxruntime", func(t *testing.T) []gwOption { return []gwOption{withORT(t)} }, models{
			testmodels.Sigmoid(4, w, b), testmodels.Sigmoid(4, scaled, 3*b), testmodels.Sigmoid(4, flipped, -b)}},
	} {
		t.Run(impl.name, func(t *testing.T) {
			for _, tc := range []struct {
				name                  string
				candidate             []byte
				stableKinds, candKind map[string]semantics.Output
				disagree              bool
			}{
				{"same classes, other probabilities", impl.models.agreeing, probability, probability, false},
				{"flipped classes", impl.models.flipping, probability, probability, true},
				{"kinds stored with the candidate only", impl.models.agreeing, nil, probability, false},
				{"no kinds stored: a regression", impl.models.agreeing, nil, nil, true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					compared, disagreed := compareRun(t, impl.opts(t), impl.models.stable, tc.candidate, tc.stableKinds, tc.candKind)
					want := int64(0)
					if tc.disagree {
						want = compared
					}
					if compared != requests || disagreed != want {
						t.Fatalf("%d of %d compared requests disagreed; want %d of %d", disagreed, compared, want, requests)
					}
				})
			}
		})
	}
}

// requests is how many requests compareRun sends.
const requests = 40

// compareRun serves stable as version 1 and candidate as version 2 of
// model "m" in a canary, sends requests requests and returns how many were
// compared and how many of those disagreed.
func compareRun(t *testing.T, opts []gwOption, stable, candidate []byte, stableKinds, candKinds map[string]semantics.Output) (compared, disagreed int64) {
	t.Helper()
	rec := canary.NewRecorder(prometheus.NewRegistry())
	g := newGateway(t, false, nil, append(opts, withComparisons(rec))...)
	ctx := context.Background()
	for _, v := range []struct {
		version string
		model   []byte
		kinds   map[string]semantics.Output
	}{{"1", stable, stableKinds}, {"2", candidate, candKinds}} {
		ins, outs, err := catalog.Signature(g.loader, v.model)
		if err != nil {
			t.Fatal(err)
		}
		req := registry.PushRequest{Name: "m", Version: v.version, Model: v.model, Inputs: ins, Outputs: outs, OutputKinds: v.kinds}
		if _, _, err := g.reg.Push(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.cat.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	rel, err := g.reg.StartCanary(ctx, "m", "2", release.DefaultPlan(), false, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cat.Sync(ctx); err != nil { // loads the candidate, gives it its weight
		t.Fatal(err)
	}
	if st := g.cat.Status(); len(st.Models) != 1 || st.Models[0].Candidate != "2" || st.Models[0].Weight == 0 {
		t.Fatalf("the candidate is not taking traffic: %+v", st.Models)
	}
	// Feature 0 alone moves the logit 2·a − 0.25 (times 3, or −1, for
	// the candidates): from −5.25 to 0.75, never near 0.
	for i := range requests {
		a := []float64{-2.5, -1.5, -0.5, 0.5}[i%4]
		code, body := g.do(http.MethodPost, "/predict", fmt.Sprintf(`{"features": [%g, 0, 0, 0]}`, a))
		if code != http.StatusOK {
			t.Fatalf("request %d: %d %v", i, code, body)
		}
		g.srv.shadowWG.Wait() // one comparison at a time: none is skipped
	}
	o := rec.Observations("m", rel.Canary.Epoch())
	return o.Compared, o.Disagreements
}
