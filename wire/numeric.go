package wire

import (
	"math"
)

// The helpers over tensor data: one home for what the HTTP layer, the
// batcher, the gates and drift need, each a single switch over the element
// types so that no other package needs one.

// Floats widens numeric tensor data to float64; false for BOOL or data that
// is not a tensor slice. []float64 data is returned as it is, not copied:
// callers must not change it.
func Floats(data any) ([]float64, bool) {
	switch v := data.(type) {
	case []float64:
		return v, true
	case []float32:
		return widen(v), true
	case []int8:
		return widen(v), true
	case []int16:
		return widen(v), true
	case []int32:
		return widen(v), true
	case []int64:
		return widen(v), true
	case []uint8:
		return widen(v), true
	case []uint16:
		return widen(v), true
	case []uint32:
		return widen(v), true
	case []uint64:
		return widen(v), true
	case []Float16:
		return widenHalf(v), true
	case []BFloat16:
		return widenHalf(v), true
	}
	return nil, false
}

func widenHalf[T Float16 | BFloat16](d []T) []float64 {
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(half32(v))
	}
	return out
}

// half32 widens a 16-bit float of either format to a float32.
func half32[T Float16 | BFloat16](v T) float32 {
	switch x := any(v).(type) {
	case Float16:
		return x.Float32()
	case BFloat16:
		return x.Float32()
	}
	return 0
}

func widen[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | float32](d []T) []float64 {
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v)
	}
	return out
}

// Each calls f with each value of numeric data as a float64, in order,
// without allocating (drift counts every request's inputs this way); false
// for BOOL or data that is not a tensor slice.
func Each(data any, f func(x float64)) bool {
	switch v := data.(type) {
	case []float64:
		each(v, f)
	case []float32:
		each(v, f)
	case []int8:
		each(v, f)
	case []int16:
		each(v, f)
	case []int32:
		each(v, f)
	case []int64:
		each(v, f)
	case []uint8:
		each(v, f)
	case []uint16:
		each(v, f)
	case []uint32:
		each(v, f)
	case []uint64:
		each(v, f)
	case []Float16:
		for _, x := range v {
			f(float64(x.Float32()))
		}
	case []BFloat16:
		for _, x := range v {
			f(float64(x.Float32()))
		}
	default:
		return false
	}
	return true
}

func each[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | float32 | float64](d []T, f func(float64)) {
	for _, v := range d {
		f(float64(v))
	}
}

// Argmax is the index of the largest value (the first one on ties).
func Argmax(row []float64) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}

// FirstNonFinite is the index of the first NaN or infinite value of
// floating-point data, or -1 (always -1 for other types).
func FirstNonFinite(data any) int {
	switch v := data.(type) {
	case []float32:
		// All exponent bits set: NaN or ±Inf (a bit test, several times
		// faster than IsNaN || IsInf on a float64 conversion, for inputs
		// of millions of elements).
		for i, x := range v {
			if math.Float32bits(x)&0x7f800000 == 0x7f800000 {
				return i
			}
		}
	case []float64:
		for i, x := range v {
			if math.Float64bits(x)&0x7ff0000000000000 == 0x7ff0000000000000 {
				return i
			}
		}
	case []Float16:
		for i, x := range v {
			if !x.IsFinite() {
				return i
			}
		}
	case []BFloat16:
		for i, x := range v {
			if !x.IsFinite() {
				return i
			}
		}
	}
	return -1
}

// CountNonFinite counts the NaN and the infinite values of floating-point
// data (zero for other types).
func CountNonFinite(data any) (nan, inf int) {
	count := func(v float64) {
		if math.IsNaN(v) {
			nan++
		} else if math.IsInf(v, 0) {
			inf++
		}
	}
	switch v := data.(type) {
	case []float32:
		for _, x := range v {
			count(float64(x))
		}
	case []float64:
		for _, x := range v {
			count(x)
		}
	case []Float16:
		for _, x := range v {
			count(float64(x.Float32()))
		}
	case []BFloat16:
		for _, x := range v {
			count(float64(x.Float32()))
		}
	}
	return nan, inf
}

// Clone copies t: its shape and data share nothing with t's.
func Clone(t Tensor) Tensor {
	return Tensor{Name: t.Name, Shape: append([]int64(nil), t.Shape...), Data: cloneData(t.Data)}
}

func cloneData(data any) any {
	switch v := data.(type) {
	case []bool:
		return append([]bool(nil), v...)
	case []uint8:
		return append([]uint8(nil), v...)
	case []uint16:
		return append([]uint16(nil), v...)
	case []uint32:
		return append([]uint32(nil), v...)
	case []uint64:
		return append([]uint64(nil), v...)
	case []int8:
		return append([]int8(nil), v...)
	case []int16:
		return append([]int16(nil), v...)
	case []int32:
		return append([]int32(nil), v...)
	case []int64:
		return append([]int64(nil), v...)
	case []float32:
		return append([]float32(nil), v...)
	case []float64:
		return append([]float64(nil), v...)
	case []Float16:
		return append([]Float16(nil), v...)
	case []BFloat16:
		return append([]BFloat16(nil), v...)
	case [][]byte:
		if v == nil {
			return nil
		}
		out := make([][]byte, len(v))
		for i, e := range v {
			out[i] = append([]byte{}, e...)
		}
		return out
	}
	return nil
}

// Rows is rows [off, off+n) of t, sharing its data.
func Rows(t Tensor, off, n int) Tensor {
	stride := 1
	for _, d := range t.Shape[1:] {
		stride *= int(d)
	}
	shape := make([]int64, len(t.Shape))
	copy(shape, t.Shape)
	shape[0] = int64(n)
	return Tensor{Name: t.Name, Shape: shape, Data: sliceData(t.Data, off*stride, (off+n)*stride)}
}

func sliceData(data any, lo, hi int) any {
	switch v := data.(type) {
	case []bool:
		return v[lo:hi:hi]
	case []uint8:
		return v[lo:hi:hi]
	case []uint16:
		return v[lo:hi:hi]
	case []uint32:
		return v[lo:hi:hi]
	case []uint64:
		return v[lo:hi:hi]
	case []int8:
		return v[lo:hi:hi]
	case []int16:
		return v[lo:hi:hi]
	case []int32:
		return v[lo:hi:hi]
	case []int64:
		return v[lo:hi:hi]
	case []float32:
		return v[lo:hi:hi]
	case []float64:
		return v[lo:hi:hi]
	case []Float16:
		return v[lo:hi:hi]
	case []BFloat16:
		return v[lo:hi:hi]
	case [][]byte:
		return v[lo:hi:hi]
	}
	return nil
}

// Concat writes parts (data slices of one element type), one after the
// other, into buf (reused when it is of that type and large enough) and
// returns the filled slice.
func Concat(buf any, parts []any) any {
	if len(parts) == 0 {
		return nil
	}
	switch parts[0].(type) {
	case []bool:
		return concat[bool](buf, parts)
	case []uint8:
		return concat[uint8](buf, parts)
	case []uint16:
		return concat[uint16](buf, parts)
	case []uint32:
		return concat[uint32](buf, parts)
	case []uint64:
		return concat[uint64](buf, parts)
	case []int8:
		return concat[int8](buf, parts)
	case []int16:
		return concat[int16](buf, parts)
	case []int32:
		return concat[int32](buf, parts)
	case []int64:
		return concat[int64](buf, parts)
	case []float32:
		return concat[float32](buf, parts)
	case []float64:
		return concat[float64](buf, parts)
	case []Float16:
		return concat[Float16](buf, parts)
	case []BFloat16:
		return concat[BFloat16](buf, parts)
	case [][]byte:
		return concat[[]byte](buf, parts)
	}
	return nil
}

func concat[T any](buf any, parts []any) []T {
	n := 0
	for _, p := range parts {
		n += len(p.([]T))
	}
	dst, _ := buf.([]T)
	if cap(dst) < n {
		dst = make([]T, n)
	}
	dst = dst[:0]
	for _, p := range parts {
		dst = append(dst, p.([]T)...)
	}
	return dst
}

// FirstUnequal returns the index and the values of the first element where
// two data slices of one type and length differ, or -1. Floating-point
// values compare bit for bit (NaN equals NaN, 0 differs from -0). Slices of
// different types differ at 0.
func FirstUnequal(a, b any) (int, any, any) {
	switch x := a.(type) {
	case []float32:
		y, ok := b.([]float32)
		if !ok {
			break
		}
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return i, x[i], y[i]
			}
		}
		return -1, nil, nil
	case []float64:
		y, ok := b.([]float64)
		if !ok {
			break
		}
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
				return i, x[i], y[i]
			}
		}
		return -1, nil, nil
	case []bool:
		return firstUnequal(x, b)
	case []int8:
		return firstUnequal(x, b)
	case []int16:
		return firstUnequal(x, b)
	case []int32:
		return firstUnequal(x, b)
	case []int64:
		return firstUnequal(x, b)
	case []uint8:
		return firstUnequal(x, b)
	case []uint16:
		return firstUnequal(x, b)
	case []uint32:
		return firstUnequal(x, b)
	case []uint64:
		return firstUnequal(x, b)
	case []Float16: // bit for bit, as the wider floats
		return firstUnequal(x, b)
	case []BFloat16:
		return firstUnequal(x, b)
	case [][]byte:
		y, ok := b.([][]byte)
		if !ok {
			break
		}
		for i := range x {
			if string(x[i]) != string(y[i]) {
				return i, x[i], y[i]
			}
		}
		return -1, nil, nil
	}
	return 0, a, b
}

func firstUnequal[T comparable](x []T, b any) (int, any, any) {
	y, ok := b.([]T)
	if !ok {
		return 0, x, b
	}
	for i := range x {
		if x[i] != y[i] {
			return i, x[i], y[i]
		}
	}
	return -1, nil, nil
}
