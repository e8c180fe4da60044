//! The `train_top.txt` / `test_top.txt` line format of RecExplainer's `data4Exp.py` (spec §1.6),
//! shared by the recommender stage (writer) and the alignment-data stage (reader).

use std::fmt::Write as _;
use std::io::BufRead;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// One line: the target model's view of user `uid` just before interaction `iid`.
#[derive(Debug, Clone, PartialEq)]
pub struct TopLine {
    pub uid: u32,
    /// The target interaction; the user state is the history before its first occurrence.
    pub iid: u32,
    /// The item ranked `i`-th for the i-th line of this pair (top-1 for SASRec).
    pub top: u32,
    /// Five sampled non-history items in the model's rank order (best first).
    pub candidates: [u32; 5],
    /// An item from the top 20 % of scores.
    pub pos: u32,
    /// An item from the bottom 50 % of scores (history excluded).
    pub neg: u32,
    pub pos_score: f32,
    pub neg_score: f32,
}

impl TopLine {
    /// Renders the 8 tab-separated fields, without the newline.
    pub fn to_line(&self) -> String {
        let mut s = String::new();
        let c = &self.candidates;
        write!(
            s,
            "{}\t{}\t{}\t{},{},{},{},{}\t{}\t{}\t{}\t{}",
            self.uid,
            self.iid,
            self.top,
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            self.pos,
            self.neg,
            self.pos_score,
            self.neg_score
        )
        .expect("writing to a String cannot fail");
        s
    }

    /// Parses one line; the error says which field is wrong.
    pub fn parse(line: &str) -> std::result::Result<Self, String> {
        let fields: Vec<&str> = line.trim_end_matches(['\n', '\r']).split('\t').collect();
        if fields.len() != 8 {
            return Err(format!(
                "expected 8 tab-separated fields, found {}",
                fields.len()
            ));
        }
        let id = |i: usize, name: &str| {
            fields[i].trim().parse::<u32>().map_err(|_| {
                format!(
                    "field {} ({name}) is not an item/user id: {:?}",
                    i + 1,
                    fields[i]
                )
            })
        };
        let score = |i: usize, name: &str| {
            fields[i]
                .trim()
                .parse::<f32>()
                .map_err(|_| format!("field {} ({name}) is not a number: {:?}", i + 1, fields[i]))
        };
        let cands: Vec<u32> = fields[3]
            .split(',')
            .map(|c| c.trim().parse::<u32>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format!("field 4 (candidates) is not a list of ids: {:?}", fields[3]))?;
        let candidates: [u32; 5] = cands.try_into().map_err(|v: Vec<u32>| {
            format!("field 4 (candidates) has {} ids, expected 5", v.len())
        })?;
        Ok(TopLine {
            uid: id(0, "uid")?,
            iid: id(1, "iid")?,
            top: id(2, "top item")?,
            candidates,
            pos: id(4, "positive item")?,
            neg: id(5, "negative item")?,
            pos_score: score(6, "positive score")?,
            neg_score: score(7, "negative score")?,
        })
    }
}

/// Reads a whole top file; a malformed line fails with file:line.
pub fn read_top_file(path: &Path) -> Result<Vec<TopLine>> {
    let file = std::fs::File::open(path).at(path)?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.at(path)?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(TopLine::parse(&line).map_err(|reason| Error::bad_input(path, n + 1, reason))?);
    }
    Ok(out)
}

/// Writes a top file, one line per record.
pub fn write_top_file(path: &Path, lines: &[TopLine]) -> Result<()> {
    let mut text = String::with_capacity(lines.len() * 48);
    for l in lines {
        text.push_str(&l.to_line());
        text.push('\n');
    }
    std::fs::write(path, text).at(path)
}

/// How concentrated the target's top-1 items are over a top file's user states: the number of
/// distinct top-1 items and the share of states whose top-1 is the most frequent one. A target
/// that puts one item first for most users makes `uid2next` a constant answer, and an aligned
/// model that learns only that answer looks good on HR@5 while explaining nothing.
///
/// `times` is the number of lines per state (1 for SASRec; MF writes its top 6, the first is
/// its top-1).
pub fn top1_concentration(lines: &[TopLine], times: usize) -> (usize, f64) {
    let mut counts: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    let states = lines.chunks(times.max(1)).map(|rank| rank[0].top);
    let mut n = 0;
    for top in states {
        *counts.entry(top).or_default() += 1;
        n += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    (counts.len(), most as f64 / n.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_line() {
        let l = TopLine {
            uid: 3,
            iid: 17,
            top: 5,
            candidates: [9, 2, 44, 8, 1],
            pos: 12,
            neg: 900,
            pos_score: 3.25,
            neg_score: -1.5,
        };
        assert_eq!(l.to_line(), "3\t17\t5\t9,2,44,8,1\t12\t900\t3.25\t-1.5");
        assert_eq!(TopLine::parse(&l.to_line()).unwrap(), l);
    }

    #[test]
    fn names_the_bad_field() {
        let err = TopLine::parse("3\t17\tx\t9,2,44,8,1\t12\t900\t3.25\t-1.5").unwrap_err();
        assert!(err.contains("field 3"), "{err}");
        let err = TopLine::parse("3\t17\t5\t9,2\t12\t900\t3.25\t-1.5").unwrap_err();
        assert!(err.contains("has 2 ids"), "{err}");
    }

    #[test]
    fn top1_concentration_counts_distinct_items_and_the_largest_share() {
        let line = |uid: u32, top: u32| TopLine {
            uid,
            iid: 1,
            top,
            candidates: [1, 2, 3, 4, 5],
            pos: 1,
            neg: 2,
            pos_score: 0.5,
            neg_score: 0.1,
        };
        let lines = [line(1, 7), line(2, 7), line(3, 9), line(4, 7)];
        assert_eq!(top1_concentration(&lines, 1), (2, 0.75));
        // Two lines per state: only each state's first line is its top-1.
        assert_eq!(top1_concentration(&lines, 2), (2, 0.5));
        assert_eq!(top1_concentration(&[], 1), (0, 0.0));
    }
}
