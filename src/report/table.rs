//! One table model rendered three ways: Markdown (for index.md and reading), LaTeX with booktabs
//! (for papers) and CSV (for further analysis, with full-precision numbers where they differ
//! from the display cells).

use std::fmt::Write as _;

/// A table with display cells and, optionally, a separate machine-readable CSV form.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// File stem under `tables/`.
    pub id: String,
    pub caption: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Header and rows for the CSV when it should carry more than the display (raw numbers,
    /// one row per seed); `None` = the display cells.
    pub csv: Option<(Vec<String>, Vec<Vec<String>>)>,
}

impl Table {
    pub fn new(id: &str, caption: impl Into<String>, header: Vec<String>) -> Self {
        Table {
            id: id.into(),
            caption: caption.into(),
            header,
            rows: Vec::new(),
            csv: None,
        }
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let line = |cells: &[String]| {
            let escaped: Vec<String> = cells.iter().map(|c| escape_markdown(c)).collect();
            format!("| {} |\n", escaped.join(" | "))
        };
        out.push_str(&line(&self.header));
        let rule: Vec<&str> = (0..self.header.len())
            .map(|i| if i == 0 { "---" } else { "---:" })
            .collect();
        let _ = writeln!(out, "|{}|", rule.join("|"));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    /// A `table` float with a booktabs `tabular`; every cell is escaped.
    pub fn to_latex(&self) -> String {
        let cols = "l".to_string() + &"r".repeat(self.header.len().saturating_sub(1));
        let row = |cells: &[String]| {
            let escaped: Vec<String> = cells.iter().map(|c| escape_latex(c)).collect();
            format!("{} \\\\\n", escaped.join(" & "))
        };
        let mut out = String::new();
        out.push_str("\\begin{table}[t]\n\\centering\n");
        let _ = writeln!(out, "\\caption{{{}}}", escape_latex(&self.caption));
        let label: String = self
            .id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let _ = writeln!(out, "\\label{{tab:{label}}}");
        let _ = writeln!(out, "\\begin{{tabular}}{{{cols}}}");
        out.push_str("\\toprule\n");
        out.push_str(&row(&self.header));
        out.push_str("\\midrule\n");
        for r in &self.rows {
            out.push_str(&row(r));
        }
        out.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
        out
    }

    pub fn to_csv(&self) -> String {
        let (header, rows) = match &self.csv {
            Some((h, r)) => (h, r),
            None => (&self.header, &self.rows),
        };
        let mut w = crate::fsutil::csv_writer(Vec::new());
        for record in std::iter::once(header).chain(rows) {
            w.write_record(record).expect("CSV into memory cannot fail");
        }
        let bytes = w.into_inner().expect("CSV into memory cannot fail");
        String::from_utf8(bytes).expect("CSV of strings is UTF-8")
    }
}

/// Escapes a Markdown table cell: pipes and backslashes for the table, and the characters
/// that would start raw HTML (`<script>`, `<img onerror=...>`) as entities, because Markdown
/// renderers pass inline HTML through.
fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' => out.push(' '),
            _ => push_markdown_char(&mut out, c),
        }
    }
    out
}

/// Escapes Markdown running text (titles, captions, notes): only what starts raw HTML.
pub fn escape_markdown_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_markdown_char(&mut out, c);
    }
    out
}

fn push_markdown_char(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        _ => out.push(c),
    }
}

/// Escapes LaTeX's special characters so arbitrary text typesets literally.
pub fn escape_latex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '<' => out.push_str("\\textless{}"),
            '>' => out.push_str("\\textgreater{}"),
            '±' => out.push_str("$\\pm$"),
            '↑' => out.push_str("$\\uparrow$"),
            '↓' => out.push_str("$\\downarrow$"),
            'Δ' => out.push_str("$\\Delta$"),
            '−' => out.push('-'),
            '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new("t", "A & B: 50% of $x_1$", vec!["name".into(), "v".into()]);
        t.rows.push(vec!["a_b|c".into(), "1.0 ± 0.1".into()]);
        t.rows.push(vec!["q\"uote, x".into(), "2".into()]);
        t
    }

    #[test]
    fn latex_escapes_specials() {
        assert_eq!(
            escape_latex("a_b & 5% {x} ~^\\"),
            "a\\_b \\& 5\\% \\{x\\} \\textasciitilde{}\\textasciicircum{}\\textbackslash{}"
        );
        let tex = sample().to_latex();
        assert!(
            tex.contains("\\toprule") && tex.contains("\\midrule") && tex.contains("\\bottomrule")
        );
        assert!(tex.contains("a\\_b|c & 1.0 $\\pm$ 0.1 \\\\"));
        assert!(tex.contains("\\caption{A \\& B: 50\\% of \\$x\\_1\\$}"));
    }

    #[test]
    fn markdown_escapes_pipes() {
        let md = sample().to_markdown();
        assert!(md.contains("| a_b\\|c | 1.0 ± 0.1 |"));
        assert!(md.lines().nth(1).unwrap().starts_with("|---|"));
    }

    #[test]
    fn markdown_escapes_html() {
        let mut t = Table::new("t", "c", vec!["<b>name</b>".into(), "v".into()]);
        t.rows.push(vec![
            "<script>alert(1)</script>".into(),
            "<img src=x onerror=\"alert(2)\">".into(),
        ]);
        let md = t.to_markdown();
        assert!(!md.contains('<') && !md.contains('>'), "{md}");
        assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{md}");
        assert!(
            md.contains("&lt;img src=x onerror=\"alert(2)\"&gt;"),
            "{md}"
        );
        assert!(md.starts_with("| &lt;b&gt;name&lt;/b&gt; | v |"), "{md}");
    }

    #[test]
    fn csv_quotes_when_needed() {
        let csv = sample().to_csv();
        assert_eq!(csv, "name,v\na_b|c,1.0 ± 0.1\n\"q\"\"uote, x\",2\n");
    }
}
