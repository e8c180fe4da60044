//! Trains SASRec and MF with the paper's settings on the Games stage-2 set and prints their
//! test NDCG@10 / HR@10 next to a popularity ranking (spec §2; a long run, so not a test).
//! `cargo bench --bench sasrec_quality [-- sasrec|mf]`

mod sasrec_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use recx::pipeline::{Measurements, Progress, Resolved, StageContext};
use recx::recommender::{ModelKind, RecommenderSection, run_recommender};

fn main() {
    let Some(data) = sasrec_support::games_stage2() else {
        return;
    };
    println!(
        "Games stage-2: {} users, {} items, {} interactions",
        data.n_users,
        data.n_items,
        data.n_interactions()
    );
    let only: Option<String> = std::env::args()
        .skip(1)
        .find(|a| a == "sasrec" || a == "mf");
    for model in [ModelKind::Sasrec, ModelKind::Mf] {
        if only.as_deref().is_some_and(|o| o != model.as_str()) {
            continue;
        }
        let section = RecommenderSection {
            model,
            ..Default::default()
        };
        let settings = section.resolve(0).unwrap();
        let resolved = Resolved::new(settings.clone());
        let out =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/sasrec_quality/{model}"));
        std::fs::create_dir_all(&out).unwrap();
        let progress = Progress::new(false);
        let mut m = Measurements::default();
        let t = Instant::now();
        let mut ctx = StageContext::new(resolved, out.clone(), BTreeMap::new(), &mut m, &progress);
        run_recommender(&mut ctx, &settings, &data).unwrap();
        let s = &m.scalars;
        println!(
            "{model}: {} epochs (best {}), {:.0} s | test NDCG@10 {:.4} HR@10 {:.4} | popularity NDCG@10 {:.4} HR@10 {:.4} | outputs in {}",
            s["epochs"],
            s["best_epoch"],
            t.elapsed().as_secs_f64(),
            s["ndcg@10"],
            s["hr@10"],
            s["popularity.ndcg@10"],
            s["popularity.hr@10"],
            out.display()
        );
    }
}
