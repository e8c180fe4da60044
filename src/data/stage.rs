//! The data stage in the pipeline: `[data]` in, processed layout + split + stats out.
//!
//! Its fingerprint is the section with everything resolved that the run could otherwise
//! interpret differently (the seed, which filter stages run) plus a SHA-256 of each input
//! file, so editing the data reruns the stage while moving it to another folder does not.
//! Settings of a stage that is switched off, or of another source, are left out so they cannot
//! trigger a rerun.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::build::{build, input_hashes};
use super::stats::DataStats;
use super::{DataSection, Source};
use crate::error::Result;
use crate::pipeline::{Resolved, Stage, StageContext, StageKind, StageSettings};
use crate::spec::RawSpec;

/// Bump when the stage's algorithm changes its output for the same settings.
const DATA_STAGE_VERSION: u32 = 3;

/// The data stage (no dependencies).
pub struct DataStage;

impl Stage for DataStage {
    fn summary(&self, artifact_dir: &Path) -> Option<String> {
        stats_table(artifact_dir).ok()
    }

    fn kind(&self) -> StageKind {
        StageKind::Data
    }

    fn deps(&self) -> &'static [StageKind] {
        &[]
    }

    fn settings(&self, spec: &RawSpec, spec_dir: &Path, run_seed: u64) -> Result<Resolved> {
        let section = spec.data.clone();
        Ok(Resolved::new(DataSettings {
            inputs: input_hashes(&section, spec_dir)?,
            section,
            spec_dir: spec_dir.to_path_buf(),
            run_seed,
        }))
    }

    fn run(&self, ctx: &mut StageContext<'_>) -> Result<()> {
        let s = ctx.settings::<DataSettings>()?;
        let built = build(&s.section, &s.spec_dir, s.run_seed, ctx.progress)?;
        built.dataset.save(ctx.out_dir())?;
        built.stats.save(ctx.out_dir())?;
        built.stats.record(ctx.recorder);
        Ok(())
    }
}

/// The data stage's settings: `[data]`, where its relative paths start, the run's seed (for a
/// `"run"` data seed) and the content hash of every input file.
pub struct DataSettings {
    pub section: DataSection,
    pub spec_dir: PathBuf,
    pub run_seed: u64,
    pub inputs: serde_json::Map<String, Value>,
}

impl StageSettings for DataSettings {
    fn fingerprint(&self) -> Value {
        let mut f = settings_fingerprint(&self.section, self.run_seed);
        f["inputs"] = Value::Object(self.inputs.clone());
        f
    }
}

/// The resolved settings part of the fingerprint (no file hashes).
fn settings_fingerprint(d: &DataSection, run_seed: u64) -> Value {
    let stage = |on: bool, settings: Value| {
        if on {
            let mut s = settings;
            s["enabled"] = json!(true);
            s
        } else {
            json!({ "enabled": false })
        }
    };
    let mut f = json!({
        "version": DATA_STAGE_VERSION,
        "source": d.source.as_str(),
        "on_bad_line": d.on_bad_line.as_str(),
        "seed": d.seed.resolve(run_seed),
        "stage1": stage(d.stage1_enabled(), json!(d.stage1)),
        "stage2": stage(d.stage2_enabled(), json!(d.stage2)),
    });
    match d.source {
        Source::AmazonRaw => f["amazon"] = json!(d.amazon),
        Source::Delimited => f["delimited"] = json!(d.delimited),
        Source::Steam => f["steam"] = json!(d.steam),
        Source::Synthetic => f["synthetic"] = json!(d.synthetic),
        _ => {}
    }
    f
}

/// The statistics table of a finished data artifact, for the runner to print.
pub fn stats_table(artifact_dir: &Path) -> Result<String> {
    Ok(DataStats::load(artifact_dir)?.table())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SeedSetting;

    #[test]
    fn fingerprint_resolves_and_ignores_what_cannot_matter() {
        let mut d = DataSection {
            seed: SeedSetting::Run,
            ..DataSection::default()
        };
        let a = settings_fingerprint(&d, 7);
        assert_eq!(a["seed"], json!(7));
        assert_eq!(a["stage2"], json!({ "enabled": false }));
        // games-mini: stage 2 is off, so its N cannot matter; nor can the Amazon file names.
        d.stage2.top_items = 10;
        d.amazon.reviews = "other.json".into();
        assert_eq!(settings_fingerprint(&d, 7), a);
        assert_ne!(settings_fingerprint(&d, 8), a);
        d.stage2.enabled = Some(true);
        assert_ne!(settings_fingerprint(&d, 7), a);
    }
}
