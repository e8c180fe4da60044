//! The aligned model: the LLM plus the two connectors that carry recommender embeddings into
//! token space (spec §4.2–4.3), its batched training loss (§4.5), and how it is saved.

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::activation::gelu;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, IndexingUpdateOp, Int, Tensor, TensorData};

use super::samples::Sample;
use crate::error::{Error, Result};
use crate::llm::LlamaModel;

/// `Linear(d_rec → H/2) → GELU (erf) → Linear(H/2 → H)`, eq. (1) of the paper.
#[derive(Module, Debug)]
pub struct Connector<B: Backend> {
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
}

impl<B: Backend> Connector<B> {
    /// v2 init: weights normal(0, 0.02), biases zero (HF `_init_weights`), drawn now from the
    /// backend RNG. (burn initialises a parameter lazily, at its first use, by default: the
    /// draw would then depend on whatever the RNG holds at that moment, and every clone made
    /// before it would draw weights of its own.)
    pub fn new(d_rec: usize, hidden: usize, device: &B::Device) -> Self {
        let layer = |i: usize, o: usize| {
            let mut lin = LinearConfig::new(i, o)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(device);
            lin.weight = Param::from_tensor(lin.weight.val());
            lin.bias = Some(Param::from_tensor(Tensor::zeros([o], device)));
            lin
        };
        Connector {
            fc1: layer(d_rec, hidden / 2),
            fc2: layer(hidden / 2, hidden),
        }
    }

    /// `[n, d_rec]` → `[n, hidden]`
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.fc2.forward(gelu(self.fc1.forward(x)))
    }
}

/// The LLM and, in the intention and hybrid modes, its connectors.
#[derive(Module, Debug)]
pub struct AlignedModel<B: Backend> {
    pub llm: LlamaModel<B>,
    pub user_connector: Option<Connector<B>>,
    pub item_connector: Option<Connector<B>>,
}

/// The recommender vectors behind a batch's placeholder tokens.
#[derive(Clone, Copy)]
pub struct RecFeatures<'a> {
    /// `[rows, d_rec]` row-major user vectors; a sample's `user` indexes a row.
    pub users: &'a [f32],
    /// `[n_items + 1, d_rec]` row-major item table; a sample's item ids index rows.
    pub items: &'a [f32],
    pub dim: usize,
}

impl RecFeatures<'_> {
    pub fn user_row(&self, row: usize) -> &[f32] {
        &self.users[row * self.dim..(row + 1) * self.dim]
    }

    pub fn item_row(&self, id: u32) -> &[f32] {
        let i = id as usize;
        &self.items[i * self.dim..(i + 1) * self.dim]
    }
}

/// Connector outputs for a batch's placeholders: the `(row, position)` of each and the
/// vectors `[n, H]` in the same order.
pub struct PlaceholderVectors<B: Backend> {
    pub at: Vec<(usize, usize)>,
    pub vectors: Tensor<B, 2>,
}

/// Loss of one batch plus what validation reports.
pub struct BatchLoss<B: Backend> {
    /// Mean cross-entropy over the batch's trained tokens (a scalar tensor, for backward).
    pub loss: Tensor<B, 1>,
    pub tokens: usize,
    /// Trained tokens whose argmax prediction was right.
    pub correct: usize,
}

impl<B: Backend> AlignedModel<B> {
    /// Connector outputs `[n, H]` for the given feature rows, or `None` when there are none.
    fn project(
        connector: Option<&Connector<B>>,
        rows: Vec<&[f32]>,
        dim: usize,
        device: &B::Device,
    ) -> Option<Tensor<B, 2>> {
        let connector = connector?;
        if rows.is_empty() {
            return None;
        }
        let n = rows.len();
        let flat: Vec<f32> = rows.concat();
        let x = Tensor::<B, 2>::from_data(TensorData::new(flat, [n, dim]), device);
        Some(connector.forward(x))
    }

    /// Connector outputs for every placeholder of a batch (spec §4.3: added onto the token's
    /// own embedding), one projection per connector, users first, then items; `None` when the
    /// batch has no placeholder or the model no connectors.
    pub fn placeholder_vectors(
        &self,
        batch: &[&Sample],
        features: &RecFeatures<'_>,
    ) -> Option<PlaceholderVectors<B>> {
        let device = self.llm.device();
        let (mut user_rows, mut user_at, mut item_rows, mut item_at) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (row, s) in batch.iter().enumerate() {
            for &p in &s.user_tokens {
                user_rows
                    .push(features.user_row(s.user_row.expect("user tokens carry a user row")));
                user_at.push((row, p));
            }
            for &(p, id) in &s.item_tokens {
                item_rows.push(features.item_row(id));
                item_at.push((row, p));
            }
        }
        let mut vectors = Vec::new();
        let mut at = Vec::new();
        let users = Self::project(
            self.user_connector.as_ref(),
            user_rows,
            features.dim,
            &device,
        );
        if let Some(u) = users {
            vectors.push(u);
            at.extend(user_at);
        }
        let items = Self::project(
            self.item_connector.as_ref(),
            item_rows,
            features.dim,
            &device,
        );
        if let Some(i) = items {
            vectors.push(i);
            at.extend(item_at);
        }
        (!vectors.is_empty()).then(|| PlaceholderVectors {
            at,
            vectors: Tensor::cat(vectors, 0),
        })
    }

    /// Input embeddings of a right-padded batch `[B, L]` with the connector outputs added at
    /// the placeholder positions: `[B, L, H]`.
    pub(super) fn batch_embeds(
        &self,
        batch: &[&Sample],
        len: usize,
        features: &RecFeatures<'_>,
    ) -> Tensor<B, 3> {
        let device = self.llm.device();
        let b = batch.len();
        let ids: Vec<i64> = batch
            .iter()
            .flat_map(|s| {
                let n = s.ids.len();
                s.ids
                    .iter()
                    .map(|&t| t as i64)
                    .chain(std::iter::repeat_n(0, len - n))
            })
            .collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [b, len]), &device);
        let embeds = self.llm.embed(ids); // [B, L, H]
        let h = self.llm.hidden_size();

        let Some(PlaceholderVectors { at, vectors }) = self.placeholder_vectors(batch, features)
        else {
            return embeds;
        };
        let positions: Vec<i64> = at.iter().map(|&(row, p)| (row * len + p) as i64).collect();
        let n = positions.len();
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [n]), &device);
        embeds
            .reshape([b * len, h])
            .select_assign(0, idx, vectors, IndexingUpdateOp::Add)
            .reshape([b, len, h])
    }

    /// Causal-LM cross-entropy over the trained tokens of a batch (HF shift-by-one: position
    /// `t` predicts token `t + 1`). Only the trained positions go through the output head.
    pub fn loss(&self, batch: &[&Sample], features: &RecFeatures<'_>) -> BatchLoss<B> {
        let (len, valid) = padding(batch);
        let embeds = self.batch_embeds(batch, len, features);
        let mut cache = self.llm.new_cache(batch.len());
        let hidden = self.llm.forward_embeds(embeds, &valid, &mut cache); // [B, L, H]
        self.head_loss(hidden, batch)
    }

    /// The loss of [`loss`](Self::loss) from the final-norm hidden states `[B, L, H]` of the
    /// right-padded batch.
    pub(super) fn head_loss(&self, hidden: Tensor<B, 3>, batch: &[&Sample]) -> BatchLoss<B> {
        let device = self.llm.device();
        let [_, len, h] = hidden.dims();
        let mut from = Vec::new();
        let mut targets = Vec::new();
        for (row, s) in batch.iter().enumerate() {
            for t in 1..s.ids.len() {
                if s.loss_mask[t] {
                    from.push((row * len + t - 1) as i64);
                    targets.push(s.ids[t] as i64);
                }
            }
        }
        let n = from.len();
        assert!(n > 0, "a training batch needs at least one trained token");
        let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(from, [n]), &device);
        let picked = hidden.reshape([batch.len() * len, h]).select(0, idx); // [N, H]
        let logits = self.llm.logits(picked.unsqueeze::<3>()).squeeze_dim::<2>(0); // [N, V]
        let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(targets, [n]), &device);
        let predicted = logits.clone().argmax(1).squeeze_dim::<1>(1);
        let correct = predicted
            .equal(targets.clone())
            .int()
            .sum()
            .into_scalar()
            .elem::<i64>() as usize;
        let loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits, targets);
        BatchLoss {
            loss,
            tokens: n,
            correct,
        }
    }

    /// Writes the connectors to `path` (safetensors); nothing when the mode has none.
    pub fn save_connectors(&self, path: &Path) -> Result<()> {
        if self.user_connector.is_none() {
            return Ok(());
        }
        let both = Connectors {
            user: self.user_connector.clone().expect("checked"),
            item: self
                .item_connector
                .clone()
                .expect("set with the user connector"),
        };
        both.save_into(&mut SafetensorsStore::from_file(path).overwrite(true))
            .map_err(|e| Error::model_file(path, e.to_string()))
    }

    /// Reads connectors written by [`save_connectors`](Self::save_connectors).
    pub fn load_connectors(
        path: &Path,
        d_rec: usize,
        hidden: usize,
        device: &B::Device,
    ) -> Result<(Connector<B>, Connector<B>)> {
        let mut both = Connectors {
            user: Connector::new(d_rec, hidden, device),
            item: Connector::new(d_rec, hidden, device),
        };
        let r = both
            .load_from(&mut SafetensorsStore::from_file(path))
            .map_err(|e| Error::model_file(path, e.to_string()))?;
        if !r.missing.is_empty() || !r.errors.is_empty() {
            return Err(Error::model_file(
                path,
                format!("missing {:?}, errors {:?}", r.missing, r.errors),
            ));
        }
        Ok((both.user, both.item))
    }
}

/// The padded length of a right-padded batch and, per row, which of its positions are real
/// tokens.
pub(super) fn padding(batch: &[&Sample]) -> (usize, Vec<Vec<bool>>) {
    let len = batch.iter().map(|s| s.ids.len()).max().unwrap_or(0);
    let valid = batch
        .iter()
        .map(|s| (0..len).map(|t| t < s.ids.len()).collect())
        .collect();
    (len, valid)
}

/// The pair saved to `connectors.safetensors`.
#[derive(Module, Debug)]
struct Connectors<B: Backend> {
    user: Connector<B>,
    item: Connector<B>,
}
