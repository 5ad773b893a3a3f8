package stats

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Shift is how far one feature's values moved from its reference profile,
// on the profile's bins.
type Shift struct {
	// PSI is the population stability index; PSINoise the part of it that
	// sampling noise alone explains on average; KS the binned
	// Kolmogorov-Smirnov distance.
	PSI, PSINoise, KS float64
	// Large: PSI − PSINoise is above the least size of effect (any, when
	// that is 0): a shift the tests find is then worth failing on.
	Large bool
}

// ShiftOf compares counts, per bin of f, of n values with f's reference
// counts, with minPSI the least size of effect. It is the one size-of-effect
// rule: promote check-data and promote drift (a gateway's live window)
// both apply it to the features their tests find shifted.
func ShiftOf(f FeatureProfile, counts []float64, n, minPSI float64) Shift {
	s := Shift{PSI: PSI(f.Counts, counts), KS: BinnedKS(f.Counts, counts), PSINoise: PSINoise(len(f.Counts), n, float64(f.Count))}
	s.Large = minPSI <= 0 || s.PSI-s.PSINoise > minPSI
	return s
}

// Window is live input counts on a profile's bins, summed over sources:
// the rolling windows of gateways (GET /v2/models/{m}/drift), or the
// replicas' counters in Prometheus.
type Window struct {
	Rows   float64
	Counts [][]float64 // per feature, per bin
	Below  []float64   // per feature: values below the profile's minimum
	Above  []float64   // per feature: values above its maximum
	// Notes say what the sources left out or could not give.
	Notes []string
}

// NewWindow is an empty window on p's bins.
func NewWindow(p *Profile) *Window {
	w := &Window{Counts: make([][]float64, len(p.Features)), Below: make([]float64, len(p.Features)), Above: make([]float64, len(p.Features))}
	for i, f := range p.Features {
		w.Counts[i] = make([]float64, len(f.Counts))
	}
	return w
}

// FeatureDrift is one feature of a DriftVerdict.
type FeatureDrift struct {
	Name     string  `json:"name"`
	PSI      float64 `json:"psi"`
	PSINoise float64 `json:"psi_noise"`
	KS       float64 `json:"ks"`
	Drift    bool    `json:"drift"`
	Values   float64 `json:"values"`
	Below    float64 `json:"below"`
	Above    float64 `json:"above"`
	// Tests are the feature's tests (shift, below_min, above_max); P the
	// smallest adjusted p-value among them.
	Tests []FeatureTest `json:"tests"`
	P     float64       `json:"p"`
	// Why says which test found the drift, in words.
	Why string `json:"why,omitempty"`
	// large: the shift is above the least size of effect (Shift.Large).
	large bool
}

// DriftOptions configure CompareWindow.
type DriftOptions struct {
	// Alpha is the false-alarm rate over all features and tests (0:
	// DefaultAlpha).
	Alpha float64
	// MaxPSI is the least size of effect: a feature the tests find
	// shifted drifts only with a PSI beyond noise above it (0: none).
	MaxPSI float64
	// MinSamples: a window of fewer rows gets no verdict.
	MinSamples int
}

// DriftVerdict is the verdict on a live window: drift when any feature
// shifted, no verdict (Reason) with too few rows.
type DriftVerdict struct {
	Drift bool
	// Reason is set when no verdict could be given (too few rows).
	Reason      string
	Rows        float64
	Alpha       float64
	MaxPSI      float64
	ProfileRows int
	Notes       []string
	// Features come strongest evidence first (smallest adjusted p-value,
	// then highest PSI); none without a verdict.
	Features []FeatureDrift
}

// CompareWindow judges a live window against the profile. Each feature is
// tested for a shift on the profile's bins (chi-square) and for values
// beyond the reference range (exact exceedance tests); the p-values of all
// features are adjusted together (Holm), so that a window drawn from the
// reference distribution drifts with probability at most opts.Alpha. A
// feature whose test rejects drifts when its PSI beyond noise is above
// opts.MaxPSI (shift) or at once (range). A window of fewer than
// opts.MinSamples rows gets no verdict.
func CompareWindow(p *Profile, w *Window, opts DriftOptions) DriftVerdict {
	if opts.Alpha <= 0 || opts.Alpha >= 1 || math.IsNaN(opts.Alpha) {
		opts.Alpha = DefaultAlpha
	}
	v := DriftVerdict{Rows: w.Rows, Alpha: opts.Alpha, MaxPSI: opts.MaxPSI, ProfileRows: p.Rows, Notes: w.Notes, Features: []FeatureDrift{}}
	if w.Rows < float64(opts.MinSamples) {
		v.Reason = fmt.Sprintf("too few samples: %s live rows, fewer than the %d a verdict needs", strconv.FormatFloat(w.Rows, 'f', -1, 64), opts.MinSamples)
		return v
	}
	tests := make([][]FeatureTest, len(p.Features))
	for j, f := range p.Features {
		var n float64
		for _, c := range w.Counts[j] {
			n += c
		}
		s := ShiftOf(f, w.Counts[j], n, opts.MaxPSI)
		ref := make([]float64, len(f.Counts))
		for i, c := range f.Counts {
			ref[i] = float64(c)
		}
		_, _, pShift := ChiSquareHomogeneity(ref, w.Counts[j])
		if math.IsNaN(pShift) {
			pShift = 1
		}
		tests[j] = append([]FeatureTest{{Test: TestShift, P: pShift}}, exceedTests(f.Count, int(math.Round(n)), w.Below[j], w.Above[j])...)
		v.Features = append(v.Features, FeatureDrift{Name: f.Name, Values: n, Below: w.Below[j], Above: w.Above[j],
			PSI: s.PSI, PSINoise: s.PSINoise, KS: s.KS, large: s.Large})
	}
	holm(tests, opts.Alpha)
	for j := range v.Features {
		fd := &v.Features[j]
		fd.Tests, fd.P = tests[j], 1
		for _, t := range tests[j] {
			fd.P = min(fd.P, t.Adjusted)
			if !t.Rejected || (t.Test == TestShift && !fd.large) {
				continue
			}
			fd.Drift = true
			if fd.Why == "" {
				fd.Why = describeTest(t, opts.Alpha)
			}
		}
		v.Drift = v.Drift || fd.Drift
	}
	slices.SortStableFunc(v.Features, func(a, b FeatureDrift) int {
		if a.P != b.P {
			return cmp.Compare(a.P, b.P)
		}
		switch {
		case a.PSI > b.PSI || (!math.IsNaN(a.PSI) && math.IsNaN(b.PSI)):
			return -1
		case a.PSI < b.PSI || (math.IsNaN(a.PSI) && !math.IsNaN(b.PSI)):
			return 1
		}
		return 0
	})
	for i := range v.Features {
		if math.IsNaN(v.Features[i].PSI) { // a feature without values: JSON has no NaN
			v.Features[i].PSI, v.Features[i].KS = 0, 0
		}
	}
	return v
}
