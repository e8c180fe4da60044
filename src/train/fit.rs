//! The alignment training loop: AdamW with HF's linear warmup and decay, global-norm clipping,
//! token-weighted gradient accumulation, validation after every epoch (overall and per task, as
//! the original's per-type eval sets), and a checkpoint after every epoch.
//!
//! Resuming: the stage's `checkpoints/` folder survives an interrupted attempt. It holds what
//! [`crate::training::Checkpoints`] writes: the last finished epoch's model and optimizer, the
//! best epoch's inference weights and `state.json` (the epoch reached and every measurement so
//! far, replayed into the recorder on resume). Each step reseeds the backend RNG (LoRA dropout)
//! and each epoch's shuffle comes from its own stream ([`crate::training`]), so a resumed run
//! continues exactly as the uninterrupted one would.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::AutodiffModule;
use burn::optim::{GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::ElementConversion;
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};

use super::TrainSection;
use super::aligned::{AlignedModel, RecFeatures};
use super::recompute::accumulate_checkpointed;
use super::samples::Sample;
use crate::error::{Error, Result};
use crate::llm::batching::length_sorted_batches;
use crate::pipeline::{Progress, Recorder, check_cancel};
use crate::training::{
    Checkpoints, TrainingState, adamw, clip_global_norm, epoch_order, linear_schedule,
    lock_backend_rng, seed_step, warmup_steps,
};

/// Samples with the recommender vectors behind their placeholders.
#[derive(Clone, Copy)]
pub struct Split<'a> {
    pub samples: &'a [Sample],
    pub features: RecFeatures<'a>,
}

/// What the loop needs besides the model and the samples.
pub struct FitSettings<'a> {
    /// 0 = no training (the unaligned baseline): only the base model is validated.
    pub epochs: usize,
    pub section: &'a TrainSection,
    pub seed: u64,
    /// Identifies the training setup; a checkpoint with another key is ignored.
    pub key: String,
    pub checkpoints: PathBuf,
}

/// Validation after one epoch (epoch 0 = before training).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct EpochRecord {
    epoch: usize,
    loss: f64,
    acc: f64,
    /// Per task: (loss, next-token accuracy).
    tasks: BTreeMap<String, (f64, f64)>,
    /// Mean training loss of the epoch's steps (none for epoch 0).
    train_loss: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FitState {
    epoch: usize,
    step: usize,
    best_epoch: usize,
    best_loss: f64,
    epochs: Vec<EpochRecord>,
    /// (step, loss, lr) of every optimizer step so far.
    steps: Vec<(usize, f64, f64)>,
}

impl TrainingState for FitState {
    fn epoch(&self) -> usize {
        self.epoch
    }
    fn best_epoch(&self) -> usize {
        self.best_epoch
    }
}

/// Token-weighted loss and accuracy accumulated over batches.
#[derive(Default, Clone, Copy)]
struct Sums {
    loss: f64,
    tokens: usize,
    correct: usize,
}

impl Sums {
    fn add(&mut self, loss: f64, tokens: usize, correct: usize) {
        self.loss += loss * tokens as f64;
        self.tokens += tokens;
        self.correct += correct;
    }

    fn means(self) -> (f64, f64) {
        let n = self.tokens.max(1) as f64;
        (self.loss / n, self.correct as f64 / n)
    }
}

/// Validation loss and accuracy over `samples` (inference mode), overall and per task. Batches
/// hold samples of one task, so per-task sums need no second pass.
fn validate<B: Backend>(
    model: &AlignedModel<B>,
    samples: &[Sample],
    features: &RecFeatures<'_>,
    micro: usize,
    epoch: usize,
) -> Result<EpochRecord> {
    let mut by_task: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by_task.entry(s.task).or_default().push(s);
    }
    let mut all = Sums::default();
    let mut tasks = BTreeMap::new();
    for (task, group) in by_task {
        let lens: Vec<usize> = group.iter().map(|s| s.ids.len()).collect();
        let mut sums = Sums::default();
        for part in length_sorted_batches(&lens, micro) {
            check_cancel()?;
            let chunk: Vec<&Sample> = part.into_iter().map(|i| group[i]).collect();
            let out = model.loss(&chunk, features);
            let loss = out.loss.into_scalar().elem::<f64>();
            sums.add(loss, out.tokens, out.correct);
            all.add(loss, out.tokens, out.correct);
        }
        tasks.insert(task.to_string(), sums.means());
    }
    let (loss, acc) = all.means();
    Ok(EpochRecord {
        epoch,
        loss,
        acc,
        tasks,
        train_loss: None,
    })
}

fn record_epoch(rec: &mut dyn Recorder, r: &EpochRecord) {
    let step = r.epoch as u64;
    rec.series("valid_loss", step, r.loss);
    rec.series("valid_ppl", step, r.loss.exp());
    rec.series("valid_acc", step, r.acc);
    for (task, (loss, acc)) in &r.tasks {
        rec.series(&format!("valid_loss.{task}"), step, *loss);
        rec.series(&format!("valid_acc.{task}"), step, *acc);
    }
    if let Some(l) = r.train_loss {
        rec.series("epoch_train_loss", step, l);
    }
}

/// Stops training on a NaN or infinite loss: from then on every weight is garbage, and a run
/// that went on would end `completed` with a model that answers nothing.
pub fn ensure_finite(what: &str, loss: f64) -> Result<()> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFinite {
            what: format!("alignment training: {what}"),
            value: loss,
        })
    }
}

fn trained_tokens(s: &Sample) -> usize {
    s.loss_mask.iter().skip(1).filter(|&&m| m).count()
}

/// The micro-batches of one optimizer batch, grouped by length
/// ([`length_sorted_batches`]). A step's gradient is the token-weighted mean over the whole
/// batch whatever the partition, so this changes nothing beyond floating-point summation order;
/// the batch's composition stays the original's (no grouping across batches, which would
/// change what the optimizer sees).
pub fn micro_batches<'s>(
    batch: &[usize],
    samples: &'s [Sample],
    micro: usize,
) -> Vec<Vec<&'s Sample>> {
    let lens: Vec<usize> = batch.iter().map(|&i| samples[i].ids.len()).collect();
    length_sorted_batches(&lens, micro)
        .into_iter()
        .map(|part| part.into_iter().map(|j| &samples[batch[j]]).collect())
        .collect()
}

/// How one optimizer step runs besides its batch.
#[derive(Debug, Clone, Copy)]
pub struct StepSettings {
    pub lr: f64,
    pub max_grad_norm: f64,
    /// `Some(seed)`: gradient checkpointing per layer ([`super::recompute`]), its dropout
    /// masks drawn from `seed`; `None`: every activation kept for one backward pass.
    pub checkpointing: Option<u64>,
}

/// One optimizer step over the micro-batches of a batch: token-weighted gradient accumulation,
/// global-norm clipping, the optimizer update. Returns the updated model and the batch loss.
pub fn train_step<B: AutodiffBackend, O: Optimizer<AlignedModel<B>, B>>(
    model: AlignedModel<B>,
    optim: &mut O,
    parts: &[Vec<&Sample>],
    features: &RecFeatures<'_>,
    step: StepSettings,
) -> (AlignedModel<B>, f64) {
    let batch_tokens: usize = parts.iter().map(|p| trained_tokens_of(p)).sum();
    let mut acc = GradientsAccumulator::new();
    let mut batch_loss = 0.0;
    for (k, part) in parts.iter().enumerate() {
        let share = trained_tokens_of(part) as f64 / batch_tokens.max(1) as f64;
        match step.checkpointing {
            Some(seed) => {
                let seed = crate::seed::derive(seed, "micro_batch", &[k as u64]);
                batch_loss +=
                    accumulate_checkpointed(&model, part, features, share, seed, &mut acc);
            }
            None => {
                let loss = model.loss(part, features).loss.mul_scalar(share);
                batch_loss += loss.clone().into_scalar().elem::<f64>();
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                acc.accumulate(&model, grads);
            }
        }
    }
    let mut grads = acc.grads();
    clip_global_norm::<B, _>(&model, &mut grads, step.max_grad_norm);
    (optim.step(step.lr, model, grads), batch_loss)
}

fn trained_tokens_of(part: &[&Sample]) -> usize {
    part.iter().map(|s| trained_tokens(s)).sum()
}

/// Trains for `s.epochs` (resuming from a checkpoint when one matches) and returns the best
/// epoch's inference model with that epoch (0 = the model before training).
pub fn fit<B: AutodiffBackend>(
    model: AlignedModel<B>,
    train_split: Split<'_>,
    valid_split: Split<'_>,
    s: &FitSettings<'_>,
    recorder: &mut dyn Recorder,
    progress: &Progress,
) -> Result<(AlignedModel<B::InnerBackend>, usize)> {
    let _guard = lock_backend_rng();
    let (train, train_features) = (train_split.samples, &train_split.features);
    let (valid, valid_features) = (valid_split.samples, &valid_split.features);
    let section = s.section;
    let micro = section.micro_batch_size;
    let device = model.llm.device();
    let ckpt = Checkpoints::open(&s.checkpoints, &s.key)?;
    let (resumed, mut model, mut optim) =
        ckpt.resume::<FitState, B, _, _>(model, adamw::<B, AlignedModel<B>>(), &device)?;
    let mut state = match resumed {
        Some(state) => {
            progress.println(format!(
                "resuming alignment training after epoch {}",
                state.epoch
            ));
            state
        }
        None => {
            let first = validate(&model.valid(), valid, valid_features, micro, 0)?;
            ensure_finite("the validation loss before training", first.loss)?;
            ckpt.save_best::<B::InnerBackend, _>(&model.valid(), 0)?;
            FitState {
                epoch: 0,
                step: 0,
                best_epoch: 0,
                best_loss: first.loss,
                epochs: vec![first],
                steps: Vec::new(),
            }
        }
    };
    for r in &state.epochs {
        record_epoch(recorder, r);
    }
    for &(step, loss, lr) in &state.steps {
        recorder.series("train_loss", step as u64, loss);
        recorder.series("lr", step as u64, lr);
    }

    let steps_per_epoch = train.len().div_ceil(section.batch_size);
    let total = steps_per_epoch * s.epochs;
    let warmup = warmup_steps(section.warmup_ratio, total);
    let bar = progress.bar(total as u64, "alignment training");
    bar.set_position(state.step as u64);
    while state.epoch < s.epochs {
        let epoch = state.epoch + 1;
        let order = epoch_order(train.len(), s.seed, epoch);
        let mut epoch_loss = 0.0;
        for (k, batch) in order.chunks(section.batch_size).enumerate() {
            check_cancel()?;
            seed_step::<B>(&device, s.seed, epoch, k);
            let lr = linear_schedule(state.step, warmup, total, section.lr);
            let parts = micro_batches(batch, train, micro);
            let step = StepSettings {
                lr,
                max_grad_norm: section.max_grad_norm,
                checkpointing: section.gradient_checkpointing.then(|| {
                    crate::seed::derive(s.seed, "training.checkpointing", &[epoch as u64, k as u64])
                }),
            };
            let (next, batch_loss) = train_step(model, &mut optim, &parts, train_features, step);
            ensure_finite(
                &format!("the training loss at step {} (epoch {epoch})", state.step),
                batch_loss,
            )?;
            model = next;
            recorder.series("train_loss", state.step as u64, batch_loss);
            recorder.series("lr", state.step as u64, lr);
            state.steps.push((state.step, batch_loss, lr));
            epoch_loss += batch_loss;
            state.step += 1;
            bar.inc(1);
        }
        let mut r = validate(&model.valid(), valid, valid_features, micro, epoch)?;
        r.train_loss = Some(epoch_loss / steps_per_epoch.max(1) as f64);
        ensure_finite(&format!("the validation loss of epoch {epoch}"), r.loss)?;
        record_epoch(recorder, &r);
        tracing::info!(
            "alignment epoch {epoch}: valid loss {:.4}, ppl {:.2}, acc {:.4}",
            r.loss,
            r.loss.exp(),
            r.acc
        );
        // Without validation records the last epoch counts as the best.
        if valid.is_empty() || r.loss < state.best_loss {
            state.best_loss = r.loss;
            state.best_epoch = epoch;
            ckpt.save_best::<B::InnerBackend, _>(&model.valid(), epoch)?;
        }
        state.epochs.push(r);
        state.epoch = epoch;
        ckpt.save::<_, B, _, _>(&state, &model, &optim)?;
    }
    bar.finish_and_clear();
    recorder.scalar("valid_loss", state.best_loss);
    recorder.scalar("valid_ppl", state.best_loss.exp());
    let best = ckpt.load_best::<B::InnerBackend, _>(model.valid(), state.best_epoch, &device)?;
    Ok((best, state.best_epoch))
}
