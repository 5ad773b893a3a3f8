package servingtest_test

import (
	"math"
	"os"
	"testing"

	"github.com/modelgate/modelgate/internal/onnx"
	"github.com/modelgate/modelgate/internal/ortest"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/modelgate/modelgate/wire"
)

func TestMain(m *testing.M) { os.Exit(ortest.Run(m)) }

// run puts the model of b in service with l and runs it on in.
func run(t *testing.T, l interface {
	Load([]byte, serving.ModelOptions) (serving.Model, error)
}, b []byte, in []wire.Tensor) []wire.Tensor {
	t.Helper()
	m, err := l.Load(b, serving.ModelOptions{Name: "m", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	s := serving.NewSession(m, serving.SessionOptions{})
	defer s.Close()
	out, err := s.Run(t.Context(), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFakesComputeWhatTheRealModelsDo: each fake model gives, on the same
// inputs, the signature and the answers of the ONNX model it stands for.
func TestFakesComputeWhatTheRealModelsDo(t *testing.T) {
	rt := ortest.Runtime(t)
	features := []wire.Tensor{{Name: "features", Shape: []int64{3, 4}, Data: []float32{1, 2, 3, 4, -1, 0.5, 2, -3, 0, 0, 0, 0}}}
	ab := []wire.Tensor{
		{Name: "a", Shape: []int64{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
		{Name: "b", Shape: []int64{2, 3}, Data: []float32{-1, 0.5, 2, 0, 1, -2}},
	}
	cases := []struct {
		name       string
		fake, real []byte
		in         []wire.Tensor
	}{
		{"scaled 1", servingtest.Scaled(1), testmodels.Scaled(1), features},
		{"scaled -4", servingtest.Scaled(-4), testmodels.Scaled(-4), features},
		{"sigmoid", servingtest.Sigmoid(4, []float32{2, -1, 0.5, 3}, -0.25), testmodels.Sigmoid(4, []float32{2, -1, 0.5, 3}, -0.25), features},
		{"identity INT8", servingtest.Identity(wire.INT8, -1, 2), testmodels.Identity(onnx.Int8, -1, 2),
			[]wire.Tensor{{Name: "x", Shape: []int64{2, 2}, Data: []int8{-128, 0, 1, 127}}}},
		{"sumprod", servingtest.SumProd(), testmodels.SumProd(), ab},
		{"nan", servingtest.NaN(), testmodels.NaN(), []wire.Tensor{{Name: "x", Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fm, err := servingtest.Load(c.fake, serving.ModelOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rm, err := rt.Load(c.real, serving.ModelOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer rm.Close()
			if f, r := fm.Info(), rm.Info(); wire.Names(f.Inputs) != wire.Names(r.Inputs) || wire.Names(f.Outputs) != wire.Names(r.Outputs) {
				t.Fatalf("signature: fake %v -> %v, real %v -> %v", f.Inputs, f.Outputs, r.Inputs, r.Outputs)
			}
			for i := range fm.Info().Inputs {
				if f, r := fm.Info().Inputs[i].String(), rm.Info().Inputs[i].String(); f != r {
					t.Fatalf("input %d: fake %s, real %s", i, f, r)
				}
			}
			got, want := run(t, &servingtest.Loader{}, c.fake, c.in), run(t, rt, c.real, c.in)
			for i := range want {
				g, _ := wire.Floats(got[i].Data)
				w, _ := wire.Floats(want[i].Data)
				if got[i].Name != want[i].Name || got[i].DType() != want[i].DType() || len(g) != len(w) {
					t.Fatalf("output %d: fake %s %s, real %s %s", i, got[i].Name, got[i].DType(), want[i].Name, want[i].DType())
				}
				for j := range w {
					same := math.Abs(g[j]-w[j]) <= 1e-5 || (math.IsNaN(g[j]) && math.IsNaN(w[j]))
					if !same {
						t.Fatalf("output %q value %d: fake %v, real %v", want[i].Name, j, g[j], w[j])
					}
				}
			}
		})
	}
	if _, err := (&servingtest.Loader{}).Load(testmodels.Scaled(1), serving.ModelOptions{}); err == nil {
		t.Error("the fake loader took ONNX bytes")
	}
}
