package catalog_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/modelgate/modelgate/signing"
)

// keyring is a directory of trusted public keys and the signers whose
// keys it holds, by file name.
type keyring struct {
	t   *testing.T
	dir string
}

func newKeyring(t *testing.T) *keyring { return &keyring{t: t, dir: t.TempDir()} }

// add makes a key, trusts it (unless untrusted) and returns its signer.
func (k *keyring) add(name string, trusted bool) *signing.Signer {
	k.t.Helper()
	s, err := signing.GenerateKey()
	if err != nil {
		k.t.Fatal(err)
	}
	if trusted {
		pem, err := signing.MarshalPublicKey(s.Public())
		if err != nil {
			k.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(k.dir, name+".pem"), pem, 0o644); err != nil {
			k.t.Fatal(err)
		}
	}
	return s
}

func (k *keyring) remove(name string) {
	k.t.Helper()
	if err := os.Remove(filepath.Join(k.dir, name+".pem")); err != nil {
		k.t.Fatal(err)
	}
}

func (k *keyring) trust() *signing.Trust {
	k.t.Helper()
	tr, err := signing.NewTrust([]string{k.dir})
	if err != nil {
		k.t.Fatal(err)
	}
	return tr
}

func (f *fixture) sign(s *signing.Signer, name, version string) {
	f.t.Helper()
	if _, err := f.reg.Registry.SignVersion(f.t.Context(), s, name, version); err != nil {
		f.t.Fatal(err)
	}
}

func withTrust(tr *signing.Trust, require bool) func(*catalog.Options) {
	return func(o *catalog.Options) { o.Trust, o.RequireSignature = tr, require }
}

// refused checks that the stable version the release names is refused
// with reason, while serving keeps serving, and that the refusal shows in
// Status and counts in the metric.
func (f *fixture) refused(serving, reason string, count float64) {
	f.t.Helper()
	if err := f.cat.Sync(f.t.Context()); err == nil || !strings.Contains(err.Error(), "("+reason+")") {
		f.t.Fatalf("Sync: %v, want a %s refusal", err, reason)
	}
	f.acquire("m", "", serving).Release()
	ms := f.modelStatus("m")
	if ms.Version != serving || !strings.Contains(ms.Error, "refused, signature check failed ("+reason+")") {
		f.t.Fatalf("status %+v: want version %s serving and a %s refusal", ms, serving, reason)
	}
	if got := series(f.t, f.metrics, "modelgate_signature_refusals_total")["model=m,reason="+reason]; got != count {
		f.t.Fatalf("modelgate_signature_refusals_total{reason=%s} = %v, want %v", reason, got, count)
	}
}

// countingLoader counts the model bytes that reach it.
type countingLoader struct {
	servingtest.Loader
	n atomic.Int64
}

func (l *countingLoader) Load(b []byte, o serving.ModelOptions) (serving.Model, error) {
	l.n.Add(1)
	return l.Loader.Load(b, o)
}

// With trusted keys, every kind of tampering with a version in the real
// local registry is refused before the loader sees its bytes, and the
// version serving keeps serving.
func TestSignatureRefusals(t *testing.T) {
	keys := newKeyring(t)
	ci, rogue := keys.add("ci", true), keys.add("rogue", false)
	var loader countingLoader
	f := newFixture(t, nil, withTrust(keys.trust(), true), func(o *catalog.Options) { o.Loader = &loader })
	f.push("m", "1", modelBytes("1"))
	f.sign(ci, "m", "1")
	f.sync()
	f.acquire("m", "", "1").Release()

	steps := []struct {
		version, reason string
		prepare         func(version string)
	}{
		{"2", "unsigned", func(string) {}},
		{"3", "untrusted_key", func(v string) { f.sign(rogue, "m", v) }},
		{"4", "digest_mismatch", func(v string) {
			f.sign(ci, "m", v)
			b := modelBytes(v)
			b[len(b)-1] ^= 1 // same size, other bytes
			if err := os.WriteFile(f.modelFile("m", v), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"5", "other_version", func(v string) {
			env, err := os.ReadFile(filepath.Join(f.root, "models/m/versions/1/signature.dsse.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(f.root, "models/m/versions", v, "signature.dsse.json"), env, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, s := range steps {
		f.push("m", s.version, modelBytes(s.version))
		s.prepare(s.version)
		f.setStable("m", s.version)
		before := loader.n.Load() // push loads the model for its signature
		f.refused("1", s.reason, 1)
		if loader.n.Load() != before {
			t.Fatalf("version %s (%s) reached the loader", s.version, s.reason)
		}
	}
	if got := series(t, f.metrics, "modelgate_model_load_failures_total")["model=m,reason=signature"]; got != 4 {
		t.Fatalf("load failures by reason signature = %v, want 4", got)
	}
}

// A tampered manifest: the attacker replaces the model and fixes the
// manifest's digest to match it, which the registry's digest check
// accepts; the signature over the manifest's bytes does not.
func TestSignatureTamperedManifest(t *testing.T) {
	keys := newKeyring(t)
	ci := keys.add("ci", true)
	f := newFixture(t, nil, withTrust(keys.trust(), true))
	f.push("m", "1", modelBytes("1"))
	f.sign(ci, "m", "1")
	f.push("m", "2", modelBytes("2"))
	f.sign(ci, "m", "2")
	f.sync()
	// Version 2's files become version 3's bytes, with a manifest to match.
	evil := modelBytes("3")
	if err := os.WriteFile(f.modelFile("m", "2"), evil, 0o644); err != nil {
		t.Fatal(err)
	}
	man := filepath.Join(f.root, "models/m/versions/2/manifest.json")
	raw, err := os.ReadFile(man)
	if err != nil {
		t.Fatal(err)
	}
	m, err := f.reg.Registry.Manifest(t.Context(), "m", "2")
	if err != nil {
		t.Fatal(err)
	}
	raw = []byte(strings.Replace(string(raw), m.SHA256, signing.FileOf("model.onnx", evil).SHA256, 1))
	if err := os.WriteFile(man, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	f.setStable("m", "2")
	f.refused("1", "digest_mismatch", 1)
	if ms := f.modelStatus("m"); !strings.Contains(ms.Error, "manifest.json has sha256") {
		t.Fatalf("status error %q does not name the manifest", ms.Error)
	}
}

// Key rotation: with two trusted keys, removing one refuses the versions
// only it signed at their next load; the version already serving, signed
// by it, keeps serving until a swap replaces it, and is then refused too.
func TestSignatureKeyRotation(t *testing.T) {
	keys := newKeyring(t)
	old, next := keys.add("old", true), keys.add("new", true)
	f := newFixture(t, nil, withTrust(keys.trust(), true))
	f.push("m", "1", modelBytes("1"))
	f.sign(old, "m", "1")
	f.push("m", "2", modelBytes("2"))
	f.sign(next, "m", "2")
	f.sync()
	held := f.acquire("m", "", "1") // a request in flight on 1, released after the swap

	keys.remove("old")
	f.push("m", "3", modelBytes("3"))
	f.sign(old, "m", "3")
	f.setStable("m", "3")
	// 1, signed by the removed key, keeps serving: it is not loaded again.
	f.refused("1", "untrusted_key", 1)
	if isDone(held) {
		t.Fatal("the serving session was closed by the key's removal")
	}
	// A swap to 2 (the new key) replaces it.
	f.setStable("m", "2")
	f.sync()
	f.acquire("m", "", "2").Release()
	held.Release()
	waitDone(t, held)
	// Going back to 1 is a load, and 1 is now refused.
	f.setStable("m", "1")
	f.refused("2", "untrusted_key", 2)
}

// RequireSignature off (the migration mode): an unsigned version loads,
// one that fails its signature does not.
func TestSignatureNotRequired(t *testing.T) {
	keys := newKeyring(t)
	rogue := keys.add("rogue", false)
	keys.add("ci", true)
	f := newFixture(t, []string{"m/1"}, withTrust(keys.trust(), false))
	f.sync()
	f.acquire("m", "", "1").Release()
	f.push("m", "2", modelBytes("2"))
	f.sign(rogue, "m", "2")
	f.setStable("m", "2")
	f.refused("1", "untrusted_key", 1)
}
