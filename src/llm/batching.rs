//! Batches of similar length.
//!
//! A batch is padded to its longest sequence, so batching sequences in arrival order wastes
//! much of the compute on padding (about half of the positions of a shuffled LoRA micro-batch
//! of the Games alignment data). Every consumer here computes a result per sequence that does
//! not depend on which other sequences share its batch (a token-weighted mean over a whole
//! optimizer batch, a per-record score, a per-prompt generation), so grouping by length changes
//! only the amount of padding, never what is computed.

/// Indices `0..lens.len()` grouped into batches of at most `size`, longest sequences first;
/// equal lengths keep their index order, so the grouping is deterministic.
pub fn length_sorted_batches(lens: &[usize], size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(lens[i]), i));
    order.chunks(size.max(1)).map(<[usize]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_similar_lengths_and_cover_every_index_once() {
        let lens = [5, 100, 7, 98, 6, 99];
        let batches = length_sorted_batches(&lens, 3);
        assert_eq!(batches, vec![vec![1, 5, 3], vec![2, 4, 0]]);
        let mut all: Vec<usize> = batches.concat();
        all.sort_unstable();
        assert_eq!(all, (0..lens.len()).collect::<Vec<_>>());
    }

    #[test]
    fn ties_keep_index_order_and_size_zero_is_one() {
        assert_eq!(
            length_sorted_batches(&[3, 3, 3], 0),
            vec![vec![0], vec![1], vec![2]]
        );
        assert!(length_sorted_batches(&[], 4).is_empty());
    }
}
