package catalog_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/serving/servingtest"
)

// recorder is a Listener that keeps the states it is told.
type recorder struct {
	mu     sync.Mutex
	states []release.State
	every  time.Duration
}

func (r *recorder) OnRelease(_ context.Context, rel release.State) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, rel)
	return r.every
}

func (r *recorder) seen() (int, release.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.states) == 0 {
		return 0, release.State{}
	}
	return len(r.states), r.states[len(r.states)-1]
}

// waitFor polls cond every few milliseconds, failing after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watch runs f's catalog's Watch with listeners until the test ends.
func watch(t *testing.T, f *fixture, listeners ...catalog.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.cat.Watch(ctx, listeners...)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// TestWatchFeedsCatalogAndListeners: the watcher loads what the release
// states name and tells the listener each state; a version that takes a
// while to load never holds the listener up; the registry's changes reach
// both.
func TestWatchFeedsCatalogAndListeners(t *testing.T) {
	f := newFixture(t, []string{"m/1"}, func(o *catalog.Options) { o.PollInterval = 10 * time.Millisecond })
	l := &recorder{}
	watch(t, f, l)
	waitFor(t, "version 1 serving", func() bool { return f.cat.Status().Ready })
	if n, rel := l.seen(); n == 0 || rel.Model != "m" || rel.Stable != "1" {
		t.Fatalf("the listener saw %d states, the last %+v", n, rel)
	}

	// Version 2's warm-up takes 2 s: the listener keeps hearing every poll
	// while version 1 keeps serving.
	slow := servingtest.Spec{Kind: "linear", N: 4, K: 2, W: make([]float32, 8), B: make([]float32, 2), Delay: 2 * time.Second}
	f.push("m", "2", slow.Bytes())
	f.setStable("m", "2")
	waitFor(t, "the listener told of stable 2", func() bool { _, rel := l.seen(); return rel.Stable == "2" })
	n, _ := l.seen()
	waitFor(t, "five more states", func() bool { m, _ := l.seen(); return m >= n+5 })
	if ms := f.modelStatus("m"); ms.Version != "1" || ms.Wanted != "2" {
		t.Fatalf("while 2 loads: serving %s, wanted %q; want 1 and 2", ms.Version, ms.Wanted)
	}
	waitFor(t, "version 2 serving", func() bool { return f.modelStatus("m").Version == "2" })
}

// TestWatchPollsAsOftenAsAListenerAsks: a listener that asks for states
// every millisecond (a canary's tick) gets them sooner than the poll
// interval would bring them.
func TestWatchPollsAsOftenAsAListenerAsks(t *testing.T) {
	f := newFixture(t, []string{"m/1"}, func(o *catalog.Options) { o.PollInterval = time.Hour })
	l := &recorder{every: time.Millisecond}
	watch(t, f, l)
	waitFor(t, "ten states within a poll interval of an hour", func() bool { n, _ := l.seen(); return n >= 10 })
}

// TestWatchRidesOutTheRegistry: with the registry down, what is loaded
// keeps serving and the listener hears nothing; once it is back, both
// catch up.
func TestWatchRidesOutTheRegistry(t *testing.T) {
	var src *flakySource
	f := newFixture(t, []string{"m/1"}, func(o *catalog.Options) {
		o.PollInterval = 10 * time.Millisecond
		src = &flakySource{Source: o.Source}
		o.Source = src
	})
	l := &recorder{}
	watch(t, f, l)
	waitFor(t, "version 1 serving", func() bool { return f.cat.Status().Ready })
	src.setDown(true)
	waitFor(t, "the registry error in the status", func() bool { return f.cat.Status().Error != "" })
	n, _ := l.seen()
	f.push("m", "2", modelBytes("2"))
	f.setStable("m", "2")
	if st := f.cat.Status(); !st.Ready || f.modelStatus("m").Version != "1" {
		t.Fatalf("with the registry down: %+v", st)
	}
	src.setDown(false)
	waitFor(t, "version 2 serving", func() bool { return f.modelStatus("m").Version == "2" })
	waitFor(t, "the listener told of stable 2", func() bool { m, rel := l.seen(); return m > n && rel.Stable == "2" })
	if f.cat.Status().Error != "" {
		t.Fatalf("the registry error outlived the outage: %q", f.cat.Status().Error)
	}
}
