package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/signing"
)

// keyDir writes a trusted public key into a new directory.
func keyDir(t *testing.T) string {
	t.Helper()
	s, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := signing.MarshalPublicKey(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ci.pem"), pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSecurity(t *testing.T) {
	keys := keyDir(t)
	c, err := load(t)
	if err != nil {
		t.Fatal(err)
	}
	if c.Security.Require() || len(c.Security.TrustedKeys) != 0 {
		t.Fatalf("default: %+v", c.Security)
	}
	// Trusted keys turn require_signature on unless it is set.
	if c, err = load(t, "--trusted-keys", keys); err != nil || !c.Security.Require() {
		t.Fatalf("--trusted-keys: %+v %v", c.Security, err)
	}
	if c, err = load(t, "--trusted-keys", keys, "--require-signature=false"); err != nil || c.Security.Require() {
		t.Fatalf("--require-signature=false: %+v %v", c.Security, err)
	}
	yaml := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(yaml, []byte("security:\n  trusted_keys: ["+keys+"]\n  require_signature: false\n"), 0o644)
	if c, err = load(t, "--config", yaml); err != nil || c.Security.Require() || c.Security.TrustedKeys[0] != keys {
		t.Fatalf("file: %+v %v", c.Security, err)
	}
	t.Setenv("MODELGATE_SECURITY_TRUSTED_KEYS", keys)
	if c, err = load(t); err != nil || !c.Security.Require() || len(c.Security.TrustedKeys) != 1 {
		t.Fatalf("env: %+v %v", c.Security, err)
	}
	t.Setenv("MODELGATE_SECURITY_REQUIRE_SIGNATURE", "false")
	if c, err = load(t); err != nil || c.Security.Require() {
		t.Fatalf("env require false: %+v %v", c.Security, err)
	}
	t.Setenv("MODELGATE_SECURITY_TRUSTED_KEYS", "")
	t.Setenv("MODELGATE_SECURITY_REQUIRE_SIGNATURE", "")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--require-signature"}, "security.require_signature: is true but security.trusted_keys names no key"},
		{[]string{"--trusted-keys", filepath.Join(keys, "missing.pem")}, "security.trusted_keys: signing: trusted keys:"},
		{[]string{"--trusted-keys", t.TempDir()}, "security.trusted_keys: signing: no trusted keys"},
	} {
		_, err := load(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
