package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/signing"
)

// getBody returns the body of GET url.
func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestSignedModelsOnMinIO: a gateway with trusted keys, on a MinIO
// registry, serves the signed version 1; version 2, signed but with its
// model bytes replaced in the bucket, and version 3, unsigned, are refused
// when they are made stable: version 1 keeps serving, readiness says why
// and the refusals are counted.
func TestSignedModelsOnMinIO(t *testing.T) {
	srv, reg, location := minioRegistry(t, testmodels.Scaled(1), testmodels.Scaled(-4), testmodels.Scaled(2))
	ci, err := signing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	pub, _ := signing.MarshalPublicKey(ci.Public())
	if err := os.WriteFile(filepath.Join(keys, "ci.pem"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1", "2"} {
		if _, err := reg.Registry.SignVersion(context.Background(), ci, "m", v); err != nil {
			t.Fatal(err)
		}
	}
	// Version 2's model is replaced in the bucket by bytes of its size.
	bucket, _, _ := strings.Cut(strings.TrimPrefix(location, "s3://"), "/")
	key := "registry/models/m/versions/2/model.onnx"
	obj, err := srv.Client().GetObject(t.Context(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	orig, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	evil := bytes.Clone(orig)
	evil[len(evil)-1] ^= 1
	if _, err := srv.Client().PutObject(t.Context(), bucket, key, bytes.NewReader(evil), int64(len(evil)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t)
	cfg.Registry = location
	cfg.PollInterval = 200 * time.Millisecond
	cfg.Security.TrustedKeys = []string{keys}
	base := startGateway(t, cfg)
	waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "m") == "1" })

	for _, step := range []struct{ version, reason string }{{"2", "digest_mismatch"}, {"3", "unsigned"}} {
		if _, err := reg.SetStable(context.Background(), "m", step.version, false, "test"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the refusal of version "+step.version+" in readiness", func() bool {
			return strings.Contains(getBody(t, base+"/readyz"), "version "+step.version+": refused, signature check failed ("+step.reason+")")
		})
		if v := servingVersion(base, "m"); v != "1" {
			t.Fatalf("serving %q after refusing %s, want 1", v, step.version)
		}
		if m := getBody(t, base+"/metrics"); !strings.Contains(m, `modelgate_signature_refusals_total{model="m",reason="`+step.reason+`"} 1`) {
			t.Fatalf("no refusal counted for %s", step.reason)
		}
	}
	resp, err := http.Post(base+"/predict", "application/json", strings.NewReader(`{"features":[1,2,3,4]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("predict after the refusals: %d", resp.StatusCode)
	}
}

// TestReplayedReleaseIsRefused, on the local registry and on MinIO: a
// gateway serving version 3 refuses an older release.json put back (one
// that made 2 stable), and one whose stable version was edited without a
// history event; version 3 keeps serving, readiness says why, the
// refusals are counted, and the real release.json put back is accepted
// again.
func TestReplayedReleaseIsRefused(t *testing.T) {
	models := [][]byte{testmodels.Scaled(1), testmodels.Scaled(2), testmodels.Scaled(3)}
	t.Run("local", func(t *testing.T) {
		dir := t.TempDir()
		reg := pushVersions(t, dir, models...)
		testReplayedRelease(t, dir, reg, func(data []byte) {
			if err := os.WriteFile(filepath.Join(dir, "models", "m", "release.json"), data, 0o644); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("minio", func(t *testing.T) {
		srv, reg, location := minioRegistry(t, models...)
		bucket, _, _ := strings.Cut(strings.TrimPrefix(location, "s3://"), "/")
		testReplayedRelease(t, location, reg, func(data []byte) {
			if _, err := srv.Client().PutObject(t.Context(), bucket, "registry/models/m/release.json", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	})
}

func testReplayedRelease(t *testing.T, location string, reg releasetest.Registry, put func([]byte)) {
	ctx := context.Background()
	if _, err := reg.SetStable(ctx, "m", "2", false, "test"); err != nil {
		t.Fatal(err)
	}
	old, err := reg.ReleaseJSON(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.SetStable(ctx, "m", "3", false, "test"); err != nil {
		t.Fatal(err)
	}
	current, err := reg.ReleaseJSON(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Registry = location
	cfg.PollInterval = 100 * time.Millisecond
	base := startGateway(t, cfg)
	waitFor(t, 30*time.Second, "version 3 served", func() bool { return servingVersion(base, "m") == "3" })

	edited := bytes.Replace(current, []byte(`"stable": "3"`), []byte(`"stable": "1"`), 1)
	if bytes.Equal(edited, current) {
		t.Fatalf("release.json does not say stable 3: %s", current)
	}
	for _, step := range []struct {
		name, reason, says string
		data               []byte
	}{
		{"replay", "rewound", "an older release.json was put back", old},
		{"edit", "inconsistent", "the state was edited outside promote", edited},
	} {
		put(step.data)
		waitFor(t, 30*time.Second, step.name+": the refusal in readiness", func() bool {
			return strings.Contains(getBody(t, base+"/readyz"), step.says)
		})
		waitFor(t, 30*time.Second, step.name+": the refusal counted", func() bool {
			return strings.Contains(getBody(t, base+"/metrics"), `modelgate_release_refusals_total{model="m",reason="`+step.reason+`"}`)
		})
		if v := servingVersion(base, "m"); v != "3" {
			t.Fatalf("%s: serving %q, want 3", step.name, v)
		}
		if code := get(t, base+"/readyz"); code != http.StatusOK {
			t.Fatalf("%s: /readyz %d: a refused state must not take a serving gateway out of rotation", step.name, code)
		}
	}
	put(current)
	waitFor(t, 30*time.Second, "the real release.json accepted again", func() bool {
		return !strings.Contains(getBody(t, base+"/readyz"), "refused")
	})
	if _, err := reg.SetStable(ctx, "m", "1", true, "after the incident"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "version 1 served after a real change", func() bool { return servingVersion(base, "m") == "1" })
}
