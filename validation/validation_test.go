package validation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/onnx"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/wire"
)

// gateCase is one candidate run through every gate. Every gate not named in
// fail or notRun must pass.
type gateCase struct {
	name     string
	cand     func(t *testing.T) Model
	baseline bool                      // the committed demo model as the baseline
	opts     func(o *Options)          // on top of defaultOptions
	fail     map[string]string         // gate -> a part of its message
	notRun   []string                  // gates skipped because sanity failed
	check    func(*testing.T, *Report) // more assertions
}

// defaultOptions are what promote would pass: the demo holdout, the
// suggested regression and latency limits, a generous latency budget.
func defaultOptions() Options {
	return Options{
		MinAccuracy:     0.9,
		MaxRegression:   DefaultMaxRegression,
		MaxLatencyRatio: DefaultMaxLatencyRatio,
		LatencyBudget:   time.Second,
		Now:             func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
}

// retrain is a good retrain of the demo model: a logistic regression on
// every feature, trained on the demo's training rows.
func retrain(t testing.TB) logistic { return trainLogistic(t, allFeatures(), 300) }

func TestGates(t *testing.T) {
	demo := func(t *testing.T) Model { return model(t, "2", readDemo(t, "model.onnx")) }
	built := func(c func(testing.TB) classifier) func(t *testing.T) Model {
		return func(t *testing.T) Model { return model(t, "2", c(t).build(t)) }
	}
	cases := []gateCase{
		{
			name:     "good retrain passes every gate",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: retrain(t)} }),
			baseline: true,
			check: func(t *testing.T, r *Report) {
				acc := gate(t, r, GateAccuracy)
				if acc.Metrics[MetricAccuracy] < 0.95 || acc.Baseline[MetricAccuracy] < 0.95 {
					t.Errorf("accuracy %v, baseline %v", acc.Metrics[MetricAccuracy], acc.Baseline[MetricAccuracy])
				}
				for _, k := range []string{MetricF1Macro, MetricROCAUC, MetricLogLoss, "precision_0", "recall_1", "f1_1"} {
					if _, ok := acc.Metrics[k]; !ok {
						t.Errorf("accuracy metrics lack %s: %v", k, acc.Metrics)
					}
				}
				lat := gate(t, r, GateLatency)
				for _, k := range []string{"batch1_p50_ms", "batch1_p99_ms", "batch1_p99_ratio", "batch32_p99_ms", "batch32_p99_ratio"} {
					if _, ok := lat.Metrics[k]; !ok {
						t.Errorf("latency metrics lack %s: %v", k, lat.Metrics)
					}
				}
				if lat.Metrics["batch1_runs"] != DefaultLatencyRuns || lat.Baseline["batch1_p99_ms"] <= 0 {
					t.Errorf("latency: %v, baseline %v", lat.Metrics, lat.Baseline)
				}
				if r.Provider != "cpu" || r.Baseline != "1" || r.Verdict != VerdictPass {
					t.Errorf("report header: %+v", r)
				}
			},
		},
		{
			name:     "an added output is allowed",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: retrain(t), extraOutput: "logits"} }),
			baseline: true,
			check: func(t *testing.T, r *Report) {
				if m := gate(t, r, GateContract).Message; !strings.Contains(m, `output "logits" (FP32 [-1 2]) added (allowed`) {
					t.Errorf("contract message %q does not note the added output", m)
				}
			},
		},
		{
			name:     "NaN outputs of a diverged retrain",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: retrain(t), nanWeights: true} }),
			baseline: true,
			fail:     map[string]string{GateSanity: `output "probabilities" is not finite: 2 NaN of 2 values (free dimensions as 1)`},
			notRun:   []string{GateAccuracy, GateLatency},
		},
		{
			name:   "NaN test model",
			cand:   func(t *testing.T) Model { return model(t, "2", testmodels.NaN()) },
			opts:   func(o *Options) { o.Holdout = nil; o.SkipAccuracy = true },
			fail:   map[string]string{GateSanity: `output "y" is not finite: 4 NaN of 4 values (free dimensions as 1); output "y" is not finite: 32 NaN of 32 values (batch of 8)`},
			notRun: []string{GateLatency},
		},
		{
			name:   "infinite outputs",
			cand:   func(t *testing.T) Model { return model(t, "2", divideByZero(t)) },
			opts:   func(o *Options) { o.SkipAccuracy = true },
			fail:   map[string]string{GateSanity: `output "y" is not finite: 4 infinite of 4 values`},
			notRun: []string{GateLatency},
		},
		{
			name:   "two runs disagree",
			cand:   func(t *testing.T) Model { return model(t, "2", randomModel(t)) },
			opts:   func(o *Options) { o.SkipAccuracy = true },
			fail:   map[string]string{GateSanity: `two runs on the same input disagree: output "y", value 0:`},
			notRun: []string{GateLatency},
		},
		{
			name:   "loads but cannot run",
			cand:   func(t *testing.T) Model { return model(t, "2", badReshape(t)) },
			opts:   func(o *Options) { o.SkipAccuracy = true },
			fail:   map[string]string{GateSanity: "fails on a dummy input (free dimensions as 1): running breast-cancer version 2: Non-zero status code returned while running Reshape node"},
			notRun: []string{GateLatency},
		},
		{
			name: "truncated file",
			cand: func(t *testing.T) Model {
				b := readDemo(t, "model.onnx")
				return Model{Name: "breast-cancer", Version: "2", Bytes: b[:len(b)/2]}
			},
			fail:   map[string]string{GateSanity: "the model does not load: invalid model: "},
			notRun: []string{GateContract, GateAccuracy, GateLatency},
			check: func(t *testing.T, r *Report) {
				if m := gate(t, r, GateSanity).Message; !strings.Contains(strings.ToLower(m), "protobuf parsing failed") {
					t.Errorf("sanity message %q does not carry ONNX Runtime's reason", m)
				}
				if r.Provider != "" {
					t.Errorf("provider %q for a model that did not load", r.Provider)
				}
			},
		},
		{
			name:   "empty file",
			cand:   func(t *testing.T) Model { return Model{Name: "breast-cancer", Version: "2"} },
			fail:   map[string]string{GateSanity: "the model is empty (0 bytes)"},
			notRun: []string{GateContract, GateAccuracy, GateLatency},
		},
		{
			name: "sha256 of the bytes does not match the manifest",
			cand: func(t *testing.T) Model {
				m := model(t, "2", classifier{lr: retrain(t)}.build(t))
				m.Manifest.SHA256 = model(t, "2", readDemo(t, "model.onnx")).Manifest.SHA256
				return m
			},
			baseline: true,
			fail:     map[string]string{GateSanity: "sha256 of the bytes does not match the manifest: manifest "},
			notRun:   []string{GateAccuracy, GateLatency},
		},
		{
			name: "manifest for another version",
			cand: func(t *testing.T) Model {
				m := demo(t)
				m.Manifest.Version = "7"
				return m
			},
			fail:   map[string]string{GateSanity: "the manifest is for breast-cancer version 7, not breast-cancer version 2"},
			notRun: []string{GateAccuracy, GateLatency},
		},
		{
			name: "manifest signature does not match the model",
			cand: func(t *testing.T) Model {
				m := model(t, "2", classifier{lr: retrain(t)}.build(t))
				m.Manifest.Outputs = slices.Clone(m.Manifest.Outputs)
				m.Manifest.Outputs[1] = wire.TensorSpec{Name: "probabilities", DType: wire.FP64, Shape: []int64{-1, 2}}
				m.Manifest.Inputs = []wire.TensorSpec{{Name: "features", DType: wire.FP32, Shape: []int64{-1, 31}}}
				return m
			},
			baseline: true,
			fail:     map[string]string{GateContract: `the manifest does not describe the model (manifest -> model): input "features": shape [-1 31] -> [-1 30], output "probabilities": datatype FP64 -> FP32`},
		},
		{
			name:     "renamed output",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: retrain(t), labelName: "class"} }),
			baseline: true,
			fail:     map[string]string{GateContract: `breaking changes from baseline 1 (baseline -> candidate): output "label" renamed to "class"`},
		},
		{
			name:     "removed output",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: retrain(t), probOnly: true} }),
			baseline: true,
			fail:     map[string]string{GateContract: `output "label" removed, output "probabilities" removed`},
		},
		{
			name:     "changed input shape",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: retrain(t), inputWidth: 31} }),
			baseline: true,
			fail: map[string]string{
				GateContract: `input "features": shape [-1 30] -> [-1 31]`,
				GateAccuracy: `the holdout has 30 feature columns (besides the label "label"); input "features" takes 31 (shape [-1 31])`,
			},
		},
		{
			name:     "retyped output",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: retrain(t), probsType: onnx.Double} }),
			baseline: true,
			fail:     map[string]string{GateContract: `output "probabilities": datatype FP32 -> FP64`},
		},
		{
			name:     "added input",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: retrain(t), extraInput: "mask"} }),
			baseline: true,
			fail: map[string]string{
				GateContract: `input "mask" (FP32 [-1 30]) added: clients do not send it`,
				GateAccuracy: `the accuracy gate needs a single-input model (it takes 2: "features", "mask")`,
			},
		},
		{
			name:     "first output changed",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: retrain(t), probsFirst: true} }),
			baseline: true,
			fail:     map[string]string{GateContract: `first output "label" -> "probabilities": /predict's "prediction" would change`},
			check: func(t *testing.T, r *Report) {
				if m := gate(t, r, GateAccuracy).Message; !strings.Contains(m, `labels are the argmax of output "probabilities"`) {
					t.Errorf("accuracy message %q", m)
				}
			},
		},
		{
			name: "accuracy under the threshold",
			cand: demo,
			opts: func(o *Options) { o.MinAccuracy = 0.99 },
			fail: map[string]string{GateAccuracy: "accuracy 0.9646 is below the minimum 0.99"},
			check: func(t *testing.T, r *Report) {
				if th := gate(t, r, GateAccuracy).Thresholds[MetricAccuracy]; th != ">= 0.99" {
					t.Errorf("threshold %q", th)
				}
			},
		},
		{
			name: "log loss over its maximum",
			cand: demo,
			opts: func(o *Options) { o.Metric, o.MinMetric = MetricLogLoss, 0.05 },
			fail: map[string]string{GateAccuracy: "log_loss 0.2422 is above the maximum 0.05"},
		},
		{
			name: "macro F1 under its minimum",
			cand: demo,
			opts: func(o *Options) { o.Metric, o.MinMetric = MetricF1Macro, 0.98 },
			fail: map[string]string{GateAccuracy: "f1_macro 0.9625 is below the minimum 0.98"},
		},
		{
			name: "a metric the model does not have",
			cand: demo,
			opts: func(o *Options) { o.Metric, o.MinMetric = MetricRMSE, 0.5 },
			fail: map[string]string{GateAccuracy: "metric rmse is not computed for this classifier (it has accuracy, f1_0, f1_1, f1_macro, log_loss, "},
		},
		{
			name:     "regression beyond MaxRegression",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: trainLogistic(t, []int{0, 1}, 300)} }),
			baseline: true,
			opts:     func(o *Options) { o.MinAccuracy = 0.85 },
			fail:     map[string]string{GateAccuracy: "accuracy is worse than baseline 1's by 0.0708 (0.9646 -> 0.8938), more than the allowed 0.01"},
		},
		{
			name:     "regression within MaxRegression",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: trainLogistic(t, []int{0, 1}, 300)} }),
			baseline: true,
			opts:     func(o *Options) { o.MinAccuracy, o.MaxRegression = 0.85, 0.1 },
		},
		{
			name:     "regression check off",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: trainLogistic(t, []int{0, 1}, 300)} }),
			baseline: true,
			opts:     func(o *Options) { o.MinAccuracy, o.MaxRegression = 0.85, -1 },
			check: func(t *testing.T, r *Report) {
				if g := gate(t, r, GateAccuracy); g.Baseline[MetricAccuracy] == 0 {
					t.Errorf("baseline metrics missing with the regression check off: %+v", g)
				}
			},
		},
		{
			name:     "regression on the chosen metric",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: trainLogistic(t, []int{0, 1}, 300)} }),
			baseline: true,
			opts:     func(o *Options) { o.MinAccuracy, o.Metric = 0.85, MetricROCAUC },
			fail:     map[string]string{GateAccuracy: "roc_auc is worse than baseline 1's by "},
		},
		{
			name:     "several times slower than the baseline",
			cand:     built(func(t testing.TB) classifier { return classifier{lr: retrain(t), slowLayers: 16, slowWidth: 512} }),
			baseline: true,
			opts:     func(o *Options) { o.LargeBatch = 8 },
			fail:     map[string]string{GateLatency: "p50 at batch 8 is "},
			check: func(t *testing.T, r *Report) {
				g := gate(t, r, GateLatency)
				if !strings.Contains(g.Message, "p50 at batch 1 is ") || !strings.Contains(g.Message, "x the baseline's (") || !strings.Contains(g.Message, "more than the allowed 2x") {
					t.Errorf("latency message %q", g.Message)
				}
				if g.Metrics["batch1_p50_ratio"] <= 2 || g.Metrics["batch8_p50_ratio"] <= 2 {
					t.Errorf("ratios %v", g.Metrics)
				}
			},
		},
		{
			name: "over the latency budget",
			cand: demo,
			opts: func(o *Options) { o.LatencyBudget = time.Nanosecond },
			fail: map[string]string{GateLatency: "over the budget of 1ns"},
		},
		{
			name: "no holdout given",
			cand: demo,
			opts: func(o *Options) { o.Holdout = nil },
			fail: map[string]string{GateAccuracy: "no holdout given"},
		},
		{
			name: "accuracy skipped on request",
			cand: demo,
			opts: func(o *Options) { o.Holdout, o.SkipAccuracy = nil, true },
			check: func(t *testing.T, r *Report) {
				if g := gate(t, r, GateAccuracy); !g.Skipped || !g.Passed {
					t.Errorf("accuracy %+v, want skipped and passed", g)
				}
			},
		},
		{
			name: "binary probability output",
			cand: built(func(t testing.TB) classifier { return classifier{lr: retrain(t), probOnly: true} }),
			check: func(t *testing.T, r *Report) {
				g := gate(t, r, GateAccuracy)
				if !strings.Contains(g.Message, `binary classifier: output "probability" is the probability of class 1`) || g.Metrics[MetricAccuracy] < 0.95 {
					t.Errorf("accuracy %+v", g)
				}
			},
		},
		{
			name:     "a stored probability kind: a binary classifier at its threshold",
			cand:     withKinds(built(func(t testing.TB) classifier { return classifier{lr: retrain(t), probOnly: true} }), map[string]semantics.Output{"probability": {Kind: semantics.Probability, Threshold: 0.5}}),
			baseline: true,
			fail:     map[string]string{GateContract: `output "label" removed`},
			check: func(t *testing.T, r *Report) {
				g := gate(t, r, GateAccuracy)
				if !strings.Contains(g.Message, `binary classifier: output "probability", stored as probability (threshold 0.5): class 1 when >= 0.5`) || g.Metrics[MetricAccuracy] < 0.95 {
					t.Errorf("accuracy %+v", g)
				}
				if len(r.OutputKinds) != 1 || r.OutputKinds[0].Output != "probability" || r.OutputKinds[0].Semantics.Kind != semantics.Probability {
					t.Errorf("report's output kinds %+v", r.OutputKinds)
				}
				if md := r.Markdown(); !strings.Contains(md, "output kinds: `probability` probability (threshold 0.5)") {
					t.Errorf("Markdown lacks the output kinds:\n%s", md)
				}
				if txt := r.Text(); !strings.Contains(txt, `output kinds: "probability" probability (threshold 0.5)`) {
					t.Errorf("Text lacks the output kinds:\n%s", txt)
				}
			},
		},
		{
			name: "a stored regression kind makes a regressor of the same output",
			cand: withKinds(built(func(t testing.TB) classifier { return classifier{lr: retrain(t), probOnly: true} }), map[string]semantics.Output{"probability": semantics.Of(semantics.Regression)}),
			fail: map[string]string{GateAccuracy: "a minimum accuracy of 0.9 is set, but the model is a regressor"},
			check: func(t *testing.T, r *Report) {
				g := gate(t, r, GateAccuracy)
				if !strings.Contains(g.Message, `regressor: output "probability", stored as regression (atol 1e-06, rtol 0.01), is the prediction`) {
					t.Errorf("accuracy %+v", g)
				}
				if _, ok := g.Metrics[MetricR2]; !ok {
					t.Errorf("no r2: %v", g.Metrics)
				}
			},
		},
		{
			name: "a version without stored kinds says so",
			cand: demo,
			check: func(t *testing.T, r *Report) {
				if r.OutputKinds != nil || !strings.Contains(r.Markdown(), "output kinds: not stored with the version") {
					t.Errorf("output kinds %+v in\n%s", r.OutputKinds, r.Markdown())
				}
			},
		},
		{
			name: "label column by name",
			cand: demo,
			opts: func(o *Options) {
				o.Holdout = moveLabelFirst(t, readDemo(t, "holdout.csv"))
				o.LabelColumn = "label"
			},
		},
	}
	holdout := readDemo(t, "holdout.csv")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := defaultOptions()
			o.Runtime, o.Holdout = testRT, holdout
			if c.opts != nil {
				c.opts(&o)
			}
			var base *Model
			if c.baseline {
				b := model(t, "1", readDemo(t, "model.onnx"))
				base = &b
			}
			r, err := Run(context.Background(), c.cand(t), base, o)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if t.Failed() {
				return
			}
			checkGates(t, r, c.fail, c.notRun)
			if c.check != nil {
				c.check(t, r)
			}
			if t.Failed() {
				t.Logf("report:\n%s", r.Text())
			}
		})
	}
}

// withKinds is m with kinds stored in its manifest, as promote push
// stores them.
func withKinds(m func(t *testing.T) Model, kinds map[string]semantics.Output) func(t *testing.T) Model {
	return func(t *testing.T) Model {
		c := m(t)
		c.Manifest.OutputKinds = kinds
		return c
	}
}

// checkGates asserts the gates' order and outcome, and the verdict.
func checkGates(t *testing.T, r *Report, fail map[string]string, notRun []string) {
	t.Helper()
	var names []string
	for _, g := range r.Gates {
		names = append(names, g.Name)
	}
	if want := []string{GateSanity, GateContract, GateAccuracy, GateLatency}; !slices.Equal(names, want) {
		t.Fatalf("gates %v, want %v", names, want)
	}
	for _, g := range r.Gates {
		switch {
		case slices.Contains(notRun, g.Name):
			if !g.Skipped || g.Passed || !strings.Contains(g.Message, "sanity failed") {
				t.Errorf("gate %s: %+v, want not run because sanity failed", g.Name, g)
			}
		case fail[g.Name] != "":
			if g.Passed || g.Skipped {
				t.Errorf("gate %s passed, want it to fail with %q", g.Name, fail[g.Name])
			} else if !strings.Contains(g.Message, fail[g.Name]) {
				t.Errorf("gate %s message:\n  %s\nwant it to contain:\n  %s", g.Name, g.Message, fail[g.Name])
			}
		case !g.Passed:
			t.Errorf("gate %s failed: %s", g.Name, g.Message)
		}
	}
	wantPass := len(fail) == 0 && len(notRun) == 0
	if r.Passed() != wantPass || (r.Verdict == VerdictPass) != wantPass {
		t.Errorf("verdict %q, Passed() %v; want pass %v", r.Verdict, r.Passed(), wantPass)
	}
	if code := ExitCode(r, nil); (code == 0) != wantPass || (!wantPass && code != 1) {
		t.Errorf("exit code %d", code)
	}
}

// gate returns the named gate's result.
func gate(t *testing.T, r *Report, name string) GateResult {
	t.Helper()
	for _, g := range r.Gates {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("no gate %s in %+v", name, r.Gates)
	return GateResult{}
}

// moveLabelFirst rewrites a CSV with its last column first.
func moveLabelFirst(t *testing.T, csv []byte) []byte {
	var out bytes.Buffer
	for _, line := range strings.Split(strings.TrimSpace(string(csv)), "\n") {
		i := strings.LastIndexByte(line, ',')
		fmt.Fprintf(&out, "%s,%s\n", line[i+1:], line[:i])
	}
	return out.Bytes()
}

// divideByZero has input "x" FP32 [-1, 4] and output "y" = x / 0: +Inf for
// sanity's positive dummy inputs.
func divideByZero(t testing.TB) []byte {
	g := &onnx.Graph{Name: "inf"}
	g.Input("x", onnx.Float, -1, 4).Output("y", onnx.Float, -1, 4).
		Init(onnx.FloatTensor("zero", []int64{}, []float32{0})).
		Add("Div", []string{"x", "zero"}, []string{"y"})
	return marshal(t, g)
}

// badReshape reshapes its input [N, 4] to [-1, 8]: it loads, but fails to
// run on a single row.
func badReshape(t testing.TB) []byte {
	g := &onnx.Graph{Name: "reshape"}
	g.Input("x", onnx.Float, -1, 4).Output("y", onnx.Float, -1, 8).
		Init(onnx.Int64Tensor("shape", []int64{2}, []int64{-1, 8})).
		Add("Reshape", []string{"x", "shape"}, []string{"y"})
	return marshal(t, g)
}

// randomModel adds uniform noise to its input: two runs never agree.
func randomModel(t testing.TB) []byte {
	g := &onnx.Graph{Name: "random"}
	g.Input("x", onnx.Float, -1, 4).Output("y", onnx.Float, -1, 4).
		Add("RandomUniformLike", []string{"x"}, []string{"noise"}).
		Add("Add", []string{"x", "noise"}, []string{"y"})
	return marshal(t, g)
}

func marshal(t testing.TB, g *onnx.Graph) []byte {
	t.Helper()
	b, err := (&onnx.Model{Graph: g, ProducerName: "modelgate validation tests"}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// regressor has input "x" FP64 [-1, 2] and output "value" FP64 [-1, 1] =
// x·w + b.
func regressor(t testing.TB, w [2]float64, b float64) []byte {
	g := &onnx.Graph{Name: "regressor"}
	g.Input("x", onnx.Double, -1, 2).Output("value", onnx.Double, -1, 1).
		Init(onnx.Tensor{Name: "W", Type: onnx.Double, Dims: []int64{2, 1}, Doubles: w[:]}).
		Init(onnx.Tensor{Name: "B", Type: onnx.Double, Dims: []int64{1}, Doubles: []float64{b}}).
		Add("MatMul", []string{"x", "W"}, []string{"xw"}).
		Add("Add", []string{"xw", "B"}, []string{"value"})
	return marshal(t, g)
}

// regressionHoldout has a header and 50 rows of x1, x2 and y = 2·x1 − x2 + 0.5.
func regressionHoldout() []byte {
	var b bytes.Buffer
	b.WriteString("x1,x2,y\n")
	for i := range 50 {
		x1, x2 := float64(i)/10, math.Sin(float64(i))
		fmt.Fprintf(&b, "%g,%g,%g\n", x1, x2, 2*x1-x2+0.5)
	}
	return b.Bytes()
}

func TestRegressor(t *testing.T) {
	exact := func(t *testing.T) Model { return model(t, "2", regressor(t, [2]float64{2, -1}, 0.5)) }
	worse := func(t *testing.T) Model { return model(t, "2", regressor(t, [2]float64{2, -0.5}, 0.5)) }
	cases := []struct {
		name       string
		cand, base func(t *testing.T) Model
		opts       func(*Options)
		fail       string
	}{
		{name: "exact fit", cand: exact, opts: func(o *Options) { o.Metric, o.MinMetric = MetricRMSE, 1e-6 }},
		{name: "better than the baseline", cand: exact, base: worse},
		{name: "worse than the baseline on r2", cand: worse, base: exact, fail: "r2 is worse than baseline 1's by 0."},
		{name: "worse than the baseline on mae", cand: worse, base: exact, opts: func(o *Options) { o.Metric = MetricMAE }, fail: "mae is worse than baseline 1's by 0."},
		{name: "rmse over its maximum", cand: worse, opts: func(o *Options) { o.Metric, o.MinMetric = MetricRMSE, 0.1 }, fail: "rmse 0.3"},
		{name: "minimum accuracy for a regressor", cand: exact, opts: func(o *Options) { o.MinAccuracy = 0.9 }, fail: "a minimum accuracy of 0.9 is set, but the model is a regressor"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Runtime: testRT, Holdout: regressionHoldout(), LatencyRuns: 20}
			if c.opts != nil {
				c.opts(&o)
			}
			var base *Model
			if c.base != nil {
				b := c.base(t)
				b.Version, b.Manifest.Version = "1", "1"
				base = &b
			}
			r, err := Run(context.Background(), c.cand(t), base, o)
			if err != nil {
				t.Fatal(err)
			}
			fail := map[string]string{}
			if c.fail != "" {
				fail[GateAccuracy] = c.fail
			}
			checkGates(t, r, fail, nil)
			g := gate(t, r, GateAccuracy)
			if !strings.Contains(g.Message, `regressor: output "value" is the prediction`) {
				t.Errorf("message %q", g.Message)
			}
			if c.name == "exact fit" && (g.Metrics[MetricR2] < 0.999999 || g.Metrics[MetricRMSE] > 1e-9) {
				t.Errorf("exact fit: %v", g.Metrics)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	good := func(t *testing.T) Model { return model(t, "2", readDemo(t, "model.onnx")) }
	cases := []struct {
		name string
		opts func(*Options)
		base func(t *testing.T) *Model
		ctx  func() context.Context
		want error
		msg  string
	}{
		{name: "no runtime", opts: func(o *Options) { o.Runtime = nil }, want: ErrUsage, msg: "no Runtime"},
		{name: "unknown metric", opts: func(o *Options) { o.Metric = "accuracy_top5" }, want: ErrUsage, msg: `unknown metric "accuracy_top5"`},
		{name: "threshold without a metric", opts: func(o *Options) { o.MinMetric = 0.5 }, want: ErrUsage, msg: "without a Metric"},
		{name: "negative runs", opts: func(o *Options) { o.LatencyRuns = -1 }, want: ErrUsage, msg: "LatencyRuns -1"},
		{name: "negative batch", opts: func(o *Options) { o.LargeBatch = -1 }, want: ErrUsage, msg: "LargeBatch -1"},
		{name: "accuracy above 1", opts: func(o *Options) { o.MinAccuracy = 95 }, want: ErrUsage, msg: "MinAccuracy 95"},
		{name: "NaN ratio", opts: func(o *Options) { o.MaxLatencyRatio = math.NaN() }, want: ErrUsage, msg: "MaxLatencyRatio"},
		{name: "unknown label column", opts: func(o *Options) { o.LabelColumn = "diagnosis" }, want: ErrUsage, msg: `label column "diagnosis" is not in the holdout's header`},
		{name: "ragged holdout", opts: func(o *Options) { o.Holdout = []byte("1,2,0\n3,4\n") }, want: ErrHoldout, msg: "wrong number of fields"},
		{name: "empty holdout", opts: func(o *Options) { o.Holdout = []byte{} }, want: ErrHoldout, msg: "no data rows"},
		{
			name: "baseline does not load",
			base: func(t *testing.T) *Model {
				b := readDemo(t, "model.onnx")
				return &Model{Name: "breast-cancer", Version: "1", Bytes: b[:100]}
			},
			want: ErrBaseline, msg: "breast-cancer version 1 does not load",
		},
		{
			name: "baseline bytes do not match its manifest",
			base: func(t *testing.T) *Model {
				m := model(t, "1", readDemo(t, "model.onnx"))
				m.Bytes = testmodels.Scaled(1)
				return &m
			},
			want: ErrBaseline, msg: "sha256 of the bytes does not match the manifest",
		},
		{
			name: "cancelled",
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			want: context.Canceled,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Runtime: testRT, Holdout: readDemo(t, "holdout.csv"), LatencyRuns: 20}
			if c.opts != nil {
				c.opts(&o)
			}
			var base *Model
			if c.base != nil {
				base = c.base(t)
			}
			ctx := context.Background()
			if c.ctx != nil {
				ctx = c.ctx()
			}
			r, err := Run(ctx, good(t), base, o)
			if !errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.msg) {
				t.Fatalf("err = %v, want %v with %q", err, c.want, c.msg)
			}
			if r != nil {
				t.Errorf("a report with an error: %+v", r)
			}
			if code := ExitCode(r, err); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
		})
	}
}
