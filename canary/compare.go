package canary

import (
	"math"
	"slices"

	"github.com/modelgate/modelgate/wire"
)

// Disagree reports whether two answers to one request differ, row by row:
// integer (and boolean) outputs, class labels, must be equal; float outputs
// of shape [rows, k>1] are compared by their top-1 index (class scores),
// others (regressors) by relative error above tol. A shape mismatch
// disagrees.
func Disagree(a, b wire.Tensor, tol float64) bool {
	if !slices.Equal(a.Shape, b.Shape) {
		return true
	}
	x, y := numbers(a), numbers(b)
	if len(x) != len(y) {
		return true
	}
	if !a.DType().IsFloat() && !b.DType().IsFloat() {
		return !slices.Equal(x, y)
	}
	if len(a.Shape) >= 2 && a.Shape[len(a.Shape)-1] > 1 {
		k := int(a.Shape[len(a.Shape)-1])
		for row := 0; row+k <= len(x); row += k {
			if wire.Argmax(x[row:row+k]) != wire.Argmax(y[row:row+k]) {
				return true
			}
		}
		return false
	}
	for i := range x {
		scale := math.Max(math.Max(math.Abs(x[i]), math.Abs(y[i])), 1e-6)
		if math.Abs(x[i]-y[i])/scale > tol {
			return true
		}
	}
	return false
}

// numbers is t's data as float64, booleans as 0 and 1.
func numbers(t wire.Tensor) []float64 {
	if v, ok := t.Data.([]bool); ok {
		out := make([]float64, len(v))
		for i, b := range v {
			if b {
				out[i] = 1
			}
		}
		return out
	}
	x, _ := wire.Floats(t.Data)
	return x
}
