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

#[test]
fn non_finite_numbers_are_refused_where_they_stand() {
    for (body, at, key) in [
        ("[train]\nlr = inf\n", "5:6", "train.lr"),
        ("[train]\nlr = nan\n", "5:6", "train.lr"),
        (
            "[train]\nwarmup_ratio = -inf\n",
            "5:16",
            "train.warmup_ratio",
        ),
        ("[judge]\ntemperature = nan\n", "5:15", "judge.temperature"),
        (
            "[sweep.grid]\n\"train.lr\" = [1e-4, nan]\n",
            "5:21",
            "sweep.grid.train.lr[1]",
        ),
    ] {
        let msg = error_of(&format!("{HEAD}{body}"));
        assert!(
            msg.starts_with(&format!("experiments/x.toml:{at}: {key}: ")),
            "{body}: {msg}"
        );
        assert!(msg.contains("not a finite number"), "{body}: {msg}");
    }
}

#[test]
fn numeric_settings_are_range_checked() {
    for (body, key, expect) in [
        ("[train]\nlr = 1e30\n", "train.lr", "out of range"),
        ("[train]\nlr = 0.0\n", "train.lr", "out of range"),
        ("[train]\nepochs = 0\n", "train.epochs", "at least 1"),
        (
            "[train]\nepochs = 9223372036854775807\n",
            "train.epochs",
            "too large",
        ),
        (
            "[train]\nbatch_size = 0\n",
            "train.batch_size",
            "at least 1",
        ),
        (
            "[recommender]\nepochs = 100000000\n",
            "recommender.epochs",
            "too large",
        ),
        (
            "[recommender]\nlr = 1e30\n",
            "recommender.lr",
            "out of range",
        ),
        (
            "[recommender]\nbatch_size = 0\n",
            "recommender.batch_size",
            "at least 1",
        ),
        (
            "[data]\nsource = \"synthetic\"\n[data.synthetic]\nusers = 99999999999999\n",
            "data.synthetic.users",
            "too large",
        ),
        ("[eval]\nbatch_size = 0\n", "eval.batch_size", "at least 1"),
        (
            "[explain]\nbatch_size = 0\n",
            "explain.batch_size",
            "at least 1",
        ),
        (
            "[judge]\nmax_retries = 100\n",
            "judge.max_retries",
            "too large",
        ),
        (
            "[judge]\ntimeout_s = 0.0\n",
            "judge.timeout_s",
            "out of range",
        ),
        (
            "[judge]\nconcurrency = 0\n",
            "judge.concurrency",
            "at least 1",
        ),
        (
            "[discriminator]\nlr = 1e30\n",
            "discriminator.lr",
            "out of range",
        ),
        ("[report]\nname = \"../../x\"\n", "report.name", "path"),
    ] {
        let msg = error_of(&format!("{HEAD}{body}"));
        assert!(
            msg.starts_with("experiments/x.toml:") && msg.contains(&format!(": {key}: ")),
            "{body}: {msg}"
        );
        assert!(msg.contains(expect), "{body}: {msg}");
    }
}

#[test]
fn azure_judge_settings_are_checked_by_key_path() {
    let msg = error_of(&format!(
        "{HEAD}[judge]\nbase_url = \"http://localhost:8000/v1\"\n\n[judge.azure]\n\
         endpoint = \"my-resource.openai.azure.com\"\ndeployment = \"gpt 4\"\napi_version = \"latest\"\n"
    ));
    assert!(
        msg.contains("experiments/x.toml:8:12: judge.azure.endpoint: \"my-resource.openai.azure.com\" is not an http(s) URL"),
        "{msg}"
    );
    assert!(
        msg.contains("judge.azure.deployment: \"gpt 4\" is not a deployment name"),
        "{msg}"
    );
    assert!(
        msg.contains("judge.azure.api_version: \"latest\" is not an Azure API version"),
        "{msg}"
    );
    assert!(
        msg.contains("judge.base_url: must be empty when [judge.azure] names the deployment"),
        "{msg}"
    );
    let unknown = error_of(&format!(
        "{HEAD}[judge.azure]\nendpoint = \"https://r.openai.azure.com\"\ndeployment = \"d\"\n\
         api_version = \"2024-10-21\"\napi_key = \"sk-secret\"\n"
    ));
    assert!(
        unknown.contains("judge.azure.api_key: unknown field"),
        "{unknown}"
    );
    let ok = Spec::parse(
        Path::new("x.toml"),
        &format!(
            "{HEAD}[judge]\napi_key_env = \"AZURE_OPENAI_API_KEY\"\n[judge.azure]\n\
             endpoint = \"https://r.openai.azure.com\"\ndeployment = \"gpt-4\"\napi_version = \"2024-10-21\"\n"
        ),
    );
    assert!(ok.is_ok(), "{:?}", ok.err().map(|e| e.to_string()));
}
