//! LoRA alignment of the real SmolLM2-135M: the adapters on the spec's targets (the paper's q
//! and v by default) plus the fully trained embeddings and the two connectors are exactly the
//! trainable parameters (spec §4.6), the merged model is saved as an HF folder, the evaluation
//! stage reads it back, and Python's `transformers` loads that folder and decodes greedily the
//! same tokens as recx on three prompts.

use crate::llm_tokenizer_fixtures as fx;
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

    let (_, train_hash) = run
        .stages
        .iter()
        .find(|(stage, _)| stage == "train")
        .expect("the run has a train stage");
    let merged = store.artifact_dir("train", train_hash).join("model");
    transformers_decodes_like_recx(&merged);
}

/// Greedy continuations of three chat prompts from the merged folder, by recx and by
/// `transformers`, token for token. Both decode exactly [`NEW_TOKENS`] tokens (no stop token)
/// so neither side's end-of-sequence handling can hide a difference.
fn transformers_decodes_like_recx(merged: &std::path::Path) {
    use recx::llm::chat::{ChatTemplate, TemplateName};
    use recx::llm::device::Cpu;
    use recx::llm::{Decoding, GenerateOptions, generate, load_model};

    const NEW_TOKENS: usize = 12;
    let Some(python) = fx::python_with("transformers") else {
        return;
    };
    let tok = recx::llm::cli::load_tokenizer(merged, None).unwrap();
    let template = ChatTemplate::new(TemplateName::Chatml);
    let prompts: Vec<Vec<u32>> = [
        "What is a video game console?",
        "Recommend a game for someone who enjoyed Zelda.",
        "Explain in one sentence why people buy controllers.",
    ]
    .iter()
    .map(|q| template.prompt_ids(&tok, q).unwrap())
    .collect();
    let (model, _) = load_model::<Cpu>(merged, &Default::default()).unwrap();
    let opts = GenerateOptions {
        max_new_tokens: NEW_TOKENS,
        min_new_tokens: 0,
        stop_tokens: Vec::new(),
        banned_tokens: Vec::new(),
        decoding: Decoding::Greedy,
    };
    let ours: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| {
            generate(&model, std::slice::from_ref(p), &[], &opts)[0][0]
                .tokens
                .clone()
        })
        .collect();
    let script = format!(
        "import json, sys, torch, transformers\n\
         m = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()\n\
         m.generation_config.eos_token_id = None\n\
         out = []\n\
         for p in json.load(sys.stdin):\n\
         \x20   ids = torch.tensor([p])\n\
         \x20   g = m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens={NEW_TOKENS}, \
         do_sample=False, num_beams=1, pad_token_id=0)\n\
         \x20   out.append(g[0, len(p):].tolist())\n\
         print(json.dumps(out))"
    );
    let theirs: Vec<Vec<u32>> =
        fx::python_json(&python, &script, &[merged.to_str().unwrap()], &prompts);
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a.len(), NEW_TOKENS, "prompt {i}: recx stopped early");
        assert_eq!(
            a,
            b,
            "prompt {i}: recx {:?} vs transformers {:?}",
            tok.decode(a, false),
            tok.decode(b, false)
        );
    }
}
