//! `[experiment]`, `[report]` and `[sweep]`, which no stage owns, and the re-exports of the
//! sections the stage modules own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Validate, Validator};

pub use crate::alignment::AlignmentSection;
pub use crate::discriminator::DiscriminatorSection;
pub use crate::eval::EvalSection;
pub use crate::explain::ExplainSection;
pub use crate::judge::JudgeSection;
pub use crate::llm::LlmSection;
pub use crate::train::TrainSection;

/// `[experiment]`: identity of the experiment and the seeds expanded into runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSection {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// One run per seed.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
}

fn default_seeds() -> Vec<u64> {
    vec![2024]
}

impl Default for ExperimentSection {
    fn default() -> Self {
        ExperimentSection {
            name: String::new(),
            description: String::new(),
            seeds: default_seeds(),
        }
    }
}

impl Validate for ExperimentSection {
    fn validate(&self, v: &mut Validator) {
        let ok_name = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        v.check(ok_name, "name", || {
            format!(
                "{:?} is not a valid experiment name; use letters, digits, '-', '_' or '.'",
                self.name
            )
        });
        v.check(!self.seeds.is_empty(), "seeds", || {
            "at least one seed is needed".into()
        });
        let mut sorted = self.seeds.clone();
        sorted.sort_unstable();
        sorted.dedup();
        v.check(sorted.len() == self.seeds.len(), "seeds", || {
            "seeds repeat".into()
        });
    }
}

/// `[report]`: how `recx report` renders this experiment. Does not affect results or hashes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSection {
    /// Output folder name under `reports/`; empty = the experiment name.
    pub name: String,
    /// Include the paper's published numbers beside ours.
    pub paper: bool,
}

impl Validate for ReportSection {
    fn validate(&self, v: &mut Validator) {
        if !self.name.is_empty()
            && let Err(e) = crate::report::check_report_name(&self.name)
        {
            v.error("name", e);
        }
    }
}

/// `[sweep]`: variations of spec keys expanded into several plans (`recx sweep`).
///
/// Keys are dotted spec paths, e.g. `"alignment.mode" = ["behaviour", "intention"]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SweepSection {
    /// Cartesian product over these keys.
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    /// Lists varied together (all the same length).
    pub zip: BTreeMap<String, Vec<toml::Value>>,
    /// Random samples.
    pub random: Option<RandomSweep>,
}

/// `[sweep.random]`: `n` seeded samples from lists or ranges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSweep {
    pub n: usize,
    #[serde(default)]
    pub seed: u64,
    pub params: BTreeMap<String, RandomParam>,
}

/// A random sweep dimension: a list to choose from, or a numeric range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RandomParam {
    Choice(Vec<toml::Value>),
    Range {
        min: f64,
        max: f64,
        #[serde(default)]
        log: bool,
        #[serde(default)]
        integer: bool,
    },
}

impl Validate for SweepSection {
    fn validate(&self, v: &mut Validator) {
        for (key, values) in &self.grid {
            v.check(!values.is_empty(), &format!("grid.\"{key}\""), || {
                "needs at least one value".into()
            });
        }
        let lens: Vec<usize> = self.zip.values().map(Vec::len).collect();
        if lens.windows(2).any(|w| w[0] != w[1]) {
            v.error(
                "zip",
                format!("lists must have the same length, found {lens:?}"),
            );
        }
        for key in self.zip.keys() {
            if self.grid.contains_key(key) {
                v.error("zip", format!("{key:?} is in both grid and zip"));
            }
        }
        if let Some(r) = &self.random {
            v.count("random.n", r.n, 1, 100_000);
            for (key, p) in &r.params {
                if let RandomParam::Range { min, max, log, .. } = p {
                    let ok = min <= max && (!log || *min > 0.0);
                    v.check(ok, &format!("random.params.\"{key}\""), || {
                        "needs min <= max (and min > 0 with log = true)".into()
                    });
                }
            }
        }
    }
}
