//! The two baselines without a model (paper §8.1): Random draws k uniform items and shuffles
//! the candidates; Popularity samples items by popularity and sorts the candidates by it. Both
//! answer the same validation records as the aligned model and are scored by the same metric
//! functions ([`crate::eval::metrics`]), so a title is a title whichever row produced it.

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::alignment::Task;
use crate::alignment::record::TaskRecord;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::eval::{Scored, label_titles, metrics};

/// Items in a ranked list for `uid2next` (the paper's H@5 / N@5).
pub const K: usize = 5;

/// How often each item occurs in what the target recommender trained on: every sequence
/// without its last item (the held-out validation/test item). Index = item id; 0 is padding.
pub fn popularity(ds: &Dataset) -> Vec<u64> {
    let mut counts = vec![0u64; ds.n_items + 1];
    for (_, seq) in ds.users() {
        for &iid in &seq[..seq.len().saturating_sub(1)] {
            counts[iid as usize] += 1;
        }
    }
    counts
}

fn titles(ds: &Dataset, ids: &[u32]) -> Vec<String> {
    ids.iter().map(|&i| ds.title(i).to_string()).collect()
}

fn next_item(ds: &Dataset, r: &TaskRecord, ids: &[u32]) -> Scored {
    let predictions = titles(ds, ids);
    let (hit, ndcg) = metrics::hit_ndcg_at_k(&predictions, &r.answer, K);
    Scored {
        predictions,
        values: vec![("hit@5", hit), ("ndcg@5", ndcg)],
    }
}

fn ranking(ds: &Dataset, r: &TaskRecord, order: &[u32], sep: &str) -> Scored {
    let text = titles(ds, order).join(sep);
    let ndcg = metrics::ranking_ndcg(&text, &label_titles(r, ds), sep);
    Scored {
        predictions: vec![text],
        values: vec![("ndcg@5", ndcg)],
    }
}

/// Random: `k` distinct uniform items for `uid2next`, a uniform shuffle of the candidates for
/// `uidiid2rank`, a fair coin for `uidiid2binary`. `None` for tasks the paper has no Random
/// number for.
pub fn random(
    task: Task,
    records: &[&TaskRecord],
    ds: &Dataset,
    sep: &str,
    rng: &mut ChaCha8Rng,
) -> Option<Vec<Scored>> {
    let score = |r: &TaskRecord, rng: &mut ChaCha8Rng| match task {
        Task::Uid2Next => {
            let k = K.min(ds.n_items);
            let ids: Vec<u32> = rand::seq::index::sample(rng, ds.n_items, k)
                .into_iter()
                .map(|i| i as u32 + 1)
                .collect();
            next_item(ds, r, &ids)
        }
        Task::UidIid2Rank => {
            let mut order = r.candidates.clone();
            order.shuffle(rng);
            ranking(ds, r, &order, sep)
        }
        _ => {
            let yes = rng.random_bool(0.5);
            let (y, n) = if yes { (1.0, 0.0) } else { (0.0, 1.0) };
            let said = if yes { "Yes" } else { "No" };
            Scored {
                predictions: vec![said.into()],
                values: vec![("acc", metrics::binary_correct(&r.answer, y, n))],
            }
        }
    };
    matches!(
        task,
        Task::Uid2Next | Task::UidIid2Rank | Task::UidIid2Binary
    )
    .then(|| records.iter().map(|r| score(r, rng)).collect())
}

/// Popularity: `k` distinct items drawn with probability proportional to their popularity for
/// `uid2next`, the candidates sorted by popularity (most popular first, ties in prompt order)
/// for `uidiid2rank`. `None` elsewhere (the paper has no Popularity number for them).
pub fn by_popularity(
    task: Task,
    records: &[&TaskRecord],
    ds: &Dataset,
    sep: &str,
    counts: &[u64],
    rng: &mut ChaCha8Rng,
) -> Option<Result<Vec<Scored>>> {
    match task {
        Task::Uid2Next => Some(
            records
                .iter()
                .map(|r| Ok(next_item(ds, r, &popular_draw(counts, rng)?)))
                .collect(),
        ),
        Task::UidIid2Rank => Some(Ok(records
            .iter()
            .map(|r| {
                let mut order = r.candidates.clone();
                order.sort_by_key(|&i| std::cmp::Reverse(counts[i as usize]));
                ranking(ds, r, &order, sep)
            })
            .collect())),
        _ => None,
    }
}

/// `K` distinct item ids drawn without replacement, each draw proportional to popularity.
fn popular_draw(counts: &[u64], rng: &mut ChaCha8Rng) -> Result<Vec<u32>> {
    let n = counts.len() - 1;
    let k = K.min(counts[1..].iter().filter(|&&c| c > 0).count());
    let drawn = rand::seq::index::sample_weighted(rng, n, |i| counts[i + 1] as f64, k)
        .map_err(|e| Error::Config(format!("popularity baseline: {e}")))?;
    Ok(drawn.into_iter().map(|i| i as u32 + 1).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ItemMeta;
    use rand::SeedableRng;

    fn ds(n_items: usize) -> Dataset {
        let mut items = vec![ItemMeta::default()];
        items.extend((1..=n_items).map(|i| ItemMeta {
            title: format!("Item {i}"),
            ..Default::default()
        }));
        // Item 1 is in every history, item 2 in half of them; the last items are held out.
        let sequences: Vec<Vec<u32>> = std::iter::once(vec![])
            .chain((0..40).map(|u| {
                let mut s = vec![1];
                if u % 2 == 0 {
                    s.push(2);
                }
                s.push(3 + (u % (n_items as u32 - 3)));
                s.push(n_items as u32);
                s
            }))
            .collect();
        Dataset {
            n_users: 40,
            n_items,
            sequences,
            items,
            user_raw_ids: vec![String::new(); 41],
        }
    }

    fn rank_record(candidates: Vec<u32>, ranking: Vec<u32>, d: &Dataset) -> TaskRecord {
        TaskRecord {
            task: Task::UidIid2Rank,
            question: String::new(),
            answer: titles(d, &ranking).join("; "),
            slots: vec![],
            uid: Some(1),
            iid: 1,
            target: None,
            candidates,
            ranking,
            history: vec![],
            item_tokens: vec![],
            template_set: "uidiid2rank".into(),
            template: 0,
        }
    }

    #[test]
    fn popularity_counts_exclude_the_held_out_item() {
        let d = ds(10);
        let c = popularity(&d);
        assert_eq!((c[1], c[2], c[10]), (40, 20, 0));
    }

    #[test]
    fn popularity_sorts_candidates_and_random_shuffles_them() {
        let d = ds(10);
        let counts = popularity(&d);
        let r = rank_record(vec![3, 2, 1, 4, 5], vec![1, 2, 3, 4, 5], &d);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let p = by_popularity(Task::UidIid2Rank, &[&r], &d, "; ", &counts, &mut rng)
            .unwrap()
            .unwrap();
        assert!(p[0].predictions[0].starts_with("Item 1; Item 2; "));
        // Random orders average the paper's 0.61 over many draws.
        let many: Vec<&TaskRecord> = std::iter::repeat_n(&r, 4000).collect();
        let s = random(Task::UidIid2Rank, &many, &d, "; ", &mut rng).unwrap();
        let mean = s.iter().map(|x| x.values[0].1).sum::<f64>() / s.len() as f64;
        assert!((mean - 0.61).abs() < 0.02, "{mean}");
    }

    #[test]
    fn popular_draws_are_distinct_and_follow_popularity() {
        let d = ds(10);
        let counts = popularity(&d);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut first_two = 0;
        for _ in 0..200 {
            let ids = popular_draw(&counts, &mut rng).unwrap();
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), ids.len());
            assert!(!ids.contains(&10), "never-seen items are never drawn");
            first_two += usize::from(ids.contains(&1)) + usize::from(ids.contains(&2));
        }
        // Items 1 and 2 hold 60 of the 120 counts: they are in nearly every draw of 5.
        assert!(first_two > 350, "{first_two}");
    }
}
