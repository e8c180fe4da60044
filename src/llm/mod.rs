//! The LLM core: a Llama-family decoder in burn, its weights, tokenizer, chat templates, generation.
//!
//! - [`config`]: one hyper-parameter type for Llama/Mistral/Qwen2/Phi-3/SmolLM checkpoints.
//! - [`model`]: the decoder (`LlamaModel`), generic over the burn backend, with a KV cache and
//!   an embeddings-in forward pass for the alignment stage's injected vectors.
//! - [`gguf`] and [`weights`]: reading GGUF and HF safetensors, saving HF folders.
//! - [`generate`]: greedy, sampling, beam search, next-token scoring.
//! - [`device`]: `cpu` / `cuda:N` to a backend.
//! - [`tokenizer`] and [`chat`]: vocabularies and chat templates.
//! - [`assets`] and [`cli`]: finding the default SmolLM2 model, `recx llm …`, `recx assets …`.

pub mod assets;
pub mod chat;
pub mod cli;
pub mod config;
pub mod device;
pub mod generate;
pub mod gguf;
pub mod model;
pub mod tokenizer;
pub mod weights;

pub use cli::{AssetsArgs, LlmArgs, run_assets_command, run_llm_command};
pub use config::{Architecture, LlamaConfig, RopeLayout};
pub use device::{BackendTask, DeviceChoice};
pub use generate::{
    Decoding, EmbeddingAddition, GenerateOptions, Generated, generate, next_token_logits,
};
pub use model::{KvCache, LlamaModel};
pub use weights::{load_gguf, load_model, save_hf};

use serde::{Deserialize, Serialize};

use crate::spec::{Validate, Validator};

/// `[llm]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmSection {
    /// Path to a GGUF file or an HF folder; empty = a tiny model trained from scratch.
    pub model: String,
    /// Chat template name.
    pub template: chat::TemplateName,
    /// `cpu` or `cuda:N`.
    pub device: String,
}

impl Default for LlmSection {
    fn default() -> Self {
        LlmSection {
            model: String::new(),
            template: chat::TemplateName::Chatml,
            device: "cpu".into(),
        }
    }
}

impl Validate for LlmSection {
    fn validate(&self, v: &mut Validator) {
        if let Err(e) = self.device.parse::<DeviceChoice>() {
            v.error("device", e.to_string());
        }
    }
}
