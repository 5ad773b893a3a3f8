package main

import (
	"strings"
	"testing"

	"github.com/modelgate/modelgate/canary/release"
)

// One simulated canary of each extreme ends as it must: identical models
// are promoted through every step, 38 % disagreement is rolled back in the
// first step.
func TestSimulate(t *testing.T) {
	plan := release.DefaultPlan()
	aa := simulate(canaryScenarios[0], plan, 1, 0)
	if aa.phase != release.Promoted || aa.step != len(plan.Steps)-1 {
		t.Errorf("A/A: %+v, want promoted", aa)
	}
	var bad canaryScenario
	for _, sc := range canaryScenarios {
		if strings.HasPrefix(sc.Name, "38%") {
			bad = sc
		}
	}
	if o := simulate(bad, plan, 1, 0); o.phase != release.RolledBack || o.step != 0 {
		t.Errorf("38%% disagreement: %+v, want rolled back in the first step", o)
	}
}

// The section has a row per scenario and the targets say whether each is
// met (the scenarios that decide fast; the others hold for the whole
// simulated time, which make eval measures).
func TestCanaryEval(t *testing.T) {
	var fast []canaryScenario
	for _, sc := range canaryScenarios {
		if strings.HasPrefix(sc.Name, "A/A") || strings.HasPrefix(sc.Name, "38%") || strings.HasPrefix(sc.Name, "2x") {
			fast = append(fast, sc)
		}
	}
	section, rows, err := canaryEval(fast, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range fast {
		if !strings.Contains(section, "| "+sc.Name+" |") {
			t.Errorf("no row for %q:\n%s", sc.Name, section)
		}
	}
	if len(rows) != 3 {
		t.Fatalf("%d target rows: %+v", len(rows), rows)
	}
	for _, r := range rows {
		if !r.Meets {
			t.Errorf("%s: %s, target %s", r.Scenario, r.Measured, r.Target)
		}
	}
}
