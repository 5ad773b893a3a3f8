package canary

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/modelgate/modelgate/canary/release"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Source gives the observations of a canary's current step.
type Source interface {
	// Observations of model since the step started: stable and candidate
	// name the versions, epoch the step (see Release.Epoch).
	Observations(ctx context.Context, q Query) (release.Observations, error)
	// Name is "in-process" or "prometheus".
	Name() string
}

// Query is what a Source is asked about.
type Query struct {
	Model, Stable, Candidate, Epoch string
	Since, Now                      time.Time
}

// InProcess adapts a Recorder: each replica judges the traffic it served.
type InProcess struct{ Recorder *Recorder }

// Observations returns the recorder's counts of the step.
func (s InProcess) Observations(_ context.Context, q Query) (release.Observations, error) {
	return s.Recorder.Observations(q.Model, q.Epoch), nil
}

// Name is "in-process".
func (InProcess) Name() string { return "in-process" }

// PromQueries are PromQL templates over modelgate's canary metrics. Each
// sees .Model, .Version (the version asked about: stable for Stable*,
// the candidate otherwise), .Candidate and .Window (the step so far, as a
// range such as "90s"). Each must return one number (an empty result is 0).
//
// Requests, Errors, NonFinite, P99 and Latency are the weighted split's
// figures of each version: the defaults leave out role="matched", the
// candidate's runs for requests a match rule sent it. The Matched ones
// are the same figures of that cohort alone (asked with .Version the
// candidate).
type PromQueries struct {
	Requests  string `mapstructure:"requests"`
	Errors    string `mapstructure:"errors"`
	NonFinite string `mapstructure:"nonfinite"`
	P99       string `mapstructure:"p99"` // seconds
	// Latency gives the latency histogram: one series per bucket, labelled
	// le (seconds, cumulative as Prometheus histograms are).
	Latency       string `mapstructure:"latency"`
	Compared      string `mapstructure:"compared"`
	Disagreements string `mapstructure:"disagreements"`
	// Distinct and DistinctDisagreements count distinct compared inputs
	// and those the versions disagreed on; each replica counts its own,
	// so an input several replicas saw counts once per replica.
	Distinct              string `mapstructure:"distinct"`
	DistinctDisagreements string `mapstructure:"distinct_disagreements"`

	MatchedRequests  string `mapstructure:"matched_requests"`
	MatchedErrors    string `mapstructure:"matched_errors"`
	MatchedNonFinite string `mapstructure:"matched_nonfinite"`
	MatchedP99       string `mapstructure:"matched_p99"` // seconds
	MatchedLatency   string `mapstructure:"matched_latency"`
}

// DefaultPromQueries sum the canary metrics of every replica.
func DefaultPromQueries() PromQueries {
	sel := `model="{{.Model}}",version="{{.Version}}",role!="` + RoleMatched + `"`
	matched := `model="{{.Model}}",version="{{.Version}}",role="` + RoleMatched + `"`
	return PromQueries{
		Requests:              `sum(increase(modelgate_canary_requests_total{` + sel + `}[{{.Window}}]))`,
		Errors:                `sum(increase(modelgate_canary_requests_total{` + sel + `,outcome="error"}[{{.Window}}]))`,
		NonFinite:             `sum(increase(modelgate_canary_requests_total{` + sel + `,outcome="nonfinite"}[{{.Window}}]))`,
		P99:                   `histogram_quantile(0.99, sum by (le) (rate(modelgate_canary_request_duration_seconds_bucket{` + sel + `}[{{.Window}}])))`,
		Latency:               `sum by (le) (increase(modelgate_canary_request_duration_seconds_bucket{` + sel + `}[{{.Window}}]))`,
		Compared:              `sum(increase(modelgate_canary_shadow_comparisons_total{model="{{.Model}}",version="{{.Candidate}}"}[{{.Window}}]))`,
		Disagreements:         `sum(increase(modelgate_canary_shadow_disagreements_total{model="{{.Model}}",version="{{.Candidate}}"}[{{.Window}}]))`,
		Distinct:              `sum(increase(modelgate_canary_distinct_comparisons_total{model="{{.Model}}",version="{{.Candidate}}"}[{{.Window}}]))`,
		DistinctDisagreements: `sum(increase(modelgate_canary_distinct_disagreements_total{model="{{.Model}}",version="{{.Candidate}}"}[{{.Window}}]))`,
		MatchedRequests:       `sum(increase(modelgate_canary_requests_total{` + matched + `}[{{.Window}}]))`,
		MatchedErrors:         `sum(increase(modelgate_canary_requests_total{` + matched + `,outcome="error"}[{{.Window}}]))`,
		MatchedNonFinite:      `sum(increase(modelgate_canary_requests_total{` + matched + `,outcome="nonfinite"}[{{.Window}}]))`,
		MatchedP99:            `histogram_quantile(0.99, sum by (le) (rate(modelgate_canary_request_duration_seconds_bucket{` + matched + `}[{{.Window}}])))`,
		MatchedLatency:        `sum by (le) (increase(modelgate_canary_request_duration_seconds_bucket{` + matched + `}[{{.Window}}]))`,
	}
}

// Prometheus queries a Prometheus server's HTTP API, so that a canary
// served by many replicas is judged on all of their traffic.
type Prometheus struct {
	api     promv1.API
	queries map[string]*template.Template
}

// NewPrometheus returns a source for the Prometheus at url; empty queries
// take their defaults. Templates are checked here, not at the first tick.
func NewPrometheus(url string, q PromQueries) (*Prometheus, error) {
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		return nil, fmt.Errorf("canary: prometheus %s: %w", url, err)
	}
	d := DefaultPromQueries()
	p := &Prometheus{api: promv1.NewAPI(c), queries: map[string]*template.Template{}}
	for name, pair := range map[string][2]string{
		"requests": {q.Requests, d.Requests}, "errors": {q.Errors, d.Errors}, "nonfinite": {q.NonFinite, d.NonFinite},
		"p99": {q.P99, d.P99}, "latency": {q.Latency, d.Latency}, "compared": {q.Compared, d.Compared}, "disagreements": {q.Disagreements, d.Disagreements},
		"distinct": {q.Distinct, d.Distinct}, "distinct_disagreements": {q.DistinctDisagreements, d.DistinctDisagreements},
		"matched_requests": {q.MatchedRequests, d.MatchedRequests}, "matched_errors": {q.MatchedErrors, d.MatchedErrors},
		"matched_nonfinite": {q.MatchedNonFinite, d.MatchedNonFinite}, "matched_p99": {q.MatchedP99, d.MatchedP99},
		"matched_latency": {q.MatchedLatency, d.MatchedLatency},
	} {
		text := pair[0]
		if strings.TrimSpace(text) == "" {
			text = pair[1]
		}
		t, err := template.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			return nil, fmt.Errorf("canary: prometheus query %s: %w", name, err)
		}
		p.queries[name] = t
	}
	return p, nil
}

// Name is "prometheus".
func (*Prometheus) Name() string { return "prometheus" }

// Observations runs the queries for stable and candidate over the step,
// then the matched cohort's (beyond its request count only when it has
// requests).
func (p *Prometheus) Observations(ctx context.Context, q Query) (release.Observations, error) {
	window := max(q.Now.Sub(q.Since), time.Second)
	var obs release.Observations
	run := func(name, version string) (model.Value, error) {
		var b bytes.Buffer
		err := p.queries[name].Execute(&b, map[string]string{
			"Model": q.Model, "Version": version, "Candidate": q.Candidate,
			"Window": fmt.Sprintf("%ds", int64(math.Ceil(window.Seconds()))),
		})
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", name, err)
		}
		v, _, _, err := p.api.Query(ctx, b.String(), q.Now)
		if err != nil {
			return nil, fmt.Errorf("query %s (%s): %w", name, b.String(), err)
		}
		return v, nil
	}
	ask := func(name, version string) (float64, error) {
		v, err := run(name, version)
		if err != nil {
			return 0, err
		}
		f, err := scalar(v)
		if err != nil {
			return 0, fmt.Errorf("query %s: %w", name, err)
		}
		return f, nil
	}
	// side fills stats from the queries named prefix+"requests" etc.
	side := func(prefix, version string, stats *release.VersionStats) error {
		for _, f := range []struct {
			name string
			dst  *int64
		}{{"requests", &stats.Requests}, {"errors", &stats.Errors}, {"nonfinite", &stats.NonFinite}} {
			if f.name != "requests" && prefix != "" && stats.Requests == 0 {
				return nil // no matched requests: nothing more to ask
			}
			v, err := ask(prefix+f.name, version)
			if err != nil {
				return err
			}
			*f.dst = int64(math.Round(v))
		}
		v, err := ask(prefix+"p99", version)
		if err != nil {
			return err
		}
		stats.P99 = time.Duration(v * float64(time.Second))
		h, err := run(prefix+"latency", version)
		if err == nil {
			stats.Latency, err = histogram(h)
		}
		if err != nil {
			return fmt.Errorf("query %slatency: %w", prefix, err)
		}
		return nil
	}
	if err := side("", q.Stable, &obs.Stable); err != nil {
		return release.Observations{}, err
	}
	if err := side("", q.Candidate, &obs.Candidate); err != nil {
		return release.Observations{}, err
	}
	if err := side("matched_", q.Candidate, &obs.Matched); err != nil {
		return release.Observations{}, err
	}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"compared", &obs.Compared}, {"disagreements", &obs.Disagreements},
		{"distinct", &obs.Distinct}, {"distinct_disagreements", &obs.DistinctDisagreements}} {
		v, err := ask(f.name, q.Candidate)
		if err != nil {
			return release.Observations{}, err
		}
		*f.dst = int64(math.Round(v))
	}
	return obs, nil
}

// scalar reads one number from a query result: a scalar, or a vector of
// at most one sample (none is 0). NaN (no data) is 0.
func scalar(v model.Value) (float64, error) {
	var f float64
	switch x := v.(type) {
	case *model.Scalar:
		f = float64(x.Value)
	case model.Vector:
		switch len(x) {
		case 0:
			return 0, nil
		case 1:
			f = float64(x[0].Value)
		default:
			return 0, fmt.Errorf("query returned %d series, want one number (aggregate with sum)", len(x))
		}
	default:
		return 0, fmt.Errorf("query returned a %s, want a scalar or an instant vector", v.Type())
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, nil
	}
	return f, nil
}

// histogram reads a latency histogram from a query result: an instant
// vector with one series per cumulative bucket, labelled le in seconds
// ("+Inf" for the last). No data is no histogram.
func histogram(v model.Value) ([]release.LatencyBucket, error) {
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("returned a %s, want an instant vector by le", v.Type())
	}
	type point struct{ le, cum float64 }
	points := make([]point, 0, len(vec))
	for _, smp := range vec {
		le, err := strconv.ParseFloat(string(smp.Metric["le"]), 64)
		if err != nil {
			return nil, fmt.Errorf("a series without a numeric le label: %s", smp.Metric)
		}
		c := float64(smp.Value)
		if math.IsNaN(c) {
			c = 0
		}
		points = append(points, point{le, c})
	}
	sort.Slice(points, func(i, j int) bool { return points[i].le < points[j].le })
	var out []release.LatencyBucket
	prev := 0.0
	for _, pt := range points {
		// Cumulative counts from increase() may dip by rounding; a bucket
		// never has fewer than none.
		n := int64(math.Round(max(pt.cum-prev, 0)))
		prev = max(prev, pt.cum)
		le := time.Duration(math.MaxInt64)
		if !math.IsInf(pt.le, 1) {
			le = time.Duration(pt.le * float64(time.Second))
		}
		out = append(out, release.LatencyBucket{Le: le, Count: n})
	}
	return out, nil
}
