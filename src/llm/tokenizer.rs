//! The LLM tokenizer: one type for every way recx gets a vocabulary.
//!
//! A model's tokenizer comes from one of three places, and the rest of recx must not care which:
//! - an HF `tokenizer.json` (with its `tokenizer_config.json` beside it, for the special tokens);
//! - the vocabulary embedded in a GGUF file, handed over as plain data ([`GgufVocab`]) by the GGUF
//!   reader. GGUF stores no pipeline, only tokens, merges and scores, so the normalizer,
//!   pre-tokenizer and decoder are rebuilt here the way llama.cpp and transformers rebuild them:
//!   `gpt2` = byte-level BPE (SmolLM2, Llama-3, Qwen), `llama` = SentencePiece-style BPE with `▁`
//!   and `<0xNN>` byte fallback (Llama-2, Vicuna, Mistral). The latter is built as Llama-2's own
//!   `tokenizer.json` is (a `▁` prepended to every text segment, also after a special token, as
//!   the slow "legacy" tokenizer RecExplainer trained with), which gives sentencepiece's ids;
//!   transformers' newer Metaspace form differs from sentencepiece on text starting with a space;
//! - trained here (byte-level BPE) on the experiment's own text, for tiny from-scratch models.
//!
//! Everything is the `tokenizers` crate underneath, so [`Tokenizer::save`] writes a
//! `tokenizer.json` that Python's `tokenizers`/`transformers` read with identical ids.
//! RecExplainer adds `<user>` and `<item>` as single special tokens ([`Tokenizer::add_placeholders`]);
//! the model grows its embedding matrix to [`Tokenizer::vocab_size`].

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde_json::{Value, json};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::Vocab;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    SplitDelimiterBehavior,
};

use crate::error::{Error, IoContext, Result};

/// The two placeholder tokens of RecExplainer (spec §4.1).
pub const USER_TOKEN: &str = "<user>";
pub const ITEM_TOKEN: &str = "<item>";

/// GGUF `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
mod token_type {
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
}

/// Ids of the placeholder tokens after [`Tokenizer::add_placeholders`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placeholders {
    pub user: u32,
    pub item: u32,
}

/// The special tokens a model was trained with (as ids).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpecialIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
}

/// A GGUF file's tokenizer metadata as plain data (`tokenizer.ggml.*` keys).
///
/// The GGUF reader fills this; nothing here reads GGUF. Missing optional keys stay `None`/empty.
/// It also deserialises from JSON with these field names (the test fixtures use that).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: `gpt2` (byte-level BPE) or `llama` (SentencePiece-style BPE).
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer family (`smollm`, `llama-bpe`, `qwen2`, ...).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`, indexed by id.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.scores` (SentencePiece merge priorities); may be empty for `gpt2`.
    pub scores: Vec<f32>,
    /// `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte).
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.merges` as `"left right"`; empty for most `llama` files (derived from scores).
    pub merges: Vec<String>,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub unk_id: Option<u32>,
    pub pad_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`; `None` = the family's default (`llama` yes, `gpt2` no).
    pub add_bos: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`.
    pub add_eos: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix` (`llama` only; default yes).
    pub add_space_prefix: Option<bool>,
}

/// Settings for training a byte-level BPE tokenizer on the experiment's own text.
#[derive(Debug, Clone, PartialEq)]
pub struct BpeTrainConfig {
    /// Target vocabulary size, special tokens included.
    pub vocab_size: usize,
    /// A pair must occur this often to be merged.
    pub min_frequency: u64,
    /// Special tokens, given ids 0.. in this order (put bos/eos/pad and the chat markers here).
    pub special_tokens: Vec<String>,
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub pad: Option<String>,
    /// Prepend `bos` when encoding with special tokens.
    pub add_bos: bool,
}

impl Default for BpeTrainConfig {
    fn default() -> Self {
        BpeTrainConfig {
            vocab_size: 4096,
            min_frequency: 2,
            special_tokens: vec!["<|endoftext|>".into()],
            bos: None,
            eos: Some("<|endoftext|>".into()),
            pad: Some("<|endoftext|>".into()),
            add_bos: false,
        }
    }
}

/// Token ids with the byte offsets of each token in the encoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    /// `(start, end)` byte offsets into the input; `(0, 0)` for tokens the post-processor added.
    pub offsets: Vec<(usize, usize)>,
}

/// A tokenizer with its special-token ids; see the module docs.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    special: SpecialIds,
    add_bos: bool,
}

fn tok_err(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(format!("{context}: {e}"))
}

impl Tokenizer {
    /// Wraps a `tokenizers` tokenizer; `special` names the special ids, `add_bos` whether
    /// encoding with special tokens starts with BOS (the post-processor must agree).
    pub fn from_parts(inner: tokenizers::Tokenizer, special: SpecialIds, add_bos: bool) -> Self {
        Tokenizer {
            inner,
            special,
            add_bos,
        }
    }

    /// Loads an HF `tokenizer.json`. Special tokens come from a `tokenizer_config.json` in the
    /// same folder when there is one, else from the post-processor and well-known token names.
    pub fn from_file(path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::model_file(path, format!("cannot read tokenizer: {e}")))?;
        let config_path = path.with_file_name("tokenizer_config.json");
        let config = if config_path.exists() {
            let text = std::fs::read_to_string(&config_path).at(&config_path)?;
            Some(
                serde_json::from_str::<TokenizerConfigJson>(&text).map_err(|e| {
                    Error::bad_input(&config_path, e.line(), format!("invalid JSON: {e}"))
                })?,
            )
        } else {
            None
        };
        Ok(Self::with_inferred_specials(inner, config.as_ref()))
    }

    /// Parses `tokenizer.json` text (no config file: special tokens are inferred).
    pub fn from_json(text: &str) -> Result<Self> {
        let inner: tokenizers::Tokenizer = text
            .parse()
            .map_err(|e| tok_err("cannot parse tokenizer.json", e))?;
        Ok(Self::with_inferred_specials(inner, None))
    }

    fn with_inferred_specials(
        inner: tokenizers::Tokenizer,
        config: Option<&TokenizerConfigJson>,
    ) -> Self {
        let from_config = |pick: fn(&TokenizerConfigJson) -> &Option<SpecialToken>| {
            inner.token_to_id(pick(config?).as_ref()?.name()?)
        };
        let first_id = |names: &[&str]| names.iter().find_map(|n| inner.token_to_id(n));
        let template_bos = template_leading_token(&inner);
        let bos = from_config(|c| &c.bos_token)
            .or(template_bos)
            .or_else(|| first_id(&["<s>", "<|begin_of_text|>", "<bos>"]));
        let eos = from_config(|c| &c.eos_token)
            .or_else(|| first_id(&["</s>", "<|eot_id|>", "<|im_end|>", "<|endoftext|>", "<eos>"]));
        let unk = from_config(|c| &c.unk_token).or_else(|| first_id(&["<unk>"]));
        let pad = from_config(|c| &c.pad_token);
        let add_bos = config
            .and_then(|c| c.add_bos_token)
            .unwrap_or(template_bos.is_some() && template_bos == bos);
        Tokenizer {
            inner,
            special: SpecialIds { bos, eos, unk, pad },
            add_bos,
        }
    }

    /// Builds the tokenizer a GGUF file describes (see [`GgufVocab`]).
    pub fn from_gguf_vocab(v: &GgufVocab) -> Result<Self> {
        check_gguf_lengths(v)?;
        let (inner, add_bos_default) = match v.model.as_str() {
            "gpt2" => (byte_level_from_gguf(v)?, false),
            "llama" => (sentencepiece_from_gguf(v)?, true),
            other => {
                return Err(Error::Tokenizer(format!(
                    "GGUF tokenizer.ggml.model {other:?} is not supported; expected gpt2 | llama"
                )));
            }
        };
        let special = SpecialIds {
            bos: v.bos_id,
            eos: v.eos_id,
            unk: v.unk_id,
            pad: v.pad_id,
        };
        for (name, id) in [
            ("bos", v.bos_id),
            ("eos", v.eos_id),
            ("unk", v.unk_id),
            ("pad", v.pad_id),
        ] {
            if let Some(id) = id.filter(|&id| id as usize >= v.tokens.len()) {
                return Err(Error::Tokenizer(format!(
                    "GGUF {name} token id {id} is outside the vocabulary of {} tokens",
                    v.tokens.len()
                )));
            }
        }
        let mut tok = Tokenizer {
            inner,
            special,
            add_bos: v.add_bos.unwrap_or(add_bos_default),
        };
        tok.set_post_processor(tok.add_bos, v.add_eos.unwrap_or(false))?;
        Ok(tok)
    }

    /// Trains a byte-level BPE tokenizer on `corpus`; the same corpus and config give the same
    /// vocabulary, merges and ids.
    pub fn train_bpe<S: AsRef<str> + Send>(
        corpus: impl Iterator<Item = S> + Send,
        config: &BpeTrainConfig,
    ) -> Result<Self> {
        let mut specials = config.special_tokens.clone();
        for name in [&config.bos, &config.eos, &config.pad]
            .into_iter()
            .flatten()
        {
            if !specials.contains(name) {
                specials.push(name.clone());
            }
        }
        let mut trainer = TrainerWrapper::BpeTrainer(
            BpeTrainerBuilder::new()
                .vocab_size(config.vocab_size)
                .min_frequency(config.min_frequency)
                .show_progress(false)
                .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
                .special_tokens(
                    specials
                        .iter()
                        .map(|s| AddedToken::from(s.clone(), true))
                        .collect(),
                )
                .build(),
        );
        let mut inner = tokenizers::Tokenizer::new(BPE::default());
        inner.with_pre_tokenizer(Some(digits_then_byte_level()));
        inner.with_decoder(Some(ByteLevel::new(false, true, true)));
        inner
            .train(&mut trainer, corpus)
            .map_err(|e| tok_err("BPE training failed", e))?;
        let id = |name: &Option<String>| name.as_ref().and_then(|n| inner.token_to_id(n));
        let special = SpecialIds {
            bos: id(&config.bos),
            eos: id(&config.eos),
            unk: None,
            pad: id(&config.pad),
        };
        let mut tok = Tokenizer {
            inner,
            special,
            add_bos: config.add_bos && special.bos.is_some(),
        };
        tok.set_post_processor(tok.add_bos, false)?;
        Ok(tok)
    }

    /// Sets the post-processor that adds BOS/EOS when encoding with special tokens.
    fn set_post_processor(&mut self, add_bos: bool, add_eos: bool) -> Result<()> {
        let name = |id: Option<u32>, what: &str| -> Result<(String, u32)> {
            let id = id.ok_or_else(|| {
                Error::Tokenizer(format!(
                    "add_{what}_token is set but there is no {what} token"
                ))
            })?;
            let text = self.inner.id_to_token(id).ok_or_else(|| {
                Error::Tokenizer(format!("{what} id {id} is not in the vocabulary"))
            })?;
            Ok((text, id))
        };
        let mut pieces: Vec<(String, u32)> = Vec::new();
        let (mut single, mut pair) = (String::from("$A:0"), String::from("$A:0 $B:1"));
        if add_bos {
            let (t, id) = name(self.special.bos, "bos")?;
            single = format!("{t}:0 {single}");
            pair = format!("{t}:0 $A:0 {t}:1 $B:1");
            pieces.push((t, id));
        }
        if add_eos {
            let (t, id) = name(self.special.eos, "eos")?;
            single = format!("{single} {t}:0");
            pair = pair.replace("$A:0", &format!("$A:0 {t}:0")) + &format!(" {t}:1");
            pieces.push((t, id));
        }
        let processor = if pieces.is_empty() {
            None
        } else {
            pieces.dedup();
            Some(PostProcessorWrapper::Template(
                TemplateProcessing::builder()
                    .try_single(single.as_str())
                    .map_err(|e| tok_err("post-processor", e))?
                    .try_pair(pair.as_str())
                    .map_err(|e| tok_err("post-processor", e))?
                    .special_tokens(pieces)
                    .build()
                    .map_err(|e| tok_err("post-processor", e))?,
            ))
        };
        self.inner.with_post_processor(processor);
        Ok(())
    }

    /// Adds `<user>` and `<item>` as single special tokens (no-op if present); returns their ids.
    /// New ids follow the largest existing id, so the embedding grows by at most two rows.
    pub fn add_placeholders(&mut self) -> Result<Placeholders> {
        self.add_special_tokens(&[USER_TOKEN, ITEM_TOKEN])?;
        Ok(self.placeholders().expect("placeholders were just added"))
    }

    /// The placeholder ids, if [`add_placeholders`](Self::add_placeholders) ran.
    pub fn placeholders(&self) -> Option<Placeholders> {
        Some(Placeholders {
            user: self.inner.token_to_id(USER_TOKEN)?,
            item: self.inner.token_to_id(ITEM_TOKEN)?,
        })
    }

    /// Adds each of `words` as one ordinary token (matched whole wherever it occurs in a text,
    /// longest match first, and decoded back to itself), skipping those already in the
    /// vocabulary and those the decoder could not give back unchanged (byte-level BPE decodes a
    /// token made only of characters from its byte alphabet as bytes, so "é" alone would not
    /// survive). Returns how many were added. A scratch model uses it to name an item in one
    /// token ([`crate::llm::ScratchModel::item_title_tokens`]).
    pub fn add_words(&mut self, words: &[String]) -> Result<usize> {
        let mut seen = HashSet::new();
        let added: Vec<AddedToken> = words
            .iter()
            .filter(|w| !w.is_empty() && seen.insert(w.as_str()))
            .filter(|w| self.inner.token_to_id(w).is_none() && self.decodes_to_itself(w))
            .map(|w| AddedToken::from(w.clone(), false).normalized(false))
            .collect();
        self.inner
            .add_tokens(added)
            .map_err(|e| tok_err("cannot add words", e))
    }

    /// Whether a token whose text is `word` decodes to `word`.
    fn decodes_to_itself(&self, word: &str) -> bool {
        use tokenizers::Decoder;
        match self.inner.get_decoder() {
            None => true,
            Some(d) => d.decode(vec![word.to_string()]).is_ok_and(|s| s == word),
        }
    }

    /// Adds special tokens (e.g. a chat template's markers) that are not in the vocabulary yet.
    pub fn add_special_tokens(&mut self, tokens: &[&str]) -> Result<()> {
        let added: Vec<AddedToken> = tokens
            .iter()
            .map(|t| AddedToken::from(*t, true).normalized(false))
            .collect();
        self.inner
            .add_special_tokens(added)
            .map_err(|e| tok_err("cannot add special tokens", e))?;
        Ok(())
    }

    /// Rows the embedding matrix needs: one past the largest id.
    pub fn vocab_size(&self) -> usize {
        let added_max = self
            .inner
            .get_added_tokens_decoder()
            .keys()
            .max()
            .map_or(0, |&id| id as usize + 1);
        self.inner.get_vocab_size(false).max(added_max)
    }

    pub fn special_ids(&self) -> SpecialIds {
        self.special
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.special.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.special.eos
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.special.unk
    }

    /// The padding id as RecExplainer chooses it (spec §4.1): pad, else unk, else eos.
    pub fn pad_id(&self) -> Option<u32> {
        self.special.pad.or(self.special.unk).or(self.special.eos)
    }

    /// Whether encoding with special tokens prepends BOS.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// Ids of every token marked special (control tokens, placeholders, template markers).
    pub fn special_token_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .inner
            .get_added_tokens_decoder()
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Encodes `text`; special-token strings in it (`</s>`, `<|im_end|>`, `<user>`) always
    /// become their single ids, and `add_special` adds BOS/EOS as the tokenizer is configured.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        Ok(self.encode_with_offsets(text, add_special)?.ids)
    }

    /// Like [`encode`](Self::encode), with each token's byte span in `text`.
    pub fn encode_with_offsets(&self, text: &str, add_special: bool) -> Result<Encoded> {
        let enc = self
            .inner
            .encode(text, add_special)
            .map_err(|e| tok_err("encode", e))?;
        Ok(Encoded {
            ids: enc.get_ids().to_vec(),
            offsets: enc.get_offsets().to_vec(),
        })
    }

    /// Encodes many texts (in parallel); the result is in input order.
    pub fn encode_batch(&self, texts: &[&str], add_special: bool) -> Result<Vec<Vec<u32>>> {
        let encs = self
            .inner
            .encode_batch(texts.to_vec(), add_special)
            .map_err(|e| tok_err("encode", e))?;
        Ok(encs.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Decodes ids; `skip_special` drops special tokens (BOS, `</s>`, placeholders) from the text.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| tok_err("decode", e))
    }

    pub fn decode_batch(&self, ids: &[&[u32]], skip_special: bool) -> Result<Vec<String>> {
        self.inner
            .decode_batch(ids, skip_special)
            .map_err(|e| tok_err("decode", e))
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// The `tokenizer.json` text.
    pub fn to_json(&self, pretty: bool) -> Result<String> {
        self.inner
            .to_string(pretty)
            .map_err(|e| tok_err("cannot serialise tokenizer", e))
    }

    /// Writes `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json(false)?).at(path)
    }

    /// Writes `tokenizer.json`, `tokenizer_config.json` and `special_tokens_map.json` into `dir`,
    /// the files `transformers.AutoTokenizer.from_pretrained(dir)` reads; `chat_template` is a
    /// Jinja template to embed (e.g. the one from the GGUF).
    pub fn save_pretrained(&self, dir: &Path, chat_template: Option<&str>) -> Result<()> {
        std::fs::create_dir_all(dir).at(dir)?;
        self.save(&dir.join("tokenizer.json"))?;
        let name = |id: Option<u32>| id.and_then(|i| self.inner.id_to_token(i));
        let mut map = serde_json::Map::new();
        for (key, id) in [
            ("bos_token", self.special.bos),
            ("eos_token", self.special.eos),
            ("unk_token", self.special.unk),
            ("pad_token", self.special.pad),
        ] {
            if let Some(n) = name(id) {
                map.insert(key.into(), json!(n));
            }
        }
        let extra: Vec<String> = [USER_TOKEN, ITEM_TOKEN]
            .into_iter()
            .filter(|t| self.inner.token_to_id(t).is_some())
            .map(String::from)
            .collect();
        if !extra.is_empty() {
            map.insert("additional_special_tokens".into(), json!(extra));
        }
        let special_map = Value::Object(map.clone());
        map.insert("add_bos_token".into(), json!(self.add_bos));
        map.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
        map.insert("clean_up_tokenization_spaces".into(), json!(false));
        map.insert("model_max_length".into(), json!(1024));
        if let Some(t) = chat_template {
            map.insert("chat_template".into(), json!(t));
        }
        for (file, value) in [
            ("tokenizer_config.json", Value::Object(map)),
            ("special_tokens_map.json", special_map),
        ] {
            let path = dir.join(file);
            let text = serde_json::to_string_pretty(&value).expect("JSON values serialise");
            std::fs::write(&path, text).at(&path)?;
        }
        Ok(())
    }
}

/// The keys of `tokenizer_config.json` recx reads (the file holds many more).
#[derive(serde::Deserialize)]
struct TokenizerConfigJson {
    bos_token: Option<SpecialToken>,
    eos_token: Option<SpecialToken>,
    unk_token: Option<SpecialToken>,
    pad_token: Option<SpecialToken>,
    add_bos_token: Option<bool>,
}

/// A special token in `tokenizer_config.json`: its text, or an `AddedToken` object.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum SpecialToken {
    Name(String),
    Added {
        content: String,
    },
    /// Anything else names no token.
    Other(serde::de::IgnoredAny),
}

impl SpecialToken {
    fn name(&self) -> Option<&str> {
        match self {
            SpecialToken::Name(n) | SpecialToken::Added { content: n } => Some(n),
            SpecialToken::Other(_) => None,
        }
    }
}

/// The shape of a serialised post-processor that [`template_leading_token`] looks into.
#[derive(serde::Deserialize)]
#[serde(tag = "type")]
enum PostProcessorJson {
    TemplateProcessing {
        single: Vec<TemplatePiece>,
    },
    Sequence {
        processors: Vec<PostProcessorJson>,
    },
    #[serde(other)]
    Other,
}

/// One piece of a `TemplateProcessing` template.
#[derive(serde::Deserialize)]
enum TemplatePiece {
    SpecialToken { id: String },
    Sequence {},
}

/// The first special token of a `TemplateProcessing` single template (the BOS it adds), if any.
fn template_leading_token(inner: &tokenizers::Tokenizer) -> Option<u32> {
    let value = serde_json::to_value(inner.get_post_processor()?).ok()?;
    let processor: PostProcessorJson = serde_json::from_value(value).ok()?;
    let find_template = |p: &PostProcessorJson| -> Option<u32> {
        match p {
            PostProcessorJson::TemplateProcessing { single } => match single.first()? {
                TemplatePiece::SpecialToken { id } => inner.token_to_id(id),
                TemplatePiece::Sequence {} => None,
            },
            _ => None,
        }
    };
    match &processor {
        PostProcessorJson::Sequence { processors } => processors.iter().find_map(find_template),
        p => find_template(p),
    }
}

fn check_gguf_lengths(v: &GgufVocab) -> Result<()> {
    let n = v.tokens.len();
    if n == 0 {
        return Err(Error::Tokenizer(
            "GGUF tokenizer.ggml.tokens is empty".into(),
        ));
    }
    for (key, len) in [
        ("token_type", v.token_types.len()),
        ("scores", v.scores.len()),
    ] {
        if len != 0 && len != n {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer.ggml.{key} has {len} entries but tokenizer.ggml.tokens has {n}"
            )));
        }
    }
    Ok(())
}

/// GPT-2's reversible byte → printable-char table, which byte-level vocabularies are spelled in.
fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(next).expect("valid code point");
            next += 1;
            c
        };
    }
    table
}

/// A vocabulary map; when a string occurs twice the later id wins (as in transformers).
fn vocab_map(tokens: &[String]) -> Vocab {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect()
}

fn parse_merges(merges: &[String]) -> Result<Vec<(String, String)>> {
    merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| {
                    Error::Tokenizer(format!("GGUF merge {i} ({m:?}) is not \"left right\""))
                })
        })
        .collect()
}

/// Tokens the GGUF marks as control/unknown (special) or user-defined (matched whole, not special).
fn gguf_added_tokens(v: &GgufVocab, keep: impl Fn(&str) -> bool) -> Vec<AddedToken> {
    v.tokens
        .iter()
        .zip(&v.token_types)
        .filter(|(t, _)| keep(t))
        .filter_map(|(t, &ty)| match ty {
            token_type::CONTROL | token_type::UNKNOWN => {
                Some(AddedToken::from(t.clone(), true).normalized(false))
            }
            token_type::USER_DEFINED => Some(AddedToken::from(t.clone(), false).normalized(false)),
            _ => None,
        })
        .collect()
}

const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// SmolLM/StarCoder style: every digit alone, then GPT-2's split and byte mapping.
fn digits_then_byte_level() -> PreTokenizerWrapper {
    PreTokenizerWrapper::Sequence(PreSequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ]))
}

/// The pre-tokenizer for a byte-level GGUF's `tokenizer.ggml.pre`, and whether whole
/// pre-tokens found in the vocabulary skip the merges (Llama-3's `ignore_merges`).
fn byte_level_pre_tokenizer(pre: Option<&str>) -> Result<(PreTokenizerWrapper, bool)> {
    let regex_then_bytes = |re: &str| -> Result<PreTokenizerWrapper> {
        let split = Split::new(
            SplitPattern::Regex(re.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| tok_err("pre-tokenizer regex", e))?;
        Ok(PreTokenizerWrapper::Sequence(PreSequence::new(vec![
            PreTokenizerWrapper::Split(split),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, false)),
        ])))
    };
    Ok(match pre.unwrap_or("default") {
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            (digits_then_byte_level(), false)
        }
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "smaug-bpe" | "dbrx" | "pixtral" => {
            (regex_then_bytes(LLAMA3_SPLIT)?, true)
        }
        "qwen2" | "deepseek-r1-qwen" | "megrez" => (regex_then_bytes(QWEN2_SPLIT)?, false),
        "default" | "gpt-2" | "gpt2" => (
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
            false,
        ),
        other => {
            tracing::warn!(
                pre = other,
                "unknown GGUF pre-tokenizer; splitting text the GPT-2 way, ids may differ from llama.cpp"
            );
            (
                PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
                false,
            )
        }
    })
}

/// `gpt2` GGUF vocabularies: byte-level BPE.
fn byte_level_from_gguf(v: &GgufVocab) -> Result<tokenizers::Tokenizer> {
    let table = byte_to_char();
    let alphabet: HashSet<char> = table.iter().copied().collect();
    let in_alphabet = |t: &str| t.chars().all(|c| alphabet.contains(&c));
    // Normal tokens spelled outside the byte alphabet are respelled byte by byte (as transformers).
    let tokens: Vec<String> = v
        .tokens
        .iter()
        .map(|t| {
            if in_alphabet(t) {
                t.clone()
            } else {
                t.bytes().map(|b| table[b as usize]).collect()
            }
        })
        .collect();
    let (pre, ignore_merges) = byte_level_pre_tokenizer(v.pre.as_deref())?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab_map(&tokens), parse_merges(&v.merges)?)
        .ignore_merges(ignore_merges)
        .build()
        .map_err(|e| tok_err("cannot build BPE from the GGUF vocabulary", e))?;
    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(pre));
    inner.with_decoder(Some(ByteLevel::new(false, true, true)));
    // A control token spelled outside the byte alphabet is a llama.cpp mislabel; skip it.
    inner
        .add_special_tokens(gguf_added_tokens(v, in_alphabet))
        .map_err(|e| tok_err("cannot add the GGUF's special tokens", e))?;
    Ok(inner)
}

/// `llama` GGUF vocabularies: SentencePiece-style BPE with `▁` for spaces and `<0xNN>` bytes.
fn sentencepiece_from_gguf(v: &GgufVocab) -> Result<tokenizers::Tokenizer> {
    let merges = if v.merges.is_empty() {
        if v.scores.is_empty() {
            return Err(Error::Tokenizer(
                "GGUF llama vocabulary has neither merges nor scores".into(),
            ));
        }
        merges_from_scores(&v.tokens, &v.scores)
    } else {
        parse_merges(&v.merges)?
    };
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab_map(&v.tokens), merges)
        .fuse_unk(true)
        .byte_fallback(true);
    if let Some(unk) = v.unk_id.and_then(|id| v.tokens.get(id as usize)) {
        builder = builder.unk_token(unk.clone());
    }
    let bpe = builder
        .build()
        .map_err(|e| tok_err("cannot build BPE from the GGUF vocabulary", e))?;
    // As Llama-2's own tokenizer.json and sentencepiece: every text segment (also one after a
    // special token) gets a leading "▁", even one that already starts with a space.
    let prefix = v.add_space_prefix.unwrap_or(true);
    let spaces =
        NormalizerWrapper::Replace(Replace::new(" ", "▁").map_err(|e| tok_err("normalizer", e))?);
    let normalizer = if prefix {
        NormalizerWrapper::Sequence(NormalizerSequence::new(vec![
            NormalizerWrapper::Prepend(Prepend::new("▁".into())),
            spaces,
        ]))
    } else {
        spaces
    };
    let mut decoders = vec![
        DecoderWrapper::Replace(Replace::new("▁", " ").map_err(|e| tok_err("decoder", e))?),
        DecoderWrapper::ByteFallback(ByteFallback::new()),
        DecoderWrapper::Fuse(Fuse::new()),
    ];
    if prefix {
        decoders.push(DecoderWrapper::Strip(Strip::new(' ', 1, 0)));
    }
    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner
        .with_normalizer(Some(normalizer))
        .map_err(|e| tok_err("normalizer", e))?;
    inner.with_decoder(Some(DecoderSequence::new(decoders)));
    inner
        .add_special_tokens(gguf_added_tokens(v, |_| true))
        .map_err(|e| tok_err("cannot add the GGUF's special tokens", e))?;
    Ok(inner)
}

/// Merges implied by a SentencePiece vocabulary: every split of a token into two tokens,
/// best-scoring merged token first (ties: longer left piece, then longer right piece, then file
/// order). This is transformers' `generate_merges`, so both give the same tokenizer.
pub fn merges_from_scores(tokens: &[String], scores: &[f32]) -> Vec<(String, String)> {
    let vocab = vocab_map(tokens);
    // Python's dict(zip(tokens, scores)): first position of each string, last score.
    let mut order: Vec<&str> = Vec::with_capacity(tokens.len());
    let mut score_of: BTreeMap<&str, f32> = BTreeMap::new();
    for (t, &s) in tokens.iter().zip(scores) {
        if score_of.insert(t.as_str(), s).is_none() {
            order.push(t.as_str());
        }
    }
    let mut merges: Vec<(&str, &str, f32)> = Vec::new();
    for token in order {
        let score = score_of[token];
        let mut local: Vec<(&str, &str, f32)> = token
            .char_indices()
            .skip(1)
            .map(|(i, _)| (&token[..i], &token[i..]))
            .filter(|(l, r)| vocab.contains_key(*l) && vocab.contains_key(*r))
            .map(|(l, r)| (l, r, score))
            .collect();
        local.sort_by_key(|(l, r, _)| (vocab[*l], vocab[*r]));
        merges.extend(local);
    }
    // Python: sorted(key=(score, len(l), len(r)), reverse=True) is stable for equal keys.
    // Lengths are in code points, as Python's len.
    merges.sort_by(|a, b| {
        let key = |m: &(&str, &str, f32)| (m.2, m.0.chars().count(), m.1.chars().count());
        let (ka, kb) = (key(a), key(b));
        kb.0.total_cmp(&ka.0)
            .then(kb.1.cmp(&ka.1))
            .then(kb.2.cmp(&ka.2))
    });
    merges
        .into_iter()
        .map(|(l, r, _)| (l.to_string(), r.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_gpt2s() {
        let t = byte_to_char();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
        let distinct: HashSet<char> = t.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
        assert_eq!(distinct, ByteLevel::alphabet().into_iter().collect());
    }

    #[test]
    fn merges_from_scores_prefers_high_scores_then_long_left_pieces() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let scores = [0.0, 0.0, 0.0, -1.0, -2.0, -0.5];
        let merges = merges_from_scores(&tokens, &scores);
        let m: Vec<(&str, &str)> = merges
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        // "abc" (-0.5): splits a|bc and ab|c, longer left first; then "ab" (-1), then "bc" (-2).
        assert_eq!(m, vec![("ab", "c"), ("a", "bc"), ("a", "b"), ("b", "c")]);
    }

    #[test]
    fn added_words_are_one_token_each_and_decode_to_themselves() {
        let corpus = [
            "Halo 3 - Xbox 360; Halo 3 ODST",
            "the user bought Zelda and Halo",
        ];
        let mut tok = Tokenizer::train_bpe(
            corpus.iter(),
            &BpeTrainConfig {
                vocab_size: 300,
                ..BpeTrainConfig::default()
            },
        )
        .unwrap();
        let words: Vec<String> = ["Halo 3 - Xbox 360", "Halo 3", "é", "Halo 3", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // "é" alone would decode as the byte 0xE9; the duplicate and the empty word are skipped.
        assert_eq!(tok.add_words(&words).unwrap(), 2);
        let text = "bought Halo 3 - Xbox 360; Halo 3 ODST";
        let ids = tok.encode(text, false).unwrap();
        let long = tok.inner.token_to_id("Halo 3 - Xbox 360").unwrap();
        let short = tok.inner.token_to_id("Halo 3").unwrap();
        // Longest match first: the long title is one token, not "Halo 3" + the rest.
        assert_eq!(ids.iter().filter(|&&i| i == long).count(), 1);
        assert_eq!(ids.iter().filter(|&&i| i == short).count(), 1);
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
    }

    #[test]
    fn unsupported_gguf_model_is_named() {
        let v = GgufVocab {
            model: "bert".into(),
            tokens: vec!["a".into()],
            ..Default::default()
        };
        let e = Tokenizer::from_gguf_vocab(&v).unwrap_err().to_string();
        assert!(e.contains("\"bert\"") && e.contains("gpt2 | llama"), "{e}");
    }

    #[test]
    fn mismatched_gguf_arrays_are_reported() {
        let v = GgufVocab {
            model: "gpt2".into(),
            tokens: vec!["a".into(), "b".into()],
            token_types: vec![1],
            ..Default::default()
        };
        let e = Tokenizer::from_gguf_vocab(&v).unwrap_err().to_string();
        assert!(e.contains("token_type has 1 entries"), "{e}");
    }
}
