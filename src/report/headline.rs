//! The report's first section: the paper's Tables 1–3 over the groups, Table 1 with the baseline
//! rows the runs measured (Random, Popularity, the unaligned backbone, ...), markers for
//! significant differences, and Table 1's metrics as one bar figure. This is what an experiment
//! is for, so it leads the page; in paper mode the published numbers stand beside ours.
//!
//! Rows: baselines first (in the paper's order, the `baselines.<label>.row` measurement), then one
//! row per group. Tables 2 and 3 list the other explainers of the explanation stage (the
//! unaligned backbone, the external LLM) where Table 1 lists baselines. A baseline row is shown once when every group that measured it got the same
//! values on every seed (the usual case: the rows do not depend on the alignment mode), else once
//! per group. Markers: Welch's t-test across seeds, Holm-corrected over each table's family;
//! on a group row against the baseline group, on a baseline cell (when the report has one group)
//! of the group against that baseline.

use std::collections::BTreeMap;
use std::path::Path;

use super::figures::{self, BarSeries};
use super::group::{Group, Summary, baseline_index, fmt_num, fmt_summary, seed_test};
use super::paper::{PaperColumn, judge_label, paper_method, published_values};
use super::table::Table;
use super::table1::{BASELINES, PARAM_RANK_DECODING, aligned_label, rank_decoding_note};
use super::{PARAM_TASKS, ReportOptions, Section};
use crate::{Error, Result, stats};

/// The paper's row for each baseline row index (`baselines::Row` order).
const PAPER_BASELINES: [&str; 6] = [
    "Random",
    "Popularity",
    "Vicuna-7B",
    "Vicuna-7B-ICL",
    "GPT4-ICL",
    "SASRec (distilled)",
];

/// The explainers besides the aligned model, as the explanation stage suffixes their metrics
/// (`judge.rating_mean.unaligned`, `discriminator.predictor_mse.external`): the row name and
/// the paper's row beside it in Tables 2 and 3.
const EXPLAINER_ROWS: [(&str, &str, &str); 2] = [
    ("unaligned", "unaligned backbone", "Vicuna-7B"),
    ("external", "external LLM", "ChatGPT"),
];

/// One row of a headline table.
struct Row<'a> {
    name: String,
    /// The paper's method whose published numbers belong beside this row.
    paper: Option<String>,
    /// The group the row's numbers come from (markers and figures).
    group: usize,
    /// Baseline label, `None` for a group's own row.
    baseline: Option<String>,
    cells: Vec<Option<&'a Summary>>,
}

/// A baseline row's metric for one of our eval metrics (`eval.x.y` → `baselines.<label>.x.y`).
fn baseline_metric(label: &str, our_metric: &str) -> Option<String> {
    let rest = our_metric.strip_prefix("eval.")?;
    Some(format!("{BASELINES}.{label}.{rest}"))
}

/// The baseline rows of Table 1 over all groups, deduplicated as the module doc says.
fn baseline_rows<'a>(groups: &'a [Group], columns: &[PaperColumn]) -> Vec<Row<'a>> {
    // label → (row index, groups that measured it)
    let mut labels: BTreeMap<String, (f64, Vec<usize>)> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        for (name, s) in &g.summaries {
            let Some(label) = name
                .strip_prefix(BASELINES)
                .and_then(|n| n.strip_prefix('.'))
                .and_then(|n| n.strip_suffix(".row"))
            else {
                continue;
            };
            let e = labels.entry(label.to_string()).or_insert((s.mean, vec![]));
            e.1.push(i);
        }
    }
    let mut ordered: Vec<(String, (f64, Vec<usize>))> = labels.into_iter().collect();
    ordered.sort_by(|a, b| a.1.0.total_cmp(&b.1.0).then(a.0.cmp(&b.0)));
    let cells = |g: &'a Group, label: &str| -> Vec<Option<&'a Summary>> {
        columns
            .iter()
            .map(|c| baseline_metric(label, &c.our_metric).and_then(|m| g.summaries.get(&m)))
            .collect()
    };
    let mut rows = Vec::new();
    for (label, (order, members)) in ordered {
        let paper = PAPER_BASELINES
            .get(order as usize)
            .map(|p| p.to_string())
            .filter(|_| order >= 0.0);
        let first = cells(&groups[members[0]], &label);
        let same =
            |s: Option<&Summary>, t: Option<&Summary>| s.map(|s| &s.values) == t.map(|t| &t.values);
        let shared = members.iter().all(|&i| {
            cells(&groups[i], &label)
                .iter()
                .zip(&first)
                .all(|(a, b)| same(*a, *b))
        });
        let measured = |c: &[Option<&Summary>]| c.iter().any(Option::is_some);
        if shared {
            if measured(&first) {
                rows.push(Row {
                    name: label.clone(),
                    paper,
                    group: members[0],
                    baseline: Some(label),
                    cells: first,
                });
            }
            continue;
        }
        for i in members {
            let c = cells(&groups[i], &label);
            if measured(&c) {
                rows.push(Row {
                    name: format!("{label} [{}]", groups[i].label),
                    paper: paper.clone(),
                    group: i,
                    baseline: Some(label.clone()),
                    cells: c,
                });
            }
        }
    }
    rows
}

/// Tables 2 and 3's rows for the other explainers of each group (one row per group that
/// measured them, named with the group when there are several); markers compare the group's
/// aligned model with them, as on a baseline row.
fn explainer_rows<'a>(groups: &'a [Group], columns: &[PaperColumn]) -> Vec<Row<'a>> {
    let mut rows = Vec::new();
    for (suffix, name, paper) in EXPLAINER_ROWS {
        for (i, g) in groups.iter().enumerate() {
            let cells: Vec<Option<&Summary>> = columns
                .iter()
                .map(|c| g.summaries.get(&format!("{}.{suffix}", c.our_metric)))
                .collect();
            if cells.iter().any(Option::is_some) {
                let name = if groups.len() > 1 {
                    format!("{name} [{}]", g.label)
                } else {
                    name.to_string()
                };
                rows.push(Row {
                    name,
                    paper: Some(paper.to_string()),
                    group: i,
                    baseline: Some(suffix.to_string()),
                    cells,
                });
            }
        }
    }
    rows
}

/// Row names of the groups. Paper mode uses the paper's methods (behaviour → RecExplainer-B,
/// ...); otherwise the mode in words. When several groups share a name, the one that ran every
/// task (if exactly one did) keeps it and the others get their group label added.
fn group_names(groups: &[Group], paper: bool) -> Vec<String> {
    let base = |g: &Group| -> String {
        let rank_decoding = g.param(PARAM_RANK_DECODING);
        if paper {
            let name = paper_method(g).map_or_else(|| g.label.clone(), str::to_string);
            format!("{name}{}", rank_decoding_note(rank_decoding))
        } else {
            aligned_label(g.param(super::PARAM_MODE), rank_decoding)
        }
    };
    let full = |g: &Group| matches!(g.param(PARAM_TASKS), None | Some("") | Some("[]"));
    let mut count: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for g in groups {
        let e = count.entry(base(g)).or_default();
        e.0 += 1;
        e.1 += usize::from(full(g));
    }
    groups
        .iter()
        .map(|g| {
            let name = base(g);
            let (n, n_full) = count[&name];
            if n == 1 || (n_full == 1 && full(g)) || name == g.label {
                name
            } else {
                format!("{name} [{}]", g.label)
            }
        })
        .collect()
}

/// The groups' own rows of a table.
fn group_rows<'a>(groups: &'a [Group], columns: &[PaperColumn], paper: bool) -> Vec<Row<'a>> {
    group_names(groups, paper)
        .into_iter()
        .enumerate()
        .map(|(i, name)| Row {
            name,
            paper: paper_method(&groups[i]).map(str::to_string),
            group: i,
            baseline: None,
            cells: columns
                .iter()
                .map(|c| groups[i].summaries.get(&c.our_metric))
                .collect(),
        })
        .collect()
}

/// Holm-adjusted p-values (and the sign of group − other) per (row, column), as the module doc
/// says.
fn markers(
    rows: &[Row<'_>],
    groups: &[Group],
    columns: &[PaperColumn],
    base: Option<usize>,
) -> BTreeMap<(usize, usize), (f64, f64)> {
    let mut raw: Vec<((usize, usize), f64, f64)> = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        // The group whose numbers are compared with this row's.
        let (ours, theirs): (usize, Option<usize>) = match (&row.baseline, base) {
            (None, Some(b)) if row.group != b => (row.group, Some(b)),
            (Some(_), _) if groups.len() == 1 => (0, None),
            _ => continue,
        };
        for (j, c) in columns.iter().enumerate() {
            let Some(mine) = groups[ours].summaries.get(&c.our_metric) else {
                continue;
            };
            let other = match theirs {
                Some(b) => groups[b].summaries.get(&c.our_metric),
                None => row.cells[j],
            };
            if let Some(t) = other.and_then(|o| seed_test(mine, o).map(|t| (t, o))) {
                raw.push(((r, j), t.0.welch_p, mine.mean - t.1.mean));
            }
        }
    }
    let adjusted = stats::holm(&raw.iter().map(|r| r.1).collect::<Vec<_>>());
    raw.into_iter()
        .zip(adjusted)
        .map(|((at, _, delta), p)| (at, (p, delta)))
        .collect()
}

/// A cell: mean ± std with its marker (`+`/`−` on baseline cells: the group higher / lower).
fn cell(summary: Option<&Summary>, marker: Option<&(f64, f64)>, on_baseline: bool) -> String {
    let Some(s) = summary else {
        return "–".into();
    };
    let mark = marker.map_or(String::new(), |&(p, delta)| {
        let stars = stats::stars(p);
        match (stars.is_empty(), on_baseline) {
            (true, _) => String::new(),
            (false, false) => stars.to_string(),
            (false, true) => format!(" {}{stars}", if delta > 0.0 { "+" } else { "−" }),
        }
    });
    format!("{}{mark}", fmt_summary(s))
}

/// One of the paper's tables (id `table1`, `table2`, `table3`).
struct TableSpec<'a> {
    id: &'static str,
    paper_table: &'static str,
    title: &'static str,
    columns: &'a [PaperColumn],
}

/// The headline section, or `None` when no run measured any of the tables' metrics.
pub(crate) fn headline_section(
    groups: &[Group],
    opts: &ReportOptions,
    figures_dir: &Path,
    notes: &mut Vec<String>,
) -> Result<Option<Section>> {
    let published = published_values()?;
    let ds = opts.paper_dataset.as_str();
    if opts.paper && !published.iter().any(|p| p.dataset == ds) {
        return Err(Error::Config(format!(
            "paper dataset {ds:?} is not in data/paper/published.csv; use games, movies or steam"
        )));
    }
    let lookup = |table: &str, method: &str, metric: &str| {
        published
            .iter()
            .find(|p| {
                p.table == table && p.dataset == ds && p.method == method && p.metric == metric
            })
            .map(|p| p.value)
    };
    let keys = &opts.paper_keys;
    let specs = [
        TableSpec {
            id: "table1",
            paper_table: "table1",
            title: "Table 1: alignment effect",
            columns: &keys.table1,
        },
        TableSpec {
            id: "table2",
            paper_table: "table2",
            title: "Table 2: explanation quality",
            columns: std::slice::from_ref(&keys.table2),
        },
        TableSpec {
            id: "table3",
            paper_table: "table3",
            title: "Table 3: score predictor",
            columns: std::slice::from_ref(&keys.table3),
        },
    ];
    let base = baseline_index(groups, opts);
    let mut tables = Vec::new();
    let mut figures = Vec::new();
    for spec in specs {
        let mut rows = if spec.id == "table1" {
            baseline_rows(groups, spec.columns)
        } else {
            explainer_rows(groups, spec.columns)
        };
        rows.extend(group_rows(groups, spec.columns, opts.paper));
        rows.retain(|r| r.cells.iter().any(Option::is_some));
        if rows.iter().all(|r| r.baseline.is_some()) {
            if opts.paper {
                let names: Vec<&str> = spec.columns.iter().map(|c| c.our_metric.as_str()).collect();
                notes.push(format!(
                    "{}: no run has the metrics {}; table left out",
                    spec.title,
                    names.join(", ")
                ));
            }
            continue;
        }
        let marks = markers(&rows, groups, spec.columns, base);
        let judge = (spec.id == "table2").then(|| judge_label(groups)).flatten();
        let mut header = vec!["Method".to_string()];
        for c in spec.columns {
            let ours = match &judge {
                Some(j) => format!("rating by {j} (0–3)"),
                None => c.label.clone(),
            };
            if opts.paper {
                header.push(format!("{ours} (ours)"));
                header.push(format!("{} (paper)", c.label));
            } else {
                header.push(ours);
            }
        }
        let tests = match marks.len() {
            0 => "no across-seed test (it needs two seeds of a group and of what it is compared \
                  with)"
                .to_string(),
            n => format!(
                "Welch markers Holm-corrected over {n} comparisons (* p < 0.05, ** p < 0.01, \
                 *** p < 0.001)"
            ),
        };
        let caption = format!(
            "{}{}: mean ± std over seeds{}; {tests}.",
            spec.title,
            if opts.paper {
                format!(" ({ds})")
            } else {
                String::new()
            },
            if opts.paper { "; paper: published" } else { "" }
        );
        let mut table = Table::new(spec.id, caption, header);
        let our_cells = |r: usize, row: &Row<'_>| -> Vec<String> {
            (0..spec.columns.len())
                .map(|j| cell(row.cells[j], marks.get(&(r, j)), row.baseline.is_some()))
                .collect()
        };
        if opts.paper {
            // The paper's rows in its order, ours beside them; then ours without a paper row.
            let mut methods: Vec<String> = Vec::new();
            for p in published
                .iter()
                .filter(|p| p.table == spec.paper_table && p.dataset == ds)
            {
                if !methods.contains(&p.method) {
                    methods.push(p.method.clone());
                }
            }
            let mut done = vec![false; rows.len()];
            for m in &methods {
                let paper_cells: Vec<String> = spec
                    .columns
                    .iter()
                    .map(|c| {
                        lookup(spec.paper_table, m, &c.paper_metric).map_or("–".into(), fmt_num)
                    })
                    .collect();
                let mine: Vec<usize> = (0..rows.len())
                    .filter(|&r| rows[r].paper.as_deref() == Some(m.as_str()))
                    .collect();
                if mine.is_empty() {
                    let mut cells = vec![m.clone()];
                    for p in &paper_cells {
                        cells.extend(["–".to_string(), p.clone()]);
                    }
                    table.rows.push(cells);
                }
                for r in mine {
                    done[r] = true;
                    let name = if rows[r].name == *m {
                        m.clone()
                    } else {
                        format!("{} (paper: {m})", rows[r].name)
                    };
                    let mut cells = vec![name];
                    for (ours, p) in our_cells(r, &rows[r]).into_iter().zip(&paper_cells) {
                        cells.extend([ours, p.clone()]);
                    }
                    table.rows.push(cells);
                }
            }
            for (r, row) in rows.iter().enumerate().filter(|(r, _)| !done[*r]) {
                let mut cells = vec![row.name.clone()];
                for ours in our_cells(r, row) {
                    cells.extend([ours, "–".to_string()]);
                }
                table.rows.push(cells);
            }
        } else {
            for (r, row) in rows.iter().enumerate() {
                let mut cells = vec![row.name.clone()];
                cells.extend(our_cells(r, row));
                table.rows.push(cells);
            }
        }
        tables.push(table);
        if spec.id == "table1" {
            let categories: Vec<String> = spec.columns.iter().map(|c| c.label.clone()).collect();
            let series: Vec<BarSeries<'_>> = rows
                .iter()
                .map(|r| (r.name.clone(), r.cells.clone()))
                .collect();
            figures.extend(figures::bars(
                figures_dir,
                "table1_bars",
                "Table 1: baselines and aligned models",
                "Table 1's metrics for every baseline row and group.",
                &categories,
                &series,
            )?);
        }
    }
    if tables.is_empty() {
        return Ok(None);
    }
    let baseline_text = base.map_or(String::new(), |b| {
        format!(" Group rows are tested against \"{}\".", groups[b].label)
    });
    Ok(Some(Section {
        title: "Alignment metrics (paper Tables 1–3)".into(),
        text: vec![format!(
            "Baseline rows first, then each group; per-example tests against every baseline \
             follow in \"Table 1 per run\".{baseline_text}"
        )],
        tables,
        figures,
    }))
}
