//! The command line: argument parsing and printing only; the work happens in the library.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::hash::short;
use crate::pipeline::{Progress, StageKind};
use crate::plan::Plan;
use crate::runner::{RunOptions, RunOutcome, stage_is_done};
use crate::spec::Spec;
use crate::store::{RunRecord, Store};

#[derive(Debug, Parser)]
#[command(
    name = "recx",
    version,
    about = "RecExplainer research harness: align LLMs to recommenders, measure, explain"
)]
pub struct Cli {
    /// Results folder holding the store, artifacts and run logs.
    #[arg(long, global = true, default_value = "results")]
    pub store: PathBuf,
    /// Only warnings and errors; no progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an experiment spec (finished stages are reused; an interrupted run resumes).
    Run(RunArgs),
    /// Validate a spec and print the resolved plan with its hashes.
    Check { spec: PathBuf },
    /// List, show or remove runs.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Print a run's metrics.
    Metrics {
        /// Run id (a unique prefix is enough).
        id: String,
        /// Also print step series.
        #[arg(long)]
        series: bool,
    },
    /// Write metrics and params of chosen runs as CSV and JSON Lines (for pandas).
    Export(ExportArgs),
    /// Expand a spec's [sweep] and run its variants (completed runs are skipped).
    Sweep(SweepArgs),
    /// Render a report (tables, figures, significance tests) over chosen runs.
    Report(crate::cli_report::ReportArgs),
    /// Print the metric differences of two runs with paired tests.
    Compare { a: String, b: String },
    /// Read people's ratings from an annotation sheet that `recx report` wrote (paper Fig. 3).
    ImportRatings(crate::cli_report::ImportRatingsArgs),
    /// Build a dataset outside a run, or print a built dataset's statistics.
    #[command(subcommand)]
    Data(crate::data::DataCommand),
    /// Use an LLM directly (e.g. `recx llm chat --model smollm2 "question"`).
    Llm(crate::llm::cli::LlmArgs),
    /// Fetch or locate pretrained assets (models) in the local cache.
    Assets(crate::llm::cli::AssetsArgs),
    /// Serve a model over an OpenAI-compatible chat-completions API (Ctrl-C stops).
    Serve(ServeArgs),
    /// Check the store's database against its folders, or rebuild it from them.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Merge other stores (e.g. sweep shards) into this one.
    Merge {
        /// Store folders to merge from.
        #[arg(required = true)]
        stores: Vec<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    pub spec: PathBuf,
    /// List what would run, run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only retry runs whose last attempt failed.
    #[arg(long)]
    pub rerun_failed: bool,
    /// Run this many runs in parallel worker processes.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Run only slice I of N of the sweep (e.g. 0/4), for cluster array jobs.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Write a cluster job script instead of running (slurm).
    #[arg(long, value_name = "KIND")]
    pub emit: Option<String>,
    /// Number of shards for --emit.
    #[arg(long, default_value_t = 4)]
    pub shards: usize,
    /// Folder for --emit's scripts.
    #[arg(long, default_value = "slurm")]
    pub emit_dir: PathBuf,
    /// (internal) run only these run ids.
    #[arg(long, hide = true, value_delimiter = ',')]
    pub runs: Vec<String>,
    /// (internal) worker database folder of a parallel sweep.
    #[arg(long, hide = true)]
    pub worker_db: Option<PathBuf>,
}

/// `recx serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A GGUF file, an HF folder, `smollm2`, or the id (prefix) of a run in --store whose train
    /// stage is done (its aligned model is served with its connectors).
    pub model: String,
    /// Address to listen on (keep 127.0.0.1 unless others must reach it).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Port (0 = any free one; the address is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The model id clients send (default: `smollm2`, the file stem, or `recx-RUN`).
    #[arg(long)]
    pub name: Option<String>,
    /// Chat template of a checkpoint (an aligned run brings its own).
    #[arg(long, default_value = "chatml")]
    pub template: String,
    /// `cpu`, `libtorch` (a `--features tch` build) or `cuda:N` (a `--features cuda` build).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Require this environment variable's value as the API key (bearer or `api-key`).
    #[arg(long, value_name = "NAME")]
    pub api_key_env: Option<String>,
    /// Requests admitted at once (answering or queued); more get 429 with Retry-After.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// `max_tokens` of requests that set none.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    pub spec: PathBuf,
    /// Recompute this stage and everything that depends on it (repeatable).
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,
    /// Run only these seeds of the spec (repeatable).
    #[arg(long)]
    pub seed: Vec<u64>,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// All runs with status, seed, plan hash and duration.
    List {
        /// Only runs of this experiment.
        #[arg(long)]
        experiment: Option<String>,
    },
    /// One run in detail.
    Show { id: String },
    /// Remove a run record (stage outputs shared with other runs stay).
    Rm { id: String },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Read every record and compare the database with the run and stage folders.
    Check,
    /// Move the database aside (kept) and restore run and stage records from the folders.
    Rebuild,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Run ids or prefixes (default: all runs, or those of --experiment).
    pub ids: Vec<String>,
    #[arg(long)]
    pub experiment: Option<String>,
    /// Output folder: runs.csv and runs.jsonl, or (mlflow) an MLflow file store.
    #[arg(long, default_value = "export")]
    pub out: PathBuf,
    /// `table` (runs.csv + runs.jsonl) or `mlflow` (MLflow's file-store layout, for
    /// `mlflow ui --backend-store-uri OUT`).
    #[arg(long, default_value = "table", value_parser = ["table", "mlflow"])]
    pub format: String,
}

/// Parses the arguments, sets up logging and Ctrl-C, and runs the command.
pub fn main() -> Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let progress = Progress::new(cli.quiet);
    let verbosity = if cli.quiet { 0 } else { 1 + cli.verbose };
    crate::logging::init(verbosity, &progress);
    install_ctrl_c();
    dispatch(cli, &progress)
}

fn install_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        if crate::pipeline::cancel_requested() {
            eprintln!("\nsecond Ctrl-C: exiting now");
            std::process::exit(130);
        }
        eprintln!("\ninterrupting: finishing the current step (Ctrl-C again to exit at once)");
        crate::pipeline::request_cancel();
    });
}

fn dispatch(cli: Cli, progress: &Progress) -> Result<std::process::ExitCode> {
    match cli.command {
        Command::Run(args) => cmd_run(&cli.store, &args, progress),
        Command::Check { spec } => cmd_check(&cli.store, &spec).map(|_| ok()),
        Command::Runs(RunsCommand::List { experiment }) => {
            cmd_runs_list(&open_store(&cli.store)?, experiment.as_deref()).map(|_| ok())
        }
        Command::Runs(RunsCommand::Show { id }) => match Store::open(&cli.store) {
            Ok(store) => cmd_runs_show(&store, &id).map(|_| ok()),
            // A running experiment holds the database; its files tell what it is doing.
            Err(crate::Error::StoreLocked { .. }) => {
                cmd_runs_show_files(&cli.store, &id).map(|_| ok())
            }
            Err(e) => Err(anyhow::Error::new(e)
                .context(format!("opening the store at {}", cli.store.display()))),
        },
        Command::Runs(RunsCommand::Rm { id }) => {
            let store = open_store(&cli.store)?;
            let run = store.find_run(&id)?;
            store.remove_run(&run.run_id)?;
            println!("removed run {}", run.run_id);
            Ok(ok())
        }
        Command::Metrics { id, series } => {
            cmd_metrics(&open_store(&cli.store)?, &id, series).map(|_| ok())
        }
        Command::Export(args) => cmd_export(&open_store(&cli.store)?, &args).map(|_| ok()),
        Command::Report(args) => crate::cli_report::cmd_report(&cli.store, &args),
        Command::Compare { a, b } => crate::cli_report::cmd_compare(&cli.store, &a, &b),
        Command::ImportRatings(args) => crate::cli_report::cmd_import_ratings(&cli.store, &args),
        Command::Data(cmd) => crate::data::run_data(cmd, cli.quiet)
            .map(|_| ok())
            .map_err(Into::into),
        Command::Llm(args) => crate::llm::cli::run_llm_command(args)
            .map(|_| ok())
            .map_err(Into::into),
        Command::Assets(args) => crate::llm::cli::run_assets_command(args)
            .map(|_| ok())
            .map_err(Into::into),
        Command::Sweep(args) => crate::cli_sweep::cmd_sweep(&cli.store, &args, progress),
        Command::Serve(args) => cmd_serve(&cli.store, &args).map(|_| ok()),
        Command::Store(StoreCommand::Check) => {
            let report = crate::store::repair::check(&cli.store)
                .with_context(|| format!("checking the store at {}", cli.store.display()))?;
            println!("store {}: readable; {report}", cli.store.display());
            Ok(ok())
        }
        Command::Store(StoreCommand::Rebuild) => {
            let report = crate::store::repair::rebuild(&cli.store)
                .with_context(|| format!("rebuilding the store at {}", cli.store.display()))?;
            println!("store {}: {report}", cli.store.display());
            Ok(ok())
        }
        Command::Merge { stores } => {
            let target = open_store(&cli.store)?;
            for s in &stores {
                let report = crate::merge::merge_path_into(&target, s)
                    .with_context(|| format!("merging {}", s.display()))?;
                println!("{}: {report}", s.display());
            }
            Ok(ok())
        }
    }
}

pub(crate) fn ok() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}

pub(crate) fn open_store(root: &Path) -> Result<Store> {
    Store::open(root).with_context(|| format!("opening the store at {}", root.display()))
}

fn load_plan(spec: &Path) -> Result<Plan> {
    let spec = Spec::load(spec)?;
    Ok(Plan::resolve(&spec, &crate::pipeline::registry())?)
}

fn parse_stages(names: &[String]) -> Result<Vec<StageKind>> {
    names
        .iter()
        .map(|n| {
            n.parse::<StageKind>()
                .map_err(|e| anyhow::anyhow!("--force: {e}"))
        })
        .collect()
}

fn cmd_run(root: &Path, args: &RunArgs, progress: &Progress) -> Result<std::process::ExitCode> {
    let plan = load_plan(&args.spec)?;
    let opts = RunOptions {
        force: parse_stages(&args.force)?,
        seeds: args.seed.clone(),
    };
    for s in &opts.seeds {
        if !plan.runs.iter().any(|r| r.seed == *s) {
            bail!("--seed {s}: the spec's experiment.seeds do not include it");
        }
    }
    let store = open_store(root)?;
    for id in store.recover_dead_runs()? {
        tracing::warn!("run {id} was left running by a process that died; marked interrupted");
    }
    let registry = crate::pipeline::registry();
    let outcomes = crate::runner::run_plan(&store, &plan, &registry, &opts, progress)?;
    let mut code = 0u8;
    for (id, outcome) in &outcomes {
        match outcome {
            RunOutcome::Completed => println!("run {id}: completed"),
            RunOutcome::AlreadyCompleted => println!("run {id}: already completed (nothing to do)"),
            RunOutcome::Failed(msg) => {
                println!("run {id}: FAILED: {msg}");
                code = code.max(1);
            }
            RunOutcome::Interrupted => {
                println!("run {id}: interrupted (rerun the same command to resume)");
                code = 130;
            }
        }
    }
    for (id, outcome) in &outcomes {
        if matches!(
            outcome,
            RunOutcome::Completed | RunOutcome::AlreadyCompleted
        ) {
            print_table1(&store, id)?;
        }
    }
    store.flush()?;
    Ok(std::process::ExitCode::from(code))
}

fn cmd_serve(root: &Path, args: &ServeArgs) -> Result<()> {
    use crate::serve::{ModelSource, ServeConfig, Server};
    let template = args
        .template
        .parse()
        .map_err(|e: String| anyhow::anyhow!("--template: {e}"))?;
    let (source, default_name) = ModelSource::resolve(&args.model, template, root)?;
    let api_key = match &args.api_key_env {
        None => None,
        Some(var) => Some(std::env::var(var).with_context(|| {
            format!("--api-key-env: the environment variable {var} is not set")
        })?),
    };
    let config = ServeConfig {
        source,
        name: args.name.clone().unwrap_or(default_name),
        addr: std::net::SocketAddr::new(args.host, args.port),
        api_key,
        concurrency: args.concurrency,
        device: args.device.parse()?,
        default_max_tokens: args.max_tokens,
    };
    let server = Server::start(config)?;
    // Scripts wait for this line (the port may have been chosen by the system).
    println!(
        "serving {} at {} (Ctrl-C stops)",
        server.model_name(),
        server.base_url()
    );
    use std::io::Write;
    std::io::stdout().flush()?;
    server.wait()?;
    println!("server stopped");
    Ok(())
}

/// Prints a finished run's Table 1 (its baseline rows and its aligned model), if it has one.
fn print_table1(store: &Store, id: &str) -> Result<()> {
    let Some(run) = store.get_run(id)? else {
        return Ok(());
    };
    let data = crate::cli_report::run_data(store, &run)?;
    if let Some(table) = crate::report::run_table1(&data, &crate::report::ReportOptions::default())
    {
        println!("\n{}\n{}", table.caption, table.to_markdown());
    }
    Ok(())
}

fn cmd_check(root: &Path, spec: &Path) -> Result<()> {
    let plan = load_plan(spec)?;
    // The store is only consulted to say which stages are already done; a store in use by a
    // running experiment is not an error for `check`.
    let store = Store::open(root).ok();
    println!("experiment  {}", plan.experiment);
    if !plan.description.is_empty() {
        println!("            {}", plan.description);
    }
    println!(
        "spec        {} (sha256 {})",
        plan.spec_path.display(),
        short(&plan.spec_hash)
    );
    println!(
        "plan hash   {} (group key: runs that differ only by seed)",
        plan.plan_hash
    );
    println!("runs        {}", plan.runs.len());
    for run in &plan.runs {
        println!("\nrun {}  seed {}", run.run_id, run.seed);
        for st in &run.stages {
            let state = match &store {
                Some(s) if stage_is_done(s, st)? => "done (cached)",
                Some(_) => "to run",
                None => "(store in use)",
            };
            let deps: Vec<String> = st.deps.keys().map(|k| k.to_string()).collect();
            println!(
                "  {:<16} {}  {:<14} deps: {}",
                st.kind.as_str(),
                short(&st.hash),
                state,
                if deps.is_empty() {
                    "-".into()
                } else {
                    deps.join(", ")
                }
            );
        }
    }
    println!("\nresolved spec (defaults filled in):");
    println!(
        "{}",
        toml::to_string_pretty(&plan.spec).context("rendering the resolved spec")?
    );
    Ok(())
}

fn status_label(store: &Store, run: &RunRecord) -> Result<String> {
    let mut s = run.status.to_string();
    if run.status == crate::store::RunStatus::Running
        && let Some(hb) = store.last_heartbeat(&run.run_id)?
    {
        let age = (chrono::Utc::now() - hb).num_seconds();
        if age > 30 {
            s = format!("running (no heartbeat for {age}s)");
        }
    }
    Ok(s)
}

pub(crate) fn format_duration(secs: Option<f64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 60.0 => format!("{s:.1}s"),
        Some(s) if s < 3600.0 => format!("{:.0}m{:02.0}s", (s / 60.0).floor(), s % 60.0),
        Some(s) => format!("{:.0}h{:02.0}m", (s / 3600.0).floor(), (s % 3600.0) / 60.0),
    }
}

fn cmd_runs_list(store: &Store, experiment: Option<&str>) -> Result<()> {
    let runs: Vec<RunRecord> = store
        .runs()?
        .into_iter()
        .filter(|r| experiment.is_none_or(|e| r.experiment == e))
        .collect();
    if runs.is_empty() {
        println!("no runs in {}", store.root().display());
        return Ok(());
    }
    println!(
        "{:<16}  {:<20}  {:>6}  {:<12}  {:<12}  {:<19}  {:>8}",
        "RUN", "EXPERIMENT", "SEED", "STATUS", "PLAN", "STARTED", "DURATION"
    );
    for r in runs {
        println!(
            "{:<16}  {:<20}  {:>6}  {:<12}  {:<12}  {:<19}  {:>8}",
            r.run_id,
            r.experiment,
            r.seed,
            status_label(store, &r)?,
            short(&r.group_key),
            r.started_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into()),
            format_duration(r.duration_secs())
        );
    }
    Ok(())
}

fn cmd_runs_show(store: &Store, id: &str) -> Result<()> {
    let r = store.find_run(id)?;
    let status = status_label(store, &r)?;
    let stage_state = |hash: &str| -> Result<String> {
        Ok(match store.stage(hash)? {
            Some(s) => format!("done, {}", s.artifact_dir),
            None => "not done".into(),
        })
    };
    print_run(store.root(), &r, &status, &stage_state)
}

/// `recx runs show` while another process holds the database: the run's `run.json` copy and
/// its live status file.
fn cmd_runs_show_files(root: &Path, id: &str) -> Result<()> {
    let runs_dir = root.join("runs");
    let mut matches = Vec::new();
    for entry in
        std::fs::read_dir(&runs_dir).with_context(|| format!("reading {}", runs_dir.display()))?
    {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let file = path.join(crate::store::repair::RUN_FILE);
        if name.starts_with(id) && file.is_file() {
            matches.push(file);
        }
    }
    let file = match matches.as_slice() {
        [one] => one,
        [] => bail!("no run {id:?} under {}", runs_dir.display()),
        _ => bail!(
            "run id prefix {id:?} is ambiguous ({} runs match); give more digits",
            matches.len()
        ),
    };
    let text = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let r: RunRecord =
        serde_json::from_slice(&text).with_context(|| format!("reading {}", file.display()))?;
    println!("(the store is in use by a running recx process; showing the run's files)");
    let stage_state = |hash: &str| -> Result<String> {
        let done = r
            .stages
            .iter()
            .find(|(_, h)| h == hash)
            .map(|(kind, h)| root.join("artifacts").join(kind).join(h))
            .is_some_and(|d| d.join(crate::store::repair::STAGE_FILE).is_file());
        Ok(if done { "done" } else { "not done" }.into())
    };
    print_run(root, &r, &r.status.to_string(), &stage_state)
}

fn print_run(
    root: &Path,
    r: &RunRecord,
    status: &str,
    stage_state: &dyn Fn(&str) -> Result<String>,
) -> Result<()> {
    let p = &r.provenance;
    println!("run         {}", r.run_id);
    println!("experiment  {}", r.experiment);
    println!("seed        {}", r.seed);
    println!("status      {status}");
    if let Some(e) = &r.error {
        println!("error       {e}");
    }
    println!("plan hash   {}", r.group_key);
    println!(
        "spec        {} (sha256 {})",
        r.spec_path,
        short(&r.spec_hash)
    );
    println!(
        "git         {}{}",
        p.git_commit.as_deref().unwrap_or("(not a git checkout)"),
        if p.git_dirty == Some(true) {
            " (dirty)"
        } else {
            ""
        }
    );
    println!("host        {}", p.host);
    println!(
        "versions    recx {} · burn {} · backend {}",
        p.recx_version, p.burn_version, p.backend
    );
    if !p.env_names.is_empty() {
        println!("env set     {}", p.env_names.join(", "));
    }
    println!("attempts    {}", r.attempts);
    println!(
        "started     {}",
        r.started_at.map(|t| t.to_rfc3339()).unwrap_or_default()
    );
    println!("duration    {}", format_duration(r.duration_secs()));
    if r.status == crate::store::RunStatus::Running {
        print_live(root, &r.run_id)?;
    }
    println!("stages:");
    for (kind, hash) in &r.stages {
        println!("  {kind:<16} {}  {}", short(hash), stage_state(hash)?);
    }
    println!(
        "log         {}",
        root.join("runs").join(&r.run_id).join("log.txt").display()
    );
    Ok(())
}

/// The running stage and its bars, from the run's live status file.
fn print_live(root: &Path, run_id: &str) -> Result<()> {
    let Some(live) = crate::runner::read_live(root, run_id)? else {
        println!("live        (no live status: the run's process is not writing one)");
        return Ok(());
    };
    let now = chrono::Utc::now();
    let age = (now - live.updated_at).num_seconds();
    let stale = if age > 30 {
        format!(
            " (not updated for {age}s: the process {} may have died)",
            live.pid
        )
    } else {
        String::new()
    };
    match (&live.stage, live.stage_started_at) {
        (Some(stage), Some(at)) => println!(
            "live        stage {stage}, running for {}{stale}",
            format_duration(Some((now - at).num_milliseconds() as f64 / 1000.0))
        ),
        _ => println!("live        between stages{stale}"),
    }
    for bar in &live.bars {
        println!("            {bar}");
    }
    Ok(())
}

fn cmd_metrics(store: &Store, id: &str, series: bool) -> Result<()> {
    let run = store.find_run(id)?;
    let m = store.run_metrics(&run)?;
    if m.scalars.is_empty() {
        println!("run {} has no metrics yet", run.run_id);
    }
    let width = m.scalars.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in &m.scalars {
        println!("{k:<width$}  {}", format_value(*v));
    }
    if series {
        for (k, points) in &m.series {
            println!("\n{k}:");
            for (step, v) in points {
                println!("  {step:>8}  {}", format_value(*v));
            }
        }
    }
    Ok(())
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.6}")
    }
}

fn cmd_export(store: &Store, args: &ExportArgs) -> Result<()> {
    let runs: Vec<RunRecord> = if args.ids.is_empty() {
        store
            .runs()?
            .into_iter()
            .filter(|r| args.experiment.as_deref().is_none_or(|e| r.experiment == e))
            .collect()
    } else {
        args.ids
            .iter()
            .map(|id| store.find_run(id))
            .collect::<crate::Result<_>>()?
    };
    if args.format == "mlflow" {
        let w = crate::export::mlflow::write(store, &runs, &args.out)?;
        println!(
            "exported {} runs of {} experiments ({} metrics) to the MLflow store {}; browse with \
             `mlflow ui --backend-store-uri {}`",
            w.runs,
            w.experiments,
            w.metrics,
            args.out.display(),
            args.out.display()
        );
        return Ok(());
    }
    let rows = crate::export::rows(store, &runs)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let csv_path = args.out.join("runs.csv");
    let jsonl_path = args.out.join("runs.jsonl");
    crate::export::write_csv(&csv_path, &rows)?;
    crate::export::write_jsonl(&jsonl_path, &rows)?;
    println!(
        "exported {} runs to {} and {}",
        rows.len(),
        csv_path.display(),
        jsonl_path.display()
    );
    Ok(())
}
