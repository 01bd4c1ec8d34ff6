//! `lblcr`: locality-based least-connection with replication
//! (`net/netfilter/ipvs/ip_vs_lblcr.c`).
//!
//! Like [`super::lblc`], but a destination address maps to a *set* of servers with the
//! time the set was last modified (`lastmod`) and the entry's `lastuse`:
//!
//! - Hit: `lastuse = now`; `dest = set_min` (weighted least-connection among members
//!   that are in the list, have weight > 0 and are not `OVERLOAD`; newest member first,
//!   strict comparison). Then, if the set has more than one member and
//!   `now > lastmod + lblcr_expiration`, `set_max` (the weighted *most* loaded member
//!   with weight > 0, whatever its flags) is erased (`lastmod = now`). If `dest` exists
//!   and is not overloaded in lblc's sense ([`super::lblc::is_overloaded`]) it is used —
//!   even when it was the member just erased, as in the kernel. Otherwise a WLC pick over
//!   the whole list is added to the set (at its head, `lastmod = now`, unless present).
//! - Miss: WLC pick, and a new entry with a one-member set. (The reference inventory says
//!   the entry is created only while `entries <= max_size`; mainline's
//!   `ip_vs_lblcr_schedule` has no such check, and neither does this.)
//! - Garbage collection: the same timer as lblc (60 s runs, a full scan every 30th run
//!   against `lblcr_expiration`, default 24 h; over `max_size` entries, 6-minute idle
//!   entries go from the rover on).
//!
//! A member removed from the list is not available (never `set_min`), but the kernel
//! still weighs it in `set_max` with its weight and connection counts. This scheduler
//! snapshots a removed server's weight and counters when the pool announces the removal
//! ([`Scheduler::dest_removing`]) and uses the snapshot there; snapshots no entry refers
//! to are dropped at the next GC scan. (The kernel's counters of a removed server keep
//! moving as its connections end; the snapshot does not.)
//!
//! Allocation: sets hold up to 4 members inline; a miss inserts into its bucket's `Vec`.

use super::hash::find_dest;
use super::lblc::{LocEntry, LocTable, is_overloaded, wlc_pick};
use super::{DestId, DestList, SchedInput, Scheduler};
use crate::time::Instant;
use core::net::IpAddr;
use core::time::Duration;
use smallvec::SmallVec;

#[derive(Debug, Clone)]
struct Entry {
    addr: IpAddr,
    /// Members in insertion order; the kernel's list (head insertion) is this reversed.
    set: SmallVec<[DestId; 4]>,
    lastmod: Instant,
    lastuse: Instant,
}

impl LocEntry for Entry {
    fn addr(&self) -> IpAddr {
        self.addr
    }
    fn lastuse(&self) -> Instant {
        self.lastuse
    }
}

/// Weight and `overhead` of a removed server, as it was removed.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    id: DestId,
    weight: u32,
    overhead: u64,
}

/// The locality-based least-connection with replication scheduler.
#[derive(Debug, Clone)]
pub struct Lblcr {
    table: LocTable<Entry>,
    trash: Vec<Snapshot>,
}

impl Default for Lblcr {
    fn default() -> Self {
        Self::new()
    }
}

impl Lblcr {
    /// A scheduler with the kernel's defaults.
    #[must_use]
    pub fn new() -> Self {
        Self {
            table: LocTable::new(),
            trash: Vec::new(),
        }
    }

    /// The same with another `lblcr_expiration` (sysctl, default 24 h): both the set
    /// shrink delay and the full-scan expiry.
    #[must_use]
    pub fn with_expiration(mut self, expiration: Duration) -> Self {
        self.table.expiration = expiration;
        self
    }

    /// The same with another `max_size` (fixed at 16384 in the kernel).
    #[must_use]
    pub fn with_max_size(mut self, max_size: usize) -> Self {
        self.table.max_size = max_size;
        self
    }

    /// Number of cached destination addresses.
    #[must_use]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the cache is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// The server set cached for destination `addr`, in the kernel's list order (most
    /// recently inserted first), and its `lastmod`.
    #[must_use]
    pub fn set(&self, addr: IpAddr) -> Option<(Vec<DestId>, Instant)> {
        self.table
            .get(addr)
            .map(|e| (e.set.iter().rev().copied().collect(), e.lastmod))
    }

    /// Runs the GC timer up to `now` (schedule does this itself).
    pub fn expire(&mut self, now: Instant) {
        if self.table.run_timer(now) && !self.trash.is_empty() {
            let table = &self.table;
            self.trash
                .retain(|s| table.iter().any(|e| e.set.contains(&s.id)));
        }
    }

    /// (weight, overhead) of a member for `set_max`: from the list, else its snapshot.
    fn load_of(&self, dests: &DestList, id: DestId) -> Option<(u32, u64)> {
        match find_dest(dests, id) {
            Some(d) => Some((d.weight(), d.overhead())),
            None => self
                .trash
                .iter()
                .find(|s| s.id == id)
                .map(|s| (s.weight, s.overhead)),
        }
    }
}

/// `ip_vs_dest_set_min`.
fn set_min(set: &[DestId], dests: &DestList) -> Option<DestId> {
    let mut it = set.iter().rev();
    let mut least = loop {
        let id = *it.next()?;
        // Removed: !AVAILABLE; the kernel skips it in both stages.
        let Some(d) = find_dest(dests, id) else {
            continue;
        };
        if !d.is_overloaded() && d.weight() > 0 {
            break d;
        }
    };
    let mut loh = least.overhead();
    for &id in it {
        let Some(d) = find_dest(dests, id) else {
            continue;
        };
        if d.is_overloaded() {
            continue;
        }
        let doh = d.overhead();
        if u128::from(loh) * u128::from(d.weight()) > u128::from(doh) * u128::from(least.weight()) {
            least = d;
            loh = doh;
        }
    }
    Some(least.id())
}

impl Scheduler for Lblcr {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    fn schedule(&mut self, dests: &DestList, input: &SchedInput, now: Instant) -> Option<DestId> {
        self.expire(now);
        let addr = input.dst;
        let expiration = self.table.expiration;
        if self.table.get(addr).is_some() {
            // ip_vs_dest_set_max needs the trash while the entry is borrowed: compute
            // the member to erase first, from a shared borrow.
            let (dest, erase) = {
                let e = self.table.get(addr)?;
                let dest = set_min(&e.set, dests);
                let erase = if e.set.len() > 1 && now > e.lastmod + expiration {
                    self.set_max(&e.set, dests)
                } else {
                    None
                };
                (dest, erase)
            };
            let e = self.table.get_mut(addr)?;
            e.lastuse = now;
            if let Some(m) = erase
                && let Some(i) = e.set.iter().rposition(|&x| x == m)
            {
                e.set.remove(i);
                e.lastmod = now;
            }
            if let Some(d) = dest.and_then(|id| find_dest(dests, id))
                && !is_overloaded(d, dests)
            {
                return Some(d.id());
            }
            let least = wlc_pick(dests)?.id();
            if !e.set.contains(&least) {
                e.set.push(least);
                e.lastmod = now;
            }
            return Some(least);
        }
        let least = wlc_pick(dests)?.id();
        let mut set = SmallVec::new();
        set.push(least);
        self.table.insert(Entry {
            addr,
            set,
            lastmod: now,
            lastuse: now,
        });
        Some(least)
    }

    fn dest_removing(&mut self, dests: &DestList, id: DestId) {
        if let Some(d) = dests.get(id) {
            self.trash.push(Snapshot {
                id,
                weight: d.weight(),
                overhead: d.overhead(),
            });
        }
    }
}

impl Lblcr {
    /// `ip_vs_dest_set_max`: first member with weight > 0, then strictly more loaded
    /// (`moh·dw < doh·mw`) members with weight > 0; flags are not looked at.
    fn set_max(&self, set: &[DestId], dests: &DestList) -> Option<DestId> {
        let mut it = set
            .iter()
            .rev()
            .filter_map(|&id| self.load_of(dests, id).map(|l| (id, l)));
        let (mut most, (mut mw, mut moh)) = it.find(|&(_, (w, _))| w > 0)?;
        for (id, (dw, doh)) in it {
            if u128::from(moh) * u128::from(dw) < u128::from(doh) * u128::from(mw) && dw > 0 {
                most = id;
                mw = dw;
                moh = doh;
            }
        }
        Some(most)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::ConnCount;
    use crate::scheduler::test_support::{input_to as input, list, secs};

    #[test]
    fn set_grows_when_its_best_member_is_overloaded() {
        let (mut l, ids) = list(&[2, 2]);
        let mut s = Lblcr::new();
        let dst = input([9, 0, 0, 1]);
        assert_eq!(s.schedule(&l, &dst, secs(0)), Some(ids[1]));
        assert_eq!(s.set(dst.dst), Some((vec![ids[1]], secs(0))));
        assert_eq!(s.schedule(&l, &dst, secs(1)), Some(ids[1]));
        // ids[1]: 3 active > weight 2 while ids[0] has 0·2 < 2 → replicate onto ids[0].
        l.set_counters(ids[1], 3, 0, 0).unwrap();
        assert_eq!(s.schedule(&l, &dst, secs(2)), Some(ids[0]));
        assert_eq!(s.set(dst.dst), Some((vec![ids[0], ids[1]], secs(2))));
        // Now set_min is ids[0] (less loaded): used directly, set unchanged.
        assert_eq!(s.schedule(&l, &dst, secs(3)), Some(ids[0]));
        assert_eq!(s.set(dst.dst).unwrap().1, secs(2));
    }

    #[test]
    fn set_shrinks_by_its_most_loaded_member_after_expiration() {
        let (mut l, ids) = list(&[2, 2]);
        let mut s = Lblcr::new().with_expiration(Duration::from_secs(100));
        let dst = input([9, 0, 0, 2]);
        s.schedule(&l, &dst, secs(0));
        l.set_counters(ids[1], 3, 0, 0).unwrap();
        s.schedule(&l, &dst, secs(10)); // set [ids[0], ids[1]], lastmod 10
        // At 110 s: not yet (now > lastmod + 100 is strict).
        assert_eq!(s.schedule(&l, &dst, secs(110)), Some(ids[0]));
        assert_eq!(s.set(dst.dst).unwrap().0.len(), 2);
        assert_eq!(s.schedule(&l, &dst, secs(111)), Some(ids[0]));
        assert_eq!(s.set(dst.dst), Some((vec![ids[0]], secs(111))));
    }

    #[test]
    fn erased_minimum_is_still_returned() {
        // {x (w 2), y (w 0)}: set_min = x, set_max = x (y has weight 0) → x is erased
        // and returned all the same.
        let (mut l, ids) = list(&[2, 2]);
        let (x, y) = (ids[1], ids[0]);
        let mut s = Lblcr::new().with_expiration(Duration::from_secs(5));
        let dst = input([9, 0, 0, 3]);
        assert_eq!(s.schedule(&l, &dst, secs(0)), Some(x));
        l.set_counters(x, 3, 0, 0).unwrap();
        assert_eq!(s.schedule(&l, &dst, secs(1)), Some(y));
        l.set_counters(x, 0, 0, 0).unwrap();
        l.edit(y, 0, 0, 0).unwrap();
        assert_eq!(s.schedule(&l, &dst, secs(10)), Some(x));
        assert_eq!(s.set(dst.dst), Some((vec![y], secs(10))));
    }

    #[test]
    fn removed_member_weighs_in_set_max_from_its_snapshot() {
        let (mut l, ids) = list(&[1, 1, 1]);
        let mut s = Lblcr::new().with_expiration(Duration::from_secs(5));
        let dst = input([9, 0, 0, 4]);
        assert_eq!(s.schedule(&l, &dst, secs(0)), Some(ids[2]));
        l.set_counters(ids[2], 2, 0, 0).unwrap();
        assert_eq!(s.schedule(&l, &dst, secs(1)), Some(ids[1]));
        // ids[2] leaves with 2 active (the heaviest); ids[1] has 1.
        l.set_counters(ids[1], 1, 0, 0).unwrap();
        s.dest_removing(&l, ids[2]);
        l.remove(ids[2]).unwrap();
        s.dest_removed(&l, ids[2]);
        assert_eq!(s.schedule(&l, &dst, secs(10)), Some(ids[1]));
        assert_eq!(s.set(dst.dst), Some((vec![ids[1]], secs(10))));
        // Unreferenced snapshots go at the next scan (the full one at 30 min).
        s.expire(secs(1800));
        assert!(s.trash.is_empty());
    }

    #[test]
    fn nothing_available_and_gc() {
        let (mut l, ids) = list(&[1]);
        let mut s = Lblcr::new();
        let dst = input([9, 0, 0, 5]);
        assert_eq!(s.schedule(&l, &dst, secs(0)), Some(ids[0]));
        l.edit(ids[0], 1, 1, 0).unwrap();
        l.bind(ids[0], ConnCount::Active).unwrap();
        // OVERLOAD: not in set_min, and WLC skips it too.
        assert_eq!(s.schedule(&l, &dst, secs(1)), None);
        assert_eq!(s.schedule(&l, &input([9, 0, 0, 6]), secs(1)), None);
        assert_eq!(s.len(), 1);
        s.expire(secs(86_400));
        assert_eq!(
            s.len(),
            1,
            "used at 1 s: expires at the full check at 88200 s"
        );
        s.expire(secs(88_200));
        assert!(s.is_empty());
    }
}
