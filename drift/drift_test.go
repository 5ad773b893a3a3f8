package drift

import (
	"context"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/stats"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// profileCSV: feature a is 1..10 (nine decile edges), b is 0 or 1 (one
// edge at 0), then the label.
const profileCSV = "a,b,label\n1,0,0\n2,0,1\n3,0,0\n4,0,1\n5,0,0\n6,1,1\n7,1,0\n8,1,1\n9,1,0\n10,1,1\n"

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newRegistry is a real local registry holding versions of model "m"; the
// versions in profiled get the profile of profileCSV.
func newRegistry(t *testing.T, versions []string, profiled ...string) *registry.Registry {
	t.Helper()
	b, err := registry.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := registry.New(b, registry.Options{})
	spec := []wire.TensorSpec{{Name: "x", DType: wire.FP32, Shape: []int64{-1, 2}}}
	for _, v := range versions {
		if _, _, err := store.Push(context.Background(), r, registry.PushRequest{Name: "m", Version: v, Model: []byte("model " + v), Inputs: spec, Outputs: spec}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range profiled {
		putProfile(t, r, v)
	}
	return r
}

func putProfile(t *testing.T, r *registry.Registry, version string) {
	t.Helper()
	p, err := stats.ComputeProfile([]byte(profileCSV), stats.ProfileOptions{Features: 2})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := p.JSON()
	if err := r.PutProfile(context.Background(), "m", version, js); err != nil {
		t.Fatal(err)
	}
}

func rows(vals ...float32) []wire.Tensor {
	return []wire.Tensor{{Name: "x", Shape: []int64{int64(len(vals) / 2), 2}, Data: vals}}
}

func versionStats(t *testing.T, tr *Tracker, version string) VersionStats {
	t.Helper()
	for _, v := range tr.Stats("m").Versions {
		if v.Version == version {
			return v
		}
	}
	t.Fatalf("version %s is not tracked: %+v", version, tr.Stats("m"))
	return VersionStats{}
}

func TestObserveCountsOnProfileBins(t *testing.T) {
	reg := newRegistry(t, []string{"1", "2"}, "1")
	metrics := prometheus.NewRegistry()
	tr := New(Options{Source: reg, Registerer: metrics})
	defer tr.Close()
	ctx := context.Background()
	if err := tr.Prepare(ctx, "m", "1"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Prepare(ctx, "m", "2"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("version without a profile: %v", err)
	}
	// a: 1 → bin 0, 5.5 → bin 4 (edges 1.9, 2.8, ..., 5.5, ..., 9.1; a bin
	// holds its upper edge), 0 → bin 0 and below, 11 → bin 9 and above,
	// NaN → missing. b (edges 0, 0.5, 1): 0 → bin 0, 1 → bin 2.
	tr.Observe("m", "1", rows(1, 0, 5.5, 1, 0, 1, 11, 0, float32(math.NaN()), 1))
	tr.Observe("m", "2", rows(1, 0))                                                      // no profile: not counted
	tr.Observe("m", "1", []wire.Tensor{{Shape: []int64{1, 3}, Data: []float32{1, 2, 3}}}) // other width: ignored
	tr.Observe("m", "1", []wire.Tensor{{Shape: []int64{1, 2}, Data: []float64{5.5, 0}}})  // other types count too

	v := versionStats(t, tr, "1")
	if !v.Profile || v.Rows != 6 || v.RowsTotal != 6 || len(v.Features) != 2 {
		t.Fatalf("version 1: %+v", v)
	}
	a, b := v.Features[0], v.Features[1]
	if a.Name != "a" || !slices.Equal(a.Counts, []uint64{2, 0, 0, 0, 2, 0, 0, 0, 0, 1}) || a.Missing != 1 || a.Below != 1 || a.Above != 1 {
		t.Errorf("a: %+v", a)
	}
	if !slices.Equal(b.Counts, []uint64{3, 0, 3, 0}) || b.Missing != 0 {
		t.Errorf("b: %+v", b)
	}
	if v2 := versionStats(t, tr, "2"); v2.Profile || !strings.Contains(v2.Reason, "no data profile") || v2.Rows != 0 {
		t.Errorf("version 2: %+v", v2)
	}
	if st := tr.Stats("other"); len(st.Versions) != 0 {
		t.Errorf("another model: %+v", st)
	}

	// The same figures as Prometheus counters.
	got := gather(t, metrics)
	for series, want := range map[string]float64{
		`modelgate_drift_bin_total{bin="4",feature="a",model="m",version="1"}`:               2,
		`modelgate_drift_bin_total{bin="2",feature="b",model="m",version="1"}`:               3,
		`modelgate_drift_missing_total{feature="a",model="m",version="1"}`:                   1,
		`modelgate_drift_out_of_range_total{feature="a",model="m",side="above",version="1"}`: 1,
		`modelgate_drift_rows_total{model="m",version="1"}`:                                  6,
		`modelgate_drift_profile_loaded{model="m",version="1"}`:                              1,
		`modelgate_drift_profile_loaded{model="m",version="2"}`:                              0,
		`modelgate_drift_sample_rate`:                                                        1,
		`modelgate_drift_reference_ratio{bin="0",feature="a",model="m",version="1"}`:         0.1, // (1 + 0.5) / (10 + 0.5 × 10)
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	// Bounded series: bins, missing and two sides per feature, for the one
	// profiled version.
	n := 0
	for s := range got {
		if strings.HasPrefix(s, "modelgate_drift_bin_total{") {
			n++
		}
	}
	if n != 10+4 {
		t.Errorf("%d bin series, want 14", n)
	}
}

// gather returns every sample as "name{labels}" → value.
func gather(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name := mf.GetName()
			if len(ls) > 0 {
				name += "{" + strings.Join(ls, ",") + "}"
			}
			out[name] = value(m)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return math.NaN()
}

func TestRollingWindow(t *testing.T) {
	reg := newRegistry(t, []string{"1"}, "1")
	clk := &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	tr := New(Options{Source: reg, Window: time.Hour, Buckets: 4, Now: clk.Now})
	defer tr.Close()
	if err := tr.Prepare(context.Background(), "m", "1"); err != nil {
		t.Fatal(err)
	}
	tr.Observe("m", "1", rows(1, 0, 1, 0, 1, 0)) // three rows at 00:00
	clk.Add(50 * time.Minute)
	tr.Observe("m", "1", rows(10, 1)) // one at 00:50
	if v := versionStats(t, tr, "1"); v.Rows != 4 || !v.Start.Equal(clk.t.Add(-50*time.Minute)) {
		t.Fatalf("within the first hour: %+v", v)
	}
	clk.Add(30 * time.Minute) // 01:20: the first three rows have left the window
	tr.Observe("m", "1", rows(10, 1))
	v := versionStats(t, tr, "1")
	if v.Rows != 2 || v.RowsTotal != 5 || v.Features[0].Counts[0] != 0 || v.Features[0].Counts[9] != 2 {
		t.Fatalf("at 01:20: %+v", v)
	}
	// The snapshot taken at 00:50 knows the counters from 00:15 on: the
	// window starts exactly an hour ago.
	if got := clk.t.Sub(v.Start); got != time.Hour {
		t.Errorf("window starts %s before now, want an hour", got)
	}
	// Hours without traffic, then one row: the window holds that row only.
	clk.Add(5 * time.Hour)
	tr.Observe("m", "1", rows(5, 0))
	if v := versionStats(t, tr, "1"); v.Rows != 1 || v.RowsTotal != 6 {
		t.Fatalf("after a quiet spell: %+v", v)
	}
}

// TestBoundedMemory runs a long, busy life through the tracker: many
// windows, many versions, many rows. What it holds stays within a bound
// fixed by the options and the profiles, and a counted request allocates
// nothing.
func TestBoundedMemory(t *testing.T) {
	var versions []string
	for i := range 40 {
		versions = append(versions, "v"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	reg := newRegistry(t, versions, versions...)
	clk := &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	const maxVersions, buckets = 4, 6
	tr := New(Options{Source: reg, Window: time.Hour, Buckets: buckets, MaxVersions: maxVersions, Now: clk.Now})
	defer tr.Close()
	ctx := context.Background()
	batch := rows(1, 0, 2, 1, 3, 0, 4, 1, 5, 0, 6, 1, 7, 0, 8, 1)
	perVersion := (10 + 3 + 4 + 3 + 1) * (buckets + 2) // counters and rows, plus buckets+1 copies
	var rowsSeen uint64
	for i, v := range versions {
		if err := tr.Prepare(ctx, "m", v); err != nil {
			t.Fatal(err)
		}
		for range 500 {
			clk.Add(time.Minute)
			tr.Observe("m", v, batch)
			rowsSeen += 8
		}
		if n := len(tr.Stats("m").Versions); n > maxVersions {
			t.Fatalf("after %d versions, %d are tracked (max %d)", i+1, n, maxVersions)
		}
		if fp := tr.Footprint(); fp > maxVersions*perVersion {
			t.Fatalf("after %d versions and %d rows: %d values held, bound %d", i+1, rowsSeen, fp, maxVersions*perVersion)
		}
	}
	t.Logf("%d rows over %d versions and %d hours: %d values held (bound %d)", rowsSeen, len(versions), 500*len(versions)/60, tr.Footprint(), maxVersions*perVersion)
	last := versions[len(versions)-1]
	if allocs := testing.AllocsPerRun(1000, func() { tr.Observe("m", last, batch) }); allocs != 0 {
		t.Errorf("Observe allocates %v times per request", allocs)
	}
	sampled := New(Options{Source: reg, SampleRate: 0.01})
	defer sampled.Close()
	if allocs := testing.AllocsPerRun(1000, func() { sampled.Observe("m", last, batch) }); allocs != 0 {
		t.Errorf("a sampling Observe allocates %v times per request", allocs)
	}
}

func TestSampleRate(t *testing.T) {
	reg := newRegistry(t, []string{"1"}, "1")
	tr := New(Options{Source: reg, SampleRate: 0.1})
	defer tr.Close()
	if err := tr.Prepare(context.Background(), "m", "1"); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	for range n {
		tr.Observe("m", "1", rows(1, 0))
	}
	// Binomial(20000, 0.1): mean 2000, sd 42; ±8 sd.
	if v := versionStats(t, tr, "1"); v.Rows < 1660 || v.Rows > 2340 {
		t.Fatalf("%d of %d rows counted at a 0.1 sample rate", v.Rows, n)
	}
}

// A version without a profile is asked for again after the retry
// interval: profiling it later takes effect without a restart.
func TestProfileAddedLater(t *testing.T) {
	reg := newRegistry(t, []string{"1"})
	clk := &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	tr := New(Options{Source: reg, RetryInterval: time.Minute, Now: clk.Now})
	defer tr.Close()
	if err := tr.Prepare(context.Background(), "m", "1"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("no profile yet: %v", err)
	}
	putProfile(t, reg, "1")
	tr.Observe("m", "1", rows(1, 0)) // before the retry interval: not asked again
	if v := versionStats(t, tr, "1"); v.Profile {
		t.Fatalf("profile read before the retry interval: %+v", v)
	}
	clk.Add(2 * time.Minute)
	tr.Observe("m", "1", rows(1, 0)) // starts the read in the background
	waitProfile(t, tr, "1", "the profile added later was not read")
	tr.Observe("m", "1", rows(1, 0))
	if v := versionStats(t, tr, "1"); v.Rows != 1 {
		t.Fatalf("after the profile arrived: %+v", v)
	}
}

// waitProfile polls until version's profile has been read (in the
// background), failing with msg after 10 s.
func waitProfile(t *testing.T, tr *Tracker, version, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !versionStats(t, tr, version).Profile {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
}

// Observations of a new version start its profile read in the background
// and are not counted until it is ready; Close waits for the read.
func TestObserveStartsTracking(t *testing.T) {
	reg := newRegistry(t, []string{"1"}, "1")
	tr := New(Options{Source: reg})
	tr.Observe("m", "1", rows(1, 0))
	waitProfile(t, tr, "1", "the profile was not read")
	tr.Observe("m", "1", rows(1, 0))
	if v := versionStats(t, tr, "1"); v.Rows != 1 {
		t.Fatalf("%+v", v)
	}
	tr.Close()
}

// BenchmarkObserve is the tracker's share of a request's time: one counted
// request of 1 or 32 rows of the demo model's 30 features, and one that
// the sampling skips.
//
//	go test ./drift -run '^$' -bench Observe -benchmem
func BenchmarkObserve(b *testing.B) {
	train, err := os.ReadFile("../examples/breast-cancer/train.csv")
	if err != nil {
		b.Fatal(err)
	}
	p, err := stats.ComputeProfile(train, stats.ProfileOptions{Features: 30})
	if err != nil {
		b.Fatal(err)
	}
	js, _ := p.JSON()
	bk, err := registry.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.New(bk, registry.Options{})
	spec := []wire.TensorSpec{{Name: "features", DType: wire.FP32, Shape: []int64{-1, 30}}}
	ctx := context.Background()
	if _, _, err := store.Push(ctx, reg, registry.PushRequest{Name: "m", Version: "1", Model: []byte("m"), Inputs: spec, Outputs: spec}, time.Now()); err != nil {
		b.Fatal(err)
	}
	if err := reg.PutProfile(ctx, "m", "1", js); err != nil {
		b.Fatal(err)
	}
	row := make([]float32, 30)
	for j, f := range p.Features {
		row[j] = float32(f.Mean)
	}
	for _, c := range []struct {
		name string
		rate float64
		rows int
	}{{"rows=1", 1, 1}, {"rows=32", 1, 32}, {"rows=32/rate=0.1", 0.1, 32}} {
		b.Run(c.name, func(b *testing.B) {
			tr := New(Options{Source: reg, SampleRate: c.rate})
			defer tr.Close()
			if err := tr.Prepare(ctx, "m", "1"); err != nil {
				b.Fatal(err)
			}
			data := make([]float32, 0, 30*c.rows)
			for range c.rows {
				data = append(data, row...)
			}
			in := []wire.Tensor{{Name: "features", Shape: []int64{int64(c.rows), 30}, Data: data}}
			b.ReportAllocs()
			for b.Loop() {
				tr.Observe("m", "1", in)
			}
		})
	}
}
