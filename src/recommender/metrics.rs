//! Full-ranking evaluation (UniRec's `one_vs_all`): the target is ranked against every item
//! except padding and the user's history; HR, NDCG and MRR at 1/5/10/20.

/// The cut-offs UniRec reports.
pub const CUTOFFS: [usize; 4] = [1, 5, 10, 20];

/// The target's 0-based rank: how many allowed items score strictly higher. `masked` are item
/// ids that do not compete (padding 0 is always excluded). Ties count in the target's favour.
pub fn rank_of(scores: &[f32], target: u32, masked: &[u32]) -> usize {
    let t = scores[target as usize];
    let higher = scores.iter().skip(1).filter(|&&s| s > t).count();
    let mut seen: Vec<u32> = masked
        .iter()
        .copied()
        .filter(|&i| i != 0 && i != target)
        .collect();
    seen.sort_unstable();
    seen.dedup();
    higher - seen.iter().filter(|&&i| scores[i as usize] > t).count()
}

/// Per-example metric values for one rank.
pub fn metric_values(rank: usize) -> Vec<(String, f64)> {
    let mut out = Vec::with_capacity(CUTOFFS.len() * 3);
    for k in CUTOFFS {
        let hit = rank < k;
        out.push((format!("hr@{k}"), f64::from(u8::from(hit))));
        out.push((
            format!("ndcg@{k}"),
            if hit {
                1.0 / ((rank + 2) as f64).log2()
            } else {
                0.0
            },
        ));
        out.push((
            format!("mrr@{k}"),
            if hit { 1.0 / (rank + 1) as f64 } else { 0.0 },
        ));
    }
    out
}

/// Mean metrics over a set of ranks, in [`metric_values`] order.
pub fn mean_metrics(ranks: &[usize]) -> Vec<(String, f64)> {
    let mut sums: Vec<(String, f64)> = metric_values(0)
        .into_iter()
        .map(|(n, _)| (n, 0.0))
        .collect();
    for &r in ranks {
        for (acc, (_, v)) in sums.iter_mut().zip(metric_values(r)) {
            acc.1 += v;
        }
    }
    let n = ranks.len().max(1) as f64;
    sums.into_iter().map(|(name, s)| (name, s / n)).collect()
}

/// Looks up one metric in a [`mean_metrics`] result.
pub fn metric(values: &[(String, f64)], name: &str) -> f64 {
    values
        .iter()
        .find(|(n, _)| n == name)
        .map_or(f64::NAN, |(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_ignores_padding_and_history() {
        // item:        0    1    2    3    4
        let scores = [9.0, 5.0, 4.0, 3.0, 6.0];
        assert_eq!(rank_of(&scores, 2, &[]), 2); // 4 and 1 are higher; padding is not
        assert_eq!(rank_of(&scores, 2, &[1, 4, 4]), 0);
        assert_eq!(rank_of(&scores, 2, &[2]), 2); // the target itself is never masked
    }

    #[test]
    fn metric_values_follow_the_definitions() {
        let m = mean_metrics(&[0, 3]);
        assert_eq!(metric(&m, "hr@1"), 0.5);
        assert_eq!(metric(&m, "hr@5"), 1.0);
        assert!((metric(&m, "ndcg@5") - (1.0 + 1.0 / 5f64.log2()) / 2.0).abs() < 1e-12);
        assert!((metric(&m, "mrr@20") - (1.0 + 0.25) / 2.0).abs() < 1e-12);
    }
}
