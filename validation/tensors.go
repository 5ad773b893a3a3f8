package validation

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/modelgate/modelgate/serving"
)

// dummyInputs builds one input per spec with the first dimension, when it
// is free, set to batch and every other free dimension set to 1. Floating
// point inputs hold fixed values in [0.25, 1) (not zeros, which would hide
// a model that never looks at its input and trip one that takes a log or
// divides by a feature), integer inputs hold zeros (a valid index or
// category for any model) and boolean inputs false. The values are the
// same on every call, so that runs can be compared.
func dummyInputs(specs []serving.TensorSpec, batch int64) ([]serving.Tensor, error) {
	inputs := make([]serving.Tensor, len(specs))
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
		n, ok := serving.ShapeSize(shape)
		if !ok {
			return nil, fmt.Errorf("input %q: shape %v is too large for a dummy input", spec.Name, shape)
		}
		data, err := serving.MakeData(spec.DType, int(n))
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
		inputs[i] = serving.Tensor{Name: spec.Name, Shape: shape, Data: data}
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
func freeBatch(specs []serving.TensorSpec) bool {
	for _, s := range specs {
		if len(s.Shape) == 0 || s.Shape[0] >= 0 {
			return false
		}
	}
	return len(specs) > 0
}

// isFloat reports whether d is a floating-point type modelgate serves.
func isFloat(d serving.DType) bool { return d == serving.FP32 || d == serving.FP64 }

// isInteger reports whether d is an integer type.
func isInteger(d serving.DType) bool {
	switch d {
	case serving.INT8, serving.INT16, serving.INT32, serving.INT64,
		serving.UINT8, serving.UINT16, serving.UINT32, serving.UINT64:
		return true
	}
	return false
}

// toFloat64 converts the data of a numeric tensor to float64 (false for
// BOOL or an unknown slice).
func toFloat64(data any) ([]float64, bool) {
	conv := func(n int, at func(int) float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = at(i)
		}
		return out
	}
	switch v := data.(type) {
	case []float32:
		return conv(len(v), func(i int) float64 { return float64(v[i]) }), true
	case []float64:
		return conv(len(v), func(i int) float64 { return v[i] }), true
	case []int8:
		return conv(len(v), func(i int) float64 { return float64(v[i]) }), true
	case []int16:
		return conv(len(v), func(i int) float64 { return float64(v[i]) }), true
	case []int32:
		return conv(len(v), func(i int) float64 { return float64(v[i]) }), true
	case []int64:
		return conv(len(v), func(i int) float64 { return float64(v[i]) }), true
	case []uint8:
		return conv(len(v), func(i int) float64 { return float64(v[i]) }), true
	case []uint16:
		return conv(len(v), func(i int) float64 { return float64(v[i]) }), true
	case []uint32:
		return conv(len(v), func(i int) float64 { return float64(v[i]) }), true
	case []uint64:
		return conv(len(v), func(i int) float64 { return float64(v[i]) }), true
	}
	return nil, false
}

// nonFinite counts the NaN and infinite values of a floating-point tensor.
func nonFinite(t serving.Tensor) (nan, inf int) {
	count := func(v float64) {
		if math.IsNaN(v) {
			nan++
		} else if math.IsInf(v, 0) {
			inf++
		}
	}
	switch v := t.Data.(type) {
	case []float32:
		for _, x := range v {
			count(float64(x))
		}
	case []float64:
		for _, x := range v {
			count(x)
		}
	}
	return nan, inf
}

// firstDifference describes the first difference between two runs' outputs,
// comparing floating-point values bit for bit (so that NaN equals NaN and
// 0 differs from -0); "" when they are identical.
func firstDifference(a, b []serving.Tensor) string {
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
		if k, u, v := firstUnequal(x.Data, y.Data); k >= 0 {
			return fmt.Sprintf("output %q, value %d: %v, then %v", x.Name, k, u, v)
		}
	}
	return ""
}

// firstUnequal returns the index and values of the first element where two
// slices of the same type and length differ, or -1.
func firstUnequal(a, b any) (int, any, any) {
	switch x := a.(type) {
	case []float32:
		y := b.([]float32)
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return i, x[i], y[i]
			}
		}
		return -1, nil, nil
	case []float64:
		y := b.([]float64)
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
				return i, x[i], y[i]
			}
		}
		return -1, nil, nil
	case []bool:
		return firstUnequalComparable(x, b.([]bool))
	case []int8:
		return firstUnequalComparable(x, b.([]int8))
	case []int16:
		return firstUnequalComparable(x, b.([]int16))
	case []int32:
		return firstUnequalComparable(x, b.([]int32))
	case []int64:
		return firstUnequalComparable(x, b.([]int64))
	case []uint8:
		return firstUnequalComparable(x, b.([]uint8))
	case []uint16:
		return firstUnequalComparable(x, b.([]uint16))
	case []uint32:
		return firstUnequalComparable(x, b.([]uint32))
	case []uint64:
		return firstUnequalComparable(x, b.([]uint64))
	}
	return 0, a, b
}

func firstUnequalComparable[T comparable](x, y []T) (int, any, any) {
	for i := range x {
		if x[i] != y[i] {
			return i, x[i], y[i]
		}
	}
	return -1, nil, nil
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
