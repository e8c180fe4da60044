//! Data stage: read interaction logs and item metadata, filter as RecExplainer does, split.
//!
//! (The readers, filters and the stage implementation are being built in this module.)

pub mod layout;
pub mod lines;
mod types;

use serde::{Deserialize, Serialize};

pub use lines::OnBadLine;
pub use types::{Dataset, ItemMeta, Target};

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
