//! `lc`: least connection (`net/netfilter/ipvs/ip_vs_lc.c`).
//!
//! The kernel skips overloaded servers and servers of weight 0 and keeps the server with
//! the least overhead, `activeconns * 256 + inactconns` (`ip_vs_dest_conn_overhead`; the
//! source comment still says `<< 5`, the code shifts by 8), replacing the best only on a
//! strictly smaller overhead: the first server in list order wins ties. Weights other than
//! 0 play no part.
//!
//! [`Lc`] returns exactly that server from a [`Tournament`] in O(1) per pick and
//! O(log n) per counter change; [`linear_scan`] is the kernel's loop, kept as the
//! reference and the baseline.
//!
//! Verified against the source: `loh`/`doh` are `unsigned int` there and the overhead is
//! an `int`, so the kernel's arithmetic wraps once a server holds 2^23 active
//! connections; here the overhead is exact in 64 bits (counts that large are outside
//! what a connection table holds).

use super::tournament::{Rank, Tournament};
use super::{DestId, DestList, RealServer, SchedInput, Scheduler};
use crate::time::Instant;

/// The `lc` scheduler, O(1) pick over a tournament tree.
#[derive(Debug, Clone, Default)]
pub struct Lc {
    tree: Tournament<Overhead>,
}

impl Lc {
    /// A fresh scheduler (the pool tells it about its servers).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

/// Rank: the connection overhead, smaller is better.
#[derive(Debug, Clone, Copy)]
struct Overhead(u64);

impl Rank for Overhead {
    fn key(d: &RealServer) -> Option<Self> {
        d.is_eligible().then(|| Self(d.overhead()))
    }
    fn beats(self, earlier: Self) -> bool {
        self.0 < earlier.0
    }
}

/// The kernel's `ip_vs_lc_schedule` loop, O(n): the reference for [`Lc`].
#[must_use]
pub fn linear_scan(dests: &DestList) -> Option<DestId> {
    let mut least: Option<&RealServer> = None;
    let mut loh = 0;
    for d in dests.iter() {
        if d.is_overloaded() || d.weight() == 0 {
            continue;
        }
        let doh = d.overhead();
        if least.is_none() || doh < loh {
            least = Some(d);
            loh = doh;
        }
    }
    least.map(RealServer::id)
}

impl Scheduler for Lc {
    fn name(&self) -> &'static str {
        "lc"
    }

    fn schedule(&mut self, dests: &DestList, _input: &SchedInput, _now: Instant) -> Option<DestId> {
        if self.tree.is_synced(dests) {
            self.tree.best()
        } else {
            // Not told about the servers (used without a Pool): stay exact.
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
