package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/modelgate/modelgate/semantics"
	"github.com/modelgate/modelgate/wire"
)

// Session is a model version in service: a Model with references, so that
// a swap never cuts a running request short, input checking, warm-up and,
// when asked for, dynamic batching (batch.go). Run is safe for concurrent
// use. Holders take a reference with Acquire and give it back with
// Release; Close waits for the last reference before closing the Model.
// Session is plain Go: it runs over any Model.
type Session struct {
	info   Info
	model  Model
	inIdx  map[string]int
	outIdx map[string]int
	log    *slog.Logger
	batch  *batcher // nil: every request runs on its own
	kinds  map[string]semantics.Output
	stats  *stats      // what the session served (stats.go)
	phased phasedModel // model, when it times its own phases
	// batchDim: every input and output has a free first dimension, so a
	// request's rows are its inferences (else it is one).
	batchDim bool

	mu      sync.Mutex
	refs    int
	closing bool
	done    chan struct{} // closed when the model has been closed
}

// SessionOptions name the model version a session serves (when it is
// loaded by Runtime.NewSession) and say how it runs.
type SessionOptions struct {
	Name    string
	Version string
	// Logger receives the session's logs; nil discards them.
	Logger *slog.Logger
	// Batching merges concurrent requests into one run (batch.go); off
	// unless MaxBatchSize > 1 and the model has a free first dimension on
	// every input and output.
	Batching BatchOptions
	// OutputKinds, from the version's manifest, says what each output
	// means (see OutputKinds); nil for a version stored without them.
	OutputKinds map[string]semantics.Output
}

// NewSession puts m in service with o's batching (o's name and version are
// not used: they are m's). It does not warm up: call WarmUp.
func NewSession(m Model, o SessionOptions) *Session {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Session{info: m.Info(), model: m, log: log, done: make(chan struct{}), kinds: maps.Clone(o.OutputKinds)}
	s.inIdx = make(map[string]int, len(s.info.Inputs))
	for i, sp := range s.info.Inputs {
		s.inIdx[sp.Name] = i
	}
	s.outIdx = make(map[string]int, len(s.info.Outputs))
	for i, sp := range s.info.Outputs {
		s.outIdx[sp.Name] = i
	}
	s.phased, _ = m.(phasedModel)
	why := batchable(s.info)
	s.batchDim = why == ""
	if o.Batching.MaxBatchSize > 1 {
		if why != "" {
			log.Info("batching off", "model", s.info.Name, "version", s.info.Version, "reason", why)
		} else {
			s.batch = newBatcher(s, o.Batching)
			s.info.MaxBatchSize = o.Batching.MaxBatchSize
			s.info.MaxQueueDelay = o.Batching.MaxQueueDelay
			log.Info("batching on", "model", s.info.Name, "version", s.info.Version,
				"max_batch_size", o.Batching.MaxBatchSize, "max_queue_delay", o.Batching.MaxQueueDelay)
		}
	}
	s.stats = newStats(s.info.MaxBatchSize)
	return s
}

// NewSession loads model bytes (Load) and puts the model in service
// (NewSession) with o's name, version and batching.
func (rt *Runtime) NewSession(model []byte, o SessionOptions) (*Session, error) {
	m, err := rt.Load(model, ModelOptions{Name: o.Name, Version: o.Version})
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = rt.log
	}
	return NewSession(m, o), nil
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

// OutputKinds is what the version's manifest says each output means
// (SessionOptions.OutputKinds), nil when it says nothing; readers fall
// back to semantics.Resolve's inference. Callers must not change it.
func (s *Session) OutputKinds() map[string]semantics.Output { return s.kinds }

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
	s.model.Close()
	close(s.done)
}

// Run checks inputs against the signature, runs the model and returns the
// requested outputs (all of them, in signature order, when outputs is
// empty). Errors about the inputs wrap wire.ErrBadInput and say which input is
// wrong and how. The caller must hold a reference (Acquire) or otherwise
// know that the session is not being closed. Every call is counted in
// the session's statistics (Stats).
func (s *Session) Run(ctx context.Context, inputs []wire.Tensor, outputs []string) ([]wire.Tensor, error) {
	start := time.Now()
	out, t, err := s.run(ctx, inputs, outputs, true)
	s.stats.request(start, t, err)
	return out, err
}

// run is Run without counting the request; count also counts its
// execution (warm-up counts neither).
func (s *Session) run(ctx context.Context, inputs []wire.Tensor, outputs []string, count bool) ([]wire.Tensor, served, error) {
	if err := ctx.Err(); err != nil {
		return nil, served{}, err
	}
	ordered, err := s.checkInputs(inputs)
	if err != nil {
		return nil, served{}, err
	}
	for _, name := range outputs {
		if _, ok := s.outIdx[name]; !ok {
			return nil, served{}, fmt.Errorf("%w: unknown output %q (the model has %s)", wire.ErrBadInput, name, wire.Names(s.info.Outputs))
		}
	}
	size := s.inferences(ordered)
	// A request that is alone in the session (the caller's reference is
	// the only one) has nobody to merge with: it runs at once, on its own
	// goroutine, without the hand-off to the batching loop and back.
	if s.batch != nil {
		if rows := s.batch.rows(ordered); rows > 0 {
			if s.InFlight() > 1 {
				out, t, err := s.batch.submit(ctx, ordered, outputs, rows)
				t.rows = size
				return out, t, err
			}
			s.batch.observeSize(rows)
		}
	}
	out, p, err := s.execute(ctx, ordered, outputs)
	if err == nil && count {
		s.stats.execution(size, p)
	}
	return out, served{rows: size, phases: p}, err
}

// inferences is what a request of checked inputs counts for: its rows
// when the model has a batch dimension, else 1.
func (s *Session) inferences(ordered []wire.Tensor) int {
	if s.batchDim && len(ordered) > 0 && len(ordered[0].Shape) > 0 {
		return int(ordered[0].Shape[0])
	}
	return 1
}

// execute runs the model once and times its phases.
func (s *Session) execute(ctx context.Context, ordered []wire.Tensor, outputs []string) ([]wire.Tensor, phases, error) {
	if s.phased != nil {
		return s.phased.runPhased(ctx, ordered, outputs)
	}
	start := time.Now()
	out, err := s.model.Run(ctx, ordered, outputs)
	return out, phases{infer: time.Since(start)}, err
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
	inputs, err := zeroInputs(s.info.Inputs, dyn)
	if err != nil {
		return err
	}
	if _, _, err := s.run(ctx, inputs, nil, false); err != nil {
		return fmt.Errorf("warm-up of %s version %s: %w", s.info.Name, s.info.Version, err)
	}
	return nil
}

// zeroInputs are zeros of the specs' shapes, in their order, with free
// dimensions set to dyn: the warm-up input, which the measurement of
// providers auto runs too.
func zeroInputs(specs []wire.TensorSpec, dyn int64) ([]wire.Tensor, error) {
	inputs := make([]wire.Tensor, len(specs))
	for i, spec := range specs {
		shape := make([]int64, len(spec.Shape))
		for j, d := range spec.Shape {
			if d < 0 {
				d = dyn
			}
			shape[j] = d
		}
		n, ok := wire.ShapeSize(shape)
		if !ok {
			return nil, fmt.Errorf("warm-up: input %q has shape %v", spec.Name, shape)
		}
		data, err := wire.MakeData(spec.DType, int(n))
		if err != nil {
			return nil, err
		}
		inputs[i] = wire.Tensor{Name: spec.Name, Shape: shape, Data: data}
	}
	return inputs, nil
}

// IsBadInput reports whether err is the caller's fault.
func IsBadInput(err error) bool { return errors.Is(err, wire.ErrBadInput) }
