package payloadlog

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/backoff"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSink records what the workers write; when block is set, each write
// waits for a value on it (or for the Logger's context to end).
type fakeSink struct {
	l       *Logger
	block   chan struct{}
	writing chan string // receives each event's id as its write begins
	mu      sync.Mutex
	got     []string
	closed  bool
	payload int // the size encode reports for each payload; 0: tiny
}

func (f *fakeSink) encode(e *Event) ([]byte, []byte) {
	f.mu.Lock()
	n := f.payload
	f.mu.Unlock()
	if n > 0 {
		return make([]byte, n), []byte("{}")
	}
	return []byte("{}"), []byte("{}")
}

func (f *fakeSink) write(ctx context.Context, e *Event, _, _ []byte) {
	if f.writing != nil {
		f.writing <- e.ID
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			f.l.failed(e.Model, 1, ctx.Err(), "event")
			return
		}
	}
	f.mu.Lock()
	f.got = append(f.got, e.ID)
	f.mu.Unlock()
	f.l.sent(e.Model, 1)
}

func (f *fakeSink) tick(context.Context, time.Time) {}
func (f *fakeSink) close(context.Context)           { f.mu.Lock(); f.closed = true; f.mu.Unlock() }

func (f *fakeSink) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

// newFake starts a Logger over a fake sink: the logger's own wiring, with
// the sink swapped in before the workers start.
func newFake(t *testing.T, opts Options, f *fakeSink) (*Logger, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	if opts.SampleRates == nil {
		opts.SampleRates = map[string]float64{"m": 1}
	}
	opts.HTTP = &HTTPSink{URL: "http://127.0.0.1:1/unused"}
	l, err := newWith(opts, func(l *Logger) sink { f.l = l; return f })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return l, reg
}

// value is the value of the counter or gauge name with the given labels
// (name=value pairs), 0 when absent.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for _, kv := range labels {
				k, v, _ := strings.Cut(kv, "=")
				if have[k] != v {
					continue next
				}
			}
			return metricValue(m)
		}
	}
	return 0
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// waitFor polls cond until it holds; the test's deadline bounds it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition
	}
}

func event(id string) *Event {
	return &Event{
		Protocol: ProtocolV2, ID: id, Model: "m", Version: "1", Time: time.Date(2025, 3, 4, 5, 6, 7, 8, time.UTC),
		Inputs:  []wire.Tensor{{Name: "x", Shape: []int64{1, 2}, Data: []float32{1.5, -2}}},
		Outputs: []wire.Tensor{{Name: "y", Shape: []int64{1}, Data: []int64{3}}},
	}
}

func TestSampled(t *testing.T) {
	for _, id := range []string{"", "a", "req-1"} {
		if !inSample(Draw(id), 1) || inSample(Draw(id), 0) {
			t.Fatalf("rates 1 and 0 with id %q", id)
		}
	}
	const n = 20000
	in := 0
	for i := range n {
		id := fmt.Sprintf("req-%d", i)
		d := Draw(id)
		if d != Draw(id) || d < 0 || d >= 1 {
			t.Fatalf("id %s drew %g, then %g", id, d, Draw(id))
		}
		s := inSample(d, 0.25)
		if s {
			in++
		}
		if inSample(d, 0.1) && !s {
			t.Fatalf("id %s is in the 10%% sample but not in the 25%% one: samples must nest", id)
		}
	}
	if in < n*23/100 || in > n*27/100 {
		t.Fatalf("%d of %d sequential ids in a 25%% sample", in, n)
	}
	random := 0
	for range n {
		if inSample(Draw(""), 0.25) {
			random++
		}
	}
	if random < n*23/100 || random > n*27/100 {
		t.Fatalf("%d of %d requests without ids in a 25%% sample", random, n)
	}

	l, _ := newFake(t, Options{SampleRates: map[string]float64{"all": 1, "tenth": 0.1, "none": 0}}, &fakeSink{})
	if !l.Sampled("all", 0.99) || l.Sampled("none", 0) || l.Sampled("other", 0) || !l.Enabled("none") || l.Enabled("other") {
		t.Fatal("Sampled/Enabled by model")
	}
	if !l.Sampled("tenth", 0.05) || l.Sampled("tenth", 0.5) || !l.Sampled("", 0.5) {
		t.Fatal("Sampled by draw")
	}
	l2, _ := newFake(t, Options{SampleRates: map[string]float64{"a": 0.1, "b": 0.2}}, &fakeSink{})
	if !l2.Sampled("", 0.15) || l2.Sampled("", 0.25) {
		t.Fatal(`Sampled("") is the largest rate's sample`)
	}
}

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := NewID(), NewID()
	if !re.MatchString(a) || a == b {
		t.Fatalf("ids %q %q", a, b)
	}
}

// A full queue drops at once and counts; Log never waits for the sink.
func TestQueueFullDropsWithoutBlocking(t *testing.T) {
	f := &fakeSink{block: make(chan struct{}), writing: make(chan string, 1)}
	l, reg := newFake(t, Options{QueueSize: 2, Workers: 1}, f)
	l.Log(event("0"))
	<-f.writing // the one worker holds event 0
	l.Log(event("1"))
	l.Log(event("2")) // the queue holds 1 and 2
	if got := value(t, reg, "modelgate_payload_log_queue_length"); got != 2 {
		t.Fatalf("queue length %g, want 2", got)
	}
	for i := range 100 {
		l.Log(event(fmt.Sprint(3 + i))) // would hang the test if Log waited
	}
	if got := value(t, reg, "modelgate_payload_log_dropped_total", "model=m", "reason=queue_full"); got != 100 {
		t.Fatalf("queue_full drops %g, want 100", got)
	}
	go func() {
		for range 3 {
			f.block <- struct{}{}
		}
	}()
	go func() {
		for range f.writing {
		}
	}()
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(f.writing)
	if got := strings.Join(f.ids(), ","); got != "0,1,2" {
		t.Fatalf("sent %s", got)
	}
	if got := value(t, reg, "modelgate_payload_log_sent_total", "model=m"); got != 3 {
		t.Fatalf("sent_total %g", got)
	}
	if !f.closed {
		t.Fatal("the sink was not closed")
	}
}

func TestSizeCap(t *testing.T) {
	f := &fakeSink{}
	l, reg := newFake(t, Options{MaxPayloadBytes: 1024}, f)
	big := event("big-tensor")
	big.Inputs = []wire.Tensor{{Name: "x", Shape: []int64{600}, Data: make([]float32, 600)}} // at least 1201 bytes of JSON
	l.Log(big)
	if got := value(t, reg, "modelgate_payload_log_dropped_total", "model=m", "reason=too_large"); got != 1 {
		t.Fatalf("too_large drops on the request path %g, want 1", got)
	}
	if got := value(t, reg, "modelgate_payload_log_queue_length"); got != 0 {
		t.Fatalf("a too-large event was queued")
	}
	f.mu.Lock()
	f.payload = 1025 // encodes over the cap, though its tensors are small
	f.mu.Unlock()
	l.Log(event("big-encoding"))
	waitFor(t, "the encoded event dropped", func() bool {
		return value(t, reg, "modelgate_payload_log_dropped_total", "model=m", "reason=too_large") == 2
	})
	if len(f.ids()) != 0 {
		t.Fatalf("sent %v", f.ids())
	}
}

func TestOnlyOptedInModels(t *testing.T) {
	f := &fakeSink{}
	l, reg := newFake(t, Options{}, f)
	e := event("other")
	e.Model = "other"
	l.Log(e)
	l.Log(event("mine"))
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.ids(), ","); got != "mine" {
		t.Fatalf("sent %s", got)
	}
	if value(t, reg, "modelgate_payload_log_dropped_total", "model=other", "reason=queue_full") != 0 {
		t.Fatal("a model that did not opt in has series")
	}
}

// Close flushes within its deadline; what is left is dropped as shutdown,
// and so is anything logged after Close.
func TestCloseDeadline(t *testing.T) {
	f := &fakeSink{block: make(chan struct{}), writing: make(chan string, 10)}
	l, reg := newFake(t, Options{QueueSize: 4, Workers: 1}, f)
	for i := range 3 {
		l.Log(event(fmt.Sprint(i)))
	}
	<-f.writing
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the deadline has passed already
	err := l.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "3 events dropped at shutdown") {
		t.Fatalf("Close: %v", err)
	}
	if got := value(t, reg, "modelgate_payload_log_dropped_total", "model=m", "reason=shutdown"); got != 3 {
		t.Fatalf("shutdown drops %g, want 3", got)
	}
	l.Log(event("late"))
	if got := value(t, reg, "modelgate_payload_log_dropped_total", "model=m", "reason=shutdown"); got != 4 {
		t.Fatalf("a late event is not counted: %g", got)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestDeliverRetries(t *testing.T) {
	l, reg := newFake(t, Options{Retries: 2, Backoff: backoff.Policy{Base: time.Microsecond, Max: time.Microsecond}}, &fakeSink{})
	calls := 0
	err := l.deliver(context.Background(), func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("flaky")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	calls = 0
	err = l.deliver(context.Background(), func(context.Context) error { calls++; return errors.New("down") })
	if err == nil || calls != 3 {
		t.Fatalf("err %v after %d calls, want 3 (1 + 2 retries)", err, calls)
	}
	calls = 0
	err = l.deliver(context.Background(), func(context.Context) error { calls++; return errPermanent{errors.New("refused")} })
	if err == nil || calls != 1 {
		t.Fatalf("a permanent error was retried: %d calls", calls)
	}
	if got := value(t, reg, "modelgate_payload_log_send_failures_total"); got != 2+3+1 {
		t.Fatalf("failures %g", got)
	}
	if got := value(t, reg, "modelgate_payload_log_send_seconds"); got != 3+3+1 {
		t.Fatalf("send_seconds count %g", got)
	}
}

func TestNewRefuses(t *testing.T) {
	local, err := registry.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]Options{
		"no sink":    {SampleRates: map[string]float64{"m": 1}},
		"two sinks":  {HTTP: &HTTPSink{URL: "http://x"}, Storage: &StorageSink{Prefix: "p"}},
		"rate":       {SampleRates: map[string]float64{"m": 1.5}, HTTP: &HTTPSink{URL: "http://x"}},
		"url":        {HTTP: &HTTPSink{URL: "ftp://x"}},
		"mode":       {HTTP: &HTTPSink{URL: "http://x", Mode: "batched"}},
		"no bucket":  {Storage: &StorageSink{Prefix: "p"}},
		"models dir": {Storage: &StorageSink{Bucket: local, Prefix: "models/x"}},
	} {
		if l, err := New(o); err == nil {
			_ = l.Close(context.Background())
			t.Errorf("%s: no error", name)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, p := range []string{"payloads", "logs/payloads", "a.b_c-d"} {
		if err := ValidatePrefix(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "/abs", "trailing/", "a//b", "a/../b", "models", "models/payloads"} {
		if err := ValidatePrefix(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestKeySegment(t *testing.T) {
	for in, want := range map[string]string{"gw-0": "gw-0", "Pod_A.local": "pod_a.local", "a b/c": "a-b-c", "": "gateway", "..": "gateway"} {
		if got := keySegment(in); got != want {
			t.Errorf("keySegment(%q) = %q, want %q", in, got, want)
		}
	}
}
