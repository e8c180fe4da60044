//! The paper's side of a report: its published numbers (`data/paper/published.csv`, copied from
//! the paper via the spec's §8), which of our metrics fill its Tables 1–3 (laid out in
//! `headline`), and the alignment-data counts beside its Table B2.
//!
//! Our groups map to the paper's rows by alignment mode: behaviour → RecExplainer-B, intention →
//! RecExplainer-I, both → RecExplainer-H, none → Vicuna-7B (the unaligned backbone).

use super::group::Group;
use super::table::Table;
use super::{PARAM_MODE, ReportOptions, Section};
use crate::{Error, Result};

const PUBLISHED_CSV: &str = include_str!("../../data/paper/published.csv");
const PUBLISHED_PATH: &str = "data/paper/published.csv";

/// One of our metrics shown beside one published column.
#[derive(Debug, Clone, PartialEq)]
pub struct PaperColumn {
    /// Column heading, e.g. "T1 H@5".
    pub label: String,
    /// Metric name in `data/paper/published.csv`.
    pub paper_metric: String,
    /// Our metric name in [`super::RunData::metrics`].
    pub our_metric: String,
}

impl PaperColumn {
    fn new(label: &str, paper_metric: &str, our_metric: &str) -> Self {
        PaperColumn {
            label: label.into(),
            paper_metric: paper_metric.into(),
            our_metric: our_metric.into(),
        }
    }
}

/// Which of our metrics fill the paper's tables.
#[derive(Debug, Clone, PartialEq)]
pub struct PaperKeys {
    pub table1: Vec<PaperColumn>,
    pub table2: PaperColumn,
    pub table3: PaperColumn,
}

impl Default for PaperKeys {
    fn default() -> Self {
        PaperKeys {
            table1: vec![
                PaperColumn::new("T1 H@5", "t1_hr5", "eval.uid2next.hit@5"),
                PaperColumn::new("T1 N@5", "t1_ndcg5", "eval.uid2next.ndcg@5"),
                PaperColumn::new("T2 N@5", "t2_ndcg5", "eval.uidiid2rank.ndcg@5"),
                PaperColumn::new("T3 ACC", "t3_acc", "eval.uidiid2binary.acc"),
                PaperColumn::new("T6 HCR", "t6_hcr", "eval.uid2hist.hcr"),
            ],
            table2: PaperColumn::new("GPT-4 rating (0–3)", "rating_mean", "judge.rating_mean"),
            table3: PaperColumn::new("MSE ↓", "predictor_mse", "discriminator.predictor_mse"),
        }
    }
}

/// One published number.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedValue {
    pub table: String,
    pub dataset: String,
    pub method: String,
    pub metric: String,
    pub value: f64,
}

/// The paper's published numbers (embedded from `data/paper/published.csv`).
pub fn published_values() -> Result<Vec<PublishedValue>> {
    let mut out = Vec::new();
    let mut header_seen = false;
    for (i, line) in PUBLISHED_CSV.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if !header_seen {
            header_seen = true;
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let [table, dataset, method, metric, value] = f[..] else {
            return Err(Error::bad_input(PUBLISHED_PATH, i + 1, "expected 5 fields"));
        };
        let value = value.parse().map_err(|_| {
            Error::bad_input(PUBLISHED_PATH, i + 1, format!("{value:?} is not a number"))
        })?;
        out.push(PublishedValue {
            table: table.into(),
            dataset: dataset.into(),
            method: method.into(),
            metric: metric.into(),
            value,
        });
    }
    Ok(out)
}

/// The paper's row name for a group, from its alignment mode.
pub(crate) fn paper_method(group: &Group) -> Option<&'static str> {
    match group.param(PARAM_MODE)? {
        "behaviour" => Some("RecExplainer-B"),
        "intention" => Some("RecExplainer-I"),
        "both" => Some("RecExplainer-H"),
        "none" => Some("Vicuna-7B"),
        _ => None,
    }
}

/// The store metric (`alignment-data.count.<type>.<split>`) of each Table B2 row, by the
/// paper's row name. Task 4 sums the item tasks; `uid2summary` is left out, as in the paper.
fn table_b2_rows() -> Vec<(&'static str, Vec<&'static str>)> {
    use crate::alignment::Task;
    let item_tasks = Task::ALL
        .iter()
        .filter(|t| t.paper_task() == 4)
        .map(|t| t.as_str())
        .collect();
    vec![
        ("1 next item", vec!["uid2next"]),
        ("2 ranking", vec!["uidiid2rank"]),
        ("3 interest cls", vec!["uidiid2binary"]),
        ("4 item discrimination", item_tasks),
        ("5 ShareGPT", vec!["sharegpt"]),
        ("6 history", vec!["uid2hist"]),
        ("Total", vec!["total"]),
    ]
}

/// Alignment-data records per task beside the paper's Table B2 for `opts.paper_dataset`: one
/// row per paper task, our train/valid counts per group (mean over seeds) and the paper's
/// train/test counts, so a thin task shows at a glance. `None` when no run has the counts.
pub(crate) fn table_b2_section(groups: &[Group], opts: &ReportOptions) -> Result<Option<Section>> {
    let count = |g: &Group, types: &[&str], split: &str| -> Option<f64> {
        let values: Vec<f64> = types
            .iter()
            .filter_map(|t| {
                let key = format!("alignment-data.count.{t}.{split}");
                g.summaries.get(&key).map(|s| s.mean)
            })
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    };
    let has_counts = |g: &Group| count(g, &["total"], "train").is_some();
    let shown: Vec<&Group> = groups.iter().filter(|g| has_counts(g)).collect();
    if shown.is_empty() {
        return Ok(None);
    }
    let ds = opts.paper_dataset.as_str();
    let published = published_values()?;
    let paper = |task: &str, split: &str| {
        published
            .iter()
            .find(|p| {
                p.table == "tableB2" && p.dataset == ds && p.method == task && p.metric == split
            })
            .map_or("–".to_string(), |p| thousands(p.value))
    };
    let mut header = vec!["Task".to_string()];
    for g in &shown {
        let name = if shown.len() == 1 {
            "ours"
        } else {
            g.label.as_str()
        };
        header.push(format!("Train ({name})"));
        header.push(format!("Valid ({name})"));
    }
    header.extend(["Train (paper)".to_string(), "Test (paper)".to_string()]);
    let caption = format!(
        "Alignment records per task against the paper's Table B2 ({ds}); ours: mean over seeds."
    );
    let mut table = Table::new("table_b2", caption, header);
    for (task, types) in table_b2_rows() {
        let mut cells = vec![task.to_string()];
        for g in &shown {
            for split in ["train", "valid"] {
                cells.push(count(g, &types, split).map_or("0".into(), thousands));
            }
        }
        cells.push(paper(task, "train"));
        cells.push(paper(task, "test"));
        table.rows.push(cells);
    }
    Ok(Some(Section {
        title: "Alignment data against the paper's Table B2".into(),
        text: vec![format!(
            "Records per task as the alignment-data stage wrote them. The paper's counts are for \
             its {ds} set with a SASRec target and 10,000 / 1,000 ShareGPT conversations; task 4 \
             depends on the metadata a source carries (titles only give fewer item tasks)."
        )],
        tables: vec![table],
        figures: Vec::new(),
    }))
}

/// A count with thousands separators.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Who rated our explanations, from the judge settings of the groups with ratings: the model
/// and where it was served (an OpenAI-compatible URL such as `recx serve`'s, an Azure
/// deployment, or the OpenAI API).
pub(crate) fn judge_label(groups: &[Group]) -> Option<String> {
    let labels: std::collections::BTreeSet<String> = groups
        .iter()
        .filter(|g| g.summaries.contains_key("judge.rating_mean"))
        .filter_map(|g| {
            let model = g.param("judge.model")?;
            Some(
                match (g.param("judge.azure.deployment"), g.param("judge.base_url")) {
                    (Some(dep), _) => format!("{model} (Azure deployment {dep})"),
                    (None, Some(url)) if !url.is_empty() => format!("{model} at {url}"),
                    _ => format!("{model} (OpenAI API)"),
                },
            )
        })
        .collect();
    (!labels.is_empty()).then(|| labels.into_iter().collect::<Vec<_>>().join(" / "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_numbers_load() {
        let v = published_values().unwrap();
        let h = v
            .iter()
            .find(|p| {
                p.table == "table1"
                    && p.dataset == "games"
                    && p.method == "RecExplainer-H"
                    && p.metric == "t1_hr5"
            })
            .unwrap();
        assert_eq!(h.value, 0.8057);
        assert_eq!(v.iter().filter(|p| p.table == "table3").count(), 9);
        // Table 1: 27 rows × 5 metrics minus the N/A cells.
        assert_eq!(v.iter().filter(|p| p.table == "table1").count(), 111);
        // Table B2 for Games: six tasks and the total, train and test; it adds up.
        let b2 = |m: &str, s: &str| {
            v.iter()
                .find(|p| {
                    p.table == "tableB2" && p.dataset == "games" && p.method == m && p.metric == s
                })
                .unwrap()
                .value
        };
        let tasks: f64 = table_b2_rows()[..6]
            .iter()
            .map(|(t, _)| b2(t, "train"))
            .sum();
        assert_eq!(tasks, b2("Total", "train"));
        assert_eq!(thousands(102_490.0), "102,490");
        assert_eq!(thousands(0.0), "0");
    }
}
