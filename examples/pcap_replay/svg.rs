//! A grouped bar chart of connections per real server, one group per scheduler and one
//! panel per service, as a self-contained SVG (no dependency, opens in any browser).

use crate::report::Report;
use std::fmt::Write as _;

const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart for `reports` (one per scheduler, same input and services).
#[must_use]
pub fn chart(reports: &[Report]) -> String {
    let Some(first) = reports.first() else {
        return String::from(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>\n",
        );
    };
    let groups = reports.len().max(1);
    let panel_h = 260.0;
    let top = 50.0;
    let left = 70.0;
    let bar_w = 9.0;
    let gap = 14.0;
    let max_servers = first
        .services
        .iter()
        .map(|s| s.servers.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let group_w = bar_w * max_servers as f64 + gap;
    let width = left + group_w * groups as f64 + 220.0;
    let height = top + (panel_h + 60.0) * first.services.len().max(1) as f64;
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        o,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="22" font-size="15">Connections per real server, by scheduler: {}</text>"#,
        esc(&first.input)
    );
    for (si, svc) in first.services.iter().enumerate() {
        let y0 = top + si as f64 * (panel_h + 60.0);
        let base = y0 + panel_h;
        let max = reports
            .iter()
            .filter_map(|r| r.services.get(si))
            .flat_map(|s| s.servers.iter().map(|x| x.conns))
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let _ = writeln!(
            o,
            r#"<text x="{left}" y="{:.1}" font-size="13">{}</text>"#,
            y0 + 8.0,
            esc(&svc.service)
        );
        // Axis and gridlines at quarters of the maximum.
        for q in 0..=4 {
            let v = max * f64::from(q) / 4.0;
            let y = base - (panel_h - 20.0) * f64::from(q) / 4.0;
            let _ = writeln!(
                o,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v:.0}</text>"##,
                left + group_w * groups as f64,
                left - 6.0,
                y + 4.0
            );
        }
        for (gi, r) in reports.iter().enumerate() {
            let gx = left + gi as f64 * group_w + gap / 2.0;
            if let Some(s) = r.services.get(si) {
                for (xi, x) in s.servers.iter().enumerate() {
                    let h = (panel_h - 20.0) * x.conns as f64 / max;
                    let _ = writeln!(
                        o,
                        r#"<rect x="{:.1}" y="{:.1}" width="{bar_w}" height="{h:.1}" fill="{}"><title>{} {}: {} conns ({:.1}%)</title></rect>"#,
                        gx + xi as f64 * bar_w,
                        base - h,
                        PALETTE[xi % PALETTE.len()],
                        esc(r.scheduler_override.as_deref().unwrap_or("-")),
                        esc(&x.server),
                        x.conns,
                        100.0 * x.share
                    );
                }
            }
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                gx + bar_w * max_servers as f64 / 2.0,
                base + 14.0,
                esc(r.scheduler_override.as_deref().unwrap_or("as configured"))
            );
        }
        // Legend.
        let lx = left + group_w * groups as f64 + 20.0;
        for (xi, x) in svc.servers.iter().enumerate() {
            let ly = y0 + 24.0 + xi as f64 * 16.0;
            let _ = writeln!(
                o,
                r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}">{} (w{})</text>"#,
                ly - 9.0,
                PALETTE[xi % PALETTE.len()],
                lx + 14.0,
                ly,
                esc(&x.server),
                x.weight
            );
        }
    }
    o.push_str("</svg>\n");
    o
}
