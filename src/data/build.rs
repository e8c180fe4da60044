//! From a `[data]` section to a finished dataset: read the source, run the enabled filter
//! stages (stage 1's title requirement always), clean the metadata, compute the statistics.
//!
//! Kept apart from the pipeline stage so tests, benchmarks and other tools can build a dataset
//! without a runner or a store.

use std::path::{Path, PathBuf};

use super::embedded::{self, Embedded};
use super::filter::{self, Steps};
use super::layout::{self, LayoutInput};
use super::lines::{self, Skipped};
use super::raw::RawLog;
use super::stats::DataStats;
use super::types::Dataset;
use super::{DataSection, Source, readers, steam, synthetic};
use crate::error::Result;
use crate::hash::{hash_bytes, hash_file};
use crate::pipeline::Progress;
use crate::spec::resolve_spec_path;

/// A built dataset and how it came to be.
#[derive(Debug, Clone)]
pub struct Built {
    pub dataset: Dataset,
    pub stats: DataStats,
}

/// What a source yields: a log still to be sequenced, or sequences already numbered.
enum Input {
    Log(RawLog),
    Sequenced(Dataset),
}

/// Builds the dataset `section` describes; relative paths resolve against `spec_dir`.
pub fn build(
    section: &DataSection,
    spec_dir: &Path,
    run_seed: u64,
    progress: &Progress,
) -> Result<Built> {
    let seed = section.seed.resolve(run_seed);
    let mut skipped = Skipped::default();
    let spinner = progress.spinner(format!("data: reading {}", section.source));
    let input = read_input(section, spec_dir, seed, &mut skipped)?;
    let mut steps = Steps::default();
    spinner.set_message("data: stage 1");
    let (mut ds, untitled_dropped) = match input {
        Input::Log(log) => filter::stage1(
            &log,
            &section.stage1,
            section.stage1_enabled(),
            seed,
            &mut steps,
        )?,
        Input::Sequenced(ds) if section.stage1_enabled() => {
            let log = RawLog::from_dataset(&ds);
            filter::stage1(&log, &section.stage1, true, seed, &mut steps)?
        }
        Input::Sequenced(ds) => {
            let seqs: Vec<filter::UserSeq> = ds.users().map(|(u, s)| (u, s.to_vec())).collect();
            steps.record("read", &seqs)?;
            filter::drop_untitled(ds, &mut steps)?
        }
    };
    if section.stage2_enabled() {
        spinner.set_message("data: stage 2");
        ds = filter::stage2(&ds, &section.stage2, seed, &mut steps)?;
    }
    let untitled = filter::clean_metadata(&mut ds);
    spinner.finish_and_clear();
    let stats = DataStats::compute(&ds, &steps, &skipped, untitled_dropped, untitled);
    Ok(Built { dataset: ds, stats })
}

fn read_input(
    section: &DataSection,
    spec_dir: &Path,
    seed: u64,
    skipped: &mut Skipped,
) -> Result<Input> {
    let dir = resolve_spec_path(spec_dir, &section.path);
    let policy = section.on_bad_line;
    let embedded = |set: &'static Embedded, skipped: &mut Skipped| -> Result<Input> {
        let read = layout::read_layout(set.input(), "data.source", policy, skipped)?;
        Ok(Input::Sequenced(read))
    };
    Ok(match section.source {
        Source::GamesMini => embedded(&embedded::GAMES_MINI, skipped)?,
        Source::Games => embedded(&embedded::GAMES, skipped)?,
        Source::Recexplainer => Input::Sequenced(layout::read_layout(
            LayoutInput::Dir(&dir),
            "data.path",
            policy,
            skipped,
        )?),
        Source::AmazonRaw => {
            lines::require(&dir, "data.path")?;
            let a = &section.amazon;
            let keys = ("data.amazon.meta", "data.amazon.reviews");
            Input::Log(readers::read_amazon(
                &dir.join(&a.meta),
                &dir.join(&a.reviews),
                keys,
                policy,
                skipped,
            )?)
        }
        Source::Movielens => {
            lines::require(&dir, "data.path")?;
            Input::Log(readers::read_movielens(&dir, policy, skipped)?)
        }
        Source::Delimited => {
            lines::require(&dir, "data.path")?;
            Input::Log(readers::read_delimited(
                &dir,
                &section.delimited,
                policy,
                skipped,
            )?)
        }
        Source::Steam => {
            lines::require(&dir, "data.path")?;
            let st = &section.steam;
            Input::Log(steam::read_steam(
                &dir.join(&st.games),
                &dir.join(&st.reviews),
                policy,
                skipped,
            )?)
        }
        Source::Synthetic => Input::Log(synthetic::generate(&section.synthetic, seed).0),
    })
}

/// The input files a section reads, as (role, path, spec key); optional files that are absent
/// are left out. The embedded sets and `synthetic` read no files.
pub fn input_files(section: &DataSection, spec_dir: &Path) -> Vec<(String, PathBuf, &'static str)> {
    let dir = resolve_spec_path(spec_dir, &section.path);
    let file = |name: &str, key: &'static str| (name.to_string(), dir.join(name), key);
    match section.source {
        Source::GamesMini | Source::Games | Source::Synthetic => Vec::new(),
        Source::Recexplainer => {
            let mut v = vec![
                file(layout::SEQUENCES, "data.path"),
                file(layout::METADATA, "data.path"),
            ];
            if dir.join(layout::DATAMAPS).exists() {
                v.push(file(layout::DATAMAPS, "data.path"));
            }
            v
        }
        Source::AmazonRaw => vec![
            file(&section.amazon.reviews, "data.amazon.reviews"),
            file(&section.amazon.meta, "data.amazon.meta"),
        ],
        Source::Movielens => vec![
            file("ratings.csv", "data.path"),
            file("movies.csv", "data.path"),
        ],
        Source::Steam => vec![
            file(&section.steam.reviews, "data.steam.reviews"),
            file(&section.steam.games, "data.steam.games"),
        ],
        Source::Delimited => vec![
            file(
                &section.delimited.interactions,
                "data.delimited.interactions",
            ),
            file(&section.delimited.items, "data.delimited.items"),
        ],
    }
}

/// SHA-256 of every input (the embedded files for `games-mini` and `games`), keyed by role.
pub(crate) fn input_hashes(
    section: &DataSection,
    spec_dir: &Path,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut out = serde_json::Map::new();
    if let Some(set) = Embedded::of(section.source) {
        for (name, text) in set.files() {
            out.insert(name.into(), hash_bytes(text.as_bytes()).into());
        }
    }
    for (role, path, key) in input_files(section, spec_dir) {
        lines::require(&path, key)?;
        out.insert(role, hash_file(&path)?.0.into());
    }
    Ok(out)
}
