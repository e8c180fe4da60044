//! The layout rules ARCHITECTURE.md states, checked on the source text so that they stay true.
//! Every `Invariant:` line in ARCHITECTURE.md names the test here that enforces it (as
//! `tidy::NAME`), and `every_invariant_has_a_test` keeps the two lists equal: a rule cannot be
//! written without a check, nor a check dropped while the rule is still claimed.
//!
//! Comments are ignored (they may name anything); string literals count as code.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The pipeline's stage modules in order: a stage may use earlier stages, never later ones.
const STAGE_ORDER: [&str; 9] = [
    "data",
    "recommender",
    "alignment",
    "train",
    "eval",
    "baselines",
    "explain",
    "judge",
    "discriminator",
];

/// Modules several stages share; they must not depend on any stage.
const SHARED_MODULES: [&str; 9] = [
    "llm",
    "encoder",
    "llm_stage",
    "openai",
    "stats",
    "hash",
    "fsutil",
    "training",
    "seed",
];

/// The tests below that ARCHITECTURE.md's `Invariant:` lines name.
const CHECKS: [&str; 11] = [
    "sled_stays_in_store",
    "plotters_stays_in_figures",
    "only_serve_listens",
    "stages_use_no_later_stage",
    "shared_modules_use_no_stage",
    "report_reads_no_store",
    "stats_is_pure",
    "integration_tests_are_one_binary",
    "typed_configs_are_structs",
    "sub_seeds_come_from_seed_rs",
    "stages_see_settings_not_the_spec",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One source file: its path relative to `src/` (with `/`) and its text without comments.
struct Source {
    path: String,
    code: String,
}

impl Source {
    /// The top-level module the file belongs to: `alignment` for `alignment/stage.rs`,
    /// `stats` for `stats.rs`.
    fn module(&self) -> &str {
        let first = self.path.split('/').next().unwrap_or_default();
        first.strip_suffix(".rs").unwrap_or(first)
    }

    /// Whether `word` occurs as a whole identifier (not as part of a longer one).
    fn names(&self, word: &str) -> bool {
        identifiers(&self.code).any(|w| w == word)
    }

    /// The crate's top-level items this file refers to through `crate::` paths, including the
    /// first segment of every path in a `crate::{...}` group.
    fn crate_uses(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = self.code.as_str();
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                out.extend(group_heads(group));
            } else if let Some(head) = identifiers(rest).next() {
                out.insert(head.to_string());
            }
        }
        out
    }
}

/// The first path segment of every item of a `{a::b, c, d::{e, f}}` group (`group` starts
/// after the opening brace).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expect_head = true;
    let mut chars = group.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expect_head = true,
            c if expect_head && depth == 0 && (c.is_alphabetic() || c == '_') => {
                let word: String = group[i..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                for _ in 1..word.chars().count() {
                    chars.next();
                }
                heads.push(word);
                expect_head = false;
            }
            _ => {}
        }
    }
    heads
}

/// The identifiers of `code`, in order.
fn identifiers(code: &str) -> impl Iterator<Item = &str> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        })
}

/// `text` with `//` and `/* */` comments blanked; string and char literals are kept whole, so a
/// `//` inside a URL string is not taken for a comment.
fn strip_comments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = block_comment_end(&chars, i);
        } else if c == '"' || (c == 'r' && matches!(next, Some('"' | '#')) && !ident_before(&out)) {
            let end = string_end(&chars, i);
            out.extend(&chars[i..end]);
            i = end;
        } else if c == '\'' {
            let end = char_literal_end(&chars, i).unwrap_or(i + 1);
            out.extend(&chars[i..end]);
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(out: &str) -> bool {
    out.chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// The index after the `*/` that closes the (possibly nested) block comment at `start`.
fn block_comment_end(chars: &[char], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < chars.len() {
        match (chars[i], chars[i + 1]) {
            ('/', '*') => {
                depth += 1;
                i += 2;
            }
            ('*', '/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    chars.len()
}

/// The index after the string literal starting at `start` (`"..."`, `r"..."`, `r#"..."#`).
fn string_end(chars: &[char], start: usize) -> usize {
    if chars[start] == 'r' {
        let hashes = chars[start + 1..].iter().take_while(|&&c| c == '#').count();
        let body = start + 1 + hashes;
        if chars.get(body) != Some(&'"') {
            return start + 1; // a raw identifier (`r#type`), not a string
        }
        let closes = |i: usize| {
            chars[i] == '"'
                && chars
                    .get(i + 1..i + 1 + hashes)
                    .is_some_and(|h| h.iter().all(|&c| c == '#'))
        };
        return (body + 1..chars.len())
            .find(|&i| closes(i))
            .map_or(chars.len(), |i| i + 1 + hashes);
    }
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

/// The index after the char literal at `start`, or `None` when the quote starts a lifetime.
fn char_literal_end(chars: &[char], start: usize) -> Option<usize> {
    match chars.get(start + 1) {
        Some('\\') => {
            let close = chars[start + 2..].iter().position(|&c| c == '\'')?;
            Some(start + 2 + close + 1)
        }
        Some(_) if chars.get(start + 2) == Some(&'\'') => Some(start + 3),
        _ => None,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<Source> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 50, "src/ looks wrong: {} files", files.len());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let rel = p.strip_prefix(&src).unwrap();
            let path = rel.to_string_lossy().replace('\\', "/");
            Source {
                path,
                code: strip_comments(&text),
            }
        })
        .collect()
}

/// Fails with every offending file when `broken` is not empty.
fn assert_none(rule: &str, broken: Vec<String>) {
    assert!(
        broken.is_empty(),
        "ARCHITECTURE.md invariant `tidy::{rule}` is broken:\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn sled_stays_in_store() {
    let broken = sources()
        .into_iter()
        .filter(|s| s.module() != "store" && s.names("sled"))
        .map(|s| s.path)
        .collect();
    assert_none("sled_stays_in_store", broken);
}

#[test]
fn plotters_stays_in_figures() {
    let broken = sources()
        .into_iter()
        .filter(|s| s.path != "report/figures.rs" && s.names("plotters"))
        .map(|s| s.path)
        .collect();
    assert_none("plotters_stays_in_figures", broken);
}

#[test]
fn only_serve_listens() {
    let broken = sources()
        .into_iter()
        .filter(|s| {
            s.path != "serve.rs"
                && ["axum", "TcpListener", "UdpSocket"]
                    .iter()
                    .any(|w| s.names(w))
        })
        .map(|s| s.path)
        .collect();
    assert_none("only_serve_listens", broken);
}

#[test]
fn stages_use_no_later_stage() {
    let mut broken = Vec::new();
    for s in sources() {
        let Some(rank) = STAGE_ORDER.iter().position(|&m| m == s.module()) else {
            continue;
        };
        for used in s.crate_uses() {
            if STAGE_ORDER[rank + 1..].contains(&used.as_str()) {
                broken.push(format!(
                    "{} (stage {}) uses crate::{used}",
                    s.path,
                    s.module()
                ));
            }
        }
    }
    assert_none("stages_use_no_later_stage", broken);
}

#[test]
fn shared_modules_use_no_stage() {
    let mut broken = Vec::new();
    for s in sources() {
        if !SHARED_MODULES.contains(&s.module()) {
            continue;
        }
        for used in s.crate_uses() {
            if STAGE_ORDER.contains(&used.as_str()) {
                broken.push(format!("{} uses the stage crate::{used}", s.path));
            }
        }
    }
    assert_none("shared_modules_use_no_stage", broken);
}

#[test]
fn report_reads_no_store() {
    let mut broken = Vec::new();
    for s in sources().into_iter().filter(|s| s.module() == "report") {
        let uses = s.crate_uses();
        for forbidden in ["store", "spec", "plan", "runner"] {
            if uses.contains(forbidden) {
                broken.push(format!("{} uses crate::{forbidden}", s.path));
            }
        }
        for word in ["sled", "toml"] {
            if s.names(word) {
                broken.push(format!("{} names {word}", s.path));
            }
        }
    }
    assert_none("report_reads_no_store", broken);
}

#[test]
fn stats_is_pure() {
    let s = sources()
        .into_iter()
        .find(|s| s.path == "stats.rs")
        .unwrap();
    let mut broken = Vec::new();
    let allowed = ["Error", "Result", "error"];
    for used in s.crate_uses() {
        if !allowed.contains(&used.as_str()) {
            broken.push(format!("stats.rs uses crate::{used}"));
        }
    }
    for word in ["sled", "toml", "fs", "File"] {
        if s.names(word) {
            broken.push(format!("stats.rs names {word}"));
        }
    }
    assert_none("stats_is_pure", broken);
}

#[test]
fn integration_tests_are_one_binary() {
    let tests = root().join("tests");
    let mut broken = Vec::new();
    for entry in std::fs::read_dir(&tests).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            broken.push(format!(
                "{} is a test binary of its own; make it a module of tests/it/",
                path.display()
            ));
        }
    }
    let it = tests.join("it");
    let main = strip_comments(&std::fs::read_to_string(it.join("main.rs")).unwrap());
    let declared: BTreeSet<&str> = main
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';'))
        .collect();
    for entry in std::fs::read_dir(&it).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let module = if path.is_dir() {
            name.clone()
        } else if let Some(m) = name.strip_suffix(".rs") {
            m.to_string()
        } else {
            continue;
        };
        if module != "main" && !declared.contains(module.as_str()) {
            broken.push(format!(
                "tests/it/{name} is not declared in tests/it/main.rs, so it never runs"
            ));
        }
    }
    assert_none("integration_tests_are_one_binary", broken);
}

/// What parses JSON into an untyped `serde_json::Value` (and so reads it with getters).
const VALUE_PARSES: [&str; 7] = [
    "::<Value>",
    "::<serde_json::Value>",
    ": Value = serde_json::from",
    ": serde_json::Value = serde_json::from",
    ": Value = serde_json::to_value",
    ": serde_json::Value = serde_json::to_value",
    ".as_object()",
];

#[test]
fn typed_configs_are_structs() {
    let mut broken = Vec::new();
    for s in sources().into_iter().filter(|s| s.module() == "llm") {
        for (n, line) in s.code.lines().enumerate() {
            if let Some(p) = VALUE_PARSES.iter().find(|p| line.contains(*p)) {
                broken.push(format!("src/{}:{}: `{p}`", s.path, n + 1));
            }
        }
    }
    assert_none("typed_configs_are_structs", broken);
}

#[test]
fn sub_seeds_come_from_seed_rs() {
    let mut broken = Vec::new();
    for s in sources().into_iter().filter(|s| s.path != "seed.rs") {
        let code = s.code.replace(char::is_whitespace, "");
        let patterns = [
            "set_stream(",
            "seed^",
            "^seed",
            "seed+",
            "seed*",
            "seed.wrapping_",
            "seed.rotate_",
        ];
        for p in patterns {
            if code.contains(p) {
                broken.push(format!("src/{} derives a seed with `{p}`", s.path));
            }
        }
    }
    assert_none("sub_seeds_come_from_seed_rs", broken);
}

#[test]
fn stages_see_settings_not_the_spec() {
    let pipeline = sources()
        .into_iter()
        .find(|s| s.path == "pipeline.rs")
        .expect("src/pipeline.rs");
    let start = pipeline
        .code
        .find("pub struct StageContext")
        .expect("StageContext is declared in src/pipeline.rs");
    let body = &pipeline.code[start..];
    let body = &body[..body.find('}').expect("the struct closes")];
    let broken: Vec<String> = ["RawSpec", "spec_dir", "run_seed", "spec"]
        .iter()
        .filter(|w| identifiers(body).any(|i| i == **w))
        .map(|w| format!("src/pipeline.rs: StageContext has `{w}`"))
        .collect();
    assert_none("stages_see_settings_not_the_spec", broken);
}

#[test]
fn every_invariant_has_a_test() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut named = BTreeSet::new();
    for (i, first) in lines.iter().enumerate() {
        if !first.contains("Invariant:") {
            continue;
        }
        // A list item goes on over the indented lines below it.
        let continued = lines[i + 1..]
            .iter()
            .take_while(|l| l.starts_with(' ') && !l.trim().is_empty());
        let line = std::iter::once(*first)
            .chain(continued.copied())
            .collect::<Vec<_>>()
            .join(" ");
        let check = line
            .split("`tidy::")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .unwrap_or_else(|| panic!("an Invariant: line names no `tidy::` test: {line}"));
        named.insert(check.to_string());
    }
    let known: BTreeSet<String> = CHECKS.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        named, known,
        "ARCHITECTURE.md's invariants and this file's checks"
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    let s = Source {
        path: "alignment/stage.rs".into(),
        code: strip_comments(
            "// crate::judge in a comment\n/* sled */ let u = \"http://x\"; let c = '\"';\n\
             use crate::{data::Dataset, judge::ask, error::{Error, Result}};\n\
             fn f<'a>() { crate::explain::go(); my_crate::train::x(); }\n",
        ),
    };
    assert!(!s.names("sled"), "comments are ignored: {}", s.code);
    assert!(
        s.code.contains("\"http://x\""),
        "strings are kept: {}",
        s.code
    );
    let uses: Vec<String> = s.crate_uses().into_iter().collect();
    assert_eq!(uses, ["data", "error", "explain", "judge"]);
    assert_eq!(s.module(), "alignment");
    assert_eq!(group_heads("a::b, c, d::{e, f}}, g"), ["a", "c", "d"]);
}
