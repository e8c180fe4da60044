//! Text-encoder fine-tuning speed (the discriminators' model, spec §7.2): recx against Python
//! transformers on all-MiniLM-L6-v2, in one run, with the ratio.
//!
//! Both sides fine-tune the same checkpoint with a 3-class sequence-classification head
//! (`BertForSequenceClassification`: pooled `[CLS]`, dropout 0.1, linear head; cross-entropy),
//! AdamW, global-norm clipping at 1, dropout on, on the same batches: `RECX_BENCH_STEPS`
//! batches of 8 texts of exactly `RECX_BENCH_LEN` tokens (128, the setting; random
//! WordPiece ids, written to a file the Python side reads). Reported: examples per second of
//! full optimizer steps (forward, backward, clipping, update), after two warm-up steps, and
//! recx's time split into forward, backward and the optimizer.
//!
//! It also prints the f32 matrix-product rate of each side for the encoder's feed-forward shape
//! (1024 × 384 times 384 × 1536: burn's CPU backend, PyTorch, and numpy's OpenBLAS), the
//! kernel-level gap behind the training ratio.
//!
//! `cargo bench --bench encoder_train`. Needs MiniLM (`recx assets fetch minilm`, or
//! RECX_MINILM) and, for the comparison, a Python with torch and transformers in RECX_PYTHON
//! (`scripts/install-peers.sh`). Settings: RECX_BENCH_STEPS (10), RECX_BENCH_LEN (128),
//! RECX_BENCH_THREADS (2), RECX_BENCH_DEVICE (`cpu`: burn-flex; `libtorch` in a `--features tch`
//! build).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use burn::backend::Autodiff;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use recx::encoder::{Encoder, SequenceModel, TokenBatch};
use recx::llm::device::BackendTask;
use recx::training::{adamw, clip_global_norm};

mod bench_support;

use bench_support::{bench_device, env_usize, manifest};

const BATCH: usize = 8;

/// `steps + 2` batches of `BATCH` sequences of `len` ids: `[CLS]`, random word pieces, `[SEP]`.
fn batches(steps: usize, len: usize) -> Vec<(Vec<Vec<u32>>, Vec<usize>)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    (0..steps + 2)
        .map(|_| {
            let seqs = (0..BATCH)
                .map(|_| {
                    let mut s = vec![101u32];
                    s.extend((0..len - 2).map(|_| rng.random_range(1996..29000u32)));
                    s.push(102);
                    s
                })
                .collect();
            let labels = (0..BATCH).map(|_| rng.random_range(0..3)).collect();
            (seqs, labels)
        })
        .collect()
}

fn main() {
    let threads = env_usize("RECX_BENCH_THREADS", 2);
    let steps = env_usize("RECX_BENCH_STEPS", 10);
    let len = env_usize("RECX_BENCH_LEN", 128);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("first pool");
    let Some(dir) = recx::llm::assets::MINILM.find() else {
        println!("encoder_train: MiniLM not found: run `recx assets fetch minilm` first");
        std::process::exit(1);
    };
    let bench = Bench {
        dir,
        threads,
        steps,
        len,
    };
    bench_device().run(bench).expect("bench");
}

struct Bench {
    dir: PathBuf,
    threads: usize,
    steps: usize,
    len: usize,
}

impl BackendTask for Bench {
    type Output = ();
    fn run<C: Backend>(self, device: C::Device) -> recx::error::Result<()> {
        measure::<C>(&self, &device);
        Ok(())
    }
}

/// Fine-tunes on backend `C` (with autodiff), then runs the peer on the same batches.
fn measure<C: Backend>(bench: &Bench, device: &C::Device) {
    type B<C> = Autodiff<C>;
    let Bench {
        ref dir,
        threads,
        steps,
        len,
    } = *bench;
    println!(
        "matmul 1024x384x1536 f32, {threads} threads: recx backend {:.1} GFLOP/s",
        bench_support::matmul_rate::<C>(1024, 384, 1536, 10, device)
    );
    let data = batches(steps, len);
    let encoder = Encoder::<B<C>>::load(dir, len, 0, device).expect("MiniLM");
    let mut model = SequenceModel::new(encoder.model, 3, 0.1, 0.02, 1);
    let mut optim = adamw();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let (mut fwd, mut bwd, mut opt) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut start = Instant::now();
    for (k, (seqs, labels)) in data.iter().enumerate() {
        if k == 2 {
            (fwd, bwd, opt) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
            start = Instant::now();
        }
        let t = Instant::now();
        let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
        let batch = TokenBatch::<B<C>>::new(&refs, 0, device);
        let labels: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        let labels = Tensor::<B<C>, 1, Int>::from_data(TensorData::new(labels, [BATCH]), device);
        let loss = loss_fn.forward(model.forward(&batch), labels);
        let _ = loss.clone().into_scalar();
        fwd += t.elapsed();
        let t = Instant::now();
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        bwd += t.elapsed();
        let t = Instant::now();
        clip_global_norm::<B<C>, _>(&model, &mut grads, 1.0);
        model = optim.step(1e-5, model, grads);
        opt += t.elapsed();
    }
    let secs = start.elapsed().as_secs_f64();
    let recx_eps = (steps * BATCH) as f64 / secs;
    let per = |d: Duration| d.as_secs_f64() / steps as f64 * 1e3;
    println!(
        "all-MiniLM-L6-v2 fine-tuning, batch {BATCH} x {len} tokens, {steps} steps, {threads} threads"
    );
    println!(
        "recx          examples_s={recx_eps:.1} (per step: forward {:.0} ms, backward {:.0} ms, clip + AdamW {:.0} ms)",
        per(fwd),
        per(bwd),
        per(opt)
    );

    let peer_dir = manifest().join("target/bench-encoder-train");
    std::fs::create_dir_all(&peer_dir).expect("peer folder");
    let batches_json = serde_json::to_string(&data).expect("batches serialise");
    std::fs::write(peer_dir.join("batches.json"), batches_json).expect("batches file");
    let mut command = Command::new(bench_support::python());
    command
        .arg(manifest().join("benches/encoder_train_reference.py"))
        .arg(dir)
        .arg(peer_dir.join("batches.json"))
        .args(["--threads", &threads.to_string()])
        .env("OPENBLAS_NUM_THREADS", threads.to_string());
    let Some(stdout) = bench_support::run(command, "torch and transformers") else {
        return;
    };
    let peer_eps = bench_support::value(&stdout, "transformers examples_s=");
    println!("transformers  examples_s={peer_eps:.1}");
    for line in stdout.lines().filter(|l| l.starts_with("matmul ")) {
        println!("{line}");
    }
    println!(
        "ratio recx / transformers = {:.2}x (goal >= 1.0x)",
        recx_eps / peer_eps
    );
}
