package server

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/modelgate/modelgate/wire"
)

// wrapLoader loads its models with base and makes them report provider
// (when set) and fail every run whose first input value is failOn, as a
// model ONNX Runtime cannot run on some inputs.
type wrapLoader struct {
	base     catalog.Loader
	provider string
	failOn   float32
}

func (l wrapLoader) Load(b []byte, o serving.ModelOptions) (serving.Model, error) {
	m, err := l.base.Load(b, o)
	if err != nil {
		return nil, err
	}
	return wrapped{m, l}, nil
}

type wrapped struct {
	serving.Model
	l wrapLoader
}

func (m wrapped) Info() serving.Info {
	i := m.Model.Info()
	if m.l.provider != "" {
		i.Provider = m.l.provider
	}
	return i
}

func (m wrapped) Run(ctx context.Context, in []wire.Tensor, outputs []string) ([]wire.Tensor, error) {
	if d, ok := in[0].Data.([]float32); ok && len(d) > 0 && m.l.failOn != 0 && d[0] == m.l.failOn {
		return nil, errors.New("the model cannot run this input")
	}
	return m.Model.Run(ctx, in, outputs)
}

// withWrap wraps the loader in place (after withORT, when both are given).
func withWrap(provider string, failOn float32) gwOption {
	return func(c *catalog.Options, _ *Options) {
		c.Loader = wrapLoader{base: c.Loader, provider: provider, failOn: failOn}
	}
}

// withBatchingOf turns dynamic batching on for one model only.
func withBatchingOf(model string, max int, delay time.Duration) gwOption {
	return func(c *catalog.Options, _ *Options) {
		c.SessionOptions = func(m string) serving.SessionOptions {
			if m != model {
				return serving.SessionOptions{}
			}
			return serving.SessionOptions{Batching: serving.BatchOptions{MaxBatchSize: max, MaxQueueDelay: delay}}
		}
	}
}

func TestModelConfig(t *testing.T) {
	fixed := servingtest.Identity(wire.INT32, 2, 3) // no batch dimension
	cases := []struct {
		name  string
		model []byte
		opts  []gwOption
		path  string
		want  string
	}{
		{"no batching", fakeDemo(), nil, "/v2/models/m/config", `{"name":"m","platform":"onnxruntime_onnx","backend":"onnxruntime","max_batch_size":0,
			"input":[{"name":"features","data_type":"TYPE_FP32","dims":[-1,30]}],
			"output":[{"name":"label","data_type":"TYPE_INT64","dims":[-1]},{"name":"probabilities","data_type":"TYPE_FP32","dims":[-1,2]}],
			"instance_group":[{"name":"m_0","kind":"KIND_CPU","count":1}],
			"parameters":{"modelgate_version":{"string_value":"1"},"modelgate_provider":{"string_value":"cpu"}}}`},
		{"batching: dims without the batch dimension", fakeDemo(), []gwOption{withBatching(16, 1500*time.Microsecond, nil)}, "/v2/models/m/config", `{"name":"m","platform":"onnxruntime_onnx","backend":"onnxruntime","max_batch_size":16,
			"input":[{"name":"features","data_type":"TYPE_FP32","dims":[30]}],
			"output":[{"name":"label","data_type":"TYPE_INT64","dims":[]},{"name":"probabilities","data_type":"TYPE_FP32","dims":[2]}],
			"dynamic_batching":{"max_queue_delay_microseconds":1500},
			"instance_group":[{"name":"m_0","kind":"KIND_CPU","count":1}],
			"parameters":{"modelgate_version":{"string_value":"1"},"modelgate_provider":{"string_value":"cpu"}}}`},
		{"batching asked for a model without a batch dimension", fixed, []gwOption{withBatching(16, time.Millisecond, nil)}, "/v2/models/m/config", `{"name":"m","platform":"onnxruntime_onnx","backend":"onnxruntime","max_batch_size":0,
			"input":[{"name":"x","data_type":"TYPE_INT32","dims":[2,3]}],
			"output":[{"name":"y","data_type":"TYPE_INT32","dims":[2,3]}],
			"instance_group":[{"name":"m_0","kind":"KIND_CPU","count":1}],
			"parameters":{"modelgate_version":{"string_value":"1"},"modelgate_provider":{"string_value":"cpu"}}}`},
		{"on the GPU", fakeDemo(), []gwOption{withWrap(serving.ProviderCUDA, 0)}, "/v2/models/m/versions/1/config", `{"name":"m","platform":"onnxruntime_onnx","backend":"onnxruntime","max_batch_size":0,
			"input":[{"name":"features","data_type":"TYPE_FP32","dims":[-1,30]}],
			"output":[{"name":"label","data_type":"TYPE_INT64","dims":[-1]},{"name":"probabilities","data_type":"TYPE_FP32","dims":[-1,2]}],
			"instance_group":[{"name":"m_0","kind":"KIND_GPU","count":1}],
			"parameters":{"modelgate_version":{"string_value":"1"},"modelgate_provider":{"string_value":"cuda"}}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, true, []pushSpec{{"m", "1", tc.model}}, tc.opts...)
			code, got := g.do("GET", tc.path, nil)
			var want map[string]any
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if code != http.StatusOK || !jsonEqual(got, want) {
				t.Fatalf("%d\n got %s\nwant %s", code, mustJSON(got), mustJSON(want))
			}
		})
	}
	t.Run("per model and version", func(t *testing.T) {
		g := newGateway(t, true, []pushSpec{{"a", "1", fakeDemo()}, {"b", "1", fakeDemo()}}, withBatchingOf("a", 8, time.Millisecond))
		g.push("b", "2", fakeDemo())
		for path, want := range map[string][2]any{
			"/v2/models/a/config":            {8.0, "1"},
			"/v2/models/b/config":            {0.0, "1"},
			"/v2/models/b/versions/2/config": {0.0, "2"},
		} {
			code, m := g.do("GET", path, nil)
			if code != 200 || m["max_batch_size"] != want[0] || m["parameters"].(map[string]any)["modelgate_version"].(map[string]any)["string_value"] != want[1] {
				t.Errorf("%s: %d %v", path, code, m)
			}
		}
	})
	t.Run("demo model on ONNX Runtime", func(t *testing.T) {
		g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", demoModel(t)}}, withORT(t), withBatching(32, time.Millisecond, nil))
		code, m := g.do("GET", "/v2/models/breast-cancer/config", nil)
		if code != 200 || m["max_batch_size"] != 32.0 || mustJSON(m["input"]) != `[{"data_type":"TYPE_FP32","dims":[30],"name":"features"}]` ||
			mustJSON(m["output"]) != `[{"data_type":"TYPE_INT64","dims":[],"name":"label"},{"data_type":"TYPE_FP32","dims":[2],"name":"probabilities"}]` {
			t.Fatalf("%d %v", code, m)
		}
	})
	t.Run("unknown model or version", func(t *testing.T) {
		g := newGateway(t, true, []pushSpec{{"m", "1", fakeDemo()}})
		for path, msg := range map[string]string{"/v2/models/nope/config": "unknown model", "/v2/models/m/versions/9/config": "unknown version"} {
			if code, m := g.do("GET", path, nil); code != http.StatusNotFound || !strings.Contains(m["error"].(string), msg) {
				t.Errorf("%s: %d %v", path, code, m)
			}
		}
	})
}

// statsOf decodes a statistics answer, checking every field perf_analyzer
// reads is there with its JSON type.
func statsOf(t *testing.T, g *gateway, path string) []map[string]any {
	t.Helper()
	code, m := g.do("GET", path, nil)
	if code != http.StatusOK {
		t.Fatalf("%s: %d %v", path, code, m)
	}
	list, ok := m["model_stats"].([]any)
	if !ok || len(m) != 1 {
		t.Fatalf("%s: %v", path, m)
	}
	var out []map[string]any
	for _, e := range list {
		st := e.(map[string]any)
		keys := slices.Sorted(maps.Keys(st))
		if !slices.Equal(keys, []string{"batch_stats", "execution_count", "inference_count", "inference_stats", "last_inference", "name", "version"}) {
			t.Fatalf("%s: fields %v", path, keys)
		}
		if _, ok := st["version"].(string); !ok {
			t.Fatalf("%s: version %v is not a string", path, st["version"])
		}
		is := st["inference_stats"].(map[string]any)
		for _, k := range []string{"success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss"} {
			d, ok := is[k].(map[string]any)
			if _, isNum := d["ns"].(float64); !ok || !isNum || len(d) != 2 {
				t.Fatalf("%s: inference_stats.%s = %v", path, k, is[k])
			}
		}
		for _, b := range st["batch_stats"].([]any) {
			b := b.(map[string]any)
			for _, k := range []string{"compute_input", "compute_infer", "compute_output"} {
				if _, ok := b[k].(map[string]any)["count"].(float64); !ok {
					t.Fatalf("%s: batch_stats %v", path, b)
				}
			}
		}
		out = append(out, st)
	}
	return out
}

func count(st map[string]any, path ...string) float64 {
	var v any = st
	for _, p := range path {
		v = v.(map[string]any)[p]
	}
	return v.(float64)
}

// batchCounts maps each batch size to its runs.
func batchCounts(st map[string]any) map[int]int {
	out := map[int]int{}
	for _, b := range st["batch_stats"].([]any) {
		b := b.(map[string]any)
		out[int(b["batch_size"].(float64))] = int(count(b, "compute_infer", "count"))
	}
	return out
}

// metricValue is one sample of the gateway's /metrics page.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no series %s on /metrics", series)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestStatistics: real requests are counted per version, as successes
// (with their rows) and failures, one execution per run; /metrics reads
// the same counters.
func TestStatistics(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"m", "1", fakeDemo()}, {"other", "1", fakeDemo()}}, withWrap("", 999))
	g.push("m", "2", fakeDemo())
	start := time.Now().UnixMilli()
	for _, body := range []any{
		map[string]any{"features": malignant},
		map[string]any{"instances": [][]float64{malignant, benign, malignant}},
	} {
		if code, m := g.do("POST", "/predict?model=m", body); code != 200 {
			t.Fatalf("%d %v", code, m)
		}
	}
	infer := map[string]any{"inputs": []map[string]any{{"name": "features", "shape": []int{2, 30}, "datatype": "FP32", "data": append(append([]float64{}, benign...), malignant...)}}}
	if code, m := g.do("POST", "/v2/models/m/infer", infer); code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	failing := append([]float64{999}, benign[1:]...)
	if code, m := g.do("POST", "/predict?model=m", map[string]any{"features": failing}); code != http.StatusInternalServerError {
		t.Fatalf("a failing run: %d %v", code, m)
	}
	// Refused before any session runs it: not the version's statistics.
	if code, _ := g.do("POST", "/predict?model=m", map[string]any{"features": benign[:29]}); code != http.StatusBadRequest {
		t.Fatalf("bad request: %d", code)
	}
	end := time.Now().UnixMilli()

	stats := statsOf(t, g, "/v2/models/m/stats")
	if len(stats) != 1 || stats[0]["name"] != "m" || stats[0]["version"] != "1" {
		t.Fatalf("only the loaded version 1: %v", stats)
	}
	st := stats[0]
	if got := [...]float64{count(st, "inference_count"), count(st, "execution_count"), count(st, "inference_stats", "success", "count"), count(st, "inference_stats", "fail", "count")}; got != [...]float64{6, 3, 3, 1} {
		t.Fatalf("inferences, executions, successes, failures: %v", got)
	}
	if last := int64(count(st, "last_inference")); last < start || last > end {
		t.Fatalf("last_inference %d not within [%d, %d]", last, start, end)
	}
	for _, k := range []string{"queue", "compute_input", "compute_infer", "compute_output"} {
		if c := count(st, "inference_stats", k, "count"); c != 3 {
			t.Errorf("%s counted %v times", k, c)
		}
	}
	if count(st, "inference_stats", "success", "ns") <= 0 || count(st, "inference_stats", "compute_infer", "ns") <= 0 {
		t.Errorf("no time counted: %v", st["inference_stats"])
	}
	if got := batchCounts(st); !maps.Equal(got, map[int]int{1: 1, 2: 1, 3: 1}) {
		t.Errorf("batch sizes: %v", got)
	}

	// The metrics are the same counters.
	text := g.metricsText()
	for series, want := range map[string]float64{
		`modelgate_inference_requests_total{model="m",result="success",version="1"}`: 3,
		`modelgate_inference_requests_total{model="m",result="fail",version="1"}`:    1,
		`modelgate_inference_rows_total{model="m",version="1"}`:                      6,
		`modelgate_inference_executions_total{model="m",version="1"}`:                3,
	} {
		if got := metricValue(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if got, want := metricValue(t, text, `modelgate_inference_request_seconds_total{model="m",result="success",version="1"}`), count(st, "inference_stats", "success", "ns")/1e9; got != want {
		t.Errorf("request seconds %v, statistics %v", got, want)
	}

	// All models, one version, a version loaded on demand, errors.
	all := statsOf(t, g, "/v2/models/stats")
	if len(all) != 2 || all[0]["name"] != "m" || all[1]["name"] != "other" || count(all[1], "inference_count") != 0 || count(all[1], "last_inference") != 0 {
		t.Fatalf("every model: %v", all)
	}
	if one := statsOf(t, g, "/v2/models/m/versions/1/stats"); len(one) != 1 || !jsonEqual(one[0], st) {
		t.Fatalf("version 1: %v", one)
	}
	code, m := g.do("GET", "/v2/models/m/versions/2/stats", nil)
	if code != http.StatusNotFound || !strings.Contains(m["error"].(string), "version 2 of m is not loaded on this gateway (loaded: 1)") {
		t.Fatalf("a version not loaded: %d %v", code, m)
	}
	if code, m := g.do("POST", "/predict?model=m&version=2", map[string]any{"features": benign}); code != 200 {
		t.Fatalf("pinned: %d %v", code, m)
	}
	if two := statsOf(t, g, "/v2/models/m/versions/2/stats"); len(two) != 1 || two[0]["version"] != "2" || count(two[0], "inference_count") != 1 {
		t.Fatalf("version 2 once loaded: %v", two)
	}
	if versions := statsOf(t, g, "/v2/models/m/stats"); len(versions) != 2 || versions[1]["version"] != "2" {
		t.Fatalf("both versions: %v", versions)
	}
	for path, msg := range map[string]string{
		"/v2/models/nope/stats":            "unknown model",
		"/v2/models/m/versions/7/stats":    `unknown version: model m has no version "7"`,
		"/v2/models/nope/versions/1/stats": "unknown model",
	} {
		if code, m := g.do("GET", path, nil); code != http.StatusNotFound || !strings.Contains(m["error"].(string), msg) {
			t.Errorf("%s: %d %v", path, code, m)
		}
	}
}

// TestStatisticsBatched: with batching, concurrent requests merge into
// fewer executions; every row is counted once, in the batch sizes too.
func TestStatisticsBatched(t *testing.T) {
	slow := servingtest.Spec{Kind: "linear", N: 30, K: 2, W: make([]float32, 60), B: []float32{0, 1}, Delay: 5 * time.Millisecond}.Bytes()
	g := newGateway(t, true, []pushSpec{{"m", "1", slow}}, withBatching(8, 20*time.Millisecond, nil))
	requests := 0
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if code, m := g.do("POST", "/predict", map[string]any{"features": benign}); code != 200 {
					t.Errorf("%d %v", code, m)
				}
			})
		}
		wg.Wait()
		requests += 16
		if st := statsOf(t, g, "/v2/models/m/stats")[0]; count(st, "execution_count") < float64(requests) {
			break
		}
	}
	st := statsOf(t, g, "/v2/models/m/stats")[0]
	execs, rows := 0, 0
	for size, n := range batchCounts(st) {
		if size < 1 || size > 8 {
			t.Errorf("batch of %d rows", size)
		}
		execs += n
		rows += size * n
	}
	if count(st, "inference_stats", "success", "count") != float64(requests) || count(st, "inference_count") != float64(requests) || rows != requests {
		t.Fatalf("%d requests of one row: %v (batches %v)", requests, st, batchCounts(st))
	}
	if float64(execs) != count(st, "execution_count") || execs >= requests {
		t.Fatalf("%d executions for %d requests: %v", execs, requests, batchCounts(st))
	}
	if count(st, "inference_stats", "queue", "ns") <= 0 {
		t.Errorf("merged requests waited no time in the queue: %v", st["inference_stats"])
	}
	if text := g.metricsText(); metricValue(t, text, `modelgate_inference_executions_total{model="m",version="1"}`) != float64(execs) {
		t.Errorf("executions on /metrics differ from the statistics' %d", execs)
	}
}

// TestStatisticsOnONNXRuntime: the demo model's statistics on ONNX
// Runtime, whose runs time their phases themselves.
func TestStatisticsOnONNXRuntime(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", demoModel(t)}}, withORT(t))
	if code, m := g.do("POST", "/predict", map[string]any{"instances": [][]float64{malignant, benign}}); code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	st := statsOf(t, g, "/v2/models/breast-cancer/stats")[0]
	if count(st, "inference_count") != 2 || count(st, "execution_count") != 1 || !maps.Equal(batchCounts(st), map[int]int{2: 1}) {
		t.Fatalf("%v", st)
	}
	for _, k := range []string{"compute_input", "compute_infer", "compute_output"} {
		if count(st, "inference_stats", k, "ns") <= 0 {
			t.Errorf("%s took no time: %v", k, st["inference_stats"])
		}
	}
}

func TestRepositoryIndex(t *testing.T) {
	broken := servingtest.Spec{Kind: "linear", N: 30, K: 2, W: make([]float32, 60), B: []float32{0, 1}, Fail: "cannot run"}.Bytes()
	g := newGateway(t, false, []pushSpec{{"m", "1", fakeDemo()}, {"broken", "1", broken}})
	index := func(body any) []any {
		t.Helper()
		code, raw := g.raw("POST", "/v2/repository/index", body)
		var list []any
		if err := json.Unmarshal(raw, &list); code != 200 || err != nil {
			t.Fatalf("index: %d %s", code, raw)
		}
		return list
	}
	// Before the registry was read, nothing is known.
	if got := index(nil); len(got) != 0 {
		t.Fatalf("before the first sync: %v", got)
	}
	if err := g.cat.Sync(context.Background()); err == nil {
		t.Fatal("the broken model loaded")
	}
	ctx := context.Background()
	g.push("m", "2", fakeDemo())
	g.push("m", "3", fakeDemo())
	if _, err := g.reg.StartCanary(ctx, "m", "2", release.DefaultPlan(), true, "test"); err != nil {
		t.Fatal(err)
	}
	if err := g.cat.Sync(ctx); err == nil {
		t.Fatal("the broken model loaded")
	}
	if code, m := g.do("GET", "/v2/models/m/versions/3/ready", nil); code != 200 {
		t.Fatalf("pinning 3: %d %v", code, m)
	}
	got := index("")
	want := []any{
		map[string]any{"name": "broken", "version": "1", "state": "UNAVAILABLE", "reason": "model broken version 1: warm-up of broken version 1: cannot run"},
		map[string]any{"name": "m", "version": "1", "state": "READY", "reason": ""},
		map[string]any{"name": "m", "version": "2", "state": "READY", "reason": ""},
		map[string]any{"name": "m", "version": "3", "state": "READY", "reason": ""},
	}
	if !jsonEqual(got, want) {
		t.Fatalf("index\n got %s\nwant %s", mustJSON(got), mustJSON(want))
	}
	if got := index(map[string]any{"ready": true}); !jsonEqual(got, want[1:]) {
		t.Fatalf("ready only: %s", mustJSON(got))
	}
	if got := index(map[string]any{"ready": false}); !jsonEqual(got, want) {
		t.Fatalf("ready false: %s", mustJSON(got))
	}
	if code, m := g.do("POST", "/v2/repository/index", "{"); code != http.StatusBadRequest || !strings.Contains(m["error"].(string), "repository index request") {
		t.Fatalf("bad body: %d %v", code, m)
	}
}

// TestRepositoryIndexLoading: a served model whose version is still
// loading is LOADING, without a version until the registry names one.
func TestRepositoryIndexLoading(t *testing.T) {
	g := newGateway(t, false, []pushSpec{{"m", "1", fakeDemo()}}, withModels("m"))
	code, raw := g.raw("POST", "/v2/repository/index", nil)
	if code != 200 || string(raw) != `[{"name":"m","state":"LOADING","reason":""}]`+"\n" {
		t.Fatalf("%d %s", code, raw)
	}
}

// TestRepositoryControlRefused: load and unload answer 405 with an empty
// Allow header and say that promote moves versions.
func TestRepositoryControlRefused(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"m", "1", fakeDemo()}})
	for _, op := range []string{"load", "unload"} {
		req, err := http.NewRequest("POST", g.http.URL+"/v2/repository/models/m/"+op, strings.NewReader(`{"parameters":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := g.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		allow, hasAllow := resp.Header["Allow"]
		if err != nil || resp.StatusCode != http.StatusMethodNotAllowed || !hasAllow || len(allow) != 1 || allow[0] != "" {
			t.Fatalf("%s: %d %v Allow=%q (%v)", op, resp.StatusCode, body, allow, err)
		}
		if msg := body["error"]; !strings.HasPrefix(msg, op+" of model m refused: ") || !strings.Contains(msg, "promote stable") || !strings.Contains(msg, "registry is the control plane") {
			t.Fatalf("%s: %q", op, msg)
		}
	}
	if st := g.cat.Status(); !st.Ready || st.Models[0].Version != "1" {
		t.Fatalf("unload changed what is served: %+v", st)
	}
}

// TestServerMetadataExtensions: GET /v2 names each extension once, and
// those implemented among them.
func TestServerMetadataExtensions(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"m", "1", fakeDemo()}})
	code, m := g.do("GET", "/v2", nil)
	var exts []string
	for _, e := range m["extensions"].([]any) {
		exts = append(exts, e.(string))
	}
	if code != 200 || len(exts) != len(g.srv.extensions) || !slices.Equal(exts, g.srv.extensions) {
		t.Fatalf("%d %v; registered %v", code, exts, g.srv.extensions)
	}
	sorted := slices.Sorted(slices.Values(exts))
	if len(slices.Compact(sorted)) != len(exts) {
		t.Fatalf("an extension twice: %v", exts)
	}
	for _, want := range []string{"binary_tensor_data", "model_configuration", "statistics", "model_repository"} {
		if !slices.Contains(exts, want) {
			t.Errorf("%s missing from %v", want, exts)
		}
	}
}

// TestModelNamedStats: /v2/models/stats is the statistics of every model;
// the other routes of a model named "stats" still route to it.
func TestModelNamedStats(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"stats", "1", fakeDemo()}})
	if code, m := g.do("GET", "/v2/models/stats/ready", nil); code != 200 || m["name"] != "stats" {
		t.Fatalf("ready: %d %v", code, m)
	}
	if code, m := g.do("GET", "/v2/models/stats/config", nil); code != 200 || m["name"] != "stats" {
		t.Fatalf("config: %d %v", code, m)
	}
	if st := statsOf(t, g, "/v2/models/stats"); len(st) != 1 || st[0]["name"] != "stats" {
		t.Fatalf("statistics: %v", st)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// jsonEqual compares two values as JSON.
func jsonEqual(a, b any) bool { return mustJSON(a) == mustJSON(b) }
