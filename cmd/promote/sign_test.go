package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/internal/miniotest"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/signing"
)

func TestKeygen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	r := promote(t, "", "keygen", "--out", dir)
	if r.code != 0 || !strings.Contains(r.stdout, "mode 0600") {
		t.Fatalf("keygen: %+v", r)
	}
	fi, err := os.Stat(filepath.Join(dir, signing.PrivateKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key: %v %v", fi, err)
	}
	if _, err := signing.NewTrust([]string{filepath.Join(dir, signing.PublicKeyFile)}); err != nil {
		t.Fatalf("public key: %v", err)
	}
	if r := promote(t, "", "keygen", "--out", dir); r.code != 1 || !strings.Contains(r.stderr, "never overwritten") {
		t.Fatalf("keygen over a key: %+v", r)
	}
	if r := promote(t, "", "keygen"); r.code != 2 {
		t.Fatalf("keygen without --out: %+v", r)
	}
}

// The signed flow on both backends: push --sign-key (and
// $MODELGATE_SIGN_KEY); with --trusted-keys, gate, stable (even --force)
// and canary start refuse an unsigned version, one signed by an untrusted
// key and one whose model bytes were changed in the bucket.
func TestSignedRelease(t *testing.T) { onBothBackends(t, "signed", testSignedRelease) }

// onBothBackends runs test on a local registry and on a MinIO one (bucket
// name), each with the bucket under it, for tampering through the bucket.
func onBothBackends(t *testing.T, name string, test func(t *testing.T, reg string, b registry.Bucket)) {
	t.Run("local", func(t *testing.T) {
		dir := t.TempDir()
		b, err := registry.NewLocal(dir)
		if err != nil {
			t.Fatal(err)
		}
		test(t, dir, b)
	})
	t.Run("minio", func(t *testing.T) {
		srv := miniotest.Start(t)
		srv.Setenv(t)
		reg := "s3://" + name + "/models"
		r, err := registry.Open(t.Context(), reg, registry.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.EnsureStorage(t.Context()); err != nil {
			t.Fatal(err)
		}
		b, err := registry.NewS3(t.Context(), registry.S3Options{
			Endpoint: srv.Endpoint, Bucket: name, Prefix: "models", Region: miniotest.Region,
			Insecure: true, PathStyle: true, Creds: srv.Credentials(),
		})
		if err != nil {
			t.Fatal(err)
		}
		test(t, reg, b)
	})
}

func testSignedRelease(t *testing.T, reg string, b registry.Bucket) {
	keys := t.TempDir()
	if r := promote(t, reg, "keygen", "--out", filepath.Join(keys, "ci")); r.code != 0 {
		t.Fatalf("keygen: %+v", r)
	}
	if r := promote(t, reg, "keygen", "--out", filepath.Join(keys, "rogue")); r.code != 0 {
		t.Fatalf("keygen: %+v", r)
	}
	ciKey := filepath.Join(keys, "ci", signing.PrivateKeyFile)
	rogueKey := filepath.Join(keys, "rogue", signing.PrivateKeyFile)
	trusted := filepath.Join(keys, "ci", signing.PublicKeyFile)
	model, err := os.ReadFile(demo)
	if err != nil {
		t.Fatal(err)
	}
	file := func(v string, extra ...byte) string {
		p := filepath.Join(t.TempDir(), v+".onnx")
		if err := os.WriteFile(p, append(append([]byte{}, model...), extra...), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r := promote(t, reg, "push", "breast-cancer", "1", demo, "--holdout", demoHoldout, "--sign-key", ciKey)
	if r.code != 0 || !strings.Contains(r.stdout, "signed breast-cancer version 1 with key") {
		t.Fatalf("signed push: %+v", r)
	}
	t.Setenv(envSignKey, ciKey)
	if r := promote(t, reg, "push", "breast-cancer", "2", file("2", 0x52, 0x00)); r.code != 0 || !strings.Contains(r.stdout, "signed breast-cancer version 2") {
		t.Fatalf("push signed by $%s: %+v", envSignKey, r)
	}
	t.Setenv(envSignKey, "")
	if r := promote(t, reg, "push", "breast-cancer", "3", file("3", 0x52, 0x01, 0x00)); r.code != 0 || strings.Contains(r.stdout, "signed breast-cancer") {
		t.Fatalf("unsigned push: %+v", r)
	}
	if r := promote(t, reg, "push", "breast-cancer", "4", file("4", 0x52, 0x02, 0x00, 0x00), "--sign-key", rogueKey); r.code != 0 {
		t.Fatalf("rogue push: %+v", r)
	}
	if r := promote(t, reg, "push", "breast-cancer", "5", file("5", 0x52, 0x03, 0x00, 0x00, 0x00), "--sign-key", ciKey); r.code != 0 {
		t.Fatalf("push 5: %+v", r)
	}
	// Version 5's bytes are changed in the bucket after signing (same size).
	if err := b.Upload(t.Context(), "models/breast-cancer/versions/5/model.onnx", strings.NewReader(string(append(append([]byte{}, model...), 0x52, 0x03, 0x00, 0x00, 0x01)))); err != nil {
		t.Fatal(err)
	}
	api, err := registry.Open(context.Background(), reg, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ci, err := signing.LoadPrivateKey(ciKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"2", "3", "4", "5"} {
		if err := api.PutSignedGateReport(t.Context(), ci, "breast-cancer", v, []byte(`{"verdict":"pass"}`), []byte("# pass")); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		version, says string
	}{
		{"3", "(unsigned)"},
		{"4", "(untrusted_key)"},
		{"5", "(digest_mismatch)"},
	} {
		for _, args := range [][]string{
			{"stable", "breast-cancer", tc.version},
			{"stable", "breast-cancer", tc.version, "--force", "--reason", "try"},
			{"canary", "start", "breast-cancer", tc.version},
			{"gate", "breast-cancer", tc.version},
		} {
			args = append(args, "--trusted-keys", trusted)
			if r := promote(t, reg, args...); r.code != 1 || !strings.Contains(r.stderr, "refused, nothing changed") || !strings.Contains(r.stderr, tc.says) {
				t.Errorf("%v: %+v, want exit 1 saying %s", args, r, tc.says)
			}
		}
	}
	if r := promote(t, reg, "status", "breast-cancer", "--output", "json"); !strings.Contains(r.stdout, `"stable": "1"`) {
		t.Fatalf("the refusals changed the release: %+v", r)
	}
	// Without trusted keys nothing is checked, as before.
	if r := promote(t, reg, "stable", "breast-cancer", "3"); r.code != 0 {
		t.Fatalf("stable 3 without trusted keys: %+v", r)
	}
	// status with the keys says what a gateway with them would do.
	if r := promote(t, reg, "status", "breast-cancer", "--trusted-keys", trusted); r.code != 0 || !strings.Contains(r.stdout, "signature: 3 REFUSED (unsigned)") {
		t.Fatalf("status of an unsigned stable: %+v", r)
	}
	t.Setenv(envTrustedKeys, trusted)
	if r := promote(t, reg, "stable", "breast-cancer", "2"); r.code != 0 || !strings.Contains(r.stderr, "signature verified") {
		t.Fatalf("stable of a signed version with $%s: %+v", envTrustedKeys, r)
	}
	if r := promote(t, reg, "status", "breast-cancer", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"2": "verified (key `) {
		t.Fatalf("status of a signed stable: %+v", r)
	}
	// promote sign re-signs a stored version: the untrusted one, by CI.
	if r := promote(t, reg, "sign", "breast-cancer", "4", "--sign-key", ciKey); r.code != 0 {
		t.Fatalf("sign: %+v", r)
	}
	if r := promote(t, reg, "canary", "start", "breast-cancer", "4"); r.code != 0 {
		t.Fatalf("canary start of a re-signed version: %+v", r)
	}
}
