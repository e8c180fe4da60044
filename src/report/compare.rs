//! `recx compare A B`: metric deltas between two runs, with paired per-example tests.
//!
//! Two runs with the same seed saw the same examples, so their per-example results are paired;
//! pairing removes the between-example variance and makes small real differences detectable.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::group::fmt_p;
use super::{ReportOptions, RunData};
use crate::stats::{self, TestOutcome};

/// One metric compared between run A and run B (deltas are B − A).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub metric: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub delta: Option<f64>,
    /// Examples present in both runs.
    pub n_pairs: usize,
    /// Mean of (B − A) over the paired examples.
    pub paired_delta: Option<f64>,
    /// The primary test first (McNemar for binary outcomes, Wilcoxon otherwise).
    pub tests: Vec<TestOutcome>,
    /// The primary p-value after Holm's correction over all metrics of this comparison.
    pub holm_p: Option<f64>,
    /// Why no test ran, if none did.
    pub note: Option<String>,
}

/// Compares two runs with the default options (see [`compare_with`]).
pub fn compare(a: &RunData, b: &RunData) -> Vec<Comparison> {
    compare_with(a, b, &ReportOptions::default())
}

/// Compares every metric of two runs; per-example tests where both have examples for it.
pub fn compare_with(a: &RunData, b: &RunData, opts: &ReportOptions) -> Vec<Comparison> {
    let names: BTreeSet<&String> = a
        .metrics
        .keys()
        .chain(b.metrics.keys())
        .chain(a.examples.keys().filter(|k| b.examples.contains_key(*k)))
        .collect();
    let mut out: Vec<Comparison> = names
        .into_iter()
        .map(|m| compare_metric(m, a, b, opts))
        .collect();
    let primary: Vec<f64> = out
        .iter()
        .map(|c| c.tests.first().map_or(f64::NAN, |t| t.pvalue))
        .collect();
    for (c, p) in out.iter_mut().zip(stats::holm(&primary)) {
        c.holm_p = (!p.is_nan()).then_some(p);
    }
    out
}

fn compare_metric(metric: &str, a: &RunData, b: &RunData, opts: &ReportOptions) -> Comparison {
    let (va, vb) = (
        a.metrics.get(metric).copied(),
        b.metrics.get(metric).copied(),
    );
    let mut c = Comparison {
        metric: metric.to_string(),
        a: va,
        b: vb,
        delta: va.zip(vb).map(|(x, y)| y - x),
        n_pairs: 0,
        paired_delta: None,
        tests: Vec::new(),
        holm_p: None,
        note: None,
    };
    let (Some(ea), Some(eb)) = (a.examples.get(metric), b.examples.get(metric)) else {
        return c;
    };
    let (xa, xb) = paired_values(ea, eb);
    c.n_pairs = xa.len();
    if xa.is_empty() {
        c.note = Some("no example ids in common".into());
        return c;
    }
    c.paired_delta = Some(stats::mean(&xb) - stats::mean(&xa));
    let seed = crate::seed::derive(opts.seed, "report.compare", &[a.seed, b.seed]);
    match paired_tests(&xa, &xb, opts.permutation_resamples, seed) {
        Ok(tests) => c.tests = tests,
        Err(e) => c.note = Some(e.to_string()),
    }
    c
}

/// Values of the examples both runs have, matched by id (ids in sorted order).
pub(crate) fn paired_values(a: &[(String, f64)], b: &[(String, f64)]) -> (Vec<f64>, Vec<f64>) {
    let bmap: BTreeMap<&str, f64> = b.iter().map(|(id, v)| (id.as_str(), *v)).collect();
    let amap: BTreeMap<&str, f64> = a.iter().map(|(id, v)| (id.as_str(), *v)).collect();
    amap.into_iter()
        .filter_map(|(id, va)| bmap.get(id).map(|vb| (va, *vb)))
        .unzip()
}

fn is_binary(xs: &[f64]) -> bool {
    xs.iter().all(|v| *v == 0.0 || *v == 1.0)
}

/// McNemar for binary outcomes; Wilcoxon (primary), permutation and paired t otherwise.
pub(crate) fn paired_tests(
    a: &[f64],
    b: &[f64],
    resamples: usize,
    seed: u64,
) -> crate::Result<Vec<TestOutcome>> {
    if is_binary(a) && is_binary(b) {
        let to_bool = |xs: &[f64]| xs.iter().map(|v| *v == 1.0).collect::<Vec<_>>();
        return Ok(vec![stats::mcnemar_paired(&to_bool(b), &to_bool(a))?]);
    }
    let mut tests = vec![stats::wilcoxon(b, a)?];
    tests.push(stats::paired_permutation(b, a, resamples, seed)?);
    if a.len() >= 2 {
        tests.push(stats::ttest_paired(b, a)?);
    }
    Ok(tests)
}

/// A plain-text table of a comparison for the terminal.
pub fn render_comparison(a: &RunData, b: &RunData, comparisons: &[Comparison]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "A: {} (seed {}, commit {})",
        a.run_id,
        a.seed,
        short(&a.git_commit)
    );
    let _ = writeln!(
        out,
        "B: {} (seed {}, commit {})",
        b.run_id,
        b.seed,
        short(&b.git_commit)
    );
    if a.seed != b.seed {
        let _ = writeln!(
            out,
            "note: the seeds differ, so per-example pairing mixes seed effects"
        );
    }
    let header = [
        "metric",
        "A",
        "B",
        "B − A",
        "pairs",
        "test",
        "p",
        "Holm p",
        "other tests",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.map(String::from).to_vec()];
    for c in comparisons {
        let num = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.4}"));
        let (test, p) = match c.tests.first() {
            Some(t) => (format!("{} ({})", t.test, t.method), fmt_p(t.pvalue)),
            None => (c.note.clone().unwrap_or_else(|| "–".into()), "–".into()),
        };
        let others: Vec<String> = c
            .tests
            .iter()
            .skip(1)
            .map(|t| format!("{} p={}", t.test, fmt_p(t.pvalue)))
            .collect();
        rows.push(vec![
            c.metric.clone(),
            num(c.a),
            num(c.b),
            c.delta
                .or(c.paired_delta)
                .map_or("–".into(), |d| format!("{d:+.4}")),
            c.n_pairs.to_string(),
            test,
            p,
            c.holm_p
                .map_or("–".into(), |p| format!("{}{}", fmt_p(p), stats::stars(p))),
            others.join("; "),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    let _ = writeln!(
        out,
        "Holm's correction over the {} metrics with a test; * p < 0.05, ** p < 0.01, *** p < 0.001.",
        comparisons.iter().filter(|c| !c.tests.is_empty()).count()
    );
    out
}

fn short(commit: &str) -> String {
    commit.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, seed: u64, hits: &[f64], ndcg: &[f64]) -> RunData {
        let ex = |xs: &[f64]| {
            xs.iter()
                .enumerate()
                .map(|(i, v)| (format!("e{i}"), *v))
                .collect()
        };
        RunData {
            run_id: id.into(),
            seed,
            status: "completed".into(),
            metrics: [
                ("hit".to_string(), stats::mean(hits)),
                ("ndcg".to_string(), stats::mean(ndcg)),
            ]
            .into(),
            examples: [
                ("hit".to_string(), ex(hits)),
                ("ndcg".to_string(), ex(ndcg)),
            ]
            .into(),
            ..RunData::default()
        }
    }

    #[test]
    fn binary_metrics_get_mcnemar_and_continuous_get_wilcoxon() {
        let a = run(
            "a",
            1,
            &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        );
        let b = run(
            "b",
            1,
            &[1.0, 1.0, 1.0, 1.0, 1.0, 0.0],
            &[0.3, 0.5, 0.2, 0.9, 0.8, 0.7],
        );
        let cs = compare(&a, &b);
        let hit = cs.iter().find(|c| c.metric == "hit").unwrap();
        assert_eq!(hit.tests[0].test, "McNemar");
        assert_eq!(hit.n_pairs, 6);
        assert!((hit.delta.unwrap() - 0.5).abs() < 1e-12);
        let ndcg = cs.iter().find(|c| c.metric == "ndcg").unwrap();
        let names: Vec<&str> = ndcg.tests.iter().map(|t| t.test).collect();
        assert_eq!(names, ["Wilcoxon", "permutation", "paired t"]);
        assert!(ndcg.holm_p.unwrap() >= ndcg.tests[0].pvalue);
        let text = render_comparison(&a, &b, &cs);
        assert!(text.contains("McNemar (exact)") && text.contains("Holm"));
    }

    #[test]
    fn unmatched_examples_are_reported() {
        let a = run("a", 1, &[1.0], &[0.5]);
        let mut b = run("b", 1, &[0.0], &[0.5]);
        b.examples.get_mut("hit").unwrap()[0].0 = "other".into();
        let cs = compare(&a, &b);
        let hit = cs.iter().find(|c| c.metric == "hit").unwrap();
        assert_eq!(hit.note.as_deref(), Some("no example ids in common"));
    }
}
