//! Property tests of the rewrites against independent oracles: packets are built by hand
//! here (no `lvs` code), checksums are verified by full recomputation (tests/common) and by
//! etherparse, and NAT output is compared byte for byte with the packet the client or the
//! VIP would have sent directly.

mod common;

use common::{
    VerifyOpts, hex, inet_checksum, pseudo_sum, sctp_checksum, transport_checksum, verify_packet,
};
use etherparse::{NetHeaders, PacketHeaders, TransportHeader};
use lvs::PacketBuf;
use lvs::RewriteError;
use lvs::forward::tunnel::{self, GueChecksum, Tunnel, TunnelKind};
use lvs::forward::{nat, ttl};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------------------------------
// Packet model and hand-written builder.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    Udp,
    /// IPv4 UDP without checksum (zero).
    UdpZero,
    Sctp,
    Echo,
    /// ICMP error quoting a TCP packet.
    ErrTcp,
    /// ICMP error quoting a UDP packet.
    ErrUdp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frag {
    None,
    /// Offset 0, more fragments: carries the transport header; `keep` bytes of the datagram.
    First,
    /// Offset in 8-byte units, no transport header.
    NonFirst(u16),
}

/// Everything about a packet except its endpoints.
#[derive(Debug, Clone)]
struct Spec {
    v6: bool,
    kind: Kind,
    frag: Frag,
    tos: u8,
    ttl: u8,
    ident: u32,
    dont_frag: bool,
    /// IPv4 options (multiple of 4 bytes, at most 40).
    v4_opts: Vec<u8>,
    /// IPv6 extension headers in etherparse's accepted order: (next-header value, units).
    v6_ext: Vec<(u8, u8)>,
    tcp_seq: u32,
    tcp_flags: u8,
    icmp_type_idx: u8,
    /// Quoted transport bytes beyond the 8 a quote must hold (0 = cut after 8 bytes).
    quote_extra: usize,
    payload: Vec<u8>,
}

/// A packet endpoint pair.
#[derive(Debug, Clone, Copy)]
struct Ends {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Transport bytes (header + payload) of a non-error packet, checksum filled over `e`.
fn transport(spec: &Spec, kind: Kind, e: Ends, payload: &[u8]) -> (u8, Vec<u8>) {
    let (s, d) = (octets(e.src), octets(e.dst));
    match kind {
        Kind::Tcp => {
            let mut t = vec![0u8; 20];
            put16(&mut t, 0, e.sport);
            put16(&mut t, 2, e.dport);
            t[4..8].copy_from_slice(&spec.tcp_seq.to_be_bytes());
            t[12] = 0x50;
            t[13] = spec.tcp_flags;
            put16(&mut t, 14, 65535);
            t.extend_from_slice(payload);
            let c = transport_checksum(&s, &d, 6, &t, 16);
            put16(&mut t, 16, c);
            (6, t)
        }
        Kind::Udp | Kind::UdpZero => {
            let mut t = vec![0u8; 8];
            put16(&mut t, 0, e.sport);
            put16(&mut t, 2, e.dport);
            put16(&mut t, 4, (8 + payload.len()) as u16);
            t.extend_from_slice(payload);
            if kind == Kind::Udp {
                let c = transport_checksum(&s, &d, 17, &t, 6);
                put16(&mut t, 6, if c == 0 { 0xffff } else { c });
            }
            (17, t)
        }
        Kind::Sctp => {
            let mut t = vec![0u8; 12];
            put16(&mut t, 0, e.sport);
            put16(&mut t, 2, e.dport);
            t[4..8].copy_from_slice(&spec.tcp_seq.to_be_bytes());
            t.extend_from_slice(payload);
            let c = sctp_checksum(&t);
            t[8..12].copy_from_slice(&c.to_le_bytes());
            (132, t)
        }
        Kind::Echo => {
            let mut t = vec![0u8; 8];
            t[0] = if spec.v6 { 128 } else { 8 };
            put16(&mut t, 4, e.sport);
            put16(&mut t, 6, spec.tcp_seq as u16);
            t.extend_from_slice(payload);
            let c = if spec.v6 {
                transport_checksum(&s, &d, 58, &t, 2)
            } else {
                inet_checksum(&t)
            };
            put16(&mut t, 2, c);
            if spec.v6 { (58, t) } else { (1, t) }
        }
        Kind::ErrTcp | Kind::ErrUdp => unreachable!("errors are built by error_packet"),
    }
}

/// Random but well-formed IPv4 options filling `len` bytes, the way a receiving Linux
/// accepts them: NOPs, options with a length of at least 2 inside the header (security,
/// stream id, router alert, record route with a valid pointer), and an END after which
/// anything goes.
fn valid_v4_options(len: usize, rnd: &mut impl FnMut() -> u8) -> Vec<u8> {
    let mut o = Vec::with_capacity(len);
    while o.len() < len {
        let left = len - o.len();
        match rnd() % 5 {
            0 => o.push(1),
            1 => {
                o.push(0);
                while o.len() < len {
                    o.push(rnd());
                }
            }
            2 if left >= 3 => {
                let l = 3 + usize::from(rnd()) % (left - 2);
                o.extend_from_slice(&[7, l as u8, 4]);
                o.extend((3..l).map(|_| rnd()));
            }
            _ if left >= 2 => {
                let ty = [0x82, 0x88, 0x94][usize::from(rnd()) % 3];
                let l = 2 + usize::from(rnd()) % (left - 1);
                o.extend_from_slice(&[ty, l as u8]);
                o.extend((2..l).map(|_| rnd()));
            }
            _ => o.push(1),
        }
    }
    o
}

/// Wraps transport bytes in an IP header (with options / extension headers / fragment
/// state from `spec`). For a first fragment only the first half of `t` (at least the
/// transport header) is kept; for a non-first fragment `t` is replaced by the payload.
fn ip_packet(spec: &Spec, e: Ends, proto: u8, t: &[u8], frag: Frag) -> Vec<u8> {
    let hdr_len = match proto {
        6 => 20,
        132 => 12,
        _ => 8,
    };
    let data: Vec<u8> = match frag {
        Frag::None => t.to_vec(),
        Frag::First => {
            let keep = (hdr_len + (t.len() - hdr_len) / 2) & !7;
            t[..keep.max(hdr_len)].to_vec()
        }
        Frag::NonFirst(_) => spec.payload.clone(),
    };
    let (foff, more) = match frag {
        Frag::None => (0u16, false),
        Frag::First => (0, true),
        Frag::NonFirst(o) => (o, false),
    };
    if spec.v6 {
        let mut ext = Vec::new();
        let mut nexts: Vec<u8> = spec.v6_ext.iter().map(|x| x.0).collect();
        let frag_at = if frag == Frag::None {
            None
        } else {
            // The fragment header goes before a trailing destination-options header.
            let at = if nexts.last() == Some(&60) && nexts.len() > 1 {
                nexts.len() - 1
            } else {
                nexts.len()
            };
            nexts.insert(at, 44);
            Some(at)
        };
        let mut units: Vec<u8> = spec.v6_ext.iter().map(|x| x.1).collect();
        if let Some(at) = frag_at {
            units.insert(at, 0);
            // Headers after the fragment header belong to the fragmentable part: a
            // non-first fragment cannot show them.
            if matches!(frag, Frag::NonFirst(_)) {
                nexts.truncate(at + 1);
                units.truncate(at + 1);
            }
        }
        for (i, &h) in nexts.iter().enumerate() {
            let next = nexts.get(i + 1).copied().unwrap_or(proto);
            let len = (usize::from(units[i]) + 1) * 8;
            let mut x = vec![0u8; len];
            x[0] = next;
            match h {
                44 => {
                    put16(&mut x, 2, (foff << 3) | u16::from(more));
                    x[4..8].copy_from_slice(&spec.ident.to_be_bytes());
                }
                43 => {
                    x[1] = units[i];
                    x[2] = 4; // routing type (segment routing), segments left 0
                    x[3] = 0;
                }
                _ => {
                    x[1] = units[i];
                    // PadN covering the rest of the header.
                    x[2] = 1;
                    x[3] = (len - 4) as u8;
                }
            }
            ext.extend_from_slice(&x);
        }
        let first = nexts.first().copied().unwrap_or(proto);
        let mut p = vec![0u8; 40];
        p[0] = 0x60 | (spec.tos >> 4);
        p[1] = (spec.tos << 4) | 0x0a;
        p[2] = 0xbc;
        p[3] = 0xde;
        put16(&mut p, 4, (ext.len() + data.len()) as u16);
        p[6] = first;
        p[7] = spec.ttl;
        p[8..24].copy_from_slice(&octets(e.src));
        p[24..40].copy_from_slice(&octets(e.dst));
        p.extend_from_slice(&ext);
        p.extend_from_slice(&data);
        p
    } else {
        let hl = 20 + spec.v4_opts.len();
        let mut p = vec![0u8; hl];
        p[0] = 0x40 | (hl / 4) as u8;
        p[1] = spec.tos;
        put16(&mut p, 2, (hl + data.len()) as u16);
        put16(&mut p, 4, spec.ident as u16);
        let flags = (u16::from(spec.dont_frag && frag == Frag::None) << 14)
            | (u16::from(more) << 13)
            | foff;
        put16(&mut p, 6, flags);
        p[8] = spec.ttl;
        p[9] = proto;
        p[12..16].copy_from_slice(&octets(e.src));
        p[16..20].copy_from_slice(&octets(e.dst));
        p[20..hl].copy_from_slice(&spec.v4_opts);
        let c = inet_checksum(&p[..hl]);
        put16(&mut p, 10, c);
        p.extend_from_slice(&data);
        p
    }
}

/// A whole (possibly fragmented) non-error packet.
fn packet(spec: &Spec, e: Ends) -> Vec<u8> {
    let (proto, t) = transport(spec, spec.kind, e, &spec.payload);
    ip_packet(spec, e, proto, &t, spec.frag)
}

/// The packet an ICMP error quotes: `spec`'s transport (TCP or UDP) between `q`, cut to
/// its IP header + 8 + `quote_extra` transport bytes.
fn quote(spec: &Spec, q: Ends) -> Vec<u8> {
    let kind = if spec.kind == Kind::ErrTcp {
        Kind::Tcp
    } else {
        Kind::Udp
    };
    let mut inner = spec.clone();
    inner.kind = kind;
    let full = packet(
        &Spec {
            frag: Frag::None,
            ..inner
        },
        q,
    );
    let (_, _, _, l4, _, _) = common::split_ip(&full).unwrap();
    let hl = full.len() - l4.len();
    full[..(hl + 8 + spec.quote_extra).min(full.len())].to_vec()
}

/// An ICMP error from `outer` quoting `quoted` (IP header first).
fn error_packet(spec: &Spec, outer: Ends, quoted: &[u8]) -> Vec<u8> {
    let (ty, code) = if spec.v6 {
        [(1, 4), (2, 0), (3, 0), (4, 0)][usize::from(spec.icmp_type_idx % 4)]
    } else {
        [(3, 3), (3, 4), (11, 0), (12, 0), (4, 0)][usize::from(spec.icmp_type_idx % 5)]
    };
    // Rest of header: the MTU where the type has one, zero (unused) otherwise.
    let mut t = vec![ty, code, 0, 0, 0, 0, 0, 0];
    if (!spec.v6 && ty == 3 && code == 4) || (spec.v6 && ty == 2) {
        put16(&mut t, 6, 1280);
    }
    t.extend_from_slice(quoted);
    let c = if spec.v6 {
        transport_checksum(&octets(outer.src), &octets(outer.dst), 58, &t, 2)
    } else {
        inet_checksum(&t)
    };
    put16(&mut t, 2, c);
    ip_packet(spec, outer, if spec.v6 { 58 } else { 1 }, &t, Frag::None)
}

/// Offset of the quoted transport checksum inside a quote, if the quote holds it.
/// Range of the quoted transport checksum inside a quote: the bytes of it the quote holds
/// (both, one, or none when the quote ends before it).
fn quoted_l4_csum(spec: &Spec, quote: &[u8]) -> std::ops::Range<usize> {
    let (_, _, _, l4, _, _) = common::split_ip_header_only(quote).expect("quote parses");
    let hl = quote.len() - l4.len();
    let at = hl + if spec.kind == Kind::ErrTcp { 16 } else { 6 };
    at.min(quote.len())..(at + 2).min(quote.len())
}

// ---------------------------------------------------------------------------------------
// Strategies.

fn kind_strategy() -> impl Strategy<Value = Kind> {
    prop_oneof![
        3 => Just(Kind::Tcp),
        3 => Just(Kind::Udp),
        1 => Just(Kind::UdpZero),
        2 => Just(Kind::Sctp),
        2 => Just(Kind::Echo),
        2 => Just(Kind::ErrTcp),
        2 => Just(Kind::ErrUdp),
    ]
}

prop_compose! {
    fn v6_ext_strategy()(hop in proptest::option::of(0u8..3), d1 in proptest::option::of(0u8..3),
                         rt in proptest::option::of(0u8..3), d2 in proptest::option::of(0u8..3)) -> Vec<(u8, u8)> {
        let mut v = Vec::new();
        if let Some(u) = hop { v.push((0, u)); }
        if let Some(u) = d1 { v.push((60, u)); }
        if let Some(u) = rt { v.push((43, u)); }
        if let (Some(u), false) = (d2, v.is_empty()) { v.push((60, u)); }
        v
    }
}

prop_compose! {
    fn spec_strategy()(v6 in any::<bool>(), kind in kind_strategy(),
                       frag_sel in 0u8..6, frag_off in 1u16..8000,
                       tos in any::<u8>(), ttl in 2u8..=255, ident in any::<u32>(), dont_frag in any::<bool>(),
                       opt_words in 0usize..=10, opt_seed in any::<u64>(),
                       v6_ext in v6_ext_strategy(),
                       tcp_seq in any::<u32>(), tcp_flags in any::<u8>(), icmp_type_idx in any::<u8>(),
                       quote_extra in prop_oneof![Just(0usize), 1usize..64, Just(4000usize)],
                       payload in proptest::collection::vec(any::<u8>(), 0..=1500)) -> Spec {
        let error = matches!(kind, Kind::ErrTcp | Kind::ErrUdp);
        let kind = if kind == Kind::UdpZero && v6 { Kind::Udp } else { kind };
        // Fragments for data packets only (1 in 3): first or non-first.
        let frag = match frag_sel {
            _ if error => Frag::None,
            0 => Frag::First,
            1 => Frag::NonFirst(frag_off),
            _ => Frag::None,
        };
        let mut x = opt_seed;
        let mut rnd = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 56) as u8
        };
        let v4_opts = valid_v4_options(opt_words * 4, &mut rnd);
        Spec { v6, kind, frag, tos, ttl, ident, dont_frag, v4_opts, v6_ext, tcp_seq, tcp_flags, icmp_type_idx, quote_extra, payload }
    }
}

fn addr_strategy(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        any::<u128>()
            .prop_map(|a| IpAddr::V6(Ipv6Addr::from(a | (0x2001u128 << 112))))
            .boxed()
    } else {
        any::<u32>()
            .prop_map(|a| IpAddr::V4(Ipv4Addr::from(a | 0x0100_0000)))
            .boxed()
    }
}

/// A spec plus client, VIP, RIP, router addresses and ports.
#[derive(Debug, Clone)]
struct Case {
    spec: Spec,
    client: IpAddr,
    vip: IpAddr,
    rip: IpAddr,
    router: IpAddr,
    cport: u16,
    vport: u16,
    rport: u16,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    spec_strategy().prop_flat_map(|spec| {
        let v6 = spec.v6;
        (
            Just(spec),
            addr_strategy(v6),
            addr_strategy(v6),
            addr_strategy(v6),
            addr_strategy(v6),
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
        )
            .prop_map(
                |(spec, client, vip, rip, router, cport, vport, rport)| Case {
                    spec,
                    client,
                    vip,
                    rip,
                    router,
                    cport,
                    vport,
                    rport,
                },
            )
    })
}

// ---------------------------------------------------------------------------------------
// The etherparse oracle.

/// Checks every checksum etherparse can recompute. Fragments: the IP header only.
fn etherparse_verify(p: &[u8]) -> Result<(), String> {
    let h = PacketHeaders::from_ip_slice(p)
        .map_err(|e| format!("etherparse refuses the packet: {e:?}"))?;
    let payload = h.payload.slice();
    match (&h.net, &h.transport) {
        (Some(NetHeaders::Ipv4(ip, _)), t) => {
            if ip.header_checksum != ip.calc_header_checksum() {
                return Err(format!(
                    "etherparse: IPv4 header checksum {:#06x}, wants {:#06x}",
                    ip.header_checksum,
                    ip.calc_header_checksum()
                ));
            }
            match t {
                Some(TransportHeader::Tcp(tcp)) => {
                    let want = tcp.calc_checksum_ipv4(ip, payload).unwrap();
                    if want != tcp.checksum {
                        return Err(format!(
                            "etherparse: TCP checksum {:#06x}, wants {want:#06x}",
                            tcp.checksum
                        ));
                    }
                }
                Some(TransportHeader::Udp(udp)) if udp.checksum != 0 => {
                    let want = udp.calc_checksum_ipv4(ip, payload).unwrap();
                    if want != udp.checksum {
                        return Err(format!(
                            "etherparse: UDP checksum {:#06x}, wants {want:#06x}",
                            udp.checksum
                        ));
                    }
                }
                Some(TransportHeader::Icmpv4(icmp)) => {
                    let want = icmp.icmp_type.calc_checksum(payload);
                    if want != icmp.checksum {
                        return Err(format!(
                            "etherparse: ICMP checksum {:#06x}, wants {want:#06x}",
                            icmp.checksum
                        ));
                    }
                }
                _ => {}
            }
        }
        (Some(NetHeaders::Ipv6(ip, _)), t) => match t {
            Some(TransportHeader::Tcp(tcp)) => {
                let want = tcp.calc_checksum_ipv6(ip, payload).unwrap();
                if want != tcp.checksum {
                    return Err(format!(
                        "etherparse: TCP checksum {:#06x}, wants {want:#06x}",
                        tcp.checksum
                    ));
                }
            }
            Some(TransportHeader::Udp(udp)) => {
                let want = udp.calc_checksum_ipv6(ip, payload).unwrap();
                if want != udp.checksum {
                    return Err(format!(
                        "etherparse: UDP checksum {:#06x}, wants {want:#06x}",
                        udp.checksum
                    ));
                }
            }
            Some(TransportHeader::Icmpv6(icmp)) => {
                let want = icmp
                    .icmp_type
                    .calc_checksum(ip.source, ip.destination, payload)
                    .unwrap();
                if want != icmp.checksum {
                    return Err(format!(
                        "etherparse: ICMPv6 checksum {:#06x}, wants {want:#06x}",
                        icmp.checksum
                    ));
                }
            }
            _ => {}
        },
        _ => return Err("etherparse: no IP layer".into()),
    }
    Ok(())
}

/// Both oracles.
fn all_checksums_verify(p: &[u8]) -> Result<(), String> {
    verify_packet(p, VerifyOpts::default())?;
    etherparse_verify(p)
}

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn is_error(k: Kind) -> bool {
    matches!(k, Kind::ErrTcp | Kind::ErrUdp)
}

/// Whether NAT must refuse this packet (the error it must give is checked by the caller).
fn nat_refuses(spec: &Spec, port_changes: bool) -> bool {
    spec.kind == Kind::Sctp && spec.frag == Frag::First && port_changes
}

// ---------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(cfg(512))]

    /// The generator itself: every packet it builds verifies in both oracles and parses.
    #[test]
    fn generated_packets_are_valid(c in case_strategy()) {
        let e = Ends { src: c.client, dst: c.vip, sport: c.cport, dport: c.vport };
        let p = if is_error(c.spec.kind) {
            error_packet(&c.spec, Ends { src: c.router, dst: c.vip, sport: 0, dport: 0 },
                         &quote(&c.spec, Ends { src: c.vip, dst: c.client, sport: c.vport, dport: c.cport }))
        } else {
            packet(&c.spec, e)
        };
        prop_assert!(all_checksums_verify(&p).is_ok(), "generator bug: {:?} {}", all_checksums_verify(&p), hex(&p));
        let s = lvs::PacketSummary::parse(&p);
        prop_assert!(s.is_ok(), "PacketSummary refuses a valid packet: {:?}\n{}", s, hex(&p));
    }

    /// Inbound NAT turns client -> VIP:vport into exactly the packet the client would have
    /// sent to RIP:rport; outbound NAT turns the real server's reply RIP:rport -> client
    /// into exactly the packet the VIP would have sent. Every checksum verifies in both
    /// oracles afterwards; refusals leave the buffer unchanged.
    #[test]
    fn nat_round_trip_is_what_the_client_and_vip_would_send(c in case_strategy()) {
        let spec = &c.spec;
        if is_error(spec.kind) {
            // Client-side error quoting our reply VIP:vport -> client, sent to the VIP.
            let q_vip = quote(spec, Ends { src: c.vip, dst: c.client, sport: c.vport, dport: c.cport });
            let mut q_rip = quote(spec, Ends { src: c.rip, dst: c.client, sport: c.rport, dport: c.cport });
            // IPVS leaves the quoted transport checksum as it was (NatOptions::default()).
            let r = quoted_l4_csum(spec, &q_vip);
            q_rip[r.clone()].copy_from_slice(&q_vip[r]);
            let mut pkt = error_packet(spec, Ends { src: c.router, dst: c.vip, sport: 0, dport: 0 }, &q_vip);
            let want = error_packet(spec, Ends { src: c.router, dst: c.rip, sport: 0, dport: 0 }, &q_rip);
            let r = nat::inbound(&mut pkt, c.rip, c.rport);
            prop_assert!(r.is_ok(), "inbound refused an ICMP error: {:?}\n{}", r, hex(&pkt));
            prop_assert!(pkt == want, "inbound ICMP error differs\n got  {}\n want {}", hex(&pkt), hex(&want));
            prop_assert!(all_checksums_verify(&pkt).is_ok(), "{:?}", all_checksums_verify(&pkt));

            // Server-side error quoting the client's request client -> RIP:rport, from the RS.
            let q_rip = quote(spec, Ends { src: c.client, dst: c.rip, sport: c.cport, dport: c.rport });
            let mut q_vip = quote(spec, Ends { src: c.client, dst: c.vip, sport: c.cport, dport: c.vport });
            let r = quoted_l4_csum(spec, &q_rip);
            q_vip[r.clone()].copy_from_slice(&q_rip[r]);
            let mut pkt = error_packet(spec, Ends { src: c.rip, dst: c.client, sport: 0, dport: 0 }, &q_rip);
            let want = error_packet(spec, Ends { src: c.vip, dst: c.client, sport: 0, dport: 0 }, &q_vip);
            let r = nat::outbound(&mut pkt, c.vip, c.vport);
            prop_assert!(r.is_ok(), "outbound refused an ICMP error: {:?}\n{}", r, hex(&pkt));
            prop_assert!(pkt == want, "outbound ICMP error differs\n got  {}\n want {}", hex(&pkt), hex(&want));
            prop_assert!(all_checksums_verify(&pkt).is_ok(), "{:?}", all_checksums_verify(&pkt));
            return Ok(());
        }
        // Echo has no ports: address only.
        let (vport, rport) = if spec.kind == Kind::Echo { (c.cport, c.cport) } else { (c.vport, c.rport) };
        let port_changes = vport != rport;

        let mut pkt = packet(spec, Ends { src: c.client, dst: c.vip, sport: c.cport, dport: vport });
        let orig = pkt.clone();
        let want = packet(spec, Ends { src: c.client, dst: c.rip, sport: c.cport, dport: rport });
        let r = nat::inbound(&mut pkt, c.rip, c.rport);
        if nat_refuses(spec, port_changes) {
            prop_assert_eq!(r, Err(RewriteError::SctpFragment));
            prop_assert!(pkt == orig, "refused rewrite changed the buffer");
            return Ok(());
        }
        prop_assert!(r.is_ok(), "inbound refused: {:?}\n{}", r, hex(&orig));
        prop_assert!(pkt == want, "inbound differs from the packet sent to the RS directly\n in   {}\n got  {}\n want {}", hex(&orig), hex(&pkt), hex(&want));
        prop_assert!(all_checksums_verify(&pkt).is_ok(), "{:?}\n{}", all_checksums_verify(&pkt), hex(&pkt));

        let mut reply = packet(spec, Ends { src: c.rip, dst: c.client, sport: rport, dport: c.cport });
        let want = packet(spec, Ends { src: c.vip, dst: c.client, sport: vport, dport: c.cport });
        let orig = reply.clone();
        let r = nat::outbound(&mut reply, c.vip, c.vport);
        prop_assert!(r.is_ok(), "outbound refused: {:?}\n{}", r, hex(&orig));
        prop_assert!(reply == want, "outbound differs from the VIP's own reply\n in   {}\n got  {}\n want {}", hex(&orig), hex(&reply), hex(&want));
        prop_assert!(all_checksums_verify(&reply).is_ok(), "{:?}\n{}", all_checksums_verify(&reply), hex(&reply));
    }

    /// IPv4 UDP without checksum stays without checksum; with a checksum, the rewrite
    /// never writes zero: a computed zero is stored as 0xFFFF. The payload's first word is
    /// chosen so that the rewritten packet's checksum computes to exactly zero.
    #[test]
    fn udp_zero_checksum_rules(c in case_strategy(), zero in any::<bool>()) {
        let mut spec = c.spec.clone();
        spec.v6 = matches!(c.client, IpAddr::V6(_));
        spec.kind = if zero && !spec.v6 { Kind::UdpZero } else { Kind::Udp };
        spec.frag = Frag::None;
        if spec.payload.len() < 2 {
            spec.payload.resize(2, 0);
        }
        let to_rs = Ends { src: c.client, dst: c.rip, sport: c.cport, dport: c.rport };
        // Choose payload[0..2] so the UDP checksum of the packet to the RS computes to 0.
        spec.payload[0] = 0;
        spec.payload[1] = 0;
        let (_, t) = transport(&spec, Kind::UdpZero, to_rs, &spec.payload);
        let sum = !transport_checksum(&octets(to_rs.src), &octets(to_rs.dst), 17, &t, 6);
        let adjust = 0xffff - sum;
        spec.payload[0..2].copy_from_slice(&adjust.to_be_bytes());
        let mut pkt = packet(&spec, Ends { src: c.client, dst: c.vip, sport: c.cport, dport: c.vport });
        let r = nat::inbound(&mut pkt, c.rip, c.rport);
        prop_assert!(r.is_ok(), "{:?}", r);
        let (_, _, _, l4, _, _) = common::split_ip(&pkt).unwrap();
        let stored = u16::from_be_bytes([l4[6], l4[7]]);
        if spec.kind == Kind::UdpZero {
            prop_assert_eq!(stored, 0, "IPv4 UDP zero checksum must stay zero");
        } else {
            let (_, t) = transport(&spec, Kind::UdpZero, to_rs, &spec.payload);
            prop_assert_eq!(transport_checksum(&octets(to_rs.src), &octets(to_rs.dst), 17, &t, 6), 0, "test setup: computed checksum is zero");
            prop_assert_eq!(stored, 0xffff, "a computed zero UDP checksum must be written as 0xFFFF");
        }
        prop_assert!(all_checksums_verify(&pkt).is_ok(), "{:?}", all_checksums_verify(&pkt));
    }

    /// Malformed input is refused and the buffer is left byte-for-byte unchanged; random
    /// corruption either is refused without a change or rewritten without a panic.
    #[test]
    fn refused_rewrites_leave_the_buffer_unchanged(c in case_strategy(), how in 0u8..7, at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        let spec = &c.spec;
        let mut pkt = if is_error(spec.kind) {
            error_packet(spec, Ends { src: c.router, dst: c.vip, sport: 0, dport: 0 },
                         &quote(spec, Ends { src: c.vip, dst: c.client, sport: c.vport, dport: c.cport }))
        } else {
            packet(spec, Ends { src: c.client, dst: c.vip, sport: c.cport, dport: c.vport })
        };
        let must_fail = match how {
            // Random byte corruption: may or may not be refused.
            0 => { let i = at % pkt.len(); pkt[i] ^= byte | 1; false }
            // Truncation inside the IP packet.
            1 => { let n = cut % pkt.len(); pkt.truncate(n); true }
            // IPv4 IHL below 5 (IPv6: version nibble garbage).
            2 => { if spec.v6 { pkt[0] = 0x50 | (pkt[0] & 0xf); } else { pkt[0] = 0x40 | (byte % 5); } true }
            // IPv6 payload length beyond the buffer / IPv4 total length beyond the buffer.
            3 => { let l = pkt.len() as u16 + 1 + u16::from(byte); if spec.v6 { put16(&mut pkt, 4, l - 40); } else { put16(&mut pkt, 2, l); } true }
            // An extension chain longer than MAX_IPV6_EXTENSIONS (IPv4: bad header checksum).
            4 => {
                if spec.v6 {
                    let n = lvs::wire::MAX_IPV6_EXTENSIONS + 1 + usize::from(byte % 4);
                    let mut chain = Vec::new();
                    for i in 0..n {
                        let next = if i + 1 == n { pkt[6] } else { 60 };
                        chain.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
                    }
                    let plen = u16::from_be_bytes([pkt[4], pkt[5]]) + chain.len() as u16;
                    put16(&mut pkt, 4, plen);
                    pkt[6] = 60;
                    pkt.splice(40..40, chain);
                } else {
                    pkt[10] ^= 0x5a;
                }
                true
            }
            // IPv4 total length below the header / IPv6 zero payload length with a next header.
            5 => { if spec.v6 { put16(&mut pkt, 4, 0); } else { put16(&mut pkt, 2, u16::from(byte % 20)); } true }
            // Family mismatch.
            _ => false,
        };
        let orig = pkt.clone();
        let rip = if how == 6 {
            if spec.v6 { IpAddr::V4(Ipv4Addr::new(10, 1, 0, 2)) } else { IpAddr::V6("fd00::2".parse().unwrap()) }
        } else {
            c.rip
        };
        let r = nat::inbound(&mut pkt, rip, c.rport);
        if must_fail || how == 6 {
            prop_assert!(r.is_err(), "inbound accepted a malformed packet (mutation {})\n{}", how, hex(&orig));
        }
        if r.is_err() {
            prop_assert!(pkt == orig, "inbound failed with {:?} but changed the buffer\n before {}\n after  {}", r, hex(&orig), hex(&pkt));
        }
        let mut pkt = orig.clone();
        let r = nat::outbound(&mut pkt, rip, c.vport);
        if must_fail || how == 6 {
            prop_assert!(r.is_err(), "outbound accepted a malformed packet (mutation {})\n{}", how, hex(&orig));
        }
        if r.is_err() {
            prop_assert!(pkt == orig, "outbound failed with {:?} but changed the buffer", r);
        }
    }
}

/// IPv6 UDP with a zero checksum is refused (RFC 8200 8.1), buffer unchanged.
#[test]
fn ipv6_udp_zero_checksum_is_refused() {
    let spec = Spec {
        v6: true,
        kind: Kind::UdpZero,
        frag: Frag::None,
        tos: 0,
        ttl: 64,
        ident: 0,
        dont_frag: false,
        v4_opts: vec![],
        v6_ext: vec![],
        tcp_seq: 0,
        tcp_flags: 0,
        icmp_type_idx: 0,
        quote_extra: 0,
        payload: b"hello".to_vec(),
    };
    let e = Ends {
        src: "2001:db8::7".parse().unwrap(),
        dst: "2001:db8::1".parse().unwrap(),
        sport: 5353,
        dport: 53,
    };
    let mut p = packet(&spec, e);
    let orig = p.clone();
    let r = nat::inbound(&mut p, "fd00::2".parse().unwrap(), 8080);
    assert!(
        matches!(
            r,
            Err(RewriteError::Parse(lvs::ParseError {
                kind: lvs::ParseErrorKind::ZeroUdpChecksumV6,
                ..
            }))
        ),
        "zero IPv6 UDP checksum must be refused, got {r:?}"
    );
    assert_eq!(p, orig, "refusal must leave the buffer unchanged");
    let _ = pseudo_sum;
}

// ---------------------------------------------------------------------------------------
// Tunnels.

const GUE_PORT: u16 = 6080;

fn tunnel_kind_strategy() -> impl Strategy<Value = TunnelKind> {
    prop_oneof![
        Just(TunnelKind::Ipip),
        prop_oneof![
            Just(GueChecksum::None),
            Just(GueChecksum::Csum),
            Just(GueChecksum::RemCsum)
        ]
        .prop_map(|checksum| TunnelKind::Gue {
            port: GUE_PORT,
            checksum
        }),
        (any::<bool>(), proptest::option::of(any::<u32>()))
            .prop_map(|(checksum, key)| TunnelKind::Gre { checksum, key }),
    ]
}

/// Any valid packet of the generator, as the client would send it to the VIP.
fn any_packet(c: &Case) -> Vec<u8> {
    if is_error(c.spec.kind) {
        error_packet(
            &c.spec,
            Ends {
                src: c.router,
                dst: c.vip,
                sport: 0,
                dport: 0,
            },
            &quote(
                &c.spec,
                Ends {
                    src: c.vip,
                    dst: c.client,
                    sport: c.vport,
                    dport: c.cport,
                },
            ),
        )
    } else {
        packet(
            &c.spec,
            Ends {
                src: c.client,
                dst: c.vip,
                sport: c.cport,
                dport: c.vport,
            },
        )
    }
}

proptest! {
    #![proptest_config(cfg(384))]

    /// Encapsulation then decapsulation is the identity for every tunnel kind and every
    /// inner/outer family mix; the outer packet's checksums verify in both oracles, and
    /// the inner packet sits unchanged behind the outer headers. With one byte too little
    /// headroom, encapsulation is refused and nothing changes.
    #[test]
    fn encapsulate_then_decapsulate_is_identity(c in case_strategy(), kind in tunnel_kind_strategy(),
                                                outer_v6 in any::<bool>(), ip_id in any::<u16>(),
                                                extra_headroom in 0usize..64, copy_df in any::<bool>()) {
        let inner = any_packet(&c);
        let (src, dst): (IpAddr, IpAddr) = if outer_v6 {
            ("2001:db8:ffff::1".parse().unwrap(), "fd00::2".parse().unwrap())
        } else {
            (Ipv4Addr::new(192, 0, 2, 254).into(), Ipv4Addr::new(10, 1, 0, 2).into())
        };
        let mut t = Tunnel::new(kind, src, dst);
        t.copy_df = copy_df;
        let overhead = t.overhead();

        // Too little headroom: refused, unchanged.
        let mut short = PacketBuf::with_headroom(overhead - 1, &inner);
        let before = short.clone();
        let r = tunnel::encapsulate(&mut short, &t, ip_id);
        prop_assert!(matches!(r, Err(RewriteError::InsufficientHeadroom { .. })), "expected InsufficientHeadroom, got {:?}", r);
        prop_assert!(short == before, "refused encapsulation changed the buffer");

        let mut buf = PacketBuf::with_headroom(overhead + extra_headroom, &inner);
        let r = tunnel::encapsulate(&mut buf, &t, ip_id);
        prop_assert!(r.is_ok(), "encapsulation refused: {:?}\n{}", r, hex(&inner));
        let out = buf.packet().to_vec();
        prop_assert_eq!(out.len(), inner.len() + overhead);
        prop_assert!(out[overhead..] == inner[..], "inner packet changed by encapsulation");
        let v = verify_packet(&out, VerifyOpts { gue_ports: &[GUE_PORT] });
        prop_assert!(v.is_ok(), "outer checksums: {:?}\n{}", v, hex(&out));
        // etherparse (rightly, for ordinary UDP) refuses a zero checksum over IPv6; GUE
        // without checksum sends exactly that (RFC 6935), so it is not asked then.
        if !(outer_v6 && matches!(kind, TunnelKind::Gue { checksum: GueChecksum::None, .. })) {
            prop_assert!(etherparse_verify(&out).is_ok(), "{:?}", etherparse_verify(&out));
        }
        // etherparse decodes the outer header and, from the inner offset, the inner packet.
        let h = PacketHeaders::from_ip_slice(&out).unwrap();
        let (osrc, odst, oproto, ottl) = match &h.net {
            Some(NetHeaders::Ipv4(ip, _)) => (IpAddr::from(ip.source), IpAddr::from(ip.destination), u8::from(ip.protocol), ip.time_to_live),
            Some(NetHeaders::Ipv6(ip, _)) => (IpAddr::from(ip.source), IpAddr::from(ip.destination), u8::from(ip.next_header), ip.hop_limit),
            _ => unreachable!(),
        };
        prop_assert_eq!((osrc, odst, ottl), (src, dst, c.spec.ttl));
        let inner_proto = if c.spec.v6 { 41 } else { 4 };
        match kind {
            TunnelKind::Ipip => prop_assert_eq!(oproto, inner_proto),
            TunnelKind::Gue { .. } => {
                prop_assert_eq!(oproto, 17);
                let ip_len = overhead - 12;
                let g = &out[ip_len + 8..];
                prop_assert_eq!(u16::from_be_bytes([out[ip_len + 2], out[ip_len + 3]]), GUE_PORT);
                prop_assert_eq!(&g[..4], &[0u8, inner_proto, 0, 0][..], "GUE header: version 0, hlen 0, proto, no flags");
                let want_csum = !matches!(kind, TunnelKind::Gue { checksum: GueChecksum::None, .. });
                prop_assert_eq!(u16::from_be_bytes([out[ip_len + 6], out[ip_len + 7]]) != 0, want_csum, "UDP checksum presence");
            }
            TunnelKind::Gre { checksum, key } => {
                prop_assert_eq!(oproto, 47);
                let ip_len = overhead - (4 + 4 * usize::from(checksum) + 4 * usize::from(key.is_some()));
                let g = &out[ip_len..];
                prop_assert_eq!(g[0] & 0x80 != 0, checksum);
                prop_assert_eq!(g[0] & 0x20 != 0, key.is_some());
                prop_assert_eq!(g[1] & 7, 0, "GRE version 0");
                let et = if c.spec.v6 { 0x86dd } else { 0x0800 };
                prop_assert_eq!(u16::from_be_bytes([g[2], g[3]]), et);
                if let Some(k) = key {
                    let at = 4 + 4 * usize::from(checksum);
                    prop_assert_eq!(u32::from_be_bytes(g[at..at + 4].try_into().unwrap()), k);
                }
            }
            _ => {}
        }
        let inner_h = PacketHeaders::from_ip_slice(&out[overhead..]);
        prop_assert!(inner_h.is_ok(), "etherparse cannot decode the inner packet: {:?}", inner_h.err());

        let d = tunnel::decapsulate(&mut buf, &[GUE_PORT]);
        prop_assert!(d.is_ok(), "decapsulation refused: {:?}\n{}", d, hex(&out));
        let d = d.unwrap();
        prop_assert!(*buf.packet() == inner[..], "decapsulate(encapsulate(p)) != p\n got  {}\n want {}", hex(buf.packet()), hex(&inner));
        prop_assert_eq!((d.outer_src, d.outer_dst), (src, dst));
        let want_kind = match kind {
            TunnelKind::Gue { port, checksum: GueChecksum::RemCsum } => TunnelKind::Gue { port, checksum: GueChecksum::Csum },
            k => k,
        };
        prop_assert_eq!(d.kind, want_kind);
    }

    /// TTL decrement: TTL/hop limit minus one, IPv4 header checksum still verifies (both
    /// oracles), nothing else changes; TTL 0 or 1 is refused without a change.
    #[test]
    fn ttl_decrement(c in case_strategy(), low in 0u8..3) {
        let mut spec = c.spec.clone();
        if low < 2 && c.cport % 4 == 0 {
            spec.ttl = low;
        }
        let c2 = Case { spec: spec.clone(), ..c.clone() };
        let mut pkt = any_packet(&c2);
        let orig = pkt.clone();
        let r = ttl::decrement(&mut pkt);
        if spec.ttl <= 1 {
            prop_assert_eq!(r, Err(RewriteError::TtlExpired));
            prop_assert!(pkt == orig, "refused decrement changed the buffer");
        } else {
            prop_assert_eq!(r, Ok(spec.ttl - 1));
            // Expected: the same bytes with TTL - 1 and the IPv4 header checksum recomputed.
            let mut want = orig.clone();
            if spec.v6 {
                want[7] -= 1;
            } else {
                want[8] -= 1;
                let hl = usize::from(want[0] & 0xf) * 4;
                put16(&mut want, 10, 0);
                let c = inet_checksum(&want[..hl]);
                put16(&mut want, 10, c);
            }
            prop_assert!(pkt == want, "decrement differs from a packet built with TTL-1\n got  {}\n want {}", hex(&pkt), hex(&want));
            prop_assert!(all_checksums_verify(&pkt).is_ok(), "{:?}", all_checksums_verify(&pkt));
        }
    }
}
