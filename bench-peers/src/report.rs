//! Medians per workload and side, the printed table and the JSON.

use std::fmt::Write as _;
use std::time::Duration;

use session_tools::bench::peers::WORKLOADS;

use crate::SIDES;

/// Seconds per run, workload and side.
pub struct Report {
    n: usize,
    runs: Vec<Vec<[Option<f64>; SIDES.len()]>>,
}

/// The lock file, for the versions of the peers measured.
const LOCK: &str = include_str!("../Cargo.lock");

/// The locked version of `package`.
fn version(package: &str) -> String {
    let key = format!("name = \"{package}\"\nversion = \"");
    LOCK.find(&key)
        .and_then(|at| {
            let rest = &LOCK[at + key.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .unwrap_or_else(|| "?".into())
}

impl Report {
    /// An empty report for `n` objects per workload.
    pub fn new(n: usize) -> Self {
        Report {
            n,
            runs: Vec::new(),
        }
    }

    /// Records `side`'s time on workload `step` in run `run`.
    pub fn record(&mut self, run: usize, step: usize, side: usize, time: Duration) {
        while self.runs.len() <= run {
            self.runs.push(vec![[None; SIDES.len()]; WORKLOADS.len()]);
        }
        self.runs[run][step][side] = Some(time.as_secs_f64());
    }

    /// The median of `side` on `step` over the runs (the upper one of an even count).
    fn median(&self, step: usize, side: usize) -> Option<f64> {
        let mut v: Vec<f64> = self.runs.iter().filter_map(|r| r[step][side]).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }

    /// `side` / hand-written on `step`.
    fn ratio(&self, step: usize, side: usize) -> Option<f64> {
        Some(self.median(step, side)? / self.median(step, 0)?)
    }

    /// The printed table: seconds, and each side's ratio to the hand-written side.
    pub fn table(&self) -> String {
        let mut out = format!(
            "N = {}, medians of {} run(s); (x) = seconds / hand-written tokio-postgres\n\
             sqlx {}, sea-orm {}, diesel {} + diesel-async {}\n{:<14}",
            self.n,
            self.runs.len(),
            version("sqlx"),
            version("sea-orm"),
            version("diesel"),
            version("diesel-async"),
            "workload"
        );
        for side in SIDES {
            let _ = write!(out, " {side:>17}");
        }
        out.push('\n');
        for (step, workload) in WORKLOADS.iter().enumerate() {
            let _ = write!(out, "{workload:<14}");
            for side in 0..SIDES.len() {
                let cell = match (self.median(step, side), self.ratio(step, side)) {
                    (Some(s), Some(r)) if side > 0 => format!("{s:.4} ({r:.2}x)"),
                    (Some(s), _) => format!("{s:.4}"),
                    _ => "-".into(),
                };
                let _ = write!(out, " {cell:>17}");
            }
            out.push('\n');
        }
        out
    }

    /// The same as JSON: per workload, each side's median seconds and ratio to hand-written.
    pub fn json(&self) -> String {
        let num = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.6}"));
        let key = |side: &str| side.replace('-', "_");
        let rows: Vec<String> = WORKLOADS
            .iter()
            .enumerate()
            .map(|(step, workload)| {
                let mut fields = vec![format!("\"workload\":\"{workload}\"")];
                for (side, name) in SIDES.iter().enumerate() {
                    fields.push(format!(
                        "\"{}_s\":{}",
                        key(name),
                        num(self.median(step, side))
                    ));
                }
                for (side, name) in SIDES.iter().enumerate().skip(1) {
                    fields.push(format!(
                        "\"{}_ratio\":{}",
                        key(name),
                        num(self.ratio(step, side))
                    ));
                }
                format!("{{{}}}", fields.join(","))
            })
            .collect();
        format!(
            "{{\"n\":{},\"runs\":{},\"versions\":{{\"sqlx\":\"{}\",\"sea_orm\":\"{}\",\
             \"diesel\":\"{}\",\"diesel_async\":\"{}\"}},\"workloads\":[\n{}\n]}}\n",
            self.n,
            self.runs.len(),
            version("sqlx"),
            version("sea-orm"),
            version("diesel"),
            version("diesel-async"),
            rows.join(",\n")
        )
    }

    /// A grouped bar chart of the medians on a log scale, one bar per side and workload.
    pub fn svg(&self) -> String {
        const COLORS: [&str; SIDES.len()] = ["#762a83", "#1b7837", "#2166ac", "#e08214", "#b2182b"];
        let bar = 11.0;
        let (w, row_h, left) = (780.0, bar * SIDES.len() as f64 + 14.0, 110.0);
        let h = 60.0 + row_h * WORKLOADS.len() as f64;
        let (lo, hi) = (1e-4f64.log10(), 100f64.log10());
        let x = |s: f64| left + (s.max(1e-4).log10() - lo) / (hi - lo) * (w - left - 60.0);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n\
             <text x=\"10\" y=\"20\" font-size=\"14\">Seconds, log scale (N = {}, medians of {}):",
            self.n,
            self.runs.len()
        );
        for (side, color) in SIDES.iter().zip(COLORS) {
            let _ = write!(svg, " <tspan fill=\"{color}\">{side}</tspan>");
        }
        svg.push_str("</text>\n");
        for p in -4i32..=2 {
            let s = 10f64.powi(p);
            let _ = writeln!(
                svg,
                "<line x1=\"{0:.1}\" y1=\"30\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#ddd\"/>\
                 <text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\" fill=\"#666\">{s}</text>",
                x(s),
                h - 20.0,
                h - 6.0
            );
        }
        for (step, workload) in WORKLOADS.iter().enumerate() {
            let y = 36.0 + row_h * step as f64;
            let _ = writeln!(
                svg,
                "<text x=\"10\" y=\"{:.1}\">{workload}</text>",
                y + row_h / 2.0
            );
            for (side, color) in COLORS.iter().enumerate() {
                let Some(v) = self.median(step, side) else {
                    continue;
                };
                let top = y + bar * side as f64;
                let _ = writeln!(
                    svg,
                    "<rect x=\"{left}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\">{v:.4}s</text>",
                    (x(v) - left).max(1.0),
                    bar - 1.0,
                    x(v) + 4.0,
                    top + bar - 2.0
                );
            }
        }
        svg.push_str("</svg>\n");
        svg
    }
}
