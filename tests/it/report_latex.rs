//! The LaTeX tables are balanced and escaped, and compile with pdflatex when it is installed
//! (CI: `apt-get install -y texlive-latex-base texlive-latex-recommended`).

use crate::report_support;
use crate::skip_support;

use std::path::Path;
use std::process::Command;

use recx::report::{ReportOptions, render_report};

/// Runs whose group labels carry every LaTeX special character.
fn tricky_runs() -> Vec<recx::report::RunData> {
    let mut runs = report_support::three_seeds_two_modes();
    for r in &mut runs {
        let name = if r.params["alignment.mode"] == "both" {
            "a_b & 50% #1 {x} ~y^2 \\path $"
        } else {
            "plain"
        };
        r.params.insert("llm.name".into(), name.into());
    }
    runs
}

fn render() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = ReportOptions {
        paper: true,
        bootstrap_resamples: 1000,
        ..ReportOptions::default()
    };
    let summary = render_report(&tricky_runs(), &opts, dir.path()).unwrap();
    (dir, summary.tables)
}

/// Removes escaped characters (`\&`, `\{`, ...) so what is left are the real specials.
fn strip_escapes(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) if "&%$#_{}".contains(n) => out.push('·'),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn check_balanced_and_escaped(path: &Path) {
    let tex = std::fs::read_to_string(path).unwrap();
    let name = path.display();
    let mut depth = 0i64;
    let mut envs: Vec<String> = Vec::new();
    let mut columns = None;
    for line in tex.lines() {
        let plain = strip_escapes(line);
        for c in plain.chars() {
            depth += match c {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            assert!(depth >= 0, "{name}: unbalanced '}}' in {line:?}");
            assert!(!"%#_^~".contains(c), "{name}: unescaped {c:?} in {line:?}");
        }
        // `$` only in the math snippets the escaper writes, in pairs.
        assert_eq!(
            plain.matches('$').count() % 2,
            0,
            "{name}: odd '$' in {line:?}"
        );
        if let Some(env) = plain
            .strip_prefix("\\begin{")
            .and_then(|r| r.split('}').next())
        {
            envs.push(env.to_string());
        }
        if let Some(env) = plain
            .strip_prefix("\\end{")
            .and_then(|r| r.split('}').next())
        {
            assert_eq!(
                envs.pop().as_deref(),
                Some(env),
                "{name}: \\end{{{env}}} without its begin"
            );
        }
        if let Some(spec) = plain.strip_prefix("\\begin{tabular}{") {
            columns = Some(spec.trim_end_matches('}').len());
        }
        if plain.ends_with("\\\\") {
            let cols = columns.expect("row before tabular");
            assert_eq!(
                plain.matches('&').count() + 1,
                cols,
                "{name}: wrong cell count in {line:?}"
            );
        }
    }
    assert_eq!(depth, 0, "{name}: unbalanced braces");
    assert!(envs.is_empty(), "{name}: unclosed {envs:?}");
    for rule in ["\\toprule", "\\midrule", "\\bottomrule"] {
        assert_eq!(tex.matches(rule).count(), 1, "{name}: {rule}");
    }
}

#[test]
fn latex_tables_are_balanced_and_escaped() {
    let (dir, tables) = render();
    assert!(tables.len() >= 6);
    for t in &tables {
        check_balanced_and_escaped(&dir.path().join(format!("tables/{t}.tex")));
    }
    let results = std::fs::read_to_string(dir.path().join("tables/results.tex")).unwrap();
    assert!(results.contains("a\\_b \\& 50\\% \\#1 \\{x\\} \\textasciitilde{}y\\textasciicircum{}2 \\textbackslash{}path \\$"));
}

#[test]
fn latex_tables_compile_with_pdflatex() {
    if Command::new("pdflatex").arg("--version").output().is_err() {
        skip_support::missing(
            "pdflatex not installed (apt-get install -y texlive-latex-base texlive-latex-recommended)",
        );
        return;
    }
    let (dir, tables) = render();
    let mut doc = String::from(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n\
         \\usepackage{booktabs}\n\\usepackage[margin=1cm,landscape]{geometry}\n\\begin{document}\n",
    );
    for t in &tables {
        doc.push_str(&format!("\\input{{tables/{t}.tex}}\n\\clearpage\n"));
    }
    doc.push_str("\\end{document}\n");
    std::fs::write(dir.path().join("all.tex"), doc).unwrap();
    let out = Command::new("pdflatex")
        .args(["-interaction=nonstopmode", "-halt-on-error", "all.tex"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pdflatex failed:\n{}",
        &log[log.len().saturating_sub(3000)..]
    );
    assert!(dir.path().join("all.pdf").is_file());
}
