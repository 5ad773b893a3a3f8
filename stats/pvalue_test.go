package stats

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

// pvalueReference is stats/testdata/pvalues.json, written by
// scripts/stats_testdata.py with SciPy.
type pvalueReference struct {
	Source      string `json:"source"`
	ChiSquareSF []struct {
		X  float64 `json:"x"`
		DF int     `json:"df"`
		P  float64 `json:"p"`
	} `json:"chi_square_sf"`
	NormalTwoSided []struct {
		Z float64 `json:"z"`
		P float64 `json:"p"`
	} `json:"normal_two_sided"`
	ChiSquareHomogeneity []struct {
		Ref    []float64 `json:"ref"`
		Sample []float64 `json:"sample"`
		Stat   float64   `json:"stat"`
		DF     int       `json:"df"`
		P      float64   `json:"p"`
	} `json:"chi_square_homogeneity"`
	WelchMean []struct {
		MeanA float64 `json:"mean_a"`
		SDA   float64 `json:"sd_a"`
		NA    int     `json:"n_a"`
		MeanB float64 `json:"mean_b"`
		SDB   float64 `json:"sd_b"`
		NB    int     `json:"n_b"`
		P     float64 `json:"p"`
	} `json:"welch_mean"`
	Exceed []struct {
		M int     `json:"m"`
		N int     `json:"n"`
		K int     `json:"k"`
		P float64 `json:"p"`
	} `json:"exceed"`
	FisherExact []struct {
		A  int     `json:"a"`
		N1 int     `json:"n1"`
		B  int     `json:"b"`
		N2 int     `json:"n2"`
		P  float64 `json:"p"`
		// Exact is the p-value in exact integer arithmetic, where the
		// script could afford it.
		Exact *float64 `json:"exact"`
	} `json:"fisher_exact"`
	Holm []struct {
		P        []float64 `json:"p"`
		Adjusted []float64 `json:"adjusted"`
	} `json:"holm"`
}

func loadPValueReference(t *testing.T) pvalueReference {
	t.Helper()
	b, err := os.ReadFile("testdata/pvalues.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref pvalueReference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if ref.Source == "" {
		t.Fatal("testdata/pvalues.json names no source")
	}
	return ref
}

// closeP reports whether a computed p-value matches a reference one: to a
// relative error of 1e-8, or an absolute one of 1e-12 below 1e-300, where
// float64 runs out of precision.
func closeP(got, want float64) bool {
	if math.Abs(want) < 1e-300 {
		return math.Abs(got-want) <= 1e-12
	}
	return math.Abs(got-want) <= 1e-8*math.Abs(want)
}

func TestChiSquareSFReference(t *testing.T) {
	for _, c := range loadPValueReference(t).ChiSquareSF {
		if got := ChiSquareSF(c.X, c.DF); !closeP(got, c.P) {
			t.Errorf("ChiSquareSF(%v, %d) = %v, SciPy %v", c.X, c.DF, got, c.P)
		}
	}
}

func TestNormalTwoSidedPReference(t *testing.T) {
	for _, c := range loadPValueReference(t).NormalTwoSided {
		if got := NormalTwoSidedP(c.Z); !closeP(got, c.P) {
			t.Errorf("NormalTwoSidedP(%v) = %v, SciPy %v", c.Z, got, c.P)
		}
	}
}

func TestChiSquareHomogeneityReference(t *testing.T) {
	for _, c := range loadPValueReference(t).ChiSquareHomogeneity {
		stat, df, p := ChiSquareHomogeneity(c.Ref, c.Sample)
		// A statistic of 0 comes out as rounding noise on either side.
		statOK := closeP(stat, c.Stat) || math.Abs(stat-c.Stat) <= 1e-10
		if !statOK || df != c.DF || !closeP(p, c.P) {
			t.Errorf("ChiSquareHomogeneity(%v, %v) = %v, %d, %v; SciPy %v, %d, %v",
				c.Ref, c.Sample, stat, df, p, c.Stat, c.DF, c.P)
		}
	}
}

func TestWelchMeanPReference(t *testing.T) {
	for _, c := range loadPValueReference(t).WelchMean {
		if got := WelchMeanP(c.MeanA, c.SDA, c.NA, c.MeanB, c.SDB, c.NB); !closeP(got, c.P) {
			t.Errorf("WelchMeanP(%v, %v, %d, %v, %v, %d) = %v, SciPy %v",
				c.MeanA, c.SDA, c.NA, c.MeanB, c.SDB, c.NB, got, c.P)
		}
	}
}

func TestExceedPReference(t *testing.T) {
	for _, c := range loadPValueReference(t).Exceed {
		if got := ExceedP(c.M, c.N, c.K); !closeP(got, c.P) {
			t.Errorf("ExceedP(%d, %d, %d) = %v, SciPy %v", c.M, c.N, c.K, got, c.P)
		}
	}
}

func TestFisherExactPReference(t *testing.T) {
	for _, c := range loadPValueReference(t).FisherExact {
		got := FisherExactP(c.A, c.N1, c.B, c.N2)
		if !closeP(got, c.P) {
			t.Errorf("FisherExactP(%d, %d, %d, %d) = %v, SciPy %v", c.A, c.N1, c.B, c.N2, got, c.P)
		}
		// SciPy 1.10 is off by about 1e-9 at n = 1e7; the exact value holds
		// FisherExactP to its own precision.
		if c.Exact != nil && math.Abs(got-*c.Exact) > 1e-12**c.Exact {
			t.Errorf("FisherExactP(%d, %d, %d, %d) = %v, exactly %v", c.A, c.N1, c.B, c.N2, got, *c.Exact)
		}
	}
}

func TestHolmReference(t *testing.T) {
	for _, c := range loadPValueReference(t).Holm {
		got := Holm(c.P)
		if len(got) != len(c.Adjusted) {
			t.Errorf("Holm(%v) has %d values, want %d", c.P, len(got), len(c.Adjusted))
			continue
		}
		for i := range got {
			if !closeP(got[i], c.Adjusted[i]) {
				t.Errorf("Holm(%v) = %v, want %v", c.P, got, c.Adjusted)
				break
			}
		}
	}
}

func TestHolmProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		p := make([]float64, 1+r.IntN(30))
		for i := range p {
			p[i] = math.Pow(r.Float64(), 3)
			if r.IntN(5) == 0 && i > 0 {
				p[i] = p[r.IntN(i)] // ties
			}
		}
		in := slices.Clone(p)
		adj := Holm(p)
		if !slices.Equal(p, in) {
			t.Fatalf("Holm modified its input: %v became %v", in, p)
		}
		order := make([]int, len(p))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmpFloat(p[a], p[b]) })
		for j, i := range order {
			if adj[i] < p[i] || adj[i] > 1 {
				t.Fatalf("Holm(%v)[%d] = %v, outside [p, 1]", p, i, adj[i])
			}
			if j > 0 && adj[i] < adj[order[j-1]] {
				t.Fatalf("Holm(%v) = %v is not monotone in the order of p", p, adj)
			}
		}
	}
	if got := Holm(nil); len(got) != 0 {
		t.Errorf("Holm(nil) = %v", got)
	}
	got := Holm([]float64{0.01, math.NaN(), 0.02})
	if got[0] != 0.03 || !math.IsNaN(got[1]) || got[2] != 0.04 {
		t.Errorf("Holm with a NaN = %v, want [0.03 NaN 0.04]", got)
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestChiSquareHomogeneityIdenticalProportions(t *testing.T) {
	base := []float64{12, 40, 3, 0, 77, 25, 9, 1, 30}
	for _, f := range []float64{1, 2, 3, 10, 1000} {
		scaled := make([]float64, len(base))
		for i, v := range base {
			scaled[i] = f * v
		}
		stat, df, p := ChiSquareHomogeneity(scaled, base)
		if df < 1 || stat > 1e-9 || math.Abs(p-1) > 1e-9 {
			t.Errorf("ChiSquareHomogeneity(%v×base, base) = %v, %d, %v; want 0, df >= 1, 1", f, stat, df, p)
		}
	}
}

func TestChiSquareHomogeneityEdges(t *testing.T) {
	for _, c := range []struct {
		name        string
		ref, sample []float64
		df          int
		nan         bool
	}{
		{"empty", nil, nil, 0, false},
		{"empty sample", []float64{10, 20}, []float64{0, 0}, 0, false},
		{"one bin", []float64{100}, []float64{50}, 0, false},
		{"lengths differ", []float64{1, 2}, []float64{1}, 0, true},
		{"negative count", []float64{10, -1}, []float64{5, 5}, 0, true},
		{"NaN count", []float64{10, 10}, []float64{math.NaN(), 5}, 0, true},
	} {
		stat, df, p := ChiSquareHomogeneity(c.ref, c.sample)
		if c.nan {
			if !math.IsNaN(stat) || df != 0 || !math.IsNaN(p) {
				t.Errorf("%s: got %v, %d, %v; want NaN, 0, NaN", c.name, stat, df, p)
			}
		} else if stat != 0 || df != c.df || p != 1 {
			t.Errorf("%s: got %v, %d, %v; want 0, %d, 1", c.name, stat, df, p, c.df)
		}
	}
}

func TestExceedPProperties(t *testing.T) {
	for _, mn := range [][2]int{{0, 1}, {1, 1}, {19, 1}, {420, 140}, {7, 3}, {1000000, 3}, {3, 1000000}} {
		m, n := mn[0], mn[1]
		if got, want := ExceedP(m, n, 1), float64(n)/float64(m+n); got != want {
			t.Errorf("ExceedP(%d, %d, 1) = %v, want n/(m+n) = %v", m, n, got, want)
		}
		// The defining product, term by term, for short products.
		want := 1.0
		for k := 1; k <= min(n, 60); k++ {
			want *= float64(n-k+1) / float64(m+n-k+1)
			if got := ExceedP(m, n, k); math.Abs(got-want) > 1e-12*want {
				t.Errorf("ExceedP(%d, %d, %d) = %v, product %v", m, n, k, got, want)
			}
		}
		if ExceedP(m, n, 0) != 1 || ExceedP(m, n, -3) != 1 || ExceedP(m, n, n+1) != 0 {
			t.Errorf("ExceedP(%d, %d, k) outside 1 <= k <= n", m, n)
		}
	}
	if !math.IsNaN(ExceedP(-1, 5, 1)) {
		t.Error("ExceedP(-1, 5, 1) is not NaN")
	}
}

func TestPValueEdges(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"ChiSquareSF(0, 3)", ChiSquareSF(0, 3), 1},
		{"ChiSquareSF(-1, 3)", ChiSquareSF(-1, 3), 1},
		{"ChiSquareSF(+Inf, 3)", ChiSquareSF(math.Inf(1), 3), 0},
		{"ChiSquareSF(2, 2)", ChiSquareSF(2, 2), math.Exp(-1)},
		{"NormalTwoSidedP(0)", NormalTwoSidedP(0), 1},
		{"WelchMeanP with nB = 1", WelchMeanP(0, 1, 10, 5, 1, 1), 1},
		{"WelchMeanP, se 0, equal", WelchMeanP(3, 0, 5, 3, 0, 5), 1},
		{"WelchMeanP, se 0, different", WelchMeanP(3, 0, 5, 4, 0, 5), 0},
		{"FisherExactP(0, 0, 0, 0)", FisherExactP(0, 0, 0, 0), 1},
		{"FisherExactP, all missing", FisherExactP(7, 7, 3, 3), 1},
	} {
		if c.got != c.want && math.Abs(c.got-c.want) > 1e-15 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	for name, got := range map[string]float64{
		"ChiSquareSF(NaN, 3)":       ChiSquareSF(math.NaN(), 3),
		"ChiSquareSF(1, 0)":         ChiSquareSF(1, 0),
		"NormalTwoSidedP(NaN)":      NormalTwoSidedP(math.NaN()),
		"WelchMeanP with a NaN":     WelchMeanP(math.NaN(), 1, 10, 0, 1, 10),
		"FisherExactP(a > n1)":      FisherExactP(5, 4, 0, 10),
		"FisherExactP(negative b)":  FisherExactP(1, 4, -1, 10),
		"FisherExactP(negative n2)": FisherExactP(1, 4, 0, -2),
	} {
		if !math.IsNaN(got) {
			t.Errorf("%s = %v, want NaN", name, got)
		}
	}
	// Fisher's test is symmetric in the two samples.
	if a, b := FisherExactP(3, 420, 10, 140), FisherExactP(10, 140, 3, 420); math.Abs(a-b) > 1e-12*a {
		t.Errorf("FisherExactP not symmetric: %v and %v", a, b)
	}
}

// TestPValueCalibration checks that under the null hypothesis the tests
// reject at about their nominal level: 5% of p-values at most 0.05.
func TestPValueCalibration(t *testing.T) {
	const (
		reps       = 2000
		nRef, nNew = 420, 140
	)
	r := rand.New(rand.NewPCG(20240607, 7))
	// Ten bins, the last few sparse enough to need merging in the smaller sample.
	probs := []float64{0.30, 0.20, 0.15, 0.10, 0.08, 0.06, 0.05, 0.03, 0.02, 0.01}
	draw := func(n int) []float64 {
		counts := make([]float64, len(probs))
		for range n {
			u, i := r.Float64(), 0
			for ; i < len(probs)-1 && u >= probs[i]; i++ {
				u -= probs[i]
			}
			counts[i]++
		}
		return counts
	}
	normal := func(n int, mean, sd float64) (m, s float64) {
		var sum, sumSq float64
		for range n {
			x := mean + sd*r.NormFloat64()
			sum += x
			sumSq += x * x
		}
		m = sum / float64(n)
		return m, math.Sqrt((sumSq - float64(n)*m*m) / float64(n-1))
	}
	var chiReject, welchReject int
	for range reps {
		if _, _, p := ChiSquareHomogeneity(draw(nRef), draw(nNew)); p <= 0.05 {
			chiReject++
		}
		ma, sa := normal(nRef, 10, 2)
		mb, sb := normal(nNew, 10, 3)
		if WelchMeanP(ma, sa, nRef, mb, sb, nNew) <= 0.05 {
			welchReject++
		}
	}
	for name, n := range map[string]int{"ChiSquareHomogeneity": chiReject, "WelchMeanP": welchReject} {
		if f := float64(n) / reps; f < 0.03 || f > 0.07 {
			t.Errorf("%s rejects %.3f of %d null samples at 0.05, want 0.03 to 0.07", name, f, reps)
		} else {
			t.Logf("%s rejects %.3f of %d null samples at 0.05", name, f, reps)
		}
	}
}

func BenchmarkFisherExactPLarge(b *testing.B) {
	for b.Loop() {
		FisherExactP(400000, 1000000, 401000, 1000000)
	}
}

// StudentTwoSidedP against scipy.stats.t.sf (SciPy 1.10.1): 2*t.sf(t, df).
func TestStudentTwoSidedP(t *testing.T) {
	for _, c := range []struct{ t, df, want float64 }{
		{3.5, 43.0, 0.0010966982297507084},
		{2.0, 10.0, 0.07338803477074039},
		{0.5, 5.5, 0.6364403487154132},
		{6.0, 120.3, 2.1375616454098968e-08},
		{10.0, 3.0, 0.0021283990584141494},
		{1.0, 1000.0, 0.3175524180846726},
		{-2.0, 10.0, 0.07338803477074039},
	} {
		if got := StudentTwoSidedP(c.t, c.df); math.Abs(got-c.want) > 1e-9*c.want {
			t.Errorf("StudentTwoSidedP(%g, %g) = %.17g, want %.17g", c.t, c.df, got, c.want)
		}
	}
}
