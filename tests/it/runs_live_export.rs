//! Runs seen from outside: `recx runs show` in another process shows a running run's live stage
//! and progress bar (the running process holds the database, so the CLI reads the run's files),
//! and `recx export --format mlflow` writes MLflow's file-store layout, read back with Python's
//! `mlflow` where installed.

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::e2e_support::recx;
use recx::error::Result;
use recx::pipeline::{Progress, Resolved, Stage, StageContext, StageKind};

use crate::stage_support;
use recx::plan::Plan;
use recx::runner::{RunOptions, RunOutcome, run_plan};
use recx::spec::{RawSpec, Spec};
use recx::store::Store;

/// A stage that records a scalar, a three-step series and a metric with `@`.
struct Measure;

impl Stage for Measure {
    fn kind(&self) -> StageKind {
        StageKind::Data
    }
    fn deps(&self) -> &'static [StageKind] {
        &[]
    }
    fn settings(&self, spec: &RawSpec, _: &Path, seed: u64) -> Result<Resolved> {
        stage_support::json(serde_json::json!({ "epochs": spec.train.epochs, "seed": seed }))
    }
    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        std::fs::write(ctx.out_dir().join("out.txt"), "measured").unwrap();
        let seed = stage_support::number(ctx, "seed");
        ctx.recorder.scalar("hit@5", 0.25 + seed);
        for step in 1..=3 {
            ctx.recorder.series("loss", step, 1.0 / step as f64);
        }
        Ok(())
    }
}

/// A stage that shows a bar at 3/10 and waits until the test lets it go.
struct Waiting {
    gate: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
}

impl Stage for Waiting {
    fn kind(&self) -> StageKind {
        StageKind::Recommender
    }
    fn deps(&self) -> &'static [StageKind] {
        &[StageKind::Data]
    }
    fn settings(&self, _: &RawSpec, _: &Path, _: u64) -> Result<Resolved> {
        stage_support::json(serde_json::json!({}))
    }
    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let bar = ctx.progress.bar(10, "recommender epochs");
        bar.set_position(3);
        if let Some(gate) = self.gate.lock().unwrap().take() {
            let _ = gate.recv_timeout(Duration::from_secs(60));
        }
        bar.finish_and_clear();
        Ok(())
    }
}

fn plan(text: &str, registry: &[Box<dyn Stage>]) -> Plan {
    let spec = Spec::parse(Path::new("t.toml"), text).unwrap();
    Plan::resolve(&spec, registry).unwrap()
}

#[test]
fn runs_show_in_another_process_shows_the_live_stage_and_bar() {
    let dir = tempfile::tempdir().unwrap();
    let (open, gate) = mpsc::channel();
    let registry: Vec<Box<dyn Stage>> = vec![
        Box::new(Measure),
        Box::new(Waiting {
            gate: Arc::new(Mutex::new(Some(gate))),
        }),
    ];
    let p = plan(
        "[experiment]\nname = \"live\"\nseeds = [1]\n[train]\nepochs = 2\n",
        &registry,
    );
    let run_id = p.runs[0].run_id.clone();
    let root = dir.path().to_path_buf();
    let runner = std::thread::spawn(move || {
        let store = Store::open(&root).unwrap();
        run_plan(
            &store,
            &p,
            &registry,
            &RunOptions::default(),
            &Progress::hidden(),
        )
        .unwrap()
    });
    // The live file is rewritten every second; wait until it shows the waiting stage's bar.
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let out = recx(dir.path(), &["runs", "show", &run_id[..8]]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("recommender epochs: 3/10") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    open.send(()).unwrap();
    let outcomes = runner.join().unwrap();
    assert_eq!(outcomes[0].1, RunOutcome::Completed);
    assert!(text.contains("in use by a running recx process"), "{text}");
    assert!(text.contains("status      running"), "{text}");
    assert!(
        text.contains("live        stage recommender, running for"),
        "{text}"
    );
    assert!(
        text.contains("recommender epochs: 3/10 (30.0 %)"),
        "the bar with its position: {text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("  data") && l.ends_with("done")),
        "{text}"
    );
    // Once the run ends its live file is gone and the store opens again.
    assert!(
        !dir.path()
            .join("runs")
            .join(&run_id)
            .join("live.json")
            .exists()
    );
    let out = recx(dir.path(), &["runs", "show", &run_id[..8]]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("status      completed") && !text.contains("live "),
        "{text}"
    );
}

/// Two seeds of one experiment with a finished stage each.
fn measured_store(dir: &Path) -> Plan {
    let registry: Vec<Box<dyn Stage>> = vec![Box::new(Measure)];
    let p = plan(
        "[experiment]\nname = \"mlflow-demo\"\nseeds = [1, 2]\n[train]\nepochs = 3\n",
        &registry,
    );
    let store = Store::open(dir).unwrap();
    let out = run_plan(
        &store,
        &p,
        &registry,
        &RunOptions::default(),
        &Progress::hidden(),
    )
    .unwrap();
    assert!(out.iter().all(|(_, o)| *o == RunOutcome::Completed));
    p
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn mlflow_export_writes_the_file_store_layout() {
    let dir = tempfile::tempdir().unwrap();
    let p = measured_store(dir.path());
    let out_dir = dir.path().join("mlruns");
    let out = recx(
        dir.path(),
        &[
            "export",
            "--format",
            "mlflow",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("exported 2 runs of 1 experiments"));

    assert!(read(&out_dir.join("0/meta.yaml")).contains("name: 'Default'"));
    let exp = read(&out_dir.join("1/meta.yaml"));
    assert!(
        exp.contains("name: 'mlflow-demo'") && exp.contains("experiment_id: '1'"),
        "{exp}"
    );
    assert!(exp.contains("lifecycle_stage: active"));
    for (run, seed) in p.runs.iter().zip([1.0, 2.0]) {
        let run_dir = out_dir.join("1").join(&run.run_id);
        let meta = read(&run_dir.join("meta.yaml"));
        assert!(meta.contains(&format!("run_id: {}", run.run_id)), "{meta}");
        assert!(meta.contains("status: 3"), "FINISHED: {meta}");
        assert!(meta.contains(&format!("artifact_uri: 'file://{}", run_dir.display())));
        assert_eq!(read(&run_dir.join("params/train.epochs")), "3");
        assert_eq!(read(&run_dir.join("tags/recx.plan_hash")), p.plan_hash);
        assert_eq!(read(&run_dir.join("tags/recx.seed")), run.seed.to_string());
        // The series: one "timestamp value step" line per step.
        let loss = read(&run_dir.join("metrics/data.loss"));
        let steps: Vec<(f64, u64)> = loss
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                assert_eq!(f.len(), 3, "{l}");
                assert!(
                    f[0].parse::<i64>().unwrap() > 1_600_000_000_000,
                    "ms timestamp: {l}"
                );
                (f[1].parse().unwrap(), f[2].parse().unwrap())
            })
            .collect();
        assert_eq!(steps, [(1.0, 1), (0.5, 2), (1.0 / 3.0, 3)]);
        let hit = read(&run_dir.join("metrics/data.hit_at_5"));
        assert!(hit.ends_with(&format!(" {} 0\n", 0.25 + seed)), "{hit}");
        assert!(read(&run_dir.join("artifacts/spec.toml")).contains("mlflow-demo"));
        assert_eq!(
            read(&run_dir.join("artifacts/stages/data/out.txt")),
            "measured",
            "the stage folder is linked"
        );
    }
    // A git checkout records its commit (the test runs inside the repository).
    let run_dir = out_dir.join("1").join(&p.runs[0].run_id);
    let store_run = {
        let text = read(
            &dir.path()
                .join("runs")
                .join(&p.runs[0].run_id)
                .join("run.json"),
        );
        serde_json::from_str::<recx::store::RunRecord>(&text).unwrap()
    };
    if let Some(commit) = store_run.provenance.git_commit {
        assert_eq!(read(&run_dir.join("tags/mlflow.source.git.commit")), commit);
    }
    // Exporting again replaces the earlier export; a foreign folder is refused.
    let again = recx(
        dir.path(),
        &[
            "export",
            "--format",
            "mlflow",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(again.status.success());
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let refused = recx(
        dir.path(),
        &[
            "export",
            "--format",
            "mlflow",
            "--out",
            foreign.to_str().unwrap(),
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not empty"));
}

const PY_MLFLOW: &str = r#"
import json, sys, warnings
warnings.filterwarnings("ignore")
from mlflow.tracking import MlflowClient
c = MlflowClient(tracking_uri="file://" + sys.argv[1])
exps = {e.name: e.experiment_id for e in c.search_experiments()}
runs = c.search_runs([exps["mlflow-demo"]])
out = []
for r in runs:
    out.append({
        "id": r.info.run_id,
        "status": r.info.status,
        "params": r.data.params,
        "metrics": r.data.metrics,
        "tags": {k: v for k, v in r.data.tags.items() if k.startswith("recx.")},
        "loss": [(m.step, m.value) for m in c.get_metric_history(r.info.run_id, "data.loss")],
        "artifacts": sorted(a.path for a in c.list_artifacts(r.info.run_id)),
    })
print(json.dumps({"experiments": sorted(exps), "runs": out}))
"#;

#[test]
fn mlflow_reads_the_export_back() {
    let Some(python) = crate::llm_tokenizer_fixtures::python_with("mlflow") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = measured_store(dir.path());
    let out_dir = dir.path().join("mlruns");
    let out = recx(
        dir.path(),
        &[
            "export",
            "--format",
            "mlflow",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // MLflow 3.x keeps the file store in maintenance mode behind this opt-in.
    let py = std::process::Command::new(&python)
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .args(["-c", PY_MLFLOW, out_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "mlflow could not read the export: {}",
        String::from_utf8_lossy(&py.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    assert_eq!(
        got["experiments"],
        serde_json::json!(["Default", "mlflow-demo"])
    );
    let runs = got["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let mut ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut want: Vec<&str> = p.runs.iter().map(|r| r.run_id.as_str()).collect();
    want.sort();
    assert_eq!(ids, want);
    for r in runs {
        assert_eq!(r["status"], "FINISHED");
        assert_eq!(r["params"]["train.epochs"], "3");
        assert_eq!(r["tags"]["recx.plan_hash"], p.plan_hash.as_str());
        let seed: f64 = r["tags"]["recx.seed"].as_str().unwrap().parse().unwrap();
        assert_eq!(r["metrics"]["data.hit_at_5"], 0.25 + seed);
        assert_eq!(
            r["loss"],
            serde_json::json!([[1, 1.0], [2, 0.5], [3, 1.0 / 3.0]])
        );
        assert_eq!(
            r["artifacts"],
            serde_json::json!(["run.json", "spec.toml", "stages"])
        );
    }
}
