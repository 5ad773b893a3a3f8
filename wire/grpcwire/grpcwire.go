// Package grpcwire is the gRPC API's tensor codec, beside package wire's
// JSON and binary ones: a ModelInferRequest's inputs, as typed contents
// or raw_input_contents, into wire.Tensor, checked as the HTTP codecs
// check theirs and with the same errors (wire.ErrRequest, ErrBadInput,
// ErrData, most from wire's shared checks), and output tensors back as
// typed contents or raw_output_contents. It is a package of its own so
// that wire links no gRPC: grpcapi, the generated code, imports
// google.golang.org/grpc for its service stubs.
package grpcwire

import (
	"fmt"
	"math"

	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/wire"
)

// CheckFraming checks what does not depend on the model: inputs present,
// each with a name, a datatype the protocol names and a shape ShapeSize
// takes; either raw_input_contents for every input (in order) and no
// typed contents, or typed contents for each; every requested output
// named. Errors wrap wire.ErrRequest.
func CheckFraming(req *grpcapi.ModelInferRequest) error {
	if len(req.GetInputs()) == 0 {
		return wire.RequestErrorf("inputs is missing or empty")
	}
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return wire.RequestErrorf("raw_input_contents has %d entries for %d inputs: send one per input, in the order of inputs", len(raw), len(req.GetInputs()))
	}
	for i, in := range req.GetInputs() {
		switch {
		case in.GetName() == "":
			return wire.RequestErrorf("inputs[%d]: name is missing", i)
		case in.GetDatatype() == "":
			return wire.RequestErrorf("input %q: datatype is missing", in.GetName())
		case !wire.DType(in.GetDatatype()).Known():
			return wire.UnknownDType(in.GetName(), in.GetDatatype())
		case len(in.GetShape()) == 0:
			return wire.RequestErrorf("input %q: shape is missing", in.GetName())
		case len(raw) > 0 && in.GetContents() != nil:
			return wire.RequestErrorf("input %q: has contents while the request has raw_input_contents: send every input one way", in.GetName())
		case len(raw) == 0 && in.GetContents() == nil:
			return wire.RequestErrorf("input %q: no data: set its contents, or raw_input_contents for every input", in.GetName())
		}
		if _, ok := wire.ShapeSize(in.GetShape()); !ok {
			return wire.BadShape(in.GetName(), in.GetShape())
		}
	}
	for _, o := range req.GetOutputs() {
		if o.GetName() == "" {
			return wire.RequestErrorf("outputs: an entry has no name")
		}
	}
	return nil
}

// Inputs turns the request's inputs into tensors for a model that takes
// specs; the framing must have passed CheckFraming. Raw contents are
// decoded by wire.FromRaw (fixed-width data used in place where it can
// be: the tensors may alias the request), typed contents by FromContents.
// NaN, infinities and shapes that hold no values are refused.
func Inputs(req *grpcapi.ModelInferRequest, specs []wire.TensorSpec) ([]wire.Tensor, error) {
	raw := req.GetRawInputContents()
	tensors := make([]wire.Tensor, 0, len(req.GetInputs()))
	for i, in := range req.GetInputs() {
		spec, ok := wire.Find(specs, in.GetName())
		if !ok {
			return nil, wire.UnknownInput(in.GetName(), specs)
		}
		d := wire.DType(in.GetDatatype())
		if d != spec.DType {
			return nil, wire.DTypeMismatch(in.GetName(), d, spec.DType)
		}
		var t wire.Tensor
		var err error
		if len(raw) > 0 {
			t, err = wire.FromRaw(in.GetName(), d, in.GetShape(), raw[i])
		} else {
			t, err = FromContents(in.GetName(), d, in.GetShape(), in.GetContents())
		}
		if err != nil {
			return nil, err
		}
		if err := wire.CheckFinite(t); err != nil {
			return nil, err
		}
		if t.Len() == 0 {
			return nil, wire.NoValues(in.GetName(), in.GetShape())
		}
		tensors = append(tensors, t)
	}
	return tensors, nil
}

// OutputNames is the output names the request asks for (nil: all), each
// checked against the model's outputs (their names are checked by
// CheckFraming).
func OutputNames(req *grpcapi.ModelInferRequest, outputs []wire.TensorSpec) ([]string, error) {
	var names []string
	for _, o := range req.GetOutputs() {
		if _, ok := wire.Find(outputs, o.GetName()); !ok {
			return nil, wire.UnknownOutput(o.GetName(), outputs)
		}
		names = append(names, o.GetName())
	}
	return names, nil
}

// The fields of InferTensorContents, in the proto's order.
const (
	boolField   = "bool_contents"
	intField    = "int_contents"
	int64Field  = "int64_contents"
	uintField   = "uint_contents"
	uint64Field = "uint64_contents"
	fp32Field   = "fp32_contents"
	fp64Field   = "fp64_contents"
	bytesField  = "bytes_contents"
)

// FromContents decodes typed contents into a tensor named name: the field
// the datatype names (the 32-bit fields carry the 8- and 16-bit types,
// range-checked), with as many elements as the shape holds (which
// ShapeSize must take), and no other field set. FP16 and BF16 have no
// typed contents. The tensor's data aliases c's slices where the types
// are the same. Errors wrap wire.ErrRequest, or wire.ErrData for a value
// out of its type's range.
func FromContents(name string, d wire.DType, shape []int64, c *grpcapi.InferTensorContents) (wire.Tensor, error) {
	n, _ := wire.ShapeSize(shape)
	t := wire.Tensor{Name: name, Shape: shape}
	fields := [...]struct {
		name string
		len  int
	}{
		{boolField, len(c.GetBoolContents())}, {intField, len(c.GetIntContents())}, {int64Field, len(c.GetInt64Contents())},
		{uintField, len(c.GetUintContents())}, {uint64Field, len(c.GetUint64Contents())}, {fp32Field, len(c.GetFp32Contents())},
		{fp64Field, len(c.GetFp64Contents())}, {bytesField, len(c.GetBytesContents())},
	}
	var field string
	var err error
	switch d {
	case wire.BOOL:
		field, t.Data = boolField, c.GetBoolContents()
	case wire.INT8:
		field = intField
		t.Data, err = narrow[int8](c.GetIntContents(), math.MinInt8, math.MaxInt8)
	case wire.INT16:
		field = intField
		t.Data, err = narrow[int16](c.GetIntContents(), math.MinInt16, math.MaxInt16)
	case wire.INT32:
		field, t.Data = intField, c.GetIntContents()
	case wire.INT64:
		field, t.Data = int64Field, c.GetInt64Contents()
	case wire.UINT8:
		field = uintField
		t.Data, err = narrow[uint8](c.GetUintContents(), 0, math.MaxUint8)
	case wire.UINT16:
		field = uintField
		t.Data, err = narrow[uint16](c.GetUintContents(), 0, math.MaxUint16)
	case wire.UINT32:
		field, t.Data = uintField, c.GetUintContents()
	case wire.UINT64:
		field, t.Data = uint64Field, c.GetUint64Contents()
	case wire.FP32:
		field, t.Data = fp32Field, c.GetFp32Contents()
	case wire.FP64:
		field, t.Data = fp64Field, c.GetFp64Contents()
	case wire.BYTES:
		field, t.Data = bytesField, c.GetBytesContents()
	default: // FP16, BF16
		return wire.Tensor{}, wire.RequestErrorf("input %q: %s has no typed contents: send it in raw_input_contents", name, d)
	}
	if err != nil {
		return wire.Tensor{}, fmt.Errorf("input %q: %w", name, err)
	}
	var got int
	for _, f := range fields {
		switch {
		case f.name == field:
			got = f.len
		case f.len > 0:
			return wire.Tensor{}, wire.RequestErrorf("input %q: datatype %s takes %s, got %s", name, d, field, f.name)
		}
	}
	if int64(got) != n {
		return wire.Tensor{}, wire.ValueCount(name, shape, n, field, int64(got))
	}
	return t, nil
}

// narrow converts 32-bit contents to a narrower integer type, refusing a
// value out of its range (wire.ErrData).
func narrow[T int8 | int16 | uint8 | uint16, S int32 | uint32](v []S, lo, hi int64) ([]T, error) {
	out := make([]T, len(v))
	for i, x := range v {
		if int64(x) < lo || int64(x) > hi {
			return nil, fmt.Errorf("%w: element %d is %d, out of the range [%d, %d] of the datatype", wire.ErrData, i, x, lo, hi)
		}
		out[i] = T(x)
	}
	return out, nil
}

// Outputs is the answer's outputs: each tensor's name, datatype and shape,
// with its data as typed contents, or, when raw, as raw_output_contents
// (wire.RawView, else wire.AppendRaw, in the order of outs). An output that typed contents
// cannot carry (FP16, BF16) makes the whole answer raw, since the protocol
// sends either every output's data raw or none.
func Outputs(outs []wire.Tensor, raw bool) (tensors []*grpcapi.ModelInferResponse_InferOutputTensor, rawContents [][]byte) {
	tensors = make([]*grpcapi.ModelInferResponse_InferOutputTensor, len(outs))
	for i, o := range outs {
		tensors[i] = &grpcapi.ModelInferResponse_InferOutputTensor{Name: o.Name, Datatype: string(o.DType()), Shape: o.Shape}
		if raw {
			continue
		}
		c, ok := ToContents(o.Data)
		if !ok {
			return Outputs(outs, true)
		}
		tensors[i].Contents = c
	}
	if raw {
		rawContents = make([][]byte, len(outs))
		for i, o := range outs {
			// The output's own memory where it already is the raw form
			// (protobuf copies it into the message as it marshals).
			v, ok := wire.RawView(o)
			if !ok {
				v = wire.AppendRaw(make([]byte, 0, wire.RawLen(o)), o)
			}
			rawContents[i] = v
		}
	}
	return tensors, rawContents
}

// ToContents is data (a Tensor.Data slice) as typed contents, the 8- and
// 16-bit integers widened into the 32-bit fields; false for FP16 and BF16,
// which have none. The contents alias data where the types are the same.
func ToContents(data any) (*grpcapi.InferTensorContents, bool) {
	c := &grpcapi.InferTensorContents{}
	switch v := data.(type) {
	case []bool:
		c.BoolContents = v
	case []int8:
		c.IntContents = widenTo[int32](v)
	case []int16:
		c.IntContents = widenTo[int32](v)
	case []int32:
		c.IntContents = v
	case []int64:
		c.Int64Contents = v
	case []uint8:
		c.UintContents = widenTo[uint32](v)
	case []uint16:
		c.UintContents = widenTo[uint32](v)
	case []uint32:
		c.UintContents = v
	case []uint64:
		c.Uint64Contents = v
	case []float32:
		c.Fp32Contents = v
	case []float64:
		c.Fp64Contents = v
	case [][]byte:
		c.BytesContents = v
	default:
		return nil, false
	}
	return c, true
}

func widenTo[T int32 | uint32, S int8 | int16 | uint8 | uint16](v []S) []T {
	out := make([]T, len(v))
	for i, x := range v {
		out[i] = T(x)
	}
	return out
}
