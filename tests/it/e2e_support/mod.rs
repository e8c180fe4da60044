//! Running `recx run` on a spec written into a temporary folder, as a user would.

use std::path::PathBuf;
use std::process::Command;

/// A finished `recx run`: its store and standard output (the temporary folder holding them
/// lives as long as the value).
pub struct Ran {
    _dir: tempfile::TempDir,
    pub store: PathBuf,
    pub stdout: String,
}

/// Writes `spec` to a temporary folder, runs `recx --quiet --store <folder>/results run` on it
/// and asserts that it succeeded (printing both outputs when it did not).
pub fn run_spec(spec: &str) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.toml");
    std::fs::write(&path, spec).unwrap();
    let store = dir.path().join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_recx"))
        .arg("--quiet")
        .arg("--store")
        .arg(&store)
        .arg("run")
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "run failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ran {
        _dir: dir,
        store,
        stdout,
    }
}
