package signing

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPAE: the DSSE spec's own example (protocol.md, "Test vector"-style):
// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body.
func TestPAE(t *testing.T) {
	got := string(PAE("http://example.com/HelloWorld", []byte("hello world")))
	want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
	if got != want {
		t.Fatalf("PAE = %q, want %q", got, want)
	}
	if got := string(PAE("", nil)); got != "DSSEv1 0  0 " {
		t.Fatalf("PAE of empty = %q", got)
	}
}

func mustSigner(t *testing.T) *Signer {
	t.Helper()
	s, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustKeys(t *testing.T, signers ...*Signer) KeySet {
	t.Helper()
	var pubs []any
	for _, s := range signers {
		pubs = append(pubs, s.Public())
	}
	ks := KeySet{}
	for _, p := range pubs {
		id, err := KeyID(p)
		if err != nil {
			t.Fatal(err)
		}
		ks[id] = p
	}
	return ks
}

// rewrite decodes an envelope, lets change edit it, and encodes it again.
func rewrite(t *testing.T, env []byte, change func(*Envelope)) []byte {
	t.Helper()
	var e Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	change(&e)
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rewriteStatement edits the signed statement without signing again.
func rewriteStatement(t *testing.T, env []byte, change func(*Statement)) []byte {
	return rewrite(t, env, func(e *Envelope) {
		body, _ := base64.StdEncoding.DecodeString(e.Payload)
		var st Statement
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		change(&st)
		b, _ := json.Marshal(st)
		e.Payload = base64.StdEncoding.EncodeToString(b)
	})
}

func TestVerify(t *testing.T) {
	model := []byte("onnx bytes")
	manifest := []byte(`{"name":"m","version":"v1"}`)
	files := []File{FileOf("manifest.json", manifest), FileOf("model.onnx", model)}
	ed := mustSigner(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := newSigner(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	other := mustSigner(t)
	sign := func(s *Signer, name, version string) []byte {
		env, err := s.Sign(name, version, files)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	good := sign(ed, "m", "v1")
	trusted := mustKeys(t, ed, ec)

	for _, tc := range []struct {
		name     string
		env      []byte
		keys     KeySet
		version  string
		model    []byte
		want     error
		contains string
	}{
		{name: "ed25519", env: good},
		{name: "ecdsa p-256", env: sign(ec, "m", "v1")},
		{name: "no keyid still verifies", env: rewrite(t, good, func(e *Envelope) { e.Signatures[0].KeyID = "" })},
		{name: "tampered model bytes", env: good, model: []byte("onnx bytez"), want: ErrDigestMismatch, contains: "model.onnx has sha256"},
		{name: "tampered statement digest", env: rewriteStatement(t, good, func(st *Statement) {
			st.Subject[1].Digest["sha256"] = strings.Repeat("0", 64)
		}), want: ErrBadSignature, contains: "changed after signing"},
		{name: "tampered payload type", env: rewrite(t, good, func(e *Envelope) { e.PayloadType = "application/json" }), want: ErrMalformed, contains: "payloadType"},
		{name: "untrusted key", env: sign(other, "m", "v1"), want: ErrUntrustedKey, contains: "signed by key " + other.KeyID()[:12]},
		{name: "other version", env: sign(ed, "m", "v2"), want: ErrOtherVersion, contains: `version "v2", not model "m" version "v1"`},
		{name: "other model", env: sign(ed, "n", "v1"), want: ErrOtherVersion},
		{name: "asked for another version", env: good, version: "v2", want: ErrOtherVersion},
		{name: "truncated", env: good[:len(good)/2], want: ErrMalformed, contains: "not a JSON envelope"},
		{name: "garbled base64", env: rewrite(t, good, func(e *Envelope) { e.Payload = "%%%" }), want: ErrMalformed, contains: "base64"},
		{name: "garbled signature", env: rewrite(t, good, func(e *Envelope) { e.Signatures[0].Sig = "AAAA" }), want: ErrBadSignature},
		{name: "no signatures", env: rewrite(t, good, func(e *Envelope) { e.Signatures = nil }), want: ErrMalformed, contains: "no signatures"},
		{name: "empty", env: nil, want: ErrMalformed},
		{name: "no trusted keys", env: good, keys: KeySet{}, want: ErrNoTrustedKeys},
		{name: "only the other key trusted", env: good, keys: mustKeys(t, other), want: ErrUntrustedKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := trusted
			if tc.keys != nil {
				keys = tc.keys
			}
			version := "v1"
			if tc.version != "" {
				version = tc.version
			}
			v, err := keys.Verify(tc.env, "m", version)
			if err == nil {
				m := model
				if tc.model != nil {
					m = tc.model
				}
				err = v.Check("model.onnx", m)
				if err == nil {
					err = v.Check("manifest.json", manifest)
				}
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("err = %q, want it to say %q", err, tc.contains)
			}
			if Reason(err) == "other" {
				t.Fatalf("Reason(%v) = other", err)
			}
		})
	}
}

func TestCheckFile(t *testing.T) {
	s := mustSigner(t)
	env, err := s.Sign("m", "v1", []File{FileOf("model.onnx", []byte("abc"))})
	if err != nil {
		t.Fatal(err)
	}
	v, err := mustKeys(t, s).Verify(env, "m", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyID != s.KeyID() {
		t.Fatalf("KeyID = %s, want %s", v.KeyID, s.KeyID())
	}
	if err := v.Check("holdout.csv", []byte("x")); !errors.Is(err, ErrNotSigned) {
		t.Fatalf("unsigned file: %v", err)
	}
	f := FileOf("model.onnx", []byte("abc"))
	f.Size = 4
	if err := v.CheckFile(f); !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "4 bytes, signed 3") {
		t.Fatalf("wrong size: %v", err)
	}
	if _, err := s.Sign("m", "v1", []File{{Name: "a"}, {Name: "a"}}); err == nil {
		t.Fatal("repeated file name signed")
	}
}

func TestKeyFilesAndTrust(t *testing.T) {
	dir := t.TempDir()
	s := mustSigner(t)
	priv, pub, err := WriteKeyPair(filepath.Join(dir, "keys"), s)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(priv)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v, want 0600", fi.Mode().Perm())
	}
	if _, _, err := WriteKeyPair(filepath.Join(dir, "keys"), s); err == nil {
		t.Fatal("WriteKeyPair replaced a private key")
	}
	loaded, err := LoadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.KeyID() != s.KeyID() {
		t.Fatal("the loaded key has another id")
	}
	// A private key is never a trusted key.
	if _, err := NewTrust([]string{priv}); err == nil || !strings.Contains(err.Error(), "never a trusted key") {
		t.Fatalf("private key as trusted key: %v", err)
	}
	if _, err := NewTrust([]string{filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("missing path accepted")
	}
	// A directory of trusted keys is read at each Keys call: rotation.
	trustDir := filepath.Join(dir, "trusted")
	if err := os.Mkdir(trustDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := NewTrust([]string{trustDir}); !errors.Is(err, ErrNoTrustedKeys) {
		t.Fatalf("empty directory: %v", err)
	}
	data, _ := os.ReadFile(pub)
	if err := os.WriteFile(filepath.Join(trustDir, "a.pem"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := mustSigner(t)
	pub2, _ := MarshalPublicKey(s2.Public())
	if err := os.WriteFile(filepath.Join(trustDir, "b.pub"), pub2, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(trustDir, "README"), []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrust([]string{trustDir})
	if err != nil {
		t.Fatal(err)
	}
	env, _ := s.Sign("m", "v1", []File{FileOf("model.onnx", []byte("x"))})
	if _, err := tr.Verify(env, "m", "v1"); err != nil {
		t.Fatalf("two trusted keys: %v", err)
	}
	if err := os.Remove(filepath.Join(trustDir, "a.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Verify(env, "m", "v1"); !errors.Is(err, ErrUntrustedKey) {
		t.Fatalf("after removing its key: %v", err)
	}
}
