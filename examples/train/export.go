package main

import (
	"fmt"
	"strconv"

	"github.com/modelgate/modelgate/internal/onnx"
)

// The model's identity and its interface, which the gateway and the README
// rely on.
const (
	modelName    = "breast-cancer"
	modelVersion = 1
	producerName = "modelgate examples/train"
	inputName    = "features"
	labelOutput  = "label"
	probsOutput  = "probabilities"
)

// ExportInfo describes the training run, for the model's metadata.
type ExportInfo struct {
	Config          TrainConfig
	TrainRows       int
	HoldoutRows     int
	HoldoutAccuracy float64 // measured with gorgonia
	Classes         []string
}

// ExportONNX builds the ONNX model of p:
//
//	features [N,30] FP32
//	  → Sub(mean) → Div(std) → MatMul(W1) → Add(b1) → Relu → MatMul(W2) → Add(b2) = logits
//	label         [N] INT64    = ArgMax(logits, axis 1, keepdims 0)
//	probabilities [N,2] FP32   = Softmax(logits, axis 1)
//
// The standardisation is part of the graph, so clients send raw features.
func ExportONNX(p *Params, info ExportInfo) *onnx.Model {
	h := int64(p.Hidden)
	g := &onnx.Graph{Name: modelName}
	g.Input(inputName, onnx.Float, -1, numFeatures)
	g.Output(labelOutput, onnx.Int64, -1)
	g.Output(probsOutput, onnx.Float, -1, numClasses)
	g.Init(onnx.FloatTensor("mean", []int64{numFeatures}, p.Mean))
	g.Init(onnx.FloatTensor("std", []int64{numFeatures}, p.Std))
	g.Init(onnx.FloatTensor("W1", []int64{numFeatures, h}, p.W1))
	g.Init(onnx.FloatTensor("b1", []int64{h}, p.B1))
	g.Init(onnx.FloatTensor("W2", []int64{h, numClasses}, p.W2))
	g.Init(onnx.FloatTensor("b2", []int64{numClasses}, p.B2))
	g.Add("Sub", []string{inputName, "mean"}, []string{"centered"})
	g.Add("Div", []string{"centered", "std"}, []string{"standardised"})
	g.Add("MatMul", []string{"standardised", "W1"}, []string{"hidden_mm"})
	g.Add("Add", []string{"hidden_mm", "b1"}, []string{"hidden_pre"})
	g.Add("Relu", []string{"hidden_pre"}, []string{"hidden"})
	g.Add("MatMul", []string{"hidden", "W2"}, []string{"logits_mm"})
	g.Add("Add", []string{"logits_mm", "b2"}, []string{"logits"})
	g.Add("ArgMax", []string{"logits"}, []string{labelOutput}, onnx.AttrInt("axis", 1), onnx.AttrInt("keepdims", 0))
	g.Add("Softmax", []string{"logits"}, []string{probsOutput}, onnx.AttrInt("axis", 1))

	cfg := info.Config
	labels := ""
	for i, c := range info.Classes {
		if i > 0 {
			labels += ","
		}
		labels += fmt.Sprintf("%d=%s", i, c)
	}
	return &onnx.Model{
		Graph:        g,
		ProducerName: producerName,
		ModelVersion: modelVersion,
		DocString:    "Breast cancer (Wisconsin diagnostic) classifier: a small MLP trained with gorgonia; raw features in, label and class probabilities out.",
		Metadata: map[string]string{
			"name":             modelName,
			"version":          strconv.Itoa(modelVersion),
			"dataset":          "Breast Cancer Wisconsin (Diagnostic), UCI ML repository, CC BY 4.0 (as shipped by scikit-learn 1.2.1)",
			"labels":           labels,
			"architecture":     fmt.Sprintf("standardise, %d-%d relu-%d, softmax", numFeatures, p.Hidden, numClasses),
			"optimizer":        fmt.Sprintf("adam full-batch, lr %g, l2 %g", cfg.LearnRate, cfg.L2),
			"epochs":           strconv.Itoa(cfg.Epochs),
			"seed":             strconv.FormatUint(cfg.Seed, 10),
			"train_rows":       strconv.Itoa(info.TrainRows),
			"holdout_rows":     strconv.Itoa(info.HoldoutRows),
			"holdout_accuracy": strconv.FormatFloat(info.HoldoutAccuracy, 'f', 4, 64),
			"trainer":          "gorgonia.org/gorgonia v0.9.18, float32",
		},
	}
}
