//! Fine-tuning the encoder on one target per text (spec §7.2, the original's `run_cls.py`, HF
//! `run_glue`): BERT's pooled `[CLS]` vector, dropout and a linear head, as
//! `AutoModelForSequenceClassification` builds it; cross-entropy over `classes` outputs for the
//! distinction classifier, mean squared error on one output for the score predictor.
//!
//! Training follows HF's Trainer defaults: AdamW (weight decay 0), a linear warm-up over
//! `warmup_ratio` of the steps then a linear decay to 0, gradients clipped to a global norm of
//! 1, the training set shuffled every epoch from the seed. The original keeps the last model
//! (no checkpoint selection); so does this. Each epoch is checkpointed through
//! [`crate::training::Checkpoints`], so an interrupted fine-tuning resumes to the same weights.

use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::bert::{BertModel, TokenBatch, random_linear};
use crate::error::{Error, Result};
use crate::llm::batching::length_sorted_batches;
use crate::pipeline::{Progress, check_cancel};
use crate::training::{
    Checkpoints, TrainingState, adamw, clip_global_norm, epoch_order, linear_schedule,
    lock_backend_rng, seed_step, warmup_steps,
};

/// What each text is labelled with.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// A class in `0..classes` per text (the distinction classifier: which explainer wrote it).
    Classes { labels: Vec<usize>, classes: usize },
    /// A real number per text (the score predictor: the target model's score).
    Scores(Vec<f32>),
}

impl Targets {
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Scores(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Outputs of the head: one per class, or one score.
    pub fn outputs(&self) -> usize {
        match self {
            Targets::Classes { classes, .. } => *classes,
            Targets::Scores(_) => 1,
        }
    }
}

/// The encoder with a sequence-level head (HF `BertForSequenceClassification`).
#[derive(Module, Debug)]
pub struct SequenceModel<B: Backend> {
    pub bert: BertModel<B>,
    pub dropout: Dropout,
    pub head: Linear<B>,
}

impl<B: Backend> SequenceModel<B> {
    /// `bert` with a fresh head of `outputs` outputs, initialised as HF does (normal(0,
    /// `init_range`), zero bias) from `seed`; `dropout` is the config's hidden dropout.
    pub fn new(
        bert: BertModel<B>,
        outputs: usize,
        dropout: f64,
        init_range: f64,
        seed: u64,
    ) -> Self {
        let hidden = bert.pooler.weight.dims()[1];
        let device = bert.pooler.weight.device();
        SequenceModel {
            bert,
            dropout: DropoutConfig::new(dropout).init(),
            head: random_linear(hidden, outputs, init_range, seed, "encoder.head", &device),
        }
    }

    /// Head outputs `[B, outputs]` (class logits, or the predicted score in column 0).
    pub fn forward(&self, batch: &TokenBatch<B>) -> Tensor<B, 2> {
        let pooled = self.bert.pool(self.bert.forward(batch));
        self.head.forward(self.dropout.forward(pooled))
    }
}

/// How to fine-tune (the defaults are §7.2's).
#[derive(Debug, Clone, PartialEq)]
pub struct FineTuneSettings {
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub warmup_ratio: f64,
    pub max_grad_norm: f64,
    pub seed: u64,
}

impl Default for FineTuneSettings {
    fn default() -> Self {
        FineTuneSettings {
            epochs: 3,
            lr: 3e-5,
            batch_size: 8,
            warmup_ratio: 0.1,
            max_grad_norm: 1.0,
            seed: 2024,
        }
    }
}

/// What the trainer saves after every epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FineTuneState {
    epoch: usize,
    step: usize,
    /// The training loss of every optimizer step so far.
    losses: Vec<f64>,
}

impl TrainingState for FineTuneState {
    fn epoch(&self) -> usize {
        self.epoch
    }
    /// The last epoch is the model kept (the original saves no checkpoints to choose from).
    fn best_epoch(&self) -> usize {
        self.epoch
    }
}

/// The mean loss of one batch: cross-entropy for classes, squared error for scores.
fn batch_loss<B: Backend>(
    outputs: Tensor<B, 2>,
    targets: &Targets,
    rows: &[usize],
) -> Tensor<B, 1> {
    let device = outputs.device();
    match targets {
        Targets::Classes { labels, .. } => {
            let labels: Vec<i64> = rows.iter().map(|&i| labels[i] as i64).collect();
            let labels =
                Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [rows.len()]), &device);
            CrossEntropyLossConfig::new()
                .init(&device)
                .forward(outputs, labels)
        }
        Targets::Scores(scores) => {
            let want: Vec<f32> = rows.iter().map(|&i| scores[i]).collect();
            let want = Tensor::<B, 1>::from_data(TensorData::new(want, [rows.len()]), &device);
            (outputs.reshape([rows.len()]) - want).square().mean()
        }
    }
}

/// The training losses of a fine-tuning run, one per optimizer step.
#[derive(Debug, Clone, PartialEq)]
pub struct FineTuneLog {
    pub losses: Vec<f64>,
}

/// Fine-tunes `model` on the token sequences `seqs` and their `targets`; resumes from
/// `checkpoints` when they hold this run's state. Returns the final model for inference.
pub fn fine_tune<B: AutodiffBackend>(
    model: SequenceModel<B>,
    seqs: &[Vec<u32>],
    targets: &Targets,
    pad_id: u32,
    s: &FineTuneSettings,
    checkpoints: &Checkpoints,
    progress: &Progress,
) -> Result<(SequenceModel<B::InnerBackend>, FineTuneLog)> {
    if seqs.len() != targets.len() || seqs.is_empty() {
        return Err(Error::Config(format!(
            "fine-tuning needs one target per text and at least one text ({} texts, {} targets)",
            seqs.len(),
            targets.len()
        )));
    }
    let _guard = lock_backend_rng();
    let device = model.head.weight.device();
    let (resumed, mut model, mut optim) = checkpoints.resume::<FineTuneState, B, _, _>(
        model,
        adamw::<B, SequenceModel<B>>(),
        &device,
    )?;
    let mut state = resumed.unwrap_or(FineTuneState {
        epoch: 0,
        step: 0,
        losses: Vec::new(),
    });
    let steps_per_epoch = seqs.len().div_ceil(s.batch_size.max(1));
    let total = steps_per_epoch * s.epochs;
    let warmup = warmup_steps(s.warmup_ratio, total);
    let bar = progress.bar(total as u64, "encoder fine-tuning");
    bar.set_position(state.step as u64);
    while state.epoch < s.epochs {
        let epoch = state.epoch + 1;
        let order = epoch_order(seqs.len(), s.seed, epoch);
        for (k, rows) in order.chunks(s.batch_size.max(1)).enumerate() {
            check_cancel()?;
            seed_step::<B>(&device, s.seed, epoch, k);
            let lr = linear_schedule(state.step, warmup, total, s.lr);
            let batch_seqs: Vec<&[u32]> = rows.iter().map(|&i| seqs[i].as_slice()).collect();
            let batch = TokenBatch::new(&batch_seqs, pad_id, &device);
            let loss = batch_loss(model.forward(&batch), targets, rows);
            let value = loss.clone().into_scalar().elem::<f64>();
            if !value.is_finite() {
                return Err(Error::NonFinite {
                    what: format!(
                        "the fine-tuning loss at step {} (epoch {epoch})",
                        state.step
                    ),
                    value,
                });
            }
            let mut grads = GradientsParams::from_grads(loss.backward(), &model);
            clip_global_norm::<B, _>(&model, &mut grads, s.max_grad_norm);
            model = optim.step(lr, model, grads);
            state.losses.push(value);
            state.step += 1;
            bar.inc(1);
        }
        state.epoch = epoch;
        checkpoints.save::<_, B, _, _>(&state, &model, &optim)?;
    }
    bar.finish_and_clear();
    Ok((
        model.valid(),
        FineTuneLog {
            losses: state.losses,
        },
    ))
}

/// Head outputs for every sequence, in input order (batches grouped by length; each output
/// depends only on its own sequence).
pub fn predict<B: Backend>(
    model: &SequenceModel<B>,
    seqs: &[Vec<u32>],
    pad_id: u32,
    batch_size: usize,
) -> Vec<Vec<f32>> {
    let device = model.head.weight.device();
    let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
    let mut out = vec![Vec::new(); seqs.len()];
    for rows in length_sorted_batches(&lens, batch_size) {
        let batch_seqs: Vec<&[u32]> = rows.iter().map(|&i| seqs[i].as_slice()).collect();
        let batch = TokenBatch::new(&batch_seqs, pad_id, &device);
        let outputs = model.forward(&batch);
        let [_, width] = outputs.dims();
        let values: Vec<f32> = outputs.into_data().iter::<f32>().collect();
        for (r, &i) in rows.iter().enumerate() {
            out[i] = values[r * width..(r + 1) * width].to_vec();
        }
    }
    out
}
