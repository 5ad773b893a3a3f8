package validation

import (
	"slices"
	"testing"

	"github.com/modelgate/modelgate/serving"
)

func spec(name string, d serving.DType, shape ...int64) serving.TensorSpec {
	return serving.TensorSpec{Name: name, DType: d, Shape: shape}
}

func TestDiffSpecs(t *testing.T) {
	label, probs := spec("label", serving.INT64, -1), spec("probabilities", serving.FP32, -1, 2)
	cases := []struct {
		name    string
		old     []serving.TensorSpec
		cur     []serving.TensorSpec
		changes []string
		added   []string
	}{
		{name: "same", old: []serving.TensorSpec{label, probs}, cur: []serving.TensorSpec{label, probs}},
		{name: "removed", old: []serving.TensorSpec{label, probs}, cur: []serving.TensorSpec{probs}, changes: []string{`output "label" removed`}},
		{
			name: "renamed", old: []serving.TensorSpec{label, probs},
			cur:     []serving.TensorSpec{spec("class", serving.INT64, -1), probs},
			changes: []string{`output "label" renamed to "class"`},
		},
		{
			name: "renamed and retyped is removed and added", old: []serving.TensorSpec{label},
			cur:     []serving.TensorSpec{spec("class", serving.INT32, -1)},
			changes: []string{`output "label" removed`}, added: []string{"class"},
		},
		{
			name: "a rename prefers the same position", old: []serving.TensorSpec{spec("a", serving.FP32, -1), spec("b", serving.FP32, -1)},
			cur:     []serving.TensorSpec{spec("x", serving.FP32, -1), spec("y", serving.FP32, -1)},
			changes: []string{`output "a" renamed to "x"`, `output "b" renamed to "y"`},
		},
		{
			name: "retyped", old: []serving.TensorSpec{probs}, cur: []serving.TensorSpec{spec("probabilities", serving.FP64, -1, 2)},
			changes: []string{`output "probabilities": datatype FP32 -> FP64`},
		},
		{
			name: "reshaped", old: []serving.TensorSpec{probs}, cur: []serving.TensorSpec{spec("probabilities", serving.FP32, -1, 3)},
			changes: []string{`output "probabilities": shape [-1 2] -> [-1 3]`},
		},
		{
			name: "a fixed dimension made free is a change", old: []serving.TensorSpec{spec("probabilities", serving.FP32, 1, 2)}, cur: []serving.TensorSpec{probs},
			changes: []string{`output "probabilities": shape [1 2] -> [-1 2]`},
		},
		{
			name: "retyped and reshaped", old: []serving.TensorSpec{probs}, cur: []serving.TensorSpec{spec("probabilities", serving.FP64, -1)},
			changes: []string{`output "probabilities": datatype FP32 -> FP64`, `output "probabilities": shape [-1 2] -> [-1]`},
		},
		{name: "added", old: []serving.TensorSpec{label}, cur: []serving.TensorSpec{label, probs}, added: []string{"probabilities"}},
		{name: "reordered is no change here", old: []serving.TensorSpec{label, probs}, cur: []serving.TensorSpec{probs, label}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := diffSpecs("output", c.old, c.cur)
			var added []string
			for _, a := range d.added {
				added = append(added, a.Name)
			}
			if !slices.Equal(d.changes, c.changes) || !slices.Equal(added, c.added) {
				t.Errorf("changes %q added %q, want %q %q", d.changes, added, c.changes, c.added)
			}
		})
	}
}

func TestFirstOutputChange(t *testing.T) {
	a, b, c := spec("a", serving.FP32, -1), spec("b", serving.FP32, -1), spec("c", serving.FP32, -1)
	for _, tc := range []struct {
		name     string
		old, cur []serving.TensorSpec
		want     string
	}{
		{"same first", []serving.TensorSpec{a, b}, []serving.TensorSpec{a, c}, ""},
		{"reordered", []serving.TensorSpec{a, b}, []serving.TensorSpec{b, a}, `first output "a" -> "b": /predict's "prediction" would change`},
		{"first removed is reported as removed", []serving.TensorSpec{a, b}, []serving.TensorSpec{b}, ""},
		{"empty", nil, []serving.TensorSpec{a}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstOutputChange(tc.old, tc.cur); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
