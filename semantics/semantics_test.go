package semantics

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/wire"
)

func tensor(shape []int64, data any) wire.Tensor {
	return wire.Tensor{Name: "out", Shape: shape, Data: data}
}

func TestDisagree(t *testing.T) {
	reg := func(atol, rtol float64) Output { return Output{Kind: Regression, Atol: atol, Rtol: rtol} }
	prob := Of(Probability)
	tests := []struct {
		name string
		sem  Output
		a, b wire.Tensor
		want bool
	}{
		// A sigmoid's probability: the side of the threshold decides, not
		// how far apart the numbers are.
		{"probability 1e-5 against 3e-5 agrees", prob, tensor([]int64{1, 1}, []float32{1e-5}), tensor([]int64{1, 1}, []float32{3e-5}), false},
		{"probability 0.49 against 0.51 disagrees", prob, tensor([]int64{1, 1}, []float32{0.49}), tensor([]int64{1, 1}, []float32{0.51}), true},
		{"probability 0.9 against 0.6", prob, tensor([]int64{1}, []float64{0.9}), tensor([]int64{1}, []float64{0.6}), false},
		{"probability exactly at the threshold is class 1", prob, tensor([]int64{1}, []float32{0.5}), tensor([]int64{1}, []float32{0.7}), false},
		{"probability, one row of three flips", prob, tensor([]int64{3, 1}, []float32{0.1, 0.8, 0.3}), tensor([]int64{3, 1}, []float32{0.2, 0.9, 0.6}), true},
		{"probability at another threshold", Output{Kind: Probability, Threshold: 0.9}, tensor([]int64{2}, []float32{0.6, 0.95}), tensor([]int64{2}, []float32{0.85, 0.91}), false},
		{"probability at another threshold flips", Output{Kind: Probability, Threshold: 0.9}, tensor([]int64{1}, []float32{0.89}), tensor([]int64{1}, []float32{0.9}), true},
		{"float32 at a threshold float32 cannot hold is on its side", Output{Kind: Probability, Threshold: 0.3}, tensor([]int64{1}, []float32{0.3}), tensor([]int64{1}, []float32{0.31}), false},
		{"float64 just under the threshold", Output{Kind: Probability, Threshold: 0.3}, tensor([]int64{1}, []float64{0.29999999}), tensor([]int64{1}, []float64{0.3}), true},

		// Labels: equal or not.
		{"same labels", Of(Label), tensor([]int64{3}, []int64{0, 1, 2}), tensor([]int64{3}, []int64{0, 1, 2}), false},
		{"one label differs", Of(Label), tensor([]int64{3}, []int64{0, 1, 2}), tensor([]int64{3}, []int64{0, 1, 1}), true},
		{"labels as int64 and int32", Of(Label), tensor([]int64{2}, []int64{4, 5}), tensor([]int64{2}, []int32{4, 5}), false},
		{"bool answers differ", Of(Label), tensor([]int64{2}, []bool{true, false}), tensor([]int64{2}, []bool{true, true}), true},
		{"bool answers agree", Of(Label), tensor([]int64{2}, []bool{true, false}), tensor([]int64{2}, []bool{true, false}), false},

		// Probabilities: the top-1 class of each row.
		{"scores, same argmax", Of(Probabilities), tensor([]int64{2, 3}, []float32{.1, .7, .2, .5, .3, .2}), tensor([]int64{2, 3}, []float32{.3, .4, .3, .9, .05, .05}), false},
		{"scores, argmax differs in row 2", Of(Probabilities), tensor([]int64{2, 3}, []float32{.1, .7, .2, .5, .3, .2}), tensor([]int64{2, 3}, []float32{.1, .7, .2, .2, .3, .5}), true},
		{"unnormalised scores", Of(Probabilities), tensor([]int64{1, 2}, []float64{-3, 7}), tensor([]int64{1, 2}, []float64{0.5, 0.51}), false},

		// Regression: |a - b| <= atol + rtol·|b|, b the reference.
		{"regression within rtol", reg(0, 0.05), tensor([]int64{2, 1}, []float32{104, -51}), tensor([]int64{2, 1}, []float32{100, -50}), false},
		{"regression beyond rtol", reg(0, 0.05), tensor([]int64{2, 1}, []float32{100, -60}), tensor([]int64{2, 1}, []float32{100, -50}), true},
		{"regression at the edge agrees", reg(0.5, 0.25), tensor([]int64{1}, []float64{3}), tensor([]int64{1}, []float64{2}), false},
		{"regression just past the edge", reg(0.5, 0.25), tensor([]int64{1}, []float64{3.0000001}), tensor([]int64{1}, []float64{2}), true},
		{"regression near zero within atol", Of(Regression), tensor([]int64{1}, []float32{0}), tensor([]int64{1}, []float32{5e-7}), false},
		{"regression near zero beyond atol", Of(Regression), tensor([]int64{1}, []float32{0}), tensor([]int64{1}, []float32{1e-3}), true},
		{"regression default rtol: 0.5 % agrees", Of(Regression), tensor([]int64{1}, []float64{100.5}), tensor([]int64{1}, []float64{100}), false},
		{"regression default rtol: 2 % disagrees", Of(Regression), tensor([]int64{1}, []float64{102}), tensor([]int64{1}, []float64{100}), true},
		{"regression, exact with zero tolerances", reg(0, 0), tensor([]int64{1}, []float64{1}), tensor([]int64{1}, []float64{1}), false},
		{"regression sign flip", reg(0, 0.5), tensor([]int64{1}, []float32{2}), tensor([]int64{1}, []float32{-2}), true},
		{"regression NaN disagrees", reg(1, 1), tensor([]int64{1}, []float64{math.NaN()}), tensor([]int64{1}, []float64{1}), true},

		// A shape mismatch disagrees whatever the kind.
		{"other row count", Of(Label), tensor([]int64{2}, []int64{1, 1}), tensor([]int64{3}, []int64{1, 1, 1}), true},
		{"other rank", Of(Regression), tensor([]int64{2}, []float32{1, 2}), tensor([]int64{2, 1}, []float32{1, 2}), true},
		{"other width", Of(Probabilities), tensor([]int64{1, 2}, []float32{1, 2}), tensor([]int64{1, 3}, []float32{1, 2, 0}), true},
		{"data shorter than the shape", Of(Label), tensor([]int64{2}, []int64{1, 1}), tensor([]int64{2}, []int64{1}), true},
		{"both shorter than the shape", prob, tensor([]int64{2}, []float32{0.1}), tensor([]int64{2}, []float32{0.1}), true},

		// No kind: inferred from the answers, as from a signature.
		{"no kind, float [1, 2] by top-1", Output{}, tensor([]int64{1, 2}, []float32{.9, .1}), tensor([]int64{1, 2}, []float32{.6, .4}), false},
		{"no kind, float [1, 1] as a regression", Output{}, tensor([]int64{1, 1}, []float32{1e-5}), tensor([]int64{1, 1}, []float32{3e-5}), true},
		{"no kind, int labels", Output{}, tensor([]int64{1}, []int64{1}), tensor([]int64{1}, []int64{2}), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Disagree(tc.sem, tc.a, tc.b); got != tc.want {
				t.Errorf("Disagree(%v) = %v, want %v", tc.sem, got, tc.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	good := []struct {
		in   string
		name string
		want Output
	}{
		{"label=label", "label", Of(Label)},
		{"probabilities=probabilities", "probabilities", Of(Probabilities)},
		{"p=probability", "p", Output{Kind: Probability, Threshold: 0.5}},
		{"p=probability,threshold=0.7", "p", Output{Kind: Probability, Threshold: 0.7}},
		{" p = probability , threshold = 0.25 ", "p", Output{Kind: Probability, Threshold: 0.25}},
		{"price=regression", "price", Output{Kind: Regression, Atol: 1e-6, Rtol: 0.01}},
		{"price=regression,rtol=0.05", "price", Output{Kind: Regression, Atol: 1e-6, Rtol: 0.05}},
		{"price=regression,atol=0,rtol=0", "price", Output{Kind: Regression}},
		{"price=regression,atol=0.1,rtol=1e-3", "price", Output{Kind: Regression, Atol: 0.1, Rtol: 1e-3}},
	}
	for _, tc := range good {
		name, o, err := Parse(tc.in)
		if err != nil || name != tc.name || o != tc.want {
			t.Errorf("Parse(%q) = %q, %+v, %v; want %q, %+v", tc.in, name, o, err, tc.name, tc.want)
		}
		// Spec reads back as the same semantics.
		if _, back, err := Parse(name + "=" + o.Spec()); err != nil || back != o {
			t.Errorf("Parse(Spec of %q) = %+v, %v", tc.in, back, err)
		}
	}
	bad := []struct{ in, want string }{
		{"", "want NAME=KIND"},
		{"label", "want NAME=KIND"},
		{"=label", "want NAME=KIND"},
		{"label=", "want NAME=KIND"},
		{"y=classes", `unknown kind "classes" (want one of label, probabilities, probability, regression)`},
		{"y=Probability", `unknown kind "Probability"`},
		{"p=probability,threshold=1", "threshold 1 is not strictly between 0 and 1"},
		{"p=probability,threshold=0", "threshold 0 is not strictly between 0 and 1"},
		{"p=probability,threshold=high", `threshold="high" is not a number`},
		{"p=probability,threshold=0.3,threshold=0.4", "threshold is given twice"},
		{"p=probability,rtol=0.1", "rtol applies to regression outputs, not probability"},
		{"y=label,threshold=0.5", "threshold applies to probability outputs, not label"},
		{"y=regression,threshold=0.5", "threshold applies to probability outputs, not regression"},
		{"y=regression,rtol=-1", "rtol -1 is not a finite number >= 0"},
		{"y=regression,atol=NaN", "atol NaN is not a finite number >= 0"},
		{"y=regression,atol=+Inf", "atol +Inf is not a finite number >= 0"},
		{"y=regression,tol=0.1", `unknown parameter "tol"`},
		{"y=regression,0.1", `parameter "0.1": want KEY=VALUE`},
	}
	for _, tc := range bad {
		if _, _, err := Parse(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

// The outputs of a model like the demo's, and of a sigmoid classifier.
var specs = []wire.TensorSpec{
	{Name: "label", DType: wire.INT64, Shape: []int64{-1}},
	{Name: "probabilities", DType: wire.FP32, Shape: []int64{-1, 2}},
	{Name: "probability", DType: wire.FP32, Shape: []int64{-1, 1}},
	{Name: "flat", DType: wire.FP64, Shape: []int64{-1}},
	{Name: "free", DType: wire.FP32, Shape: []int64{-1, -1}},
	{Name: "mask", DType: wire.BOOL, Shape: []int64{-1}},
	{Name: "volume", DType: wire.FP32, Shape: []int64{-1, 2, 2}},
}

func TestParseAll(t *testing.T) {
	got, err := ParseAll([]string{"probability=probability,threshold=0.3", "label=regression", "free=probability", "flat=probability"}, specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got["probability"].Threshold != 0.3 || got["label"].Kind != Regression || got["free"].Kind != Probability || got["flat"].Kind != Probability {
		t.Fatalf("ParseAll = %+v", got)
	}
	bad := []struct {
		in   []string
		want string
	}{
		{[]string{"logits=probabilities"}, `output "logits": the model has no such output (it has "label", "probabilities", "probability", "flat", "free", "mask", "volume")`},
		{[]string{"label=probabilities"}, `output "label" (INT64 [-1]): probabilities needs an FP32 or FP64 output, not INT64`},
		{[]string{"probability=probabilities"}, `output "probability" (FP32 [-1 1]): probabilities needs a shape [N, K] with K > 1 classes, not [-1 1]`},
		{[]string{"flat=probabilities"}, `probabilities needs a shape [N, K] with K > 1 classes, not [-1]`},
		{[]string{"probabilities=probability"}, `output "probabilities" (FP32 [-1 2]): probability needs a shape [N] or [N, 1], not [-1 2]`},
		{[]string{"volume=probability"}, `probability needs a shape [N] or [N, 1], not [-1 2 2]`},
		{[]string{"label=probability"}, `probability needs an FP32 or FP64 output, not INT64`},
		{[]string{"probabilities=label"}, `label needs an integer or boolean output, not FP32`},
		{[]string{"mask=regression"}, `regression needs a numeric output, not BOOL`},
		{[]string{"label=label", "label=label"}, `output "label": given twice`},
		{[]string{"label=nope"}, `unknown kind "nope"`},
	}
	for _, tc := range bad {
		if _, err := ParseAll(tc.in, specs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseAll(%q) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

func TestInfer(t *testing.T) {
	spec := func(name string) wire.TensorSpec {
		for _, s := range specs {
			if s.Name == name {
				return s
			}
		}
		t.Fatalf("no spec %q", name)
		return wire.TensorSpec{}
	}
	sample := func(shape []int64, data any) *wire.Tensor { s := tensor(shape, data); return &s }
	tests := []struct {
		name   string
		spec   wire.TensorSpec
		sample *wire.Tensor
		want   Kind
	}{
		{"integer labels", spec("label"), nil, Label},
		{"booleans", spec("mask"), nil, Label},
		{"int32 labels [N, 1]", wire.TensorSpec{Name: "y", DType: wire.INT32, Shape: []int64{-1, 1}}, nil, Label},
		{"class probabilities without a sample", spec("probabilities"), nil, Probabilities},
		{"class probabilities", spec("probabilities"), sample([]int64{2, 2}, []float32{0.1, 0.9, 0.5, 0.5}), Probabilities},
		{"class scores outside [0, 1]", spec("probabilities"), sample([]int64{1, 2}, []float32{-4, 7}), Probabilities},
		{"[N, K, K]", spec("volume"), nil, Probabilities},
		{"sigmoid [N, 1] on the holdout", spec("probability"), sample([]int64{3, 1}, []float32{1e-5, 0.4, 1}), Probability},
		{"[N] in [0, 1]", spec("flat"), sample([]int64{2}, []float64{0, 0.3}), Probability},
		{"[N, 1] without a sample", spec("probability"), nil, Regression},
		{"[N, 1] with a value above 1", spec("probability"), sample([]int64{2, 1}, []float32{0.5, 1.5}), Regression},
		{"[N] with a negative value", spec("flat"), sample([]int64{2}, []float64{0.5, -0.01}), Regression},
		{"[N, 1] with NaN", spec("probability"), sample([]int64{1, 1}, []float32{float32(math.NaN())}), Regression},
		{"[N, 1] with an empty sample", spec("probability"), sample([]int64{0, 1}, []float32{}), Regression},
		{"free width, sample of width 3", spec("free"), sample([]int64{1, 3}, []float32{0.2, 0.3, 0.5}), Probabilities},
		{"free width, sample of width 1 in [0, 1]", spec("free"), sample([]int64{2, 1}, []float32{0.2, 0.3}), Probability},
		{"free width without a sample", spec("free"), nil, Regression},
		{"scalar", wire.TensorSpec{Name: "s", DType: wire.FP32}, nil, Regression},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Infer(tc.spec, tc.sample)
			if got != Of(tc.want) {
				t.Errorf("Infer = %+v, want %+v", got, Of(tc.want))
			}
			if err := got.Fits(tc.spec); err != nil {
				t.Errorf("the inferred %v does not fit %v: %v", got, tc.spec, err)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	p := wire.TensorSpec{Name: "p", DType: wire.FP32, Shape: []int64{-1, 1}}
	cand := map[string]Output{"p": {Kind: Probability, Threshold: 0.7}}
	stable := map[string]Output{"p": Of(Probability)}
	if o, stored := Resolve(p, cand, stable); !stored || o.Threshold != 0.7 {
		t.Errorf("Resolve with both stored = %+v, %v; want the first", o, stored)
	}
	if o, stored := Resolve(p, nil, stable); !stored || o != Of(Probability) {
		t.Errorf("Resolve with the second stored = %+v, %v", o, stored)
	}
	if o, stored := Resolve(p, nil, map[string]Output{"q": Of(Label)}); stored || o != Of(Regression) {
		t.Errorf("Resolve with nothing stored = %+v, %v; want the inferred regression", o, stored)
	}
}

func TestJSON(t *testing.T) {
	kinds := map[string]Output{
		"label": Of(Label), "probabilities": Of(Probabilities),
		"p":     {Kind: Probability, Threshold: 0.25},
		"price": {Kind: Regression, Atol: 0, Rtol: 0.05},
	}
	b, err := json.Marshal(kinds)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"label":{"kind":"label"},"p":{"kind":"probability","threshold":0.25},"price":{"kind":"regression","atol":0,"rtol":0.05},"probabilities":{"kind":"probabilities"}}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	var back map[string]Output
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for k, v := range kinds {
		if back[k] != v {
			t.Errorf("%s: %+v after a round trip, want %+v", k, back[k], v)
		}
	}
	// Parameters left out take their defaults.
	var o Output
	if err := json.Unmarshal([]byte(`{"kind":"regression","rtol":0.2}`), &o); err != nil || o != (Output{Kind: Regression, Atol: DefaultAtol, Rtol: 0.2}) {
		t.Errorf("regression without atol: %+v, %v", o, err)
	}
	if err := json.Unmarshal([]byte(`{"kind":"probability"}`), &o); err != nil || o != Of(Probability) {
		t.Errorf("probability without a threshold: %+v, %v", o, err)
	}
	for in, msg := range map[string]string{
		`{"kind":"ranking"}`:                     `unknown kind "ranking"`,
		`{}`:                                     `unknown kind ""`,
		`{"kind":"probability","threshold":2}`:   "threshold 2 is not strictly between 0 and 1",
		`{"kind":"label","threshold":0.5}`:       "threshold applies to probability outputs",
		`{"kind":"regression","rtol":-0.1}`:      "rtol -0.1 is not a finite number",
		`{"kind":"probabilities","rtol":0.1}`:    "atol and rtol apply to regression outputs",
		`{"kind":"probability","threshold":"x"}`: "cannot unmarshal",
	} {
		if err := json.Unmarshal([]byte(in), &o); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Unmarshal(%s) = %v, want an error with %q", in, err, msg)
		}
	}
}

func TestCheck(t *testing.T) {
	if err := Check(map[string]Output{"label": Of(Label), "probability": Of(Probability)}, specs); err != nil {
		t.Fatal(err)
	}
	for kinds, want := range map[*map[string]Output]string{
		{"logits": Of(Label)}:        `output "logits" is not in the signature`,
		{"label": Of(Probabilities)}: `output "label" (INT64 [-1]): probabilities needs an FP32 or FP64 output`,
		{"label": {Kind: "ranking"}}: `unknown kind "ranking"`,
	} {
		err := Check(*kinds, specs)
		if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%v) = %v, want ErrMismatch with %q", *kinds, err, want)
		}
	}
}

func TestClassAndScores(t *testing.T) {
	tests := []struct {
		sem    Output
		row    []float64
		class  int64
		ok     bool
		scores []float64
	}{
		{Of(Label), []float64{3}, 3, true, nil},
		{Of(Label), []float64{1.5}, 0, false, nil},
		{Of(Label), []float64{1, 2}, 0, false, nil},
		{Of(Probabilities), []float64{0.2, 0.5, 0.3}, 1, true, []float64{0.2, 0.5, 0.3}},
		{Of(Probability), []float64{0.5}, 1, true, []float64{0.5, 0.5}},
		{Of(Probability), []float64{0.2}, 0, true, []float64{0.8, 0.2}},
		{Output{Kind: Probability, Threshold: 0.1}, []float64{0.2}, 1, true, []float64{0.8, 0.2}},
		{Of(Regression), []float64{0.2}, 0, false, nil},
		{Of(Probabilities), nil, 0, false, nil},
	}
	for _, tc := range tests {
		c, ok := tc.sem.Class(tc.row)
		if c != tc.class || ok != tc.ok {
			t.Errorf("%v.Class(%v) = %d, %v; want %d, %v", tc.sem, tc.row, c, ok, tc.class, tc.ok)
		}
		s := tc.sem.Scores(tc.row)
		if len(s) != len(tc.scores) {
			t.Errorf("%v.Scores(%v) = %v, want %v", tc.sem, tc.row, s, tc.scores)
			continue
		}
		for i := range s {
			if math.Abs(s[i]-tc.scores[i]) > 1e-12 {
				t.Errorf("%v.Scores(%v) = %v, want %v", tc.sem, tc.row, s, tc.scores)
			}
		}
	}
}

func TestString(t *testing.T) {
	for o, want := range map[Output]string{
		Of(Label):          "label",
		Of(Probabilities):  "probabilities (top-1)",
		Of(Probability):    "probability (threshold 0.5)",
		Of(Regression):     "regression (atol 1e-06, rtol 0.01)",
		{Kind: Regression}: "regression (atol 0, rtol 0)",
	} {
		if got := o.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", o, got, want)
		}
	}
}
