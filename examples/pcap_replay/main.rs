//! Replays a packet capture (or a built-in generated workload) through the `lvs` Director
//! and reports what it did: verdicts, connections, per-server distribution and imbalance,
//! events; optionally writes everything the Director emits to a pcap, compares
//! schedulers side by side (and as an SVG chart), and applies real-server churn.
//!
//! ```text
//! cargo run --release --example pcap_replay                       # built-in workload, all 14 schedulers
//! cargo run --release --example pcap_replay -- CAPTURE.pcap       # busiest destination on a default service
//! cargo run --release --example pcap_replay -- --rules RULES --output OUT.pcap CAPTURE.pcapng
//! cargo run --release --example pcap_replay -- --compare rr,wlc,mh --svg dist.svg CAPTURE.pcap
//! ```
//!
//! All I/O lives here; the `lvs` library only sees byte slices and timestamps. Modules:
//! `input` (pcap / pcapng, link types), `output` (pcap writer), `config` (rules, service
//! files, the default service), `workload` (the generator), `churn` (scripts), `replay`
//! (the drive loop), `report` (tables, JSON), `svg` (the chart).

mod churn;
mod config;
mod input;
mod output;
mod replay;
mod report;
mod svg;
mod workload;

use clap::Parser;
use config::{Method, Setup};
use lvs::service::SchedulerName;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Replay a capture through the lvs Director (IPVS) and report the load balancing.
#[derive(Debug, Parser)]
#[command(
    name = "pcap_replay",
    after_help = "Without INPUT, a workload is generated in memory (--packets, --seed) \
                  against built-in services and all 14 schedulers are compared.\n\
                  Without --rules or --config, the busiest TCP/UDP/SCTP destination of \
                  INPUT is put on a wlc service of three real servers (10.200.0.1-3 or \
                  fd00:200::1-3) forwarded by --method."
)]
struct Args {
    /// ipvsadm rules (ipvsadm-save / `ipvsadm -S -n` format).
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    rules: Option<PathBuf>,
    /// Services in TOML or JSON (see examples/pcap_replay/config.rs).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write what the Director emits (forwarded and ICMP replies) as classic pcap.
    #[arg(long, value_name = "OUT.pcap")]
    output: Option<PathBuf>,
    /// With --output: also write passed packets (not for a virtual service), unchanged.
    #[arg(long, requires = "output")]
    output_pass: bool,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Replay once per scheduler (overriding every service's) and compare; `all` for the 14.
    #[arg(long, value_name = "SCHED,SCHED,...", value_delimiter = ',')]
    compare: Vec<String>,
    /// Draw the per-server distribution per scheduler as an SVG bar chart.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Real-server changes at capture times (see examples/pcap_replay/churn.rs).
    #[arg(long, value_name = "FILE")]
    churn: Option<PathBuf>,
    /// Forwarding method of the default / built-in services.
    #[arg(long, value_enum, default_value_t = Method::Nat)]
    method: Method,
    /// Packets of the generated workload (without INPUT).
    #[arg(long, default_value_t = 200_000)]
    packets: usize,
    /// Seed of the generator and of the Director.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// A capture: pcap or pcapng (told apart by content), Ethernet, raw IP, Linux SLL/SLL2.
    input: Option<PathBuf>,
}

/// 32 seed bytes for the Director from a number.
fn director_seed(seed: u64) -> [u8; 32] {
    let mut r = workload::Rng::new(seed ^ 0x6c76_735f_7365_6564);
    let mut s = [0u8; 32];
    for c in s.chunks_exact_mut(8) {
        c.copy_from_slice(&r.next_u64().to_le_bytes());
    }
    s
}

fn read(path: &PathBuf, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

fn text(path: &PathBuf, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{what} {}: {e}", path.display()))
}

enum Src {
    Capture(input::Capture, String),
    Generated(workload::Workload),
}

fn run(args: &Args) -> Result<(), String> {
    // Input.
    let src = match &args.input {
        Some(p) => {
            let bytes = read(p, "input")?;
            let cap = input::read_capture(&bytes).map_err(|e| format!("{}: {e}", p.display()))?;
            Src::Capture(cap, p.display().to_string())
        }
        None => {
            let w = workload::Workload::generate(args.packets, args.seed);
            if w.is_empty() {
                return Err("--packets must be at least 1".into());
            }
            Src::Generated(w)
        }
    };
    let hint = match &src {
        Src::Capture(c, _) => c.frames.len(),
        Src::Generated(w) => w.len(),
    };

    // Services.
    let setup = if let Some(r) = &args.rules {
        Setup::from_rules(
            text(r, "rules")?,
            &format!("ipvsadm rules {}", r.display()),
            hint,
        )
    } else if let Some(c) = &args.config {
        let f = config::parse_service_file(&text(c, "config")?)
            .map_err(|e| format!("{}: {e}", c.display()))?;
        Setup::from_file(&f, &format!("service file {}", c.display()), hint)
            .map_err(|e| format!("{}: {e}", c.display()))?
    } else {
        match &src {
            Src::Capture(cap, _) => {
                let (dest, count) = config::busiest_destination(cap)
                    .ok_or_else(|| config::ConfigError::NoTraffic.to_string())?;
                let servers: Vec<String> = config::default_servers(dest.addr.is_ipv6(), dest.port)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                let origin = format!(
                    "default: busiest destination {dest} ({count} packets) on wlc, servers {} by {}",
                    servers.join(" "),
                    args.method.name()
                );
                eprintln!("{origin}");
                Setup::from_rules(config::default_rules(dest, args.method), &origin, hint)
            }
            Src::Generated(_) => Setup::from_rules(
                workload::builtin_rules(args.method),
                &format!(
                    "built-in: TCP 192.0.2.80:80, TCP [2001:db8::80]:80, UDP 192.0.2.53:53; 5 servers each, weights 1 1 2 3 5, by {}",
                    args.method.name()
                ),
                hint,
            ),
        }
    };
    // Refuse a bad configuration before replaying anything.
    setup
        .build(director_seed(args.seed), None)
        .map_err(|e| e.to_string())?;

    let churn = match &args.churn {
        Some(p) => churn::parse(&text(p, "churn script")?).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };

    // Schedulers to compare.
    let mut compare: Vec<SchedulerName> = Vec::new();
    for s in &args.compare {
        if s == "all" {
            compare.extend(SchedulerName::ALL);
        } else {
            compare.push(
                SchedulerName::from_name(s.trim())
                    .ok_or_else(|| format!("--compare: unknown scheduler {s:?}"))?,
            );
        }
    }
    if compare.is_empty() && args.input.is_none() && args.rules.is_none() && args.config.is_none() {
        compare.extend([
            SchedulerName::Rr,
            SchedulerName::Wrr,
            SchedulerName::Lc,
            SchedulerName::Wlc,
            SchedulerName::Sed,
            SchedulerName::Nq,
            SchedulerName::Fo,
            SchedulerName::Ovf,
            SchedulerName::Lblc,
            SchedulerName::Lblcr,
            SchedulerName::Dh,
            SchedulerName::Sh,
            SchedulerName::Mh,
            SchedulerName::Twos,
        ]);
    }
    if compare.len() > 1 && args.output.is_some() {
        return Err("--output writes one replay: give at most one scheduler to --compare".into());
    }
    let runs: Vec<Option<SchedulerName>> = if compare.is_empty() {
        vec![None]
    } else {
        compare.into_iter().map(Some).collect()
    };

    let mut out = match &args.output {
        Some(p) => {
            let (lt, single) = match &src {
                Src::Capture(c, _) => (c.linktype, c.single_linktype),
                Src::Generated(_) => (input::LINKTYPE_RAW, true),
            };
            let f = std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Some(
                output::Output::new(
                    std::io::BufWriter::new(f),
                    output::output_linktype(lt, single),
                )
                .map_err(|e| format!("{}: {e}", p.display()))?,
            )
        }
        None => None,
    };

    let mut reports = Vec::new();
    let mut src = src;
    for sched in &runs {
        let opts = replay::Options {
            seed: director_seed(args.seed),
            scheduler: *sched,
            output: out.as_mut(),
            output_pass: args.output_pass,
            churn: &churn,
            progress: !args.quiet,
            origins: None,
        };
        let r = match &mut src {
            Src::Capture(cap, path) => {
                let mut s = replay::CaptureSource {
                    cap,
                    path: path.clone(),
                };
                replay::replay(&mut s, &setup, opts)
            }
            Src::Generated(w) => replay::replay(w, &setup, opts),
        }
        .map_err(|e| e.to_string())?;
        eprintln!(
            "{}: {} packets in {:.3} s wall: {:.2} Mpackets/s",
            sched.map_or("replay", SchedulerName::name),
            r.packets.input,
            r.wall_seconds,
            r.pps() / 1e6
        );
        reports.push(r);
    }
    if let Some(o) = out {
        let mut w = o.finish();
        w.flush().map_err(|e| {
            format!(
                "writing {}: {e}",
                args.output
                    .as_ref()
                    .map_or_else(String::new, |p| p.display().to_string())
            )
        })?;
    }
    let total: u64 = reports.iter().map(|r| r.packets.input).sum();
    let wall: f64 = reports.iter().map(|r| r.wall_seconds).sum();
    if reports.len() > 1 && wall > 0.0 {
        eprintln!(
            "all runs: {total} packets in {wall:.3} s: {:.2} Mpackets/s",
            total as f64 / wall / 1e6
        );
    }

    let stdout = std::io::stdout();
    let mut so = stdout.lock();
    let res = if args.json {
        let v = if runs.len() > 1 {
            serde_json::json!({ "compare": reports })
        } else {
            serde_json::to_value(&reports[0]).map_err(|e| e.to_string())?
        };
        writeln!(so, "{v}")
    } else if runs.len() > 1 {
        write!(so, "{}", report::render_compare(&reports))
    } else {
        write!(so, "{}", report::render(&reports[0]))
    };
    res.map_err(|e| format!("stdout: {e}"))?;
    if let Some(p) = &args.svg {
        std::fs::write(p, svg::chart(&reports)).map_err(|e| format!("{}: {e}", p.display()))?;
        eprintln!("chart written to {}", p.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pcap_replay: {e}");
            ExitCode::FAILURE
        }
    }
}
