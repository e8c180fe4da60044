//! LoRA alignment of the real SmolLM2-135M: the adapters on the spec's targets (the paper's q
//! and v by default) plus the fully trained embeddings and the two connectors are exactly the
//! trainable parameters (spec §4.6), the merged model is saved as an HF folder, and the
//! evaluation stage reads it back.

use crate::skip_support;
use recx::llm::{LlamaConfig, LoraTarget};
use recx::pipeline::registry;
use recx::plan::Plan;
use recx::spec::Spec;
use recx::store::{RunStatus, Store};

#[test]
fn lora_on_smollm2_trains_exactly_the_papers_parameters() {
    let Some(gguf) = recx::llm::assets::find_smollm2() else {
        skip_support::missing(
            "SmolLM2 GGUF not found (run `recx assets fetch smollm2` or set RECX_SMOLLM2_GGUF)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("lora.toml");
    std::fs::write(
        &spec_path,
        include_str!("../fixtures/specs/lora_smollm2.toml"),
    )
    .unwrap();
    let store_dir = dir.path().join("results");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recx"))
        .arg("--quiet")
        .arg("--store")
        .arg(&store_dir)
        .arg("run")
        .arg(&spec_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let spec = Spec::load(&spec_path).unwrap();
    let plan = Plan::resolve(&spec, &registry()).unwrap();
    let store = Store::open(&store_dir).unwrap();
    let run = store.get_run(&plan.runs[0].run_id).unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let m = store.run_metrics(&run).unwrap();

    // LoRA with the spec's r on the spec's targets of every layer (A: in × r, B: r × out);
    // embed_tokens (tied head) with the two new placeholder rows; connectors d_rec → H/2 → H for
    // users and items.
    let c = LlamaConfig::from_gguf(&recx::llm::gguf::GgufFile::open(&gguf).unwrap()).unwrap();
    let LlamaConfig {
        hidden_size: h,
        num_layers,
        vocab_size,
        ..
    } = c;
    let kv = c.num_kv_heads * c.head_dim();
    let train = &spec.raw.train;
    let in_plus_out = |t: &LoraTarget| match t {
        LoraTarget::Q | LoraTarget::O => h + h,
        LoraTarget::K | LoraTarget::V => h + kv,
    };
    let per_layer: usize = train.lora_targets.iter().map(in_plus_out).sum();
    let lora = num_layers * train.lora_r * per_layer;
    let embed = (vocab_size + 2) * h;
    let d_rec = 16;
    let connectors = 2 * (d_rec * (h / 2) + h / 2 + (h / 2) * h + h);
    assert_eq!(
        m.scalars["train.trainable_params"] as usize,
        lora + embed + connectors
    );
    assert!(m.scalars["train.total_params"] > m.scalars["train.trainable_params"]);
    assert_eq!(
        m.series["train.valid_loss"].len(),
        2,
        "before training and after epoch 1"
    );
    for key in [
        "eval.uid2next.hit@5",
        "eval.uid2next.ndcg@5",
        "eval.uidiid2binary.acc",
    ] {
        let v = m.scalars[key];
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    assert_eq!(m.examples["eval.uidiid2binary.acc"].len(), 2);
}
