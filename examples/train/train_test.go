package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelgate/modelgate/internal/ortest"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/wire"
)

// Paths of the committed example, relative to this package's directory.
const (
	dataPath    = "../breast-cancer/data.csv"
	modelPath   = "../breast-cancer/model.onnx"
	holdoutPath = "../breast-cancer/holdout.csv"
	trainPath   = "../breast-cancer/train.csv"
)

// testEpochs keeps the training done by the tests short; the code path is the
// one the command uses.
const testEpochs = 60

// TestMain closes the ONNX Runtime the tests that run models start.
func TestMain(m *testing.M) { os.Exit(ortest.Run(m)) }

// runORT runs an ONNX model on raw feature rows and returns its label and
// probabilities outputs.
func runORT(t *testing.T, model []byte, rows [][]float32) (labels []int64, probs []float32) {
	t.Helper()
	sess, err := ortest.Runtime(t).NewSession(model, serving.SessionOptions{Name: "train", Version: "test"})
	if err != nil {
		t.Fatalf("loading the model into ONNX Runtime: %v", err)
	}
	defer sess.Close()
	flat := make([]float32, 0, len(rows)*numFeatures)
	for _, r := range rows {
		flat = append(flat, r...)
	}
	in := wire.Tensor{Name: inputName, Shape: []int64{int64(len(rows)), numFeatures}, Data: flat}
	outs, err := sess.Run(t.Context(), []wire.Tensor{in}, []string{labelOutput, probsOutput})
	if err != nil {
		t.Fatalf("running the model: %v", err)
	}
	lt, ok := outs[0].Data.([]int64)
	if !ok {
		t.Fatalf("output %q is %s, want INT64", labelOutput, outs[0].DType())
	}
	pt, ok := outs[1].Data.([]float32)
	if !ok {
		t.Fatalf("output %q is %s, want FP32", probsOutput, outs[1].DType())
	}
	if got, want := outs[0].Shape, []int64{int64(len(rows))}; !slices.Equal(got, want) {
		t.Fatalf("%s shape %v, want %v", labelOutput, got, want)
	}
	if got, want := outs[1].Shape, []int64{int64(len(rows)), numClasses}; !slices.Equal(got, want) {
		t.Fatalf("%s shape %v, want %v", probsOutput, got, want)
	}
	return lt, pt
}

// testBuild trains a short run once for the tests that share it.
var testBuild = sync.OnceValues(func() (*Result, error) {
	return Build(dataPath, testConfig())
})

func testConfig() TrainConfig {
	return TrainConfig{Hidden: defaultHidden, Epochs: testEpochs, LearnRate: defaultLearnRate, L2: defaultL2, Seed: defaultSeed, SplitSeed: defaultSeed}
}

// TestCommittedModelAccuracy scores the committed model.onnx with ONNX
// Runtime on the committed holdout.csv.
func TestCommittedModelAccuracy(t *testing.T) {
	model, err := os.ReadFile(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	rows, labels := readHoldout(t, holdoutPath)
	if len(rows) < 100 {
		t.Fatalf("holdout.csv has %d rows, want about 20%% of 569", len(rows))
	}
	pred, probs := runORT(t, model, rows)
	acc := accuracy(pred, labels)
	t.Logf("ONNX Runtime holdout accuracy: %.4f on %d rows", acc, len(rows))
	if acc < 0.93 {
		t.Errorf("holdout accuracy %.4f, want >= 0.93", acc)
	}
	for i := range rows {
		p0, p1 := probs[2*i], probs[2*i+1]
		if s := p0 + p1; math.Abs(float64(s)-1) > 1e-5 {
			t.Fatalf("row %d: probabilities %v, %v sum to %v", i, p0, p1, s)
		}
		want := int64(0)
		if p1 > p0 {
			want = 1
		}
		if p0 != p1 && pred[i] != want {
			t.Fatalf("row %d: label %d disagrees with probabilities %v, %v", i, pred[i], p0, p1)
		}
	}
}

// TestCommittedHoldoutMatchesSplit checks that holdout.csv is the split the
// trainer makes with the default seed, byte for byte.
func TestCommittedHoldoutMatchesSplit(t *testing.T) {
	d, err := LoadDataset(dataPath)
	if err != nil {
		t.Fatal(err)
	}
	train, holdout := Split(d, holdoutFraction, defaultSeed)
	if train.Len()+holdout.Len() != d.Len() {
		t.Fatalf("split %d + %d rows of %d", train.Len(), holdout.Len(), d.Len())
	}
	for c := range d.Classes {
		var all, held int
		for _, y := range d.Labels {
			if y == c {
				all++
			}
		}
		for _, y := range holdout.Labels {
			if y == c {
				held++
			}
		}
		if want := int(math.Round(holdoutFraction * float64(all))); held != want {
			t.Errorf("class %d: %d held-out rows, want %d", c, held, want)
		}
	}
	want, err := HoldoutCSV(holdout)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(holdoutPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the split of %s with seed %d: regenerate with `make demo-model`", holdoutPath, dataPath, defaultSeed)
	}
	// train.csv holds the other rows, in the same layout.
	if want, err = HoldoutCSV(train); err != nil {
		t.Fatal(err)
	}
	if got, err = os.ReadFile(trainPath); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the training rows of %s with seed %d: regenerate with `make demo-model`", trainPath, dataPath, defaultSeed)
	}
}

// TestExportMatchesGorgonia trains, exports, and checks that ONNX Runtime
// computes what gorgonia computes with the same weights.
func TestExportMatchesGorgonia(t *testing.T) {
	res, err := testBuild()
	if err != nil {
		t.Fatal(err)
	}
	rows := res.Holdout.Features
	wantProbs, wantLabels, err := res.Params.Forward(rows)
	if err != nil {
		t.Fatal(err)
	}
	gotLabels, gotProbs := runORT(t, res.Model, rows)
	if len(gotProbs) != len(wantProbs) || len(gotLabels) != len(wantLabels) {
		t.Fatalf("ORT returned %d probabilities and %d labels, gorgonia %d and %d", len(gotProbs), len(gotLabels), len(wantProbs), len(wantLabels))
	}
	var maxDiff float64
	for i := range wantProbs {
		d := math.Abs(float64(gotProbs[i]) - float64(wantProbs[i]))
		if !(d <= 1e-5) { // also catches NaN
			t.Errorf("probability %d (row %d): ORT %v, gorgonia %v", i, i/numClasses, gotProbs[i], wantProbs[i])
		}
		maxDiff = max(maxDiff, d)
	}
	for i := range wantLabels {
		if gotLabels[i] != wantLabels[i] {
			t.Errorf("row %d: ORT label %d, gorgonia %d", i, gotLabels[i], wantLabels[i])
		}
	}
	t.Logf("max |ORT − gorgonia| probability: %.3g over %d rows; gorgonia holdout accuracy %.4f after %d epochs",
		maxDiff, len(rows), res.HoldoutAccuracy, testEpochs)
	if acc := accuracy(gotLabels, res.Holdout.Labels); acc != res.HoldoutAccuracy {
		t.Errorf("ORT holdout accuracy %.4f, gorgonia %.4f", acc, res.HoldoutAccuracy)
	}
}

// TestDeterministic trains and exports a second time and expects the same
// bytes.
func TestDeterministic(t *testing.T) {
	first, err := testBuild()
	if err != nil {
		t.Fatal(err)
	}
	second, err := Build(dataPath, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Model, second.Model) {
		t.Error("two training runs with the same configuration exported different models")
	}
	if !bytes.Equal(first.HoldoutCSV, second.HoldoutCSV) {
		t.Error("two runs with the same seed wrote different holdout rows")
	}
}

// TestRunWritesOutputs runs the command end to end into a temporary
// directory.
func TestRunWritesOutputs(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run([]string{"-data", dataPath, "-out", dir, "-epochs", "5", "-hidden", "4"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"epoch    1/5", "holdout accuracy (gorgonia)", "model.onnx", "holdout.csv"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, name := range []string{"model.onnx", "holdout.csv", "train.csv"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s not written: %v", name, err)
		}
	}
	// -split-only writes the same split and no model.
	splitDir := t.TempDir()
	if err := run([]string{"-data", dataPath, "-out", splitDir, "-split-only"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"holdout.csv", "train.csv"} {
		want, _ := os.ReadFile(filepath.Join(dir, name))
		if got, err := os.ReadFile(filepath.Join(splitDir, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("-split-only %s differs from a training run's: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(splitDir, "model.onnx")); err == nil {
		t.Error("-split-only wrote a model")
	}
	if err := run([]string{"-data", dataPath, "-out", dir, "-hidden", "0"}, &out); err == nil {
		t.Error("-hidden 0 was accepted")
	}
	if err := run([]string{"-data", filepath.Join(dir, "missing.csv"), "-out", dir}, &out); err == nil {
		t.Error("a missing data file was accepted")
	}
}

// readHoldout parses holdout.csv: a header of the feature names and "label",
// then raw feature rows with the label last.
func readHoldout(t *testing.T, path string) ([][]float32, []int) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header, body, ok := strings.Cut(string(raw), "\n")
	if !ok {
		t.Fatalf("%s: no rows", path)
	}
	want := strings.Join(append(append([]string(nil), featureNames...), labelColumn), ",")
	if header != want {
		t.Fatalf("%s header:\n%s\nwant:\n%s", path, header, want)
	}
	// The body has the data-file layout; reuse its parser with a made-up
	// count header.
	n := strings.Count(body, "\n")
	d, err := readDataset(strings.NewReader(fmt.Sprintf("%d,%d,malignant,benign\n%s", n, numFeatures, body)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d.Features, d.Labels
}
