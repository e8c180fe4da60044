//! Training and evaluation examples drawn from a [`Dataset`] the way UniRec's leave-one-out
//! split defines them (spec §1.4): every item of `items[1..n-1]` is a training target with the
//! items before it as history; the last item is the validation (= test) target.

use crate::data::{Dataset, Target};

/// A user state: the user and the chronological items before the target.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub uid: u32,
    pub history: &'a [u32],
}

/// One (user, target) pair with the history before the target.
#[derive(Debug, Clone, Copy)]
pub struct Example<'a> {
    pub query: Query<'a>,
    pub target: u32,
}

/// The examples of one dataset, borrowed from its sequences.
#[derive(Debug, Clone)]
pub struct Examples<'a> {
    /// `items[1..n-1]` of every user, in user then time order (the rows of `train_ids.csv`).
    pub train: Vec<Example<'a>>,
    /// The last item of every user (the rows of `test_ids.csv`; valid is identical).
    pub test: Vec<Example<'a>>,
    /// Rows of the item table: items plus padding.
    pub n_item_rows: usize,
    /// Rows of the user table: users plus padding.
    pub n_user_rows: usize,
    /// `seen[uid]`: the user's whole sequence, sorted and deduplicated (never a negative).
    /// As in UniRec, whose `user_history.tsv` holds the full sequence, this includes the test
    /// item: MF's sampled softmax never pushes it down for its user, which inflates MF's test
    /// metrics (on Games, MF's HR@1 ends far above SASRec's while its HR@20 stays below).
    pub seen: Vec<Vec<u32>>,
}

impl<'a> Examples<'a> {
    pub fn new(data: &'a Dataset) -> Self {
        let example = |t: Target| Example {
            query: Query {
                uid: t.user,
                history: data.history_before_first(t.user, t.item),
            },
            target: t.item,
        };
        let train = data.train_targets().map(example).collect();
        let test = data.test_targets().map(example).collect();
        let seen = data
            .sequences
            .iter()
            .map(|seq| {
                let mut s = seq.clone();
                s.sort_unstable();
                s.dedup();
                s
            })
            .collect();
        Examples {
            seen,
            train,
            test,
            n_item_rows: data.n_items + 1,
            n_user_rows: data.n_users + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leave_one_out_rows() {
        let data = Dataset {
            n_users: 2,
            n_items: 6,
            sequences: vec![vec![], vec![1, 2, 3, 4], vec![5, 6, 5]],
            ..Default::default()
        };
        let ex = Examples::new(&data);
        let train: Vec<_> = ex
            .train
            .iter()
            .map(|e| (e.query.uid, e.target, e.query.history.to_vec()))
            .collect();
        assert_eq!(
            train,
            vec![(1, 2, vec![1]), (1, 3, vec![1, 2]), (2, 6, vec![5])]
        );
        let test: Vec<_> = ex
            .test
            .iter()
            .map(|e| (e.query.uid, e.target, e.query.history.len()))
            .collect();
        // User 2's last item 5 first occurs at position 0: its history is empty.
        assert_eq!(test, vec![(1, 4, 3), (2, 5, 0)]);
        assert_eq!((ex.n_item_rows, ex.n_user_rows), (7, 3));
    }
}
