#!/usr/bin/python3
"""Reference p-values for the tests in stats/pvalue.go, computed with SciPy.

Writes stats/testdata/pvalues.json, which stats/pvalue_test.go checks the Go
functions against. Run it from the repository root with Debian's Python and
SciPy (apt-get install python3-scipy):

    /usr/bin/python3 scripts/stats_testdata.py

Each section lists the inputs of one Go function and what SciPy gives:

  chi_square_sf           scipy.stats.chi2.sf(x, df)
  normal_two_sided        2 * scipy.stats.norm.sf(|z|)
  chi_square_homogeneity  scipy.stats.chi2_contingency(correction=False) on
                          the table after the bin merging of
                          ChiSquareHomogeneity, reimplemented in merge_bins
  welch_mean              Welch's t-test from the summary statistics (ttest_ind_from_stats, equal_var=False)
  exceed                  scipy.special.comb(n, k) / comb(m+n, k), exactly
  fisher_exact            scipy.stats.fisher_exact(alternative='two-sided'),
                          checked against the sum by definition (tolerance
                          1e-7), which is also stored as "exact" where it is
                          computed in exact integer arithmetic
  holm                    Holm's step-down adjustment, in plain Python
"""

import datetime
import json
import math
import os
import sys

import numpy as np
import scipy
from scipy import special, stats

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "stats", "testdata", "pvalues.json")


def chi_square_sf_cases():
    cases = []
    for df in [1, 2, 3, 4, 5, 7, 10, 20, 50, 100, 1000, 10000, 100000, 1000000]:
        for f in [0.01, 0.1, 0.5, 0.9, 1.0, 1.1, 1.5, 2.0, 5.0]:
            cases.append((df * f, df))
        # Far tails: the x at which the p-value is 1e-10, 1e-50, 1e-100, 1e-300.
        for p in [1e-10, 1e-50, 1e-100, 1e-300]:
            cases.append((float(stats.chi2.isf(p, df)), df))
    cases += [(3.841458820694124, 1), (0.001, 1), (1e-12, 3), (250.0, 1),
              (1450.0, 1), (1600.0, 2), (0.0, 4), (-2.0, 4)]
    return [{"x": x, "df": df, "p": float(stats.chi2.sf(x, df))} for x, df in cases]


def normal_cases():
    zs = [0.0, 0.1, -0.5, 1.0, 1.6448536269514722, 1.959963984540054, -1.96, 2.5,
          3.0, 5.0, 8.0, -10.0, 15.0, 20.0, 30.0, 37.0, 38.0, 39.0]
    return [{"z": z, "p": float(2 * stats.norm.sf(abs(z)))} for z in zs]


def merge_bins(ref, sample):
    """The bin merging of ChiSquareHomogeneity, operation for operation."""
    nr, ns = 0.0, 0.0
    for r, s in zip(ref, sample):
        nr += r
        ns += s
    if nr == 0 or ns == 0:
        return []
    grand = nr + ns
    small = min(nr, ns)
    bins = []
    cr, cs = 0.0, 0.0
    for r, s in zip(ref, sample):
        cr += r
        cs += s
        if (cr + cs) * small / grand >= 5:
            bins.append([cr, cs])
            cr, cs = 0.0, 0.0
    if cr + cs > 0:
        if bins:
            bins[-1][0] += cr
            bins[-1][1] += cs
        else:
            bins.append([cr, cs])
    return bins


def homogeneity_cases():
    rng = np.random.default_rng(20240607)
    cases = [
        # No merging needed.
        ([50, 30, 15, 5], [20, 9, 8, 3]),
        ([100, 100, 100, 100, 100], [20, 25, 18, 22, 15]),
        # Two bins after merging: df = 1, where a continuity correction would matter.
        ([60, 40], [10, 30]),
        ([200, 1, 1, 150], [50, 0, 1, 60]),
        # Sparse bins merged with their neighbours, and empty bins in both.
        ([100, 3, 2, 1, 80, 60, 1, 0, 0, 2], [40, 2, 0, 0, 20, 25, 0, 1, 0, 0]),
        ([0, 0, 30, 0, 40, 0, 0, 50, 0], [0, 0, 10, 0, 12, 0, 0, 30, 0]),
        # The remainder at the end is added to the last closed bin.
        ([40, 40, 40, 1, 1], [10, 10, 10, 1, 0]),
        # The smaller sample is ref, not sample.
        ([10, 12, 8, 15, 5], [300, 280, 310, 290, 320]),
        # Identical proportions: statistic 0, p 1.
        ([30, 60, 90, 120], [10, 20, 30, 40]),
        # Very different distributions: tiny p-values.
        ([500, 300, 200, 100, 50], [50, 100, 200, 300, 500]),
        ([5000, 3000, 2000, 1000, 500], [500, 1000, 2000, 3000, 5000]),
        ([400, 350, 300, 250, 200, 150, 100, 50], [100, 150, 200, 250, 300, 350, 400, 450]),
        # Nothing to test: one bin after merging, an empty sample, one bin.
        ([3, 2], [1, 1]),
        ([10, 20, 30], [0, 0, 0]),
        ([0, 0], [5, 5]),
        ([100], [40]),
        ([], []),
    ]
    # The sample sizes of the calibration test, and many bins (large df).
    p = np.array([0.30, 0.20, 0.15, 0.10, 0.08, 0.06, 0.05, 0.03, 0.02, 0.01])
    for _ in range(3):
        cases.append((rng.multinomial(420, p).tolist(), rng.multinomial(140, p).tolist()))
    p200 = rng.dirichlet(np.ones(200))
    cases.append((rng.multinomial(100000, p200).tolist(), rng.multinomial(40000, p200).tolist()))
    q200 = 0.9 * p200 + 0.1 * rng.dirichlet(np.ones(200))
    cases.append((rng.multinomial(100000, p200).tolist(), rng.multinomial(40000, q200).tolist()))

    out = []
    for ref, sample in cases:
        ref = [float(v) for v in ref]
        sample = [float(v) for v in sample]
        bins = merge_bins(ref, sample)
        if len(bins) < 2:
            stat, df, pv = 0.0, 0, 1.0
        else:
            table = np.array([[b[0] for b in bins], [b[1] for b in bins]])
            stat, pv, df, _ = stats.chi2_contingency(table, correction=False)
            if df != len(bins) - 1:
                sys.exit(f"chi2_contingency dof {df} for {len(bins)} bins")
        out.append({"ref": ref, "sample": sample, "stat": float(stat), "df": int(df), "p": float(pv)})
    return out


def welch_cases():
    cases = [
        (10.0, 2.0, 420, 10.1, 2.2, 140),
        (10.0, 2.0, 420, 10.5, 3.0, 140),
        (0.0, 1.0, 50, 0.0, 1.0, 50),
        (-3.2, 0.5, 1000, -3.0, 0.7, 900),
        (100.0, 15.0, 30, 90.0, 20.0, 25),
        (5.0, 1.0, 10000, 4.0, 1.0, 10000),  # z about 70: underflows
        (5.0, 1.0, 1000, 4.2, 1.0, 1000),   # z about 18: p about 1e-71
        (1.0, 0.0, 10, 1.0, 0.0, 10),       # zero standard error, equal means
        (1.0, 0.0, 10, 2.0, 0.0, 10),       # zero standard error, different means
        (1.0, 1.0, 1, 2.0, 1.0, 10),        # nA < 2
    ]
    out = []
    for ma, sa, na, mb, sb, nb in cases:
        if na < 2 or nb < 2:
            p = 1.0
        else:
            se = math.sqrt(sa * sa / na + sb * sb / nb)
            if se == 0:
                p = 1.0 if ma == mb else 0.0
            else:
                p = float(stats.ttest_ind_from_stats(ma, sa, na, mb, sb, nb, equal_var=False).pvalue)
        out.append({"mean_a": ma, "sd_a": sa, "n_a": na, "mean_b": mb, "sd_b": sb, "n_b": nb, "p": p})
    return out


def exceed_cases():
    cases = [(420, 140, k) for k in [0, 1, 2, 3, 5, 10, 20, 50, 140, 141]]
    cases += [(19, 1, 1), (99, 1, 1), (0, 10, 10), (5, 0, 1), (1, 5, 5),
              (1000, 1000, 10), (1000, 1000, 100), (1000, 1000, 500),
              (1000, 1000, 900), (10, 10000, 5000), (200, 100000, 30000),
              (100000, 100, 3), (100000, 100000, 50000), (50, 2000000, 1999000),
              (5000, 5000, 800)]
    out = []
    for m, n, k in cases:
        if k <= 0:
            p = 1.0
        elif k > n:
            p = 0.0
        else:
            # Python's int / int is correctly rounded, however large the ints.
            p = special.comb(n, k, exact=True) / special.comb(m + n, k, exact=True)
        out.append({"m": m, "n": n, "k": k, "p": p})
    return out


def fisher_by_definition(a, n1, b, n2):
    """The two-sided p-value by definition, with R's tolerance 1e-7.

    Exact in integer arithmetic where the column total a+b is small enough
    (the table probabilities are comb(n1, x) comb(n2, K-x) / comb(N, K));
    otherwise summed from scipy.stats.hypergeom.pmf. Returns (p, exact).
    """
    n, k = n1 + n2, a + b
    lo, hi = max(0, k - n2), min(k, n1)
    if k <= 2000:
        w = {x: math.comb(n1, x) * math.comb(n2, k - x) for x in range(lo, hi + 1)}
        limit = w[a] * (10**7 + 1)
        total = sum(v for v in w.values() if v * 10**7 <= limit)
        # Python's int / int is correctly rounded, however large the ints.
        return min(1.0, total / math.comb(n, k)), True
    hg = stats.hypergeom(n, k, n1)
    pmf = hg.pmf(np.arange(lo, hi + 1))
    return float(min(1.0, pmf[pmf <= hg.pmf(a) * (1 + 1e-7)].sum())), False


def fisher_cases():
    cases = [
        (8, 10, 1, 6), (3, 10, 7, 10), (2, 10, 8, 10), (5, 10, 5, 10),
        (0, 100, 0, 100), (0, 1000, 10, 1000), (5, 20, 15, 20), (3, 420, 10, 140),
        (12, 420, 4, 140), (0, 0, 3, 10), (10, 10, 20, 20), (1, 1, 0, 1),
        (0, 10000, 200, 10000), (30, 1000000, 60, 1000000), (25, 300000, 40, 100000),
        (100, 10000000, 150, 10000000), (0, 10000000, 40, 10000000),
        (5000, 100000, 5400, 100000), (400000, 1000000, 401000, 1000000),
        (50, 60, 10, 70),
    ]
    out = []
    for a, n1, b, n2 in cases:
        p = float(stats.fisher_exact([[a, n1 - a], [b, n2 - b]], alternative="two-sided")[1])
        direct, exact = fisher_by_definition(a, n1, b, n2)
        # SciPy 1.10 sums its tails from hypergeom.cdf and .sf, which lose
        # about 1e-9 relative at n = 1e7; 1e-8 is what the Go test allows.
        if abs(p - direct) > 1e-8 * direct:
            sys.exit(f"fisher_exact {p} and the sum by definition {direct} differ for {(a, n1, b, n2)}")
        case = {"a": a, "n1": n1, "b": b, "n2": n2, "p": p}
        if exact:
            case["exact"] = direct
        out.append(case)
    return out


def holm(p):
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adj = [0.0] * m
    running = 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (m - j) * p[i]))
        adj[i] = running
    return adj


def holm_cases():
    rng = np.random.default_rng(7)
    cases = [
        [],
        [0.03],
        [0.01, 0.04, 0.03, 0.005],
        [0.02, 0.02, 0.02, 0.5],
        [0.9, 0.8, 0.001, 0.04, 0.3],
        [0.2, 0.3, 0.4, 0.6],
        [1e-300, 1e-50, 0.5, 1.0],
        rng.uniform(size=50).tolist(),
        (rng.uniform(size=20) ** 4).tolist(),
    ]
    return [{"p": c, "adjusted": holm(c)} for c in cases]


def main():
    data = {
        "source": (f"scripts/stats_testdata.py with SciPy {scipy.__version__}, NumPy {np.__version__}, "
                   f"Python {sys.version.split()[0]}, on {datetime.date.today().isoformat()}"),
        "chi_square_sf": chi_square_sf_cases(),
        "normal_two_sided": normal_cases(),
        "chi_square_homogeneity": homogeneity_cases(),
        "welch_mean": welch_cases(),
        "exceed": exceed_cases(),
        "fisher_exact": fisher_cases(),
        "holm": holm_cases(),
    }
    # One case a line, so that a diff shows which cases changed.
    parts = []
    for key, value in data.items():
        if isinstance(value, list):
            rows = ",\n".join("  " + json.dumps(c) for c in value)
            parts.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value)}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("{\n" + ",\n".join(parts) + "\n}\n")


if __name__ == "__main__":
    main()
