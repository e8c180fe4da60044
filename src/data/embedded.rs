//! The datasets compiled into the binary: `data/games-mini/` (the default, minutes-scale) and
//! `data/games/` (the paper's Games set at the paper's size).
//!
//! A fresh clone (or an installed binary) must run the quickstart and the paper's Games
//! experiment without `../shared` or a download, so real subsets of the paper's Amazon Video
//! Games set travel with the code. Both were produced by this stage (stage 2; games-mini with
//! smaller N and M) from the processed Games set; each folder's README.md says how and under
//! which terms.

use super::Source;
use super::layout::LayoutInput;

/// One embedded dataset in RecExplainer's processed layout.
pub struct Embedded {
    /// Shown in messages in place of a folder, e.g. `<embedded games-mini>`.
    pub label: &'static str,
    pub sequences: &'static str,
    pub metadata: &'static str,
    pub datamaps: &'static str,
}

pub const GAMES_MINI: Embedded = Embedded {
    label: "<embedded games-mini>",
    sequences: include_str!("../../data/games-mini/sequential_data.txt"),
    metadata: include_str!("../../data/games-mini/metadata.json"),
    datamaps: include_str!("../../data/games-mini/datamaps.json"),
};

pub const GAMES: Embedded = Embedded {
    label: "<embedded games>",
    sequences: include_str!("../../data/games/sequential_data.txt"),
    metadata: include_str!("../../data/games/metadata.json"),
    datamaps: include_str!("../../data/games/datamaps.json"),
};

impl Embedded {
    /// The embedded dataset a source names, if it is one.
    pub fn of(source: Source) -> Option<&'static Embedded> {
        match source {
            Source::GamesMini => Some(&GAMES_MINI),
            Source::Games => Some(&GAMES),
            _ => None,
        }
    }

    /// The embedded files as a layout input.
    pub fn input(&'static self) -> LayoutInput<'static> {
        LayoutInput::Embedded {
            label: self.label,
            sequences: self.sequences,
            metadata: self.metadata,
            datamaps: self.datamaps,
        }
    }

    /// The embedded files by name, for content hashes.
    pub fn files(&self) -> [(&'static str, &'static str); 3] {
        [
            ("sequential_data.txt", self.sequences),
            ("metadata.json", self.metadata),
            ("datamaps.json", self.datamaps),
        ]
    }
}
