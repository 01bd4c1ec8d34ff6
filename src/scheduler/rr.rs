//! `rr`: round robin (`net/netfilter/ipvs/ip_vs_rr.c`).
//!
//! The kernel keeps a pointer `p` into the destination list, the list head at first.
//! A pick walks from the entry after `p` to the end of the list and, unless `p` is the
//! head, once more from the first entry up to and including `p`, and returns the first
//! server that is not overloaded and has a weight above 0 (`p` moves there). Nothing
//! found leaves `p` where it was. Adding or editing a server leaves `p` alone (new
//! servers enter the cycle at the head, so they are reached after the current tail);
//! removing the server `p` points at moves `p` back to the previous entry (or the head),
//! so the pick after it continues with the removed server's successor.
//!
//! Verified against the source: `ip_vs_rr_schedule` (`pass < 2 && p != head`, the
//! `dest == last` stop after testing `last`) and `ip_vs_rr_del_dest`
//! (`p = p->next->prev` on the unlinked entry, i.e. its predecessor).

use super::{DestId, DestList, SchedInput, Scheduler};
use crate::time::Instant;

/// The `rr` scheduler.
#[derive(Debug, Clone, Default)]
pub struct Rr {
    /// The kernel's `sched_data`: `None` is the list head.
    cur: Option<Cursor>,
}

/// A pointer to a server that survives servers being added at the head.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    id: DestId,
    /// Position counted from the tail of the list (adds do not move it).
    from_tail: usize,
}

impl Rr {
    /// A fresh scheduler, its pointer at the list head.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The server the pointer is at (`None`: the list head).
    #[must_use]
    pub fn current(&self) -> Option<DestId> {
        self.cur.map(|c| c.id)
    }

    /// Kernel list position of the pointer (`None`: the head). O(1) while the hooks keep
    /// it in step.
    fn position(&self, dests: &DestList) -> Option<usize> {
        let c = self.cur?;
        let n = dests.len();
        if c.from_tail < n {
            let p = n - 1 - c.from_tail;
            if dests.at(p).is_some_and(|d| d.id() == c.id) {
                return Some(p);
            }
        }
        dests.position(c.id)
    }

    fn cursor_at(dests: &DestList, p: usize) -> Option<Cursor> {
        let d = dests.at(p)?;
        Some(Cursor {
            id: d.id(),
            from_tail: dests.len() - 1 - p,
        })
    }
}

impl Scheduler for Rr {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn schedule(&mut self, dests: &DestList, _input: &SchedInput, _now: Instant) -> Option<DestId> {
        let n = dests.len();
        let last = self.position(dests);
        let second = last.map_or(0..0, |l| 0..l + 1);
        for p in (last.map_or(0, |l| l + 1)..n).chain(second) {
            let Some(d) = dests.at(p) else { break };
            if d.is_eligible() {
                self.cur = Some(Cursor {
                    id: d.id(),
                    from_tail: n - 1 - p,
                });
                return Some(d.id());
            }
        }
        None
    }

    fn dest_removing(&mut self, dests: &DestList, id: DestId) {
        if self.current() == Some(id) {
            self.cur = match self.position(dests) {
                Some(p) if p > 0 => Self::cursor_at(dests, p - 1),
                _ => None,
            };
        }
    }

    fn dest_removed(&mut self, dests: &DestList, _id: DestId) {
        // Positions from the tail above the removed server moved down by one.
        if let Some(c) = self.cur {
            self.cur = dests.position(c.id).and_then(|p| Self::cursor_at(dests, p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::test_support::{add, picks, pool};
    use crate::scheduler::{ConnCount, Pool, RealServerConfig};

    #[test]
    fn cycles_in_list_order_newest_first() {
        let (mut p, ids) = pool(Rr::new(), &[1, 1, 1]);
        // Kernel list: C, B, A; the pointer starts at the head.
        assert_eq!(picks(&mut p, &ids, 7), "CBACBAC");
        assert_eq!(p.scheduler().name(), "rr");
    }

    #[test]
    fn weights_do_not_matter_but_zero_quiesces() {
        let (mut p, ids) = pool(Rr::new(), &[5, 0, 1]);
        assert_eq!(picks(&mut p, &ids, 4), "CACA");
        p.edit(ids[2], 0, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 2), "AA");
        p.edit(ids[0], 0, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 2), "--");
        p.edit(ids[1], 3, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 2), "BB");
    }

    #[test]
    fn single_server_and_empty() {
        let (mut p, mut ids) = pool(Rr::new(), &[]);
        assert_eq!(picks(&mut p, &ids, 2), "--");
        add(&mut p, &mut ids, 1);
        assert_eq!(picks(&mut p, &ids, 3), "AAA");
    }

    #[test]
    fn overload_crossed_up_and_down() {
        let mut p = Pool::new(Box::new(Rr::new()));
        let cfg = |i| RealServerConfig::new(crate::scheduler::test_support::addr(i), 80);
        let ids: Vec<DestId> = (0..3)
            .map(|i| p.add(cfg(i).thresholds(2, 0)).unwrap())
            .collect();
        assert_eq!(picks(&mut p, &ids, 1), "C");
        p.bind(ids[1], ConnCount::Active).unwrap();
        p.bind(ids[1], ConnCount::Inactive).unwrap(); // 2 >= 2: B overloaded
        assert_eq!(picks(&mut p, &ids, 3), "ACA");
        for &id in &ids {
            p.bind(id, ConnCount::Active).unwrap();
            p.bind(id, ConnCount::Active).unwrap();
        }
        assert_eq!(picks(&mut p, &ids, 2), "--", "every server overloaded");
        // The failed picks left the pointer at A: B comes next once it is back.
        p.unbind(ids[1], ConnCount::Active).unwrap();
        assert!(p.dests().get(ids[1]).unwrap().is_overloaded(), "3*4 >= 2*3");
        p.unbind(ids[1], ConnCount::Active).unwrap();
        p.unbind(ids[1], ConnCount::Inactive).unwrap(); // 1*4 < 6: cleared
        assert_eq!(picks(&mut p, &ids, 2), "BB");
        p.unbind(ids[2], ConnCount::Active).unwrap();
        p.unbind(ids[2], ConnCount::Active).unwrap();
        assert_eq!(picks(&mut p, &ids, 3), "CBC");
    }

    #[test]
    fn removing_the_current_server_moves_the_pointer_back() {
        let (mut p, ids) = pool(Rr::new(), &[1, 1, 1, 1]);
        // List D, C, B, A.
        assert_eq!(picks(&mut p, &ids, 2), "DC");
        p.remove(ids[2]).unwrap(); // pointer C -> D
        assert_eq!(picks(&mut p, &ids, 3), "BAD");
        p.remove(ids[3]).unwrap(); // pointer at the first entry -> head
        assert_eq!(picks(&mut p, &ids, 3), "BAB");
        p.remove(ids[0]).unwrap(); // A was not current; B keeps the pointer
        assert_eq!(picks(&mut p, &ids, 2), "BB");
    }

    #[test]
    fn removing_another_server_keeps_the_pointer() {
        let (mut p, ids) = pool(Rr::new(), &[1, 1, 1, 1]);
        assert_eq!(picks(&mut p, &ids, 2), "DC");
        p.remove(ids[0]).unwrap(); // A, after the pointer
        assert_eq!(picks(&mut p, &ids, 3), "BDC");
        p.remove(ids[3]).unwrap(); // D, before the pointer (C)
        assert_eq!(picks(&mut p, &ids, 3), "BCB");
    }

    #[test]
    fn added_servers_enter_at_the_head() {
        let (mut p, mut ids) = pool(Rr::new(), &[1, 1, 1]);
        assert_eq!(picks(&mut p, &ids, 2), "CB");
        add(&mut p, &mut ids, 1); // D, C, B, A with the pointer at B
        assert_eq!(picks(&mut p, &ids, 5), "ADCBA");
    }

    #[test]
    fn set_scheduler_starts_at_the_head() {
        let (mut p, ids) = pool(Rr::new(), &[1, 1, 1]);
        assert_eq!(picks(&mut p, &ids, 2), "CB");
        p.set_scheduler(Box::new(Rr::new()));
        assert_eq!(picks(&mut p, &ids, 2), "CB");
    }
}
