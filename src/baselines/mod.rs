//! The baselines stage: the rows of the paper's Table 1 that are not an aligned model (§8.1),
//! each answering the very validation records the evaluation stage scores (same subsample, same
//! seed), scored by the same metric code, and stored per example so every row can be paired with
//! the aligned model example by example.
//!
//! Rows (`[baselines] rows`), labelled by what ran:
//! - `random`: "Random" — k uniform items, a random shuffle of the candidates, a coin for yes/no;
//! - `popularity`: "Popularity" — k items sampled by popularity, candidates sorted by it;
//! - `zero-shot`: the unaligned `[llm]` backbone on the behaviour-form prompts, e.g.
//!   "SmolLM2-135M-Instruct-zero-shot" ("untrained-scratch-Llama-zero-shot" for the tiny scratch
//!   model, which has no pretraining);
//! - `icl`: the same with `icl_examples` training examples in the conversation ("…-ICL");
//! - `external-icl`: the `[judge]` endpoint's model with the same examples ("<model>-ICL"), only
//!   when `[judge] enabled = true` ([`external`]);
//! - `distilled-sasrec`: "SASRec-distilled" — a SASRec trained to match the target's full-item
//!   distribution with a KL loss ([`distill`]).
//!
//! Measurements are named `<row label>.<task>.<metric>` (the store shows them as
//! `baselines.Random.uid2next.hit@5`), with `<row label>.row` giving the row's place in the
//! paper's order; `answers.jsonl` keeps every answer with its row.
//!
//! The stage sits after `eval` in the module order because it reuses the evaluation stage's
//! [`Evaluator`](crate::eval::Evaluator) and metric code; it does not depend on the train stage's
//! output, so it runs whether or not a model was aligned.

pub mod distill;
pub mod external;
pub mod llm;
pub mod simple;

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::alignment::record::{AlignmentRecord, TaskRecord};
use crate::alignment::{Task, Templates};
use crate::data::Dataset;
use crate::error::Result;
use crate::eval::{EvalSection, Scored, record_scores, task_records};
use crate::fsutil::{read_jsonl, write_jsonl};
use crate::llm::LlmSection;
use crate::llm_stage::{LlmStageBody, run_on_llm_device};
use crate::openai::Endpoint;
use crate::pipeline::{Resolved, Stage, StageContext, StageKind, StageSettings};
use crate::seed;
use crate::spec::{RawSpec, SeedSetting, Validate, Validator, limits};

/// Every baseline answer with its row.
pub const ANSWERS: &str = "answers.jsonl";

/// The tasks with a baseline number in the paper's Table 1 (T1 next item, T2 ranking, T3
/// interest); history and title recovery are N/A for every baseline there.
pub const TASKS: [Task; 3] = [Task::Uid2Next, Task::UidIid2Rank, Task::UidIid2Binary];

crate::spec_enum! {
    /// A baseline row of Table 1, in the paper's order.
    pub enum Row ("baseline row") {
        /// k uniform items; a random shuffle of the candidates; a fair coin.
        Random = "random",
        /// k items sampled by popularity; the candidates sorted by popularity.
        Popularity = "popularity",
        /// The unaligned backbone, zero-shot.
        ZeroShot = "zero-shot",
        /// The unaligned backbone with in-context training examples.
        Icl = "icl",
        /// The `[judge]` endpoint's model with in-context examples (only when it is enabled).
        ExternalIcl = "external-icl",
        /// A SASRec distilled from the target with a KL loss over full-item logits.
        DistilledSasrec = "distilled-sasrec",
    }
}

/// `[baselines]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselinesSection {
    /// The rows to run; empty turns the stage off.
    pub rows: Vec<Row>,
    /// Training examples in the context of the `icl` row (the paper: 2).
    pub icl_examples: usize,
    /// Draws of Random, Popularity and the in-context examples, the student's initialisation.
    pub seed: SeedSetting,
    /// The distilled SASRec: epochs over the target's training examples, learning rate,
    /// batch size and softmax temperature of the KL loss.
    pub distill_epochs: usize,
    pub distill_lr: f64,
    pub distill_batch_size: usize,
    pub distill_temperature: f64,
}

impl Default for BaselinesSection {
    fn default() -> Self {
        BaselinesSection {
            rows: Row::ALL.to_vec(),
            icl_examples: 2,
            seed: SeedSetting::Run,
            distill_epochs: 20,
            distill_lr: 1e-3,
            distill_batch_size: 256,
            distill_temperature: 1.0,
        }
    }
}

impl Validate for BaselinesSection {
    fn validate(&self, v: &mut Validator) {
        let mut sorted = self.rows.clone();
        sorted.sort_unstable();
        sorted.dedup();
        v.check(sorted.len() == self.rows.len(), "rows", || {
            "rows repeat".into()
        });
        v.count("icl_examples", self.icl_examples, 1, limits::MAX_BATCH);
        v.count("distill_epochs", self.distill_epochs, 1, limits::MAX_EPOCHS);
        v.positive("distill_lr", self.distill_lr, limits::MAX_LR);
        v.count(
            "distill_batch_size",
            self.distill_batch_size,
            1,
            limits::MAX_BATCH,
        );
        v.positive("distill_temperature", self.distill_temperature, 1e3);
    }
}

impl BaselinesSection {
    fn uses_llm(&self) -> bool {
        self.rows
            .iter()
            .any(|r| matches!(r, Row::ZeroShot | Row::Icl))
    }

    fn uses_text(&self) -> bool {
        self.uses_llm() || self.rows.contains(&Row::ExternalIcl)
    }
}

/// Whether the external row runs: it is asked for and the spec enables the `[judge]` endpoint.
fn runs_external(spec: &RawSpec) -> bool {
    spec.baselines.rows.contains(&Row::ExternalIcl) && spec.judge.enabled
}

/// The baselines stage's settings: `[baselines]` with its seed resolved; the evaluated records
/// and their decoding, which are the eval stage's (`[eval]`, the run's seed, the separator); the
/// backbone of the LLM rows as the train stage loads it; the external row's endpoint.
pub struct BaselinesSettings {
    pub section: BaselinesSection,
    pub seed: u64,
    pub run_seed: u64,
    pub eval: EvalSection,
    pub separator: String,
    pub llm: LlmSection,
    pub spec_dir: PathBuf,
    /// `train.max_records`: the scratch backbone's tokenizer is learned from as many records.
    pub tokenizer_records: usize,
    /// The backbone's identity (null without LLM rows).
    backbone: Value,
    /// The `[judge]` endpoint when the external row runs.
    pub external: Option<Endpoint>,
}

impl StageSettings for BaselinesSettings {
    fn fingerprint(&self) -> Value {
        let llm = if self.section.uses_llm() {
            json!({
                "backbone": self.backbone,
                "device": self.llm.device,
                "tokenizer_records": self.tokenizer_records,
            })
        } else {
            Value::Null
        };
        let external = self.external.as_ref().map_or(Value::Null, |e| {
            json!({
                "model": e.model,
                "base_url": e.base_url,
                "temperature": e.temperature,
                "max_tokens": e.max_tokens,
                "system": external::SYSTEM,
            })
        });
        json!({
            "section": self.section,
            "external": external,
            // The evaluated records and their decoding are the eval stage's.
            "eval": self.eval,
            "seed": self.run_seed,
            "separator": self.separator,
            "llm": llm,
        })
    }
}

/// The baselines stage.
pub struct BaselinesStage;

impl Stage for BaselinesStage {
    fn kind(&self) -> StageKind {
        StageKind::Baselines
    }

    fn deps(&self) -> &'static [StageKind] {
        &[
            StageKind::Data,
            StageKind::Recommender,
            StageKind::AlignmentData,
        ]
    }

    fn enabled(&self, spec: &RawSpec) -> bool {
        !spec.baselines.rows.is_empty()
    }

    fn settings(&self, spec: &RawSpec, spec_dir: &Path, run_seed: u64) -> Result<Resolved> {
        let mut section = spec.baselines.clone();
        let seed = section.seed.resolve(run_seed);
        section.seed = SeedSetting::Fixed(seed);
        let backbone = if section.uses_llm() {
            crate::llm::backbone::fingerprint(&spec.llm, spec_dir)?
        } else {
            Value::Null
        };
        Ok(Resolved::new(BaselinesSettings {
            section,
            seed,
            run_seed,
            eval: spec.eval.clone(),
            separator: spec.alignment.separator.clone(),
            llm: spec.llm.clone(),
            spec_dir: spec_dir.to_path_buf(),
            tokenizer_records: spec.train.max_records,
            backbone,
            external: runs_external(spec).then(|| spec.judge.endpoint()),
        }))
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let device = ctx.settings::<BaselinesSettings>()?.llm.device.clone();
        run_on_llm_device::<BaselinesStage>(ctx, &device)
    }
}

impl LlmStageBody for BaselinesStage {
    fn run_on<B: Backend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()> {
        run_rows::<B>(ctx, device)
    }
}

/// The random stream of one row and task.
fn row_rng(seed: u64, row: Row, task: Task) -> ChaCha8Rng {
    task_rng(row_seed(seed, row), task)
}

/// The random stream of `task` under a row's seed (see [`row_seed`]).
pub(crate) fn task_rng(row_seed: u64, task: Task) -> ChaCha8Rng {
    seed::rng(row_seed, "baselines.task", &[task as u64])
}

/// The seed of one row under the stage seed.
fn row_seed(seed: u64, row: Row) -> u64 {
    seed::derive(seed, "baselines.row", &[row as u64])
}

impl BaselinesSettings {
    /// Where the unaligned backbone of the LLM rows comes from.
    pub fn backbone_source(&self) -> llm::BackboneSource<'_> {
        llm::BackboneSource {
            llm: &self.llm,
            spec_dir: &self.spec_dir,
            tokenizer_records: self.tokenizer_records,
            seed: self.seed,
            eval: &self.eval,
            separator: &self.separator,
        }
    }
}

fn run_rows<B: Backend>(ctx: &mut StageContext<'_>, device: &B::Device) -> Result<()> {
    let s = ctx.settings::<BaselinesSettings>()?;
    let section = &s.section;
    let seed = s.seed;
    let sep = s.separator.as_str();
    let ds = Dataset::load(ctx.input(StageKind::Data))?;
    let align = ctx.input(StageKind::AlignmentData).to_path_buf();
    let valid: Vec<AlignmentRecord> = read_jsonl(&align.join("valid.jsonl"))?;
    let per_task: Vec<(Task, Vec<&TaskRecord>)> = TASKS
        .iter()
        .map(|&t| (t, task_records(&valid, t, s.eval.max_records, s.run_seed)))
        .filter(|(_, r)| !r.is_empty())
        .collect();
    let mut answers = Vec::new();
    let mut rows: Vec<Row> = section.rows.clone();
    rows.sort_unstable();

    let counts = simple::popularity(&ds);
    for &row in rows
        .iter()
        .filter(|r| matches!(**r, Row::Random | Row::Popularity))
    {
        let label = if row == Row::Random {
            "Random"
        } else {
            "Popularity"
        };
        for (task, records) in &per_task {
            let mut rng = row_rng(seed, row, *task);
            let scores = match row {
                Row::Random => simple::random(*task, records, &ds, sep, &mut rng),
                _ => simple::by_popularity(*task, records, &ds, sep, &counts, &mut rng)
                    .transpose()?,
            };
            if let Some(scores) = scores {
                store_row(ctx, &mut answers, label, row, *task, records, &scores);
            }
        }
    }

    if section.uses_text() {
        let train: Vec<AlignmentRecord> = read_jsonl(&align.join("train.jsonl"))?;
        let templates = Templates::load(&align.join("templates.toml"))?;
        let train_tasks: Vec<TaskRecord> = train
            .iter()
            .filter_map(|r| match r {
                AlignmentRecord::Task(t) if TASKS.contains(&t.task) => Some(t.clone()),
                _ => None,
            })
            .collect();
        if section.uses_llm() {
            let spinner = ctx.progress.spinner("baselines: loading the backbone");
            let bb = llm::load_backbone::<B>(s.backbone_source(), &train, &ds, device)?;
            spinner.finish_and_clear();
            for &row in rows
                .iter()
                .filter(|r| matches!(**r, Row::ZeroShot | Row::Icl))
            {
                let shots = if row == Row::Icl {
                    section.icl_examples
                } else {
                    0
                };
                let label = llm::row_label(&bb.label, shots);
                for (task, records) in &per_task {
                    let (shown, scores) = llm::score_backbone(
                        ctx,
                        &bb,
                        sep,
                        *task,
                        records,
                        &train_tasks,
                        shots,
                        &ds,
                        &templates,
                        row_seed(seed, row),
                    )?;
                    let shown: Vec<&TaskRecord> = shown.iter().collect();
                    store_row(ctx, &mut answers, &label, row, *task, &shown, &scores);
                }
            }
        }
        if let Some(endpoint) = &s.external {
            let label = external::label(endpoint);
            for (task, records) in &per_task {
                let shown = llm::behaviour_form(records, &ds, &templates, sep)?;
                let pool_refs: Vec<&TaskRecord> =
                    train_tasks.iter().filter(|r| r.task == *task).collect();
                let pool = llm::behaviour_form(&pool_refs, &ds, &templates, sep)?;
                let row = Row::ExternalIcl;
                let seed = row_seed(seed, row);
                let scores = external::answer(
                    ctx,
                    endpoint,
                    sep,
                    *task,
                    &shown,
                    &pool,
                    section.icl_examples,
                    &ds,
                    seed,
                )?;
                let shown: Vec<&TaskRecord> = shown.iter().collect();
                store_row(ctx, &mut answers, &label, row, *task, &shown, &scores);
            }
        } else if rows.contains(&Row::ExternalIcl) {
            let note = "baselines: row external-icl skipped: no external endpoint is enabled \
                        ([judge] enabled = true with its model and base_url)";
            tracing::warn!("{note}");
            ctx.progress.println(note);
        }
    }
    if rows.contains(&Row::DistilledSasrec) {
        let settings = distill::DistillSettings {
            epochs: section.distill_epochs,
            lr: section.distill_lr,
            batch_size: section.distill_batch_size,
            temperature: section.distill_temperature,
            seed,
        };
        let rec_dir = ctx.input(StageKind::Recommender).to_path_buf();
        let student = distill::distil::<burn::backend::Autodiff<B>>(
            &rec_dir,
            &ds,
            &settings,
            ctx.progress,
            device,
        )?;
        for (task, records) in &per_task {
            if let Some(scores) = distill::answer(&student, *task, records, &ds, sep, device) {
                let row = Row::DistilledSasrec;
                store_row(
                    ctx,
                    &mut answers,
                    distill::LABEL,
                    row,
                    *task,
                    records,
                    &scores,
                );
            }
        }
    }
    write_jsonl(&ctx.out_dir().join(ANSWERS), &answers)
}

/// Records one row's scores of one task (examples, means, its place) and keeps its answers.
fn store_row(
    ctx: &mut StageContext<'_>,
    answers: &mut Vec<Value>,
    label: &str,
    row: Row,
    task: Task,
    records: &[&TaskRecord],
    scores: &[Scored],
) {
    let prefix = format!("{label}.");
    ctx.recorder
        .scalar(&format!("{label}.row"), (row as usize) as f64);
    for mut line in record_scores(ctx.recorder, &prefix, task, records, scores) {
        line["row"] = json!(label);
        answers.push(line);
    }
}
