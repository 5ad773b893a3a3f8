package validation

import (
	"slices"
	"testing"

	"github.com/modelgate/modelgate/wire"
)

func spec(name string, d wire.DType, shape ...int64) wire.TensorSpec {
	return wire.TensorSpec{Name: name, DType: d, Shape: shape}
}

func TestDiffSpecs(t *testing.T) {
	label, probs := spec("label", wire.INT64, -1), spec("probabilities", wire.FP32, -1, 2)
	cases := []struct {
		name    string
		old     []wire.TensorSpec
		cur     []wire.TensorSpec
		changes []string
		added   []string
	}{
		{name: "same", old: []wire.TensorSpec{label, probs}, cur: []wire.TensorSpec{label, probs}},
		{name: "removed", old: []wire.TensorSpec{label, probs}, cur: []wire.TensorSpec{probs}, changes: []string{`output "label" removed`}},
		{
			name: "renamed", old: []wire.TensorSpec{label, probs},
			cur:     []wire.TensorSpec{spec("class", wire.INT64, -1), probs},
			changes: []string{`output "label" renamed to "class"`},
		},
		{
			name: "renamed and retyped is removed and added", old: []wire.TensorSpec{label},
			cur:     []wire.TensorSpec{spec("class", wire.INT32, -1)},
			changes: []string{`output "label" removed`}, added: []string{"class"},
		},
		{
			name: "a rename prefers the same position", old: []wire.TensorSpec{spec("a", wire.FP32, -1), spec("b", wire.FP32, -1)},
			cur:     []wire.TensorSpec{spec("x", wire.FP32, -1), spec("y", wire.FP32, -1)},
			changes: []string{`output "a" renamed to "x"`, `output "b" renamed to "y"`},
		},
		{
			name: "retyped", old: []wire.TensorSpec{probs}, cur: []wire.TensorSpec{spec("probabilities", wire.FP64, -1, 2)},
			changes: []string{`output "probabilities": datatype FP32 -> FP64`},
		},
		{
			name: "reshaped", old: []wire.TensorSpec{probs}, cur: []wire.TensorSpec{spec("probabilities", wire.FP32, -1, 3)},
			changes: []string{`output "probabilities": shape [-1 2] -> [-1 3]`},
		},
		{
			name: "a fixed dimension made free is a change", old: []wire.TensorSpec{spec("probabilities", wire.FP32, 1, 2)}, cur: []wire.TensorSpec{probs},
			changes: []string{`output "probabilities": shape [1 2] -> [-1 2]`},
		},
		{
			name: "retyped and reshaped", old: []wire.TensorSpec{probs}, cur: []wire.TensorSpec{spec("probabilities", wire.FP64, -1)},
			changes: []string{`output "probabilities": datatype FP32 -> FP64`, `output "probabilities": shape [-1 2] -> [-1]`},
		},
		{name: "added", old: []wire.TensorSpec{label}, cur: []wire.TensorSpec{label, probs}, added: []string{"probabilities"}},
		{name: "reordered is no change here", old: []wire.TensorSpec{label, probs}, cur: []wire.TensorSpec{probs, label}},
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
	a, b, c := spec("a", wire.FP32, -1), spec("b", wire.FP32, -1), spec("c", wire.FP32, -1)
	for _, tc := range []struct {
		name     string
		old, cur []wire.TensorSpec
		want     string
	}{
		{"same first", []wire.TensorSpec{a, b}, []wire.TensorSpec{a, c}, ""},
		{"reordered", []wire.TensorSpec{a, b}, []wire.TensorSpec{b, a}, `first output "a" -> "b": /predict's "prediction" would change`},
		{"first removed is reported as removed", []wire.TensorSpec{a, b}, []wire.TensorSpec{b}, ""},
		{"empty", nil, []wire.TensorSpec{a}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstOutputChange(tc.old, tc.cur); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
