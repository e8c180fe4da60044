//! How users, items and candidate lists appear in a prompt in each mode (spec §3.2).
//!
//! | slot | behaviour / none | intention | both (hybrid) |
//! |---|---|---|---|
//! | user | history titles joined by the separator | `<user>` | `<user>` + titles, no space |
//! | item | title | `<item>` | `<item>` + title |
//! | candidates | titles joined | `<item>` × n, no separator | `<item>T1; <item>T2; ...` |
//!
//! The placeholder tokens are written literally; the LLM stage adds the recommender's
//! embeddings onto them, so each record also lists the ids behind its `<item>` tokens in prompt
//! order ([`Renderer::item_tokens`]).

use super::record::TaskRecord;
use super::templates::{Templates, fill};
use super::{Mode, Task};
use crate::data::Dataset;
use crate::error::{Error, Result};

/// The user placeholder token.
pub const USER_TOKEN: &str = "<user>";
/// The item placeholder token.
pub const ITEM_TOKEN: &str = "<item>";

/// Renders slots for one dataset, mode and separator.
#[derive(Debug, Clone, Copy)]
pub struct Renderer<'a> {
    pub ds: &'a Dataset,
    pub mode: Mode,
    pub separator: &'a str,
}

impl<'a> Renderer<'a> {
    pub fn new(ds: &'a Dataset, mode: Mode, separator: &'a str) -> Self {
        Renderer {
            ds,
            mode,
            separator,
        }
    }

    /// The item's title.
    pub fn title(&self, iid: u32) -> &'a str {
        self.ds.title(iid)
    }

    /// Titles joined by the separator (history lists, ranking answers).
    pub fn titles(&self, ids: &[u32]) -> String {
        self.title_list(ids).join(self.separator)
    }

    /// Titles as a list (the explanation records' `history` field).
    pub fn title_list(&self, ids: &[u32]) -> Vec<String> {
        ids.iter().map(|&i| self.title(i).to_string()).collect()
    }

    /// The user slot for a history (already cut to the items before the target).
    pub fn user(&self, history: &[u32]) -> String {
        match self.mode {
            Mode::Intention => USER_TOKEN.to_string(),
            Mode::Both => format!("{USER_TOKEN}{}", self.titles(history)),
            Mode::Behaviour | Mode::None => self.titles(history),
        }
    }

    /// The user slot of tasks whose answer is the history itself (`uid2hist`): the token only,
    /// in intention and hybrid mode alike.
    pub fn user_token_only(&self) -> String {
        USER_TOKEN.to_string()
    }

    /// The item slot.
    pub fn item(&self, iid: u32) -> String {
        match self.mode {
            Mode::Intention => ITEM_TOKEN.to_string(),
            Mode::Both => format!("{ITEM_TOKEN}{}", self.title(iid)),
            Mode::Behaviour | Mode::None => self.title(iid).to_string(),
        }
    }

    /// The item slot of tasks that must not show the title (`iid2title`): the token only.
    pub fn item_token_only(&self) -> String {
        ITEM_TOKEN.to_string()
    }

    /// The candidate list of a ranking prompt, in prompt order.
    pub fn candidates(&self, ids: &[u32]) -> String {
        match self.mode {
            Mode::Intention => ITEM_TOKEN.repeat(ids.len()),
            Mode::Both => ids
                .iter()
                .map(|&i| format!("{ITEM_TOKEN}{}", self.title(i)))
                .collect::<Vec<_>>()
                .join(self.separator),
            Mode::Behaviour | Mode::None => self.titles(ids),
        }
    }

    /// The ids behind the `<item>` tokens of a prompt whose item slots show `ids` (empty in the
    /// text-only modes).
    pub fn item_tokens(&self, ids: &[u32]) -> Vec<u32> {
        if self.mode.uses_tokens() {
            ids.to_vec()
        } else {
            Vec::new()
        }
    }
}

/// The last `max_len` items of `seq` before the first occurrence of `iid` (the SASRec user
/// state of a top-file line). `None` when `iid` is not in `seq`.
pub fn history_before(seq: &[u32], iid: u32, max_len: usize) -> Option<&[u32]> {
    let pos = seq.iter().position(|&x| x == iid)?;
    Some(last_n(&seq[..pos], max_len))
}

/// The last `n` elements of `items`.
pub fn last_n(items: &[u32], n: usize) -> &[u32] {
    &items[items.len().saturating_sub(n)..]
}

/// A top-file task record (`uid2next`, `uidiid2rank`, `uidiid2binary`) rendered again in
/// `r`'s mode: the same user state, items, template draw and answer, with that mode's slots,
/// question and `<item>` ids. This is how the unaligned baselines get the behaviour-form prompt
/// of exactly the records the aligned model answered (in any mode). `None` for other tasks.
pub fn rerender(
    record: &TaskRecord,
    r: &Renderer<'_>,
    templates: &Templates,
) -> Option<TaskRecord> {
    let user = r.user(&record.history);
    let (slots, item_tokens) = match record.task {
        Task::Uid2Next => (vec![user], Vec::new()),
        Task::UidIid2Rank => (
            vec![user, r.candidates(&record.candidates)],
            r.item_tokens(&record.candidates),
        ),
        Task::UidIid2Binary => {
            let target = record.target?;
            (vec![user, r.item(target)], r.item_tokens(&[target]))
        }
        _ => return None,
    };
    let text = templates.set(&record.template_set).get(record.template)?;
    Some(TaskRecord {
        question: fill(text, &slots),
        slots,
        item_tokens,
        ..record.clone()
    })
}

/// Checks that an item id from an input file exists in the dataset.
pub fn check_item(ds: &Dataset, iid: u32, file: &std::path::Path, line: usize) -> Result<()> {
    if iid == 0 || iid as usize > ds.n_items {
        return Err(Error::bad_input(
            file,
            line,
            format!("item id {iid} is outside the dataset's 1..={}", ds.n_items),
        ));
    }
    Ok(())
}

/// Checks that a user id from an input file exists in the dataset.
pub fn check_user(ds: &Dataset, uid: u32, file: &std::path::Path, line: usize) -> Result<()> {
    if uid == 0 || uid as usize > ds.n_users {
        return Err(Error::bad_input(
            file,
            line,
            format!("user id {uid} is outside the dataset's 1..={}", ds.n_users),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ItemMeta;

    fn ds() -> Dataset {
        let titles = ["", "Alpha", "Beta", "Gamma"];
        Dataset {
            n_users: 1,
            n_items: 3,
            sequences: vec![vec![], vec![1, 2, 3]],
            items: titles
                .iter()
                .map(|t| ItemMeta {
                    title: t.to_string(),
                    ..Default::default()
                })
                .collect(),
            user_raw_ids: vec![String::new(), "u".into()],
        }
    }

    #[test]
    fn renders_each_mode() {
        let d = ds();
        let b = Renderer::new(&d, Mode::Behaviour, "; ");
        let i = Renderer::new(&d, Mode::Intention, "; ");
        let h = Renderer::new(&d, Mode::Both, "; ");
        let n = Renderer::new(&d, Mode::None, ", ");
        assert_eq!(b.user(&[1, 2]), "Alpha; Beta");
        assert_eq!(n.user(&[1, 2]), "Alpha, Beta");
        assert_eq!(i.user(&[1, 2]), "<user>");
        assert_eq!(h.user(&[1, 2]), "<user>Alpha; Beta");
        assert_eq!(b.item(3), "Gamma");
        assert_eq!(i.item(3), "<item>");
        assert_eq!(h.item(3), "<item>Gamma");
        assert_eq!(b.candidates(&[3, 1]), "Gamma; Alpha");
        assert_eq!(i.candidates(&[3, 1]), "<item><item>");
        assert_eq!(h.candidates(&[3, 1]), "<item>Gamma; <item>Alpha");
        assert_eq!(i.item_tokens(&[3, 1]), vec![3, 1]);
        assert!(b.item_tokens(&[3, 1]).is_empty());
    }

    #[test]
    fn cuts_history_before_the_first_occurrence() {
        let seq = [5, 6, 7, 8, 6, 9];
        assert_eq!(history_before(&seq, 8, 9), Some(&[5, 6, 7][..]));
        assert_eq!(history_before(&seq, 8, 2), Some(&[6, 7][..]));
        assert_eq!(history_before(&seq, 6, 9), Some(&[5][..]));
        assert_eq!(history_before(&seq, 5, 9), Some(&[][..]));
        assert_eq!(history_before(&seq, 4, 9), None);
    }

    #[test]
    fn rerendering_keeps_the_record_and_changes_only_the_form() {
        let d = ds();
        let t = Templates::builtin();
        let h = Renderer::new(&d, Mode::Both, "; ");
        let b = Renderer::new(&d, Mode::Behaviour, "; ");
        let slots = vec![h.user(&[1]), h.candidates(&[3, 2])];
        let text = &t.set("uidiid2rank")[1];
        let both = TaskRecord {
            task: Task::UidIid2Rank,
            question: fill(text, &slots),
            answer: "Beta; Gamma".into(),
            slots,
            uid: Some(1),
            iid: 2,
            target: None,
            candidates: vec![3, 2],
            ranking: vec![2, 3],
            history: vec![1],
            item_tokens: vec![3, 2],
            template_set: "uidiid2rank".into(),
            template: 1,
        };
        let again = rerender(&both, &b, &t).unwrap();
        assert_eq!(again.slots, vec!["Alpha".to_string(), "Gamma; Beta".into()]);
        assert_eq!(again.question, fill(text, &again.slots));
        assert!(again.item_tokens.is_empty() && !again.question.contains("<item>"));
        assert_eq!(
            (&again.answer, &again.ranking),
            (&both.answer, &both.ranking)
        );
        assert_eq!(rerender(&again, &h, &t).unwrap(), both, "and back");
    }
}
