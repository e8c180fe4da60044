//! People's ratings of explanations, the human panel of the paper's Figure 3: `recx report`
//! writes the reported runs' valid explanations as a sheet for annotators, and `recx
//! import-ratings` reads the filled sheet back and attaches the ratings to the explanation stage
//! they rate, so that every report then shows them beside the judge's (`human.rating`,
//! `human.rating_mean`, ... with the judge's explainer suffixes).
//!
//! Why the sheet looks as it does: annotators must not know who wrote an explanation, so it
//! names neither run nor explainer, and its rows are shuffled (explainers interleaved, never one
//! explainer's block). Each row carries an opaque id, a hash of the explanation stage, explainer
//! and case, which only the store that wrote the explanations can resolve. Annotators see what
//! the judge sees: the user's history, the target item, the target model's decision, the
//! explanation, and the same four-level rubric (in the sheet's `README.md`).
//!
//! Ratings are kept per annotator (`annotations/<explain hash>/human.ratings.jsonl` in the
//! store): importing a sheet again under the same annotator replaces that annotator's ratings.
//! Per-example values are named `<case>@<annotator>`, so a paired test between two runs pairs
//! one annotator's ratings of the same case.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::explain::{EXPLANATIONS, ExplainSplit, Explainer, Explanation, metric_suffix};
use crate::fsutil::{read_jsonl, write_atomic, write_csv, write_jsonl};
use crate::hash::hash_bytes;
use crate::pipeline::{Measurements, Recorder, StageKind};
use crate::store::{RunRecord, Store};

/// The sheet's file name inside the folder the report writes it to.
pub const SHEET: &str = "sheet.csv";

/// The measurements' source name: runs report them as `human.<metric>`.
pub const SOURCE: &str = "human";

/// The sheet's columns; annotators fill in `rating`.
const SHEET_HEADER: [&str; 6] = [
    "row",
    "user_history",
    "target_item",
    "label",
    "explanation",
    "rating",
];

/// Changes whenever a row id would be computed differently.
const ROW_ID_VERSION: &str = "recx-annotation/v1";

/// Hex digits of a row id (48 bits: no collision among millions of rows, short to read).
const ROW_ID_LEN: usize = 12;

/// Every annotator's ratings of one explanation stage, beside its attached measurements.
const RATINGS_FILE: &str = "human.ratings.jsonl";

/// One person's rating of one explanation: A = 0 … D = 3, the judge's scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanRating {
    pub case: String,
    pub explainer: Explainer,
    pub annotator: String,
    pub rating: u8,
}

/// A written sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    pub path: PathBuf,
    pub rows: usize,
}

/// What one import did.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// Rows that carried a rating.
    pub rated: usize,
    /// Rows left blank (not rated, nothing recorded).
    pub blank: usize,
    /// Explanation stages that received ratings.
    pub stages: usize,
}

/// An explanation as the sheet knows it: the stage that wrote it and its row id.
struct Row {
    id: String,
    stage: String,
    explanation: Explanation,
}

/// Writes the sheet for the valid explanations of `runs` into `dir` (with a `README.md` for the
/// annotators); `None` when none of the runs explained anything.
pub fn write_sheet(store: &Store, runs: &[RunRecord], dir: &Path) -> Result<Option<Sheet>> {
    let mut rows = rows_of(store, &explain_stages(runs))?;
    if rows.is_empty() {
        return Ok(None);
    }
    shuffle_blindly(&mut rows);
    let path = dir.join(SHEET);
    let cells = rows.iter().map(|r| {
        let e = &r.explanation;
        [
            r.id.clone(),
            e.history_titles.join("; "),
            e.target_title.clone(),
            e.label.clone(),
            e.explanation.clone(),
            String::new(),
        ]
    });
    write_csv(&path, &SHEET_HEADER, cells)?;
    write_atomic(&dir.join("README.md"), instructions(rows.len()).as_bytes())?;
    Ok(Some(Sheet {
        path,
        rows: rows.len(),
    }))
}

/// Reads a filled sheet and records its ratings as `annotator`'s, replacing what `annotator`
/// rated before in the same stages. Every row is checked before anything is written: a bad row
/// fails the whole import with the sheet's file and line.
pub fn import_ratings(store: &Store, sheet: &Path, annotator: &str) -> Result<Imported> {
    check_annotator(annotator)?;
    let index: HashMap<String, Row> = rows_of(store, &explain_stages(&store.runs()?))?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let (filled, blank) = read_filled(sheet, &index)?;

    let mut by_stage: BTreeMap<&str, Vec<HumanRating>> = BTreeMap::new();
    for (id, rating) in &filled {
        let row = &index[id];
        by_stage.entry(&row.stage).or_default().push(HumanRating {
            case: row.explanation.case_id(),
            explainer: row.explanation.explainer,
            annotator: annotator.to_string(),
            rating: *rating,
        });
    }
    for (stage, new) in &by_stage {
        let path = store.annotation_dir(stage).join(RATINGS_FILE);
        let mut all: Vec<HumanRating> = if path.is_file() {
            read_jsonl(&path)?
        } else {
            Vec::new()
        };
        all.retain(|r| r.annotator != annotator);
        all.extend(new.iter().cloned());
        all.sort_by(|a, b| {
            (&a.annotator, a.explainer, &a.case).cmp(&(&b.annotator, b.explainer, &b.case))
        });
        write_jsonl(&path, &all)?;
        store.attach_measurements(stage, SOURCE, &measurements(&all))?;
    }
    Ok(Imported {
        rated: filled.len(),
        blank,
        stages: by_stage.len(),
    })
}

/// The judge's metrics over people's ratings, per explainer: `rating<suffix>` per example
/// (`<case>@<annotator>`), `rating_mean`, `rated`, `rating_count.<0..3>` and `annotators`.
pub fn measurements(ratings: &[HumanRating]) -> Measurements {
    let mut m = Measurements::default();
    let explainers: BTreeSet<Explainer> = ratings.iter().map(|r| r.explainer).collect();
    for explainer in explainers {
        let suffix = metric_suffix(explainer, ExplainSplit::Valid);
        let mine: Vec<&HumanRating> = ratings
            .iter()
            .filter(|r| r.explainer == explainer)
            .collect();
        let mut counts = [0usize; 4];
        for r in &mine {
            counts[usize::from(r.rating)] += 1;
            let id = format!("{}@{}", r.case, r.annotator);
            m.example(&format!("rating{suffix}"), &id, f64::from(r.rating));
        }
        let total: usize = mine.iter().map(|r| usize::from(r.rating)).sum();
        m.scalar(&format!("rated{suffix}"), mine.len() as f64);
        m.scalar(
            &format!("rating_mean{suffix}"),
            total as f64 / mine.len() as f64,
        );
        for (level, n) in counts.iter().enumerate() {
            m.scalar(&format!("rating_count{suffix}.{level}"), *n as f64);
        }
        let annotators: BTreeSet<&str> = mine.iter().map(|r| r.annotator.as_str()).collect();
        m.scalar(&format!("annotators{suffix}"), annotators.len() as f64);
    }
    m
}

/// The filled rows of a sheet, `(row id, rating)`, and the number of blank ones.
fn read_filled(sheet: &Path, index: &HashMap<String, Row>) -> Result<(Vec<(String, u8)>, usize)> {
    let bad = |line: u64, reason: String| Error::bad_input(sheet, line as usize, reason);
    let bytes = std::fs::read(sheet).at(sheet)?;
    // The line a record starts on, from its byte offset (fields may hold line breaks; the
    // reader's offset can sit before the previous record's line end).
    let line_at = |p: Option<&csv::Position>| {
        p.map_or(0, |p| {
            let mut start = (p.byte() as usize).min(bytes.len());
            while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
                start += 1;
            }
            1 + bytes[..start].iter().filter(|&&b| b == b'\n').count() as u64
        })
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes.as_slice());
    let header = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                bad(
                    1,
                    format!("no `{name}` column (the sheet's header is {header:?})"),
                )
            })
    };
    let (id_at, rating_at) = (column("row")?, column("rating")?);
    let mut filled = Vec::new();
    let mut seen = HashSet::new();
    let mut blank = 0;
    for record in reader.records() {
        let record = record.map_err(|e| bad(line_at(e.position()), e.to_string()))?;
        let line = line_at(record.position());
        let id = record.get(id_at).unwrap_or("").trim();
        if !index.contains_key(id) {
            return Err(bad(
                line,
                format!(
                    "row {id:?} is not an explanation in this store (was the sheet written by \
                     `recx report` on another store?)"
                ),
            ));
        }
        if !seen.insert(id.to_string()) {
            return Err(bad(line, format!("row {id:?} appears twice")));
        }
        let cell = record.get(rating_at).unwrap_or("").trim();
        if cell.is_empty() {
            blank += 1;
            continue;
        }
        let rating = parse_level(cell).ok_or_else(|| {
            bad(
                line,
                format!("rating {cell:?} is not one of A, B, C, D (or empty)"),
            )
        })?;
        filled.push((id.to_string(), rating));
    }
    Ok((filled, blank))
}

/// A rating cell: the rubric's letter, A = 0 … D = 3, in either case.
fn parse_level(cell: &str) -> Option<u8> {
    match cell.to_ascii_uppercase().as_str() {
        "A" => Some(0),
        "B" => Some(1),
        "C" => Some(2),
        "D" => Some(3),
        _ => None,
    }
}

/// Annotator names become part of example ids (`<case>@<annotator>`).
fn check_annotator(annotator: &str) -> Result<()> {
    let ok = !annotator.trim().is_empty()
        && annotator
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "annotator {annotator:?}: use letters, digits, '-', '_' or '.'"
        )))
    }
}

/// The explanation stages of `runs`, each once, in hash order.
fn explain_stages(runs: &[RunRecord]) -> Vec<String> {
    let explain = StageKind::Explain.as_str();
    let stages: BTreeSet<&String> = runs
        .iter()
        .flat_map(|r| &r.stages)
        .filter(|(kind, _)| kind == explain)
        .map(|(_, hash)| hash)
        .collect();
    stages.into_iter().cloned().collect()
}

/// The valid explanations of finished explanation stages, with their row ids.
fn rows_of(store: &Store, stages: &[String]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for stage in stages {
        let path = store
            .artifact_dir(StageKind::Explain.as_str(), stage)
            .join(EXPLANATIONS);
        if store.stage(stage)?.is_none() || !path.is_file() {
            continue;
        }
        for explanation in read_jsonl::<Explanation>(&path)? {
            if explanation.split == ExplainSplit::Valid {
                rows.push(Row {
                    id: row_id(stage, &explanation),
                    stage: stage.clone(),
                    explanation,
                });
            }
        }
    }
    Ok(rows)
}

/// The opaque id of one explanation: who wrote it cannot be read from it.
fn row_id(stage: &str, e: &Explanation) -> String {
    let key = format!(
        "{ROW_ID_VERSION}\0{stage}\0{}\0{}",
        e.explainer,
        e.case_id()
    );
    hash_bytes(key.as_bytes())[..ROW_ID_LEN].to_string()
}

/// Shuffles the rows in an order that depends only on which rows there are.
fn shuffle_blindly(rows: &mut [Row]) {
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let digest = hash_bytes(ids.join("\n").as_bytes());
    let mut seed = [0u8; 32];
    hex::decode_to_slice(&digest, &mut seed).expect("a SHA-256 hex digest is 32 bytes");
    rows.shuffle(&mut ChaCha8Rng::from_seed(seed));
}

/// The annotators' instructions, written beside the sheet.
fn instructions(rows: usize) -> String {
    format!(
        "# Rating explanations\n\n\
         `{SHEET}` holds {rows} explanations of a recommender's decisions, in random order. For \
         each row, read the user's history, the target item and the recommender's decision \
         (`label`: would the user like the item), then the `explanation`, and write one letter \
         in the `rating` column:\n\n{rubric}\n\n\
         Leave `rating` empty for a row you do not rate. Do not change the `row` column.\n\n\
         When the sheet is filled, the experimenter reads it back with\n\n\
         ```\nrecx --store <store> import-ratings {SHEET} --annotator <your name>\n```\n",
        rubric = super::rubric_levels(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rating(case: &str, explainer: Explainer, annotator: &str, rating: u8) -> HumanRating {
        HumanRating {
            case: case.into(),
            explainer,
            annotator: annotator.into(),
            rating,
        }
    }

    #[test]
    fn measurements_follow_the_judges_names_per_explainer() {
        let ratings = [
            rating("1:2:3", Explainer::Aligned, "ann", 3),
            rating("1:2:3", Explainer::Aligned, "bob", 1),
            rating("1:2:3", Explainer::Unaligned, "ann", 0),
        ];
        let m = measurements(&ratings);
        assert_eq!(m.scalars["rating_mean"], 2.0);
        assert_eq!(m.scalars["rated"], 2.0);
        assert_eq!(m.scalars["annotators"], 2.0);
        assert_eq!(m.scalars["rating_count.3"], 1.0);
        assert_eq!(m.scalars["rating_count.1"], 1.0);
        assert_eq!(m.scalars["rating_count.0"], 0.0);
        assert_eq!(m.scalars["rating_mean.unaligned"], 0.0);
        assert_eq!(
            m.examples["rating"],
            [
                ("1:2:3@ann".to_string(), 3.0),
                ("1:2:3@bob".to_string(), 1.0)
            ]
        );
    }

    #[test]
    fn levels_are_the_rubrics_letters_only() {
        assert_eq!(parse_level("a"), Some(0));
        assert_eq!(parse_level("D"), Some(3));
        assert_eq!(parse_level("3"), None);
        assert_eq!(parse_level("E"), None);
    }

    #[test]
    fn annotator_names_cannot_break_example_ids() {
        assert!(check_annotator("ann-1.b_c").is_ok());
        for bad in ["", " ", "a@b", "a b", "a/b"] {
            assert!(check_annotator(bad).is_err(), "{bad:?}");
        }
    }
}
