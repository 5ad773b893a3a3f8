package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelgate/modelgate/wire"
	ort "github.com/yalue/onnxruntime_go"
)

// ortModel is a model version loaded into ONNX Runtime: the one Model
// implementation that runs models for real, and with dtype.go and
// runtime.go the only code that calls cgo.
type ortModel struct {
	info    Info
	sess    *ort.DynamicAdvancedSession
	outIdx  map[string]int
	outName []string
	log     *slog.Logger

	// rowOutputs: every output is [-1, fixed...], so that its shape follows
	// from the rows of the inputs and Run can hand ONNX Runtime output
	// tensors in Go memory (no copy out of ONNX Runtime's). unsized is set
	// once a model turns out not to fit that (a Run with sized outputs
	// failed and one without succeeded).
	rowOutputs bool
	unsized    atomic.Bool
}

// Load creates a Model from a model's bytes on the first configured
// provider that accepts it, reads its signature, and checks that every
// input and output is a tensor of a type modelgate serves. It does not
// warm up: Session.WarmUp does.
func (rt *Runtime) Load(model []byte, o ModelOptions) (Model, error) {
	start := time.Now()
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidModel, cleanORTError(err))
	}
	s := &ortModel{
		info:   Info{Name: o.Name, Version: o.Version},
		outIdx: make(map[string]int, len(outs)),
		log:    rt.log,
	}
	var inNames []string
	for _, in := range ins {
		spec, err := specFromInfo("input", in)
		if err != nil {
			return nil, err
		}
		s.info.Inputs = append(s.info.Inputs, spec)
		inNames = append(inNames, in.Name)
	}
	for i, out := range outs {
		spec, err := specFromInfo("output", out)
		if err != nil {
			return nil, err
		}
		s.info.Outputs = append(s.info.Outputs, spec)
		s.outIdx[out.Name] = i
		s.outName = append(s.outName, out.Name)
	}
	var reasons []string
	for _, p := range rt.opts.Providers {
		so, err := rt.sessionOptions(p)
		if err != nil {
			if p == ProviderCUDA && err == rt.cudaErr {
				err = errors.New("unavailable (see the log line \"CUDA execution provider unavailable\")")
			}
			reasons = append(reasons, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		sess, err := ort.NewDynamicAdvancedSessionWithONNXData(model, inNames, s.outName, so)
		so.Destroy()
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %s", p, cleanORTError(err)))
			continue
		}
		s.sess, s.info.Provider = sess, p
		break
	}
	if s.sess == nil {
		return nil, fmt.Errorf("%w: no execution provider accepted the model (%s)", ErrInvalidModel, strings.Join(reasons, "; "))
	}
	if rt.opts.RequireGPU && s.info.Provider != ProviderCUDA {
		s.sess.Destroy()
		return nil, fmt.Errorf("%w: %s", ErrGPURequired, strings.Join(reasons, "; "))
	}
	s.info.LoadTime = time.Since(start)
	attrs := []any{"model", o.Name, "version", o.Version, "provider", s.info.Provider, "load_time", s.info.LoadTime}
	if len(reasons) > 0 {
		attrs = append(attrs, "fallback_from", strings.Join(reasons, "; "))
	}
	s.rowOutputs = true
	for _, sp := range s.info.Outputs {
		if len(sp.Shape) == 0 || sp.Shape[0] != -1 || slices.Contains(sp.Shape[1:], -1) {
			s.rowOutputs = false
		}
	}
	rt.log.Info("model loaded", attrs...)
	return s, nil
}

// Info describes the model: name, version, provider in effect, signature.
func (s *ortModel) Info() Info { return s.info }

// Close destroys the ONNX Runtime session and hands the memory it freed
// back to the system.
func (s *ortModel) Close() {
	s.sess.Destroy()
	releaseFreedMemory()
}

// Run runs the model on checked inputs in signature order and returns the
// requested outputs (all when outputs is empty).
func (s *ortModel) Run(_ context.Context, ordered []wire.Tensor, outputs []string) ([]wire.Tensor, error) {
	in := make([]ort.Value, len(ordered))
	defer func() {
		for _, v := range in {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, t := range ordered {
		v, err := newORTTensor(t.Shape, t.Data)
		if err != nil {
			return nil, err
		}
		in[i] = v
	}
	out := make([]ort.Value, len(s.outName))
	defer func() {
		for _, v := range out {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	sized, err := s.sizeOutputs(ordered, out)
	if err != nil {
		return nil, err
	}
	err = s.sess.Run(in, out)
	if err != nil && sized != nil {
		// The outputs were not one row per input row after all: let ONNX
		// Runtime size them, and stop guessing if that works.
		for i, v := range out {
			v.Destroy()
			out[i] = nil
		}
		sized = nil
		if err = s.sess.Run(in, out); err == nil {
			s.unsized.Store(true)
			s.log.Info("outputs are not one row per input row; ONNX Runtime sizes them from now on", "model", s.info.Name, "version", s.info.Version)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("running %s version %s: %s", s.info.Name, s.info.Version, cleanORTError(err))
	}
	if len(outputs) == 0 {
		outputs = s.outName
	}
	res := make([]wire.Tensor, 0, len(outputs))
	for _, name := range outputs {
		i := s.outIdx[name]
		if sized != nil {
			res = append(res, sized[i])
			continue
		}
		t, err := fromORTValue(name, out[i])
		if err != nil {
			return nil, err
		}
		res = append(res, t)
	}
	return res, nil
}

// sizeOutputs allocates the outputs in Go memory when their shapes follow
// from the inputs' rows, sets out to ONNX Runtime tensors over them and
// returns them; nil when ONNX Runtime must size the outputs itself.
func (s *ortModel) sizeOutputs(ordered []wire.Tensor, out []ort.Value) ([]wire.Tensor, error) {
	if !s.rowOutputs || s.unsized.Load() {
		return nil, nil
	}
	rows := int64(-1)
	for _, t := range ordered {
		if len(t.Shape) == 0 || (rows >= 0 && t.Shape[0] != rows) {
			return nil, nil
		}
		rows = t.Shape[0]
	}
	if rows < 1 {
		return nil, nil
	}
	sized := make([]wire.Tensor, len(out))
	for i, spec := range s.info.Outputs {
		shape := make([]int64, len(spec.Shape))
		copy(shape, spec.Shape)
		shape[0] = rows
		n, _ := wire.ShapeSize(shape) // bounded: fixed dimensions of a loaded model, rows of a checked input
		data, err := wire.MakeData(spec.DType, int(n))
		if err != nil {
			return nil, err
		}
		v, err := newORTTensor(shape, data)
		if err != nil {
			return nil, err
		}
		out[i] = v
		sized[i] = wire.Tensor{Name: spec.Name, Shape: shape, Data: data}
	}
	return sized, nil
}

func specFromInfo(kind string, io ort.InputOutputInfo) (wire.TensorSpec, error) {
	if io.OrtValueType != ort.ONNXTypeTensor {
		return wire.TensorSpec{}, fmt.Errorf("%w: %s %q is a %s; modelgate serves tensors only", wire.ErrUnsupportedType, kind, io.Name, io.OrtValueType)
	}
	d := dtypeFromORT(io.DataType)
	if !d.Supported() {
		return wire.TensorSpec{}, fmt.Errorf("%w: %s %q has element type %s; modelgate serves BOOL, INT8-64, UINT8-64, FP32 and FP64", wire.ErrUnsupportedType, kind, io.Name, d)
	}
	shape := make([]int64, len(io.Dimensions))
	for i, dim := range io.Dimensions {
		if dim < 0 {
			dim = -1
		}
		shape[i] = dim
	}
	return wire.TensorSpec{Name: io.Name, DType: d, Shape: shape}, nil
}

// cleanORTError drops the binding's wrapping ("Error creating C session: ...")
// so that ONNX Runtime's own reason is what the user reads.
func cleanORTError(err error) string {
	msg := err.Error()
	for _, p := range []string{"Error creating temporary session: ", "Error creating C session: ", "Error running network: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}
