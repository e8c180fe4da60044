//! The count formulas of Table B2 on real data: the Amazon Video Games set of
//! `../shared/data/amazon-video-games` after the paper's stage-2 filter (the data stage; about
//! 3,900 users and 31,600 interactions, as the paper's), with SASRec-shaped top files drawn at
//! random (the counts depend only on which lines exist, not on the recommender's choices).

use crate::skip_support;

use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use recx::alignment::tasks::{SimFile, Split, TopFile, TopInputs};
use recx::alignment::tokens::estimate_tokens;
use recx::alignment::{AlignmentSection, Generator, Mode, Task, Templates};
use recx::data::{DataSection, Dataset, Source};
use recx::pipeline::Progress;
use recx::recommender::top_file::TopLine;

/// The paper's Games set: stage 1 output through the stage-2 filter.
fn games() -> Option<Dataset> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/amazon-video-games");
    if !dir.join("sequential_data.txt").is_file() {
        skip_support::missing(format!("{} is missing", dir.display()));
        return None;
    }
    let section = DataSection {
        source: Source::Recexplainer,
        path: dir.display().to_string(),
        ..DataSection::default()
    };
    let built = recx::data::build(&section, Path::new("."), 0, &Progress::hidden()).unwrap();
    Some(built.dataset)
}

fn random_line(rng: &mut ChaCha8Rng, n_items: usize, uid: u32, iid: u32) -> TopLine {
    let mut item = || rng.random_range(1..=n_items as u32);
    TopLine {
        uid,
        iid,
        top: item(),
        candidates: [item(), item(), item(), item(), item()],
        pos: item(),
        neg: item(),
        pos_score: 1.0,
        neg_score: -1.0,
    }
}

#[test]
fn table_b2_formulas_hold_on_the_games_stage2_set() {
    let Some(ds) = games() else { return };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (uid, seq) in ds.users() {
        for &iid in &seq[1..seq.len() - 1] {
            train.push(random_line(&mut rng, ds.n_items, uid, iid));
        }
        test.push(random_line(&mut rng, ds.n_items, uid, *seq.last().unwrap()));
    }
    let tops = TopInputs::Sasrec {
        train: TopFile {
            path: "train_top.txt".into(),
            lines: train,
        },
        test: TopFile {
            path: "test_top.txt".into(),
            lines: test,
        },
    };
    let pairs = (1..=ds.n_items as u32)
        .map(|i| (i, i % ds.n_items as u32 + 1))
        .collect();
    let sim = SimFile {
        path: "sim_item.txt".into(),
        pairs,
    };
    let templates = Templates::builtin();
    let (interactions, users) = (ds.n_interactions(), ds.n_users);
    for mode in [Mode::Behaviour, Mode::Both] {
        let section = AlignmentSection {
            mode,
            ..Default::default()
        };
        let start = Instant::now();
        let g = Generator::new(&ds, &templates, &section, 2023, &estimate_tokens);
        let d = g.generate(Some(&sim), &tops).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let c = |t: Task, s: Split| d.count(t, s);
        let train_total: usize = d.records(Split::Train).count();
        println!(
            "{mode}: {users} users, {interactions} interactions -> {train_total} train / {} valid records in {secs:.2} s",
            d.records(Split::Valid).count()
        );
        assert_eq!(c(Task::Uid2Next, Split::Train), interactions - 2 * users);
        assert_eq!(c(Task::UidIid2Rank, Split::Train), interactions - 2 * users);
        assert_eq!(c(Task::Uid2Next, Split::Valid), users);
        assert_eq!(c(Task::UidIid2Rank, Split::Valid), users);
        assert_eq!(c(Task::UidIid2Binary, Split::Train), 2 * users);
        // Valid binary keeps each test line with probability 0.3: 2 * 0.3 * users on average.
        let vb = c(Task::UidIid2Binary, Split::Valid) as f64;
        let expected = 2.0 * 0.3 * users as f64;
        assert!(
            (vb - expected).abs() < 4.0 * (2.0 * (users as f64 * 0.21).sqrt()),
            "{vb} vs {expected}"
        );
        if mode == Mode::Both {
            assert_eq!(c(Task::Uid2Hist, Split::Train), interactions - users);
            assert_eq!(c(Task::Uid2Hist, Split::Valid), users);
            assert_eq!(c(Task::Iid2Title, Split::Valid), ds.n_items);
        }
        assert_eq!(c(Task::Iid2Sim, Split::Train), ds.n_items);
    }
}

/// The whole stage output on the Games stage-2 set with the packaged ShareGPT file
/// (`RECX_SHAREGPT=...`): prints the counts table, the time and the file sizes.
#[test]
#[ignore = "needs RECX_SHAREGPT; writes ~100 MB into a temporary folder"]
fn whole_stage_on_the_games_stage2_set() {
    let Some(ds) = games() else { return };
    let Ok(sharegpt) = std::env::var("RECX_SHAREGPT") else {
        skip_support::missing("RECX_SHAREGPT is not set");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    std::fs::create_dir_all(&rec).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (uid, seq) in ds.users() {
        for &iid in &seq[1..seq.len() - 1] {
            train.push(random_line(&mut rng, ds.n_items, uid, iid));
        }
        test.push(random_line(&mut rng, ds.n_items, uid, *seq.last().unwrap()));
    }
    use recx::recommender::top_file::write_top_file;
    write_top_file(&rec.join("train_top.txt"), &train).unwrap();
    write_top_file(&rec.join("test_top.txt"), &test).unwrap();
    let sim: String = (1..=ds.n_items)
        .map(|i| format!("{i}\t{}\n", i % ds.n_items + 1))
        .collect();
    std::fs::write(rec.join("sim_item.txt"), sim).unwrap();
    let settings = recx::alignment::stage::Settings {
        section: AlignmentSection {
            mode: Mode::Both,
            ..Default::default()
        },
        seed: 2023,
        model: recx::recommender::ModelKind::Sasrec,
        templates: Templates::builtin(),
        sharegpt_path: Some(sharegpt.into()),
        explain_valid: 500,
        explain_train: 2000,
        summaries: None,
    };
    let out = tmp.path().join("out");
    let start = Instant::now();
    let progress = Progress::hidden();
    let summary =
        recx::alignment::stage::build(&ds, &rec, &out, &settings, &estimate_tokens, &progress)
            .unwrap();
    println!("{}", summary.table());
    println!("stage time {:.2} s", start.elapsed().as_secs_f64());
    let mut files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let len = std::fs::metadata(&f).unwrap().len();
        println!("{:>12} {}", len, f.file_name().unwrap().to_string_lossy());
    }
}
