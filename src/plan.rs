//! Experiment specs, high layer: the resolved plan the runner executes.
//!
//! Resolution fills defaults (already done by serde), expands `experiment.seeds` into runs and
//! gives every stage a content hash: its own fingerprint plus the hashes of the stages it reads.
//! Identity follows from the hashes alone: the run id is derived from the plan hash and the
//! seed, so running the same spec and seed twice addresses the same run, and runs that differ
//! only by seed share a group key (the plan hash).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::hash::{hash_bytes, hash_json};
use crate::pipeline::{Resolved, Stage, StageKind};
use crate::spec::{RawSpec, Spec};

/// One stage of one run, with its content hash.
#[derive(Debug, Clone, Serialize)]
pub struct StagePlan {
    pub kind: StageKind,
    pub hash: String,
    /// The hashes of the stages this one reads.
    pub deps: BTreeMap<StageKind, String>,
    pub fingerprint: serde_json::Value,
    /// What the stage's `run` reads; `fingerprint` is theirs.
    #[serde(skip)]
    pub settings: Resolved,
}

/// One seed of the experiment.
#[derive(Debug, Clone, Serialize)]
pub struct RunPlan {
    pub run_id: String,
    pub seed: u64,
    /// Enabled stages in dependency order.
    pub stages: Vec<StagePlan>,
}

/// A spec resolved into runs.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub experiment: String,
    pub description: String,
    pub spec_path: PathBuf,
    /// SHA-256 of the spec file's text as written.
    pub spec_hash: String,
    /// Hash of every setting that affects results, seeds excluded: the group key.
    pub plan_hash: String,
    /// The spec with every default filled in.
    pub resolved: serde_json::Value,
    pub runs: Vec<RunPlan>,
    #[serde(skip)]
    pub spec: RawSpec,
    #[serde(skip)]
    pub spec_text: String,
}

impl Plan {
    /// Resolves `spec` against the stages in `registry`.
    pub fn resolve(spec: &Spec, registry: &[Box<dyn Stage>]) -> Result<Plan> {
        let resolved = serde_json::to_value(&spec.raw).expect("the spec serializes");
        let plan_hash = hash_json(&result_affecting(&resolved));
        let spec_dir = spec_dir(&spec.path);
        let order = topological_order(registry)?;
        let mut runs = Vec::new();
        for &seed in &spec.raw.experiment.seeds {
            let stages = plan_stages(&spec.raw, &spec_dir, seed, registry, &order)?;
            runs.push(RunPlan {
                run_id: run_id(&plan_hash, seed),
                seed,
                stages,
            });
        }
        Ok(Plan {
            experiment: spec.raw.experiment.name.clone(),
            description: spec.raw.experiment.description.clone(),
            spec_path: spec.path.clone(),
            spec_hash: hash_bytes(spec.text.as_bytes()),
            plan_hash,
            resolved,
            runs,
            spec: spec.raw.clone(),
            spec_text: spec.text.clone(),
        })
    }

    /// The folder relative paths in the spec are resolved against.
    pub fn spec_dir(&self) -> PathBuf {
        spec_dir(&self.spec_path)
    }

    /// Flattened `section.key = value` pairs of the resolved spec (for the params table).
    pub fn params(&self) -> BTreeMap<String, serde_json::Value> {
        let mut out = BTreeMap::new();
        flatten("", &self.resolved, &mut out);
        out
    }
}

/// The run id for a plan hash and a seed.
pub fn run_id(plan_hash: &str, seed: u64) -> String {
    hash_json(&json!({ "plan": plan_hash, "seed": seed }))[..16].to_string()
}

fn spec_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The resolved spec minus what cannot change results: names, descriptions, seeds (they make
/// the runs of a group), report layout and sweep definitions.
fn result_affecting(resolved: &serde_json::Value) -> serde_json::Value {
    let mut v = resolved.clone();
    if let Some(obj) = v.as_object_mut() {
        obj.remove("experiment");
        obj.remove("report");
        obj.remove("sweep");
    }
    v
}

fn plan_stages(
    spec: &RawSpec,
    spec_dir: &Path,
    seed: u64,
    registry: &[Box<dyn Stage>],
    order: &[usize],
) -> Result<Vec<StagePlan>> {
    let mut hashes: BTreeMap<StageKind, String> = BTreeMap::new();
    let mut out = Vec::new();
    for &i in order {
        let stage = &registry[i];
        if !stage.enabled(spec) || stage.deps().iter().any(|d| !hashes.contains_key(d)) {
            continue;
        }
        let deps: BTreeMap<StageKind, String> = stage
            .deps()
            .iter()
            .map(|d| (*d, hashes[d].clone()))
            .collect();
        let settings = stage.settings(spec, spec_dir, seed)?;
        let fingerprint = settings.fingerprint();
        let hash = hash_json(&json!({
            "stage": stage.kind().as_str(),
            "recx": env!("CARGO_PKG_VERSION"),
            "fingerprint": fingerprint,
            "deps": deps,
        }));
        hashes.insert(stage.kind(), hash.clone());
        out.push(StagePlan {
            kind: stage.kind(),
            hash,
            deps,
            fingerprint,
            settings,
        });
    }
    Ok(out)
}

/// Registry indices in an order where every stage follows its dependencies.
fn topological_order(registry: &[Box<dyn Stage>]) -> Result<Vec<usize>> {
    let mut done: Vec<StageKind> = Vec::new();
    let mut order = Vec::new();
    while order.len() < registry.len() {
        let before = order.len();
        for (i, s) in registry.iter().enumerate() {
            if !order.contains(&i) && s.deps().iter().all(|d| done.contains(d)) {
                order.push(i);
                done.push(s.kind());
            }
        }
        if order.len() == before {
            let stuck: Vec<String> = registry
                .iter()
                .enumerate()
                .filter(|(i, _)| !order.contains(i))
                .map(|(_, s)| s.kind().to_string())
                .collect();
            return Err(Error::Config(format!(
                "stages with missing or cyclic dependencies: {}",
                stuck.join(", ")
            )));
        }
    }
    Ok(order)
}

/// Flattens a resolved spec into `section.key` params (also used to rebuild a store's params).
pub(crate) fn flatten_params(
    prefix: &str,
    v: &serde_json::Value,
    out: &mut BTreeMap<String, serde_json::Value>,
) {
    flatten(prefix, v, out)
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, child, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}
