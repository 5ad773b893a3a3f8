package stats

import (
	"math"
	"sort"
)

// This file holds the significance tests the data checks use. Every function
// returns a p-value: the probability, under the test's null hypothesis, of a
// result at least as extreme as the one observed. The reference values they
// are tested against come from SciPy (scripts/stats_testdata.py).

// ChiSquareSF returns the upper tail probability P(X >= x) of a chi-square
// random variable X with df degrees of freedom, which is the regularized upper
// incomplete gamma function Q(df/2, x/2). It is computed with the power series
// of the lower function P when x/2 < df/2+1 (returning 1-P there, where Q is
// not small) and with a continued fraction for Q otherwise; the prefactor
// (x/2)^(df/2) e^(-x/2) / Γ(df/2) is evaluated in log space with Loader's
// deviance form, so the result keeps a relative error of about 1e-12 or
// better down to the smallest normal float64 (about 1e-308) for df up to 1e6
// (checked against 40-digit arithmetic). Results below that lose precision
// gradually and underflow to 0.
//
// x <= 0 returns 1 and x = +Inf returns 0; df < 1 or a NaN x returns NaN.
func ChiSquareSF(x float64, df int) float64 {
	switch {
	case df < 1 || math.IsNaN(x):
		return math.NaN()
	case x <= 0:
		return 1
	case math.IsInf(x, 1):
		return 0
	}
	return gammaQ(float64(df)/2, x/2)
}

// gammaQ is the regularized upper incomplete gamma function Q(a, x) for a > 0
// and x > 0.
func gammaQ(a, x float64) float64 {
	// lf is log(x^a e^-x / Γ(a)).
	lf := 0.5*math.Log(a/(2*math.Pi)) - stirlerr(a) - bd0(a, x)
	// Both expansions converge in O(sqrt(a)) terms near x = a.
	maxIter := 1000 + 100*int(math.Sqrt(a))
	if x < a+1 {
		// P(a, x) = e^lf Σ_{n>=0} x^n / (a (a+1) ... (a+n)).
		term := 1 / a
		sum := term
		for n := 1; n < maxIter; n++ {
			term *= x / (a + float64(n))
			sum += term
			if term < sum*1e-17 {
				break
			}
		}
		return 1 - math.Exp(lf)*sum
	}
	// Q(a, x) = e^lf / (x+1-a - 1(1-a)/(x+3-a - 2(2-a)/(x+5-a - ...))),
	// evaluated with the modified Lentz method.
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < maxIter; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-16 {
			break
		}
	}
	return math.Exp(lf + math.Log(h))
}

// NormalTwoSidedP returns the two-sided p-value of a standard normal test
// statistic: 2·P(Z >= |z|) for Z ~ N(0, 1), computed as erfc(|z|/√2) so that
// it keeps full relative precision in the far tail (it underflows to 0 past
// |z| ≈ 38.5). A NaN z returns NaN.
func NormalTwoSidedP(z float64) float64 {
	return math.Erfc(math.Abs(z) / math.Sqrt2)
}

// ChiSquareHomogeneity tests whether two samples' counts over the same ordered
// bins come from one distribution: Pearson's chi-square test of homogeneity on
// the 2×K contingency table whose rows are ref and sample, without continuity
// correction. It returns the statistic, its degrees of freedom and the p-value
// ChiSquareSF(stat, df).
//
// The chi-square approximation needs expected counts that are not small, so
// adjacent bins are merged first: the bins are scanned in order and added up
// until the accumulated bin's expected count in the smaller sample (its column
// total × that sample's total / the grand total) is at least 5, at which point
// it is closed and a new one started; a remainder at the end that falls short
// is added to the last closed bin (or, if none closed, forms the only bin).
// Bins with zero count in both samples contribute nothing and so disappear.
// df is the number of merged bins minus 1.
//
// When either sample's total is 0, or fewer than two bins remain after
// merging, there is nothing to test and it returns 0, 0, 1. Counts must be
// finite and non-negative and the slices of equal length; otherwise it returns
// NaN, 0, NaN. Counts are float64 because they may come from scaled counters;
// the test assumes they are, in effect, counts of independent observations.
func ChiSquareHomogeneity(ref, sample []float64) (stat float64, df int, p float64) {
	if len(ref) != len(sample) {
		return math.NaN(), 0, math.NaN()
	}
	var nr, ns float64
	for i := range ref {
		if !validCount(ref[i]) || !validCount(sample[i]) {
			return math.NaN(), 0, math.NaN()
		}
		nr += ref[i]
		ns += sample[i]
	}
	if nr == 0 || ns == 0 {
		return 0, 0, 1
	}
	grand := nr + ns
	small := math.Min(nr, ns)

	type bin struct{ r, s float64 }
	var bins []bin
	var cur bin
	for i := range ref {
		cur.r += ref[i]
		cur.s += sample[i]
		if (cur.r+cur.s)*small/grand >= 5 {
			bins = append(bins, cur)
			cur = bin{}
		}
	}
	if cur.r+cur.s > 0 {
		if len(bins) == 0 {
			bins = append(bins, cur)
		} else {
			bins[len(bins)-1].r += cur.r
			bins[len(bins)-1].s += cur.s
		}
	}
	df = len(bins) - 1
	if df < 1 {
		return 0, 0, 1
	}
	for _, b := range bins {
		col := b.r + b.s
		er := col * nr / grand
		es := col * ns / grand
		stat += (b.r-er)*(b.r-er)/er + (b.s-es)*(b.s-es)/es
	}
	return stat, df, ChiSquareSF(stat, df)
}

func validCount(c float64) bool {
	return c >= 0 && !math.IsInf(c, 1)
}

// WelchMeanP returns the two-sided p-value for the difference of two means
// from their summary statistics by Welch's t-test: t = (meanA−meanB) /
// sqrt(sdA²/nA + sdB²/nB), where sdA and sdB are sample standard deviations
// and nA, nB the sample sizes, on Student's t with the Welch–Satterthwaite
// degrees of freedom (scipy.stats.ttest_ind_from_stats with
// equal_var=False). The samples are assumed independent and large enough
// for the means to be near normal.
//
// nA < 2 or nB < 2 returns 1. A standard error of 0 returns 1 when the means
// are equal and 0 otherwise. NaN inputs return NaN.
func WelchMeanP(meanA, sdA float64, nA int, meanB, sdB float64, nB int) float64 {
	if nA < 2 || nB < 2 {
		return 1
	}
	diff := meanA - meanB
	se := math.Sqrt(sdA*sdA/float64(nA) + sdB*sdB/float64(nB))
	switch {
	case math.IsNaN(diff) || math.IsNaN(se):
		return math.NaN()
	case se == 0 && diff == 0:
		return 1
	case se == 0:
		return 0
	}
	// Welch–Satterthwaite degrees of freedom: Student's t rather than the
	// normal, which is too liberal in the far tail at small n, where Holm
	// looks once many features are tested.
	va, vb := sdA*sdA/float64(nA), sdB*sdB/float64(nB)
	df := (va + vb) * (va + vb) / (va*va/float64(nA-1) + vb*vb/float64(nB-1))
	return StudentTwoSidedP(diff/se, df)
}

// StudentTwoSidedP is 2·P(T >= |t|) for Student's t distribution with df
// degrees of freedom (df may be fractional): the regularized incomplete
// beta I_{df/(df+t²)}(df/2, 1/2). Infinite df is the normal.
func StudentTwoSidedP(t, df float64) float64 {
	switch {
	case math.IsNaN(t) || math.IsNaN(df) || df <= 0:
		return math.NaN()
	case math.IsInf(df, 1) || df > 1e7:
		return NormalTwoSidedP(t)
	case math.IsInf(t, 0):
		return 0
	}
	x := df / (df + t*t)
	return regIncBeta(df/2, 0.5, x)
}

// regIncBeta is the regularized incomplete beta function I_x(a, b), by the
// continued fraction (modified Lentz), on the side where it converges fast.
func regIncBeta(a, b, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	front := math.Exp(lab - la - lb + a*math.Log(x) + b*math.Log1p(-x))
	if x > (a+1)/(a+b+2) {
		return 1 - front*betaCF(b, a, 1-x)/b
	}
	return front * betaCF(a, b, x) / a
}

func betaCF(a, b, x float64) float64 {
	const tiny = 1e-300
	c, d := 1.0, 1-(a+b)*x/(a+1)
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	h := d
	for m := 1; m <= 10000; m++ {
		fm := float64(m)
		for _, num := range []float64{
			fm * (b - fm) * x / ((a + 2*fm - 1) * (a + 2*fm)),
			-(a + fm) * (a + b + fm) * x / ((a + 2*fm) * (a + 2*fm + 1)),
		} {
			d = 1 + num*d
			if math.Abs(d) < tiny {
				d = tiny
			}
			c = 1 + num/c
			if math.Abs(c) < tiny {
				c = tiny
			}
			d = 1 / d
			h *= d * c
		}
		if math.Abs(d*c-1) < 1e-15 {
			break
		}
	}
	return h
}

// ExceedP returns the exact probability that at least k of n new values
// exceed the maximum of m reference values, when all m+n values are
// exchangeable (for example, independent draws from one continuous
// distribution) and have no ties:
//
//	P(K >= k) = Π_{i=0}^{k-1} (n-i)/(m+n-i) = C(n, k) / C(m+n, k),
//
// the chance that the k largest of the m+n values all fall among the new
// ones. The product is evaluated as the equivalent one with min(k, m) factors,
// multiplied directly while short and summed in log space (with compensated
// summation) otherwise, so the result keeps a relative error near 1e-13.
//
// With ties, counting only new values strictly above the reference maximum
// can only lower K, so the p-value is conservative (too large), never too
// small. k <= 0 returns 1; k > n returns 0; m < 0 or n < 0 returns NaN.
func ExceedP(m, n, k int) float64 {
	switch {
	case m < 0 || n < 0:
		return math.NaN()
	case k <= 0:
		return 1
	case k > n:
		return 0
	}
	// C(n,k)/C(m+n,k) = Π_{t=0}^{L-1} (s+t)/(s+t+c) with s = n-k+1 and
	// {L, c} = {k, m} either way round; take the shorter product.
	s := float64(n - k + 1)
	l, c := k, float64(m)
	if m < k {
		l, c = m, float64(k)
	}
	p := 1.0
	t := 0
	for ; t < l && t < 64 && p > 1e-200; t++ {
		num := s + float64(t)
		p *= num / (num + c)
	}
	if t == l {
		return p
	}
	logp, comp := math.Log(p), 0.0
	for ; t < l; t++ {
		num := s + float64(t)
		den := num + c
		var term float64
		if r := num / den; r < 0.5 {
			term = math.Log(r)
		} else {
			term = math.Log1p(-c / den)
		}
		logp, comp = neumaierAdd(logp, comp, term)
		if logp+comp < -760 { // below the smallest float64: the rest only shrinks it
			return 0
		}
	}
	return math.Exp(logp + comp)
}

// neumaierAdd adds x to the compensated sum (sum, comp).
func neumaierAdd(sum, comp, x float64) (float64, float64) {
	t := sum + x
	if math.Abs(sum) >= math.Abs(x) {
		comp += (sum - t) + x
	} else {
		comp += (x - t) + sum
	}
	return t, comp
}

// FisherExactP returns the two-sided p-value of Fisher's exact test on the 2×2
// table
//
//	[[a, n1-a],
//	 [b, n2-b]],
//
// for example the counts of missing values a and b in two samples of sizes n1
// and n2. Conditional on the margins, the top-left cell is hypergeometric;
// the p-value is the total probability of all tables with the same margins
// whose probability is at most the observed table's probability × (1+1e-7).
// That is the definition of R's fisher.test and of
// scipy.stats.fisher_exact(alternative='two-sided'), whose relative tolerance
// is 1e-14 in SciPy 1.10 instead; the two differ only for tables whose
// probabilities agree to within 1e-7 without being equal.
//
// The probabilities are computed in log space with Loader's saddle-point
// expansion rather than from log-factorials, which would cancel, and only the
// two tails are summed, stopping once the remaining terms are negligible; the
// result agrees with exact rational arithmetic to about 1e-14 for n1+n2 up to
// 2e7 and takes a few milliseconds at most there.
// It returns NaN unless 0 <= a <= n1 and 0 <= b <= n2.
func FisherExactP(a, n1, b, n2 int) float64 {
	if a < 0 || b < 0 || a > n1 || b > n2 {
		return math.NaN()
	}
	h := hypergeom{pop: n1 + n2, succ: a + b, draws: n1}
	lo, hi := max(0, h.draws-(h.pop-h.succ)), min(h.succ, h.draws)
	if lo == hi {
		return 1
	}
	mode := int(int64(h.draws+1) * int64(h.succ+1) / int64(h.pop+2))
	mode = min(max(mode, lo), hi)
	cut := h.logPMF(a) + math.Log1p(1e-7)
	// The pmf rises up to the mode and falls after it, so the included tables
	// are a prefix [lo, left] of [lo, mode] and a suffix [right, hi] of
	// [mode+1, hi].
	left := lo + sort.Search(mode-lo+1, func(i int) bool { return h.logPMF(lo+i) > cut }) - 1
	right := mode + 1 + sort.Search(hi-mode, func(i int) bool { return h.logPMF(mode+1+i) <= cut })
	if left == mode && right == mode+1 {
		return 1
	}
	p := h.tail(left, lo, -1) + h.tail(right, hi, 1)
	return math.Min(1, p)
}

// hypergeom is the distribution of the number of successes in draws draws
// without replacement from a population of pop holding succ successes.
type hypergeom struct{ pop, succ, draws int }

// logPMF returns the log probability of x successes, as R's dhyper computes
// it: a ratio of three binomial probabilities, each evaluated with Loader's
// saddle-point expansion.
func (h hypergeom) logPMF(x int) float64 {
	p := float64(h.draws) / float64(h.pop)
	q := float64(h.pop-h.draws) / float64(h.pop)
	return logBinomRaw(float64(x), float64(h.succ), p, q) +
		logBinomRaw(float64(h.draws-x), float64(h.pop-h.succ), p, q) -
		logBinomRaw(float64(h.draws), float64(h.pop), p, q)
}

// tail sums the pmf from x = from to x = to in steps of step, moving away
// from the mode, and stops once the terms left are below 1e-17 of the sum.
// The terms fall off at least geometrically there, since the pmf is
// log-concave, which bounds what is left by the last term's ratio.
func (h hypergeom) tail(from, to, step int) float64 {
	if (to-from)*step < 0 {
		return 0
	}
	l0 := h.logPMF(from)
	sum, prev := 1.0, 1.0
	for x := from + step; (to-x)*step >= 0; x += step {
		t := math.Exp(h.logPMF(x) - l0)
		sum += t
		if r := t / prev; r < 1 && t*r/(1-r) < 1e-17*sum {
			break
		}
		prev = t
	}
	return math.Exp(l0 + math.Log(sum))
}

// logBinomRaw returns the log of the binomial probability of x successes in n
// trials with success probability p = 1-q, for 0 <= x <= n and 0 < p < 1
// (Loader 2000, "Fast and accurate computation of binomial probabilities").
func logBinomRaw(x, n, p, q float64) float64 {
	switch {
	case x == 0 && n == 0:
		return 0
	case x == 0:
		if p < 0.1 {
			return -bd0(n, n*q) - n*p
		}
		return n * math.Log(q)
	case x == n:
		if q < 0.1 {
			return -bd0(n, n*p) - n*q
		}
		return n * math.Log(p)
	}
	lc := stirlerr(n) - stirlerr(x) - stirlerr(n-x) - bd0(x, n*p) - bd0(n-x, n*q)
	lf := math.Log(2*math.Pi) + math.Log(x) + math.Log1p(-x/n)
	return lc - 0.5*lf
}

// stirlerr returns log(Γ(n+1)) − log(sqrt(2πn) (n/e)^n), the error of
// Stirling's approximation, for n > 0.
func stirlerr(n float64) float64 {
	const (
		s0 = 1.0 / 12
		s1 = 1.0 / 360
		s2 = 1.0 / 1260
		s3 = 1.0 / 1680
		s4 = 1.0 / 1188
	)
	if n <= 15 {
		lg, _ := math.Lgamma(n + 1)
		return lg - (n+0.5)*math.Log(n) + n - 0.5*math.Log(2*math.Pi)
	}
	nn := n * n
	switch {
	case n > 500:
		return (s0 - s1/nn) / n
	case n > 80:
		return (s0 - (s1-s2/nn)/nn) / n
	case n > 35:
		return (s0 - (s1-(s2-s3/nn)/nn)/nn) / n
	}
	return (s0 - (s1-(s2-(s3-s4/nn)/nn)/nn)/nn) / n
}

// bd0 returns the deviance term x·log(x/np) + np − x for x >= 0 and np > 0,
// with a series where x and np are close and the direct form would cancel.
func bd0(x, np float64) float64 {
	if math.Abs(x-np) < 0.1*(x+np) {
		v := (x - np) / (x + np)
		s := (x - np) * v
		ej := 2 * x * v
		v *= v
		for j := 1; j < 1000; j++ {
			ej *= v
			next := s + ej/float64(2*j+1)
			if next == s {
				break
			}
			s = next
		}
		return s
	}
	if x == 0 {
		return np
	}
	lr := math.Log(x / np)
	if math.IsInf(lr, 0) {
		lr = math.Log(x) - math.Log(np)
	}
	return x*lr + np - x
}

// Holm returns the Holm–Bonferroni adjusted p-values of a family of m tests,
// in the order of p, which it leaves unchanged: with the p-values sorted
// ascending as p_(0) <= ... <= p_(m-1), the adjusted value of p_(i) is
// max_{j<=i} min(1, (m−j)·p_(j)). Rejecting every hypothesis whose adjusted
// p-value is <= alpha controls the family-wise error rate at alpha under any
// dependence between the tests.
//
// The p-values should lie in [0, 1]. A NaN sorts last, still counts towards
// m, and comes back NaN without affecting the others.
func Holm(p []float64) []float64 {
	m := len(p)
	order := make([]int, m)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := p[order[i]], p[order[j]]
		return a < b || (!math.IsNaN(a) && math.IsNaN(b))
	})
	adj := make([]float64, m)
	running := 0.0
	for j, i := range order {
		running = math.Max(running, math.Min(1, float64(m-j)*p[i]))
		adj[i] = running
	}
	return adj
}
