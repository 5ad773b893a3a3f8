package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
)

// TestDecodeInferBodySplitsInOrder: the binary data after the JSON header
// goes to the inputs that declare binary_data_size, in input order, JSON
// inputs between them taking none.
func TestDecodeInferBodySplitsInOrder(t *testing.T) {
	header := `{"inputs":[` +
		`{"name":"a","shape":[2],"datatype":"UINT8","parameters":{"binary_data_size":2}},` +
		`{"name":"b","shape":[1],"datatype":"UINT8","data":[7]},` +
		`{"name":"c","shape":[3],"datatype":"UINT8","parameters":{"binary_data_size":3}}]}`
	body := append([]byte(header), 1, 2, 3, 4, 5)
	req, err := DecodeInferBody(body, strconv.Itoa(len(header)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(req.Inputs[0].Raw, []byte{1, 2}) || req.Inputs[1].Raw != nil || !bytes.Equal(req.Inputs[2].Raw, []byte{3, 4, 5}) {
		t.Fatalf("%+v", req.Inputs)
	}
	specs := []TensorSpec{{"a", UINT8, []int64{-1}}, {"b", UINT8, []int64{-1}}, {"c", UINT8, []int64{-1}}}
	ts, err := InferTensors(req, specs)
	if err != nil {
		t.Fatal(err)
	}
	if got := [][]uint8{ts[0].Data.([]uint8), ts[1].Data.([]uint8), ts[2].Data.([]uint8)}; !bytes.Equal(got[0], []byte{1, 2}) || got[1][0] != 7 || !bytes.Equal(got[2], []byte{3, 4, 5}) {
		t.Fatalf("%v", got)
	}
	// A zero-size binary input takes nothing, and is still binary.
	header = `{"inputs":[{"name":"a","shape":[0],"datatype":"UINT8","parameters":{"binary_data_size":0}}]}`
	req, err = DecodeInferBody([]byte(header), strconv.Itoa(len(header)))
	if err != nil || req.Inputs[0].Raw == nil || len(req.Inputs[0].Raw) != 0 {
		t.Fatalf("%v %+v", err, req)
	}
}

// TestBinaryResponseLayout: the JSON header, binary outputs carrying
// binary_data_size instead of data, then their bytes in output order.
func TestBinaryResponseLayout(t *testing.T) {
	outs := []Tensor{
		{Name: "a", Shape: []int64{2}, Data: []int16{1, -2}},
		{Name: "b", Shape: []int64{1}, Data: []float32{0.5}},
		{Name: "c", Shape: []int64{2}, Data: [][]byte{[]byte("xy"), {}}},
	}
	binary := func(name string) bool { return name != "b" }
	b, n := AppendInferResponseBinary([]byte("prefix"), "m", "1", "id-1", outs, binary)
	b = b[len("prefix"):]
	wantHeader := `{"model_name":"m","model_version":"1","id":"id-1","outputs":[` +
		`{"name":"a","shape":[2],"datatype":"INT16","parameters":{"binary_data_size":4}},` +
		`{"name":"b","shape":[1],"datatype":"FP32","data":[0.5]},` +
		`{"name":"c","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":10}}]}`
	if n != len(wantHeader) || string(b[:n]) != wantHeader {
		t.Fatalf("header (%d bytes)\n got %s\nwant %s", n, b[:n], wantHeader)
	}
	if !json.Valid(b[:n]) {
		t.Fatal("header is not JSON")
	}
	wantData := []byte{0x01, 0x00, 0xfe, 0xff, 2, 0, 0, 0, 'x', 'y', 0, 0, 0, 0}
	if !bytes.Equal(b[n:], wantData) {
		t.Fatalf("data % x, want % x", b[n:], wantData)
	}
}

func TestBinaryOutputsParameters(t *testing.T) {
	req := &InferRequest{
		Parameters: map[string]any{"binary_data_output": true},
		Outputs:    []InferOutputRequest{{Name: "x", Parameters: map[string]any{"binary_data": false}}, {Name: "y"}},
	}
	binary, err := BinaryOutputs(req)
	if err != nil || binary("x") || !binary("y") || !binary("z") {
		t.Fatalf("%v", err)
	}
	req = &InferRequest{Outputs: []InferOutputRequest{{Name: "x", Parameters: map[string]any{"binary_data": true}}, {Name: "y"}}}
	if binary, err = BinaryOutputs(req); err != nil || !binary("x") || binary("y") {
		t.Fatalf("%v", err)
	}
	for _, req := range []*InferRequest{
		{Parameters: map[string]any{"binary_data_output": "true"}},
		{Outputs: []InferOutputRequest{{Name: "x", Parameters: map[string]any{"binary_data": nil}}}},
	} {
		if _, err := BinaryOutputs(req); !errors.Is(err, ErrRequest) {
			t.Errorf("%+v: %v", req, err)
		}
	}
}

var binarySeeds = []struct {
	header string
	data   []byte
	hl     string
}{
	{`{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}`, []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}, ""},
	{`{"inputs":[{"name":"x","shape":[3],"datatype":"BOOL","parameters":{"binary_data_size":3}},{"name":"y","shape":[1],"datatype":"INT64","data":[5]}]}`, []byte{1, 0, 1}, ""},
	{`{"inputs":[{"name":"x","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":9}}]}`, []byte{1, 0, 0, 0, 'a', 0, 0, 0, 0}, ""},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP16","parameters":{"binary_data_size":2}}],"outputs":[{"name":"y","parameters":{"binary_data":true}}]}`, []byte{0, 0x3c}, ""},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`, []byte{1, 2, 3}, ""},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}`, []byte{1, 2, 3, 4}, "-1"},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, nil, "9999"},
	{`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, nil, "-"},
}

// FuzzInferBinary: whatever the body and Inference-Header-Content-Length,
// decoding either fails with a 400-class error or yields inputs whose
// tensors decode (or fail the same way) for a model taking exactly what the
// request declares; binary inputs round-trip through AppendRaw.
func FuzzInferBinary(f *testing.F) {
	for _, s := range binarySeeds {
		hl := s.hl
		switch hl {
		case "":
			hl = strconv.Itoa(len(s.header))
		case "-":
			hl = ""
		}
		f.Add(append([]byte(s.header), s.data...), hl)
	}
	f.Fuzz(func(t *testing.T, body []byte, hl string) {
		req, err := DecodeInferBody(body, hl)
		if err != nil {
			if !errors.Is(err, ErrRequest) {
				t.Fatalf("not a request error: %v", err)
			}
			return
		}
		if _, err := BinaryOutputs(req); err != nil && !errors.Is(err, ErrRequest) {
			t.Fatalf("not a request error: %v", err)
		}
		var specs []TensorSpec
		for _, in := range req.Inputs {
			specs = append(specs, TensorSpec{Name: in.Name, DType: DType(in.Datatype), Shape: in.Shape})
		}
		ts, err := InferTensors(req, specs)
		if err != nil {
			if !errors.Is(err, ErrRequest) && !errors.Is(err, ErrBadInput) && !errors.Is(err, ErrData) {
				t.Fatalf("not a 400: %v", err)
			}
			return
		}
		for i, tn := range ts {
			if raw := req.Inputs[i].Raw; raw != nil && !bytes.Equal(AppendRaw(nil, tn), raw) {
				t.Fatalf("input %q does not round-trip", tn.Name)
			}
		}
	})
}
