//! Sweeps: expansion of each kind, hash deduplication, resume, shards and merging.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use recx::error::Result;
use recx::merge::merge_path_into;
use recx::pipeline::{Progress, Resolved, Stage, StageContext, StageKind};

use crate::stage_support;
use recx::runner::RunOutcome;
use recx::spec::{RawSpec, Spec};
use recx::store::{RunStatus, Store};
use recx::sweep::{Selection, execute, expand};

static UPSTREAM_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Shared by every variant that keeps `train.epochs`.
struct Upstream;
/// Differs per mode, lr and seed.
struct Downstream;

impl Stage for Upstream {
    fn kind(&self) -> StageKind {
        StageKind::Data
    }
    fn deps(&self) -> &'static [StageKind] {
        &[]
    }
    fn settings(&self, spec: &RawSpec, _: &Path, _: u64) -> Result<Resolved> {
        stage_support::json(serde_json::json!({ "epochs": spec.train.epochs }))
    }
    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        UPSTREAM_RUNS.fetch_add(1, Ordering::SeqCst);
        std::fs::write(ctx.out_dir().join("u.txt"), "u").unwrap();
        Ok(())
    }
}

impl Stage for Downstream {
    fn kind(&self) -> StageKind {
        StageKind::Recommender
    }
    fn deps(&self) -> &'static [StageKind] {
        &[StageKind::Data]
    }
    fn settings(&self, spec: &RawSpec, _: &Path, seed: u64) -> Result<Resolved> {
        let mode = spec.alignment.mode;
        stage_support::json(serde_json::json!({
            "mode": mode, "mode_index": mode as u8, "lr": spec.train.lr, "seed": seed
        }))
    }
    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let n = |key: &str| stage_support::number(ctx, key);
        let score = n("lr") * 1e4 + n("seed") + n("mode_index");
        ctx.recorder.scalar("score", score);
        Ok(())
    }
}

fn registry() -> Vec<Box<dyn Stage>> {
    vec![Box::new(Upstream), Box::new(Downstream)]
}

fn spec(text: &str) -> Spec {
    Spec::parse(Path::new("experiments/sweep.toml"), text).unwrap()
}

const GRID: &str = r#"
[experiment]
name = "modes"
seeds = [1, 2, 3]

[sweep.grid]
"alignment.mode" = ["behaviour", "intention", "both"]
"train.lr" = [1e-4, 3e-4]
"#;

#[test]
fn grid_is_a_cartesian_product() {
    let s = expand(&spec(GRID), &registry()).unwrap();
    assert_eq!(s.variants.len(), 6);
    assert_eq!(s.runs.len(), 18);
    let modes: std::collections::BTreeSet<String> = s
        .variants
        .iter()
        .map(|v| v.overrides["alignment.mode"].to_string())
        .collect();
    assert_eq!(modes.len(), 3);
}

#[test]
fn zip_varies_lists_together_and_random_is_seeded() {
    let text = r#"
[experiment]
name = "z"

[sweep.zip]
"train.lr" = [1e-4, 2e-4, 3e-4]
"train.epochs" = [1, 2, 3]

[sweep.random]
n = 4
seed = 9
params = { "train.warmup_ratio" = { min = 0.01, max = 0.2, log = true }, "alignment.mode" = ["intention", "both"] }
"#;
    let a = expand(&spec(text), &registry()).unwrap();
    assert_eq!(a.variants.len(), 12);
    for v in &a.variants {
        let lr = v.plan.spec.train.lr;
        assert_eq!(
            v.plan.spec.train.epochs,
            (lr / 1e-4).round() as usize,
            "zip keeps lists aligned"
        );
        let w = v.plan.spec.train.warmup_ratio;
        assert!((0.01..=0.2).contains(&w));
    }
    let b = expand(&spec(text), &registry()).unwrap();
    let ids =
        |s: &recx::sweep::SweepPlan| s.runs.iter().map(|r| r.run_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&a), ids(&b), "same sweep seed, same samples");
}

#[test]
fn identical_variants_are_deduplicated_by_hash() {
    let text = r#"
[experiment]
name = "d"
seeds = [1]

[sweep.grid]
"train.lr" = [1e-4, 0.0001, 2e-4]
"#;
    let s = expand(&spec(text), &registry()).unwrap();
    assert_eq!(s.variants.len(), 2, "1e-4 and 0.0001 are the same plan");
}

#[test]
fn seeds_can_be_swept() {
    let text = "[experiment]\nname = \"s\"\n\n[sweep.grid]\n\"experiment.seeds\" = [1, 2, 3]\n";
    let s = expand(&spec(text), &registry()).unwrap();
    assert_eq!(s.variants.len(), 1, "seeds do not change the plan");
    assert_eq!(
        s.runs.len(),
        1,
        "each seed variant collapses onto the same plan hash"
    );
}

#[test]
fn unknown_sweep_key_is_located_when_the_spec_is_parsed() {
    // Parsing (what `recx check`, `run` and `sweep` all do first) refuses the typo, in every
    // kind of sweep; an optional setting that is unset (`recommender.lr`) is still a setting.
    for (kind, body) in [
        ("grid", "[sweep.grid]\n\"train.lrr\" = [1, 2]\n"),
        ("zip", "[sweep.zip]\n\"train.lrr\" = [1, 2]\n"),
        (
            "random.params",
            "[sweep.random]\nn = 2\n[sweep.random.params]\n\"train.lrr\" = { min = 1.0, max = 2.0 }\n",
        ),
    ] {
        let text = format!("[experiment]\nname = \"s\"\n\n{body}");
        let err = Spec::parse(Path::new("experiments/sweep.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("experiments/sweep.toml:"), "{err}");
        assert!(
            err.contains(&format!("sweep.{kind}.\"train.lrr\"")),
            "{err}"
        );
        assert!(err.contains("unknown field `lrr`"), "{err}");
    }
    let ok = "[experiment]\nname = \"s\"\n\n[sweep.grid]\n\"recommender.lr\" = [0.001]\n";
    assert_eq!(expand(&spec(ok), &registry()).unwrap().variants.len(), 1);
}

#[test]
fn bad_value_in_a_variant_is_reported_with_the_variant() {
    let text = "[experiment]\nname = \"s\"\n\n[sweep.grid]\n\"alignment.mode\" = [\"both\", \"intentions\"]\n";
    let err = expand(&spec(text), &registry()).unwrap_err().to_string();
    assert!(err.contains("unknown mode \"intentions\""), "{err}");
    assert!(err.contains("sweep.grid.\"alignment.mode\""), "{err}");
}

#[test]
fn shards_partition_the_plan() {
    let s = expand(&spec(GRID), &registry()).unwrap();
    for n in 1..=5 {
        let mut all: Vec<String> = (0..n)
            .flat_map(|i| s.shard(i, n))
            .map(|r| r.run_id)
            .collect();
        assert_eq!(all.len(), s.runs.len());
        all.sort();
        all.dedup();
        assert_eq!(all.len(), s.runs.len(), "no run in two shards");
    }
}

#[test]
fn shared_stages_run_once_resume_skips_and_merge_equals_single_store() {
    let progress = Progress::hidden();
    let sweep = expand(&spec(GRID), &registry()).unwrap();

    // Single store.
    let single = tempfile::tempdir().unwrap();
    let store = Store::open(single.path()).unwrap();
    let before = UPSTREAM_RUNS.load(Ordering::SeqCst);
    let half = &sweep.runs[..9];
    let out = execute(
        &store,
        &sweep,
        half,
        Selection::Resume,
        &registry(),
        &progress,
    )
    .unwrap();
    assert_eq!(out.len(), 9);
    // Resume: the completed half is skipped, the rest runs.
    let out = execute(
        &store,
        &sweep,
        &sweep.runs,
        Selection::Resume,
        &registry(),
        &progress,
    )
    .unwrap();
    assert_eq!(out.len(), 9, "completed runs are not redone");
    assert!(out.iter().all(|(_, o)| *o == RunOutcome::Completed));
    assert_eq!(
        UPSTREAM_RUNS.load(Ordering::SeqCst) - before,
        1,
        "the shared upstream stage ran once"
    );
    // Nothing failed, so --rerun-failed has nothing to do.
    let out = execute(
        &store,
        &sweep,
        &sweep.runs,
        Selection::FailedOnly,
        &registry(),
        &progress,
    )
    .unwrap();
    assert!(out.is_empty());

    // Two shards in their own stores, merged.
    let shard_dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for (i, d) in shard_dirs.iter().enumerate() {
        let s = Store::open(d.path()).unwrap();
        execute(
            &s,
            &sweep,
            &sweep.shard(i, 2),
            Selection::Resume,
            &registry(),
            &progress,
        )
        .unwrap();
    }
    let merged_dir = tempfile::tempdir().unwrap();
    let merged = Store::open(merged_dir.path()).unwrap();
    for d in &shard_dirs {
        merge_path_into(&merged, d.path()).unwrap();
    }
    let again = merge_path_into(&merged, shard_dirs[0].path()).unwrap();
    assert_eq!(
        again.runs_added + again.stages_added + again.runs_replaced.len(),
        0,
        "merge is idempotent"
    );

    let summary = |s: &Store| {
        s.runs()
            .unwrap()
            .into_iter()
            .map(|r| {
                let m = s.run_metrics(&r).unwrap().scalars;
                (r.run_id.clone(), (r.status, m))
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (a, b) = (summary(&store), summary(&merged));
    assert_eq!(a.len(), 18);
    assert_eq!(
        a, b,
        "merged shards hold the same runs, statuses and metrics as one store"
    );
    assert!(
        b.values()
            .all(|(s, m)| *s == RunStatus::Completed && m.contains_key("recommender.score"))
    );
    for r in merged.runs().unwrap() {
        for (kind, hash) in &r.stages {
            assert!(
                merged.artifact_dir(kind, hash).is_dir(),
                "artifacts were copied"
            );
        }
    }
}
