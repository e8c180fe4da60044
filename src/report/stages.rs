//! One section per pipeline stage after the headline: the stage's metrics (one row per metric,
//! one column per group, so a wide experiment never pushes numbers off-screen) and its figures,
//! one per comparable family: the [0, 1] metrics as bars, each training curve, the judge's
//! rating distribution, the discriminator's confusion matrices, the task ablation.
//!
//! Bookkeeping (record and sample counts, data-filter steps, parameter counts, a baseline row's
//! position) is left out of these sections; the report's last tables carry every number.

use std::path::Path;

use super::Section;
use super::figures::{self, BarSeries, Raters};
use super::group::{Group, fmt_summary, result_metrics};
use super::table::Table;
use crate::Result;

/// The stages with a section, in pipeline order: metric prefix, title, what the numbers are.
const STAGES: [(&str, &str, &str); 7] = [
    (
        "recommender",
        "Target recommender",
        "The target model's ranking metrics on its test users (popularity.* ranks by item \
         popularity instead), top1.* how concentrated its top-1 recommendations are, and its \
         training curves.",
    ),
    (
        "train",
        "Alignment training",
        "The LLM's loss on the held-out alignment records at the best epoch, and its training \
         curves.",
    ),
    (
        "eval",
        "Alignment metrics, every task",
        "Every metric of the aligned model on the validation records, per task.",
    ),
    (
        "explain",
        "Explanations",
        "The explanations the aligned model wrote: how many, their length, and how often the \
         stated decision agrees with the target recommender.",
    ),
    (
        "judge",
        "LLM judge",
        "Ratings of the explanations (0–3, paper Table 2 and Fig. 3).",
    ),
    (
        "human",
        "Human ratings",
        "People's ratings of the explanations on the judge's scale (0–3, paper Fig. 3), read \
         back with `recx import-ratings` from the annotation sheet written beside this report; \
         `annotators` counts who rated.",
    ),
    (
        "discriminator",
        "Distinction classifier and score predictor",
        "Paper Table 3 and Fig. 4: which explainer wrote an explanation, and how well a predictor \
         recovers the judge's rating from it.",
    ),
];

/// Whether a metric is bookkeeping rather than a result (see the module doc). `name` has its
/// stage prefix.
pub(crate) fn is_bookkeeping(name: &str) -> bool {
    let (stage, rest) = name.split_once('.').unwrap_or(("", name));
    let last = rest.rsplit('.').next().unwrap_or(rest);
    matches!(stage, "data" | "alignment-data")
        || matches!(
            last,
            "records"
                | "row"
                | "epochs"
                | "best_epoch"
                | "distinct"
                | "rated"
                | "annotators"
                | "errors"
                | "explanations"
                | "train_samples"
                | "valid_samples"
                | "dropped_samples"
                | "trainable_params"
                | "total_params"
        )
        || rest.starts_with("rating_count.")
        || rest.starts_with("count.")
}

/// The sections of every stage that has results in some group.
pub(crate) fn stage_sections(groups: &[Group], figures_dir: &Path) -> Result<Vec<Section>> {
    let metrics = result_metrics(groups);
    let curves = figures::series_names(groups);
    let mut sections = Vec::new();
    for (stage, title, text) in STAGES {
        let prefix = format!("{stage}.");
        let mut mine: Vec<&String> = metrics
            .iter()
            .filter(|m| m.starts_with(&prefix) && !is_bookkeeping(m))
            .collect();
        mine.sort_by_key(|m| cutoff_order(m));
        let my_curves: Vec<String> = curves
            .iter()
            .filter(|c| c.starts_with(&prefix))
            .cloned()
            .collect();
        let mut figs = Vec::new();
        let unit: Vec<&String> = mine
            .iter()
            .copied()
            .filter(|m| figures::is_unit_metric(groups, m))
            .collect();
        for (family, members) in bar_families(&unit, &prefix) {
            let categories: Vec<String> = members
                .iter()
                .map(|m| m[prefix.len()..].to_string())
                .collect();
            let series: Vec<BarSeries<'_>> = figures::full_task_groups(groups)
                .into_iter()
                .map(|g| {
                    let cells = members.iter().map(|m| g.summaries.get(*m)).collect();
                    (g.label.clone(), cells)
                })
                .collect();
            let (id, what) = match &family {
                None => (format!("{stage}_bars"), "metrics in [0, 1]".to_string()),
                Some(f) => (format!("{stage}_{f}"), f.clone()),
            };
            figs.extend(figures::bars(
                figures_dir,
                &id,
                &format!("{title}: {what}"),
                &format!(
                    "{title}: {what}, by group (groups that ran every alignment task; the task \
                     ablation has its own figures)."
                ),
                &categories,
                &series,
            )?);
        }
        figs.extend(figures::curves(groups, &my_curves, figures_dir)?);
        if figures::has_ablation(groups) {
            let names: Vec<String> = mine.iter().map(|m| m.to_string()).collect();
            figs.extend(figures::ablation(groups, &names, figures_dir)?);
        }
        match stage {
            "judge" => figs.extend(figures::ratings(groups, Raters::Judge, figures_dir)?),
            "human" => figs.extend(figures::ratings(groups, Raters::Human, figures_dir)?),
            "discriminator" => figs.extend(figures::confusions(groups, figures_dir)?),
            _ => {}
        }
        if mine.is_empty() && figs.is_empty() {
            continue;
        }
        let mut tables = Vec::new();
        if !mine.is_empty() {
            tables.push(metric_table(groups, stage, title, &prefix, &mine));
        }
        sections.push(Section {
            title: title.to_string(),
            text: vec![text.to_string()],
            tables,
            figures: figs,
        });
    }
    Ok(sections)
}

/// Most bars' categories in one figure before a stage's [0, 1] metrics are split by kind.
const MAX_CATEGORIES: usize = 8;

/// Sort key that puts cutoffs in numeric order (`hr@5` before `hr@10`).
fn cutoff_order(name: &str) -> (&str, u64) {
    name.rsplit_once('@')
        .and_then(|(head, k)| Some((head, k.parse().ok()?)))
        .unwrap_or((name, 0))
}

/// A metric's kind: its last segment without the cutoff (`popularity.hr@10` → `hr`).
fn metric_kind(name: &str) -> &str {
    let last = name.rsplit('.').next().unwrap_or(name);
    last.split('@').next().unwrap_or(last)
}

/// The bar figures of a stage: all its [0, 1] metrics in one (family `None`) when they fit,
/// else one figure per kind of metric (every `hr@k` together, every `ndcg@k`, ...).
fn bar_families<'a>(unit: &[&'a String], prefix: &str) -> Vec<(Option<String>, Vec<&'a String>)> {
    if unit.is_empty() {
        return Vec::new();
    }
    if unit.len() <= MAX_CATEGORIES {
        return vec![(None, unit.to_vec())];
    }
    let mut kinds: std::collections::BTreeMap<String, Vec<&String>> = Default::default();
    for m in unit {
        kinds
            .entry(metric_kind(&m[prefix.len()..]).to_string())
            .or_default()
            .push(*m);
    }
    kinds.into_iter().map(|(k, ms)| (Some(k), ms)).collect()
}

/// A stage's metrics: a row per metric (stage prefix dropped), a column per group.
fn metric_table(
    groups: &[Group],
    stage: &str,
    title: &str,
    prefix: &str,
    metrics: &[&String],
) -> Table {
    let mut header = vec!["metric".to_string()];
    header.extend(groups.iter().map(|g| g.label.clone()));
    let mut table = Table::new(
        &format!("stage_{stage}"),
        format!("{title}: mean ± std over seeds."),
        header,
    );
    for m in metrics {
        let mut row = vec![m[prefix.len()..].to_string()];
        row.extend(
            groups
                .iter()
                .map(|g| g.summaries.get(*m).map_or("–".into(), fmt_summary)),
        );
        table.rows.push(row);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_metrics_split_into_one_figure_per_kind() {
        let names: Vec<String> = ["hr@5", "hr@10", "ndcg@5", "ndcg@10", "popularity.hr@5"]
            .iter()
            .chain(&[
                "popularity.hr@10",
                "popularity.ndcg@5",
                "popularity.ndcg@10",
            ])
            .chain(&["top1.test.max_share"])
            .map(|m| format!("recommender.{m}"))
            .collect();
        let refs: Vec<&String> = names.iter().collect();
        let families = bar_families(&refs, "recommender.");
        let kinds: Vec<Option<&str>> = families.iter().map(|(k, _)| k.as_deref()).collect();
        assert_eq!(kinds, [Some("hr"), Some("max_share"), Some("ndcg")]);
        assert_eq!(families[0].1.len(), 4);
        assert_eq!(
            bar_families(&refs[..8], "recommender.").len(),
            1,
            "eight fit in one"
        );
    }

    #[test]
    fn counts_are_bookkeeping_results_are_not() {
        for name in [
            "data.step.0.users",
            "alignment-data.count.total.train",
            "eval.uid2next.records",
            "baselines.Random.row",
            "train.trainable_params",
            "judge.rating_count.3",
            "recommender.top1.valid.distinct",
        ] {
            assert!(is_bookkeeping(name), "{name}");
        }
        for name in [
            "eval.uid2next.hit@5",
            "recommender.ndcg@10",
            "recommender.top1.valid.max_share",
            "train.valid_loss",
            "judge.rating_mean",
            "explain.decision_acc",
        ] {
            assert!(!is_bookkeeping(name), "{name}");
        }
    }
}
