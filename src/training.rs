//! What every trainer shares (the recommender, the LLM alignment, the text encoder): the
//! optimizer, global-norm clipping, the per-epoch and per-step random streams, and one
//! checkpoint/resume implementation. It lives beside the stages so that no stage imports another
//! for it, and it is generic over the model: a trainer brings its module and its own state.
//!
//! Determinism: a trainer reseeds the backend RNG (dropout) before every step with
//! [`seed_step`] and draws each epoch's shuffle from [`epoch_order`], so a run resumed from
//! epoch `e`'s checkpoint continues exactly as the uninterrupted run would. The backend RNG is
//! global to the process, so training and seeded initialisation hold [`lock_backend_rng`].
//!
//! Checkpoints: after epoch `e` a trainer calls [`Checkpoints::save`], which writes
//! `model-<e>.bin`, `optim-<e>.bin` and then `state.json` (the trainer's state under the run's
//! key), each through a temporary file and a rename, and only then deletes every other `.bin`
//! file except the best epoch's inference weights `best-<b>.bin` ([`Checkpoints::save_best`]).
//! `state.json` is written last, so it only ever names complete files; a state with another key
//! (other settings or data) is ignored and overwritten.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder as _};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
use rand::seq::SliceRandom;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::write_atomic;
use crate::seed;

/// Serialises everything that uses the backend's global RNG (initialisation and training).
static BACKEND_RNG: Mutex<()> = Mutex::new(());

/// Holds the backend's global RNG for the guard's lifetime.
pub fn lock_backend_rng() -> MutexGuard<'static, ()> {
    BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// Initialises a model from `seed` under the backend RNG lock, so equal seeds give equal weights.
pub fn seeded_init<B: Backend, M>(
    device: &B::Device,
    seed: u64,
    init: impl FnOnce(&B::Device) -> M,
) -> M {
    let _guard = lock_backend_rng();
    B::seed(device, seed);
    init(device)
}

/// The optimizer every trainer uses: PyTorch's AdamW defaults with weight decay 0 (UniRec's and
/// the alignment's setting).
pub fn adamw<B: AutodiffBackend, M: AutodiffModule<B>>() -> impl Optimizer<M, B> {
    AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(0.0)
        .init::<B, M>()
}

/// A permutation of `n` training examples for `epoch` (1-based) of the run seeded `seed`.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut seed::rng(seed, "training.shuffle", &[epoch as u64]));
    order
}

/// Reseeds the backend RNG (dropout) for `step` (0-based, within the epoch) of `epoch`.
pub fn seed_step<B: Backend>(device: &B::Device, seed: u64, epoch: usize, step: usize) {
    B::seed(
        device,
        seed::derive(seed, "training.step", &[epoch as u64, step as u64]),
    );
}

/// HF's `get_linear_schedule_with_warmup` (spec §4.7, and run_glue's Trainer default in §7.2): the learning rate of optimizer step
/// `step` (0-based) rises linearly from 0 at step 0 to `peak` at step `warmup`, then falls
/// linearly to 0 at `total`. As in HF, the first step runs with a learning rate of 0 when there
/// is a warm-up.
pub fn linear_schedule(step: usize, warmup: usize, total: usize, peak: f64) -> f64 {
    if step < warmup {
        peak * step as f64 / warmup as f64
    } else {
        peak * total.saturating_sub(step) as f64 / (total - warmup).max(1) as f64
    }
}

/// The warm-up steps of a run of `total` optimizer steps (HF: `ceil(warmup_ratio · total)`).
pub fn warmup_steps(ratio: f64, total: usize) -> usize {
    (ratio * total as f64).ceil() as usize
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

/// A trainer's own bookkeeping, saved in `state.json` after every epoch.
pub trait TrainingState: Serialize + DeserializeOwned {
    /// Epochs completed (the model and optimizer files saved with this state are this epoch's).
    fn epoch(&self) -> usize;
    /// The epoch whose inference weights `best-<epoch>.bin` holds.
    fn best_epoch(&self) -> usize;
}

/// `state.json` on disk: the trainer's state under the key of the run it belongs to.
#[derive(Serialize, Deserialize)]
struct StateFile<S> {
    key: String,
    state: S,
}

type FileRec = BinFileRecorder<FullPrecisionSettings>;

/// The checkpoint folder of one training run.
pub struct Checkpoints {
    dir: PathBuf,
    key: String,
    rec: FileRec,
}

impl Checkpoints {
    /// Opens (creating it) the folder `dir` for the run identified by `key`, which must change
    /// whenever anything that determines training changes (settings, data, model config).
    pub fn open(dir: &Path, key: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).at(dir)?;
        Ok(Checkpoints {
            dir: dir.to_path_buf(),
            key: key.to_string(),
            rec: FileRec::new(),
        })
    }

    /// The saved state with the model and optimizer of its epoch loaded into `model` and
    /// `optim`, or `None` (and both unchanged) when the folder holds no state of this run.
    pub fn resume<S, B, M, O>(
        &self,
        model: M,
        optim: O,
        device: &B::Device,
    ) -> Result<(Option<S>, M, O)>
    where
        S: TrainingState,
        B: AutodiffBackend,
        M: AutodiffModule<B>,
        O: Optimizer<M, B>,
    {
        let Some(state) = self.read_state::<S>()? else {
            return Ok((None, model, optim));
        };
        let path = self.path("model", state.epoch());
        let model = model
            .load_file(&path, &self.rec, device)
            .map_err(|e| Error::model_file(&path, e.to_string()))?;
        let path = self.path("optim", state.epoch());
        let record = self
            .rec
            .load(path.clone(), device)
            .map_err(|e| Error::model_file(&path, e.to_string()))?;
        Ok((Some(state), model, optim.load_record(record)))
    }

    /// Saves `model` (inference weights) as the best epoch's, `best-<epoch>.bin`.
    pub fn save_best<B: Backend, M: Module<B>>(&self, model: &M, epoch: usize) -> Result<()> {
        self.save_module(model, "best", epoch)
    }

    /// Loads the weights [`Checkpoints::save_best`] saved for `epoch` into `model`.
    pub fn load_best<B: Backend, M: Module<B>>(
        &self,
        model: M,
        epoch: usize,
        device: &B::Device,
    ) -> Result<M> {
        let path = self.path("best", epoch);
        model
            .load_file(&path, &self.rec, device)
            .map_err(|e| Error::model_file(&path, e.to_string()))
    }

    /// Saves the model and optimizer of `state.epoch()`, then the state that points at them,
    /// then drops every other weight file but the best epoch's.
    pub fn save<S, B, M, O>(&self, state: &S, model: &M, optim: &O) -> Result<()>
    where
        S: TrainingState,
        B: AutodiffBackend,
        M: AutodiffModule<B>,
        O: Optimizer<M, B>,
    {
        let epoch = state.epoch();
        self.save_module(model, "model", epoch)?;
        let tmp = self.dir.join("tmp-optim");
        self.rec
            .record(optim.to_record(), tmp.clone())
            .map_err(|e| Error::model_file(&tmp, e.to_string()))?;
        let to = self.path("optim", epoch);
        std::fs::rename(tmp.with_extension("bin"), &to).at(&to)?;
        let file = StateFile {
            key: self.key.clone(),
            state,
        };
        let text = serde_json::to_string_pretty(&file).expect("training state serialises");
        write_atomic(&self.state_path(), text.as_bytes())?;
        let keep = [
            self.path("model", epoch),
            self.path("optim", epoch),
            self.path("best", state.best_epoch()),
        ];
        self.remove_bin_files_except(&keep)
    }

    /// Saves `module` as `<kind>-<epoch>.bin` through a temporary file and a rename.
    fn save_module<B: Backend, M: Module<B>>(
        &self,
        module: &M,
        kind: &str,
        epoch: usize,
    ) -> Result<()> {
        let tmp = self.dir.join(format!("tmp-{kind}"));
        module
            .clone()
            .save_file(&tmp, &self.rec)
            .map_err(|e| Error::model_file(&tmp, e.to_string()))?;
        let to = self.path(kind, epoch);
        std::fs::rename(tmp.with_extension("bin"), &to).at(&to)
    }

    fn read_state<S: TrainingState>(&self) -> Result<Option<S>> {
        let path = self.state_path();
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).at(&path)?;
        let file: StateFile<S> =
            serde_json::from_str(&text).map_err(|e| Error::model_file(&path, e.to_string()))?;
        Ok((file.key == self.key).then_some(file.state))
    }

    fn remove_bin_files_except(&self, keep: &[PathBuf]) -> Result<()> {
        for entry in std::fs::read_dir(&self.dir).at(&self.dir)? {
            let path = entry.at(&self.dir)?.path();
            if path.extension().is_some_and(|e| e == "bin") && !keep.contains(&path) {
                std::fs::remove_file(&path).at(&path)?;
            }
        }
        Ok(())
    }

    fn path(&self, kind: &str, epoch: usize) -> PathBuf {
        self.dir.join(format!("{kind}-{epoch}.bin"))
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_hfs_linear_warmup_and_decay() {
        // HF: lr_lambda(s) = s / warmup below warmup, else (total - s) / (total - warmup).
        let lrs: Vec<f64> = (0..10).map(|s| linear_schedule(s, 4, 10, 2.0)).collect();
        let expected = [
            0.0,
            0.5,
            1.0,
            1.5,
            2.0,
            5.0 / 3.0,
            4.0 / 3.0,
            1.0,
            2.0 / 3.0,
            1.0 / 3.0,
        ];
        for (s, (got, want)) in lrs.iter().zip(expected).enumerate() {
            assert!((got - want).abs() < 1e-12, "step {s}: {got} vs {want}");
        }
        // Without warm-up the first step runs at the peak.
        assert_eq!(linear_schedule(0, 0, 10, 1.0), 1.0);
        assert!((linear_schedule(9, 0, 10, 1.0) - 0.1).abs() < 1e-12);
        // Past the end (not reached by the trainer) it stays at 0.
        assert_eq!(linear_schedule(12, 4, 10, 1.0), 0.0);
        // HF rounds the warm-up up: 10 % of 45 steps is 5 steps.
        assert_eq!(warmup_steps(0.1, 45), 5);
        assert_eq!(warmup_steps(0.0, 45), 0);
    }
}
