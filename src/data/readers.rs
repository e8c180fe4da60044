//! Readers for the raw sources: Amazon Review Data 2018, MovieLens, and generic delimited files.
//!
//! All of them stream (a line or a record at a time), accept gzip or plain files by content, and
//! apply the `on_bad_line` policy with `file:line` reasons. Each produces a [`RawLog`]; stage 1
//! turns that into sequences the same way for every source.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::layout::parse_meta_record;
use super::lines::{self, OnBadLine, Skipped};
use super::raw::{LogBuilder, RawLog};
use super::types::ItemMeta;
use crate::error::{Error, Result};
use crate::spec::{Validate, Validator};

/// `[data.amazon]`: file names (inside `data.path`) of an Amazon 2018 category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmazonSettings {
    /// The reviews file (`*_5.json.gz` style JSON Lines).
    pub reviews: String,
    /// The metadata file (`meta_*.json.gz`).
    pub meta: String,
}

impl Default for AmazonSettings {
    fn default() -> Self {
        AmazonSettings {
            reviews: "Video_Games_5.json.gz".into(),
            meta: "meta_Video_Games.json.gz".into(),
        }
    }
}

impl Validate for AmazonSettings {
    fn validate(&self, v: &mut Validator) {
        v.check(!self.reviews.is_empty(), "reviews", || {
            "needs a file name".into()
        });
        v.check(!self.meta.is_empty(), "meta", || "needs a file name".into());
    }
}

/// One review line; other fields (text, votes, images) are skipped unparsed.
#[derive(Deserialize)]
struct Review<'a> {
    #[serde(rename = "reviewerID", borrow)]
    reviewer: Cow<'a, str>,
    #[serde(borrow)]
    asin: Cow<'a, str>,
    #[serde(rename = "unixReviewTime")]
    time: f64,
    #[serde(default)]
    overall: Option<f64>,
}

/// Reads an Amazon 2018 metadata file and reviews file (spec §1.2 steps 1–2 input). Reviews with
/// `overall <= -0.1` are dropped as in the original (in effect none).
pub fn read_amazon(
    meta: &Path,
    reviews: &Path,
    keys: (&str, &str),
    policy: OnBadLine,
    skipped: &mut Skipped,
) -> Result<RawLog> {
    lines::require(reviews, keys.1)?;
    let mut log = LogBuilder::default();
    lines::for_each_line(meta, keys.0, policy, skipped, |_, text| {
        log.set_meta(parse_meta_record(text)?);
        Ok(())
    })?;
    lines::for_each_line(reviews, keys.1, policy, skipped, |_, text| {
        let r: Review = serde_json::from_str(text).map_err(|e| format!("invalid review: {e}"))?;
        if r.overall.is_some_and(|o| o <= -0.1) {
            return Ok(());
        }
        let (u, i) = (log.user(&r.reviewer), log.item(&r.asin));
        log.push(u, i, r.time);
        Ok(())
    })?;
    Ok(log.finish())
}

/// `[data.delimited]`: a user's own data as two delimited files inside `data.path`.
///
/// The interactions file has `user, item[, timestamp]` per row by default; the `*_column`
/// settings (1-based) pick other columns. Rows without a timestamp are ordered by their
/// position in the file. The items file has `id, title[, more fields]`; with `header = true`, extra
/// columns named `brand`, `feature`/`features`, `description` and `category`/`categories`/
/// `genres` fill those metadata fields (split on `list_separator`), and any other named column
/// becomes a `"name: value"` feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DelimitedSettings {
    pub interactions: String,
    pub items: String,
    /// One character, e.g. `","`, `"\t"`, `";"`.
    pub delimiter: String,
    /// Whether the first row of each file is a header.
    pub header: bool,
    /// Separator inside multi-valued item fields; empty = never split.
    pub list_separator: String,
    /// 1-based column of the user id in the interactions file.
    pub user_column: usize,
    /// 1-based column of the item id.
    pub item_column: usize,
    /// 1-based column of the timestamp; 0 = the file has none.
    pub time_column: usize,
}

impl Default for DelimitedSettings {
    fn default() -> Self {
        DelimitedSettings {
            interactions: "interactions.csv".into(),
            items: "items.csv".into(),
            delimiter: ",".into(),
            header: true,
            list_separator: "|".into(),
            user_column: 1,
            item_column: 2,
            time_column: 3,
        }
    }
}

impl Validate for DelimitedSettings {
    fn validate(&self, v: &mut Validator) {
        v.check(self.user_column >= 1, "user_column", || {
            "columns count from 1".into()
        });
        v.check(self.item_column >= 1, "item_column", || {
            "columns count from 1".into()
        });
        let distinct = self.user_column != self.item_column
            && self.time_column != self.user_column
            && self.time_column != self.item_column;
        v.check(distinct, "time_column", || {
            "user_column, item_column and time_column must be different columns".into()
        });
        v.check(!self.interactions.is_empty(), "interactions", || {
            "needs a file name".into()
        });
        v.check(!self.items.is_empty(), "items", || {
            "needs a file name".into()
        });
        let one_byte = self.delimiter.len() == 1;
        v.check(one_byte, "delimiter", || {
            format!(
                "{:?} must be exactly one ASCII character, e.g. \",\" or \"\\t\"",
                self.delimiter
            )
        });
        v.check(!self.delimiter.starts_with('"'), "delimiter", || {
            "cannot be the quote character".into()
        });
    }
}

/// Where the fields of an interaction row are (0-based).
#[derive(Debug, Clone, Copy)]
struct Columns {
    user: usize,
    item: usize,
    time: Option<usize>,
    /// Whether a row without a timestamp is malformed (MovieLens) or ordered by file position.
    time_required: bool,
}

/// Reads the generic delimited pair.
pub fn read_delimited(
    dir: &Path,
    s: &DelimitedSettings,
    policy: OnBadLine,
    skipped: &mut Skipped,
) -> Result<RawLog> {
    let format = Format {
        delimiter: s.delimiter.as_bytes()[0],
        header: s.header,
        list_separator: s.list_separator.clone(),
    };
    let items = dir.join(&s.items);
    let interactions = dir.join(&s.interactions);
    lines::require(&interactions, "data.delimited.interactions")?;
    let mut log = LogBuilder::default();
    read_items(
        &items,
        "data.delimited.items",
        &format,
        policy,
        skipped,
        &mut log,
    )?;
    read_interactions(
        &interactions,
        "data.delimited.interactions",
        &format,
        Columns {
            user: s.user_column - 1,
            item: s.item_column - 1,
            time: s.time_column.checked_sub(1),
            time_required: false,
        },
        policy,
        skipped,
        &mut log,
    )?;
    Ok(log.finish())
}

/// Reads MovieLens (`ratings.csv` + `movies.csv` in `dir`, the ml-latest layout). Genres become
/// categories; `(no genres listed)` becomes none. Ratings are not filtered, as in the paper's
/// Amazon pipeline.
pub fn read_movielens(dir: &Path, policy: OnBadLine, skipped: &mut Skipped) -> Result<RawLog> {
    let format = Format {
        delimiter: b',',
        header: true,
        list_separator: "|".into(),
    };
    let ratings = dir.join("ratings.csv");
    lines::require(&ratings, "data.path")?;
    let mut log = LogBuilder::default();
    read_items(
        &dir.join("movies.csv"),
        "data.path",
        &format,
        policy,
        skipped,
        &mut log,
    )?;
    let columns = Columns {
        user: 0,
        item: 1,
        time: Some(3),
        time_required: true,
    };
    read_interactions(
        &ratings,
        "data.path",
        &format,
        columns,
        policy,
        skipped,
        &mut log,
    )?;
    let mut log = log.finish();
    for item in &mut log.items {
        item.categories.retain(|c| c != "(no genres listed)");
    }
    Ok(log)
}

struct Format {
    delimiter: u8,
    header: bool,
    list_separator: String,
}

impl Format {
    fn reader(
        &self,
        path: &Path,
        key: &str,
    ) -> Result<csv::Reader<Box<dyn std::io::BufRead + Send>>> {
        Ok(csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(self.header)
            .flexible(true)
            .from_reader(lines::open(path, key)?))
    }

    fn split<'a>(&'a self, value: &'a str) -> Vec<String> {
        let parts: Vec<&str> = if self.list_separator.is_empty() {
            vec![value]
        } else {
            value.split(self.list_separator.as_str()).collect()
        };
        parts
            .into_iter()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Runs `f` on every record of a delimited file with its 1-based line number, applying the
/// bad-line policy to unreadable records and to records `f` rejects.
fn for_each_record(
    path: &Path,
    key: &str,
    format: &Format,
    policy: OnBadLine,
    skipped: &mut Skipped,
    multiline_from: usize,
    mut f: impl FnMut(&csv::StringRecord, Option<&csv::StringRecord>) -> std::result::Result<(), String>,
) -> Result<()> {
    let mut reader = format.reader(path, key)?;
    let headers = if format.header {
        Some(reader.headers().map_err(|e| csv_error(path, e))?.clone())
    } else {
        None
    };
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line() as usize);
                if line.is_multiple_of(65536) {
                    crate::pipeline::check_cancel()?;
                }
                if record.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
                let checked = unclosed_quote(&record, multiline_from);
                if let Err(reason) = checked.and_then(|()| f(&record, headers.as_ref())) {
                    lines::handle(path, line, policy, skipped, reason)?;
                }
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Utf8 { pos: Some(p), err } => {
                    let reason = format!("not valid UTF-8: {err}");
                    lines::handle(path, p.line() as usize, policy, skipped, reason)?;
                }
                _ => return Err(csv_error(path, e)),
            },
        }
    }
}

/// A quote that is never closed makes the csv reader swallow the following rows into one
/// field, up to the next quote or the end of the file. Such a field either ends with the line
/// break that ended the file, or holds a line break and the delimiter-separated text of the
/// rows it swallowed; both are refused, naming the record's first line.
/// Columns from `multiline_from` on (free text such as descriptions) may hold line breaks.
fn unclosed_quote(
    record: &csv::StringRecord,
    multiline_from: usize,
) -> std::result::Result<(), String> {
    for (col, field) in record.iter().enumerate() {
        let runs_to_eof = field.ends_with('\n') || field.ends_with('\r');
        let spans_lines = col < multiline_from && field.contains(['\n', '\r']);
        if runs_to_eof || spans_lines {
            let lines = field.lines().count();
            return Err(format!(
                "column {} runs over {lines} lines: a quote (\") opened in it is not closed \
                 where the field ends",
                col + 1
            ));
        }
    }
    Ok(())
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line() as usize);
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        kind => Error::bad_input(path, line, format!("{kind:?}")),
    }
}

fn read_items(
    path: &Path,
    key: &str,
    format: &Format,
    policy: OnBadLine,
    skipped: &mut Skipped,
    log: &mut LogBuilder,
) -> Result<()> {
    // Item id → the line that defined it: a second definition would silently replace the first.
    let mut defined: HashMap<String, usize> = HashMap::new();
    // Ids and titles are one line each; extra columns (descriptions) may span lines.
    for_each_record(path, key, format, policy, skipped, 2, |rec, headers| {
        let id = rec.get(0).map(str::trim).unwrap_or("");
        if id.is_empty() {
            return Err("empty item id in column 1".into());
        }
        let line = rec.position().map_or(0, |p| p.line() as usize);
        if let Some(first) = defined.get(id) {
            return Err(format!(
                "item id {id:?} is defined twice (first at line {first}); each item needs one row"
            ));
        }
        defined.insert(id.to_string(), line);
        let title = rec
            .get(1)
            .ok_or("missing title (column 2)")?
            .trim()
            .to_string();
        let mut meta = ItemMeta {
            raw_id: id.to_string(),
            title,
            ..ItemMeta::default()
        };
        if let Some(h) = headers {
            for (name, value) in h.iter().zip(rec.iter()).skip(2) {
                add_field(&mut meta, name.trim(), value, format);
            }
        }
        log.set_meta(meta);
        Ok(())
    })
}

/// Puts a named extra column of the items file into the metadata.
fn add_field(meta: &mut ItemMeta, name: &str, value: &str, format: &Format) {
    let value = value.trim();
    if value.is_empty() {
        return;
    }
    match name.to_ascii_lowercase().as_str() {
        "brand" => meta.brand = Some(value.to_string()),
        "feature" | "features" => meta.features.extend(format.split(value)),
        "description" => meta.description.push(value.to_string()),
        "category" | "categories" | "genres" | "genre" => {
            meta.categories.extend(format.split(value))
        }
        _ => meta.features.push(format!("{name}: {value}")),
    }
}

fn read_interactions(
    path: &Path,
    key: &str,
    format: &Format,
    columns: Columns,
    policy: OnBadLine,
    skipped: &mut Skipped,
    log: &mut LogBuilder,
) -> Result<()> {
    for_each_record(path, key, format, policy, skipped, usize::MAX, |rec, _| {
        let field = |i: usize, what: &str| {
            rec.get(i)
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .ok_or_else(|| format!("missing {what} (column {})", i + 1))
        };
        let user = field(columns.user, "user id")?;
        let item = field(columns.item, "item id")?;
        let t = match columns.time {
            Some(c) if columns.time_required => parse_time(field(c, "timestamp")?)?,
            Some(c) => match rec.get(c).map(str::trim).filter(|f| !f.is_empty()) {
                Some(t) => parse_time(t)?,
                None => log.n_events() as f64,
            },
            None => log.n_events() as f64,
        };
        let (u, i) = (log.user(user), log.item(item));
        log.push(u, i, t);
        Ok(())
    })
}

fn parse_time(text: &str) -> std::result::Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|t| t.is_finite())
        .ok_or_else(|| format!("timestamp {text:?} is not a number"))
}
