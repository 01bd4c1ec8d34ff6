//! `dh`: destination hashing (`net/netfilter/ipvs/ip_vs_dh.c`).
//!
//! A 256-bucket table maps `hash_32(ntohl(daddr_fold), 8)` to a real server. Bucket `i`
//! holds the server at kernel list position `i mod n` (`ip_vs_dh_reassign`): weights are
//! ignored, and the table is rebuilt only when a server is added or removed. The kernel
//! scheduler has no `upd_dest`, so editing a weight does not re-tile (a weight of 0 still
//! makes the server's buckets answer "no destination").
//!
//! A bucket whose server is unavailable (weight 0 or overloaded) yields `None`: there is
//! no fallback in `dh`.

use super::hash::{Slot, addr_fold, hash_32};
use super::{DestId, DestList, SchedInput, Scheduler};
use crate::time::Instant;

/// `IP_VS_DH_TAB_BITS`.
pub const DH_TAB_BITS: u32 = 8;
/// `IP_VS_DH_TAB_SIZE`: 256 buckets.
pub const DH_TAB_SIZE: usize = 1 << DH_TAB_BITS;

/// The destination-hashing scheduler.
#[derive(Debug, Clone)]
pub struct Dh {
    buckets: Box<[Slot; DH_TAB_SIZE]>,
}

impl Default for Dh {
    fn default() -> Self {
        Self::new()
    }
}

impl Dh {
    /// A scheduler with an empty table (it fills as the pool reports its servers).
    #[must_use]
    pub fn new() -> Self {
        Self {
            buckets: Box::new([Slot::EMPTY; DH_TAB_SIZE]),
        }
    }

    /// The bucket a destination address hashes to.
    #[must_use]
    #[inline]
    pub fn bucket_of(addr: core::net::IpAddr) -> usize {
        hash_32(addr_fold(addr), DH_TAB_BITS) as usize
    }

    /// The server bucket `i` names, if any (`None` for an empty table or `i` ≥ 256).
    #[must_use]
    pub fn bucket(&self, i: usize) -> Option<DestId> {
        self.buckets
            .get(i)
            .filter(|s| !s.is_empty())
            .map(|s| s.id())
    }

    /// `ip_vs_dh_reassign`: bucket `i` gets the server at list position `i mod n`.
    pub fn reassign(&mut self, dests: &DestList) {
        let n = dests.len();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = if n == 0 {
                Slot::EMPTY
            } else {
                let pos = i % n;
                dests
                    .at(pos)
                    .map_or(Slot::EMPTY, |d| Slot::new(pos, d.id()))
            };
        }
    }
}

impl Scheduler for Dh {
    fn name(&self) -> &'static str {
        "dh"
    }

    fn schedule(&mut self, dests: &DestList, input: &SchedInput, _now: Instant) -> Option<DestId> {
        let slot = self.buckets[Self::bucket_of(input.dst)];
        if slot.is_empty() {
            return None;
        }
        // A server gone from the list is the kernel's !IP_VS_DEST_F_AVAILABLE.
        let d = slot.resolve(dests)?;
        (d.weight() > 0 && !d.is_overloaded()).then_some(d.id())
    }

    fn dest_added(&mut self, dests: &DestList, _id: DestId) {
        self.reassign(dests);
    }

    fn dest_removed(&mut self, dests: &DestList, _id: DestId) {
        self.reassign(dests);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::{ConnCount, Pool, RealServerConfig};
    use core::net::IpAddr;

    fn input(dst: [u8; 4]) -> SchedInput {
        SchedInput {
            protocol: 6,
            src: IpAddr::from([192, 0, 2, 7]),
            dst: IpAddr::from(dst),
            src_port: 40000,
            dst_port: 80,
            fwmark: 0,
        }
    }

    fn pool(n: u8) -> (Pool, Vec<DestId>) {
        let mut p = Pool::new(Box::new(Dh::new()));
        let ids = (1..=n)
            .map(|i| {
                p.add(RealServerConfig::new(IpAddr::from([10, 0, 0, i]), 80))
                    .unwrap()
            })
            .collect();
        (p, ids)
    }

    #[test]
    fn buckets_cycle_the_list_in_kernel_order() {
        let (p, ids) = pool(3);
        // Kernel list is newest first: [c, b, a].
        let mut d = Dh::new();
        d.reassign(p.dests());
        for i in 0..DH_TAB_SIZE {
            assert_eq!(d.bucket(i), Some(ids[2 - i % 3]));
        }
    }

    #[test]
    fn hashes_the_destination_like_the_kernel() {
        let (mut p, ids) = pool(3);
        // 10.1.0.1: 0x0a010001 * 0x61c88647 mod 2^32 = 0xae0f8647 → bucket 0xae = 174;
        // 174 mod 3 = 0 → list position 0 = the newest server.
        assert_eq!(0x0a01_0001u32.wrapping_mul(0x61c8_8647), 0xae0f_8647);
        assert_eq!(Dh::bucket_of(IpAddr::from([10, 1, 0, 1])), 174);
        assert_eq!(
            p.schedule(&input([10, 1, 0, 1]), Instant::ZERO),
            Some(ids[2])
        );
        // The client does not matter.
        let mut i2 = input([10, 1, 0, 1]);
        i2.src = IpAddr::from([198, 51, 100, 1]);
        assert_eq!(p.schedule(&i2, Instant::ZERO), Some(ids[2]));
    }

    #[test]
    fn unavailable_bucket_gives_none_without_fallback() {
        let (mut p, ids) = pool(3);
        let dst = [10, 1, 0, 1];
        let owner = ids[2];
        // Weight 0: no re-tiling (no upd_dest), the bucket answers None.
        p.edit(owner, 0, 0, 0).unwrap();
        assert_eq!(p.schedule(&input(dst), Instant::ZERO), None);
        p.edit(owner, 1, 1, 0).unwrap();
        assert_eq!(p.schedule(&input(dst), Instant::ZERO), Some(owner));
        p.bind(owner, ConnCount::Active).unwrap();
        assert_eq!(p.schedule(&input(dst), Instant::ZERO), None, "overloaded");
    }

    #[test]
    fn empty_single_and_removal() {
        let mut p = Pool::new(Box::new(Dh::new()));
        assert_eq!(p.schedule(&input([1, 2, 3, 4]), Instant::ZERO), None);
        let a = p
            .add(RealServerConfig::new(IpAddr::from([10, 0, 0, 1]), 80))
            .unwrap();
        for x in 0..=255u8 {
            assert_eq!(p.schedule(&input([x, 1, x, 3]), Instant::ZERO), Some(a));
        }
        let b = p
            .add(RealServerConfig::new(IpAddr::from([10, 0, 0, 2]), 80))
            .unwrap();
        p.remove(a).unwrap();
        for x in 0..=255u8 {
            assert_eq!(p.schedule(&input([x, 1, x, 3]), Instant::ZERO), Some(b));
        }
        p.remove(b).unwrap();
        assert_eq!(p.schedule(&input([1, 2, 3, 4]), Instant::ZERO), None);
    }
}
