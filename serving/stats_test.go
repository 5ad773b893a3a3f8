package serving

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/onnx"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func identityInput(rows int) []wire.Tensor {
	return []wire.Tensor{{Name: "x", Shape: []int64{int64(rows), 3}, Data: rowsData(rows, 3, 1)}}
}

func batchSizes(st Stats) map[int]uint64 {
	out := map[int]uint64{}
	for _, b := range st.Batches {
		out[b.Size] = b.Count
	}
	return out
}

// TestStatsCountRequests: each successful request counts once with its
// rows, each run is an execution of its rows' batch size (sizes past the
// first 64 too), failures count apart, warm-up counts nowhere, and the
// phases of ONNX Runtime's runs are each measured and within the requests'
// time.
func TestStatsCountRequests(t *testing.T) {
	s := newSession(t, testmodels.Identity(onnx.Float, -1, 3))
	if err := s.WarmUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Success.Count != 0 || st.ExecutionCount != 0 || len(st.Batches) != 0 || !st.LastInference.IsZero() {
		t.Fatalf("warm-up was counted: %+v", st)
	}
	before := time.Now().Truncate(time.Millisecond)
	for _, rows := range []int{1, 2, 2, 100} {
		if _, err := s.Run(context.Background(), identityInput(rows), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Run(context.Background(), []wire.Tensor{{Name: "x", Shape: []int64{1, 4}, Data: make([]float32, 4)}}, nil); !IsBadInput(err) {
		t.Fatalf("bad input: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Run(ctx, identityInput(1), nil); err == nil {
		t.Fatal("cancelled request answered")
	}
	after := time.Now()
	st := s.Stats()
	if st.Success.Count != 4 || st.Fail.Count != 2 || st.InferenceCount != 105 || st.ExecutionCount != 4 {
		t.Fatalf("counts: %+v", st)
	}
	if got := batchSizes(st); len(got) != 3 || got[1] != 1 || got[2] != 2 || got[100] != 1 {
		t.Fatalf("batch sizes: %v", got)
	}
	if !slices.IsSortedFunc(st.Batches, func(a, b BatchStats) int { return a.Size - b.Size }) {
		t.Fatalf("batches not by size: %+v", st.Batches)
	}
	if st.LastInference.Before(before) || st.LastInference.After(after) {
		t.Fatalf("last inference %v not within [%v, %v]", st.LastInference, before, after)
	}
	for name, d := range map[string]Duration{"queue": st.Queue, "input": st.ComputeInput, "infer": st.ComputeInfer, "output": st.ComputeOutput} {
		if d.Count != st.Success.Count {
			t.Errorf("%s counted %d times for %d successes", name, d.Count, st.Success.Count)
		}
	}
	if st.ComputeInput.Total <= 0 || st.ComputeInfer.Total <= 0 || st.ComputeOutput.Total <= 0 {
		t.Errorf("a phase of ONNX Runtime's runs took no time: %+v", st)
	}
	if st.Queue.Total != 0 {
		t.Errorf("unbatched requests waited %v in a queue", st.Queue.Total)
	}
	if phases := st.ComputeInput.Total + st.ComputeInfer.Total + st.ComputeOutput.Total; phases > st.Success.Total {
		t.Errorf("the runs' phases (%v) took longer than the requests (%v)", phases, st.Success.Total)
	}
	var batchInfer time.Duration
	for _, b := range st.Batches {
		batchInfer += b.ComputeInfer
	}
	if batchInfer != st.ComputeInfer.Total {
		t.Errorf("unbatched: the runs' infer time %v is not the requests' %v", batchInfer, st.ComputeInfer.Total)
	}
}

// TestStatsBatched: requests merged into one run count one execution of
// the merged size, each request its own rows and the queue time it waited;
// each is charged the merged run's phases.
func TestStatsBatched(t *testing.T) {
	noLeaks(t)
	s, _, _ := batchSession(t, testmodels.Identity(onnx.Float, -1, 3), 4, 0)
	sizes := []int{1, 2, 1} // one full batch of four rows
	acquire(t, s, len(sizes))
	var wg sync.WaitGroup
	for _, n := range sizes {
		wg.Go(func() {
			defer s.Release()
			if _, err := s.Run(context.Background(), identityInput(n), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	if st.Success.Count != 3 || st.InferenceCount != 4 || st.ExecutionCount != 1 {
		t.Fatalf("counts: %+v", st)
	}
	if got := batchSizes(st); len(got) != 1 || got[4] != 1 {
		t.Fatalf("batch sizes: %v", got)
	}
	if st.Queue.Total <= 0 {
		t.Errorf("queued requests waited no time: %+v", st.Queue)
	}
	b := st.Batches[0]
	if st.ComputeInfer.Total != 3*b.ComputeInfer || st.ComputeInput.Total != 3*b.ComputeInput || st.ComputeOutput.Total != 3*b.ComputeOutput {
		t.Errorf("each request is charged its run's phases: requests %+v, run %+v", st, b)
	}
}

// TestStatsWithoutBatchDimension: a model whose first dimension is fixed
// counts one inference per request and runs of batch size 1.
func TestStatsWithoutBatchDimension(t *testing.T) {
	s := newSession(t, testmodels.Identity(onnx.Float, 2, 3))
	if _, err := s.Run(context.Background(), []wire.Tensor{{Name: "x", Shape: []int64{2, 3}, Data: make([]float32, 6)}}, nil); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.InferenceCount != 1 || st.ExecutionCount != 1 || !slices.Equal(st.Batches, []BatchStats{{Size: 1, Count: 1, ComputeInput: st.ComputeInput.Total, ComputeInfer: st.ComputeInfer.Total, ComputeOutput: st.ComputeOutput.Total}}) {
		t.Fatalf("%+v", st)
	}
}

// TestStatsCollector: the metrics are the statistics' own counters.
func TestStatsCollector(t *testing.T) {
	s := newSession(t, testmodels.Identity(onnx.Float, -1, 3))
	for _, rows := range []int{3, 1} {
		if _, err := s.Run(context.Background(), identityInput(rows), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Run(context.Background(), nil, nil); err == nil {
		t.Fatal("no inputs answered")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewStatsCollector(func() []*Session { return []*Session{s} }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() != "model" && l.GetName() != "version" {
					key += "/" + l.GetValue()
				} else if want := map[string]string{"model": "m", "version": "1"}[l.GetName()]; l.GetValue() != want {
					t.Errorf("%s: label %s=%q", key, l.GetName(), l.GetValue())
				}
			}
			if mf.GetType() != dto.MetricType_COUNTER {
				t.Errorf("%s is a %v", key, mf.GetType())
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	st := s.Stats()
	want := map[string]float64{
		"modelgate_inference_requests_total/success":        2,
		"modelgate_inference_requests_total/fail":           1,
		"modelgate_inference_request_seconds_total/success": st.Success.Total.Seconds(),
		"modelgate_inference_request_seconds_total/fail":    st.Fail.Total.Seconds(),
		"modelgate_inference_rows_total":                    4,
		"modelgate_inference_executions_total":              2,
		"modelgate_inference_queue_seconds_total":           0,
		"modelgate_inference_compute_seconds_total/input":   st.ComputeInput.Total.Seconds(),
		"modelgate_inference_compute_seconds_total/infer":   st.ComputeInfer.Total.Seconds(),
		"modelgate_inference_compute_seconds_total/output":  st.ComputeOutput.Total.Seconds(),
	}
	if len(got) != len(want) {
		t.Errorf("series: got %v, want %v", got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || math.Abs(g-w) > 1e-12 {
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
}
