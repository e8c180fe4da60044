//! The training loop shared by SASRec and MF (spec §2.3): AdamW, global-norm gradient clipping,
//! ReduceLROnPlateau and early stopping on validation NDCG@10, seeded and checkpointed after
//! every epoch.
//!
//! Determinism: each step reseeds the backend RNG (dropout) from (seed, epoch, step) and each
//! epoch draws its shuffle and negatives from (seed, epoch), so a run resumed from epoch `e`'s
//! checkpoint continues exactly as the uninterrupted run would. The backend RNG is global to the
//! process, so training holds [`BACKEND_RNG`] while it runs.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder as _};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::metrics::{mean_metrics, metric, rank_of};
use super::model::RecModel;
use super::plateau::ReduceLrOnPlateau;
use super::samples::{Example, Examples, Query};
use crate::error::{Error, IoContext, Result};
use crate::pipeline::{Progress, Recorder, check_cancel};

/// Serialises everything that uses the backend's global RNG (initialisation and training).
pub static BACKEND_RNG: Mutex<()> = Mutex::new(());

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

/// The checkpoint's bookkeeping; written last, so it only ever names complete files.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CheckpointState {
    /// Identifies the settings and data the checkpoint belongs to.
    key: String,
    /// Epochs completed.
    epoch: usize,
    scheduler: ReduceLrOnPlateau,
    best_epoch: usize,
    best_ndcg10: f64,
    bad_evals: usize,
    finished: bool,
    history: Vec<EpochRecord>,
}

type FileRec = BinFileRecorder<FullPrecisionSettings>;

/// Initialises a model from `seed` under [`BACKEND_RNG`], so equal seeds give equal weights.
pub fn seeded_init<B: Backend, M>(
    device: &B::Device,
    seed: u64,
    init: impl FnOnce(&B::Device) -> M,
) -> M {
    let _guard = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    B::seed(device, seed);
    init(device)
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
    let _guard = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::create_dir_all(ckpt_dir).at(ckpt_dir)?;
    let rec = FileRec::new();
    let mut optim = adamw::<B, M>();
    let mut model = model;
    let mut state = match read_state(ckpt_dir, key)? {
        Some(s) => {
            model = model
                .load_file(model_path(ckpt_dir, s.epoch), &rec, device)
                .map_err(|e| Error::model_file(model_path(ckpt_dir, s.epoch), e.to_string()))?;
            let record = rec
                .load(optim_path(ckpt_dir, s.epoch), device)
                .map_err(|e| Error::model_file(optim_path(ckpt_dir, s.epoch), e.to_string()))?;
            optim = optim.load_record(record);
            report
                .progress
                .println(format!("resuming training after epoch {}", s.epoch));
            s
        }
        None => CheckpointState {
            key: key.to_string(),
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
        let mut neg_rng = ChaCha8Rng::seed_from_u64(mix(settings.seed, epoch as u64, 1));
        let mut loss_sum = 0.0;
        for (step, chunk) in order.chunks(settings.batch_size).enumerate() {
            check_cancel()?;
            B::seed(device, mix(settings.seed, epoch as u64, 2 + step as u64));
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
            model
                .valid()
                .save_file(best_path(ckpt_dir, epoch), &rec)
                .map_err(|e| Error::model_file(best_path(ckpt_dir, epoch), e.to_string()))?;
        } else {
            state.bad_evals += 1;
        }
        state.finished = state.bad_evals >= settings.early_stop;
        state.history.push(record);
        state.epoch = epoch;
        write_checkpoint(ckpt_dir, &state, &model, &optim, &rec)?;
    }

    let best = best_path(ckpt_dir, state.best_epoch);
    let inner = model
        .valid()
        .load_file(&best, &rec, device)
        .map_err(|e| Error::model_file(&best, e.to_string()))?;
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

/// The optimizer UniRec uses: PyTorch's AdamW defaults with weight decay 0.
pub fn adamw<B: AutodiffBackend, M: AutodiffModule<B>>() -> impl Optimizer<M, B> {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(0.0)
        .init::<B, M>()
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

/// A permutation of the training examples for `epoch`.
fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(seed, epoch as u64, 0)));
    order
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

/// Scales all gradients together so their global L2 norm is at most `max_norm`, as PyTorch's
/// `clip_grad_norm_` does (burn's own clipping works per tensor).
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) {
    struct SumSq<'g, B: AutodiffBackend> {
        grads: &'g GradientsParams,
        total: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for SumSq<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let sq = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + sq,
                    None => sq,
                });
            }
        }
    }
    struct Scale<'g> {
        grads: &'g mut GradientsParams,
        coef: f64,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                self.grads
                    .register::<B::InnerBackend, D>(param.id, g.mul_scalar(self.coef));
            }
        }
    }
    let mut sum = SumSq::<B> { grads, total: None };
    model.visit(&mut sum);
    let Some(total) = sum.total else { return };
    let norm = total.into_scalar().elem::<f64>().sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        model.visit(&mut Scale { grads, coef });
    }
}

/// A well-mixed seed for sub-stream (`a`, `b`) of `seed` (epoch and step, for example).
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn model_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("epoch-{epoch}-model.bin"))
}

fn optim_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("epoch-{epoch}-optim.bin"))
}

fn best_path(dir: &Path, epoch: usize) -> PathBuf {
    dir.join(format!("best-{epoch}.bin"))
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

fn read_state(dir: &Path, key: &str) -> Result<Option<CheckpointState>> {
    let path = state_path(dir);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).at(&path)?;
    let state: CheckpointState =
        serde_json::from_str(&text).map_err(|e| Error::model_file(&path, e.to_string()))?;
    Ok((state.key == key).then_some(state))
}

/// Saves model and optimizer for `state.epoch`, then the state file, then drops older files.
fn write_checkpoint<B: AutodiffBackend, M: AutodiffModule<B>, O: Optimizer<M, B>>(
    dir: &Path,
    state: &CheckpointState,
    model: &M,
    optim: &O,
    rec: &FileRec,
) -> Result<()> {
    let (mp, op) = (model_path(dir, state.epoch), optim_path(dir, state.epoch));
    model
        .clone()
        .save_file(&mp, rec)
        .map_err(|e| Error::model_file(&mp, e.to_string()))?;
    rec.record(optim.to_record(), op.clone())
        .map_err(|e| Error::model_file(&op, e.to_string()))?;
    let tmp = dir.join("state.json.tmp");
    let text = serde_json::to_string_pretty(state).expect("state serialises");
    std::fs::write(&tmp, text).at(&tmp)?;
    std::fs::rename(&tmp, state_path(dir)).at(state_path(dir))?;
    for entry in std::fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let keep = [
            mp.clone(),
            op.clone(),
            best_path(dir, state.best_epoch),
            state_path(dir),
        ];
        if path.extension().is_some_and(|e| e == "bin") && !keep.contains(&path) {
            std::fs::remove_file(&path).at(&path)?;
        }
    }
    Ok(())
}
