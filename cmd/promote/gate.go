package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modelgate/modelgate/canary/release/store"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
	"github.com/modelgate/modelgate/signing"
	"github.com/modelgate/modelgate/validation"
	"github.com/spf13/cobra"
)

func (a *app) gateCmd() *cobra.Command {
	var (
		holdout, labelColumn, metric, reportDir, output        string
		minAccuracy, minMetric, maxRegression, maxLatencyRatio float64
		latencyBudget                                          time.Duration
		latencyRuns, largeBatch                                int
		skipAccuracy                                           bool
		providers                                              []string
		signKey                                                string
	)
	cmd := &cobra.Command{
		Use:   "gate MODEL VERSION",
		Short: "Run the sanity, contract, accuracy and latency gates on a version, against the stable one",
		Long: `Run the gates on a version, with the current stable version as the baseline:
sanity (loads, runs on dummy inputs, finite and repeatable outputs, digest),
contract (signature matches the manifest and the baseline), accuracy (on the
holdout CSV, absolute and against the baseline on the same rows) and latency
(p50/p99 at batch 1 and a larger batch, absolute and against the baseline).
The report is stored with the version in the registry (so that promote stable
accepts it), printed, and written as report.json and report.md to --report-dir.

Exit codes: 0 every gate passed, 1 a gate failed, 2 usage or infrastructure error.`,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError("--output must be text or json, got %q", output)
			}
			if (metric == "") != !cmd.Flags().Changed("min") {
				return usageError("--metric NAME and --min VALUE go together")
			}
			infra := func(err error) error { return &exitError{code: 2, err: err} }
			name, version := args[0], args[1]
			var hold []byte
			if holdout != "" {
				var err error
				if hold, err = os.ReadFile(holdout); err != nil {
					return infra(err)
				}
			}
			signer, err := a.signer(signKey)
			if err != nil {
				return err
			}
			r, err := a.open(cmd)
			if err != nil {
				return infra(err)
			}
			ctx := cmd.Context()
			if err := a.checkSigned(ctx, r, name, version); err != nil {
				return err
			}
			rel, err := store.Read(ctx, r, name)
			if err != nil && !errors.Is(err, registry.ErrNotFound) {
				return infra(err)
			}
			rt, err := serving.NewRuntime(serving.Options{LibraryPath: a.ortLib, Providers: providers})
			if err != nil {
				return infra(err)
			}
			defer rt.Close()
			rep, err := validation.GateVersion(ctx, signedReports{r, signer}, name, version, rel.Stable, validation.Options{
				Runtime:         rt,
				Holdout:         hold,
				LabelColumn:     labelColumn,
				MinAccuracy:     minAccuracy,
				Metric:          metric,
				MinMetric:       minMetric,
				MaxRegression:   maxRegression,
				LatencyBudget:   latencyBudget,
				MaxLatencyRatio: maxLatencyRatio,
				LatencyRuns:     latencyRuns,
				LargeBatch:      largeBatch,
				SkipAccuracy:    skipAccuracy,
			})
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
			if signer != nil {
				fmt.Fprintf(a.stderr, "gate report of %s version %s signed with key %s\n", name, version, signer.KeyID()[:12])
			}
			if output == "json" {
				fmt.Fprintln(a.stdout, strings.TrimSpace(string(reportJSON)))
			} else {
				fmt.Fprint(a.stdout, rep.Text())
			}
			if code := validation.ExitCode(rep, nil); code != 0 {
				return &exitError{code: code, err: fmt.Errorf("%s version %s failed its gates", name, version)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&holdout, "holdout", "", "holdout CSV (default: the one pushed with the version)")
	f.BoolVar(&skipAccuracy, "skip-accuracy", false, "report the accuracy gate as skipped when there is no holdout (instead of failing it)")
	f.StringVar(&labelColumn, "label-column", "", "label column: header name or 0-based index (default: the last)")
	f.Float64Var(&minAccuracy, "min-accuracy", 0, "fail below this accuracy (0: no absolute threshold)")
	f.StringVar(&metric, "metric", "", "a metric with an absolute threshold, e.g. f1_macro, roc_auc, r2 (with --min)")
	f.Float64Var(&minMetric, "min", 0, "the threshold for --metric")
	f.Float64Var(&maxRegression, "max-regression", validation.DefaultMaxRegression, "largest allowed drop of the primary metric against the stable version on the same rows (negative: off)")
	f.Float64Var(&maxLatencyRatio, "max-latency-ratio", validation.DefaultMaxLatencyRatio, "largest allowed ratio of the median (p50) latency to the stable version's, at batch 1 and the large batch (0: off)")
	f.DurationVar(&latencyBudget, "latency-budget", 0, "largest allowed p99 latency at batch 1 (0: none)")
	f.IntVar(&latencyRuns, "latency-runs", 0, "runs per latency measurement (0: the default)")
	f.IntVar(&largeBatch, "large-batch", 0, "the larger batch size measured (0: the default)")
	f.StringSliceVar(&providers, "providers", []string{"cuda", "cpu"}, "execution providers for the gates, in order")
	f.StringVar(&reportDir, "report-dir", "", "write report.json and report.md here")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	f.StringVar(&signKey, "sign-key", "", "private key (PEM) that signs the stored gate report (default $"+envSignKey+"); with trusted keys, stable and canary start count only a signed report")
	return cmd
}

// signedReports stores gate reports signed by s (unsigned when s is nil).
type signedReports struct {
	*registry.Registry
	s *signing.Signer
}

func (g signedReports) PutGateReport(ctx context.Context, name, version string, reportJSON, reportMD []byte) error {
	return g.PutSignedGateReport(ctx, g.s, name, version, reportJSON, reportMD)
}

func writeReports(dir string, reportJSON []byte, reportMD string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), reportJSON, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(reportMD), 0o644)
}
