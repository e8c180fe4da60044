//! `[train]` defaults: the paper's LoRA settings unless the spec says otherwise, the later
//! RecAI code's as `preset = "v2"`, explicit keys over either, and `recx check` shows what a
//! run will use.

use std::path::Path;

use recx::Error;
use recx::llm::LoraTarget;
use recx::pipeline::registry;
use recx::plan::Plan;
use recx::spec::Spec;
use recx::train::TrainPreset;

const HEAD: &str = "[experiment]\nname = \"presets\"\n\n\
                    [alignment]\nsharegpt_train = 0\nsharegpt_valid = 0\n\n";

/// The `[train]` table of the resolved spec `recx check` prints for a spec with `train`.
fn checked_train(train: &str) -> toml::Table {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("presets.toml");
    std::fs::write(&spec, format!("{HEAD}[train]\n{train}")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recx"))
        .arg("--store")
        .arg(dir.path().join("results"))
        .arg("check")
        .arg(&spec)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, resolved) = stdout
        .split_once("resolved spec (defaults filled in):")
        .unwrap_or_else(|| panic!("no resolved spec in:\n{stdout}"));
    let table: toml::Table = toml::from_str(resolved).unwrap();
    table["train"].as_table().unwrap().clone()
}

fn lora_of(t: &toml::Table) -> (i64, f64, f64, Vec<String>, i64) {
    let targets = t["lora_targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    (
        t["lora_r"].as_integer().unwrap(),
        t["lora_alpha"].as_float().unwrap(),
        t["lora_dropout"].as_float().unwrap(),
        targets,
        t["epochs"].as_integer().unwrap(),
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn check_prints_the_papers_values_by_default_and_v2_with_the_preset() {
    let paper = checked_train("");
    assert_eq!(paper["preset"].as_str(), Some("paper"));
    assert_eq!(lora_of(&paper), (8, 32.0, 0.1, strings(&["q", "v"]), 10));

    let v2 = checked_train("preset = \"v2\"\n");
    assert_eq!(v2["preset"].as_str(), Some("v2"));
    assert_eq!(
        lora_of(&v2),
        (16, 32.0, 0.05, strings(&["q", "k", "v", "o"]), 20)
    );
}

fn parse(train: &str) -> recx::Result<Spec> {
    Spec::parse(
        Path::new("experiments/p.toml"),
        &format!("{HEAD}[train]\n{train}"),
    )
}

#[test]
fn explicit_keys_override_the_preset() {
    let t = parse("preset = \"v2\"\nlora_r = 4\nepochs = 3\nlora_targets = [\"v\", \"o\"]\n")
        .unwrap()
        .raw
        .train;
    assert_eq!(t.preset, TrainPreset::V2);
    assert_eq!((t.lora_r, t.epochs), (4, 3));
    assert_eq!(t.lora_targets, vec![LoraTarget::V, LoraTarget::O]);
    // The keys left out still come from the preset.
    assert_eq!((t.lora_alpha, t.lora_dropout), (32.0, 0.05));

    let t = parse("lora_dropout = 0.0\n").unwrap().raw.train;
    assert_eq!((t.lora_r, t.lora_dropout, t.epochs), (8, 0.0, 10));
}

#[test]
fn a_preset_written_out_is_the_same_training_stage() {
    let stages = |train: &str| {
        let spec = parse(train).unwrap();
        let plan = Plan::resolve(&spec, &registry()).unwrap();
        plan.runs[0]
            .stages
            .iter()
            .map(|s| (s.kind, s.hash.clone()))
            .collect::<Vec<_>>()
    };
    let written = "epochs = 20\nlora_r = 16\nlora_dropout = 0.05\n\
                   lora_targets = [\"q\", \"k\", \"v\", \"o\"]\n";
    assert_eq!(stages("preset = \"v2\"\n"), stages(written));
    assert_ne!(stages(""), stages(written));
    assert_eq!(stages(""), stages("preset = \"paper\"\n"));
}

fn error_of(train: &str) -> String {
    match parse(train) {
        Err(Error::Spec(issues)) => issues.to_string(),
        Err(other) => panic!("expected a spec error, got {other}"),
        Ok(_) => panic!("expected a spec error for {train:?}"),
    }
}

#[test]
fn bad_targets_and_presets_list_the_choices() {
    assert_eq!(
        error_of("lora_targets = [\"q\", \"gate\"]\n"),
        "experiments/p.toml:9:16: train.lora_targets: unknown LoRA target \"gate\"; \
         expected q | k | v | o"
    );
    assert_eq!(
        error_of("preset = \"v3\"\n"),
        "experiments/p.toml:9:10: train.preset: unknown train preset \"v3\"; expected paper | v2"
    );
    let msg = error_of("lora_targets = []\n");
    assert!(
        msg.starts_with(
            "experiments/p.toml:9:16: train.lora_targets: needs at least one of q, k, v, o"
        ),
        "{msg}"
    );
    let msg = error_of("lora_targets = [\"q\", \"q\"]\n");
    assert!(
        msg.contains("train.lora_targets: \"q\" is listed 2 times"),
        "{msg}"
    );
}
