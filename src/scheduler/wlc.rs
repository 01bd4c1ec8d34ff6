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
//! [`Wlc`] returns exactly that server from a [`Tournament`] in O(1) per pick and
//! O(log n) per counter change, comparing `overhead / weight` by exact cross
//! multiplication in 128 bits; [`linear_scan`] is the kernel's two-stage loop, kept as
//! the reference and the baseline.
//!
//! Verified against the source: the overhead is an `int` (`active << 8 + inactive`),
//! which wraps in the kernel once a server holds 2^23 active connections; here it is
//! exact in 64 bits.

use super::tournament::{Rank, Tournament, ratio_less};
use super::{DestId, DestList, RealServer, SchedInput, Scheduler};
use crate::time::Instant;

/// The `wlc` scheduler, O(1) pick over a tournament tree.
#[derive(Debug, Clone, Default)]
pub struct Wlc {
    tree: Tournament<Load>,
}

impl Wlc {
    /// A fresh scheduler (the pool tells it about its servers).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

/// Rank: overhead over weight, smaller is better.
#[derive(Debug, Clone, Copy)]
struct Load {
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

impl Scheduler for Wlc {
    fn name(&self) -> &'static str {
        "wlc"
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
