//! `sed`: shortest expected delay (`net/netfilter/ipvs/ip_vs_sed.c`).
//!
//! As `wlc` with the overhead `activeconns + 1` (the incoming connection counted,
//! inactive connections ignored): the first server that is neither overloaded nor of
//! weight 0 starts as the best, the rest of the list (skipping overloaded servers only)
//! replaces it when `(s64)loh * weight(d) > (s64)doh * weight(least)`, strictly, so the
//! least `(active + 1) / weight` wins and the earliest wins ties.
//!
//! [`Sed`] returns exactly that server from a [`Tournament`] in O(1) per pick and
//! O(log n) per counter change; [`linear_scan`] is the kernel's loop, kept as the
//! reference and the baseline.
//!
//! Verified against the source: `ip_vs_sed_dest_overhead` is `activeconns + 1` in an
//! `int`; it is exact in 64 bits here.

use super::tournament::{Rank, Tournament, ratio_less};
use super::{DestId, DestList, RealServer, SchedInput, Scheduler};
use crate::time::Instant;

/// The `sed` scheduler, O(1) pick over a tournament tree.
#[derive(Debug, Clone, Default)]
pub struct Sed {
    tree: Tournament<Delay>,
}

impl Sed {
    /// A fresh scheduler (the pool tells it about its servers).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

/// `ip_vs_sed_dest_overhead`.
fn expected(d: &RealServer) -> u64 {
    u64::from(d.active()) + 1
}

/// Rank: (active + 1) over weight, smaller is better.
#[derive(Debug, Clone, Copy)]
struct Delay {
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

impl Scheduler for Sed {
    fn name(&self) -> &'static str {
        "sed"
    }

    fn schedule(&mut self, dests: &DestList, _input: &SchedInput, _now: Instant) -> Option<DestId> {
        if self.tree.is_synced(dests) {
            self.tree.best()
        } else {
            linear_scan(dests)
        }
    }

    fn dest_added(&mut self, dests: &DestList, _id: DestId) {
        self.tree.rebuild(dests);
    }

    fn dest_updated(&mut self, dests: &DestList, id: DestId) {
        self.tree.update(dests, id);
    }

    fn dest_removed(&mut self, dests: &DestList, _id: DestId) {
        self.tree.rebuild(dests);
    }

    fn load_changed(&mut self, dests: &DestList, id: DestId) {
        self.tree.update(dests, id);
    }
}
