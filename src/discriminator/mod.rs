//! Stage 8 (`discriminator`, opt-in): the distinction classifier and the score predictor of
//! spec §7, the paper's Table 3 and Figure 4. Both read only an explanation's text.
//!
//! - The classifier learns which explainer wrote an explanation from the explanations of the
//!   `train` prompts and is scored on those of the `valid` prompts: `classifier_acc` and the
//!   confusion matrix (`confusion/<true>/<predicted>` counts, the report's heatmap).
//! - The score predictor, one per explainer, learns the target model's raw score of the
//!   explained (user, item) pair from the explanation: `predictor_mse` and `predictor_r` (Pearson)
//!   on the valid split, beside `predictor_mse_mean`, the MSE of always predicting the training
//!   mean (what a predictor that learnt nothing scores). The aligned model's keep the plain
//!   names (Table 3's column); the others carry the explainer (`predictor_mse.unaligned`).
//!
//! Every valid-split prediction is stored per example (`classifier_correct`, `predictor_se`),
//! so explainers can be compared with paired tests, and written to `predictions.jsonl`.
//!
//! The encoder is all-MiniLM-L6-v2 by default (`encoder = "minilm"`); the original fine-tuned
//! bert-base-uncased, which loads the same way from an HF folder. Training follows §7.2 (HF
//! Trainer defaults, 3 epochs, lr 3e-5, batch 8, max length 512) and resumes after a crash from
//! per-epoch checkpoints.

use std::path::{Path, PathBuf};

use burn::backend::Autodiff;
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::encoder::{
    BertConfig, EncoderTokenizer, FineTuneSettings, SequenceModel, Targets, fine_tune, load_bert,
    predict,
};
use crate::error::{Error, Result};
use crate::explain::{EXPLANATIONS, ExplainSplit, Explainer, Explanation, metric_suffix};
use crate::fsutil::{read_jsonl, write_jsonl};
use crate::hash::hash_folder_files;
use crate::llm::assets::MINILM;
use crate::llm_stage::{LlmStageBody, run_on_llm_device};
use crate::pipeline::{Resolved, Stage, StageContext, StageKind, StageSettings};
use crate::spec::{RawSpec, Validate, Validator, limits, resolve_spec_path};
use crate::stats;
use crate::training::Checkpoints;

/// The stage's per-example output file.
pub const PREDICTIONS: &str = "predictions.jsonl";

fn default_encoder() -> String {
    "minilm".into()
}

fn default_seed() -> u64 {
    2024
}

fn is_default_encoder(e: &str) -> bool {
    e == "minilm"
}

fn is_default_seed(s: &u64) -> bool {
    *s == 2024
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `[discriminator]`: distinction classifier and score predictor (paper §7.2). The fields added
/// after the first release are left out of the serialized spec at their defaults, so specs
/// without them keep their hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscriminatorSection {
    /// Run the stage (it needs `explain.splits = ["train", "valid"]`).
    #[serde(skip_serializing_if = "is_false")]
    pub enabled: bool,
    /// The text encoder: `minilm` (the cached all-MiniLM-L6-v2, `recx assets fetch minilm`) or
    /// an HF BERT folder, relative to the spec.
    #[serde(
        default = "default_encoder",
        skip_serializing_if = "is_default_encoder"
    )]
    pub encoder: String,
    /// Seeds the heads, the shuffles and dropout (the original's 2024).
    #[serde(default = "default_seed", skip_serializing_if = "is_default_seed")]
    pub seed: u64,
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub max_len: usize,
}

impl Default for DiscriminatorSection {
    fn default() -> Self {
        DiscriminatorSection {
            enabled: false,
            encoder: default_encoder(),
            seed: default_seed(),
            epochs: 3,
            lr: 3e-5,
            batch_size: 8,
            max_len: 512,
        }
    }
}

impl Validate for DiscriminatorSection {
    fn validate(&self, v: &mut Validator) {
        v.count("epochs", self.epochs, 1, limits::MAX_EPOCHS);
        v.positive("lr", self.lr, limits::MAX_LR);
        v.count("batch_size", self.batch_size, 1, limits::MAX_BATCH);
        v.count("max_len", self.max_len, 3, limits::MAX_TOKENS);
        v.check(!self.encoder.is_empty(), "encoder", || {
            "name `minilm` or an HF BERT folder".into()
        });
    }
}

/// The stage's settings: its section, where the encoder is, and the encoder's content hash.
pub struct DiscriminatorSettings {
    pub section: DiscriminatorSection,
    pub encoder_dir: PathBuf,
    pub device: String,
    encoder_files: Value,
}

impl StageSettings for DiscriminatorSettings {
    fn fingerprint(&self) -> Value {
        json!({
            "section": self.section,
            "encoder": self.encoder_files,
            "device": self.device,
        })
    }
}

/// Where the encoder of `section` is: the cached MiniLM for `minilm`, else a folder relative to
/// the spec.
fn encoder_dir(section: &DiscriminatorSection, spec_dir: &Path) -> Result<PathBuf> {
    if section.encoder == "minilm" {
        return MINILM.find().ok_or_else(|| {
            Error::Config(format!(
                "discriminator.encoder = \"minilm\", but all-MiniLM-L6-v2 is not in the cache ({}): \
                 run `recx assets fetch minilm`, set {}, or name an HF BERT folder",
                MINILM.dir().display(),
                MINILM.env
            ))
        });
    }
    let dir = resolve_spec_path(spec_dir, &section.encoder);
    if !dir.join("config.json").is_file() {
        return Err(Error::MissingInput {
            key: "discriminator.encoder".into(),
            path: dir.join("config.json"),
        });
    }
    Ok(dir)
}

/// The discriminator stage.
pub struct DiscriminatorStage;

impl Stage for DiscriminatorStage {
    fn kind(&self) -> StageKind {
        StageKind::Discriminator
    }

    fn deps(&self) -> &'static [StageKind] {
        &[StageKind::Explain]
    }

    fn enabled(&self, spec: &RawSpec) -> bool {
        spec.discriminator.enabled
    }

    fn settings(&self, spec: &RawSpec, spec_dir: &Path, _run_seed: u64) -> Result<Resolved> {
        let section = spec.discriminator.clone();
        let splits = &spec.explain.splits;
        if !(splits.contains(&ExplainSplit::Train) && splits.contains(&ExplainSplit::Valid)) {
            return Err(Error::Config(
                "discriminator.enabled needs explanations of both splits: set \
                 explain.splits = [\"train\", \"valid\"]"
                    .into(),
            ));
        }
        let encoder_dir = encoder_dir(&section, spec_dir)?;
        Ok(Resolved::new(DiscriminatorSettings {
            encoder_files: hash_folder_files(&encoder_dir)?,
            encoder_dir,
            device: spec.llm.device.clone(),
            section,
        }))
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let device = ctx.settings::<DiscriminatorSettings>()?.device.clone();
        run_on_llm_device::<DiscriminatorStage>(ctx, &device)
    }
}

impl LlmStageBody for DiscriminatorStage {
    fn run_on<B: Backend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()> {
        discriminate::<Autodiff<B>>(ctx, device)
    }
}

/// One valid-split prediction, as written to `predictions.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// `classifier` or `predictor`.
    pub model: String,
    pub explainer: Explainer,
    pub case: String,
    /// The true explainer index (classifier) or the target model's score (predictor).
    pub truth: f64,
    /// The predicted explainer index, or the predicted score.
    pub predicted: f64,
}

/// The explanations of one explainer on one split, tokenized.
struct TextSet {
    explainer: Explainer,
    cases: Vec<String>,
    seqs: Vec<Vec<u32>>,
    scores: Vec<f32>,
}

fn text_sets(
    all: &[Explanation],
    explainers: &[Explainer],
    split: ExplainSplit,
    tok: &EncoderTokenizer,
) -> Result<Vec<TextSet>> {
    explainers
        .iter()
        .map(|&explainer| {
            let rows: Vec<&Explanation> = all
                .iter()
                .filter(|e| e.explainer == explainer && e.split == split)
                .collect();
            if rows.is_empty() {
                return Err(Error::Config(format!(
                    "discriminator: the explanation stage wrote no {split} explanations by `{explainer}`"
                )));
            }
            let texts: Vec<String> = rows.iter().map(|e| e.explanation.clone()).collect();
            Ok(TextSet {
                explainer,
                cases: rows.iter().map(|e| e.case_id()).collect(),
                seqs: tok.encode(&texts)?,
                scores: rows.iter().map(|e| e.score).collect(),
            })
        })
        .collect()
}

fn discriminate<B: AutodiffBackend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()> {
    let s = ctx.settings::<DiscriminatorSettings>()?;
    let section = &s.section;
    let all: Vec<Explanation> = read_jsonl(&ctx.input(StageKind::Explain).join(EXPLANATIONS))?;
    let mut explainers: Vec<Explainer> = Vec::new();
    for e in &all {
        if !explainers.contains(&e.explainer) {
            explainers.push(e.explainer);
        }
    }
    let tok = EncoderTokenizer::open(&s.encoder_dir, section.max_len)?;
    let train = text_sets(&all, &explainers, ExplainSplit::Train, &tok)?;
    let valid = text_sets(&all, &explainers, ExplainSplit::Valid, &tok)?;
    let tuning = Tuning::<B> {
        encoder_dir: &s.encoder_dir,
        config: BertConfig::from_folder(&s.encoder_dir)?,
        pad: tok.pad_id(),
        fit: FineTuneSettings {
            epochs: section.epochs,
            lr: section.lr,
            batch_size: section.batch_size,
            seed: section.seed,
            ..FineTuneSettings::default()
        },
        device,
    };
    let mut predictions = Vec::new();
    if explainers.len() >= 2 {
        predictions.extend(classify(ctx, &tuning, &train, &valid)?);
    } else {
        ctx.progress.println(format!(
            "discriminator: one explainer ({}), so no distinction classifier; add `unaligned` to \
             explain.explainers for one",
            explainers[0]
        ));
    }
    for (train_set, valid_set) in train.iter().zip(&valid) {
        predictions.extend(predict_scores(ctx, &tuning, train_set, valid_set)?);
    }
    write_jsonl(&ctx.out_dir().join(PREDICTIONS), &predictions)
}

/// What every model the stage fine-tunes shares: the encoder (its folder and config, the
/// tokenizer's padding id), the training settings and the device.
struct Tuning<'a, B: AutodiffBackend> {
    encoder_dir: &'a Path,
    config: BertConfig,
    pad: u32,
    fit: FineTuneSettings,
    device: &'a B::Device,
}

impl<B: AutodiffBackend> Tuning<'_, B> {
    /// A fresh encoder with a head of `targets.outputs()` outputs, trained on `seqs`/`targets`
    /// (resuming from `out/checkpoints/<name>`), then run on `test`.
    fn train_and_predict(
        &self,
        ctx: &StageContext<'_>,
        name: &str,
        seqs: &[Vec<u32>],
        targets: &Targets,
        test: &[Vec<u32>],
    ) -> Result<Vec<Vec<f32>>> {
        let fit = &self.fit;
        let model = SequenceModel::new(
            load_bert::<B>(self.encoder_dir, fit.seed, self.device)?,
            targets.outputs(),
            self.config.hidden_dropout_prob,
            self.config.initializer_range,
            crate::seed::derive(fit.seed, "discriminator.head", &[]),
        );
        let ckpt = Checkpoints::open(&ctx.out_dir().join("checkpoints").join(name), name)?;
        let (trained, log) = fine_tune(model, seqs, targets, self.pad, fit, &ckpt, ctx.progress)?;
        tracing::info!(
            "discriminator {name}: {} steps, last loss {:.4}",
            log.losses.len(),
            log.losses.last().copied().unwrap_or(f64::NAN)
        );
        Ok(predict(&trained, test, self.pad, fit.batch_size))
    }
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
        .unwrap_or(0)
}

/// The distinction classifier: which explainer wrote each valid explanation.
fn classify<B: AutodiffBackend>(
    ctx: &mut StageContext<'_>,
    tuning: &Tuning<'_, B>,
    train: &[TextSet],
    valid: &[TextSet],
) -> Result<Vec<Prediction>> {
    let seqs: Vec<Vec<u32>> = train.iter().flat_map(|t| t.seqs.clone()).collect();
    let labels: Vec<usize> = train
        .iter()
        .enumerate()
        .flat_map(|(k, t)| std::iter::repeat_n(k, t.seqs.len()))
        .collect();
    let test: Vec<Vec<u32>> = valid.iter().flat_map(|t| t.seqs.clone()).collect();
    let targets = Targets::Classes {
        labels,
        classes: train.len(),
    };
    let outputs = tuning.train_and_predict(ctx, "classifier", &seqs, &targets, &test)?;
    let mut confusion = vec![vec![0usize; valid.len()]; valid.len()];
    let mut out = Vec::new();
    let mut outputs = outputs.iter();
    for (truth, set) in valid.iter().enumerate() {
        for case in &set.cases {
            let predicted = argmax(outputs.next().expect("one output per test text"));
            confusion[truth][predicted] += 1;
            ctx.recorder.example(
                "classifier_correct",
                &format!("{}:{case}", set.explainer),
                f64::from(u8::from(predicted == truth)),
            );
            out.push(Prediction {
                model: "classifier".into(),
                explainer: set.explainer,
                case: case.clone(),
                truth: truth as f64,
                predicted: predicted as f64,
            });
        }
    }
    let right: usize = (0..valid.len()).map(|k| confusion[k][k]).sum();
    let total: usize = confusion.iter().flatten().sum();
    ctx.recorder
        .scalar("classifier_acc", right as f64 / total.max(1) as f64);
    for (t, row) in confusion.iter().enumerate() {
        for (p, n) in row.iter().enumerate() {
            ctx.recorder.scalar(
                &format!("confusion/{}/{}", valid[t].explainer, valid[p].explainer),
                *n as f64,
            );
        }
    }
    Ok(out)
}

/// The score predictor of one explainer.
fn predict_scores<B: AutodiffBackend>(
    ctx: &mut StageContext<'_>,
    tuning: &Tuning<'_, B>,
    train: &TextSet,
    valid: &TextSet,
) -> Result<Vec<Prediction>> {
    let name = format!("predictor-{}", train.explainer);
    let targets = Targets::Scores(train.scores.clone());
    let outputs = tuning.train_and_predict(ctx, &name, &train.seqs, &targets, &valid.seqs)?;
    let suffix = metric_suffix(valid.explainer, ExplainSplit::Valid);
    let predicted: Vec<f64> = outputs.iter().map(|o| f64::from(o[0])).collect();
    let truth: Vec<f64> = valid.scores.iter().map(|&x| f64::from(x)).collect();
    let train_mean = stats::mean(
        &train
            .scores
            .iter()
            .map(|&x| f64::from(x))
            .collect::<Vec<_>>(),
    );
    let mut out = Vec::new();
    let (mut se, mut se_mean) = (0.0, 0.0);
    for ((case, p), t) in valid.cases.iter().zip(&predicted).zip(&truth) {
        let err = (p - t) * (p - t);
        se += err;
        se_mean += (train_mean - t) * (train_mean - t);
        ctx.recorder
            .example(&format!("predictor_se{suffix}"), case, err);
        out.push(Prediction {
            model: "predictor".into(),
            explainer: valid.explainer,
            case: case.clone(),
            truth: *t,
            predicted: *p,
        });
    }
    let n = truth.len().max(1) as f64;
    ctx.recorder
        .scalar(&format!("predictor_mse{suffix}"), se / n);
    ctx.recorder
        .scalar(&format!("predictor_mse_mean{suffix}"), se_mean / n);
    if let Some(r) = stats::pearson(&predicted, &truth) {
        ctx.recorder.scalar(&format!("predictor_r{suffix}"), r);
    }
    Ok(out)
}
