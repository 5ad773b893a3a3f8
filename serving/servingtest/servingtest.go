// Package servingtest gives the tests of the packages above serving fake
// models: a Loader that reads a small description instead of ONNX bytes
// and models that compute in plain Go what the project's test models
// (internal/testmodels) compute in ONNX Runtime, so that the catalog, the
// HTTP layer and the release logic are tested without ONNX Runtime. Bytes
// that are not such a description are refused like bytes ONNX Runtime
// cannot read.
package servingtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// magic starts the bytes of every fake model.
const magic = "modelgate fake model\n"

// Spec describes a fake model: its signature and what it computes.
type Spec struct {
	// Kind is "linear" (outputs "label" INT64 [-1] = argmax and
	// "probabilities" FP32 [-1, K] = softmax of x·W + B for input
	// "features" FP32 [-1, N]), "sigmoid" (output "probability" FP32
	// [-1, 1] = sigmoid of x·W + B, K = 1), "identity" (output "y" = input "x"),
	// "sumprod" (outputs "sum" = a + b and "prod" = a·b of inputs "a" and
	// "b", FP32 [-1, 3]) or "nan" (output "y" FP32 [-1, 4], NaN everywhere,
	// of input "x" FP32 [-1, 4]).
	Kind string `json:"kind"`
	// N, K, W (N×K, row-major) and B: the linear classifier.
	N int64     `json:"n,omitempty"`
	K int64     `json:"k,omitempty"`
	W []float32 `json:"w,omitempty"`
	B []float32 `json:"b,omitempty"`
	// DType and Shape: the identity's tensor.
	DType wire.DType `json:"dtype,omitempty"`
	Shape []int64    `json:"shape,omitempty"`
	// Delay is how long each run takes.
	Delay time.Duration `json:"delay,omitempty"`
	// Fail, when set, makes every run fail with this message (warm-up too).
	Fail string `json:"fail,omitempty"`
	// Provider, when set, is the provider the model reports ("cpu" if not).
	Provider string `json:"provider,omitempty"`
	// Warmup and Reason, when Warmup is set, are the model's
	// Info.ProviderChoice, as if ort.providers auto had measured it.
	Warmup map[string]time.Duration `json:"warmup,omitempty"`
	Reason string                   `json:"reason,omitempty"`
}

// Bytes is the fake model's "file": what a test pushes to a registry.
func (s Spec) Bytes() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return append([]byte(magic), b...)
}

// Linear is a linear classifier shaped like the demo model (see Spec).
func Linear(n, k int64, w, b []float32) []byte {
	return Spec{Kind: "linear", N: n, K: k, W: w, B: b}.Bytes()
}

// Scaled is Linear with 4 features and 2 classes whose weights depend on
// seed, as testmodels.Scaled: two "versions" give different, valid answers.
func Scaled(seed float32) []byte {
	return Linear(4, 2, []float32{1, -1, 0.5, -0.5, seed, -seed, 0.25, 0.75}, []float32{0.1, -0.1})
}

// Sigmoid is a binary classifier with one output, "probability" FP32
// [-1, 1] = sigmoid(features·w + b), as testmodels.Sigmoid.
func Sigmoid(n int64, w []float32, b float32) []byte {
	return Spec{Kind: "sigmoid", N: n, K: 1, W: w, B: []float32{b}}.Bytes()
}

// Identity returns y = x for input "x" and output "y" of type d and shape.
func Identity(d wire.DType, shape ...int64) []byte {
	return Spec{Kind: "identity", DType: d, Shape: shape}.Bytes()
}

// SumProd takes "a" and "b" and returns "sum" and "prod" (see Spec).
func SumProd() []byte { return Spec{Kind: "sumprod"}.Bytes() }

// NaN answers NaN everywhere (see Spec).
func NaN() []byte { return Spec{Kind: "nan"}.Bytes() }

// ErrNotAModel is what Load says of bytes that are no fake model; it wraps
// serving.ErrInvalidModel, as ONNX Runtime's refusal does.
var ErrNotAModel = fmt.Errorf("%w: not a fake model", serving.ErrInvalidModel)

// Loader loads fake models; its zero value is ready to use. It implements
// the catalog's Loader.
type Loader struct {
	mu     sync.Mutex
	models []*Model
}

// Load reads a fake model's description.
func (l *Loader) Load(b []byte, o serving.ModelOptions) (serving.Model, error) {
	m, err := Load(b, o)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.models = append(l.models, m)
	l.mu.Unlock()
	return m, nil
}

// Open is the number of models loaded and not closed.
func (l *Loader) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.models {
		if !m.Closed() {
			n++
		}
	}
	return n
}

// Load reads a fake model's description into a Model.
func Load(b []byte, o serving.ModelOptions) (*Model, error) {
	rest, ok := bytes.CutPrefix(b, []byte(magic))
	if !ok {
		return nil, ErrNotAModel
	}
	var s Spec
	if err := json.Unmarshal(rest, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAModel, err)
	}
	info := serving.Info{Name: o.Name, Version: o.Version, Provider: serving.ProviderCPU}
	if s.Provider != "" {
		info.Provider = s.Provider
	}
	if s.Warmup != nil {
		info.ProviderChoice = &serving.ProviderChoice{Warmup: s.Warmup, Reason: s.Reason}
	}
	fp32 := func(name string, shape ...int64) wire.TensorSpec {
		return wire.TensorSpec{Name: name, DType: wire.FP32, Shape: shape}
	}
	switch s.Kind {
	case "linear":
		if s.N < 1 || s.K < 1 || int64(len(s.W)) != s.N*s.K || int64(len(s.B)) != s.K {
			return nil, fmt.Errorf("%w: linear model with N=%d, K=%d, %d weights and %d biases", serving.ErrInvalidModel, s.N, s.K, len(s.W), len(s.B))
		}
		info.Inputs = []wire.TensorSpec{fp32("features", -1, s.N)}
		info.Outputs = []wire.TensorSpec{{Name: "label", DType: wire.INT64, Shape: []int64{-1}}, fp32("probabilities", -1, s.K)}
	case "sigmoid":
		if s.N < 1 || s.K != 1 || int64(len(s.W)) != s.N || len(s.B) != 1 {
			return nil, fmt.Errorf("%w: sigmoid model with N=%d, K=%d, %d weights and %d biases", serving.ErrInvalidModel, s.N, s.K, len(s.W), len(s.B))
		}
		info.Inputs = []wire.TensorSpec{fp32("features", -1, s.N)}
		info.Outputs = []wire.TensorSpec{fp32("probability", -1, 1)}
	case "identity":
		if !s.DType.Supported() {
			return nil, fmt.Errorf("%w: input \"x\" has element type %s", wire.ErrUnsupportedType, s.DType)
		}
		info.Inputs = []wire.TensorSpec{{Name: "x", DType: s.DType, Shape: s.Shape}}
		info.Outputs = []wire.TensorSpec{{Name: "y", DType: s.DType, Shape: s.Shape}}
	case "sumprod":
		info.Inputs = []wire.TensorSpec{fp32("a", -1, 3), fp32("b", -1, 3)}
		info.Outputs = []wire.TensorSpec{fp32("sum", -1, 3), fp32("prod", -1, 3)}
	case "nan":
		info.Inputs = []wire.TensorSpec{fp32("x", -1, 4)}
		info.Outputs = []wire.TensorSpec{fp32("y", -1, 4)}
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", ErrNotAModel, s.Kind)
	}
	return &Model{spec: s, info: info}, nil
}

// Model is a fake serving.Model.
type Model struct {
	spec   Spec
	info   serving.Info
	runs   atomic.Int64
	closed atomic.Bool
}

// Info is the model's signature, on the "cpu" provider unless the Spec
// names another.
func (m *Model) Info() serving.Info { return m.info }

// Close marks the model closed; a Run after it panics, as a use of a
// destroyed ONNX Runtime session would crash.
func (m *Model) Close() { m.closed.Store(true) }

// Closed reports whether Close was called.
func (m *Model) Closed() bool { return m.closed.Load() }

// Runs is the number of runs so far.
func (m *Model) Runs() int64 { return m.runs.Load() }

// Run computes the model's outputs in Go.
func (m *Model) Run(ctx context.Context, in []wire.Tensor, outputs []string) ([]wire.Tensor, error) {
	if m.closed.Load() {
		panic(fmt.Sprintf("servingtest: run of closed model %s version %s", m.info.Name, m.info.Version))
	}
	m.runs.Add(1)
	if d := m.spec.Delay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if m.spec.Fail != "" {
		return nil, errors.New(m.spec.Fail)
	}
	var all []wire.Tensor
	rows := in[0].Shape[0]
	switch m.spec.Kind {
	case "linear":
		all = m.linear(in[0].Data.([]float32), rows)
	case "sigmoid":
		all = m.sigmoid(in[0].Data.([]float32), rows)
	case "identity":
		all = []wire.Tensor{wire.Clone(in[0])}
		all[0].Name = "y"
	case "sumprod":
		a, b := in[0].Data.([]float32), in[1].Data.([]float32)
		sum, prod := make([]float32, len(a)), make([]float32, len(a))
		for i := range a {
			sum[i], prod[i] = a[i]+b[i], a[i]*b[i]
		}
		shape := in[0].Shape
		all = []wire.Tensor{{Name: "sum", Shape: shape, Data: sum}, {Name: "prod", Shape: shape, Data: prod}}
	case "nan":
		y := make([]float32, len(in[0].Data.([]float32)))
		for i := range y {
			y[i] = float32(math.NaN())
		}
		all = []wire.Tensor{{Name: "y", Shape: in[0].Shape, Data: y}}
	}
	if len(outputs) == 0 {
		return all, nil
	}
	out := make([]wire.Tensor, len(outputs))
	for i, name := range outputs {
		for _, t := range all {
			if t.Name == name {
				out[i] = t
			}
		}
	}
	return out, nil
}

// sigmoid is 1 / (1 + exp(-(x·W + B))), row by row.
func (m *Model) sigmoid(x []float32, rows int64) []wire.Tensor {
	n := m.spec.N
	p := make([]float32, rows)
	for r := range rows {
		v := float64(m.spec.B[0])
		for i := range n {
			v += float64(x[r*n+i]) * float64(m.spec.W[i])
		}
		p[r] = float32(1 / (1 + math.Exp(-v)))
	}
	return []wire.Tensor{{Name: "probability", Shape: []int64{rows, 1}, Data: p}}
}

// linear is softmax(x·W + B) and its argmax, row by row.
func (m *Model) linear(x []float32, rows int64) []wire.Tensor {
	n, k := m.spec.N, m.spec.K
	label, probs := make([]int64, rows), make([]float32, rows*k)
	logits := make([]float64, k)
	for r := range rows {
		for j := range k {
			v := float64(m.spec.B[j])
			for i := range n {
				v += float64(x[r*n+i]) * float64(m.spec.W[i*k+j])
			}
			logits[j] = v
		}
		label[r] = int64(wire.Argmax(logits))
		top := logits[label[r]]
		var sum float64
		for j := range k {
			sum += math.Exp(logits[j] - top)
		}
		for j := range k {
			probs[r*k+j] = float32(math.Exp(logits[j]-top) / sum)
		}
	}
	return []wire.Tensor{{Name: "label", Shape: []int64{rows}, Data: label}, {Name: "probabilities", Shape: []int64{rows, k}, Data: probs}}
}
