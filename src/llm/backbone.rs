//! The pretrained backbone a spec names (`llm.model`), as the stages that depend on it see it
//! before any weights are loaded: where it is, its identity for stage hashes, and its tokenizer.
//! The alignment-data stage counts tokens with that tokenizer and the training stage loads the
//! model, so this lives with the LLM core rather than in either stage.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{LlmSection, assets};
use crate::error::Result;
use crate::hash::{hash_file, hash_folder_files};
use crate::spec::resolve_spec_path;

/// The backbone's identity for the stage hash: the content hash of the checkpoint file, or of
/// every file of an HF folder (sharded weights, `tokenizer_config.json` and the rest), or the
/// scratch architecture (its vocabulary follows from the records, which have their own hash).
pub fn fingerprint(llm: &LlmSection, spec_dir: &Path) -> Result<Value> {
    if llm.model.is_empty() {
        return Ok(json!({ "scratch": llm.scratch, "template": llm.template }));
    }
    let path = resolve(llm, spec_dir)?;
    let files = if path.is_dir() {
        hash_folder_files(&path)?
    } else {
        json!(hash_file(&path)?.0)
    };
    Ok(json!({ "model": files, "template": llm.template }))
}

/// Where the pretrained backbone is; `None` for the scratch model.
pub fn backbone_path(llm: &LlmSection, spec_dir: &Path) -> Result<Option<PathBuf>> {
    if llm.model.is_empty() {
        return Ok(None);
    }
    resolve(llm, spec_dir).map(Some)
}

/// Where the backbone is: the cached SmolLM2 for `smollm2`, else a path relative to the spec.
pub fn resolve(llm: &LlmSection, spec_dir: &Path) -> Result<PathBuf> {
    if llm.model == "smollm2" {
        return assets::resolve_model(&llm.model);
    }
    assets::resolve_model(&resolve_spec_path(spec_dir, &llm.model).to_string_lossy())
}
