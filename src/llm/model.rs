//! The Llama-family decoder in burn.
//!
//! One forward function serves training, scoring and generation: it takes input *embeddings*
//! (so the alignment stage can add connector outputs onto `<user>`/`<item>` rows, spec §4.3),
//! a per-token validity mask (left padding for batched inference), and a [`KvCache`] that holds
//! the keys/values of earlier positions. Training calls it once with an empty cache; decoding
//! calls it once for the prompt and then once per new token.
//!
//! Grouped-query attention is computed without copying K/V per query head: the query heads that
//! share a KV head are folded into the query-length axis (`[B, Hkv, g·L, D]`), so one attention
//! call per KV head covers its whole group.

use burn::module::{Module, Param};
use burn::nn::{Embedding, Linear, RmsNorm};
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::config::RopeLayout;
use super::lora::{AttentionLora, Lora};

/// How many column blocks a matmul with `rows` input rows is split into.
///
/// In burn's CPU backend a decoding step's matmuls (one row per sequence) run as a
/// matrix-vector product on a single thread, which leaves the other cores' memory bandwidth
/// unused; weights dominate the traffic, so splitting the output columns across the rayon pool
/// can speed decoding up on an idle machine. Prefill/training matmuls are already parallel
/// inside the backend and GPU backends parallelise on their own: both keep one block.
///
/// On an oversubscribed machine fork-join costs far more than it saves (measured on the shared
/// 2-core dev box: 7 tok/s split vs 24 tok/s unsplit for SmolLM2), so splitting is opt-in
/// through the process-wide [`set_decode_column_blocks`] (default 1 = unsplit).
fn column_blocks<B: Backend>(device: &B::Device, rows: usize) -> usize {
    if rows > 8 || B::name(device) != "flex" {
        return 1;
    }
    match DECODE_COLUMN_BLOCKS.load(Ordering::Relaxed) {
        0 => rayon::current_num_threads(),
        n => n,
    }
}

static DECODE_COLUMN_BLOCKS: AtomicUsize = AtomicUsize::new(1);

/// Sets how many column blocks decoding matmuls are split into on the CPU backend
/// (0 = one per rayon thread; 1 = no splitting, the default).
pub fn set_decode_column_blocks(blocks: usize) {
    DECODE_COLUMN_BLOCKS.store(blocks, Ordering::Relaxed);
}

/// `x` `[B, L, d_in]` through `lin` (weight `[d_in, d_out]`), column blocks computed in parallel.
fn linear_forward<B: Backend>(lin: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, l, _] = x.dims();
    let blocks = column_blocks::<B>(&x.device(), b * l);
    if blocks <= 1 {
        return lin.forward(x);
    }
    let w = lin.weight.val();
    let bias = lin.bias.as_ref().map(|p| p.val());
    let n = w.dims()[1];
    let width = n.div_ceil(blocks);
    let parts: Vec<Tensor<B, 3>> = (0..n.div_ceil(width))
        .into_par_iter()
        .map(|i| {
            let (start, len) = (i * width, width.min(n - i * width));
            let w = w.clone().narrow(1, start, len);
            let bias = bias.clone().map(|b| b.narrow(0, start, len));
            burn::tensor::module::linear(x.clone(), w, bias)
        })
        .collect();
    Tensor::cat(parts, 2)
}

/// `x` `[rows, hidden]` times the transposed embedding matrix `[vocab, hidden]` → `[rows, vocab]`
/// (the tied output head), vocabulary blocks computed in parallel.
fn tied_head<B: Backend>(x: Tensor<B, 2>, embedding: Tensor<B, 2>) -> Tensor<B, 2> {
    let rows = x.dims()[0];
    let blocks = column_blocks::<B>(&x.device(), rows);
    if blocks <= 1 {
        return x.matmul(embedding.transpose());
    }
    let n = embedding.dims()[0];
    let width = n.div_ceil(blocks);
    let parts: Vec<Tensor<B, 2>> = (0..n.div_ceil(width))
        .into_par_iter()
        .map(|i| {
            x.clone().matmul(
                embedding
                    .clone()
                    .narrow(0, i * width, width.min(n - i * width))
                    .transpose(),
            )
        })
        .collect();
    Tensor::cat(parts, 1)
}

/// Rotary embedding tables; the pairing of dimensions follows the checkpoint's layout.
///
/// Rotation is computed as `x·cos + (x·R)·sin` on full-width tables, where `R` is the signed
/// permutation that maps each pair `(a, b)` of rotated dimensions to `(-b, a)` (HF's
/// `rotate_half` for the half-split layout, neighbouring pairs for the interleaved one). Every
/// operand is then contiguous: slicing the two halves apart and concatenating them again made
/// the CPU backend walk strided views element by element, in the forward and backward pass of
/// every layer.
#[derive(Module, Debug)]
pub struct Rope<B: Backend> {
    /// `[max_positions, head_dim]`: each pair's cosine at both of its dimensions.
    cos: Tensor<B, 2>,
    /// `[max_positions, head_dim]`
    sin: Tensor<B, 2>,
    /// `[head_dim, head_dim]`: `x·R` is `rotate_half(x)` in the checkpoint's layout.
    rotation: Tensor<B, 2>,
    interleaved: bool,
}

/// Longest table built up front; longer contexts are rejected with a clear message.
const MAX_ROPE_TABLE: usize = 16384;

impl<B: Backend> Rope<B> {
    pub fn new(
        head_dim: usize,
        theta: f64,
        max_positions: usize,
        layout: RopeLayout,
        device: &B::Device,
    ) -> Self {
        let half = head_dim / 2;
        let interleaved = layout == RopeLayout::Interleaved;
        // Dimension `j` belongs to pair `pair(j)`; `partner(j)` is the other member of its pair
        // and `first(j)` says whether `j` is the pair's first member.
        let pair = |j: usize| if interleaved { j / 2 } else { j % half };
        let partner = |j: usize| match (interleaved, j.is_multiple_of(2), j < half) {
            (true, true, _) => j + 1,
            (true, false, _) => j - 1,
            (false, _, true) => j + half,
            (false, _, false) => j - half,
        };
        let first = |j: usize| {
            if interleaved {
                j.is_multiple_of(2)
            } else {
                j < half
            }
        };
        let n = max_positions.clamp(1, MAX_ROPE_TABLE);
        let mut cos = Vec::with_capacity(n * head_dim);
        let mut sin = Vec::with_capacity(n * head_dim);
        for pos in 0..n {
            for j in 0..head_dim {
                // Same f32 inverse frequencies as HF's `_compute_default_rope_parameters`.
                let i = pair(j);
                let inv_freq = (1.0 / theta.powf((2 * i) as f64 / head_dim as f64)) as f32;
                let angle = pos as f32 * inv_freq;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        // (x·R)[j] = -x[partner(j)] for a pair's first member, +x[partner(j)] for its second.
        let mut rotation = vec![0.0f32; head_dim * head_dim];
        for j in 0..head_dim {
            rotation[partner(j) * head_dim + j] = if first(j) { -1.0 } else { 1.0 };
        }
        Rope {
            cos: Tensor::from_data(TensorData::new(cos, [n, head_dim]), device),
            sin: Tensor::from_data(TensorData::new(sin, [n, head_dim]), device),
            rotation: Tensor::from_data(TensorData::new(rotation, [head_dim, head_dim]), device),
            interleaved,
        }
    }

    pub fn is_interleaved(&self) -> bool {
        self.interleaved
    }

    pub fn max_positions(&self) -> usize {
        self.cos.dims()[0]
    }

    /// Tables for the given positions, materialised for `heads` heads: `positions` `[B·L]` →
    /// two contiguous `[B, L, heads, head_dim]` (built once per forward call and shared by every
    /// layer, so the per-layer products need no broadcasting).
    pub fn at(
        &self,
        positions: Tensor<B, 1, Int>,
        batch: usize,
        len: usize,
        heads: usize,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let d = self.cos.dims()[1];
        let pick = |t: &Tensor<B, 2>| {
            t.clone()
                .select(0, positions.clone())
                .reshape([batch, len, 1, d])
                .repeat_dim(2, heads)
        };
        (pick(&self.cos), pick(&self.sin))
    }

    /// Rotates `x` `[B, L, H, D]` by the tables `[B, L, H, D]` from [`Rope::at`].
    pub fn apply(&self, x: Tensor<B, 4>, cos: &Tensor<B, 4>, sin: &Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, l, h, d] = x.dims();
        let rotated = x
            .clone()
            .reshape([b * l * h, d])
            .matmul(self.rotation.clone())
            .reshape([b, l, h, d]);
        x * cos.clone() + rotated * sin.clone()
    }
}

/// Multi-head attention with grouped K/V heads.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub o_proj: Linear<B>,
    /// LoRA adapters while the alignment stage trains (spec §4.6); `None` otherwise.
    pub lora: Option<AttentionLora<B>>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

/// What every layer needs for one forward call besides its input.
pub struct StepContext<B: Backend> {
    /// `[B, L, H, D]` rotary tables for the new tokens' query heads.
    pub cos_q: Tensor<B, 4>,
    pub sin_q: Tensor<B, 4>,
    /// `[B, L, Hkv, D]` rotary tables for their key heads.
    pub cos_k: Tensor<B, 4>,
    pub sin_k: Tensor<B, 4>,
    /// `[B, Hkv, g·L, L_total]`, true = masked; `None` when nothing is masked.
    pub mask: Option<Tensor<B, 4, Bool>>,
}

impl<B: Backend> Attention<B> {
    /// `x` `[B, L, hidden]` → `[B, L, hidden]`; appends this call's K/V to `cache`.
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &Rope<B>,
        ctx: &StepContext<B>,
        cache: &mut Option<LayerCache<B>>,
    ) -> Tensor<B, 3> {
        let [b, l, _] = x.dims();
        let (h, hkv, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let heads = |t: Tensor<B, 3>, n: usize| t.reshape([b, l, n, d]);
        let lora = self.lora.as_ref();
        let q = project(&self.q_proj, lora.and_then(|a| a.q.as_ref()), x.clone());
        let k = project(&self.k_proj, lora.and_then(|a| a.k.as_ref()), x.clone());
        let v = project(&self.v_proj, lora.and_then(|a| a.v.as_ref()), x);
        // Rotated while still contiguous `[B, L, heads, D]`, then heads first.
        let q = rope
            .apply(heads(q, h), &ctx.cos_q, &ctx.sin_q)
            .swap_dims(1, 2); // [B, H, L, D]
        let k = rope
            .apply(heads(k, hkv), &ctx.cos_k, &ctx.sin_k)
            .swap_dims(1, 2); // [B, Hkv, L, D]
        let v = heads(v, hkv).swap_dims(1, 2); // [B, Hkv, L, D]
        let (k, v) = match cache.take() {
            Some(past) => (
                Tensor::cat(vec![past.k, k], 2),
                Tensor::cat(vec![past.v, v], 2),
            ),
            None => (k, v),
        };
        *cache = Some(LayerCache {
            k: k.clone(),
            v: v.clone(),
        });
        let group = h / hkv;
        let q = q.reshape([b, hkv, group * l, d]); // query heads of a group share their K/V
        let out = attention(
            q,
            k,
            v,
            ctx.mask.clone(),
            None,
            AttentionModuleOptions::default(),
        ); // [B, Hkv, g·L, D]
        let out = out
            .reshape([b, h, l, d])
            .swap_dims(1, 2)
            .reshape([b, l, h * d]);
        project(&self.o_proj, lora.and_then(|a| a.o.as_ref()), out)
    }
}

/// A projection plus its LoRA update when one is attached: `[B, L, in]` → `[B, L, out]`.
fn project<B: Backend>(lin: &Linear<B>, lora: Option<&Lora<B>>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    match lora {
        Some(adapter) => linear_forward(lin, x.clone()) + adapter.forward(x),
        None => linear_forward(lin, x),
    }
}

/// SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub gate_proj: Linear<B>,
    pub up_proj: Linear<B>,
    pub down_proj: Linear<B>,
}

impl<B: Backend> Mlp<B> {
    /// `[B, L, hidden]` → `[B, L, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = silu(linear_forward(&self.gate_proj, x.clone()));
        linear_forward(&self.down_proj, gate * linear_forward(&self.up_proj, x))
    }
}

/// Pre-norm decoder block.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub input_layernorm: RmsNorm<B>,
    pub self_attn: Attention<B>,
    pub post_attention_layernorm: RmsNorm<B>,
    pub mlp: Mlp<B>,
}

impl<B: Backend> DecoderLayer<B> {
    /// `[B, L, hidden]` → `[B, L, hidden]`
    pub fn forward(
        &self,
        x: Tensor<B, 3>,
        rope: &Rope<B>,
        ctx: &StepContext<B>,
        cache: &mut Option<LayerCache<B>>,
    ) -> Tensor<B, 3> {
        let h = x.clone()
            + self
                .self_attn
                .forward(self.input_layernorm.forward(x), rope, ctx, cache);
        h.clone() + self.mlp.forward(self.post_attention_layernorm.forward(h))
    }
}

/// Keys and values of the positions seen so far, for one layer.
#[derive(Debug, Clone)]
pub struct LayerCache<B: Backend> {
    /// `[B, Hkv, L_past, D]`
    pub k: Tensor<B, 4>,
    /// `[B, Hkv, L_past, D]`
    pub v: Tensor<B, 4>,
}

/// The decoding state of a batch: K/V per layer, which past positions are real tokens (left
/// padding is not), and each row's next position id.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    pub layers: Vec<Option<LayerCache<B>>>,
    /// `valid[b][j]`: whether key position `j` of row `b` is a real token.
    pub valid: Vec<Vec<bool>>,
    /// Position id the next real token of each row gets (HF: cumulative count of real tokens).
    pub next_pos: Vec<usize>,
}

impl<B: Backend> KvCache<B> {
    pub fn new(num_layers: usize, batch: usize) -> Self {
        KvCache {
            layers: vec![None; num_layers],
            valid: vec![Vec::new(); batch],
            next_pos: vec![0; batch],
        }
    }

    pub fn batch(&self) -> usize {
        self.valid.len()
    }

    pub fn len(&self) -> usize {
        self.valid.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps only the given rows, in the given order (beam search reorders its hypotheses).
    pub fn reorder(&mut self, rows: &[usize]) {
        let device = self.layers.iter().flatten().next().map(|c| c.k.device());
        if let Some(device) = device {
            let idx = Tensor::<B, 1, Int>::from_data(
                TensorData::new(
                    rows.iter().map(|&r| r as i64).collect::<Vec<_>>(),
                    [rows.len()],
                ),
                &device,
            );
            for c in self.layers.iter_mut().flatten() {
                c.k = c.k.clone().select(0, idx.clone());
                c.v = c.v.clone().select(0, idx.clone());
            }
        }
        self.valid = rows.iter().map(|&r| self.valid[r].clone()).collect();
        self.next_pos = rows.iter().map(|&r| self.next_pos[r]).collect();
    }
}

/// The decoder: embeddings, blocks, final norm, output head (tied to the embeddings or not).
#[derive(Module, Debug)]
pub struct LlamaModel<B: Backend> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    /// `None` when the head is tied to `embed_tokens`. Weight `[hidden, vocab]` (burn layout).
    pub lm_head: Option<Linear<B>>,
    pub rope: Rope<B>,
}

impl<B: Backend> LlamaModel<B> {
    pub fn vocab_size(&self) -> usize {
        self.embed_tokens.weight.dims()[0]
    }

    pub fn hidden_size(&self) -> usize {
        self.embed_tokens.weight.dims()[1]
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    pub fn device(&self) -> B::Device {
        self.embed_tokens.weight.device()
    }

    pub fn new_cache(&self, batch: usize) -> KvCache<B> {
        KvCache::new(self.layers.len(), batch)
    }

    /// Token embeddings: `[B, L]` ids → `[B, L, hidden]`.
    pub fn embed(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.embed_tokens.forward(ids)
    }

    /// Runs the decoder over new positions.
    ///
    /// `embeds` `[B, L, hidden]`; `valid[b][i]` says whether new position `i` of row `b` is a
    /// real token (false = padding); the cache grows by `L`. Returns the final-norm hidden
    /// states `[B, L, hidden]`.
    pub fn forward_embeds(
        &self,
        embeds: Tensor<B, 3>,
        valid: &[Vec<bool>],
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        let [b, l, _] = embeds.dims();
        assert_eq!(valid.len(), b, "validity rows must match the batch");
        assert!(
            valid.iter().all(|row| row.len() == l),
            "validity rows must cover the new positions"
        );
        let ctx = self.step_context(valid, cache);
        let mut x = embeds;
        for (layer, layer_cache) in self.layers.iter().zip(cache.layers.iter_mut()) {
            x = layer.forward(x, &self.rope, &ctx, layer_cache);
        }
        self.norm.forward(x)
    }

    /// What every layer needs to run over new positions: rotary tables and the attention mask.
    /// `valid[b][i]` says whether new position `i` of row `b` is a real token; the cache's
    /// validity and positions grow by the new positions (its K/V are left to the layers).
    pub fn step_context(&self, valid: &[Vec<bool>], cache: &mut KvCache<B>) -> StepContext<B> {
        let b = valid.len();
        let l = valid.first().map_or(0, Vec::len);
        assert_eq!(cache.batch(), b, "cache batch must match the input batch");
        let device = self.device();
        let positions = self.extend_positions(cache, valid);
        assert!(
            positions
                .iter()
                .all(|&p| (p as usize) < self.rope.max_positions()),
            "sequence longer than the {} positions this model supports",
            self.rope.max_positions()
        );
        let (heads, kv_heads) = self.layers.first().map_or((1, 1), |x| {
            (x.self_attn.num_heads, x.self_attn.num_kv_heads)
        });
        let positions =
            Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [b * l]), &device);
        let (cos_q, sin_q) = self.rope.at(positions.clone(), b, l, heads);
        let (cos_k, sin_k) = self.rope.at(positions, b, l, kv_heads);
        let mask = attention_mask::<B>(&cache.valid, l, kv_heads, heads / kv_heads, &device);
        StepContext {
            cos_q,
            sin_q,
            cos_k,
            sin_k,
            mask,
        }
    }

    /// Appends the new positions' validity to the cache and returns their position ids `[B·L]`.
    fn extend_positions(&self, cache: &mut KvCache<B>, valid: &[Vec<bool>]) -> Vec<i64> {
        let mut positions = Vec::new();
        for (row, new) in valid.iter().enumerate() {
            for &ok in new {
                // Padding positions get position 0: they are masked out of every real query.
                positions.push(if ok { cache.next_pos[row] as i64 } else { 0 });
                if ok {
                    cache.next_pos[row] += 1;
                }
            }
            cache.valid[row].extend_from_slice(new);
        }
        positions
    }

    /// Output logits: hidden `[B, L, hidden]` → `[B, L, vocab]`.
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.lm_head {
            Some(head) => linear_forward(head, hidden),
            None => {
                let [b, l, h] = hidden.dims();
                let w = self.embed_tokens.weight.val(); // [vocab, hidden]
                let v = w.dims()[0];
                tied_head(hidden.reshape([b * l, h]), w).reshape([b, l, v])
            }
        }
    }

    /// Full-sequence logits for token ids (no padding): `[B, L]` → `[B, L, vocab]`.
    pub fn forward(&self, ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [b, l] = ids.dims();
        let mut cache = self.new_cache(b);
        let hidden = self.forward_embeds(self.embed(ids), &vec![vec![true; l]; b], &mut cache);
        self.logits(hidden)
    }

    /// Grows the vocabulary to `new_vocab` rows (e.g. after adding `<user>` and `<item>`); new
    /// embedding rows (and untied head columns) are drawn from normal(0, `std`) with `seed`.
    pub fn resize_token_embeddings(self, new_vocab: usize, std: f64, seed: u64) -> Self {
        let old = self.vocab_size();
        if new_vocab <= old {
            return self;
        }
        let hidden = self.hidden_size();
        let device = self.device();
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
        let mut rows = |n: usize| -> Tensor<B, 2> {
            let data = super::weights::normal_vec(&mut rng, (new_vocab - old) * n, std);
            Tensor::from_data(TensorData::new(data, [new_vocab - old, n]), &device)
        };
        let embed_rows = rows(hidden);
        let head_rows = self.lm_head.as_ref().map(|_| rows(hidden));
        let LlamaModel {
            mut embed_tokens,
            layers,
            norm,
            lm_head,
            rope,
        } = self;
        embed_tokens.weight = Param::from_tensor(
            Tensor::cat(vec![embed_tokens.weight.val(), embed_rows], 0).detach(),
        );
        let lm_head = lm_head.map(|mut head| {
            let added = head_rows
                .expect("drawn when the head is untied")
                .transpose(); // [hidden, n_new]
            head.weight =
                Param::from_tensor(Tensor::cat(vec![head.weight.val(), added], 1).detach());
            head
        });
        LlamaModel {
            embed_tokens,
            layers,
            norm,
            lm_head,
            rope,
        }
    }
}

/// The boolean attention mask for `l` new queries over all keys (`valid` already includes the
/// new positions), laid out as the attention scores are: `[B, kv_heads, group·l, total]`, each
/// query row repeated for the `group` heads sharing a KV head.
///
/// A key is masked when it lies after the query or is padding; a padding query still sees
/// itself so no softmax row is empty (an all-masked row would produce NaNs that leak through
/// the cache). The mask is materialised at the scores' full shape: a broadcast mask would be
/// copied into that shape by the CPU backend in every layer, forward and backward. Returns
/// `None` when nothing is masked.
fn attention_mask<B: Backend>(
    valid: &[Vec<bool>],
    l: usize,
    kv_heads: usize,
    group: usize,
    device: &B::Device,
) -> Option<Tensor<B, 4, Bool>> {
    let b = valid.len();
    let total = valid.first().map_or(0, Vec::len);
    let past = total - l;
    let rows = group * l * total;
    let mut mask = Vec::with_capacity(b * kv_heads * rows);
    for row in valid {
        let start = mask.len();
        for _ in 0..group {
            for i in 0..l {
                let t = past + i;
                mask.extend((0..total).map(|j| j > t || (!row[j] && j != t)));
            }
        }
        for _ in 1..kv_heads {
            mask.extend_from_within(start..start + rows);
        }
    }
    if mask.iter().all(|m| !m) {
        return None;
    }
    Some(Tensor::from_data(
        TensorData::new(mask, [b, kv_heads, group * l, total]),
        device,
    ))
}
