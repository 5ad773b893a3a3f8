// Package semantics says what a model's output means, so that the parts
// of modelgate that read answers read them the same way: whether two
// versions' answers to one request agree (the canary's disagreement
// check) and how the accuracy gate turns an output into predictions.
//
// Each output has a kind:
//
//   - label: class labels (an integer or boolean output); two answers
//     agree when they are equal.
//   - probabilities: class probabilities or scores, a floating-point output
//     of shape [N, K] with K > 1; two answers agree when a row's top-1
//     class (argmax) is the same.
//   - probability: the probability of class 1 of a binary classifier, a
//     floating-point output of shape [N] or [N, 1] with values in [0, 1];
//     two answers agree when they are on the same side of the threshold
//     (class 1 when p >= threshold; DefaultThreshold, 0.5, unless set).
//   - regression: any other number; two answers a and b (b the reference,
//     the stable version's) agree when |a − b| <= atol + rtol·|b|
//     (DefaultAtol 1e-6 and DefaultRtol 0.01 unless set).
//
// A version's kinds are stored in its manifest, one per output name
// (promote push infers them and takes overrides); a version stored
// without them is read by Infer from its signature.
//
// The package imports only wire, so that every layer above may use it.
package semantics

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/modelgate/modelgate/wire"
)

// Kind is what an output holds.
type Kind string

// The kinds of output.
const (
	Label         Kind = "label"
	Probabilities Kind = "probabilities"
	Probability   Kind = "probability"
	Regression    Kind = "regression"
)

// Kinds lists every kind, in the order messages name them.
var Kinds = []Kind{Label, Probabilities, Probability, Regression}

// Known reports whether k is one of Kinds.
func (k Kind) Known() bool { return slices.Contains(Kinds, k) }

// Classifies reports whether an output of kind k gives a class per row.
func (k Kind) Classifies() bool { return k == Label || k == Probabilities || k == Probability }

// Defaults of the parameters.
//
// DefaultThreshold is the usual decision rule of a binary classifier.
// DefaultRtol and DefaultAtol make a regression's two answers agree within
// one percent of the reference, plus a floor of 1e-6 so that answers at or
// near zero are not told apart by float32 rounding alone (float32 carries
// about 7 significant digits). One percent is tight: it flags any change a
// reader of the prediction would notice, which is what a canary exists to
// see. A retrain expected to move its predictions more than that should
// say so at push (promote push --output-kind NAME=regression,rtol=0.05).
const (
	DefaultThreshold = 0.5
	DefaultAtol      = 1e-6
	DefaultRtol      = 0.01
)

// Output is the semantics of one output: its kind and the parameters of
// that kind (Threshold for probability, Atol and Rtol for regression; the
// others are zero). The zero Output has no kind: Disagree then infers one
// from the answers' type and shape.
type Output struct {
	Kind      Kind
	Threshold float64
	Atol      float64
	Rtol      float64
}

// Of is kind k with its default parameters.
func Of(k Kind) Output {
	switch k {
	case Probability:
		return Output{Kind: k, Threshold: DefaultThreshold}
	case Regression:
		return Output{Kind: k, Atol: DefaultAtol, Rtol: DefaultRtol}
	}
	return Output{Kind: k}
}

// String describes o for people: "label", "probabilities (top-1)",
// "probability (threshold 0.5)", "regression (atol 1e-06, rtol 0.01)".
func (o Output) String() string {
	switch o.Kind {
	case "":
		return "no kind"
	case Probabilities:
		return "probabilities (top-1)"
	case Probability:
		return fmt.Sprintf("probability (threshold %s)", num(o.Threshold))
	case Regression:
		return fmt.Sprintf("regression (atol %s, rtol %s)", num(o.Atol), num(o.Rtol))
	}
	return string(o.Kind)
}

// Spec is o as Parse reads it, without the name: "probability,threshold=0.5".
func (o Output) Spec() string {
	switch o.Kind {
	case Probability:
		return fmt.Sprintf("%s,threshold=%s", o.Kind, num(o.Threshold))
	case Regression:
		return fmt.Sprintf("%s,atol=%s,rtol=%s", o.Kind, num(o.Atol), num(o.Rtol))
	}
	return string(o.Kind)
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Validate checks that o's kind is known and its parameters are in range
// and belong to it.
func (o Output) Validate() error {
	if !o.Kind.Known() {
		return unknownKind(string(o.Kind))
	}
	if o.Kind != Probability && o.Threshold != 0 {
		return fmt.Errorf("threshold applies to probability outputs, not %s", o.Kind)
	}
	if o.Kind != Regression && (o.Atol != 0 || o.Rtol != 0) {
		return fmt.Errorf("atol and rtol apply to regression outputs, not %s", o.Kind)
	}
	switch o.Kind {
	case Probability:
		if !(o.Threshold > 0 && o.Threshold < 1) {
			return fmt.Errorf("threshold %s is not strictly between 0 and 1", num(o.Threshold))
		}
	case Regression:
		for _, p := range []struct {
			name string
			v    float64
		}{{"atol", o.Atol}, {"rtol", o.Rtol}} {
			if !(p.v >= 0) || math.IsInf(p.v, 0) {
				return fmt.Errorf("%s %s is not a finite number >= 0", p.name, num(p.v))
			}
		}
	}
	return nil
}

func unknownKind(k string) error {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return fmt.Errorf("unknown kind %q (want one of %s)", k, strings.Join(names, ", "))
}

// Fits checks that o suits an output of spec's element type and shape: a
// label is integer or boolean; probabilities are floating-point of rank 2
// or more whose last dimension is not 1; a probability is floating-point
// of shape [N] or [N, 1]; a regression is numeric (not boolean). A free
// dimension (-1) fits any size.
func (o Output) Fits(spec wire.TensorSpec) error {
	if err := o.Validate(); err != nil {
		return err
	}
	d, shape := spec.DType, spec.Shape
	last := int64(-1)
	if len(shape) > 0 {
		last = shape[len(shape)-1]
	}
	switch o.Kind {
	case Label:
		if d != wire.BOOL && !d.IsInteger() {
			return fmt.Errorf("label needs an integer or boolean output, not %s (class scores are probabilities, one probability per row is probability)", d)
		}
	case Probabilities:
		switch {
		case !d.IsFloat():
			return fmt.Errorf("probabilities needs an FP32 or FP64 output, not %s (integer class ids are a label)", d)
		case len(shape) < 2 || last == 1:
			return fmt.Errorf("probabilities needs a shape [N, K] with K > 1 classes, not %v (one probability per row is probability)", shape)
		}
	case Probability:
		switch {
		case !d.IsFloat():
			return fmt.Errorf("probability needs an FP32 or FP64 output, not %s (integer class ids are a label)", d)
		case len(shape) == 0 || len(shape) > 2 || (len(shape) == 2 && last != 1 && last != -1):
			return fmt.Errorf("probability needs a shape [N] or [N, 1], not %v (K class probabilities per row are probabilities)", shape)
		}
	case Regression:
		if !d.IsFloat() && !d.IsInteger() {
			return fmt.Errorf("regression needs a numeric output, not %s", d)
		}
	}
	return nil
}

// Parse reads one output's semantics as NAME=KIND[,threshold=T][,atol=A][,rtol=R]:
// "probability=probability,threshold=0.7", "price=regression,rtol=0.05",
// "label=label". The name ends at the first "="; parameters left out take
// their defaults.
func Parse(s string) (string, Output, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(rest) == "" {
		return "", Output{}, fmt.Errorf("%q: want NAME=KIND[,threshold=T][,atol=A][,rtol=R]", s)
	}
	name = strings.TrimSpace(name)
	parts := strings.Split(rest, ",")
	kind := Kind(strings.TrimSpace(parts[0]))
	if !kind.Known() {
		return "", Output{}, fmt.Errorf("output %q: %w", name, unknownKind(string(kind)))
	}
	o := Of(kind)
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return "", Output{}, fmt.Errorf("output %q: parameter %q: want KEY=VALUE (threshold, atol or rtol)", name, p)
		}
		if seen[k] {
			return "", Output{}, fmt.Errorf("output %q: %s is given twice", name, k)
		}
		seen[k] = true
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return "", Output{}, fmt.Errorf("output %q: %s=%q is not a number", name, k, strings.TrimSpace(v))
		}
		var dst *float64
		switch {
		case k == "threshold" && kind == Probability:
			dst = &o.Threshold
		case k == "atol" && kind == Regression:
			dst = &o.Atol
		case k == "rtol" && kind == Regression:
			dst = &o.Rtol
		case k == "threshold":
			return "", Output{}, fmt.Errorf("output %q: threshold applies to probability outputs, not %s", name, kind)
		case k == "atol" || k == "rtol":
			return "", Output{}, fmt.Errorf("output %q: %s applies to regression outputs, not %s", name, k, kind)
		default:
			return "", Output{}, fmt.Errorf("output %q: unknown parameter %q (want threshold for probability, atol or rtol for regression)", name, k)
		}
		*dst = f
	}
	if err := o.Validate(); err != nil {
		return "", Output{}, fmt.Errorf("output %q: %w", name, err)
	}
	return name, o, nil
}

// ParseAll reads overrides (each as Parse reads it) for the outputs specs
// describes: an output named twice, one the model does not have, or a kind
// that does not fit the output (Fits) is an error.
func ParseAll(overrides []string, specs []wire.TensorSpec) (map[string]Output, error) {
	out := make(map[string]Output, len(overrides))
	for _, s := range overrides {
		name, o, err := Parse(s)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(specs, func(sp wire.TensorSpec) bool { return sp.Name == name })
		if i < 0 {
			names := make([]string, len(specs))
			for j, sp := range specs {
				names[j] = fmt.Sprintf("%q", sp.Name)
			}
			return nil, fmt.Errorf("output %q: the model has no such output (it has %s)", name, strings.Join(names, ", "))
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("output %q: given twice", name)
		}
		if err := o.Fits(specs[i]); err != nil {
			return nil, fmt.Errorf("output %q (%s %v): %w", name, specs[i].DType, specs[i].Shape, err)
		}
		out[name] = o
	}
	return out, nil
}

// Infer is the kind of an output of spec, read from its element type and
// shape and, when sample is not nil, from the values the model gave (its
// outputs on the holdout rows):
//
//   - integer or boolean: label;
//   - floating-point of rank 2 or more whose last dimension is more than 1
//     (from the sample's shape when the spec leaves it free): probabilities,
//     whether the rows are distributions or scores (top-1 reads both);
//   - floating-point of shape [N] or [N, 1] whose sample values all lie in
//     [0, 1]: probability; without a sample, or with a value outside
//     [0, 1]: regression;
//   - anything else: regression.
//
// The parameters are the defaults (Of).
func Infer(spec wire.TensorSpec, sample *wire.Tensor) Output {
	d := spec.DType
	if d == wire.BOOL || d.IsInteger() {
		return Of(Label)
	}
	if !d.IsFloat() {
		return Of(Label) // not numeric: equal or not
	}
	shape := spec.Shape
	if sample != nil && len(sample.Shape) == len(shape) && len(shape) > 0 && shape[len(shape)-1] < 0 {
		shape = slices.Clone(shape)
		shape[len(shape)-1] = sample.Shape[len(shape)-1]
	}
	rank := len(shape)
	if rank == 0 {
		return Of(Regression)
	}
	last := shape[rank-1]
	switch {
	case rank >= 2 && last > 1:
		return Of(Probabilities)
	case rank == 1 || (rank == 2 && last == 1):
		if sample != nil && unitInterval(*sample) {
			return Of(Probability)
		}
	}
	return Of(Regression)
}

// unitInterval reports whether t holds at least one value and all of them
// are numbers in [0, 1].
func unitInterval(t wire.Tensor) bool {
	x, ok := wire.Floats(t.Data)
	if !ok || len(x) == 0 {
		return false
	}
	for _, v := range x {
		if !(v >= 0 && v <= 1) {
			return false
		}
	}
	return true
}

// Resolve is the semantics of output spec from the first of stored that
// names it, and true; else Infer(spec, nil) and false.
func Resolve(spec wire.TensorSpec, stored ...map[string]Output) (Output, bool) {
	for _, m := range stored {
		if o, ok := m[spec.Name]; ok && o.Kind.Known() {
			return o, true
		}
	}
	return Infer(spec, nil), false
}

// Disagree reports whether two answers a and b to one request differ as
// o reads them, row by row: a request disagrees when any row does. b is
// the reference of a regression's relative tolerance (the stable
// version's answer). Shapes that differ, or data that does not fill the
// shape, disagree. The zero Output is inferred from a's type and shape
// (without a sample).
func Disagree(o Output, a, b wire.Tensor) bool {
	if !slices.Equal(a.Shape, b.Shape) {
		return true
	}
	n, ok := wire.ShapeSize(a.Shape)
	x, okx := numbers(a)
	y, oky := numbers(b)
	if !ok || !okx || !oky || int64(len(x)) != n || len(y) != len(x) {
		return true
	}
	if o.Kind == "" {
		o = Infer(wire.TensorSpec{Name: a.Name, DType: a.DType(), Shape: a.Shape}, nil)
	}
	switch o.Kind {
	case Probabilities:
		k := 1
		if len(a.Shape) > 0 {
			k = int(a.Shape[len(a.Shape)-1])
		}
		if k < 1 {
			return len(x) != 0
		}
		for row := 0; row+k <= len(x); row += k {
			if wire.Argmax(x[row:row+k]) != wire.Argmax(y[row:row+k]) {
				return true
			}
		}
		return false
	case Probability:
		t := o.For(a.DType()).Threshold
		if b.DType() != a.DType() {
			t = o.Threshold
		}
		for i := range x {
			if (x[i] >= t) != (y[i] >= t) || math.IsNaN(x[i]) || math.IsNaN(y[i]) {
				return true
			}
		}
		return false
	case Regression:
		for i := range x {
			if !(math.Abs(x[i]-y[i]) <= o.Atol+o.Rtol*math.Abs(y[i])) {
				return true
			}
		}
		return false
	}
	return !slices.Equal(x, y) // label, and anything unknown: equal or not
}

// numbers is t's data as float64, booleans as 0 and 1.
func numbers(t wire.Tensor) ([]float64, bool) {
	if v, ok := t.Data.([]bool); ok {
		out := make([]float64, len(v))
		for i, b := range v {
			if b {
				out[i] = 1
			}
		}
		return out, true
	}
	return wire.Floats(t.Data)
}

// For is o for an output of element type d: a threshold rounded to d's
// precision (FP32), so that a value equal to the threshold as written is
// on its side (float32(0.9) is below 0.9 as a float64).
func (o Output) For(d wire.DType) Output {
	if o.Kind == Probability && d == wire.FP32 {
		o.Threshold = float64(float32(o.Threshold))
	}
	return o
}

// Class is the class o reads in one row of an output (its values, in
// order): the label itself, the argmax of probabilities, or 1 when a
// probability is >= the threshold (else 0; see For for float32 outputs). False for a regression, an
// empty row, or a label row of more than one value.
func (o Output) Class(row []float64) (int64, bool) {
	if len(row) == 0 {
		return 0, false
	}
	switch o.Kind {
	case Label:
		if len(row) != 1 || row[0] != math.Trunc(row[0]) {
			return 0, false
		}
		return int64(row[0]), true
	case Probabilities:
		return int64(wire.Argmax(row)), true
	case Probability:
		if len(row) != 1 {
			return 0, false
		}
		if row[0] >= o.Threshold {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// Scores are the class scores o reads in one row, for ROC AUC and log
// loss: the row itself for probabilities, [1 − p, p] for a probability;
// nil for the other kinds.
func (o Output) Scores(row []float64) []float64 {
	switch o.Kind {
	case Probabilities:
		return row
	case Probability:
		if len(row) == 1 {
			return []float64{1 - row[0], row[0]}
		}
	}
	return nil
}

// jsonOutput is Output's JSON form; a parameter left out takes its
// default.
type jsonOutput struct {
	Kind      Kind     `json:"kind"`
	Threshold *float64 `json:"threshold,omitempty"`
	Atol      *float64 `json:"atol,omitempty"`
	Rtol      *float64 `json:"rtol,omitempty"`
}

// MarshalJSON writes the kind and the parameters of that kind, even when
// zero: {"kind": "probability", "threshold": 0.5},
// {"kind": "regression", "atol": 1e-06, "rtol": 0.01}, {"kind": "label"}.
func (o Output) MarshalJSON() ([]byte, error) {
	j := jsonOutput{Kind: o.Kind}
	switch o.Kind {
	case Probability:
		j.Threshold = &o.Threshold
	case Regression:
		j.Atol, j.Rtol = &o.Atol, &o.Rtol
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes; a parameter left out takes
// its default, and the result must be valid (Validate).
func (o *Output) UnmarshalJSON(b []byte) error {
	var j jsonOutput
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if !j.Kind.Known() {
		return unknownKind(string(j.Kind))
	}
	v := Of(j.Kind)
	for _, p := range []struct {
		src *float64
		dst *float64
	}{{j.Threshold, &v.Threshold}, {j.Atol, &v.Atol}, {j.Rtol, &v.Rtol}} {
		if p.src != nil {
			*p.dst = *p.src
		}
	}
	if err := v.Validate(); err != nil {
		return err
	}
	*o = v
	return nil
}

// ErrMismatch marks a set of kinds that does not fit a signature.
var ErrMismatch = errors.New("output kinds do not fit the signature")

// Check checks kinds against the outputs of a signature: each names an
// output and fits it (Fits). Errors wrap ErrMismatch.
func Check(kinds map[string]Output, specs []wire.TensorSpec) error {
	for _, name := range sortedKeys(kinds) {
		i := slices.IndexFunc(specs, func(sp wire.TensorSpec) bool { return sp.Name == name })
		if i < 0 {
			return fmt.Errorf("%w: output %q is not in the signature", ErrMismatch, name)
		}
		if err := kinds[name].Fits(specs[i]); err != nil {
			return fmt.Errorf("%w: output %q (%s %v): %v", ErrMismatch, name, specs[i].DType, specs[i].Shape, err)
		}
	}
	return nil
}

func sortedKeys(m map[string]Output) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
