package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/registry"
)

// canaryRegistry is a registry directory holding breast-cancer versions 1
// (stable) and 2 (the same network, other bytes), and the registry API on
// it for the test's own reads and writes.
func canaryRegistry(t *testing.T) (string, releasetest.Registry) {
	t.Helper()
	reg := t.TempDir()
	if r := promote(t, reg, "push", "breast-cancer", "1", demo); r.code != 0 {
		t.Fatalf("push 1: %+v", r)
	}
	b, err := os.ReadFile(demo)
	if err != nil {
		t.Fatal(err)
	}
	v2 := filepath.Join(t.TempDir(), "v2.onnx")
	if err := os.WriteFile(v2, append(b, 0x52, 0x00), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := promote(t, reg, "push", "breast-cancer", "2", v2); r.code != 0 {
		t.Fatalf("push 2: %+v", r)
	}
	opened, err := registry.Open(context.Background(), reg, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return reg, releasetest.Wrap(opened, nil)
}

func passGate(t *testing.T, api releasetest.Registry, version, verdict string) {
	t.Helper()
	if err := api.PutGateReport(context.Background(), "breast-cancer", version, []byte(`{"verdict":"`+verdict+`"}`), []byte("# "+verdict)); err != nil {
		t.Fatal(err)
	}
}

func TestCanaryStartRefusals(t *testing.T) {
	tests := []struct {
		name   string
		gate   string // the stored verdict of version 2; "" for none
		args   []string
		code   int
		stderr string
	}{
		{"ungated", "", nil, 1, "has not been gated"},
		{"failed gates", "fail", nil, 1, "failed its gates"},
		{"force without reason", "", []string{"--force"}, 2, "--force and --reason TEXT go together"},
		{"reason without force", "pass", []string{"--reason", "x"}, 2, "--force and --reason TEXT go together"},
		{"steps not numbers", "pass", []string{"--steps", "5,lots,100"}, 2, "--steps"},
		{"steps not increasing", "pass", []string{"--steps", "50,25,100"}, 2, "must increase"},
		{"steps not ending at 100", "pass", []string{"--steps", "5,50"}, 2, "last step must be 100"},
		{"bad threshold", "pass", []string{"--max-disagreement", "3"}, 2, "max_disagreement"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg, api := canaryRegistry(t)
			if tc.gate != "" {
				passGate(t, api, "2", tc.gate)
			}
			r := promote(t, reg, append([]string{"canary", "start", "breast-cancer", "2"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", r.code, r.stderr, tc.code, tc.stderr)
			}
			rel, err := api.Release(context.Background(), "breast-cancer")
			if err != nil {
				t.Fatal(err)
			}
			if rel.Canary != nil || rel.Candidate != "" {
				t.Fatalf("a refused start wrote %+v", rel.Canary)
			}
		})
	}
	t.Run("unknown version", func(t *testing.T) {
		reg, _ := canaryRegistry(t)
		if r := promote(t, reg, "canary", "start", "breast-cancer", "9", "--force", "--reason", "x"); r.code != 1 || !strings.Contains(r.stderr, "not found") {
			t.Fatalf("%+v", r)
		}
	})
}

func TestCanaryStart(t *testing.T) {
	t.Run("gated", func(t *testing.T) {
		reg, api := canaryRegistry(t)
		passGate(t, api, "2", "pass")
		r := promote(t, reg, "canary", "start", "breast-cancer", "2", "--steps", "10, 50%, 100", "--interval", "30s", "--min-samples", "50")
		if r.code != 0 || !strings.Contains(r.stdout, "canary of 2 started against stable 1: steps 10,50,100 %, 30s each, at least 50 samples per step") {
			t.Fatalf("%+v", r)
		}
		rel, err := api.Release(context.Background(), "breast-cancer")
		if err != nil {
			t.Fatal(err)
		}
		p := rel.Canary.Plan
		if len(p.Steps) != 3 || p.Steps[0] != 10 || p.Interval != 30*time.Second || p.MinSamples != 50 || rel.Canary.Progress.Weight != 10 || rel.Canary.Forced {
			t.Fatalf("stored plan %+v, state %+v", p, rel.Canary.Progress)
		}
	})
	t.Run("forced", func(t *testing.T) {
		reg, api := canaryRegistry(t)
		r := promote(t, reg, "canary", "start", "breast-cancer", "2", "--force", "--reason", "gates are down")
		if r.code != 0 {
			t.Fatalf("%+v", r)
		}
		rel, err := api.Release(context.Background(), "breast-cancer")
		if err != nil {
			t.Fatal(err)
		}
		ev := rel.History[len(rel.History)-1]
		if ev.Action != release.ActionCanaryStart || ev.Version != "2" || ev.From != "1" || !ev.Forced || ev.Reason != "gates are down" {
			t.Fatalf("event %+v", ev)
		}
		// A second canary while this one runs is refused.
		if r := promote(t, reg, "canary", "start", "breast-cancer", "2", "--force", "--reason", "again"); r.code != 1 || !strings.Contains(r.stderr, "in progress") {
			t.Fatalf("second start: %+v", r)
		}
	})
}

func TestCanaryActionCommands(t *testing.T) {
	reg, api := canaryRegistry(t)
	if r := promote(t, reg, "canary", "pause", "breast-cancer"); r.code != 1 || !strings.Contains(r.stderr, "no canary in progress") {
		t.Fatalf("pause without a canary: %+v", r)
	}
	passGate(t, api, "2", "pass")
	if r := promote(t, reg, "canary", "start", "breast-cancer", "2"); r.code != 0 {
		t.Fatalf("start: %+v", r)
	}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"pause", "--reason", "investigating"}, "breast-cancer: canary of 2 is Paused (weight 5%); stable is 1"},
		{[]string{"resume"}, "breast-cancer: canary of 2 is Progressing (weight 5%); stable is 1"},
		{[]string{"promote"}, "breast-cancer: canary of 2 is Promoted (weight 100%); stable is 2"},
	}
	for _, s := range steps {
		args := append([]string{"canary", s.args[0], "breast-cancer"}, s.args[1:]...)
		if r := promote(t, reg, args...); r.code != 0 || !strings.Contains(r.stdout, s.want) {
			t.Fatalf("%v: %+v, want %q", args, r, s.want)
		}
	}
	rel, err := api.Release(context.Background(), "breast-cancer")
	if err != nil {
		t.Fatal(err)
	}
	if ev := rel.History[len(rel.History)-3]; ev.Action != release.ActionCanaryPause || ev.Reason != "investigating" {
		t.Fatalf("pause event %+v", ev)
	}
	// Abort a canary of 1 against the new stable 2.
	passGate(t, api, "1", "pass")
	if r := promote(t, reg, "canary", "start", "breast-cancer", "1"); r.code != 0 {
		t.Fatalf("start: %+v", r)
	}
	if r := promote(t, reg, "canary", "abort", "breast-cancer"); r.code != 0 || !strings.Contains(r.stdout, "canary of 1 is Aborted (weight 0%); stable is 2") {
		t.Fatalf("abort: %+v", r)
	}
	if r := promote(t, reg, "canary", "resume", "breast-cancer"); r.code != 1 {
		t.Fatalf("resume after abort: %+v", r)
	}
	if r := promote(t, reg, "canary", "pause"); r.code != 2 {
		t.Fatalf("pause without a model: %+v", r)
	}
}

// tickOnce records a failed check on the canary, so that it has an
// analysis to show.
func tickOnce(t *testing.T, api releasetest.Registry) {
	t.Helper()
	rel, err := api.Release(context.Background(), "breast-cancer")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	obs := release.Observations{
		Stable:    release.VersionStats{Requests: 900, Errors: 1, P99: 4 * time.Millisecond},
		Candidate: release.VersionStats{Requests: 300, Errors: 30, P99: 5 * time.Millisecond},
		Compared:  300, Disagreements: 3,
	}
	d := release.Decide(rel.Canary.Plan, rel.Canary.Progress, obs, now)
	a := release.Analysis{Time: now, Source: "in-process", Replica: "gw-a", Observations: obs, Checks: d.Checks, Reason: d.Reason}
	if _, err := api.CanaryTick(context.Background(), "breast-cancer", rel.Canary.Epoch(), now.Add(-time.Second), d, a); err != nil {
		t.Fatal(err)
	}
}

func TestStatusShowsCanary(t *testing.T) {
	reg, api := canaryRegistry(t)
	// Without a canary: phase Idle, no candidate, no analysis.
	r := promote(t, reg, "status", "breast-cancer", "--output", "json")
	var idle map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &idle); err != nil {
		t.Fatalf("status json: %v %q", err, r.stdout)
	}
	if idle["phase"] != "Idle" || idle["candidate"] != "" || idle["analysis"] != nil || idle["stable"] != "1" || idle["weight"] != 0.0 {
		t.Fatalf("idle status %v", idle)
	}

	passGate(t, api, "2", "pass")
	if r := promote(t, reg, "canary", "start", "breast-cancer", "2"); r.code != 0 {
		t.Fatalf("start: %+v", r)
	}
	tickOnce(t, api)
	r = promote(t, reg, "status", "breast-cancer", "--output", "json")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	var v struct {
		Stable    *string           `json:"stable"`
		Candidate *string           `json:"candidate"`
		Phase     *string           `json:"phase"`
		Weight    *float64          `json:"weight"`
		Step      *int              `json:"step"`
		Steps     *int              `json:"steps"`
		Analysis  *release.Analysis `json:"analysis"`
		History   []release.Event   `json:"history"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("status json: %v %q", err, r.stdout)
	}
	if v.Stable == nil || *v.Stable != "1" || v.Candidate == nil || *v.Candidate != "2" || v.Phase == nil || *v.Phase != "Progressing" ||
		v.Weight == nil || *v.Weight != 5 || v.Step == nil || *v.Step != 1 || v.Steps == nil || *v.Steps != 4 {
		t.Fatalf("top-level canary fields of %s", r.stdout)
	}
	if v.Analysis == nil || v.Analysis.Replica != "gw-a" || v.Analysis.Observations.Candidate.Errors != 30 || !strings.Contains(v.Analysis.Reason, "error_rate_increase") {
		t.Fatalf("analysis %+v", v.Analysis)
	}
	if len(v.History) != 2 {
		t.Fatalf("history %+v", v.History)
	}

	r = promote(t, reg, "status", "breast-cancer")
	for _, want := range []string{
		"stable:    1",
		"canary:    2  Progressing, step 1 of 4, weight 5%",
		"failed checks 1 of 2 allowed",
		"analysis:  ",
		"(in-process at gw-a): failed check 1 of 2 allowed",
		"samples:   candidate 300 (a step needs at least 200), stable 900, compared 300",
		"bounds:    lower at alpha 0.01",
		"error_rate_increase",
		"FAIL",
		"canary-start",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status text lacks %q:\n%s", want, r.stdout)
		}
	}
}

// syncWriter is a buffer that several goroutines may write and read, and
// that signals the first time its contents hold a string.
type syncWriter struct {
	mu     sync.Mutex
	b      bytes.Buffer
	want   string
	seen   chan struct{}
	signal sync.Once
}

func newSyncWriter(want string) *syncWriter {
	return &syncWriter{want: want, seen: make(chan struct{})}
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	if strings.Contains(w.b.String(), w.want) {
		w.signal.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// --watch exits when the canary ends: 0 when promoted, 1 when rolled back
// or aborted; the first read may already be the end.
func TestStatusWatch(t *testing.T) {
	ctx := context.Background()
	end := map[string]func(api releasetest.Registry) error{
		"promoted": func(api releasetest.Registry) error {
			_, err := api.CanaryAction(ctx, "breast-cancer", releasetest.CanaryPromote, "")
			return err
		},
		"rolled back": func(api releasetest.Registry) error {
			_, err := api.Rollback(ctx, "breast-cancer", "")
			return err
		},
		"aborted": func(api releasetest.Registry) error {
			_, err := api.CanaryAction(ctx, "breast-cancer", releasetest.CanaryAbort, "")
			return err
		},
	}
	wantCode := map[string]int{"promoted": 0, "rolled back": 1, "aborted": 1}
	wantPhase := map[string]string{"promoted": "Promoted", "rolled back": "RolledBack", "aborted": "Aborted"}
	for name, finish := range end {
		t.Run(name+", already ended", func(t *testing.T) {
			reg, api := canaryRegistry(t)
			if _, err := api.StartCanary(ctx, "breast-cancer", "2", release.DefaultPlan(), false, ""); err != nil {
				t.Fatal(err)
			}
			if err := finish(api); err != nil {
				t.Fatal(err)
			}
			r := promote(t, reg, "status", "breast-cancer", "--watch", "--every", "10ms")
			if r.code != wantCode[name] || !strings.Contains(r.stdout, wantPhase[name]) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", r.code, wantCode[name], r.stdout, r.stderr)
			}
		})
		t.Run(name+" while watched", func(t *testing.T) {
			reg, api := canaryRegistry(t)
			if _, err := api.StartCanary(ctx, "breast-cancer", "2", release.DefaultPlan(), false, ""); err != nil {
				t.Fatal(err)
			}
			out, errb := newSyncWriter(`"phase": "Progressing"`), &bytes.Buffer{}
			finished, returned := make(chan error, 1), make(chan struct{})
			go func() {
				select {
				case <-out.seen: // the watch has shown the canary in progress
					finished <- finish(api)
				case <-returned:
					finished <- errors.New("the watch returned before it showed the canary in progress")
				}
			}()
			code := execute(ctx, []string{"--registry", reg, "status", "breast-cancer", "--watch", "--every", "10ms", "--output", "json"}, out, errb)
			close(returned)
			if err := <-finished; err != nil {
				t.Fatalf("%v; exit %d, stdout %q, stderr %q", err, code, out.String(), errb.String())
			}
			stdout := out.String()
			if code != wantCode[name] || !strings.Contains(stdout, `"phase": "`+wantPhase[name]+`"`) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, wantCode[name], stdout, errb.String())
			}
			if code != 0 && !strings.Contains(errb.String(), "canary of 2 "+wantPhase[name]) {
				t.Errorf("stderr %q does not say how the canary ended", errb.String())
			}
		})
	}
	t.Run("no canary", func(t *testing.T) {
		reg, _ := canaryRegistry(t)
		if r := promote(t, reg, "status", "breast-cancer", "--watch", "--every", "10ms"); r.code != 0 {
			t.Fatalf("watch without a canary: %+v", r)
		}
	})
	t.Run("bad period", func(t *testing.T) {
		reg, _ := canaryRegistry(t)
		if r := promote(t, reg, "status", "breast-cancer", "--watch", "--every", "0s"); r.code != 2 {
			t.Fatalf("--every 0s: %+v", r)
		}
	})
}

// canary start takes manual steps, webhooks and notifiers into the plan;
// status says what the canary waits for; bad ones are usage errors.
func TestCanaryStartControls(t *testing.T) {
	reg, api := canaryRegistry(t)
	passGate(t, api, "2", "pass")
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--steps", "pause,5,100"}, "a pause follows a step"},
		{[]string{"--steps", "5,pause:soon,100"}, "pause:soon"},
		{[]string{"--webhook", "pre-launch=http://hooks.example/x"}, `type "pre-launch"`},
		{[]string{"--webhook", "rollout=ftp://hooks.example/x"}, "want an http:// or https:// URL"},
		{[]string{"--webhook", "rollout=http://h.example/x,timeout=-1s"}, "timeout"},
		{[]string{"--notify", "teams=http://h.example/x"}, "want an http:// or https:// URL"},
		{[]string{"--match", "query:beta=1"}, "want header:NAME=VALUE"},
	} {
		if r := promote(t, reg, append([]string{"canary", "start", "breast-cancer", "2"}, tc.args...)...); r.code != 2 || !strings.Contains(r.stderr, tc.says) {
			t.Errorf("%v: %+v, want exit 2 saying %q", tc.args, r, tc.says)
		}
	}
	r := promote(t, reg, "canary", "start", "breast-cancer", "2", "--steps", "5,pause,50,pause:10m,100",
		"--webhook", "confirm-rollout=http://hooks.example/approve,timeout=3s,retries=0",
		"--webhook", "rollout=http://hooks.example/smoke,name=smoke", "--notify", "slack=https://chat.example/hook",
		"--match", "header:x-beta=true", "--match", "cookie:cohort=~beta-.*")
	if r.code != 0 || !strings.Contains(r.stdout, "steps 5,pause,50,pause:10m0s,100 %") || !strings.Contains(r.stdout, "waiting for the confirm-rollout webhooks") {
		t.Fatalf("start with controls: %+v", r)
	}
	rel, err := api.Release(t.Context(), "breast-cancer")
	if err != nil {
		t.Fatal(err)
	}
	p := rel.Canary.Plan
	if len(p.Pauses) != 2 || p.Pauses[1].For != 10*time.Minute || len(p.Webhooks) != 2 || p.Webhooks[0].Timeout != 3*time.Second || p.Webhooks[1].Name != "smoke" || len(p.Notify) != 1 || p.Notify[0].Kind != "slack" ||
		len(p.Match) != 2 || p.Match[1].Cookie != "cohort" || p.Match[1].Regex != "beta-.*" {
		t.Fatalf("stored plan %+v", p)
	}
	if rel.Canary.Progress.Weight != 0 {
		t.Fatalf("weight %g before the confirm-rollout hook approved", rel.Canary.Progress.Weight)
	}
	if r := promote(t, reg, "status", "breast-cancer"); !strings.Contains(r.stdout, "waiting:   the confirm-rollout webhooks") {
		t.Fatalf("status: %s", r.stdout)
	}
}
