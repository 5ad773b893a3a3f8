package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/config"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// pushDemo stores the committed demo model as breast-cancer version 1.
func pushDemo(t *testing.T, dir string) {
	t.Helper()
	model, err := os.ReadFile("../../examples/breast-cancer/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	b, err := registry.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := []wire.TensorSpec{{Name: "features", DType: wire.FP32, Shape: []int64{-1, 30}}}
	out := []wire.TensorSpec{{Name: "label", DType: wire.INT64, Shape: []int64{-1}}, {Name: "probabilities", DType: wire.FP32, Shape: []int64{-1, 2}}}
	if _, _, err := store.Push(context.Background(), registry.New(b, registry.Options{}), registry.PushRequest{Name: "breast-cancer", Version: "1", Model: model, Inputs: in, Outputs: out}, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// testConfig is the default configuration on the CPU provider with one
// intra-op thread per session, the download cache in the test's
// temporary directory, so that no test writes into the source tree, and
// gRPC on a free port (tests that call it set their own).
func testConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.CacheDir = t.TempDir()
	cfg.GRPC.Listen = "127.0.0.1:0"
	cfg.ORT.Providers = []string{"cpu"}
	cfg.ORT.IntraOpThreads = 1
	return cfg
}

// TestServeEndToEnd starts the gateway as main does, on a free port, with
// the demo model, answers a prediction, and shuts down cleanly on cancel.
func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	pushDemo(t, dir)
	cfg := testConfig(t)
	cfg.Listen = "127.0.0.1:0"
	cfg.Registry = "file://" + dir
	cfg.PollInterval = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() { done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve returned early: %v", err)
	}
	base := "http://" + addr
	// Poll readiness: the first registry sync runs in the background.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready in time; logs:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not synchronising on time
	}
	row := `[17.99,10.38,122.8,1001,0.1184,0.2776,0.3001,0.1471,0.2419,0.07871,1.095,0.9053,8.589,153.4,0.006399,0.04904,0.05373,0.01587,0.03003,0.006193,25.38,17.33,184.6,2019,0.1622,0.6656,0.7119,0.2654,0.4601,0.1189]`
	resp, err := http.Post(base+"/predict", "application/json", strings.NewReader(`{"features":`+row+`}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct {
		Model      string  `json:"model"`
		Version    string  `json:"version"`
		Prediction []int64 `json:"prediction"`
	}
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 || got.Model != "breast-cancer" || got.Version != "1" || len(got.Prediction) != 1 || got.Prediction[0] != 0 {
		t.Fatalf("predict: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no shutdown")
	}
	if !strings.Contains(logs.String(), "provider=cpu") {
		t.Errorf("the provider in effect is not logged:\n%s", logs.String())
	}
}

func TestMissingLibraryIsOneClearLine(t *testing.T) {
	cfg := testConfig(t)
	cfg.Registry = t.TempDir()
	cfg.ORT.LibraryPath = filepath.Join(t.TempDir(), "libonnxruntime.so")
	err := serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "make ort") {
		t.Fatalf("err = %v", err)
	}
}

func TestRequireGPUFailsAtStartup(t *testing.T) {
	cfg := testConfig(t)
	cfg.Registry = t.TempDir()
	cfg.ORT.Providers = []string{"cuda", "cpu"}
	cfg.ORT.RequireGPU = true
	cfg.ORT.CUDAPlugin = "/nonexistent/libonnxruntime_providers_cuda.so"
	err := serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), serving.ErrGPURequired.Error()) {
		t.Fatalf("err = %v", err)
	}
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	f := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(f, []byte("listen: \":8080\"\nlisten_adress: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run([]string{"--config", f})
	if err == nil || !strings.Contains(err.Error(), "listen_adress") {
		t.Fatalf("err = %v", err)
	}
}
