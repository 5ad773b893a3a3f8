package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/modelgate/modelgate/internal/onnx"
	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/serving/servingtest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// demoModel is the demo model's real ONNX file, for the tests that run on
// ONNX Runtime (withORT).
func demoModel(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../examples/breast-cancer/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeDemo is a fake model with the demo model's signature ("features"
// FP32 [-1, 30] in, "label" and "probabilities" out) that tells the rows
// below apart as the demo model does: class 0 (malignant) when the mean
// radius, feature 0, is above 15.5.
func fakeDemo() []byte {
	w := make([]float32, 60)
	w[0] = 1 // feature 0 → class 0
	return servingtest.Linear(30, 2, w, []float32{-15.5, 0})
}

// The first two rows of the breast-cancer data set (malignant, then benign
// from the holdout).
var (
	malignant = []float64{17.99, 10.38, 122.8, 1001, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419, 0.07871, 1.095, 0.9053, 8.589, 153.4, 0.006399, 0.04904, 0.05373, 0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019, 0.1622, 0.6656, 0.7119, 0.2654, 0.4601, 0.1189}
	benign    = []float64{13.54, 14.36, 87.46, 566.3, 0.09779, 0.08129, 0.06664, 0.04781, 0.1885, 0.05766, 0.2699, 0.7886, 2.058, 23.56, 0.008462, 0.0146, 0.02387, 0.01315, 0.0198, 0.0023, 15.11, 19.26, 99.7, 711.2, 0.144, 0.1773, 0.239, 0.1288, 0.2977, 0.07259}
)

func TestPredictBothShapes(t *testing.T) {
	t.Run("fake model", func(t *testing.T) {
		testPredictBothShapes(t, newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}}))
	})
	t.Run("demo model on ONNX Runtime", func(t *testing.T) {
		testPredictBothShapes(t, newGateway(t, true, []pushSpec{{"breast-cancer", "1", demoModel(t)}}, withORT(t)))
	})
}

func testPredictBothShapes(t *testing.T, g *gateway) {
	code, m := g.do("POST", "/predict", map[string]any{"features": malignant})
	if code != 200 {
		t.Fatalf("features: %d %v", code, m)
	}
	if m["model"] != "breast-cancer" || m["version"] != "1" || !reflect.DeepEqual(m["prediction"], []any{0.0}) {
		t.Fatalf("features answer %v", m)
	}
	probs := m["outputs"].(map[string]any)["probabilities"].([]any)
	if len(probs) != 1 || len(probs[0].([]any)) != 2 {
		t.Fatalf("probabilities one row of two: %v", probs)
	}
	code, m = g.do("POST", "/predict?model=breast-cancer&version=1", map[string]any{"instances": [][]float64{malignant, benign, malignant}})
	if code != 200 || !reflect.DeepEqual(m["prediction"], []any{0.0, 1.0, 0.0}) {
		t.Fatalf("instances: %d %v", code, m)
	}
	if got := m["outputs"].(map[string]any)["label"]; !reflect.DeepEqual(got, []any{0.0, 1.0, 0.0}) {
		t.Fatalf("label output %v", got)
	}
	for _, row := range m["outputs"].(map[string]any)["probabilities"].([]any) {
		p := row.([]any)
		if s := p[0].(float64) + p[1].(float64); math.Abs(s-1) > 1e-6 {
			t.Fatalf("probabilities sum to %v", s)
		}
	}
}

func TestOIPRoutes(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", fakeDemo()}})
	g.push("breast-cancer", "2", servingtest.Linear(30, 2, make([]float32, 60), []float32{1, 0}))

	code, m := g.do("GET", "/v2", nil)
	if code != 200 || m["name"] != "modelgate" || m["version"] == "" || m["extensions"] == nil {
		t.Fatalf("GET /v2: %d %v", code, m)
	}
	if code, _ := g.raw("GET", "/v2/health/live", nil); code != 200 {
		t.Fatalf("live: %d", code)
	}
	if code, _ := g.raw("GET", "/v2/health/ready", nil); code != 200 {
		t.Fatalf("ready: %d", code)
	}
	code, m = g.do("GET", "/v2/models/breast-cancer", nil)
	wantMeta := map[string]any{
		"name": "breast-cancer", "versions": []any{"1", "2"}, "platform": "onnx_onnxv1", "version": "1", "provider": "cpu",
		"inputs": []any{map[string]any{"name": "features", "datatype": "FP32", "shape": []any{-1.0, 30.0}}},
		"outputs": []any{
			map[string]any{"name": "label", "datatype": "INT64", "shape": []any{-1.0}},
			map[string]any{"name": "probabilities", "datatype": "FP32", "shape": []any{-1.0, 2.0}},
		},
	}
	if code != 200 || !reflect.DeepEqual(m, wantMeta) {
		t.Fatalf("metadata: %d\n got %v\nwant %v", code, m, wantMeta)
	}
	code, m = g.do("GET", "/v2/models/breast-cancer/versions/2", nil)
	if code != 200 || m["version"] != "2" {
		t.Fatalf("version metadata: %d %v", code, m)
	}
	for _, p := range []string{"/v2/models/breast-cancer/ready", "/v2/models/breast-cancer/versions/1/ready", "/v2/models/breast-cancer/versions/2/ready"} {
		if code, m := g.do("GET", p, nil); code != 200 || m["ready"] != true {
			t.Fatalf("%s: %d %v", p, code, m)
		}
	}
	for _, p := range []string{"/v2/models/nope/ready", "/v2/models/breast-cancer/versions/9/ready", "/v2/models/nope", "/v2/models/breast-cancer/versions/9"} {
		if code, m := g.do("GET", p, nil); code != 404 || m["error"] == "" {
			t.Fatalf("%s: %d %v", p, code, m)
		}
	}
	req := map[string]any{
		"id":      "req-42",
		"inputs":  []any{map[string]any{"name": "features", "shape": []int{2, 30}, "datatype": "FP32", "data": append(append([]float64{}, malignant...), benign...)}},
		"outputs": []any{map[string]any{"name": "label"}},
	}
	code, m = g.do("POST", "/v2/models/breast-cancer/infer", req)
	want := map[string]any{"model_name": "breast-cancer", "model_version": "1", "id": "req-42",
		"outputs": []any{map[string]any{"name": "label", "shape": []any{2.0}, "datatype": "INT64", "data": []any{0.0, 1.0}}}}
	if code != 200 || !reflect.DeepEqual(m, want) {
		t.Fatalf("infer: %d\n got %v\nwant %v", code, m, want)
	}
	// Pinned version 2 (all-zero weights, bias favours class 0), nested data.
	req["inputs"] = []any{map[string]any{"name": "features", "shape": []int{2, 30}, "datatype": "FP32", "data": [][]float64{malignant, benign}}}
	code, m = g.do("POST", "/v2/models/breast-cancer/versions/2/infer", req)
	if code != 200 || m["model_version"] != "2" || !reflect.DeepEqual(m["outputs"].([]any)[0].(map[string]any)["data"], []any{0.0, 0.0}) {
		t.Fatalf("pinned infer: %d %v", code, m)
	}
}

// TestDatatypeRoundTrips sends every served datatype through /v2 infer and
// an identity model on ONNX Runtime, and checks the values come back
// exactly.
func TestDatatypeRoundTrips(t *testing.T) {
	cases := []struct {
		dt   onnx.DataType
		name string
		data string
	}{
		{onnx.Bool, "BOOL", `[true,false,false,true]`},
		{onnx.Uint8, "UINT8", `[0,1,128,255]`},
		{onnx.Uint16, "UINT16", `[0,1,32768,65535]`},
		{onnx.Uint32, "UINT32", `[0,1,2147483648,4294967295]`},
		{onnx.Uint64, "UINT64", `[0,1,9223372036854775808,18446744073709551615]`},
		{onnx.Int8, "INT8", `[-128,-1,0,127]`},
		{onnx.Int16, "INT16", `[-32768,-1,0,32767]`},
		{onnx.Int32, "INT32", `[-2147483648,-1,0,2147483647]`},
		{onnx.Int64, "INT64", `[-9223372036854775808,-1,0,9223372036854775807]`},
		{onnx.Float, "FP32", `[-1.5,0,3.4028235e+38,1e-45]`},
		{onnx.Double, "FP64", `[-1.5,0,1.7976931348623157e+308,5e-324]`},
	}
	var specs []pushSpec
	for _, c := range cases {
		specs = append(specs, pushSpec{strings.ToLower(c.name), "1", testmodels.Identity(c.dt, -1, 2)})
	}
	g := newGateway(t, true, specs, withORT(t))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"inputs":[{"name":"x","shape":[2,2],"datatype":%q,"data":%s}]}`, c.name, c.data)
			code, raw := g.raw("POST", "/v2/models/"+strings.ToLower(c.name)+"/infer", body)
			if code != 200 {
				t.Fatalf("%d %s", code, raw)
			}
			want := fmt.Sprintf(`{"model_name":%q,"model_version":"1","outputs":[{"name":"y","shape":[2,2],"datatype":%q,"data":%s}]}`, strings.ToLower(c.name), c.name, c.data)
			if strings.TrimSpace(string(raw)) != want {
				t.Fatalf("\n got %s\nwant %s", raw, want)
			}
			// The same through /predict, two instances of two values.
			vals := strings.Split(strings.Trim(c.data, "[]"), ",")
			rows := fmt.Sprintf("[[%s,%s],[%s,%s]]", vals[0], vals[1], vals[2], vals[3])
			code, raw = g.raw("POST", "/predict?model="+strings.ToLower(c.name), `{"instances":`+rows+`}`)
			want = fmt.Sprintf(`{"model":%q,"version":"1","prediction":%s,"outputs":{"y":%s}}`, strings.ToLower(c.name), rows, rows)
			if code != 200 || strings.TrimSpace(string(raw)) != want {
				t.Fatalf("predict: %d\n got %s\nwant %s", code, raw, want)
			}
		})
	}
}

func TestSeveralInputsAndOutputs(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"sumprod", "1", servingtest.SumProd()}})
	body := `{"inputs":[{"name":"b","shape":[2,3],"datatype":"FP32","data":[[1,1,1],[2,2,2]]},{"name":"a","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]}`
	code, m := g.do("POST", "/v2/models/sumprod/infer", body)
	if code != 200 {
		t.Fatalf("%d %v", code, m)
	}
	outs := m["outputs"].([]any)
	if len(outs) != 2 || outs[0].(map[string]any)["name"] != "sum" || outs[1].(map[string]any)["name"] != "prod" {
		t.Fatalf("outputs %v", outs)
	}
	if got := outs[1].(map[string]any)["data"]; !reflect.DeepEqual(got, []any{1.0, 2.0, 3.0, 8.0, 10.0, 12.0}) {
		t.Fatalf("prod %v", got)
	}
	// /predict refuses a multi-input model and points to /v2.
	code, m = g.do("POST", "/predict", `{"features":[1,2,3]}`)
	if code != 400 || !strings.Contains(m["error"].(string), "/v2/models/sumprod/infer") {
		t.Fatalf("predict on a two-input model: %d %v", code, m)
	}
}

func TestDynamicBatch(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"lin", "1", servingtest.Scaled(1)}})
	for _, n := range []int{1, 2, 17, 256} {
		rows := make([][]float64, n)
		for i := range rows {
			rows[i] = []float64{float64(i), 1, -1, 0.5}
		}
		code, m := g.do("POST", "/predict", map[string]any{"instances": rows})
		if code != 200 || len(m["prediction"].([]any)) != n {
			t.Fatalf("batch %d: %d %v", n, code, m["error"])
		}
		code, m = g.do("POST", "/v2/models/lin/infer", map[string]any{"inputs": []any{map[string]any{"name": "features", "shape": []int{n, 4}, "datatype": "FP32", "data": rows}}})
		if code != 200 || !reflect.DeepEqual(m["outputs"].([]any)[1].(map[string]any)["shape"], []any{float64(n), 2.0}) {
			t.Fatalf("infer batch %d: %d %v", n, code, m)
		}
	}
}

func TestBadRequests(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"lin", "1", servingtest.Scaled(1)}, {"sumprod", "1", servingtest.SumProd()}}, withMaxBody(4096))
	infer := func(input string) string { return `{"inputs":[` + input + `]}` }
	big := `{"features":[` + strings.Repeat("1,", 3000) + `1]}`
	cases := []struct {
		name, path string
		body       string
		status     int
		want       string
	}{
		{"malformed json predict", "/predict?model=lin", `{"features": [1,2,`, 400, "malformed JSON"},
		{"malformed json infer", "/v2/models/lin/infer", `{"inputs": [}`, 400, "malformed JSON"},
		{"trailing garbage", "/v2/models/lin/infer", infer(`{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}`) + `{}`, 400, "after the request object"},
		{"unknown field predict", "/predict?model=lin", `{"feature":[1,2,3,4]}`, 400, `unknown field "feature"`},
		{"neither field", "/predict?model=lin", `{}`, 400, `needs "features"`},
		{"both fields", "/predict?model=lin", `{"features":[1,2,3,4],"instances":[[1,2,3,4]]}`, 400, "not both"},
		{"unknown input", "/v2/models/lin/infer", infer(`{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}`), 400, `unknown input "x" (the model takes "features")`},
		{"wrong datatype", "/v2/models/lin/infer", infer(`{"name":"features","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}`), 400, "datatype FP64 does not match the model's FP32"},
		{"unknown datatype", "/v2/models/lin/infer", infer(`{"name":"features","shape":[1,4],"datatype":"float","data":[1,2,3,4]}`), 400, `unknown datatype "float"`},
		{"fp16 for fp32", "/v2/models/lin/infer", infer(`{"name":"features","shape":[1,4],"datatype":"FP16","data":[1,2,3,4]}`), 400, "datatype FP16 does not match the model's FP32"},
		{"bytes for fp32", "/v2/models/lin/infer", infer(`{"name":"features","shape":[1,4],"datatype":"BYTES","data":["a","b","c","d"]}`), 400, "datatype BYTES does not match the model's FP32"},
		{"shape mismatch", "/v2/models/lin/infer", infer(`{"name":"features","shape":[1,5],"datatype":"FP32","data":[1,2,3,4,5]}`), 400, "shape [1 5] does not match the model's [-1 4]"},
		{"count mismatch", "/v2/models/lin/infer", infer(`{"name":"features","shape":[2,4],"datatype":"FP32","data":[1,2,3,4]}`), 400, "shape [2 4] needs 8 values, data has 4"},
		{"nested disagrees with shape", "/v2/models/lin/infer", infer(`{"name":"features","shape":[1,4],"datatype":"FP32","data":[[1,2],[3,4]]}`), 400, "nested data has shape [2 2]"},
		{"ragged", "/v2/models/lin/infer", infer(`{"name":"features","shape":[2,4],"datatype":"FP32","data":[[1,2,3,4],[1,2,3]]}`), 400, "ragged array"},
		{"empty inputs", "/v2/models/lin/infer", `{"inputs":[]}`, 400, `"inputs" is missing or empty`},
		{"missing data", "/v2/models/lin/infer", infer(`{"name":"features","shape":[1,4],"datatype":"FP32"}`), 400, `"data" is missing`},
		{"missing shape", "/v2/models/lin/infer", infer(`{"name":"features","datatype":"FP32","data":[1,2,3,4]}`), 400, `"shape" is missing`},
		{"negative shape", "/v2/models/lin/infer", infer(`{"name":"features","shape":[-1,4],"datatype":"FP32","data":[1,2,3,4]}`), 400, "negative"},
		{"zero rows", "/v2/models/lin/infer", infer(`{"name":"features","shape":[0,4],"datatype":"FP32","data":[]}`), 400, "holds no values"},
		{"missing input", "/v2/models/sumprod/infer", infer(`{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]}`), 400, `missing input "b"`},
		{"unknown output", "/v2/models/lin/infer", `{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"logits"}]}`, 400, `unknown output "logits"`},
		{"NaN literal", "/predict?model=lin", `{"features":[1,NaN,3,4]}`, 400, "malformed JSON"},
		{"NaN in data", "/v2/models/lin/infer", infer(`{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,NaN,3,4]}`), 400, "malformed JSON"},
		{"NaN as string", "/v2/models/lin/infer", infer(`{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,"NaN",3,4]}`), 400, `got the string "NaN"`},
		{"overflow to Inf", "/predict?model=lin", `{"features":[1,1e39,3,4]}`, 400, "out of range for FP32"},
		{"null value", "/predict?model=lin", `{"features":[1,null,3,4]}`, 400, "null is not a FP32 value"},
		{"bool for float", "/predict?model=lin", `{"features":[1,true,3,4]}`, 400, "must be numbers, got a boolean"},
		{"wrong row length", "/predict?model=lin", `{"features":[1,2,3]}`, 400, "each row must have 4 values"},
		{"instances not rows", "/predict?model=lin", `{"instances":[1,2,3,4]}`, 400, "list of rows"},
		{"instances empty", "/predict?model=lin", `{"instances":[]}`, 400, "instances is empty"},
		{"features not array", "/predict?model=lin", `{"features":"1,2,3,4"}`, 400, "must be a JSON array"},
		{"no default model", "/predict", `{"features":[1,2,3,4]}`, 400, "name one with ?model="},
		{"unknown model predict", "/predict?model=nope", `{"features":[1,2,3,4]}`, 404, `"nope" is not served here`},
		{"unknown model infer", "/v2/models/nope/infer", infer(`{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}`), 404, "unknown model"},
		{"unknown version", "/v2/models/lin/versions/7/infer", infer(`{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}`), 404, `no version "7"`},
		{"invalid version", "/predict?model=lin&version=..%2Fx", `{"features":[1,2,3,4]}`, 404, "unknown version"},
		{"oversize body", "/predict?model=lin", big, 413, "larger than the limit of 4096 bytes"},
		{"no such route", "/v3/models", `{}`, 404, "no route for POST /v3/models"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, m := g.do("POST", c.path, c.body)
			msg, _ := m["error"].(string)
			if code != c.status || !strings.Contains(msg, c.want) {
				t.Fatalf("%d %q; want %d and a message with %q", code, msg, c.status, c.want)
			}
		})
	}
	// Nothing above broke the gateway.
	if code, m := g.do("POST", "/predict?model=lin", `{"features":[1,2,3,4]}`); code != 200 {
		t.Fatalf("after bad requests: %d %v", code, m)
	}
}

func TestNonFiniteOutputIsAnError(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"nan", "1", servingtest.NaN()}})
	code, m := g.do("POST", "/predict", `{"features":[1,2,3,4]}`)
	if code != 500 || !strings.Contains(m["error"].(string), `non-finite value (NaN or Inf) in output "y"`) {
		t.Fatalf("%d %v", code, m)
	}
	if v := testutil.ToFloat64(g.srv.metrics.nonFinite.WithLabelValues("nan", "1")); v != 1 {
		t.Fatalf("non-finite counter = %v", v)
	}
}

func TestPanicBecomes500(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"lin", "1", servingtest.Scaled(1)}}, withExtra(func(e *echo.Echo) {
		e.GET("/boom", func(echo.Context) error { panic("boom") })
	}))
	for i := 0; i < 3; i++ {
		code, m := g.do("GET", "/boom", nil)
		if code != 500 || !strings.Contains(m["error"].(string), "panicked") {
			t.Fatalf("%d %v", code, m)
		}
	}
	if code, _ := g.do("POST", "/predict", `{"features":[1,2,3,4]}`); code != 200 {
		t.Fatalf("after panics: %d", code)
	}
	if v := testutil.ToFloat64(g.srv.metrics.panics); v != 3 {
		t.Fatalf("panics = %v", v)
	}
	if v := testutil.ToFloat64(g.srv.metrics.httpInFlight); v != 0 {
		t.Fatalf("in-flight gauge = %v after panics", v)
	}
}

func TestReadinessAndLiveness(t *testing.T) {
	g := newGateway(t, false, []pushSpec{{"lin", "1", servingtest.Scaled(1)}})
	// Before the first sync: alive, not ready.
	if code, m := g.do("GET", "/healthz", nil); code != 200 || m["status"] != "ok" {
		t.Fatalf("healthz: %d %v", code, m)
	}
	if code, _ := g.raw("GET", "/v2/health/live", nil); code != 200 {
		t.Fatalf("live: %d", code)
	}
	for _, p := range []string{"/readyz", "/v2/health/ready"} {
		if code, m := g.do("GET", p, nil); code != 503 || m["ready"] != false {
			t.Fatalf("%s before loading: %d %v", p, code, m)
		}
	}
	if code, m := g.do("POST", "/predict", `{"features":[1,2,3,4]}`); code != 503 {
		t.Fatalf("predict before loading: %d %v", code, m)
	}
	if err := g.cat.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, m := g.do("GET", "/readyz", nil)
	models := m["models"].([]any)
	if code != 200 || len(models) != 1 || models[0].(map[string]any)["state"] != "ready" || models[0].(map[string]any)["version"] != "1" {
		t.Fatalf("readyz after loading: %d %v", code, m)
	}
	// Draining: readiness fails at once, everything else keeps serving.
	g.srv.Drain()
	if code, m := g.do("GET", "/readyz", nil); code != 503 || m["draining"] != true {
		t.Fatalf("readyz draining: %d %v", code, m)
	}
	if code, _ := g.do("POST", "/predict", `{"features":[1,2,3,4]}`); code != 200 {
		t.Fatalf("predict while draining: %d", code)
	}
	if code, _ := g.do("GET", "/healthz", nil); code != 200 {
		t.Fatalf("healthz while draining: %d", code)
	}
}

func TestReadinessWithAModelThatCannotLoad(t *testing.T) {
	// A model configured but absent from the registry keeps the gateway
	// unready and says why; liveness stays up.
	g := newGateway(t, false, []pushSpec{{"lin", "1", servingtest.Scaled(1)}}, withModels("lin", "missing"))
	if err := g.cat.Sync(context.Background()); err == nil {
		t.Fatal("sync with a missing model succeeded")
	}
	code, m := g.do("GET", "/readyz", nil)
	if code != 503 || !strings.Contains(fmt.Sprint(m["models"]), "missing") {
		t.Fatalf("%d %v", code, m)
	}
	if code, _ := g.do("POST", "/predict?model=lin", `{"features":[1,2,3,4]}`); code != 200 {
		t.Fatalf("the loadable model still serves: %d", code)
	}
	if code, _ := g.do("GET", "/healthz", nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
}

func TestMetrics(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"lin", "1", servingtest.Scaled(1)}})
	g.do("POST", "/predict", `{"features":[1,2,3,4]}`)
	g.do("POST", "/predict", `{"features":[1,2,3]}`)
	g.do("POST", "/predict?model=nope", `{"features":[1,2,3,4]}`)
	code, raw := g.raw("GET", "/metrics", nil)
	if code != 200 {
		t.Fatal(code)
	}
	text := string(raw)
	for _, want := range []string{
		`modelgate_http_requests_total{code="2xx",model="lin",protocol="http",provider="cpu",route="/predict",version="1"} 1`,
		`modelgate_http_requests_total{code="4xx",model="lin",protocol="http",provider="cpu",route="/predict",version="1"} 1`,
		`modelgate_http_requests_total{code="4xx",model="",protocol="http",provider="",route="/predict",version=""} 1`,
		`modelgate_inference_duration_seconds_count{model="lin",provider="cpu",version="1"} 1`,
		`modelgate_model_loads_total{model="lin",result="ok",version="1"} 1`,
		`modelgate_model_loaded{model="lin",provider="cpu",role="stable",version="1"} 1`,
		`modelgate_http_requests_in_flight{protocol="http"} 1`, // this very request
		`modelgate_http_requests_in_flight{protocol="grpc"} 0`,
		`modelgate_ready 1`,
		`modelgate_build_info{goversion=`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The same lint as `promtool check metrics`.
	problems, err := testutil.GatherAndLint(g.metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}

// TestConcurrentClientsAgree: 64 goroutines × 1,000 requests to the demo
// model on ONNX Runtime give exactly the answers one goroutine gets, under
// -race.
func TestConcurrentClientsAgree(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"breast-cancer", "1", demoModel(t)}}, withORT(t))
	const clients, perClient, distinct = 64, 1000, 50
	bodies := make([]string, distinct)
	want := make([]string, distinct)
	for i := range bodies {
		row := make([]float64, 30)
		for j := range row {
			row[j] = malignant[j]*float64(i%7)/6 + benign[j]*float64(6-i%7)/6 + float64(i)*1e-3
		}
		b, _ := json.Marshal(map[string]any{"features": row})
		bodies[i] = string(b)
		code, raw := g.raw("POST", "/predict", bodies[i])
		if code != 200 {
			t.Fatalf("%d %s", code, raw)
		}
		want[i] = string(raw)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; i < perClient; i++ {
				k := (c*7 + i) % distinct
				resp, err := client.Post(g.http.URL+"/predict", "application/json", strings.NewReader(bodies[k]))
				if err != nil {
					errs <- err
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(got) != want[k] {
					errs <- fmt.Errorf("client %d request %d: %d %q (err %v), want %q", c, i, resp.StatusCode, got, err, want[k])
					return
				}
			}
		}(c)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// A version that cannot be swapped in leaves the old one serving, and the
// reason shows in the model metadata, /readyz and the metrics.
func TestFailedSwapIsVisible(t *testing.T) {
	g := newGateway(t, true, []pushSpec{{"lin", "1", servingtest.Scaled(1)}})
	g.push("lin", "2", servingtest.Scaled(2))
	dir := strings.TrimPrefix(g.reg.Describe(), "file://")
	if err := os.WriteFile(dir+"/models/lin/versions/2/model.onnx", []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := g.reg.SetStable(context.Background(), "lin", "2", false, ""); err != nil {
		t.Fatal(err)
	}
	if err := g.cat.Sync(context.Background()); err == nil {
		t.Fatal("sync of a corrupt version succeeded")
	}
	code, m := g.do("GET", "/v2/models/lin", nil)
	if code != 200 || m["version"] != "1" || m["wanted_version"] != "2" || !strings.Contains(fmt.Sprint(m["load_error"]), "digest") {
		t.Fatalf("metadata: %d %v", code, m)
	}
	code, m = g.do("GET", "/readyz", nil)
	if code != 200 || !strings.Contains(fmt.Sprint(m["models"]), "digest") {
		t.Fatalf("readyz: %d %v", code, m)
	}
	if code, m := g.do("POST", "/predict", `{"features":[1,2,3,4]}`); code != 200 || m["version"] != "1" {
		t.Fatalf("predict: %d %v", code, m)
	}
	_, raw := g.raw("GET", "/metrics", nil)
	if !strings.Contains(string(raw), `modelgate_model_load_failures_total{model="lin",reason="digest"} 1`) {
		t.Fatal("load failure not counted")
	}
}
