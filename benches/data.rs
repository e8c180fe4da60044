//! Times stage 1 + stage 2 on the paper's Games set (goal: under 2 s on the 2-core dev machine).
//! Run with `cargo bench --features criterion --bench data`.
//!
//! Stage 1 runs on the processed Games set (already stage-1 output, so the k-core is a check that
//! changes nothing but still does the work), then stage 2 with the paper's settings. Reading the
//! files is timed separately so the filter cost is visible on its own. Prints the ratio to the
//! goal rather than asserting a time.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use recx::data::{DataSection, Source, build};
use recx::pipeline::Progress;

const GOAL: Duration = Duration::from_secs(2);

fn games_section() -> Option<DataSection> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/amazon-video-games");
    if !p.exists() {
        println!("skipped: {} is not present", p.display());
        return None;
    }
    let mut s = DataSection {
        source: Source::Recexplainer,
        path: p.display().to_string(),
        ..DataSection::default()
    };
    s.stage1.enabled = Some(true);
    s.stage2.enabled = Some(true);
    Some(s)
}

fn bench(c: &mut Criterion) {
    let Some(full) = games_section() else { return };
    let mut read_only = full.clone();
    read_only.stage1.enabled = Some(false);
    read_only.stage2.enabled = Some(false);
    let progress = Progress::hidden();
    let run = |s: &DataSection| build(s, Path::new("."), 0, &progress).unwrap();

    let t = Instant::now();
    let built = run(&full);
    let once = t.elapsed();
    println!("{}", built.stats.table());
    println!(
        "read + stage 1 + stage 2 on Games, one cold run: {:.3} s = {:.2} x the {} s goal",
        once.as_secs_f64(),
        once.as_secs_f64() / GOAL.as_secs_f64(),
        GOAL.as_secs()
    );

    let mut g = c.benchmark_group("data");
    g.sample_size(10);
    g.bench_function("games: read only", |b| b.iter(|| run(&read_only)));
    g.bench_function("games: read + stage 1 + stage 2", |b| b.iter(|| run(&full)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
