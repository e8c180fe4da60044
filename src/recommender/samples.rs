//! Training and evaluation examples drawn from a [`Dataset`] the way UniRec's leave-one-out
//! split defines them (spec §1.4): every item of `items[1..n-1]` is a training target with the
//! items before it as history; the last item is the validation (= test) target.

use crate::data::Dataset;

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
    pub seen: Vec<Vec<u32>>,
}

impl<'a> Examples<'a> {
    pub fn new(data: &'a Dataset) -> Self {
        let mut train = Vec::new();
        let mut test = Vec::new();
        for (uid, seq) in data.users() {
            if seq.len() < 2 {
                continue;
            }
            for p in 1..seq.len() - 1 {
                train.push(example(uid, seq, p));
            }
            test.push(example(uid, seq, seq.len() - 1));
        }
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

/// The example whose target is `seq[pos]`, with the history before its first occurrence.
pub fn example(uid: u32, seq: &[u32], pos: usize) -> Example<'_> {
    let target = seq[pos];
    let first = seq.iter().position(|&i| i == target).unwrap_or(pos);
    Example {
        query: Query {
            uid,
            history: &seq[..first],
        },
        target,
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
