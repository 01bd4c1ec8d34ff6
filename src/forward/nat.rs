//! NAT (IPVS "masquerading"): rewrite the virtual address and port to a real server's on
//! the way in, and back on the way out.
//!
//! - [`inbound`]: a client's packet to VIP:vport goes to RIP:rport (destination side).
//! - [`outbound`]: the real server's reply from RIP:rport leaves as VIP:vport (source side).
//!
//! Both take an L3 packet (IP header at byte 0) and handle TCP, UDP, SCTP, ICMP echo and
//! ICMP errors about the connection (the quoted packet is rewritten too, as the kernel's
//! `ip_vs_nat_icmp` does). [`rewrite`] is the same over a packet already summarised, for
//! an engine that parsed it once.
//!
//! Checksums: the IPv4 header and TCP/UDP checksums are updated incrementally (RFC 1624
//! eqn. 3), which is exact for first fragments too. An IPv4 UDP checksum of zero ("none")
//! stays zero; a computed zero is written as 0xFFFF; a zero UDP checksum over IPv6 is
//! refused. SCTP's CRC32c is verified and recomputed when a port changes. ICMP error
//! checksums (and the quoted IPv4 header's) are recomputed in full after verifying the
//! original, as the kernel does.

use crate::checksum;
use crate::error::{Layer, ParseError, ParseErrorKind, RewriteError};
use crate::wire::summary::{Family, Fragment, PacketSummary};
use crate::wire::{be16, ipv4, proto, put16, sctp, tcp, udp};
use core::net::IpAddr;

/// Which endpoint of the packet a rewrite replaces.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Side {
    /// Destination address and port (inbound NAT, towards the real server).
    Dst,
    /// Source address and port (outbound NAT, replies from the real server).
    Src,
}

/// What happens to the transport checksum of the packet quoted inside an ICMP error.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum QuotedChecksum {
    /// Leave it as quoted, as IPVS does (`ip_vs_nat_icmp` rewrites the quoted ports but not
    /// the quoted TCP/UDP checksum), so the quote no longer matches what the real server
    /// sent byte for byte.
    #[default]
    Kernel,
    /// Update it with the address and port change when it lies within the quote (as
    /// netfilter NAT does), so the real server sees exactly the packet it sent.
    Update,
}

/// Options for NAT rewrites. The default matches Linux IPVS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NatOptions {
    /// Treatment of the quoted transport checksum in ICMP errors.
    pub quoted_checksum: QuotedChecksum,
}

/// Inbound NAT: the packet's destination becomes `rip`:`rport`.
///
/// For an ICMP error arriving from the client side (it quotes our reply VIP:vport →
/// client), the outer destination, the quoted source and the quoted source port become
/// the real server's, so the real server recognises its own packet.
///
/// # Errors
/// A [`RewriteError`] for malformed input, a family mismatch, an unsupported protocol, a
/// zero IPv6 UDP checksum, a bad SCTP or ICMP checksum, or a port change on an SCTP
/// fragment. The buffer is unchanged on error.
pub fn inbound(pkt: &mut [u8], rip: IpAddr, rport: u16) -> Result<(), RewriteError> {
    if let IpAddr::V4(a) = rip
        && fast_v4(pkt, Side::Dst, a.to_bits(), rport)
    {
        return Ok(());
    }
    general(pkt, Side::Dst, rip, rport)
}

/// Outbound NAT: the packet's source becomes `vip`:`vport`.
///
/// For an ICMP error sent from the real-server side (it quotes the client's request
/// client → RIP:rport), the outer source, the quoted destination and the quoted
/// destination port become the virtual service's.
///
/// # Errors
/// As [`inbound`]. The buffer is unchanged on error.
pub fn outbound(pkt: &mut [u8], vip: IpAddr, vport: u16) -> Result<(), RewriteError> {
    if let IpAddr::V4(a) = vip
        && fast_v4(pkt, Side::Src, a.to_bits(), vport)
    {
        return Ok(());
    }
    general(pkt, Side::Src, vip, vport)
}

/// Everything but the IPv4 TCP/UDP fast path; kept out of line so the fast path's frame
/// stays small.
#[cold]
#[inline(never)]
fn general(pkt: &mut [u8], side: Side, addr: IpAddr, port: u16) -> Result<(), RewriteError> {
    let s = PacketSummary::parse(pkt)?;
    rewrite(pkt, &s, side, addr, port, NatOptions::default())
}

/// NAT over a packet already parsed into `s` (whose offsets point into `buf`, which may
/// hold an Ethernet frame around the IP packet).
///
/// Old values are read from `buf`, not taken from `s`, so checksums stay consistent with
/// the bytes changed; offsets are bounds-checked, so a summary of some other packet gives
/// an error or a meaningless rewrite, never a panic.
///
/// # Errors
/// As [`inbound`]. The buffer is unchanged on error.
pub fn rewrite(
    buf: &mut [u8],
    s: &PacketSummary,
    side: Side,
    addr: IpAddr,
    port: u16,
    opts: NatOptions,
) -> Result<(), RewriteError> {
    // The common packet (IPv4 TCP/UDP, no options, unfragmented) in one pass; it checks the
    // bytes itself and declines, having written nothing, anything else.
    if let IpAddr::V4(a) = addr
        && s.l3_offset == 0
        && s.l3_len <= buf.len()
        && s.quoted.is_none()
        && fast_v4(buf, side, a.to_bits(), port)
    {
        return Ok(());
    }
    if crate::wire::Family::of(addr) != s.family {
        return Err(RewriteError::FamilyMismatch);
    }
    let end = s
        .l3_offset
        .checked_add(s.l3_len)
        .filter(|&e| e <= buf.len() && s.l4_offset <= e);
    let Some(end) = end.filter(|_| s.l4_offset >= s.l3_offset) else {
        return Err(ParseError::truncated(Layer::Ipv4, s.l3_offset, s.l3_len, buf.len()).into());
    };
    let pkt = &mut buf[s.l3_offset..end];
    let l4 = s.l4_offset - s.l3_offset;
    if let (Some(q), Some(_)) = (&s.quoted, &s.icmp) {
        let q = quoted_at(pkt, s, l4, q)?;
        return icmp_error(pkt, s.family, l4, q, side, addr, port, opts);
    }
    let plan = plan_l4(pkt, s, l4, side, port)?;
    write_addr(
        pkt,
        s.family,
        side,
        addr,
        plan.pseudo_csum_at.map(|o| (o, plan.udp_zero_ok)),
    );
    if let Some(p) = plan.port_at {
        let old = be16(pkt, p);
        put16(pkt, p, port);
        if let Some(c) = plan.pseudo_csum_at {
            let hc = be16(pkt, c);
            if !(plan.udp_zero_ok && hc == 0) {
                let mut n = checksum::update16(hc, old, port);
                if plan.udp_zero_ok {
                    n = udp::mangle_zero(n);
                }
                put16(pkt, c, n);
            }
        }
    }
    if plan.sctp_recompute {
        crate::wire::SctpPacket::new_checked(&mut pkt[l4..])?.fill_checksum();
    }
    Ok(())
}

/// The common case in one pass: an unfragmented IPv4 TCP or UDP packet. Checks exactly
/// what [`PacketSummary::parse`] checks for such a packet and returns `false`, having
/// written nothing, for anything else (which then takes the general path and gets its
/// typed error there).
#[inline(always)]
pub(crate) fn fast_v4(pkt: &mut [u8], side: Side, addr: u32, port: u16) -> bool {
    let Some(hdr) = pkt.first_chunk::<20>() else {
        return false;
    };
    let hl = usize::from(hdr[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([hdr[2], hdr[3]]));
    let frag = u16::from_be_bytes([hdr[6], hdr[7]]);
    // IPv4, unfragmented (offset 0, MF clear), header and length consistent with the buffer.
    if hdr[0] >> 4 != 4
        || hl < ipv4::MIN_HEADER_LEN
        || total < hl
        || total > pkt.len()
        || frag & 0x3fff != 0
    {
        return false;
    }
    // Headers with options take the general path, which checks the option list.
    if hl != ipv4::MIN_HEADER_LEN || checksum::finish(checksum::add_ipv4_header(0, hdr)) != 0 {
        return false;
    }
    let protocol = hdr[9];
    let (_, l4) = pkt[..total].split_at(hl);
    let is_udp = match protocol {
        proto::TCP => match l4.first_chunk::<{ tcp::MIN_HEADER_LEN }>() {
            Some(t)
                if (tcp::MIN_HEADER_LEN..=l4.len()).contains(&(usize::from(t[12] >> 4) * 4)) =>
            {
                false
            }
            _ => return false,
        },
        proto::UDP => match l4.first_chunk::<{ udp::HEADER_LEN }>() {
            Some(u)
                if (udp::HEADER_LEN..=l4.len())
                    .contains(&usize::from(u16::from_be_bytes([u[4], u[5]]))) =>
            {
                true
            }
            _ => return false,
        },
        _ => return false,
    };
    write_v4(&mut pkt[..total], is_udp, side, addr, port, false)
}

/// [`fast_v4`] for a packet the lean parse accepted (an IPv4 header without options,
/// valid, and a complete TCP or UDP header): no second validation; with `dec_ttl` the
/// TTL decrement of forwarding is folded into the same header checksum update. Declines,
/// writing nothing, anything else (and a TTL of 1 or 0 with `dec_ttl`).
#[inline(always)]
pub(crate) fn fast_v4_lean(
    pkt: &mut [u8],
    l: &crate::wire::lean::Lean,
    side: Side,
    addr: u32,
    port: u16,
    dec_ttl: bool,
) -> bool {
    if l.family != crate::wire::Family::V4 || l.l4_offset != ipv4::MIN_HEADER_LEN {
        return false;
    }
    let is_udp = match l.protocol {
        proto::TCP => false,
        proto::UDP => true,
        _ => return false,
    };
    match pkt.get_mut(..l.l3_len) {
        Some(p) => write_v4(p, is_udp, side, addr, port, dec_ttl),
        None => false,
    }
}

/// The write half of the IPv4 TCP/UDP NAT fast path over `pkt`, exactly the IP packet,
/// whose 20-byte IP header and transport header were validated.
#[inline(always)]
fn write_v4(pkt: &mut [u8], is_udp: bool, side: Side, addr: u32, port: u16, dec_ttl: bool) -> bool {
    let csum_at = if is_udp {
        udp::CHECKSUM_OFFSET
    } else {
        tcp::CHECKSUM_OFFSET
    };
    if dec_ttl && pkt.get(8).is_none_or(|&t| t <= 1) {
        return false;
    }
    let (ip, l4) = pkt.split_at_mut(ipv4::MIN_HEADER_LEN.min(pkt.len()));
    let Some(l4) = l4.get_mut(..csum_at + 2) else {
        return false;
    };
    let (addr_at, port_at) = match side {
        Side::Dst => (16, 2),
        Side::Src => (12, 0),
    };
    let Some(ip) = ip.first_chunk_mut::<20>() else {
        return false;
    };
    let old_addr = u32::from_be_bytes([
        ip[addr_at],
        ip[addr_at + 1],
        ip[addr_at + 2],
        ip[addr_at + 3],
    ]);
    let old_port = u16::from_be_bytes([l4[port_at], l4[port_at + 1]]);
    ip[addr_at..addr_at + 4].copy_from_slice(&addr.to_be_bytes());
    l4[port_at..port_at + 2].copy_from_slice(&port.to_be_bytes());
    // RFC 1624 eqn. 3, one fold per checksum: ~(~HC + ~m + m') summed over the changed words.
    let addr_delta = u64::from(!(old_addr >> 16) & 0xffff)
        + u64::from(!old_addr & 0xffff)
        + u64::from(addr >> 16)
        + u64::from(addr & 0xffff);
    let mut ip_delta = addr_delta;
    if dec_ttl {
        // The TTL/protocol word loses 0x0100.
        let old = u16::from_be_bytes([ip[8], ip[9]]);
        ip[8] -= 1;
        ip_delta += u64::from(!old) + u64::from(old - 0x0100);
    }
    let hc = u16::from_be_bytes([ip[10], ip[11]]);
    ip[10..12].copy_from_slice(&(!checksum::fold(u64::from(!hc) + ip_delta)).to_be_bytes());
    let lc = u16::from_be_bytes([l4[csum_at], l4[csum_at + 1]]);
    if !(is_udp && lc == 0) {
        let delta = addr_delta + u64::from(!old_port) + u64::from(port);
        let mut n = !checksum::fold(u64::from(!lc) + delta);
        if is_udp {
            n = udp::mangle_zero(n);
        }
        l4[csum_at..csum_at + 2].copy_from_slice(&n.to_be_bytes());
    }
    true
}

/// What the write phase of an L4 rewrite touches, decided before any byte changes.
struct Plan {
    /// Offset of the port field to change.
    port_at: Option<usize>,
    /// Offset of a checksum that covers the pseudo-header (TCP, UDP, ICMPv6).
    pseudo_csum_at: Option<usize>,
    /// The checksum is UDP's: zero means none (IPv4) and a computed zero becomes 0xFFFF.
    udp_zero_ok: bool,
    /// SCTP whose port changes: recompute the CRC32c.
    sctp_recompute: bool,
}

fn plan_l4(
    pkt: &[u8],
    s: &PacketSummary,
    l4: usize,
    side: Side,
    port: u16,
) -> Result<Plan, RewriteError> {
    let port_off = match side {
        Side::Src => 0,
        Side::Dst => 2,
    };
    let mut plan = Plan {
        port_at: None,
        pseudo_csum_at: None,
        udp_zero_ok: false,
        sctp_recompute: false,
    };
    let has_l4 = s.fragment.has_transport_header();
    match s.protocol {
        proto::TCP => {
            if has_l4 {
                need(pkt, l4, tcp::MIN_HEADER_LEN, Layer::Tcp)?;
                plan.port_at = Some(l4 + port_off);
                plan.pseudo_csum_at = Some(l4 + tcp::CHECKSUM_OFFSET);
            }
        }
        proto::UDP => {
            if has_l4 {
                need(pkt, l4, udp::HEADER_LEN, Layer::Udp)?;
                let c = be16(pkt, l4 + udp::CHECKSUM_OFFSET);
                if c == 0 && s.family == Family::V6 {
                    return Err(ParseError::new(
                        Layer::Udp,
                        s.l4_offset + 6,
                        ParseErrorKind::ZeroUdpChecksumV6,
                    )
                    .into());
                }
                plan.port_at = Some(l4 + port_off);
                plan.pseudo_csum_at = Some(l4 + udp::CHECKSUM_OFFSET);
                plan.udp_zero_ok = true;
            }
        }
        proto::SCTP => {
            if has_l4 {
                need(pkt, l4, sctp::HEADER_LEN, Layer::Sctp)?;
                if be16(pkt, l4 + port_off) != port {
                    if s.fragment != Fragment::Unfragmented {
                        return Err(RewriteError::SctpFragment);
                    }
                    if !crate::wire::SctpPacket::new_checked(&pkt[l4..])?.verify_checksum() {
                        return Err(ParseError::new(
                            Layer::Sctp,
                            s.l4_offset + 8,
                            ParseErrorKind::BadChecksum,
                        )
                        .into());
                    }
                    plan.port_at = Some(l4 + port_off);
                    plan.sctp_recompute = true;
                }
            }
        }
        proto::ICMP if s.family == Family::V4 => {}
        proto::ICMPV6 if s.family == Family::V6 => {
            // The ICMPv6 checksum covers the pseudo-header, in whichever fragment holds it.
            if has_l4 {
                need(pkt, l4, 4, Layer::Icmpv6)?;
                plan.pseudo_csum_at = Some(l4 + 2);
            }
        }
        p => return Err(RewriteError::UnsupportedProtocol(p)),
    }
    Ok(plan)
}

fn need(pkt: &[u8], at: usize, n: usize, layer: Layer) -> Result<(), ParseError> {
    if pkt.len() < at + n {
        Err(ParseError::truncated(
            layer,
            at,
            n,
            pkt.len().saturating_sub(at),
        ))
    } else {
        Ok(())
    }
}

const fn addr_offset(family: Family, side: Side) -> usize {
    match (family, side) {
        (Family::V4, Side::Src) => 12,
        (Family::V4, Side::Dst) => 16,
        (Family::V6, Side::Src) => 8,
        (Family::V6, Side::Dst) => 24,
    }
}

/// Writes the address at `side` of the IP header at `pkt[0..]`, updating the IPv4 header
/// checksum and the transport checksum at `l4_csum` (offset, is-UDP) for the
/// pseudo-header.
fn write_addr(
    pkt: &mut [u8],
    family: Family,
    side: Side,
    addr: IpAddr,
    l4_csum: Option<(usize, bool)>,
) {
    let at = addr_offset(family, side);
    let old = read_addr(pkt, family, at);
    if old == addr {
        return;
    }
    match addr {
        IpAddr::V4(a) => {
            pkt[at..at + 4].copy_from_slice(&a.octets());
            let hc = be16(pkt, 10);
            put16(pkt, 10, checksum::update_addr(hc, old, addr));
        }
        IpAddr::V6(a) => pkt[at..at + 16].copy_from_slice(&a.octets()),
    }
    if let Some((c, is_udp)) = l4_csum {
        let hc = be16(pkt, c);
        if is_udp && hc == 0 {
            return; // IPv4 UDP without checksum (IPv6 zero was refused in planning).
        }
        let mut n = checksum::update_addr(hc, old, addr);
        if is_udp {
            n = udp::mangle_zero(n);
        }
        put16(pkt, c, n);
    }
}

fn read_addr(pkt: &[u8], family: Family, at: usize) -> IpAddr {
    match family {
        Family::V4 => IpAddr::from([pkt[at], pkt[at + 1], pkt[at + 2], pkt[at + 3]]),
        Family::V6 => IpAddr::from(crate::wire::ipv6::addr_at(pkt, at)),
    }
}

/// Offsets of the quote within the L3 packet, bounds-checked.
struct QuotedAt {
    l3: usize,
    l4: usize,
    ports: bool,
    protocol: u8,
}

fn quoted_at(
    pkt: &[u8],
    s: &PacketSummary,
    l4: usize,
    q: &crate::wire::Quoted,
) -> Result<QuotedAt, RewriteError> {
    let bad = || {
        RewriteError::from(ParseError::truncated(
            Layer::QuotedIp,
            q.l3_offset,
            0,
            pkt.len(),
        ))
    };
    let ql3 = q.l3_offset.checked_sub(s.l3_offset).ok_or_else(bad)?;
    let ql4 = q.l4_offset.checked_sub(s.l3_offset).ok_or_else(bad)?;
    let min_hl = if s.family == Family::V4 {
        ipv4::MIN_HEADER_LEN
    } else {
        crate::wire::ipv6::HEADER_LEN
    };
    let l4_need = if q.ports.is_some() { 8 } else { 0 };
    if ql3 < l4 + 8 || ql4 < ql3 + min_hl || ql4 + l4_need > pkt.len() {
        return Err(bad());
    }
    if s.family == Family::V4 && usize::from(pkt[ql3] & 0x0f) * 4 != ql4 - ql3 {
        return Err(bad());
    }
    Ok(QuotedAt {
        l3: ql3,
        l4: ql4,
        ports: q.ports.is_some(),
        protocol: q.protocol,
    })
}

/// ICMP error about a NAT connection (`ip_vs_nat_icmp`): outer address, quoted address and
/// port on the opposite side, quoted IPv4 header checksum and the ICMP checksum.
#[allow(clippy::too_many_arguments)]
fn icmp_error(
    pkt: &mut [u8],
    family: Family,
    l4: usize,
    q: QuotedAt,
    side: Side,
    addr: IpAddr,
    port: u16,
    opts: NatOptions,
) -> Result<(), RewriteError> {
    // Verify the ICMP checksum first: recomputing it over a corrupted message would launder it.
    let ok = match family {
        Family::V4 => checksum::checksum(&pkt[l4..]) == 0,
        Family::V6 => {
            let ip = crate::wire::Ipv6Packet::new_checked_header(&*pkt)?;
            let acc =
                checksum::pseudo_v6(ip.src(), ip.dst(), proto::ICMPV6, (pkt.len() - l4) as u32);
            checksum::finish(checksum::add(acc, &pkt[l4..])) == 0
        }
    };
    if !ok {
        let layer = if family == Family::V4 {
            Layer::Icmpv4
        } else {
            Layer::Icmpv6
        };
        return Err(ParseError::new(layer, l4 + 2, ParseErrorKind::BadChecksum).into());
    }
    // The quoted packet travelled the other way: rewrite its opposite side.
    let qside = match side {
        Side::Dst => Side::Src,
        Side::Src => Side::Dst,
    };
    let qproto = q.protocol;
    let quoted_l4_len = pkt.len() - q.l4;
    let quoted_csum = match (opts.quoted_checksum, qproto) {
        (QuotedChecksum::Update, proto::TCP)
            if q.ports && quoted_l4_len >= tcp::CHECKSUM_OFFSET + 2 =>
        {
            Some((q.l4 + tcp::CHECKSUM_OFFSET, false))
        }
        (QuotedChecksum::Update, proto::UDP) if q.ports => {
            Some((q.l4 + udp::CHECKSUM_OFFSET, true))
        }
        _ => None,
    };

    // Outer header.
    write_addr(pkt, family, side, addr, None);
    // Quoted header, address and (for TCP/UDP/SCTP with a transport header) the port.
    let inner = &mut pkt[q.l3..];
    let qcsum = quoted_csum.map(|(o, u)| (o - q.l3, u));
    write_addr(inner, family, qside, addr, qcsum);
    if family == Family::V4 {
        // The kernel recomputes the quoted header checksum in full (ip_send_check).
        let hl = q.l4 - q.l3;
        put16(inner, 10, 0);
        let c = checksum::checksum(&inner[..hl]);
        put16(inner, 10, c);
    }
    if q.ports {
        let p = q.l4 - q.l3 + if qside == Side::Src { 0 } else { 2 };
        let old = be16(inner, p);
        put16(inner, p, port);
        if let Some((c, is_udp)) = qcsum {
            let hc = be16(inner, c);
            if !(is_udp && hc == 0) && old != port {
                let mut n = checksum::update16(hc, old, port);
                if is_udp {
                    n = udp::mangle_zero(n);
                }
                put16(inner, c, n);
            }
        }
    }
    // ICMP checksum, in full.
    put16(pkt, l4 + 2, 0);
    let c = match family {
        Family::V4 => checksum::checksum(&pkt[l4..]),
        Family::V6 => {
            let ip = crate::wire::Ipv6Packet::new_checked_header(&*pkt)?;
            let acc =
                checksum::pseudo_v6(ip.src(), ip.dst(), proto::ICMPV6, (pkt.len() - l4) as u32);
            checksum::finish(checksum::add(acc, &pkt[l4..]))
        }
    };
    put16(pkt, l4 + 2, c);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::sample_tcp_v4;
    use core::net::{Ipv4Addr, Ipv6Addr};

    proptest::proptest! {
        /// The TTL decrement folded into the NAT checksum update gives the bytes of the
        /// two steps done one after the other, and declines a TTL of 0 or 1 untouched.
        #[test]
        fn folded_ttl_decrement_equals_two_steps(
            ttl in proptest::prelude::any::<u8>(),
            addr in proptest::prelude::any::<u32>(),
            port in proptest::prelude::any::<u16>(),
            dst in proptest::prelude::any::<bool>(),
        ) {
            let mut p = sample_tcp_v4();
            let old = u16::from_be_bytes([p[8], p[9]]);
            p[8] = ttl;
            let hc = checksum::update16(u16::from_be_bytes([p[10], p[11]]), old, u16::from_be_bytes([p[8], p[9]]));
            p[10..12].copy_from_slice(&hc.to_be_bytes());
            let side = if dst { Side::Dst } else { Side::Src };
            let mut folded = p;
            let l = crate::wire::lean::parse(&p).unwrap();
            let ok = fast_v4_lean(&mut folded, &l, side, addr, port, true);
            if ttl <= 1 {
                proptest::prop_assert!(!ok);
                proptest::prop_assert_eq!(folded, p);
            } else {
                proptest::prop_assert!(ok);
                let mut two = p;
                crate::forward::ttl::decrement(&mut two).unwrap();
                proptest::prop_assert!(fast_v4(&mut two, side, addr, port));
                proptest::prop_assert_eq!(folded, two);
            }
        }
    }

    fn v4(s: &str) -> IpAddr {
        s.parse::<Ipv4Addr>().unwrap().into()
    }

    fn tcp_ok(p: &[u8]) -> bool {
        let s = PacketSummary::parse(p).unwrap();
        let (IpAddr::V4(a), IpAddr::V4(b)) = (s.src, s.dst) else {
            unreachable!()
        };
        let l4 = &p[s.l4_offset..s.l3_len];
        let acc = checksum::pseudo_v4(a, b, 6, l4.len() as u16);
        checksum::finish(checksum::add(acc, l4)) == 0
    }

    #[test]
    fn tcp_inbound_then_outbound_restores_vip_view() {
        let orig = sample_tcp_v4();
        let mut p = orig;
        inbound(&mut p, v4("10.0.0.2"), 8080).unwrap();
        let s = PacketSummary::parse(&p).unwrap();
        assert_eq!(s.dst, v4("10.0.0.2"));
        assert_eq!(s.ports.unwrap().dst, 8080);
        assert!(tcp_ok(&p));
        // Rewriting back gives the original bytes.
        rewrite(
            &mut p,
            &s,
            Side::Dst,
            v4("192.0.2.1"),
            80,
            NatOptions::default(),
        )
        .unwrap();
        assert_eq!(p, orig);
        // A reply from the real server, rewritten outbound, comes from the VIP.
        let mut r = orig;
        r[12..16].copy_from_slice(&[10, 0, 0, 2]);
        r[16..20].copy_from_slice(&[198, 51, 100, 7]);
        r[20..22].copy_from_slice(&8080u16.to_be_bytes());
        r[22..24].copy_from_slice(&40000u16.to_be_bytes());
        let mut ip = crate::wire::Ipv4Packet::new_checked(&mut r[..]).unwrap();
        ip.fill_checksum();
        r[36..38].fill(0);
        let acc = checksum::pseudo_v4(
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(198, 51, 100, 7),
            6,
            44,
        );
        let c = checksum::finish(checksum::add(acc, &r[20..]));
        r[36..38].copy_from_slice(&c.to_be_bytes());
        outbound(&mut r, v4("192.0.2.1"), 80).unwrap();
        let s = PacketSummary::parse(&r).unwrap();
        assert_eq!((s.src, s.ports.unwrap().src), (v4("192.0.2.1"), 80));
        assert!(tcp_ok(&r));
    }

    #[test]
    fn errors_leave_buffer_unchanged() {
        let orig = sample_tcp_v4();
        let mut p = orig;
        let v6: IpAddr = "2001:db8::1".parse::<Ipv6Addr>().unwrap().into();
        assert_eq!(inbound(&mut p, v6, 80), Err(RewriteError::FamilyMismatch));
        assert_eq!(p, orig);
        let mut short = orig;
        assert!(inbound(&mut short[..30], v4("10.0.0.2"), 80).is_err());
        assert_eq!(short, orig);
        let mut bad = orig;
        bad[0] = 0x44;
        let before = bad;
        assert!(inbound(&mut bad, v4("10.0.0.2"), 80).is_err());
        assert_eq!(bad, before);
        // A stale summary with offsets past the buffer is refused, not a panic.
        let mut s = PacketSummary::parse(&orig).unwrap();
        s.l3_len = 1000;
        let mut p = orig;
        assert!(
            rewrite(
                &mut p,
                &s,
                Side::Dst,
                v4("10.0.0.2"),
                1,
                NatOptions::default()
            )
            .is_err()
        );
        assert_eq!(p, orig);
    }
}

#[cfg(test)]
mod cases {
    //! Edge cases, each checked against etherparse's own checksum computation.
    use super::*;
    use etherparse::{Icmpv4Type, Icmpv6Type, IpNumber, PacketBuilder, icmpv4, icmpv6};

    const CLIENT4: [u8; 4] = [198, 51, 100, 7];
    const VIP4: [u8; 4] = [192, 0, 2, 1];
    const RIP4: [u8; 4] = [10, 0, 0, 2];
    const CLIENT6: [u8; 16] = [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    const VIP6: [u8; 16] = [0x20, 0x01, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const RIP6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    fn rip4() -> IpAddr {
        IpAddr::from(RIP4)
    }
    fn rip6() -> IpAddr {
        IpAddr::from(RIP6)
    }

    /// Full verification with etherparse: IPv4 header, TCP/UDP/ICMP(v6) checksums.
    fn assert_valid(p: &[u8]) {
        use etherparse::{NetSlice, SlicedPacket, TransportSlice};
        let sp = SlicedPacket::from_ip(p).expect("etherparse parses the result");
        let (v4, v6) = match &sp.net {
            Some(NetSlice::Ipv4(s)) => {
                let h = s.header().to_header();
                assert_eq!(
                    h.header_checksum,
                    h.calc_header_checksum(),
                    "IPv4 header checksum"
                );
                (Some(h), None)
            }
            Some(NetSlice::Ipv6(s)) => (None, Some(s.header().to_header())),
            _ => panic!("no IP"),
        };
        match &sp.transport {
            Some(TransportSlice::Udp(u)) => {
                let h = u.to_header();
                let want = match (&v4, &v6) {
                    (Some(ip), _) if h.checksum == 0 => 0,
                    (Some(ip), _) => h.calc_checksum_ipv4(ip, u.payload()).unwrap(),
                    (_, Some(ip)) => h.calc_checksum_ipv6(ip, u.payload()).unwrap(),
                    _ => unreachable!(),
                };
                assert_eq!(h.checksum, want, "UDP checksum");
            }
            Some(TransportSlice::Tcp(t)) => {
                let h = t.to_header();
                let want = match (&v4, &v6) {
                    (Some(ip), _) => h.calc_checksum_ipv4(ip, t.payload()).unwrap(),
                    (_, Some(ip)) => h.calc_checksum_ipv6(ip, t.payload()).unwrap(),
                    _ => unreachable!(),
                };
                assert_eq!(h.checksum, want, "TCP checksum");
            }
            Some(TransportSlice::Icmpv4(i)) => {
                let h = i.header();
                assert_eq!(
                    h.checksum,
                    h.icmp_type.calc_checksum(i.payload()),
                    "ICMPv4 checksum"
                );
            }
            Some(TransportSlice::Icmpv6(i)) => {
                let ip = v6.unwrap();
                let h = i.header();
                let want = h
                    .icmp_type
                    .calc_checksum(ip.source, ip.destination, i.payload())
                    .unwrap();
                assert_eq!(h.checksum, want, "ICMPv6 checksum");
            }
            _ => {}
        }
    }

    fn udp4(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4(src, dst, 64)
            .udp(sp, dp)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    #[test]
    fn udp_v4_zero_checksum_stays_zero() {
        let mut p = udp4(CLIENT4, VIP4, 5353, 53, b"query");
        p[26..28].fill(0);
        inbound(&mut p, rip4(), 5300).unwrap();
        assert_eq!(&p[26..28], &[0, 0]);
        assert_valid(&p);
    }

    #[test]
    fn udp_computed_zero_is_sent_as_ffff() {
        // Search a payload whose rewritten datagram sums to a zero checksum.
        let mut found = false;
        for v in 0..=u16::MAX {
            let orig = udp4(CLIENT4, VIP4, 5353, 53, &v.to_be_bytes());
            let want = udp4(CLIENT4, RIP4, 5353, 5300, &v.to_be_bytes());
            if be16(&want, 26) != 0xffff {
                continue; // etherparse writes a computed zero as 0xFFFF too
            }
            let mut p = orig;
            inbound(&mut p, rip4(), 5300).unwrap();
            assert_eq!(p, want);
            found = true;
            break;
        }
        assert!(found);
    }

    #[test]
    fn udp_v6_zero_checksum_is_refused() {
        let mut p = Vec::new();
        PacketBuilder::ipv6(CLIENT6, VIP6, 64)
            .udp(5353, 53)
            .write(&mut p, b"q")
            .unwrap();
        p[46..48].fill(0);
        let before = p.clone();
        let e = inbound(&mut p, rip6(), 53).unwrap_err();
        assert!(matches!(
            e,
            RewriteError::Parse(ParseError {
                kind: ParseErrorKind::ZeroUdpChecksumV6,
                ..
            })
        ));
        assert_eq!(p, before);
    }

    #[test]
    fn tcp_v6_both_directions() {
        let mut p = Vec::new();
        PacketBuilder::ipv6(CLIENT6, VIP6, 64)
            .tcp(40000, 443, 1, 1000)
            .syn()
            .write(&mut p, b"hello")
            .unwrap();
        let orig = p.clone();
        inbound(&mut p, rip6(), 8443).unwrap();
        assert_valid(&p);
        let mut want = Vec::new();
        PacketBuilder::ipv6(CLIENT6, RIP6, 64)
            .tcp(40000, 8443, 1, 1000)
            .syn()
            .write(&mut want, b"hello")
            .unwrap();
        assert_eq!(p, want);
        let mut reply = Vec::new();
        PacketBuilder::ipv6(RIP6, CLIENT6, 64)
            .tcp(8443, 40000, 9, 1000)
            .syn()
            .ack(2)
            .write(&mut reply, b"")
            .unwrap();
        outbound(&mut reply, IpAddr::from(VIP6), 443).unwrap();
        let mut want = Vec::new();
        PacketBuilder::ipv6(VIP6, CLIENT6, 64)
            .tcp(443, 40000, 9, 1000)
            .syn()
            .ack(2)
            .write(&mut want, b"")
            .unwrap();
        assert_eq!(reply, want);
        assert_ne!(orig, p);
    }

    #[test]
    fn icmp_echo_address_only() {
        let mut p = Vec::new();
        PacketBuilder::ipv4(CLIENT4, VIP4, 64)
            .icmpv4_echo_request(77, 1)
            .write(&mut p, b"ping")
            .unwrap();
        inbound(&mut p, rip4(), 0).unwrap();
        assert_valid(&p);
        assert_eq!(
            PacketSummary::parse(&p).unwrap().icmp.unwrap().echo_ident,
            Some(77)
        );
        let mut p = Vec::new();
        PacketBuilder::ipv6(CLIENT6, VIP6, 64)
            .icmpv6_echo_request(77, 1)
            .write(&mut p, b"ping")
            .unwrap();
        inbound(&mut p, rip6(), 0).unwrap();
        assert_valid(&p);
        assert_eq!(&p[24..40], &RIP6);
    }

    fn sctp4(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, more_frags: bool) -> Vec<u8> {
        let mut p = vec![0u8; 20 + 12 + 16];
        crate::wire::ipv4::emit_header(
            &mut p,
            0,
            48,
            1,
            if more_frags {
                crate::wire::ipv4::FLAG_MF
            } else {
                0
            },
            64,
            proto::SCTP,
            src.into(),
            dst.into(),
        );
        put16(&mut p, 20, sp);
        put16(&mut p, 22, dp);
        p[32] = 0; // DATA chunk
        p[35] = 16;
        crate::wire::SctpPacket::new_checked(&mut p[20..])
            .unwrap()
            .fill_checksum();
        p
    }

    #[test]
    fn sctp_port_change_recomputes_crc32c() {
        let mut p = sctp4(CLIENT4, VIP4, 5000, 3868, false);
        inbound(&mut p, rip4(), 3869).unwrap();
        assert_eq!(p, sctp4(CLIENT4, RIP4, 5000, 3869, false));
        // Same port: the CRC does not cover addresses, so it stays.
        let mut q = sctp4(CLIENT4, VIP4, 5000, 3868, false);
        inbound(&mut q, rip4(), 3868).unwrap();
        assert_eq!(q, sctp4(CLIENT4, RIP4, 5000, 3868, false));
        // A corrupted CRC is refused instead of laundered.
        let mut bad = sctp4(CLIENT4, VIP4, 5000, 3868, false);
        bad[40] ^= 1;
        let before = bad.clone();
        assert!(inbound(&mut bad, rip4(), 3869).is_err());
        assert_eq!(bad, before);
        // A first fragment cannot have its CRC recomputed.
        let mut frag = sctp4(CLIENT4, VIP4, 5000, 3868, true);
        let before = frag.clone();
        assert_eq!(
            inbound(&mut frag, rip4(), 3869),
            Err(RewriteError::SctpFragment)
        );
        assert_eq!(frag, before);
    }

    #[test]
    fn non_first_fragment_gets_address_only() {
        let mut p = udp4(CLIENT4, VIP4, 5353, 53, &[0xab; 40]);
        // Make it a non-first fragment: offset 1480, payload untouched.
        put16(&mut p, 6, 185);
        crate::wire::Ipv4Packet::new_checked(&mut p[..])
            .unwrap()
            .fill_checksum();
        let payload = p[20..].to_vec();
        inbound(&mut p, rip4(), 9999).unwrap();
        assert_eq!(
            &p[20..],
            &payload[..],
            "no port rewrite without a transport header"
        );
        assert_eq!(&p[16..20], &RIP4);
        assert!(
            crate::wire::Ipv4Packet::new_checked(&p[..])
                .unwrap()
                .verify_checksum()
        );
    }

    /// A reply VIP:53 -> client:5353 that a router bounced back with an ICMP error.
    fn icmp4_error_about_reply(quote_len: usize) -> Vec<u8> {
        let reply = udp4(VIP4, CLIENT4, 53, 5353, &[7; 32]);
        let quote = &reply[..quote_len];
        let mut p = Vec::new();
        PacketBuilder::ipv4(CLIENT4, VIP4, 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut p, quote)
            .unwrap();
        p
    }

    #[test]
    fn icmp4_error_inbound_rewrites_quote() {
        for quote_len in [28, 60] {
            let mut p = icmp4_error_about_reply(quote_len);
            inbound(&mut p, rip4(), 5300).unwrap();
            assert_valid(&p);
            let s = PacketSummary::parse(&p).unwrap();
            let q = s.quoted.unwrap();
            assert_eq!(s.dst, rip4());
            assert_eq!(q.src, rip4());
            assert_eq!(q.ports.unwrap().src, 5300);
            assert!(
                crate::wire::Ipv4Packet::new_checked_header(&p[q.l3_offset..])
                    .unwrap()
                    .verify_checksum()
            );
        }
    }

    #[test]
    fn icmp_error_quoted_checksum_option() {
        // The real server sent RIP:5300 -> client; the director made it VIP:53 -> client.
        let rs_sent = udp4(RIP4, CLIENT4, 5300, 53 + 5300, &[7; 32]);
        let mut on_wire = rs_sent.clone();
        outbound(&mut on_wire, IpAddr::from(VIP4), 53).unwrap();
        let mut err = Vec::new();
        PacketBuilder::ipv4(CLIENT4, VIP4, 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut err, &on_wire)
            .unwrap();
        let s = PacketSummary::parse(&err).unwrap();
        let mut kernel = err.clone();
        rewrite(
            &mut kernel,
            &s,
            Side::Dst,
            rip4(),
            5300,
            NatOptions::default(),
        )
        .unwrap();
        let mut better = err.clone();
        let opts = NatOptions {
            quoted_checksum: QuotedChecksum::Update,
        };
        rewrite(&mut better, &s, Side::Dst, rip4(), 5300, opts).unwrap();
        assert_valid(&kernel);
        assert_valid(&better);
        assert_eq!(
            &better[28..],
            &rs_sent[..],
            "with Update the quote is exactly what the RS sent"
        );
        assert_ne!(
            &kernel[28..],
            &rs_sent[..],
            "the kernel leaves the quoted UDP checksum stale"
        );
        assert_eq!(&kernel[28..34], &rs_sent[..6]);
    }

    #[test]
    fn icmp6_error_outbound_rewrites_quote() {
        // Real server says "port unreachable" about the client's request client -> RIP:8443.
        let mut req = Vec::new();
        PacketBuilder::ipv6(CLIENT6, RIP6, 64)
            .tcp(40000, 8443, 1, 1000)
            .write(&mut req, b"x")
            .unwrap();
        let mut p = Vec::new();
        PacketBuilder::ipv6(RIP6, CLIENT6, 64)
            .icmpv6(Icmpv6Type::DestinationUnreachable(
                icmpv6::DestUnreachableCode::Port,
            ))
            .write(&mut p, &req[..48])
            .unwrap();
        outbound(&mut p, IpAddr::from(VIP6), 443).unwrap();
        assert_valid(&p);
        let s = PacketSummary::parse(&p).unwrap();
        let q = s.quoted.unwrap();
        assert_eq!(
            (s.src, q.dst, q.ports.unwrap().dst),
            (IpAddr::from(VIP6), IpAddr::from(VIP6), 443)
        );
        // A corrupted ICMPv6 checksum is refused.
        let mut bad = p.clone();
        bad[60] ^= 0xff;
        let before = bad.clone();
        assert!(outbound(&mut bad, IpAddr::from(VIP6), 443).is_err());
        assert_eq!(bad, before);
    }

    #[test]
    fn unsupported_protocol_is_typed() {
        let mut p = udp4(CLIENT4, VIP4, 1, 2, b"");
        p[9] = IpNumber::ENCAPSULATING_SECURITY_PAYLOAD.0;
        crate::wire::Ipv4Packet::new_checked(&mut p[..])
            .unwrap()
            .fill_checksum();
        let before = p.clone();
        assert_eq!(
            inbound(&mut p, rip4(), 1),
            Err(RewriteError::UnsupportedProtocol(50))
        );
        assert_eq!(p, before);
    }
}
