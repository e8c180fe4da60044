//! Shared by the tokenizer and chat-template tests: the tiny GGUF-style vocabularies in
//! tests/fixtures/tokenizer (made by make_fixtures.py) and a Python runner for parity checks.

pub mod gguf;

use std::path::{Path, PathBuf};
use std::process::Command;

use recx::llm::tokenizer::{GgufVocab, Tokenizer};
use serde::Deserialize;

/// One reference encoding: the text and the ids the reference implementation gave.
#[derive(Debug, Deserialize)]
pub struct Case {
    pub text: String,
    pub ids: Vec<u32>,
}

#[derive(Debug, Deserialize)]
pub struct Fixture {
    pub vocab: GgufVocab,
    pub cases: Vec<Case>,
}

pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer")
}

pub fn load(name: &str) -> Fixture {
    let path = fixture_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// SentencePiece-style (Llama-2 / Vicuna / Mistral kind) fixture tokenizer.
pub fn spm() -> Tokenizer {
    Tokenizer::from_gguf_vocab(&load("spm_vocab.json").vocab).expect("spm fixture builds")
}

/// Byte-level (SmolLM2 / Llama-3 kind) fixture tokenizer.
pub fn byte_level() -> Tokenizer {
    Tokenizer::from_gguf_vocab(&load("bytelevel_vocab.json").vocab)
        .expect("byte-level fixture builds")
}

/// A Python interpreter with the `tokenizers` package: `$RECX_PYTHON`, else `python3`.
/// `None` (and a message) when there is none, so callers skip.
pub fn python_with_tokenizers() -> Option<String> {
    python_with("tokenizers")
}

/// A Python interpreter (`$RECX_PYTHON`, else `python3`) that can import `module`.
pub fn python_with(module: &str) -> Option<String> {
    let python = std::env::var("RECX_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Some(python)
    } else {
        crate::skip_support::missing(format!(
            "{python} has no `{module}` package (set RECX_PYTHON to one that has)"
        ));
        None
    }
}

/// Runs a Python `script` with `input` as JSON on stdin and parses its stdout as JSON.
pub fn python_json<T: serde::de::DeserializeOwned>(
    python: &str,
    script: &str,
    args: &[&str],
    input: &impl serde::Serialize,
) -> T {
    let mut child = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(input).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python prints JSON")
}

/// Encodes `texts` with Python `tokenizers` from `tokenizer_json`, with special tokens added.
pub fn python_encode(python: &str, tokenizer_json: &Path, texts: &[&str]) -> Vec<Vec<u32>> {
    let script = "import json, sys\n\
                  from tokenizers import Tokenizer\n\
                  tok = Tokenizer.from_file(sys.argv[1])\n\
                  texts = json.load(sys.stdin)\n\
                  print(json.dumps([tok.encode(t).ids for t in texts]))\n";
    python_json(python, script, &[tokenizer_json.to_str().unwrap()], &texts)
}
