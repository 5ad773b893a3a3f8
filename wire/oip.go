package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// The KServe v2 Open Inference Protocol's REST messages, in JSON.

// InferInput is one entry of an infer request's "inputs". Data stays raw:
// its element type comes from Datatype.
type InferInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
	// Raw is the input's data in raw form (see FromRaw) when it came as
	// binary data after the JSON header; nil when it came as JSON "data".
	Raw []byte `json:"-"`
}

// InferOutputRequest is one entry of an infer request's "outputs".
type InferOutputRequest struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// InferRequest is the body of POST /v2/models/{m}[/versions/{v}]/infer.
type InferRequest struct {
	ID         string               `json:"id,omitempty"`
	Parameters map[string]any       `json:"parameters,omitempty"`
	Inputs     []InferInput         `json:"inputs"`
	Outputs    []InferOutputRequest `json:"outputs,omitempty"`
}

// InferOutput is one entry of an infer response's "outputs".
type InferOutput struct {
	Name     string          `json:"name"`
	Shape    []int64         `json:"shape"`
	Datatype string          `json:"datatype"`
	Data     json.RawMessage `json:"data"`
}

// InferResponse is the answer to an infer request; AppendInferResponse
// writes it without reflection.
type InferResponse struct {
	ModelName    string        `json:"model_name"`
	ModelVersion string        `json:"model_version"`
	ID           string        `json:"id,omitempty"`
	Outputs      []InferOutput `json:"outputs"`
}

// DecodeInferRequest parses an infer request body and checks its framing.
// Errors wrap ErrRequest.
func DecodeInferRequest(body []byte) (*InferRequest, error) {
	req, err := decodeInferJSON(body)
	if err != nil {
		return nil, err
	}
	if err := checkInputs(req, false); err != nil {
		return nil, err
	}
	return req, nil
}

// decodeInferJSON parses an infer request's JSON.
func decodeInferJSON(body []byte) (*InferRequest, error) {
	req, ok := scanInferFraming(body)
	if !ok {
		req = &InferRequest{}
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(req); err != nil {
			return nil, requestErr("malformed JSON: %v", jsonErr(err))
		}
		if dec.More() {
			return nil, requestErr("malformed JSON: unexpected data after the request object")
		}
	}
	return req, nil
}

// checkInputs checks every input's framing; binary: the input's data may
// come as binary data instead of "data" (Raw is set).
func checkInputs(req *InferRequest, binary bool) error {
	if len(req.Inputs) == 0 {
		return requestErr(`"inputs" is missing or empty`)
	}
	for i, in := range req.Inputs {
		if in.Name == "" {
			return requestErr("inputs[%d]: \"name\" is missing", i)
		}
		if in.Datatype == "" {
			return requestErr("input %q: \"datatype\" is missing", in.Name)
		}
		if in.Shape == nil {
			return requestErr("input %q: \"shape\" is missing", in.Name)
		}
		hasData := len(in.Data) != 0 && string(in.Data) != "null"
		switch {
		case binary && in.Raw != nil && hasData:
			return requestErr("input %q: has both \"data\" and binary data (parameters.binary_data_size); send one", in.Name)
		case binary && in.Raw != nil:
		case !hasData:
			return requestErr("input %q: \"data\" is missing", in.Name)
		}
	}
	return nil
}

// InferTensors turns the request's inputs into tensors for a model that
// takes specs, decoding each input's data straight into its element type.
func InferTensors(req *InferRequest, specs []TensorSpec) ([]Tensor, error) {
	tensors := make([]Tensor, 0, len(req.Inputs))
	for _, in := range req.Inputs {
		i := slices.IndexFunc(specs, func(sp TensorSpec) bool { return sp.Name == in.Name })
		if i < 0 {
			return nil, UnknownInput(in.Name, specs)
		}
		spec := specs[i]
		d := DType(in.Datatype)
		if !d.Known() {
			return nil, UnknownDType(in.Name, in.Datatype)
		}
		if d != spec.DType {
			return nil, DTypeMismatch(in.Name, d, spec.DType)
		}
		size, ok := ShapeSize(in.Shape)
		if !ok {
			return nil, BadShape(in.Name, in.Shape)
		}
		if in.Raw != nil {
			t, err := FromRaw(in.Name, d, in.Shape, in.Raw)
			if err != nil {
				return nil, err
			}
			if size == 0 {
				return nil, NoValues(in.Name, in.Shape)
			}
			// JSON cannot carry NaN or Inf; raw bytes can, and they are
			// refused as gRPC's raw contents are.
			if err := CheckFinite(t); err != nil {
				return nil, err
			}
			tensors = append(tensors, t)
			continue
		}
		data, nest, err := DecodeData(in.Data, d, size)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		_, n64 := dataInfo(data)
		n := int64(n64)
		if len(nest) > 1 && !slices.Equal(nest, in.Shape) {
			return nil, requestErr("input %q: nested data has shape %v but \"shape\" says %v", in.Name, nest, in.Shape)
		}
		if n != size {
			return nil, ValueCount(in.Name, in.Shape, size, "data", n)
		}
		if n == 0 {
			return nil, NoValues(in.Name, in.Shape)
		}
		tensors = append(tensors, Tensor{Name: in.Name, Shape: in.Shape, Data: data})
	}
	return tensors, nil
}

// InferOutputs is the output names the request asks for (nil: all), each
// checked against the model's outputs.
func InferOutputs(req *InferRequest, outputs []TensorSpec) ([]string, error) {
	var names []string
	for _, o := range req.Outputs {
		if o.Name == "" {
			return nil, requestErr("outputs: an entry has no \"name\"")
		}
		if _, ok := Find(outputs, o.Name); !ok {
			return nil, UnknownOutput(o.Name, outputs)
		}
		names = append(names, o.Name)
	}
	return names, nil
}

// jsonErr shortens encoding/json's messages.
func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Sprintf("expected %s, got %s", te.Type, te.Value)
	}
	return err.Error()
}
