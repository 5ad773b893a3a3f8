// Command train fits the demo classifier, a small multi-layer perceptron, to
// the breast-cancer (Wisconsin diagnostic) data set with gorgonia, and
// exports it to ONNX with the project's own writer (package onnx).
//
// It holds out a stratified 20% of the rows, chosen by -split-seed, writes them to
// holdout.csv and the other rows to train.csv (the training data, which
// `promote push --train-data` profiles for drift detection), trains on them
// with full-batch Adam, reports the holdout
// accuracy, and writes model.onnx. The input standardisation (mean and
// standard deviation of the training rows) is part of the ONNX graph, so the
// model takes raw features. The model has one input, "features" (FP32,
// [N,30]), and two outputs, "label" (INT64, [N]: 0 malignant, 1 benign) and
// "probabilities" (FP32, [N,2]).
//
// The run is deterministic: the same flags give the same bytes.
//
// Usage:
//
//	go run ./examples/train -data examples/breast-cancer/data.csv -out examples/breast-cancer
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Defaults of the flags; the committed model was trained with them.
const (
	defaultEpochs    = 300
	defaultHidden    = 16
	defaultSeed      = 1
	defaultLearnRate = 0.01
	defaultL2        = 0.0001
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "train:", err)
		os.Exit(1)
	}
}

// run parses the command line, trains, and writes the outputs.
func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	data := fs.String("data", "examples/breast-cancer/data.csv", "breast-cancer CSV `file` (scikit-learn layout: a count header, 30 features and the label per line)")
	out := fs.String("out", "examples/breast-cancer", "`directory` to write model.onnx, holdout.csv and train.csv to")
	epochs := fs.Int("epochs", defaultEpochs, "number of full-batch training steps")
	hidden := fs.Int("hidden", defaultHidden, "width of the hidden layer")
	seed := fs.Uint64("seed", defaultSeed, "seed of the initial weights (a retrain with another seed is another model on the same split)")
	splitSeed := fs.Uint64("split-seed", defaultSeed, "seed of the holdout split; keep it fixed so that versions are compared on the same held-out rows")
	lr := fs.Float64("lr", defaultLearnRate, "Adam learning rate")
	l2 := fs.Float64("l2", defaultL2, "L2 weight decay (0 for none)")
	splitOnly := fs.Bool("split-only", false, "write holdout.csv and train.csv without training, so that the data can be checked first (promote check-data)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *splitOnly {
		return writeSplit(*data, *out, *splitSeed, stdout)
	}
	cfg := TrainConfig{Hidden: *hidden, Epochs: *epochs, LearnRate: *lr, L2: *l2, Seed: *seed, SplitSeed: *splitSeed, Log: stdout}
	res, err := Build(*data, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "holdout accuracy (gorgonia): %.4f (%d/%d rows; %d training rows)\n",
		res.HoldoutAccuracy, int(res.HoldoutAccuracy*float64(res.Holdout.Len())+0.5), res.Holdout.Len(), res.TrainRows)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"model.onnx", res.Model}, {"holdout.csv", res.HoldoutCSV}, {"train.csv", res.TrainCSV}} {
		path := filepath.Join(*out, f.name)
		if err := writeFile(path, f.data); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", path, len(f.data))
	}
	return nil
}

// writeSplit writes the holdout and training rows of the data set, as a
// training run with the same split seed would, and trains nothing.
func writeSplit(dataPath, out string, splitSeed uint64, stdout io.Writer) error {
	d, err := LoadDataset(dataPath)
	if err != nil {
		return err
	}
	train, holdout := Split(d, holdoutFraction, splitSeed)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		rows *Dataset
	}{{"holdout.csv", holdout}, {"train.csv", train}} {
		b, err := HoldoutCSV(f.rows)
		if err != nil {
			return err
		}
		path := filepath.Join(out, f.name)
		if err := writeFile(path, b); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (%d rows)\n", path, f.rows.Len())
	}
	return nil
}

// Result is what one training run produces.
type Result struct {
	Params          *Params
	Holdout         *Dataset // the held-out rows, in file order
	TrainRows       int
	HoldoutAccuracy float64 // measured with gorgonia's forward pass
	Model           []byte  // model.onnx
	HoldoutCSV      []byte  // holdout.csv
	TrainCSV        []byte  // train.csv: the training rows, in holdout.csv's layout
}

// Build loads the data set at dataPath, splits off the holdout rows, trains
// on the others, measures the holdout accuracy and encodes both outputs. It
// writes nothing.
func Build(dataPath string, cfg TrainConfig) (*Result, error) {
	d, err := LoadDataset(dataPath)
	if err != nil {
		return nil, err
	}
	train, holdout := Split(d, holdoutFraction, cfg.SplitSeed)
	p, err := Train(train, cfg)
	if err != nil {
		return nil, fmt.Errorf("training: %w", err)
	}
	acc, err := p.Accuracy(holdout)
	if err != nil {
		return nil, fmt.Errorf("evaluating: %w", err)
	}
	model, err := ExportONNX(p, ExportInfo{
		Config:          cfg,
		TrainRows:       train.Len(),
		HoldoutRows:     holdout.Len(),
		HoldoutAccuracy: acc,
		Classes:         d.Classes,
	}).Marshal()
	if err != nil {
		return nil, fmt.Errorf("encoding the ONNX model: %w", err)
	}
	csv, err := HoldoutCSV(holdout)
	if err != nil {
		return nil, err
	}
	trainCSV, err := HoldoutCSV(train)
	if err != nil {
		return nil, err
	}
	return &Result{Params: p, Holdout: holdout, TrainRows: train.Len(), HoldoutAccuracy: acc, Model: model, HoldoutCSV: csv, TrainCSV: trainCSV}, nil
}

// writeFile replaces path with data through a temporary file and a rename,
// so that a failed run never leaves a truncated model behind.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
