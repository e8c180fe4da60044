//! Alignment-data stage: the RecExplainer tasks rendered as prompts in each mode.
//!
//! RecExplainer teaches an LLM to imitate a target recommender by fine-tuning it on prompts whose
//! answers come from that recommender (its top-1 item, its ranking of five candidates, its
//! yes/no on a high- and a low-scored item) and from the catalogue (titles, features, ...). This
//! module turns the data stage's [`Dataset`](crate::data::Dataset) and the recommender stage's
//! exports (`train_top.txt`, `test_top.txt`, `sim_item.txt`) into those prompts, following the
//! spec's §3 rules for which lines feed which task and split.
//!
//! The same records are rendered in one of four [`Mode`]s (spec §3.2): users and items appear as
//! titles (behaviour), as placeholder tokens whose embeddings come from the recommender
//! (intention), or as both. `none` renders the behaviour prompts for the unaligned baseline.
//!
//! Module map:
//! - [`templates`]: the prompt paraphrases, a hashed data file (`data/templates/alignment.toml`);
//! - [`render`]: how a user, an item or a candidate list appears in each mode;
//! - [`record`]: the JSON Lines records and the export to the original trainer's JSON schema;
//! - [`tasks`]: the task generators (SASRec and MF rules);
//! - [`explain`]: the explanation prompts of §3.7;
//! - [`sharegpt`]: the general-conversation mix-in (task 5), read from a truncated file;
//! - [`tokens`]: the default token-count estimate used until an LLM tokenizer is wired in;
//! - [`stage`]: [`AlignmentDataStage`], the pipeline stage.

pub mod explain;
pub mod record;
pub mod render;
pub mod sharegpt;
pub mod stage;
pub mod tasks;
pub mod templates;
pub mod tokens;

use serde::{Deserialize, Serialize};

use crate::spec::{SeedSetting, Validate, Validator, limits};

pub use record::{AlignmentRecord, ChatRecord, ChatTurn, ExplainRecord, TaskRecord};
pub use render::Renderer;
pub use stage::AlignmentDataStage;
pub use tasks::{Generator, Split, TaskData, TopInputs};
pub use templates::Templates;

crate::spec_enum! {
    /// Where the `uid2summary` answers (LLM-written user summaries, spec §1.8) come from.
    pub enum SummarySource ("summary source") {
        /// None: the task is left out with a notice.
        Off = "off",
        /// The `[judge]` endpoint writes them (GPT-4 in the paper), cached in the store.
        Judge = "judge",
    }
}

crate::spec_enum! {
    /// How users and items appear in prompts (spec §3.2).
    pub enum Mode ("mode") {
        Behaviour = "behaviour",
        Intention = "intention",
        Both = "both",
        None = "none",
    }
}

impl Mode {
    /// Whether prompts carry `<user>` / `<item>` placeholder tokens.
    pub fn uses_tokens(self) -> bool {
        matches!(self, Mode::Intention | Mode::Both)
    }

    /// Whether prompts carry the titles (behaviour text).
    pub fn uses_titles(self) -> bool {
        !matches!(self, Mode::Intention)
    }
}

crate::spec_enum! {
    /// The alignment tasks (spec §3.3), by the original's record `type` names.
    pub enum Task ("alignment task") {
        /// Task 4: item title from the item (intention / hybrid only).
        Iid2Title = "iid2title",
        /// Task 4: item features from the item.
        Iid2Feature = "iid2feature",
        /// Task 4: the item title from its features (behaviour only).
        Feature2Iid = "feature2iid",
        /// Task 4: item description from the item.
        Iid2Description = "iid2description",
        /// Task 4: the item title from its description (behaviour only).
        Description2Iid = "description2iid",
        /// Task 4: item brand from the item.
        Iid2Brand = "iid2brand",
        /// Task 4: the recommender's most similar item.
        Iid2Sim = "iid2sim",
        /// Task 6: history titles from the user (intention / hybrid only).
        Uid2Hist = "uid2hist",
        /// Task 6: an LLM-written preference summary of the user.
        Uid2Summary = "uid2summary",
        /// Task 1: the recommender's next item.
        Uid2Next = "uid2next",
        /// Task 2: the recommender's order of five candidates.
        UidIid2Rank = "uidiid2rank",
        /// Task 3: yes for a top-20 % item, no for a bottom-50 % item.
        UidIid2Binary = "uidiid2binary",
    }
}

impl Task {
    /// The task's number in the paper (Table B2): 1 next item, 2 ranking, 3 interest
    /// classification, 4 item discrimination, 6 history reconstruction (5 is ShareGPT).
    pub fn paper_task(self) -> u8 {
        match self {
            Task::Uid2Next => 1,
            Task::UidIid2Rank => 2,
            Task::UidIid2Binary => 3,
            Task::Uid2Hist | Task::Uid2Summary => 6,
            _ => 4,
        }
    }

    /// Whether the task exists in `mode`. Behaviour prompts cannot ask for a title that is
    /// already in the question (`iid2title`, `uid2hist`); the reverse text→item tasks exist only
    /// in behaviour mode because the item token would not appear in them.
    pub fn in_mode(self, mode: Mode) -> bool {
        match self {
            Task::Iid2Title | Task::Uid2Hist => mode.uses_tokens(),
            Task::Feature2Iid | Task::Description2Iid => !mode.uses_tokens(),
            _ => true,
        }
    }

    /// Every task of `mode`, in generation order.
    pub fn all_in_mode(mode: Mode) -> Vec<Task> {
        Task::ALL
            .iter()
            .copied()
            .filter(|t| t.in_mode(mode))
            .collect()
    }

    /// Number of template slots: `{0}` only, or `{0}` and `{1}`.
    pub fn slots(self) -> usize {
        match self {
            Task::UidIid2Rank | Task::UidIid2Binary => 2,
            _ => 1,
        }
    }
}

/// `[alignment]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlignmentSection {
    pub mode: Mode,
    /// Task names; empty = every task of the mode.
    pub tasks: Vec<Task>,
    pub seed: SeedSetting,
    /// Joins titles in histories, candidate lists and list answers ([v2] "; ", [v1] ", ").
    pub separator: String,
    /// History length shown for a user (the SASRec `max_seq_len`).
    pub max_hist_len: usize,
    /// Prompt-template file, relative to the spec; empty = the built-in
    /// `data/templates/alignment.toml`.
    pub templates: String,
    /// The `feature2iid` / `description2iid` questions are cut to this many tokens
    /// (the original: `model_max_length - 200`).
    pub text_max_tokens: usize,
    /// ShareGPT file (`ShareGPT_V3_unfiltered_cleaned_split.json`), relative to the spec; empty =
    /// the copy `recx assets fetch sharegpt` keeps in the cache (or `$RECX_SHAREGPT`).
    pub sharegpt_path: String,
    /// ShareGPT conversations mixed into train / valid (SASRec 10,000 / 1,000; MF used
    /// 9,000 / 900); 0 and 0 turn the mix-in off.
    pub sharegpt_train: usize,
    pub sharegpt_valid: usize,
    /// Conversations whose first human message is longer than this many tokens are dropped
    /// (the original: `model_max_length - 300`).
    pub sharegpt_max_prompt_tokens: usize,
    /// Also write the records in RecAI's JSON schema under `original/` (for its trainer).
    pub export_original: bool,
    /// Who writes the `uid2summary` answers.
    pub summaries: SummarySource,
}

impl Default for AlignmentSection {
    fn default() -> Self {
        AlignmentSection {
            mode: Mode::Both,
            tasks: Vec::new(),
            seed: SeedSetting::Fixed(2023),
            separator: "; ".into(),
            max_hist_len: 9,
            templates: String::new(),
            text_max_tokens: 824,
            sharegpt_path: String::new(),
            sharegpt_train: 10_000,
            sharegpt_valid: 1_000,
            sharegpt_max_prompt_tokens: 724,
            export_original: false,
            summaries: SummarySource::Off,
        }
    }
}

impl AlignmentSection {
    /// The tasks this section generates, in generation order.
    pub fn active_tasks(&self) -> Vec<Task> {
        if self.tasks.is_empty() {
            Task::all_in_mode(self.mode)
        } else {
            Task::ALL
                .iter()
                .copied()
                .filter(|t| self.tasks.contains(t))
                .collect()
        }
    }

    /// Whether the user summaries must be written by an LLM for this run.
    pub fn wants_summaries(&self) -> bool {
        self.summaries == SummarySource::Judge && self.active_tasks().contains(&Task::Uid2Summary)
    }

    /// Whether any ShareGPT conversation is asked for.
    pub fn wants_sharegpt(&self) -> bool {
        self.sharegpt_train + self.sharegpt_valid > 0
    }
}

impl Validate for AlignmentSection {
    fn validate(&self, v: &mut Validator) {
        for task in &self.tasks {
            v.check(task.in_mode(self.mode), "tasks", || {
                format!("task {task} does not exist in {} mode", self.mode)
            });
        }
        let mut sorted = self.tasks.clone();
        sorted.sort_unstable();
        sorted.dedup();
        v.check(sorted.len() == self.tasks.len(), "tasks", || {
            "tasks repeat".into()
        });
        v.check(!self.separator.is_empty(), "separator", || {
            "must not be empty".into()
        });
        v.count("max_hist_len", self.max_hist_len, 1, limits::MAX_TOKENS);
        v.count(
            "text_max_tokens",
            self.text_max_tokens.max(1),
            1,
            limits::MAX_TOKENS,
        );
        v.count(
            "sharegpt_train",
            self.sharegpt_train,
            0,
            limits::MAX_ENTITIES,
        );
        v.count(
            "sharegpt_valid",
            self.sharegpt_valid,
            0,
            limits::MAX_ENTITIES,
        );
        v.check(self.text_max_tokens > 0, "text_max_tokens", || {
            "must be at least 1".into()
        });
        v.check(
            self.sharegpt_max_prompt_tokens > 0,
            "sharegpt_max_prompt_tokens",
            || "must be at least 1".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_per_mode_follow_the_original() {
        let b = Task::all_in_mode(Mode::Behaviour);
        assert!(!b.contains(&Task::Iid2Title) && !b.contains(&Task::Uid2Hist));
        assert!(b.contains(&Task::Feature2Iid) && b.contains(&Task::Description2Iid));
        assert_eq!(Task::all_in_mode(Mode::None), b);
        let i = Task::all_in_mode(Mode::Intention);
        assert!(i.contains(&Task::Iid2Title) && i.contains(&Task::Uid2Hist));
        assert!(!i.contains(&Task::Feature2Iid));
        assert_eq!(Task::all_in_mode(Mode::Both), i);
    }

    #[test]
    fn validation_rejects_tasks_outside_the_mode() {
        let s = AlignmentSection {
            mode: Mode::Behaviour,
            tasks: vec![Task::Uid2Next, Task::Uid2Hist],
            ..Default::default()
        };
        let mut v = Validator::default();
        s.validate(&mut v);
        let issues = v.into_issues();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].1.contains("uid2hist"), "{issues:?}");
    }

    #[test]
    fn parses_task_names_and_names_a_bad_one() {
        let s: AlignmentSection =
            toml::from_str("tasks = [\"uid2next\", \"uidiid2rank\"]").unwrap();
        assert_eq!(s.active_tasks(), vec![Task::Uid2Next, Task::UidIid2Rank]);
        let err = toml::from_str::<AlignmentSection>("tasks = [\"uid2nxt\"]").unwrap_err();
        assert!(err.to_string().contains("unknown alignment task"), "{err}");
    }
}
