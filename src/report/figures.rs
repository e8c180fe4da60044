//! Figures, drawn once for two backends: PNG (embedded in index.html) and SVG (beside it).
//!
//! Text uses the vendored DejaVu Sans (`assets/fonts/`), registered with plotters' `ab_glyph`
//! renderer, so figures look the same on every machine and need no system fonts. A figure is
//! drawn only when its data exists: per-task bars (metrics by group, error bars = bootstrap 95%
//! CI), training curves (mean over seeds, band ± std), rating distributions (stacked bars, paper
//! Fig. 3), confusion matrices (Fig. 4) and task-ablation bars (Fig. 7).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::group::{Group, result_metrics};
use super::{CONFUSION_PREFIX, EXAMPLE_RATING, Figure, PARAM_TASKS};
use crate::error::IoContext;
use crate::{Error, Result, stats};

const FONT: &str = "sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
const COLORS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];
/// Most metrics per bar chart; more are split over several figures.
const MAX_BAR_CATEGORIES: usize = 8;

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if *ok {
        Ok(())
    } else {
        Err(Error::Config(
            "the vendored font assets/fonts/DejaVuSans.ttf is invalid".into(),
        ))
    }
}

/// Something that can draw itself on any plotters backend.
trait Plot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

const SIZE: (u32, u32) = (960, 540);

/// Draws `plot` to `<dir>/<id>.svg` and `<dir>/<id>.png`; returns the PNG bytes.
fn save(plot: &impl Plot, dir: &Path, id: &str, caption: String) -> Result<Figure> {
    register_font()?;
    let fail = |e: String| Error::Config(format!("figure {id}: {e}"));
    let svg = dir.join(format!("{id}.svg"));
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        plot.draw(&root).map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let png = dir.join(format!("{id}.png"));
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        plot.draw(&root).map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let bytes = std::fs::read(&png).at(&png)?;
    Ok(Figure {
        id: id.to_string(),
        caption,
        png: bytes,
    })
}

/// Draws `labels` centred under integer x positions of a chart whose x axis is `f64`; a label
/// with several parts ("mode=both, tasks=[]") gets one line per part.
fn draw_category_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    to_px: impl Fn(f64) -> (i32, i32),
    labels: &[String],
) -> DrawResult<DB> {
    let size = if labels.len() > 5 { 13 } else { 15 };
    for (i, name) in labels.iter().enumerate() {
        let (x, y) = to_px(i as f64);
        for (k, line) in label_lines(name).iter().enumerate() {
            let style = (FONT, size)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(
                line.to_string(),
                (x, y + 6 + k as i32 * (size + 3)),
                style,
            ))?;
        }
    }
    Ok(())
}

/// Splits "mode=both, tasks=[\"a\", \"b\"]" into one line per `key=value` part.
fn label_lines(label: &str) -> Vec<String> {
    let is_key = |part: &str| {
        part.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        })
    };
    let mut lines: Vec<String> = Vec::new();
    for part in label.split(", ") {
        match lines.last_mut() {
            Some(last) if !is_key(part) => {
                last.push_str(", ");
                last.push_str(part);
            }
            _ => lines.push(part.to_string()),
        }
    }
    lines
}

/// A mean with an optional interval, for one bar.
#[derive(Clone, Copy)]
struct Bar {
    mean: f64,
    interval: Option<(f64, f64)>,
}

/// Bars for each category (x) and series (colour), with error bars.
struct GroupedBars {
    title: String,
    y_label: String,
    categories: Vec<String>,
    series: Vec<(String, Vec<Option<Bar>>)>,
}

impl GroupedBars {
    fn y_range(&self) -> (f64, f64) {
        let values = self
            .series
            .iter()
            .flat_map(|(_, bars)| bars.iter().flatten())
            .flat_map(|b| {
                let (lo, hi) = b.interval.unwrap_or((b.mean, b.mean));
                [b.mean, lo, hi]
            });
        let (lo, hi) = values.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
        let hi = if hi <= lo { lo + 1.0 } else { hi };
        (lo, hi + (hi - lo) * 0.18)
    }
}

impl Plot for GroupedBars {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let n = self.categories.len() as f64;
        let (y0, y1) = self.y_range();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 22))
            .margin(14)
            .x_label_area_size(60)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..n - 0.5, y0..y1)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_label_formatter(&|_| String::new())
            .y_desc(self.y_label.as_str())
            .label_style((FONT, 14))
            .draw()?;
        let k = self.series.len().max(1) as f64;
        let width = 0.8 / k;
        for (j, (name, bars)) in self.series.iter().enumerate() {
            let c = color(j);
            let left = |i: usize| i as f64 - 0.4 + j as f64 * width;
            let rects = bars.iter().enumerate().filter_map(|(i, b)| {
                b.map(|b| {
                    Rectangle::new(
                        [(left(i) + 0.01, 0.0), (left(i) + width - 0.01, b.mean)],
                        c.filled(),
                    )
                })
            });
            chart
                .draw_series(rects)?
                .label(name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
            for (i, b) in bars.iter().enumerate() {
                let Some(Bar {
                    interval: Some((lo, hi)),
                    ..
                }) = b
                else {
                    continue;
                };
                let mid = left(i) + width / 2.0;
                let cap = width * 0.2;
                let stroke = BLACK.stroke_width(2);
                chart.draw_series([
                    PathElement::new(vec![(mid, *lo), (mid, *hi)], stroke),
                    PathElement::new(vec![(mid - cap, *lo), (mid + cap, *lo)], stroke),
                    PathElement::new(vec![(mid - cap, *hi), (mid + cap, *hi)], stroke),
                ])?;
            }
        }
        if self.series.len() > 1 || !self.series.is_empty() && !self.series[0].0.is_empty() {
            chart
                .configure_series_labels()
                .label_font((FONT, 14))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()?;
        }
        draw_category_labels(root, |x| chart.backend_coord(&(x, y0)), &self.categories)
    }
}

/// (step, mean, std) over seeds, in step order.
type Curve = Vec<(f64, f64, f64)>;

/// Lines of the mean over seeds with a ±std band.
struct Curves {
    title: String,
    y_label: String,
    /// Label → curve.
    lines: Vec<(String, Curve)>,
}

impl Plot for Curves {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let pts = self.lines.iter().flat_map(|(_, l)| l.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, m, s) in pts {
            let s = if s.is_finite() { s } else { 0.0 };
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(m - s);
            y1 = y1.max(m + s);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        if y1 <= y0 {
            y1 = y0 + 1.0;
        }
        let pad = (y1 - y0) * 0.05;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc(self.y_label.as_str())
            .label_style((FONT, 14))
            .draw()?;
        for (j, (name, line)) in self.lines.iter().enumerate() {
            let c = color(j);
            let sd = |s: f64| if s.is_finite() { s } else { 0.0 };
            let band: Vec<(f64, f64)> = line
                .iter()
                .map(|&(x, m, s)| (x, m + sd(s)))
                .chain(line.iter().rev().map(|&(x, m, s)| (x, m - sd(s))))
                .collect();
            chart.draw_series([Polygon::new(band, c.mix(0.2).filled())])?;
            chart
                .draw_series(LineSeries::new(
                    line.iter().map(|&(x, m, _)| (x, m)),
                    c.stroke_width(2),
                ))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
    }
}

/// Stacked fractions per category (paper Fig. 3: rating distributions per model).
struct StackedBars {
    title: String,
    categories: Vec<String>,
    levels: Vec<String>,
    /// Per category: fraction per level (sums to 1).
    fractions: Vec<Vec<f64>>,
}

impl Plot for StackedBars {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let n = self.categories.len() as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 22))
            .margin(14)
            .margin_right(170)
            .x_label_area_size(60)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..n - 0.5, 0.0..1.0)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_label_formatter(&|_| String::new())
            .y_desc("fraction of cases")
            .label_style((FONT, 14))
            .draw()?;
        for (l, level) in self.levels.iter().enumerate() {
            let c = color(l);
            let rects = self.fractions.iter().enumerate().map(|(i, f)| {
                let bottom: f64 = f[..l].iter().sum();
                Rectangle::new(
                    [(i as f64 - 0.3, bottom), (i as f64 + 0.3, bottom + f[l])],
                    c.filled(),
                )
            });
            chart.draw_series(rects)?;
            // Legend in the right margin, drawn by hand (plotters' box sits inside the plot).
            let (lx, ly) = (SIZE.0 as i32 - 150, 70 + l as i32 * 26);
            root.draw(&Rectangle::new(
                [(lx, ly - 8), (lx + 16, ly + 8)],
                c.filled(),
            ))?;
            let style = (FONT, 15)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(level.clone(), (lx + 24, ly), style))?;
            for (i, f) in self.fractions.iter().enumerate() {
                if f[l] >= 0.06 {
                    let mid = f[..l].iter().sum::<f64>() + f[l] / 2.0;
                    let style = (FONT, 13)
                        .into_font()
                        .color(&BLACK)
                        .pos(Pos::new(HPos::Center, VPos::Center));
                    chart.draw_series([Text::new(
                        format!("{:.0}%", f[l] * 100.0),
                        (i as f64, mid),
                        style,
                    )])?;
                }
            }
        }
        draw_category_labels(root, |x| chart.backend_coord(&(x, 0.0)), &self.categories)
    }
}

/// A confusion matrix: colour = row-normalised fraction, text = mean count over seeds.
struct Heatmap {
    title: String,
    labels: Vec<String>,
    counts: Vec<Vec<f64>>,
}

impl Plot for Heatmap {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let n = self.labels.len();
        let nf = n as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 22))
            .margin(14)
            .margin_left(220)
            .margin_right(220)
            .x_label_area_size(60)
            .y_label_area_size(10)
            .build_cartesian_2d(0.0..nf, 0.0..nf)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|_| String::new())
            .draw()?;
        for (r, row) in self.counts.iter().enumerate() {
            let total: f64 = row.iter().sum();
            for (c, &v) in row.iter().enumerate() {
                let frac = if total > 0.0 { v / total } else { 0.0 };
                let shade = RGBColor(
                    (255.0 - frac * 255.0) as u8,
                    (255.0 - frac * 141.0) as u8,
                    (255.0 - frac * 77.0) as u8,
                );
                // Row r (true label) is drawn from the top.
                let y = nf - r as f64;
                chart.draw_series([Rectangle::new(
                    [(c as f64, y - 1.0), (c as f64 + 1.0, y)],
                    shade.filled(),
                )])?;
                let text_color = if frac > 0.55 { WHITE } else { BLACK };
                let style = (FONT, 18)
                    .into_font()
                    .color(&text_color)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                let text = if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                };
                chart.draw_series([Text::new(text, (c as f64 + 0.5, y - 0.5), style)])?;
            }
        }
        let label_style = |h| {
            (FONT, 15)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(h, VPos::Center))
        };
        for (i, l) in self.labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            root.draw(&Text::new(
                l.clone(),
                (x, y + 16),
                label_style(HPos::Center),
            ))?;
            let (x, y) = chart.backend_coord(&(0.0, nf - i as f64 - 0.5));
            root.draw(&Text::new(l.clone(), (x - 10, y), label_style(HPos::Right)))?;
        }
        let (x, y) = chart.backend_coord(&(nf / 2.0, 0.0));
        root.draw(&Text::new(
            "predicted",
            (x, y + 40),
            label_style(HPos::Center),
        ))?;
        let (x, y) = chart.backend_coord(&(0.0, nf));
        root.draw(&Text::new(
            "true \u{2193}",
            (x - 10, y - 12),
            label_style(HPos::Right),
        ))?;
        Ok(())
    }
}

/// A file-name-safe id: lowercase ASCII letters and digits, runs of anything else as one '_'.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

fn bar_of(g: &Group, metric: &str) -> Option<Bar> {
    g.summaries.get(metric).filter(|s| s.n > 0).map(|s| Bar {
        mean: s.mean,
        interval: s.ci,
    })
}

/// Groups that ran every task: those whose `alignment.tasks` is absent or empty.
fn full_task_groups(groups: &[Group]) -> Vec<&Group> {
    let full: Vec<&Group> = groups
        .iter()
        .filter(|g| matches!(g.param(PARAM_TASKS), None | Some("") | Some("[]")))
        .collect();
    if full.is_empty() {
        groups.iter().collect()
    } else {
        full
    }
}

fn has_ablation(groups: &[Group]) -> bool {
    let variants: BTreeSet<Option<&str>> = groups.iter().map(|g| g.param(PARAM_TASKS)).collect();
    variants.len() > 1
}

pub(crate) fn all_figures(
    groups: &[Group],
    dir: &Path,
    notes: &mut Vec<String>,
) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    figures.extend(task_bars(groups, dir)?);
    figures.extend(curves(groups, dir)?);
    figures.extend(ratings(groups, dir)?);
    figures.extend(confusions(groups, dir)?);
    if has_ablation(groups) {
        figures.extend(ablation(groups, dir)?);
    }
    if figures.is_empty() {
        notes.push("no figure: the runs have no metrics, series or examples to plot".into());
    }
    Ok(figures)
}

/// Metrics with values in [0, 1] (accuracies, NDCG, HCR): comparable on one axis.
fn unit_metrics(groups: &[&Group]) -> Vec<String> {
    result_metrics(groups.iter().copied())
        .into_iter()
        .filter(|m| {
            groups
                .iter()
                .filter_map(|g| g.summaries.get(m))
                .all(|s| s.values.iter().all(|v| (0.0..=1.0).contains(v)))
        })
        .collect()
}

fn task_bars(groups: &[Group], dir: &Path) -> Result<Vec<Figure>> {
    let main = full_task_groups(groups);
    let metrics = unit_metrics(&main);
    let chunks: Vec<&[String]> = metrics.chunks(MAX_BAR_CATEGORIES).collect();
    let mut out = Vec::new();
    for (k, chunk) in chunks.iter().enumerate() {
        let id = if chunks.len() == 1 {
            "task_bars".to_string()
        } else {
            format!("task_bars_{}", k + 1)
        };
        let plot = GroupedBars {
            title: "Metrics by alignment mode".into(),
            y_label: "mean over seeds".into(),
            categories: chunk.to_vec(),
            series: main
                .iter()
                .map(|g| {
                    (
                        g.label.clone(),
                        chunk.iter().map(|m| bar_of(g, m)).collect(),
                    )
                })
                .collect(),
        };
        let caption = "Per-task metrics by group (alignment mode): bars are means over seeds, \
                       error bars the bootstrap 95% CI of the mean."
            .to_string();
        out.push(save(&plot, dir, &id, caption)?);
    }
    Ok(out)
}

/// Mean and std over seeds at each step any seed logged.
fn curve_over_seeds(g: &Group, name: &str) -> Curve {
    let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for r in &g.runs {
        for &(step, v) in r.series.get(name).into_iter().flatten() {
            if v.is_finite() {
                by_step.entry(step).or_default().push(v);
            }
        }
    }
    by_step
        .into_iter()
        .map(|(s, vs)| (s as f64, stats::mean(&vs), stats::std(&vs)))
        .collect()
}

fn curves(groups: &[Group], dir: &Path) -> Result<Vec<Figure>> {
    let names: BTreeSet<&String> = groups
        .iter()
        .flat_map(|g| g.runs.iter().flat_map(|r| r.series.keys()))
        .collect();
    let mut out = Vec::new();
    for name in names {
        let lines: Vec<(String, Curve)> = groups
            .iter()
            .map(|g| (g.label.clone(), curve_over_seeds(g, name)))
            .filter(|(_, l)| !l.is_empty())
            .collect();
        let plot = Curves {
            title: format!("Training curve: {name}"),
            y_label: name.clone(),
            lines,
        };
        let caption = format!("{name} during training: mean over seeds, band ± 1 std.");
        out.push(save(&plot, dir, &format!("curve_{}", slug(name)), caption)?);
    }
    Ok(out)
}

fn ratings(groups: &[Group], dir: &Path) -> Result<Vec<Figure>> {
    let levels: Vec<String> = (0..4).map(|k| format!("RATING-{k}")).collect();
    let mut categories = Vec::new();
    let mut fractions = Vec::new();
    for g in groups {
        let mut counts = [0usize; 4];
        for r in &g.runs {
            for (_, v) in r.examples.get(EXAMPLE_RATING).into_iter().flatten() {
                if let Some(c) = counts.get_mut(v.round() as usize).filter(|_| *v >= 0.0) {
                    *c += 1;
                }
            }
        }
        let total: usize = counts.iter().sum();
        if total > 0 {
            categories.push(g.label.clone());
            fractions.push(counts.iter().map(|&c| c as f64 / total as f64).collect());
        }
    }
    if categories.is_empty() {
        return Ok(Vec::new());
    }
    let plot = StackedBars {
        title: "Explanation ratings".into(),
        categories,
        levels,
        fractions,
    };
    let caption = format!(
        "Distribution of judge ratings ({EXAMPLE_RATING}) per group, pooled over seeds (paper Fig. 3)."
    );
    Ok(vec![save(&plot, dir, "ratings", caption)?])
}

fn confusions(groups: &[Group], dir: &Path) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    for g in groups {
        let cells: Vec<(&str, &str, f64)> = g
            .summaries
            .iter()
            .filter_map(|(k, s)| {
                let rest = k.strip_prefix(CONFUSION_PREFIX)?;
                let (t, p) = rest.split_once('/')?;
                Some((t, p, s.mean))
            })
            .collect();
        if cells.is_empty() {
            continue;
        }
        let labels: Vec<String> = cells
            .iter()
            .flat_map(|(t, p, _)| [t.to_string(), p.to_string()])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let idx = |l: &str| labels.iter().position(|x| x == l).expect("label collected");
        let mut counts = vec![vec![0.0; labels.len()]; labels.len()];
        for (t, p, v) in cells {
            counts[idx(t)][idx(p)] = v;
        }
        let plot = Heatmap {
            title: format!("Confusion matrix: {}", g.label),
            labels,
            counts,
        };
        let caption = format!(
            "Confusion matrix of {} (rows: true, columns: predicted; mean counts over {} seeds, colour = row fraction; paper Fig. 4).",
            g.label,
            g.runs.len()
        );
        let id = if groups.len() == 1 {
            "confusion".to_string()
        } else {
            format!("confusion_{}", slug(&g.label))
        };
        out.push(save(&plot, dir, &id, caption)?);
    }
    Ok(out)
}

fn ablation(groups: &[Group], dir: &Path) -> Result<Vec<Figure>> {
    let categories: Vec<String> = groups
        .iter()
        .map(|g| g.label.replace("tasks=[]", "all tasks"))
        .collect();
    let mut out = Vec::new();
    for metric in result_metrics(groups) {
        let present = groups
            .iter()
            .filter(|g| g.summaries.contains_key(&metric))
            .count();
        if present < 2 {
            continue;
        }
        let plot = GroupedBars {
            title: format!("Task ablation: {metric}"),
            y_label: metric.clone(),
            categories: categories.clone(),
            series: vec![(
                String::new(),
                groups.iter().map(|g| bar_of(g, &metric)).collect(),
            )],
        };
        let caption = format!(
            "Task ablation (paper Fig. 7): {metric} by alignment.tasks; mean over seeds, error bars the bootstrap 95% CI."
        );
        out.push(save(
            &plot,
            dir,
            &format!("ablation_{}", slug(&metric)),
            caption,
        )?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_split_at_keys_only() {
        assert_eq!(
            label_lines("mode=both, tasks=[\"a\", \"b\"]"),
            vec!["mode=both", "tasks=[\"a\", \"b\"]"]
        );
        assert_eq!(label_lines("plain, text"), vec!["plain, text"]);
        assert_eq!(slug("mode=both, tasks=[]"), "mode_both_tasks");
    }
}
