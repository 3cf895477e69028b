//! Inline SVG charts for the HTML report: horizontal bars, a line, a
//! histogram. Pure functions from a [`Chart`] to a self-contained `<svg>`
//! (no scripts, no external references; scales with its container through
//! its `viewBox`, prints as vectors).

use std::fmt::Write as _;

use super::model::{Chart, ChartKind};

const WIDTH: f64 = 640.0;
const BAR_HEIGHT: f64 = 22.0;
const LABEL_WIDTH: f64 = 180.0;
const PLOT_HEIGHT: f64 = 200.0;
const MARGIN: f64 = 36.0;

/// The chart as an `<svg>` element.
pub fn svg(c: &Chart) -> String {
    match c.kind {
        ChartKind::Bar => bars(c),
        ChartKind::Line => line(c),
        ChartKind::Histogram => histogram(c),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn open(height: f64, label: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{}" preserveAspectRatio="xMinYMin meet">"##,
        esc(label)
    )
}

fn bars(c: &Chart) -> String {
    let max = c
        .points
        .iter()
        .map(|p| p.value)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let height = (c.points.len().max(1) as f64) * (BAR_HEIGHT + 6.0) + 10.0;
    let mut s = open(height, &c.unit);
    let span = WIDTH - LABEL_WIDTH - 70.0;
    for (i, p) in c.points.iter().enumerate() {
        let y = 5.0 + i as f64 * (BAR_HEIGHT + 6.0);
        let w = (p.value.max(0.0) / max * span).max(1.0);
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="end" class="label">{}</text><rect x="{LABEL_WIDTH}" y="{y}" width="{w:.1}" height="{BAR_HEIGHT}" class="bar"/><text x="{:.1}" y="{}" class="value">{}</text>"##,
            LABEL_WIDTH - 6.0,
            y + BAR_HEIGHT * 0.7,
            esc(&truncate(&p.label, 28)),
            LABEL_WIDTH + w + 4.0,
            y + BAR_HEIGHT * 0.7,
            fmt(p.value)
        );
    }
    s.push_str("</svg>");
    s
}

/// (x, y) of each point in the plot area.
fn place(c: &Chart) -> (Vec<(f64, f64)>, f64) {
    let max = c
        .points
        .iter()
        .map(|p| p.value)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let n = c.points.len().max(2) as f64 - 1.0;
    let plot_w = WIDTH - 2.0 * MARGIN;
    let pts = c
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                MARGIN + plot_w * i as f64 / n,
                MARGIN / 2.0 + PLOT_HEIGHT * (1.0 - p.value.max(0.0) / max),
            )
        })
        .collect();
    (pts, max)
}

fn axes(s: &mut String, c: &Chart, max: f64) {
    let bottom = MARGIN / 2.0 + PLOT_HEIGHT;
    let _ = write!(
        s,
        r##"<line x1="{MARGIN}" y1="{bottom}" x2="{}" y2="{bottom}" class="axis"/><line x1="{MARGIN}" y1="{}" x2="{MARGIN}" y2="{bottom}" class="axis"/><text x="{}" y="{}" class="value">{} {}</text>"##,
        WIDTH - MARGIN,
        MARGIN / 2.0,
        MARGIN + 4.0,
        MARGIN / 2.0 + 10.0,
        fmt(max),
        esc(&c.unit)
    );
    if let (Some(first), Some(last)) = (c.points.first(), c.points.last()) {
        let _ = write!(
            s,
            r##"<text x="{MARGIN}" y="{}" class="label">{}</text><text x="{}" y="{}" text-anchor="end" class="label">{}</text>"##,
            bottom + 16.0,
            esc(&first.label),
            WIDTH - MARGIN,
            bottom + 16.0,
            esc(&last.label)
        );
    }
}

fn line(c: &Chart) -> String {
    let height = PLOT_HEIGHT + MARGIN + 10.0;
    let mut s = open(height, &c.unit);
    let (pts, max) = place(c);
    axes(&mut s, c, max);
    let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = write!(
        s,
        r##"<polyline points="{}" class="line"/>"##,
        path.join(" ")
    );
    for (x, y) in &pts {
        let _ = write!(
            s,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" class="dot"/>"##
        );
    }
    s.push_str("</svg>");
    s
}

fn histogram(c: &Chart) -> String {
    let height = PLOT_HEIGHT + MARGIN + 10.0;
    let mut s = open(height, &c.unit);
    let (pts, max) = place(c);
    axes(&mut s, c, max);
    let bottom = MARGIN / 2.0 + PLOT_HEIGHT;
    let w = ((WIDTH - 2.0 * MARGIN) / c.points.len().max(1) as f64 - 2.0).max(1.0);
    for (i, (_, y)) in pts.iter().enumerate() {
        let x = MARGIN + i as f64 * (w + 2.0);
        let h = (bottom - y).max(1.0);
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{h:.1}" class="bar"><title>{}: {}</title></rect>"##,
            bottom - h,
            esc(&c.points[i].label),
            fmt(c.points[i].value)
        );
    }
    s.push_str("</svg>");
    s
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::model::Point;

    fn chart(kind: ChartKind, values: &[f64]) -> Chart {
        Chart {
            kind,
            unit: "pass rate".into(),
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| Point {
                    label: format!("<m{i}>"),
                    value: *v,
                })
                .collect(),
        }
    }

    #[test]
    fn charts_are_self_contained_svg_with_escaped_labels() {
        for kind in [ChartKind::Bar, ChartKind::Line, ChartKind::Histogram] {
            let s = svg(&chart(kind, &[0.5, 1.0, 0.25]));
            assert!(
                s.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
                "{s}"
            );
            assert!(s.ends_with("</svg>"));
            assert!(!s.contains("<m0>"), "labels escaped: {s}");
            assert!(!s.contains("href") && !s.contains("<script"), "{s}");
        }
        let bars = svg(&chart(ChartKind::Bar, &[0.5, 1.0]));
        assert_eq!(bars.matches("<rect").count(), 2);
        let line = svg(&chart(ChartKind::Line, &[1.0, 2.0, 3.0]));
        assert_eq!(line.matches("<circle").count(), 3);
        // Nothing to draw is still a valid chart.
        assert!(svg(&chart(ChartKind::Histogram, &[])).ends_with("</svg>"));
    }
}
