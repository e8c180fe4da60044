//! The training loop shared by SASRec and MF (spec §2.3): AdamW, global-norm gradient clipping,
//! ReduceLROnPlateau and early stopping on validation NDCG@10, seeded and checkpointed after
//! every epoch through [`crate::training`] (which also makes a resumed run continue exactly as
//! the uninterrupted one would). Each epoch's negatives come from their own stream of the seed.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::metrics::{mean_metrics, metric, rank_of};
use super::model::RecModel;
use super::plateau::ReduceLrOnPlateau;
use super::samples::{Example, Examples, Query};
use crate::error::{Error, Result};
use crate::pipeline::{Progress, Recorder, check_cancel};
use crate::seed;
use crate::training::{
    Checkpoints, TrainingState, adamw, clip_global_norm, epoch_order, lock_backend_rng, seed_step,
};

/// Optimisation settings (spec §2.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub lr: f64,
    pub batch_size: usize,
    /// Maximum global L2 norm of the gradient (PyTorch `clip_grad_norm_`).
    pub grad_clip: f64,
    pub max_epochs: usize,
    /// Stop after this many evaluations without a better validation NDCG@10.
    pub early_stop: usize,
    pub lr_factor: f64,
    pub lr_patience: usize,
    /// Sampled negatives per positive; 0 = full softmax over all items.
    pub n_negatives: usize,
    pub seed: u64,
    /// Examples per evaluation batch.
    pub eval_batch_size: usize,
}

/// One finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f64,
    pub lr: f64,
    pub valid_ndcg10: f64,
    pub valid_hr10: f64,
}

/// What training reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOutcome {
    pub best_epoch: usize,
    pub best_ndcg10: f64,
    pub history: Vec<EpochRecord>,
    /// True when early stopping ended training before `max_epochs`.
    pub stopped_early: bool,
}

/// The checkpoint's bookkeeping.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    /// Epochs completed.
    epoch: usize,
    scheduler: ReduceLrOnPlateau,
    best_epoch: usize,
    best_ndcg10: f64,
    bad_evals: usize,
    finished: bool,
    history: Vec<EpochRecord>,
}

impl TrainingState for CheckpointState {
    fn epoch(&self) -> usize {
        self.epoch
    }
    fn best_epoch(&self) -> usize {
        self.best_epoch
    }
}

/// Where training reports to.
pub struct TrainReport<'a> {
    pub recorder: &'a mut dyn Recorder,
    pub progress: &'a Progress,
}

/// Trains `model` (or resumes it from `ckpt_dir`) and returns the best epoch's weights.
///
/// `key` must change whenever anything that determines training changes (settings, data,
/// model config): a checkpoint with another key is ignored and overwritten.
pub fn train<B, M>(
    model: M,
    ex: &Examples<'_>,
    settings: &TrainSettings,
    key: &str,
    ckpt_dir: &Path,
    device: &B::Device,
    report: TrainReport<'_>,
) -> Result<(M::InnerModule, TrainOutcome)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + RecModel<B>,
    M::InnerModule: RecModel<B::InnerBackend>,
{
    let _guard = lock_backend_rng();
    let ckpt = Checkpoints::open(ckpt_dir, key)?;
    let (resumed, mut model, mut optim) =
        ckpt.resume::<CheckpointState, B, _, _>(model, adamw::<B, M>(), device)?;
    let mut state = match resumed {
        Some(s) => {
            report
                .progress
                .println(format!("resuming training after epoch {}", s.epoch));
            s
        }
        None => CheckpointState {
            epoch: 0,
            scheduler: ReduceLrOnPlateau::new(
                settings.lr,
                settings.lr_factor,
                settings.lr_patience,
            ),
            best_epoch: 0,
            best_ndcg10: f64::NEG_INFINITY,
            bad_evals: 0,
            finished: false,
            history: Vec::new(),
        },
    };
    for r in &state.history {
        record_epoch(report.recorder, r);
    }

    let steps = ex.train.len().div_ceil(settings.batch_size);
    while !state.finished && state.epoch < settings.max_epochs {
        let epoch = state.epoch + 1;
        let bar = report.progress.bar(steps as u64, format!("epoch {epoch}"));
        let order = epoch_order(ex.train.len(), settings.seed, epoch);
        let mut neg_rng = seed::rng(settings.seed, "recommender.negatives", &[epoch as u64]);
        let mut loss_sum = 0.0;
        for (step, chunk) in order.chunks(settings.batch_size).enumerate() {
            check_cancel()?;
            seed_step::<B>(device, settings.seed, epoch, step);
            let batch: Vec<&Example<'_>> = chunk.iter().map(|&i| &ex.train[i]).collect();
            let negatives = (settings.n_negatives > 0)
                .then(|| sample_negatives(&batch, ex, settings.n_negatives, &mut neg_rng));
            let loss;
            (model, loss) = train_step(
                model,
                &mut optim,
                &batch,
                negatives.as_deref(),
                settings.grad_clip,
                state.scheduler.lr,
                device,
            );
            if !loss.is_finite() {
                return Err(Error::NonFinite {
                    what: format!(
                        "recommender training: the training loss at epoch {epoch}, batch {step}"
                    ),
                    value: loss,
                });
            }
            loss_sum += loss * batch.len() as f64;
            bar.inc(1);
        }
        bar.finish_and_clear();

        let valid = evaluate(&model.valid(), &ex.test, settings.eval_batch_size, device);
        let metrics = mean_metrics(&valid);
        let record = EpochRecord {
            epoch,
            loss: loss_sum / ex.train.len().max(1) as f64,
            lr: state.scheduler.lr,
            valid_ndcg10: metric(&metrics, "ndcg@10"),
            valid_hr10: metric(&metrics, "hr@10"),
        };
        record_epoch(report.recorder, &record);
        report.progress.println(format!(
            "epoch {epoch}: loss {:.4}, valid ndcg@10 {:.4}, hr@10 {:.4}, lr {:.2e}",
            record.loss, record.valid_ndcg10, record.valid_hr10, record.lr
        ));
        state.scheduler.step(record.valid_ndcg10);
        if record.valid_ndcg10 > state.best_ndcg10 {
            state.best_ndcg10 = record.valid_ndcg10;
            state.best_epoch = epoch;
            state.bad_evals = 0;
            ckpt.save_best::<B::InnerBackend, _>(&model.valid(), epoch)?;
        } else {
            state.bad_evals += 1;
        }
        state.finished = state.bad_evals >= settings.early_stop;
        state.history.push(record);
        state.epoch = epoch;
        ckpt.save::<_, B, _, _>(&state, &model, &optim)?;
    }

    let inner = ckpt.load_best::<B::InnerBackend, _>(model.valid(), state.best_epoch, device)?;
    Ok((
        inner,
        TrainOutcome {
            best_epoch: state.best_epoch,
            best_ndcg10: state.best_ndcg10,
            stopped_early: state.finished,
            history: state.history,
        },
    ))
}

/// One optimisation step on a batch: loss, backward, global-norm clipping, AdamW.
/// Returns the updated model and the batch's mean loss.
pub fn train_step<B, M, O>(
    model: M,
    optim: &mut O,
    batch: &[&Example<'_>],
    negatives: Option<&[u32]>,
    grad_clip: f64,
    lr: f64,
    device: &B::Device,
) -> (M, f64)
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + RecModel<B>,
    O: Optimizer<M, B>,
{
    let queries: Vec<Query<'_>> = batch.iter().map(|e| e.query).collect();
    let targets: Vec<u32> = batch.iter().map(|e| e.target).collect();
    let loss = model.loss(&queries, &targets, negatives, device);
    let value = loss.clone().into_scalar().elem::<f64>();
    let mut grads = GradientsParams::from_grads(loss.backward(), &model);
    clip_global_norm::<B, M>(&model, &mut grads, grad_clip);
    (optim.step(lr, model, grads), value)
}

fn record_epoch(recorder: &mut dyn Recorder, r: &EpochRecord) {
    let step = r.epoch as u64;
    recorder.series("train_loss", step, r.loss);
    recorder.series("lr", step, r.lr);
    recorder.series("valid_ndcg@10", step, r.valid_ndcg10);
    recorder.series("valid_hr@10", step, r.valid_hr10);
}

/// 0-based full-ranking ranks of each example's target, history and padding excluded.
pub fn evaluate<B: Backend, M: RecModel<B>>(
    model: &M,
    examples: &[Example<'_>],
    batch: usize,
    device: &B::Device,
) -> Vec<usize> {
    let mut ranks = Vec::with_capacity(examples.len());
    let queries: Vec<Query<'_>> = examples.iter().map(|e| e.query).collect();
    for_each_score_row(model, &queries, batch, device, |i, scores| {
        let e = &examples[i];
        ranks.push(rank_of(scores, e.target, e.query.history));
    });
    ranks
}

/// Scores every item for each query, in batches, and hands each row to `f` in query order.
pub fn for_each_score_row<B: Backend, M: RecModel<B>>(
    model: &M,
    queries: &[Query<'_>],
    batch: usize,
    device: &B::Device,
    mut f: impl FnMut(usize, &[f32]),
) {
    let table = model.item_table().transpose();
    let n = table.dims()[1];
    for (c, chunk) in queries.chunks(batch.max(1)).enumerate() {
        let scores: Tensor<B, 2> = model.user_embeddings(chunk, device).matmul(table.clone());
        let data: Vec<f32> = scores
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 scores");
        for (r, row) in data.chunks(n).enumerate() {
            f(c * batch + r, row);
        }
    }
}

/// UniRec's negatives: `k` per example, uniform over real items, never the positive nor an item
/// of the user's history; after 100 rejected draws the last draw is kept.
fn sample_negatives(
    batch: &[&Example<'_>],
    ex: &Examples<'_>,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<u32> {
    let n_items = ex.n_item_rows as u32 - 1;
    let mut out = Vec::with_capacity(batch.len() * k);
    for e in batch {
        let seen = &ex.seen[e.query.uid as usize];
        for _ in 0..k {
            let mut item = rng.random_range(1..=n_items);
            for _ in 0..100 {
                if item != e.target && seen.binary_search(&item).is_err() {
                    break;
                }
                item = rng.random_range(1..=n_items);
            }
            out.push(item);
        }
    }
    out
}
