//! Dataset statistics: what the paper's Table B1 reports plus the counts after each filter step.
//!
//! The same numbers go three ways: into the run's metrics (`Recorder::scalar`), into
//! `stats.json` beside the data files, and into a table the runner prints, so a reader can check
//! the filters against the paper at a glance.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::filter::{StepCount, Steps};
use super::types::Dataset;
use crate::error::{Error, IoContext, Result};
use crate::pipeline::Recorder;

pub const STATS_FILE: &str = "stats.json";

/// Statistics of a finished dataset and of the filtering that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataStats {
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    /// `1 - interactions / (users * items)`, as the paper reports it.
    pub sparsity: f64,
    pub seq_len_min: usize,
    pub seq_len_median: f64,
    pub seq_len_mean: f64,
    pub seq_len_max: usize,
    pub train_targets: usize,
    pub test_targets: usize,
    pub steps: Vec<StepCount>,
    /// Lines skipped under `on_bad_line = "skip"`, in total and per file.
    pub skipped_lines: usize,
    pub skipped_per_file: Vec<(String, usize)>,
    /// Items dropped by stage 1's title requirement (the source gave them no title).
    #[serde(default)]
    pub untitled_dropped: usize,
    /// Items whose title was empty after cleaning (their raw id stands in).
    pub untitled_items: usize,
}

impl DataStats {
    pub fn compute(
        ds: &Dataset,
        steps: &Steps,
        skipped: &super::lines::Skipped,
        untitled_dropped: usize,
        untitled_items: usize,
    ) -> DataStats {
        let mut lens: Vec<usize> = ds.users().map(|(_, s)| s.len()).collect();
        lens.sort_unstable();
        let n = lens.len();
        let median = match n {
            0 => 0.0,
            _ if n % 2 == 1 => lens[n / 2] as f64,
            _ => (lens[n / 2 - 1] + lens[n / 2]) as f64 / 2.0,
        };
        let interactions = ds.n_interactions();
        let cells = (ds.n_users * ds.n_items) as f64;
        DataStats {
            users: ds.n_users,
            items: ds.n_items,
            interactions,
            sparsity: if cells > 0.0 {
                1.0 - interactions as f64 / cells
            } else {
                1.0
            },
            seq_len_min: lens.first().copied().unwrap_or(0),
            seq_len_median: median,
            seq_len_mean: if n > 0 {
                interactions as f64 / n as f64
            } else {
                0.0
            },
            seq_len_max: lens.last().copied().unwrap_or(0),
            train_targets: ds.train_targets().count(),
            test_targets: ds.test_targets().count(),
            steps: steps.0.clone(),
            skipped_lines: skipped.total(),
            skipped_per_file: skipped
                .per_file
                .iter()
                .map(|(p, n)| (p.display().to_string(), *n))
                .collect(),
            untitled_dropped,
            untitled_items,
        }
    }

    /// Sends every number to the run's metrics (`users`, `sparsity`, `step.3.interactions`, ...).
    pub fn record(&self, r: &mut dyn Recorder) {
        let pairs = [
            ("users", self.users as f64),
            ("items", self.items as f64),
            ("interactions", self.interactions as f64),
            ("sparsity", self.sparsity),
            ("seq_len_min", self.seq_len_min as f64),
            ("seq_len_median", self.seq_len_median),
            ("seq_len_mean", self.seq_len_mean),
            ("seq_len_max", self.seq_len_max as f64),
            ("train_targets", self.train_targets as f64),
            ("test_targets", self.test_targets as f64),
            ("skipped_lines", self.skipped_lines as f64),
            ("untitled_dropped", self.untitled_dropped as f64),
            ("untitled_items", self.untitled_items as f64),
        ];
        for (name, value) in pairs {
            r.scalar(name, value);
        }
        for (i, s) in self.steps.iter().enumerate() {
            r.scalar(&format!("step.{i}.users"), s.users as f64);
            r.scalar(&format!("step.{i}.items"), s.items as f64);
            r.scalar(&format!("step.{i}.interactions"), s.interactions as f64);
        }
    }

    /// The table the runner prints after the stage.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let w = |t: &mut String, k: &str, v: String| {
            let _ = writeln!(t, "  {k:<26} {v:>14}");
        };
        w(&mut t, "users", self.users.to_string());
        w(&mut t, "items", self.items.to_string());
        w(&mut t, "interactions", self.interactions.to_string());
        w(&mut t, "sparsity", format!("{:.3}%", self.sparsity * 100.0));
        let lens = format!(
            "{} / {} / {:.2} / {}",
            self.seq_len_min, self.seq_len_median, self.seq_len_mean, self.seq_len_max
        );
        let _ = writeln!(t, "  {:<26} {lens:>14}", "seq len min/med/mean/max");
        w(
            &mut t,
            "train / test targets",
            format!("{} / {}", self.train_targets, self.test_targets),
        );
        if self.skipped_lines > 0 {
            w(&mut t, "skipped bad lines", self.skipped_lines.to_string());
        }
        if self.untitled_dropped > 0 {
            w(
                &mut t,
                "items dropped (no title)",
                self.untitled_dropped.to_string(),
            );
        }
        if self.untitled_items > 0 {
            w(
                &mut t,
                "items without title",
                self.untitled_items.to_string(),
            );
        }
        let step_w = self
            .steps
            .iter()
            .map(|s| s.step.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            t,
            "  {:<step_w$} {:>9} {:>9} {:>12}",
            "step", "users", "items", "interactions"
        );
        for s in &self.steps {
            let _ = writeln!(
                t,
                "  {:<step_w$} {:>9} {:>9} {:>12}",
                s.step, s.users, s.items, s.interactions
            );
        }
        t
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(STATS_FILE);
        let text = serde_json::to_string_pretty(self).expect("stats serialize");
        std::fs::write(&path, text).at(&path)
    }

    /// Reads `stats.json` from a finished data artifact (the runner prints its table).
    pub fn load(dir: &Path) -> Result<DataStats> {
        let path = dir.join(STATS_FILE);
        let text = std::fs::read_to_string(&path).at(&path)?;
        serde_json::from_str(&text)
            .map_err(|e| Error::bad_input(&path, e.line(), format!("invalid stats JSON: {e}")))
    }
}
