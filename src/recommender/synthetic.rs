//! Tiny datasets with a known right answer, for tests and demos of the recommender stage.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::{Dataset, ItemMeta};

/// Users walk a ring of `n_items` items: every next item is the successor of the previous one
/// (`i → i % n + 1`), from a random start, for 5 to `max_len` steps. A sequence model can
/// predict every next item exactly; popularity cannot.
pub fn successor_ring(n_users: usize, n_items: usize, max_len: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let sequences = (0..n_users)
        .map(|_| {
            let start = rng.random_range(0..n_items as u32);
            let len = rng.random_range(5..=max_len.min(n_items));
            (0..len as u32)
                .map(|k| (start + k) % n_items as u32 + 1)
                .collect()
        })
        .collect();
    dataset(sequences, n_items)
}

/// Items fall into `n_groups` equal groups; each user draws 5 to `max_len` distinct items from
/// one group. A user-embedding model learns each user's group; popularity cannot.
pub fn item_groups(
    n_users: usize,
    n_items: usize,
    n_groups: usize,
    max_len: usize,
    seed: u64,
) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let per = n_items / n_groups;
    let sequences = (0..n_users)
        .map(|_| {
            let g = rng.random_range(0..n_groups) as u32;
            let mut items: Vec<u32> = (0..per as u32).map(|k| g * per as u32 + k + 1).collect();
            items.shuffle(&mut rng);
            items.truncate(rng.random_range(5..=max_len.min(per)));
            items
        })
        .collect();
    dataset(sequences, n_items)
}

/// Wraps user sequences (users `1..=n`) into a [`Dataset`] with placeholder titles.
fn dataset(users: Vec<Vec<u32>>, n_items: usize) -> Dataset {
    let mut sequences = vec![Vec::new()];
    sequences.extend(users);
    let items = (0..=n_items)
        .map(|i| ItemMeta {
            raw_id: if i == 0 {
                String::new()
            } else {
                format!("item{i}")
            },
            title: if i == 0 {
                String::new()
            } else {
                format!("Item {i}")
            },
            ..Default::default()
        })
        .collect();
    Dataset {
        n_users: sequences.len() - 1,
        n_items,
        user_raw_ids: (0..sequences.len())
            .map(|u| {
                if u == 0 {
                    String::new()
                } else {
                    format!("user{u}")
                }
            })
            .collect(),
        items,
        sequences,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sequences_follow_the_successor_rule() {
        let d = successor_ring(20, 12, 8, 1);
        assert_eq!((d.n_users, d.n_items, d.sequences.len()), (20, 12, 21));
        for (_, seq) in d.users() {
            assert!(seq.len() >= 5 && seq.len() <= 8);
            assert!(seq.windows(2).all(|w| w[1] == w[0] % 12 + 1));
        }
    }

    #[test]
    fn group_sequences_stay_in_one_group() {
        let d = item_groups(20, 40, 4, 8, 1);
        for (_, seq) in d.users() {
            let g = (seq[0] - 1) / 10;
            assert!(seq.iter().all(|&i| (i - 1) / 10 == g));
        }
    }
}
