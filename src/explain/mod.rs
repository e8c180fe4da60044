//! The explanation stage (spec §3.7, §6.1): the aligned model answers the explanation prompts
//! ("will the user like this item, and why, from the recommender's point of view") of its own
//! mode, greedily with the original's `min_new_tokens = 150`, `max_new_tokens = 500`. The
//! explanations go to `explanations.jsonl` with the target model's label and score, ready for
//! the LLM judge and the distinction classifier / score predictor.
//!
//! Besides the texts it measures what needs no judge: `decision_acc`, how often the answer's
//! leading Yes/No agrees with the target model (the judge's rating 0 means exactly that it
//! does not), and the explanations' length in tokens.

use std::path::Path;

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::alignment::Mode;
use crate::alignment::record::ExplainRecord;
use crate::error::Result;
use crate::eval::{EvalSection, Evaluator};
use crate::fsutil::{read_jsonl, write_jsonl};
use crate::llm::batching::length_sorted_batches;
use crate::llm::generate::Decoding;
use crate::llm_stage::{LlmStageBody, run_on_llm_device};
use crate::pipeline::{Resolved, Stage, StageContext, StageKind, StageSettings, check_cancel};
use crate::recommender::Query;
use crate::spec::{RawSpec, Validate, Validator, limits};
use crate::train::Sample;

/// The stage's output file.
pub const EXPLANATIONS: &str = "explanations.jsonl";

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
            StageKind::Recommender,
            StageKind::AlignmentData,
            StageKind::Train,
        ]
    }

    fn settings(&self, spec: &RawSpec, _spec_dir: &Path, _run_seed: u64) -> Result<Resolved> {
        Ok(Resolved::new(ExplainSettings {
            section: spec.explain.clone(),
            eval: spec.eval.clone(),
            separator: spec.alignment.separator.clone(),
            device: spec.llm.device.clone(),
        }))
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let device = ctx.settings::<ExplainSettings>()?.device.clone();
        run_on_llm_device::<ExplainStage>(ctx, &device)
    }
}

/// The explanation stage's settings: `[explain]`, and the evaluator's `[eval]` settings, title
/// separator and device (of `[eval]` only `max_len` reaches the explanations).
pub struct ExplainSettings {
    pub section: ExplainSection,
    pub eval: EvalSection,
    pub separator: String,
    pub device: String,
}

impl StageSettings for ExplainSettings {
    fn fingerprint(&self) -> Value {
        json!({
            "section": self.section,
            "max_len": self.eval.max_len,
            "device": self.device,
        })
    }
}

impl LlmStageBody for ExplainStage {
    fn run_on<B: Backend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()> {
        explain::<B>(ctx, device)
    }
}

fn explain<B: Backend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()> {
    let s = ctx.settings::<ExplainSettings>()?;
    let section = &s.section;
    let ev = Evaluator::<B>::load(ctx, device, &s.eval, &s.separator)?;
    // The unaligned baseline answers the behaviour-form prompts (spec §6.1).
    let mode = match ev.info.mode {
        Mode::None => Mode::Behaviour,
        m => m,
    };
    let path = ctx
        .input(StageKind::AlignmentData)
        .join(format!("explain_{mode}_valid.jsonl"));
    let mut records: Vec<ExplainRecord> = read_jsonl(&path)?;
    if section.max_records > 0 {
        records.truncate(section.max_records);
    }
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

    let bar = ctx.progress.bar(records.len() as u64, "explanations");
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
    let mut out = Vec::with_capacity(records.len());
    let (mut agree, mut tokens) = (0usize, 0usize);
    for (r, text) in records.iter().zip(texts) {
        let right = leading_decision(&text) == Some(r.label.as_str());
        agree += usize::from(right);
        tokens += ev.tokenizer.encode(&text, false)?.len();
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
        };
        ctx.recorder
            .example("decision_acc", &e.case_id(), f64::from(u8::from(right)));
        out.push(e);
    }
    let n = out.len().max(1) as f64;
    ctx.recorder.scalar("explanations", out.len() as f64);
    ctx.recorder.scalar("decision_acc", agree as f64 / n);
    ctx.recorder.scalar("mean_tokens", tokens as f64 / n);
    write_jsonl(&ctx.out_dir().join(EXPLANATIONS), &out)
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
