//! Plan identity: same spec → same hashes; key order and explicit defaults do not matter; any
//! changed value does; seeds change run ids but not the group key.

use std::path::Path;

use recx::pipeline::registry;
use recx::plan::Plan;
use recx::spec::Spec;

fn plan(text: &str) -> Plan {
    let spec = Spec::parse(Path::new("experiments/h.toml"), text).expect("spec parses");
    Plan::resolve(&spec, &registry()).expect("plan resolves")
}

const A: &str = r#"
[experiment]
name = "h"
seeds = [1, 2]

[alignment]
mode = "intention"
tasks = ["uid2next"]
sharegpt_train = 0
sharegpt_valid = 0

[train]
lr = 0.0003
epochs = 2
"#;

#[test]
fn same_spec_same_hashes() {
    let (p, q) = (plan(A), plan(A));
    assert_eq!(p.plan_hash, q.plan_hash);
    assert_eq!(p.runs[0].run_id, q.runs[0].run_id);
    let stages = |p: &Plan| {
        p.runs[0]
            .stages
            .iter()
            .map(|s| s.hash.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(stages(&p), stages(&q));
}

#[test]
fn reordered_keys_same_hash() {
    let b = r#"
[train]
epochs = 2
lr = 0.0003

[alignment]
sharegpt_valid = 0
tasks = ["uid2next"]
sharegpt_train = 0
mode = "intention"

[experiment]
seeds = [1, 2]
name = "h"
"#;
    assert_eq!(plan(A).plan_hash, plan(b).plan_hash);
}

#[test]
fn explicit_default_same_hash() {
    let with_default = format!("{A}batch_size = 64\n");
    assert_eq!(plan(A).plan_hash, plan(&with_default).plan_hash);
}

#[test]
fn changed_value_changes_hash() {
    let changed = A.replace("lr = 0.0003", "lr = 0.0001");
    assert_ne!(plan(A).plan_hash, plan(&changed).plan_hash);
    let changed = A.replace("\"intention\"", "\"both\"");
    assert_ne!(plan(A).plan_hash, plan(&changed).plan_hash);
}

#[test]
fn seeds_make_runs_of_one_group() {
    let p = plan(A);
    assert_eq!(p.runs.len(), 2);
    assert_ne!(p.runs[0].run_id, p.runs[1].run_id);
    let fewer = plan(&A.replace("seeds = [1, 2]", "seeds = [2]"));
    assert_eq!(p.plan_hash, fewer.plan_hash, "the group key ignores seeds");
    assert_eq!(
        p.runs[1].run_id, fewer.runs[0].run_id,
        "run key = plan hash + seed"
    );
}

#[test]
fn names_and_descriptions_do_not_change_results() {
    let renamed = A.replace("name = \"h\"", "name = \"other\"\ndescription = \"notes\"");
    assert_eq!(plan(A).plan_hash, plan(&renamed).plan_hash);
}

/// Every shipped spec parses and validates; the paper specs whose data a user downloads fail at
/// plan time naming the spec key of the first missing file, before any stage runs.
#[test]
fn shipped_specs_parse_and_missing_downloads_name_their_key() {
    let mut seen = 0;
    for entry in std::fs::read_dir("experiments").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        Spec::parse(&path, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} specs in experiments/");
    for (file, key) in [
        ("experiments/paper-movies.toml", "data.amazon.reviews"),
        ("experiments/paper-steam.toml", "data.steam.reviews"),
    ] {
        let path = Path::new(file);
        let spec = Spec::parse(path, &std::fs::read_to_string(path).unwrap()).unwrap();
        match Plan::resolve(&spec, &registry()) {
            Err(recx::Error::MissingInput { key: k, .. }) => assert_eq!(k, key, "{file}"),
            other => panic!("{file}: expected a missing {key}, got {other:?}"),
        }
    }
}
