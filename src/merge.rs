//! `recx merge`: fold stores (for example the shards of a cluster sweep) into one.
//!
//! Merging is idempotent: a record already present with the same bytes is skipped. Stages are
//! content addressed, so a stage present in both stores is the same computation; the target's
//! copy is kept and the duplicate is reported. A run present in both with different records
//! keeps the later attempt (the one that ended last), and the replacement is reported.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{IoContext, Result};
use crate::store::{RawEntries, RunRecord, StageRecord, Store};

/// What a merge did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MergeReport {
    pub runs_added: usize,
    pub runs_replaced: Vec<String>,
    pub runs_kept: Vec<String>,
    pub stages_added: usize,
    /// Stage hashes computed in both stores (the target's copy kept).
    pub stages_duplicate: Vec<String>,
    pub identical: usize,
    pub artifact_dirs_copied: usize,
}

impl std::fmt::Display for MergeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} runs added, {} replaced by a later attempt, {} kept (target newer); \
             {} stages added, {} computed in both (target kept); {} records already identical; \
             {} artifact folders copied",
            self.runs_added,
            self.runs_replaced.len(),
            self.runs_kept.len(),
            self.stages_added,
            self.stages_duplicate.len(),
            self.identical,
            self.artifact_dirs_copied
        )
    }
}

/// Merges the store at `source_root` into `target`.
pub fn merge_path_into(target: &Store, source_root: &Path) -> Result<MergeReport> {
    merge_into(target, &Store::open(source_root)?)
}

/// Merges `source` into `target`.
pub fn merge_into(target: &Store, source: &Store) -> Result<MergeReport> {
    let source_root = source.root();
    let dump: BTreeMap<String, RawEntries> = source.dump()?.into_iter().collect();
    let mut report = MergeReport::default();

    // Stages first: measurements and artifacts follow their stage record.
    for (k, v) in &dump["stages"] {
        match target.raw_get("stages", k)? {
            Some(existing) if existing == *v => report.identical += 1,
            Some(_) => report
                .stages_duplicate
                .push(String::from_utf8_lossy(k).into_owned()),
            None => {
                let rec: StageRecord =
                    serde_json::from_slice(v).map_err(|e| corrupt(source_root, e))?;
                copy_prefixed(
                    target,
                    &dump,
                    &["metrics", "series", "examples", "artifacts"],
                    &rec.hash,
                )?;
                copy_dir_if_absent(
                    &source.root().join(&rec.artifact_dir),
                    &target.root().join(&rec.artifact_dir),
                    &mut report,
                )?;
                target.raw_put("stages", k, v)?;
                report.stages_added += 1;
            }
        }
    }

    for (k, v) in &dump["runs"] {
        let src: RunRecord = serde_json::from_slice(v).map_err(|e| corrupt(source_root, e))?;
        let take = match target.raw_get("runs", k)? {
            Some(existing) if existing == *v => {
                report.identical += 1;
                false
            }
            Some(existing) => {
                let tgt: RunRecord =
                    serde_json::from_slice(&existing).map_err(|e| corrupt(target.root(), e))?;
                let newer = src.ended_at.or(src.started_at) > tgt.ended_at.or(tgt.started_at);
                if newer {
                    report.runs_replaced.push(src.run_id.clone());
                } else {
                    report.runs_kept.push(src.run_id.clone());
                }
                newer
            }
            None => {
                report.runs_added += 1;
                true
            }
        };
        if take {
            target.set_params(&src.run_id, &source.params(&src.run_id)?)?;
            target.raw_put("runs", k, v)?;
            if let Some(hb) = source.raw_get("heartbeats", k)? {
                target.raw_put("heartbeats", k, &hb)?;
            }
            copy_dir_if_absent(
                &source.run_dir(&src.run_id),
                &target.run_dir(&src.run_id),
                &mut report,
            )?;
            // The run file follows the record (after the folder copy, which skips existing
            // folders), so it never says more than the database.
            target.flush()?;
            target.mirror_run(&src)?;
        }
    }

    // Experiments and cached model answers: first writer wins (answers to the same request
    // are interchangeable samples).
    for tree in ["experiments", "responses"] {
        for (k, v) in &dump[tree] {
            if target.raw_get(tree, k)?.is_none() {
                target.raw_put(tree, k, v)?;
            }
        }
    }
    target.flush()?;
    Ok(report)
}

fn copy_prefixed(
    target: &Store,
    dump: &BTreeMap<String, RawEntries>,
    trees: &[&str],
    hash: &str,
) -> Result<()> {
    let prefix = format!("{hash}\u{0}");
    for tree in trees {
        for (k, v) in dump[*tree]
            .iter()
            .filter(|(k, _)| k.starts_with(prefix.as_bytes()))
        {
            target.raw_put(tree, k, v)?;
        }
    }
    Ok(())
}

/// Copies a folder tree unless the destination exists, through a temporary name.
fn copy_dir_if_absent(from: &Path, to: &Path, report: &mut MergeReport) -> Result<()> {
    if !from.is_dir() || to.exists() {
        return Ok(());
    }
    let mut tmp = to.as_os_str().to_os_string();
    tmp.push(".merging");
    let tmp = std::path::PathBuf::from(tmp);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).at(&tmp)?;
    }
    copy_tree(from, &tmp)?;
    std::fs::rename(&tmp, to).at(to)?;
    report.artifact_dirs_copied += 1;
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).at(to)?;
    for entry in std::fs::read_dir(from).at(from)? {
        let path = entry.at(from)?.path();
        let dest = to.join(path.file_name().expect("entries have names"));
        if path.is_dir() {
            copy_tree(&path, &dest)?;
        } else {
            std::fs::copy(&path, &dest).at(&dest)?;
        }
    }
    Ok(())
}

fn corrupt(root: &Path, e: serde_json::Error) -> crate::Error {
    crate::Error::Store {
        path: root.to_path_buf(),
        reason: format!("unreadable record: {e}"),
    }
}
