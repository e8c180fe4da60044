//! Golden tests: recx's decoder against logits computed outside recx.
//!
//! The fixtures in tests/fixtures/llm are tiny random-weight models written by
//! scripts/llm_reference.py, whose numpy forward pass (checked there against transformers to
//! 1e-5) produced the logits of the first greedy decoding steps. Tolerance: 1e-3 absolute.
//! The decoding here goes through the KV cache one token at a time, so the cache, the position
//! ids and the causal mask are all covered.

use crate::skip_support;

use std::path::{Path, PathBuf};

use burn::tensor::{Int, Tensor, TensorData};
use recx::llm::device::Cpu;
use recx::llm::gguf::GgufFile;
use recx::llm::{LlamaModel, load_gguf, load_model};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Logits of the last position after feeding `tokens` into the cache.
fn feed(model: &LlamaModel<Cpu>, cache: &mut recx::llm::KvCache<Cpu>, tokens: &[u32]) -> Vec<f32> {
    let t = Tensor::<Cpu, 2, Int>::from_data(
        TensorData::new(
            tokens.iter().map(|&x| x as i64).collect::<Vec<_>>(),
            [1, tokens.len()],
        ),
        &Default::default(),
    );
    let hidden = model.forward_embeds(model.embed(t), &[vec![true; tokens.len()]], cache);
    let last = hidden.narrow(1, tokens.len() - 1, 1);
    model.logits(last).into_data().iter::<f32>().collect()
}

/// Checks greedy decoding step by step against the golden logits.
fn check_golden(model: &LlamaModel<Cpu>, golden: &Value) {
    let prompt = ids(&golden["prompt"]);
    let tokens = ids(&golden["tokens"]);
    let tol = golden["tolerance"].as_f64().unwrap() as f32;
    let mut cache = model.new_cache(1);
    let mut input = prompt.clone();
    for (step, want) in golden["logits"].as_array().unwrap().iter().enumerate() {
        let got = feed(model, &mut cache, &input);
        let want: Vec<f32> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got.len(), want.len());
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff <= tol, "step {step}: max |diff| {diff} > {tol}");
        input = vec![tokens[step]];
    }
    // And the public greedy generator picks the same tokens.
    let opts = recx::llm::GenerateOptions {
        max_new_tokens: tokens.len(),
        ..Default::default()
    };
    let out = recx::llm::generate(model, &[prompt], &[], &opts);
    assert_eq!(out[0][0].tokens, tokens);
}

#[test]
fn llama_safetensors_matches_reference() {
    let dir = fixtures().join("llama_f32");
    let (model, _) = load_model::<Cpu>(&dir, &Default::default()).unwrap();
    check_golden(&model, &read_json(&dir.join("golden.json")));
}

#[test]
fn qwen2_tied_f16_with_biases_matches_reference() {
    let dir = fixtures().join("qwen2_f16");
    let (model, config) = load_model::<Cpu>(&dir, &Default::default()).unwrap();
    assert!(config.tie_word_embeddings && config.attention_bias);
    check_golden(&model, &read_json(&dir.join("golden.json")));
}

#[test]
fn phi3_fused_bf16_matches_reference() {
    let dir = fixtures().join("phi3_bf16");
    let (model, _) = load_model::<Cpu>(&dir, &Default::default()).unwrap();
    check_golden(&model, &read_json(&dir.join("golden.json")));
}

#[test]
fn quantized_gguf_matches_reference_in_both_rope_layouts() {
    let path = fixtures().join("llama_quant.gguf");
    let golden = read_json(&fixtures().join("llama_quant_golden.json"));
    let file = GgufFile::open(&path).unwrap();
    let (hf_layout, config) = load_gguf::<Cpu>(&file, false, &Default::default()).unwrap();
    assert_eq!(config.rope_layout, recx::llm::RopeLayout::HalfSplit);
    check_golden(&hf_layout, &golden);
    let (gguf_layout, config) = load_gguf::<Cpu>(&file, true, &Default::default()).unwrap();
    assert_eq!(config.rope_layout, recx::llm::RopeLayout::Interleaved);
    check_golden(&gguf_layout, &golden);
}

#[test]
fn k_quants_dequantize_like_ggml() {
    let file = GgufFile::open(fixtures().join("kquants.gguf")).unwrap();
    let want = read_json(&fixtures().join("kquants.json"));
    for name in ["q4k", "q6k"] {
        let (got, shape) = file.tensor_f32(name).unwrap();
        assert_eq!(shape.iter().product::<usize>(), 512);
        let want: Vec<f32> = want[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "{name}[{i}]: {a} vs {b}"
            );
        }
    }
}

/// SmolLM2-135M-Instruct against a numpy forward over gguf-py's dequantization (scripts/llm_reference.py
/// smollm2). Runs when the model is found (RECX_SMOLLM2_GGUF, the recx cache, or
/// /work/assets); skips with a message otherwise.
#[test]
fn smollm2_matches_numpy_reference_when_available() {
    let Some(path) = recx::llm::assets::find_smollm2() else {
        skip_support::missing(
            "SmolLM2 GGUF not found (set RECX_SMOLLM2_GGUF or run `recx assets fetch smollm2`)",
        );
        return;
    };
    let golden = read_json(&fixtures().join("smollm2_golden.json"));
    let (model, _) = load_model::<Cpu>(&path, &Default::default()).unwrap();
    let tol = golden["tolerance"].as_f64().unwrap() as f32;
    let mut cache = model.new_cache(1);
    let mut input = ids(&golden["prompt"]);
    let tokens = ids(&golden["tokens"]);
    for (step, row) in golden["steps"].as_array().unwrap().iter().enumerate() {
        let got = feed(&model, &mut cache, &input);
        let top = ids(&row["top_ids"]);
        let argmax = got
            .iter()
            .enumerate()
            .fold(0, |b, (i, &x)| if x > got[b] { i } else { b });
        assert_eq!(argmax as u32, top[0], "step {step}");
        for (&id, want) in top.iter().zip(row["top_logits"].as_array().unwrap()) {
            let want = want.as_f64().unwrap() as f32;
            let d = (got[id as usize] - want).abs();
            assert!(
                d <= tol,
                "step {step}, token {id}: {} vs {want}",
                got[id as usize]
            );
        }
        input = vec![tokens[step]];
    }
}
