//! The stage's exports for later stages: the top files (spec §1.6), `sim_item.txt` (§1.7) and
//! embedding tables as safetensors. The names of the files in the stage's folder and the
//! readers and writers of their formats live here (and in [`super::top_file`]) only: the stage
//! writes and later stages read through them, so a name or a format is spelled once.

use std::collections::HashMap;
use std::path::Path;

use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::top_file::TopLine;
use crate::error::{Error, IoContext, Result};

/// File names inside the stage's artifact folder.
pub const MODEL_CONFIG: &str = "model.json";
pub const MODEL_WEIGHTS: &str = "model.safetensors";
pub const ITEM_EMBEDDINGS: &str = "item_embeddings.safetensors";
pub const USER_EMBEDDINGS: &str = "user_embeddings.safetensors";
pub const TRAIN_TOP: &str = "train_top.txt";
pub const TEST_TOP: &str = "test_top.txt";
pub const SIM_ITEM: &str = "sim_item.txt";
pub const SUMMARY: &str = "summary.json";

/// The `times` lines of §1.6 for one (user, target) pair, from the model's scores over all item
/// rows (index 0 = padding). `history` (the items before the target) and padding are excluded.
pub fn top_lines(
    uid: u32,
    iid: u32,
    history: &[u32],
    scores: &[f32],
    times: usize,
    rng: &mut ChaCha8Rng,
) -> std::result::Result<Vec<TopLine>, String> {
    let n = scores.len();
    let mut s = scores.to_vec();
    s[0] = f32::NEG_INFINITY;
    for &h in history {
        s[h as usize] = f32::NEG_INFINITY;
    }
    // reco_items: every row by descending score (ties by id, as a stable sort would).
    let mut reco: Vec<u32> = (0..n as u32).collect();
    reco.sort_by(|&a, &b| s[b as usize].total_cmp(&s[a as usize]));
    let filtered: Vec<u32> = reco
        .iter()
        .copied()
        .filter(|&i| s[i as usize] > f32::NEG_INFINITY)
        .collect();
    if filtered.len() < times.max(5) {
        return Err(format!(
            "user {uid}: only {} items outside the history",
            filtered.len()
        ));
    }
    let pos_thred = s[reco[n / 5] as usize];
    let pos_pool: Vec<u32> = (0..n as u32)
        .filter(|&i| s[i as usize] > pos_thred)
        .collect();
    // Python's `reco[(-n)//2]` is `reco[n - ceil(n/2)]`.
    let neg_thred = s[reco[n - n.div_ceil(2)] as usize];
    let neg_pool: Vec<u32> = (0..n as u32)
        .filter(|&i| s[i as usize] < neg_thred && s[i as usize] > f32::NEG_INFINITY)
        .collect();
    let pos = choose(&pos_pool, times, rng)
        .ok_or_else(|| format!("user {uid}: no item in the top 20 %"))?;
    let neg = choose(&neg_pool, times, rng)
        .ok_or_else(|| format!("user {uid}: no non-history item in the bottom 50 %"))?;
    Ok((0..times)
        .map(|i| {
            let mut idx = sample(rng, filtered.len(), 5).into_vec();
            idx.sort_unstable();
            TopLine {
                uid,
                iid,
                top: filtered[i],
                candidates: std::array::from_fn(|c| filtered[idx[c]]),
                pos: pos[i],
                neg: neg[i],
                pos_score: scores[pos[i] as usize],
                neg_score: scores[neg[i] as usize],
            }
        })
        .collect())
}

/// `k` distinct picks from `pool` (`np.random.choice(replace=False)`); when the pool is smaller
/// than `k` the picks repeat cyclically. `None` for an empty pool.
fn choose(pool: &[u32], k: usize, rng: &mut ChaCha8Rng) -> Option<Vec<u32>> {
    if pool.is_empty() {
        return None;
    }
    let picks = sample(rng, pool.len(), k.min(pool.len())).into_vec();
    Some((0..k).map(|i| pool[picks[i % picks.len()]]).collect())
}

/// Each real item's nearest other real item by dot product (§1.7), from the item table
/// (row-major `[rows, d]`, row 0 = padding). Returns `(i, j)` for `i = 1..rows`.
pub fn sim_items(table: &[f32], rows: usize) -> Vec<(u32, u32)> {
    let d = table.len() / rows;
    let row = |i: usize| &table[i * d..(i + 1) * d];
    (1..rows)
        .map(|i| {
            let a = row(i);
            let mut best = (f32::NEG_INFINITY, 0usize);
            for j in (1..rows).filter(|&j| j != i) {
                let dot: f32 = a.iter().zip(row(j)).map(|(x, y)| x * y).sum();
                if dot > best.0 {
                    best = (dot, j);
                }
            }
            (i as u32, best.1 as u32)
        })
        .collect()
}

/// Writes `sim_item.txt`: `"i\tj\n"` per item.
pub fn write_sim_items(path: &Path, pairs: &[(u32, u32)]) -> Result<()> {
    let text: String = pairs.iter().map(|(i, j)| format!("{i}\t{j}\n")).collect();
    std::fs::write(path, text).at(path)
}

/// Reads what [`write_sim_items`] wrote; a malformed line fails with file:line.
pub fn read_sim_items(path: &Path) -> Result<Vec<(u32, u32)>> {
    let text = std::fs::read_to_string(path).at(path)?;
    parse_sim_items(path, &text)
}

fn parse_sim_items(path: &Path, text: &str) -> Result<Vec<(u32, u32)>> {
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ids: Vec<&str> = line.split('\t').collect();
        let parsed = match ids.as_slice() {
            [i, j] => i
                .trim()
                .parse::<u32>()
                .ok()
                .zip(j.trim().parse::<u32>().ok()),
            _ => None,
        };
        let pair = parsed.ok_or_else(|| {
            Error::bad_input(
                path,
                n + 1,
                format!("expected two tab-separated item ids, found {line:?}"),
            )
        })?;
        pairs.push(pair);
    }
    Ok(pairs)
}

/// Writes one f32 matrix `[rows, cols]` under `name` as a safetensors file.
pub fn write_matrix(path: &Path, name: &str, data: &[f32], rows: usize, cols: usize) -> Result<()> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, vec![rows, cols], &bytes)
        .map_err(|e| Error::model_file(path, e.to_string()))?;
    safetensors::serialize_to_file([(name, view)], None::<HashMap<String, String>>, path)
        .map_err(|e| Error::model_file(path, e.to_string()))
}

/// Reads a matrix written by [`write_matrix`]: `(data, rows, cols)`.
pub fn read_matrix(path: &Path, name: &str) -> Result<(Vec<f32>, usize, usize)> {
    let bytes = std::fs::read(path).at(path)?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| Error::model_file(path, e.to_string()))?;
    let t = st
        .tensor(name)
        .map_err(|e| Error::model_file(path, format!("{name}: {e}")))?;
    let shape = t.shape();
    if t.dtype() != Dtype::F32 || shape.len() != 2 {
        return Err(Error::model_file(
            path,
            format!(
                "{name}: expected a 2-D f32 tensor, found {:?} {:?}",
                t.dtype(),
                shape
            ),
        ));
    }
    let data = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((data, shape[0], shape[1]))
}

/// A seeded RNG for the exports (spec: seed 2023).
pub fn export_rng(seed: u64) -> ChaCha8Rng {
    rand::SeedableRng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_items_round_trip_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SIM_ITEM);
        write_sim_items(&path, &[(1, 2), (2, 1)]).unwrap();
        assert_eq!(read_sim_items(&path).unwrap(), vec![(1, 2), (2, 1)]);
        let p = Path::new(SIM_ITEM);
        let err = parse_sim_items(p, "1\t2\n3 4\n").unwrap_err().to_string();
        assert!(err.starts_with("sim_item.txt:2:"), "{err}");
    }

    #[test]
    fn top_lines_follow_the_rules() {
        // 21 rows: item i scores i, so the ranking is 20, 19, ..., 1, 0.
        let scores: Vec<f32> = (0..21).map(|i| i as f32).collect();
        let history = [20, 3];
        let mut rng = export_rng(2023);
        let lines = top_lines(7, 5, &history, &scores, 6, &mut rng).unwrap();
        assert_eq!(lines.len(), 6);
        for (i, l) in lines.iter().enumerate() {
            assert_eq!((l.uid, l.iid), (7, 5));
            assert_eq!(l.top, 19 - i as u32); // 20 is history
            assert!(
                l.candidates.windows(2).all(|w| w[0] > w[1]),
                "rank order: {:?}",
                l.candidates
            );
            assert!(l.candidates.iter().all(|c| !history.contains(c) && *c != 0));
            // pos_thred = score of reco[21/5 = 4] with history at -inf: reco = 19,18,17,16,15,...
            assert!(l.pos > 15, "{}", l.pos);
            // neg_thred = score of reco[21 - 11 = 10] = 9: negatives score below 9, not history.
            assert!(l.neg < 9 && l.neg != 3 && l.neg != 0, "{}", l.neg);
            assert_eq!(l.pos_score, l.pos as f32);
        }
        let mut pos: Vec<u32> = lines.iter().map(|l| l.pos).collect();
        pos.sort_unstable();
        pos.dedup();
        assert_eq!(
            pos.len(),
            4,
            "only 4 items are above the threshold; picks cycle"
        );
    }

    #[test]
    fn sim_item_is_the_nearest_other_item() {
        // rows: padding, a=(1,0), b=(0.9,0.1), c=(0,1)
        let table = [0.0, 0.0, 1.0, 0.0, 0.9, 0.1, 0.0, 1.0];
        assert_eq!(sim_items(&table, 4), vec![(1, 2), (2, 1), (3, 2)]);
    }
}
