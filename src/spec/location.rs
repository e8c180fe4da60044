//! Maps TOML byte offsets to key paths and `line:col`, so every spec error can say exactly where.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One key of the document with the spans of the key and of its value.
#[derive(Debug, Clone)]
struct Entry {
    path: String,
    key: Range<usize>,
    value: Range<usize>,
}

/// Key paths and positions of one TOML document.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    entries: Vec<Entry>,
    line_starts: Vec<usize>,
}

impl SourceMap {
    /// Indexes `text`; a syntax error yields an empty map (the caller reports the parse error).
    pub fn new(text: &str) -> Self {
        let mut entries = Vec::new();
        if let Ok(doc) = DeTable::parse(text) {
            collect(doc.get_ref(), "", &mut entries);
        }
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceMap {
            entries,
            line_starts,
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        (line, offset - self.line_starts[line - 1] + 1)
    }

    /// Position of the key at `path` (e.g. `alignment.mode`), or of its nearest present ancestor.
    pub fn locate(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(e) = self.entries.iter().find(|e| e.path == p) {
                return Some(self.line_col(e.value.start));
            }
            p = &p[..p.rfind(['.', '['])?];
        }
    }

    /// The deepest key whose key or value span contains `offset`.
    pub fn path_at(&self, offset: usize) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| {
                e.key.contains(&offset) || e.value.contains(&offset) || e.value.end == offset
            })
            .max_by_key(|e| e.path.len())
            .map(|e| e.path.as_str())
    }
}

fn collect(table: &DeTable<'_>, prefix: &str, out: &mut Vec<Entry>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        out.push(Entry {
            path: path.clone(),
            key: key.span(),
            value: value.span(),
        });
        collect_value(value.get_ref(), &path, out);
    }
}

fn collect_value(value: &DeValue<'_>, path: &str, out: &mut Vec<Entry>) {
    match value {
        DeValue::Table(t) => collect(t, path, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                out.push(Entry {
                    path: p.clone(),
                    key: item.span(),
                    value: item.span(),
                });
                collect_value(item.get_ref(), &p, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_positions() {
        let text = "[experiment]\nname = \"x\"\n\n[alignment]\nmode = \"intentions\"\n";
        let map = SourceMap::new(text);
        assert_eq!(map.locate("alignment.mode"), Some((5, 8)));
        let off = text.find("\"intentions\"").unwrap();
        assert_eq!(map.path_at(off + 2), Some("alignment.mode"));
        assert_eq!(map.line_col(0), (1, 1));
    }
}
