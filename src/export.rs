//! `recx export`: one wide row per run (identity, provenance, params, final metrics), the shape
//! pandas and spreadsheets want; series and per-example values stay in the store. With
//! `--format mlflow`, [`mlflow`] writes the runs (series included) in MLflow's file store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::Result;
use crate::store::{RunRecord, Store};

/// Ordered `column → value` for one run; params are prefixed `param.`, metrics `metric.`.
pub type Row = BTreeMap<String, Value>;

const ID_COLUMNS: &[&str] = &[
    "run_id",
    "experiment",
    "seed",
    "status",
    "group_key",
    "spec_hash",
    "git_commit",
    "git_dirty",
    "started_at",
    "duration_s",
];

/// Builds one row per run.
pub fn rows(store: &Store, runs: &[RunRecord]) -> Result<Vec<Row>> {
    runs.iter()
        .map(|r| {
            let mut row = Row::new();
            row.insert("run_id".into(), r.run_id.clone().into());
            row.insert("experiment".into(), r.experiment.clone().into());
            row.insert("seed".into(), r.seed.into());
            row.insert("status".into(), r.status.to_string().into());
            row.insert("group_key".into(), r.group_key.clone().into());
            row.insert("spec_hash".into(), r.spec_hash.clone().into());
            row.insert(
                "git_commit".into(),
                r.provenance
                    .git_commit
                    .clone()
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            );
            row.insert(
                "git_dirty".into(),
                r.provenance
                    .git_dirty
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            );
            row.insert(
                "started_at".into(),
                r.started_at
                    .map(|t| Value::from(t.to_rfc3339()))
                    .unwrap_or(Value::Null),
            );
            row.insert(
                "duration_s".into(),
                r.duration_secs().map(Value::from).unwrap_or(Value::Null),
            );
            for (k, v) in store.params(&r.run_id)? {
                row.insert(format!("param.{k}"), v);
            }
            for (k, v) in store.run_metrics(r)?.scalars {
                row.insert(format!("metric.{k}"), v.into());
            }
            Ok(row)
        })
        .collect()
}

/// Column order: identity columns, then params, then metrics, each sorted.
fn columns(rows: &[Row]) -> Vec<String> {
    let rest: BTreeSet<&String> = rows
        .iter()
        .flat_map(|r| r.keys())
        .filter(|k| !ID_COLUMNS.contains(&k.as_str()))
        .collect();
    let (params, metrics): (Vec<&String>, Vec<&String>) =
        rest.into_iter().partition(|k| k.starts_with("param."));
    ID_COLUMNS
        .iter()
        .map(|s| s.to_string())
        .chain(params.into_iter().cloned())
        .chain(metrics.into_iter().cloned())
        .collect()
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Writes the rows as CSV with a header (missing values empty).
pub fn write_csv(path: &Path, rows: &[Row]) -> Result<()> {
    let cols = columns(rows);
    let lines = rows
        .iter()
        .map(|row| cols.iter().map(|c| cell(row.get(c))).collect::<Vec<_>>());
    crate::fsutil::write_csv(path, &cols, lines)
}

/// Writes one JSON object per row (the shared JSON Lines writer), keys in column order.
pub fn write_jsonl(path: &Path, rows: &[Row]) -> Result<()> {
    let cols = columns(rows);
    let objects: Vec<Value> = rows
        .iter()
        .map(|row| {
            let obj: Map<String, Value> = cols
                .iter()
                .filter_map(|c| row.get(c).map(|v| (c.clone(), v.clone())))
                .collect();
            Value::Object(obj)
        })
        .collect();
    crate::fsutil::write_jsonl(path, &objects)
}

/// `recx export --format mlflow`: the runs in MLflow's file-store layout, so that
/// `mlflow ui --backend-store-uri DIR` browses them and `mlflow.MlflowClient("file://DIR")`
/// reads them. The layout (MLflow's `FileStore`):
///
/// ```text
/// DIR/0/meta.yaml                          the Default experiment MLflow expects
/// DIR/<exp>/meta.yaml                      one experiment per recx experiment (ids 1, 2, … by name)
/// DIR/<exp>/<run>/meta.yaml                the run (id = recx run id), status, start/end times
/// DIR/<exp>/<run>/params/<key>             the plan's params, one value per file
/// DIR/<exp>/<run>/metrics/<key>            "timestamp value step" lines: scalars at step 0,
///                                          series (training curves) at their steps
/// DIR/<exp>/<run>/tags/<key>               git commit, plan hash, spec hash, seed, status, …
/// DIR/<exp>/<run>/artifacts/               spec.toml, run.json, and a link per stage folder
/// ```
///
/// MLflow allows letters, digits, `_ - . / space` in keys; other characters (`@` in `hit@5`)
/// become `_at_` / `_`. Metric timestamps are the run's end (or start) time in milliseconds.
pub mod mlflow {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use crate::error::{Error, IoContext, Result};
    use crate::store::{RunRecord, RunStatus, Store};

    /// A file that marks a folder as written by this exporter (so a re-export may replace it).
    const MARKER: &str = ".recx-mlflow-export";

    /// What was written.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Written {
        pub experiments: usize,
        pub runs: usize,
        pub metrics: usize,
    }

    /// Writes `runs` into `dir` in MLflow's file-store layout. `dir` must be new, empty, or an
    /// earlier export (which is replaced).
    pub fn write(store: &Store, runs: &[RunRecord], dir: &Path) -> Result<Written> {
        prepare(dir)?;
        let dir = std::path::absolute(dir).at(dir)?;
        let now = chrono::Utc::now().timestamp_millis();
        write_experiment(&dir, "0", "Default", now)?;
        let names: std::collections::BTreeSet<&str> =
            runs.iter().map(|r| r.experiment.as_str()).collect();
        let ids: BTreeMap<&str, String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, (i + 1).to_string()))
            .collect();
        for (name, id) in &ids {
            write_experiment(&dir, id, name, now)?;
        }
        let mut metrics = 0;
        for r in runs {
            metrics += write_run(store, r, &dir.join(&ids[r.experiment.as_str()]))?;
        }
        Ok(Written {
            experiments: ids.len(),
            runs: runs.len(),
            metrics,
        })
    }

    fn prepare(dir: &Path) -> Result<()> {
        if dir.exists() {
            let empty = std::fs::read_dir(dir).at(dir)?.next().is_none();
            if !empty && !dir.join(MARKER).is_file() {
                return Err(Error::Config(format!(
                    "{} is not empty and not an earlier MLflow export; choose a new folder",
                    dir.display()
                )));
            }
            if !empty {
                std::fs::remove_dir_all(dir).at(dir)?;
            }
        }
        std::fs::create_dir_all(dir).at(dir)?;
        write_file(
            &dir.join(MARKER),
            "written by `recx export --format mlflow`\n",
        )
    }

    fn write_file(path: &Path, text: &str) -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).at(parent)?;
        }
        std::fs::write(path, text).at(path)
    }

    /// A YAML scalar: single-quoted, quotes doubled (YAML's own escaping for that style).
    fn yaml_str(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''").replace('\n', " "))
    }

    fn file_uri(p: &Path) -> String {
        format!("file://{}", p.display())
    }

    fn write_experiment(root: &Path, id: &str, name: &str, now: i64) -> Result<()> {
        let dir = root.join(id);
        let meta = format!(
            "artifact_location: {}\ncreation_time: {now}\nexperiment_id: {}\nlast_update_time: {now}\n\
             lifecycle_stage: active\nname: {}\n",
            yaml_str(&file_uri(&dir)),
            yaml_str(id),
            yaml_str(name)
        );
        write_file(&dir.join("meta.yaml"), &meta)
    }

    /// MLflow's run status numbers (`RunStatus` in its protos).
    fn status_code(s: RunStatus) -> u8 {
        match s {
            RunStatus::Running => 1,
            RunStatus::Queued => 2,
            RunStatus::Completed => 3,
            RunStatus::Failed => 4,
            RunStatus::Interrupted => 5,
        }
    }

    /// A key MLflow accepts: letters, digits and `_ - . / space`; `@` reads as `_at_`.
    pub fn key(name: &str) -> String {
        name.replace('@', "_at_")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ' ') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    fn value_text(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// One run; returns the number of metric files.
    fn write_run(store: &Store, r: &RunRecord, exp_dir: &Path) -> Result<usize> {
        let dir = exp_dir.join(&r.run_id);
        let ms = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_millis());
        let start = ms(r.started_at).unwrap_or_else(|| r.created_at.timestamp_millis());
        let end = ms(r.ended_at);
        let run_name = format!("{} seed {}", r.experiment, r.seed);
        let experiment_id = exp_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let meta = format!(
            "artifact_uri: {}\nend_time: {}\nentry_point_name: ''\nexperiment_id: {}\n\
             lifecycle_stage: active\nname: ''\nrun_id: {id}\nrun_name: {}\nrun_uuid: {id}\n\
             source_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: {start}\n\
             status: {}\ntags: []\nuser_id: recx\n",
            yaml_str(&file_uri(&dir.join("artifacts"))),
            end.map_or("null".into(), |e| e.to_string()),
            yaml_str(&experiment_id),
            yaml_str(&run_name),
            status_code(r.status),
            id = r.run_id,
        );
        write_file(&dir.join("meta.yaml"), &meta)?;
        for (k, v) in store.params(&r.run_id)? {
            write_file(&dir.join("params").join(key(&k)), &value_text(&v))?;
        }
        let p = &r.provenance;
        let mut tags: Vec<(&str, String)> = vec![
            ("mlflow.runName", run_name.clone()),
            ("mlflow.user", "recx".into()),
            ("mlflow.source.type", "LOCAL".into()),
            ("mlflow.source.name", r.spec_path.clone()),
            ("recx.run_id", r.run_id.clone()),
            ("recx.plan_hash", r.group_key.clone()),
            ("recx.spec_hash", r.spec_hash.clone()),
            ("recx.seed", r.seed.to_string()),
            ("recx.status", r.status.to_string()),
            ("recx.attempts", r.attempts.to_string()),
            ("recx.host", p.host.clone()),
            ("recx.version", p.recx_version.clone()),
            ("recx.backend", p.backend.clone()),
        ];
        if let Some(commit) = &p.git_commit {
            tags.push(("mlflow.source.git.commit", commit.clone()));
        }
        if let Some(dirty) = p.git_dirty {
            tags.push(("recx.git_dirty", dirty.to_string()));
        }
        if let Some(e) = &r.error {
            tags.push(("recx.error", e.clone()));
        }
        for (k, v) in tags {
            write_file(&dir.join("tags").join(k), &v)?;
        }
        let m = store.run_metrics(r)?;
        let at = end.unwrap_or(start);
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        for (name, v) in &m.scalars {
            files
                .entry(key(name))
                .or_default()
                .push_str(&format!("{at} {v} 0\n"));
        }
        for (name, points) in &m.series {
            let text = files.entry(key(name)).or_default();
            for (step, v) in points {
                text.push_str(&format!("{at} {v} {step}\n"));
            }
        }
        for (k, text) in &files {
            write_file(&dir.join("metrics").join(k), text)?;
        }
        write_artifacts(store, r, &dir.join("artifacts"))?;
        Ok(files.len())
    }

    /// The spec, the run record, and a link to each finished stage folder.
    fn write_artifacts(store: &Store, r: &RunRecord, dir: &Path) -> Result<()> {
        write_file(&dir.join("spec.toml"), &r.spec_text)?;
        let run_json = serde_json::to_string_pretty(r).expect("records serialize");
        write_file(&dir.join("run.json"), &run_json)?;
        for (kind, hash) in &r.stages {
            let target: PathBuf = std::path::absolute(store.artifact_dir(kind, hash))
                .at(store.artifact_dir(kind, hash))?;
            if target.is_dir() {
                link(&target, &dir.join("stages").join(kind))?;
            }
        }
        Ok(())
    }

    #[cfg(unix)]
    fn link(target: &Path, at: &Path) -> Result<()> {
        if let Some(parent) = at.parent() {
            std::fs::create_dir_all(parent).at(parent)?;
        }
        std::os::unix::fs::symlink(target, at).at(at)
    }

    #[cfg(not(unix))]
    fn link(target: &Path, at: &Path) -> Result<()> {
        write_file(
            &at.with_extension("path.txt"),
            &target.display().to_string(),
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn keys_and_yaml_are_what_mlflow_reads() {
            assert_eq!(key("eval.uid2next.hit@5"), "eval.uid2next.hit_at_5");
            assert_eq!(key("train.loss/epoch"), "train.loss/epoch");
            assert_eq!(key("a:b"), "a_b");
            assert_eq!(yaml_str("it's"), "'it''s'");
        }
    }
}
