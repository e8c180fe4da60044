//! Target recommender stage: SASRec and MF in burn, trained, evaluated and exported.
//!
//! (Starting version: the section type and the top-file format shared with the alignment stage.)

pub mod top_file;

use serde::{Deserialize, Serialize};

use crate::spec::{SeedSetting, Validate, Validator};

crate::spec_enum! {
    /// The target model family.
    pub enum ModelKind ("recommender model") { Sasrec = "sasrec", Mf = "mf" }
}

/// `[recommender]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommenderSection {
    pub model: ModelKind,
    pub seed: SeedSetting,
}

impl Default for RecommenderSection {
    fn default() -> Self {
        RecommenderSection {
            model: ModelKind::Sasrec,
            seed: SeedSetting::Fixed(3418),
        }
    }
}

impl Validate for RecommenderSection {
    fn validate(&self, _v: &mut Validator) {}
}
