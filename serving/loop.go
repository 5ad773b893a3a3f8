package serving

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// Loop is ONNX Runtime's own limit for a classifier shaped like the demo
// model: one CPU session whose tensors are bound once and run again and
// again, with nothing of modelgate's around it (no checks, no copies, no
// batching). The benchmark (cmd/bench) measures the gateway against it;
// nothing else uses it.
type Loop struct {
	sess      *ort.AdvancedSession
	in        *ort.Tensor[float32]
	label     *ort.Tensor[int64]
	probs     *ort.Tensor[float32]
	batchRows int64
}

// NewLoop binds a session of the model file at path (one input [N, n],
// outputs label [N] and probabilities [N, k]) to tensors of batch rows,
// with fixed, non-zero input values, on the runtime's thread settings.
func (rt *Runtime) NewLoop(path string, batch int64) (*Loop, error) {
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidModel, cleanORTError(err))
	}
	if len(ins) != 1 || len(outs) != 2 || len(ins[0].Dimensions) != 2 || len(outs[1].Dimensions) != 2 {
		return nil, errors.New("the loop takes models with one input [N, n] and outputs label [N], probabilities [N, k]")
	}
	n, k := ins[0].Dimensions[1], outs[1].Dimensions[1]
	l := &Loop{batchRows: batch}
	if l.in, err = ort.NewTensor(ort.NewShape(batch, n), make([]float32, batch*n)); err != nil {
		return nil, err
	}
	for i := range l.in.GetData() {
		l.in.GetData()[i] = float32(i%17) / 4
	}
	if l.label, err = ort.NewEmptyTensor[int64](ort.NewShape(batch)); err != nil {
		l.Close()
		return nil, err
	}
	if l.probs, err = ort.NewEmptyTensor[float32](ort.NewShape(batch, k)); err != nil {
		l.Close()
		return nil, err
	}
	so, err := rt.sessionOptions(ProviderCPU)
	if err != nil {
		l.Close()
		return nil, err
	}
	l.sess, err = ort.NewAdvancedSession(path, []string{ins[0].Name}, []string{outs[0].Name, outs[1].Name},
		[]ort.Value{l.in}, []ort.Value{l.label, l.probs}, so)
	so.Destroy()
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("%w: %s", ErrInvalidModel, cleanORTError(err))
	}
	return l, nil
}

// Rows is the batch size of each run.
func (l *Loop) Rows() int64 { return l.batchRows }

// Run runs the model once on the bound tensors.
func (l *Loop) Run() error { return l.sess.Run() }

// Close destroys the session and its tensors.
func (l *Loop) Close() {
	if l.sess != nil {
		l.sess.Destroy()
	}
	for _, v := range []ort.Value{l.in, l.label, l.probs} {
		if v != nil {
			v.Destroy()
		}
	}
}
