//! The interaction log every reader produces before filtering.
//!
//! Readers differ only in how they parse; they all intern raw user and item ids into dense
//! integers and emit events in file order. Stage 1 (`filter::stage1`) then turns the log into
//! sequences exactly as RecExplainer's `data_preprocess_amazon.py` does, whatever the source.

use std::collections::HashMap;

use super::types::{Dataset, ItemMeta};

/// One interaction as read: dense user and item indices and a sortable time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    pub user: u32,
    pub item: u32,
    /// Unix time, or the position in the file when the source has no timestamps.
    pub time: f64,
}

/// A raw log: interned ids, item metadata (an item without metadata has an empty title) and the
/// events in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawLog {
    /// `users[u]` is the raw id of user index `u`.
    pub users: Vec<String>,
    /// `items[i]` is the metadata of item index `i` (`raw_id` always set).
    pub items: Vec<ItemMeta>,
    pub events: Vec<Event>,
}

/// Builds a [`RawLog`], interning ids as they come.
#[derive(Debug, Default)]
pub struct LogBuilder {
    log: RawLog,
    user_index: HashMap<String, u32>,
    item_index: HashMap<String, u32>,
}

impl LogBuilder {
    pub fn user(&mut self, raw: &str) -> u32 {
        if let Some(&u) = self.user_index.get(raw) {
            return u;
        }
        let u = self.log.users.len() as u32;
        self.log.users.push(raw.to_string());
        self.user_index.insert(raw.to_string(), u);
        u
    }

    pub fn item(&mut self, raw: &str) -> u32 {
        if let Some(&i) = self.item_index.get(raw) {
            return i;
        }
        let i = self.log.items.len() as u32;
        self.log.items.push(ItemMeta {
            raw_id: raw.to_string(),
            ..ItemMeta::default()
        });
        self.item_index.insert(raw.to_string(), i);
        i
    }

    /// Stores an item's metadata; a later record for the same raw id replaces an earlier one
    /// (as in the original, where the dict assignment makes the last record win).
    pub fn set_meta(&mut self, meta: ItemMeta) {
        let i = self.item(&meta.raw_id) as usize;
        self.log.items[i] = meta;
    }

    /// Whether metadata (or an interaction) mentioned this raw item id.
    pub fn knows_item(&self, raw: &str) -> bool {
        self.item_index.contains_key(raw)
    }

    pub fn push(&mut self, user: u32, item: u32, time: f64) {
        self.log.events.push(Event { user, item, time });
    }

    pub fn n_events(&self) -> usize {
        self.log.events.len()
    }

    pub fn finish(self) -> RawLog {
        self.log
    }
}

impl RawLog {
    /// The log of an already sequenced dataset: users in id order, each sequence's positions as
    /// times (so re-running stage 1 keeps every sequence's order).
    pub fn from_dataset(ds: &Dataset) -> RawLog {
        let mut events = Vec::with_capacity(ds.n_interactions());
        for (uid, seq) in ds.users() {
            for (pos, &iid) in seq.iter().enumerate() {
                events.push(Event {
                    user: uid - 1,
                    item: iid - 1,
                    time: pos as f64,
                });
            }
        }
        RawLog {
            users: ds.user_raw_ids.iter().skip(1).cloned().collect(),
            items: ds.items.iter().skip(1).cloned().collect(),
            events,
        }
    }
}
