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

/// The titles [`load_base`] needs for `llm`: every item's title, in id order, when its scratch
/// vocabulary holds them whole (`[llm.scratch] item_title_tokens`); else none, and `dataset`
/// (which may read the data stage's folder) is not called.
pub fn scratch_titles<D: std::borrow::Borrow<Dataset>>(
    llm: &LlmSection,
    dataset: impl FnOnce() -> Result<D>,
) -> Result<Vec<String>> {
    if !llm.wants_item_titles() {
        return Ok(Vec::new());
    }
    let ds = dataset()?;
    let ds = ds.borrow();
    Ok((1..=ds.n_items as u32)
        .map(|iid| ds.title(iid).to_string())
        .collect())
}

/// Loads or builds the backbone; `records` are the training records (the scratch tokenizer's
/// corpus), `titles` the items' titles when the scratch vocabulary takes them
/// ([`scratch_titles`]) and `seed` draws the scratch weights and any new embedding rows.
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
        if !titles.is_empty() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alignment::record::{ChatRecord, ChatTurn};
    use crate::data::ItemMeta;
    use crate::llm::chat::TemplateName;
    use crate::llm::device::Cpu;

    fn dataset(titles: &[&str]) -> Dataset {
        let mut items = vec![ItemMeta::default()];
        items.extend(titles.iter().map(|t| ItemMeta {
            title: t.to_string(),
            ..ItemMeta::default()
        }));
        Dataset {
            n_items: titles.len(),
            items,
            ..Dataset::default()
        }
    }

    #[test]
    fn a_scratch_backbone_with_title_tokens_reads_each_title_as_one_token() {
        let ds = dataset(&["Halo 3 - Xbox 360", "The Legend of Zelda"]);
        let records = vec![AlignmentRecord::Chat(ChatRecord {
            id: String::new(),
            conversations: vec![ChatTurn {
                from: "human".into(),
                value: "the user bought Halo 3 - Xbox 360 and The Legend of Zelda".into(),
            }],
        })];
        let template = ChatTemplate::new(TemplateName::Chatml);
        let mut llm = LlmSection::default();
        let load = |llm: &LlmSection| {
            let titles = scratch_titles(llm, || Ok::<_, crate::error::Error>(&ds)).unwrap();
            load_base::<Cpu>(
                llm,
                Path::new("."),
                &template,
                Mode::Both,
                (&records, &titles),
                1,
                &Default::default(),
            )
            .unwrap()
        };
        let spelled = load(&llm);
        assert!(
            spelled
                .tokenizer
                .encode("Halo 3 - Xbox 360", false)
                .unwrap()
                .len()
                > 1
        );

        llm.scratch.item_title_tokens = true;
        let base = load(&llm);
        for title in ["Halo 3 - Xbox 360", "The Legend of Zelda"] {
            let ids = base.tokenizer.encode(title, false).unwrap();
            assert_eq!(ids.len(), 1, "{title}");
            assert!((ids[0] as usize) < base.model.vocab_size());
            assert_eq!(base.tokenizer.decode(&ids, false).unwrap(), title);
        }
        // One embedding row more per title, the same vocabulary otherwise.
        assert_eq!(base.model.vocab_size(), spelled.model.vocab_size() + 2);
    }

    #[test]
    fn titles_are_not_read_unless_the_scratch_vocabulary_takes_them() {
        let mut llm = LlmSection::default();
        llm.scratch.item_title_tokens = true;
        llm.model = "smollm2".into();
        let unread = scratch_titles(&llm, || -> Result<Dataset> { panic!("read") });
        assert!(unread.unwrap().is_empty());
    }
}
