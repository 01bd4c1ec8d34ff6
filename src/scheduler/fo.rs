//! `fo`: weighted failover (`net/netfilter/ipvs/ip_vs_fo.c`).
//!
//! The kernel returns the server of highest weight among those not overloaded, starting
//! from `hw = 0` and replacing on a strictly higher weight: weight-0 servers never win and
//! the first in list order wins ties. Connection counts play no part.
//!
//! [`Fo`] returns exactly that server from a [`Tournament`] (O(1) pick, O(log n) per
//! overload change); [`linear_scan`] is the kernel's loop, kept as the reference.
//!
//! Verified against the source: `atomic_read(&dest->weight) > hw` with `hw = 0`.

use super::tournament::{Rank, Tournament};
use super::{DestId, DestList, RealServer, SchedInput, Scheduler};
use crate::time::Instant;

/// The `fo` scheduler.
#[derive(Debug, Clone, Default)]
pub struct Fo {
    tree: Tournament<Heaviest>,
}

impl Fo {
    /// A fresh scheduler (the pool tells it about its servers).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

/// Rank: the weight, higher is better.
#[derive(Debug, Clone, Copy)]
struct Heaviest(u32);

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

impl Scheduler for Fo {
    fn name(&self) -> &'static str {
        "fo"
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
