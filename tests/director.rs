//! The Director end to end, in virtual time: clients, the director and real servers in
//! memory, packets built by etherparse (an independent encoder) and checked after every
//! hop. Scenarios: each forwarding method through handshake, data, FIN or RST and expiry;
//! persistence and its expiry; a server quiesced then removed mid-flow; thresholds; a full
//! table; and a spoofed SYN flood from a real capture against established connections.

use etherparse::PacketBuilder;
use lvs::conn_table::TcpState;
use lvs::forward::tunnel::{self, TunnelKind};
use lvs::scheduler::{ForwardMethod, RealServerConfig};
use lvs::service::{Protocol, SchedulerName, ServiceConfig, ServiceKey};
use lvs::{
    Config, Director, DropReason, Event, Instant, PacketBuf, PacketMeta, PacketSummary, Verdict,
};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const VIP: [u8; 4] = [192, 0, 2, 1];
const DIRECTOR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn ip(a: [u8; 4]) -> IpAddr {
    IpAddr::from(a)
}

fn rs(n: u8) -> [u8; 4] {
    [10, 0, 0, 10 + n]
}

fn tcp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, flags: &str, seq: u32) -> Vec<u8> {
    let mut b = PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, seq, 64240);
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'A' => b.ack(1),
            'F' => b.fin(),
            'R' => b.rst(),
            'P' => b.psh(),
            _ => b,
        };
    }
    let mut v = Vec::new();
    b.write(&mut v, if flags.contains('P') { b"payload" } else { b"" })
        .unwrap();
    v
}

fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .udp(sport, dport)
        .write(&mut v, b"query")
        .unwrap();
    v
}

struct Lab {
    d: Director,
    now: Instant,
    events: Vec<Event>,
}

impl Lab {
    fn new(cfg: Config) -> Self {
        let cfg = Config {
            tunnel_source_v4: Some(DIRECTOR),
            ..cfg
        };
        Self {
            d: Director::new(cfg, [7; 32]),
            now: Instant::from_secs(1000),
            events: Vec::new(),
        }
    }

    fn service(
        &mut self,
        port: u16,
        sched: SchedulerName,
        servers: &[(u8, u32, ForwardMethod)],
    ) -> lvs::ServiceId {
        let mut cfg = ServiceConfig::new(ServiceKey::Addr {
            protocol: Protocol::Tcp,
            addr: ip(VIP),
            port,
        });
        cfg.scheduler = sched;
        self.with_servers(cfg, servers)
    }

    fn with_servers(
        &mut self,
        cfg: ServiceConfig,
        servers: &[(u8, u32, ForwardMethod)],
    ) -> lvs::ServiceId {
        let port = cfg.key.port();
        let id = self.d.add_service(cfg).unwrap();
        for &(n, w, m) in servers {
            let p = if matches!(m, ForwardMethod::Nat) {
                8080
            } else {
                port
            };
            self.d
                .add_server(id, RealServerConfig::new(ip(rs(n)), p).weight(w).forward(m))
                .unwrap();
        }
        id
    }

    fn send(&mut self, pkt: &[u8]) -> (Verdict, Vec<u8>) {
        let mut buf = PacketBuf::with_headroom(128, pkt);
        let v = self
            .d
            .handle_packet(self.now, &mut buf, PacketMeta::default());
        while let Some(e) = self.d.poll_event() {
            self.events.push(e);
        }
        (v, buf.packet().to_vec())
    }

    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(t) = self.d.poll_timeout().filter(|t| *t <= target) {
            self.now = t.max(self.now);
            self.d.handle_timeout(self.now);
            while let Some(e) = self.d.poll_event() {
                self.events.push(e);
            }
        }
        self.now = target;
        self.d.handle_timeout(self.now);
        while let Some(e) = self.d.poll_event() {
            self.events.push(e);
        }
    }

    fn state_of(&self, client_port: u16) -> Option<u8> {
        self.d
            .conns()
            .iter()
            .find(|(_, c)| c.cport() == client_port && !c.is_template())
            .map(|(_, c)| c.state())
    }
}

/// Every checksum of an IPv4 packet verifies (etherparse recomputes them).
fn valid(p: &[u8]) -> PacketSummary {
    let s = PacketSummary::parse(p).expect("parses");
    let sp = etherparse::SlicedPacket::from_ip(p).expect("etherparse parses");
    if let Some(etherparse::NetSlice::Ipv4(h)) = &sp.net {
        let hdr = h.header().to_header();
        assert_eq!(hdr.header_checksum, hdr.calc_header_checksum());
        if let Some(etherparse::TransportSlice::Tcp(t)) = &sp.transport {
            assert_eq!(
                t.checksum(),
                t.to_header().calc_checksum_ipv4(&hdr, t.payload()).unwrap()
            );
        }
    }
    s
}

#[test]
fn nat_handshake_data_fin_and_expiry() {
    let mut lab = Lab::new(Config::default());
    let svc = lab.service(
        80,
        SchedulerName::Rr,
        &[(1, 1, ForwardMethod::Nat), (2, 1, ForwardMethod::Nat)],
    );
    let client = [198, 51, 100, 7];
    // SYN: scheduled and rewritten to a real server.
    let (v, out) = lab.send(&tcp(client, 40000, VIP, 80, "S", 1));
    let Verdict::Forward {
        next_hop,
        method: ForwardMethod::Nat,
        ..
    } = v
    else {
        panic!("{v:?}")
    };
    let s = valid(&out);
    assert_eq!((s.dst, s.ports.unwrap().dst, s.ttl), (next_hop, 8080, 63));
    let server: [u8; 4] = match next_hop {
        IpAddr::V4(a) => a.octets(),
        _ => unreachable!(),
    };
    assert_eq!(lab.state_of(40000), Some(TcpState::SynRecv as u8));
    // The server's SYN-ACK goes back from the VIP.
    let (v, out) = lab.send(&tcp(server, 8080, client, 40000, "SA", 9));
    assert!(
        matches!(v, Verdict::Forward { next_hop, .. } if next_hop == ip(client)),
        "{v:?}"
    );
    let s = valid(&out);
    assert_eq!((s.src, s.ports.unwrap().src), (ip(VIP), 80));
    // ACK and data: established.
    let _ = lab.send(&tcp(client, 40000, VIP, 80, "A", 2));
    let (_, out) = lab.send(&tcp(client, 40000, VIP, 80, "PA", 2));
    valid(&out);
    assert_eq!(lab.state_of(40000), Some(TcpState::Established as u8));
    let dest = lab
        .d
        .service(svc)
        .unwrap()
        .pool()
        .dests()
        .find(ip(server), 8080)
        .unwrap();
    assert_eq!((dest.active(), dest.inactive()), (1, 0));
    // FIN from the client, FIN-ACK from the server, last ACK.
    let _ = lab.send(&tcp(client, 40000, VIP, 80, "FA", 3));
    let _ = lab.send(&tcp(server, 8080, client, 40000, "FA", 10));
    let _ = lab.send(&tcp(client, 40000, VIP, 80, "A", 4));
    assert_eq!(lab.state_of(40000), Some(TcpState::TimeWait as u8));
    let dest = lab
        .d
        .service(svc)
        .unwrap()
        .pool()
        .dests()
        .find(ip(server), 8080)
        .unwrap();
    assert_eq!((dest.active(), dest.inactive()), (0, 1));
    // TIME_WAIT lasts 120 s.
    lab.advance(Duration::from_secs(119));
    assert!(lab.state_of(40000).is_some());
    lab.advance(Duration::from_secs(2));
    assert_eq!(lab.state_of(40000), None);
    assert!(
        lab.events
            .iter()
            .any(|e| matches!(e, Event::ConnCreated { .. }))
    );
    assert!(
        lab.events
            .iter()
            .any(|e| matches!(e, Event::ConnExpired { .. }))
    );
    let st = lab.d.service(svc).unwrap().stats().counters();
    assert_eq!((st.conns, st.inpkts, st.outpkts), (1, 5, 2));
}

#[test]
fn rst_closes_and_unanswered_syn_expires() {
    let mut lab = Lab::new(Config::default());
    lab.service(80, SchedulerName::Wlc, &[(1, 1, ForwardMethod::Nat)]);
    let c = [198, 51, 100, 8];
    let _ = lab.send(&tcp(c, 1, VIP, 80, "S", 1));
    // A client RST during the handshake leaves SYN_RECV as it is (kernel table).
    let _ = lab.send(&tcp(c, 1, VIP, 80, "R", 2));
    assert_eq!(lab.state_of(1), Some(TcpState::SynRecv as u8));
    let _ = lab.send(&tcp(c, 1, VIP, 80, "A", 2));
    let _ = lab.send(&tcp(c, 1, VIP, 80, "R", 3));
    assert_eq!(lab.state_of(1), Some(TcpState::Close as u8));
    lab.advance(Duration::from_secs(11));
    assert_eq!(lab.state_of(1), None, "CLOSE lasts 10 s");
    let _ = lab.send(&tcp(c, 2, VIP, 80, "S", 1));
    lab.advance(Duration::from_secs(59));
    assert!(lab.state_of(2).is_some());
    lab.advance(Duration::from_secs(2));
    assert_eq!(lab.state_of(2), None, "SYN_RECV lasts 60 s");
    // A non-SYN to the VIP with no connection is not scheduled: it passes to the stack.
    let (v, _) = lab.send(&tcp(c, 3, VIP, 80, "A", 1));
    assert_eq!(v, Verdict::Pass);
}

#[test]
fn direct_routing_and_tunnels_see_input_only() {
    let mut lab = Lab::new(Config::default());
    lab.service(80, SchedulerName::Rr, &[(1, 1, ForwardMethod::DirectRoute)]);
    lab.service(
        443,
        SchedulerName::Rr,
        &[(2, 1, ForwardMethod::Tunnel(TunnelKind::Ipip))],
    );
    let c = [198, 51, 100, 9];
    let syn = tcp(c, 5000, VIP, 80, "S", 1);
    let (v, out) = lab.send(&syn);
    assert!(
        matches!(v, Verdict::Forward { method: ForwardMethod::DirectRoute, next_hop, .. } if next_hop == ip(rs(1)))
    );
    assert_eq!(&out[16..20], &VIP, "DR leaves L3 addresses alone");
    assert_eq!(out[8], 63, "TTL decremented");
    let _ = lab.send(&tcp(c, 5000, VIP, 80, "A", 2));
    assert_eq!(lab.state_of(5000), Some(TcpState::Established as u8));
    let _ = lab.send(&tcp(c, 5000, VIP, 80, "FA", 3));
    assert_eq!(
        lab.state_of(5000),
        Some(TcpState::FinWait as u8),
        "input-only table"
    );
    // Tunnel: the packet arrives at the real server inside IPIP, intact.
    let syn = tcp(c, 5001, VIP, 443, "S", 1);
    let (v, out) = lab.send(&syn);
    assert!(
        matches!(
            v,
            Verdict::Forward {
                method: ForwardMethod::Tunnel(_),
                ..
            }
        ),
        "{v:?}"
    );
    let outer = valid(&out);
    assert_eq!(
        (outer.src, outer.dst, outer.protocol),
        (IpAddr::V4(DIRECTOR), ip(rs(2)), 4)
    );
    let mut b = PacketBuf::with_headroom(0, &out);
    tunnel::decapsulate(&mut b, &[]).unwrap();
    let mut want = syn.clone();
    want[8] -= 1;
    let c2 = lvs::checksum::checksum(&{
        let mut h = want[..20].to_vec();
        h[10] = 0;
        h[11] = 0;
        h
    });
    want[10..12].copy_from_slice(&c2.to_be_bytes());
    assert_eq!(b.packet(), &want[..]);
}

#[test]
fn persistence_keeps_a_client_until_the_template_expires() {
    let mut lab = Lab::new(Config::default());
    let mut cfg = ServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(VIP),
        port: 80,
    });
    cfg.scheduler = SchedulerName::Rr;
    cfg.persistence = Some(60);
    lab.with_servers(
        cfg,
        &[
            (1, 1, ForwardMethod::Nat),
            (2, 1, ForwardMethod::Nat),
            (3, 1, ForwardMethod::Nat),
        ],
    );
    let c = [198, 51, 100, 10];
    let first = |v: Verdict| match v {
        Verdict::Forward { next_hop, .. } => next_hop,
        v => panic!("{v:?}"),
    };
    let a = first(lab.send(&tcp(c, 1, VIP, 80, "S", 1)).0);
    for port in 2..6 {
        lab.advance(Duration::from_secs(5));
        assert_eq!(
            first(lab.send(&tcp(c, port, VIP, 80, "S", 1)).0),
            a,
            "same server while the template lives"
        );
    }
    // Another client gets the next server in round-robin order.
    let b = first(lab.send(&tcp([198, 51, 100, 11], 1, VIP, 80, "S", 1)).0);
    assert_ne!(a, b);
    let count = |lab: &Lab, f: fn(&Event) -> bool| lab.events.iter().filter(|e| f(e)).count();
    assert_eq!(
        count(&lab, |e| matches!(e, Event::TemplateCreated { .. })),
        2
    );
    assert_eq!(
        count(&lab, |e| matches!(e, Event::PersistenceHit { .. })),
        4
    );
    // The template outlives its last connection by its timeout, then goes.
    lab.advance(Duration::from_secs(200));
    assert_eq!(lab.d.conns().len(), 0, "connections and templates expired");
    assert_eq!(
        count(&lab, |e| matches!(e, Event::TemplateExpired { .. })),
        2
    );
    let c2 = first(lab.send(&tcp(c, 9, VIP, 80, "S", 1)).0);
    assert_ne!(c2, a, "a fresh schedule moves on in the rr cycle");
}

#[test]
fn quiesced_then_removed_server_keeps_then_loses_its_flows() {
    let mut lab = Lab::new(Config::default());
    let svc = lab.service(
        80,
        SchedulerName::Rr,
        &[(1, 1, ForwardMethod::Nat), (2, 1, ForwardMethod::Nat)],
    );
    let c = [198, 51, 100, 12];
    let (v, _) = lab.send(&tcp(c, 1, VIP, 80, "S", 1));
    let Verdict::Forward { next_hop, .. } = v else {
        panic!()
    };
    let dest = lab
        .d
        .service(svc)
        .unwrap()
        .pool()
        .dests()
        .find(next_hop, 8080)
        .unwrap()
        .id();
    lab.d.edit_server(svc, dest, 0, 0, 0).unwrap();
    // Existing flow continues on the quiesced server; new ones avoid it.
    let (v, _) = lab.send(&tcp(c, 1, VIP, 80, "A", 2));
    assert!(matches!(v, Verdict::Forward { next_hop: h, .. } if h == next_hop));
    for port in 2..10 {
        let (v, _) = lab.send(&tcp(c, port, VIP, 80, "S", 1));
        assert!(matches!(v, Verdict::Forward { next_hop: h, .. } if h != next_hop));
    }
    // Removed: its flow's packets are dropped (expire_nodest_conn off, the default).
    lab.d.remove_server(svc, dest).unwrap();
    let (v, _) = lab.send(&tcp(c, 1, VIP, 80, "A", 3));
    assert_eq!(v, Verdict::Drop(DropReason::ServerRemoved));
}

#[test]
fn thresholds_overload_and_recover() {
    let mut lab = Lab::new(Config::default());
    let mut cfg = ServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: ip(VIP),
        port: 53,
    });
    cfg.scheduler = SchedulerName::Wlc;
    let svc = lab.d.add_service(cfg).unwrap();
    let d = lab
        .d
        .add_server(
            svc,
            RealServerConfig::new(ip(rs(1)), 53)
                .thresholds(2, 1)
                .forward(ForwardMethod::Nat),
        )
        .unwrap();
    let c = [198, 51, 100, 13];
    assert!(matches!(
        lab.send(&udp(c, 1, VIP, 53)).0,
        Verdict::Forward { .. }
    ));
    assert!(matches!(
        lab.send(&udp(c, 2, VIP, 53)).0,
        Verdict::Forward { .. }
    ));
    assert!(lab.events.contains(&Event::ServerOverloaded {
        service: svc,
        server: d
    }));
    // Overloaded: no server left for a new flow: port unreachable back to the client.
    let (v, out) = lab.send(&udp(c, 3, VIP, 53));
    assert_eq!(v, Verdict::Reply { to: ip(c) });
    let r = valid(&out);
    assert_eq!((r.icmp.unwrap().msg_type, r.icmp.unwrap().code), (3, 3));
    // UDP flows expire after 300 s; below the lower threshold the server recovers.
    lab.advance(Duration::from_secs(301));
    assert!(lab.events.contains(&Event::ServerRecovered {
        service: svc,
        server: d
    }));
    assert!(matches!(
        lab.send(&udp(c, 4, VIP, 53)).0,
        Verdict::Forward { .. }
    ));
}

#[test]
fn full_table_drops_new_connections_only() {
    let mut lab = Lab::new(Config {
        conn_capacity: 4,
        ..Config::default()
    });
    lab.service(80, SchedulerName::Wlc, &[(1, 1, ForwardMethod::Nat)]);
    let c = [198, 51, 100, 14];
    for p in 1..=4 {
        assert!(matches!(
            lab.send(&tcp(c, p, VIP, 80, "S", 1)).0,
            Verdict::Forward { .. }
        ));
    }
    assert_eq!(
        lab.send(&tcp(c, 5, VIP, 80, "S", 1)).0,
        Verdict::Drop(DropReason::TableFull)
    );
    assert_eq!(
        lab.events
            .iter()
            .filter(|e| **e == Event::TableFull)
            .count(),
        1
    );
    assert!(
        matches!(
            lab.send(&tcp(c, 1, VIP, 80, "A", 2)).0,
            Verdict::Forward { .. }
        ),
        "existing flows go on"
    );
}

#[test]
fn syn_flood_does_not_move_established_connections() {
    // Background: 500 established connections, then the real spoofed SYN flood
    // (37,841 SYNs to 10.10.10.10:25565) against a table of 20,000 entries.
    let flood = PathBufOf::capture("stopddos__pkt.TCP.synflood.spoofed.pcap");
    let cfg = Config {
        conn_capacity: 20_000,
        drop_entry: lvs::director::DefenseMode::Auto,
        secure_tcp: lvs::director::DefenseMode::Auto,
        ..Config::default()
    };
    let mut lab = Lab::new(cfg);
    // The director's clock is the capture's: the background connections start just before.
    lab.now = flood[0].0 - Duration::from_secs(10);
    let vip = [10, 10, 10, 10];
    let mut svc_cfg = ServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: ip(vip),
        port: 25565,
    });
    svc_cfg.scheduler = SchedulerName::Wlc;
    lab.with_servers(
        svc_cfg,
        &[
            (1, 1, ForwardMethod::Nat),
            (2, 1, ForwardMethod::Nat),
            (3, 1, ForwardMethod::Nat),
        ],
    );
    let mut owners = Vec::new();
    for i in 0..500u16 {
        let c = [203, 0, (i >> 8) as u8, i as u8];
        let Verdict::Forward { next_hop, .. } = lab.send(&tcp(c, 1000 + i, vip, 25565, "S", 1)).0
        else {
            panic!()
        };
        let _ = lab.send(&tcp(c, 1000 + i, vip, 25565, "A", 2));
        owners.push((c, 1000 + i, next_hop));
    }
    let (mut forwarded, mut dropped) = (0, 0);
    for (n, (ts, frame)) in flood.into_iter().enumerate() {
        lab.now = lab.now.max(ts);
        let Ok(s) = PacketSummary::parse_ethernet(&frame) else {
            continue;
        };
        match lab.send(&frame[s.l3_offset..]).0 {
            Verdict::Forward { .. } => forwarded += 1,
            Verdict::Drop(_) => dropped += 1,
            _ => {}
        }
        if n % 1000 == 0 {
            lab.advance(Duration::from_millis(1));
            // Every established connection still reaches its own server.
            for &(c, p, owner) in owners.iter().step_by(50) {
                let (v, _) = lab.send(&tcp(c, p, vip, 25565, "PA", 3));
                assert!(
                    matches!(v, Verdict::Forward { next_hop, .. } if next_hop == owner),
                    "{v:?}"
                );
            }
        }
    }
    for &(c, p, owner) in &owners {
        let (v, _) = lab.send(&tcp(c, p, vip, 25565, "PA", 3));
        assert!(
            matches!(v, Verdict::Forward { next_hop, .. } if next_hop == owner),
            "{v:?}"
        );
    }
    assert!(
        forwarded > 1000 && dropped > 1000,
        "forwarded {forwarded}, dropped {dropped}"
    );
    eprintln!(
        "SYN flood: {forwarded} forwarded, {dropped} dropped, 500 established connections kept their servers"
    );
}

/// Reads a shared capture in place (classic pcap), with timestamps.
struct PathBufOf;

impl PathBufOf {
    fn capture(name: &str) -> Vec<(Instant, Vec<u8>)> {
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/pcaps")
            .join(name);
        let f = std::fs::File::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let mut r = pcap_file::pcap::PcapReader::new(f).unwrap();
        let mut out = Vec::new();
        while let Some(pkt) = r.next_packet() {
            let pkt = pkt.unwrap();
            let ts = Instant::from_micros(pkt.timestamp.as_micros() as i64);
            out.push((ts, pkt.data.into_owned()));
        }
        out
    }
}

mod robustness {
    //! Arbitrary and corrupted packets never make the engine panic, and a refused packet
    //! is never half rewritten: a drop or a pass leaves the buffer as it came.
    use super::*;
    use proptest::prelude::*;

    fn seeds() -> Vec<Vec<u8>> {
        let c = [198, 51, 100, 20];
        let mut v = vec![
            tcp(c, 1, VIP, 80, "S", 1),
            tcp(c, 1, VIP, 80, "A", 2),
            tcp(c, 2, VIP, 443, "S", 1),
            udp(c, 3, VIP, 53),
            tcp(rs(1), 8080, c, 1, "SA", 9),
        ];
        let mut icmp = Vec::new();
        PacketBuilder::ipv4(c, VIP, 64)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut icmp, &tcp(VIP, 80, c, 1, "SA", 5)[..28])
            .unwrap();
        v.push(icmp);
        let mut v6 = Vec::new();
        PacketBuilder::ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            64,
        )
        .udp(5, 53)
        .write(&mut v6, b"q")
        .unwrap();
        v.push(v6);
        v
    }

    fn lab() -> Lab {
        let mut lab = Lab::new(Config {
            conn_capacity: 64,
            ..Config::default()
        });
        lab.service(
            80,
            SchedulerName::Wlc,
            &[
                (1, 1, ForwardMethod::Nat),
                (2, 1, ForwardMethod::DirectRoute),
            ],
        );
        lab.service(
            443,
            SchedulerName::Sh,
            &[(
                3,
                1,
                ForwardMethod::Tunnel(TunnelKind::Gue {
                    port: 6080,
                    checksum: lvs::forward::tunnel::GueChecksum::Csum,
                }),
            )],
        );
        let mut u = ServiceConfig::new(ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: ip(VIP),
            port: 53,
        });
        u.scheduler = SchedulerName::Rr;
        lab.with_servers(u, &[(4, 1, ForwardMethod::Nat)]);
        lab
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn any_packet_sequence_is_handled(
            steps in proptest::collection::vec((0usize..7, proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3), any::<u16>(), 0u64..400), 1..40),
        ) {
            let seeds = seeds();
            let mut lab = lab();
            for (which, flips, cut, wait) in steps {
                let mut p = seeds[which].clone();
                for (at, x) in flips {
                    let n = p.len();
                    p[at % n] ^= x;
                }
                if cut % 5 == 0 {
                    let n = p.len();
                    p.truncate(usize::from(cut) % (n + 1));
                }
                let before = p.clone();
                let (v, out) = lab.send(&p);
                if matches!(v, Verdict::Drop(_) | Verdict::Pass) {
                    prop_assert_eq!(&out, &before, "a dropped or passed packet is untouched: {:?}", v);
                }
                lab.advance(Duration::from_secs(wait));
            }
        }
    }
}

#[test]
fn a_rewrite_refused_after_the_ttl_decrement_leaves_the_packet_as_it_came() {
    // SCTP to a NAT server on another port with a corrupted CRC32c: the NAT rewrite refuses
    // it (recomputing would launder the corruption) after the TTL was already decremented.
    let mut lab = Lab::new(Config::default());
    let mut cfg = ServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Sctp,
        addr: ip(VIP),
        port: 3868,
    });
    cfg.scheduler = SchedulerName::Rr;
    let id = lab.d.add_service(cfg).unwrap();
    lab.d
        .add_server(
            id,
            RealServerConfig::new(ip(rs(1)), 3869).forward(ForwardMethod::Nat),
        )
        .unwrap();
    let mut p = vec![0u8; 20 + 12 + 20];
    p[0] = 0x45;
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[8] = 64;
    p[9] = 132;
    p[12..16].copy_from_slice(&[198, 51, 100, 30]);
    p[16..20].copy_from_slice(&VIP);
    let c = lvs::checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&5000u16.to_be_bytes());
    p[22..24].copy_from_slice(&3868u16.to_be_bytes());
    p[32] = 1; // INIT
    p[35] = 20;
    lvs::wire::SctpPacket::new_checked(&mut p[20..])
        .unwrap()
        .fill_checksum();
    p[28] ^= 0xff; // corrupt the CRC32c
    let (v, out) = lab.send(&p);
    assert!(matches!(v, Verdict::Drop(DropReason::Rewrite(_))), "{v:?}");
    assert_eq!(out, p, "TTL and checksum restored");
}
