//! A userspace IPVS director on a Linux TUN (or TAP) device.
//!
//! ```text
//! tun_director --rules FILE [--dev NAME] [--addr IP/PREFIX] [--mtu N]
//!              [--tunnel-source IPV4] [--link-mtu N] [--control SOCKET]
//!              [--stats-interval SECS] [--seed HEX64]
//!              [--tap [--mac MAC] [--neigh IP=MAC]...]
//! tun_director ctl SOCKET COMMAND...
//! ```
//!
//! The rules file is what `ipvsadm-save -n` writes. The director reads every packet the
//! kernel routes into the device, hands it to [`lvs::Director::handle_packet`] and acts
//! on the verdict:
//!
//! - **TUN (layer 3)**, for NAT and tunnel servers: a forwarded packet (NAT-rewritten, or
//!   encapsulated in IPIP/GUE/GRE) is written back into the device, and the kernel of the
//!   director's namespace routes it on to the real server (or, for a NAT reply, to the
//!   client). Route the virtual addresses into the device, and for NAT also the real
//!   servers' replies (policy routing on their source).
//! - **TAP (layer 2, `--tap`)**, for direct routing: the director is a host on the real
//!   servers' Ethernet segment (enslave the TAP to their bridge) with its own MAC
//!   (`--mac`). It answers ARP for the virtual addresses, so the router in front sends the
//!   clients' frames to it, and sends each scheduled frame on to the real server's MAC
//!   ([`lvs::forward::dr::rewrite_macs`]); MACs come from `--neigh` or from ARP (learnt from
//!   what it sees on the segment, or asked for). Other methods work the same way, framed
//!   for the next hop. IPv4 only in this mode.
//!
//! `--control SOCKET` opens a Unix socket taking ipvsadm rule lines at run time (`-e ... -w
//! 0`, `-d ...`, `-a ...`), `list` (`ipvsadm -L -n --stats`; `-L` with ipvsadm's list
//! options also works), `counters` and `quit`; `tun_director ctl SOCKET LINE` is its
//! client. On `quit` the director prints the listing and its counters and exits.
//!
//! Time: [`lvs::Instant`] counts microseconds since the director started (a monotonic
//! clock); the loop waits on the device no longer than the engine's next timer.

mod arp;
mod control;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::error::Error;
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use lvs::ipvsadm::{ListFormat, list};
use lvs::scheduler::ForwardMethod;
use lvs::wire::MacAddr;
use lvs::{Config, Director, Instant, PacketBuf, PacketMeta, ServiceKey, Verdict};
use tun_rs::{DeviceBuilder, InterruptEvent, Layer, SyncDevice};

use arp::Neighbours;

const USAGE: &str = "usage: tun_director --rules FILE [--dev NAME] [--addr IP/PREFIX] [--mtu N]
                    [--tunnel-source IPV4] [--link-mtu N] [--control SOCKET]
                    [--stats-interval SECS] [--seed HEX64]
                    [--tap [--mac MAC] [--neigh IP=MAC]...]
       tun_director ctl SOCKET COMMAND...";

const HEADROOM: usize = lvs::buf::DEFAULT_HEADROOM;
const ETH_LEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
/// The largest packet the device hands over (no offloads: at most the MTU, which is 16 bits).
const MAX_FRAME: usize = ETH_LEN + 65535;

/// Command-line options.
#[derive(Debug)]
struct Args {
    rules: PathBuf,
    dev: String,
    addr: Option<(Ipv4Addr, u8)>,
    mtu: Option<u16>,
    tunnel_source: Option<Ipv4Addr>,
    link_mtu: Option<u32>,
    control: Option<PathBuf>,
    stats_interval: Option<Duration>,
    seed: Option<[u8; 32]>,
    tap: bool,
    mac: MacAddr,
    neigh: Vec<(Ipv4Addr, MacAddr)>,
}

fn parse_seed(s: &str) -> Result<[u8; 32], String> {
    let bad = || format!("--seed wants 64 hex digits, not {s:?}");
    if s.len() != 64 || !s.is_ascii() {
        return Err(bad());
    }
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(seed)
}

impl Args {
    fn parse(argv: &[String]) -> Result<Self, String> {
        let mut a = Self {
            rules: PathBuf::new(),
            dev: "tun0".into(),
            addr: None,
            mtu: None,
            tunnel_source: None,
            link_mtu: None,
            control: None,
            stats_interval: None,
            seed: None,
            tap: false,
            mac: MacAddr([0x02, 0, 0, 0, 0, 0xfe]),
            neigh: Vec::new(),
        };
        let mut rules = None;
        let mut it = argv.iter();
        while let Some(opt) = it.next() {
            if opt == "--tap" {
                a.tap = true;
                continue;
            }
            if opt == "-h" || opt == "--help" {
                return Err(String::new());
            }
            let val = it
                .next()
                .ok_or_else(|| format!("{opt} needs a value"))?
                .as_str();
            let num = |what: &str| format!("{opt}: bad {what} {val:?}");
            match opt.as_str() {
                "--rules" => rules = Some(PathBuf::from(val)),
                "--dev" => a.dev = val.to_owned(),
                "--addr" => {
                    let (ip, len) = val.split_once('/').unwrap_or((val, "32"));
                    let ip = ip.parse().map_err(|_| num("address"))?;
                    let len: u8 = len.parse().map_err(|_| num("prefix"))?;
                    if len > 32 {
                        return Err(num("prefix"));
                    }
                    a.addr = Some((ip, len));
                }
                "--mtu" => a.mtu = Some(val.parse().map_err(|_| num("MTU"))?),
                "--tunnel-source" => {
                    a.tunnel_source = Some(val.parse().map_err(|_| num("IPv4 address"))?);
                }
                "--link-mtu" => a.link_mtu = Some(val.parse().map_err(|_| num("MTU"))?),
                "--control" => a.control = Some(PathBuf::from(val)),
                "--stats-interval" => {
                    let s: f64 = val.parse().map_err(|_| num("number of seconds"))?;
                    if !(s.is_finite() && s >= 0.0) {
                        return Err(num("number of seconds"));
                    }
                    a.stats_interval = (s > 0.0).then(|| Duration::from_secs_f64(s));
                }
                "--seed" => a.seed = Some(parse_seed(val)?),
                "--mac" => a.mac = arp::parse_mac(val)?,
                "--neigh" => {
                    let (ip, mac) = val
                        .split_once('=')
                        .ok_or_else(|| format!("--neigh wants IP=MAC, not {val:?}"))?;
                    let ip = ip.parse().map_err(|_| num("IPv4 address"))?;
                    a.neigh.push((ip, arp::parse_mac(mac)?));
                }
                _ => return Err(format!("unknown option {opt}")),
            }
        }
        a.rules = rules.ok_or("--rules FILE is required")?;
        Ok(a)
    }
}

/// What the datapath did, by kind (the engine's own counters are in the listing).
#[derive(Debug, Default)]
struct Counters {
    rx: u64,
    tx: u64,
    by_verdict: BTreeMap<String, u64>,
    /// Calls of `handle_packet` and the wall time spent in them.
    engine_calls: u64,
    engine_time: Duration,
}

impl Counters {
    /// Counts one `what`; allocates only the first time a name is seen.
    fn count(&mut self, what: &str) {
        if let Some(n) = self.by_verdict.get_mut(what) {
            *n += 1;
        } else {
            self.by_verdict.insert(what.to_owned(), 1);
        }
    }

    fn text(&self) -> String {
        let mut s = format!("device: rx {} tx {}\n", self.rx, self.tx);
        if self.engine_calls > 0 {
            let ns = self.engine_time.as_nanos() / u128::from(self.engine_calls);
            s.push_str(&format!(
                "engine: {} packets, {ns} ns each in handle_packet\n",
                self.engine_calls
            ));
        }
        for (k, v) in &self.by_verdict {
            s.push_str(&format!("  {k}: {v}\n"));
        }
        s
    }
}

/// The name a verdict is counted under: the variant, and the method or the reason.
/// (Allocates only for drops, which are rare.)
fn verdict_name(v: &Verdict) -> Cow<'static, str> {
    match v {
        Verdict::Forward { method, .. } => Cow::Borrowed(match method {
            ForwardMethod::Nat => "forward masq",
            ForwardMethod::Tunnel(_) => "forward tunnel",
            ForwardMethod::DirectRoute => "forward route",
            _ => "forward local",
        }),
        Verdict::Local { .. } => Cow::Borrowed("local"),
        Verdict::Pass => Cow::Borrowed("pass"),
        Verdict::Reply { .. } => Cow::Borrowed("reply"),
        Verdict::Drop(r) => {
            let r = format!("{r:?}");
            Cow::Owned(format!("drop {}", r.split('(').next().unwrap_or(&r)))
        }
        other => Cow::Owned(format!("{other:?}")),
    }
}

struct Datapath {
    dev: SyncDevice,
    director: Director,
    /// Set in TAP mode.
    neigh: Option<Neighbours>,
    /// The virtual addresses, for ARP and to keep passed packets from looping.
    vips: HashSet<IpAddr>,
    counters: Counters,
    epoch: std::time::Instant,
    quit: bool,
}

impl Datapath {
    fn now(&self) -> Instant {
        let us = self.epoch.elapsed().as_micros();
        Instant::from_micros(i64::try_from(us).unwrap_or(i64::MAX))
    }

    /// `handle_packet`, timed.
    fn handle(&mut self, now: Instant, buf: &mut PacketBuf<&mut [u8]>) -> Verdict {
        let t = std::time::Instant::now();
        let v = self.director.handle_packet(now, buf, PacketMeta::default());
        self.counters.engine_time += t.elapsed();
        self.counters.engine_calls += 1;
        v
    }

    fn refresh_vips(&mut self) {
        self.vips = self
            .director
            .services()
            .filter_map(|(_, s)| match s.config().key {
                ServiceKey::Addr { addr, .. } => Some(addr),
                _ => None,
            })
            .collect();
    }

    fn send(&mut self, pkt: &[u8]) {
        match self.dev.send(pkt) {
            Ok(_) => self.counters.tx += 1,
            Err(e) => self.counters.count(&format!("send error {:?}", e.kind())),
        }
    }

    /// The offset at which the device's bytes are read, so that the IP packet lands
    /// `HEADROOM` bytes into the buffer.
    fn read_offset(&self) -> usize {
        if self.neigh.is_some() {
            HEADROOM - ETH_LEN
        } else {
            HEADROOM
        }
    }

    /// One packet from the TUN device: `storage[HEADROOM..HEADROOM + n]`.
    fn on_ip_packet(&mut self, storage: &mut [u8], n: usize) {
        let now = self.now();
        let Ok(mut buf) = PacketBuf::new(storage, HEADROOM, n) else {
            return;
        };
        let v = self.handle(now, &mut buf);
        self.counters.count(&verdict_name(&v));
        match v {
            Verdict::Forward {
                method: ForwardMethod::DirectRoute,
                ..
            } => self.counters.count("drop direct-route needs --tap"),
            Verdict::Forward { .. } | Verdict::Reply { .. } => self.send(buf.packet()),
            Verdict::Pass => {
                // Not for a service: back to the kernel, unless it would come straight
                // back (a virtual address routed into this device) or is multicast.
                if let Ok(s) = lvs::PacketSummary::parse(buf.packet())
                    && !self.vips.contains(&s.dst)
                    && !s.dst.is_multicast()
                    && s.dst != IpAddr::V4(Ipv4Addr::BROADCAST)
                {
                    self.send(buf.packet());
                }
            }
            // No local real servers here; drops are counted above.
            _ => {}
        }
    }

    /// One frame from the TAP device: `storage[HEADROOM - ETH_LEN..][..n]`.
    fn on_frame(&mut self, storage: &mut [u8], n: usize) {
        let Some(mut neigh) = self.neigh.take() else {
            return;
        };
        self.frame_with(&mut neigh, storage, n);
        self.neigh = Some(neigh);
    }

    fn frame_with(&mut self, neigh: &mut Neighbours, storage: &mut [u8], n: usize) {
        let f = &storage[HEADROOM - ETH_LEN..HEADROOM - ETH_LEN + n];
        if n < ETH_LEN {
            return;
        }
        let dst = MacAddr(f[..6].try_into().unwrap_or([0; 6]));
        let src = MacAddr(f[6..12].try_into().unwrap_or([0; 6]));
        let ethertype = u16::from_be_bytes([f[12], f[13]]);
        if ethertype == arp::ETHERTYPE_ARP {
            let vips = &self.vips;
            if let Some(reply) = neigh.receive(&f[ETH_LEN..], |a| vips.contains(&IpAddr::V4(a))) {
                self.counters.count("arp reply");
                self.send(&reply);
            }
            return;
        }
        if ethertype != ETHERTYPE_IPV4 || dst != neigh.mac {
            return; // flooded traffic for others, or not IPv4
        }
        let now = self.now();
        let Ok(mut buf) = PacketBuf::new(storage, HEADROOM, n - ETH_LEN) else {
            return;
        };
        let v = self.handle(now, &mut buf);
        self.counters.count(&verdict_name(&v));
        let to_mac = match v {
            Verdict::Forward {
                next_hop: IpAddr::V4(hop),
                ..
            } => match neigh.lookup(hop) {
                Some(m) => m,
                None => {
                    let req = neigh.request(hop);
                    self.counters.count("drop neighbour unknown (ARP sent)");
                    self.send(&req);
                    return;
                }
            },
            // An ICMP error goes back the way the packet came.
            Verdict::Reply { .. } => src,
            _ => return,
        };
        let me = neigh.mac;
        let ethertype = if buf.packet().first().is_some_and(|b| b >> 4 == 6) {
            ETHERTYPE_IPV6
        } else {
            ETHERTYPE_IPV4
        };
        match buf.prepend(ETH_LEN) {
            Ok(h) => h[12..14].copy_from_slice(&ethertype.to_be_bytes()),
            Err(_) => {
                self.counters.count("drop no headroom");
                return;
            }
        }
        match lvs::forward::dr::rewrite_macs(buf.packet_mut(), to_mac, me) {
            Ok(()) => self.send(buf.packet()),
            Err(e) => self.counters.count(&format!("drop rewrite_macs {e}")),
        }
    }

    fn listing(&self, f: &ListFormat, conns: bool) -> String {
        let snap = self.director.snapshot(self.now());
        if conns {
            list::list_conns(&snap, false)
        } else {
            list::list(&snap, f)
        }
    }

    /// Runs one control line; returns the answer.
    fn control(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            Some("quit") => {
                self.quit = true;
                "ok".into()
            }
            Some("counters") => self.counters.text(),
            Some("list") => self.listing(
                &ListFormat {
                    stats: true,
                    ..ListFormat::default()
                },
                false,
            ),
            Some("-L" | "-l" | "--list") => {
                let mut f = ListFormat::default();
                let mut conns = false;
                for w in &words[1..] {
                    match *w {
                        "-n" | "--numeric" => {}
                        "--stats" => f.stats = true,
                        "--rate" => f.rate = true,
                        "--thresholds" => f.thresholds = true,
                        "--persistent-conn" => f.persistent_conn = true,
                        "--tun-info" => f.tun_info = true,
                        "--exact" | "-x" => f.exact = true,
                        "--nosort" => f.nosort = true,
                        "-c" | "--connection" => conns = true,
                        other => return format!("error: unknown list option {other}"),
                    }
                }
                self.listing(&f, conns)
            }
            _ => match lvs::ipvsadm::parse_line(line, 1) {
                Ok(Some(cmd)) => match self.director.apply(&cmd) {
                    Ok(()) => {
                        self.refresh_vips();
                        println!("tun_director: applied {cmd}");
                        "ok".into()
                    }
                    Err(e) => format!("error: {e}: {cmd}"),
                },
                Ok(None) => "ok".into(),
                Err(e) => format!("error: {e}"),
            },
        }
    }
}

fn random_seed() -> std::io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut seed)?;
    Ok(seed)
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let rules = std::fs::read_to_string(&args.rules)
        .map_err(|e| format!("{}: {e}", args.rules.display()))?;
    let mut config = Config {
        tunnel_source_v4: args.tunnel_source,
        ..Config::default()
    };
    if let Some(m) = args.link_mtu.or(args.mtu.map(u32::from)) {
        config.link_mtu = m;
    }
    let seed = match args.seed {
        Some(s) => s,
        None => random_seed()?,
    };
    let director = Director::from_rules(config, seed, &rules)
        .map_err(|e| format!("{}: {e}", args.rules.display()))?;

    let mut b = DeviceBuilder::new().name(&args.dev).enable(true);
    if args.tap {
        b = b.layer(Layer::L2);
    }
    if let Some(m) = args.mtu {
        b = b.mtu(m);
    }
    if let Some((ip, len)) = args.addr {
        b = b.ipv4(ip, len, None);
    }
    let dev = b
        .build_sync()
        .map_err(|e| format!("creating {}: {e}", args.dev))?;
    dev.set_nonblocking(true)?;
    let wake = Arc::new(InterruptEvent::new()?);

    let neigh = args.tap.then(|| {
        let mut n = Neighbours::new(args.mac, args.tunnel_source);
        for &(ip, mac) in &args.neigh {
            n.add_static(ip, mac);
        }
        n
    });
    let mut dp = Datapath {
        dev,
        director,
        neigh,
        vips: HashSet::new(),
        counters: Counters::default(),
        epoch: std::time::Instant::now(),
        quit: false,
    };
    dp.refresh_vips();

    let (tx, rx) = mpsc::channel::<control::Request>();
    if let Some(path) = &args.control {
        control::spawn(path, tx, Arc::clone(&wake))
            .map_err(|e| format!("control socket {}: {e}", path.display()))?;
    }
    println!(
        "tun_director: ready on {} ({}), {} virtual address(es)",
        args.dev,
        if args.tap { "tap" } else { "tun" },
        dp.vips.len()
    );

    let stats_format = ListFormat {
        stats: true,
        ..ListFormat::default()
    };
    let mut next_stats = args.stats_interval.map(|i| std::time::Instant::now() + i);
    let mut storage = vec![0u8; HEADROOM + MAX_FRAME];
    let off = dp.read_offset();
    while !dp.quit {
        // Packets first, as many as are queued, one syscall each.
        let n = match dp.dev.recv(&mut storage[off..]) {
            Ok(n) => Some(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                None
            }
            Err(e) => return Err(format!("reading {}: {e}", args.dev).into()),
        };
        if let Some(n) = n {
            dp.counters.rx += 1;
            if dp.neigh.is_some() {
                dp.on_frame(&mut storage, n);
            } else {
                dp.on_ip_packet(&mut storage, n);
            }
        }
        // Timers and events.
        let now = dp.now();
        if dp.director.poll_timeout().is_some_and(|t| t <= now) {
            dp.director.handle_timeout(now);
        }
        while dp.director.poll_event().is_some() {}
        if let Some(at) = next_stats
            && std::time::Instant::now() >= at
        {
            print!("{}", dp.listing(&stats_format, false));
            next_stats = args.stats_interval.map(|i| at + i);
        }
        // Control commands.
        while let Ok(req) = rx.try_recv() {
            let answer = dp.control(&req.line);
            let _ = req.reply.send(answer);
        }
        if n.is_some() {
            continue;
        }
        // Idle: wait for a packet, a control command or the next timer.
        let mut wait = Duration::from_secs(1);
        if let Some(t) = dp.director.poll_timeout() {
            wait = wait.min(t.saturating_duration_since(dp.now()));
        }
        if let Some(at) = next_stats {
            wait = wait.min(at.saturating_duration_since(std::time::Instant::now()));
        }
        match dp.dev.wait_readable_intr_timeout(&wake, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::TimedOut => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => wake.reset()?,
            Err(e) => return Err(format!("waiting on {}: {e}", args.dev).into()),
        }
    }
    print!("{}", dp.listing(&stats_format, false));
    print!("{}", dp.counters.text());
    Ok(())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().is_some_and(|a| a == "ctl") {
        return control::client(&argv[1..]);
    }
    let args = match Args::parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("tun_director: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tun_director: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Args, String> {
        Args::parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn options_parse_and_bad_ones_are_refused() {
        let a =
            args("--rules r --tap --neigh 10.0.1.11=02:00:00:00:01:0b --addr 10.9.0.1/30").unwrap();
        assert!(a.tap);
        assert_eq!(a.addr, Some((Ipv4Addr::new(10, 9, 0, 1), 30)));
        assert_eq!(a.neigh.len(), 1);
        for bad in [
            "",
            "--rules",
            "--rules r --addr 10.0.0.1/33",
            "--rules r --neigh 10.0.0.1",
            "--rules r --stats-interval -1",
            "--rules r --seed 00",
            "--rules r --bogus 1",
        ] {
            assert!(args(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn verdict_names() {
        assert_eq!(verdict_name(&Verdict::Pass), "pass");
        let d = Verdict::Drop(lvs::DropReason::NoServer);
        assert_eq!(verdict_name(&d), "drop NoServer");
    }
}
