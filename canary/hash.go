package canary

import (
	"encoding/binary"
	"hash/fnv"

	"github.com/modelgate/modelgate/wire"
)

// InputHash is a 64-bit FNV-1a hash of a request's inputs (names, element
// types, shapes and values), which the Recorder uses to count distinct
// inputs among compared requests. Values are hashed in their raw
// little-endian form (wire.AppendRaw), so every element type is hashed by
// its own bits: two inputs hash alike only when they are the same bytes.
func InputHash(inputs []wire.Tensor) uint64 {
	h := fnv.New64a()
	var buf []byte
	for _, t := range inputs {
		buf = binary.LittleEndian.AppendUint64(buf[:0], uint64(len(t.Name)))
		buf = append(buf, t.Name...)
		buf = append(buf, t.DType()...)
		buf = binary.LittleEndian.AppendUint64(buf, uint64(len(t.Shape)))
		for _, d := range t.Shape {
			buf = binary.LittleEndian.AppendUint64(buf, uint64(d))
		}
		buf = wire.AppendRaw(buf, t)
		h.Write(buf)
	}
	return h.Sum64()
}
