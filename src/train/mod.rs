//! The LLM alignment stage (spec §4): the LLM learns the alignment tasks, with LoRA on a
//! pretrained backbone or fully from scratch for the tiny model, and connectors that carry the
//! frozen recommender's embeddings into token space in the intention and hybrid modes.
//!
//! Output folder:
//! - `model/`: the aligned LLM as an HF folder (`config.json`, `model.safetensors` with the LoRA
//!   update merged in, as the original's `merge.py` does, `tokenizer.json`);
//! - `connectors.safetensors`: the user and item connectors (intention and hybrid modes);
//! - `aligned.json`: [`AlignedInfo`], what the evaluation stage needs to rebuild the inputs.
//!
//! Validation loss, perplexity and next-token accuracy (overall and per task) are measured
//! after every epoch and the best epoch by validation loss is kept (the paper's
//! `--load_best_model`); [`fit`] checkpoints every epoch so an interrupted run resumes.

pub mod aligned;
pub mod base;
pub mod fit;
pub mod recompute;
pub mod samples;

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::ElementConversion;
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use aligned::{AlignedModel, Connector, RecFeatures};
pub use base::{Base, load_base, scratch_titles};
pub use fit::FitSettings;
pub use samples::{Sample, SampleBuilder};

use crate::alignment::record::{AlignmentRecord, TaskRecord};
use crate::alignment::{Mode, Task};
use crate::data::Dataset;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::read_jsonl;
use crate::llm::LlmSection;
use crate::llm::chat::ChatTemplate;
use crate::llm::lora::{LoraConfig, LoraTarget, attach_lora, count_params, merge_lora};
use crate::llm::{LlamaModel, save_hf};
use crate::llm_stage::{LlmStageBody, run_on_llm_device, subsample};
use crate::pipeline::{Resolved, Stage, StageContext, StageKind, StageSettings};
use crate::recommender::{Query, TrainedRecommender};
use crate::spec::{RawSpec, SeedSetting, Validate, Validator, limits};
use crate::training::seeded_init;

/// Sub-folder holding the aligned LLM.
pub const MODEL_DIR: &str = "model";
pub const CONNECTORS: &str = "connectors.safetensors";
pub const INFO: &str = "aligned.json";

crate::spec_enum! {
    /// A named set of `[train]` defaults (`train.preset`); keys set in the spec override it.
    pub enum TrainPreset ("train preset") {
        /// The paper's run ([v1], spec §4.6–4.7): LoRA r 8 / alpha 32 / dropout 0.1 on q and v,
        /// 10 epochs.
        Paper = "paper",
        /// The later RecAI code ([v2] `shell/train.sh`): LoRA r 16 / alpha 32 / dropout 0.05 on
        /// q, k, v and o, 20 epochs.
        V2 = "v2",
    }
}

/// The settings a preset decides.
#[derive(Debug, Clone, PartialEq)]
pub struct PresetValues {
    pub epochs: usize,
    pub lora_r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    pub lora_targets: Vec<LoraTarget>,
}

impl TrainPreset {
    pub fn values(self) -> PresetValues {
        match self {
            TrainPreset::Paper => PresetValues {
                epochs: 10,
                lora_r: 8,
                lora_alpha: 32.0,
                lora_dropout: 0.1,
                lora_targets: LoraTarget::PAPER.to_vec(),
            },
            TrainPreset::V2 => PresetValues {
                epochs: 20,
                lora_r: 16,
                lora_alpha: 32.0,
                lora_dropout: 0.05,
                lora_targets: LoraTarget::ALL.to_vec(),
            },
        }
    }
}

/// `[train]`: LLM alignment training (spec §4.6–4.7). Defaults are the paper's; `preset = "v2"`
/// switches the preset-decided keys ([`PresetValues`]) to the later code's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "TrainToml")]
pub struct TrainSection {
    /// Where the preset-decided keys not set in the spec come from.
    pub preset: TrainPreset,
    pub epochs: usize,
    pub lr: f64,
    /// Sequences per optimizer step (the original's total batch of 64).
    pub batch_size: usize,
    /// Sequences per forward pass; gradients of a step's micro-batches are accumulated.
    pub micro_batch_size: usize,
    pub warmup_ratio: f64,
    pub max_grad_norm: f64,
    pub lora_r: usize,
    pub lora_alpha: f64,
    pub lora_dropout: f64,
    /// The attention projections that get adapters.
    pub lora_targets: Vec<LoraTarget>,
    /// Train `embed_tokens` and `lm_head` fully, as the original does (`modules_to_save`).
    pub train_embeddings: bool,
    /// `model_max_length`: longer sequences are cut.
    pub max_len: usize,
    /// Train on at most this many records, drawn with the seed (0 = all).
    pub max_records: usize,
    /// At most this many training records of a task (keys: task names as in the alignment
    /// files' `type`, or `sharegpt`), drawn with the seed before `max_records` draws from what
    /// is left: a CPU-sized run can keep every record of a small task while cutting a large
    /// one. Tasks not named keep all their records. Left out of the fingerprint when empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub task_max_records: BTreeMap<String, usize>,
    /// Validate each epoch on at most this many records (0 = all).
    pub valid_records: usize,
    pub seed: SeedSetting,
    /// Recompute each decoder layer's activations in the backward pass instead of keeping
    /// them ([`recompute`]): peak memory no longer grows with depth × length², for one more
    /// forward pass per step. Left out of the fingerprint when off, so specs written before
    /// the setting existed keep their stage hashes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gradient_checkpointing: bool,
}

/// `[train]` as written: the preset-decided keys are optional, so the preset can fill the ones
/// the spec leaves out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TrainToml {
    preset: TrainPreset,
    epochs: Option<usize>,
    lr: f64,
    batch_size: usize,
    micro_batch_size: usize,
    warmup_ratio: f64,
    max_grad_norm: f64,
    lora_r: Option<usize>,
    lora_alpha: Option<f64>,
    lora_dropout: Option<f64>,
    lora_targets: Option<Vec<LoraTarget>>,
    train_embeddings: bool,
    max_len: usize,
    max_records: usize,
    task_max_records: BTreeMap<String, usize>,
    valid_records: usize,
    seed: SeedSetting,
    gradient_checkpointing: bool,
}

impl Default for TrainToml {
    fn default() -> Self {
        TrainToml {
            preset: TrainPreset::Paper,
            epochs: None,
            lr: 1e-4,
            batch_size: 64,
            micro_batch_size: 8,
            warmup_ratio: 0.1,
            max_grad_norm: 1.0,
            lora_r: None,
            lora_alpha: None,
            lora_dropout: None,
            lora_targets: None,
            train_embeddings: true,
            max_len: 1024,
            max_records: 0,
            task_max_records: BTreeMap::new(),
            valid_records: 0,
            seed: SeedSetting::Run,
            gradient_checkpointing: false,
        }
    }
}

impl From<TrainToml> for TrainSection {
    fn from(t: TrainToml) -> Self {
        let p = t.preset.values();
        TrainSection {
            preset: t.preset,
            epochs: t.epochs.unwrap_or(p.epochs),
            lr: t.lr,
            batch_size: t.batch_size,
            micro_batch_size: t.micro_batch_size,
            warmup_ratio: t.warmup_ratio,
            max_grad_norm: t.max_grad_norm,
            lora_r: t.lora_r.unwrap_or(p.lora_r),
            lora_alpha: t.lora_alpha.unwrap_or(p.lora_alpha),
            lora_dropout: t.lora_dropout.unwrap_or(p.lora_dropout),
            lora_targets: t.lora_targets.unwrap_or(p.lora_targets),
            train_embeddings: t.train_embeddings,
            max_len: t.max_len,
            max_records: t.max_records,
            task_max_records: t.task_max_records,
            valid_records: t.valid_records,
            seed: t.seed,
            gradient_checkpointing: t.gradient_checkpointing,
        }
    }
}

impl Default for TrainSection {
    fn default() -> Self {
        TrainToml::default().into()
    }
}

impl Validate for TrainSection {
    fn validate(&self, v: &mut Validator) {
        v.positive("lr", self.lr, limits::MAX_LR);
        v.check(self.epochs > 0, "epochs", || {
            "must be at least 1 (0 epochs would evaluate the untrained model as if aligned)".into()
        });
        v.count("epochs", self.epochs.max(1), 1, limits::MAX_EPOCHS);
        v.count("batch_size", self.batch_size, 1, limits::MAX_BATCH);
        v.check(
            self.micro_batch_size > 0 && self.micro_batch_size <= self.batch_size,
            "micro_batch_size",
            || "must be between 1 and batch_size".into(),
        );
        v.check(self.lora_r > 0, "lora_r", || "must be at least 1".into());
        v.check(self.lora_alpha > 0.0, "lora_alpha", || {
            format!("{} must be positive", self.lora_alpha)
        });
        self.validate_targets(v);
        v.check(self.max_len >= 16, "max_len", || {
            "must be at least 16".into()
        });
        v.count("lora_r", self.lora_r, 0, limits::MAX_WIDTH);
        v.count("max_len", self.max_len, 0, limits::MAX_TOKENS);
        v.count("max_records", self.max_records, 0, limits::MAX_ENTITIES);
        for (task, &n) in &self.task_max_records {
            let key = format!("task_max_records.{task}");
            let known = task == "sharegpt" || task.parse::<Task>().is_ok();
            v.check(known, &key, || {
                let names: Vec<&str> = Task::ALL.iter().map(|t| t.as_str()).collect();
                format!("not a task; expected {} | sharegpt", names.join(" | "))
            });
            v.count(&key, n, 1, limits::MAX_ENTITIES);
        }
        v.count("valid_records", self.valid_records, 0, limits::MAX_ENTITIES);
        v.positive("max_grad_norm", self.max_grad_norm, 1e6);
        v.positive("lora_alpha", self.lora_alpha, 1e6);
        v.in_range("warmup_ratio", self.warmup_ratio, 0.0, 1.0);
        v.in_range("lora_dropout", self.lora_dropout, 0.0, 1.0);
    }
}

impl TrainSection {
    /// The defaults of `preset`, as a spec with `[train] preset = ...` and nothing else gets.
    pub fn preset(preset: TrainPreset) -> TrainSection {
        TrainToml {
            preset,
            ..TrainToml::default()
        }
        .into()
    }

    fn validate_targets(&self, v: &mut Validator) {
        let choices = || {
            LoraTarget::ALL
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        v.check(!self.lora_targets.is_empty(), "lora_targets", || {
            format!("needs at least one of {}", choices())
        });
        for t in LoraTarget::ALL {
            let n = self.lora_targets.iter().filter(|x| *x == t).count();
            v.check(n <= 1, "lora_targets", || {
                format!(
                    "\"{t}\" is listed {n} times; list each of {} at most once",
                    choices()
                )
            });
        }
    }

    pub fn lora(&self) -> LoraConfig {
        LoraConfig::new()
            .with_r(self.lora_r)
            .with_alpha(self.lora_alpha)
            .with_dropout(self.lora_dropout)
            .with_targets(self.lora_targets.clone())
    }

    /// The section as it determines the stage's output: the preset is only a source of
    /// defaults, so a preset and the same values written out give the same stage.
    fn fingerprint(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("the section serializes");
        if let Some(obj) = v.as_object_mut() {
            obj.remove("preset");
        }
        v
    }
}

/// What the evaluation stage reads back about an aligned model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlignedInfo {
    pub mode: Mode,
    pub template: crate::llm::chat::TemplateName,
    /// Width of the recommender embeddings behind the connectors (0 without connectors).
    pub rec_dim: usize,
    /// The best epoch by validation loss (0 = the base model, no training).
    pub best_epoch: usize,
    /// `scratch` or the base model's path.
    pub base: String,
}

impl AlignedInfo {
    pub fn read(dir: &Path) -> Result<AlignedInfo> {
        let path = dir.join(INFO);
        let text = std::fs::read_to_string(&path).at(&path)?;
        serde_json::from_str(&text).map_err(|e| Error::model_file(&path, e.to_string()))
    }
}

/// The LLM alignment stage.
pub struct TrainStage;

impl Stage for TrainStage {
    fn kind(&self) -> StageKind {
        StageKind::Train
    }

    fn deps(&self) -> &'static [StageKind] {
        &[
            StageKind::Data,
            StageKind::Recommender,
            StageKind::AlignmentData,
        ]
    }

    fn settings(&self, spec: &RawSpec, spec_dir: &Path, run_seed: u64) -> Result<Resolved> {
        let mut section = spec.train.clone();
        let seed = section.seed.resolve(run_seed);
        section.seed = SeedSetting::Fixed(seed);
        Ok(Resolved::new(AlignTrainSettings {
            section,
            seed,
            mode: spec.alignment.mode,
            backbone: crate::llm::backbone::fingerprint(&spec.llm, spec_dir)?,
            llm: spec.llm.clone(),
            spec_dir: spec_dir.to_path_buf(),
        }))
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let device = ctx.settings::<AlignTrainSettings>()?.llm.device.clone();
        run_on_llm_device::<TrainStage>(ctx, &device)
    }
}

/// The alignment-training stage's settings: `[train]` with its seed resolved, the alignment
/// mode, and `[llm]` (the backbone, found from `spec_dir`, hashed by content).
pub struct AlignTrainSettings {
    pub section: TrainSection,
    pub seed: u64,
    pub mode: Mode,
    pub llm: LlmSection,
    pub spec_dir: std::path::PathBuf,
    /// The backbone's identity ([`crate::llm::backbone::fingerprint`]).
    backbone: Value,
}

impl StageSettings for AlignTrainSettings {
    fn fingerprint(&self) -> Value {
        json!({
            "section": self.section.fingerprint(),
            "mode": self.mode,
            "llm": self.backbone,
        })
    }
}

impl LlmStageBody for TrainStage {
    fn run_on<B: Backend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()> {
        train::<burn::backend::Autodiff<B>>(ctx, device)
    }
}

/// Records of one split (`train`, `valid`), read from the alignment-data stage's folder.
/// Keeps at most `caps[task]` records of each named task, drawn with the seed, in file order.
fn cap_tasks(
    records: Vec<AlignmentRecord>,
    caps: &BTreeMap<String, usize>,
    seed: u64,
) -> Vec<AlignmentRecord> {
    if caps.is_empty() {
        return records;
    }
    // Each capped task's records are drawn by index, so the others keep their places.
    let mut keep = vec![true; records.len()];
    for (n, (task, &cap)) in caps.iter().enumerate() {
        let mine: Vec<usize> = (0..records.len())
            .filter(|&i| records[i].type_name() == task)
            .collect();
        let kept = subsample(
            mine.clone(),
            cap,
            crate::seed::derive(seed, "train.task_records", &[n as u64]),
        );
        for i in mine {
            keep[i] = false;
        }
        for i in kept {
            keep[i] = true;
        }
    }
    records
        .into_iter()
        .zip(keep)
        .filter_map(|(r, k)| k.then_some(r))
        .collect()
}

pub fn read_split(dir: &Path, split: &str) -> Result<Vec<AlignmentRecord>> {
    read_jsonl(&dir.join(format!("{split}.jsonl")))
}

/// The recommender side of the inputs: user vectors for the given records and the item table.
pub struct RecInputs {
    pub users: Vec<f32>,
    pub items: Vec<f32>,
    pub dim: usize,
}

impl RecInputs {
    pub fn features(&self) -> RecFeatures<'_> {
        RecFeatures {
            users: &self.users,
            items: &self.items,
            dim: self.dim,
        }
    }

    /// No recommender vectors (modes without placeholders).
    pub fn empty() -> RecInputs {
        RecInputs {
            users: Vec::new(),
            items: Vec::new(),
            dim: 0,
        }
    }
}

/// The frozen target recommender, loaded once per stage: its item table and user encoder.
pub struct FrozenRecommender<B: Backend> {
    model: TrainedRecommender<B>,
    items: Vec<f32>,
    dim: usize,
}

impl<B: Backend> FrozenRecommender<B> {
    pub fn load(rec_dir: &Path, device: &B::Device) -> Result<Self> {
        let model = TrainedRecommender::<B>::load(rec_dir, device)?;
        let table = model.item_table();
        let dim = table.dims()[1];
        let items = table
            .into_data()
            .iter::<f32>()
            .map(|v| v.elem::<f32>())
            .collect();
        Ok(FrozenRecommender { model, items, dim })
    }

    /// The vectors behind the placeholders of records whose user states are `users`.
    pub fn inputs(&self, users: &[Query<'_>], device: &B::Device) -> RecInputs {
        RecInputs {
            users: samples::user_features(&self.model, users, device),
            items: self.items.clone(),
            dim: self.dim,
        }
    }
}

/// [`FrozenRecommender::inputs`], or no vectors when there is no recommender.
pub fn rec_inputs<B: Backend>(
    rec: Option<&FrozenRecommender<B>>,
    users: &[Query<'_>],
    device: &B::Device,
) -> RecInputs {
    rec.map_or_else(RecInputs::empty, |r| r.inputs(users, device))
}

pub fn queries<'a>(records: &[&'a TaskRecord]) -> Vec<Query<'a>> {
    records.iter().map(|r| samples::query(r)).collect()
}

/// Tokenizes records; task records with a user get consecutive user-feature rows, returned
/// with the samples (their order is the row order).
pub fn build_samples<'r>(
    builder: &SampleBuilder<'_>,
    records: &'r [AlignmentRecord],
) -> Result<(Vec<Sample>, Vec<&'r TaskRecord>, usize)> {
    let mut samples = Vec::new();
    let mut users = Vec::new();
    let mut dropped = 0;
    for (i, r) in records.iter().enumerate() {
        let user_row = match r {
            AlignmentRecord::Task(t) if samples::has_user(t) => Some(users.len()),
            _ => None,
        };
        match builder.training(r, i, user_row)? {
            Some(s) => {
                if let (Some(_), AlignmentRecord::Task(t)) = (user_row, r) {
                    users.push(t);
                }
                samples.push(s);
            }
            None => dropped += 1,
        }
    }
    Ok((samples, users, dropped))
}

/// The model alignment trains: a pretrained backbone frozen with LoRA adapters (and, with
/// `train_embeddings`, its embeddings and head trainable as the original's `modules_to_save`),
/// or a scratch model trained fully; plus fresh connectors when the mode injects recommender
/// vectors of `rec_dim` dimensions.
pub fn trainable_model<B: AutodiffBackend>(
    llm: LlamaModel<B>,
    pretrained: bool,
    section: &TrainSection,
    rec_dim: Option<usize>,
    seed: u64,
) -> AlignedModel<B> {
    let hidden = llm.hidden_size();
    let device = llm.device();
    let mut llm = llm;
    if pretrained {
        llm = attach_lora(llm, &section.lora(), seed);
        if section.train_embeddings {
            llm.embed_tokens.weight = llm.embed_tokens.weight.clone().set_require_grad(true);
            if let Some(head) = llm.lm_head.as_mut() {
                head.weight = head.weight.clone().set_require_grad(true);
            }
        }
    }
    let (user_connector, item_connector) = match rec_dim {
        Some(dim) => seeded_init::<B, _>(&device, seed, |d| {
            (
                Some(Connector::new(dim, hidden, d)),
                Some(Connector::new(dim, hidden, d)),
            )
        }),
        None => (None, None),
    };
    AlignedModel {
        llm,
        user_connector,
        item_connector,
    }
}

fn train<B: AutodiffBackend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()> {
    let s = ctx.settings::<AlignTrainSettings>()?;
    let section = &s.section;
    let (mode, seed) = (s.mode, s.seed);
    let align_dir = ctx.input(StageKind::AlignmentData).to_path_buf();
    let rec_dir = ctx.input(StageKind::Recommender).to_path_buf();
    let out = ctx.out_dir().to_path_buf();

    let train_records = subsample(
        cap_tasks(
            read_split(&align_dir, "train")?,
            &section.task_max_records,
            seed,
        ),
        section.max_records,
        crate::seed::derive(seed, "train.records", &[0]),
    );
    let valid_records = subsample(
        read_split(&align_dir, "valid")?,
        section.valid_records,
        crate::seed::derive(seed, "train.records", &[1]),
    );
    let template = ChatTemplate::new(s.llm.template);
    let spinner = ctx.progress.spinner("loading the base model");
    let titles = scratch_titles(&s.llm, || Dataset::load(ctx.input(StageKind::Data)))?;
    let base: Base<B> = load_base(
        &s.llm,
        &s.spec_dir,
        &template,
        mode,
        (&train_records, &titles),
        seed,
        device,
    )?;
    spinner.finish_and_clear();

    let builder = SampleBuilder {
        tokenizer: &base.tokenizer,
        template: &template,
        placeholders: base.tokenizer.placeholders().filter(|_| mode.uses_tokens()),
        max_len: section.max_len,
    };
    let (train_samples, train_users, dropped) = build_samples(&builder, &train_records)?;
    let (valid_samples, valid_users, _) = build_samples(&builder, &valid_records)?;
    if train_samples.is_empty() {
        return Err(Error::Config(
            "train: no training record has an answer token within train.max_len".into(),
        ));
    }
    let frozen = if mode.uses_tokens() {
        Some(FrozenRecommender::<B::InnerBackend>::load(
            &rec_dir, device,
        )?)
    } else {
        None
    };
    let train_rec = rec_inputs(frozen.as_ref(), &queries(&train_users), device);
    let valid_rec = rec_inputs(frozen.as_ref(), &queries(&valid_users), device);
    ctx.recorder
        .scalar("train_samples", train_samples.len() as f64);
    ctx.recorder
        .scalar("valid_samples", valid_samples.len() as f64);
    ctx.recorder.scalar("dropped_samples", dropped as f64);

    let rec_dim = mode.uses_tokens().then_some(train_rec.dim);
    let model = trainable_model(base.model, base.pretrained, section, rec_dim, seed);
    let (trainable, total) = count_params::<B, _>(&model);
    ctx.recorder.scalar("trainable_params", trainable as f64);
    ctx.recorder.scalar("total_params", total as f64);
    tracing::info!(
        "alignment training: {} train / {} valid samples, {trainable} of {total} parameters trainable",
        train_samples.len(),
        valid_samples.len()
    );

    let fit_settings = FitSettings {
        epochs: if mode == Mode::None {
            0
        } else {
            section.epochs
        },
        section,
        seed,
        key: crate::hash::hash_json(&json!({
            "section": section.fingerprint(),
            "seed": seed,
            "train": train_samples.len(),
            "valid": valid_samples.len(),
        })),
        checkpoints: out.join("checkpoints"),
    };
    let (best, best_epoch) = fit::fit(
        model,
        fit::Split {
            samples: &train_samples,
            features: train_rec.features(),
        },
        fit::Split {
            samples: &valid_samples,
            features: valid_rec.features(),
        },
        &fit_settings,
        ctx.recorder,
        ctx.progress,
    )?;

    let spinner = ctx.progress.spinner("saving the aligned model");
    let model_dir = out.join(MODEL_DIR);
    let llm = merge_lora(best.llm.clone());
    base.tokenizer
        .save_pretrained(&model_dir, Some(&template.jinja_for(&base.tokenizer)))?;
    save_hf(&llm, &base.config, None, &model_dir)?;
    best.save_connectors(&out.join(CONNECTORS))?;
    let info = AlignedInfo {
        mode,
        template: s.llm.template,
        rec_dim: if mode.uses_tokens() { train_rec.dim } else { 0 },
        best_epoch,
        base: base.origin,
    };
    let info_path = out.join(INFO);
    std::fs::write(
        &info_path,
        serde_json::to_string_pretty(&info).expect("serialises"),
    )
    .at(&info_path)?;
    spinner.finish_and_clear();
    ctx.recorder.scalar("best_epoch", best_epoch as f64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_values_by_default_and_v2_as_a_preset() {
        let d = TrainSection::default();
        assert_eq!(d.preset, TrainPreset::Paper);
        assert_eq!(
            (d.lora_r, d.lora_alpha, d.lora_dropout, d.epochs),
            (8, 32.0, 0.1, 10)
        );
        assert_eq!(d.lora_targets, vec![LoraTarget::Q, LoraTarget::V]);
        let v2 = TrainSection::preset(TrainPreset::V2);
        assert_eq!(
            (v2.lora_r, v2.lora_alpha, v2.lora_dropout, v2.epochs),
            (16, 32.0, 0.05, 20)
        );
        assert_eq!(v2.lora_targets, LoraTarget::ALL.to_vec());
        // Everything outside the preset is shared.
        assert_eq!(
            (v2.lr, v2.batch_size, v2.max_len),
            (d.lr, d.batch_size, d.max_len)
        );
        let lora = v2.lora();
        assert_eq!((lora.r, lora.dropout), (16, 0.05));
        assert_eq!(lora.targets, LoraTarget::ALL.to_vec());
    }

    #[test]
    fn a_preset_and_its_values_written_out_are_the_same_stage() {
        let mut written = TrainSection::preset(TrainPreset::V2);
        written.preset = TrainPreset::Paper;
        assert_ne!(written, TrainSection::preset(TrainPreset::V2));
        assert_eq!(
            written.fingerprint(),
            TrainSection::preset(TrainPreset::V2).fingerprint()
        );
        assert_ne!(written.fingerprint(), TrainSection::default().fingerprint());
    }

    fn records(task: Task, n: usize) -> Vec<AlignmentRecord> {
        (0..n)
            .map(|i| {
                AlignmentRecord::Task(TaskRecord {
                    task,
                    question: format!("{task} {i}"),
                    answer: String::new(),
                    slots: vec![],
                    uid: Some(i as u32),
                    iid: -1,
                    target: None,
                    candidates: vec![],
                    ranking: vec![],
                    history: vec![],
                    item_tokens: vec![],
                    template_set: String::new(),
                    template: 0,
                })
            })
            .collect()
    }

    fn questions(rs: &[AlignmentRecord]) -> Vec<String> {
        rs.iter()
            .map(|r| match r {
                AlignmentRecord::Task(t) => t.question.clone(),
                AlignmentRecord::Chat(_) => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn a_task_cap_thins_that_task_only_and_keeps_file_order() {
        let mut all = records(Task::Uid2Hist, 10);
        all.extend(records(Task::UidIid2Binary, 4));
        let caps = BTreeMap::from([("uid2hist".to_string(), 3)]);
        let kept = questions(&cap_tasks(all.clone(), &caps, 7));
        assert_eq!(kept.len(), 7);
        assert_eq!(kept.iter().filter(|q| q.starts_with("uid2hist")).count(), 3);
        assert!(
            kept.ends_with(&questions(&all[10..])),
            "binary untouched, in order"
        );
        assert_eq!(kept, questions(&cap_tasks(all.clone(), &caps, 7)), "seeded");
        assert_eq!(cap_tasks(all.clone(), &BTreeMap::new(), 7).len(), 14);
        // Unset, the key leaves the stage's fingerprint alone; an unknown task is refused.
        let mut section = TrainSection::default();
        assert!(
            !section
                .fingerprint()
                .to_string()
                .contains("task_max_records")
        );
        section.task_max_records.insert("uid2histt".into(), 3);
        let mut v = Validator::default();
        section.validate(&mut v);
        assert!(
            format!("{v:?}").contains("task_max_records.uid2histt"),
            "{v:?}"
        );
    }
}
