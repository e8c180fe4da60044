//! Alignment records as token sequences: the chat-templated text, which tokens the loss covers
//! (spec §4.5), and where the `<user>`/`<item>` placeholders sit with the recommender vectors
//! behind them (§4.3).

use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

use crate::alignment::record::{AlignmentRecord, TaskRecord};
use crate::error::{Error, Result};
use crate::llm::chat::{ChatTemplate, Role, Turn};
use crate::llm::tokenizer::{Placeholders, Tokenizer};
use crate::recommender::{Query, TrainedRecommender};

/// One tokenized record.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The record's `type` (task name or `sharegpt`).
    pub task: &'static str,
    /// Index of the record in its split file.
    pub record: usize,
    pub ids: Vec<u32>,
    /// Training samples: which tokens the loss covers. Prompts: all false.
    pub loss_mask: Vec<bool>,
    /// Positions of `<user>` tokens.
    pub user_tokens: Vec<usize>,
    /// Row of the user-feature table for this record's user state.
    pub user_row: Option<usize>,
    /// Positions of `<item>` tokens with the item id behind each.
    pub item_tokens: Vec<(usize, u32)>,
}

/// Turns records into samples for one tokenizer and chat template.
pub struct SampleBuilder<'a> {
    pub tokenizer: &'a Tokenizer,
    pub template: &'a ChatTemplate,
    /// Set when the mode injects embeddings.
    pub placeholders: Option<Placeholders>,
    /// Training sequences are cut to this many tokens (`model_max_length`).
    pub max_len: usize,
}

impl SampleBuilder<'_> {
    /// A training sample, or `None` when truncation left no answer token (the original
    /// resamples such records; we leave them out and count them).
    pub fn training(
        &self,
        record: &AlignmentRecord,
        index: usize,
        user_row: Option<usize>,
    ) -> Result<Option<Sample>> {
        let turns = match record {
            AlignmentRecord::Task(t) => {
                vec![
                    Turn::user(t.question.clone()),
                    Turn::assistant(t.answer.clone()),
                ]
            }
            AlignmentRecord::Chat(c) => c
                .conversations
                .iter()
                .filter_map(|turn| {
                    Role::from_sharegpt(&turn.from).map(|role| Turn {
                        role,
                        text: turn.value.clone(),
                    })
                })
                .collect(),
        };
        let sample = match self.template.training_sample(self.tokenizer, &turns) {
            Ok(s) => s,
            // A ShareGPT conversation whose turns do not alternate is left out, not fatal.
            Err(_) if matches!(record, AlignmentRecord::Chat(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let n = sample.ids.len().min(self.max_len);
        if !sample.loss_mask[1.min(n)..n].iter().any(|&m| m) {
            return Ok(None);
        }
        let ids = sample.ids[..n].to_vec();
        let loss_mask = sample.loss_mask[..n].to_vec();
        let item_ids = match record {
            AlignmentRecord::Task(t) => t.item_tokens.as_slice(),
            AlignmentRecord::Chat(_) => &[],
        };
        let mut s = Sample {
            task: record.type_name(),
            record: index,
            ids,
            loss_mask,
            user_tokens: Vec::new(),
            user_row,
            item_tokens: Vec::new(),
        };
        self.locate_placeholders(&mut s, item_ids, record_label(record, index))?;
        Ok(Some(s))
    }

    /// The inference prompt of a task record (the conversation up to the assistant header).
    pub fn prompt(
        &self,
        record: &TaskRecord,
        index: usize,
        user_row: Option<usize>,
    ) -> Result<Sample> {
        self.prompt_for(
            record.task.as_str(),
            &record.question,
            &record.item_tokens,
            index,
            user_row,
        )
    }

    /// The inference prompt of any question whose `<item>` tokens stand for `item_ids`.
    pub fn prompt_for(
        &self,
        task: &'static str,
        question: &str,
        item_ids: &[u32],
        index: usize,
        user_row: Option<usize>,
    ) -> Result<Sample> {
        let ids = self.template.prompt_ids(self.tokenizer, question)?;
        let mut s = Sample {
            task,
            record: index,
            loss_mask: vec![false; ids.len()],
            ids,
            user_tokens: Vec::new(),
            user_row,
            item_tokens: Vec::new(),
        };
        self.locate_placeholders(&mut s, item_ids, format!("{task} record {index}"))?;
        Ok(s)
    }

    /// Finds the placeholder tokens and pairs each `<item>` with its id, in prompt order. A
    /// training sequence cut short keeps the placeholders that survived.
    fn locate_placeholders(&self, s: &mut Sample, item_ids: &[u32], label: String) -> Result<()> {
        let Some(ph) = self.placeholders else {
            return Ok(());
        };
        let mut items = item_ids.iter();
        for (pos, &id) in s.ids.iter().enumerate() {
            if id == ph.user {
                if s.user_row.is_none() {
                    return Err(Error::Config(format!(
                        "{label}: a <user> token but no user history to embed"
                    )));
                }
                s.user_tokens.push(pos);
            } else if id == ph.item {
                let item = items.next().ok_or_else(|| {
                    Error::Config(format!(
                        "{label}: more <item> tokens than the {} item ids it carries",
                        item_ids.len()
                    ))
                })?;
                s.item_tokens.push((pos, *item));
            }
        }
        Ok(())
    }
}

fn record_label(record: &AlignmentRecord, index: usize) -> String {
    format!("{} record {index}", record.type_name())
}

/// Whether a task record describes a user state (its `<user>` token or user slot).
pub fn has_user(record: &TaskRecord) -> bool {
    record.uid.is_some()
}

/// The frozen recommender's user vectors for `users` (row `k` = `users[k]`), computed in
/// batches of 256: SASRec encodes each history, MF looks the user up. `[n · d]`.
///
/// The original runs SASRec with dropout on while training the LLM (spec §9 quirk 4); we use
/// the deterministic inference-mode vectors, so the same record always gets the same vector.
pub fn user_features<B: Backend>(
    rec: &TrainedRecommender<B>,
    users: &[Query<'_>],
    device: &B::Device,
) -> Vec<f32> {
    let mut out = Vec::new();
    for chunk in users.chunks(256) {
        let t: Tensor<B, 2> = rec.user_embeddings(chunk, device);
        out.extend(t.into_data().iter::<f32>().map(|v| v.elem::<f32>()));
    }
    out
}

/// The recommender query behind a task record's user state.
pub fn query(record: &TaskRecord) -> Query<'_> {
    Query {
        uid: record.uid.unwrap_or(0),
        history: &record.history,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alignment::Task;
    use crate::alignment::record::{ChatRecord, ChatTurn};
    use crate::llm::chat::TemplateName;

    fn tokenizer() -> Tokenizer {
        let template = ChatTemplate::new(TemplateName::Chatml);
        let corpus = [
            "Does the user like <user> Mario Kart? Yes No",
            "history titles",
        ];
        let mut tok = Tokenizer::train_bpe(corpus.iter(), &template.bpe_train_config(400)).unwrap();
        tok.add_placeholders().unwrap();
        tok
    }

    fn record(question: &str, items: Vec<u32>) -> TaskRecord {
        TaskRecord {
            task: Task::Uid2Next,
            question: question.into(),
            answer: "Mario Kart".into(),
            slots: vec![],
            uid: Some(3),
            iid: -1,
            target: None,
            candidates: vec![],
            ranking: vec![],
            history: vec![1, 2],
            item_tokens: items,
            template_set: "t".into(),
            template: 0,
        }
    }

    #[test]
    fn placeholders_are_found_and_paired_with_their_items() {
        let tok = tokenizer();
        let template = ChatTemplate::new(TemplateName::Chatml);
        let ph = tok.placeholders();
        let b = SampleBuilder {
            tokenizer: &tok,
            template: &template,
            placeholders: ph,
            max_len: 512,
        };
        let r = record("The user <user> played <item> and <item>.", vec![7, 9]);
        let s = b
            .training(&AlignmentRecord::Task(r.clone()), 4, Some(0))
            .unwrap()
            .unwrap();
        assert_eq!(s.user_tokens.len(), 1);
        assert_eq!(s.ids[s.user_tokens[0]], ph.unwrap().user);
        assert_eq!(
            s.item_tokens.iter().map(|x| x.1).collect::<Vec<_>>(),
            vec![7, 9]
        );
        assert!(
            s.item_tokens
                .iter()
                .all(|&(p, _)| s.ids[p] == ph.unwrap().item)
        );
        let trained: Vec<u32> = s
            .ids
            .iter()
            .zip(&s.loss_mask)
            .filter(|x| *x.1)
            .map(|x| *x.0)
            .collect();
        let text = tok.decode(&trained, false).unwrap();
        assert!(text.starts_with("Mario Kart"), "{text:?}");

        let p = b.prompt(&r, 4, Some(0)).unwrap();
        assert!(p.loss_mask.iter().all(|&m| !m));
        assert_eq!(p.item_tokens.len(), 2);

        let short = record("The user <user> played <item> and <item>.", vec![7]);
        let err = b.prompt(&short, 5, Some(0)).unwrap_err().to_string();
        assert!(
            err.contains("uid2next record 5") && err.contains("more <item> tokens"),
            "{err}"
        );
    }

    #[test]
    fn truncation_that_removes_the_answer_drops_the_sample() {
        let tok = tokenizer();
        let template = ChatTemplate::new(TemplateName::Chatml);
        let b = SampleBuilder {
            tokenizer: &tok,
            template: &template,
            placeholders: None,
            max_len: 5,
        };
        let r = AlignmentRecord::Task(record("A long question about many games", vec![]));
        assert!(b.training(&r, 0, None).unwrap().is_none());
        let chat = AlignmentRecord::Chat(ChatRecord {
            id: "x".into(),
            conversations: vec![
                ChatTurn {
                    from: "human".into(),
                    value: "hi".into(),
                },
                ChatTurn {
                    from: "gpt".into(),
                    value: "hello".into(),
                },
            ],
        });
        let b = SampleBuilder { max_len: 512, ..b };
        let s = b.training(&chat, 1, None).unwrap().unwrap();
        assert_eq!(s.task, "sharegpt");
        assert!(s.loss_mask.iter().any(|&m| m));
    }
}
