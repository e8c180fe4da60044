//! `recx serve MODEL`: an OpenAI-compatible chat-completions server for any model recx loads, so
//! the judge, the user-summary writer, `openai` clients and other tools can use a local model
//! with no key and no network. This is the one place recx listens on the network.
//!
//! - `POST /v1/chat/completions`, streaming (server-sent events, as OpenAI's) and not;
//! - `GET /v1/models`, the one model served;
//! - an optional key (`--api-key-env NAME`): requests must send `Authorization: Bearer KEY` (or
//!   Azure's `api-key: KEY`), else 401;
//! - at most `concurrency` requests admitted at once (generating or waiting for the model);
//!   more get 429 with `Retry-After: 1`, which the judge's client honours;
//! - graceful shutdown: Ctrl-C (or [`Server::stop`]) stops accepting, lets the requests in
//!   flight finish, then stops the model thread.
//!
//! MODEL is a GGUF file or HF folder, `smollm2`, or the id of a run whose `train` stage is done:
//! then the run's merged model is served with its connectors, and a request may carry the
//! recommender side of its `<user>`/`<item>` tokens in the extra field `recx`:
//!
//! ```json
//! {"model": "...", "messages": [...],
//!  "recx": {"user": 12, "history": [3, 5, 9], "items": [17, 42]}}
//! ```
//!
//! `items` are the ids behind the prompt's `<item>` tokens in order; `history` is the user state
//! behind `<user>` (the recommender's item ids, oldest first); with only `user`, that user's whole
//! sequence from the run's dataset is used. The connector outputs are added to those tokens'
//! embeddings exactly as in evaluation. (Python's `openai` sends the field with
//! `extra_body={"recx": {...}}`.)
//!
//! The model lives on one thread (burn models are not shared across threads), which takes jobs
//! from a channel and decodes them one at a time with [`generate_streaming`]; the HTTP side runs
//! on tokio with axum. Decoding follows the request: `temperature` 0 is greedy, otherwise top-p
//! sampling seeded by `seed` (default 0), so the same request gets the same answer.

// Handlers refuse a request by returning the HTTP response itself as the error, as axum's own
// extractors do; boxing it would only add an allocation per refusal.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use burn::tensor::backend::Backend;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::error::{Error, Result};
use crate::llm::chat::{ChatTemplate, Role, TemplateName, Turn};
use crate::llm::device::{BackendTask, DeviceChoice};
use crate::llm::generate::{Decoding, EmbeddingAddition, GenerateOptions, generate_streaming};
use crate::llm::tokenizer::Tokenizer;
use crate::recommender::Query;
use crate::train::aligned::PlaceholderVectors;
use crate::train::{AlignedModel, FrozenRecommender, RecInputs, Sample};

/// What to serve.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// A GGUF file or an HF folder, prompted with `template`.
    Checkpoint {
        path: PathBuf,
        template: TemplateName,
    },
    /// An aligned run: its `train` folder (merged model, connectors, template), its recommender
    /// folder, and its data folder (users' sequences).
    Aligned {
        run_id: String,
        train_dir: PathBuf,
        recommender_dir: PathBuf,
        data_dir: PathBuf,
    },
}

impl ModelSource {
    /// Resolves `recx serve`'s MODEL argument: a path, `smollm2`, or a run id (prefix) in the
    /// store at `store_root`. Returns the source and the model name clients send.
    pub fn resolve(
        model: &str,
        template: TemplateName,
        store_root: &Path,
    ) -> Result<(ModelSource, String)> {
        if model == "smollm2" || Path::new(model).exists() {
            let path = crate::llm::assets::resolve_model(model)?;
            let name = if model == "smollm2" {
                "smollm2".to_string()
            } else {
                path.file_stem()
                    .map_or_else(|| model.to_string(), |s| s.to_string_lossy().into_owned())
            };
            return Ok((ModelSource::Checkpoint { path, template }, name));
        }
        if !store_root.join("db").is_dir() {
            return Err(Error::Config(format!(
                "MODEL `{model}` is not a model file or folder, not `smollm2`, and there is no \
                 store at {} to look it up as a run id (pass --store)",
                store_root.display()
            )));
        }
        let store = crate::store::Store::open(store_root)?;
        let run = store.find_run(model)?;
        let dir = |kind: &str| -> Result<PathBuf> {
            let hash = run
                .stages
                .iter()
                .find(|(k, _)| k == kind)
                .map(|(_, h)| h)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "run {} has no {kind} stage: only runs that align an LLM can be served",
                        run.run_id
                    ))
                })?;
            let dir = store.artifact_dir(kind, hash);
            if store.stage(hash)?.is_none() || !dir.is_dir() {
                return Err(Error::Config(format!(
                    "run {}: its {kind} stage is not done yet (`recx runs show {}`)",
                    run.run_id, run.run_id
                )));
            }
            Ok(dir)
        };
        let source = ModelSource::Aligned {
            run_id: run.run_id.clone(),
            train_dir: dir("train")?,
            recommender_dir: dir("recommender")?,
            data_dir: dir("data")?,
        };
        Ok((source, format!("recx-{}", run.run_id)))
    }

    fn describe(&self) -> String {
        match self {
            ModelSource::Checkpoint { path, template } => {
                format!("{} ({template} template)", path.display())
            }
            ModelSource::Aligned { run_id, .. } => {
                format!("run {run_id}'s aligned model with its connectors")
            }
        }
    }
}

/// Settings of one server.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub source: ModelSource,
    /// The model id of `/v1/models`; requests must name it.
    pub name: String,
    pub addr: SocketAddr,
    /// Requests must present this key (bearer or `api-key`); `None` = no check.
    pub api_key: Option<String>,
    /// Requests admitted at once (generating or queued); more get 429.
    pub concurrency: usize,
    pub device: DeviceChoice,
    /// `max_tokens` when a request sets none.
    pub default_max_tokens: usize,
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    name: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Server {
    /// Loads the model, binds the address and starts serving on background threads. Returns
    /// once requests can be sent.
    pub fn start(config: ServeConfig) -> Result<Server> {
        let (jobs, context) = start_model_thread(&config)?;
        let listen_error = |e: std::io::Error| {
            Error::Config(format!("serve: cannot listen on {}: {e}", config.addr))
        };
        let listener = std::net::TcpListener::bind(config.addr).map_err(listen_error)?;
        listener.set_nonblocking(true).map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        let state = Arc::new(AppState {
            name: config.name.clone(),
            api_key: config.api_key.clone(),
            admitted: Arc::new(Semaphore::new(config.concurrency.max(1))),
            concurrency: config.concurrency.max(1),
            jobs: std::sync::Mutex::new(jobs),
            default_max_tokens: config.default_max_tokens,
            context,
            created: chrono::Utc::now().timestamp(),
            counter: AtomicU64::new(0),
        });
        let (shutdown, signal) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("recx-serve-http".into())
            .spawn(move || serve_http(listener, state, signal))
            .map_err(|e| Error::Config(format!("serve: cannot start the HTTP thread: {e}")))?;
        tracing::info!(
            "serving {} ({}) at http://{addr}/v1",
            config.name,
            config.source.describe()
        );
        Ok(Server {
            addr,
            name: config.name,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/v1`, what clients take as their base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The model id clients send.
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// Stops accepting, lets the requests in flight finish, stops the model thread.
    pub fn stop(mut self) -> Result<()> {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        self.join()
    }

    /// Serves until Ctrl-C (the process's cancel flag), then shuts down gracefully.
    pub fn wait(mut self) -> Result<()> {
        self.join()
    }

    fn join(&mut self) -> Result<()> {
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::Config("serve: the HTTP thread panicked".into())),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
            let _ = self.join();
        }
    }
}

// ---- the HTTP side ----

struct AppState {
    name: String,
    api_key: Option<String>,
    admitted: Arc<Semaphore>,
    concurrency: usize,
    jobs: std::sync::Mutex<std_mpsc::Sender<Job>>,
    default_max_tokens: usize,
    /// Positions the model supports (prompt + answer).
    context: usize,
    created: i64,
    counter: AtomicU64,
}

/// How often the shutdown signal looks at the Ctrl-C flag.
const CANCEL_POLL: Duration = Duration::from_millis(100);

fn serve_http(
    listener: std::net::TcpListener,
    state: Arc<AppState>,
    signal: oneshot::Receiver<()>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Config(format!("serve: cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::Config(format!("serve: {e}")))?;
        let app = Router::new()
            .route("/v1/models", get(list_models))
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(state);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal(signal))
            .await
            .map_err(|e| Error::Config(format!("serve: {e}")))
    })
}

/// Resolves on [`Server::stop`] or Ctrl-C.
async fn shutdown_signal(signal: oneshot::Receiver<()>) {
    let cancelled = async {
        while !crate::pipeline::cancel_requested() {
            tokio::time::sleep(CANCEL_POLL).await;
        }
    };
    tokio::select! {
        _ = signal => {}
        _ = cancelled => {}
    }
    tracing::info!("serve: shutting down after the requests in flight");
}

/// An OpenAI-shaped error response.
fn error_response(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body =
        json!({"error": {"message": message.into(), "type": kind, "param": null, "code": null}});
    (status, axum::Json(body)).into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    error_response(StatusCode::BAD_REQUEST, "invalid_request_error", message)
}

/// Checks the key, if the server has one: `Authorization: Bearer KEY` or `api-key: KEY`.
fn authorize(state: &AppState, headers: &HeaderMap) -> std::result::Result<(), Response> {
    let Some(key) = &state.api_key else {
        return Ok(());
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let azure = headers.get("api-key").and_then(|v| v.to_str().ok());
    if bearer.or(azure).is_some_and(|k| same_key(k, key)) {
        Ok(())
    } else {
        Err(error_response(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "missing or wrong API key (send Authorization: Bearer KEY)",
        ))
    }
}

/// Compares keys in time independent of where they differ.
fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn list_models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    axum::Json(json!({
        "object": "list",
        // `max_model_len` as vLLM names it: clients size prompts without a failed request.
        "data": [{
            "id": state.name, "object": "model", "created": state.created, "owned_by": "recx",
            "max_model_len": state.context,
        }]
    }))
    .into_response()
}

async fn chat_completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorize(&state, &headers) {
        return r;
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("the body is not JSON: {e}")),
    };
    let parsed = match ChatRequest::parse(&request, &state) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(permit) = state.admitted.clone().try_acquire_owned() else {
        let mut r = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!(
                "recx serve is busy: {} requests are in flight (--concurrency)",
                state.concurrency
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stream = parsed.stream;
    let include_usage = parsed.include_usage;
    let job = Job {
        request: parsed,
        out: tx,
    };
    let sent = state
        .jobs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(job);
    if sent.is_err() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "the model thread has stopped",
        );
    }
    let id = format!(
        "chatcmpl-recx-{}",
        state.counter.fetch_add(1, Ordering::SeqCst)
    );
    let meta = Meta {
        id,
        created: chrono::Utc::now().timestamp(),
        model: state.name.clone(),
    };
    // The first piece says whether the request was accepted (validation happens on the model
    // thread, which knows the tokenizer): a refusal is an HTTP error, not a stream.
    let first = match rx.recv().await {
        Some(Piece::Failed { status, message }) => {
            return error_response(status, "invalid_request_error", message);
        }
        Some(p) => p,
        None => {
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the model thread dropped the request",
            );
        }
    };
    if stream {
        stream_response(meta, first, rx, permit, include_usage)
    } else {
        whole_response(meta, first, rx).await
    }
}

/// Identity of one completion.
#[derive(Clone)]
struct Meta {
    id: String,
    created: i64,
    model: String,
}

async fn whole_response(
    meta: Meta,
    first: Piece,
    mut rx: mpsc::UnboundedReceiver<Piece>,
) -> Response {
    let mut text = String::new();
    let mut piece = Some(first);
    loop {
        match piece {
            Some(Piece::Started) => {}
            Some(Piece::Text(t)) => text.push_str(&t),
            Some(Piece::Done(done)) => {
                return axum::Json(json!({
                    "id": meta.id,
                    "object": "chat.completion",
                    "created": meta.created,
                    "model": meta.model,
                    "system_fingerprint": fingerprint(),
                    "choices": [{
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": null,
                        "finish_reason": done.finish_reason,
                    }],
                    "usage": done.usage(),
                }))
                .into_response();
            }
            Some(Piece::Failed { status, message }) => {
                return error_response(status, "server_error", message);
            }
            None => {
                return error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "generation stopped without an answer",
                );
            }
        }
        piece = rx.recv().await;
    }
}

fn fingerprint() -> String {
    format!("recx-{}", env!("CARGO_PKG_VERSION"))
}

/// One `chat.completion.chunk`.
fn chunk(meta: &Meta, delta: Value, finish: Option<&str>) -> Event {
    let body = json!({
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": fingerprint(),
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
    });
    Event::default().data(body.to_string())
}

fn stream_response(
    meta: Meta,
    first: Piece,
    mut rx: mpsc::UnboundedReceiver<Piece>,
    permit: tokio::sync::OwnedSemaphorePermit,
    include_usage: bool,
) -> Response {
    let (events, out) =
        mpsc::unbounded_channel::<std::result::Result<Event, std::convert::Infallible>>();
    tokio::spawn(async move {
        // Held until the answer is complete (or the client is gone).
        let _permit = permit;
        let send = |e: Event| events.send(Ok(e)).is_ok();
        if !send(chunk(
            &meta,
            json!({"role": "assistant", "content": ""}),
            None,
        )) {
            return;
        }
        let mut piece = Some(first);
        loop {
            match piece {
                Some(Piece::Started) => {}
                Some(Piece::Text(t)) => {
                    if !send(chunk(&meta, json!({"content": t}), None)) {
                        return;
                    }
                }
                Some(Piece::Done(done)) => {
                    send(chunk(&meta, json!({}), Some(done.finish_reason)));
                    if include_usage {
                        let body = json!({
                            "id": meta.id, "object": "chat.completion.chunk",
                            "created": meta.created, "model": meta.model,
                            "choices": [], "usage": done.usage(),
                        });
                        send(Event::default().data(body.to_string()));
                    }
                    break;
                }
                Some(Piece::Failed { message, .. }) => {
                    let body = json!({"error": {"message": message, "type": "server_error"}});
                    send(Event::default().data(body.to_string()));
                    break;
                }
                None => break,
            }
            piece = rx.recv().await;
        }
        send(Event::default().data("[DONE]"));
    });
    Sse::new(tokio_stream::wrappers::UnboundedReceiverStream::new(out)).into_response()
}

// ---- requests ----

/// The recommender side of a request's placeholders (the `recx` field).
#[derive(Debug, Clone, Default, PartialEq)]
struct RecxField {
    user: Option<u32>,
    history: Option<Vec<u32>>,
    items: Vec<u32>,
}

/// What the model thread needs of a request.
#[derive(Debug, Clone)]
struct ChatRequest {
    system: Option<String>,
    turns: Vec<Turn>,
    max_tokens: usize,
    decoding: Decoding,
    stream: bool,
    include_usage: bool,
    recx: Option<RecxField>,
}

impl ChatRequest {
    fn parse(v: &Value, state: &AppState) -> std::result::Result<ChatRequest, Response> {
        let model = v["model"]
            .as_str()
            .ok_or_else(|| bad_request("`model` is required"))?;
        if model != state.name {
            return Err(error_response(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                format!(
                    "the model `{model}` does not exist here; this server serves `{}`",
                    state.name
                ),
            ));
        }
        let (system, turns) = parse_messages(&v["messages"]).map_err(bad_request)?;
        if v["n"].as_u64().is_some_and(|n| n != 1) {
            return Err(bad_request("`n` must be 1"));
        }
        let has_stop = match &v["stop"] {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            _ => true,
        };
        if has_stop {
            return Err(bad_request(
                "`stop` sequences are not supported; the chat template's end-of-turn token ends \
                 the answer",
            ));
        }
        let max_tokens = match v
            .get("max_completion_tokens")
            .filter(|x| !x.is_null())
            .or_else(|| v.get("max_tokens").filter(|x| !x.is_null()))
        {
            None => state.default_max_tokens,
            Some(x) => match x.as_u64() {
                Some(n) if n >= 1 => n as usize,
                _ => return Err(bad_request("`max_tokens` must be a positive integer")),
            },
        };
        let number = |key: &str, default: f64, lo: f64, hi: f64| match &v[key] {
            Value::Null => Ok(default),
            x => x
                .as_f64()
                .filter(|x| (lo..=hi).contains(x))
                .ok_or_else(|| bad_request(format!("`{key}` must be a number in [{lo}, {hi}]"))),
        };
        let temperature = number("temperature", 1.0, 0.0, 2.0)?;
        let top_p = number("top_p", 1.0, 0.0, 1.0)?;
        let seed = match &v["seed"] {
            Value::Null => 0,
            x => x
                .as_i64()
                .ok_or_else(|| bad_request("`seed` must be an integer"))? as u64,
        };
        let decoding = if temperature == 0.0 {
            Decoding::Greedy
        } else {
            Decoding::Sample {
                temperature: temperature as f32,
                top_p: top_p as f32,
                seed,
            }
        };
        Ok(ChatRequest {
            system,
            turns,
            max_tokens,
            decoding,
            stream: v["stream"].as_bool().unwrap_or(false),
            include_usage: v["stream_options"]["include_usage"]
                .as_bool()
                .unwrap_or(false),
            recx: parse_recx(&v["recx"]).map_err(bad_request)?,
        })
    }
}

/// The text of a message's `content`: a string, or an array of text parts.
fn content_text(content: &Value) -> std::result::Result<String, String> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                (Some("text"), Some(t)) => Ok(t.to_string()),
                _ => Err("only text content parts are supported".to_string()),
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(|parts| parts.concat()),
        _ => Err("a message's `content` must be a string or text parts".into()),
    }
}

/// System (or developer) messages become the template's system message; the rest must be user
/// and assistant turns.
fn parse_messages(messages: &Value) -> std::result::Result<(Option<String>, Vec<Turn>), String> {
    let list = messages
        .as_array()
        .filter(|m| !m.is_empty())
        .ok_or("`messages` must be a non-empty array")?;
    let mut system: Option<String> = None;
    let mut turns = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let text = content_text(&m["content"]).map_err(|e| format!("messages[{i}]: {e}"))?;
        match m["role"].as_str() {
            Some("system" | "developer") => {
                let s = system.get_or_insert_with(String::new);
                if !s.is_empty() {
                    s.push('\n');
                }
                s.push_str(&text);
            }
            Some("user") => turns.push(Turn::user(text)),
            Some("assistant") => turns.push(Turn::assistant(text)),
            other => {
                return Err(format!(
                    "messages[{i}]: role {other:?} is not supported (system, user, assistant)"
                ));
            }
        }
    }
    if !turns.last().is_some_and(|t| t.role == Role::User) {
        return Err("the last message must be the user's".into());
    }
    Ok((system, turns))
}

fn parse_recx(v: &Value) -> std::result::Result<Option<RecxField>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let obj = v
        .as_object()
        .ok_or("`recx` must be an object {user, history, items}")?;
    for key in obj.keys() {
        if !matches!(key.as_str(), "user" | "history" | "items") {
            return Err(format!("`recx.{key}` is unknown (user, history, items)"));
        }
    }
    let id = |x: &Value, what: &str| {
        x.as_u64()
            .filter(|&n| n <= u64::from(u32::MAX))
            .map(|n| n as u32)
            .ok_or_else(|| format!("`{what}` must hold non-negative integer ids"))
    };
    let ids = |x: &Value, what: &str| -> std::result::Result<Vec<u32>, String> {
        match x {
            Value::Null => Ok(Vec::new()),
            Value::Array(a) => a.iter().map(|x| id(x, what)).collect(),
            _ => Err(format!("`{what}` must be an array of item ids")),
        }
    };
    Ok(Some(RecxField {
        user: match &obj.get("user") {
            None | Some(Value::Null) => None,
            Some(x) => Some(id(x, "recx.user")?),
        },
        history: match obj.get("history") {
            None | Some(Value::Null) => None,
            Some(x) => Some(ids(x, "recx.history")?),
        },
        items: ids(obj.get("items").unwrap_or(&Value::Null), "recx.items")?,
    }))
}

// ---- the model thread ----

struct Job {
    request: ChatRequest,
    out: mpsc::UnboundedSender<Piece>,
}

/// What the model thread reports about one job, in order: `Started` or `Failed`, then text
/// pieces, then `Done`.
enum Piece {
    Started,
    Text(String),
    Done(Done),
    Failed { status: StatusCode, message: String },
}

struct Done {
    finish_reason: &'static str,
    prompt_tokens: usize,
    completion_tokens: usize,
}

impl Done {
    fn usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        })
    }
}

/// Starts the thread that owns the model; returns the job queue and the model's context length
/// once the model is loaded.
fn start_model_thread(config: &ServeConfig) -> Result<(std_mpsc::Sender<Job>, usize)> {
    let (jobs, queue) = std_mpsc::channel::<Job>();
    let (ready, loaded) = std_mpsc::channel::<Result<usize>>();
    let (source, device) = (config.source.clone(), config.device);
    std::thread::Builder::new()
        .name("recx-serve-model".into())
        .spawn(move || {
            let task = ModelTask {
                source,
                queue,
                ready: ready.clone(),
            };
            if let Err(e) = device.run(task) {
                let _ = ready.send(Err(e));
            }
        })
        .map_err(|e| Error::Config(format!("serve: cannot start the model thread: {e}")))?;
    let context = loaded
        .recv()
        .map_err(|_| Error::Config("serve: the model thread stopped while loading".into()))??;
    Ok((jobs, context))
}

struct ModelTask {
    source: ModelSource,
    queue: std_mpsc::Receiver<Job>,
    ready: std_mpsc::Sender<Result<usize>>,
}

impl BackendTask for ModelTask {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device) -> Result<()> {
        let served = Served::<B>::load(&self.source, &device)?;
        let _ = self.ready.send(Ok(served.context()));
        while let Ok(job) = self.queue.recv() {
            let out = job.out.clone();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                served.answer(&job.request, &job.out)
            }));
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(refusal)) => Some(refusal),
                Err(_) => Some((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "generation failed (the model thread caught a panic; see the server log)"
                        .into(),
                )),
            };
            if let Some((status, message)) = failure {
                let _ = out.send(Piece::Failed { status, message });
            }
        }
        Ok(())
    }
}

/// A loaded model with everything needed to answer: tokenizer, template and, for aligned runs,
/// the connectors' recommender and the users' sequences.
struct Served<B: Backend> {
    model: AlignedModel<B>,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    recommender: Option<FrozenRecommender<B>>,
    /// `sequences[uid]`, for requests that name a user without a history.
    sequences: Vec<Vec<u32>>,
    n_items: usize,
    device: B::Device,
}

type Refusal = (StatusCode, String);

fn refuse(message: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, message.into())
}

impl<B: Backend> Served<B> {
    fn load(source: &ModelSource, device: &B::Device) -> Result<Self> {
        match source {
            ModelSource::Checkpoint { path, template } => {
                let tokenizer = crate::llm::cli::load_tokenizer(path, None)?;
                let (llm, _) = crate::llm::load_model::<B>(path, device)?;
                Ok(Served {
                    model: AlignedModel {
                        llm,
                        user_connector: None,
                        item_connector: None,
                    },
                    tokenizer,
                    template: ChatTemplate::new(*template),
                    recommender: None,
                    sequences: Vec::new(),
                    n_items: 0,
                    device: device.clone(),
                })
            }
            ModelSource::Aligned {
                train_dir,
                recommender_dir,
                data_dir,
                ..
            } => {
                let (model, tokenizer, info) = crate::eval::load_aligned::<B>(train_dir, device)?;
                let (recommender, sequences, n_items) = if info.rec_dim > 0 {
                    let data = crate::data::Dataset::load(data_dir)?;
                    (
                        Some(FrozenRecommender::load(recommender_dir, device)?),
                        data.sequences,
                        data.n_items,
                    )
                } else {
                    (None, Vec::new(), 0)
                };
                Ok(Served {
                    model,
                    tokenizer,
                    template: ChatTemplate::new(info.template),
                    recommender,
                    sequences,
                    n_items,
                    device: device.clone(),
                })
            }
        }
    }

    fn context(&self) -> usize {
        self.model.llm.rope.max_positions()
    }

    /// Answers one request, sending its pieces to `out`. A refusal is returned before anything
    /// is sent.
    fn answer(
        &self,
        req: &ChatRequest,
        out: &mpsc::UnboundedSender<Piece>,
    ) -> std::result::Result<(), Refusal> {
        let mut template = self.template.clone();
        if let Some(system) = &req.system {
            template = template.with_system(system.clone());
        }
        let text = template
            .prompt_conversation(&req.turns)
            .map_err(|e| refuse(e.to_string()))?;
        let ids = self
            .tokenizer
            .encode(&text, true)
            .map_err(|e| refuse(e.to_string()))?;
        let context = self.context();
        if ids.len() >= context {
            return Err(refuse(format!(
                "the prompt has {} tokens; this model supports {context} in all",
                ids.len()
            )));
        }
        let additions = self.additions(&ids, req.recx.as_ref())?;
        let opts = GenerateOptions {
            max_new_tokens: req.max_tokens.min(context - ids.len()),
            // An answer has at least one token (as evaluation decodes: an empty answer is
            // useless to a client, and the judge's client counts it as a failure).
            min_new_tokens: 1,
            stop_tokens: template.stop_token_ids(&self.tokenizer),
            banned_tokens: template.banned_ids(&self.tokenizer),
            decoding: req.decoding.clone(),
        };
        if out.send(Piece::Started).is_err() {
            return Ok(());
        }
        let mut tokens: Vec<u32> = Vec::new();
        let mut sent = String::new();
        let mut stopped = false;
        generate_streaming(
            &self.model.llm,
            std::slice::from_ref(&ids),
            &additions,
            &opts,
            &mut |_, token| {
                if opts.stop_tokens.contains(&token) {
                    stopped = true;
                    return true;
                }
                tokens.push(token);
                let Ok(text) = self.tokenizer.decode(&tokens, true) else {
                    return true;
                };
                // A character cut between tokens decodes as U+FFFD; wait for its other bytes.
                if text.ends_with('\u{FFFD}')
                    || !text.starts_with(&sent)
                    || text.len() == sent.len()
                {
                    return true;
                }
                let piece = text[sent.len()..].to_string();
                sent = text;
                out.send(Piece::Text(piece)).is_ok()
            },
        );
        if let Ok(text) = self.tokenizer.decode(&tokens, true)
            && text.len() > sent.len()
            && text.starts_with(&sent)
        {
            let _ = out.send(Piece::Text(text[sent.len()..].to_string()));
        }
        let _ = out.send(Piece::Done(Done {
            finish_reason: if stopped { "stop" } else { "length" },
            prompt_tokens: ids.len(),
            completion_tokens: tokens.len() + usize::from(stopped),
        }));
        Ok(())
    }

    /// The connector outputs for the prompt's `<user>`/`<item>` tokens, from the request's
    /// `recx` field.
    fn additions(
        &self,
        ids: &[u32],
        recx: Option<&RecxField>,
    ) -> std::result::Result<Vec<EmbeddingAddition<B>>, Refusal> {
        let placeholders = self
            .tokenizer
            .placeholders()
            .filter(|_| self.recommender.is_some());
        let Some(ph) = placeholders else {
            return match recx {
                Some(_) => Err(refuse(
                    "this model has no connectors: `recx` applies only to an aligned run whose \
                     mode injects recommender embeddings",
                )),
                None => Ok(Vec::new()),
            };
        };
        let recx = recx.cloned().unwrap_or_default();
        let user_tokens: Vec<usize> = positions(ids, ph.user);
        let item_positions: Vec<usize> = positions(ids, ph.item);
        if item_positions.len() != recx.items.len() {
            return Err(refuse(format!(
                "the prompt has {} <item> tokens but `recx.items` gives {} ids",
                item_positions.len(),
                recx.items.len()
            )));
        }
        if let Some(&bad) = recx
            .items
            .iter()
            .chain(recx.history.iter().flatten())
            .find(|&&i| i == 0 || i as usize > self.n_items)
        {
            return Err(refuse(format!(
                "item id {bad} is not in the run's dataset (1..={})",
                self.n_items
            )));
        }
        let history: Option<Vec<u32>> = match (&recx.history, recx.user) {
            (Some(h), _) => Some(h.clone()),
            (None, Some(uid)) => Some(
                self.sequences
                    .get(uid as usize)
                    .filter(|s| uid > 0 && !s.is_empty())
                    .ok_or_else(|| {
                        refuse(format!(
                            "user {uid} is not in the run's dataset (1..={})",
                            self.sequences.len().saturating_sub(1)
                        ))
                    })?
                    .clone(),
            ),
            (None, None) => None,
        };
        if !user_tokens.is_empty() && history.as_ref().is_none_or(Vec::is_empty) {
            return Err(refuse(
                "the prompt has a <user> token: give `recx.user` (a user id) or `recx.history` \
                 (item ids, oldest first)",
            ));
        }
        if user_tokens.is_empty() && item_positions.is_empty() {
            return Ok(Vec::new());
        }
        let users: Vec<Query<'_>> = history
            .as_deref()
            .map(|h| Query {
                uid: recx.user.unwrap_or(0),
                history: h,
            })
            .into_iter()
            .collect();
        let rec: RecInputs = self
            .recommender
            .as_ref()
            .expect("placeholders imply a recommender")
            .inputs(&users, &self.device);
        let sample = Sample {
            task: "chat",
            record: 0,
            ids: ids.to_vec(),
            loss_mask: vec![false; ids.len()],
            user_row: (!users.is_empty()).then_some(0),
            user_tokens,
            item_tokens: item_positions.into_iter().zip(recx.items).collect(),
        };
        let Some(PlaceholderVectors { at, vectors }) =
            self.model.placeholder_vectors(&[&sample], &rec.features())
        else {
            return Ok(Vec::new());
        };
        Ok(at
            .into_iter()
            .enumerate()
            .map(|(k, (row, pos))| EmbeddingAddition {
                row,
                pos,
                vector: vectors.clone().slice(k..k + 1).squeeze_dim(0),
            })
            .collect())
    }
}

fn positions(ids: &[u32], token: u32) -> Vec<usize> {
    ids.iter()
        .enumerate()
        .filter(|&(_, &t)| t == token)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_a_system_message_and_turns() {
        let m = json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "!"}]},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Why?"}
        ]);
        let (system, turns) = parse_messages(&m).unwrap();
        assert_eq!(system.as_deref(), Some("Be brief."));
        assert_eq!(turns.len(), 3);
        assert_eq!(turns[0].text, "Hi!");
        assert_eq!(turns[2].role, Role::User);
        assert!(parse_messages(&json!([{"role": "assistant", "content": "x"}])).is_err());
        assert!(parse_messages(&json!([{"role": "tool", "content": "x"}])).is_err());
        assert!(parse_messages(&json!([])).is_err());
    }

    #[test]
    fn the_recx_field_is_checked() {
        assert_eq!(parse_recx(&Value::Null), Ok(None));
        assert_eq!(
            parse_recx(&json!({"user": 3, "items": [4, 5]})),
            Ok(Some(RecxField {
                user: Some(3),
                history: None,
                items: vec![4, 5]
            }))
        );
        assert!(
            parse_recx(&json!({"users": 3}))
                .unwrap_err()
                .contains("recx.users")
        );
        assert!(parse_recx(&json!({"items": [-1]})).is_err());
        assert!(parse_recx(&json!({"history": 4})).is_err());
    }

    #[test]
    fn keys_compare_whole() {
        assert!(same_key("abc", "abc"));
        assert!(!same_key("abc", "abd"));
        assert!(!same_key("abc", "abcd"));
    }
}
