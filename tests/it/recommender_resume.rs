//! Checkpointing: a run stopped after some epochs and resumed ends exactly where an
//! uninterrupted run ends; same seed gives the same numbers, another seed does not.

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::{Autodiff, Flex};
use recx::pipeline::{Measurements, Progress, Resolved, StageContext};
use recx::recommender::synthetic::successor_ring;
use recx::recommender::train::{TrainOutcome, TrainReport, train};
use recx::recommender::{
    Examples, RecommenderSection, SasRecConfig, TrainSettings, run_recommender,
};
use recx::training::seeded_init;

type B = Autodiff<Flex>;

fn settings(max_epochs: usize, seed: u64) -> TrainSettings {
    TrainSettings {
        lr: 0.005,
        batch_size: 64,
        grad_clip: 10.0,
        max_epochs,
        early_stop: 100,
        lr_factor: 0.1,
        lr_patience: 1,
        n_negatives: 0,
        seed,
        eval_batch_size: 64,
    }
}

/// Trains a small SASRec into `dir` and returns its final item table and outcome.
fn fit(ex: &Examples<'_>, s: &TrainSettings, dir: &Path) -> (Vec<f32>, TrainOutcome) {
    let cfg = SasRecConfig::new(ex.n_item_rows)
        .with_embedding_size(16)
        .with_n_heads(2)
        .with_inner_size(32);
    let device = Default::default();
    let model = seeded_init::<B, _>(&device, s.seed, |d| cfg.init::<B>(d));
    let mut m = Measurements::default();
    let progress = Progress::hidden();
    let report = TrainReport {
        recorder: &mut m,
        progress: &progress,
    };
    let (model, outcome) = train(model, ex, s, "test-key", dir, &device, report).unwrap();
    assert_eq!(
        m.series["train_loss"].len(),
        outcome.history.len(),
        "resumed runs replay the series"
    );
    (model.item_table().into_data().to_vec().unwrap(), outcome)
}

#[test]
fn interrupted_run_resumes_to_the_same_result() {
    let _rng = crate::serial::burn_rng();
    let data = successor_ring(120, 30, 10, 3);
    let ex = Examples::new(&data);
    let full_dir = tempfile::tempdir().unwrap();
    let (full, full_out) = fit(&ex, &settings(4, 9), full_dir.path());

    // "Killed" after epoch 2: the checkpoint folder holds epoch 2; a new process resumes it.
    let dir = tempfile::tempdir().unwrap();
    let (_, first) = fit(&ex, &settings(2, 9), dir.path());
    assert_eq!(first.history.len(), 2);
    let (resumed, resumed_out) = fit(&ex, &settings(4, 9), dir.path());
    assert_eq!(resumed_out, full_out, "same epochs, losses and metrics");
    assert_eq!(resumed, full, "same weights");

    let other = tempfile::tempdir().unwrap();
    let (diff, _) = fit(&ex, &settings(4, 10), other.path());
    assert_ne!(diff, full, "another seed gives other weights");
}

#[test]
fn rerunning_the_stage_on_its_checkpoints_reproduces_the_outputs() {
    let _rng = crate::serial::burn_rng();
    let data = successor_ring(100, 30, 9, 5);
    let section = RecommenderSection {
        embedding_size: Some(16),
        n_heads: 2,
        inner_size: 32,
        batch_size: Some(64),
        lr: Some(0.005),
        epochs: 3,
        ..Default::default()
    };
    let settings = section.resolve(0).unwrap();
    let progress = Progress::hidden();
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let mut m = Measurements::default();
        let mut ctx = StageContext::new(
            Resolved::new(settings.clone()),
            dir.path().to_path_buf(),
            BTreeMap::new(),
            &mut m,
            &progress,
        );
        run_recommender(&mut ctx, &settings, &data).unwrap();
        let files: Vec<Vec<u8>> = [
            "test_top.txt",
            "train_top.txt",
            "sim_item.txt",
            "item_embeddings.safetensors",
        ]
        .iter()
        .map(|f| std::fs::read(dir.path().join(f)).unwrap())
        .collect();
        outputs.push((files, m.scalars, m.series));
    }
    let names = [
        "test_top.txt",
        "train_top.txt",
        "sim_item.txt",
        "item_embeddings.safetensors",
    ];
    for (k, name) in names.iter().enumerate() {
        assert!(
            outputs[0].0[k] == outputs[1].0[k],
            "{name} differs after the rerun"
        );
    }
    assert_eq!(outputs[0].1, outputs[1].1, "metrics");
    assert_eq!(outputs[0].2, outputs[1].2, "series");
}

#[test]
fn an_infinite_learning_rate_stops_training_with_an_error() {
    // Validation refuses `lr = inf` in a spec; this is the guard behind it: once the weights are
    // NaN the loss is NaN, and training must stop instead of finishing with a garbage model.
    let data = successor_ring(120, 30, 10, 3);
    let ex = Examples::new(&data);
    let dir = tempfile::tempdir().unwrap();
    let s = TrainSettings {
        lr: f64::INFINITY,
        ..settings(3, 9)
    };
    let cfg = SasRecConfig::new(ex.n_item_rows)
        .with_embedding_size(16)
        .with_n_heads(2)
        .with_inner_size(32);
    let device = Default::default();
    let model = seeded_init::<B, _>(&device, s.seed, |d| cfg.init::<B>(d));
    let mut m = Measurements::default();
    let progress = Progress::hidden();
    let report = TrainReport {
        recorder: &mut m,
        progress: &progress,
    };
    let err = match train(model, &ex, &s, "test-key", dir.path(), &device, report) {
        Ok(_) => panic!("training with lr = inf finished"),
        Err(e) => e,
    };
    assert!(matches!(err, recx::Error::NonFinite { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("recommender training") && msg.contains("loss"),
        "{msg}"
    );
}
