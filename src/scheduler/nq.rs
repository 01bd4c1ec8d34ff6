//! `nq`: never queue (`net/netfilter/ipvs/ip_vs_nq.c`).
//!
//! The kernel walks the list skipping overloaded servers and servers of weight 0; the
//! first server with no active connection is returned at once; otherwise it keeps the
//! least `(active + 1) / weight`, replacing the best `least` by `d` when
//! `(s64)loh * weight(d) > (s64)doh * weight(least)`, strictly (the first candidate
//! starts as the best), so the earliest wins ties.
//!
//! [`Nq`] models this exactly in a [`Tournament`](super::tournament::Tournament) whose rank is `(active != 0, ratio)`:
//! every idle server ties with every other idle one (so the earliest idle wins) and beats
//! every busy one; busy servers compare by exact cross multiplication. O(1) per pick,
//! O(log n) per counter change. [`linear_scan`] is the kernel's loop, kept as the
//! reference and the baseline.
//!
//! Verified against the source: `ip_vs_nq_dest_overhead` is `activeconns + 1` in an
//! `int`; exact in 64 bits here.

use super::tournament::{Rank, RankedScheduler, TreeScheduler, ratio_less};
use super::{DestId, DestList, RealServer};

/// `ip_vs_nq_dest_overhead`.
fn expected(d: &RealServer) -> u64 {
    u64::from(d.active()) + 1
}

/// Rank: idle before busy; busy by (active + 1) over weight.
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    busy: bool,
    overhead: u64,
    weight: u32,
}

impl Rank for Queue {
    fn key(d: &RealServer) -> Option<Self> {
        d.is_eligible().then(|| Self {
            busy: d.active() != 0,
            overhead: expected(d),
            weight: d.weight(),
        })
    }
    fn beats(self, earlier: Self) -> bool {
        match (self.busy, earlier.busy) {
            // An earlier idle server returned already; an idle one beats any busy best.
            (_, false) => false,
            (false, true) => true,
            (true, true) => {
                ratio_less(self.overhead, self.weight, earlier.overhead, earlier.weight)
            }
        }
    }
}

/// The kernel's `ip_vs_nq_schedule` loop, O(n): the reference for [`Nq`].
#[must_use]
pub fn linear_scan(dests: &DestList) -> Option<DestId> {
    let mut least: Option<&RealServer> = None;
    let mut loh = 0u128;
    for d in dests.iter() {
        if d.is_overloaded() || d.weight() == 0 {
            continue;
        }
        let doh = u128::from(expected(d));
        if d.active() == 0 {
            return Some(d.id());
        }
        if least.is_none_or(|l| loh * u128::from(d.weight()) > doh * u128::from(l.weight())) {
            least = Some(d);
            loh = doh;
        }
    }
    least.map(RealServer::id)
}

/// The `nq` scheduler, O(1) pick over a tournament tree.
pub type Nq = TreeScheduler<Queue>;

impl RankedScheduler for Queue {
    const NAME: &'static str = "nq";

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
    fn first_idle_wins_at_once() {
        // List C, B, A: C busy, B idle, A idle with a far higher weight: B.
        let (mut p, ids) = pool(Nq::new(), &[100, 1, 1]);
        assert_eq!(p.scheduler().name(), "nq");
        load(&mut p, &ids, &[(0, 50), (0, 9), (5, 0)]);
        assert_eq!(picks(&mut p, &ids, 1), "B");
        // Idle but quiesced or overloaded servers do not count.
        p.edit(ids[1], 0, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "A");
        // No idle server: least (active+1)/weight, first on ties.
        load(&mut p, &ids, &[(299, 0), (0, 0), (2, 0)]);
        assert_eq!(picks(&mut p, &ids, 1), "C", "3/1 ties 300/100: C first");
        p.set_counters(ids[2], 3, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "A");
    }

    #[test]
    fn hand_derived_sequence() {
        // A=1, B=2, C=3 idle, each pick binds: the idle ones in list order (C, B, A),
        // then (active+1)/w: 4: C 2/3 B 1 A 2 -> C. 5: C 1 B 1 A 2 -> C (first).
        // 6: C 4/3 B 1 -> B. 7: C 4/3 B 3/2 A 2 -> C.
        let (mut p, ids) = pool(Nq::new(), &[1, 2, 3]);
        assert_eq!(picks_binding(&mut p, &ids, 7), "CBACCBC");
    }

    #[test]
    fn weight_zero_single_overload() {
        let (mut p, mut ids) = pool(Nq::new(), &[0]);
        assert_eq!(picks(&mut p, &ids, 1), "-");
        add(&mut p, &mut ids, 1);
        assert_eq!(picks_binding(&mut p, &ids, 2), "BB");
        let (mut p, ids) = pool_thr(Nq::new(), &[(1, 2, 0), (1, 1, 0)]);
        assert_eq!(picks_binding(&mut p, &ids, 4), "BAA-");
        p.unbind(ids[1], ConnCount::Active).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "B", "idle again");
    }
}
