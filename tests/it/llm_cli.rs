//! `recx llm chat` end to end on SmolLM2-135M-Instruct (runs when the model is cached or
//! RECX_SMOLLM2_GGUF names it; skips with a message otherwise). Takes ~10 s on 2 cores in the
//! test profile.

use crate::skip_support;

use clap::Parser;
use recx::llm::cli::{ChatArgs, chat_answer};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    chat: ChatArgs,
}

#[test]
fn smollm2_knows_the_capital_of_france() {
    let Some(model) = recx::llm::assets::find_smollm2() else {
        skip_support::missing(
            "SmolLM2 GGUF not found (run `recx assets fetch smollm2` or set RECX_SMOLLM2_GGUF)",
        );
        return;
    };
    let cli = Cli::parse_from([
        "chat",
        "--model",
        model.to_str().unwrap(),
        "--max-new-tokens",
        "24",
        "What is the capital of France?",
    ]);
    let t = std::time::Instant::now();
    let answer = chat_answer(&cli.chat).unwrap();
    eprintln!("answer in {:.1} s: {answer:?}", t.elapsed().as_secs_f64());
    assert!(answer.contains("Paris"), "{answer}");
}

#[test]
fn cuda_device_without_the_feature_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let cli = Cli::parse_from([
        "chat",
        "--model",
        "tests/fixtures/llm/llama_quant.gguf",
        "--device",
        "cuda:0",
        "hi",
    ]);
    let err = chat_answer(&cli.chat).unwrap_err().to_string();
    assert!(err.contains("--features cuda"), "{err}");
}
