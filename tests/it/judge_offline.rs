//! Table 2 offline at minute scale: `recx serve` serves SmolLM2 on loopback, the pipeline runs
//! with the judge pointed at it (no key, no network), the report labels the ratings by that
//! judge; then the run's aligned model is served by run id and answers a `<user>` prompt with
//! the injected recommender vector exactly as the evaluation stage did.

use std::path::Path;

use recx::alignment::record::AlignmentRecord;
use recx::llm::chat::TemplateName;
use recx::pipeline::registry;
use recx::plan::Plan;
use recx::serve::{ModelSource, ServeConfig, Server};
use recx::spec::Spec;
use recx::store::Store;

use crate::e2e_support::tiny_pipeline_spec;

fn spec_text(base_url: &str) -> String {
    let llm = format!(
        r#"[judge]
enabled = true
model = "smollm2"
base_url = "{base_url}"
api_key_env = ""
temperature = 0.0
max_tokens = 16
concurrency = 2
lenient = true
{}"#,
        crate::e2e_support::TINY_LLM
    );
    // A mode with <user>/<item> tokens: the served run is asked a uid2hist prompt below.
    tiny_pipeline_spec("offline", 5, r#"mode = "both""#, &llm, "")
}

fn server(source: ModelSource, name: &str) -> Server {
    Server::start(ServeConfig {
        source,
        name: name.into(),
        addr: "127.0.0.1:0".parse().unwrap(),
        api_key: None,
        concurrency: 4,
        device: recx::llm::DeviceChoice::Cpu,
        default_max_tokens: 64,
    })
    .unwrap()
}

fn recx(store: &Path, args: &[&str]) -> std::process::Output {
    crate::e2e_support::recx(store, &[&["--quiet"], args].concat())
}

#[test]
fn the_offline_example_spec_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/offline-judge.toml");
    let spec = Spec::load(&path).unwrap();
    assert!(spec.raw.judge.enabled);
    assert_eq!(
        spec.raw.judge.api_key_env, "",
        "a local server needs no key"
    );
    assert_eq!(spec.raw.judge.base_url, "http://127.0.0.1:8080/v1");
}

#[test]
fn smollm2_served_by_recx_judges_the_pipeline_and_the_aligned_run_is_served() {
    let Some(smollm2) = recx::llm::assets::find_smollm2() else {
        crate::skip_support::missing(
            "SmolLM2 GGUF (recx assets fetch smollm2, or RECX_SMOLLM2_GGUF)",
        );
        return;
    };
    let judge = server(
        ModelSource::Checkpoint {
            path: smollm2,
            template: TemplateName::Chatml,
        },
        "smollm2",
    );
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("offline.toml");
    std::fs::write(&spec, spec_text(&judge.base_url())).unwrap();
    let store_dir = dir.path().join("results");
    let out = recx(&store_dir, &["run", spec.to_str().unwrap()]);
    judge.stop().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let plan = Plan::resolve(&Spec::load(&spec).unwrap(), &registry()).unwrap();
    let run_id = plan.runs[0].run_id.clone();
    let (metrics, judge_dir, eval_dir, align_dir) = {
        let store = Store::open(&store_dir).unwrap();
        let run = store.get_run(&run_id).unwrap().unwrap();
        let dir = |kind: &str| {
            let hash = &run.stages.iter().find(|(k, _)| k == kind).unwrap().1;
            store.artifact_dir(kind, hash)
        };
        (
            store.run_metrics(&run).unwrap(),
            dir("judge"),
            dir("eval"),
            dir("alignment-data"),
        )
    };
    // Every explanation got a real answer from SmolLM2 (rated or not: a 135M judge often
    // answers without the tag).
    assert_eq!(
        metrics.scalars["judge.rated"] + metrics.scalars["judge.errors"],
        4.0,
        "{:?}",
        metrics.scalars
    );
    let ratings = std::fs::read_to_string(judge_dir.join("ratings.jsonl")).unwrap();
    for line in ratings.lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(!r["answer"].as_str().unwrap().trim().is_empty(), "{line}");
    }

    // The report says who rated (when anything was rated, Table 2 exists).
    let reports = dir.path().join("reports");
    let out = recx(
        &store_dir,
        &[
            "report",
            "--experiment",
            "offline",
            "--paper",
            "--out",
            reports.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if metrics.scalars["judge.rated"] > 0.0 {
        let page = std::fs::read_to_string(reports.join("offline/index.html")).unwrap();
        assert!(
            page.contains("rating by smollm2 at http://127.0.0.1:"),
            "Table 2 names the judge that ran"
        );
        assert!(!page.contains("GPT-4 rating (0–3) (ours)"));
    }

    // The aligned run served by id: a uid2hist prompt with its user's history behind <user>
    // gets the answer the evaluation stage decoded for the same record.
    let (source, name) =
        ModelSource::resolve(&run_id[..10], TemplateName::Chatml, &store_dir).unwrap();
    assert_eq!(name, format!("recx-{run_id}"));
    let aligned = server(source, &name);
    let answers = std::fs::read_to_string(eval_dir.join("answers.jsonl")).unwrap();
    let evaluated: serde_json::Value = answers
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|a| a["type"] == "uid2hist")
        .expect("a uid2hist record was evaluated");
    let question = evaluated["question"].as_str().unwrap();
    assert!(question.contains("<user>"), "{question}");
    let valid: Vec<AlignmentRecord> =
        recx::fsutil::read_jsonl(&align_dir.join("valid.jsonl")).unwrap();
    let record = valid
        .iter()
        .find_map(|r| match r {
            AlignmentRecord::Task(t) if t.question == question => Some(t),
            _ => None,
        })
        .unwrap();
    let url = format!("{}/chat/completions", aligned.base_url());
    let ask = |recx_field: serde_json::Value| {
        let body = serde_json::json!({
            "model": name, "temperature": 0, "max_tokens": 40,
            "messages": [{"role": "user", "content": question}],
            "recx": recx_field,
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        recx::openai::install_tls_provider();
        rt.block_on(async {
            let r = reqwest::Client::new()
                .post(&url)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        })
    };
    let (status, reply) = ask(serde_json::json!({"history": record.history}));
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["choices"][0]["message"]["content"], evaluated["predictions"][0],
        "the served aligned model answers as the evaluation stage did"
    );
    let (status, reply) = ask(serde_json::Value::Null);
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("<user>")
    );
    let (status, _) = ask(serde_json::json!({"user": record.uid.unwrap()}));
    assert_eq!(
        status, 200,
        "a user id alone takes the user's sequence from the run's data"
    );
    aligned.stop().unwrap();
}
