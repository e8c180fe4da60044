//! Weight files: clear errors for broken inputs, and the HF save round trip.

use crate::skip_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use recx::llm::device::Cpu;
use recx::llm::gguf::GgufFile;
use recx::llm::{load_model, next_token_logits, save_hf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm")
}

fn load_err(path: &Path) -> String {
    match load_model::<Cpu>(path, &Default::default()) {
        Ok(_) => panic!("{} loaded but should not", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_gguf_names_the_file_and_the_tensor() {
    let bytes = std::fs::read(fixtures().join("llama_quant.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Cut inside the tensor data, then inside the header.
    for (cut, expect) in [(bytes.len() - 100, "runs past the end"), (200, "truncated")] {
        let path = dir.path().join(format!("cut{cut}.gguf"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = load_err(&path);
        assert!(
            err.contains(&*path.to_string_lossy()) && err.contains(expect),
            "{err}"
        );
    }
    let err = GgufFile::open(dir.path().join("cut200.gguf"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn corrupt_gguf_is_rejected() {
    let mut bytes = std::fs::read(fixtures().join("llama_quant.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad_magic.gguf");
    bytes[0] = b'X';
    std::fs::write(&path, &bytes).unwrap();
    assert!(load_err(&path).contains("not a GGUF file"));
    // An absurd tensor count (first 8 bytes after magic+version).
    bytes[0] = b'G';
    bytes[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    let path = dir.path().join("bad_count.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let err = load_err(&path);
    assert!(
        err.contains("corrupt") && err.contains("tensor count"),
        "{err}"
    );
}

/// Copies the llama fixture folder, letting the caller change the config or the tensors.
/// Sets the u32 value of GGUF metadata key `key` in `bytes` (the key's length prefix makes the
/// match exact, so `head_count` does not hit `head_count_kv`).
fn set_gguf_u32(bytes: &mut [u8], key: &str, value: u32) {
    let mut needle = (key.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(key.as_bytes());
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{key} not in the fixture"));
    let value_at = at + needle.len() + 4;
    assert_eq!(bytes[at + needle.len()], 4, "{key} holds a u32");
    bytes[value_at..value_at + 4].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn gguf_with_zero_heads_or_absurd_sizes_is_an_error_not_a_panic() {
    let original = std::fs::read(fixtures().join("llama_quant.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (key, value, expect) in [
        (
            "llama.attention.head_count",
            0,
            "at least one attention head",
        ),
        (
            "llama.attention.head_count_kv",
            0,
            "num_kv_heads must be positive",
        ),
        ("llama.block_count", u32::MAX, "larger than any model"),
        (
            "llama.feed_forward_length",
            0,
            "intermediate_size must be positive",
        ),
    ] {
        let mut bytes = original.clone();
        set_gguf_u32(&mut bytes, key, value);
        let path = dir.path().join(format!("{key}.gguf"));
        std::fs::write(&path, &bytes).unwrap();
        let err = load_err(&path);
        assert!(
            err.contains(&*path.to_string_lossy()) && err.contains(expect),
            "{key} = {value}: {err}"
        );
    }
}

fn copy_llama(
    dir: &Path,
    edit_config: impl Fn(&mut serde_json::Value),
    rename: Option<(&str, &str)>,
) -> PathBuf {
    let src = fixtures().join("llama_f32");
    let dst = dir.join("model");
    std::fs::create_dir_all(&dst).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    edit_config(&mut config);
    std::fs::write(dst.join("config.json"), config.to_string()).unwrap();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| match rename {
            Some((from, to)) if name == from => (to.to_string(), view),
            _ => (name, view),
        })
        .collect();
    safetensors::serialize_to_file(
        tensors,
        None::<HashMap<String, String>>,
        &dst.join("model.safetensors"),
    )
    .unwrap();
    dst
}

#[test]
fn wrong_tensor_name_or_shape_is_reported_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let renamed = copy_llama(
        dir.path(),
        |_| {},
        Some((
            "model.layers.1.mlp.up_proj.weight",
            "model.layers.1.mlp.upp.weight",
        )),
    );
    let err = load_err(&renamed);
    assert!(
        err.contains("model.layers.1.mlp.up_proj.weight") && err.contains("not found"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let reshaped = copy_llama(dir.path(), |c| c["intermediate_size"] = 48.into(), None);
    let err = load_err(&reshaped);
    assert!(
        err.contains("model.layers.0.mlp.gate_proj.weight")
            && err.contains("[64, 32]")
            && err.contains("[48, 32]"),
        "{err}"
    );
}

#[test]
fn non_finite_weights_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_llama(dir.path(), |_| {}, None);
    let path = model.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let name = "model.norm.weight";
    let view = st.tensor(name).unwrap();
    assert_eq!(view.dtype(), safetensors::Dtype::F32);
    let mut data = view.data().to_vec();
    data[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    let damaged =
        safetensors::tensor::TensorView::new(view.dtype(), view.shape().to_vec(), &data).unwrap();
    let tensors: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            if n == name {
                (n, damaged.clone())
            } else {
                (n, v)
            }
        })
        .collect();
    safetensors::serialize_to_file(tensors, None::<HashMap<String, String>>, &path).unwrap();
    let err = load_err(&model);
    assert!(
        err.contains(name) && err.contains("non-finite") && err.contains("element 1"),
        "{err}"
    );
}

#[test]
fn truncated_safetensors_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let model = copy_llama(dir.path(), |_| {}, None);
    let weights = model.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(&model);
    assert!(
        err.contains("model.safetensors") && err.contains("not a valid safetensors file"),
        "{err}"
    );
}

#[test]
fn saved_hf_folder_loads_back_with_the_same_logits() {
    for fixture in ["llama_f32", "qwen2_f16", "phi3_bf16"] {
        let (model, config) =
            load_model::<Cpu>(&fixtures().join(fixture), &Default::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        save_hf(&model, &config, None, dir.path()).unwrap();
        let (back, back_config) = load_model::<Cpu>(dir.path(), &Default::default()).unwrap();
        assert_eq!(back_config, config, "{fixture}");
        let prompt = vec![vec![1, 7, 3, 12]];
        let a: Vec<f32> = next_token_logits(&model, &prompt, &[])
            .into_data()
            .iter::<f32>()
            .collect();
        let b: Vec<f32> = next_token_logits(&back, &prompt, &[])
            .into_data()
            .iter::<f32>()
            .collect();
        assert_eq!(a, b, "{fixture}");
    }
}

/// Python transformers loads what recx saved and computes the same logits (runs when a Python
/// with torch+transformers is found: RECX_PYTHON, else python3; skips otherwise, fails under CI).
#[test]
fn transformers_loads_the_saved_folder_when_available() {
    let python = std::env::var("RECX_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python)
        .args(["-c", "import torch, transformers"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        skip_support::missing(format!(
            "no Python with torch+transformers at {python} (set RECX_PYTHON)"
        ));
        return;
    }
    let (model, config) =
        load_model::<Cpu>(&fixtures().join("qwen2_f16"), &Default::default()).unwrap();
    let grown = model.resize_token_embeddings(config.vocab_size + 2, 0.02, 5);
    let dir = tempfile::tempdir().unwrap();
    save_hf(&grown, &config, None, dir.path()).unwrap();
    let prompt = vec![1u32, 7, 3, 12, config.vocab_size as u32 + 1];
    let ours: Vec<f32> = next_token_logits(&grown, std::slice::from_ref(&prompt), &[])
        .into_data()
        .iter::<f32>()
        .collect();
    let script = format!(
        "import torch, transformers, json\n\
         m = transformers.AutoModelForCausalLM.from_pretrained({:?}, dtype=torch.float32).eval()\n\
         print(json.dumps(m(torch.tensor([{:?}])).logits[0, -1].tolist()))",
        dir.path().to_string_lossy(),
        prompt
    );
    let out = std::process::Command::new(&python)
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<f32> = serde_json::from_slice(
        out.stdout
            .rsplit(|&b| b == b'\n')
            .find(|l| !l.is_empty())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(theirs.len(), ours.len());
    let d = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(d < 1e-3, "max |diff| {d}");
}
