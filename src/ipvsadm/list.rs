//! A read-only snapshot of the state and the `ipvsadm -L -n` listings, byte for byte.
//!
//! The printers follow ipvsadm 1.31's `list_all`, `print_title`, `print_service_entry`,
//! `print_largenum`, `list_timeout` and `list_conn`/`print_conn` (which read
//! `/proc/net/ip_vs_conn`, whose fields [`ConnView`] carries directly). Output is always
//! numeric (`-n`): this library resolves no names.

use super::rules::{ServiceConfig, ServiceKey};
use super::{cmp_dests, cmp_services, fmt_addr_port, glibc_msort};
use crate::conn_table::{SctpState, TcpState, Timeouts};
use crate::forward::tunnel::{GueChecksum, TunnelKind};
use crate::scheduler::dest::{ForwardMethod, RealServerConfig};
use core::fmt::Write as _;
use core::net::SocketAddr;
use core::time::Duration;

/// `IP_VS_VERSION_CODE` 0x010201, as `ipvsadm -L` prints it.
pub const IPVS_VERSION: &str = "1.2.1";

pub use crate::stats::{Counters, Rates};

/// A real server as listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestView {
    /// Address, port, forwarding method, weight and thresholds.
    pub config: RealServerConfig,
    /// Active connections.
    pub active: u32,
    /// Inactive connections.
    pub inactive: u32,
    /// Persistence templates pointing here.
    pub persistent: u32,
    /// Counters.
    pub stats: Counters,
    /// Rates.
    pub rates: Rates,
}

impl DestView {
    /// A server with zero counters.
    #[must_use]
    pub fn new(config: RealServerConfig) -> Self {
        Self {
            config,
            active: 0,
            inactive: 0,
            persistent: 0,
            stats: Counters::default(),
            rates: Rates::default(),
        }
    }
}

/// A virtual service as listed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceView {
    /// Key, scheduler, flags, persistence, netmask, persistence engine, one-packet.
    pub config: ServiceConfig,
    /// Counters.
    pub stats: Counters,
    /// Rates.
    pub rates: Rates,
    /// Real servers in the kernel's list order (newest first); the listings sort them
    /// unless `--nosort`.
    pub dests: Vec<DestView>,
}

impl ServiceView {
    /// A service without servers and with zero counters.
    #[must_use]
    pub fn new(config: ServiceConfig) -> Self {
        Self {
            config,
            stats: Counters::default(),
            rates: Rates::default(),
            dests: Vec::new(),
        }
    }
}

/// The state a connection entry shows.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// A TCP connection.
    Tcp(TcpState),
    /// An SCTP connection.
    Sctp(SctpState),
    /// A UDP connection (`UDP`).
    Udp,
    /// A persistence template: `NONE` or `ASSURED`.
    Template {
        /// Whether the template is assured.
        assured: bool,
    },
    /// A name given as is (for protocols without a state table, e.g. `ERR!`).
    Raw(&'static str),
}

impl ConnState {
    /// The name `/proc/net/ip_vs_conn` and `ipvsadm -Lnc` print.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tcp(s) => s.name(),
            Self::Sctp(s) => s.name(),
            Self::Udp => "UDP",
            Self::Template { assured: true } => "ASSURED",
            Self::Template { assured: false } => "NONE",
            Self::Raw(s) => s,
        }
    }
}

/// One line of `/proc/net/ip_vs_conn`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnView {
    /// IP protocol number (0 for fwmark templates, printed `IP`).
    pub protocol: u8,
    /// State.
    pub state: ConnState,
    /// Time left before expiry (printed in whole seconds, as `MM:SS`).
    pub expires_in: Duration,
    /// Client address and port.
    pub client: SocketAddr,
    /// Virtual address and port (a fwmark template has the mark as an IPv4 address).
    pub virtual_: SocketAddr,
    /// Real server address and port.
    pub dest: SocketAddr,
    /// Persistence engine name and data, if any (`sip` and the Call-ID).
    pub pe: Option<(String, String)>,
}

/// Everything the listings show.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Connection table size, printed as `(size=N)` (the kernel's default is 4096).
    pub conn_tab_size: u32,
    /// Services in the kernel's enumeration order (sorted when listed, unless
    /// `--nosort`).
    pub services: Vec<ServiceView>,
    /// Timeouts (`-L --timeout` shows TCP ESTABLISHED, FIN_WAIT and UDP).
    pub timeouts: Timeouts,
    /// Connection entries in the kernel's table order (`-L -c` does not sort).
    pub conns: Vec<ConnView>,
}

/// Which `-L` variant. The first set of `stats`, `rate`, `thresholds`,
/// `persistent_conn`, `tun_info` decides the columns, in that order of precedence, as in
/// ipvsadm; `stats` and `rate` also change the service lines.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ListFormat {
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--tun-info`.
    pub tun_info: bool,
    /// `--exact`: full numbers instead of K/M/G/T.
    pub exact: bool,
    /// `--nosort`: kernel order.
    pub nosort: bool,
}

/// `print_largenum`: `%9llu` below 10^8, else `%8llu` of thousands, millions, billions or
/// trillions with `K`, `M`, `G`, `T`; with `--exact` the full number in at least 9 columns
/// and always one leading space.
pub fn largenum(out: &mut String, i: u64, exact: bool) {
    if exact {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        let _ = write!(out, "{i:>w$}");
        return;
    }
    let _ = if i < 100_000_000 {
        write!(out, "{i:>9}")
    } else if i < 1_000_000_000 {
        write!(out, "{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        write!(out, "{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        write!(out, "{:>8}G", i / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", i / 1_000_000_000_000)
    };
}

/// `print_title`.
#[must_use]
pub fn title(f: &ListFormat) -> String {
    const PROT: &str = "Prot LocalAddress:Port";
    const RS: &str = "  -> RemoteAddress:Port\n";
    if f.stats {
        format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{RS}",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if f.rate {
        format!(
            "{PROT:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{RS}",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if f.thresholds {
        format!(
            "{PROT:<33} {:<10} {:<10} {:<10} {:<10}\n{RS}",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if f.persistent_conn {
        format!(
            "{PROT:<33} {:<9} {:<11} {:<10} {:<10}\n{RS}",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if f.tun_info {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n".to_owned()
    } else {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".to_owned()
    }
}

/// `fwd_name`.
#[must_use]
pub const fn fwd_name(f: ForwardMethod) -> &'static str {
    match f {
        ForwardMethod::Nat => "Masq",
        ForwardMethod::Tunnel(_) => "Tunnel",
        ForwardMethod::Local => "Local",
        _ => "Route",
    }
}

/// `fwd_tun_info`: `ipip`, `gue:PORT:-c|+c|r+c`, `gre:-c|+c`, or `n/a`.
#[must_use]
pub fn tun_info(f: ForwardMethod) -> String {
    let flag = |i: usize| ["-c", "+c", "r+c"][i];
    let mut s = match f {
        ForwardMethod::Tunnel(TunnelKind::Ipip) => "ipip".to_owned(),
        ForwardMethod::Tunnel(TunnelKind::Gue { port, checksum }) => {
            let i = match checksum {
                GueChecksum::None => 0,
                GueChecksum::Csum => 1,
                _ => 2,
            };
            format!("gue:{port}:{}", flag(i))
        }
        ForwardMethod::Tunnel(TunnelKind::Gre { checksum, .. }) => {
            format!("gre:{}", flag(usize::from(checksum)))
        }
        _ => return "n/a".to_owned(),
    };
    // snprintf(info, 16, ...)
    s.truncate(15);
    s
}

fn sorted_services(services: &[ServiceView], nosort: bool) -> Vec<&ServiceView> {
    let mut v: Vec<&ServiceView> = services.iter().collect();
    if !nosort {
        glibc_msort(&mut v, &|a: &&ServiceView, b: &&ServiceView| {
            cmp_services(&a.config.key, &b.config.key)
        });
    }
    v
}

pub(crate) fn sorted_dests<T: Clone>(d: &[T], addr: impl Fn(&T) -> RealServerConfig) -> Vec<T> {
    let mut v = d.to_vec();
    glibc_msort(&mut v, &|a: &T, b: &T| {
        let (a, b) = (addr(a), addr(b));
        cmp_dests((a.addr, a.port), (b.addr, b.port))
    });
    v
}

/// `print_service_entry` without `FMT_RULE`.
fn service_entry(out: &mut String, s: &ServiceView, f: &ListFormat) {
    let c = &s.config;
    let name = c.key.list_name();
    if f.stats || f.rate {
        let _ = write!(out, "{name:<33}");
        let v = if f.stats {
            [
                s.stats.conns,
                s.stats.inpkts,
                s.stats.outpkts,
                s.stats.inbytes,
                s.stats.outbytes,
            ]
        } else {
            [
                s.rates.cps,
                s.rates.inpps,
                s.rates.outpps,
                s.rates.inbps,
                s.rates.outbps,
            ]
        };
        for x in v {
            largenum(out, x, f.exact);
        }
    } else {
        let _ = write!(out, "{name} {}", c.scheduler.name());
        if !c.flags.is_empty() {
            let _ = write!(out, " ({})", c.flags.names(c.scheduler));
        }
        if let Some(t) = c.persistence {
            let _ = write!(out, " persistent {t}");
            if !c.netmask.is_full() {
                let _ = write!(out, " mask {}", c.netmask);
            }
            if let Some(pe) = c.pe {
                let _ = write!(out, " pe {}", pe.name());
            }
        }
        if c.one_packet {
            out.push_str(" ops");
        }
    }
    out.push('\n');
    let dests = if f.nosort {
        s.dests.clone()
    } else {
        sorted_dests(&s.dests, |d| d.config)
    };
    for d in &dests {
        let r = &d.config;
        let mut dname = fmt_addr_port(r.addr, r.port);
        if r.addr.is_ipv4() {
            dname.truncate(28);
        }
        if f.stats {
            let _ = write!(out, "  -> {dname:<28}");
            for x in [
                d.stats.conns,
                d.stats.inpkts,
                d.stats.outpkts,
                d.stats.inbytes,
                d.stats.outbytes,
            ] {
                largenum(out, x, f.exact);
            }
            out.push('\n');
        } else if f.rate {
            // "  -> %-28s %8llu %8llu %8llu": CPS and PPS are never abbreviated.
            let _ = write!(
                out,
                "  -> {dname:<28} {:>8} {:>8} {:>8}",
                d.rates.cps, d.rates.inpps, d.rates.outpps
            );
            largenum(out, d.rates.inbps, f.exact);
            largenum(out, d.rates.outbps, f.exact);
            out.push('\n');
        } else if f.thresholds {
            // "  -> %-28s %-10u %-10u %-10u %-10u\n"
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                r.u_threshold, r.l_threshold, d.active, d.inactive
            );
        } else if f.persistent_conn {
            // "  -> %-28s %-9u %-11u %-10u %-10u\n"
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                r.weight, d.persistent, d.active, d.inactive
            );
        } else if f.tun_info {
            // "  -> %-28s %-7s %-13s %-6d %-10u %-10u\n"
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                fwd_name(r.forward),
                tun_info(r.forward),
                r.weight,
                d.active,
                d.inactive
            );
        } else {
            // "  -> %-28s %-7s %-6d %-10u %-10u\n"
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                fwd_name(r.forward),
                r.weight,
                d.active,
                d.inactive
            );
        }
    }
}

/// `ipvsadm -L -n` with the options of `f` (`list_all`): the version line, the title and
/// every service.
#[must_use]
pub fn list(snap: &Snapshot, f: &ListFormat) -> String {
    let mut out = format!(
        "IP Virtual Server version {IPVS_VERSION} (size={})\n",
        snap.conn_tab_size
    );
    out.push_str(&title(f));
    for s in sorted_services(&snap.services, f.nosort) {
        service_entry(&mut out, s, f);
    }
    out
}

/// `ipvsadm -L -n <service>` (`list_service`): the title and that service, or `None`
/// where ipvsadm says "No such service".
#[must_use]
pub fn list_service(snap: &Snapshot, key: &ServiceKey, f: &ListFormat) -> Option<String> {
    let s = snap.services.iter().find(|s| s.config.key == *key)?;
    let mut out = title(f);
    service_entry(&mut out, s, f);
    Some(out)
}

/// `ipvsadm -L --timeout`: `"Timeout (tcp tcpfin udp): %d %d %d\n"`.
#[must_use]
pub fn list_timeout(t: &Timeouts) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp(TcpState::Established).as_secs(),
        t.tcp(TcpState::FinWait).as_secs(),
        t.udp.as_secs()
    )
}

/// `ip_vs_proto_name`.
#[must_use]
pub fn proto_name(p: u8) -> String {
    match p {
        0 => "IP".to_owned(),
        6 => "TCP".to_owned(),
        17 => "UDP".to_owned(),
        132 => "SCTP".to_owned(),
        50 => "ESP".to_owned(),
        51 => "AH".to_owned(),
        n => format!("IP_{n}"),
    }
}

/// `ipvsadm -L -n -c` (with `persistent_conn`: `-L -n -c --persistent-conn`, which adds
/// the persistence-engine columns to entries that have them).
#[must_use]
pub fn list_conns(snap: &Snapshot, persistent_conn: bool) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if persistent_conn {
        // "pro expire %-11s %-18s %-18s %-18s %-16s %s\n"
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        // "pro expire %-11s %-18s %-18s %s\n"
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} destination",
            "state", "source", "virtual"
        );
    }
    for c in &snap.conns {
        let secs = c.expires_in.as_secs().min(u64::from(u32::MAX));
        // "%02d:%02d"
        let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
        let sa = |a: SocketAddr| fmt_addr_port(a.ip(), a.port());
        let (cn, vn, dn) = (sa(c.client), sa(c.virtual_), sa(c.dest));
        let proto = proto_name(c.protocol);
        let state = c.state.name();
        match (&c.pe, persistent_conn) {
            (Some((name, data)), true) => {
                // "%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n"
                let _ = writeln!(
                    out,
                    "{proto:<3} {expire:<6} {state:<11} {cn:<18} {vn:<18} {dn:<16} {name:<18} {data}"
                );
            }
            _ => {
                // "%-3s %-6s %-11s %-18s %-18s %s\n"
                let _ = writeln!(
                    out,
                    "{proto:<3} {expire:<6} {state:<11} {cn:<18} {vn:<18} {dn}"
                );
            }
        }
    }
    out
}
