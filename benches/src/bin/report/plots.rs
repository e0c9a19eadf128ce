//! The SVG plots of the report: requests per second by connections, and the user flow's
//! mean and p99 by request beside the predecessor's figures.

use std::path::Path;

use plotters::prelude::*;

use jwt_auth_benches::fail;

use crate::backend::Backend;
use crate::user_flow::{PREDECESSOR_MEAN_MS, PREDECESSOR_P99_MS};

/// The flow's mean and p99 per request type as bars, the predecessor's figures as lines.
pub fn flow(path: &Path, backend: &Backend) {
    let requests = &backend.flow.requests;
    let max = requests.iter().map(|r| r.p99_ms).fold(PREDECESSOR_P99_MS, f64::max) * 1.5;
    let root = SVGBackend::new(path, (720, 360)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let n = requests.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: user flow, mean and p99 by request", backend.name),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..n, 0.0..max)?;
        let labels: Vec<String> = requests.iter().map(|r| r.name.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 0.01 {
                    labels.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("ms")
            .draw()?;
        for (series, color, offset) in [("mean", &BLUE, 0.15), ("p99", &RED, 0.5)] {
            chart
                .draw_series(requests.iter().enumerate().map(|(i, r)| {
                    let value = if series == "mean" { r.mean_ms } else { r.p99_ms };
                    let x = i as f64 + offset;
                    Rectangle::new([(x, 0.0), (x + 0.35, value)], color.filled())
                }))?
                .label(series)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        for (series, value, color) in [
            ("predecessor's mean", PREDECESSOR_MEAN_MS, &CYAN),
            ("predecessor's p99", PREDECESSOR_P99_MS, &MAGENTA),
        ] {
            chart
                .draw_series(LineSeries::new([(0.0, value), (n, value)], color.stroke_width(2)))?
                .label(series)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
        root.present()?;
        Ok(())
    };
    if let Err(e) = draw() {
        fail(format!("plot {}: {e}", path.display()));
    }
}

/// Bare `/verify`'s and `/api/me`'s requests per second by connections, as lines.
pub fn throughput(path: &Path, backend: &Backend) {
    let max = backend.levels.iter().flat_map(|(_, v, m)| [v.rps, m.rps]).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (720, 360)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: requests per second by connections", backend.name),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0..backend.levels.len(), 0.0..max)?;
        let labels: Vec<String> = backend.levels.iter().map(|(c, _, _)| c.to_string()).collect();
        chart
            .configure_mesh()
            .x_labels(labels.len())
            .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
            .x_desc("connections")
            .y_desc("requests/s")
            .draw()?;
        for (series, color) in [("bare /verify", &BLUE), ("/api/me", &RED)] {
            let points: Vec<(usize, f64)> = backend
                .levels
                .iter()
                .enumerate()
                .map(|(i, (_, v, m))| (i, if series == "/api/me" { m.rps } else { v.rps }))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(series)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
        root.present()?;
        Ok(())
    };
    if let Err(e) = draw() {
        fail(format!("plot {}: {e}", path.display()));
    }
}
