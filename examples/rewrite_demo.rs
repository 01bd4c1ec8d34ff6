//! Runs a built-in set of packets through every rewrite LVS performs and prints each
//! result: NAT both ways, an ICMP error about a NAT connection, every tunnel and its
//! decapsulation, direct routing, TTL decrement and a path-MTU reply.
//!
//! `cargo run --example rewrite_demo`

use lvs::forward::tunnel::{self, GueChecksum, Tunnel, TunnelKind};
use lvs::forward::{dr, nat, pmtu, ttl};
use lvs::wire::{MacAddr, proto};
use lvs::{PacketBuf, PacketSummary};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("literal address")
}

fn describe(pkt: &[u8]) -> String {
    match PacketSummary::parse(pkt) {
        Err(e) => format!("unparsable: {e}"),
        Ok(s) => {
            let name = match s.protocol {
                proto::TCP => "TCP".to_string(),
                proto::UDP => "UDP".to_string(),
                proto::SCTP => "SCTP".to_string(),
                proto::ICMP => "ICMP".to_string(),
                proto::ICMPV6 => "ICMPv6".to_string(),
                proto::IPIP => "IPIP".to_string(),
                proto::IPV6 => "IPv6-in-IP".to_string(),
                proto::GRE => "GRE".to_string(),
                p => format!("proto {p}"),
            };
            let ports = s
                .ports
                .map(|p| (format!(":{}", p.src), format!(":{}", p.dst)))
                .unwrap_or_default();
            let mut out = format!(
                "{name} {}{} -> {}{} ttl {} len {}",
                s.src, ports.0, s.dst, ports.1, s.ttl, s.l3_len
            );
            if let Some(q) = s.quoted {
                let qp = q
                    .ports
                    .map(|p| format!(" quoting {}:{} -> {}:{}", q.src, p.src, q.dst, p.dst));
                out.push_str(&qp.unwrap_or_else(|| format!(" quoting {} -> {}", q.src, q.dst)));
            }
            if let Some(i) = s.icmp {
                out.push_str(&format!(" icmp type {} code {}", i.msg_type, i.code));
            }
            out
        }
    }
}

fn hex(b: &[u8]) -> String {
    let shown: Vec<String> = b.iter().take(48).map(|x| format!("{x:02x}")).collect();
    let more = if b.len() > 48 {
        format!(" … (+{} bytes)", b.len() - 48)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(""))
}

fn show(step: &str, pkt: &[u8]) {
    println!("{step:<34} {}", describe(pkt));
    println!("{:<34} {}", "", hex(pkt));
}

/// An IPv4 or IPv6 UDP datagram with a valid checksum.
fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    let l4_len = 8 + payload.len();
    let mut l4 = vec![0u8; l4_len];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    l4[8..].copy_from_slice(payload);
    let acc = match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => lvs::checksum::pseudo_v4(a, b, proto::UDP, l4_len as u16),
        (IpAddr::V6(a), IpAddr::V6(b)) => lvs::checksum::pseudo_v6(a, b, proto::UDP, l4_len as u32),
        _ => unreachable!("same family"),
    };
    let c = lvs::wire::udp::mangle_zero(lvs::checksum::finish(lvs::checksum::add(acc, &l4)));
    l4[6..8].copy_from_slice(&c.to_be_bytes());
    match (src, dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mut h = [0u8; 20];
            h[0] = 0x45;
            h[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
            h[6] = 0x40;
            h[8] = 64;
            h[9] = proto::UDP;
            h[12..16].copy_from_slice(&a.octets());
            h[16..20].copy_from_slice(&b.octets());
            let c = lvs::checksum::checksum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            p.extend_from_slice(&h);
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mut h = [0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            h[6] = proto::UDP;
            h[7] = 64;
            h[8..24].copy_from_slice(&a.octets());
            h[24..40].copy_from_slice(&b.octets());
            p.extend_from_slice(&h);
        }
        _ => unreachable!("same family"),
    }
    p.extend_from_slice(&l4);
    p
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (vip, rip, director) = (ip("192.0.2.1"), ip("10.0.0.2"), ip("10.0.0.1"));
    let (vip6, rip6, director6) = (ip("2001:db8::1"), ip("fd00::2"), ip("fd00::1"));
    let client = ip("198.51.100.7");

    println!("== NAT (masquerading)");
    let syn = lvs::fuzzing::sample_tcp_v4();
    show("client SYN to the VIP", &syn);
    let mut p = syn;
    nat::inbound(&mut p, rip, 8080)?;
    show("NAT inbound to 10.0.0.2:8080", &p);
    let mut reply = udp(rip, client, 8080, 40000, b"reply");
    show("real server's UDP reply", &reply);
    nat::outbound(&mut reply, vip, 80)?;
    show("NAT outbound from the VIP", &reply);

    println!("\n== ICMP error about a NAT connection");
    let mut err = vec![0u8; 28];
    err[0] = 0x45;
    err[8] = 64;
    err[9] = proto::ICMP;
    err[12..16].copy_from_slice(&[203, 0, 113, 9]);
    err[16..20].copy_from_slice(&[192, 0, 2, 1]);
    err[20] = 3; // destination unreachable
    err[21] = 3; // port unreachable
    err.extend_from_slice(&reply[..28]); // quotes our reply, cut after 8 bytes of UDP
    let total = err.len() as u16;
    err[2..4].copy_from_slice(&total.to_be_bytes());
    let c = lvs::checksum::checksum(&err[..20]);
    err[10..12].copy_from_slice(&c.to_be_bytes());
    let c = lvs::checksum::checksum(&err[20..]);
    err[22..24].copy_from_slice(&c.to_be_bytes());
    show("router's port-unreachable", &err);
    nat::inbound(&mut err, rip, 8080)?;
    show("relayed to the real server", &err);

    println!("\n== Tunnels (LVS-TUN) and decapsulation on the real server");
    let v6 = udp(ip("2001:db8::7"), vip6, 5353, 53, b"query");
    let kinds = [
        ("IPIP", TunnelKind::Ipip),
        (
            "GUE port 6080, checksum",
            TunnelKind::Gue {
                port: 6080,
                checksum: GueChecksum::Csum,
            },
        ),
        (
            "GRE checksum + key",
            TunnelKind::Gre {
                checksum: true,
                key: Some(42),
            },
        ),
    ];
    for (inner_name, inner) in [("IPv4", syn.to_vec()), ("IPv6", v6.clone())] {
        for (outer_name, src, dst) in [("IPv4", director, rip), ("IPv6", director6, rip6)] {
            for (kind_name, kind) in kinds {
                let t = Tunnel::new(kind, src, dst);
                let mut buf = PacketBuf::with_headroom(lvs::buf::DEFAULT_HEADROOM, &inner);
                tunnel::encapsulate(&mut buf, &t, 1)?;
                show(
                    &format!("{inner_name} in {outer_name} {kind_name}"),
                    buf.packet(),
                );
                let d = tunnel::decapsulate(&mut buf, &[6080])?;
                assert_eq!(
                    buf.packet(),
                    &inner[..],
                    "decapsulation restores the packet"
                );
                println!(
                    "{:<34} decapsulated from {} -> {}: identical to the original",
                    "", d.outer_src, d.outer_dst
                );
            }
        }
    }

    println!("\n== Direct routing: only the MACs change");
    let mut frame = vec![0xff; 12];
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&syn);
    dr::rewrite_macs(
        &mut frame,
        MacAddr([2, 0, 0, 0, 0, 2]),
        MacAddr([2, 0, 0, 0, 0, 1]),
    )?;
    println!(
        "{:<34} dst {:02x?} src {:02x?}, L3 unchanged: {}",
        "frame",
        &frame[0..6],
        &frame[6..12],
        frame[14..] == syn[..]
    );

    println!("\n== TTL decrement and path MTU");
    let mut p = syn;
    let t = ttl::decrement(&mut p)?;
    show(&format!("TTL now {t}"), &p);
    let df = udp(client, vip, 40000, 80, &[0u8; 1472]); // 1500 bytes with DF set
    let s = PacketSummary::parse(&df)?;
    let t = Tunnel::new(TunnelKind::Ipip, director, rip);
    match pmtu::check(&s, 1500, Some(&t)) {
        pmtu::MtuCheck::TooBig { mtu } => {
            let mut out = [0u8; 1500];
            let n = pmtu::build_too_big(&df, mtu, &mut out)?;
            show(&format!("1500-byte DF packet, tunnel MTU {mtu}"), &out[..n]);
        }
        other => println!("unexpected MTU verdict {other:?}"),
    }
    Ok(())
}
