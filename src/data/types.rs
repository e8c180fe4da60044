//! The typed, in-memory dataset every later stage consumes.
//!
//! Ids follow RecExplainer: users `1..=n_users`, items `1..=n_items`, id 0 is padding, so index 0
//! of `sequences` and `items` is a placeholder. Sequences are chronological.

use serde::{Deserialize, Serialize};

/// One item's cleaned metadata (spec §1.3 step 8).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemMeta {
    /// The raw id in the source (ASIN, MovieLens movieId, ...); empty for padding.
    pub raw_id: String,
    pub title: String,
    pub brand: Option<String>,
    pub features: Vec<String>,
    pub description: Vec<String>,
    pub categories: Vec<String>,
}

/// A filtered, re-indexed interaction dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Users are `1..=n_users`.
    pub n_users: usize,
    /// Items are `1..=n_items`.
    pub n_items: usize,
    /// `sequences[uid]` is user uid's chronological item list; `sequences[0]` is empty.
    pub sequences: Vec<Vec<u32>>,
    /// `items[iid]` is item iid's metadata; `items[0]` is the padding placeholder.
    pub items: Vec<ItemMeta>,
    /// `user_raw_ids[uid]` is the source's user id; index 0 is empty.
    pub user_raw_ids: Vec<String>,
}

impl Dataset {
    /// Total number of interactions.
    pub fn n_interactions(&self) -> usize {
        self.sequences.iter().map(Vec::len).sum()
    }

    /// Users in id order with their sequences (skips the padding slot).
    pub fn users(&self) -> impl Iterator<Item = (u32, &[u32])> {
        self.sequences
            .iter()
            .enumerate()
            .skip(1)
            .map(|(uid, seq)| (uid as u32, seq.as_slice()))
    }

    pub fn title(&self, iid: u32) -> &str {
        &self.items[iid as usize].title
    }
}

/// One leave-one-out target: `item` at position `pos` of `user`'s sequence. The user's state
/// for this target is the history `sequence[..pos]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub user: u32,
    pub item: u32,
    pub pos: usize,
}

/// The leave-one-out split of spec §1.4, computed from the sequences (so it can never disagree
/// with them): train targets are `items[1..n-1]` (the first item is only ever history), valid and
/// test are both the last item (RecExplainer early-stops on the test item, spec §9 quirk 6).
impl Dataset {
    /// User `uid`'s chronological sequence.
    pub fn sequence(&self, uid: u32) -> &[u32] {
        &self.sequences[uid as usize]
    }

    /// Training targets in user order, then position order (the rows of `train.tsv` and
    /// `train_ids.csv`).
    pub fn train_targets(&self) -> impl Iterator<Item = Target> + '_ {
        self.users().flat_map(|(user, seq)| {
            let end = seq.len().saturating_sub(1);
            (1..end).map(move |pos| Target {
                user,
                item: seq[pos],
                pos,
            })
        })
    }

    /// One test target per user with a non-empty sequence: the last item (`test.tsv`,
    /// `test_ids.csv`).
    pub fn test_targets(&self) -> impl Iterator<Item = Target> + '_ {
        self.users()
            .filter(|(_, seq)| !seq.is_empty())
            .map(|(user, seq)| Target {
                user,
                item: seq[seq.len() - 1],
                pos: seq.len() - 1,
            })
    }

    /// Validation targets: identical to the test targets, as in the original.
    pub fn valid_targets(&self) -> impl Iterator<Item = Target> + '_ {
        self.test_targets()
    }

    /// The history a recommender sees for `target`: everything before it.
    pub fn history(&self, target: &Target) -> &[u32] {
        &self.sequence(target.user)[..target.pos]
    }

    /// The history strictly before the first occurrence of `item` in `user`'s sequence (how
    /// `data4Exp.py` defines the user state, spec §1.6); the whole sequence if `item` is absent.
    pub fn history_before_first(&self, user: u32, item: u32) -> &[u32] {
        let seq = self.sequence(user);
        let pos = seq.iter().position(|&i| i == item).unwrap_or(seq.len());
        &seq[..pos]
    }
}
