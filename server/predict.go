package server

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/serving"
)

// The /predict API: the shape simple Python model servers use.
//
//	{"features": [x1, ..., xn]}            one row
//	{"instances": [[...], [...], ...]}     a batch
//
// The model comes from ?model= (else the default model) and ?version=
// pins a version. The answer holds the first output's values, one per row,
// as "prediction", and every output by name, one entry per row.

type predictRequest struct {
	Features  json.RawMessage `json:"features"`
	Instances json.RawMessage `json:"instances"`
	key       string          // the routing key, from the configured body field
}

type predictResponse struct {
	Model      string                     `json:"model"`
	Version    string                     `json:"version"`
	Prediction json.RawMessage            `json:"prediction"`
	Outputs    map[string]json.RawMessage `json:"outputs"`
}

// decodePredictRequest parses a /predict body. keyField, when set, names
// a top-level field that carries the routing key (a string or a number).
func decodePredictRequest(body []byte, keyField string) (*predictRequest, error) {
	var req predictRequest
	if f, i, ok := fastPredictFraming(body, keyField); ok {
		req.Features, req.Instances = f, i
	} else if keyField == "" {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, badRequest("malformed JSON: %s; send {\"features\": [...]} for one row or {\"instances\": [[...], ...]} for a batch", jsonErr(err))
		}
		if dec.More() {
			return nil, badRequest("malformed JSON: unexpected data after the request object")
		}
	} else {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, badRequest("malformed JSON: %s; send {\"features\": [...]} for one row or {\"instances\": [[...], ...]} for a batch", jsonErr(err))
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
					return nil, badRequest("field %q (the routing key): %v", keyField, err)
				}
				req.key = key
			default:
				return nil, badRequest("malformed JSON: unknown field %q; send {\"features\": [...]} for one row or {\"instances\": [[...], ...]} for a batch", k)
			}
		}
	}
	hasF := len(req.Features) > 0 && string(req.Features) != "null"
	hasI := len(req.Instances) > 0 && string(req.Instances) != "null"
	switch {
	case hasF && hasI:
		return nil, badRequest(`send either "features" (one row) or "instances" (a batch), not both`)
	case !hasF && !hasI:
		return nil, badRequest(`the body needs "features" (one row: [x1, ..., xn]) or "instances" (a batch: [[...], ...])`)
	}
	return &req, nil
}

// predictTensor builds the model's single input from the request.
func predictTensor(req *predictRequest, spec serving.TensorSpec) (serving.Tensor, error) {
	if len(spec.Shape) == 0 {
		return serving.Tensor{}, badRequest("input %q is a scalar; use /v2/models/{model}/infer", spec.Name)
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
	data, nest, err := decodeData(raw, spec.DType, hint)
	if err != nil {
		return serving.Tensor{}, wrapField(field, err)
	}
	var inst []int64 // the shape of what was sent for one instance
	rows := int64(1)
	if field == "features" {
		inst = nest
	} else {
		if len(nest) < 2 {
			if len(nest) == 1 && nest[0] == 0 {
				return serving.Tensor{}, badRequest("instances is empty")
			}
			return serving.Tensor{}, badRequest("instances must be a list of rows ([[x1, ..., xn], ...]); for one row send {\"features\": [x1, ..., xn]}")
		}
		rows, inst = nest[0], nest[1:]
	}
	var shape []int64
	switch {
	case fixed && len(inst) == 1 && inst[0] == rowSize:
		shape = append([]int64{rows}, row...)
	case serving.ShapeFits(row, inst):
		shape = append([]int64{rows}, inst...)
	case fixed:
		return serving.Tensor{}, badRequest("%s: each row must have %d values (input %q takes %v per row), got %v", field, rowSize, spec.Name, row, inst)
	default:
		return serving.Tensor{}, badRequest("%s: each row must have shape %v (input %q, -1 is free), got %v", field, row, spec.Name, inst)
	}
	if n, _ := serving.ShapeSize(shape); n == 0 {
		return serving.Tensor{}, badRequest("%s holds no values", field)
	}
	return serving.Tensor{Name: spec.Name, Shape: shape, Data: data}, nil
}

func wrapField(field string, err error) error {
	return &fieldError{field: field, err: err}
}

type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.field + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

func (s *Server) predict(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	req, err := decodePredictRequest(body, s.opts.KeyField)
	if err != nil {
		return err
	}
	key := c.Request().Header.Get(KeyHeader)
	if key == "" {
		key = req.key
	}
	sess, outs, err := s.answer(c, c.QueryParam("model"), c.QueryParam("version"), key, func(sess *serving.Session) ([]serving.Tensor, []string, error) {
		if len(sess.Inputs()) != 1 {
			return nil, nil, badRequest("model %s takes %d inputs (%s); /predict serves single-input models: use POST /v2/models/%s/infer", sess.Name(), len(sess.Inputs()), inputNames(sess), sess.Name())
		}
		in, err := predictTensor(req, sess.Inputs()[0])
		if err != nil {
			return nil, nil, err
		}
		return []serving.Tensor{in}, nil, nil
	})
	if err != nil {
		return err
	}
	defer sess.Release()
	return writePredict(c, sess.Name(), sess.Version(), outs)
}

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
