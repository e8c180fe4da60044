//! Data stage: read interaction logs and item metadata, filter as RecExplainer does, split.
//!
//! (Starting version: the section type and the dataset contract. The readers, filters and the
//! stage implementation are being built in this module.)

mod types;

use serde::{Deserialize, Serialize};

pub use types::{Dataset, ItemMeta};

use crate::spec::{SeedSetting, Validate, Validator};

/// `[data]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// Folder (or file) of the source data, relative to the spec file.
    pub path: String,
    pub seed: SeedSetting,
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            path: String::new(),
            seed: SeedSetting::Fixed(2023),
        }
    }
}

impl Validate for DataSection {
    fn validate(&self, _v: &mut Validator) {}
}
