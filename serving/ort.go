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
// implementation that runs models for real, and with ortEngine, dtype.go
// and runtime.go the only code that calls cgo.
type ortModel struct {
	info    Info
	sess    *ort.DynamicAdvancedSession
	outIdx  map[string]int
	outName []string
	log     *slog.Logger

	// sizable: for each output, whether it is [-1, fixed...] or fixed (and
	// not BYTES), so that its shape follows from the rows of the inputs and
	// Run can hand ONNX Runtime an output tensor in Go memory (no copy out
	// of ONNX Runtime's). unsized is set once a model turns out not to fit
	// that (a Run with sized outputs failed and one without succeeded).
	sizable []bool
	unsized atomic.Bool
	// halfOutputs: some output is FP16 or BF16, which must never be left
	// to ONNX Runtime to allocate (errTruncatedHalf).
	halfOutputs bool
}

// errTruncatedHalf: onnxruntime_go v1.35.0 cannot hand back an FP16 or
// BF16 output that ONNX Runtime allocated: createTensorFromOrtValue copies
// Shape.FlattenedSize() bytes (one per element, not two) for element types
// it has no Go type for, and making its CustomDataTensor over them fails.
// modelgate therefore allocates such outputs itself, which needs their
// shape beforehand: fixed, or [-1, fixed...] with the inputs' row count.
var errTruncatedHalf = errors.New("an FP16 or BF16 output allocated by ONNX Runtime cannot be read back through onnxruntime_go v1.35.0")

// ortEngine is the engine of ONNX Runtime: the one that opens models for
// real, on the process's environment.
type ortEngine struct{ rt *Runtime }

// unavailable says why provider cannot be used: CUDA's reason is decided
// once per Runtime (cudaAvailable); the CPU is always there.
func (e ortEngine) unavailable(provider string) error {
	if provider == ProviderCUDA {
		return e.rt.cudaAvailable()
	}
	return nil
}

// ortPrepared is a model's bytes with its signature read and checked once,
// so that opening it on a second provider (providers auto) reads nothing
// again.
type ortPrepared struct {
	rt      *Runtime
	model   []byte
	info    Info
	inNames []string
	outIdx  map[string]int
	outName []string
	sizable []bool
	half    bool
}

// prepare reads the model's signature and checks that every input and
// output is a tensor of a type modelgate serves, and that its FP16 and
// BF16 outputs have shapes modelgate can allocate (errTruncatedHalf),
// before any session is created.
func (e ortEngine) prepare(model []byte, o ModelOptions) (preparedModel, error) {
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidModel, cleanORTError(err))
	}
	p := &ortPrepared{
		rt:     e.rt,
		model:  model,
		info:   Info{Name: o.Name, Version: o.Version},
		outIdx: make(map[string]int, len(outs)),
	}
	for _, in := range ins {
		spec, err := specFromInfo("input", in)
		if err != nil {
			return nil, err
		}
		p.info.Inputs = append(p.info.Inputs, spec)
		p.inNames = append(p.inNames, in.Name)
	}
	for i, out := range outs {
		spec, err := specFromInfo("output", out)
		if err != nil {
			return nil, err
		}
		p.info.Outputs = append(p.info.Outputs, spec)
		p.outIdx[out.Name] = i
		p.outName = append(p.outName, out.Name)
	}
	p.sizable = make([]bool, len(p.info.Outputs))
	for i, sp := range p.info.Outputs {
		rowShaped := len(sp.Shape) > 0 && sp.Shape[0] == -1 && !slices.Contains(sp.Shape[1:], -1)
		p.sizable[i] = sp.DType != wire.BYTES && (rowShaped || !slices.Contains(sp.Shape, -1))
		if sp.DType == wire.FP16 || sp.DType == wire.BF16 {
			p.half = true
			if !p.sizable[i] {
				return nil, fmt.Errorf("%w: output %q is %s of shape %v: modelgate serves FP16 and BF16 outputs only of a fixed shape or [-1, fixed...], since onnxruntime_go v1.35.0 cannot return one whose shape ONNX Runtime chooses", wire.ErrUnsupportedType, sp.Name, sp.DType, sp.Shape)
			}
		}
	}
	return p, nil
}

// open creates an ONNX Runtime session of the model on provider. Its
// error is ONNX Runtime's reason, without the binding's wrapping.
func (p *ortPrepared) open(provider string) (openedModel, error) {
	so, err := p.rt.sessionOptions(provider)
	if err != nil {
		return nil, err
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(p.model, p.inNames, p.outName, so)
	so.Destroy()
	if err != nil {
		return nil, errors.New(cleanORTError(err))
	}
	info := p.info
	info.Provider = provider
	// The maps and slices are shared by the sessions of one preparation:
	// nothing writes them after prepare.
	return &ortModel{
		info:        info,
		sess:        sess,
		outIdx:      p.outIdx,
		outName:     p.outName,
		log:         p.rt.log,
		sizable:     p.sizable,
		halfOutputs: p.half,
	}, nil
}

// setLoad records the load time and, with providers auto, how the
// provider was chosen; Load calls it before the model is handed out.
func (s *ortModel) setLoad(loadTime time.Duration, choice *ProviderChoice) {
	s.info.LoadTime, s.info.ProviderChoice = loadTime, choice
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
func (s *ortModel) Run(ctx context.Context, ordered []wire.Tensor, outputs []string) ([]wire.Tensor, error) {
	var p phases
	return s.runTimed(ctx, ordered, outputs, &p)
}

// runPhased is Run with the times of its phases (Session's statistics).
// They come back by value: a pointer handed through the interface would
// put them on the heap at every run.
func (s *ortModel) runPhased(ctx context.Context, ordered []wire.Tensor, outputs []string) ([]wire.Tensor, phases, error) {
	var p phases
	out, err := s.runTimed(ctx, ordered, outputs, &p)
	return out, p, err
}

// runTimed is Run, timing its phases into p: making the ONNX Runtime
// tensors (input), ONNX Runtime's run (infer), reading the outputs back
// into Go memory where ONNX Runtime allocated them (output).
func (s *ortModel) runTimed(_ context.Context, ordered []wire.Tensor, outputs []string, p *phases) ([]wire.Tensor, error) {
	start := time.Now()
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
	ran := time.Now()
	p.input = ran.Sub(start)
	err = s.sess.Run(in, out)
	if err != nil && sized != nil && !s.halfOutputs {
		// The outputs were not one row per input row after all: let ONNX
		// Runtime size them, and stop guessing if that works.
		destroyAll(out)
		sized = nil
		if err = s.sess.Run(in, out); err == nil {
			s.unsized.Store(true)
			s.log.Info("outputs are not one row per input row; ONNX Runtime sizes them from now on", "model", s.info.Name, "version", s.info.Version)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("running %s version %s: %s", s.info.Name, s.info.Version, cleanORTError(err))
	}
	extract := time.Now()
	p.infer = extract.Sub(ran)
	defer func() { p.output = time.Since(extract) }()
	if len(outputs) == 0 {
		outputs = s.outName
	}
	res := make([]wire.Tensor, 0, len(outputs))
	for _, name := range outputs {
		i := s.outIdx[name]
		if sized != nil && sized[i].Data != nil {
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

// sizeOutputs allocates in Go memory the outputs whose shapes are fixed or
// follow from the inputs' rows, sets out to ONNX Runtime tensors over them
// and returns them (the others, BYTES among them, are left to ONNX Runtime:
// nil in out, zero in the result); nil when ONNX Runtime must size every
// output itself.
func (s *ortModel) sizeOutputs(ordered []wire.Tensor, out []ort.Value) ([]wire.Tensor, error) {
	if s.unsized.Load() && !s.halfOutputs {
		return nil, nil
	}
	rows := int64(-1)
	for _, t := range ordered {
		if len(t.Shape) == 0 || (rows >= 0 && t.Shape[0] != rows) {
			rows = 0 // no one row count: only fixed outputs can be sized
			break
		}
		rows = t.Shape[0]
	}
	var sized []wire.Tensor
	for i, spec := range s.info.Outputs {
		if !s.sizable[i] {
			continue
		}
		shape := slices.Clone(spec.Shape)
		if len(shape) > 0 && shape[0] == -1 {
			shape[0] = rows
		}
		n, ok := wire.ShapeSize(shape) // bounded: fixed dimensions of a loaded model, rows of a checked input
		if !ok || n == 0 {
			// No row count, or an empty tensor, which ONNX Runtime takes
			// from no Go memory: ONNX Runtime's to size, but for FP16 and
			// BF16, which it cannot hand back.
			if spec.DType == wire.FP16 || spec.DType == wire.BF16 {
				return nil, fmt.Errorf("%w: output %q is %s of shape %v, and inputs of shapes %s fix no size for it (onnxruntime_go v1.35.0 cannot return an FP16 or BF16 output that ONNX Runtime sizes)", wire.ErrBadInput, spec.Name, spec.DType, spec.Shape, inputShapes(ordered))
			}
			continue
		}
		data, err := wire.MakeData(spec.DType, int(n))
		if err != nil {
			return nil, err
		}
		v, err := newORTTensor(shape, data)
		if err != nil {
			return nil, err
		}
		if sized == nil {
			sized = make([]wire.Tensor, len(out))
		}
		out[i] = v
		sized[i] = wire.Tensor{Name: spec.Name, Shape: shape, Data: data}
	}
	return sized, nil
}

// inputShapes lists the inputs' shapes for a message.
func inputShapes(ts []wire.Tensor) string {
	shapes := make([]string, len(ts))
	for i, t := range ts {
		shapes[i] = fmt.Sprint(t.Shape)
	}
	return strings.Join(shapes, ", ")
}

// destroyAll destroys the values of vs that are set and clears them.
func destroyAll(vs []ort.Value) {
	for i, v := range vs {
		if v != nil {
			v.Destroy()
			vs[i] = nil
		}
	}
}

func specFromInfo(kind string, io ort.InputOutputInfo) (wire.TensorSpec, error) {
	if io.OrtValueType != ort.ONNXTypeTensor {
		return wire.TensorSpec{}, fmt.Errorf("%w: %s %q is a %s; modelgate serves tensors only", wire.ErrUnsupportedType, kind, io.Name, io.OrtValueType)
	}
	d := dtypeFromORT(io.DataType)
	if !d.Supported() {
		return wire.TensorSpec{}, fmt.Errorf("%w: %s %q has element type %s; modelgate serves BOOL, INT8-64, UINT8-64, FP16, BF16, FP32, FP64 and BYTES (string)", wire.ErrUnsupportedType, kind, io.Name, d)
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
