//! Reports over finished runs: tables (Markdown, LaTeX, CSV), figures (PNG, SVG), significance
//! tests, and the paper's Tables 1–3 beside ours.
//!
//! Why a plain-data boundary: this module must not know about sled or TOML, so that it can be
//! tested on synthetic runs and so that the store's schema can change without touching it. The
//! store's loader converts each stored run into a [`RunData`] and calls [`render_report`] (for
//! `recx report`) or [`compare`] + [`render_comparison`] (for `recx compare A B`).
//!
//! # Contract for the caller (the store loader)
//! - `group_key`: runs that differ only by seed share it (the plan's hash without the seed).
//!   They collapse to mean ± std with a seeded bootstrap 95% CI and n; every seed stays in
//!   `tables/runs.csv`.
//! - `params`: the resolved spec as dotted keys → display strings (a TOML list as its TOML text,
//!   e.g. `alignment.tasks = ["uid2next", "uid2hist"]`, the empty list as `[]`). The report reads
//!   [`PARAM_MODE`] (`alignment.mode`: behaviour / intention / both / none) and [`PARAM_TASKS`]
//!   (`alignment.tasks`). Params that differ between groups name the groups.
//! - `metrics`: final scalar metrics, named `<stage>.<metric>` as the store records them. Names
//!   are free; the paper tables look up the names in [`PaperKeys`] (defaults such as
//!   `eval.uid2next.hit@5`, `judge.rating_mean`, `discriminator.predictor_mse`). Metrics named
//!   `<stage>.confusion/<true label>/<predicted label>` are the counts of a confusion matrix
//!   (paper Fig. 4), one matrix per `<stage>.` prefix.
//! - `series`: training curves, name → (step, value), e.g. `train.loss`.
//! - `examples`: per-example results, metric name → (example id, value). Binary metrics (values
//!   all 0 or 1) are compared with McNemar, others with Wilcoxon, a paired permutation test and the
//!   paired t-test. Example ids pair the two runs. [`EXAMPLE_RATING`] (`judge.rating`, integers
//!   0–3) and [`EXAMPLE_HUMAN_RATING`] (`human.rating`, people's ratings) feed the
//!   rating-distribution figures (paper Fig. 3).
//!
//! # What comes out (`out_dir`)
//! The page leads with what an experiment is for: the paper's Tables 1–3 with Table 1's baseline
//! rows and significance markers (`headline`), each run's Table 1 with per-example tests, the
//! significance tables; then one section per stage with its own figures (`stages`); bookkeeping
//! (every metric, alignment-data counts, the runs) comes last.
//!
//! `index.md`, `index.html` (self-contained: PNGs embedded as data URIs; the SVGs lie beside it
//! in `figures/`; every string from runs is HTML-escaped), `figures/<id>.{png,svg}`, and
//! `tables/<id>.{md,tex,csv}`. The runs table lists run ids, spec hashes and git commits, so every
//! number can be traced. Output bytes depend only on the input and the options.
//!
//! # Statistics in the report
//! Groups are compared with a baseline group (the `none` alignment mode if present, else the
//! first group, or [`ReportOptions::baseline`]): across seeds with Welch's t-test (markers) and
//! Mann–Whitney U with the probability of improvement; per example, for every seed both groups
//! ran, with the paired tests above. Holm's correction is applied over each table's family of
//! comparisons, and the report says so.

mod compare;
mod figures;
mod group;
mod headline;
mod page;
mod paper;
mod stages;
mod table;
mod table1;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use compare::{Comparison, compare, render_comparison};
pub use group::{Group, Summary};
pub use paper::{PaperKeys, PublishedValue, published_values};
pub use table::{Table, escape_latex};
pub use table1::run_table1;

use crate::Result;
use crate::error::IoContext;

/// Param naming the alignment mode.
pub const PARAM_MODE: &str = "alignment.mode";
/// Param naming the subset of alignment tasks (task ablation, paper Fig. 7).
pub const PARAM_TASKS: &str = "alignment.tasks";
/// Per-example judge ratings, integers 0–3 (paper Fig. 3).
pub const EXAMPLE_RATING: &str = "judge.rating";
/// Per-example ratings by people (`recx import-ratings`), integers 0–3, one per case and
/// annotator (ids `<case>@<annotator>`): the human panel of paper Fig. 3.
pub const EXAMPLE_HUMAN_RATING: &str = "human.rating";
/// Marks confusion-matrix counts in metric names: `<stage>.confusion/<true>/<predicted>`.
pub const CONFUSION_MARK: &str = "confusion/";

/// One run as the report sees it; built by the store loader.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunData {
    pub run_id: String,
    pub experiment: String,
    /// Equal for runs that differ only by seed.
    pub group_key: String,
    pub spec_hash: String,
    pub git_commit: String,
    pub git_dirty: bool,
    pub seed: u64,
    /// The store's run status ("completed", "failed", ...); only completed runs (also accepted:
    /// "done") enter statistics, the rest are listed.
    pub status: String,
    pub params: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
    pub series: BTreeMap<String, Vec<(u64, f64)>>,
    pub examples: BTreeMap<String, Vec<(String, f64)>>,
}

impl RunData {
    /// Whether this run finished and its numbers may be used.
    pub fn is_done(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "done")
    }
}

/// How to render a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    pub title: String,
    /// Lay out the paper's Tables 1–3 with the published numbers beside ours.
    pub paper: bool,
    /// Which dataset's published numbers to show: "games", "movies" or "steam".
    pub paper_dataset: String,
    pub paper_keys: PaperKeys,
    /// Group key or group label of the baseline for significance tests.
    pub baseline: Option<String>,
    pub bootstrap_resamples: usize,
    /// Monte Carlo sign flips of the permutation test beyond exact enumeration.
    pub permutation_resamples: usize,
    /// Seed of the bootstrap and the permutation test.
    pub seed: u64,
    /// Significance level of the markers (after Holm's correction).
    pub alpha: f64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            title: "recx report".into(),
            paper: false,
            paper_dataset: "games".into(),
            paper_keys: PaperKeys::default(),
            baseline: None,
            bootstrap_resamples: 10_000,
            permutation_resamples: 9_999,
            seed: 2024,
            alpha: 0.05,
        }
    }
}

/// What [`render_report`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    pub out_dir: PathBuf,
    pub n_runs: usize,
    pub n_groups: usize,
    /// Table ids (files `tables/<id>.{md,tex,csv}`).
    pub tables: Vec<String>,
    /// Figure ids (files `figures/<id>.{png,svg}`).
    pub figures: Vec<String>,
    /// Things the report could not do (e.g. a test with too few seeds), also listed in it.
    pub notes: Vec<String>,
}

/// A rendered figure (files `figures/<id>.{png,svg}`) and its PNG bytes for embedding.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    pub id: String,
    pub caption: String,
    pub png: Vec<u8>,
}

/// Everything one report contains, before it is written.
pub(crate) struct ReportContent {
    pub title: String,
    pub sections: Vec<Section>,
    pub notes: Vec<String>,
}

/// A titled block of tables, then figures, with explanatory text.
pub(crate) struct Section {
    pub title: String,
    pub text: Vec<String>,
    pub tables: Vec<Table>,
    pub figures: Vec<Figure>,
}

/// Checks a report folder name: one plain path component, so `--out` really bounds where a
/// report is written (`../../x` or `a/b` would escape it or nest it).
pub fn check_report_name(name: &str) -> std::result::Result<(), String> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('.');
    if plain {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a plain folder name; use no path separators and do not start \
             with '.'"
        ))
    }
}

/// Table 1 of every finished run that measured baseline rows (as `recx run` prints it).
fn table1_section(runs: &[RunData], opts: &ReportOptions) -> Option<Section> {
    let tables: Vec<Table> = runs
        .iter()
        .filter(|r| r.is_done())
        .filter_map(|r| {
            let mut t = run_table1(r, opts)?;
            t.id = format!("table1_run_{}", r.run_id);
            Some(t)
        })
        .collect();
    (!tables.is_empty()).then(|| Section {
        title: "Table 1 per run, with the baselines".into(),
        text: vec![
            "Each run's baseline rows (its `baselines` stage) and its aligned model (`eval`), \
             on the same validation records, with per-example paired tests."
                .into(),
        ],
        tables,
        figures: Vec::new(),
    })
}

/// Renders a report over `runs` into `out_dir` (created if missing).
pub fn render_report(
    runs: &[RunData],
    opts: &ReportOptions,
    out_dir: &Path,
) -> Result<ReportSummary> {
    if runs.is_empty() {
        return Err(crate::Error::Config(
            "the report has no runs to show; check the selection".into(),
        ));
    }
    let groups = group::group_runs(runs, opts);
    let figures_dir = out_dir.join("figures");
    std::fs::create_dir_all(&figures_dir).at(&figures_dir)?;
    let mut notes = Vec::new();
    // What the experiment is for first (Tables 1–3 with baselines and significance), then the
    // stages in pipeline order, then bookkeeping: every metric, the data counts, the runs.
    let mut sections = Vec::new();
    sections.extend(headline::headline_section(
        &groups,
        opts,
        &figures_dir,
        &mut notes,
    )?);
    sections.extend(table1_section(runs, opts));
    sections.extend(group::significance_sections(&groups, opts, &mut notes));
    sections.extend(stages::stage_sections(&groups, &figures_dir)?);
    sections.push(group::results_section(&groups));
    sections.extend(paper::table_b2_section(&groups, opts)?);
    sections.push(group::runs_section(runs, &groups));
    if sections.iter().all(|s| s.figures.is_empty()) {
        notes.push("no figure: the runs have no metrics, series or examples to plot".into());
    }
    let content = ReportContent {
        title: opts.title.clone(),
        sections,
        notes,
    };
    page::write_all(&content, out_dir)?;
    Ok(ReportSummary {
        out_dir: out_dir.to_path_buf(),
        n_runs: runs.len(),
        n_groups: groups.len(),
        tables: content
            .sections
            .iter()
            .flat_map(|s| s.tables.iter().map(|t| t.id.clone()))
            .collect(),
        figures: content
            .sections
            .iter()
            .flat_map(|s| s.figures.iter().map(|f| f.id.clone()))
            .collect(),
        notes: content.notes,
    })
}
