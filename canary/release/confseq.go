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

const (
	// The prior is clamped to [minPrior, maxPrior]; maxPrior, 0.5, is the
	// uniform mixing distribution Beta(1, 1).
	minPrior = 1e-4
	maxPrior = 0.5
	// boundTol is the step, in p, below which the root search checks
	// whether it is done: whether the exact end is within certTol inwards
	// (the search converges from outside, quadratically).
	boundTol = 1e-14
	certTol  = 1e-12
	// maxSteps caps the search; it takes fewer than 10 steps for any but
	// alpha next to 1, where convergence is linear and takes at most ~60.
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
// as wide as [0, 1]) and the largest float64 below 1 for alpha >= 1 (an
// interval next to k/n), and NaN as the smallest, the most conservative.
// k = 0 gives lo = 0 and k = n gives hi = 1, and always lo <= k/n <= hi.
//
// The accuracy is that of math.Lgamma, whose absolute error in
// lnB(a+k, b+n-k) grows like n ln n times the float64 epsilon: the ends are
// within 1e-12 for n up to about 10^7 and within 1e-10 up to about 10^9.
func RateBounds(k, n int64, prior, alpha float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	k = min(max(k, 0), n)
	a, b := mixing(prior)
	level := -math.Log(clampAlpha(alpha)) // ln(1/alpha) > 0
	kf, mf, nf := float64(k), float64(n-k), float64(n)
	c := lnBeta(a+kf, b+mf) - lnBeta(a, b) // log of the mixture's likelihood, <= 0

	// In the log-odds t = ln(p/(1-p)), log M_n(p) - ln(1/alpha) is
	//	g(t) = c - k t + n softplus(t) - level,  g'(t) = n sigmoid(t) - k,
	// convex on the whole real line, smallest at the log-odds of k/n, and
	// asymptotically linear at both ends, where Newton's method is exact.
	g := func(t float64) float64 { return c - kf*t + nf*softplus(t) - level }
	dg := func(t float64) float64 { return nf*sigmoid(t) - kf }

	pHat := kf / nf
	tHat := math.Inf(-1) // log-odds of k/n; -Inf when k = 0, +Inf when k = n
	switch {
	case k == n:
		tHat = math.Inf(1)
	case k > 0:
		tHat = math.Log(kf / mf)
		if !(g(tHat) < 0) {
			// Only for alpha a rounding error below 1: the set is {k/n}.
			return pHat, pHat
		}
	}

	lo, hi = 0, 1
	if k > 0 {
		// g <= c - k t - level, whose root (c-level)/k is at or below lo:
		// a start on the outside, from which Newton's iterates increase
		// monotonically to the root (g is convex and decreasing there).
		lo = sigmoid(outerRoot(g, dg, (c-level)/kf, tHat, true))
	}
	if k < n {
		// g >= c + (n-k) t - level, whose root is at or above hi.
		hi = sigmoid(outerRoot(g, dg, (level-c)/mf, tHat, false))
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

// outerRoot is the root of the convex g on one side of tHat, the
// log-odds where g is smallest, found by Newton's method from t0, a point
// at or beyond the root (below it for lo, up = true; above it for hi):
// from there the iterates move monotonically to the root and stay beyond
// it. It stops once a step moves p by at most boundTol and g changes sign
// within certTol of the iterate, inwards, which certifies that the iterate
// is within certTol of the root, outwards.
func outerRoot(g, dg func(float64) float64, t0, tHat float64, up bool) float64 {
	inward := func(t float64) float64 { return min(t, tHat) }
	step := certTol
	if !up {
		inward = func(t float64) float64 { return max(t, tHat) }
		step = -certTol
	}
	t := inward(t0)
	for range maxSteps {
		gt := g(t)
		if !(gt > 0) { // at the root to rounding (or NaN: stop)
			return t
		}
		next := inward(t - gt/dg(t))
		if next == t {
			return t
		}
		moved := math.Abs(sigmoid(next) - sigmoid(t))
		t = next
		if moved <= boundTol {
			q := sigmoid(t) + step
			if q <= 0 || q >= 1 || (up && q >= sigmoid(tHat)) || (!up && q <= sigmoid(tHat)) || !(g(math.Log(q/(1-q))) > 0) {
				return t
			}
		}
	}
	return t
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

// lnBeta is ln B(x, y) for x, y > 0.
func lnBeta(x, y float64) float64 {
	lx, _ := math.Lgamma(x)
	ly, _ := math.Lgamma(y)
	lxy, _ := math.Lgamma(x + y)
	return lx + ly - lxy
}

// softplus is ln(1 + e^t), without overflow: -ln(1-p) at log-odds t.
func softplus(t float64) float64 {
	if t > 0 {
		return t + math.Log1p(math.Exp(-t))
	}
	return math.Log1p(math.Exp(t))
}

// sigmoid is 1/(1 + e^-t), the p of log-odds t.
func sigmoid(t float64) float64 {
	if t >= 0 {
		return 1 / (1 + math.Exp(-t))
	}
	e := math.Exp(t)
	return e / (1 + e)
}
