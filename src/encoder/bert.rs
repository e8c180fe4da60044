//! BERT in burn (HF `BertModel`): embeddings, post-norm encoder layers, the tanh pooler.
//!
//! One file per model, as `llm/model.rs` is for the decoder: the config is HF's `config.json`
//! read into a serde struct, the weights are HF's tensor names read from safetensors, and every
//! name and shape is checked while loading, so a wrong checkpoint is refused with the tensor it
//! stumbled on instead of producing numbers.
//!
//! Attention is written out (scores, mask, softmax, dropout, values) rather than calling
//! burn's fused `attention`, because BERT drops out attention probabilities while training
//! (`attention_probs_dropout_prob`) and the fused op has no dropout. The key-padding mask is
//! materialised once per forward call at the scores' full shape and shared by every layer.

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use serde::Deserialize;

use crate::error::{Error, IoContext, Result};
use crate::llm::weights::{SafetensorsSource, TensorSource, normal_vec, transpose};
use crate::seed;

/// The part of an HF BERT `config.json` the model needs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    #[serde(default)]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_dropout() -> f64 {
    0.1
}
fn default_init_range() -> f64 {
    0.02
}

impl BertConfig {
    /// Reads `config.json` from a model folder and checks that recx implements what it asks for.
    pub fn from_folder(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).at(&path)?;
        let config: BertConfig = serde_json::from_str(&text)
            .map_err(|e| Error::bad_input(&path, e.line(), e.to_string()))?;
        config
            .check()
            .map_err(|reason| Error::model_file(&path, reason))?;
        Ok(config)
    }

    /// What recx's BERT supports: absolute positions, exact GELU, heads dividing the width.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !self.model_type.is_empty() && self.model_type != "bert" {
            return Err(format!(
                "model_type `{}` is not a BERT encoder (recx reads model_type \"bert\")",
                self.model_type
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act `{}`: recx's BERT implements \"gelu\" (exact, erf-based)",
                self.hidden_act
            ));
        }
        if let Some(kind) = &self.position_embedding_type
            && kind != "absolute"
        {
            return Err(format!(
                "position_embedding_type `{kind}`: recx's BERT implements \"absolute\""
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }
}

/// Token ids of a padded batch and which positions hold tokens.
#[derive(Debug, Clone)]
pub struct TokenBatch<B: Backend> {
    /// `[B, L]`
    pub ids: Tensor<B, 2, Int>,
    /// `[B, L]`, true = a real token, false = padding.
    pub valid: Tensor<B, 2, Bool>,
}

impl<B: Backend> TokenBatch<B> {
    /// Pads `seqs` on the right with `pad_id` to the longest one.
    pub fn new(seqs: &[&[u32]], pad_id: u32, device: &B::Device) -> Self {
        let len = seqs.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(seqs.len() * len);
        let mut valid = Vec::with_capacity(seqs.len() * len);
        for s in seqs {
            ids.extend(s.iter().map(|&t| t as i64));
            ids.extend(std::iter::repeat_n(pad_id as i64, len - s.len()));
            valid.extend(std::iter::repeat_n(true, s.len()));
            valid.extend(std::iter::repeat_n(false, len - s.len()));
        }
        let shape = [seqs.len(), len];
        TokenBatch {
            ids: Tensor::from_data(TensorData::new(ids, shape), device),
            valid: Tensor::from_data(TensorData::new(valid, shape), device),
        }
    }
}

/// Word, position and token-type embeddings, summed, normalised and dropped out.
#[derive(Module, Debug)]
pub struct BertEmbeddings<B: Backend> {
    pub word: Embedding<B>,
    pub position: Embedding<B>,
    pub token_type: Embedding<B>,
    pub norm: LayerNorm<B>,
    pub dropout: Dropout,
}

/// One post-norm encoder layer: self-attention and a GELU feed-forward, each added back and
/// normalised.
#[derive(Module, Debug)]
pub struct BertLayer<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
    pub attention_output: Linear<B>,
    pub attention_norm: LayerNorm<B>,
    pub intermediate: Linear<B>,
    pub output: Linear<B>,
    pub output_norm: LayerNorm<B>,
    pub attention_dropout: Dropout,
    pub dropout: Dropout,
    pub num_heads: usize,
}

impl<B: Backend> BertLayer<B> {
    /// `x` `[B·L, H]` → `[B·L, H]`, the rows of `b` sequences of `l` tokens; `masked`
    /// `[B, heads, L, L]` is true at padded keys. The token axis stays flattened outside
    /// attention, so each projection is one matrix product (and its weight gradient one product
    /// too) rather than a batched product with the weight broadcast over the sequences (which
    /// made a fine-tuning step a third slower).
    fn forward(
        &self,
        x: Tensor<B, 2>,
        b: usize,
        l: usize,
        masked: &Tensor<B, 4, Bool>,
    ) -> Tensor<B, 2> {
        let [_, hidden] = x.dims();
        let (h, d) = (self.num_heads, hidden / self.num_heads);
        let heads = |t: Tensor<B, 2>| t.reshape([b, l, h, d]).swap_dims(1, 2); // [B, h, L, d]
        let q = heads(self.query.forward(x.clone()));
        let k = heads(self.key.forward(x.clone()));
        let v = heads(self.value.forward(x.clone()));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar(1.0 / (d as f64).sqrt())
            .mask_fill(masked.clone(), f32::MIN);
        let probs = self.attention_dropout.forward(softmax(scores, 3));
        let context = probs.matmul(v).swap_dims(1, 2).reshape([b * l, hidden]);
        let attended = self
            .attention_norm
            .forward(self.dropout.forward(self.attention_output.forward(context)) + x);
        let inner = gelu(self.intermediate.forward(attended.clone()));
        self.output_norm
            .forward(self.dropout.forward(self.output.forward(inner)) + attended)
    }
}

/// HF's `BertModel`: the encoder and its pooler (`tanh(dense(hidden[CLS]))`).
#[derive(Module, Debug)]
pub struct BertModel<B: Backend> {
    pub embeddings: BertEmbeddings<B>,
    pub layers: Vec<BertLayer<B>>,
    pub pooler: Linear<B>,
}

impl<B: Backend> BertModel<B> {
    /// Last hidden states `[B, L, H]` of a token batch (token type 0 everywhere: one segment).
    pub fn forward(&self, batch: &TokenBatch<B>) -> Tensor<B, 3> {
        let [b, l] = batch.ids.dims();
        let device = batch.ids.device();
        let e = &self.embeddings;
        let positions = Tensor::<B, 1, Int>::arange(0..l as i64, &device)
            .reshape([1, l])
            .repeat_dim(0, b);
        let types = Tensor::<B, 2, Int>::zeros([b, l], &device);
        let x = e.word.forward(batch.ids.clone())
            + e.position.forward(positions)
            + e.token_type.forward(types);
        let [_, _, hidden] = x.dims();
        let mut x = e
            .dropout
            .forward(e.norm.forward(x))
            .reshape([b * l, hidden]);
        let heads = self.layers.first().map_or(1, |layer| layer.num_heads);
        let masked = batch
            .valid
            .clone()
            .bool_not()
            .reshape([b, 1, 1, l])
            .repeat_dim(1, heads)
            .repeat_dim(2, l);
        for layer in &self.layers {
            x = layer.forward(x, b, l, &masked);
        }
        x.reshape([b, l, hidden])
    }

    /// The pooled `[CLS]` vector `[B, H]` that HF's sequence-classification head reads.
    pub fn pool(&self, hidden: Tensor<B, 3>) -> Tensor<B, 2> {
        let [b, _, h] = hidden.dims();
        let cls = hidden.narrow(1, 0, 1).reshape([b, h]);
        self.pooler.forward(cls).tanh()
    }
}

/// sentence-transformers' embedding: hidden states averaged over the real tokens, then scaled
/// to unit length (all-MiniLM-L6-v2's Pooling + Normalize modules). `[B, L, H]` → `[B, H]`.
pub fn mean_pooled_unit<B: Backend>(
    hidden: Tensor<B, 3>,
    valid: &Tensor<B, 2, Bool>,
) -> Tensor<B, 2> {
    let [b, l, h] = hidden.dims();
    let weights = valid.clone().float().reshape([b, l, 1]);
    let counts = weights.clone().sum_dim(1).reshape([b, 1]).clamp_min(1e-9);
    let mean = (hidden * weights).sum_dim(1).reshape([b, h]) / counts;
    let norms = mean.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    mean / norms
}

/// Loads a BERT checkpoint folder (`config.json` + `model.safetensors`). Tensor names may carry
/// a `bert.` prefix (checkpoints saved from a task model) and the old `LayerNorm.gamma/beta`
/// names. A checkpoint without pooler weights gets a freshly initialised pooler (seeded), as
/// HF's `from_pretrained` would.
pub fn load_bert<B: Backend>(dir: &Path, seed: u64, device: &B::Device) -> Result<BertModel<B>> {
    let config = BertConfig::from_folder(dir)?;
    let mut src = SafetensorsSource::open(dir)?;
    let mut w = Weights {
        src: &mut src,
        prefix: "",
        config: &config,
        device,
    };
    if w.src.contains("bert.embeddings.word_embeddings.weight") {
        w.prefix = "bert.";
    }
    let c = &config;
    let (hd, inter) = (c.hidden_size, c.intermediate_size);
    let dropout = |p: f64| DropoutConfig::new(p).init();
    let embeddings = BertEmbeddings {
        word: w.embedding("embeddings.word_embeddings", c.vocab_size)?,
        position: w.embedding("embeddings.position_embeddings", c.max_position_embeddings)?,
        token_type: w.embedding("embeddings.token_type_embeddings", c.type_vocab_size)?,
        norm: w.layer_norm("embeddings.LayerNorm")?,
        dropout: dropout(c.hidden_dropout_prob),
    };
    let mut layers = Vec::with_capacity(c.num_hidden_layers);
    for i in 0..c.num_hidden_layers {
        let p = |s: &str| format!("encoder.layer.{i}.{s}");
        layers.push(BertLayer {
            query: w.linear(&p("attention.self.query"), hd, hd)?,
            key: w.linear(&p("attention.self.key"), hd, hd)?,
            value: w.linear(&p("attention.self.value"), hd, hd)?,
            attention_output: w.linear(&p("attention.output.dense"), hd, hd)?,
            attention_norm: w.layer_norm(&p("attention.output.LayerNorm"))?,
            intermediate: w.linear(&p("intermediate.dense"), hd, inter)?,
            output: w.linear(&p("output.dense"), inter, hd)?,
            output_norm: w.layer_norm(&p("output.LayerNorm"))?,
            attention_dropout: dropout(c.attention_probs_dropout_prob),
            dropout: dropout(c.hidden_dropout_prob),
            num_heads: c.num_attention_heads,
        });
    }
    let pooler = if w.src.contains(&format!("{}pooler.dense.weight", w.prefix)) {
        w.linear("pooler.dense", hd, hd)?
    } else {
        tracing::warn!(
            "{}: no pooler weights; the pooler is initialised at random (seed {seed})",
            dir.display()
        );
        random_linear(hd, hd, c.initializer_range, seed, "encoder.pooler", device)
    };
    Ok(BertModel {
        embeddings,
        layers,
        pooler,
    })
}

/// A `Linear` `[d_in] → [d_out]` initialised as HF's `_init_weights` does: weights
/// normal(0, `std`), biases zero; seeded through `seed::rng(seed, label)`.
pub fn random_linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    std: f64,
    seed: u64,
    label: &str,
    device: &B::Device,
) -> Linear<B> {
    let weight = normal_vec(&mut seed::rng(seed, label, &[]), d_in * d_out, std);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(weight, [d_in, d_out]),
            device,
        )),
        bias: Some(Param::from_tensor(Tensor::zeros([d_out], device))),
    }
}

/// Checked reads of HF BERT tensors into burn modules.
struct Weights<'a, B: Backend> {
    src: &'a mut SafetensorsSource,
    prefix: &'static str,
    config: &'a BertConfig,
    device: &'a B::Device,
}

impl<B: Backend> Weights<'_, B> {
    /// Tensor `name` (without the prefix) with exactly `shape`.
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = format!("{}{name}", self.prefix);
        if !self.src.contains(&full) {
            return Err(Error::model_file(
                self.src.origin(),
                format!("tensor `{full}` not found"),
            ));
        }
        let (data, got) = self.src.fetch(&full)?;
        if got != shape {
            let c = self.config;
            return Err(Error::model_file(
                self.src.origin(),
                format!(
                    "tensor `{full}` has shape {got:?} but the config (hidden {}, intermediate {}, vocab {}) needs {shape:?}",
                    c.hidden_size, c.intermediate_size, c.vocab_size
                ),
            ));
        }
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::model_file(
                self.src.origin(),
                format!("tensor `{full}` holds a non-finite value at element {i}"),
            ));
        }
        Ok(data)
    }

    fn param<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Param<Tensor<B, D>>> {
        let data = self.tensor(name, &shape)?;
        Ok(Param::from_tensor(Tensor::from_data(
            TensorData::new(data, shape),
            self.device,
        )))
    }

    fn embedding(&mut self, name: &str, rows: usize) -> Result<Embedding<B>> {
        Ok(Embedding {
            weight: self.param(&format!("{name}.weight"), [rows, self.config.hidden_size])?,
        })
    }

    /// HF stores a linear weight as `[out, in]`; burn's `Linear` holds `[in, out]`.
    fn linear(&mut self, name: &str, d_in: usize, d_out: usize) -> Result<Linear<B>> {
        let weight = transpose(
            &self.tensor(&format!("{name}.weight"), &[d_out, d_in])?,
            d_out,
            d_in,
        );
        Ok(Linear {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(weight, [d_in, d_out]),
                self.device,
            )),
            bias: Some(self.param(&format!("{name}.bias"), [d_out])?),
        })
    }

    fn layer_norm(&mut self, name: &str) -> Result<LayerNorm<B>> {
        let h = self.config.hidden_size;
        let (gamma, beta) = if self.src.contains(&format!("{}{name}.gamma", self.prefix)) {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        let mut norm = LayerNormConfig::new(h)
            .with_epsilon(self.config.layer_norm_eps)
            .init(self.device);
        norm.gamma = self.param(&format!("{name}.{gamma}"), [h])?;
        norm.beta = Some(self.param(&format!("{name}.{beta}"), [h])?);
        Ok(norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::device::Cpu;

    fn config(json: &str) -> BertConfig {
        serde_json::from_str(json).unwrap()
    }

    const MINI: &str = r#"{"model_type": "bert", "vocab_size": 10, "hidden_size": 8,
        "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
        "max_position_embeddings": 16}"#;

    #[test]
    fn config_defaults_are_bert_s_and_unsupported_variants_are_named() {
        let c = config(MINI);
        assert_eq!(c.hidden_act, "gelu");
        assert_eq!((c.type_vocab_size, c.layer_norm_eps), (2, 1e-12));
        assert!(c.check().is_ok());
        let mut relative = c.clone();
        relative.position_embedding_type = Some("relative_key".into());
        assert!(relative.check().unwrap_err().contains("relative_key"));
        let mut tanh = c.clone();
        tanh.hidden_act = "gelu_new".into();
        assert!(tanh.check().unwrap_err().contains("gelu_new"));
        let mut odd = c.clone();
        odd.num_attention_heads = 3;
        assert!(odd.check().unwrap_err().contains("multiple"));
        let mut roberta = c;
        roberta.model_type = "roberta".into();
        assert!(roberta.check().unwrap_err().contains("roberta"));
    }

    #[test]
    fn a_token_batch_pads_on_the_right_and_marks_real_tokens() {
        let batch = TokenBatch::<Cpu>::new(&[&[101, 7, 102], &[101, 102]], 0, &Default::default());
        let ids: Vec<i64> = batch.ids.into_data().iter::<i64>().collect();
        assert_eq!(ids, [101, 7, 102, 101, 102, 0]);
        let valid: Vec<bool> = batch.valid.into_data().iter::<bool>().collect();
        assert_eq!(valid, [true, true, true, true, true, false]);
    }

    #[test]
    fn padding_changes_no_real_token_s_output() {
        // A random 1-layer BERT: the same sequence alone and beside a longer one must give the
        // same hidden states at its real positions (the key mask hides the padding).
        let device = Default::default();
        let c = config(MINI);
        let lin =
            |i: usize, o: usize, label: &str| random_linear::<Cpu>(i, o, 0.5, 3, label, &device);
        let norm = || {
            LayerNormConfig::new(8)
                .with_epsilon(1e-12)
                .init::<Cpu>(&device)
        };
        let embedding = |rows: usize, label: &str| Embedding {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(
                    normal_vec(&mut seed::rng(1, label, &[]), rows * 8, 1.0),
                    [rows, 8],
                ),
                &device,
            )),
        };
        let model = BertModel::<Cpu> {
            embeddings: BertEmbeddings {
                word: embedding(c.vocab_size, "w"),
                position: embedding(c.max_position_embeddings, "p"),
                token_type: embedding(2, "t"),
                norm: norm(),
                dropout: DropoutConfig::new(0.1).init(),
            },
            layers: vec![BertLayer {
                query: lin(8, 8, "q"),
                key: lin(8, 8, "k"),
                value: lin(8, 8, "v"),
                attention_output: lin(8, 8, "o"),
                attention_norm: norm(),
                intermediate: lin(8, 16, "i"),
                output: lin(16, 8, "d"),
                output_norm: norm(),
                attention_dropout: DropoutConfig::new(0.1).init(),
                dropout: DropoutConfig::new(0.1).init(),
                num_heads: 2,
            }],
            pooler: lin(8, 8, "pool"),
        };
        let alone = model.forward(&TokenBatch::new(&[&[1, 4, 2]], 0, &device));
        let padded = model.forward(&TokenBatch::new(
            &[&[1, 4, 2], &[1, 5, 6, 7, 2]],
            0,
            &device,
        ));
        let alone: Vec<f32> = alone.into_data().iter::<f32>().collect();
        let first: Vec<f32> = padded
            .narrow(0, 0, 1)
            .narrow(1, 0, 3)
            .into_data()
            .iter::<f32>()
            .collect();
        for (a, b) in alone.iter().zip(&first) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
