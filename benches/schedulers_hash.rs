//! Hashing and locality schedulers, picks per second, through `Pool::schedule` (the
//! embedder's path: one dynamic call per pick).
//!
//! `cargo bench --bench schedulers_hash` (add `-- --quick` for a short run). Targets:
//! dh, sh and mh at most 20 ns per pick at every size. Peer crates (maglev, Ketama) are
//! compared in the separate `lvs-peer-benches` package (`benches/peers`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lvs::Instant;
use lvs::scheduler::dh::Dh;
use lvs::scheduler::lblc::Lblc;
use lvs::scheduler::lblcr::Lblcr;
use lvs::scheduler::mh::Mh;
use lvs::scheduler::sh::Sh;
use lvs::scheduler::{Pool, RealServerConfig, SchedInput, Scheduler};
use std::hint::black_box;
use std::net::IpAddr;

/// Builds a fresh scheduler.
type Maker = Box<dyn Fn() -> Box<dyn Scheduler>>;

/// Picks per iteration.
const BATCH: usize = 1024;

fn inputs() -> Vec<SchedInput> {
    (0..BATCH as u32)
        .map(|i| SchedInput {
            protocol: 6,
            // Distinct clients (sh, mh) and distinct destinations (dh, lblc, lblcr).
            src: IpAddr::from(
                (0xc633_0000u32.wrapping_add(i.wrapping_mul(2_654_435_761))).to_be_bytes(),
            ),
            dst: IpAddr::from((0x0a80_0000u32 + i * 7).to_be_bytes()),
            src_port: 1024 + i as u16,
            dst_port: 80,
            fwmark: 0,
        })
        .collect()
}

fn pool(sched: Box<dyn Scheduler>, n: u32) -> Pool {
    let mut p = Pool::new(sched);
    for i in 0..n {
        let addr = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
        p.add(RealServerConfig::new(addr, 8080).weight(1 + i % 4))
            .expect("distinct servers");
    }
    p
}

fn schedulers(c: &mut Criterion) {
    let inputs = inputs();
    let now = Instant::from_secs(1);
    let mut g = c.benchmark_group("hash_schedulers");
    g.throughput(Throughput::Elements(BATCH as u64));
    for n in [3u32, 100, 10_000] {
        // mh's kernel default table (4093) holds at most 4093 servers.
        let mh_size = if n > 4093 { 16381 } else { 4093 };
        let makers: [(&str, Maker); 6] = [
            ("dh", Box::new(|| Box::new(Dh::new()))),
            ("sh", Box::new(|| Box::new(Sh::new(false, false)))),
            ("sh-port", Box::new(|| Box::new(Sh::new(true, true)))),
            (
                "mh",
                Box::new(move || Box::new(Mh::new(false, false).with_table_size(mh_size).unwrap())),
            ),
            ("lblc", Box::new(|| Box::new(Lblc::new()))),
            ("lblcr", Box::new(|| Box::new(Lblcr::new()))),
        ];
        for (name, make) in &makers {
            let mut p = pool(make(), n);
            // Warm the locality caches: lblc/lblcr then measure hits, as in steady state.
            for i in &inputs {
                black_box(p.schedule(i, now));
            }
            g.bench_with_input(BenchmarkId::new(*name, n), &n, |b, _| {
                b.iter(|| {
                    for i in &inputs {
                        black_box(p.schedule(black_box(i), now));
                    }
                });
            });
        }
    }
    g.finish();
}

criterion_group!(benches, schedulers);
criterion_main!(benches);
