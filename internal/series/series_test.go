package series

import (
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCacheReturnsOneChildPerLabelSet(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c", Help: "h"}, []string{"a", "b"})
	made := 0
	c := New(func(k [2]string) prometheus.Counter { made++; return vec.WithLabelValues(k[:]...) })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				c.Get([2]string{"x", string(rune('0' + i%2))}).Inc()
			}
		})
	}
	wg.Wait()
	if made != 2 {
		t.Fatalf("children made: %d, want 2", made)
	}
	if got := testutil.ToFloat64(vec.WithLabelValues("x", "0")); got != 400 {
		t.Fatalf("x/0 = %v, want 400", got)
	}
	if got := testutil.ToFloat64(vec.WithLabelValues("x", "1")); got != 400 {
		t.Fatalf("x/1 = %v, want 400", got)
	}
}
