//! `mh`: Maglev hashing as IPVS does it (`net/netfilter/ipvs/ip_vs_mh.c`).
//!
//! - Table size `M` is one of [`MH_PRIMES`] (`primes[CONFIG_IP_VS_MH_TAB_INDEX - 8]`,
//!   Kconfig index 8 to 17, default 12 → [`MH_DEFAULT_TAB_SIZE`] = 4093).
//! - `hashkey(addr, port, key, offset) = hsiphash(&v, 4, key)` with
//!   `v = offset + ntohs(port) + ntohl(addr_fold)` stored as a host-order `u32`; keys are
//!   the fixed `hash1 = {2654435761, 2654435761}` and `hash2 = {2654446892, 2654446892}`
//!   (see [`super::hash`] for hsiphash on 64-bit kernels).
//! - Per server in list order: `offset = hashkey(rs, rport, hash1, 0) % M`,
//!   `skip = hashkey(rs, rport, hash2, 0) % (M - 1) + 1`, and
//!   `turns = ((last_weight / gcd) >> rshift) ?: (last_weight != 0)`, where `gcd` is the
//!   gcd of the positive last weights and `rshift = max(0, fls(max_last_weight / gcd) -
//!   IP_VS_MH_TAB_BITS)` with `IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2`. (That
//!   divisor follows the chosen table: 4 for M = 251 and 509, ..., 6 for the default 4093,
//!   8 for 65521 and 131071; the reference notes only the default's 6.)
//! - Populate: rounds over the list; each server with `turns ≥ 1` claims `turns` slots in
//!   a row, each at the first free position of its permutation, until all `M` slots are
//!   taken. Built from **last_weight**, so setting a weight to 0 keeps the server's slots;
//!   such a server is "unavailable" at lookup.
//! - Lookup: `lookup[hashkey(client, port, hash1, 0) % M]`, the port being the client's
//!   source port only with **mh-port** ([`MH_PORT`]) and TCP/UDP/SCTP. Unavailable is
//!   `weight <= 0 || OVERLOAD`: `None`, or with **mh-fallback** ([`MH_FALLBACK`]) the probe
//!   `lookup[hashkey(client, port, hash1, (k + ihash) % M) % M]` for `k = 0, 1, ...`,
//!   stopping at the first available server or at an empty slot.
//! - Rebuilt on add, edit and remove (`ip_vs_mh_dest_changed`).
//!
//! **More servers than `M`.** `ip_vs_mh_reassign` then fails with `EINVAL` and leaves
//! the table as it was; the kernel ignores `add_dest`'s / `upd_dest`'s / `del_dest`'s
//! return value, so the server is added (or edited, or removed) all the same and the
//! stale table stays in use until a later change succeeds. The [`Scheduler`] hooks
//! cannot fail either, so this scheduler does the same: it keeps its last table (slots
//! naming a server removed since answer "unavailable"; the kernel would still hand out
//! the removed server it holds a reference to), and records the refusal in
//! [`Mh::last_rebuild`]. Embedders that want to refuse instead call
//! [`Mh::check`] before [`super::Pool::add`]. (Only `init_service`, i.e.
//! choosing `mh` for a service that already has more than `M` servers, reports the
//! error to the user in the kernel.)
//!
//! **Mixed address families.** The kernel folds a server's address with the *service's*
//! family; here a server is folded with its own. The two agree except for an IPv6
//! server behind an IPv4 service (tunnel forwarding only), which the kernel folds as the
//! IPv6 address's first 32-bit word.

use super::hash::{HsipKey, Slot, addr_fold, hsiphash_u32};
use super::{DestId, DestList, PoolError, RealServer, SchedInput, Scheduler};
use crate::time::Instant;
use crate::wire::proto;

/// `IP_VS_SVC_F_SCHED_MH_FALLBACK` (= `IP_VS_SVC_F_SCHED1`).
pub const MH_FALLBACK: u32 = 0x0008;
/// `IP_VS_SVC_F_SCHED_MH_PORT` (= `IP_VS_SVC_F_SCHED2`).
pub const MH_PORT: u32 = 0x0010;
/// The table sizes a kernel can be built with (`primes[]` of ip_vs_mh.c).
pub const MH_PRIMES: [u32; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];
/// The default table size (`CONFIG_IP_VS_MH_TAB_INDEX` = 12).
pub const MH_DEFAULT_TAB_SIZE: u32 = 4093;

/// `generate_hash_secret`'s `hash1`: slot offsets and lookups.
pub const MH_HASH1: HsipKey = HsipKey {
    k0: 2_654_435_761,
    k1: 2_654_435_761,
};
/// `generate_hash_secret`'s `hash2`: permutation skips.
pub const MH_HASH2: HsipKey = HsipKey {
    k0: 2_654_446_892,
    k1: 2_654_446_892,
};

/// `ip_vs_mh_hashkey(af, addr, port, key, offset)` on a 64-bit little-endian kernel.
#[must_use]
#[inline]
pub fn mh_hashkey(fold: u32, port: u16, key: &HsipKey, offset: u32) -> u32 {
    hsiphash_u32(offset.wrapping_add(u32::from(port)).wrapping_add(fold), key)
}

/// `struct ip_vs_mh_dest_setup`.
#[derive(Debug, Clone, Copy)]
struct DestSetup {
    skip: u32,
    perm: u32,
    turns: u32,
}

/// What the last rebuild did.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildOutcome {
    /// The table describes the current list.
    Built,
    /// The list had more servers than slots (the kernel's `EINVAL`): the previous table
    /// was kept.
    TooMany,
}

/// The Maglev-hashing scheduler.
#[derive(Debug, Clone)]
pub struct Mh {
    m: u32,
    tab_bits: u32,
    fallback: bool,
    port: bool,
    lookup: Vec<Slot>,
    last: RebuildOutcome,
    // Scratch kept between rebuilds so that steady-state rebuilds do not allocate.
    setup: Vec<DestSetup>,
    taken: Vec<u64>,
}

impl Default for Mh {
    fn default() -> Self {
        Self::new(false, false)
    }
}

impl Mh {
    /// A scheduler with the default 4093-slot table.
    #[must_use]
    pub fn new(fallback: bool, port: bool) -> Self {
        Self {
            m: MH_DEFAULT_TAB_SIZE,
            tab_bits: 12 / 2,
            fallback,
            port,
            lookup: vec![Slot::EMPTY; MH_DEFAULT_TAB_SIZE as usize],
            last: RebuildOutcome::Built,
            setup: Vec::new(),
            taken: Vec::new(),
        }
    }

    /// A scheduler configured from a service's flags ([`MH_FALLBACK`], [`MH_PORT`]).
    #[must_use]
    pub fn from_service_flags(flags: u32) -> Self {
        Self::new(flags & MH_FALLBACK != 0, flags & MH_PORT != 0)
    }

    /// The same with another table size, one of [`MH_PRIMES`] (a kernel built with
    /// another `CONFIG_IP_VS_MH_TAB_INDEX`).
    ///
    /// # Errors
    /// [`PoolError::Range`] for any other size.
    pub fn with_table_size(mut self, m: u32) -> Result<Self, PoolError> {
        let idx = MH_PRIMES
            .iter()
            .position(|&p| p == m)
            .ok_or(PoolError::Range)?;
        self.m = m;
        // IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2, index = position + 8.
        self.tab_bits = (idx as u32 + 8) / 2;
        self.lookup = vec![Slot::EMPTY; m as usize];
        Ok(self)
    }

    /// Table size `M`.
    #[must_use]
    pub fn table_size(&self) -> u32 {
        self.m
    }

    /// The server slot `i` names, if any.
    #[must_use]
    pub fn slot(&self, i: usize) -> Option<DestId> {
        self.lookup.get(i).filter(|s| !s.is_empty()).map(|s| s.id())
    }

    /// What the last rebuild did.
    #[must_use]
    pub fn last_rebuild(&self) -> RebuildOutcome {
        self.last
    }

    /// Whether a list of `n` servers fits the table (the kernel's `EINVAL` check).
    ///
    /// # Errors
    /// [`PoolError::TooMany`] when `n > M`.
    pub fn check(&self, n: usize) -> Result<(), PoolError> {
        if n > self.m as usize {
            Err(PoolError::TooMany)
        } else {
            Ok(())
        }
    }

    /// `ip_vs_mh_dest_changed`: recompute gcd and shift, then permutate and populate.
    ///
    /// # Errors
    /// [`PoolError::TooMany`] when the list has more servers than slots; the table is
    /// left as it was, as in the kernel.
    pub fn rebuild(&mut self, dests: &DestList) -> Result<(), PoolError> {
        if let Err(e) = self.check(dests.len()) {
            self.last = RebuildOutcome::TooMany;
            return Err(e);
        }
        self.last = RebuildOutcome::Built;
        // ip_vs_mh_gcd_weight.
        let mut g: u32 = 0;
        let mut max_w: u32 = 0;
        for d in dests.iter() {
            let w = d.last_weight();
            if w > 0 {
                g = if g > 0 { gcd(w, g) } else { w };
            }
            max_w = max_w.max(w);
        }
        if g < 1 {
            // No server, or every last_weight is 0: ip_vs_mh_reset.
            self.lookup.fill(Slot::EMPTY);
            return Ok(());
        }
        // ip_vs_mh_shift_weight: fls(max/gcd) - IP_VS_MH_TAB_BITS, at least 0.
        let mw = max_w / g;
        let fls = 32 - mw.leading_zeros();
        let rshift = fls.saturating_sub(self.tab_bits);
        // ip_vs_mh_permutate.
        let m = self.m;
        self.setup.clear();
        self.setup.extend(dests.iter().map(|d| {
            let fold = addr_fold(d.addr());
            let offset = mh_hashkey(fold, d.port(), &MH_HASH1, 0) % m;
            let skip = mh_hashkey(fold, d.port(), &MH_HASH2, 0) % (m - 1) + 1;
            let lw = d.last_weight();
            let t = (lw / g) >> rshift;
            let turns = if t != 0 { t } else { u32::from(lw != 0) };
            DestSetup {
                skip,
                perm: offset,
                turns,
            }
        }));
        // ip_vs_mh_populate.
        self.taken.clear();
        self.taken.resize((m as usize).div_ceil(64), 0);
        let mut n: u32 = 0;
        'fill: loop {
            for (pos, ds) in self.setup.iter_mut().enumerate() {
                if ds.turns < 1 {
                    continue;
                }
                let id = match dests.at(pos) {
                    Some(d) => d.id(),
                    None => continue,
                };
                for _ in 0..ds.turns {
                    let mut c = ds.perm;
                    while self.taken[(c >> 6) as usize] & (1u64 << (c & 63)) != 0 {
                        ds.perm += ds.skip;
                        if ds.perm >= m {
                            ds.perm -= m;
                        }
                        c = ds.perm;
                    }
                    self.taken[(c >> 6) as usize] |= 1u64 << (c & 63);
                    self.lookup[c as usize] = Slot::new(pos, id);
                    n += 1;
                    if n == m {
                        break 'fill;
                    }
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn port_of(&self, input: &SchedInput) -> u16 {
        if self.port && matches!(input.protocol, proto::TCP | proto::UDP | proto::SCTP) {
            input.src_port
        } else {
            0
        }
    }

    #[inline]
    fn available(d: &RealServer) -> bool {
        d.weight() > 0 && !d.is_overloaded()
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Scheduler for Mh {
    fn name(&self) -> &'static str {
        "mh"
    }

    fn schedule(&mut self, dests: &DestList, input: &SchedInput, _now: Instant) -> Option<DestId> {
        let fold = addr_fold(input.src);
        let port = self.port_of(input);
        let m = self.m;
        let ihash = mh_hashkey(fold, port, &MH_HASH1, 0) % m;
        let slot = self.lookup[ihash as usize];
        if slot.is_empty() {
            return None;
        }
        if let Some(d) = slot.resolve(dests).filter(|d| Self::available(d)) {
            return Some(d.id());
        }
        if !self.fallback {
            return None;
        }
        for offset in 0..m {
            let roffset = (offset + ihash) % m;
            let hash = mh_hashkey(fold, port, &MH_HASH1, roffset) % m;
            let slot = self.lookup[hash as usize];
            if slot.is_empty() {
                break;
            }
            if let Some(d) = slot.resolve(dests).filter(|d| Self::available(d)) {
                return Some(d.id());
            }
        }
        None
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
    use crate::scheduler::test_support::input_from as input;
    use crate::scheduler::{ConnCount, Pool, RealServerConfig};
    use core::net::IpAddr;
    use proptest::prelude::*;

    fn sched(m: u32, flags: u32) -> Mh {
        Mh::from_service_flags(flags).with_table_size(m).unwrap()
    }

    /// Added a (10.0.0.1:80, w1), b (10.0.0.2:80, w2), c (10.0.0.3:8080, w3): list [c, b, a].
    fn pool(m: u32, flags: u32) -> (Pool, [DestId; 3]) {
        let mut p = Pool::new(Box::new(sched(m, flags)));
        let a = p
            .add(RealServerConfig::new(IpAddr::from([10, 0, 0, 1]), 80).weight(1))
            .unwrap();
        let b = p
            .add(RealServerConfig::new(IpAddr::from([10, 0, 0, 2]), 80).weight(2))
            .unwrap();
        let c = p
            .add(RealServerConfig::new(IpAddr::from([10, 0, 0, 3]), 8080).weight(3))
            .unwrap();
        (p, [c, b, a])
    }

    fn table_of(p: &Pool, m: u32) -> Vec<Option<DestId>> {
        let mut s = sched(m, 0);
        s.rebuild(p.dests()).unwrap();
        (0..m as usize).map(|i| s.slot(i)).collect()
    }

    // Vectors from scripts/kernel_vectors.py (an independent statement of ip_vs_mh.c).
    #[test]
    fn kernel_vectors_m251() {
        let (mut p, [c, b, a]) = pool(251, 0);
        // Per-server setup (offset, skip) in list order.
        let f = |s: &str| addr_fold(s.parse().unwrap());
        assert_eq!(mh_hashkey(f("10.0.0.3"), 8080, &MH_HASH1, 0) % 251, 71);
        assert_eq!(mh_hashkey(f("10.0.0.3"), 8080, &MH_HASH2, 0) % 250 + 1, 15);
        assert_eq!(mh_hashkey(f("10.0.0.2"), 80, &MH_HASH1, 0) % 251, 26);
        assert_eq!(mh_hashkey(f("10.0.0.2"), 80, &MH_HASH2, 0) % 250 + 1, 242);
        assert_eq!(mh_hashkey(f("10.0.0.1"), 80, &MH_HASH1, 0) % 251, 226);
        assert_eq!(mh_hashkey(f("10.0.0.1"), 80, &MH_HASH2, 0) % 250 + 1, 202);

        let t = table_of(&p, 251);
        let pos = [c, b, a];
        let prefix = [
            0, 0, 0, 1, 0, 2, 1, 1, 1, 0, 2, 2, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 1, 0,
        ];
        for (i, &k) in prefix.iter().enumerate() {
            assert_eq!(t[i], Some(pos[k]), "slot {i}");
        }
        let count = |id| t.iter().filter(|&&s| s == Some(id)).count();
        assert_eq!((count(c), count(b), count(a)), (126, 84, 41));

        assert_eq!(mh_hashkey(f("192.0.2.1"), 0, &MH_HASH1, 0), 0x9288_9c88);
        let now = Instant::ZERO;
        assert_eq!(p.schedule(&input("192.0.2.1", 9), now), Some(c)); // slot 227
        assert_eq!(p.schedule(&input("192.0.2.2", 9), now), Some(b)); // slot 247
        assert_eq!(p.schedule(&input("198.51.100.7", 9), now), Some(b)); // slot 14
        assert_eq!(p.schedule(&input("2001:db8::5", 9), now), Some(b)); // slot 193
    }

    #[test]
    fn port_and_fallback_vectors() {
        let (mut p, [c, b, _a]) = pool(251, MH_PORT);
        let now = Instant::ZERO;
        // 192.0.2.1:40000 → slot 150 (c); without the port it is slot 227 (c) too, so
        // check the hash itself.
        let f = addr_fold("192.0.2.1".parse().unwrap());
        assert_eq!(mh_hashkey(f, 40000, &MH_HASH1, 0) % 251, 150);
        assert_eq!(p.schedule(&input("192.0.2.1", 40000), now), Some(c));

        let (mut p, [c, b2, _a]) = pool(251, MH_FALLBACK);
        let _ = b;
        // 192.0.2.2 → slot 247 (b); b quiesced → probes slot 150 (c).
        p.edit(b2, 0, 0, 0).unwrap();
        assert_eq!(p.schedule(&input("192.0.2.2", 1), now), Some(c));
        // 192.0.2.1 → slot 227 (c); c overloaded → probes 44 (c), 63 (c), 194 (b).
        p.edit(b2, 2, 0, 0).unwrap();
        p.edit(c, 3, 1, 0).unwrap();
        p.bind(c, ConnCount::Active).unwrap();
        assert_eq!(p.schedule(&input("192.0.2.1", 1), now), Some(b2));
    }

    #[test]
    fn default_table_and_rshift() {
        let (p, [c, b, a]) = pool(MH_DEFAULT_TAB_SIZE, 0);
        let t = table_of(&p, MH_DEFAULT_TAB_SIZE);
        let pos = [c, b, a];
        let prefix = [2, 0, 0, 0, 2, 0, 1, 1, 0, 0, 2, 1, 0, 0, 2, 0];
        for (i, &k) in prefix.iter().enumerate() {
            assert_eq!(t[i], Some(pos[k]), "slot {i}");
        }
        let count = |id| t.iter().filter(|&&s| s == Some(id)).count();
        assert_eq!((count(c), count(b), count(a)), (2047, 1364, 682));

        // Weights 1000 and 1 with M = 251 (IP_VS_MH_TAB_BITS 4): fls(1000) = 10, shift 6,
        // turns 1000 >> 6 = 15 and (1 >> 6 ?: 1) = 1.
        let mut p = Pool::new(Box::new(sched(251, 0)));
        let a = p
            .add(RealServerConfig::new(IpAddr::from([10, 0, 0, 1]), 80).weight(1))
            .unwrap();
        let b = p
            .add(RealServerConfig::new(IpAddr::from([10, 0, 0, 2]), 80).weight(1000))
            .unwrap();
        let t = table_of(&p, 251);
        let count = |id| t.iter().filter(|&&s| s == Some(id)).count();
        assert_eq!((count(b), count(a)), (236, 15));
    }

    #[test]
    fn weight_zero_keeps_slots_but_is_unavailable() {
        let (mut p, [c, b, a]) = pool(251, 0);
        let before = table_of(&p, 251);
        p.edit(b, 0, 0, 0).unwrap();
        assert_eq!(table_of(&p, 251), before, "built from last_weight");
        let now = Instant::ZERO;
        assert_eq!(p.schedule(&input("192.0.2.2", 1), now), None);
        assert_eq!(p.schedule(&input("192.0.2.1", 1), now), Some(c));
        // A server added with weight 0 has last_weight 0: no turns, no slots.
        let z = p
            .add(RealServerConfig::new(IpAddr::from([10, 0, 0, 4]), 80).weight(0))
            .unwrap();
        assert!(!table_of(&p, 251).contains(&Some(z)));
        // All quiesced: None everywhere, with or without fallback.
        for id in [c, b, a] {
            p.edit(id, 0, 0, 0).unwrap();
        }
        assert_eq!(p.schedule(&input("192.0.2.1", 1), now), None);
        p.set_scheduler(Box::new(sched(251, MH_FALLBACK)));
        assert_eq!(p.schedule(&input("192.0.2.1", 1), now), None);
    }

    #[test]
    fn empty_single_and_too_many() {
        let mut p = Pool::new(Box::new(sched(251, 0)));
        let now = Instant::ZERO;
        assert_eq!(p.schedule(&input("192.0.2.1", 1), now), None);
        let only = p
            .add(RealServerConfig::new(IpAddr::from([10, 9, 0, 1]), 80))
            .unwrap();
        for x in 0..=255u8 {
            let i = input(&format!("198.51.{x}.1"), 1);
            assert_eq!(p.schedule(&i, now), Some(only));
        }
        p.remove(only).unwrap();
        assert_eq!(p.schedule(&input("192.0.2.1", 1), now), None);

        // 251 servers fit M = 251; the 252nd is refused by the table, which stays.
        let mut s = sched(251, 0);
        let mut l = Pool::new(Box::new(sched(251, 0)));
        for i in 0..251u32 {
            l.add(RealServerConfig::new(
                IpAddr::from((0x0a00_0000 + i).to_be_bytes()),
                80,
            ))
            .unwrap();
        }
        s.rebuild(l.dests()).unwrap();
        let full: Vec<_> = (0..251).map(|i| s.slot(i)).collect();
        assert!(full.iter().all(Option::is_some));
        l.add(RealServerConfig::new(IpAddr::from([10, 1, 0, 0]), 80))
            .unwrap();
        assert_eq!(s.check(l.dests().len()), Err(PoolError::TooMany));
        assert_eq!(s.rebuild(l.dests()), Err(PoolError::TooMany));
        assert_eq!(s.last_rebuild(), RebuildOutcome::TooMany);
        assert_eq!((0..251).map(|i| s.slot(i)).collect::<Vec<_>>(), full);
        assert_eq!(
            Mh::new(false, false).with_table_size(4096).err(),
            Some(PoolError::Range)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Quiescing (weight 0) or overloading a server never changes the table (it is
        /// built from last_weight and ignores load), so every client whose slot belongs to
        /// another server keeps its choice exactly; the server's own clients get `None`.
        #[test]
        fn quiesce_or_overload_moves_no_other_client(
            n in 1usize..20,
            which in any::<prop::sample::Index>(),
            overload in any::<bool>(),
            weights in proptest::collection::vec(1u32..50, 20),
        ) {
            let mut p = Pool::new(Box::new(sched(1021, 0)));
            let ids: Vec<DestId> = (0..n).map(|i| {
                p.add(RealServerConfig::new(IpAddr::from([10, 3, 0, i as u8]), 80).weight(weights[i])).unwrap()
            }).collect();
            let before = table_of(&p, 1021);
            let victim = ids[which.index(n)];
            let mut chosen = Vec::new();
            for x in 0..400u32 {
                let src = format!("198.18.{}.{}", x >> 8, x & 255);
                chosen.push(p.schedule(&input(&src, 1), Instant::ZERO));
            }
            if overload {
                let w = p.dests().get(victim).unwrap().weight();
                p.edit(victim, w, 1, 0).unwrap();
                p.bind(victim, ConnCount::Inactive).unwrap();
            } else {
                p.edit(victim, 0, 0, 0).unwrap();
            }
            prop_assert_eq!(table_of(&p, 1021), before);
            for (x, was) in chosen.into_iter().enumerate() {
                let src = format!("198.18.{}.{}", x >> 8, x & 255);
                let now = p.schedule(&input(&src, 1), Instant::ZERO);
                if was == Some(victim) {
                    prop_assert_eq!(now, None);
                } else {
                    prop_assert_eq!(now, was);
                }
            }
        }

        /// What survives removing the server at list position `p` (equal weights, so
        /// every server's turns stay 1): slots are never re-claimed, and the first round
        /// of claims by list positions `0 .. p` happens before `p` claims anything, so
        /// exactly those `p` slots are guaranteed to keep their owners (restated here
        /// from the offsets and skips alone). Everything later may move: Maglev's small
        /// disruption is statistical, not promised by the construction.
        #[test]
        fn removal_keeps_first_round_claims_before_it(
            n in 2usize..40,
            which in any::<prop::sample::Index>(),
        ) {
            let m = 4093u32;
            let mut p = Pool::new(Box::new(sched(m, 0)));
            for i in 0..n {
                p.add(RealServerConfig::new(IpAddr::from([10, 4, (i >> 8) as u8, i as u8]), 80)).unwrap();
            }
            let pos = which.index(n);
            let before = table_of(&p, m);
            let gone = p.dests().at(pos).unwrap().id();
            // Round 0 claims of positions 0 .. pos, from the kernel's permutation alone.
            let mut taken = std::collections::HashSet::new();
            let mut kept = Vec::new();
            for q in 0..pos {
                let d = p.dests().at(q).unwrap();
                let fold = addr_fold(d.addr());
                let off = mh_hashkey(fold, d.port(), &MH_HASH1, 0) % m;
                let skip = mh_hashkey(fold, d.port(), &MH_HASH2, 0) % (m - 1) + 1;
                let mut c = off;
                while taken.contains(&c) {
                    c = (c + skip) % m;
                }
                taken.insert(c);
                kept.push((c as usize, d.id()));
            }
            p.remove(gone).unwrap();
            let after = table_of(&p, m);
            for (slot, id) in kept {
                prop_assert_eq!(before[slot], Some(id));
                prop_assert_eq!(after[slot], Some(id));
            }
            prop_assert!(!after.contains(&Some(gone)));
        }
    }
}
