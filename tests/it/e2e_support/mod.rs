//! Running `recx run` on a spec written into a temporary folder, as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `recx --store <store> ARGS` to the end and returns what it printed.
pub fn recx(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recx"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

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

/// The test-scale LLM stages (`tests/fixtures/tiny_llm.toml`); it ends inside `[baselines]`.
pub const TINY_LLM: &str = include_str!("../../fixtures/tiny_llm.toml");

/// A whole spec at test scale on `games-mini`: a one-epoch tiny SASRec, then `alignment`'s
/// lines in `[alignment]` (the mode; ShareGPT is off), then `llm` (usually [`TINY_LLM`], edited,
/// after any other tables) and `baselines`' lines appended to its closing `[baselines]` table.
pub fn tiny_pipeline_spec(
    name: &str,
    seed: u64,
    alignment: &str,
    llm: &str,
    baselines: &str,
) -> String {
    let last_table = llm.rsplit("\n[").next().unwrap_or_default();
    assert!(
        last_table.starts_with("baselines]"),
        "the LLM part must end in its [baselines] table: the baseline lines are appended there"
    );
    format!(
        r#"
[experiment]
name = "{name}"
seeds = [{seed}]

[data]
source = "games-mini"

[recommender]
model = "sasrec"
embedding_size = 16
n_heads = 2
inner_size = 32
epochs = 1

[alignment]
sharegpt_train = 0
sharegpt_valid = 0
{alignment}

{llm}
{baselines}
"#
    )
}
