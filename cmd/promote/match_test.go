package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/spf13/cobra"
)

// --match is repeatable and reads each rule as release.ParseMatch does; a
// bad rule is a usage error (exit 2) naming it.
func TestMatchFlag(t *testing.T) {
	var rules []string
	cmd := &cobra.Command{Use: "start", RunE: func(*cobra.Command, []string) error { return nil }}
	matchFlag(cmd, &rules)
	cmd.SetArgs([]string{"--match", "header:x-beta-user=true", "--match", "cookie:cohort=~beta-.*"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	got, err := parseMatches(rules)
	if err != nil {
		t.Fatal(err)
	}
	want := []release.MatchRule{{Header: "x-beta-user", Value: "true"}, {Cookie: "cohort", Regex: "beta-.*"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed %+v, want %+v", got, want)
	}
	if none, err := parseMatches(nil); none != nil || err != nil {
		t.Fatalf("no rules: %v, %v", none, err)
	}
	for rule, says := range map[string]string{
		"x-beta-user=true":      "want header:NAME=VALUE",
		"query:user=1":          "want header:NAME=VALUE",
		"header:x-beta-user=":   "needs a value",
		"cookie:cohort=~beta-(": "match regex",
		"header:=true":          "want header:NAME=VALUE",
	} {
		_, err := parseMatches([]string{"header:ok=1", rule})
		var ee *exitError
		if err == nil || !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), says) || !strings.Contains(err.Error(), "--match") || !strings.Contains(err.Error(), rule) {
			t.Errorf("%q: %v, want a usage error naming the rule and saying %q", rule, err, says)
		}
	}
}

// promote status shows the matched cohort on its own line, with the
// rules, and its JSON has it under analysis.observations.matched.
func TestStatusShowsMatchedCohort(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	plan := release.DefaultPlan()
	plan.Match = []release.MatchRule{{Header: "x-beta-user", Value: "true"}, {Cookie: "cohort", Regex: "beta-.*"}}
	rel := release.State{Model: "m", Stable: "1", Candidate: "2", Updated: now, Canary: &release.Canary{
		Plan:     plan,
		Progress: release.Progress{Phase: release.Progressing, Candidate: "2", Weight: 5, StepStart: now.Add(-time.Minute)},
		Analysis: &release.Analysis{Time: now, Source: "in-process", Reason: "holding", Observations: release.Observations{
			Stable: release.VersionStats{Requests: 900}, Candidate: release.VersionStats{Requests: 50},
			Matched: release.VersionStats{Requests: 42, Errors: 2, NonFinite: 1, P99: 30 * time.Millisecond},
		}},
	}}
	var b bytes.Buffer
	printStatus(&b, newStatusView(rel), now, false)
	want := "matched:   42 requests by rule (header:x-beta-user=true, cookie:cohort=~beta-.*), 2 errors, 1 non-finite, p99 30ms: a cohort apart, in no check\n"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("status:\n%s\nwant the line\n%s", b.String(), want)
	}
	j, err := json.Marshal(newStatusView(rel))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Analysis struct {
			Observations struct {
				Matched struct{ Requests, Errors int64 }
			}
		}
	}
	if err := json.Unmarshal(j, &v); err != nil || v.Analysis.Observations.Matched.Requests != 42 || v.Analysis.Observations.Matched.Errors != 2 {
		t.Fatalf("JSON status %s: %+v (%v)", j, v, err)
	}
	// Without rules and without matched requests there is no such line.
	rel.Canary.Plan.Match = nil
	rel.Canary.Analysis.Observations.Matched = release.VersionStats{}
	b.Reset()
	printStatus(&b, newStatusView(rel), now, false)
	if strings.Contains(b.String(), "matched:") {
		t.Fatalf("status without rules:\n%s", b.String())
	}
}
