//! Hand-built inputs shared by the alignment tests: a tiny dataset whose records can be worked out
//! by hand, and SASRec / MF top files for it.

use std::path::Path;

use recx::alignment::stage::Settings;
use recx::alignment::tasks::{SimFile, TopFile};
use recx::alignment::{AlignmentSection, Mode, Templates};
use recx::data::{Dataset, ItemMeta};
use recx::recommender::ModelKind;
use recx::recommender::top_file::{TopLine, write_top_file};

/// Items 1..=8 titled "T1".."T8"; item 1 has features, a description and a brand; item 2 a
/// brand with the original's odd whitespace; users
/// u1 = [1 2 3 4 5], u2 = [2 4 6 8 1 3], u3 = [5 6 7 8 2]: 16 interactions, 3 users.
pub fn hand_dataset() -> Dataset {
    let mut items = vec![ItemMeta::default()];
    for i in 1..=8 {
        items.push(ItemMeta {
            raw_id: format!("A{i}"),
            title: format!("T{i}"),
            ..Default::default()
        });
    }
    items[1].features = vec!["f1a".into(), "f1b".into()];
    items[1].description = vec![
        "short".into(),
        "a description of item one that is longer than fifty characters".into(),
    ];
    items[1].brand = Some("B1".into());
    items[2].brand = Some("Big\n    \n    Co".into());
    items[3].brand = Some(String::new());
    Dataset {
        n_users: 3,
        n_items: 8,
        sequences: vec![
            vec![],
            vec![1, 2, 3, 4, 5],
            vec![2, 4, 6, 8, 1, 3],
            vec![5, 6, 7, 8, 2],
        ],
        items,
        user_raw_ids: vec![String::new(), "ua".into(), "ub".into(), "uc".into()],
    }
}

/// A top line whose candidates, positive and negative are fixed functions of the ids.
pub fn line(uid: u32, iid: u32, top: u32) -> TopLine {
    TopLine {
        uid,
        iid,
        top,
        candidates: [7, 3, 5, 1, 8],
        pos: 6,
        neg: 2,
        pos_score: 2.5,
        neg_score: -1.25,
    }
}

/// SASRec `train_top.txt`: one line per items[1:-1]; `test_top.txt`: one per user (last item).
pub fn sasrec_tops(ds: &Dataset) -> (Vec<TopLine>, Vec<TopLine>) {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (uid, seq) in ds.users() {
        for &iid in &seq[1..seq.len() - 1] {
            train.push(line(uid, iid, 4));
        }
        test.push(line(uid, *seq.last().unwrap(), 4));
    }
    (train, test)
}

/// MF `test_top.txt`: 6 lines per user, line r labelled with item r + 1.
pub fn mf_tops(ds: &Dataset) -> Vec<TopLine> {
    let mut test = Vec::new();
    for (uid, seq) in ds.users() {
        for r in 0..6u32 {
            test.push(line(uid, *seq.last().unwrap(), r + 1));
        }
    }
    test
}

pub fn sim_pairs() -> Vec<(u32, u32)> {
    (1..=8)
        .map(|i| (i, if i == 8 { 1 } else { i + 1 }))
        .collect()
}

pub fn top_file(name: &str, lines: Vec<TopLine>) -> TopFile {
    TopFile {
        path: name.into(),
        lines,
    }
}

pub fn sim_file() -> SimFile {
    SimFile {
        path: "sim_item.txt".into(),
        pairs: sim_pairs(),
    }
}

/// Writes a recommender artifact folder for `ds` (SASRec or MF layout).
pub fn write_rec_dir(dir: &Path, ds: &Dataset, model: ModelKind) {
    std::fs::create_dir_all(dir).unwrap();
    match model {
        ModelKind::Sasrec => {
            let (train, test) = sasrec_tops(ds);
            write_top_file(&dir.join("train_top.txt"), &train).unwrap();
            write_top_file(&dir.join("test_top.txt"), &test).unwrap();
        }
        ModelKind::Mf => write_top_file(&dir.join("test_top.txt"), &mf_tops(ds)).unwrap(),
    }
    let sim: String = sim_pairs()
        .iter()
        .map(|(i, j)| format!("{i}\t{j}\n"))
        .collect();
    std::fs::write(dir.join("sim_item.txt"), sim).unwrap();
}

/// A section for `mode` without ShareGPT.
pub fn section(mode: Mode) -> AlignmentSection {
    AlignmentSection {
        mode,
        sharegpt_train: 0,
        sharegpt_valid: 0,
        ..Default::default()
    }
}

/// Stage settings for `mode` and `model`, seed 2023, no ShareGPT.
pub fn settings(mode: Mode, model: ModelKind) -> Settings {
    Settings {
        section: section(mode),
        seed: 2023,
        model,
        templates: Templates::builtin(),
        sharegpt_path: None,
        explain_valid: 500,
        explain_train: 2000,
        summaries: None,
    }
}

/// A ShareGPT-shaped JSON array of `n` two-turn conversations, cut in the middle of the last one
/// (like the packaged file).
pub fn truncated_sharegpt(n: usize) -> String {
    let mut s = String::from("[\n");
    for k in 0..n {
        s.push_str(&format!(
            "  {{\n    \"id\": \"c{k}\",\n    \"conversations\": [\n      {{\"from\": \"human\", \"value\": \"question {k}\"}},\n      {{\"from\": \"gpt\", \"value\": \"answer {k}, with \\\"quotes\\\" and ] brackets\"}}\n    ]\n  }},\n"
        ));
    }
    s.push_str("  {\n    \"id\": \"cut\",\n    \"conversations\": [\n      {\"from\": \"human\", \"value\": \"this one is cut off in the mid");
    s
}
