package serving

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/wire"
)

// Benchmarks of Session.Run on the demo model (30 features, a 16-unit
// hidden layer, 2 classes), with allocations:
//
//	go test ./serving -run '^$' -bench . -benchmem

func demoSession(b *testing.B, o SessionOptions) *Session {
	b.Helper()
	model, err := os.ReadFile("../examples/breast-cancer/model.onnx")
	if err != nil {
		b.Fatal(err)
	}
	o.Name, o.Version = "breast-cancer", "1"
	s, err := testRT.NewSession(model, o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close(); <-s.Done() })
	return s
}

func demoInput(rows int) []wire.Tensor {
	return []wire.Tensor{{Name: "features", Shape: []int64{int64(rows), 30}, Data: make([]float32, rows*30)}}
}

func BenchmarkRun(b *testing.B) {
	s := demoSession(b, SessionOptions{})
	in := demoInput(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(context.Background(), in, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRunBatch32(b *testing.B) {
	s := demoSession(b, SessionOptions{})
	in := demoInput(32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(context.Background(), in, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRunBatching: 32 concurrent callers of one row each, through the
// batcher; ns/op is per request.
func BenchmarkRunBatching(b *testing.B) {
	s := demoSession(b, SessionOptions{Batching: BatchOptions{MaxBatchSize: 32, MaxQueueDelay: 500 * time.Microsecond}})
	b.ReportAllocs()
	b.SetParallelism(32)
	var once sync.Once
	b.RunParallel(func(pb *testing.PB) {
		once.Do(b.ResetTimer)
		in := demoInput(1)
		for pb.Next() {
			s.Acquire()
			_, err := s.Run(context.Background(), in, nil)
			s.Release()
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
