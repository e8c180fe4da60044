//! A scripted OpenAI-compatible server on loopback for the judge client's tests: each request
//! gets the reply a script chooses by its number (errors, delays, empty answers), and the
//! server records how many requests came and when.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What the scripted server answers to its `n`-th request (0-based).
pub struct Reply {
    pub status: &'static str,
    pub headers: String,
    pub body: String,
    pub delay: std::time::Duration,
}

pub fn ok_reply(content: &str) -> Reply {
    let body = serde_json::json!({
        "id": "c", "object": "chat.completion", "created": 0, "model": "judge",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}]
    });
    Reply {
        status: "200 OK",
        headers: String::new(),
        body: body.to_string(),
        delay: std::time::Duration::ZERO,
    }
}

pub fn error_reply(status: &'static str, headers: &str) -> Reply {
    Reply {
        status,
        headers: headers.to_string(),
        body: r#"{"error":{"message":"scripted failure","type":"x"}}"#.into(),
        delay: std::time::Duration::ZERO,
    }
}

pub type Script = dyn Fn(usize) -> Reply + Send + Sync;

/// Serves each connection on its own thread (a slow answer does not block the others) with
/// the reply `script` gives for the request's number; returns the port, the request counter
/// and the arrival times.
pub fn scripted_server(
    script: Arc<Script>,
) -> (
    u16,
    Arc<AtomicUsize>,
    Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let times = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (c, t) = (count.clone(), times.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (script, c, t) = (script.clone(), c.clone(), t.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let n = c.fetch_add(1, Ordering::SeqCst);
                t.lock().unwrap().push(std::time::Instant::now());
                let reply = script(n);
                std::thread::sleep(reply.delay);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {}\r\nContent-Type: application/json\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                    reply.status,
                    reply.headers,
                    reply.body.len(),
                    reply.body
                );
            });
        }
    });
    (port, count, times)
}

/// A judge section for the loopback server. The scripted server checks no key, and setting a
/// variable while other test threads run is not sound, so the key is read from `PATH`, which is
/// always set (it only ever travels to 127.0.0.1).
pub fn section(port: u16, max_retries: usize, timeout_s: f64) -> recx::judge::JudgeSection {
    recx::judge::JudgeSection {
        enabled: true,
        model: "judge".into(),
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key_env: "PATH".into(),
        max_retries,
        timeout_s,
        concurrency: 2,
        ..Default::default()
    }
}

/// An in-memory response cache.
#[derive(Default)]
pub struct MemCache(pub std::sync::Mutex<std::collections::BTreeMap<String, String>>);

impl recx::pipeline::ResponseCache for MemCache {
    fn get(&self, key: &str) -> recx::Result<Option<String>> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    fn put(&self, key: &str, text: &str) -> recx::Result<()> {
        self.0.lock().unwrap().insert(key.into(), text.into());
        Ok(())
    }
}

pub fn ask(
    s: &recx::judge::JudgeSection,
    prompts: &[&str],
    cache: &MemCache,
) -> recx::Result<Vec<String>> {
    let prompts: Vec<String> = prompts.iter().map(|p| p.to_string()).collect();
    recx::openai::ask_all(&s.endpoint(), None, &prompts, Some(cache), &|| {})
}
