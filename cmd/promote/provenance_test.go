package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/internal/onnx"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/signing"
)

// TestReleaseChain runs the signed release flow on both backends: gate
// reports signed at gate time, release actions recorded with their actor,
// the gate report's digest and a signature, a signed failed gate that
// --force cannot pass without an override key, and promote verify
// catching each way a writer of the bucket could change the chain.
func TestReleaseChain(t *testing.T) { onBothBackends(t, "chain", testReleaseChain) }

var headRE = regexp.MustCompile(`release history head: (\d+:[0-9a-f]{64})`)

func testReleaseChain(t *testing.T, reg string, b registry.Bucket) {
	keys := t.TempDir()
	for _, k := range []string{"ci", "admin"} {
		if r := promote(t, reg, "keygen", "--out", filepath.Join(keys, k)); r.code != 0 {
			t.Fatalf("keygen: %+v", r)
		}
	}
	ciKey := filepath.Join(keys, "ci", signing.PrivateKeyFile)
	adminKey := filepath.Join(keys, "admin", signing.PrivateKeyFile)
	t.Setenv(envTrustedKeys, filepath.Join(keys, "ci", signing.PublicKeyFile))
	t.Setenv(envOverrideKeys, filepath.Join(keys, "admin", signing.PublicKeyFile))
	t.Setenv(envSignKey, ciKey)
	t.Setenv(envActor, "ci-pipeline")
	holdout := "../../examples/breast-cancer/holdout.csv"
	model, err := os.ReadFile(demo)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	get := func(key string) []byte {
		t.Helper()
		rc, err := b.Get(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		data, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	put := func(key string, data []byte) {
		t.Helper()
		if err := b.Upload(t.Context(), key, strings.NewReader(string(data))); err != nil {
			t.Fatal(err)
		}
	}
	const model3 = "models/breast-cancer/versions/3/"
	const releaseKey = "models/breast-cancer/release.json"

	mustOK := func(args ...string) result {
		t.Helper()
		r := promote(t, reg, args...)
		if r.code != 0 {
			t.Fatalf("%v: %+v", args, r)
		}
		return r
	}
	refused := func(args []string, says string) {
		t.Helper()
		r := promote(t, reg, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "refused, nothing changed") || !strings.Contains(r.stderr, says) {
			t.Fatalf("%v: %+v, want exit 1, refused, saying %q", args, r, says)
		}
	}
	mustOK("push", "breast-cancer", "1", demo, "--holdout", holdout)
	mustOK("push", "breast-cancer", "2", write("2.onnx", append(append([]byte{}, model...), 0x52, 0x00)), "--holdout", holdout)
	mustOK("push", "breast-cancer", "3", write("3.onnx", testmodels.Identity(onnx.Float, -1, 30)), "--holdout", holdout)
	if r := mustOK("gate", "breast-cancer", "2", "--max-latency-ratio", "0"); !strings.Contains(r.stderr, "gate report of breast-cancer version 2 signed with key") {
		t.Fatalf("gate with $%s: %+v", envSignKey, r)
	}
	if r := promote(t, reg, "gate", "breast-cancer", "3"); r.code != 1 {
		t.Fatalf("gate of a broken contract: %+v", r)
	}

	// A signed failure: --force alone, or signed by CI's key, is not
	// enough; an override key's signature is.
	refused([]string{"canary", "start", "breast-cancer", "3", "--force", "--reason", "hotfix"}, "is not among the override keys")
	refused([]string{"stable", "breast-cancer", "3", "--force", "--reason", "hotfix"}, "is not among the override keys")
	t.Setenv(envSignKey, "")
	refused([]string{"canary", "start", "breast-cancer", "3", "--force", "--reason", "hotfix"}, "sign the action with --sign-key")
	r := mustOK("canary", "start", "breast-cancer", "3", "--force", "--reason", "hotfix", "--sign-key", adminKey, "--actor", "alice")
	if !strings.Contains(r.stderr, "failed gate overridden with override key") {
		t.Fatalf("override: %+v", r)
	}
	t.Setenv(envSignKey, ciKey)
	mustOK("canary", "abort", "breast-cancer", "--reason", "done")

	// Tampering with version 3's gate report: --force does not help.
	report3, sig3 := get(model3+"gate/report.json"), get(model3+"gate/report.dsse.json")
	put(model3+"gate/report.json", []byte(`{"verdict":"pass"}`))
	refused([]string{"canary", "start", "breast-cancer", "3", "--force", "--reason", "x", "--sign-key", adminKey}, "(digest_mismatch)")
	put(model3+"gate/report.json", report3)
	put(model3+"gate/report.dsse.json", get("models/breast-cancer/versions/2/gate/report.dsse.json"))
	refused([]string{"canary", "start", "breast-cancer", "3"}, "(other_version)")
	put(model3+"gate/report.dsse.json", sig3)

	// An unsigned passing report does not count when keys are trusted.
	api, err := registry.Open(t.Context(), reg, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.PutGateReport(t.Context(), "breast-cancer", "1", []byte(`{"verdict":"pass"}`), nil); err != nil {
		t.Fatal(err)
	}
	mustOK("stable", "breast-cancer", "2", "--actor", "bob")
	refused([]string{"stable", "breast-cancer", "1"}, "unsigned gate report")

	// The history says who did what, on which report, signed.
	r = mustOK("verify", "breast-cancer", "--strict", "-o", "json")
	var v verifyView
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatal(err)
	}
	if v.Verdict != "verified" || len(v.History) != 4 {
		t.Fatalf("verify: %s", r.stdout)
	}
	want := []struct{ action, actor string }{{"initial-stable", "ci-pipeline"}, {"canary-start", "alice"}, {"canary-abort", "ci-pipeline"}, {"stable", "bob"}}
	for i, w := range want {
		h := v.History[i]
		if h.Action != w.action || h.Actor != w.actor || h.Signature != "verified" || h.Link != "ok" {
			t.Errorf("event %d: %+v, want %s by %s, signed and linked", i+1, h, w.action, w.actor)
		}
	}
	if got := v.History[3]; got.GateReport == "" || got.GateReport != v.Versions[0].GateSHA256 {
		t.Errorf("the stable event records gate report %q; version 2's is %q", got.GateReport, v.Versions[0].GateSHA256)
	}
	if v.Versions[0].Model != "verified" || v.Versions[0].Gate != "pass" {
		t.Errorf("version 2: %+v", v.Versions[0])
	}
	oldRelease := get(releaseKey)

	// A later action, whose head CI records.
	r = mustOK("rollback", "breast-cancer", "--reason", "drill")
	m := headRE.FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("rollback printed no history head: %+v", r)
	}
	head := m[1]
	mustOK("verify", "breast-cancer", "--head", head)
	newRelease := get(releaseKey)

	// Each change of release.json outside promote, caught.
	edit := func(f func(st map[string]any)) []byte {
		var st map[string]any
		if err := json.Unmarshal(newRelease, &st); err != nil {
			t.Fatal(err)
		}
		f(st)
		out, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	event := func(st map[string]any, i int) map[string]any { return st["history"].([]any)[i].(map[string]any) }
	for _, tc := range []struct {
		name, head, says string
		data             []byte
	}{
		{"actor rewritten", "", "bad_signature", edit(func(st map[string]any) { event(st, 3)["actor"] = "mallory" })},
		{"stable changed without an event", "", "edited outside promote", edit(func(st map[string]any) { st["stable"] = "3" })},
		{"an event removed", "", "links to", edit(func(st map[string]any) {
			h := st["history"].([]any)
			st["history"] = append(h[:1:1], h[2:]...)
		})},
		{"replay of an older release.json", head, "an older release.json was put back", oldRelease},
	} {
		put(releaseKey, tc.data)
		args := []string{"verify", "breast-cancer"}
		if tc.head != "" {
			args = append(args, "--head", tc.head)
		}
		r := promote(t, reg, args...)
		if r.code != 1 || !strings.Contains(r.stdout, "PROBLEM: ") || !strings.Contains(r.stdout, tc.says) || !strings.Contains(r.stdout, "verdict: tampered") {
			t.Errorf("%s: verify %+v, want exit 1 with a problem saying %q", tc.name, r, tc.says)
		}
	}
	// The chain alone cannot see a replay: without --head it verifies.
	put(releaseKey, oldRelease)
	mustOK("verify", "breast-cancer")
	put(releaseKey, newRelease)
	mustOK("verify", "breast-cancer", "--head", head)

	// An unsigned action is a warning, which --strict fails on.
	t.Setenv(envSignKey, "")
	mustOK("stable", "breast-cancer", "2")
	if r := promote(t, reg, "verify", "breast-cancer", "--strict"); r.code != 1 || !strings.Contains(r.stdout, "operator event(s) are unsigned") {
		t.Fatalf("verify --strict of an unsigned event: %+v", r)
	}
	if r := promote(t, reg, "verify", "breast-cancer", "--trusted-keys", filepath.Join(keys, "admin", signing.PublicKeyFile), "--override-keys", filepath.Join(keys, "admin", signing.PublicKeyFile)); r.code != 1 || !strings.Contains(r.stdout, "(untrusted_key)") {
		t.Fatalf("verify with another trusted key: %+v", r)
	}
}
