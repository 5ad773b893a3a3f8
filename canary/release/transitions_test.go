package release

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	at0 = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	at1 = at0.Add(time.Minute)
)

// stateAt builds a state by applying events from the zero state of model
// m, each a minute after the last, starting at at0 - 1h.
func stateAt(t *testing.T, events ...Transition) State {
	t.Helper()
	s := State{Model: "m"}
	now := at0.Add(-time.Hour)
	for _, ev := range events {
		var err error
		if s, err = Apply(s, ev, now); err != nil {
			t.Fatalf("setting up with %T: %v", ev, err)
		}
		now = now.Add(time.Minute)
	}
	return s
}

func lastOf(s State) Event {
	if len(s.History) == 0 {
		return Event{}
	}
	return s.History[len(s.History)-1]
}

func plan() Plan {
	p := DefaultPlan()
	p.Interval = 10 * time.Second
	return p
}

// canaryOf2 is model m with stable 1 and a canary of 2 in progress.
func canaryOf2(t *testing.T) State {
	return stateAt(t, Push{"1"}, StartCanary{Version: "2", Plan: plan(), Gate: GatePassed})
}

// TestTransitions applies one event to one state and checks the outcome:
// the refusal, or the fields the event sets and the history event it adds.
func TestTransitions(t *testing.T) {
	badPlan := plan()
	badPlan.Steps = []float64{50, 25}
	tests := []struct {
		name   string
		from   func(t *testing.T) State
		ev     Transition
		err    error
		text   string                      // in the refusal
		same   bool                        // nothing changes
		check  func(t *testing.T, s State) // the state after
		action string                      // of the event appended
	}{
		{name: "push of a first version", from: func(t *testing.T) State { return State{Model: "m"} }, ev: Push{"1"}, action: ActionInitialStable,
			check: func(t *testing.T, s State) { want(t, s.Stable == "1", "stable %q", s.Stable) }},
		{name: "push of a later version", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: Push{"2"}, same: true},

		{name: "stable: ungated", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: SetStable{Version: "2"}, err: ErrRefused, text: "has not been gated"},
		{name: "stable: failed gates", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: SetStable{Version: "2", Gate: GateFailed}, err: ErrRefused, text: "failed its gates"},
		{name: "stable: forced without a reason", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: SetStable{Version: "2", Forced: true}, err: ErrRefused, text: "needs a reason"},
		{name: "stable: passed", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: SetStable{Version: "2", Gate: GatePassed}, action: ActionStable,
			check: func(t *testing.T, s State) {
				want(t, s.Stable == "2" && lastOf(s).From == "1" && !lastOf(s).Forced, "stable %q, event %+v", s.Stable, lastOf(s))
			}},
		{name: "stable: forced with a reason", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: SetStable{Version: "2", Gate: GateFailed, Forced: true, Reason: "hotfix"}, action: ActionStable,
			check: func(t *testing.T, s State) {
				want(t, lastOf(s).Forced && lastOf(s).Reason == "hotfix", "event %+v", lastOf(s))
			}},
		{name: "stable: already stable, gated or not", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: SetStable{Version: "1"}, same: true},

		{name: "rollback: no stable version", from: func(t *testing.T) State { return State{Model: "m"} }, ev: Rollback{}, err: ErrRefused, text: "no stable version"},
		{name: "rollback: nothing before", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: Rollback{}, err: ErrRefused, text: "no previous stable version"},
		{name: "rollback: the previous stable version", from: func(t *testing.T) State {
			return stateAt(t, Push{"1"}, SetStable{Version: "2", Gate: GatePassed}, SetStable{Version: "3", Gate: GatePassed})
		}, ev: Rollback{Reason: "errors spiked"}, action: ActionRollback,
			check: func(t *testing.T, s State) {
				want(t, s.Stable == "2" && lastOf(s).From == "3" && lastOf(s).Reason == "errors spiked", "stable %q, event %+v", s.Stable, lastOf(s))
			}},
		{name: "rollback of a rollback undoes it", from: func(t *testing.T) State {
			return stateAt(t, Push{"1"}, SetStable{Version: "2", Gate: GatePassed}, Rollback{})
		}, ev: Rollback{}, action: ActionRollback,
			check: func(t *testing.T, s State) { want(t, s.Stable == "2", "stable %q", s.Stable) }},
		{name: "rollback during a canary takes the candidate out", from: canaryOf2, ev: Rollback{Reason: "looks off"}, action: ActionCanaryRollback,
			check: func(t *testing.T, s State) {
				c := s.Canary.Progress
				want(t, s.Stable == "1" && s.Candidate == "" && c.Phase == RolledBack && c.Weight == 0 && c.Reason == "rolled back by an operator: looks off",
					"stable %q candidate %q progress %+v", s.Stable, s.Candidate, c)
			}},

		{name: "canary: invalid plan", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: StartCanary{Version: "2", Plan: badPlan, Gate: GatePassed}, err: ErrInvalidPlan, text: "must increase"},
		{name: "canary: no stable version", from: func(t *testing.T) State { return State{Model: "m"} }, ev: StartCanary{Version: "2", Plan: plan(), Gate: GatePassed}, err: ErrRefused, text: "no stable version"},
		{name: "canary: of the stable version", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: StartCanary{Version: "1", Plan: plan(), Gate: GatePassed}, err: ErrRefused, text: "already the stable version"},
		{name: "canary: one in progress", from: canaryOf2, ev: StartCanary{Version: "3", Plan: plan(), Gate: GatePassed}, err: ErrRefused, text: "abort it first"},
		{name: "canary: ungated", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: StartCanary{Version: "2", Plan: plan()}, err: ErrRefused, text: "has not been gated"},
		{name: "canary: forced with a reason", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: StartCanary{Version: "2", Plan: plan(), Forced: true, Reason: "incident 7"}, action: ActionCanaryStart,
			check: func(t *testing.T, s State) {
				want(t, s.Candidate == "2" && s.Canary.Forced && s.Canary.Progress == Progress{Phase: Progressing, Candidate: "2", Weight: 5, StepStart: at0, Reason: "started"},
					"candidate %q canary %+v", s.Candidate, s.Canary)
			}},
		{name: "canary: after an ended one", from: func(t *testing.T) State {
			return stateAt(t, Push{"1"}, StartCanary{Version: "2", Plan: plan(), Gate: GatePassed}, Abort{})
		}, ev: StartCanary{Version: "3", Plan: plan(), Gate: GatePassed}, action: ActionCanaryStart},

		{name: "pause without a canary", from: func(t *testing.T) State { return stateAt(t, Push{"1"}) }, ev: Pause{}, err: ErrRefused, text: "no canary in progress"},
		{name: "pause", from: canaryOf2, ev: Pause{Reason: "lunch"}, action: ActionCanaryPause,
			check: func(t *testing.T, s State) {
				want(t, s.Canary.Progress.Phase == Paused && s.Canary.Progress.Weight == 5 && s.Canary.Progress.Reason == "pause by an operator: lunch", "%+v", s.Canary.Progress)
			}},
		{name: "pause when paused", from: func(t *testing.T) State {
			return stateAt(t, Push{"1"}, StartCanary{Version: "2", Plan: plan(), Gate: GatePassed}, Pause{})
		}, ev: Pause{}, same: true},
		{name: "resume starts the step over", from: func(t *testing.T) State {
			return stateAt(t, Push{"1"}, StartCanary{Version: "2", Plan: plan(), Gate: GatePassed}, Pause{})
		}, ev: Resume{}, action: ActionCanaryResume,
			check: func(t *testing.T, s State) {
				want(t, s.Canary.Progress.Phase == Progressing && s.Canary.Progress.StepStart.Equal(at0), "%+v", s.Canary.Progress)
			}},
		{name: "resume when progressing", from: canaryOf2, ev: Resume{}, same: true},
		{name: "abort", from: canaryOf2, ev: Abort{}, action: ActionCanaryAbort,
			check: func(t *testing.T, s State) {
				want(t, s.Stable == "1" && s.Candidate == "" && s.Canary.Progress.Phase == Aborted && s.Canary.Progress.Weight == 0, "%+v", s)
			}},
		{name: "promote", from: canaryOf2, ev: Promote{}, action: ActionCanaryPromote,
			check: func(t *testing.T, s State) {
				want(t, s.Stable == "2" && s.Candidate == "" && s.Canary.Progress.Phase == Promoted && lastOf(s).Forced && lastOf(s).From == "1", "%+v", s)
			}},
		{name: "promote then rollback returns to the old stable", from: func(t *testing.T) State {
			return stateAt(t, Push{"1"}, StartCanary{Version: "2", Plan: plan(), Gate: GatePassed}, Promote{})
		}, ev: Rollback{}, action: ActionRollback,
			check: func(t *testing.T, s State) { want(t, s.Stable == "1", "stable %q", s.Stable) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from := tc.from(t)
			got, err := Apply(from, tc.ev, at0)
			if tc.err != nil || tc.text != "" {
				if !errors.Is(err, tc.err) || !strings.Contains(fmtErr(err), tc.text) {
					t.Fatalf("error = %v, want %v saying %q", err, tc.err, tc.text)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.same {
				if !got.Updated.Equal(from.Updated) || len(got.History) != len(from.History) {
					t.Fatalf("changed: %+v", got)
				}
				return
			}
			if !got.Updated.Equal(at0) {
				t.Errorf("updated %v, want %v", got.Updated, at0)
			}
			if len(got.History) != len(from.History)+1 || lastOf(got).Action != tc.action || !lastOf(got).Time.Equal(at0) {
				t.Errorf("history %+v, want one more %s event at %v", got.History, tc.action, at0)
			}
			if err := AppendOnly(from.History, got.History); err != nil {
				t.Error(err)
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func want(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Errorf(format, args...)
	}
}

// TestTick records ticks on a canary: stale ones are dropped, a hold only
// refreshes the analysis, a passed step, promotion and rollback are
// history events.
func TestTick(t *testing.T) {
	healthyObs := healthy(2000)
	bad := healthyObs
	bad.Candidate.Errors = 100
	tick := func(s State, obs Observations, now, notBefore time.Time) Tick {
		d := Decide(s.Canary.Plan, s.Canary.Progress, obs, now)
		return Tick{Epoch: s.Canary.Epoch(), NotBefore: notBefore, Decision: d, Analysis: Analysis{Time: now, Observations: obs, Checks: d.Checks, Reason: d.Reason}}
	}
	s := stateAt(t, Push{"1"}, StartCanary{Version: "2", Plan: plan(), Gate: GatePassed})
	start := s.Canary.Progress.StepStart

	t.Run("a hold refreshes the analysis only", func(t *testing.T) {
		got, err := Apply(s, tick(s, healthyObs, start.Add(time.Second), start), start.Add(time.Second))
		if err != nil || len(got.History) != len(s.History) || got.Canary.Analysis == nil || got.Canary.Progress != s.Canary.Progress {
			t.Fatalf("%v %+v", err, got.Canary)
		}
		// Another replica's hold in the same period is dropped.
		if _, err := Apply(got, tick(got, healthyObs, start.Add(2*time.Second), start), start.Add(2*time.Second)); !errors.Is(err, ErrStaleTick) {
			t.Fatalf("second hold: %v, want ErrStaleTick", err)
		}
	})
	t.Run("a passed step, then a change in the same period is dropped", func(t *testing.T) {
		now := start.Add(11 * time.Second)
		got, err := Apply(s, tick(s, healthyObs, now, now.Add(-time.Second)), now)
		if err != nil || lastOf(got).Action != ActionCanaryStep || got.Canary.Progress.Weight != 25 || !got.Canary.Decided.Equal(now) {
			t.Fatalf("%v %+v %+v", err, lastOf(got), got.Canary.Progress)
		}
		if !got.Canary.ChangedSince(now.Add(-time.Second)) || got.Canary.ChangedSince(now) {
			t.Error("ChangedSince does not follow Decided")
		}
		stale := tick(s, healthyObs, now, now.Add(-time.Second)) // decided on the old epoch
		if _, err := Apply(got, stale, now); !errors.Is(err, ErrStaleTick) {
			t.Fatalf("a tick of the old step: %v, want ErrStaleTick", err)
		}
	})
	t.Run("failed checks roll back, with the evidence", func(t *testing.T) {
		now := start.Add(time.Second)
		once, err := Apply(s, tick(s, bad, now, now.Add(-time.Second)), now)
		if err != nil || once.Canary.Progress.Failures != 1 || len(once.History) != len(s.History) {
			t.Fatalf("first failure: %v %+v", err, once.Canary.Progress)
		}
		// A tick decided before that failure, recorded after it, is dropped.
		if _, err := Apply(once, Tick{Epoch: once.Canary.Epoch(), NotBefore: now.Add(time.Hour * -1), Decision: Decision{Next: once.Canary.Progress, Changed: true}, Analysis: Analysis{Time: now}}, now); !errors.Is(err, ErrStaleTick) {
			t.Fatalf("a tick on a stale failure count: %v", err)
		}
		later := now.Add(5 * time.Second)
		twice, err := Apply(once, tick(once, bad, later, later.Add(-time.Second)), later)
		ev := lastOf(twice)
		if err != nil || twice.Canary.Progress.Phase != RolledBack || twice.Candidate != "" || ev.Action != ActionCanaryRollback || ev.Extra["analysis"] == nil {
			t.Fatalf("second failure: %v %+v %+v", err, twice.Canary.Progress, ev)
		}
	})
	t.Run("a paused canary takes no tick", func(t *testing.T) {
		paused := stateAt(t, Push{"1"}, StartCanary{Version: "2", Plan: plan(), Gate: GatePassed}, Pause{})
		if _, err := Apply(paused, Tick{Epoch: paused.Canary.Epoch(), Decision: Decision{Changed: true}}, at1); !errors.Is(err, ErrStaleTick) {
			t.Fatalf("%v, want ErrStaleTick", err)
		}
	})
	t.Run("the last step promotes", func(t *testing.T) {
		cur := s
		now := start
		for range 10 {
			if cur.Canary.Progress.Phase != Progressing {
				break
			}
			now = now.Add(11 * time.Second)
			var err error
			if cur, err = Apply(cur, tick(cur, healthyObs, now, now.Add(-time.Second)), now); err != nil {
				t.Fatal(err)
			}
		}
		if cur.Stable != "2" || cur.Canary.Progress.Phase != Promoted || lastOf(cur).Action != ActionCanaryPromote {
			t.Fatalf("%+v %+v", cur.Canary.Progress, lastOf(cur))
		}
	})
}

// rewrite is a transition that breaks the append-only history.
type rewrite struct{}

func (rewrite) apply(s *State, _ time.Time) error {
	s.History[0].Reason = "rewritten"
	return nil
}

func TestApplyKeepsTheHistoryAppendOnly(t *testing.T) {
	s := stateAt(t, Push{"1"})
	if _, err := Apply(s, rewrite{}, at0); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("error = %v", err)
	}
	if s.History[0].Reason != "" {
		t.Fatal("Apply changed the state it was given")
	}
}

func TestUpdate(t *testing.T) {
	b, err := Update("m", Push{"1"}, at0)(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Decode("m", b)
	if err != nil || s.Stable != "1" || len(s.History) != 1 {
		t.Fatalf("%v %+v", err, s)
	}
	// No change: the very bytes it was given, which the store does not write.
	again, err := Update("m", Push{"2"}, at1)(b)
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("%v: %s", err, again)
	}
	if none, err := Update("m", Pause{}, at1)(b); !errors.Is(err, ErrRefused) || none != nil {
		t.Fatalf("a refusal: %v %s", err, none)
	}
	if _, err := Decode("m", []byte(`{"model":"other"}`)); err == nil {
		t.Fatal("Decode took another model's state")
	}
}
