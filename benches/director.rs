//! The Director's packet paths in packets per second, each beside a baseline in the same
//! run, and the memory a tracked connection takes (measured from the process's resident
//! set, not computed).
//!
//! - `established_<N>`: a packet of an existing NAT flow (parse, lookup, state update, NAT
//!   rewrite) with N connections in the table; baseline: std `HashMap` + etherparse (parse,
//!   look up, rewrite with full checksum recomputation).
//! - `new_connection`: a SYN from a new client (lookup miss, wlc over 100 servers, insert,
//!   rewrite).
//!
//! `cargo bench --bench director` (`LVS_BENCH_MAX_CONNS=1000000` to skip the 10 million
//! table on a small machine).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lvs::scheduler::{ForwardMethod, RealServerConfig};
use lvs::service::{Protocol, SchedulerName, ServiceConfig, ServiceKey};
use lvs::{Config, Director, Instant, PacketBuf, PacketMeta, Verdict};
use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const BATCH: usize = 1024;
const VIP: [u8; 4] = [192, 0, 2, 1];

fn client(i: u32) -> (IpAddr, u16) {
    (
        IpAddr::from([
            10 + (i >> 22) as u8,
            (i >> 14) as u8,
            (i >> 6) as u8,
            1 + (i & 63) as u8,
        ]),
        1024 + (i % 60000) as u16,
    )
}

/// A 64-byte TCP packet from client `i` to the VIP with `flags`, checksums valid.
fn packet(i: u32, flags: u8) -> [u8; 64] {
    let mut p = lvs::fuzzing::sample_tcp_v4();
    if flags != lvs::wire::tcp::flags::SYN {
        let old = u16::from_be_bytes([p[32], p[33]]);
        p[33] = flags;
        let new = u16::from_be_bytes([p[32], p[33]]);
        let c = lvs::checksum::update16(u16::from_be_bytes([p[36], p[37]]), old, new);
        p[36..38].copy_from_slice(&c.to_be_bytes());
    }
    let (a, port) = client(i);
    lvs::forward::nat::outbound(&mut p, a, port).unwrap();
    p
}

fn director(capacity: usize) -> Director {
    let cfg = Config {
        conn_capacity: capacity,
        ..Config::default()
    };
    let mut d = Director::new(cfg, [1; 32]);
    let mut s = ServiceConfig::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: IpAddr::from(VIP),
        port: 80,
    });
    s.scheduler = SchedulerName::Wlc;
    let id = d.add_service(s).unwrap();
    for r in 0..100u8 {
        let rs = RealServerConfig::new(IpAddr::from([10, 200, 0, r]), 8080)
            .weight(1 + u32::from(r % 5))
            .forward(ForwardMethod::Nat);
        d.add_server(id, rs).unwrap();
    }
    d
}

fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .unwrap_or(0)
        * 4096
}

fn populate(d: &mut Director, n: u32, now: Instant) {
    let mut buf = PacketBuf::with_headroom(64, &[0u8; 64]);
    let start = buf.headroom();
    for i in 0..n {
        buf.set_range(start, start + 64).unwrap();
        buf.packet_mut()
            .copy_from_slice(&packet(i, lvs::wire::tcp::flags::SYN));
        let v = d.handle_packet(now, &mut buf, PacketMeta::default());
        assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
        while d.poll_event().is_some() {}
    }
}

/// What a user writes without this crate: a `HashMap` from the client tuple to the real
/// server, etherparse to parse and to rewrite with full checksum recomputation.
fn baseline_packet(
    table: &mut HashMap<(Ipv4Addr, u16), (Ipv4Addr, u16, u8)>,
    pkt: &mut [u8],
) -> bool {
    let Ok((mut ip, rest)) = etherparse::Ipv4Header::from_slice(pkt) else {
        return false;
    };
    let Ok((mut tcp, payload)) = etherparse::TcpHeader::from_slice(rest) else {
        return false;
    };
    let Some(e) = table.get_mut(&(Ipv4Addr::from(ip.source), tcp.source_port)) else {
        return false;
    };
    e.2 = e.2.wrapping_add(1);
    ip.destination = e.0.octets();
    tcp.destination_port = e.1;
    ip.time_to_live -= 1;
    ip.header_checksum = ip.calc_header_checksum();
    tcp.checksum = tcp.calc_checksum_ipv4(&ip, payload).unwrap();
    let (hl, tl) = (ip.header_len(), tcp.header_len());
    let mut head = [0u8; 120];
    let mut cur = &mut head[..];
    ip.write(&mut cur).unwrap();
    tcp.write(&mut cur).unwrap();
    pkt[..hl + tl].copy_from_slice(&head[..hl + tl]);
    true
}

fn established(c: &mut Criterion) {
    // Under `cargo test` (criterion's test mode, no `--bench`) only the small table runs.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let default = if benchmarking { 10_000_000 } else { 10_000 };
    let max: u32 = std::env::var("LVS_BENCH_MAX_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    for n in [10_000u32, 1_000_000, 10_000_000]
        .into_iter()
        .filter(|&n| n <= max)
    {
        let now = Instant::from_secs(1_000);
        let before = resident_bytes();
        let mut d = director(n as usize + n as usize / 8 + BATCH);
        populate(&mut d, n, now);
        let after = resident_bytes();
        eprintln!(
            "established_{n}: {} connections, resident set grew by {} MiB: {:.1} bytes per connection (incl. the table's spare eighth)",
            d.conns().len(),
            (after - before) >> 20,
            (after - before) as f64 / f64::from(n)
        );
        // Packets of random existing flows.
        let mut x = 0x9e37_79b9_u32;
        let batch: Vec<[u8; 64]> = (0..BATCH)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                packet(x % n, lvs::wire::tcp::flags::ACK)
            })
            .collect();
        let mut g = c.benchmark_group(format!("established_{n}"));
        g.throughput(Throughput::Elements(BATCH as u64));
        let mut buf = PacketBuf::with_headroom(64, &[0u8; 64]);
        let start = buf.headroom();
        g.bench_function(BenchmarkId::new("lvs_director", n), |b| {
            b.iter(|| {
                for p in &batch {
                    buf.set_range(start, start + 64).unwrap();
                    buf.packet_mut().copy_from_slice(p);
                    // By reference: `black_box` of the 48-byte value copies it with wide
                    // loads right after the narrow stores that wrote it, a
                    // store-forwarding stall no embedder (which reads the fields) has.
                    let v = d.handle_packet(now, &mut buf, PacketMeta::default());
                    black_box(&v);
                }
            })
        });
        drop(d);
        let mut table: HashMap<(Ipv4Addr, u16), (Ipv4Addr, u16, u8)> =
            HashMap::with_capacity(n as usize);
        for i in 0..n {
            let (IpAddr::V4(a), p) = client(i) else {
                unreachable!()
            };
            table.insert(
                (a, p),
                (Ipv4Addr::new(10, 200, 0, (i % 100) as u8), 8080, 0),
            );
        }
        let mut scratch = [0u8; 64];
        g.bench_function(BenchmarkId::new("hashmap_etherparse", n), |b| {
            b.iter(|| {
                for p in &batch {
                    scratch.copy_from_slice(p);
                    black_box(baseline_packet(&mut table, &mut scratch));
                }
            })
        });
        g.finish();
    }
}

fn new_connection(c: &mut Criterion) {
    let mut d = director(4 << 20);
    let mut now = Instant::from_secs(1_000);
    let mut next = 0u32;
    let mut buf = PacketBuf::with_headroom(64, &[0u8; 64]);
    let start = buf.headroom();
    let mut g = c.benchmark_group("new_connection");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("lvs_director_wlc_100", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let syns: Vec<[u8; 64]> = (0..BATCH as u32)
                    .map(|k| packet(next + k, lvs::wire::tcp::flags::SYN))
                    .collect();
                next = next.wrapping_add(BATCH as u32) % 4_000_000;
                let t = std::time::Instant::now();
                for p in &syns {
                    buf.set_range(start, start + 64).unwrap();
                    buf.packet_mut().copy_from_slice(p);
                    // By reference: `black_box` of the 48-byte value copies it with wide
                    // loads right after the narrow stores that wrote it, a
                    // store-forwarding stall no embedder (which reads the fields) has.
                    let v = d.handle_packet(now, &mut buf, PacketMeta::default());
                    black_box(&v);
                }
                total += t.elapsed();
                while d.poll_event().is_some() {}
                // Let this batch expire (SYN_RECV lasts 60 s) outside the timed part.
                now += Duration::from_secs(61);
                d.handle_timeout(now);
                while d.poll_event().is_some() {}
            }
            total
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = established, new_connection
}
criterion_main!(benches);
