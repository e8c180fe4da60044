//! The alignment-evaluation stage (spec §5): the aligned LLM answers the validation records of
//! each evaluated task with the original's decoding settings, and [`metrics`] scores the
//! answers. Metrics are named `<task>.<metric>` (`uid2next.hit@5`, `uidiid2rank.ndcg@5`,
//! `uidiid2binary.acc`, `uid2hist.hcr`, `iid2title.acc`), which the report's Table 1 reads as
//! `eval.…`; every example's value is stored too, for paired significance tests, and
//! `answers.jsonl` keeps each record's question, expected answer, predictions and values.

pub mod metrics;

use std::path::Path;

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::alignment::Task;
use crate::alignment::record::{AlignmentRecord, TaskRecord};
use crate::data::Dataset;
use crate::error::Result;
use crate::fsutil::{read_jsonl, write_jsonl};
use crate::llm::batching::length_sorted_batches;
use crate::llm::chat::ChatTemplate;
use crate::llm::constrain::ListGrammar;
use crate::llm::generate::{
    Decoding, EmbeddingAddition, GenerateOptions, Generated, generate, generate_lists,
    next_token_logits,
};
use crate::llm::tokenizer::Tokenizer;
use crate::llm::{LlamaModel, load_model};
use crate::llm_stage::{LlmStageBody, run_on_llm_device, subsample};
use crate::pipeline::{
    Recorder, Resolved, Stage, StageContext, StageKind, StageSettings, check_cancel,
};
use crate::recommender::Query;
use crate::spec::{RawSpec, Validate, Validator, limits};
use crate::train::aligned::PlaceholderVectors;
use crate::train::{
    AlignedInfo, AlignedModel, CONNECTORS, FrozenRecommender, MODEL_DIR, RecInputs, Sample,
    SampleBuilder, rec_inputs,
};

/// `[eval]`: alignment metrics ([v2] `shell/infer_alignment.sh` settings, spec §5.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalSection {
    /// Evaluate at most this many records per task, drawn with the run seed (0 = all).
    pub max_records: usize,
    /// Beams (and returned sequences) for next-item retrieval.
    pub num_beams: usize,
    /// Prompts decoded together.
    pub batch_size: usize,
    pub next_max_new_tokens: usize,
    pub rank_max_new_tokens: usize,
    pub hist_max_new_tokens: usize,
    pub title_max_new_tokens: usize,
    /// uidiid2binary reads logits instead of generating, but the original's script still sets
    /// `max_new_tokens` 100 for it, which cuts its prompts to `max_len - 100` tokens.
    pub binary_max_new_tokens: usize,
    /// `model_max_length`; prompts keep their first `max_len - max_new_tokens` tokens.
    pub max_len: usize,
    /// How ranking answers are decoded: `free` (the paper's greedy decoding) or `candidates`
    /// (greedy within the lists of the prompt's candidates, [`crate::llm::constrain`]). Left
    /// out of the serialized spec when `free`, so specs without it keep their hashes.
    #[serde(skip_serializing_if = "RankDecoding::is_free")]
    pub rank_decoding: RankDecoding,
}

crate::spec_enum! {
    /// How `uidiid2rank` answers are decoded.
    #[derive(Default)]
    pub enum RankDecoding ("rank decoding") {
        /// Free greedy decoding, as the paper's evaluation.
        #[default]
        Free = "free",
        /// Greedy decoding restricted to lists of the prompt's candidates, each once.
        Candidates = "candidates",
    }
}

impl RankDecoding {
    fn is_free(&self) -> bool {
        *self == RankDecoding::Free
    }
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection {
            max_records: 0,
            num_beams: 5,
            batch_size: 8,
            next_max_new_tokens: 150,
            rank_max_new_tokens: 500,
            hist_max_new_tokens: 500,
            title_max_new_tokens: 200,
            binary_max_new_tokens: 100,
            max_len: 1024,
            rank_decoding: RankDecoding::Free,
        }
    }
}

impl Validate for EvalSection {
    fn validate(&self, v: &mut Validator) {
        v.count("num_beams", self.num_beams, 1, 1024);
        v.count("batch_size", self.batch_size, 1, limits::MAX_BATCH);
        v.count("max_len", self.max_len, 1, limits::MAX_TOKENS);
        for (key, n) in [
            ("next_max_new_tokens", self.next_max_new_tokens),
            ("rank_max_new_tokens", self.rank_max_new_tokens),
            ("hist_max_new_tokens", self.hist_max_new_tokens),
            ("title_max_new_tokens", self.title_max_new_tokens),
            ("binary_max_new_tokens", self.binary_max_new_tokens),
        ] {
            v.check(n > 0 && n < self.max_len, key, || {
                format!("must be between 1 and max_len ({})", self.max_len)
            });
        }
    }
}

/// Every evaluated record with the model's answers and its metric values.
pub const ANSWERS: &str = "answers.jsonl";

/// The tasks with alignment metrics, in the paper's column order.
pub const EVALUATED: [Task; 5] = [
    Task::Uid2Next,
    Task::UidIid2Rank,
    Task::UidIid2Binary,
    Task::Uid2Hist,
    Task::Iid2Title,
];

/// One evaluated record: what the model answered and the metric values it earned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    /// Generated answers (beams in score order for uid2next; "Yes"/"No" for uidiid2binary).
    pub predictions: Vec<String>,
    pub values: Vec<(&'static str, f64)>,
}

/// The evaluation stage.
pub struct EvalStage;

impl Stage for EvalStage {
    fn kind(&self) -> StageKind {
        StageKind::Eval
    }

    fn deps(&self) -> &'static [StageKind] {
        &[
            StageKind::Data,
            StageKind::Recommender,
            StageKind::AlignmentData,
            StageKind::Train,
        ]
    }

    fn settings(&self, spec: &RawSpec, _spec_dir: &Path, run_seed: u64) -> Result<Resolved> {
        Ok(Resolved::new(EvalSettings {
            section: spec.eval.clone(),
            run_seed,
            separator: spec.alignment.separator.clone(),
            device: spec.llm.device.clone(),
        }))
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let device = ctx.settings::<EvalSettings>()?.device.clone();
        run_on_llm_device::<EvalStage>(ctx, &device)
    }
}

/// The evaluation stage's settings: `[eval]`, the run's seed (it draws the evaluated records),
/// the title separator of the answers and the LLM's device.
pub struct EvalSettings {
    pub section: EvalSection,
    pub run_seed: u64,
    pub separator: String,
    pub device: String,
}

impl StageSettings for EvalSettings {
    fn fingerprint(&self) -> Value {
        json!({
            "section": self.section,
            "seed": self.run_seed,
            "separator": self.separator,
            "device": self.device,
            // 2: list labels from item ids instead of the split answer text.
            "labels": 2,
        })
    }
}

impl LlmStageBody for EvalStage {
    fn run_on<B: Backend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()> {
        evaluate::<B>(ctx, device)
    }
}

/// An aligned model loaded for inference, with the frozen recommender behind its placeholders.
pub struct Evaluator<'a, B: Backend> {
    pub model: AlignedModel<B>,
    pub tokenizer: Tokenizer,
    pub template: ChatTemplate,
    pub info: AlignedInfo,
    /// Loaded when the model has connectors.
    pub recommender: Option<FrozenRecommender<B>>,
    pub section: &'a EvalSection,
    pub separator: &'a str,
    pub device: B::Device,
}

impl<'a, B: Backend> Evaluator<'a, B> {
    /// Loads the training stage's model and, for the modes with placeholders, the recommender;
    /// `section` and `separator` are the `[eval]` settings and title separator it answers with.
    pub fn load(
        ctx: &StageContext<'_>,
        device: &B::Device,
        section: &'a EvalSection,
        separator: &'a str,
    ) -> Result<Self> {
        let (model, tokenizer, info) = load_aligned::<B>(ctx.input(StageKind::Train), device)?;
        let recommender = if info.rec_dim > 0 {
            Some(FrozenRecommender::load(
                ctx.input(StageKind::Recommender),
                device,
            )?)
        } else {
            None
        };
        Ok(Evaluator {
            model,
            tokenizer,
            template: ChatTemplate::new(info.template),
            info,
            recommender,
            section,
            separator,
            device: device.clone(),
        })
    }

    /// Builds prompts for this model's tokenizer, template and placeholders.
    pub fn builder(&self) -> SampleBuilder<'_> {
        SampleBuilder {
            tokenizer: &self.tokenizer,
            template: &self.template,
            placeholders: self
                .tokenizer
                .placeholders()
                .filter(|_| self.info.rec_dim > 0),
            max_len: self.section.max_len,
        }
    }

    /// The recommender vectors for records whose user states are `users`.
    pub fn rec_inputs(&self, users: &[Query<'_>]) -> RecInputs {
        rec_inputs(self.recommender.as_ref(), users, &self.device)
    }

    /// Connector outputs of a batch as additions at each prompt's own positions.
    fn additions(&self, batch: &[Sample], rec: &RecInputs) -> Vec<EmbeddingAddition<B>> {
        let refs: Vec<&Sample> = batch.iter().collect();
        let Some(PlaceholderVectors { at, vectors }) =
            self.model.placeholder_vectors(&refs, &rec.features())
        else {
            return Vec::new();
        };
        at.into_iter()
            .enumerate()
            .map(|(k, (row, pos))| EmbeddingAddition {
                row,
                pos,
                vector: vectors.clone().slice(k..k + 1).squeeze_dim(0),
            })
            .collect()
    }

    pub fn options(&self, max_new_tokens: usize, decoding: Decoding) -> GenerateOptions {
        GenerateOptions {
            max_new_tokens,
            min_new_tokens: 1,
            stop_tokens: self.template.stop_token_ids(&self.tokenizer),
            banned_tokens: self.template.banned_ids(&self.tokenizer),
            decoding,
        }
    }

    /// The prompts of a batch as the original's inference feeds them: each cut to its first
    /// `max_len - max_new_tokens` tokens (right truncation), with the additions that still fall
    /// inside.
    fn cut_prompts(
        &self,
        batch: &[Sample],
        rec: &RecInputs,
        max_new_tokens: usize,
    ) -> (Vec<Vec<u32>>, Vec<EmbeddingAddition<B>>) {
        let keep = self.section.max_len - max_new_tokens;
        let prompts: Vec<Vec<u32>> = batch
            .iter()
            .map(|s| s.ids[..s.ids.len().min(keep)].to_vec())
            .collect();
        let additions: Vec<EmbeddingAddition<B>> = self
            .additions(batch, rec)
            .into_iter()
            .filter(|a| a.pos < prompts[a.row].len())
            .collect();
        (prompts, additions)
    }

    /// Generated answers for a batch: one list per prompt (several for beam search).
    pub fn answers(
        &self,
        batch: &[Sample],
        rec: &RecInputs,
        opts: &GenerateOptions,
    ) -> Result<Vec<Vec<String>>> {
        let (prompts, additions) = self.cut_prompts(batch, rec, opts.max_new_tokens);
        let out = generate(&self.model.llm, &prompts, &additions, opts);
        out.into_iter()
            .map(|gens| gens.iter().map(|g| self.answer_text(g)).collect())
            .collect()
    }

    /// A generated answer as text, cut at the template's stop strings.
    fn answer_text(&self, g: &Generated) -> Result<String> {
        let text = self.tokenizer.decode(&g.tokens, false)?;
        Ok(self.template.cut_at_stops(&text).to_string())
    }

    /// Greedy ranking answers restricted to lists of each record's candidates.
    fn candidate_lists(
        &self,
        records: &[&TaskRecord],
        batch: &[Sample],
        rec: &RecInputs,
        ds: &Dataset,
    ) -> Result<Vec<String>> {
        let opts = self.options(self.section.rank_max_new_tokens, Decoding::Greedy);
        let grammars = records
            .iter()
            .map(|r| {
                let titles: Vec<&str> = r.candidates.iter().map(|&i| ds.title(i)).collect();
                let first = titles
                    .iter()
                    .map(|t| self.tokenizer.encode(t, false))
                    .collect::<Result<Vec<_>>>()?;
                let later = titles
                    .iter()
                    .map(|t| {
                        self.tokenizer
                            .encode(&format!("{}{t}", self.separator), false)
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(ListGrammar::new(first, later, opts.stop_tokens.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        let (prompts, additions) = self.cut_prompts(batch, rec, opts.max_new_tokens);
        generate_lists(&self.model.llm, &prompts, &additions, &opts, &grammars)
            .iter()
            .map(|g| self.answer_text(g))
            .collect()
    }

    /// `(logit Yes, logit No)` at the last position of each prompt, cut to
    /// `max_len - binary_max_new_tokens` tokens as the original's.
    fn yes_no(&self, batch: &[Sample], rec: &RecInputs) -> Result<Vec<(f32, f32)>> {
        let (yes, no) = self.template.yes_no_ids(&self.tokenizer)?;
        let (prompts, additions) = self.cut_prompts(batch, rec, self.section.binary_max_new_tokens);
        let logits = next_token_logits(&self.model.llm, &prompts, &additions);
        let device = logits.device();
        let idx = Tensor::from_data(TensorData::new(vec![yes as i64, no as i64], [2]), &device);
        let picked: Vec<f32> = logits
            .select(1, idx)
            .into_data()
            .iter::<f32>()
            .map(|v| v.elem())
            .collect();
        Ok(picked.chunks(2).map(|c| (c[0], c[1])).collect())
    }

    /// Scores one batch of `task` records.
    pub fn score(
        &self,
        task: Task,
        records: &[&TaskRecord],
        batch: &[Sample],
        rec: &RecInputs,
        ds: &Dataset,
    ) -> Result<Vec<Scored>> {
        let s = self.section;
        let sep = self.separator;
        let labels = |r: &TaskRecord| label_titles(r, ds);
        type Values = Vec<(&'static str, f64)>;
        let greedy =
            |max_new: usize, f: &dyn Fn(&str, &TaskRecord) -> Values| -> Result<Vec<Scored>> {
                let answers = self.answers(batch, rec, &self.options(max_new, Decoding::Greedy))?;
                Ok(answers
                    .iter()
                    .zip(records)
                    .map(|(a, r)| scored(a, f(&a[0], r)))
                    .collect())
            };
        Ok(match task {
            Task::Uid2Next => {
                let beams = s.num_beams;
                let decoding = Decoding::Beam {
                    num_beams: beams,
                    num_return: beams,
                    length_penalty: 1.0,
                };
                let answers =
                    self.answers(batch, rec, &self.options(s.next_max_new_tokens, decoding))?;
                answers
                    .iter()
                    .zip(records)
                    .map(|(a, r)| {
                        let (hit, ndcg) = metrics::hit_ndcg_at_k(a, &r.answer, 5);
                        scored(a, vec![("hit@5", hit), ("ndcg@5", ndcg)])
                    })
                    .collect()
            }
            Task::UidIid2Rank if s.rank_decoding == RankDecoding::Candidates => {
                let answers = self.candidate_lists(records, batch, rec, ds)?;
                answers
                    .iter()
                    .zip(records)
                    .map(|(a, r)| {
                        let ndcg = metrics::ranking_ndcg(a, &labels(r), sep);
                        scored(std::slice::from_ref(a), vec![("ndcg@5", ndcg)])
                    })
                    .collect()
            }
            Task::UidIid2Rank => greedy(s.rank_max_new_tokens, &|pred, r| {
                vec![("ndcg@5", metrics::ranking_ndcg(pred, &labels(r), sep))]
            })?,
            Task::UidIid2Binary => self
                .yes_no(batch, rec)?
                .iter()
                .zip(records)
                .map(|(&(y, n), r)| {
                    let said = if y >= n { "Yes" } else { "No" };
                    scored(
                        &[said.to_string()],
                        vec![("acc", metrics::binary_correct(&r.answer, y, n))],
                    )
                })
                .collect(),
            Task::Uid2Hist => greedy(s.hist_max_new_tokens, &|pred, r| {
                vec![("hcr", metrics::history_coverage(pred, &labels(r), sep))]
            })?,
            Task::Iid2Title => greedy(s.title_max_new_tokens, &|pred, r| {
                vec![("acc", metrics::exact_match(pred, &r.answer))]
            })?,
            other => unreachable!("{other} has no alignment metric"),
        })
    }
}

fn scored(predictions: &[String], values: Vec<(&'static str, f64)>) -> Scored {
    Scored {
        predictions: predictions.to_vec(),
        values,
    }
}

/// Loads the aligned model written by the training stage.
pub fn load_aligned<B: Backend>(
    train_dir: &Path,
    device: &B::Device,
) -> Result<(AlignedModel<B>, Tokenizer, AlignedInfo)> {
    let info = AlignedInfo::read(train_dir)?;
    let model_dir = train_dir.join(MODEL_DIR);
    let (llm, _config): (LlamaModel<B>, _) = load_model::<B>(&model_dir, device)?;
    let tokenizer = Tokenizer::from_file(&model_dir.join("tokenizer.json"))?;
    let (user_connector, item_connector) = if info.rec_dim > 0 {
        let (u, i) = AlignedModel::<B>::load_connectors(
            &train_dir.join(CONNECTORS),
            info.rec_dim,
            llm.hidden_size(),
            device,
        )?;
        (Some(u), Some(i))
    } else {
        (None, None)
    };
    Ok((
        AlignedModel {
            llm,
            user_connector,
            item_connector,
        },
        tokenizer,
        info,
    ))
}

/// The validation records of `task`, at most `max` of them drawn with `seed` (file order kept).
pub fn task_records(
    valid: &[AlignmentRecord],
    task: Task,
    max: usize,
    seed: u64,
) -> Vec<&TaskRecord> {
    let all: Vec<&TaskRecord> = valid
        .iter()
        .filter_map(|r| match r {
            AlignmentRecord::Task(t) if t.task == task => Some(t),
            _ => None,
        })
        .collect();
    subsample(
        all,
        max,
        crate::seed::derive(seed, &format!("eval.{}", task.as_str()), &[]),
    )
}

fn evaluate<B: Backend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()> {
    let s = ctx.settings::<EvalSettings>()?;
    let ev = Evaluator::<B>::load(ctx, device, &s.section, &s.separator)?;
    let ds = Dataset::load(ctx.input(StageKind::Data))?;
    let valid: Vec<AlignmentRecord> =
        read_jsonl(&ctx.input(StageKind::AlignmentData).join("valid.jsonl"))?;
    let mut answers = Vec::new();
    for task in EVALUATED {
        let records = task_records(&valid, task, s.section.max_records, s.run_seed);
        if records.is_empty() {
            continue;
        }
        let (samples, rec) = ev.prompts(&records)?;
        let scores = ev.score_all(task, &records, &samples, &rec, &ds, ctx.progress, "eval")?;
        answers.extend(record_scores(ctx.recorder, "", task, &records, &scores));
    }
    write_jsonl(&ctx.out_dir().join(ANSWERS), &answers)
}

impl<B: Backend> Evaluator<'_, B> {
    /// The inference prompts of `records` with the recommender vectors behind their
    /// placeholders (user rows in record order).
    pub fn prompts(&self, records: &[&TaskRecord]) -> Result<(Vec<Sample>, RecInputs)> {
        let users: Vec<Query<'_>> = records
            .iter()
            .filter(|r| r.uid.is_some())
            .map(|r| crate::train::samples::query(r))
            .collect();
        let rec = self.rec_inputs(&users);
        let builder = self.builder();
        let mut next_user = 0;
        let mut samples = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let row = r.uid.map(|_| {
                next_user += 1;
                next_user - 1
            });
            samples.push(builder.prompt(r, i, row)?);
        }
        Ok((samples, rec))
    }

    /// Scores every record of `task` from its prompt (`samples[i]` for `records[i]`), in
    /// length-grouped batches; the result is in record order.
    #[allow(clippy::too_many_arguments)]
    pub fn score_all(
        &self,
        task: Task,
        records: &[&TaskRecord],
        samples: &[Sample],
        rec: &RecInputs,
        ds: &Dataset,
        progress: &crate::pipeline::Progress,
        label: &str,
    ) -> Result<Vec<Scored>> {
        let bar = progress.bar(records.len() as u64, format!("{label} {task}"));
        let mut scores: Vec<Option<Scored>> = (0..records.len()).map(|_| None).collect();
        let lens: Vec<usize> = samples.iter().map(|s| s.ids.len()).collect();
        for part in length_sorted_batches(&lens, self.section.batch_size) {
            check_cancel()?;
            let chunk: Vec<Sample> = part.iter().map(|&i| samples[i].clone()).collect();
            let recs: Vec<&TaskRecord> = part.iter().map(|&i| records[i]).collect();
            for (&i, s) in part.iter().zip(self.score(task, &recs, &chunk, rec, ds)?) {
                scores[i] = Some(s);
            }
            bar.inc(part.len() as u64);
        }
        bar.finish_and_clear();
        Ok(scores
            .into_iter()
            .map(|s| s.expect("every record is in one batch"))
            .collect())
    }
}

/// Stores the scores of one task's records under `<prefix><task>.<metric>` (every example and
/// the mean) and returns the `answers.jsonl` lines.
pub fn record_scores(
    recorder: &mut dyn Recorder,
    prefix: &str,
    task: Task,
    records: &[&TaskRecord],
    scores: &[Scored],
) -> Vec<Value> {
    let mut sums: std::collections::BTreeMap<&str, f64> = Default::default();
    let mut answers = Vec::with_capacity(records.len());
    for (r, s) in records.iter().zip(scores) {
        for &(metric, v) in &s.values {
            *sums.entry(metric).or_default() += v;
            recorder.example(&format!("{prefix}{task}.{metric}"), &example_id(r), v);
        }
        let values: serde_json::Map<String, Value> = s
            .values
            .iter()
            .map(|(m, v)| (m.to_string(), json!(v)))
            .collect();
        answers.push(json!({
            "type": task,
            "id": example_id(r),
            "question": r.question,
            "answer": r.answer,
            "predictions": s.predictions,
            "metrics": values,
        }));
    }
    record_means(recorder, prefix, task, &sums, records.len());
    answers
}

fn record_means(
    rec: &mut dyn Recorder,
    prefix: &str,
    task: Task,
    sums: &std::collections::BTreeMap<&str, f64>,
    n: usize,
) {
    rec.scalar(&format!("{prefix}{task}.records"), n as f64);
    for (metric, total) in sums {
        let mean = total / n as f64;
        rec.scalar(&format!("{prefix}{task}.{metric}"), mean);
        tracing::info!("{prefix}{task}.{metric} = {mean:.4} over {n} records");
    }
}

/// The label list of a list answer (ranking order, history) from its item ids, as the
/// original builds it: a title containing the separator stays one label.
pub fn label_titles(r: &TaskRecord, ds: &Dataset) -> Vec<String> {
    r.label_ids()
        .unwrap_or_default()
        .iter()
        .map(|&iid| ds.title(iid).to_string())
        .collect()
}

/// A stable id for an evaluated record (so seeds can be paired example by example).
pub fn example_id(r: &TaskRecord) -> String {
    format!(
        "{}:{}:{}",
        r.uid.map_or(-1, i64::from),
        r.iid,
        r.target.map_or(-1, i64::from)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alignment::Mode;
    use crate::llm::LlamaConfig;
    use crate::llm::chat::TemplateName;
    use burn::backend::Flex;

    fn yes_no_at(logits: Tensor<Flex, 2>, yes: u32, no: u32) -> (f32, f32) {
        let row: Vec<f32> = logits.into_data().iter::<f32>().collect();
        (row[yes as usize], row[no as usize])
    }

    #[test]
    fn binary_prompts_are_cut_to_max_len_minus_binary_max_new_tokens() {
        let template = ChatTemplate::new(TemplateName::Chatml);
        let texts: Vec<String> = ["Will he like the item?", "Does she like it?"]
            .iter()
            .flat_map(|q| ["Yes", "No"].map(|a| template.training_text(q, a)))
            .collect();
        let tokenizer =
            Tokenizer::train_bpe(texts.iter(), &template.bpe_train_config(300)).unwrap();
        let vocab = tokenizer.vocab_size();
        let device = Default::default();
        let llm = LlamaConfig::new(vocab, 16, 24, 1, 4, 2).init::<Flex>(&device, 3);
        let section = EvalSection {
            max_len: 40,
            binary_max_new_tokens: 10,
            ..EvalSection::default()
        };
        let ev = Evaluator {
            model: AlignedModel {
                llm,
                user_connector: None,
                item_connector: None,
            },
            tokenizer,
            template,
            info: AlignedInfo {
                mode: Mode::Behaviour,
                template: TemplateName::Chatml,
                rec_dim: 0,
                best_epoch: 0,
                base: "scratch".into(),
            },
            recommender: None,
            section: &section,
            separator: "; ",
            device,
        };
        let ids: Vec<u32> = (0..50).map(|i| (i * 7 % vocab) as u32).collect();
        let sample = Sample {
            task: "uidiid2binary",
            record: 0,
            loss_mask: vec![false; ids.len()],
            ids: ids.clone(),
            user_tokens: Vec::new(),
            user_row: None,
            item_tokens: Vec::new(),
        };
        let got = ev.yes_no(&[sample], &RecInputs::empty()).unwrap();
        let (yes, no) = ev.template.yes_no_ids(&ev.tokenizer).unwrap();
        let logits = |n: usize| {
            let l = next_token_logits(&ev.model.llm, &[ids[..n].to_vec()], &[]);
            yes_no_at(l, yes, no)
        };
        // The first 40 - 10 tokens, as the original's `max_length = model_max_length - 100`.
        assert_eq!(got, vec![logits(30)]);
        assert_ne!(got, vec![logits(50)], "the cut must matter for this test");
    }
}
