//! Table 1 of one run: the baseline rows its `baselines` stage measured (Random, Popularity,
//! the unaligned backbone, ...) and its aligned model (`eval`), with a per-example paired test of
//! the aligned model against every baseline cell. `recx run` prints it when a run ends; the
//! report shows it for every run that has baseline rows.
//!
//! Both stages answer the same validation records and store every example under the same id,
//! so the tests are paired: McNemar for 0/1 outcomes (H@5, ACC), Wilcoxon signed-rank
//! otherwise, Holm-corrected over the table's cells.

use std::collections::BTreeMap;

use super::compare::{paired_tests, paired_values};
use super::group::fmt_num;
use super::table::Table;
use super::{PARAM_MODE, ReportOptions, RunData};
use crate::stats;

/// The stage whose metrics are baseline rows: `baselines.<row label>.<task>.<metric>`.
pub const BASELINES: &str = "baselines";

/// Table 1's columns: heading and metric name after the stage and row.
pub const COLUMNS: [(&str, &str); 5] = [
    ("T1 H@5", "uid2next.hit@5"),
    ("T1 N@5", "uid2next.ndcg@5"),
    ("T2 N@5", "uidiid2rank.ndcg@5"),
    ("T3 ACC", "uidiid2binary.acc"),
    ("T6 HCR", "uid2hist.hcr"),
];

/// One row: its label and the metric prefix its cells are read under.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub label: String,
    pub prefix: String,
}

/// The baseline rows of a run, in the paper's order (the stage's `<label>.row` measurement).
pub fn baseline_rows(run: &RunData) -> Vec<Row> {
    let mut rows: Vec<(f64, String)> = run
        .metrics
        .iter()
        .filter_map(|(name, v)| {
            let label = name
                .strip_prefix(BASELINES)?
                .strip_prefix('.')?
                .strip_suffix(".row")?;
            Some((*v, label.to_string()))
        })
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    rows.into_iter()
        .map(|(_, label)| Row {
            prefix: format!("{BASELINES}.{label}."),
            label,
        })
        .collect()
}

/// Param naming how ranking answers were decoded (absent: freely, as the paper).
pub const PARAM_RANK_DECODING: &str = "eval.rank_decoding";

/// What a row label adds when the LLM rows' ranking answers were decoded within the candidates.
pub(crate) fn rank_decoding_note(rank_decoding: Option<&str>) -> &'static str {
    match rank_decoding {
        Some("candidates") => "; T2 decoded within the candidates",
        _ => "",
    }
}

/// The aligned model's row label: its alignment mode as the paper names it, and how its
/// ranking answers were decoded when not freely.
pub(crate) fn aligned_label(mode: Option<&str>, rank_decoding: Option<&str>) -> String {
    let label = mode_label(mode);
    match rank_decoding_note(rank_decoding) {
        "" => label,
        note => match label.strip_suffix(')') {
            Some(open) => format!("{open}{note})"),
            None => format!("{label} ({})", &note[2..]),
        },
    }
}

fn mode_label(mode: Option<&str>) -> String {
    match mode {
        Some("behaviour") => "aligned, behaviour (RecExplainer-B setup)".into(),
        Some("intention") => "aligned, intention (RecExplainer-I setup)".into(),
        Some("both") => "aligned, both (RecExplainer-H setup)".into(),
        Some("none") => "eval of mode none (no alignment)".into(),
        Some(other) => format!("aligned, {other}"),
        None => "aligned".into(),
    }
}

/// A baseline cell's paired test: (aligned − baseline mean over pairs, primary p, pairs).
fn paired(
    run: &RunData,
    ours: &str,
    theirs: &str,
    opts: &ReportOptions,
) -> Option<(f64, f64, usize)> {
    let (a, b) = paired_values(run.examples.get(ours)?, run.examples.get(theirs)?);
    if a.is_empty() {
        return None;
    }
    let delta = stats::mean(&a) - stats::mean(&b);
    let tests = paired_tests(&b, &a, opts.permutation_resamples, opts.seed).ok()?;
    Some((delta, tests.first()?.pvalue, a.len()))
}

/// Table 1 of `run`, or `None` when it has no baseline rows.
pub fn run_table1(run: &RunData, opts: &ReportOptions) -> Option<Table> {
    let rows = baseline_rows(run);
    if rows.is_empty() {
        return None;
    }
    let aligned = Row {
        label: aligned_label(
            run.params.get(PARAM_MODE).map(String::as_str),
            run.params.get(PARAM_RANK_DECODING).map(String::as_str),
        ),
        prefix: "eval.".into(),
    };
    let has_aligned = COLUMNS
        .iter()
        .any(|(_, m)| run.metrics.contains_key(&format!("eval.{m}")));
    // Paired tests of every baseline cell, Holm-corrected together.
    let mut tests: Vec<((usize, usize), f64, f64, usize)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        for (j, (_, m)) in COLUMNS.iter().enumerate() {
            let theirs = format!("{}{m}", row.prefix);
            if let Some((d, p, n)) = paired(run, &format!("eval.{m}"), &theirs, opts) {
                tests.push(((i, j), d, p, n));
            }
        }
    }
    let holm = stats::holm(&tests.iter().map(|t| t.2).collect::<Vec<_>>());
    let marks: BTreeMap<(usize, usize), String> = tests
        .iter()
        .zip(&holm)
        .map(|(&(at, d, _, _), &p)| {
            let sign = if d > 0.0 {
                "+"
            } else if d < 0.0 {
                "−"
            } else {
                "="
            };
            let stars = stats::stars(p);
            (
                at,
                if stars.is_empty() {
                    " ns".into()
                } else {
                    format!(" {sign}{stars}")
                },
            )
        })
        .collect();
    let pairs = tests.iter().map(|t| t.3).max().unwrap_or(0);
    let mut header = vec!["Method".to_string()];
    header.extend(COLUMNS.iter().map(|(h, _)| h.to_string()));
    let caption = format!(
        "Table 1, run {} (seed {}): baselines and the aligned model on the same validation \
         records (up to {pairs} per task). A mark on a baseline cell tests the aligned model \
         against it example by example (McNemar for 0/1 values, Wilcoxon otherwise; \
         Holm-corrected over {} cells): + aligned higher, − aligned lower, * p < 0.05, \
         ** p < 0.01, *** p < 0.001, ns not significant; – not measured.{}",
        run.run_id,
        run.seed,
        tests.len(),
        if rank_decoding_note(run.params.get(PARAM_RANK_DECODING).map(String::as_str)).is_empty() {
            ""
        } else {
            " T2: the LLM rows' ranking answers were decoded within the candidates, each named \
             once (eval.rank_decoding = \"candidates\"; the paper decodes freely), as Random \
             and Popularity order the candidates."
        }
    );
    let mut table = Table::new("table1_run", caption, header);
    let cell = |row: &Row, m: &str, mark: Option<&String>| {
        run.metrics
            .get(&format!("{}{m}", row.prefix))
            .map_or("–".to_string(), |v| {
                format!("{}{}", fmt_num(*v), mark.map_or("", String::as_str))
            })
    };
    for (i, row) in rows.iter().enumerate() {
        let mut cells = vec![row.label.clone()];
        for (j, (_, m)) in COLUMNS.iter().enumerate() {
            cells.push(cell(row, m, marks.get(&(i, j))));
        }
        table.rows.push(cells);
    }
    if has_aligned {
        let mut cells = vec![aligned.label.clone()];
        for (_, m) in COLUMNS {
            cells.push(cell(&aligned, m, None));
        }
        table.rows.push(cells);
    }
    Some(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunData {
        let mut r = RunData {
            run_id: "r1".into(),
            seed: 1,
            status: "completed".into(),
            ..Default::default()
        };
        r.params.insert(PARAM_MODE.into(), "both".into());
        let ids: Vec<String> = (0..60).map(|i| format!("{i}:-1:-1")).collect();
        let ex = |f: &dyn Fn(usize) -> f64| -> Vec<(String, f64)> {
            ids.iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), f(i)))
                .collect()
        };
        // The aligned model hits 50 of 60, Random 2 of 60, Popularity 45 of 60.
        r.examples
            .insert("eval.uid2next.hit@5".into(), ex(&|i| f64::from(i < 50)));
        r.examples.insert(
            "baselines.Random.uid2next.hit@5".into(),
            ex(&|i| f64::from(i < 2)),
        );
        r.examples.insert(
            "baselines.Popularity.uid2next.hit@5".into(),
            ex(&|i| f64::from((5..50).contains(&i) || i >= 60)),
        );
        r.metrics.insert("eval.uid2next.hit@5".into(), 50.0 / 60.0);
        r.metrics
            .insert("baselines.Random.uid2next.hit@5".into(), 2.0 / 60.0);
        r.metrics.insert("baselines.Random.row".into(), 0.0);
        r.metrics
            .insert("baselines.Popularity.uid2next.hit@5".into(), 45.0 / 60.0);
        r.metrics.insert("baselines.Popularity.row".into(), 1.0);
        r
    }

    #[test]
    fn rows_follow_the_papers_order_with_paired_marks() {
        let t = run_table1(&run(), &ReportOptions::default()).unwrap();
        let labels: Vec<&str> = t.rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(
            labels,
            [
                "Random",
                "Popularity",
                "aligned, both (RecExplainer-H setup)"
            ]
        );
        assert_eq!(
            t.rows[0][1], "0.0333 +***",
            "48 discordant pairs all one way"
        );
        assert_eq!(t.rows[1][1], "0.7500 ns", "5 discordant pairs");
        assert_eq!(t.rows[2][1], "0.8333");
        assert_eq!(t.rows[0][4], "–", "T3 not measured");
    }

    #[test]
    fn a_ranking_decoded_within_the_candidates_is_named_in_the_label_and_caption() {
        let mut r = run();
        r.params
            .insert(PARAM_RANK_DECODING.into(), "candidates".into());
        let t = run_table1(&r, &ReportOptions::default()).unwrap();
        assert_eq!(
            t.rows[2][0],
            "aligned, both (RecExplainer-H setup; T2 decoded within the candidates)"
        );
        assert!(t.caption.contains("decoded within the candidates"));
        assert_eq!(
            aligned_label(None, Some("candidates")),
            "aligned (T2 decoded within the candidates)"
        );
        assert_eq!(
            aligned_label(Some("both"), Some("free")),
            "aligned, both (RecExplainer-H setup)"
        );
    }

    #[test]
    fn no_baselines_no_table() {
        let mut r = run();
        r.metrics.retain(|k, _| k.starts_with("eval."));
        assert!(run_table1(&r, &ReportOptions::default()).is_none());
    }
}
