//! The Games set for the recommender benchmarks: the stage-1 data in ../shared/data, reduced
//! the way RecExplainer's stage-2 filter does (spec §1.3: top 2,000 items, 4,000 sampled users,
//! 5-core, re-id). A compact copy for benchmarking until the data stage's filter is available;
//! the sampling uses our RNG, so the set is statistically (not bit-) equivalent.

use std::collections::HashMap;
use std::path::Path;

use rand::SeedableRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;
use recx::data::Dataset;

/// The stage-2 Games set, or `None` (with a message) when ../shared/data is missing.
pub fn games_stage2() -> Option<Dataset> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/amazon-video-games");
    if !dir.join("sequential_data.txt").exists() {
        eprintln!("skipped: {} not found", dir.display());
        return None;
    }
    let stage1 = Dataset::load(&dir).expect("the shared Games data loads");
    Some(stage2(&stage1, 2000, 4000, 2023))
}

fn stage2(d: &Dataset, n_items: usize, n_users: usize, seed: u64) -> Dataset {
    let mut count: HashMap<u32, usize> = HashMap::new();
    for (_, s) in d.users() {
        for &i in s {
            *count.entry(i).or_default() += 1;
        }
    }
    let mut items: Vec<(u32, usize)> = count.into_iter().collect();
    items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let keep: std::collections::HashSet<u32> = items.iter().take(n_items).map(|p| p.0).collect();
    let mut users: Vec<Vec<u32>> = d
        .users()
        .map(|(_, s)| {
            s.iter()
                .copied()
                .filter(|i| keep.contains(i))
                .collect::<Vec<_>>()
        })
        .filter(|s| s.len() >= 5)
        .collect();
    users.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut users: Vec<Vec<u32>> = users.choose_multiple(&mut rng, n_users).cloned().collect();
    loop {
        let mut c: HashMap<u32, usize> = HashMap::new();
        users
            .iter()
            .flatten()
            .for_each(|&i| *c.entry(i).or_default() += 1);
        let before: usize = users.iter().map(Vec::len).sum();
        users.retain(|s| s.len() >= 5);
        for s in &mut users {
            s.retain(|i| c[i] >= 5);
        }
        users.retain(|s| s.len() >= 5);
        if users.iter().map(Vec::len).sum::<usize>() == before {
            break;
        }
    }
    users.shuffle(&mut rng);
    let mut ids: HashMap<u32, u32> = HashMap::new();
    let mut sequences = vec![Vec::new()];
    let mut items_meta = vec![Default::default()];
    for s in &users {
        sequences.push(
            s.iter()
                .map(|i| {
                    *ids.entry(*i).or_insert_with(|| {
                        items_meta.push(d.items[*i as usize].clone());
                        items_meta.len() as u32 - 1
                    })
                })
                .collect(),
        );
    }
    Dataset {
        n_users: users.len(),
        n_items: ids.len(),
        user_raw_ids: (0..=users.len()).map(|u| u.to_string()).collect(),
        items: items_meta,
        sequences,
    }
}
