package serving

import (
	"context"
	"os"
	"reflect"
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
