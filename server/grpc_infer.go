package server

import (
	"context"
	"fmt"
	"math"

	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
	"google.golang.org/grpc/metadata"
)

// ModelInfer is POST /v2/models/{m}[/versions/{v}]/infer over gRPC: the
// same routing (a pinned model_version, else the canary's split by the
// x-modelgate-key metadata or the key parameter), batching, drift and
// canary records. Inputs come as typed contents or, for every input at
// once, as raw_input_contents; a request with raw inputs gets its outputs
// as raw_output_contents (what tritonclient reads), one with typed inputs
// as typed contents.
func (g *grpcService) ModelInfer(ctx context.Context, req *grpcapi.ModelInferRequest) (*grpcapi.ModelInferResponse, error) {
	if req.GetModelName() == "" {
		return nil, badRequest("model_name is required")
	}
	if err := checkInferFraming(req); err != nil {
		return nil, err
	}
	raw := len(req.GetRawInputContents()) > 0
	key := grpcKey(ctx, req, g.s.opts.KeyField)
	sess, outs, err := g.s.answerFor(ctx, grpcLabel(ctx), req.GetModelName(), req.GetModelVersion(), key, func(sess *serving.Session) ([]wire.Tensor, []string, error) {
		inputs, err := grpcInputs(req, sess.Inputs())
		if err != nil {
			return nil, nil, err
		}
		names := make([]string, 0, len(req.GetOutputs()))
		for _, o := range req.GetOutputs() {
			if _, ok := wire.Find(sess.Outputs(), o.GetName()); !ok {
				return nil, nil, fmt.Errorf("%w: unknown output %q (the model has %s)", wire.ErrBadInput, o.GetName(), wire.Names(sess.Outputs()))
			}
			names = append(names, o.GetName())
		}
		return inputs, names, nil
	})
	if err != nil {
		return nil, err
	}
	defer sess.Release()
	return inferResponse(sess, req.GetId(), outs, raw), nil
}

// grpcKey is the request's routing key: the x-modelgate-key metadata, else
// the request parameter Options.KeyField names.
func grpcKey(ctx context.Context, req *grpcapi.ModelInferRequest, field string) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(KeyMetadata); len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	if field == "" {
		return ""
	}
	p, ok := req.GetParameters()[field]
	if !ok {
		return ""
	}
	switch v := p.GetParameterChoice().(type) {
	case *grpcapi.InferParameter_StringParam:
		return v.StringParam
	case *grpcapi.InferParameter_Int64Param:
		return fmt.Sprint(v.Int64Param)
	case *grpcapi.InferParameter_Uint64Param:
		return fmt.Sprint(v.Uint64Param)
	case *grpcapi.InferParameter_DoubleParam:
		return fmt.Sprint(v.DoubleParam)
	case *grpcapi.InferParameter_BoolParam:
		return fmt.Sprint(v.BoolParam)
	}
	return ""
}

// checkInferFraming checks what does not depend on the model: names,
// datatypes and shapes present, and either raw_input_contents for every
// input (in order) and no typed contents, or typed contents for each.
func checkInferFraming(req *grpcapi.ModelInferRequest) error {
	if len(req.GetInputs()) == 0 {
		return badRequest("inputs is missing or empty")
	}
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return badRequest("raw_input_contents has %d entries for %d inputs: send one per input, in the order of inputs", len(raw), len(req.GetInputs()))
	}
	for i, in := range req.GetInputs() {
		switch {
		case in.GetName() == "":
			return badRequest("inputs[%d]: name is missing", i)
		case in.GetDatatype() == "":
			return badRequest("input %q: datatype is missing", in.GetName())
		case !wire.DType(in.GetDatatype()).Known():
			return badRequest("input %q: unknown datatype %q (want one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BF16, BYTES)", in.GetName(), in.GetDatatype())
		case len(in.GetShape()) == 0:
			return badRequest("input %q: shape is missing", in.GetName())
		case len(raw) > 0 && in.GetContents() != nil:
			return badRequest("input %q: has contents while the request has raw_input_contents: send every input one way", in.GetName())
		case len(raw) == 0 && in.GetContents() == nil:
			return badRequest("input %q: no data: set its contents, or raw_input_contents for every input", in.GetName())
		}
		if _, ok := wire.ShapeSize(in.GetShape()); !ok {
			return badRequest("input %q: shape %v has a negative or too large dimension", in.GetName(), in.GetShape())
		}
	}
	for _, o := range req.GetOutputs() {
		if o.GetName() == "" {
			return badRequest("outputs: an entry has no name")
		}
	}
	return nil
}

// grpcInputs turns the request's inputs into tensors for a model that
// takes specs (the framing is checked: checkInferFraming).
func grpcInputs(req *grpcapi.ModelInferRequest, specs []wire.TensorSpec) ([]wire.Tensor, error) {
	raw := req.GetRawInputContents()
	tensors := make([]wire.Tensor, 0, len(req.GetInputs()))
	for i, in := range req.GetInputs() {
		spec, ok := wire.Find(specs, in.GetName())
		if !ok {
			return nil, fmt.Errorf("%w: unknown input %q (the model takes %s)", wire.ErrBadInput, in.GetName(), wire.Names(specs))
		}
		d := wire.DType(in.GetDatatype())
		if d != spec.DType {
			return nil, fmt.Errorf("%w: input %q: datatype %s does not match the model's %s", wire.ErrBadInput, in.GetName(), d, spec.DType)
		}
		var t wire.Tensor
		var err error
		if len(raw) > 0 {
			t, err = wire.FromRaw(in.GetName(), d, in.GetShape(), raw[i])
		} else {
			t, err = fromContents(in.GetName(), d, in.GetShape(), in.GetContents())
		}
		if err != nil {
			return nil, err
		}
		if j := wire.FirstNonFinite(t.Data); j >= 0 {
			return nil, fmt.Errorf("input %q: %w: element %d is NaN or infinite (impute missing values before calling)", in.GetName(), wire.ErrData, j)
		}
		if t.Len() == 0 {
			return nil, badRequest("input %q: shape %v holds no values", in.GetName(), in.GetShape())
		}
		tensors = append(tensors, t)
	}
	return tensors, nil
}

// fromContents decodes typed contents: the field the datatype names (the
// 32-bit fields carry the 8- and 16-bit types, range-checked), with as
// many elements as the shape holds, and no other field set.
func fromContents(name string, d wire.DType, shape []int64, c *grpcapi.InferTensorContents) (wire.Tensor, error) {
	n, _ := wire.ShapeSize(shape)
	t := wire.Tensor{Name: name, Shape: shape}
	fields := map[string]int{
		"bool_contents": len(c.GetBoolContents()), "int_contents": len(c.GetIntContents()), "int64_contents": len(c.GetInt64Contents()),
		"uint_contents": len(c.GetUintContents()), "uint64_contents": len(c.GetUint64Contents()), "fp32_contents": len(c.GetFp32Contents()),
		"fp64_contents": len(c.GetFp64Contents()), "bytes_contents": len(c.GetBytesContents()),
	}
	var field string
	var err error
	switch d {
	case wire.BOOL:
		field, t.Data = "bool_contents", c.GetBoolContents()
	case wire.INT8:
		field = "int_contents"
		t.Data, err = narrow[int8](c.GetIntContents(), math.MinInt8, math.MaxInt8)
	case wire.INT16:
		field = "int_contents"
		t.Data, err = narrow[int16](c.GetIntContents(), math.MinInt16, math.MaxInt16)
	case wire.INT32:
		field, t.Data = "int_contents", c.GetIntContents()
	case wire.INT64:
		field, t.Data = "int64_contents", c.GetInt64Contents()
	case wire.UINT8:
		field = "uint_contents"
		t.Data, err = narrow[uint8](c.GetUintContents(), 0, math.MaxUint8)
	case wire.UINT16:
		field = "uint_contents"
		t.Data, err = narrow[uint16](c.GetUintContents(), 0, math.MaxUint16)
	case wire.UINT32:
		field, t.Data = "uint_contents", c.GetUintContents()
	case wire.UINT64:
		field, t.Data = "uint64_contents", c.GetUint64Contents()
	case wire.FP32:
		field, t.Data = "fp32_contents", c.GetFp32Contents()
	case wire.FP64:
		field, t.Data = "fp64_contents", c.GetFp64Contents()
	case wire.BYTES:
		field, t.Data = "bytes_contents", c.GetBytesContents()
	default: // FP16, BF16
		return wire.Tensor{}, badRequest("input %q: %s has no typed contents: send it in raw_input_contents", name, d)
	}
	if err != nil {
		return wire.Tensor{}, fmt.Errorf("input %q: %w", name, err)
	}
	for f, l := range fields {
		if f != field && l > 0 {
			return wire.Tensor{}, badRequest("input %q: datatype %s takes %s, got %s", name, d, field, f)
		}
	}
	if got := int64(fields[field]); got != n {
		return wire.Tensor{}, badRequest("input %q: shape %v needs %d values, %s has %d", name, shape, n, field, got)
	}
	return t, nil
}

// narrow converts 32-bit contents to a narrower integer type, refusing a
// value out of its range.
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

// inferResponse is the answer: each output's name, datatype and shape,
// with its data as raw_output_contents (raw) or typed contents. An output
// that typed contents cannot carry (FP16, BF16) makes the answer raw.
func inferResponse(sess *serving.Session, id string, outs []wire.Tensor, raw bool) *grpcapi.ModelInferResponse {
	resp := &grpcapi.ModelInferResponse{ModelName: sess.Name(), ModelVersion: sess.Version(), Id: id}
	resp.Outputs = make([]*grpcapi.ModelInferResponse_InferOutputTensor, len(outs))
	for i, o := range outs {
		resp.Outputs[i] = &grpcapi.ModelInferResponse_InferOutputTensor{Name: o.Name, Datatype: string(o.DType()), Shape: o.Shape}
		if !raw {
			c, ok := toContents(o.Data)
			if !ok {
				return inferResponse(sess, id, outs, true)
			}
			resp.Outputs[i].Contents = c
		}
	}
	if raw {
		resp.RawOutputContents = make([][]byte, len(outs))
		for i, o := range outs {
			resp.RawOutputContents[i] = wire.AppendRaw(make([]byte, 0, wire.RawLen(o)), o)
		}
	}
	return resp
}

// toContents is data as typed contents; false for FP16 and BF16.
func toContents(data any) (*grpcapi.InferTensorContents, bool) {
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
