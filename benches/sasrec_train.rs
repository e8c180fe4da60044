//! SASRec training throughput on the Games stage-2 set, recx (burn, CPU) against a PyTorch port
//! of the same model and settings (benches/sasrec_reference.py, 2 threads), in one run.
//!
//! Both sides train from the same batches (written to a temporary file) for the same number of
//! steps with the paper's settings (d 256, 2 layers, 16 heads, FFN 512, L 9, batch 2048, full
//! softmax, AdamW, clip 10, dropout on) and report training samples per second.
//! `cargo bench --bench sasrec_train [-- --steps N]` (AVX-512 kernels are chosen at run time).
//! RECX_BENCH_DEVICE picks recx's backend (`cpu`: burn-flex; `libtorch` in a `--features tch`
//! build).

mod bench_support;
mod sasrec_support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use burn::backend::Autodiff;
use burn::tensor::backend::{AutodiffBackend, Backend};
use recx::llm::device::BackendTask;
use recx::recommender::train::train_step;
use recx::recommender::{Example, Examples, SasRec, SasRecConfig};
use recx::training::{adamw, seeded_init};

const BATCH: usize = 2048;
const LR: f64 = 0.0003112577321994525;

fn main() {
    let steps: usize = std::env::args()
        .skip_while(|a| a != "--steps")
        .nth(1)
        .map_or(8, |s| s.parse().expect("--steps N"));
    let warmup = 2;
    let Some(data) = sasrec_support::games_stage2() else {
        return;
    };
    let ex = Examples::new(&data);
    println!(
        "Games stage-2: {} users, {} items, {} training samples; {steps} timed steps of batch {BATCH} (+{warmup} warm-up)",
        data.n_users,
        data.n_items,
        ex.train.len()
    );
    let batches: Vec<Vec<usize>> = (0..steps + warmup)
        .map(|s| {
            (0..BATCH)
                .map(|k| (s * BATCH + k * 7919) % ex.train.len())
                .collect()
        })
        .collect();

    let device = bench_support::bench_device();
    let recx_rate = device
        .run(Recx {
            ex: &ex,
            batches: &batches,
            warmup,
        })
        .expect("recx");
    println!("recx    ({device}): {recx_rate:9.1} samples/s");

    let file = write_batches(&ex, &batches);
    // As UniRec computes it (every position of the last block), and with recx's shortcut of
    // computing the last block at the last position only (same numbers, less work).
    for (label, last_only) in [("UniRec-style", false), ("last-position", true)] {
        match run_reference(file.path(), ex.n_item_rows, warmup, last_only) {
            Ok(torch_rate) => println!(
                "PyTorch {label:<13} (2 threads): {torch_rate:9.1} samples/s; ratio recx / PyTorch {:.2}",
                recx_rate / torch_rate
            ),
            Err(why) => {
                println!("PyTorch reference skipped: {why}");
                break;
            }
        }
    }
}

struct Recx<'a> {
    ex: &'a Examples<'a>,
    batches: &'a [Vec<usize>],
    warmup: usize,
}

impl BackendTask for Recx<'_> {
    type Output = f64;
    fn run<C: Backend>(self, device: C::Device) -> recx::error::Result<f64> {
        Ok(run_recx::<Autodiff<C>>(
            self.ex,
            self.batches,
            self.warmup,
            &device,
        ))
    }
}

/// Trains on `batches` with the stage's own training step and returns samples/s over the
/// steps after `warmup`.
fn run_recx<B: AutodiffBackend>(
    ex: &Examples<'_>,
    batches: &[Vec<usize>],
    warmup: usize,
    device: &B::Device,
) -> f64 {
    let cfg = SasRecConfig::new(ex.n_item_rows);
    let mut model: SasRec<B> = seeded_init::<B, _>(device, 3418, |d| cfg.init::<B>(d));
    let mut optim = adamw::<B, SasRec<B>>();
    let mut start = Instant::now();
    let mut loss = 0.0;
    for (step, idx) in batches.iter().enumerate() {
        if step == warmup {
            start = Instant::now();
        }
        let batch: Vec<&Example<'_>> = idx.iter().map(|&i| &ex.train[i]).collect();
        (model, loss) = train_step(model, &mut optim, &batch, None, 10.0, LR, device);
    }
    let elapsed = start.elapsed().as_secs_f64();
    eprintln!("recx final loss {loss:.4}");
    ((batches.len() - warmup) * BATCH) as f64 / elapsed
}

/// The batches as text: one line per sample, `target h1 … h9` (left-padded with 0).
fn write_batches(ex: &Examples<'_>, batches: &[Vec<usize>]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for idx in batches {
        for &i in idx {
            let e = &ex.train[i];
            let h = recx::recommender::sasrec::pad_history(e.query.history, 9);
            let line: Vec<String> = std::iter::once(e.target)
                .chain(h)
                .map(|v| v.to_string())
                .collect();
            writeln!(f, "{}", line.join(" ")).unwrap();
        }
    }
    f.flush().unwrap();
    f
}

/// Runs the PyTorch port on the same batches; its last stdout line is samples/s.
fn run_reference(
    batches: &Path,
    n_items: usize,
    warmup: usize,
    last_only: bool,
) -> Result<f64, String> {
    let python = bench_support::python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/sasrec_reference.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script);
    if last_only {
        cmd.arg("--last-only");
    }
    let out = cmd
        .args(["--batches", &batches.display().to_string()])
        .args([
            "--n-items",
            &n_items.to_string(),
            "--batch",
            &BATCH.to_string(),
            "--warmup",
            &warmup.to_string(),
        ])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{python} failed: {}{}",
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    stdout
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("unexpected output: {stdout}"))
}
