//! Prompt templates as data: a TOML file of paraphrases per task, checked on load and hashed.
//!
//! The paraphrases are what an aligned model sees, so they are part of the experiment: keeping
//! them in a versioned data file (not in code) lets a spec point at another wording, and the
//! file's SHA-256 goes into the stage fingerprint so any edit reruns the stage.
//!
//! File layout (`data/templates/alignment.toml`): `version`, a `[tasks]` table of lists keyed by
//! task name (plus `test_iid2title`, the item-recovery wording), and an `[explain]` table with the
//! single explanation prompt `uidiid2explan` and the `summary_query` instruction of §1.8.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::Rng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Task;
use crate::error::{Error, IoContext, Result};

/// The built-in template file, compiled in so the stage works from any folder.
pub const BUILTIN_TEMPLATES: &str = include_str!("../../data/templates/alignment.toml");
/// Where the built-in file lives in the repository (for messages).
pub const BUILTIN_PATH: &str = "data/templates/alignment.toml";

/// The name of the item-recovery evaluation set (`iid2title` valid records).
pub const ITEM_RECOVERY_SET: &str = "test_iid2title";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    version: u32,
    tasks: BTreeMap<String, Vec<String>>,
    explain: ExplainTemplates,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainTemplates {
    uidiid2explan: String,
    summary_query: String,
}

/// A loaded, checked template file.
#[derive(Debug, Clone)]
pub struct Templates {
    pub version: u32,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// Where the file came from (for messages).
    pub source: PathBuf,
    sets: BTreeMap<String, Vec<String>>,
    pub explain: String,
    pub summary_query: String,
}

impl Templates {
    /// The compiled-in default templates.
    pub fn builtin() -> Templates {
        Templates::parse(Path::new(BUILTIN_PATH), BUILTIN_TEMPLATES)
            .expect("the built-in template file is checked by a unit test")
    }

    /// Reads and checks a template file.
    pub fn load(path: &Path) -> Result<Templates> {
        let text = std::fs::read_to_string(path).at(path)?;
        Templates::parse(path, &text)
    }

    /// Parses and checks template text; `path` is used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Templates> {
        let file: TemplateFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .unwrap_or(0);
            Error::bad_input(path, line, e.message().trim().to_string())
        })?;
        let bad = |reason: String| Error::bad_input(path, line_of_key(text, &reason), reason);
        for task in Task::ALL {
            let needed = [task.as_str()];
            let extra = if *task == Task::Iid2Title {
                &[ITEM_RECOVERY_SET][..]
            } else {
                &[]
            };
            for name in needed.iter().chain(extra) {
                let Some(list) = file.tasks.get(*name) else {
                    return Err(bad(format!("tasks.{name}: missing template list")));
                };
                if list.is_empty() {
                    return Err(bad(format!("tasks.{name}: needs at least one template")));
                }
                for (i, t) in list.iter().enumerate() {
                    check_slots(t, task.slots())
                        .map_err(|why| bad(format!("tasks.{name}[{i}]: {why}")))?;
                }
            }
        }
        for name in file.tasks.keys() {
            let known = name == ITEM_RECOVERY_SET || name.parse::<Task>().is_ok();
            if !known {
                return Err(bad(format!("tasks.{name}: not an alignment task")));
            }
        }
        check_slots(&file.explain.uidiid2explan, 2)
            .map_err(|why| bad(format!("explain.uidiid2explan: {why}")))?;
        check_slots(&file.explain.summary_query, 1)
            .map_err(|why| bad(format!("explain.summary_query: {why}")))?;
        Ok(Templates {
            version: file.version,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
            source: path.to_path_buf(),
            sets: file.tasks,
            explain: file.explain.uidiid2explan,
            summary_query: file.explain.summary_query,
        })
    }

    /// The paraphrases of a set (a task name or [`ITEM_RECOVERY_SET`]).
    pub fn set(&self, name: &str) -> &[String] {
        self.sets
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_else(|| panic!("template set {name} was checked on load"))
    }

    /// Draws one paraphrase of `set` uniformly; returns its index and text.
    pub fn choose(&self, set: &str, rng: &mut impl Rng) -> (usize, &str) {
        let list = self.set(set);
        let i = rng.random_range(0..list.len());
        (i, &list[i])
    }
}

/// Fills `{0}` and `{1}` with the slot texts (the original's `str.format`).
///
/// Slots are substituted in one left-to-right pass, so a slot text that itself contains `{1}`
/// is never substituted again.
pub fn fill(template: &str, slots: &[String]) -> String {
    let mut out =
        String::with_capacity(template.len() + slots.iter().map(String::len).sum::<usize>());
    let mut rest = template;
    while let Some(pos) = rest.find('{') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let slot = ["{0}", "{1}"].iter().position(|p| tail.starts_with(p));
        match slot.and_then(|k| slots.get(k)) {
            Some(text) => {
                out.push_str(text);
                rest = &tail[3..];
            }
            None => {
                out.push('{');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A template must use exactly the slots of its task, each once.
fn check_slots(template: &str, slots: usize) -> std::result::Result<(), String> {
    for k in 0..2 {
        let marker = format!("{{{k}}}");
        let n = template.matches(&marker).count();
        let want = usize::from(k < slots);
        if n != want {
            return Err(format!(
                "uses {marker} {n} times, expected {want}: {template:?}"
            ));
        }
    }
    Ok(())
}

/// Best-effort line of the key named at the start of a message such as `tasks.uid2next[3]: ...`.
fn line_of_key(text: &str, reason: &str) -> usize {
    let key = reason.split([':', '.', '[']).nth(1).unwrap_or("").trim();
    if key.is_empty() {
        return 0;
    }
    text.lines()
        .position(|l| l.trim_start().starts_with(key))
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn builtin_file_is_complete_and_varied() {
        let t = Templates::builtin();
        assert_eq!(t.version, 1);
        assert_eq!(t.sha256.len(), 64);
        for task in Task::ALL {
            let n = t.set(task.as_str()).len();
            assert!((8..=13).contains(&n), "{task}: {n} paraphrases");
        }
        assert_eq!(t.set(ITEM_RECOVERY_SET).len(), 8);
        // The item-recovery wording must not overlap the training wording.
        for v in t.set(ITEM_RECOVERY_SET) {
            assert!(!t.set("iid2title").contains(v), "{v}");
        }
    }

    #[test]
    fn fill_substitutes_once_left_to_right() {
        let s = fill("A {0} B {1} C {2}", &["x{1}".into(), "y".into()]);
        assert_eq!(s, "A x{1} B y C {2}");
    }

    #[test]
    fn rejects_a_template_with_a_missing_slot() {
        let bad = BUILTIN_TEMPLATES.replacen(
            "\"Which title belongs to the item: {0} ?\"",
            "\"Which title belongs to the item?\"",
            1,
        );
        let err = Templates::parse(Path::new("t.toml"), &bad)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tasks.iid2title[0]") && err.contains("t.toml:"),
            "{err}"
        );
    }

    #[test]
    fn choose_is_seeded() {
        let t = Templates::builtin();
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20)
                .map(|_| t.choose("uid2next", &mut rng).0)
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }
}
