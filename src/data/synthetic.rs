//! A seeded synthetic shop with a known ground truth, for tests and fast demos.
//!
//! Real logs cannot tell whether a recommender (or an LLM explaining one) picked up what drives
//! users, because nobody knows what does. Here we do: every item belongs to one genre, every user
//! has two favourite genres, and behaviour is sequential (the next item tends to stay in the
//! previous item's genre). Later stages can check that a trained model recovers these
//! facts. Items carry titles and attributes (brand, features, description, categories) like the
//! Amazon metadata, so every prompt template works on them. Users occasionally buy an item again,
//! which exercises stage 1's first-occurrence rule.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::raw::{LogBuilder, RawLog};
use super::types::ItemMeta;
use crate::spec::{Validate, Validator, limits};

/// `[data.synthetic]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticSettings {
    pub users: usize,
    pub items: usize,
    /// Number of genres (latent topics).
    pub genres: usize,
    /// Sequence lengths are uniform in `min_len..=max_len`.
    pub min_len: usize,
    pub max_len: usize,
    /// Probability that the next item stays in the previous item's genre.
    pub stay: f64,
    /// Probability that a step re-buys an item already in the sequence.
    pub repeat: f64,
}

impl Default for SyntheticSettings {
    fn default() -> Self {
        SyntheticSettings {
            users: 1000,
            items: 400,
            genres: 8,
            min_len: 6,
            max_len: 20,
            stay: 0.6,
            repeat: 0.05,
        }
    }
}

impl Validate for SyntheticSettings {
    fn validate(&self, v: &mut Validator) {
        v.count("users", self.users, 1, limits::MAX_ENTITIES);
        v.count("items", self.items, 1, limits::MAX_ENTITIES);
        v.count("genres", self.genres, 2, limits::MAX_ENTITIES);
        v.check(
            self.users.saturating_mul(self.max_len) <= limits::MAX_INTERACTIONS,
            "max_len",
            || {
                format!(
                    "users × max_len = {} interactions is more than {} a machine can hold",
                    self.users.saturating_mul(self.max_len),
                    limits::MAX_INTERACTIONS
                )
            },
        );
        v.check(self.items >= self.genres.saturating_mul(2), "items", || {
            format!(
                "{} is too few; need at least 2 per genre ({})",
                self.items,
                2 * self.genres
            )
        });
        v.check(self.min_len >= 1, "min_len", || "must be at least 1".into());
        v.check(self.min_len <= self.max_len, "min_len", || {
            "must not exceed max_len".into()
        });
        v.check(self.max_len < self.items, "max_len", || {
            "must be below items".into()
        });
        v.in_range("stay", self.stay, 0.0, 1.0);
        v.in_range("repeat", self.repeat, 0.0, 0.5);
    }
}

/// What generated the data: look items and users up by their raw ids (`item-0007`, `user-0042`).
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticTruth {
    pub genres: Vec<String>,
    /// `item_genre[k]` is the genre of `item-k`.
    pub item_genre: Vec<usize>,
    /// `favourites[k]` are the (primary, secondary) genres of `user-k`.
    pub favourites: Vec<(usize, usize)>,
}

impl SyntheticTruth {
    pub fn genre_of(&self, item_raw_id: &str) -> Option<usize> {
        index(item_raw_id, "item-").and_then(|k| self.item_genre.get(k).copied())
    }

    pub fn favourites_of(&self, user_raw_id: &str) -> Option<(usize, usize)> {
        index(user_raw_id, "user-").and_then(|k| self.favourites.get(k).copied())
    }
}

fn index(raw: &str, prefix: &str) -> Option<usize> {
    raw.strip_prefix(prefix)?.parse().ok()
}

const GENRES: &[&str] = &[
    "Racing",
    "Puzzle",
    "Shooter",
    "Role-Playing",
    "Sports",
    "Platformer",
    "Strategy",
    "Horror",
    "Fighting",
    "Simulation",
    "Adventure",
    "Music",
];
const ADJECTIVES: &[&str] = &[
    "Crimson", "Silent", "Galactic", "Turbo", "Ancient", "Neon", "Frozen", "Wild", "Iron",
    "Hidden", "Golden", "Shadow", "Cosmic", "Lucky", "Royal", "Savage",
];
const NOUNS: &[&str] = &[
    "Dragon", "Circuit", "Kingdom", "Legends", "Odyssey", "Arena", "Frontier", "Quest", "Empire",
    "Rally", "Tactics", "Dungeon", "Galaxy", "League", "Harbor", "Tower",
];
const BRANDS: &[&str] = &[
    "Nintendo", "Sega", "Capcom", "Ubisoft", "Konami", "Atlus", "Bandai",
];
const PLATFORMS: &[&str] = &["PlayStation 4", "Xbox One", "Nintendo Switch", "PC"];

/// Generates the log and its ground truth; the same settings and seed give the same output.
pub fn generate(s: &SyntheticSettings, seed: u64) -> (RawLog, SyntheticTruth) {
    let mut rng = crate::seed::rng(seed, "data.synthetic", &[]);
    let genres: Vec<String> = (0..s.genres)
        .map(|g| {
            GENRES
                .get(g)
                .map_or_else(|| format!("Genre {g}"), |n| n.to_string())
        })
        .collect();
    let mut log = LogBuilder::default();
    // Items are dealt round-robin to genres; within a genre, popularity falls off like Zipf.
    let item_genre: Vec<usize> = (0..s.items).map(|k| k % s.genres).collect();
    let mut by_genre: Vec<Vec<usize>> = vec![Vec::new(); s.genres];
    for (k, &g) in item_genre.iter().enumerate() {
        by_genre[g].push(k);
        log.set_meta(item_meta(k, &genres[g], g, &mut rng));
    }
    let favourites: Vec<(usize, usize)> = (0..s.users)
        .map(|_| {
            let a = rng.random_range(0..s.genres);
            let b = (a + rng.random_range(1..s.genres)) % s.genres;
            (a, b)
        })
        .collect();
    for (u, &fav) in favourites.iter().enumerate() {
        let user = log.user(&format!("user-{u:04}"));
        let len = rng.random_range(s.min_len..=s.max_len);
        let mut time = rng.random_range(1_400_000_000.0..1_500_000_000.0);
        let mut seq: Vec<usize> = Vec::with_capacity(len);
        while seq.len() < len {
            let item = if !seq.is_empty() && rng.random_bool(s.repeat) {
                seq[rng.random_range(0..seq.len())]
            } else {
                let genre = match seq.last() {
                    Some(&prev) if rng.random_bool(s.stay) => item_genre[prev],
                    _ => taste_genre(fav, s.genres, &mut rng),
                };
                let Some(item) = pick_new(&by_genre[genre], &seq, &mut rng)
                    .or_else(|| pick_new(&(0..s.items).collect::<Vec<_>>(), &seq, &mut rng))
                else {
                    break;
                };
                seq.push(item);
                item
            };
            time += rng.random_range(3_600.0..2_592_000.0);
            let iid = log.item(&format!("item-{item:04}"));
            log.push(user, iid, time);
        }
    }
    let truth = SyntheticTruth {
        genres,
        item_genre,
        favourites,
    };
    (log.finish(), truth)
}

/// A genre drawn from a user's taste: 55 % primary, 30 % secondary, 15 % any genre.
fn taste_genre(fav: (usize, usize), n: usize, rng: &mut ChaCha8Rng) -> usize {
    let r: f64 = rng.random();
    if r < 0.55 {
        fav.0
    } else if r < 0.85 {
        fav.1
    } else {
        rng.random_range(0..n)
    }
}

/// An item of `pool` not yet in `seq`, drawn with Zipf-like weights `1 / (rank + 1)`.
fn pick_new(pool: &[usize], seq: &[usize], rng: &mut ChaCha8Rng) -> Option<usize> {
    let open: Vec<(usize, f64)> = pool
        .iter()
        .enumerate()
        .filter(|(_, k)| !seq.contains(k))
        .map(|(rank, &k)| (k, 1.0 / (rank as f64 + 1.0)))
        .collect();
    let total: f64 = open.iter().map(|(_, w)| w).sum();
    let mut r = rng.random::<f64>() * total;
    for &(k, w) in &open {
        if r < w {
            return Some(k);
        }
        r -= w;
    }
    open.last().map(|&(k, _)| k)
}

fn item_meta(k: usize, genre: &str, g: usize, rng: &mut ChaCha8Rng) -> ItemMeta {
    let adj = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
    let noun = NOUNS[rng.random_range(0..NOUNS.len())];
    let platform = PLATFORMS[rng.random_range(0..PLATFORMS.len())];
    let players = rng.random_range(1..=4);
    ItemMeta {
        raw_id: format!("item-{k:04}"),
        // The item number keeps titles unique, as real catalogues mostly are.
        title: format!("{adj} {noun} {k} - {platform}"),
        // Two brands per genre.
        brand: Some(BRANDS[(g + k % 2) % BRANDS.len()].to_string()),
        features: vec![format!("Genre: {genre}"), format!("Players: 1-{players}")],
        description: vec![format!(
            "A {} {} game for {platform}.",
            adj.to_lowercase(),
            genre.to_lowercase()
        )],
        categories: vec!["Video Games".into(), genre.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_log_and_different_seed_differs() {
        let s = SyntheticSettings {
            users: 50,
            items: 40,
            ..SyntheticSettings::default()
        };
        assert_eq!(generate(&s, 1), generate(&s, 1));
        assert_ne!(generate(&s, 1).0, generate(&s, 2).0);
    }

    #[test]
    fn behaviour_follows_the_ground_truth() {
        let s = SyntheticSettings::default();
        let (log, truth) = generate(&s, 7);
        let mut in_favourites = 0;
        for e in &log.events {
            let fav = truth.favourites_of(&log.users[e.user as usize]).unwrap();
            let g = truth.genre_of(&log.items[e.item as usize].raw_id).unwrap();
            in_favourites += usize::from(g == fav.0 || g == fav.1);
        }
        let share = in_favourites as f64 / log.events.len() as f64;
        // 85 % of fresh draws hit a favourite and "stay" steps mostly continue one.
        assert!(
            share > 0.7,
            "only {share:.2} of interactions in favourite genres"
        );
        // Purely random behaviour would give 2/8 = 0.25.
        let lens: Vec<usize> = (0..s.users)
            .map(|u| log.events.iter().filter(|e| e.user as usize == u).count())
            .collect();
        assert!(lens.iter().all(|&n| n >= s.min_len));
        assert!(
            log.items
                .iter()
                .all(|m| !m.title.is_empty() && m.brand.is_some())
        );
    }
}
