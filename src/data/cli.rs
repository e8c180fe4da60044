//! `recx data ...`: build or inspect a dataset outside a pipeline run.
//!
//! Handy for handing our processed files to RecExplainer's Python tools, for checking a new
//! source's filters before spending a training run on it, and for looking at any folder in the
//! processed layout (ours or the original's).

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::build::build;
use super::filter::{Steps, UserSeq};
use super::lines::Skipped;
use super::stats::{DataStats, STATS_FILE};
use super::types::Dataset;
use crate::error::Result;
use crate::pipeline::Progress;
use crate::spec::Spec;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Build the dataset of a spec's [data] into a folder: processed layout, split, stats.json.
    Build {
        spec: PathBuf,
        /// Output folder (created; existing files are overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Run seed for `data.seed = "run"` (default: the spec's first seed).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Print the statistics table of a folder in the processed layout.
    Stats { dir: PathBuf },
}

/// Runs a `recx data` subcommand, printing to stdout.
pub fn run_data(cmd: DataCommand, quiet: bool) -> Result<()> {
    match cmd {
        DataCommand::Build { spec, out, seed } => {
            let spec = Spec::load(&spec)?;
            let seed = seed.unwrap_or(spec.raw.experiment.seeds[0]);
            let dir = spec.path.parent().unwrap_or(Path::new("."));
            let built = build(&spec.raw.data, dir, seed, &Progress::new(quiet))?;
            built.dataset.save(&out)?;
            built.stats.save(&out)?;
            print!("{}", built.stats.table());
            println!("written to {}", out.display());
        }
        DataCommand::Stats { dir } => print!("{}", folder_stats(&dir)?.table()),
    }
    Ok(())
}

/// The stats of a folder: its `stats.json` when the data stage wrote one, else computed from
/// the files (with a single "read" step).
pub fn folder_stats(dir: &Path) -> Result<DataStats> {
    if dir.join(STATS_FILE).exists() {
        return DataStats::load(dir);
    }
    let ds = Dataset::load(dir)?;
    let seqs: Vec<UserSeq> = ds.users().map(|(u, s)| (u, s.to_vec())).collect();
    let mut steps = Steps::default();
    steps.record("read", &seqs)?;
    Ok(DataStats::compute(&ds, &steps, &Skipped::default(), 0, 0))
}
