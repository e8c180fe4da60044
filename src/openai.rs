//! The OpenAI-compatible chat client the stages share: the judge rates explanations with it and
//! the alignment-data stage has it write the `uid2summary` answers (spec §1.8). Both talk to the
//! endpoint of the spec's `[judge]` section.
//!
//! The API key is read from the environment variable the endpoint names, only when a request is
//! sent; it never reaches the spec, the store, the logs or the reports. Every answer is kept in
//! the store's response cache under a hash of the whole request, so rerunning or resuming never
//! pays twice.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use serde_json::json;

use crate::error::{Error, Result};
use crate::hash::hash_json;
use crate::pipeline::{ResponseCache, check_cancel};

/// An OpenAI-compatible chat endpoint and the settings of every request sent to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub model: String,
    /// Base URL (e.g. `http://localhost:8000/v1`); empty = the OpenAI default.
    pub base_url: String,
    /// Name of the environment variable holding the API key.
    pub api_key_env: String,
    pub temperature: f64,
    pub max_tokens: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Attempts per request beyond the first, with exponential back-off.
    pub max_retries: usize,
}

impl Endpoint {
    /// The endpoint as messages name it.
    fn name(&self) -> &str {
        if self.base_url.is_empty() {
            "the OpenAI API"
        } else {
            &self.base_url
        }
    }
}

/// The cache key of one request: everything that shapes the answer, never the API key.
pub fn request_key(endpoint: &Endpoint, system: Option<&str>, prompt: &str) -> String {
    hash_json(&json!({
        "model": endpoint.model,
        "base_url": endpoint.base_url,
        "temperature": endpoint.temperature,
        "max_tokens": endpoint.max_tokens,
        "system": system,
        "prompt": prompt,
    }))
}

/// Answers for every prompt (after an optional system message), in order: cached ones from
/// `cache`, the rest from `endpoint`, `concurrency` at a time. Each new answer is
/// cached as soon as it arrives. The judge uses it, and so do the `uid2summary` answers.
pub fn ask_all(
    endpoint: &Endpoint,
    system: Option<&str>,
    prompts: &[String],
    cache: Option<&dyn ResponseCache>,
    tick: &dyn Fn(),
) -> Result<Vec<String>> {
    let keys: Vec<String> = prompts
        .iter()
        .map(|p| request_key(endpoint, system, p))
        .collect();
    let mut answers: Vec<Option<String>> = Vec::with_capacity(prompts.len());
    for key in &keys {
        let hit = match cache {
            Some(c) => c.get(key)?,
            None => None,
        };
        if hit.is_some() {
            tick();
        }
        answers.push(hit);
    }
    let missing: Vec<usize> = (0..prompts.len())
        .filter(|&i| answers[i].is_none())
        .collect();
    if !missing.is_empty() {
        let client = client(endpoint)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("judge: cannot start the async runtime: {e}")))?;
        for chunk in missing.chunks(endpoint.concurrency) {
            check_cancel()?;
            let replies = runtime.block_on(async {
                let mut set = tokio::task::JoinSet::new();
                for &i in chunk {
                    let (client, endpoint, prompt) =
                        (client.clone(), endpoint.clone(), prompts[i].clone());
                    let system = system.map(String::from);
                    set.spawn(async move {
                        (i, ask(&client, &endpoint, system.as_deref(), &prompt).await)
                    });
                }
                let mut out = Vec::new();
                while let Some(joined) = set.join_next().await {
                    out.push(joined.map_err(|e| Error::Config(format!("judge task: {e}")))?);
                }
                Ok::<_, Error>(out)
            })?;
            for (i, reply) in replies {
                let text = reply?;
                if let Some(c) = cache {
                    c.put(&keys[i], &text)?;
                }
                answers[i] = Some(text);
                tick();
            }
        }
    }
    Ok(answers
        .into_iter()
        .map(|a| a.expect("every prompt answered"))
        .collect())
}

/// The client for `endpoint`, with the key from the environment.
fn client(endpoint: &Endpoint) -> Result<Client<OpenAIConfig>> {
    let key = std::env::var(&endpoint.api_key_env).map_err(|_| {
        Error::Config(format!(
            "judge.api_key_env: the environment variable {} is not set; the judge needs the API \
             key of {} there",
            endpoint.api_key_env,
            endpoint.name()
        ))
    })?;
    let mut config = OpenAIConfig::new().with_api_key(key);
    if !endpoint.base_url.is_empty() {
        config = config.with_api_base(endpoint.base_url.trim_end_matches('/'));
    }
    Ok(Client::with_config(config))
}

/// One chat completion with retries; the answer's text.
async fn ask(
    client: &Client<OpenAIConfig>,
    endpoint: &Endpoint,
    system: Option<&str>,
    prompt: &str,
) -> Result<String> {
    let mut messages: Vec<ChatCompletionRequestMessage> = Vec::new();
    if let Some(system) = system {
        messages.push(ChatCompletionRequestSystemMessage::from(system).into());
    }
    messages.push(ChatCompletionRequestUserMessage::from(prompt).into());
    let request = CreateChatCompletionRequestArgs::default()
        .model(endpoint.model.clone())
        .messages(messages)
        .temperature(endpoint.temperature as f32)
        .max_tokens(endpoint.max_tokens as u32)
        .build()
        .map_err(|e| Error::Config(format!("judge request: {e}")))?;
    let mut attempt = 0;
    loop {
        match client.chat().create(request.clone()).await {
            Ok(response) => {
                return Ok(response
                    .choices
                    .into_iter()
                    .next()
                    .and_then(|c| c.message.content)
                    .unwrap_or_default());
            }
            Err(e) if attempt < endpoint.max_retries => {
                tracing::warn!("judge request failed (attempt {}): {e}", attempt + 1);
                tokio::time::sleep(std::time::Duration::from_millis(500 << attempt)).await;
                attempt += 1;
            }
            Err(e) => {
                return Err(Error::Config(format!(
                    "judge: {} at {} failed after {} attempts: {e}",
                    endpoint.model,
                    endpoint.name(),
                    attempt + 1
                )));
            }
        }
    }
}
