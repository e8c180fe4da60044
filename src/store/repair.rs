//! A damaged database is refused, never read as empty, and can be rebuilt from the folders.
//!
//! sled recovers what it can from a damaged log: random bytes or a file cut to zero open as an
//! empty database, a file cut in half opens as an older one, and flipped bytes can panic inside
//! sled. Any of these used to make the next `recx run` recompute and overwrite finished work.
//! So the folders beside the database keep their own copy of what it records, written after the
//! database (a file can lag the database by one write, never lead it):
//! - `runs/<run id>/run.json`: the run record, rewritten on every status change;
//! - `artifacts/<stage>/<hash>/stage-record.json`: the stage record and its measurements.
//!
//! [`verify`] compares the two when the store is opened and refuses a database that knows less
//! than its folders; [`rebuild`] moves a damaged database aside and restores the records from
//! the folders (`recx store rebuild`). Only the judge's response cache cannot be restored.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    ArtifactRecord, ExperimentRecord, RunRecord, RunStatus, SCHEMA_VERSION, StageRecord, Store,
};
use crate::error::{Error, IoContext, Result};
use crate::pipeline::Measurements;

/// A run's record file under `runs/<run id>/`.
pub const RUN_FILE: &str = "run.json";
/// A finished stage's record file inside its artifact folder (not one of its artifacts).
pub const STAGE_FILE: &str = "stage-record.json";
/// The runner's description of a stage folder (written for every finished stage).
const MANIFEST: &str = "stage.json";

/// What [`STAGE_FILE`] holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageFile {
    pub record: StageRecord,
    pub scalars: std::collections::BTreeMap<String, f64>,
    pub series: std::collections::BTreeMap<String, Vec<(u64, f64)>>,
    pub examples: std::collections::BTreeMap<String, Vec<(String, f64)>>,
}

/// The command that restores a store's records, for messages.
pub fn rebuild_command(root: &Path) -> String {
    format!("recx --store {} store rebuild", root.display())
}

/// The error for a database that cannot be trusted.
pub fn damaged(root: &Path, db: &Path, reason: impl Into<String>) -> Error {
    Error::StoreDamaged {
        db: db.to_path_buf(),
        reason: reason.into(),
        command: rebuild_command(root),
    }
}

/// Writes `runs/<run id>/run.json` (after the database has the record).
pub fn write_run_file(root: &Path, rec: &RunRecord) -> Result<()> {
    let dir = root.join("runs").join(&rec.run_id);
    std::fs::create_dir_all(&dir).at(&dir)?;
    let text = serde_json::to_vec_pretty(rec).expect("records serialize");
    crate::fsutil::write_atomic(&dir.join(RUN_FILE), &text)
}

/// Writes the stage's record file into its artifact folder when the folder exists.
pub fn write_stage_file(root: &Path, rec: &StageRecord, m: &Measurements) -> Result<()> {
    let dir = root.join(&rec.artifact_dir);
    if !dir.is_dir() {
        return Ok(());
    }
    let file = StageFile {
        record: rec.clone(),
        scalars: m.scalars.clone(),
        series: m.series.clone(),
        examples: m.examples.clone(),
    };
    let text = serde_json::to_vec_pretty(&file).expect("records serialize");
    crate::fsutil::write_atomic(&dir.join(STAGE_FILE), &text)
}

/// Finished stage folders: `artifacts/<stage>/<hash>` holding the runner's `stage.json`.
fn stage_folders(root: &Path) -> Result<Vec<(String, String, PathBuf)>> {
    let mut out = Vec::new();
    for kind_dir in sub_dirs(&root.join("artifacts"))? {
        let kind = file_name(&kind_dir);
        for dir in sub_dirs(&kind_dir)? {
            let hash = file_name(&dir);
            if !hash.ends_with(".partial") && dir.join(MANIFEST).is_file() {
                out.push((kind.clone(), hash, dir));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Run record files under `runs/`.
fn run_files(root: &Path) -> Result<Vec<PathBuf>> {
    Ok(sub_dirs(&root.join("runs"))?
        .into_iter()
        .map(|d| d.join(RUN_FILE))
        .filter(|f| f.is_file())
        .collect())
}

fn sub_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        if path.is_dir() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(super) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read(path).at(path)?;
    serde_json::from_slice(&text)
        .map_err(|e| Error::bad_input(path, e.line(), format!("unreadable record: {e}")))
}

/// Whether the run file records more than the database: a later attempt, or an ending the
/// database lacks. The file is written after the database, so this means lost writes.
fn file_is_ahead(file: &RunRecord, db: &RunRecord) -> bool {
    file.attempts > db.attempts
        || (file.attempts == db.attempts && file.ended_at.is_some() && db.ended_at.is_none())
}

/// Compares the open database with the folders beside it; a database that knows less than its
/// folders is damaged (or was replaced) and is refused before anything can overwrite work.
pub fn verify(store: &Store) -> Result<()> {
    let root = store.root();
    let db = root.join("db");
    for path in run_files(root)? {
        let Ok(file) = read_json::<RunRecord>(&path) else {
            continue; // a damaged run file is `store check`'s business, not a damaged database
        };
        match store.get_run(&file.run_id)? {
            None => {
                return Err(damaged(
                    root,
                    &db,
                    format!(
                        "run {} is recorded in {} but missing from the database",
                        file.run_id,
                        path.display()
                    ),
                ));
            }
            Some(rec) if file_is_ahead(&file, &rec) => {
                return Err(damaged(
                    root,
                    &db,
                    format!(
                        "run {} is {} (attempt {}) in {} but {} (attempt {}) in the database",
                        file.run_id,
                        file.status,
                        file.attempts,
                        path.display(),
                        rec.status,
                        rec.attempts
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let folders = stage_folders(root)?;
    let unrecorded = folders
        .iter()
        .filter(|(_, hash, _)| !matches!(store.stage(hash), Ok(Some(_))))
        .count();
    // One unrecorded folder is a process killed between publishing a stage and recording it;
    // every folder unrecorded means the database lost everything.
    if !folders.is_empty() && unrecorded == folders.len() && store.runs()?.is_empty() {
        return Err(damaged(
            root,
            &db,
            format!(
                "the database holds no runs and no stages, but {} finished stage folders exist \
                 under {}",
                folders.len(),
                root.join("artifacts").display()
            ),
        ));
    }
    Ok(())
}

/// What `recx store check` found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CheckReport {
    pub runs: usize,
    pub stages: usize,
    pub stage_folders: usize,
    /// Finished stage folders the database does not record.
    pub unrecorded_folders: Vec<String>,
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} runs, {} stage records, {} finished stage folders",
            self.runs, self.stages, self.stage_folders
        )?;
        if !self.unrecorded_folders.is_empty() {
            write!(
                f,
                "; {} folders without a record (recomputed on the next run unless rebuilt): {}",
                self.unrecorded_folders.len(),
                self.unrecorded_folders.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Opens the store (which verifies it), reads every record, and compares with the folders.
pub fn check(root: &Path) -> Result<CheckReport> {
    let store = Store::open(root)?;
    store.read_every_record()?;
    let folders = stage_folders(root)?;
    let mut report = CheckReport {
        runs: store.runs()?.len(),
        stages: store.stage_count()?,
        stage_folders: folders.len(),
        ..CheckReport::default()
    };
    for (kind, hash, _) in folders {
        if store.stage(&hash)?.is_none() {
            report.unrecorded_folders.push(format!("{kind}/{hash}"));
        }
    }
    Ok(report)
}

/// What `recx store rebuild` restored.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RebuildReport {
    /// Where the old database was moved (none when there was none).
    pub moved_to: Option<PathBuf>,
    pub runs: usize,
    pub stages: usize,
    /// Stages restored without measurements (folders written before stage records existed).
    pub stages_without_measurements: usize,
}

impl std::fmt::Display for RebuildReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(p) = &self.moved_to {
            write!(f, "old database kept as {}; ", p.display())?;
        }
        write!(f, "restored {} runs and {} stages", self.runs, self.stages)?;
        if self.stages_without_measurements > 0 {
            write!(
                f,
                " ({} without measurements: their folders predate stage-record.json)",
                self.stages_without_measurements
            )?;
        }
        Ok(())
    }
}

/// Moves the database aside (kept, never deleted) and restores run and stage records from the
/// folders. Runs that were `running` or `queued` come back `interrupted`, so the next
/// `recx run` resumes them; the judge's response cache starts empty.
pub fn rebuild(root: &Path) -> Result<RebuildReport> {
    let db = root.join("db");
    let mut report = RebuildReport::default();
    if db.exists() {
        let aside = root.join(format!("db.damaged-{}", Utc::now().format("%Y%m%dT%H%M%S")));
        std::fs::rename(&db, &aside).at(&aside)?;
        report.moved_to = Some(aside);
    }
    let store = Store::open_with_db(root, &db)?;
    for (kind, hash, dir) in stage_folders(root)? {
        let restored = restore_stage(&store, &kind, &hash, &dir)?;
        report.stages += 1;
        if !restored {
            report.stages_without_measurements += 1;
        }
    }
    for path in run_files(root)? {
        let mut run: RunRecord = read_json(&path)?;
        if matches!(run.status, RunStatus::Running | RunStatus::Queued) {
            run.status = RunStatus::Interrupted;
            run.error =
                Some("restored by `recx store rebuild`; the last attempt did not end".into());
        }
        store.put_experiment(&ExperimentRecord {
            v: SCHEMA_VERSION,
            name: run.experiment.clone(),
            description: run.resolved["experiment"]["description"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            updated_at: Utc::now(),
        })?;
        store.put_run(&run)?;
        let mut params = std::collections::BTreeMap::new();
        crate::plan::flatten_params("", &run.resolved, &mut params);
        store.set_params(&run.run_id, &params)?;
        report.runs += 1;
    }
    store.flush()?;
    Ok(report)
}

/// Restores one stage from its folder; false when it had no record file (no measurements).
fn restore_stage(store: &Store, kind: &str, hash: &str, dir: &Path) -> Result<bool> {
    let (record, measured, complete) = match read_json::<StageFile>(&dir.join(STAGE_FILE)) {
        Ok(file) => {
            let m = Measurements {
                scalars: file.scalars,
                series: file.series,
                examples: file.examples,
            };
            (file.record, m, true)
        }
        Err(_) => {
            let manifest: serde_json::Value = read_json(&dir.join(MANIFEST))?;
            let when = modified(dir);
            let record = StageRecord {
                v: SCHEMA_VERSION,
                kind: kind.to_string(),
                hash: hash.to_string(),
                run_id: String::new(),
                started_at: when,
                ended_at: when,
                artifact_dir: store.artifact_rel(kind, hash),
                fingerprint: manifest["fingerprint"].clone(),
            };
            (record, Measurements::default(), false)
        }
    };
    let artifacts = list_artifacts(dir, kind, hash)?;
    store.complete_stage_records(&record, &measured, &artifacts)?;
    Ok(complete)
}

fn modified(dir: &Path) -> DateTime<Utc> {
    std::fs::metadata(dir.join(MANIFEST))
        .and_then(|m| m.modified())
        .map(DateTime::<Utc>::from)
        .unwrap_or_else(|_| Utc::now())
}

/// Every file of a stage folder with its hash, as the runner records them (the record file
/// itself is not an artifact).
pub fn list_artifacts(dir: &Path, stage: &str, hash: &str) -> Result<Vec<ArtifactRecord>> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.retain(|f| f != STAGE_FILE);
    files.sort();
    files
        .into_iter()
        .map(|rel| {
            let (sha256, bytes) = crate::hash::hash_file(&dir.join(&rel))?;
            Ok(ArtifactRecord {
                v: SCHEMA_VERSION,
                stage: stage.to_string(),
                stage_hash: hash.to_string(),
                path: rel,
                sha256,
                bytes,
            })
        })
        .collect()
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).expect("under root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}
