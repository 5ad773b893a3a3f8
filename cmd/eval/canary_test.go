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

// The section has a row per scenario and the targets name each kind.
func TestCanaryEval(t *testing.T) {
	section, rows, err := canaryEval(2, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range canaryScenarios {
		if !strings.Contains(section, "| "+sc.Name+" |") {
			t.Errorf("no row for %q:\n%s", sc.Name, section)
		}
	}
	if len(rows) < 6 {
		t.Errorf("%d target rows: %+v", len(rows), rows)
	}
}
