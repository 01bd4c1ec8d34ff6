//! lvs's Maglev tables beside peer crates.
//!
//! `cargo bench -p lvs-peer-benches` (add `-- --quick` for a short run).
//! - `maglev_build/1000x65537`: table build for 1000 servers, M = 65537: lvs's canonical
//!   weighted Maglev, lvs's IPVS `mh` (M = 65521, the nearest kernel prime) and the
//!   `maglev` crate (which precomputes every server's full permutation: ~0.5 GB and a
//!   slow build, hence the small sample).
//! - `lookup`: 1024 client keys through lvs `mh` (kernel hsiphash lookup), lvs weighted
//!   Maglev, the `maglev` crate and pingora's Ketama ring (`pingora-ketama`, the
//!   `Continuum` behind `pingora-load-balancing`'s `KetamaHashing`).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lvs::Instant;
use lvs::scheduler::maglev::{Backend, MaglevKey, MaglevTable};
use lvs::scheduler::mh::Mh;
use lvs::scheduler::{Pool, RealServerConfig, SchedInput};
use maglev::ConsistentHasher;
use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};

const SERVERS: u32 = 1000;
const M: u32 = 65537;
const KEYS: usize = 1024;

fn server(i: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::from((0x0a00_0000u32 + i).to_be_bytes()), 8080)
}

fn backends() -> Vec<Backend> {
    (0..SERVERS)
        .map(|i| Backend::new(server(i).ip(), 8080, 1))
        .collect()
}

fn clients() -> Vec<IpAddr> {
    (0..KEYS as u32)
        .map(|i| {
            IpAddr::from(
                0xc633_0000u32
                    .wrapping_add(i.wrapping_mul(2_654_435_761))
                    .to_be_bytes(),
            )
        })
        .collect()
}

fn mh_pool(m: u32) -> Pool {
    let mut p = Pool::new(Box::new(Mh::new(false, false).with_table_size(m).unwrap()));
    for i in 0..SERVERS {
        p.add(RealServerConfig::new(server(i).ip(), 8080)).unwrap();
    }
    p
}

fn build(c: &mut Criterion) {
    let bs = backends();
    let nodes: Vec<SocketAddr> = (0..SERVERS).map(server).collect();
    let mut g = c.benchmark_group("maglev_build");
    g.sample_size(10);
    let id = format!("{SERVERS}x{M}");
    g.bench_function(BenchmarkId::new("lvs_maglev", &id), |b| {
        b.iter(|| MaglevTable::build(black_box(&bs), M, MaglevKey::default()).unwrap());
    });
    let pool = mh_pool(65521);
    g.bench_function(BenchmarkId::new("lvs_mh_65521", &id), |b| {
        let mut s = Mh::new(false, false).with_table_size(65521).unwrap();
        b.iter(|| s.rebuild(black_box(pool.dests())).unwrap());
    });
    g.bench_function(BenchmarkId::new("maglev_crate", &id), |b| {
        b.iter(|| maglev::Maglev::with_capacity(black_box(nodes.clone()), M as usize));
    });
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let keys = clients();
    let key_bytes: Vec<[u8; 4]> = keys
        .iter()
        .map(|a| match a {
            IpAddr::V4(v) => v.octets(),
            IpAddr::V6(_) => unreachable!(),
        })
        .collect();
    let now = Instant::from_secs(1);
    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(KEYS as u64));

    let mut mh = mh_pool(65521);
    let inputs: Vec<SchedInput> = keys
        .iter()
        .map(|&src| SchedInput {
            protocol: 6,
            src,
            dst: IpAddr::from([192, 0, 2, 1]),
            src_port: 40000,
            dst_port: 80,
            fwmark: 0,
        })
        .collect();
    g.bench_function("lvs_mh_pool", |b| {
        b.iter(|| {
            for i in &inputs {
                black_box(mh.schedule(black_box(i), now));
            }
        });
    });

    let table = MaglevTable::build(&backends(), M, MaglevKey::default()).unwrap();
    g.bench_function("lvs_maglev_table", |b| {
        b.iter(|| {
            for &k in &keys {
                black_box(table.lookup(black_box(k), None));
            }
        });
    });

    let nodes: Vec<SocketAddr> = (0..SERVERS).map(server).collect();
    let peer = maglev::Maglev::with_capacity(nodes.clone(), M as usize);
    g.bench_function("maglev_crate", |b| {
        b.iter(|| {
            for k in &keys {
                black_box(peer.get(black_box(k)));
            }
        });
    });

    let buckets: Vec<pingora_ketama::Bucket> = nodes
        .iter()
        .map(|&n| pingora_ketama::Bucket::new(n, 1))
        .collect();
    let ring = pingora_ketama::Continuum::new(&buckets);
    g.bench_function("pingora_ketama", |b| {
        b.iter(|| {
            for k in &key_bytes {
                black_box(ring.node(black_box(k)));
            }
        });
    });
    g.finish();
}

criterion_group!(benches, build, lookup);
criterion_main!(benches);
