//! The alignment records, their JSON Lines files, and the export to the original's schema.
//!
//! Our records carry everything the LLM stage needs without re-deriving it: the rendered
//! question, the ids behind each placeholder token (`history` for `<user>`, `item_tokens` for
//! `<item>` in prompt order) and which template was drawn. The export to the original JSON
//! schema (spec §3.1: `type`, `template` {USER, ASSISTANT}, `question` string or 2-list,
//! `answer`, `uid`, `iid`, `target`, `topk`) lets the same data be fed to RecAI's trainer or
//! compared with its files.

use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Mode, Task, Templates};
use crate::error::{Error, IoContext, Result};

/// One task prompt with its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    #[serde(rename = "type")]
    pub task: Task,
    /// The rendered user-side prompt (template filled with the slots).
    pub question: String,
    pub answer: String,
    /// The slot texts (`{0}`, and `{1}` for two-slot tasks) as rendered for the mode.
    pub slots: Vec<String>,
    /// The user, for user tasks; `None` for item tasks.
    pub uid: Option<u32>,
    /// Item tasks: the item. User tasks: the interaction whose preceding history is the user
    /// state; -1 = the full history.
    pub iid: i64,
    /// The item asked about (`uidiid2binary`).
    pub target: Option<u32>,
    /// The ranking candidates in prompt order (`uidiid2rank`), else empty.
    pub candidates: Vec<u32>,
    /// The same candidates in the target recommender's order, the order the answer lists
    /// (`uidiid2rank`), else empty. The metric's label list is built from these ids, not from
    /// the answer text, so a title containing the separator stays one label (spec §5.3).
    pub ranking: Vec<u32>,
    /// The user's history behind `<user>` / the user slot (at most `max_hist_len` ids, oldest
    /// first); empty for item tasks.
    pub history: Vec<u32>,
    /// The ids behind the prompt's `<item>` tokens, in order; empty in the text-only modes.
    pub item_tokens: Vec<u32>,
    /// The template set the paraphrase was drawn from, and its index there.
    pub template_set: String,
    pub template: usize,
}

impl TaskRecord {
    /// The item ids behind a list answer, in answer order: the target's ranking for
    /// `uidiid2rank`, the history for `uid2hist`; `None` for single-answer tasks.
    pub fn label_ids(&self) -> Option<&[u32]> {
        match self.task {
            Task::UidIid2Rank => Some(&self.ranking),
            Task::Uid2Hist => Some(&self.history),
            _ => None,
        }
    }
}

/// One ShareGPT turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatTurn {
    pub from: String,
    pub value: String,
}

/// A general conversation (task 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRecord {
    /// The source's conversation id (empty when it had none).
    pub id: String,
    pub conversations: Vec<ChatTurn>,
}

/// A line of `train.jsonl` / `valid.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AlignmentRecord {
    Task(TaskRecord),
    Chat(ChatRecord),
}

impl AlignmentRecord {
    /// The original's `type` value: the task name, or `sharegpt`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AlignmentRecord::Task(t) => t.task.as_str(),
            AlignmentRecord::Chat(_) => "sharegpt",
        }
    }
}

/// An explanation prompt (spec §3.7): will the user like `target`, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainRecord {
    pub mode: Mode,
    pub question: String,
    pub slots: Vec<String>,
    pub uid: u32,
    pub iid: i64,
    pub target: u32,
    /// The target model's decision: "Yes" for its positive item, "No" for its negative item.
    pub label: String,
    /// The target model's raw score for `target` (the score predictor's regression label).
    pub score: f32,
    /// History ids (at most `max_hist_len`, oldest first) and their titles.
    pub history: Vec<u32>,
    pub history_titles: Vec<String>,
    pub target_title: String,
    pub item_tokens: Vec<u32>,
}

/// The template text of a record.
fn template_json(user: &str) -> Value {
    json!({ "USER": user, "ASSISTANT": "{0}" })
}

/// The original's `question`: a string for one slot, a 2-list for two.
fn question_json(slots: &[String]) -> Value {
    match slots {
        [one] => Value::String(one.clone()),
        many => json!(many),
    }
}

/// One record in the original's JSON schema (spec §3.1 / §1.9).
pub fn to_original(record: &AlignmentRecord, templates: &Templates) -> Value {
    match record {
        AlignmentRecord::Chat(c) => json!({ "conversations": c.conversations, "type": "sharegpt" }),
        AlignmentRecord::Task(t) => {
            let user = &templates.set(&t.template_set)[t.template];
            let mut v = json!({
                "type": t.task.as_str(),
                "template": template_json(user),
                "question": question_json(&t.slots),
                "answer": t.answer,
                "iid": t.iid,
            });
            let obj = v.as_object_mut().expect("built as an object");
            if let Some(uid) = t.uid {
                obj.insert("uid".into(), json!(uid));
            }
            if let Some(target) = t.target {
                obj.insert("target".into(), json!(target));
            }
            if t.task == Task::UidIid2Rank {
                obj.insert("topk".into(), json!(t.candidates));
            }
            v
        }
    }
}

/// An explanation record in the original's schema (`type` = `uidiid2explan`, `answer` =
/// [label, history titles, target title]).
pub fn explain_to_original(record: &ExplainRecord, templates: &Templates) -> Value {
    json!({
        "uid": record.uid,
        "iid": record.iid,
        "target": record.target,
        "question": question_json(&record.slots),
        "answer": [record.label, record.history_titles, record.target_title],
        "template": template_json(&templates.explain),
        "type": "uidiid2explan",
    })
}

/// Writes a JSON list (the original's `json.dump` files).
pub fn write_json_list(path: &Path, values: impl Iterator<Item = Value>) -> Result<()> {
    let file = std::fs::File::create(path).at(path)?;
    let mut w = BufWriter::new(file);
    w.write_all(b"[").at(path)?;
    for (i, v) in values.enumerate() {
        if i > 0 {
            w.write_all(b", ").at(path)?;
        }
        serde_json::to_writer(&mut w, &v).map_err(|e| Error::io(path, e.into()))?;
    }
    w.write_all(b"]").at(path)?;
    w.flush().at(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::{read_jsonl, write_jsonl};

    fn rank_record() -> TaskRecord {
        TaskRecord {
            task: Task::UidIid2Rank,
            question: "q".into(),
            answer: "A; B".into(),
            slots: vec!["<user>".into(), "<item><item>".into()],
            uid: Some(4),
            iid: 17,
            target: None,
            candidates: vec![9, 3],
            ranking: vec![3, 9],
            history: vec![1, 2],
            item_tokens: vec![9, 3],
            template_set: "uidiid2rank".into(),
            template: 2,
        }
    }

    #[test]
    fn jsonl_round_trips_both_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        let recs = vec![
            AlignmentRecord::Task(rank_record()),
            AlignmentRecord::Chat(ChatRecord {
                id: "x_0".into(),
                conversations: vec![ChatTurn {
                    from: "human".into(),
                    value: "hi".into(),
                }],
            }),
        ];
        write_jsonl(&path, &recs).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("{\"kind\":\"task\",\"type\":\"uidiid2rank\""),
            "{text}"
        );
        assert_eq!(read_jsonl::<AlignmentRecord>(&path).unwrap(), recs);
    }

    #[test]
    fn exports_the_original_schema() {
        let t = Templates::builtin();
        let v = to_original(&AlignmentRecord::Task(rank_record()), &t);
        assert_eq!(v["type"], "uidiid2rank");
        assert_eq!(v["question"], json!(["<user>", "<item><item>"]));
        assert_eq!(v["topk"], json!([9, 3]));
        assert_eq!(v["uid"], 4);
        assert_eq!(v["template"]["ASSISTANT"], "{0}");
        assert_eq!(v["template"]["USER"], t.set("uidiid2rank")[2].as_str());
        assert!(v.get("target").is_none());
    }
}
