//! A report over synthetic runs (3 seeds × 2 modes) renders every output, deterministically.

use crate::report_support;

use std::fs;
use std::path::Path;

use recx::report::{ReportOptions, render_report};
use report_support::{SEEDS, run, three_seeds_two_modes};

fn read(dir: &Path, rel: &str) -> String {
    fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn paper_opts() -> ReportOptions {
    ReportOptions {
        title: "Synthetic <report> & test".into(),
        paper: true,
        bootstrap_resamples: 2000,
        ..ReportOptions::default()
    }
}

#[test]
fn report_over_three_seeds_two_modes_renders() {
    let dir = tempfile::tempdir().unwrap();
    let runs = three_seeds_two_modes();
    let summary = render_report(&runs, &paper_opts(), dir.path()).unwrap();
    assert_eq!(summary.n_runs, 6);
    assert_eq!(summary.n_groups, 2);
    for fig in [
        "table1_bars",
        "eval_bars",
        "curve_train_loss",
        "ratings",
        "confusion_mode_behaviour",
        "confusion_mode_both",
    ] {
        assert!(
            summary.figures.contains(&fig.to_string()),
            "missing figure {fig}: {:?}",
            summary.figures
        );
        for ext in ["png", "svg"] {
            let meta = fs::metadata(dir.path().join(format!("figures/{fig}.{ext}"))).unwrap();
            assert!(meta.len() > 1000, "{fig}.{ext} is suspiciously small");
        }
    }
    assert!(
        !summary.figures.iter().any(|f| f.starts_with("ablation")),
        "no task subsets, no ablation figure"
    );
    for table in [
        "results",
        "runs",
        "table1",
        "table2",
        "table3",
        "stage_eval",
        "significance_seeds",
        "significance_examples",
    ] {
        assert!(
            summary.tables.contains(&table.to_string()),
            "missing table {table}: {:?}",
            summary.tables
        );
        for ext in ["md", "tex", "csv"] {
            assert!(
                dir.path().join(format!("tables/{table}.{ext}")).is_file(),
                "{table}.{ext}"
            );
        }
    }

    // Individual seeds stay visible; every run id, spec hash and commit is traceable.
    let runs_csv = read(dir.path(), "tables/runs.csv");
    assert_eq!(runs_csv.lines().count(), 7);
    let html = read(dir.path(), "index.html");
    let md = read(dir.path(), "index.md");
    for r in &runs {
        assert!(runs_csv.contains(&r.run_id) && runs_csv.contains(&r.spec_hash));
        assert!(html.contains(&r.run_id) && md.contains(&r.run_id));
    }
    assert!(html.contains("0123456789ab-dirty"));

    // Grouping: mean ± std over 3 seeds, bootstrap CI in the CSV.
    let results_csv = read(dir.path(), "tables/results.csv");
    let row = results_csv
        .lines()
        .find(|l| l.starts_with("mode=both,") && l.contains(",eval.uid2next.hit@5,"))
        .unwrap();
    let fields: Vec<&str> = row.split(',').collect();
    assert_eq!(fields[3], "3", "n = 3 seeds");
    let (mean, lo, hi): (f64, f64, f64) = (
        fields[4].parse().unwrap(),
        fields[6].parse().unwrap(),
        fields[7].parse().unwrap(),
    );
    assert!(
        lo <= mean && mean <= hi,
        "CI [{lo}, {hi}] must contain the mean {mean}"
    );
    assert_eq!(fields[8].split(';').count(), 3);

    // Paper mode: published numbers beside ours, markers explained.
    let t1 = read(dir.path(), "tables/table1.md");
    assert!(
        t1.contains("| RecExplainer-H |") && t1.contains("0.8057") && t1.contains("| Random |")
    );
    assert!(md.contains("Holm-corrected"));
    // The both-mode is much better than behaviour on hit@5: significant per example.
    let sig = read(dir.path(), "tables/significance_examples.csv");
    assert!(
        sig.lines()
            .any(|l| l.starts_with("eval.uid2next.hit@5,mode=both") && l.contains("McNemar")),
        "{sig}"
    );
    assert!(
        sig.lines()
            .any(|l| l.starts_with("eval.uidiid2rank.ndcg@5,mode=both") && l.contains("Wilcoxon")),
        "{sig}"
    );

    // Text from runs is escaped in the HTML.
    assert!(!html.contains("<b>llm</b>") && !html.contains("<report>"));
    assert!(html.contains("Synthetic &lt;report&gt; &amp; test"));
    assert_eq!(html.matches("<img ").count(), summary.figures.len());
}

#[test]
fn same_input_gives_same_bytes() {
    let runs = three_seeds_two_modes();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    render_report(&runs, &paper_opts(), a.path()).unwrap();
    render_report(&runs, &paper_opts(), b.path()).unwrap();
    for rel in [
        "index.html",
        "index.md",
        "tables/results.csv",
        "tables/significance_examples.csv",
        "figures/table1_bars.svg",
        "figures/ratings.png",
    ] {
        assert_eq!(
            fs::read(a.path().join(rel)).unwrap(),
            fs::read(b.path().join(rel)).unwrap(),
            "{rel} differs"
        );
    }
}

#[test]
fn task_subsets_give_ablation_figures() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = three_seeds_two_modes();
    for s in [1, 2, 3] {
        runs.push(run("both", "[\"uid2next\", \"uidiid2binary\"]", s));
    }
    let opts = ReportOptions {
        paper: true,
        ..ReportOptions::default()
    };
    let summary = render_report(&runs, &opts, dir.path()).unwrap();
    // To look at a full report: RECX_KEEP_REPORT=/some/dir cargo test --test it report_render::
    if let Ok(keep) = std::env::var("RECX_KEEP_REPORT") {
        render_report(&runs, &opts, Path::new(&keep)).unwrap();
    }
    assert_eq!(summary.n_groups, 3);
    assert!(
        summary
            .figures
            .iter()
            .any(|f| f == "ablation_judge_rating_mean"),
        "{:?}",
        summary.figures
    );
    // The per-stage bars keep to the groups that ran every task.
    let svg = read(dir.path(), "figures/eval_bars.svg");
    assert!(!svg.contains("uidiid2binary\"]"));
}

#[test]
fn failed_runs_are_listed_but_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = three_seeds_two_modes();
    runs[0].status = "failed".into();
    let summary = render_report(&runs, &ReportOptions::default(), dir.path()).unwrap();
    let results = read(dir.path(), "tables/results.csv");
    let row = results
        .lines()
        .find(|l| l.starts_with("mode=behaviour,") && l.contains(",eval.uid2next.hit@5,"))
        .unwrap();
    assert_eq!(row.split(',').nth(3), Some("2"));
    assert!(read(dir.path(), "tables/runs.csv").contains(",failed,"));
    assert_eq!(summary.n_runs, 6);
}

#[test]
fn an_empty_selection_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = render_report(&[], &ReportOptions::default(), dir.path()).unwrap_err();
    assert!(err.to_string().contains("no runs"));
}

#[test]
fn figures_appear_only_when_their_data_exists() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = three_seeds_two_modes();
    for r in &mut runs {
        r.series.clear();
        r.examples.clear();
        r.metrics.retain(|k, _| !k.contains("confusion/"));
    }
    let summary = render_report(&runs, &ReportOptions::default(), dir.path()).unwrap();
    assert_eq!(summary.figures, ["table1_bars", "eval_bars"]);
    // Without examples there are no per-example tests, only the across-seed ones.
    assert!(summary.tables.contains(&"significance_seeds".to_string()));
    assert!(
        !summary
            .tables
            .contains(&"significance_examples".to_string())
    );
    assert!(
        !read(dir.path(), "tables/table1.md").contains("(paper)"),
        "published numbers only in paper mode"
    );
}

#[test]
fn compare_prints_deltas_and_tests() {
    let a = run("behaviour", "[]", 1);
    let b = run("both", "[]", 1);
    let comparisons = recx::report::compare(&a, &b);
    let text = recx::report::render_comparison(&a, &b, &comparisons);
    println!("{text}");
    let hit = comparisons
        .iter()
        .find(|c| c.metric == "eval.uid2next.hit@5")
        .unwrap();
    assert_eq!(hit.tests[0].test, "McNemar");
    assert!(
        hit.holm_p.unwrap() < 0.05,
        "a 0.6 vs 0.8 hit rate over 120 examples is detectable"
    );
    assert!(text.contains("eval.uid2next.hit@5") && text.contains("Wilcoxon"));
}

#[test]
fn tables_2_and_3_list_the_other_explainers_beside_the_papers_rows() {
    // One group (mode both) whose runs also measured the unaligned backbone and an external LLM
    // as explainers, with the suffixes the explanation stage gives their metrics.
    let mut runs: Vec<_> = SEEDS.iter().map(|&s| run("both", "[]", s)).collect();
    for (k, r) in runs.iter_mut().enumerate() {
        let jitter = 0.01 * k as f64;
        r.metrics
            .insert("judge.rating_mean.unaligned".into(), 1.2 + jitter);
        r.metrics
            .insert("judge.rating_mean.external".into(), 1.9 + jitter);
        r.metrics
            .insert("discriminator.predictor_mse.unaligned".into(), 3.4 + jitter);
        let ratings: Vec<(String, f64)> = (0..40)
            .map(|i| (format!("ex{i:04}"), f64::from(i % 3)))
            .collect();
        r.examples.insert("judge.rating.unaligned".into(), ratings);
    }
    let dir = tempfile::tempdir().unwrap();
    render_report(&runs, &paper_opts(), dir.path()).unwrap();
    let t2 = read(dir.path(), "tables/table2.md");
    let row = |table: &str, name: &str| -> String {
        table
            .lines()
            .find(|l| l.starts_with(&format!("| {name} ")))
            .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
            .to_string()
    };
    assert!(row(&t2, "unaligned backbone").contains("1.21"), "{t2}");
    assert!(
        row(&t2, "unaligned backbone").contains("2.0703"),
        "Vicuna-7B's published rating: {t2}"
    );
    assert!(
        row(&t2, "external LLM").contains("1.9320"),
        "ChatGPT's: {t2}"
    );
    let t3 = read(dir.path(), "tables/table3.md");
    assert!(row(&t3, "unaligned backbone").contains("3.41"), "{t3}");
    assert!(row(&t3, "unaligned backbone").contains("3.6970"), "{t3}");
    assert!(
        !t3.contains("external LLM"),
        "no external predictor was measured: {t3}"
    );
}
