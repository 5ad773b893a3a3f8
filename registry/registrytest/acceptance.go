// Package registrytest holds the contract every registry.Bucket must meet,
// as one test suite that each backend runs against itself:
//
//	func TestAcceptance(t *testing.T) {
//		registrytest.AcceptanceTest(t, func(t *testing.T) registry.Bucket {
//			b, err := registry.NewLocal(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return b
//		})
//	}
//
// The suite checks the Bucket semantics first, then the Registry built on
// the bucket, so that a backend is accepted only if the registry's
// guarantees (immutable versions, verified fetches, compare-and-swap release
// states) hold on it.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/registry"
)

// AcceptanceTest runs the contract suite. newBucket must return a new,
// empty bucket each time it is called; the suite calls it once per subtest
// and never cleans up, so tie cleanup to t.
func AcceptanceTest(t *testing.T, newBucket func(t *testing.T) registry.Bucket) {
	t.Run("bucket", func(t *testing.T) { testBucket(t, newBucket) })
	t.Run("registry", func(t *testing.T) { testRegistry(t, newBucket) })
}

// concurrency is how many goroutines the race tests start.
const concurrency = 16

// errBoom is the error the tests inject.
var errBoom = errors.New("boom")

func testBucket(t *testing.T, newBucket func(t *testing.T) registry.Bucket) {
	t.Run("get missing", func(t *testing.T) {
		b := newBucket(t)
		ctx := t.Context()
		upload(t, b, "dir/obj", "x")
		for _, key := range []string{"nope", "nope/deeper", "dir", "dir/obj/below", "dir/other"} {
			t.Run(key, func(t *testing.T) {
				if rc, err := b.Get(ctx, key); !errors.Is(err, registry.ErrNotFound) {
					closeIfOpen(rc)
					t.Errorf("Get(%q) error = %v, want ErrNotFound", key, err)
				}
				if _, _, err := b.ReadVersioned(ctx, key); !errors.Is(err, registry.ErrNotFound) {
					t.Errorf("ReadVersioned(%q) error = %v, want ErrNotFound", key, err)
				}
			})
		}
	})

	t.Run("upload and get round trip", func(t *testing.T) {
		tests := []struct {
			name string
			data string
		}{
			{"empty", ""},
			{"small", "hello"},
			{"binary", "\x00\xff\n\r\x00"},
			{"large", strings.Repeat("0123456789abcdef", 1<<16)}, // 1 MiB
		}
		b := newBucket(t)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				key := "round/" + tc.name
				upload(t, b, key, tc.data)
				if got := get(t, b, key); got != tc.data {
					t.Errorf("Get(%q) returned %d bytes, want %d", key, len(got), len(tc.data))
				}
				data, etag, err := b.ReadVersioned(t.Context(), key)
				if err != nil {
					t.Fatalf("ReadVersioned(%q): %v", key, err)
				}
				if string(data) != tc.data || etag == "" {
					t.Errorf("ReadVersioned(%q) = %d bytes, ETag %q; want %d bytes and an ETag", key, len(data), etag, len(tc.data))
				}
			})
		}
	})

	t.Run("upload overwrites", func(t *testing.T) {
		b := newBucket(t)
		upload(t, b, "k", "first")
		_, etag1 := readVersioned(t, b, "k")
		upload(t, b, "k", "second")
		data, etag2 := readVersioned(t, b, "k")
		if data != "second" {
			t.Errorf("after overwrite, content = %q, want %q", data, "second")
		}
		if etag1 == etag2 {
			t.Errorf("ETag %q did not change when the content did", etag1)
		}
	})

	t.Run("failed upload leaves the old object", func(t *testing.T) {
		tests := []struct {
			name   string
			before *string // content before the failed upload, nil for none
			reader func(cancel context.CancelFunc) io.Reader
		}{
			{"reader error, no object", nil, failingReader},
			{"reader error, old object", ptr("old"), failingReader},
			{"canceled, no object", nil, cancelingReader},
			{"canceled, old object", ptr("old"), cancelingReader},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				b := newBucket(t)
				if tc.before != nil {
					upload(t, b, "f/obj", *tc.before)
				}
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if err := b.Upload(ctx, "f/obj", tc.reader(cancel)); err == nil {
					t.Fatal("Upload succeeded, want an error")
				}
				if tc.before != nil {
					if got := get(t, b, "f/obj"); got != *tc.before {
						t.Errorf("content after the failed upload = %.20q, want %q", got, *tc.before)
					}
					return
				}
				if rc, err := b.Get(t.Context(), "f/obj"); !errors.Is(err, registry.ErrNotFound) {
					closeIfOpen(rc)
					t.Errorf("Get after a failed upload: error = %v, want ErrNotFound", err)
				}
				if keys := list(t, b, ""); len(keys) != 0 {
					t.Errorf("List(\"\") after a failed upload = %q, want nothing", keys)
				}
			})
		}
	})

	t.Run("readers never see a partial upload", func(t *testing.T) {
		b := newBucket(t)
		ctx := t.Context()
		const size = 1 << 20
		payloads := []string{strings.Repeat("a", size), strings.Repeat("b", size)}
		upload(t, b, "atomic", payloads[0])

		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			defer close(done)
			for i := range 20 {
				if err := b.Upload(ctx, "atomic", strings.NewReader(payloads[i%2])); err != nil {
					t.Errorf("Upload: %v", err)
					return
				}
			}
		})
		for range 2 {
			wg.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					data, _, err := b.ReadVersioned(ctx, "atomic")
					if err != nil {
						t.Errorf("ReadVersioned during uploads: %v", err)
						return
					}
					if s := string(data); s != payloads[0] && s != payloads[1] {
						t.Errorf("a reader saw %d bytes that are neither upload", len(s))
						return
					}
				}
			})
		}
		wg.Wait()
	})

	t.Run("list", func(t *testing.T) {
		b := newBucket(t)
		for _, key := range []string{"list/b/x", "list/a/y", "list/a/z/deep", "list/c", "list/a.b"} {
			upload(t, b, key, key)
		}
		tests := []struct {
			prefix string
			want   []string
		}{
			{"", []string{"list/"}},
			{"list/", []string{"a.b", "a/", "b/", "c"}},
			{"list/a/", []string{"y", "z/"}},
			{"list/a/z/", []string{"deep"}},
			{"list/nothing/", nil},
			{"absent/", nil},
			{"list/c/", nil},
		}
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%q", tc.prefix), func(t *testing.T) {
				got, err := b.List(t.Context(), tc.prefix)
				if err != nil {
					t.Fatalf("List(%q): %v", tc.prefix, err)
				}
				if !equalStrings(got, tc.want) {
					t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
				}
			})
		}
	})

	t.Run("list skips prefixes without objects", func(t *testing.T) {
		b := newBucket(t)
		ctx := t.Context()
		upload(t, b, "real/obj", "x")
		if _, err := b.WriteIf(ctx, "ghost/obj", []byte("x"), "no-such-etag"); !errors.Is(err, registry.ErrConflict) {
			t.Fatalf("WriteIf with an ETag on a missing key: error = %v, want ErrConflict", err)
		}
		if err := b.Upload(ctx, "ghost2/obj", failingReader(nil)); err == nil {
			t.Fatal("Upload from a failing reader succeeded")
		}
		if got, want := list(t, b, ""), []string{"real/"}; !equalStrings(got, want) {
			t.Errorf("List(\"\") = %q, want %q", got, want)
		}
	})

	t.Run("write if absent", func(t *testing.T) {
		b := newBucket(t)
		ctx := t.Context()
		etag, err := b.WriteIf(ctx, "cas/k", []byte("one"), "")
		if err != nil || etag == "" {
			t.Fatalf("WriteIf on a missing key = %q, %v; want an ETag", etag, err)
		}
		data, got := readVersioned(t, b, "cas/k")
		if data != "one" || got != etag {
			t.Errorf("ReadVersioned = %q, ETag %q; want %q, ETag %q", data, got, "one", etag)
		}
		if _, again := readVersioned(t, b, "cas/k"); again != got {
			t.Errorf("ETag changed between reads: %q, then %q", got, again)
		}
		if _, err := b.WriteIf(ctx, "cas/k", []byte("two"), ""); !errors.Is(err, registry.ErrConflict) {
			t.Errorf("second create-only WriteIf: error = %v, want ErrConflict", err)
		}
		if data := get(t, b, "cas/k"); data != "one" {
			t.Errorf("content after a refused WriteIf = %q, want %q", data, "one")
		}
	})

	t.Run("write if match", func(t *testing.T) {
		b := newBucket(t)
		ctx := t.Context()
		etag1, err := b.WriteIf(ctx, "cas/k", []byte("one"), "")
		if err != nil {
			t.Fatal(err)
		}
		etag2, err := b.WriteIf(ctx, "cas/k", []byte("two"), etag1)
		if err != nil {
			t.Fatalf("WriteIf with the current ETag: %v", err)
		}
		if etag2 == etag1 {
			t.Errorf("ETag %q did not change when the content did", etag1)
		}
		if data, got := readVersioned(t, b, "cas/k"); data != "two" || got != etag2 {
			t.Errorf("ReadVersioned = %q, ETag %q; want %q, ETag %q", data, got, "two", etag2)
		}

		if _, err := b.WriteIf(ctx, "cas/k", []byte("three"), etag1); !errors.Is(err, registry.ErrConflict) {
			t.Errorf("WriteIf with a stale ETag: error = %v, want ErrConflict", err)
		}
		upload(t, b, "cas/k", "uploaded")
		if _, err := b.WriteIf(ctx, "cas/k", []byte("four"), etag2); !errors.Is(err, registry.ErrConflict) {
			t.Errorf("WriteIf with the ETag from before an Upload: error = %v, want ErrConflict", err)
		}
		if data := get(t, b, "cas/k"); data != "uploaded" {
			t.Errorf("content after refused WriteIfs = %q, want %q", data, "uploaded")
		}

		if _, err := b.WriteIf(ctx, "cas/missing", []byte("x"), etag1); !errors.Is(err, registry.ErrConflict) {
			t.Errorf("WriteIf with an ETag on a missing key: error = %v, want ErrConflict", err)
		}
		if rc, err := b.Get(ctx, "cas/missing"); !errors.Is(err, registry.ErrNotFound) {
			closeIfOpen(rc)
			t.Errorf("Get after a refused WriteIf: error = %v, want ErrNotFound", err)
		}
	})

	t.Run("concurrent write if", func(t *testing.T) {
		tests := []struct {
			name   string
			create bool
		}{
			{"create if absent", true},
			{"replace if match", false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				b := newBucket(t)
				etag := ""
				if !tc.create {
					var err error
					if etag, err = b.WriteIf(t.Context(), "race", []byte("initial"), ""); err != nil {
						t.Fatal(err)
					}
				}
				tags := make([]string, concurrency)
				errs := race(concurrency, func(i int) error {
					var err error
					tags[i], err = b.WriteIf(t.Context(), "race", []byte(fmt.Sprintf("writer %d", i)), etag)
					return err
				})
				winner := onlyWinner(t, errs, registry.ErrConflict)
				if winner < 0 {
					return
				}
				data, got := readVersioned(t, b, "race")
				if want := fmt.Sprintf("writer %d", winner); data != want || got != tags[winner] {
					t.Errorf("stored %q, ETag %q; want the winner's %q, ETag %q", data, got, want, tags[winner])
				}
			})
		}
	})

	t.Run("invalid keys are refused", func(t *testing.T) {
		b := newBucket(t)
		ctx := t.Context()
		for _, key := range []string{"", "/abs", "a//b", "a/", "../x", "a/../b", "a/..", "./a", "a/./b", `a\b`, "a\x00b"} {
			t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
				if rc, err := b.Get(ctx, key); !errors.Is(err, registry.ErrInvalidName) {
					closeIfOpen(rc)
					t.Errorf("Get: error = %v, want ErrInvalidName", err)
				}
				if err := b.Upload(ctx, key, strings.NewReader("x")); !errors.Is(err, registry.ErrInvalidName) {
					t.Errorf("Upload: error = %v, want ErrInvalidName", err)
				}
				if _, _, err := b.ReadVersioned(ctx, key); !errors.Is(err, registry.ErrInvalidName) {
					t.Errorf("ReadVersioned: error = %v, want ErrInvalidName", err)
				}
				if _, err := b.WriteIf(ctx, key, []byte("x"), ""); !errors.Is(err, registry.ErrInvalidName) {
					t.Errorf("WriteIf: error = %v, want ErrInvalidName", err)
				}
			})
		}
		for _, prefix := range []string{"/", "a", "a//", "../", "/a/", "a/../"} {
			if _, err := b.List(ctx, prefix); !errors.Is(err, registry.ErrInvalidName) {
				t.Errorf("List(%q): error = %v, want ErrInvalidName", prefix, err)
			}
		}
		if keys := list(t, b, ""); len(keys) != 0 {
			t.Errorf("refused writes stored %q", keys)
		}
	})

	t.Run("describe", func(t *testing.T) {
		if d := newBucket(t).Describe(); d == "" {
			t.Error("Describe() is empty")
		}
	})
}

// failingReader yields some bytes, then errBoom.
func failingReader(context.CancelFunc) io.Reader {
	return io.MultiReader(strings.NewReader(strings.Repeat("partial ", 1024)), errReader{})
}

// cancelingReader cancels the upload's context on its first read, and
// would go on yielding bytes.
func cancelingReader(cancel context.CancelFunc) io.Reader {
	return &cancelReader{cancel: cancel, r: strings.NewReader(strings.Repeat("partial ", 1<<16))}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBoom }

type cancelReader struct {
	cancel context.CancelFunc
	r      io.Reader
}

func (c *cancelReader) Read(p []byte) (int, error) {
	c.cancel()
	return c.r.Read(p[:min(len(p), 512)])
}

// race runs f(0) ... f(n-1) in goroutines released at the same moment and
// returns their errors.
func race(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// onlyWinner checks that exactly one error is nil and that the others are
// loser errors, and returns the winner's index (-1 after reporting).
func onlyWinner(t *testing.T, errs []error, loser ...error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("goroutines %d and %d both won", winner, i)
			return -1
		case err == nil:
			winner = i
		case !isAny(err, loser):
			t.Errorf("goroutine %d: error = %v, want one of %v", i, err, loser)
		}
	}
	if winner < 0 {
		t.Errorf("nobody won: %v", errs)
	}
	return winner
}

func isAny(err error, targets []error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func upload(t *testing.T, b registry.Bucket, key, data string) {
	t.Helper()
	if err := b.Upload(t.Context(), key, strings.NewReader(data)); err != nil {
		t.Fatalf("Upload(%q): %v", key, err)
	}
}

func get(t *testing.T, b registry.Bucket, key string) string {
	t.Helper()
	rc, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	return string(data)
}

func readVersioned(t *testing.T, b registry.Bucket, key string) (data, etag string) {
	t.Helper()
	d, etag, err := b.ReadVersioned(t.Context(), key)
	if err != nil {
		t.Fatalf("ReadVersioned(%q): %v", key, err)
	}
	return string(d), etag
}

func list(t *testing.T, b registry.Bucket, prefix string) []string {
	t.Helper()
	keys, err := b.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return keys
}

// snapshot returns every object in b by key, walking List from the top.
func snapshot(t *testing.T, b registry.Bucket) map[string]string {
	t.Helper()
	out := make(map[string]string)
	var walk func(prefix string)
	walk = func(prefix string) {
		for _, child := range list(t, b, prefix) {
			if strings.HasSuffix(child, "/") {
				walk(prefix + child)
				continue
			}
			out[prefix+child] = get(t, b, prefix+child)
		}
	}
	walk("")
	return out
}

// sameSnapshot reports the differences between two snapshots.
func sameSnapshot(t *testing.T, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if w, ok := after[k]; !ok {
			t.Errorf("object %q disappeared", k)
		} else if w != v {
			t.Errorf("object %q changed from %.40q to %.40q", k, v, w)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("object %q appeared", k)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func closeIfOpen(rc io.ReadCloser) {
	if rc != nil {
		_ = rc.Close()
	}
}

func ptr[T any](v T) *T { return &v }

// recorder counts the calls that reach a bucket.
type recorder struct {
	registry.Bucket
	n atomic.Int64
}

func (r *recorder) calls() int64 { return r.n.Load() }

func (r *recorder) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	r.n.Add(1)
	return r.Bucket.Get(ctx, key)
}

func (r *recorder) Upload(ctx context.Context, key string, rd io.Reader) error {
	r.n.Add(1)
	return r.Bucket.Upload(ctx, key, rd)
}

func (r *recorder) List(ctx context.Context, prefix string) ([]string, error) {
	r.n.Add(1)
	return r.Bucket.List(ctx, prefix)
}

func (r *recorder) ReadVersioned(ctx context.Context, key string) ([]byte, string, error) {
	r.n.Add(1)
	return r.Bucket.ReadVersioned(ctx, key)
}

func (r *recorder) WriteIf(ctx context.Context, key string, data []byte, etag string) (string, error) {
	r.n.Add(1)
	return r.Bucket.WriteIf(ctx, key, data, etag)
}

// clock is a fake clock that moves by step at every reading.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

// fixture is a registry on a fresh bucket, with the bucket (behind a call
// counter) and the clock.
type fixture struct {
	reg    releasetest.Registry
	bucket *recorder
	clock  *clock
}

// epoch is where the fake clocks start.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newFixture(t *testing.T, newBucket func(t *testing.T) registry.Bucket, step time.Duration) *fixture {
	rec := &recorder{Bucket: newBucket(t)}
	c := &clock{t: epoch, step: step}
	return &fixture{reg: releasetest.Wrap(registry.New(rec, registry.Options{Now: c.Now}), c.Now), bucket: rec, clock: c}
}
