//! Executes a resolved plan: stages in dependency order, outputs moved into place atomically,
//! finished stages reused, everything recorded in the store.
//!
//! Crash safety rests on two orderings. A stage writes into `artifacts/<stage>/<hash>.partial/`
//! and the folder is renamed to `<hash>/` only after `run` succeeds; the store's stage record is
//! written after the rename. So a stage counts as done only if both the record and the folder
//! exist, and a process killed at any point leaves either a reusable stage or one that is redone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::error::{Error, IoContext, Result};
use crate::hash::short;
use crate::pipeline::{Measurements, Progress, Stage, StageContext, StageKind, cancel_requested};
use crate::plan::{Plan, RunPlan, StagePlan};
use crate::store::{ExperimentRecord, RunRecord, RunStatus, SCHEMA_VERSION, StageRecord, Store};

/// Subfolder of a stage's output that survives an interrupted attempt.
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// How often a running run records that it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How often a running run rewrites its [`LIVE_FILE`].
const LIVE_EVERY: Duration = Duration::from_secs(1);

/// `runs/<id>/live.json`: the running stage and its progress bars, rewritten every second while
/// the run is running and removed when it ends. The store's database admits one process, so a
/// second one (`recx runs show` while a run is going) reads this file instead.
pub const LIVE_FILE: &str = "live.json";

/// What [`LIVE_FILE`] holds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiveStatus {
    pub run_id: String,
    pub pid: u32,
    /// When the file was written (a stale time means the process stopped writing).
    pub updated_at: chrono::DateTime<Utc>,
    /// The stage being computed and when it started; `None` between stages.
    pub stage: Option<String>,
    pub stage_started_at: Option<chrono::DateTime<Utc>>,
    pub bars: Vec<crate::pipeline::BarSnapshot>,
}

/// The live status of a run, if its process is writing one.
pub fn read_live(store_root: &Path, run_id: &str) -> Result<Option<LiveStatus>> {
    let path = store_root.join("runs").join(run_id).join(LIVE_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read(&path).at(&path)?;
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| Error::bad_input(&path, e.line(), e.to_string()))
}

fn write_live(store_root: &Path, run_id: &str, progress: &Progress) -> Result<()> {
    let stage = progress.stage();
    let live = LiveStatus {
        run_id: run_id.to_string(),
        pid: std::process::id(),
        updated_at: Utc::now(),
        stage_started_at: stage.as_ref().map(|s| s.1),
        stage: stage.map(|s| s.0),
        bars: progress.snapshot(),
    };
    let text = serde_json::to_vec_pretty(&live).expect("live status serializes");
    crate::fsutil::write_atomic(&store_root.join("runs").join(run_id).join(LIVE_FILE), &text)
}

/// Options of `recx run`.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Recompute these stages (and everything downstream) even if finished copies exist.
    pub force: Vec<StageKind>,
    /// Only these seeds (empty = all of the plan's seeds).
    pub seeds: Vec<u64>,
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunOutcome {
    Completed,
    /// Every stage was already done and nothing was forced.
    AlreadyCompleted,
    Failed(String),
    Interrupted,
}

/// What happened to a stage in this invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    Cached,
    Computed,
}

/// Runs every run of `plan` (or the selected seeds), stopping at the first interruption.
pub fn run_plan(
    store: &Store,
    plan: &Plan,
    registry: &[Box<dyn Stage>],
    opts: &RunOptions,
    progress: &Progress,
) -> Result<Vec<(String, RunOutcome)>> {
    store.put_experiment(&ExperimentRecord {
        v: SCHEMA_VERSION,
        name: plan.experiment.clone(),
        description: plan.description.clone(),
        updated_at: Utc::now(),
    })?;
    let mut outcomes = Vec::new();
    for run in plan
        .runs
        .iter()
        .filter(|r| opts.seeds.is_empty() || opts.seeds.contains(&r.seed))
    {
        let outcome = run_one(store, plan, run, registry, opts, progress)?;
        let stop = outcome == RunOutcome::Interrupted;
        outcomes.push((run.run_id.clone(), outcome));
        if stop {
            break;
        }
    }
    Ok(outcomes)
}

/// Whether a stage's finished copy exists (record and folder).
pub fn stage_is_done(store: &Store, stage: &StagePlan) -> Result<bool> {
    let dir = store.artifact_dir(stage.kind.as_str(), &stage.hash);
    Ok(store.stage(&stage.hash)?.is_some() && dir.is_dir())
}

/// Runs one seed: registers it, executes or reuses each stage, records the outcome.
pub fn run_one(
    store: &Store,
    plan: &Plan,
    run: &RunPlan,
    registry: &[Box<dyn Stage>],
    opts: &RunOptions,
    progress: &Progress,
) -> Result<RunOutcome> {
    let previous = store.get_run(&run.run_id)?;
    let all_done = run
        .stages
        .iter()
        .map(|s| stage_is_done(store, s))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .all(|d| d);
    if opts.force.is_empty()
        && all_done
        && previous
            .as_ref()
            .is_some_and(|r| r.status == RunStatus::Completed)
    {
        tracing::info!("run {} (seed {}) already completed", run.run_id, run.seed);
        return Ok(RunOutcome::AlreadyCompleted);
    }

    let mut record = new_run_record(plan, run, previous.as_ref());
    store.put_run(&record)?;
    store.set_params(&run.run_id, &plan.params())?;
    crate::logging::open_run_log(&store.run_dir(&run.run_id).join("log.txt"))?;
    tracing::info!(
        "run {} of {} (seed {}, plan {}, attempt {})",
        run.run_id,
        plan.experiment,
        run.seed,
        short(&plan.plan_hash),
        record.attempts
    );

    let heartbeat = Heartbeat::start(store.clone(), run.run_id.clone(), progress.clone());
    let result = execute_stages(store, run, registry, opts, progress);
    heartbeat.stop();
    progress.set_stage(None);
    let live = store.run_dir(&run.run_id).join(LIVE_FILE);
    if live.exists() {
        std::fs::remove_file(&live).at(&live)?;
    }

    let outcome = match result {
        Ok(()) => RunOutcome::Completed,
        Err(Error::Interrupted) => RunOutcome::Interrupted,
        Err(e) => RunOutcome::Failed(e.to_string()),
    };
    record.ended_at = Some(Utc::now());
    (record.status, record.error) = match &outcome {
        RunOutcome::Completed | RunOutcome::AlreadyCompleted => (RunStatus::Completed, None),
        RunOutcome::Interrupted => (
            RunStatus::Interrupted,
            Some("interrupted by the user".into()),
        ),
        RunOutcome::Failed(msg) => (RunStatus::Failed, Some(msg.clone())),
    };
    store.put_run(&record)?;
    match &outcome {
        RunOutcome::Failed(msg) => tracing::error!("run {} failed: {msg}", run.run_id),
        RunOutcome::Interrupted => tracing::warn!(
            "run {} interrupted; finished stages are kept, `recx run` of the same spec resumes",
            run.run_id
        ),
        _ => tracing::info!("run {} completed", run.run_id),
    }
    crate::logging::close_run_log();
    Ok(outcome)
}

fn new_run_record(plan: &Plan, run: &RunPlan, previous: Option<&RunRecord>) -> RunRecord {
    RunRecord {
        v: SCHEMA_VERSION,
        run_id: run.run_id.clone(),
        experiment: plan.experiment.clone(),
        group_key: plan.plan_hash.clone(),
        seed: run.seed,
        spec_path: plan.spec_path.display().to_string(),
        spec_text: plan.spec_text.clone(),
        spec_hash: plan.spec_hash.clone(),
        resolved: plan.resolved.clone(),
        stages: run
            .stages
            .iter()
            .map(|s| (s.kind.to_string(), s.hash.clone()))
            .collect(),
        provenance: crate::provenance::collect(&plan.spec_dir()),
        status: RunStatus::Running,
        created_at: previous.map(|p| p.created_at).unwrap_or_else(Utc::now),
        started_at: Some(Utc::now()),
        ended_at: None,
        error: None,
        attempts: previous.map(|p| p.attempts).unwrap_or(0) + 1,
    }
}

fn execute_stages(
    store: &Store,
    run: &RunPlan,
    registry: &[Box<dyn Stage>],
    opts: &RunOptions,
    progress: &Progress,
) -> Result<()> {
    let mut forced: BTreeSet<StageKind> = opts.force.iter().copied().collect();
    for stage_plan in &run.stages {
        if cancel_requested() {
            return Err(Error::Interrupted);
        }
        if stage_plan.deps.keys().any(|d| forced.contains(d)) {
            forced.insert(stage_plan.kind);
        }
        let stage = registry
            .iter()
            .find(|s| s.kind() == stage_plan.kind)
            .expect("the plan only holds registered stages");
        let state = execute_stage(
            store,
            run,
            stage.as_ref(),
            stage_plan,
            forced.contains(&stage_plan.kind),
            progress,
        )?;
        if state == StageState::Cached {
            tracing::info!(
                "stage {} {}: cached",
                stage_plan.kind,
                short(&stage_plan.hash)
            );
        }
    }
    Ok(())
}

/// Computes (or finds done) one stage of `run` outside a full run; the parent of a parallel
/// sweep uses it to compute shared upstream stages once before starting its workers.
pub fn ensure_stage(
    store: &Store,
    run: &RunPlan,
    stage_plan: &StagePlan,
    registry: &[Box<dyn Stage>],
    progress: &Progress,
) -> Result<StageState> {
    let stage = registry
        .iter()
        .find(|s| s.kind() == stage_plan.kind)
        .expect("the plan only holds registered stages");
    execute_stage(store, run, stage.as_ref(), stage_plan, false, progress)
}

fn execute_stage(
    store: &Store,
    run: &RunPlan,
    stage: &dyn Stage,
    sp: &StagePlan,
    force: bool,
    progress: &Progress,
) -> Result<StageState> {
    if !force && stage_is_done(store, sp)? {
        return Ok(StageState::Cached);
    }
    let kind = sp.kind.as_str();
    let final_dir = store.artifact_dir(kind, &sp.hash);
    let partial = partial_dir(&final_dir);
    store.forget_stage(&sp.hash)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).at(&final_dir)?;
    }
    prepare_partial(&partial, force)?;

    tracing::info!("stage {kind} {}: started", short(&sp.hash));
    progress.set_stage(Some(kind));
    let started_at = Utc::now();
    let clock = Instant::now();
    let inputs: BTreeMap<StageKind, PathBuf> = sp
        .deps
        .iter()
        .map(|(k, h)| (*k, store.artifact_dir(k.as_str(), h)))
        .collect();
    let mut measured = Measurements::default();
    {
        let mut ctx = StageContext::new(
            sp.settings.clone(),
            partial.clone(),
            inputs,
            &mut measured,
            progress,
        )
        .with_cache(store);
        stage.run(&mut ctx)?;
    }
    if cancel_requested() {
        return Err(Error::Interrupted);
    }

    let checkpoints = partial.join(CHECKPOINT_DIR);
    if checkpoints.exists() {
        std::fs::remove_dir_all(&checkpoints).at(&checkpoints)?;
    }
    write_manifest(&partial, sp)?;
    let artifacts = crate::store::repair::list_artifacts(&partial, kind, &sp.hash)?;
    std::fs::rename(&partial, &final_dir).at(&final_dir)?;
    let rec = StageRecord {
        v: SCHEMA_VERSION,
        kind: kind.to_string(),
        hash: sp.hash.clone(),
        run_id: run.run_id.clone(),
        started_at,
        ended_at: Utc::now(),
        artifact_dir: store.artifact_rel(kind, &sp.hash),
        fingerprint: sp.fingerprint.clone(),
    };
    store.complete_stage(&rec, &measured, &artifacts)?;
    if let Some(summary) = stage.summary(&final_dir) {
        progress.println(&summary);
        tracing::info!("{kind} summary:\n{summary}");
    }
    tracing::info!(
        "stage {kind} {}: done in {:.1}s ({} files)",
        short(&sp.hash),
        clock.elapsed().as_secs_f64(),
        artifacts.len()
    );
    Ok(StageState::Computed)
}

/// `artifacts/<stage>/<hash>.partial`
fn partial_dir(final_dir: &Path) -> PathBuf {
    let mut name = final_dir.file_name().expect("hash folder").to_os_string();
    name.push(".partial");
    final_dir.with_file_name(name)
}

/// Empties the partial folder of a previous attempt, keeping its checkpoints unless forced.
fn prepare_partial(partial: &Path, force: bool) -> Result<()> {
    if partial.exists() {
        for entry in std::fs::read_dir(partial).at(partial)? {
            let entry = entry.at(partial)?;
            let path = entry.path();
            if !force && entry.file_name() == CHECKPOINT_DIR {
                tracing::info!("resuming from checkpoints in {}", path.display());
                continue;
            }
            if path.is_dir() {
                std::fs::remove_dir_all(&path).at(&path)?;
            } else {
                std::fs::remove_file(&path).at(&path)?;
            }
        }
    }
    std::fs::create_dir_all(partial).at(partial)
}

/// `stage.json`: what produced this folder, for people browsing `artifacts/`.
fn write_manifest(dir: &Path, sp: &StagePlan) -> Result<()> {
    let path = dir.join("stage.json");
    let text = serde_json::to_string_pretty(sp).expect("stage plans serialize");
    std::fs::write(&path, text).at(path)
}

/// A thread that records the run's heartbeat and rewrites its [`LIVE_FILE`] until stopped.
struct Heartbeat {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Heartbeat {
    fn start(store: Store, run_id: String, progress: Progress) -> Heartbeat {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut since_heartbeat = HEARTBEAT_EVERY;
            while !flag.load(Ordering::SeqCst) {
                if since_heartbeat >= HEARTBEAT_EVERY {
                    if let Err(e) = store.heartbeat(&run_id) {
                        tracing::warn!("heartbeat: {e}");
                    }
                    since_heartbeat = Duration::ZERO;
                }
                if let Err(e) = write_live(store.root(), &run_id, &progress) {
                    tracing::warn!("live status: {e}");
                }
                let mut waited = Duration::ZERO;
                while waited < LIVE_EVERY && !flag.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                    waited += Duration::from_millis(100);
                }
                since_heartbeat += waited;
            }
        });
        Heartbeat {
            stop,
            handle: Some(handle),
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
