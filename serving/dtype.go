package serving

import (
	"fmt"

	"github.com/modelgate/modelgate/wire"
	ort "github.com/yalue/onnxruntime_go"
)

// dtypeFromORT maps ONNX Runtime's element type to the protocol's name; types
// with no protocol name come back as their ONNX Runtime spelling.
func dtypeFromORT(t ort.TensorElementDataType) wire.DType {
	switch t {
	case ort.TensorElementDataTypeBool:
		return wire.BOOL
	case ort.TensorElementDataTypeUint8:
		return wire.UINT8
	case ort.TensorElementDataTypeUint16:
		return wire.UINT16
	case ort.TensorElementDataTypeUint32:
		return wire.UINT32
	case ort.TensorElementDataTypeUint64:
		return wire.UINT64
	case ort.TensorElementDataTypeInt8:
		return wire.INT8
	case ort.TensorElementDataTypeInt16:
		return wire.INT16
	case ort.TensorElementDataTypeInt32:
		return wire.INT32
	case ort.TensorElementDataTypeInt64:
		return wire.INT64
	case ort.TensorElementDataTypeFloat16:
		return wire.FP16
	case ort.TensorElementDataTypeFloat:
		return wire.FP32
	case ort.TensorElementDataTypeDouble:
		return wire.FP64
	case ort.TensorElementDataTypeString:
		return wire.BYTES
	}
	return wire.DType(t.String())
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
	return nil, fmt.Errorf("%w: Go type %T", wire.ErrUnsupportedType, data)
}

// fromORTValue copies an ONNX Runtime output into a Tensor. The onnxruntime_go
// binding already holds outputs in Go memory, so this takes the slice as is.
func fromORTValue(name string, v ort.Value) (wire.Tensor, error) {
	t := wire.Tensor{Name: name, Shape: []int64(v.GetShape().Clone())}
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
		return wire.Tensor{}, fmt.Errorf("%w: output %q is a %s of %s", wire.ErrUnsupportedType, name, v.GetONNXType(), dtypeFromORT(ort.TensorElementDataType(v.DataType())))
	}
	return t, nil
}
