package workflows

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestRetrain: retrain.yaml runs weekly and by hand (with a force input),
// a check-drift job runs promote drift and exposes should-retrain, and a
// retrain job runs train-promote.yaml as a reusable workflow only on drift
// or when forced.
func TestRetrain(t *testing.T) {
	wf := mustWorkflow(t, "retrain.yaml")
	on := get(wf.root, "on")
	cron := path(on, "schedule")
	if cron == nil || cron.Kind != yaml.SequenceNode || len(cron.Content) == 0 {
		t.Fatal("retrain.yaml has no schedule")
	}
	fields := strings.Fields(get(cron.Content[0], "cron").Value)
	if len(fields) != 5 || fields[4] == "*" || fields[2] != "*" {
		t.Errorf("retrain.yaml cron %q: want a weekly schedule (a day of the week)", strings.Join(fields, " "))
	}
	force := path(on, "workflow_dispatch", "inputs", "force")
	if force == nil || get(force, "type").Value != "boolean" || get(force, "default").Value != "false" {
		t.Errorf("retrain.yaml: workflow_dispatch needs a boolean input force, default false")
	}

	jobs := get(wf.root, "jobs")
	check := get(jobs, "check-drift")
	if check == nil {
		t.Fatal("retrain.yaml has no check-drift job")
	}
	out := path(check, "outputs", "should-retrain")
	if out == nil || !strings.Contains(out.Value, "steps.drift.outputs.should-retrain") {
		t.Errorf("check-drift does not expose should-retrain from its drift step: %v", out)
	}
	drift, ok := stepRunning(wf, regexp.MustCompile(`bin/promote drift `))
	if !ok || drift.job != "check-drift" || drift.field("id") != "drift" {
		t.Fatalf("check-drift has no step with id drift running promote drift")
	}
	run := drift.field("run")
	for _, want := range []string{"--min-samples", "--max-psi", "GITHUB_OUTPUT", "tail -n 1"} {
		if !strings.Contains(run, want) {
			t.Errorf("%s: the drift step lacks %q", drift, want)
		}
	}

	retrain := get(jobs, "retrain")
	if retrain == nil {
		t.Fatal("retrain.yaml has no retrain job")
	}
	if uses := get(retrain, "uses"); uses == nil || uses.Value != "./.github/workflows/train-promote.yaml" {
		t.Errorf("the retrain job must call ./.github/workflows/train-promote.yaml, uses %v", uses)
	}
	needs := get(retrain, "needs")
	if needs == nil || (needs.Value != "check-drift" && !slices.ContainsFunc(needs.Content, func(n *yaml.Node) bool { return n.Value == "check-drift" })) {
		t.Error("the retrain job does not need check-drift")
	}
	cond := get(retrain, "if").Value
	for _, want := range []string{"needs.check-drift.outputs.should-retrain == 'true'", "inputs.force"} {
		if !strings.Contains(cond, want) {
			t.Errorf("the retrain job's if: %q lacks %q", cond, want)
		}
	}
	for _, perm := range []string{"id-token", "pull-requests"} {
		if v := path(retrain, "permissions", perm); v == nil || v.Value != "write" {
			t.Errorf("the retrain job must grant %s: write to the called workflow", perm)
		}
	}
}

// TestTrainPromoteChecksData: train-promote.yaml checks the new training data
// (promote check-data) before it trains and pushes, and pushes the version
// with its training data's profile.
func TestTrainPromoteChecksData(t *testing.T) {
	wf := mustWorkflow(t, "train-promote.yaml")
	index := func(re string) int {
		for i, s := range steps(wf) {
			if regexp.MustCompile(re).MatchString(s.field("run")) {
				return i
			}
		}
		return -1
	}
	check, train, push := index(`bin/promote check-data `), index(`go run ./examples/train [^\n]*-out "\$\{RUNNER_TEMP\}/train"\s*$`), index(`bin/promote push `)
	if check < 0 || train < 0 || push < 0 {
		t.Fatalf("steps: check-data %d, train %d, push %d", check, train, push)
	}
	if check > train || check > push {
		t.Errorf("promote check-data (step %d) must come before training (%d) and the push (%d)", check, train, push)
	}
	if run := steps(wf)[push].field("run"); !strings.Contains(run, "--train-data") {
		t.Errorf("the push does not store the training data's profile (--train-data):\n%s", run)
	}
}
