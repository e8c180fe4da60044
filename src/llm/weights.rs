//! Loading and saving decoder weights: HF safetensors (single file or sharded), GGUF, or a
//! seeded random init; saving as an HF folder that Python transformers loads.
//!
//! Every source speaks HF tensor names (`model.layers.3.self_attn.q_proj.weight`, shape
//! `[out, in]`); the builder asks for each name with the shape the config implies, so a missing
//! tensor, a wrong shape or a config mismatch is reported with the tensor's name and the file.
//! Architecture quirks live here: Phi-3's fused `qkv_proj` / `gate_up_proj` are split on load
//! and re-fused on save; GGUF names are mapped to HF names, and llama.cpp's Q/K row permutation
//! (which makes its interleaved RoPE equal HF's half-split RoPE) is undone unless the caller
//! keeps the GGUF layout.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use memmap2::Mmap;
use rand::Rng;
use rand_distr::{Distribution, Normal};
use safetensors::Dtype;
use safetensors::tensor::Metadata;

use super::config::{Architecture, LlamaConfig, RopeLayout, Widths};
use super::gguf::GgufFile;
use super::model::{Attention, DecoderLayer, LlamaModel, Mlp, Rope};
use crate::error::{Error, IoContext, Result};

/// `n` draws from normal(0, std).
pub fn normal_vec(rng: &mut impl Rng, n: usize, std: f64) -> Vec<f32> {
    let dist = Normal::new(0.0f32, std as f32).expect("std is finite and non-negative");
    (0..n).map(|_| dist.sample(rng)).collect()
}

/// Where the builder gets each tensor, by HF name, as row-major `f32` plus its shape.
pub trait TensorSource {
    fn fetch(&mut self, name: &str) -> Result<(Vec<f32>, Vec<usize>)>;
    fn contains(&self, name: &str) -> bool;
    /// For error messages: the file or folder the tensors come from.
    fn origin(&self) -> &Path;
}

/// Seeded random weights for a model trained from scratch: normal(0, initializer_range) for
/// matrices, ones for norms, zeros for biases (HF's `_init_weights`).
pub struct RandomInit {
    rng: rand_chacha::ChaCha8Rng,
    config: LlamaConfig,
}

impl RandomInit {
    pub fn new(config: &LlamaConfig, seed: u64) -> Self {
        RandomInit {
            rng: rand::SeedableRng::seed_from_u64(seed),
            config: config.clone(),
        }
    }
}

impl TensorSource for RandomInit {
    fn fetch(&mut self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let shape = expected_shape(&self.config, name)
            .ok_or_else(|| Error::Config(format!("random init: unknown tensor `{name}`")))?;
        let n = shape.iter().product();
        let data = if name.ends_with("norm.weight") {
            vec![1.0; n]
        } else if name.ends_with(".bias") {
            vec![0.0; n]
        } else {
            normal_vec(&mut self.rng, n, self.config.initializer_range)
        };
        Ok((data, shape))
    }

    fn contains(&self, _name: &str) -> bool {
        true
    }

    fn origin(&self) -> &Path {
        Path::new("<random init>")
    }
}

/// The shape a tensor must have under `config`, by HF name (`None` for an unknown name).
fn expected_shape(c: &LlamaConfig, name: &str) -> Option<Vec<usize>> {
    let Widths {
        hidden: h,
        intermediate: i,
        vocab: v,
        q,
        kv,
        ..
    } = c.widths();
    let suffix = name
        .rsplit_once("layers.")
        .map_or(name, |(_, s)| s.split_once('.').map_or(s, |(_, s)| s));
    Some(match suffix {
        "model.embed_tokens.weight" | "lm_head.weight" => vec![v, h],
        "model.norm.weight" | "input_layernorm.weight" | "post_attention_layernorm.weight" => {
            vec![h]
        }
        "self_attn.q_proj.weight" => vec![q, h],
        "self_attn.k_proj.weight" | "self_attn.v_proj.weight" => vec![kv, h],
        "self_attn.q_proj.bias" => vec![q],
        "self_attn.k_proj.bias" | "self_attn.v_proj.bias" => vec![kv],
        "self_attn.o_proj.weight" => vec![h, q],
        "self_attn.qkv_proj.weight" => vec![q + 2 * kv, h],
        "mlp.gate_proj.weight" | "mlp.up_proj.weight" => vec![i, h],
        "mlp.gate_up_proj.weight" => vec![2 * i, h],
        "mlp.down_proj.weight" => vec![h, i],
        _ => return None,
    })
}

/// Fetches `name` and checks its shape against the config.
fn fetch_checked(src: &mut dyn TensorSource, config: &LlamaConfig, name: &str) -> Result<Vec<f32>> {
    if !src.contains(name) {
        return Err(Error::model_file(
            src.origin(),
            format!("tensor `{name}` not found"),
        ));
    }
    let (data, shape) = src.fetch(name)?;
    let want = expected_shape(config, name).expect("the builder only asks for known names");
    if shape != want {
        return Err(Error::model_file(
            src.origin(),
            format!(
                "tensor `{name}` has shape {shape:?} but the config (hidden {}, heads {}/{}, vocab {}) needs {want:?}",
                config.hidden_size, config.num_heads, config.num_kv_heads, config.vocab_size
            ),
        ));
    }
    // A NaN or infinity in the weights makes every answer empty or garbage; refuse it here.
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(Error::model_file(
            src.origin(),
            format!(
                "tensor `{name}` holds a non-finite value ({}) at element {i}: the weights are damaged",
                data[i]
            ),
        ));
    }
    Ok(data)
}

/// Rows `[start, start + n)` of a row-major matrix with `cols` columns.
fn rows(data: &[f32], cols: usize, start: usize, n: usize) -> Vec<f32> {
    data[start * cols..(start + n) * cols].to_vec()
}

/// Gets the per-projection weights of layer `l`, splitting Phi-3's fused tensors.
fn layer_weights(
    src: &mut dyn TensorSource,
    c: &LlamaConfig,
    l: usize,
) -> Result<BTreeMap<&'static str, Vec<f32>>> {
    let p = |s: &str| format!("model.layers.{l}.{s}");
    let mut w = BTreeMap::new();
    let h = c.hidden_size;
    if c.architecture.fused_projections() {
        let Widths { q, kv, .. } = c.widths();
        let qkv = fetch_checked(src, c, &p("self_attn.qkv_proj.weight"))?;
        w.insert("q", rows(&qkv, h, 0, q));
        w.insert("k", rows(&qkv, h, q, kv));
        w.insert("v", rows(&qkv, h, q + kv, kv));
        let gate_up = fetch_checked(src, c, &p("mlp.gate_up_proj.weight"))?;
        w.insert("gate", rows(&gate_up, h, 0, c.intermediate_size));
        w.insert(
            "up",
            rows(&gate_up, h, c.intermediate_size, c.intermediate_size),
        );
    } else {
        for (key, name) in [
            ("q", "self_attn.q_proj"),
            ("k", "self_attn.k_proj"),
            ("v", "self_attn.v_proj"),
        ] {
            w.insert(key, fetch_checked(src, c, &p(&format!("{name}.weight")))?);
        }
        w.insert("gate", fetch_checked(src, c, &p("mlp.gate_proj.weight"))?);
        w.insert("up", fetch_checked(src, c, &p("mlp.up_proj.weight"))?);
    }
    if c.attention_bias {
        for (key, name) in [
            ("q_bias", "q_proj"),
            ("k_bias", "k_proj"),
            ("v_bias", "v_proj"),
        ] {
            w.insert(
                key,
                fetch_checked(src, c, &p(&format!("self_attn.{name}.bias")))?,
            );
        }
    }
    w.insert("o", fetch_checked(src, c, &p("self_attn.o_proj.weight"))?);
    w.insert("down", fetch_checked(src, c, &p("mlp.down_proj.weight"))?);
    w.insert(
        "input_norm",
        fetch_checked(src, c, &p("input_layernorm.weight"))?,
    );
    w.insert(
        "post_norm",
        fetch_checked(src, c, &p("post_attention_layernorm.weight"))?,
    );
    Ok(w)
}

/// Transposes a row-major `[rows, cols]` matrix.
pub fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for (c, &x) in data[r * cols..(r + 1) * cols].iter().enumerate() {
            out[c * rows + r] = x;
        }
    }
    out
}

/// A burn `Linear` from an HF weight `[out, in]` (stored transposed, `[in, out]`, so the
/// forward pass is a plain row-major matmul).
fn linear<B: Backend>(
    weight: &[f32],
    bias: Option<Vec<f32>>,
    d_in: usize,
    d_out: usize,
    device: &B::Device,
) -> Linear<B> {
    let w = transpose(weight, d_out, d_in);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: bias
            .map(|b| Param::from_tensor(Tensor::from_data(TensorData::new(b, [d_out]), device))),
    }
}

fn rms_norm<B: Backend>(gamma: Vec<f32>, eps: f64, device: &B::Device) -> RmsNorm<B> {
    let n = gamma.len();
    RmsNorm {
        gamma: Param::from_tensor(Tensor::from_data(TensorData::new(gamma, [n]), device)),
        epsilon: eps,
    }
}

/// Builds the decoder from a tensor source, checking every name and shape.
pub fn build_model<B: Backend>(
    config: &LlamaConfig,
    src: &mut dyn TensorSource,
    device: &B::Device,
) -> Result<LlamaModel<B>> {
    config
        .check()
        .map_err(|e| Error::model_file(src.origin(), format!("config: {e}")))?;
    let c = config;
    let Widths {
        hidden: h,
        intermediate: i,
        vocab: v,
        head: d,
        q,
        kv,
    } = c.widths();
    let embed = fetch_checked(src, c, "model.embed_tokens.weight")?;
    let embed_tokens = Embedding {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(embed, [v, h]), device)),
    };
    let mut layers = Vec::with_capacity(c.num_layers);
    for l in 0..c.num_layers {
        let mut w = layer_weights(src, c, l)?;
        let mut take = |k: &str| w.remove(k).expect("layer_weights fills every key");
        let (qb, kb, vb) = if c.attention_bias {
            (
                Some(take("q_bias")),
                Some(take("k_bias")),
                Some(take("v_bias")),
            )
        } else {
            (None, None, None)
        };
        layers.push(DecoderLayer {
            input_layernorm: rms_norm(take("input_norm"), c.rms_norm_eps, device),
            self_attn: Attention {
                q_proj: linear(&take("q"), qb, h, q, device),
                k_proj: linear(&take("k"), kb, h, kv, device),
                v_proj: linear(&take("v"), vb, h, kv, device),
                o_proj: linear(&take("o"), None, q, h, device),
                lora: None,
                num_heads: c.num_heads,
                num_kv_heads: c.num_kv_heads,
                head_dim: d,
            },
            post_attention_layernorm: rms_norm(take("post_norm"), c.rms_norm_eps, device),
            mlp: Mlp {
                gate_proj: linear(&take("gate"), None, h, i, device),
                up_proj: linear(&take("up"), None, h, i, device),
                down_proj: linear(&take("down"), None, i, h, device),
            },
        });
    }
    let norm = rms_norm(
        fetch_checked(src, c, "model.norm.weight")?,
        c.rms_norm_eps,
        device,
    );
    let lm_head = if c.tie_word_embeddings {
        None
    } else {
        Some(linear(
            &fetch_checked(src, c, "lm_head.weight")?,
            None,
            h,
            v,
            device,
        ))
    };
    let rope = Rope::new(
        d,
        c.rope_theta,
        c.max_position_embeddings,
        c.rope_layout,
        device,
    );
    Ok(LlamaModel {
        embed_tokens,
        layers,
        norm,
        lm_head,
        rope,
    })
}

impl LlamaConfig {
    /// A randomly initialised model (seeded): the tiny from-scratch path and the tests.
    pub fn init<B: Backend>(&self, device: &B::Device, seed: u64) -> LlamaModel<B> {
        build_model(self, &mut RandomInit::new(self, seed), device)
            .expect("random init matches its own config")
    }
}

/// Tensors of one or more safetensors files (a single file or a sharded index).
pub struct SafetensorsSource {
    origin: PathBuf,
    files: Vec<(PathBuf, Mmap, usize, Metadata)>,
    /// name → index into `files`
    index: HashMap<String, usize>,
}

impl SafetensorsSource {
    /// Opens `model.safetensors`, a `*.safetensors.index.json`, or a folder holding either.
    pub fn open(path: &Path) -> Result<Self> {
        let path = if path.is_dir() {
            let index = path.join("model.safetensors.index.json");
            if index.exists() {
                index
            } else {
                path.join("model.safetensors")
            }
        } else {
            path.to_path_buf()
        };
        let shards: Vec<PathBuf> = if path.to_string_lossy().ends_with(".index.json") {
            shard_files(&path)?
        } else {
            vec![path.clone()]
        };
        let mut files = Vec::new();
        let mut index = HashMap::new();
        for shard in shards {
            let file = File::open(&shard).at(&shard)?;
            // SAFETY: read-only private map (see GgufFile::open).
            let map = unsafe { Mmap::map(&file) }.at(&shard)?;
            let (header_len, metadata) =
                safetensors::SafeTensors::read_metadata(&map).map_err(|e| {
                    Error::model_file(&shard, format!("not a valid safetensors file: {e}"))
                })?;
            for name in metadata.tensors().keys() {
                index.insert(name.clone(), files.len());
            }
            files.push((shard, map, header_len, metadata));
        }
        Ok(SafetensorsSource {
            origin: path,
            files,
            index,
        })
    }
}

/// The part of `model.safetensors.index.json` recx reads: tensor name -> shard file.
#[derive(serde::Deserialize)]
struct SafetensorsIndex {
    weight_map: std::collections::BTreeMap<String, String>,
}

/// The distinct shard files named by a `model.safetensors.index.json`.
fn shard_files(index_path: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(index_path).at(index_path)?;
    let index: SafetensorsIndex = serde_json::from_str(&text)
        .map_err(|e| Error::bad_input(index_path, e.line(), e.to_string()))?;
    let dir = index_path.parent().unwrap_or(Path::new("."));
    let mut shards: Vec<PathBuf> = index.weight_map.values().map(|f| dir.join(f)).collect();
    shards.sort();
    shards.dedup();
    Ok(shards)
}

impl TensorSource for SafetensorsSource {
    fn fetch(&mut self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let &i = self
            .index
            .get(name)
            .ok_or_else(|| Error::model_file(&self.origin, format!("tensor `{name}` not found")))?;
        let (path, map, header_len, meta) = &self.files[i];
        let info = meta.info(name).expect("indexed from this metadata");
        let start = 8 + header_len;
        let bytes = &map[start + info.data_offsets.0..start + info.data_offsets.1];
        let data = match info.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::model_file(
                    path,
                    format!("tensor `{name}` has dtype {other:?}; recx reads F32, F16, BF16"),
                ));
            }
        };
        Ok((data, info.shape.clone()))
    }

    fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    fn origin(&self) -> &Path {
        &self.origin
    }
}

/// A GGUF file seen through HF tensor names.
pub struct GgufSource<'a> {
    file: &'a GgufFile,
    config: LlamaConfig,
    /// Undo llama.cpp's Q/K permutation (HF half-split layout) instead of keeping it.
    unpermute: bool,
}

impl<'a> GgufSource<'a> {
    /// `config` must come from [`LlamaConfig::from_gguf`]; with `keep_gguf_layout` the Q/K rows
    /// stay as stored and the model must use interleaved RoPE.
    pub fn new(file: &'a GgufFile, config: &LlamaConfig, keep_gguf_layout: bool) -> Self {
        GgufSource {
            file,
            config: config.clone(),
            unpermute: config.rope_layout == RopeLayout::Interleaved && !keep_gguf_layout,
        }
    }

    /// The config a model loaded through this source must use.
    pub fn model_config(&self) -> LlamaConfig {
        let mut c = self.config.clone();
        if self.unpermute {
            c.rope_layout = RopeLayout::HalfSplit;
        }
        c
    }

    fn gguf_name(&self, name: &str) -> Option<String> {
        let fixed = match name {
            "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
            "model.norm.weight" => return Some("output_norm.weight".into()),
            "lm_head.weight" => return Some("output.weight".into()),
            _ => name.strip_prefix("model.layers.")?,
        };
        let (layer, rest) = fixed.split_once('.')?;
        let mapped = match rest {
            "input_layernorm.weight" => "attn_norm.weight",
            "post_attention_layernorm.weight" => "ffn_norm.weight",
            "self_attn.q_proj.weight" => "attn_q.weight",
            "self_attn.k_proj.weight" => "attn_k.weight",
            "self_attn.v_proj.weight" => "attn_v.weight",
            "self_attn.q_proj.bias" => "attn_q.bias",
            "self_attn.k_proj.bias" => "attn_k.bias",
            "self_attn.v_proj.bias" => "attn_v.bias",
            "self_attn.o_proj.weight" => "attn_output.weight",
            "self_attn.qkv_proj.weight" => "attn_qkv.weight",
            "mlp.gate_proj.weight" => "ffn_gate.weight",
            "mlp.up_proj.weight" => "ffn_up.weight",
            "mlp.gate_up_proj.weight" => "ffn_up.weight",
            "mlp.down_proj.weight" => "ffn_down.weight",
            _ => return None,
        };
        Some(format!("blk.{layer}.{mapped}"))
    }
}

/// Inverts llama.cpp's `permute`: within each head, GGUF row `2j + s` is HF row `s·D/2 + j`.
/// Works on weights (`cols` = input width) and biases (`cols` = 1).
pub fn unpermute_rows(data: &[f32], n_heads: usize, cols: usize) -> Vec<f32> {
    let rows = data.len() / cols;
    let d = rows / n_heads;
    let half = d / 2;
    let mut out = vec![0.0; data.len()];
    for h in 0..n_heads {
        for j in 0..half {
            for s in 0..2 {
                let src = (h * d + 2 * j + s) * cols;
                let dst = (h * d + s * half + j) * cols;
                out[dst..dst + cols].copy_from_slice(&data[src..src + cols]);
            }
        }
    }
    out
}

impl TensorSource for GgufSource<'_> {
    fn fetch(&mut self, name: &str) -> Result<(Vec<f32>, Vec<usize>)> {
        let gguf = self
            .gguf_name(name)
            .ok_or_else(|| self.file.error(format!("no GGUF name for tensor `{name}`")))?;
        let (data, shape) = self.file.tensor_f32(&gguf)?;
        let heads = if name.contains("q_proj") {
            Some(self.config.num_heads)
        } else if name.contains("k_proj") {
            Some(self.config.num_kv_heads)
        } else {
            None
        };
        let data = match heads {
            Some(n) if self.unpermute => {
                unpermute_rows(&data, n, shape.get(1).copied().unwrap_or(1))
            }
            _ => data,
        };
        Ok((data, shape))
    }

    fn contains(&self, name: &str) -> bool {
        self.gguf_name(name)
            .is_some_and(|g| self.file.tensors.contains_key(&g))
    }

    fn origin(&self) -> &Path {
        self.file.path()
    }
}

/// Reads a burn tensor back to the host.
fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// The model's tensors under HF names and layout (`[out, in]`), fused again for Phi-3.
pub fn hf_tensors<B: Backend>(
    model: &LlamaModel<B>,
    config: &LlamaConfig,
) -> Vec<(String, Vec<f32>, Vec<usize>)> {
    let mut out = Vec::new();
    let mut push = |name: String, data: Vec<f32>, shape: Vec<usize>| out.push((name, data, shape));
    let hf_linear = |l: &Linear<B>| {
        let [d_in, d_out] = l.weight.dims();
        (
            transpose(&host(l.weight.val()), d_in, d_out),
            vec![d_out, d_in],
        )
    };
    let [v, h] = model.embed_tokens.weight.dims();
    push(
        "model.embed_tokens.weight".into(),
        host(model.embed_tokens.weight.val()),
        vec![v, h],
    );
    for (l, layer) in model.layers.iter().enumerate() {
        let p = |s: &str| format!("model.layers.{l}.{s}");
        let a = &layer.self_attn;
        let (q, k, vv) = (
            hf_linear(&a.q_proj),
            hf_linear(&a.k_proj),
            hf_linear(&a.v_proj),
        );
        let (gate, up) = (
            hf_linear(&layer.mlp.gate_proj),
            hf_linear(&layer.mlp.up_proj),
        );
        if config.architecture == Architecture::Phi3 {
            let rows = q.1[0] + k.1[0] + vv.1[0];
            push(
                p("self_attn.qkv_proj.weight"),
                [q.0, k.0, vv.0].concat(),
                vec![rows, h],
            );
            let rows = gate.1[0] + up.1[0];
            push(
                p("mlp.gate_up_proj.weight"),
                [gate.0, up.0].concat(),
                vec![rows, h],
            );
        } else {
            push(p("self_attn.q_proj.weight"), q.0, q.1);
            push(p("self_attn.k_proj.weight"), k.0, k.1);
            push(p("self_attn.v_proj.weight"), vv.0, vv.1);
            push(p("mlp.gate_proj.weight"), gate.0, gate.1);
            push(p("mlp.up_proj.weight"), up.0, up.1);
        }
        for (name, lin) in [
            ("q_proj", &a.q_proj),
            ("k_proj", &a.k_proj),
            ("v_proj", &a.v_proj),
        ] {
            if let Some(b) = &lin.bias {
                let n = b.dims()[0];
                push(p(&format!("self_attn.{name}.bias")), host(b.val()), vec![n]);
            }
        }
        let (o, o_shape) = hf_linear(&a.o_proj);
        push(p("self_attn.o_proj.weight"), o, o_shape);
        let (down, down_shape) = hf_linear(&layer.mlp.down_proj);
        push(p("mlp.down_proj.weight"), down, down_shape);
        push(
            p("input_layernorm.weight"),
            host(layer.input_layernorm.gamma.val()),
            vec![h],
        );
        push(
            p("post_attention_layernorm.weight"),
            host(layer.post_attention_layernorm.gamma.val()),
            vec![h],
        );
    }
    push(
        "model.norm.weight".into(),
        host(model.norm.gamma.val()),
        vec![h],
    );
    if let Some(head) = &model.lm_head {
        let (w, shape) = hf_linear(head);
        push("lm_head.weight".into(), w, shape);
    }
    out
}

/// Saves an HF folder: `model.safetensors` (f32), `config.json`, and `tokenizer.json` when a
/// tokenizer is given. The config's vocabulary is taken from the model (it may have grown).
pub fn save_hf<B: Backend>(
    model: &LlamaModel<B>,
    config: &LlamaConfig,
    tokenizer: Option<&tokenizers::Tokenizer>,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).at(dir)?;
    let mut config = config.clone();
    config.vocab_size = model.vocab_size();
    config.rope_layout = RopeLayout::HalfSplit;
    if model.rope.is_interleaved() {
        return Err(Error::Config(
            "save_hf: the model keeps GGUF's interleaved Q/K layout; load it with the default (un-permuted) layout to save it in HF layout".into(),
        ));
    }
    let tensors = hf_tensors(model, &config);
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .into_iter()
        .map(|(n, d, s)| (n, d.iter().flat_map(|x| x.to_le_bytes()).collect(), s))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, s)| {
            safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("save_hf: {e}")))?;
    let weights = dir.join("model.safetensors");
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(meta), &weights)
        .map_err(|e| Error::model_file(&weights, e.to_string()))?;
    let config_path = dir.join("config.json");
    let text = serde_json::to_string_pretty(&config.to_hf_json()).expect("json value serialises");
    std::fs::write(&config_path, text).at(&config_path)?;
    if let Some(tok) = tokenizer {
        let tok_path = dir.join("tokenizer.json");
        tok.save(&tok_path, false)
            .map_err(|e| Error::model_file(&tok_path, e.to_string()))?;
    }
    Ok(())
}

/// Where a model's weights come from.
pub enum ModelFiles {
    /// A GGUF file.
    Gguf(PathBuf),
    /// An HF folder (`config.json` + safetensors).
    HfDir(PathBuf),
}

impl ModelFiles {
    pub fn detect(path: &Path) -> Result<Self> {
        if path.is_dir() {
            if path.join("config.json").exists() {
                return Ok(ModelFiles::HfDir(path.to_path_buf()));
            }
            return Err(Error::model_file(
                path,
                "folder has no config.json (expected an HF model folder)",
            ));
        }
        if !path.exists() {
            return Err(Error::model_file(path, "model file not found"));
        }
        Ok(ModelFiles::Gguf(path.to_path_buf()))
    }
}

/// Loads a GGUF model. By default Q/K are un-permuted to HF layout (half-split RoPE), which is
/// what saving and the alignment stage expect; `keep_gguf_layout` keeps llama.cpp's rows and
/// uses interleaved RoPE instead (same outputs).
pub fn load_gguf<B: Backend>(
    file: &GgufFile,
    keep_gguf_layout: bool,
    device: &B::Device,
) -> Result<(LlamaModel<B>, LlamaConfig)> {
    let config = LlamaConfig::from_gguf(file)?;
    let mut src = GgufSource::new(file, &config, keep_gguf_layout);
    let config = src.model_config();
    Ok((build_model(&config, &mut src, device)?, config))
}

/// Loads a model (GGUF or HF folder) with HF layout, returning it with its config.
pub fn load_model<B: Backend>(
    path: &Path,
    device: &B::Device,
) -> Result<(LlamaModel<B>, LlamaConfig)> {
    match ModelFiles::detect(path)? {
        ModelFiles::Gguf(p) => load_gguf(&GgufFile::open(&p)?, false, device),
        ModelFiles::HfDir(dir) => {
            let config = LlamaConfig::from_hf_config_file(&dir.join("config.json"))?;
            let mut src = SafetensorsSource::open(&dir)?;
            Ok((build_model(&config, &mut src, device)?, config))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// llama.cpp's forward permutation, to check the inverse.
    fn permute(data: &[f32], n_heads: usize, cols: usize) -> Vec<f32> {
        let d = data.len() / cols / n_heads;
        let half = d / 2;
        let mut out = vec![0.0; data.len()];
        for h in 0..n_heads {
            for s in 0..2 {
                for j in 0..half {
                    let src = (h * d + s * half + j) * cols;
                    let dst = (h * d + 2 * j + s) * cols;
                    out[dst..dst + cols].copy_from_slice(&data[src..src + cols]);
                }
            }
        }
        out
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        let x: Vec<f32> = (0..2 * 8 * 3).map(|v| v as f32).collect();
        assert_eq!(unpermute_rows(&permute(&x, 2, 3), 2, 3), x);
        assert_ne!(permute(&x, 2, 3), x);
    }

    #[test]
    fn expected_shapes_follow_the_config() {
        let c = LlamaConfig::new(100, 16, 32, 2, 4, 2);
        assert_eq!(
            expected_shape(&c, "model.layers.1.self_attn.k_proj.weight"),
            Some(vec![8, 16])
        );
        assert_eq!(
            expected_shape(&c, "model.layers.0.mlp.down_proj.weight"),
            Some(vec![16, 32])
        );
        assert_eq!(expected_shape(&c, "lm_head.weight"), Some(vec![100, 16]));
        assert_eq!(expected_shape(&c, "model.layers.0.bogus"), None);
    }
}
