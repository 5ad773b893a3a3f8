package release_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release"
)

// A plan survives JSON with its durations as Go duration strings.
func TestPlanJSONRoundTrip(t *testing.T) {
	p := release.DefaultPlan()
	p.Steps = []float64{1, 2.5, 100}
	p.Interval = 90 * time.Second
	p.P99LatencySlack = 1500 * time.Microsecond
	p.MinSamples = 42
	p.FailureLimit = 3
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["interval"] != "1m30s" || raw["p99_latency_slack"] != "1.5ms" {
		t.Errorf("durations in %s: want interval \"1m30s\" and p99_latency_slack \"1.5ms\"", b)
	}
	for _, k := range []string{"steps", "min_samples", "failure_limit", "max_error_rate_increase", "max_p99_latency_ratio", "max_nonfinite_rate", "max_disagreement"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("%s lacks %q", b, k)
		}
	}
	var back release.Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("round trip\n got %+v\nwant %+v", back, p)
	}
}

func TestPlanJSONErrors(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"interval not a duration", `{"steps":[100],"interval":"soon"}`, "interval"},
		{"interval missing", `{"steps":[100]}`, "interval"},
		{"bad slack", `{"steps":[100],"interval":"1m","p99_latency_slack":"2"}`, "p99_latency_slack"},
		{"not an object", `[1]`, "cannot unmarshal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p release.Plan
			if err := json.Unmarshal([]byte(tc.json), &p); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	// Without a slack the plan has none.
	var p release.Plan
	if err := json.Unmarshal([]byte(`{"steps":[100],"interval":"30s","min_samples":1,"failure_limit":1}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.P99LatencySlack != 0 || p.Interval != 30*time.Second {
		t.Errorf("plan %+v", p)
	}
}

// A release routes to its candidate only while progressing or paused;
// its epoch names the candidate, the step and when the step started.
func TestReleaseActiveAndEpoch(t *testing.T) {
	var nilRelease *release.Canary
	if nilRelease.Active() || nilRelease.Epoch() != "" {
		t.Fatalf("nil release: active %v, epoch %q", nilRelease.Active(), nilRelease.Epoch())
	}
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for phase, active := range map[release.Phase]bool{
		release.Idle: false, release.Progressing: true, release.Paused: true,
		release.Promoted: false, release.RolledBack: false, release.Aborted: false,
	} {
		r := &release.Canary{Progress: release.Progress{Phase: phase, Candidate: "2", Step: 1, StepStart: start}}
		if r.Active() != active {
			t.Errorf("%s: Active() = %v, want %v", phase, r.Active(), active)
		}
	}
	if r := (&release.Canary{Progress: release.Progress{Phase: release.Progressing}}); r.Active() {
		t.Error("a progressing release without a candidate is active")
	}

	r := &release.Canary{Progress: release.Progress{Phase: release.Progressing, Candidate: "2", Step: 1, StepStart: start}}
	e := r.Epoch()
	if !strings.HasPrefix(e, "2/1/") {
		t.Errorf("epoch %q, want candidate/step/start", e)
	}
	for name, change := range map[string]func(*release.Canary){
		"another step":       func(r *release.Canary) { r.Progress.Step = 2 },
		"the step restarted": func(r *release.Canary) { r.Progress.StepStart = start.Add(time.Nanosecond) },
		"another candidate":  func(r *release.Canary) { r.Progress.Candidate = "3" },
	} {
		c := *r
		change(&c)
		if c.Epoch() == e {
			t.Errorf("%s keeps the epoch %q", name, e)
		}
	}
	same := *r
	same.Progress.Failures, same.Progress.Weight, same.Analysis = 1, 25, &release.Analysis{Reason: "x"}
	if same.Epoch() != e {
		t.Errorf("a failed check changed the epoch: %q, was %q", same.Epoch(), e)
	}
}
