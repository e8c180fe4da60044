//! Where a run comes from: git state, host, versions, and which relevant environment variables
//! were set. Only variable NAMES are recorded; values (API keys above all) never leave memory.

use std::path::Path;
use std::process::Command;

use crate::store::Provenance;

/// Environment variables whose presence matters for reproducing a run.
const RELEVANT_ENV: &[&str] = &[
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AZURE_OPENAI_API_KEY",
    "CUDA_VISIBLE_DEVICES",
    "RAYON_NUM_THREADS",
    "RECX_HOME",
];

/// Collects provenance for a run whose spec lives in `spec_dir`.
pub fn collect(spec_dir: &Path) -> Provenance {
    let (git_commit, git_dirty) = git_state(spec_dir);
    Provenance {
        git_commit,
        git_dirty,
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        recx_version: env!("CARGO_PKG_VERSION").to_string(),
        burn_version: "0.21.0".to_string(),
        backend: backend_name().to_string(),
        env_names: RELEVANT_ENV
            .iter()
            .filter(|name| std::env::var_os(name).is_some())
            .map(|name| name.to_string())
            .collect(),
    }
}

/// The compute backends compiled into this build.
pub fn backend_name() -> &'static str {
    if cfg!(feature = "cuda") {
        "flex+cuda"
    } else {
        "flex"
    }
}

/// HEAD commit and whether tracked files differ from it; `None` outside a git checkout.
fn git_state(dir: &Path) -> (Option<String>, Option<bool>) {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]);
    let dirty = commit
        .as_ref()
        .and_then(|_| git(&["status", "--porcelain", "--untracked-files=no"]))
        .map(|s| !s.is_empty());
    (commit, dirty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_names_never_values() {
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("OPENAI_API_KEY", "sk-secret-value-123") };
        let p = collect(Path::new("."));
        assert!(p.env_names.contains(&"OPENAI_API_KEY".to_string()));
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("sk-secret-value-123"));
    }
}
