// Package testmodels writes small ONNX models for tests with the project's
// ONNX writer: identities for every served element type, a model with two
// inputs and two outputs, a linear classifier shaped like the demo model,
// a sigmoid binary classifier, an image model, and models with defects
// (NaN outputs, unsupported types).
package testmodels

import (
	"github.com/modelgate/modelgate/internal/onnx"
)

func must(m *onnx.Model) []byte {
	b, err := m.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// Identity returns y = x for input "x" and output "y" of type t and shape.
func Identity(t onnx.DataType, shape ...int64) []byte {
	g := &onnx.Graph{Name: "identity"}
	g.Input("x", t, shape...).Output("y", t, shape...).Add("Identity", []string{"x"}, []string{"y"})
	return must(&onnx.Model{Graph: g, ProducerName: "modelgate-tests"})
}

// SumProd takes "a" and "b" (FP32 [-1, 3]) and returns "sum" = a+b and
// "prod" = a*b.
func SumProd() []byte {
	g := &onnx.Graph{Name: "sumprod"}
	g.Input("a", onnx.Float, -1, 3).Input("b", onnx.Float, -1, 3).
		Output("sum", onnx.Float, -1, 3).Output("prod", onnx.Float, -1, 3).
		Add("Add", []string{"a", "b"}, []string{"sum"}).
		Add("Mul", []string{"a", "b"}, []string{"prod"})
	return must(&onnx.Model{Graph: g, ProducerName: "modelgate-tests"})
}

// Linear is a linear classifier shaped like the demo model: input
// "features" FP32 [-1, n], outputs "label" INT64 [-1] (argmax) and
// "probabilities" FP32 [-1, k] (softmax of features·W + b). W is n×k,
// row-major.
func Linear(n, k int64, w, b []float32) []byte {
	g := &onnx.Graph{Name: "linear"}
	g.Input("features", onnx.Float, -1, n).
		Output("label", onnx.Int64, -1).
		Output("probabilities", onnx.Float, -1, k).
		Init(onnx.FloatTensor("W", []int64{n, k}, w)).
		Init(onnx.FloatTensor("B", []int64{k}, b)).
		Add("MatMul", []string{"features", "W"}, []string{"xw"}).
		Add("Add", []string{"xw", "B"}, []string{"logits"}).
		Add("Softmax", []string{"logits"}, []string{"probabilities"}, onnx.AttrInt("axis", 1)).
		Add("ArgMax", []string{"logits"}, []string{"label"}, onnx.AttrInt("axis", 1), onnx.AttrInt("keepdims", 0))
	return must(&onnx.Model{Graph: g, ProducerName: "modelgate-tests"})
}

// Sigmoid is a binary classifier with one output: input "features" FP32
// [-1, n], output "probability" FP32 [-1, 1], the sigmoid of features·w +
// b (the probability of class 1).
func Sigmoid(n int64, w []float32, b float32) []byte {
	g := &onnx.Graph{Name: "sigmoid"}
	g.Input("features", onnx.Float, -1, n).
		Output("probability", onnx.Float, -1, 1).
		Init(onnx.FloatTensor("W", []int64{n, 1}, w)).
		Init(onnx.FloatTensor("B", []int64{1}, []float32{b})).
		Add("MatMul", []string{"features", "W"}, []string{"xw"}).
		Add("Add", []string{"xw", "B"}, []string{"logit"}).
		Add("Sigmoid", []string{"logit"}, []string{"probability"})
	return must(&onnx.Model{Graph: g, ProducerName: "modelgate-tests"})
}

// Scaled is Linear with 4 features and 2 classes whose weights depend on
// seed, so that two "versions" give different but valid answers.
func Scaled(seed float32) []byte {
	w := []float32{1, -1, 0.5, -0.5, seed, -seed, 0.25, 0.75}
	return Linear(4, 2, w, []float32{0.1, -0.1})
}

// NaN has input "x" FP32 [-1, 4] and output "y" = sqrt(-(x*x) - 1): NaN
// everywhere.
func NaN() []byte {
	g := &onnx.Graph{Name: "nan"}
	g.Input("x", onnx.Float, -1, 4).Output("y", onnx.Float, -1, 4).
		Init(onnx.FloatTensor("one", []int64{}, []float32{1})).
		Add("Mul", []string{"x", "x"}, []string{"sq"}).
		Add("Neg", []string{"sq"}, []string{"neg"}).
		Add("Sub", []string{"neg", "one"}, []string{"arg"}).
		Add("Sqrt", []string{"arg"}, []string{"y"})
	return must(&onnx.Model{Graph: g, ProducerName: "modelgate-tests"})
}

// Float16 is the identity on FP16 [-1, 2].
func Float16() []byte { return Identity(onnx.Float16, -1, 2) }

// Float8 has a FLOAT8E4M3FN input, which modelgate refuses to serve (the
// protocol has no name for it).
func Float8() []byte {
	g := &onnx.Graph{Name: "float8"}
	g.Input("x", onnx.DataType(17), -1, 2).Output("y", onnx.DataType(17), -1, 2).Add("Identity", []string{"x"}, []string{"y"})
	return must(&onnx.Model{Graph: g, IRVersion: 9, Opset: 21, ProducerName: "modelgate-tests"})
}

// Image takes "image" FP32 [-1, 3, h, w] and returns "scaled" = image / 255,
// elementwise: an image model as cheap as can be, for measuring what it
// costs to carry its tensors.
func Image(h, w int64) []byte {
	g := &onnx.Graph{Name: "image"}
	g.Input("image", onnx.Float, -1, 3, h, w).Output("scaled", onnx.Float, -1, 3, h, w).
		Init(onnx.FloatTensor("scale", []int64{}, []float32{1.0 / 255})).
		Add("Mul", []string{"image", "scale"}, []string{"scaled"})
	return must(&onnx.Model{Graph: g, ProducerName: "modelgate-tests"})
}
