package serving

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/modelgate/modelgate/internal/onnx"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/wire"
)

var testRT *Runtime

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test here runs ONNX Runtime, which the fast tier does without.
		println("skipped: the serving tests run ONNX Runtime (-short, make test-unit, runs without it)")
		os.Exit(0)
	}
	rt, err := NewRuntime(Options{Providers: []string{ProviderCPU}, IntraOpThreads: 1})
	if err != nil {
		// Never skip: ONNX Runtime is a dependency `make test` installs.
		println("serving tests need ONNX Runtime:", err.Error())
		os.Exit(1)
	}
	testRT = rt
	code := m.Run()
	rt.Close()
	os.Exit(code)
}

func newSession(t *testing.T, model []byte) *Session {
	t.Helper()
	s, err := testRT.NewSession(model, SessionOptions{Name: "m", Version: "1"})
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { s.Close(); <-s.Done() })
	return s
}

func TestRoundTripEveryType(t *testing.T) {
	cases := []struct {
		onnx onnx.DataType
		data any
	}{
		{onnx.Bool, []bool{true, false, true, true}},
		{onnx.Uint8, []uint8{0, 1, 254, 255}},
		{onnx.Uint16, []uint16{0, 1, 65534, 65535}},
		{onnx.Uint32, []uint32{0, 1, 1 << 31, math.MaxUint32}},
		{onnx.Uint64, []uint64{0, 1, 1 << 63, math.MaxUint64}},
		{onnx.Int8, []int8{-128, -1, 0, 127}},
		{onnx.Int16, []int16{-32768, -1, 0, 32767}},
		{onnx.Int32, []int32{math.MinInt32, -1, 0, math.MaxInt32}},
		{onnx.Int64, []int64{math.MinInt64, -1, 0, math.MaxInt64}},
		{onnx.Float, []float32{-1.5, 0, 3.25, math.MaxFloat32}},
		{onnx.Double, []float64{-1.5, 0, 1e300, math.SmallestNonzeroFloat64}},
		{onnx.Float16, []wire.Float16{0x3c00, 0x8000, 0x7bff, 0x0001}},
		{onnx.BFloat16, []wire.BFloat16{0x3f80, 0x8000, 0x7f7f, 0x0001}},
		{onnx.String, [][]byte{[]byte("a"), {}, []byte("\xff\xfe é"), []byte("longer than sixteen bytes")}},
	}
	// Outputs in Go memory sized by rows ([-1, 2]) and fixed ([2, 2]), and
	// sized by ONNX Runtime ([-1, -1]).
	for _, shape := range [][]int64{{-1, 2}, {2, 2}, {-1, -1}} {
		for _, c := range cases {
			in := wire.Tensor{Name: "x", Shape: []int64{2, 2}, Data: c.data}
			t.Run(fmt.Sprintf("%s%v", in.DType(), shape), func(t *testing.T) {
				model := testmodels.Identity(c.onnx, shape...)
				if half := c.onnx == onnx.Float16 || c.onnx == onnx.BFloat16; half && shape[1] == -1 {
					// onnxruntime_go cannot hand back FP16 and BF16 outputs
					// that ONNX Runtime sizes: such models are refused.
					_, err := testRT.NewSession(model, SessionOptions{Name: "m", Version: "1"})
					if !errors.Is(err, wire.ErrUnsupportedType) || !strings.Contains(err.Error(), "of a fixed shape or [-1, fixed...]") {
						t.Fatalf("err = %v", err)
					}
					return
				}
				s := newSession(t, model)
				if got := s.Inputs()[0]; got.DType != in.DType() || !reflect.DeepEqual(got.Shape, shape) {
					t.Fatalf("input spec %+v", got)
				}
				out, err := s.Run(context.Background(), []wire.Tensor{in}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(out) != 1 || out[0].Name != "y" || !reflect.DeepEqual(out[0].Shape, []int64{2, 2}) || !reflect.DeepEqual(out[0].Data, c.data) {
					t.Fatalf("got %+v, want %v", out, c.data)
				}
			})
		}
	}
}

// TestBytesWithNUL: ONNX Runtime cannot be handed a BYTES element holding
// a NUL through onnxruntime_go; that is a bad input, never a cut string.
func TestBytesWithNUL(t *testing.T) {
	s := newSession(t, testmodels.Identity(onnx.String, -1))
	_, err := s.Run(context.Background(), []wire.Tensor{{Name: "x", Shape: []int64{2}, Data: [][]byte{[]byte("ok"), []byte("a\x00b")}}}, nil)
	if !errors.Is(err, wire.ErrBadInput) || !strings.Contains(err.Error(), "BYTES element 1 holds a NUL byte") {
		t.Fatalf("err = %v", err)
	}
}

func TestSeveralInputsAndOutputs(t *testing.T) {
	s := newSession(t, testmodels.SumProd())
	a := wire.Tensor{Name: "a", Shape: []int64{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}}
	b := wire.Tensor{Name: "b", Shape: []int64{2, 3}, Data: []float32{1, 1, 1, 2, 2, 2}}
	// Inputs in any order; all outputs in signature order.
	out, err := s.Run(context.Background(), []wire.Tensor{b, a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Name != "sum" || !reflect.DeepEqual(out[0].Data, []float32{2, 3, 4, 6, 7, 8}) {
		t.Errorf("sum = %+v", out[0])
	}
	if out[1].Name != "prod" || !reflect.DeepEqual(out[1].Data, []float32{1, 2, 3, 8, 10, 12}) {
		t.Errorf("prod = %+v", out[1])
	}
	// An output filter.
	out, err = s.Run(context.Background(), []wire.Tensor{a, b}, []string{"prod"})
	if err != nil || len(out) != 1 || out[0].Name != "prod" {
		t.Fatalf("filtered: %+v, %v", out, err)
	}
}

func TestDynamicBatch(t *testing.T) {
	s := newSession(t, testmodels.Scaled(2))
	for _, n := range []int64{1, 3, 64} {
		data := make([]float32, n*4)
		for i := range data {
			data[i] = float32(i%7) - 3
		}
		out, err := s.Run(context.Background(), []wire.Tensor{{Name: "features", Shape: []int64{n, 4}, Data: data}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(out[0].Shape, []int64{n}) || !reflect.DeepEqual(out[1].Shape, []int64{n, 2}) {
			t.Fatalf("batch %d: shapes %v %v", n, out[0].Shape, out[1].Shape)
		}
		p := out[1].Data.([]float32)
		for r := int64(0); r < n; r++ {
			if sum := p[2*r] + p[2*r+1]; math.Abs(float64(sum)-1) > 1e-6 {
				t.Fatalf("row %d probabilities sum to %v", r, sum)
			}
		}
	}
}

func TestBadInputs(t *testing.T) {
	s := newSession(t, testmodels.SumProd())
	good := wire.Tensor{Name: "b", Shape: []int64{1, 3}, Data: []float32{1, 2, 3}}
	cases := []struct {
		name   string
		inputs []wire.Tensor
		want   string
	}{
		{"empty", nil, `no inputs given (the model takes "a", "b")`},
		{"unknown name", []wire.Tensor{{Name: "c", Shape: []int64{1, 3}, Data: []float32{1, 2, 3}}, good}, `unknown input "c"`},
		{"missing input", []wire.Tensor{good}, `missing input "a" (FP32 [-1 3])`},
		{"twice", []wire.Tensor{good, good}, `input "b" given twice`},
		{"wrong datatype", []wire.Tensor{{Name: "a", Shape: []int64{1, 3}, Data: []float64{1, 2, 3}}, good}, `input "a": datatype FP64 does not match the model's FP32`},
		{"wrong rank", []wire.Tensor{{Name: "a", Shape: []int64{3}, Data: []float32{1, 2, 3}}, good}, `input "a": shape [3] does not match the model's [-1 3]`},
		{"wrong fixed dim", []wire.Tensor{{Name: "a", Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}, good}, `shape [1 4] does not match`},
		{"count mismatch", []wire.Tensor{{Name: "a", Shape: []int64{2, 3}, Data: []float32{1, 2, 3}}, good}, `shape [2 3] needs 6 values, got 3`},
		{"negative dim", []wire.Tensor{{Name: "a", Shape: []int64{-2, 3}, Data: []float32{}}, good}, `negative or too large`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.Run(context.Background(), c.inputs, nil)
			if !errors.Is(err, wire.ErrBadInput) {
				t.Fatalf("err = %v, want wire.ErrBadInput", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want it to say %q", err, c.want)
			}
		})
	}
	_, err := s.Run(context.Background(), []wire.Tensor{good, {Name: "a", Shape: []int64{1, 3}, Data: []float32{1, 2, 3}}}, []string{"nope"})
	if !errors.Is(err, wire.ErrBadInput) || !strings.Contains(err.Error(), `unknown output "nope"`) {
		t.Fatalf("unknown output: %v", err)
	}
}

func TestInvalidModels(t *testing.T) {
	good := testmodels.Scaled(1)
	cases := []struct {
		name  string
		bytes []byte
		want  error
	}{
		{"garbage", []byte("this is not an onnx model"), ErrInvalidModel},
		{"empty", []byte{}, ErrInvalidModel},
		{"truncated", good[:len(good)/2], ErrInvalidModel},
		{"float8 input", testmodels.Float8(), wire.ErrUnsupportedType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := testRT.NewSession(c.bytes, SessionOptions{Name: "bad", Version: "1"})
			if !errors.Is(err, c.want) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestProviderFallbackAndRequireGPU(t *testing.T) {
	// This machine's ONNX Runtime is a CPU build: [cuda, cpu] falls back to
	// the CPU and says so; require_gpu refuses to start.
	rt, err := NewRuntime(Options{Providers: []string{ProviderCUDA, ProviderCPU}, CUDAPlugin: "/nonexistent/libonnxruntime_providers_cuda.so"})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	s, err := rt.NewSession(testmodels.Scaled(1), SessionOptions{Name: "m", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Provider() != ProviderCPU {
		t.Errorf("provider = %q, want cpu", s.Provider())
	}
	s.Close()

	_, err = NewRuntime(Options{RequireGPU: true, CUDAPlugin: "/nonexistent/libonnxruntime_providers_cuda.so"})
	if !errors.Is(err, ErrGPURequired) {
		t.Fatalf("require_gpu: err = %v, want ErrGPURequired", err)
	}
	_, err = NewRuntime(Options{RequireGPU: true, Providers: []string{ProviderCPU}})
	if !errors.Is(err, ErrGPURequired) {
		t.Fatalf("require_gpu without cuda: err = %v", err)
	}
	if _, err := NewRuntime(Options{Providers: []string{"tpu"}}); err == nil {
		t.Fatal("unknown provider accepted")
	}
}

func TestCloseWaitsForReferences(t *testing.T) {
	s, err := testRT.NewSession(testmodels.Scaled(1), SessionOptions{Name: "m", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Acquire() {
		t.Fatal("Acquire failed on a fresh session")
	}
	s.Close()
	select {
	case <-s.Done():
		t.Fatal("destroyed while a reference is held")
	default:
	}
	if s.Acquire() {
		t.Fatal("Acquire succeeded after Close")
	}
	// The holder can still run.
	if _, err := s.Run(context.Background(), []wire.Tensor{{Name: "features", Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}}, nil); err != nil {
		t.Fatal(err)
	}
	s.Release()
	<-s.Done()
}

func TestConcurrentRunsAgree(t *testing.T) {
	s := newSession(t, testmodels.Scaled(3))
	input := func(i int) wire.Tensor {
		return wire.Tensor{Name: "features", Shape: []int64{1, 4}, Data: []float32{float32(i % 13), -float32(i % 5), 0.5, float32(i%3) - 1}}
	}
	want := make([][]float32, 100)
	for i := range want {
		out, err := s.Run(context.Background(), []wire.Tensor{input(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = out[1].Data.([]float32)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				k := (g*31 + i) % len(want)
				out, err := s.Run(context.Background(), []wire.Tensor{input(k)}, nil)
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(out[1].Data, want[k]) {
					errs <- errors.New("concurrent run disagrees with the sequential one")
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestWarmUp(t *testing.T) {
	s := newSession(t, testmodels.SumProd())
	if err := s.WarmUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := newSession(t, testmodels.Identity(onnx.Int8, 2, -1, 3))
	if err := s2.WarmUp(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestCPUQuota(t *testing.T) {
	cases := []struct {
		name  string
		files fstest.MapFS
		cores int
		want  int
	}{
		{"v2 no limit", fstest.MapFS{"cpu.max": {Data: []byte("max 100000\n")}}, 16, 16},
		{"v2 two cpus", fstest.MapFS{"cpu.max": {Data: []byte("200000 100000\n")}}, 16, 2},
		{"v2 half a cpu", fstest.MapFS{"cpu.max": {Data: []byte("50000 100000\n")}}, 16, 1},
		{"v2 1.5 rounds up", fstest.MapFS{"cpu.max": {Data: []byte("150000 100000\n")}}, 16, 2},
		{"v2 above cores", fstest.MapFS{"cpu.max": {Data: []byte("6400000 100000\n")}}, 4, 4},
		{"v1 three cpus", fstest.MapFS{"cpu/cpu.cfs_quota_us": {Data: []byte("300000\n")}, "cpu/cpu.cfs_period_us": {Data: []byte("100000\n")}}, 8, 3},
		{"v1 unlimited", fstest.MapFS{"cpu/cpu.cfs_quota_us": {Data: []byte("-1\n")}, "cpu/cpu.cfs_period_us": {Data: []byte("100000\n")}}, 8, 8},
		{"no cgroup", fstest.MapFS{}, 6, 6},
		{"garbage", fstest.MapFS{"cpu.max": {Data: []byte("lots\n")}}, 6, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := cpuQuota(c.files, c.cores); got != c.want {
				t.Errorf("cpuQuota = %d, want %d", got, c.want)
			}
		})
	}
}

func TestResolveLibrary(t *testing.T) {
	t.Setenv("ONNXRUNTIME_LIB", "/nonexistent/libonnxruntime.so")
	_, err := ResolveLibrary("")
	if !errors.Is(err, ErrLibraryNotFound) || !strings.Contains(err.Error(), "make ort") {
		t.Fatalf("err = %v", err)
	}
	if _, err := ResolveLibrary("/also/missing.so"); !errors.Is(err, ErrLibraryNotFound) {
		t.Fatalf("configured path: err = %v", err)
	}
}
