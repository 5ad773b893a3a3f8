package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/drift"
	"github.com/modelgate/modelgate/internal/ortest"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/server"
	"github.com/prometheus/client_golang/prometheus"
)

// gateway is a real gateway (catalog, ONNX Runtime, router, drift tracker)
// serving a registry directory over HTTP.
type gateway struct {
	url     string
	metrics *prometheus.Registry
}

func startGateway(t *testing.T, reg string) *gateway {
	t.Helper()
	ctx := context.Background()
	r, err := registry.Open(ctx, reg, registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt := ortest.Runtime(t)
	metrics := prometheus.NewRegistry()
	cat := catalog.New(catalog.Options{Source: r, Loader: rt, Registerer: metrics})
	if err := cat.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	tracker := drift.New(drift.Options{Source: r, Registerer: metrics})
	if err := tracker.Prepare(ctx, "breast-cancer", "1"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(server.New(server.Options{Catalog: cat, Drift: tracker, Registerer: metrics, Gatherer: metrics}))
	t.Cleanup(func() {
		srv.Close()
		tracker.Close()
		cat.Close()
	})
	return &gateway{url: srv.URL, metrics: metrics}
}

// feed sends the feature columns of rows to the gateway's /predict, 50 rows
// a request.
func (g *gateway) feed(t *testing.T, rows [][]float64) {
	t.Helper()
	for i := 0; i < len(rows); i += 50 {
		body, _ := json.Marshal(map[string]any{"instances": rows[i:min(i+50, len(rows))]})
		resp, err := http.Post(g.url+"/predict", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("predict: %s", resp.Status)
		}
	}
}

// featureRows reads a CSV file's data rows without their label (the last
// column).
func featureRows(t *testing.T, path string) [][]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]float64
	for _, r := range recs[1:] {
		row := make([]float64, len(r)-1)
		for j := range row {
			if row[j], err = strconv.ParseFloat(r[j], 64); err != nil {
				t.Fatal(err)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// lastLine is the last line of the output.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

type driftJSON struct {
	Drift    bool    `json:"drift"`
	Rows     float64 `json:"rows"`
	Reason   string  `json:"reason"`
	Features []struct {
		Name  string  `json:"name"`
		PSI   float64 `json:"psi"`
		Drift bool    `json:"drift"`
	} `json:"features"`
}

func TestDriftThroughGateways(t *testing.T) {
	reg := t.TempDir()
	if r := promote(t, reg, "push", "breast-cancer", "1", demo, "--train-data", trainData); r.code != 0 {
		t.Fatalf("push: %+v", r)
	}
	// Live traffic from the training distribution: a bootstrap of the
	// training rows; the same rows with "mean texture" scaled by 1.5.
	same := featureRows(t, bootstrap(t, trainData, 1200, 5))
	shifted := featureRows(t, scaled(t, bootstrap(t, trainData, 1200, 5), 1, 1.5))

	t.Run("the training distribution: no drift", func(t *testing.T) {
		a, b := startGateway(t, reg), startGateway(t, reg)
		a.feed(t, same[:600])
		b.feed(t, same[600:])
		r := promote(t, reg, "drift", "breast-cancer", "--gateway", a.url, "--gateway", b.url)
		if r.code != 0 || lastLine(r.stdout) != "should-retrain=false" || !strings.Contains(r.stdout, "1200 live rows") || !strings.Contains(r.stdout, "no drift") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		t.Logf("\n%s", r.stdout)
		r = promote(t, reg, "drift", "breast-cancer", "--gateway", a.url, "--gateway", b.url, "--output", "json")
		var res driftJSON
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || res.Drift || res.Rows != 1200 || len(res.Features) != 30 {
			t.Fatalf("json: exit %d %v\n%s", r.code, err, r.stdout)
		}
	})

	t.Run("one feature scaled by 1.5: drift", func(t *testing.T) {
		g := startGateway(t, reg)
		g.feed(t, shifted)
		r := promote(t, reg, "drift", "breast-cancer", "--gateway", g.url)
		if r.code != 1 || lastLine(r.stdout) != "should-retrain=true" || !strings.Contains(r.stdout, "DRIFT: 1 of 30 features") || !strings.Contains(r.stdout, "mean texture") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		t.Logf("\n%s", r.stdout)
		r = promote(t, reg, "drift", "breast-cancer", "--gateway", g.url, "--output", "json")
		var res driftJSON
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 1 || !res.Drift {
			t.Fatalf("json: exit %d %v\n%s", r.code, err, r.stdout)
		}
		if f := res.Features[0]; f.Name != "mean texture" || !f.Drift || res.Features[1].Drift {
			t.Fatalf("worst features %+v", res.Features[:2])
		}
	})

	t.Run("too few rows", func(t *testing.T) {
		g := startGateway(t, reg)
		g.feed(t, same[:100])
		r := promote(t, reg, "drift", "breast-cancer", "--gateway", g.url)
		if r.code != 2 || lastLine(r.stdout) != "should-retrain=false" || !strings.Contains(r.stdout, "too few samples: 100 live rows") {
			t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = promote(t, reg, "drift", "breast-cancer", "--gateway", g.url, "--min-samples", "50")
		if r.code != 0 {
			t.Fatalf("--min-samples 50: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = promote(t, reg, "drift", "breast-cancer", "--gateway", g.url, "--output", "json")
		var res driftJSON
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 2 || res.Drift || !strings.Contains(res.Reason, "too few samples") {
			t.Fatalf("json: exit %d %v\n%s", r.code, err, r.stdout)
		}
	})

	t.Run("through Prometheus, summed over replicas", func(t *testing.T) {
		a, b := startGateway(t, reg), startGateway(t, reg)
		a.feed(t, shifted[:700])
		b.feed(t, shifted[700:])
		prom, queries := fakePrometheus(t, a.metrics, b.metrics)
		r := promote(t, reg, "drift", "breast-cancer", "--prometheus", prom, "--output", "json")
		var res driftJSON
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 1 || !res.Drift || res.Rows != 1200 || res.Features[0].Name != "mean texture" {
			t.Fatalf("exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
		}
		if q := strings.Join(*queries, "\n"); !strings.Contains(q, `sum by (feature, bin) (modelgate_drift_bin_total{model="breast-cancer",version="1"})`) {
			t.Errorf("queries:\n%s", q)
		}
		r = promote(t, reg, "drift", "breast-cancer", "--prometheus", prom, "--window", "7d")
		if r.code != 1 || !strings.Contains((*queries)[len(*queries)-1], `[7d]`) {
			t.Fatalf("--window: exit %d, queries %q\n%s", r.code, *queries, r.stderr)
		}
	})

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no source", []string{"drift", "breast-cancer"}, "--gateway URL"},
		{"both sources", []string{"drift", "breast-cancer", "--gateway", "http://a", "--prometheus", "http://b"}, "not both"},
		{"window without prometheus", []string{"drift", "breast-cancer", "--gateway", "http://a", "--window", "7d"}, "--window applies to --prometheus"},
		{"unreachable gateway", []string{"drift", "breast-cancer", "--gateway", "http://127.0.0.1:1"}, "connection refused"},
		{"no profile", []string{"drift", "nope", "--gateway", "http://127.0.0.1:1"}, "not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := promote(t, reg, c.args...)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, c.want)
			}
		})
	}
}

// fakePrometheus answers the instant queries promote drift sends, over the
// given gatherers as if Prometheus had scraped each replica: a sum over
// every replica's series, grouped by the query's "by" labels. increase()
// over a window is answered with the totals (the replicas started within
// it). It records the queries.
func fakePrometheus(t *testing.T, replicas ...prometheus.Gatherer) (string, *[]string) {
	t.Helper()
	var queries []string
	re := regexp.MustCompile(`^sum(?: by \(([a-z, ]+)\))? ?\((?:increase\()?([a-z_]+)\{model="([^"]+)",version="([^"]+)"\}(?:\[[0-9a-z]+\]\))?\)$`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		_ = r.ParseForm()
		q := r.Form.Get("query")
		queries = append(queries, q)
		m := re.FindStringSubmatch(q)
		if m == nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":"unexpected query %q"}`, q)
			return
		}
		var by []string
		if m[1] != "" {
			by = strings.Split(m[1], ", ")
		}
		sums := map[string]float64{}
		labels := map[string]map[string]string{}
		for _, g := range replicas {
			mfs, err := g.Gather()
			if err != nil {
				t.Error(err)
			}
			for _, mf := range mfs {
				if mf.GetName() != m[2] {
					continue
				}
				for _, s := range mf.GetMetric() {
					ls := map[string]string{}
					for _, l := range s.GetLabel() {
						ls[l.GetName()] = l.GetValue()
					}
					if ls["model"] != m[3] || ls["version"] != m[4] {
						continue
					}
					group := map[string]string{}
					var key []string
					for _, b := range by {
						group[b] = ls[b]
						key = append(key, ls[b])
					}
					k := strings.Join(key, "\x00")
					sums[k] += s.GetCounter().GetValue()
					labels[k] = group
				}
			}
		}
		var result []map[string]any
		keys := make([]string, 0, len(sums))
		for k := range sums {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			result = append(result, map[string]any{"metric": labels[k], "value": []any{1.7e9, strconv.FormatFloat(sums[k], 'f', -1, 64)}})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &queries
}
