package stats

import (
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
	// Drift: PSI − PSINoise > the largest PSI allowed.
	Drift bool
}

// ShiftOf compares counts, per bin of f, of n values with f's reference
// counts. This is the one drift rule of modelgate: promote check-data and
// promote drift (a gateway's live window) both apply it.
func ShiftOf(f FeatureProfile, counts []float64, n, maxPSI float64) Shift {
	s := Shift{PSI: PSI(f.Counts, counts), KS: BinnedKS(f.Counts, counts), PSINoise: PSINoise(len(f.Counts), n, float64(f.Count))}
	s.Drift = s.PSI-s.PSINoise > maxPSI
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
}

// DriftVerdict is the verdict on a live window: drift when any feature
// shifted (ShiftOf), no verdict (Reason) with too few rows.
type DriftVerdict struct {
	Drift bool
	// Reason is set when no verdict could be given (too few rows).
	Reason      string
	Rows        float64
	MaxPSI      float64
	ProfileRows int
	Notes       []string
	// Features come worst first (highest PSI); none without a verdict.
	Features []FeatureDrift
}

// CompareWindow judges a live window against the profile: each feature's
// shift with maxPSI, and no verdict when the window has fewer than
// minSamples rows.
func CompareWindow(p *Profile, w *Window, maxPSI float64, minSamples int) DriftVerdict {
	v := DriftVerdict{Rows: w.Rows, MaxPSI: maxPSI, ProfileRows: p.Rows, Notes: w.Notes, Features: []FeatureDrift{}}
	if w.Rows < float64(minSamples) {
		v.Reason = fmt.Sprintf("too few samples: %s live rows, fewer than the %d a verdict needs", strconv.FormatFloat(w.Rows, 'f', -1, 64), minSamples)
		return v
	}
	for j, f := range p.Features {
		var n float64
		for _, c := range w.Counts[j] {
			n += c
		}
		s := ShiftOf(f, w.Counts[j], n, maxPSI)
		v.Features = append(v.Features, FeatureDrift{Name: f.Name, Values: n, Below: w.Below[j], Above: w.Above[j],
			PSI: s.PSI, PSINoise: s.PSINoise, KS: s.KS, Drift: s.Drift})
		v.Drift = v.Drift || s.Drift
	}
	slices.SortStableFunc(v.Features, func(a, b FeatureDrift) int {
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
