//! Store round trips, schema versioning and the one-process rule.

use std::collections::BTreeMap;
use std::process::Command;

use chrono::Utc;
use recx::pipeline::{Measurements, Recorder};
use recx::store::*;

fn run_record(id: &str) -> RunRecord {
    RunRecord {
        v: SCHEMA_VERSION,
        run_id: id.into(),
        experiment: "e".into(),
        group_key: "g".repeat(64),
        seed: 7,
        spec_path: "experiments/e.toml".into(),
        spec_text: "[experiment]\nname = \"e\"\n".into(),
        spec_hash: "s".repeat(64),
        resolved: serde_json::json!({"experiment": {"name": "e"}}),
        stages: vec![
            ("data".into(), "h1".into()),
            ("recommender".into(), "h2".into()),
        ],
        provenance: Provenance {
            git_commit: Some("abc".into()),
            git_dirty: Some(false),
            host: "host".into(),
            recx_version: "0.1.0".into(),
            burn_version: "0.21.0".into(),
            backend: "flex".into(),
            env_names: vec!["OPENAI_API_KEY".into()],
        },
        status: RunStatus::Running,
        created_at: Utc::now(),
        started_at: Some(Utc::now()),
        ended_at: None,
        error: None,
        attempts: 1,
    }
}

fn stage_record(hash: &str) -> StageRecord {
    StageRecord {
        v: SCHEMA_VERSION,
        kind: "data".into(),
        hash: hash.into(),
        run_id: "r1".into(),
        started_at: Utc::now(),
        ended_at: Utc::now(),
        artifact_dir: format!("artifacts/data/{hash}"),
        fingerprint: serde_json::json!({"path": "x"}),
    }
}

#[test]
fn runs_params_metrics_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.put_run(&run_record("r1")).unwrap();
        let mut params = BTreeMap::new();
        params.insert("train.lr".to_string(), serde_json::json!(0.0001));
        params.insert("alignment.mode".to_string(), serde_json::json!("both"));
        store.set_params("r1", &params).unwrap();

        let mut m = Measurements::default();
        m.scalar("users", 3901.0);
        m.series("loss", 1, 2.5);
        m.series("loss", 2, 1.5);
        m.series("loss", 10, 0.5);
        m.example("hit@5", "u1", 1.0);
        m.example("hit@5", "u2", 0.0);
        let art = ArtifactRecord {
            v: SCHEMA_VERSION,
            stage: "data".into(),
            stage_hash: "h1".into(),
            path: "sequential_data.txt".into(),
            sha256: "0".repeat(64),
            bytes: 12,
        };
        store
            .complete_stage(&stage_record("h1"), &m, &[art])
            .unwrap();
    }
    // Reopen: everything persisted.
    let store = Store::open(dir.path()).unwrap();
    let run = store.find_run("r").unwrap();
    assert_eq!(run, run_record_with_times(&run));
    assert_eq!(store.params("r1").unwrap()["alignment.mode"], "both");
    let metrics = store.run_metrics(&run).unwrap();
    assert_eq!(metrics.scalars["data.users"], 3901.0);
    assert_eq!(
        metrics.series["data.loss"],
        vec![(1, 2.5), (2, 1.5), (10, 0.5)]
    );
    assert_eq!(
        metrics.examples["data.hit@5"],
        vec![("u1".into(), 1.0), ("u2".into(), 0.0)]
    );
    assert_eq!(store.stage_artifacts("h1").unwrap()[0].bytes, 12);

    // Recomputing a stage replaces its measurements.
    let mut m = Measurements::default();
    m.scalar("items", 5.0);
    store.complete_stage(&stage_record("h1"), &m, &[]).unwrap();
    let metrics = store.run_metrics(&run).unwrap();
    assert!(!metrics.scalars.contains_key("data.users"));
    assert_eq!(metrics.scalars["data.items"], 5.0);

    store.remove_run("r1").unwrap();
    assert!(store.get_run("r1").unwrap().is_none());
    assert!(store.params("r1").unwrap().is_empty());
}

fn run_record_with_times(stored: &RunRecord) -> RunRecord {
    let mut r = run_record("r1");
    r.created_at = stored.created_at;
    r.started_at = stored.started_at;
    r
}

#[test]
fn dead_running_runs_are_marked_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put_run(&run_record("r1")).unwrap();
    assert_eq!(store.recover_dead_runs().unwrap(), vec!["r1".to_string()]);
    assert_eq!(
        store.get_run("r1").unwrap().unwrap().status,
        RunStatus::Interrupted
    );
}

#[test]
fn newer_schema_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut v = serde_json::to_value(run_record("r9")).unwrap();
    v["v"] = serde_json::json!(SCHEMA_VERSION + 1);
    store
        .raw_put("runs", b"r9", v.to_string().as_bytes())
        .unwrap();
    let err = store.get_run("r9").unwrap_err().to_string();
    assert!(err.contains("newer than this recx understands"), "{err}");
}

#[test]
fn ambiguous_and_missing_ids_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.put_run(&run_record("ab1")).unwrap();
    store.put_run(&run_record("ab2")).unwrap();
    assert!(
        store
            .find_run("ab")
            .unwrap_err()
            .to_string()
            .contains("ambiguous")
    );
    assert!(
        store
            .find_run("zz")
            .unwrap_err()
            .to_string()
            .contains("not found")
    );
}

#[test]
fn second_process_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _held = Store::open(dir.path()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_recx"))
        .args(["--store", dir.path().to_str().unwrap(), "runs", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is in use by another recx process"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
