//! People's ratings for paper Fig. 3, end to end: a tiny pipeline explains with two explainers,
//! `recx report` writes the blinded, shuffled annotation sheet, a filled copy is read back by
//! `recx import-ratings` (per annotator, replaced on re-import, refused whole on a bad row), and
//! the next report carries the human ratings and their figure.

use std::path::Path;
use std::process::Output;

use recx::explain::Explanation;
use recx::store::Store;

use crate::e2e_support::{TINY_LLM, recx, run_spec, tiny_pipeline_spec};

/// The tiny pipeline with explanations by the aligned model and the unaligned backbone.
fn spec() -> String {
    let llm = TINY_LLM.replace(
        "[explain]\n",
        "[explain]\nexplainers = [\"aligned\", \"unaligned\"]\n",
    );
    tiny_pipeline_spec(
        "annotate",
        4,
        r#"mode = "behaviour""#,
        &llm,
        r#"rows = ["random"]"#,
    )
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The sheet's rows as cells.
fn read_sheet(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn write_sheet(path: &Path, header: &[String], rows: &[Vec<String>]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
}

fn scalars(store: &Path, run_id: &str) -> std::collections::BTreeMap<String, f64> {
    let store = Store::open(store).unwrap();
    let run = store.get_run(run_id).unwrap().unwrap();
    store.run_metrics(&run).unwrap().scalars
}

#[test]
fn an_annotation_sheet_goes_out_blinded_and_its_ratings_come_back_per_annotator() {
    let ran = run_spec(&spec());
    let run_id = ran
        .stdout
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_string();
    let reports = ran.store.parent().unwrap().join("reports");
    let reports_arg = reports.to_str().unwrap();
    let out = ok(&recx(
        &ran.store,
        &["report", &run_id, "--out", reports_arg],
    ));
    assert!(out.contains("annotation sheet of 8 explanations"), "{out}");
    let dir = reports.join("annotate/annotation");
    let sheet = dir.join("sheet.csv");
    let (header, mut rows) = read_sheet(&sheet);
    assert_eq!(
        header,
        [
            "row",
            "user_history",
            "target_item",
            "label",
            "explanation",
            "rating"
        ]
    );
    assert!(dir.join("README.md").is_file());

    // Blinded: nothing in the sheet names the run or the explainer; shuffled: not in the
    // explanation stage's order (aligned first, then unaligned).
    let text = std::fs::read_to_string(&sheet).unwrap();
    assert!(
        !text.contains(&run_id) && !text.contains("aligned"),
        "{text}"
    );
    let store = Store::open(&ran.store).unwrap();
    let run = store.get_run(&run_id).unwrap().unwrap();
    let explain_hash = &run.stages.iter().find(|(k, _)| k == "explain").unwrap().1;
    let written: Vec<Explanation> = recx::fsutil::read_jsonl(
        &store
            .artifact_dir("explain", explain_hash)
            .join(recx::explain::EXPLANATIONS),
    )
    .unwrap();
    drop(store);
    let order = |texts: Vec<&str>| texts.join("\u{0}");
    assert_ne!(
        order(rows.iter().map(|r| r[4].as_str()).collect()),
        order(written.iter().map(|e| e.explanation.as_str()).collect()),
        "the sheet keeps the explanation stage's order"
    );

    // One annotator rates 6 of 8 rows: D, C, B, A, D, C (sum 11), two left blank.
    for (row, level) in rows.iter_mut().zip(["D", "c", "B", "a", "D", "C", "", ""]) {
        row[5] = level.to_string();
    }
    let filled = dir.join("ann.csv");
    write_sheet(&filled, &header, &rows);
    let out = ok(&recx(
        &ran.store,
        &["import-ratings", filled.to_str().unwrap()],
    ));
    assert!(out.contains("ann: 6 ratings"), "{out}");
    let m = scalars(&ran.store, &run_id);
    let rated = m["human.rated"] + m["human.rated.unaligned"];
    assert_eq!(rated, 6.0, "{m:?}");
    let sum = m["human.rating_mean"] * m["human.rated"]
        + m["human.rating_mean.unaligned"] * m["human.rated.unaligned"];
    assert!((sum - 11.0).abs() < 1e-9, "{m:?}");
    assert_eq!(m["human.annotators"], 1.0);

    // The same annotator again: replaced, not added. A second annotator: added.
    ok(&recx(
        &ran.store,
        &["import-ratings", filled.to_str().unwrap()],
    ));
    let m = scalars(&ran.store, &run_id);
    assert_eq!(m["human.rated"] + m["human.rated.unaligned"], 6.0);
    ok(&recx(
        &ran.store,
        &[
            "import-ratings",
            filled.to_str().unwrap(),
            "--annotator",
            "bob",
        ],
    ));
    let m = scalars(&ran.store, &run_id);
    assert_eq!(m["human.rated"] + m["human.rated.unaligned"], 12.0);
    assert!(m["human.annotators"] == 2.0 || m["human.annotators.unaligned"] == 2.0);

    // A bad row fails the whole import with the file and line, and records nothing.
    let mut bad = rows.clone();
    bad[3][5] = "E".into();
    bad[0][5] = "A".into();
    let bad_sheet = dir.join("bad.csv");
    let refused = |rows: &[Vec<String>]| {
        write_sheet(&bad_sheet, &header, rows);
        let args = [
            "import-ratings",
            bad_sheet.to_str().unwrap(),
            "--annotator",
            "ann",
        ];
        let out = recx(&ran.store, &args);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(&bad);
    assert!(err.contains("bad.csv:5: rating \"E\""), "{err}");
    let mut unknown = rows.clone();
    unknown[1][0] = "0123456789ab".into();
    let err = refused(&unknown);
    assert!(
        err.contains("bad.csv:3: row \"0123456789ab\" is not an explanation"),
        "{err}"
    );
    assert_eq!(
        scalars(&ran.store, &run_id),
        m,
        "a refused import changes nothing"
    );

    // The next report draws the human ratings.
    ok(&recx(
        &ran.store,
        &["report", &run_id, "--out", reports_arg],
    ));
    let page = std::fs::read_to_string(reports.join("annotate/index.md")).unwrap();
    assert!(page.contains("## Human ratings"), "{page}");
    assert!(reports.join("annotate/figures/human_ratings.png").is_file());
}
