//! The stage runner with two small test stages: caching, forcing, failure isolation and the
//! atomic move of outputs into place.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use recx::error::{Error, Result};
use recx::pipeline::{Progress, Resolved, Stage, StageContext, StageKind};

use crate::stage_support;
use recx::plan::Plan;
use recx::runner::{RunOptions, RunOutcome, run_plan};
use recx::spec::{RawSpec, Spec};
use recx::store::{RunStatus, Store};

static SOURCE_RUNS: AtomicUsize = AtomicUsize::new(0);
static DOUBLE_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Writes `train.epochs` into a file.
struct Source;
/// Reads the source's file and writes twice its value; fails when `eval.max_records == 13`.
struct Double;

impl Stage for Source {
    fn kind(&self) -> StageKind {
        StageKind::Data
    }
    fn deps(&self) -> &'static [StageKind] {
        &[]
    }
    fn settings(&self, spec: &RawSpec, _: &Path, _: u64) -> Result<Resolved> {
        stage_support::json(serde_json::json!({ "epochs": spec.train.epochs }))
    }
    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        SOURCE_RUNS.fetch_add(1, Ordering::SeqCst);
        let epochs = stage_support::number(ctx, "epochs");
        std::fs::write(ctx.out_dir().join("value.txt"), epochs.to_string()).unwrap();
        ctx.recorder.scalar("value", epochs);
        Ok(())
    }
}

impl Stage for Double {
    fn kind(&self) -> StageKind {
        StageKind::Recommender
    }
    fn deps(&self) -> &'static [StageKind] {
        &[StageKind::Data]
    }
    fn settings(&self, spec: &RawSpec, _: &Path, seed: u64) -> Result<Resolved> {
        stage_support::json(serde_json::json!({ "fail": spec.eval.max_records, "seed": seed }))
    }
    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        DOUBLE_RUNS.fetch_add(1, Ordering::SeqCst);
        let v: f64 = std::fs::read_to_string(ctx.input(StageKind::Data).join("value.txt"))
            .unwrap()
            .parse()
            .unwrap();
        std::fs::write(ctx.out_dir().join("half-written.txt"), "x").unwrap();
        if stage_support::number(ctx, "fail") == 13.0 {
            return Err(Error::Config("unlucky".into()));
        }
        ctx.recorder.scalar("double", 2.0 * v);
        ctx.recorder.series("curve", 1, v);
        Ok(())
    }
}

fn registry() -> Vec<Box<dyn Stage>> {
    vec![Box::new(Double), Box::new(Source)]
}

fn plan(text: &str) -> Plan {
    let spec = Spec::parse(Path::new("t.toml"), text).unwrap();
    Plan::resolve(&spec, &registry()).unwrap()
}

const SPEC: &str = "[experiment]\nname = \"t\"\nseeds = [1, 2]\n[train]\nepochs = 4\n";

fn counts() -> (usize, usize) {
    (
        SOURCE_RUNS.load(Ordering::SeqCst),
        DOUBLE_RUNS.load(Ordering::SeqCst),
    )
}

// One test function: the counters are process-wide.
#[test]
fn caching_forcing_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let progress = Progress::hidden();
    let p = plan(SPEC);
    assert_eq!(
        p.runs[0].stages[0].kind,
        StageKind::Data,
        "dependency order"
    );

    // First run: the source is shared by both seeds, the seeded stage runs per seed.
    let out = run_plan(&store, &p, &registry(), &RunOptions::default(), &progress).unwrap();
    assert!(out.iter().all(|(_, o)| *o == RunOutcome::Completed));
    assert_eq!(counts(), (1, 2));
    let run = store.find_run(&p.runs[0].run_id).unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let m = store.run_metrics(&run).unwrap();
    assert_eq!(m.scalars["recommender.double"], 8.0);
    assert_eq!(m.scalars["data.value"], 4.0);
    let hash = &p.runs[0].stages[1].hash;
    let dir_done = store.artifact_dir("recommender", hash);
    assert!(dir_done.join("stage.json").is_file());
    assert!(!dir_done.with_file_name(format!("{hash}.partial")).exists());
    assert_eq!(store.stage_artifacts(hash).unwrap().len(), 2);

    // Same spec again: nothing recomputed.
    let out = run_plan(&store, &p, &registry(), &RunOptions::default(), &progress).unwrap();
    assert!(out.iter().all(|(_, o)| *o == RunOutcome::AlreadyCompleted));
    assert_eq!(counts(), (1, 2));

    // Forcing the source recomputes it and what depends on it.
    let force = RunOptions {
        force: vec![StageKind::Data],
        seeds: vec![1],
    };
    run_plan(&store, &p, &registry(), &force, &progress).unwrap();
    assert_eq!(counts(), (2, 3));

    // A failing downstream stage: the run fails, the shared source stays reusable, and no
    // half-written output is moved into place.
    let failing = plan(&format!("{SPEC}[eval]\nmax_records = 13\n"));
    let out = run_plan(
        &store,
        &failing,
        &registry(),
        &RunOptions {
            seeds: vec![1],
            ..Default::default()
        },
        &progress,
    )
    .unwrap();
    assert!(matches!(&out[0].1, RunOutcome::Failed(msg) if msg.contains("unlucky")));
    assert_eq!(counts(), (2, 4), "source reused, downstream attempted");
    let failed_hash = &failing.runs[0].stages[1].hash;
    assert!(!store.artifact_dir("recommender", failed_hash).exists());
    assert_eq!(
        store.find_run(&failing.runs[0].run_id).unwrap().status,
        RunStatus::Failed
    );

    // A changed setting upstream changes every hash downstream.
    let changed = plan(&SPEC.replace("epochs = 4", "epochs = 5"));
    assert_ne!(changed.runs[0].stages[1].hash, p.runs[0].stages[1].hash);
}
