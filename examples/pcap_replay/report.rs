//! What a replay found, as an aligned table, side-by-side comparison, or JSON.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Coefficient of variation (population standard deviation / mean) of `xs`; `None` for
/// no values or a zero mean.
#[must_use]
pub fn cv(xs: &[f64]) -> Option<f64> {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.is_empty() || mean == 0.0 {
        return None;
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    Some(var.sqrt() / mean)
}

/// The largest value over the mean (1.0 is perfect balance, as the Maglev paper reports
/// imbalance); `None` for no values or a zero mean.
#[must_use]
pub fn max_mean(xs: &[f64]) -> Option<f64> {
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    if xs.is_empty() || mean == 0.0 {
        return None;
    }
    Some(xs.iter().copied().fold(f64::MIN, f64::max) / mean)
}

/// Packet outcomes.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PacketCounts {
    /// Frames read.
    pub input: u64,
    /// Frames without an IP packet (ARP, ...): not given to the Director, counted as passed.
    pub not_ip: u64,
    /// `Verdict::Forward`.
    pub forwarded: u64,
    /// `Verdict::Local`.
    pub local: u64,
    /// `Verdict::Pass` (not for a virtual service), `not_ip` included.
    pub passed: u64,
    /// Of `passed`: addressed to a virtual service (a connection the Director did not see
    /// start, e.g. TCP without SYN).
    pub passed_to_service: u64,
    /// `Verdict::Reply` (the Director generated an ICMP error).
    pub replied: u64,
    /// `Verdict::Drop`, all reasons.
    pub dropped: u64,
    /// Drops by reason.
    pub dropped_by_reason: BTreeMap<String, u64>,
    /// Packets written to `--output`.
    pub written: u64,
}

/// Connection counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ConnCounts {
    /// `Event::ConnCreated`.
    pub created: u64,
    /// `Event::ConnExpired`.
    pub expired: u64,
    /// Connections and templates in the table when the capture ended.
    pub in_table_at_end: u64,
    /// New connections of persistent services that found a live persistence template
    /// (counted by this tool: the Director does not report it, see the module docs).
    pub persistence_hits: u64,
    /// New connections of persistent services that created their template.
    pub persistence_misses: u64,
}

/// Event counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct EventCounts {
    /// `Event::ServerOverloaded`.
    pub server_overloaded: u64,
    /// `Event::ServerRecovered`.
    pub server_recovered: u64,
    /// `Event::TableFull`.
    pub table_full: u64,
    /// `Event::DefenseChanged`.
    pub defense_changed: u64,
}

/// One real server.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ServerReport {
    /// `addr:port`.
    pub server: String,
    /// Weight at the end (or when removed).
    pub weight: u32,
    /// Forwarding method.
    pub method: String,
    /// Connections scheduled to it.
    pub conns: u64,
    /// Packets forwarded to it.
    pub packets: u64,
    /// Bytes forwarded to it (as received).
    pub bytes: u64,
    /// Its share of the service's connections.
    pub share: f64,
    /// Removed by the churn script.
    pub removed: bool,
}

/// Spread of connections over a service's servers.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Imbalance {
    /// Coefficient of variation of connections per server (servers present at the end).
    pub cv: Option<f64>,
    /// Max / mean of connections per server.
    pub max_mean: Option<f64>,
    /// The same of connections per unit of weight (servers of weight > 0): 0 and 1 when
    /// the scheduler honours the weights exactly.
    pub cv_per_weight: Option<f64>,
    /// Max / mean of connections per unit of weight.
    pub max_mean_per_weight: Option<f64>,
}

/// One virtual service.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ServiceReport {
    /// As `ipvsadm -L -n` names it.
    pub service: String,
    /// Scheduler.
    pub scheduler: String,
    /// Persistence timeout.
    pub persistent: Option<u32>,
    /// Connections of the service.
    pub conns: u64,
    /// Real servers.
    pub servers: Vec<ServerReport>,
    /// Spread.
    pub imbalance: Imbalance,
}

/// One applied churn line.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ChurnLine {
    /// Script line.
    pub line: usize,
    /// Seconds after the first packet it was due (the script's time).
    pub due_s: f64,
    /// Seconds after the first packet when it applied: the first packet at or after
    /// its time.
    pub at_s: f64,
    /// The change, as written.
    pub change: String,
    /// Services it changed.
    pub services: u32,
    /// Why it did nothing / failed for some service.
    pub errors: Vec<String>,
}

/// Churn outcome.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ChurnReport {
    /// Changes applied.
    pub changes: Vec<ChurnLine>,
    /// Client flows (5-tuples) forwarded.
    pub flows: u64,
    /// Flows with packets before and after some change.
    pub flows_across_change: u64,
    /// Of those, flows forwarded to another real server after the change.
    pub flows_moved: u64,
    /// Of those, flows dropped after the change because their server was removed.
    pub flows_broken: u64,
    /// `flows_moved / flows_across_change`.
    pub moved_fraction: Option<f64>,
}

/// A whole replay.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Report {
    /// The input.
    pub input: String,
    /// Where the services came from.
    pub setup: String,
    /// Scheduler override (`None`: as configured).
    pub scheduler_override: Option<String>,
    /// Packets.
    pub packets: PacketCounts,
    /// Connections.
    pub connections: ConnCounts,
    /// Events.
    pub events: EventCounts,
    /// Services.
    pub services: Vec<ServiceReport>,
    /// Churn, when a script ran.
    pub churn: Option<ChurnReport>,
    /// Capture time covered, seconds.
    pub capture_seconds: f64,
    /// Wall-clock time of the replay, seconds.
    #[serde(skip)]
    pub wall_seconds: f64,
}

impl Report {
    /// Packets per second of wall time.
    #[must_use]
    pub fn pps(&self) -> f64 {
        if self.wall_seconds > 0.0 {
            self.packets.input as f64 / self.wall_seconds
        } else {
            0.0
        }
    }
}

/// Fills `share` and `imbalance` of a service from its servers.
pub fn finish_service(s: &mut ServiceReport) {
    let total: u64 = s.servers.iter().map(|x| x.conns).sum();
    s.conns = total;
    for x in &mut s.servers {
        x.share = if total == 0 {
            0.0
        } else {
            x.conns as f64 / total as f64
        };
    }
    let live: Vec<&ServerReport> = s.servers.iter().filter(|x| !x.removed).collect();
    let c: Vec<f64> = live.iter().map(|x| x.conns as f64).collect();
    let w: Vec<f64> = live
        .iter()
        .filter(|x| x.weight > 0)
        .map(|x| x.conns as f64 / f64::from(x.weight))
        .collect();
    s.imbalance = Imbalance {
        cv: cv(&c),
        max_mean: max_mean(&c),
        cv_per_weight: cv(&w),
        max_mean_per_weight: max_mean(&w),
    };
}

fn opt(x: Option<f64>, prec: usize) -> String {
    x.map_or_else(|| "-".to_owned(), |v| format!("{v:.prec$}"))
}

/// A simple aligned table: first column left, others right.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut w = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            if i == 0 {
                line.push_str(c);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str("  ");
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn row(cells: &[&dyn std::fmt::Display]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// The human-readable report.
#[must_use]
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "input:    {}", r.input);
    let _ = writeln!(o, "services: {}", r.setup);
    if let Some(s) = &r.scheduler_override {
        let _ = writeln!(o, "scheduler override: {s}");
    }
    let _ = writeln!(o, "capture:  {:.3} s\n", r.capture_seconds);
    let p = &r.packets;
    let pct = |x: u64| {
        if p.input == 0 {
            String::from("-")
        } else {
            format!("{:.1}%", 100.0 * x as f64 / p.input as f64)
        }
    };
    let mut rows = vec![row(&[&"packets", &"count", &"share"])];
    rows.push(row(&[&"in", &p.input, &""]));
    rows.push(row(&[&"forwarded", &p.forwarded, &pct(p.forwarded)]));
    rows.push(row(&[&"local", &p.local, &pct(p.local)]));
    rows.push(row(&[&"passed", &p.passed, &pct(p.passed)]));
    rows.push(row(&[&"  of which not IP", &p.not_ip, &pct(p.not_ip)]));
    rows.push(row(&[
        &"  of which to a service",
        &p.passed_to_service,
        &pct(p.passed_to_service),
    ]));
    rows.push(row(&[&"replied (ICMP)", &p.replied, &pct(p.replied)]));
    rows.push(row(&[&"dropped", &p.dropped, &pct(p.dropped)]));
    for (k, v) in &p.dropped_by_reason {
        rows.push(row(&[&format!("  {k}"), v, &pct(*v)]));
    }
    if p.written > 0 {
        rows.push(row(&[&"written to output", &p.written, &""]));
    }
    o.push_str(&table(&rows));
    o.push('\n');
    let c = &r.connections;
    let e = &r.events;
    let rows = vec![
        row(&[&"connections", &"count"]),
        row(&[&"created", &c.created]),
        row(&[&"expired", &c.expired]),
        row(&[&"in table at end", &c.in_table_at_end]),
        row(&[&"persistence hits", &c.persistence_hits]),
        row(&[&"persistence misses", &c.persistence_misses]),
        row(&[&"events: server overloaded", &e.server_overloaded]),
        row(&[&"events: server recovered", &e.server_recovered]),
        row(&[&"events: table full", &e.table_full]),
        row(&[&"events: defence changed", &e.defense_changed]),
    ];
    o.push_str(&table(&rows));
    for s in &r.services {
        let _ = writeln!(
            o,
            "\n{}  {}{}  ({} connections)",
            s.service,
            s.scheduler,
            s.persistent
                .map(|p| format!(" persistent {p}"))
                .unwrap_or_default(),
            s.conns
        );
        let mut rows = vec![row(&[
            &"  -> server",
            &"method",
            &"weight",
            &"conns",
            &"share",
            &"packets",
            &"bytes",
        ])];
        for x in &s.servers {
            let name = if x.removed {
                format!("  -> {} (removed)", x.server)
            } else {
                format!("  -> {}", x.server)
            };
            rows.push(row(&[
                &name,
                &x.method,
                &x.weight,
                &x.conns,
                &format!("{:.1}%", 100.0 * x.share),
                &x.packets,
                &x.bytes,
            ]));
        }
        o.push_str(&table(&rows));
        let i = &s.imbalance;
        let _ = writeln!(
            o,
            "  imbalance: CV {} max/mean {}; per unit of weight: CV {} max/mean {}",
            opt(i.cv, 3),
            opt(i.max_mean, 3),
            opt(i.cv_per_weight, 3),
            opt(i.max_mean_per_weight, 3)
        );
    }
    if let Some(ch) = &r.churn {
        let _ = writeln!(o, "\nchurn:");
        for l in &ch.changes {
            let _ = writeln!(
                o,
                "  line {:>3} due {:>8.3} s, applied {:>8.3} s: {} ({} service{}){}",
                l.line,
                l.due_s,
                l.at_s,
                l.change,
                l.services,
                if l.services == 1 { "" } else { "s" },
                if l.errors.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", l.errors.join("; "))
                }
            );
        }
        let _ = writeln!(
            o,
            "  flows {}; alive across a change {}; moved to another server {} ({}); broken (server removed) {}",
            ch.flows,
            ch.flows_across_change,
            ch.flows_moved,
            ch.moved_fraction
                .map_or_else(|| "-".into(), |f| format!("{:.2}%", 100.0 * f)),
            ch.flows_broken
        );
    }
    o
}

/// The reports of one input replayed with several schedulers, one column each.
#[must_use]
pub fn render_compare(reports: &[Report]) -> String {
    let mut o = String::new();
    let Some(first) = reports.first() else {
        return o;
    };
    let _ = writeln!(o, "input:    {}", first.input);
    let _ = writeln!(o, "services: {}", first.setup);
    let _ = writeln!(
        o,
        "packets:  {} in, capture {:.3} s\n",
        first.packets.input, first.capture_seconds
    );
    let name = |r: &Report| r.scheduler_override.clone().unwrap_or_else(|| "-".into());
    let mut head = vec![String::from("scheduler")];
    head.extend(reports.iter().map(name));
    let mut rows = vec![head];
    let line = |label: &str, f: &dyn Fn(&Report) -> String| {
        let mut v = vec![label.to_owned()];
        v.extend(reports.iter().map(f));
        v
    };
    rows.push(line("forwarded", &|r| r.packets.forwarded.to_string()));
    rows.push(line("passed", &|r| r.packets.passed.to_string()));
    rows.push(line("dropped", &|r| r.packets.dropped.to_string()));
    rows.push(line("replied", &|r| r.packets.replied.to_string()));
    rows.push(line("conns created", &|r| {
        r.connections.created.to_string()
    }));
    rows.push(line("persistence hits", &|r| {
        r.connections.persistence_hits.to_string()
    }));
    rows.push(line("Mpps", &|r| format!("{:.2}", r.pps() / 1e6)));
    for (si, s) in first.services.iter().enumerate() {
        rows.push(vec![String::new()]);
        rows.push(vec![s.service.clone()]);
        for (xi, x) in s.servers.iter().enumerate() {
            rows.push(line(&format!("  -> {} w{}", x.server, x.weight), &|r| {
                r.services
                    .get(si)
                    .and_then(|s| s.servers.get(xi))
                    .map_or_else(|| "-".into(), |x| x.conns.to_string())
            }));
        }
        let imb = |f: fn(&Imbalance) -> Option<f64>| {
            move |r: &Report| opt(r.services.get(si).and_then(|s| f(&s.imbalance)), 3)
        };
        rows.push(line("  CV", &imb(|i| i.cv)));
        rows.push(line("  max/mean", &imb(|i| i.max_mean)));
        rows.push(line("  CV per weight", &imb(|i| i.cv_per_weight)));
        rows.push(line(
            "  max/mean per weight",
            &imb(|i| i.max_mean_per_weight),
        ));
    }
    if first.churn.is_some() {
        rows.push(vec![String::new()]);
        rows.push(line("churn: flows moved", &|r| {
            r.churn
                .as_ref()
                .map_or_else(|| "-".into(), |c| c.flows_moved.to_string())
        }));
        rows.push(line("churn: moved fraction", &|r| {
            r.churn
                .as_ref()
                .and_then(|c| c.moved_fraction)
                .map_or_else(|| "-".into(), |f| format!("{:.2}%", 100.0 * f))
        }));
    }
    o.push_str(&table(&rows));
    o
}
