//! The ShareGPT reader on truncated files (the packaged file is cut short) and the §1.9 selection.

use crate::alignment_common;
use crate::skip_support;

use std::path::Path;

use alignment_common::truncated_sharegpt;
use recx::alignment::sharegpt::{for_each_element, load_sharegpt};
use recx::alignment::tokens::estimate_tokens;

#[test]
fn reads_every_whole_conversation_of_a_truncated_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sg.json");
    std::fs::write(&path, truncated_sharegpt(30)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut ids = Vec::new();
    let stats = for_each_element(&path, &bytes, |v| {
        ids.push(v["id"].as_str().unwrap().to_string())
    })
    .unwrap();
    assert!(stats.truncated);
    assert_eq!(stats.elements, 30);
    assert_eq!(ids.first().map(String::as_str), Some("c0"));
    assert_eq!(ids.last().map(String::as_str), Some("c29"));
    // Cutting the file anywhere keeps exactly the elements that end before the cut.
    let text = truncated_sharegpt(5);
    let ends: Vec<usize> = text.match_indices("\n  },").map(|(i, _)| i + 4).collect();
    for cut in (1..text.len()).step_by(7) {
        let mut n = 0;
        let s = for_each_element(&path, &text.as_bytes()[..cut], |_| n += 1).unwrap();
        assert!(s.truncated, "cut at {cut}");
        assert_eq!(
            n,
            ends.iter().filter(|&&e| e <= cut).count(),
            "cut at {cut}"
        );
    }
}

#[test]
fn selection_is_seeded_and_splits_without_overlap() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("sg.json");
    std::fs::write(&path, truncated_sharegpt(40)).unwrap();
    let a = load_sharegpt(&path, 20, 10, 724, &estimate_tokens, 2023).unwrap();
    let b = load_sharegpt(&path, 20, 10, 724, &estimate_tokens, 2023).unwrap();
    let c = load_sharegpt(&path, 20, 10, 724, &estimate_tokens, 9).unwrap();
    assert_eq!((a.train.len(), a.valid.len(), a.kept), (20, 10, 40));
    assert_eq!(a.train, b.train);
    assert_ne!(a.train, c.train);
    assert!(a.train.iter().all(|t| !a.valid.contains(t)));
    // The answers with quotes and brackets survive whole.
    assert!(
        a.train[0].conversations[1]
            .value
            .contains("\"quotes\" and ] brackets")
    );
    // Asking for more than there is gives what there is.
    let d = load_sharegpt(&path, 35, 10, 724, &estimate_tokens, 2023).unwrap();
    assert_eq!((d.train.len(), d.valid.len()), (35, 5));
    // The first-prompt token limit filters.
    let e = load_sharegpt(
        &path,
        100,
        0,
        1,
        &|s: &str| s.split_whitespace().count(),
        2023,
    )
    .unwrap();
    assert_eq!(e.kept, 0);
}

/// The packaged file (`RECX_SHAREGPT=/path/ShareGPT_V3_unfiltered_cleaned_split.json`): prints how
/// many conversations are read and kept, and the time taken.
#[test]
#[ignore = "reads the 125 MB packaged file named by RECX_SHAREGPT"]
fn reads_the_packaged_file() {
    let Ok(p) = std::env::var("RECX_SHAREGPT") else {
        skip_support::missing("RECX_SHAREGPT is not set");
        return;
    };
    let t = std::time::Instant::now();
    let sg = load_sharegpt(Path::new(&p), 10_000, 1_000, 724, &estimate_tokens, 2023).unwrap();
    println!(
        "read {} whole conversations (truncated file: {}), {} pass the filter, train {} valid {}, in {:.2} s",
        sg.read.elements,
        sg.read.truncated,
        sg.kept,
        sg.train.len(),
        sg.valid.len(),
        t.elapsed().as_secs_f64()
    );
    assert!(sg.read.truncated);
    assert_eq!((sg.train.len(), sg.valid.len()), (10_000, 1_000));
}
