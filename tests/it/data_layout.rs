//! The processed layout: round trips, the real Games files, and every malformed-input path.

use recx::Error;
use recx::data::{Dataset, ItemMeta};

use crate::data_support;
use data_support::shared;

fn tiny() -> Dataset {
    let item = |raw: &str, title: &str| ItemMeta {
        raw_id: raw.into(),
        title: title.into(),
        ..ItemMeta::default()
    };
    Dataset {
        n_users: 2,
        n_items: 3,
        sequences: vec![vec![], vec![1, 2, 3], vec![3, 1]],
        items: vec![
            ItemMeta::default(),
            ItemMeta {
                brand: Some("Nintendo".into()),
                features: vec!["fun; loud".into()],
                description: vec!["A \"quoted\" game".into()],
                categories: vec!["Video Games".into(), "Wii".into()],
                ..item("B001", "Mario, Kart")
            },
            item("B002", "Zelda"),
            item("B003", "Tetris é"),
        ],
        user_raw_ids: vec![String::new(), "U1".into(), "U2".into()],
    }
}

#[test]
fn save_then_load_is_identity() {
    let dir = tempfile::tempdir().unwrap();
    let d = tiny();
    d.save(dir.path()).unwrap();
    assert_eq!(Dataset::load(dir.path()).unwrap(), d);
    let meta = std::fs::read_to_string(dir.path().join("metadata.json")).unwrap();
    assert_eq!(
        meta.lines().nth(1).unwrap(),
        r#"{"asin": "B002", "title": "Zelda"}"#
    );
    let seq = std::fs::read_to_string(dir.path().join("sequential_data.txt")).unwrap();
    assert_eq!(seq, "1 1 2 3\n2 3 1\n");
}

#[test]
fn split_files_follow_unirec_split() {
    let dir = tempfile::tempdir().unwrap();
    tiny().save(dir.path()).unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    // User 1 = [1, 2, 3]: train target 2 only (first is history, last is test); user 2 = [3, 1]:
    // no train target.
    assert_eq!(read("train.tsv"), "user_id\titem_id\n1\t2\n");
    assert_eq!(read("train_ids.csv"), read("train.tsv"));
    assert_eq!(read("test.tsv"), "user_id\titem_id\n1\t3\n2\t1\n");
    assert_eq!(read("valid.tsv"), read("test.tsv"));
    assert_eq!(read("test_ids.csv"), read("test.tsv"));
    assert_eq!(
        read("user_history.tsv"),
        "user_id\titem_seq\n1\t1,2,3\n2\t3,1\n"
    );
}

#[test]
fn games_layout_loads_and_round_trips_byte_for_byte() {
    let Some(src) = shared("amazon-video-games") else {
        return;
    };
    let d = Dataset::load(&src).unwrap();
    println!(
        "games: {} users, {} items, {} interactions",
        d.n_users,
        d.n_items,
        d.n_interactions()
    );
    assert_eq!(
        (d.n_users, d.n_items, d.n_interactions()),
        (50_546, 16_859, 452_989)
    );
    assert_eq!(d.user_raw_ids[1], "A31160I7G2EZVN");
    assert_eq!(d.items[1].raw_id, "B00L59D9HG");
    let out = tempfile::tempdir().unwrap();
    d.save(out.path()).unwrap();
    for f in ["sequential_data.txt", "metadata.json", "datamaps.json"] {
        let a = std::fs::read(src.join(f)).unwrap();
        let b = std::fs::read(out.path().join(f)).unwrap();
        assert!(a == b, "{f} differs after a load/save round trip");
    }
}

/// Writes a layout folder from the given file contents (None = leave the file out).
fn layout(seq: &str, meta: &str, maps: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sequential_data.txt"), seq).unwrap();
    std::fs::write(dir.path().join("metadata.json"), meta).unwrap();
    if let Some(m) = maps {
        std::fs::write(dir.path().join("datamaps.json"), m).unwrap();
    }
    dir
}

const META2: &str = "{\"asin\": \"A\", \"title\": \"a\"}\n{\"asin\": \"B\", \"title\": \"b\"}\n";

/// Loads and expects a `BadInput` at `file:line` whose reason contains `needle`.
fn expect_bad(dir: &tempfile::TempDir, file: &str, line: usize, needle: &str) {
    match Dataset::load(dir.path()) {
        Err(Error::BadInput {
            file: f,
            line: l,
            reason,
        }) => {
            assert_eq!(f, dir.path().join(file));
            assert_eq!(l, line, "reason: {reason}");
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!("expected BadInput, got {other:?}"),
    }
}

#[test]
fn malformed_sequences_name_file_and_line() {
    let d = layout("1 1 2\n2 x 1\n", META2, None);
    expect_bad(
        &d,
        "sequential_data.txt",
        2,
        "item id \"x\" is not a non-negative integer",
    );
    let d = layout("1 1 2\n2 1 3\n", META2, None);
    expect_bad(
        &d,
        "sequential_data.txt",
        2,
        "item id 3 (field 3) is outside 1..=2",
    );
    let d = layout("1 1 2\n3 1\n", META2, None);
    expect_bad(&d, "sequential_data.txt", 2, "expected user id 2");
    let d = layout("0 1\n", META2, None);
    expect_bad(&d, "sequential_data.txt", 1, "user id 0 is reserved");
}

#[test]
fn malformed_metadata_names_file_and_line() {
    let d = layout(
        "1 1\n",
        "{\"asin\": \"A\"}\n{\"asin\": \"B\", \"title\": \n",
        None,
    );
    expect_bad(&d, "metadata.json", 2, "invalid JSON");
    let d = layout("1 1\n", "{\"title\": \"a\"}\n", None);
    expect_bad(&d, "metadata.json", 1, "missing field \"asin\"");
    let d = layout("1 1\n", "{\"asin\": \"A\", \"title\": 3}\n", None);
    expect_bad(&d, "metadata.json", 1, "\"title\" must be a string");
    let d = layout("1 1\n", "{\"asin\": \"A\"}\n\n{\"asin\": \"B\"}\n", None);
    expect_bad(&d, "metadata.json", 3, "blank line 2");
}

#[test]
fn malformed_datamaps_are_reported() {
    let d = layout(
        "1 1\n",
        META2,
        Some("{\"id2item\": {\"1\": \"A\",\n \"2\": }"),
    );
    expect_bad(&d, "datamaps.json", 2, "invalid datamaps JSON");
    let d = layout("1 1\n", META2, Some("{\"id2item\": {\"1\": \"Z\"}}"));
    expect_bad(&d, "datamaps.json", 1, "id2item[\"1\"] = \"Z\"");
}

#[test]
fn sequences_cut_short_of_the_datamaps_are_an_error() {
    let maps = "{\"id2user\": {\"1\": \"U1\", \"2\": \"U2\", \"3\": \"U3\"}, \
                \"id2item\": {\"1\": \"A\", \"2\": \"B\"}}";
    let d = layout("1 1 2\n2 2 1\n3 1\n", META2, Some(maps));
    assert_eq!(Dataset::load(d.path()).unwrap().n_users, 3);
    let d = layout("1 1 2\n2 2 1\n", META2, Some(maps));
    expect_bad(
        &d,
        "sequential_data.txt",
        3,
        "lists 3 users; user 3 is missing",
    );
    // Items: metadata.json shorter than id2item.
    let d = layout(
        "1 1\n2 1\n3 1\n",
        "{\"asin\": \"A\", \"title\": \"a\"}\n",
        Some(maps),
    );
    expect_bad(&d, "metadata.json", 2, "lists 2 items");
}

#[test]
fn missing_files_name_the_path_and_key() {
    let dir = tempfile::tempdir().unwrap();
    match Dataset::load(&dir.path().join("nope")) {
        Err(Error::MissingInput { key, path }) => {
            assert_eq!(key, "data.path");
            assert_eq!(path, dir.path().join("nope"));
        }
        other => panic!("expected MissingInput, got {other:?}"),
    }
    std::fs::write(dir.path().join("metadata.json"), META2).unwrap();
    let err = Dataset::load(dir.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "data.path: file not found: {}",
            dir.path().join("sequential_data.txt").display()
        )
    );
}
