package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/drift"
	"github.com/modelgate/modelgate/internal/ortest"
	"github.com/modelgate/modelgate/internal/releasetest"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/modelgate/modelgate/stats"
	"github.com/prometheus/client_golang/prometheus"
)

// pushDemoWithProfile stores model (the demo model, or one with its
// signature) as breast-cancer version 1 with the profile of the demo's
// training data.
func pushDemoWithProfile(tb testing.TB, reg releasetest.Registry, l catalog.Loader, model []byte) {
	tb.Helper()
	ins, outs, err := catalog.Signature(l, model)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	m, _, err := reg.Push(ctx, registry.PushRequest{Name: "breast-cancer", Version: "1", Model: model, Inputs: ins, Outputs: outs})
	if err != nil {
		tb.Fatal(err)
	}
	train, err := os.ReadFile("../examples/breast-cancer/train.csv")
	if err != nil {
		tb.Fatal(err)
	}
	p, err := stats.ComputeProfile(train, stats.ProfileOptions{Features: stats.FeatureWidth(m.Inputs)})
	if err != nil {
		tb.Fatal(err)
	}
	js, _ := p.JSON()
	if err := reg.PutProfile(ctx, "breast-cancer", "1", js); err != nil {
		tb.Fatal(err)
	}
}

func TestDriftRoute(t *testing.T) {
	var tracker *drift.Tracker
	g := newGateway(t, false, nil, func(c *catalog.Options, o *Options) {
		// The tracker reads profiles from the gateway's registry.
		tracker = drift.New(drift.Options{Source: c.Source.(drift.Source), Registerer: o.Registerer})
		o.Drift = tracker
	})
	defer tracker.Close()
	pushDemoWithProfile(t, g.reg, g.loader, fakeDemo())
	if err := g.cat.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}

	code, body := g.do("GET", "/v2/models/breast-cancer/drift", nil)
	if code != 200 || len(body["versions"].([]any)) != 0 {
		t.Fatalf("before any request: %d %v", code, body)
	}
	// The first request starts tracking the version; its profile is read in
	// the background, and requests are counted once it is there.
	if code, _ := g.do("POST", "/predict", map[string]any{"features": malignant}); code != 200 {
		t.Fatal(code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st drift.ModelStats
		_, raw := g.raw("GET", "/v2/models/breast-cancer/drift", nil)
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Versions) == 1 && st.Versions[0].Profile {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile not read: %s", raw)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
	g.do("POST", "/predict", map[string]any{"instances": [][]float64{malignant, malignant}})
	g.do("POST", "/v2/models/breast-cancer/infer", map[string]any{
		"inputs": []map[string]any{{"name": "features", "shape": []int{1, 30}, "datatype": "FP32", "data": malignant}},
	})
	g.do("POST", "/predict", map[string]any{"features": []float64{1, 2}}) // refused: not counted
	var st drift.ModelStats
	_, raw := g.raw("GET", "/v2/models/breast-cancer/drift", nil)
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	v := st.Versions[0]
	if st.Model != "breast-cancer" || st.SampleRate != 1 || v.Version != "1" || v.Rows != 3 || len(v.Features) != 30 || v.Features[0].Name != "mean radius" {
		t.Fatalf("drift: %s", raw)
	}
	var n uint64
	for _, c := range v.Features[0].Counts {
		n += c
	}
	if n != 3 || len(v.Features[0].Counts) != len(v.Features[0].Edges)+1 {
		t.Fatalf("mean radius: %+v", v.Features[0])
	}

	if code, body := g.do("GET", "/v2/models/nope/drift", nil); code != 404 || !strings.Contains(body["error"].(string), "unknown model") {
		t.Fatalf("unknown model: %d %v", code, body)
	}
	off := newGateway(t, true, []pushSpec{{"m", "1", servingtest.Scaled(1)}})
	if code, body := off.do("GET", "/v2/models/m/drift", nil); code != 404 || !strings.Contains(body["error"].(string), "drift tracking is off") {
		t.Fatalf("without a tracker: %d %v", code, body)
	}
}

// BenchmarkDrift measures what live input statistics cost on the request
// path: /predict through the real router at batch 1 and 32, without a
// tracker, with one counting every request, and with one sampling a tenth.
//
//	go test ./server -run '^$' -bench Drift -benchmem -count 5
func BenchmarkDrift(b *testing.B) {
	one := benchBody(b, map[string]any{"features": malignant})
	rows := make([][]float64, 32)
	for i := range rows {
		rows[i] = malignant
	}
	batch := benchBody(b, map[string]any{"instances": rows})
	for _, tracking := range []struct {
		name string
		rate float64 // 0: no tracker
	}{{"off", 0}, {"rate=1", 1}, {"rate=0.1", 0.1}} {
		for _, body := range []struct {
			name string
			data []byte
		}{{"batch=1", one}, {"batch=32", batch}} {
			b.Run(tracking.name+"/"+body.name, func(b *testing.B) {
				srv := driftBenchServer(b, tracking.rate)
				req := httptest.NewRequest(http.MethodPost, "/predict", nil)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					req.Body = nopCloser{bytes.NewReader(body.data)}
					rec := httptest.NewRecorder()
					srv.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
			})
		}
	}
}

// driftBenchServer serves the demo model with its profile; rate 0 has no
// tracker, otherwise the tracker has read the profile before it returns.
func driftBenchServer(b *testing.B, rate float64) *Server {
	b.Helper()
	bucket, err := registry.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	reg := registry.New(bucket, registry.Options{})
	rt := ortest.Runtime(b)
	pushDemoWithProfile(b, releasetest.Wrap(reg, nil), rt, benchDemo(b))
	metrics := prometheus.NewRegistry()
	cat := catalog.New(catalog.Options{Source: reg, Loader: rt, Registerer: metrics})
	b.Cleanup(cat.Close)
	ctx := context.Background()
	if err := cat.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	opts := Options{Catalog: cat, Registerer: metrics, Gatherer: metrics}
	if rate > 0 {
		tr := drift.New(drift.Options{Source: reg, SampleRate: rate, Registerer: metrics})
		b.Cleanup(tr.Close)
		if err := tr.Prepare(ctx, "breast-cancer", "1"); err != nil {
			b.Fatal(err)
		}
		opts.Drift = tr
	}
	return New(opts)
}
