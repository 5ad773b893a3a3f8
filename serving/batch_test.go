package serving

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/onnx"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

// noLeaks checks, after every other cleanup of the test (sessions closed),
// that no goroutine of the test is left.
func noLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// batchSession is a session with batching on. The queue delay is long on
// purpose: batches in these tests close because they are full or because
// no other caller holds the session, never on a timer.
func batchSession(t *testing.T, model []byte, max, queue int) (*Session, *BatchMetrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := NewBatchMetrics(reg)
	s, err := testRT.NewSession(model, SessionOptions{Name: "m", Version: "1", Batching: BatchOptions{
		MaxBatchSize: max, MaxQueueDelay: time.Minute, MaxQueue: queue, Metrics: m,
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); <-s.Done() })
	return s, m, reg
}

// batches returns how many runs the batch-size histogram saw and their rows.
func batches(t *testing.T, reg *prometheus.Registry) (runs uint64, rows float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "modelgate_batch_size" {
			for _, m := range mf.GetMetric() {
				runs += m.GetHistogram().GetSampleCount()
				rows += m.GetHistogram().GetSampleSum()
			}
		}
	}
	return runs, rows
}

// acquire takes n references, as n requests in flight would.
func acquire(t *testing.T, s *Session, n int) {
	t.Helper()
	for range n {
		if !s.Acquire() {
			t.Fatal("Acquire failed")
		}
	}
}

func rowsData(rows, width int, base float32) []float32 {
	d := make([]float32, rows*width)
	for i := range d {
		d[i] = base + float32(i)
	}
	return d
}

func TestBatchMergesAndSplitsInOrder(t *testing.T) {
	noLeaks(t)
	s, _, reg := batchSession(t, testmodels.Identity(onnx.Float, -1, 3), 4, 0)
	if s.Info().MaxBatchSize != 4 {
		t.Fatalf("batching not on: %+v", s.Info())
	}
	sizes := []int{1, 2, 1} // four rows: exactly one full batch
	acquire(t, s, len(sizes))
	var wg sync.WaitGroup
	errs := make([]error, len(sizes))
	for i, n := range sizes {
		wg.Go(func() {
			defer s.Release()
			in := rowsData(n, 3, float32(100*i))
			out, err := s.Run(context.Background(), []wire.Tensor{{Name: "x", Shape: []int64{int64(n), 3}, Data: in}}, nil)
			switch {
			case err != nil:
				errs[i] = err
			case !reflect.DeepEqual(out[0].Shape, []int64{int64(n), 3}) || !reflect.DeepEqual(out[0].Data, in):
				errs[i] = fmt.Errorf("request %d: got %v %v, want its own rows %v", i, out[0].Shape, out[0].Data, in)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if runs, rows := batches(t, reg); runs != 1 || rows != 4 {
		t.Fatalf("want one run of 4 rows, got %d runs of %v rows in all", runs, rows)
	}
	if n := testutil.CollectAndCount(reg, "modelgate_batch_queue_seconds"); n != 1 {
		t.Fatalf("queue-time series: %d", n)
	}
}

func TestBatchMergesDifferentOutputRequests(t *testing.T) {
	noLeaks(t)
	s, _, reg := batchSession(t, testmodels.SumProd(), 2, 0)
	acquire(t, s, 2)
	a := wire.Tensor{Name: "a", Shape: []int64{1, 3}, Data: []float32{1, 2, 3}}
	b := wire.Tensor{Name: "b", Shape: []int64{1, 3}, Data: []float32{4, 5, 6}}
	want := map[string][]float32{"sum": {5, 7, 9}, "prod": {4, 10, 18}}
	var wg sync.WaitGroup
	got := map[string][]wire.Tensor{}
	var mu sync.Mutex
	for _, name := range []string{"sum", "prod"} {
		wg.Go(func() {
			defer s.Release()
			out, err := s.Run(context.Background(), []wire.Tensor{b, a}, []string{name})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got[name] = out
			mu.Unlock()
		})
	}
	wg.Wait()
	for name, w := range want {
		if len(got[name]) != 1 || got[name][0].Name != name || !reflect.DeepEqual(got[name][0].Data, w) {
			t.Errorf("%s: got %+v, want only %s = %v", name, got[name], name, w)
		}
	}
	if runs, rows := batches(t, reg); runs != 1 || rows != 2 {
		t.Fatalf("want one merged run of 2 rows, got %d runs, %v rows", runs, rows)
	}
}

func TestBatchMalformedRequestFailsAlone(t *testing.T) {
	noLeaks(t)
	s, _, reg := batchSession(t, testmodels.Identity(onnx.Float, -1, 3), 8, 0)
	// Checked before it is queued: its own error, at once.
	acquire(t, s, 1)
	_, err := s.Run(context.Background(), []wire.Tensor{{Name: "x", Shape: []int64{1, 4}, Data: make([]float32, 4)}}, nil)
	s.Release()
	if !IsBadInput(err) || !strings.Contains(err.Error(), "shape [1 4]") {
		t.Fatalf("bad shape: %v", err)
	}
	if runs, _ := batches(t, reg); runs != 0 {
		t.Fatalf("a malformed request reached a batch (%d runs)", runs)
	}
}

// gatherModel picks rows of a constant 4x2 table by index: an index out of
// range makes ONNX Runtime fail the whole run, something no signature check
// can catch.
func gatherModel(t *testing.T) []byte {
	t.Helper()
	g := &onnx.Graph{Name: "gather"}
	g.Input("idx", onnx.Int64, -1, 1).Output("y", onnx.Float, -1, 1, 2).
		Init(onnx.FloatTensor("table", []int64{4, 2}, []float32{0, 1, 10, 11, 20, 21, 30, 31})).
		Add("Gather", []string{"table", "idx"}, []string{"y"}, onnx.AttrInt("axis", 0))
	b, err := (&onnx.Model{Graph: g}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBatchRuntimeFailureFailsOnlyItsRequest(t *testing.T) {
	noLeaks(t)
	s, _, reg := batchSession(t, gatherModel(t), 3, 0)
	idx := []int64{2, 99, 1} // 99 is out of range
	acquire(t, s, len(idx))
	outs := make([][]wire.Tensor, len(idx))
	errs := make([]error, len(idx))
	var wg sync.WaitGroup
	for i, v := range idx {
		wg.Go(func() {
			defer s.Release()
			outs[i], errs[i] = s.Run(context.Background(), []wire.Tensor{{Name: "idx", Shape: []int64{1, 1}, Data: []int64{v}}}, nil)
		})
	}
	wg.Wait()
	if errs[1] == nil {
		t.Fatalf("out-of-range index answered %+v", outs[1])
	}
	for _, i := range []int{0, 2} {
		want := []float32{float32(10 * idx[i]), float32(10*idx[i] + 1)}
		if errs[i] != nil || !reflect.DeepEqual(outs[i][0].Data, want) {
			t.Errorf("request %d (index %d) failed with its batch-mate: %v %+v", i, idx[i], errs[i], outs[i])
		}
	}
	// The merged run failed, then each ran alone.
	if runs, rows := batches(t, reg); runs != 3 || rows != 3 {
		t.Fatalf("want three single runs after the failed batch, got %d runs, %v rows", runs, rows)
	}
}

func TestBatchTrailingShapesNotMerged(t *testing.T) {
	noLeaks(t)
	s, _, reg := batchSession(t, testmodels.Identity(onnx.Float, -1, -1), 4, 0)
	shapes := [][]int64{{1, 2}, {1, 3}, {1, 2}, {1, 3}}
	acquire(t, s, len(shapes))
	var wg sync.WaitGroup
	for i, sh := range shapes {
		wg.Go(func() {
			defer s.Release()
			in := rowsData(1, int(sh[1]), float32(10*i))
			out, err := s.Run(context.Background(), []wire.Tensor{{Name: "x", Shape: sh, Data: in}}, nil)
			if err != nil || !reflect.DeepEqual(out[0].Data, in) || !reflect.DeepEqual(out[0].Shape, sh) {
				t.Errorf("request %d: %v %+v", i, err, out)
			}
		})
	}
	wg.Wait()
	runs, rows := batches(t, reg)
	if rows != 4 || runs < 2 {
		t.Fatalf("requests of two widths must run in at least two runs: %d runs, %v rows", runs, rows)
	}
}

func TestBatchLargeRequestRunsAlone(t *testing.T) {
	noLeaks(t)
	s, _, reg := batchSession(t, testmodels.Identity(onnx.Float, -1, 3), 2, 0)
	in := rowsData(5, 3, 0)
	out, err := s.Run(context.Background(), []wire.Tensor{{Name: "x", Shape: []int64{5, 3}, Data: in}}, nil)
	if err != nil || !reflect.DeepEqual(out[0].Data, in) {
		t.Fatalf("%v %+v", err, out)
	}
	if runs, _ := batches(t, reg); runs != 0 {
		t.Fatalf("a request over max_batch_size went through the queue")
	}
}

// TestBatchLoneRequestSkipsTheQueue: a request that is the session's only
// holder runs at once on its caller's goroutine (nothing could join it),
// and still counts as a run of its rows.
func TestBatchLoneRequestSkipsTheQueue(t *testing.T) {
	noLeaks(t)
	s, _, reg := batchSession(t, testmodels.Identity(onnx.Float, -1, 3), 4, 0)
	acquire(t, s, 1)
	defer s.Release()
	in := rowsData(2, 3, 7)
	out, err := s.Run(context.Background(), []wire.Tensor{{Name: "x", Shape: []int64{2, 3}, Data: in}}, nil)
	if err != nil || !reflect.DeepEqual(out[0].Data, in) {
		t.Fatalf("%v %+v", err, out)
	}
	if runs, rows := batches(t, reg); runs != 1 || rows != 2 {
		t.Fatalf("want one run of 2 rows, got %d runs of %v rows", runs, rows)
	}
	if n := testutil.CollectAndCount(reg, "modelgate_batch_queue_seconds"); n != 0 {
		t.Fatalf("a lone request waited in the queue (%d queue-time series)", n)
	}
}

func TestBatchingOffWithoutBatchDimension(t *testing.T) {
	noLeaks(t)
	s, _, _ := batchSession(t, testmodels.Identity(onnx.Float, 2, 3), 8, 0)
	if s.batch != nil || s.Info().MaxBatchSize != 0 {
		t.Fatalf("batching on for a fixed-shape model")
	}
	if !strings.Contains(batchable(s.Info()), `input "x" has shape [2 3]`) {
		t.Fatalf("reason: %q", batchable(s.Info()))
	}
	if _, err := s.Run(context.Background(), []wire.Tensor{{Name: "x", Shape: []int64{2, 3}, Data: make([]float32, 6)}}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestBatchQueueFullAndCancel drives a batcher whose loop has not started
// yet, so that what is queued stays queued.
func TestBatchQueueFullAndCancel(t *testing.T) {
	noLeaks(t)
	s := newSession(t, testmodels.Identity(onnx.Float, -1, 3))
	b := &batcher{s: s, max: 4, delay: time.Minute, queue: make(chan *call, 1), stop: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1), scratch: make([]any, 1)}
	in := []wire.Tensor{{Name: "x", Shape: []int64{1, 3}, Data: []float32{1, 2, 3}}}

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, _, err := b.submit(ctx, in, nil, 1)
		first <- err
	}()
	// Wait until the first call fills the queue.
	for len(b.queue) == 0 {
		time.Sleep(time.Millisecond)
	}
	_, _, err := b.submit(context.Background(), in, nil, 1)
	if !errors.Is(err, ErrOverloaded) || !strings.Contains(err.Error(), "1 requests are already waiting") {
		t.Fatalf("full queue: %v", err)
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
	// The loop skips the abandoned call and serves the next one.
	go b.loop()
	for len(b.queue) > 0 {
		time.Sleep(time.Millisecond)
	}
	out, _, err := b.submit(context.Background(), in, nil, 1)
	if err != nil || !reflect.DeepEqual(out[0].Data, []float32{1, 2, 3}) {
		t.Fatalf("after the cancelled call: %v %+v", err, out)
	}
	b.close()
	if _, _, err := b.submit(context.Background(), in, nil, 1); !errors.Is(err, ErrClosed) && !errors.Is(err, ErrOverloaded) {
		t.Fatalf("after close: %v", err)
	}
}

// TestBatchConcurrentAgree runs many concurrent requests of 1 to 3 rows
// through a batching session and checks each answer against a session
// without batching.
func TestBatchConcurrentAgree(t *testing.T) {
	noLeaks(t)
	w := make([]float32, 30*2)
	for i := range w {
		w[i] = float32(i%7) - 3
	}
	model := testmodels.Linear(30, 2, w, []float32{0.5, -0.5})
	plain := newSession(t, model)
	s, _, reg := batchSession(t, model, 8, 0)
	const workers, each = 12, 30
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for r := range each {
				rows := 1 + (g+r)%3
				in := []wire.Tensor{{Name: "features", Shape: []int64{int64(rows), 30}, Data: rowsData(rows, 30, float32(g*1000+r)/100)}}
				if !s.Acquire() {
					t.Error("Acquire failed")
					return
				}
				got, err := s.Run(context.Background(), in, []string{"probabilities"})
				s.Release()
				want, werr := plain.Run(context.Background(), in, []string{"probabilities"})
				if err != nil || werr != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("worker %d request %d: %v %v\n got %+v\nwant %+v", g, r, err, werr, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	runs, rows := batches(t, reg)
	t.Logf("%d runs for %v rows", runs, rows)
	if runs == 0 || rows == 0 {
		t.Fatal("no batch ran")
	}
}

func TestBatchCloseStopsTheLoop(t *testing.T) {
	noLeaks(t)
	reg := prometheus.NewRegistry()
	s, err := testRT.NewSession(testmodels.Identity(onnx.Float, -1, 3), SessionOptions{Name: "m", Version: "1", Batching: BatchOptions{MaxBatchSize: 4, MaxQueueDelay: time.Millisecond, Metrics: NewBatchMetrics(reg)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WarmUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if testutil.CollectAndCount(reg, "modelgate_batch_size") != 1 {
		t.Fatal("warm-up did not go through the batcher")
	}
	s.Close()
	<-s.Done()
	if testutil.CollectAndCount(reg, "modelgate_batch_size") != 0 {
		t.Fatal("a destroyed session's series stayed")
	}
}

// reshapeModel declares y as [-1, 2] but gives two rows per input row, as
// a model whose outputs are not one row per input row may.
func reshapeModel(t *testing.T) []byte {
	t.Helper()
	g := &onnx.Graph{Name: "reshape"}
	g.Input("x", onnx.Float, -1, 4).Output("y", onnx.Float, -1, 2).
		Init(onnx.Int64Tensor("shape", []int64{2}, []int64{-1, 2})).
		Add("Reshape", []string{"x", "shape"}, []string{"y"})
	b, err := (&onnx.Model{Graph: g}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOutputsNotOneRowPerRow(t *testing.T) {
	noLeaks(t)
	s := newSession(t, reshapeModel(t))
	in := []wire.Tensor{{Name: "x", Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}}
	for range 2 { // the first run finds out, the second no longer guesses
		out, err := s.Run(context.Background(), in, nil)
		if err != nil || !reflect.DeepEqual(out[0].Shape, []int64{2, 2}) || !reflect.DeepEqual(out[0].Data, []float32{1, 2, 3, 4}) {
			t.Fatalf("%v %+v", err, out)
		}
		if !s.model.(*ortModel).unsized.Load() {
			t.Fatal("still sizing outputs from the input rows")
		}
	}
	// Batched: the merged run's outputs cannot be split by rows, so each
	// request runs alone and still gets its own answer.
	b, _, reg := batchSession(t, reshapeModel(t), 2, 0)
	acquire(t, b, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			defer b.Release()
			d := rowsData(1, 4, float32(10*i))
			out, err := b.Run(context.Background(), []wire.Tensor{{Name: "x", Shape: []int64{1, 4}, Data: d}}, nil)
			if err != nil || !reflect.DeepEqual(out[0].Data, d) {
				t.Errorf("request %d: %v %+v", i, err, out)
			}
		})
	}
	wg.Wait()
	if runs, rows := batches(t, reg); runs != 2 || rows != 2 {
		t.Fatalf("want two single runs after the merged one could not be split: %d runs, %v rows", runs, rows)
	}
}

func TestIntraOpSpinOffByDefault(t *testing.T) {
	for _, spin := range []bool{false, true} {
		rt := &Runtime{opts: Options{IntraOpThreads: 1, InterOpThreads: 1, IntraOpSpin: spin}}
		so, err := rt.sessionOptions(ProviderCPU)
		if err != nil {
			t.Fatal(err)
		}
		has, err := so.HasSessionConfigEntry("session.intra_op.allow_spinning")
		so.Destroy()
		if err != nil || has == spin {
			t.Fatalf("spin %v: allow_spinning entry present = %v (%v)", spin, has, err)
		}
	}
}
