//! recx's integration tests as one binary, so burn, tokenizers, plotters, sled and tokio are
//! linked once rather than once per test file. Each module is one area's tests; the `*_common`, `*_support`
//! and `*_fixtures` modules are helpers they share, and `serial` guards the process-wide state
//! of the library that tests running on parallel threads would otherwise share. Fixtures live in
//! `tests/fixtures/`. Run one area with `cargo test --test it data_games::`.

// Shared helpers.
mod alignment_common;
mod data_support;
mod e2e_support;
mod judge_support;
mod llm_tokenizer_fixtures;
mod report_support;
mod serial;
mod skip_support;
mod stage_support;

// Test modules, by area.
mod alignment_games;
mod alignment_sharegpt;
mod alignment_stage;
mod alignment_tasks;
#[cfg(feature = "tch")]
mod backend_libtorch;
mod crash_safety;
mod data_games;
mod data_layout;
mod data_readers;
mod data_stage;
mod discriminator_stage;
mod encoder_minilm;
mod eval_rank_decoding;
mod human_ratings;
mod judge_azure;
mod judge_cancel;
mod judge_loopback;
mod judge_offline;
mod llm_chat;
mod llm_chat_sharegpt;
mod llm_cli;
mod llm_copy;
mod llm_generate;
mod llm_golden;
mod llm_tokenizer;
mod llm_tokenizer_smollm2;
mod llm_weights;
mod modes_table1;
mod plan_hash;
mod recommender_resume;
mod recommender_stage;
mod report_browser;
mod report_latex;
mod report_render;
mod runner;
mod runs_live_export;
mod serve_openai;
mod spec_errors;
mod stats_scipy;
mod store;
mod store_corrupt;
mod sweep;
mod sweep_cli;
mod table1_synthetic;
mod tidy;
mod train_presets;
mod train_resume;
mod train_smollm2;
