//! The unaligned backbone as a baseline: the LLM of `[llm]` before alignment (no LoRA, no
//! connectors), answering the behaviour form of the evaluated records (the original's `none`
//! task type) zero-shot, or with in-context examples: `icl_examples` training records of the same
//! task, drawn with the stage seed, as earlier user/assistant turns of the conversation.
//!
//! Decoding and scoring are the evaluation stage's own ([`Evaluator`]), so the rows differ from
//! the aligned model's only in the model and the prompt.

use std::path::Path;

use burn::tensor::backend::Backend;
use rand_chacha::ChaCha8Rng;

use crate::alignment::record::{AlignmentRecord, TaskRecord};
use crate::alignment::render::rerender;
use crate::alignment::{Mode, Renderer, Task, Templates};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::{EvalSection, Evaluator, Scored};
use crate::llm::LlmSection;
use crate::llm::chat::{ChatTemplate, Turn};
use crate::llm_stage::subsample;
use crate::pipeline::StageContext;
use crate::train::aligned::AlignedModel;
use crate::train::{AlignedInfo, RecInputs, Sample, load_base, scratch_titles};

/// The backbone's name for row labels: the checkpoint folder's name, or that of the tiny
/// scratch model (which is untrained here, and says so).
pub fn backbone_label(origin: &str, pretrained: bool) -> String {
    if !pretrained {
        return "untrained-scratch-Llama".into();
    }
    Path::new(origin.trim_end_matches('/'))
        .file_name()
        .map_or_else(|| origin.to_string(), |n| n.to_string_lossy().into_owned())
        .replace(char::is_whitespace, "-")
}

/// The unaligned backbone loaded for evaluation, with its row-label stem.
pub struct Backbone<'a, B: Backend> {
    pub evaluator: Evaluator<'a, B>,
    pub label: String,
}

/// What loading the unaligned backbone needs (the baselines' and the explainers' settings).
pub struct BackboneSource<'a> {
    pub llm: &'a LlmSection,
    pub spec_dir: &'a Path,
    /// `train.max_records`: the scratch backbone's tokenizer is learned from as many records.
    pub tokenizer_records: usize,
    pub seed: u64,
    pub eval: &'a EvalSection,
    pub separator: &'a str,
}

/// Loads `[llm]` as the train stage would before training (the scratch model's tokenizer is
/// learned from the same training records), without placeholders.
pub fn load_backbone<'a, B: Backend>(
    s: BackboneSource<'a>,
    train: &[AlignmentRecord],
    ds: &Dataset,
    device: &B::Device,
) -> Result<Backbone<'a, B>> {
    let seed = s.seed;
    let template = ChatTemplate::new(s.llm.template);
    let corpus = subsample(train.to_vec(), s.tokenizer_records, seed);
    let titles = scratch_titles(s.llm, || Ok::<_, Error>(ds))?;
    let base = load_base::<B>(
        s.llm,
        s.spec_dir,
        &template,
        Mode::None,
        (&corpus, &titles),
        seed,
        device,
    )?;
    let label = backbone_label(&base.origin, base.pretrained);
    Ok(Backbone {
        evaluator: Evaluator {
            model: AlignedModel {
                llm: base.model,
                user_connector: None,
                item_connector: None,
            },
            tokenizer: base.tokenizer,
            template,
            info: AlignedInfo {
                mode: Mode::None,
                template: s.llm.template,
                rec_dim: 0,
                best_epoch: 0,
                base: base.origin,
            },
            recommender: None,
            section: s.eval,
            separator: s.separator,
            device: device.clone(),
        },
        label,
    })
}

/// Records in behaviour form (the text the unaligned model can read).
pub fn behaviour_form(
    records: &[&TaskRecord],
    ds: &Dataset,
    templates: &Templates,
    separator: &str,
) -> Result<Vec<TaskRecord>> {
    let r = Renderer::new(ds, Mode::Behaviour, separator);
    records
        .iter()
        .map(|rec| {
            rerender(rec, &r, templates).ok_or_else(|| {
                Error::Config(format!(
                    "baselines: {} records have no behaviour form",
                    rec.task
                ))
            })
        })
        .collect()
}

/// Prompts of `records`, each after `shots` in-context examples drawn from `pool` (the task's
/// training records in behaviour form) with `rng`; zero shots gives the plain prompt.
pub fn icl_prompts<B: Backend>(
    ev: &Evaluator<'_, B>,
    records: &[TaskRecord],
    pool: &[TaskRecord],
    shots: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Sample>> {
    if shots > 0 && pool.len() < shots {
        return Err(Error::Config(format!(
            "baselines.icl_examples = {shots}, but the training split has only {} records of \
             this task",
            pool.len()
        )));
    }
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut turns = Vec::with_capacity(2 * shots + 1);
            if shots > 0 {
                for k in rand::seq::index::sample(rng, pool.len(), shots) {
                    turns.push(Turn::user(pool[k].question.clone()));
                    turns.push(Turn::assistant(pool[k].answer.clone()));
                }
            }
            turns.push(Turn::user(r.question.clone()));
            let text = ev.template.prompt_conversation(&turns)?;
            let ids = ev.tokenizer.encode(&text, true)?;
            Ok(Sample {
                task: r.task.as_str(),
                record: i,
                loss_mask: vec![false; ids.len()],
                ids,
                user_tokens: Vec::new(),
                user_row: None,
                item_tokens: Vec::new(),
            })
        })
        .collect()
}

/// Scores the backbone on `records` (validation, any mode) with `shots` examples from `train`;
/// returns the records in the form the backbone saw, with their scores.
#[allow(clippy::too_many_arguments)]
pub fn score_backbone<B: Backend>(
    ctx: &StageContext<'_>,
    bb: &Backbone<'_, B>,
    sep: &str,
    task: Task,
    records: &[&TaskRecord],
    train: &[TaskRecord],
    shots: usize,
    ds: &Dataset,
    templates: &Templates,
    seed: u64,
) -> Result<(Vec<TaskRecord>, Vec<Scored>)> {
    let shown = behaviour_form(records, ds, templates, sep)?;
    let train_refs: Vec<&TaskRecord> = train.iter().filter(|r| r.task == task).collect();
    let pool = if shots > 0 {
        behaviour_form(&train_refs, ds, templates, sep)?
    } else {
        Vec::new()
    };
    let mut rng = super::task_rng(seed, task);
    let samples = icl_prompts(&bb.evaluator, &shown, &pool, shots, &mut rng)?;
    let refs: Vec<&TaskRecord> = shown.iter().collect();
    let label = format!("baselines {}", row_label(&bb.label, shots));
    let scores = bb.evaluator.score_all(
        task,
        &refs,
        &samples,
        &RecInputs::empty(),
        ds,
        ctx.progress,
        &label,
    )?;
    Ok((shown, scores))
}

/// `<backbone>-zero-shot` or `<backbone>-ICL`.
pub fn row_label(backbone: &str, shots: usize) -> String {
    if shots == 0 {
        format!("{backbone}-zero-shot")
    } else {
        format!("{backbone}-ICL")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_what_ran() {
        assert_eq!(
            backbone_label("/m/SmolLM2-135M-Instruct/", true),
            "SmolLM2-135M-Instruct"
        );
        assert_eq!(backbone_label("scratch", false), "untrained-scratch-Llama");
        assert_eq!(
            row_label("SmolLM2-135M-Instruct", 2),
            "SmolLM2-135M-Instruct-ICL"
        );
        assert_eq!(row_label("x", 0), "x-zero-shot");
    }
}
