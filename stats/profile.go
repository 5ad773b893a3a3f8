package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/modelgate/modelgate/wire"
)

// A Profile describes a reference data set, normally the data a version was
// trained on: per feature the count, missing values, range, moments,
// quantiles and a fixed binning chosen from the reference (its deciles).
// New data sets (CheckData) and live traffic (package drift) are compared
// with it bin by bin. It is stored with the version in the registry as
// profile.json.
//
// Only the features are profiled: the columns the model takes, in the
// model's order. A label column, when the data has one, is recognised by
// ProfileOptions and left out.
type Profile struct {
	// Format is ProfileFormat; readers refuse other formats.
	Format  int       `json:"format"`
	Model   string    `json:"model,omitempty"`
	Version string    `json:"version,omitempty"`
	Created time.Time `json:"created"`
	// Rows is the number of data rows profiled.
	Rows int `json:"rows"`
	// Columns is the data's column count, the label included; Header its
	// column names when the file had a header line.
	Columns int      `json:"columns"`
	Header  []string `json:"header,omitempty"`
	// Label is the label's column index, -1 when the data had none.
	Label int `json:"label"`
	// Features are the profiled columns, in the model's input order.
	Features []FeatureProfile `json:"features"`
}

// FeatureProfile is one feature of a Profile.
//
// Bins: Edges are the inner bin edges, ascending and distinct; bin i holds
// the values x with Edges[i-1] < x <= Edges[i], the first bin everything
// up to Edges[0] and the last everything above the last edge, so that every
// value falls in a bin. Counts holds the reference's values per bin.
type FeatureProfile struct {
	Name string `json:"name"`
	// Column is the feature's column in the reference CSV.
	Column int `json:"column"`
	// Count is the number of values present; Missing the number missing
	// (empty, NA, NaN, null), and MissingRate Missing / Rows.
	Count       int     `json:"count"`
	Missing     int     `json:"missing"`
	MissingRate float64 `json:"missing_rate"`
	// Min, Max, Mean and Std (population) of the values present; zero when
	// none is.
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
	// Quantiles at ProfileQuantiles (linear interpolation between order
	// statistics).
	Quantiles []Quantile `json:"quantiles"`
	Edges     []float64  `json:"edges"`
	Counts    []int64    `json:"counts"`
}

// Quantile is a value of a feature's distribution: the value below which a
// share Q of the values lie.
type Quantile struct {
	Q     float64 `json:"q"`
	Value float64 `json:"value"`
}

// ProfileFormat is the version of the profile.json format.
const ProfileFormat = 1

// DefaultBins is the number of bins ComputeProfile aims at: deciles. Ties
// (a value that many rows share) merge bins, so a feature may have fewer.
const DefaultBins = 10

// ProfileQuantiles are the quantiles a profile records.
var ProfileQuantiles = []float64{0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99}

// NoLabel as ProfileOptions.LabelColumn says that the data has no label
// column: every column is a feature.
const NoLabel = "none"

// ProfileOptions configure ComputeProfile and CheckData.
type ProfileOptions struct {
	// LabelColumn names the label column: a header name or a 0-based
	// index, or NoLabel. Empty: decided by Features, else the last column.
	LabelColumn string
	// Features is the number of features the model takes (the width of
	// its single [-1, k] input; see FeatureWidth), 0 when unknown. With no
	// LabelColumn, data with exactly Features columns has no label and data
	// with Features+1 columns has the label last; other widths are refused.
	// With a LabelColumn the other columns must number Features.
	Features int
	// Bins is the number of quantile bins; 0 is DefaultBins.
	Bins int
	// Model and Version are recorded in the profile.
	Model, Version string
	// Now is the clock for Created; nil is time.Now.
	Now func() time.Time
}

// ErrData means a data set cannot be read as the numeric CSV a profile is
// made from: malformed CSV, ragged rows, a value that is not a number, no
// rows, or columns that do not fit the model.
var ErrData = errors.New("unusable data")

// FeatureWidth is the number of features a model takes per row, from its
// inputs (a manifest's): k when its single input has shape [-1, k], else 0
// (unknown).
func FeatureWidth(inputs []wire.TensorSpec) int {
	if len(inputs) != 1 {
		return 0
	}
	s := inputs[0].Shape
	if len(s) != 2 || s[1] <= 0 {
		return 0
	}
	return int(s[1])
}

// ComputeProfile profiles a CSV data set (see readTable: numbers, an
// optional header line, missing values allowed). Errors wrap ErrData or,
// for a label column that does not exist, ErrLabelColumn.
func ComputeProfile(data []byte, opts ProfileOptions) (*Profile, error) {
	t, label, err := readData(data, opts)
	if err != nil {
		return nil, err
	}
	bins := opts.Bins
	if bins <= 0 {
		bins = DefaultBins
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	p := &Profile{
		Format: ProfileFormat, Model: opts.Model, Version: opts.Version, Created: now().UTC(),
		Rows: t.Rows(), Columns: t.Width, Header: t.Header, Label: label,
	}
	values := make([]float64, 0, t.Rows())
	for col := range t.Width {
		if col == label {
			continue
		}
		values = values[:0]
		missing := 0
		for r := range t.Rows() {
			v := t.Values[r*t.Width+col]
			if math.IsNaN(v) {
				missing++
				continue
			}
			values = append(values, v)
		}
		f := FeatureProfile{
			Name: featureName(t.Header, col, len(p.Features)), Column: col,
			Count: len(values), Missing: missing, MissingRate: float64(missing) / float64(t.Rows()),
		}
		slices.Sort(values)
		if len(values) > 0 {
			f.Min, f.Max = values[0], values[len(values)-1]
			f.Mean, f.Std = moments(values)
			for _, q := range ProfileQuantiles {
				f.Quantiles = append(f.Quantiles, Quantile{Q: q, Value: quantile(values, q)})
			}
		}
		f.Edges = binEdges(values, bins)
		f.Counts = make([]int64, len(f.Edges)+1)
		for _, v := range values {
			f.Counts[BinOf(f.Edges, v)]++
		}
		p.Features = append(p.Features, f)
	}
	return p, nil
}

// readData reads a data set and finds its label column (-1 for none).
func readData(data []byte, opts ProfileOptions) (*Table, int, error) {
	label := -1
	t, err := ReadTable(data, true, ErrData, func(_, width int, header []string) error {
		var err error
		label, err = dataLabel(opts, header, width)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return t, label, nil
}

// dataLabel resolves the label column of data with width columns.
func dataLabel(opts ProfileOptions, header []string, width int) (int, error) {
	k := opts.Features
	switch {
	case strings.EqualFold(opts.LabelColumn, NoLabel):
		if k > 0 && width != k {
			return 0, fmt.Errorf("%w: the data has %d columns and no label column, but the model takes %d features", ErrData, width, k)
		}
		return -1, nil
	case opts.LabelColumn != "":
		label, err := LabelIndex(opts.LabelColumn, header, width, "data")
		if err != nil {
			return 0, err
		}
		if k > 0 && width-1 != k {
			return 0, fmt.Errorf("%w: the data has %d columns besides the label, but the model takes %d features", ErrData, width-1, k)
		}
		return label, nil
	case k == 0 || width == k+1:
		if width < 2 && k == 0 {
			return -1, nil
		}
		return width - 1, nil
	case width == k:
		return -1, nil
	}
	return 0, fmt.Errorf("%w: the data has %d columns, but the model takes %d features (and the label may add one): a column is missing or extra", ErrData, width, k)
}

// featureName is a feature's name: its header name, else x<i> for the i-th
// feature.
func featureName(header []string, col, i int) string {
	if header != nil && header[col] != "" {
		return header[col]
	}
	return fmt.Sprintf("x%d", i)
}

// moments returns the mean and population standard deviation.
func moments(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)))
}

// quantile of sorted values, interpolating linearly between the order
// statistics (the "type 7" estimator of R and NumPy).
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	h := q * float64(len(sorted)-1)
	lo := int(math.Floor(h))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[lo] + (h-float64(lo))*(sorted[lo+1]-sorted[lo])
}

// binEdges returns the inner edges of n quantile bins of sorted values:
// the quantiles 1/n ... (n-1)/n, with repeats (ties) removed. A constant
// feature gets its value as the one edge, so that anything larger falls in
// a bin of its own; no values give no edges (one bin).
func binEdges(sorted []float64, n int) []float64 {
	if len(sorted) == 0 {
		return []float64{}
	}
	edges := make([]float64, 0, n-1)
	for i := 1; i < n; i++ {
		e := quantile(sorted, float64(i)/float64(n))
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	if len(edges) == 0 {
		edges = append(edges, sorted[0])
	}
	return edges
}

// BinOf is the bin of x for a feature with these inner edges (see
// FeatureProfile): the number of edges below x. A linear scan: profiles have
// about ten bins, and it runs on the gateway's request path.
func BinOf(edges []float64, x float64) int {
	for i, e := range edges {
		if x <= e {
			return i
		}
	}
	return len(edges)
}

// PSI is the population stability index of an actual distribution against
// an expected one, both given as counts on the same bins:
// Σ (a_i − e_i) · ln(a_i / e_i) over the bins' shares. Each count is
// smoothed by adding one half before the shares are taken, so that an
// empty bin gives a large but finite term. 0 means the same distribution;
// by convention below 0.1 is stable, 0.1 to 0.25 a moderate shift and above
// 0.25 a major one. NaN when either side is empty or the bins differ.
func PSI(expected []int64, actual []float64) float64 {
	ne, na, ok := binTotals(expected, actual)
	if !ok {
		return math.NaN()
	}
	k := float64(len(expected))
	var psi float64
	for i := range expected {
		e := (float64(expected[i]) + 0.5) / (ne + 0.5*k)
		a := (actual[i] + 0.5) / (na + 0.5*k)
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}

// PSINoise is the PSI that sampling noise alone gives, on average, when
// n rows and nRef reference rows come from one distribution on bins bins:
// about (bins−1)·(1/n + 1/nRef) (PSI is a symmetrised Kullback–Leibler
// divergence, and n times it is close to a χ² variable with bins−1 degrees
// of freedom). With 113 rows against 456 on ten bins that is 0.1, as much
// as a moderate shift; thresholds are applied to PSI − PSINoise so that a
// small data set is not failed for its size.
func PSINoise(bins int, n, nRef float64) float64 {
	if bins < 2 || n <= 0 || nRef <= 0 {
		return 0
	}
	return float64(bins-1) * (1/n + 1/nRef)
}

// BinnedKS is the Kolmogorov–Smirnov statistic measured on the bins: the
// largest difference between the two cumulative shares at a bin edge. It
// is a lower bound of the exact statistic, which needs the raw reference
// values. NaN when either side is empty or the bins differ.
func BinnedKS(expected []int64, actual []float64) float64 {
	ne, na, ok := binTotals(expected, actual)
	if !ok {
		return math.NaN()
	}
	var ce, ca, ks float64
	for i := range expected {
		ce += float64(expected[i]) / ne
		ca += actual[i] / na
		ks = max(ks, math.Abs(ce-ca))
	}
	return ks
}

// JSON is the profile as indented JSON, ending with a newline.
func (p *Profile) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseProfile reads a profile.json and checks that it is one this code
// can use: the format, and bins that agree with their counts. Errors wrap
// ErrData.
func ParseProfile(b []byte) (*Profile, error) {
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: profile: %v", ErrData, err)
	}
	if p.Format != ProfileFormat {
		return nil, fmt.Errorf("%w: profile format %d, this version reads %d", ErrData, p.Format, ProfileFormat)
	}
	if len(p.Features) == 0 {
		return nil, fmt.Errorf("%w: profile has no features", ErrData)
	}
	for i, f := range p.Features {
		if len(f.Counts) != len(f.Edges)+1 {
			return nil, fmt.Errorf("%w: profile feature %d (%q): %d counts for %d edges", ErrData, i, f.Name, len(f.Counts), len(f.Edges))
		}
		if !slices.IsSorted(f.Edges) {
			return nil, fmt.Errorf("%w: profile feature %d (%q): edges are not ascending", ErrData, i, f.Name)
		}
	}
	return &p, nil
}

// binTotals sums both sides' bin counts; ok is false when the bins differ
// or either side is empty.
func binTotals(expected []int64, actual []float64) (ne, na float64, ok bool) {
	if len(expected) != len(actual) || len(expected) == 0 {
		return 0, 0, false
	}
	for i := range expected {
		ne += float64(expected[i])
		na += actual[i]
	}
	return ne, na, ne > 0 && na > 0
}
