//! The data stage through the pipeline contract: outputs, metrics, and the fingerprint.

use std::collections::BTreeMap;
use std::path::Path;

use recx::Error;
use recx::data::{DataStage, DataStats, Dataset, stats_table};
use recx::pipeline::{Measurements, Progress, Stage, StageContext, StageKind};
use recx::spec::Spec;

fn spec(data: &str) -> Spec {
    Spec::parse(
        Path::new("spec.toml"),
        &format!("[experiment]\nname = \"t\"\n\n[data]\n{data}"),
    )
    .unwrap()
}

#[test]
fn default_spec_runs_on_the_embedded_subset() {
    let spec = spec("");
    let out = tempfile::tempdir().unwrap();
    let mut m = Measurements::default();
    let progress = Progress::hidden();
    let settings = DataStage.settings(&spec.raw, Path::new("."), 2024).unwrap();
    let mut ctx = StageContext::new(
        settings,
        out.path().to_path_buf(),
        BTreeMap::new(),
        &mut m,
        &progress,
    );
    assert_eq!(DataStage.kind(), StageKind::Data);
    assert!(DataStage.deps().is_empty());
    DataStage.run(&mut ctx).unwrap();
    let ds = Dataset::load(out.path()).unwrap();
    for f in [
        "train.tsv",
        "valid.tsv",
        "test.tsv",
        "user_history.tsv",
        "train_ids.csv",
        "test_ids.csv",
    ] {
        assert!(out.path().join(f).exists(), "{f}");
    }
    let stats = DataStats::load(out.path()).unwrap();
    assert_eq!(stats.users, ds.n_users);
    assert_eq!(m.scalars["users"], ds.n_users as f64);
    assert_eq!(m.scalars["interactions"], ds.n_interactions() as f64);
    assert!(m.scalars["sparsity"] > 0.9);
    let table = stats_table(out.path()).unwrap();
    println!("{table}");
    assert!(table.contains("sparsity") && table.contains("seq len"));
}

fn layout_dir(seq: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sequential_data.txt"), seq).unwrap();
    std::fs::write(
        dir.path().join("metadata.json"),
        "{\"asin\": \"A\", \"title\": \"a\"}\n{\"asin\": \"B\", \"title\": \"b\"}\n",
    )
    .unwrap();
    dir
}

/// Runs the data stage on `spec` into `out`; returns the metrics.
fn run_stage(spec: &Spec, out: &Path) -> Measurements {
    let mut m = Measurements::default();
    let progress = Progress::hidden();
    let settings = DataStage.settings(&spec.raw, Path::new("."), 2024).unwrap();
    let mut ctx = StageContext::new(
        settings,
        out.to_path_buf(),
        BTreeMap::new(),
        &mut m,
        &progress,
    );
    DataStage.run(&mut ctx).unwrap();
    m
}

#[test]
fn a_processed_layout_loses_its_untitled_items_before_stage2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sequential_data.txt"),
        "1 1 2 3
2 2
3 3 1
",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("metadata.json"),
        "{\"asin\": \"A\", \"title\": \"a\"}\n{\"asin\": \"B\", \"title\": \"\"}\n\
         {\"asin\": \"C\", \"title\": \"c\"}\n",
    )
    .unwrap();
    let spec = spec(&format!(
        "source = \"recexplainer\"\npath = {:?}\n[data.stage2]\nenabled = false\n",
        dir.path().display().to_string()
    ));
    let out = tempfile::tempdir().unwrap();
    let m = run_stage(&spec, out.path());
    assert_eq!(m.scalars["untitled_dropped"], 1.0);
    assert_eq!(m.scalars["untitled_items"], 0.0, "no raw id stands in");
    let ds = Dataset::load(out.path()).unwrap();
    assert_eq!((ds.n_users, ds.n_items, ds.n_interactions()), (2, 2, 4));
    assert!(ds.items.iter().skip(1).all(|m| m.raw_id != "B"));
    let table = stats_table(out.path()).unwrap();
    assert!(table.contains("items dropped (no title)"), "{table}");
    assert!(table.contains("stage1: items with a title"), "{table}");
}

#[test]
fn fingerprint_follows_file_contents_not_locations() {
    let a = layout_dir("1 1 2\n");
    let b = layout_dir("1 1 2\n");
    let fp = |dir: &Path| {
        let s = spec(&format!(
            "source = \"recexplainer\"\npath = {:?}",
            dir.display().to_string()
        ));
        DataStage
            .settings(&s.raw, Path::new("."), 1)
            .unwrap()
            .fingerprint()
    };
    assert_eq!(
        fp(a.path()),
        fp(b.path()),
        "same bytes elsewhere: same fingerprint"
    );
    std::fs::write(b.path().join("sequential_data.txt"), "1 2 1\n").unwrap();
    assert_ne!(fp(a.path()), fp(b.path()), "edited data: new fingerprint");
    let f = fp(a.path());
    assert_eq!(f["seed"], 2023);
    assert_eq!(f["stage1"]["enabled"], false);
    assert_eq!(f["stage2"]["top_items"], 2000);
    assert_eq!(f["inputs"].as_object().unwrap().len(), 2);
}

#[test]
fn fingerprint_of_a_missing_input_names_the_key() {
    let s = spec("source = \"amazon-raw\"\npath = \"/nonexistent\"");
    match DataStage.settings(&s.raw, Path::new("."), 1) {
        Err(Error::MissingInput { key, path }) => {
            assert_eq!(key, "data.amazon.reviews");
            assert_eq!(path, Path::new("/nonexistent/Video_Games_5.json.gz"));
        }
        other => panic!("expected MissingInput, got {other:?}"),
    }
}

#[test]
fn seed_run_follows_the_run_seed() {
    let s = spec("source = \"synthetic\"\nseed = \"run\"");
    let a = DataStage
        .settings(&s.raw, Path::new("."), 1)
        .unwrap()
        .fingerprint();
    let b = DataStage
        .settings(&s.raw, Path::new("."), 2)
        .unwrap()
        .fingerprint();
    assert_ne!(a, b);
    assert_eq!(a["synthetic"]["users"], 1000);
}

#[test]
fn data_build_command_writes_a_folder_and_stats_reads_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("spec.toml");
    std::fs::write(
        &spec_path,
        "[experiment]\nname = \"t\"\n[data]\nsource = \"synthetic\"\n[data.synthetic]\nusers = 100\nitems = 60\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    recx::data::run_data(
        recx::data::DataCommand::Build {
            spec: spec_path,
            out: out.clone(),
            seed: None,
        },
        true,
    )
    .unwrap();
    let ds = Dataset::load(&out).unwrap();
    let stats = recx::data::folder_stats(&out).unwrap();
    assert_eq!(
        (stats.users, stats.interactions),
        (ds.n_users, ds.n_interactions())
    );
    // A folder without stats.json (e.g. the original's) gets its stats computed.
    std::fs::remove_file(out.join("stats.json")).unwrap();
    let computed = recx::data::folder_stats(&out).unwrap();
    assert_eq!((computed.users, computed.items), (stats.users, stats.items));
}
