package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// The raw form of tensor data, shared by the binary tensor data extension
// of the HTTP/REST API and the raw_input_contents / raw_output_contents of
// the gRPC API: the elements, flat in row-major order, each little-endian
// in its type's width (BOOL one byte, 0 or 1; FP16 and BF16 two bytes);
// BYTES elements each as a 4-byte little-endian length and then that many
// bytes.
//
// Source: Triton's docs/protocol/extension_binary_data.md ("the tensor data
// must be in row-major order and little-endian ... BYTES ... each element
// preceded by a 4-byte length") and KServe's gRPC predict API
// (docs/predict-api/v2/grpc_predict_v2.proto, raw_input_contents: "the data
// must be serialized ... in little-endian byte order ... for BYTES type
// the serialized data is the element's length as a 4-byte little-endian
// unsigned integer followed by the element's bytes").

// Float16 is an IEEE 754 binary16 value as its 16 bits: the element of
// FP16 tensors ([]Float16).
type Float16 uint16

// BFloat16 is a bfloat16 value (the upper half of a float32) as its 16
// bits: the element of BF16 tensors ([]BFloat16).
type BFloat16 uint16

// hostLittleEndian: the host stores integers least significant byte first,
// so raw data can be copied into Go memory as it is.
var hostLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// ElemSize is the width in bytes of one element of type d on the wire; 0
// for BYTES (variable) and for names the protocol does not know.
func (d DType) ElemSize() int {
	switch d {
	case BOOL, UINT8, INT8:
		return 1
	case UINT16, INT16, FP16, BF16:
		return 2
	case UINT32, INT32, FP32:
		return 4
	case UINT64, INT64, FP64:
		return 8
	}
	return 0
}

// rawErr is an ErrBadInput with the tensor's name.
func rawErr(name, format string, args ...any) error {
	return fmt.Errorf("%w: input %q: %s", ErrBadInput, name, fmt.Sprintf(format, args...))
}

// FromRaw decodes raw tensor data (see the top of this file) of element
// type d and the given shape into a Tensor named name. The size must be
// exactly what the shape asks: shape × element size, or for BYTES, the
// shape's element count of length-prefixed elements with nothing after
// them. Fixed-width data whose bytes already are a Go slice of the type
// (a little-endian host, raw aligned to the element's width) is used in
// place: the tensor aliases raw, which must not change while the tensor is
// in use (a request body, read once, does not). Otherwise it is copied once
// into a fresh Go slice (byte-swapped on big-endian hosts). BOOL and BYTES
// are always decoded into new memory. Errors wrap ErrBadInput (ErrRequest
// for a datatype the protocol does not name).
func FromRaw(name string, d DType, shape []int64, raw []byte) (Tensor, error) {
	if !d.Known() {
		return Tensor{}, requestErr("input %q: unknown datatype %q", name, string(d))
	}
	n64, ok := ShapeSize(shape)
	if !ok {
		return Tensor{}, rawErr(name, "shape %v has a negative or too large dimension", shape)
	}
	n := int(n64)
	t := Tensor{Name: name, Shape: shape}
	if d == BYTES {
		elems, err := splitBytes(name, raw, n)
		if err != nil {
			return Tensor{}, err
		}
		t.Data = elems
		return t, nil
	}
	size := d.ElemSize()
	if want := int64(n) * int64(size); int64(len(raw)) != want {
		return Tensor{}, rawErr(name, "%s data of shape %v is %d bytes (%d × %d), got %d", d, shape, want, n, size, len(raw))
	}
	switch d {
	case BOOL:
		v := make([]bool, n)
		for i, c := range raw {
			if c > 1 {
				return Tensor{}, rawErr(name, "BOOL element %d is the byte %d, want 0 or 1", i, c)
			}
			v[i] = c == 1
		}
		t.Data = v
	case UINT8:
		t.Data = fromLE[uint8](raw, n)
	case UINT16:
		t.Data = fromLE[uint16](raw, n)
	case UINT32:
		t.Data = fromLE[uint32](raw, n)
	case UINT64:
		t.Data = fromLE[uint64](raw, n)
	case INT8:
		t.Data = fromLE[int8](raw, n)
	case INT16:
		t.Data = fromLE[int16](raw, n)
	case INT32:
		t.Data = fromLE[int32](raw, n)
	case INT64:
		t.Data = fromLE[int64](raw, n)
	case FP16:
		t.Data = fromLE[Float16](raw, n)
	case BF16:
		t.Data = fromLE[BFloat16](raw, n)
	case FP32:
		t.Data = fromLE[float32](raw, n)
	case FP64:
		t.Data = fromLE[float64](raw, n)
	}
	return t, nil
}

// splitBytes reads n length-prefixed BYTES elements that fill raw exactly.
// The elements alias raw.
func splitBytes(name string, raw []byte, n int) ([][]byte, error) {
	// Each element takes at least its 4-byte length: bound n by the data
	// before allocating for it.
	if int64(n)*4 > int64(len(raw)) {
		return nil, rawErr(name, "BYTES data of %d elements needs at least %d bytes (a 4-byte length each), got %d", n, int64(n)*4, len(raw))
	}
	elems := make([][]byte, n)
	off := 0
	for i := range elems {
		if len(raw)-off < 4 {
			return nil, rawErr(name, "BYTES element %d: the data ends inside its 4-byte length (at byte %d of %d)", i, off, len(raw))
		}
		l := binary.LittleEndian.Uint32(raw[off:])
		off += 4
		if uint64(l) > uint64(len(raw)-off) {
			return nil, rawErr(name, "BYTES element %d is %d bytes long, only %d bytes remain", i, l, len(raw)-off)
		}
		elems[i] = raw[off : off+int(l) : off+int(l)]
		off += int(l)
	}
	if off != len(raw) {
		return nil, rawErr(name, "BYTES data of %d elements ends at byte %d, %d bytes follow it", n, off, len(raw)-off)
	}
	return elems, nil
}

type fixedWidth interface {
	uint8 | uint16 | uint32 | uint64 | int8 | int16 | int32 | int64 | Float16 | BFloat16 | float32 | float64
}

// fromLE is n little-endian elements of raw (len(raw) is n × the element
// size) as a []T: raw itself where its layout is the host's (see FromRaw),
// else a copy.
func fromLE[T fixedWidth](raw []byte, n int) []T {
	if n == 0 {
		return []T{}
	}
	if hostLittleEndian && uintptr(unsafe.Pointer(&raw[0]))%unsafe.Alignof(*new(T)) == 0 {
		return unsafe.Slice((*T)(unsafe.Pointer(&raw[0])), n)
	}
	out := make([]T, n)
	mem := asBytes(out)
	copy(mem, raw)
	if !hostLittleEndian {
		swapEach(mem, int(unsafe.Sizeof(out[0])))
	}
	return out
}

// asBytes is the memory of s as bytes (no copy).
func asBytes[T fixedWidth](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}

// swapEach reverses the bytes of each size-byte element of b in place:
// little-endian to native on a big-endian host, and back.
func swapEach(b []byte, size int) {
	if size == 1 {
		return
	}
	for i := 0; i+size <= len(b); i += size {
		e := b[i : i+size]
		for j, k := 0, size-1; j < k; j, k = j+1, k-1 {
			e[j], e[k] = e[k], e[j]
		}
	}
}

// appendLE appends s as little-endian bytes.
func appendLE[T fixedWidth](b []byte, s []T) []byte {
	start := len(b)
	b = append(b, asBytes(s)...)
	if !hostLittleEndian && len(s) > 0 {
		swapEach(b[start:], int(unsafe.Sizeof(s[0])))
	}
	return b
}

// RawLen is the size in bytes of t's data in raw form (what AppendRaw
// appends); 0 when Data is not a tensor slice.
func RawLen(t Tensor) int {
	if v, ok := t.Data.([][]byte); ok {
		n := 0
		for _, e := range v {
			n += 4 + len(e)
		}
		return n
	}
	d, n := dataInfo(t.Data)
	return n * d.ElemSize()
}

// RawView is t's data in raw form without a copy: the memory of its slice,
// when the host is little-endian and the data is of a fixed-width type
// (not BOOL, whose Go bytes are 0 and 1 too but are not promised to be,
// nor BYTES); false otherwise, where AppendRaw must copy. The view aliases
// t's data.
func RawView(t Tensor) ([]byte, bool) {
	if !hostLittleEndian {
		return nil, false
	}
	switch v := t.Data.(type) {
	case []uint8:
		return v, true
	case []int8:
		return asBytes(v), true
	case []uint16:
		return asBytes(v), true
	case []int16:
		return asBytes(v), true
	case []uint32:
		return asBytes(v), true
	case []int32:
		return asBytes(v), true
	case []uint64:
		return asBytes(v), true
	case []int64:
		return asBytes(v), true
	case []Float16:
		return asBytes(v), true
	case []BFloat16:
		return asBytes(v), true
	case []float32:
		return asBytes(v), true
	case []float64:
		return asBytes(v), true
	}
	return nil, false
}

// AppendRaw appends t's data in raw form (see the top of this file) to b:
// the reverse of FromRaw. Data that is not a tensor slice appends nothing.
// A BYTES element longer than 4 GiB - 1 cannot be framed and is cut to it.
func AppendRaw(b []byte, t Tensor) []byte {
	switch v := t.Data.(type) {
	case []bool:
		for _, x := range v {
			if x {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
		return b
	case [][]byte:
		for _, e := range v {
			if uint64(len(e)) > math.MaxUint32 {
				e = e[:math.MaxUint32]
			}
			b = binary.LittleEndian.AppendUint32(b, uint32(len(e)))
			b = append(b, e...)
		}
		return b
	case []uint8:
		return append(b, v...)
	case []uint16:
		return appendLE(b, v)
	case []uint32:
		return appendLE(b, v)
	case []uint64:
		return appendLE(b, v)
	case []int8:
		return appendLE(b, v)
	case []int16:
		return appendLE(b, v)
	case []int32:
		return appendLE(b, v)
	case []int64:
		return appendLE(b, v)
	case []Float16:
		return appendLE(b, v)
	case []BFloat16:
		return appendLE(b, v)
	case []float32:
		return appendLE(b, v)
	case []float64:
		return appendLE(b, v)
	}
	return b
}
