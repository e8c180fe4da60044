//! SASRec as UniRec builds it (spec §2.1): item + position embeddings over left-padded
//! histories, post-LN (BERT style) transformer blocks with a causal + padding mask, swish FFN,
//! user embedding = the last position's output, scores = dot products with the item table.
//!
//! Only the last position's output is ever used (training, evaluation and export all read the
//! user embedding), so the final block computes its query, residual and FFN for that position
//! alone while its keys and values still cover the whole sequence. The result is exactly what
//! the full computation gives at that position; it removes most of the last block's work.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer, LayerNorm, LayerNormConfig, Linear};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

/// The additive value UniRec puts on masked attention logits.
const MASKED: f32 = -10_000.0;

/// Hyperparameters of SASRec; defaults are the paper's Games settings (spec §2.1).
#[derive(Config, Debug, PartialEq)]
pub struct SasRecConfig {
    /// Rows of the item table: the number of items plus the padding row 0.
    pub n_items: usize,
    #[config(default = 256)]
    pub embedding_size: usize,
    #[config(default = 2)]
    pub n_layers: usize,
    #[config(default = 16)]
    pub n_heads: usize,
    #[config(default = 512)]
    pub inner_size: usize,
    #[config(default = 9)]
    pub max_seq_len: usize,
    #[config(default = 0.4954053313841075)]
    pub hidden_dropout: f64,
    #[config(default = 0.1871672079253271)]
    pub attn_dropout: f64,
    #[config(default = 1e-10)]
    pub layer_norm_eps: f64,
}

/// UniRec's `normal(0, 0.02)` initialisation for Linear and Embedding weights.
pub(crate) fn normal_init() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

/// A Linear layer with `normal(0, 0.02)` weights and a zero bias, as UniRec initialises it.
pub(crate) fn unirec_linear<B: Backend>(
    d_in: usize,
    d_out: usize,
    device: &B::Device,
) -> Linear<B> {
    Linear {
        weight: normal_init().init_with([d_in, d_out], Some(d_in), Some(d_out), device),
        bias: Some(Initializer::Zeros.init([d_out], device)),
    }
}

/// An embedding table with `normal(0, 0.02)` rows and row 0 (padding) zeroed.
pub(crate) fn padded_table<B: Backend>(
    rows: usize,
    dim: usize,
    device: &B::Device,
) -> Param<Tensor<B, 2>> {
    let table: Tensor<B, 2> = normal_init().init([rows, dim], device).val();
    Param::from_tensor(
        table
            .slice_assign([0..1, 0..dim], Tensor::zeros([1, dim], device))
            .detach(),
    )
}

/// `[rows, 1]` of ones with a zero in row 0: multiplying a table by it keeps the padding row at
/// zero and stops gradients into it, like PyTorch's `padding_idx`.
pub(crate) fn padding_row_mask<B: Backend>(rows: usize, device: &B::Device) -> Tensor<B, 2> {
    let mut v = vec![1.0f32; rows];
    v[0] = 0.0;
    Tensor::from_data(TensorData::new(v, [rows, 1]), device)
}

impl SasRecConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> SasRec<B> {
        let d = self.embedding_size;
        let ln = || {
            LayerNormConfig::new(d)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        SasRec {
            item_embedding: padded_table(self.n_items, d, device),
            position_embedding: normal_init().init([self.max_seq_len + 1, d], device),
            input_norm: ln(),
            input_dropout: DropoutConfig::new(self.hidden_dropout).init(),
            layers: (0..self.n_layers)
                .map(|_| TransformerLayer {
                    query: unirec_linear(d, d, device),
                    key: unirec_linear(d, d, device),
                    value: unirec_linear(d, d, device),
                    attn_out: unirec_linear(d, d, device),
                    attn_norm: ln(),
                    ffn_in: unirec_linear(d, self.inner_size, device),
                    ffn_out: unirec_linear(self.inner_size, d, device),
                    ffn_norm: ln(),
                    attn_dropout: DropoutConfig::new(self.attn_dropout).init(),
                    hidden_dropout: DropoutConfig::new(self.hidden_dropout).init(),
                    n_heads: self.n_heads,
                })
                .collect(),
            max_seq_len: self.max_seq_len,
        }
    }
}

/// SASRec. Build with [`SasRecConfig::init`].
#[derive(Module, Debug)]
pub struct SasRec<B: Backend> {
    /// `[n_items, d]`, row 0 is padding and stays zero.
    pub item_embedding: Param<Tensor<B, 2>>,
    /// `[max_seq_len + 1, d]`; positions `0..L` are used over the padded sequence.
    pub position_embedding: Param<Tensor<B, 2>>,
    pub input_norm: LayerNorm<B>,
    pub input_dropout: Dropout,
    pub layers: Vec<TransformerLayer<B>>,
    pub max_seq_len: usize,
}

/// One post-LN transformer block.
#[derive(Module, Debug)]
pub struct TransformerLayer<B: Backend> {
    pub query: Linear<B>,
    pub key: Linear<B>,
    pub value: Linear<B>,
    pub attn_out: Linear<B>,
    pub attn_norm: LayerNorm<B>,
    pub ffn_in: Linear<B>,
    pub ffn_out: Linear<B>,
    pub ffn_norm: LayerNorm<B>,
    pub attn_dropout: Dropout,
    pub hidden_dropout: Dropout,
    pub n_heads: usize,
}

impl<B: Backend> TransformerLayer<B> {
    /// `queries`: `[B, Lq, d]` (the last `Lq` positions of `x`), `x`: `[B, L, d]`,
    /// `mask`: `[B, 1, Lq, L]` additive → `[B, Lq, d]`.
    pub fn forward(
        &self,
        queries: Tensor<B, 3>,
        x: Tensor<B, 3>,
        mask: Tensor<B, 4>,
    ) -> Tensor<B, 3> {
        let [b, lq, d] = queries.dims();
        let l = x.dims()[1];
        let h = self.n_heads;
        let dh = d / h;
        // [B, L, d] -> [B, H, L, dh]
        let heads = |t: Tensor<B, 3>, len: usize| t.reshape([b, len, h, dh]).swap_dims(1, 2);
        let q = heads(self.query.forward(queries.clone()), lq);
        let k = heads(self.key.forward(x.clone()), l);
        let v = heads(self.value.forward(x), l);
        // [B, H, Lq, L]
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f64).sqrt()) + mask;
        let probs = self.attn_dropout.forward(softmax(scores, 3));
        // [B, H, Lq, dh] -> [B, Lq, d]
        let context = probs.matmul(v).swap_dims(1, 2).reshape([b, lq, d]);
        let attended = self.hidden_dropout.forward(self.attn_out.forward(context));
        let hidden = self.attn_norm.forward(attended + queries);
        let ffn = self
            .ffn_out
            .forward(silu(self.ffn_in.forward(hidden.clone())));
        self.ffn_norm
            .forward(self.hidden_dropout.forward(ffn) + hidden)
    }
}

impl<B: Backend> SasRec<B> {
    /// The item table with the padding row forced to zero: `[n_items, d]`.
    pub fn item_table(&self) -> Tensor<B, 2> {
        let w = self.item_embedding.val();
        let rows = w.dims()[0];
        w * padding_row_mask(rows, &self.item_embedding.device())
    }

    /// User embeddings from left-padded histories: `seq` `[B, L]` (item ids, 0 = padding,
    /// `L = max_seq_len`) → `[B, d]` (the last position of the last block).
    pub fn forward(&self, seq: Tensor<B, 2, Int>, mask: Tensor<B, 4>) -> Tensor<B, 2> {
        self.forward_with_table(seq, mask, self.item_table())
    }

    /// [`Self::forward`] with the (masked) item table already computed, so training can share
    /// it between the input lookup and the scores.
    pub fn forward_with_table(
        &self,
        seq: Tensor<B, 2, Int>,
        mask: Tensor<B, 4>,
        table: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let [b, l] = seq.dims();
        let d = table.dims()[1];
        // [B, L, d]
        let items = table.select(0, seq.reshape([b * l])).reshape([b, l, d]);
        let positions = self
            .position_embedding
            .val()
            .slice([0..l, 0..d])
            .unsqueeze::<3>();
        let mut x = self
            .input_dropout
            .forward(self.input_norm.forward(items + positions));
        let n = self.layers.len();
        for (i, layer) in self.layers.iter().enumerate() {
            if i + 1 < n {
                x = layer.forward(x.clone(), x, mask.clone());
            } else {
                // Only the last position feeds the user embedding: query it alone.
                let last = x.clone().slice([0..b, l - 1..l, 0..d]);
                let last_mask = mask.clone().slice([0..b, 0..1, l - 1..l, 0..l]);
                x = layer.forward(last, x, last_mask);
            }
        }
        // [B, 1, d] (or [B, L, d] with no layers) -> [B, d]
        let lx = x.dims()[1];
        x.slice([0..b, lx - 1..lx, 0..d]).reshape([b, d])
    }

    /// Scores of every item for each user: `[B, d]` → `[B, n_items]` (dot product, tau = 1).
    pub fn scores(&self, users: Tensor<B, 2>) -> Tensor<B, 2> {
        users.matmul(self.item_table().transpose())
    }
}

/// Left-pads (or truncates to the last `max_len` items) one history.
pub fn pad_history(history: &[u32], max_len: usize) -> Vec<u32> {
    let tail = &history[history.len().saturating_sub(max_len)..];
    let mut out = vec![0u32; max_len - tail.len()];
    out.extend_from_slice(tail);
    out
}

/// Padded histories of one batch, row-major `[B, L]`, and their attention masks.
#[derive(Debug, Clone)]
pub struct SeqBatch {
    pub seqs: Vec<u32>,
    pub batch: usize,
    pub len: usize,
}

impl SeqBatch {
    /// Pads each history to `len` items.
    pub fn new<'a>(histories: impl IntoIterator<Item = &'a [u32]>, len: usize) -> Self {
        let mut seqs = Vec::new();
        let mut batch = 0;
        for h in histories {
            seqs.extend(pad_history(h, len));
            batch += 1;
        }
        SeqBatch { seqs, batch, len }
    }

    /// `[B, L]` item ids.
    pub fn ids<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2, Int> {
        let v: Vec<i32> = self.seqs.iter().map(|&i| i as i32).collect();
        Tensor::from_data(TensorData::new(v, [self.batch, self.len]), device)
    }

    /// UniRec's mask as an additive `[B, 1, L, L]` tensor: query `i` may see key `j` iff
    /// `j <= i` and item `j` is not padding; anything else gets −10000.
    pub fn mask<B: Backend>(&self, device: &B::Device) -> Tensor<B, 4> {
        let l = self.len;
        let mut m = vec![0.0f32; self.batch * l * l];
        for (row, seq) in self.seqs.chunks(l).enumerate() {
            let block = &mut m[row * l * l..(row + 1) * l * l];
            for i in 0..l {
                for (j, &item) in seq.iter().enumerate() {
                    if j > i || item == 0 {
                        block[i * l + j] = MASKED;
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(m, [self.batch, 1, l, l]), device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn pads_on_the_left_and_keeps_the_last_items() {
        assert_eq!(pad_history(&[1, 2, 3], 5), vec![0, 0, 1, 2, 3]);
        assert_eq!(pad_history(&[1, 2, 3, 4, 5, 6], 4), vec![3, 4, 5, 6]);
        assert_eq!(pad_history(&[], 2), vec![0, 0]);
    }

    #[test]
    fn mask_is_causal_and_hides_padding() {
        let b = SeqBatch::new([&[7u32, 8][..]], 3);
        let m: Vec<f32> = b
            .mask::<Flex>(&Default::default())
            .into_data()
            .to_vec()
            .unwrap();
        // seq = [0, 7, 8]: column 0 is padding; upper triangle is masked.
        #[rustfmt::skip]
        let want = [MASKED, MASKED, MASKED,
                    MASKED, 0.0, MASKED,
                    MASKED, 0.0, 0.0];
        assert_eq!(m, want);
    }

    /// The last-position shortcut in the final block must equal the full computation.
    #[test]
    fn last_position_shortcut_matches_full_block() {
        let device = Default::default();
        let cfg = SasRecConfig::new(20)
            .with_embedding_size(16)
            .with_n_heads(4)
            .with_inner_size(8)
            .with_max_seq_len(5);
        let model: SasRec<Flex> = cfg.init(&device);
        let batch = SeqBatch::new([&[3u32, 4, 5][..], &[1, 2, 3, 4, 5, 6, 7][..]], 5);
        let (ids, mask) = (batch.ids::<Flex>(&device), batch.mask::<Flex>(&device));
        let fast: Vec<f32> = model
            .forward(ids.clone(), mask.clone())
            .into_data()
            .to_vec()
            .unwrap();
        // Full computation by hand: every block over all positions, then take the last one.
        let table = model.item_table();
        let items = table.select(0, ids.reshape([10])).reshape([2, 5, 16]);
        let pos = model
            .position_embedding
            .val()
            .slice([0..5, 0..16])
            .unsqueeze::<3>();
        let mut x = model.input_norm.forward(items + pos);
        for layer in &model.layers {
            x = layer.forward(x.clone(), x, mask.clone());
        }
        let full: Vec<f32> = x
            .slice([0..2, 4..5, 0..16])
            .reshape([2, 16])
            .into_data()
            .to_vec()
            .unwrap();
        for (a, b) in fast.iter().zip(&full) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
