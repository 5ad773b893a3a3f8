package catalog_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/testclock"

	"github.com/modelgate/modelgate/catalog"
)

// A version that fails to load is not fetched and loaded again at every
// poll: it waits (ten poll intervals at first), then is retried.
func TestFailedVersionRetriedWithBackoff(t *testing.T) {
	clock := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	f := newFixture(t, []string{"m/1", "m/2"}, func(o *catalog.Options) {
		o.Now = clock.Now
		o.PollInterval = time.Second
	})
	f.sync()
	if err := os.WriteFile(f.modelFile("m", "2"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.setStable("m", "2")
	loadErrors := func() float64 {
		return series(t, f.metrics, "modelgate_model_loads_total")["model=m,result=error,version=2"]
	}
	for i := 0; i < 3; i++ {
		if err := f.cat.Sync(t.Context()); err == nil {
			t.Fatal("sync of a corrupt version succeeded")
		}
		clock.Add(time.Second) // one poll interval
	}
	if n := loadErrors(); n != 1 {
		t.Fatalf("a failed version was loaded %v times within its retry delay, want 1", n)
	}
	if st := f.modelStatus("m"); st.Version != "1" || st.Wanted != "2" || !strings.Contains(st.Error, "digest") {
		t.Fatalf("status %+v", st)
	}
	clock.Add(10 * time.Second)
	f.cat.Sync(t.Context())
	if n := loadErrors(); n != 2 {
		t.Fatalf("not retried after the delay: %v attempts", n)
	}
}

// flakySource fails every registry read while down is set.
type flakySource struct {
	catalog.Source
	mu   sync.Mutex
	down bool
}

func (s *flakySource) setDown(d bool) { s.mu.Lock(); s.down = d; s.mu.Unlock() }

func (s *flakySource) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errors.New("connection refused")
	}
	return nil
}

func (s *flakySource) Models(ctx context.Context) ([]string, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Source.Models(ctx)
}

func (s *flakySource) ReleaseJSON(ctx context.Context, name string) ([]byte, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Source.ReleaseJSON(ctx, name)
}

// With the registry down, loaded versions keep serving and readiness is
// unaffected; the errors are counted; a gateway starting while the
// registry is down is not ready until it comes back.
func TestRegistryDown(t *testing.T) {
	var src *flakySource
	f := newFixture(t, []string{"m/1"}, func(o *catalog.Options) {
		src = &flakySource{Source: o.Source}
		o.Source = src
	})
	src.setDown(true)
	if err := f.cat.Sync(t.Context()); err == nil {
		t.Fatal("sync with the registry down succeeded")
	}
	if st := f.cat.Status(); st.Ready || !strings.Contains(st.Error, "connection refused") {
		t.Fatalf("starting with the registry down: %+v", st)
	}
	src.setDown(false)
	f.sync()
	src.setDown(true)
	for i := 0; i < 3; i++ {
		if err := f.cat.Sync(t.Context()); err == nil {
			t.Fatal("sync with the registry down succeeded")
		}
	}
	if st := f.cat.Status(); !st.Ready {
		t.Fatalf("a registry outage made the gateway unready: %+v", st)
	}
	s := f.acquire("m", "", "1")
	s.Release()
	if n := series(t, f.metrics, "modelgate_registry_errors_total")[""]; n != 4 {
		t.Fatalf("registry errors = %v, want 4", n)
	}
	src.setDown(false)
	f.sync()
	if st := f.cat.Status(); !st.Ready || st.Error != "" {
		t.Fatalf("after recovery: %+v", st)
	}
}

// Pinned versions are also bounded by the summed size of their models.
func TestPinnedMemoryBudget(t *testing.T) {
	size := int64(len(modelBytes("2")))
	f := newFixture(t, []string{"m/1", "m/2", "m/3", "m/4"}, func(o *catalog.Options) {
		o.MaxPinned = 10
		o.MaxPinnedBytes = 2*size + size/2 // room for two
	})
	f.sync()
	var held []string
	for _, v := range []string{"2", "3", "4"} {
		s := f.acquire("m", v, v)
		s.Release()
		held = append(held, v)
	}
	if got := f.modelStatus("m").Pinned; strings.Join(got, ",") != "3,4" {
		t.Fatalf("pinned %v after loading %v within a two-model budget, want [3 4]", got, held)
	}
	f2 := newFixture(t, []string{"m/1", "m/2"}, func(o *catalog.Options) { o.MaxPinnedBytes = size / 2 })
	f2.sync()
	if _, err := f2.cat.Acquire(t.Context(), "m", "2"); !errors.Is(err, catalog.ErrNotReady) || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("a version larger than the budget: %v", err)
	}
}
