//! Alignment training checkpoints: a run interrupted after an epoch and resumed ends with the
//! same best model and the same measurements as an uninterrupted run; another seed differs.

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use recx::alignment::Task;
use recx::alignment::record::{AlignmentRecord, TaskRecord};
use recx::error::Error;
use recx::llm::chat::{ChatTemplate, TemplateName};
use recx::llm::tokenizer::Tokenizer;
use recx::pipeline::{CancelToken, Measurements, Progress, Recorder, cancel_scope};
use recx::train::fit::{FitSettings, Split, fit};
use recx::train::{
    AlignedModel, Connector, RecFeatures, Sample, SampleBuilder, TrainSection, build_samples,
};
use recx::training::seeded_init;

type B = Autodiff<Flex>;
const DIM: usize = 4;

fn records() -> Vec<AlignmentRecord> {
    let titles = ["Mario Kart", "Zelda", "Halo", "Portal", "Doom", "Tetris"];
    (0..24)
        .map(|i| {
            let item = (i % 6) as u32 + 1;
            AlignmentRecord::Task(TaskRecord {
                task: if i % 2 == 0 {
                    Task::Uid2Next
                } else {
                    Task::Iid2Title
                },
                question: format!("User <user> played <item> {}. What next?", titles[i % 6]),
                answer: titles[(i + 1) % 6].to_string(),
                slots: vec![],
                uid: Some(i as u32 % 5 + 1),
                iid: -1,
                target: None,
                candidates: vec![],
                ranking: vec![],
                history: vec![item],
                item_tokens: vec![item],
                template_set: "t".into(),
                template: 0,
            })
        })
        .collect()
}

struct Setup {
    tokenizer: Tokenizer,
    samples: Vec<Sample>,
    users: Vec<f32>,
    items: Vec<f32>,
}

fn setup() -> Setup {
    let template = ChatTemplate::new(TemplateName::Chatml);
    let recs = records();
    let corpus: Vec<String> = recs
        .iter()
        .map(|r| match r {
            AlignmentRecord::Task(t) => template.training_text(&t.question, &t.answer),
            AlignmentRecord::Chat(_) => unreachable!(),
        })
        .collect();
    let mut tokenizer =
        Tokenizer::train_bpe(corpus.iter(), &template.bpe_train_config(320)).unwrap();
    tokenizer.add_placeholders().unwrap();
    let builder = SampleBuilder {
        tokenizer: &tokenizer,
        template: &template,
        placeholders: tokenizer.placeholders(),
        max_len: 128,
    };
    let (samples, users, _) = build_samples(&builder, &recs).unwrap();
    let users: Vec<f32> = users
        .iter()
        .flat_map(|r| (0..DIM).map(move |k| (r.uid.unwrap() as f32 * 0.3 + k as f32).sin()))
        .collect();
    let items: Vec<f32> = (0..7 * DIM).map(|k| (k as f32 * 0.7).cos()).collect();
    Setup {
        tokenizer,
        samples,
        users,
        items,
    }
}

fn model(vocab: usize, seed: u64) -> AlignedModel<B> {
    let config = recx::llm::LlamaConfig::new(vocab, 16, 32, 1, 2, 1);
    let device = Default::default();
    let llm = config.init::<B>(&device, seed);
    seeded_init::<B, _>(&device, seed, |d| AlignedModel {
        llm,
        user_connector: Some(Connector::new(DIM, 16, d)),
        item_connector: Some(Connector::new(DIM, 16, d)),
    })
}

/// Cancels `token` as soon as epoch `after` has been validated.
struct CancelAfter {
    inner: Measurements,
    after: u64,
    token: CancelToken,
}

impl Recorder for CancelAfter {
    fn scalar(&mut self, name: &str, value: f64) {
        self.inner.scalar(name, value);
    }
    fn series(&mut self, name: &str, step: u64, value: f64) {
        if name == "valid_loss" && step == self.after {
            self.token.cancel();
        }
        self.inner.series(name, step, value);
    }
    fn example(&mut self, metric: &str, id: &str, value: f64) {
        self.inner.example(metric, id, value);
    }
}

fn run(
    s: &Setup,
    seed: u64,
    dir: &Path,
    recorder: &mut dyn Recorder,
) -> recx::Result<(Vec<f32>, usize)> {
    run_with_lr(s, seed, dir, recorder, 0.01)
}

fn run_with_lr(
    s: &Setup,
    seed: u64,
    dir: &Path,
    recorder: &mut dyn Recorder,
    lr: f64,
) -> recx::Result<(Vec<f32>, usize)> {
    let section = TrainSection {
        epochs: 3,
        batch_size: 8,
        micro_batch_size: 4,
        lr,
        ..Default::default()
    };
    run_section(s, seed, dir, recorder, &section)
}

fn run_section(
    s: &Setup,
    seed: u64,
    dir: &Path,
    recorder: &mut dyn Recorder,
    section: &TrainSection,
) -> recx::Result<(Vec<f32>, usize)> {
    let settings = FitSettings {
        epochs: 3,
        section,
        seed,
        key: "test".into(),
        checkpoints: dir.to_path_buf(),
    };
    let features = RecFeatures {
        users: &s.users,
        items: &s.items,
        dim: DIM,
    };
    let (valid, train) = s.samples.split_at(6);
    let (best, epoch) = fit(
        model(s.tokenizer.vocab_size(), seed),
        Split {
            samples: train,
            features,
        },
        Split {
            samples: valid,
            features,
        },
        &settings,
        recorder,
        &Progress::hidden(),
    )?;
    let mut weights: Vec<f32> = best
        .llm
        .embed_tokens
        .weight
        .val()
        .into_data()
        .to_vec()
        .unwrap();
    let connector = best.user_connector.unwrap().fc1.weight.val();
    weights.extend(connector.into_data().to_vec::<f32>().unwrap());
    assert!(best.llm.num_params() > 0);
    Ok((weights, epoch))
}

#[test]
fn interrupted_alignment_training_resumes_to_the_same_model() {
    let _rng = crate::serial::burn_rng();
    let s = setup();
    assert!(
        s.samples
            .iter()
            .all(|x| x.user_tokens.len() == 1 && x.item_tokens.len() == 1)
    );

    let full_dir = tempfile::tempdir().unwrap();
    let mut full_m = Measurements::default();
    let full = run(&s, 3, full_dir.path(), &mut full_m).unwrap();
    assert_eq!(
        full_m.series["valid_loss"].len(),
        4,
        "epoch 0 and three epochs"
    );
    assert!(full_m.series.contains_key("valid_acc.uid2next"));
    assert!(full_m.series.contains_key("valid_loss.iid2title"));
    let losses: Vec<f64> = full_m.series["valid_loss"].iter().map(|p| p.1).collect();
    assert!(
        losses[3] < losses[0],
        "training lowers the validation loss: {losses:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let token = CancelToken::default();
    let mut cancelling = CancelAfter {
        inner: Measurements::default(),
        after: 1,
        token: token.clone(),
    };
    let err = cancel_scope(&token, || run(&s, 3, dir.path(), &mut cancelling)).unwrap_err();
    assert!(token.is_cancelled());
    assert!(matches!(err, Error::Interrupted), "{err}");
    assert!(dir.path().join("model-1.bin").is_file());

    let mut resumed_m = Measurements::default();
    let resumed = run(&s, 3, dir.path(), &mut resumed_m).unwrap();
    assert_eq!(resumed, full, "same best epoch and weights");
    assert_eq!(
        resumed_m.series, full_m.series,
        "the resumed run replays every measurement"
    );
    assert!(
        !dir.path().join("model-1.bin").exists(),
        "older checkpoints are dropped"
    );

    let other = tempfile::tempdir().unwrap();
    let diff = run(&s, 4, other.path(), &mut Measurements::default()).unwrap();
    assert_ne!(diff.0, full.0, "another seed, other weights");
}

#[test]
fn gradient_checkpointing_trains_the_model_a_plain_run_trains() {
    // The scratch model has no dropout, so the two differ only in floating-point summation
    // order (the unit test in train/recompute.rs covers dropout).
    let _rng = crate::serial::burn_rng();
    let s = setup();
    let section = |gradient_checkpointing| TrainSection {
        epochs: 3,
        batch_size: 8,
        micro_batch_size: 4,
        lr: 0.01,
        gradient_checkpointing,
        ..Default::default()
    };
    let (plain_m, checkpointed_m) = (&mut Measurements::default(), &mut Measurements::default());
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let plain = run_section(&s, 3, a.path(), plain_m, &section(false)).unwrap();
    let checkpointed = run_section(&s, 3, b.path(), checkpointed_m, &section(true)).unwrap();
    assert_eq!(plain.1, checkpointed.1, "the same best epoch");
    let largest = plain.0.iter().fold(0f32, |m, w| m.max(w.abs()));
    for (p, c) in plain.0.iter().zip(&checkpointed.0) {
        assert!((p - c).abs() <= 1e-4 * largest, "{p} vs {c}");
    }
    let losses =
        |m: &Measurements| -> Vec<f64> { m.series["valid_loss"].iter().map(|p| p.1).collect() };
    for (p, c) in losses(plain_m).iter().zip(losses(checkpointed_m)) {
        assert!(
            (p - c).abs() <= 1e-5 * p.abs(),
            "validation loss {p} vs {c}"
        );
    }
}

#[test]
fn a_diverging_loss_stops_alignment_training_with_an_error() {
    // `train.lr = inf` no longer passes validation; this is the guard behind it. The first
    // step turns every weight into NaN or inf, so the loss of the next step is not finite.
    let s = setup();
    let dir = tempfile::tempdir().unwrap();
    let mut m = Measurements::default();
    let err = run_with_lr(&s, 3, dir.path(), &mut m, f64::INFINITY).unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("alignment training") && msg.contains("loss") && msg.contains("learning rate"),
        "{msg}"
    );
}
