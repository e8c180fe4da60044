//! Tokenizer tests on tiny fixture vocabularies of both GGUF kinds, checked against independent
//! reference implementations (sentencepiece, Python tokenizers), plus round trips, placeholders,
//! tokenizer.json save/load (and Python parity), and BPE training determinism.

mod skip_support;

mod llm_tokenizer_fixtures;

use llm_tokenizer_fixtures as fx;
use recx::llm::chat::{ChatTemplate, TemplateName};
use recx::llm::tokenizer::{BpeTrainConfig, GgufVocab, Tokenizer};

fn assert_matches_reference(tok: &Tokenizer, fixture: &str) {
    for case in fx::load(fixture).cases {
        let ids = tok.encode(&case.text, true).unwrap();
        assert_eq!(ids, case.ids, "{fixture}: {:?}", case.text);
    }
}

#[test]
fn spm_vocab_encodes_like_sentencepiece() {
    assert_matches_reference(&fx::spm(), "spm_vocab.json");
}

#[test]
fn byte_level_vocab_encodes_like_python_tokenizers() {
    assert_matches_reference(&fx::byte_level(), "bytelevel_vocab.json");
}

#[test]
fn spm_vocab_uses_byte_fallback_and_prepends_bos() {
    let tok = fx::spm();
    assert!(tok.adds_bos());
    let ids = tok.encode("🎮", true).unwrap();
    assert_eq!(ids[0], tok.bos_id().unwrap());
    let pieces: Vec<String> = ids[1..]
        .iter()
        .map(|&i| tok.id_to_token(i).unwrap())
        .collect();
    // "▁" then the four UTF-8 bytes of the emoji as <0xNN> tokens.
    assert_eq!(pieces, ["▁", "<0xF0>", "<0x9F>", "<0x8E>", "<0xAE>"]);
    assert_eq!(tok.decode(&ids, true).unwrap(), "🎮");
}

#[test]
fn decode_inverts_encode() {
    let texts = [
        "Hello world",
        "  two leading spaces and two trailing  ",
        "Tabs\tand\nnewlines\n\nhere",
        "Café naïve Straße 東京 🎮 ✓",
        "Numbers: 12345, 3.14",
    ];
    for (kind, tok) in [("spm", fx::spm()), ("byte-level", fx::byte_level())] {
        for text in texts {
            let ids = tok.encode(text, true).unwrap();
            assert_eq!(tok.decode(&ids, true).unwrap(), text, "{kind}");
        }
    }
}

#[test]
fn special_tokens_in_text_are_single_ids_and_skippable() {
    let tok = fx::spm();
    let ids = tok.encode("Yes</s>", false).unwrap();
    assert_eq!(ids.last(), tok.eos_id().as_ref());
    assert_eq!(tok.decode(&ids, false).unwrap(), "Yes</s>");
    assert_eq!(tok.decode(&ids, true).unwrap(), "Yes");

    let tok = fx::byte_level();
    let im_start = tok.token_to_id("<|im_start|>").unwrap();
    let ids = tok.encode("<|im_start|>user\nHi", false).unwrap();
    assert_eq!(ids[0], im_start);
    assert_eq!(tok.decode(&ids, true).unwrap(), "user\nHi");
}

#[test]
fn placeholders_are_single_special_tokens_after_the_vocabulary() {
    for (kind, mut tok) in [("spm", fx::spm()), ("byte-level", fx::byte_level())] {
        let before = tok.vocab_size();
        assert!(tok.placeholders().is_none());
        let p = tok.add_placeholders().unwrap();
        assert_eq!(
            (p.user, p.item),
            (before as u32, before as u32 + 1),
            "{kind}"
        );
        assert_eq!(tok.vocab_size(), before + 2, "{kind}");
        assert_eq!(
            tok.add_placeholders().unwrap(),
            p,
            "{kind}: adding twice is a no-op"
        );

        let text = "The user <user> bought <item> and <item>.";
        let ids = tok.encode(text, false).unwrap();
        assert_eq!(ids.iter().filter(|&&i| i == p.user).count(), 1, "{kind}");
        assert_eq!(ids.iter().filter(|&&i| i == p.item).count(), 2, "{kind}");
        let decoded = tok.decode(&ids, false).unwrap();
        if kind == "spm" {
            // SentencePiece (legacy, as Llama-2's tokenizer.json and the original slow
            // tokenizer): text after a special token gets its own "▁" prefix.
            assert_eq!(decoded, "The user <user>  bought <item>  and <item> .");
        } else {
            assert_eq!(decoded, text, "{kind}");
        }
        let plain = tok.decode(&ids, true).unwrap();
        assert!(
            !plain.contains("<user>") && !plain.contains("<item>"),
            "{kind}: {plain:?}"
        );
        assert!(tok.special_token_ids().contains(&p.user), "{kind}");
    }
}

#[test]
fn batch_encode_matches_single_encode() {
    let tok = fx::byte_level();
    let texts = ["Yes", "No", "The user has played Halo 3.", ""];
    let batch = tok.encode_batch(&texts, true).unwrap();
    for (text, ids) in texts.iter().zip(&batch) {
        assert_eq!(ids, &tok.encode(text, true).unwrap());
    }
    let refs: Vec<&[u32]> = batch.iter().map(|v| v.as_slice()).collect();
    assert_eq!(tok.decode_batch(&refs, true).unwrap(), texts);
}

#[test]
fn saved_tokenizer_reloads_with_same_ids_and_specials() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, mut tok) in [("spm", fx::spm()), ("byte-level", fx::byte_level())] {
        tok.add_placeholders().unwrap();
        let sub = dir.path().join(kind);
        tok.save_pretrained(&sub, Some("{{ messages }}")).unwrap();
        let back = Tokenizer::from_file(&sub.join("tokenizer.json")).unwrap();
        assert_eq!(back.special_ids(), tok.special_ids(), "{kind}");
        assert_eq!(back.adds_bos(), tok.adds_bos(), "{kind}");
        assert_eq!(back.placeholders(), tok.placeholders(), "{kind}");
        for text in ["Hello <user> and <item>", "Café 🎮 12345", "  spaced  "] {
            assert_eq!(
                back.encode(text, true).unwrap(),
                tok.encode(text, true).unwrap()
            );
        }
        // Without tokenizer_config.json the specials are inferred from the file alone.
        let bare = Tokenizer::from_json(&tok.to_json(false).unwrap()).unwrap();
        assert_eq!(
            bare.bos_id(),
            if tok.adds_bos() {
                tok.bos_id()
            } else {
                bare.bos_id()
            }
        );
        assert_eq!(bare.adds_bos(), tok.adds_bos(), "{kind}");
    }
}

#[test]
fn python_tokenizers_reads_saved_files_with_identical_ids() {
    let Some(python) = fx::python_with_tokenizers() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let trained = {
        let corpus = fx::load("bytelevel_vocab.json")
            .cases
            .into_iter()
            .map(|c| c.text);
        let config = ChatTemplate::new(TemplateName::Llama3).bpe_train_config(400);
        Tokenizer::train_bpe(corpus.collect::<Vec<_>>().into_iter(), &config).unwrap()
    };
    let texts = [
        "Hello world",
        "The user <user> bought <item>; Yes or No?",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
        "Café naïve Straße 東京 🎮 ✓  12345\n\n",
        "Yes</s>",
    ];
    for (kind, mut tok) in [
        ("spm", fx::spm()),
        ("byte-level", fx::byte_level()),
        ("trained", trained),
    ] {
        tok.add_placeholders().unwrap();
        let path = dir.path().join(format!("{kind}.json"));
        tok.save(&path).unwrap();
        let py = fx::python_encode(&python, &path, &texts);
        for (text, ids) in texts.iter().zip(py) {
            assert_eq!(tok.encode(text, true).unwrap(), ids, "{kind}: {text:?}");
        }
    }
}

fn corpus() -> Vec<String> {
    (0..200)
        .map(|i| {
            format!(
                "User {i} bought Super Mario {} and Zelda {}; will they enjoy Halo? Yes.",
                i % 7,
                i % 5
            )
        })
        .collect()
}

#[test]
fn trained_bpe_is_deterministic_and_holds_template_markers() {
    let config = ChatTemplate::new(TemplateName::Chatml).bpe_train_config(300);
    let a = Tokenizer::train_bpe(corpus().into_iter(), &config).unwrap();
    let b = Tokenizer::train_bpe(corpus().into_iter(), &config).unwrap();
    assert_eq!(a.to_json(false).unwrap(), b.to_json(false).unwrap());
    assert_eq!(a.vocab_size(), 300);

    // Markers are ids 0.. in order, single tokens, and EOS/pad follow the template.
    assert_eq!(a.token_to_id("<|endoftext|>"), Some(0));
    assert_eq!(a.token_to_id("<|im_start|>"), Some(1));
    assert_eq!(a.eos_id(), a.token_to_id("<|im_end|>"));
    assert_eq!(a.pad_id(), Some(0));
    assert!(!a.adds_bos());

    let text = "<|im_start|>user\nUser 7 bought Zelda 3<|im_end|>";
    let ids = a.encode(text, true).unwrap();
    assert_eq!(ids[0], 1);
    assert_eq!(a.decode(&ids, false).unwrap(), text);
    // Merges learned something: fewer tokens than bytes.
    assert!(
        ids.len() < text.len() / 2,
        "{} tokens for {} bytes",
        ids.len(),
        text.len()
    );
    // Digits stay single tokens (as SmolLM2): "12" is two tokens.
    let twelve = a.encode("12", false).unwrap();
    assert_eq!(twelve.len(), 2);
}

#[test]
fn trained_bpe_with_bos_template_prepends_bos() {
    let config = ChatTemplate::new(TemplateName::Vicuna).bpe_train_config(300);
    let tok = Tokenizer::train_bpe(corpus().into_iter(), &config).unwrap();
    assert_eq!(tok.bos_id(), tok.token_to_id("<s>"));
    let ids = tok.encode("Yes", true).unwrap();
    assert_eq!(ids[0], tok.bos_id().unwrap());
    assert_eq!(tok.decode(&ids, true).unwrap(), "Yes");
}

#[test]
fn train_config_default_is_usable() {
    let tok = Tokenizer::train_bpe(corpus().into_iter(), &BpeTrainConfig::default()).unwrap();
    assert_eq!(tok.eos_id(), Some(0));
    assert!(tok.vocab_size() > 256);
}

#[test]
fn gguf_vocab_errors_name_the_problem() {
    let mut v: GgufVocab = fx::load("bytelevel_vocab.json").vocab;
    v.merges.push("nospace".into());
    let e = Tokenizer::from_gguf_vocab(&v).unwrap_err().to_string();
    assert!(e.contains("merge") && e.contains("nospace"), "{e}");

    let mut v: GgufVocab = fx::load("spm_vocab.json").vocab;
    v.scores.clear();
    let e = Tokenizer::from_gguf_vocab(&v).unwrap_err().to_string();
    assert!(e.contains("neither merges nor scores"), "{e}");

    let mut v: GgufVocab = fx::load("spm_vocab.json").vocab;
    v.eos_id = Some(100_000);
    let e = Tokenizer::from_gguf_vocab(&v).unwrap_err().to_string();
    assert!(e.contains("eos token id 100000"), "{e}");
}

#[test]
fn missing_tokenizer_file_names_the_path() {
    let e = Tokenizer::from_file(std::path::Path::new("/nonexistent/tokenizer.json"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/tokenizer.json"), "{e}");
}
