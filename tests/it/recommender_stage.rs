//! The recommender stage end to end on tiny synthetic data whose right answer is known:
//! the models must learn it, history items must never be recommended, and the exports must
//! parse back and agree with the loaded model.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use burn::backend::Flex;
use recx::data::Dataset;
use recx::pipeline::{Measurements, Progress, Resolved, StageContext};
use recx::recommender::export::read_matrix;
use recx::recommender::synthetic::{item_groups, successor_ring};
use recx::recommender::top_file::{TopLine, read_top_file};
use recx::recommender::{
    ModelKind, Query, RecommenderSection, TrainedRecommender, run_recommender,
    sasrec_user_embeddings,
};

fn tiny_sasrec() -> RecommenderSection {
    RecommenderSection {
        model: ModelKind::Sasrec,
        embedding_size: Some(32),
        n_heads: 2,
        inner_size: 64,
        hidden_dropout: 0.1,
        attn_dropout: 0.1,
        lr: Some(0.005),
        batch_size: Some(128),
        epochs: 25,
        ..Default::default()
    }
}

fn run(data: &Dataset, section: &RecommenderSection, out: &Path) -> Measurements {
    let settings = section.resolve(0).unwrap();
    let mut m = Measurements::default();
    let progress = Progress::hidden();
    let mut ctx = StageContext::new(
        Resolved::new(settings.clone()),
        out.to_path_buf(),
        BTreeMap::new(),
        &mut m,
        &progress,
    );
    run_recommender(&mut ctx, &settings, data).unwrap();
    m
}

/// The history a top line is conditioned on: items before the first occurrence of `iid`.
fn history<'a>(data: &'a Dataset, l: &TopLine) -> &'a [u32] {
    let seq = &data.sequences[l.uid as usize];
    &seq[..seq.iter().position(|&i| i == l.iid).unwrap()]
}

/// No exported item (top, candidates, positive, negative) is padding or a history item.
fn assert_no_history_items(data: &Dataset, lines: &[TopLine]) {
    for l in lines {
        let h: HashSet<u32> = history(data, l).iter().copied().collect();
        let all = [l.top, l.pos, l.neg].into_iter().chain(l.candidates);
        for i in all {
            assert!(
                i != 0 && !h.contains(&i),
                "item {i} recommended from the history of {l:?}"
            );
        }
        assert!(l.pos_score > l.neg_score, "{l:?}");
    }
}

#[test]
fn sasrec_learns_the_successor_and_exports_consistent_files() {
    let _rng = crate::serial::burn_rng();
    let data = successor_ring(300, 40, 10, 7);
    let dir = tempfile::tempdir().unwrap();
    let m = run(&data, &tiny_sasrec(), dir.path());
    let s = &m.scalars;
    println!(
        "sasrec hr@1 {} ndcg@10 {} | popularity ndcg@10 {}",
        s["hr@1"], s["ndcg@10"], s["popularity.ndcg@10"]
    );
    assert!(
        s["hr@1"] > 0.8,
        "SASRec should predict the successor: hr@1 = {}",
        s["hr@1"]
    );
    assert!(s["ndcg@10"] > s["popularity.ndcg@10"] + 0.4);
    assert_eq!(m.examples["ndcg@10"].len(), data.n_users);
    let loss = &m.series["train_loss"];
    assert!(
        loss.first().unwrap().1 > loss.last().unwrap().1,
        "loss should fall: {loss:?}"
    );

    // Top files: one line per training interaction / per user, as §1.6.
    let train_top = read_top_file(&dir.path().join("train_top.txt")).unwrap();
    let n_train: usize = data.users().map(|(_, s)| s.len() - 2).sum();
    assert_eq!(train_top.len(), n_train);
    let test_top = read_top_file(&dir.path().join("test_top.txt")).unwrap();
    assert_eq!(test_top.len(), data.n_users);
    assert_no_history_items(&data, &train_top);
    assert_no_history_items(&data, &test_top);
    let right = test_top
        .iter()
        .filter(|l| l.top == l.iid % 40 + 1 || l.top == l.iid)
        .count();
    assert!(
        right * 10 > test_top.len() * 8,
        "top-1 should mostly be the next ring item: {right}"
    );

    // sim_item.txt: every item once, never itself.
    let sim = std::fs::read_to_string(dir.path().join("sim_item.txt")).unwrap();
    let pairs: Vec<(u32, u32)> = sim
        .lines()
        .map(|l| {
            let (a, b) = l.split_once('\t').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_eq!(pairs.len(), 40);
    assert!(
        pairs
            .iter()
            .enumerate()
            .all(|(k, &(i, j))| i == k as u32 + 1 && j != i && (1..=40).contains(&j))
    );

    // Embedding tables and the reloaded model agree.
    let (items, rows, dim) = read_matrix(
        &dir.path().join("item_embeddings.safetensors"),
        "item_embedding",
    )
    .unwrap();
    assert_eq!((rows, dim), (41, 32));
    assert!(items[..32].iter().all(|&v| v == 0.0), "padding row is zero");
    let (users, urows, _) = read_matrix(
        &dir.path().join("user_embeddings.safetensors"),
        "user_embedding",
    )
    .unwrap();
    assert_eq!(urows, 301);
    let device = Default::default();
    let loaded = TrainedRecommender::<Flex>::load(dir.path(), &device).unwrap();
    assert_eq!(loaded.kind(), ModelKind::Sasrec);
    let table: Vec<f32> = loaded.item_table().into_data().to_vec().unwrap();
    assert_eq!(table, items);
    let TrainedRecommender::Sasrec(sasrec) = &loaded else {
        unreachable!()
    };
    let u1: Vec<f32> = sasrec_user_embeddings(sasrec, &[data.sequences[1].as_slice()], &device)
        .into_data()
        .to_vec()
        .unwrap();
    for (a, b) in u1.iter().zip(&users[32..64]) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn mf_learns_user_groups_and_writes_six_lines_per_user() {
    let _rng = crate::serial::burn_rng();
    let data = item_groups(300, 40, 4, 8, 11);
    let section = RecommenderSection {
        model: ModelKind::Mf,
        embedding_size: Some(32),
        n_negatives: 20,
        lr: Some(0.01),
        batch_size: Some(64),
        epochs: 20,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let m = run(&data, &section, dir.path());
    let s = &m.scalars;
    println!(
        "mf hr@5 {} | popularity hr@5 {}",
        s["hr@5"], s["popularity.hr@5"]
    );
    assert!(
        s["hr@5"] > s["popularity.hr@5"] + 0.3,
        "MF should learn the groups: {s:?}"
    );

    assert!(
        !dir.path().join("train_top.txt").exists(),
        "MF writes only test_top.txt"
    );
    let test_top = read_top_file(&dir.path().join("test_top.txt")).unwrap();
    assert_eq!(test_top.len(), 6 * data.n_users);
    assert_no_history_items(&data, &test_top);
    for user in test_top.chunks(6) {
        let tops: HashSet<u32> = user.iter().map(|l| l.top).collect();
        assert_eq!(tops.len(), 6, "line r carries the (r+1)-th ranked item");
        assert!(
            user.iter()
                .all(|l| (l.uid, l.iid) == (user[0].uid, user[0].iid))
        );
    }
    let loaded = TrainedRecommender::<Flex>::load(dir.path(), &Default::default()).unwrap();
    let (users, _, dim) = read_matrix(
        &dir.path().join("user_embeddings.safetensors"),
        "user_embedding",
    )
    .unwrap();
    let u5: Vec<f32> = loaded
        .user_embeddings(
            &[Query {
                uid: 5,
                history: &[],
            }],
            &Default::default(),
        )
        .into_data()
        .to_vec()
        .unwrap();
    assert_eq!(u5, users[5 * dim..6 * dim]);
}
