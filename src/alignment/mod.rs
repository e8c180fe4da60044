//! Alignment-data stage: the RecExplainer tasks rendered as prompts in each mode.
//!
//! (Starting version: the section type.)

use serde::{Deserialize, Serialize};

use crate::spec::{SeedSetting, Validate, Validator};

crate::spec_enum! {
    /// How users and items appear in prompts (spec §3.2).
    pub enum Mode ("mode") {
        Behaviour = "behaviour",
        Intention = "intention",
        Both = "both",
        None = "none",
    }
}

/// `[alignment]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlignmentSection {
    pub mode: Mode,
    /// Task names; empty = every task of the mode.
    pub tasks: Vec<String>,
    pub seed: SeedSetting,
}

impl Default for AlignmentSection {
    fn default() -> Self {
        AlignmentSection {
            mode: Mode::Both,
            tasks: Vec::new(),
            seed: SeedSetting::Fixed(2023),
        }
    }
}

impl Validate for AlignmentSection {
    fn validate(&self, _v: &mut Validator) {}
}
