package main

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modelgate/modelgate/stats"
)

// The data part: how often modelgate's two verdicts on data, promote
// check-data (stats.CheckData) and the live-drift verdict of promote drift
// (stats.CompareWindow on a gateway's counts), raise an alarm on data drawn
// from the reference's own distribution (false alarms), and how often they
// raise one when a feature moved (detections).
//
// Each run splits a data set at random into a reference and a check sample,
// profiles the reference as promote push --train-data does, and judges the
// sample as it is (clean) and with one randomly chosen feature perturbed.

// A scenario is one data set and the size of its check sample.
type scenario struct {
	// Name is the data set's name in the table.
	Name string
	// Path is the CSV file, relative to the repository root.
	Path string
	// SampleRows is the check sample's size; 0 is a quarter of the rows.
	SampleRows int
	// DetectionTarget: the detection target (minDetection) is stated for
	// this scenario.
	DetectionTarget bool
}

// scenarios are the data part's rows, in table order.
var scenarios = []scenario{
	{Name: "breast cancer", Path: "examples/breast-cancer/data.csv"},
	{Name: "breast cancer, 140-row sample", Path: "examples/breast-cancer/data.csv", SampleRows: 140, DetectionTarget: true},
	{Name: "digits", Path: "examples/datasets/digits/data.csv"},
	{Name: "wine", Path: "examples/datasets/wine/data.csv"},
	{Name: "iris", Path: "examples/datasets/iris/data.csv"},
}

// referenceShare is the share of the rows that a split makes the
// reference when the scenario does not fix the sample's size.
const referenceShare = 0.75

// A perturbation changes one feature of a copy of the check sample.
type perturbation struct {
	// Name heads the perturbation's column.
	Name string
	// Shift adds Shift reference standard deviations to every value.
	Shift float64
	// Scale, when not 0, multiplies every value's deviation from the
	// reference mean by Scale (after any shift).
	Scale float64
}

// perturbations are the shifted copies of each run's sample, in column
// order.
var perturbations = []perturbation{
	{Name: "+0.25 sd", Shift: 0.25},
	{Name: "+0.5 sd", Shift: 0.5},
	{Name: "+1 sd", Shift: 1},
	{Name: "2x scale", Scale: 2},
}

// table is a data set read into memory: column names, and rows of numbers
// with the label last.
type table struct {
	Names []string
	Rows  [][]float64
}

// label is the name of the label column, the last.
func (t *table) label() string { return t.Names[len(t.Names)-1] }

// loadTable reads a data set (a file ending in .gz is gunzipped): numeric
// CSV with the label as the last column, after either a header line of
// column names, scikit-learn's count line ("569,30,malignant,benign": rows,
// features, class names), or no first line at all. Without names the
// columns are called x0, x1, ... and label.
func loadTable(path string) (*table, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	t, err := parseTable(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// parseTable is loadTable's parser.
func parseTable(raw []byte) (*table, error) {
	r := csv.NewReader(bytes.NewReader(raw))
	r.FieldsPerRecord = -1 // scikit-learn's count line is shorter than the rows
	r.TrimLeadingSpace = true
	recs, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) < 2 {
		return nil, errors.New("fewer than two lines")
	}
	first, body := recs[0], recs[1:]
	width := len(body[0])
	if width < 2 {
		return nil, errors.New("want at least one feature and the label")
	}
	t := &table{}
	switch {
	case len(first) == width && allNumbers(first):
		body = recs // no first line: the first record is a row
	case len(first) == width:
		t.Names = append([]string(nil), first...)
	default:
		// scikit-learn's count line: check what it announces.
		var n, k int
		var err1, err2 error
		if len(first) >= 2 {
			n, err1 = strconv.Atoi(first[0])
			k, err2 = strconv.Atoi(first[1])
		}
		if len(first) < 2 || err1 != nil || err2 != nil || n != len(body) || k != width-1 {
			return nil, fmt.Errorf("first line %q: want column names, or the row count (%d), the feature count (%d) and the class names", strings.Join(first, ","), len(body), width-1)
		}
	}
	if t.Names == nil {
		for i := range width - 1 {
			t.Names = append(t.Names, fmt.Sprintf("x%d", i))
		}
		t.Names = append(t.Names, "label")
	}
	for i, rec := range body {
		if len(rec) != width {
			return nil, fmt.Errorf("row %d has %d fields, want %d", i+1, len(rec), width)
		}
		row, ok := numbers(rec)
		if !ok {
			return nil, fmt.Errorf("row %d: a field is not a finite number", i+1)
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// numbers parses every field as a finite number.
func numbers(rec []string) ([]float64, bool) {
	out := make([]float64, len(rec))
	for i, f := range rec {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

func allNumbers(rec []string) bool {
	_, ok := numbers(rec)
	return ok
}

// csvOf renders rows as the CSV a profile is made from or checked against:
// the header line, then the rows, numbers in their shortest exact form.
func csvOf(names []string, rows [][]float64) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(names) // a bytes.Buffer does not fail
	w.Flush()
	for _, row := range rows {
		for i, v := range row {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(strconv.AppendFloat(b.AvailableBuffer(), v, 'g', -1, 64))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// evalClock is the profiles' and reports' creation time: nothing measured
// depends on it.
func evalClock() time.Time { return time.Unix(0, 0) }

// profileOf profiles the reference rows with the label column left out,
// named explicitly.
func profileOf(t *table, rows [][]float64) (*stats.Profile, error) {
	return stats.ComputeProfile(csvOf(t.Names, rows), stats.ProfileOptions{LabelColumn: t.label(), Now: evalClock})
}

// checkData is promote check-data's verdict on the sample csv with the
// default thresholds: failed when the data set does not pass.
func checkData(p *stats.Profile, csv []byte) (failed bool, err error) {
	rep, err := stats.CheckData(p, csv, stats.DefaultDataOptions())
	if err != nil {
		return false, err
	}
	if !rep.Schema.Passed { // the sample has the reference's columns: a bug here
		return false, fmt.Errorf("check-data refused the sample's schema: %s", rep.Schema.Message)
	}
	return !rep.Passed(), nil
}

// checkDrift is promote drift's verdict on a live window holding rows, with
// the default maximum PSI and minSamples: drifted, or judged false when the
// window holds too few rows for a verdict.
func checkDrift(p *stats.Profile, rows [][]float64, minSamples int) (drifted, judged bool) {
	v := stats.CompareWindow(p, liveWindow(p, rows), stats.DriftOptions{Alpha: stats.DefaultAlpha, MaxPSI: stats.DefaultMaxPSI, MinSamples: minSamples})
	return v.Drift, v.Reason == ""
}

// liveWindow counts rows the way a gateway's drift tracker does (package
// drift): per feature the values in each of the profile's bins, and those
// below the reference minimum or above its maximum.
func liveWindow(p *stats.Profile, rows [][]float64) *stats.Window {
	w := stats.NewWindow(p)
	for _, row := range rows {
		for j, f := range p.Features {
			x := row[f.Column]
			w.Counts[j][stats.BinOf(f.Edges, x)]++
			if x < f.Min {
				w.Below[j]++
			} else if x > f.Max {
				w.Above[j]++
			}
		}
	}
	w.Rows = float64(len(rows))
	return w
}

// verdicts are one sample's two alarms: check-data failed, drift found.
// Judged is false when the drift verdict was withheld (too few rows).
type verdicts struct {
	Check, Drift, Judged bool
}

// outcome is one run: the verdicts on the clean sample and on each
// perturbation (in perturbations' order).
type outcome struct {
	Clean     verdicts
	Perturbed []verdicts
}

// runOnce is run number run of a scenario: a random split of t (the PCG
// seeded with seed and run), a profile of the reference, and the verdicts
// on the sample and its perturbed copies.
func runOnce(t *table, sampleRows int, seed uint64, run int, minSamples int) (outcome, error) {
	rng := rand.New(rand.NewPCG(seed, uint64(run)))
	perm := rng.Perm(len(t.Rows))
	nRef := len(t.Rows) - sampleRows
	ref := make([][]float64, nRef)
	for i, r := range perm[:nRef] {
		ref[i] = t.Rows[r]
	}
	sample := make([][]float64, 0, sampleRows)
	for _, r := range perm[nRef:] {
		sample = append(sample, t.Rows[r])
	}
	p, err := profileOf(t, ref)
	if err != nil {
		return outcome{}, fmt.Errorf("run %d: profile: %w", run, err)
	}
	judge := func(rows [][]float64) (verdicts, error) {
		failed, err := checkData(p, csvOf(t.Names, rows))
		if err != nil {
			return verdicts{}, fmt.Errorf("run %d: %w", run, err)
		}
		drifted, judged := checkDrift(p, rows, minSamples)
		return verdicts{Check: failed, Drift: drifted, Judged: judged}, nil
	}
	var out outcome
	if out.Clean, err = judge(sample); err != nil {
		return outcome{}, err
	}
	// The perturbed feature: any with a spread in the reference.
	var movable []int
	for j, f := range p.Features {
		if f.Std > 0 {
			movable = append(movable, j)
		}
	}
	if len(movable) == 0 {
		return outcome{}, fmt.Errorf("run %d: every feature is constant in the reference", run)
	}
	f := p.Features[movable[rng.IntN(len(movable))]]
	for _, pt := range perturbations {
		v, err := judge(perturb(sample, f, pt))
		if err != nil {
			return outcome{}, err
		}
		out.Perturbed = append(out.Perturbed, v)
	}
	return out, nil
}

// perturb returns a copy of rows with feature f's column changed by pt, in
// units of f's reference standard deviation and around its reference mean.
func perturb(rows [][]float64, f stats.FeatureProfile, pt perturbation) [][]float64 {
	out := make([][]float64, len(rows))
	for i, row := range rows {
		c := append([]float64(nil), row...)
		x := c[f.Column] + pt.Shift*f.Std
		if pt.Scale != 0 {
			x = f.Mean + pt.Scale*(x-f.Mean)
		}
		c[f.Column] = x
		out[i] = c
	}
	return out
}

// tally counts alarms among the runs that gave a verdict.
type tally struct{ Alarms, Runs int }

func (c *tally) add(alarm bool) {
	c.Runs++
	if alarm {
		c.Alarms++
	}
}

// rate is the share of runs with an alarm; NaN without runs.
func (c tally) rate() float64 {
	if c.Runs == 0 {
		return math.NaN()
	}
	return float64(c.Alarms) / float64(c.Runs)
}

// result is a scenario's measurement over every run.
type result struct {
	Scenario            scenario
	RefRows, SampleRows int
	// Runs is the number of runs; MinSamples the drift verdict's.
	Runs, MinSamples int
	// CheckFalse and DriftFalse count the alarms on the clean samples;
	// CheckDetect and DriftDetect those on each perturbation. Drift tallies
	// count only the runs whose window had enough rows for a verdict.
	CheckFalse, DriftFalse   tally
	CheckDetect, DriftDetect []tally
}

// evaluate measures a scenario on t over runs runs, workers at a time
// (runtime.NumCPU() when 0). The result depends on seed alone, not on the
// number of workers.
func evaluate(sc scenario, t *table, runs int, seed uint64, workers, minSamples int) (*result, error) {
	n := len(t.Rows)
	sampleRows := sc.SampleRows
	if sampleRows == 0 {
		sampleRows = n - int(math.Round(referenceShare*float64(n)))
	}
	if sampleRows < 1 || sampleRows >= n-1 {
		return nil, fmt.Errorf("%s: a %d-row sample of %d rows leaves no reference", sc.Name, sampleRows, n)
	}
	outcomes := make([]outcome, runs)
	errs := make([]error, runs)
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, runs) {
		wg.Go(func() {
			for run := range next {
				outcomes[run], errs[run] = runOnce(t, sampleRows, seed, run, minSamples)
			}
		})
	}
	for run := range runs {
		next <- run
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%s: %w", sc.Name, err)
	}
	res := &result{
		Scenario: sc, RefRows: n - sampleRows, SampleRows: sampleRows, Runs: runs, MinSamples: minSamples,
		CheckDetect: make([]tally, len(perturbations)), DriftDetect: make([]tally, len(perturbations)),
	}
	for _, o := range outcomes {
		res.CheckFalse.add(o.Clean.Check)
		if o.Clean.Judged {
			res.DriftFalse.add(o.Clean.Drift)
		}
		for i, v := range o.Perturbed {
			res.CheckDetect[i].add(v.Check)
			if v.Judged {
				res.DriftDetect[i].add(v.Drift)
			}
		}
	}
	return res, nil
}

// evalData measures every scenario, reading the data sets below root.
func evalData(root string, scs []scenario, runs int, seed uint64, minSamples int) ([]*result, error) {
	tables := map[string]*table{}
	var out []*result
	for _, sc := range scs {
		t := tables[sc.Path]
		if t == nil {
			var err error
			if t, err = loadTable(filepath.Join(root, sc.Path)); err != nil {
				return nil, err
			}
			tables[sc.Path] = t
		}
		res, err := evaluate(sc, t, runs, seed, 0, minSamples)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

// wilson is the 95% Wilson score interval of a share of k in n.
func wilson(k, n int) (lo, hi float64) {
	if n == 0 {
		return math.NaN(), math.NaN()
	}
	const z = 1.959963984540054
	p, nf := float64(k)/float64(n), float64(n)
	den := 1 + z*z/nf
	mid := (p + z*z/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	return max(0, mid-half), min(1, mid+half)
}

// pct formats a share as a percentage.
func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }

// withInterval is a tally's rate with its 95% Wilson interval.
func withInterval(c tally) string {
	lo, hi := wilson(c.Alarms, c.Runs)
	return fmt.Sprintf("%s [%s, %s]", pct(c.rate()), pct(lo), pct(hi))
}

// describe names the scenario with its split for the targets.
func (r *result) describe() string {
	return fmt.Sprintf("%s (%d / %d rows)", r.Scenario.Name, r.RefRows, r.SampleRows)
}

// noVerdict is the cell of a drift figure whose windows were all too
// small for a verdict.
func (r *result) noVerdict() string {
	return fmt.Sprintf("no verdict (%d rows < %d)", r.SampleRows, r.MinSamples)
}

// driftCell is a drift tally's cell: its rate, no verdict, or the rate
// with the share of runs judged when some were not.
func (r *result) driftCell(c tally, format func(tally) string) string {
	switch {
	case c.Runs == 0:
		return r.noVerdict()
	case c.Runs < r.Runs:
		return fmt.Sprintf("%s (%d of %d runs judged)", format(c), c.Runs, r.Runs)
	}
	return format(c)
}

// dataTable renders the results as one Markdown table, a row per scenario
// and verdict.
func dataTable(results []*result) string {
	var b strings.Builder
	b.WriteString("| data set | rows (reference / sample) | verdict | false alarms (95% CI) |")
	for _, pt := range perturbations {
		fmt.Fprintf(&b, " detected: %s |", pt.Name)
	}
	b.WriteString("\n| --- | --- | --- | --- |")
	b.WriteString(strings.Repeat(" --- |", len(perturbations)))
	b.WriteString("\n")
	rate := func(c tally) string { return pct(c.rate()) }
	for _, r := range results {
		rows := fmt.Sprintf("%d / %d", r.RefRows, r.SampleRows)
		fmt.Fprintf(&b, "| %s | %s | check-data | %s |", r.Scenario.Name, rows, withInterval(r.CheckFalse))
		for _, c := range r.CheckDetect {
			fmt.Fprintf(&b, " %s |", rate(c))
		}
		fmt.Fprintf(&b, "\n| %s | %s | drift | %s |", r.Scenario.Name, rows, r.driftCell(r.DriftFalse, withInterval))
		for _, c := range r.DriftDetect {
			cell := r.driftCell(c, rate)
			if c.Runs == 0 {
				cell = "no verdict" // the false-alarm cell says why
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Targets of the data part.
const (
	// maxFalseAlarms is the largest false-alarm rate of a whole data set's
	// verdict: the default alpha, 0.05.
	maxFalseAlarms = 0.05
	// minDetection is the smallest detection rate of a +0.5 sd shift in a
	// 140-row breast-cancer sample.
	minDetection = 0.8
	// targetShift is the perturbation the detection target is stated for.
	targetShift = "+0.5 sd"
)

// dataTargets states, per scenario and verdict, whether the false alarms
// stay within maxFalseAlarms (a verdict withheld measures nothing, so it
// does not meet the target), and for
// the 140-row breast-cancer sample whether +0.5 sd is detected at least
// minDetection of the time (a verdict withheld detects nothing).
func dataTargets(results []*result) []row {
	var rows []row
	target := fmt.Sprintf("≤ %s", pct(maxFalseAlarms))
	for _, r := range results {
		rows = append(rows, row{
			Scenario: "check-data false alarms, " + r.describe(),
			Target:   target, Measured: withInterval(r.CheckFalse), Meets: r.CheckFalse.rate() <= maxFalseAlarms,
		})
		drift := row{Scenario: "drift false alarms, " + r.describe(), Target: target}
		if r.DriftFalse.Runs == 0 {
			drift.Measured = r.noVerdict() + ": nothing measured" // not met: a withheld verdict is no evidence
		} else {
			drift.Measured, drift.Meets = r.driftCell(r.DriftFalse, withInterval), r.DriftFalse.rate() <= maxFalseAlarms
		}
		rows = append(rows, drift)
	}
	i := slices.IndexFunc(perturbations, func(pt perturbation) bool { return pt.Name == targetShift })
	for _, r := range results {
		if !r.Scenario.DetectionTarget {
			continue
		}
		target := fmt.Sprintf("≥ %s", pct(minDetection))
		name := fmt.Sprintf("%s detected, %s", targetShift, r.describe())
		rows = append(rows, row{
			Scenario: "check-data: " + name, Target: target,
			Measured: withInterval(r.CheckDetect[i]), Meets: r.CheckDetect[i].rate() >= minDetection,
		})
		drift := row{Scenario: "drift: " + name, Target: target}
		if c := r.DriftDetect[i]; c.Runs == 0 {
			drift.Measured = r.noVerdict()
		} else {
			drift.Measured, drift.Meets = r.driftCell(c, withInterval), c.rate() >= minDetection
		}
		rows = append(rows, drift)
	}
	return rows
}
