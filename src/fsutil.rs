//! File helpers every module shares. Writes never leave a half-written file behind: they go to
//! a sibling temporary file that is then renamed over the target (atomic on the same file
//! system). JSON Lines files are read and written here, once for the whole crate.

use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, IoContext, Result};

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes `path` atomically with what `fill` writes into a buffered temporary file.
fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).at(dir)?;
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    {
        let mut w = BufWriter::new(File::create(&tmp).at(&tmp)?);
        fill(&mut w).at(&tmp)?;
        let f = w.into_inner().map_err(|e| e.into_error()).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    std::fs::rename(&tmp, path).at(path)
}

/// Writes one JSON value per line, atomically.
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<()> {
    write_atomic_with(path, |w| {
        for r in records {
            serde_json::to_writer(&mut *w, r)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// A CSV writer over `out` as every CSV of the crate is written: comma-separated, `\n` line
/// ends, fields quoted only when they need it (RFC 4180), rows of any length.
pub fn csv_writer<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new().flexible(true).from_writer(out)
}

/// Writes a CSV file, header row first, atomically.
pub fn write_csv<H, R>(path: &Path, header: &[H], rows: impl IntoIterator<Item = R>) -> Result<()>
where
    H: AsRef<[u8]>,
    R: IntoIterator,
    R::Item: AsRef<[u8]>,
{
    write_atomic_with(path, |w| {
        let mut csv = csv_writer(w);
        csv.write_record(header)?;
        for row in rows {
            csv.write_record(row)?;
        }
        csv.flush()
    })
}

/// Reads a JSON Lines file (blank lines skipped); a malformed line fails with file:line.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let file = File::open(path).at(path)?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.at(path)?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .map_err(|e| Error::bad_input(path, n + 1, e.to_string()))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_round_trips_and_names_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/rows.jsonl");
        let rows = vec![
            serde_json::json!({"a": 1}),
            serde_json::json!({"b": "x\ny"}),
        ];
        write_jsonl(&path, &rows).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":\"x\\ny\"}\n"
        );
        assert_eq!(read_jsonl::<serde_json::Value>(&path).unwrap(), rows);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );

        std::fs::write(&path, "{\"a\":1}\n\n{oops\n").unwrap();
        let err = read_jsonl::<serde_json::Value>(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("rows.jsonl") && err.contains(":3"), "{err}");
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let rows = [["plain", "a, b"], ["say \"hi\"", "two\nlines"]];
        write_csv(&path, &["x", "y"], rows).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "x,y\nplain,\"a, b\"\n\"say \"\"hi\"\"\",\"two\nlines\"\n"
        );
    }
}
