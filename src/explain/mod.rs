//! The explanation stage (spec §3.7, §6.1): the aligned model answers the explanation prompts
//! ("will the user like this item, and why, from the recommender's point of view") of its own
//! mode, greedily with the original's `min_new_tokens = 150`, `max_new_tokens = 500`. The
//! explanations go to `explanations.jsonl` with the target model's label and score, ready for
//! the LLM judge and the distinction classifier / score predictor.
//!
//! Explainers as a set (spec §6.1, §7.1): `explainers` names who answers, the run's `aligned`
//! model, the `unaligned` `[llm]` backbone (loaded as the baselines stage loads it; it answers
//! the behaviour-form prompts, as the original's unaligned LLM does) and the `external` LLM
//! behind the `[judge]` endpoint (the paper's ChatGPT: the behaviour-form prompts, the system
//! message of `gpt_api.py`, the endpoint's temperature and token limit; answers cached in the
//! store like the judge's; left out with a warning when `judge.enabled` is false); `splits` names
//! which prompts, the 500 `valid` ones the judge rates and the 2,000 `train` ones the
//! discriminators learn from. Every row of `explanations.jsonl` says which explainer wrote it on
//! which split.
//!
//! Besides the texts it measures what needs no judge: `decision_acc`, how often the answer's
//! leading Yes/No agrees with the target model (the judge's rating 0 means exactly that it
//! does not), and the explanations' length in tokens. The aligned model's valid explanations
//! keep the plain names; the others carry the explainer and split (`decision_acc.unaligned`,
//! `decision_acc.aligned.train`).

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::alignment::Mode;
use crate::alignment::record::{AlignmentRecord, ExplainRecord};
use crate::baselines::external::SYSTEM as EXTERNAL_SYSTEM;
use crate::baselines::llm::{BackboneSource, load_backbone};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::{EvalSection, Evaluator};
use crate::fsutil::{read_jsonl, write_jsonl};
use crate::llm::LlmSection;
use crate::llm::batching::length_sorted_batches;
use crate::llm::generate::Decoding;
use crate::llm_stage::{LlmStageBody, run_on_llm_device};
use crate::openai::{Endpoint, ask_all};
use crate::pipeline::{Resolved, Stage, StageContext, StageKind, StageSettings, check_cancel};
use crate::recommender::Query;
use crate::spec::{RawSpec, Validate, Validator, limits};
use crate::train::Sample;

/// The stage's output file.
pub const EXPLANATIONS: &str = "explanations.jsonl";

crate::spec_enum! {
    /// Who writes explanations.
    pub enum Explainer ("explainer") {
        /// The run's aligned model.
        Aligned = "aligned",
        /// The `[llm]` backbone before alignment.
        Unaligned = "unaligned",
        /// The `[judge]` endpoint (the paper's ChatGPT explainer), when one is enabled.
        External = "external",
    }
}

crate::spec_enum! {
    /// Which explanation prompts are answered (spec §7.1).
    pub enum ExplainSplit ("explanation split") {
        /// The prompts of `train_top.txt` (the discriminators' training set).
        Train = "train",
        /// The prompts of `test_top.txt` (the judge's 500, the discriminators' test set).
        Valid = "valid",
    }
}

fn default_explainers() -> Vec<Explainer> {
    vec![Explainer::Aligned]
}

fn default_splits() -> Vec<ExplainSplit> {
    vec![ExplainSplit::Valid]
}

fn is_default_explainers(v: &[Explainer]) -> bool {
    v == [Explainer::Aligned]
}

fn is_default_splits(v: &[ExplainSplit]) -> bool {
    v == [ExplainSplit::Valid]
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// `[explain]`: explanation generation (paper §3.7, §5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExplainSection {
    /// Explanation prompts written per split by the alignment-data stage (the paper: 500 valid
    /// = 250 users, 2,000 train for the discriminators).
    pub valid_records: usize,
    pub train_records: usize,
    /// Explain at most this many valid prompts, in file order (0 = all that were written).
    pub max_records: usize,
    /// Explain at most this many train prompts, in file order (0 = all that were written).
    /// Left out of the serialized spec at 0, so specs without it keep their hashes.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_train_records: usize,
    /// Who explains (default: the aligned model only). Serialized only when not the default.
    #[serde(
        default = "default_explainers",
        skip_serializing_if = "is_default_explainers"
    )]
    pub explainers: Vec<Explainer>,
    /// Which prompts are explained (default: `valid` only; the discriminators need `train`
    /// too). Serialized only when not the default.
    #[serde(default = "default_splits", skip_serializing_if = "is_default_splits")]
    pub splits: Vec<ExplainSplit>,
    pub min_new_tokens: usize,
    pub max_new_tokens: usize,
    /// Prompts decoded together.
    pub batch_size: usize,
}

impl Default for ExplainSection {
    fn default() -> Self {
        ExplainSection {
            valid_records: 500,
            train_records: 2000,
            max_records: 0,
            max_train_records: 0,
            explainers: default_explainers(),
            splits: default_splits(),
            min_new_tokens: 150,
            max_new_tokens: 500,
            batch_size: 8,
        }
    }
}

impl Validate for ExplainSection {
    fn validate(&self, v: &mut Validator) {
        v.check(
            self.min_new_tokens <= self.max_new_tokens,
            "min_new_tokens",
            || "must not exceed max_new_tokens".into(),
        );
        v.count("max_new_tokens", self.max_new_tokens, 1, limits::MAX_TOKENS);
        v.count("batch_size", self.batch_size, 1, limits::MAX_BATCH);
        v.count("valid_records", self.valid_records, 0, limits::MAX_ENTITIES);
        v.count("train_records", self.train_records, 0, limits::MAX_ENTITIES);
        v.check(!self.explainers.is_empty(), "explainers", || {
            "name at least one explainer".into()
        });
        v.check(!self.splits.is_empty(), "splits", || {
            "name at least one split".into()
        });
        let repeats = |n: usize, mut v: Vec<&str>| {
            v.sort_unstable();
            v.dedup();
            v.len() != n
        };
        v.check(
            !repeats(
                self.explainers.len(),
                self.explainers.iter().map(|e| e.as_str()).collect(),
            ),
            "explainers",
            || "explainers repeat".into(),
        );
        v.check(
            !repeats(
                self.splits.len(),
                self.splits.iter().map(|e| e.as_str()).collect(),
            ),
            "splits",
            || "splits repeat".into(),
        );
    }
}

impl ExplainSection {
    /// Whether the unaligned backbone explains too.
    pub fn uses_backbone(&self) -> bool {
        self.explainers.contains(&Explainer::Unaligned)
    }
}

/// One generated explanation with what the judge and the discriminators need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub uid: u32,
    pub iid: i64,
    pub target: u32,
    /// The target model's decision: "Yes" or "No".
    pub label: String,
    /// The target model's raw score for the target (the score predictor's label).
    pub score: f32,
    pub history_titles: Vec<String>,
    pub target_title: String,
    pub question: String,
    pub explanation: String,
    /// Who wrote it (absent in files written before explainers were a set: the aligned model).
    #[serde(default = "aligned")]
    pub explainer: Explainer,
    /// Which prompts it answers (absent in older files: the valid ones).
    #[serde(default = "valid")]
    pub split: ExplainSplit,
}

fn aligned() -> Explainer {
    Explainer::Aligned
}

fn valid() -> ExplainSplit {
    ExplainSplit::Valid
}

/// The suffix of an explainer's metrics on a split: none for the aligned model's valid
/// explanations (the judge's and the report's default), `.unaligned`, `.aligned.train`, ...
pub fn metric_suffix(explainer: Explainer, split: ExplainSplit) -> String {
    match (explainer, split) {
        (Explainer::Aligned, ExplainSplit::Valid) => String::new(),
        (e, ExplainSplit::Valid) => format!(".{e}"),
        (e, ExplainSplit::Train) => format!(".{e}.train"),
    }
}

impl Explanation {
    /// The id that pairs the same case across runs (for paired tests).
    pub fn case_id(&self) -> String {
        format!("{}:{}:{}", self.uid, self.iid, self.target)
    }
}

/// The decision an explanation opens with, if it opens with one.
pub fn leading_decision(text: &str) -> Option<&'static str> {
    let first = text
        .trim_start()
        .split(|c: char| !c.is_alphanumeric())
        .next()?
        .to_lowercase();
    match first.as_str() {
        "yes" => Some("Yes"),
        "no" => Some("No"),
        _ => None,
    }
}

/// The explanation stage.
pub struct ExplainStage;

impl Stage for ExplainStage {
    fn kind(&self) -> StageKind {
        StageKind::Explain
    }

    fn deps(&self) -> &'static [StageKind] {
        &[
            StageKind::Data,
            StageKind::Recommender,
            StageKind::AlignmentData,
            StageKind::Train,
        ]
    }

    fn settings(&self, spec: &RawSpec, spec_dir: &Path, run_seed: u64) -> Result<Resolved> {
        let mut section = spec.explain.clone();
        if section.explainers.contains(&Explainer::External) && !spec.judge.enabled {
            tracing::warn!(
                "explain.explainers names `external`, but no [judge] endpoint is enabled: the \
                 external explainer is left out"
            );
            section.explainers.retain(|e| *e != Explainer::External);
            if section.explainers.is_empty() {
                return Err(Error::Config(
                    "explain.explainers = [\"external\"] needs an enabled [judge] endpoint \
                     (judge.enabled = true)"
                        .into(),
                ));
            }
        }
        let external = section
            .explainers
            .contains(&Explainer::External)
            .then(|| spec.judge.endpoint());
        let backbone = if spec.explain.uses_backbone() {
            crate::llm::backbone::fingerprint(&spec.llm, spec_dir)?
        } else {
            Value::Null
        };
        Ok(Resolved::new(ExplainSettings {
            section,
            external,
            eval: spec.eval.clone(),
            separator: spec.alignment.separator.clone(),
            device: spec.llm.device.clone(),
            llm: spec.llm.clone(),
            spec_dir: spec_dir.to_path_buf(),
            tokenizer_records: spec.train.max_records,
            // The baselines' seed, so the unaligned explainer is the Table 1 backbone row's model.
            backbone_seed: spec.baselines.seed.resolve(run_seed),
            backbone,
        }))
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let device = ctx.settings::<ExplainSettings>()?.device.clone();
        run_on_llm_device::<ExplainStage>(ctx, &device)
    }
}

/// The explanation stage's settings: `[explain]`, and the evaluator's `[eval]` settings, title
/// separator and device (of `[eval]` only `max_len` reaches the explanations); for the
/// unaligned explainer, the backbone as the baselines stage loads it.
pub struct ExplainSettings {
    pub section: ExplainSection,
    /// The external explainer's endpoint (the `[judge]` one), when it explains.
    pub external: Option<Endpoint>,
    pub eval: EvalSection,
    pub separator: String,
    pub device: String,
    pub llm: LlmSection,
    pub spec_dir: PathBuf,
    pub tokenizer_records: usize,
    pub backbone_seed: u64,
    /// The backbone's identity (null without the unaligned explainer).
    backbone: Value,
}

impl StageSettings for ExplainSettings {
    fn fingerprint(&self) -> Value {
        let mut fp = json!({
            "section": self.section,
            "max_len": self.eval.max_len,
            "device": self.device,
        });
        if let Some(e) = &self.external {
            fp["external"] = json!({
                "model": e.model,
                "base_url": e.base_url,
                "temperature": e.temperature,
                "max_tokens": e.max_tokens,
                "system": EXTERNAL_SYSTEM,
            });
        }
        if self.section.uses_backbone() {
            fp["backbone"] = json!({
                "model": self.backbone,
                "tokenizer_records": self.tokenizer_records,
                "seed": self.backbone_seed,
            });
        }
        fp
    }
}

impl ExplainSettings {
    fn backbone_source(&self) -> BackboneSource<'_> {
        BackboneSource {
            llm: &self.llm,
            spec_dir: &self.spec_dir,
            tokenizer_records: self.tokenizer_records,
            seed: self.backbone_seed,
            eval: &self.eval,
            separator: &self.separator,
        }
    }
}

impl LlmStageBody for ExplainStage {
    fn run_on<B: Backend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()> {
        explain::<B>(ctx, device)
    }
}

/// Who writes an explainer's texts: a model recx runs, or an endpoint it asks.
enum Writer<'a, B: Backend> {
    Model(Box<Evaluator<'a, B>>),
    Endpoint(&'a Endpoint),
}

fn explain<B: Backend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()> {
    let s = ctx.settings::<ExplainSettings>()?;
    let mut out = Vec::new();
    for &explainer in &s.section.explainers {
        let writer = match explainer {
            Explainer::Aligned => Writer::Model(Box::new(Evaluator::<B>::load(
                ctx,
                device,
                &s.eval,
                &s.separator,
            )?)),
            Explainer::Unaligned => {
                let spinner = ctx
                    .progress
                    .spinner("explain: loading the unaligned backbone");
                let train: Vec<AlignmentRecord> =
                    read_jsonl(&ctx.input(StageKind::AlignmentData).join("train.jsonl"))?;
                let ds = Dataset::load(ctx.input(StageKind::Data))?;
                let backbone = load_backbone::<B>(s.backbone_source(), &train, &ds, device)?;
                spinner.finish_and_clear();
                Writer::Model(Box::new(backbone.evaluator))
            }
            Explainer::External => Writer::Endpoint(
                s.external
                    .as_ref()
                    .expect("settings keep `external` only with an endpoint"),
            ),
        };
        for &split in &s.section.splits {
            out.extend(explain_split(ctx, &writer, &s.section, explainer, split)?);
        }
    }
    write_jsonl(&ctx.out_dir().join(EXPLANATIONS), &out)
}

/// One explainer's answers to one split's prompts, with their measurements recorded.
fn explain_split<B: Backend>(
    ctx: &mut StageContext<'_>,
    writer: &Writer<'_, B>,
    section: &ExplainSection,
    explainer: Explainer,
    split: ExplainSplit,
) -> Result<Vec<Explanation>> {
    // The unaligned and external explainers answer the behaviour-form prompts (spec §6.1).
    let mode = match writer {
        Writer::Model(ev) if ev.info.mode != Mode::None => ev.info.mode,
        _ => Mode::Behaviour,
    };
    let path = ctx
        .input(StageKind::AlignmentData)
        .join(format!("explain_{mode}_{split}.jsonl"));
    let mut records: Vec<ExplainRecord> = read_jsonl(&path)?;
    let cap = match split {
        ExplainSplit::Valid => section.max_records,
        ExplainSplit::Train => section.max_train_records,
    };
    if cap > 0 {
        records.truncate(cap);
    }
    let what = format!("{explainer} explanations ({split})");
    let texts = match writer {
        Writer::Model(ev) => generate_explanations(ctx, ev, section, &records, &what)?,
        Writer::Endpoint(endpoint) => {
            let prompts: Vec<String> = records.iter().map(|r| r.question.clone()).collect();
            let bar = ctx.progress.bar(prompts.len() as u64, what);
            let answers = ask_all(
                endpoint,
                Some(EXTERNAL_SYSTEM),
                &prompts,
                ctx.cache,
                &|| bar.inc(1),
            )?;
            bar.finish_and_clear();
            answers.into_iter().map(|a| a.trim().to_string()).collect()
        }
    };
    let suffix = metric_suffix(explainer, split);
    let mut out = Vec::with_capacity(records.len());
    let (mut agree, mut tokens) = (0usize, 0usize);
    for (r, text) in records.iter().zip(texts) {
        let right = leading_decision(&text) == Some(r.label.as_str());
        agree += usize::from(right);
        if let Writer::Model(ev) = writer {
            tokens += ev.tokenizer.encode(&text, false)?.len();
        }
        let e = Explanation {
            uid: r.uid,
            iid: r.iid,
            target: r.target,
            label: r.label.clone(),
            score: r.score,
            history_titles: r.history_titles.clone(),
            target_title: r.target_title.clone(),
            question: r.question.clone(),
            explanation: text,
            explainer,
            split,
        };
        ctx.recorder.example(
            &format!("decision_acc{suffix}"),
            &e.case_id(),
            f64::from(u8::from(right)),
        );
        out.push(e);
    }
    let n = out.len().max(1) as f64;
    ctx.recorder
        .scalar(&format!("explanations{suffix}"), out.len() as f64);
    ctx.recorder
        .scalar(&format!("decision_acc{suffix}"), agree as f64 / n);
    // Tokens in the model's own vocabulary; an endpoint's are not counted.
    if matches!(writer, Writer::Model(_)) {
        ctx.recorder
            .scalar(&format!("mean_tokens{suffix}"), tokens as f64 / n);
    }
    Ok(out)
}

/// Greedy answers to the explanation prompts of `records` (batches grouped by length).
fn generate_explanations<B: Backend>(
    ctx: &StageContext<'_>,
    ev: &Evaluator<'_, B>,
    section: &ExplainSection,
    records: &[ExplainRecord],
    what: &str,
) -> Result<Vec<String>> {
    let users: Vec<Query<'_>> = records
        .iter()
        .map(|r| Query {
            uid: r.uid,
            history: &r.history,
        })
        .collect();
    let rec = ev.rec_inputs(&users);
    let builder = ev.builder();
    let samples = records
        .iter()
        .enumerate()
        .map(|(i, r)| builder.prompt_for("uidiid2explan", &r.question, &r.item_tokens, i, Some(i)))
        .collect::<Result<Vec<_>>>()?;
    let mut opts = ev.options(section.max_new_tokens, Decoding::Greedy);
    opts.min_new_tokens = section.min_new_tokens;

    let bar = ctx.progress.bar(records.len() as u64, what);
    let mut texts: Vec<String> = vec![String::new(); records.len()];
    let lens: Vec<usize> = samples.iter().map(|s| s.ids.len()).collect();
    for part in length_sorted_batches(&lens, section.batch_size) {
        check_cancel()?;
        let batch: Vec<Sample> = part.iter().map(|&i| samples[i].clone()).collect();
        for (&i, answers) in part.iter().zip(ev.answers(&batch, &rec, &opts)?) {
            texts[i] = answers
                .into_iter()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
        }
        bar.inc(part.len() as u64);
    }
    bar.finish_and_clear();
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leading_decision_is_the_first_word() {
        assert_eq!(
            leading_decision("Yes, because the user loves racing."),
            Some("Yes")
        );
        assert_eq!(leading_decision("  no. The history shows"), Some("No"));
        assert_eq!(leading_decision("Nobody knows"), None);
        assert_eq!(leading_decision("The user will like it"), None);
        assert_eq!(leading_decision(""), None);
    }
}
