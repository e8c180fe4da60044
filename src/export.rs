//! `recx export`: one wide row per run (identity, provenance, params, final metrics), the shape
//! pandas and spreadsheets want. Series and per-example values stay in the store.

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
