package validation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelgate/modelgate/internal/report"
	"github.com/modelgate/modelgate/registry"
	"github.com/modelgate/modelgate/semantics"
)

// Report is the outcome of Run: the verdict and every gate's result. It
// has a machine form (JSON) and two human ones (Markdown for a pull
// request comment, Text for a terminal).
type Report struct {
	// Verdict is VerdictPass when every gate passed, else VerdictFail.
	Verdict string `json:"verdict"`
	Model   string `json:"model"`
	Version string `json:"version"`
	// Baseline is the baseline's version; empty without one.
	Baseline string `json:"baseline,omitempty"`
	// Provider is the execution provider the candidate ran on ("cpu",
	// "cuda"); empty when it did not load.
	Provider string `json:"provider"`
	// OutputKinds is what each of the candidate's outputs means, as its
	// manifest stores it (how the accuracy gate reads predictions and the
	// canary compares answers), in signature order; empty for a version
	// stored without kinds.
	OutputKinds []OutputKind `json:"output_kinds,omitempty"`
	Created     time.Time    `json:"created"`
	Gates       []GateResult `json:"gates"`
}

// OutputKind is one output's stored kind.
type OutputKind struct {
	Output    string           `json:"output"`
	Semantics semantics.Output `json:"semantics"`
}

// outputKinds lists the kinds m stores, in signature order (then any
// other name, sorted).
func outputKinds(m registry.Manifest) []OutputKind {
	if len(m.OutputKinds) == 0 {
		return nil
	}
	var out []OutputKind
	seen := map[string]bool{}
	for _, spec := range m.Outputs {
		if k, ok := m.OutputKinds[spec.Name]; ok {
			out = append(out, OutputKind{spec.Name, k})
			seen[spec.Name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.OutputKinds)) {
		if !seen[name] {
			out = append(out, OutputKind{name, m.OutputKinds[name]})
		}
	}
	return out
}

// kindsLine describes the output kinds for people, each name formatted by
// quote and the rest by text.
func (r *Report) kindsLine(quote, text func(string) string) string {
	if len(r.OutputKinds) == 0 {
		return text("output kinds: not stored with the version (the accuracy gate reads the outputs by the label rule)")
	}
	parts := make([]string, len(r.OutputKinds))
	for i, k := range r.OutputKinds {
		parts[i] = quote(k.Output) + " " + text(k.Semantics.String())
	}
	return text("output kinds: ") + strings.Join(parts, ", ")
}

// mdCode is s as Markdown inline code.
func mdCode(s string) string { return "`" + strings.ReplaceAll(s, "`", "'") + "`" }

func plain(s string) string { return s }

// GateResult is one gate's outcome.
//
// In JSON it is flat: {"name", "passed", "skipped" (only when true),
// "message", then each metric by name in sorted order, then "thresholds"
// and "baseline" as objects when present}. A metric that is not a finite
// number is written as null.
type GateResult struct {
	// Name is GateSanity, GateContract, GateAccuracy or GateLatency.
	Name string
	// Passed reports whether the gate counts as passed. The verdict is
	// "pass" only if every gate passed.
	Passed bool
	// Skipped reports that the gate did not run: either on request
	// (SkipAccuracy: Passed is true) or because sanity failed (Passed is
	// false).
	Skipped bool
	// Message names each problem precisely, then any note worth reading
	// (an added output, how the outputs were read), separated by "; ".
	Message string
	// Metrics are the candidate's measurements.
	Metrics map[string]float64
	// Thresholds holds, per metric, the limits it was held to, as text
	// (">= 0.95", "worse by <= 0.01 vs baseline", "<= 2").
	Thresholds map[string]string
	// Baseline holds the baseline's measurements on the same rows or in
	// the same interleaved runs, when there is a baseline.
	Baseline map[string]float64
}

// reservedKeys are the JSON keys of a GateResult that metrics cannot use.
var reservedKeys = []string{"name", "passed", "skipped", "message", "thresholds", "baseline"}

// MarshalJSON writes the flat form described on GateResult.
func (g GateResult) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	field := func(k string, v any) error {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		kb, _ := report.MarshalPlain(k)
		vb, err := report.MarshalPlain(v)
		if err != nil {
			return err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
		return nil
	}
	b.WriteByte('{')
	_ = field("name", g.Name)
	_ = field("passed", g.Passed)
	if g.Skipped {
		_ = field("skipped", true)
	}
	_ = field("message", g.Message)
	for _, k := range slices.Sorted(maps.Keys(g.Metrics)) {
		if slices.Contains(reservedKeys, k) {
			return nil, fmt.Errorf("validation: gate %s: metric name %q is reserved", g.Name, k)
		}
		if err := field(k, report.FiniteOrNil(g.Metrics[k])); err != nil {
			return nil, err
		}
	}
	if len(g.Thresholds) > 0 {
		if err := field("thresholds", g.Thresholds); err != nil {
			return nil, err
		}
	}
	if len(g.Baseline) > 0 {
		base := make(map[string]any, len(g.Baseline))
		for k, v := range g.Baseline {
			base[k] = report.FiniteOrNil(v)
		}
		if err := field("baseline", base); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads the flat form: the known keys, and every other key
// as a metric (null metrics are left out).
func (g *GateResult) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	var r GateResult
	for k, v := range raw {
		var err error
		switch k {
		case "name":
			err = json.Unmarshal(v, &r.Name)
		case "passed":
			err = json.Unmarshal(v, &r.Passed)
		case "skipped":
			err = json.Unmarshal(v, &r.Skipped)
		case "message":
			err = json.Unmarshal(v, &r.Message)
		case "thresholds":
			err = json.Unmarshal(v, &r.Thresholds)
		case "baseline":
			var m map[string]*float64
			err = json.Unmarshal(v, &m)
			r.Baseline = dropNulls(m)
		default:
			var f *float64
			if err = json.Unmarshal(v, &f); err == nil && f != nil {
				if r.Metrics == nil {
					r.Metrics = make(map[string]float64)
				}
				r.Metrics[k] = *f
			}
		}
		if err != nil {
			return fmt.Errorf("validation: gate result field %q: %w", k, err)
		}
	}
	*g = r
	return nil
}

func dropNulls(m map[string]*float64) map[string]float64 {
	if m == nil {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// Passed reports whether the verdict is a pass: the Verdict says so and
// every gate passed.
func (r *Report) Passed() bool {
	if r == nil || r.Verdict != VerdictPass || len(r.Gates) == 0 {
		return false
	}
	for _, g := range r.Gates {
		if !g.Passed {
			return false
		}
	}
	return true
}

// ExitCode is the exit status of a command that ran the gates: 0 when every
// gate passed, 1 when a gate failed, 2 for a usage or infrastructure error
// (err is not nil, or there is no report).
func ExitCode(r *Report, err error) int {
	return report.ExitStatus(err == nil && r != nil, r != nil && r.Passed())
}

// JSON is the report as indented JSON, keys in a fixed order (metrics
// sorted by name), ending with a newline. "<", ">" and "&" are written as
// such, not escaped.
func (r *Report) JSON() ([]byte, error) {
	if r == nil {
		return nil, errors.New("validation: nil report")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Markdown renders the report for a pull-request comment: a header with the
// verdict, one table of every gate's metrics (candidate, baseline,
// threshold), then the failures and the notes.
func (r *Report) Markdown() string {
	var b strings.Builder
	icon, verdict := "❌", "failed"
	if r.Passed() {
		icon, verdict = "✅", "passed"
	}
	fmt.Fprintf(&b, "## %s %s version %s: gates %s\n\n", icon, r.Model, r.Version, verdict)
	fmt.Fprintf(&b, "%s\n\n", r.context(" · "))
	fmt.Fprintf(&b, "%s\n\n", r.kindsLine(mdCode, report.MDText))
	b.WriteString("| gate | result | metric | candidate | baseline | threshold |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- |\n")
	for _, g := range r.Gates {
		for i, row := range gateRows(g) {
			name, result := "", ""
			if i == 0 {
				name, result = "**"+g.Name+"**", resultLabel(g, true)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", name, result,
				report.MDCell(row.metric), report.MDCell(row.cand), report.MDCell(row.base), report.MDCell(row.threshold))
		}
	}
	var failures, notes []string
	for _, g := range r.Gates {
		if g.Message == "" {
			continue
		}
		line := fmt.Sprintf("- **%s**: %s", g.Name, report.MDText(g.Message))
		if g.Passed {
			notes = append(notes, line)
		} else {
			failures = append(failures, line)
		}
	}
	if len(failures) > 0 {
		fmt.Fprintf(&b, "\n### Failures\n\n%s\n", strings.Join(failures, "\n"))
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, "\n### Notes\n\n%s\n", strings.Join(notes, "\n"))
	}
	return b.String()
}

// Text renders the report for a terminal: the verdict line, a table with
// aligned columns, then each gate's message.
func (r *Report) Text() string {
	var b strings.Builder
	verdict := "FAIL"
	if r.Passed() {
		verdict = "PASS"
	}
	fmt.Fprintf(&b, "%s %s version %s (%s)\n%s\n\n", verdict, r.Model, r.Version, r.context(", "), r.kindsLine(strconv.Quote, plain))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GATE\tRESULT\tMETRIC\tCANDIDATE\tBASELINE\tTHRESHOLD")
	for _, g := range r.Gates {
		for i, row := range gateRows(g) {
			name, result := "", ""
			if i == 0 {
				name, result = g.Name, resultLabel(g, false)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, result, row.metric, row.cand, row.base, row.threshold)
		}
	}
	tw.Flush()
	var msgs []string
	for _, g := range r.Gates {
		if g.Message != "" {
			msgs = append(msgs, fmt.Sprintf("%s: %s", g.Name, g.Message))
		}
	}
	if len(msgs) > 0 {
		fmt.Fprintf(&b, "\n%s\n", strings.Join(msgs, "\n"))
	}
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// context is the report's baseline, provider and time, joined by sep.
func (r *Report) context(sep string) string {
	base := "no baseline"
	if r.Baseline != "" {
		base = "baseline: version " + r.Baseline
	}
	provider := r.Provider
	if provider == "" {
		provider = "none (not loaded)"
	}
	return strings.Join([]string{base, "provider: " + provider, r.Created.UTC().Format(time.RFC3339)}, sep)
}

// resultLabel is a gate's result as a word (with an icon for Markdown).
func resultLabel(g GateResult, icon bool) string {
	var label, mark string
	switch {
	case g.Skipped && g.Passed:
		label, mark = "skipped", "➖"
	case g.Skipped:
		label, mark = "not run", "❌"
	case g.Passed:
		label, mark = "pass", "✅"
	default:
		label, mark = "fail", "❌"
	}
	if icon {
		return mark + " " + label
	}
	return label
}

// tableRow is one metric of a gate, formatted.
type tableRow struct{ metric, cand, base, threshold string }

// gateRows lists a gate's metrics (those of the candidate, the baseline or
// with a threshold) in display order; a gate with none has one empty row.
func gateRows(g GateResult) []tableRow {
	keys := make(map[string]bool)
	for _, m := range []map[string]float64{g.Metrics, g.Baseline} {
		for k := range m {
			keys[k] = true
		}
	}
	for k := range g.Thresholds {
		keys[k] = true
	}
	names := slices.Collect(maps.Keys(keys))
	slices.SortFunc(names, compareMetrics)
	rows := make([]tableRow, 0, len(names))
	for _, k := range names {
		row := tableRow{metric: k, threshold: g.Thresholds[k]}
		if v, ok := g.Metrics[k]; ok {
			row.cand = report.FormatValue(v)
		}
		if v, ok := g.Baseline[k]; ok {
			row.base = report.FormatValue(v)
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		rows = append(rows, tableRow{})
	}
	return rows
}

// leadMetrics are shown first, in this order.
var leadMetrics = []string{"load_ms", MetricAccuracy, MetricF1Macro, MetricROCAUC, MetricLogLoss, MetricRMSE, MetricMAE, MetricR2}

// latencyMetric matches batch<N>_<what>.
var latencyMetric = regexp.MustCompile(`^batch([0-9]+)_(.+)$`)

// metricRank places a metric: a group, a number and a sub-order within it.
func metricRank(name string) (group int, num int64, sub int) {
	if i := slices.Index(leadMetrics, name); i >= 0 {
		return 0, 0, i
	}
	if m := perClassMetric.FindStringSubmatch(name); m != nil {
		c, _ := strconv.ParseInt(m[2], 10, 64)
		return 1, c, slices.Index([]string{"precision", "recall", "f1"}, m[1])
	}
	if m := latencyMetric.FindStringSubmatch(name); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		i := slices.Index([]string{"p50_ms", "p99_ms", "p50_ratio", "p99_ratio", "runs"}, m[2])
		if i < 0 {
			i = 99
		}
		return 2, n, i
	}
	if name == MetricRows {
		return 4, 0, 0
	}
	return 3, 0, 0
}

// compareMetrics orders metric names for display.
func compareMetrics(a, b string) int {
	ga, na, sa := metricRank(a)
	gb, nb, sb := metricRank(b)
	switch {
	case ga != gb:
		return ga - gb
	case na != nb:
		if na < nb {
			return -1
		}
		return 1
	case sa != sb:
		return sa - sb
	}
	return strings.Compare(a, b)
}
