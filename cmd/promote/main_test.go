package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/internal/miniotest"
	"github.com/modelgate/modelgate/internal/onnx"
	"github.com/modelgate/modelgate/internal/ortest"
	"github.com/modelgate/modelgate/internal/testmodels"
)

const demo = "../../examples/breast-cancer/model.onnx"

type result struct {
	code           int
	stdout, stderr string
}

// TestMain closes the ONNX Runtime that tests of push, gate and drift start.
func TestMain(m *testing.M) { os.Exit(ortest.Run(m)) }

// promote runs the command line in-process. push and gate load models with
// ONNX Runtime: under -short (make test-unit) a test that runs them is
// skipped.
func promote(t *testing.T, reg string, args ...string) result {
	t.Helper()
	if len(args) > 0 && (args[0] == "push" || args[0] == "gate") {
		ortest.Runtime(t)
	}
	var out, errb bytes.Buffer
	code := execute(context.Background(), append([]string{"--registry", reg}, args...), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func TestPushListShowStableStatus(t *testing.T) {
	reg := t.TempDir()
	r := promote(t, reg, "push", "breast-cancer", "1", demo, "--holdout", "../../examples/breast-cancer/holdout.csv", "--meta", "dataset=wdbc", "--meta", "owner=ml")
	if r.code != 0 || !strings.Contains(r.stdout, "pushed breast-cancer version 1") || !strings.Contains(r.stdout, "is stable") {
		t.Fatalf("push: %+v", r)
	}
	// Same bytes again: a no-op.
	if r := promote(t, reg, "push", "breast-cancer", "1", demo); r.code != 0 || !strings.Contains(r.stdout, "nothing changed") {
		t.Fatalf("repush: %+v", r)
	}
	// A second version does not become stable by itself.
	v2 := filepath.Join(t.TempDir(), "v2.onnx")
	b, _ := os.ReadFile(demo)
	b = append(b, 0x52, 0x00) // an unknown protobuf field 10, empty: still a valid model, other bytes
	if err := os.WriteFile(v2, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := promote(t, reg, "push", "breast-cancer", "2", v2); r.code != 0 || !strings.Contains(r.stdout, "stable is still 1") {
		t.Fatalf("push v2: %+v", r)
	}
	// Other bytes under an existing version: refused, nothing changed.
	if r := promote(t, reg, "push", "breast-cancer", "1", v2); r.code != 1 || !strings.Contains(r.stderr, "immutable") {
		t.Fatalf("overwrite: %+v", r)
	}
	r = promote(t, reg, "list")
	if r.code != 0 || !strings.Contains(r.stdout, "breast-cancer  1       2") {
		t.Fatalf("list: %q", r.stdout)
	}
	r = promote(t, reg, "list", "breast-cancer", "--output", "json")
	var versions []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &versions); err != nil || len(versions) != 2 {
		t.Fatalf("list json: %v %q", err, r.stdout)
	}
	r = promote(t, reg, "show", "breast-cancer")
	for _, want := range []string{"version:  1", "features FP32 [-1 30]", "label INT64 [-1]", "probabilities FP32 [-1 2]", "holdout:  holdout.csv", "dataset=wdbc"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	r = promote(t, reg, "stable", "breast-cancer", "2", "--force", "--reason", "hotfix")
	if r.code != 0 || !strings.Contains(r.stdout, "stable is now 2 (was 1)") {
		t.Fatalf("stable: %+v", r)
	}
	r = promote(t, reg, "status", "breast-cancer", "--output", "json")
	var st struct {
		Stable  string `json:"stable"`
		History []struct {
			Action, Version, From, Reason string
			Forced                        bool
		} `json:"history"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Stable != "2" || len(st.History) != 2 {
		t.Fatalf("status: %v %q", err, r.stdout)
	}
	if h := st.History[1]; h.Version != "2" || h.From != "1" || !h.Forced || h.Reason != "hotfix" {
		t.Fatalf("history %+v", h)
	}
	if r := promote(t, reg, "status", "breast-cancer"); r.code != 0 || !strings.Contains(r.stdout, "stable:    2") || !strings.Contains(r.stdout, "forced: hotfix") {
		t.Fatalf("status text: %q", r.stdout)
	}
}

// refusal is a promote command that must fail with code and a stderr
// containing want.
type refusal struct {
	name string
	args []string
	code int
	want string
}

// checkRefusals runs each refused command, then checks that the refusals
// stored nothing in the registry.
func checkRefusals(t *testing.T, reg string, cases []refusal) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := promote(t, reg, c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, c.code, c.want)
			}
		})
	}
	if r := promote(t, reg, "list", "--output", "json"); strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("registry not empty after refusals: %q", r.stdout)
	}
}

func TestRefusals(t *testing.T) {
	reg := t.TempDir()
	garbage := filepath.Join(t.TempDir(), "garbage.onnx")
	os.WriteFile(garbage, []byte("not a model"), 0o644)
	b, _ := os.ReadFile(demo)
	truncated := filepath.Join(t.TempDir(), "truncated.onnx")
	os.WriteFile(truncated, b[:len(b)/2], 0o644)
	cases := []refusal{
		{"garbage model", []string{"push", "m", "1", garbage}, 1, "protobuf parsing failed"},
		{"truncated model", []string{"push", "m", "1", truncated}, 1, "refused"},
		{"missing file", []string{"push", "m", "1", "/nonexistent.onnx"}, 1, "no such file"},
		{"bad name", []string{"push", "Bad Name", "1", demo}, 2, "Bad Name"},
		{"bad version", []string{"push", "m", "../1", demo}, 2, "../1"},
		{"bad meta", []string{"push", "m", "1", demo, "--meta", "novalue"}, 2, "key=value"},
		{"too few args", []string{"push", "m"}, 2, "wrong number of arguments"},
		{"unknown command", []string{"deploy"}, 2, "unknown command"},
		{"unknown flag", []string{"list", "--colour"}, 2, "unknown flag"},
		{"bad output", []string{"status", "m", "--output", "yaml"}, 2, "--output must be text or json"},
		{"reason without force", []string{"stable", "m", "1", "--reason", "x"}, 2, "--force and --reason TEXT go together"},
		{"force without reason", []string{"stable", "m", "1", "--force"}, 2, "--force and --reason TEXT go together"},
		{"unknown model status", []string{"status", "nope"}, 1, "not found"},
		{"unknown version stable", []string{"stable", "m", "9", "--force", "--reason", "x"}, 1, "not found"},
		{"unknown version gated stable", []string{"stable", "m", "9"}, 1, "not found"},
		{"rollback unknown model", []string{"rollback", "nope"}, 1, "not found"},
		{"bad s3 bucket", []string{"--registry", "s3://Bad_Bucket/models", "list"}, 1, "Bad_Bucket"},
	}
	checkRefusals(t, reg, cases)
}

func TestTerminalProgress(t *testing.T) {
	var b bytes.Buffer
	f := terminalProgress(&b)
	f("models/m/versions/1/model.onnx", 0, 2048)
	f("models/m/versions/1/model.onnx", 2048, 2048)
	out := b.String()
	if !strings.Contains(out, "uploading model.onnx") || !strings.Contains(out, "100.0%") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("progress line %q", out)
	}
	if isTerminal(&b) {
		t.Fatal("a buffer is not a terminal")
	}
}

// promote push against a real MinIO creates the bucket and stores the
// version; promote stable moves it.
func TestPushToMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	srv.Setenv(t)
	reg := "s3://fresh-bucket/team/models"
	if r := promote(t, reg, "push", "breast-cancer", "1", demo); r.code != 0 || !strings.Contains(r.stdout, "pushed breast-cancer version 1") {
		t.Fatalf("push to a bucket that does not exist yet: %+v", r)
	}
	if r := promote(t, reg, "status", "breast-cancer", "--output", "json"); r.code != 0 || !strings.Contains(r.stdout, `"stable": "1"`) {
		t.Fatalf("status: %+v", r)
	}
}

// The CI flow: push, gate (exit 0 or 1, reports written and stored),
// stable only for a passed gate unless forced, rollback.
func TestGateStableRollback(t *testing.T) {
	reg := t.TempDir()
	holdout := "../../examples/breast-cancer/holdout.csv"
	if r := promote(t, reg, "push", "breast-cancer", "1", demo, "--holdout", holdout); r.code != 0 {
		t.Fatalf("push: %+v", r)
	}
	// Version 2: the same network (an extra, unknown protobuf field makes other bytes).
	b, _ := os.ReadFile(demo)
	v2 := filepath.Join(t.TempDir(), "v2.onnx")
	os.WriteFile(v2, append(b, 0x52, 0x00), 0o644)
	if r := promote(t, reg, "push", "breast-cancer", "2", v2); r.code != 0 {
		t.Fatalf("push v2: %+v", r)
	}
	if r := promote(t, reg, "stable", "breast-cancer", "2"); r.code != 1 || !strings.Contains(r.stderr, "has not been gated") {
		t.Fatalf("stable before gating: %+v", r)
	}
	dir := t.TempDir()
	r := promote(t, reg, "gate", "breast-cancer", "2", "--holdout", holdout, "--min-accuracy", "0.93", "--max-latency-ratio", "0", "--report-dir", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "PASS breast-cancer version 2") {
		t.Fatalf("gate: %+v", r)
	}
	for _, f := range []string{"report.json", "report.md"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s not written: %v", f, err)
		}
	}
	if r := promote(t, reg, "show", "breast-cancer", "2"); !strings.Contains(r.stdout, "gates:    pass") {
		t.Fatalf("show: %q", r.stdout)
	}
	if r := promote(t, reg, "stable", "breast-cancer", "2"); r.code != 0 || !strings.Contains(r.stdout, "stable is now 2 (was 1)") {
		t.Fatalf("stable after a passed gate: %+v", r)
	}

	// Version 3 renames an output: the contract gate fails, exit 1.
	renamed := filepath.Join(t.TempDir(), "renamed.onnx")
	os.WriteFile(renamed, testmodels.Identity(onnx.Float, -1, 30), 0o644)
	if r := promote(t, reg, "push", "breast-cancer", "3", renamed); r.code != 0 {
		t.Fatalf("push v3: %+v", r)
	}
	r = promote(t, reg, "gate", "breast-cancer", "3", "--holdout", holdout, "--output", "json")
	if r.code != 1 || !strings.Contains(r.stdout, `"verdict": "fail"`) {
		t.Fatalf("gate of a broken contract: %+v", r)
	}
	if r := promote(t, reg, "stable", "breast-cancer", "3"); r.code != 1 || !strings.Contains(r.stderr, "failed its gates") {
		t.Fatalf("stable of a failed version: %+v", r)
	}
	if r := promote(t, reg, "stable", "breast-cancer", "3", "--force", "--reason", "incident 42"); r.code != 0 {
		t.Fatalf("forced stable: %+v", r)
	}
	if r := promote(t, reg, "rollback", "breast-cancer"); r.code != 0 || !strings.Contains(r.stdout, "rolled back to 2 (was 3)") {
		t.Fatalf("rollback: %+v", r)
	}
	// Usage and infrastructure errors exit 2.
	if r := promote(t, reg, "gate", "breast-cancer", "9"); r.code != 2 {
		t.Fatalf("gate of a missing version: %+v", r)
	}
	if r := promote(t, reg, "gate", "breast-cancer", "2", "--holdout", "/nonexistent.csv"); r.code != 2 {
		t.Fatalf("gate with a missing holdout: %+v", r)
	}
	if r := promote(t, reg, "gate", "breast-cancer", "2", "--metric", "f1_macro"); r.code != 2 {
		t.Fatalf("--metric without --min: %+v", r)
	}
}
