//! The ipvsadm rule language: one command per line, as `ipvsadm-save` writes it and
//! `ipvsadm -R` reads it.
//!
//! The parser follows ipvsadm 1.31 (`parse_options`, `process_options`, popt 1.16): the
//! same option spellings (short, clustered `-gw5`, attached `-w5`/`-w=5`, long
//! `--weight 5`/`--weight=5`, `--` ending options), the optional argument of `-p` (taken
//! only when the next word does not start with `-`), the same order of checks, the
//! legality table `commands_v_options`, the tunnel table `tunnel_types_v_options`, the
//! defaults (scheduler `wlc`, `-g`, weight 1, persistence 360 s, the real-server port
//! rules) and its messages. Address and number syntax is glibc's (`inet_aton`,
//! `inet_pton`, `strtol`), so `10.1:80`, `0x0a.0.0.1` and `+80` are accepted as there.
//! Host and service names are refused with [`RuleErrorKind::NotNumeric`].
//!
//! Departures from ipvsadm, all documented on the items concerned: `#` starts a comment
//! (ipvsadm's reader does not actually honour it), only a *leading* `ipvsadm` word is
//! dropped (ipvsadm drops every such word), the scheduler and persistence engine are
//! checked against the kernel's modules here instead of by the kernel (ENOENT), and
//! commands that are not part of a rule set (`-L`, `-Z`, `-S`, `-R`, daemons, help)
//! are refused with [`RuleErrorKind::UnsupportedCommand`].

use crate::conn_table::Timeouts;
use crate::forward::tunnel::{GueChecksum, TunnelKind};
use crate::scheduler::dest::{ForwardMethod, MAX_WEIGHT, RealServerConfig};
use crate::wire::Family;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;

use super::fmt_addr_port;

/// ipvsadm's `MAX_TIMEOUT`: 31 days, the largest persistence and `--set` timeout.
pub const MAX_TIMEOUT: u32 = 86400 * 31;
/// `IPVS_SVC_PERSISTENT_TIMEOUT`: the timeout of a bare `-p`.
pub const DEFAULT_PERSISTENCE: u32 = 6 * 60;

pub use crate::service::{
    Netmask, PersistenceEngine, Protocol, SchedFlags, SchedulerName, ServiceConfig, ServiceKey,
};

/// A real server of a service (`-a`, `-e`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerRule {
    /// The service.
    pub service: ServiceKey,
    /// The server, after ipvsadm's port rules.
    pub server: RealServerConfig,
}

/// One command of the rule language.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `-A`.
    AddService(ServiceConfig),
    /// `-E`: every field is replaced (ipvsadm sends its defaults for options not given).
    EditService(ServiceConfig),
    /// `-D`.
    DeleteService(ServiceKey),
    /// `-C`.
    Clear,
    /// `-a`.
    AddServer(ServerRule),
    /// `-e`: every field is replaced (weight 1 and `-g` unless given).
    EditServer(ServerRule),
    /// `-d`.
    DeleteServer {
        /// The service.
        service: ServiceKey,
        /// The server's address.
        addr: IpAddr,
        /// The server's port.
        port: u16,
    },
    /// `--set tcp tcpfin udp` (seconds; 0 leaves a value unchanged).
    SetTimeouts {
        /// TCP ESTABLISHED.
        tcp: u32,
        /// TCP FIN_WAIT.
        tcpfin: u32,
        /// UDP.
        udp: u32,
    },
}

fn fwd_switch(f: ForwardMethod) -> &'static str {
    match f {
        ForwardMethod::Nat => "-m",
        ForwardMethod::Tunnel(_) => "-i",
        _ => "-g",
    }
}

/// `print_tunnel_rule`'s tail: ` --tun-type ...` for tunnel servers, empty otherwise.
pub(crate) fn tunnel_suffix(f: ForwardMethod) -> String {
    match f {
        ForwardMethod::Tunnel(TunnelKind::Ipip) => " --tun-type ipip".to_owned(),
        ForwardMethod::Tunnel(TunnelKind::Gue { port, checksum }) => {
            let c = match checksum {
                GueChecksum::None => "--tun-nocsum",
                GueChecksum::Csum => "--tun-csum",
                _ => "--tun-remcsum",
            };
            format!(" --tun-type gue --tun-port {port} {c}")
        }
        ForwardMethod::Tunnel(TunnelKind::Gre { checksum, .. }) => {
            let c = if checksum {
                "--tun-csum"
            } else {
                "--tun-nocsum"
            };
            format!(" --tun-type gre {c}")
        }
        _ => String::new(),
    }
}

/// The `-a` line `ipvsadm -S -n` prints for a server.
pub(crate) fn server_line(service: &ServiceKey, s: &RealServerConfig) -> String {
    format!(
        "-a {service} -r {} {} -w {}{}",
        fmt_addr_port(s.addr, s.port),
        fwd_switch(s.forward),
        s.weight,
        tunnel_suffix(s.forward)
    )
}

/// The service options `ipvsadm -S -n` prints after `-A <service>`.
pub(crate) fn service_opts(c: &ServiceConfig) -> String {
    let mut s = format!(" -s {}", c.scheduler.name());
    if let Some(t) = c.persistence {
        s.push_str(&format!(" -p {t}"));
        if !c.netmask.is_full() {
            s.push_str(&format!(" -M {}", c.netmask));
        }
    }
    if let Some(pe) = c.pe {
        s.push_str(&format!(" --pe {}", pe.name()));
    }
    if c.one_packet {
        s.push_str(" -o");
    }
    if !c.flags.is_empty() {
        s.push_str(" -b ");
        s.push_str(&c.flags.names(c.scheduler));
    }
    s
}

/// The command in ipvsadm syntax, in the spelling `ipvsadm -S -n` uses where it has one
/// (`-e` lines add ` -x N -y N` when thresholds are set; `-a` lines too, which `-S`
/// never prints).
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let thr = |s: &RealServerConfig| {
            let mut t = String::new();
            if s.u_threshold != 0 {
                t.push_str(&format!(" -x {}", s.u_threshold));
            }
            if s.l_threshold != 0 {
                t.push_str(&format!(" -y {}", s.l_threshold));
            }
            t
        };
        match self {
            Self::AddService(c) => write!(f, "-A {}{}", c.key, service_opts(c)),
            Self::EditService(c) => write!(f, "-E {}{}", c.key, service_opts(c)),
            Self::DeleteService(k) => write!(f, "-D {k}"),
            Self::Clear => f.write_str("-C"),
            Self::AddServer(r) => {
                write!(
                    f,
                    "{}{}",
                    server_line(&r.service, &r.server),
                    thr(&r.server)
                )
            }
            Self::EditServer(r) => {
                let l = server_line(&r.service, &r.server);
                write!(f, "-e{}{}", &l[2..], thr(&r.server))
            }
            Self::DeleteServer {
                service,
                addr,
                port,
            } => write!(f, "-d {service} -r {}", fmt_addr_port(*addr, *port)),
            Self::SetTimeouts { tcp, tcpfin, udp } => write!(f, "--set {tcp} {tcpfin} {udp}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Errors

/// Why a line was refused. Messages are ipvsadm's (or popt's) where it has one.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleErrorKind {
    /// popt: "unknown option".
    UnknownOption,
    /// popt: "missing argument".
    MissingArgument,
    /// The line has options but does not start with a command (ipvsadm prints its
    /// usage hint).
    MissingCommand,
    /// A command ipvsadm knows that is not part of a rule set (`-L`, `-Z`, `-S`, `-R`,
    /// `--start-daemon`, `--stop-daemon`, `-h`, `-v`).
    UnsupportedCommand,
    /// A second command on the line: "invalid option `%s'".
    InvalidOption,
    /// "unexpected argument %s".
    UnexpectedArgument,
    /// "--set option requires 3 timeout values".
    SetNeedsThreeValues,
    /// "invalid timeout value `%s' specified".
    InvalidTimeout,
    /// "illegal virtual server address\[:port\] specified".
    IllegalVirtualServer,
    /// "illegal real server address\[:port\] specified".
    IllegalRealServer,
    /// A host or service name where this library needs a number (it does no I/O).
    NotNumeric,
    /// "invalid fwmark value `%s' specified".
    InvalidFwmark,
    /// "illegal virtual server persistent mask specified".
    IllegalNetmask,
    /// "illegal ipv6 netmask specified".
    IllegalIpv6Netmask,
    /// "-6 used before -f".
    Ipv6BeforeFwmark,
    /// A scheduler the kernel does not have (the kernel's ENOENT, "Scheduler or
    /// persistence engine not found").
    UnknownScheduler,
    /// A persistence engine the kernel does not have (ENOENT, as above).
    UnknownPersistenceEngine,
    /// "illegal weight specified".
    IllegalWeight,
    /// "illegal u_threshold specified".
    IllegalUThreshold,
    /// "illegal l_threshold specified".
    IllegalLThreshold,
    /// "illegal syncid specified".
    IllegalSyncid,
    /// "illegal mcast-port specified".
    IllegalMcastPort,
    /// "illegal mcast-ttl specified".
    IllegalMcastTtl,
    /// "illegal sync-maxlen specified".
    IllegalSyncMaxlen,
    /// "invalid IPv4 mcast-group" / "invalid IPv6 mcast-group".
    InvalidMcastGroup,
    /// "illegal tunnel type specified".
    IllegalTunnelType,
    /// "illegal tunnel port specified".
    IllegalTunnelPort,
    /// "invalid scheduler flag `%s'".
    InvalidSchedFlag,
    /// "incompatible scheduler flag `%s'" (`sh-*` without `sh`, `mh-*` without `mh`).
    IncompatibleSchedFlag,
    /// "multiple '%s' options specified".
    MultipleOptions {
        /// ipvsadm's option name.
        option: &'static str,
    },
    /// "You need to supply the '%s' option for the '%s' command".
    MissingOption {
        /// ipvsadm's option name.
        option: &'static str,
        /// ipvsadm's command name.
        command: &'static str,
    },
    /// "Illegal '%s' option with the '%s' command".
    IllegalOption {
        /// ipvsadm's option name.
        option: &'static str,
        /// ipvsadm's command name.
        command: &'static str,
    },
    /// "The option '%s' conflicts with the '%s' option in the '%s' command".
    ConflictingOptions {
        /// The later option.
        option: &'static str,
        /// The earlier one.
        other: &'static str,
        /// ipvsadm's command name.
        command: &'static str,
    },
    /// "Zero port specified for non-persistent service".
    ZeroPortNonPersistent,
    /// "One-Packet Scheduling is only for UDP virtual services".
    OnePacketNotUdp,
    /// "Different address family is allowed only for tunneling servers".
    DifferentFamily,
    /// "Tunnel options conflict with forward method".
    TunnelOptionsConflict,
    /// "You need to supply the '%s' option for the '%s' tunnel type".
    TunnelMissingOption {
        /// ipvsadm's option name.
        option: &'static str,
        /// Tunnel type.
        tunnel: &'static str,
    },
    /// "Illegal '%s' option with the '%s' tunnel type".
    TunnelIllegalOption {
        /// ipvsadm's option name.
        option: &'static str,
        /// Tunnel type.
        tunnel: &'static str,
    },
    /// "The option '%s' conflicts with the '%s' option in the '%s' tunnel type".
    TunnelConflict {
        /// The later option.
        option: &'static str,
        /// The earlier one.
        other: &'static str,
        /// Tunnel type.
        tunnel: &'static str,
    },
    /// The command was refused when applied to the rule set (the kernel's error).
    Apply(ApplyError),
}

impl fmt::Display for RuleErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOption => f.write_str("unknown option"),
            Self::MissingArgument => f.write_str("missing argument"),
            Self::MissingCommand => f.write_str("no command given"),
            Self::UnsupportedCommand => f.write_str("command not supported in a rule set"),
            Self::InvalidOption => f.write_str("invalid option"),
            Self::UnexpectedArgument => f.write_str("unexpected argument"),
            Self::SetNeedsThreeValues => f.write_str("--set option requires 3 timeout values"),
            Self::InvalidTimeout => f.write_str("invalid timeout value specified"),
            Self::IllegalVirtualServer => {
                f.write_str("illegal virtual server address[:port] specified")
            }
            Self::IllegalRealServer => f.write_str("illegal real server address[:port] specified"),
            Self::NotNumeric => f.write_str("names are not resolved, a numeric value is needed"),
            Self::InvalidFwmark => f.write_str("invalid fwmark value specified"),
            Self::IllegalNetmask => f.write_str("illegal virtual server persistent mask specified"),
            Self::IllegalIpv6Netmask => f.write_str("illegal ipv6 netmask specified"),
            Self::Ipv6BeforeFwmark => f.write_str("-6 used before -f"),
            Self::UnknownScheduler => f.write_str("Scheduler or persistence engine not found"),
            Self::UnknownPersistenceEngine => {
                f.write_str("Scheduler or persistence engine not found")
            }
            Self::IllegalWeight => f.write_str("illegal weight specified"),
            Self::IllegalUThreshold => f.write_str("illegal u_threshold specified"),
            Self::IllegalLThreshold => f.write_str("illegal l_threshold specified"),
            Self::IllegalSyncid => f.write_str("illegal syncid specified"),
            Self::IllegalMcastPort => f.write_str("illegal mcast-port specified"),
            Self::IllegalMcastTtl => f.write_str("illegal mcast-ttl specified"),
            Self::IllegalSyncMaxlen => f.write_str("illegal sync-maxlen specified"),
            Self::InvalidMcastGroup => f.write_str("invalid mcast-group"),
            Self::IllegalTunnelType => f.write_str("illegal tunnel type specified"),
            Self::IllegalTunnelPort => f.write_str("illegal tunnel port specified"),
            Self::InvalidSchedFlag => f.write_str("invalid scheduler flag"),
            Self::IncompatibleSchedFlag => f.write_str("incompatible scheduler flag"),
            Self::MultipleOptions { option } => write!(f, "multiple '{option}' options specified"),
            Self::MissingOption { option, command } => write!(
                f,
                "You need to supply the '{option}' option for the '{command}' command"
            ),
            Self::IllegalOption { option, command } => {
                write!(f, "Illegal '{option}' option with the '{command}' command")
            }
            Self::ConflictingOptions {
                option,
                other,
                command,
            } => write!(
                f,
                "The option '{option}' conflicts with the '{other}' option in the '{command}' command"
            ),
            Self::ZeroPortNonPersistent => {
                f.write_str("Zero port specified for non-persistent service")
            }
            Self::OnePacketNotUdp => {
                f.write_str("One-Packet Scheduling is only for UDP virtual services")
            }
            Self::DifferentFamily => {
                f.write_str("Different address family is allowed only for tunneling servers")
            }
            Self::TunnelOptionsConflict => {
                f.write_str("Tunnel options conflict with forward method")
            }
            Self::TunnelMissingOption { option, tunnel } => write!(
                f,
                "You need to supply the '{option}' option for the '{tunnel}' tunnel type"
            ),
            Self::TunnelIllegalOption { option, tunnel } => {
                write!(
                    f,
                    "Illegal '{option}' option with the '{tunnel}' tunnel type"
                )
            }
            Self::TunnelConflict {
                option,
                other,
                tunnel,
            } => write!(
                f,
                "The option '{option}' conflicts with the '{other}' option in the '{tunnel}' tunnel type"
            ),
            Self::Apply(e) => fmt::Display::fmt(e, f),
        }
    }
}

/// A refused line: where, which word, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// 1-based line number (0 when parsing a single argument list).
    pub line: usize,
    /// The offending word (an option, its argument, or the service or server it names).
    pub word: String,
    /// Why.
    pub kind: RuleErrorKind,
}

/// `line 3: unknown option "--foo"`; messages with a subject read
/// `line 3: illegal weight specified: "70000"`.
impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            RuleErrorKind::UnknownOption
            | RuleErrorKind::InvalidOption
            | RuleErrorKind::UnexpectedArgument => {
                write!(f, "line {}: {} {:?}", self.line, self.kind, self.word)
            }
            RuleErrorKind::MissingArgument => {
                write!(
                    f,
                    "line {}: missing argument for {:?}",
                    self.line, self.word
                )
            }
            _ => write!(f, "line {}: {}: {:?}", self.line, self.kind, self.word),
        }
    }
}

impl std::error::Error for RuleError {}

/// The kernel's refusal of a command (`ipvs_strerror` texts).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApplyError {
    /// `-A` of an existing service (EEXIST).
    ServiceExists,
    /// `-E`/`-D` of a missing service (ESRCH).
    NoSuchService,
    /// `-a`/`-e`/`-d` on a missing service (ESRCH).
    ServiceNotDefined,
    /// `-a` of an existing server (EEXIST).
    DestinationExists,
    /// `-e`/`-d` of a missing server (ENOENT).
    NoSuchDestination,
    /// Lower threshold above the upper one (ERANGE).
    ThresholdRange,
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ServiceExists => "Service already exists",
            Self::NoSuchService => "No such service",
            Self::ServiceNotDefined => "Service not defined",
            Self::DestinationExists => "Destination already exists",
            Self::NoSuchDestination => "No such destination",
            Self::ThresholdRange => "Numerical result out of range",
        })
    }
}

impl std::error::Error for ApplyError {}

// ---------------------------------------------------------------------------------------
// glibc number and address syntax

/// `strtol(s, &end, 10)` over the whole string: `None` unless every byte was used
/// (leading white space and a sign allowed), saturating like `ERANGE`.
fn strtol_full(s: &str) -> Option<(i64, bool)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    let mut v: i128 = 0;
    let mut overflow = false;
    while i < b.len() && b[i].is_ascii_digit() {
        v = v * 10 + i128::from(b[i] - b'0');
        if v > i128::from(i64::MAX) + 1 {
            overflow = true;
            v = i128::from(i64::MAX) + 1;
        }
        i += 1;
    }
    if i == start || i != b.len() {
        return None;
    }
    let v = if neg { -v } else { v };
    let r = i64::try_from(v).unwrap_or(if neg { i64::MIN } else { i64::MAX });
    Some((r, overflow || i64::try_from(v).is_err()))
}

/// ipvsadm `string_to_number`.
fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    match strtol_full(s) {
        Some((n, false)) if (min..=max).contains(&n) => Some(n),
        _ => None,
    }
}

/// `atoi`: the leading number (0 if none), truncated to `int` like glibc's
/// `(int) strtol(...)`.
fn atoi(s: &str) -> i32 {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i128 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        v = (v * 10 + i128::from(b[i] - b'0')).min(i128::from(i64::MAX) + 1);
        i += 1;
    }
    let v = if neg { -v } else { v };
    let l = i64::try_from(v).unwrap_or(if neg { i64::MIN } else { i64::MAX });
    #[allow(clippy::cast_possible_truncation)]
    let r = l as i32;
    r
}

/// glibc `inet_aton`: one to four parts, each decimal, octal (`0...`) or hex (`0x...`),
/// the last part filling the remaining bytes.
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut parts: Vec<u64> = Vec::new();
    let mut i = 0;
    loop {
        if !b.get(i)?.is_ascii_digit() {
            return None;
        }
        let (base, mut j) = if b[i] == b'0' {
            if matches!(b.get(i + 1), Some(b'x' | b'X'))
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            {
                (16, i + 2)
            } else {
                (8, i)
            }
        } else {
            (10, i)
        };
        let mut v: u64 = 0;
        while let Some(&c) = b.get(j) {
            let d = match c {
                b'0'..=b'9' => u64::from(c - b'0'),
                b'a'..=b'f' => u64::from(c - b'a' + 10),
                b'A'..=b'F' => u64::from(c - b'A' + 10),
                _ => break,
            };
            if d >= base {
                break;
            }
            v = (v * base + d).min(u64::from(u32::MAX) + 1);
            j += 1;
        }
        i = j;
        if b.get(i) == Some(&b'.') {
            if parts.len() > 2 || v > 0xff {
                return None;
            }
            parts.push(v);
            i += 1;
        } else {
            // Trailing white space is allowed (it cannot occur in a word).
            if i != b.len() && !b[i].is_ascii_whitespace() {
                return None;
            }
            let max: u64 = match parts.len() {
                0 => 0xffff_ffff,
                1 => 0xff_ffff,
                2 => 0xffff,
                _ => 0xff,
            };
            if v > max {
                return None;
            }
            let mut a: u64 = v;
            for (k, p) in parts.iter().enumerate() {
                a |= p << (24 - 8 * k);
            }
            return Some(Ipv4Addr::from(u32::try_from(a).ok()?));
        }
    }
}

enum SvcParse {
    Illegal,
    NotNumeric,
}

/// ipvsadm `parse_service` without name lookups: the address and the port if one was
/// given (`SERVICE_PORT`), with the bracket quirks (`[1.2.3.4]:80` has no port).
fn parse_service(buf: &str) -> Result<(IpAddr, Option<u16>), SvcParse> {
    if buf.bytes().all(|c| c.is_ascii_digit()) {
        return Err(SvcParse::Illegal);
    }
    let (host, mut portp): (&str, Option<&str>) = if let Some(rest) = buf.strip_prefix('[') {
        let close = rest.find(']').ok_or(SvcParse::Illegal)?;
        let after = &rest[close + 1..];
        match after.strip_prefix(':') {
            Some(p) => (&rest[..close], Some(p)),
            None => return Err(SvcParse::Illegal),
        }
    } else {
        (buf, None)
    };
    let addr = if let Ok(v6) = host.parse::<Ipv6Addr>() {
        IpAddr::V6(v6)
    } else {
        let h = match host.rfind(':') {
            Some(k) => {
                portp = Some(&host[k + 1..]);
                &host[..k]
            }
            None => {
                portp = None;
                host
            }
        };
        match inet_aton(h) {
            Some(a) => IpAddr::V4(a),
            None if h.is_empty() => return Err(SvcParse::Illegal),
            None => return Err(SvcParse::NotNumeric),
        }
    };
    let port = match portp {
        None => None,
        Some(p) => match string_to_number(p, 0, 65535) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(n) => Some(n as u16),
            None if p.is_empty() || strtol_full(p).is_some() => return Err(SvcParse::Illegal),
            None => return Err(SvcParse::NotNumeric),
        },
    };
    Ok((addr, port))
}

// ---------------------------------------------------------------------------------------
// popt emulation

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Required,
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
    Help,
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Cmd(Cmd),
    Service(Protocol),
    Fwmark,
    Sched,
    Persistent,
    Netmask,
    Real,
    Masq,
    Ipip,
    Gate,
    Weight,
    UThr,
    LThr,
    Numeric,
    Connection,
    McastIf,
    Syncid,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
}

/// ipvsadm's popt table, in its order.
const OPTIONS: &[(&str, Option<u8>, Arg, Tag)] = &[
    ("add-service", Some(b'A'), Arg::None, Tag::Cmd(Cmd::Add)),
    ("edit-service", Some(b'E'), Arg::None, Tag::Cmd(Cmd::Edit)),
    ("delete-service", Some(b'D'), Arg::None, Tag::Cmd(Cmd::Del)),
    ("clear", Some(b'C'), Arg::None, Tag::Cmd(Cmd::Flush)),
    ("list", Some(b'L'), Arg::None, Tag::Cmd(Cmd::List)),
    ("list", Some(b'l'), Arg::None, Tag::Cmd(Cmd::List)),
    ("zero", Some(b'Z'), Arg::None, Tag::Cmd(Cmd::Zero)),
    ("add-server", Some(b'a'), Arg::None, Tag::Cmd(Cmd::AddDest)),
    (
        "edit-server",
        Some(b'e'),
        Arg::None,
        Tag::Cmd(Cmd::EditDest),
    ),
    (
        "delete-server",
        Some(b'd'),
        Arg::None,
        Tag::Cmd(Cmd::DelDest),
    ),
    ("set", None, Arg::None, Tag::Cmd(Cmd::Timeout)),
    ("help", Some(b'h'), Arg::None, Tag::Cmd(Cmd::Help)),
    ("version", Some(b'v'), Arg::None, Tag::Cmd(Cmd::Version)),
    ("restore", Some(b'R'), Arg::None, Tag::Cmd(Cmd::Restore)),
    ("save", Some(b'S'), Arg::None, Tag::Cmd(Cmd::Save)),
    (
        "start-daemon",
        None,
        Arg::Required,
        Tag::Cmd(Cmd::StartDaemon),
    ),
    (
        "stop-daemon",
        None,
        Arg::Required,
        Tag::Cmd(Cmd::StopDaemon),
    ),
    (
        "tcp-service",
        Some(b't'),
        Arg::Required,
        Tag::Service(Protocol::Tcp),
    ),
    (
        "udp-service",
        Some(b'u'),
        Arg::Required,
        Tag::Service(Protocol::Udp),
    ),
    (
        "sctp-service",
        None,
        Arg::Required,
        Tag::Service(Protocol::Sctp),
    ),
    ("fwmark-service", Some(b'f'), Arg::Required, Tag::Fwmark),
    ("scheduler", Some(b's'), Arg::Required, Tag::Sched),
    ("persistent", Some(b'p'), Arg::Optional, Tag::Persistent),
    ("netmask", Some(b'M'), Arg::Required, Tag::Netmask),
    ("real-server", Some(b'r'), Arg::Required, Tag::Real),
    ("masquerading", Some(b'm'), Arg::None, Tag::Masq),
    ("ipip", Some(b'i'), Arg::None, Tag::Ipip),
    ("gatewaying", Some(b'g'), Arg::None, Tag::Gate),
    ("weight", Some(b'w'), Arg::Required, Tag::Weight),
    ("u-threshold", Some(b'x'), Arg::Required, Tag::UThr),
    ("l-threshold", Some(b'y'), Arg::Required, Tag::LThr),
    ("numeric", Some(b'n'), Arg::None, Tag::Numeric),
    ("connection", Some(b'c'), Arg::None, Tag::Connection),
    ("mcast-interface", None, Arg::Required, Tag::McastIf),
    ("syncid", None, Arg::Required, Tag::Syncid),
    ("timeout", None, Arg::None, Tag::Timeout),
    ("daemon", None, Arg::None, Tag::Daemon),
    ("stats", None, Arg::None, Tag::Stats),
    ("rate", None, Arg::None, Tag::Rate),
    ("thresholds", None, Arg::None, Tag::Thresholds),
    ("persistent-conn", None, Arg::None, Tag::PersistentConn),
    ("nosort", None, Arg::None, Tag::NoSort),
    ("sort", None, Arg::None, Tag::Sort),
    ("exact", Some(b'X'), Arg::None, Tag::Exact),
    ("ipv6", Some(b'6'), Arg::None, Tag::Ipv6),
    ("ops", Some(b'o'), Arg::None, Tag::Ops),
    ("pe", None, Arg::Required, Tag::Pe),
    ("sched-flags", Some(b'b'), Arg::Required, Tag::SchedFlags),
    ("mcast-group", None, Arg::Required, Tag::McastGroup),
    ("mcast-port", None, Arg::Required, Tag::McastPort),
    ("mcast-ttl", None, Arg::Required, Tag::McastTtl),
    ("sync-maxlen", None, Arg::Required, Tag::SyncMaxlen),
    ("tun-info", None, Arg::None, Tag::TunInfo),
    ("tun-type", None, Arg::Required, Tag::TunType),
    ("tun-port", None, Arg::Required, Tag::TunPort),
    ("tun-nocsum", None, Arg::None, Tag::TunNocsum),
    ("tun-csum", None, Arg::None, Tag::TunCsum),
    ("tun-remcsum", None, Arg::None, Tag::TunRemcsum),
];

/// `optnames`, indexed by `OPTC_*`.
const OPTNAMES: [&str; 34] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
];

const OPTC_TUN_TYPE: usize = 29;
const OPTC_TUN_PORT: usize = 30;
const OPTC_TUN_NOCSUM: usize = 31;
const OPTC_TUN_CSUM: usize = 32;
const OPTC_TUN_REMCSUM: usize = 33;

/// The `OPTC_*` column an option sets (`-6` and `--sort` set none).
const fn optc(t: Tag) -> Option<usize> {
    Some(match t {
        Tag::Numeric => 0,
        Tag::Connection => 1,
        Tag::Service(_) | Tag::Fwmark => 2,
        Tag::Sched => 3,
        Tag::Persistent => 4,
        Tag::Netmask => 5,
        Tag::Real => 6,
        Tag::Masq | Tag::Ipip | Tag::Gate => 7,
        Tag::Weight => 8,
        Tag::UThr => 9,
        Tag::LThr => 10,
        Tag::McastIf => 11,
        Tag::Timeout => 12,
        Tag::Daemon => 13,
        Tag::Stats => 14,
        Tag::Rate => 15,
        Tag::Thresholds => 16,
        Tag::PersistentConn => 17,
        Tag::NoSort => 18,
        Tag::Syncid => 19,
        Tag::Exact => 20,
        Tag::Ops => 21,
        Tag::Pe => 22,
        Tag::SchedFlags => 23,
        Tag::McastGroup => 24,
        Tag::McastPort => 25,
        Tag::McastTtl => 26,
        Tag::SyncMaxlen => 27,
        Tag::TunInfo => 28,
        Tag::TunType => 29,
        Tag::TunPort => 30,
        Tag::TunNocsum => 31,
        Tag::TunCsum => 32,
        Tag::TunRemcsum => 33,
        Tag::Ipv6 | Tag::Sort | Tag::Cmd(_) => return None,
    })
}

/// `commands_v_options` rows of the rule commands, with `cmdnames`.
fn legality(c: Cmd) -> (&'static str, &'static [u8; 34]) {
    match c {
        Cmd::Add => ("add-service", b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx"),
        Cmd::Edit => ("edit-service", b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx"),
        Cmd::Del => ("delete-service", b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        Cmd::AddDest => ("add-server", b"xx+xxx+    xxxxxxxxxxxxxxxxxx     "),
        Cmd::DelDest => ("delete-server", b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        Cmd::EditDest => ("edit-server", b"xx+xxx+    xxxxxxxxxxxxxxxxxx     "),
        Cmd::Timeout => ("set", b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        _ => ("flush", b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    }
}

/// `tunnel_types_v_options` (columns tun-port, nocsum, csum, remcsum).
const TUNNAMES: [&str; 3] = ["ipip", "gue", "gre"];
const TUN_TABLE: [&[u8; 4]; 3] = [b"xxxx", b"+111", b"x11x"];
const TUNOPTS: [usize; 4] = [
    OPTC_TUN_PORT,
    OPTC_TUN_NOCSUM,
    OPTC_TUN_CSUM,
    OPTC_TUN_REMCSUM,
];

enum Event<'a> {
    Opt {
        tag: Tag,
        word: &'a str,
        arg: Option<&'a str>,
    },
}

struct Popt<'a> {
    argv: &'a [&'a str],
    next: usize,
    /// Rest of a short-option cluster, and the word it came from.
    chars: Option<(&'a str, &'a str)>,
    rest_leftover: bool,
    leftovers: Vec<&'a str>,
}

impl<'a> Popt<'a> {
    const fn new(argv: &'a [&'a str]) -> Self {
        Self {
            argv,
            next: 0,
            chars: None,
            rest_leftover: false,
            leftovers: Vec::new(),
        }
    }

    fn take_arg(&mut self, arg: Arg) -> Result<Option<&'a str>, ()> {
        if self.next == self.argv.len() {
            return if arg == Arg::Optional {
                Ok(None)
            } else {
                Err(())
            };
        }
        let w = self.argv[self.next];
        if arg == Arg::Optional && w.starts_with('-') {
            return Ok(None);
        }
        self.next += 1;
        Ok(Some(w))
    }

    /// The next option; `Ok(None)` at the end.
    fn next_opt(&mut self, line: usize) -> Result<Option<Event<'a>>, RuleError> {
        let err = |word: &str, kind| RuleError {
            line,
            word: word.to_owned(),
            kind,
        };
        loop {
            if let Some((rest, word)) = self.chars.take() {
                let found = rest
                    .as_bytes()
                    .first()
                    .and_then(|&c| OPTIONS.iter().find(|o| o.1 == Some(c)));
                let Some(&(_, _, arg, tag)) = found else {
                    return Err(err(word, RuleErrorKind::UnknownOption));
                };
                // The letter is ASCII, so 1 is a char boundary. popt skips one '=' after
                // the letter when something follows it.
                let after = &rest[1..];
                let pending = (!after.is_empty()).then(|| after.strip_prefix('=').unwrap_or(after));
                let argv = if arg == Arg::None {
                    self.chars = pending.map(|p| (p, word));
                    None
                } else if let Some(p) = pending {
                    Some(p)
                } else {
                    self.take_arg(arg)
                        .map_err(|()| err(word, RuleErrorKind::MissingArgument))?
                };
                return Ok(Some(Event::Opt {
                    tag,
                    word,
                    arg: argv,
                }));
            }
            if self.next == self.argv.len() {
                return Ok(None);
            }
            let word = self.argv[self.next];
            self.next += 1;
            if self.rest_leftover || !word.starts_with('-') || word == "-" {
                self.leftovers.push(word);
                continue;
            }
            if word == "--" {
                self.rest_leftover = true;
                continue;
            }
            if let Some(long) = word.strip_prefix("--") {
                let (name, long_arg) = match long.find('=') {
                    Some(k) => (&long[..k], Some(&long[k + 1..])),
                    None => (long, None),
                };
                let Some(&(_, _, arg, tag)) = OPTIONS.iter().find(|o| o.0 == name) else {
                    return Err(err(word, RuleErrorKind::UnknownOption));
                };
                let argv = match arg {
                    Arg::None => None,
                    _ if long_arg.is_some() => long_arg,
                    _ => self
                        .take_arg(arg)
                        .map_err(|()| err(word, RuleErrorKind::MissingArgument))?,
                };
                return Ok(Some(Event::Opt {
                    tag,
                    word,
                    arg: argv,
                }));
            }
            // A single dash: a cluster of short options.
            self.chars = Some((&word[1..], word));
        }
    }
}

// ---------------------------------------------------------------------------------------
// ipvsadm's command entry

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fwd {
    Masq,
    Tunnel,
    Droute,
}

#[derive(Clone, Copy)]
enum MaskState {
    V4(Ipv4Addr),
    V6(u32),
}

struct Entry {
    cmd: Cmd,
    options: u64,
    // service
    v6: bool,
    protocol: Protocol,
    addr: IpAddr,
    port: u16,
    fwmark: u32,
    sched: Vec<u8>,
    persistent: Option<u32>,
    one_packet: bool,
    netmask: MaskState,
    pe: Vec<u8>,
    sched_flags: Option<(Vec<u8>, String)>,
    service_word: String,
    // dest
    daddr: Option<IpAddr>,
    dport: u16,
    fwd: Fwd,
    weight: u32,
    u_thr: u32,
    l_thr: u32,
    tun_type: usize,
    tun_port: u16,
    tun_flags: u16,
    server_word: String,
    pe_word: String,
    sched_word: String,
}

fn set_option(e: &mut Entry, optc: usize, line: usize, word: &str) -> Result<(), RuleError> {
    let bit = 1u64 << optc;
    if e.options & bit != 0 {
        return Err(RuleError {
            line,
            word: word.to_owned(),
            kind: RuleErrorKind::MultipleOptions {
                option: OPTNAMES[optc],
            },
        });
    }
    e.options |= bit;
    Ok(())
}

/// Splits a line into words as `ipvsadm -R` does (space, tab, CR), drops a `#` comment
/// and a leading `ipvsadm`.
fn words(line: &str) -> Vec<&str> {
    let mut v: Vec<&str> = Vec::new();
    for w in line
        .split([' ', '\t', '\r', '\n'])
        .filter(|w| !w.is_empty())
    {
        if w.starts_with('#') {
            break;
        }
        v.push(w);
    }
    if v.first() == Some(&"ipvsadm") {
        v.remove(0);
    }
    v
}

/// Parses one line. `Ok(None)` for a blank or comment line.
///
/// # Errors
/// The first problem ipvsadm would report, in its order of checks.
pub fn parse_line(line: &str, line_no: usize) -> Result<Option<Command>, RuleError> {
    let w = words(line);
    if w.is_empty() {
        return Ok(None);
    }
    parse_args(&w, line_no).map(Some)
}

/// Parses the whole text of a rule file: one command per line.
///
/// # Errors
/// The first refused line.
pub fn parse_rules(text: &str) -> Result<Vec<(usize, Command)>, RuleError> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if let Some(c) = parse_line(l, i + 1)? {
            out.push((i + 1, c));
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_lines)]
fn handle_opt(
    e: &mut Entry,
    tag: Tag,
    word: &str,
    arg: Option<&str>,
    line: usize,
) -> Result<(), RuleError> {
    let err = |w: &str, kind| {
        Err(RuleError {
            line,
            word: w.to_owned(),
            kind,
        })
    };
    if let Some(c) = optc(tag) {
        set_option(e, c, line, word)?;
    }
    let a = arg.unwrap_or("");
    match tag {
        Tag::Cmd(_) => return err(word, RuleErrorKind::InvalidOption),
        Tag::Service(p) => {
            e.protocol = p;
            e.service_word = a.to_owned();
            match parse_service(a) {
                Ok((addr, port)) => {
                    e.addr = addr;
                    e.v6 = addr.is_ipv6();
                    if e.v6 {
                        e.netmask = MaskState::V6(128);
                    }
                    if let Some(p) = port {
                        e.port = p;
                    }
                }
                Err(SvcParse::Illegal) => return err(a, RuleErrorKind::IllegalVirtualServer),
                Err(SvcParse::NotNumeric) => return err(a, RuleErrorKind::NotNumeric),
            }
        }
        Tag::Fwmark => {
            e.service_word = a.to_owned();
            e.v6 = false;
            e.protocol = Protocol::Tcp;
            match strtol_full(a) {
                Some((l, false)) if l > 0 && l <= i64::from(u32::MAX) => {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    {
                        e.fwmark = l as u32;
                    }
                }
                _ => return err(a, RuleErrorKind::InvalidFwmark),
            }
        }
        Tag::Sched => {
            e.sched = a.as_bytes()[..a.len().min(15)].to_vec();
            e.sched_word = a.to_owned();
        }
        Tag::Persistent => {
            e.persistent = Some(match arg {
                None => DEFAULT_PERSISTENCE,
                Some(t) => match string_to_number(t, 1, i64::from(MAX_TIMEOUT)) {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    Some(n) => n as u32,
                    None => return err(t, RuleErrorKind::InvalidTimeout),
                },
            });
        }
        Tag::Netmask => {
            if e.v6 {
                #[allow(clippy::cast_sign_loss)]
                let n = atoi(a) as u32;
                if !(1..=128).contains(&n) {
                    return err(a, RuleErrorKind::IllegalIpv6Netmask);
                }
                e.netmask = MaskState::V6(n);
            } else {
                match inet_aton(a) {
                    Some(m) => e.netmask = MaskState::V4(m),
                    None if a.is_empty() => return err(a, RuleErrorKind::IllegalNetmask),
                    None => return err(a, RuleErrorKind::NotNumeric),
                }
            }
        }
        Tag::Real => {
            e.server_word = a.to_owned();
            match parse_service(a) {
                Ok((addr, port)) => {
                    e.daddr = Some(addr);
                    e.dport = port.unwrap_or(e.port);
                }
                Err(SvcParse::Illegal) => return err(a, RuleErrorKind::IllegalRealServer),
                Err(SvcParse::NotNumeric) => return err(a, RuleErrorKind::NotNumeric),
            }
        }
        Tag::Ipip => e.fwd = Fwd::Tunnel,
        Tag::Gate => e.fwd = Fwd::Droute,
        Tag::Masq => e.fwd = Fwd::Masq,
        Tag::Weight | Tag::UThr | Tag::LThr => {
            let (max, kind) = match tag {
                Tag::Weight => (i64::from(MAX_WEIGHT), RuleErrorKind::IllegalWeight),
                Tag::UThr => (i64::from(i32::MAX), RuleErrorKind::IllegalUThreshold),
                _ => (i64::from(i32::MAX), RuleErrorKind::IllegalLThreshold),
            };
            let Some(n) = string_to_number(a, 0, max) else {
                return err(a, kind);
            };
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = n as u32;
            match tag {
                Tag::Weight => e.weight = n,
                Tag::UThr => e.u_thr = n,
                _ => e.l_thr = n,
            }
        }
        Tag::Syncid => {
            if string_to_number(a, 0, 255).is_none() {
                return err(a, RuleErrorKind::IllegalSyncid);
            }
        }
        Tag::McastGroup => {
            let ok = if a.contains(':') {
                a.parse::<Ipv6Addr>().is_ok_and(|g| g.is_multicast())
            } else {
                // inet_pton(AF_INET): strict dotted quad.
                a.parse::<Ipv4Addr>().is_ok_and(|g| g.is_multicast())
            };
            if !ok {
                return err(a, RuleErrorKind::InvalidMcastGroup);
            }
        }
        Tag::McastPort => {
            if string_to_number(a, 1, 65535).is_none() {
                return err(a, RuleErrorKind::IllegalMcastPort);
            }
        }
        Tag::McastTtl => {
            if string_to_number(a, 1, 255).is_none() {
                return err(a, RuleErrorKind::IllegalMcastTtl);
            }
        }
        Tag::SyncMaxlen => {
            if string_to_number(a, 1, 65535 - 20 - 8).is_none() {
                return err(a, RuleErrorKind::IllegalSyncMaxlen);
            }
        }
        Tag::Ipv6 => {
            if e.fwmark != 0 {
                e.v6 = true;
                e.netmask = MaskState::V6(128);
            } else {
                return err(word, RuleErrorKind::Ipv6BeforeFwmark);
            }
        }
        Tag::Ops => e.one_packet = true,
        Tag::Pe => {
            e.pe = a.as_bytes()[..a.len().min(16)].to_vec();
            e.pe_word = a.to_owned();
        }
        Tag::SchedFlags => {
            e.sched_flags = Some((a.as_bytes()[..a.len().min(127)].to_vec(), a.to_owned()));
        }
        Tag::TunType => {
            e.tun_type = match a {
                "ipip" => 0,
                "gue" => 1,
                "gre" => 2,
                _ => return err(a, RuleErrorKind::IllegalTunnelType),
            };
        }
        Tag::TunPort => match string_to_number(a, 1, 65535) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(n) => e.tun_port = n as u16,
            None => return err(a, RuleErrorKind::IllegalTunnelPort),
        },
        Tag::TunNocsum => {}
        Tag::TunCsum => e.tun_flags |= 1,
        Tag::TunRemcsum => e.tun_flags |= 2,
        Tag::Numeric
        | Tag::Connection
        | Tag::McastIf
        | Tag::Timeout
        | Tag::Daemon
        | Tag::Stats
        | Tag::Rate
        | Tag::Thresholds
        | Tag::PersistentConn
        | Tag::NoSort
        | Tag::Sort
        | Tag::Exact
        | Tag::TunInfo => {}
    }
    Ok(())
}

/// `parse_sched_flags`.
fn sched_flags(sched: &[u8], arg: &[u8]) -> Result<SchedFlags, (String, RuleErrorKind)> {
    let sched: &[u8] = if sched.is_empty() { b"wlc" } else { sched };
    let mut flags = SchedFlags::NONE;
    let mut any = false;
    for f in arg.split(|&c| c == b',').filter(|f| !f.is_empty()) {
        any = true;
        let (bit, need): (SchedFlags, Option<&[u8]>) = match f {
            b"flag-1" => (SchedFlags::FLAG_1, None),
            b"flag-2" => (SchedFlags::FLAG_2, None),
            b"flag-3" => (SchedFlags::FLAG_3, None),
            b"sh-fallback" => (SchedFlags::FLAG_1, Some(b"sh")),
            b"sh-port" => (SchedFlags::FLAG_2, Some(b"sh")),
            b"mh-fallback" => (SchedFlags::FLAG_1, Some(b"mh")),
            b"mh-port" => (SchedFlags::FLAG_2, Some(b"mh")),
            _ => {
                return Err((
                    String::from_utf8_lossy(f).into_owned(),
                    RuleErrorKind::InvalidSchedFlag,
                ));
            }
        };
        flags = flags.union(bit);
        if need.is_some_and(|n| n != sched) {
            return Err((
                String::from_utf8_lossy(f).into_owned(),
                RuleErrorKind::IncompatibleSchedFlag,
            ));
        }
    }
    if !any {
        // ipvsadm passes NULL to strcmp here and crashes; refuse the word instead.
        return Err((
            String::from_utf8_lossy(arg).into_owned(),
            RuleErrorKind::InvalidSchedFlag,
        ));
    }
    Ok(flags)
}

/// Parses one command given as words (without `ipvsadm`), e.g. from a command line.
///
/// # Errors
/// The first problem ipvsadm would report, in its order of checks; `line_no` is put in
/// the error.
#[allow(clippy::too_many_lines)]
pub fn parse_args(argv: &[&str], line_no: usize) -> Result<Command, RuleError> {
    let line = line_no;
    let fail = |word: &str, kind| RuleError {
        line,
        word: word.to_owned(),
        kind,
    };
    let mut p = Popt::new(argv);
    let Some(Event::Opt { tag, word, .. }) = p.next_opt(line)? else {
        return Err(fail(
            argv.first().copied().unwrap_or(""),
            RuleErrorKind::MissingCommand,
        ));
    };
    let cmd = match tag {
        Tag::Cmd(
            c @ (Cmd::Add
            | Cmd::Edit
            | Cmd::Del
            | Cmd::Flush
            | Cmd::AddDest
            | Cmd::EditDest
            | Cmd::DelDest
            | Cmd::Timeout),
        ) => c,
        Tag::Cmd(_) => return Err(fail(word, RuleErrorKind::UnsupportedCommand)),
        _ => return Err(fail(word, RuleErrorKind::MissingCommand)),
    };
    let mut e = Entry {
        cmd,
        options: 0,
        v6: false,
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
        fwmark: 0,
        sched: Vec::new(),
        persistent: None,
        one_packet: false,
        netmask: MaskState::V4(Ipv4Addr::BROADCAST),
        pe: Vec::new(),
        sched_flags: None,
        service_word: String::new(),
        daddr: None,
        dport: 0,
        fwd: Fwd::Droute,
        weight: 1,
        u_thr: 0,
        l_thr: 0,
        tun_type: 0,
        tun_port: 0,
        tun_flags: 0,
        server_word: String::new(),
        pe_word: String::new(),
        sched_word: String::new(),
    };
    while let Some(Event::Opt { tag, word, arg }) = p.next_opt(line)? {
        handle_opt(&mut e, tag, word, arg, line)?;
    }
    let mut left = p.leftovers.iter().copied();
    let mut timeouts = [0u32; 3];
    if e.cmd == Cmd::Timeout {
        let (Some(a), Some(b), Some(c)) = (left.next(), left.next(), left.next()) else {
            return Err(fail("--set", RuleErrorKind::SetNeedsThreeValues));
        };
        for (t, s) in timeouts.iter_mut().zip([a, b, c]) {
            match string_to_number(s, 0, i64::from(MAX_TIMEOUT)) {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                Some(n) => *t = n as u32,
                None => return Err(fail(s, RuleErrorKind::InvalidTimeout)),
            }
        }
    }
    if let Some(w) = left.next() {
        return Err(fail(w, RuleErrorKind::UnexpectedArgument));
    }
    let mut flags = SchedFlags::NONE;
    if let Some((arg, word)) = &e.sched_flags
        && !arg.is_empty()
    {
        flags = sched_flags(&e.sched, arg)
            .map_err(|(w, k)| fail(if w.is_empty() { word } else { &w }, k))?;
    }
    // generic_opt_check
    let (cmdname, row) = legality(e.cmd);
    let mut last: Option<usize> = None;
    for (j, &rule) in row.iter().enumerate() {
        let set = e.options & (1u64 << j) != 0;
        let opt = OPTNAMES[j];
        if !set {
            if rule == b'+' {
                return Err(fail(
                    opt,
                    RuleErrorKind::MissingOption {
                        option: opt,
                        command: cmdname,
                    },
                ));
            }
        } else if rule == b'x' {
            return Err(fail(
                opt,
                RuleErrorKind::IllegalOption {
                    option: opt,
                    command: cmdname,
                },
            ));
        } else if rule == b'1' {
            if let Some(l) = last {
                return Err(fail(
                    opt,
                    RuleErrorKind::ConflictingOptions {
                        option: opt,
                        other: OPTNAMES[l],
                        command: cmdname,
                    },
                ));
            }
            last = Some(j);
        }
    }
    let key = if e.fwmark != 0 {
        ServiceKey::Fwmark {
            mark: e.fwmark,
            family: if e.v6 { Family::V6 } else { Family::V4 },
        }
    } else {
        ServiceKey::Addr {
            protocol: e.protocol,
            addr: e.addr,
            port: e.port,
        }
    };
    let svc_word = e.service_word.clone();
    match e.cmd {
        Cmd::Add | Cmd::Edit => {
            if e.fwmark == 0 && e.port == 0 && e.persistent.is_none() {
                return Err(fail(&svc_word, RuleErrorKind::ZeroPortNonPersistent));
            }
            if e.one_packet && e.fwmark == 0 && e.protocol != Protocol::Udp {
                return Err(fail(&svc_word, RuleErrorKind::OnePacketNotUdp));
            }
            let scheduler = if e.sched.is_empty() {
                SchedulerName::Wlc
            } else {
                core::str::from_utf8(&e.sched)
                    .ok()
                    .and_then(SchedulerName::from_name)
                    .ok_or_else(|| fail(&e.sched_word, RuleErrorKind::UnknownScheduler))?
            };
            let pe = match e.pe.as_slice() {
                b"" => None,
                b"sip" => Some(PersistenceEngine::Sip),
                _ => return Err(fail(&e.pe_word, RuleErrorKind::UnknownPersistenceEngine)),
            };
            let netmask = match e.netmask {
                MaskState::V4(m) => Netmask::V4(m),
                #[allow(clippy::cast_possible_truncation)]
                MaskState::V6(n) => Netmask::V6(n as u8),
            };
            let c = ServiceConfig {
                key,
                scheduler,
                flags,
                persistence: e.persistent,
                netmask,
                pe,
                one_packet: e.one_packet,
            };
            Ok(if e.cmd == Cmd::Add {
                Command::AddService(c)
            } else {
                Command::EditService(c)
            })
        }
        Cmd::Del => Ok(Command::DeleteService(key)),
        Cmd::Flush => Ok(Command::Clear),
        Cmd::Timeout => Ok(Command::SetTimeouts {
            tcp: timeouts[0],
            tcpfin: timeouts[1],
            udp: timeouts[2],
        }),
        Cmd::DelDest => Ok(Command::DeleteServer {
            service: key,
            addr: e.daddr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            port: e.dport,
        }),
        _ => {
            // ADDDEST / EDITDEST
            let daddr = e.daddr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let mut dport = e.dport;
            if e.fwmark == 0 && matches!(e.fwd, Fwd::Tunnel | Fwd::Droute) {
                dport = e.port;
            }
            if daddr.is_ipv6() != e.v6 && e.fwd != Fwd::Tunnel {
                return Err(fail(&e.server_word, RuleErrorKind::DifferentFamily));
            }
            let tun_bits = (1u64 << OPTC_TUN_TYPE)
                | (1u64 << OPTC_TUN_PORT)
                | (1u64 << OPTC_TUN_NOCSUM)
                | (1u64 << OPTC_TUN_CSUM)
                | (1u64 << OPTC_TUN_REMCSUM);
            if e.options & tun_bits != 0 && e.fwd != Fwd::Tunnel {
                let j = (OPTC_TUN_TYPE..=OPTC_TUN_REMCSUM)
                    .find(|j| e.options & (1u64 << j) != 0)
                    .unwrap_or(OPTC_TUN_TYPE);
                return Err(fail(OPTNAMES[j], RuleErrorKind::TunnelOptionsConflict));
            }
            // tunnel_opt_check (run for every forwarding method, as in ipvsadm; without
            // tunnel options it can only complain about a missing GUE port, which needs
            // --tun-type and so -i).
            let tunnel = TUNNAMES[e.tun_type];
            let mut last: Option<usize> = None;
            for (j, &k) in TUNOPTS.iter().enumerate() {
                let rule = TUN_TABLE[e.tun_type][j];
                let opt = OPTNAMES[k];
                if e.options & (1u64 << k) == 0 {
                    if rule == b'+' {
                        return Err(fail(
                            opt,
                            RuleErrorKind::TunnelMissingOption {
                                option: opt,
                                tunnel,
                            },
                        ));
                    }
                } else if rule == b'x' {
                    return Err(fail(
                        opt,
                        RuleErrorKind::TunnelIllegalOption {
                            option: opt,
                            tunnel,
                        },
                    ));
                } else if rule == b'1' {
                    if let Some(l) = last {
                        return Err(fail(
                            opt,
                            RuleErrorKind::TunnelConflict {
                                option: opt,
                                other: OPTNAMES[l],
                                tunnel,
                            },
                        ));
                    }
                    last = Some(k);
                }
            }
            let forward = match e.fwd {
                Fwd::Masq => ForwardMethod::Nat,
                Fwd::Droute => ForwardMethod::DirectRoute,
                Fwd::Tunnel => ForwardMethod::Tunnel(match e.tun_type {
                    0 => TunnelKind::Ipip,
                    1 => TunnelKind::Gue {
                        port: e.tun_port,
                        checksum: match e.tun_flags {
                            0 => GueChecksum::None,
                            1 => GueChecksum::Csum,
                            _ => GueChecksum::RemCsum,
                        },
                    },
                    _ => TunnelKind::Gre {
                        checksum: e.tun_flags & 1 != 0,
                        key: None,
                    },
                }),
            };
            let server = RealServerConfig {
                addr: daddr,
                port: dport,
                weight: e.weight,
                u_threshold: e.u_thr,
                l_threshold: e.l_thr,
                forward,
            };
            let r = ServerRule {
                service: key,
                server,
            };
            Ok(if e.cmd == Cmd::AddDest {
                Command::AddServer(r)
            } else {
                Command::EditServer(r)
            })
        }
    }
}

// ---------------------------------------------------------------------------------------
// The rule set

/// A service and its real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// The service.
    pub config: ServiceConfig,
    /// Its servers in the kernel's list order: newest first (`list_add_rcu` at the head).
    pub dests: Vec<RealServerConfig>,
}

/// The state a sequence of commands builds, with the kernel's refusals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// Services in the order they were added. (The kernel enumerates its hash table,
    /// whose order depends on a per-namespace pointer; it only shows where libipvs's
    /// wrapping comparison is not transitive.)
    pub services: Vec<ServiceEntry>,
    /// Timeouts, changed by `--set`.
    pub timeouts: Timeouts,
}

impl Config {
    /// An empty rule set with the kernel's default timeouts.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses and applies a rule file.
    ///
    /// # Errors
    /// The first line refused by the parser or by [`Config::apply`].
    pub fn from_rules(text: &str) -> Result<Self, RuleError> {
        let mut c = Self::new();
        for (line, cmd) in parse_rules(text)? {
            c.apply(&cmd).map_err(|kind| RuleError {
                line,
                word: match cmd {
                    Command::AddServer(r) | Command::EditServer(r) => {
                        fmt_addr_port(r.server.addr, r.server.port)
                    }
                    Command::DeleteServer { addr, port, .. } => fmt_addr_port(addr, port),
                    Command::AddService(s) | Command::EditService(s) => s.key.to_string(),
                    Command::DeleteService(k) => k.to_string(),
                    _ => String::new(),
                },
                kind: RuleErrorKind::Apply(kind),
            })?;
        }
        Ok(c)
    }

    fn find(&self, key: &ServiceKey) -> Option<usize> {
        self.services.iter().position(|s| s.config.key == *key)
    }

    /// The service with that key.
    #[must_use]
    pub fn service(&self, key: &ServiceKey) -> Option<&ServiceEntry> {
        self.find(key).map(|i| &self.services[i])
    }

    /// Applies one command as the kernel would.
    ///
    /// # Errors
    /// The kernel's refusal; the rule set is then unchanged.
    pub fn apply(&mut self, cmd: &Command) -> Result<(), ApplyError> {
        match *cmd {
            Command::AddService(c) => {
                if self.find(&c.key).is_some() {
                    return Err(ApplyError::ServiceExists);
                }
                self.services.push(ServiceEntry {
                    config: c,
                    dests: Vec::new(),
                });
            }
            Command::EditService(c) => {
                let i = self.find(&c.key).ok_or(ApplyError::NoSuchService)?;
                self.services[i].config = c;
            }
            Command::DeleteService(k) => {
                let i = self.find(&k).ok_or(ApplyError::NoSuchService)?;
                self.services.remove(i);
            }
            Command::Clear => self.services.clear(),
            Command::AddServer(r) | Command::EditServer(r) => {
                let i = self.find(&r.service).ok_or(ApplyError::ServiceNotDefined)?;
                if r.server.l_threshold > r.server.u_threshold {
                    return Err(ApplyError::ThresholdRange);
                }
                let d = &mut self.services[i].dests;
                let pos = d
                    .iter()
                    .position(|x| x.addr == r.server.addr && x.port == r.server.port);
                match (cmd, pos) {
                    (Command::AddServer(_), Some(_)) => {
                        return Err(ApplyError::DestinationExists);
                    }
                    (Command::AddServer(_), None) => d.insert(0, r.server),
                    (_, Some(j)) => d[j] = r.server,
                    (_, None) => return Err(ApplyError::NoSuchDestination),
                }
            }
            Command::DeleteServer {
                service,
                addr,
                port,
            } => {
                let i = self.find(&service).ok_or(ApplyError::ServiceNotDefined)?;
                let d = &mut self.services[i].dests;
                let j = d
                    .iter()
                    .position(|x| x.addr == addr && x.port == port)
                    .ok_or(ApplyError::NoSuchDestination)?;
                d.remove(j);
            }
            Command::SetTimeouts { tcp, tcpfin, udp } => self.timeouts.set(
                Duration::from_secs(tcp.into()),
                Duration::from_secs(tcpfin.into()),
                Duration::from_secs(udp.into()),
            ),
        }
        Ok(())
    }
}

impl Config {
    /// The rule set as a [`Snapshot`](super::Snapshot) with zero counters and no
    /// connections (what the listings and `-S` print).
    #[must_use]
    pub fn snapshot(&self) -> super::Snapshot {
        super::Snapshot {
            conn_tab_size: 4096,
            services: self
                .services
                .iter()
                .map(|s| super::ServiceView {
                    dests: s.dests.iter().copied().map(super::DestView::new).collect(),
                    ..super::ServiceView::new(s.config)
                })
                .collect(),
            timeouts: self.timeouts.clone(),
            conns: Vec::new(),
        }
    }
}
