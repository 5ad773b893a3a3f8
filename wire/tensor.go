// Package wire is the tensor and its wire formats: the Tensor type every
// other package passes around, its element types (named as the KServe v2
// Open Inference Protocol names them), one set of helpers over tensor data,
// and the codecs of the JSON APIs (/predict and the OIP's REST form), with
// the input checks they share with gRPC's codec (wire/grpcwire, a package
// of its own so that wire links no gRPC).
// It imports nothing of modelgate's, so that any layer may use it: the
// HTTP layer decodes requests with it, serving runs its tensors, gates and
// drift read their numbers through its helpers.
package wire

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of the package, each a 400 to an API client.
var (
	// ErrBadInput: the inputs do not fit the model (names, types, shapes,
	// data length).
	ErrBadInput = errors.New("bad input")
	// ErrData: tensor data that cannot be decoded as the element type asks
	// (not a number, out of range, ragged nesting, NaN).
	ErrData = errors.New("invalid tensor data")
	// ErrRequest: a request body the codec cannot read (malformed JSON,
	// missing or contradictory fields). Its errors' messages are the detail
	// alone: they are what the client reads.
	ErrRequest = errors.New("malformed request")
	// ErrUnsupportedType: an element type modelgate does not serve.
	ErrUnsupportedType = errors.New("unsupported tensor type")
)

// requestError is an ErrRequest whose message is only the detail.
type requestError struct{ msg string }

func (e *requestError) Error() string        { return e.msg }
func (e *requestError) Is(target error) bool { return target == ErrRequest }

// requestErr is an ErrRequest with a formatted message.
func requestErr(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// DType names a tensor element type the way the KServe v2 protocol does.
type DType string

// The element types of the KServe v2 protocol, every one of which can be
// served (FP16 and BF16 held as their bits, BYTES as [][]byte).
const (
	BOOL   DType = "BOOL"
	UINT8  DType = "UINT8"
	UINT16 DType = "UINT16"
	UINT32 DType = "UINT32"
	UINT64 DType = "UINT64"
	INT8   DType = "INT8"
	INT16  DType = "INT16"
	INT32  DType = "INT32"
	INT64  DType = "INT64"
	FP16   DType = "FP16"
	FP32   DType = "FP32"
	FP64   DType = "FP64"
	BF16   DType = "BF16"
	BYTES  DType = "BYTES"
)

// Supported reports whether tensors of this type can be served: every type
// the protocol names.
func (d DType) Supported() bool {
	switch d {
	case BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, BF16, FP32, FP64, BYTES:
		return true
	}
	return false
}

// Known reports whether d is one of the protocol's type names.
func (d DType) Known() bool { return d.Supported() }

// IsFloat reports whether d is FP32 or FP64, the floating-point types the
// gates and output kinds read (FP16 and BF16 are served, not judged).
func (d DType) IsFloat() bool { return d == FP32 || d == FP64 }

// IsInteger reports whether d is a signed or unsigned integer type.
func (d DType) IsInteger() bool {
	switch d {
	case INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64:
		return true
	}
	return false
}

// TensorSpec describes a model input or output: its name, element type and
// shape, with -1 for a dimension the model leaves free (such as the batch).
// It is also what a registry manifest records of a model's signature.
type TensorSpec struct {
	Name  string  `json:"name"`
	DType DType   `json:"datatype"`
	Shape []int64 `json:"shape"`
}

// String names a spec with its datatype and shape: "features" (FP32 [-1 30]).
func (s TensorSpec) String() string { return fmt.Sprintf("%q (%s %v)", s.Name, s.DType, s.Shape) }

// Tensor is a named tensor in host memory. Data is a flat, row-major slice
// of the Go type matching the element type: []float32 for FP32, []int64 for
// INT64, []bool for BOOL, []Float16 for FP16, []BFloat16 for BF16, [][]byte
// for BYTES, and so on (see MakeData).
type Tensor struct {
	Name  string
	Shape []int64
	Data  any
}

// DType is the element type of t's data ("" when Data is not a supported
// slice).
func (t Tensor) DType() DType { d, _ := dataInfo(t.Data); return d }

// Len is the number of elements in t's data.
func (t Tensor) Len() int { _, n := dataInfo(t.Data); return n }

// MakeData returns a zeroed slice of n elements of type d ([]float32 for
// FP32, []bool for BOOL, ...), the form Tensor.Data takes.
func MakeData(d DType, n int) (any, error) {
	switch d {
	case BOOL:
		return make([]bool, n), nil
	case UINT8:
		return make([]uint8, n), nil
	case UINT16:
		return make([]uint16, n), nil
	case UINT32:
		return make([]uint32, n), nil
	case UINT64:
		return make([]uint64, n), nil
	case INT8:
		return make([]int8, n), nil
	case INT16:
		return make([]int16, n), nil
	case INT32:
		return make([]int32, n), nil
	case INT64:
		return make([]int64, n), nil
	case FP32:
		return make([]float32, n), nil
	case FP64:
		return make([]float64, n), nil
	case FP16:
		return make([]Float16, n), nil
	case BF16:
		return make([]BFloat16, n), nil
	case BYTES:
		return make([][]byte, n), nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedType, d)
}

// dataInfo returns the element type and length of a Tensor.Data slice.
func dataInfo(data any) (DType, int) {
	switch v := data.(type) {
	case []bool:
		return BOOL, len(v)
	case []uint8:
		return UINT8, len(v)
	case []uint16:
		return UINT16, len(v)
	case []uint32:
		return UINT32, len(v)
	case []uint64:
		return UINT64, len(v)
	case []int8:
		return INT8, len(v)
	case []int16:
		return INT16, len(v)
	case []int32:
		return INT32, len(v)
	case []int64:
		return INT64, len(v)
	case []float32:
		return FP32, len(v)
	case []float64:
		return FP64, len(v)
	case []Float16:
		return FP16, len(v)
	case []BFloat16:
		return BF16, len(v)
	case [][]byte:
		return BYTES, len(v)
	}
	return "", 0
}

// CheckTensor reports, as an ErrBadInput, how t fails to fit spec: element
// type, rank, a fixed dimension, or a data length that is not the product
// of the shape.
func CheckTensor(spec TensorSpec, t Tensor) error {
	d, n := dataInfo(t.Data)
	if d != spec.DType {
		return DTypeMismatch(spec.Name, d, spec.DType)
	}
	if !ShapeFits(spec.Shape, t.Shape) {
		return fmt.Errorf("%w: input %q: shape %v does not match the model's %v (-1 is free)", ErrBadInput, spec.Name, t.Shape, spec.Shape)
	}
	want, ok := ShapeSize(t.Shape)
	if !ok {
		return fmt.Errorf("%w: input %q: shape %v has a negative or too large dimension", ErrBadInput, spec.Name, t.Shape)
	}
	if int64(n) != want {
		return fmt.Errorf("%w: input %q: shape %v needs %d values, got %d", ErrBadInput, spec.Name, t.Shape, want, n)
	}
	return nil
}

// ShapeFits reports whether a concrete shape fits a spec shape (where -1 is
// free).
func ShapeFits(spec, shape []int64) bool {
	if len(spec) != len(shape) {
		return false
	}
	for i, d := range spec {
		if d >= 0 && shape[i] != d {
			return false
		}
	}
	return true
}

// maxElements bounds the element count of one tensor (2^31), far above what
// a request body can carry, so that products cannot overflow.
const maxElements = 1 << 31

// ShapeSize is the number of elements of a shape; false for a negative
// dimension or a product beyond 2^31.
func ShapeSize(shape []int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 || (d > 0 && n > maxElements/d) {
			return 0, false
		}
		n *= d
	}
	return n, n <= maxElements
}

// Names quotes the specs' names, comma-separated: "a", "b".
func Names(specs []TensorSpec) string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = fmt.Sprintf("%q", s.Name)
	}
	return strings.Join(names, ", ")
}

// Find returns the spec named name.
func Find(specs []TensorSpec, name string) (TensorSpec, bool) {
	for _, s := range specs {
		if s.Name == name {
			return s, true
		}
	}
	return TensorSpec{}, false
}
