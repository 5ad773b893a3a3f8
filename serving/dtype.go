package serving

import (
	"bytes"
	"fmt"
	"unsafe"

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
	case ort.TensorElementDataTypeBFloat16:
		return wire.BF16
	}
	return wire.DType(t.String())
}

// newORTTensor wraps data (not copied, but for BYTES) in an ONNX Runtime
// tensor.
//
// FP16 and BF16 go as onnxruntime_go's CustomDataTensor over the slice's
// memory (their bits, in host order, which is what ONNX Runtime reads).
// BYTES go as a StringTensor, which onnxruntime_go v1.35.0 fills through C
// strings: an element with a NUL byte would be cut short there, so such an
// element is refused.
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
	case []wire.Float16:
		return ort.NewCustomDataTensor(s, halfBytes(v), ort.TensorElementDataTypeFloat16)
	case []wire.BFloat16:
		return ort.NewCustomDataTensor(s, halfBytes(v), ort.TensorElementDataTypeBFloat16)
	case [][]byte:
		strs := make([]string, len(v))
		for i, e := range v {
			if bytes.IndexByte(e, 0) >= 0 {
				return nil, fmt.Errorf("%w: BYTES element %d holds a NUL byte, which ONNX Runtime cannot be handed here (onnxruntime_go v1.35.0 passes strings as C strings, which end at a NUL)", wire.ErrBadInput, i)
			}
			strs[i] = string(e)
		}
		t, err := ort.NewStringTensor(s)
		if err != nil {
			return nil, err
		}
		if err := t.SetContents(strs); err != nil {
			t.Destroy()
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("%w: Go type %T", wire.ErrUnsupportedType, data)
}

// halfBytes is the memory of 16-bit float data as bytes (no copy).
func halfBytes[T wire.Float16 | wire.BFloat16](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 2*len(v))
}

// halfData copies the bytes of a 16-bit float tensor of n elements into a
// new slice; false when the bytes are not 2n (onnxruntime_go v1.35.0 copies
// only n bytes of a 16-bit float output that ONNX Runtime allocated: see
// ortModel.Run).
func halfData[T wire.Float16 | wire.BFloat16](b []byte, n int64) ([]T, bool) {
	if int64(len(b)) != 2*n {
		return nil, false
	}
	out := make([]T, n)
	copy(halfBytes(out), b)
	return out, true
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
	case *ort.CustomDataTensor:
		n, _ := wire.ShapeSize(t.Shape)
		var ok bool
		switch d := ort.TensorElementDataType(x.DataType()); d {
		case ort.TensorElementDataTypeFloat16:
			t.Data, ok = halfData[wire.Float16](x.GetData(), n)
		case ort.TensorElementDataTypeBFloat16:
			t.Data, ok = halfData[wire.BFloat16](x.GetData(), n)
		default:
			return wire.Tensor{}, fmt.Errorf("%w: output %q has element type %s", wire.ErrUnsupportedType, name, dtypeFromORT(d))
		}
		if !ok {
			return wire.Tensor{}, errTruncatedHalf
		}
	case *ort.StringTensor:
		strs, err := x.GetContents()
		if err != nil {
			return wire.Tensor{}, fmt.Errorf("reading BYTES output %q: %w", name, err)
		}
		elems := make([][]byte, len(strs))
		for i, e := range strs {
			elems[i] = []byte(e)
		}
		t.Data = elems
	default:
		return wire.Tensor{}, fmt.Errorf("%w: output %q is a %s of %s", wire.ErrUnsupportedType, name, v.GetONNXType(), dtypeFromORT(ort.TensorElementDataType(v.DataType())))
	}
	return t, nil
}
