package validation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/modelgate/modelgate/internal/report"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/serving"
)

// Gate names, in the order Run reports the gates.
const (
	GateSanity   = "sanity"
	GateContract = "contract"
	GateAccuracy = "accuracy"
	GateLatency  = "latency"
)

// Verdicts of a Report.
const (
	VerdictPass = report.VerdictPass
	VerdictFail = report.VerdictFail
)

// Defaults. DefaultMaxRegression and DefaultMaxLatencyRatio are the values
// a caller such as promote should offer; the zero values of Options mean
// "no drop allowed" and "no ratio check" respectively.
const (
	// DefaultMaxRegression is the suggested largest drop of the primary
	// metric against the baseline: one point of accuracy.
	DefaultMaxRegression = 0.01
	// DefaultMaxLatencyRatio is the suggested largest ratio of the
	// candidate's p99 latency to the baseline's.
	DefaultMaxLatencyRatio = 2.0
	// DefaultLatencyRuns is the number of timed runs per measurement when
	// Options.LatencyRuns is zero.
	DefaultLatencyRuns = 200
	// DefaultLargeBatch is the larger batch size measured when
	// Options.LargeBatch is zero.
	DefaultLargeBatch = 32
)

// Errors returned by Run. A gate that fails is not an error: it is a
// failed GateResult in the Report. These are usage and infrastructure
// problems, for which no verdict can be given (ExitCode 2).
var (
	// ErrUsage means the options are invalid: no runtime, a negative count,
	// an unknown metric, a label column the holdout does not have.
	ErrUsage = errors.New("validation: invalid options")
	// ErrHoldout means the holdout CSV cannot be read: malformed CSV,
	// ragged rows, a value that is not a finite number, no rows.
	ErrHoldout = errors.New("validation: unreadable holdout")
	// ErrBaseline means the baseline cannot serve as one: its bytes do not
	// match its manifest, or it does not load or run. The baseline is the
	// version already taking traffic, so this is the environment's problem
	// (or the registry's), not the candidate's.
	ErrBaseline = errors.New("validation: baseline unusable")
)

// Model is a model version under test, or the baseline it is compared to.
type Model struct {
	Name, Version string
	// Bytes is the ONNX model file.
	Bytes []byte
	// Manifest is what the registry recorded for the version. When it
	// carries a SHA256 (and a Size), sanity checks the bytes against it;
	// when it carries Inputs or Outputs, contract checks the model's
	// signature against them. A zero Manifest (a file that was never
	// pushed) skips both checks.
	Manifest registry.Manifest
}

// Loader loads model bytes into a serving.Model; *serving.Runtime is one.
type Loader interface {
	Load(model []byte, o serving.ModelOptions) (serving.Model, error)
}

// load loads m and puts it in service (no batching) for the gates, with
// the output kinds its manifest stores.
func load(l Loader, m Model) (*serving.Session, error) {
	model, err := l.Load(m.Bytes, serving.ModelOptions{Name: m.Name, Version: m.Version})
	if err != nil {
		return nil, err
	}
	return serving.NewSession(model, serving.SessionOptions{OutputKinds: m.Manifest.OutputKinds}), nil
}

// Options configure Run. Only Runtime is required: the zero value of every
// other field is a sensible default, documented on the field.
type Options struct {
	// Runtime loads the models, on its configured execution providers
	// (a *serving.Runtime).
	Runtime Loader

	// Holdout is a CSV of numeric columns, the label in the last column
	// (unless LabelColumn says otherwise), with an optional header line of
	// names. Nil means no holdout: the accuracy gate then fails with "no
	// holdout given", unless SkipAccuracy is set.
	Holdout []byte
	// LabelColumn is the label column: a header name or a 0-based index.
	// Empty: the last column.
	LabelColumn string
	// SkipAccuracy turns the accuracy gate off: it is reported as skipped
	// and does not fail the verdict. Meant for models that have no holdout
	// on purpose; without it, a missing holdout fails the gate.
	SkipAccuracy bool
	// MinAccuracy is the lowest accuracy a classifier may have on the
	// holdout. 0: no absolute accuracy threshold. A regressor with
	// MinAccuracy set fails the gate (it has no accuracy: use Metric).
	MinAccuracy float64
	// Metric and MinMetric set a threshold on any metric the accuracy gate
	// computes (accuracy, f1_macro, roc_auc, log_loss, precision_<class>,
	// recall_<class>, f1_<class>, rmse, mae, r2). For metrics where lower is
	// better (log_loss, rmse, mae) MinMetric is a maximum. A MinMetric of 0
	// sets no threshold. Metric also names the primary metric that
	// MaxRegression watches.
	Metric    string
	MinMetric float64
	// MaxRegression is the largest allowed worsening of the primary metric
	// against the baseline on the same rows, in the metric's units (0.01 is
	// one point of accuracy). The primary metric is Metric when set, else
	// accuracy for a classifier and r2 for a regressor. 0: no worsening at
	// all is allowed; negative: no regression check.
	// DefaultMaxRegression (0.01) is the suggested value.
	MaxRegression float64

	// LatencyBudget is the largest allowed p99 latency at batch 1. 0: none.
	LatencyBudget time.Duration
	// MaxLatencyRatio is the largest allowed ratio of the candidate's
	// latency to the baseline's, at batch 1 and at LargeBatch, measured in
	// the same process with runs interleaved. The p50 ratio decides; the
	// p99 ratio is reported beside it, and noted when it alone is over the
	// limit (see the package documentation: on a busy machine the p99 of
	// short runs is scheduler noise, on either side). 0: no ratio check.
	// DefaultMaxLatencyRatio (2) is the suggested value.
	MaxLatencyRatio float64
	// LatencyRuns is the number of timed runs per measurement. 0:
	// DefaultLatencyRuns (200). A measurement also stops after 2 seconds
	// once 20 runs are done, so that a slow model keeps the gate short.
	LatencyRuns int
	// LargeBatch is the larger batch size measured. 0: DefaultLargeBatch
	// (32).
	LargeBatch int

	// Now stamps the report; nil: time.Now.
	Now func() time.Time
}

// withDefaults checks the options and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Runtime == nil {
		return o, fmt.Errorf("%w: no Runtime", ErrUsage)
	}
	switch {
	case o.LatencyRuns < 0:
		return o, fmt.Errorf("%w: LatencyRuns %d is negative", ErrUsage, o.LatencyRuns)
	case o.LargeBatch < 0:
		return o, fmt.Errorf("%w: LargeBatch %d is negative", ErrUsage, o.LargeBatch)
	case o.LatencyBudget < 0:
		return o, fmt.Errorf("%w: LatencyBudget %v is negative", ErrUsage, o.LatencyBudget)
	case o.MaxLatencyRatio < 0 || math.IsNaN(o.MaxLatencyRatio) || math.IsInf(o.MaxLatencyRatio, 0):
		return o, fmt.Errorf("%w: MaxLatencyRatio %v is not a positive number (0 turns the check off)", ErrUsage, o.MaxLatencyRatio)
	case o.MinAccuracy < 0 || o.MinAccuracy > 1 || math.IsNaN(o.MinAccuracy):
		return o, fmt.Errorf("%w: MinAccuracy %v is outside [0, 1]", ErrUsage, o.MinAccuracy)
	case math.IsNaN(o.MinMetric) || math.IsInf(o.MinMetric, 0):
		return o, fmt.Errorf("%w: MinMetric %v is not a finite number", ErrUsage, o.MinMetric)
	case math.IsNaN(o.MaxRegression) || math.IsInf(o.MaxRegression, 0):
		return o, fmt.Errorf("%w: MaxRegression %v is not a finite number (negative turns the check off)", ErrUsage, o.MaxRegression)
	}
	if o.Metric != "" && !knownMetric(o.Metric) {
		return o, fmt.Errorf("%w: unknown metric %q (want one of %s, or precision_<class>, recall_<class>, f1_<class>)", ErrUsage, o.Metric, strings.Join(namedMetrics, ", "))
	}
	if o.Metric == "" && o.MinMetric != 0 {
		return o, fmt.Errorf("%w: MinMetric %v is set without a Metric", ErrUsage, o.MinMetric)
	}
	if o.LatencyRuns == 0 {
		o.LatencyRuns = DefaultLatencyRuns
	}
	if o.LargeBatch == 0 {
		o.LargeBatch = DefaultLargeBatch
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Run runs the gates over cand, comparing it with baseline when baseline is
// not nil, and returns the report. The verdict is "pass" only if every gate
// passed.
//
// The error is only for problems that prevent a verdict: invalid options,
// an unreadable holdout, a baseline that cannot be used, a cancelled
// context (ErrUsage, ErrHoldout, ErrBaseline, ctx.Err()). Everything wrong
// with the candidate, including bytes that do not load, is a failed gate.
func Run(ctx context.Context, cand Model, baseline *Model, opts Options) (*Report, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	var hold *holdout
	if opts.Holdout != nil && !opts.SkipAccuracy {
		if hold, err = parseHoldout(opts.Holdout, opts.LabelColumn); err != nil {
			return nil, err
		}
	}
	rep := &Report{Model: cand.Name, Version: cand.Version, OutputKinds: outputKinds(cand.Manifest), Created: o.Now().UTC()}

	var base *serving.Session
	if baseline != nil {
		rep.Baseline = baseline.Version
		if base, err = loadBaseline(ctx, o.Runtime, *baseline); err != nil {
			return nil, err
		}
		defer base.Close()
	}

	sane, sess := sanityGate(ctx, o, cand)
	if sess != nil {
		defer sess.Close()
		rep.Provider = sess.Provider()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep.Gates = append(rep.Gates, sane)

	if sess == nil {
		rep.Gates = append(rep.Gates, notRun(GateContract, "sanity failed: the model did not load"))
	} else {
		rep.Gates = append(rep.Gates, contractGate(sess, cand, base, baseline))
	}

	switch {
	case opts.SkipAccuracy:
		rep.Gates = append(rep.Gates, GateResult{Name: GateAccuracy, Passed: true, Skipped: true, Message: "skipped on request (SkipAccuracy)"})
	case !sane.Passed:
		rep.Gates = append(rep.Gates, notRun(GateAccuracy, "sanity failed"))
	case hold == nil:
		rep.Gates = append(rep.Gates, GateResult{Name: GateAccuracy, Message: "no holdout given: the accuracy gate needs a holdout CSV (or SkipAccuracy to skip it on purpose)"})
	default:
		g, err := accuracyGate(ctx, o, hold, sess, base, baseline)
		if err != nil {
			return nil, err
		}
		rep.Gates = append(rep.Gates, g)
	}

	if !sane.Passed {
		rep.Gates = append(rep.Gates, notRun(GateLatency, "sanity failed"))
	} else {
		g, err := latencyGate(ctx, o, sess, base)
		if err != nil {
			return nil, err
		}
		rep.Gates = append(rep.Gates, g)
	}

	rep.Verdict = VerdictPass
	for _, g := range rep.Gates {
		if !g.Passed {
			rep.Verdict = VerdictFail
		}
	}
	return rep, nil
}

// notRun is a gate that could not run because an earlier one failed: it is
// skipped, and it does not pass.
func notRun(name, why string) GateResult {
	return GateResult{Name: name, Skipped: true, Message: why}
}

// loadBaseline checks the baseline's bytes against its manifest, loads and
// warms it up. Any failure is ErrBaseline.
func loadBaseline(ctx context.Context, rt Loader, m Model) (*serving.Session, error) {
	if problems := manifestProblems(m); len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s version %s: %s", ErrBaseline, m.Name, m.Version, strings.Join(problems, "; "))
	}
	s, err := load(rt, m)
	if err != nil {
		return nil, fmt.Errorf("%w: %s version %s does not load: %v", ErrBaseline, m.Name, m.Version, err)
	}
	if err := s.WarmUp(ctx); err != nil {
		s.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", ErrBaseline, err)
	}
	return s, nil
}

// manifestProblems compares a model's bytes and identity with its
// manifest: sha256, size, name and version, each only when the manifest
// records it.
func manifestProblems(m Model) []string {
	var problems []string
	man := m.Manifest
	if man.SHA256 != "" {
		sum := sha256.Sum256(m.Bytes)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, man.SHA256) {
			problems = append(problems, fmt.Sprintf("sha256 of the bytes does not match the manifest: manifest %s, bytes %s", man.SHA256, got))
		}
	}
	if man.Size != 0 && man.Size != int64(len(m.Bytes)) {
		problems = append(problems, fmt.Sprintf("size of the bytes does not match the manifest: manifest %d bytes, got %d", man.Size, len(m.Bytes)))
	}
	if (man.Name != "" && man.Name != m.Name) || (man.Version != "" && man.Version != m.Version) {
		problems = append(problems, fmt.Sprintf("the manifest is for %s version %s, not %s version %s", man.Name, man.Version, m.Name, m.Version))
	}
	return problems
}

// Registry is the part of the registry a gate run reads and writes;
// *registry.Registry is one.
type Registry interface {
	FetchUnverified(ctx context.Context, name, version string) ([]byte, registry.Manifest, error)
	FetchHoldout(ctx context.Context, name, version string) ([]byte, error)
	Fetch(ctx context.Context, name, version string) ([]byte, registry.Manifest, error)
	PutGateReport(ctx context.Context, name, version string, reportJSON, reportMD []byte) error
}

// GateVersion gates a version stored in the registry against stable (the
// stable version, "" for none or when it is the version itself) and stores
// the report beside the version, where promote stable and promote canary
// start read its verdict. The holdout is opts.Holdout when set, else the
// one pushed with the version. The candidate's bytes are fetched without a
// digest check (the sanity gate reports a mismatch); the baseline's with
// one. An error means no verdict could be given or stored.
func GateVersion(ctx context.Context, r Registry, name, version, stable string, opts Options) (*Report, error) {
	candBytes, candManifest, err := r.FetchUnverified(ctx, name, version)
	if err != nil {
		return nil, err
	}
	if opts.Holdout == nil {
		if opts.Holdout, err = r.FetchHoldout(ctx, name, version); err != nil && !errors.Is(err, registry.ErrNotFound) {
			return nil, err
		}
	}
	var base *Model
	if stable != "" && stable != version {
		b, m, err := r.Fetch(ctx, name, stable)
		if err != nil {
			return nil, fmt.Errorf("baseline (stable version %s): %w", stable, err)
		}
		base = &Model{Name: name, Version: stable, Bytes: b, Manifest: m}
	}
	rep, err := Run(ctx, Model{Name: name, Version: version, Bytes: candBytes, Manifest: candManifest}, base, opts)
	if err != nil {
		return nil, err
	}
	reportJSON, err := rep.JSON()
	if err != nil {
		return nil, err
	}
	if err := r.PutGateReport(ctx, name, version, reportJSON, []byte(rep.Markdown())); err != nil {
		return nil, fmt.Errorf("storing the report: %w", err)
	}
	return rep, nil
}
