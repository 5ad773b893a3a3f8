package serving

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// Loop is ONNX Runtime's own limit for a model: one CPU session whose
// tensors are bound once and run again and again, with nothing of
// modelgate's around it (no checks, no copies, no batching). The benchmark
// (cmd/bench) measures the gateway against it; nothing else uses it.
type Loop struct {
	sess      *ort.AdvancedSession
	values    []ort.Value // inputs, then outputs
	batchRows int64
}

// NewLoop binds a session of the model file at path to tensors of batch
// rows: every input and output FP32 or INT64, whose first dimension is the
// batch (-1 in the model, batch here) and whose other dimensions are
// fixed. Inputs hold fixed, non-zero values; the session runs on the
// runtime's thread settings.
func (rt *Runtime) NewLoop(path string, batch int64) (*Loop, error) {
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidModel, cleanORTError(err))
	}
	if len(ins) == 0 || len(outs) == 0 {
		return nil, errors.New("the loop takes models with at least one input and one output")
	}
	l := &Loop{batchRows: batch}
	tensor := func(info ort.InputOutputInfo, input bool) (ort.Value, error) {
		dims := append([]int64(nil), info.Dimensions...)
		if len(dims) == 0 || dims[0] != -1 {
			return nil, fmt.Errorf("%s: the loop takes tensors whose first dimension is the batch (-1), got %v", info.Name, info.Dimensions)
		}
		dims[0] = batch
		for _, d := range dims[1:] {
			if d < 1 {
				return nil, fmt.Errorf("%s: the loop takes fixed dimensions after the batch, got %v", info.Name, info.Dimensions)
			}
		}
		shape := ort.NewShape(dims...)
		switch info.DataType {
		case ort.TensorElementDataTypeFloat:
			t, err := ort.NewEmptyTensor[float32](shape)
			if err == nil && input {
				for i := range t.GetData() {
					t.GetData()[i] = float32(i%17) / 4
				}
			}
			return t, err
		case ort.TensorElementDataTypeInt64:
			t, err := ort.NewEmptyTensor[int64](shape)
			if err == nil && input {
				for i := range t.GetData() {
					t.GetData()[i] = int64(i % 17)
				}
			}
			return t, err
		}
		return nil, fmt.Errorf("%s: the loop takes FP32 and INT64 tensors, got %s", info.Name, info.DataType)
	}
	var inNames, outNames []string
	var inVals, outVals []ort.Value
	for _, in := range ins {
		v, err := tensor(in, true)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.values = append(l.values, v)
		inNames, inVals = append(inNames, in.Name), append(inVals, v)
	}
	for _, out := range outs {
		v, err := tensor(out, false)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.values = append(l.values, v)
		outNames, outVals = append(outNames, out.Name), append(outVals, v)
	}
	so, err := rt.sessionOptions(ProviderCPU)
	if err != nil {
		l.Close()
		return nil, err
	}
	l.sess, err = ort.NewAdvancedSession(path, inNames, outNames, inVals, outVals, so)
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
	for _, v := range l.values {
		v.Destroy()
	}
}
