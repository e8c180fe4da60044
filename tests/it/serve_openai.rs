//! `recx serve` answers OpenAI clients: the server runs in-process on a loopback port over a tiny
//! Llama saved as an HF folder, and async-openai (and Python's `openai`, where installed) talk
//! to it. The answers must be what recx's own greedy generation gives for the same prompt, the
//! streamed pieces must add up to the whole answer, and a wrong key must get 401.

use std::path::{Path, PathBuf};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
};
use burn::backend::Flex;
use recx::llm::chat::{ChatTemplate, TemplateName};
use recx::llm::generate::{Decoding, GenerateOptions, generate};
use recx::llm::tokenizer::Tokenizer;
use recx::llm::{LlamaConfig, load_model, save_hf};
use recx::serve::{ModelSource, ServeConfig, Server};
use tokio_stream::StreamExt;

const KEY: &str = "sk-serve-test-7";
const QUESTION: &str = "Which game should I play next?";

/// A one-layer Llama with a chatml BPE vocabulary, saved as an HF folder under `dir`.
pub fn tiny_hf_model(dir: &Path) -> PathBuf {
    let template = ChatTemplate::new(TemplateName::Chatml);
    let texts: Vec<String> = (0..40)
        .map(|i| template.training_text(&format!("question {i} about games"), "Yes, play Zelda"))
        .collect();
    let tok = Tokenizer::train_bpe(texts.iter(), &template.bpe_train_config(320)).unwrap();
    let config = LlamaConfig::new(tok.vocab_size(), 32, 64, 1, 2, 1);
    let model = {
        let _rng = crate::serial::burn_rng();
        config.init::<Flex>(&Default::default(), 11)
    };
    let out = dir.join("tiny");
    save_hf(&model, &config, None, &out).unwrap();
    tok.save_pretrained(&out, None).unwrap();
    out
}

/// Starts a server for the HF folder on a free loopback port.
pub fn start(model: &Path, key: Option<&str>, concurrency: usize) -> Server {
    Server::start(ServeConfig {
        source: ModelSource::Checkpoint {
            path: model.to_path_buf(),
            template: TemplateName::Chatml,
        },
        name: "tiny".into(),
        addr: "127.0.0.1:0".parse().unwrap(),
        api_key: key.map(String::from),
        concurrency,
        device: recx::llm::DeviceChoice::Cpu,
        default_max_tokens: 16,
    })
    .unwrap()
}

/// What recx's own greedy generation answers to [`QUESTION`] in `max_tokens` tokens.
fn expected_answer(model: &Path, max_tokens: usize) -> String {
    let tok = Tokenizer::from_file(&model.join("tokenizer.json")).unwrap();
    let (llm, _) = load_model::<Flex>(model, &Default::default()).unwrap();
    let template = ChatTemplate::new(TemplateName::Chatml);
    let prompt = template.prompt_ids(&tok, QUESTION).unwrap();
    let stops = template.stop_token_ids(&tok);
    let opts = GenerateOptions {
        max_new_tokens: max_tokens,
        min_new_tokens: 1,
        stop_tokens: stops.clone(),
        banned_tokens: template.banned_ids(&tok),
        decoding: Decoding::Greedy,
    };
    let mut tokens = generate(&llm, &[prompt], &[], &opts)[0][0].tokens.clone();
    tokens.retain(|t| !stops.contains(t));
    tok.decode(&tokens, true).unwrap()
}

fn client(server: &Server, key: &str) -> Client<OpenAIConfig> {
    recx::openai::install_tls_provider();
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(server.base_url())
            .with_api_key(key),
    )
}

fn request(model: &str, max_tokens: u32) -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages(vec![
            ChatCompletionRequestUserMessage::from(QUESTION).into(),
        ])
        .temperature(0.0)
        .max_tokens(max_tokens)
        .build()
        .unwrap()
}

fn status_of(e: &OpenAIError) -> Option<u16> {
    match e {
        OpenAIError::ApiError(r) => Some(r.status_code.as_u16()),
        _ => None,
    }
}

#[test]
fn async_openai_gets_recx_answers_whole_and_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_hf_model(dir.path());
    let expected = expected_answer(&model, 12);
    assert!(!expected.is_empty(), "the fixture model must say something");
    let server = start(&model, Some(KEY), 4);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = client(&server, KEY);

        let models = c.models().list().await.unwrap();
        let ids: Vec<&str> = models.data.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["tiny"]);

        let whole = c.chat().create(request("tiny", 12)).await.unwrap();
        let choice = &whole.choices[0];
        assert_eq!(choice.message.content.as_deref(), Some(expected.as_str()));
        let usage = whole.usage.as_ref().unwrap();
        assert!(
            usage.prompt_tokens > 5 && usage.completion_tokens >= 1,
            "{usage:?}"
        );

        let mut stream = c.chat().create_stream(request("tiny", 12)).await.unwrap();
        let (mut text, mut pieces, mut finish) = (String::new(), 0, None);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            for ch in chunk.choices {
                if let Some(t) = ch.delta.content {
                    text.push_str(&t);
                    pieces += usize::from(!t.is_empty());
                }
                finish = ch.finish_reason.or(finish);
            }
        }
        assert_eq!(text, expected, "the streamed pieces add up to the answer");
        assert!(pieces >= 2, "streamed in pieces, not at once ({pieces})");
        assert!(finish.is_some(), "the last chunk carries a finish reason");

        let wrong = client(&server, "sk-wrong")
            .models()
            .list()
            .await
            .unwrap_err();
        assert_eq!(status_of(&wrong), Some(401), "{wrong}");
        let wrong = client(&server, "sk-wrong")
            .chat()
            .create(request("tiny", 4))
            .await
            .unwrap_err();
        assert_eq!(status_of(&wrong), Some(401), "{wrong}");
        let unknown = c.chat().create(request("gpt-4", 4)).await.unwrap_err();
        assert_eq!(status_of(&unknown), Some(404), "{unknown}");
    });
    server.stop().unwrap();
}

#[test]
fn requests_beyond_the_concurrency_limit_get_429_and_bad_ones_400() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_hf_model(dir.path());
    let server = start(&model, None, 1);
    let url = format!("{}/chat/completions", server.base_url());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        recx::openai::install_tls_provider();
        let http = reqwest::Client::new();
        let body = |max_tokens: u32, extra: serde_json::Value| {
            let mut b = serde_json::json!({
                "model": "tiny", "temperature": 0, "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": QUESTION}], "stream": true
            });
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            b
        };
        // Six requests at once with one slot: the first admitted holds it for its whole answer
        // (hundreds of tokens), the others arrive meanwhile and are turned away.
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (http, url, b) = (
                    http.clone(),
                    url.clone(),
                    body(300, serde_json::json!({"stream": false})),
                );
                tokio::spawn(async move {
                    let r = http.post(&url).json(&b).send().await.unwrap();
                    let retry = r
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_string());
                    (r.status().as_u16(), retry)
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        assert!(statuses.iter().any(|s| s.0 == 200), "{statuses:?}");
        assert!(statuses.iter().any(|s| s.0 == 429), "{statuses:?}");
        for s in &statuses {
            assert!(
                s.0 == 200 || (s.0 == 429 && s.1.as_deref() == Some("1")),
                "{statuses:?}"
            );
        }
        // The slot is free again; a checkpoint has no connectors for a `recx` field.
        let r = http
            .post(&url)
            .json(&body(
                2,
                serde_json::json!({"stream": false, "recx": {"items": [1]}}),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let text = r.text().await.unwrap();
        assert!(text.contains("no connectors"), "{text}");
        let r = http
            .post(&url)
            .json(&body(2, serde_json::json!({"stream": false, "n": 3})))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    });
    server.stop().unwrap();
}

const PY_CLIENT: &str = r#"
import json, sys
import openai
base, key, question = sys.argv[1:4]
c = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
msgs = [{"role": "user", "content": question}]
whole = c.chat.completions.create(model="tiny", messages=msgs, max_tokens=12, temperature=0)
stream = c.chat.completions.create(model="tiny", messages=msgs, max_tokens=12, temperature=0, stream=True)
streamed = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
listing = list(c.models.list())
models = [m.id for m in listing]
max_len = [(m.model_extra or {}).get("max_model_len") for m in listing]
try:
    openai.OpenAI(base_url=base, api_key="wrong", max_retries=0).models.list()
    wrong = None
except openai.AuthenticationError as e:
    wrong = e.status_code
print(json.dumps({"whole": whole.choices[0].message.content, "streamed": streamed,
                  "models": models, "max_len": max_len, "wrong": wrong}))
"#;

#[test]
fn python_openai_gets_the_same_answers() {
    let Some(python) = crate::llm_tokenizer_fixtures::python_with("openai") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_hf_model(dir.path());
    let expected = expected_answer(&model, 12);
    let server = start(&model, Some(KEY), 4);
    let out = std::process::Command::new(&python)
        .args(["-c", PY_CLIENT, &server.base_url(), KEY, QUESTION])
        .output()
        .unwrap();
    server.stop().unwrap();
    assert!(
        out.status.success(),
        "python openai client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["whole"], expected.as_str());
    assert_eq!(got["streamed"], expected.as_str());
    assert_eq!(got["models"], serde_json::json!(["tiny"]));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        got["max_len"][0], config["max_position_embeddings"],
        "/v1/models states the model's context length"
    );
    assert_eq!(got["wrong"], 401);
}
