package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/internal/ortest"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/semantics"
)

// promote status names how the disagreement check compares the answers:
// the first output by the kind stored with the candidate (else stable),
// or inferred from the signature for versions stored without kinds.
func TestStatusShowsComparison(t *testing.T) {
	w := make([]float32, 30)
	w[0] = -1
	sigmoid := testmodels.Sigmoid(30, w, 15)
	prob := map[string]semantics.Output{"probability": {Kind: semantics.Probability, Threshold: 0.6}}
	cases := []struct {
		name                  string
		stableKinds, candKind map[string]semantics.Output
		want                  string
		storedWith            string
	}{
		{"stored with the candidate", nil, prob, `compared:  by probability (threshold 0.6) on output "probability", the kind stored with version 2`, "2"},
		{"stored with stable only", prob, nil, `compared:  by probability (threshold 0.6) on output "probability", the kind stored with version 1`, "1"},
		{"stored with neither", nil, nil, `compared:  by regression (atol 1e-06, rtol: the gateways' canary.regression_tolerance) on output "probability", inferred from the signature (no kind stored with either version)`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reg := t.TempDir()
			opened, err := registry.Open(context.Background(), reg, registry.Options{})
			if err != nil {
				t.Fatal(err)
			}
			api := releasetest.Wrap(opened, nil)
			ins, outs, err := catalog.Signature(ortest.Runtime(t), sigmoid)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range []struct {
				version string
				kinds   map[string]semantics.Output
			}{{"1", c.stableKinds}, {"2", c.candKind}} {
				model := append(append([]byte{}, sigmoid...), 0x52, byte(0x00)) // other bytes, the same model
				if v.version == "1" {
					model = sigmoid
				}
				if _, _, err := api.Push(context.Background(), registry.PushRequest{Name: "m", Version: v.version, Model: model, Inputs: ins, Outputs: outs, OutputKinds: v.kinds}); err != nil {
					t.Fatal(err)
				}
			}
			if err := api.PutGateReport(context.Background(), "m", "2", []byte(`{"verdict":"pass"}`), []byte("# pass")); err != nil {
				t.Fatal(err)
			}
			if r := promote(t, reg, "canary", "start", "m", "2"); r.code != 0 {
				t.Fatalf("start: %+v", r)
			}
			r := promote(t, reg, "status", "m")
			if r.code != 0 || !strings.Contains(r.stdout, c.want+"\n") {
				t.Errorf("status lacks %q:\n%s", c.want, r.stdout)
			}
			r = promote(t, reg, "status", "m", "--output", "json")
			var v struct {
				Comparison *struct {
					Output     string         `json:"output"`
					Semantics  map[string]any `json:"semantics"`
					StoredWith string         `json:"stored_with"`
				} `json:"comparison"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Comparison == nil || v.Comparison.Output != "probability" || v.Comparison.StoredWith != c.storedWith {
				t.Errorf("status json: %v %s", err, r.stdout)
			}
		})
	}
}
