//! `recx sweep` as a user runs it: a sweep killed mid-way resumes without redoing completed
//! runs, and `--jobs 2` runs workers in parallel and merges them into one store.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use recx::pipeline::registry;
use recx::spec::Spec;
use recx::store::{RunStatus, Store};
use recx::sweep::expand;

const SPEC: &str = r#"
[experiment]
name = "sweep-cli"
seeds = [1, 2]

[data]
source = "games-mini"

[recommender]
model = "sasrec"
embedding_size = 16
n_heads = 2
inner_size = 32
epochs = 1
seed = "run"

[alignment]
sharegpt_train = 0
sharegpt_valid = 0

[sweep.grid]
"alignment.mode" = ["behaviour", "both"]
"#;

/// The spec with the minute-scale LLM settings the pipeline tests share.
fn spec_text() -> String {
    format!("{SPEC}{}", crate::e2e_support::TINY_LLM)
}

fn recx(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_recx"));
    c.arg("--store").arg(store);
    c
}

fn completed(store: &Path) -> Vec<(String, u32)> {
    let s = Store::open(store).unwrap();
    s.runs()
        .unwrap()
        .into_iter()
        .filter(|r| r.status == RunStatus::Completed)
        .map(|r| (r.run_id, r.attempts))
        .collect()
}

#[test]
fn killed_sweep_resumes_and_parallel_sweep_merges() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("sweep.toml");
    std::fs::write(&spec_path, spec_text()).unwrap();
    let sweep = expand(&Spec::load(&spec_path).unwrap(), &registry()).unwrap();
    assert_eq!(sweep.runs.len(), 4);

    // Kill -9 once the first run has completed (its log says so), then resume.
    let store = dir.path().join("results");
    let mut child = recx(&store)
        .arg("sweep")
        .arg(&spec_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first_log = store
        .join("runs")
        .join(&sweep.runs[0].run_id)
        .join("log.txt");
    let start = Instant::now();
    while !std::fs::read_to_string(&first_log).is_ok_and(|t| t.contains("completed")) {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the first run never completed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before = completed(&store);
    assert!(
        !done_before.is_empty() && done_before.len() < 4,
        "{done_before:?}"
    );

    let out = recx(&store).arg("sweep").arg(&spec_path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("skip"),
        "completed runs are listed as skipped: {stdout}"
    );
    let done_after = completed(&store);
    assert_eq!(done_after.len(), 4);
    for (id, attempts) in &done_before {
        let after = done_after.iter().find(|(i, _)| i == id).unwrap();
        assert_eq!(after.1, *attempts, "run {id} was not redone");
    }

    // The same sweep with two workers in a fresh store.
    let parallel = dir.path().join("parallel");
    let out = recx(&parallel)
        .args(["sweep", "--jobs", "2"])
        .arg(&spec_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(completed(&parallel).len(), 4);
    assert!(
        !parallel.join("workers").join("0").exists(),
        "worker databases are removed after merging"
    );
    let (a, b) = (
        Store::open(&store).unwrap(),
        Store::open(&parallel).unwrap(),
    );
    for r in sweep.runs.iter() {
        let (ra, rb) = (
            a.get_run(&r.run_id).unwrap().unwrap(),
            b.get_run(&r.run_id).unwrap().unwrap(),
        );
        assert_eq!(ra.stages, rb.stages);
        assert_eq!(
            a.run_metrics(&ra).unwrap().scalars,
            b.run_metrics(&rb).unwrap().scalars,
            "same spec and seed, same numbers"
        );
    }
}
