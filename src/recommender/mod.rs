//! Target recommender stage: SASRec and MF in burn, trained, evaluated and exported.
//!
//! The stage trains the target model the way UniRec does for RecExplainer (spec §2), evaluates
//! it by full ranking against a popularity baseline, and exports what the alignment and LLM
//! stages read: the top files, `sim_item.txt`, the weights and the embedding tables. Later
//! stages load the model back with [`TrainedRecommender::load`].

pub mod export;
pub mod metrics;
pub mod mf;
pub mod model;
pub mod plateau;
pub mod samples;
pub mod sasrec;
mod stage;
pub mod synthetic;
pub mod top_file;
pub mod train;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::llm::DeviceChoice;
use crate::spec::{SeedSetting, Validate, Validator, limits};

pub use export::{MODEL_CONFIG, SIM_ITEM, TEST_TOP, TRAIN_TOP};
pub use mf::{Mf, MfConfig};
pub use model::RecModel;
pub use samples::{Example, Examples, Query};
pub use sasrec::{SasRec, SasRecConfig};
pub use stage::{
    RecommenderStage, SavedConfig, TrainedRecommender, run_recommender, sasrec_user_embeddings,
};
pub use train::TrainSettings;

crate::spec_enum! {
    /// The target model family.
    pub enum ModelKind ("recommender model") { Sasrec = "sasrec", Mf = "mf" }
}

/// `[recommender]`. Unset optional values take the paper's setting for the chosen model
/// (spec §2.3), so `model = "mf"` alone gives UniRec's MF run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommenderSection {
    pub model: ModelKind,
    /// Embedding size (SASRec 256, MF 512).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_size: Option<usize>,
    /// SASRec: transformer blocks.
    pub n_layers: usize,
    /// SASRec: attention heads (must divide the embedding size).
    pub n_heads: usize,
    /// SASRec: FFN inner size.
    pub inner_size: usize,
    /// SASRec: history length (left-padded).
    pub max_seq_len: usize,
    pub hidden_dropout: f64,
    pub attn_dropout: f64,
    /// MF: sampled negatives per positive.
    pub n_negatives: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Global gradient-norm clip (SASRec 10, MF 0.7468).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_clip: Option<f64>,
    /// Maximum epochs.
    pub epochs: usize,
    /// Evaluations without a better validation NDCG@10 before stopping.
    pub early_stop: usize,
    /// ReduceLROnPlateau factor and patience.
    pub lr_factor: f64,
    pub lr_patience: usize,
    /// Training seed (SASRec 3418, MF 436913 when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<SeedSetting>,
    /// Seed of the top-file sampling (`data4Exp.py --seed 2023`).
    pub export_seed: u64,
    /// `cpu`, `libtorch` (needs the `tch` feature), `cuda` or `cuda:N` (need the `cuda` feature).
    pub device: String,
}

impl Default for RecommenderSection {
    fn default() -> Self {
        RecommenderSection {
            model: ModelKind::Sasrec,
            embedding_size: None,
            n_layers: 2,
            n_heads: 16,
            inner_size: 512,
            max_seq_len: 9,
            hidden_dropout: 0.4954053313841075,
            attn_dropout: 0.1871672079253271,
            n_negatives: 285,
            lr: None,
            batch_size: None,
            grad_clip: None,
            epochs: 100,
            early_stop: 5,
            lr_factor: 0.1,
            lr_patience: 1,
            seed: None,
            export_seed: 2023,
            device: "cpu".into(),
        }
    }
}

/// The section with every default applied and the seed resolved: what determines the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedRecommender {
    pub model: ModelKind,
    pub embedding_size: usize,
    /// SASRec architecture (`n_items` is filled from the data at run time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasrec: Option<SasRecConfig>,
    pub train: TrainSettings,
    pub export_seed: u64,
    pub device: DeviceChoice,
}

impl RecommenderSection {
    /// Applies the per-model defaults and resolves the seed.
    pub fn resolve(&self, run_seed: u64) -> Result<ResolvedRecommender> {
        let sasrec = self.model == ModelKind::Sasrec;
        let pick = |s: f64, m: f64| if sasrec { s } else { m };
        let embedding_size = self
            .embedding_size
            .unwrap_or(if sasrec { 256 } else { 512 });
        let seed = self
            .seed
            .unwrap_or(SeedSetting::Fixed(if sasrec { 3418 } else { 436913 }))
            .resolve(run_seed);
        let device = self.device.parse()?;
        Ok(ResolvedRecommender {
            model: self.model,
            embedding_size,
            sasrec: sasrec.then(|| {
                SasRecConfig::new(0)
                    .with_embedding_size(embedding_size)
                    .with_n_layers(self.n_layers)
                    .with_n_heads(self.n_heads)
                    .with_inner_size(self.inner_size)
                    .with_max_seq_len(self.max_seq_len)
                    .with_hidden_dropout(self.hidden_dropout)
                    .with_attn_dropout(self.attn_dropout)
            }),
            train: TrainSettings {
                lr: self
                    .lr
                    .unwrap_or(pick(0.0003112577321994525, 0.004432861648876859)),
                batch_size: self.batch_size.unwrap_or(if sasrec { 2048 } else { 128 }),
                grad_clip: self.grad_clip.unwrap_or(pick(10.0, 0.7467958582006463)),
                max_epochs: self.epochs,
                early_stop: self.early_stop,
                lr_factor: self.lr_factor,
                lr_patience: self.lr_patience,
                n_negatives: if sasrec { 0 } else { self.n_negatives },
                seed,
                eval_batch_size: 512,
            },
            export_seed: self.export_seed,
            device,
        })
    }
}

impl Validate for RecommenderSection {
    fn validate(&self, v: &mut Validator) {
        let d = self.embedding_size.unwrap_or(256);
        v.count("embedding_size", d, 1, limits::MAX_WIDTH);
        v.count("n_layers", self.n_layers, 1, 1024);
        v.count("n_heads", self.n_heads, 1, limits::MAX_WIDTH);
        v.count("inner_size", self.inner_size, 1, limits::MAX_WIDTH);
        v.count("max_seq_len", self.max_seq_len, 1, limits::MAX_TOKENS);
        v.count("n_negatives", self.n_negatives, 0, limits::MAX_BATCH);
        if self.model == ModelKind::Sasrec {
            v.check(
                self.n_heads > 0 && d.is_multiple_of(self.n_heads),
                "n_heads",
                || {
                    format!(
                        "{} heads do not divide the embedding size {d}",
                        self.n_heads
                    )
                },
            );
            v.check(self.max_seq_len > 0, "max_seq_len", || {
                "must be positive".into()
            });
            v.check(self.inner_size > 0, "inner_size", || {
                "must be positive".into()
            });
        } else {
            v.check(self.n_negatives > 0, "n_negatives", || {
                "must be positive".into()
            });
        }
        v.in_range("hidden_dropout", self.hidden_dropout, 0.0, 0.99);
        v.in_range("attn_dropout", self.attn_dropout, 0.0, 0.99);
        if let Some(lr) = self.lr {
            v.positive("lr", lr, limits::MAX_LR);
        }
        if let Some(b) = self.batch_size {
            v.count("batch_size", b, 1, limits::MAX_BATCH);
        }
        if let Some(c) = self.grad_clip {
            v.positive("grad_clip", c, 1e6);
        }
        v.count("epochs", self.epochs, 1, limits::MAX_EPOCHS);
        v.count("early_stop", self.early_stop, 1, limits::MAX_EPOCHS);
        v.count("lr_patience", self.lr_patience, 0, limits::MAX_EPOCHS);
        v.in_range("lr_factor", self.lr_factor, 1e-6, 1.0);
        if let Err(e) = self.device.parse::<DeviceChoice>() {
            v.error("device", e.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_paper_per_model() {
        let s = RecommenderSection::default().resolve(1).unwrap();
        assert_eq!(
            (s.embedding_size, s.train.batch_size, s.train.seed),
            (256, 2048, 3418)
        );
        assert_eq!(s.train.n_negatives, 0);
        let m = RecommenderSection {
            model: ModelKind::Mf,
            ..Default::default()
        }
        .resolve(1)
        .unwrap();
        assert_eq!(
            (
                m.embedding_size,
                m.train.batch_size,
                m.train.seed,
                m.train.n_negatives
            ),
            (512, 128, 436913, 285)
        );
        let r = RecommenderSection {
            seed: Some(SeedSetting::Run),
            ..Default::default()
        }
        .resolve(77)
        .unwrap();
        assert_eq!(r.train.seed, 77);
    }

    #[test]
    fn validation_names_the_key() {
        let s = RecommenderSection {
            n_heads: 7,
            device: "gpu".into(),
            ..Default::default()
        };
        let mut v = Validator::default();
        s.validate(&mut v);
        let keys: Vec<String> = v.into_issues().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec!["n_heads", "device"]);
    }

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!(
            "cuda".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(0)
        );
        assert_eq!(
            "cuda:1".parse::<DeviceChoice>().unwrap(),
            DeviceChoice::Cuda(1)
        );
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }
}
