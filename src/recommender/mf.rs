//! Matrix factorisation as UniRec's MF target (spec §2.2): a user table and an item table, both
//! with a zero padding row, scores = dot products (tau = 1, no biases).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use super::sasrec::{padded_table, padding_row_mask};

/// Hyperparameters of MF; defaults are the paper's Games settings.
#[derive(Config, Debug, PartialEq)]
pub struct MfConfig {
    /// Rows of the user table: users plus the padding row 0.
    pub n_users: usize,
    /// Rows of the item table: items plus the padding row 0.
    pub n_items: usize,
    #[config(default = 512)]
    pub embedding_size: usize,
}

impl MfConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Mf<B> {
        Mf {
            user_embedding: padded_table(self.n_users, self.embedding_size, device),
            item_embedding: padded_table(self.n_items, self.embedding_size, device),
        }
    }
}

/// MF. Build with [`MfConfig::init`].
#[derive(Module, Debug)]
pub struct Mf<B: Backend> {
    /// `[n_users, d]`, row 0 is padding.
    pub user_embedding: Param<Tensor<B, 2>>,
    /// `[n_items, d]`, row 0 is padding.
    pub item_embedding: Param<Tensor<B, 2>>,
}

impl<B: Backend> Mf<B> {
    /// The item table with the padding row forced to zero: `[n_items, d]`.
    pub fn item_table(&self) -> Tensor<B, 2> {
        let w = self.item_embedding.val();
        let rows = w.dims()[0];
        w * padding_row_mask(rows, &self.item_embedding.device())
    }

    /// User embeddings: `users` `[B]` → `[B, d]`.
    pub fn forward(&self, users: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        self.user_embedding.val().select(0, users)
    }

    /// Scores of every item: `[B, d]` → `[B, n_items]`.
    pub fn scores(&self, users: Tensor<B, 2>) -> Tensor<B, 2> {
        users.matmul(self.item_table().transpose())
    }
}
