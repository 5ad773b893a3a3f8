package canary

import (
	"math"

	"github.com/modelgate/modelgate/wire"
)

// InputHash is a 64-bit FNV-1a hash of a request's inputs (names, element
// types, shapes and values), which the Recorder uses to count distinct
// inputs among compared requests. Values are hashed as float64 bits, so
// 3 and 3.0 are the same input; -0 and +0 differ, which only splits one
// input in two.
func InputHash(inputs []wire.Tensor) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	word := func(x uint64) {
		for range 8 {
			h ^= x & 0xff
			h *= prime
			x >>= 8
		}
	}
	for _, t := range inputs {
		for i := 0; i < len(t.Name); i++ {
			h ^= uint64(t.Name[i])
			h *= prime
		}
		word(uint64(len(t.Shape)))
		for _, d := range t.Shape {
			word(uint64(d))
		}
		for i := 0; i < len(t.DType()); i++ {
			h ^= uint64(t.DType()[i])
			h *= prime
		}
		if v, ok := t.Data.([]bool); ok {
			for _, b := range v {
				x := uint64(0)
				if b {
					x = 1
				}
				word(x)
			}
			continue
		}
		wire.Each(t.Data, func(x float64) { word(math.Float64bits(x)) })
	}
	return h
}
