//! What training, evaluation and export need from a target model, implemented by SASRec and
//! MF, so the loops are written once.

use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use super::mf::Mf;
use super::samples::Query;
use super::sasrec::{SasRec, SeqBatch};

/// A recommender that embeds user states and scores items by dot product.
pub trait RecModel<B: Backend>: Module<B> {
    /// User embeddings for a batch of user states: `[B, d]`.
    fn user_embeddings(&self, queries: &[Query<'_>], device: &B::Device) -> Tensor<B, 2>;

    /// The item table with the padding row zeroed: `[n_items, d]`.
    fn item_table(&self) -> Tensor<B, 2>;

    /// The training loss of a batch (spec §2.3). `negatives`, when given, holds `k` sampled
    /// items per example, row-major `[B, k]`: the loss is then a softmax over the positive and
    /// those negatives; without it, over all items.
    fn loss(
        &self,
        queries: &[Query<'_>],
        targets: &[u32],
        negatives: Option<&[u32]>,
        device: &B::Device,
    ) -> Tensor<B, 1> {
        let users = self.user_embeddings(queries, device);
        let scores = users.matmul(self.item_table().transpose());
        softmax_loss(scores, targets, negatives, device)
    }
}

/// Mean `−log softmax(scores)[target]`, over all columns or over `[target, negatives…]`.
/// `scores`: `[B, n_items]`.
pub fn softmax_loss<B: Backend>(
    scores: Tensor<B, 2>,
    targets: &[u32],
    negatives: Option<&[u32]>,
    device: &B::Device,
) -> Tensor<B, 1> {
    let b = targets.len();
    let (scores, column) = match negatives {
        None => (scores, ids_2d::<B>(targets.iter().copied(), [b, 1], device)),
        Some(neg) => {
            let k = neg.len() / b;
            let idx = targets.iter().enumerate().flat_map(|(r, &t)| {
                std::iter::once(t).chain(neg[r * k..(r + 1) * k].iter().copied())
            });
            // [B, 1 + k]: the positive sits in column 0.
            let picked = scores.gather(1, ids_2d::<B>(idx, [b, k + 1], device));
            (picked, Tensor::zeros([b, 1], device))
        }
    };
    log_softmax(scores, 1).gather(1, column).mean().neg()
}

/// An int tensor of ids.
pub fn ids_2d<B: Backend>(
    ids: impl Iterator<Item = u32>,
    shape: [usize; 2],
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let v: Vec<i32> = ids.map(|i| i as i32).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

impl<B: Backend> RecModel<B> for SasRec<B> {
    fn user_embeddings(&self, queries: &[Query<'_>], device: &B::Device) -> Tensor<B, 2> {
        let batch = SeqBatch::new(queries.iter().map(|q| q.history), self.max_seq_len);
        self.forward(batch.ids(device), batch.mask(device))
    }

    fn item_table(&self) -> Tensor<B, 2> {
        SasRec::item_table(self)
    }

    /// Full softmax with the item table computed once for the input lookup and the scores.
    fn loss(
        &self,
        queries: &[Query<'_>],
        targets: &[u32],
        negatives: Option<&[u32]>,
        device: &B::Device,
    ) -> Tensor<B, 1> {
        let batch = SeqBatch::new(queries.iter().map(|q| q.history), self.max_seq_len);
        let table = SasRec::item_table(self);
        let users = self.forward_with_table(batch.ids(device), batch.mask(device), table.clone());
        softmax_loss(users.matmul(table.transpose()), targets, negatives, device)
    }
}

impl<B: Backend> RecModel<B> for Mf<B> {
    fn user_embeddings(&self, queries: &[Query<'_>], device: &B::Device) -> Tensor<B, 2> {
        let v: Vec<i32> = queries.iter().map(|q| q.uid as i32).collect();
        let n = v.len();
        self.forward(Tensor::from_data(TensorData::new(v, [n]), device))
    }

    fn item_table(&self) -> Tensor<B, 2> {
        Mf::item_table(self)
    }
}
