package wire

import (
	"strconv"
)

// AppendData writes t's data as a JSON array: flat, or nested by its shape
// (one array per row, and so on down).
func AppendData(b []byte, t Tensor, nested bool) []byte {
	if !nested || len(t.Shape) <= 1 {
		return appendFlat(b, t.Data, 0, t.Len())
	}
	return appendNested(b, t.Data, t.Shape, 0)
}

// appendNested writes dims-shaped nested arrays starting at element off.
func appendNested(b []byte, data any, dims []int64, off int) []byte {
	if len(dims) == 1 {
		return appendFlat(b, data, off, off+int(dims[0]))
	}
	stride := 1
	for _, d := range dims[1:] {
		stride *= int(d)
	}
	b = append(b, '[')
	for i := int64(0); i < dims[0]; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNested(b, data, dims[1:], off+int(i)*stride)
	}
	return append(b, ']')
}

// appendFlat writes data[lo:hi] as one JSON array.
func appendFlat(b []byte, data any, lo, hi int) []byte {
	b = append(b, '[')
	for i := lo; i < hi; i++ {
		if i > lo {
			b = append(b, ',')
		}
		b = appendValue(b, data, i)
	}
	return append(b, ']')
}

func appendValue(b []byte, data any, i int) []byte {
	switch v := data.(type) {
	case []float32:
		return strconv.AppendFloat(b, float64(v[i]), 'g', -1, 32)
	case []float64:
		return strconv.AppendFloat(b, v[i], 'g', -1, 64)
	case []int64:
		return strconv.AppendInt(b, v[i], 10)
	case []int32:
		return strconv.AppendInt(b, int64(v[i]), 10)
	case []int16:
		return strconv.AppendInt(b, int64(v[i]), 10)
	case []int8:
		return strconv.AppendInt(b, int64(v[i]), 10)
	case []uint64:
		return strconv.AppendUint(b, v[i], 10)
	case []uint32:
		return strconv.AppendUint(b, uint64(v[i]), 10)
	case []uint16:
		return strconv.AppendUint(b, uint64(v[i]), 10)
	case []uint8:
		return strconv.AppendUint(b, uint64(v[i]), 10)
	case []bool:
		return strconv.AppendBool(b, v[i])
	case []Float16:
		return appendShortest(b, float64(v[i].Float32()), func(x float64) bool { h, ok := ToFloat16(x); return ok && h == v[i] })
	case []BFloat16:
		return appendShortest(b, float64(v[i].Float32()), func(x float64) bool { h, ok := ToBFloat16(x); return ok && h == v[i] })
	case [][]byte:
		return AppendJSONString(b, string(v[i]))
	}
	return append(b, "null"...)
}

// appendShortest writes the 16-bit float value x (finite, widened exactly)
// with the fewest significant digits that read back as the same value
// (same reads it back), as strconv does for float32 and float64 and numpy
// prints float16: 65504 as 65500, 2^-24 as 6e-08.
func appendShortest(b []byte, x float64, same func(float64) bool) []byte {
	var tmp [32]byte
	for digits := 1; digits < 17; digits++ {
		d, err := strconv.ParseFloat(string(strconv.AppendFloat(tmp[:0], x, 'e', digits-1, 64)), 64)
		if err == nil && same(d) {
			return strconv.AppendFloat(b, d, 'g', -1, 64)
		}
	}
	return strconv.AppendFloat(b, x, 'g', -1, 64)
}
