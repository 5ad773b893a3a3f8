package validation

import (
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/modelgate/modelgate/internal/onnx"
	"github.com/modelgate/modelgate/internal/ortest"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
)

var testRT *serving.Runtime

func TestMain(m *testing.M) { ortest.Main(m, &testRT) }

// The committed demo model and its holdout, relative to this package.
const (
	demoDir     = "../examples/breast-cancer"
	demoFeature = 30
)

func readDemo(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(demoDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// model wraps bytes as a Model whose manifest is what the registry would
// record on push: sha256, size and the signature ONNX Runtime reads.
func model(t testing.TB, version string, b []byte) Model {
	t.Helper()
	s, err := testRT.NewSession(b, serving.SessionOptions{Name: "inspect"})
	if err != nil {
		t.Fatalf("version %s does not load: %v", version, err)
	}
	defer s.Close()
	sum := sha256.Sum256(b)
	return Model{Name: "breast-cancer", Version: version, Bytes: b, Manifest: registry.Manifest{
		Name: "breast-cancer", Version: version, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b)),
		Inputs: s.Inputs(), Outputs: s.Outputs(),
	}}
}

// splitData is the breast-cancer data split the way the demo model was
// trained: the training rows are those of data.csv that holdout.csv does
// not hold.
type splitData struct {
	trainX [][]float64
	trainY []float64
}

var (
	dataOnce sync.Once
	data     splitData
	dataErr  error
)

// trainingRows reads data.csv (scikit-learn's layout: a count header, then
// 30 features and the label per line) and drops the holdout's rows.
func trainingRows(t testing.TB) splitData {
	t.Helper()
	dataOnce.Do(func() {
		held := make(map[string]bool)
		recs, err := csv.NewReader(bytes.NewReader(readDemo(t, "holdout.csv"))).ReadAll()
		if err != nil {
			dataErr = err
			return
		}
		for _, r := range recs[1:] {
			held[strings.Join(r, ",")] = true
		}
		r := csv.NewReader(bytes.NewReader(readDemo(t, "data.csv")))
		r.FieldsPerRecord = -1 // the first line is "rows,features,class0,class1"
		recs, err = r.ReadAll()
		if err != nil {
			dataErr = err
			return
		}
		for _, r := range recs[1:] {
			if held[strings.Join(r, ",")] {
				continue
			}
			x := make([]float64, demoFeature)
			for j := range x {
				if x[j], err = strconv.ParseFloat(r[j], 64); err != nil {
					dataErr = err
					return
				}
			}
			y, err := strconv.ParseFloat(r[demoFeature], 64)
			if err != nil {
				dataErr = err
				return
			}
			data.trainX = append(data.trainX, x)
			data.trainY = append(data.trainY, y)
		}
	})
	if dataErr != nil {
		t.Fatal(dataErr)
	}
	return data
}

// logistic is a binary logistic regression on raw features: P(benign) =
// σ(x·W + B).
type logistic struct {
	W []float64
	B float64
}

// trainLogistic fits a logistic regression on the chosen feature columns
// of the training rows with full-batch gradient descent on standardised
// features, then folds the standardisation into the weights. It is a real
// retrain of the demo task (a different model family from the demo MLP,
// on the same training rows), deterministic, and fast.
func trainLogistic(t testing.TB, features []int, epochs int) logistic {
	d := trainingRows(t)
	n, f := len(d.trainX), len(features)
	mean, std := make([]float64, f), make([]float64, f)
	for k, j := range features {
		for _, x := range d.trainX {
			mean[k] += x[j]
		}
		mean[k] /= float64(n)
		for _, x := range d.trainX {
			std[k] += (x[j] - mean[k]) * (x[j] - mean[k])
		}
		std[k] = math.Sqrt(std[k] / float64(n))
		if std[k] == 0 {
			std[k] = 1
		}
	}
	z := make([][]float64, n)
	for i, x := range d.trainX {
		z[i] = make([]float64, f)
		for k, j := range features {
			z[i][k] = (x[j] - mean[k]) / std[k]
		}
	}
	w, b := make([]float64, f), 0.0
	const lr, l2 = 0.5, 1e-3
	grad := make([]float64, f)
	for range epochs {
		clear(grad)
		var gb float64
		for i, zi := range z {
			s := b
			for k := range zi {
				s += w[k] * zi[k]
			}
			e := 1/(1+math.Exp(-s)) - d.trainY[i]
			for k := range zi {
				grad[k] += e * zi[k]
			}
			gb += e
		}
		for k := range w {
			w[k] -= lr * (grad[k]/float64(n) + l2*w[k])
		}
		b -= lr * gb / float64(n)
	}
	raw := logistic{W: make([]float64, demoFeature), B: b}
	for k, j := range features {
		raw.W[j] = w[k] / std[k]
		raw.B -= w[k] * mean[k] / std[k]
	}
	return raw
}

// allFeatures is every column of the demo data.
func allFeatures() []int {
	idx := make([]int, demoFeature)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// classifier describes a demo-shaped classifier to write with the ONNX
// writer; the zero value of each field keeps the demo model's interface
// (input "features" FP32 [-1,30]; outputs "label" INT64 [-1] and
// "probabilities" FP32 [-1,2]).
type classifier struct {
	lr          logistic
	nanWeights  bool          // training diverged: every weight is NaN
	inputWidth  int64         // > 30: extra features with zero weight
	labelName   string        // rename the label output
	probsType   onnx.DataType // onnx.Double: retype the probabilities
	extraOutput string        // add the logits as another output
	extraInput  string        // add a second input, added to the features
	slowLayers  int           // a useless chain of MatMuls in front
	slowWidth   int64
	probOnly    bool // one output "probability" FP32 [-1]: P(class 1)
	probsFirst  bool // "probabilities" before "label"
	metadata    map[string]string
}

// build writes the classifier: logits = [0, x·W + B], label = argmax,
// probabilities = softmax (so P(class 1) = σ(x·W + B)).
func (c classifier) build(t testing.TB) []byte {
	t.Helper()
	width := c.inputWidth
	if width == 0 {
		width = demoFeature
	}
	w := make([]float32, width*2)
	for j, v := range c.lr.W {
		w[j*2+1] = float32(v)
	}
	b := []float32{0, float32(c.lr.B)}
	if c.nanWeights {
		for i := range w {
			w[i] = float32(math.NaN())
		}
	}
	g := &onnx.Graph{Name: "breast-cancer-logistic"}
	g.Input("features", onnx.Float, -1, width)
	x := "features"
	if c.extraInput != "" {
		g.Input(c.extraInput, onnx.Float, -1, width)
		g.Add("Add", []string{"features", c.extraInput}, []string{"summed"})
		x = "summed"
	}
	g.Init(onnx.FloatTensor("W", []int64{width, 2}, w)).Init(onnx.FloatTensor("B", []int64{2}, b))
	g.Add("MatMul", []string{x, "W"}, []string{"xw"})
	g.Add("Add", []string{"xw", "B"}, []string{"logits0"})
	logits := "logits0"
	if c.slowLayers > 0 {
		prev, in := x, width
		// Every layer but the first shares one square weight matrix, so
		// that the model is slow without being large.
		square := make([]float32, c.slowWidth*c.slowWidth)
		for k := range square {
			square[k] = 1 / float32(c.slowWidth)
		}
		g.Init(onnx.FloatTensor("S", []int64{c.slowWidth, c.slowWidth}, square))
		first := make([]float32, in*c.slowWidth)
		for k := range first {
			first[k] = 1 / float32(in)
		}
		g.Init(onnx.FloatTensor("S0", []int64{in, c.slowWidth}, first))
		for i := range c.slowLayers {
			weights := "S"
			if i == 0 {
				weights = "S0"
			}
			out := "h" + strconv.Itoa(i)
			g.Add("MatMul", []string{prev, weights}, []string{out})
			prev, in = out, c.slowWidth
		}
		g.Init(onnx.FloatTensor("Z", []int64{in, 2}, make([]float32, in*2)))
		g.Add("MatMul", []string{prev, "Z"}, []string{"useless"})
		g.Add("Add", []string{logits, "useless"}, []string{"logits"})
		logits = "logits"
	}
	switch {
	case c.probOnly:
		g.Output("probability", onnx.Float, -1)
		g.Add("Softmax", []string{logits}, []string{"probs2"}, onnx.AttrInt("axis", 1))
		g.Init(onnx.Int64Tensor("starts", []int64{1}, []int64{1})).
			Init(onnx.Int64Tensor("ends", []int64{1}, []int64{2})).
			Init(onnx.Int64Tensor("axes", []int64{1}, []int64{1}))
		g.Add("Slice", []string{"probs2", "starts", "ends", "axes"}, []string{"p1"})
		g.Add("Squeeze", []string{"p1", "axes"}, []string{"probability"})
	default:
		label := c.labelName
		if label == "" {
			label = "label"
		}
		g.Add("ArgMax", []string{logits}, []string{label}, onnx.AttrInt("axis", 1), onnx.AttrInt("keepdims", 0))
		if c.probsFirst {
			g.Output("probabilities", onnx.Float, -1, 2)
			g.Add("Softmax", []string{logits}, []string{"probabilities"}, onnx.AttrInt("axis", 1))
			g.Output(label, onnx.Int64, -1)
			break
		}
		g.Output(label, onnx.Int64, -1)
		if c.probsType == onnx.Double {
			g.Output("probabilities", onnx.Double, -1, 2)
			g.Add("Softmax", []string{logits}, []string{"probs32"}, onnx.AttrInt("axis", 1))
			g.Add("Cast", []string{"probs32"}, []string{"probabilities"}, onnx.AttrInt("to", int64(onnx.Double)))
		} else {
			g.Output("probabilities", onnx.Float, -1, 2)
			g.Add("Softmax", []string{logits}, []string{"probabilities"}, onnx.AttrInt("axis", 1))
		}
	}
	if c.extraOutput != "" {
		g.Output(c.extraOutput, onnx.Float, -1, 2)
		g.Add("Identity", []string{logits}, []string{c.extraOutput})
	}
	b2, err := (&onnx.Model{Graph: g, ProducerName: "modelgate validation tests", Metadata: c.metadata}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b2
}
