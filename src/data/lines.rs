//! Streaming line input shared by every reader.
//!
//! Source files can be large (the raw Amazon Games reviews are ~500 MB unpacked), so nothing reads
//! a whole file into one string: lines are read one at a time into a reused buffer. Files may be
//! gzip-compressed whatever their name says; the content's magic bytes decide. Every line carries
//! its 1-based number so errors can say `file:line`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::error::{Error, IoContext, Result};
use crate::spec_enum;

spec_enum! {
    /// What a reader does with a malformed line (`data.on_bad_line`).
    pub enum OnBadLine ("on_bad_line") {
        /// Stop with `file:line: reason`.
        Error = "error",
        /// Skip the line and count it in the stats.
        Skip = "skip",
    }
}

/// Opens `path` for buffered reading, un-gzipping when the content starts with the gzip magic.
/// A missing file is reported as [`Error::MissingInput`] naming `key`, the spec key that led here.
pub fn open(path: &Path, key: &str) -> Result<Box<dyn BufRead + Send>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::MissingInput {
                key: key.to_string(),
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let gz = reader.fill_buf().at(path)?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(reader),
        ))
    } else {
        Box::new(reader)
    })
}

/// Checks that `path` exists (as a file or folder) before a reader starts, so the error names the
/// spec key rather than a later I/O failure.
pub fn require(path: &Path, key: &str) -> Result<()> {
    if path.exists() {
        Ok(())
    } else {
        Err(Error::MissingInput {
            key: key.to_string(),
            path: path.to_path_buf(),
        })
    }
}

/// Counts of lines a reader skipped under `on_bad_line = "skip"`, per file.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Skipped {
    pub per_file: Vec<(PathBuf, usize)>,
}

impl Skipped {
    pub fn total(&self) -> usize {
        self.per_file.iter().map(|(_, n)| n).sum()
    }

    fn add(&mut self, file: &Path) {
        match self.per_file.iter_mut().find(|(p, _)| p == file) {
            Some((_, n)) => *n += 1,
            None => self.per_file.push((file.to_path_buf(), 1)),
        }
    }
}

/// Reads `path` line by line and hands each non-blank line (without its line ending) and its
/// 1-based number to `f`. When `f` rejects a line with a reason, the policy decides: fail with
/// `file:line: reason`, or count it in `skipped` and go on. I/O and decompression errors always
/// fail.
pub fn for_each_line(
    path: &Path,
    key: &str,
    policy: OnBadLine,
    skipped: &mut Skipped,
    f: impl FnMut(usize, &str) -> std::result::Result<(), String>,
) -> Result<()> {
    for_each_line_in(open(path, key)?, path, policy, skipped, f)
}

/// [`for_each_line`] over an already open reader; `path` is only used in messages.
pub fn for_each_line_in(
    mut reader: Box<dyn BufRead + Send>,
    path: &Path,
    policy: OnBadLine,
    skipped: &mut Skipped,
    mut f: impl FnMut(usize, &str) -> std::result::Result<(), String>,
) -> Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).at(path)?;
        if n == 0 {
            return Ok(());
        }
        line_no += 1;
        if line_no % 65536 == 0 {
            crate::pipeline::check_cancel()?;
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim_end_matches(['\n', '\r']),
            Err(e) => {
                handle(
                    path,
                    line_no,
                    policy,
                    skipped,
                    format!("not valid UTF-8: {e}"),
                )?;
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        if let Err(reason) = f(line_no, text) {
            handle(path, line_no, policy, skipped, reason)?;
        }
    }
}

/// Applies the bad-line policy to a rejected line: fail, or count it and go on.
pub fn handle(
    path: &Path,
    line: usize,
    policy: OnBadLine,
    skipped: &mut Skipped,
    reason: String,
) -> Result<()> {
    match policy {
        OnBadLine::Error => Err(Error::bad_input(path, line, reason)),
        OnBadLine::Skip => {
            tracing::debug!("{}:{line}: skipped: {reason}", path.display());
            skipped.add(path);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_is_detected_by_content_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain-name.txt");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"a\n\nb\r\n").unwrap();
        std::fs::write(&path, enc.finish().unwrap()).unwrap();
        let mut seen = Vec::new();
        for_each_line(
            &path,
            "k",
            OnBadLine::Error,
            &mut Skipped::default(),
            |n, l| {
                seen.push((n, l.to_string()));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, vec![(1, "a".to_string()), (3, "b".to_string())]);
    }

    #[test]
    fn bad_lines_fail_or_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.txt");
        std::fs::write(&path, "ok\nbad\nok\nbad\n").unwrap();
        let check = |_: usize, l: &str| {
            if l == "bad" {
                Err("is bad".to_string())
            } else {
                Ok(())
            }
        };
        let err = for_each_line(&path, "k", OnBadLine::Error, &mut Skipped::default(), check)
            .unwrap_err();
        assert_eq!(err.to_string(), format!("{}:2: is bad", path.display()));
        let mut skipped = Skipped::default();
        for_each_line(&path, "k", OnBadLine::Skip, &mut skipped, check).unwrap();
        assert_eq!(skipped.total(), 2);
    }

    #[test]
    fn missing_file_names_the_key() {
        let err = open(Path::new("/no/such/file"), "data.path").err().unwrap();
        assert_eq!(err.to_string(), "data.path: file not found: /no/such/file");
    }
}
