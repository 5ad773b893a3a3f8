package payloadlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/backoff"
	"github.com/modelgate/modelgate/internal/miniotest"
	"github.com/modelgate/modelgate/internal/testclock"
	"github.com/modelgate/modelgate/registry"
	"github.com/prometheus/client_golang/prometheus"
)

// line is one JSON line as a training job reads it.
type line struct {
	Time     time.Time `json:"time"`
	ID       string    `json:"id"`
	Model    string    `json:"model"`
	Version  string    `json:"version"`
	Protocol string    `json:"protocol"`
	Inputs   []struct {
		Name     string    `json:"name"`
		Shape    []int64   `json:"shape"`
		Datatype string    `json:"datatype"`
		Data     []float64 `json:"data"`
	} `json:"inputs"`
	Outputs []struct {
		Name     string  `json:"name"`
		Shape    []int64 `json:"shape"`
		Datatype string  `json:"datatype"`
		Data     []int64 `json:"data"`
	} `json:"outputs"`
}

// objects reads every object under prefix in b: key → its lines.
func objects(t *testing.T, b registry.Bucket, prefix string) map[string][]line {
	t.Helper()
	out := map[string][]line{}
	var walk func(p string)
	walk = func(p string) {
		names, err := b.List(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if strings.HasSuffix(n, "/") {
				walk(p + n)
				continue
			}
			rc, err := b.Get(context.Background(), p+n)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasSuffix(data, []byte("\n")) {
				t.Fatalf("%s does not end with a newline", p+n)
			}
			sc := bufio.NewScanner(bytes.NewReader(data))
			sc.Buffer(nil, 1<<24)
			for sc.Scan() {
				var l line
				if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
					t.Fatalf("%s: a line is not JSON: %v\n%s", p+n, err, sc.Bytes())
				}
				out[p+n] = append(out[p+n], l)
			}
		}
	}
	walk(prefix + "/")
	return out
}

func sortedKeys(m map[string][]line) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var start = time.Date(2025, 3, 4, 5, 59, 50, 0, time.UTC)

func newStorageLogger(t *testing.T, b registry.Bucket, sink StorageSink, opts Options) (*Logger, *prometheus.Registry, *testclock.Clock) {
	t.Helper()
	clock := testclock.New(start)
	reg := prometheus.NewRegistry()
	sink.Bucket = b
	if sink.Prefix == "" {
		sink.Prefix = "payloads"
	}
	opts.Storage = &sink
	opts.Registerer = reg
	opts.Now = clock.Now
	opts.Replica = "gw-0"
	if opts.SampleRates == nil {
		opts.SampleRates = map[string]float64{"m": 1, "n": 1}
	}
	if opts.Backoff == (backoff.Policy{}) {
		opts.Backoff = backoff.Policy{Base: time.Millisecond, Max: time.Millisecond}
	}
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return l, reg, clock
}

func at(id, model string, t time.Time) *Event {
	e := event(id)
	e.Model, e.Time = model, t
	return e
}

// run is the run part of the keys of a Logger started at start.
var run = strconv.FormatInt(start.UnixMilli(), 36)

// testStorage writes through a Logger into b and reads the objects back:
// one object per model and hour, at the documented keys, written at Close.
func testStorage(t *testing.T, b registry.Bucket) {
	l, reg, _ := newStorageLogger(t, b, StorageSink{}, Options{Workers: 1})
	l.Log(at("a", "m", start.Add(8*time.Second)))
	l.Log(at("b", "m", start.Add(9*time.Second)))
	l.Log(at("c", "m", start.Add(11*time.Second))) // 06:00:01: another hour, another object
	l.Log(at("d", "n", start.Add(9*time.Second)))
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := objects(t, b, "payloads")
	keys := sortedKeys(got)
	want := []string{
		"payloads/m/2025/03/04/05-gw-0-" + run + "-000001.jsonl",
		"payloads/m/2025/03/04/06-gw-0-" + run,
		"payloads/n/2025/03/04/05-gw-0-" + run,
	}
	if len(keys) != 3 || keys[0] != want[0] || !strings.HasPrefix(keys[1], want[1]) || !strings.HasPrefix(keys[2], want[2]) {
		t.Fatalf("objects %v, want %v...", keys, want)
	}
	first := got[keys[0]]
	if len(first) != 2 || first[0].ID != "a" || first[1].ID != "b" || len(got[keys[1]]) != 1 || got[keys[1]][0].ID != "c" || got[keys[2]][0].ID != "d" {
		t.Fatalf("lines %+v", got)
	}
	a := first[0]
	if !a.Time.Equal(start.Add(8*time.Second)) || a.Model != "m" || a.Version != "1" || a.Protocol != "v2" ||
		len(a.Inputs) != 1 || a.Inputs[0].Name != "x" || a.Inputs[0].Datatype != "FP32" || len(a.Inputs[0].Shape) != 2 || a.Inputs[0].Data[0] != 1.5 ||
		len(a.Outputs) != 1 || a.Outputs[0].Name != "y" || a.Outputs[0].Data[0] != 3 {
		t.Fatalf("line %+v", a)
	}
	if v := value(t, reg, "modelgate_payload_log_sent_total", "model=m"); v != 3 {
		t.Fatalf("sent %g", v)
	}
}

func TestStorageLocal(t *testing.T) {
	b, err := registry.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	testStorage(t, b)
}

func TestStorageMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	srv.Setenv(t)
	location := "s3://" + srv.NewBucket(t) + "/registry"
	b, err := OpenBucket(t.Context(), location)
	if err != nil {
		t.Fatal(err)
	}
	testStorage(t, b)
	// The registry on the same location sees no model in the payloads.
	r, err := registry.Open(t.Context(), location, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if models, err := r.Models(t.Context()); err != nil || len(models) != 0 {
		t.Fatalf("models %v %v", models, err)
	}
	// Another client reads what this one wrote.
	other, err := OpenBucket(t.Context(), location)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(objects(t, other, "payloads")); n != 3 {
		t.Fatalf("%d objects through another client", n)
	}
}

func TestOpenBucketLocal(t *testing.T) {
	dir := t.TempDir()
	for _, loc := range []string{dir, "file://" + dir} {
		b, err := OpenBucket(t.Context(), loc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.WriteIf(t.Context(), "payloads/x", []byte("1"), ""); err != nil && !errors.Is(err, registry.ErrConflict) {
			t.Fatal(err)
		}
	}
	for _, loc := range []string{"file://host/x", "s3:bucket", "gs://bucket"} {
		if _, err := OpenBucket(t.Context(), loc); err == nil {
			t.Errorf("%s opened", loc)
		}
	}
}

// An object is written once it reaches FlushBytes, before Close.
func TestStorageFlushBySize(t *testing.T) {
	b, _ := registry.NewLocal(t.TempDir())
	l, _, _ := newStorageLogger(t, b, StorageSink{FlushBytes: 1}, Options{Workers: 1})
	for _, id := range []string{"a", "b", "c"} {
		l.Log(at(id, "m", start))
	}
	waitFor(t, "three objects", func() bool { return len(objects(t, b, "payloads")) == 3 })
}

// An object is written once it is FlushInterval old by the Logger's clock.
func TestStorageFlushByAge(t *testing.T) {
	b, _ := registry.NewLocal(t.TempDir())
	l, reg, clock := newStorageLogger(t, b, StorageSink{FlushInterval: time.Minute}, Options{Workers: 1, checkEvery: time.Millisecond})
	l.Log(at("a", "m", start))
	s := l.sink.(*storageSink)
	waitFor(t, "the event buffered", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.open) == 1 })
	clock.Add(59 * time.Second)
	if n := len(objects(t, b, "payloads")); n != 0 {
		t.Fatalf("%d objects before the flush interval", n)
	}
	clock.Add(time.Second)
	waitFor(t, "the object written", func() bool { return value(t, reg, "modelgate_payload_log_sent_total", "model=m") == 1 })
	if n := len(objects(t, b, "payloads")); n != 1 {
		t.Fatalf("%d objects", n)
	}
}

// A key already taken (another run, or another writer) is left alone: the
// object goes to the next key.
func TestStorageKeyTaken(t *testing.T) {
	b, _ := registry.NewLocal(t.TempDir())
	taken := "payloads/m/2025/03/04/05-gw-0-" + run + "-000001.jsonl"
	if _, err := b.WriteIf(t.Context(), taken, []byte("{}\n"), ""); err != nil {
		t.Fatal(err)
	}
	l, _, _ := newStorageLogger(t, b, StorageSink{}, Options{})
	l.Log(at("a", "m", start))
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, _, err := b.ReadVersioned(t.Context(), taken)
	if err != nil || string(data) != "{}\n" {
		t.Fatalf("the taken object was replaced: %q %v", data, err)
	}
	got := objects(t, b, "payloads")
	if lines := got["payloads/m/2025/03/04/05-gw-0-"+run+"-000002.jsonl"]; len(lines) != 1 || lines[0].ID != "a" {
		t.Fatalf("objects %v", sortedKeys(got))
	}
}

// flakyBucket fails the first fails writes.
type flakyBucket struct {
	registry.Bucket
	fails atomic.Int32
}

func (f *flakyBucket) WriteIf(ctx context.Context, key string, data []byte, etag string) (string, error) {
	if f.fails.Add(-1) >= 0 {
		return "", errors.New("storage unavailable")
	}
	return f.Bucket.WriteIf(ctx, key, data, etag)
}

func TestStorageRetriesThenDrops(t *testing.T) {
	local, _ := registry.NewLocal(t.TempDir())
	b := &flakyBucket{Bucket: local}
	b.fails.Store(2)
	l, reg, _ := newStorageLogger(t, b, StorageSink{}, Options{Retries: 2})
	l.Log(at("a", "m", start))
	l.Log(at("b", "m", start))
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := value(t, reg, "modelgate_payload_log_sent_total", "model=m"); v != 2 {
		t.Fatalf("sent %g after two failed attempts and a third that worked", v)
	}

	b.fails.Store(100)
	l, reg, _ = newStorageLogger(t, b, StorageSink{}, Options{Retries: 1})
	l.Log(at("c", "m", start))
	l.Log(at("d", "m", start))
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := value(t, reg, "modelgate_payload_log_dropped_total", "model=m", "reason=sink_error"); v != 2 {
		t.Fatalf("sink_error %g: the object's two records", v)
	}
}
