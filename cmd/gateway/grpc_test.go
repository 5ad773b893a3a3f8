package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelgate/modelgate/grpcapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// envGrpcurl names the grpcurl binary; by default it is the one `make
// grpcurl` installs into .cache/tools/bin (`make test` does).
const envGrpcurl = "MODELGATE_GRPCURL"

// demoRow is the first row of the breast-cancer data set (malignant: the
// demo model answers label 0).
var demoRow = []float32{17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589, 153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622, 0.6656, 0.7119, 0.2654, 0.4601, 0.1189}

func grpcurlBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(envGrpcurl)
	if bin == "" {
		bin = filepath.Join("..", "..", ".cache", "tools", "bin", "grpcurl")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("grpcurl not found: run `make grpcurl` (or set %s): %v", envGrpcurl, err)
	}
	return bin
}

// startGRPCGateway serves the demo model with gRPC on a free port and
// returns the HTTP base URL and the gRPC address once the model is ready.
func startGRPCGateway(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	pushDemo(t, dir)
	cfg := testConfig(t)
	cfg.Registry = "file://" + dir
	cfg.PollInterval = 100 * time.Millisecond
	cfg.GRPC.Listen = freePort(t)
	base := startGateway(t, cfg)
	waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "breast-cancer") == "1" })
	return base, cfg.GRPC.Listen
}

// grpcurl runs `grpcurl -plaintext FLAGS... ADDR ARGS...` and returns its
// output; a failure (its exit code) is returned with the output.
func grpcurl(t *testing.T, addr string, flags []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append(append(append([]string{"-plaintext"}, flags...), addr), args...)
	out, err := exec.CommandContext(ctx, grpcurlBin(t), argv...).CombinedOutput()
	return string(out), err
}

// grpcurl, a gRPC client the project did not write, finds the services by
// reflection, describes them, and calls ModelInfer and the health check
// with JSON, against a real gateway on ONNX Runtime.
func TestGrpcurl(t *testing.T) {
	_, addr := startGRPCGateway(t)
	out, err := grpcurl(t, addr, nil, "list")
	if err != nil {
		t.Fatalf("grpcurl list: %v\n%s", err, out)
	}
	for _, svc := range []string{"inference.GRPCInferenceService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !strings.Contains(out, svc+"\n") {
			t.Errorf("grpcurl list lacks %s:\n%s", svc, out)
		}
	}
	out, err = grpcurl(t, addr, nil, "describe", "inference.GRPCInferenceService.ModelInfer")
	if err != nil || !strings.Contains(out, "rpc ModelInfer ( .inference.ModelInferRequest ) returns ( .inference.ModelInferResponse );") {
		t.Errorf("grpcurl describe ModelInfer: %v\n%s", err, out)
	}
	out, err = grpcurl(t, addr, nil, "describe", "inference.InferTensorContents")
	if err != nil || !strings.Contains(out, "repeated float fp32_contents = 6;") {
		t.Errorf("grpcurl describe InferTensorContents: %v\n%s", err, out)
	}

	req, _ := json.Marshal(map[string]any{
		"model_name": "breast-cancer", "id": "grpcurl-1",
		"inputs": []map[string]any{{"name": "features", "datatype": "FP32", "shape": []int{1, 30}, "contents": map[string]any{"fp32_contents": demoRow}}},
	})
	out, err = grpcurl(t, addr, []string{"-d", string(req)}, "inference.GRPCInferenceService/ModelInfer")
	if err != nil {
		t.Fatalf("grpcurl ModelInfer: %v\n%s", err, out)
	}
	var resp struct {
		ModelName, ModelVersion, ID string
		Outputs                     []struct {
			Name, Datatype string
			Shape          []string // int64 in JSON are strings
			Contents       struct {
				Int64Contents []string
				Fp32Contents  []float64
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("grpcurl's answer is not JSON: %v\n%s", err, out)
	}
	if resp.ModelName != "breast-cancer" || resp.ModelVersion != "1" || resp.ID != "grpcurl-1" || len(resp.Outputs) != 2 ||
		resp.Outputs[0].Name != "label" || fmt.Sprint(resp.Outputs[0].Contents.Int64Contents) != "[0]" ||
		resp.Outputs[1].Name != "probabilities" || len(resp.Outputs[1].Contents.Fp32Contents) != 2 {
		t.Fatalf("ModelInfer answer:\n%s", out)
	}
	t.Logf("grpcurl ModelInfer:\n%s", out)

	out, err = grpcurl(t, addr, nil, "grpc.health.v1.Health/Check")
	if err != nil || !strings.Contains(out, `"status": "SERVING"`) {
		t.Errorf("grpcurl health check: %v\n%s", err, out)
	}
	// An error is a gRPC status grpcurl reports, with the message.
	out, err = grpcurl(t, addr, []string{"-d", `{"model_name": "nope", "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 1], "contents": {"fp32_contents": [1]}}]}`}, "inference.GRPCInferenceService/ModelInfer")
	if err == nil || !strings.Contains(out, "Code: NotFound") || !strings.Contains(out, `"nope"`) {
		t.Errorf("grpcurl ModelInfer of an unknown model: %v\n%s", err, out)
	}
}

// TestSIGTERMDrainsGRPC sends SIGTERM to a gateway under gRPC load, the
// clients behaving as a load balancer's health checks make them: they
// keep calling until the health check says NOT_SERVING, then stop. Health
// and ServerReady fail at once, ModelInfer keeps answering through the
// drain delay with zero errors, an open health watch ends, and the process
// stops gracefully and exits 0 long before the shutdown timeout.
func TestSIGTERMDrainsGRPC(t *testing.T) {
	dir := t.TempDir()
	pushDemo(t, dir)
	addr, grpcAddr := freePort(t), freePort(t)
	cmd := exec.Command(os.Args[0], "--listen", addr, "--grpc-listen", grpcAddr, "--registry", dir, "--providers", "cpu", "--log-format", "json")
	cmd.Env = append(os.Environ(), runGatewayEnv+"=1", "MODELGATE_HTTP_DRAIN_DELAY=1500ms", "MODELGATE_HTTP_SHUTDOWN_TIMEOUT=20s", "MODELGATE_CACHE_DIR="+t.TempDir())
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := grpcapi.NewGRPCInferenceServiceClient(conn)
	h := grpc_health_v1.NewHealthClient(conn)
	serving := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r, err := h.Check(ctx, &grpc_health_v1.HealthCheckRequest{})
		return err == nil && r.Status == grpc_health_v1.HealthCheckResponse_SERVING
	}
	waitFor(t, 60*time.Second, "gRPC health SERVING", serving)
	watch, err := h.Watch(context.Background(), &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.Status != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", r, err)
	}

	req := &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{
		{Name: "features", Datatype: "FP32", Shape: []int64{1, 30}, Contents: &grpcapi.InferTensorContents{Fp32Contents: demoRow}},
	}}
	var mu sync.Mutex
	var answered int
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				r, err := c.ModelInfer(ctx, req)
				cancel()
				mu.Lock()
				if err != nil {
					failures = append(failures, err.Error())
				} else if r.Outputs[0].Contents.GetInt64Contents()[0] != 0 {
					failures = append(failures, fmt.Sprint(r))
				} else {
					answered++
				}
				mu.Unlock()
			}
		})
	}
	waitFor(t, 10*time.Second, "load running", func() bool { mu.Lock(); defer mu.Unlock(); return answered > 50 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	waitFor(t, time.Second, "health NOT_SERVING after SIGTERM", func() bool { return !serving() })
	notServingAfter := time.Since(sent)
	if r, err := c.ServerReady(context.Background(), &grpcapi.ServerReadyRequest{}); err != nil || r.Ready {
		t.Errorf("ServerReady while draining: %v %v", r, err)
	}
	if r, err := watch.Recv(); err != nil || r.Status != grpc_health_v1.HealthCheckResponse_NOT_SERVING {
		t.Errorf("watch after SIGTERM: %v %v", r, err)
	}
	if _, err := watch.Recv(); err != io.EOF {
		t.Errorf("the watch goes on while draining: %v", err)
	}
	mu.Lock()
	before := answered
	mu.Unlock()
	waitFor(t, time.Second, "answers during the drain", func() bool { mu.Lock(); defer mu.Unlock(); return answered > before+10 })
	close(stop) // the load balancer has seen NOT_SERVING
	wg.Wait()
	waitExit(t, cmd, 15*time.Second, &logs)
	exited := time.Since(sent)
	if len(failures) > 0 {
		t.Fatalf("%d gRPC calls failed; first: %s", len(failures), failures[0])
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) || strings.Contains(logs.String(), "still running at the shutdown timeout") {
		t.Fatalf("no graceful stop in the logs:\n%s", logs.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := c.ServerLive(ctx, &grpcapi.ServerLiveRequest{}); err == nil {
		t.Fatal("gRPC still answers after the exit")
	}
	t.Logf("health NOT_SERVING %s after SIGTERM; %d calls answered (%d during the drain), 0 failed; exit 0 after %s", notServingAfter.Round(time.Millisecond), answered, answered-before, exited.Round(time.Millisecond))
}
