package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/rollout"
	"github.com/modelgate/modelgate/catalog"
	"github.com/modelgate/modelgate/drift"
	"github.com/modelgate/modelgate/server"
	"github.com/prometheus/client_golang/prometheus"
)

const dashboardFile = "../../deploy/grafana/modelgate-dashboard.json"

// namesRegisterer records the names of the metrics registered through it,
// from the collectors' descriptions, whether or not they have samples yet.
type namesRegisterer struct {
	prometheus.Registerer
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([a-zA-Z_:][a-zA-Z0-9_:]*)"`)

func (r *namesRegisterer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return r.Registerer.Register(c)
}

func (r *namesRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// exportedMetrics are the metric names a gateway exports, as serve wires
// it: the server, the catalog, the canary recorder and controller, and the
// drift tracker.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := &namesRegisterer{Registerer: prometheus.NewRegistry(), names: map[string]bool{}}
	cat := catalog.New(catalog.Options{Registerer: reg})
	defer cat.Close()
	recorder := canary.NewRecorder(reg)
	_ = rollout.New(rollout.Options{Registerer: reg})
	tr := drift.New(drift.Options{Registerer: reg})
	defer tr.Close()
	server.New(server.Options{Catalog: cat, Registerer: reg, Gatherer: prometheus.NewRegistry(), Recorder: recorder, Drift: tr})
	return reg.names
}

// TestDashboardNamesExportedMetrics: every PromQL expression in the Grafana
// dashboard names only metrics the gateway exports (a histogram through its
// _bucket, _sum or _count series), and the dashboard covers traffic,
// latency, errors, canaries and drift.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("dashboard without a title or uid")
	}
	exported := exportedMetrics(t)
	metric := regexp.MustCompile(`\bmodelgate_[a-z0-9_]+`)
	var exprs []string
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(map[string]any); ok {
			exprs = append(exprs, q["query"].(string))
		}
	}
	checkPromQL(t, panelExprs(exprs))
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metric.FindAllString(e, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && exported[b] {
					base = b
				}
			}
			if !exported[base] {
				t.Errorf("the dashboard queries %s, which the gateway does not export", name)
			}
			used[base] = true
		}
	}
	for _, want := range []string{
		"modelgate_http_requests_total", "modelgate_http_request_duration_seconds", "modelgate_inference_duration_seconds",
		"modelgate_canary_weight", "modelgate_canary_phase", "modelgate_canary_check_value", "modelgate_canary_decisions_total",
		"modelgate_drift_bin_total", "modelgate_drift_reference_ratio",
	} {
		if !used[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
	t.Logf("%d panels, %d expressions over %d metrics: %v", len(dash.Panels), len(exprs), len(used), slices.Sorted(maps.Keys(used)))
}

// panelExprs drops Grafana's templating functions (label_values(...)),
// which are not PromQL, and puts sample values in place of the dashboard's
// variables.
func panelExprs(exprs []string) []string {
	vars := strings.NewReplacer("$__rate_interval", "1m", "$drift_window", "1h", "$model", ".*", "$version", ".*")
	var out []string
	for _, e := range exprs {
		if strings.HasPrefix(strings.TrimSpace(e), "label_values(") {
			continue
		}
		out = append(out, vars.Replace(e))
	}
	return out
}

// checkPromQL parses every expression with Prometheus' own parser, through
// promtool (the Debian prometheus package, which make test installs): it
// writes them as recording rules and runs promtool check rules.
func checkPromQL(t *testing.T, exprs []string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed to parse the dashboard's PromQL (make test installs it: apt-get install prometheus): %v", err)
	}
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(e) // a JSON string is a YAML double-quoted string
		fmt.Fprintf(&b, "      - record: dashboard:expr_%d\n        expr: %s\n", i, q)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool rejects the dashboard's PromQL: %v\n%s", err, out)
	}
}
