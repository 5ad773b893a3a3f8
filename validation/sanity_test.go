package validation

import (
	"math"
	"slices"
	"testing"

	"github.com/modelgate/modelgate/wire"
)

func TestOutputProblems(t *testing.T) {
	specs := []wire.TensorSpec{spec("label", wire.INT64, -1), spec("probabilities", wire.FP32, -1, 2)}
	cases := []struct {
		name string
		outs []wire.Tensor
		want []string
	}{
		{
			name: "fine",
			outs: []wire.Tensor{{Name: "label", Shape: []int64{1}, Data: []int64{0}}, {Name: "probabilities", Shape: []int64{1, 2}, Data: []float32{.5, .5}}},
		},
		{
			name: "shape does not fit",
			outs: []wire.Tensor{{Name: "label", Shape: []int64{1, 1}, Data: []int64{0}}, {Name: "probabilities", Shape: []int64{1, 3}, Data: []float32{.5, .5, 0}}},
			want: []string{
				`output "label" has shape [1 1], which does not fit the declared [-1] (batch of 8)`,
				`output "probabilities" has shape [1 3], which does not fit the declared [-1 2] (batch of 8)`,
			},
		},
		{
			name: "NaN and Inf",
			outs: []wire.Tensor{{Name: "label", Shape: []int64{1}, Data: []int64{0}}, {Name: "probabilities", Shape: []int64{2, 2}, Data: []float32{float32(math.NaN()), float32(math.Inf(-1)), 1, float32(math.NaN())}}},
			want: []string{`output "probabilities" is not finite: 2 NaN and 1 infinite of 4 values (batch of 8)`},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := outputProblems(specs, c.outs, "batch of 8"); !slices.Equal(got, c.want) {
				t.Errorf("got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestFirstDifference(t *testing.T) {
	nan := float32(math.NaN())
	a := []wire.Tensor{{Name: "y", Shape: []int64{2}, Data: []float32{1, nan}}}
	cases := []struct {
		name string
		b    []wire.Tensor
		want string
	}{
		{"identical, NaN included", []wire.Tensor{{Name: "y", Shape: []int64{2}, Data: []float32{1, nan}}}, ""},
		{"a value", []wire.Tensor{{Name: "y", Shape: []int64{2}, Data: []float32{1.5, nan}}}, `output "y", value 0: 1, then 1.5`},
		{"zero and minus zero", []wire.Tensor{{Name: "y", Shape: []int64{2}, Data: []float32{1, float32(math.Copysign(0, -1))}}}, `output "y", value 1: NaN, then -0`},
		{"a shape", []wire.Tensor{{Name: "y", Shape: []int64{1, 2}, Data: []float32{1, nan}}}, `output "y": shape [2], then [1 2]`},
		{"a type", []wire.Tensor{{Name: "y", Shape: []int64{2}, Data: []float64{1, 2}}}, `output "y": FP32 of 2 values, then FP64 of 2`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := firstDifference(a, c.b); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestDummyInputs(t *testing.T) {
	in, err := dummyInputs([]wire.TensorSpec{spec("x", wire.FP32, -1, 3), spec("ids", wire.INT64, -1, -1), spec("flag", wire.BOOL, 2)}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in[0].Shape, []int64{8, 3}) || !slices.Equal(in[1].Shape, []int64{8, 1}) || !slices.Equal(in[2].Shape, []int64{2}) {
		t.Errorf("shapes %v %v %v", in[0].Shape, in[1].Shape, in[2].Shape)
	}
	for _, v := range in[0].Data.([]float32) {
		if v < 0.25 || v >= 1 {
			t.Errorf("dummy float %v outside [0.25, 1)", v)
		}
	}
	if slices.ContainsFunc(in[1].Data.([]int64), func(v int64) bool { return v != 0 }) || slices.Contains(in[2].Data.([]bool), true) {
		t.Errorf("integers %v, booleans %v: want zeros and false", in[1].Data, in[2].Data)
	}
	again, _ := dummyInputs([]wire.TensorSpec{spec("x", wire.FP32, -1, 3)}, 8)
	if firstDifference(in[:1], again) != "" {
		t.Error("dummy inputs differ from call to call")
	}
}
