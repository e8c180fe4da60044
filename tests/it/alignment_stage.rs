//! The alignment-data stage end to end on the hand-built dataset: files, counts, determinism,
//! explanation prompts, ShareGPT mixing and the export to the original schema.

use crate::alignment_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alignment_common::*;
use recx::alignment::stage::{Settings, build};
use recx::alignment::tokens::estimate_tokens;
use recx::alignment::{AlignmentDataStage, AlignmentRecord, ExplainRecord, Mode};
use recx::fsutil::read_jsonl;
use recx::pipeline::{Measurements, Progress, Stage, StageContext, StageKind};
use recx::recommender::ModelKind;
use recx::spec::RawSpec;

/// Runs `build` into `out` with the recommender folder `rec`.
fn run_build(rec: &Path, out: &Path, settings: &Settings) -> recx::alignment::stage::Summary {
    build(
        &hand_dataset(),
        rec,
        out,
        settings,
        &estimate_tokens,
        &Progress::hidden(),
    )
    .unwrap()
}

/// Every file under `dir` with its bytes, by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

fn with_sharegpt(mut s: Settings, file: &Path, train: usize, valid: usize) -> Settings {
    s.sharegpt_path = Some(file.to_path_buf());
    s.section.sharegpt_train = train;
    s.section.sharegpt_valid = valid;
    s
}

#[test]
fn same_seed_gives_byte_identical_files() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    write_rec_dir(&rec, &hand_dataset(), ModelKind::Sasrec);
    let sg = tmp.path().join("sharegpt.json");
    std::fs::write(&sg, truncated_sharegpt(12)).unwrap();
    let mut s = with_sharegpt(settings(Mode::Both, ModelKind::Sasrec), &sg, 5, 3);
    s.section.export_original = true;
    run_build(&rec, &tmp.path().join("a"), &s);
    run_build(&rec, &tmp.path().join("b"), &s);
    let a = snapshot(&tmp.path().join("a"));
    let b = snapshot(&tmp.path().join("b"));
    assert!(a.len() >= 20, "{:?}", a.keys().collect::<Vec<_>>());
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(
            bytes == &b[name],
            "{} differs between two runs with the same seed",
            name.display()
        );
    }
    // Another seed draws other templates, shuffles and ShareGPT picks.
    s.seed = 7;
    run_build(&rec, &tmp.path().join("c"), &s);
    let c = snapshot(&tmp.path().join("c"));
    assert_ne!(a[Path::new("train.jsonl")], c[Path::new("train.jsonl")]);
}

#[test]
fn writes_records_with_sharegpt_last_and_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    write_rec_dir(&rec, &hand_dataset(), ModelKind::Sasrec);
    let sg = tmp.path().join("sharegpt.json");
    std::fs::write(&sg, truncated_sharegpt(12)).unwrap();
    let s = with_sharegpt(settings(Mode::Intention, ModelKind::Sasrec), &sg, 5, 3);
    let out = tmp.path().join("out");
    let summary = run_build(&rec, &out, &s);

    let train: Vec<AlignmentRecord> = read_jsonl(&out.join("train.jsonl")).unwrap();
    let valid: Vec<AlignmentRecord> = read_jsonl(&out.join("valid.jsonl")).unwrap();
    let types: Vec<&str> = train.iter().map(AlignmentRecord::type_name).collect();
    let first_chat = types.iter().position(|t| *t == "sharegpt").unwrap();
    assert!(
        types[first_chat..].iter().all(|t| *t == "sharegpt"),
        "ShareGPT comes last"
    );
    assert_eq!(types.len() - first_chat, 5);
    assert_eq!(
        valid.iter().filter(|r| r.type_name() == "sharegpt").count(),
        3
    );
    // Train and valid ShareGPT conversations are distinct, and whole.
    let ids = |v: &[AlignmentRecord]| -> Vec<String> {
        v.iter()
            .filter_map(|r| match r {
                AlignmentRecord::Chat(c) => Some(c.id.clone()),
                _ => None,
            })
            .collect()
    };
    let (ti, vi) = (ids(&train), ids(&valid));
    assert!(
        ti.iter().all(|i| !vi.contains(i) && i != "cut"),
        "{ti:?} {vi:?}"
    );

    assert_eq!(summary.counts["uid2next"], [10, 3]);
    assert_eq!(summary.counts["uidiid2rank"], [10, 3]);
    assert_eq!(summary.counts["uidiid2binary"][0], 6);
    assert_eq!(summary.counts["uid2hist"], [13, 3]);
    assert_eq!(summary.counts["iid2title"], [8, 8]);
    assert_eq!(summary.counts["sharegpt"], [5, 3]);
    let sg_stats = summary.sharegpt.as_ref().unwrap();
    assert_eq!(
        (
            sg_stats.elements_read,
            sg_stats.truncated_file,
            sg_stats.passed_filter
        ),
        (12, true, 12)
    );
    assert!(summary.skipped.contains_key("uid2summary"));
    let table = summary.table();
    for row in [
        "1 next item (uid2next)",
        "5 ShareGPT",
        "6 history (uid2hist)",
        "Total",
        "skipped uid2summary",
    ] {
        assert!(table.contains(row), "{table}");
    }
    assert!(out.join("summary_queries.csv").is_file());
    assert!(out.join("templates.toml").is_file());
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["counts"]["uid2next"], serde_json::json!([10, 3]));
}

#[test]
fn explanation_prompts_in_every_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    write_rec_dir(&rec, &hand_dataset(), ModelKind::Sasrec);
    let mut s = settings(Mode::Behaviour, ModelKind::Sasrec);
    s.explain_valid = 4;
    let out = tmp.path().join("out");
    let summary = run_build(&rec, &out, &s);
    assert_eq!(summary.explain["valid"], 4, "stops at the limit (2 users)");
    assert_eq!(
        summary.explain["train"], 6,
        "one pair per user: the line at seq[-2]"
    );
    for mode in Mode::ALL {
        let valid: Vec<ExplainRecord> =
            read_jsonl(&out.join(format!("explain_{mode}_valid.jsonl"))).unwrap();
        assert_eq!(valid.len(), 4);
        // test_top walks from the top: u1 (last item 5) then u2; positive then negative.
        let (pos, neg) = (&valid[0], &valid[1]);
        assert_eq!(
            (pos.uid, pos.iid, pos.target, pos.label.as_str()),
            (1, 5, 6, "Yes")
        );
        assert_eq!(
            (neg.target, neg.label.as_str(), neg.score),
            (2, "No", -1.25)
        );
        assert_eq!(pos.score, 2.5);
        assert_eq!(pos.history_titles, vec!["T1", "T2", "T3", "T4"]);
        assert_eq!(pos.target_title, "T6");
        let user = match mode {
            Mode::Intention => "<user>".to_string(),
            Mode::Both => "<user>T1; T2; T3; T4".to_string(),
            _ => "T1; T2; T3; T4".to_string(),
        };
        assert_eq!(pos.slots[0], user, "{mode}");
        assert!(pos.question.starts_with(&format!(
            "The user has the following purchase history: {user} ."
        )));
        let train: Vec<ExplainRecord> =
            read_jsonl(&out.join(format!("explain_{mode}_train.jsonl"))).unwrap();
        let iids: Vec<i64> = train.iter().map(|r| r.iid).collect();
        assert_eq!(iids, vec![4, 4, 1, 1, 8, 8]);
    }
    let csv = std::fs::read_to_string(out.join("explain_external_valid.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("uid,iid,target,label,question"));
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(
            "1,5,6,Yes,\"The user has the following purchase history: T1; T2; T3; T4 ."
        ),
        "{row}"
    );
    assert_eq!(csv.lines().count(), 5);
}

#[test]
fn exports_the_original_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    write_rec_dir(&rec, &hand_dataset(), ModelKind::Sasrec);
    let mut s = settings(Mode::Both, ModelKind::Sasrec);
    s.section.export_original = true;
    let out = tmp.path().join("out");
    run_build(&rec, &out, &s);
    let text = std::fs::read_to_string(out.join("original/both_train.json")).unwrap();
    let v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let rank = v.iter().find(|r| r["type"] == "uidiid2rank").unwrap();
    assert_eq!(rank["question"].as_array().unwrap().len(), 2);
    assert_eq!(rank["topk"].as_array().unwrap().len(), 5);
    assert_eq!(rank["template"]["ASSISTANT"], "{0}");
    assert!(rank["template"]["USER"].as_str().unwrap().contains("{1}"));
    let title = v.iter().find(|r| r["type"] == "iid2title").unwrap();
    assert_eq!(title["question"], "<item>");
    assert!(title.get("uid").is_none());
    let binary = v.iter().find(|r| r["type"] == "uidiid2binary").unwrap();
    assert_eq!(binary["target"], 6);
    let explain: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(out.join("original/explan_both_valid.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(explain[0]["type"], "uidiid2explan");
    assert_eq!(explain[0]["answer"][0], "Yes");
    assert_eq!(explain[0]["answer"][2], "T6");
}

#[test]
fn sharegpt_requested_without_a_file_says_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    write_rec_dir(&rec, &hand_dataset(), ModelKind::Sasrec);
    let s = with_sharegpt(
        settings(Mode::Both, ModelKind::Sasrec),
        &tmp.path().join("nope.json"),
        10,
        1,
    );
    let err = build(
        &hand_dataset(),
        &rec,
        &tmp.path().join("o"),
        &s,
        &estimate_tokens,
        &Progress::hidden(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("recx assets fetch sharegpt") && err.contains("nope.json"),
        "{err}"
    );
    let mut unset = s.clone();
    unset.sharegpt_path = None;
    let err = build(
        &hand_dataset(),
        &rec,
        &tmp.path().join("o2"),
        &unset,
        &estimate_tokens,
        &Progress::hidden(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("alignment.sharegpt_path is not set"), "{err}");
}

#[test]
fn mf_stage_reads_only_test_top() {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    write_rec_dir(&rec, &hand_dataset(), ModelKind::Mf);
    assert!(!rec.join("train_top.txt").exists());
    let summary = run_build(
        &rec,
        &tmp.path().join("out"),
        &settings(Mode::Both, ModelKind::Mf),
    );
    assert_eq!(summary.counts["uid2next"], [10, 5]);
    assert_eq!(summary.counts["uidiid2rank"], [15, 3]);
    // MF explanations: valid lines i % 6 == 3 (one per user), train i % 6 < 3.
    assert_eq!(summary.explain["valid"], 6);
    assert_eq!(summary.explain["train"], 18);
}

#[test]
fn runs_as_a_pipeline_stage_and_records_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let ds = hand_dataset();
    let data_dir = tmp.path().join("data");
    ds.save(&data_dir).unwrap();
    let rec = tmp.path().join("rec");
    write_rec_dir(&rec, &ds, ModelKind::Sasrec);
    let mut spec = RawSpec::default();
    spec.experiment.name = "t".into();
    spec.alignment = section(Mode::Both);
    let stage = AlignmentDataStage;
    assert_eq!(stage.kind(), StageKind::AlignmentData);
    assert_eq!(stage.deps(), &[StageKind::Data, StageKind::Recommender]);

    let inputs = BTreeMap::from([(StageKind::Data, data_dir), (StageKind::Recommender, rec)]);
    let mut m = Measurements::default();
    let progress = Progress::hidden();
    let out = tmp.path().join("out");
    let settings = stage.settings(&spec, tmp.path(), 1).unwrap();
    let mut ctx = StageContext::new(settings, out.clone(), inputs, &mut m, &progress);
    stage.run(&mut ctx).unwrap();
    assert_eq!(m.scalars["count.uid2next.train"], 10.0);
    assert_eq!(m.scalars["count.uid2hist.train"], 13.0);
    assert_eq!(m.scalars["count.uidiid2binary.train"], 6.0);
    assert_eq!(m.scalars["count.iid2title.valid"], 8.0);
    assert_eq!(m.scalars["skipped.uid2summary"], 1.0);
    assert_eq!(m.scalars["count.explain.valid"], 6.0);
    assert!(out.join("train.jsonl").is_file());

    // The fingerprint resolves the seed and carries the template hash.
    let fp = stage.settings(&spec, tmp.path(), 1).unwrap().fingerprint();
    assert_eq!(fp["section"]["seed"], 2023);
    assert_eq!(fp["templates"]["sha256"].as_str().unwrap().len(), 64);
    spec.alignment.seed = recx::spec::SeedSetting::Run;
    assert_eq!(
        stage.settings(&spec, tmp.path(), 5).unwrap().fingerprint()["section"]["seed"],
        5
    );
    let custom = tmp.path().join("t.toml");
    let edited = recx::alignment::templates::BUILTIN_TEMPLATES
        .replace("Name the item: {0} .", "Name it: {0} .");
    std::fs::write(&custom, edited).unwrap();
    spec.alignment.templates = "t.toml".into();
    let fp2 = stage.settings(&spec, tmp.path(), 5).unwrap().fingerprint();
    assert_ne!(fp2["templates"]["sha256"], fp["templates"]["sha256"]);
}

/// ShareGPT conversations that passed the filter, and those taken for train and valid, from
/// the `stats.json` the stage wrote in `out`.
fn sharegpt_counts(out: &Path) -> serde_json::Value {
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap();
    let sg = &stats["sharegpt"];
    serde_json::json!([sg["passed_filter"], sg["train"], sg["valid"]])
}

#[test]
fn a_pretrained_backbone_counts_tokens_with_its_own_tokenizer() {
    use recx::llm::chat::{ChatTemplate, TemplateName};
    use recx::llm::tokenizer::Tokenizer;

    let tmp = tempfile::tempdir().unwrap();
    let ds = hand_dataset();
    let data_dir = tmp.path().join("data");
    ds.save(&data_dir).unwrap();
    let rec = tmp.path().join("rec");
    write_rec_dir(&rec, &ds, ModelKind::Sasrec);
    std::fs::write(tmp.path().join("sharegpt.json"), truncated_sharegpt(12)).unwrap();
    // A backbone folder whose byte-level vocabulary spends about a token per character, where
    // the estimate counts "question 7" as 3 tokens.
    let backbone = tmp.path().join("backbone");
    std::fs::create_dir_all(&backbone).unwrap();
    let template = ChatTemplate::new(TemplateName::Llama2);
    Tokenizer::train_bpe(["games"].iter(), &template.bpe_train_config(262))
        .unwrap()
        .save(&backbone.join("tokenizer.json"))
        .unwrap();

    let mut spec = RawSpec::default();
    spec.experiment.name = "t".into();
    spec.alignment = section(Mode::Behaviour);
    spec.alignment.sharegpt_path = "sharegpt.json".into();
    spec.alignment.sharegpt_train = 5;
    spec.alignment.sharegpt_valid = 3;
    spec.alignment.sharegpt_max_prompt_tokens = 5;
    let run = |spec: &RawSpec, out: &Path| {
        let inputs = BTreeMap::from([
            (StageKind::Data, data_dir.clone()),
            (StageKind::Recommender, rec.clone()),
        ]);
        let mut m = Measurements::default();
        let progress = Progress::hidden();
        let settings = AlignmentDataStage.settings(spec, tmp.path(), 1).unwrap();
        let mut ctx = StageContext::new(settings, out.to_path_buf(), inputs, &mut m, &progress);
        AlignmentDataStage.run(&mut ctx).unwrap();
    };
    let stage = AlignmentDataStage;

    let estimated = tmp.path().join("estimated");
    run(&spec, &estimated);
    assert_eq!(sharegpt_counts(&estimated), serde_json::json!([12, 5, 3]));
    let fp_estimate = stage.settings(&spec, tmp.path(), 1).unwrap().fingerprint();
    assert_eq!(fp_estimate["token_counter"], "estimate_tokens/v1");

    spec.llm.model = "backbone".into();
    let counted = tmp.path().join("counted");
    run(&spec, &counted);
    assert_eq!(
        sharegpt_counts(&counted),
        serde_json::json!([0, 0, 0]),
        "every first question is over 5 real tokens"
    );
    let fp_backbone = stage.settings(&spec, tmp.path(), 1).unwrap().fingerprint();
    assert!(
        fp_backbone["token_counter"]["backbone"].is_object(),
        "{fp_backbone}"
    );
}

/// Task 4 on raw Amazon 2018 metadata: the meta file's `description` and `brand` reach the item
/// tasks (the shared Games files carry titles only, so there they are empty). The Magazine meta
/// file has no `feature` lists (0 of 3,385 lines), so `iid2feature` has nothing to ask here.
#[test]
fn amazon_raw_metadata_feeds_the_feature_description_and_brand_tasks() {
    let Some(dir) = crate::data_support::shared("amazon-magazine-raw") else {
        return;
    };
    let mut data = recx::data::DataSection {
        source: recx::data::Source::AmazonRaw,
        path: dir.display().to_string(),
        ..Default::default()
    };
    data.amazon.reviews = "Magazine_Subscriptions_5.json.gz".into();
    data.amazon.meta = "meta_Magazine_Subscriptions.json.gz".into();
    data.stage2.enabled = Some(false);
    let ds = recx::data::build(&data, Path::new("."), 0, &Progress::hidden())
        .unwrap()
        .dataset;
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    write_rec_dir(&rec, &ds, ModelKind::Sasrec);
    let count = |mode: Mode, task: &str| {
        let out = tmp.path().join(format!("out-{mode}"));
        let s = settings(mode, ModelKind::Sasrec);
        let summary = build(&ds, &rec, &out, &s, &estimate_tokens, &Progress::hidden()).unwrap();
        summary.counts.get(task).map_or(0, |c| c[0])
    };
    for task in ["iid2description", "iid2brand"] {
        assert!(
            count(Mode::Both, task) > 0,
            "{task}: no records from raw metadata"
        );
    }
    assert!(count(Mode::Behaviour, "description2iid") > 0);
}
