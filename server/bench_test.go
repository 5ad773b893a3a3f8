package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/internal/ortest"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// The handler benchmarks drive the real router (middleware, catalog, ONNX
// Runtime) with the demo model, without a network in between, and report
// allocations per request:
//
//	go test ./server -run '^$' -bench . -benchmem

// benchDemo is the demo model's ONNX file.
func benchDemo(b *testing.B) []byte {
	b.Helper()
	model, err := os.ReadFile("../examples/breast-cancer/model.onnx")
	if err != nil {
		b.Fatal(err)
	}
	return model
}

// benchServer is a synced gateway serving the demo model as version 1 on
// ONNX Runtime.
func benchServer(b *testing.B) *Server { return benchServerOf(b, "breast-cancer", benchDemo(b)) }

// benchServerOf is a synced gateway serving model as version 1 of name on
// ONNX Runtime.
func benchServerOf(b *testing.B, name string, model []byte) *Server {
	b.Helper()
	rt := ortest.Runtime(b)
	bucket, err := registry.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.New(bucket, registry.Options{})
	ins, outs, err := catalog.Signature(rt, model)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := store.Push(ctx, reg, registry.PushRequest{Name: name, Version: "1", Model: model, Inputs: ins, Outputs: outs}, time.Now()); err != nil {
		b.Fatal(err)
	}
	metrics := prometheus.NewRegistry()
	cat := catalog.New(catalog.Options{Source: reg, Loader: rt, Registerer: metrics})
	b.Cleanup(cat.Close)
	if err := cat.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	return New(Options{Catalog: cat, Registerer: metrics, Gatherer: metrics})
}

func benchBody(b *testing.B, v any) []byte {
	b.Helper()
	j, err := json.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	return j
}

func runHandlerBench(b *testing.B, path string, body []byte) {
	runServerBench(b, benchServer(b), path, body, "")
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func BenchmarkPredict(b *testing.B) {
	runHandlerBench(b, "/predict", benchBody(b, map[string]any{"features": malignant}))
}

func BenchmarkPredictBatch32(b *testing.B) {
	rows := make([][]float64, 32)
	for i := range rows {
		rows[i] = malignant
	}
	runHandlerBench(b, "/predict", benchBody(b, map[string]any{"instances": rows}))
}

func BenchmarkInfer(b *testing.B) {
	runHandlerBench(b, "/v2/models/breast-cancer/infer", benchBody(b, map[string]any{
		"inputs": []map[string]any{{"name": "features", "shape": []int{1, 30}, "datatype": "FP32", "data": malignant}},
	}))
}

// BenchmarkInferImage is /v2 infer of one 1x3x320x320 FP32 image through
// an elementwise model (testmodels.Image), the tensors both ways in JSON
// and as binary data (the binary tensor data extension):
//
//	go test ./server -run '^$' -bench InferImage -benchmem
func BenchmarkInferImage(b *testing.B) {
	const h, w = 320, 320
	srv := benchServerOf(b, "image", testmodels.Image(h, w))
	pixels := make([]float32, 3*h*w)
	for i := range pixels {
		pixels[i] = float32(i%251) / 251 // a normalized image's values
	}
	path := "/v2/models/image/infer"
	b.Run("json", func(b *testing.B) {
		body := benchBody(b, map[string]any{
			"inputs": []map[string]any{{"name": "image", "shape": []int{1, 3, h, w}, "datatype": "FP32", "data": pixels}},
		})
		runServerBench(b, srv, path, body, "")
	})
	b.Run("binary", func(b *testing.B) {
		header := benchBody(b, map[string]any{
			"parameters": map[string]any{"binary_data_output": true},
			"inputs":     []map[string]any{{"name": "image", "shape": []int{1, 3, h, w}, "datatype": "FP32", "parameters": map[string]any{"binary_data_size": 4 * len(pixels)}}},
		})
		body := append(header, wire.AppendRaw(nil, wire.Tensor{Data: pixels})...)
		runServerBench(b, srv, path, body, strconv.Itoa(len(header)))
	})
}

// runServerBench posts body to path on srv, with Inference-Header-Content-Length
// when headerLen is set.
func runServerBench(b *testing.B, srv *Server, path string, body []byte, headerLen string) {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if headerLen != "" {
		req.Header.Set(wire.InferHeaderContentLength, headerLen)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req.Body = nopCloser{bytes.NewReader(body)}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
}
