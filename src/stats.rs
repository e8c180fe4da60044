//! Statistics for comparing runs: descriptive summaries, paired and unpaired tests, and Holm's
//! correction.
//!
//! Why this module exists: the paper reports single numbers; a faithful rebuild must say whether
//! our differences are real. Per-example results of two runs with the same seed are *paired*
//! (McNemar for binary outcomes, Wilcoxon signed-rank, a sign-flip permutation test and the
//! paired t-test for continuous ones); results across seeds are *unpaired* (Welch t-test and
//! Mann–Whitney U with the probability of improvement as effect size). Every table's family of
//! comparisons is corrected with Holm's step-down method.
//!
//! The defaults mirror scipy 1.17 so that `scripts/scipy_fixtures.py` can check every number
//! (fixtures in `tests/fixtures/stats/`):
//! - **t-tests**: two-sided; Welch uses the Welch–Satterthwaite degrees of freedom.
//! - **Wilcoxon signed-rank** (`scipy.stats.wilcoxon` defaults): zero differences are dropped
//!   (`zero_method="wilcox"`), no continuity correction; the exact null distribution when there
//!   are no ties and no zeros and n ≤ 50; the exact sign-flip distribution of the tied ranks
//!   when there are ties or zeros and n ≤ 13; otherwise the normal approximation with the tie
//!   correction. The statistic is min(R+, R−).
//! - **Mann–Whitney U** (`scipy.stats.mannwhitneyu` defaults): the exact distribution when one
//!   sample has at most 8 values and there are no ties, otherwise the normal approximation with
//!   continuity and tie corrections (also beyond 100,000 values in the larger sample, where
//!   scipy would still be exact). The statistic is U1 (of the first sample).
//! - **McNemar**: the exact two-sided binomial test on the discordant pairs when there are fewer
//!   than 25 of them, otherwise chi-square (1 df) with Edwards' continuity correction.
//! - **Paired permutation test**: the mean difference under random sign flips; exact enumeration
//!   for n ≤ 20 (scipy's `permutation_test(..., n_resamples=inf)`), otherwise a seeded Monte
//!   Carlo estimate with the (count + 1) / (B + 1) adjustment scipy uses.
//! - **Bootstrap CI**: percentile interval of the mean, seeded (ChaCha8), linear interpolation
//!   between order statistics as `numpy.percentile` does.
//!
//! Degenerate inputs (zero variance) give NaN p-values, as scipy does; wrong shapes are errors.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

use crate::{Error, Result};

/// Fewer discordant pairs than this → exact binomial McNemar test.
pub const MCNEMAR_EXACT_BELOW: u64 = 25;
/// Largest n for the exact Wilcoxon distribution without ties (scipy's `method="auto"`).
pub const WILCOXON_EXACT_MAX_N: usize = 50;
/// Largest n for the exact sign-flip distribution when there are ties or zeros.
pub const WILCOXON_PERMUTATION_MAX_N: usize = 13;
/// Mann–Whitney is exact when the smaller sample has at most this many values (and no ties).
pub const MANN_WHITNEY_EXACT_MAX_N: usize = 8;
/// Largest n for which the paired permutation test enumerates all 2^n sign flips.
pub const PERMUTATION_EXACT_MAX_N: usize = 20;

/// How a p-value was obtained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PMethod {
    /// From the exact null distribution.
    Exact,
    /// From a normal / t / chi-square reference distribution.
    Asymptotic,
    /// From a seeded Monte Carlo sample of the null distribution.
    MonteCarlo { resamples: usize },
}

impl fmt::Display for PMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PMethod::Exact => write!(f, "exact"),
            PMethod::Asymptotic => write!(f, "asymptotic"),
            PMethod::MonteCarlo { resamples } => write!(f, "Monte Carlo, {resamples} resamples"),
        }
    }
}

/// The result of one two-sided hypothesis test.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    /// Short name of the test, e.g. "Wilcoxon".
    pub test: &'static str,
    pub method: PMethod,
    pub statistic: f64,
    /// Degrees of freedom, for t and chi-square tests.
    pub df: Option<f64>,
    pub pvalue: f64,
    /// Number of observations (pairs, or n1 + n2) the test used.
    pub n: usize,
}

/// Arithmetic mean; NaN when empty.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (n − 1 denominator); NaN below two values.
pub fn std(xs: &[f64]) -> f64 {
    variance(xs).sqrt()
}

fn variance(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return f64::NAN;
    }
    let m = mean(xs);
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() - 1) as f64
}

/// Pearson's correlation coefficient of paired values (scipy's `pearsonr` statistic); `None`
/// when the lengths differ, fewer than two pairs are given, or either side is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// A seeded percentile bootstrap confidence interval of the mean.
///
/// `level` is e.g. 0.95. Returns `None` for fewer than two values (no interval exists).
pub fn bootstrap_ci(xs: &[f64], level: f64, resamples: usize, seed: u64) -> Option<(f64, f64)> {
    if xs.len() < 2 || resamples == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = xs.len();
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| xs[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    Some((
        percentile_sorted(&means, alpha),
        percentile_sorted(&means, 1.0 - alpha),
    ))
}

/// `numpy.percentile` with linear interpolation; `q` in [0, 1].
fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn check_paired(x: &[f64], y: &[f64], test: &str, min_n: usize) -> Result<Vec<f64>> {
    if x.len() != y.len() {
        return Err(Error::Stats(format!(
            "{test}: paired samples differ in length ({} vs {})",
            x.len(),
            y.len()
        )));
    }
    if x.len() < min_n {
        return Err(Error::Stats(format!(
            "{test}: needs at least {min_n} pairs, got {}",
            x.len()
        )));
    }
    Ok(x.iter().zip(y).map(|(a, b)| a - b).collect())
}

fn check_sizes(x: &[f64], y: &[f64], test: &str, min_n: usize) -> Result<()> {
    if x.len() < min_n || y.len() < min_n {
        return Err(Error::Stats(format!(
            "{test}: needs at least {min_n} values per sample, got {} and {}",
            x.len(),
            y.len()
        )));
    }
    Ok(())
}

fn two_sided_t(t: f64, df: f64) -> f64 {
    if !t.is_finite() || !df.is_finite() || df <= 0.0 {
        return f64::NAN;
    }
    let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0");
    (2.0 * dist.sf(t.abs())).min(1.0)
}

fn two_sided_normal(z: f64) -> f64 {
    if !z.is_finite() {
        return f64::NAN;
    }
    (2.0 * Normal::standard().sf(z.abs())).min(1.0)
}

/// Paired t-test on x − y (`scipy.stats.ttest_rel`).
pub fn ttest_paired(x: &[f64], y: &[f64]) -> Result<TestOutcome> {
    let d = check_paired(x, y, "paired t-test", 2)?;
    let n = d.len() as f64;
    let t = mean(&d) / (variance(&d) / n).sqrt();
    let df = n - 1.0;
    Ok(TestOutcome {
        test: "paired t",
        method: PMethod::Asymptotic,
        statistic: t,
        df: Some(df),
        pvalue: two_sided_t(t, df),
        n: d.len(),
    })
}

/// Welch's unequal-variance t-test (`scipy.stats.ttest_ind(equal_var=False)`).
pub fn ttest_welch(x: &[f64], y: &[f64]) -> Result<TestOutcome> {
    check_sizes(x, y, "Welch t-test", 2)?;
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let (v1, v2) = (variance(x) / n1, variance(y) / n2);
    let t = (mean(x) - mean(y)) / (v1 + v2).sqrt();
    let df = (v1 + v2).powi(2) / (v1 * v1 / (n1 - 1.0) + v2 * v2 / (n2 - 1.0));
    Ok(TestOutcome {
        test: "Welch t",
        method: PMethod::Asymptotic,
        statistic: t,
        df: Some(df),
        pvalue: two_sided_t(t, df),
        n: x.len() + y.len(),
    })
}

/// Average ranks (1-based) and the sizes of the tie groups (groups of one included).
fn rank_average(values: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut ties = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let avg = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = avg;
        }
        ties.push(end - start);
        start = end;
    }
    (ranks, ties)
}

fn tie_term(ties: &[usize]) -> f64 {
    ties.iter().map(|&t| (t * t * t - t) as f64).sum()
}

/// Two-sided p-value from a finite null distribution, as scipy's `permutation_test` computes it:
/// 2·min(P(T ≤ t), P(T ≥ t)) with a relative tolerance for float round-off.
fn two_sided_from_null(null: impl Iterator<Item = f64>, observed: f64, adjust: usize) -> f64 {
    let gamma = (100.0 * f64::EPSILON * observed).abs();
    let (mut less, mut greater, mut total) = (0usize, 0usize, 0usize);
    for v in null {
        less += usize::from(v <= observed + gamma);
        greater += usize::from(v >= observed - gamma);
        total += 1;
    }
    let p = |count: usize| (count + adjust) as f64 / (total + adjust) as f64;
    (2.0 * p(less).min(p(greater))).clamp(0.0, 1.0)
}

/// Wilcoxon signed-rank test on x − y (scipy's defaults; see the module docs).
pub fn wilcoxon(x: &[f64], y: &[f64]) -> Result<TestOutcome> {
    let d_all = check_paired(x, y, "Wilcoxon", 1)?;
    let d: Vec<f64> = d_all.iter().copied().filter(|v| *v != 0.0).collect();
    if d.is_empty() {
        return Err(Error::Stats(
            "Wilcoxon: every difference is zero; the test is undefined".into(),
        ));
    }
    let has_zeros = d.len() < d_all.len();
    let abs: Vec<f64> = d.iter().map(|v| v.abs()).collect();
    let (ranks, ties) = rank_average(&abs);
    let has_ties = ties.iter().any(|&t| t > 1);
    let r_plus: f64 = d
        .iter()
        .zip(&ranks)
        .filter(|(v, _)| **v > 0.0)
        .map(|(_, r)| r)
        .sum();
    let count = d.len() as f64;
    let r_total = count * (count + 1.0) / 2.0;
    let statistic = r_plus.min(r_total - r_plus);

    let (method, pvalue) = if !has_ties && !has_zeros && d_all.len() <= WILCOXON_EXACT_MAX_N {
        (PMethod::Exact, wilcoxon_exact_p(d.len(), r_plus))
    } else if d_all.len() <= WILCOXON_PERMUTATION_MAX_N {
        (PMethod::Exact, wilcoxon_sign_flip_p(&ranks, r_plus))
    } else {
        let mean = r_total / 2.0;
        let var = (count * (count + 1.0) * (2.0 * count + 1.0) - tie_term(&ties) / 2.0) / 24.0;
        (
            PMethod::Asymptotic,
            two_sided_normal((r_plus - mean) / var.sqrt()),
        )
    };
    Ok(TestOutcome {
        test: "Wilcoxon",
        method,
        statistic,
        df: None,
        pvalue,
        n: d_all.len(),
    })
}

/// Exact p-value from the distribution of R+ over the 2^n sign patterns of ranks 1..n.
fn wilcoxon_exact_p(n: usize, r_plus: f64) -> f64 {
    let max = n * (n + 1) / 2;
    let mut counts = vec![0u64; max + 1];
    counts[0] = 1;
    for rank in 1..=n {
        for s in (rank..=max).rev() {
            counts[s] += counts[s - rank];
        }
    }
    let total = 2f64.powi(n as i32);
    let cdf = |k: usize| counts[..=k.min(max)].iter().sum::<u64>() as f64 / total;
    let sf = |k: usize| counts[k.min(max + 1)..].iter().sum::<u64>() as f64 / total;
    let p = 2.0 * sf(r_plus.floor() as usize).min(cdf(r_plus.ceil() as usize));
    p.clamp(0.0, 1.0)
}

/// Exact p-value of R+ under all sign flips of the given (possibly tied) ranks.
fn wilcoxon_sign_flip_p(ranks: &[f64], r_plus: f64) -> f64 {
    let n = ranks.len();
    let null = (0u32..1 << n).map(|mask| {
        (0..n)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| ranks[i])
            .sum::<f64>()
    });
    two_sided_from_null(null, r_plus, 0)
}

/// Mann–Whitney U test with the probability of improvement P(X > Y) + ½·P(X = Y).
#[derive(Debug, Clone, PartialEq)]
pub struct MannWhitney {
    /// `statistic` is U1, the U of the first sample.
    pub outcome: TestOutcome,
    pub prob_improvement: f64,
}

/// Mann–Whitney U test (scipy's defaults; see the module docs).
pub fn mann_whitney(x: &[f64], y: &[f64]) -> Result<MannWhitney> {
    check_sizes(x, y, "Mann-Whitney", 1)?;
    let (n1, n2) = (x.len(), y.len());
    let pooled: Vec<f64> = x.iter().chain(y).copied().collect();
    let (ranks, ties) = rank_average(&pooled);
    let r1: f64 = ranks[..n1].iter().sum();
    let nn = (n1 * n2) as f64;
    let u1 = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    let u = u1.max(nn - u1);
    let has_ties = ties.iter().any(|&t| t > 1);
    // The exact counts need C(n1 + n2, min) to fit in i128: true below 100,000 values.
    let exact = n1.min(n2) <= MANN_WHITNEY_EXACT_MAX_N && n1.max(n2) <= 100_000 && !has_ties;
    let (method, pvalue) = if exact {
        (
            PMethod::Exact,
            2.0 * mann_whitney_exact_sf(n1, n2, u.round() as usize),
        )
    } else {
        let n = (n1 + n2) as f64;
        let sigma = (nn / 12.0 * ((n + 1.0) - tie_term(&ties) / (n * (n - 1.0)))).sqrt();
        let z = (u - nn / 2.0 - 0.5) / sigma;
        (PMethod::Asymptotic, 2.0 * Normal::standard().sf(z))
    };
    Ok(MannWhitney {
        outcome: TestOutcome {
            test: "Mann-Whitney U",
            method,
            statistic: u1,
            df: None,
            pvalue: pvalue.clamp(0.0, 1.0),
            n: n1 + n2,
        },
        prob_improvement: u1 / nn,
    })
}

/// P(U ≥ k) under H0 without ties: the coefficients of the Gaussian binomial
/// [n1 + n2 choose m]_q, m = min(n1, n2), built by m multiply/divide steps in exact integers.
fn mann_whitney_exact_sf(n1: usize, n2: usize, k: usize) -> f64 {
    let (m, n) = (n1.min(n2), n1.max(n2));
    let max = m * n;
    let mut poly = vec![0i128; max + 1];
    poly[0] = 1;
    for i in 1..=m {
        // Multiply by (1 − q^(n+i)), then divide by (1 − q^i).
        let shift = n + i;
        for s in (shift..=max).rev() {
            poly[s] -= poly[s - shift];
        }
        for s in i..=max {
            poly[s] += poly[s - i];
        }
    }
    let total: i128 = poly.iter().sum();
    let tail: i128 = poly[k.min(max + 1)..].iter().sum();
    tail as f64 / total as f64
}

/// McNemar's test from the discordant counts: `b` = pairs where only A is right, `c` = only B.
pub fn mcnemar(b: u64, c: u64) -> TestOutcome {
    let n = b + c;
    let (method, statistic, df, pvalue) = if n == 0 {
        (PMethod::Exact, 0.0, None, 1.0)
    } else if n < MCNEMAR_EXACT_BELOW {
        let k = b.min(c);
        let tail: u64 = (0..=k).map(|i| binomial(n, i)).sum();
        let p = (2.0 * tail as f64 / 2f64.powi(n as i32)).min(1.0);
        (PMethod::Exact, k as f64, None, p)
    } else {
        let stat = ((b as f64 - c as f64).abs() - 1.0).powi(2) / n as f64;
        let p = ChiSquared::new(1.0).expect("1 df").sf(stat);
        (PMethod::Asymptotic, stat, Some(1.0), p)
    };
    TestOutcome {
        test: "McNemar",
        method,
        statistic,
        df,
        pvalue,
        n: n as usize,
    }
}

/// McNemar's test on paired binary outcomes (true = correct).
pub fn mcnemar_paired(a: &[bool], b: &[bool]) -> Result<TestOutcome> {
    if a.len() != b.len() {
        return Err(Error::Stats(format!(
            "McNemar: paired samples differ in length ({} vs {})",
            a.len(),
            b.len()
        )));
    }
    let only_a = a.iter().zip(b).filter(|(x, y)| **x && !**y).count() as u64;
    let only_b = a.iter().zip(b).filter(|(x, y)| !**x && **y).count() as u64;
    let mut out = mcnemar(only_a, only_b);
    out.n = a.len();
    Ok(out)
}

/// C(n, k) in exact integers (n < 64 here).
fn binomial(n: u64, k: u64) -> u64 {
    (0..k).fold(1u64, |acc, i| acc * (n - i) / (i + 1))
}

/// Paired permutation test of the mean difference under random sign flips of x − y.
///
/// Exact for n ≤ [`PERMUTATION_EXACT_MAX_N`]; otherwise `resamples` seeded Monte Carlo flips.
pub fn paired_permutation(
    x: &[f64],
    y: &[f64],
    resamples: usize,
    seed: u64,
) -> Result<TestOutcome> {
    let d = check_paired(x, y, "paired permutation", 1)?;
    let n = d.len();
    let observed = mean(&d);
    let flipped_mean = |signs: &dyn Fn(usize) -> bool| {
        d.iter()
            .enumerate()
            .map(|(i, v)| if signs(i) { -v } else { *v })
            .sum::<f64>()
            / n as f64
    };
    let (method, pvalue) = if n <= PERMUTATION_EXACT_MAX_N {
        let null = (0u32..1 << n).map(|mask| flipped_mean(&|i| mask & (1 << i) != 0));
        (PMethod::Exact, two_sided_from_null(null, observed, 0))
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let null: Vec<f64> = (0..resamples)
            .map(|_| {
                let signs: Vec<bool> = (0..n).map(|_| rng.random()).collect();
                flipped_mean(&|i| signs[i])
            })
            .collect();
        (
            PMethod::MonteCarlo { resamples },
            two_sided_from_null(null.into_iter(), observed, 1),
        )
    };
    Ok(TestOutcome {
        test: "permutation",
        method,
        statistic: observed,
        df: None,
        pvalue,
        n,
    })
}

/// Holm's step-down adjustment; returns adjusted p-values in the input order.
///
/// NaN p-values (undefined tests) stay NaN and do not count towards the family size.
pub fn holm(pvalues: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..pvalues.len())
        .filter(|&i| !pvalues[i].is_nan())
        .collect();
    order.sort_by(|&a, &b| pvalues[a].total_cmp(&pvalues[b]));
    let m = order.len();
    let mut adjusted = vec![f64::NAN; pvalues.len()];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * pvalues[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

/// A significance marker for a p-value: "***" < 0.001, "**" < 0.01, "*" < 0.05, else "".
pub fn stars(p: f64) -> &'static str {
    match p {
        p if p < 0.001 => "***",
        p if p < 0.01 => "**",
        p if p < 0.05 => "*",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pearson_matches_hand_computed_values() {
        // scipy.stats.pearsonr([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]).statistic == 0.8
        let r = pearson(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12, "{r}");
        let r = pearson(&[1.0, 2.0, 3.0], &[-2.0, -4.0, -6.0]).unwrap();
        assert!((r + 1.0).abs() < 1e-12, "{r}");
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(pearson(&[1.0], &[1.0]), None);
        assert_eq!(pearson(&[1.0, 2.0], &[1.0]), None);
    }

    use super::*;

    #[test]
    fn mean_and_std_of_a_small_sample() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(mean(&xs), 2.5);
        assert!((std(&xs) - 1.290_994_448_735_805_6).abs() < 1e-15);
        assert!(std(&[1.0]).is_nan());
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_mean() {
        let xs = [0.61, 0.64, 0.60, 0.66, 0.63];
        let a = bootstrap_ci(&xs, 0.95, 2000, 7).unwrap();
        assert_eq!(a, bootstrap_ci(&xs, 0.95, 2000, 7).unwrap());
        assert_ne!(a, bootstrap_ci(&xs, 0.95, 2000, 8).unwrap());
        assert!(a.0 < mean(&xs) && mean(&xs) < a.1);
        assert!(bootstrap_ci(&[1.0], 0.95, 100, 0).is_none());
    }

    #[test]
    fn ranks_average_over_ties() {
        let (r, t) = rank_average(&[3.0, 1.0, 3.0, 2.0]);
        assert_eq!(r, vec![3.5, 1.0, 3.5, 2.0]);
        assert_eq!(t, vec![1, 1, 2]);
    }

    #[test]
    fn holm_is_monotone_and_capped() {
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        assert_eq!(adj, vec![0.03, 0.06, 0.06, 0.02]);
        assert!(holm(&[0.9, 0.8])[0] <= 1.0);
        assert!(holm(&[f64::NAN, 0.02])[0].is_nan());
        assert_eq!(holm(&[f64::NAN, 0.02])[1], 0.02);
    }

    #[test]
    fn mcnemar_switches_to_chi_square_at_25_discordant_pairs() {
        assert_eq!(mcnemar(12, 12).method, PMethod::Exact);
        assert_eq!(mcnemar(20, 5).method, PMethod::Asymptotic);
        assert_eq!(mcnemar(0, 0).pvalue, 1.0);
    }

    #[test]
    fn shape_errors_are_reported() {
        assert!(ttest_paired(&[1.0, 2.0], &[1.0]).is_err());
        assert!(wilcoxon(&[1.0, 2.0], &[1.0, 2.0]).is_err());
        assert!(mcnemar_paired(&[true], &[]).is_err());
    }

    #[test]
    fn monte_carlo_permutation_is_close_to_exact() {
        // 21 pairs: beyond exact enumeration; compare to a 2^21 enumeration done here.
        let x: Vec<f64> = (0..21).map(|i| (i as f64 * 0.37).sin()).collect();
        let y: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| v - 0.1 + 0.3 * ((i * 7 % 5) as f64 - 2.0) / 2.0)
            .collect();
        let mc = paired_permutation(&x, &y, 20_000, 3).unwrap();
        let d: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a - b).collect();
        let obs = mean(&d);
        let null = (0u32..1 << 21).map(|mask| {
            d.iter()
                .enumerate()
                .map(|(i, v)| if mask & (1 << i) != 0 { -v } else { *v })
                .sum::<f64>()
                / 21.0
        });
        let exact = two_sided_from_null(null, obs, 0);
        assert!(matches!(mc.method, PMethod::MonteCarlo { .. }));
        assert!(
            (mc.pvalue - exact).abs() < 0.01,
            "{} vs {}",
            mc.pvalue,
            exact
        );
    }
}
