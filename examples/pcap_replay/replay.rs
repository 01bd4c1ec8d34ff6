//! The drive loop: frames in capture order through one Director, its clock the capture's.
//!
//! Before each packet, every timer the Director asked for (`poll_timeout`) that falls due
//! before the packet's timestamp is run at its own time, then every churn change due. The
//! IP packet is copied into one reused `PacketBuf` with headroom (no allocation per
//! packet), handed to `handle_packet`, and the verdict counted and written out.
//!
//! Persistence: the Director reports each template it makes (`Event::TemplateCreated`,
//! a miss) and each new connection that found its client's template
//! (`Event::PersistenceHit`).

use crate::churn::{Change, Op};
use crate::config::{Method, Setup};
use crate::input::{Capture, locate_l3};
use crate::output::Output;
use crate::report::{
    ChurnLine, ChurnReport, ConnCounts, EventCounts, PacketCounts, Report, ServerReport,
    ServiceReport, finish_service,
};
use lvs::forward::tunnel::{GueChecksum, TunnelKind};
use lvs::scheduler::{DestId, ForwardMethod, RealServerConfig};
use lvs::service::{Protocol, SchedulerName, ServiceKey};
use lvs::{DropReason, Event, Instant, PacketBuf, PacketMeta, PacketSummary, ServiceId, Verdict};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};

/// Where packets come from: a capture or the generator.
pub trait Source {
    /// Number of frames.
    fn count(&self) -> usize;
    /// Frame `i`: timestamp (µs since the epoch), link type, bytes.
    fn frame(&mut self, i: usize) -> (i64, u32, &[u8]);
    /// A name for the report.
    fn name(&self) -> String;
}

/// A capture file.
pub struct CaptureSource<'a> {
    /// The capture.
    pub cap: &'a Capture,
    /// Its path.
    pub path: String,
}

impl Source for CaptureSource<'_> {
    fn count(&self) -> usize {
        self.cap.frames.len()
    }
    fn frame(&mut self, i: usize) -> (i64, u32, &[u8]) {
        let f = self.cap.frames[i];
        (f.ts_micros, f.linktype, self.cap.frame(i))
    }
    fn name(&self) -> String {
        format!("{} ({} frames)", self.path, self.cap.frames.len())
    }
}

impl Source for crate::workload::Workload {
    fn count(&self) -> usize {
        self.len()
    }
    fn frame(&mut self, i: usize) -> (i64, u32, &[u8]) {
        let (ts, p) = self.packet(i);
        (ts, crate::input::LINKTYPE_RAW, p)
    }
    fn name(&self) -> String {
        format!(
            "built-in workload ({} packets, {} possible clients)",
            self.len(),
            self.clients()
        )
    }
}

/// What became of an output packet's input frame (for tests and `--output` checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emitted {
    /// Forwarded to this next hop by this method.
    Forward(IpAddr, ForwardMethod),
    /// An ICMP error to the sender.
    Reply,
    /// Passed unchanged.
    Pass,
}

/// Replay options.
pub struct Options<'a, W: Write> {
    /// Seed of the Director.
    pub seed: [u8; 32],
    /// Replace every service's scheduler.
    pub scheduler: Option<SchedulerName>,
    /// Write emitted packets here.
    pub output: Option<&'a mut Output<W>>,
    /// Also write passed packets (unchanged) to the output.
    pub output_pass: bool,
    /// Real-server changes.
    pub churn: &'a [Change],
    /// Draw a progress bar on stderr (only if it is a terminal and the run takes > 1 s).
    pub progress: bool,
    /// Record, per output packet, its input frame index and what happened to it.
    pub origins: Option<&'a mut Vec<(usize, Emitted)>>,
}

/// Why a replay stopped.
#[derive(Debug)]
pub enum ReplayError {
    /// The configuration.
    Config(crate::config::ConfigError),
    /// Writing the output.
    Output(pcap_file::PcapError),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => write!(f, "{e}"),
            Self::Output(e) => write!(f, "writing output: {e}"),
        }
    }
}

impl std::error::Error for ReplayError {}

const REASONS: [&str; 10] = [
    "malformed",
    "rewrite refused",
    "fragment",
    "table full",
    "defence",
    "server removed",
    "no server",
    "too big",
    "no tunnel source",
    "other",
];

fn reason_index(r: DropReason) -> usize {
    match r {
        DropReason::Malformed(_) => 0,
        DropReason::Rewrite(_) => 1,
        DropReason::Fragment => 2,
        DropReason::TableFull => 3,
        DropReason::Defense => 4,
        DropReason::ServerRemoved => 5,
        DropReason::NoServer => 6,
        DropReason::TooBig => 7,
        DropReason::NoTunnelSource => 8,
        _ => 9,
    }
}

/// The forwarding method of the command line as the engine has it.
#[must_use]
pub const fn forward_method(m: Method) -> ForwardMethod {
    match m {
        Method::Nat => ForwardMethod::Nat,
        Method::Dr => ForwardMethod::DirectRoute,
        Method::Ipip => ForwardMethod::Tunnel(TunnelKind::Ipip),
        Method::Gue => ForwardMethod::Tunnel(TunnelKind::Gue {
            port: crate::config::GUE_PORT,
            checksum: GueChecksum::Csum,
        }),
        Method::Gre => ForwardMethod::Tunnel(TunnelKind::Gre {
            checksum: true,
            key: None,
        }),
    }
}

fn method_name(m: ForwardMethod) -> String {
    match m {
        ForwardMethod::Nat => "nat".into(),
        ForwardMethod::DirectRoute => "dr".into(),
        ForwardMethod::Local => "local".into(),
        ForwardMethod::Tunnel(TunnelKind::Ipip) => "ipip".into(),
        ForwardMethod::Tunnel(TunnelKind::Gue { port, .. }) => format!("gue:{port}"),
        ForwardMethod::Tunnel(TunnelKind::Gre { .. }) => "gre".into(),
        _ => "?".into(),
    }
}

fn sock(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

type FlowKey = (u8, IpAddr, u16, IpAddr, u16);

#[derive(Debug, Clone, Copy)]
struct FlowRec {
    server: (IpAddr, u16),
    epoch: u32,
    across: bool,
    moved: bool,
    broken: bool,
}

/// The progress bar: throttled, only on a terminal, only after the first second.
struct Progress {
    on: bool,
    start: std::time::Instant,
    last: f64,
    drawn: bool,
}

impl Progress {
    fn tick(&mut self, done: usize, total: usize, label: &str) {
        if !self.on {
            return;
        }
        let t = self.start.elapsed().as_secs_f64();
        if t < 1.0 || t - self.last < 0.2 {
            return;
        }
        self.last = t;
        self.drawn = true;
        let frac = done as f64 / total.max(1) as f64;
        let n = (frac * 30.0) as usize;
        eprint!(
            "\r{label} [{}{}] {:5.1}% {:.2} Mpkt/s ",
            "=".repeat(n),
            " ".repeat(30 - n.min(30)),
            100.0 * frac,
            done as f64 / t / 1e6
        );
    }

    fn clear(&self) {
        if self.drawn {
            eprint!("\r{}\r", " ".repeat(72));
        }
    }
}

/// Replays `src` through a Director built from `setup`.
///
/// # Errors
/// [`ReplayError`] if the configuration is refused or the output cannot be written.
#[allow(clippy::too_many_lines)]
pub fn replay<S: Source, W: Write>(
    src: &mut S,
    setup: &Setup,
    mut opts: Options<'_, W>,
) -> Result<Report, ReplayError> {
    let mut d = setup
        .build(opts.seed, opts.scheduler)
        .map_err(ReplayError::Config)?;
    let n = src.count();
    let label = opts.scheduler.map_or("replay", SchedulerName::name);
    let mut progress = Progress {
        on: opts.progress && std::io::stderr().is_terminal(),
        start: std::time::Instant::now(),
        last: 0.0,
        drawn: false,
    };

    const HEADROOM: usize = lvs::buf::DEFAULT_HEADROOM;
    let mut buf = PacketBuf::new(vec![0u8; HEADROOM + 65_536 + 64], HEADROOM, 0)
        .expect("the storage is larger than the headroom");
    let mut p = PacketCounts::default();
    let mut drops = [0u64; REASONS.len()];
    let mut c = ConnCounts::default();
    let mut e = EventCounts::default();
    // Churn: flows and the servers removed (with their counters at removal).
    let tracking = !opts.churn.is_empty();
    let mut flows: HashMap<FlowKey, FlowRec> = HashMap::new();
    let mut epoch = 0u32;
    let mut next_change = 0usize;
    let mut churn_lines: Vec<ChurnLine> = Vec::new();
    let mut removed: Vec<(ServiceId, ServerReport)> = Vec::new();

    let mut first_ts: Option<i64> = None;
    let mut last_ts = i64::MIN;
    let mut now = Instant::from_micros(0);
    let mut next_timer: Option<Instant> = None;
    let mut polled_at: Option<Instant> = None;
    const REPOLL: std::time::Duration = std::time::Duration::from_millis(100);
    let started = std::time::Instant::now();

    for i in 0..n {
        if i & 0x3fff == 0 {
            progress.tick(i, n, label);
        }
        let (ts, linktype, frame) = src.frame(i);
        let ts = ts.max(last_ts);
        last_ts = ts;
        let first = *first_ts.get_or_insert(ts);
        now = Instant::from_micros(ts);
        p.input += 1;

        // Timers due before this packet run at the packet's time, as an embedder's clock
        // would jump to it: `handle_timeout(now)` expires everything due and catches the
        // estimators up (after a capture's long pause, without stepping through it).
        // `poll_timeout` searches the timing wheel, too costly for every packet: ask again
        // once the known timer is due or REPOLL of capture time has passed. A timer armed
        // since the last poll cannot be missed: the shortest the Director arms is 1 s (the
        // defence tick; protocol timeouts are whole seconds), far beyond REPOLL.
        if next_timer.is_some_and(|t| t <= now) || polled_at.is_none_or(|p| now >= p + REPOLL) {
            // One round runs everything due; a second only if the first armed a timer
            // already due.
            for _ in 0..2 {
                if d.poll_timeout().is_none_or(|t| t > now) {
                    break;
                }
                d.handle_timeout(now);
                drain(&mut d, &mut c, &mut e);
            }
            next_timer = d.poll_timeout();
            polled_at = Some(now);
        }
        // Churn changes due.
        while let Some(ch) = opts.churn.get(next_change) {
            if ch.at.micros(first) > ts {
                break;
            }
            next_change += 1;
            let line = apply_change(&mut d, ch, now, &mut removed);
            churn_lines.push(ChurnLine {
                due_s: (ch.at.micros(first) - first) as f64 / 1e6,
                at_s: (ts - first) as f64 / 1e6,
                ..line
            });
            epoch += 1;
            drain(&mut d, &mut c, &mut e);
        }

        let Some(l3) = locate_l3(linktype, frame) else {
            p.not_ip += 1;
            p.passed += 1;
            if opts.output_pass
                && let Some(out) = opts.output.as_deref_mut()
            {
                out.write(ts, linktype, &[], frame, None)
                    .map_err(ReplayError::Output)?;
                if let Some(o) = opts.origins.as_deref_mut() {
                    o.push((i, Emitted::Pass));
                }
            }
            continue;
        };
        let ip = &frame[l3.ip.clone()];
        let l2 = &frame[..l3.l2_len];
        buf.set_range(HEADROOM, HEADROOM + ip.len())
            .expect("an IP packet fits the 64 KiB buffer");
        buf.packet_mut().copy_from_slice(ip);
        let key: Option<FlowKey> = if tracking {
            PacketSummary::parse(ip)
                .ok()
                .and_then(|s| s.ports.map(|pt| (s.protocol, s.src, pt.src, s.dst, pt.dst)))
        } else {
            None
        };

        let v = d.handle_packet(now, &mut buf, PacketMeta::default());
        let emitted = match v {
            Verdict::Forward {
                next_hop,
                method,
                conn,
            } => {
                p.forwarded += 1;
                if let Some(k) = key
                    && let Some(cn) = d.conns().get(conn)
                {
                    let server = (d.conns().daddr(cn), cn.dport());
                    if server.0 == next_hop {
                        let r = flows.entry(k).or_insert(FlowRec {
                            server,
                            epoch,
                            across: false,
                            moved: false,
                            broken: false,
                        });
                        if r.epoch != epoch {
                            r.across = true;
                        }
                        if r.server != server {
                            r.moved = true;
                            r.server = server;
                        }
                    }
                }
                Some(Emitted::Forward(next_hop, method))
            }
            Verdict::Reply { .. } => {
                p.replied += 1;
                Some(Emitted::Reply)
            }
            Verdict::Local { .. } => {
                p.local += 1;
                None
            }
            Verdict::Drop(r) => {
                p.dropped += 1;
                drops[reason_index(r)] += 1;
                if r == DropReason::ServerRemoved
                    && let Some(k) = key
                    && let Some(f) = flows.get_mut(&k)
                {
                    f.across |= f.epoch != epoch;
                    f.broken = true;
                }
                None
            }
            _ => {
                p.passed += 1;
                if addressed_to_service(&d, buf.packet()) {
                    p.passed_to_service += 1;
                }
                opts.output_pass.then_some(Emitted::Pass)
            }
        };
        if let Some(em) = emitted
            && let Some(out) = opts.output.as_deref_mut()
        {
            let dr_to = match em {
                Emitted::Forward(nh, ForwardMethod::DirectRoute) => Some(nh),
                _ => None,
            };
            let bytes = if em == Emitted::Pass {
                ip
            } else {
                buf.packet()
            };
            out.write(ts, linktype, l2, bytes, dr_to)
                .map_err(ReplayError::Output)?;
            if let Some(o) = opts.origins.as_deref_mut() {
                o.push((i, em));
            }
        }
        drain(&mut d, &mut c, &mut e);
    }
    let wall = started.elapsed().as_secs_f64();
    progress.clear();
    p.written = opts.output.as_ref().map_or(0, |o| o.written);
    p.dropped_by_reason = REASONS
        .iter()
        .zip(drops)
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| ((*r).to_owned(), n))
        .collect();
    c.in_table_at_end = d.conns().len() as u64;

    let mut services = Vec::new();
    for (id, v) in d.services() {
        let cfg = v.config();
        let mut s = ServiceReport {
            service: cfg.key.list_name(),
            scheduler: cfg.scheduler.name().to_owned(),
            persistent: cfg.persistence,
            ..ServiceReport::default()
        };
        let mut servers: Vec<ServerReport> = v
            .pool()
            .dests()
            .iter()
            .map(|x| {
                let st = v
                    .server_stats(x.id())
                    .map(|s| s.counters())
                    .unwrap_or_default();
                ServerReport {
                    server: sock(x.addr(), x.port()),
                    weight: x.weight(),
                    method: method_name(x.forward()),
                    conns: st.conns,
                    packets: st.inpkts,
                    bytes: st.inbytes,
                    share: 0.0,
                    removed: false,
                }
            })
            .collect();
        // The kernel's list is newest first; show servers in address order.
        servers.extend(
            removed
                .iter()
                .filter(|(sid, _)| *sid == id)
                .map(|(_, r)| r.clone()),
        );
        servers.sort_by(|a, b| {
            let k = |x: &ServerReport| x.server.parse::<SocketAddr>().ok();
            k(a).cmp(&k(b)).then(a.removed.cmp(&b.removed))
        });
        s.servers = servers;
        finish_service(&mut s);
        services.push(s);
    }

    let churn = tracking.then(|| {
        let across = flows.values().filter(|f| f.across).count() as u64;
        let moved = flows.values().filter(|f| f.across && f.moved).count() as u64;
        ChurnReport {
            changes: churn_lines,
            flows: flows.len() as u64,
            flows_across_change: across,
            flows_moved: moved,
            flows_broken: flows.values().filter(|f| f.across && f.broken).count() as u64,
            moved_fraction: (across > 0).then(|| moved as f64 / across as f64),
        }
    });
    let _ = now;
    Ok(Report {
        input: src.name(),
        setup: setup.origin.clone(),
        scheduler_override: opts.scheduler.map(|s| s.name().to_owned()),
        packets: p,
        connections: c,
        events: e,
        services,
        churn,
        capture_seconds: first_ts.map_or(0.0, |f| (last_ts - f) as f64 / 1e6),
        wall_seconds: wall,
    })
}

/// Whether a passed packet was addressed to a virtual service (its address, protocol and
/// port, or port 0): a packet of a connection the Director never saw start.
fn addressed_to_service(d: &lvs::Director, ip: &[u8]) -> bool {
    let Ok(s) = PacketSummary::parse(ip) else {
        return false;
    };
    let (Some(pt), None) = (s.ports, s.quoted) else {
        return false;
    };
    let protocol = match s.protocol {
        lvs::wire::proto::TCP => Protocol::Tcp,
        lvs::wire::proto::UDP => Protocol::Udp,
        lvs::wire::proto::SCTP => Protocol::Sctp,
        _ => return false,
    };
    [pt.dst, 0].into_iter().any(|port| {
        d.find_service(&ServiceKey::Addr {
            protocol,
            addr: s.dst,
            port,
        })
        .is_some()
    })
}

fn drain(d: &mut lvs::Director, c: &mut ConnCounts, e: &mut EventCounts) {
    while let Some(ev) = d.poll_event() {
        match ev {
            Event::ConnCreated { .. } => c.created += 1,
            Event::ConnExpired { .. } => c.expired += 1,
            Event::TemplateCreated { .. } => c.persistence_misses += 1,
            Event::PersistenceHit { .. } => c.persistence_hits += 1,
            Event::ServerOverloaded { .. } => e.server_overloaded += 1,
            Event::ServerRecovered { .. } => e.server_recovered += 1,
            Event::TableFull => e.table_full += 1,
            Event::DefenseChanged { .. } => e.defense_changed += 1,
            _ => {}
        }
    }
}

/// Applies one churn change to every service it concerns.
fn apply_change(
    d: &mut lvs::Director,
    ch: &Change,
    now: Instant,
    removed: &mut Vec<(ServiceId, ServerReport)>,
) -> ChurnLine {
    let _ = now;
    let (addr, port) = (ch.server.ip(), ch.server.port());
    let mut line = ChurnLine {
        line: ch.line,
        change: match ch.op {
            Op::Add { weight, method } => format!(
                "add {} weight {weight}{}",
                sock(addr, port),
                method
                    .map(|m| format!(" method {}", m.name()))
                    .unwrap_or_default()
            ),
            Op::Remove => format!("remove {}", sock(addr, port)),
            Op::Weight(w) => format!("weight {} {w}", sock(addr, port)),
        },
        ..ChurnLine::default()
    };
    let targets: Vec<(ServiceId, ServiceKey, Option<DestId>, Option<ForwardMethod>)> = d
        .services()
        .filter(|(_, v)| match (ch.on, v.config().key) {
            (None, _) => true,
            (Some(on), ServiceKey::Addr { addr, port, .. }) => on.ip() == addr && on.port() == port,
            (Some(_), _) => false,
        })
        .map(|(id, v)| {
            let dest = v.pool().dests().find(addr, port).map(|x| x.id());
            let first = v.pool().dests().iter().next().map(|x| x.forward());
            (id, v.config().key, dest, first)
        })
        .collect();
    for (id, key, dest, first_method) in targets {
        let r = match (ch.op, dest) {
            (Op::Remove, Some(x)) => {
                if let Some(v) = d.service(id)
                    && let Some(rs) = v.pool().dests().get(x)
                {
                    let st = v.server_stats(x).map(|s| s.counters()).unwrap_or_default();
                    removed.push((
                        id,
                        ServerReport {
                            server: sock(addr, port),
                            weight: rs.weight(),
                            method: method_name(rs.forward()),
                            conns: st.conns,
                            packets: st.inpkts,
                            bytes: st.inbytes,
                            share: 0.0,
                            removed: true,
                        },
                    ));
                }
                Some(d.remove_server(id, x))
            }
            (Op::Weight(w), Some(x)) => {
                let (u, l) = d
                    .service(id)
                    .and_then(|v| v.pool().dests().get(x))
                    .map_or((0, 0), |s| (s.u_threshold(), s.l_threshold()));
                Some(d.edit_server(id, x, w, u, l))
            }
            (Op::Add { weight, method }, None) => {
                if key.family() != lvs::wire::Family::of(addr) && method.is_none() {
                    None
                } else {
                    let fm = method
                        .map(forward_method)
                        .or(first_method)
                        .unwrap_or(ForwardMethod::Nat);
                    let cfg = RealServerConfig::new(addr, port).weight(weight).forward(fm);
                    Some(d.add_server(id, cfg).map(|_| ()))
                }
            }
            (Op::Add { .. }, Some(_)) => {
                line.errors
                    .push(format!("{}: server already present", key.list_name()));
                None
            }
            _ => None,
        };
        match r {
            Some(Ok(())) => line.services += 1,
            Some(Err(err)) => line.errors.push(format!("{}: {err}", key.list_name())),
            None => {}
        }
    }
    if line.services == 0 && line.errors.is_empty() {
        line.errors.push("no service has a matching server".into());
    }
    line
}
