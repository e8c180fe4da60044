//! Synthetic runs for the report tests: seeded, so every test sees the same numbers.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recx::report::RunData;

pub const MODES: [&str; 2] = ["behaviour", "both"];
pub const SEEDS: [u64; 3] = [1, 2, 3];
const EXAMPLES: usize = 120;

/// One finished run of `mode` (and a task subset) with metrics, curves and examples.
pub fn run(mode: &str, tasks: &str, seed: u64) -> RunData {
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed * 1000 + mode.len() as u64 * 7 + tasks.len() as u64);
    let skill = match mode {
        "none" => 0.2,
        "behaviour" => 0.6,
        _ => 0.8,
    } - if tasks == "[]" { 0.0 } else { 0.1 };
    let hits: Vec<f64> = (0..EXAMPLES)
        .map(|_| f64::from(rng.random::<f64>() < skill))
        .collect();
    let ndcg: Vec<f64> = (0..EXAMPLES)
        .map(|_| (skill + 0.3 * (rng.random::<f64>() - 0.5)).clamp(0.0, 1.0))
        .collect();
    let ratings: Vec<f64> = (0..EXAMPLES)
        .map(|_| {
            (skill * 3.0 + 1.6 * (rng.random::<f64>() - 0.5))
                .round()
                .clamp(0.0, 3.0)
        })
        .collect();
    let ids = |xs: &[f64]| -> Vec<(String, f64)> {
        xs.iter()
            .enumerate()
            .map(|(i, v)| (format!("ex{i:04}"), *v))
            .collect()
    };
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let mut metrics = BTreeMap::new();
    metrics.insert("eval.uid2next.hit@5".to_string(), mean(&hits));
    metrics.insert("eval.uid2next.ndcg@5".to_string(), mean(&hits) * 0.8);
    metrics.insert("eval.uidiid2rank.ndcg@5".to_string(), mean(&ndcg));
    metrics.insert(
        "eval.uidiid2binary.acc".to_string(),
        0.5 + skill / 2.0 + 0.01 * rng.random::<f64>(),
    );
    metrics.insert(
        "eval.uid2hist.hcr".to_string(),
        0.1 + 0.05 * rng.random::<f64>(),
    );
    metrics.insert("judge.rating_mean".to_string(), mean(&ratings));
    metrics.insert(
        "discriminator.predictor_mse".to_string(),
        3.0 - 2.0 * skill + 0.1 * rng.random::<f64>(),
    );
    for (t, row) in ["recexplainer-H", "vicuna", "chatgpt"].iter().enumerate() {
        for (p, col) in ["recexplainer-H", "vicuna", "chatgpt"].iter().enumerate() {
            let base = if t == p { 400.0 } else { 50.0 };
            metrics.insert(
                format!("discriminator.confusion/{row}/{col}"),
                (base + 20.0 * rng.random::<f64>()).round(),
            );
        }
    }
    let loss: Vec<(u64, f64)> = (0..40u64)
        .map(|s| {
            (
                s * 10,
                3.0 * (-(s as f64) / (10.0 + 10.0 * skill)).exp() + 0.2 + 0.1 * rng.random::<f64>(),
            )
        })
        .collect();
    let mut params = BTreeMap::new();
    params.insert("alignment.mode".to_string(), mode.to_string());
    params.insert("alignment.tasks".to_string(), tasks.to_string());
    params.insert("train.seed".to_string(), seed.to_string());
    params.insert("llm.name".to_string(), "tiny <b>llm</b> & co".to_string());
    RunData {
        run_id: format!("run-{mode}-{}-{seed}", tasks.len()),
        experiment: "synthetic".into(),
        group_key: format!("g-{mode}-{tasks}"),
        spec_hash: format!("{:016x}", seed * 0x9e37_79b9 + mode.len() as u64),
        git_commit: "0123456789abcdef0123456789abcdef01234567".into(),
        git_dirty: seed == 2,
        seed,
        status: "completed".into(),
        params,
        metrics,
        series: [("train.loss".to_string(), loss)].into(),
        examples: [
            ("eval.uid2next.hit@5".to_string(), ids(&hits)),
            ("eval.uidiid2rank.ndcg@5".to_string(), ids(&ndcg)),
            ("judge.rating".to_string(), ids(&ratings)),
        ]
        .into(),
    }
}

/// 3 seeds × 2 modes, all tasks.
pub fn three_seeds_two_modes() -> Vec<RunData> {
    MODES
        .iter()
        .flat_map(|m| SEEDS.iter().map(move |s| run(m, "[]", *s)))
        .collect()
}

/// `runs` with Table 1's Random and Popularity rows added as the `baselines` stage records them
/// (the same numbers for every mode of a seed, as on real runs).
pub fn with_baselines(mut runs: Vec<RunData>) -> Vec<RunData> {
    for r in &mut runs {
        let mut rng = ChaCha8Rng::seed_from_u64(r.seed);
        for (row, (label, skill)) in [("Random", 0.05), ("Popularity", 0.3)].iter().enumerate() {
            r.metrics
                .insert(format!("baselines.{label}.row"), row as f64);
            for (metric, jitter) in [
                ("uid2next.hit@5", 0.04),
                ("uid2next.ndcg@5", 0.03),
                ("uidiid2rank.ndcg@5", 0.05),
                ("uidiid2binary.acc", 0.02),
            ] {
                let v = skill + jitter * rng.random::<f64>();
                r.metrics.insert(format!("baselines.{label}.{metric}"), v);
            }
            r.metrics
                .insert(format!("baselines.{label}.uid2next.records"), 120.0);
        }
    }
    runs
}
