//! Ctrl-C during judge requests: the requests in flight are aborted within 2 s (the call ends
//! `Interrupted`), and the answers that arrived before are in the cache. Its own test binary,
//! because the cancel flag is process-wide.

use crate::judge_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use judge_support::{MemCache, Reply, ok_reply, scripted_server, section};
use recx::pipeline::{CancelToken, cancel_scope};

#[test]
fn ctrl_c_aborts_requests_in_flight_and_keeps_the_answers_received() {
    // The first two requests are answered at once, every later one after a minute.
    let (port, _, _) = scripted_server(Arc::new(|n| {
        if n < 2 {
            ok_reply(&format!("<score>C</score> {n}"))
        } else {
            Reply {
                delay: Duration::from_secs(60),
                ..ok_reply("late")
            }
        }
    }));
    let s = section(port, 3, 120.0);
    let cache = MemCache::default();
    let prompts: Vec<String> = (0..6).map(|i| format!("prompt {i}")).collect();
    // A scoped token stands in for Ctrl-C, so the other tests of this process run on.
    let token = CancelToken::default();
    let remote = token.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        remote.cancel();
        Instant::now()
    });
    let result = cancel_scope(&token, || {
        recx::openai::ask_all(&s.endpoint(), None, &prompts, Some(&cache), &|| {})
    });
    let returned = Instant::now();
    let cancelled_at = stopper.join().unwrap();
    assert!(
        matches!(result, Err(recx::Error::Interrupted)),
        "{result:?}"
    );
    assert!(
        returned.duration_since(cancelled_at) < Duration::from_secs(2),
        "aborted {:?} after the Ctrl-C",
        returned.duration_since(cancelled_at)
    );
    let kept = cache.0.lock().unwrap();
    assert_eq!(
        kept.len(),
        2,
        "the two answers received are cached: {kept:?}"
    );
    assert!(kept.values().all(|v| v.starts_with("<score>C</score>")));
}
