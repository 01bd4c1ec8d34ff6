//! `lc`: least connection (`net/netfilter/ipvs/ip_vs_lc.c`).
//!
//! The kernel skips overloaded servers and servers of weight 0 and keeps the server with
//! the least overhead, `activeconns * 256 + inactconns` (`ip_vs_dest_conn_overhead`; the
//! source comment still says `<< 5`, the code shifts by 8), replacing the best only on a
//! strictly smaller overhead: the first server in list order wins ties. Weights other than
//! 0 play no part.
//!
//! [`Lc`] returns exactly that server from a [`Tournament`](super::tournament::Tournament) in O(1) per pick and
//! O(log n) per counter change; [`linear_scan`] is the kernel's loop, kept as the
//! reference and the baseline.
//!
//! Verified against the source: `loh`/`doh` are `unsigned int` there and the overhead is
//! an `int`, so the kernel's arithmetic wraps once a server holds 2^23 active
//! connections; here the overhead is exact in 64 bits (counts that large are outside
//! what a connection table holds).

use super::tournament::{Rank, RankedScheduler, TreeScheduler};
use super::{DestId, DestList, RealServer};

/// Rank: the connection overhead, smaller is better.
#[derive(Debug, Clone, Copy)]
pub struct Overhead(u64);

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

/// The `lc` scheduler, O(1) pick over a tournament tree.
pub type Lc = TreeScheduler<Overhead>;

impl RankedScheduler for Overhead {
    const NAME: &'static str = "lc";

    fn linear_scan(dests: &DestList) -> Option<DestId> {
        linear_scan(dests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::ConnCount;
    use crate::scheduler::Scheduler;
    use crate::scheduler::test_support::{add, load, picks, picks_binding, pool, pool_thr};
    use crate::time::Instant;

    #[test]
    fn least_overhead_first_in_list_on_ties() {
        let (mut p, ids) = pool(Lc::new(), &[1, 7, 3]);
        assert_eq!(p.scheduler().name(), "lc");
        // List C, B, A. Overheads A 256, B 10, C 10: tie, C first.
        load(&mut p, &ids, &[(1, 0), (0, 10), (0, 10)]);
        assert_eq!(picks(&mut p, &ids, 1), "C");
        p.set_counters(ids[2], 0, 11, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "B");
        // Active counts 256 times: A 256 against B 255, then a tie (B first), then A.
        load(&mut p, &ids, &[(1, 0), (0, 255), (9, 0)]);
        assert_eq!(picks(&mut p, &ids, 1), "B");
        p.set_counters(ids[1], 0, 256, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "B");
        p.set_counters(ids[1], 0, 257, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "A");
        // Weights other than 0 play no part.
        let (mut p, ids) = pool(Lc::new(), &[1, 2, 3]);
        assert_eq!(picks_binding(&mut p, &ids, 6), "CBACBA");
    }

    #[test]
    fn weight_zero_single_and_empty() {
        let (mut p, mut ids) = pool(Lc::new(), &[]);
        assert_eq!(picks(&mut p, &ids, 1), "-");
        add(&mut p, &mut ids, 1);
        assert_eq!(picks_binding(&mut p, &ids, 3), "AAA");
        add(&mut p, &mut ids, 0);
        assert_eq!(picks(&mut p, &ids, 1), "A", "B is idle but quiesced");
        p.edit(ids[0], 0, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "-");
        p.edit(ids[1], 5, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "B");
    }

    #[test]
    fn overload_up_and_down() {
        let (mut p, ids) = pool_thr(Lc::new(), &[(1, 2, 1), (1, 0, 0)]);
        load(&mut p, &ids, &[(0, 0), (0, 600)]);
        assert_eq!(picks_binding(&mut p, &ids, 2), "AA");
        assert!(p.dests().get(ids[0]).unwrap().is_overloaded());
        assert_eq!(picks(&mut p, &ids, 1), "B");
        p.unbind(ids[0], ConnCount::Active).unwrap();
        assert_eq!(
            picks(&mut p, &ids, 1),
            "B",
            "1 is not below the lower threshold 1"
        );
        p.unbind(ids[0], ConnCount::Active).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "A");
        p.bind(ids[1], ConnCount::Active).unwrap(); // no threshold on B
        p.edit(ids[1], 1, 1, 0).unwrap(); // lowered: the flag stays clear until a bind
        p.bind(ids[0], ConnCount::Active).unwrap();
        p.bind(ids[0], ConnCount::Active).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "B");
        p.bind(ids[1], ConnCount::Active).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "-", "every server overloaded");
    }

    #[test]
    fn adds_and_removes_mid_stream() {
        let (mut p, mut ids) = pool(Lc::new(), &[1, 1]);
        assert_eq!(picks_binding(&mut p, &ids, 4), "BABA");
        let c = add(&mut p, &mut ids, 1);
        assert_eq!(picks_binding(&mut p, &ids, 3), "CCC");
        p.remove(c).unwrap();
        assert_eq!(picks_binding(&mut p, &ids, 2), "BA");
        assert_eq!(
            linear_scan(p.dests()),
            p.schedule(&crate::scheduler::test_support::input(), Instant::ZERO)
        );
    }

    #[test]
    fn without_a_pool_it_scans() {
        let (p, _) = pool(Lc::new(), &[1, 1]);
        let mut lone = Lc::new();
        let input = crate::scheduler::test_support::input();
        assert_eq!(
            lone.schedule(p.dests(), &input, Instant::ZERO),
            linear_scan(p.dests())
        );
    }
}
