package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/stats"
	"github.com/spf13/cobra"
)

// profileData reads a CSV and profiles it for a version, whose manifest
// tells how many features the model takes (and so whether the data has a
// label column).
func profileData(file string, m registry.Manifest, labelColumn string, bins int) (*stats.Profile, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p, err := stats.ComputeProfile(data, stats.ProfileOptions{
		LabelColumn: labelColumn, Features: stats.FeatureWidth(m.Inputs), Bins: bins, Model: m.Name, Version: m.Version,
	})
	if errors.Is(err, stats.ErrLabelColumn) {
		return nil, &exitError{code: 2, err: fmt.Errorf("%s: %w", file, err)}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

// describeProfile is one line about a stored profile.
func describeProfile(p *stats.Profile) string {
	label := "no label column"
	if p.Label >= 0 {
		label = fmt.Sprintf("label: column %d", p.Label)
		if p.Header != nil {
			label += fmt.Sprintf(" (%q)", p.Header[p.Label])
		}
	}
	return fmt.Sprintf("%d rows, %d features, %s", p.Rows, len(p.Features), label)
}

func (a *app) profileCmd() *cobra.Command {
	var data, labelColumn, output string
	var bins int
	cmd := &cobra.Command{
		Use:   "profile MODEL VERSION --data CSV",
		Short: "Profile a version's training data and store it with the version (for check-data and drift)",
		Long: `Profile a data set, normally the version's training data, and store the profile
with the version in the registry (profile.json): per feature the count, missing
rate, min, max, mean, standard deviation, quantiles and decile bins. check-data
and drift compare new data and live traffic with it.

The CSV holds numbers with an optional header line. The features are the
columns the model takes (the width of its [-1, k] input); data with one more
column has the label last, unless --label-column names it ("none": no label).`,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if data == "" {
				return usageError("profile needs --data CSV")
			}
			if output != "text" && output != "json" {
				return usageError("--output must be text or json, got %q", output)
			}
			r, err := a.open(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			m, err := r.Manifest(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			p, err := profileData(data, m, labelColumn, bins)
			if err != nil {
				return err
			}
			js, err := p.JSON()
			if err != nil {
				return err
			}
			if err := r.PutProfile(ctx, m.Name, m.Version, js); err != nil {
				return err
			}
			if output == "json" {
				_, err = a.stdout.Write(js)
				return err
			}
			fmt.Fprintf(a.stdout, "profiled %s version %s from %s: %s\n", m.Name, m.Version, filepath.Base(data), describeProfile(p))
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the data set (CSV), normally the training data")
	cmd.Flags().StringVar(&labelColumn, "label-column", "", `label column: header name or 0-based index, or "none" (default: decided by the model's input width)`)
	cmd.Flags().IntVar(&bins, "bins", stats.DefaultBins, "quantile bins per feature")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json (the profile)")
	return cmd
}

func (a *app) checkDataCmd() *cobra.Command {
	var data, labelColumn, reportDir, output string
	opts := stats.DefaultDataOptions()
	cmd := &cobra.Command{
		Use:   "check-data MODEL [VERSION] --data CSV",
		Short: "Validate a data set against a version's profile (default: the stable version): schema, missing values, range, distribution shift",
		Long: `Validate a data set, such as new training data, against the profile stored with
a version (the stable one unless VERSION is given): the schema (the column count
and names, numeric values), then per feature the missing rate, the values
outside the reference range widened by a tolerance, and the shift of the
distribution: the population stability index (PSI) on the profile's bins, beyond
what sampling noise alone gives, with a binned Kolmogorov-Smirnov statistic
beside it. A negative threshold turns its check off.

The report is printed, and written as report.json and report.md to --report-dir.

Exit codes: 0 the data passed, 1 it failed, 2 usage or infrastructure error
(no profile, unreadable file, registry unreachable).`,
		Args: args(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if data == "" {
				return usageError("check-data needs --data CSV")
			}
			if !(opts.Alpha > 0 && opts.Alpha < 1) {
				return usageError("--alpha must be in (0, 1), got %g", opts.Alpha)
			}
			if output != "text" && output != "json" {
				return usageError("--output must be text or json, got %q", output)
			}
			infra := func(err error) error { return &exitError{code: 2, err: err} }
			r, err := a.open(cmd)
			if err != nil {
				return infra(err)
			}
			ctx := cmd.Context()
			name, version := args[0], ""
			if len(args) == 2 {
				version = args[1]
			}
			p, err := storedProfile(ctx, r, name, version)
			if err != nil {
				return infra(err)
			}
			b, err := os.ReadFile(data)
			if err != nil {
				return infra(err)
			}
			o := opts
			o.LabelColumn, o.Name = labelColumn, filepath.Base(data)
			rep, err := stats.CheckData(p, b, o)
			if err != nil {
				return infra(err)
			}
			reportJSON, err := rep.JSON()
			if err != nil {
				return infra(err)
			}
			if reportDir != "" {
				if err := writeReports(reportDir, reportJSON, rep.Markdown()); err != nil {
					return infra(err)
				}
			}
			if output == "json" {
				fmt.Fprintln(a.stdout, strings.TrimSpace(string(reportJSON)))
			} else {
				fmt.Fprint(a.stdout, rep.Text())
			}
			if code := stats.DataExitCode(rep, nil); code != 0 {
				what := "the schema does not match"
				if rep.Schema.Passed {
					var names []string
					for _, f := range rep.Failed() {
						names = append(names, fmt.Sprintf("%q", f.Name))
					}
					what = "features failed: " + strings.Join(names, ", ")
				}
				return &exitError{code: code, err: fmt.Errorf("%s does not fit the profile of %s version %s: %s", filepath.Base(data), p.Model, p.Version, what)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "", "the data set to check (CSV)")
	f.Float64Var(&opts.Alpha, "alpha", opts.Alpha, "false-alarm rate over all features and tests: the chance that data from the profile's own distribution fails")
	f.Float64Var(&opts.MaxPSI, "max-psi", opts.MaxPSI, "size of effect: a feature the tests find shifted fails only with a PSI beyond sampling noise above this (0: any)")
	f.Float64Var(&opts.MaxMissing, "max-missing", opts.MaxMissing, "absolute limit on the share of missing values of a feature, whatever the profile had (negative: none)")
	f.Float64Var(&opts.RangeTolerance, "range-tolerance", opts.RangeTolerance, "widen the reference range by this share of its width on each side before counting values out of range")
	f.Float64Var(&opts.MaxOutOfRange, "max-out-of-range", opts.MaxOutOfRange, "size of effect: a feature the tests find out of range fails only with more than this share of values outside it (0: any)")
	f.StringVar(&labelColumn, "label-column", "", `label column: header name or 0-based index, or "none" (default: where the profile's data had it)`)
	f.StringVar(&reportDir, "report-dir", "", "write report.json and report.md here")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// storedProfile reads the profile of a version, the stable one when version
// is empty.
func storedProfile(ctx context.Context, r *registry.Registry, name, version string) (*stats.Profile, error) {
	if version == "" {
		rel, err := store.Read(ctx, r, name)
		if err != nil {
			return nil, err
		}
		if rel.Stable == "" {
			return nil, fmt.Errorf("model %q has no stable version: name a VERSION", name)
		}
		version = rel.Stable
	}
	b, err := r.Profile(ctx, name, version)
	if err != nil {
		return nil, err
	}
	p, err := stats.ParseProfile(b)
	if err != nil {
		return nil, fmt.Errorf("model %q version %q: %w", name, version, err)
	}
	if p.Model == "" {
		p.Model, p.Version = name, version
	}
	return p, nil
}
