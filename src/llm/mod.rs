//! The LLM core: a Llama-family decoder in burn, its weights, tokenizer, chat templates, generation.
//!
//! (Starting version: the section type.)

pub mod chat;
pub mod tokenizer;

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
    fn validate(&self, _v: &mut Validator) {}
}
