#!/usr/bin/python3
"""Reference values for canary/release's RateBounds and DiffBounds.

Writes canary/release/testdata/confseq.json: for a set of (k, n, prior,
alpha) cases, the ends of the beta-binomial mixture confidence sequence

    {p : log M_n(p) < ln(1/alpha)},
    log M_n(p) = betaln(a+k, b+n-k) - betaln(a, b) - k ln p - (n-k) ln(1-p),

with a = 1, b = (1-prior)/prior and prior clamped to [1e-4, 0.5], computed
independently of the Go code: in p itself (the Go code works in log-odds),
with scipy.special.betaln and scipy.optimize.brentq. lo = 0 when k = 0 and
hi = 1 when k = n; n = 0 gives (0, 1).

Run from the repository root with Debian's Python and SciPy
(apt-get install python3-scipy):

    /usr/bin/python3 scripts/confseq_testdata.py
"""

import datetime
import json
import math
import os
import platform
import sys

import scipy
from scipy.optimize import brentq
from scipy.special import betaln

OUT = os.path.join("canary", "release", "testdata", "confseq.json")

# (k, n, prior, alpha): small and large n, rates near and far from the
# prior, both ends of k, the priors the canary uses, the clamped priors and
# alphas from 0.5 down to the Bonferroni-split ones.
CASES = [
    (0, 1, 0.5, 0.05),
    (1, 1, 0.5, 0.05),
    (0, 1, 0.01, 0.05),
    (1, 1, 0.01, 0.05),
    (1, 2, 0.5, 0.05),
    (0, 10, 0.05, 0.05),
    (3, 10, 0.05, 0.05),
    (10, 10, 0.05, 0.05),
    (5, 10, 0.5, 0.5),
    (2, 50, 0.05, 0.01),
    (0, 100, 0.01, 0.05),
    (1, 100, 0.01, 0.05),
    (50, 100, 0.5, 0.05),
    (99, 100, 0.01, 0.05),
    (0, 300, 0.01, 0.01 / 16),
    (0, 1000, 0.01, 0.01 / 16),
    (0, 1000, 0.05, 0.01 / 32),
    (3, 1000, 0.01, 0.01 / 16),
    (10, 1000, 0.01, 0.05),
    (25, 1000, 0.01, 0.05),
    (60, 1000, 0.05, 0.01 / 32),
    (300, 1000, 0.3, 0.1),
    (999, 1000, 0.05, 0.05),
    (1000, 1000, 0.01, 0.05),
    (7, 2500, 0.002, 0.05),
    (0, 5000, 1e-4, 0.05),
    (1, 5000, 1e-5, 0.05),  # prior clamped to 1e-4
    (40, 5000, 0.9, 0.05),  # prior clamped to 0.5
    (120, 10000, 0.01, 1e-6),
    (500, 10000, 0.05, 0.01 / 16),
    (5000, 10000, 0.5, 1e-3),
    (9990, 10000, 0.01, 0.05),
    (0, 100000, 0.01, 0.05),
    (1, 100000, 0.01, 0.05),
    (1000, 100000, 0.01, 0.01 / 32),
    (5050, 100000, 0.05, 0.01 / 16),
    (37, 250000, 1e-4, 0.2),
    (10000, 1000000, 0.01, 0.05),
    (3, 1000000, 0.05, 0.01),
    (123456, 1000000, 0.1, 1e-9),
    (50000, 10000000, 0.005, 0.05),
    (2, 7, 0.25, 0.95),
]

# (kc, nc, ks, ns, prior, alpha) for DiffBounds: each rate's sequence at
# alpha/2, lo = loC - hiS, hi = hiC - loS.
DIFF_CASES = [
    (30, 1000, 10, 1000, 0.01, 0.01 / 16),
    (0, 200, 5, 5000, 0.05, 0.05),
    (150, 10000, 100, 90000, 0.01, 0.01 / 32),
    (0, 0, 3, 100, 0.05, 0.05),
]


def mixing(prior):
    prior = min(max(prior, 1e-4), 0.5)
    return 1.0, (1.0 - prior) / prior


def bounds(k, n, prior, alpha):
    if n == 0:
        return 0.0, 1.0
    a, b = mixing(prior)
    level = math.log(1.0 / alpha)
    c = betaln(a + k, b + n - k) - betaln(a, b)

    def g(p):
        # k ln p is 0 for k = 0 (at p = 0 too), and likewise (n-k) ln(1-p).
        v = c - level
        if k > 0:
            v -= k * math.log(p)
        if k < n:
            v -= (n - k) * math.log1p(-p)
        return v

    phat = k / n
    lo, hi = 0.0, 1.0
    if k > 0:
        if g(phat) >= 0:
            raise ValueError("empty set at k/n for %r" % ((k, n, prior, alpha),))
        left = phat / 2
        while left > 0 and g(left) <= 0:
            left /= 2
        if left > 0:
            lo = brentq(g, left, phat, xtol=1e-15, rtol=4 * sys.float_info.epsilon, maxiter=500)
        # else the end is below the smallest float64: lo is 0.
    if k < n:
        right = phat + (1 - phat) / 2
        while right < 1 and g(right) <= 0:
            right = max(1 - (1 - right) / 2, math.nextafter(right, 2))
        if right < 1:
            hi = brentq(g, phat, right, xtol=1e-15, rtol=4 * sys.float_info.epsilon, maxiter=500)
        # else the end is above the largest float64 below 1: hi is 1 (to
        # 1.1e-16; for (99, 100, 0.01, 0.05) it is 1 - 1e-59 or so).
    return lo, hi


def main():
    cases = []
    for k, n, prior, alpha in CASES:
        lo, hi = bounds(k, n, prior, alpha)
        cases.append({"k": k, "n": n, "prior": prior, "alpha": alpha, "lo": lo, "hi": hi})
    diffs = []
    for kc, nc, ks, ns, prior, alpha in DIFF_CASES:
        loc, hic = bounds(kc, nc, prior, alpha / 2)
        los, his = bounds(ks, ns, prior, alpha / 2)
        diffs.append({
            "kc": kc, "nc": nc, "ks": ks, "ns": ns, "prior": prior, "alpha": alpha,
            "lo": loc - his, "hi": hic - los,
        })
    doc = {
        "source": {
            "script": "scripts/confseq_testdata.py",
            "scipy": scipy.__version__,
            "python": platform.python_version(),
            "date": datetime.date.today().isoformat(),
            "method": "beta-binomial mixture confidence sequence, a = 1, b = (1-prior)/prior, "
                      "ends by scipy.optimize.brentq on betaln(a+k, b+n-k) - betaln(a, b) "
                      "- k ln p - (n-k) ln(1-p) - ln(1/alpha)",
        },
        "cases": cases,
        "diff_cases": diffs,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    # One case a line, so that a change reads as a diff of cases.
    text = "{\n"
    text += ' "source": ' + json.dumps(doc["source"], indent=1).replace("\n", "\n ") + ",\n"
    for key in ("cases", "diff_cases"):
        rows = ",\n".join("  " + json.dumps(c) for c in doc[key])
        text += ' "%s": [\n%s\n ]%s\n' % (key, rows, "," if key == "cases" else "")
    text += "}\n"
    json.loads(text)  # well-formed
    with open(OUT, "w") as f:
        f.write(text)
    print("wrote %d cases and %d diff cases to %s" % (len(cases), len(diffs), OUT))


if __name__ == "__main__":
    main()
