package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/internal/testmodels"
	"github.com/modelgate/modelgate/payloadlog"
	"github.com/modelgate/modelgate/registry"
)

// post sends body to base+path with headers (name, value pairs) and
// fails the test unless the answer is 200.
func post(t *testing.T, base, path, contentType string, body []byte, headers ...string) []byte {
	t.Helper()
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, out)
	}
	return out
}

// sendDemoRequests asks the demo model (demoRow, grpc_test.go) once on each HTTP path: /predict
// with X-Request-Id p-1, /v2 infer in JSON with id v2-1, and /v2 infer
// with binary tensor data and id bin-1.
func sendDemoRequests(t *testing.T, base string) {
	t.Helper()
	row, _ := json.Marshal(demoRow)
	post(t, base, "/predict", "application/json", []byte(`{"features":`+string(row)+`}`), "X-Request-Id", "p-1")
	post(t, base, "/v2/models/breast-cancer/infer", "application/json",
		[]byte(`{"id":"v2-1","inputs":[{"name":"features","shape":[1,30],"datatype":"FP32","data":`+string(row)+`}]}`))
	header := `{"id":"bin-1","inputs":[{"name":"features","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":120}}]}`
	body := []byte(header)
	for _, x := range demoRow {
		body = binary.LittleEndian.AppendUint32(body, math.Float32bits(x))
	}
	post(t, base, "/v2/models/breast-cancer/infer", "application/octet-stream", body, "Inference-Header-Content-Length", strconv.Itoa(len(header)))
}

// TestPayloadLoggingEndToEnd: a gateway with payload_logging on for the
// demo model sends each answered request to a real HTTP sink as KServe's
// two CloudEvents, for /predict and /v2 infer (JSON and binary).
func TestPayloadLoggingEndToEnd(t *testing.T) {
	type got struct {
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	var events []got
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		events = append(events, got{r.Header.Clone(), body})
		mu.Unlock()
	}))
	defer sink.Close()

	dir := t.TempDir()
	pushDemo(t, dir)
	cfg := testConfig(t)
	cfg.Registry = "file://" + dir
	cfg.PollInterval = 100 * time.Millisecond
	cfg.PayloadLogging.Models = []string{"breast-cancer"}
	cfg.PayloadLogging.Sink.URL = sink.URL + "/events"
	base := startGateway(t, cfg)
	waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "breast-cancer") == "1" })

	sendDemoRequests(t, base)
	waitFor(t, 30*time.Second, "six CloudEvents", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) >= 6 })
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]got{}
	for _, e := range events {
		h := e.header
		if h.Get("Ce-Specversion") != "1.0" || h.Get("Content-Type") != "application/json" || h.Get("Ce-Inferenceservicename") != "breast-cancer" ||
			h.Get("Ce-Modelversion") != "1" || !strings.HasPrefix(h.Get("Ce-Source"), "/modelgate/") {
			t.Fatalf("CloudEvent headers %v", h)
		}
		if _, err := time.Parse(time.RFC3339Nano, h.Get("Ce-Time")); err != nil {
			t.Fatalf("ce-time %q: %v", h.Get("Ce-Time"), err)
		}
		if !json.Valid(e.body) {
			t.Fatalf("data is not JSON: %s", e.body)
		}
		seen[h.Get("Ce-Protocol")+" "+h.Get("Ce-Id")+" "+h.Get("Ce-Type")] = e
	}
	for _, k := range []string{"predict p-1", "v2 v2-1", "v2 bin-1"} {
		for _, typ := range []string{payloadlog.TypeRequest, payloadlog.TypeResponse} {
			if _, ok := seen[k+" "+typ]; !ok {
				t.Fatalf("no %s event for %s; got %d events", typ, k, len(events))
			}
		}
	}
	if b := string(seen["predict p-1 "+payloadlog.TypeRequest].body); !strings.HasPrefix(b, `{"features":[17.99,`) {
		t.Fatalf("/predict request data %s", b)
	}
	var binReq struct {
		ID     string `json:"id"`
		Inputs []struct {
			Datatype string    `json:"datatype"`
			Shape    []int64   `json:"shape"`
			Data     []float64 `json:"data"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(seen["v2 bin-1 "+payloadlog.TypeRequest].body, &binReq); err != nil || binReq.ID != "bin-1" || len(binReq.Inputs) != 1 ||
		binReq.Inputs[0].Datatype != "FP32" || len(binReq.Inputs[0].Data) != 30 || float32(binReq.Inputs[0].Data[0]) != float32(17.99) {
		t.Fatalf("binary request data %s (%v)", seen["v2 bin-1 "+payloadlog.TypeRequest].body, err)
	}
	if b := string(seen["v2 v2-1 "+payloadlog.TypeResponse].body); !strings.HasPrefix(b, `{"model_name":"breast-cancer","model_version":"1","id":"v2-1","outputs":[{"name":"label","shape":[1],"datatype":"INT64","data":[0]}`) {
		t.Fatalf("/v2 response data %s", b)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `modelgate_payload_log_sent_total{model="breast-cancer"} 3`) {
		t.Fatalf("sent_total on /metrics:\n%s", metrics)
	}
}

// TestPayloadLoggingToRegistryStorage: with storage.prefix, the lines are
// in the registry's directory once the gateway has shut down (the flush at
// shutdown), one JSON object per answered request.
func TestPayloadLoggingToRegistryStorage(t *testing.T) {
	dir := t.TempDir()
	pushDemo(t, dir)
	cfg := testConfig(t)
	cfg.Registry = dir
	cfg.PollInterval = 100 * time.Millisecond
	cfg.PayloadLogging.Models = []string{"breast-cancer"}
	cfg.PayloadLogging.Storage.Prefix = "payloads"
	base, stop := startGatewayCancel(t, cfg)
	waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "breast-cancer") == "1" })
	sendDemoRequests(t, base)
	stop()

	files, err := filepath.Glob(filepath.Join(dir, "payloads", "breast-cancer", "*", "*", "*", "*.jsonl"))
	if err != nil || len(files) != 1 {
		t.Fatalf("objects %v %v", files, err)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			ID       string `json:"id"`
			Model    string `json:"model"`
			Version  string `json:"version"`
			Protocol string `json:"protocol"`
			Inputs   []struct {
				Name string    `json:"name"`
				Data []float64 `json:"data"`
			} `json:"inputs"`
			Outputs []struct {
				Name string `json:"name"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %s: %v", sc.Bytes(), err)
		}
		if l.Model != "breast-cancer" || l.Version != "1" || len(l.Inputs) != 1 || len(l.Inputs[0].Data) != 30 || len(l.Outputs) != 2 {
			t.Fatalf("line %s", sc.Bytes())
		}
		ids = append(ids, l.Protocol+" "+l.ID)
	}
	if got := strings.Join(ids, ","); len(ids) != 3 || !strings.Contains(got, "predict p-1") || !strings.Contains(got, "v2 v2-1") || !strings.Contains(got, "v2 bin-1") {
		t.Fatalf("lines %s", got)
	}
}

// TestPayloadLoggingToMinIO: the same on a MinIO registry: the objects are
// under the registry's prefix in its bucket, and the registry still lists
// only its models.
func TestPayloadLoggingToMinIO(t *testing.T) {
	_, _, location := minioRegistry(t, testmodels.Scaled(1))
	cfg := testConfig(t)
	cfg.Registry = location
	cfg.PollInterval = 200 * time.Millisecond
	cfg.PayloadLogging.Models = []string{"m"}
	cfg.PayloadLogging.Storage.Prefix = "payloads"
	base, stop := startGatewayCancel(t, cfg)
	waitFor(t, 30*time.Second, "version 1 served", func() bool { return servingVersion(base, "m") == "1" })
	for i := range 3 {
		post(t, base, "/predict", "application/json", []byte(`{"features":[`+strconv.Itoa(i)+`,1,2,3]}`), "X-Request-Id", "r-"+strconv.Itoa(i))
	}
	stop()

	b, err := payloadlog.OpenBucket(t.Context(), location)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(prefix string)
	walk = func(prefix string) {
		names, err := b.List(t.Context(), prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if strings.HasSuffix(n, "/") {
				walk(prefix + n)
			} else {
				keys = append(keys, prefix+n)
			}
		}
	}
	walk("payloads/")
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "payloads/m/") || !strings.HasSuffix(keys[0], ".jsonl") {
		t.Fatalf("objects %v", keys)
	}
	rc, err := b.Get(t.Context(), keys[0])
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if n := bytes.Count(data, []byte("\n")); n != 3 || !bytes.Contains(data, []byte(`"id":"r-2","model":"m","version":"1","protocol":"predict"`)) {
		t.Fatalf("%d lines:\n%s", n, data)
	}
	reg, err := registry.Open(t.Context(), location, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if models, err := reg.Models(t.Context()); err != nil || strings.Join(models, ",") != "m" {
		t.Fatalf("models %v %v", models, err)
	}
}
