//! IPVS tunnel forwarding ("VS/TUN"): IPIP (4in4, 6in6, 4in6, 6in4), GUE and GRE
//! encapsulation, and the matching decapsulation a real server (or a test) performs.
//!
//! The outer header is built as the kernel's `ip_vs_tunnel_xmit` (IPv4 outer) and
//! `ip_vs_tunnel_xmit_v6` (IPv6 outer) build it, after `ip_vs_prepare_tunneled_skb`:
//!
//! - TTL / hop limit = the inner TTL / hop limit (decrement it first with
//!   [`crate::forward::ttl::decrement`], as `__ip_vs_get_out_rt` does before encapsulating);
//! - TOS / traffic class = `INET_ECN_encapsulate(inner, inner)`: the inner DS field, whose
//!   ECN bits are copied unless they are CE, which becomes ECT(0) (RFC 6040 "normal mode");
//! - IPv4 outer: DF copied from an IPv4 inner packet only when [`Tunnel::copy_df`]
//!   (sysctl `pmtu_disc`) is set, never for an IPv6 inner packet; fragment offset 0, MF 0;
//! - IPv4 outer identification: `ip_select_ident(net, skb, NULL)` writes 0 when DF is set
//!   (there is no socket and `ignore_df` is still clear at that point) and a per-destination
//!   hashed counter otherwise; this crate writes 0 when DF is set and the caller's `ip_id`
//!   otherwise;
//! - IPv6 outer: flow label 0;
//! - the inner packet is not modified (its IPv4 header checksum, which the kernel recomputes
//!   with `ip_send_check`, has already been verified here).
//!
//! GUE (`ipvs_gue_encap`): UDP source port from a flow hash as `udp_flow_src_port` maps it,
//! destination port [`TunnelKind::Gue::port`], a 4-byte GUE header with `proto_ctype` 4
//! or 41 and no options. Linux adds the remote-checksum-offload option only for
//! `CHECKSUM_PARTIAL` packets; packets handed to this crate always carry complete
//! checksums, so [`GueChecksum::RemCsum`] behaves exactly as [`GueChecksum::Csum`]. The UDP
//! checksum is computed in full for `Csum`/`RemCsum` (a result of 0 is sent as 0xFFFF) and
//! is 0 otherwise, over IPv6 as well: `udp6_set_csum(nocheck = true, ..)` writes 0 (RFC
//! 6935/6936 zero-checksum UDP tunnels).
//!
//! GRE (`ipvs_gre_encap` / `gre_build_header`): version 0, protocol 0x0800 or 0x86DD,
//! optional checksum over the GRE header and payload. The kernel never adds a key; this
//! crate can (RFC 2890) for embedders that need one.

use core::hash::Hasher;
use core::net::IpAddr;

use siphasher::sip::SipHasher13;

use crate::buf::PacketBuf;
use crate::checksum;
use crate::error::{Layer, ParseError, ParseErrorKind, RewriteError};
use crate::wire::{
    EtherType, Family, GrePacket, GuePacket, PacketSummary, UdpPacket, gre, gue, ipv4, ipv6, lean,
    proto, udp,
};

/// The UDP checksum policy of a GUE tunnel (ipvsadm `--tun-nocsum`, `--tun-csum`,
/// `--tun-remcsum`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum GueChecksum {
    /// No UDP checksum (the field is 0), the default.
    None,
    /// A full UDP checksum.
    Csum,
    /// Remote checksum offload. Linux adds the REMCSUM option only to packets whose
    /// checksum is still to be completed (`CHECKSUM_PARTIAL`); this crate's packets never
    /// are, so this is the same as [`GueChecksum::Csum`] on the wire.
    RemCsum,
}

/// The encapsulation of a tunnel destination (ipvsadm `--tun-type`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum TunnelKind {
    /// Plain IP in IP: protocol 4 for an IPv4 inner packet, 41 for IPv6.
    Ipip,
    /// Generic UDP Encapsulation to a UDP port (`--tun-port`).
    Gue {
        /// UDP destination port.
        port: u16,
        /// UDP checksum policy.
        checksum: GueChecksum,
    },
    /// GRE (RFC 2784), optionally with a checksum and an RFC 2890 key.
    Gre {
        /// Whether the GRE checksum is present.
        checksum: bool,
        /// The key, if any (Linux IPVS never sends one).
        key: Option<u32>,
    },
}

/// A tunnel to one real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    /// The encapsulation.
    pub kind: TunnelKind,
    /// Outer source address (the kernel uses the route's source address for the dest).
    pub src: IpAddr,
    /// Outer destination address (the real server).
    pub dst: IpAddr,
    /// Copy DF from an IPv4 inner packet to an IPv4 outer header, and apply path-MTU
    /// rules to tunnelled IPv4 packets: the kernel's `net.ipv4.vs.pmtu_disc`, default on.
    pub copy_df: bool,
    /// Key of the SipHash-1-3 flow hash that picks the GUE UDP source port. Supply a
    /// secret random key; the default of zero makes ports predictable.
    pub flow_hash_key: [u8; 16],
}

impl Tunnel {
    /// A tunnel with `copy_df` on and a zero flow-hash key.
    #[must_use]
    pub const fn new(kind: TunnelKind, src: IpAddr, dst: IpAddr) -> Self {
        Self {
            kind,
            src,
            dst,
            copy_df: true,
            flow_hash_key: [0; 16],
        }
    }

    /// Bytes the encapsulation adds: outer IP header (20 or 40), plus UDP and GUE (8 + 4)
    /// or GRE (4, + 4 with checksum, + 4 with key).
    #[must_use]
    pub const fn overhead(&self) -> usize {
        let ip = match self.src {
            IpAddr::V4(_) => ipv4::MIN_HEADER_LEN,
            IpAddr::V6(_) => ipv6::HEADER_LEN,
        };
        ip + self.encap_len()
    }

    /// Bytes between the outer IP header and the inner packet.
    const fn encap_len(&self) -> usize {
        match self.kind {
            TunnelKind::Ipip => 0,
            TunnelKind::Gue { .. } => udp::HEADER_LEN + gue::HEADER_LEN,
            TunnelKind::Gre { checksum, key } => gre::header_len(checksum, key.is_some(), false),
        }
    }
}

/// Lowest port of Linux's default `ip_local_port_range`.
pub const GUE_SRC_PORT_MIN: u16 = 32768;
/// Highest port of Linux's default `ip_local_port_range` (exclusive bound of the
/// `udp_flow_src_port` scaling, so the largest port actually produced is 60998).
pub const GUE_SRC_PORT_MAX: u16 = 60999;

/// The GUE UDP source port for a flow: a 32-bit flow hash `h` mapped as Linux's
/// `udp_flow_src_port` does, `h ^= h << 16; min + ((h as u64 * (max - min)) >> 32)`.
#[must_use]
pub fn udp_flow_src_port(hash: u32) -> u16 {
    let h = hash ^ (hash << 16);
    let span = u64::from(GUE_SRC_PORT_MAX - GUE_SRC_PORT_MIN);
    // (h * span) >> 32 < span, so the sum stays below GUE_SRC_PORT_MAX.
    GUE_SRC_PORT_MIN + ((u64::from(h) * span) >> 32) as u16
}

/// The keyed flow hash of the inner packet: SipHash-1-3 over source and destination
/// address, protocol and, when present, source and destination port (all in network
/// byte order, back to back), truncated to 32 bits.
///
/// `addrs` is both addresses (8 or 32 bytes), `ports` the first four transport bytes.
/// The input is gathered into one buffer and hashed in one call, which gives the same
/// value as writing the fields one by one (SipHash is defined over the byte string).
#[inline]
fn flow_hash(addrs: &[u8], protocol: u8, ports: Option<&[u8; 4]>, key: &[u8; 16]) -> u32 {
    if let Ok(a) = <&[u8; 8]>::try_from(addrs) {
        hash_tuple::<8, 13>(a, protocol, ports, key)
    } else if let Ok(a) = <&[u8; 32]>::try_from(addrs) {
        hash_tuple::<32, 37>(a, protocol, ports, key)
    } else {
        // Not reached: addresses come in pairs of one family.
        let mut h = SipHasher13::new_with_key(key);
        h.write(addrs);
        h.write_u8(protocol);
        if let Some(p) = ports {
            h.write(p);
        }
        h.finish() as u32
    }
}

/// [`flow_hash`] with the address bytes' length `A` known; `N` is `A + 5`.
#[inline]
fn hash_tuple<const A: usize, const N: usize>(
    addrs: &[u8; A],
    protocol: u8,
    ports: Option<&[u8; 4]>,
    key: &[u8; 16],
) -> u32 {
    debug_assert_eq!(N, A + 5);
    let mut b = [0u8; N];
    b[..A].copy_from_slice(addrs);
    b[A] = protocol;
    let len = match ports {
        Some(p) => {
            b[A + 1..A + 5].copy_from_slice(p);
            A + 5
        }
        None => A + 1,
    };
    // `SipHasher13::new_with_key` reads the key this way; `new_with_keys` is the inlinable
    // half of it.
    let [
        a0,
        a1,
        a2,
        a3,
        a4,
        a5,
        a6,
        a7,
        b0,
        b1,
        b2,
        b3,
        b4,
        b5,
        b6,
        b7,
    ] = *key;
    let k0 = u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]);
    let k1 = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
    crate::siphash::siphash13(&b[..len], k0, k1) as u32
}

/// [`flow_hash`] of a packet described by a full summary.
fn summary_flow_hash(s: &PacketSummary, key: &[u8; 16]) -> u32 {
    let mut addrs = [0u8; 32];
    let n = match (s.src, s.dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            addrs[..4].copy_from_slice(&a.octets());
            addrs[4..8].copy_from_slice(&b.octets());
            8
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            addrs[..16].copy_from_slice(&a.octets());
            addrs[16..].copy_from_slice(&b.octets());
            32
        }
        // A summary's addresses are of its one family; hash what is there regardless.
        (a, b) => {
            let mut n = 0;
            for x in [a, b] {
                match x {
                    IpAddr::V4(x) => {
                        addrs[n..n + 4].copy_from_slice(&x.octets());
                        n += 4;
                    }
                    IpAddr::V6(x) => {
                        addrs[n..n + 16].copy_from_slice(&x.octets());
                        n += 16;
                    }
                }
            }
            n
        }
    };
    let ports = s.ports.map(|p| {
        let [a, b] = p.src.to_be_bytes();
        let [c, d] = p.dst.to_be_bytes();
        [a, b, c, d]
    });
    flow_hash(&addrs[..n], s.protocol, ports.as_ref(), key)
}

/// What encapsulation reads from the inner packet.
struct Inner {
    family: Family,
    len: usize,
    tos: u8,
    ttl: u8,
    dont_frag: bool,
    /// The flow hash, when the tunnel needs one (GUE), else 0.
    hash: u32,
}

impl Inner {
    /// Validates the inner packet exactly as [`PacketSummary::parse`] does: the lean
    /// parse for the common packet, the full parse for the rest (and for every error).
    #[inline]
    fn parse(pkt: &[u8], t: &Tunnel, given: Option<u32>) -> Result<Self, RewriteError> {
        let gue = matches!(t.kind, TunnelKind::Gue { .. }) && given.is_none();
        let Some(l) = lean::parse(pkt) else {
            let mut inner = Self::parse_full(pkt, gue, &t.flow_hash_key)?;
            if let Some(h) = given {
                inner.hash = h;
            }
            return Ok(inner);
        };
        let hash = if let Some(h) = given {
            h
        } else if gue {
            let ports = if l.has_ports {
                pkt.get(l.l4_offset..).and_then(|p| p.first_chunk::<4>())
            } else {
                None
            };
            flow_hash(l.addrs(pkt), l.protocol, ports, &t.flow_hash_key)
        } else {
            0
        };
        Ok(Self {
            family: l.family,
            len: l.l3_len,
            tos: l.tos,
            ttl: l.ttl,
            dont_frag: l.dont_frag,
            hash,
        })
    }

    #[cold]
    #[inline(never)]
    fn parse_full(pkt: &[u8], gue: bool, key: &[u8; 16]) -> Result<Self, RewriteError> {
        let s = PacketSummary::parse(pkt)?;
        Ok(Self {
            family: s.family,
            len: s.l3_len,
            tos: s.tos,
            ttl: s.ttl,
            dont_frag: s.dont_frag,
            hash: if gue { summary_flow_hash(&s, key) } else { 0 },
        })
    }
}

/// `INET_ECN_encapsulate(inner, inner)`: keep the DS field, copy ECN unless it is CE (3),
/// which becomes ECT(0) (2).
#[must_use]
pub const fn ecn_encapsulate(inner: u8) -> u8 {
    // CE (both ECN bits set) loses its low bit, becoming ECT(0); all else is kept.
    let ce = inner & (inner >> 1) & 1;
    inner & !ce
}

/// Encapsulates the IP packet in `buf` for tunnel `t`, prepending the outer headers in
/// the buffer's headroom.
///
/// `ip_id` is the outer IPv4 identification used when DF is clear (the kernel draws it
/// from `ip_select_ident`'s hashed counters); with DF set the identification is 0, as
/// Linux writes for socketless DF packets. It is ignored for an IPv6 outer header.
///
/// Bytes behind the inner packet's own length (link-layer padding) are dropped first.
///
/// # Errors
/// [`RewriteError::Parse`] if the inner packet is malformed, [`RewriteError::FamilyMismatch`]
/// if `t.src` and `t.dst` are of different families, [`RewriteError::TooLong`] if the
/// outer packet would exceed 65535 bytes (IPv4 total length or IPv6 payload length),
/// [`RewriteError::InsufficientHeadroom`] if fewer than [`Tunnel::overhead`] bytes of
/// headroom are free. On error the buffer is unchanged.
pub fn encapsulate<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    t: &Tunnel,
    ip_id: u16,
) -> Result<(), RewriteError> {
    encapsulate_flow(buf, t, ip_id, None)
}

/// The flow hash [`encapsulate`] derives the GUE source port from: keyed SipHash-1-3 of
/// the inner addresses, protocol and ports. An engine computes it once per connection and
/// passes it to [`encapsulate_flow`], so packets of an established flow skip the hash.
///
/// # Errors
/// [`RewriteError::Parse`] if `pkt` is not a valid IP packet.
pub fn flow_hash_of(pkt: &[u8], key: &[u8; 16]) -> Result<u32, RewriteError> {
    let s = PacketSummary::parse(pkt)?;
    Ok(summary_flow_hash(&s, key))
}

/// [`encapsulate`] with the flow hash given (see [`flow_hash_of`]); `None` computes it.
///
/// # Errors
/// As [`encapsulate`].
pub fn encapsulate_flow<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    t: &Tunnel,
    ip_id: u16,
    flow_hash: Option<u32>,
) -> Result<(), RewriteError> {
    let inner = Inner::parse(buf.packet(), t, flow_hash)?;
    // The outer addresses decide everything about the outer IP header; match them once.
    let (ip_len, limit) = match (t.src, t.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (ipv4::MIN_HEADER_LEN, 0xffff),
        (IpAddr::V6(_), IpAddr::V6(_)) => (ipv6::HEADER_LEN, 0xffff + ipv6::HEADER_LEN),
        _ => return Err(RewriteError::FamilyMismatch),
    };
    let inner_len = inner.len;
    let overhead = ip_len + t.encap_len();
    let total = overhead + inner_len;
    if total > limit {
        return Err(RewriteError::TooLong(total));
    }
    if buf.headroom() < overhead {
        return Err(RewriteError::InsufficientHeadroom {
            needed: overhead,
            available: buf.headroom(),
        });
    }
    let (inner_proto, ethertype) = match inner.family {
        Family::V4 => (proto::IPIP, EtherType::IPV4),
        Family::V6 => (proto::IPV6, EtherType::IPV6),
    };

    // Validation done: from here on nothing fails.
    buf.truncate(inner_len);
    let hdr = buf.prepend(overhead)?;
    let (ip, encap) = hdr.split_at_mut(ip_len);
    let (outer_proto, full_checksum) = match t.kind {
        TunnelKind::Ipip => (inner_proto, false),
        TunnelKind::Gue { port, checksum: ck } => {
            let sport = udp_flow_src_port(inner.hash);
            let udp_len = (total - ip_len) as u16;
            let [s0, s1] = sport.to_be_bytes();
            let [p0, p1] = port.to_be_bytes();
            let [l0, l1] = udp_len.to_be_bytes();
            // UDP header with checksum 0, then GUE version 0, no options.
            if let Some(e) = encap.first_chunk_mut::<{ udp::HEADER_LEN + gue::HEADER_LEN }>() {
                let (u, g) = e.split_at_mut(udp::HEADER_LEN);
                u.copy_from_slice(&[s0, s1, p0, p1, l0, l1, 0, 0]);
                gue::emit_header(g, inner_proto);
            }
            (proto::UDP, ck != GueChecksum::None)
        }
        TunnelKind::Gre { checksum: ck, key } => {
            gre::emit_header(encap, ethertype, ck, key);
            (proto::GRE, ck)
        }
    };
    let tos = ecn_encapsulate(inner.tos);
    match (t.src, t.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let df = t.copy_df && inner.family == Family::V4 && inner.dont_frag;
            let (flags, ident) = if df { (ipv4::FLAG_DF, 0) } else { (0, ip_id) };
            let h = ipv4::header(
                tos,
                total as u16,
                ident,
                flags,
                inner.ttl,
                outer_proto,
                src,
                dst,
            );
            if let Some(ip) = ip.first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>() {
                *ip = h;
            }
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let payload = (total - ipv6::HEADER_LEN) as u16;
            ipv6::emit_header(ip, tos, 0, payload, outer_proto, inner.ttl, src, dst);
        }
        _ => {}
    }
    if full_checksum {
        fill_encap_checksum(buf.packet_mut(), t, ip_len);
    }
    Ok(())
}

/// The GUE UDP checksum or the GRE checksum, over the encapsulation header and the inner
/// packet behind it (which is the rest of `pkt`); the field is still 0.
#[cold]
#[inline(never)]
fn fill_encap_checksum(pkt: &mut [u8], t: &Tunnel, ip_len: usize) {
    let e = &mut pkt[ip_len..];
    match t.kind {
        TunnelKind::Gue { .. } => {
            let udp_len = e.len() as u16;
            let pseudo = match (t.src, t.dst) {
                (IpAddr::V4(a), IpAddr::V4(b)) => checksum::pseudo_v4(a, b, proto::UDP, udp_len),
                (IpAddr::V6(a), IpAddr::V6(b)) => {
                    checksum::pseudo_v6(a, b, proto::UDP, u32::from(udp_len))
                }
                _ => 0, // the caller refused mixed families
            };
            let c = udp::mangle_zero(checksum::finish(checksum::add(pseudo, e)));
            e[udp::CHECKSUM_OFFSET..udp::CHECKSUM_OFFSET + 2].copy_from_slice(&c.to_be_bytes());
        }
        TunnelKind::Gre { .. } => {
            let c = checksum::checksum(e);
            e[4..6].copy_from_slice(&c.to_be_bytes());
        }
        TunnelKind::Ipip => {}
    }
}

/// What [`decapsulate`] found.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decapsulated {
    /// The encapsulation. For GUE, `checksum` is [`GueChecksum::Csum`] when the UDP
    /// checksum was present (and verified), else [`GueChecksum::None`]; for GRE, the key
    /// is reported.
    pub kind: TunnelKind,
    /// Outer source address.
    pub outer_src: IpAddr,
    /// Outer destination address.
    pub outer_dst: IpAddr,
    /// Outer TOS / traffic class (for RFC 6040 ECN decapsulation by the embedder).
    pub outer_tos: u8,
    /// Outer TTL / hop limit.
    pub outer_ttl: u8,
    /// Summary of the inner packet, which now starts at byte 0 of the buffer.
    pub inner: PacketSummary,
}

fn gue_unsupported(at: usize, v: u32) -> RewriteError {
    RewriteError::Parse(ParseError::new(
        Layer::Gue,
        at,
        ParseErrorKind::Unsupported(v),
    ))
}

/// Removes a tunnel encapsulation: an outer IPv4 or IPv6 header carrying IPIP (4),
/// IPv6 (41), GRE (47), or UDP to one of `gue_ports` with a GUE header. Afterwards the
/// buffer holds exactly the inner packet (trailing bytes beyond its length are dropped).
///
/// The outer IPv4 header checksum, the GRE checksum (if present) and the UDP checksum
/// (if non-zero; zero is accepted over IPv6 too, as RFC 6936 allows for tunnels and as
/// [`encapsulate`] sends it) are verified, and the inner packet must parse and be of the
/// family the outer header announces.
///
/// # Errors
/// [`RewriteError::NotEncapsulated`] if the packet is not a tunnel packet (another
/// protocol, a UDP port not in `gue_ports`, a GRE or GUE protocol that is not IPv4 or
/// IPv6, a fragmented outer packet); [`RewriteError::Parse`] if the outer or inner packet
/// is malformed, a checksum fails, or a GUE header carries the remote-checksum option,
/// which this crate does not process. On error the buffer is unchanged.
pub fn decapsulate<B: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut PacketBuf<B>,
    gue_ports: &[u16],
) -> Result<Decapsulated, RewriteError> {
    let pkt = buf.packet();
    let s = PacketSummary::parse(pkt)?;
    if s.fragment != crate::wire::Fragment::Unfragmented {
        return Err(RewriteError::NotEncapsulated);
    }
    let l4 = s.l4_offset;
    let end = s.l3_len;
    let (kind, inner_off, inner_family) = match s.protocol {
        proto::IPIP => (TunnelKind::Ipip, l4, Family::V4),
        proto::IPV6 => (TunnelKind::Ipip, l4, Family::V6),
        proto::GRE => {
            let g = GrePacket::new_checked(&pkt[l4..end]).map_err(|e| e.shifted(l4))?;
            if !g.verify_checksum() {
                return Err(
                    ParseError::new(Layer::Gre, l4 + 4, ParseErrorKind::BadChecksum).into(),
                );
            }
            let fam = match g.protocol() {
                EtherType::IPV4 => Family::V4,
                EtherType::IPV6 => Family::V6,
                _ => return Err(RewriteError::NotEncapsulated),
            };
            (
                TunnelKind::Gre {
                    checksum: g.checksum().is_some(),
                    key: g.key(),
                },
                l4 + g.header_len(),
                fam,
            )
        }
        proto::UDP => {
            let u = UdpPacket::new_checked(&pkt[l4..end]).map_err(|e| e.shifted(l4))?;
            if !gue_ports.contains(&u.dst_port()) {
                return Err(RewriteError::NotEncapsulated);
            }
            let udp_len = usize::from(u.len());
            let dgram = &pkt[l4..l4 + udp_len];
            let ck = if u.checksum() == 0 {
                GueChecksum::None
            } else {
                let pseudo = match (s.src, s.dst) {
                    (IpAddr::V4(a), IpAddr::V4(b)) => {
                        checksum::pseudo_v4(a, b, proto::UDP, u.len())
                    }
                    (IpAddr::V6(a), IpAddr::V6(b)) => {
                        checksum::pseudo_v6(a, b, proto::UDP, u32::from(u.len()))
                    }
                    _ => 0,
                };
                if checksum::finish(checksum::add(pseudo, dgram)) != 0 {
                    return Err(ParseError::new(
                        Layer::Udp,
                        l4 + udp::CHECKSUM_OFFSET,
                        ParseErrorKind::BadChecksum,
                    )
                    .into());
                }
                GueChecksum::Csum
            };
            let g_at = l4 + udp::HEADER_LEN;
            let g =
                GuePacket::new_checked(&dgram[udp::HEADER_LEN..]).map_err(|e| e.shifted(g_at))?;
            if g.remcsum().is_some() {
                return Err(gue_unsupported(g_at + 4, gue::PFLAG_REMCSUM));
            }
            let fam = match g.protocol() {
                proto::IPIP => Family::V4,
                proto::IPV6 => Family::V6,
                _ => return Err(RewriteError::NotEncapsulated),
            };
            (
                TunnelKind::Gue {
                    port: u.dst_port(),
                    checksum: ck,
                },
                g_at + g.header_len(),
                fam,
            )
        }
        _ => return Err(RewriteError::NotEncapsulated),
    };
    // The inner packet must lie within the outer payload (UDP: within the datagram).
    let inner_end = match kind {
        TunnelKind::Gue { .. } => l4 + usize::from(crate::wire::be16(pkt, l4 + 4)),
        _ => end,
    };
    let inner =
        PacketSummary::parse(&pkt[inner_off..inner_end]).map_err(|e| e.shifted(inner_off))?;
    if inner.family != inner_family {
        return Err(RewriteError::NotEncapsulated);
    }
    let out = Decapsulated {
        kind,
        outer_src: s.src,
        outer_dst: s.dst,
        outer_tos: s.tos,
        outer_ttl: s.ttl,
        inner,
    };
    buf.advance(inner_off)?;
    buf.truncate(inner.l3_len);
    Ok(out)
}

#[cfg(test)]
mod tests;

/// The lean encapsulation path against the full parse it stands in for.
#[cfg(test)]
mod lean_path_tests {
    use super::*;
    use proptest::prelude::*;

    /// The flow hash as first written: one `Hasher` write per field.
    fn streaming_flow_hash(s: &PacketSummary, key: &[u8; 16]) -> u32 {
        let mut h = SipHasher13::new_with_key(key);
        let addr = |h: &mut SipHasher13, a: IpAddr| match a {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        };
        addr(&mut h, s.src);
        addr(&mut h, s.dst);
        h.write_u8(s.protocol);
        if let Some(p) = s.ports {
            h.write(&p.src.to_be_bytes());
            h.write(&p.dst.to_be_bytes());
        }
        h.finish() as u32
    }

    fn inner_v4(protocol: u8, tos: u8, df: bool, sport: u16, body: &[u8]) -> Vec<u8> {
        let mut l4 = Vec::new();
        match protocol {
            proto::TCP => {
                l4.extend_from_slice(&sport.to_be_bytes());
                l4.extend_from_slice(&[0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 2, 0xff, 0xff]);
                l4.extend_from_slice(&[0; 4]);
            }
            proto::UDP => {
                l4.extend_from_slice(&sport.to_be_bytes());
                l4.extend_from_slice(&[0, 53]);
                l4.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
                l4.extend_from_slice(&[0, 0]);
            }
            _ => {}
        }
        l4.extend_from_slice(body);
        let mut p = vec![0u8; 20];
        ipv4::emit_header(
            &mut p,
            tos,
            (20 + l4.len()) as u16,
            9,
            if df { ipv4::FLAG_DF } else { 0 },
            17,
            protocol,
            [10, 1, 2, 3].into(),
            [10, 4, 5, 6].into(),
        );
        p.extend_from_slice(&l4);
        p
    }

    fn inner_v6(protocol: u8, tos: u8, sport: u16, body: &[u8]) -> Vec<u8> {
        let v4 = inner_v4(protocol, tos, false, sport, body);
        let l4 = &v4[20..];
        let mut p = vec![0u8; 40];
        ipv6::emit_header(
            &mut p,
            tos,
            0xabcde,
            l4.len() as u16,
            protocol,
            5,
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1].into(),
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9].into(),
        );
        p.extend_from_slice(l4);
        p
    }

    fn gue_tunnel(key: [u8; 16]) -> Tunnel {
        let mut t = Tunnel::new(
            TunnelKind::Gue {
                port: 6080,
                checksum: GueChecksum::None,
            },
            IpAddr::from([192, 0, 2, 254]),
            IpAddr::from([10, 0, 0, 2]),
        );
        t.flow_hash_key = key;
        t
    }

    /// Lean and full inner parse give the same facts and hash, or the lean one defers.
    fn same_inner(pkt: &[u8], t: &Tunnel) -> Result<(), TestCaseError> {
        let fast = Inner::parse(pkt, t, None);
        let full = Inner::parse_full(pkt, true, &t.flow_hash_key);
        match (fast, full) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(
                    (a.family, a.len, a.tos, a.ttl, a.dont_frag, a.hash),
                    (b.family, b.len, b.tos, b.ttl, b.dont_frag, b.hash)
                );
                let s = PacketSummary::parse(pkt).unwrap();
                prop_assert_eq!(b.hash, streaming_flow_hash(&s, &t.flow_hash_key));
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "lean {:?} vs full {:?}", a.is_ok(), b.is_ok()),
        }
        Ok(())
    }

    #[test]
    fn branch_free_ecn_equals_rfc6040_rule() {
        for x in 0..=255u8 {
            let want = if x & 3 == 3 { (x & !3) | 2 } else { x };
            assert_eq!(ecn_encapsulate(x), want, "{x:#04x}");
        }
    }

    #[test]
    fn one_write_hash_equals_field_by_field_hash() {
        let key = *b"0123456789abcdef";
        for pkt in [
            inner_v4(proto::TCP, 0, true, 40000, b"x"),
            inner_v4(proto::UDP, 0, true, 40000, b"xy"),
            inner_v4(proto::GRE, 0, true, 0, b"xyz"),
            inner_v6(proto::TCP, 0, 1, b""),
            inner_v6(proto::UDP, 0, 2, b"abc"),
            inner_v6(proto::GRE, 0, 0, b"abc"),
        ] {
            let s = PacketSummary::parse(&pkt).unwrap();
            assert_eq!(summary_flow_hash(&s, &key), streaming_flow_hash(&s, &key));
            same_inner(&pkt, &gue_tunnel(key)).unwrap();
        }
    }

    proptest! {
        #[test]
        fn lean_inner_parse_equals_full(
            v6 in any::<bool>(),
            protocol in prop_oneof![Just(proto::TCP), Just(proto::UDP), Just(proto::ICMP), any::<u8>()],
            tos in any::<u8>(),
            df in any::<bool>(),
            sport in any::<u16>(),
            body in proptest::collection::vec(any::<u8>(), 0..24),
            key in any::<[u8; 16]>(),
            edit in proptest::option::of((any::<usize>(), any::<u8>())),
            pad in 0usize..6,
        ) {
            let mut p = if v6 {
                inner_v6(protocol, tos, sport, &body)
            } else {
                inner_v4(protocol, tos, df, sport, &body)
            };
            p.resize(p.len() + pad, 0);
            let t = gue_tunnel(key);
            same_inner(&p, &t)?;
            if let Some((at, x)) = edit {
                let n = p.len();
                p[at % n] ^= x;
                same_inner(&p, &t)?;
            }
        }

        #[test]
        fn ipv4_header_from_words_verifies(
            tos in any::<u8>(), len in any::<u16>(), id in any::<u16>(), fl in any::<u16>(),
            ttl in any::<u8>(), pr in any::<u8>(), s in any::<u32>(), d in any::<u32>(),
        ) {
            let h = ipv4::header(tos, len, id, fl, ttl, pr, s.into(), d.into());
            let mut z = h;
            z[10..12].fill(0);
            prop_assert_eq!(u16::from_be_bytes([h[10], h[11]]), checksum::checksum(&z));
            prop_assert_eq!((h[0], h[1], h[8], h[9]), (0x45, tos, ttl, pr));
            prop_assert_eq!(&h[12..16], &s.to_be_bytes());
            prop_assert_eq!(&h[16..20], &d.to_be_bytes());
        }
    }
}
