package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// The /predict API: the shape simple Python model servers use.
//
//	{"features": [x1, ..., xn]}            one row
//	{"instances": [[...], [...], ...]}     a batch
//
// The answer holds the first output's values, one per row, as
// "prediction", and every output by name, one entry per row.

// PredictRequest is a decoded /predict body. Features and Instances stay
// raw: their element type comes from the model's input.
type PredictRequest struct {
	Features  json.RawMessage `json:"features"`
	Instances json.RawMessage `json:"instances"`
	// Key is the routing key read from the body's key field, if any.
	Key string `json:"-"`
}

// PredictResponse is the answer of /predict; AppendPredictResponse writes
// it without reflection.
type PredictResponse struct {
	Model      string                     `json:"model"`
	Version    string                     `json:"version"`
	Prediction json.RawMessage            `json:"prediction"`
	Outputs    map[string]json.RawMessage `json:"outputs"`
}

// DecodePredictRequest parses a /predict body. keyField, when set, names
// a top-level field that carries the routing key (a string or a number).
// Errors wrap ErrRequest.
func DecodePredictRequest(body []byte, keyField string) (*PredictRequest, error) {
	var req PredictRequest
	if f, i, ok := fastPredictFraming(body, keyField); ok {
		req.Features, req.Instances = f, i
	} else if keyField == "" {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, requestErr("malformed JSON: %s; send {\"features\": [...]} for one row or {\"instances\": [[...], ...]} for a batch", jsonErr(err))
		}
		if dec.More() {
			return nil, requestErr("malformed JSON: unexpected data after the request object")
		}
	} else {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, requestErr("malformed JSON: %s; send {\"features\": [...]} for one row or {\"instances\": [[...], ...]} for a batch", jsonErr(err))
		}
		for k, v := range fields {
			switch k {
			case "features":
				req.Features = v
			case "instances":
				req.Instances = v
			case keyField:
				key, err := keyValue(v)
				if err != nil {
					return nil, requestErr("field %q (the routing key): %v", keyField, err)
				}
				req.Key = key
			default:
				return nil, requestErr("malformed JSON: unknown field %q; send {\"features\": [...]} for one row or {\"instances\": [[...], ...]} for a batch", k)
			}
		}
	}
	hasF := len(req.Features) > 0 && string(req.Features) != "null"
	hasI := len(req.Instances) > 0 && string(req.Instances) != "null"
	switch {
	case hasF && hasI:
		return nil, requestErr(`send either "features" (one row) or "instances" (a batch), not both`)
	case !hasF && !hasI:
		return nil, requestErr(`the body needs "features" (one row: [x1, ..., xn]) or "instances" (a batch: [[...], ...])`)
	}
	return &req, nil
}

// PredictTensor builds a single-input model's input from the request.
func PredictTensor(req *PredictRequest, spec TensorSpec) (Tensor, error) {
	if len(spec.Shape) == 0 {
		return Tensor{}, requestErr("input %q is a scalar; use /v2/models/{model}/infer", spec.Name)
	}
	row := spec.Shape[1:] // the shape of one instance
	rowSize, fixed := int64(1), true
	for _, d := range row {
		if d < 0 {
			fixed = false
		} else {
			rowSize *= d
		}
	}
	raw, field := req.Instances, "instances"
	if req.Features != nil && string(req.Features) != "null" {
		raw, field = req.Features, "features"
	}
	hint := rowSize
	if field == "instances" {
		hint = 0 // unknown row count: let the decoder size from the body
	}
	data, nest, err := DecodeData(raw, spec.DType, hint)
	if err != nil {
		return Tensor{}, &fieldError{field: field, err: err}
	}
	var inst []int64 // the shape of what was sent for one instance
	rows := int64(1)
	if field == "features" {
		inst = nest
	} else {
		if len(nest) < 2 {
			if len(nest) == 1 && nest[0] == 0 {
				return Tensor{}, requestErr("instances is empty")
			}
			return Tensor{}, requestErr("instances must be a list of rows ([[x1, ..., xn], ...]); for one row send {\"features\": [x1, ..., xn]}")
		}
		rows, inst = nest[0], nest[1:]
	}
	var shape []int64
	switch {
	case fixed && len(inst) == 1 && inst[0] == rowSize:
		shape = append([]int64{rows}, row...)
	case ShapeFits(row, inst):
		shape = append([]int64{rows}, inst...)
	case fixed:
		return Tensor{}, requestErr("%s: each row must have %d values (input %q takes %v per row), got %v", field, rowSize, spec.Name, row, inst)
	default:
		return Tensor{}, requestErr("%s: each row must have shape %v (input %q, -1 is free), got %v", field, row, spec.Name, inst)
	}
	if n, _ := ShapeSize(shape); n == 0 {
		return Tensor{}, requestErr("%s holds no values", field)
	}
	return Tensor{Name: spec.Name, Shape: shape, Data: data}, nil
}

// fieldError names the request field whose data failed to decode.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// keyValue reads a routing key: a JSON string, or a number as written.
func keyValue(raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch k := v.(type) {
	case string:
		return k, nil
	case float64:
		return string(bytes.TrimSpace(raw)), nil
	}
	return "", fmt.Errorf("must be a string or a number")
}
