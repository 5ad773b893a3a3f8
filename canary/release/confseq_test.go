package release_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/modelgate/modelgate/canary/release"
)

// The reference values are scripts/confseq_testdata.py's, computed with
// SciPy (betaln, brentq) in p rather than in log-odds as RateBounds does.
type confseqCase struct {
	K, N         int64
	Prior, Alpha float64
	Lo, Hi       float64
}

type confseqDiffCase struct {
	Kc, Nc, Ks, Ns int64
	Prior, Alpha   float64
	Lo, Hi         float64
}

type confseqData struct {
	Source struct {
		Script, SciPy, Python, Date string
	}
	Cases     []confseqCase
	DiffCases []confseqDiffCase `json:"diff_cases"`
}

func loadConfseq(t *testing.T) confseqData {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "confseq.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d confseqData
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Source.Script == "" || d.Source.SciPy == "" || len(d.Cases) < 40 || len(d.DiffCases) == 0 {
		t.Fatalf("testdata/confseq.json: want a source and at least 40 cases, got %+v with %d cases", d.Source, len(d.Cases))
	}
	return d
}

func TestRateBoundsMatchesSciPy(t *testing.T) {
	const tol = 1e-9
	d := loadConfseq(t)
	t.Logf("reference: %s, SciPy %s, Python %s, %s", d.Source.Script, d.Source.SciPy, d.Source.Python, d.Source.Date)
	worst := 0.0
	for _, c := range d.Cases {
		lo, hi := release.RateBounds(c.K, c.N, c.Prior, c.Alpha)
		worst = max(worst, math.Abs(lo-c.Lo), math.Abs(hi-c.Hi))
		if math.Abs(lo-c.Lo) > tol || math.Abs(hi-c.Hi) > tol {
			t.Errorf("RateBounds(%d, %d, %g, %g) = [%.15g, %.15g], SciPy [%.15g, %.15g] (off by %.2g, %.2g)",
				c.K, c.N, c.Prior, c.Alpha, lo, hi, c.Lo, c.Hi, lo-c.Lo, hi-c.Hi)
		}
	}
	t.Logf("%d cases, largest difference from SciPy %.2g", len(d.Cases), worst)
	for _, c := range d.DiffCases {
		lo, hi := release.DiffBounds(c.Kc, c.Nc, c.Ks, c.Ns, c.Prior, c.Alpha)
		if math.Abs(lo-c.Lo) > tol || math.Abs(hi-c.Hi) > tol {
			t.Errorf("DiffBounds(%d, %d, %d, %d, %g, %g) = [%.15g, %.15g], SciPy [%.15g, %.15g]",
				c.Kc, c.Nc, c.Ks, c.Ns, c.Prior, c.Alpha, lo, hi, c.Lo, c.Hi)
		}
	}
}

// mixtureLog is lnB(a+k, b+n-k) - lnB(a, b) for the Beta(1,
// (1-prior)/prior) mixture, the test's own way: for n up to 1e5 as the log
// of the product of the per-trial ratios of k events then n-k non-events,
// each term by Log1p and all negative, so that the sum is accurate to a
// few ulps of itself; beyond, by math.Lgamma.
func mixtureLog(k, n int64, prior float64) float64 {
	prior = min(max(prior, 1e-4), 0.5)
	a, b := 1.0, (1-prior)/prior
	if n > 1e5 {
		lnB := func(x, y float64) float64 {
			lx, _ := math.Lgamma(x)
			ly, _ := math.Lgamma(y)
			lxy, _ := math.Lgamma(x + y)
			return lx + ly - lxy
		}
		return lnB(a+float64(k), b+float64(n-k)) - lnB(a, b)
	}
	var sum, comp float64 // Neumaier's compensated sum
	add := func(x float64) {
		t := sum + x
		if math.Abs(sum) >= math.Abs(x) {
			comp += (sum - t) + x
		} else {
			comp += (x - t) + sum
		}
		sum = t
	}
	for j := range k { // event j+1: (a+j)/(a+b+j)
		add(math.Log1p(-b / (a + b + float64(j))))
	}
	for j := range n - k { // non-event: (b+j)/(a+b+k+j)
		add(math.Log1p(-(a + float64(k)) / (a + b + float64(k+j))))
	}
	return sum + comp
}

// logM is log M_n(p), written out in p.
func logM(c float64, k, n int64, p float64) float64 {
	v := c
	if k > 0 {
		v -= float64(k) * math.Log(p)
	}
	if k < n {
		v -= float64(n-k) * math.Log1p(-p)
	}
	return v
}

// bisectBounds is the interval by plain bisection in p, halving each
// side's bracket until it cannot: the slow, obvious way. c is
// mixtureLog(k, n, prior).
func bisectBounds(c float64, k, n int64, alpha float64) (lo, hi float64) {
	level := math.Log(1 / alpha)
	in := func(p float64) bool { return logM(c, k, n, p) < level }
	pHat := float64(k) / float64(n)
	// edge halves the bracket between a point outside the interval and
	// one inside until it cannot, and returns the outside end.
	edge := func(out, inside float64) float64 {
		for range 200 {
			mid := (out + inside) / 2
			if mid == out || mid == inside {
				break
			}
			if in(mid) {
				inside = mid
			} else {
				out = mid
			}
		}
		return out
	}
	lo, hi = 0, 1
	if k > 0 {
		lo = edge(0, pHat) // logM(0) >= level > logM(pHat)
	}
	if k < n {
		hi = edge(1, pHat)
	}
	return lo, hi
}

// The ends are within 1e-12 of bisection's, and erring outwards if at all,
// over a grid of counts, priors and alphas.
func TestRateBoundsPrecision(t *testing.T) {
	const tol = 1e-12
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int64{1, 2, 3, 5, 10, 31, 100, 999, 3000, 20000, 100000, 1000000} {
		for _, prior := range []float64{1e-4, 0.002, 0.01, 0.05, 0.3, 0.5} {
			ks := []int64{0, 1, n / 2, n - 1, n, r.Int64N(n + 1), int64(math.Round(prior * float64(n)))}
			for _, k := range ks {
				k = min(max(k, 0), n)
				c := mixtureLog(k, n, prior)
				for _, alpha := range []float64{0.5, 0.05, 0.01 / 16, 0.01 / 32, 1e-6, 1e-12} {
					lo, hi := release.RateBounds(k, n, prior, alpha)
					blo, bhi := bisectBounds(c, k, n, alpha)
					if math.Abs(lo-blo) > tol || math.Abs(hi-bhi) > tol {
						t.Errorf("RateBounds(%d, %d, %g, %g) = [%.17g, %.17g], bisection [%.17g, %.17g] (off by %.2g, %.2g)",
							k, n, prior, alpha, lo, hi, blo, bhi, lo-blo, hi-bhi)
					}
				}
			}
		}
	}
}

// With no events the upper end has a closed form: log M_n(p) is
// ln(b/(b+n)) - n ln(1-p), so hi = 1 - (b alpha/(b+n))^(1/n).
func TestRateBoundsNoEventsClosedForm(t *testing.T) {
	for _, n := range []int64{1, 7, 100, 971, 1047, 10000, 1 << 20} {
		for _, prior := range []float64{1e-4, 0.01, 0.05, 0.5} {
			for _, alpha := range []float64{0.05, 0.01 / 16, 1e-9} {
				b := (1 - prior) / prior
				want := -math.Expm1(math.Log(b*alpha/(b+float64(n))) / float64(n))
				lo, hi := release.RateBounds(0, n, prior, alpha)
				if lo != 0 || math.Abs(hi-want) > 1e-12 {
					t.Errorf("RateBounds(0, %d, %g, %g) = [%g, %.17g], want [0, %.17g]", n, prior, alpha, lo, hi, want)
				}
			}
		}
	}
}

func TestRateBoundsProperties(t *testing.T) {
	priors := []float64{0.01, 0.05, 0.5}
	alphas := []float64{0.2, 0.05, 0.01 / 16, 1e-8}
	for _, prior := range priors {
		for _, alpha := range alphas {
			for _, n := range []int64{1, 2, 9, 50, 400, 5000} {
				for k := int64(0); k <= n; k += max(1, n/37) {
					lo, hi := release.RateBounds(k, n, prior, alpha)
					pHat := float64(k) / float64(n)
					if !(0 <= lo && lo <= pHat && pHat <= hi && hi <= 1) {
						t.Errorf("RateBounds(%d, %d, %g, %g) = [%g, %g]: want 0 <= lo <= k/n = %g <= hi <= 1", k, n, prior, alpha, lo, hi, pHat)
					}
					if k == 0 && lo != 0 {
						t.Errorf("RateBounds(0, %d, %g, %g): lo = %g, want 0", n, prior, alpha, lo)
					}
					if k == n && hi != 1 {
						t.Errorf("RateBounds(%d, %d, %g, %g): hi = %g, want 1", n, n, prior, alpha, hi)
					}
					if k > 0 && lo == 0 {
						t.Errorf("RateBounds(%d, %d, %g, %g): lo = 0 with an event", k, n, prior, alpha)
					}
				}
			}
		}
	}

	// At a fixed rate the interval shrinks as n grows (n doubling, k/n
	// exactly the rate), on both sides.
	for _, prior := range priors {
		for _, rate := range []float64{0, 0.01, 0.05, 0.25} {
			prevLo, prevHi := 0.0, 1.0
			for n := int64(100); n <= 1<<22; n *= 2 {
				k := int64(rate * float64(n))
				lo, hi := release.RateBounds(k, n, prior, 0.05)
				if hi >= prevHi || (k > 0 && lo <= prevLo) || hi-lo >= prevHi-prevLo {
					t.Errorf("rate %g, prior %g: n = %d gives [%g, %g], not inside n/2's [%g, %g]", rate, prior, n, lo, hi, prevLo, prevHi)
				}
				prevLo, prevHi = lo, hi
			}
		}
	}

	// A smaller alpha is a wider interval, containing the larger alpha's.
	for _, prior := range priors {
		for _, kn := range [][2]int64{{0, 500}, {3, 500}, {40, 1000}, {500, 1000}, {1000, 1000}} {
			prevLo, prevHi := -1.0, 2.0
			for _, alpha := range []float64{0.5, 0.2, 0.05, 0.01, 0.01 / 16, 0.01 / 32, 1e-6, 1e-12} {
				lo, hi := release.RateBounds(kn[0], kn[1], prior, alpha)
				if prevLo >= 0 {
					if lo > prevLo || hi < prevHi || hi-lo <= prevHi-prevLo {
						t.Errorf("RateBounds(%d, %d, %g, %g) = [%g, %g] does not contain the larger alpha's [%g, %g] and more", kn[0], kn[1], prior, alpha, lo, hi, prevLo, prevHi)
					}
				}
				prevLo, prevHi = lo, hi
			}
		}
	}
}

// Any input is answered with 0 <= lo <= hi <= 1 and no panic; the
// out-of-range ones as documented.
func TestRateBoundsOutOfRangeInputs(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	same := func(what string, lo, hi, wantLo, wantHi float64) {
		t.Helper()
		if lo != wantLo || hi != wantHi {
			t.Errorf("%s = [%g, %g], want [%g, %g]", what, lo, hi, wantLo, wantHi)
		}
	}
	lo, hi := release.RateBounds(0, 0, 0.01, 0.05)
	same("n = 0", lo, hi, 0, 1)
	lo, hi = release.RateBounds(5, -3, 0.01, 0.05)
	same("n < 0", lo, hi, 0, 1)
	wLo, wHi := release.RateBounds(0, 100, 0.01, 0.05)
	lo, hi = release.RateBounds(-4, 100, 0.01, 0.05)
	same("k < 0", lo, hi, wLo, wHi)
	wLo, wHi = release.RateBounds(100, 100, 0.01, 0.05)
	lo, hi = release.RateBounds(101, 100, 0.01, 0.05)
	same("k > n", lo, hi, wLo, wHi)
	wLo, wHi = release.RateBounds(3, 100, 1e-4, 0.05)
	for _, prior := range []float64{0, -1, 1e-9, -inf} {
		lo, hi = release.RateBounds(3, 100, prior, 0.05)
		same(fmt.Sprintf("prior %g", prior), lo, hi, wLo, wHi)
	}
	wLo, wHi = release.RateBounds(3, 100, 0.5, 0.05)
	for _, prior := range []float64{0.7, 1, 2, inf, nan} {
		lo, hi = release.RateBounds(3, 100, prior, 0.05)
		same(fmt.Sprintf("prior %g", prior), lo, hi, wLo, wHi)
	}
	wLo, wHi = release.RateBounds(3, 100, 0.05, math.SmallestNonzeroFloat64)
	for _, alpha := range []float64{0, -0.5, -inf, nan} {
		lo, hi = release.RateBounds(3, 100, 0.05, alpha)
		same(fmt.Sprintf("alpha %g", alpha), lo, hi, wLo, wHi)
	}
	if !(wLo > 0 && wLo < 1e-6 && wHi > 0.9) {
		t.Errorf("alpha 0 gives [%g, %g], want nearly [0, 1]", wLo, wHi)
	}
	wLo, wHi = release.RateBounds(3, 100, 0.05, math.Nextafter(1, 0))
	for _, alpha := range []float64{1, 1.5, inf} {
		lo, hi = release.RateBounds(3, 100, 0.05, alpha)
		same(fmt.Sprintf("alpha %g", alpha), lo, hi, wLo, wHi)
	}
	if !(wLo <= 0.03 && wHi >= 0.03 && wHi-wLo < 0.1) {
		t.Errorf("alpha 1 gives [%g, %g], want a short interval around 0.03", wLo, wHi)
	}

	for _, n := range []int64{1, 2, 1000, 1 << 40, math.MaxInt64} {
		for _, k := range []int64{math.MinInt64, -1, 0, 1, n / 3, n - 1, n, math.MaxInt64} {
			for _, prior := range []float64{nan, -inf, 0, 1e-300, 0.01, 0.5, 1, inf} {
				for _, alpha := range []float64{nan, -inf, 0, math.SmallestNonzeroFloat64, 1e-300, 0.05, 0.999999, 1, inf} {
					lo, hi := release.RateBounds(k, n, prior, alpha)
					if !(0 <= lo && lo <= hi && hi <= 1) {
						t.Errorf("RateBounds(%d, %d, %g, %g) = [%g, %g]", k, n, prior, alpha, lo, hi)
					}
					dlo, dhi := release.DiffBounds(k, n, n-k, n, prior, alpha)
					if !(-1 <= dlo && dlo <= dhi && dhi <= 1) {
						t.Errorf("DiffBounds(%d, %d, %d, %d, %g, %g) = [%g, %g]", k, n, n-k, n, prior, alpha, dlo, dhi)
					}
				}
			}
		}
	}
}

func TestDiffBounds(t *testing.T) {
	for _, c := range []struct {
		kc, nc, ks, ns int64
		prior, alpha   float64
	}{
		{30, 1000, 10, 1000, 0.01, 0.01 / 16},
		{0, 0, 0, 0, 0.05, 0.05},
		{0, 5000, 50, 5000, 0.01, 0.05},
		{7, 100, 7, 100, 0.5, 0.2},
	} {
		loC, hiC := release.RateBounds(c.kc, c.nc, c.prior, c.alpha/2)
		loS, hiS := release.RateBounds(c.ks, c.ns, c.prior, c.alpha/2)
		lo, hi := release.DiffBounds(c.kc, c.nc, c.ks, c.ns, c.prior, c.alpha)
		if lo != loC-hiS || hi != hiC-loS {
			t.Errorf("DiffBounds%v = [%g, %g], want [%g, %g]", c, lo, hi, loC-hiS, hiC-loS)
		}
		pc, ps := float64(c.kc)/max(1, float64(c.nc)), float64(c.ks)/max(1, float64(c.ns))
		if !(lo <= pc-ps && pc-ps <= hi) {
			t.Errorf("DiffBounds%v = [%g, %g] excludes the observed difference %g", c, lo, hi, pc-ps)
		}
	}
	// 3% against 1% in 10000 requests each is a regression, with
	// confidence 1 - 0.01/16 at any time; 1.2% against 1% is not yet.
	if lo, _ := release.DiffBounds(300, 10000, 100, 10000, 0.01, 0.01/16); lo <= 0 {
		t.Errorf("3%% vs 1%% in 10000 each: lo = %g, want > 0", lo)
	}
	if lo, hi := release.DiffBounds(120, 10000, 100, 10000, 0.01, 0.01/16); lo > 0 || hi < 0 {
		t.Errorf("1.2%% vs 1%% in 10000 each: [%g, %g], want it to contain 0", lo, hi)
	}
}

// Time-uniform coverage, by simulation: for each true rate p and prior,
// streams of 3000 Bernoulli(p) trials, and the fraction of streams in
// which p falls outside [lo, hi] after ANY trial must be at most alpha
// (plus 3 standard errors of the simulation).
//
// Every trial is checked. Calling RateBounds 3000 times per stream is too
// slow under -race, so the test also keeps log M_n(p) at the true p,
// updated in O(1) per trial (M_n(p) is a product of per-trial ratios), and
// calls RateBounds at every trial where log M_n(p) >= ln(1/alpha) - 1 (the
// only trials where p can be outside, as the interval is
// {p : log M_n(p) < ln(1/alpha)}) and at every 10th trial besides. At each
// call RateBounds' verdict must agree with the running log M_n(p) (apart
// from a 1e-6 band at the boundary), and the exclusions counted are
// RateBounds'.
func TestRateBoundsTimeUniformCoverage(t *testing.T) {
	const (
		alpha  = 0.05
		trials = 3000
		near   = 1.0 // call RateBounds when log M_n(p) is within this of the level
		every  = 10  // and at every 10th trial
	)
	streams := 1000
	if testing.Short() {
		streams = 200
	}
	level := math.Log(1 / alpha)
	limit := alpha + 3*math.Sqrt(alpha*(1-alpha)/float64(streams))

	type config struct{ p, prior float64 }
	var configs []config
	for _, p := range []float64{0, 0.002, 0.01, 0.05, 0.3} {
		for _, prior := range []float64{0.01, 0.05} {
			configs = append(configs, config{p, prior})
		}
	}
	type result struct {
		excluded, calls, disagree int
		firstDisagree             string
	}
	results := make([]result, len(configs))
	var wg sync.WaitGroup
	for ci, c := range configs {
		wg.Go(func() {
			res := &results[ci]
			r := rand.New(rand.NewPCG(uint64(ci)+1, 0x5eed))
			a, b := 1.0, (1-c.prior)/c.prior
			for range streams {
				var k int64
				lm := 0.0 // log M_n(p), M_0 = 1
				for i := int64(0); i < trials; i++ {
					// One trial: M_{i+1}/M_i is (a+k)/((a+b+i) p) for an
					// event and (b+i-k)/((a+b+i)(1-p)) for none.
					if r.Float64() < c.p {
						lm += math.Log((a + float64(k)) / ((a + b + float64(i)) * c.p))
						k++
					} else {
						lm += math.Log((b + float64(i-k)) / ((a + b + float64(i)) * (1 - c.p)))
					}
					n := i + 1
					if lm < level-near && n%every != 0 {
						continue
					}
					res.calls++
					lo, hi := release.RateBounds(k, n, c.prior, alpha)
					out := c.p < lo || c.p > hi
					if out != (lm >= level) && math.Abs(lm-level) > 1e-6 {
						res.disagree++
						if res.firstDisagree == "" {
							res.firstDisagree = fmt.Sprintf("k %d, n %d: [%g, %g], log M_n(p) = %g, level %g", k, n, lo, hi, lm, level)
						}
					}
					if out {
						res.excluded++
						break // this stream has left the sequence; next stream
					}
				}
			}
		})
	}
	wg.Wait()
	for ci, c := range configs {
		res := results[ci]
		frac := float64(res.excluded) / float64(streams)
		t.Logf("p %-5g prior %-4g: p left [lo, hi] in %4d of %d streams (%.3f; limit %.3f), %d RateBounds calls", c.p, c.prior, res.excluded, streams, frac, limit, res.calls)
		if frac > limit {
			t.Errorf("p %g, prior %g: p was outside [lo, hi] at some n in %.3f of the streams, more than alpha %g + 3 SE = %.3f", c.p, c.prior, frac, alpha, limit)
		}
		if res.disagree > 0 {
			t.Errorf("p %g, prior %g: RateBounds disagreed with log M_n(p) %d times, first at %s", c.p, c.prior, res.disagree, res.firstDisagree)
		}
	}
}

// The sample sizes the sequence implies for passing a canary with no
// errors at all: the least n with hi <= threshold when k = 0, for prior =
// threshold and the Bonferroni-split alphas of a plan with 16 or 32 looks
// or checks (from the table this test logs; n - 1 still has hi above the
// threshold):
//
//	threshold  alpha     least n   hi at n    (fixed-n exact test, one look)
//	0.01       0.01/16    971     0.0099992   (735)
//	0.01       0.01/32   1047     0.0099973   (804)
//	0.05       0.01/16    191     0.0499175   (144)
//	0.05       0.01/32    206     0.0498900   (158)
//
// The fixed-n column, the least n with (1-threshold)^n <= alpha, is what a
// single look would need; the sequence's 30% or so more buys looking after
// every request.
func TestRateBoundsSampleSizes(t *testing.T) {
	for _, c := range []struct {
		threshold, alpha float64
		want             int64
	}{
		{0.01, 0.01 / 16, 971},
		{0.01, 0.01 / 32, 1047},
		{0.05, 0.01 / 16, 191},
		{0.05, 0.01 / 32, 206},
	} {
		var n int64 = 1
		for ; n < 1e6; n++ {
			if _, hi := release.RateBounds(0, n, c.threshold, c.alpha); hi <= c.threshold {
				break
			}
		}
		_, hi := release.RateBounds(0, n, c.threshold, c.alpha)
		_, before := release.RateBounds(0, n-1, c.threshold, c.alpha)
		fixed := math.Ceil(math.Log(c.alpha) / math.Log1p(-c.threshold))
		t.Logf("threshold %-4g alpha %-9.4g: least n %5d (hi %.7f; n-1 %.7f); fixed-n exact test %g", c.threshold, c.alpha, n, hi, before, fixed)
		if n != c.want {
			t.Errorf("threshold %g, alpha %g: least n with hi <= threshold is %d, the comment says %d", c.threshold, c.alpha, n, c.want)
		}
	}
}

func BenchmarkRateBounds(b *testing.B) {
	for b.Loop() {
		release.RateBounds(37, 4000, 0.01, 0.01/16)
	}
}
