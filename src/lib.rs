//! recx: RecExplainer rebuilt as a research harness.
//!
//! One experiment spec (`spec`) resolves into a hashed plan (`plan`) whose stages (`pipeline`)
//! run through the runner (`runner`) and record everything in the store (`store`, the only code
//! that touches sled). Each pipeline stage is a module: `data`, `recommender`, `alignment`,
//! `train`, `eval`, `baselines`, `explain`, `judge`. What several stages share sits beside them: `llm` (the
//! LLM core), `llm_stage` (the LLM stages' device dispatch and subsampling), `openai` (the chat
//! client of the judge and the user summaries), `training` (optimizer, clipping, random streams
//! and checkpoints of every trainer), `seed` (the one sub-seed derivation). `stats` holds the
//! statistics and touches neither TOML nor sled. `serve` is `recx serve`, the OpenAI-compatible
//! server, and the one place recx listens on the network.

pub mod alignment;
pub mod baselines;
pub mod data;
pub mod discriminator;
pub mod encoder;
pub mod error;
pub mod eval;
pub mod explain;
pub mod judge;
pub mod llm;
pub mod llm_stage;
pub mod openai;
pub mod pipeline;
pub mod recommender;
pub mod report;
pub mod seed;
pub mod spec;
pub mod stats;
pub mod train;
pub mod training;

pub use error::{Error, Result};
pub mod cli;
pub mod cli_report;
pub mod cli_sweep;
pub mod export;
pub mod fsutil;
pub mod hash;
pub mod logging;
pub mod merge;
pub mod plan;
pub mod provenance;
pub mod runner;
pub mod serve;
pub mod store;
pub mod sweep;
