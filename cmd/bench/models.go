package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/modelgate/modelgate/internal/onnx"
)

// weightsFile is what bench/python/models.py writes beside raw float32
// layer files: the layers of a scikit-learn MLPClassifier.
type weightsFile struct {
	Layers []struct {
		W   string `json:"w"`
		B   string `json:"b"`
		In  int64  `json:"in"`
		Out int64  `json:"out"`
	} `json:"layers"`
	Activation string `json:"activation"`
}

// mlpONNX writes the MLP described by dir/name.weights.json as an ONNX
// model with the demo model's interface: input "features" FP32 [N, n],
// outputs "label" INT64 [N] and "probabilities" FP32 [N, k]. ReLU between
// layers, softmax at the end: what MLPClassifier.predict_proba computes.
func mlpONNX(dir, name string) ([]byte, error) {
	var wf weightsFile
	b, err := os.ReadFile(filepath.Join(dir, name+".weights.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &wf); err != nil {
		return nil, err
	}
	if wf.Activation != "relu" || len(wf.Layers) == 0 {
		return nil, fmt.Errorf("%s: want a relu MLP, got %q with %d layers", name, wf.Activation, len(wf.Layers))
	}
	first, last := wf.Layers[0], wf.Layers[len(wf.Layers)-1]
	g := &onnx.Graph{Name: name}
	g.Input("features", onnx.Float, -1, first.In).
		Output("label", onnx.Int64, -1).
		Output("probabilities", onnx.Float, -1, last.Out)
	x := "features"
	for i, l := range wf.Layers {
		w, err := readF32(filepath.Join(dir, l.W), l.In*l.Out)
		if err != nil {
			return nil, err
		}
		bias, err := readF32(filepath.Join(dir, l.B), l.Out)
		if err != nil {
			return nil, err
		}
		wn, bn := fmt.Sprintf("W%d", i), fmt.Sprintf("B%d", i)
		g.Init(onnx.FloatTensor(wn, []int64{l.In, l.Out}, w)).Init(onnx.FloatTensor(bn, []int64{l.Out}, bias))
		mm, pre := fmt.Sprintf("mm%d", i), fmt.Sprintf("pre%d", i)
		g.Add("MatMul", []string{x, wn}, []string{mm}).Add("Add", []string{mm, bn}, []string{pre})
		x = pre
		if i < len(wf.Layers)-1 {
			h := fmt.Sprintf("h%d", i)
			g.Add("Relu", []string{pre}, []string{h})
			x = h
		}
	}
	g.Add("Softmax", []string{x}, []string{"probabilities"}, onnx.AttrInt("axis", 1)).
		Add("ArgMax", []string{x}, []string{"label"}, onnx.AttrInt("axis", 1), onnx.AttrInt("keepdims", 0))
	return (&onnx.Model{Graph: g, ProducerName: "modelgate bench", DocString: name + ": scikit-learn MLPClassifier weights"}).Marshal()
}

func readF32(path string, n int64) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != 4*n {
		return nil, fmt.Errorf("%s: %d bytes, want %d float32 values", path, len(b), n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}
