package workflows

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// envActionlint names the actionlint binary; by default it is the one
// `make actionlint` installs into .cache/tools/bin.
const envActionlint = "MODELGATE_ACTIONLINT"

// repoRoot is the directory holding go.mod, found upwards from the test's
// working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// workflowFiles returns the workflow files, relative to root.
func workflowFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(root, ".github", "workflows", pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			rel, err := filepath.Rel(root, f)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, rel)
		}
	}
	if len(files) == 0 {
		t.Fatal("no workflow files in .github/workflows")
	}
	slices.Sort(files)
	return files
}

// TestActionlint runs actionlint on every workflow and fails on any finding.
// actionlint runs shellcheck on the run: scripts when shellcheck is on PATH.
func TestActionlint(t *testing.T) {
	root := repoRoot(t)
	bin := os.Getenv(envActionlint)
	if bin == "" {
		bin = filepath.Join(root, ".cache", "tools", "bin", "actionlint")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("actionlint not found: run `make actionlint` (or set %s): %v", envActionlint, err)
	}
	if sc, err := exec.LookPath("shellcheck"); err == nil {
		t.Logf("shellcheck: %s (actionlint checks the run: scripts with it)", sc)
	} else {
		t.Log("shellcheck is not on PATH: the run: scripts are not shellchecked (apt-get install shellcheck)")
	}
	files := workflowFiles(t, root)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-no-color", "-oneline"}, files...)...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		t.Logf("actionlint: %d workflow files clean: %s", len(files), strings.Join(files, ", "))
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		t.Errorf("actionlint found problems in the workflows:\n%s", out.String())
	default:
		t.Fatalf("actionlint %s: %v\n%s", bin, err, out.String())
	}
}

// workflow is a parsed workflow file.
type workflow struct {
	path string
	root *yaml.Node // the top-level mapping
}

func loadWorkflows(t *testing.T) map[string]workflow {
	t.Helper()
	root := repoRoot(t)
	wfs := map[string]workflow{}
	for _, rel := range workflowFiles(t, root) {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
			t.Fatalf("%s: not a YAML mapping", rel)
		}
		wfs[filepath.Base(rel)] = workflow{path: rel, root: doc.Content[0]}
	}
	return wfs
}

func mustWorkflow(t *testing.T, name string) workflow {
	t.Helper()
	wf, ok := loadWorkflows(t)[name]
	if !ok {
		t.Fatalf(".github/workflows/%s is missing", name)
	}
	return wf
}

// get returns the value of key in mapping n, or nil.
func get(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// path follows keys through nested mappings.
func path(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		n = get(n, k)
	}
	return n
}

// keys returns the keys of mapping n.
func keys(n *yaml.Node) []string {
	var ks []string
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			ks = append(ks, n.Content[i].Value)
		}
	}
	return ks
}

// triggers returns the events in on:, written as a string, a list or a mapping.
func triggers(wf workflow) []string {
	on := get(wf.root, "on")
	if on == nil {
		return nil
	}
	switch on.Kind {
	case yaml.ScalarNode:
		return []string{on.Value}
	case yaml.SequenceNode:
		var evs []string
		for _, e := range on.Content {
			evs = append(evs, e.Value)
		}
		return evs
	default:
		return keys(on)
	}
}

// step is one step of a job.
type step struct {
	job  string
	node *yaml.Node
}

func (s step) field(key string) string {
	if v := get(s.node, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

func (s step) String() string {
	if name := s.field("name"); name != "" {
		return s.job + ": " + name
	}
	if uses := s.field("uses"); uses != "" {
		return s.job + ": " + uses
	}
	return s.job + ": step at line " + strconv.Itoa(s.node.Line)
}

func steps(wf workflow) []step {
	var out []step
	jobs := get(wf.root, "jobs")
	for _, job := range keys(jobs) {
		ss := path(jobs, job, "steps")
		if ss == nil || ss.Kind != yaml.SequenceNode {
			continue
		}
		for _, s := range ss.Content {
			out = append(out, step{job: job, node: s})
		}
	}
	return out
}

// stepRunning returns the first step whose run: script matches re.
func stepRunning(wf workflow, re *regexp.Regexp) (step, bool) {
	for _, s := range steps(wf) {
		if re.MatchString(s.field("run")) {
			return s, true
		}
	}
	return step{}, false
}

var (
	// AWS access key ids (long-term AKIA, temporary ASIA).
	awsKeyID = regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)
	// Words that make a key name a credential's.
	credentialWords = []string{"password", "passwd", "secret", "token", "apikey"}
	// A credential assigned a literal in a script (a $variable is fine).
	scriptCredential = regexp.MustCompile(`(?i)\b(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|MINIO_ROOT_USER|MINIO_ROOT_PASSWORD|MINIO_ACCESS_KEY|MINIO_SECRET_KEY|[A-Z_]*PASSWORD)=["']?[^"'$\s]`)
	keyWords         = regexp.MustCompile(`[^a-z0-9]+`)
	wholeExpression  = regexp.MustCompile(`^\$\{\{.*\}\}$`)
	quotedLiteral    = regexp.MustCompile(`'[^']+'`)
)

func credentialKey(key string) bool {
	for _, w := range keyWords.Split(strings.ToLower(key), -1) {
		if slices.Contains(credentialWords, w) {
			return true
		}
	}
	return false
}

// TestNoHardcodedCredentials: credentials come from secrets, variables or
// OIDC, never from the workflow text. It fails on an AWS key id anywhere, on a
// credential-named key (env, with, secrets, a container's credentials) whose
// value is not a ${{ }} expression or whose expression holds a literal
// fallback, and on a credential variable set to a literal in a run: script.
func TestNoHardcodedCredentials(t *testing.T) {
	for name, wf := range loadWorkflows(t) {
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			switch n.Kind {
			case yaml.ScalarNode:
				if awsKeyID.MatchString(n.Value) {
					t.Errorf("%s:%d: an AWS access key id in the workflow: use OIDC or secrets", name, n.Line)
				}
			case yaml.SequenceNode:
				for _, c := range n.Content {
					walk(c)
				}
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					k, v := n.Content[i], n.Content[i+1]
					if awsKeyID.MatchString(k.Value) {
						t.Errorf("%s:%d: an AWS access key id in the workflow", name, k.Line)
					}
					// permissions: (id-token: write) are scopes, not credentials.
					if k.Value == "permissions" {
						continue
					}
					if v.Kind == yaml.ScalarNode && credentialKey(k.Value) {
						val := strings.TrimSpace(v.Value)
						switch {
						case val == "":
						case !wholeExpression.MatchString(val):
							t.Errorf("%s:%d: %s has a literal value: take it from secrets or OIDC", name, v.Line, k.Value)
						case quotedLiteral.MatchString(val):
							t.Errorf("%s:%d: %s: the expression holds a literal (%s): no fallback credentials", name, v.Line, k.Value, val)
						}
					}
					if k.Value == "run" && v.Kind == yaml.ScalarNode {
						for _, m := range scriptCredential.FindAllString(v.Value, -1) {
							t.Errorf("%s:%d: run: script sets a credential to a literal: %q", name, v.Line, m)
						}
					}
					walk(v)
				}
			}
		}
		walk(wf.root)
	}
}

// TestCredentialCheckCatches keeps TestNoHardcodedCredentials honest.
func TestCredentialCheckCatches(t *testing.T) {
	for key, want := range map[string]bool{
		"password": true, "AWS_SECRET_ACCESS_KEY": true, "GH_TOKEN": true, "aws-session-token": true,
		"secret": true, "id-token": true, "role-to-assume": false, "persist-credentials": false, "KEY_ID": false,
	} {
		if got := credentialKey(key); got != want {
			t.Errorf("credentialKey(%q) = %v, want %v", key, got, want)
		}
	}
	if !awsKeyID.MatchString("AKIAIOSFODNN7EXAMPLE") {
		t.Error("the AWS key id pattern misses AKIAIOSFODNN7EXAMPLE")
	}
	for script, want := range map[string]bool{
		`echo "AWS_SECRET_ACCESS_KEY=${SECRET_KEY}" >> "$GITHUB_ENV"`: false,
		`export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI`:                  true,
		`MINIO_ROOT_PASSWORD='hunter2' minio server`:                  true,
	} {
		if got := scriptCredential.MatchString(script); got != want {
			t.Errorf("scriptCredential on %q = %v, want %v", script, got, want)
		}
	}
}

// TestActionsPinned: every action is pinned to a major version tag or more
// (v4, v4.1.2, or a commit sha), never a branch.
func TestActionsPinned(t *testing.T) {
	pinned := regexp.MustCompile(`@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$`)
	for name, wf := range loadWorkflows(t) {
		for _, s := range steps(wf) {
			uses := s.field("uses")
			if uses == "" || strings.HasPrefix(uses, "./") || strings.HasPrefix(uses, "docker://") {
				continue
			}
			if !pinned.MatchString(uses) {
				t.Errorf("%s: %s: %q is not pinned to a version tag or commit", name, s, uses)
			}
		}
	}
}

// TestMinimalPermissions: every workflow sets its top-level permissions
// (contents: read at most, or none), so the token is not the default one.
func TestMinimalPermissions(t *testing.T) {
	for name, wf := range loadWorkflows(t) {
		perms := get(wf.root, "permissions")
		if perms == nil {
			t.Errorf("%s: no top-level permissions", name)
			continue
		}
		for _, k := range keys(perms) {
			if v := get(perms, k).Value; k != "contents" || v != "read" {
				t.Errorf("%s: top-level permission %s: %s; grant more only in the job that needs it", name, k, v)
			}
		}
	}
}

func TestCIRunsMakeTest(t *testing.T) {
	wf := mustWorkflow(t, "ci.yaml")
	for _, ev := range []string{"push", "pull_request"} {
		if !slices.Contains(triggers(wf), ev) {
			t.Errorf("ci.yaml does not run on %s (on: %v)", ev, triggers(wf))
		}
	}
	if _, ok := stepRunning(wf, regexp.MustCompile(`(?m)^\s*make test\s*$`)); !ok {
		t.Error("ci.yaml has no step that runs `make test`")
	}
	if _, ok := stepRunning(wf, regexp.MustCompile(`actionlint`)); !ok {
		t.Error("ci.yaml does not run actionlint")
	}
	if _, ok := stepRunning(wf, regexp.MustCompile(`(?m)^\s*make lint\s*$`)); !ok {
		t.Error("ci.yaml runs no linter (make lint)")
	}
	if _, ok := stepRunning(wf, regexp.MustCompile(`(?m)^\s*make test-unit\s*$`)); !ok {
		t.Error("ci.yaml does not run the fast tier (make test-unit)")
	}
	// make lint is staticcheck (besides gofmt and vet), pinned in the Makefile.
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^lint:.*\n(\t.*\n)*\t\$\(STATICCHECK\) \./\.\.\.`).Match(mk) ||
		!regexp.MustCompile(`(?m)^STATICCHECK_VERSION := v[0-9.]+$`).Match(mk) {
		t.Error("the Makefile's lint target does not run a pinned staticcheck over ./...")
	}
	if get(wf.root, "concurrency") == nil {
		t.Error("ci.yaml has no concurrency group: superseded runs go on")
	}
}

func TestTrainPromote(t *testing.T) {
	wf := mustWorkflow(t, "train-promote.yaml")
	on := get(wf.root, "on")
	for _, ev := range []string{"workflow_dispatch", "workflow_call", "pull_request"} {
		if !slices.Contains(triggers(wf), ev) {
			t.Errorf("train-promote.yaml is not triggered by %s (on: %v)", ev, triggers(wf))
		}
	}
	// The same inputs for a person (workflow_dispatch) and a caller (workflow_call).
	wantInputs := []string{"max_latency_ratio", "max_regression", "min_accuracy", "version"}
	for _, ev := range []string{"workflow_dispatch", "workflow_call"} {
		got := keys(path(on, ev, "inputs"))
		slices.Sort(got)
		if !slices.Equal(got, wantInputs) {
			t.Errorf("train-promote.yaml %s inputs: %v, want %v", ev, got, wantInputs)
		}
	}

	push, ok := stepRunning(wf, regexp.MustCompile(`bin/promote push `))
	if !ok {
		t.Fatal("train-promote.yaml does not run `bin/promote push`")
	}
	if run := push.field("run"); !strings.Contains(run, "--holdout") || !strings.Contains(run, "git_sha=") || !strings.Contains(run, "run_id=") {
		t.Errorf("%s: push without --holdout and --meta git_sha=, run_id=:\n%s", push, run)
	}
	gate, ok := stepRunning(wf, regexp.MustCompile(`bin/promote gate `))
	if !ok {
		t.Fatal("train-promote.yaml does not run `bin/promote gate`")
	}
	for _, flag := range []string{"--holdout", "--min-accuracy", "--max-regression", "--max-latency-ratio", "--report-dir"} {
		if !strings.Contains(gate.field("run"), flag) {
			t.Errorf("%s: promote gate without %s", gate, flag)
		}
	}

	// The report goes out whatever the gate said.
	var uploaded, commented bool
	for _, s := range steps(wf) {
		switch {
		case strings.HasPrefix(s.field("uses"), "actions/upload-artifact@"):
			uploaded = true
			if !strings.Contains(s.field("if"), "always()") {
				t.Errorf("%s: the report upload must run if: always()", s)
			}
		case strings.Contains(s.field("run"), "comments") || strings.Contains(s.field("run"), "gh pr comment") ||
			strings.HasPrefix(s.field("uses"), "actions/github-script@"):
			commented = true
			if cond := s.field("if"); !strings.Contains(cond, "always()") || !strings.Contains(cond, "pull_request") {
				t.Errorf("%s: the pull-request comment must run if: always() on pull_request events, has if: %q", s, cond)
			}
		}
	}
	if !uploaded {
		t.Error("train-promote.yaml does not upload the report as an artifact")
	}
	if !commented {
		t.Error("train-promote.yaml does not comment the report on the pull request")
	}

	release, ok := stepRunning(wf, regexp.MustCompile(`bin/promote canary start `))
	if !ok {
		t.Fatal("train-promote.yaml does not start a canary release (bin/promote canary start)")
	}
	if cond := release.field("if"); !strings.Contains(cond, "github.event_name != 'pull_request'") || !strings.Contains(cond, "refs/heads/main") {
		t.Errorf("%s: the release must be skipped on pull requests and off main, has if: %q", release, cond)
	}
	if strings.Contains(release.field("run"), "--force") {
		t.Errorf("%s: the release must not override the gates (--force)", release)
	}

	// The registry is S3, configured from variables; credentials from OIDC.
	jobs := get(wf.root, "jobs")
	var sawRegistry, sawOIDC bool
	for _, job := range keys(jobs) {
		j := get(jobs, job)
		if reg := path(j, "env", "MODELGATE_REGISTRY"); reg != nil && strings.HasPrefix(reg.Value, "s3://${{ vars.") {
			sawRegistry = true
		}
		if v := path(j, "permissions", "id-token"); v != nil && v.Value == "write" {
			sawOIDC = true
		}
	}
	if !sawRegistry {
		t.Error("train-promote.yaml: no job sets MODELGATE_REGISTRY to s3://${{ vars.… }}")
	}
	if !sawOIDC {
		t.Error("train-promote.yaml: no job has id-token: write for OIDC credentials")
	}
}
