//! `recx report`, `recx compare` and `recx import-ratings`: select runs from the store and hand
//! them to the report module as plain data (the report module never sees the store); the
//! annotation sheet for people's ratings goes beside each report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::cli::{ok, open_store};
use crate::judge::human;
use crate::report::{ReportOptions, RunData, compare, render_comparison, render_report};
use crate::store::{RunRecord, Store};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run ids or unique prefixes.
    pub ids: Vec<String>,
    /// All runs of this experiment.
    #[arg(long)]
    pub experiment: Option<String>,
    /// All runs of this sweep spec (its expanded variants and seeds).
    #[arg(long, value_name = "SPEC")]
    pub sweep: Option<PathBuf>,
    /// Keep runs whose param KEY equals VALUE (repeatable), e.g. --where alignment.mode=both.
    #[arg(long = "where", value_name = "KEY=VALUE")]
    pub filters: Vec<String>,
    /// Report folder name under --out (default: the experiment name, or "report").
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value = "reports")]
    pub out: PathBuf,
    /// Lay out the paper's Tables 1-3 with the published numbers beside ours.
    #[arg(long)]
    pub paper: bool,
    /// The paper's dataset column to show: games, movies or steam.
    #[arg(long, default_value = "games")]
    pub paper_dataset: String,
    /// Group key or label of the baseline group for significance tests.
    #[arg(long)]
    pub baseline: Option<String>,
    /// Open the report in a browser when it is written ($BROWSER, else the desktop's opener).
    #[arg(long)]
    pub open: bool,
}

#[derive(Debug, Args)]
pub struct ImportRatingsArgs {
    /// The filled `annotation/sheet.csv` of a report.
    pub sheet: PathBuf,
    /// Whose ratings these are (default: the sheet's file name without `.csv`). Importing again
    /// under the same name replaces that annotator's ratings.
    #[arg(long)]
    pub annotator: Option<String>,
}

pub fn cmd_report(root: &Path, args: &ReportArgs) -> Result<std::process::ExitCode> {
    if let Some(name) = &args.name {
        crate::report::check_report_name(name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    }
    let store = open_store(root)?;
    let runs = select_runs(&store, args)?;
    if runs.is_empty() {
        bail!("no runs match the selection");
    }
    let data = runs
        .iter()
        .map(|r| run_data(&store, r))
        .collect::<crate::Result<Vec<_>>>()?;
    let name = args
        .name
        .clone()
        .or_else(|| spec_report_name(&runs))
        .or_else(|| args.experiment.clone())
        .or_else(|| single_experiment(&runs))
        .unwrap_or_else(|| "report".into());
    crate::report::check_report_name(&name).map_err(|e| anyhow::anyhow!("--name: {e}"))?;
    let opts = ReportOptions {
        title: format!("recx report: {name}"),
        paper: args.paper,
        paper_dataset: args.paper_dataset.clone(),
        baseline: args.baseline.clone(),
        ..ReportOptions::default()
    };
    let out_dir = args.out.join(&name);
    let summary = render_report(&data, &opts, &out_dir)
        .with_context(|| format!("rendering the report into {}", out_dir.display()))?;
    println!(
        "report of {} runs in {} groups: {}",
        summary.n_runs,
        summary.n_groups,
        out_dir.join("index.html").display()
    );
    for note in &summary.notes {
        println!("note: {note}");
    }
    let annotation = out_dir.join("annotation");
    if let Some(sheet) = human::write_sheet(&store, &runs, &annotation)? {
        println!(
            "annotation sheet of {} explanations for people to rate (blinded, shuffled): {}",
            sheet.rows,
            sheet.path.display()
        );
    }
    if args.open {
        open_in_browser(&out_dir.join("index.html"))?;
    }
    Ok(ok())
}

pub fn cmd_import_ratings(root: &Path, args: &ImportRatingsArgs) -> Result<std::process::ExitCode> {
    let annotator = match &args.annotator {
        Some(name) => name.clone(),
        None => args
            .sheet
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string(),
    };
    let store = open_store(root)?;
    let imported = human::import_ratings(&store, &args.sheet, &annotator)
        .with_context(|| format!("importing ratings from {}", args.sheet.display()))?;
    println!(
        "{annotator}: {} ratings recorded for {} explanation stage(s), {} rows left blank; \
         `recx report` shows them as human.rating_mean and in the ratings figure",
        imported.rated, imported.stages, imported.blank
    );
    Ok(ok())
}

/// Opens `page` with `$BROWSER` (the Unix convention) or the desktop's opener, and waits for
/// the opener (not the browser) to hand it over.
fn open_in_browser(page: &Path) -> Result<()> {
    let page =
        std::path::absolute(page).with_context(|| format!("resolving {}", page.display()))?;
    let openers: Vec<(String, Vec<String>)> = match std::env::var("BROWSER") {
        Ok(b) if !b.trim().is_empty() => vec![(b, vec![])],
        _ if cfg!(target_os = "macos") => vec![("open".into(), vec![])],
        _ if cfg!(windows) => vec![("cmd".into(), ["/C", "start", ""].map(String::from).to_vec())],
        _ => vec![
            ("xdg-open".into(), vec![]),
            ("gio".into(), vec!["open".into()]),
        ],
    };
    let mut tried = Vec::new();
    for (program, args) in openers {
        match std::process::Command::new(&program)
            .args(&args)
            .arg(&page)
            .stdin(std::process::Stdio::null())
            .status()
        {
            Ok(status) if status.success() => return Ok(()),
            Ok(status) => tried.push(format!("{program} exited with {status}")),
            Err(e) => tried.push(format!("{program}: {e}")),
        }
    }
    bail!(
        "could not open {} in a browser ({}); set BROWSER or open the file by hand",
        page.display(),
        tried.join("; ")
    )
}

pub fn cmd_compare(root: &Path, a: &str, b: &str) -> Result<std::process::ExitCode> {
    let store = open_store(root)?;
    let (ra, rb) = (store.find_run(a)?, store.find_run(b)?);
    let (da, db) = (run_data(&store, &ra)?, run_data(&store, &rb)?);
    print!("{}", render_comparison(&da, &db, &compare(&da, &db)));
    Ok(ok())
}

/// The `[report] name` the runs' specs set, when they all set the same one.
fn spec_report_name(runs: &[RunRecord]) -> Option<String> {
    let name_of = |r: &RunRecord| {
        r.resolved["report"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(String::from)
    };
    let first = name_of(runs.first()?)?;
    runs.iter()
        .all(|r| name_of(r).as_deref() == Some(first.as_str()))
        .then_some(first)
}

fn single_experiment(runs: &[RunRecord]) -> Option<String> {
    let first = &runs.first()?.experiment;
    runs.iter()
        .all(|r| &r.experiment == first)
        .then(|| first.clone())
}

fn select_runs(store: &Store, args: &ReportArgs) -> Result<Vec<RunRecord>> {
    let mut runs: Vec<RunRecord> = if !args.ids.is_empty() {
        args.ids
            .iter()
            .map(|id| store.find_run(id))
            .collect::<crate::Result<_>>()?
    } else if let Some(spec) = &args.sweep {
        let spec = crate::spec::Spec::load(spec)?;
        let sweep = crate::sweep::expand(&spec, &crate::pipeline::registry())?;
        sweep
            .runs
            .iter()
            .filter_map(|r| store.get_run(&r.run_id).transpose())
            .collect::<crate::Result<_>>()?
    } else {
        store
            .runs()?
            .into_iter()
            .filter(|r| args.experiment.as_deref().is_none_or(|e| r.experiment == e))
            .collect()
    };
    for f in &args.filters {
        let (key, value) = f
            .split_once('=')
            .with_context(|| format!("--where {f:?}: expected KEY=VALUE"))?;
        let mut kept = Vec::new();
        for r in runs {
            let params = store.params(&r.run_id)?;
            if params.get(key).is_some_and(|v| param_text(v) == value) {
                kept.push(r);
            }
        }
        runs = kept;
    }
    Ok(runs)
}

/// A param as people write it: strings bare, everything else as JSON (lists as `[..]`).
fn param_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Converts a stored run into the report's plain data.
pub fn run_data(store: &Store, r: &RunRecord) -> crate::Result<RunData> {
    let metrics = store.run_metrics(r)?;
    let params: BTreeMap<String, String> = store
        .params(&r.run_id)?
        .iter()
        .map(|(k, v)| (k.clone(), param_text(v)))
        .collect();
    Ok(RunData {
        run_id: r.run_id.clone(),
        experiment: r.experiment.clone(),
        group_key: r.group_key.clone(),
        spec_hash: r.spec_hash.clone(),
        git_commit: r.provenance.git_commit.clone().unwrap_or_default(),
        git_dirty: r.provenance.git_dirty.unwrap_or(false),
        seed: r.seed,
        status: r.status.to_string(),
        params,
        metrics: metrics.scalars,
        series: metrics.series,
        examples: metrics.examples,
    })
}
