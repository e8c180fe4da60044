//! Task records against hand-worked examples (spec §3.2–§3.4) on the dataset of
//! `alignment_common::hand_dataset`: u1 = [1 2 3 4 5], u2 = [2 4 6 8 1 3], u3 = [5 6 7 8 2],
//! items titled "T1".."T8"; every top line has candidates [7 3 5 1 8], positive 6, negative 2.

use crate::alignment_common;

use alignment_common::*;
use recx::alignment::tasks::{Split, TaskData, TopInputs};
use recx::alignment::templates::fill;
use recx::alignment::tokens::estimate_tokens;
use recx::alignment::{AlignmentSection, Generator, Mode, Task, TaskRecord, Templates};
use recx::data::Dataset;

fn generate_with(ds: &Dataset, section: &AlignmentSection, tops: &TopInputs) -> TaskData {
    let templates = Templates::builtin();
    let g = Generator::new(ds, &templates, section, 2023, &estimate_tokens);
    g.generate(Some(&sim_file()), tops).unwrap()
}

fn sasrec(ds: &Dataset) -> TopInputs {
    let (train, test) = sasrec_tops(ds);
    TopInputs::Sasrec {
        train: top_file("train_top.txt", train),
        test: top_file("test_top.txt", test),
    }
}

fn generate(mode: Mode) -> TaskData {
    let ds = hand_dataset();
    generate_with(&ds, &section(mode), &sasrec(&ds))
}

/// The record of `task` in `split` for user `uid` at interaction `iid`.
fn find(data: &TaskData, task: Task, split: Split, uid: u32, iid: i64) -> Vec<TaskRecord> {
    data.of(task, split)
        .iter()
        .filter(|r| r.uid == Some(uid) && r.iid == iid)
        .cloned()
        .collect()
}

fn assert_rendered(r: &TaskRecord) {
    let t = Templates::builtin();
    let text = &t.set(&r.template_set)[r.template];
    assert_eq!(r.question, fill(text, &r.slots), "{r:?}");
}

#[test]
fn sasrec_counts_follow_the_formulas() {
    let ds = hand_dataset();
    let (interactions, users) = (ds.n_interactions(), ds.n_users);
    assert_eq!((interactions, users), (16, 3));
    for mode in [Mode::Behaviour, Mode::Intention, Mode::Both] {
        let d = generate(mode);
        assert_eq!(
            d.count(Task::Uid2Next, Split::Train),
            interactions - 2 * users,
            "{mode}"
        );
        assert_eq!(d.count(Task::Uid2Next, Split::Valid), users);
        assert_eq!(
            d.count(Task::UidIid2Rank, Split::Train),
            interactions - 2 * users
        );
        assert_eq!(d.count(Task::UidIid2Rank, Split::Valid), users);
        assert_eq!(d.count(Task::UidIid2Binary, Split::Train), 2 * users);
        let valid_binary = d.count(Task::UidIid2Binary, Split::Valid);
        assert!(valid_binary.is_multiple_of(2) && valid_binary <= 2 * users);
        let hist = if mode == Mode::Behaviour {
            [0, 0]
        } else {
            [interactions - users, users]
        };
        assert_eq!(
            [
                d.count(Task::Uid2Hist, Split::Train),
                d.count(Task::Uid2Hist, Split::Valid)
            ],
            hist
        );
        // uid2summary needs an LLM: left out, with a reason.
        assert_eq!(d.count(Task::Uid2Summary, Split::Train), 0);
        assert_eq!(d.skipped.len(), 1);
        assert_eq!(d.skipped[0].0, Task::Uid2Summary);
    }
    let b = generate(Mode::Behaviour);
    let counts = |d: &TaskData, t| [d.count(t, Split::Train), d.count(t, Split::Valid)];
    assert_eq!(counts(&b, Task::Iid2Title), [0, 0]);
    assert_eq!(counts(&b, Task::Iid2Feature), [1, 0]);
    assert_eq!(counts(&b, Task::Feature2Iid), [1, 0]);
    assert_eq!(counts(&b, Task::Iid2Description), [1, 0]);
    assert_eq!(counts(&b, Task::Description2Iid), [1, 0]);
    assert_eq!(
        counts(&b, Task::Iid2Brand),
        [2, 0],
        "an empty brand makes no record"
    );
    assert_eq!(counts(&b, Task::Iid2Sim), [8, 0]);
    let i = generate(Mode::Intention);
    assert_eq!(counts(&i, Task::Iid2Title), [8, 8]);
    assert_eq!(counts(&i, Task::Feature2Iid), [0, 0]);
    assert_eq!(counts(&i, Task::Description2Iid), [0, 0]);
}

#[test]
fn next_item_cuts_history_before_the_target_in_each_mode() {
    // u2 = [2 4 6 8 1 3]; the train line at iid 8 sees [2 4 6]; its label is the top item T4.
    let expect = [
        (Mode::Behaviour, "T2; T4; T6"),
        (Mode::None, "T2; T4; T6"),
        (Mode::Intention, "<user>"),
        (Mode::Both, "<user>T2; T4; T6"),
    ];
    for (mode, slot) in expect {
        let d = generate(mode);
        let r = &find(&d, Task::Uid2Next, Split::Train, 2, 8)[0];
        assert_eq!(r.slots, vec![slot.to_string()], "{mode}");
        assert_eq!(r.answer, "T4");
        assert_eq!(r.history, vec![2, 4, 6]);
        assert!(r.item_tokens.is_empty());
        assert!(r.question.contains(slot));
        assert_rendered(r);
    }
    // The history is the last max_hist_len items; the separator is configurable.
    let ds = hand_dataset();
    let s = AlignmentSection {
        max_hist_len: 2,
        separator: ", ".into(),
        ..section(Mode::Both)
    };
    let d = generate_with(&ds, &s, &sasrec(&ds));
    let r = &find(&d, Task::Uid2Next, Split::Train, 2, 8)[0];
    assert_eq!(r.slots, vec!["<user>T4, T6".to_string()]);
    assert_eq!(r.history, vec![4, 6]);
    // The valid line (test_top) is the last item: the history is everything before it.
    let r = &find(&d, Task::Uid2Next, Split::Valid, 2, 3)[0];
    assert_eq!(r.history, vec![8, 1]);
}

#[test]
fn ranking_answer_keeps_model_order_and_prompt_shows_shuffled_candidates() {
    for mode in [Mode::Behaviour, Mode::Intention, Mode::Both] {
        let d = generate(mode);
        let mut any_shuffled = false;
        for r in d.of(Task::UidIid2Rank, Split::Train) {
            assert_eq!(
                r.answer, "T7; T3; T5; T1; T8",
                "label = the model's rank order"
            );
            let mut sorted = r.candidates.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![1, 3, 5, 7, 8], "candidates are a permutation");
            any_shuffled |= r.candidates != vec![7, 3, 5, 1, 8];
            let titles: Vec<String> = r.candidates.iter().map(|i| format!("T{i}")).collect();
            let expected_slot = match mode {
                Mode::Intention => "<item>".repeat(5),
                Mode::Both => titles
                    .iter()
                    .map(|t| format!("<item>{t}"))
                    .collect::<Vec<_>>()
                    .join("; "),
                _ => titles.join("; "),
            };
            assert_eq!(r.slots[1], expected_slot, "{mode}");
            let tokens = if mode.uses_tokens() {
                r.candidates.clone()
            } else {
                vec![]
            };
            assert_eq!(r.item_tokens, tokens, "<item> ids follow prompt order");
            assert_rendered(r);
        }
        assert!(any_shuffled, "{mode}: the prompt order is shuffled");
    }
}

#[test]
fn binary_takes_the_second_to_last_line_with_positive_then_negative() {
    let d = generate(Mode::Both);
    let train = d.of(Task::UidIid2Binary, Split::Train);
    let lines: Vec<(Option<u32>, i64)> = train.iter().map(|r| (r.uid, r.iid)).collect();
    // One line per user, the one whose item is seq[-2]: u1 → 4, u2 → 1, u3 → 8.
    assert_eq!(
        lines,
        vec![
            (Some(1), 4),
            (Some(1), 4),
            (Some(2), 1),
            (Some(2), 1),
            (Some(3), 8),
            (Some(3), 8)
        ]
    );
    let (pos, neg) = (&train[0], &train[1]);
    assert_eq!((pos.target, pos.answer.as_str()), (Some(6), "Yes"));
    assert_eq!((neg.target, neg.answer.as_str()), (Some(2), "No"));
    assert_eq!(
        pos.slots,
        vec!["<user>T1; T2; T3".to_string(), "<item>T6".to_string()]
    );
    assert_eq!(
        neg.slots,
        vec!["<user>T1; T2; T3".to_string(), "<item>T2".to_string()]
    );
    assert_eq!(pos.item_tokens, vec![6]);
    assert_rendered(pos);
    let b = generate(Mode::Behaviour);
    let pos = &b.of(Task::UidIid2Binary, Split::Train)[0];
    assert_eq!(pos.slots, vec!["T1; T2; T3".to_string(), "T6".to_string()]);
    let i = generate(Mode::Intention);
    let neg = &i.of(Task::UidIid2Binary, Split::Train)[1];
    assert_eq!(neg.slots, vec!["<user>".to_string(), "<item>".to_string()]);
    assert_eq!(neg.item_tokens, vec![2]);
}

#[test]
fn history_reconstruction_has_every_prefix_and_the_full_history() {
    let d = generate(Mode::Both);
    // u2 = [2 4 6 8 1 3]: train prefixes at iid 4, 6, 8, 1, 3.
    let r = &find(&d, Task::Uid2Hist, Split::Train, 2, 8)[0];
    assert_eq!(r.answer, "T2; T4; T6");
    assert_eq!(
        r.slots,
        vec!["<user>".to_string()],
        "the hybrid question shows only the token"
    );
    let first = &find(&d, Task::Uid2Hist, Split::Train, 2, 4)[0];
    assert_eq!(first.answer, "T2");
    assert!(
        find(&d, Task::Uid2Hist, Split::Train, 2, 2).is_empty(),
        "no record for the first item"
    );
    let valid = &find(&d, Task::Uid2Hist, Split::Valid, 2, -1)[0];
    assert_eq!(valid.answer, "T2; T4; T6; T8; T1; T3");
    assert_eq!(valid.history, vec![2, 4, 6, 8, 1, 3]);
}

#[test]
fn item_tasks_render_per_mode() {
    let b = generate(Mode::Behaviour);
    let feature = &b.of(Task::Iid2Feature, Split::Train)[0];
    assert_eq!(
        (feature.slots[0].as_str(), feature.answer.as_str()),
        ("T1", "f1a; f1b")
    );
    assert_eq!(feature.uid, None);
    assert_eq!(feature.iid, 1);
    let reverse = &b.of(Task::Feature2Iid, Split::Train)[0];
    assert_eq!(
        (reverse.slots[0].as_str(), reverse.answer.as_str()),
        ("f1a; f1b", "T1")
    );
    let desc = &b.of(Task::Iid2Description, Split::Train)[0];
    assert_eq!(
        desc.answer,
        "a description of item one that is longer than fifty characters"
    );
    let brands: Vec<&str> = b
        .of(Task::Iid2Brand, Split::Train)
        .iter()
        .map(|r| r.answer.as_str())
        .collect();
    assert_eq!(brands, vec!["B1", "Big Co"]);
    let sim = &b.of(Task::Iid2Sim, Split::Train)[7];
    assert_eq!(
        (sim.iid, sim.slots[0].as_str(), sim.answer.as_str()),
        (8, "T8", "T1")
    );

    let h = generate(Mode::Both);
    let sim = &h.of(Task::Iid2Sim, Split::Train)[7];
    assert_eq!(
        (sim.slots[0].as_str(), sim.item_tokens.clone()),
        ("<item>T8", vec![8])
    );
    let title = &h.of(Task::Iid2Title, Split::Train)[2];
    assert_eq!(
        (title.slots[0].as_str(), title.answer.as_str()),
        ("<item>", "T3")
    );
    let recovery = &h.of(Task::Iid2Title, Split::Valid)[2];
    assert_eq!(recovery.template_set, "test_iid2title");
    assert_eq!(title.template_set, "iid2title");
    assert_rendered(recovery);
    let i = generate(Mode::Intention);
    let feature = &i.of(Task::Iid2Feature, Split::Train)[0];
    assert_eq!(
        (feature.slots[0].as_str(), feature.item_tokens.clone()),
        ("<item>", vec![1])
    );
}

#[test]
fn text_questions_are_cut_to_the_token_limit() {
    let ds = hand_dataset();
    let templates = Templates::builtin();
    let s = AlignmentSection {
        text_max_tokens: 1,
        ..section(Mode::Behaviour)
    };
    let words = |t: &str| t.split_whitespace().count();
    let g = Generator::new(&ds, &templates, &s, 2023, &words);
    let d = g.generate(Some(&sim_file()), &sasrec(&ds)).unwrap();
    assert_eq!(d.of(Task::Feature2Iid, Split::Train)[0].slots[0], "f1a;");
    assert_eq!(d.of(Task::Description2Iid, Split::Train)[0].slots[0], "a");
    // The forward direction's answer is never cut.
    assert_eq!(d.of(Task::Iid2Feature, Split::Train)[0].answer, "f1a; f1b");
}

#[test]
fn modes_share_template_and_shuffle_draws() {
    let b = generate(Mode::Behaviour);
    let i = generate(Mode::Intention);
    for task in [
        Task::Uid2Next,
        Task::UidIid2Rank,
        Task::UidIid2Binary,
        Task::Iid2Sim,
    ] {
        for split in Split::ALL {
            let key = |d: &TaskData| {
                d.of(task, split)
                    .iter()
                    .map(|r| (r.template, r.candidates.clone(), r.target))
                    .collect::<Vec<_>>()
            };
            assert_eq!(key(&b), key(&i), "{task} {split:?}");
        }
    }
}

#[test]
fn task_selection_keeps_other_tasks_identical() {
    let ds = hand_dataset();
    let all = generate(Mode::Both);
    let only = AlignmentSection {
        tasks: vec![Task::UidIid2Rank],
        ..section(Mode::Both)
    };
    let d = generate_with(&ds, &only, &sasrec(&ds));
    assert_eq!(d.count(Task::Uid2Next, Split::Train), 0);
    assert_eq!(
        d.of(Task::UidIid2Rank, Split::Train),
        all.of(Task::UidIid2Rank, Split::Train)
    );
    assert!(d.skipped.is_empty());
}

#[test]
fn mf_splits_by_line_index_and_valid_users() {
    let ds = hand_dataset();
    let tops = TopInputs::Mf {
        test: top_file("test_top.txt", mf_tops(&ds)),
    };
    let d = generate_with(&ds, &section(Mode::Both), &tops);
    // 3 users, 6 lines each; the valid users are uid > 0.9 * 3, i.e. u3.
    assert_eq!(d.count(Task::Uid2Next, Split::Train), 10);
    assert_eq!(d.count(Task::Uid2Next, Split::Valid), 5);
    let labels: Vec<&str> = d
        .of(Task::Uid2Next, Split::Valid)
        .iter()
        .map(|r| r.answer.as_str())
        .collect();
    assert_eq!(
        labels,
        vec!["T1", "T2", "T3", "T4", "T5"],
        "line r carries the (r+1)-th item"
    );
    assert_eq!(d.count(Task::UidIid2Rank, Split::Train), 15);
    assert_eq!(d.count(Task::UidIid2Rank, Split::Valid), 3);
    assert_eq!(d.count(Task::UidIid2Binary, Split::Train), 18);
    assert!(d.count(Task::UidIid2Binary, Split::Valid) <= 6);
    assert_eq!(d.count(Task::Uid2Hist, Split::Train), 6, "3 per train user");
    let valid = d.of(Task::Uid2Hist, Split::Valid);
    assert_eq!(valid.len(), 1);
    assert_eq!(
        (valid[0].uid, valid[0].iid, valid[0].answer.as_str()),
        (Some(3), 2, "T5; T6; T7; T8")
    );
}

#[test]
fn bad_top_lines_name_the_file_and_line() {
    let ds = hand_dataset();
    let (mut train, test) = sasrec_tops(&ds);
    train[4].iid = 7; // u2 never had item 7
    let tops = TopInputs::Sasrec {
        train: top_file("train_top.txt", train),
        test: top_file("test_top.txt", test),
    };
    let templates = Templates::builtin();
    let s = section(Mode::Behaviour);
    let g = Generator::new(&ds, &templates, &s, 2023, &estimate_tokens);
    let err = g
        .generate(Some(&sim_file()), &tops)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "train_top.txt:5: item 7 is not in user 2's sequence");

    let (train, mut test) = sasrec_tops(&ds);
    test[0].candidates[2] = 99;
    let tops = TopInputs::Sasrec {
        train: top_file("train_top.txt", train),
        test: top_file("test_top.txt", test),
    };
    let err = g
        .generate(Some(&sim_file()), &tops)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("test_top.txt:1: item id 99"), "{err}");

    let mut mf = mf_tops(&ds);
    mf.pop();
    let err = g.generate(
        Some(&sim_file()),
        &TopInputs::Mf {
            test: top_file("test_top.txt", mf),
        },
    );
    assert!(err.unwrap_err().to_string().contains("6 lines per user"));
}

#[test]
fn user_summaries_become_train_records_when_given() {
    let ds = hand_dataset();
    let templates = Templates::builtin();
    let summaries: std::collections::BTreeMap<u32, String> = (1..=3)
        .map(|u| (u, format!("summary of user {u}")))
        .collect();
    for (mode, slot) in [
        (Mode::Behaviour, "T1; T2; T3; T4"),
        (Mode::Intention, "<user>"),
        (Mode::Both, "<user>T1; T2; T3; T4"),
    ] {
        let s = section(mode);
        let mut g = Generator::new(&ds, &templates, &s, 2023, &estimate_tokens);
        g.summaries = Some(&summaries);
        let d = g.generate(Some(&sim_file()), &sasrec(&ds)).unwrap();
        assert!(d.skipped.is_empty());
        let recs = d.of(Task::Uid2Summary, Split::Train);
        assert_eq!(recs.len(), 3, "one per user");
        // u1 = [1 2 3 4 5]: the history before the last item.
        assert_eq!((recs[0].uid, recs[0].iid), (Some(1), 5));
        assert_eq!(recs[0].slots, vec![slot.to_string()], "{mode}");
        assert_eq!(recs[0].answer, "summary of user 1");
        assert_rendered(&recs[0]);
        assert_eq!(d.count(Task::Uid2Summary, Split::Valid), 0);
    }
    // MF: train users only (u3 is the valid user).
    let s = section(Mode::Both);
    let mut g = Generator::new(&ds, &templates, &s, 2023, &estimate_tokens);
    g.summaries = Some(&summaries);
    let tops = TopInputs::Mf {
        test: top_file("test_top.txt", mf_tops(&ds)),
    };
    let d = g.generate(Some(&sim_file()), &tops).unwrap();
    let users: Vec<Option<u32>> = d
        .of(Task::Uid2Summary, Split::Train)
        .iter()
        .map(|r| r.uid)
        .collect();
    assert_eq!(users, vec![Some(1), Some(2)]);
    // A missing summary is an error naming the user.
    let partial: std::collections::BTreeMap<u32, String> =
        summaries.clone().into_iter().take(2).collect();
    g.summaries = Some(&partial);
    let err = g
        .generate(Some(&sim_file()), &sasrec(&ds))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no summary was given for user 3"), "{err}");
}

#[test]
fn summary_queries_list_the_history_before_the_last_item() {
    let ds = hand_dataset();
    let t = Templates::builtin();
    let q = recx::alignment::tasks::summary_queries(&ds, &t, "; ", 2);
    assert_eq!(q.len(), 3);
    assert_eq!(q[1].0, 2);
    // u2 = [2 4 6 8 1 3]: the last 2 items before 3.
    assert!(
        q[1].1.ends_with("Here is the purchase history: T8; T1"),
        "{}",
        q[1].1
    );
}
