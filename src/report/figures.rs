//! Figures, drawn once for two backends: PNG (embedded in index.html) and SVG (beside it).
//!
//! Text uses the vendored DejaVu Sans (`assets/fonts/`), registered with plotters' `ab_glyph`
//! renderer, so figures look the same on every machine and need no system fonts. A figure is
//! drawn only when its data exists, and each one holds one comparable family of metrics (the
//! report's sections choose the families): bars (mean over seeds, whiskers ± std, every seed a
//! dot), training curves (mean over seeds, band ± std), rating distributions (stacked bars, paper
//! Fig. 3), confusion matrices (Fig. 4) and task-ablation bars (Fig. 7).
//!
//! Category labels are measured with the font and wrapped (at `.`, `,` and spaces) or shrunk
//! until each fits its slot, so neighbouring labels never overlap ([`fit_labels`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::group::{Group, Summary};
use super::{CONFUSION_MARK, EXAMPLE_HUMAN_RATING, EXAMPLE_RATING, Figure, PARAM_TASKS};
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

/// Largest and smallest font size of category labels.
const LABEL_SIZES: (u32, u32) = (15, 9);

/// A category label laid out to fit its slot: font size and lines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FittedLabel {
    pub size: u32,
    pub lines: Vec<String>,
}

/// Width in pixels of `text` in the report font at `size`.
fn text_width(text: &str, size: u32) -> u32 {
    (FONT, size as f64)
        .into_font()
        .box_size(text)
        .map_or(text.chars().count() as u32 * size, |(w, _)| w)
}

/// Greedily fills lines no wider than `max_px` with the pieces of `label`, breaking after
/// `.`, `,`, `/`, `-`, `_` and spaces and at `key=value` parts ([`label_lines`]); a piece wider than a
/// line stays whole (the caller shrinks the font then).
fn wrap_label(label: &str, size: u32, max_px: u32) -> Vec<String> {
    let mut lines = Vec::new();
    for part in label_lines(label) {
        let mut pieces: Vec<String> = Vec::new();
        let mut cur = String::new();
        for c in part.chars() {
            cur.push(c);
            if matches!(c, '.' | ',' | '/' | '-' | '_' | ' ') {
                pieces.push(std::mem::take(&mut cur));
            }
        }
        if !cur.is_empty() {
            pieces.push(cur);
        }
        let mut line = String::new();
        for piece in pieces {
            let candidate = format!("{line}{piece}");
            if !line.is_empty() && text_width(candidate.trim_end(), size) > max_px {
                lines.push(line.trim_end().to_string());
                line = piece.trim_start().to_string();
            } else {
                line = candidate;
            }
        }
        if !line.trim().is_empty() {
            lines.push(line.trim_end().to_string());
        }
    }
    lines
}

/// Lays out `labels` under slots `slot_px` wide: the largest font size (15 down to 9) at which
/// every wrapped line fits in its slot with a little space to spare. Labels are never allowed to
/// reach into a neighbour's slot; at the smallest size a label too long even wrapped is cut
/// with an ellipsis.
pub(crate) fn fit_labels(labels: &[String], slot_px: u32) -> Vec<FittedLabel> {
    let room = slot_px.saturating_sub(6).max(10);
    let fits = |l: &FittedLabel| l.lines.iter().all(|x| text_width(x, l.size) <= room);
    let wrap = |size: u32| -> Vec<FittedLabel> {
        labels
            .iter()
            .map(|l| FittedLabel {
                size,
                lines: wrap_label(l, size, room),
            })
            .collect()
    };
    for size in (LABEL_SIZES.1..=LABEL_SIZES.0).rev() {
        let laid = wrap(size);
        if laid.iter().all(|l| fits(l) && l.lines.len() <= 4) {
            return laid;
        }
    }
    wrap(LABEL_SIZES.1)
        .into_iter()
        .map(|mut l| {
            let size = l.size;
            l.lines.truncate(4);
            for line in &mut l.lines {
                if text_width(line, size) > room {
                    while text_width(&format!("{line}…"), size) > room && line.pop().is_some() {}
                    line.push('…');
                }
            }
            l
        })
        .collect()
}

/// Draws `labels` centred under integer x positions of a chart whose x axis is `f64`, fitted to
/// the distance between two positions.
fn draw_category_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    to_px: impl Fn(f64) -> (i32, i32),
    labels: &[String],
) -> DrawResult<DB> {
    let slot = if labels.len() > 1 {
        (to_px(1.0).0 - to_px(0.0).0).unsigned_abs()
    } else {
        SIZE.0 / 2
    };
    for (i, fitted) in fit_labels(labels, slot).iter().enumerate() {
        let (x, y) = to_px(i as f64);
        let size = fitted.size as i32;
        for (k, line) in fitted.lines.iter().enumerate() {
            let style = (FONT, fitted.size as f64)
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

/// Width of the right margin that holds a figure's legend.
const LEGEND_WIDTH: u32 = 230;

/// Draws a legend in the right margin (outside the plot, so it never hides data): a colour
/// swatch and the label, wrapped to the margin, per entry.
fn draw_side_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor)],
) -> DrawResult<DB> {
    let size = 13;
    let x = (SIZE.0 - LEGEND_WIDTH + 16) as i32;
    let mut y = 60;
    for (label, c) in entries {
        root.draw(&Rectangle::new([(x, y - 7), (x + 14, y + 7)], c.filled()))?;
        let lines = wrap_label(label, size, LEGEND_WIDTH - 44);
        for line in &lines {
            let style = (FONT, size as f64)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center));
            root.draw(&Text::new(line.clone(), (x + 22, y), style))?;
            y += size as i32 + 4;
        }
        y += 10;
    }
    Ok(())
}

/// A mean with an optional interval and the values it summarises, for one bar.
#[derive(Clone)]
struct Bar {
    mean: f64,
    interval: Option<(f64, f64)>,
    /// One dot per seed.
    points: Vec<f64>,
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
                [b.mean, lo, hi].into_iter().chain(b.points.iter().copied())
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
        let legend: Vec<(String, RGBColor)> = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, (name, _))| !name.is_empty())
            .map(|(j, (name, _))| (name.clone(), color(j)))
            .collect();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 22))
            .margin(14)
            .margin_right(if legend.is_empty() { 14 } else { LEGEND_WIDTH })
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
        for (j, (_, bars)) in self.series.iter().enumerate() {
            let c = color(j);
            let left = |i: usize| i as f64 - 0.4 + j as f64 * width;
            let rects = bars.iter().enumerate().filter_map(|(i, b)| {
                b.as_ref().map(|b| {
                    Rectangle::new(
                        [(left(i) + 0.01, 0.0), (left(i) + width - 0.01, b.mean)],
                        c.filled(),
                    )
                })
            });
            chart.draw_series(rects)?;
            for (i, b) in bars.iter().enumerate() {
                let Some(b) = b else { continue };
                let mid = left(i) + width / 2.0;
                if let Some((lo, hi)) = b.interval {
                    let cap = width * 0.2;
                    let stroke = BLACK.stroke_width(2);
                    chart.draw_series([
                        PathElement::new(vec![(mid, lo), (mid, hi)], stroke),
                        PathElement::new(vec![(mid - cap, lo), (mid + cap, lo)], stroke),
                        PathElement::new(vec![(mid - cap, hi), (mid + cap, hi)], stroke),
                    ])?;
                }
                // Seeds as dots, spread across the bar so equal values stay visible.
                let n = b.points.len().max(1) as f64;
                chart.draw_series(b.points.iter().enumerate().map(|(k, &v)| {
                    let x = mid + width * 0.5 * ((k as f64 + 0.5) / n - 0.5);
                    Circle::new((x, v), 4, BLACK.mix(0.75).filled())
                }))?;
            }
        }
        draw_side_legend(root, &legend)?;
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
            .margin_right(LEGEND_WIDTH)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))?;
        // Steps are integers: never more labels than steps, so no label repeats.
        let x_labels = ((x1 - x0).round() as usize + 1).clamp(2, 10);
        chart
            .configure_mesh()
            .x_desc("step")
            .x_labels(x_labels)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc(self.y_label.as_str())
            .label_style((FONT, 14))
            .draw()?;
        for (j, (_, line)) in self.lines.iter().enumerate() {
            let c = color(j);
            let sd = |s: f64| if s.is_finite() { s } else { 0.0 };
            let band: Vec<(f64, f64)> = line
                .iter()
                .map(|&(x, m, s)| (x, m + sd(s)))
                .chain(line.iter().rev().map(|&(x, m, s)| (x, m - sd(s))))
                .collect();
            chart.draw_series([Polygon::new(band, c.mix(0.2).filled())])?;
            chart.draw_series(LineSeries::new(
                line.iter().map(|&(x, m, _)| (x, m)),
                c.stroke_width(2),
            ))?;
        }
        let legend: Vec<(String, RGBColor)> = self
            .lines
            .iter()
            .enumerate()
            .map(|(j, (name, _))| (name.clone(), color(j)))
            .collect();
        draw_side_legend(root, &legend)
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
            .margin_right(LEGEND_WIDTH)
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
        for l in 0..self.levels.len() {
            let c = color(l);
            let rects = self.fractions.iter().enumerate().map(|(i, f)| {
                let bottom: f64 = f[..l].iter().sum();
                Rectangle::new(
                    [(i as f64 - 0.3, bottom), (i as f64 + 0.3, bottom + f[l])],
                    c.filled(),
                )
            });
            chart.draw_series(rects)?;
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
        let legend: Vec<(String, RGBColor)> = self
            .levels
            .iter()
            .enumerate()
            .map(|(l, level)| (level.clone(), color(l)))
            .collect();
        draw_side_legend(root, &legend)?;
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

/// The bar of a summary: the mean, whiskers ± 1 std (from two seeds on), every seed a dot.
fn bar_of_summary(s: &Summary) -> Option<Bar> {
    (s.n > 0).then(|| Bar {
        mean: s.mean,
        interval: (s.n >= 2 && s.std.is_finite()).then_some((s.mean - s.std, s.mean + s.std)),
        points: s.values.clone(),
    })
}

fn bar_of(g: &Group, metric: &str) -> Option<Bar> {
    g.summaries.get(metric).and_then(bar_of_summary)
}

/// Groups that ran every task: those whose `alignment.tasks` is absent or empty (all groups
/// when none did).
pub(crate) fn full_task_groups(groups: &[Group]) -> Vec<&Group> {
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

/// Whether the groups ran several subsets of the alignment tasks (paper Fig. 7).
pub(crate) fn has_ablation(groups: &[Group]) -> bool {
    let variants: BTreeSet<Option<&str>> = groups.iter().map(|g| g.param(PARAM_TASKS)).collect();
    variants.len() > 1
}

/// Whether every value of `metric` lies in [0, 1] (accuracies, NDCG, HCR, shares): such metrics
/// share one axis.
pub(crate) fn is_unit_metric(groups: &[Group], metric: &str) -> bool {
    groups
        .iter()
        .filter_map(|g| g.summaries.get(metric))
        .all(|s| s.values.iter().all(|v| (0.0..=1.0).contains(v)))
}

/// One series of bars: its legend label and a summary per category.
pub(crate) type BarSeries<'a> = (String, Vec<Option<&'a Summary>>);

/// Bar figures of one family of metrics: `categories` on the x axis, one colour per series.
/// More than eight categories are split over several figures (`<id>_1`, `<id>_2`, ...).
pub(crate) fn bars(
    dir: &Path,
    id: &str,
    title: &str,
    caption: &str,
    categories: &[String],
    series: &[BarSeries<'_>],
) -> Result<Vec<Figure>> {
    let chunks: Vec<&[String]> = categories.chunks(MAX_BAR_CATEGORIES).collect();
    let mut out = Vec::new();
    for (k, chunk) in chunks.iter().enumerate() {
        let start = k * MAX_BAR_CATEGORIES;
        let id = if chunks.len() == 1 {
            id.to_string()
        } else {
            format!("{id}_{}", k + 1)
        };
        let plot = GroupedBars {
            title: title.to_string(),
            y_label: "mean over seeds".into(),
            categories: chunk.to_vec(),
            series: series
                .iter()
                .map(|(label, cells)| {
                    let bars = cells[start..start + chunk.len()]
                        .iter()
                        .map(|c| c.and_then(bar_of_summary))
                        .collect();
                    (label.clone(), bars)
                })
                .collect(),
        };
        let caption =
            format!("{caption} Bars: mean over seeds; whiskers: ± 1 std; dots: the seeds.");
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

/// The names of every training curve the runs logged.
pub(crate) fn series_names(groups: &[Group]) -> BTreeSet<String> {
    groups
        .iter()
        .flat_map(|g| g.runs.iter().flat_map(|r| r.series.keys().cloned()))
        .collect()
}

/// Curves that belong in one figure: `x.valid_loss` with its per-task `x.valid_loss.<task>`.
/// A name's family is the name without its last segment when that prefix is a curve too.
fn curve_families(names: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in names {
        let family = name
            .rsplit_once('.')
            .map(|(head, _)| head)
            .filter(|head| names.iter().any(|n| n == head))
            .unwrap_or(name);
        families
            .entry(family.to_string())
            .or_default()
            .push(name.clone());
    }
    families
}

/// Most lines in one curve figure; a bigger family gets a figure per curve.
const MAX_LINES: usize = 8;

/// Training curves in `names`, one figure per family (`curve_<family>`: the overall curve and
/// its per-task curves together, a line per group and member), or one per curve when a family
/// would need more than eight lines.
pub(crate) fn curves(groups: &[Group], names: &[String], dir: &Path) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    for (family, members) in curve_families(names) {
        let line_label = |g: &Group, member: &str| {
            let part = match member.strip_prefix(family.as_str()) {
                Some("") => None,
                Some(rest) => Some(rest.trim_start_matches('.').to_string()),
                None => Some(member.to_string()),
            };
            match (groups.len(), part) {
                (1, None) if members.len() > 1 => "all".to_string(),
                (1, Some(p)) => p,
                (_, None) => g.label.clone(),
                (_, Some(p)) => format!("{}: {p}", g.label),
            }
        };
        let lines_of = |members: &[String]| -> Vec<(String, Curve)> {
            groups
                .iter()
                .flat_map(|g| {
                    members
                        .iter()
                        .map(move |m| (line_label(g, m), curve_over_seeds(g, m)))
                })
                .filter(|(_, l)| !l.is_empty())
                .collect()
        };
        let lines = lines_of(&members);
        let figures: Vec<(String, Vec<(String, Curve)>)> = if lines.len() <= MAX_LINES {
            vec![(family.clone(), lines)]
        } else {
            members
                .iter()
                .map(|m| (m.clone(), lines_of(std::slice::from_ref(m))))
                .collect()
        };
        for (name, lines) in figures {
            if lines.is_empty() {
                continue;
            }
            let per_task = if name == family && members.len() > 1 {
                " and per task"
            } else {
                ""
            };
            let plot = Curves {
                title: format!("Training curve: {name}{per_task}"),
                y_label: name.clone(),
                lines,
            };
            let caption =
                format!("{name}{per_task} during training: mean over seeds, band ± 1 std.");
            out.push(save(
                &plot,
                dir,
                &format!("curve_{}", slug(&name)),
                caption,
            )?);
        }
    }
    Ok(out)
}

/// Who rated the explanations in a rating-distribution figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Raters {
    /// The LLM judge ([`EXAMPLE_RATING`]).
    Judge,
    /// People, through the report's annotation sheet ([`EXAMPLE_HUMAN_RATING`]).
    Human,
}

/// The rating distribution per group and explainer (paper Fig. 3), when the runs' explanations
/// were rated: the aligned model's ratings (`judge.rating`, `human.rating`) and those of the
/// other explainers the explanation stage ran (`….unaligned`, `….external`).
pub(crate) fn ratings(groups: &[Group], raters: Raters, dir: &Path) -> Result<Vec<Figure>> {
    let (metric, who, id) = match raters {
        Raters::Judge => (EXAMPLE_RATING, "judge", "ratings"),
        Raters::Human => (EXAMPLE_HUMAN_RATING, "human", "human_ratings"),
    };
    let levels: Vec<String> = (0..4).map(|k| format!("RATING-{k}")).collect();
    let mut categories = Vec::new();
    let mut fractions = Vec::new();
    let explainers = [
        ("", ""),
        (".unaligned", " · unaligned backbone"),
        (".external", " · external LLM"),
    ];
    for g in groups {
        for (suffix, name) in explainers {
            let key = format!("{metric}{suffix}");
            let mut counts = [0usize; 4];
            for r in &g.runs {
                for (_, v) in r.examples.get(&key).into_iter().flatten() {
                    if let Some(c) = counts.get_mut(v.round() as usize).filter(|_| *v >= 0.0) {
                        *c += 1;
                    }
                }
            }
            let total: usize = counts.iter().sum();
            if total > 0 {
                categories.push(format!("{}{name}", g.label));
                fractions.push(counts.iter().map(|&c| c as f64 / total as f64).collect());
            }
        }
    }
    if categories.is_empty() {
        return Ok(Vec::new());
    }
    let plot = StackedBars {
        title: format!("Explanation ratings ({who})"),
        categories,
        levels,
        fractions,
    };
    let caption = format!(
        "Distribution of {who} ratings ({metric}) per group and explainer, pooled over seeds{} (paper Fig. 3).",
        if raters == Raters::Human {
            " and annotators"
        } else {
            ""
        }
    );
    Ok(vec![save(&plot, dir, id, caption)?])
}

/// Splits `<stage>.confusion/<true>/<pred>` into (`<stage>.`, true, pred).
pub(crate) fn confusion_cell(name: &str) -> Option<(&str, &str, &str)> {
    let at = name.find(CONFUSION_MARK)?;
    if at > 0 && !name[..at].ends_with('.') {
        return None;
    }
    let (t, p) = name[at + CONFUSION_MARK.len()..].split_once('/')?;
    Some((&name[..at], t, p))
}

/// Every confusion matrix the runs recorded (paper Fig. 4), one figure per group and source.
pub(crate) fn confusions(groups: &[Group], dir: &Path) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    for g in groups {
        // One matrix per metric prefix (e.g. "discriminator.").
        let mut matrices: BTreeMap<&str, Vec<(&str, &str, f64)>> = BTreeMap::new();
        for (k, s) in &g.summaries {
            if let Some((prefix, t, p)) = confusion_cell(k) {
                matrices.entry(prefix).or_default().push((t, p, s.mean));
            }
        }
        let several = matrices.len() > 1;
        for (prefix, cells) in matrices {
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
            let source = prefix.trim_end_matches('.');
            let title = match (groups.len() > 1, source.is_empty()) {
                (true, true) => format!("Confusion matrix: {}", g.label),
                (true, false) => format!("Confusion matrix ({source}): {}", g.label),
                (false, true) => "Confusion matrix".to_string(),
                (false, false) => format!("Confusion matrix ({source})"),
            };
            let plot = Heatmap {
                title,
                labels,
                counts,
            };
            let caption = format!(
                "Confusion matrix of {} {source} (rows: true, columns: predicted; mean counts over {} seeds, colour = row fraction; paper Fig. 4).",
                g.label,
                g.runs.len()
            );
            let mut id = "confusion".to_string();
            if several {
                id = format!("{id}_{}", slug(source));
            }
            if groups.len() > 1 {
                id = format!("{id}_{}", slug(&g.label));
            }
            out.push(save(&plot, dir, &id, caption)?);
        }
    }
    Ok(out)
}

/// Task-ablation bars (paper Fig. 7): one figure per metric in `metrics` that two groups or more
/// measured, a bar per group.
pub(crate) fn ablation(groups: &[Group], metrics: &[String], dir: &Path) -> Result<Vec<Figure>> {
    let categories: Vec<String> = groups
        .iter()
        .map(|g| g.label.replace("tasks=[]", "all tasks"))
        .collect();
    let mut out = Vec::new();
    for metric in metrics {
        let present = groups
            .iter()
            .filter(|g| g.summaries.contains_key(metric))
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
                groups.iter().map(|g| bar_of(g, metric)).collect(),
            )],
        };
        let caption = format!(
            "Task ablation (paper Fig. 7): {metric} by alignment.tasks. Bars: mean over seeds; \
             whiskers: ± 1 std; dots: the seeds."
        );
        out.push(save(
            &plot,
            dir,
            &format!("ablation_{}", slug(metric)),
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
        assert_eq!(
            confusion_cell("discriminator.confusion/H/gpt"),
            Some(("discriminator.", "H", "gpt"))
        );
        assert_eq!(confusion_cell("confusion/a/b"), Some(("", "a", "b")));
        assert_eq!(confusion_cell("x.noconfusion/a/b"), None);
    }

    #[test]
    fn per_task_curves_join_their_overall_curve() {
        let names: Vec<String> = [
            "train.valid_loss",
            "train.valid_loss.uid2next",
            "train.valid_loss.uid2hist",
            "train.lr",
            "recommender.valid_ndcg@10",
        ]
        .map(String::from)
        .to_vec();
        let families = curve_families(&names);
        assert_eq!(families.len(), 3);
        assert_eq!(families["train.valid_loss"].len(), 3);
        assert_eq!(families["train.lr"], ["train.lr"]);
    }

    /// The slot of one category when eight share the plot width, as a bar chart lays them out.
    const NARROW_SLOT: u32 = (SIZE.0 - 70 - 28) / 8;

    #[test]
    fn fitted_labels_never_reach_into_a_neighbours_slot() {
        register_font().unwrap();
        let labels: Vec<String> = [
            "uidiid2binary.acc",
            "SmolLM2-135M-Instruct-zero-shot",
            "popularity.ndcg@10",
            "top1.valid.max_share",
            "mode=both, tasks=[\"uid2next\", \"uid2hist\"]",
            "aligned, both (RecExplainer-H setup)",
            "an_identifier_without_any_break_points_at_all_anywhere",
            "T1 H@5",
        ]
        .map(String::from)
        .to_vec();
        for slot in [NARROW_SLOT, 2 * NARROW_SLOT, SIZE.0 / 2] {
            for fitted in fit_labels(&labels, slot) {
                assert!((LABEL_SIZES.1..=LABEL_SIZES.0).contains(&fitted.size));
                assert!(fitted.lines.len() <= 4, "{fitted:?}");
                for line in &fitted.lines {
                    let w = text_width(line, fitted.size);
                    assert!(w + 6 <= slot, "{line:?} is {w} px in a {slot} px slot");
                }
            }
        }
        // Short labels keep the largest size and one line; nothing is lost from wrapped ones.
        let short = fit_labels(&["T1 H@5".to_string()], NARROW_SLOT);
        assert_eq!(short[0].size, LABEL_SIZES.0);
        assert_eq!(short[0].lines, ["T1 H@5"]);
        let wrapped = fit_labels(&["popularity.ndcg@10".to_string()], 60);
        assert_eq!(wrapped[0].lines.concat(), "popularity.ndcg@10");
        assert!(wrapped[0].lines.len() >= 2);
    }
}
