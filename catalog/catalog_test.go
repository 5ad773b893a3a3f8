package catalog_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestFirstSyncLoadsStableVersions: before the first Sync nothing serves and
// Status is not ready; Sync loads each model's stable version on the CPU.
func TestFirstSyncLoadsStableVersions(t *testing.T) {
	tests := []struct {
		name   string
		models []string // Options.Models
		// what Acquire of a named model answers before the first Sync:
		// not ready (a 503 while starting, not a 404), whether the model
		// is configured or not yet read from the registry.
		wantBefore    error
		statusModels  []string // Status.Models before the first Sync
		defaultBefore string
	}{
		{"models from the registry", nil, catalog.ErrNotReady, nil, ""},
		{"configured models", []string{"a", "b"}, catalog.ErrNotReady, []string{"a", "b"}, ""},
		{"one configured model", []string{"a"}, catalog.ErrNotReady, []string{"a"}, "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, []string{"a/1", "a/2", "b/3", "b/4"}, func(o *catalog.Options) { o.Models = tc.models })

			st := f.cat.Status()
			if st.Ready {
				t.Errorf("Status before Sync is ready: %+v", st)
			}
			var names []string
			for _, ms := range st.Models {
				names = append(names, ms.Name)
				if ms.State != "loading" || ms.Version != "" {
					t.Errorf("before Sync, model %s is %q version %q; want loading, no version", ms.Name, ms.State, ms.Version)
				}
			}
			if !reflect.DeepEqual(names, tc.statusModels) {
				t.Errorf("Status models before Sync = %v, want %v", names, tc.statusModels)
			}
			if v := series(t, f.metrics, "modelgate_ready")[""]; v != 0 {
				t.Errorf("modelgate_ready before Sync = %v, want 0", v)
			}
			if _, err := f.cat.Acquire(t.Context(), "a", ""); !errors.Is(err, tc.wantBefore) {
				t.Errorf("Acquire(a) before Sync: %v, want %v", err, tc.wantBefore)
			}
			if _, err := f.cat.Acquire(t.Context(), "", ""); !errors.Is(err, catalog.ErrNotReady) {
				t.Errorf("Acquire(default) before Sync: %v, want ErrNotReady", err)
			}
			if got := f.cat.DefaultModel(); got != tc.defaultBefore {
				t.Errorf("DefaultModel before Sync = %q, want %q", got, tc.defaultBefore)
			}

			f.sync()

			served := tc.models
			if served == nil {
				served = []string{"a", "b"}
			}
			stable := map[string]string{"a": "1", "b": "3"}
			st = f.cat.Status()
			if !st.Ready || st.Error != "" {
				t.Errorf("Status after Sync: %+v, want ready without error", st)
			}
			if len(st.Models) != len(served) {
				t.Fatalf("Status after Sync has %d models, want %v: %+v", len(st.Models), served, st)
			}
			for i, name := range served {
				want := catalog.ModelStatus{Name: name, State: "ready", Version: stable[name], Provider: serving.ProviderCPU}
				if got := st.Models[i]; !reflect.DeepEqual(got, want) {
					t.Errorf("Status of %s = %+v, want %+v", name, got, want)
				}
				s := f.acquire(name, "", stable[name])
				if got, want := mustRun(t, s), reference(t, stable[name]); !got.equal(want) {
					t.Errorf("%s answers %+v, want version %s's %+v", name, got, stable[name], want)
				}
				if s.Provider() != serving.ProviderCPU {
					t.Errorf("%s session provider = %q, want cpu", name, s.Provider())
				}
				s.Release()
			}
			if got := f.cat.Names(); !reflect.DeepEqual(got, served) {
				t.Errorf("Names = %v, want %v", got, served)
			}
			if v := series(t, f.metrics, "modelgate_ready")[""]; v != 1 {
				t.Errorf("modelgate_ready after Sync = %v, want 1", v)
			}
			loaded := series(t, f.metrics, "modelgate_model_loaded")
			for _, name := range served {
				key := fmt.Sprintf("model=%s,provider=cpu,role=stable,version=%s", name, stable[name])
				if loaded[key] != 1 {
					t.Errorf("modelgate_model_loaded = %v, want %s = 1", loaded, key)
				}
			}
			if _, err := f.cat.Acquire(t.Context(), "ghost", ""); !errors.Is(err, catalog.ErrUnknownModel) {
				t.Errorf("Acquire(ghost): %v, want ErrUnknownModel", err)
			}
		})
	}
}

// TestEmptyRegistryIsNotReady: a catalog over an empty registry syncs
// without error but is not ready, and says why.
func TestEmptyRegistryIsNotReady(t *testing.T) {
	f := newFixture(t, nil)
	f.sync()
	st := f.cat.Status()
	if st.Ready || !strings.Contains(st.Error, "no models") || len(st.Models) != 0 {
		t.Errorf("Status = %+v, want not ready, no models, an error saying so", st)
	}
	if _, err := f.cat.Acquire(t.Context(), "", ""); !errors.Is(err, catalog.ErrModelRequired) {
		t.Errorf("Acquire(default) = %v, want ErrModelRequired", err)
	}
}

// TestSwapKeepsInFlightSessions: a new stable version is swapped in by Sync
// and answers differently; a session acquired before the swap keeps
// running and is destroyed only when it is released.
func TestSwapKeepsInFlightSessions(t *testing.T) {
	f := newFixture(t, []string{"m/1", "m/2"})
	f.sync()

	old := f.acquire("m", "", "1")
	before := mustRun(t, old)
	if want := reference(t, "1"); !before.equal(want) {
		t.Fatalf("version 1 answers %+v, want %+v", before, want)
	}

	f.setStable("m", "2")
	f.sync()

	s := f.acquire("m", "", "2")
	after := mustRun(t, s)
	s.Release()
	if after.equal(before) {
		t.Errorf("versions 1 and 2 give the same answer %+v: the test cannot tell them apart", after)
	}
	if want := reference(t, "2"); !after.equal(want) {
		t.Errorf("after the swap the model answers %+v, want version 2's %+v", after, want)
	}
	want := catalog.ModelStatus{Name: "m", State: "ready", Version: "2", Provider: serving.ProviderCPU}
	if got := f.modelStatus("m"); !reflect.DeepEqual(got, want) {
		t.Errorf("Status = %+v, want %+v", got, want)
	}

	// The session taken before the swap still works and is not destroyed.
	if isDone(old) {
		t.Fatal("the retired session was destroyed while a request held it")
	}
	if got := mustRun(t, old); !got.equal(before) {
		t.Errorf("the retired session answers %+v after the swap, want %+v", got, before)
	}
	if old.Acquire() {
		old.Release()
		t.Error("the retired session accepts new references")
	}
	old.Release()
	if !isDone(old) {
		t.Error("the retired session was not destroyed when its last request released it")
	}
	loaded := series(t, f.metrics, "modelgate_model_loaded")
	if want := map[string]float64{"model=m,provider=cpu,role=stable,version=2": 1}; !reflect.DeepEqual(loaded, want) {
		t.Errorf("modelgate_model_loaded = %v, want %v", loaded, want)
	}
}

// TestFailedSwapKeepsServing: a stable version that cannot be fetched,
// verified or loaded never replaces the serving one; Status and the
// failure metric say what went wrong.
func TestFailedSwapKeepsServing(t *testing.T) {
	valid := modelBytes("2")
	tests := []struct {
		name string
		// corrupt makes version 2 of model m bad.
		corrupt func(f *fixture)
		reason  string // modelgate_model_load_failures_total's reason label
		errText string // in Status's error
	}{
		{
			"other valid ONNX bytes on disk",
			func(f *fixture) {
				f.push("m", "2", valid)
				f.writeModel("m", "2", modelBytes("5"))
			},
			"digest", "digest mismatch",
		},
		{
			"garbage on disk",
			func(f *fixture) {
				f.push("m", "2", valid)
				f.writeModel("m", "2", []byte("this is not an ONNX model"))
			},
			"digest", "digest mismatch",
		},
		{
			"truncated file on disk",
			func(f *fixture) {
				f.push("m", "2", valid)
				f.writeModel("m", "2", valid[:len(valid)/2])
			},
			"digest", "digest mismatch",
		},
		{
			"file missing on disk",
			func(f *fixture) {
				f.push("m", "2", valid)
				if err := os.Remove(f.modelFile("m", "2")); err != nil {
					f.t.Fatal(err)
				}
			},
			"fetch", "not found",
		},
		// The registry does not parse ONNX, so bytes that are not a model
		// can be pushed with a manifest whose sha256 matches them: they
		// pass verification and fail in ONNX Runtime.
		{
			"garbage pushed with a matching digest",
			func(f *fixture) { f.push("m", "2", []byte("this is not an ONNX model")) },
			"invalid_model", "invalid model",
		},
		{
			"truncated model pushed with a matching digest",
			func(f *fixture) { f.push("m", "2", valid[:len(valid)/2]) },
			"invalid_model", "invalid model",
		},
		{
			"model that loads but cannot run",
			func(f *fixture) { f.push("m", "2", cannotRun()) },
			"warmup", "warm-up",
		},
		{
			"model with an unsupported tensor type",
			// COMPLEX64 is an ONNX element type outside the protocol's (every
			// protocol type is served), refused as ONNX Runtime's loader does.
			func(f *fixture) { f.push("m", "2", servingtest.Identity(wire.DType("COMPLEX64"), -1, 2)) },
			"invalid_model", "unsupported tensor type",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, []string{"m/1"})
			f.sync()
			v1 := reference(t, "1")
			tc.corrupt(f)
			f.setStable("m", "2")

			err := f.cat.Sync(t.Context())
			if err == nil {
				t.Fatal("Sync to a bad stable version succeeded")
			}
			s := f.acquire("m", "", "1")
			if got := mustRun(t, s); !got.equal(v1) {
				t.Errorf("after the failed swap the model answers %+v, want version 1's %+v", got, v1)
			}
			s.Release()

			st := f.cat.Status()
			if !st.Ready {
				t.Errorf("Status is not ready though version 1 serves: %+v", st)
			}
			ms := f.modelStatus("m")
			if ms.State != "ready" || ms.Version != "1" || ms.Wanted != "2" {
				t.Errorf("Status = %+v, want ready on version 1, wanted version 2", ms)
			}
			if !strings.Contains(ms.Error, tc.errText) {
				t.Errorf("Status error %q does not say %q", ms.Error, tc.errText)
			}
			if !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("Sync error %q does not say %q", err, tc.errText)
			}

			failures := series(t, f.metrics, "modelgate_model_load_failures_total")
			if want := map[string]float64{"model=m,reason=" + tc.reason: 1}; !reflect.DeepEqual(failures, want) {
				t.Errorf("modelgate_model_load_failures_total = %v, want %v", failures, want)
			}
			if n, err := testutil.GatherAndCount(f.metrics, "modelgate_model_loads_total"); err != nil || n != 2 {
				t.Errorf("modelgate_model_loads_total has %d series (%v), want 2 (1 ok, 2 error)", n, err)
			}
			loads := series(t, f.metrics, "modelgate_model_loads_total")
			if loads["model=m,result=error,version=2"] != 1 || loads["model=m,result=ok,version=1"] != 1 {
				t.Errorf("modelgate_model_loads_total = %v, want one ok load of 1 and one failed load of 2", loads)
			}

			// A request pinned to the bad version is refused too.
			if _, err := f.cat.Acquire(t.Context(), "m", "2"); !errors.Is(err, catalog.ErrNotReady) {
				t.Errorf("Acquire(m, 2) = %v, want ErrNotReady", err)
			}

			// Rolling the release back to the serving version clears the
			// failure: Status no longer wants the bad version.
			f.setStable("m", "1")
			f.sync()
			want := catalog.ModelStatus{Name: "m", State: "ready", Version: "1", Provider: serving.ProviderCPU}
			if got := f.modelStatus("m"); !reflect.DeepEqual(got, want) {
				t.Errorf("Status after rolling back = %+v, want %+v", got, want)
			}

			// Failing again, then moving on to a good version, clears the
			// failure too.
			f.setStable("m", "2")
			if err := f.cat.Sync(t.Context()); err == nil {
				t.Fatal("second Sync to the bad version succeeded")
			}
			f.push("m", "3", modelBytes("3"))
			f.setStable("m", "3")
			f.sync()
			want = catalog.ModelStatus{Name: "m", State: "ready", Version: "3", Provider: serving.ProviderCPU}
			if got := f.modelStatus("m"); !reflect.DeepEqual(got, want) {
				t.Errorf("Status after moving on to version 3 = %+v, want %+v", got, want)
			}
			f.acquire("m", "", "3").Release()
		})
	}
}

// cannotRun is a model that loads but whose every run fails, as ONNX
// Runtime's does for a model that reshapes a [-1, 4] input to [3, 3].
func cannotRun() []byte {
	return servingtest.Spec{Kind: "linear", N: 4, K: 2, W: make([]float32, 8), B: make([]float32, 2),
		Fail: "Reshape: the input tensor cannot be reshaped to the requested shape"}.Bytes()
}

// writeModel replaces a version's stored model bytes behind the registry's
// back, as a damaged disk or a careless hand would.
func (f *fixture) writeModel(name, version string, data []byte) {
	f.t.Helper()
	if err := os.WriteFile(f.modelFile(name, version), data, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// TestFirstLoadFailure: a model whose only stable version is bad is
// "failed" and the catalog is not ready.
func TestFirstLoadFailure(t *testing.T) {
	f := newFixture(t, nil)
	f.push("m", "1", modelBytes("1"))
	f.writeModel("m", "1", []byte("garbage"))
	if err := f.cat.Sync(t.Context()); !errors.Is(err, registry.ErrDigestMismatch) {
		t.Fatalf("Sync = %v, want ErrDigestMismatch", err)
	}
	st := f.cat.Status()
	if st.Ready || len(st.Models) != 1 {
		t.Fatalf("Status = %+v, want not ready with one model", st)
	}
	if ms := st.Models[0]; ms.State != "failed" || ms.Wanted != "1" || ms.Version != "" || !strings.Contains(ms.Error, "digest mismatch") {
		t.Errorf("Status = %+v, want failed, wanted version 1, a digest error", ms)
	}
	if _, err := f.cat.Acquire(t.Context(), "m", ""); !errors.Is(err, catalog.ErrNotReady) || !strings.Contains(err.Error(), "digest") {
		t.Errorf("Acquire = %v, want ErrNotReady naming the digest", err)
	}
}

// TestPinnedVersions: a pinned request loads its version on demand next to
// stable; unknown and malformed versions are refused; the least recently
// used pinned version goes first when the cap is reached.
func TestPinnedVersions(t *testing.T) {
	f := newFixture(t, []string{"m/1", "m/2", "m/3", "m/4"}, func(o *catalog.Options) { o.MaxPinned = 2 })
	f.sync()

	s2 := f.acquire("m", "2", "2")
	if got, want := mustRun(t, s2), reference(t, "2"); !got.equal(want) {
		t.Errorf("pinned version 2 answers %+v, want %+v", got, want)
	}
	s1 := f.acquire("m", "", "1")
	s1.Release()
	if ms := f.modelStatus("m"); ms.Version != "1" || !reflect.DeepEqual(ms.Pinned, []string{"2"}) {
		t.Errorf("Status = %+v, want stable 1 and pinned [2]", ms)
	}
	if s := f.acquire("m", "1", "1"); s != s1 {
		t.Error("pinning the stable version loaded another session")
	} else {
		s.Release()
	}

	refused := []struct{ name, version string }{
		{"not in the registry", "9"},
		{"path traversal", "../x"},
		{"dot dot", ".."},
		{"slash", "a/b"},
		{"upper case", "V2"},
		{"leading dash", "-1"},
		{"too long", strings.Repeat("1", 64)},
	}
	for _, tc := range refused {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			if _, err := f.cat.Acquire(t.Context(), "m", tc.version); !errors.Is(err, catalog.ErrUnknownVersion) {
				t.Errorf("Acquire(m, %q) = %v, want ErrUnknownVersion", tc.version, err)
			}
		})
	}
	if n := len(series(t, f.metrics, "modelgate_model_load_failures_total")); n != 0 {
		t.Errorf("refused versions were loaded: %d failure series", n)
	}

	// 2 is held; 3 fills the cap; 4 goes over it, and 2, used before 3
	// and 4, is the least recently used.
	f.acquire("m", "3", "3").Release()
	if isDone(s2) {
		t.Error("pinned version 2 was unloaded below the cap")
	}
	f.acquire("m", "4", "4").Release()
	if ms := f.modelStatus("m"); !reflect.DeepEqual(ms.Pinned, []string{"3", "4"}) {
		t.Errorf("pinned = %v, want [3 4] (2 least recently used)", ms.Pinned)
	}
	if isDone(s2) {
		t.Error("the evicted version 2 was destroyed while a request held it")
	} else if got, want := mustRun(t, s2), reference(t, "2"); !got.equal(want) {
		t.Errorf("evicted but held version 2 answers %+v, want %+v", got, want)
	}
	s2.Release()
	if !isDone(s2) {
		t.Error("the evicted version 2 was not destroyed when released")
	}

	// Use 3, so that 4 is now least recently used; pinning 2 again
	// reloads it and evicts 4, not 3.
	f.acquire("m", "3", "3").Release()
	again := f.acquire("m", "2", "2")
	if again == s2 {
		t.Error("version 2 came back as the destroyed session")
	}
	again.Release()
	if ms := f.modelStatus("m"); !reflect.DeepEqual(ms.Pinned, []string{"2", "3"}) || ms.Version != "1" {
		t.Errorf("Status = %+v, want stable 1, pinned [2 3] (4 least recently used)", ms)
	}
	loads := series(t, f.metrics, "modelgate_model_loads_total")
	want := map[string]float64{
		"model=m,result=ok,version=1": 1,
		"model=m,result=ok,version=2": 2,
		"model=m,result=ok,version=3": 1,
		"model=m,result=ok,version=4": 1,
	}
	if !reflect.DeepEqual(loads, want) {
		t.Errorf("modelgate_model_loads_total = %v, want %v", loads, want)
	}
	loaded := series(t, f.metrics, "modelgate_model_loaded")
	wantLoaded := map[string]float64{
		"model=m,provider=cpu,role=stable,version=1": 1,
		"model=m,provider=cpu,role=pinned,version=2": 1,
		"model=m,provider=cpu,role=pinned,version=3": 1,
	}
	if !reflect.DeepEqual(loaded, wantLoaded) {
		t.Errorf("modelgate_model_loaded = %v, want %v", loaded, wantLoaded)
	}
}

// TestPinnedDisabled: with MaxPinned < 0 only loaded versions serve.
func TestPinnedDisabled(t *testing.T) {
	f := newFixture(t, []string{"m/1", "m/2"}, func(o *catalog.Options) { o.MaxPinned = -1 })
	f.sync()
	tests := []struct {
		name, version string
		want          error // nil: served
	}{
		{"stable version", "1", nil},
		{"other version", "2", catalog.ErrNotReady},
		{"missing version", "9", catalog.ErrUnknownVersion},
		{"malformed version", "../x", catalog.ErrUnknownVersion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := f.cat.Acquire(t.Context(), "m", tc.version)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Acquire(m, %s) = %v", tc.version, err)
				}
				s.Release()
				return
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Acquire(m, %s) = %v, want %v", tc.version, err, tc.want)
			}
		})
	}
	if ms := f.modelStatus("m"); len(ms.Pinned) != 0 {
		t.Errorf("pinned = %v, want none", ms.Pinned)
	}
	if loads := series(t, f.metrics, "modelgate_model_loads_total"); len(loads) != 1 {
		t.Errorf("modelgate_model_loads_total = %v, want only version 1's load", loads)
	}
}

// TestPromotePinnedVersion: making a pinned version stable promotes its
// session as it is, without loading it again.
func TestPromotePinnedVersion(t *testing.T) {
	f := newFixture(t, []string{"m/1", "m/2"})
	f.sync()
	s1 := f.acquire("m", "", "1")
	s1.Release()
	pinned := f.acquire("m", "2", "2")
	pinned.Release()

	f.setStable("m", "2")
	f.sync()

	s := f.acquire("m", "", "2")
	defer s.Release()
	if s != pinned {
		t.Error("the new stable session is not the pinned one: it was loaded again")
	}
	if got, want := mustRun(t, s), reference(t, "2"); !got.equal(want) {
		t.Errorf("promoted version answers %+v, want %+v", got, want)
	}
	loads := series(t, f.metrics, "modelgate_model_loads_total")
	if want := map[string]float64{"model=m,result=ok,version=1": 1, "model=m,result=ok,version=2": 1}; !reflect.DeepEqual(loads, want) {
		t.Errorf("modelgate_model_loads_total = %v, want %v", loads, want)
	}
	want := catalog.ModelStatus{Name: "m", State: "ready", Version: "2", Provider: serving.ProviderCPU}
	if got := f.modelStatus("m"); !reflect.DeepEqual(got, want) {
		t.Errorf("Status = %+v, want %+v (2 no longer pinned)", got, want)
	}
	loaded := series(t, f.metrics, "modelgate_model_loaded")
	if want := map[string]float64{"model=m,provider=cpu,role=stable,version=2": 1}; !reflect.DeepEqual(loaded, want) {
		t.Errorf("modelgate_model_loaded = %v, want %v", loaded, want)
	}
	if !isDone(s1) {
		t.Error("the old stable session was not unloaded")
	}
}

// TestConcurrentRequestsDuringSwaps: requests run while the stable version
// flips back and forth; every one is answered by version 1 or 2 with that
// version's answer, and no session outlives Close.
func TestConcurrentRequestsDuringSwaps(t *testing.T) {
	const workers, flips = 16, 50
	f := newFixture(t, []string{"m/1", "m/2"})
	f.sync()
	want := map[string]answer{"1": reference(t, "1"), "2": reference(t, "2")}
	ctx := t.Context()

	var (
		mu       sync.Mutex
		sessions = map[*serving.Session]bool{}
		errs     []error
		answered [3]atomic.Int64 // by version
		stop     = make(chan struct{})
		running  = make(chan struct{}, 2)
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := f.cat.Acquire(ctx, "m", "")
				if err != nil {
					fail(fmt.Errorf("Acquire: %w", err))
					return
				}
				mu.Lock()
				sessions[s] = true
				mu.Unlock()
				// At most a few requests run the model at once, so that the
				// swaps are not starved of the CPU; the others only take
				// and give back a session, which keeps many goroutines in
				// Acquire while a swap closes the session they found.
				select {
				case running <- struct{}{}:
				default:
					if v := s.Version(); v != "1" && v != "2" {
						fail(fmt.Errorf("acquired version %q", v))
					}
					s.Release()
					runtime.Gosched()
					continue
				}
				got, err := run(ctx, s)
				<-running
				s.Release()
				switch v := s.Version(); {
				case err != nil:
					fail(fmt.Errorf("run version %s: %w", v, err))
					return
				case v != "1" && v != "2":
					fail(fmt.Errorf("answered by version %q", v))
					return
				case !got.equal(want[v]):
					fail(fmt.Errorf("version %s answered %+v, want %+v", v, got, want[v]))
					return
				default:
					if v == "1" {
						answered[1].Add(1)
					} else {
						answered[2].Add(1)
					}
				}
			}
		})
	}

	// Flip the stable version; after each flip, wait until some request
	// has been answered by the new version, so that every flip happens
	// under traffic.
	deadline := time.Now().Add(20 * time.Second)
flipping:
	for i := range flips {
		v, n := "2", 2
		if i%2 == 1 {
			v, n = "1", 1
		}
		if _, err := f.reg.SetStable(ctx, "m", v, false, "flip"); err != nil {
			fail(err)
			break
		}
		if err := f.cat.Sync(ctx); err != nil {
			fail(fmt.Errorf("sync to %s: %w", v, err))
			break
		}
		for before := answered[n].Load(); answered[n].Load() == before; {
			mu.Lock()
			failed := len(errs) > 0
			mu.Unlock()
			if failed || time.Now().After(deadline) {
				fail(fmt.Errorf("flip %d: no request answered by version %s", i, v))
				break flipping
			}
			runtime.Gosched()
		}
	}
	close(stop)
	wg.Wait()

	for _, err := range errs {
		t.Error(err)
	}
	if answered[1].Load() == 0 || answered[2].Load() == 0 {
		t.Errorf("answers by version 1: %d, by version 2: %d; want both", answered[1].Load(), answered[2].Load())
	}
	// 1 initial load + one load per flip: retired sessions are not reused.
	if n := len(sessions); n < 2 || n > flips+1 {
		t.Errorf("requests saw %d sessions, want 2 to %d", n, flips+1)
	}

	f.cat.Close()
	for s := range sessions {
		if !isDone(s) {
			t.Errorf("session of version %s (in flight: %d) survived Close", s.Version(), s.InFlight())
		}
	}
	t.Logf("%d sessions, %d answers by version 1, %d by version 2", len(sessions), answered[1].Load(), answered[2].Load())
}

// TestCloseUnloadsEverything: Close destroys stable and pinned sessions of
// every model, a held one when its request releases it.
func TestCloseUnloadsEverything(t *testing.T) {
	f := newFixture(t, []string{"a/1", "a/2", "b/3", "b/4"})
	f.sync()
	held := f.acquire("a", "", "1")
	var all []*serving.Session
	for _, mv := range [][3]string{{"a", "2", "2"}, {"b", "", "3"}, {"b", "4", "4"}} {
		s := f.acquire(mv[0], mv[1], mv[2])
		s.Release()
		all = append(all, s)
	}
	if ms := f.modelStatus("b"); !reflect.DeepEqual(ms.Pinned, []string{"4"}) {
		t.Fatalf("b pinned = %v, want [4]", ms.Pinned)
	}

	closed := make(chan struct{})
	go func() {
		f.cat.Close()
		close(closed)
	}()
	// Close takes the sessions out before it closes them; a held session
	// is not destroyed under its request.
	for _, s := range all {
		waitDone(t, s)
	}
	if isDone(held) {
		t.Fatal("Close destroyed a session a request still held")
	}
	if _, err := run(t.Context(), held); err != nil {
		t.Errorf("the held session fails after Close began: %v", err)
	}
	held.Release()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return after the last session was released")
	}
	if !isDone(held) {
		t.Error("the held session survived Close and its release")
	}
	for _, name := range []string{"a", "b"} {
		if ms := f.modelStatus(name); ms.State == "ready" || len(ms.Pinned) != 0 {
			t.Errorf("after Close, %s is %+v", name, ms)
		}
	}
}

// TestDefaultModel: requests that name no model go to the configured
// default, else to the only model, else are refused.
func TestDefaultModel(t *testing.T) {
	tests := []struct {
		name         string
		versions     []string
		defaultModel string
		want         string // model that answers; "" when refused
		wantErr      error
	}{
		{"one model", []string{"a/1"}, "", "a", nil},
		{"two models, no default", []string{"a/1", "b/2"}, "", "", catalog.ErrModelRequired},
		{"two models, default b", []string{"a/1", "b/2"}, "b", "b", nil},
		{"default not served", []string{"a/1"}, "ghost", "", catalog.ErrUnknownModel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.versions, func(o *catalog.Options) { o.DefaultModel = tc.defaultModel })
			f.sync()
			wantDefault := tc.want
			if tc.defaultModel != "" {
				wantDefault = tc.defaultModel
			}
			if got := f.cat.DefaultModel(); got != wantDefault {
				t.Errorf("DefaultModel = %q, want %q", got, wantDefault)
			}
			s, err := f.cat.Acquire(t.Context(), "", "")
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("Acquire(\"\") = %v, want %v", err, tc.wantErr)
				}
				if err == nil {
					s.Release()
				}
				return
			}
			if err != nil {
				t.Fatalf("Acquire(\"\") = %v", err)
			}
			defer s.Release()
			if s.Name() != tc.want {
				t.Errorf("Acquire(\"\") served model %q, want %q", s.Name(), tc.want)
			}
		})
	}
}

// TestRegistryErrorThenRecovery: a release state that cannot be read keeps
// the loaded version serving and shows in Status until the registry
// answers again.
func TestRegistryErrorThenRecovery(t *testing.T) {
	f := newFixture(t, []string{"m/1"})
	f.sync()
	release := filepath.Join(f.root, "models", "m", "release.json")
	good, err := os.ReadFile(release)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(release, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.cat.Sync(t.Context()); err == nil || !strings.Contains(err.Error(), "release state") {
		t.Fatalf("Sync over a broken release state = %v, want an error about it", err)
	}
	if ms := f.modelStatus("m"); ms.State != "ready" || ms.Version != "1" || !strings.Contains(ms.Error, "release state") {
		t.Errorf("Status = %+v, want ready on 1 with the release-state error", ms)
	}
	f.acquire("m", "", "1").Release()

	if err := os.WriteFile(release, good, 0o644); err != nil {
		t.Fatal(err)
	}
	f.sync()
	want := catalog.ModelStatus{Name: "m", State: "ready", Version: "1", Provider: serving.ProviderCPU}
	if got := f.modelStatus("m"); !reflect.DeepEqual(got, want) {
		t.Errorf("Status after the registry recovered = %+v, want %+v", got, want)
	}
}
