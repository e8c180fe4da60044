//! A damaged store database (random bytes, cut to nothing or to half, flipped bytes) is refused
//! with an error that names the file and the recovery command, never read as an empty store and
//! never a panic; `recx store rebuild` restores the run and stage records from the folders, after
//! which the same spec recomputes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use rand::{Rng, SeedableRng};
use recx::error::{Error, Result};
use recx::pipeline::{Progress, Resolved, Stage, StageContext, StageKind};

use crate::stage_support;
use recx::plan::Plan;
use recx::runner::{RunOptions, RunOutcome, run_plan};
use recx::spec::{RawSpec, Spec};
use recx::store::{RunMetrics, RunStatus, Store};

/// Writes `train.epochs` into a file and measures it.
struct Source;
/// Reads the source's file and measures twice its value, per seed.
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
        let v = stage_support::number(ctx, "epochs");
        std::fs::write(ctx.out_dir().join("value.txt"), v.to_string()).unwrap();
        ctx.recorder.scalar("value", v);
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
    fn settings(&self, _: &RawSpec, _: &Path, seed: u64) -> Result<Resolved> {
        stage_support::json(serde_json::json!({ "seed": seed }))
    }
    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let v: f64 = std::fs::read_to_string(ctx.input(StageKind::Data).join("value.txt"))
            .unwrap()
            .parse()
            .unwrap();
        std::fs::write(ctx.out_dir().join("double.txt"), (2.0 * v).to_string()).unwrap();
        let seed = stage_support::number(ctx, "seed");
        ctx.recorder.scalar("double", 2.0 * v + seed);
        ctx.recorder.series("curve", 1, v);
        ctx.recorder.example("hit", "case-1", 1.0);
        Ok(())
    }
}

fn registry() -> Vec<Box<dyn Stage>> {
    vec![Box::new(Source), Box::new(Double)]
}

fn plan() -> Plan {
    let text = "[experiment]\nname = \"t\"\nseeds = [1, 2, 3]\n[train]\nepochs = 4\n";
    let spec = Spec::parse(Path::new("t.toml"), text).unwrap();
    Plan::resolve(&spec, &registry()).unwrap()
}

/// A store with three completed runs; returns their metrics.
fn populated(root: &Path) -> Vec<RunMetrics> {
    let store = Store::open(root).unwrap();
    let p = plan();
    let out = run_plan(
        &store,
        &p,
        &registry(),
        &RunOptions::default(),
        &Progress::hidden(),
    )
    .unwrap();
    assert!(out.iter().all(|(_, o)| *o == RunOutcome::Completed));
    metrics_of(&store, &p)
}

fn metrics_of(store: &Store, p: &Plan) -> Vec<RunMetrics> {
    p.runs
        .iter()
        .map(|r| {
            let run = store.get_run(&r.run_id).unwrap().unwrap();
            assert_eq!(run.status, RunStatus::Completed);
            store.run_metrics(&run).unwrap()
        })
        .collect()
}

fn db_file(root: &Path) -> PathBuf {
    root.join("db").join("db")
}

/// The ways a database file gets damaged.
fn damage(root: &Path, how: &str) {
    let path = db_file(root);
    let bytes = std::fs::read(&path).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let damaged: Vec<u8> = match how {
        "random" => (0..bytes.len()).map(|_| rng.random()).collect(),
        "empty" => Vec::new(),
        "half" => bytes[..bytes.len() / 2].to_vec(),
        "flipped" => {
            let mut b = bytes.clone();
            for _ in 0..200 {
                let at = rng.random_range(0..b.len());
                b[at] ^= 0xFF;
            }
            b
        }
        other => panic!("unknown damage {other}"),
    };
    std::fs::write(&path, damaged).unwrap();
}

fn recx(store: &Path, args: &[&str]) -> std::process::Output {
    crate::e2e_support::recx(store, &[&["--quiet"], args].concat())
}

/// Opening the damaged store either fails with `StoreDamaged` naming the database and the
/// rebuild command, or (damage that hit only unused space) still reads every run intact.
fn assert_refused_or_intact(root: &Path, how: &str, before: &[RunMetrics]) {
    match Store::open(root) {
        Err(Error::StoreDamaged { db, command, .. }) => {
            assert_eq!(db, root.join("db"), "{how}");
            assert!(command.contains("store rebuild"), "{how}: {command}");
            let out = recx(root, &["runs", "list"]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{how}: {stderr}");
            assert!(stderr.contains("is damaged"), "{how}: {stderr}");
            assert!(
                stderr.contains(&*root.join("db").to_string_lossy()),
                "{how}: {stderr}"
            );
            assert!(stderr.contains("store rebuild"), "{how}: {stderr}");
            assert!(!stderr.contains("panicked"), "{how}: {stderr}");
        }
        Err(other) => panic!("{how}: expected StoreDamaged, got {other}"),
        Ok(store) => {
            // Flipped bytes or a cut may miss every record (sled pre-allocates its log); then
            // nothing may be lost. Random bytes and an empty file always lose everything.
            assert!(matches!(how, "flipped" | "half"), "{how} must be refused");
            assert_eq!(metrics_of(&store, &plan()), before, "{how}: intact");
        }
    }
}

#[test]
fn damaged_databases_are_refused_with_the_recovery_command() {
    for how in ["random", "empty", "half", "flipped"] {
        let dir = tempfile::tempdir().unwrap();
        let before = populated(dir.path());
        damage(dir.path(), how);
        assert_refused_or_intact(dir.path(), how, &before);
    }
}

#[test]
fn rebuild_restores_runs_stages_and_measurements_from_the_folders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let before = populated(root);
    damage(root, "random");
    assert!(matches!(Store::open(root), Err(Error::StoreDamaged { .. })));

    let out = recx(root, &["store", "rebuild"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("restored 3 runs and 4 stages"), "{stdout}");
    let kept: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("db.damaged-"))
        .collect();
    assert_eq!(kept.len(), 1, "the damaged database is kept aside");

    let out = recx(root, &["store", "check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("3 runs, 4 stage records, 4 finished stage folders"),
        "{stdout}"
    );

    let store = Store::open(root).unwrap();
    let p = plan();
    assert_eq!(metrics_of(&store, &p), before, "measurements restored");
    let runs = store.runs().unwrap();
    assert!(runs.iter().all(|r| r.experiment == "t"));
    assert_eq!(store.params(&p.runs[0].run_id).unwrap()["train.epochs"], 4);
    // Nothing is recomputed: every stage is recorded again.
    let out = run_plan(
        &store,
        &p,
        &registry(),
        &RunOptions::default(),
        &Progress::hidden(),
    )
    .unwrap();
    assert!(
        out.iter().all(|(_, o)| *o == RunOutcome::AlreadyCompleted),
        "{out:?}"
    );
}

#[test]
fn a_database_that_lost_a_run_or_its_ending_is_refused() {
    // The database shows an older state of a run than runs/<id>/run.json (lost writes).
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path());
    let p = plan();
    {
        let store = Store::open(dir.path()).unwrap();
        // Back to an older state of run 0: running, no end (what a cut log shows).
        let mut run = store.get_run(&p.runs[0].run_id).unwrap().unwrap();
        run.status = RunStatus::Running;
        run.ended_at = None;
        let bytes = serde_json::to_vec(&run).unwrap();
        store
            .raw_put("runs", p.runs[0].run_id.as_bytes(), &bytes)
            .unwrap();
        store.flush().unwrap();
    }
    match Store::open(dir.path()) {
        Err(Error::StoreDamaged { reason, .. }) => {
            assert!(reason.contains("in the database"), "{reason}");
        }
        Err(other) => panic!("expected StoreDamaged, got {other}"),
        Ok(_) => panic!("a database behind its run files was accepted"),
    }
    // Removing a run on purpose removes its file too, so that is no damage.
    let dir = tempfile::tempdir().unwrap();
    populated(dir.path());
    {
        let store = Store::open(dir.path()).unwrap();
        store.remove_run(&p.runs[2].run_id).unwrap();
    }
    assert!(Store::open(dir.path()).is_ok());
}

#[test]
fn reports_stay_under_out_and_take_the_specs_report_name() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("results");
    let out = dir.path().join("reports");
    let text = "[experiment]\nname = \"t\"\nseeds = [1, 2]\n[report]\nname = \"custom\"\n";
    let spec = Spec::parse(Path::new("t.toml"), text).unwrap();
    let p = Plan::resolve(&spec, &registry()).unwrap();
    {
        let store = Store::open(&root).unwrap();
        run_plan(
            &store,
            &p,
            &registry(),
            &RunOptions::default(),
            &Progress::hidden(),
        )
        .unwrap();
    }
    let out_arg = out.to_str().unwrap();
    let bad = recx(
        &root,
        &[
            "report",
            "--experiment",
            "t",
            "--out",
            out_arg,
            "--name",
            "../../x",
        ],
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--name") && stderr.contains("not a plain folder name"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("x").exists() && !out.exists(),
        "nothing written"
    );

    let good = recx(&root, &["report", "--experiment", "t", "--out", out_arg]);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        out.join("custom").join("index.md").is_file(),
        "[report] name is used"
    );

    // --open hands the page to $BROWSER; a browser that fails is an error that says what to do.
    let opened = dir.path().join("opened.txt");
    let browser = dir.path().join("browser.sh");
    std::fs::write(
        &browser,
        format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let report_open = |browser: &Path| {
        Command::new(env!("CARGO_BIN_EXE_recx"))
            .args(["--quiet", "--store"])
            .arg(&root)
            .args(["report", "--experiment", "t", "--out", out_arg, "--open"])
            .env("BROWSER", browser)
            .output()
            .unwrap()
    };
    let shown = report_open(&browser);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let page = std::fs::read_to_string(&opened).unwrap();
    assert!(
        Path::new(page.trim()).is_absolute() && page.trim().ends_with("custom/index.html"),
        "{page}"
    );
    let failed = report_open(Path::new("/bin/false"));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(stderr.contains("set BROWSER"), "{stderr}");
}
