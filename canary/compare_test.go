package canary

import (
	"testing"

	"github.com/modelgate/modelgate/wire"
)

func TestDisagree(t *testing.T) {
	tensor := func(shape []int64, data any) wire.Tensor {
		return wire.Tensor{Name: "out", Shape: shape, Data: data}
	}
	tests := []struct {
		name string
		a, b wire.Tensor
		tol  float64
		want bool
	}{
		// Integer outputs are class labels: equal or not.
		{"same labels", tensor([]int64{3}, []int64{0, 1, 2}), tensor([]int64{3}, []int64{0, 1, 2}), 0.5, false},
		{"one label differs", tensor([]int64{3}, []int64{0, 1, 2}), tensor([]int64{3}, []int64{0, 1, 1}), 0.5, true},
		{"int32 labels", tensor([]int64{2}, []int32{4, 5}), tensor([]int64{2}, []int32{4, 5}), 0, false},
		{"labels as int64 and int32", tensor([]int64{2}, []int64{4, 5}), tensor([]int64{2}, []int32{4, 6}), 0, true},
		{"bool answers differ", tensor([]int64{2}, []bool{true, false}), tensor([]int64{2}, []bool{true, true}), 0, true},

		// Float [rows, k>1] are class scores: compared by their top-1 index.
		{"scores, same argmax", tensor([]int64{2, 3}, []float32{.1, .7, .2, .5, .3, .2}), tensor([]int64{2, 3}, []float32{.3, .4, .3, .9, .05, .05}), 0, false},
		{"scores, argmax differs in row 2", tensor([]int64{2, 3}, []float32{.1, .7, .2, .5, .3, .2}), tensor([]int64{2, 3}, []float32{.1, .7, .2, .2, .3, .5}), 1, true},
		{"float64 scores", tensor([]int64{1, 2}, []float64{.9, .1}), tensor([]int64{1, 2}, []float64{.2, .8}), 1, true},

		// Other floats are regressions: relative error against tol.
		{"regression within tolerance", tensor([]int64{2, 1}, []float32{100, -50}), tensor([]int64{2, 1}, []float32{104, -51}), 0.05, false},
		{"regression beyond tolerance", tensor([]int64{2, 1}, []float32{100, -50}), tensor([]int64{2, 1}, []float32{100, -60}), 0.05, true},
		{"1-D regression", tensor([]int64{3}, []float64{1, 2, 3}), tensor([]int64{3}, []float64{1, 2, 3.001}), 0.01, false},
		{"zero against zero", tensor([]int64{1}, []float32{0}), tensor([]int64{1}, []float32{0}), 0, false},
		{"zero against tiny", tensor([]int64{1}, []float32{0}), tensor([]int64{1}, []float32{1e-3}), 0.5, true},
		{"sign flip", tensor([]int64{1}, []float32{2}), tensor([]int64{1}, []float32{-2}), 0.5, true},
		{"labels against scores of one column", tensor([]int64{2}, []int64{1, 0}), tensor([]int64{2}, []float32{1, 0}), 0.01, false},

		// A shape mismatch disagrees whatever the numbers.
		{"other row count", tensor([]int64{2}, []int64{1, 1}), tensor([]int64{3}, []int64{1, 1, 1}), 1, true},
		{"other rank", tensor([]int64{2}, []float32{1, 2}), tensor([]int64{2, 1}, []float32{1, 2}), 1, true},
		{"other width", tensor([]int64{1, 2}, []float32{1, 2}), tensor([]int64{1, 3}, []float32{1, 2, 0}), 1, true},
		{"data shorter than the shape", tensor([]int64{2}, []int64{1, 1}), tensor([]int64{2}, []int64{1}), 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Disagree(tc.a, tc.b, tc.tol); got != tc.want {
				t.Errorf("Disagree = %v, want %v", got, tc.want)
			}
			if got := Disagree(tc.b, tc.a, tc.tol); got != tc.want {
				t.Errorf("Disagree with the arguments swapped = %v, want %v", got, tc.want)
			}
		})
	}
}
