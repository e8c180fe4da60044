//! The OpenAI-compatible chat client the stages share: the judge rates explanations with it and
//! the alignment-data stage has it write the `uid2summary` answers (spec §1.8). Both talk to the
//! endpoint of the spec's `[judge]` section.
//!
//! The API key is read from the environment variable the endpoint names, only when a request is
//! sent; it never reaches the spec, the store, the logs or the reports. Every answer is kept in
//! the store's response cache under a hash of the whole request, so rerunning or resuming never
//! pays twice.
//!
//! Two protocols: plain OpenAI (`{base_url}/chat/completions`, `Authorization: Bearer KEY`), which
//! `recx serve`, vLLM and most local servers speak too, and Azure OpenAI, as the original rates
//! with GPT-4 on Azure (spec §6): `{endpoint}/openai/deployments/{deployment}/chat/completions
//! ?api-version=…` with the key in an `api-key` header. An empty `api_key_env` sends no key (a
//! local server that checks none).
//!
//! Requests go through `reqwest` directly rather than async-openai's client, because that client
//! retries on its own and hides what a careful caller needs: the status code (a 401 must fail at
//! once, not be retried), the `Retry-After` header, and a per-request timeout. Here every request
//! has the endpoint's `timeout_s`; failures are retried at most `max_retries` times with jittered
//! exponential back-off (capped), or after the server's `Retry-After`; 4xx other than 408/429 fail
//! at once; an empty answer (no `choices`, no content) counts as a failure. Only real answers
//! enter the response cache, each as soon as it arrives, and a Ctrl-C aborts the requests in
//! flight within a fraction of a second, keeping every answer received so far.

use std::time::Duration;

use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};
use crate::hash::hash_json;
use crate::pipeline::{ResponseCache, cancel_requested, check_cancel};

/// Makes ring rustls's process-wide crypto provider, once, before any HTTP client is built:
/// reqwest is compiled without a provider of its own (its default, aws-lc-rs, is a C library
/// that dominated a fresh build). Safe to call any number of times, from any thread.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means a provider is installed already (by the embedding program): keep that one.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An OpenAI-compatible chat endpoint and the settings of every request sent to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub model: String,
    /// Base URL (e.g. `http://localhost:8000/v1`); empty = the OpenAI default.
    pub base_url: String,
    /// An Azure OpenAI deployment instead of `base_url` (which must then be empty).
    pub azure: Option<Azure>,
    /// Name of the environment variable holding the API key; empty = send no key.
    pub api_key_env: String,
    pub temperature: f64,
    pub max_tokens: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Attempts per request beyond the first, with jittered exponential back-off.
    pub max_retries: usize,
    /// Seconds one request may take (connection included) before it counts as failed.
    pub timeout_s: f64,
}

/// An Azure OpenAI deployment (`[judge.azure]`): the resource endpoint, the deployment name and
/// the API version; requests carry the key in an `api-key` header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Azure {
    /// The resource endpoint, e.g. `https://my-resource.openai.azure.com`.
    pub endpoint: String,
    /// The deployment name (Azure routes by it; the request's `model` is ignored there).
    pub deployment: String,
    /// e.g. `2024-10-21` or `2024-08-01-preview`.
    pub api_version: String,
}

impl Azure {
    /// The chat-completions URL of the deployment.
    pub fn url(&self) -> String {
        format!(
            "{}/openai/deployments/{}/chat/completions?api-version={}",
            self.endpoint.trim_end_matches('/'),
            self.deployment,
            self.api_version
        )
    }

    /// Problems with the settings, as `(key, message)` for the spec's validator.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if !(self.endpoint.starts_with("https://") || self.endpoint.starts_with("http://")) {
            out.push((
                "endpoint",
                format!(
                    "{:?} is not an http(s) URL (e.g. https://my-resource.openai.azure.com)",
                    self.endpoint
                ),
            ));
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !name_ok(&self.deployment) {
            out.push((
                "deployment",
                format!(
                    "{:?} is not a deployment name (letters, digits, `-`, `_`, `.`)",
                    self.deployment
                ),
            ));
        }
        let version_ok = self.api_version.len() >= 10
            && self.api_version[..10].chars().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            })
            && name_ok(&self.api_version);
        if !version_ok {
            out.push((
                "api_version",
                format!(
                    "{:?} is not an Azure API version (YYYY-MM-DD, optionally -preview)",
                    self.api_version
                ),
            ));
        }
        out
    }
}

impl Endpoint {
    /// The endpoint as messages name it.
    fn name(&self) -> String {
        match &self.azure {
            Some(a) => format!("Azure deployment {} at {}", a.deployment, a.endpoint),
            None if self.base_url.is_empty() => "the OpenAI API".into(),
            None => self.base_url.clone(),
        }
    }

    /// The chat-completions URL requests go to.
    pub fn url(&self) -> String {
        match &self.azure {
            Some(a) => a.url(),
            None => {
                let base = if self.base_url.is_empty() {
                    OPENAI_BASE
                } else {
                    self.base_url.trim_end_matches('/')
                };
                format!("{base}/chat/completions")
            }
        }
    }
}

/// The default endpoint when `judge.base_url` is empty.
const OPENAI_BASE: &str = "https://api.openai.com/v1";
/// First back-off delay; doubled per attempt.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// The longest back-off between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// The longest `Retry-After` obeyed; a server asking for more is waited on this long.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);
/// How often the request loop looks at the Ctrl-C flag.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// The cache key of one request: everything that shapes the answer, never the API key.
pub fn request_key(section: &Endpoint, system: Option<&str>, prompt: &str) -> String {
    let mut key = json!({
        "model": section.model,
        "base_url": section.base_url,
        "temperature": section.temperature,
        "max_tokens": section.max_tokens,
        "system": system,
        "prompt": prompt,
    });
    // Only Azure requests carry the deployment, so the keys of plain endpoints stay as they were.
    if let Some(a) = &section.azure {
        key["azure"] = json!(a);
    }
    hash_json(&key)
}

/// Answers for every prompt (after an optional system message), in order: cached ones from
/// `cache`, the rest from the section's endpoint, `concurrency` at a time. Each new answer is
/// cached as soon as it arrives. The judge uses it, and so do the `uid2summary` answers.
pub fn ask_all(
    section: &Endpoint,
    system: Option<&str>,
    prompts: &[String],
    cache: Option<&dyn ResponseCache>,
    tick: &dyn Fn(),
) -> Result<Vec<String>> {
    let keys: Vec<String> = prompts
        .iter()
        .map(|p| request_key(section, system, p))
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
        check_cancel()?;
        let endpoint = Connection::new(section)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("judge: cannot start the async runtime: {e}")))?;
        let mut on_answer = |i: usize, text: String| -> Result<()> {
            if let Some(c) = cache {
                c.put(&keys[i], &text)?;
            }
            answers[i] = Some(text);
            tick();
            Ok(())
        };
        runtime.block_on(fetch(
            &endpoint,
            system,
            prompts,
            &missing,
            section.concurrency,
            &mut on_answer,
        ))?;
    }
    Ok(answers
        .into_iter()
        .map(|a| a.expect("every prompt answered"))
        .collect())
}

/// Sends the `missing` prompts, at most `concurrency` in flight, handing each answer to
/// `on_answer` as it arrives. After a failure no new request starts; those in flight finish
/// (their answers are kept) and the first error is returned. A Ctrl-C aborts everything in
/// flight at once.
async fn fetch(
    endpoint: &Connection,
    system: Option<&str>,
    prompts: &[String],
    missing: &[usize],
    concurrency: usize,
    on_answer: &mut dyn FnMut(usize, String) -> Result<()>,
) -> Result<()> {
    let mut queue = missing.iter().copied();
    let mut set = tokio::task::JoinSet::new();
    let mut failure: Option<Error> = None;
    loop {
        if cancel_requested() {
            set.abort_all();
            return Err(Error::Interrupted);
        }
        while failure.is_none() && set.len() < concurrency.max(1) {
            let Some(i) = queue.next() else { break };
            let (endpoint, prompt) = (endpoint.clone(), prompts[i].clone());
            let system = system.map(String::from);
            set.spawn(async move { (i, endpoint.ask(system.as_deref(), &prompt).await) });
        }
        if set.is_empty() {
            break;
        }
        match tokio::time::timeout(CANCEL_POLL, set.join_next()).await {
            Err(_) if cancel_requested() => {
                set.abort_all();
                return Err(Error::Interrupted);
            }
            Err(_) => {}
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                failure.get_or_insert(Error::Config(format!("judge task: {e}")));
            }
            Ok(Some(Ok((i, Ok(text))))) => {
                if let Err(e) = on_answer(i, text) {
                    failure.get_or_insert(e);
                }
            }
            Ok(Some(Ok((_, Err(e))))) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => check_cancel(),
    }
}

/// One configured connection: URL, key, HTTP client with the request timeout, retry policy.
#[derive(Clone)]
struct Connection {
    http: reqwest::Client,
    url: String,
    /// `None` when the endpoint is configured with no key.
    key: Option<String>,
    section: Endpoint,
}

/// Why one attempt did not produce an answer.
#[derive(Debug)]
enum Failure {
    /// Worth another attempt (timeouts, transport errors, 408, 429, 5xx, empty answers), after
    /// the server's `Retry-After` when it sent one.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (401, 403, 404, 400 ...).
    Permanent(String),
}

/// The parts of a chat-completion reply we read; servers differ in the rest.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    choices: Vec<ReplyChoice>,
}

#[derive(Deserialize)]
struct ReplyChoice {
    message: ReplyMessage,
}

#[derive(Deserialize)]
struct ReplyMessage {
    #[serde(default)]
    content: Option<String>,
}

impl Connection {
    /// A connection to `section`, with the key from the environment.
    fn new(section: &Endpoint) -> Result<Connection> {
        let key = if section.api_key_env.is_empty() {
            None
        } else {
            Some(std::env::var(&section.api_key_env).map_err(|_| {
                Error::Config(format!(
                    "judge.api_key_env: the environment variable {} is not set; the judge needs the \
                     API key of {} there (set api_key_env = \"\" for a server that checks none)",
                    section.api_key_env,
                    section.name()
                ))
            })?)
        };
        let timeout = Duration::from_secs_f64(section.timeout_s);
        install_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Error::Config(format!("judge: cannot build the HTTP client: {e}")))?;
        Ok(Connection {
            http,
            url: section.url(),
            key,
            section: section.clone(),
        })
    }

    /// One prompt's answer, retrying transient failures within the section's limits.
    async fn ask(&self, system: Option<&str>, prompt: &str) -> Result<String> {
        let request = self.request(system, prompt)?;
        let mut attempt = 0;
        loop {
            let failure = match self.attempt(&request).await {
                Ok(text) => return Ok(text),
                Err(f) => f,
            };
            let (reason, retry_after) = match failure {
                Failure::Transient {
                    reason,
                    retry_after,
                } if attempt < self.section.max_retries => (reason, retry_after),
                Failure::Transient { reason, .. } | Failure::Permanent(reason) => {
                    return Err(Error::Config(format!(
                        "judge: {} at {} failed after {} attempt(s): {reason}",
                        self.section.model,
                        self.section.name(),
                        attempt + 1
                    )));
                }
            };
            let delay = retry_after
                .map(|d| d.min(RETRY_AFTER_CAP))
                .unwrap_or_else(|| backoff(attempt));
            tracing::warn!(
                "judge request failed (attempt {}): {reason}; retrying in {:.1} s",
                attempt + 1,
                delay.as_secs_f64()
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn request(&self, system: Option<&str>, prompt: &str) -> Result<CreateChatCompletionRequest> {
        let mut messages: Vec<ChatCompletionRequestMessage> = Vec::new();
        if let Some(system) = system {
            messages.push(ChatCompletionRequestSystemMessage::from(system).into());
        }
        messages.push(ChatCompletionRequestUserMessage::from(prompt).into());
        CreateChatCompletionRequestArgs::default()
            .model(self.section.model.clone())
            .messages(messages)
            .temperature(self.section.temperature as f32)
            .max_tokens(self.section.max_tokens as u32)
            .build()
            .map_err(|e| Error::Config(format!("judge request: {e}")))
    }

    /// One HTTP request and its classification.
    async fn attempt(
        &self,
        request: &CreateChatCompletionRequest,
    ) -> std::result::Result<String, Failure> {
        let transient = |reason: String| Failure::Transient {
            reason,
            retry_after: None,
        };
        let mut builder = self.http.post(&self.url);
        builder = match (&self.key, &self.section.azure) {
            (None, _) => builder,
            (Some(key), Some(_)) => builder.header("api-key", key),
            (Some(key), None) => builder.bearer_auth(key),
        };
        let response = builder
            .json(request)
            .send()
            .await
            .map_err(|e| transient(describe_transport(&e, self.section.timeout_s)))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response
            .text()
            .await
            .map_err(|e| transient(describe_transport(&e, self.section.timeout_s)))?;
        if !status.is_success() {
            let reason = format!("HTTP {status}: {}", error_message(&body));
            return Err(if is_retryable(status) {
                Failure::Transient {
                    reason,
                    retry_after,
                }
            } else {
                Failure::Permanent(reason)
            });
        }
        answer_text(&body).map_err(transient)
    }
}

/// Whether a failed status is worth retrying: timeouts, rate limits and server errors.
fn is_retryable(status: reqwest::StatusCode) -> bool {
    status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
}

/// The first choice's text of a successful reply; no choices or no text is an error, so an
/// empty answer is never cached as if the model had said nothing.
fn answer_text(body: &str) -> std::result::Result<String, String> {
    let reply: Reply = serde_json::from_str(body).map_err(|e| {
        let head: String = body.chars().take(200).collect();
        format!("unreadable reply ({e}): {head}")
    })?;
    match reply.choices.into_iter().next() {
        None => Err("the reply has no choices (an empty answer)".into()),
        Some(c) => match c.message.content {
            Some(text) if !text.trim().is_empty() => Ok(text),
            _ => Err("the reply's message has no content (an empty answer)".into()),
        },
    }
}

/// The server's error message (`{"error": {"message": ...}}`), or the start of the body.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(String::from))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

fn describe_transport(e: &reqwest::Error, timeout_s: f64) -> String {
    if e.is_timeout() {
        format!("no answer within judge.timeout_s = {timeout_s} s")
    } else {
        format!("{e}")
    }
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The delay before retry `attempt + 1`: `BACKOFF_BASE · 2^attempt`, capped at `BACKOFF_CAP`,
/// times a random factor in [0.5, 1] so parallel requests do not retry in lock-step.
fn backoff(attempt: usize) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(16));
    exp.min(BACKOFF_CAP)
        .mul_f64(rand::rng().random_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 0..40 {
            let d = backoff(attempt);
            let full = BACKOFF_BASE
                .saturating_mul(1u32 << attempt.min(16))
                .min(BACKOFF_CAP);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert!(backoff(30) <= BACKOFF_CAP);
    }

    #[test]
    fn only_timeouts_rate_limits_and_server_errors_are_retried() {
        for (code, retry) in [
            (400, false),
            (401, false),
            (403, false),
            (404, false),
            (408, true),
            (429, true),
            (500, true),
            (503, true),
        ] {
            let status = reqwest::StatusCode::from_u16(code).unwrap();
            assert_eq!(is_retryable(status), retry, "{code}");
        }
    }

    #[test]
    fn empty_answers_are_failures() {
        assert!(answer_text(r#"{"choices": []}"#).is_err());
        assert!(answer_text(r#"{"choices": [{"message": {"content": null}}]}"#).is_err());
        assert!(answer_text(r#"{"choices": [{"message": {"content": "  "}}]}"#).is_err());
        assert!(answer_text("<html>").is_err());
        assert_eq!(
            answer_text(r#"{"choices": [{"message": {"content": "<score>C</score>"}}]}"#),
            Ok("<score>C</score>".into())
        );
    }

    #[test]
    fn azure_settings_give_the_deployment_url_and_name_bad_values() {
        let a = Azure {
            endpoint: "https://res.openai.azure.com/".into(),
            deployment: "gpt-4".into(),
            api_version: "2024-10-21".into(),
        };
        assert!(a.problems().is_empty());
        assert_eq!(
            a.url(),
            "https://res.openai.azure.com/openai/deployments/gpt-4/chat/completions?api-version=2024-10-21"
        );
        let preview = Azure {
            api_version: "2024-08-01-preview".into(),
            ..a.clone()
        };
        assert!(preview.problems().is_empty());
        let bad = Azure {
            endpoint: "res.openai.azure.com".into(),
            deployment: "gpt 4".into(),
            api_version: "latest".into(),
        };
        let keys: Vec<&str> = bad.problems().iter().map(|p| p.0).collect();
        assert_eq!(keys, ["endpoint", "deployment", "api_version"]);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
