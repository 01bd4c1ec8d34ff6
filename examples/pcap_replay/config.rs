//! Where the services come from: an ipvsadm rule file, a TOML or JSON service file, or a
//! default built from the capture's busiest destination. All three become ipvsadm rules
//! that `Director::from_rules` reads, so the engine sees one configuration path.
//!
//! The service file (TOML shown; JSON has the same shape, `{"director": {..},
//! "service": [{.., "server": [..]}]}`):
//!
//! ```toml
//! [director]                       # optional, every key optional
//! conn_capacity = 65536            # connections + templates tracked at once
//! tunnel_source_v4 = "10.200.0.254"
//! tunnel_source_v6 = "fd00:200::fe"
//! link_mtu = 1500
//! sloppy_tcp = false
//! expire_nodest_conn = false
//! timeouts = { tcp = 900, tcpfin = 120, udp = 300 }
//!
//! [[service]]
//! protocol = "tcp"                 # tcp | udp | sctp
//! address = "10.10.10.10:25565"    # VIP:port, IPv6 as "[2001:db8::1]:80"
//! scheduler = "wlc"                # any of the 14, default wlc
//! persistence = 360                # seconds, optional
//! netmask = "255.255.255.0"        # persistence granularity, optional (IPv6: "64")
//! flags = ["sh-port"]              # scheduler flags, optional
//! one_packet = false
//! method = "nat"                   # default for its servers: nat dr ipip gue gre
//!
//! [[service.server]]
//! address = "10.200.0.1:25565"
//! weight = 1
//! method = "gue"                   # optional, overrides the service's
//! gue_port = 6080                  # optional, for gue
//! upper_threshold = 0              # optional
//! lower_threshold = 0              # optional
//! ```

use crate::input::{Capture, locate_l3};
use lvs::service::SchedulerName;
use lvs::wire::proto;
use lvs::{Config, Director, PacketSummary};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The director's IPv4 address for tunnels, unless the service file says otherwise.
pub const TUNNEL_SOURCE_V4: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 254);
/// The director's IPv6 address for tunnels.
pub const TUNNEL_SOURCE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, 0xfe);
/// The UDP port of GUE tunnels, unless the service file says otherwise.
pub const GUE_PORT: u16 = 6080;

/// Forwarding methods as the command line and the service file name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// LVS-NAT (`-m`).
    #[default]
    Nat,
    /// Direct routing (`-g`).
    Dr,
    /// IP-in-IP tunnel (`-i --tun-type ipip`).
    Ipip,
    /// GUE tunnel with UDP checksum (`-i --tun-type gue --tun-port N --tun-csum`).
    Gue,
    /// GRE tunnel with checksum (`-i --tun-type gre --tun-csum`).
    Gre,
}

impl Method {
    /// Every method.
    pub const ALL: [Self; 5] = [Self::Nat, Self::Dr, Self::Ipip, Self::Gue, Self::Gre];

    /// The ipvsadm options of a real server forwarded this way.
    #[must_use]
    pub fn ipvsadm_options(self, gue_port: u16) -> String {
        match self {
            Self::Nat => "-m".into(),
            Self::Dr => "-g".into(),
            Self::Ipip => "-i --tun-type ipip".into(),
            Self::Gue => format!("-i --tun-type gue --tun-port {gue_port} --tun-csum"),
            Self::Gre => "-i --tun-type gre --tun-csum".into(),
        }
    }

    /// Its name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Nat => "nat",
            Self::Dr => "dr",
            Self::Ipip => "ipip",
            Self::Gue => "gue",
            Self::Gre => "gre",
        }
    }
}

/// The `[director]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorSection {
    /// Connection table capacity.
    pub conn_capacity: Option<usize>,
    /// Outer source of IPv4 tunnels.
    pub tunnel_source_v4: Option<Ipv4Addr>,
    /// Outer source of IPv6 tunnels.
    pub tunnel_source_v6: Option<Ipv6Addr>,
    /// MTU towards the real servers.
    pub link_mtu: Option<u32>,
    /// `sloppy_tcp`.
    pub sloppy_tcp: Option<bool>,
    /// `expire_nodest_conn`.
    pub expire_nodest_conn: Option<bool>,
    /// `ipvsadm --set` timeouts in seconds.
    pub timeouts: Option<TimeoutsSection>,
}

/// `timeouts = { tcp, tcpfin, udp }`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSection {
    /// Established TCP.
    #[serde(default)]
    pub tcp: u64,
    /// TCP after FIN.
    #[serde(default)]
    pub tcpfin: u64,
    /// UDP.
    #[serde(default)]
    pub udp: u64,
}

/// One `[[service]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// tcp, udp or sctp.
    pub protocol: String,
    /// VIP:port.
    pub address: SocketAddr,
    /// Scheduler name.
    #[serde(default)]
    pub scheduler: Option<String>,
    /// Persistence timeout, seconds.
    #[serde(default)]
    pub persistence: Option<u32>,
    /// Persistence netmask.
    #[serde(default)]
    pub netmask: Option<String>,
    /// Scheduler flags.
    #[serde(default)]
    pub flags: Vec<String>,
    /// One-packet scheduling.
    #[serde(default)]
    pub one_packet: bool,
    /// Default forwarding method of its servers.
    #[serde(default)]
    pub method: Method,
    /// Real servers.
    #[serde(default, alias = "servers")]
    pub server: Vec<ServerSection>,
}

/// One `[[service.server]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address:port.
    pub address: SocketAddr,
    /// Weight.
    #[serde(default = "one")]
    pub weight: u32,
    /// Forwarding method (default: the service's).
    #[serde(default)]
    pub method: Option<Method>,
    /// GUE port.
    #[serde(default)]
    pub gue_port: Option<u16>,
    /// Upper connection threshold.
    #[serde(default)]
    pub upper_threshold: u32,
    /// Lower connection threshold.
    #[serde(default)]
    pub lower_threshold: u32,
}

const fn one() -> u32 {
    1
}

/// A whole service file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    /// Engine settings.
    #[serde(default)]
    pub director: DirectorSection,
    /// Services.
    #[serde(default, alias = "services")]
    pub service: Vec<ServiceSection>,
}

/// Why a configuration could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// TOML syntax or schema.
    Toml(toml::de::Error),
    /// JSON syntax or schema.
    Json(serde_json::Error),
    /// A value the schema accepts but the service cannot have.
    Invalid {
        /// Which service (0-based) of the file.
        service: usize,
        /// What is wrong.
        reason: String,
    },
    /// No service at all.
    NoService,
    /// The engine refused the rules (`line` of [`Setup::rules`]).
    Rules(lvs::director::RulesError),
    /// The engine refused a scheduler override.
    Override(lvs::director::ConfigError),
    /// The capture has no TCP/UDP/SCTP traffic to build a default service on.
    NoTraffic,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Toml(e) => write!(f, "service file (TOML): {e}"),
            Self::Json(e) => write!(f, "service file (JSON): {e}"),
            Self::Invalid { service, reason } => write!(f, "service #{}: {reason}", service + 1),
            Self::NoService => f.write_str("the configuration defines no service"),
            Self::Rules(e) => write!(f, "rules: {e}"),
            Self::Override(e) => write!(f, "scheduler override: {e}"),
            Self::NoTraffic => f.write_str(
                "the capture has no TCP, UDP or SCTP packet to put on a default service",
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A service file in TOML (anything whose first non-blank character is not `{`) or JSON.
///
/// # Errors
/// [`ConfigError::Toml`] / [`ConfigError::Json`] with the parser's position.
pub fn parse_service_file(text: &str) -> Result<ServiceFile, ConfigError> {
    if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(ConfigError::Json)
    } else {
        toml::from_str(text).map_err(ConfigError::Toml)
    }
}

fn fmt_sock(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// Everything needed to build a Director: its settings and ipvsadm rules.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Engine settings.
    pub config: Config,
    /// `ipvsadm --set` timeouts, if any.
    pub timeouts: Option<TimeoutsSection>,
    /// ipvsadm-save rules.
    pub rules: String,
    /// How the setup came about, for the report.
    pub origin: String,
}

/// The engine settings this tool starts from: the kernel's defaults, tunnel sources set,
/// and a table big enough for `hint` packets (at most the kernel-like 2^20).
#[must_use]
pub fn base_config(hint: usize) -> Config {
    Config {
        conn_capacity: hint.saturating_mul(2).clamp(1 << 16, 1 << 20),
        tunnel_source_v4: Some(TUNNEL_SOURCE_V4),
        tunnel_source_v6: Some(TUNNEL_SOURCE_V6),
        ..Config::default()
    }
}

impl Setup {
    /// From an ipvsadm rule file.
    #[must_use]
    pub fn from_rules(rules: String, origin: &str, hint: usize) -> Self {
        Self {
            config: base_config(hint),
            timeouts: None,
            rules,
            origin: origin.to_owned(),
        }
    }

    /// From a parsed service file.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a bad protocol, scheduler, netmask or flag.
    pub fn from_file(f: &ServiceFile, origin: &str, hint: usize) -> Result<Self, ConfigError> {
        if f.service.is_empty() {
            return Err(ConfigError::NoService);
        }
        let mut config = base_config(hint);
        let d = &f.director;
        if let Some(c) = d.conn_capacity {
            config.conn_capacity = c.max(1);
        }
        if let Some(a) = d.tunnel_source_v4 {
            config.tunnel_source_v4 = Some(a);
        }
        if let Some(a) = d.tunnel_source_v6 {
            config.tunnel_source_v6 = Some(a);
        }
        if let Some(m) = d.link_mtu {
            config.link_mtu = m;
        }
        if let Some(b) = d.sloppy_tcp {
            config.sloppy_tcp = b;
        }
        if let Some(b) = d.expire_nodest_conn {
            config.expire_nodest_conn = b;
        }
        let mut rules = String::new();
        for (i, s) in f.service.iter().enumerate() {
            let bad = |reason: String| ConfigError::Invalid { service: i, reason };
            let opt = match s.protocol.to_ascii_lowercase().as_str() {
                "tcp" => "-t",
                "udp" => "-u",
                "sctp" => "--sctp-service",
                p => return Err(bad(format!("unknown protocol {p:?} (tcp, udp, sctp)"))),
            };
            let svc = format!("{opt} {}", fmt_sock(s.address));
            let sched = s.scheduler.as_deref().unwrap_or("wlc");
            if SchedulerName::from_name(sched).is_none() {
                return Err(bad(format!("unknown scheduler {sched:?}")));
            }
            rules.push_str(&format!("-A {svc} -s {sched}"));
            if let Some(p) = s.persistence {
                rules.push_str(&format!(" -p {p}"));
            }
            if let Some(m) = &s.netmask {
                if m.is_empty() || m.contains(char::is_whitespace) {
                    return Err(bad(format!("bad netmask {m:?}")));
                }
                rules.push_str(&format!(" -M {m}"));
            }
            if s.one_packet {
                rules.push_str(" -o");
            }
            if !s.flags.is_empty() {
                if s.flags
                    .iter()
                    .any(|x| x.is_empty() || x.contains([',', ' ']))
                {
                    return Err(bad(format!("bad scheduler flags {:?}", s.flags)));
                }
                rules.push_str(&format!(" -b {}", s.flags.join(",")));
            }
            rules.push('\n');
            for r in &s.server {
                let m = r.method.unwrap_or(s.method);
                rules.push_str(&format!(
                    "-a {svc} -r {} {} -w {}",
                    fmt_sock(r.address),
                    m.ipvsadm_options(r.gue_port.unwrap_or(GUE_PORT)),
                    r.weight
                ));
                if r.upper_threshold != 0 {
                    rules.push_str(&format!(" -x {}", r.upper_threshold));
                }
                if r.lower_threshold != 0 {
                    rules.push_str(&format!(" -y {}", r.lower_threshold));
                }
                rules.push('\n');
            }
        }
        Ok(Self {
            config,
            timeouts: d.timeouts,
            rules,
            origin: origin.to_owned(),
        })
    }

    /// A Director with these services; `scheduler` replaces every service's scheduler.
    ///
    /// # Errors
    /// [`ConfigError::Rules`] when the engine refuses a rule, [`ConfigError::Override`].
    pub fn build(
        &self,
        seed: [u8; 32],
        scheduler: Option<SchedulerName>,
    ) -> Result<Director, ConfigError> {
        let mut d = Director::from_rules(self.config.clone(), seed, &self.rules)
            .map_err(ConfigError::Rules)?;
        if let Some(t) = self.timeouts {
            d.set_timeouts(
                Duration::from_secs(t.tcp),
                Duration::from_secs(t.tcpfin),
                Duration::from_secs(t.udp),
            );
        }
        if let Some(s) = scheduler {
            let ids: Vec<_> = d.services().map(|(id, v)| (id, *v.config())).collect();
            for (id, mut cfg) in ids {
                cfg.scheduler = s;
                // Scheduler flags belong to the scheduler they were set for.
                cfg.flags = lvs::service::SchedFlags::NONE;
                d.edit_service(id, cfg).map_err(ConfigError::Override)?;
            }
        }
        Ok(d)
    }
}

/// A destination of client traffic: protocol number, address, port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    /// IP protocol (6, 17 or 132).
    pub protocol: u8,
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.protocol {
            proto::TCP => "TCP",
            proto::UDP => "UDP",
            _ => "SCTP",
        };
        write!(f, "{p} {}", fmt_sock(SocketAddr::new(self.addr, self.port)))
    }
}

/// Protocol, source, destination and ports of an IP packet from its fixed headers alone,
/// for packets the full parse refuses (snapped captures): IPv4 with options, or IPv6
/// without extension headers, and at least the four port bytes.
#[must_use]
pub fn lenient_ports(ip: &[u8]) -> Option<(u8, IpAddr, u16, IpAddr, u16)> {
    let (protocol, src, dst, l4): (u8, IpAddr, IpAddr, usize) = match ip.first()? >> 4 {
        4 if ip.len() >= 20 => {
            let frag = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff;
            if frag != 0 {
                return None;
            }
            let s: [u8; 4] = ip[12..16].try_into().ok()?;
            let d: [u8; 4] = ip[16..20].try_into().ok()?;
            (ip[9], s.into(), d.into(), usize::from(ip[0] & 0xf) * 4)
        }
        6 if ip.len() >= 40 => {
            let s: [u8; 16] = ip[8..24].try_into().ok()?;
            let d: [u8; 16] = ip[24..40].try_into().ok()?;
            (ip[6], s.into(), d.into(), 40)
        }
        _ => return None,
    };
    if !matches!(protocol, proto::TCP | proto::UDP | proto::SCTP) {
        return None;
    }
    let p = ip.get(l4..l4 + 4)?;
    Some((
        protocol,
        src,
        u16::from_be_bytes([p[0], p[1]]),
        dst,
        u16::from_be_bytes([p[2], p[3]]),
    ))
}

/// The busiest destination of client traffic in the capture: the one most flows start
/// towards (TCP SYN without ACK, SCTP INIT, a UDP 5-tuple's first packet), then the one
/// with most packets, then the smallest. Returns it with its packet count. Packets the
/// engine cannot parse (snapped captures) count by their fixed headers.
#[must_use]
pub fn busiest_destination(cap: &Capture) -> Option<(Destination, u64)> {
    let mut counts: HashMap<Destination, (u64, u64)> = HashMap::new();
    let mut udp_flows: std::collections::HashSet<(IpAddr, u16, Destination)> =
        std::collections::HashSet::new();
    for (i, f) in cap.frames.iter().enumerate() {
        let frame = cap.frame(i);
        let Some(l3) = locate_l3(f.linktype, frame) else {
            continue;
        };
        let ip = &frame[l3.ip];
        let (protocol, src, sport, dst, dport, start) = match PacketSummary::parse(ip) {
            Ok(s) => {
                if s.quoted.is_some()
                    || !matches!(s.protocol, proto::TCP | proto::UDP | proto::SCTP)
                {
                    continue;
                }
                let Some(p) = s.ports else { continue };
                let start = match s.protocol {
                    proto::TCP => s.tcp_flags.is_some_and(|f| f & 0x12 == 0x02),
                    proto::SCTP => ip.get(s.l4_offset + 12) == Some(&1),
                    _ => false,
                };
                (s.protocol, s.src, p.src, s.dst, p.dst, start)
            }
            Err(_) => match lenient_ports(ip) {
                Some((pr, s, sp, d, dp)) => (pr, s, sp, d, dp, false),
                None => continue,
            },
        };
        let dest = Destination {
            protocol,
            addr: dst,
            port: dport,
        };
        let start = start || (protocol == proto::UDP && udp_flows.insert((src, sport, dest)));
        let e = counts.entry(dest).or_default();
        e.0 += u64::from(start);
        e.1 += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(d, (_, n))| (d, n))
}

/// The three real servers of a default service of `family` (IPv4 `10.200.0.1..3`, IPv6
/// `fd00:200::1..3`), on `port`.
#[must_use]
pub fn default_servers(v6: bool, port: u16) -> Vec<SocketAddr> {
    (1..=3u8)
        .map(|i| {
            let a: IpAddr = if v6 {
                Ipv6Addr::new(0xfd00, 0x200, 0, 0, 0, 0, 0, u16::from(i)).into()
            } else {
                Ipv4Addr::new(10, 200, 0, i).into()
            };
            SocketAddr::new(a, port)
        })
        .collect()
}

/// ipvsadm rules that put `dest` on a `wlc` service of three real servers
/// ([`default_servers`]) forwarded by `method`.
#[must_use]
pub fn default_rules(dest: Destination, method: Method) -> String {
    let opt = match dest.protocol {
        proto::TCP => "-t",
        proto::UDP => "-u",
        _ => "--sctp-service",
    };
    let svc = format!("{opt} {}", fmt_sock(SocketAddr::new(dest.addr, dest.port)));
    let mut r = format!("-A {svc} -s wlc\n");
    for s in default_servers(dest.addr.is_ipv6(), dest.port) {
        r.push_str(&format!(
            "-a {svc} -r {} {} -w 1\n",
            fmt_sock(s),
            method.ipvsadm_options(GUE_PORT)
        ));
    }
    r
}
