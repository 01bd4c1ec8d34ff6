//! Packet rewrites, packets per second, each beside its baseline in the same run.
//!
//! `cargo bench --bench rewrite` (add `-- --quick` for a short run). Figures live in
//! BENCHMARKS.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::IpAddr;

/// Packets per iteration: 64 KiB of 64-byte packets, resident in L2 like a NIC ring batch.
const BATCH: usize = 1024;

fn tcp_batch() -> Vec<[u8; 64]> {
    (0..BATCH)
        .map(|i| {
            let mut p = lvs::fuzzing::sample_tcp_v4();
            // Distinct clients, so nothing is constant across packets.
            let client = IpAddr::from([198, 51, (i >> 8) as u8, i as u8]);
            lvs::forward::nat::outbound(&mut p, client, 40000 + i as u16).unwrap();
            p
        })
        .collect()
}

/// What a user without this crate writes: parse with etherparse, set the fields, recompute
/// every checksum in full, write the headers back.
fn etherparse_dnat(pkt: &mut [u8], rip: [u8; 4], rport: u16) {
    let (mut ip, rest) = etherparse::Ipv4Header::from_slice(pkt).unwrap();
    let (mut tcp, payload) = etherparse::TcpHeader::from_slice(rest).unwrap();
    ip.destination = rip;
    tcp.destination_port = rport;
    ip.header_checksum = ip.calc_header_checksum();
    tcp.checksum = tcp.calc_checksum_ipv4(&ip, payload).unwrap();
    let ip_len = ip.header_len();
    let tcp_len = tcp.header_len();
    let mut head = [0u8; 120];
    let mut cur = &mut head[..];
    ip.write(&mut cur).unwrap();
    tcp.write(&mut cur).unwrap();
    pkt[..ip_len + tcp_len].copy_from_slice(&head[..ip_len + tcp_len]);
}

fn nat(c: &mut Criterion) {
    let rips: [IpAddr; 2] = [IpAddr::from([10, 0, 0, 2]), IpAddr::from([10, 0, 0, 3])];
    let mut g = c.benchmark_group("nat_inbound_ipv4_tcp_64B");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut pkts = tcp_batch();
    let mut flip = 0usize;
    g.bench_function("lvs", |b| {
        b.iter(|| {
            flip ^= 1;
            for p in pkts.iter_mut() {
                lvs::forward::nat::inbound(black_box(&mut p[..]), rips[flip], 8080 + flip as u16)
                    .unwrap();
            }
        })
    });
    let mut pkts = tcp_batch();
    g.bench_function("etherparse_full_recompute", |b| {
        b.iter(|| {
            flip ^= 1;
            for p in pkts.iter_mut() {
                etherparse_dnat(
                    black_box(&mut p[..]),
                    [10, 0, 0, 2 + flip as u8],
                    8080 + flip as u16,
                );
            }
        })
    });
    g.finish();
}

criterion_group!(benches, nat);
criterion_main!(benches);
