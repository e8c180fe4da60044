//! Spec parsing: every error names file:line:col and the key path.

use std::path::Path;

use recx::Error;
use recx::spec::Spec;

fn error_of(text: &str) -> String {
    match Spec::parse(Path::new("experiments/x.toml"), text) {
        Err(Error::Spec(issues)) => issues.to_string(),
        Err(other) => panic!("expected a spec error, got {other}"),
        Ok(_) => panic!("expected a spec error, the spec parsed"),
    }
}

const HEAD: &str = "[experiment]\nname = \"x\"\n\n";

#[test]
fn unknown_key_is_located() {
    let msg = error_of(&format!(
        "{HEAD}[alignment]\nmode = \"both\"\nmodee = \"both\"\n"
    ));
    assert!(
        msg.starts_with("experiments/x.toml:6:1: alignment.modee: unknown field `modee`"),
        "{msg}"
    );
}

#[test]
fn unknown_section_is_located() {
    let msg = error_of(&format!("{HEAD}[alignmnt]\nmode = \"both\"\n"));
    assert!(msg.starts_with("experiments/x.toml:4:"), "{msg}");
    assert!(msg.contains("unknown field `alignmnt`"), "{msg}");
}

#[test]
fn wrong_type_is_located() {
    let msg = error_of(&format!("{HEAD}[train]\nepochs = 3\nlr = \"fast\"\n"));
    assert!(
        msg.starts_with("experiments/x.toml:6:6: train.lr: "),
        "{msg}"
    );
    assert!(msg.contains("invalid type"), "{msg}");
}

#[test]
fn bad_enum_value_lists_choices() {
    let msg = error_of(&format!("{HEAD}[alignment]\nmode = \"intentions\"\n"));
    assert_eq!(
        msg,
        "experiments/x.toml:5:8: alignment.mode: unknown mode \"intentions\"; \
         expected behaviour | intention | both | none"
    );
}

#[test]
fn semantic_errors_are_all_reported_with_positions() {
    let msg =
        error_of("[experiment]\nname = \"bad name\"\nseeds = []\n\n[train]\nwarmup_ratio = 1.5\n");
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(lines.len(), 3, "{msg}");
    assert!(
        lines[0].starts_with("experiments/x.toml:2:8: experiment.name: "),
        "{msg}"
    );
    assert!(
        lines[1].starts_with("experiments/x.toml:3:9: experiment.seeds: "),
        "{msg}"
    );
    assert!(
        lines[2].starts_with("experiments/x.toml:6:16: train.warmup_ratio: 1.5 is out of range"),
        "{msg}"
    );
}

#[test]
fn missing_experiment_name_is_reported() {
    let msg = error_of("[experiment]\nseeds = [1]\n");
    assert!(msg.contains("missing field `name`"), "{msg}");
    assert!(msg.starts_with("experiments/x.toml:1:1"), "{msg}");
}

#[test]
fn toml_syntax_error_is_located() {
    let msg = error_of("[experiment]\nname = \"x\n");
    assert!(msg.starts_with("experiments/x.toml:2:"), "{msg}");
}

#[test]
fn api_key_value_cannot_be_put_in_a_spec() {
    let msg = error_of(&format!("{HEAD}[judge]\napi_key_env = \"sk-abc123\"\n"));
    assert!(msg.contains("judge.api_key_env"), "{msg}");
    assert!(msg.contains("NAME of an environment variable"), "{msg}");
}

#[test]
fn defaults_fill_a_minimal_spec() {
    let spec = Spec::parse(Path::new("x.toml"), HEAD).unwrap();
    assert_eq!(spec.raw.experiment.seeds, vec![2024]);
    assert_eq!(spec.raw.train.lr, 1e-4);
    assert_eq!(spec.raw.alignment.mode, recx::alignment::Mode::Both);
}
