package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/grpcapi"
	"github.com/modelgate/modelgate/payloadlog"
	"github.com/modelgate/modelgate/wire"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/metadata"
)

// recordedPayloads is a PayloadLog that keeps what it is handed.
type recordedPayloads struct {
	models map[string]bool // opted in and sampled
	mu     sync.Mutex
	events []*payloadlog.Event
}

func (r *recordedPayloads) Sampled(model string, _ float64) bool {
	return r.models[model] || (model == "" && len(r.models) > 0)
}

func (r *recordedPayloads) Log(e *payloadlog.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recordedPayloads) take() []*payloadlog.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

func withPayloadLog(p PayloadLog) gwOption {
	return func(_ *catalog.Options, o *Options) { o.PayloadLog = p }
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// wantEvent checks one event's attributes and tensors.
func wantEvent(t *testing.T, e *payloadlog.Event, protocol, id string, rows int) {
	t.Helper()
	if e.Protocol != protocol || e.Model != "breast-cancer" || e.Version != "1" || e.Time.IsZero() {
		t.Fatalf("event %+v", e)
	}
	if id == "uuid" {
		if !uuidRE.MatchString(e.ID) {
			t.Fatalf("made-up id %q", e.ID)
		}
	} else if e.ID != id {
		t.Fatalf("id %q, want %q", e.ID, id)
	}
	if len(e.Inputs) != 1 || e.Inputs[0].Name != "features" || !reflect.DeepEqual(e.Inputs[0].Shape, []int64{int64(rows), 30}) || e.Inputs[0].DType() != wire.FP32 {
		t.Fatalf("inputs %+v", e.Inputs)
	}
	if len(e.Outputs) != 2 || e.Outputs[0].Name != "label" || e.Outputs[0].Len() != rows || e.Outputs[1].Name != "probabilities" {
		t.Fatalf("outputs %+v", e.Outputs)
	}
}

// Each protocol hands the logger one event per answered request of an
// opted-in model, with the inputs the model ran on and the answer's
// outputs; failed requests and other models hand none; the answers are the
// same bytes as without payload logging.
func TestPayloadLogHooks(t *testing.T) {
	rec := &recordedPayloads{models: map[string]bool{"breast-cancer": true}}
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}}, withPayloadLog(rec))
	plain := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}})

	predict := `{"features":` + jsonFloats(malignant) + `}`
	code, withLog := g.rawHeader("POST", "/predict", predict, RequestIDHeader, "pred-1")
	_, without := plain.rawHeader("POST", "/predict", predict, "", "")
	if code != 200 || string(withLog) != string(without) {
		t.Fatalf("/predict: %d %s, without payload logging %s", code, withLog, without)
	}
	ev := rec.take()
	if len(ev) != 1 {
		t.Fatalf("%d events", len(ev))
	}
	wantEvent(t, ev[0], payloadlog.ProtocolPredict, "pred-1", 1)
	if string(ev[0].Body) != predict {
		t.Fatalf("body %q", ev[0].Body)
	}

	infer := map[string]any{"id": "v2-1", "inputs": []map[string]any{{"name": "features", "shape": []int{2, 30}, "datatype": "FP32", "data": [][]float64{malignant, benign}}}}
	if code, body := g.do("POST", "/v2/models/breast-cancer/infer", infer); code != 200 || body["id"] != "v2-1" {
		t.Fatalf("/v2 infer: %d %v", code, body)
	}
	ev = rec.take()
	if len(ev) != 1 {
		t.Fatalf("%d events", len(ev))
	}
	wantEvent(t, ev[0], payloadlog.ProtocolV2, "v2-1", 2)
	if ev[0].Body != nil {
		t.Fatal("an OIP event carries the body")
	}

	// Binary tensor data, no id anywhere: one is made up.
	body, hl := binBody(`{"inputs":[{"name":"features","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":120}}]}`, binLE32f(float32s(malignant)...))
	if resp, out := g.binPost("/v2/models/breast-cancer/infer", body, "Inference-Header-Content-Length", hl); resp.StatusCode != 200 {
		t.Fatalf("binary infer: %d %s", resp.StatusCode, out)
	}
	ev = rec.take()
	if len(ev) != 1 {
		t.Fatalf("%d events", len(ev))
	}
	wantEvent(t, ev[0], payloadlog.ProtocolV2, "uuid", 1)
	if got := ev[0].Inputs[0].Data.([]float32); got[0] != float32(malignant[0]) {
		t.Fatalf("binary input %v", got[:3])
	}

	c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{}))
	ctx := grpcCtx(t)
	if _, err := c.ModelInfer(ctx, &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Id: "g-1", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", malignant)}}); err != nil {
		t.Fatal(err)
	}
	in := fp32Input("features", malignant, benign)
	raw := rawFP32(in.Contents.Fp32Contents)
	in.Contents = nil
	mdCtx := metadata.AppendToOutgoingContext(ctx, RequestIDMetadata, "g-2")
	if _, err := c.ModelInfer(mdCtx, &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{in}, RawInputContents: [][]byte{raw}}); err != nil {
		t.Fatal(err)
	}
	ev = rec.take()
	if len(ev) != 2 {
		t.Fatalf("%d events", len(ev))
	}
	wantEvent(t, ev[0], payloadlog.ProtocolGRPC, "g-1", 1)
	wantEvent(t, ev[1], payloadlog.ProtocolGRPC, "g-2", 2)

	// Failed requests are not logged.
	if code, _ := g.do("POST", "/v2/models/breast-cancer/infer", map[string]any{"inputs": []map[string]any{{"name": "features", "shape": []int{1, 3}, "datatype": "FP32", "data": []float64{1, 2, 3}}}}); code != 400 {
		t.Fatalf("bad shape: %d", code)
	}
	if code, _ := g.do("POST", "/predict?model=nope", map[string]any{"features": malignant}); code != 404 {
		t.Fatalf("unknown model: %d", code)
	}
	if ev := rec.take(); len(ev) != 0 {
		t.Fatalf("failed requests logged: %+v", ev[0])
	}
}

// A model that did not opt in, or a request that was not sampled, hands
// the logger nothing.
func TestPayloadLogNotSampled(t *testing.T) {
	rec := &recordedPayloads{models: map[string]bool{"other": true}}
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}}, withPayloadLog(rec))
	if code, _ := g.do("POST", "/predict", map[string]any{"features": malignant}); code != 200 {
		t.Fatal(code)
	}
	if code, _ := g.do("POST", "/v2/models/breast-cancer/infer", map[string]any{"inputs": []map[string]any{{"name": "features", "shape": []int{1, 30}, "datatype": "FP32", "data": malignant}}}); code != 200 {
		t.Fatal(code)
	}
	if ev := rec.take(); len(ev) != 0 {
		t.Fatalf("%d events", len(ev))
	}
}

// sink is a real CloudEvents sink: an HTTP server that keeps what it
// receives, or hangs until the test ends when hang is set.
type sink struct {
	*httptest.Server
	mu     sync.Mutex
	events []struct {
		header http.Header
		body   []byte
	}
}

func newSink(t *testing.T, hang bool) *sink {
	s := &sink{}
	release := make(chan struct{})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.events = append(s.events, struct {
			header http.Header
			body   []byte
		}{r.Header.Clone(), body})
		s.mu.Unlock()
		if hang {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	t.Cleanup(func() { close(release); s.Close() })
	return s
}

func (s *sink) received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// Through the real logger: each protocol's request reaches the sink as two
// CloudEvents sharing the request's id, with the OIP's JSON as data.
func TestPayloadLogToSink(t *testing.T) {
	s := newSink(t, false)
	reg := prometheus.NewRegistry()
	l, err := payloadlog.New(payloadlog.Options{
		SampleRates: map[string]float64{"breast-cancer": 1},
		HTTP:        &payloadlog.HTTPSink{URL: s.URL},
		Registerer:  reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}}, withPayloadLog(l))
	if code, _ := g.rawHeader("POST", "/predict", `{"features":`+jsonFloats(malignant)+`}`, RequestIDHeader, "p"); code != 200 {
		t.Fatal(code)
	}
	c := grpcapi.NewGRPCInferenceServiceClient(g.grpcClient(GRPCOptions{}))
	if _, err := c.ModelInfer(grpcCtx(t), &grpcapi.ModelInferRequest{ModelName: "breast-cancer", Id: "g", Inputs: []*grpcapi.ModelInferRequest_InferInputTensor{fp32Input("features", benign)}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) != 4 {
		t.Fatalf("%d CloudEvents, want 4", len(s.events))
	}
	byKey := map[string][]byte{}
	for _, e := range s.events {
		byKey[e.header.Get("Ce-Protocol")+" "+e.header.Get("Ce-Id")+" "+e.header.Get("Ce-Type")] = e.body
	}
	grpcReq := byKey["grpc g "+payloadlog.TypeRequest]
	var req struct {
		ID     string `json:"id"`
		Inputs []struct {
			Name string    `json:"name"`
			Data []float64 `json:"data"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(grpcReq, &req); err != nil || req.ID != "g" || len(req.Inputs) != 1 || len(req.Inputs[0].Data) != 30 {
		t.Fatalf("gRPC request event %s (%v); got %v", grpcReq, err, keys(byKey))
	}
	if r := byKey["grpc g "+payloadlog.TypeResponse]; !strings.HasPrefix(string(r), `{"model_name":"breast-cancer","model_version":"1","id":"g","outputs":[{"name":"label"`) {
		t.Fatalf("gRPC response event %s", r)
	}
	if r := byKey["predict p "+payloadlog.TypeResponse]; !strings.HasPrefix(string(r), `{"model":"breast-cancer","version":"1","prediction":[0]`) {
		t.Fatalf("/predict response event %s", r)
	}
}

func keys(m map[string][]byte) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	return k
}

// A sink that hangs costs drops, not latency: every request is answered
// while the one worker waits on the sink, and what does not fit the queue
// is counted on /metrics.
func TestPayloadLogHangingSink(t *testing.T) {
	s := newSink(t, true)
	reg := prometheus.NewRegistry()
	l, err := payloadlog.New(payloadlog.Options{
		SampleRates: map[string]float64{"breast-cancer": 1},
		HTTP:        &payloadlog.HTTPSink{URL: s.URL},
		QueueSize:   1,
		Workers:     1,
		Timeout:     time.Minute,
		Registerer:  reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // no flush: the sink hangs
		_ = l.Close(ctx)
	}()
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}}, withPayloadLog(l), func(_ *catalog.Options, o *Options) { o.Registerer, o.Gatherer = reg, reg })
	if code, _ := g.do("POST", "/predict", map[string]any{"features": malignant}); code != 200 {
		t.Fatal(code)
	}
	waitUntil(t, "the sink holds the first event", func() bool { return s.received() == 1 })
	for i := range 20 {
		if code, _ := g.do("POST", "/predict", map[string]any{"features": malignant}); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	m := g.metricsText()
	if !strings.Contains(m, `modelgate_payload_log_dropped_total{model="breast-cancer",reason="queue_full"} 19`) {
		t.Fatalf("queue_full drops not counted:\n%s", grepLines(m, "payload_log"))
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func jsonFloats(v []float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func float32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// rawHeader posts body with one header set (none when name is "") and
// returns the status and the answer's bytes.
func (g *gateway) rawHeader(method, path, body, name, value string) (int, []byte) {
	g.t.Helper()
	req, err := http.NewRequest(method, g.http.URL+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if name != "" {
		req.Header.Set(name, value)
	}
	resp, err := g.http.Client().Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatal(err)
	}
	return resp.StatusCode, out
}

// BenchmarkPayloadLog measures what payload logging costs a request:
// /predict of the demo model on ONNX Runtime through the real router,
// without payload logging, with a hundredth or every request logged to a
// sink that answers at once (the workers' encoding and sending share the
// cores), and with every request handed to a logger whose sink hangs (the
// request path's own cost: sampling, the event, a full queue's drop).
//
//	go test ./server -run '^$' -bench PayloadLog -benchmem -count 5
func BenchmarkPayloadLog(b *testing.B) {
	body := benchBody(b, map[string]any{"features": malignant})
	for _, c := range []struct {
		name string
		hang bool
		rate float64 // 0: off
	}{{"off", false, 0}, {"rate=0.01", false, 0.01}, {"rate=1", false, 1}, {"rate=1,sink-hangs", true, 1}} {
		b.Run(c.name, func(b *testing.B) {
			srv := benchServer(b)
			if c.rate > 0 {
				release := make(chan struct{})
				sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					if c.hang {
						select {
						case <-release:
						case <-r.Context().Done():
						}
					}
				}))
				b.Cleanup(func() { close(release); sink.Close() })
				l, err := payloadlog.New(payloadlog.Options{
					SampleRates: map[string]float64{"breast-cancer": c.rate},
					HTTP:        &payloadlog.HTTPSink{URL: sink.URL},
					Timeout:     time.Minute,
				})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() {
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					_ = l.Close(ctx)
				})
				srv.opts.PayloadLog = l
			}
			req := httptest.NewRequest(http.MethodPost, "/predict", nil)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req.Body = nopCloser{bytes.NewReader(body)}
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
