//! One tracked connection (or persistence template), packed for a table of millions.

use core::net::{IpAddr, Ipv6Addr};

/// Connection flags (`IP_VS_CONN_F_*` where the kernel has them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConnFlags(pub u16);

impl ConnFlags {
    /// Forwarding-method mask (values as [`ConnFlags::MASQ`] ..).
    pub const FWD_MASK: u16 = 0x0007;
    /// NAT.
    pub const MASQ: u16 = 0;
    /// Local delivery.
    pub const LOCALNODE: u16 = 1;
    /// Tunnel.
    pub const TUNNEL: u16 = 2;
    /// Direct routing.
    pub const DROUTE: u16 = 3;
    /// No reply seen (or expected): TCP/SCTP use the input-only table.
    pub const NOOUTPUT: u16 = 0x0080;
    /// Counted in `inactconns`.
    pub const INACTIVE: u16 = 0x0100;
    /// Client port not known yet (FTP data).
    pub const NO_CPORT: u16 = 0x0800;
    /// A persistence template.
    pub const TEMPLATE: u16 = 0x1000;
    /// One-packet scheduling: never hashed.
    pub const ONE_PACKET: u16 = 0x2000;
    /// Template assured (this crate's bit; the kernel keeps it in the template state).
    pub const ASSURED: u16 = 0x4000;
    /// The client address is IPv6 (this crate's bit: addresses are stored as 16 bytes).
    pub const CLIENT_V6: u16 = 0x8000;

    /// Whether all bits of `bits` are set.
    #[must_use]
    pub const fn has(self, bits: u16) -> bool {
        self.0 & bits == bits
    }
}

/// A connection as the table stores it, in exactly one 64-byte cache line: virtual and
/// real-server addresses are interned (few distinct values), the client address is
/// inline, and one link field serves a connection (its controller) and a template (its
/// count of controlled connections).
#[derive(Debug, Clone)]
#[repr(align(64))]
pub struct Conn {
    pub(crate) caddr: [u8; 16],
    pub(crate) cport: u16,
    pub(crate) vport: u16,
    pub(crate) dport: u16,
    pub(crate) flags: ConnFlags,
    pub(crate) vaddr: u32,
    pub(crate) daddr: u32,
    /// Embedder's service index.
    pub(crate) svc: u32,
    /// Embedder's real-server id.
    pub(crate) dest: u32,
    /// For a connection: its controlling template, or `NIL`. For a template (which has
    /// no controller): the number of connections it controls.
    pub(crate) link: u32,
    /// Expiry, in table ticks.
    pub(crate) expires: u32,
    /// The tick the timer is filed under (may be earlier than `expires`: lazy re-arm).
    pub(crate) filed: u32,
    pub(crate) t_next: u32,
    pub(crate) t_prev: u32,
    pub(crate) protocol: u8,
    pub(crate) state: u8,
    pub(crate) old_state: u8,
    /// Packets from the client, saturating (the kernel's `in_pkts` for drop_entry).
    pub(crate) in_pkts: u8,
}

/// "No connection" in links.
pub(crate) const NIL: u32 = u32::MAX;

pub(crate) fn pack_addr(a: IpAddr) -> ([u8; 16], bool) {
    match a {
        IpAddr::V4(v) => (v.to_ipv6_mapped().octets(), false),
        IpAddr::V6(v) => (v.octets(), true),
    }
}

pub(crate) fn unpack_addr(b: [u8; 16], v6: bool) -> IpAddr {
    let a = Ipv6Addr::from(b);
    if v6 {
        IpAddr::V6(a)
    } else {
        a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4)
    }
}

impl Conn {
    /// Transport protocol (0 for firewall-mark templates).
    #[must_use]
    pub const fn protocol(&self) -> u8 {
        self.protocol
    }

    /// Client address.
    #[must_use]
    pub fn caddr(&self) -> IpAddr {
        unpack_addr(self.caddr, self.flags.has(ConnFlags::CLIENT_V6))
    }

    /// Client port.
    #[must_use]
    pub const fn cport(&self) -> u16 {
        self.cport
    }

    /// Virtual port.
    #[must_use]
    pub const fn vport(&self) -> u16 {
        self.vport
    }

    /// Real-server port.
    #[must_use]
    pub const fn dport(&self) -> u16 {
        self.dport
    }

    /// Flags.
    #[must_use]
    pub const fn flags(&self) -> ConnFlags {
        self.flags
    }

    /// The embedder's service index given at insert.
    #[must_use]
    pub const fn svc(&self) -> u32 {
        self.svc
    }

    /// The embedder's real-server id given at insert.
    #[must_use]
    pub const fn dest(&self) -> u32 {
        self.dest
    }

    /// Protocol state (a `TcpState` or `SctpState` as `u8`; 0 for UDP).
    #[must_use]
    pub const fn state(&self) -> u8 {
        self.state
    }

    /// State before the last transition.
    #[must_use]
    pub const fn old_state(&self) -> u8 {
        self.old_state
    }

    /// Packets seen from the client (saturates at 255).
    #[must_use]
    pub const fn in_pkts(&self) -> u8 {
        self.in_pkts
    }

    /// Connections this one controls (for a template: its connections).
    #[must_use]
    pub const fn n_control(&self) -> u32 {
        if self.is_template() { self.link } else { 0 }
    }

    /// The controlling template's slot, if any (`NIL` for none and for templates).
    pub(crate) const fn control_link(&self) -> u32 {
        if self.is_template() { NIL } else { self.link }
    }

    /// Whether this is a persistence template.
    #[must_use]
    pub const fn is_template(&self) -> bool {
        self.flags.has(ConnFlags::TEMPLATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact() {
        assert!(
            core::mem::size_of::<Conn>() == 64 && core::mem::align_of::<Conn>() == 64,
            "{}",
            core::mem::size_of::<Conn>()
        );
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let (b, v6) = pack_addr(a);
        assert_eq!(unpack_addr(b, v6), a);
        let m: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let (b, v6) = pack_addr(m);
        assert_eq!(
            unpack_addr(b, v6),
            m,
            "a real v4-mapped IPv6 address stays IPv6"
        );
    }
}
