//! The default dataset compiled into the binary: `data/games-mini/`.
//!
//! A fresh clone (or an installed binary) must run the quickstart without `../shared` or a
//! download, so a small real subset of the paper's Amazon Video Games set travels with the code.
//! It was produced by this stage (stage 2 with smaller N and M) from the processed Games set;
//! `data/games-mini/README.md` says how and under which terms.

use super::layout::LayoutInput;

pub const LABEL: &str = "<embedded games-mini>";

pub const SEQUENCES: &str = include_str!("../../data/games-mini/sequential_data.txt");
pub const METADATA: &str = include_str!("../../data/games-mini/metadata.json");
pub const DATAMAPS: &str = include_str!("../../data/games-mini/datamaps.json");

/// The embedded files as a layout input.
pub fn input() -> LayoutInput<'static> {
    LayoutInput::Embedded {
        label: LABEL,
        sequences: SEQUENCES,
        metadata: METADATA,
        datamaps: DATAMAPS,
    }
}

/// The embedded files by name, for content hashes.
pub fn files() -> [(&'static str, &'static str); 3] {
    [
        ("sequential_data.txt", SEQUENCES),
        ("metadata.json", METADATA),
        ("datamaps.json", DATAMAPS),
    ]
}
