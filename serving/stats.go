package serving

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// Inference statistics.
//
// Every session counts what it serves in one place, a set of atomics
// (stats): the requests that succeeded and failed with their times, each
// one's wait in the batching queue and the phases of the run that answered
// it, the inferences (rows) and model runs, and per batch size the runs and
// their phases. Counting takes no lock, and allocates nothing but for runs
// larger than the batching limit and 64 rows (their sizes' counters are in
// a map). Both the
// statistics extension of the HTTP layer (Session.Stats) and the metrics
// (NewStatsCollector) read these counters, so the two always agree. The
// terms are those of Triton's statistics extension
// (triton-inference-server/server docs/protocol/extension_statistics.md):
//
//   - a request succeeds when Session.Run answers it and fails when Run
//     returns an error (wrong inputs, a full queue, a model error, a
//     cancelled request); its time runs from Run's call to its return.
//   - inferences are a request's rows when the model has a batch dimension
//     (a free first dimension on every input and output), else 1.
//   - an execution is one successful model run, which answers one request
//     or, batched, several; its batch size is the rows it ran (1 without a
//     batch dimension).
//   - the phases of a run: compute_input prepares the inputs for the engine
//     (merging a batch, making ONNX Runtime tensors), compute_infer is the
//     engine's run, compute_output extracts the outputs (copying them out,
//     splitting a batch back). A request is charged the phases of the run
//     that answered it, as Triton does.
//
// Queue and compute times are kept for the requests that succeeded, so
// their counts are the success count. Warm-up runs count nowhere. A
// session's statistics start at zero when it is loaded and go with it.

// phases are the times of one model run (Triton's compute_input,
// compute_infer and compute_output).
type phases struct{ input, infer, output time.Duration }

func (p phases) add(q phases) phases {
	return phases{p.input + q.input, p.infer + q.infer, p.output + q.output}
}

// phasedModel is a Model that times the phases of its runs itself (the
// ONNX Runtime model); for other models the whole of Run is the infer
// phase.
type phasedModel interface {
	runPhased(ctx context.Context, inputs []wire.Tensor, outputs []string) ([]wire.Tensor, phases, error)
}

// served is what answering one request took: its inferences, its wait in
// the batching queue, and the phases of the run that answered it.
type served struct {
	rows   int
	queued time.Duration
	phases
}

// durationCounter is a count and a total time, as one pair of atomics.
type durationCounter struct{ count, ns atomic.Uint64 }

func (d *durationCounter) add(t time.Duration) {
	d.count.Add(1)
	d.ns.Add(uint64(max(t, 0)))
}

func (d *durationCounter) load() Duration {
	return Duration{Count: d.count.Load(), Total: time.Duration(d.ns.Load())}
}

// sizeCounter counts the runs of one batch size and their phases.
type sizeCounter struct{ count, input, infer, output atomic.Uint64 }

// smallSizes is how many batch sizes (1 to smallSizes, or to the batching
// limit when that is larger) have counters of their own from the start;
// runs of larger sizes, rare, find theirs in a map.
const smallSizes = 64

// stats are one session's counters; see the comment at the top.
type stats struct {
	last          atomic.Int64 // Unix milliseconds of the last success
	inferences    atomic.Uint64
	executions    atomic.Uint64
	success, fail durationCounter
	// Of the successful requests (their count is success's).
	queue, input, infer, output atomic.Uint64
	sizes                       []sizeCounter // sizes 1 to len(sizes)
	larger                      sync.Map      // int → *sizeCounter
}

func newStats(maxBatch int) *stats {
	return &stats{sizes: make([]sizeCounter, max(maxBatch, smallSizes))}
}

// request counts one call of Session.Run that started at start.
func (st *stats) request(start time.Time, t served, err error) {
	now := time.Now()
	if err != nil {
		st.fail.add(now.Sub(start))
		return
	}
	st.success.add(now.Sub(start))
	st.queue.Add(uint64(max(t.queued, 0)))
	st.input.Add(uint64(t.input))
	st.infer.Add(uint64(t.infer))
	st.output.Add(uint64(t.output))
	st.inferences.Add(uint64(t.rows))
	st.last.Store(now.UnixMilli())
}

// execution counts one successful model run of size rows.
func (st *stats) execution(size int, p phases) {
	st.executions.Add(1)
	c := st.size(size)
	c.count.Add(1)
	c.input.Add(uint64(p.input))
	c.infer.Add(uint64(p.infer))
	c.output.Add(uint64(p.output))
}

func (st *stats) size(n int) *sizeCounter {
	if n >= 1 && n <= len(st.sizes) {
		return &st.sizes[n-1]
	}
	if c, ok := st.larger.Load(n); ok {
		return c.(*sizeCounter)
	}
	c, _ := st.larger.LoadOrStore(n, new(sizeCounter))
	return c.(*sizeCounter)
}

// Stats are a session's cumulative inference statistics since it was
// loaded (see the comment at the top of stats.go for what each counts).
// Each counter is read atomically; together they are not one instant.
type Stats struct {
	// LastInference is when the last request succeeded; zero before.
	LastInference time.Time
	// InferenceCount is the inferences (rows) of the successful requests.
	InferenceCount uint64
	// ExecutionCount is the successful model runs.
	ExecutionCount uint64
	Success        Duration
	Fail           Duration
	// Queue and the three phases are those of the successful requests.
	Queue         Duration
	ComputeInput  Duration
	ComputeInfer  Duration
	ComputeOutput Duration
	// Batches are the runs by batch size, smallest first, for each size
	// that ran at least once.
	Batches []BatchStats
}

// Duration is a count and the total time of what it counts.
type Duration struct {
	Count uint64
	Total time.Duration
}

// BatchStats are the successful runs of one batch size and their phases.
type BatchStats struct {
	Size          int
	Count         uint64
	ComputeInput  time.Duration
	ComputeInfer  time.Duration
	ComputeOutput time.Duration
}

// Stats reads the session's statistics. It is safe at any time, also on a
// session that is closing.
func (s *Session) Stats() Stats {
	st := s.stats
	out := Stats{
		InferenceCount: st.inferences.Load(),
		ExecutionCount: st.executions.Load(),
		Success:        st.success.load(),
		Fail:           st.fail.load(),
	}
	n := out.Success.Count
	out.Queue = Duration{n, time.Duration(st.queue.Load())}
	out.ComputeInput = Duration{n, time.Duration(st.input.Load())}
	out.ComputeInfer = Duration{n, time.Duration(st.infer.Load())}
	out.ComputeOutput = Duration{n, time.Duration(st.output.Load())}
	if ms := st.last.Load(); ms != 0 {
		out.LastInference = time.UnixMilli(ms)
	}
	batch := func(size int, c *sizeCounter) {
		if n := c.count.Load(); n > 0 {
			out.Batches = append(out.Batches, BatchStats{Size: size, Count: n,
				ComputeInput: time.Duration(c.input.Load()), ComputeInfer: time.Duration(c.infer.Load()), ComputeOutput: time.Duration(c.output.Load())})
		}
	}
	for i := range st.sizes {
		batch(i+1, &st.sizes[i])
	}
	small := len(out.Batches)
	st.larger.Range(func(k, v any) bool {
		batch(k.(int), v.(*sizeCounter))
		return true
	})
	slices.SortFunc(out.Batches[small:], func(a, b BatchStats) int { return a.Size - b.Size })
	return out
}

// NewStatsCollector exports the statistics of the sessions that list
// returns (each time the metrics are gathered) as counters, labelled by
// model and version: modelgate_inference_requests_total and
// modelgate_inference_request_seconds_total by result (success, fail),
// modelgate_inference_rows_total (inferences),
// modelgate_inference_executions_total,
// modelgate_inference_queue_seconds_total and
// modelgate_inference_compute_seconds_total by phase (input, infer,
// output). list must not return two sessions of one model version.
func NewStatsCollector(list func() []*Session) prometheus.Collector {
	l := []string{"model", "version"}
	return &statsCollector{
		list:     list,
		requests: prometheus.NewDesc("modelgate_inference_requests_total", "Inference requests a model version answered (success) or refused or failed (fail), since it was loaded.", append(l, "result"), nil),
		seconds:  prometheus.NewDesc("modelgate_inference_request_seconds_total", "Time inference requests spent in the model version's session (checks, batching queue, run), by result.", append(l, "result"), nil),
		rows:     prometheus.NewDesc("modelgate_inference_rows_total", "Inferences of the successful requests: rows of a batch dimension, else 1 per request.", l, nil),
		execs:    prometheus.NewDesc("modelgate_inference_executions_total", "Successful model runs; with batching one answers several requests.", l, nil),
		queue:    prometheus.NewDesc("modelgate_inference_queue_seconds_total", "Time the successful requests waited in the batching queue.", l, nil),
		compute:  prometheus.NewDesc("modelgate_inference_compute_seconds_total", "Time of the runs that answered the successful requests, by phase: input (preparing the inputs), infer (the engine), output (extracting the outputs).", append(l, "phase"), nil),
	}
}

type statsCollector struct {
	list                                           func() []*Session
	requests, seconds, rows, execs, queue, compute *prometheus.Desc
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.seconds, c.rows, c.execs, c.queue, c.compute} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	for _, s := range c.list() {
		st := s.Stats()
		m, v := s.Name(), s.Version()
		counter(c.requests, float64(st.Success.Count), m, v, "success")
		counter(c.requests, float64(st.Fail.Count), m, v, "fail")
		counter(c.seconds, st.Success.Total.Seconds(), m, v, "success")
		counter(c.seconds, st.Fail.Total.Seconds(), m, v, "fail")
		counter(c.rows, float64(st.InferenceCount), m, v)
		counter(c.execs, float64(st.ExecutionCount), m, v)
		counter(c.queue, st.Queue.Total.Seconds(), m, v)
		counter(c.compute, st.ComputeInput.Total.Seconds(), m, v, "input")
		counter(c.compute, st.ComputeInfer.Total.Seconds(), m, v, "infer")
		counter(c.compute, st.ComputeOutput.Total.Seconds(), m, v, "output")
	}
}
