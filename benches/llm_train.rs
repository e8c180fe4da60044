//! LoRA alignment training speed: recx against transformers + peft on the same micro-batches,
//! in one run, with the ratio.
//!
//! Both sides train SmolLM2-135M-Instruct with the alignment stage's setup (LoRA on the
//! attention projections, embeddings trained, the two connectors adding recommender vectors at
//! `<user>`/`<item>` tokens, the §4.5 loss on answer tokens only, AdamW, clipping) on real
//! hybrid-mode alignment records of the embedded games-mini set. recx's micro-batches (grouped
//! by length, as the stage trains) are written to a file that the Python side replays, so both
//! compute the same sequences padded the same way. Reported: real (non-padding) tokens per
//! second, the share of computed positions that are padding, and the model FLOP/s
//! (`4 · non-embedding parameters · tokens`: forward plus the input-gradient half of backward,
//! frozen weights need no weight gradient) against this machine's measured matmul peak.
//!
//! `cargo bench --bench llm_train`. Needs the SmolLM2 GGUF (`recx assets fetch smollm2`) and,
//! for the comparison, a Python with torch, transformers and peft in RECX_PYTHON
//! (`scripts/install-peers.sh` makes one). Settings: RECX_BENCH_RECORDS (32 samples),
//! RECX_BENCH_THREADS (2), RECX_BENCH_DEVICE (`cpu`: burn-flex; `libtorch` in a
//! `--features tch` build), RECX_BENCH_CHECKPOINTING (1: both sides recompute each layer's
//! activations in backward, `[train] gradient_checkpointing` and HF's
//! `gradient_checkpointing_enable`). Each side also reports its peak resident memory over the
//! timed steps.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use recx::alignment::record::AlignmentRecord;
use recx::llm::chat::ChatTemplate;
use recx::llm::device::BackendTask;
use recx::llm::save_hf;
use recx::llm_stage::subsample;
use recx::pipeline::{Progress, StageKind, registry};
use recx::plan::Plan;
use recx::runner::ensure_stage;
use recx::spec::Spec;
use recx::store::Store;
use recx::train::fit::{StepSettings, micro_batches, train_step};
use recx::train::{
    FrozenRecommender, Sample, SampleBuilder, build_samples, load_base, queries, read_split,
    rec_inputs, trainable_model,
};
use recx::training::adamw;
use serde_json::json;

mod bench_support;

/// The allocator of the `recx` binary (src/main.rs), so the peak RSS printed is what a run sees.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use bench_support::{bench_device, env_usize, manifest};

/// Computes (or finds) the bench spec's data, recommender and alignment-data stages and returns
/// the spec with the folders of the last two.
fn prepare_inputs() -> (Spec, PathBuf, PathBuf) {
    let spec = Spec::load(&manifest().join("benches/specs/llm_train.toml")).expect("bench spec");
    let stages = registry();
    let plan = Plan::resolve(&spec, &stages).expect("bench plan");
    let store = Store::open(&manifest().join("target/bench-llm-train")).expect("bench store");
    let run = &plan.runs[0];
    let progress = Progress::hidden();
    let dir = |kind: StageKind| {
        let sp = run
            .stages
            .iter()
            .find(|s| s.kind == kind)
            .expect("stage planned");
        store.artifact_dir(kind.as_str(), &sp.hash)
    };
    for sp in &run.stages {
        if matches!(
            sp.kind,
            StageKind::Data | StageKind::Recommender | StageKind::AlignmentData
        ) {
            ensure_stage(&store, run, sp, &stages, &progress).expect("input stage");
        }
    }
    let (align, rec) = (dir(StageKind::AlignmentData), dir(StageKind::Recommender));
    (spec, align, rec)
}

fn main() {
    let threads = env_usize("RECX_BENCH_THREADS", 2);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("first pool");
    if recx::llm::assets::find_smollm2().is_none() {
        println!("llm_train: SmolLM2 GGUF not found: run `recx assets fetch smollm2` first");
        std::process::exit(1);
    }
    let device = bench_device();
    device.run(Bench { threads }).expect("bench");
}

struct Bench {
    threads: usize,
}

impl BackendTask for Bench {
    type Output = ();
    fn run<C: Backend>(self, device: C::Device) -> recx::error::Result<()> {
        measure::<C>(self.threads, &device);
        Ok(())
    }
}

/// Runs the peer, then trains on backend `C` (with autodiff) on the same micro-batches.
fn measure<C: Backend>(threads: usize, device: &C::Device) {
    type B<C> = Autodiff<C>;
    let records = env_usize("RECX_BENCH_RECORDS", 32);
    let peak = bench_support::matmul_rate::<C>(1024, 1024, 1024, 5, device);
    println!("matmul peak (1024^3, f32, {threads} threads): {peak:.1} GFLOP/s");

    let checkpointing = env_usize("RECX_BENCH_CHECKPOINTING", 0) == 1;
    let (spec, align_dir, rec_dir) = prepare_inputs();
    let section = &spec.raw.train;
    let seed = 2024;
    let all: Vec<AlignmentRecord> = read_split(&align_dir, "train").expect("train records");
    let picked = subsample(all, records, seed);
    let template = ChatTemplate::new(spec.raw.llm.template);
    let base = load_base::<B<C>>(
        &spec.raw.llm,
        spec.path.parent().expect("spec folder"),
        &template,
        spec.raw.alignment.mode,
        (&picked, &[]), // a pretrained backbone: no item-title words
        seed,
        device,
    )
    .expect("SmolLM2");
    let builder = SampleBuilder {
        tokenizer: &base.tokenizer,
        template: &template,
        placeholders: base.tokenizer.placeholders(),
        max_len: section.max_len,
    };
    let (samples, users, _) = build_samples(&builder, &picked).expect("samples");
    let frozen = FrozenRecommender::<C>::load(&rec_dir, device).expect("recommender");
    let rec = rec_inputs(Some(&frozen), &queries(&users), device);
    let features = rec.features();

    // The stage's batches: consecutive runs of batch_size, each cut into length-grouped
    // micro-batches; one extra micro-batch (the first) warms both sides up.
    let order: Vec<usize> = (0..samples.len()).collect();
    let batches: Vec<Vec<Vec<&Sample>>> = order
        .chunks(section.batch_size)
        .map(|b| micro_batches(b, &samples, section.micro_batch_size))
        .collect();
    let real: usize = samples.iter().map(|s| s.ids.len()).sum();
    let padded: usize = batches
        .iter()
        .flatten()
        .map(|m| m.len() * m.iter().map(|s| s.ids.len()).max().unwrap_or(0))
        .sum();
    let params = non_embedding_params(&base.config);
    println!(
        "{} samples ({real} real tokens, {:.1} % of computed positions are padding), batch {} / micro {}, LoRA r {} alpha {} dropout {} on {:?}, gradient checkpointing {checkpointing}",
        samples.len(),
        100.0 * (padded - real) as f64 / padded as f64,
        section.batch_size,
        section.micro_batch_size,
        section.lora_r,
        section.lora_alpha,
        section.lora_dropout,
        section.lora_targets,
    );

    let peer_dir = manifest().join("target/bench-llm-train/peer");
    std::fs::create_dir_all(&peer_dir).expect("peer folder");
    save_hf(&base.model, &base.config, None, &peer_dir.join("model")).expect("HF copy");
    write_batches(&peer_dir.join("batches.jsonl"), &batches, &features);

    // The peer runs first: each side peaks at 12–15 GB, and a process that has trained on
    // libtorch keeps much of that after freeing it (the peer, run second, was killed for memory
    // on a 24 GB machine).
    let targets = section
        .lora_targets
        .iter()
        .map(|t| format!("{}_proj", t.as_str()))
        .collect::<Vec<_>>()
        .join(",");
    let mut command = Command::new(bench_support::python());
    command
        .arg(manifest().join("benches/llm_train_reference.py"))
        .arg(&peer_dir)
        .args(["--threads", &threads.to_string()])
        .args(["--r", &section.lora_r.to_string()])
        .args(["--alpha", &section.lora_alpha.to_string()])
        .args(["--dropout", &section.lora_dropout.to_string()])
        .args(["--targets", &targets])
        .args(["--lr", &section.lr.to_string()])
        .args(["--max-grad-norm", &section.max_grad_norm.to_string()]);
    if checkpointing {
        command.arg("--gradient-checkpointing");
    }
    let peer = bench_support::run(command, "torch, transformers and peft");

    let mut model = trainable_model(base.model, true, section, Some(rec.dim), seed);
    let mut optim = adamw();
    // Warm-up: one step over the first micro-batch at learning rate 0, through the same path
    // as the timed steps (checkpointed or not), so it leaves the model as it was.
    let warm = StepSettings {
        lr: 0.0,
        max_grad_norm: section.max_grad_norm,
        checkpointing: checkpointing.then_some(seed),
    };
    (model, _) = train_step(model, &mut optim, &batches[0][..1], &features, warm);
    bench_support::reset_peak_rss();
    let before = bench_support::rss_mb().unwrap_or(f64::NAN);
    let t = Instant::now();
    for (k, parts) in batches.iter().enumerate() {
        let step = StepSettings {
            lr: section.lr,
            max_grad_norm: section.max_grad_norm,
            checkpointing: checkpointing.then_some(seed + k as u64),
        };
        let (next, _loss) = train_step(model, &mut optim, parts, &features, step);
        model = next;
    }
    let secs = t.elapsed().as_secs_f64();
    let recx_tps = real as f64 / secs;
    let flops = |tps: f64| 4.0 * params as f64 * tps / 1e9;
    let rss = bench_support::peak_rss_mb().unwrap_or(f64::NAN);
    println!(
        "recx               tok_s={recx_tps:.1} ({:.1} GFLOP/s model, {:.1} % of peak), peak RSS {rss:.0} MB ({before:.0} MB before the first step)",
        flops(recx_tps),
        100.0 * flops(recx_tps) / peak
    );
    let Some(stdout) = peer else { return };
    let peer_tps = bench_support::value(&stdout, "peft tok_s=");
    let peer_rss = bench_support::value(&stdout, "peft peak_rss_mb=");
    println!(
        "transformers+peft  tok_s={peer_tps:.1} ({:.1} GFLOP/s model, {:.1} % of peak), peak RSS {peer_rss:.0} MB",
        flops(peer_tps),
        100.0 * flops(peer_tps) / peak
    );
    println!(
        "ratio recx / transformers+peft = {:.2}x (goal >= 1.5x)",
        recx_tps / peer_tps
    );
}

/// Parameters outside the embedding table and output head (what every token multiplies).
fn non_embedding_params(c: &recx::llm::LlamaConfig) -> usize {
    let (h, i) = (c.hidden_size, c.intermediate_size);
    let kv = c.num_kv_heads * c.head_dim.unwrap_or(h / c.num_heads);
    c.num_layers * (2 * h * h + 2 * h * kv + 3 * h * i)
}

/// One line per optimizer batch: its micro-batches, each sample's ids, loss mask and the
/// recommender vectors behind its placeholders.
fn write_batches(
    path: &Path,
    batches: &[Vec<Vec<&Sample>>],
    features: &recx::train::RecFeatures<'_>,
) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("batches file"));
    for parts in batches {
        let parts: Vec<Vec<serde_json::Value>> = parts
            .iter()
            .map(|m| {
                m.iter()
                    .map(|s| {
                        json!({
                            "ids": s.ids,
                            "loss_mask": s.loss_mask,
                            "users": s.user_tokens.iter().map(|&p| json!([p, features.user_row(s.user_row.expect("user row"))])).collect::<Vec<_>>(),
                            "items": s.item_tokens.iter().map(|&(p, id)| json!([p, features.item_row(id)])).collect::<Vec<_>>(),
                        })
                    })
                    .collect()
            })
            .collect();
        writeln!(f, "{}", json!(parts)).expect("write batches");
    }
}
