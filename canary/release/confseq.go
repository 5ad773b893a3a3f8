package release

import "math"

// Confidence sequences for a Bernoulli rate, the statistics behind a canary
// decision that is looked at on every tick: an error rate is compared with
// a threshold (or with the stable version's rate) again and again as
// traffic accumulates, so a fixed-n confidence interval, checked at every
// tick, would be wrong far more often than its alpha. A confidence
// sequence holds at every n at once.
//
// The method is the beta-binomial mixture martingale (Robbins 1970; Howard,
// Ramdas, McAuliffe and Sekhon 2021, "Time-uniform, nonparametric,
// nonasymptotic confidence sequences"; the conjugate mixture of Lindon et
// al. 2022, "Rapid regression detection in software deployments through
// sequential testing"). For a Beta(a, b) mixing distribution and k events
// in n trials,
//
//	log M_n(p) = lnB(a+k, b+n-k) - lnB(a, b) - k ln p - (n-k) ln(1-p)
//
// is the log of a nonnegative martingale with M_0 = 1 under the true rate
// p, so Ville's inequality gives P(exists n: M_n(p) >= 1/alpha) <= alpha,
// and {p : log M_n(p) < ln(1/alpha)} is a (1-alpha) confidence sequence:
// it may be looked at after every trial and stopped on whenever. log M_n is
// convex in p and at most 0 at k/n (the mixture is at most the maximum
// likelihood), so the set is an interval [lo, hi] around k/n.
//
// The mixing distribution is Beta(1, (1-prior)/prior), the prior's mean
// being the rate the test is about: it spends the power near that rate.
// Any fixed choice keeps the guarantee; a choice made after seeing the
// data does not.
//
// What it costs: with no errors at all, hi falls to a threshold of 0.01
// (prior 0.01) after 971 requests at alpha 0.01/16 and 1047 at 0.01/32,
// to 0.05 after 191 and 206, some 30% more than a single fixed-n test
// would need (TestRateBoundsSampleSizes has the table).

const (
	// The prior is clamped to [minPrior, maxPrior]; maxPrior, 0.5, is the
	// uniform mixing distribution Beta(1, 1).
	minPrior = 1e-4
	maxPrior = 0.5
	// boundTol is the step, in p, below which the search for an end checks
	// whether it is done: whether the exact end is within certTol inwards
	// (the search converges from outside, quadratically).
	boundTol = 1e-14
	certTol  = 1e-12
	// maxSteps caps the search. It takes about 5 Newton steps an end, up to
	// about 30 for alpha within a few ulps of 1, where the ends close in on
	// the minimum of log M_n and convergence turns linear.
	maxSteps = 200
)

// RateBounds is a (1-alpha) confidence sequence for the rate p of a Bernoulli
// stream after k events in n trials: with probability at least 1-alpha the
// true p lies in [lo, hi] at every n simultaneously, so a canary may check
// it after every trial (or tick) and act as soon as it excludes a threshold,
// without inflating the error rate. Calling it with a different alpha,
// prior or stream is a different sequence, with its own guarantee.
//
// The interval is {p : log M_n(p) < ln(1/alpha)} for the beta-binomial
// mixture martingale M_n with mixing distribution Beta(1, (1-prior)/prior)
// (see the comment at the top of this file); its ends are found to about
// 1e-12 absolute, erring outwards. prior is the rate the decision is about
// (the threshold, e.g. 0.01): the sequence is tightest around it. It is
// clamped to [1e-4, 0.5] (NaN counts as 0.5, the uniform mixture).
//
// Every input is answered, without panicking: n <= 0 gives (0, 1); k is
// clamped to [0, n]; alpha outside (0, 1) is taken as the nearest valid
// value, the smallest positive float64 for alpha <= 0 (an interval nearly
// as wide as [0, 1]) and the largest float64 below 1 for alpha >= 1 (the
// narrowest, about {p : M_n(p) < 1}), and NaN as the smallest, the most
// conservative.
// k = 0 gives lo = 0 and k = n gives hi = 1, and always lo <= k/n <= hi.
//
// The ends are within about 1e-12 of the exact ones, outwards if at all,
// for n up to about 10^6 (10^7 at rates of a few percent); beyond, the
// rounding of log M_n's terms, each of the order of n, grows the error like
// sqrt(n) ln n, to about 1e-10 at n = 10^9.
func RateBounds(k, n int64, prior, alpha float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	k = min(max(k, 0), n)
	a, b := mixing(prior)
	level := -math.Log(clampAlpha(alpha)) // ln(1/alpha) > 0
	kf, mf, nf := float64(k), float64(n-k), float64(n)
	// c = lnB(a+k, b+n-k) - lnB(a, b), the log of the mixture's
	// likelihood (<= 0), as three log-gamma ratios rather than six
	// log-gammas: for a small prior b is large, and lnB(a, b) would be the
	// small difference of large log-gammas.
	c := lnGammaRatio(a, kf) + lnGammaRatio(b, mf) - lnGammaRatio(a+b, nf)

	pHat := kf / nf
	if k > 0 && k < n && !(outerH(c-level, mf, kf, math.Log1p(kf/mf)) < 0) {
		// Only for alpha a rounding error below 1: the set is {k/n}.
		return pHat, pHat
	}
	lo, hi = 0, 1
	if k > 0 {
		lo = math.Exp(-outerRoot(c-level, kf, mf))
	}
	if k < n {
		hi = -math.Expm1(-outerRoot(c-level, mf, kf))
	}
	return min(lo, pHat), max(hi, pHat)
}

// DiffBounds bounds pc − ps from two independent streams, each with its own
// confidence sequence at alpha/2 (a union bound), so the pair holds with 1−alpha.
// The candidate has kc events in nc trials and the stable version ks in ns;
// both sequences use the same prior (see RateBounds, which also says how
// out-of-range arguments are taken; alpha is clamped before it is halved).
// lo = loC − hiS and hi = hiC − loS, in [-1, 1]: lo > 0 says, with that
// confidence and at any time, that the candidate's rate is the higher.
func DiffBounds(kc, nc, ks, ns int64, prior, alpha float64) (lo, hi float64) {
	half := clampAlpha(alpha) / 2
	loC, hiC := RateBounds(kc, nc, prior, half)
	loS, hiS := RateBounds(ks, ns, prior, half)
	return loC - hiS, hiC - loS
}

// Each end is found in its own variable, x = -ln(1-p) for hi and
// x = -ln p for lo, in which log M_n(p) - ln(1/alpha) is
//
//	h(x) = c' + s x - r ln(1 - e^-x),   h'(x) = s - r/(e^x - 1),
//
// with c' = c - ln(1/alpha), (s, r) = (n-k, k) for hi and (k, n-k) for
// lo: convex, smallest at the x of k/n, xHat = ln(1 + r/s), increasing
// beyond, and asymptotically the line c' + s x, which is below it. So the
// line's root (-c')/s is at or beyond the end, and Newton's method started
// there moves monotonically inwards to the end, staying beyond it; for
// k = 0 (or k = n) h is that line and the start is the end. The distance
// of two x's in p is that of their e^-x, either way.

// outerH is h(x).
func outerH(c, s, r, x float64) float64 {
	h := c + s*x
	if r > 0 {
		h -= r * math.Log(-math.Expm1(-x))
	}
	return h
}

// outerRoot is h's root beyond xHat, by Newton's method from the line's
// root. It stops once a step moves p by at most boundTol and h is at most
// 0 certTol inwards, in p, which certifies that the iterate is within
// certTol of the root, outwards.
func outerRoot(c, s, r float64) float64 {
	xHat := math.Log1p(r / s)
	x := max(-c/s, xHat)
	for range maxSteps {
		hx := outerH(c, s, r, x)
		if !(hx > 0) { // at the root to rounding (or NaN: stop)
			return x
		}
		next := max(x-hx/(s-r/math.Expm1(x)), xHat)
		if next == x {
			return x
		}
		moved := math.Abs(math.Exp(-next) - math.Exp(-x))
		x = next
		if moved <= boundTol {
			in := -math.Log(math.Exp(-x) + certTol)
			if in <= xHat || !(outerH(c, s, r, in) > 0) {
				return x
			}
		}
	}
	return x
}

// mixing is the Beta(a, b) mixing distribution for prior: mean prior,
// a = 1.
func mixing(prior float64) (a, b float64) {
	if math.IsNaN(prior) {
		prior = maxPrior
	}
	prior = min(max(prior, minPrior), maxPrior)
	return 1, (1 - prior) / prior
}

// clampAlpha is alpha moved into (0, 1), to the nearest float64 there; NaN
// becomes the smallest, the widest interval.
func clampAlpha(alpha float64) float64 {
	switch {
	case math.IsNaN(alpha) || alpha <= 0:
		return math.SmallestNonzeroFloat64
	case alpha >= 1:
		return math.Nextafter(1, 0)
	}
	return alpha
}

// lnGammaRatio is ln Γ(x+m) − ln Γ(x), for x > 0 and m >= 0. Below
// stirlingFrom it is the difference of math.Lgamma's, where ln Γ(x) is
// below ln Γ(20) ≈ 39.3 and loses little; from there on it is Stirling's
// series differenced by hand,
//
//	(x-1/2) ln(1+m/x) + m (ln(x+m) - 1) + s(x+m) - s(x),
//
// which has no cancellation between large terms for a large x and a small
// m (a Beta(1, 9999) mixture after a few trials).
func lnGammaRatio(x, m float64) float64 {
	if m == 0 {
		return 0
	}
	if x < stirlingFrom {
		l1, _ := math.Lgamma(x + m)
		l0, _ := math.Lgamma(x)
		return l1 - l0
	}
	y := x + m
	return (x-0.5)*math.Log1p(m/x) + m*(math.Log(y)-1) + (stirlingRest(y) - stirlingRest(x))
}

// stirlingFrom is where lnGammaRatio starts to use Stirling's series, whose
// truncation, the first term left out, 691/(360360 x^11), is below 1e-17
// from 20 on.
const stirlingFrom = 20

// stirlingRest is ln Γ(x) − ((x−1/2) ln x − x + ln(2π)/2) for x >= 20,
// by its asymptotic series.
func stirlingRest(x float64) float64 {
	r := 1 / x
	r2 := r * r
	return r * (1.0/12 - r2*(1.0/360-r2*(1.0/1260-r2*(1.0/1680-r2*(1.0/1188)))))
}
