//! Token counting for the length limits of the alignment data.
//!
//! The original cuts `feature2iid` / `description2iid` questions and filters ShareGPT prompts by
//! the backbone tokenizer's token count. The limits take a counting closure
//! (`&dyn Fn(&str) -> usize`): the stage passes [`TokenizerCounter`] over the backbone's own
//! tokenizer when the spec names a pretrained model, and [`estimate_tokens`], a conservative
//! estimate for Llama-family tokenizers, for the scratch model (whose vocabulary is learned from
//! these very records, so it cannot exist yet).

use std::cell::RefCell;

use crate::error::{Error, Result};
use crate::llm::tokenizer::Tokenizer;

/// Counts tokens as the original does, `len(tokenizer(text).input_ids)`: the backbone's
/// tokenizer with its special tokens (a BOS where the tokenizer adds one).
///
/// The limits want an infallible count, so an encoding error is kept and returned by
/// [`TokenizerCounter::finish`] (the count of that text reads as 0 meanwhile).
pub struct TokenizerCounter<'a> {
    tokenizer: &'a Tokenizer,
    error: RefCell<Option<Error>>,
}

impl<'a> TokenizerCounter<'a> {
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        TokenizerCounter {
            tokenizer,
            error: RefCell::new(None),
        }
    }

    pub fn count(&self, text: &str) -> usize {
        match self.tokenizer.encode(text, true) {
            Ok(ids) => ids.len(),
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e);
                0
            }
        }
    }

    /// The first encoding error, if any.
    pub fn finish(self) -> Result<()> {
        self.error.into_inner().map_or(Ok(()), Err)
    }
}

/// Estimates the token count of `text` for a Llama-family (SentencePiece / byte-level BPE)
/// tokenizer: the larger of the whitespace-separated word count and one token per 4 ASCII
/// characters plus one per non-ASCII character.
///
/// English prose averages about 4 characters per token, so the character term dominates there;
/// text made of many short words (lists, code) is caught by the word term; CJK and other
/// non-Latin scripts take roughly a token per character (often more in byte-level BPE), hence
/// the per-character count for non-ASCII. It errs on the high side so a limit keeps prompts
/// safely inside the context.
pub fn estimate_tokens(text: &str) -> usize {
    let (ascii, other) = text.chars().fold((0usize, 0usize), |(a, o), c| {
        if c.is_ascii() { (a + 1, o) } else { (a, o + 1) }
    });
    let by_chars = ascii.div_ceil(4) + other;
    let words = text.split_whitespace().count();
    by_chars.max(words)
}

/// The longest prefix of `text` (cut at a character boundary, trailing whitespace removed) whose
/// token count is at most `max_tokens`; `text` itself when it fits.
///
/// The prefix is found by bisection over character boundaries, which assumes the count grows
/// with the prefix (true of [`estimate_tokens`] and, up to merges at the cut, of tokenizers).
pub fn truncate_to_tokens<'a>(
    text: &'a str,
    max_tokens: usize,
    count: &dyn Fn(&str) -> usize,
) -> &'a str {
    if count(text) <= max_tokens {
        return text;
    }
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    // Invariant: prefix of `lo` chars fits, prefix of `hi` chars does not.
    let (mut lo, mut hi) = (0usize, bounds.len());
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if count(&text[..bounds[mid]]) <= max_tokens {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let end = bounds.get(lo).copied().unwrap_or(text.len());
    text[..end].trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_prose_lists_and_cjk() {
        assert_eq!(estimate_tokens(""), 0);
        // 43 ASCII chars -> 11; 9 words.
        assert_eq!(
            estimate_tokens("The quick brown fox jumps over the lazy dog"),
            11
        );
        // Many one-letter words: the word count wins.
        assert_eq!(estimate_tokens("a b c d e f g h"), 8);
        // Non-ASCII characters count one each.
        assert_eq!(estimate_tokens("日本語のテキスト"), 8);
    }

    #[test]
    fn truncates_to_the_longest_fitting_prefix() {
        let text = "one two three four five six seven eight";
        let words = |s: &str| s.split_whitespace().count();
        assert_eq!(truncate_to_tokens(text, 3, &words), "one two three");
        assert_eq!(truncate_to_tokens(text, 100, &words), text);
        assert_eq!(truncate_to_tokens(text, 0, &words), "");
        let cut = truncate_to_tokens("ééééé", 2, &|s: &str| s.chars().count());
        assert_eq!(cut, "éé");
    }

    #[test]
    fn the_tokenizer_counter_counts_the_backbones_tokens() {
        use crate::llm::chat::{ChatTemplate, TemplateName};
        let template = ChatTemplate::new(TemplateName::Llama2);
        let corpus = ["a collector of action games", "racing games on a handheld"];
        let tok = Tokenizer::train_bpe(corpus.iter(), &template.bpe_train_config(280)).unwrap();
        assert!(tok.adds_bos(), "the case the original's count includes");
        let counter = TokenizerCounter::new(&tok);
        let text = "a collector of racing games, and of action games on a handheld";
        let n = counter.count(text);
        assert_eq!(n, tok.encode(text, true).unwrap().len());
        assert_ne!(n, estimate_tokens(text), "a real count, not the estimate");
        let cut = truncate_to_tokens(text, n / 2, &|s: &str| counter.count(s));
        assert!(counter.count(cut) <= n / 2 && cut.len() < text.len() && text.starts_with(cut));
        counter.finish().unwrap();
    }
}
