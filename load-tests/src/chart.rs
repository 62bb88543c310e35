//! `chart.svg` of the report directory, drawn with plotters (SVG back end only): one panel per
//! latency series (p50/p90/p99 per time bucket) and one of the server's RSS over the run.
//! Pure drawing: the figures come from `report`.

use std::path::Path;

use plotters::prelude::*;

use crate::report::LatencySeries;
use crate::sampler::Sample;

/// Width of the picture, px.
const WIDTH: u32 = 1000;
/// Height of one panel, px.
const PANEL_HEIGHT: u32 = 300;

/// Why the chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("draw chart {path}: {message}")]
pub struct ChartError {
    path: String,
    message: String,
}

/// One line of a panel.
struct Line {
    label: &'static str,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

/// Writes the chart of `series` and the server RSS in `timeline` to `path`.
pub fn write_svg(
    path: &Path,
    title: &str,
    series: &[LatencySeries],
    timeline: &[Sample],
) -> Result<(), ChartError> {
    let fail = |e: &dyn std::fmt::Display| ChartError {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut panels: Vec<(String, &'static str, Vec<Line>)> = series
        .iter()
        .map(|s| {
            let line = |label, color, f: fn(&crate::stats::TimePoint) -> f64| Line {
                label,
                color,
                points: s.points.iter().map(|p| (p.t_s, f(p))).collect(),
            };
            (
                format!("{} (per {:.1} s bucket)", s.name, s.bucket_s),
                "ms",
                vec![
                    line("p50", BLUE, |p| p.p50_ms),
                    line("p90", GREEN, |p| p.p90_ms),
                    line("p99", RED, |p| p.p99_ms),
                ],
            )
        })
        .collect();
    let rss: Vec<(f64, f64)> = timeline
        .iter()
        .filter_map(|s| s.server_rss_kib.map(|k| (s.t_s, k as f64 / 1024.0)))
        .collect();
    let rss_title = if rss.is_empty() {
        "server RSS (not sampled: pass --pid)"
    } else {
        "server RSS"
    };
    panels.push((
        rss_title.to_owned(),
        "MiB",
        vec![Line {
            label: "RSS",
            color: BLACK,
            points: rss,
        }],
    ));
    let height = PANEL_HEIGHT * panels.len() as u32 + 40;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let root = root
        .titled(title, ("sans-serif", 20))
        .map_err(|e| fail(&e))?;
    let x_max = timeline
        .iter()
        .map(|s| s.t_s)
        .chain(series.iter().flat_map(|s| s.points.iter().map(|p| p.t_s)))
        .fold(1.0_f64, f64::max);
    for (area, (caption, unit, lines)) in root.split_evenly((panels.len(), 1)).iter().zip(&panels) {
        let y_max = lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0_f64, f64::max);
        let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc(*unit)
            .draw()
            .map_err(|e| fail(&e))?;
        for line in lines {
            let color = line.color;
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), &color))
                .map_err(|e| fail(&e))?
                .label(line.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::TimePoint;

    #[test]
    fn the_chart_has_a_panel_per_series_plus_rss_with_lines_and_labels() {
        let dir = std::env::temp_dir().join(format!("mcp-load-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chart.svg");
        let points = (0..5)
            .map(|i| TimePoint {
                t_s: f64::from(i) + 0.5,
                count: 10,
                p50_ms: 1.0 + f64::from(i),
                p90_ms: 2.0 + f64::from(i),
                p99_ms: 3.0 + f64::from(i),
            })
            .collect();
        let series = vec![LatencySeries {
            name: "tools/call latency".into(),
            bucket_s: 1.0,
            points,
        }];
        let timeline: Vec<Sample> = (0..20)
            .map(|i| Sample {
                t_s: f64::from(i) * 0.25,
                server_rss_kib: Some(10_240 + 100 * i as u64),
                server_cpu_pct: None,
                own_cpu_pct: None,
                own_rss_kib: None,
                calls_ok: 0,
                sessions_open: 0,
                server_ticks: None,
                own_ticks: None,
            })
            .collect();
        write_svg(&path, "test run", &series, &timeline).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("tools/call latency"));
        assert!(svg.contains("server RSS"));
        for label in ["p50", "p90", "p99", "RSS"] {
            assert!(
                svg.contains(&format!(">{label}<")) || svg.contains(label),
                "{label}"
            );
        }
        // Three latency lines and one RSS line.
        assert!(svg.matches("<polyline").count() >= 4, "{svg}");
    }
}
