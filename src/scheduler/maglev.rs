//! A canonical weighted Maglev table (not an IPVS scheduler: [`super::mh`] is IPVS's).
//!
//! IPVS's `mh` fills its table in the service's list order, so two directors given the
//! same servers in a different order disagree. Here the table depends only on the *set*
//! of servers and their weights:
//!
//! - servers are sorted by `(address, port)` before anything else;
//! - each server's permutation (`offset`, `skip`) comes from a keyed SipHash-1-3 of its
//!   identity (family, address, port), not from its position;
//! - weighted filling is a deterministic weighted round-robin: in round `r` every server
//!   adds its weight to a credit and claims one slot when the credit reaches the largest
//!   weight `W` (so its claim `c` falls in round `⌈(c+1)·W/w⌉ - 1`), servers taking turns
//!   in canonical order within a round (with equal weights this is plain Maglev
//!   round-robin);
//! - servers of weight 0 take no slot.
//!
//! So two directors configured in any order, with the same [`MaglevKey`], map every key
//! to the same server. The build allocates the table, a bitset and three `u32` arrays
//! per server once, nothing per slot.

use super::hash::Slot;
use super::{DestId, DestList, PoolError, SchedInput, Scheduler};
use crate::scheduler::dest::MAX_WEIGHT;
use crate::siphash::siphash13;
use crate::time::Instant;
use crate::wire::proto;
use core::net::IpAddr;
use std::collections::BinaryHeap;

/// Default table size: a prime well above 100 × a thousand servers' worth of slots.
pub const MAGLEV_DEFAULT_SIZE: u32 = 65537;

const EMPTY: u32 = u32::MAX;

/// The SipHash key for server permutations and client keys. Directors that must agree
/// use the same key; the default is a fixed constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaglevKey {
    /// First key word.
    pub k0: u64,
    /// Second key word.
    pub k1: u64,
}

impl Default for MaglevKey {
    fn default() -> Self {
        Self {
            k0: 0x6c76_735f_6d61_676c,
            k1: 0x6576_5f74_6162_6c65,
        }
    }
}

/// A server as the table sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backend {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Weight, 0 to 65535 (0: no slots).
    pub weight: u32,
}

impl Backend {
    /// A backend.
    #[must_use]
    pub const fn new(addr: IpAddr, port: u16, weight: u32) -> Self {
        Self { addr, port, weight }
    }

    fn canonical_key(&self) -> (IpAddr, u16) {
        (self.addr, self.port)
    }
}

/// Family tag, address and optional port as bytes (at most 1 + 16 + 2).
fn identity_bytes(addr: IpAddr, port: Option<u16>, buf: &mut [u8; 19]) -> usize {
    let mut n = match addr {
        IpAddr::V4(a) => {
            buf[0] = 4;
            buf[1..5].copy_from_slice(&a.octets());
            5
        }
        IpAddr::V6(a) => {
            buf[0] = 6;
            buf[1..17].copy_from_slice(&a.octets());
            17
        }
    };
    if let Some(p) = port {
        buf[n..n + 2].copy_from_slice(&p.to_be_bytes());
        n += 2;
    }
    n
}

fn is_prime(m: u32) -> bool {
    if m < 2 {
        return false;
    }
    let mut d = 2u32;
    while u64::from(d) * u64::from(d) <= u64::from(m) {
        if m.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

/// A weighted Maglev lookup table over a canonical server set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaglevTable {
    m: u32,
    key: MaglevKey,
    backends: Vec<Backend>,
    lookup: Vec<u32>,
}

/// How to order weighted claims (all give the same table; tests force each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    Auto,
    #[cfg_attr(not(test), allow(dead_code))]
    Rounds,
    #[cfg_attr(not(test), allow(dead_code))]
    Heap,
}

#[inline(always)]
fn claim(taken: &mut [u64], next: &mut u32, skip: u32, m: u32) -> u32 {
    let mut c = *next;
    while (taken[(c >> 6) as usize] >> (c & 63)) & 1 != 0 {
        c += skip;
        if c >= m {
            c -= m;
        }
    }
    taken[(c >> 6) as usize] |= 1u64 << (c & 63);
    let mut n = c + skip;
    if n >= m {
        n -= m;
    }
    *next = n;
    c
}

impl MaglevTable {
    /// Builds the table of size `m` (a prime) for `backends`, in any order.
    ///
    /// # Errors
    /// [`PoolError::Range`] if `m` is not a prime or a weight exceeds 65535;
    /// [`PoolError::Exists`] for two backends with the same address and port;
    /// [`PoolError::TooMany`] for more weighted backends than slots.
    pub fn build(backends: &[Backend], m: u32, key: MaglevKey) -> Result<Self, PoolError> {
        if !is_prime(m) || backends.iter().any(|b| b.weight > MAX_WEIGHT) {
            return Err(PoolError::Range);
        }
        let mut sorted = backends.to_vec();
        sorted.sort_unstable_by_key(Backend::canonical_key);
        if sorted
            .windows(2)
            .any(|w| w[0].canonical_key() == w[1].canonical_key())
        {
            return Err(PoolError::Exists);
        }
        let active: Vec<u32> = (0..sorted.len() as u32)
            .filter(|&i| sorted[i as usize].weight > 0)
            .collect();
        if active.len() > m as usize {
            return Err(PoolError::TooMany);
        }
        let mut lookup = vec![EMPTY; m as usize];
        if !active.is_empty() {
            Self::fill(&sorted, &active, m, &key, &mut lookup, Fill::Auto);
        }
        Ok(Self {
            m,
            key,
            backends: sorted,
            lookup,
        })
    }

    fn fill(
        sorted: &[Backend],
        active: &[u32],
        m: u32,
        key: &MaglevKey,
        lookup: &mut [u32],
        mode: Fill,
    ) {
        let n = active.len();
        let mut next = Vec::with_capacity(n);
        let mut skip = Vec::with_capacity(n);
        let mut buf = [0u8; 19];
        for &i in active {
            let b = &sorted[i as usize];
            let len = identity_bytes(b.addr, Some(b.port), &mut buf);
            let h = siphash13(&buf[..len], key.k0, key.k1);
            next.push((h as u32) % m);
            skip.push(((h >> 32) as u32) % (m - 1) + 1);
        }
        let mut taken = vec![0u64; (m as usize).div_ceil(64)];
        let w0 = sorted[active[0] as usize].weight;
        let mut filled = 0u32;
        if mode == Fill::Auto && active.iter().all(|&i| sorted[i as usize].weight == w0) {
            // Equal weights: every server claims once per round, in canonical order.
            'rounds: loop {
                for k in 0..n {
                    let c = claim(&mut taken, &mut next[k], skip[k], m);
                    lookup[c as usize] = active[k];
                    filled += 1;
                    if filled == m {
                        break 'rounds;
                    }
                }
            }
        } else {
            let weights: Vec<u64> = active
                .iter()
                .map(|&i| u64::from(sorted[i as usize].weight))
                .collect();
            let w_max = weights.iter().copied().max().unwrap_or(1);
            let w_sum: u64 = weights.iter().sum();
            // Rounds needed ≈ M·W/Σw; each costs one pass over the servers.
            let rounds = u64::from(m) * w_max / w_sum + 2;
            if mode == Fill::Rounds
                || (mode == Fill::Auto && rounds * n as u64 <= 16 * u64::from(m))
            {
                // Round r: each server adds its weight to its credit and claims once when
                // the credit reaches W (so claim c falls in round ceil((c+1)·W/w) - 1).
                let mut credit = vec![0u64; n];
                'weighted: loop {
                    for k in 0..n {
                        credit[k] += weights[k];
                        if credit[k] >= w_max {
                            credit[k] -= w_max;
                            let c = claim(&mut taken, &mut next[k], skip[k], m);
                            lookup[c as usize] = active[k];
                            filled += 1;
                            if filled == m {
                                break 'weighted;
                            }
                        }
                    }
                }
            } else {
                // Very skewed weights: the same order, (round, canonical index), from a
                // heap keyed by each server's next round.
                let round_of = |c: u64, w: u64| ((c + 1) * w_max).div_ceil(w) - 1;
                let mut claims = vec![0u64; n];
                let mut heap: BinaryHeap<core::cmp::Reverse<(u64, u32)>> = (0..n)
                    .map(|k| core::cmp::Reverse((round_of(0, weights[k]), k as u32)))
                    .collect();
                while filled < m {
                    let Some(mut top) = heap.peek_mut() else {
                        break;
                    };
                    let k = top.0.1 as usize;
                    let c = claim(&mut taken, &mut next[k], skip[k], m);
                    lookup[c as usize] = active[k];
                    filled += 1;
                    claims[k] += 1;
                    top.0.0 = round_of(claims[k], weights[k]);
                }
            }
        }
    }

    /// Table size.
    #[must_use]
    pub fn size(&self) -> u32 {
        self.m
    }

    /// The key the table was built with.
    #[must_use]
    pub fn key(&self) -> MaglevKey {
        self.key
    }

    /// The backends in canonical order (weight-0 ones included).
    #[must_use]
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// Index (into [`MaglevTable::backends`]) of the backend owning slot `i`.
    #[must_use]
    #[inline]
    pub fn slot(&self, i: usize) -> Option<usize> {
        match self.lookup.get(i) {
            Some(&v) if v != EMPTY => Some(v as usize),
            _ => None,
        }
    }

    /// How many slots each backend owns, in canonical order.
    #[must_use]
    pub fn slot_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.backends.len()];
        for &v in &self.lookup {
            if v != EMPTY {
                c[v as usize] += 1;
            }
        }
        c
    }

    /// The 64-bit key hash of a client address and optional port.
    #[must_use]
    #[inline]
    pub fn key_hash(&self, addr: IpAddr, port: Option<u16>) -> u64 {
        let mut buf = [0u8; 19];
        let len = identity_bytes(addr, port, &mut buf);
        siphash13(&buf[..len], self.key.k0 ^ 0x6b65_7973, self.key.k1)
    }

    /// The slot a key hash falls in (multiply-shift range reduction of its low 32 bits).
    #[must_use]
    #[inline]
    pub fn slot_of_hash(&self, h: u64) -> usize {
        ((u64::from(h as u32) * u64::from(self.m)) >> 32) as usize
    }

    /// The backend a client maps to.
    #[must_use]
    #[inline]
    pub fn lookup(&self, addr: IpAddr, port: Option<u16>) -> Option<&Backend> {
        let i = self.slot(self.slot_of_hash(self.key_hash(addr, port)))?;
        self.backends.get(i)
    }

    /// The identity (address, port) of the backend owning slot `i`.
    fn identity(&self, i: usize) -> Option<(IpAddr, u16)> {
        self.slot(i).map(|b| self.backends[b].canonical_key())
    }
}

/// The fraction of keys whose server changed between two tables.
///
/// Tables of the same size are compared slot by slot (every slot is an equal share of
/// the key space). Tables of different sizes are compared over a fixed sample of 65536
/// client keys (IPv4 addresses `10.x.y.z` spread over the space, hashed with `a`'s key).
#[must_use]
pub fn remapped_fraction(a: &MaglevTable, b: &MaglevTable) -> f64 {
    if a.m == b.m && a.key == b.key {
        let moved = (0..a.m as usize)
            .filter(|&i| a.identity(i) != b.identity(i))
            .count();
        return moved as f64 / f64::from(a.m);
    }
    const SAMPLE: u32 = 1 << 16;
    let moved = (0..SAMPLE)
        .filter(|&k| {
            let addr = IpAddr::from((0x0a00_0000 | k.wrapping_mul(0x9e37)).to_be_bytes());
            let id = |t: &MaglevTable| t.lookup(addr, None).map(Backend::canonical_key);
            id(a) != id(b)
        })
        .count();
    moved as f64 / f64::from(SAMPLE)
}

/// A scheduler over a [`MaglevTable`] of the pool's servers (current weights; a
/// quiesced server gives up its slots), keyed by the client address and, with `port`,
/// its source port for TCP, UDP and SCTP.
///
/// With `fallback`, a client whose server is overloaded goes to the next slot's server
/// that is available (probing at most the whole table). The table is rebuilt on every
/// add, edit and remove; a list with more servers than slots keeps the previous table.
#[derive(Debug, Clone)]
pub struct Maglev {
    table: MaglevTable,
    ids: Vec<Slot>,
    port: bool,
    fallback: bool,
}

impl Maglev {
    /// A scheduler with a table of size `m` (a prime) and `key`.
    ///
    /// # Errors
    /// [`PoolError::Range`] if `m` is not a prime.
    pub fn new(m: u32, key: MaglevKey, port: bool, fallback: bool) -> Result<Self, PoolError> {
        Ok(Self {
            table: MaglevTable::build(&[], m, key)?,
            ids: Vec::new(),
            port,
            fallback,
        })
    }

    /// The current table.
    #[must_use]
    pub fn table(&self) -> &MaglevTable {
        &self.table
    }

    /// Rebuilds the table from the list.
    ///
    /// # Errors
    /// As [`MaglevTable::build`]; the previous table stays.
    pub fn rebuild(&mut self, dests: &DestList) -> Result<(), PoolError> {
        let mut rows: Vec<(Backend, Slot)> = dests
            .iter()
            .enumerate()
            .map(|(pos, d)| {
                (
                    Backend::new(d.addr(), d.port(), d.weight()),
                    Slot::new(pos, d.id()),
                )
            })
            .collect();
        let backends: Vec<Backend> = rows.iter().map(|r| r.0).collect();
        let table = MaglevTable::build(&backends, self.table.m, self.table.key)?;
        rows.sort_unstable_by_key(|r| r.0.canonical_key());
        self.ids = rows.into_iter().map(|r| r.1).collect();
        self.table = table;
        Ok(())
    }

    fn available_at(&self, dests: &DestList, slot: usize) -> Option<DestId> {
        let b = self.table.slot(slot)?;
        let d = self.ids.get(b)?.resolve(dests)?;
        (d.weight() > 0 && !d.is_overloaded()).then_some(d.id())
    }
}

impl Scheduler for Maglev {
    fn name(&self) -> &'static str {
        "maglev"
    }

    fn schedule(&mut self, dests: &DestList, input: &SchedInput, _now: Instant) -> Option<DestId> {
        let port = (self.port && matches!(input.protocol, proto::TCP | proto::UDP | proto::SCTP))
            .then_some(input.src_port);
        let h = self.table.key_hash(input.src, port);
        let first = self.table.slot_of_hash(h);
        self.table.slot(first)?;
        if let Some(id) = self.available_at(dests, first) {
            return Some(id);
        }
        if !self.fallback {
            return None;
        }
        let m = self.table.m as usize;
        (1..m).find_map(|k| self.available_at(dests, (first + k) % m))
    }

    fn dest_added(&mut self, dests: &DestList, _id: DestId) {
        let _ = self.rebuild(dests);
    }

    fn dest_updated(&mut self, dests: &DestList, _id: DestId) {
        let _ = self.rebuild(dests);
    }

    fn dest_removed(&mut self, dests: &DestList, _id: DestId) {
        let _ = self.rebuild(dests);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::{ConnCount, Pool, RealServerConfig};
    use proptest::prelude::*;

    fn v4(i: u32) -> IpAddr {
        IpAddr::from((0x0a10_0000 + i).to_be_bytes())
    }

    fn equal(n: u32) -> Vec<Backend> {
        (0..n).map(|i| Backend::new(v4(i), 80, 1)).collect()
    }

    #[test]
    fn errors_and_empty() {
        let k = MaglevKey::default();
        assert_eq!(
            MaglevTable::build(&equal(2), 65536, k),
            Err(PoolError::Range)
        );
        assert_eq!(MaglevTable::build(&equal(2), 1, k), Err(PoolError::Range));
        let mut dup = equal(2);
        dup.push(dup[0]);
        assert_eq!(MaglevTable::build(&dup, 251, k), Err(PoolError::Exists));
        assert_eq!(
            MaglevTable::build(&equal(252), 251, k),
            Err(PoolError::TooMany)
        );
        assert!(MaglevTable::build(&equal(251), 251, k).is_ok());
        let heavy = [Backend::new(v4(0), 80, 65536)];
        assert_eq!(MaglevTable::build(&heavy, 251, k), Err(PoolError::Range));
        let t = MaglevTable::build(&[], 251, k).unwrap();
        assert_eq!(t.lookup(v4(9), None), None);
        let zero = [Backend::new(v4(0), 80, 0)];
        let t = MaglevTable::build(&zero, 251, k).unwrap();
        assert_eq!(t.lookup(v4(9), None), None);
        assert_eq!(t.slot_counts(), [0]);
    }

    #[test]
    fn weights_share_slots_in_proportion() {
        let k = MaglevKey::default();
        let bs = [
            Backend::new(v4(1), 80, 1),
            Backend::new(v4(2), 80, 2),
            Backend::new(v4(3), 80, 0),
            Backend::new(v4(4), 443, 7),
        ];
        let t = MaglevTable::build(&bs, 65521, k).unwrap();
        let c = t.slot_counts();
        let total: u32 = bs.iter().map(|b| b.weight).sum();
        for (b, &n) in t.backends().iter().zip(&c) {
            let ideal = 65521.0 * f64::from(b.weight) / f64::from(total);
            assert!((n as f64 - ideal).abs() <= 2.0, "{b:?}: {n} vs {ideal}");
        }
        assert_eq!(c.iter().sum::<usize>(), 65521);
    }

    #[test]
    fn equal_weights_take_the_round_robin_path_exactly() {
        let bs = equal(37);
        let t = MaglevTable::build(&bs, 4099, MaglevKey::default()).unwrap();
        let active: Vec<u32> = (0..37).collect();
        for mode in [Fill::Rounds, Fill::Heap] {
            let mut other = vec![EMPTY; 4099];
            MaglevTable::fill(&t.backends, &active, 4099, &t.key, &mut other, mode);
            assert_eq!(other, t.lookup, "{mode:?}");
        }
        // Weighted: the round-robin credits and the heap of next rounds agree.
        let bs: Vec<Backend> = (0..50)
            .map(|i| Backend::new(v4(i), 80, 1 + (i * 7) % 13))
            .collect();
        let t = MaglevTable::build(&bs, 4099, MaglevKey::default()).unwrap();
        let active: Vec<u32> = (0..50).collect();
        let mut heap = vec![EMPTY; 4099];
        MaglevTable::fill(&t.backends, &active, 4099, &t.key, &mut heap, Fill::Heap);
        let mut rounds = vec![EMPTY; 4099];
        MaglevTable::fill(
            &t.backends,
            &active,
            4099,
            &t.key,
            &mut rounds,
            Fill::Rounds,
        );
        assert_eq!(heap, rounds);
        assert_eq!(heap, t.lookup);
    }

    #[test]
    fn scheduler_agrees_across_add_orders_and_falls_back() {
        let key = MaglevKey::default();
        let cfgs: Vec<RealServerConfig> = (0..20u32)
            .map(|i| RealServerConfig::new(v4(i), 80).weight(1 + i % 3))
            .collect();
        let mk = |order: &mut dyn Iterator<Item = &RealServerConfig>| {
            let mut p = Pool::new(Box::new(Maglev::new(4099, key, true, true).unwrap()));
            for c in order {
                p.add(*c).unwrap();
            }
            p
        };
        let mut a = mk(&mut cfgs.iter());
        let mut b = mk(&mut cfgs.iter().rev());
        let input = |x: u32| SchedInput {
            protocol: proto::TCP,
            src: IpAddr::from((0xc612_0000 + x * 31).to_be_bytes()),
            dst: IpAddr::from([192, 0, 2, 1]),
            src_port: (x % 5000) as u16,
            dst_port: 80,
            fwmark: 0,
        };
        let addr_of = |p: &Pool, id: Option<DestId>| id.map(|id| p.dests().get(id).unwrap().addr());
        for x in 0..2000 {
            let (ia, ib) = (
                a.schedule(&input(x), Instant::ZERO),
                b.schedule(&input(x), Instant::ZERO),
            );
            assert!(ia.is_some());
            assert_eq!(addr_of(&a, ia), addr_of(&b, ib));
        }
        // Overload one server: its clients move, everyone else stays.
        let victim = a.schedule(&input(0), Instant::ZERO).unwrap();
        let before: Vec<_> = (0..500)
            .map(|x| a.schedule(&input(x), Instant::ZERO))
            .collect();
        let w = a.dests().get(victim).unwrap().weight();
        a.edit(victim, w, 1, 0).unwrap();
        a.bind(victim, ConnCount::Active).unwrap();
        for (x, was) in before.into_iter().enumerate() {
            let now = a.schedule(&input(x as u32), Instant::ZERO);
            if was == Some(victim) {
                assert!(now.is_some() && now != Some(victim));
            } else {
                assert_eq!(now, was);
            }
        }
    }

    fn table(bs: &[Backend], m: u32) -> MaglevTable {
        MaglevTable::build(bs, m, MaglevKey::default()).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The table depends on the set, not the order it was given in.
        #[test]
        fn order_does_not_matter(
            addrs in proptest::collection::hash_set((any::<u32>(), 1u16..4), 1..40),
            weights in proptest::collection::vec(0u32..9, 40),
            seed in any::<u64>(),
        ) {
            let mut bs: Vec<Backend> = addrs.iter().zip(&weights)
                .map(|(&(a, p), &w)| Backend::new(IpAddr::from(a.to_be_bytes()), p, w)).collect();
            let t1 = table(&bs, 4099);
            // A deterministic shuffle.
            let mut s = seed | 1;
            for i in (1..bs.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                bs.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let t2 = table(&bs, 4099);
            prop_assert_eq!(&t1, &t2);
            prop_assert_eq!(remapped_fraction(&t1, &t2), 0.0);
        }

        /// Removing one of N equally weighted servers from a table of M = 65521 slots
        /// remaps at most 1/N + 1% of the keys (its own 1/N must move).
        #[test]
        fn removing_one_of_n_remaps_at_most_1_over_n_plus_1pc(
            n in 2u32..60,
            which in any::<prop::sample::Index>(),
        ) {
            let bs = equal(n);
            let t1 = table(&bs, 65521);
            let mut less = bs.clone();
            less.remove(which.index(n as usize));
            let t2 = table(&less, 65521);
            let f = remapped_fraction(&t1, &t2);
            prop_assert!(f <= 1.0 / f64::from(n) + 0.01, "n = {}: {}", n, f);
            prop_assert!(f >= 1.0 / f64::from(n) - 0.001);
        }

        /// With weights, removing a server remaps at most its share plus 1%.
        #[test]
        fn removing_a_weighted_server_remaps_about_its_share(
            weights in proptest::collection::vec(1u32..20, 2..40),
            which in any::<prop::sample::Index>(),
        ) {
            let bs: Vec<Backend> = weights.iter().enumerate()
                .map(|(i, &w)| Backend::new(v4(i as u32), 80, w)).collect();
            let t1 = table(&bs, 65521);
            let j = which.index(bs.len());
            let share = f64::from(bs[j].weight) / f64::from(weights.iter().sum::<u32>());
            let mut less = bs.clone();
            less.remove(j);
            let t2 = table(&less, 65521);
            let f = remapped_fraction(&t1, &t2);
            prop_assert!(f <= share + 0.01, "share {}: {}", share, f);
        }
    }

    /// Removing one of N equal servers remaps at most 1/N + 1% of keys, for a sweep of N
    /// (the build time is measured by the `maglev_build` benchmark).
    #[test]
    fn maglev_remap_sweep() {
        for n in [2u32, 3, 5, 10, 20, 100] {
            let bs = equal(n);
            let t1 = table(&bs, 65521);
            let mut worst: f64 = 0.0;
            for j in (0..n as usize).step_by((n as usize / 7).max(1)) {
                let mut less = bs.clone();
                less.remove(j);
                let f = remapped_fraction(&t1, &table(&less, 65521));
                worst = worst.max(f - 1.0 / f64::from(n));
            }
            assert!(
                worst <= 0.01,
                "N = {n}: worst remap above 1/N = {:.4}%",
                worst * 100.0
            );
        }
    }
}
