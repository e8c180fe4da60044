//! Sweeps: one spec with a `[sweep]` section expands into many specs, each run like `recx run`.
//!
//! Expansion edits the spec's TOML (grid = cartesian product, zip = lists varied together,
//! random = seeded samples) and re-parses every variant through the normal spec layer, so a
//! variant gets exactly the validation and hashing of a hand-written spec. Identity is by hash:
//! variants that resolve to the same plan are one variant, stages shared by variants are
//! computed once, and a rerun skips whatever is already completed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::pipeline::{Progress, Stage};
use crate::plan::Plan;
use crate::runner::{RunOptions, RunOutcome, run_one};
use crate::spec::{RandomParam, RawSpec, Spec, SpecIssue, SpecIssues, SweepSection};
use crate::store::{RunStatus, Store};

/// One point of the sweep: the keys it sets and the plan it resolves to.
#[derive(Debug, Clone)]
pub struct Variant {
    pub overrides: BTreeMap<String, toml::Value>,
    pub plan: Plan,
}

/// One run of the sweep (a variant × a seed).
#[derive(Debug, Clone)]
pub struct SweepRun {
    pub variant: usize,
    pub run_index: usize,
    pub run_id: String,
    pub seed: u64,
}

/// The expanded sweep.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub variants: Vec<Variant>,
    /// Every run, ordered so runs sharing upstream stages sit together.
    pub runs: Vec<SweepRun>,
}

/// Which runs `recx sweep` executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Selection {
    /// New, failed and interrupted runs (completed ones are skipped).
    #[default]
    Resume,
    /// Only runs whose last attempt failed.
    FailedOnly,
}

/// Expands `spec`'s `[sweep]` into variants (a spec without one is a single variant).
pub fn expand(spec: &Spec, registry: &[Box<dyn Stage>]) -> Result<SweepPlan> {
    let points = sweep_points(&spec.raw.sweep)?;
    let base: toml::Table = toml::from_str(&spec.text).expect("the spec parsed before");
    let mut variants: Vec<Variant> = Vec::new();
    let mut seen = BTreeSet::new();
    for overrides in points {
        let mut table = base.clone();
        table.remove("sweep");
        for (key, value) in &overrides {
            set_path(&mut table, key, value.clone());
        }
        let text = toml::to_string(&table).expect("a TOML table renders");
        let variant_spec =
            Spec::parse(&spec.path, &text).map_err(|e| variant_error(spec, &overrides, e))?;
        let plan = Plan::resolve(&variant_spec, registry)?;
        if seen.insert(plan.plan_hash.clone()) {
            variants.push(Variant { overrides, plan });
        }
    }
    let mut runs: Vec<SweepRun> = variants
        .iter()
        .enumerate()
        .flat_map(|(v, variant)| {
            variant
                .plan
                .runs
                .iter()
                .enumerate()
                .map(move |(i, r)| SweepRun {
                    variant: v,
                    run_index: i,
                    run_id: r.run_id.clone(),
                    seed: r.seed,
                })
        })
        .collect();
    let mut seen_runs = BTreeSet::new();
    runs.retain(|r| seen_runs.insert(r.run_id.clone()));
    // Runs that share upstream stages next to each other, so shards keep them together.
    runs.sort_by_key(|r| {
        let run = &variants[r.variant].plan.runs[r.run_index];
        let upstream: Vec<String> = run.stages.iter().map(|s| s.hash.clone()).collect();
        (upstream, r.run_id.clone())
    });
    Ok(SweepPlan { variants, runs })
}

impl SweepPlan {
    /// The runs of shard `index` of `count`: contiguous slices that partition the plan.
    pub fn shard(&self, index: usize, count: usize) -> Vec<SweepRun> {
        let n = self.runs.len();
        let (start, end) = (index * n / count, (index + 1) * n / count);
        self.runs[start..end].to_vec()
    }

    pub fn plan_of(&self, r: &SweepRun) -> &Plan {
        &self.variants[r.variant].plan
    }

    /// A short description of the variant's overrides, e.g. `alignment.mode=both train.lr=0.0001`.
    pub fn label(&self, r: &SweepRun) -> String {
        let o = &self.variants[r.variant].overrides;
        if o.is_empty() {
            return "(base)".into();
        }
        o.iter()
            .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Whether `run` should execute under `selection`, given its stored status.
pub fn selected(status: Option<RunStatus>, selection: Selection) -> bool {
    match selection {
        Selection::Resume => status != Some(RunStatus::Completed),
        Selection::FailedOnly => status == Some(RunStatus::Failed),
    }
}

/// Runs the selected runs of `runs` in order; returns each executed run's outcome.
pub fn execute(
    store: &Store,
    sweep: &SweepPlan,
    runs: &[SweepRun],
    selection: Selection,
    registry: &[Box<dyn Stage>],
    progress: &Progress,
) -> Result<Vec<(String, RunOutcome)>> {
    let todo: Vec<&SweepRun> = runs
        .iter()
        .map(|r| Ok((r, store.get_run(&r.run_id)?.map(|x| x.status))))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|(_, status)| selected(*status, selection))
        .map(|(r, _)| r)
        .collect();
    let bar = progress.bar(todo.len() as u64, "sweep");
    let mut outcomes = Vec::new();
    for r in todo {
        bar.set_message(format!("sweep: {}", sweep.label(r)));
        let plan = sweep.plan_of(r);
        store.put_experiment(&crate::store::ExperimentRecord {
            v: crate::store::SCHEMA_VERSION,
            name: plan.experiment.clone(),
            description: plan.description.clone(),
            updated_at: chrono::Utc::now(),
        })?;
        let outcome = run_one(
            store,
            plan,
            &plan.runs[r.run_index],
            registry,
            &RunOptions::default(),
            progress,
        )?;
        bar.inc(1);
        let stop = outcome == RunOutcome::Interrupted;
        outcomes.push((r.run_id.clone(), outcome));
        if stop {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(outcomes)
}

/// The override sets of the sweep: grid × zip × random.
fn sweep_points(sweep: &SweepSection) -> Result<Vec<BTreeMap<String, toml::Value>>> {
    let mut points = vec![BTreeMap::new()];
    for (key, values) in &sweep.grid {
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.insert(key.clone(), normalize(key, v));
                    q
                })
            })
            .collect();
    }
    if let Some(len) = sweep.zip.values().map(Vec::len).next() {
        points = points
            .into_iter()
            .flat_map(|p| {
                (0..len).map(move |i| {
                    let mut q = p.clone();
                    for (key, values) in &sweep.zip {
                        q.insert(key.clone(), normalize(key, &values[i]));
                    }
                    q
                })
            })
            .collect();
    }
    if let Some(random) = &sweep.random {
        let mut rng = ChaCha8Rng::seed_from_u64(random.seed);
        let samples: Vec<BTreeMap<String, toml::Value>> = (0..random.n)
            .map(|_| {
                random
                    .params
                    .iter()
                    .map(|(k, p)| (k.clone(), normalize(k, &sample(p, &mut rng))))
                    .collect()
            })
            .collect();
        points = points
            .into_iter()
            .flat_map(|p| {
                samples.iter().map(move |s| {
                    let mut q = p.clone();
                    q.extend(s.clone());
                    q
                })
            })
            .collect();
    }
    Ok(points)
}

fn sample(p: &RandomParam, rng: &mut ChaCha8Rng) -> toml::Value {
    match p {
        RandomParam::Choice(values) => values[rng.random_range(0..values.len())].clone(),
        RandomParam::Range {
            min,
            max,
            log,
            integer,
        } => {
            let u: f64 = rng.random();
            let x = if *log {
                (min.ln() + u * (max.ln() - min.ln())).exp()
            } else {
                min + u * (max - min)
            };
            if *integer {
                toml::Value::Integer(x.round() as i64)
            } else {
                toml::Value::Float(x)
            }
        }
    }
}

/// `experiment.seeds = 3` in a sweep means the single seed 3.
fn normalize(key: &str, v: &toml::Value) -> toml::Value {
    match (key, v) {
        ("experiment.seeds", toml::Value::Integer(_)) => toml::Value::Array(vec![v.clone()]),
        _ => v.clone(),
    }
}

/// Checks that every key of the spec's `[sweep]` names a setting, so a typo such as
/// `"train.lrr"` fails `recx check` and `recx run` (which parse the spec) and not only
/// `recx sweep`. Each key is probed by setting it, with its first value, in the spec and parsing
/// the result: the spec layer's `deny_unknown_fields` then knows every setting, unset optional
/// ones included.
pub fn check_keys(spec: &Spec) -> Result<()> {
    let s = &spec.raw.sweep;
    let mut probes: Vec<(&str, &String, Option<toml::Value>)> = Vec::new();
    probes.extend(s.grid.iter().map(|(k, v)| ("grid", k, v.first().cloned())));
    probes.extend(s.zip.iter().map(|(k, v)| ("zip", k, v.first().cloned())));
    if let Some(r) = &s.random {
        probes.extend(
            r.params
                .iter()
                .map(|(k, p)| ("random.params", k, Some(first_value(p)))),
        );
    }
    if probes.is_empty() {
        return Ok(());
    }
    let mut base: toml::Table = toml::from_str(&spec.text).expect("the spec parsed before");
    base.remove("sweep");
    for (kind, key, value) in probes {
        check_key(spec, &base, key, kind, value)?;
    }
    Ok(())
}

/// A value a random dimension can take, to probe its key with.
fn first_value(p: &RandomParam) -> toml::Value {
    match p {
        RandomParam::Choice(values) => values.first().cloned().unwrap_or(toml::Value::Integer(0)),
        RandomParam::Range { min, integer, .. } if *integer => toml::Value::Integer(*min as i64),
        RandomParam::Range { min, .. } => toml::Value::Float(*min),
    }
}

/// A sweep key must name a setting of the spec (sections and their keys, defaults included).
fn check_key(
    spec: &Spec,
    base: &toml::Table,
    key: &str,
    kind: &str,
    value: Option<toml::Value>,
) -> Result<()> {
    let unknown = |detail: String| {
        locate_sweep_issue(
            spec,
            kind,
            key,
            format!("{key:?} is not a spec setting ({detail})"),
        )
    };
    let Some(value) = value else {
        return Ok(()); // an empty list is reported by the section's validation
    };
    let mut table = base.clone();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(unknown("empty key part".into()));
    }
    if !try_set_path(&mut table, key, normalize(key, &value)) {
        return Err(unknown(
            "it reaches inside a value that is not a section".into(),
        ));
    }
    match toml::Value::Table(table).try_into::<RawSpec>() {
        Err(e) if e.message().contains("unknown field") => {
            Err(unknown(e.message().trim().to_string()))
        }
        // Wrong value types are reported per variant, with the variant, by `expand`.
        _ => Ok(()),
    }
}

fn locate_sweep_issue(spec: &Spec, kind: &str, key: &str, message: String) -> Error {
    let map = crate::spec::SourceMap::new(&spec.text);
    let pos = map.locate(&format!("sweep.{kind}.{key}"));
    Error::Spec(SpecIssues(vec![SpecIssue {
        file: spec.path.clone(),
        line: pos.map(|p| p.0),
        col: pos.map(|p| p.1),
        key: format!("sweep.{kind}.\"{key}\""),
        message,
    }]))
}

fn variant_error(spec: &Spec, overrides: &BTreeMap<String, toml::Value>, e: Error) -> Error {
    match e {
        Error::Spec(issues) => {
            let issues = issues
                .0
                .into_iter()
                .map(|i| {
                    let (kind, key) =
                        sweep_origin(&spec.raw, &i.key).unwrap_or(("", i.key.clone()));
                    let map = crate::spec::SourceMap::new(&spec.text);
                    let pos = map.locate(&format!("sweep.{kind}.{key}"));
                    SpecIssue {
                        file: spec.path.clone(),
                        line: pos.map(|p| p.0),
                        col: pos.map(|p| p.1),
                        key: if kind.is_empty() {
                            i.key
                        } else {
                            format!("sweep.{kind}.\"{key}\"")
                        },
                        message: format!("{} (in the variant {})", i.message, describe(overrides)),
                    }
                })
                .collect();
            Error::Spec(SpecIssues(issues))
        }
        other => other,
    }
}

fn sweep_origin(raw: &RawSpec, key: &str) -> Option<(&'static str, String)> {
    let s = &raw.sweep;
    if s.grid.contains_key(key) {
        Some(("grid", key.to_string()))
    } else if s.zip.contains_key(key) {
        Some(("zip", key.to_string()))
    } else if s
        .random
        .as_ref()
        .is_some_and(|r| r.params.contains_key(key))
    {
        Some(("random.params", key.to_string()))
    } else {
        None
    }
}

fn describe(overrides: &BTreeMap<String, toml::Value>) -> String {
    overrides
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sets `a.b.c = value` in a TOML table, creating tables on the way (keys were checked by
/// [`check_keys`] when the spec was parsed).
fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    assert!(
        try_set_path(table, key, value),
        "sweep keys name settings inside sections"
    );
}

/// Sets `a.b.c = value`, creating tables on the way; false when a part is not a table.
fn try_set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> bool {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().expect("non-empty key");
    let mut node = table;
    for part in parts {
        match node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
        {
            Some(t) => node = t,
            None => return false,
        }
    }
    node.insert(last.to_string(), value);
    true
}

/// Writes an sbatch job-array script (one shard per task) plus a dependent merge job.
pub fn emit_slurm(
    spec_path: &Path,
    shards: usize,
    store: &Path,
    out_dir: &Path,
    recx: &str,
) -> Result<Vec<PathBuf>> {
    let spec = spec_path.display();
    let root = store.display();
    let array = format!(
        "#!/usr/bin/env bash\n\
         #SBATCH --job-name=recx-sweep\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --output={root}/shards/slurm-%A_%a.out\n\
         # One shard of the sweep per array task, each into its own store.\n\
         set -euo pipefail\n\
         {recx} --quiet --store {root}/shards/$SLURM_ARRAY_TASK_ID sweep {spec} --shard $SLURM_ARRAY_TASK_ID/{shards}\n",
        last = shards - 1,
    );
    let merge = format!(
        "#!/usr/bin/env bash\n\
         #SBATCH --job-name=recx-merge\n\
         #SBATCH --output={root}/shards/slurm-merge-%j.out\n\
         # Merges every shard store into the main store (idempotent; conflicts are reported).\n\
         set -euo pipefail\n\
         {recx} --store {root} merge {root}/shards/*/\n"
    );
    let submit = "#!/usr/bin/env bash\n\
         # Submits the shard array, then the merge once every shard has ended.\n\
         set -euo pipefail\n\
         cd \"$(dirname \"$0\")\"\n\
         jid=$(sbatch --parsable array.sbatch)\n\
         sbatch --dependency=afterany:$jid merge.sbatch\n\
         echo \"submitted array job $jid and its merge job\"\n"
        .to_string();
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let mut written = Vec::new();
    for (name, text) in [
        ("array.sbatch", array),
        ("merge.sbatch", merge),
        ("submit.sh", submit),
    ] {
        let path = out_dir.join(name);
        crate::fsutil::write_atomic(&path, text.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        }
        written.push(path);
    }
    Ok(written)
}
