package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/internal/ortest"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/semantics"
)

const demoHoldout = "../../examples/breast-cancer/holdout.csv"

// sigmoidModel writes a breast-cancer classifier with one output,
// "probability" FP32 [-1, 1] (the sigmoid of mean radius − 15: P(class 1)),
// and returns its path.
func sigmoidModel(t *testing.T) string {
	t.Helper()
	w := make([]float32, 30)
	w[0] = -1
	path := filepath.Join(t.TempDir(), "sigmoid.onnx")
	if err := os.WriteFile(path, testmodels.Sigmoid(30, w, 15), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// storedKinds reads a version's output kinds from the registry.
func storedKinds(t *testing.T, reg, version string) map[string]semantics.Output {
	t.Helper()
	r, err := registry.Open(context.Background(), reg, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.Manifest(context.Background(), "m", version)
	if err != nil {
		t.Fatal(err)
	}
	return m.OutputKinds
}

// promote push infers each output's kind (from the holdout when given)
// and stores it; --output-kind overrides one; show prints them.
func TestPushOutputKinds(t *testing.T) {
	ortest.Runtime(t) // every step pushes
	reg := t.TempDir()
	sigmoid := sigmoidModel(t)
	prob := semantics.Of(semantics.Probability)
	cases := []struct {
		name    string
		args    []string
		want    map[string]semantics.Output
		stdout  []string
		version string
	}{
		{
			name: "the demo model, from its signature",
			args: []string{demo},
			want: map[string]semantics.Output{"label": semantics.Of(semantics.Label), "probabilities": semantics.Of(semantics.Probabilities)},
			stdout: []string{
				"output kinds (how the canary compares answers and the accuracy gate reads predictions; --output-kind overrides):",
				"label          label                  INT64 output: class labels",
				"probabilities  probabilities (top-1)  2 values per row",
			},
		},
		{
			name:   "a sigmoid on the holdout: a probability",
			args:   []string{sigmoid, "--holdout", demoHoldout},
			want:   map[string]semantics.Output{"probability": prob},
			stdout: []string{"probability  probability (threshold 0.5)  one value per row, all in [0, 1] on the 113 holdout rows, whose labels are 0 or 1"},
		},
		{
			name:   "a sigmoid without a holdout: a regression",
			args:   []string{sigmoid},
			want:   map[string]semantics.Output{"probability": semantics.Of(semantics.Regression)},
			stdout: []string{"regression (atol 1e-06, rtol 0.01)  one value per row, and no holdout run to tell a probability from a regression"},
		},
		{
			name:   "a threshold of its own",
			args:   []string{sigmoid, "--output-kind", "probability=probability,threshold=0.7"},
			want:   map[string]semantics.Output{"probability": {Kind: semantics.Probability, Threshold: 0.7}},
			stdout: []string{"probability  probability (threshold 0.7)  --output-kind"},
		},
		{
			name: "a regression's tolerances, over the holdout's inference",
			args: []string{sigmoid, "--holdout", demoHoldout, "--output-kind", "probability=regression,rtol=0.05,atol=0"},
			want: map[string]semantics.Output{"probability": {Kind: semantics.Regression, Rtol: 0.05}},
		},
		{
			name: "one output of two overridden",
			args: []string{demo, "--output-kind", "probabilities=regression"},
			want: map[string]semantics.Output{"label": semantics.Of(semantics.Label), "probabilities": semantics.Of(semantics.Regression)},
		},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			version := string(rune('1' + i))
			r := promote(t, reg, append([]string{"push", "m", version}, c.args...)...)
			if r.code != 0 {
				t.Fatalf("push: %+v", r)
			}
			for _, want := range c.stdout {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("push output lacks %q:\n%s", want, r.stdout)
				}
			}
			got := storedKinds(t, reg, version)
			if len(got) != len(c.want) {
				t.Fatalf("stored kinds %+v, want %+v", got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("stored kind of %s: %+v, want %+v", k, got[k], v)
				}
			}
		})
	}

	// show prints each output's kind; its JSON is the manifest's.
	r := promote(t, reg, "show", "m", "2")
	if r.code != 0 || !strings.Contains(r.stdout, "probability FP32 [-1 1]  probability (threshold 0.5)") {
		t.Errorf("show: %+v", r)
	}
	r = promote(t, reg, "show", "m", "2", "--output", "json")
	var m struct {
		OutputKinds map[string]map[string]any `json:"output_kinds"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m.OutputKinds["probability"]["kind"] != "probability" || m.OutputKinds["probability"]["threshold"] != 0.5 {
		t.Errorf("show --output json: %v %s", err, r.stdout)
	}

	// The same bytes again with another kind: nothing changes, and push
	// says the stored kinds stay.
	r = promote(t, reg, "push", "m", "2", sigmoid, "--holdout", demoHoldout, "--output-kind", "probability=probability,threshold=0.9")
	if r.code != 0 || !strings.Contains(r.stdout, "nothing changed") || !strings.Contains(r.stdout, "its output kinds stay as stored (a version is immutable): probability probability (threshold 0.5)") {
		t.Errorf("repush: %+v", r)
	}
	if got := storedKinds(t, reg, "2"); got["probability"] != prob {
		t.Errorf("a repush changed the stored kind: %+v", got)
	}
}

// An --output-kind that does not parse, names no output or does not fit
// it is a usage error (exit 2), and nothing is stored.
func TestPushOutputKindRefusals(t *testing.T) {
	reg := t.TempDir()
	sigmoid := sigmoidModel(t)
	checkRefusals(t, reg, []refusal{
		{"unknown kind", []string{"push", "m", "1", demo, "--output-kind", "label=classes"}, 2, `--output-kind output "label": unknown kind "classes" (want one of label, probabilities, probability, regression)`},
		{"no kind", []string{"push", "m", "1", demo, "--output-kind", "label"}, 2, `want NAME=KIND[,threshold=T][,atol=A][,rtol=R]`},
		{"unknown output", []string{"push", "m", "1", demo, "--output-kind", "logits=probabilities"}, 2, `output "logits": the model has no such output (it has "label", "probabilities")`},
		{"probabilities on integer labels", []string{"push", "m", "1", demo, "--output-kind", "label=probabilities"}, 2, `output "label" (INT64 [-1]): probabilities needs an FP32 or FP64 output, not INT64`},
		{"probabilities on [N, 1]", []string{"push", "m", "1", sigmoid, "--output-kind", "probability=probabilities"}, 2, `output "probability" (FP32 [-1 1]): probabilities needs a shape [N, K] with K > 1 classes`},
		{"a probability of two classes", []string{"push", "m", "1", demo, "--output-kind", "probabilities=probability"}, 2, `probability needs a shape [N] or [N, 1], not [-1 2]`},
		{"a threshold for a label", []string{"push", "m", "1", demo, "--output-kind", "label=label,threshold=0.5"}, 2, "threshold applies to probability outputs, not label"},
		{"a threshold out of range", []string{"push", "m", "1", sigmoid, "--output-kind", "probability=probability,threshold=1.5"}, 2, "threshold 1.5 is not strictly between 0 and 1"},
		{"an output named twice", []string{"push", "m", "1", sigmoid, "--output-kind", "probability=probability", "--output-kind", "probability=regression"}, 2, `output "probability": given twice`},
	})
}
