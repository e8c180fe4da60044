//! `experiments/modes.toml` end to end: the sweep over the three alignment modes and the
//! unaligned baseline × 3 seeds runs every stage (data → recommender → alignment data → LLM
//! alignment → evaluation), and `recx report --paper` lays its metrics out as the paper's
//! Table 1 with significance markers. The spec is the shipped one with the minute-scale
//! settings of `fixtures/tiny_llm.toml` (and a smaller recommender) merged over it.

use std::path::Path;
use std::process::Command;

use recx::pipeline::registry;
use recx::spec::Spec;
use recx::sweep::expand;
use toml::Value;

/// Merges `over` into `base`, table by table.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Table(b), Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) if existing.is_table() && v.is_table() => merge(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn scaled_down_modes_spec() -> String {
    let mut spec: Value = toml::from_str(include_str!("../../experiments/modes.toml")).unwrap();
    let tiny: Value = toml::from_str(crate::e2e_support::TINY_LLM).unwrap();
    let small_recommender: Value = toml::from_str(
        "[recommender]\nembedding_size = 16\nn_heads = 2\ninner_size = 32\nepochs = 2\n",
    )
    .unwrap();
    merge(&mut spec, &tiny);
    merge(&mut spec, &small_recommender);
    toml::to_string(&spec).unwrap()
}

fn recx(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_recx"));
    c.arg("--quiet").arg("--store").arg(store);
    c
}

#[test]
fn modes_sweep_becomes_the_papers_table_1() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("modes.toml");
    std::fs::write(&spec, scaled_down_modes_spec()).unwrap();
    let store = dir.path().join("results");

    let out = recx(&store)
        .args(["sweep", "--jobs", "2"])
        .arg(&spec)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sweep failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Each evaluation keeps what the model answered, record by record.
    let evals: Vec<_> = std::fs::read_dir(store.join("artifacts/eval"))
        .unwrap()
        .map(|e| e.unwrap().path().join("answers.jsonl"))
        .collect();
    let runs = expand(&Spec::load(&spec).unwrap(), &registry())
        .unwrap()
        .runs
        .len();
    assert_eq!(runs, 12, "four modes x three seeds");
    assert_eq!(evals.len(), runs, "one evaluation per run");
    let text = std::fs::read_to_string(&evals[0]).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "uid2next");
    assert_eq!(
        first["predictions"].as_array().unwrap().len(),
        5,
        "five beams"
    );

    // Each run explains its own mode's prompts (the baseline answers the behaviour form).
    for entry in std::fs::read_dir(store.join("artifacts/explain")).unwrap() {
        let text =
            std::fs::read_to_string(entry.unwrap().path().join("explanations.jsonl")).unwrap();
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 4);
        assert!(
            rows.iter()
                .all(|r| r["label"] == "Yes" || r["label"] == "No")
        );
    }

    let reports = dir.path().join("reports");
    let out = recx(&store)
        .args(["report", "--paper", "--sweep"])
        .arg(&spec)
        .arg("--out")
        .arg(&reports)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = std::fs::read_to_string(reports.join("modes/tables/table1.md")).unwrap();
    for method in [
        "RecExplainer-B",
        "RecExplainer-I",
        "RecExplainer-H",
        "Vicuna-7B",
    ] {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("| {method} |")))
            .unwrap_or_else(|| panic!("no {method} row in\n{table}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // Our T1 H@5, T1 N@5, T2 N@5 and T3 ACC are measured for every mode (cells 2, 4, 6, 8; cell 1 is the method).
        for c in [2, 4, 6, 8] {
            assert!(
                cells[c].contains('±'),
                "{method}: cell {c} is {:?}\n{table}",
                cells[c]
            );
        }
        // T6 HCR exists only where the mode has <user> tokens (intention and hybrid).
        let has_hcr = matches!(method, "RecExplainer-I" | "RecExplainer-H");
        assert_eq!(
            cells[10].contains('±'),
            has_hcr,
            "{method}: HCR cell {:?}",
            cells[10]
        );
    }
    // Each aligned mode is tested against the unaligned baseline ("none"), seeds as samples.
    let page = std::fs::read_to_string(reports.join("modes/index.md")).unwrap();
    let family: usize = page
        .split("Welch markers Holm-corrected over ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no significance note in\n{page}"));
    assert!((1..=12).contains(&family), "{family} comparisons\n{page}");
    assert!(
        page.contains("Group rows are tested against \"mode=none\""),
        "{page}"
    );
}
