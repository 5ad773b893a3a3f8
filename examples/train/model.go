package main

import (
	"errors"
	"fmt"
	"io"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Params is a trained classifier: the input standardisation followed by a
// multi-layer perceptron numFeatures → Hidden (ReLU) → numClasses. Matrices
// are stored row-major, as ONNX initializers are.
type Params struct {
	Standardisation
	Hidden int
	W1     []float32 // numFeatures × Hidden
	B1     []float32 // Hidden
	W2     []float32 // Hidden × numClasses
	B2     []float32 // numClasses
}

// TrainConfig holds the hyper-parameters of Train.
type TrainConfig struct {
	Hidden    int       // width of the hidden layer
	Epochs    int       // full-batch Adam steps
	LearnRate float64   // Adam step size
	L2        float64   // L2 weight decay added to the gradients (0: none)
	Seed      uint64    // seeds the weight initialisation
	SplitSeed uint64    // seeds the holdout split (Build); fixed, so versions share held-out rows
	Log       io.Writer // receives the loss progress; nil discards it
	LogEvery  int       // epochs between two progress lines (0: 10 lines in all)
}

// Train fits the classifier to d with full-batch Adam on the mean
// cross-entropy, in float32. The standardisation is fitted on d beforehand
// and is part of the gorgonia graph, exactly as it is part of the exported
// ONNX graph. With the same data and configuration the result is identical
// from run to run.
func Train(d *Dataset, cfg TrainConfig) (*Params, error) {
	if cfg.Hidden < 1 || cfg.Epochs < 1 || cfg.LearnRate <= 0 {
		return nil, fmt.Errorf("invalid configuration: hidden %d, epochs %d, learning rate %g", cfg.Hidden, cfg.Epochs, cfg.LearnRate)
	}
	if d.Len() == 0 {
		return nil, errors.New("no training rows")
	}
	p := initParams(FitStandardisation(d), cfg.Hidden, cfg.Seed)

	g := G.NewGraph()
	n := d.Len()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(n, numFeatures), G.WithName("x"), G.WithValue(matrix(d.Features, numFeatures)))
	y := G.NewMatrix(g, tensor.Float32, G.WithShape(n, numClasses), G.WithName("y"), G.WithValue(oneHot(d.Labels)))
	m := p.nodes(g)
	logits, err := m.logits(x)
	if err != nil {
		return nil, err
	}
	logp, err := G.LogSoftMax(logits, 1)
	if err != nil {
		return nil, err
	}
	// cost = −mean over rows of Σ_c y_c · log p_c
	picked, err := G.HadamardProd(y, logp)
	if err != nil {
		return nil, err
	}
	perRow, err := G.Sum(picked, 1)
	if err != nil {
		return nil, err
	}
	meanLogp, err := G.Mean(perRow)
	if err != nil {
		return nil, err
	}
	cost, err := G.Neg(meanLogp)
	if err != nil {
		return nil, err
	}
	learnables := G.Nodes{m.w1, m.b1, m.w2, m.b2}
	if _, err := G.Grad(cost, learnables...); err != nil {
		return nil, fmt.Errorf("differentiating the loss: %w", err)
	}

	vm := G.NewTapeMachine(g, G.BindDualValues(learnables...))
	defer vm.Close()
	opts := []G.SolverOpt{G.WithLearnRate(cfg.LearnRate)}
	if cfg.L2 > 0 {
		opts = append(opts, G.WithL2Reg(cfg.L2))
	}
	solver := G.NewAdamSolver(opts...)
	every := cfg.LogEvery
	if every <= 0 {
		every = max(1, cfg.Epochs/10)
	}
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		if err := vm.RunAll(); err != nil {
			return nil, fmt.Errorf("epoch %d: %w", epoch, err)
		}
		loss, ok := cost.Value().Data().(float32)
		if !ok || math.IsNaN(float64(loss)) {
			return nil, fmt.Errorf("epoch %d: loss is %v", epoch, cost.Value())
		}
		if cfg.Log != nil && (epoch == 1 || epoch%every == 0 || epoch == cfg.Epochs) {
			fmt.Fprintf(cfg.Log, "epoch %4d/%d  loss %.5f\n", epoch, cfg.Epochs, loss)
		}
		if err := solver.Step(G.NodesToValueGrads(learnables)); err != nil {
			return nil, fmt.Errorf("epoch %d: %w", epoch, err)
		}
		vm.Reset()
	}
	// The solver updates the weights in place, in the tensors bound to the
	// learnable nodes; copy them out.
	p.W1 = floats(m.w1)
	p.B1 = floats(m.b1)
	p.W2 = floats(m.w2)
	p.B2 = floats(m.b2)
	return p, nil
}

// Forward runs the classifier on raw (unstandardised) feature rows with
// gorgonia and returns the class probabilities (rows × numClasses, row-major,
// from gorgonia's SoftMax) and the predicted labels (the index of the largest
// logit, the first one on ties, as ONNX ArgMax does). It is the reference
// the exported ONNX graph is checked against.
func (p *Params) Forward(rows [][]float32) (probs []float32, labels []int64, err error) {
	if len(rows) == 0 {
		return nil, nil, nil
	}
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(len(rows), numFeatures), G.WithName("x"), G.WithValue(matrix(rows, numFeatures)))
	logits, err := p.nodes(g).logits(x)
	if err != nil {
		return nil, nil, err
	}
	prob, err := G.SoftMax(logits, 1)
	if err != nil {
		return nil, nil, err
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		return nil, nil, err
	}
	probs = floats(prob)
	z := floats(logits)
	labels = make([]int64, len(rows))
	for i := range labels {
		best := 0
		for c := 1; c < numClasses; c++ {
			if z[i*numClasses+c] > z[i*numClasses+best] {
				best = c
			}
		}
		labels[i] = int64(best)
	}
	return probs, labels, nil
}

// Accuracy returns the share of rows of d whose label Forward predicts.
func (p *Params) Accuracy(d *Dataset) (float64, error) {
	_, pred, err := p.Forward(d.Features)
	if err != nil {
		return 0, err
	}
	return accuracy(pred, d.Labels), nil
}

// accuracy returns the share of predictions equal to the labels.
func accuracy(pred []int64, labels []int) float64 {
	if len(labels) == 0 {
		return 0
	}
	right := 0
	for i, y := range labels {
		if pred[i] == int64(y) {
			right++
		}
	}
	return float64(right) / float64(len(labels))
}

// initParams draws the initial weights (Glorot uniform) from a generator
// seeded by seed; the biases start at zero.
func initParams(s Standardisation, hidden int, seed uint64) *Params {
	r := newRNG(seed, streamInit)
	glorot := func(fanIn, fanOut int) []float32 {
		limit := float32(math.Sqrt(6 / float64(fanIn+fanOut)))
		w := make([]float32, fanIn*fanOut)
		for i := range w {
			w[i] = (2*r.float32() - 1) * limit
		}
		return w
	}
	return &Params{
		Standardisation: s,
		Hidden:          hidden,
		W1:              glorot(numFeatures, hidden),
		B1:              make([]float32, hidden),
		W2:              glorot(hidden, numClasses),
		B2:              make([]float32, numClasses),
	}
}

// mlpNodes are the parameters of p as nodes of a gorgonia graph. Vectors are
// 1×k matrices, broadcast along the batch axis.
type mlpNodes struct {
	mean, std, w1, b1, w2, b2 *G.Node
}

// nodes adds p's parameters to g, each with its own copy of the values.
func (p *Params) nodes(g *G.ExprGraph) *mlpNodes {
	h := p.Hidden
	mat := func(name string, r, c int, v []float32) *G.Node {
		return G.NewMatrix(g, tensor.Float32, G.WithShape(r, c), G.WithName(name),
			G.WithValue(tensor.New(tensor.WithShape(r, c), tensor.WithBacking(append([]float32(nil), v...)))))
	}
	return &mlpNodes{
		mean: mat("mean", 1, numFeatures, p.Mean),
		std:  mat("std", 1, numFeatures, p.Std),
		w1:   mat("w1", numFeatures, h, p.W1),
		b1:   mat("b1", 1, h, p.B1),
		w2:   mat("w2", h, numClasses, p.W2),
		b2:   mat("b2", 1, numClasses, p.B2),
	}
}

// logits builds the graph from raw features x (batch × numFeatures) to the
// logits (batch × numClasses), the same computation as the ONNX graph:
// ((x − mean) / std) · W1 + b1, ReLU, · W2 + b2.
func (m *mlpNodes) logits(x *G.Node) (*G.Node, error) {
	bcast := []byte{0} // broadcast the 1×k right operand along the batch axis
	z, err := G.BroadcastSub(x, m.mean, nil, bcast)
	if err != nil {
		return nil, err
	}
	if z, err = G.BroadcastHadamardDiv(z, m.std, nil, bcast); err != nil {
		return nil, err
	}
	h, err := G.Mul(z, m.w1)
	if err != nil {
		return nil, err
	}
	if h, err = G.BroadcastAdd(h, m.b1, nil, bcast); err != nil {
		return nil, err
	}
	if h, err = G.Rectify(h); err != nil {
		return nil, err
	}
	o, err := G.Mul(h, m.w2)
	if err != nil {
		return nil, err
	}
	return G.BroadcastAdd(o, m.b2, nil, bcast)
}

// matrix packs rows of width cols into a rows × cols tensor.
func matrix(rows [][]float32, cols int) *tensor.Dense {
	flat := make([]float32, 0, len(rows)*cols)
	for _, r := range rows {
		flat = append(flat, r...)
	}
	return tensor.New(tensor.WithShape(len(rows), cols), tensor.WithBacking(flat))
}

// oneHot encodes labels as a len(labels) × numClasses matrix.
func oneHot(labels []int) *tensor.Dense {
	flat := make([]float32, len(labels)*numClasses)
	for i, y := range labels {
		flat[i*numClasses+y] = 1
	}
	return tensor.New(tensor.WithShape(len(labels), numClasses), tensor.WithBacking(flat))
}

// floats copies out the float32 values held by a node.
func floats(n *G.Node) []float32 {
	return append([]float32(nil), n.Value().Data().([]float32)...)
}
