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
	}
	return append(b, "null"...)
}
