package grpcwire

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/wire"
	"google.golang.org/protobuf/proto"
)

type input = grpcapi.ModelInferRequest_InferInputTensor

// request is a request of the given inputs, with raw contents when raw is
// not nil.
func request(raw [][]byte, in ...*input) *grpcapi.ModelInferRequest {
	return &grpcapi.ModelInferRequest{ModelName: "m", Inputs: in, RawInputContents: raw}
}

// decode is CheckFraming, then Inputs for the model specs describe.
func decode(req *grpcapi.ModelInferRequest, specs ...wire.TensorSpec) ([]wire.Tensor, error) {
	if err := CheckFraming(req); err != nil {
		return nil, err
	}
	return Inputs(req, specs)
}

// wantErr fails unless err is target with exactly the message msg.
func wantErr(t *testing.T, err, target error, msg string) {
	t.Helper()
	if err == nil || !errors.Is(err, target) || err.Error() != msg {
		t.Errorf("got %v, want %v with the message %q", err, target, msg)
	}
}

// Every datatype, through typed contents (both ways, FP16 and BF16 having
// none) and raw contents (both ways), unchanged.
func TestEveryDatatype(t *testing.T) {
	cases := []struct {
		d        wire.DType
		contents *grpcapi.InferTensorContents
		data     any
	}{
		{wire.BOOL, &grpcapi.InferTensorContents{BoolContents: []bool{true, false, true, true}}, []bool{true, false, true, true}},
		{wire.INT8, &grpcapi.InferTensorContents{IntContents: []int32{-128, 0, 1, 127}}, []int8{-128, 0, 1, 127}},
		{wire.INT16, &grpcapi.InferTensorContents{IntContents: []int32{-32768, 0, 1, 32767}}, []int16{-32768, 0, 1, 32767}},
		{wire.INT32, &grpcapi.InferTensorContents{IntContents: []int32{math.MinInt32, 0, 1, math.MaxInt32}}, []int32{math.MinInt32, 0, 1, math.MaxInt32}},
		{wire.INT64, &grpcapi.InferTensorContents{Int64Contents: []int64{math.MinInt64, 0, 1, math.MaxInt64}}, []int64{math.MinInt64, 0, 1, math.MaxInt64}},
		{wire.UINT8, &grpcapi.InferTensorContents{UintContents: []uint32{0, 1, 200, 255}}, []uint8{0, 1, 200, 255}},
		{wire.UINT16, &grpcapi.InferTensorContents{UintContents: []uint32{0, 1, 200, 65535}}, []uint16{0, 1, 200, 65535}},
		{wire.UINT32, &grpcapi.InferTensorContents{UintContents: []uint32{0, 1, 200, math.MaxUint32}}, []uint32{0, 1, 200, math.MaxUint32}},
		{wire.UINT64, &grpcapi.InferTensorContents{Uint64Contents: []uint64{0, 1, 200, math.MaxUint64}}, []uint64{0, 1, 200, math.MaxUint64}},
		{wire.FP32, &grpcapi.InferTensorContents{Fp32Contents: []float32{-1.5, 0, 1e-30, 3.25}}, []float32{-1.5, 0, 1e-30, 3.25}},
		{wire.FP64, &grpcapi.InferTensorContents{Fp64Contents: []float64{-1.5, 0, 1e-300, 3.25}}, []float64{-1.5, 0, 1e-300, 3.25}},
		{wire.BYTES, &grpcapi.InferTensorContents{BytesContents: [][]byte{[]byte("a"), {}, []byte("h\xc3\xa9llo"), []byte("x y")}}, [][]byte{[]byte("a"), {}, []byte("h\xc3\xa9llo"), []byte("x y")}},
		{wire.FP16, nil, []wire.Float16{0x3c00, 0, 0xc000, 0x7bff}},
		{wire.BF16, nil, []wire.BFloat16{0x3f80, 0, 0xc000, 0x7f7f}},
	}
	shape := []int64{2, 2}
	for _, tc := range cases {
		t.Run(string(tc.d), func(t *testing.T) {
			spec := wire.TensorSpec{Name: "x", DType: tc.d, Shape: []int64{-1, 2}}
			want := wire.Tensor{Name: "x", Shape: shape, Data: tc.data}

			// Typed contents.
			in := &input{Name: "x", Datatype: string(tc.d), Shape: shape, Contents: tc.contents}
			if tc.contents == nil {
				in.Contents = &grpcapi.InferTensorContents{}
				_, err := decode(request(nil, in), spec)
				wantErr(t, err, wire.ErrRequest, `input "x": `+string(tc.d)+` has no typed contents: send it in raw_input_contents`)
				if c, ok := ToContents(tc.data); ok || c != nil {
					t.Errorf("ToContents: got %v, want none", c)
				}
			} else {
				got, err := decode(request(nil, in), spec)
				if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
					t.Fatalf("typed in: got %v %v, want %v", got, err, want)
				}
				c, ok := ToContents(tc.data)
				if !ok || !proto.Equal(c, tc.contents) {
					t.Errorf("ToContents: got %v, want %v", c, tc.contents)
				}
				outs, raw := Outputs([]wire.Tensor{want}, false)
				if raw != nil || len(outs) != 1 || outs[0].Name != "x" || outs[0].Datatype != string(tc.d) || !reflect.DeepEqual(outs[0].Shape, shape) || !proto.Equal(outs[0].Contents, tc.contents) {
					t.Errorf("typed out: got %v, raw %x", outs, raw)
				}
			}

			// Raw contents.
			rawIn := wire.AppendRaw(nil, want)
			in = &input{Name: "x", Datatype: string(tc.d), Shape: shape}
			got, err := decode(request([][]byte{rawIn}, in), spec)
			if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Fatalf("raw in: got %v %v, want %v", got, err, want)
			}
			outs, raw := Outputs(got, true)
			if len(outs) != 1 || outs[0].Contents != nil || outs[0].Datatype != string(tc.d) || len(raw) != 1 || string(raw[0]) != string(rawIn) {
				t.Errorf("raw out: got %v, raw %x, want %x", outs, raw, rawIn)
			}
		})
	}
}

// The 32-bit fields carry the narrower integers, each value range-checked.
func TestNarrowRange(t *testing.T) {
	cases := []struct {
		d   wire.DType
		c   *grpcapi.InferTensorContents
		msg string
	}{
		{wire.INT8, &grpcapi.InferTensorContents{IntContents: []int32{1, 128}}, "element 1 is 128, out of the range [-128, 127] of the datatype"},
		{wire.INT8, &grpcapi.InferTensorContents{IntContents: []int32{-129, 0}}, "element 0 is -129, out of the range [-128, 127] of the datatype"},
		{wire.INT16, &grpcapi.InferTensorContents{IntContents: []int32{32768, 0}}, "element 0 is 32768, out of the range [-32768, 32767] of the datatype"},
		{wire.INT16, &grpcapi.InferTensorContents{IntContents: []int32{0, -32769}}, "element 1 is -32769, out of the range [-32768, 32767] of the datatype"},
		{wire.UINT8, &grpcapi.InferTensorContents{UintContents: []uint32{255, 256}}, "element 1 is 256, out of the range [0, 255] of the datatype"},
		{wire.UINT16, &grpcapi.InferTensorContents{UintContents: []uint32{65536, 1}}, "element 0 is 65536, out of the range [0, 65535] of the datatype"},
	}
	for _, tc := range cases {
		t.Run(string(tc.d), func(t *testing.T) {
			_, err := FromContents("x", tc.d, []int64{2}, tc.c)
			wantErr(t, err, wire.ErrData, `input "x": invalid tensor data: `+tc.msg)
		})
	}
}

// What the framing refuses, before any model is looked at: every error an
// ErrRequest whose message is what to fix.
func TestCheckFraming(t *testing.T) {
	fp32 := func(f func(in *input)) *input {
		in := &input{Name: "x", Datatype: "FP32", Shape: []int64{1, 2}, Contents: &grpcapi.InferTensorContents{Fp32Contents: []float32{1, 2}}}
		if f != nil {
			f(in)
		}
		return in
	}
	bare := fp32(func(in *input) { in.Contents = nil })
	raw := [][]byte{make([]byte, 8)}
	cases := []struct {
		name string
		req  *grpcapi.ModelInferRequest
		msg  string
	}{
		{"no inputs", request(nil), "inputs is missing or empty"},
		{"raw count mismatch", request(raw, bare, fp32(func(in *input) { in.Name = "y"; in.Contents = nil })), "raw_input_contents has 1 entries for 2 inputs: send one per input, in the order of inputs"},
		{"no name", request(nil, fp32(func(in *input) { in.Name = "" })), "inputs[0]: name is missing"},
		{"no datatype", request(nil, fp32(func(in *input) { in.Datatype = "" })), `input "x": datatype is missing`},
		{"unknown datatype", request(nil, fp32(func(in *input) { in.Datatype = "FLOAT" })), `input "x": unknown datatype "FLOAT" (want one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, FP64, BF16, BYTES)`},
		{"no shape", request(nil, fp32(func(in *input) { in.Shape = nil })), `input "x": shape is missing`},
		{"raw and typed", request(raw, fp32(nil)), `input "x": has contents while the request has raw_input_contents: send every input one way`},
		{"no data", request(nil, bare), `input "x": no data: set its contents, or raw_input_contents for every input`},
		{"negative dimension", request(nil, fp32(func(in *input) { in.Shape = []int64{-1, 2} })), `input "x": shape [-1 2] has a negative or too large dimension`},
		{"too large", request(nil, fp32(func(in *input) { in.Shape = []int64{1 << 20, 1 << 20} })), `input "x": shape [1048576 1048576] has a negative or too large dimension`},
		{"output without a name", &grpcapi.ModelInferRequest{Inputs: []*input{fp32(nil)}, Outputs: []*grpcapi.ModelInferRequest_InferRequestedOutputTensor{{}}}, "outputs: an entry has no name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, CheckFraming(tc.req), wire.ErrRequest, tc.msg)
		})
	}
	if err := CheckFraming(request(nil, fp32(nil))); err != nil {
		t.Errorf("typed: %v", err)
	}
	if err := CheckFraming(request(raw, bare)); err != nil {
		t.Errorf("raw: %v", err)
	}
}

// What Inputs refuses for a model, with the errors the HTTP codecs give
// for the same faults.
func TestInputsErrors(t *testing.T) {
	specs := []wire.TensorSpec{{Name: "x", DType: wire.FP32, Shape: []int64{-1, 2}}, {Name: "b", DType: wire.UINT8, Shape: []int64{-1}}}
	fp32 := func(shape []int64, c *grpcapi.InferTensorContents) *input {
		return &input{Name: "x", Datatype: "FP32", Shape: shape, Contents: c}
	}
	cases := []struct {
		name   string
		req    *grpcapi.ModelInferRequest
		target error
		msg    string
	}{
		{"unknown input", request(nil, &input{Name: "z", Datatype: "FP32", Shape: []int64{1}, Contents: &grpcapi.InferTensorContents{}}), wire.ErrBadInput, `bad input: unknown input "z" (the model takes "x", "b")`},
		{"datatype mismatch", request(nil, &input{Name: "x", Datatype: "FP64", Shape: []int64{1, 2}, Contents: &grpcapi.InferTensorContents{Fp64Contents: []float64{1, 2}}}), wire.ErrBadInput, `bad input: input "x": datatype FP64 does not match the model's FP32`},
		{"wrong field", request(nil, fp32([]int64{1, 2}, &grpcapi.InferTensorContents{Fp64Contents: []float64{1, 2}})), wire.ErrRequest, `input "x": datatype FP32 takes fp32_contents, got fp64_contents`},
		{"the right field and another", request(nil, fp32([]int64{1, 2}, &grpcapi.InferTensorContents{Fp32Contents: []float32{1, 2}, IntContents: []int32{1}})), wire.ErrRequest, `input "x": datatype FP32 takes fp32_contents, got int_contents`},
		{"too few values", request(nil, fp32([]int64{2, 2}, &grpcapi.InferTensorContents{Fp32Contents: []float32{1, 2, 3}})), wire.ErrRequest, `input "x": shape [2 2] needs 4 values, fp32_contents has 3`},
		{"too many values", request(nil, fp32([]int64{1, 2}, &grpcapi.InferTensorContents{Fp32Contents: []float32{1, 2, 3}})), wire.ErrRequest, `input "x": shape [1 2] needs 2 values, fp32_contents has 3`},
		{"raw of the wrong size", request([][]byte{make([]byte, 12)}, fp32([]int64{2, 2}, nil)), wire.ErrBadInput, `bad input: input "x": FP32 data of shape [2 2] is 16 bytes (4 × 4), got 12`},
		{"NaN", request(nil, fp32([]int64{1, 2}, &grpcapi.InferTensorContents{Fp32Contents: []float32{1, float32(math.NaN())}})), wire.ErrData, `input "x": invalid tensor data: element 1 is NaN or infinite (impute missing values before calling)`},
		{"raw infinity", request([][]byte{wire.AppendRaw(nil, wire.Tensor{Data: []float32{float32(math.Inf(-1)), 0}})}, fp32([]int64{1, 2}, nil)), wire.ErrData, `input "x": invalid tensor data: element 0 is NaN or infinite (impute missing values before calling)`},
		{"no values", request(nil, fp32([]int64{0, 2}, &grpcapi.InferTensorContents{})), wire.ErrRequest, `input "x": shape [0 2] holds no values`},
		{"raw, no values", request([][]byte{{}}, fp32([]int64{0, 2}, nil)), wire.ErrRequest, `input "x": shape [0 2] holds no values`},
		{"out of range", request(nil, &input{Name: "b", Datatype: "UINT8", Shape: []int64{1}, Contents: &grpcapi.InferTensorContents{UintContents: []uint32{300}}}), wire.ErrData, `input "b": invalid tensor data: element 0 is 300, out of the range [0, 255] of the datatype`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decode(tc.req, specs...)
			wantErr(t, err, tc.target, tc.msg)
		})
	}

	// Two inputs, raw, in the request's order.
	req := request([][]byte{wire.AppendRaw(nil, wire.Tensor{Data: []uint8{7}}), wire.AppendRaw(nil, wire.Tensor{Data: []float32{1, 2}})},
		&input{Name: "b", Datatype: "UINT8", Shape: []int64{1}}, fp32([]int64{1, 2}, nil))
	got, err := decode(req, specs...)
	want := []wire.Tensor{{Name: "b", Shape: []int64{1}, Data: []uint8{7}}, {Name: "x", Shape: []int64{1, 2}, Data: []float32{1, 2}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("two raw inputs: got %v %v, want %v", got, err, want)
	}
}

func TestOutputNames(t *testing.T) {
	specs := []wire.TensorSpec{{Name: "label", DType: wire.INT64}, {Name: "probabilities", DType: wire.FP32}}
	outputs := func(names ...string) *grpcapi.ModelInferRequest {
		req := &grpcapi.ModelInferRequest{}
		for _, n := range names {
			req.Outputs = append(req.Outputs, &grpcapi.ModelInferRequest_InferRequestedOutputTensor{Name: n})
		}
		return req
	}
	if got, err := OutputNames(outputs(), specs); got != nil || err != nil {
		t.Errorf("none asked: got %v %v, want all (nil)", got, err)
	}
	if got, err := OutputNames(outputs("probabilities", "label"), specs); err != nil || !reflect.DeepEqual(got, []string{"probabilities", "label"}) {
		t.Errorf("both asked: got %v %v", got, err)
	}
	_, err := OutputNames(outputs("label", "score"), specs)
	wantErr(t, err, wire.ErrBadInput, `bad input: unknown output "score" (the model has "label", "probabilities")`)
}

// An output typed contents cannot carry makes the whole answer raw.
func TestOutputsFallBackToRaw(t *testing.T) {
	outs := []wire.Tensor{
		{Name: "label", Shape: []int64{2}, Data: []int64{0, 1}},
		{Name: "half", Shape: []int64{1, 2}, Data: []wire.Float16{0x3c00, 0xc000}},
		{Name: "scores", Shape: []int64{2}, Data: []float32{0.25, 0.75}},
	}
	for _, asked := range []bool{false, true} {
		tensors, raw := Outputs(outs, asked)
		if len(tensors) != len(outs) || len(raw) != len(outs) {
			t.Fatalf("raw asked %v: got %v, raw %x", asked, tensors, raw)
		}
		for i, o := range outs {
			if tensors[i].Name != o.Name || tensors[i].Datatype != string(o.DType()) || !reflect.DeepEqual(tensors[i].Shape, o.Shape) || tensors[i].Contents != nil {
				t.Errorf("raw asked %v: output %d is %v", asked, i, tensors[i])
			}
			back, err := wire.FromRaw(o.Name, o.DType(), o.Shape, raw[i])
			if err != nil || !reflect.DeepEqual(back, o) {
				t.Errorf("raw asked %v: output %d's raw contents read back as %v %v", asked, i, back, err)
			}
		}
	}
	tensors, raw := Outputs([]wire.Tensor{outs[0], outs[2]}, false)
	if raw != nil || len(tensors) != 2 || !reflect.DeepEqual(tensors[0].Contents.GetInt64Contents(), []int64{0, 1}) || !reflect.DeepEqual(tensors[1].Contents.GetFp32Contents(), []float32{0.25, 0.75}) {
		t.Errorf("typed outputs: got %v, raw %x", tensors, raw)
	}
}
