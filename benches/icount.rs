//! Instruction counts per rewrite, for figures that do not depend on machine noise.
//!
//! Run under callgrind as `scripts/icount.sh`: each rewrite runs `N` times on a warm
//! packet, once with N = 0 and once with N = 10 000, and the difference of the two totals
//! divided by 10 000 is the cost of one rewrite. Under `cargo test --benches` or
//! `cargo bench` it runs every kind once as a smoke test.

use lvs::forward::{dr, nat, tunnel};
use lvs::wire::MacAddr;
use std::hint::black_box;
use std::net::IpAddr;

/// The rewrites measured, by name.
pub const KINDS: &[&str] = &[
    "nat_inbound",
    "ipip_encap",
    "gue_encap",
    "dr_macs",
    "director_established",
    "director_established_burst",
    "director_new_connection",
];

/// A [`wlc_director`] with 10,000 NAT connections, and 1,024 packets of them (ACKs from
/// their clients).
fn established(pkt: [u8; 64]) -> (lvs::Director, Vec<[u8; 64]>) {
    let mut d = wlc_director(20_000);
    let now = lvs::Instant::from_secs(1000);
    let mut buf = lvs::PacketBuf::with_headroom(64, &pkt);
    let start = buf.headroom();
    let flow = |i: u32, flags: u8| {
        let mut p = pkt;
        let old = u16::from_be_bytes([p[32], p[33]]);
        p[33] = flags;
        let c = lvs::checksum::update16(
            u16::from_be_bytes([p[36], p[37]]),
            old,
            u16::from_be_bytes([p[32], p[33]]),
        );
        p[36..38].copy_from_slice(&c.to_be_bytes());
        let a = IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        nat::outbound(&mut p, a, 1024 + (i % 50000) as u16).unwrap();
        p
    };
    for i in 0..10_000 {
        buf.set_range(start, start + 64).unwrap();
        buf.packet_mut().copy_from_slice(&flow(i, 0x02));
        let _ = d.handle_packet(now, &mut buf, lvs::PacketMeta::default());
        while d.poll_event().is_some() {}
    }
    let acks = (0..1024u32)
        .map(|k| flow(k.wrapping_mul(9973) % 10_000, 0x10))
        .collect();
    (d, acks)
}

/// A director for `capacity` records with a wlc NAT service 192.0.2.1:80 over 100 real
/// servers of weights 1 to 5.
fn wlc_director(capacity: usize) -> lvs::Director {
    use lvs::service::{Protocol, SchedulerName, ServiceConfig, ServiceKey};
    let mut d = lvs::Director::new(
        lvs::Config {
            conn_capacity: capacity,
            ..lvs::Config::default()
        },
        [1; 32],
    );
    let mut s = ServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::from([192, 0, 2, 1]),
        port: 80,
    });
    s.scheduler = SchedulerName::Wlc;
    let id = d.add_service(s).unwrap();
    for r in 0..100u8 {
        let rs = lvs::scheduler::RealServerConfig::new(IpAddr::from([10, 200, 0, r]), 8080)
            .weight(1 + u32::from(r % 5));
        d.add_server(id, rs).unwrap();
    }
    d
}

fn run(kind: &str, n: u64) {
    let rips: [IpAddr; 2] = [IpAddr::from([10, 0, 0, 2]), IpAddr::from([10, 0, 0, 3])];
    let pkt = lvs::fuzzing::sample_tcp_v4();
    match kind {
        "nat_inbound" => {
            let mut p = pkt;
            for i in 0..n {
                let f = (i & 1) as usize;
                nat::inbound(black_box(&mut p[..]), rips[f], 8080 + f as u16).unwrap();
            }
        }
        "ipip_encap" | "gue_encap" => {
            let kind = if kind == "ipip_encap" {
                tunnel::TunnelKind::Ipip
            } else {
                tunnel::TunnelKind::Gue {
                    port: 6080,
                    checksum: tunnel::GueChecksum::None,
                }
            };
            let t = tunnel::Tunnel::new(kind, IpAddr::from([192, 0, 2, 254]), rips[0]);
            let mut buf = lvs::PacketBuf::with_headroom(64, &pkt);
            let start = buf.headroom();
            let len = buf.len();
            for i in 0..n {
                buf.set_range(start, start + len).unwrap();
                tunnel::encapsulate(black_box(&mut buf), &t, i as u16).unwrap();
            }
        }
        "dr_macs" => {
            let mut f = [0u8; 14 + 64];
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f[14..].copy_from_slice(&pkt);
            for i in 0..n {
                let m = MacAddr([2, 0, 0, 0, 0, i as u8]);
                dr::rewrite_macs(black_box(&mut f[..]), m, MacAddr([2; 6])).unwrap();
            }
        }
        "director_established" => {
            let (mut d, acks) = established(pkt);
            let now = lvs::Instant::from_secs(1000);
            let mut buf = lvs::PacketBuf::with_headroom(64, &pkt);
            let start = buf.headroom();
            for i in 0..n {
                buf.set_range(start, start + 64).unwrap();
                buf.packet_mut().copy_from_slice(&acks[(i % 1024) as usize]);
                let _ = black_box(d.handle_packet(now, &mut buf, lvs::PacketMeta::default()));
            }
        }
        "director_established_burst" => {
            // The same packets through `handle_burst`, 32 at a time.
            let (mut d, acks) = established(pkt);
            let now = lvs::Instant::from_secs(1000);
            let mut ring: Vec<_> = (0..32)
                .map(|_| lvs::PacketBuf::with_headroom(64, &pkt))
                .collect();
            let start = ring[0].headroom();
            let metas = [lvs::PacketMeta::default(); 32];
            let mut verdicts = [lvs::Verdict::Pass; 32];
            let mut i = 0;
            while i < n {
                let k = (n - i).min(32) as usize;
                for (j, b) in ring[..k].iter_mut().enumerate() {
                    b.set_range(start, start + 64).unwrap();
                    b.packet_mut()
                        .copy_from_slice(&acks[((i as usize) + j) % 1024]);
                }
                d.handle_burst(now, &mut ring[..k], &metas[..k], &mut verdicts[..k])
                    .unwrap();
                black_box(&verdicts);
                i += k as u64;
            }
        }
        "director_new_connection" => {
            // SYNs from new clients to a wlc NAT service of 100 servers; every 1024 of
            // them the clock moves on 61 s and their connections expire (amortised here).
            let mut d = wlc_director(1 << 16);
            let mut now = lvs::Instant::from_secs(1000);
            let mut buf = lvs::PacketBuf::with_headroom(64, &pkt);
            let start = buf.headroom();
            let syns: Vec<[u8; 64]> = (0..1024u32)
                .map(|i| {
                    let mut p = pkt;
                    let a = IpAddr::from([10, 1, (i >> 8) as u8, i as u8]);
                    nat::outbound(&mut p, a, 1024 + (i % 50000) as u16).unwrap();
                    p
                })
                .collect();
            for i in 0..n {
                buf.set_range(start, start + 64).unwrap();
                buf.packet_mut().copy_from_slice(&syns[(i % 1024) as usize]);
                let _ = black_box(d.handle_packet(now, &mut buf, lvs::PacketMeta::default()));
                if i % 1024 == 1023 {
                    while d.poll_event().is_some() {}
                    now += std::time::Duration::from_secs(61);
                    d.handle_timeout(now);
                    while d.poll_event().is_some() {}
                }
            }
        }
        other => panic!("unknown kind {other}; one of {KINDS:?}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    match args.as_slice() {
        [kind, n] => run(kind, n.parse().expect("N is a number")),
        _ => {
            for k in KINDS {
                run(k, 1);
            }
        }
    }
}
