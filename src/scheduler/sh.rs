//! `sh`: source hashing (`net/netfilter/ipvs/ip_vs_sh.c`).
//!
//! A table of `2^bits` buckets (Kconfig `IP_VS_SH_TAB_BITS`, 4 to 20, default 8) maps
//! `(offset + hash_32(ntohs(port) + ntohl(saddr_fold), bits)) & mask` to a real server.
//! The port is 0 unless the service has **sh-port** ([`SH_PORT`], `IP_VS_SVC_F_SCHED2`),
//! then the client's source port for TCP, UDP and SCTP.
//!
//! `ip_vs_sh_reassign` (on add, edit and remove) walks the buckets in order, cycling over
//! the list in kernel order; each server keeps `weight` consecutive buckets before the
//! walk moves on (`++d_count >= weight`), so a weight-0 server still takes one bucket per
//! round — and answers "unavailable" for it.
//!
//! Unavailable is `weight <= 0 || OVERLOAD`. Without **sh-fallback** ([`SH_FALLBACK`],
//! `IP_VS_SVC_F_SCHED1`) that gives `None`; with it, the kernel probes
//! `hashkey(offset = (k + ihash) % size)` for `k = 0, 1, ...`, i.e. bucket
//! `(k + 2·ihash) mod size` (the base hash is added twice), stopping at the first
//! available server or at an empty bucket.

use super::hash::{Slot, addr_fold, hash_32};
use super::{DestId, DestList, PoolError, RealServer, SchedInput, Scheduler};
use crate::time::Instant;
use crate::wire::proto;

/// `IP_VS_SVC_F_SCHED_SH_FALLBACK` (= `IP_VS_SVC_F_SCHED1`): try other buckets when the
/// hashed server is unavailable.
pub const SH_FALLBACK: u32 = 0x0008;
/// `IP_VS_SVC_F_SCHED_SH_PORT` (= `IP_VS_SVC_F_SCHED2`): hash the client port too.
pub const SH_PORT: u32 = 0x0010;
/// Default `CONFIG_IP_VS_SH_TAB_BITS`.
pub const SH_DEFAULT_TAB_BITS: u32 = 8;
/// Smallest table bits Kconfig allows.
pub const SH_MIN_TAB_BITS: u32 = 4;
/// Largest table bits Kconfig allows.
pub const SH_MAX_TAB_BITS: u32 = 20;

/// The source-hashing scheduler.
#[derive(Debug, Clone)]
pub struct Sh {
    bits: u32,
    fallback: bool,
    port: bool,
    buckets: Vec<Slot>,
}

impl Default for Sh {
    fn default() -> Self {
        Self::new(false, false)
    }
}

impl Sh {
    /// A scheduler with the default 256-bucket table.
    #[must_use]
    pub fn new(fallback: bool, port: bool) -> Self {
        Self {
            bits: SH_DEFAULT_TAB_BITS,
            fallback,
            port,
            buckets: vec![Slot::EMPTY; 1 << SH_DEFAULT_TAB_BITS],
        }
    }

    /// A scheduler configured from a service's flags ([`SH_FALLBACK`], [`SH_PORT`]).
    #[must_use]
    pub fn from_service_flags(flags: u32) -> Self {
        Self::new(flags & SH_FALLBACK != 0, flags & SH_PORT != 0)
    }

    /// The same with a table of `2^bits` buckets (a kernel built with another
    /// `CONFIG_IP_VS_SH_TAB_BITS`).
    ///
    /// # Errors
    /// [`PoolError::Range`] unless 4 ≤ `bits` ≤ 20, Kconfig's range.
    pub fn with_table_bits(mut self, bits: u32) -> Result<Self, PoolError> {
        if !(SH_MIN_TAB_BITS..=SH_MAX_TAB_BITS).contains(&bits) {
            return Err(PoolError::Range);
        }
        self.bits = bits;
        self.buckets = vec![Slot::EMPTY; 1 << bits];
        Ok(self)
    }

    /// Number of buckets.
    #[must_use]
    pub fn table_size(&self) -> usize {
        self.buckets.len()
    }

    /// The server bucket `i` names, if any.
    #[must_use]
    pub fn bucket(&self, i: usize) -> Option<DestId> {
        self.buckets
            .get(i)
            .filter(|s| !s.is_empty())
            .map(|s| s.id())
    }

    /// `ip_vs_sh_hashkey(af, addr, port, offset)`.
    #[must_use]
    #[inline]
    pub fn hashkey(&self, fold: u32, port: u16, offset: u32) -> usize {
        let mask = (1u32 << self.bits) - 1;
        (offset.wrapping_add(hash_32(u32::from(port).wrapping_add(fold), self.bits)) & mask)
            as usize
    }

    /// The port the kernel hashes for this input (`ip_vs_sh_get_port`).
    #[inline]
    fn port_of(&self, input: &SchedInput) -> u16 {
        if self.port && matches!(input.protocol, proto::TCP | proto::UDP | proto::SCTP) {
            input.src_port
        } else {
            0
        }
    }

    /// `ip_vs_sh_reassign`.
    pub fn reassign(&mut self, dests: &DestList) {
        let n = dests.len();
        if n == 0 {
            self.buckets.fill(Slot::EMPTY);
            return;
        }
        let mut pos = 0usize;
        let mut d_count: i64 = 0;
        for b in &mut self.buckets {
            let Some(d) = dests.at(pos) else {
                *b = Slot::EMPTY;
                continue;
            };
            *b = Slot::new(pos, d.id());
            // "Don't move to next dest until filling weight".
            d_count += 1;
            if d_count >= i64::from(d.weight()) {
                pos = (pos + 1) % n;
                d_count = 0;
            }
        }
    }

    #[inline]
    fn available(d: &RealServer) -> bool {
        d.weight() > 0 && !d.is_overloaded()
    }
}

impl Scheduler for Sh {
    fn name(&self) -> &'static str {
        "sh"
    }

    fn schedule(&mut self, dests: &DestList, input: &SchedInput, _now: Instant) -> Option<DestId> {
        let fold = addr_fold(input.src);
        let port = self.port_of(input);
        let ihash = self.hashkey(fold, port, 0);
        let slot = self.buckets[ihash];
        if slot.is_empty() {
            return None;
        }
        if let Some(d) = slot.resolve(dests).filter(|d| Self::available(d)) {
            return Some(d.id());
        }
        if !self.fallback {
            return None;
        }
        let size = self.buckets.len() as u32;
        for offset in 0..size {
            let roffset = (offset + ihash as u32) % size;
            let slot = self.buckets[self.hashkey(fold, port, roffset)];
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
        self.reassign(dests);
    }

    fn dest_updated(&mut self, dests: &DestList, _id: DestId) {
        self.reassign(dests);
    }

    fn dest_removed(&mut self, dests: &DestList, _id: DestId) {
        self.reassign(dests);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::test_support::input_from as input;
    use crate::scheduler::{ConnCount, Pool, RealServerConfig};
    use core::net::IpAddr;
    use proptest::prelude::*;

    /// Added a (10.0.0.1, w1), b (10.0.0.2, w0), c (10.0.0.3, w2): list [c, b, a].
    fn pool(flags: u32) -> (Pool, [DestId; 3]) {
        let mut p = Pool::new(Box::new(Sh::from_service_flags(flags)));
        let mut add = |last: u8, w: u32| {
            p.add(RealServerConfig::new(IpAddr::from([10, 0, 0, last]), 80).weight(w))
                .unwrap()
        };
        let a = add(1, 1);
        let b = add(2, 0);
        let c = add(3, 2);
        (p, [c, b, a])
    }

    // Vectors from scripts/kernel_vectors.py (an independent statement of ip_vs_sh.c).
    #[test]
    fn reassign_gives_weight_buckets_and_one_for_weight_zero() {
        let (p, [c, b, a]) = pool(0);
        let mut s = Sh::new(false, false);
        s.reassign(p.dests());
        let want = [c, c, b, a, c, c, b, a, c, c, b, a];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(s.bucket(i), Some(*w), "bucket {i}");
        }
        // 256 is a multiple of the period 4: the last bucket closes a round.
        assert_eq!(s.bucket(255), Some(a));
    }

    #[test]
    fn kernel_vectors_without_fallback() {
        let (mut p, [c, _b, a]) = pool(0);
        let s = Sh::new(false, false);
        let f = addr_fold("192.0.2.1".parse().unwrap());
        assert_eq!(s.hashkey(f, 0, 0), 50);
        // Bucket 50 is b (weight 0): unavailable, and no fallback.
        assert_eq!(p.schedule(&input("192.0.2.1", 1), Instant::ZERO), None);
        assert_eq!(p.schedule(&input("192.0.2.2", 1), Instant::ZERO), Some(c)); // bucket 148
        assert_eq!(
            p.schedule(&input("198.51.100.7", 1), Instant::ZERO),
            Some(a)
        ); // bucket 171
        assert_eq!(p.schedule(&input("2001:db8::5", 1), Instant::ZERO), None); // 198: b
    }

    #[test]
    fn kernel_vectors_with_port_and_fallback() {
        let (mut p, [c, _b, a]) = pool(SH_PORT);
        // 192.0.2.1:40000 → bucket 214 (b); :40001 → bucket 56 (c).
        assert_eq!(p.schedule(&input("192.0.2.1", 40000), Instant::ZERO), None);
        assert_eq!(
            p.schedule(&input("192.0.2.1", 40001), Instant::ZERO),
            Some(c)
        );
        // sh-port ignores ports of protocols without them.
        let mut icmp = input("192.0.2.1", 40001);
        icmp.protocol = proto::ICMP;
        assert_eq!(p.schedule(&icmp, Instant::ZERO), None, "bucket 50 (b)");

        let (mut p, [c, _b, a2]) = pool(SH_FALLBACK);
        let _ = a;
        // Fallback for bucket 50 probes buckets 100, 101, 102, 103 = c, c, b, a.
        assert_eq!(p.schedule(&input("192.0.2.1", 1), Instant::ZERO), Some(c));
        p.set_counters(c, 0, 0, 0).unwrap();
        p.edit(c, 2, 1, 0).unwrap();
        p.bind(c, ConnCount::Inactive).unwrap();
        assert!(p.dests().get(c).unwrap().is_overloaded());
        assert_eq!(p.schedule(&input("192.0.2.1", 1), Instant::ZERO), Some(a2));
        // Everyone unavailable: the probe runs through the whole table and gives None.
        p.edit(a2, 0, 0, 0).unwrap();
        assert_eq!(p.schedule(&input("192.0.2.1", 1), Instant::ZERO), None);
    }

    #[test]
    fn table_bits_and_empty_pool() {
        assert_eq!(
            Sh::new(false, false).with_table_bits(3).err(),
            Some(PoolError::Range)
        );
        assert_eq!(
            Sh::new(false, false).with_table_bits(21).err(),
            Some(PoolError::Range)
        );
        let s = Sh::new(false, false).with_table_bits(4).unwrap();
        assert_eq!(s.table_size(), 16);
        let mut p = Pool::new(Box::new(s));
        assert_eq!(p.schedule(&input("192.0.2.1", 1), Instant::ZERO), None);
        let only = p
            .add(RealServerConfig::new(IpAddr::from([10, 0, 0, 9]), 80).weight(3))
            .unwrap();
        for x in 0..=255u8 {
            let i = input(&format!("198.51.{x}.{x}"), 1);
            assert_eq!(p.schedule(&i, Instant::ZERO), Some(only));
        }
        p.remove(only).unwrap();
        assert_eq!(p.schedule(&input("192.0.2.1", 1), Instant::ZERO), None);
    }

    /// The kernel walk restated: `period[k]` is the list position of the k-th bucket of
    /// one round (each server `max(weight, 1)` buckets), and bucket `i` holds
    /// `period[i mod P]`.
    fn model(weights: &[u32]) -> Vec<usize> {
        weights
            .iter()
            .enumerate()
            .flat_map(|(pos, &w)| core::iter::repeat_n(pos, w.max(1) as usize))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// What stays put when one server changes. The reassign walk is a single pass
        /// over the buckets in order, so a change to the server at list position `p`
        /// leaves exactly the walk's prefix before that server's first bucket intact:
        /// buckets `0 .. Σ_{q<p} max(w_q, 1)` keep their server, and clients hashing
        /// there keep their choice. Beyond that prefix nothing is promised: every later
        /// bucket is re-dealt (unchanged servers keep a bucket only where the shifted
        /// periodic pattern happens to coincide, as `model` states).
        #[test]
        fn weight_edit_keeps_the_walk_prefix(
            weights in proptest::collection::vec(0u32..6, 1..12),
            which in any::<prop::sample::Index>(),
            new_w in 0u32..6,
        ) {
            let mut p = Pool::new(Box::new(Sh::new(false, false)));
            let ids: Vec<DestId> = weights.iter().rev().enumerate().map(|(i, &w)| {
                p.add(RealServerConfig::new(IpAddr::from([10, 0, 1, i as u8]), 80).weight(w)).unwrap()
            }).collect();
            // ids are in add order; list position = n-1-add index; weights[pos] as given.
            let n = weights.len();
            let pos = which.index(n);
            let id = ids[n - 1 - pos];
            let mut before = Sh::new(false, false);
            before.reassign(p.dests());
            p.edit(id, new_w, 0, 0).unwrap();
            let mut after = Sh::new(false, false);
            after.reassign(p.dests());

            let mut new_weights = weights.clone();
            new_weights[pos] = new_w;
            for (table, w) in [(&before, &weights), (&after, &new_weights)] {
                let m = model(w);
                for i in 0..table.table_size() {
                    let want = p.dests().at(m[i % m.len()]).unwrap().id();
                    prop_assert_eq!(table.bucket(i), Some(want));
                }
            }
            let prefix: usize = weights[..pos].iter().map(|&w| w.max(1) as usize).sum();
            for i in 0..prefix.min(256) {
                prop_assert_eq!(before.bucket(i), after.bucket(i));
            }
            // Clients whose bucket lies in the prefix keep their server.
            for x in 0..512u32 {
                let src = IpAddr::from((0xc633_0000u32 + x * 7919).to_be_bytes());
                let b = before.hashkey(addr_fold(src), 0, 0);
                if b < prefix {
                    let i = SchedInput { src, ..input("192.0.2.1", 0) };
                    let want = before.bucket(b).filter(|&d| p.dests().get(d).unwrap().weight() > 0);
                    prop_assert_eq!(p.schedule(&i, Instant::ZERO), want);
                }
            }
        }

        /// Removing the server at list position `p` keeps the same prefix.
        #[test]
        fn removal_keeps_the_walk_prefix(
            weights in proptest::collection::vec(1u32..5, 2..12),
            which in any::<prop::sample::Index>(),
        ) {
            let mut p = Pool::new(Box::new(Sh::new(false, false)));
            for (i, &w) in weights.iter().rev().enumerate() {
                p.add(RealServerConfig::new(IpAddr::from([10, 0, 2, i as u8]), 80).weight(w)).unwrap();
            }
            let pos = which.index(weights.len());
            let mut before = Sh::new(false, false);
            before.reassign(p.dests());
            let id = p.dests().at(pos).unwrap().id();
            p.remove(id).unwrap();
            let mut after = Sh::new(false, false);
            after.reassign(p.dests());
            let prefix: usize = weights[..pos].iter().map(|&w| w as usize).sum();
            for i in 0..prefix.min(256) {
                prop_assert_eq!(before.bucket(i), after.bucket(i));
            }
            for i in 0..256 {
                prop_assert_ne!(after.bucket(i), Some(id));
            }
        }
    }
}
