package payloadlog

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/backoff"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
)

// received is one request a test sink got.
type received struct {
	header http.Header
	body   []byte
}

// sinkServer is a real HTTP server standing in for a CloudEvents sink;
// answer decides each request's status (nil: 200).
type sinkServer struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	answer func(n int, w http.ResponseWriter, r *http.Request) bool // true: answered
}

func newSinkServer(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request) bool) *sinkServer {
	s := &sinkServer{answer: answer}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, received{r.Header.Clone(), body})
		n := len(s.got)
		s.mu.Unlock()
		if s.answer != nil && s.answer(n, w, r) {
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sinkServer) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

func newHTTPLogger(t *testing.T, sink HTTPSink, opts Options) (*Logger, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	opts.HTTP = &sink
	if opts.SampleRates == nil {
		opts.SampleRates = map[string]float64{"m": 1}
	}
	if opts.Backoff == (backoff.Policy{}) {
		opts.Backoff = backoff.Policy{Base: time.Millisecond, Max: 5 * time.Millisecond}
	}
	if opts.Replica == "" {
		opts.Replica = "gw-0"
	}
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	return l, reg
}

func TestCloudEventsBinary(t *testing.T) {
	srv := newSinkServer(t, nil)
	l, reg := newHTTPLogger(t, HTTPSink{URL: srv.URL + "/events", Namespace: "prod"}, Options{})
	e := event("req 7%")
	l.Log(e)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := srv.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests, want a request event and a response event", len(got))
	}
	for i, want := range []struct{ typ, body string }{
		{TypeRequest, `{"id":"req 7%","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1.5,-2]}]}`},
		{TypeResponse, `{"model_name":"m","model_version":"1","id":"req 7%","outputs":[{"name":"y","shape":[1],"datatype":"INT64","data":[3]}]}`},
	} {
		h := got[i].header
		for k, v := range map[string]string{
			"Content-Type":            "application/json",
			"Ce-Specversion":          "1.0",
			"Ce-Id":                   "req%207%25", // percent-encoded (the binding's 3.1.3.2)
			"Ce-Type":                 want.typ,
			"Ce-Source":               "/modelgate/gw-0",
			"Ce-Time":                 "2025-03-04T05:06:07.000000008Z",
			"Ce-Inferenceservicename": "m",
			"Ce-Component":            "predictor",
			"Ce-Namespace":            "prod",
			"Ce-Modelversion":         "1",
			"Ce-Protocol":             "v2",
		} {
			if h.Get(k) != v {
				t.Errorf("event %d: %s = %q, want %q", i, k, h.Get(k), v)
			}
		}
		if h.Get("Ce-Datacontenttype") != "" {
			t.Errorf("binary mode must not send ce-datacontenttype")
		}
		if string(got[i].body) != want.body {
			t.Errorf("event %d data:\n got %s\nwant %s", i, got[i].body, want.body)
		}
	}
	if v := value(t, reg, "modelgate_payload_log_sent_total", "model=m"); v != 1 {
		t.Fatalf("sent %g", v)
	}
}

func TestCloudEventsStructuredPredict(t *testing.T) {
	srv := newSinkServer(t, nil)
	l, _ := newHTTPLogger(t, HTTPSink{URL: srv.URL, Mode: ModeStructured, Source: "urn:gw"}, Options{})
	e := event("p-1")
	e.Protocol = ProtocolPredict
	e.Body = []byte(" {\"features\": [1.5, -2]}\n")
	l.Log(e)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := srv.requests()
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	for i, want := range []struct {
		typ  string
		data string
	}{
		{TypeRequest, `{"features": [1.5, -2]}`},
		{TypeResponse, `{"model":"m","version":"1","prediction":[3],"outputs":{"y":[3]}}`},
	} {
		if ct := got[i].header.Get("Content-Type"); ct != "application/cloudevents+json; charset=UTF-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if got[i].header.Get("Ce-Id") != "" {
			t.Errorf("structured mode sent ce- headers")
		}
		var ev map[string]json.RawMessage
		if err := json.Unmarshal(got[i].body, &ev); err != nil {
			t.Fatalf("event %d is not one JSON object: %v\n%s", i, err, got[i].body)
		}
		attrs := map[string]string{}
		for k, v := range ev {
			if k == "data" {
				continue
			}
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				t.Fatalf("attribute %s: %s", k, v)
			}
			attrs[k] = s
		}
		wantAttrs := map[string]string{
			"specversion": "1.0", "id": "p-1", "source": "urn:gw", "type": want.typ, "time": "2025-03-04T05:06:07.000000008Z",
			"datacontenttype": "application/json", "inferenceservicename": "m", "component": "predictor",
			"modelversion": "1", "protocol": "predict",
		}
		if len(attrs) != len(wantAttrs) {
			t.Errorf("event %d attributes %v, want %v", i, attrs, wantAttrs)
		}
		for k, v := range wantAttrs {
			if attrs[k] != v {
				t.Errorf("event %d: %s = %q, want %q", i, k, attrs[k], v)
			}
		}
		if string(ev["data"]) != want.data {
			t.Errorf("event %d data %s, want %s", i, ev["data"], want.data)
		}
	}
}

// A sink that answers 500 gets the event again; 200 ends it.
func TestSinkAnswers500ThenOK(t *testing.T) {
	srv := newSinkServer(t, func(n int, w http.ResponseWriter, _ *http.Request) bool {
		if n == 1 {
			http.Error(w, "busy", http.StatusInternalServerError)
			return true
		}
		return false
	})
	l, reg := newHTTPLogger(t, HTTPSink{URL: srv.URL}, Options{Retries: 2})
	l.Log(event("r"))
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := srv.requests()
	if len(got) != 3 || got[0].header.Get("Ce-Type") != TypeRequest || got[1].header.Get("Ce-Type") != TypeRequest || got[2].header.Get("Ce-Type") != TypeResponse {
		t.Fatalf("%d requests: want the request event twice, then the response event", len(got))
	}
	if value(t, reg, "modelgate_payload_log_sent_total", "model=m") != 1 || value(t, reg, "modelgate_payload_log_send_failures_total") != 1 ||
		value(t, reg, "modelgate_payload_log_dropped_total", "model=m", "reason=sink_error") != 0 {
		t.Fatal("metrics after one retry")
	}
}

// A 4xx other than 408 and 429 is not retried: the event is dropped.
func TestSinkRefuses(t *testing.T) {
	srv := newSinkServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, "no such topic", http.StatusNotFound)
		return true
	})
	l, reg := newHTTPLogger(t, HTTPSink{URL: srv.URL}, Options{Retries: 3})
	l.Log(event("r"))
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.requests()); n != 1 {
		t.Fatalf("%d attempts, want 1", n)
	}
	if value(t, reg, "modelgate_payload_log_dropped_total", "model=m", "reason=sink_error") != 1 {
		t.Fatal("not counted")
	}
}

// A sink that hangs: each attempt ends at the timeout, the event is
// dropped after the retries, and meanwhile Log neither waits nor fails:
// what does not fit the queue is dropped and counted.
func TestSinkHangs(t *testing.T) {
	release := make(chan struct{})
	srv := newSinkServer(t, func(_ int, w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return true
	})
	defer close(release) // before the server's Close, which waits for handlers
	l, reg := newHTTPLogger(t, HTTPSink{URL: srv.URL}, Options{Timeout: 200 * time.Millisecond, Retries: 1, QueueSize: 1, Workers: 1})
	l.Log(event("0"))
	waitFor(t, "the first attempt", func() bool { return len(srv.requests()) >= 1 })
	for i := range 50 {
		l.Log(event(string(rune('a' + i%26))))
	}
	if v := value(t, reg, "modelgate_payload_log_dropped_total", "model=m", "reason=queue_full"); v < 49 {
		t.Fatalf("queue_full %g, want at least 49 (one may have taken the queue's place)", v)
	}
	waitFor(t, "the hanging sink's events dropped", func() bool {
		return value(t, reg, "modelgate_payload_log_dropped_total", "model=m", "reason=sink_error") >= 2
	})
	if v := value(t, reg, "modelgate_payload_log_send_failures_total"); v < 4 {
		t.Fatalf("failures %g: two attempts per event", v)
	}
	if value(t, reg, "modelgate_payload_log_sent_total", "model=m") != 0 {
		t.Fatal("sent to a hanging sink")
	}
}

// A sink that is down: connections are refused, events are dropped and
// counted after the retries.
func TestSinkDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	l, reg := newHTTPLogger(t, HTTPSink{URL: url}, Options{Retries: 2})
	for i := range 3 {
		l.Log(event(string(rune('a' + i))))
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := value(t, reg, "modelgate_payload_log_dropped_total", "model=m", "reason=sink_error"); v != 3 {
		t.Fatalf("sink_error %g, want 3", v)
	}
	if v := value(t, reg, "modelgate_payload_log_send_failures_total"); v != 9 {
		t.Fatalf("failures %g, want 3 events × 3 attempts", v)
	}
}

func TestHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"plain-id_1.2": "plain-id_1.2",
		`a "b" 100%`:   "a%20%22b%22%20100%25",
		"Euro € 😀":     "Euro%20%E2%82%AC%20%F0%9F%98%80", // the binding's own example
		"tab\there":    "tab%09here",
	} {
		if got := headerValue(in); got != want {
			t.Errorf("headerValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// BYTES and FP16 tensors encode as the OIP's JSON does.
func TestRequestDataTypes(t *testing.T) {
	e := &Event{Protocol: ProtocolGRPC, Model: "m", Version: "2", Inputs: []wire.Tensor{
		{Name: "s", Shape: []int64{2}, Data: [][]byte{[]byte("a\"b"), []byte("<c>")}},
		{Name: "h", Shape: []int64{1}, Data: []wire.Float16{0x3c00}},
	}}
	want := `{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","data":["a\"b","\u003cc\u003e"]},{"name":"h","shape":[1],"datatype":"FP16","data":[1]}]}`
	if got := string(requestData(e)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !json.Valid(requestData(e)) || !strings.HasPrefix(string(responseData(e)), `{"model_name":"m","model_version":"2","outputs":[]`) {
		t.Fatalf("response %s", responseData(e))
	}
}
