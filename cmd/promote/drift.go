package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/drift"
	"github.com/modelgate/modelgate/stats"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
)

// Defaults of promote drift.
const (
	defaultMinSamples = 500
	defaultTop        = 5
)

// driftResult is promote drift's JSON output.
type driftResult struct {
	Drift   bool   `json:"drift"`
	Model   string `json:"model"`
	Version string `json:"version"`
	// Reason is set when no verdict could be given (too few samples).
	Reason      string               `json:"reason,omitempty"`
	Rows        float64              `json:"rows"`
	MinSamples  int                  `json:"min_samples"`
	Alpha       float64              `json:"alpha"`
	MaxPSI      float64              `json:"max_psi"`
	Source      string               `json:"source"`
	ProfileRows int                  `json:"profile_rows"`
	Notes       []string             `json:"notes,omitempty"`
	Features    []stats.FeatureDrift `json:"features"`
}

func (a *app) driftCmd() *cobra.Command {
	var (
		gateways           []string
		prom, version, out string
		window             string
		minSamples, top    int
		maxPSI, alpha      float64
		timeout            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "drift MODEL (--gateway URL ... | --prometheus URL)",
		Short: "Compare live inputs with the stable version's training-data profile; prints should-retrain=true|false last",
		Long: `Compare the distribution of a model's live inputs with the profile of the data
its stable version (or --version) was trained on: the population stability index
(PSI) per feature on the profile's bins, beyond what sampling noise alone gives.

The live counts come from the gateways' GET /v2/models/{m}/drift (summed over
every --gateway; each reports its rolling window, drift.window) or from
Prometheus (the modelgate_drift_bin_total counters summed over every replica:
their totals, or their increase over --window).

The last line of the text output is should-retrain=true|false, ready for
$GITHUB_OUTPUT; --output json prints {"drift": bool, "features": [...], ...}
instead, worst features first.

Exit codes: 0 no drift, 1 drift, 2 too few samples (--min-samples) or an error.`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out != "text" && out != "json" {
				return usageError("--output must be text or json, got %q", out)
			}
			if !(alpha > 0 && alpha < 1) {
				return usageError("--alpha must be in (0, 1), got %g", alpha)
			}
			if (len(gateways) == 0) == (prom == "") {
				return usageError("give the live counts' source: --gateway URL (repeatable) or --prometheus URL, not both")
			}
			if window != "" {
				if prom == "" {
					return usageError("--window applies to --prometheus; a gateway reports its own window (drift.window)")
				}
				if _, err := model.ParseDuration(window); err != nil {
					return usageError("--window %q: %v (e.g. 7d, 24h)", window, err)
				}
			}
			infra := func(err error) error { return &exitError{code: 2, err: err} }
			r, err := a.open(cmd)
			if err != nil {
				return infra(err)
			}
			ctx := cmd.Context()
			name := args[0]
			if version == "" {
				rel, err := store.Read(ctx, r, name)
				if err != nil {
					return infra(err)
				}
				version = rel.Stable
			}
			p, err := storedProfile(ctx, r, name, version)
			if err != nil {
				return infra(err)
			}
			var live *stats.Window
			var source string
			if prom != "" {
				source = "prometheus " + prom
				live, err = promCounts(ctx, prom, p, name, version, window, timeout)
			} else {
				source = fmt.Sprintf("%d gateway(s)", len(gateways))
				live, err = gatewayCounts(ctx, gateways, p, name, version, timeout)
			}
			if err != nil {
				return infra(err)
			}
			v := stats.CompareWindow(p, live, stats.DriftOptions{Alpha: alpha, MaxPSI: maxPSI, MinSamples: minSamples})
			res := driftResult{Drift: v.Drift, Model: name, Version: version, Reason: v.Reason, Rows: v.Rows, MinSamples: minSamples,
				Alpha: v.Alpha, MaxPSI: v.MaxPSI, Source: source, ProfileRows: v.ProfileRows, Notes: v.Notes, Features: v.Features}
			if res.Reason != "" {
				res.Reason += " (--min-samples)"
			}
			if out == "json" {
				if err := a.printJSON(res); err != nil {
					return infra(err)
				}
			} else {
				a.printDrift(res, top)
			}
			switch {
			case res.Reason != "":
				return &exitError{code: 2, err: errors.New(res.Reason)}
			case res.Drift:
				return &exitError{code: 1, err: fmt.Errorf("%s version %s: the live inputs drifted from the training data", name, version)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&gateways, "gateway", nil, "a gateway's base URL, e.g. http://gateway:8080 (repeatable: the counts are summed)")
	f.StringVar(&prom, "prometheus", "", "the Prometheus HTTP API's URL, e.g. http://prometheus:9090, instead of --gateway")
	f.StringVar(&window, "window", "", "with --prometheus: compare the counters' increase over this window (e.g. 7d) instead of their totals")
	f.StringVar(&version, "version", "", "the version to compare (default: the stable version)")
	f.IntVar(&minSamples, "min-samples", defaultMinSamples, "fewest live rows for a verdict; fewer exit 2")
	f.Float64Var(&alpha, "alpha", stats.DefaultAlpha, "false-alarm rate over all features and tests: the chance that live inputs from the training data's distribution are called drift")
	f.Float64Var(&maxPSI, "max-psi", stats.DefaultMaxPSI, "size of effect: a feature the tests find shifted drifts only with a PSI beyond sampling noise above this (0: any)")
	f.IntVar(&top, "top", defaultTop, "features shown in the text output (every drifting one, and at least this many)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "timeout of each request to a gateway or Prometheus")
	f.StringVarP(&out, "output", "o", "text", "output format: text or json")
	return cmd
}

// gatewayCounts sums the /drift answers of the gateways for one version.
func gatewayCounts(ctx context.Context, gateways []string, p *stats.Profile, name, version string, timeout time.Duration) (*stats.Window, error) {
	live := stats.NewWindow(p)
	client := &http.Client{Timeout: timeout}
	for _, g := range gateways {
		u, err := url.Parse(g)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--gateway %q: want a base URL such as http://gateway:8080", g)
		}
		st, err := fetchDrift(ctx, client, strings.TrimSuffix(g, "/")+"/v2/models/"+url.PathEscape(name)+"/drift")
		if err != nil {
			return nil, fmt.Errorf("gateway %s: %w", g, err)
		}
		i := slices.IndexFunc(st.Versions, func(v drift.VersionStats) bool { return v.Version == version })
		if i < 0 {
			live.Notes = append(live.Notes, fmt.Sprintf("gateway %s has not served version %s", g, version))
			continue
		}
		v := st.Versions[i]
		if !v.Profile {
			live.Notes = append(live.Notes, fmt.Sprintf("gateway %s does not count version %s: %s", g, version, v.Reason))
			continue
		}
		if len(v.Features) != len(p.Features) {
			return nil, fmt.Errorf("gateway %s counts %d features of version %s, the profile has %d", g, len(v.Features), version, len(p.Features))
		}
		for j, f := range v.Features {
			if !slices.Equal(f.Edges, p.Features[j].Edges) {
				return nil, fmt.Errorf("gateway %s counts feature %q on other bins than the stored profile's (was the profile replaced? gateways read it once per version)", g, f.Name)
			}
			for b, c := range f.Counts {
				live.Counts[j][b] += float64(c)
			}
			live.Below[j] += float64(f.Below)
			live.Above[j] += float64(f.Above)
		}
		live.Rows += float64(v.Rows)
		live.Notes = append(live.Notes, fmt.Sprintf("gateway %s: %d rows from %s to %s (sample rate %g)", g, v.Rows,
			v.Start.UTC().Format(time.RFC3339), v.End.UTC().Format(time.RFC3339), st.SampleRate))
	}
	return live, nil
}

func fetchDrift(ctx context.Context, client *http.Client, u string) (*drift.ModelStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, e.Error)
		}
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var st drift.ModelStats
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("GET %s: not a drift answer: %v", u, err)
	}
	return &st, nil
}

// promCounts queries the drift counters summed over every replica.
func promCounts(ctx context.Context, addr string, p *stats.Profile, name, version, window string, timeout time.Duration) (*stats.Window, error) {
	client, err := api.NewClient(api.Config{Address: addr})
	if err != nil {
		return nil, fmt.Errorf("--prometheus %q: %w", addr, err)
	}
	q := promv1.NewAPI(client)
	sel := fmt.Sprintf(`{model=%q,version=%q}`, name, version)
	series := func(metric string) string {
		if window != "" {
			return fmt.Sprintf("increase(%s%s[%s])", metric, sel, window)
		}
		return metric + sel
	}
	query := func(expr string) (model.Vector, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		v, _, _, err := q.Query(ctx, expr, time.Now())
		if err != nil {
			return nil, fmt.Errorf("prometheus %s: %s: %w", addr, expr, err)
		}
		vec, ok := v.(model.Vector)
		if !ok {
			return nil, fmt.Errorf("prometheus %s: %s: a %s, want a vector", addr, expr, v.Type())
		}
		return vec, nil
	}
	live := stats.NewWindow(p)
	index := map[string]int{}
	for i, f := range p.Features {
		index[f.Name] = i
	}
	bins, err := query(fmt.Sprintf("sum by (feature, bin) (%s)", series("modelgate_drift_bin_total")))
	if err != nil {
		return nil, err
	}
	for _, s := range bins {
		j, ok := index[string(s.Metric["feature"])]
		if !ok {
			return nil, fmt.Errorf("prometheus counts feature %q, which the profile of version %s does not have", s.Metric["feature"], version)
		}
		b, err := strconv.Atoi(string(s.Metric["bin"]))
		if err != nil || b < 0 || b >= len(live.Counts[j]) {
			return nil, fmt.Errorf("prometheus counts bin %q of feature %q, which has %d bins in the profile (was the profile replaced?)", s.Metric["bin"], s.Metric["feature"], len(live.Counts[j]))
		}
		live.Counts[j][b] += float64(s.Value)
	}
	rng, err := query(fmt.Sprintf("sum by (feature, side) (%s)", series("modelgate_drift_out_of_range_total")))
	if err != nil {
		return nil, err
	}
	for _, s := range rng {
		if j, ok := index[string(s.Metric["feature"])]; ok {
			if s.Metric["side"] == "below" {
				live.Below[j] += float64(s.Value)
			} else {
				live.Above[j] += float64(s.Value)
			}
		}
	}
	rows, err := query(fmt.Sprintf("sum(%s)", series("modelgate_drift_rows_total")))
	if err != nil {
		return nil, err
	}
	if len(rows) > 0 {
		live.Rows = float64(rows[0].Value)
	}
	what := "since each replica started"
	if window != "" {
		what = "over the last " + window
	}
	live.Notes = append(live.Notes, fmt.Sprintf("prometheus %s: %s rows %s", addr, formatCount(live.Rows), what))
	return live, nil
}

// printDrift writes the text output; its last line is should-retrain=….
func (a *app) printDrift(res driftResult, top int) {
	w := a.stdout
	fmt.Fprintf(w, "%s version %s: %s live rows (%s) against the training data's profile (%d rows)\n",
		res.Model, res.Version, formatCount(res.Rows), res.Source, res.ProfileRows)
	for _, n := range res.Notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
	switch {
	case res.Reason != "":
		fmt.Fprintf(w, "\nNO VERDICT: %s\n", res.Reason)
	default:
		var drifted []string
		for _, f := range res.Features {
			if f.Drift {
				drifted = append(drifted, f.Name)
			}
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FEATURE\tP_ADJ\tPSI\tNOISE\tKS\tBELOW_MIN\tABOVE_MAX\tDRIFT")
		for i, f := range res.Features {
			if i >= max(top, len(drifted)) {
				break
			}
			mark := ""
			if f.Drift {
				mark = "yes"
			}
			fmt.Fprintf(tw, "%s\t%.3g\t%.4f\t%.4f\t%.3f\t%s\t%s\t%s\n", f.Name, f.P, f.PSI, f.PSINoise, f.KS, formatCount(f.Below), formatCount(f.Above), mark)
		}
		tw.Flush()
		if len(drifted) > 0 {
			fmt.Fprintf(w, "\nDRIFT: %d of %d features (alpha %g over all features, PSI beyond noise above %g): %s\n", len(drifted), len(res.Features), res.Alpha, res.MaxPSI, strings.Join(drifted, ", "))
			for _, f := range res.Features {
				if f.Drift {
					fmt.Fprintf(w, "  %s: %s\n", f.Name, f.Why)
				}
			}
		} else {
			fmt.Fprintf(w, "\nno drift: no feature's tests reject at alpha %g over all features (or its PSI beyond noise is at most %g)\n", res.Alpha, res.MaxPSI)
		}
	}
	fmt.Fprintf(w, "should-retrain=%t\n", res.Drift)
}

func formatCount(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
