package registry_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelgate/modelgate/internal/miniotest"
	"github.com/modelgate/modelgate/registry"
)

// errCut is what a cut stream returns, like net/http's client when a body
// ends before its Content-Length.
var errCut = io.ErrUnexpectedEOF

// flakyBucket breaks the body of Gets of model.onnx after `after` bytes:
// the first `breaks` of them, or all of them if breaks is negative. It
// counts those Gets, and calls onGet (if set) after each.
type flakyBucket struct {
	registry.Bucket
	after  int
	breaks int
	onGet  func()
	gets   atomic.Int64
}

func (b *flakyBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := b.Bucket.Get(ctx, key)
	if err != nil || !strings.HasSuffix(key, "/model.onnx") {
		return rc, err
	}
	n := b.gets.Add(1)
	if b.onGet != nil {
		b.onGet()
	}
	if b.breaks < 0 || n <= int64(b.breaks) {
		return &brokenBody{ReadCloser: rc, left: b.after}, nil
	}
	return rc, nil
}

// brokenBody yields `left` bytes of its body, then errCut.
type brokenBody struct {
	io.ReadCloser
	left int
}

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errCut
	}
	n, err := b.ReadCloser.Read(p[:min(len(p), b.left)])
	b.left -= n
	return n, err
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// cacheFiles returns every file under dir, relative to it, sorted: the
// cache entries and any leftover.
func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// TestFetchCache runs the cache on a local bucket whose streams break on
// demand. TestS3 runs it against MinIO behind a proxy that cuts streams.
func TestFetchCache(t *testing.T) {
	model := randomBytes(300 << 10)
	entry := "sha256/" + sha256Hex(model)

	// setup pushes version 1 of model "iris" holding model to a local
	// bucket behind fb and returns a registry with a cache on fb, the
	// cache directory and the bucket's root.
	setup := func(t *testing.T, fb *flakyBucket) (*registry.Registry, string, string) {
		t.Helper()
		root := t.TempDir()
		local, err := registry.NewLocal(root)
		if err != nil {
			t.Fatal(err)
		}
		fb.Bucket = local
		req := registry.PushRequest{Name: "iris", Version: "1", Model: model, Holdout: []byte("x,label\n1,0\n")}
		if _, _, err := registry.New(fb.Bucket, registry.Options{}).Push(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "cache")
		return registry.New(fb, registry.Options{CacheDir: dir}), dir, root
	}
	fetch := func(t *testing.T, reg *registry.Registry) {
		t.Helper()
		data, m, err := reg.Fetch(t.Context(), "iris", "1")
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		if !bytes.Equal(data, model) || m.SHA256 != sha256Hex(model) {
			t.Fatalf("Fetch returned %d bytes with sha256 %s, want the model", len(data), sha256Hex(data))
		}
	}
	checkEntry := func(t *testing.T, dir string) {
		t.Helper()
		files := cacheFiles(t, dir)
		if len(files) != 2 || !slices.Contains(files, entry) {
			t.Fatalf("cache holds %q, want %s and the holdout's entry", files, entry)
		}
		if data, err := os.ReadFile(filepath.Join(dir, entry)); err != nil || !bytes.Equal(data, model) {
			t.Fatalf("cache entry: %d bytes, %v", len(data), err)
		}
	}

	t.Run("downloads once", func(t *testing.T) {
		fb := &flakyBucket{}
		reg, dir, _ := setup(t, fb)
		fetch(t, reg)
		if _, err := reg.FetchHoldout(t.Context(), "iris", "1"); err != nil {
			t.Fatal(err)
		}
		checkEntry(t, dir)
		fetch(t, reg)
		if n := fb.gets.Load(); n != 1 {
			t.Errorf("model downloaded %d times, want once", n)
		}
	})

	t.Run("a broken stream is retried", func(t *testing.T) {
		fb := &flakyBucket{after: 100 << 10, breaks: 2}
		reg, dir, _ := setup(t, fb)
		fetch(t, reg)
		if n := fb.gets.Load(); n != 3 {
			t.Errorf("model downloaded %d times, want 3 (two broken, one whole)", n)
		}
		if _, err := reg.FetchHoldout(t.Context(), "iris", "1"); err != nil {
			t.Fatal(err)
		}
		checkEntry(t, dir)
	})

	t.Run("a stream that always breaks caches nothing", func(t *testing.T) {
		fb := &flakyBucket{after: 100 << 10, breaks: -1}
		reg, dir, _ := setup(t, fb)
		_, _, err := reg.Fetch(t.Context(), "iris", "1")
		if !errors.Is(err, errCut) || !strings.Contains(err.Error(), "gave up after 5 attempts") {
			t.Fatalf("Fetch: error = %v, want the broken stream after 5 attempts", err)
		}
		if n := fb.gets.Load(); n != 5 {
			t.Errorf("model downloaded %d times, want 5", n)
		}
		if files := cacheFiles(t, dir); len(files) != 0 {
			t.Errorf("a failed download left %q in the cache", files)
		}
	})

	t.Run("corrupt entries are replaced", func(t *testing.T) {
		tests := []struct {
			name    string
			corrupt func(data []byte) []byte
		}{
			{"flipped byte", func(d []byte) []byte { d = slices.Clone(d); d[len(d)/2] ^= 1; return d }},
			{"truncated", func(d []byte) []byte { return d[:len(d)-1] }},
			{"empty", func([]byte) []byte { return nil }},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				fb := &flakyBucket{}
				reg, dir, _ := setup(t, fb)
				fetch(t, reg)
				if err := os.WriteFile(filepath.Join(dir, entry), tc.corrupt(model), 0o644); err != nil {
					t.Fatal(err)
				}
				fetch(t, reg)
				if n := fb.gets.Load(); n != 2 {
					t.Errorf("model downloaded %d times, want 2", n)
				}
				if data, err := os.ReadFile(filepath.Join(dir, entry)); err != nil || !bytes.Equal(data, model) {
					t.Errorf("cache entry after the repair: %d bytes, %v", len(data), err)
				}
			})
		}
	})

	t.Run("stored bytes that do not match are not cached", func(t *testing.T) {
		tests := []struct {
			name, stored, want string
		}{
			{"flipped byte", string(model[:len(model)-1]) + "!", "want sha256 " + sha256Hex(model)},
			{"truncated", string(model[:1000]), "want 307200 bytes, got 1000"},
			{"longer", string(model) + "!", "want 307200 bytes, got more"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				fb := &flakyBucket{}
				reg, dir, _ := setup(t, fb)
				upload(t, fb.Bucket, "models/iris/versions/1/model.onnx", tc.stored)
				_, _, err := reg.Fetch(t.Context(), "iris", "1")
				if !errors.Is(err, registry.ErrDigestMismatch) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Fetch: error = %v, want ErrDigestMismatch saying %q", err, tc.want)
				}
				if n := fb.gets.Load(); n != 1 {
					t.Errorf("model downloaded %d times, want once: wrong bytes are not retried", n)
				}
				if files := cacheFiles(t, dir); len(files) != 0 {
					t.Errorf("cache holds %q after a mismatch", files)
				}
			})
		}
	})

	t.Run("cancel while retrying", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		fb := &flakyBucket{after: 1000, breaks: -1, onGet: cancel}
		reg, dir, _ := setup(t, fb)
		if _, _, err := reg.Fetch(ctx, "iris", "1"); !errors.Is(err, context.Canceled) {
			t.Errorf("Fetch: error = %v, want context.Canceled", err)
		}
		if n := fb.gets.Load(); n != 1 {
			t.Errorf("model downloaded %d times after the cancel, want 1", n)
		}
		if files := cacheFiles(t, dir); len(files) != 0 {
			t.Errorf("cache holds %q after a canceled download", files)
		}
	})

	t.Run("a lost model is not found", func(t *testing.T) {
		fb := &flakyBucket{}
		reg, dir, root := setup(t, fb)
		// The manifest is there, the model is not.
		if err := os.Remove(filepath.Join(root, "models", "iris", "versions", "1", "model.onnx")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := reg.Fetch(t.Context(), "iris", "1"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Fetch: error = %v, want ErrNotFound", err)
		}
		if files := cacheFiles(t, dir); len(files) != 0 {
			t.Errorf("cache holds %q", files)
		}
	})
}

// testS3FetchCache fetches from MinIO through a proxy that cuts model
// downloads short.
func testS3FetchCache(t *testing.T, srv *miniotest.Server) {
	bucket := srv.NewBucket(t)
	direct := newS3(t, srv, bucket, "")
	models := map[string][]byte{"1": randomBytes(2 << 20), "2": randomBytes(2 << 20), "3": randomBytes(1 << 20)}
	for v, m := range models {
		if _, _, err := registry.New(direct, registry.Options{}).Push(t.Context(), registry.PushRequest{Name: "iris", Version: v, Model: m}); err != nil {
			t.Fatal(err)
		}
	}
	proxy := startFaultyProxy(t, srv.Endpoint)
	dir := t.TempDir()
	reg := registry.New(newS3At(t, proxy.endpoint, srv.Credentials(), bucket, ""), registry.Options{CacheDir: dir})
	entry := func(v string) string { return "sha256/" + sha256Hex(models[v]) }

	t.Run("a stream cut twice is retried", func(t *testing.T) {
		proxy.cutModels(256<<10, 2)
		data, _, err := reg.Fetch(t.Context(), "iris", "1")
		if err != nil || !bytes.Equal(data, models["1"]) {
			t.Fatalf("Fetch = %d bytes, %v; want version 1's %d bytes", len(data), err, len(models["1"]))
		}
		if gets, cut := proxy.modelCounts(); gets != 3 || cut != 2 {
			t.Errorf("proxy saw %d downloads, cut %d; want 3 and 2", gets, cut)
		}
		if files := cacheFiles(t, dir); !slices.Equal(files, []string{entry("1")}) {
			t.Errorf("cache holds %q, want %s", files, entry("1"))
		}
		if data, _, err := reg.Fetch(t.Context(), "iris", "1"); err != nil || !bytes.Equal(data, models["1"]) {
			t.Fatalf("second Fetch: %d bytes, %v", len(data), err)
		}
		if gets, _ := proxy.modelCounts(); gets != 3 {
			t.Errorf("the second Fetch downloaded again (%d downloads)", gets)
		}
	})

	t.Run("a stream always cut caches nothing", func(t *testing.T) {
		proxy.cutModels(256<<10, -1)
		_, _, err := reg.Fetch(t.Context(), "iris", "2")
		if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Fetch: error = %v, want an unexpected EOF", err)
		}
		t.Logf("Fetch: %v", err)
		if gets, _ := proxy.modelCounts(); gets != 5 {
			t.Errorf("proxy saw %d downloads, want 5", gets)
		}
		if files := cacheFiles(t, dir); !slices.Equal(files, []string{entry("1")}) {
			t.Errorf("cache holds %q, want only %s", files, entry("1"))
		}
	})

	t.Run("stored bytes that do not match are not cached", func(t *testing.T) {
		proxy.cutModels(0, 0)
		other := slices.Clone(models["3"])
		other[0] ^= 0xff
		upload(t, direct, "models/iris/versions/3/model.onnx", string(other))
		_, _, err := reg.Fetch(t.Context(), "iris", "3")
		if !errors.Is(err, registry.ErrDigestMismatch) {
			t.Fatalf("Fetch: error = %v, want ErrDigestMismatch", err)
		}
		if files := cacheFiles(t, dir); !slices.Equal(files, []string{entry("1")}) {
			t.Errorf("cache holds %q, want only %s", files, entry("1"))
		}
	})
}
