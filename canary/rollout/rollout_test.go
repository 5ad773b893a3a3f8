package rollout_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/internal/testclock"
	"github.com/modelgate/modelgate/wire"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/canary/rollout"
	"github.com/modelgate/modelgate/registry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeCatalog records what the controller applied, in order.
type fakeCatalog struct {
	mu      sync.Mutex
	applied []release.State
	candErr error
}

func (f *fakeCatalog) ApplyRelease(rel release.State) {
	f.mu.Lock()
	f.applied = append(f.applied, rel)
	f.mu.Unlock()
}
func (f *fakeCatalog) CandidateError(string) error { return f.candErr }

// fixedSource returns the same observations for every query.
type fixedSource struct {
	obs release.Observations
	err error
}

func (s *fixedSource) Observations(context.Context, canary.Query) (release.Observations, error) {
	return s.obs, s.err
}
func (*fixedSource) Name() string { return "fixed" }

var healthy = releasetest.Healthy(2000)

func setup(t *testing.T, src canary.Source) (releasetest.Registry, *testclock.Clock, *fakeCatalog, *rollout.Controller, *prometheus.Registry) {
	t.Helper()
	reg, clk := rig(t, release.DefaultPlan())
	cat := &fakeCatalog{}
	metrics := prometheus.NewRegistry()
	ctl := rollout.New(rollout.Options{Registry: reg.Registry, Catalog: cat, Source: src, Replica: "gw-1", Registerer: metrics, Now: clk.Now})
	return reg, clk, cat, ctl, metrics
}

// rig is a local registry with versions 1 (stable) and 2 of model m and a
// canary of 2 started with plan, on a test clock.
func rig(t *testing.T, plan release.Plan) (releasetest.Registry, *testclock.Clock) {
	t.Helper()
	clk := testclock.New(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
	b, err := registry.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := releasetest.Wrap(registry.New(b, registry.Options{Now: clk.Now}), clk.Now)
	spec := []wire.TensorSpec{{Name: "x", DType: wire.FP32, Shape: []int64{-1, 2}}}
	for _, v := range []string{"1", "2"} {
		if _, _, err := reg.Push(context.Background(), registry.PushRequest{Name: "m", Version: v, Model: []byte("model " + v), Inputs: spec, Outputs: spec}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.StartCanary(context.Background(), "m", "2", plan, false, ""); err != nil {
		t.Fatal(err)
	}
	return reg, clk
}

// Ticks walk a healthy canary through its steps to promotion, one step
// per interval; the tick period is a quarter of the interval.
func TestTicksPromoteAHealthyCanary(t *testing.T) {
	reg, clk, cat, ctl, metrics := setup(t, &fixedSource{obs: healthy})
	ctx := context.Background()
	tick, active := tickOnce(t, ctl, reg)
	if !active || tick != 15*time.Second {
		t.Fatalf("first tick: period %s active %v, want 15s (a quarter of 1m) and active", tick, active)
	}
	for i := 0; i < 40 && active; i++ {
		clk.Add(tick)
		_, active = tickOnce(t, ctl, reg)
	}
	rel, err := reg.Release(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Stable != "2" || rel.Canary.Progress.Phase != release.Promoted {
		t.Fatalf("after the ticks: stable %s, %s (%s)", rel.Stable, rel.Canary.Progress.Phase, rel.Canary.Progress.Reason)
	}
	if a := rel.Canary.Analysis; a == nil || a.Replica != "gw-1" || a.Source != "fixed" || len(a.Checks) == 0 {
		t.Fatalf("recorded analysis %+v", a)
	}
	if last := cat.applied[len(cat.applied)-1]; last.Stable != "2" {
		t.Fatalf("the catalog was last given stable %s", last.Stable)
	}
	if got := counterValue(t, metrics, "modelgate_canary_decisions_total", "decision", "promote"); got != 1 {
		t.Fatalf("promote decisions %g", got)
	}
	if got, err := testutil.GatherAndLint(metrics); err != nil || len(got) > 0 {
		t.Fatalf("metric lint: %v %v", got, err)
	}
}

// A failing canary rolls back after two failed ticks, and the catalog
// gets weight 0 before the rollback is written.
func TestRollbackSetsWeightZeroFirst(t *testing.T) {
	bad := healthy
	bad.Candidate.NonFinite = 3
	reg, clk, cat, ctl, _ := setup(t, &fixedSource{obs: bad})
	ctx := context.Background()
	for range 2 {
		tickOnce(t, ctl, reg)
		clk.Add(15 * time.Second)
	}
	rel, err := reg.Release(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Canary.Progress.Phase != release.RolledBack || rel.Stable != "1" {
		t.Fatalf("after two bad ticks: %s, stable %s", rel.Canary.Progress.Phase, rel.Stable)
	}
	// The catalog saw a rolled-back state with the release's old Updated
	// (before the write) and then the written one.
	n := len(cat.applied)
	if n < 2 {
		t.Fatalf("applied %d states", n)
	}
	pre, post := cat.applied[n-2], cat.applied[n-1]
	if pre.Canary.Progress.Phase != release.RolledBack || pre.Canary.Progress.Weight != 0 || !pre.Updated.Before(rel.Updated) || !post.Updated.Equal(rel.Updated) {
		t.Fatalf("applied before the write: %s weight %g updated %s; after: updated %s; written %s",
			pre.Canary.Progress.Phase, pre.Canary.Progress.Weight, pre.Updated, post.Updated, rel.Updated)
	}
}

// Two controllers ticking at the same moment take one state change
// between them.
func TestReplicasTakeOneChangePerTick(t *testing.T) {
	bad := healthy
	bad.Candidate.Errors = 500
	reg, clk, _, a, _ := setup(t, &fixedSource{obs: bad})
	b := rollout.New(rollout.Options{Registry: reg.Registry, Catalog: &fakeCatalog{}, Source: &fixedSource{obs: bad}, Replica: "gw-2", Now: clk.Now})
	ctx := context.Background()
	tickOnce(t, a, reg)
	tickOnce(t, b, reg)
	rel, err := reg.Release(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if f := rel.Canary.Progress.Failures; f != 1 || rel.Canary.Progress.Phase != release.Progressing {
		t.Fatalf("two replicas in one tick period: failures %d, %s", f, rel.Canary.Progress.Phase)
	}
	clk.Add(15 * time.Second)
	tickOnce(t, b, reg)
	if rel, _ = reg.Release(ctx, "m"); rel.Canary.Progress.Phase != release.RolledBack {
		t.Fatalf("the next period's failure: %s (%d failures)", rel.Canary.Progress.Phase, rel.Canary.Progress.Failures)
	}
}

// A query error and a candidate that does not load count as failed
// checks; the reason is recorded.
func TestAnalysisErrorsFail(t *testing.T) {
	for name, c := range map[string]struct {
		src     *fixedSource
		candErr error
		want    string
	}{
		"query error":          {&fixedSource{err: errors.New("prometheus: 503")}, nil, "prometheus: 503"},
		"candidate not loaded": {&fixedSource{obs: healthy}, errors.New("canary candidate: load: invalid model"), "invalid model"},
	} {
		t.Run(name, func(t *testing.T) {
			reg, _, cat, ctl, _ := setup(t, c.src)
			cat.candErr = c.candErr
			tickOnce(t, ctl, reg)
			rel, err := reg.Release(context.Background(), "m")
			if err != nil {
				t.Fatal(err)
			}
			a := rel.Canary.Analysis
			if rel.Canary.Progress.Failures != 1 || a == nil || !strings.Contains(a.Error, c.want) {
				t.Fatalf("failures %d, analysis %+v", rel.Canary.Progress.Failures, a)
			}
		})
	}
}

// counterValue is the value of the counter name{label=value} in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// tickOnce hands the controller model m's release state, as the catalog's
// watcher does.
func tickOnce(t *testing.T, ctl *rollout.Controller, reg releasetest.Registry) (time.Duration, bool) {
	t.Helper()
	rel, err := reg.Release(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	return ctl.Tick(context.Background(), rel)
}
