package canary

import (
	"testing"

	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/wire"
)

// Disagree compares by the output's kind (semantics has the full table);
// here, what a canary sees: a retrained sigmoid classifier whose
// probabilities move but whose classes do not agrees, one that flips a
// class does not, and stable's answer is the reference of a regression's
// tolerance.
func TestDisagree(t *testing.T) {
	tensor := func(shape []int64, data any) wire.Tensor {
		return wire.Tensor{Name: "probability", Shape: shape, Data: data}
	}
	reg := semantics.Output{Kind: semantics.Regression, Rtol: 0.1}
	tests := []struct {
		name              string
		sem               semantics.Output
		candidate, stable wire.Tensor
		want              bool
	}{
		{"probabilities far apart on one side", semantics.Of(semantics.Probability), tensor([]int64{2, 1}, []float32{1e-5, 0.97}), tensor([]int64{2, 1}, []float32{3e-5, 0.71}), false},
		{"a probability crosses the threshold", semantics.Of(semantics.Probability), tensor([]int64{2, 1}, []float32{1e-5, 0.49}), tensor([]int64{2, 1}, []float32{3e-5, 0.51}), true},
		{"the same numbers read as a regression", semantics.Of(semantics.Regression), tensor([]int64{2, 1}, []float32{1e-5, 0.97}), tensor([]int64{2, 1}, []float32{3e-5, 0.71}), true},
		{"top-1 of class probabilities", semantics.Of(semantics.Probabilities), tensor([]int64{1, 2}, []float32{0.6, 0.4}), tensor([]int64{1, 2}, []float32{0.99, 0.01}), false},
		{"labels", semantics.Of(semantics.Label), tensor([]int64{2}, []int64{0, 1}), tensor([]int64{2}, []int64{0, 0}), true},
		// The tolerance is 10 % of stable's answer, 100.
		{"regression within 10 % of stable", reg, tensor([]int64{1}, []float64{109}), tensor([]int64{1}, []float64{100}), false},
		{"regression beyond 10 % of stable", reg, tensor([]int64{1}, []float64{111}), tensor([]int64{1}, []float64{100}), true},
		{"shapes differ", semantics.Of(semantics.Probability), tensor([]int64{1, 1}, []float32{0.2}), tensor([]int64{1}, []float32{0.2}), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Disagree(tc.sem, tc.candidate, tc.stable); got != tc.want {
				t.Errorf("Disagree = %v, want %v", got, tc.want)
			}
		})
	}
}
