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
