//! `eval.rank_decoding = "candidates"` end to end: with titles spelled out in sub-word pieces
//! (so an item is several tokens, and the separator-led form differs from the first), every
//! ranking answer of the aligned model and of the unaligned backbone's rows is a list of the
//! prompt's candidates, each once, and Table 1 says how T2 was decoded.

use std::collections::BTreeMap;
use std::path::Path;

use crate::e2e_support::{TINY_LLM, run_spec, tiny_pipeline_spec};

fn spec() -> String {
    // Room for five titles of several tokens each (the fixture's 40 cut the lists short).
    let llm = TINY_LLM
        .replace("[eval]\n", "[eval]\nrank_decoding = \"candidates\"\n")
        .replace("rank_max_new_tokens = 40", "rank_max_new_tokens = 200");
    assert!(llm.contains("rank_max_new_tokens = 200"));
    tiny_pipeline_spec(
        "ranked",
        6,
        r#"mode = "both""#,
        &llm,
        r#"rows = ["random", "zero-shot"]"#,
    )
}

/// The ranking answers of one stage's `answers.jsonl`, by row (`""` for the aligned model):
/// (prediction, expected answer).
fn ranking_answers(stage_dir: &Path) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for entry in std::fs::read_dir(stage_dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path().join("answers.jsonl")).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["type"] == "uidiid2rank" {
                let row = v["row"].as_str().unwrap_or("").to_string();
                let pred = v["predictions"][0].as_str().unwrap().to_string();
                let answer = v["answer"].as_str().unwrap().to_string();
                out.entry(row).or_default().push((pred, answer));
            }
        }
    }
    out
}

/// The list's elements, sorted (a title holding the separator splits alike on both sides).
fn elements(list: &str) -> Vec<String> {
    let mut v: Vec<String> = list.split("; ").map(|s| s.trim().to_string()).collect();
    v.sort();
    v
}

#[test]
fn ranking_answers_decoded_within_the_candidates_list_each_candidate_once() {
    let ran = run_spec(&spec());
    let artifacts = ran.store.join("artifacts");
    let mut answers = ranking_answers(&artifacts.join("eval"));
    answers.extend(ranking_answers(&artifacts.join("baselines")));
    let llm_rows: Vec<&String> = answers
        .keys()
        .filter(|r| r.is_empty() || r.contains("zero-shot"))
        .collect();
    assert_eq!(
        llm_rows.len(),
        2,
        "the aligned model and the zero-shot row: {answers:?}"
    );
    for row in llm_rows {
        for (pred, answer) in &answers[row] {
            // The expected answer lists the candidates in the target's order.
            assert_eq!(elements(pred), elements(answer), "row {row:?}: {pred:?}");
        }
    }
    assert!(
        ran.stdout.contains("T2 decoded within the candidates)"),
        "{}",
        ran.stdout
    );
}
