//! The judge's client against an Azure OpenAI deployment on loopback: requests go to
//! `/openai/deployments/{deployment}/chat/completions?api-version=…` with the key in an `api-key`
//! header (never as a bearer token), and the server refuses anything else. The judge stage and
//! the user-summary writer both send through this client and the `[judge]` endpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use recx::openai::Azure;

use crate::judge_support::MemCache;

const DEPLOYMENT: &str = "gpt4-judge";
const VERSION: &str = "2024-10-21";

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    api_key: Option<String>,
    authorization: bool,
}

/// Answers `<score>C</score>` to requests with the Azure URL shape and the right `api-key`;
/// 404 to another path, 401 without the key.
fn azure_server(key: String) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let (mut length, mut api_key, mut authorization) = (0, None, false);
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                let value = value.trim().to_string();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse().unwrap(),
                    "api-key" => api_key = Some(value),
                    "authorization" => authorization = true,
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let request_line = request_line.trim_end().to_string();
            let want = format!(
                "POST /openai/deployments/{DEPLOYMENT}/chat/completions?api-version={VERSION} HTTP/1.1"
            );
            let (status, payload) = if request_line != want {
                (
                    "404 Not Found",
                    r#"{"error":{"message":"no such deployment"}}"#.to_string(),
                )
            } else if api_key.as_deref() != Some(key.as_str()) || authorization {
                (
                    "401 Unauthorized",
                    r#"{"error":{"message":"bad key"}}"#.to_string(),
                )
            } else {
                let reply = serde_json::json!({
                    "id": "a", "object": "chat.completion", "created": 0, "model": "gpt-4",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": "<score>C</score>"}}]
                });
                ("200 OK", reply.to_string())
            };
            log.lock().unwrap().push(Seen {
                request_line,
                api_key,
                authorization,
            });
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                payload.len()
            );
        }
    });
    (port, seen)
}

fn azure_section(port: u16, deployment: &str) -> recx::judge::JudgeSection {
    recx::judge::JudgeSection {
        enabled: true,
        model: "gpt-4".into(),
        base_url: String::new(),
        azure: Some(Azure {
            endpoint: format!("http://127.0.0.1:{port}/"),
            deployment: deployment.into(),
            api_version: VERSION.into(),
        }),
        // The key is read from PATH, which is always set (see judge_support::section).
        api_key_env: "PATH".into(),
        max_retries: 0,
        timeout_s: 10.0,
        ..Default::default()
    }
}

#[test]
fn azure_deployments_get_their_url_and_api_key_header() {
    let key = std::env::var("PATH").unwrap();
    let (port, seen) = azure_server(key.clone());
    let cache = MemCache::default();
    let s = azure_section(port, DEPLOYMENT);
    let answers = crate::judge_support::ask(&s, &["rate this", "and this"], &cache).unwrap();
    assert_eq!(answers, ["<score>C</score>", "<score>C</score>"]);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let want = format!(
        "POST /openai/deployments/{DEPLOYMENT}/chat/completions?api-version={VERSION} HTTP/1.1"
    );
    for r in &seen {
        assert_eq!(r.request_line, want);
        assert_eq!(r.api_key.as_deref(), Some(key.as_str()));
        assert!(
            !r.authorization,
            "Azure takes the key in api-key, not as a bearer token"
        );
    }

    // Another deployment is another cache entry and another URL (here a 404, not retried).
    let other = azure_section(port, "gpt35");
    let err = crate::judge_support::ask(&other, &["rate this"], &cache)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("404") && err.contains("Azure deployment gpt35"),
        "{err}"
    );

    // The plain-OpenAI shape of the same section is refused by the Azure server.
    let plain = recx::judge::JudgeSection {
        azure: None,
        base_url: format!("http://127.0.0.1:{port}/v1"),
        ..azure_section(port, DEPLOYMENT)
    };
    let err = crate::judge_support::ask(&plain, &["fresh prompt"], &cache)
        .unwrap_err()
        .to_string();
    assert!(err.contains("404"), "{err}");
}
