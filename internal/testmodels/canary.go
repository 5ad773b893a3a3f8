package testmodels

import (
	"fmt"

	"github.com/modelgate/modelgate/internal/onnx"
)

// The canary test models share the signature of Linear(4, 2, ...):
// "features" FP32 [-1, 4] in; "label" INT64 [-1] and "probabilities"
// FP32 [-1, 2] out. Their label is argmax(x0, 0) (CanaryStable) unless
// said otherwise, so with x0 = 1 it is 0.

var stableW = []float32{1, 0, 0, 0, 0, 0, 0, 0}

// CanaryStable: label = argmax(x0, 0).
func CanaryStable() []byte { return Linear(4, 2, stableW, []float32{0, 0}) }

// CanaryGood computes what CanaryStable does, from different bytes.
func CanaryGood() []byte {
	g := linearGraph("good", stableW)
	return must(&onnx.Model{Graph: g, ProducerName: "modelgate-tests-good"})
}

// CanaryDisagree: label = argmax(x0, x1): with x0 = 1 it differs from
// CanaryStable wherever x1 > 1.
func CanaryDisagree() []byte {
	return Linear(4, 2, []float32{1, 0, 0, 1, 0, 0, 0, 0}, []float32{0, 0})
}

// CanaryNaN: the stable labels, but probabilities are NaN.
func CanaryNaN() []byte {
	g := &onnx.Graph{Name: "canary-nan"}
	g.Input("features", onnx.Float, -1, 4).
		Output("label", onnx.Int64, -1).
		Output("probabilities", onnx.Float, -1, 2).
		Init(onnx.FloatTensor("W", []int64{4, 2}, stableW)).
		Init(onnx.FloatTensor("one", []int64{}, []float32{1})).
		Add("MatMul", []string{"features", "W"}, []string{"logits"}).
		Add("ArgMax", []string{"logits"}, []string{"label"}, onnx.AttrInt("axis", 1), onnx.AttrInt("keepdims", 0)).
		Add("Abs", []string{"logits"}, []string{"abs"}).
		Add("Add", []string{"abs", "one"}, []string{"pos"}).
		Add("Neg", []string{"pos"}, []string{"neg"}).
		Add("Sqrt", []string{"neg"}, []string{"probabilities"})
	return must(&onnx.Model{Graph: g, ProducerName: "modelgate-tests"})
}

// CanaryFailing: the stable answers, but the run fails (Gather out of
// bounds) for any row with a value of 2 or more; its warm-up on zeros
// passes.
func CanaryFailing() []byte {
	g := linearGraph("canary-failing", stableW)
	g.Output("check", onnx.Float, -1, 4).
		Init(onnx.FloatTensor("table", []int64{2}, []float32{0, 1})).
		Add("Cast", []string{"features"}, []string{"idx"}, onnx.AttrInt("to", int64(onnx.Int64))).
		Add("Gather", []string{"table", "idx"}, []string{"check"}, onnx.AttrInt("axis", 0))
	return must(&onnx.Model{Graph: g, ProducerName: "modelgate-tests"})
}

// CanarySlow: the stable answers plus an output "work" that costs depth
// matrix products of width×width per row.
func CanarySlow(width, depth int) []byte {
	g := linearGraph("canary-slow", stableW)
	w1 := make([]float32, 4*width)
	for i := range w1 {
		w1[i] = float32(i%7) / 7
	}
	w2 := make([]float32, width*width)
	for i := range w2 {
		w2[i] = float32((i*31)%13-6) / float32(6*width)
	}
	g.Output("work", onnx.Float, -1, 1).
		Init(onnx.FloatTensor("W1", []int64{4, int64(width)}, w1)).
		Init(onnx.FloatTensor("W2", []int64{int64(width), int64(width)}, w2)).
		Add("MatMul", []string{"features", "W1"}, []string{"h0"})
	for i := range depth {
		g.Add("MatMul", []string{fmt.Sprintf("h%d", i), "W2"}, []string{fmt.Sprintf("m%d", i)}).
			Add("Tanh", []string{fmt.Sprintf("m%d", i)}, []string{fmt.Sprintf("h%d", i+1)})
	}
	g.Add("ReduceMean", []string{fmt.Sprintf("h%d", depth)}, []string{"work"}, onnx.AttrInt("keepdims", 1), onnx.AttrInts("axes", 1))
	return must(&onnx.Model{Graph: g, ProducerName: "modelgate-tests"})
}

// linearGraph is Linear(4, 2, w, 0)'s graph under another name.
func linearGraph(name string, w []float32) *onnx.Graph {
	g := &onnx.Graph{Name: name}
	g.Input("features", onnx.Float, -1, 4).
		Output("label", onnx.Int64, -1).
		Output("probabilities", onnx.Float, -1, 2).
		Init(onnx.FloatTensor("W", []int64{4, 2}, w)).
		Add("MatMul", []string{"features", "W"}, []string{"logits"}).
		Add("Softmax", []string{"logits"}, []string{"probabilities"}, onnx.AttrInt("axis", 1)).
		Add("ArgMax", []string{"logits"}, []string{"label"}, onnx.AttrInt("axis", 1), onnx.AttrInt("keepdims", 0))
	return g
}
