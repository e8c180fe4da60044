//! Each reader on real files, the synthetic source end to end, and every bad-input path.
//!
//! The exact counts for the real files were computed independently with a short Python script
//! that follows `data_preprocess_amazon.py` (title filter, first occurrence, 5-core), so they
//! check our stage 1 against the original procedure, not against itself.

use std::path::Path;

use recx::Error;
use recx::data::{Built, DataSection, OnBadLine, Source, StepCount, build};
use recx::pipeline::Progress;

use crate::data_support;
use data_support::shared;

fn section(source: Source, path: &Path) -> DataSection {
    DataSection {
        source,
        path: path.display().to_string(),
        ..DataSection::default()
    }
}

fn run(s: &DataSection) -> recx::Result<Built> {
    build(s, Path::new("."), 0, &Progress::hidden())
}

fn counts(steps: &[StepCount]) -> Vec<(&str, usize, usize, usize)> {
    steps
        .iter()
        .map(|s| (s.step.as_str(), s.users, s.items, s.interactions))
        .collect()
}

fn magazine(dir: &Path) -> DataSection {
    let mut s = section(Source::AmazonRaw, dir);
    s.amazon.reviews = "Magazine_Subscriptions_5.json.gz".into();
    s.amazon.meta = "meta_Magazine_Subscriptions.json.gz".into();
    s.stage2.enabled = Some(false);
    s
}

#[test]
fn amazon_raw_magazine_stage1_matches_the_original_procedure() {
    let Some(dir) = shared("amazon-magazine-raw") else {
        return;
    };
    let built = run(&magazine(&dir)).unwrap();
    println!("{}", built.stats.table());
    assert_eq!(
        counts(&built.stats.steps),
        vec![
            ("read", 348, 157, 2375),
            ("stage1: items with a title", 348, 151, 2311),
            ("stage1: first user-item occurrence", 348, 151, 2242),
            // The original `filter_Kcore`, bug included, also needs 7 rounds here.
            ("stage1: 5/5-core (7 rounds)", 274, 124, 1883),
        ]
    );
    let ds = &built.dataset;
    assert_eq!(
        (ds.n_users, ds.n_items, ds.n_interactions()),
        (274, 124, 1883)
    );
    // Metadata comes from the meta file: raw ASINs and their (messy but non-empty) titles.
    assert!(
        ds.items
            .iter()
            .skip(1)
            .all(|m| m.raw_id.len() == 10 && !m.title.is_empty())
    );
    assert!(ds.items.iter().skip(1).any(|m| !m.categories.is_empty()));
}

#[test]
fn movielens_small_stage1_matches_the_original_procedure() {
    let Some(dir) = shared("movielens-small") else {
        return;
    };
    let mut s = section(Source::Movielens, &dir);
    s.stage2.enabled = Some(false);
    let built = run(&s).unwrap();
    println!("{}", built.stats.table());
    let steps = counts(&built.stats.steps);
    assert_eq!(steps[0], ("read", 671, 9066, 100_004));
    assert_eq!(
        steps.last().unwrap().1..=steps.last().unwrap().3,
        671..=90_072
    );
    assert_eq!(steps.last().unwrap().2, 3496);
    let ds = &built.dataset;
    let toy = ds
        .items
        .iter()
        .find(|m| m.raw_id == "1")
        .expect("Toy Story survives the 5-core");
    assert_eq!(toy.title, "Toy Story (1995)");
    assert_eq!(
        toy.categories,
        ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    );
    // A quoted title with a comma comes through whole.
    assert!(
        ds.items
            .iter()
            .any(|m| m.title == "American President, The (1995)")
    );
    // Sequences are chronological: the first user's ratings file order is not, their times are.
    assert!(ds.users().all(|(_, seq)| seq.len() >= 5));
}

#[test]
fn movielens_with_stage2_keeps_everyone_when_fewer_users_than_m() {
    let Some(dir) = shared("movielens-small") else {
        return;
    };
    let built = run(&section(Source::Movielens, &dir)).unwrap();
    let s = &built.stats;
    println!("{}", s.table());
    assert!(s.items <= 2000 && s.users <= 671 && s.users > 600, "{s:?}");
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn delimited(dir: &Path) -> DataSection {
    let mut s = section(Source::Delimited, dir);
    s.delimited.delimiter = "\t".into();
    s.stage1.user_core = 2;
    s.stage1.item_core = 2;
    s.stage2.enabled = Some(false);
    s
}

#[test]
fn delimited_reads_timestamps_quotes_and_named_fields() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "items.csv",
        "id\ttitle\tbrand\tgenres\tyear\n\
         a\t\"Alpha, the \"\"first\"\"\"\tAcme\tx|y\t1999\n\
         b\tBeta\t\t\t\n\
         c\tGamma\tAcme\tz\t2001\n\
         d\t\t\t\t\n",
    );
    // u2 rates b before a by time although the file lists a first; d has no title; u1 rates a
    // twice (the first occurrence counts).
    write(
        dir.path(),
        "interactions.csv",
        "user\titem\tts\nu1\ta\t10\nu1\tb\t20\nu1\ta\t30\nu2\ta\t50\nu2\tb\t40\nu2\td\t45\nu3\tc\t1\n",
    );
    let built = run(&delimited(dir.path())).unwrap();
    let ds = &built.dataset;
    assert_eq!(ds.n_users, 2, "u3 has one item and goes in the 2-core");
    let seq = |raw: &str| {
        let uid = ds.user_raw_ids.iter().position(|u| u == raw).unwrap() as u32;
        ds.sequence(uid)
            .iter()
            .map(|&i| ds.items[i as usize].raw_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(seq("u1"), ["a", "b"]);
    assert_eq!(seq("u2"), ["b", "a"]);
    let alpha = ds.items.iter().find(|m| m.raw_id == "a").unwrap();
    assert_eq!(alpha.title, "Alpha, the \"first\"");
    assert_eq!(alpha.brand.as_deref(), Some("Acme"));
    assert_eq!(alpha.categories, ["x", "y"]);
    assert_eq!(alpha.features, ["year: 1999"]);
}

#[test]
fn delimited_without_timestamps_uses_file_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "items.csv", "i1,One\ni2,Two\n");
    write(dir.path(), "interactions.csv", "u,i2\nu,i1\nv,i1\nv,i2\n");
    let mut s = delimited(dir.path());
    s.delimited.delimiter = ",".into();
    s.delimited.header = false;
    let ds = run(&s).unwrap().dataset;
    let titles: Vec<Vec<&str>> = ds
        .users()
        .map(|(_, q)| q.iter().map(|&i| ds.title(i)).collect())
        .collect();
    assert!(titles.contains(&vec!["Two", "One"]) && titles.contains(&vec!["One", "Two"]));
}

#[test]
fn synthetic_source_runs_end_to_end() {
    let mut s = DataSection {
        source: Source::Synthetic,
        ..DataSection::default()
    };
    s.synthetic.users = 300;
    s.synthetic.items = 120;
    let a = run(&s).unwrap();
    println!("{}", a.stats.table());
    assert!(a.stats.users > 250 && a.stats.items > 100);
    // Repeat purchases exist in the log and are removed by the first-occurrence rule.
    let steps = &a.stats.steps;
    assert!(steps[2].interactions < steps[1].interactions, "{steps:?}");
    assert_eq!(run(&s).unwrap().dataset, a.dataset, "same seed, same data");
}

// ---- bad input -------------------------------------------------------------------------------

fn expect_bad(r: recx::Result<Built>, file: &Path, line: usize, needle: &str) {
    match r {
        Err(Error::BadInput {
            file: f,
            line: l,
            reason,
        }) => {
            assert_eq!((f.as_path(), l), (file, line), "reason: {reason}");
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!(
            "expected BadInput at {}:{line}, got {other:?}",
            file.display()
        ),
    }
}

fn gz(path: &Path, text: &str) {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(text.as_bytes()).unwrap();
    std::fs::write(path, enc.finish().unwrap()).unwrap();
}

fn amazon_files(reviews: &str) -> (tempfile::TempDir, DataSection) {
    let dir = tempfile::tempdir().unwrap();
    gz(
        &dir.path().join("meta.json.gz"),
        "{\"asin\": \"A\", \"title\": \"Game A\"}\n{\"asin\": \"B\", \"title\": \"Game B\"}\n",
    );
    // Plain text under a .gz name is fine too: the content decides.
    write(dir.path(), "reviews.json.gz", reviews);
    let mut s = section(Source::AmazonRaw, dir.path());
    s.amazon.meta = "meta.json.gz".into();
    s.amazon.reviews = "reviews.json.gz".into();
    s.stage1.user_core = 1;
    s.stage1.item_core = 1;
    s.stage2.enabled = Some(false);
    (dir, s)
}

const GOOD: &str = r#"{"reviewerID": "U", "asin": "A", "unixReviewTime": 5, "overall": 5.0}"#;

#[test]
fn amazon_bad_reviews_name_file_line_and_reason() {
    let cases = [
        ("{\"reviewerID\": \"U\", \"asin\": ", "invalid review: EOF"),
        (
            r#"{"reviewerID": "U", "unixReviewTime": 5}"#,
            "missing field `asin`",
        ),
        (
            r#"{"reviewerID": "U", "asin": "A", "unixReviewTime": "soon"}"#,
            "invalid type: string \"soon\"",
        ),
    ];
    for (bad, needle) in cases {
        let (dir, s) = amazon_files(&format!("{GOOD}\n{bad}\n{GOOD}\n"));
        expect_bad(run(&s), &dir.path().join("reviews.json.gz"), 2, needle);
    }
}

#[test]
fn amazon_bad_metadata_names_file_line_and_reason() {
    let (dir, s) = amazon_files(&format!("{GOOD}\n"));
    gz(
        &dir.path().join("meta.json.gz"),
        "{\"asin\": \"A\", \"title\": \"x\"}\n[1, 2]\n",
    );
    expect_bad(
        run(&s),
        &dir.path().join("meta.json.gz"),
        2,
        "expected a JSON object",
    );
}

#[test]
fn skip_policy_counts_bad_lines_in_the_stats() {
    let (_dir, mut s) = amazon_files(&format!("{GOOD}\nnot json\n{GOOD}\n{{}}\n"));
    s.on_bad_line = OnBadLine::Skip;
    let built = run(&s).unwrap();
    assert_eq!(built.stats.skipped_lines, 2);
    assert_eq!(built.stats.skipped_per_file.len(), 1);
    assert!(built.stats.table().contains("skipped bad lines"));
    assert_eq!(
        built.dataset.n_interactions(),
        1,
        "the duplicate (U, A) counts once"
    );
}

#[test]
fn movielens_bad_rows_name_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "movies.csv",
        "movieId,title,genres\n1,A,x\n2,B,y\n",
    );
    write(
        dir.path(),
        "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,5,100\n1,2,4,later\n",
    );
    let s = section(Source::Movielens, dir.path());
    expect_bad(
        run(&s),
        &dir.path().join("ratings.csv"),
        3,
        "timestamp \"later\" is not a number",
    );
    write(
        dir.path(),
        "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,5,100\n1\n",
    );
    expect_bad(
        run(&s),
        &dir.path().join("ratings.csv"),
        3,
        "missing item id (column 2)",
    );
    write(
        dir.path(),
        "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,5,100\n",
    );
    write(
        dir.path(),
        "movies.csv",
        "movieId,title,genres\n1,A,x\n,B,y\n",
    );
    expect_bad(run(&s), &dir.path().join("movies.csv"), 3, "empty item id");
}

#[test]
fn delimited_bad_rows_name_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "items.csv", "id\ttitle\na\tA\n");
    write(
        dir.path(),
        "interactions.csv",
        "u\ti\tt\nx\ta\t1\ny\ta\tNaN?\n",
    );
    expect_bad(
        run(&delimited(dir.path())),
        &dir.path().join("interactions.csv"),
        3,
        "not a number",
    );
    let mut bytes = b"u\ti\tt\nx\ta\t1\n".to_vec();
    bytes.extend_from_slice(b"y\t\xff\t2\n");
    std::fs::write(dir.path().join("interactions.csv"), bytes).unwrap();
    expect_bad(
        run(&delimited(dir.path())),
        &dir.path().join("interactions.csv"),
        3,
        "not valid UTF-8",
    );
}

#[test]
fn delimited_unclosed_quote_is_an_error_not_a_swallowed_row() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "interactions.csv",
        "u\ti\tt\nx\ta\t1\nx\tb\t2\ny\ta\t3\ny\tb\t4\n",
    );
    // The quote opened in line 3's title runs to the end of the file...
    write(
        dir.path(),
        "items.csv",
        "id\ttitle\na\tAlpha\nb\t\"Beta\nc\tGamma\nd\tDelta\n",
    );
    expect_bad(
        run(&delimited(dir.path())),
        &dir.path().join("items.csv"),
        3,
        "quote",
    );
    // ... or up to a later quote, swallowing the rows between.
    write(
        dir.path(),
        "items.csv",
        "id\ttitle\na\t\"Alpha\nb\tBeta\nc\t\"Gamma\"\n",
    );
    expect_bad(
        run(&delimited(dir.path())),
        &dir.path().join("items.csv"),
        2,
        "quote",
    );
    // In the interactions file too.
    write(dir.path(), "items.csv", "id\ttitle\na\tAlpha\nb\tBeta\n");
    write(
        dir.path(),
        "interactions.csv",
        "u\ti\tt\nx\ta\t1\nx\t\"b\t2\ny\ta\t3\ny\tb\t4\n",
    );
    expect_bad(
        run(&delimited(dir.path())),
        &dir.path().join("interactions.csv"),
        3,
        "quote",
    );
}

#[test]
fn duplicate_item_id_is_an_error_or_a_counted_skip() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "interactions.csv",
        "u\ti\tt\nx\ta\t1\nx\tb\t2\ny\ta\t3\ny\tb\t4\n",
    );
    write(
        dir.path(),
        "items.csv",
        "id\ttitle\na\tAlpha\nb\tBeta\na\tAnother Alpha\n",
    );
    expect_bad(
        run(&delimited(dir.path())),
        &dir.path().join("items.csv"),
        4,
        "item id \"a\" is defined twice (first at line 2)",
    );
    let mut s = delimited(dir.path());
    s.on_bad_line = OnBadLine::Skip;
    let built = run(&s).unwrap();
    assert_eq!(built.stats.skipped_lines, 1);
    let alpha = built
        .dataset
        .items
        .iter()
        .find(|m| m.raw_id == "a")
        .unwrap();
    assert_eq!(alpha.title, "Alpha", "the first definition stays");
}

fn expect_missing(r: recx::Result<Built>, key: &str, path: &Path) {
    match r {
        Err(Error::MissingInput { key: k, path: p }) => {
            assert_eq!((k.as_str(), p.as_path()), (key, path));
        }
        other => panic!("expected MissingInput {key}, got {other:?}"),
    }
}

#[test]
fn missing_inputs_name_the_path_and_the_spec_key() {
    let (dir, mut s) = amazon_files(GOOD);
    s.amazon.reviews = "Video_Games_5.json.gz".into();
    expect_missing(
        run(&s),
        "data.amazon.reviews",
        &dir.path().join("Video_Games_5.json.gz"),
    );
    let (dir, mut s) = amazon_files(GOOD);
    s.amazon.meta = "meta_Video_Games.json.gz".into();
    expect_missing(
        run(&s),
        "data.amazon.meta",
        &dir.path().join("meta_Video_Games.json.gz"),
    );

    let nowhere = Path::new("/nonexistent/recx-data");
    for source in [
        Source::Recexplainer,
        Source::Movielens,
        Source::Delimited,
        Source::AmazonRaw,
    ] {
        expect_missing(run(&section(source, nowhere)), "data.path", nowhere);
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "interactions.csv", "u,i\n");
    expect_missing(
        run(&delimited(dir.path())),
        "data.delimited.items",
        &dir.path().join("items.csv"),
    );
    write(dir.path(), "movies.csv", "movieId,title,genres\n");
    expect_missing(
        run(&section(Source::Movielens, dir.path())),
        "data.path",
        &dir.path().join("ratings.csv"),
    );
}

#[test]
fn a_filter_that_leaves_nothing_reports_every_step() {
    let (_dir, mut s) = amazon_files(&format!("{GOOD}\n"));
    s.stage1.user_core = 2;
    match run(&s) {
        Err(Error::EmptyAfterFilter { step, counts }) => {
            assert_eq!(step, "stage1: 2/1-core (1 rounds)");
            assert_eq!(
                counts,
                "read: 1 users, 1 items, 1 interactions; \
                 stage1: items with a title: 1 users, 1 items, 1 interactions; \
                 stage1: first user-item occurrence: 1 users, 1 items, 1 interactions; \
                 stage1: 2/1-core (1 rounds): 0 users, 0 items, 0 interactions"
            );
        }
        other => panic!("expected EmptyAfterFilter, got {other:?}"),
    }
    // Items without titles are dropped first; if none has one, that step is the empty one.
    let (dir, s) = amazon_files(r#"{"reviewerID": "U", "asin": "Z", "unixReviewTime": 5}"#);
    let _ = dir;
    let err = run(&s).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "stage1: items with a title left no data; counts after each step: read: 1 users"
        ),
        "{err}"
    );
}

#[test]
fn delimited_reads_real_movielens_files_like_the_movielens_reader() {
    let Some(dir) = shared("movielens-small") else {
        return;
    };
    let mut s = section(Source::Delimited, &dir);
    s.delimited.interactions = "ratings.csv".into();
    s.delimited.items = "movies.csv".into();
    s.delimited.time_column = 4;
    s.stage2.enabled = Some(false);
    let generic = run(&s).unwrap();
    let mut m = section(Source::Movielens, &dir);
    m.stage2.enabled = Some(false);
    let movielens = run(&m).unwrap();
    assert_eq!(counts(&generic.stats.steps), counts(&movielens.stats.steps));
    assert_eq!(generic.dataset.sequences, movielens.dataset.sequences);
}

/// Steam lines as Kang & McAuley's files hold them: Python `repr` dicts, `u'...'` strings in the
/// games file. Three users with two games each reviewed on distinct days; one game without an id.
fn steam_files() -> (tempfile::TempDir, DataSection) {
    let dir = tempfile::tempdir().unwrap();
    let games = [
        r#"{u'publisher': u'Kotoshiro', u'genres': [u'Action', u'Indie'], u'app_name': u'Lost Summoner Kitty', u'tags': [u'Strategy'], u'id': u'761140', u'developer': u'Kotoshiro'}"#,
        r#"{u'genres': [u'Free to Play'], u'app_name': u'Ironbound', u'specs': [u'Multi-player'], u'price': u'Free To Play', u'early_access': False, u'id': u'643980'}"#,
        r#"{u'app_name': u'No Id Here', u'genres': []}"#,
    ];
    gz(
        &dir.path().join("steam_games.json.gz"),
        &(games.join("\n") + "\n"),
    );
    let mut reviews = String::new();
    for (user, first, second) in [
        ("Chaos Syren", "2017-12-17", "2018-01-02"),
        ("Ryxxy", "2018-01-03", "2017-11-30"),
        ("Mr D'Eath", "2016-05-01", "2016-05-02"),
    ] {
        reviews.push_str(&format!(
            "{{'username': {user:?}, 'hours': 0.1, 'product_id': '761140', 'date': '{first}', 'text': 'It\\'s fine', 'early_access': False}}\n"
        ));
        reviews.push_str(&format!(
            "{{'username': {user:?}, 'product_id': '643980', 'date': '{second}', 'compensation': None}}\n"
        ));
    }
    gz(&dir.path().join("steam_reviews.json.gz"), &reviews);
    let mut s = section(Source::Steam, dir.path());
    s.stage1.user_core = 2;
    s.stage1.item_core = 2;
    s.stage2.enabled = Some(false);
    (dir, s)
}

#[test]
fn steam_reads_python_literal_lines_into_sequences_and_metadata() {
    let (_dir, s) = steam_files();
    let built = run(&s).unwrap();
    let ds = &built.dataset;
    assert_eq!((ds.n_users, ds.n_items, ds.n_interactions()), (3, 2, 6));
    let kitty = ds.items.iter().find(|m| m.raw_id == "761140").unwrap();
    assert_eq!(kitty.title, "Lost Summoner Kitty");
    assert_eq!(kitty.brand.as_deref(), Some("Kotoshiro"));
    assert_eq!(kitty.categories, ["Action", "Indie"]);
    // Sequences follow the review dates: Ryxxy reviewed Ironbound first.
    let ryxxy = ds.user_raw_ids.iter().position(|u| u == "Ryxxy").unwrap();
    let first = ds.sequence(ryxxy as u32)[0];
    assert_eq!(ds.items[first as usize].title, "Ironbound");
}

#[test]
fn steam_bad_lines_name_file_line_and_reason() {
    let (dir, s) = steam_files();
    let reviews = dir.path().join("steam_reviews.json.gz");
    gz(
        &reviews,
        "{'username': 'a', 'product_id': '761140', 'date': '2017-12-17'}\n{'username': 'b', 'product_id': '761140' 'date': '2017-12-18'}\n",
    );
    expect_bad(run(&s), &reviews, 2, "expected ',' or '}'");
    gz(
        &reviews,
        "{'username': 'a', 'product_id': '761140', 'date': 'Dec 17'}\n",
    );
    expect_bad(run(&s), &reviews, 1, "is not YYYY-MM-DD");
    std::fs::remove_file(&reviews).unwrap();
    expect_missing(run(&s), "data.steam.reviews", &reviews);
}
