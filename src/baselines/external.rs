//! The external-LLM row with in-context examples (the paper's GPT4-ICL): the `[judge]`
//! endpoint (any OpenAI-compatible server, through [`crate::openai`]) answers the behaviour form
//! of the evaluated records after `icl_examples` training examples of the same task, written
//! into one user message. Answers are cached in the store like the judge's. It runs only when
//! the spec enables the judge endpoint (`[judge] enabled = true`); otherwise the row is skipped
//! with a notice. An endpoint returns text, not logits, so T3 reads the answer's leading
//! Yes/No and T1 scores the answer as a one-item list.

use crate::alignment::Task;
use crate::alignment::record::TaskRecord;
use crate::data::Dataset;
use crate::error::Result;
use crate::eval::{Scored, label_titles, metrics};
use crate::openai::{Endpoint, ask_all};
use crate::pipeline::StageContext;

/// The system message (the original's `gpt_api.py`).
pub const SYSTEM: &str = "You are a helpful assistant. \n";

/// The row label: the endpoint's model name with "-ICL".
pub fn label(endpoint: &Endpoint) -> String {
    format!("{}-ICL", endpoint.model.replace(char::is_whitespace, "-"))
}

/// One user message: the examples, then the question.
pub fn icl_message(examples: &[&TaskRecord], question: &str) -> String {
    let mut text = String::new();
    for (k, e) in examples.iter().enumerate() {
        text.push_str(&format!(
            "Example {}:\n{}\nAnswer: {}\n\n",
            k + 1,
            e.question,
            e.answer
        ));
    }
    text.push_str("Now answer in the same way:\n");
    text.push_str(question);
    text
}

/// Scores one answer text with the evaluation metrics.
pub fn score_text(task: Task, r: &TaskRecord, answer: &str, ds: &Dataset, sep: &str) -> Scored {
    let answer = answer.trim().to_string();
    let values = match task {
        Task::Uid2Next => {
            let (hit, ndcg) = metrics::hit_ndcg_at_k(std::slice::from_ref(&answer), &r.answer, 5);
            vec![("hit@5", hit), ("ndcg@5", ndcg)]
        }
        Task::UidIid2Rank => vec![(
            "ndcg@5",
            metrics::ranking_ndcg(&answer, &label_titles(r, ds), sep),
        )],
        _ => {
            let yes = metrics::normalize(&answer).starts_with("yes");
            let (y, n) = if yes { (1.0, 0.0) } else { (0.0, 1.0) };
            vec![("acc", metrics::binary_correct(&r.answer, y, n))]
        }
    };
    Scored {
        predictions: vec![answer],
        values,
    }
}

/// Asks the endpoint for every record of `shown` (behaviour form) with examples from `pool`.
#[allow(clippy::too_many_arguments)]
pub fn answer(
    ctx: &StageContext<'_>,
    endpoint: &Endpoint,
    sep: &str,
    task: Task,
    shown: &[TaskRecord],
    pool: &[TaskRecord],
    shots: usize,
    ds: &Dataset,
    seed: u64,
) -> Result<Vec<Scored>> {
    let mut rng = super::task_rng(seed, task);
    let prompts: Vec<String> = shown
        .iter()
        .map(|r| {
            let picks: Vec<&TaskRecord> = if pool.len() >= shots {
                rand::seq::index::sample(&mut rng, pool.len(), shots)
                    .into_iter()
                    .map(|k| &pool[k])
                    .collect()
            } else {
                pool.iter().collect()
            };
            icl_message(&picks, &r.question)
        })
        .collect();
    let bar = ctx
        .progress
        .bar(prompts.len() as u64, format!("baselines external {task}"));
    let answers = ask_all(endpoint, Some(SYSTEM), &prompts, ctx.cache, &|| bar.inc(1))?;
    bar.finish_and_clear();
    Ok(shown
        .iter()
        .zip(&answers)
        .map(|(r, a)| score_text(task, r, a, ds, sep))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_answers_are_read_from_their_first_word() {
        let ds = Dataset::default();
        let r = TaskRecord {
            task: Task::UidIid2Binary,
            question: "q".into(),
            answer: "Yes".into(),
            slots: vec![],
            uid: Some(1),
            iid: 1,
            target: Some(2),
            candidates: vec![],
            ranking: vec![],
            history: vec![],
            item_tokens: vec![],
            template_set: "uidiid2binary".into(),
            template: 0,
        };
        let s = score_text(Task::UidIid2Binary, &r, " Yes, because ...", &ds, "; ");
        assert_eq!(s.values, vec![("acc", 1.0)]);
        let s = score_text(Task::UidIid2Binary, &r, "No.", &ds, "; ");
        assert_eq!(s.values, vec![("acc", 0.0)]);
        let m = icl_message(&[&r], "Will she?");
        assert!(m.starts_with("Example 1:\nq\nAnswer: Yes\n\n") && m.ends_with("Will she?"));
    }
}
