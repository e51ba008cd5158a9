//! Line charts of the study as SVG files (plotters' SVG backend: text stays text, so the
//! labels can be read and searched in the file).

use std::path::Path;

use plotters::prelude::*;

use crate::{Error, Result};

pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// The y axis starts at 0 and ends at least here (1.0 for BLEU, so an all-zero curve still
    /// sits on a meaningful scale).
    pub y_min_top: f64,
    /// Where the legend covers least: BLEU curves fall to the right, sizes sit high on the left.
    pub legend: SeriesLabelPosition,
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Eval(format!("{}: cannot draw the chart: {e}", path.display()))
}

/// Tableau's ten: distinct enough for every series a study chart draws.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
];

pub fn line_chart(path: &Path, chart: &Chart, series: &[Series]) -> Result<()> {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        (x0, x1) = (x0 - 1.0, x1 + 1.0);
    }
    let pad = (x1 - x0) * 0.05;
    let y_max = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0, f64::max);
    let y1 = (y_max * 1.1).max(chart.y_min_top);
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let mut ctx = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d((x0 - pad)..(x1 + pad), 0.0..y1)
        .map_err(|e| plot_err(path, e))?;
    let whole_x = series.iter().flat_map(|s| &s.points).all(|p| p.0.fract() == 0.0);
    let x_fmt = |v: &f64| if whole_x { format!("{v:.0}") } else { format!("{v:.2}") };
    let y_fmt = |v: &f64| if y1 > 20.0 { format!("{v:.0}") } else { format!("{v:.2}") };
    ctx.configure_mesh()
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| plot_err(path, e))?;
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        ctx.draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| plot_err(path, e))?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        // Earlier series get larger rings, so curves that coincide (e.g. all at BLEU 0) stay visible.
        let radius = 3 + (series.len() - 1 - i).min(8) as i32;
        ctx.draw_series(s.points.iter().map(|&p| Circle::new(p, radius, color.stroke_width(1))))
            .map_err(|e| plot_err(path, e))?;
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(chart.legend.clone())
        .draw()
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}
