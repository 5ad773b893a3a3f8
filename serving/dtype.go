package serving

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// DType names a tensor element type the way the KServe v2 protocol does.
type DType string

// The element types of the KServe v2 protocol. All but FP16 and BYTES can be
// served; those two are named so that errors can say what was asked for.
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
	BYTES  DType = "BYTES"
)

// Supported reports whether tensors of this type can be served: every type a
// JSON number or boolean can carry.
func (d DType) Supported() bool {
	switch d {
	case BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP32, FP64:
		return true
	}
	return false
}

// Known reports whether d is one of the protocol's type names.
func (d DType) Known() bool { return d.Supported() || d == FP16 || d == BYTES }

// dtypeFromORT maps ONNX Runtime's element type to the protocol's name; types
// with no protocol name come back as their ONNX Runtime spelling.
func dtypeFromORT(t ort.TensorElementDataType) DType {
	switch t {
	case ort.TensorElementDataTypeBool:
		return BOOL
	case ort.TensorElementDataTypeUint8:
		return UINT8
	case ort.TensorElementDataTypeUint16:
		return UINT16
	case ort.TensorElementDataTypeUint32:
		return UINT32
	case ort.TensorElementDataTypeUint64:
		return UINT64
	case ort.TensorElementDataTypeInt8:
		return INT8
	case ort.TensorElementDataTypeInt16:
		return INT16
	case ort.TensorElementDataTypeInt32:
		return INT32
	case ort.TensorElementDataTypeInt64:
		return INT64
	case ort.TensorElementDataTypeFloat16:
		return FP16
	case ort.TensorElementDataTypeFloat:
		return FP32
	case ort.TensorElementDataTypeDouble:
		return FP64
	case ort.TensorElementDataTypeString:
		return BYTES
	}
	return DType(t.String())
}

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
	}
	return "", 0
}

// newORTTensor wraps data (not copied) in an ONNX Runtime tensor.
func newORTTensor(shape []int64, data any) (ort.Value, error) {
	s := ort.NewShape(shape...)
	switch v := data.(type) {
	case []bool:
		return ort.NewTensor(s, v)
	case []uint8:
		return ort.NewTensor(s, v)
	case []uint16:
		return ort.NewTensor(s, v)
	case []uint32:
		return ort.NewTensor(s, v)
	case []uint64:
		return ort.NewTensor(s, v)
	case []int8:
		return ort.NewTensor(s, v)
	case []int16:
		return ort.NewTensor(s, v)
	case []int32:
		return ort.NewTensor(s, v)
	case []int64:
		return ort.NewTensor(s, v)
	case []float32:
		return ort.NewTensor(s, v)
	case []float64:
		return ort.NewTensor(s, v)
	}
	return nil, fmt.Errorf("%w: Go type %T", ErrUnsupportedType, data)
}

// fromORTValue copies an ONNX Runtime output into a Tensor. The onnxruntime_go
// binding already holds outputs in Go memory, so this takes the slice as is.
func fromORTValue(name string, v ort.Value) (Tensor, error) {
	t := Tensor{Name: name, Shape: []int64(v.GetShape().Clone())}
	switch x := v.(type) {
	case *ort.Tensor[bool]:
		t.Data = x.GetData()
	case *ort.Tensor[uint8]:
		t.Data = x.GetData()
	case *ort.Tensor[uint16]:
		t.Data = x.GetData()
	case *ort.Tensor[uint32]:
		t.Data = x.GetData()
	case *ort.Tensor[uint64]:
		t.Data = x.GetData()
	case *ort.Tensor[int8]:
		t.Data = x.GetData()
	case *ort.Tensor[int16]:
		t.Data = x.GetData()
	case *ort.Tensor[int32]:
		t.Data = x.GetData()
	case *ort.Tensor[int64]:
		t.Data = x.GetData()
	case *ort.Tensor[float32]:
		t.Data = x.GetData()
	case *ort.Tensor[float64]:
		t.Data = x.GetData()
	default:
		return Tensor{}, fmt.Errorf("%w: output %q is a %s of %s", ErrUnsupportedType, name, v.GetONNXType(), dtypeFromORT(ort.TensorElementDataType(v.DataType())))
	}
	return t, nil
}
