//! Virtual services: how they are addressed and configured. These are the types the
//! [`crate::Director`] takes and the ipvsadm rule language ([`crate::ipvsadm`]) reads
//! and prints.

use crate::ipvsadm::fmt_addr_port;
use crate::wire::Family;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr};

/// The protocol of an address-based virtual service.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `-t`, `--tcp-service`.
    Tcp,
    /// `-u`, `--udp-service`.
    Udp,
    /// `--sctp-service`.
    Sctp,
}

impl Protocol {
    /// The IP protocol number (libipvs sorts by it).
    #[must_use]
    pub const fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Sctp => 132,
        }
    }

    /// The name `ipvsadm -L` prints (`protocol_name`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Sctp => "SCTP",
        }
    }

    /// The option `ipvsadm -S` prints (`option_from_protocol`).
    #[must_use]
    pub const fn option(self) -> &'static str {
        match self {
            Self::Tcp => "-t",
            Self::Udp => "-u",
            Self::Sctp => "--sctp-service",
        }
    }
}

/// What identifies a virtual service.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    /// `<protocol, address, port>`.
    Addr {
        /// Protocol.
        protocol: Protocol,
        /// Virtual address.
        addr: IpAddr,
        /// Virtual port (0: every port; only for persistent services).
        port: u16,
    },
    /// A firewall mark (`-f N`, with `-6` for IPv6).
    Fwmark {
        /// The mark, 1 to `u32::MAX`.
        mark: u32,
        /// The family of the packets it matches.
        family: Family,
    },
}

impl ServiceKey {
    /// The family of the service.
    #[must_use]
    pub const fn family(&self) -> Family {
        match *self {
            Self::Addr { addr, .. } => Family::of(addr),
            Self::Fwmark { family, .. } => family,
        }
    }

    /// The virtual port (0 for fwmark services).
    #[must_use]
    pub const fn port(&self) -> u16 {
        match *self {
            Self::Addr { port, .. } => port,
            Self::Fwmark { .. } => 0,
        }
    }

    /// The mark (0 for address services).
    #[must_use]
    pub const fn fwmark(&self) -> u32 {
        match *self {
            Self::Addr { .. } => 0,
            Self::Fwmark { mark, .. } => mark,
        }
    }

    pub(crate) const fn af_number(&self) -> i32 {
        match self.family() {
            Family::V4 => 2,
            _ => 10,
        }
    }

    /// The service as `ipvsadm -L -n` names it: `"%-4s %s"` (`TCP  10.0.0.1:80`, cut at
    /// 33 characters for IPv4) or `FWM  %u` (+ `" IPv6"`).
    #[must_use]
    pub fn list_name(&self) -> String {
        match *self {
            Self::Addr {
                protocol,
                addr,
                port,
            } => {
                let mut s = format!("{:<4} {}", protocol.name(), fmt_addr_port(addr, port));
                if addr.is_ipv4() {
                    s.truncate(33);
                }
                s
            }
            Self::Fwmark { mark, family } => match family {
                Family::V4 => format!("FWM  {mark}"),
                _ => format!("FWM  {mark} IPv6"),
            },
        }
    }
}

/// `ipvsadm -S` spelling: `-t 10.0.0.1:80`, `--sctp-service [::1]:80`, `-f 7`, `-f 7 -6`.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Addr {
                protocol,
                addr,
                port,
            } => write!(f, "{} {}", protocol.option(), fmt_addr_port(addr, port)),
            Self::Fwmark { mark, family } => match family {
                Family::V4 => write!(f, "-f {mark}"),
                _ => write!(f, "-f {mark} -6"),
            },
        }
    }
}

/// The kernel's schedulers (`-s`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchedulerName {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection (ipvsadm's default).
    Wlc,
    /// Locality-based least connection.
    Lblc,
    /// LBLC with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Maglev hashing.
    Mh,
    /// Weighted random twos choice.
    Twos,
}

impl SchedulerName {
    /// Every scheduler.
    pub const ALL: [Self; 14] = [
        Self::Rr,
        Self::Wrr,
        Self::Lc,
        Self::Wlc,
        Self::Lblc,
        Self::Lblcr,
        Self::Dh,
        Self::Sh,
        Self::Sed,
        Self::Nq,
        Self::Fo,
        Self::Ovf,
        Self::Mh,
        Self::Twos,
    ];

    /// The module name (`ip_vs_<name>`), as `-s` takes it and ipvsadm prints it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Lblc => "lblc",
            Self::Lblcr => "lblcr",
            Self::Dh => "dh",
            Self::Sh => "sh",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
            Self::Mh => "mh",
            Self::Twos => "twos",
        }
    }

    /// The scheduler of that name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for SchedulerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The scheduler flags of a service (`-b`), as the kernel's `IP_VS_SVC_F_SCHED1..3` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SchedFlags(u32);

impl SchedFlags {
    /// `flag-1`, also `sh-fallback` / `mh-fallback` (`IP_VS_SVC_F_SCHED1`).
    pub const FLAG_1: Self = Self(0x08);
    /// `flag-2`, also `sh-port` / `mh-port` (`IP_VS_SVC_F_SCHED2`).
    pub const FLAG_2: Self = Self(0x10);
    /// `flag-3` (`IP_VS_SVC_F_SCHED3`).
    pub const FLAG_3: Self = Self(0x20);
    /// No flag.
    pub const NONE: Self = Self(0);

    /// The flags from kernel bits; bits other than the three are dropped.
    #[must_use]
    pub const fn from_bits(bits: u32) -> Self {
        Self(bits & 0x38)
    }

    /// The kernel bits.
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// `print_sched_flags`: the names ipvsadm prints for `sched`, comma-separated. For
    /// `sh` and `mh` only the named forms of flags 1 and 2 are printed (flag 3 is lost,
    /// as in ipvsadm); other schedulers print `flag-N`.
    #[must_use]
    pub fn names(self, sched: SchedulerName) -> String {
        let mut v: Vec<&str> = Vec::new();
        let (a, b) = match sched {
            SchedulerName::Sh => (Some("sh-fallback"), Some("sh-port")),
            SchedulerName::Mh => (Some("mh-fallback"), Some("mh-port")),
            _ => (None, None),
        };
        if let (Some(a), Some(b)) = (a, b) {
            if self.contains(Self::FLAG_1) {
                v.push(a);
            }
            if self.contains(Self::FLAG_2) {
                v.push(b);
            }
        } else {
            for (f, n) in [
                (Self::FLAG_1, "flag-1"),
                (Self::FLAG_2, "flag-2"),
                (Self::FLAG_3, "flag-3"),
            ] {
                if self.contains(f) {
                    v.push(n);
                }
            }
        }
        v.join(",")
    }
}

/// A persistence engine (`--pe`); the kernel has one.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PersistenceEngine {
    /// SIP Call-ID persistence (`ip_vs_pe_sip`).
    Sip,
}

impl PersistenceEngine {
    /// Its name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sip => "sip",
        }
    }
}

/// The client-network granularity of persistence (`-M`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netmask {
    /// An IPv4 mask as given (ipvsadm does not require it to be contiguous).
    V4(Ipv4Addr),
    /// An IPv6 prefix length, 1 to 128.
    V6(u8),
}

impl Netmask {
    /// The default for a family: /32 or /128.
    #[must_use]
    pub const fn full(family: Family) -> Self {
        match family {
            Family::V4 => Self::V4(Ipv4Addr::BROADCAST),
            _ => Self::V6(128),
        }
    }

    /// Whether this is the default of its family (ipvsadm then prints nothing).
    #[must_use]
    pub fn is_full(self) -> bool {
        match self {
            Self::V4(m) => m == Ipv4Addr::BROADCAST,
            Self::V6(p) => p == 128,
        }
    }

    /// The client network of `addr`: the address with the mask applied (IPv4
    /// `saddr & netmask`, IPv6 `ipv6_addr_prefix`). An address of the other family than
    /// the mask is returned unchanged.
    #[must_use]
    pub fn apply(self, addr: IpAddr) -> IpAddr {
        match (self, addr) {
            (Self::V4(m), IpAddr::V4(a)) => {
                IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() & m.to_bits()))
            }
            (Self::V6(plen), IpAddr::V6(a)) => {
                let plen = u32::from(plen.min(128));
                let mask = if plen == 0 {
                    0
                } else {
                    u128::MAX << (128 - plen)
                };
                IpAddr::V6(core::net::Ipv6Addr::from_bits(a.to_bits() & mask))
            }
            _ => addr,
        }
    }
}

impl fmt::Display for Netmask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::V4(m) => write!(f, "{m}"),
            Self::V6(p) => write!(f, "{p}"),
        }
    }
}

/// A virtual service as `-A`/`-E` give it (after ipvsadm's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceConfig {
    /// Identity.
    pub key: ServiceKey,
    /// Scheduler (default `wlc`).
    pub scheduler: SchedulerName,
    /// Scheduler flags.
    pub flags: SchedFlags,
    /// Persistence timeout in seconds (`-p`), `None` when not persistent.
    pub persistence: Option<u32>,
    /// Persistence granularity (kept even when not persistent, as the kernel does).
    pub netmask: Netmask,
    /// Persistence engine.
    pub pe: Option<PersistenceEngine>,
    /// One-packet scheduling (`-o`).
    pub one_packet: bool,
}

impl ServiceConfig {
    /// A service with ipvsadm's defaults: `wlc`, not persistent, full netmask.
    #[must_use]
    pub const fn new(key: ServiceKey) -> Self {
        Self {
            key,
            scheduler: SchedulerName::Wlc,
            flags: SchedFlags::NONE,
            persistence: None,
            netmask: Netmask::full(key.family()),
            pe: None,
            one_packet: false,
        }
    }
}

/// Handle to a service of a [`crate::Director`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ServiceId(pub u32);
