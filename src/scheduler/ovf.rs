//! `ovf`: overflow (`net/netfilter/ipvs/ip_vs_ovf.c`).
//!
//! The kernel skips servers that are overloaded, of weight 0, or whose active connection
//! count exceeds their weight (`activeconns > weight`, strictly: a server of weight `w`
//! still takes connections while it holds `w` active ones), and returns the one of
//! highest weight among the rest, replacing on a strictly higher weight (first in list
//! order on ties). Only active connections count, so with UDP (always "inactive") the
//! heaviest server takes everything.
//!
//! [`Ovf`] returns exactly that server from a [`Tournament`](super::tournament::Tournament) (O(1) pick, O(log n) per
//! counter change); [`linear_scan`] is the kernel's loop, kept as the reference.
//!
//! Verified against the source: `(flags & OVERLOAD) || activeconns > w || w == 0`, then
//! `!h || w > hw`.

use super::tournament::{Rank, RankedScheduler, TreeScheduler};
use super::{DestId, DestList, RealServer};

/// Whether the kernel's loop considers `d`.
fn has_room(d: &RealServer) -> bool {
    d.is_eligible() && d.active() <= d.weight()
}

/// Rank: the weight, higher is better, among servers with room.
#[derive(Debug, Clone, Copy)]
pub struct Room(u32);

impl Rank for Room {
    fn key(d: &RealServer) -> Option<Self> {
        has_room(d).then(|| Self(d.weight()))
    }
    fn beats(self, earlier: Self) -> bool {
        self.0 > earlier.0
    }
}

/// The kernel's `ip_vs_ovf_schedule` loop, O(n): the reference for [`Ovf`].
#[must_use]
pub fn linear_scan(dests: &DestList) -> Option<DestId> {
    let mut h: Option<&RealServer> = None;
    for d in dests.iter() {
        if !has_room(d) {
            continue;
        }
        if h.is_none_or(|h| d.weight() > h.weight()) {
            h = Some(d);
        }
    }
    h.map(RealServer::id)
}

/// The `ovf` scheduler.
pub type Ovf = TreeScheduler<Room>;

impl RankedScheduler for Room {
    const NAME: &'static str = "ovf";

    fn linear_scan(dests: &DestList) -> Option<DestId> {
        linear_scan(dests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::ConnCount;
    use crate::scheduler::test_support::{load, picks, picks_binding, pool, pool_thr};

    #[test]
    fn overflows_when_active_exceeds_weight() {
        let (mut p, ids) = pool(Ovf::new(), &[5, 5, 2]);
        assert_eq!(p.scheduler().name(), "ovf");
        // List C(2), B(5), A(5): B, the first of the heaviest, takes 6 (active 0..=5,
        // `active > weight` only at 6), then A takes 6, then C 3, then none.
        assert_eq!(picks_binding(&mut p, &ids, 16), "BBBBBBAAAAAACCC-");
        // Inactive connections do not count.
        load(&mut p, &ids, &[(0, 1000), (6, 0), (3, 0)]);
        assert_eq!(picks(&mut p, &ids, 1), "A");
    }

    #[test]
    fn weight_zero_and_overload() {
        let (mut p, ids) = pool_thr(Ovf::new(), &[(0, 0, 0), (3, 2, 0)]);
        assert_eq!(picks_binding(&mut p, &ids, 3), "BB-");
        p.unbind(ids[1], ConnCount::Active).unwrap(); // 4 < 6
        assert_eq!(picks(&mut p, &ids, 1), "B");
        p.edit(ids[0], 1, 0, 0).unwrap();
        p.bind(ids[1], ConnCount::Active).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "A");
        p.remove(ids[0]).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "-");
    }
}
