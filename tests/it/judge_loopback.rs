//! The LLM judge against a loopback OpenAI-compatible server standing in for GPT-4: the whole
//! pipeline runs to the judge, ratings follow the original's strict `<score>x</score>` rule,
//! answers are cached in the store (a forced rerun sends no request), and the API key, which
//! the server checks, appears nowhere under the store.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use recx::data::Dataset;
use recx::pipeline::registry;
use recx::plan::Plan;
use recx::spec::Spec;
use recx::store::Store;

use crate::e2e_support::{TINY_LLM, tiny_pipeline_spec};
use crate::judge_support;

use judge_support::{MemCache, Reply, ask, error_reply, ok_reply, scripted_server, section};

const SECRET: &str = "sk-test-SECRET-4242";
const SUMMARY: &str = "A collector of action games who favours PlayStation exclusives.";

/// The answer to one chat request: judge prompts without the original's system message get
/// an answer that is no rating; other judge prompts get `<score>D</score>` for "Label: Yes"
/// and an answer the strict rule rejects otherwise; summary queries get a summary.
fn answer_to(request: &serde_json::Value) -> &'static str {
    let messages = request["messages"].as_array().unwrap();
    let prompt = messages.last().unwrap()["content"].as_str().unwrap();
    let system = messages
        .iter()
        .find(|m| m["role"] == "system")
        .and_then(|m| m["content"].as_str());
    if !prompt.contains("Assistant's output") {
        SUMMARY
    } else if system != Some(recx::judge::ORIGINAL_SYSTEM) {
        "no system message"
    } else if prompt.contains("Label: Yes") {
        "<score>D</score>"
    } else {
        "I would say <score>b</score>"
    }
}

/// Serves chat completions answered by [`answer_to`]. Requests without the right bearer token
/// get 401.
fn serve(listener: TcpListener, requests: Arc<AtomicUsize>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let (mut length, mut authorized) = (0usize, false);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line.trim_end() == format!("authorization: Bearer {SECRET}")
                || line.trim_end() == format!("Authorization: Bearer {SECRET}")
            {
                authorized = true;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let body = String::from_utf8_lossy(&body);
        let (status, payload) = if !authorized {
            (
                "401 Unauthorized",
                r#"{"error":{"message":"bad key","type":"auth"}}"#.to_string(),
            )
        } else {
            requests.fetch_add(1, Ordering::SeqCst);
            let answer = answer_to(&serde_json::from_str(&body).unwrap());
            let reply = serde_json::json!({
                "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "judge",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": answer}}],
                "usage": null
            });
            ("200 OK", reply.to_string())
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
            payload.len()
        );
    }
}

fn spec_text(port: u16) -> String {
    spec_with(port, "", true)
}

fn spec_with(port: u16, alignment_extra: &str, judge: bool) -> String {
    let llm = format!(
        r#"[judge]
enabled = {judge}
model = "judge"
base_url = "http://127.0.0.1:{port}/v1"
api_key_env = "RECX_TEST_JUDGE_KEY"
{TINY_LLM}"#
    );
    tiny_pipeline_spec(
        "judge",
        3,
        &format!("mode = \"behaviour\"\n{alignment_extra}"),
        &llm,
        // The external-ICL baseline row asks the same endpoint; these tests count the judge's
        // requests.
        r#"rows = ["random", "popularity"]"#,
    )
}

fn recx(store: &Path, spec: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_recx"));
    c.arg("--quiet")
        .arg("--store")
        .arg(store)
        .arg("run")
        .arg(spec);
    c
}

/// Runs the spec with the API key in the environment and expects success.
fn run_with_key(store: &Path, spec: &Path, args: &[&str]) {
    let out = recx(store, spec)
        .args(args)
        .env("RECX_TEST_JUDGE_KEY", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn files_contain(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let path = e.unwrap().path();
        if path.is_dir() {
            files_contain(&path, needle)
        } else {
            std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        }
    })
}

#[test]
fn judge_rates_caches_and_keeps_the_key_secret() {
    let (port, requests) = start_server();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("judge.toml");
    std::fs::write(&spec, spec_text(port)).unwrap();
    let store_dir = dir.path().join("results");

    // Without the key the stage fails and names the variable.
    let out = recx(&store_dir, &spec).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RECX_TEST_JUDGE_KEY"), "{stderr}");

    run_with_key(&store_dir, &spec, &[]);
    assert_eq!(
        requests.load(Ordering::SeqCst),
        4,
        "one request per explanation"
    );

    let plan = Plan::resolve(&Spec::load(&spec).unwrap(), &registry()).unwrap();
    let run_id = plan.runs[0].run_id.clone();
    let metrics = {
        let store = Store::open(&store_dir).unwrap();
        let run = store.get_run(&run_id).unwrap().unwrap();
        store.run_metrics(&run).unwrap()
    };
    let yes = metrics.scalars["judge.rating_count.3"];
    assert!(yes >= 1.0, "{:?}", metrics.scalars);
    assert_eq!(
        metrics.scalars["judge.rated"], yes,
        "only the Yes cases parse strictly"
    );
    assert_eq!(metrics.scalars["judge.errors"], 4.0 - yes);
    assert_eq!(metrics.scalars["judge.rating_mean"], 3.0);
    assert_eq!(metrics.examples["judge.rating"].len() as f64, yes);

    // A forced rerun of the judge is answered from the cache.
    run_with_key(&store_dir, &spec, &["--force", "judge"]);
    assert_eq!(requests.load(Ordering::SeqCst), 4, "no new request");

    assert!(
        !files_contain(&store_dir, SECRET.as_bytes()),
        "the API key must not be stored anywhere"
    );
}

#[test]
fn the_external_explainer_answers_through_the_endpoint_and_the_judge_rates_every_explainer() {
    let (port, requests) = start_server();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("external.toml");
    let text = spec_text(port).replace(
        "[explain]\n",
        "[explain]\nexplainers = [\"aligned\", \"external\"]\n",
    );
    std::fs::write(&spec, text).unwrap();
    let store_dir = dir.path().join("results");
    run_with_key(&store_dir, &spec, &[]);
    // 4 external explanations, then the judge rates 4 + 4.
    assert_eq!(requests.load(Ordering::SeqCst), 12);
    let plan = Plan::resolve(&Spec::load(&spec).unwrap(), &registry()).unwrap();
    let metrics = {
        let store = Store::open(&store_dir).unwrap();
        let run = store.get_run(&plan.runs[0].run_id).unwrap().unwrap();
        store.run_metrics(&run).unwrap()
    };
    let m = &metrics.scalars;
    assert_eq!(m["explain.explanations"], 4.0);
    assert_eq!(m["explain.explanations.external"], 4.0);
    // The endpoint answered the explanation prompts with its summary: no leading Yes/No.
    assert_eq!(m["explain.decision_acc.external"], 0.0);
    assert!(!m.contains_key("explain.mean_tokens.external"));
    for suffix in ["", ".external"] {
        let rated = m[&format!("judge.rated{suffix}")];
        assert_eq!(rated + m[&format!("judge.errors{suffix}")], 4.0, "{suffix}");
    }

    // Without an enabled endpoint the external explainer is left out, and the rest runs.
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("enabled = true", "enabled = false");
    std::fs::write(&spec, text).unwrap();
    run_with_key(&store_dir, &spec, &[]);
    assert_eq!(
        requests.load(Ordering::SeqCst),
        12,
        "no request without the judge"
    );
}

fn start_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || serve(listener, counter));
    (port, requests)
}

#[test]
fn user_summaries_come_from_the_endpoint_and_feed_uid2summary() {
    let (port, requests) = start_server();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("summaries.toml");
    std::fs::write(&spec, spec_with(port, "summaries = \"judge\"", false)).unwrap();
    let store_dir = dir.path().join("results");
    run_with_key(&store_dir, &spec, &[]);
    let plan = Plan::resolve(&Spec::load(&spec).unwrap(), &registry()).unwrap();
    let data_dir = store_dir
        .join("artifacts/data")
        .join(&plan.runs[0].stages[0].hash);
    let users_with_history = Dataset::load(&data_dir)
        .unwrap()
        .users()
        .filter(|(_, seq)| !seq.is_empty())
        .count();
    let users = requests.load(Ordering::SeqCst);
    assert_eq!(users, users_with_history, "one summary per user");

    let align = &plan.runs[0].stages[2];
    let train = store_dir
        .join("artifacts/alignment-data")
        .join(&align.hash)
        .join("train.jsonl");
    let text = std::fs::read_to_string(train).unwrap();
    let summaries: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["type"] == "uid2summary")
        .collect();
    assert_eq!(
        summaries.len(),
        users_with_history,
        "one uid2summary train record per user (SASRec)"
    );
    assert!(summaries.iter().all(|r| r["answer"] == SUMMARY));

    // Recomputing the stage asks nothing again: the answers come from the store's cache.
    run_with_key(&store_dir, &spec, &["--force", "alignment-data"]);
    assert_eq!(requests.load(Ordering::SeqCst), users);
}

// ---- a faulty endpoint ----------------------------------------------------------------------

#[test]
fn client_errors_are_not_retried_but_server_errors_are_up_to_the_limit() {
    let (port, count, _) = scripted_server(Arc::new(|_| error_reply("401 Unauthorized", "")));
    let err = ask(&section(port, 3, 10.0), &["p"], &MemCache::default()).unwrap_err();
    assert_eq!(count.load(Ordering::SeqCst), 1, "a 401 is not retried");
    assert!(err.to_string().contains("401"), "{err}");

    let (port, count, _) = scripted_server(Arc::new(|_| error_reply("404 Not Found", "")));
    ask(&section(port, 3, 10.0), &["p"], &MemCache::default()).unwrap_err();
    assert_eq!(count.load(Ordering::SeqCst), 1, "a 404 is not retried");

    let (port, count, _) =
        scripted_server(Arc::new(|_| error_reply("500 Internal Server Error", "")));
    let err = ask(&section(port, 2, 10.0), &["p"], &MemCache::default()).unwrap_err();
    assert_eq!(
        count.load(Ordering::SeqCst),
        3,
        "max_retries = 2: one request and two retries, nothing more"
    );
    assert!(err.to_string().contains("after 3 attempt(s)"), "{err}");

    // A transient failure, then an answer.
    let (port, count, _) = scripted_server(Arc::new(|n| {
        if n == 0 {
            error_reply("503 Service Unavailable", "")
        } else {
            ok_reply("<score>C</score>")
        }
    }));
    let cache = MemCache::default();
    assert_eq!(
        ask(&section(port, 2, 10.0), &["p"], &cache).unwrap(),
        ["<score>C</score>"]
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[test]
fn retry_after_is_honoured() {
    let (port, count, times) = scripted_server(Arc::new(|n| {
        if n == 0 {
            error_reply("429 Too Many Requests", "Retry-After: 2\r\n")
        } else {
            ok_reply("<score>B</score>")
        }
    }));
    let answers = ask(&section(port, 1, 10.0), &["p"], &MemCache::default()).unwrap();
    assert_eq!(answers, ["<score>B</score>"]);
    assert_eq!(count.load(Ordering::SeqCst), 2);
    let t = times.lock().unwrap();
    let waited = t[1] - t[0];
    assert!(
        waited >= std::time::Duration::from_millis(1900),
        "waited {waited:?}, the server asked for 2 s (the back-off alone is at most 0.5 s)"
    );
}

#[test]
fn a_slow_endpoint_times_out_instead_of_hanging() {
    let (port, count, _) = scripted_server(Arc::new(|_| Reply {
        delay: std::time::Duration::from_secs(30),
        ..ok_reply("late")
    }));
    let start = std::time::Instant::now();
    let err = ask(&section(port, 1, 0.5), &["p"], &MemCache::default()).unwrap_err();
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(err.to_string().contains("timeout_s"), "{err}");
    assert_eq!(count.load(Ordering::SeqCst), 2, "a timeout is retried");
}

#[test]
fn empty_answers_are_never_cached() {
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = broken.clone();
    let (port, count, _) = scripted_server(Arc::new(move |_| {
        if flag.load(Ordering::SeqCst) {
            Reply {
                body: r#"{"id":"c","object":"chat.completion","created":0,"model":"judge","choices":[]}"#
                    .into(),
                ..ok_reply("")
            }
        } else {
            ok_reply("<score>D</score>")
        }
    }));
    let cache = MemCache::default();
    let s = section(port, 1, 10.0);
    let err = ask(&s, &["p"], &cache).unwrap_err();
    assert!(err.to_string().contains("empty answer"), "{err}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "an empty answer is retried"
    );
    assert!(cache.0.lock().unwrap().is_empty(), "and never cached");

    // The server is fixed: the prompt is asked again and the real answer cached.
    broken.store(false, Ordering::SeqCst);
    assert_eq!(ask(&s, &["p"], &cache).unwrap(), ["<score>D</score>"]);
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert_eq!(ask(&s, &["p"], &cache).unwrap(), ["<score>D</score>"]);
    assert_eq!(count.load(Ordering::SeqCst), 3, "now from the cache");
}
