//! `wlc`: weighted least connection (`net/netfilter/ipvs/ip_vs_wlc.c`), the default
//! scheduler of ipvsadm and keepalived.
//!
//! The kernel takes the first server in list order that is neither overloaded nor of
//! weight 0 as the current best, then walks the rest of the list (skipping overloaded
//! servers only) and replaces the best `least` by `d` when
//! `(s64)loh * weight(d) > (s64)doh * weight(least)`, strictly: the least
//! `overhead / weight` wins and the earliest wins ties. A weight-0 server met in the
//! second stage can never win (`0 > doh * w` is false for a non-negative overhead).
//!
//! [`Wlc`] returns exactly that server from a [`Tournament`](super::tournament::Tournament) in O(1) per pick and
//! O(log n) per counter change, comparing `overhead / weight` by exact cross
//! multiplication in 128 bits; [`linear_scan`] is the kernel's two-stage loop, kept as
//! the reference and the baseline.
//!
//! Verified against the source: the overhead is an `int` (`active << 8 + inactive`),
//! which wraps in the kernel once a server holds 2^23 active connections; here it is
//! exact in 64 bits.

use super::tournament::{Rank, RankedScheduler, TreeScheduler, ratio_less};
use super::{DestId, DestList, RealServer};

/// Rank: overhead over weight, smaller is better.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    overhead: u64,
    weight: u32,
}

impl Rank for Load {
    fn key(d: &RealServer) -> Option<Self> {
        d.is_eligible().then(|| Self {
            overhead: d.overhead(),
            weight: d.weight(),
        })
    }
    fn beats(self, earlier: Self) -> bool {
        ratio_less(self.overhead, self.weight, earlier.overhead, earlier.weight)
    }
}

/// The kernel's `ip_vs_wlc_schedule` loop, O(n): the reference for [`Wlc`].
#[must_use]
pub fn linear_scan(dests: &DestList) -> Option<DestId> {
    let mut it = dests.iter();
    let mut least = it.by_ref().find(|d| d.is_eligible())?;
    let mut loh = u128::from(least.overhead());
    for d in it {
        if d.is_overloaded() {
            continue;
        }
        let doh = u128::from(d.overhead());
        if loh * u128::from(d.weight()) > doh * u128::from(least.weight()) {
            least = d;
            loh = doh;
        }
    }
    Some(least.id())
}

/// The `wlc` scheduler, O(1) pick over a tournament tree.
pub type Wlc = TreeScheduler<Load>;

impl RankedScheduler for Load {
    const NAME: &'static str = "wlc";

    fn linear_scan(dests: &DestList) -> Option<DestId> {
        linear_scan(dests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::ConnCount;
    use crate::scheduler::test_support::{add, load, picks, picks_binding, pool, pool_thr};

    #[test]
    fn least_overhead_per_weight() {
        let (mut p, ids) = pool(Wlc::new(), &[3, 1, 2]);
        assert_eq!(p.scheduler().name(), "wlc");
        // A 512/3 = 170.7, B 100/1, C 256/2 = 128: B.
        load(&mut p, &ids, &[(2, 0), (0, 100), (1, 0)]);
        assert_eq!(picks(&mut p, &ids, 1), "B");
        p.set_counters(ids[1], 0, 200, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "C");
        // Exact ties by cross multiplication go to the earlier entry: A 512/2 against
        // B 256/1, list B, A.
        let (mut p, ids) = pool(Wlc::new(), &[2, 1]);
        load(&mut p, &ids, &[(2, 0), (1, 0)]);
        assert_eq!(picks(&mut p, &ids, 1), "B");
    }

    #[test]
    fn hand_derived_sequence() {
        // A=1, B=2, C=3 idle, each pick binds an active connection. List C, B, A.
        // 1: all 0, C first. 2: B and A idle, B first. 3: A. 4: C 256/3 < B 128 < A 256.
        // 5: C 512/3 = 170.7 > B 128: B. 6: C 170.7 < B 256 = A 256: C.
        // 7: C 768/3 = 256 = B = A: C, the first.
        let (mut p, ids) = pool(Wlc::new(), &[1, 2, 3]);
        assert_eq!(picks_binding(&mut p, &ids, 7), "CBACBCC");
    }

    #[test]
    fn large_counts_compare_exactly() {
        // 2^40-ish overheads times weight 65535 pass 2^56: still exact.
        let (mut p, ids) = pool(Wlc::new(), &[65535, 65534]);
        load(&mut p, &ids, &[(1 << 30, 0), ((1 << 30) - 16384, 0)]);
        // A: 2^38 / 65535, B: (2^38 - 2^22) / 65534. Cross products: A's overhead times
        // B's weight is 2^38 * 65534; B's times A's is 2^38 * 65535 - 2^22 * 65535,
        // larger by 2^22 (relative difference 2^-32): A is lower by a hair.
        assert_eq!(picks(&mut p, &ids, 1), "A");
        assert_eq!(linear_scan(p.dests()), Some(ids[0]));
        p.set_counters(ids[0], 1 << 30, 1 << 23, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "B");
    }

    #[test]
    fn weight_zero_never_wins_and_empty() {
        // C 1 w/ 500, B weight 0 idle, A 100: A.
        let (mut p, ids) = pool(Wlc::new(), &[1, 0, 1]);
        load(&mut p, &ids, &[(0, 100), (0, 0), (0, 500)]);
        assert_eq!(picks(&mut p, &ids, 1), "A");
        // A weight-0 server at the head is skipped for the first candidate too.
        let (mut p, mut ids) = pool(Wlc::new(), &[1]);
        add(&mut p, &mut ids, 0);
        assert_eq!(picks_binding(&mut p, &ids, 3), "AAA");
        p.edit(ids[0], 0, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "-");
        let (mut p, ids) = pool(Wlc::new(), &[]);
        assert_eq!(picks(&mut p, &ids, 1), "-");
    }

    #[test]
    fn overload_up_and_down() {
        let (mut p, ids) = pool_thr(Wlc::new(), &[(10, 4, 0), (1, 4, 0)]);
        // A takes the first 4 (B: 256/1 would lose to A's up to 2560/10), then overloads.
        assert_eq!(picks_binding(&mut p, &ids, 5), "BAAAA");
        assert!(p.dests().get(ids[0]).unwrap().is_overloaded());
        assert_eq!(picks_binding(&mut p, &ids, 3), "BBB");
        assert_eq!(picks(&mut p, &ids, 1), "-", "both overloaded");
        p.unbind(ids[0], ConnCount::Active).unwrap(); // 3*4 = 12 is not < 12
        assert_eq!(picks(&mut p, &ids, 1), "-");
        p.unbind(ids[0], ConnCount::Active).unwrap(); // 8 < 12: cleared
        assert_eq!(picks(&mut p, &ids, 1), "A");
    }

    #[test]
    fn adds_and_removes_mid_stream() {
        let (mut p, mut ids) = pool(Wlc::new(), &[1, 1]);
        assert_eq!(picks_binding(&mut p, &ids, 4), "BABA");
        let c = add(&mut p, &mut ids, 2);
        // C idle takes 4 (4*256/2 = 512 ties A and B at 2*256/1, C first), then all tie.
        assert_eq!(picks_binding(&mut p, &ids, 6), "CCCCCB");
        p.remove(c).unwrap();
        assert_eq!(picks_binding(&mut p, &ids, 2), "AB");
    }
}
