//! One configuration type for every Llama-family checkpoint recx reads.
//!
//! Llama-2/3, Vicuna, Mistral, Qwen2, Phi-3 and SmolLM2 are the same decoder (RMSNorm, RoPE,
//! grouped-query attention, SwiGLU) with different numbers and a few switches: biases on the
//! Q/K/V projections (Qwen2), fused projection weights on disk (Phi-3), a tied output head
//! (SmolLM2, small Qwen2). [`LlamaConfig`] carries exactly those; it is filled from an HF
//! `config.json`, from GGUF metadata, or by hand for a tiny model trained from scratch, and it is
//! written back as an HF `config.json` when a model is saved.

use std::path::Path;

use burn::config::Config;
use serde::Deserialize;
use serde_json::{Value, json};

use super::gguf::GgufFile;
use crate::error::{Error, IoContext, Result};

/// The checkpoint family: decides the HF tensor names and how `config.json` is written.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Llama-2/3, Vicuna, SmolLM, and anything with `model_type = "llama"`.
    Llama,
    Mistral,
    /// Qwen2: biases on the Q/K/V projections.
    Qwen2,
    /// Phi-3: Q/K/V and gate/up projections stored fused.
    Phi3,
}

impl Architecture {
    fn from_model_type(model_type: &str) -> Option<Self> {
        Some(match model_type {
            "llama" | "smollm" => Architecture::Llama,
            "mistral" => Architecture::Mistral,
            "qwen2" => Architecture::Qwen2,
            "phi3" => Architecture::Phi3,
            _ => return None,
        })
    }

    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Mistral => "mistral",
            Architecture::Qwen2 => "qwen2",
            Architecture::Phi3 => "phi3",
        }
    }

    fn hf_class(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Mistral => "MistralForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
            Architecture::Phi3 => "Phi3ForCausalLM",
        }
    }

    /// Whether the on-disk checkpoint fuses q/k/v and gate/up.
    pub fn fused_projections(self) -> bool {
        self == Architecture::Phi3
    }
}

/// How rotary embeddings pair the dimensions of a head.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum RopeLayout {
    /// HF checkpoints: dimension `i` rotates with `i + head_dim/2`.
    HalfSplit,
    /// GGUF `llama` files (llama.cpp's permuted Q/K): dimension `2i` rotates with `2i + 1`.
    Interleaved,
}

/// Llama-family decoder hyper-parameters.
#[derive(Config, Debug, PartialEq)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    #[config(default = "Architecture::Llama")]
    pub architecture: Architecture,
    /// Per-head width; `hidden_size / num_heads` when not given.
    #[config(default = "None")]
    pub head_dim: Option<usize>,
    #[config(default = 10000.0)]
    pub rope_theta: f64,
    #[config(default = "RopeLayout::HalfSplit")]
    pub rope_layout: RopeLayout,
    #[config(default = 1e-5)]
    pub rms_norm_eps: f64,
    #[config(default = false)]
    pub tie_word_embeddings: bool,
    /// Biases on the Q/K/V projections (Qwen2).
    #[config(default = false)]
    pub attention_bias: bool,
    #[config(default = 2048)]
    pub max_position_embeddings: usize,
    /// Standard deviation of the normal init (new token rows, from-scratch models).
    #[config(default = 0.02)]
    pub initializer_range: f64,
    #[config(default = "None")]
    pub bos_token_id: Option<u32>,
    #[config(default = "None")]
    pub eos_token_id: Option<u32>,
}

/// The largest single dimension (vocabulary, widths, layers, heads) a config may have.
const MAX_DIM: usize = 1 << 24;
/// The most parameters one matrix group (embeddings, or all MLPs) may hold: a 1T-parameter
/// model fits, an overflowing or garbage header does not.
const MAX_PARAMS: usize = 1 << 40;

/// The widths every weight shape is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Widths {
    pub hidden: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub head: usize,
    /// All query heads together (`num_heads · head`).
    pub q: usize,
    /// All key (or value) heads together (`num_kv_heads · head`).
    pub kv: usize,
}

impl LlamaConfig {
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_heads)
    }

    pub fn widths(&self) -> Widths {
        let head = self.head_dim();
        Widths {
            hidden: self.hidden_size,
            intermediate: self.intermediate_size,
            vocab: self.vocab_size,
            head,
            q: self.num_heads * head,
            kv: self.num_kv_heads * head,
        }
    }

    /// Checks the numbers fit together (heads divide, even head width).
    pub fn check(&self) -> std::result::Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("num_kv_heads", self.num_kv_heads),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be positive"));
        }
        if let Some((name, v)) = positive.iter().find(|(_, v)| *v > MAX_DIM) {
            return Err(format!(
                "{name} = {v} is larger than any model this loader supports ({MAX_DIM})"
            ));
        }
        if self.head_dim == Some(0) {
            return Err("head_dim must be positive".into());
        }
        let embeddings = self.vocab_size.checked_mul(self.hidden_size);
        let layer = self
            .hidden_size
            .checked_mul(self.intermediate_size)
            .and_then(|x| x.checked_mul(self.num_layers));
        if embeddings
            .zip(layer)
            .is_none_or(|(e, l)| e.max(l) > MAX_PARAMS)
        {
            return Err(format!(
                "the sizes (vocab {} × hidden {}, {} layers × hidden × intermediate {}) need more \
                 than {MAX_PARAMS} parameters; the file is damaged or not a supported model",
                self.vocab_size, self.hidden_size, self.num_layers, self.intermediate_size
            ));
        }
        for (name, x) in [
            ("rope_theta", self.rope_theta),
            ("rms_norm_eps", self.rms_norm_eps),
        ] {
            if !(x.is_finite() && x > 0.0) {
                return Err(format!("{name} = {x} must be a positive finite number"));
            }
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(format!(
                "num_heads ({}) must be a multiple of num_kv_heads ({})",
                self.num_heads, self.num_kv_heads
            ));
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_heads) {
            return Err(format!(
                "hidden_size ({}) is not divisible by num_heads ({})",
                self.hidden_size, self.num_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(format!(
                "head_dim ({}) must be even for rotary embeddings",
                self.head_dim()
            ));
        }
        Ok(())
    }

    /// Reads an HF `config.json` (llama, mistral, qwen2, phi3 model types).
    pub fn from_hf_config_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).at(path)?;
        let raw: HfConfigJson = serde_json::from_str(&text)
            .map_err(|e| Error::bad_input(path, e.line(), e.to_string()))?;
        Self::from_hf_fields(raw).map_err(|reason| Error::model_file(path, reason))
    }

    pub fn from_hf_json(v: &Value) -> std::result::Result<Self, String> {
        let raw = HfConfigJson::deserialize(v).map_err(|e| e.to_string())?;
        Self::from_hf_fields(raw)
    }

    fn from_hf_fields(raw: HfConfigJson) -> std::result::Result<Self, String> {
        let architecture = Architecture::from_model_type(&raw.model_type).ok_or_else(|| {
            format!(
                "model_type `{}` is not supported (llama, mistral, qwen2, phi3)",
                raw.model_type
            )
        })?;
        if let Some(scaling) = raw.rope_scaling.filter(|s| !s.is_null()) {
            return Err(format!("rope_scaling {scaling} is not supported"));
        }
        let config = LlamaConfig {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            num_kv_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
            architecture,
            head_dim: raw.head_dim,
            rope_theta: raw.rope_theta.unwrap_or(10000.0),
            rope_layout: RopeLayout::HalfSplit,
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            attention_bias: architecture == Architecture::Qwen2
                || raw.attention_bias.unwrap_or(false),
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(2048),
            initializer_range: raw.initializer_range.unwrap_or(0.02),
            bos_token_id: raw.bos_token_id.and_then(TokenIds::first),
            eos_token_id: raw.eos_token_id.and_then(TokenIds::first),
        };
        config.check()?;
        Ok(config)
    }

    /// The HF `config.json` for this model (what transformers' `from_pretrained` reads).
    pub fn to_hf_json(&self) -> Value {
        let mut v = json!({
            "architectures": [self.architecture.hf_class()],
            "model_type": self.architecture.model_type(),
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "hidden_act": "silu",
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "initializer_range": self.initializer_range,
            "torch_dtype": "float32",
            "use_cache": true,
        });
        if self.architecture == Architecture::Llama {
            v["attention_bias"] = json!(self.attention_bias);
            v["mlp_bias"] = json!(false);
        }
        if let Some(d) = self.head_dim {
            v["head_dim"] = json!(d);
        }
        if let Some(id) = self.bos_token_id {
            v["bos_token_id"] = json!(id);
        }
        if let Some(id) = self.eos_token_id {
            v["eos_token_id"] = json!(id);
        }
        v
    }

    /// Reads the hyper-parameters from GGUF metadata (`{arch}.block_count` and friends).
    ///
    /// The rope layout is returned as GGUF stores it; the weight loader decides whether to
    /// un-permute Q/K (see `weights::GgufWeights`).
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let arch_name = file
            .get("general.architecture")
            .and_then(|v| v.as_str())
            .ok_or_else(|| file.error("metadata key `general.architecture` is missing"))?
            .to_string();
        let architecture = Architecture::from_model_type(&arch_name).ok_or_else(|| {
            file.error(format!(
                "GGUF architecture `{arch_name}` is not supported (llama, qwen2, phi3)"
            ))
        })?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let u = |k: &str| file.require_u64(&key(k)).map(|x| x as usize);
        let f = |k: &str| file.get(&key(k)).and_then(|v| v.as_f64());
        let num_heads = u("attention.head_count")?;
        if num_heads == 0 {
            return Err(file.error(format!(
                "metadata `{}` is 0; a model needs at least one attention head",
                key("attention.head_count")
            )));
        }
        let vocab_size = match file.get(&key("vocab_size")).and_then(|v| v.as_u64()) {
            Some(n) => n as usize,
            None => file
                .tensors
                .get("token_embd.weight")
                .map(|t| t.shape[0])
                .ok_or_else(|| file.error("tensor `token_embd.weight` not found"))?,
        };
        let hidden_size = u("embedding_length")?;
        let rope_dim = file
            .get(&key("rope.dimension_count"))
            .and_then(|v| v.as_u64())
            .map(|x| x as usize);
        let head_dim = (hidden_size / num_heads).max(1);
        if rope_dim.is_some_and(|d| d != head_dim) {
            return Err(file.error(format!(
                "partial rotary embeddings (rope.dimension_count {} vs head width {head_dim}) are not supported",
                rope_dim.unwrap()
            )));
        }
        let config = LlamaConfig {
            vocab_size,
            hidden_size,
            intermediate_size: u("feed_forward_length")?,
            num_layers: u("block_count")?,
            num_heads,
            num_kv_heads: file
                .get(&key("attention.head_count_kv"))
                .and_then(|v| v.as_u64())
                .map_or(num_heads, |x| x as usize),
            architecture,
            head_dim: None,
            rope_theta: f("rope.freq_base").unwrap_or(10000.0),
            // llama.cpp's converter permutes Q/K only for the `llama` architecture.
            rope_layout: if architecture == Architecture::Llama {
                RopeLayout::Interleaved
            } else {
                RopeLayout::HalfSplit
            },
            rms_norm_eps: f("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
            tie_word_embeddings: !file.tensors.contains_key("output.weight"),
            attention_bias: file.tensors.contains_key("blk.0.attn_q.bias"),
            max_position_embeddings: u("context_length").unwrap_or(2048),
            initializer_range: 0.02,
            bos_token_id: file
                .get("tokenizer.ggml.bos_token_id")
                .and_then(|v| v.as_u64())
                .map(|x| x as u32),
            eos_token_id: file
                .get("tokenizer.ggml.eos_token_id")
                .and_then(|v| v.as_u64())
                .map(|x| x as u32),
        };
        config.check().map_err(|e| file.error(e))?;
        Ok(config)
    }
}

/// The keys of an HF `config.json` that recx reads (the others, such as `architectures`,
/// `hidden_act` or `torch_dtype`, are ignored). Optional keys take transformers' defaults.
#[derive(Deserialize)]
struct HfConfigJson {
    model_type: String,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rope_theta: Option<f64>,
    rms_norm_eps: Option<f64>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    max_position_embeddings: Option<usize>,
    initializer_range: Option<f64>,
    bos_token_id: Option<TokenIds>,
    eos_token_id: Option<TokenIds>,
    rope_scaling: Option<Value>,
}

/// A token id key that may hold an integer or a list (Llama-3's `eos_token_id`); the first one
/// is the model's.
#[derive(Deserialize)]
#[serde(untagged)]
enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    fn first(self) -> Option<u32> {
        match self {
            TokenIds::One(id) => Some(id),
            TokenIds::Many(ids) => ids.first().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_smollm2_style_config() {
        let v = json!({
            "model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
            "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
            "rope_theta": 100000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": true, "rope_scaling": null
        });
        let c = LlamaConfig::from_hf_json(&v).unwrap();
        assert_eq!(
            (c.head_dim(), c.num_kv_heads, c.tie_word_embeddings),
            (64, 3, true)
        );
        let back = LlamaConfig::from_hf_json(&c.to_hf_json()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn qwen2_has_qkv_bias_and_bad_heads_are_rejected() {
        let mut v = json!({
            "model_type": "qwen2", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1
        });
        assert!(LlamaConfig::from_hf_json(&v).unwrap().attention_bias);
        v["num_key_value_heads"] = json!(3);
        assert!(
            LlamaConfig::from_hf_json(&v)
                .unwrap_err()
                .contains("multiple of num_kv_heads")
        );
        v["model_type"] = json!("gpt2");
        assert!(LlamaConfig::from_hf_json(&v).unwrap_err().contains("gpt2"));
    }

    #[test]
    fn hf_config_keys_are_typed() {
        let mut v = json!({
            "model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2, "eos_token_id": [7, 8],
            "bos_token_id": null, "head_dim": null
        });
        let c = LlamaConfig::from_hf_json(&v).unwrap();
        assert_eq!(
            (c.eos_token_id, c.bos_token_id, c.num_kv_heads),
            (Some(7), None, 2)
        );
        v["rope_theta"] = json!("fast");
        let err = LlamaConfig::from_hf_json(&v).unwrap_err();
        assert!(err.contains("invalid type"), "{err}");
        v.as_object_mut().unwrap().remove("vocab_size");
        v["rope_theta"] = json!(1e4);
        let err = LlamaConfig::from_hf_json(&v).unwrap_err();
        assert!(err.contains("vocab_size"), "{err}");
    }

    #[test]
    fn zero_heads_and_absurd_sizes_are_errors_not_panics() {
        let base = json!({
            "model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2
        });
        let with = |k: &str, x: Value| {
            let mut v = base.clone();
            v[k] = x;
            LlamaConfig::from_hf_json(&v).unwrap_err()
        };
        assert!(with("num_attention_heads", json!(0)).contains("num_heads must be positive"));
        assert!(with("num_key_value_heads", json!(0)).contains("num_kv_heads must be positive"));
        assert!(with("head_dim", json!(0)).contains("head_dim must be positive"));
        assert!(with("vocab_size", json!(u64::MAX)).contains("larger than any model"));
        let mut huge = base.clone();
        huge["vocab_size"] = json!(1u64 << 22);
        huge["hidden_size"] = json!(1u64 << 22);
        assert!(
            LlamaConfig::from_hf_json(&huge)
                .unwrap_err()
                .contains("parameters")
        );
        assert!(with("rope_theta", json!(-1.0)).contains("rope_theta"));
    }
}
