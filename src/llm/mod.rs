//! The LLM core: a Llama-family decoder in burn, its weights, tokenizer, chat templates, generation.
//!
//! - [`config`]: one hyper-parameter type for Llama/Mistral/Qwen2/Phi-3/SmolLM checkpoints.
//! - [`model`]: the decoder (`LlamaModel`), generic over the burn backend, with a KV cache and
//!   an embeddings-in forward pass for the alignment stage's injected vectors.
//! - [`gguf`] and [`weights`]: reading GGUF and HF safetensors, saving HF folders.
//! - [`lora`]: LoRA adapters for alignment training, and merging them into the weights.
//! - [`generate`]: greedy, sampling, beam search, next-token scoring.
//! - [`device`]: `cpu` / `libtorch` / `cuda:N` to a backend.
//! - [`tokenizer`] and [`chat`]: vocabularies and chat templates.
//! - [`assets`] and [`cli`]: finding the default SmolLM2 model, `recx llm …`, `recx assets …`.

pub mod assets;
pub mod backbone;
pub mod batching;
pub mod chat;
pub mod cli;
pub mod config;
pub mod constrain;
pub mod device;
pub mod generate;
pub mod gguf;
pub mod lora;
pub mod model;
pub mod tokenizer;
pub mod weights;

pub use cli::{AssetsArgs, LlmArgs, run_assets_command, run_llm_command};
pub use config::{Architecture, LlamaConfig, RopeLayout};
pub use device::{BackendTask, DeviceChoice};
pub use generate::{
    Decoding, EmbeddingAddition, GenerateOptions, Generated, generate, next_token_logits,
};
pub use lora::{LoraConfig, LoraTarget, attach_lora, merge_lora};
pub use model::{KvCache, LlamaModel};
pub use weights::{load_gguf, load_model, save_hf};

use serde::{Deserialize, Serialize};

use crate::spec::{Validate, Validator, limits};

/// `[llm]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmSection {
    /// Path to a GGUF file or an HF folder; empty = a tiny model trained from scratch.
    pub model: String,
    /// Chat template name.
    pub template: chat::TemplateName,
    /// `cpu`, `libtorch` (a `--features tch` build) or `cuda:N` (a `--features cuda` build).
    pub device: String,
    /// The architecture of the from-scratch model (used when `model` is empty).
    pub scratch: ScratchModel,
}

/// `[llm.scratch]`: a tiny Llama trained from scratch, with a BPE vocabulary learned from the
/// experiment's own alignment text, for runs that must finish in minutes on a CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScratchModel {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub max_positions: usize,
    /// Every item title of the data set becomes one token of the vocabulary (added after the
    /// BPE is learnt), decoded back to the title. Naming, copying and ranking items is then
    /// choosing among tokens, which a two-layer model learns in minutes (the quickstart: T1 H@5
    /// 0.13 after 20,000 samples, 0.27 after 24,000; with titles in pieces 0.00 after 4,000
    /// and 0.17 after 12,000, which took 7 minutes); but the words inside a title ("Xbox 360") are no
    /// longer shared between items, so what they tell (T3 on the synthetic set: 0.77 spelled out,
    /// 0.57 as tokens) must be learnt item by item. Off by default: a pretrained backbone, like
    /// the paper's, reads titles as text.
    pub item_title_tokens: bool,
}

impl Default for ScratchModel {
    fn default() -> Self {
        ScratchModel {
            vocab_size: 2048,
            hidden_size: 128,
            intermediate_size: 352,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            max_positions: 2048,
            item_title_tokens: false,
        }
    }
}

impl LlmSection {
    /// Whether the backbone is the scratch model with one token per item title: only then does
    /// loading it need the titles.
    pub fn wants_item_titles(&self) -> bool {
        self.model.is_empty() && self.scratch.item_title_tokens
    }
}

impl ScratchModel {
    /// The decoder's hyper-parameters for a vocabulary of `vocab` tokens.
    pub fn config(&self, vocab: usize) -> LlamaConfig {
        LlamaConfig::new(
            vocab,
            self.hidden_size,
            self.intermediate_size,
            self.num_layers,
            self.num_heads,
            self.num_kv_heads,
        )
        .with_max_position_embeddings(self.max_positions)
    }
}

impl Default for LlmSection {
    fn default() -> Self {
        LlmSection {
            model: String::new(),
            template: chat::TemplateName::Chatml,
            device: "cpu".into(),
            scratch: ScratchModel::default(),
        }
    }
}

impl Validate for LlmSection {
    fn validate(&self, v: &mut Validator) {
        if let Err(e) = self.device.parse::<DeviceChoice>() {
            v.error("device", e.to_string());
        }
        if self.model.is_empty() {
            let s = &self.scratch;
            v.count("scratch.vocab_size", s.vocab_size, 1, limits::MAX_TOKENS);
            v.count("scratch.hidden_size", s.hidden_size, 1, limits::MAX_WIDTH);
            v.count(
                "scratch.intermediate_size",
                s.intermediate_size,
                1,
                limits::MAX_WIDTH * 4,
            );
            v.count("scratch.num_layers", s.num_layers, 1, 1024);
            v.count(
                "scratch.max_positions",
                s.max_positions,
                1,
                limits::MAX_TOKENS,
            );
            if let Err(e) = s.config(s.vocab_size).check() {
                v.error("scratch", e);
            }
            v.check(s.vocab_size >= 300, "scratch.vocab_size", || {
                "must be at least 300 (256 bytes plus the chat markers)".into()
            });
        }
    }
}
