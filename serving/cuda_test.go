package serving

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/wire"
)

// TestCUDAProvider runs on a machine with an NVIDIA GPU and the CUDA
// execution-provider plugin (ONNXRUNTIME_CUDA_PLUGIN, see docs/gpu.md); a
// GPU cannot be installed by `make test`, so elsewhere it says so and skips.
// It checks that require_gpu accepts the GPU, that sessions report "cuda",
// and that CUDA and CPU agree on the outputs.
func TestCUDAProvider(t *testing.T) {
	plugin := os.Getenv("ONNXRUNTIME_CUDA_PLUGIN")
	if plugin == "" {
		t.Skip("no GPU here: set ONNXRUNTIME_CUDA_PLUGIN on a GPU machine to run the CUDA provider test")
	}
	rt, err := NewRuntime(Options{CUDAPlugin: plugin, RequireGPU: true, Logger: nil})
	if err != nil {
		t.Fatalf("require_gpu with a GPU: %v", err)
	}
	defer rt.Close()
	model := testmodels.Scaled(3)
	gpu, err := rt.NewSession(model, SessionOptions{Name: "m", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer gpu.Close()
	if gpu.Provider() != ProviderCUDA {
		t.Fatalf("provider = %q, want cuda", gpu.Provider())
	}
	cpu := newSession(t, model)
	in := []wire.Tensor{{Name: "features", Shape: []int64{2, 4}, Data: []float32{1, 2, 3, 4, -1, 0.5, 2, 0}}}
	a, err := gpu.Run(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cpu.Run(context.Background(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a[0].Data, b[0].Data) {
		t.Fatalf("labels differ: cuda %v, cpu %v", a[0].Data, b[0].Data)
	}
	pa, pb := a[1].Data.([]float32), b[1].Data.([]float32)
	for i := range pa {
		if d := pa[i] - pb[i]; d > 1e-5 || d < -1e-5 {
			t.Fatalf("probabilities differ at %d: cuda %v, cpu %v", i, pa[i], pb[i])
		}
	}
}

// TestCUDAProviderAuto runs where TestCUDAProvider does: providers auto
// measures both providers on a one-row linear model, a 512×512 image
// model and a chain of sixteen 2048×2048 matrix products, and keeps the
// one it says it chose. Which one wins is the machine's to say, so the
// test logs the times and does not assert them.
func TestCUDAProviderAuto(t *testing.T) {
	plugin := os.Getenv("ONNXRUNTIME_CUDA_PLUGIN")
	if plugin == "" {
		t.Skip("no GPU here: set ONNXRUNTIME_CUDA_PLUGIN on a GPU machine to run the measurement of providers auto")
	}
	rt, err := NewRuntime(Options{CUDAPlugin: plugin, Providers: []string{ProviderAuto}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for name, model := range map[string][]byte{"scaled": testmodels.Scaled(3), "image512": testmodels.Image(512, 512), "matmul2048x16": testmodels.CanarySlow(2048, 16)} {
		t.Run(name, func(t *testing.T) {
			s, err := rt.NewSession(model, SessionOptions{Name: name, Version: "1"})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close(); <-s.Done() }()
			ch := s.Info().ProviderChoice
			if ch == nil || len(ch.Warmup) != 2 || ch.Warmup[ProviderCUDA] <= 0 || ch.Warmup[ProviderCPU] <= 0 {
				t.Fatalf("choice = %+v, want both providers measured", ch)
			}
			if !strings.Contains(ch.Reason, "; chose "+s.Provider()) {
				t.Errorf("reason %q does not name the provider in effect, %s", ch.Reason, s.Provider())
			}
			t.Logf("%s: %s (load %s)", name, ch.Reason, s.Info().LoadTime)
		})
	}
}
