//! `sed`: shortest expected delay (`net/netfilter/ipvs/ip_vs_sed.c`).
//!
//! As `wlc` with the overhead `activeconns + 1` (the incoming connection counted,
//! inactive connections ignored): the first server that is neither overloaded nor of
//! weight 0 starts as the best, the rest of the list (skipping overloaded servers only)
//! replaces it when `(s64)loh * weight(d) > (s64)doh * weight(least)`, strictly, so the
//! least `(active + 1) / weight` wins and the earliest wins ties.
//!
//! [`Sed`] returns exactly that server from a [`Tournament`](super::tournament::Tournament) in O(1) per pick and
//! O(log n) per counter change; [`linear_scan`] is the kernel's loop, kept as the
//! reference and the baseline.
//!
//! Verified against the source: `ip_vs_sed_dest_overhead` is `activeconns + 1` in an
//! `int`; it is exact in 64 bits here.

use super::tournament::{Rank, RankedScheduler, TreeScheduler, ratio_less};
use super::{DestId, DestList, RealServer};

/// `ip_vs_sed_dest_overhead`.
fn expected(d: &RealServer) -> u64 {
    u64::from(d.active()) + 1
}

/// Rank: (active + 1) over weight, smaller is better.
#[derive(Debug, Clone, Copy)]
pub struct Delay {
    overhead: u64,
    weight: u32,
}

impl Rank for Delay {
    fn key(d: &RealServer) -> Option<Self> {
        d.is_eligible().then(|| Self {
            overhead: expected(d),
            weight: d.weight(),
        })
    }
    fn beats(self, earlier: Self) -> bool {
        ratio_less(self.overhead, self.weight, earlier.overhead, earlier.weight)
    }
}

/// The kernel's `ip_vs_sed_schedule` loop, O(n): the reference for [`Sed`].
#[must_use]
pub fn linear_scan(dests: &DestList) -> Option<DestId> {
    let mut it = dests.iter();
    let mut least = it.by_ref().find(|d| d.is_eligible())?;
    let mut loh = u128::from(expected(least));
    for d in it {
        if d.is_overloaded() {
            continue;
        }
        let doh = u128::from(expected(d));
        if loh * u128::from(d.weight()) > doh * u128::from(least.weight()) {
            least = d;
            loh = doh;
        }
    }
    Some(least.id())
}

/// The `sed` scheduler, O(1) pick over a tournament tree.
pub type Sed = TreeScheduler<Delay>;

impl RankedScheduler for Delay {
    const NAME: &'static str = "sed";

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
    fn expected_delay_ignores_inactive() {
        let (mut p, ids) = pool(Sed::new(), &[1, 3]);
        assert_eq!(p.scheduler().name(), "sed");
        // A (0+1)/1 = 1 ties B (2+1)/3 = 1; list B, A: B. Inactive counts do not matter.
        load(&mut p, &ids, &[(0, 0), (2, 1000)]);
        assert_eq!(picks(&mut p, &ids, 1), "B");
        p.set_counters(ids[1], 3, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "A");
    }

    #[test]
    fn hand_derived_sequence() {
        // A=1, B=2, C=3 idle, each pick binds. (active+1)/w before each pick:
        // 1: C 1/3 B 1/2 A 1 -> C. 2: C 2/3 B 1/2 -> B. 3: C 2/3 B 1 A 1 -> C.
        // 4: C 1 B 1 A 1 -> C (first). 5: C 4/3 B 1 A 1 -> B. 6: C 4/3 B 3/2 A 1 -> A.
        // 7: C 4/3 B 3/2 A 2 -> C.
        let (mut p, ids) = pool(Sed::new(), &[1, 2, 3]);
        assert_eq!(picks_binding(&mut p, &ids, 7), "CBCCBAC");
    }

    #[test]
    fn weight_zero_single_overload() {
        let (mut p, mut ids) = pool(Sed::new(), &[0]);
        assert_eq!(picks(&mut p, &ids, 1), "-");
        add(&mut p, &mut ids, 2);
        assert_eq!(picks_binding(&mut p, &ids, 3), "BBB");
        let (mut p, ids) = pool_thr(Sed::new(), &[(1, 1, 0), (1, 1, 0)]);
        assert_eq!(picks_binding(&mut p, &ids, 3), "BA-");
        p.unbind(ids[0], ConnCount::Active).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "A");
        p.remove(ids[0]).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "-");
    }
}
