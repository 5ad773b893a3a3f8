package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/drift"
	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// grpcClient serves g's gRPC front end on a free loopback port and
// returns a connection to it; both end with the test.
func (g *gateway) grpcClient(opts GRPCOptions) *grpc.ClientConn {
	g.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		g.t.Fatal(err)
	}
	gs := g.srv.GRPCServer(opts)
	go func() { _ = gs.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() {
		conn.Close()
		gs.Stop()
	})
	return conn
}

func grpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails unless err is a gRPC status with code and a message
// containing msg.
func wantCode(t *testing.T, what string, err error, code codes.Code, msg string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Errorf("%s: got %v, want %s containing %q", what, err, code, msg)
	}
}

// fp32Input is a typed FP32 input of rows × len(rows[0]).
func fp32Input(name string, rows ...[]float64) *grpcapi.ModelInferRequest_InferInputTensor {
	var data []float32
	for _, r := range rows {
		for _, x := range r {
			data = append(data, float32(x))
		}
	}
	return &grpcapi.ModelInferRequest_InferInputTensor{
		Name: name, Datatype: "FP32", Shape: []int64{int64(len(rows)), int64(len(rows[0]))},
		Contents: &grpcapi.InferTensorContents{Fp32Contents: data},
	}
}

func rawFP32(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func TestGRPCHealthAndMetadata(t *testing.T) {
	g := newGateway(t, false, []pushSpec{{"breast-cancer", "1", fakeDemo()}})
	conn := g.grpcClient(GRPCOptions{})
	c := grpcapi.NewGRPCInferenceServiceClient(conn)
	h := grpc_health_v1.NewHealthClient(conn)
	ctx := grpcCtx(t)

	check := func(what string, wantReady bool) {
		t.Helper()
		live, err := c.ServerLive(ctx, &grpcapi.ServerLiveRequest{})
		if err != nil || !live.Live {
			t.Fatalf("%s: ServerLive %v %v", what, live, err)
		}
		ready, err := c.ServerReady(ctx, &grpcapi.ServerReadyRequest{})
		if err != nil || ready.Ready != wantReady {
			t.Fatalf("%s: ServerReady %v %v, want ready %v", what, ready, err, wantReady)
		}
		want := grpc_health_v1.HealthCheckResponse_NOT_SERVING
		if wantReady {
			want = grpc_health_v1.HealthCheckResponse_SERVING
		}
		for _, svc := range []string{"", "inference.GRPCInferenceService"} {
			hr, err := h.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: svc})
			if err != nil || hr.Status != want {
				t.Fatalf("%s: health of %q: %v %v, want %s", what, svc, hr, err, want)
			}
		}
	}
	// Before the first sync the model is known but not loaded.
	check("before sync", false)
	mr, err := c.ModelReady(ctx, &grpcapi.ModelReadyRequest{Name: "breast-cancer"})
	if err != nil || mr.Ready {
		t.Fatalf("ModelReady before sync: %v %v", mr, err)
	}
	if err := g.cat.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("synced", true)
	for _, v := range []string{"", "1"} {
		mr, err := c.ModelReady(ctx, &grpcapi.ModelReadyRequest{Name: "breast-cancer", Version: v})
		if err != nil || !mr.Ready {
			t.Fatalf("ModelReady version %q: %v %v", v, mr, err)
		}
	}
	_, err = c.ModelReady(ctx, &grpcapi.ModelReadyRequest{Name: "nope"})
	wantCode(t, "ModelReady of an unknown model", err, codes.NotFound, "nope")
	_, err = c.ModelReady(ctx, &grpcapi.ModelReadyRequest{Name: "breast-cancer", Version: "9"})
	wantCode(t, "ModelReady of an unknown version", err, codes.NotFound, "9")
	_, err = h.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: "other"})
	wantCode(t, "health of an unknown service", err, codes.NotFound, "other")

	sm, err := c.ServerMetadata(ctx, &grpcapi.ServerMetadataRequest{})
	var httpMeta struct{ Extensions []string }
	g.getJSON("GET", "/v2", nil, &httpMeta)
	if err != nil || sm.Name != "modelgate" || sm.Version == "" || !reflect.DeepEqual(sm.Extensions, httpMeta.Extensions) || !slices.Contains(sm.Extensions, "model_configuration") {
		t.Fatalf("ServerMetadata %v %v; HTTP's extensions %v", sm, err, httpMeta.Extensions)
	}
	md, err := c.ModelMetadata(ctx, &grpcapi.ModelMetadataRequest{Name: "breast-cancer"})
	if err != nil {
		t.Fatal(err)
	}
	want := &grpcapi.ModelMetadataResponse{
		Name: "breast-cancer", Versions: []string{"1"}, Platform: "onnx_onnxv1",
		Inputs: []*grpcapi.ModelMetadataResponse_TensorMetadata{{Name: "features", Datatype: "FP32", Shape: []int64{-1, 30}}},
		Outputs: []*grpcapi.ModelMetadataResponse_TensorMetadata{
			{Name: "label", Datatype: "INT64", Shape: []int64{-1}},
			{Name: "probabilities", Datatype: "FP32", Shape: []int64{-1, 2}},
		},
	}
	if !proto.Equal(md, want) {
		t.Fatalf("ModelMetadata\n got %v\nwant %v", md, want)
	}
	_, err = c.ModelMetadata(ctx, &grpcapi.ModelMetadataRequest{Name: "nope"})
	wantCode(t, "ModelMetadata of an unknown model", err, codes.NotFound, "nope")
	_, err = c.ModelMetadata(ctx, &grpcapi.ModelMetadataRequest{})
	wantCode(t, "ModelMetadata without a name", err, codes.InvalidArgument, "name is required")

	// Draining: readiness and health fail at once, liveness stays.
	g.srv.Drain()
	check("draining", false)
}

// A health watcher sees SERVING, then NOT_SERVING when the server drains,
// and its call ends so that it cannot hold up a graceful stop.
func TestGRPCHealthWatchEndsOnDrain(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}})
	h := grpc_health_v1.NewHealthClient(g.grpcClient(GRPCOptions{}))
	w, err := h.Watch(grpcCtx(t), &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := w.Recv(); err != nil || r.Status != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Fatalf("first: %v %v", r, err)
	}
	g.srv.Drain()
	if r, err := w.Recv(); err != nil || r.Status != grpc_health_v1.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("after Drain: %v %v", r, err)
	}
	if r, err := w.Recv(); err == nil {
		t.Fatalf("the watch goes on after the drain: %v", r)
	}
}

// ModelInfer answers as POST /v2/models/{m}/infer does, with typed
// contents for typed inputs and raw_output_contents for raw inputs; on the
// fake demo model and on the real one in ONNX Runtime.
func TestGRPCInfer(t *testing.T) {
	t.Run("fake model", func(t *testing.T) {
		testGRPCInfer(t, newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}}))
	})
	t.Run("demo model on ONNX Runtime", func(t *testing.T) {
		testGRPCInfer(t, newGateway(t, true, []pushSpec{{"breast-cancer", "1", demoModel(t)}}, withORT(t)))
	})
}

func testGRPCInfer(t *testing.T, g *gateway) {
	c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{}))
	ctx := grpcCtx(t)
	// What HTTP answers, for comparison.
	code, httpAns := g.do("POST", "/v2/models/breast-cancer/infer", map[string]any{
		"inputs": []map[string]any{{"name": "features", "shape": []int{2, 30}, "datatype": "FP32", "data": [][]float64{malignant, benign}}},
	})
	if code != 200 {
		t.Fatalf("HTTP infer: %d %v", code, httpAns)
	}
	var httpProbs []float32
	for _, o := range httpAns["outputs"].([]any) {
		if o := o.(map[string]any); o["name"] == "probabilities" {
			for _, x := range o["data"].([]any) {
				httpProbs = append(httpProbs, float32(x.(float64)))
			}
		}
	}

	typed, err := c.ModelInfer(ctx, &grpcapi.ModelInferRequest{
		ModelName: "breast-cancer", Id: "req-1",
		Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", malignant, benign)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if typed.ModelName != "breast-cancer" || typed.ModelVersion != "1" || typed.Id != "req-1" || len(typed.Outputs) != 2 || len(typed.RawOutputContents) != 0 {
		t.Fatalf("typed answer %v", typed)
	}
	label, probs := typed.Outputs[0], typed.Outputs[1]
	if label.Name != "label" || label.Datatype != "INT64" || !reflect.DeepEqual(label.Shape, []int64{2}) || !reflect.DeepEqual(label.Contents.GetInt64Contents(), []int64{0, 1}) {
		t.Fatalf("label %v", label)
	}
	if probs.Name != "probabilities" || probs.Datatype != "FP32" || !reflect.DeepEqual(probs.Shape, []int64{2, 2}) || !reflect.DeepEqual(probs.Contents.GetFp32Contents(), httpProbs) {
		t.Fatalf("probabilities %v, HTTP answered %v", probs, httpProbs)
	}

	// Raw inputs: raw outputs, the same numbers.
	in := fp32Input("features", malignant, benign)
	rawIn := rawFP32(in.Contents.Fp32Contents)
	in.Contents = nil
	raw, err := c.ModelInfer(ctx, &grpcapi.ModelInferRequest{ModelName: "breast-cancer", ModelVersion: "1", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{in}, RawInputContents: [][]byte{rawIn}})
	if err != nil {
		t.Fatal(err)
	}
	if len(raw.RawOutputContents) != 2 || raw.Outputs[0].Contents != nil || raw.Outputs[1].Contents != nil {
		t.Fatalf("raw answer %v", raw)
	}
	gotLabel, err := wire.FromRaw("label", wire.INT64, raw.Outputs[0].Shape, raw.RawOutputContents[0])
	if err != nil || !reflect.DeepEqual(gotLabel.Data, []int64{0, 1}) {
		t.Fatalf("raw label %v %v", gotLabel, err)
	}
	gotProbs, err := wire.FromRaw("probabilities", wire.FP32, raw.Outputs[1].Shape, raw.RawOutputContents[1])
	if err != nil || !reflect.DeepEqual(gotProbs.Data, httpProbs) {
		t.Fatalf("raw probabilities %v %v, HTTP answered %v", gotProbs, err, httpProbs)
	}

	// The outputs asked for, in the order asked.
	one, err := c.ModelInfer(ctx, &grpcapi.ModelInferRequest{
		ModelName: "breast-cancer",
		Inputs:    []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", benign)},
		Outputs:   []*grpcapi.ModelInferRequest_InferRequestedOutputTensor{{Name: "label"}},
	})
	if err != nil || len(one.Outputs) != 1 || one.Outputs[0].Name != "label" || !reflect.DeepEqual(one.Outputs[0].Contents.GetInt64Contents(), []int64{1}) {
		t.Fatalf("label only: %v %v", one, err)
	}
}

// Every datatype modelgate serves goes through typed contents and raw
// contents unchanged (the identity model answers its input).
func TestGRPCEveryDatatype(t *testing.T) {
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
		// No typed contents carry 16-bit floats: raw only, and answered raw.
		{wire.FP16, nil, []wire.Float16{0x3c00, 0, 0xc000, 0x7bff}},
		{wire.BF16, nil, []wire.BFloat16{0x3f80, 0, 0xc000, 0x7f7f}},
	}
	var models []pushSpec
	for _, tc := range cases {
		models = append(models, pushSpec{"id-" + strings.ToLower(string(tc.d)), "1", servingtest.Identity(tc.d, -1, 2)})
	}
	g := newGateway(t, true, models)
	c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{}))
	ctx := grpcCtx(t)
	for _, tc := range cases {
		t.Run(string(tc.d), func(t *testing.T) {
			model := "id-" + strings.ToLower(string(tc.d))
			in := &grpcapi.ModelInferRequest_InferInputTensor{Name: "x", Datatype: string(tc.d), Shape: []int64{2, 2}, Contents: tc.contents}
			typed, err := c.ModelInfer(ctx, &grpcapi.ModelInferRequest{ModelName: model, Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{in}})
			if tc.contents == nil {
				in.Contents = &grpcapi.InferTensorContents{}
				_, err := c.ModelInfer(ctx, &grpcapi.ModelInferRequest{ModelName: model, Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{in}})
				wantCode(t, "typed contents", err, codes.InvalidArgument, "send it in raw_input_contents")
			} else if err != nil {
				t.Fatal(err)
			} else if out := typed.Outputs[0]; out.Name != "y" || out.Datatype != string(tc.d) || !reflect.DeepEqual(out.Shape, []int64{2, 2}) || !proto.Equal(out.Contents, tc.contents) {
				t.Fatalf("typed: got %v, want contents %v", out, tc.contents)
			}
			rawIn := wire.AppendRaw(nil, wire.Tensor{Data: tc.data})
			in = &grpcapi.ModelInferRequest_InferInputTensor{Name: "x", Datatype: string(tc.d), Shape: []int64{2, 2}}
			raw, err := c.ModelInfer(ctx, &grpcapi.ModelInferRequest{ModelName: model, Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{in}, RawInputContents: [][]byte{rawIn}})
			if err != nil {
				t.Fatal(err)
			}
			if len(raw.RawOutputContents) != 1 || string(raw.RawOutputContents[0]) != string(rawIn) || raw.Outputs[0].Contents != nil {
				t.Fatalf("raw: got %v, want %x", raw, rawIn)
			}
		})
	}
}

// Every error has its code and a message that says what to fix.
func TestGRPCInferErrors(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}, {"nan", "1", servingtest.NaN()}, {"i8", "1", servingtest.Identity(wire.INT8, -1)}})
	conn := g.grpcClient(GRPCOptions{})
	c := grpcapi.NewGRPCInferenceServiceClient(conn)
	ctx := grpcCtx(t)
	row := fp32Input("features", malignant)
	raw := rawFP32(row.Contents.Fp32Contents)
	noData := func(in *grpcapi.ModelInferRequest_InferInputTensor) *grpcapi.ModelInferRequest_InferInputTensor {
		in = proto.Clone(in).(*grpcapi.ModelInferRequest_InferInputTensor)
		in.Contents = nil
		return in
	}
	with := func(f func(in *grpcapi.ModelInferRequest_InferInputTensor)) *grpcapi.ModelInferRequest_InferInputTensor {
		in := proto.Clone(row).(*grpcapi.ModelInferRequest_InferInputTensor)
		f(in)
		return in
	}
	inputs := func(in ...*grpcapi.ModelInferRequest_InferInputTensor) []*grpcapi.ModelInferRequest_InferInputTensor {
		return in
	}
	nanRow := with(func(in *grpcapi.ModelInferRequest_InferInputTensor) {
		in.Contents.Fp32Contents[3] = float32(math.NaN())
	})
	cases := []struct {
		name string
		req  *grpcapi.ModelInferRequest
		code codes.Code
		msg  string
	}{
		{"unknown model", &grpcapi.ModelInferRequest{ModelName: "nope", Inputs: inputs(row)}, codes.NotFound, `"nope"`},
		{"unknown version", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", ModelVersion: "7", Inputs: inputs(row)}, codes.NotFound, "7"},
		{"no model name", &grpcapi.ModelInferRequest{Inputs: inputs(row)}, codes.InvalidArgument, "model_name is required"},
		{"no inputs", &grpcapi.ModelInferRequest{ModelName: "breast-cancer"}, codes.InvalidArgument, "inputs is missing"},
		{"no data", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(noData(row))}, codes.InvalidArgument, "no data"},
		{"unknown datatype", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(with(func(in *grpcapi.ModelInferRequest_InferInputTensor) { in.Datatype = "FLOAT" }))}, codes.InvalidArgument, `unknown datatype "FLOAT"`},
		{"wrong datatype", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(with(func(in *grpcapi.ModelInferRequest_InferInputTensor) { in.Datatype = "FP64" }))}, codes.InvalidArgument, "datatype FP64 does not match the model's FP32"},
		{"contents of another type", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(with(func(in *grpcapi.ModelInferRequest_InferInputTensor) { in.Contents.Fp64Contents = []float64{1} }))}, codes.InvalidArgument, "FP32 takes fp32_contents, got fp64_contents"},
		{"too few values", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(with(func(in *grpcapi.ModelInferRequest_InferInputTensor) {
			in.Contents.Fp32Contents = in.Contents.Fp32Contents[:29]
		}))}, codes.InvalidArgument, "needs 30 values, fp32_contents has 29"},
		{"wrong width", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(with(func(in *grpcapi.ModelInferRequest_InferInputTensor) {
			in.Shape = []int64{1, 29}
			in.Contents.Fp32Contents = in.Contents.Fp32Contents[:29]
		}))}, codes.InvalidArgument, "shape [1 29] does not match the model's [-1 30]"},
		{"negative dimension", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(with(func(in *grpcapi.ModelInferRequest_InferInputTensor) { in.Shape = []int64{-1, 30} }))}, codes.InvalidArgument, "negative"},
		{"NaN input", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(nanRow)}, codes.InvalidArgument, "element 3 is NaN"},
		{"unknown input", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(with(func(in *grpcapi.ModelInferRequest_InferInputTensor) { in.Name = "x" }))}, codes.InvalidArgument, `unknown input "x"`},
		{"unknown output", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(row), Outputs: []*grpcapi.ModelInferRequest_InferRequestedOutputTensor{{Name: "score"}}}, codes.InvalidArgument, `unknown output "score"`},
		{"raw and typed", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(row), RawInputContents: [][]byte{raw}}, codes.InvalidArgument, "send every input one way"},
		{"raw of the wrong size", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(noData(row)), RawInputContents: [][]byte{raw[:100]}}, codes.InvalidArgument, "120 bytes"},
		{"raw for fewer inputs", &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: inputs(noData(row), noData(row)), RawInputContents: [][]byte{raw}}, codes.InvalidArgument, "1 entries for 2 inputs"},
		{"INT8 out of range", &grpcapi.ModelInferRequest{ModelName: "i8", Inputs: inputs(&grpcapi.ModelInferRequest_InferInputTensor{Name: "x", Datatype: "INT8", Shape: []int64{2}, Contents: &grpcapi.InferTensorContents{IntContents: []int32{1, 300}}})}, codes.InvalidArgument, "element 1 is 300"},
		{"FP16 for INT8", &grpcapi.ModelInferRequest{ModelName: "i8", Inputs: inputs(&grpcapi.ModelInferRequest_InferInputTensor{Name: "x", Datatype: "FP16", Shape: []int64{1}, Contents: &grpcapi.InferTensorContents{}})}, codes.InvalidArgument, "datatype FP16 does not match the model's INT8"},
		{"NaN output", &grpcapi.ModelInferRequest{ModelName: "nan", Inputs: inputs(&grpcapi.ModelInferRequest_InferInputTensor{Name: "x", Datatype: "FP32", Shape: []int64{1, 4}, Contents: &grpcapi.InferTensorContents{Fp32Contents: []float32{1, 2, 3, 4}}})}, codes.Internal, "non-finite"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ModelInfer(ctx, tc.req)
			wantCode(t, tc.name, err, tc.code, tc.msg)
		})
	}

	// The RPCs the gateway does not serve say what to do instead.
	_, err := c.RepositoryModelLoad(ctx, &grpcapi.RepositoryModelLoadRequest{ModelName: "breast-cancer"})
	wantCode(t, "load", err, codes.Unimplemented, "promote")
	_, err = c.RepositoryModelUnload(ctx, &grpcapi.RepositoryModelUnloadRequest{ModelName: "breast-cancer"})
	wantCode(t, "unload", err, codes.Unimplemented, "promote")
	_, err = c.SystemSharedMemoryRegister(ctx, &grpcapi.SystemSharedMemoryRegisterRequest{})
	wantCode(t, "shared memory", err, codes.Unimplemented, "raw_input_contents")
	_, err = c.CudaSharedMemoryStatus(ctx, &grpcapi.CudaSharedMemoryStatusRequest{})
	wantCode(t, "CUDA shared memory", err, codes.Unimplemented, "shared-memory")
	_, err = c.TraceSetting(ctx, &grpcapi.TraceSettingRequest{})
	wantCode(t, "trace", err, codes.Unimplemented, "metrics")
	_, err = c.LogSettings(ctx, &grpcapi.LogSettingsRequest{})
	wantCode(t, "log settings", err, codes.Unimplemented, "log.level")
	stream, err := c.ModelStreamInfer(ctx)
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, "stream", err, codes.Unimplemented, "ModelInfer")

	// Counted as the HTTP requests are, with protocol="grpc".
	m := g.metricsText()
	for _, want := range []string{
		`modelgate_http_requests_total{code="4xx",model="breast-cancer",protocol="grpc",provider="cpu",route="/inference.GRPCInferenceService/ModelInfer",version="1"} 8`,
		`modelgate_http_requests_total{code="4xx",model="",protocol="grpc",provider="",route="/inference.GRPCInferenceService/ModelInfer",version=""} 9`,
		`modelgate_http_requests_total{code="5xx",model="nan",protocol="grpc",provider="cpu",route="/inference.GRPCInferenceService/ModelInfer",version="1"} 1`,
		`modelgate_http_requests_total{code="5xx",model="",protocol="grpc",provider="",route="/inference.GRPCInferenceService/RepositoryModelLoad",version=""} 1`,
		`modelgate_nonfinite_outputs_total{model="nan",version="1"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(m)
	}
}

// doHeader is do with one request header set.
func (g *gateway) doHeader(method, path string, body any, header, value string) (int, map[string]any) {
	g.t.Helper()
	j, err := json.Marshal(body)
	if err != nil {
		g.t.Fatal(err)
	}
	req, err := http.NewRequest(method, g.http.URL+path, bytes.NewReader(j))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(header, value)
	resp, err := g.http.Client().Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, m
}

// metricsText is the gateway's /metrics page.
func (g *gateway) metricsText() string {
	g.t.Helper()
	_, raw := g.raw("GET", "/metrics", nil)
	return string(raw)
}

func TestGRPCNotReadyIsUnavailable(t *testing.T) {
	g := newGateway(t, false, []pushSpec{{"breast-cancer", "1", fakeDemo()}})
	c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{}))
	_, err := c.ModelInfer(grpcCtx(t), &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", benign)}})
	wantCode(t, "before the model is loaded", err, codes.Unavailable, "not ready")
}

// The message limit is http.max_body_bytes unless set on its own.
func TestGRPCMessageLimit(t *testing.T) {
	big := &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", malignant, benign, malignant, benign, malignant, benign, malignant, benign, malignant, benign)}} // 1.2 kB of data
	for _, tc := range []struct {
		name    string
		body    int64
		message int
		ok      bool
	}{
		{"the body limit", 1024, 0, false},
		{"its own limit", 1024, 4096, true},
		{"its own, lower", 1 << 20, 1024, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}}, withMaxBody(tc.body))
			c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{MaxMessageBytes: tc.message}))
			_, err := c.ModelInfer(grpcCtx(t), big)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok {
				wantCode(t, "over the limit", err, codes.ResourceExhausted, "larger than max")
			}
		})
	}
}

// A full batching queue is ResourceExhausted, with retry-after as over
// HTTP; the others are answered.
func TestGRPCOverloadedIsResourceExhausted(t *testing.T) {
	slow := servingtest.Spec{Kind: "linear", N: 4, K: 2, W: make([]float32, 8), B: []float32{0, 0}, Delay: 50 * time.Millisecond}.Bytes()
	g := newGateway(t, true, []pushSpec{{"m", "1", slow}}, func(c *catalog.Options, _ *Options) {
		c.SessionOptions = func(string) serving.SessionOptions {
			return serving.SessionOptions{Batching: serving.BatchOptions{MaxBatchSize: 2, MaxQueueDelay: time.Millisecond, MaxQueue: 1}}
		}
	})
	c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{}))
	ctx := grpcCtx(t)
	var mu sync.Mutex
	var ok, exhausted int
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			var trailer metadata.MD
			_, err := c.ModelInfer(ctx, &grpcapi.ModelInferRequest{ModelName: "m", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", []float64{1, 2, 3, 4})}}, grpc.Trailer(&trailer))
			mu.Lock()
			defer mu.Unlock()
			switch status.Code(err) {
			case codes.OK:
				ok++
			case codes.ResourceExhausted:
				exhausted++
				if got := trailer.Get("retry-after"); len(got) != 1 || got[0] != "1" {
					t.Errorf("retry-after %q", got)
				}
			default:
				t.Errorf("unexpected %v", err)
			}
		})
	}
	wg.Wait()
	if ok == 0 || exhausted == 0 {
		t.Fatalf("%d answered, %d refused: want both", ok, exhausted)
	}
}

// Concurrent gRPC and HTTP requests to a batching gateway each get their
// own answer.
func TestGRPCBatched(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}}, withBatching(8, 2*time.Millisecond, serving.NewBatchMetrics(reg)))
	c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{}))
	ctx := grpcCtx(t)
	rows := [][]float64{malignant, benign}
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			if i%4 == 3 {
				if code, m := g.do("POST", "/predict", map[string]any{"features": rows[i%2]}); code != 200 || !reflect.DeepEqual(m["prediction"], []any{float64(i % 2)}) {
					t.Errorf("predict %d: %d %v", i, code, m)
				}
				return
			}
			r, err := c.ModelInfer(ctx, &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", rows[i%2])}})
			if err != nil || !reflect.DeepEqual(r.Outputs[0].Contents.GetInt64Contents(), []int64{int64(i % 2)}) {
				t.Errorf("infer %d: %v %v", i, r, err)
			}
		})
	}
	wg.Wait()
	if n := testutil.CollectAndCount(reg, "modelgate_batch_size"); n != 1 {
		t.Fatalf("batch-size series: %d", n)
	}
}

// countingDrift counts the inputs the server hands the drift tracker.
type countingDrift struct {
	mu   sync.Mutex
	rows map[string]int64
}

func (d *countingDrift) Observe(model, version string, inputs []wire.Tensor) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rows[model+"/"+version] += inputs[0].Shape[0]
}

func (d *countingDrift) Stats(string) drift.ModelStats { return drift.ModelStats{} }

// Through a canary, a routing key in the x-modelgate-key metadata (or the
// key parameter) keeps its version, the same version the X-Modelgate-Key
// header gets over HTTP; pinned versions bypass the split; the canary's
// recorder and the drift tracker see the gRPC requests.
func TestGRPCStickyKeysThroughACanary(t *testing.T) {
	rec := canary.NewRecorder(prometheus.NewRegistry())
	dr := &countingDrift{rows: map[string]int64{}}
	g := newGateway(t, false, nil, func(c *catalog.Options, o *Options) {
		c.Recorder, o.Recorder, o.KeyField, o.Drift = rec, rec, "user", dr
	})
	g.push("m", "1", servingtest.Scaled(1))
	g.push("m", "2", servingtest.Scaled(2))
	ctx := context.Background()
	if err := g.cat.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	plan := release.DefaultPlan()
	plan.Steps = []float64{30, 100}
	rel, err := g.reg.StartCanary(ctx, "m", "2", plan, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cat.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := g.cat.Status(); st.Models[0].Candidate != "2" || st.Models[0].Weight != 30 {
		t.Fatalf("canary not at 30%%: %+v", st.Models)
	}
	c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{}))
	infer := func(key, version string, param bool) string {
		t.Helper()
		req := &grpcapi.ModelInferRequest{ModelName: "m", ModelVersion: version, Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", []float64{1, 0, 0.5, 0.25})}}
		cctx := grpcCtx(t)
		if param {
			req.Parameters = map[string]*grpcapi.InferParameter{"user": {ParameterChoice: &grpcapi.InferParameter_StringParam{StringParam: key}}}
		} else if key != "" {
			cctx = metadata.AppendToOutgoingContext(cctx, KeyMetadata, key)
		}
		r, err := c.ModelInfer(cctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return r.ModelVersion
	}
	httpVersion := func(key string) string {
		t.Helper()
		req := map[string]any{"inputs": []map[string]any{{"name": "features", "shape": []int{1, 4}, "datatype": "FP32", "data": []float64{1, 0, 0.5, 0.25}}}}
		code, m := g.doHeader("POST", "/v2/models/m/infer", req, KeyHeader, key)
		if code != 200 {
			t.Fatalf("HTTP: %d %v", code, m)
		}
		return m["model_version"].(string)
	}
	const keys = 200
	onCandidate := 0
	for i := range keys {
		k := fmt.Sprintf("user-%d", i)
		v := infer(k, "", false)
		if v == "2" {
			onCandidate++
		}
		if again, byParam, byHTTP := infer(k, "", false), infer(k, "", true), httpVersion(k); again != v || byParam != v || byHTTP != v {
			t.Fatalf("key %s: %s, then %s; as a parameter %s; over HTTP %s", k, v, again, byParam, byHTTP)
		}
	}
	if onCandidate < keys*15/100 || onCandidate > keys*45/100 {
		t.Fatalf("%d of %d keys on the candidate at 30%%", onCandidate, keys)
	}
	for _, v := range []string{"1", "2"} {
		if got := infer("", v, false); got != v {
			t.Fatalf("pinned to %s, answered by %s", v, got)
		}
	}
	g.srv.WaitBackground()
	o := rec.Observations("m", rel.Canary.Epoch())
	if o.Candidate.Requests < int64(3*onCandidate) || o.Stable.Requests < int64(3*(keys-onCandidate)) {
		t.Fatalf("recorded %d candidate and %d stable requests; %d keys × 3 gRPC calls on the candidate, %d on stable", o.Candidate.Requests, o.Stable.Requests, onCandidate, keys-onCandidate)
	}
	dr.mu.Lock()
	defer dr.mu.Unlock()
	if dr.rows["m/1"]+dr.rows["m/2"] < 4*keys+2 {
		t.Fatalf("drift saw %v rows, want at least %d", dr.rows, 4*keys+2)
	}
}

// A panic in a handler is Internal, counted and logged, and the server
// keeps serving.
func TestGRPCRecoversPanics(t *testing.T) {
	g := newGateway(t, true, nil)
	_, err := g.srv.grpcRecover(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x/Y"}, func(context.Context, any) (any, error) { panic("boom") })
	if !errors.Is(err, errPanic) {
		t.Fatalf("err = %v", err)
	}
	wantCode(t, "panic", g.srv.grpcStatus(context.Background(), "/x/Y", err), codes.Internal, "panicked")
	if n := testutil.ToFloat64(g.srv.metrics.panics); n != 1 {
		t.Fatalf("panics counted: %v", n)
	}
}

// grpcCode follows the one table of errorStatus.
func TestGRPCCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("%w: x", wire.ErrBadInput), codes.InvalidArgument},
		{fmt.Errorf("%w: x", wire.ErrData), codes.InvalidArgument},
		{fmt.Errorf("%w: %q", catalog.ErrUnknownModel, "m"), codes.NotFound},
		{catalog.ErrUnknownVersion, codes.NotFound},
		{catalog.ErrNotReady, codes.Unavailable},
		{serving.ErrOverloaded, codes.ResourceExhausted},
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{&errNonFinite{}, codes.Internal},
		{errors.New("onnxruntime failed"), codes.Internal},
	} {
		if got := grpcCode(errorStatus(tc.err)); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.want)
		}
		if c := httpStatusOf(tc.want); tc.want != codes.Canceled && grpcCode(c) != tc.want {
			t.Errorf("%s → HTTP %d → %s", tc.want, c, grpcCode(c))
		}
	}
}

// A graceful stop lets a call in flight finish with its answer and
// refuses new ones, as the gateway's SIGTERM drain relies on.
func TestGRPCGracefulStopFinishesCalls(t *testing.T) {
	slow := servingtest.Spec{Kind: "linear", N: 4, K: 2, W: make([]float32, 8), B: []float32{0, 0}, Delay: 300 * time.Millisecond}.Bytes()
	g := newGateway(t, true, []pushSpec{{"m", "1", slow}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := g.srv.GRPCServer(GRPCOptions{})
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := grpcapi.NewGRPCInferenceServiceClient(conn)
	req := &grpcapi.ModelInferRequest{ModelName: "m", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", []float64{1, 2, 3, 4})}}
	answered := make(chan error, 1)
	go func() {
		_, err := c.ModelInfer(grpcCtx(t), req)
		answered <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(g.srv.metrics.grpcInFlight) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the call never started")
		}
		time.Sleep(time.Millisecond)
	}
	g.srv.Drain()
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	if err := <-answered; err != nil {
		t.Fatalf("the call in flight: %v", err)
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("GracefulStop did not return after the last call")
	}
	_, err = c.ModelInfer(grpcCtx(t), req)
	wantCode(t, "a call after the stop", err, codes.Unavailable, "")
}

// FP16 travels raw through the real ONNX Runtime, both ways.
func TestGRPCFloat16OnONNXRuntime(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"half", "1", testmodels.Float16()}}, withORT(t))
	c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{}))
	data := []wire.Float16{0x3c00, 0x0000, 0xc000, 0x7bff, 0x0001, 0x8000}
	raw := wire.AppendRaw(nil, wire.Tensor{Data: data})
	r, err := c.ModelInfer(grpcCtx(t), &grpcapi.ModelInferRequest{ModelName: "half",
		Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP16", Shape: []int64{3, 2}}}, RawInputContents: [][]byte{raw}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.RawOutputContents) != 1 || string(r.RawOutputContents[0]) != string(raw) || r.Outputs[0].Datatype != "FP16" || !reflect.DeepEqual(r.Outputs[0].Shape, []int64{3, 2}) {
		t.Fatalf("answer %v, want %x", r, raw)
	}
}

// gzip and deflate messages are taken and answered in kind, and the
// message limit holds for the decompressed message.
func TestGRPCCompressedMessages(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}}, withMaxBody(4096))
	c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{}))
	ctx := grpcCtx(t)
	for _, name := range []string{"gzip", "deflate"} {
		t.Run(name, func(t *testing.T) {
			r, err := c.ModelInfer(ctx, &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", malignant, benign)}}, grpc.UseCompressor(name))
			if err != nil || !reflect.DeepEqual(r.Outputs[0].Contents.GetInt64Contents(), []int64{0, 1}) {
				t.Fatalf("%v %v", r, err)
			}
			// 1000 rows of zeros: 120 kB, a few hundred bytes compressed.
			zeros := make([][]float64, 1000)
			for i := range zeros {
				zeros[i] = make([]float64, 30)
			}
			_, err = c.ModelInfer(ctx, &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", zeros...)}}, grpc.UseCompressor(name))
			wantCode(t, "a compressed message over the limit once decompressed", err, codes.ResourceExhausted, "larger than max")
		})
	}
}
