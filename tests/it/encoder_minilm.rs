//! The text encoder with the real all-MiniLM-L6-v2 (`recx assets fetch minilm`, or
//! `RECX_MINILM` naming the folder): its sentence embeddings and pooled vectors against Python
//! transformers (the golden fixture written by scripts/minilm_reference.py), and fine-tuning
//! that must learn what is in the text and nothing that is not (spec §7.2's two models, on
//! synthetic explanations whose answers are known).

use crate::{serial, skip_support};

use std::path::{Path, PathBuf};

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recx::encoder::{Encoder, FineTuneSettings, SequenceModel, Targets, fine_tune, predict};
use recx::pipeline::Progress;
use recx::training::Checkpoints;
use serde::Deserialize;

type B = Autodiff<Flex>;

/// The MiniLM folder, or `None` after reporting it missing (a failure under CI).
fn minilm() -> Option<PathBuf> {
    let found = recx::llm::assets::MINILM.find();
    if found.is_none() {
        skip_support::missing(
            "all-MiniLM-L6-v2: run `recx assets fetch minilm` or set RECX_MINILM to its folder",
        );
    }
    found
}

#[derive(Deserialize)]
struct Golden {
    max_len: usize,
    tolerance: f32,
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
    pooled: Vec<Vec<f32>>,
}

fn golden() -> Golden {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encoder/minilm_golden.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn assert_close(what: &str, got: &[Vec<f32>], want: &[Vec<f32>], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: rows");
    for (row, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what}: width of row {row}");
        let worst = g
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= tol,
            "{what}: row {row} differs by {worst} (> {tol})"
        );
    }
}

#[test]
fn minilm_matches_python_transformers() {
    check_golden::<Flex>(&Default::default());
}

/// MiniLM on backend `B` against the golden fixture: token ids equal, sentence embeddings and
/// pooled [CLS] vectors within its tolerance. (Also run on libtorch by `backend_libtorch`.)
pub fn check_golden<B: Backend>(device: &B::Device) {
    let Some(dir) = minilm() else { return };
    let golden = golden();
    let encoder = Encoder::<B>::load(&dir, golden.max_len, 0, device).unwrap();
    let ids = encoder.tokenizer.encode(&golden.texts).unwrap();
    assert_eq!(
        ids, golden.ids,
        "token ids differ from the fast tokenizer's"
    );
    // All texts in one padded batch, as the reference ran them.
    let embeddings = encoder.sentence_embeddings(&golden.texts, 16).unwrap();
    assert_close(
        "sentence embeddings",
        &embeddings,
        &golden.embeddings,
        golden.tolerance,
    );
    let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let batch = recx::encoder::TokenBatch::new(&refs, encoder.tokenizer.pad_id(), device);
    let pooled = encoder.model.pool(encoder.model.forward(&batch));
    let width = pooled.dims()[1];
    let pooled: Vec<Vec<f32>> = pooled
        .into_data()
        .iter::<f32>()
        .collect::<Vec<_>>()
        .chunks(width)
        .map(<[f32]>::to_vec)
        .collect();
    assert_close("pooled [CLS]", &pooled, &golden.pooled, golden.tolerance);
}

/// Synthetic explanations: each of three explainers has its own phrasing; the words filled in
/// (items, genres, decisions) are drawn from the same lists for all of them.
fn explanation(source: usize, rng: &mut ChaCha8Rng) -> String {
    const ITEMS: [&str; 6] = [
        "Halo 3",
        "Mario Kart 8",
        "The Last of Us",
        "FIFA 19",
        "Minecraft",
        "Dark Souls III",
    ];
    const GENRES: [&str; 5] = ["shooter", "racing", "sports", "adventure", "puzzle"];
    let item = ITEMS[rng.random_range(0..ITEMS.len())];
    let seen = ITEMS[rng.random_range(0..ITEMS.len())];
    let genre = GENRES[rng.random_range(0..GENRES.len())];
    let yes = rng.random_bool(0.5);
    match source {
        0 => format!(
            "The user has consistently bought {genre} games such as {seen}. {item} {} this pattern, so the answer is {}.",
            if yes { "continues" } else { "breaks" },
            if yes { "yes" } else { "no" }
        ),
        1 => format!(
            "{}. Based on the purchase history, {item} {} a good match for someone who enjoys {genre} titles like {seen}.",
            if yes { "Yes" } else { "No" },
            if yes { "is" } else { "is not" }
        ),
        _ => format!(
            "As an AI language model I believe this user {} enjoy {item}, because their history includes {seen} and other {genre} games.",
            if yes { "would" } else { "would not" }
        ),
    }
}

/// `n` explanations per source, in source order, with their source labels.
fn labelled_explanations(n: usize, rng: &mut ChaCha8Rng) -> (Vec<String>, Vec<usize>) {
    let mut texts = Vec::new();
    let mut labels = Vec::new();
    for source in 0..3 {
        for _ in 0..n {
            texts.push(explanation(source, rng));
            labels.push(source);
        }
    }
    (texts, labels)
}

fn settings(epochs: usize, lr: f64) -> FineTuneSettings {
    FineTuneSettings {
        epochs,
        lr,
        seed: 7,
        ..FineTuneSettings::default()
    }
}

/// Fine-tunes a fresh MiniLM head on `texts`/`targets`; returns the head's outputs on `test`.
fn train_and_predict(
    dir: &Path,
    texts: &[String],
    targets: &Targets,
    test: &[String],
    s: &FineTuneSettings,
) -> Vec<Vec<f32>> {
    let device = Default::default();
    let encoder = Encoder::<B>::load(dir, 48, 0, &device).unwrap();
    let model = SequenceModel::new(
        encoder.model,
        targets.outputs(),
        encoder.config.hidden_dropout_prob,
        encoder.config.initializer_range,
        s.seed,
    );
    let seqs = encoder.tokenizer.encode(texts).unwrap();
    let ckpt_dir = tempfile::tempdir().unwrap();
    let ckpt = Checkpoints::open(ckpt_dir.path(), "test").unwrap();
    let pad = encoder.tokenizer.pad_id();
    let (trained, log) =
        fine_tune(model, &seqs, targets, pad, s, &ckpt, &Progress::hidden()).unwrap();
    assert!(log.losses.iter().all(|l| l.is_finite()));
    let test_seqs = encoder.tokenizer.encode(test).unwrap();
    predict(&trained, &test_seqs, pad, 16)
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
        .unwrap()
}

fn accuracy(outputs: &[Vec<f32>], labels: &[usize]) -> f64 {
    let right = outputs
        .iter()
        .zip(labels)
        .filter(|(o, l)| argmax(o) == **l)
        .count();
    right as f64 / labels.len() as f64
}

#[test]
fn the_classifier_tells_explainers_apart_by_their_phrasing() {
    let Some(dir) = minilm() else { return };
    let _rng = serial::burn_rng();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (train, labels) = labelled_explanations(40, &mut rng);
    let (test, test_labels) = labelled_explanations(50, &mut rng);
    let s = settings(2, 1e-4);
    let targets = Targets::Classes {
        labels: labels.clone(),
        classes: 3,
    };
    let outputs = train_and_predict(&dir, &train, &targets, &test, &s);
    let acc = accuracy(&outputs, &test_labels);
    eprintln!("classifier accuracy on detectable sources: {acc:.3}");
    assert!(acc >= 0.95, "accuracy on detectable sources: {acc}");
}

/// Explanations that state a match level in words; the planted score is linear in the level.
fn scored_explanations(n: usize, rng: &mut ChaCha8Rng) -> (Vec<String>, Vec<f32>) {
    const LEVELS: [&str; 5] = ["terrible", "poor", "fair", "good", "excellent"];
    const FILLERS: [&str; 4] = [
        "Looking at the recent purchases,",
        "From the user's history,",
        "Considering the last nine games,",
        "Overall,",
    ];
    let mut texts = Vec::new();
    let mut scores = Vec::new();
    for _ in 0..n {
        let level = rng.random_range(0..LEVELS.len());
        let filler = FILLERS[rng.random_range(0..FILLERS.len())];
        texts.push(format!(
            "{filler} this item is a {} match for the user.",
            LEVELS[level]
        ));
        let noise: f32 = rng.random_range(-0.3..0.3);
        scores.push(1.5 * level as f32 - 3.0 + noise);
    }
    (texts, scores)
}

#[test]
fn the_score_predictor_recovers_a_planted_score_and_not_a_shuffled_one() {
    let Some(dir) = minilm() else { return };
    let _rng = serial::burn_rng();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let (train, scores) = scored_explanations(120, &mut rng);
    let (test, test_scores) = scored_explanations(100, &mut rng);
    let s = settings(3, 1e-4);
    let pearson = |outputs: &[Vec<f32>]| {
        let predicted: Vec<f64> = outputs.iter().map(|o| o[0] as f64).collect();
        let truth: Vec<f64> = test_scores.iter().map(|&x| x as f64).collect();
        recx::stats::pearson(&predicted, &truth).unwrap_or(0.0)
    };
    let outputs = train_and_predict(&dir, &train, &Targets::Scores(scores.clone()), &test, &s);
    let r = pearson(&outputs);
    eprintln!("predictor Pearson r on the planted score: {r:.3}");
    assert!(r >= 0.9, "Pearson r on a planted linear score: {r}");

    let mut shuffled = scores;
    shuffled.shuffle(&mut rng);
    let outputs = train_and_predict(&dir, &train, &Targets::Scores(shuffled), &test, &s);
    let r = pearson(&outputs);
    eprintln!("predictor Pearson r with shuffled scores: {r:.3}");
    assert!(
        r.abs() < 0.3,
        "Pearson r with shuffled scores should be near 0: {r}"
    );
}
