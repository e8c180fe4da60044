//! `recx::stats` against reference values computed once by scipy (`scripts/scipy_fixtures.py`,
//! fixtures in `tests/fixtures/stats/`). Tolerance 1e-6; p-values of exact tests 1e-9.

use std::path::Path;

use recx::stats::{self, PMethod};
use serde_json::Value;

const TOL: f64 = 1e-6;
const EXACT_TOL: f64 = 1e-9;

fn cases(name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stats")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    let cases = v["cases"].as_array().unwrap().clone();
    assert!(!cases.is_empty(), "{name}: no cases");
    cases
}

fn vec_of(case: &Value, key: &str) -> Vec<f64> {
    case[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn num(case: &Value, key: &str) -> f64 {
    case[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {}", case["name"]))
}

fn close(got: f64, want: f64, tol: f64, what: &str, case: &Value) {
    assert!(
        (got - want).abs() <= tol,
        "{} {what}: got {got:.15e}, scipy {want:.15e}",
        case["name"]
    );
}

fn p_tol(method: PMethod) -> f64 {
    if method == PMethod::Exact {
        EXACT_TOL
    } else {
        TOL
    }
}

#[test]
fn paired_t_matches_scipy() {
    for c in cases("ttest_rel") {
        let r = stats::ttest_paired(&vec_of(&c, "x"), &vec_of(&c, "y")).unwrap();
        close(r.statistic, num(&c, "statistic"), TOL, "t", &c);
        close(r.df.unwrap(), num(&c, "df"), TOL, "df", &c);
        close(r.pvalue, num(&c, "pvalue"), TOL, "p", &c);
    }
}

#[test]
fn welch_t_matches_scipy() {
    for c in cases("ttest_welch") {
        let r = stats::ttest_welch(&vec_of(&c, "x"), &vec_of(&c, "y")).unwrap();
        close(r.statistic, num(&c, "statistic"), TOL, "t", &c);
        close(r.df.unwrap(), num(&c, "df"), TOL, "df", &c);
        close(r.pvalue, num(&c, "pvalue"), TOL, "p", &c);
    }
}

#[test]
fn wilcoxon_matches_scipy() {
    for c in cases("wilcoxon") {
        let r = stats::wilcoxon(&vec_of(&c, "x"), &vec_of(&c, "y")).unwrap();
        let want_exact = c["method"] != "asymptotic";
        assert_eq!(
            r.method == PMethod::Exact,
            want_exact,
            "{} method",
            c["name"]
        );
        close(r.statistic, num(&c, "statistic"), TOL, "statistic", &c);
        close(r.pvalue, num(&c, "pvalue"), p_tol(r.method), "p", &c);
    }
}

#[test]
fn mann_whitney_matches_scipy() {
    for c in cases("mannwhitneyu") {
        let r = stats::mann_whitney(&vec_of(&c, "x"), &vec_of(&c, "y")).unwrap();
        assert_eq!(
            r.outcome.method == PMethod::Exact,
            c["method"] == "exact",
            "{}",
            c["name"]
        );
        close(r.outcome.statistic, num(&c, "u1"), TOL, "U1", &c);
        close(
            r.outcome.pvalue,
            num(&c, "pvalue"),
            p_tol(r.outcome.method),
            "p",
            &c,
        );
        close(
            r.prob_improvement,
            num(&c, "prob_improvement"),
            TOL,
            "P(X>Y)",
            &c,
        );
    }
}

#[test]
fn mcnemar_matches_scipy() {
    for c in cases("mcnemar") {
        let r = stats::mcnemar(c["b"].as_u64().unwrap(), c["c"].as_u64().unwrap());
        assert_eq!(
            r.method == PMethod::Exact,
            c["method"] == "exact",
            "{}",
            c["name"]
        );
        close(r.statistic, num(&c, "statistic"), TOL, "statistic", &c);
        close(r.pvalue, num(&c, "pvalue"), p_tol(r.method), "p", &c);
    }
}

#[test]
fn paired_permutation_matches_scipy_exactly() {
    for c in cases("permutation") {
        let r = stats::paired_permutation(&vec_of(&c, "x"), &vec_of(&c, "y"), 9999, 0).unwrap();
        assert_eq!(r.method, PMethod::Exact);
        close(
            r.statistic,
            num(&c, "statistic"),
            TOL,
            "mean difference",
            &c,
        );
        close(r.pvalue, num(&c, "pvalue"), EXACT_TOL, "p", &c);
    }
}

#[test]
fn holm_matches_reference() {
    for c in cases("holm") {
        let adj = stats::holm(&vec_of(&c, "pvalues"));
        for (got, want) in adj.iter().zip(vec_of(&c, "adjusted")) {
            close(*got, want, 1e-12, "adjusted p", &c);
        }
    }
}

#[test]
fn describe_and_bootstrap_agree_with_scipy() {
    for c in cases("describe") {
        let x = vec_of(&c, "x");
        close(stats::mean(&x), num(&c, "mean"), 1e-12, "mean", &c);
        close(stats::std(&x), num(&c, "std"), 1e-12, "std", &c);
        // Different generators: the percentile interval agrees to Monte Carlo error only.
        // With 200k resamples each, the bounds' standard error is ~1e-3 of the sample std.
        let (lo, hi) = stats::bootstrap_ci(&x, 0.95, 200_000, 11).unwrap();
        let tol = 0.01 * stats::std(&x);
        close(lo, num(&c, "ci_low"), tol, "CI low", &c);
        close(hi, num(&c, "ci_high"), tol, "CI high", &c);
    }
}
