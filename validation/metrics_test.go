package validation

import (
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/wire"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// sameMetrics compares metric maps within 1e-9.
func sameMetrics(got, want map[string]float64) bool {
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		return false
	}
	for k, v := range want {
		if !near(got[k], v) {
			return false
		}
	}
	return true
}

func TestClassifierMetrics(t *testing.T) {
	cases := []struct {
		name        string
		truth, pred []int64
		scores      [][]float64
		probs       bool
		want        map[string]float64
	}{
		{
			name:  "three classes without scores",
			truth: []int64{0, 0, 1, 1, 1, 2}, pred: []int64{0, 1, 1, 1, 0, 2},
			want: map[string]float64{
				"rows": 6, "accuracy": 4.0 / 6,
				"precision_0": 0.5, "recall_0": 0.5, "f1_0": 0.5,
				"precision_1": 2.0 / 3, "recall_1": 2.0 / 3, "f1_1": 2.0 / 3,
				"precision_2": 1, "recall_2": 1, "f1_2": 1,
				"f1_macro": (0.5 + 2.0/3 + 1) / 3,
			},
		},
		{
			name:  "a class never predicted and one never present",
			truth: []int64{0, 0, 1}, pred: []int64{0, 0, 2},
			want: map[string]float64{
				"rows": 3, "accuracy": 2.0 / 3,
				"precision_0": 1, "recall_0": 1, "f1_0": 1,
				"precision_1": 0, "recall_1": 0, "f1_1": 0,
				"precision_2": 0, "recall_2": 0, "f1_2": 0,
				"f1_macro": 1.0 / 3,
			},
		},
		{
			name:  "binary with probabilities",
			truth: []int64{0, 0, 1, 1}, pred: []int64{0, 0, 0, 1},
			scores: [][]float64{{0.9, 0.1}, {0.6, 0.4}, {0.65, 0.35}, {0.2, 0.8}}, probs: true,
			want: map[string]float64{
				"rows": 4, "accuracy": 0.75,
				"precision_0": 2.0 / 3, "recall_0": 1, "f1_0": 0.8,
				"precision_1": 1, "recall_1": 0.5, "f1_1": 2.0 / 3,
				"f1_macro": (0.8 + 2.0/3) / 2,
				"roc_auc":  0.75, // scikit-learn's roc_auc_score example
				"log_loss": -(math.Log(0.9) + math.Log(0.6) + math.Log(0.35) + math.Log(0.8)) / 4,
			},
		},
		{
			name:  "scores that are not probabilities give no log loss",
			truth: []int64{0, 1}, pred: []int64{0, 1},
			scores: [][]float64{{2, -1}, {-3, 4}},
			want: map[string]float64{
				"rows": 2, "accuracy": 1, "precision_0": 1, "recall_0": 1, "f1_0": 1,
				"precision_1": 1, "recall_1": 1, "f1_1": 1, "f1_macro": 1, "roc_auc": 1,
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := classifierMetrics(c.truth, c.pred, c.scores, c.probs); !sameMetrics(got, c.want) {
				t.Errorf("got  %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestBinaryAUC(t *testing.T) {
	cases := []struct {
		name   string
		truth  []int64
		scores [][]float64
		want   float64
		ok     bool
	}{
		{name: "ties count half", truth: []int64{0, 1, 0, 1}, scores: [][]float64{{0, .5}, {0, .5}, {0, .2}, {0, .9}}, want: 0.875, ok: true},
		{name: "perfect", truth: []int64{1, 0}, scores: [][]float64{{0, .9}, {0, .1}}, want: 1, ok: true},
		{name: "inverted", truth: []int64{1, 0}, scores: [][]float64{{0, .1}, {0, .9}}, want: 0, ok: true},
		{name: "classes 1 and 2 use column 2", truth: []int64{1, 2}, scores: [][]float64{{0, .9, .1}, {0, .1, .8}}, want: 1, ok: true},
		{name: "one class", truth: []int64{1, 1}, scores: [][]float64{{0, .5}, {0, .6}}},
		{name: "three classes", truth: []int64{0, 1, 2}, scores: [][]float64{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}},
		{name: "no column for the positive class", truth: []int64{0, 5}, scores: [][]float64{{1, 0}, {0, 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := binaryAUC(c.truth, c.scores)
			if ok != c.ok || (ok && !near(got, c.want)) {
				t.Errorf("got %v %v, want %v %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func TestLogLossClips(t *testing.T) {
	got, ok := logLoss([]int64{1}, [][]float64{{1, 0}})
	if !ok || !near(got, -math.Log(probClip)) {
		t.Errorf("got %v %v, want %v", got, ok, -math.Log(probClip))
	}
	if _, ok := logLoss([]int64{2}, [][]float64{{1, 0}}); ok {
		t.Error("a label without a probability column gave a log loss")
	}
}

func TestRegressorMetrics(t *testing.T) {
	got := regressorMetrics([]float64{1, 2, 3}, []float64{1, 2, 4})
	want := map[string]float64{"rows": 3, "rmse": math.Sqrt(1.0 / 3), "mae": 1.0 / 3, "r2": 0.5}
	if !sameMetrics(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, ok := regressorMetrics([]float64{2, 2}, []float64{1, 3})[MetricR2]; ok {
		t.Error("r2 for a constant truth")
	}
}

func TestMetricNames(t *testing.T) {
	for name, want := range map[string]struct{ known, lower bool }{
		"accuracy": {true, false}, "f1_macro": {true, false}, "roc_auc": {true, false}, "r2": {true, false},
		"log_loss": {true, true}, "rmse": {true, true}, "mae": {true, true},
		"precision_1": {true, false}, "recall_0": {true, false}, "f1_-1": {true, false},
		"f1": {false, false}, "precision_x": {false, false}, "auc": {false, false}, "": {false, false},
	} {
		if knownMetric(name) != want.known || lowerIsBetter(name) != want.lower {
			t.Errorf("%q: known %v lower %v, want %+v", name, knownMetric(name), lowerIsBetter(name), want)
		}
	}
	if w := worsening(MetricAccuracy, 0.9, 0.8); !near(w, 0.1) {
		t.Errorf("accuracy 0.9 -> 0.8 worsens by %v", w)
	}
	if w := worsening(MetricLogLoss, 0.2, 0.5); !near(w, 0.3) {
		t.Errorf("log loss 0.2 -> 0.5 worsens by %v", w)
	}
}

// out builds a rowOutput as predict would.
func out(name string, d wire.DType, rank, width int, vals ...float64) *rowOutput {
	return &rowOutput{spec: wire.TensorSpec{Name: name, DType: d}, rank: rank, width: width, vals: vals}
}

// TestLabelRule covers each branch of the rule that reads predictions from
// a model's outputs.
func TestLabelRule(t *testing.T) {
	binary := &holdout{labels: []float64{0, 1, 1}, lines: []int{2, 3, 4}, header: []string{"x", "label"}, label: 1}
	multi := &holdout{labels: []float64{0, 2, 1}, lines: []int{2, 3, 4}}
	real := &holdout{labels: []float64{0.5, 2, 1}, lines: []int{2, 3, 4}, header: []string{"x", "label"}, label: 1}
	prob := func(threshold float64) map[string]semantics.Output {
		return map[string]semantics.Output{"p": {Kind: semantics.Probability, Threshold: threshold}}
	}
	cases := []struct {
		name    string
		h       *holdout
		outs    []*rowOutput
		kinds   map[string]semantics.Output // stored with the version
		kind    string
		note    string
		metrics map[string]float64 // a subset
		absent  []string
		problem string
	}{
		{
			name: "integer label and named probabilities",
			h:    binary,
			outs: []*rowOutput{
				out("label", wire.INT64, 1, 1, 0, 1, 0),
				out("logits", wire.FP32, 2, 2, 5, -5, -5, 5, 5, -5),
				out("Probabilities", wire.FP32, 2, 2, .9, .1, .2, .8, .6, .4),
			},
			kind: kindClassifier, note: `classifier: labels from output "label", scores from "Probabilities"`,
			metrics: map[string]float64{"accuracy": 2.0 / 3, "roc_auc": 1, "log_loss": -(math.Log(.9) + math.Log(.8) + math.Log(.4)) / 3},
		},
		{
			name: "integer label [N, 1] and unnamed scores",
			h:    binary,
			outs: []*rowOutput{out("y", wire.INT32, 2, 1, 0, 1, 1), out("s", wire.FP64, 2, 2, 3, 1, 0, 2, 1, 4)},
			kind: kindClassifier, note: `classifier: labels from output "y", scores from "s" (not probabilities: no log_loss)`,
			metrics: map[string]float64{"accuracy": 1, "roc_auc": 1}, absent: []string{"log_loss"},
		},
		{
			name: "integer label and a single probability",
			h:    binary,
			outs: []*rowOutput{out("label", wire.INT64, 1, 1, 0, 1, 1), out("probability", wire.FP32, 1, 1, .1, .7, .9)},
			kind: kindClassifier, note: `scores from "probability"`,
			metrics: map[string]float64{"accuracy": 1, "roc_auc": 1, "log_loss": -(math.Log(.9) + math.Log(.7) + math.Log(.9)) / 3},
		},
		{
			name: "integer label alone",
			h:    multi,
			outs: []*rowOutput{out("label", wire.INT64, 1, 1, 0, 2, 2)},
			kind: kindClassifier, note: `classifier: labels from output "label"`,
			metrics: map[string]float64{"accuracy": 2.0 / 3}, absent: []string{"roc_auc", "log_loss"},
		},
		{
			name: "scores [N, k]: argmax",
			h:    multi,
			outs: []*rowOutput{out("probabilities", wire.FP32, 2, 3, .8, .1, .1, .1, .2, .7, .3, .6, .1)},
			kind: kindClassifier, note: `classifier: labels are the argmax of output "probabilities"`,
			metrics: map[string]float64{"accuracy": 1, "log_loss": -(math.Log(.8) + math.Log(.7) + math.Log(.6)) / 3},
		},
		{
			name: "one probability per row with binary labels",
			h:    binary,
			outs: []*rowOutput{out("p", wire.FP32, 1, 1, .2, .5, .4)},
			kind: kindClassifier, note: `binary classifier: output "p" is the probability of class 1, label 1 when >= 0.5`,
			metrics: map[string]float64{"accuracy": 2.0 / 3, "roc_auc": 1},
		},
		{
			name: "values outside [0, 1] make a regressor",
			h:    binary,
			outs: []*rowOutput{out("y", wire.FP32, 2, 1, 0, 1, 1.5)},
			kind: kindRegressor, note: `regressor: output "y" is the prediction`,
			metrics: map[string]float64{"mae": 0.5 / 3}, absent: []string{"accuracy"},
		},
		{
			name: "labels other than 0 and 1 make a regressor",
			h:    real,
			outs: []*rowOutput{out("y", wire.FP64, 1, 1, .5, 1, 1)},
			kind: kindRegressor, metrics: map[string]float64{"mae": 1.0 / 3},
		},
		{
			name:    "a classifier needs whole-number labels",
			h:       real,
			outs:    []*rowOutput{out("label", wire.INT64, 1, 1, 0, 2, 1)},
			problem: `but the holdout's label "label" is 0.5 on line 2: a classifier needs whole-number class labels`,
		},
		{
			name:    "a boolean first output",
			h:       binary,
			outs:    []*rowOutput{{spec: wire.TensorSpec{Name: "flag", DType: wire.BOOL, Shape: []int64{-1}}, bad: `output "flag" is BOOL, not numeric`}},
			problem: `output "flag" is BOOL, not numeric`,
		},
		{
			name:    "an image output",
			h:       binary,
			outs:    []*rowOutput{{spec: wire.TensorSpec{Name: "mask", DType: wire.FP32, Shape: []int64{-1, 4, 4}}, rank: 3, width: 16, vals: make([]float64, 48)}},
			problem: `cannot read predictions from the first output "mask" (FP32 [-1 4 4])`,
		},

		// With stored kinds, the first output's kind decides.
		{
			name: "stored probability, at its threshold",
			h:    binary, kinds: prob(0.5),
			outs: []*rowOutput{out("p", wire.FP32, 2, 1, .2, .6, .4)},
			kind: kindClassifier, note: `binary classifier: output "p", stored as probability (threshold 0.5): class 1 when >= 0.5`,
			metrics: map[string]float64{"accuracy": 2.0 / 3, "roc_auc": 1},
		},
		{
			name: "stored probability at another threshold",
			h:    binary, kinds: prob(0.3),
			outs: []*rowOutput{out("p", wire.FP32, 2, 1, .2, .6, .4)},
			kind: kindClassifier, note: `class 1 when >= 0.3`,
			metrics: map[string]float64{"accuracy": 1, "log_loss": -(math.Log(.8) + math.Log(.6) + math.Log(.4)) / 3},
		},
		{
			name: "a float32 probability equal to its threshold is class 1",
			h:    binary, kinds: prob(0.4),
			outs: []*rowOutput{out("p", wire.FP32, 2, 1, .2, .6, float64(float32(.4)))},
			kind: kindClassifier, metrics: map[string]float64{"accuracy": 1},
		},
		{
			name:  "stored regression, though the values are in [0, 1] and the labels 0 or 1",
			h:     binary,
			kinds: map[string]semantics.Output{"p": semantics.Of(semantics.Regression)},
			outs:  []*rowOutput{out("p", wire.FP32, 2, 1, .2, .6, .4)},
			kind:  kindRegressor, note: `regressor: output "p", stored as regression (atol 1e-06, rtol 0.01), is the prediction`,
			absent: []string{"accuracy"},
		},
		{
			name:  "stored label, scores from the output stored as a probability",
			h:     binary,
			kinds: map[string]semantics.Output{"y": semantics.Of(semantics.Label), "raw": semantics.Of(semantics.Regression), "p1": semantics.Of(semantics.Probability)},
			outs:  []*rowOutput{out("y", wire.INT64, 1, 1, 0, 1, 0), out("raw", wire.FP32, 2, 2, 5, -5, -5, 5, 5, -5), out("p1", wire.FP32, 2, 1, .1, .8, .3)},
			kind:  kindClassifier, note: `classifier: labels from output "y", stored as label, scores from "p1" (probability)`,
			metrics: map[string]float64{"accuracy": 2.0 / 3, "roc_auc": 1, "log_loss": -(math.Log(.9) + math.Log(.8) + math.Log(.3)) / 3},
		},
		{
			name:  "stored probabilities: top-1",
			h:     multi,
			kinds: map[string]semantics.Output{"s": semantics.Of(semantics.Probabilities)},
			outs:  []*rowOutput{out("s", wire.FP32, 2, 3, 4, 1, 1, 1, 2, 7, 3, 6, 1)},
			kind:  kindClassifier, note: `classifier: labels are the top-1 of output "s", stored as probabilities (top-1) (not probabilities: no log_loss)`,
			metrics: map[string]float64{"accuracy": 1}, absent: []string{"log_loss"},
		},
		{
			name: "a stored probability needs labels 0 and 1",
			h:    multi, kinds: prob(0.5),
			outs:    []*rowOutput{out("p", wire.FP32, 2, 1, .2, .6, .4)},
			problem: `output "p", stored as probability (threshold 0.5), the probability of class 1 of a binary classifier, but the holdout's labels column 0 are not all 0 or 1`,
		},
		{
			name:    "a stored regression of two values per row",
			h:       real,
			kinds:   map[string]semantics.Output{"y": semantics.Of(semantics.Regression)},
			outs:    []*rowOutput{out("y", wire.FP32, 2, 2, 1, 2, 3, 4, 5, 6)},
			problem: `with 2 values per row: the accuracy gate scores one prediction per row`,
		},
		{
			name:  "kinds stored for other outputs only: the label rule",
			h:     binary,
			kinds: map[string]semantics.Output{"other": semantics.Of(semantics.Label)},
			outs:  []*rowOutput{out("p", wire.FP32, 1, 1, .2, .5, .4)},
			kind:  kindClassifier, note: `binary classifier: output "p" is the probability of class 1, label 1 when >= 0.5`,
		},
		{
			name:    "NaN on a holdout row",
			h:       binary,
			outs:    []*rowOutput{out("label", wire.INT64, 1, 1, 0, 1, 1), out("probabilities", wire.FP32, 2, 2, .5, .5, math.NaN(), 1, 0, 1)},
			problem: `output "probabilities" is NaN on holdout line 3`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev, problem := score(c.outs, c.h, c.kinds)
			if c.problem != "" {
				if !strings.Contains(problem, c.problem) {
					t.Fatalf("problem %q, want %q", problem, c.problem)
				}
				return
			}
			if problem != "" {
				t.Fatal(problem)
			}
			if ev.kind != c.kind || !strings.Contains(ev.note, c.note) {
				t.Errorf("kind %s note %q, want %s %q", ev.kind, ev.note, c.kind, c.note)
			}
			for k, v := range c.metrics {
				if got, ok := ev.metrics[k]; !ok || !near(got, v) {
					t.Errorf("%s = %v (%v), want %v", k, got, ok, v)
				}
			}
			for _, k := range c.absent {
				if _, ok := ev.metrics[k]; ok {
					t.Errorf("%s present: %v", k, ev.metrics)
				}
			}
		})
	}
}
