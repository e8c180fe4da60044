//! The backbone before alignment: a pretrained checkpoint with its own tokenizer, or a tiny
//! Llama initialised from scratch with a BPE vocabulary learned from the training records.
//! Either way the vocabulary gains `<user>` and `<item>` when the mode injects embeddings
//! (spec §4.1).

use std::path::Path;

use burn::tensor::backend::Backend;

use crate::alignment::Mode;
use crate::alignment::record::AlignmentRecord;
use crate::data::Dataset;
use crate::error::Result;
use crate::llm::backbone::resolve;
use crate::llm::chat::{ChatTemplate, Turn};
use crate::llm::cli::load_tokenizer;
use crate::llm::tokenizer::Tokenizer;
use crate::llm::{LlamaConfig, LlamaModel, LlmSection, load_model};

/// A loaded backbone.
pub struct Base<B: Backend> {
    pub model: LlamaModel<B>,
    pub config: LlamaConfig,
    pub tokenizer: Tokenizer,
    /// Pretrained (LoRA-tuned) or from scratch (fully trained).
    pub pretrained: bool,
    /// `scratch` or the checkpoint's path.
    pub origin: String,
}

/// The texts a scratch tokenizer learns from: every training conversation as rendered.
fn corpus(records: &[AlignmentRecord], template: &ChatTemplate) -> Vec<String> {
    records
        .iter()
        .map(|r| match r {
            AlignmentRecord::Task(t) => template.training_text(&t.question, &t.answer),
            AlignmentRecord::Chat(c) => c
                .conversations
                .iter()
                .map(|t| t.value.as_str())
                .collect::<Vec<_>>()
                .join("\n"),
        })
        .collect()
}

/// Every item's title, in id order: the words a scratch vocabulary holds whole when
/// `[llm.scratch] item_title_tokens` is on.
pub fn item_titles(ds: &Dataset) -> Vec<String> {
    (1..=ds.n_items as u32)
        .map(|iid| ds.title(iid).to_string())
        .collect()
}

/// Loads or builds the backbone; `records` are the training records (the scratch tokenizer's
/// corpus), `titles` the items' titles (see [`item_titles`]; only a scratch vocabulary uses
/// them) and `seed` draws the scratch weights and any new embedding rows.
pub fn load_base<B: Backend>(
    llm: &LlmSection,
    spec_dir: &Path,
    template: &ChatTemplate,
    mode: Mode,
    (records, titles): (&[AlignmentRecord], &[String]),
    seed: u64,
    device: &B::Device,
) -> Result<Base<B>> {
    let (model, mut config, mut tokenizer, pretrained, origin) = if llm.model.is_empty() {
        let texts = corpus(records, template);
        let mut tok = Tokenizer::train_bpe(
            texts.iter(),
            &template.bpe_train_config(llm.scratch.vocab_size),
        )?;
        if llm.wants_item_titles() {
            let added = tok.add_words(titles)?;
            tracing::info!(
                "scratch vocabulary: {added} of {} item titles as one token each",
                titles.len()
            );
        }
        let mut config = llm.scratch.config(tok.vocab_size());
        config.bos_token_id = tok.bos_id();
        config.eos_token_id = tok.eos_id();
        let model = config.init::<B>(device, seed);
        (model, config, tok, false, "scratch".to_string())
    } else {
        let path = resolve(llm, spec_dir)?;
        let (model, config) = load_model::<B>(&path, device)?;
        let tok = load_tokenizer(&path, None)?;
        (model, config, tok, true, path.display().to_string())
    };
    let mut model = model;
    if mode.uses_tokens() {
        tokenizer.add_placeholders()?;
        model =
            model.resize_token_embeddings(tokenizer.vocab_size(), config.initializer_range, seed);
    }
    config.vocab_size = model.vocab_size();
    // The template must render and tokenize; fail here rather than mid-training.
    template.training_sample(&tokenizer, &[Turn::user("q"), Turn::assistant("a")])?;
    Ok(Base {
        model,
        config,
        tokenizer,
        pretrained,
        origin,
    })
}
