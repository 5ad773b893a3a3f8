package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/internal/testclock"
	"github.com/modelgate/modelgate/wire"

	"github.com/modelgate/modelgate/registry"
)

var canaryT0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// newCanaryRegistry is a local registry on a test clock with model m at
// versions 1 (stable), 2 and 3.
func newCanaryRegistry(t *testing.T) (releasetest.Registry, *testclock.Clock) {
	t.Helper()
	clock := testclock.New(canaryT0)
	b, err := registry.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := releasetest.Wrap(registry.New(b, registry.Options{Now: clock.Now}), clock.Now)
	for _, v := range []string{"1", "2", "3"} {
		pushBytes(t, r, v, []byte("model "+v))
	}
	return r, clock
}

func stateOf(t *testing.T, r releasetest.Registry) release.State {
	t.Helper()
	s, err := r.Release(context.Background(), "m")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func lastEvent(s release.State) release.Event {
	if len(s.History) == 0 {
		return release.Event{}
	}
	return s.History[len(s.History)-1]
}

// startCanary starts a canary of version with tickPlan.
func startCanary(t *testing.T, r releasetest.Registry, version string) release.State {
	t.Helper()
	s, err := r.StartCanary(context.Background(), "m", version, tickPlan(), false, "")
	if err != nil {
		t.Fatalf("start canary of %s: %v", version, err)
	}
	return s
}

func TestStartCanary(t *testing.T) {
	ctx := context.Background()
	r, _ := newCanaryRegistry(t)
	plan := release.DefaultPlan()
	s, err := r.StartCanary(ctx, "m", "2", plan, true, "hotfix for incident 7")
	if err != nil {
		t.Fatal(err)
	}
	if s.Stable != "1" || s.Candidate != "2" || s.Canary == nil {
		t.Fatalf("after start: %+v", s)
	}
	want := release.Progress{Phase: release.Progressing, Candidate: "2", Weight: 5, StepStart: canaryT0, Reason: "started"}
	if !reflect.DeepEqual(s.Canary.Progress, want) {
		t.Errorf("state %+v, want %+v", s.Canary.Progress, want)
	}
	if c := s.Canary; !c.Started.Equal(canaryT0) || !c.Forced || c.Reason != "hotfix for incident 7" || !reflect.DeepEqual(c.Plan, plan) {
		t.Errorf("release %+v", c)
	}
	ev := lastEvent(s)
	if ev.Action != release.ActionCanaryStart || ev.Version != "2" || ev.From != "1" || !ev.Forced || ev.Reason != "hotfix for incident 7" || !ev.Time.Equal(canaryT0) {
		t.Errorf("event %+v", ev)
	}
	// What was written is what comes back.
	if got := stateOf(t, r); !reflect.DeepEqual(got.Canary, s.Canary) || len(got.History) != 2 {
		t.Errorf("stored %+v, want %+v", got.Canary, s.Canary)
	}
}

func TestStartCanaryRefusals(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, r releasetest.Registry)
		version string
		plan    func(*release.Plan)
		want    error
		text    string
	}{
		{"invalid plan", nil, "2", func(p *release.Plan) { p.Steps = []float64{50, 25} }, release.ErrInvalidPlan, "must increase"},
		{"invalid plan is a bad request", nil, "2", func(p *release.Plan) { p.Interval = 0 }, release.ErrRefused, "interval"},
		{"unknown version", nil, "9", nil, registry.ErrNotFound, `"9"`},
		{"invalid version", nil, "../2", nil, registry.ErrInvalidName, ""},
		{"the stable version", nil, "1", nil, release.ErrRefused, "already the stable version"},
		{"a canary in progress", func(t *testing.T, r releasetest.Registry) { startCanary(t, r, "2") }, "3", nil, release.ErrRefused, "in progress"},
		{"a paused canary", func(t *testing.T, r releasetest.Registry) {
			startCanary(t, r, "2")
			if _, err := r.CanaryAction(context.Background(), "m", releasetest.CanaryPause, ""); err != nil {
				t.Fatal(err)
			}
		}, "2", nil, release.ErrRefused, "abort it first"},
		{"no stable version", func(t *testing.T, r releasetest.Registry) {
			if _, err := r.Edit(context.Background(), "m", func(s *release.State) error { s.Stable = ""; return nil }); err != nil {
				t.Fatal(err)
			}
		}, "2", nil, release.ErrRefused, "no stable version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newCanaryRegistry(t)
			if tc.setup != nil {
				tc.setup(t, r)
			}
			before := stateOf(t, r)
			plan := release.DefaultPlan()
			if tc.plan != nil {
				tc.plan(&plan)
			}
			_, err := r.StartCanary(context.Background(), "m", tc.version, plan, false, "")
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.want, tc.text)
			}
			if after := stateOf(t, r); !reflect.DeepEqual(after, before) {
				t.Fatalf("a refused start wrote the release state:\n%+v\nwas\n%+v", after, before)
			}
		})
	}
}

// A new canary may start once the previous one has ended.
func TestStartCanaryAfterAnEndedOne(t *testing.T) {
	ctx := context.Background()
	r, _ := newCanaryRegistry(t)
	startCanary(t, r, "2")
	if _, err := r.CanaryAction(ctx, "m", releasetest.CanaryAbort, "wrong build"); err != nil {
		t.Fatal(err)
	}
	s := startCanary(t, r, "3")
	if s.Candidate != "3" || s.Canary.Progress.Phase != release.Progressing || s.Canary.Progress.Candidate != "3" {
		t.Fatalf("second canary: %+v", s.Canary.Progress)
	}
}

func TestCanaryActions(t *testing.T) {
	ctx := context.Background()
	r, clock := newCanaryRegistry(t)
	start := startCanary(t, r, "2")
	epoch := start.Canary.Epoch()

	clock.Add(time.Minute)
	s, err := r.CanaryAction(ctx, "m", releasetest.CanaryPause, "looking into latency")
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Canary.Progress; st.Phase != release.Paused || st.Weight != 5 || st.Reason != "pause by an operator: looking into latency" {
		t.Fatalf("after pause: %+v", st)
	}
	if ev := lastEvent(s); ev.Action != release.ActionCanaryPause || ev.Version != "2" || ev.From != "1" || ev.Reason != "looking into latency" {
		t.Fatalf("pause event %+v", ev)
	}
	if s.Canary.Epoch() != epoch {
		t.Errorf("pausing changed the epoch")
	}
	// Pausing a paused canary changes nothing.
	n := len(s.History)
	if s, err = r.CanaryAction(ctx, "m", releasetest.CanaryPause, "again"); err != nil || len(s.History) != n {
		t.Fatalf("second pause: %v, %d events (was %d)", err, len(s.History), n)
	}

	clock.Add(time.Minute)
	s, err = r.CanaryAction(ctx, "m", releasetest.CanaryResume, "")
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Canary.Progress; st.Phase != release.Progressing || st.Weight != 5 || !st.StepStart.Equal(canaryT0.Add(2*time.Minute)) || st.Reason != "resume by an operator" {
		t.Fatalf("after resume: %+v, want the step restarted at %s", st, canaryT0.Add(2*time.Minute))
	}
	if s.Canary.Epoch() == epoch {
		t.Errorf("resuming kept the epoch: observations from before the pause would count")
	}
	if ev := lastEvent(s); ev.Action != release.ActionCanaryResume {
		t.Fatalf("resume event %+v", ev)
	}
	// Resuming a progressing canary changes nothing.
	n = len(s.History)
	if s, err = r.CanaryAction(ctx, "m", releasetest.CanaryResume, ""); err != nil || len(s.History) != n {
		t.Fatalf("second resume: %v, %d events (was %d)", err, len(s.History), n)
	}

	if _, err := r.CanaryAction(ctx, "m", "restart", ""); !errors.Is(err, release.ErrRefused) || !strings.Contains(err.Error(), "unknown canary action") {
		t.Fatalf("unknown action: %v", err)
	}
	if got := stateOf(t, r); len(got.History) != n || got.Canary.Progress.Phase != release.Progressing {
		t.Fatalf("an unknown action wrote %+v", got.Canary.Progress)
	}

	s, err = r.CanaryAction(ctx, "m", releasetest.CanaryAbort, "wrong build")
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Canary.Progress; st.Phase != release.Aborted || st.Weight != 0 || s.Candidate != "" || s.Stable != "1" {
		t.Fatalf("after abort: %+v, candidate %q, stable %q", st, s.Candidate, s.Stable)
	}
	if ev := lastEvent(s); ev.Action != release.ActionCanaryAbort || ev.Version != "2" || ev.Reason != "wrong build" {
		t.Fatalf("abort event %+v", ev)
	}
	for _, act := range []string{releasetest.CanaryPause, releasetest.CanaryResume, releasetest.CanaryAbort, releasetest.CanaryPromote} {
		if _, err := r.CanaryAction(ctx, "m", act, ""); !errors.Is(err, release.ErrRefused) || !strings.Contains(err.Error(), "no canary in progress") {
			t.Errorf("%s after abort: %v", act, err)
		}
	}
}

func TestCanaryActionWithoutCanary(t *testing.T) {
	r, _ := newCanaryRegistry(t)
	for _, act := range []string{releasetest.CanaryPause, releasetest.CanaryPromote, "nonsense"} {
		if _, err := r.CanaryAction(context.Background(), "m", act, ""); !errors.Is(err, release.ErrRefused) {
			t.Errorf("%s without a canary: %v", act, err)
		}
	}
	if got := stateOf(t, r); got.Canary != nil || len(got.History) != 1 {
		t.Errorf("refused actions wrote %+v", got)
	}
}

// Promoting by hand makes the candidate stable; rolling back afterwards
// returns to the stable version before it.
func TestCanaryPromoteThenRollback(t *testing.T) {
	ctx := context.Background()
	r, _ := newCanaryRegistry(t)
	startCanary(t, r, "2")
	s, err := r.CanaryAction(ctx, "m", releasetest.CanaryPromote, "looks fine")
	if err != nil {
		t.Fatal(err)
	}
	if s.Stable != "2" || s.Candidate != "" || s.Canary.Progress.Phase != release.Promoted || s.Canary.Progress.Weight != 100 {
		t.Fatalf("after promote: stable %q candidate %q %+v", s.Stable, s.Candidate, s.Canary.Progress)
	}
	if ev := lastEvent(s); ev.Action != release.ActionCanaryPromote || ev.Version != "2" || ev.From != "1" || !ev.Forced {
		t.Fatalf("promote event %+v, want forced canary-promote of 2 from 1", ev)
	}
	s, err = r.Rollback(ctx, "m", "regression")
	if err != nil {
		t.Fatal(err)
	}
	if s.Stable != "1" {
		t.Fatalf("rollback after a promoted canary: stable %q, want 1", s.Stable)
	}
	if ev := lastEvent(s); ev.Action != release.ActionRollback || ev.Version != "1" || ev.From != "2" {
		t.Fatalf("rollback event %+v", ev)
	}
}

// Rolling back during a canary takes the candidate out and leaves stable
// as it is; a later rollback goes to the version before stable, never to
// the candidate that was taken out.
func TestRollbackDuringCanary(t *testing.T) {
	ctx := context.Background()
	r, _ := newCanaryRegistry(t)
	if _, err := r.SetStable(ctx, "m", "2", false, ""); err != nil {
		t.Fatal(err)
	}
	startCanary(t, r, "3")
	s, err := r.Rollback(ctx, "m", "p99 doubled")
	if err != nil {
		t.Fatal(err)
	}
	st := s.Canary.Progress
	if s.Stable != "2" || s.Candidate != "" || st.Phase != release.RolledBack || st.Weight != 0 || st.Candidate != "3" {
		t.Fatalf("after rollback: stable %q candidate %q %+v", s.Stable, s.Candidate, st)
	}
	if !strings.Contains(st.Reason, "p99 doubled") {
		t.Errorf("reason %q", st.Reason)
	}
	if ev := lastEvent(s); ev.Action != release.ActionCanaryRollback || ev.Version != "3" || ev.From != "2" || ev.Reason != "p99 doubled" {
		t.Fatalf("event %+v", ev)
	}
	if s.Canary.Active() {
		t.Fatal("the canary is still active")
	}

	s, err = r.Rollback(ctx, "m", "and the previous one too")
	if err != nil {
		t.Fatal(err)
	}
	if s.Stable != "1" {
		t.Fatalf("second rollback: stable %q, want 1 (the version before 2), not the rolled-back candidate", s.Stable)
	}
}

// With nothing before stable, a rollback after a rolled-back canary is
// refused rather than putting the candidate back.
func TestRollbackAfterCanaryRollbackHasNoPrevious(t *testing.T) {
	ctx := context.Background()
	r, _ := newCanaryRegistry(t)
	startCanary(t, r, "2")
	if _, err := r.Rollback(ctx, "m", "bad"); err != nil {
		t.Fatal(err)
	}
	if s, err := r.Rollback(ctx, "m", "again"); !errors.Is(err, release.ErrRefused) {
		t.Fatalf("rollback with no previous stable: stable %q, err %v; want refused", s.Stable, err)
	}
	if s := stateOf(t, r); s.Stable != "1" {
		t.Fatalf("stable %q, want 1", s.Stable)
	}
}

// tickPlan is the default plan with a short interval.
func tickPlan() release.Plan {
	p := release.DefaultPlan()
	p.Interval = 10 * time.Second
	return p
}

func goodObs() release.Observations { return releasetest.Healthy(2000) }

func badObs() release.Observations {
	o := goodObs()
	o.Candidate.Errors = 100
	return o
}

// tick decides on the stored state at now and records it the way the
// controller does (notBefore: 80 % of a tick period earlier).
func tick(t *testing.T, r releasetest.Registry, obs release.Observations, now time.Time) (release.Decision, release.State, error) {
	t.Helper()
	s := stateOf(t, r)
	d := release.Decide(s.Canary.Plan, s.Canary.Progress, obs, now)
	a := release.Analysis{Time: now, Source: "in-process", Replica: "gw-1", Observations: obs, Checks: d.Checks, Reason: d.Reason}
	written, err := r.CanaryTick(context.Background(), "m", s.Canary.Epoch(), now.Add(-2*time.Second), d, a)
	return d, written, err
}

func TestCanaryTickSteps(t *testing.T) {
	r, _ := newCanaryRegistry(t)
	s0 := startCanary(t, r, "2")
	epoch0 := s0.Canary.Epoch()

	// A holding tick (within the interval) only refreshes the analysis.
	t1 := canaryT0.Add(3 * time.Second)
	d, s, err := tick(t, r, goodObs(), t1)
	if err != nil || d.Changed {
		t.Fatalf("holding tick: changed %v, %v", d.Changed, err)
	}
	if !reflect.DeepEqual(s.Canary.Progress, s0.Canary.Progress) || len(s.History) != len(s0.History) || !s.Canary.Decided.IsZero() {
		t.Fatalf("a holding tick changed the state: %+v", s.Canary)
	}
	if a := s.Canary.Analysis; a == nil || !a.Time.Equal(t1) || a.Replica != "gw-1" || a.Observations.Candidate.Requests != 2000 {
		t.Fatalf("analysis %+v", a)
	}
	// Another replica's holding tick moments later is dropped.
	again := release.Analysis{Time: t1.Add(time.Second), Reason: "other replica"}
	if _, err := r.CanaryTick(context.Background(), "m", epoch0, t1.Add(-time.Second), d, again); !errors.Is(err, release.ErrStaleTick) {
		t.Fatalf("a second holding tick within the period: %v, want ErrStaleTick", err)
	}
	if a := stateOf(t, r).Canary.Analysis; a.Reason == "other replica" {
		t.Fatal("the dropped tick's analysis was written")
	}

	// After the interval the step passes.
	t2 := canaryT0.Add(10 * time.Second)
	d, s, err = tick(t, r, goodObs(), t2)
	if err != nil || !d.Changed {
		t.Fatalf("passing tick: changed %v, %v", d.Changed, err)
	}
	if st := s.Canary.Progress; st.Step != 1 || st.Weight != 25 || !st.StepStart.Equal(t2) || !s.Canary.Decided.Equal(t2) {
		t.Fatalf("after the first step: %+v, decided %s", st, s.Canary.Decided)
	}
	if ev := lastEvent(s); ev.Action != release.ActionCanaryStep || ev.Version != "2" || ev.From != "1" || !ev.Time.Equal(t2) {
		t.Fatalf("step event %+v", ev)
	}

	// A tick decided on the previous step is stale and writes nothing.
	before := stateOf(t, r)
	stale := release.Decide(s0.Canary.Plan, s0.Canary.Progress, goodObs(), t2)
	if _, err := r.CanaryTick(context.Background(), "m", epoch0, t2, stale, release.Analysis{Time: t2.Add(time.Second)}); !errors.Is(err, release.ErrStaleTick) {
		t.Fatalf("tick on an old epoch: %v, want ErrStaleTick", err)
	}
	if after := stateOf(t, r); !reflect.DeepEqual(after, before) {
		t.Fatal("a stale tick wrote the release state")
	}

	// A second change within the tick period (another replica) is dropped.
	epoch1 := s.Canary.Epoch()
	failed := release.Decide(s.Canary.Plan, s.Canary.Progress, badObs(), t2.Add(time.Second))
	if !failed.Changed || failed.Next.Failures != 1 {
		t.Fatalf("decision on bad observations: %+v", failed)
	}
	if _, err := r.CanaryTick(context.Background(), "m", epoch1, t2.Add(-time.Second), failed, release.Analysis{Time: t2.Add(time.Second)}); !errors.Is(err, release.ErrStaleTick) {
		t.Fatalf("a change within the period: %v, want ErrStaleTick", err)
	}
	if after := stateOf(t, r); !reflect.DeepEqual(after, before) {
		t.Fatal("a dropped change wrote the release state")
	}
	// A decision on a failure count that has changed since is dropped too.
	twice := failed
	twice.Next.Failures = 2
	if _, err := r.CanaryTick(context.Background(), "m", epoch1, t2, twice, release.Analysis{Time: t2.Add(3 * time.Second)}); !errors.Is(err, release.ErrStaleTick) {
		t.Fatalf("a decision on another failure count: %v, want ErrStaleTick", err)
	}
	// Once the period has passed, a failed check is recorded in the state
	// but not in the history.
	n := len(stateOf(t, r).History)
	_, s, err = tick(t, r, badObs(), t2.Add(3*time.Second))
	if err != nil || s.Canary.Progress.Failures != 1 || s.Canary.Progress.Phase != release.Progressing || len(s.History) != n {
		t.Fatalf("a failed check: %+v, %d events (was %d), %v", s.Canary.Progress, len(s.History), n, err)
	}
}

func TestCanaryTickPromotes(t *testing.T) {
	r, _ := newCanaryRegistry(t)
	startCanary(t, r, "2")
	now := canaryT0
	var s release.State
	for i := 0; i < 4; i++ {
		now = now.Add(10 * time.Second)
		var err error
		if _, s, err = tick(t, r, goodObs(), now); err != nil {
			t.Fatalf("tick %d: %v", i, err)
		}
	}
	if s.Stable != "2" || s.Candidate != "" || s.Canary.Progress.Phase != release.Promoted || s.Canary.Active() {
		t.Fatalf("after four steps: stable %q candidate %q %+v", s.Stable, s.Candidate, s.Canary.Progress)
	}
	var actions []string
	for _, e := range s.History {
		actions = append(actions, e.Action)
	}
	want := []string{release.ActionInitialStable, release.ActionCanaryStart, release.ActionCanaryStep, release.ActionCanaryStep, release.ActionCanaryStep, release.ActionCanaryPromote}
	if !reflect.DeepEqual(actions, want) {
		t.Fatalf("history %v, want %v", actions, want)
	}
	if ev := lastEvent(s); ev.Version != "2" || ev.From != "1" || ev.Forced || !strings.Contains(ev.Reason, "passed all 4 steps") {
		t.Fatalf("promote event %+v", ev)
	}
	// The canary has ended: further ticks are stale.
	if _, _, err := tick(t, r, goodObs(), now.Add(time.Minute)); !errors.Is(err, release.ErrStaleTick) {
		t.Fatalf("tick after promotion: %v", err)
	}
}

// A rollback takes the candidate out and keeps the analysis that decided
// it in the history, as evidence.
func TestCanaryTickRollsBack(t *testing.T) {
	r, _ := newCanaryRegistry(t)
	startCanary(t, r, "2")
	if _, _, err := tick(t, r, badObs(), canaryT0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	d, s, err := tick(t, r, badObs(), canaryT0.Add(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if s.Stable != "1" || s.Candidate != "" || s.Canary.Progress.Phase != release.RolledBack || s.Canary.Progress.Weight != 0 {
		t.Fatalf("after two failed checks: stable %q candidate %q %+v", s.Stable, s.Candidate, s.Canary.Progress)
	}
	ev := lastEvent(stateOf(t, r)) // as stored, through JSON
	if ev.Action != release.ActionCanaryRollback || ev.Version != "2" || ev.From != "1" || ev.Reason != d.Reason {
		t.Fatalf("rollback event %+v", ev)
	}
	var evidence release.Analysis
	if err := json.Unmarshal(ev.Extra["analysis"], &evidence); err != nil {
		t.Fatalf("analysis evidence %s: %v", ev.Extra["analysis"], err)
	}
	if evidence.Observations.Candidate.Errors != 100 || evidence.Replica != "gw-1" || len(evidence.Checks) == 0 || !strings.Contains(evidence.Reason, "rolled back") {
		t.Fatalf("evidence %+v", evidence)
	}
}

// A paused canary takes no ticks.
func TestCanaryTickWhilePaused(t *testing.T) {
	r, _ := newCanaryRegistry(t)
	s := startCanary(t, r, "2")
	if _, err := r.CanaryAction(context.Background(), "m", releasetest.CanaryPause, ""); err != nil {
		t.Fatal(err)
	}
	d := release.Decide(s.Canary.Plan, s.Canary.Progress, goodObs(), canaryT0.Add(time.Minute))
	if _, err := r.CanaryTick(context.Background(), "m", s.Canary.Epoch(), canaryT0, d, release.Analysis{Time: canaryT0.Add(time.Minute)}); !errors.Is(err, release.ErrStaleTick) {
		t.Fatalf("tick of a paused canary: %v, want ErrStaleTick", err)
	}
}

func TestRollback(t *testing.T) {
	ctx := context.Background()
	r := newLocalRegistry(t)
	pushBytes(t, r, "1", []byte("one"))
	if _, err := r.Rollback(ctx, "m", "nothing to go back to"); !errors.Is(err, release.ErrRefused) {
		t.Fatalf("rollback of the first version: %v", err)
	}
	pushBytes(t, r, "2", []byte("two"))
	pushBytes(t, r, "3", []byte("three"))
	r.SetStable(ctx, "m", "2", false, "")
	r.SetStable(ctx, "m", "3", false, "")
	s, err := r.Rollback(ctx, "m", "errors spiked")
	if err != nil || s.Stable != "2" {
		t.Fatalf("rollback: %+v %v", s, err)
	}
	last := s.History[len(s.History)-1]
	if last.Action != release.ActionRollback || last.Version != "2" || last.From != "3" || last.Reason != "errors spiked" {
		t.Fatalf("history %+v", last)
	}
	if _, err := r.Rollback(ctx, "nope", ""); !errors.Is(err, release.ErrRefused) || !strings.Contains(err.Error(), "no stable version") {
		t.Fatalf("unknown model: %v", err)
	}
}

// pushBytes pushes model as version of model m; the first becomes stable.
func pushBytes(t *testing.T, r releasetest.Registry, version string, model []byte) {
	t.Helper()
	spec := []wire.TensorSpec{{Name: "x", DType: wire.FP32, Shape: []int64{-1, 2}}}
	if _, _, err := r.Push(context.Background(), registry.PushRequest{Name: "m", Version: version, Model: model, Inputs: spec, Outputs: spec}); err != nil {
		t.Fatal(err)
	}
}

// newLocalRegistry is a local registry in a temporary directory.
func newLocalRegistry(t *testing.T) releasetest.Registry {
	t.Helper()
	b, err := registry.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return releasetest.Wrap(registry.New(b, registry.Options{}), nil)
}
