//! The sweep plot: top-1 accuracy against ReLU count (log x), one line per method, the
//! baseline dashed, as a self-contained SVG (no dependency; tested for well-formedness).

use super::report::Row;
use crate::autorep::count_label;
use std::fmt::Write as _;

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A step of 1, 2 or 5 × 10^k giving about `n` intervals over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(1e-9);
    let p = 10f64.powf(raw.log10().floor());
    let f = raw / p;
    p * if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// 56448 → `56,448`.
fn thousands(v: u64) -> String {
    let d = v.to_string();
    let mut out = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// Top-1 accuracy against ReLU count (log-x): one polyline with points per method, the
/// baseline (method `baseline`) as a dashed horizontal line, axes with ticks and labels, and a
/// legend. Hand-written SVG.
pub fn sweep_svg(rows: &[Row], title: &str) -> String {
    let (w, h) = (880.0, 480.0);
    let (x0, x1, y0, y1) = (80.0, 560.0, 56.0, 410.0);
    let mut methods: Vec<&str> = Vec::new();
    for r in rows {
        if r.method != "baseline" && !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    let points: Vec<&Row> = rows.iter().filter(|r| r.method != "baseline").collect();
    let baseline = rows.iter().find(|r| r.method == "baseline");
    let xs: Vec<f64> = if points.is_empty() {
        rows.iter().map(|r| r.relus.max(1) as f64).collect()
    } else {
        points.iter().map(|r| r.relus.max(1) as f64).collect()
    };
    let lmin = xs
        .iter()
        .cloned()
        .fold(f64::INFINITY, f64::min)
        .max(1.0)
        .log10();
    let lmax = xs.iter().cloned().fold(0.0, f64::max).max(1.0).log10();
    let (lmin, lmax) = if xs.is_empty() {
        (0.0, 1.0)
    } else {
        (lmin, lmax)
    };
    let pad = ((lmax - lmin) * 0.08).max(0.15);
    let (lo, hi) = (lmin - pad, lmax + pad);
    let ys: Vec<f64> = rows.iter().map(|r| 100.0 * r.top1 as f64).collect();
    let ymin = ys.iter().cloned().fold(f64::INFINITY, f64::min);
    let ymax = ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (ymin, ymax) = if ys.is_empty() {
        (0.0, 100.0)
    } else if ymax - ymin < 1.0 {
        (ymin - 1.0, ymax + 1.0)
    } else {
        (ymin, ymax)
    };
    let step = nice_step(ymax - ymin, 5.0);
    let ylo = ((ymin / step).floor() * step).max(0.0);
    let mut yhi = ((ymax / step).ceil() * step).min(100.0);
    if yhi <= ylo {
        yhi = ylo + step;
    }
    let px = |v: f64| x0 + (v.max(1.0).log10() - lo) / (hi - lo) * (x1 - x0);
    let py = |v: f64| y1 - (v - ylo) / (yhi - ylo) * (y1 - y0);
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{x0}" y="22" font-size="15">Top-1 accuracy vs ReLU count</text>"#
    );
    let subtitle: String = if title.chars().count() > 110 {
        let tail: String = title.chars().rev().take(109).collect();
        format!("…{}", tail.chars().rev().collect::<String>())
    } else {
        title.to_string()
    };
    let _ = writeln!(
        s,
        r##"<text x="{x0}" y="40" font-size="11" fill="#555">{}</text>"##,
        xml(&subtitle)
    );
    // Grid and ticks: x at 1, 2, 5 × 10^k inside the range; y at the nice step.
    let _ = writeln!(s, r##"<g class="x-axis" stroke="#888">"##);
    let mut k = lo.floor() as i32;
    while (k as f64) <= hi.ceil() {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(k);
            let l = v.log10();
            if l < lo || l > hi {
                continue;
            }
            let x = px(v);
            let major = m == 1.0;
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="{}" stroke-width="1"/>"##,
                if major { "#ccc" } else { "#eee" }
            );
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{y1}" x2="{x:.1}" y2="{}" stroke-width="1"/>"#,
                y1 + 5.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle" stroke="none" fill="black">{}</text>"#,
                y1 + 19.0,
                count_label(v)
            );
        }
        k += 1;
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, r##"<g class="y-axis" stroke="#888">"##);
    let mut v = ylo;
    while v <= yhi + step * 1e-6 {
        let y = py(v);
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#eee" stroke-width="1"/>"##
        );
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{y:.1}" x2="{x0}" y2="{y:.1}" stroke-width="1"/>"#,
            x0 - 5.0
        );
        let label = if step >= 1.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end" stroke="none" fill="black">{label}</text>"#,
            x0 - 8.0,
            y + 4.0
        );
        v += step;
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(
        s,
        r#"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        x1 - x0,
        y1 - y0
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">ReLUs kept (log scale)</text>"#,
        (x0 + x1) / 2.0,
        y1 + 42.0
    );
    let _ = writeln!(
        s,
        r#"<text x="22" y="{}" text-anchor="middle" transform="rotate(-90 22 {})">top-1 accuracy (%)</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0
    );
    let mut legend: Vec<(String, String, bool)> = Vec::new();
    if let Some(b) = baseline {
        let y = py(100.0 * b.top1 as f64);
        let _ = writeln!(
            s,
            r##"<line class="baseline" x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}" stroke="#555" stroke-width="1.5" stroke-dasharray="6 4"/>"##
        );
        legend.push((
            format!(
                "all-ReLU baseline ({:.2}%, {} ReLUs)",
                100.0 * b.top1,
                thousands(b.relus)
            ),
            "#555".into(),
            true,
        ));
    }
    for (i, m) in methods.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let mut pts: Vec<&&Row> = points.iter().filter(|r| r.method == *m).collect();
        pts.sort_by_key(|r| r.relus);
        let coords: Vec<String> = pts
            .iter()
            .map(|r| {
                format!(
                    "{:.1},{:.1}",
                    px(r.relus.max(1) as f64),
                    py(100.0 * r.top1 as f64)
                )
            })
            .collect();
        let _ = writeln!(s, r#"<g class="series" data-method="{}">"#, xml(m));
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            coords.join(" ")
        );
        for r in &pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{color}"><title>{}</title></circle>"#,
                px(r.relus.max(1) as f64),
                py(100.0 * r.top1 as f64),
                xml(&format!(
                    "{m}: {} ReLUs (budget {}), top-1 {:.2}%, top-5 {:.2}%",
                    r.relus,
                    r.budget.map_or("-".into(), |b| b.to_string()),
                    100.0 * r.top1,
                    100.0 * r.top5
                ))
            );
        }
        let _ = writeln!(s, "</g>");
        legend.push((m.to_string(), color.to_string(), false));
    }
    let _ = writeln!(s, r#"<g class="legend">"#);
    for (i, (label, color, dashed)) in legend.iter().enumerate() {
        let y = y0 + 12.0 + 22.0 * i as f64;
        let lx = x1 + 16.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="2"{}/>"#,
            lx + 26.0,
            if *dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            }
        );
        if !dashed {
            let _ = writeln!(
                s,
                r#"<circle cx="{}" cy="{y}" r="4" fill="{color}"/>"#,
                lx + 13.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">{}</text>"#,
            lx + 32.0,
            y + 4.0,
            xml(label)
        );
    }
    let _ = writeln!(s, "</g>");
    let _ = writeln!(s, "</svg>");
    s
}
