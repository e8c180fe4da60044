//! Data stage: read interaction logs and item metadata, filter as RecExplainer does, split.
//!
//! The paper's numbers depend on its data preparation as much as on its models, so this module
//! reproduces RecExplainer's two preprocessing scripts step for step (`filter`, `clean`) and
//! writes the same processed layout the original tools read (`layout`). Sources differ only in
//! their reader (`readers`, `layout`, `synthetic`, `embedded`); all of them become a raw log or
//! a sequenced dataset and go through the same filters (`build`). `DataStage` (in `stage`)
//! plugs this into the pipeline.
//!
//! Where the original uses Python's RNG (shuffles, the stage-2 user sample) we use seeded
//! ChaCha8: results are statistically equivalent to the paper's, not bit-identical (spec §9).

mod build;
pub mod clean;
mod cli;
mod embedded;
pub mod filter;
pub mod layout;
pub mod lines;
pub mod pyliteral;
pub mod raw;
pub mod readers;
mod stage;
pub mod stats;
pub mod steam;
pub mod synthetic;
mod types;

use serde::{Deserialize, Serialize};

pub use build::{Built, build, input_files};
pub use cli::{DataCommand, folder_stats, run_data};
pub use filter::{Stage1Settings, Stage2Settings, StepCount, Steps};
pub use lines::OnBadLine;
pub use readers::{AmazonSettings, DelimitedSettings};
pub use stage::{DataStage, stats_table};
pub use stats::DataStats;
pub use steam::SteamSettings;
pub use synthetic::{SyntheticSettings, SyntheticTruth};
pub use types::{Dataset, ItemMeta, Target};

use crate::spec::{SeedSetting, Validate, Validator};

crate::spec_enum! {
    /// Where the data comes from (`data.source`).
    pub enum Source ("source") {
        /// The small Games subset compiled into the binary (already stage-2 output).
        GamesMini = "games-mini",
        /// The paper's Games set after stage 2 at the paper's size (about 3.9k users, 1.9k
        /// items), compiled into the binary.
        Games = "games",
        /// RecExplainer's processed layout in `data.path` (stage-1 output, e.g. the Games set).
        Recexplainer = "recexplainer",
        /// Amazon Review Data 2018 raw files in `data.path` (see `[data.amazon]`).
        AmazonRaw = "amazon-raw",
        /// MovieLens `ratings.csv` + `movies.csv` in `data.path`.
        Movielens = "movielens",
        /// The Steam reviews and games files of Kang & McAuley in `data.path` (see `[data.steam]`).
        Steam = "steam",
        /// Two delimited files in `data.path` (see `[data.delimited]`).
        Delimited = "delimited",
        /// A seeded synthetic shop with known ground truth (see `[data.synthetic]`).
        Synthetic = "synthetic",
    }
}

impl Source {
    /// Whether the source's files live in `data.path`.
    pub fn needs_path(self) -> bool {
        !matches!(self, Source::GamesMini | Source::Games | Source::Synthetic)
    }
}

/// `[data]`: source, filters and seed. Defaults are the paper's settings; with no `[data]` at
/// all the embedded `games-mini` subset is used, so a spec runs out of the box.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    pub source: Source,
    /// Folder of the source files, relative to the spec file.
    pub path: String,
    /// What to do with a malformed input line.
    pub on_bad_line: OnBadLine,
    /// Seeds the re-numbering shuffles and the stage-2 user sample (the paper: 2023).
    pub seed: SeedSetting,
    pub stage1: Stage1Settings,
    pub stage2: Stage2Settings,
    pub amazon: AmazonSettings,
    pub delimited: DelimitedSettings,
    pub steam: SteamSettings,
    pub synthetic: SyntheticSettings,
}

impl Default for DataSection {
    fn default() -> Self {
        DataSection {
            source: Source::GamesMini,
            path: String::new(),
            on_bad_line: OnBadLine::Error,
            seed: SeedSetting::Fixed(2023),
            stage1: Stage1Settings::default(),
            stage2: Stage2Settings::default(),
            amazon: AmazonSettings::default(),
            delimited: DelimitedSettings::default(),
            steam: SteamSettings::default(),
            synthetic: SyntheticSettings::default(),
        }
    }
}

impl DataSection {
    /// Whether stage 1 filters: by default on, except for sources that already are stage-1
    /// output (`recexplainer`, `games-mini`, `games`). Its title requirement runs for every source
    /// whatever this says (the later stages need titles).
    pub fn stage1_enabled(&self) -> bool {
        self.stage1.enabled.unwrap_or(!matches!(
            self.source,
            Source::Recexplainer | Source::GamesMini | Source::Games
        ))
    }

    /// Whether stage 2 runs: by default on, except for `games-mini` and `games` (already
    /// stage-2 output) and `synthetic` (already small).
    pub fn stage2_enabled(&self) -> bool {
        self.stage2.enabled.unwrap_or(!matches!(
            self.source,
            Source::GamesMini | Source::Games | Source::Synthetic
        ))
    }
}

impl Validate for DataSection {
    fn validate(&self, v: &mut Validator) {
        if self.source.needs_path() {
            v.check(!self.path.is_empty(), "path", || {
                format!("source \"{}\" needs the folder of its files", self.source)
            });
        } else {
            v.check(self.path.is_empty(), "path", || {
                format!("is not used by source \"{}\"; remove it", self.source)
            });
        }
        v.section("stage1", &self.stage1);
        v.section("stage2", &self.stage2);
        match self.source {
            Source::AmazonRaw => v.section("amazon", &self.amazon),
            Source::Delimited => v.section("delimited", &self.delimited),
            Source::Steam => v.section("steam", &self.steam),
            Source::Synthetic => v.section("synthetic", &self.synthetic),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;
    use std::path::Path;

    fn parse(data: &str) -> crate::Result<Spec> {
        Spec::parse(
            Path::new("x.toml"),
            &format!("[experiment]\nname = \"t\"\n\n[data]\n{data}"),
        )
    }

    #[test]
    fn defaults_are_the_papers() {
        let d = DataSection::default();
        assert_eq!(
            (d.stage2.top_items, d.stage2.users, d.stage2.min_user_items),
            (2000, 4000, 5)
        );
        assert_eq!((d.stage1.user_core, d.stage1.item_core), (5, 5));
        assert_eq!(d.seed, SeedSetting::Fixed(2023));
        assert!(parse("").is_ok());
    }

    #[test]
    fn unknown_source_lists_the_choices() {
        let err = parse("source = \"amazon\"").unwrap_err().to_string();
        assert!(
            err.contains(
                "unknown source \"amazon\"; expected games-mini | games | recexplainer | amazon-raw | \
                 movielens | steam | delimited | synthetic"
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_located() {
        let err = parse("source = \"movielens\"\npath = \"ml\"\n[data.stage2]\ntop_item = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.toml:8:1") && err.contains("unknown field `top_item`"),
            "{err}"
        );
        let err = parse("source = \"recexplainer\"").unwrap_err().to_string();
        assert_eq!(
            err,
            "x.toml:4:1: data.path: source \"recexplainer\" needs the folder of its files"
        );
        let err = parse("path = \"x\"").unwrap_err().to_string();
        assert!(
            err.contains("data.path: is not used by source \"games-mini\""),
            "{err}"
        );
        let err =
            parse("source = \"delimited\"\npath = \"d\"\n[data.delimited]\ndelimiter = \"ab\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("data.delimited.delimiter: \"ab\" must be exactly one"),
            "{err}"
        );
        let err = parse("on_bad_line = \"ignore\"").unwrap_err().to_string();
        assert!(
            err.contains("unknown on_bad_line \"ignore\"; expected error | skip"),
            "{err}"
        );
        let err = parse("[data.stage1]\nuser_core = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data.stage1.user_core: must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn stage_defaults_follow_the_source() {
        let mut d = DataSection::default();
        assert!(!d.stage1_enabled() && !d.stage2_enabled());
        d.source = Source::Recexplainer;
        assert!(!d.stage1_enabled() && d.stage2_enabled());
        d.source = Source::AmazonRaw;
        assert!(d.stage1_enabled() && d.stage2_enabled());
        d.stage2.enabled = Some(false);
        assert!(!d.stage2_enabled());
    }
}
