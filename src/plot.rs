//! Line charts as PNG files (plotters, text in the shipped DejaVu Sans Mono), and
//! the loss curves of training runs drawn from their `metrics.csv`.
//!
//! Only with the `cli` feature (on by default): the engine itself draws nothing.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::train::read_metrics;

const FONT: &[u8] = include_bytes!("../data/DejaVuSansMono.ttf");
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// One named line of (x, y) points; `dashed` draws it thinner and lighter.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// Points in x order.
    pub points: Vec<(f64, f64)>,
    /// Index into the palette (series of one run share a colour).
    pub color: usize,
    /// Thin and light (e.g. the noisy train loss under the eval loss).
    pub faint: bool,
}

/// A chart: title, axis labels and whether y is logarithmic.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// Title on top.
    pub title: &'a str,
    /// x-axis label.
    pub x_label: &'a str,
    /// y-axis label.
    pub y_label: &'a str,
    /// Logarithmic y axis (values must be positive).
    pub log_y: bool,
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the shipped font data/DejaVuSansMono.ttf is not a valid font"));
    });
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Write {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Draws `series` into a 1000x600 PNG at `path`, written atomically.
pub fn line_chart(path: &Path, chart: &Chart<'_>, series: &[Series]) -> Result<()> {
    charts(path, (1000, 600), None, &[(chart.clone(), series.to_vec())], 1)
}

/// Draws `panels` (each a chart and its series) into one PNG at `path`,
/// `columns` to a row, each 600x400, under `title`; written atomically.
pub fn chart_grid(path: &Path, title: &str, panels: &[(Chart<'_>, Vec<Series>)], columns: usize) -> Result<()> {
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    let size = (600 * columns as u32, 400 * rows as u32 + 40);
    charts(path, size, Some(title), panels, columns)
}

/// A tick label: whole numbers where the axis spans 10 or more, else three
/// significant digits (scientific below 0.01); 0 for what rounding left of it.
fn tick(v: f64, span: f64) -> String {
    if v.abs() <= 1e-9 * span {
        "0".to_string()
    } else if span >= 10.0 {
        format!("{v:.0}")
    } else if (0.00995..1000.0).contains(&v.abs()) {
        format!("{:.3}", v)
    } else {
        format!("{v:.1e}")
    }
}

/// The PNG of [`line_chart`] and [`chart_grid`]: `panels` in a grid of
/// `columns`, under `title` when given.
fn charts(
    path: &Path,
    size: (u32, u32),
    title: Option<&str>,
    panels: &[(Chart<'_>, Vec<Series>)],
    columns: usize,
) -> Result<()> {
    register_font();
    let tmp = path.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        let area = match title {
            Some(t) => root.titled(t, ("sans-serif", 24)).map_err(|e| plot_error(path, e))?,
            None => root.clone(),
        };
        let rows = panels.len().div_ceil(columns).max(1);
        let cells = area.split_evenly((rows, columns));
        for ((chart, series), cell) in panels.iter().zip(&cells) {
            draw_chart(path, cell, chart, series)?;
        }
        root.present().map_err(|e| plot_error(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|source| Error::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Draws one chart into `area`; `path` names the file in errors.
fn draw_chart(
    path: &Path,
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    chart: &Chart<'_>,
    series: &[Series],
) -> Result<()> {
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite() && (!chart.log_y || p.1 > 0.0);
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().filter(finite).copied())
        .collect();
    if all.is_empty() {
        return Err(plot_error(
            path,
            format!("nothing to plot in `{}`: no finite points", chart.title),
        ));
    }
    let (x0, x1) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let (x_span, y_span) = (x1 - x0, y1 - y0);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(chart.title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80);
    macro_rules! draw {
        ($ctx:expr, $y_fmt:expr) => {{
            let mut ctx = $ctx;
            ctx.configure_mesh()
                .x_desc(chart.x_label)
                .y_desc(chart.y_label)
                .label_style(("sans-serif", 14))
                .x_label_formatter(&|x| tick(*x, x_span))
                .y_label_formatter(&$y_fmt)
                .draw()
                .map_err(|e| plot_error(path, e))?;
            for s in series {
                let color = COLORS[s.color % COLORS.len()];
                let style = if s.faint {
                    color.mix(0.35).stroke_width(1)
                } else {
                    color.stroke_width(2)
                };
                ctx.draw_series(LineSeries::new(s.points.iter().filter(finite).copied(), style))
                    .map_err(|e| plot_error(path, e))?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            }
            ctx.configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()
                .map_err(|e| plot_error(path, e))?;
        }};
    }
    if chart.log_y {
        let ctx = builder
            .build_cartesian_2d(x0..x1, (y0 * 0.9..y1 * 1.1).log_scale())
            .map_err(|e| plot_error(path, e))?;
        draw!(ctx, |y: &f64| tick(*y, 0.0));
    } else {
        let pad = (y_span * 0.05)
            .max(1e-6 * y1.abs().max(y0.abs()))
            .max(f64::MIN_POSITIVE);
        let ctx = builder
            .build_cartesian_2d(x0..x1, y0 - pad..y1 + pad)
            .map_err(|e| plot_error(path, e))?;
        draw!(ctx, |y: &f64| tick(*y, y_span));
    }
    Ok(())
}

/// The two lines of one run, from [`read_metrics`]'s rows: train loss at y (faint)
/// and eval loss at x.
pub fn run_series(rows: &[(f64, f64, f64, f64)], label: &str, color: usize) -> Vec<Series> {
    let pick = |f: fn(&(f64, f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
        rows.iter().map(|r| (r.0, f(r))).filter(|p| p.1.is_finite()).collect()
    };
    vec![
        Series {
            name: format!("{label}: train loss (y)"),
            points: pick(|r| r.1),
            color,
            faint: true,
        },
        Series {
            name: format!("{label}: eval loss (x)"),
            points: pick(|r| r.2),
            color,
            faint: false,
        },
    ]
}

/// Draws `DIR/loss.png` from `DIR/metrics.csv` (as [`crate::train::train`] writes it):
/// train loss at y and eval loss at x of the run, `label` in the legend (`sfnap
/// train` labels with the optimizer kind).
pub fn plot_run(dir: &Path, label: &str) -> Result<()> {
    let rows = read_metrics(&dir.join("metrics.csv"))?;
    let series = run_series(&rows, label, 0);
    let chart = Chart {
        title: "sfnap train",
        x_label: "step",
        y_label: "loss",
        log_y: true,
    };
    line_chart(&dir.join("loss.png"), &chart, &series)
}

/// Draws a reinforcement-learning run's mean return (of the last 100
/// episodes) against its agent steps into the PNG at `path`, `label` in the
/// legend (`sfnap rl` labels with the optimizer kind).
pub fn plot_returns(path: &Path, points: &[(f64, f64)], label: &str) -> Result<()> {
    let series = [Series {
        name: format!("{label}: mean return, last 100 episodes"),
        points: points.to_vec(),
        color: 0,
        faint: false,
    }];
    let chart = Chart {
        title: "sfnap rl",
        x_label: "agent step",
        y_label: "return",
        log_y: false,
    };
    line_chart(path, &chart, &series)
}
