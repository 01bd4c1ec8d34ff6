//! A lean parse of the common IP packet, for rewrites that need only a few header fields
//! (encapsulation, DR): no [`PacketSummary`](crate::wire::PacketSummary) is built.
//!
//! [`parse`] accepts a packet only if [`PacketSummary::parse`](crate::wire::PacketSummary::parse) accepts it and then reports
//! the same values; it declines (returns `None`) everything else, malformed or merely
//! uncommon (IPv4 fragments, IPv6 extension headers, ICMP, an empty IPv6 payload), and
//! the caller falls back to the full parse, which gives the typed error or the summary.
//! A caller that does "lean parse, else full parse" therefore accepts and refuses exactly
//! what the full parse does.

use super::{Family, Fragment, PacketSummary, Ports, ipv4, ipv6, proto, sctp, tcp, udp};
use crate::checksum;
use core::net::IpAddr;

/// What a lean parse reports: the fields of [`PacketSummary`](crate::wire::PacketSummary) that encapsulation and DR
/// use, with the same meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lean {
    /// IP version.
    pub family: Family,
    /// Length of the IP packet ([`PacketSummary::l3_len`](crate::wire::PacketSummary::l3_len)).
    pub l3_len: usize,
    /// Offset of the transport header ([`PacketSummary::l4_offset`](crate::wire::PacketSummary::l4_offset)).
    pub l4_offset: usize,
    /// IPv4 TOS or IPv6 traffic class.
    pub tos: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 DF (false for IPv6).
    pub dont_frag: bool,
    /// Transport protocol.
    pub protocol: u8,
    /// Whether the packet has ports (TCP, UDP, SCTP); they are the first four bytes at
    /// `l4_offset`.
    pub has_ports: bool,
}

impl Lean {
    /// The [`PacketSummary`] the full parse gives for the packet this `Lean` came from.
    #[inline]
    pub fn summary(&self, pkt: &[u8]) -> PacketSummary {
        let (src, dst) = match self.family {
            Family::V4 => (
                IpAddr::from(read::<4>(pkt, 12)),
                IpAddr::from(read::<4>(pkt, 16)),
            ),
            Family::V6 => (
                IpAddr::from(read::<16>(pkt, 8)),
                IpAddr::from(read::<16>(pkt, 24)),
            ),
        };
        let at = self.l4_offset;
        let ports = self.has_ports.then(|| Ports {
            src: u16::from_be_bytes(read::<2>(pkt, at)),
            dst: u16::from_be_bytes(read::<2>(pkt, at + 2)),
        });
        let tcp_flags = (self.protocol == proto::TCP)
            .then(|| pkt.get(at + 13).copied())
            .flatten();
        PacketSummary {
            family: self.family,
            src,
            dst,
            protocol: self.protocol,
            l3_offset: 0,
            l3_len: self.l3_len,
            l4_offset: at,
            ttl: self.ttl,
            tos: self.tos,
            dont_frag: self.dont_frag,
            fragment: Fragment::Unfragmented,
            ports,
            tcp_flags,
            icmp: None,
            quoted: None,
        }
    }

    /// The source and destination addresses, back to back (8 or 32 bytes of `pkt`, the
    /// packet this was parsed from).
    #[inline]
    pub fn addrs<'a>(&self, pkt: &'a [u8]) -> &'a [u8] {
        match self.family {
            Family::V4 => &pkt[12..20],
            Family::V6 => &pkt[8..40],
        }
    }
}

/// Lean parse of the IP packet at byte 0 of `pkt`; see the module documentation.
/// `N` bytes at `at`, zeros past the end (never reached for a packet [`parse`] accepted).
#[inline(always)]
fn read<const N: usize>(pkt: &[u8], at: usize) -> [u8; N] {
    pkt.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
}

// Always (and `parse_v4`, `transport_ok`): called from both `handle_packet` and
// `handle_burst`, LLVM put them out of line, 20 more instructions an established packet.
#[inline(always)]
pub(crate) fn parse(pkt: &[u8]) -> Option<Lean> {
    let first = *pkt.first()?;
    match first >> 4 {
        4 => parse_v4(pkt),
        6 => parse_v6(pkt),
        _ => None,
    }
}

#[inline(always)]
fn parse_v4(pkt: &[u8]) -> Option<Lean> {
    let hdr = pkt.first_chunk::<{ ipv4::MIN_HEADER_LEN }>()?;
    let hl = usize::from(hdr[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    let frag = u16::from_be_bytes([hdr[6], hdr[7]]);
    // Header and total length consistent with the buffer; unfragmented (offset 0, MF clear).
    // Headers with options go to the full parse, which checks the option list.
    if hl != ipv4::MIN_HEADER_LEN || total < hl || total > pkt.len() || frag & 0x3fff != 0 {
        return None;
    }
    if checksum::finish(checksum::add_ipv4_header(0, hdr)) != 0 {
        return None;
    }
    let protocol = hdr[9];
    let has_ports = transport_ok(protocol, &pkt[hl..total])?;
    Some(Lean {
        family: Family::V4,
        l3_len: total,
        l4_offset: hl,
        tos: hdr[1],
        ttl: hdr[8],
        dont_frag: frag & ipv4::FLAG_DF != 0,
        protocol,
        has_ports,
    })
}

#[inline]
fn parse_v6(pkt: &[u8]) -> Option<Lean> {
    let hdr = pkt.first_chunk::<{ ipv6::HEADER_LEN }>()?;
    let plen = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    let total = ipv6::HEADER_LEN + plen;
    let next = hdr[6];
    // An empty payload and extension headers take the full parse.
    if plen == 0
        || total > pkt.len()
        || matches!(
            next,
            proto::HOPOPT | proto::IPV6_ROUTE | proto::IPV6_OPTS | proto::IPV6_FRAG
        )
    {
        return None;
    }
    let has_ports = transport_ok(next, &pkt[ipv6::HEADER_LEN..total])?;
    Some(Lean {
        family: Family::V6,
        l3_len: total,
        l4_offset: ipv6::HEADER_LEN,
        tos: (hdr[0] << 4) | (hdr[1] >> 4),
        ttl: hdr[7],
        dont_frag: false,
        protocol: next,
        has_ports,
    })
}

/// The transport checks of [`PacketSummary::parse`](crate::wire::PacketSummary::parse) for a whole datagram whose transport
/// bytes are `l4`: `Some(has_ports)` if they pass, `None` if they fail or the protocol is
/// one the lean parse leaves to the full parse (ICMP, ICMPv6).
#[inline(always)]
fn transport_ok(protocol: u8, l4: &[u8]) -> Option<bool> {
    match protocol {
        proto::TCP => {
            let t = l4.first_chunk::<{ tcp::MIN_HEADER_LEN }>()?;
            let doff = usize::from(t[12] >> 4) * 4;
            (doff >= tcp::MIN_HEADER_LEN && doff <= l4.len()).then_some(true)
        }
        proto::UDP => {
            let u = l4.first_chunk::<{ udp::HEADER_LEN }>()?;
            let len = usize::from(u16::from_be_bytes([u[4], u[5]]));
            (len >= udp::HEADER_LEN && len <= l4.len()).then_some(true)
        }
        proto::SCTP => (l4.len() >= sctp::HEADER_LEN).then_some(true),
        proto::ICMP | proto::ICMPV6 => None,
        _ => Some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{PacketSummary, Ports};
    use core::net::IpAddr;
    use proptest::prelude::*;

    /// Lean and full parse agree: a lean accept means a full accept with the same values,
    /// a full reject means a lean decline.
    fn agree(pkt: &[u8]) -> Result<(), TestCaseError> {
        let full = PacketSummary::parse_full(pkt);
        match (parse(pkt), full) {
            (Some(l), Ok(s)) => {
                prop_assert_eq!(l.summary(pkt), PacketSummary::parse_full(pkt).unwrap());
                prop_assert_eq!(l.summary(pkt), s);
                prop_assert_eq!(l.family, s.family);
                prop_assert_eq!(l.l3_len, s.l3_len);
                prop_assert_eq!(l.l4_offset, s.l4_offset);
                prop_assert_eq!(l.tos, s.tos);
                prop_assert_eq!(l.ttl, s.ttl);
                prop_assert_eq!(l.dont_frag, s.dont_frag);
                prop_assert_eq!(l.protocol, s.protocol);
                let ports = l.has_ports.then(|| Ports {
                    src: u16::from_be_bytes([pkt[l.l4_offset], pkt[l.l4_offset + 1]]),
                    dst: u16::from_be_bytes([pkt[l.l4_offset + 2], pkt[l.l4_offset + 3]]),
                });
                prop_assert_eq!(ports, s.ports);
                let a = l.addrs(pkt);
                let (src, dst) = match l.family {
                    Family::V4 => (
                        IpAddr::from(<[u8; 4]>::try_from(&a[..4]).unwrap()),
                        IpAddr::from(<[u8; 4]>::try_from(&a[4..]).unwrap()),
                    ),
                    Family::V6 => (
                        IpAddr::from(<[u8; 16]>::try_from(&a[..16]).unwrap()),
                        IpAddr::from(<[u8; 16]>::try_from(&a[16..]).unwrap()),
                    ),
                };
                prop_assert_eq!((src, dst), (s.src, s.dst));
            }
            (Some(l), Err(e)) => {
                prop_assert!(false, "lean accepted {:?}, full refused: {:?}", l, e);
            }
            (None, _) => {}
        }
        Ok(())
    }

    /// A well-formed packet: IPv4 (with `opts` words of options) or IPv6, carrying TCP,
    /// UDP, SCTP, ICMP or an opaque protocol.
    fn packet(v6: bool, protocol: u8, opts: usize, payload: &[u8], tos: u8, flags: u16) -> Vec<u8> {
        let mut l4 = Vec::new();
        match protocol {
            proto::TCP => {
                l4.extend_from_slice(&[0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 2]);
                l4.extend_from_slice(&[0xfa, 0xf0, 0, 0, 0, 0]);
            }
            proto::UDP => {
                let len = (8 + payload.len()) as u16;
                l4.extend_from_slice(&[0, 53, 0x14, 0xe9]);
                l4.extend_from_slice(&len.to_be_bytes());
                l4.extend_from_slice(&[0, 0]);
            }
            proto::SCTP => l4.extend_from_slice(&[0, 1, 0, 2, 0, 0, 0, 9, 0, 0, 0, 0]),
            proto::ICMP | proto::ICMPV6 => l4.extend_from_slice(&[8, 0, 0, 0, 0, 7, 0, 1]),
            _ => {}
        }
        l4.extend_from_slice(payload);
        let mut p = Vec::new();
        if v6 {
            let w = (6u32 << 28) | (u32::from(tos) << 20) | 0x12345;
            p.extend_from_slice(&w.to_be_bytes());
            p.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            p.extend_from_slice(&[protocol, 33]);
            p.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            p.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        } else {
            let hl = 20 + 4 * opts;
            let mut h = vec![0u8; hl];
            h[0] = 0x40 | (hl / 4) as u8;
            h[1] = tos;
            h[2..4].copy_from_slice(&((hl + l4.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
            h[6..8].copy_from_slice(&flags.to_be_bytes());
            h[8] = 33;
            h[9] = protocol;
            h[12..20].copy_from_slice(&[198, 51, 100, 7, 192, 0, 2, 1]);
            for b in &mut h[20..] {
                *b = 1; // NOP options
            }
            let c = checksum::checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            p.extend_from_slice(&h);
        }
        p.extend_from_slice(&l4);
        p
    }

    fn protocols() -> impl Strategy<Value = u8> {
        prop_oneof![
            Just(proto::TCP),
            Just(proto::UDP),
            Just(proto::SCTP),
            Just(proto::ICMP),
            Just(proto::ICMPV6),
            Just(proto::GRE),
            Just(proto::IPV6_NONXT),
            Just(proto::HOPOPT),
            Just(proto::IPV6_FRAG),
            any::<u8>(),
        ]
    }

    #[test]
    fn accepts_the_common_cases() {
        for v6 in [false, true] {
            for p in [proto::TCP, proto::UDP, proto::SCTP, proto::GRE] {
                let pkt = packet(v6, p, 0, b"payload", 0xb8, ipv4::FLAG_DF);
                let l = parse(&pkt).expect("common packet");
                assert_eq!(l.has_ports, p != proto::GRE);
                agree(&pkt).unwrap();
            }
        }
        let pkt = packet(false, proto::TCP, 3, b"x", 0, 0);
        assert!(
            parse(&pkt).is_none(),
            "IPv4 options go to the full parse, which checks them"
        );
    }

    proptest! {
        #[test]
        fn agrees_with_full_parse_on_random_bytes(
            v in prop_oneof![Just(0x45u8), Just(0x46), Just(0x60), Just(0x4f), any::<u8>()],
            rest in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let mut p = vec![v];
            p.extend_from_slice(&rest);
            agree(&p)?;
        }

        #[test]
        fn agrees_with_full_parse_on_mutated_packets(
            v6 in any::<bool>(),
            protocol in protocols(),
            opts in 0usize..4,
            payload in proptest::collection::vec(any::<u8>(), 0..40),
            tos in any::<u8>(),
            flags in prop_oneof![Just(0u16), Just(ipv4::FLAG_DF), Just(ipv4::FLAG_MF), any::<u16>()],
            pad in 0usize..8,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            cut in proptest::option::of(any::<usize>()),
            refix in any::<bool>(),
        ) {
            let mut p = packet(v6, protocol, opts, &payload, tos, flags);
            p.resize(p.len() + pad, 0);
            agree(&p)?;
            for (at, x) in edits {
                let n = p.len();
                p[at % n] ^= x;
            }
            // Mostly make the IPv4 checksum right again, so the edits reach the length,
            // fragment and transport checks behind it.
            let hl = usize::from(p[0] & 0x0f) * 4;
            if refix && !v6 && hl >= 20 && hl <= p.len() {
                p[10..12].fill(0);
                let c = checksum::checksum(&p[..hl]);
                p[10..12].copy_from_slice(&c.to_be_bytes());
            }
            if let Some(c) = cut {
                p.truncate(c % (p.len() + 1));
            }
            agree(&p)?;
        }
    }
}
