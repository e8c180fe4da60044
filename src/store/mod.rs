//! The run store: the only module that touches sled.
//!
//! Layout under the store root (`results/` by default):
//! - `db/`: the sled database (one process at a time; a second gets [`Error::StoreLocked`]);
//! - `artifacts/<stage>/<hash>/`: finished stage outputs (written by the runner);
//! - `runs/<run id>/log.txt`: the run's log;
//! - `annotations/<stage hash>/`: measurements taken of a finished stage's outputs after the fact
//!   (people's ratings of the explanation stage's answers, `recx import-ratings`), as files
//!   only: `<source>.measurements.json` joins the stage's own measurements as
//!   `<source>.<metric>`, and the files beside it are the annotating module's own.
//!
//! Measurements belong to stage executions (keyed by stage hash), not to runs: a stage shared by
//! several runs is computed and measured once, and each run sees it through its stage list.

mod records;
pub mod repair;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use records::*;

use crate::error::{Error, IoContext, Result};
use crate::pipeline::Measurements;

const SEP: char = '\u{0}';

/// Names the files under `annotations/<hash>/` that hold a source's attached measurements.
const ATTACHED_SUFFIX: &str = ".measurements.json";

/// Measurements attached to a finished stage (see [`Store::attach_measurements`]).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct AttachedFile {
    scalars: BTreeMap<String, f64>,
    examples: BTreeMap<String, Vec<(String, f64)>>,
}

/// A tree's raw `(key, value)` pairs, as copied between stores.
pub type RawEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// An open store.
#[derive(Clone)]
pub struct Store {
    root: PathBuf,
    db: sled::Db,
    experiments: sled::Tree,
    runs: sled::Tree,
    params: sled::Tree,
    stages: sled::Tree,
    metrics: sled::Tree,
    series: sled::Tree,
    examples: sled::Tree,
    artifacts: sled::Tree,
    heartbeats: sled::Tree,
    /// Answers of external models (the LLM judge), keyed by a hash of the full request.
    responses: sled::Tree,
    /// Whether this is the root's own database (`<root>/db`), whose run records are mirrored
    /// into `runs/<id>/run.json`; a sweep worker's database is not (its runs reach the root's
    /// database, and their files, when the parent merges them).
    mirrors_runs: bool,
}

impl Store {
    /// Opens (creating if needed) the store at `root`, refusing a damaged database: one that
    /// panics or fails when read, or knows less than the run and stage folders beside it (see
    /// [`repair`]). The error names the database and `recx store rebuild`.
    pub fn open(root: &Path) -> Result<Store> {
        let db_dir = root.join("db");
        let store = Store::open_with_db(root, &db_dir)?;
        store.read_every_record()?;
        repair::verify(&store)?;
        Ok(store)
    }

    /// Opens a store whose artifacts and logs live under `root` but whose database is `db_dir`:
    /// the parallel workers of a sweep share one artifact tree, each with its own database
    /// (sled allows one process per database), and the parent merges them afterwards.
    pub fn open_with_db(root: &Path, db_dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(root).at(root)?;
        let db = open_db(root, db_dir)?;
        let tree = |name: &str| {
            catch_sled_panic(|| db.open_tree(name))
                .map_err(|reason| repair::damaged(root, db_dir, reason))?
                .map_err(|e| store_error(root, e))
        };
        Ok(Store {
            experiments: tree("experiments")?,
            runs: tree("runs")?,
            params: tree("params")?,
            stages: tree("stages")?,
            metrics: tree("metrics")?,
            series: tree("series")?,
            examples: tree("examples")?,
            artifacts: tree("artifacts")?,
            heartbeats: tree("heartbeats")?,
            responses: tree("responses")?,
            mirrors_runs: db_dir == root.join("db"),
            root: root.to_path_buf(),
            db,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `artifacts/<stage>/<hash>` (may not exist yet).
    pub fn artifact_dir(&self, stage: &str, hash: &str) -> PathBuf {
        self.root.join(self.artifact_rel(stage, hash))
    }

    /// The same path relative to the store root.
    pub fn artifact_rel(&self, stage: &str, hash: &str) -> String {
        format!("artifacts/{stage}/{hash}")
    }

    /// `runs/<run id>` (may not exist yet).
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("runs").join(run_id)
    }

    /// `annotations/<stage hash>` (may not exist yet): what was measured of the stage's outputs
    /// after it finished.
    pub fn annotation_dir(&self, hash: &str) -> PathBuf {
        self.root.join("annotations").join(hash)
    }

    /// Attaches `m` to the finished stage `hash` as the measurements of `source` (e.g. `human`),
    /// replacing what `source` attached before; runs with that stage then report them as
    /// `<source>.<metric>`.
    pub fn attach_measurements(&self, hash: &str, source: &str, m: &Measurements) -> Result<()> {
        let file = AttachedFile {
            scalars: m.scalars.clone(),
            examples: m.examples.clone(),
        };
        let path = self
            .annotation_dir(hash)
            .join(format!("{source}{ATTACHED_SUFFIX}"));
        let text = serde_json::to_vec_pretty(&file).expect("records serialize");
        crate::fsutil::write_atomic(&path, &text)
    }

    /// The measurements attached to stage `hash`, by source.
    fn attached_measurements(&self, hash: &str) -> Result<Vec<(String, AttachedFile)>> {
        let dir = self.annotation_dir(hash);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let path = entry.at(&dir)?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some(source) = name.strip_suffix(ATTACHED_SUFFIX) {
                out.push((source.to_string(), repair::read_json(&path)?));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<()> {
        self.db.flush().map_err(|e| self.err(e))?;
        Ok(())
    }

    // ---- experiments and runs ----

    pub fn put_experiment(&self, rec: &ExperimentRecord) -> Result<()> {
        self.put(&self.experiments, &rec.name, rec)
    }

    pub fn experiments(&self) -> Result<Vec<ExperimentRecord>> {
        self.values(&self.experiments, "")
    }

    /// Records a run, then its `runs/<id>/run.json` copy (see [`repair`]).
    pub fn put_run(&self, rec: &RunRecord) -> Result<()> {
        self.put(&self.runs, &rec.run_id, rec)?;
        self.flush()?;
        self.mirror_run(rec)
    }

    /// Writes the run's `run.json` copy (see [`repair`]) when this is the root's database.
    pub fn mirror_run(&self, rec: &RunRecord) -> Result<()> {
        if self.mirrors_runs {
            repair::write_run_file(&self.root, rec)?;
        }
        Ok(())
    }

    pub fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        self.get(&self.runs, run_id)
    }

    /// All runs, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>> {
        let mut runs: Vec<RunRecord> = self.values(&self.runs, "")?;
        runs.sort_by_key(|r| r.created_at);
        Ok(runs)
    }

    /// The run whose id starts with `prefix` (it must be unique).
    pub fn find_run(&self, prefix: &str) -> Result<RunRecord> {
        let matches: Vec<RunRecord> = self.values(&self.runs, prefix)?;
        match matches.len() {
            1 => Ok(matches.into_iter().next().expect("one match")),
            0 => Err(Error::NotFound {
                what: "run",
                id: prefix.to_string(),
            }),
            n => Err(Error::Config(format!(
                "run id prefix {prefix:?} is ambiguous ({n} runs match); give more digits"
            ))),
        }
    }

    /// Deletes a run record and its params. Stage outputs stay: other runs may share them.
    pub fn remove_run(&self, run_id: &str) -> Result<()> {
        self.runs.remove(run_id).map_err(|e| self.err(e))?;
        self.heartbeats.remove(run_id).map_err(|e| self.err(e))?;
        self.remove_prefix(&self.params, &key(&[run_id, ""]))?;
        self.flush()?;
        let file = self.run_dir(run_id).join(repair::RUN_FILE);
        if file.exists() {
            std::fs::remove_file(&file).at(&file)?;
        }
        Ok(())
    }

    /// Marks runs left `running` by a process that died as `interrupted`. Only one process can
    /// hold the store, so any run still `running` when it is opened has no live owner.
    pub fn recover_dead_runs(&self) -> Result<Vec<String>> {
        let mut recovered = Vec::new();
        for mut run in self.runs()? {
            if run.status == RunStatus::Running {
                run.status = RunStatus::Interrupted;
                run.ended_at = self.last_heartbeat(&run.run_id)?.or(run.started_at);
                run.error = Some("the process died (no clean shutdown was recorded)".into());
                self.put_run(&run)?;
                recovered.push(run.run_id);
            }
        }
        Ok(recovered)
    }

    /// Records that the run is alive now. Kept apart from the run record so the heartbeat
    /// thread never races the runner's status updates.
    pub fn heartbeat(&self, run_id: &str) -> Result<()> {
        self.put(&self.heartbeats, run_id, &Utc::now())
    }

    /// When the run last reported being alive.
    pub fn last_heartbeat(&self, run_id: &str) -> Result<Option<chrono::DateTime<Utc>>> {
        self.get(&self.heartbeats, run_id)
    }

    // ---- params ----

    pub fn set_params(
        &self,
        run_id: &str,
        params: &BTreeMap<String, serde_json::Value>,
    ) -> Result<()> {
        self.remove_prefix(&self.params, &key(&[run_id, ""]))?;
        for (k, v) in params {
            self.put(&self.params, &key(&[run_id, k]), v)?;
        }
        Ok(())
    }

    pub fn params(&self, run_id: &str) -> Result<BTreeMap<String, serde_json::Value>> {
        self.entries(&self.params, &key(&[run_id, ""]))
    }

    // ---- stages, measurements, artifacts ----

    pub fn stage(&self, hash: &str) -> Result<Option<StageRecord>> {
        self.get(&self.stages, hash)
    }

    /// Records a finished stage with its measurements and artifact list, replacing anything
    /// recorded earlier under the same hash; the stage folder gets a copy (see [`repair`]).
    /// Measurements that are not finite are refused: the store could not read them back.
    pub fn complete_stage(
        &self,
        rec: &StageRecord,
        measured: &Measurements,
        artifacts: &[ArtifactRecord],
    ) -> Result<()> {
        refuse_non_finite(&rec.kind, measured)?;
        repair::write_stage_file(&self.root, rec, measured)?;
        self.complete_stage_records(rec, measured, artifacts)
    }

    /// The database part of [`Store::complete_stage`].
    fn complete_stage_records(
        &self,
        rec: &StageRecord,
        measured: &Measurements,
        artifacts: &[ArtifactRecord],
    ) -> Result<()> {
        refuse_non_finite(&rec.kind, measured)?;
        self.forget_stage(&rec.hash)?;
        let h = rec.hash.as_str();
        for (name, value) in &measured.scalars {
            self.put(&self.metrics, &key(&[h, name]), value)?;
        }
        for (name, points) in &measured.series {
            for (step, value) in points {
                self.put(
                    &self.series,
                    &key(&[h, name, &format!("{step:020}")]),
                    value,
                )?;
            }
        }
        for (metric, values) in &measured.examples {
            for (id, value) in values {
                self.put(&self.examples, &key(&[h, metric, id]), value)?;
            }
        }
        for a in artifacts {
            self.put(&self.artifacts, &key(&[h, &a.path]), a)?;
        }
        // The stage record goes last: until it exists the stage counts as not done.
        self.put(&self.stages, h, rec)?;
        self.flush()
    }

    /// Drops a stage's record and measurements (before recomputing it).
    pub fn forget_stage(&self, hash: &str) -> Result<()> {
        self.stages.remove(hash).map_err(|e| self.err(e))?;
        let prefix = key(&[hash, ""]);
        for tree in [&self.metrics, &self.series, &self.examples, &self.artifacts] {
            self.remove_prefix(tree, &prefix)?;
        }
        Ok(())
    }

    pub fn stage_scalars(&self, hash: &str) -> Result<BTreeMap<String, f64>> {
        self.entries(&self.metrics, &key(&[hash, ""]))
    }

    pub fn stage_series(&self, hash: &str) -> Result<BTreeMap<String, Vec<(u64, f64)>>> {
        let mut out: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
        for (k, v) in self.entries::<f64>(&self.series, &key(&[hash, ""]))? {
            let (name, step) = k
                .rsplit_once(SEP)
                .ok_or_else(|| self.corrupt("series key"))?;
            let step: u64 = step.parse().map_err(|_| self.corrupt("series step"))?;
            out.entry(name.to_string()).or_default().push((step, v));
        }
        Ok(out)
    }

    pub fn stage_examples(&self, hash: &str) -> Result<BTreeMap<String, Vec<(String, f64)>>> {
        let mut out: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for (k, v) in self.entries::<f64>(&self.examples, &key(&[hash, ""]))? {
            let (metric, id) = k
                .split_once(SEP)
                .ok_or_else(|| self.corrupt("example key"))?;
            out.entry(metric.to_string())
                .or_default()
                .push((id.to_string(), v));
        }
        Ok(out)
    }

    pub fn stage_artifacts(&self, hash: &str) -> Result<Vec<ArtifactRecord>> {
        self.values(&self.artifacts, &key(&[hash, ""]))
    }

    /// A run's measurements from all of its completed stages, named `stage.metric`.
    pub fn run_metrics(&self, run: &RunRecord) -> Result<RunMetrics> {
        let mut out = RunMetrics::default();
        for (stage, hash) in &run.stages {
            if self.stage(hash)?.is_none() {
                continue;
            }
            let name = |m: &str| format!("{stage}.{m}");
            for (m, v) in self.stage_scalars(hash)? {
                out.scalars.insert(name(&m), v);
            }
            for (m, v) in self.stage_series(hash)? {
                out.series.insert(name(&m), v);
            }
            for (m, v) in self.stage_examples(hash)? {
                out.examples.insert(name(&m), v);
            }
            for (source, file) in self.attached_measurements(hash)? {
                let name = |m: &str| format!("{source}.{m}");
                for (m, v) in file.scalars {
                    out.scalars.insert(name(&m), v);
                }
                for (m, v) in file.examples {
                    out.examples.insert(name(&m), v);
                }
            }
        }
        Ok(out)
    }

    /// Copies the records and measurements of finished stages from `other` (sharing the same
    /// artifact tree), so a worker sees stages its parent already computed as done.
    pub fn copy_stages_from(&self, other: &Store, hashes: &[String]) -> Result<()> {
        for hash in hashes {
            let Some(rec) = other.raw_get("stages", hash.as_bytes())? else {
                continue;
            };
            let prefix = key(&[hash, ""]);
            for (name, tree) in other.named_trees() {
                if matches!(name, "metrics" | "series" | "examples" | "artifacts") {
                    for kv in tree.scan_prefix(prefix.as_bytes()) {
                        let (k, v) = kv.map_err(|e| other.err(e))?;
                        self.raw_put(name, &k, &v)?;
                    }
                }
            }
            self.raw_put("stages", hash.as_bytes(), &rec)?;
        }
        self.flush()
    }

    /// Number of completed stage records.
    pub fn stage_count(&self) -> Result<usize> {
        Ok(self.stages.len())
    }

    /// Reads and parses every record of every tree, so a damaged database fails here, with
    /// [`Error::StoreDamaged`], and not halfway through a run. sled can panic on damaged pages;
    /// that panic is caught and reported the same way.
    pub fn read_every_record(&self) -> Result<()> {
        let scan = || -> std::result::Result<(), String> {
            for (name, tree) in self.named_trees() {
                for kv in tree.iter() {
                    let (k, v) = kv.map_err(|e| format!("tree {name}: {e}"))?;
                    if std::str::from_utf8(&k).is_err() {
                        return Err(format!("tree {name}: a key is not UTF-8"));
                    }
                    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&v) {
                        return Err(format!(
                            "tree {name}: the record under {:?} is unreadable ({e})",
                            String::from_utf8_lossy(&k).replace(SEP, "/")
                        ));
                    }
                }
            }
            Ok(())
        };
        let db = self.root.join("db");
        match catch_sled_panic(scan) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) | Err(reason) => Err(repair::damaged(&self.root, &db, reason)),
        }
    }

    // ---- raw access for merging stores ----

    /// Every tree's entries as raw bytes, for copying between stores.
    pub fn dump(&self) -> Result<Vec<(String, RawEntries)>> {
        let mut out = Vec::new();
        for (name, tree) in self.named_trees() {
            let mut entries = Vec::new();
            for kv in tree.iter() {
                let (k, v) = kv.map_err(|e| self.err(e))?;
                entries.push((k.to_vec(), v.to_vec()));
            }
            out.push((name.to_string(), entries));
        }
        Ok(out)
    }

    /// The raw value under `key` in tree `name`.
    pub fn raw_get(&self, name: &str, k: &[u8]) -> Result<Option<Vec<u8>>> {
        let tree = self.tree_named(name)?;
        Ok(tree.get(k).map_err(|e| self.err(e))?.map(|v| v.to_vec()))
    }

    /// A cached external-model answer (see [`crate::pipeline::ResponseCache`]).
    pub fn cached_response(&self, key: &str) -> Result<Option<String>> {
        self.get(&self.responses, key)
    }

    /// Caches an external-model answer; flushed at once, so a paid answer survives a crash.
    pub fn put_response(&self, key: &str, text: &str) -> Result<()> {
        self.put(&self.responses, key, &text)?;
        self.flush()
    }

    /// Stores a raw value under `key` in tree `name`.
    pub fn raw_put(&self, name: &str, k: &[u8], v: &[u8]) -> Result<()> {
        let tree = self.tree_named(name)?;
        tree.insert(k, v).map_err(|e| self.err(e))?;
        Ok(())
    }

    fn named_trees(&self) -> [(&'static str, &sled::Tree); 10] {
        [
            ("experiments", &self.experiments),
            ("runs", &self.runs),
            ("params", &self.params),
            ("stages", &self.stages),
            ("metrics", &self.metrics),
            ("series", &self.series),
            ("examples", &self.examples),
            ("artifacts", &self.artifacts),
            ("heartbeats", &self.heartbeats),
            ("responses", &self.responses),
        ]
    }

    fn tree_named(&self, name: &str) -> Result<&sled::Tree> {
        self.named_trees()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| self.corrupt(&format!("unknown tree {name}")))
    }

    // ---- helpers ----

    fn put(&self, tree: &sled::Tree, k: &str, value: &impl Serialize) -> Result<()> {
        let bytes = serde_json::to_vec(value).expect("records serialize");
        tree.insert(k.as_bytes(), bytes).map_err(|e| self.err(e))?;
        Ok(())
    }

    fn get<T: DeserializeOwned>(&self, tree: &sled::Tree, k: &str) -> Result<Option<T>> {
        match tree.get(k.as_bytes()).map_err(|e| self.err(e))? {
            Some(bytes) => Ok(Some(self.decode(&bytes)?)),
            None => Ok(None),
        }
    }

    fn values<T: DeserializeOwned>(&self, tree: &sled::Tree, prefix: &str) -> Result<Vec<T>> {
        Ok(self.entries(tree, prefix)?.into_values().collect())
    }

    /// Entries under `prefix`, keyed by the rest of the key.
    fn entries<T: DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        prefix: &str,
    ) -> Result<BTreeMap<String, T>> {
        let mut out = BTreeMap::new();
        for kv in tree.scan_prefix(prefix.as_bytes()) {
            let (k, v) = kv.map_err(|e| self.err(e))?;
            let k = String::from_utf8(k.to_vec()).map_err(|_| self.corrupt("non-UTF-8 key"))?;
            out.insert(k[prefix.len()..].to_string(), self.decode(&v)?);
        }
        Ok(out)
    }

    fn remove_prefix(&self, tree: &sled::Tree, prefix: &str) -> Result<()> {
        let keys: Vec<sled::IVec> = tree
            .scan_prefix(prefix.as_bytes())
            .keys()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| self.err(e))?;
        for k in keys {
            tree.remove(k).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        if let Ok(serde_json::Value::Object(obj)) =
            serde_json::from_slice::<serde_json::Value>(bytes)
            && let Some(v) = obj.get("v").and_then(|v| v.as_u64())
            && v > u64::from(SCHEMA_VERSION)
        {
            return Err(self.corrupt(&format!(
                "a record has schema version {v}, newer than this recx understands \
                 ({SCHEMA_VERSION}); upgrade recx"
            )));
        }
        serde_json::from_slice(bytes).map_err(|e| self.corrupt(&format!("unreadable record: {e}")))
    }

    fn err(&self, e: sled::Error) -> Error {
        store_error(&self.root, e)
    }

    fn corrupt(&self, what: &str) -> Error {
        Error::Store {
            path: self.root.clone(),
            reason: what.to_string(),
        }
    }
}

/// JSON has no NaN or infinity (serde_json writes `null`, which then cannot be read back as a
/// number and used to break `recx export` for the whole store), so a stage whose measurements
/// are not finite is refused before anything is written.
fn refuse_non_finite(stage: &str, m: &Measurements) -> Result<()> {
    let bad = m
        .scalars
        .iter()
        .map(|(name, v)| (name.clone(), *v))
        .chain(m.series.iter().flat_map(|(name, points)| {
            points
                .iter()
                .map(move |(step, v)| (format!("{name} at step {step}"), *v))
        }))
        .chain(m.examples.iter().flat_map(|(name, values)| {
            values
                .iter()
                .map(move |(id, v)| (format!("{name} of {id}"), *v))
        }))
        .find(|(_, v)| !v.is_finite());
    match bad {
        Some((what, value)) => Err(Error::NonFinite {
            what: format!("{stage} measurement {what}"),
            value,
        }),
        None => Ok(()),
    }
}

/// Runs `f`, turning a panic (sled panics on some damaged files) into its message. The panic
/// hook is silenced meanwhile, so the user sees the store error and not a panic report.
fn catch_sled_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        format!("the database engine (sled) failed reading it: {message}")
    })
}

fn key(parts: &[&str]) -> String {
    parts.join(&SEP.to_string())
}

/// Opens the sled database, waiting up to a second for a lock that is being released (sled's
/// background flusher can hold a dropped handle's lock for a moment).
fn open_db(root: &Path, db_dir: &Path) -> Result<sled::Db> {
    let mut attempt = 0;
    loop {
        let opened = catch_sled_panic(|| sled::Config::new().path(db_dir).open())
            .map_err(|reason| repair::damaged(root, db_dir, reason))?;
        match opened {
            Ok(db) => return Ok(db),
            Err(e) => match open_error(root, db_dir, e) {
                Error::StoreLocked { .. } if attempt < 10 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                other => return Err(other),
            },
        }
    }
}

fn open_error(root: &Path, db_dir: &Path, e: sled::Error) -> Error {
    match &e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            Error::StoreLocked {
                path: root.to_path_buf(),
            }
        }
        sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => {
            repair::damaged(root, db_dir, e.to_string())
        }
        _ => store_error(root, e),
    }
}

fn store_error(root: &Path, e: sled::Error) -> Error {
    Error::Store {
        path: root.to_path_buf(),
        reason: e.to_string(),
    }
}

impl crate::pipeline::ResponseCache for Store {
    fn get(&self, key: &str) -> Result<Option<String>> {
        self.cached_response(key)
    }

    fn put(&self, key: &str, text: &str) -> Result<()> {
        self.put_response(key, text)
    }
}
