//! The benchmark report: a table, JSON, and an SVG chart (written by hand: a few lines of
//! markup need no plotting crate).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// One workload's figures.
#[derive(Debug, Clone, Default)]
pub struct Measurement {
    /// Workload name.
    pub name: &'static str,
    /// Session, seconds.
    pub ours: Option<f64>,
    /// Session, peak RSS growth in MB.
    pub ours_mb: Option<f64>,
    /// Hand-written tokio-postgres, seconds.
    pub hand: Option<f64>,
    /// SQLAlchemy asyncio ORM, seconds.
    pub sqla: Option<f64>,
}

impl Measurement {
    /// ours / hand-written.
    pub fn ratio(&self) -> Option<f64> {
        Some(self.ours? / self.hand?)
    }
}

/// All workloads of one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The N of the run.
    pub n: usize,
    /// In run order.
    pub rows: Vec<Measurement>,
    /// memory_load (measured once, not a median).
    pub memory: Option<super::memory::Memory>,
    /// replica_reads (its own medians).
    pub replica_reads: Option<super::replica::ReplicaReads>,
}

impl Report {
    pub(crate) fn new(n: usize) -> Self {
        Report {
            n,
            rows: Vec::new(),
            memory: None,
            replica_reads: None,
        }
    }

    /// Per workload and figure, the median of `runs`.
    pub(crate) fn median(runs: Vec<Report>) -> Report {
        let Some(first) = runs.first() else {
            return Report::new(0);
        };
        let mut out = Report::new(first.n);
        let names: Vec<&'static str> = first.rows.iter().map(|r| r.name).collect();
        for name in names {
            let pick = |f: fn(&Measurement) -> Option<f64>| {
                let mut v: Vec<f64> = runs
                    .iter()
                    .filter_map(|r| r.rows.iter().find(|m| m.name == name).and_then(f))
                    .collect();
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied()
            };
            let row = out.row(name);
            row.ours = pick(|m| m.ours);
            row.ours_mb = pick(|m| m.ours_mb);
            row.hand = pick(|m| m.hand);
            row.sqla = pick(|m| m.sqla);
        }
        out
    }

    fn row(&mut self, name: &'static str) -> &mut Measurement {
        if let Some(i) = self.rows.iter().position(|r| r.name == name) {
            return &mut self.rows[i];
        }
        self.rows.push(Measurement {
            name,
            ..Measurement::default()
        });
        let last = self.rows.len() - 1;
        &mut self.rows[last]
    }

    pub(crate) fn ours(&mut self, name: &'static str, t: Duration, mb: f64) {
        let row = self.row(name);
        row.ours = Some(t.as_secs_f64());
        row.ours_mb = Some(mb);
    }

    pub(crate) fn hand(&mut self, name: &'static str, t: Duration, _mb: f64) {
        self.row(name).hand = Some(t.as_secs_f64());
    }

    /// Runs SQLAlchemy's script against `url` and records its seconds.
    pub(crate) fn sqlalchemy(&mut self, script: &Path, url: &str, n: usize) -> Result<(), String> {
        let out = Command::new("python3")
            .arg(script)
            .arg(n.to_string())
            .env("DATABASE_URL", url)
            .output()
            .map_err(|e| format!("running {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} failed (pip install sqlalchemy asyncpg?):\n{}",
                script.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let json = String::from_utf8_lossy(&out.stdout).into_owned();
        for name in [
            "insert_flush",
            "load_eager",
            "get_by_pk",
            "update_dirty",
            "request_mix",
            "factory_overhead",
        ] {
            if let Some(v) = json_number(&json, name) {
                self.row(name).sqla = Some(v);
            }
        }
        Ok(())
    }

    /// The table printed by `bench`.
    pub fn table(&self) -> String {
        let mut out = format!(
            "N = {} (medians)\n{:<18} {:>10} {:>12} {:>8} {:>12} {:>10} {:>12}\n",
            self.n,
            "workload",
            "ours (s)",
            "hand (s)",
            "ratio",
            "SQLAlchemy",
            "vs SQLA",
            "peak RSS MB"
        );
        let f = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
        for r in &self.rows {
            let vs = match (r.sqla, r.ours) {
                (Some(s), Some(o)) if o > 0.0 => format!("{:.1}x", s / o),
                _ => "-".into(),
            };
            let _ = writeln!(
                out,
                "{:<18} {:>10} {:>12} {:>8} {:>12} {:>10} {:>12}",
                r.name,
                f(r.ours, 4),
                f(r.hand, 4),
                f(r.ratio(), 2),
                f(r.sqla, 3),
                vs,
                f(r.ours_mb, 1)
            );
        }
        if let Some(m) = &self.memory {
            out.push_str(&memory_table(m));
        }
        if let Some(r) = &self.replica_reads {
            out.push_str(&r.table());
        }
        out
    }

    /// The same as JSON.
    pub fn json(&self) -> String {
        let num = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.6}"));
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"workload\":\"{}\",\"ours_s\":{},\"hand_s\":{},\"ratio\":{},\"sqlalchemy_s\":{},\"peak_rss_mb\":{}}}",
                    r.name,
                    num(r.ours),
                    num(r.hand),
                    num(r.ratio()),
                    num(r.sqla),
                    num(r.ours_mb)
                )
            })
            .collect();
        let memory = self.memory.as_ref().map_or("null".to_string(), memory_json);
        let replica = self
            .replica_reads
            .as_ref()
            .map_or("null".to_string(), super::replica::ReplicaReads::json);
        format!(
            "{{\"n\":{},\"workloads\":[{}],\"memory\":{memory},\"replica_reads\":{replica}}}\n",
            self.n,
            rows.join(",")
        )
    }

    /// A grouped bar chart of seconds on a log scale (ours, hand-written, SQLAlchemy).
    pub fn svg(&self) -> String {
        let rows: Vec<&Measurement> = self.rows.iter().filter(|r| r.ours.is_some()).collect();
        let (w, row_h, left) = (760.0, 54.0, 150.0);
        let h = 60.0 + row_h * rows.len() as f64;
        let (lo, hi) = (1e-3f64.log10(), 100f64.log10());
        let x = |s: f64| left + (s.max(1e-3).log10() - lo) / (hi - lo) * (w - left - 20.0);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n\
             <text x=\"10\" y=\"20\" font-size=\"14\">Seconds, log scale (N = {}): \
             <tspan fill=\"#1b7837\">ours</tspan>, <tspan fill=\"#762a83\">hand-written \
             tokio-postgres</tspan>, <tspan fill=\"#d6604d\">SQLAlchemy</tspan></text>\n",
            self.n
        );
        for p in [-3i32, -2, -1, 0, 1, 2] {
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
        for (i, r) in rows.iter().enumerate() {
            let y = 36.0 + row_h * i as f64;
            let _ = writeln!(
                svg,
                "<text x=\"10\" y=\"{:.1}\">{}</text>",
                y + 24.0,
                r.name
            );
            for (k, (v, color)) in [
                (r.ours, "#1b7837"),
                (r.hand, "#762a83"),
                (r.sqla, "#d6604d"),
            ]
            .into_iter()
            .enumerate()
            {
                if let Some(v) = v {
                    let _ = writeln!(
                        svg,
                        "<rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" fill=\"{color}\"/>\
                         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{v:.3}s</text>",
                        y + 14.0 * k as f64,
                        (x(v) - left).max(1.0),
                        x(v) + 4.0,
                        y + 14.0 * k as f64 + 10.0
                    );
                }
            }
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// The memory_load lines of the table.
fn memory_table(m: &super::memory::Memory) -> String {
    let mb = |kb: u64| kb as f64 / 1024.0;
    let t = &m.tracked;
    format!(
        "\nmemory_load: {} objects of A loaded (each side in a process of its own)\n\
         {:<18} {:>10} {:>12} {:>8}\n\
         {:<18} {:>10.1} {:>12.1} {:>8.2}\n\
         {:<18} {:>10.1} {:>12.1} {:>8.2}\n\
         bytes per tracked object beside the value: cell {} + identity-map entry {} + handle {} \
         = {} (the plain struct A: {} bytes, its fields' heap not counted); per object \
         measured: ours {:.0}, plain {:.0}\n",
        m.n,
        "RSS growth",
        "ours (MB)",
        "plain (MB)",
        "ratio",
        "after the load",
        mb(m.ours.rss_kb),
        mb(m.plain.rss_kb),
        m.ratio(),
        "peak",
        mb(m.ours.peak_kb),
        mb(m.plain.peak_kb),
        m.peak_ratio(),
        t.cell,
        t.identity_entry,
        t.handle,
        t.overhead(),
        t.value,
        m.ours.rss_kb as f64 * 1024.0 / m.n.max(1) as f64,
        m.plain.rss_kb as f64 * 1024.0 / m.n.max(1) as f64,
    )
}

/// memory_load as a JSON object.
fn memory_json(m: &super::memory::Memory) -> String {
    let t = &m.tracked;
    format!(
        "{{\"n\":{},\"ours_rss_kb\":{},\"plain_rss_kb\":{},\"ratio\":{:.3},\
         \"ours_peak_kb\":{},\"plain_peak_kb\":{},\"peak_ratio\":{:.3},\
         \"tracked_bytes\":{{\"cell\":{},\"identity_entry\":{},\"handle\":{},\
         \"overhead\":{},\"value\":{}}}}}",
        m.n,
        m.ours.rss_kb,
        m.plain.rss_kb,
        m.ratio(),
        m.ours.peak_kb,
        m.plain.peak_kb,
        m.peak_ratio(),
        t.cell,
        t.identity_entry,
        t.handle,
        t.overhead(),
        t.value
    )
}

/// The number after `"name":` in a flat JSON object.
fn json_number(json: &str, name: &str) -> Option<f64> {
    let key = format!("\"{name}\":");
    let rest = json[json.find(&key)? + key.len()..].trim_start();
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::json_number;

    #[test]
    fn reads_sqlalchemys_json() {
        let j = r#"{"n": 100, "insert_flush": 0.25, "load_eager": 1e-2}"#;
        assert_eq!(json_number(j, "insert_flush"), Some(0.25));
        assert_eq!(json_number(j, "load_eager"), Some(0.01));
        assert_eq!(json_number(j, "missing"), None);
    }
}
