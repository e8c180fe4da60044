//! Crash safety: a `recx run` killed with SIGKILL in the middle of a stage leaves a readable
//! store; the rerun reuses the finished stage and redoes the interrupted one.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use recx::pipeline::registry;
use recx::plan::Plan;
use recx::spec::Spec;
use recx::store::{RunStatus, Store};

const SPEC: &str = r#"
[experiment]
name = "crash"
seeds = [5]

[data]
source = "games-mini"

[recommender]
model = "sasrec"
embedding_size = 32
n_heads = 2
inner_size = 64
epochs = 4
early_stop = 10

[alignment]
sharegpt_train = 0
sharegpt_valid = 0
"#;

/// The spec with the minute-scale LLM settings the pipeline tests share.
fn spec_text() -> String {
    format!("{SPEC}{}", crate::e2e_support::TINY_LLM)
}

fn recx(store: &Path, spec: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_recx"));
    c.arg("--store").arg(store).arg("run").arg(spec);
    c
}

fn wait_for(path: &Path, needle: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn sigkill_mid_stage_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("crash.toml");
    std::fs::write(&spec_path, spec_text()).unwrap();
    let store_dir = dir.path().join("results");
    let plan = Plan::resolve(&Spec::load(&spec_path).unwrap(), &registry()).unwrap();
    let run = &plan.runs[0];
    let (data, rec) = (&run.stages[0], &run.stages[1]);
    let log = store_dir.join("runs").join(&run.run_id).join("log.txt");

    // Start, wait until the recommender stage is under way, then kill -9.
    let mut child = recx(&store_dir, &spec_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(&log, "stage recommender", Duration::from_secs(120)),
        "the recommender stage never started"
    );
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    // The store opens, the finished stage is recorded, the killed one is not.
    {
        let store = Store::open(&store_dir).expect("the store opens after a SIGKILL");
        assert_eq!(
            store.get_run(&run.run_id).unwrap().unwrap().status,
            RunStatus::Running
        );
        assert!(
            store.stage(&data.hash).unwrap().is_some(),
            "the data stage finished before the kill"
        );
        assert!(
            store.stage(&rec.hash).unwrap().is_none(),
            "the killed stage is not recorded as done"
        );
        assert!(
            !store.artifact_dir("recommender", &rec.hash).exists(),
            "no half-written output in place"
        );
    }
    let data_file = store_dir.join(format!("artifacts/data/{}/sequential_data.txt", data.hash));
    let data_mtime = std::fs::metadata(&data_file).unwrap().modified().unwrap();

    // Rerun: data is reused ("cached"), the recommender is redone, the run completes.
    let out = recx(&store_dir, &spec_path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rerun failed: {stderr}");
    assert!(stderr.contains("marked interrupted"), "{stderr}");
    assert!(
        stderr.contains(&format!("stage data {}: cached", &data.hash[..12])),
        "{stderr}"
    );
    assert_eq!(
        std::fs::metadata(&data_file).unwrap().modified().unwrap(),
        data_mtime
    );

    let store = Store::open(&store_dir).unwrap();
    let rec_run = store.get_run(&run.run_id).unwrap().unwrap();
    assert_eq!(rec_run.status, RunStatus::Completed);
    assert_eq!(rec_run.attempts, 2);
    assert!(store.stage(&rec.hash).unwrap().is_some());
    assert!(
        store
            .artifact_dir("recommender", &rec.hash)
            .join("test_top.txt")
            .is_file()
    );
    let metrics = store.run_metrics(&rec_run).unwrap();
    assert!(
        metrics
            .scalars
            .keys()
            .any(|k| k.starts_with("recommender.")),
        "{:?}",
        metrics.scalars.keys()
    );
}

#[test]
fn ctrl_c_marks_the_run_interrupted_and_a_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("ctrlc.toml");
    std::fs::write(
        &spec_path,
        spec_text().replace("seeds = [5]", "seeds = [6]"),
    )
    .unwrap();
    let store_dir = dir.path().join("results");
    let plan = Plan::resolve(&Spec::load(&spec_path).unwrap(), &registry()).unwrap();
    let run = &plan.runs[0];
    let log = store_dir.join("runs").join(&run.run_id).join("log.txt");

    let child = recx(&store_dir, &spec_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(
        &log,
        "stage recommender",
        Duration::from_secs(120)
    ));
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("interrupted"));
    {
        let store = Store::open(&store_dir).unwrap();
        assert_eq!(
            store.get_run(&run.run_id).unwrap().unwrap().status,
            RunStatus::Interrupted
        );
        assert!(store.stage(&run.stages[0].hash).unwrap().is_some());
    }
    let out = recx(&store_dir, &spec_path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(&store_dir).unwrap();
    assert_eq!(
        store.get_run(&run.run_id).unwrap().unwrap().status,
        RunStatus::Completed
    );
}
