package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelgate/modelgate/wire"
	ort "github.com/yalue/onnxruntime_go"
)

// Info is what a Session tells about itself.
type Info struct {
	Name     string            `json:"name"`
	Version  string            `json:"version"`
	Provider string            `json:"provider"`
	Inputs   []wire.TensorSpec `json:"inputs"`
	Outputs  []wire.TensorSpec `json:"outputs"`
	LoadTime time.Duration     `json:"-"`
	// MaxBatchSize is the dynamic batching limit in effect; 0: off.
	MaxBatchSize int `json:"-"`
}

// Session is one model version loaded into ONNX Runtime. Run is safe for
// concurrent use. Holders take a reference with Acquire and give it back
// with Release; Close waits for the last reference before destroying the
// ONNX Runtime session, so a swap never cuts a running request short.
type Session struct {
	info    Info
	sess    *ort.DynamicAdvancedSession
	inIdx   map[string]int
	outIdx  map[string]int
	outName []string
	log     *slog.Logger
	batch   *batcher // nil: every request runs on its own

	// rowOutputs: every output is [-1, fixed...], so that its shape follows
	// from the rows of the inputs and Run can hand ONNX Runtime output
	// tensors in Go memory (no copy out of ONNX Runtime's). unsized is set
	// once a model turns out not to fit that (a Run with sized outputs
	// failed and one without succeeded).
	rowOutputs bool
	unsized    atomic.Bool

	mu      sync.Mutex
	refs    int
	closing bool
	done    chan struct{} // closed when the ONNX Runtime session is destroyed
}

// SessionOptions name the model version a session serves and say how it
// runs.
type SessionOptions struct {
	Name    string
	Version string
	// Batching merges concurrent requests into one run (batch.go); off
	// unless MaxBatchSize > 1 and the model has a free first dimension on
	// every input and output.
	Batching BatchOptions
}

// NewSession creates a session from a model's bytes on the first configured
// provider that accepts it, reads its signature, and checks that every input
// and output is a tensor of a type modelgate serves. It does not warm up:
// call WarmUp.
func (rt *Runtime) NewSession(model []byte, o SessionOptions) (*Session, error) {
	start := time.Now()
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(model)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidModel, cleanORTError(err))
	}
	s := &Session{
		info:   Info{Name: o.Name, Version: o.Version},
		inIdx:  make(map[string]int, len(ins)),
		outIdx: make(map[string]int, len(outs)),
		done:   make(chan struct{}),
		log:    rt.log,
	}
	var inNames []string
	for i, in := range ins {
		spec, err := specFromInfo("input", in)
		if err != nil {
			return nil, err
		}
		s.info.Inputs = append(s.info.Inputs, spec)
		s.inIdx[in.Name] = i
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
	if o.Batching.MaxBatchSize > 1 {
		if why := batchable(s.info); why != "" {
			attrs = append(attrs, "batching", "off", "batching_off_reason", why)
		} else {
			s.batch = newBatcher(s, o.Batching)
			s.info.MaxBatchSize = o.Batching.MaxBatchSize
			attrs = append(attrs, "max_batch_size", o.Batching.MaxBatchSize, "max_queue_delay", o.Batching.MaxQueueDelay)
		}
	}
	rt.log.Info("session created", attrs...)
	return s, nil
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

// Info describes the session: model, version, provider in effect, signature.
func (s *Session) Info() Info { return s.info }

// Name is the model name.
func (s *Session) Name() string { return s.info.Name }

// Version is the model version.
func (s *Session) Version() string { return s.info.Version }

// Provider is the execution provider in effect: "cuda" or "cpu".
func (s *Session) Provider() string { return s.info.Provider }

// Inputs is the model's input signature.
func (s *Session) Inputs() []wire.TensorSpec { return s.info.Inputs }

// Outputs is the model's output signature.
func (s *Session) Outputs() []wire.TensorSpec { return s.info.Outputs }

// Output returns the spec of the named output.
func (s *Session) Output(name string) (wire.TensorSpec, bool) {
	i, ok := s.outIdx[name]
	if !ok {
		return wire.TensorSpec{}, false
	}
	return s.info.Outputs[i], true
}

// Acquire takes a reference; it fails once Close has begun.
func (s *Session) Acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.refs++
	return true
}

// Release gives back a reference taken with Acquire.
func (s *Session) Release() {
	s.mu.Lock()
	s.refs--
	last := s.closing && s.refs == 0
	s.mu.Unlock()
	if s.batch != nil && !last {
		s.batch.released()
	}
	if last {
		s.destroy()
	}
}

// Close refuses new references and destroys the ONNX Runtime session once
// the last reference is released. It returns at once; Done tells when the
// session is gone.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	now := s.refs == 0
	s.mu.Unlock()
	if now {
		s.destroy()
	}
}

// Done is closed when the session has been destroyed.
func (s *Session) Done() <-chan struct{} { return s.done }

// InFlight is the number of references held.
func (s *Session) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refs
}

func (s *Session) destroy() {
	if s.batch != nil {
		s.batch.close()
		s.batch.forget()
	}
	s.sess.Destroy()
	releaseFreedMemory()
	close(s.done)
}

// Run checks inputs against the signature, runs the model and returns the
// requested outputs (all of them, in signature order, when outputs is
// empty). Errors about the inputs wrap wire.ErrBadInput and say which input is
// wrong and how. The caller must hold a reference (Acquire) or otherwise
// know that the session is not being closed.
func (s *Session) Run(ctx context.Context, inputs []wire.Tensor, outputs []string) ([]wire.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ordered, err := s.checkInputs(inputs)
	if err != nil {
		return nil, err
	}
	for _, name := range outputs {
		if _, ok := s.outIdx[name]; !ok {
			return nil, fmt.Errorf("%w: unknown output %q (the model has %s)", wire.ErrBadInput, name, wire.Names(s.info.Outputs))
		}
	}
	// A request that is alone in the session (the caller's reference is
	// the only one) has nobody to merge with: it runs at once, on its own
	// goroutine, without the hand-off to the batching loop and back.
	if s.batch != nil {
		if rows := s.batch.rows(ordered); rows > 0 {
			if s.InFlight() > 1 {
				return s.batch.submit(ctx, ordered, outputs, rows)
			}
			s.batch.observeSize(rows)
		}
	}
	return s.runOrdered(ordered, outputs)
}

// runOrdered runs the model on checked inputs in signature order and
// returns the requested outputs (all when outputs is empty).
func (s *Session) runOrdered(ordered []wire.Tensor, outputs []string) ([]wire.Tensor, error) {
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
func (s *Session) sizeOutputs(ordered []wire.Tensor, out []ort.Value) ([]wire.Tensor, error) {
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

// checkInputs returns the inputs in signature order after checking each
// against its spec.
func (s *Session) checkInputs(inputs []wire.Tensor) ([]wire.Tensor, error) {
	if len(inputs) == 0 {
		return nil, fmt.Errorf("%w: no inputs given (the model takes %s)", wire.ErrBadInput, wire.Names(s.info.Inputs))
	}
	ordered := make([]wire.Tensor, len(s.info.Inputs))
	seen := make([]bool, len(s.info.Inputs))
	for _, t := range inputs {
		i, ok := s.inIdx[t.Name]
		if !ok {
			return nil, fmt.Errorf("%w: unknown input %q (the model takes %s)", wire.ErrBadInput, t.Name, wire.Names(s.info.Inputs))
		}
		if seen[i] {
			return nil, fmt.Errorf("%w: input %q given twice", wire.ErrBadInput, t.Name)
		}
		seen[i] = true
		if err := wire.CheckTensor(s.info.Inputs[i], t); err != nil {
			return nil, err
		}
		ordered[i] = t
	}
	for i, ok := range seen {
		if !ok {
			return nil, fmt.Errorf("%w: missing input %q (%s %v)", wire.ErrBadInput, s.info.Inputs[i].Name, s.info.Inputs[i].DType, s.info.Inputs[i].Shape)
		}
	}
	return ordered, nil
}

// WarmUp runs the model once on zeros of its declared shapes, with every
// free dimension as 1, so that the first real request does not pay for
// ONNX Runtime's lazy initialisation, and so that a model that loads but
// cannot run is caught before it takes traffic.
func (s *Session) WarmUp(ctx context.Context) error {
	return s.runZeros(ctx, 1)
}

// runZeros runs the model on zeros with free dimensions set to dyn.
func (s *Session) runZeros(ctx context.Context, dyn int64) error {
	inputs := make([]wire.Tensor, len(s.info.Inputs))
	for i, spec := range s.info.Inputs {
		shape := make([]int64, len(spec.Shape))
		for j, d := range spec.Shape {
			if d < 0 {
				d = dyn
			}
			shape[j] = d
		}
		n, ok := wire.ShapeSize(shape)
		if !ok {
			return fmt.Errorf("warm-up: input %q has shape %v", spec.Name, shape)
		}
		data, err := wire.MakeData(spec.DType, int(n))
		if err != nil {
			return err
		}
		inputs[i] = wire.Tensor{Name: spec.Name, Shape: shape, Data: data}
	}
	if _, err := s.Run(ctx, inputs, nil); err != nil {
		return fmt.Errorf("warm-up of %s version %s: %w", s.info.Name, s.info.Version, err)
	}
	return nil
}

// IsBadInput reports whether err is the caller's fault.
func IsBadInput(err error) bool { return errors.Is(err, wire.ErrBadInput) }
