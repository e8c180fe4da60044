//! The encoder's tokenizer: the checkpoint's own `tokenizer.json` (WordPiece for BERT models),
//! run by the `tokenizers` crate exactly as Python's fast tokenizer runs it, with
//! `[CLS] … [SEP]` added and the sequence truncated to the fine-tuning length.
//!
//! Padding is not the tokenizer's business here: batches are padded to their own longest
//! sequence by [`super::bert::TokenBatch`] (the original pads every text to 512; attention
//! ignores padded keys, so only the amount of computation differs).

use std::path::{Path, PathBuf};

use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{Error, Result};

/// A text tokenizer for the encoder: texts in, token ids (special tokens included) out.
pub struct EncoderTokenizer {
    inner: Tokenizer,
    pad_id: u32,
    path: PathBuf,
}

impl EncoderTokenizer {
    /// Reads `tokenizer.json` from a model folder; sequences are cut to `max_len` tokens
    /// (special tokens included), as `truncation=True, max_length=max_len` does in Python.
    pub fn open(dir: &Path, max_len: usize) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let mut inner = Tokenizer::from_file(&path)
            .map_err(|e| Error::model_file(&path, format!("not a tokenizer.json: {e}")))?;
        inner
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..Default::default()
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        inner.with_padding(None);
        let pad_id = ["[PAD]", "<pad>"]
            .iter()
            .find_map(|t| inner.token_to_id(t))
            .unwrap_or(0);
        Ok(EncoderTokenizer {
            inner,
            pad_id,
            path,
        })
    }

    /// The id batches are padded with.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Token ids of each text, `[CLS]` and `[SEP]` included.
    pub fn encode(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .map(|t| {
                self.inner
                    .encode(t.as_str(), true)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(|e| {
                        Error::Tokenizer(format!("{}: encoding failed: {e}", self.path.display()))
                    })
            })
            .collect()
    }
}
