//! Scheduler picks per second, at 3, 100 and 10,000 real servers with varied weights and
//! loads; at 10,000 servers the least-connection family next to the kernel's linear scan
//! in the same group.
//!
//! `cargo bench --bench schedulers` (add `-- --quick` for a short run).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lvs::Instant;
use lvs::scheduler::slow_start::SlowStart;
use lvs::scheduler::{
    DestId, DestList, Pool, RealServerConfig, SchedInput, Scheduler, fo, lc, nq, ovf, rr, sed,
    twos, wlc, wrr,
};
use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

const SIZES: [usize; 3] = [3, 100, 10_000];

fn input() -> SchedInput {
    SchedInput {
        protocol: 6,
        src: IpAddr::from([192, 0, 2, 7]),
        dst: IpAddr::from([198, 51, 100, 1]),
        src_port: 40000,
        dst_port: 80,
        fwmark: 0,
    }
}

/// A pool of `n` servers scheduled by `sched`: weights 1 to 100, active 0 to 499 and
/// inactive 0 to 1999 connections from a fixed pseudo-random sequence, so picks are
/// neither all ties nor trivial.
fn build_pool(sched: Box<dyn Scheduler>, n: usize) -> Pool {
    let mut p = Pool::new(Box::new(rr::Rr::new()));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..n {
        let addr = IpAddr::from((0x0a00_0000u32 + i as u32).to_be_bytes());
        let w = 1 + (next() % 100) as u32;
        let id = p.add(RealServerConfig::new(addr, 80).weight(w)).unwrap();
        let (a, b) = ((next() % 500) as u32, (next() % 2000) as u32);
        p.set_counters(id, a, b, 0).unwrap();
    }
    // One scheduler notification pass, as a service whose scheduler is set.
    p.set_scheduler(sched);
    p
}

type Make = fn() -> Box<dyn Scheduler>;

fn schedulers() -> Vec<(&'static str, Make)> {
    vec![
        ("rr", || Box::new(rr::Rr::new())),
        ("wrr", || Box::new(wrr::Wrr::new())),
        ("lc", || Box::new(lc::Lc::new())),
        ("wlc", || Box::new(wlc::Wlc::new())),
        ("sed", || Box::new(sed::Sed::new())),
        ("nq", || Box::new(nq::Nq::new())),
        ("fo", || Box::new(fo::Fo::new())),
        ("ovf", || Box::new(ovf::Ovf::new())),
        ("twos", || Box::new(twos::Twos::new(1))),
        ("slow_start_wlc", || {
            Box::new(SlowStart::new(wlc::Wlc::new(), Duration::from_secs(30)))
        }),
    ]
}

type Linear = fn(&DestList) -> Option<DestId>;

fn linear(name: &str) -> Option<Linear> {
    match name {
        "lc" => Some(lc::linear_scan),
        "wlc" => Some(wlc::linear_scan),
        "sed" => Some(sed::linear_scan),
        "nq" => Some(nq::linear_scan),
        _ => None,
    }
}

fn picks(c: &mut Criterion) {
    let input = input();
    for (name, make) in schedulers() {
        let mut g = c.benchmark_group(format!("pick_{name}"));
        g.throughput(Throughput::Elements(1));
        for n in SIZES {
            let mut pool = build_pool(make(), n);
            // Time moves on, so slow start's ramps are live for the first picks.
            let mut now = Instant::ZERO;
            g.bench_with_input(BenchmarkId::new("lvs", n), &n, |b, _| {
                b.iter(|| {
                    now += Duration::from_micros(1);
                    black_box(pool.schedule(black_box(&input), now))
                });
            });
            if let (Some(scan), 10_000) = (linear(name), n) {
                assert_eq!(scan(pool.dests()), pool.schedule(&input, now));
                g.bench_with_input(BenchmarkId::new("linear_scan", n), &n, |b, _| {
                    b.iter(|| black_box(scan(black_box(pool.dests()))));
                });
            }
        }
        g.finish();
    }
}

/// A pick followed by the connection's bind and unbind through the pool (the tree's
/// O(log n) update; the pool's own O(n) lookup of the server by handle is included).
fn pick_bind(c: &mut Criterion) {
    let input = input();
    let mut g = c.benchmark_group("pick_bind_unbind_wlc");
    g.throughput(Throughput::Elements(1));
    for n in SIZES {
        let mut pool = build_pool(Box::new(wlc::Wlc::new()), n);
        g.bench_with_input(BenchmarkId::new("lvs", n), &n, |b, _| {
            b.iter(|| {
                let id = pool.schedule(black_box(&input), Instant::ZERO).unwrap();
                pool.bind(id, lvs::scheduler::ConnCount::Active).unwrap();
                pool.unbind(id, lvs::scheduler::ConnCount::Active).unwrap();
                black_box(id)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, picks, pick_bind);
criterion_main!(benches);
