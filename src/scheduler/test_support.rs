//! Helpers for the schedulers' tests: pools whose servers are named `A`, `B`, ... in add
//! order, and pick sequences written as those letters (`-` for no server).

use super::{DestId, Pool, RealServerConfig, SchedInput, Scheduler};
use crate::time::Instant;
use core::net::IpAddr;

/// Address of the `i`-th test server.
pub(crate) fn addr(i: usize) -> IpAddr {
    let i = u32::try_from(i).unwrap();
    IpAddr::from((0x0a00_0000u32 + i + 1).to_be_bytes())
}

/// A TCP connection to the virtual service.
pub(crate) fn input() -> SchedInput {
    SchedInput {
        protocol: 6,
        src: IpAddr::from([192, 0, 2, 7]),
        dst: IpAddr::from([198, 51, 100, 1]),
        src_port: 40000,
        dst_port: 80,
        fwmark: 0,
    }
}

/// A pool scheduled by `sched` with servers of `weights` added in order (`A` first, so
/// the kernel's list reads `..., B, A`).
pub(crate) fn pool<S: Scheduler + 'static>(sched: S, weights: &[u32]) -> (Pool, Vec<DestId>) {
    let mut p = Pool::new(Box::new(sched));
    let ids = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| p.add(RealServerConfig::new(addr(i), 80).weight(w)).unwrap())
        .collect();
    (p, ids)
}

/// Adds one more server of weight `w` (named by its index in `ids`).
pub(crate) fn add(p: &mut Pool, ids: &mut Vec<DestId>, w: u32) -> DestId {
    let id = p
        .add(RealServerConfig::new(addr(ids.len()), 80).weight(w))
        .unwrap();
    ids.push(id);
    id
}

/// The letter of a pick.
pub(crate) fn letter(ids: &[DestId], pick: Option<DestId>) -> char {
    match pick {
        None => '-',
        Some(id) => {
            let i = ids.iter().position(|&x| x == id).expect("unknown server");
            char::from(b'A' + u8::try_from(i).unwrap())
        }
    }
}

/// `n` picks at time zero, as letters.
pub(crate) fn picks(p: &mut Pool, ids: &[DestId], n: usize) -> String {
    picks_at(p, ids, n, Instant::ZERO)
}

/// `n` picks at `now`, as letters.
pub(crate) fn picks_at(p: &mut Pool, ids: &[DestId], n: usize, now: Instant) -> String {
    (0..n)
        .map(|_| letter(ids, p.schedule(&input(), now)))
        .collect()
}

/// A pool scheduled by `sched` with servers of `(weight, upper, lower)` added in order.
pub(crate) fn pool_thr<S: Scheduler + 'static>(
    sched: S,
    servers: &[(u32, u32, u32)],
) -> (Pool, Vec<DestId>) {
    let mut p = Pool::new(Box::new(sched));
    let ids = servers
        .iter()
        .enumerate()
        .map(|(i, &(w, u, l))| {
            p.add(
                RealServerConfig::new(addr(i), 80)
                    .weight(w)
                    .thresholds(u, l),
            )
            .unwrap()
        })
        .collect();
    (p, ids)
}

/// Sets `(active, inactive)` on every server, in add order.
pub(crate) fn load(p: &mut Pool, ids: &[DestId], loads: &[(u32, u32)]) {
    for (&id, &(a, i)) in ids.iter().zip(loads) {
        p.set_counters(id, a, i, 0).unwrap();
    }
}

/// `n` picks, each counted as a new active connection on the server picked.
pub(crate) fn picks_binding(p: &mut Pool, ids: &[DestId], n: usize) -> String {
    (0..n)
        .map(|_| {
            let pick = p.schedule(&input(), Instant::ZERO);
            if let Some(id) = pick {
                p.bind(id, super::ConnCount::Active).unwrap();
            }
            letter(ids, pick)
        })
        .collect()
}

/// A TCP SYN from 198.51.100.1:1234 to `dst`:80 (locality schedulers key on `dst`).
pub(crate) fn input_to(dst: [u8; 4]) -> SchedInput {
    SchedInput {
        protocol: 6,
        src: IpAddr::from([198, 51, 100, 1]),
        dst: IpAddr::from(dst),
        src_port: 1234,
        dst_port: 80,
        fwmark: 0,
    }
}

/// A TCP SYN from `src`:`port` to 192.0.2.100:80 (source-hash schedulers key on `src`).
pub(crate) fn input_from(src: &str, port: u16) -> SchedInput {
    SchedInput {
        protocol: 6,
        src: src.parse().unwrap(),
        dst: IpAddr::from([192, 0, 2, 100]),
        src_port: port,
        dst_port: 80,
        fwmark: 0,
    }
}

/// An instant `s` seconds after the epoch.
pub(crate) fn secs(s: i64) -> Instant {
    Instant::from_secs(s)
}

/// A bare list (no scheduler hooks) of servers 10.0.0.1.. with `weights`, added in order.
pub(crate) fn list(weights: &[u32]) -> (super::DestList, Vec<DestId>) {
    let mut l = super::DestList::default();
    let ids = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            l.add(RealServerConfig::new(IpAddr::from([10, 0, 0, i as u8 + 1]), 80).weight(w))
                .unwrap()
        })
        .collect();
    (l, ids)
}
