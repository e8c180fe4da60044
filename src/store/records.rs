//! The records kept in the store, versioned so the schema can evolve.
//!
//! Every record carries `v`. Readers accept versions up to [`SCHEMA_VERSION`] and refuse newer
//! ones with a clear message instead of misreading them; new optional fields get
//! `#[serde(default)]` so older records still load.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

crate::spec_enum! {
    /// Life cycle of a run.
    pub enum RunStatus ("status") {
        Queued = "queued",
        Running = "running",
        Completed = "completed",
        Failed = "failed",
        Interrupted = "interrupted",
    }
}

/// Where and with what a run was made. Holds names of environment variables, never values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub git_commit: Option<String>,
    pub git_dirty: Option<bool>,
    pub host: String,
    pub recx_version: String,
    pub burn_version: String,
    pub backend: String,
    /// Names of relevant environment variables that were set (e.g. `OPENAI_API_KEY`).
    pub env_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub v: u32,
    pub run_id: String,
    pub experiment: String,
    /// Plan hash without the seed: runs that differ only by seed share it.
    pub group_key: String,
    pub seed: u64,
    pub spec_path: String,
    pub spec_text: String,
    /// SHA-256 of the spec text.
    pub spec_hash: String,
    /// The resolved spec (defaults filled in).
    pub resolved: serde_json::Value,
    /// `(stage, hash)` in execution order.
    pub stages: Vec<(String, String)>,
    pub provenance: Provenance,
    pub status: RunStatus,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// How many times the run was started.
    pub attempts: u32,
}

impl RunRecord {
    /// Wall-clock duration of the last attempt, if it ended.
    pub fn duration_secs(&self) -> Option<f64> {
        let (s, e) = (self.started_at?, self.ended_at?);
        Some((e - s).num_milliseconds() as f64 / 1000.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentRecord {
    pub v: u32,
    pub name: String,
    pub description: String,
    pub updated_at: DateTime<Utc>,
}

/// A completed stage execution; shared by every run whose plan has the same stage hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub v: u32,
    pub kind: String,
    pub hash: String,
    /// The run that computed it.
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// Artifact folder relative to the store root.
    pub artifact_dir: String,
    pub fingerprint: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    pub v: u32,
    pub stage: String,
    pub stage_hash: String,
    /// Path relative to the stage's artifact folder.
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

/// Everything measured for one run, gathered from its stages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunMetrics {
    /// `stage.metric` → value.
    pub scalars: BTreeMap<String, f64>,
    pub series: BTreeMap<String, Vec<(u64, f64)>>,
    pub examples: BTreeMap<String, Vec<(String, f64)>>,
}
