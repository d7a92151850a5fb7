//! The latency plot: one panel per target set, one line per watcher, the
//! latency at each percentile up to p99.9.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;

use crate::report::LatencySeries;

/// DejaVu Sans, which Debian ships in fonts-dejavu-core.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Percentiles as "nines": x = -log10(1 - q), so 1 is p90, 2 p99, 3 p99.9.
fn quantile_of(nines: f64) -> f64 {
    1.0 - 10f64.powf(-nines)
}

/// Draws the panels into a PNG at `path`.
pub fn draw(path: &Path, panels: &[(String, Vec<LatencySeries>)]) -> Result<()> {
    let font = std::fs::read(FONT).with_context(|| {
        format!("reading {FONT}: install it with apt-get install fonts-dejavu-core")
    })?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| anyhow!("{FONT} is not a usable TrueType font"))?;

    let root = BitMapBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (title, body) = root.split_vertically(50);
    title
        .titled(
            "Exit-notification latency: pidwatch's Watcher and the C limit (pidfd + epoll)",
            ("sans-serif", 24),
        )
        .map_err(|e| anyhow!("{e}"))?;
    let cells = body.split_evenly((2, 2));

    for (cell, (name, series)) in cells.iter().zip(panels) {
        let max_us = series
            .iter()
            .flat_map(|s| s.points.iter().map(|(_, y)| *y))
            .fold(1.0f64, f64::max);
        let min_us = series
            .iter()
            .flat_map(|s| s.points.iter().map(|(_, y)| *y))
            .fold(f64::MAX, f64::min)
            .max(0.1);
        let mut chart = ChartBuilder::on(cell)
            .caption(name, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..3f64, (min_us * 0.8..max_us * 1.25).log_scale())
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (µs)")
            .x_labels(4)
            .y_labels(6)
            .light_line_style(WHITE)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .x_label_formatter(&|x| match x.round() as i64 {
                0 => "p0".to_owned(),
                1 => "p90".to_owned(),
                2 => "p99".to_owned(),
                _ => "p99.9".to_owned(),
            })
            .draw()
            .map_err(|e| anyhow!("{e}"))?;

        for (index, line) in series.iter().enumerate() {
            let color = Palette99::pick(index).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    line.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| anyhow!("{e}"))?
                .label(line.watcher.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
    }
    root.present()
        .map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// Returns the plot points of a histogram: (nines, latency in µs).
pub fn points(histogram: &hdrhistogram::Histogram<u64>) -> Vec<(f64, f64)> {
    (0..=60)
        .map(|step| {
            let nines = f64::from(step) * 0.05;
            let q = quantile_of(nines).min(0.999);
            (nines, histogram.value_at_quantile(q) as f64 / 1e3)
        })
        .collect()
}
