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
