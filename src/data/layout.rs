//! RecExplainer's processed layout on disk (spec §1.2 step 7, §1.4), read and written.
//!
//! Every data-stage output uses the same three files the original tools read
//! (`sequential_data.txt`, `metadata.json`, `datamaps.json`) plus the leave-one-out split files,
//! so a folder written here can be handed to RecExplainer's Python scripts and vice versa. JSON is
//! written with Python's default separators (`", "`, `": "`) and keys in id order, so our files
//! diff cleanly against the originals.
//!
//! One deliberate difference: `datamaps.json` maps the *source's* raw ids (reviewerID, ASIN,
//! MovieLens ids) to our ids even after stage 2, where the original maps stage-1 integer ids
//! (spec §9 quirk 11). A self-contained map is what later tools actually want; `id2item` and the
//! `asin` field of `metadata.json` always agree.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lines::{self, OnBadLine, Skipped};
use super::types::{Dataset, ItemMeta};
use crate::error::{Error, IoContext, Result};

pub const SEQUENCES: &str = "sequential_data.txt";
pub const METADATA: &str = "metadata.json";
pub const DATAMAPS: &str = "datamaps.json";
pub const TRAIN: &str = "train.tsv";
pub const VALID: &str = "valid.tsv";
pub const TEST: &str = "test.tsv";
pub const USER_HISTORY: &str = "user_history.tsv";
pub const TRAIN_IDS: &str = "train_ids.csv";
pub const TEST_IDS: &str = "test_ids.csv";

impl Dataset {
    /// Writes the processed layout and the split files (spec §1.4) into `dir` (created if
    /// needed). The output depends only on the dataset, byte for byte.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).at(dir)?;
        self.write_sequences(&dir.join(SEQUENCES))?;
        self.write_metadata(&dir.join(METADATA))?;
        self.write_datamaps(&dir.join(DATAMAPS))?;
        self.write_split(dir)
    }

    /// Reads a processed-layout folder. `metadata.json` and `sequential_data.txt` are required;
    /// `datamaps.json` is optional (without it the raw user ids are the uids themselves). Any
    /// malformed line fails with `file:line: reason`.
    pub fn load(dir: &Path) -> Result<Dataset> {
        read_layout(
            LayoutInput::Dir(dir),
            "data.path",
            OnBadLine::Error,
            &mut Skipped::default(),
        )
    }

    fn write_sequences(&self, path: &Path) -> Result<()> {
        write_file(path, |w| {
            for (uid, seq) in self.users() {
                write!(w, "{uid}")?;
                for iid in seq {
                    write!(w, " {iid}")?;
                }
                writeln!(w)?;
            }
            Ok(())
        })
    }

    fn write_metadata(&self, path: &Path) -> Result<()> {
        write_file(path, |w| {
            for item in self.items.iter().skip(1) {
                write_python_json(&mut *w, &MetaOut::from(item))?;
                writeln!(w)?;
            }
            Ok(())
        })
    }

    fn write_datamaps(&self, path: &Path) -> Result<()> {
        let users: Vec<&str> = self
            .user_raw_ids
            .iter()
            .skip(1)
            .map(String::as_str)
            .collect();
        let items: Vec<&str> = self
            .items
            .iter()
            .skip(1)
            .map(|m| m.raw_id.as_str())
            .collect();
        write_file(path, |w| {
            w.write_all(b"{\"user2id\": ")?;
            write_ordered_map(
                w,
                users
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.to_string(), i + 1)),
            )?;
            w.write_all(b", \"item2id\": ")?;
            write_ordered_map(
                w,
                items
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.to_string(), i + 1)),
            )?;
            w.write_all(b", \"id2user\": ")?;
            write_ordered_map(
                w,
                users
                    .iter()
                    .enumerate()
                    .map(|(i, r)| ((i + 1).to_string(), r)),
            )?;
            w.write_all(b", \"id2item\": ")?;
            write_ordered_map(
                w,
                items
                    .iter()
                    .enumerate()
                    .map(|(i, r)| ((i + 1).to_string(), r)),
            )?;
            w.write_all(b"}")?;
            Ok(())
        })
    }

    /// Writes `train.tsv`, `valid.tsv`, `test.tsv`, `user_history.tsv`, `train_ids.csv` and
    /// `test_ids.csv` as `unirec_split.py` does (all tab-separated, with headers).
    pub fn write_split(&self, dir: &Path) -> Result<()> {
        let pairs = |targets: Vec<(u32, u32)>| {
            move |w: &mut dyn Write| -> std::io::Result<()> {
                writeln!(w, "user_id\titem_id")?;
                for (u, i) in &targets {
                    writeln!(w, "{u}\t{i}")?;
                }
                Ok(())
            }
        };
        let train: Vec<(u32, u32)> = self.train_targets().map(|t| (t.user, t.item)).collect();
        let test: Vec<(u32, u32)> = self.test_targets().map(|t| (t.user, t.item)).collect();
        write_file(&dir.join(TRAIN), pairs(train.clone()))?;
        write_file(&dir.join(TRAIN_IDS), pairs(train))?;
        write_file(&dir.join(VALID), pairs(test.clone()))?;
        write_file(&dir.join(TEST), pairs(test.clone()))?;
        write_file(&dir.join(TEST_IDS), pairs(test))?;
        write_file(&dir.join(USER_HISTORY), |w| {
            writeln!(w, "user_id\titem_seq")?;
            for (uid, seq) in self.users() {
                let joined: Vec<String> = seq.iter().map(u32::to_string).collect();
                writeln!(w, "{uid}\t{}", joined.join(","))?;
            }
            Ok(())
        })
    }
}

/// Where a processed layout comes from: a folder, or files compiled into the binary.
#[derive(Debug, Clone, Copy)]
pub enum LayoutInput<'a> {
    Dir(&'a Path),
    Embedded {
        /// Shown in messages in place of a folder, e.g. `<embedded games-mini>`.
        label: &'a str,
        sequences: &'static str,
        metadata: &'static str,
        datamaps: &'static str,
    },
}

impl LayoutInput<'_> {
    /// The path of `file` as messages show it.
    pub fn path(&self, file: &str) -> PathBuf {
        match self {
            LayoutInput::Dir(d) => d.join(file),
            LayoutInput::Embedded { label, .. } => Path::new(label).join(file),
        }
    }

    /// Opens `file`; `None` when it does not exist.
    fn open(&self, file: &str, key: &str) -> Result<Option<Box<dyn BufRead + Send>>> {
        match self {
            LayoutInput::Dir(d) => {
                let p = d.join(file);
                if p.exists() {
                    lines::open(&p, key).map(Some)
                } else {
                    Ok(None)
                }
            }
            LayoutInput::Embedded {
                sequences,
                metadata,
                datamaps,
                ..
            } => {
                let text: &'static str = match file {
                    SEQUENCES => sequences,
                    METADATA => metadata,
                    _ => datamaps,
                };
                Ok(Some(Box::new(std::io::Cursor::new(text.as_bytes()))))
            }
        }
    }

    /// Opens a required `file`, naming `key` when it is missing.
    fn require(&self, file: &str, key: &str) -> Result<Box<dyn BufRead + Send>> {
        self.open(file, key)?.ok_or_else(|| Error::MissingInput {
            key: key.to_string(),
            path: self.path(file),
        })
    }
}

/// Reads the processed layout; `key` names the spec key in missing-file errors.
pub(crate) fn read_layout(
    input: LayoutInput<'_>,
    key: &str,
    policy: OnBadLine,
    skipped: &mut Skipped,
) -> Result<Dataset> {
    if let LayoutInput::Dir(dir) = input {
        lines::require(dir, key)?;
    }
    let mut items = vec![ItemMeta::default()];
    let meta_path = input.path(METADATA);
    let mut expected_line = 1usize;
    // metadata.json is positional (line k is item k), so a bad line can never be skipped: it
    // would shift every later item.
    let reader = input.require(METADATA, key)?;
    lines::for_each_line_in(
        reader,
        &meta_path,
        OnBadLine::Error,
        skipped,
        |line_no, text| {
            if line_no != expected_line {
                return Err(format!(
                    "blank line {expected_line}; line k of {METADATA} must hold item k's record"
                ));
            }
            expected_line += 1;
            items.push(parse_meta_record(text)?);
            Ok(())
        },
    )?;
    let n_items = items.len() - 1;

    let maps_path = input.path(DATAMAPS);
    let maps = read_datamaps(input.open(DATAMAPS, key)?, &maps_path)?;
    if let Some(maps) = &maps {
        for (iid, item) in items.iter_mut().enumerate().skip(1) {
            match maps.id2item.get(&iid.to_string()) {
                Some(raw) if item.raw_id.is_empty() => item.raw_id = raw.clone(),
                Some(raw) if *raw != item.raw_id => {
                    return Err(Error::bad_input(
                        &maps_path,
                        1,
                        format!(
                            "id2item[\"{iid}\"] = {raw:?} but line {iid} of {METADATA} has asin {:?}",
                            item.raw_id
                        ),
                    ));
                }
                _ => {}
            }
        }
    }

    let seq_path = input.path(SEQUENCES);
    let reader = input.require(SEQUENCES, key)?;
    let mut sequences: Vec<Vec<u32>> = vec![Vec::new()];
    let mut last_line = 0usize;
    lines::for_each_line_in(reader, &seq_path, policy, skipped, |line_no, text| {
        last_line = line_no;
        let (uid, seq) = parse_sequence_line(text, n_items)?;
        let expected = sequences.len();
        // Under `on_bad_line = "skip"` a skipped user line leaves a gap: those users stay empty.
        let gap_from_skip = policy == OnBadLine::Skip && uid as usize > expected;
        if uid as usize != expected && !gap_from_skip {
            return Err(format!(
                "expected user id {expected} (users must be listed in id order 1, 2, ...), \
                 found {uid}"
            ));
        }
        sequences.resize(uid as usize, Vec::new());
        sequences.push(seq);
        Ok(())
    })?;
    if let Some(maps) = &maps {
        check_complete(
            maps,
            n_items,
            &mut sequences,
            &seq_path,
            last_line,
            policy,
            skipped,
        )?;
    }
    let n_users = sequences.len() - 1;
    let user_raw_ids = (0..=n_users)
        .map(|uid| match (uid, &maps) {
            (0, _) => String::new(),
            (_, Some(m)) => m
                .id2user
                .get(&uid.to_string())
                .cloned()
                .unwrap_or_else(|| uid.to_string()),
            (_, None) => uid.to_string(),
        })
        .collect();
    Ok(Dataset {
        n_users,
        n_items,
        sequences,
        items,
        user_raw_ids,
    })
}

/// `datamaps.json` lists every user and item; files that end early (a copy cut short) would
/// otherwise load as a smaller dataset without a word. Missing users are an error, or under
/// `on_bad_line = "skip"` empty users counted as skipped lines; missing items always fail
/// (`metadata.json` is positional).
fn check_complete(
    maps: &DataMaps,
    n_items: usize,
    sequences: &mut Vec<Vec<u32>>,
    seq_path: &Path,
    last_line: usize,
    policy: OnBadLine,
    skipped: &mut Skipped,
) -> Result<()> {
    let highest = |m: &HashMap<String, String>| {
        m.keys()
            .filter_map(|k| k.parse::<usize>().ok())
            .max()
            .unwrap_or(0)
    };
    let mapped_items = highest(&maps.id2item);
    if mapped_items > n_items {
        return Err(Error::bad_input(
            seq_path.with_file_name(METADATA),
            n_items + 1,
            format!(
                "{METADATA} ends after item {n_items} but {DATAMAPS} lists {mapped_items} items; \
                 the file is incomplete"
            ),
        ));
    }
    let mapped_users = highest(&maps.id2user);
    let n_users = sequences.len() - 1;
    for uid in n_users + 1..=mapped_users {
        lines::handle(
            seq_path,
            last_line + 1,
            policy,
            skipped,
            format!(
                "{SEQUENCES} ends after user {n_users} (line {last_line}) but {DATAMAPS} lists \
                 {mapped_users} users; user {uid} is missing (is the file truncated?)"
            ),
        )?;
        sequences.push(Vec::new());
    }
    Ok(())
}

/// Parses `uid iid1 iid2 ...` and checks the ids.
fn parse_sequence_line(text: &str, n_items: usize) -> std::result::Result<(u32, Vec<u32>), String> {
    let mut fields = text.split_ascii_whitespace();
    let uid_text = fields.next().ok_or("empty line")?;
    let uid = parse_id(uid_text, "user id")?;
    if uid == 0 {
        return Err("user id 0 is reserved for padding".into());
    }
    let mut seq = Vec::new();
    for (col, f) in fields.enumerate() {
        let iid = parse_id(f, "item id")?;
        if iid == 0 || iid as usize > n_items {
            return Err(format!(
                "item id {iid} (field {}) is outside 1..={n_items}, the items in {METADATA}",
                col + 2
            ));
        }
        seq.push(iid);
    }
    Ok((uid, seq))
}

fn parse_id(text: &str, what: &str) -> std::result::Result<u32, String> {
    text.parse::<u32>()
        .map_err(|_| format!("{what} {text:?} is not a non-negative integer"))
}

/// `datamaps.json`; only the id → raw directions are needed.
#[derive(Debug, Default, Deserialize)]
struct DataMaps {
    #[serde(default)]
    id2user: HashMap<String, String>,
    #[serde(default)]
    id2item: HashMap<String, String>,
}

fn read_datamaps(reader: Option<Box<dyn BufRead + Send>>, path: &Path) -> Result<Option<DataMaps>> {
    let Some(mut reader) = reader else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).at(path)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::bad_input(path, e.line(), format!("invalid datamaps JSON: {e}")))
}

/// Parses one metadata record (processed layout or raw Amazon `meta_*.json`). `asin` is
/// required; `title` must be a string when present; `brand`, `feature`, `description` and
/// `category` may be a string or a list of strings. Other keys are ignored.
pub(crate) fn parse_meta_record(text: &str) -> std::result::Result<ItemMeta, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("expected a JSON object".into());
    };
    let raw_id = match map.get("asin") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err("field \"asin\" must be a non-empty string".into()),
        None => return Err("missing field \"asin\"".into()),
    };
    let title = match map.get("title") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("field \"title\" must be a string".into()),
    };
    let texts = |k: &str| text_list(map.get(k));
    let brand = texts("brand").into_iter().next();
    Ok(ItemMeta {
        raw_id,
        title,
        brand,
        features: texts("feature"),
        description: texts("description"),
        categories: texts("category"),
    })
}

/// A string or a list of strings as a list; anything else (null, numbers, nested objects) as
/// nothing, since the original pipeline never reads those.
fn text_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// A metadata line as written: the keys RecExplainer's tools read, in a stable order.
#[derive(Serialize)]
struct MetaOut<'a> {
    asin: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    brand: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    feature: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    description: &'a [String],
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    category: &'a [String],
}

impl<'a> From<&'a ItemMeta> for MetaOut<'a> {
    fn from(m: &'a ItemMeta) -> Self {
        MetaOut {
            asin: &m.raw_id,
            title: &m.title,
            brand: m.brand.as_deref(),
            feature: &m.features,
            description: &m.description,
            category: &m.categories,
        }
    }
}

/// serde_json formatter that separates like Python's `json.dumps` defaults.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

fn write_python_json<W: Write>(w: W, value: &impl Serialize) -> std::io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(w, PythonFormatter);
    value.serialize(&mut ser).map_err(std::io::Error::other)
}

/// Writes `{"k": "v", ...}` in the given order (values as JSON strings, like the original's).
fn write_ordered_map<K: AsRef<str>, V: ToString>(
    w: &mut dyn Write,
    pairs: impl Iterator<Item = (K, V)>,
) -> std::io::Result<()> {
    w.write_all(b"{")?;
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            w.write_all(b", ")?;
        }
        serde_json::to_writer(&mut *w, k.as_ref())?;
        w.write_all(b": ")?;
        serde_json::to_writer(&mut *w, &v.to_string())?;
    }
    w.write_all(b"}")
}

/// Creates `path` and runs `body` on a buffered writer, attaching the path to any error.
pub(crate) fn write_file(
    path: &Path,
    body: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let file = File::create(path).at(path)?;
    let mut w = BufWriter::new(file);
    body(&mut w).at(path)?;
    w.flush().at(path)
}

/// All files [`Dataset::save`] writes, for fingerprints and checks.
pub fn layout_files(dir: &Path) -> Vec<PathBuf> {
    [
        SEQUENCES,
        METADATA,
        DATAMAPS,
        TRAIN,
        VALID,
        TEST,
        USER_HISTORY,
        TRAIN_IDS,
        TEST_IDS,
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect()
}
