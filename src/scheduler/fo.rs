//! `fo`: weighted failover (`net/netfilter/ipvs/ip_vs_fo.c`).
//!
//! The kernel returns the server of highest weight among those not overloaded, starting
//! from `hw = 0` and replacing on a strictly higher weight: weight-0 servers never win and
//! the first in list order wins ties. Connection counts play no part.
//!
//! [`Fo`] returns exactly that server from a [`Tournament`](super::tournament::Tournament) (O(1) pick, O(log n) per
//! overload change); [`linear_scan`] is the kernel's loop, kept as the reference.
//!
//! Verified against the source: `atomic_read(&dest->weight) > hw` with `hw = 0`.

use super::tournament::{Rank, RankedScheduler, TreeScheduler};
use super::{DestId, DestList, RealServer};

/// Rank: the weight, higher is better.
#[derive(Debug, Clone, Copy)]
pub struct Heaviest(u32);

impl Rank for Heaviest {
    fn key(d: &RealServer) -> Option<Self> {
        d.is_eligible().then(|| Self(d.weight()))
    }
    fn beats(self, earlier: Self) -> bool {
        self.0 > earlier.0
    }
}

/// The kernel's `ip_vs_fo_schedule` loop, O(n): the reference for [`Fo`].
#[must_use]
pub fn linear_scan(dests: &DestList) -> Option<DestId> {
    let mut best = None;
    let mut hw = 0;
    for d in dests.iter() {
        if !d.is_overloaded() && d.weight() > hw {
            best = Some(d.id());
            hw = d.weight();
        }
    }
    best
}

/// The `fo` scheduler.
pub type Fo = TreeScheduler<Heaviest>;

impl RankedScheduler for Heaviest {
    const NAME: &'static str = "fo";

    fn linear_scan(dests: &DestList) -> Option<DestId> {
        linear_scan(dests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::ConnCount;
    use crate::scheduler::test_support::{add, picks, picks_binding, pool, pool_thr};

    #[test]
    fn heaviest_first_in_list_on_ties() {
        let (mut p, ids) = pool(Fo::new(), &[3, 5, 5]);
        assert_eq!(p.scheduler().name(), "fo");
        // List C, B, A: C and B tie at 5, C first; loads do not matter.
        assert_eq!(picks_binding(&mut p, &ids, 3), "CCC");
        p.edit(ids[1], 6, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "B");
    }

    #[test]
    fn failover_on_overload_and_back() {
        let (mut p, ids) = pool_thr(Fo::new(), &[(1, 0, 0), (9, 2, 0)]);
        assert_eq!(picks_binding(&mut p, &ids, 3), "BBA");
        p.unbind(ids[1], ConnCount::Active).unwrap(); // 4 < 6: back
        assert_eq!(picks(&mut p, &ids, 1), "B");
        p.edit(ids[0], 0, 0, 0).unwrap();
        p.bind(ids[1], ConnCount::Active).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "-", "B overloaded, A quiesced");
    }

    #[test]
    fn single_and_added_mid_stream() {
        let (mut p, mut ids) = pool(Fo::new(), &[0]);
        assert_eq!(picks(&mut p, &ids, 1), "-");
        add(&mut p, &mut ids, 1);
        assert_eq!(picks(&mut p, &ids, 2), "BB");
        add(&mut p, &mut ids, 2);
        assert_eq!(picks(&mut p, &ids, 1), "C");
        p.remove(ids[2]).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "B");
    }
}
