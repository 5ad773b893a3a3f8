package registry_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/registry"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		location string
		want     string // Describe() of the registry
		wantErr  string // in the error; "" for none
		errIs    error
	}{
		{"absolute path", filepath.Join(dir, "abs"), "file://" + filepath.ToSlash(filepath.Join(dir, "abs")), "", nil},
		{"file URL", "file://" + filepath.ToSlash(filepath.Join(dir, "url")), "file://" + filepath.ToSlash(filepath.Join(dir, "url")), "", nil},
		{"file URL with localhost", "file://localhost" + filepath.ToSlash(filepath.Join(dir, "lh")), "file://" + filepath.ToSlash(filepath.Join(dir, "lh")), "", nil},
		{"s3 with a bad bucket name", "s3://Models/prod", "", `bucket "Models"`, nil},
		{"other scheme", "https://example.com/models", "", `unsupported scheme "https"`, nil},
		{"scheme without slashes", "gs:models", "", `unsupported scheme "gs"`, nil},
		{"file URL with a host", "file://server/models", "", "not host", nil},
		{"relative file URL", "file:models", "", "want file:///absolute/path", nil},
		{"empty", "", "", "empty location", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := registry.Open(t.Context(), tc.location, registry.Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open(%q) error = %v, want one saying %q", tc.location, err, tc.wantErr)
				}
				if tc.errIs != nil && !errors.Is(err, tc.errIs) {
					t.Errorf("Open(%q) error = %v, want errors.Is %v", tc.location, err, tc.errIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.location, err)
			}
			if got := r.Describe(); got != tc.want {
				t.Errorf("Describe() = %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("relative path", func(t *testing.T) {
		t.Chdir(dir)
		r, err := registry.Open(t.Context(), "rel/registry", registry.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := r.Describe(), "file://"+filepath.ToSlash(filepath.Join(dir, "rel", "registry")); got != want {
			t.Errorf("Describe() = %q, want %q", got, want)
		}
	})
}

// conflictingBucket refuses every WriteIf of release.json, as if another
// writer always got there first.
type conflictingBucket struct {
	registry.Bucket
	writes atomic.Int64
}

func (b *conflictingBucket) WriteIf(ctx context.Context, key string, data []byte, etag string) (string, error) {
	if strings.HasSuffix(key, "/release.json") {
		b.writes.Add(1)
		return "", registry.ErrConflict
	}
	return b.Bucket.WriteIf(ctx, key, data, etag)
}

func TestUpdateReleaseGivesUp(t *testing.T) {
	t.Run("after bounded retries", func(t *testing.T) {
		b := &conflictingBucket{Bucket: newLocal(t)}
		reg := registry.New(b, registry.Options{})
		calls := 0
		_, err := reg.UpdateReleaseJSON(t.Context(), "iris", func([]byte) ([]byte, error) {
			calls++
			return []byte(`{"stable":"1"}`), nil
		})
		if !errors.Is(err, registry.ErrConflict) {
			t.Fatalf("error = %v, want ErrConflict", err)
		}
		if calls != 10 || b.writes.Load() != 10 {
			t.Errorf("fn called %d times, %d writes tried; want 10 and 10", calls, b.writes.Load())
		}
	})
	t.Run("when the context ends", func(t *testing.T) {
		b := &conflictingBucket{Bucket: newLocal(t)}
		reg := registry.New(b, registry.Options{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		calls := 0
		_, err := reg.UpdateReleaseJSON(ctx, "iris", func([]byte) ([]byte, error) {
			calls++
			cancel()
			return []byte(`{"stable":"1"}`), nil
		})
		if !errors.Is(err, context.Canceled) || calls != 1 {
			t.Errorf("error = %v after %d calls, want context.Canceled after 1", err, calls)
		}
	})
}

func TestPushReportsUnstableVersion(t *testing.T) {
	b := &conflictingBucket{Bucket: newLocal(t)}
	reg := registry.New(b, registry.Options{})
	m, created, err := store.Push(t.Context(), reg, registry.PushRequest{Name: "iris", Version: "1", Model: []byte("m")}, time.Now())
	if !created || m.Version != "1" || !errors.Is(err, registry.ErrConflict) {
		t.Errorf("Push = %+v, %v, %v; want the stored manifest, true and the release error", m, created, err)
	}
	if _, err := reg.Manifest(t.Context(), "iris", "1"); err != nil {
		t.Errorf("the version was not stored: %v", err)
	}
}
