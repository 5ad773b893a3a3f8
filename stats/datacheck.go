package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelgate/modelgate/internal/report"
)

// Defaults of CheckData's options (DataOptions), also offered by promote
// check-data and promote drift.
const (
	// DefaultMaxPSI is the drift verdict's least size of effect: a live
	// feature the tests find shifted drifts only when its population
	// stability index beyond sampling noise (PSINoise) is above it (by
	// convention 0.1 is a moderate shift), so that a huge live window does
	// not call a trivial shift drift. Check-data has none by default.
	DefaultMaxPSI = 0.1
	// DefaultRangeTolerance widens the reference range [min, max] on each
	// side by this share of its width before a value counts as out of
	// range: 0, the range itself, which the exceedance tests are exact for.
	DefaultRangeTolerance = 0.0
)

// DataOptions configure CheckData. Whether a feature fails is decided by
// tests (FeatureTest) at the false-alarm rate Alpha over the whole data
// set; the other limits are sizes of effect a rejected test must also
// reach (0 or negative: none), except MaxMissing, an absolute limit of
// data quality (negative: none). DefaultDataOptions has the defaults.
type DataOptions struct {
	// Alpha is the false-alarm rate over all features and tests (0:
	// DefaultAlpha).
	Alpha float64
	// MaxPSI: a feature whose shift or mean test rejected fails only with
	// a PSI beyond noise above this.
	MaxPSI float64
	// MaxMissing: a feature fails when more than this share of its values
	// is missing, whatever the reference had.
	MaxMissing     float64
	RangeTolerance float64
	// MaxOutOfRange: a feature whose out-of-range test rejected fails only
	// when more than this share of its values is out of range.
	MaxOutOfRange float64
	// LabelColumn overrides where the label is (see ProfileOptions); by
	// default it is where the profile's data had it.
	LabelColumn string
	// Name is the data set's name for the report (a file name).
	Name string
	// Now is the clock for the report; nil is time.Now.
	Now func() time.Time
}

// DefaultDataOptions are the defaults: alpha 0.05, no size of effect, no
// absolute limit on missing values, the reference range as it is.
func DefaultDataOptions() DataOptions {
	return DataOptions{Alpha: DefaultAlpha, MaxMissing: -1, RangeTolerance: DefaultRangeTolerance}
}

func (o DataOptions) withDefaults() DataOptions {
	if o.Alpha <= 0 || o.Alpha >= 1 || math.IsNaN(o.Alpha) {
		o.Alpha = DefaultAlpha
	}
	for _, v := range []*float64{&o.MaxPSI, &o.MaxOutOfRange} {
		if *v < 0 || math.IsNaN(*v) {
			*v = 0
		}
	}
	for _, v := range []*float64{&o.MaxMissing, &o.RangeTolerance} {
		if *v < 0 || math.IsNaN(*v) {
			*v = math.Inf(1)
		}
	}
	if math.IsInf(o.RangeTolerance, 1) {
		o.RangeTolerance = 0
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// DataReport is the outcome of CheckData: the schema check, then every
// feature's figures against the profile. Like Report it has three faces:
// JSON (report.json), Markdown (report.md) and Text (a terminal).
type DataReport struct {
	// Verdict is report.VerdictPass ("pass") when the schema matches and every feature
	// passed, else report.VerdictFail.
	Verdict string `json:"verdict"`
	Model   string `json:"model"`
	Version string `json:"version"`
	// Data names the data set checked.
	Data    string    `json:"data"`
	Rows    int       `json:"rows"`
	Created time.Time `json:"created"`
	// ProfileRows is the number of rows the profile was made from.
	ProfileRows int            `json:"profile_rows"`
	Thresholds  DataThresholds `json:"thresholds"`
	Schema      SchemaResult   `json:"schema"`
	// Features is empty when the schema check failed.
	Features []FeatureCheck `json:"features"`
}

// DataThresholds are the limits a DataReport was held to; a limit that was
// off is null.
type DataThresholds struct {
	Alpha          float64  `json:"alpha"`
	MaxPSI         *float64 `json:"max_psi"`
	MaxMissing     *float64 `json:"max_missing"`
	RangeTolerance *float64 `json:"range_tolerance"`
	MaxOutOfRange  *float64 `json:"max_out_of_range"`
}

// SchemaResult says whether the data has the profile's columns, all
// numeric.
type SchemaResult struct {
	Passed  bool   `json:"passed"`
	Message string `json:"message"`
}

// FeatureCheck is one feature of a data set against its profile.
type FeatureCheck struct {
	Name   string `json:"name"`
	Column int    `json:"column"`
	Passed bool   `json:"passed"`
	// Problems names each threshold the feature broke.
	Problems []string `json:"problems,omitempty"`
	// MissingRate is the share of rows without a value.
	Missing     int     `json:"missing"`
	MissingRate float64 `json:"missing_rate"`
	// OutOfRange counts the values outside the reference range widened by
	// the tolerance; OutOfRangeRate is their share of the values present.
	OutOfRange     int     `json:"out_of_range"`
	OutOfRangeRate float64 `json:"out_of_range_rate"`
	// PSI and KS (binned) compare the values with the reference on the
	// profile's bins; PSINoise is the part of PSI that sampling noise alone
	// explains on average, and the threshold applies to PSI − PSINoise.
	PSI      float64 `json:"psi"`
	PSINoise float64 `json:"psi_noise"`
	KS       float64 `json:"ks"`
	// Min, Max and Mean of the data's values, and the reference's.
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Mean    float64 `json:"mean"`
	RefMin  float64 `json:"ref_min"`
	RefMax  float64 `json:"ref_max"`
	RefMean float64 `json:"ref_mean"`
	// Counts are the data's values per profile bin.
	Counts []int64 `json:"counts"`
	// Tests are the feature's tests; P is the smallest adjusted p-value
	// among them.
	Tests []FeatureTest `json:"tests"`
	P     float64       `json:"p"`
	// std is the sample standard deviation of the values present; large
	// says the shift is above the least size of effect (Shift.Large).
	std   float64
	large bool
}

// CheckData validates a CSV data set against a profile: the schema (the
// column count, the header names when both have them, numeric values),
// then per feature the tests of FeatureTest (shift on the profile's bins,
// mean, values beyond the reference range, missing values), their p-values
// adjusted together by Holm's method so that data from the reference's
// distribution fails with probability at most opts.Alpha, and the sizes
// of effect of DataOptions (PSI and binned KS are reported). A data set that
// does not fit is a failed report, not an error; the error is for a
// profile that cannot be used (ErrData) or a bad label column (ErrLabelColumn).
func CheckData(p *Profile, data []byte, opts DataOptions) (*DataReport, error) {
	if p == nil || len(p.Features) == 0 {
		return nil, fmt.Errorf("%w: empty profile", ErrData)
	}
	opts = opts.withDefaults()
	rep := &DataReport{
		Verdict: report.VerdictFail, Model: p.Model, Version: p.Version, Data: opts.Name,
		Created: opts.Now().UTC(), ProfileRows: p.Rows, Features: []FeatureCheck{},
		Thresholds: DataThresholds{
			Alpha: opts.Alpha, MaxPSI: report.FinitePtr(opts.MaxPSI), MaxMissing: report.FinitePtr(opts.MaxMissing),
			RangeTolerance: report.FinitePtr(opts.RangeTolerance), MaxOutOfRange: report.FinitePtr(opts.MaxOutOfRange),
		},
	}
	// The schema is checked on the first line, before any value is read:
	// the column count and names, then where the label is.
	label := p.Label
	t, err := ReadTable(data, true, ErrData, func(_, width int, header []string) error {
		if err := schemaMismatch(p, width, header); err != nil {
			return fmt.Errorf("%w: %v", ErrData, err)
		}
		if opts.LabelColumn == "" {
			return nil
		}
		var err error
		label, err = dataLabel(ProfileOptions{LabelColumn: opts.LabelColumn, Features: len(p.Features)}, header, width)
		return err
	})
	if errors.Is(err, ErrLabelColumn) {
		return nil, err
	}
	if err != nil {
		rep.Schema.Message = strings.TrimPrefix(err.Error(), ErrData.Error()+": ")
		return rep, nil
	}
	rep.Schema = SchemaResult{Passed: true, Message: fmt.Sprintf("%d columns, %d rows, all numeric", t.Width, t.Rows())}
	rep.Rows = t.Rows()

	cols := make([]int, 0, len(p.Features))
	for c := range t.Width {
		if c != label {
			cols = append(cols, c)
		}
	}
	tests := make([][]FeatureTest, len(p.Features))
	for i, f := range p.Features {
		fc := checkFeature(f, t, cols[i], opts)
		tests[i] = fc.Tests
		rep.Features = append(rep.Features, fc)
	}
	holm(tests, opts.Alpha)
	passed := true
	for i := range rep.Features {
		judge(&rep.Features[i], p.Features[i], opts)
		passed = passed && rep.Features[i].Passed
	}
	if passed {
		rep.Verdict = report.VerdictPass
	}
	return rep, nil
}

// schemaMismatch compares the data's columns (their count, and their names
// when both have a header) with the profile's.
func schemaMismatch(p *Profile, width int, header []string) error {
	if width != p.Columns {
		msg := fmt.Sprintf("the data has %d columns, the profile %d", width, p.Columns)
		if header != nil && p.Header != nil {
			if missing := without(p.Header, header); len(missing) > 0 {
				msg += fmt.Sprintf("; missing: %s", quoteAll(missing))
			}
			if extra := without(header, p.Header); len(extra) > 0 {
				msg += fmt.Sprintf("; not in the profile: %s", quoteAll(extra))
			}
		}
		return errors.New(msg)
	}
	if header != nil && p.Header != nil {
		for i := range header {
			if header[i] != p.Header[i] {
				return fmt.Errorf("column %d is %q, the profile's is %q (same columns in the same order, please)", i, header[i], p.Header[i])
			}
		}
	}
	return nil
}

// checkFeature measures one feature of the data against its profile and
// computes its tests' p-values; judge decides once they are adjusted.
func checkFeature(f FeatureProfile, t *Table, col int, opts DataOptions) FeatureCheck {
	fc := FeatureCheck{
		Name: f.Name, Column: col, RefMin: f.Min, RefMax: f.Max, RefMean: f.Mean,
		Counts: make([]int64, len(f.Counts)), Min: math.Inf(1), Max: math.Inf(-1),
	}
	lo, hi := widenedRange(f, opts.RangeTolerance)
	var sum, sq float64
	var below, above float64
	present := 0
	for r := range t.Rows() {
		v := t.Values[r*t.Width+col]
		if math.IsNaN(v) {
			fc.Missing++
			continue
		}
		present++
		sum += v
		fc.Min, fc.Max = min(fc.Min, v), max(fc.Max, v)
		switch {
		case v < lo:
			below++
		case v > hi:
			above++
		}
		fc.Counts[BinOf(f.Edges, v)]++
	}
	fc.OutOfRange = int(below + above)
	fc.MissingRate = float64(fc.Missing) / float64(t.Rows())
	if present > 0 {
		fc.Mean = sum / float64(present)
		fc.OutOfRangeRate = float64(fc.OutOfRange) / float64(present)
		for r := range t.Rows() {
			if v := t.Values[r*t.Width+col]; !math.IsNaN(v) {
				sq += (v - fc.Mean) * (v - fc.Mean)
			}
		}
		if present > 1 {
			fc.std = math.Sqrt(sq / float64(present-1))
		}
	} else {
		fc.Min, fc.Max = 0, 0
	}
	actual := make([]float64, len(fc.Counts))
	ref := make([]float64, len(f.Counts))
	for i, c := range fc.Counts {
		actual[i], ref[i] = float64(c), float64(f.Counts[i])
	}
	shift := ShiftOf(f, actual, float64(present), opts.MaxPSI)
	fc.PSI, fc.KS, fc.PSINoise, fc.large = shift.PSI, shift.KS, shift.PSINoise, shift.Large

	_, _, pShift := ChiSquareHomogeneity(ref, actual)
	refSD := 0.0
	if f.Count > 1 {
		refSD = f.Std * math.Sqrt(float64(f.Count)/float64(f.Count-1)) // the profile keeps the population std
	}
	fc.Tests = append([]FeatureTest{
		{Test: TestShift, P: pShift},
		{Test: TestMean, P: WelchMeanP(fc.Mean, fc.std, present, f.Mean, refSD, f.Count)},
	}, exceedTests(f.Count, present, below, above)...)
	fc.Tests = append(fc.Tests, FeatureTest{Test: TestMissing, P: FisherExactP(fc.Missing, t.Rows(), f.Missing, f.Count+f.Missing)})
	for i := range fc.Tests {
		if math.IsNaN(fc.Tests[i].P) {
			fc.Tests[i].P = 1 // nothing to test (no values)
		}
	}
	return fc
}

// judge decides a feature from its adjusted tests and the sizes of effect.
func judge(fc *FeatureCheck, f FeatureProfile, opts DataOptions) {
	fc.P = 1
	for _, t := range fc.Tests {
		fc.P = min(fc.P, t.Adjusted)
		if !t.Rejected {
			continue
		}
		switch t.Test {
		case TestShift, TestMean:
			if !fc.large {
				continue
			}
		case TestAbove, TestBelow:
			if fc.OutOfRangeRate <= opts.MaxOutOfRange {
				continue
			}
		}
		msg := describeTest(t, opts.Alpha)
		switch t.Test {
		case TestShift, TestMean:
			msg += fmt.Sprintf(" (PSI %s, mean %s, reference %s)", report.FormatValue(fc.PSI), report.FormatValue(fc.Mean), report.FormatValue(f.Mean))
		case TestAbove, TestBelow:
			msg += fmt.Sprintf(" (%d values outside [%s, %s])", fc.OutOfRange, report.FormatValue(f.Min), report.FormatValue(f.Max))
		case TestMissing:
			msg += fmt.Sprintf(" (%s missing, reference %s)", report.FormatValue(fc.MissingRate), report.FormatValue(f.MissingRate))
		}
		fc.Problems = append(fc.Problems, msg)
	}
	if fc.MissingRate > opts.MaxMissing {
		fc.Problems = append(fc.Problems, fmt.Sprintf("missing rate %s > %s", report.FormatValue(fc.MissingRate), report.FormatValue(opts.MaxMissing)))
	}
	if sumCounts(fc.Counts) == 0 && f.Count > 0 {
		fc.Problems = append(fc.Problems, "no values at all")
	}
	fc.Passed = len(fc.Problems) == 0
}

func sumCounts(c []int64) int64 {
	var n int64
	for _, x := range c {
		n += x
	}
	return n
}

// widenedRange is the reference range widened by tol of its width on each
// side (of the value's magnitude for a constant feature).
func widenedRange(f FeatureProfile, tol float64) (lo, hi float64) {
	if f.Count == 0 {
		return math.Inf(-1), math.Inf(1)
	}
	w := f.Max - f.Min
	if w == 0 {
		w = math.Abs(f.Max)
	}
	if math.IsInf(tol, 1) {
		return math.Inf(-1), math.Inf(1)
	}
	return f.Min - tol*w, f.Max + tol*w
}

// Passed reports whether the data passed: schema and every feature.
func (r *DataReport) Passed() bool {
	if r == nil || r.Verdict != report.VerdictPass || !r.Schema.Passed {
		return false
	}
	for _, f := range r.Features {
		if !f.Passed {
			return false
		}
	}
	return true
}

// Failed returns the features that failed, strongest evidence (smallest
// adjusted p-value) first.
func (r *DataReport) Failed() []FeatureCheck {
	var out []FeatureCheck
	for _, f := range r.Features {
		if !f.Passed {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b FeatureCheck) int { return cmpDesc(-a.P, -b.P) })
	return out
}

// DataExitCode is the exit status of a command that checked data: 0 passed,
// 1 failed, 2 error (err is not nil, or there is no report).
func DataExitCode(r *DataReport, err error) int {
	return report.ExitStatus(err == nil && r != nil, r != nil && r.Passed())
}

// JSON is the report as indented JSON ending with a newline; figures that
// are not finite numbers (PSI of an empty feature) are null.
func (r *DataReport) JSON() ([]byte, error) {
	type featureJSON struct {
		FeatureCheck
		PSI any `json:"psi"`
		KS  any `json:"ks"`
	}
	type reportJSON struct {
		*DataReport
		Features []featureJSON `json:"features"`
	}
	out := reportJSON{DataReport: r, Features: []featureJSON{}}
	for _, f := range r.Features {
		out.Features = append(out.Features, featureJSON{FeatureCheck: f, PSI: report.FiniteOrNil(f.PSI), KS: report.FiniteOrNil(f.KS)})
	}
	b, err := report.MarshalIndentPlain(out)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Markdown renders the report for a pull-request comment: the verdict, the
// schema, a table of every feature (failed ones first) and the problems.
func (r *DataReport) Markdown() string {
	var b strings.Builder
	icon, verdict := "❌", "failed"
	if r.Passed() {
		icon, verdict = "✅", "passed"
	}
	fmt.Fprintf(&b, "## %s %s: data check %s\n\n", icon, r.Data, verdict)
	fmt.Fprintf(&b, "%s\n\n", r.context(" · "))
	schema := "✅ " + r.Schema.Message
	if !r.Schema.Passed {
		schema = "❌ " + r.Schema.Message
	}
	fmt.Fprintf(&b, "**schema**: %s\n", report.MDText(schema))
	if len(r.Features) > 0 {
		b.WriteString("\n| feature | result | p (adjusted) | PSI | KS | missing | out of range | mean | reference mean |\n")
		b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, f := range r.ordered() {
			result := "✅ pass"
			if !f.Passed {
				result = "❌ fail"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %d | %s | %s |\n", report.MDCell(f.Name), result, report.FormatValue(f.P), report.FormatValue(f.PSI), report.FormatValue(f.KS),
				report.FormatValue(f.MissingRate), f.OutOfRange, report.FormatValue(f.Mean), report.FormatValue(f.RefMean))
		}
	}
	if failed := r.Failed(); len(failed) > 0 {
		b.WriteString("\n### Failures\n\n")
		for _, f := range failed {
			fmt.Fprintf(&b, "- **%s**: %s\n", report.MDText(f.Name), report.MDText(strings.Join(f.Problems, "; ")))
		}
	}
	return b.String()
}

// Text renders the report for a terminal.
func (r *DataReport) Text() string {
	var b strings.Builder
	verdict := "FAIL"
	if r.Passed() {
		verdict = "PASS"
	}
	fmt.Fprintf(&b, "%s %s (%s)\n", verdict, r.Data, r.context(", "))
	state := "ok"
	if !r.Schema.Passed {
		state = "FAIL"
	}
	fmt.Fprintf(&b, "schema: %s: %s\n", state, r.Schema.Message)
	if len(r.Features) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "FEATURE\tRESULT\tP_ADJ\tPSI\tKS\tMISSING\tOUT_OF_RANGE\tMEAN\tREF_MEAN")
		for _, f := range r.ordered() {
			result := "pass"
			if !f.Passed {
				result = "FAIL"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", f.Name, result, report.FormatValue(f.P), report.FormatValue(f.PSI), report.FormatValue(f.KS),
				report.FormatValue(f.MissingRate), f.OutOfRange, report.FormatValue(f.Mean), report.FormatValue(f.RefMean))
		}
		tw.Flush()
	}
	if failed := r.Failed(); len(failed) > 0 {
		b.WriteString("\n")
		for _, f := range failed {
			fmt.Fprintf(&b, "%s: %s\n", f.Name, strings.Join(f.Problems, "; "))
		}
	}
	return b.String()
}

// ordered lists the features failed first (worst PSI first), then the
// others in column order.
func (r *DataReport) ordered() []FeatureCheck {
	out := r.Failed()
	for _, f := range r.Features {
		if f.Passed {
			out = append(out, f)
		}
	}
	return out
}

func (r *DataReport) context(sep string) string {
	parts := []string{fmt.Sprintf("against the profile of %s version %s (%d rows)", r.Model, r.Version, r.ProfileRows)}
	if r.Schema.Passed {
		parts = append(parts, fmt.Sprintf("%d rows", r.Rows))
	}
	th := []string{fmt.Sprintf("alpha %s over %d features", report.FormatValue(r.Thresholds.Alpha), len(r.Features))}
	for _, t := range []struct {
		name string
		v    *float64
	}{{"max PSI", r.Thresholds.MaxPSI}, {"max missing", r.Thresholds.MaxMissing}, {"max out of range", r.Thresholds.MaxOutOfRange}} {
		if t.v != nil {
			th = append(th, fmt.Sprintf("%s %s", t.name, report.FormatValue(*t.v)))
		}
	}
	if len(th) > 0 {
		parts = append(parts, strings.Join(th, ", "))
	}
	parts = append(parts, r.Created.UTC().Format(time.RFC3339))
	return strings.Join(parts, sep)
}

// cmpDesc orders larger numbers first, NaN last.
func cmpDesc(a, b float64) int {
	switch {
	case math.IsNaN(a) && math.IsNaN(b):
		return 0
	case math.IsNaN(a):
		return 1
	case math.IsNaN(b):
		return -1
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func without(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}
