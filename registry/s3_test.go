package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/internal/miniotest"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/registry/registrytest"
)

// newS3 returns an S3Bucket on srv for bucket and prefix, with its own
// minio-go client (and so its own connections), as a separate replica
// would have.
func newS3(t testing.TB, srv *miniotest.Server, bucket, prefix string) *registry.S3Bucket {
	t.Helper()
	return newS3At(t, srv.Endpoint, srv.Credentials(), bucket, prefix)
}

// newS3At is newS3 through another endpoint (a proxy) or credentials.
func newS3At(t testing.TB, endpoint string, creds *credentials.Credentials, bucket, prefix string) *registry.S3Bucket {
	t.Helper()
	b, err := registry.NewS3(t.Context(), registry.S3Options{
		Endpoint:  endpoint,
		Bucket:    bucket,
		Prefix:    prefix,
		Region:    miniotest.Region,
		Insecure:  true,
		PathStyle: true,
		Creds:     creds,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestS3 runs everything that needs a MinIO server on one server, each
// part in its own bucket: starting a server costs about a second.
func TestS3(t *testing.T) {
	srv := miniotest.Start(t)

	// The parts that only touch their own buckets run in parallel, as
	// clients of one server would; the group ends when they all have.
	t.Run("parallel", func(t *testing.T) {
		t.Run("acceptance, a bucket each", func(t *testing.T) {
			t.Parallel()
			registrytest.AcceptanceTest(t, func(t *testing.T) registry.Bucket {
				return newS3(t, srv, srv.NewBucket(t), "")
			})
		})
		t.Run("acceptance, a prefix each", func(t *testing.T) {
			t.Parallel()
			// Every subtest shares one bucket with a prefix of its own,
			// and an object outside every prefix that no subtest may see.
			bucket := srv.NewBucket(t)
			upload(t, newS3(t, srv, bucket, ""), "models/outside/release.json", "{}")
			var mu sync.Mutex
			n := 0
			registrytest.AcceptanceTest(t, func(t *testing.T) registry.Bucket {
				mu.Lock()
				defer mu.Unlock()
				n++
				return newS3(t, srv, bucket, fmt.Sprintf("team/run-%d", n))
			})
		})
		for _, tc := range []struct {
			name string
			test func(*testing.T, *miniotest.Server)
		}{
			{"write if races between clients", testS3WriteIfRaces},
			{"write if with lost responses", testS3WriteIfLostResponses},
			{"concurrent release updates from replicas", testS3ReleaseReplicas},
			{"errors", testS3Errors},
			{"upload sizes", testS3UploadSizes},
			{"fetch cache", testS3FetchCache},
			{"signatures", testS3Signatures},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.test(t, srv)
			})
		}
	})
	// Not parallel: it sets environment variables.
	t.Run("open from the environment", func(t *testing.T) { testS3Open(t, srv) })
	// Last: it kills and restarts the server.
	t.Run("outage", func(t *testing.T) { testS3Outage(t, srv) })
}

// upload stores data at key or fails t.
func upload(t testing.TB, b registry.Bucket, key, data string) {
	t.Helper()
	if err := b.Upload(t.Context(), key, strings.NewReader(data)); err != nil {
		t.Fatalf("Upload(%q): %v", key, err)
	}
}

// testS3WriteIfRaces proves MinIO's conditional PUT a compare-and-swap:
// of two writers that read the same ETag of release.json and write with
// it at once, exactly one wins and the other gets ErrConflict, whether
// they share a client or not.
func testS3WriteIfRaces(t *testing.T, srv *miniotest.Server) {
	const key = "models/iris/release.json"
	const rounds = 25
	tests := []struct {
		name    string
		buckets func(bucket string) [2]registry.Bucket
	}{
		{"two goroutines, one client", func(bucket string) [2]registry.Bucket {
			b := newS3(t, srv, bucket, "")
			return [2]registry.Bucket{b, b}
		}},
		{"two independent clients", func(bucket string) [2]registry.Bucket {
			return [2]registry.Bucket{newS3(t, srv, bucket, ""), newS3(t, srv, bucket, "")}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buckets := tc.buckets(srv.NewBucket(t))
			ctx := t.Context()
			if _, err := buckets[0].WriteIf(ctx, key, []byte("round 0"), ""); err != nil {
				t.Fatal(err)
			}
			for round := 1; round <= rounds; round++ {
				_, etag, err := buckets[0].ReadVersioned(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				var errs [2]error
				var tags [2]string
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i, b := range buckets {
					wg.Go(func() {
						<-start
						tags[i], errs[i] = b.WriteIf(ctx, key, fmt.Appendf(nil, "round %d writer %d", round, i), etag)
					})
				}
				close(start)
				wg.Wait()

				winner := -1
				for i, err := range errs {
					switch {
					case err == nil && winner >= 0:
						t.Fatalf("round %d: both writers won with ETag %s", round, etag)
					case err == nil:
						winner = i
					case !errors.Is(err, registry.ErrConflict):
						t.Fatalf("round %d: writer %d: error = %v, want ErrConflict", round, i, err)
					}
				}
				if winner < 0 {
					t.Fatalf("round %d: nobody won: %v", round, errs)
				}
				data, got, err := buckets[1-winner].ReadVersioned(ctx, key)
				if want := fmt.Sprintf("round %d writer %d", round, winner); err != nil || string(data) != want || got != tags[winner] {
					t.Fatalf("round %d: stored %q, ETag %s, %v; want %q, ETag %s", round, data, got, err, want, tags[winner])
				}
			}
		})
	}
}

// testS3WriteIfLostResponses makes a proxy lose the responses to
// conditional writes that the server did carry out: minio-go sends them
// again, and WriteIf must report the write it made, not a conflict with
// itself, while real conflicts stay conflicts.
func testS3WriteIfLostResponses(t *testing.T, srv *miniotest.Server) {
	const key = "models/iris/release.json"
	bucket := srv.NewBucket(t)
	proxy := startFaultyProxy(t, srv.Endpoint)
	b := newS3At(t, proxy.endpoint, srv.Credentials(), bucket, "")
	ctx := t.Context()

	proxy.losePuts(1)
	etag1, err := b.WriteIf(ctx, key, []byte("one"), "")
	if err != nil {
		t.Fatalf("create-only WriteIf whose response was lost once: %v", err)
	}
	proxy.losePuts(1)
	etag2, err := b.WriteIf(ctx, key, []byte("two"), etag1)
	if err != nil {
		t.Fatalf("WriteIf with the current ETag whose response was lost once: %v", err)
	}
	if lost := proxy.lostPuts(); lost != 1 {
		t.Fatalf("the proxy lost %d responses, want 1", lost)
	}
	if data, got, err := b.ReadVersioned(ctx, key); err != nil || string(data) != "two" || got != etag2 {
		t.Errorf("ReadVersioned = %q, %s, %v; want %q, %s", data, got, err, "two", etag2)
	}

	// A stale ETag is a conflict, resent or not.
	proxy.losePuts(1)
	if _, err := b.WriteIf(ctx, key, []byte("three"), etag1); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("WriteIf with a stale ETag, response lost once: error = %v, want ErrConflict", err)
	}
	if _, err := b.WriteIf(ctx, key, []byte("two"), ""); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("create-only WriteIf of the same bytes, sent once: error = %v, want ErrConflict", err)
	}

	// No update is applied twice.
	reg := releasetest.Wrap(registry.New(b, registry.Options{}), nil)
	if _, _, err := reg.Push(ctx, registry.PushRequest{Name: "lost", Version: "1", Model: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		proxy.losePuts(1)
		if _, err := reg.Edit(ctx, "lost", func(s *release.State) error {
			s.History = append(s.History, release.Event{Action: "test", Version: strconv.Itoa(i)})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := reg.Release(ctx, "lost"); err != nil || len(s.History) != 4 {
		t.Errorf("Release = %+v, %v; want the initial event and 3 more, each once", s, err)
	}
}

// testS3ReleaseReplicas has writers on several independent clients append
// events to one release state at once: every event must land.
func testS3ReleaseReplicas(t *testing.T, srv *miniotest.Server) {
	const replicas, writersPerReplica, updatesPerWriter = 4, 2, 3
	bucket := srv.NewBucket(t)
	regs := make([]releasetest.Registry, replicas)
	for i := range regs {
		regs[i] = releasetest.Wrap(registry.New(newS3(t, srv, bucket, "prod"), registry.Options{}), nil)
	}
	ctx := t.Context()
	if _, _, err := regs[0].Push(ctx, registry.PushRequest{Name: "iris", Version: "1", Model: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []error
	for r, reg := range regs {
		for w := range writersPerReplica {
			wg.Go(func() {
				<-start
				for u := range updatesPerWriter {
					id := fmt.Sprintf("r%d-w%d-u%d", r, w, u)
					_, err := reg.Edit(ctx, "iris", func(s *release.State) error {
						s.History = append(s.History, release.Event{Action: "test", Version: id})
						return nil
					})
					if err != nil {
						mu.Lock()
						failures = append(failures, fmt.Errorf("%s: %w", id, err))
						mu.Unlock()
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	for _, err := range failures {
		t.Error(err)
	}
	s, err := regs[replicas-1].Release(ctx, "iris")
	if err != nil {
		t.Fatal(err)
	}
	want := replicas * writersPerReplica * updatesPerWriter
	seen := make(map[string]bool)
	for _, e := range s.History[1:] {
		if seen[e.Version] {
			t.Errorf("event %s recorded twice", e.Version)
		}
		seen[e.Version] = true
	}
	if len(seen) != want || len(s.History) != want+1 {
		t.Errorf("history has %d events (%d distinct), want %d after the initial one", len(s.History)-1, len(seen), want)
	}
}

// testS3Open opens s3:// locations configured by the environment, as the
// gateway and promote do, and runs a registry through them.
func testS3Open(t *testing.T, srv *miniotest.Server) {
	srv.Setenv(t)
	ctx := t.Context()
	bucket := "fresh-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	location := "s3://" + bucket + "/team/registry/"
	opened, err := registry.Open(ctx, location, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := releasetest.Wrap(opened, nil)
	if got, want := reg.Describe(), "s3://"+bucket+"/team/registry (http://"+srv.Endpoint+")"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
	if _, _, err := reg.Push(ctx, registry.PushRequest{Name: "iris", Version: "1", Model: []byte("one")}); !errors.Is(err, registry.ErrNotFound) ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Push before EnsureStorage: error = %v, want ErrNotFound naming the missing bucket", err)
	}
	for range 2 { // the second call finds the bucket
		if err := reg.EnsureStorage(ctx); err != nil {
			t.Fatalf("EnsureStorage: %v", err)
		}
	}
	for _, v := range []string{"1", "2"} {
		if _, _, err := reg.Push(ctx, registry.PushRequest{Name: "iris", Version: v, Model: []byte("model " + v)}); err != nil {
			t.Fatalf("Push(%s): %v", v, err)
		}
	}
	if _, err := reg.SetStable(ctx, "iris", "2", false, "gates passed"); err != nil {
		t.Fatal(err)
	}

	// Another process opening the same location sees it all.
	other, err := registry.Open(ctx, "s3://"+bucket+"/team/registry", registry.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := store.Read(ctx, other, "iris"); err != nil || s.Stable != "2" || len(s.History) != 2 {
		t.Errorf("Release = %+v, %v; want stable 2 after two events", s, err)
	}
	if data, m, err := other.Fetch(ctx, "iris", "2"); err != nil || string(data) != "model 2" || m.Version != "2" {
		t.Errorf("Fetch = %q, %+v, %v", data, m, err)
	}
	// The keys are under the prefix.
	top := newS3(t, srv, bucket, "")
	if got, err := top.List(ctx, ""); err != nil || strings.Join(got, ",") != "team/" {
		t.Errorf("List of the bucket's top = %q, %v; want [team/]", got, err)
	}
	if got, err := top.List(ctx, "team/registry/models/iris/"); err != nil || strings.Join(got, ",") != "release.json,versions/" {
		t.Errorf("List of the model = %q, %v", got, err)
	}

	t.Run("credentials from the MinIO variables", func(t *testing.T) {
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		t.Setenv("MINIO_ROOT_USER", srv.AccessKey)
		t.Setenv("MINIO_ROOT_PASSWORD", srv.SecretKey)
		opened, err := registry.Open(ctx, "s3://"+bucket+"/team/registry", registry.Options{})
		reg := releasetest.Wrap(opened, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Release(ctx, "iris"); err != nil {
			t.Errorf("Release: %v", err)
		}
	})
}

// testS3Errors checks that S3 errors become the registry's sentinels, with
// detail, and that the wrong ones do not.
func testS3Errors(t *testing.T, srv *miniotest.Server) {
	ctx := t.Context()
	t.Run("missing bucket", func(t *testing.T) {
		b := newS3(t, srv, "no-such-bucket", "p")
		if _, err := b.Get(ctx, "k"); !errors.Is(err, registry.ErrNotFound) || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
			t.Errorf("Get: error = %v, want ErrNotFound naming the bucket", err)
		}
		if _, err := b.List(ctx, ""); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("List: error = %v, want ErrNotFound", err)
		}
		for _, etag := range []string{"", "abc"} {
			if _, err := b.WriteIf(ctx, "k", []byte("x"), etag); !errors.Is(err, registry.ErrNotFound) || errors.Is(err, registry.ErrConflict) {
				t.Errorf("WriteIf(etag %q): error = %v, want ErrNotFound only", etag, err)
			}
		}
		if err := b.Upload(ctx, "k", strings.NewReader("x")); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Upload: error = %v, want ErrNotFound", err)
		}
	})
	t.Run("wrong credentials", func(t *testing.T) {
		bucket := srv.NewBucket(t)
		b := newS3At(t, srv.Endpoint, credentials.NewStaticV4(srv.AccessKey, "wrong-secret", ""), bucket, "")
		_, _, err := b.ReadVersioned(ctx, "k")
		if err == nil || errors.Is(err, registry.ErrNotFound) || errors.Is(err, registry.ErrConflict) {
			t.Fatalf("ReadVersioned: error = %v, want an error that is not a sentinel", err)
		}
		if !strings.Contains(err.Error(), "SignatureDoesNotMatch") || !strings.Contains(err.Error(), bucket) {
			t.Errorf("error %q does not give the S3 code and the bucket", err)
		}
	})
	t.Run("stale etag names the key", func(t *testing.T) {
		b := newS3(t, srv, srv.NewBucket(t), "")
		if _, err := b.WriteIf(ctx, "a/k", []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
		_, err := b.WriteIf(ctx, "a/k", []byte("y"), "0123")
		if !errors.Is(err, registry.ErrConflict) || !strings.Contains(err.Error(), `"a/k"`) {
			t.Errorf("error = %v, want ErrConflict naming the key", err)
		}
	})
}

// testS3UploadSizes uploads around the single-PUT limit, from readers that
// tell their size and readers that do not.
func testS3UploadSizes(t *testing.T, srv *miniotest.Server) {
	b := newS3(t, srv, srv.NewBucket(t), "sizes")
	ctx := t.Context()
	const part = 16 << 20
	tests := []struct {
		size  int
		sized bool // whether Upload can learn the size
	}{
		{0, true}, {0, false}, {1, true}, {1, false},
		{part, false},     // buffered, then one PUT
		{part + 1, false}, // buffered, then multipart
		{part + 1, true},  // multipart
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d bytes, size known %v", tc.size, tc.sized), func(t *testing.T) {
			data := strings.Repeat("x", tc.size-min(tc.size, 1)) + strings.Repeat("y", min(tc.size, 1))
			var r io.Reader = readerOnly{strings.NewReader(data)}
			if tc.sized {
				r = strings.NewReader(data)
			}
			var reported atomic.Int64
			progress := readFunc(func(p []byte) (int, error) {
				reported.Add(int64(len(p)))
				return len(p), nil
			})
			key := fmt.Sprintf("k-%d-%v", tc.size, tc.sized)
			if err := b.UploadWithProgress(ctx, key, r, progress); err != nil {
				t.Fatal(err)
			}
			got, etag, err := b.ReadVersioned(ctx, key)
			if err != nil || string(got) != data {
				t.Fatalf("ReadVersioned: %d bytes, %v; want %d bytes", len(got), err, tc.size)
			}
			// A multipart upload's ETag ends in "-<parts>".
			if multipart := strings.Contains(etag, "-"); multipart != (tc.size > part) {
				t.Errorf("ETag %s: multipart upload = %v, want %v", etag, multipart, tc.size > part)
			}
			if n := reported.Load(); n != int64(tc.size) {
				t.Errorf("progress saw %d bytes, want %d", n, tc.size)
			}
		})
	}
}

// readerOnly hides every method but Read, so that Upload cannot learn the
// size.
type readerOnly struct{ io.Reader }

// readFunc is an io.Reader made of a function.
type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// testS3Outage kills the server under a registry: calls fail (they do not
// hang past their context) and succeed again once the server is back.
func testS3Outage(t *testing.T, srv *miniotest.Server) {
	reg := releasetest.Wrap(registry.New(newS3(t, srv, srv.NewBucket(t), ""), registry.Options{}), nil)
	ctx := t.Context()
	if _, _, err := reg.Push(ctx, registry.PushRequest{Name: "iris", Version: "1", Model: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, _, err := reg.Fetch(short, "iris", "1"); err == nil || errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Fetch during the outage: error = %v, want a transport error", err)
	}
	srv.Restart(t)
	if data, _, err := reg.Fetch(ctx, "iris", "1"); err != nil || string(data) != "m" {
		t.Errorf("Fetch after the restart = %q, %v", data, err)
	}
}

// faultyProxy is an HTTP reverse proxy in front of MinIO that breaks
// responses on demand: it cuts the body of GETs of model.onnx objects short
// by closing the connection, and replaces the responses to PUTs of
// release.json objects, which the server has carried out, with 502 Bad
// Gateway.
type faultyProxy struct {
	endpoint string

	mu        sync.Mutex
	cutAfter  int // bytes of a cut body that get through
	cuts      int // GETs of model.onnx to cut; negative: all
	modelGets int // GETs of model.onnx answered with 200
	cut       int // of which cut
	toLose    int // responses to PUTs of release.json to lose
	lost      int // lost so far
}

// startFaultyProxy starts a proxy, passing everything on to the S3
// endpoint target until told otherwise; it is stopped when t ends.
func startFaultyProxy(t *testing.T, target string) *faultyProxy {
	t.Helper()
	p := &faultyProxy{}
	u := &url.URL{Scheme: "http", Host: target}
	tr := &http.Transport{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // the client signed the proxy's host
		},
		Transport:      tr,
		FlushInterval:  -1, // pass every byte on at once, so that a cut is mid-body
		ModifyResponse: p.modify,
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
	})
	p.endpoint = srv.Listener.Addr().String()
	return p
}

// cutModels makes the proxy cut the next `cuts` GETs of model.onnx (all if
// negative) after cutAfter bytes, and resets the counts.
func (p *faultyProxy) cutModels(cutAfter, cuts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutAfter, p.cuts, p.modelGets, p.cut = cutAfter, cuts, 0, 0
}

// modelCounts returns the GETs of model.onnx since cutModels and how many
// were cut.
func (p *faultyProxy) modelCounts() (gets, cut int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.modelGets, p.cut
}

// losePuts makes the proxy lose the responses to the next n PUTs of
// release.json, and resets the count of lost ones.
func (p *faultyProxy) losePuts(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.toLose, p.lost = n, 0
}

// lostPuts returns how many responses were lost since losePuts.
func (p *faultyProxy) lostPuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lost
}

func (p *faultyProxy) modify(resp *http.Response) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	path := resp.Request.URL.Path
	switch {
	case resp.Request.Method == http.MethodPut && strings.HasSuffix(path, "/release.json") && p.lost < p.toLose:
		p.lost++
		// ReverseProxy answers 502 Bad Gateway, which minio-go retries.
		return errors.New("faulty proxy: response lost")
	case resp.Request.Method == http.MethodGet && resp.StatusCode == http.StatusOK && strings.HasSuffix(path, "/model.onnx"):
		p.modelGets++
		if p.cuts < 0 || p.cut < p.cuts {
			p.cut++
			// The proxy fails to read on, so ReverseProxy aborts the
			// response: the client gets the headers with the full
			// Content-Length, cutAfter bytes and a closed connection.
			resp.Body = &cutBody{ReadCloser: resp.Body, left: p.cutAfter}
		}
	}
	return nil
}

// cutBody yields `left` bytes, then an error.
type cutBody struct {
	io.ReadCloser
	left int
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errors.New("faulty proxy: cut")
	}
	n, err := b.ReadCloser.Read(p[:min(len(p), b.left)])
	b.left -= n
	return n, err
}

// TestS3Locations checks the s3:// locations and settings Open refuses,
// without a server: opening sends no request.
func TestS3Locations(t *testing.T) {
	for _, env := range []string{registry.EnvS3Endpoint, registry.EnvS3Insecure, registry.EnvS3Region, registry.EnvS3PathStyle} {
		t.Setenv(env, "")
	}
	good := []struct {
		location, describe string
	}{
		{"s3://models", "s3://models (https://s3.amazonaws.com)"},
		{"s3://models/", "s3://models (https://s3.amazonaws.com)"},
		{"s3://my.models-1/team/prod", "s3://my.models-1/team/prod (https://s3.amazonaws.com)"},
		{"S3://models/prod/", "s3://models/prod (https://s3.amazonaws.com)"},
	}
	for _, tc := range good {
		t.Run(tc.location, func(t *testing.T) {
			r, err := registry.Open(t.Context(), tc.location, registry.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Describe(); got != tc.describe {
				t.Errorf("Describe() = %q, want %q", got, tc.describe)
			}
		})
	}

	bad := []struct {
		location string
		want     string // in the error
	}{
		{"s3:models", "want s3://bucket"},
		{"s3://", "Bucket name cannot be empty"},
		{"s3://ab", "shorter than 3"},
		{"s3://Models", "invalid characters"},
		{"s3://my_models", "invalid characters"},
		{"s3://-models", "invalid characters"},
		{"s3://192.168.1.10/x", "ip address"},
		{"s3://" + strings.Repeat("a", 64), "longer than 63"},
		{"s3://models//prod", `must not start with "/"`},
		{"s3://models/a//b", "empty segment"},
		{"s3://models/a/../b", `".." segment`},
		{"s3://models/./b", `"." segment`},
		{`s3://models/a\b`, "backslash"},
		{"s3://models/a%2Fb", "percent-encoding"},
		{"s3://models?region=eu-west-1", "no query"},
		{"s3://models/p#frag", "no query or fragment"},
		{"s3://key:secret@models/p", "not a bucket name"},
		{"s3://models:9000/p", "not a bucket name"},
	}
	for _, tc := range bad {
		t.Run(tc.location, func(t *testing.T) {
			_, err := registry.Open(t.Context(), tc.location, registry.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), strconv.Quote(tc.location)) {
				t.Errorf("Open(%q) error = %v, want one naming the location and saying %q", tc.location, err, tc.want)
			}
		})
	}

	settings := []struct {
		env, value, want string
	}{
		{registry.EnvS3Insecure, "yes please", "want true or false"},
		{registry.EnvS3PathStyle, "maybe", "want true or false"},
		{registry.EnvS3Endpoint, "http://127.0.0.1:9000", "without a scheme"},
		{registry.EnvS3Endpoint, "127.0.0.1:9000/path", "without a path"},
	}
	for _, tc := range settings {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			t.Setenv(tc.env, tc.value)
			_, err := registry.Open(t.Context(), "s3://models/prod", registry.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.env) && tc.env != registry.EnvS3Endpoint {
				t.Errorf("error = %v, want one saying %q", err, tc.want)
			}
		})
	}

	t.Run("settings", func(t *testing.T) {
		t.Setenv(registry.EnvS3Endpoint, "minio.internal:9000")
		t.Setenv(registry.EnvS3Insecure, "true")
		r, err := registry.Open(t.Context(), "s3://models/prod", registry.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := r.Describe(), "s3://models/prod (http://minio.internal:9000)"; got != want {
			t.Errorf("Describe() = %q, want %q", got, want)
		}
	})
}

// TestNewS3 checks the options NewS3 refuses.
func TestNewS3(t *testing.T) {
	tests := []struct {
		name string
		opts registry.S3Options
		want string
	}{
		{"no bucket", registry.S3Options{}, "bucket name"},
		{"bad prefix", registry.S3Options{Bucket: "models", Prefix: "a/../b"}, `".." segment`},
		{"slash prefix", registry.S3Options{Bucket: "models", Prefix: "/"}, "relative key prefix"},
		{"absolute prefix", registry.S3Options{Bucket: "models", Prefix: "/a"}, "empty segment"},
		{"endpoint URL", registry.S3Options{Bucket: "models", Endpoint: "https://s3.amazonaws.com"}, "without a scheme"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := registry.NewS3(t.Context(), tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewS3(%+v) error = %v, want one saying %q", tc.opts, err, tc.want)
			}
		})
	}
}
