#!/usr/bin/env python3
"""Writes tests/fixtures/stats/*.json: reference values for src/stats.rs, computed once by scipy.

Run from the repository root with a Python that has scipy and numpy:
    python scripts/scipy_fixtures.py
The inputs are drawn from a seeded numpy generator, so rerunning writes the same files (given the
same scipy version, recorded in each file). The Rust tests (src/stats.rs, tests/it/stats_scipy.rs)
compare to 1e-6, exact-test p-values to 1e-9.

The scipy calls mirror the Rust defaults exactly:
  * t-tests: ttest_rel, ttest_ind(equal_var=False), two-sided.
  * Wilcoxon: wilcoxon(d) with scipy's defaults (zero_method='wilcox', correction=False,
    method='auto': exact without ties/zeros for n <= 50; exact sign-flip permutation when there
    are ties or zeros and n <= 13; normal approximation with tie correction otherwise).
  * Mann-Whitney: mannwhitneyu(x, y) defaults (use_continuity=True, method='auto': exact when
    min(n1, n2) <= 8 and no ties, else normal approximation with tie correction); the effect size
    is U1 / (n1 n2) = P(X > Y) + 0.5 P(X = Y).
  * McNemar: exact binomial (binomtest(min(b, c), b + c, 0.5)) when b + c < 25, else chi-square
    with continuity correction ((|b - c| - 1)^2 / (b + c), 1 df).
  * Paired permutation test: permutation_test on the differences with the mean as statistic,
    permutation_type='samples' (sign flips), n_resamples=inf (exact) for n <= 20.
  * Holm: computed here with numpy (scipy has no Holm; same step-down as statsmodels).
  * Bootstrap: scipy's percentile bootstrap with many resamples; the Rust side uses its own
    seeded generator, so that comparison is loose (documented in the test).
"""
import json
import math
import os

import numpy as np
import scipy
from scipy import stats

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "stats")
rng = np.random.default_rng(20241129)


def dump(name, cases):
    path = os.path.join(OUT, f"{name}.json")
    with open(path, "w") as f:
        json.dump({"scipy": scipy.__version__, "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {path} ({len(cases)} cases)")


def fl(a):
    return [float(v) for v in a]


def paired_samples():
    """(name, x, y) pairs covering the code paths."""
    out = []
    for n in (5, 9, 12, 30, 50, 51, 200):
        x = rng.normal(0.6, 0.2, n)
        y = x + rng.normal(0.05, 0.1, n)
        out.append((f"continuous_n{n}", x, y))
    # Ties and zeros in the differences (ratings on a 0-3 scale).
    for n in (8, 13, 14, 40, 120):
        x = rng.integers(0, 4, n).astype(float)
        y = np.clip(x + rng.integers(-1, 3, n), 0, 3).astype(float)
        if np.all(x == y):
            y[0] = (y[0] + 1) % 4
        out.append((f"ratings_n{n}", x, y))
    # Ties among |d| but no zeros.
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    y = x + np.array([0.5, -0.5, 1.0, 1.0, 2.0, -1.0, 0.5, 1.5, 2.0, 3.0])
    out.append(("ties_no_zeros_n10", x, y))
    return out


def ttests():
    rel, welch = [], []
    for name, x, y in paired_samples():
        r = stats.ttest_rel(x, y)
        rel.append({"name": name, "x": fl(x), "y": fl(y),
                    "statistic": float(r.statistic), "df": float(r.df), "pvalue": float(r.pvalue)})
    for n1, n2 in ((3, 3), (3, 5), (10, 7), (40, 60)):
        x = rng.normal(0.5, 0.1, n1)
        y = rng.normal(0.55, 0.3, n2)
        r = stats.ttest_ind(x, y, equal_var=False)
        welch.append({"name": f"welch_{n1}_{n2}", "x": fl(x), "y": fl(y),
                      "statistic": float(r.statistic), "df": float(r.df), "pvalue": float(r.pvalue)})
    dump("ttest_rel", rel)
    dump("ttest_welch", welch)


def wilcoxon():
    cases = []
    for name, x, y in paired_samples():
        d = x - y
        if np.all(d == 0):
            continue
        r = stats.wilcoxon(x, y)
        nz = d[d != 0]
        ranks_ties = len(np.unique(np.abs(nz))) < len(nz)
        if not (ranks_ties or len(nz) < len(d)) and len(d) <= 50:
            method = "exact"
        elif len(d) <= 13:
            method = "permutation"
        else:
            method = "asymptotic"
        cases.append({"name": name, "x": fl(x), "y": fl(y), "method": method,
                      "statistic": float(r.statistic), "pvalue": float(r.pvalue)})
    dump("wilcoxon", cases)


def mannwhitney():
    cases = []
    shapes = ((3, 4), (5, 5), (8, 20), (9, 9), (30, 25))
    for n1, n2 in shapes:
        x = rng.normal(0.5, 0.1, n1)
        y = rng.normal(0.45, 0.1, n2)
        cases.append((f"continuous_{n1}_{n2}", x, y))
    for n1, n2 in ((4, 6), (20, 30)):
        x = rng.integers(0, 4, n1).astype(float)
        y = rng.integers(0, 4, n2).astype(float)
        cases.append((f"ties_{n1}_{n2}", x, y))
    out = []
    for name, x, y in cases:
        r = stats.mannwhitneyu(x, y)
        ties = len(np.unique(np.concatenate([x, y]))) < len(x) + len(y)
        method = "asymptotic" if (len(x) > 8 and len(y) > 8) or ties else "exact"
        gt = sum(1.0 for a in x for b in y if a > b)
        eq = sum(1.0 for a in x for b in y if a == b)
        poi = (gt + 0.5 * eq) / (len(x) * len(y))
        out.append({"name": name, "x": fl(x), "y": fl(y), "method": method,
                    "u1": float(r.statistic), "pvalue": float(r.pvalue),
                    "prob_improvement": poi})
    dump("mannwhitneyu", out)


def mcnemar():
    out = []
    for b, c in ((0, 0), (0, 1), (3, 9), (10, 4), (12, 12), (0, 24), (20, 5), (30, 18), (100, 140)):
        n = b + c
        if n == 0:
            method, stat, p = "exact", 0.0, 1.0
        elif n < 25:
            method = "exact"
            stat = float(min(b, c))
            p = float(stats.binomtest(min(b, c), n, 0.5).pvalue)
        else:
            method = "chi2"
            stat = (abs(b - c) - 1.0) ** 2 / n
            p = float(stats.chi2.sf(stat, 1))
        out.append({"name": f"b{b}_c{c}", "b": b, "c": c, "method": method,
                    "statistic": stat, "pvalue": p})
    dump("mcnemar", out)


def permutation():
    out = []
    for name, x, y in paired_samples():
        d = x - y
        if len(d) > 20:
            continue
        r = stats.permutation_test((d,), lambda d, axis: np.mean(d, axis=axis),
                                   permutation_type="samples", vectorized=True,
                                   n_resamples=np.inf)
        out.append({"name": name, "x": fl(x), "y": fl(y),
                    "statistic": float(r.statistic), "pvalue": float(r.pvalue)})
    dump("permutation", out)


def holm_adjust(p):
    p = np.asarray(p, float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def holm():
    out = []
    families = [
        [0.01, 0.04, 0.03, 0.005],
        [0.5],
        [0.001, 0.001, 0.2, 0.9, 0.04],
        list(rng.uniform(0, 0.1, 8)),
    ]
    for k, ps in enumerate(families):
        out.append({"name": f"family{k}", "pvalues": fl(ps), "adjusted": fl(holm_adjust(ps))})
    dump("holm", out)


def describe_and_bootstrap():
    out = []
    for n in (3, 10, 50):
        x = rng.normal(0.7, 0.05, n)
        res = stats.bootstrap((x,), np.mean, confidence_level=0.95, n_resamples=200000,
                              method="percentile", rng=np.random.default_rng(1))
        out.append({"name": f"normal_n{n}", "x": fl(x), "mean": float(np.mean(x)),
                    "std": float(np.std(x, ddof=1)),
                    "ci_low": float(res.confidence_interval.low),
                    "ci_high": float(res.confidence_interval.high)})
    dump("describe", out)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    ttests()
    wilcoxon()
    mannwhitney()
    mcnemar()
    permutation()
    holm()
    describe_and_bootstrap()
