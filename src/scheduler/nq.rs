//! `nq`: never queue (`net/netfilter/ipvs/ip_vs_nq.c`).
//!
//! The kernel walks the list skipping overloaded servers and servers of weight 0; the
//! first server with no active connection is returned at once; otherwise it keeps the
//! least `(active + 1) / weight`, replacing the best `least` by `d` when
//! `(s64)loh * weight(d) > (s64)doh * weight(least)`, strictly (the first candidate
//! starts as the best), so the earliest wins ties.
//!
//! [`Nq`] models this exactly in a [`Tournament`] whose rank is `(active != 0, ratio)`:
//! every idle server ties with every other idle one (so the earliest idle wins) and beats
//! every busy one; busy servers compare by exact cross multiplication. O(1) per pick,
//! O(log n) per counter change. [`linear_scan`] is the kernel's loop, kept as the
//! reference and the baseline.
//!
//! Verified against the source: `ip_vs_nq_dest_overhead` is `activeconns + 1` in an
//! `int`; exact in 64 bits here.

use super::tournament::{Rank, Tournament, ratio_less};
use super::{DestId, DestList, RealServer, SchedInput, Scheduler};
use crate::time::Instant;

/// The `nq` scheduler, O(1) pick over a tournament tree.
#[derive(Debug, Clone, Default)]
pub struct Nq {
    tree: Tournament<Queue>,
}

impl Nq {
    /// A fresh scheduler (the pool tells it about its servers).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

/// `ip_vs_nq_dest_overhead`.
fn expected(d: &RealServer) -> u64 {
    u64::from(d.active()) + 1
}

/// Rank: idle before busy; busy by (active + 1) over weight.
#[derive(Debug, Clone, Copy)]
struct Queue {
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

impl Scheduler for Nq {
    fn name(&self) -> &'static str {
        "nq"
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
