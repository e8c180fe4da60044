//! Explanation prompts (spec §3.7): "will the user like this item, and why", asked about the
//! target model's positive and negative item for a user.
//!
//! Rows come from the top files: SASRec valid walks `test_top.txt` from the top, SASRec train
//! walks `train_top.txt` keeping the lines whose item is the user's second-to-last one; MF takes
//! both from `test_top.txt` (valid: line index % 6 == 3, train: % 6 < 3). Each row gives a
//! positive record (label "Yes") then a negative one ("No"); generation stops once the requested
//! number of records is reached. The same rows are rendered in every mode so that explainers
//! can be compared case by case, and in behaviour form for an external LLM (ChatGPT in the paper).

use super::record::ExplainRecord;
use super::render::{Renderer, history_before};
use super::tasks::{MF_LINES_PER_USER, Split, TopFile, TopInputs};
use super::templates::fill;
use super::{Mode, Templates};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::recommender::top_file::TopLine;

/// The top-file lines an explanation split draws from, in order, with their file and line number.
pub fn explain_lines<'t>(
    ds: &Dataset,
    tops: &'t TopInputs,
    split: Split,
) -> Vec<(&'t TopFile, usize, &'t TopLine)> {
    let numbered = |f: &'t TopFile| f.lines.iter().enumerate().map(move |(n, l)| (f, n, l));
    match (tops, split) {
        (TopInputs::Sasrec { test, .. }, Split::Valid) => numbered(test).collect(),
        (TopInputs::Sasrec { train, .. }, Split::Train) => numbered(train)
            .filter(|(_, _, l)| is_second_to_last(ds, l))
            .collect(),
        (TopInputs::Mf { test }, Split::Valid) => numbered(test)
            .filter(|(_, n, _)| n % MF_LINES_PER_USER == 3)
            .collect(),
        (TopInputs::Mf { test }, Split::Train) => numbered(test)
            .filter(|(_, n, _)| n % MF_LINES_PER_USER < 3)
            .collect(),
    }
}

/// Whether the line's item is its user's second-to-last item (one line per user in train_top).
fn is_second_to_last(ds: &Dataset, l: &TopLine) -> bool {
    let seq = ds
        .sequences
        .get(l.uid as usize)
        .map_or(&[][..], Vec::as_slice);
    seq.len() >= 2 && seq[seq.len() - 2] == l.iid
}

/// Explanation records for `lines` in `mode`, at least `max_records` of them if the lines allow
/// (a pair is never split, so an odd limit yields one more).
pub fn explain_records(
    renderer: &Renderer<'_>,
    templates: &Templates,
    max_hist_len: usize,
    lines: &[(&TopFile, usize, &TopLine)],
    max_records: usize,
) -> Result<Vec<ExplainRecord>> {
    let ds = renderer.ds;
    let mut out = Vec::new();
    for &(file, n, line) in lines {
        if out.len() >= max_records {
            break;
        }
        let seq = ds
            .sequences
            .get(line.uid as usize)
            .map_or(&[][..], Vec::as_slice);
        let history = history_before(seq, line.iid, max_hist_len).ok_or_else(|| {
            Error::bad_input(
                &file.path,
                n + 1,
                format!("item {} is not in user {}'s sequence", line.iid, line.uid),
            )
        })?;
        for (target, label, score) in [
            (line.pos, "Yes", line.pos_score),
            (line.neg, "No", line.neg_score),
        ] {
            let slots = vec![renderer.user(history), renderer.item(target)];
            out.push(ExplainRecord {
                mode: renderer.mode,
                question: fill(&templates.explain, &slots),
                slots,
                uid: line.uid,
                iid: i64::from(line.iid),
                target,
                label: label.to_string(),
                score,
                history: history.to_vec(),
                history_titles: renderer.title_list(history),
                target_title: renderer.title(target).to_string(),
                item_tokens: renderer.item_tokens(&[target]),
            });
        }
    }
    Ok(out)
}

/// The rows of the external-LLM CSV: uid, iid, target, label, behaviour-form question.
pub fn external_rows(records: &[ExplainRecord]) -> impl Iterator<Item = Vec<String>> + '_ {
    records.iter().map(|r| {
        debug_assert!(matches!(r.mode, Mode::Behaviour | Mode::None));
        vec![
            r.uid.to_string(),
            r.iid.to_string(),
            r.target.to_string(),
            r.label.clone(),
            r.question.clone(),
        ]
    })
}

/// Header of the external-LLM CSV.
pub const EXTERNAL_HEADER: [&str; 5] = ["uid", "iid", "target", "label", "question"];
