package serving

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Dynamic batching.
//
// For a model whose every input and output has a free first dimension (the
// batch), concurrent requests are queued and merged into one ONNX Runtime
// run of up to MaxBatchSize rows, then the outputs are split back, each
// request getting its own rows in order. Merging pays where inference
// dominates: one run over 32 rows costs far less than 32 runs of one.
//
// Each request is checked against the signature before it is queued, so a
// malformed one gets its own error and never joins a batch. Requests whose
// inputs differ in a trailing dimension (a free one other than the batch)
// are not merged. Requested outputs do not matter: a run computes every
// output anyway, and each request gets the ones it asked for. A request
// larger than MaxBatchSize runs alone, at once, and so does a request that
// is the session's only holder (nothing could join it): on its caller's
// goroutine, without the hand-off to the loop. Should a merged run fail,
// or produce an output that is not one row per input row, its requests
// are run again one by one, so that a request that breaks the model fails
// alone.
//
// The queue is bounded: when MaxQueue requests are waiting, Run fails at
// once with ErrOverloaded (the HTTP layer answers 429 with Retry-After).

// DefaultMaxQueue is the queue bound when BatchOptions.MaxQueue is 0.
const DefaultMaxQueue = 1024

// BatchOptions turn dynamic batching on for a session.
type BatchOptions struct {
	// MaxBatchSize is the most rows one merged run takes; 0 or 1 turns
	// batching off.
	MaxBatchSize int
	// MaxQueueDelay is the longest the first request of a batch waits for
	// others to join. The batch runs sooner when it is full, or when no
	// other request holds the session (nothing else can arrive soon), so
	// that a lone client does not pay the delay.
	MaxQueueDelay time.Duration
	// MaxQueue bounds the requests waiting; 0: DefaultMaxQueue.
	MaxQueue int
	// Metrics receives batch sizes and queue times; nil: none.
	Metrics *BatchMetrics
}

// BatchMetrics are the batching metrics of every session of a process,
// labelled by model and version. Create them once per registry.
type BatchMetrics struct {
	size  *prometheus.HistogramVec
	queue *prometheus.HistogramVec
}

// NewBatchMetrics registers modelgate_batch_size and
// modelgate_batch_queue_seconds on reg.
func NewBatchMetrics(reg prometheus.Registerer) *BatchMetrics {
	m := &BatchMetrics{
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "modelgate_batch_size",
			Help:    "Rows per ONNX Runtime run of a batching session.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}, []string{"model", "version"}),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "modelgate_batch_queue_seconds",
			Help:    "Time a request waited in the batching queue before its batch ran.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"model", "version"}),
	}
	reg.MustRegister(m.size, m.queue)
	return m
}

// batchable says why a session with this signature cannot batch ("" when
// it can): every input and output needs a free first dimension.
func batchable(info Info) string {
	for _, group := range []struct {
		kind  string
		specs []wire.TensorSpec
	}{{"input", info.Inputs}, {"output", info.Outputs}} {
		for _, sp := range group.specs {
			if len(sp.Shape) == 0 || sp.Shape[0] != -1 {
				return fmt.Sprintf("%s %q has shape %v: batching needs a free first dimension on every input and output", group.kind, sp.Name, sp.Shape)
			}
		}
	}
	return ""
}

// batcher queues a session's requests and runs them in merged batches, on
// one goroutine.
type batcher struct {
	s       *Session
	max     int
	delay   time.Duration
	metrics *BatchMetrics

	queue chan *call
	stop  chan struct{} // closed by close
	done  chan struct{} // closed when loop has returned
	wake  chan struct{} // a reference was released: look again at who may come

	// Owned by loop.
	held    []*call // taken from the queue, waiting for a later batch
	batch   []*call
	scratch []any           // merged inputs, reused from batch to batch
	parts   []any           // one input of each call of a batch, for wire.Concat
	outs    [][]wire.Tensor // each call's outputs, until the batch is counted
}

// call is one queued request.
type call struct {
	ctx      context.Context
	inputs   []wire.Tensor // in signature order
	outputs  []string      // requested; nil: all
	rows     int
	enqueued time.Time
	res      chan result // buffered: the loop never blocks on a caller
}

type result struct {
	out []wire.Tensor
	t   served // the wait and the run's phases, for the statistics
	err error
}

var callPool = sync.Pool{New: func() any { return &call{res: make(chan result, 1)} }}

func newBatcher(s *Session, o BatchOptions) *batcher {
	if o.MaxQueue <= 0 {
		o.MaxQueue = DefaultMaxQueue
	}
	b := &batcher{
		s: s, max: o.MaxBatchSize, delay: o.MaxQueueDelay, metrics: o.Metrics,
		queue:   make(chan *call, o.MaxQueue),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		wake:    make(chan struct{}, 1),
		scratch: make([]any, len(s.info.Inputs)),
	}
	go b.loop()
	return b
}

// rows is the batch size of a request that can be queued: every input has
// the same first dimension, between 1 and the maximum. 0: run it alone.
func (b *batcher) rows(inputs []wire.Tensor) int {
	n := int64(-1)
	for _, t := range inputs {
		if len(t.Shape) == 0 || (n >= 0 && t.Shape[0] != n) {
			return 0
		}
		n = t.Shape[0]
	}
	if n < 1 || n > int64(b.max) {
		return 0
	}
	return int(n)
}

// submit queues a checked request and waits for its answer.
func (b *batcher) submit(ctx context.Context, inputs []wire.Tensor, outputs []string, rows int) ([]wire.Tensor, served, error) {
	c := callPool.Get().(*call)
	c.ctx, c.inputs, c.outputs, c.rows, c.enqueued = ctx, inputs, outputs, rows, time.Now()
	select {
	case b.queue <- c:
	default:
		c.reset()
		callPool.Put(c)
		return nil, served{}, fmt.Errorf("%w: %d requests are already waiting for %s version %s; retry later", ErrOverloaded, cap(b.queue), b.s.info.Name, b.s.info.Version)
	}
	select {
	case r := <-c.res:
		c.reset()
		callPool.Put(c)
		return r.out, r.t, r.err
	case <-ctx.Done():
		// The loop skips a call whose context has ended, or finishes a
		// run it is part of and drops the answer; c is not reused.
		return nil, served{}, ctx.Err()
	case <-b.done:
		return nil, served{}, ErrClosed
	}
}

func (c *call) reset() { c.ctx, c.inputs, c.outputs = nil, nil, nil }

func (c *call) finish(out []wire.Tensor, err error) { c.res <- result{out: out, err: err} }

// answer gives a call the outputs of a run that took p, after waiting
// from its enqueueing to start.
func (c *call) answer(out []wire.Tensor, start time.Time, p phases, err error) {
	c.res <- result{out: out, t: served{queued: start.Sub(c.enqueued), phases: p}, err: err}
}

// close stops the loop after the batch in progress; calls still queued
// (their callers have given up: a caller holds a reference while it
// waits) are answered ErrClosed.
func (b *batcher) close() {
	close(b.stop)
	<-b.done
}

func (b *batcher) loop() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		first := b.next()
		if first == nil {
			for _, c := range b.held {
				c.finish(nil, ErrClosed)
			}
			for {
				select {
				case c := <-b.queue:
					c.finish(nil, ErrClosed)
				default:
					return
				}
			}
		}
		batch, rows := append(b.batch[:0], first), first.rows
		// Held calls are older than any in the queue: they go first.
		kept := b.held[:0]
		for _, c := range b.held {
			if rows+c.rows <= b.max && sameTrailing(first, c) {
				batch, rows = append(batch, c), rows+c.rows
			} else {
				kept = append(kept, c)
			}
		}
		clear(b.held[len(kept):])
		b.held = kept
		deadline := first.enqueued.Add(b.delay)
	collect:
		for rows < b.max && len(b.held) < b.max {
			var c *call
			select {
			case c = <-b.queue:
			default:
				wait := time.Until(deadline)
				if wait <= 0 || !b.othersComing(len(batch)) {
					break collect
				}
				timer.Reset(wait)
				select {
				case c = <-b.queue:
					timer.Stop()
				case <-timer.C:
					break collect
				case <-b.wake:
					timer.Stop()
					continue collect
				case <-b.stop:
					timer.Stop()
					break collect
				}
			}
			if err := c.ctx.Err(); err != nil {
				c.finish(nil, err)
				continue
			}
			if !sameTrailing(first, c) {
				b.held = append(b.held, c)
				continue
			}
			if rows+c.rows > b.max {
				b.held = append(b.held, c)
				break
			}
			batch, rows = append(batch, c), rows+c.rows
		}
		b.run(batch, rows)
		clear(batch)
		b.batch = batch[:0]
	}
}

// next is the first call of the next batch: the oldest held one, else the
// next in the queue whose caller still waits; nil once close was called.
func (b *batcher) next() *call {
	for {
		if len(b.held) > 0 {
			c := b.held[0]
			b.held = append(b.held[:0], b.held[1:]...)
			if err := c.ctx.Err(); err != nil {
				c.finish(nil, err)
				continue
			}
			return c
		}
		select {
		case c := <-b.queue:
			if err := c.ctx.Err(); err != nil {
				c.finish(nil, err)
				continue
			}
			return c
		case <-b.stop:
			return nil
		}
	}
}

// released tells a waiting loop that a holder of the session is gone.
func (b *batcher) released() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// othersComing reports whether more requests than the n collected (and
// those held) hold the session, so that waiting for them to join is worth
// it. With none, the batch runs at once.
func (b *batcher) othersComing(n int) bool {
	return b.s.InFlight() > n+len(b.held)
}

// sameTrailing reports whether two calls' inputs agree in every dimension
// but the first, so that they can be concatenated.
func sameTrailing(a, c *call) bool {
	for i := range a.inputs {
		x, y := a.inputs[i].Shape, c.inputs[i].Shape
		if len(x) != len(y) {
			return false
		}
		for j := 1; j < len(x); j++ {
			if x[j] != y[j] {
				return false
			}
		}
	}
	return true
}

// run runs one batch and answers each of its calls; each successful
// model run is counted in the session's statistics with its phases, the
// merging of the inputs counted as preparing them and the splitting of
// the outputs as extracting them.
func (b *batcher) run(batch []*call, rows int) {
	start := time.Now()
	if m := b.metrics; m != nil {
		q := m.queue.WithLabelValues(b.s.info.Name, b.s.info.Version)
		for _, c := range batch {
			q.Observe(start.Sub(c.enqueued).Seconds())
		}
	}
	if len(batch) == 1 {
		b.observeSize(rows)
		b.runAlone(batch[0], start)
		return
	}
	merged := make([]wire.Tensor, len(b.s.info.Inputs))
	for i := range merged {
		shape := append([]int64{int64(rows)}, batch[0].inputs[i].Shape[1:]...)
		parts := b.parts[:0]
		for _, c := range batch {
			parts = append(parts, c.inputs[i].Data)
		}
		b.scratch[i] = wire.Concat(b.scratch[i], parts)
		clear(parts)
		b.parts = parts[:0]
		merged[i] = wire.Tensor{Name: b.s.info.Inputs[i].Name, Shape: shape, Data: b.scratch[i]}
	}
	mergedAt := time.Now()
	all, p, err := b.s.execute(context.Background(), merged, nil)
	if err == nil {
		err = checkRows(all, rows)
	}
	if err != nil {
		b.s.log.Debug("batch failed; running its requests one by one", "model", b.s.info.Name, "version", b.s.info.Version, "requests", len(batch), "rows", rows, "err", err)
		for _, c := range batch {
			b.observeSize(c.rows)
			b.runAlone(c, start)
		}
		return
	}
	b.observeSize(rows)
	splitAt := time.Now()
	outs := b.outs[:0]
	off := 0
	for _, c := range batch {
		var out []wire.Tensor
		if len(c.outputs) == 0 {
			out = make([]wire.Tensor, len(all))
			for j, t := range all {
				out[j] = wire.Rows(t, off, c.rows)
			}
		} else {
			out = make([]wire.Tensor, len(c.outputs))
			for j, name := range c.outputs {
				out[j] = wire.Rows(all[b.s.outIdx[name]], off, c.rows)
			}
		}
		off += c.rows
		outs = append(outs, out)
	}
	p = p.add(phases{input: mergedAt.Sub(start), output: time.Since(splitAt)})
	b.s.stats.execution(rows, p)
	for i, c := range batch {
		c.answer(outs[i], start, p, nil)
	}
	clear(outs)
	b.outs = outs[:0]
}

// runAlone runs one call on its own, its batch taken from the queue at
// start.
func (b *batcher) runAlone(c *call, start time.Time) {
	out, p, err := b.s.execute(c.ctx, c.inputs, c.outputs)
	if err == nil {
		b.s.stats.execution(c.rows, p)
	}
	c.answer(out, start, p, err)
}

func (b *batcher) observeSize(rows int) {
	if b.metrics != nil {
		b.metrics.size.WithLabelValues(b.s.info.Name, b.s.info.Version).Observe(float64(rows))
	}
}

// forget drops the session's series from the metrics.
func (b *batcher) forget() {
	if m := b.metrics; m != nil {
		m.size.DeleteLabelValues(b.s.info.Name, b.s.info.Version)
		m.queue.DeleteLabelValues(b.s.info.Name, b.s.info.Version)
	}
}

// checkRows checks that every output has one row per input row.
func checkRows(outs []wire.Tensor, rows int) error {
	for _, t := range outs {
		if len(t.Shape) == 0 || t.Shape[0] != int64(rows) {
			return fmt.Errorf("output %q has shape %v for a batch of %d rows", t.Name, t.Shape, rows)
		}
	}
	return nil
}
