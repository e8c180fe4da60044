//! Writes a report's files: `index.md`, the self-contained `index.html`, `tables/*` and the
//! figure files (already written by `figures`).
//!
//! Every string that came from runs (ids, params, metric names, labels, model output) passes
//! through [`escape_html`]: a run's text must never become markup.

use std::fmt::Write as _;
use std::path::Path;

use base64::Engine as _;

use super::table::escape_markdown_text;
use super::{Figure, ReportContent, Section};
use crate::Result;
use crate::error::IoContext;

/// Escapes the five HTML special characters.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).at(path)
}

pub(crate) fn write_all(content: &ReportContent, out_dir: &Path) -> Result<()> {
    let tables_dir = out_dir.join("tables");
    std::fs::create_dir_all(&tables_dir).at(&tables_dir)?;
    for t in content.sections.iter().flat_map(|s| &s.tables) {
        write(&tables_dir.join(format!("{}.md", t.id)), &t.to_markdown())?;
        write(&tables_dir.join(format!("{}.tex", t.id)), &t.to_latex())?;
        write(&tables_dir.join(format!("{}.csv", t.id)), &t.to_csv())?;
    }
    write(&out_dir.join("index.md"), &markdown(content))?;
    write(&out_dir.join("index.html"), &html(content))
}

fn markdown(content: &ReportContent) -> String {
    let md = escape_markdown_text;
    let mut out = format!("# {}\n\n", md(&content.title));
    for s in &content.sections {
        let _ = writeln!(out, "## {}\n", md(&s.title));
        for p in &s.text {
            let _ = writeln!(out, "{}\n", md(p));
        }
        for t in &s.tables {
            let _ = writeln!(
                out,
                "**{}** ([md](tables/{id}.md), [LaTeX](tables/{id}.tex), [CSV](tables/{id}.csv))\n",
                md(&t.caption),
                id = t.id
            );
            let _ = writeln!(out, "{}", t.to_markdown());
        }
        markdown_figures(&mut out, &s.figures);
    }
    if !content.notes.is_empty() {
        out.push_str("## Notes\n\n");
        for n in &content.notes {
            let _ = writeln!(out, "- {}", md(n));
        }
    }
    out
}

fn markdown_figures(out: &mut String, figures: &[Figure]) {
    for f in figures {
        let _ = writeln!(
            out,
            "![{0}](figures/{1}.png)\n\n{0} ([SVG](figures/{1}.svg))\n",
            escape_markdown_text(&f.caption),
            f.id
        );
    }
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;max-width:1100px;\
margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\
th,td{border-bottom:1px solid #ccc;padding:0.25em 0.6em;text-align:right}th:first-child,\
td:first-child{text-align:left}thead th{border-bottom:2px solid #444}figure{margin:1.5em 0}\
img{max-width:100%;border:1px solid #ddd}figcaption{font-size:0.9em;color:#444}\
.files{font-size:0.85em}.scroll{overflow-x:auto}td{white-space:nowrap}.broken{outline:3px solid red}";

/// Marks each image with its decoded width (`data-natural-width`) once the page has loaded, and
/// flags images that failed to load, so a browser (or a headless test) can see broken figures.
/// It also records where the first table ends (`data-first-table-bottom`, in CSS pixels from the
/// top of the page) and the window's height (`data-window-height`): whether the headline
/// numbers are on the first screen.
const CHECK_SCRIPT: &str = "window.addEventListener('load',function(){var bad=0;\
for(var i=0;i<document.images.length;i++){var im=document.images[i];\
im.setAttribute('data-natural-width',im.naturalWidth);\
if(!im.complete||im.naturalWidth===0){im.className+=' broken';bad++;}}\
var b=document.body;b.setAttribute('data-figures-loaded',document.images.length-bad);\
b.setAttribute('data-figures-broken',bad);var t=document.querySelector('table');\
if(t){var r=t.getBoundingClientRect();b.setAttribute('data-first-table-id',t.id);\
b.setAttribute('data-first-table-bottom',Math.round(r.bottom+window.scrollY));\
b.setAttribute('data-first-table-right',Math.round(r.right));}\
b.setAttribute('data-window-height',window.innerHeight);\
b.setAttribute('data-window-width',window.innerWidth);});";

fn html(content: &ReportContent) -> String {
    let mut out = String::new();
    let title = escape_html(&content.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
         <style>{STYLE}</style>\n<script>{CHECK_SCRIPT}</script>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    for s in &content.sections {
        html_section(&mut out, s);
    }
    if !content.notes.is_empty() {
        out.push_str("<h2>Notes</h2>\n<ul>\n");
        for n in &content.notes {
            let _ = writeln!(out, "<li>{}</li>", escape_html(n));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn html_section(out: &mut String, s: &Section) {
    let _ = writeln!(out, "<h2>{}</h2>", escape_html(&s.title));
    for p in &s.text {
        let _ = writeln!(out, "<p>{}</p>", escape_html(p));
    }
    for t in &s.tables {
        let id = escape_html(&t.id);
        let _ = writeln!(
            out,
            "<p class=\"files\"><b>{}</b> <a href=\"tables/{id}.md\">md</a> \
             <a href=\"tables/{id}.tex\">LaTeX</a> <a href=\"tables/{id}.csv\">CSV</a></p>",
            escape_html(&t.caption)
        );
        let _ = writeln!(
            out,
            "<div class=\"scroll\"><table id=\"table-{id}\">\n<thead><tr>"
        );
        for h in &t.header {
            let _ = write!(out, "<th>{}</th>", escape_html(h));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for r in &t.rows {
            out.push_str("<tr>");
            for c in r {
                let _ = write!(out, "<td>{}</td>", escape_html(c));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table></div>\n");
    }
    html_figures(out, &s.figures);
}

fn html_figures(out: &mut String, figures: &[Figure]) {
    let b64 = base64::engine::general_purpose::STANDARD;
    for f in figures {
        let id = escape_html(&f.id);
        let caption = escape_html(&f.caption);
        let _ = writeln!(
            out,
            "<figure id=\"fig-{id}\">\n<img src=\"data:image/png;base64,{}\" alt=\"{caption}\" width=\"960\">\n\
             <figcaption>{caption} <a href=\"figures/{id}.svg\">SVG</a> \
             <a href=\"figures/{id}.png\">PNG</a></figcaption>\n</figure>",
            b64.encode(&f.png)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_covers_markup_and_attributes() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
