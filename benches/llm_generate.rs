//! SmolLM2-135M greedy generation speed: recx vs Python transformers (and llama.cpp when
//! installed), batch 1, 128 new tokens, 2 threads, printed side by side with the ratio.
//!
//! `cargo bench --bench llm_generate`. Needs the SmolLM2 GGUF (`recx assets fetch smollm2`, or
//! RECX_SMOLLM2_GGUF) and, for the comparison, a Python with torch+transformers (RECX_PYTHON,
//! default `python3`). Settings: RECX_BENCH_NEW_TOKENS (128), RECX_BENCH_THREADS (2),
//! RECX_BENCH_DEVICE (`cpu`: burn-flex; `libtorch` in a `--features tch` build).
//! Tokens/s = new tokens / wall time of the whole generate call (prompt included), both sides.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::tensor::backend::Backend;
use recx::llm::device::{BackendTask, DeviceChoice};
use recx::llm::{GenerateOptions, generate, load_model};

mod bench_support;

use bench_support::{bench_device, env_usize};

fn main() {
    let new_tokens = env_usize("RECX_BENCH_NEW_TOKENS", 128);
    let threads = env_usize("RECX_BENCH_THREADS", 2);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("first pool");
    let Some(gguf) = recx::llm::assets::find_smollm2() else {
        println!(
            "llm_generate: SKIPPED, SmolLM2 GGUF not found (run `recx assets fetch smollm2` or set RECX_SMOLLM2_GGUF)"
        );
        return;
    };
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm/smollm2_golden.json");
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(golden).unwrap()).unwrap();
    let prompt: Vec<u32> = golden["prompt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();

    let device = bench_device();
    let recx_tps = device
        .run(Recx {
            gguf: gguf.clone(),
            prompt: prompt.clone(),
            new_tokens,
            threads,
            device,
        })
        .expect("recx");
    compare(&gguf, &prompt, new_tokens, threads, recx_tps);
}

struct Recx {
    gguf: PathBuf,
    prompt: Vec<u32>,
    new_tokens: usize,
    threads: usize,
    device: DeviceChoice,
}

impl BackendTask for Recx {
    type Output = f64;
    fn run<B: Backend>(self, device: B::Device) -> recx::error::Result<f64> {
        Ok(measure::<B>(&self, &device))
    }
}

/// recx's best tokens/s on backend `B` (on flex, with the decode matmuls in one block and in
/// one block per thread, alternated so machine load hits both alike).
fn measure<B: Backend>(bench: &Recx, device: &B::Device) -> f64 {
    let Recx {
        ref gguf,
        ref prompt,
        new_tokens,
        threads,
        device: choice,
    } = *bench;
    let t = Instant::now();
    let (model, _) = load_model::<B>(gguf, device).expect("load SmolLM2");
    println!(
        "model: {} (loaded in {:.1} s), prompt {} tokens, {new_tokens} new tokens, {threads} threads",
        gguf.display(),
        t.elapsed().as_secs_f64(),
        prompt.len()
    );

    let opts = |n| GenerateOptions {
        max_new_tokens: n,
        min_new_tokens: n,
        ..Default::default()
    };
    generate(&model, std::slice::from_ref(prompt), &[], &opts(8)); // warm-up
    // Two settings of flex's decode matmul split (other backends ignore it).
    let mut best: Vec<(usize, f64)> = match choice {
        DeviceChoice::Cpu => vec![(threads, 0.0), (1, 0.0)],
        _ => vec![(1, 0.0)],
    };
    let mut first = Vec::new();
    for _round in 0..2 {
        for (blocks, tps) in best.iter_mut() {
            recx::llm::model::set_decode_column_blocks(*blocks);
            let t = Instant::now();
            let out = generate(&model, std::slice::from_ref(prompt), &[], &opts(new_tokens));
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(out[0][0].tokens.len(), new_tokens);
            *tps = tps.max(new_tokens as f64 / secs);
            first = out[0][0].tokens[..8].to_vec();
        }
    }
    for (blocks, tps) in &best {
        println!("recx (decode matmuls in {blocks} block(s)) tok_s={tps:.3}");
    }
    let recx_tps = best.iter().map(|b| b.1).fold(0.0, f64::max);
    println!("recx         tok_s={recx_tps:.3} first={first:?}");
    recx_tps
}

/// Runs the Python peers on the same prompt and prints the ratios.
fn compare(gguf: &Path, prompt: &[u32], new_tokens: usize, threads: usize, recx_tps: f64) {
    let python = bench_support::python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/llm_reference.py");
    let ids = prompt
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let result = Command::new(&python)
        .arg(&script)
        .arg(gguf)
        .args([
            "--prompt",
            &ids,
            "--new",
            &new_tokens.to_string(),
            "--threads",
            &threads.to_string(),
        ])
        .output();
    let stdout = match result {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            println!(
                "Python reference failed (set RECX_PYTHON to a Python with torch+transformers):\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        Err(e) => {
            println!("Python reference not run ({python}: {e}); set RECX_PYTHON");
            return;
        }
    };
    let rate = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split("tok_s=").nth(1))
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse::<f64>().ok())
    };
    print!("{stdout}");
    if let Some(tf) = rate("transformers ") {
        println!(
            "ratio recx / transformers = {:.2}x (goal >= 2x)",
            recx_tps / tf
        );
        if let Some(tf1) = rate("transformers-1thread") {
            println!(
                "ratio recx / best transformers (1 or {threads} threads) = {:.2}x",
                recx_tps / tf.max(tf1)
            );
        }
    }
    if let Some(cpp) = rate("llama.cpp") {
        println!(
            "ratio recx / llama.cpp    = {:.2}x (llama.cpp runs the Q4_1 weights directly)",
            recx_tps / cpp
        );
    }
}
