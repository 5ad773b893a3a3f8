package validation

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/modelgate/modelgate/wire"
)

// dummyInputs builds one input per spec with the first dimension, when it
// is free, set to batch and every other free dimension set to 1. Floating
// point inputs hold fixed values in [0.25, 1) (not zeros, which would hide
// a model that never looks at its input and trip one that takes a log or
// divides by a feature), integer inputs hold zeros (a valid index or
// category for any model) and boolean inputs false. The values are the
// same on every call, so that runs can be compared.
func dummyInputs(specs []wire.TensorSpec, batch int64) ([]wire.Tensor, error) {
	inputs := make([]wire.Tensor, len(specs))
	for i, spec := range specs {
		shape := make([]int64, len(spec.Shape))
		for j, d := range spec.Shape {
			switch {
			case d >= 0:
				shape[j] = d
			case j == 0:
				shape[j] = batch
			default:
				shape[j] = 1
			}
		}
		n, ok := wire.ShapeSize(shape)
		if !ok {
			return nil, fmt.Errorf("input %q: shape %v is too large for a dummy input", spec.Name, shape)
		}
		data, err := wire.MakeData(spec.DType, int(n))
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", spec.Name, err)
		}
		switch v := data.(type) {
		case []float32:
			for k := range v {
				v[k] = float32(dummyValue(k))
			}
		case []float64:
			for k := range v {
				v[k] = dummyValue(k)
			}
		}
		inputs[i] = wire.Tensor{Name: spec.Name, Shape: shape, Data: data}
	}
	return inputs, nil
}

// dummyValue is the k-th value of a fixed, well spread sequence in
// [0.25, 1): 0.25 + 0.75·frac(k·φ).
func dummyValue(k int) float64 {
	_, frac := math.Modf(float64(k) * 0.6180339887498949)
	return 0.25 + 0.75*frac
}

// freeBatch reports whether every input's first dimension is free, so that
// the model takes batches of any size.
func freeBatch(specs []wire.TensorSpec) bool {
	for _, s := range specs {
		if len(s.Shape) == 0 || s.Shape[0] >= 0 {
			return false
		}
	}
	return len(specs) > 0
}

// firstDifference describes the first difference between two runs' outputs,
// comparing floating-point values bit for bit (so that NaN equals NaN and
// 0 differs from -0); "" when they are identical.
func firstDifference(a, b []wire.Tensor) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d outputs, then %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if !slices.Equal(x.Shape, y.Shape) {
			return fmt.Sprintf("output %q: shape %v, then %v", x.Name, x.Shape, y.Shape)
		}
		if x.DType() != y.DType() || x.Len() != y.Len() {
			return fmt.Sprintf("output %q: %s of %d values, then %s of %d", x.Name, x.DType(), x.Len(), y.DType(), y.Len())
		}
		if k, u, v := wire.FirstUnequal(x.Data, y.Data); k >= 0 {
			return fmt.Sprintf("output %q, value %d: %v, then %v", x.Name, k, u, v)
		}
	}
	return ""
}

// millis is d in milliseconds.
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// roundDuration rounds d to three significant digits, for messages.
func roundDuration(d time.Duration) time.Duration {
	for m := time.Duration(1); m < time.Hour; m *= 10 {
		if d < 1000*m {
			return d.Round(m)
		}
	}
	return d.Round(time.Second)
}
