package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// The binary tensor data extension of the HTTP/REST infer API (Triton's
// docs/protocol/extension_binary_data.md; KServe's Open Inference Protocol
// takes it up as its binary data extension):
//
//   - the body is the JSON request of Inference-Header-Content-Length bytes,
//     then the binary data of the inputs whose "parameters" carry
//     "binary_data_size" (int64, bytes), one after the other in the order of
//     "inputs", nothing between or after them; such an input has no "data";
//   - an output of "outputs" with "parameters": {"binary_data": true}, or
//     every output when the request's "parameters" carry
//     "binary_data_output": true (an output's own "binary_data" overrides
//     it), is answered as binary data: its JSON carries
//     "parameters": {"binary_data_size": N} and no "data", and its N bytes
//     follow the JSON response in the order of "outputs"; the response then
//     carries Inference-Header-Content-Length too (and, from Triton,
//     Content-Type: application/octet-stream);
//   - binary data is the raw form of raw.go: little-endian, row-major,
//     BOOL one byte, BYTES a 4-byte length before each element.

// InferHeaderContentLength is the HTTP header giving the length of the JSON
// part of a body that carries binary tensor data.
const InferHeaderContentLength = "Inference-Header-Content-Length"

// The parameters of the extension.
const (
	paramBinarySize   = "binary_data_size"
	paramBinary       = "binary_data"
	paramBinaryOutput = "binary_data_output"
)

// DecodeInferBody parses an infer request body. With headerLength empty
// (no Inference-Header-Content-Length header) the body is JSON alone, as
// DecodeInferRequest reads it; otherwise headerLength is the header's value,
// the length of the JSON request at the start of the body, and the binary
// data after it is handed, in order, to the inputs that declare
// binary_data_size (their Raw). Errors wrap ErrRequest.
func DecodeInferBody(body []byte, headerLength string) (*InferRequest, error) {
	if headerLength == "" {
		req, err := decodeInferJSON(body)
		if err != nil {
			if name, ok := declaresBinary(body); ok {
				return nil, requestErr("input %q: has parameters.binary_data_size but the request has no %s header (the length of its JSON part)", name, InferHeaderContentLength)
			}
			return nil, err
		}
		for _, in := range req.Inputs {
			if _, ok := in.Parameters[paramBinarySize]; ok {
				return nil, requestErr("input %q: has parameters.binary_data_size but the request has no %s header (the length of its JSON part)", in.Name, InferHeaderContentLength)
			}
		}
		if err := checkInputs(req, false); err != nil {
			return nil, err
		}
		return req, nil
	}
	n, err := parseHeaderLength(headerLength, len(body))
	if err != nil {
		return nil, err
	}
	req, err := decodeInferJSON(body[:n])
	if err != nil {
		return nil, err
	}
	rest := body[n:]
	off := 0
	for i := range req.Inputs {
		in := &req.Inputs[i]
		v, ok := in.Parameters[paramBinarySize]
		if !ok {
			continue
		}
		size, err := paramSize(in.Name, v)
		if err != nil {
			return nil, err
		}
		if size > int64(len(rest)-off) {
			return nil, requestErr("input %q: binary_data_size is %d, but only %d bytes of binary data remain after the inputs before it (%d after the %d-byte JSON header)", in.Name, size, len(rest)-off, len(rest), n)
		}
		end := off + int(size)
		in.Raw = rest[off:end:end]
		if in.Raw == nil {
			in.Raw = []byte{}
		}
		off = end
	}
	if off != len(rest) {
		return nil, requestErr("the body has %d bytes after the %d-byte JSON header, the inputs' binary_data_size add up to %d", len(rest), n, off)
	}
	if err := checkInputs(req, true); err != nil {
		return nil, err
	}
	return req, nil
}

// declaresBinary reports, for a body that is no JSON request alone, whether
// it starts with one that declares binary data (a client that left out
// Inference-Header-Content-Length), and the first input that does.
func declaresBinary(body []byte) (string, bool) {
	var req InferRequest
	if json.NewDecoder(bytes.NewReader(body)).Decode(&req) != nil {
		return "", false
	}
	for _, in := range req.Inputs {
		if _, ok := in.Parameters[paramBinarySize]; ok {
			return in.Name, true
		}
	}
	return "", false
}

// parseHeaderLength reads Inference-Header-Content-Length: a decimal
// number of bytes, at most the body's length.
func parseHeaderLength(v string, bodyLen int) (int, error) {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, requestErr("%s must be a non-negative whole number of bytes, got %q", InferHeaderContentLength, clip([]byte(v)))
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > int64(bodyLen) {
		return 0, requestErr("%s is %s but the body has only %d bytes", InferHeaderContentLength, clip([]byte(v)), bodyLen)
	}
	return int(n), nil
}

// paramSize reads a binary_data_size parameter: a JSON number that is a
// non-negative integer.
func paramSize(name string, v any) (int64, error) {
	f, ok := v.(float64)
	if !ok || f < 0 || f != math.Trunc(f) || f > math.MaxInt64/2 {
		return 0, requestErr("input %q: parameters.binary_data_size must be a non-negative whole number of bytes, got %s", name, paramString(v))
	}
	return int64(f), nil
}

// paramString shows a parameter's value in a message.
func paramString(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case nil:
		return "null"
	}
	return clip(fmt.Appendf(nil, "%v", v))
}

// boolParam reads a boolean parameter (false when absent).
func boolParam(params map[string]any, key, where string) (bool, error) {
	v, ok := params[key]
	if !ok {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, requestErr("%sparameters.%s must be true or false, got %s", where, key, paramString(v))
	}
	return b, nil
}

// BinaryOutputs checks the request's binary_data_output and each output's
// binary_data (booleans) and returns which outputs, by name, are to be
// answered as binary data. Errors wrap ErrRequest.
func BinaryOutputs(req *InferRequest) (func(name string) bool, error) {
	all, err := boolParam(req.Parameters, paramBinaryOutput, "")
	if err != nil {
		return nil, err
	}
	var own map[string]bool
	for _, o := range req.Outputs {
		if _, ok := o.Parameters[paramBinary]; !ok {
			continue
		}
		b, err := boolParam(o.Parameters, paramBinary, fmt.Sprintf("output %q: ", o.Name))
		if err != nil {
			return nil, err
		}
		if own == nil {
			own = make(map[string]bool)
		}
		own[o.Name] = b
	}
	return func(name string) bool {
		if b, ok := own[name]; ok {
			return b
		}
		return all
	}, nil
}

// AppendInferBinaryHeader appends the JSON part of a binary answer (see
// AppendInferResponseBinary): a writer that sends the outputs' data from
// their own memory (RawView) after it copies no tensor.
func AppendInferBinaryHeader(b []byte, model, version, id string, outs []Tensor, binary func(name string) bool) []byte {
	return appendInferJSON(b, model, version, id, outs, binary)
}

// AppendInferResponseBinary appends the answer of /v2 infer with the
// outputs for which binary(name) holds as binary data: the JSON response,
// those outputs carrying "parameters":{"binary_data_size":N} instead of
// "data", then their raw data in the order of outs. headerLen is the
// length of the JSON part, the response's Inference-Header-Content-Length.
func AppendInferResponseBinary(b []byte, model, version, id string, outs []Tensor, binary func(name string) bool) (_ []byte, headerLen int) {
	start := len(b)
	b = AppendInferBinaryHeader(b, model, version, id, outs, binary)
	headerLen = len(b) - start
	for _, o := range outs {
		if binary(o.Name) {
			b = AppendRaw(b, o)
		}
	}
	return b, headerLen
}
