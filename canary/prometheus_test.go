package canary_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelgate/modelgate/canary"
	"github.com/modelgate/modelgate/canary/release"
)

// fakeProm is a Prometheus HTTP API that answers /api/v1/query with the
// body answer gives for the query, and records what it was asked.
type fakeProm struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(query string) (status int, body string)
	// ownHistograms: answer handles the latency histogram queries too;
	// otherwise they get a one-bucket histogram.
	ownHistograms bool

	mu      sync.Mutex
	queries []string
	times   []string
	methods []string
}

func newFakeProm(t *testing.T, answer func(query string) (int, string)) *fakeProm {
	t.Helper()
	p := &fakeProm{t: t, answer: answer}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeProm) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.Form.Get("query")
	p.mu.Lock()
	p.queries = append(p.queries, q)
	p.times = append(p.times, r.Form.Get("time"))
	p.methods = append(p.methods, r.Method)
	p.mu.Unlock()
	status, body := p.answer(q)
	if isHistogram(q) && !p.ownHistograms {
		status, body = http.StatusOK, buckets("+Inf", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

func (p *fakeProm) asked() (queries, times []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.queries...), append([]string(nil), p.times...)
}

// vector is a successful instant-vector answer with one sample per value
// (none: an empty vector).
func vector(values ...string) string {
	result := make([]any, len(values))
	for i, v := range values {
		result[i] = map[string]any{"metric": map[string]string{"replica": strconv.Itoa(i)}, "value": []any{1767268800, v}}
	}
	b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
	return string(b)
}

// isHistogram reports whether q is the default latency histogram query.
func isHistogram(q string) bool { return strings.HasPrefix(q, "sum by (le)") }

// buckets is a histogram answer: pairs of le and cumulative count.
func buckets(pairs ...string) string {
	var result []any
	for i := 0; i+1 < len(pairs); i += 2 {
		result = append(result, map[string]any{"metric": map[string]string{"le": pairs[i]}, "value": []any{1767268800, pairs[i+1]}})
	}
	b, _ := json.Marshal(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
	return string(b)
}

var promNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// promQuery is a step that started 12 s before now.
func promQuery() canary.Query {
	return canary.Query{Model: "fraud", Stable: "7", Candidate: "8", Epoch: "8/0/1", Since: promNow.Add(-11500 * time.Millisecond), Now: promNow}
}

// versionOf is the version label a default query selects.
func versionOf(q string) string {
	_, rest, ok := strings.Cut(q, `version="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// The default queries select the model, the right version and the step so
// far; the numbers they return become the observations.
func TestPrometheusObservations(t *testing.T) {
	figures := map[string]string{
		"stable requests": "4000", "stable errors": "4", "stable nonfinite": "0", "stable p99": "0.012",
		"candidate requests": "999.6", "candidate errors": "3", "candidate nonfinite": "1", "candidate p99": "0.0185",
		"compared": "800", "disagreements": "17", "distinct": "120", "distinct_disagreements": "5",
		"matched requests": "42", "matched errors": "2", "matched nonfinite": "1", "matched p99": "0.03",
	}
	kind := func(q string) string {
		switch {
		case strings.Contains(q, "distinct_comparisons"):
			return "distinct"
		case strings.Contains(q, "distinct_disagreements"):
			return "distinct_disagreements"
		case isHistogram(q):
			return "latency"
		case strings.Contains(q, "shadow_comparisons"):
			return "compared"
		case strings.Contains(q, "shadow_disagreements"):
			return "disagreements"
		case strings.Contains(q, "histogram_quantile"):
			return "p99"
		case strings.Contains(q, `outcome="error"`):
			return "errors"
		case strings.Contains(q, `outcome="nonfinite"`):
			return "nonfinite"
		}
		return "requests"
	}
	p := newFakeProm(t, func(q string) (int, string) {
		k := kind(q)
		matched := strings.Contains(q, `role="matched"`)
		if k == "latency" {
			switch {
			case versionOf(q) == "8" && matched:
				return http.StatusOK, buckets("0.025", "40", "0.05", "42", "+Inf", "42")
			case versionOf(q) == "8":
				return http.StatusOK, buckets("0.005", "900", "0.025", "990", "+Inf", "1000")
			}
			return http.StatusOK, vector()
		}
		if k != "compared" && k != "disagreements" && k != "distinct" && k != "distinct_disagreements" {
			if !matched && !strings.Contains(q, `role!="matched"`) {
				t.Errorf("query %q does not leave the matched cohort out", q)
			}
			side := map[string]string{"7": "stable", "8": "candidate"}[versionOf(q)]
			if matched && side == "candidate" {
				side = "matched"
			}
			if side == "" || (matched && side != "matched") {
				return http.StatusOK, vector() // a wrong version: no data
			}
			k = side + " " + k
		}
		return http.StatusOK, vector(figures[k])
	})
	p.ownHistograms = true
	src, err := canary.NewPrometheus(p.srv.URL, canary.PromQueries{})
	if err != nil {
		t.Fatal(err)
	}
	if src.Name() != "prometheus" {
		t.Errorf("Name() = %q", src.Name())
	}
	obs, err := src.Observations(t.Context(), promQuery())
	if err != nil {
		t.Fatal(err)
	}
	want := release.Observations{
		Stable: release.VersionStats{Requests: 4000, Errors: 4, NonFinite: 0, P99: 12 * time.Millisecond},
		Candidate: release.VersionStats{Requests: 1000, Errors: 3, NonFinite: 1, P99: 18500 * time.Microsecond,
			Latency: []release.LatencyBucket{{Le: 5 * time.Millisecond, Count: 900}, {Le: 25 * time.Millisecond, Count: 90}, {Le: math.MaxInt64, Count: 10}}},
		Matched: release.VersionStats{Requests: 42, Errors: 2, NonFinite: 1, P99: 30 * time.Millisecond,
			Latency: []release.LatencyBucket{{Le: 25 * time.Millisecond, Count: 40}, {Le: 50 * time.Millisecond, Count: 2}, {Le: math.MaxInt64, Count: 0}}},
		Compared: 800, Disagreements: 17, Distinct: 120, DistinctDisagreements: 5,
	}
	if !reflect.DeepEqual(obs, want) {
		t.Errorf("observations\n got %+v\nwant %+v", obs, want)
	}

	queries, times := p.asked()
	if len(queries) != 19 {
		t.Fatalf("%d queries sent, want 19 (5 per version, 5 for the matched cohort, 4 comparisons): %q", len(queries), queries)
	}
	perVersion := map[string]int{}
	for i, q := range queries {
		if !strings.Contains(q, `model="fraud"`) {
			t.Errorf("query %q does not select the model", q)
		}
		if !strings.Contains(q, "[12s]") {
			t.Errorf("query %q does not cover the step so far, [12s]", q)
		}
		if got, err := strconv.ParseFloat(times[i], 64); err != nil || got != float64(promNow.Unix()) {
			t.Errorf("query %q evaluated at time=%q, want %d", q, times[i], promNow.Unix())
		}
		perVersion[versionOf(q)]++
	}
	if perVersion["7"] != 5 || perVersion["8"] != 14 {
		t.Errorf("queries per version %v, want 5 for stable 7 and 14 for candidate 8", perVersion)
	}
}

// Without matched requests the cohort costs one query a tick: its count.
func TestPrometheusNoMatchedRequests(t *testing.T) {
	p := newFakeProm(t, func(q string) (int, string) {
		if strings.Contains(q, `role="matched"`) {
			return http.StatusOK, vector()
		}
		return http.StatusOK, vector("10")
	})
	src, err := canary.NewPrometheus(p.srv.URL, canary.PromQueries{})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := src.Observations(t.Context(), promQuery())
	if err != nil {
		t.Fatal(err)
	}
	if obs.Candidate.Requests != 10 || !reflect.DeepEqual(obs.Matched, release.VersionStats{}) {
		t.Fatalf("candidate %+v, matched %+v; want 10 candidate requests and no cohort", obs.Candidate, obs.Matched)
	}
	queries, _ := p.asked()
	var matched []string
	for _, q := range queries {
		if strings.Contains(q, `role="matched"`) {
			matched = append(matched, q)
		}
	}
	want := `sum(increase(modelgate_canary_requests_total{model="fraud",version="8",role="matched"}[12s]))`
	if len(matched) != 1 || matched[0] != want {
		t.Fatalf("matched queries %q, want only %q", matched, want)
	}
}

// Each query must answer one number: no data is 0, two series are an
// error, and a failing Prometheus is an error that Decide counts as a
// failed check.
func TestPrometheusAnswers(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    int64 // candidate requests
		wantErr string
	}{
		{"one sample", http.StatusOK, vector("250"), 250, ""},
		{"empty vector", http.StatusOK, vector(), 0, ""},
		{"NaN", http.StatusOK, vector("NaN"), 0, ""},
		{"+Inf", http.StatusOK, vector("+Inf"), 0, ""},
		{"a scalar", http.StatusOK, `{"status":"success","data":{"resultType":"scalar","result":[1767268800,"31"]}}`, 31, ""},
		{"two series", http.StatusOK, vector("1", "2"), 0, "2 series"},
		{"a range vector", http.StatusOK, `{"status":"success","data":{"resultType":"matrix","result":[]}}`, 0, "matrix"},
		{"unavailable", http.StatusServiceUnavailable, `{"status":"error","errorType":"unavailable","error":"overloaded"}`, 0, "503"},
		{"an API error", http.StatusUnprocessableEntity, `{"status":"error","errorType":"execution","error":"query timed out"}`, 0, "query timed out"},
		{"not JSON", http.StatusOK, `<html>proxy error</html>`, 0, "query requests"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newFakeProm(t, func(string) (int, string) { return tc.status, tc.body })
			src, err := canary.NewPrometheus(p.srv.URL, canary.PromQueries{})
			if err != nil {
				t.Fatal(err)
			}
			obs, err := src.Observations(t.Context(), promQuery())
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if obs.Candidate.Requests != tc.want || obs.Stable.Requests != tc.want || obs.Compared != tc.want {
					t.Fatalf("observations %+v, want %d everywhere", obs, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
			}
			if !reflect.DeepEqual(obs, release.Observations{}) {
				t.Errorf("an error came with observations %+v", obs)
			}
			// The controller hands the error to Decide: a failed check.
			plan := release.DefaultPlan()
			st := release.Progress{Phase: release.Progressing, Candidate: "8", Weight: 5, StepStart: promNow.Add(-time.Hour)}
			d := release.Decide(plan, st, release.Observations{Err: err}, promNow)
			if d.Next.Failures != 1 || !d.Changed || !strings.Contains(d.Reason, "analysis query failed") {
				t.Errorf("Decide on the query error: %+v (%s), want one failed check", d.Next, d.Reason)
			}
		})
	}
}

// Custom queries replace the defaults one by one and see the template
// fields; the others keep their defaults.
func TestPrometheusCustomQueries(t *testing.T) {
	p := newFakeProm(t, func(q string) (int, string) {
		if strings.HasPrefix(q, "custom_p99") {
			return http.StatusOK, vector("0.25")
		}
		return http.StatusOK, vector("1")
	})
	src, err := canary.NewPrometheus(p.srv.URL, canary.PromQueries{
		P99: `custom_p99{m="{{.Model}}",v="{{.Version}}",c="{{.Candidate}}"}[{{.Window}}]`,
	})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := src.Observations(t.Context(), promQuery())
	if err != nil {
		t.Fatal(err)
	}
	if obs.Stable.P99 != 250*time.Millisecond || obs.Candidate.P99 != 250*time.Millisecond {
		t.Errorf("p99 from the custom query: %+v", obs)
	}
	queries, _ := p.asked()
	var custom, defaults []string
	for _, q := range queries {
		if strings.HasPrefix(q, "custom_p99") {
			custom = append(custom, q)
		} else {
			defaults = append(defaults, q)
		}
	}
	wantCustom := []string{`custom_p99{m="fraud",v="7",c="8"}[12s]`, `custom_p99{m="fraud",v="8",c="8"}[12s]`}
	if strings.Join(custom, "\n") != strings.Join(wantCustom, "\n") {
		t.Errorf("custom queries sent:\n%s\nwant:\n%s", strings.Join(custom, "\n"), strings.Join(wantCustom, "\n"))
	}
	for _, q := range defaults {
		if strings.Contains(q, "histogram_quantile") && !strings.Contains(q, `role="matched"`) {
			t.Errorf("the default p99 query was sent too: %q", q)
		}
	}
	if len(defaults) != 17 {
		t.Errorf("%d default queries sent, want 17 (12, and the matched cohort's 5): %q", len(defaults), defaults)
	}
}

// A window shorter than a second is asked as one second, never "[0s]".
func TestPrometheusShortWindow(t *testing.T) {
	p := newFakeProm(t, func(string) (int, string) { return http.StatusOK, vector("1") })
	src, err := canary.NewPrometheus(p.srv.URL, canary.PromQueries{})
	if err != nil {
		t.Fatal(err)
	}
	q := promQuery()
	q.Since = q.Now
	if _, err := src.Observations(t.Context(), q); err != nil {
		t.Fatal(err)
	}
	queries, _ := p.asked()
	for _, q := range queries {
		if !strings.Contains(q, "[1s]") {
			t.Fatalf("query %q: want a window of [1s]", q)
		}
	}
}

// Templates are checked when the source is made, not at the first tick.
func TestNewPrometheusRefusesBadTemplates(t *testing.T) {
	for name, q := range map[string]canary.PromQueries{
		"syntax error":    {Requests: `sum(x{model="{{.Model}"})`},
		"unclosed action": {Disagreements: `{{if .Model}}x`},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := canary.NewPrometheus("http://127.0.0.1:9", q); err == nil || !strings.Contains(err.Error(), "prometheus query") {
				t.Fatalf("NewPrometheus: %v, want the template refused", err)
			}
		})
	}
	if _, err := canary.NewPrometheus("http://127.0.0.1:9", canary.PromQueries{Errors: "   "}); err != nil {
		t.Fatalf("a blank query takes its default: %v", err)
	}
}

// A template naming a field that does not exist fails the query, which
// is an analysis error, not a zero.
func TestPrometheusUnknownTemplateField(t *testing.T) {
	p := newFakeProm(t, func(string) (int, string) { return http.StatusOK, vector("1") })
	src, err := canary.NewPrometheus(p.srv.URL, canary.PromQueries{Compared: `x{{.Replica}}`})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Observations(context.Background(), promQuery()); err == nil || !strings.Contains(err.Error(), "query compared") {
		t.Fatalf("err = %v, want the compared query to fail", err)
	}
}
