//! `recx sweep`: plan listing, resume, shards, cluster scripts and parallel workers.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cli::{SweepArgs, ok, open_store};
use crate::hash::short;
use crate::pipeline::{Progress, Stage};
use crate::runner::{RunOutcome, ensure_stage, stage_is_done};
use crate::spec::Spec;
use crate::store::{RunStatus, Store};
use crate::sweep::{Selection, SweepPlan, SweepRun, expand, selected};

pub fn cmd_sweep(
    root: &Path,
    args: &SweepArgs,
    progress: &Progress,
) -> Result<std::process::ExitCode> {
    let spec = Spec::load(&args.spec)?;
    let registry = crate::pipeline::registry();
    let sweep = expand(&spec, &registry)?;

    if let Some(kind) = &args.emit {
        if kind != "slurm" {
            bail!("--emit {kind:?}: unknown kind; expected slurm");
        }
        if args.shards == 0 {
            bail!("--shards must be at least 1");
        }
        let recx = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or("recx".into());
        for p in crate::sweep::emit_slurm(&args.spec, args.shards, root, &args.emit_dir, &recx)? {
            println!("wrote {}", p.display());
        }
        println!(
            "submit with: bash {}",
            args.emit_dir.join("submit.sh").display()
        );
        return Ok(ok());
    }

    let store = match &args.worker_db {
        Some(db) => Store::open_with_db(root, db)?,
        None => {
            let store = open_store(root)?;
            for id in store.recover_dead_runs()? {
                tracing::warn!(
                    "run {id} was left running by a process that died; marked interrupted"
                );
            }
            store
        }
    };
    let runs = chosen_runs(&sweep, args)?;
    let selection = if args.rerun_failed {
        Selection::FailedOnly
    } else {
        Selection::Resume
    };
    let statuses = print_plan(&store, &sweep, &runs, selection)?;
    if args.dry_run {
        return Ok(ok());
    }
    let todo: Vec<SweepRun> = runs
        .into_iter()
        .filter(|r| selected(statuses[&r.run_id], selection))
        .collect();
    let outcomes = if args.jobs > 1 && todo.len() > 1 {
        run_parallel(
            &store, root, &args.spec, &sweep, &todo, args.jobs, &registry, progress,
        )?
    } else {
        crate::sweep::execute(
            &store,
            &sweep,
            &todo,
            Selection::Resume,
            &registry,
            progress,
        )?
    };
    store.flush()?;
    Ok(summarize(&outcomes))
}

fn chosen_runs(sweep: &SweepPlan, args: &SweepArgs) -> Result<Vec<SweepRun>> {
    if !args.runs.is_empty() {
        return Ok(sweep
            .runs
            .iter()
            .filter(|r| args.runs.contains(&r.run_id))
            .cloned()
            .collect());
    }
    match &args.shard {
        None => Ok(sweep.runs.clone()),
        Some(s) => {
            let (i, n) = parse_shard(s)?;
            Ok(sweep.shard(i, n))
        }
    }
}

/// Parses `I/N` with `0 <= I < N`.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let parsed = s.split_once('/').and_then(|(i, n)| {
        Some((
            i.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        ))
    });
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => bail!("--shard {s:?}: expected I/N with 0 <= I < N, e.g. 0/4"),
    }
}

fn print_plan(
    store: &Store,
    sweep: &SweepPlan,
    runs: &[SweepRun],
    selection: Selection,
) -> Result<BTreeMap<String, Option<RunStatus>>> {
    let mut statuses = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    println!(
        "sweep: {} variants, {} runs in this selection",
        sweep.variants.len(),
        runs.len()
    );
    for r in runs {
        let status = store.get_run(&r.run_id)?.map(|x| x.status);
        let label = status.map(|s| s.as_str()).unwrap_or("new");
        *counts.entry(label).or_default() += 1;
        let action = if selected(status, selection) {
            "run"
        } else {
            "skip"
        };
        println!(
            "  {action:<4} {}  seed {:<6} {:<12} {}",
            r.run_id,
            r.seed,
            label,
            sweep.label(r)
        );
        statuses.insert(r.run_id.clone(), status);
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let would = statuses
        .values()
        .filter(|s| selected(**s, selection))
        .count();
    println!("status: {}; {would} to run", summary.join(", "));
    Ok(statuses)
}

fn summarize(outcomes: &[(String, RunOutcome)]) -> std::process::ExitCode {
    let failed = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, RunOutcome::Failed(_)))
        .count();
    let interrupted = outcomes.iter().any(|(_, o)| *o == RunOutcome::Interrupted);
    println!(
        "sweep: {} runs executed, {} failed{}",
        outcomes.len(),
        failed,
        if interrupted {
            ", interrupted (rerun to resume)"
        } else {
            ""
        }
    );
    if interrupted {
        std::process::ExitCode::from(130)
    } else if failed > 0 {
        std::process::ExitCode::from(1)
    } else {
        ok()
    }
}

/// Computes stages shared by several runs once, then runs slices of the rest in worker
/// processes (each with its own database over the shared artifact tree) and merges them.
#[allow(clippy::too_many_arguments)]
fn run_parallel(
    store: &Store,
    root: &Path,
    spec_path: &Path,
    sweep: &SweepPlan,
    todo: &[SweepRun],
    jobs: usize,
    registry: &[Box<dyn Stage>],
    progress: &Progress,
) -> Result<Vec<(String, RunOutcome)>> {
    compute_shared_stages(store, sweep, todo, registry, progress)?;

    let jobs = jobs.min(todo.len());
    let mut children = Vec::new();
    for k in 0..jobs {
        let slice = &todo[k * todo.len() / jobs..(k + 1) * todo.len() / jobs];
        let db = root.join("workers").join(k.to_string());
        if db.exists() {
            std::fs::remove_dir_all(&db).with_context(|| format!("clearing {}", db.display()))?;
        }
        let worker = Store::open_with_db(root, &db)?;
        let hashes: Vec<String> = slice
            .iter()
            .flat_map(|r| {
                sweep.plan_of(r).runs[r.run_index]
                    .stages
                    .iter()
                    .map(|s| s.hash.clone())
            })
            .collect();
        worker.copy_stages_from(store, &hashes)?;
        drop(worker);
        let ids: Vec<String> = slice.iter().map(|r| r.run_id.clone()).collect();
        let child = Command::new(std::env::current_exe().context("locating the recx binary")?)
            .arg("--quiet")
            .arg("--store")
            .arg(root)
            .arg("sweep")
            .arg(spec_path)
            .arg("--worker-db")
            .arg(&db)
            .arg("--runs")
            .arg(ids.join(","))
            .spawn()
            .context("starting a sweep worker")?;
        children.push((db, child));
    }
    let bar = progress.bar(jobs as u64, "sweep workers");
    for (db, mut child) in children {
        let status = child.wait().context("waiting for a sweep worker")?;
        if !status.success() {
            tracing::warn!(
                "a sweep worker exited with {status}; its finished runs are still merged"
            );
        }
        let worker = Store::open_with_db(root, &db)?;
        let report = crate::merge::merge_into(store, &worker)?;
        tracing::info!("merged worker {}: {report}", db.display());
        drop(worker);
        std::fs::remove_dir_all(&db).with_context(|| format!("removing {}", db.display()))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    todo.iter()
        .map(|r| {
            let rec = store.get_run(&r.run_id)?;
            let outcome = match rec.map(|x| (x.status, x.error)) {
                Some((RunStatus::Completed, _)) => RunOutcome::Completed,
                Some((RunStatus::Interrupted, _)) => RunOutcome::Interrupted,
                Some((_, err)) => RunOutcome::Failed(err.unwrap_or_else(|| "worker failed".into())),
                None => RunOutcome::Failed("the worker did not record the run".into()),
            };
            Ok((r.run_id.clone(), outcome))
        })
        .collect()
}

/// Stages that two or more selected runs need, computed here once in dependency order.
fn compute_shared_stages(
    store: &Store,
    sweep: &SweepPlan,
    todo: &[SweepRun],
    registry: &[Box<dyn Stage>],
    progress: &Progress,
) -> Result<()> {
    let mut uses: BTreeMap<String, usize> = BTreeMap::new();
    for r in todo {
        for s in &sweep.plan_of(r).runs[r.run_index].stages {
            *uses.entry(s.hash.clone()).or_default() += 1;
        }
    }
    for r in todo {
        let plan = sweep.plan_of(r);
        let run = &plan.runs[r.run_index];
        for s in &run.stages {
            if uses[&s.hash] >= 2 && !stage_is_done(store, s)? {
                tracing::info!(
                    "shared stage {} {} (needed by {} runs)",
                    s.kind,
                    short(&s.hash),
                    uses[&s.hash]
                );
                ensure_stage(store, run, s, registry, progress)?;
            }
        }
    }
    Ok(())
}
