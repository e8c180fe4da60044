//! Grouping runs across seeds, the runs and results tables, and the significance tables.
//!
//! Runs with the same group key differ only by seed: one group is one configuration, and its
//! spread over seeds is the uncertainty we report (mean ± std, bootstrap 95% CI, n).

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use super::compare::{Comparison, compare_with};
use super::table::Table;
use super::{PARAM_MODE, ReportOptions, RunData, Section};
use crate::stats;

/// Summary of one metric over the seeds of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    /// Percentile bootstrap 95% CI of the mean; `None` below two seeds.
    pub ci: Option<(f64, f64)>,
    /// One value per seed, in seed order.
    pub values: Vec<f64>,
}

/// Runs that differ only by seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub key: String,
    /// Human-readable name from the params that differ between groups, e.g. "mode=behaviour".
    pub label: String,
    /// Params shared by every run of the group.
    pub params: BTreeMap<String, String>,
    /// Finished runs, in seed order.
    pub runs: Vec<RunData>,
    pub summaries: BTreeMap<String, Summary>,
}

impl Group {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    pub fn run_with_seed(&self, seed: u64) -> Option<&RunData> {
        self.runs.iter().find(|r| r.seed == seed)
    }
}

/// Groups the finished runs; groups come in a stable order (alignment mode, then label).
pub(crate) fn group_runs(runs: &[RunData], opts: &ReportOptions) -> Vec<Group> {
    let mut by_key: BTreeMap<&str, Vec<&RunData>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.is_done()) {
        by_key.entry(&r.group_key).or_default().push(r);
    }
    let shared: Vec<(String, BTreeMap<String, String>)> = by_key
        .iter()
        .map(|(k, rs)| (k.to_string(), shared_params(rs)))
        .collect();
    let varying = varying_keys(shared.iter().map(|(_, p)| p));
    let mut groups: Vec<Group> = by_key
        .into_iter()
        .zip(shared)
        .map(|((key, mut rs), (_, params))| {
            rs.sort_by(|a, b| a.seed.cmp(&b.seed).then(a.run_id.cmp(&b.run_id)));
            let runs: Vec<RunData> = rs.into_iter().cloned().collect();
            let label = group_label(key, &params, &varying);
            let summaries = summarize(key, &runs, opts);
            Group {
                key: key.to_string(),
                label,
                params,
                runs,
                summaries,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        mode_rank(a.param(PARAM_MODE))
            .cmp(&mode_rank(b.param(PARAM_MODE)))
            .then(a.label.cmp(&b.label))
    });
    groups
}

fn mode_rank(mode: Option<&str>) -> usize {
    ["none", "behaviour", "intention", "both"]
        .iter()
        .position(|m| Some(*m) == mode)
        .unwrap_or(4)
}

fn shared_params(runs: &[&RunData]) -> BTreeMap<String, String> {
    let mut params = runs[0].params.clone();
    params.retain(|k, v| runs.iter().all(|r| r.params.get(k) == Some(v)));
    params
}

fn varying_keys<'a>(params: impl Iterator<Item = &'a BTreeMap<String, String>>) -> Vec<String> {
    let all: Vec<&BTreeMap<String, String>> = params.collect();
    let keys: BTreeSet<&String> = all.iter().flat_map(|p| p.keys()).collect();
    keys.into_iter()
        .filter(|k| {
            let values: BTreeSet<Option<&String>> = all.iter().map(|p| p.get(*k)).collect();
            values.len() > 1
        })
        .cloned()
        .collect()
}

fn group_label(key: &str, params: &BTreeMap<String, String>, varying: &[String]) -> String {
    let parts: Vec<String> = varying
        .iter()
        .filter_map(|k| {
            let short = k.rsplit('.').next().unwrap_or(k);
            params.get(k).map(|v| format!("{short}={v}"))
        })
        .collect();
    if parts.is_empty() {
        params
            .get(PARAM_MODE)
            .map(|m| format!("mode={m}"))
            .unwrap_or_else(|| key.chars().take(12).collect())
    } else {
        parts.join(", ")
    }
}

/// A bootstrap seed that depends on the options' seed, the group and the metric only.
fn derived_seed(base: u64, group: &str, metric: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(base.to_le_bytes())
        .chain_update(group.as_bytes())
        .chain_update([0u8])
        .chain_update(metric.as_bytes())
        .finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn summarize(key: &str, runs: &[RunData], opts: &ReportOptions) -> BTreeMap<String, Summary> {
    let names: BTreeSet<&String> = runs.iter().flat_map(|r| r.metrics.keys()).collect();
    names
        .into_iter()
        .map(|name| {
            let values: Vec<f64> = runs
                .iter()
                .filter_map(|r| r.metrics.get(name).copied())
                .filter(|v| v.is_finite())
                .collect();
            let seed = derived_seed(opts.seed, key, name);
            let summary = Summary {
                n: values.len(),
                mean: stats::mean(&values),
                std: stats::std(&values),
                ci: stats::bootstrap_ci(&values, 0.95, opts.bootstrap_resamples, seed),
                values,
            };
            (name.clone(), summary)
        })
        .collect()
}

/// Metrics shown in the results tables: every metric but confusion-matrix counts.
pub(crate) fn result_metrics<'a>(groups: impl IntoIterator<Item = &'a Group>) -> Vec<String> {
    let names: BTreeSet<&String> = groups
        .into_iter()
        .flat_map(|g| g.summaries.keys())
        .collect();
    names
        .into_iter()
        .filter(|n| super::figures::confusion_cell(n).is_none())
        .cloned()
        .collect()
}

/// Formats a number for display: 4 decimals, or "–" when missing.
pub(crate) fn fmt_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "–".into()
    }
}

/// "mean ± std", or the mean alone for one seed.
pub(crate) fn fmt_summary(s: &Summary) -> String {
    if s.n >= 2 {
        format!("{} ± {}", fmt_num(s.mean), fmt_num(s.std))
    } else {
        fmt_num(s.mean)
    }
}

pub(crate) fn fmt_p(p: f64) -> String {
    if !p.is_finite() {
        "–".into()
    } else if p < 1e-4 {
        format!("{p:.2e}")
    } else {
        format!("{p:.4}")
    }
}

fn commit_label(r: &RunData) -> String {
    let short: String = r.git_commit.chars().take(12).collect();
    if r.git_dirty {
        format!("{short}-dirty")
    } else {
        short
    }
}

/// Every run, finished or not, with the ids that make the numbers traceable.
pub(crate) fn runs_section(runs: &[RunData], groups: &[Group]) -> Section {
    let label_of: BTreeMap<&str, &str> = groups
        .iter()
        .map(|g| (g.key.as_str(), g.label.as_str()))
        .collect();
    let header: Vec<String> = [
        "run",
        "experiment",
        "group",
        "seed",
        "status",
        "spec hash",
        "git commit",
    ]
    .map(String::from)
    .to_vec();
    let mut table = Table::new("runs", "Runs in this report (every seed).", header);
    let metric_names: BTreeSet<&String> = runs.iter().flat_map(|r| r.metrics.keys()).collect();
    let mut csv_header: Vec<String> = [
        "run_id",
        "experiment",
        "group_key",
        "group",
        "seed",
        "status",
        "spec_hash",
        "git_commit",
        "git_dirty",
    ]
    .map(String::from)
    .to_vec();
    csv_header.extend(metric_names.iter().map(|m| m.to_string()));
    let mut csv_rows = Vec::new();
    let mut sorted: Vec<&RunData> = runs.iter().collect();
    sorted.sort_by(|a, b| {
        a.group_key
            .cmp(&b.group_key)
            .then(a.seed.cmp(&b.seed))
            .then(a.run_id.cmp(&b.run_id))
    });
    for r in sorted {
        let group = label_of
            .get(r.group_key.as_str())
            .copied()
            .unwrap_or("(not finished)");
        table.rows.push(vec![
            r.run_id.clone(),
            r.experiment.clone(),
            group.to_string(),
            r.seed.to_string(),
            r.status.clone(),
            r.spec_hash.chars().take(16).collect(),
            commit_label(r),
        ]);
        let mut row = vec![
            r.run_id.clone(),
            r.experiment.clone(),
            r.group_key.clone(),
            group.to_string(),
            r.seed.to_string(),
            r.status.clone(),
            r.spec_hash.clone(),
            r.git_commit.clone(),
            r.git_dirty.to_string(),
        ];
        row.extend(
            metric_names
                .iter()
                .map(|m| r.metrics.get(*m).map(|v| v.to_string()).unwrap_or_default()),
        );
        csv_rows.push(row);
    }
    table.csv = Some((csv_header, csv_rows));
    let commits: BTreeSet<String> = runs.iter().map(commit_label).collect();
    let mut text = vec![format!(
        "{} runs in {} groups; git commits: {}.",
        runs.len(),
        groups.len(),
        commits.into_iter().collect::<Vec<_>>().join(", ")
    )];
    if runs.iter().any(|r| r.git_dirty) {
        text.push(
            "Some runs were made from a working tree with uncommitted changes (\"-dirty\").".into(),
        );
    }
    Section {
        title: "Runs".into(),
        text,
        tables: vec![table],
        figures: Vec::new(),
    }
}

/// Every metric, mean ± std over seeds: a row per metric, a column per group (so many metrics
/// never push a group off-screen); the CSV has the CI, n, the run ids and each seed's value.
pub(crate) fn results_section(groups: &[Group]) -> Section {
    let metrics = result_metrics(groups);
    let mut header = vec!["metric".to_string()];
    header.extend(
        groups
            .iter()
            .map(|g| format!("{} (n={})", g.label, g.runs.len())),
    );
    let mut table = Table::new("results", "Every metric: mean ± std over seeds.", header);
    for m in &metrics {
        let mut row = vec![m.clone()];
        row.extend(
            groups
                .iter()
                .map(|g| g.summaries.get(m).map_or_else(|| "–".into(), fmt_summary)),
        );
        table.rows.push(row);
    }
    let csv_header = [
        "group",
        "group_key",
        "metric",
        "n",
        "mean",
        "std",
        "ci95_low",
        "ci95_high",
        "run_ids",
        "seed_values",
    ]
    .map(String::from)
    .to_vec();
    let mut csv_rows = Vec::new();
    for g in groups {
        for (m, s) in &g.summaries {
            let (lo, hi) =
                s.ci.map(|(l, h)| (l.to_string(), h.to_string()))
                    .unwrap_or_default();
            csv_rows.push(vec![
                g.label.clone(),
                g.key.clone(),
                m.clone(),
                s.n.to_string(),
                s.mean.to_string(),
                s.std.to_string(),
                lo,
                hi,
                g.runs
                    .iter()
                    .map(|r| r.run_id.as_str())
                    .collect::<Vec<_>>()
                    .join(";"),
                s.values
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(";"),
            ]);
        }
    }
    table.csv = Some((csv_header, csv_rows));
    Section {
        title: "Every metric".into(),
        text: vec![
            "Every metric of every stage, bookkeeping included. Each cell is the mean ± sample \
             standard deviation over the seeds of a group (runs that differ only by seed). tables/results.csv adds n, the percentile bootstrap 95% \
             CI of the mean and each seed's value; tables/runs.csv has every run."
                .into(),
        ],
        tables: vec![table],
        figures: Vec::new(),
    }
}

/// The baseline group: the option if it names a group, else the `none` mode, else the first.
pub(crate) fn baseline_index(groups: &[Group], opts: &ReportOptions) -> Option<usize> {
    if groups.len() < 2 {
        return None;
    }
    if let Some(b) = &opts.baseline
        && let Some(i) = groups.iter().position(|g| &g.key == b || &g.label == b)
    {
        return Some(i);
    }
    groups
        .iter()
        .position(|g| g.param(PARAM_MODE) == Some("none"))
        .or(Some(0))
}

/// Across-seed and per-example significance tables against the baseline group.
pub(crate) fn significance_sections(
    groups: &[Group],
    opts: &ReportOptions,
    notes: &mut Vec<String>,
) -> Vec<Section> {
    let Some(base) = baseline_index(groups, opts) else {
        return Vec::new();
    };
    if let Some(b) = &opts.baseline
        && groups[base].key != *b
        && groups[base].label != *b
    {
        notes.push(format!(
            "baseline {b:?} names no group; using \"{}\" instead",
            groups[base].label
        ));
    }
    let mut sections = Vec::new();
    if let Some(table) = across_seeds_table(groups, base, opts, notes) {
        sections.push(Section {
            title: "Significance across seeds".into(),
            text: vec![format!(
                "Each group against the baseline \"{}\": Welch's t-test and the Mann–Whitney U \
                 test over the per-seed values; P(improve) = P(X > Y) + ½·P(X = Y) with X the \
                 group, Y the baseline. The Welch p-values are Holm-corrected over this table's \
                 family of {} comparisons; markers * p < 0.05, ** p < 0.01, *** p < 0.001 after \
                 correction.",
                groups[base].label,
                table.rows.len()
            )],
            tables: vec![table],
            figures: Vec::new(),
        });
    }
    if let Some(table) = per_example_table(groups, base, opts) {
        sections.push(Section {
            title: "Significance per example (paired, same seed)".into(),
            text: vec![format!(
                "For every seed both runs share, per-example results are paired by example id. \
                 Binary outcomes: McNemar (exact binomial below {} discordant pairs, else \
                 chi-square with continuity correction). Continuous: Wilcoxon signed-rank \
                 (primary; scipy's defaults), a sign-flip permutation test of the mean \
                 difference and the paired t-test. The primary p-values are Holm-corrected over \
                 this table's family of {} comparisons.",
                stats::MCNEMAR_EXACT_BELOW,
                table.rows.len()
            )],
            tables: vec![table],
            figures: Vec::new(),
        });
    }
    sections
}

/// One across-seed comparison of a group with the baseline on one metric.
pub(crate) struct SeedTest {
    pub welch_p: f64,
    pub mwu_p: f64,
    pub prob_improvement: f64,
}

pub(crate) fn seed_test(group: &Summary, baseline: &Summary) -> Option<SeedTest> {
    if group.n < 2 || baseline.n < 2 {
        return None;
    }
    let welch = stats::ttest_welch(&group.values, &baseline.values).ok()?;
    let mwu = stats::mann_whitney(&group.values, &baseline.values).ok()?;
    Some(SeedTest {
        welch_p: welch.pvalue,
        mwu_p: mwu.outcome.pvalue,
        prob_improvement: mwu.prob_improvement,
    })
}

fn across_seeds_table(
    groups: &[Group],
    base: usize,
    _opts: &ReportOptions,
    notes: &mut Vec<String>,
) -> Option<Table> {
    let header = [
        "metric",
        "group",
        "baseline",
        "Δ mean",
        "Welch p",
        "Holm p",
        "",
        "MWU p",
        "P(improve)",
    ]
    .map(String::from)
    .to_vec();
    let mut table = Table::new(
        "significance_seeds",
        "Group vs baseline across seeds.",
        header,
    );
    let mut raw = Vec::new();
    for m in result_metrics(groups) {
        let Some(b) = groups[base].summaries.get(&m) else {
            continue;
        };
        for (i, g) in groups.iter().enumerate() {
            if i == base {
                continue;
            }
            let Some(s) = g.summaries.get(&m) else {
                continue;
            };
            match seed_test(s, b) {
                Some(t) => raw.push((m.clone(), g.label.clone(), s.mean - b.mean, t)),
                None => notes.push(format!(
                    "{m}: {} vs {}: fewer than two seeds on a side, no across-seed test",
                    g.label, groups[base].label
                )),
            }
        }
    }
    if raw.is_empty() {
        return None;
    }
    let adjusted = stats::holm(&raw.iter().map(|r| r.3.welch_p).collect::<Vec<_>>());
    for ((m, label, delta, t), adj) in raw.into_iter().zip(adjusted) {
        table.rows.push(vec![
            m,
            label,
            groups[base].label.clone(),
            format!("{delta:+.4}"),
            fmt_p(t.welch_p),
            fmt_p(adj),
            stats::stars(adj).into(),
            fmt_p(t.mwu_p),
            fmt_num(t.prob_improvement),
        ]);
    }
    Some(table)
}

fn per_example_table(groups: &[Group], base: usize, opts: &ReportOptions) -> Option<Table> {
    let header = [
        "metric",
        "group",
        "baseline",
        "seed",
        "pairs",
        "Δ mean",
        "test",
        "p",
        "Holm p",
        "",
        "other tests",
    ]
    .map(String::from)
    .to_vec();
    let mut table = Table::new("significance_examples", "Paired per-example tests.", header);
    let mut raw: Vec<(String, String, u64, Comparison)> = Vec::new();
    for (i, g) in groups.iter().enumerate() {
        if i == base {
            continue;
        }
        for run in &g.runs {
            let Some(b) = groups[base].run_with_seed(run.seed) else {
                continue;
            };
            for c in compare_with(b, run, opts) {
                if !c.tests.is_empty() {
                    raw.push((g.label.clone(), groups[base].label.clone(), run.seed, c));
                }
            }
        }
    }
    if raw.is_empty() {
        return None;
    }
    let adjusted = stats::holm(&raw.iter().map(|r| r.3.tests[0].pvalue).collect::<Vec<_>>());
    for ((label, base_label, seed, c), adj) in raw.into_iter().zip(adjusted) {
        let primary = &c.tests[0];
        let others: Vec<String> = c.tests[1..]
            .iter()
            .map(|t| format!("{} p={}", t.test, fmt_p(t.pvalue)))
            .collect();
        table.rows.push(vec![
            c.metric.clone(),
            label,
            base_label,
            seed.to_string(),
            c.n_pairs.to_string(),
            c.paired_delta
                .map(|d| format!("{d:+.4}"))
                .unwrap_or_else(|| "–".into()),
            format!("{} ({})", primary.test, primary.method),
            fmt_p(primary.pvalue),
            fmt_p(adj),
            stats::stars(adj).into(),
            others.join("; "),
        ]);
    }
    Some(table)
}
