package registry_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/internal/miniotest"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/signing"
	"github.com/modelgate/modelgate/wire"
)

func TestSignaturesLocal(t *testing.T) {
	b, err := registry.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	testSignatures(t, b)
}

func testS3Signatures(t *testing.T, srv *miniotest.Server) {
	testSignatures(t, newS3(t, srv, srv.NewBucket(t), ""))
}

// trustOf writes the public keys of signers into a directory and returns
// its Trust.
func trustOf(t *testing.T, signers ...*signing.Signer) *signing.Trust {
	t.Helper()
	dir := t.TempDir()
	for i, s := range signers {
		pem, err := signing.MarshalPublicKey(s.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, string(rune('a'+i))+".pem"), pem, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := signing.NewTrust([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func newSigner(t *testing.T) *signing.Signer {
	t.Helper()
	s, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readKey(t *testing.T, b registry.Bucket, key string) []byte {
	t.Helper()
	data, _, err := b.ReadVersioned(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// testSignatures pushes and signs versions on b, tampers with them through
// the bucket as someone with write access to it would, and checks that
// every tampering is refused with its reason while the bytes stay as they
// are (nothing is deleted or repaired).
func testSignatures(t *testing.T, b registry.Bucket) {
	ctx := t.Context()
	r := registry.New(b, registry.Options{})
	key, other := newSigner(t), newSigner(t)
	trust := trustOf(t, key)
	spec := []wire.TensorSpec{{Name: "x", DType: wire.FP32, Shape: []int64{-1, 2}}}
	push := func(version string, model []byte, holdout []byte) {
		t.Helper()
		if _, _, err := r.Push(ctx, registry.PushRequest{Name: "m", Version: version, Model: model, Holdout: holdout, Inputs: spec, Outputs: spec}); err != nil {
			t.Fatal(err)
		}
	}
	sign := func(s *signing.Signer, version string) {
		t.Helper()
		if _, err := r.SignVersion(ctx, s, "m", version); err != nil {
			t.Fatal(err)
		}
	}
	key1 := func(version, object string) string { return "models/m/versions/" + version + "/" + object }

	push("good", []byte("model good"), []byte("a,b\n1,2\n"))
	if err := r.PutProfile(ctx, "m", "good", []byte(`{"features":[]}`)); err != nil {
		t.Fatal(err)
	}
	sign(key, "good")
	model, m, v, err := r.FetchSigned(ctx, trust, "m", "good")
	if err != nil {
		t.Fatalf("signed version: %v", err)
	}
	if string(model) != "model good" || m.Version != "good" || v.KeyID != key.KeyID() {
		t.Fatalf("FetchSigned = %q, %s, key %s", model, m.Version, v.KeyID)
	}
	if _, err := r.VerifyVersion(ctx, trust, "m", "good"); err != nil {
		t.Fatalf("VerifyVersion of a signed version: %v", err)
	}
	for _, f := range []string{"manifest.json", "model.onnx", "holdout.csv", "profile.json"} {
		if !v.Signed(f) {
			t.Errorf("%s is not signed", f)
		}
	}

	// Each case prepares a version (pushed and signed with key unless it
	// says otherwise), then tampers with it through the bucket.
	tampered := []byte("model evil")
	sum := sha256.Sum256(tampered)
	for _, tc := range []struct {
		name    string
		version string
		signer  *signing.Signer // nil: unsigned
		tamper  func(version string)
		verify  bool // only VerifyVersion sees it (the holdout, the profile)
		want    error
		says    string
	}{
		{name: "unsigned", version: "unsigned", want: signing.ErrUnsigned, says: "is unsigned"},
		{name: "untrusted key", version: "untrusted", signer: other, want: signing.ErrUntrustedKey, says: "signed by key " + other.KeyID()[:12]},
		{name: "tampered model bytes", version: "bytes", signer: key, tamper: func(v string) {
			upload(t, b, key1(v, "model.onnx"), "model byteZ") // same size, other bytes
		}, want: signing.ErrDigestMismatch, says: "want sha256"},
		{name: "tampered manifest", version: "manifest", signer: key, tamper: func(v string) {
			// The attacker replaces the model and fixes the manifest's
			// digest to match: the registry's own check passes, the
			// signature's does not.
			raw := readKey(t, b, key1(v, "manifest.json"))
			var old string
			for _, line := range strings.Split(string(raw), "\n") {
				if s, ok := strings.CutPrefix(strings.TrimSpace(line), `"sha256": "`); ok && old == "" {
					old = strings.TrimSuffix(s, `",`)
				}
			}
			raw = bytes.Replace(raw, []byte(old), []byte(hex.EncodeToString(sum[:])), 1)
			upload(t, b, key1(v, "model.onnx"), string(tampered))
			upload(t, b, key1(v, "manifest.json"), string(raw))
		}, want: signing.ErrDigestMismatch, says: "manifest.json has sha256"},
		{name: "swapped signature file", version: "swapped", signer: key, tamper: func(v string) {
			upload(t, b, key1(v, "signature.dsse.json"), string(readKey(t, b, key1("good", "signature.dsse.json"))))
		}, want: signing.ErrOtherVersion, says: `signed for model "m" version "good", not model "m" version "swapped"`},
		{name: "garbled signature file", version: "garbled", signer: key, tamper: func(v string) {
			env := readKey(t, b, key1(v, "signature.dsse.json"))
			upload(t, b, key1(v, "signature.dsse.json"), string(env[:len(env)/2]))
		}, want: signing.ErrMalformed},
		{name: "tampered holdout", version: "holdout", signer: key, verify: true, tamper: func(v string) {
			upload(t, b, key1(v, "holdout.csv"), "a,b\n9,9\n")
		}, want: signing.ErrDigestMismatch, says: "holdout.csv has sha256"},
		{name: "replaced profile", version: "profile", signer: key, verify: true, tamper: func(v string) {
			upload(t, b, key1(v, "profile.json"), `{"features":[{}]}`)
		}, want: signing.ErrDigestMismatch, says: "profile.json has sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			push(tc.version, []byte("model "+tc.version), []byte("a,b\n1,2\n"))
			if err := r.PutProfile(ctx, "m", tc.version, []byte(`{"features":[]}`)); err != nil {
				t.Fatal(err)
			}
			if tc.signer != nil {
				sign(tc.signer, tc.version)
			}
			if tc.tamper != nil {
				tc.tamper(tc.version)
			}
			before := readKey(t, b, key1(tc.version, "model.onnx"))
			var err error
			if tc.verify {
				if _, _, _, err := r.FetchSigned(ctx, trust, "m", tc.version); err != nil {
					t.Fatalf("FetchSigned does not read %s, but refused: %v", tc.name, err)
				}
				_, err = r.VerifyVersion(ctx, trust, "m", tc.version)
			} else {
				var got []byte
				got, _, _, err = r.FetchSigned(ctx, trust, "m", tc.version)
				if got != nil {
					t.Error("FetchSigned returned bytes with its refusal")
				}
				if _, verr := r.VerifyVersion(ctx, trust, "m", tc.version); !errors.Is(verr, tc.want) {
					t.Errorf("VerifyVersion: %v, want %v", verr, tc.want)
				}
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("err = %q, want it to say %q", err, tc.says)
			}
			if signing.Reason(err) == "other" {
				t.Errorf("Reason(%v) = other", err)
			}
			// Nothing lost: the bytes are as the tampering left them, and
			// the good version still verifies.
			if !bytes.Equal(readKey(t, b, key1(tc.version, "model.onnx")), before) {
				t.Error("the refusal changed the stored model")
			}
			if _, _, _, err := r.FetchSigned(ctx, trust, "m", "good"); err != nil {
				t.Errorf("the good version after the refusal: %v", err)
			}
		})
	}

	t.Run("re-signing with a new key", func(t *testing.T) {
		push("rotated", []byte("model rotated"), nil)
		sign(key, "rotated")
		newKey := newSigner(t)
		onlyNew := trustOf(t, newKey)
		if _, _, _, err := r.FetchSigned(ctx, onlyNew, "m", "rotated"); !errors.Is(err, signing.ErrUntrustedKey) {
			t.Fatalf("old key under the new trust: %v", err)
		}
		sign(newKey, "rotated")
		if _, _, _, err := r.FetchSigned(ctx, onlyNew, "m", "rotated"); err != nil {
			t.Fatalf("re-signed: %v", err)
		}
	})
	t.Run("data profile", func(t *testing.T) {
		if got, err := r.VerifiedProfile(ctx, trust, "m", "good"); err != nil || string(got) != `{"features":[]}` {
			t.Fatalf("VerifiedProfile of a signed profile = %q, %v", got, err)
		}
		if _, err := r.VerifiedProfile(ctx, trust, "m", "profile"); !errors.Is(err, signing.ErrDigestMismatch) {
			t.Errorf("a replaced profile: %v", err)
		}
		push("late-profile", []byte("model late"), nil)
		sign(key, "late-profile")
		if err := r.PutProfile(ctx, "m", "late-profile", []byte(`{"features":[]}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.VerifiedProfile(ctx, trust, "m", "late-profile"); !errors.Is(err, signing.ErrNotSigned) || !strings.Contains(err.Error(), "promote sign") {
			t.Errorf("a profile stored after signing: %v", err)
		}
		if _, err := r.VerifiedProfile(ctx, trust, "m", "rotated"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("no profile: %v", err)
		}
	})
	t.Run("gate reports", func(t *testing.T) {
		pass, fail := []byte(`{"verdict":"pass"}`), []byte(`{"verdict":"fail"}`)
		if err := r.PutSignedGateReport(ctx, key, "m", "good", pass, []byte("# pass")); err != nil {
			t.Fatal(err)
		}
		check, err := r.VerifyGateReport(ctx, trust, "m", "good")
		if err != nil || check.Verdict != "pass" || check.KeyID != key.KeyID() {
			t.Fatalf("VerifyGateReport = %+v, %v", check, err)
		}
		if want := signing.FileOf(signing.GateReportFile, pass).SHA256; check.SHA256 != want {
			t.Errorf("digest %s, want %s", check.SHA256, want)
		}
		// A signed failure verifies as a failure.
		if err := r.PutSignedGateReport(ctx, key, "m", "bytes", fail, nil); err != nil {
			t.Fatal(err)
		}
		if check, err := r.VerifyGateReport(ctx, trust, "m", "bytes"); err != nil || check.Verdict != "fail" {
			t.Errorf("a signed failure: %+v, %v", check, err)
		}
		for _, tc := range []struct {
			name, version string
			prepare       func(v string)
			want          error
			says          string
		}{
			{"report rewritten to pass", "manifest", func(v string) {
				if err := r.PutSignedGateReport(ctx, key, "m", v, fail, nil); err != nil {
					t.Fatal(err)
				}
				upload(t, b, key1(v, "gate/report.json"), `{"verdict":"pass"} `)
			}, signing.ErrDigestMismatch, "gate/report.json has sha256"},
			{"another version's signed report", "swapped", func(v string) {
				upload(t, b, key1(v, "gate/report.json"), string(pass))
				upload(t, b, key1(v, "gate/report.dsse.json"), string(readKey(t, b, key1("good", "gate/report.dsse.json"))))
			}, signing.ErrOtherVersion, `gate report signed for model "m" version "good"`},
			{"untrusted key", "untrusted", func(v string) {
				if err := r.PutSignedGateReport(ctx, other, "m", v, pass, nil); err != nil {
					t.Fatal(err)
				}
			}, signing.ErrUntrustedKey, "signed by key"},
			{"re-gated unsigned over a signed report", "garbled", func(v string) {
				if err := r.PutSignedGateReport(ctx, key, "m", v, fail, nil); err != nil {
					t.Fatal(err)
				}
				if err := r.PutGateReport(ctx, "m", v, pass, nil); err != nil {
					t.Fatal(err)
				}
			}, signing.ErrUnsigned, "without --sign-key"},
			{"never signed", "holdout", func(v string) {
				if err := r.PutGateReport(ctx, "m", v, pass, nil); err != nil {
					t.Fatal(err)
				}
			}, signing.ErrUnsigned, "stored without --sign-key"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.prepare(tc.version)
				_, err := r.VerifyGateReport(ctx, trust, "m", tc.version)
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
					t.Fatalf("err = %v, want %v saying %q", err, tc.want, tc.says)
				}
			})
		}
		if _, err := r.VerifyGateReport(ctx, trust, "m", "rotated"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("never gated: %v", err)
		}
	})
	t.Run("missing version", func(t *testing.T) {
		if _, _, _, err := r.FetchSigned(ctx, trust, "m", "nope"); !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
}
