//! The alignment metrics exactly as the original computes them (spec §5.3): strict string
//! equality after `strip().lower()`, no fuzzy matching. Each function scores one example; the
//! stage averages.

/// `s.strip().lower()`.
pub fn normalize(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Splits a list answer on the separator, each element normalized.
pub fn split_list(text: &str, separator: &str) -> Vec<String> {
    text.split(separator).map(normalize).collect()
}

/// Item recovery (`iid2title`): 1 when the generated title equals the true one.
pub fn exact_match(pred: &str, label: &str) -> f64 {
    f64::from(normalize(pred) == normalize(label))
}

/// Next-item retrieval (`uid2next`): the beams in score order form the ranked list; hit@k is 1
/// when any of the first k equals the label, NDCG@k is 1/log2(rank + 2) at the first match.
pub fn hit_ndcg_at_k(beams: &[String], label: &str, k: usize) -> (f64, f64) {
    let label = normalize(label);
    match beams.iter().take(k).position(|b| normalize(b) == label) {
        Some(rank) => (1.0, 1.0 / (rank as f64 + 2.0).log2()),
        None => (0.0, 0.0),
    }
}

/// Relevance of label positions 0..5 in the graded ranking NDCG.
const RANK_RELEVANCE: [f64; 5] = [1000.0, 100.0, 10.0, 1.0, 0.0];

/// Item ranking (`uidiid2rank`) graded NDCG@5: the prediction is split on the separator and cut
/// to 5 elements; label position i (relevance 1000, 100, 10, 1, 0) earns rel/log2(j + 2) at the
/// first not-yet-used prediction position j whose string equals it. Divided by the ideal DCG.
pub fn ranking_ndcg(pred: &str, labels: &[String], separator: &str) -> f64 {
    let preds: Vec<String> = split_list(pred, separator).into_iter().take(5).collect();
    let mut used = vec![false; preds.len()];
    let mut dcg = 0.0;
    for (i, label) in labels.iter().take(5).enumerate() {
        let label = normalize(label);
        if let Some(j) = (0..preds.len()).find(|&j| !used[j] && preds[j] == label) {
            used[j] = true;
            dcg += RANK_RELEVANCE[i] / (j as f64 + 2.0).log2();
        }
    }
    let idcg: f64 = RANK_RELEVANCE
        .iter()
        .enumerate()
        .map(|(i, r)| r / (i as f64 + 2.0).log2())
        .sum();
    dcg / idcg
}

/// Interest classification (`uidiid2binary`) from the logits of "Yes" and "No" at the last
/// prompt position: a "yes" label is right when Yes ≥ No, a "no" label when Yes < No.
pub fn binary_correct(label: &str, logit_yes: f32, logit_no: f32) -> f64 {
    let says_yes = logit_yes >= logit_no;
    f64::from(says_yes == (normalize(label) == "yes"))
}

/// History reconstruction (`uid2hist`) coverage ratio: the first `len(answer)` predicted
/// elements, each adding 1/len(answer) when it is in the answer set (duplicates count again).
pub fn history_coverage(pred: &str, answer: &[String], separator: &str) -> f64 {
    if answer.is_empty() {
        return 0.0;
    }
    let set: std::collections::HashSet<String> = answer.iter().map(|a| normalize(a)).collect();
    let n = answer.len();
    split_list(pred, separator)
        .into_iter()
        .take(n)
        .filter(|p| set.contains(p))
        .count() as f64
        / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn matching_is_strict_after_strip_and_lower() {
        assert_eq!(exact_match("  Mario Kart 8 ", "mario kart 8"), 1.0);
        assert_eq!(exact_match("Mario Kart", "Mario Kart 8"), 0.0);
    }

    #[test]
    fn retrieval_hit_and_ndcg_follow_the_first_match() {
        let beams = s(&["A", "B", "C", "D", "E"]);
        assert_eq!(hit_ndcg_at_k(&beams, "a", 5), (1.0, 1.0));
        let (h, n) = hit_ndcg_at_k(&beams, "c", 5);
        assert_eq!(h, 1.0);
        assert!((n - 0.5).abs() < 1e-12); // 1/log2(4)
        assert_eq!(hit_ndcg_at_k(&beams, "e", 4), (0.0, 0.0));
        assert_eq!(hit_ndcg_at_k(&beams, "z", 5), (0.0, 0.0));
    }

    #[test]
    fn ranking_ndcg_is_one_for_the_label_order_and_graded_otherwise() {
        let labels = s(&["a", "b", "c", "d", "e"]);
        assert!((ranking_ndcg("A; B; C; D; E", &labels, "; ") - 1.0).abs() < 1e-12);
        // Swapping the top two: (1000/log2 3 + 100) / IDCG.
        let idcg = 1000.0 + 100.0 / 3f64.log2() + 10.0 / 2.0 + 1.0 / 5f64.log2();
        assert!((idcg - 1068.52).abs() < 0.01, "{idcg}");
        let swapped = ranking_ndcg("b; a; c; d; e", &labels, "; ");
        let want = (1000.0 / 3f64.log2() + 100.0 + 10.0 / 2.0 + 1.0 / 5f64.log2()) / idcg;
        assert!((swapped - want).abs() < 1e-12);
        // Unparseable output scores 0; a repeated title is matched once.
        assert_eq!(ranking_ndcg("I cannot rank these.", &labels, "; "), 0.0);
        let repeated = ranking_ndcg("a; a; a; a; a", &labels, "; ");
        assert!((repeated - 1000.0 / idcg).abs() < 1e-12);
    }

    #[test]
    fn random_rankings_average_near_the_papers_random_row() {
        // Spec §5.3: a random order gives ≈ 0.61 (paper Table 1, "Random").
        let labels = s(&["a", "b", "c", "d", "e"]);
        let mut total = 0.0;
        let mut count = 0.0;
        let items = ["a", "b", "c", "d", "e"];
        for p in permutations(&items) {
            total += ranking_ndcg(&p.join("; "), &labels, "; ");
            count += 1.0;
        }
        let mean = total / count;
        assert!((mean - 0.61).abs() < 0.01, "{mean}");
    }

    fn permutations(items: &[&str]) -> Vec<Vec<String>> {
        if items.len() <= 1 {
            return vec![items.iter().map(|s| s.to_string()).collect()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first.to_string());
                out.push(p);
            }
        }
        out
    }

    #[test]
    fn binary_uses_yes_at_least_no() {
        assert_eq!(binary_correct("Yes", 1.0, 1.0), 1.0);
        assert_eq!(binary_correct("yes", 0.5, 1.0), 0.0);
        assert_eq!(binary_correct("No", 0.5, 1.0), 1.0);
        assert_eq!(binary_correct("No", 2.0, 1.0), 0.0);
    }

    #[test]
    fn coverage_counts_the_first_len_answer_elements_with_duplicates() {
        let answer = s(&["x", "y", "z", "w"]);
        assert_eq!(history_coverage("x; y; q; w; z", &answer, "; "), 0.75);
        assert_eq!(history_coverage("x; x; x; x", &answer, "; "), 1.0);
        assert_eq!(history_coverage("", &answer, "; "), 0.0);
    }

    #[test]
    fn a_title_with_the_separator_is_one_label_as_in_the_original() {
        // Labels are built from item ids (one title each), predictions are split on the
        // separator, as the original does: the title "Tom Clancy; Ghost" cannot be matched by a
        // prediction, and the items after it move one place down.
        let labels = s(&["A", "Tom Clancy; Ghost", "C", "D", "E"]);
        let answer_text = labels.join("; ");
        let idcg = 1000.0 + 100.0 / 3f64.log2() + 10.0 / 2.0 + 1.0 / 5f64.log2();
        let want = (1000.0 + 10.0 / 5f64.log2() + 1.0 / 6f64.log2()) / idcg;
        let got = ranking_ndcg(&answer_text, &labels, "; ");
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        // Splitting the answer text instead would have scored the same prediction 1.0.
        let split = split_list(&answer_text, "; ");
        assert!((ranking_ndcg(&answer_text, &split, "; ") - 1.0).abs() < 1e-12);

        // History coverage: three history items, the prediction's first three elements are
        // "a", "tom clancy", "ghost", of which only "a" is a label.
        let history = s(&["A", "Tom Clancy; Ghost", "C"]);
        let text = history.join("; ");
        assert!((history_coverage(&text, &history, "; ") - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            history_coverage(&text, &split_list(&text, "; "), "; "),
            1.0,
            "the split answer had four labels, all matched"
        );
    }
}
