//! `lblc`: locality-based least-connection (`net/netfilter/ipvs/ip_vs_lblc.c`).
//!
//! A table of 1024 buckets (`IP_VS_LBLC_TAB_BITS` 10, key `hash_32(ntohl(daddr_fold),
//! 10)`) maps a *destination* address to the real server last chosen for it, with the
//! time it was last used.
//!
//! - Hit: `lastuse = now`; the cached server is used if it is still in the list
//!   (`IP_VS_DEST_F_AVAILABLE`), its weight is above 0 and it is not "overloaded" in
//!   lblc's own sense ([`is_overloaded`]: more active connections than its weight while
//!   some server of the service has `active * 2 < weight`). The threshold flag
//!   (`OVERLOAD`) is **not** looked at on a hit, exactly as in the kernel.
//! - Otherwise a weighted-least-connection pick over the whole list (skipping `OVERLOAD`
//!   servers; first with weight > 0, then strict `overhead·w` comparison) and the entry
//!   is created or re-pointed.
//! - Garbage collection is the kernel's timer, driven by the `now` handed to
//!   [`Scheduler::schedule`] (or to [`Lblc::expire`]): armed at the first `now`
//!   seen, it fires every 60 s (`CHECK_EXPIRE_INTERVAL`). Every 30th run
//!   (`COUNT_FOR_FULL_EXPIRATION`) is a full scan deleting entries unused for the
//!   expiration (sysctl `lblc_expiration`, default 24 h); other runs do nothing unless
//!   the table holds more than `max_size` (16384) entries, then delete entries unused
//!   for 6 min (`ENTRY_TIMEOUT`) bucket by bucket from a rover until
//!   `min((entries - max_size)·4/3, max_size/2)` are gone. Runs that would only count
//!   are skipped in O(1), so a long idle gap costs little.
//!
//! Allocation: a miss inserts into its bucket's `Vec`, which may grow (amortised; the
//! capacity is kept after entries expire). Hits and GC runs do not allocate.
//!
//! Not modelled: the kernel's trash. A removed server is "not available" here as in
//! the kernel, but re-adding the same address and port yields a new [`DestId`], while
//! the kernel would resurrect the old `ip_vs_dest` and its entries would point at it
//! again.

use super::hash::{addr_fold, find_dest, hash_32};
use super::{DestId, DestList, RealServer, SchedInput, Scheduler};
use crate::time::Instant;
use core::net::IpAddr;
use core::time::Duration;

/// `IP_VS_LBLC_TAB_BITS`.
pub const LBLC_TAB_BITS: u32 = 10;
/// `IP_VS_LBLC_TAB_SIZE`: 1024 buckets.
pub const LBLC_TAB_SIZE: usize = 1 << LBLC_TAB_BITS;
/// `CHECK_EXPIRE_INTERVAL`: the GC timer period.
pub const CHECK_EXPIRE_INTERVAL: Duration = Duration::from_secs(60);
/// `ENTRY_TIMEOUT`: idle time after which an over-full table may drop an entry.
pub const ENTRY_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// `DEFAULT_EXPIRATION`: default of the `lblc_expiration` / `lblcr_expiration` sysctls.
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);
/// `COUNT_FOR_FULL_EXPIRATION`: every this many timer runs, a full expiration scan.
pub const COUNT_FOR_FULL_EXPIRATION: u32 = 30;
/// `max_size` = `IP_VS_LBLC_TAB_SIZE * 16`.
pub const MAX_SIZE: usize = LBLC_TAB_SIZE * 16;

/// lblc's and lblcr's `is_overloaded(dest, svc)`: `dest` has more active connections
/// than its weight and some server of the service has `active * 2 < weight`.
#[must_use]
pub fn is_overloaded(d: &RealServer, dests: &DestList) -> bool {
    u64::from(d.active()) > u64::from(d.weight())
        && dests
            .iter()
            .any(|m| u64::from(m.active()) * 2 < u64::from(m.weight()))
}

/// `__ip_vs_lblc_schedule` / `__ip_vs_lblcr_schedule`: weighted least-connection over
/// the list, skipping `OVERLOAD` servers; the first with weight > 0 starts, then a
/// server replaces it only if strictly less loaded (`loh·w > doh·lw`).
pub(super) fn wlc_pick(dests: &DestList) -> Option<&RealServer> {
    let mut it = dests.iter();
    let mut least = loop {
        let d = it.next()?;
        if !d.is_overloaded() && d.weight() > 0 {
            break d;
        }
    };
    let mut loh = least.overhead();
    for d in it {
        if d.is_overloaded() {
            continue;
        }
        let doh = d.overhead();
        if u128::from(loh) * u128::from(d.weight()) > u128::from(doh) * u128::from(least.weight()) {
            least = d;
            loh = doh;
        }
    }
    Some(least)
}

/// An entry of a locality table.
pub(super) trait LocEntry {
    fn addr(&self) -> IpAddr;
    fn lastuse(&self) -> Instant;
}

/// The 1024-bucket table and its GC timer, shared by lblc and lblcr.
#[derive(Debug, Clone)]
pub(super) struct LocTable<E> {
    buckets: Vec<Vec<E>>,
    entries: usize,
    pub(super) max_size: usize,
    rover: usize,
    counter: u32,
    next_check: Option<Instant>,
    pub(super) expiration: Duration,
}

impl<E: LocEntry> LocTable<E> {
    pub(super) fn new() -> Self {
        Self {
            buckets: (0..LBLC_TAB_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            max_size: MAX_SIZE,
            rover: 0,
            counter: 1,
            next_check: None,
            expiration: DEFAULT_EXPIRATION,
        }
    }

    #[inline]
    pub(super) fn bucket_of(addr: IpAddr) -> usize {
        hash_32(addr_fold(addr), LBLC_TAB_BITS) as usize
    }

    pub(super) fn len(&self) -> usize {
        self.entries
    }

    pub(super) fn get(&self, addr: IpAddr) -> Option<&E> {
        self.buckets[Self::bucket_of(addr)]
            .iter()
            .find(|e| e.addr() == addr)
    }

    pub(super) fn get_mut(&mut self, addr: IpAddr) -> Option<&mut E> {
        self.buckets[Self::bucket_of(addr)]
            .iter_mut()
            .find(|e| e.addr() == addr)
    }

    pub(super) fn insert(&mut self, e: E) {
        self.buckets[Self::bucket_of(e.addr())].push(e);
        self.entries += 1;
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &E> {
        self.buckets.iter().flatten()
    }

    #[cfg(test)]
    pub(super) fn gc_state(&self) -> (u32, usize, Option<Instant>) {
        (self.counter, self.rover, self.next_check)
    }

    /// Runs every timer expiry due at or before `now`; returns whether any run scanned
    /// the table.
    pub(super) fn run_timer(&mut self, now: Instant) -> bool {
        let interval = CHECK_EXPIRE_INTERVAL.as_micros() as i64;
        let mut scanned = false;
        loop {
            let Some(next) = self.next_check else {
                // mod_timer(jiffies + CHECK_EXPIRE_INTERVAL) in init_service.
                self.next_check = Some(now + CHECK_EXPIRE_INTERVAL);
                return scanned;
            };
            if next > now {
                return scanned;
            }
            if !self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION)
                && self.entries <= self.max_size
            {
                // Runs that only count: skip them together (entries cannot change).
                let due = (now.micros() - next.micros()) / interval + 1;
                let to_full =
                    i64::from(COUNT_FOR_FULL_EXPIRATION - self.counter % COUNT_FOR_FULL_EXPIRATION);
                let k = due.min(to_full);
                self.counter += k as u32;
                self.next_check = Some(Instant::from_micros(next.micros() + k * interval));
                continue;
            }
            self.check_expire(next);
            scanned = true;
            self.next_check = Some(next + CHECK_EXPIRE_INTERVAL);
        }
    }

    /// `ip_vs_lblc_check_expire` at time `t`.
    fn check_expire(&mut self, t: Instant) {
        if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
            self.full_check(t);
            self.counter = 1;
            return;
        }
        if self.entries <= self.max_size {
            self.counter += 1;
            return;
        }
        let max = self.max_size as i64;
        let mut goal = ((self.entries as i64 - max) * 4 / 3).min(max / 2);
        let mut j = self.rover;
        for _ in 0..LBLC_TAB_SIZE {
            j = (j + 1) & (LBLC_TAB_SIZE - 1);
            let b = &mut self.buckets[j];
            let before = b.len();
            // time_before(now, lastuse + ENTRY_TIMEOUT): keep.
            b.retain(|e| t < e.lastuse() + ENTRY_TIMEOUT);
            let removed = before - b.len();
            self.entries -= removed;
            goal -= removed as i64;
            if goal <= 0 {
                break;
            }
        }
        self.rover = j;
    }

    /// `ip_vs_lblc_full_check` at time `t`.
    fn full_check(&mut self, t: Instant) {
        if self.entries == 0 {
            // The scan visits all 1024 buckets and leaves the rover where it was.
            return;
        }
        let exp = self.expiration;
        let mut j = self.rover;
        for _ in 0..LBLC_TAB_SIZE {
            j = (j + 1) & (LBLC_TAB_SIZE - 1);
            let b = &mut self.buckets[j];
            let before = b.len();
            b.retain(|e| t < e.lastuse() + exp);
            self.entries -= before - b.len();
        }
        self.rover = j;
    }
}

#[derive(Debug, Clone)]
struct Entry {
    addr: IpAddr,
    dest: DestId,
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

/// The locality-based least-connection scheduler.
#[derive(Debug, Clone)]
pub struct Lblc {
    table: LocTable<Entry>,
}

impl Default for Lblc {
    fn default() -> Self {
        Self::new()
    }
}

impl Lblc {
    /// A scheduler with the kernel's defaults.
    #[must_use]
    pub fn new() -> Self {
        Self {
            table: LocTable::new(),
        }
    }

    /// The same with another `lblc_expiration` (sysctl, default 24 h).
    #[must_use]
    pub fn with_expiration(mut self, expiration: Duration) -> Self {
        self.table.expiration = expiration;
        self
    }

    /// The same with another `max_size` (fixed at 16384 in the kernel; smaller values
    /// make the over-full GC path easy to exercise).
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

    /// The server cached for destination `addr` and when it was last used.
    #[must_use]
    pub fn entry(&self, addr: IpAddr) -> Option<(DestId, Instant)> {
        self.table.get(addr).map(|e| (e.dest, e.lastuse))
    }

    /// Runs the GC timer up to `now` (schedule does this itself).
    pub fn expire(&mut self, now: Instant) {
        self.table.run_timer(now);
    }
}

impl Scheduler for Lblc {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn schedule(&mut self, dests: &DestList, input: &SchedInput, now: Instant) -> Option<DestId> {
        self.table.run_timer(now);
        let addr = input.dst;
        if let Some(e) = self.table.get_mut(addr) {
            e.lastuse = now;
            if let Some(d) = find_dest(dests, e.dest)
                && d.weight() > 0
                && !is_overloaded(d, dests)
            {
                return Some(d.id());
            }
            let least = wlc_pick(dests)?.id();
            // ip_vs_lblc_new on an existing entry: re-point it (a new entry with
            // lastuse = now replaces it when the server differs).
            e.dest = least;
            return Some(least);
        }
        let least = wlc_pick(dests)?.id();
        self.table.insert(Entry {
            addr,
            dest: least,
            lastuse: now,
        });
        Some(least)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::ConnCount;
    use crate::scheduler::test_support::{input_to as input, list, secs};

    #[test]
    fn miss_picks_wlc_and_hits_stick() {
        let (mut l, ids) = list(&[1, 1, 1]);
        let mut s = Lblc::new();
        // All idle: the first in kernel order (the newest) wins ties.
        assert_eq!(s.schedule(&l, &input([1, 1, 1, 1]), secs(0)), Some(ids[2]));
        l.set_counters(ids[2], 0, 5, 0).unwrap();
        l.set_counters(ids[1], 0, 1, 0).unwrap();
        // A new destination goes to the least loaded (ids[0], overhead 0).
        assert_eq!(s.schedule(&l, &input([1, 1, 1, 2]), secs(1)), Some(ids[0]));
        // The cached destination keeps its server although it is now the busiest.
        assert_eq!(s.schedule(&l, &input([1, 1, 1, 1]), secs(2)), Some(ids[2]));
        assert_eq!(s.entry(IpAddr::from([1, 1, 1, 1])), Some((ids[2], secs(2))));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn weighted_least_connection_on_miss() {
        // overhead·w comparison: 3 servers, weights 1, 2, 4 (list: w4, w2, w1).
        let (mut l, ids) = list(&[1, 2, 4]);
        l.set_counters(ids[0], 1, 0, 0).unwrap(); // 256 / 1
        l.set_counters(ids[1], 1, 0, 0).unwrap(); // 256 / 2
        l.set_counters(ids[2], 2, 0, 0).unwrap(); // 512 / 4 = 128: tie with ids[1], list order wins
        let mut s = Lblc::new();
        assert_eq!(s.schedule(&l, &input([2, 0, 0, 1]), secs(0)), Some(ids[2]));
        l.set_counters(ids[2], 2, 1, 0).unwrap(); // 513 / 4 > 128
        assert_eq!(s.schedule(&l, &input([2, 0, 0, 2]), secs(0)), Some(ids[1]));
    }

    #[test]
    fn lblc_overload_rule_on_hit() {
        let (mut l, ids) = list(&[2, 4]);
        let mut s = Lblc::new();
        let dst = input([3, 0, 0, 1]);
        assert_eq!(s.schedule(&l, &dst, secs(0)), Some(ids[1]));
        // active 5 > weight 4, but no server has active*2 < weight: stays.
        l.set_counters(ids[1], 5, 0, 0).unwrap();
        l.set_counters(ids[0], 1, 0, 0).unwrap(); // 2 < 2 is false
        assert_eq!(s.schedule(&l, &dst, secs(1)), Some(ids[1]));
        // ids[0] idle: 0 < 2, so the cached server counts as overloaded → WLC → ids[0].
        l.set_counters(ids[0], 0, 0, 0).unwrap();
        assert_eq!(s.schedule(&l, &dst, secs(2)), Some(ids[0]));
        assert_eq!(s.entry(dst.dst), Some((ids[0], secs(2))));
    }

    #[test]
    fn threshold_flag_is_ignored_on_hit_but_skipped_on_miss() {
        let (mut l, ids) = list(&[1, 1]);
        let mut s = Lblc::new();
        let dst = input([4, 0, 0, 1]);
        assert_eq!(s.schedule(&l, &dst, secs(0)), Some(ids[1]));
        l.edit(ids[1], 1, 1, 0).unwrap();
        l.bind(ids[1], ConnCount::Inactive).unwrap();
        assert!(l.get(ids[1]).unwrap().is_overloaded());
        assert_eq!(s.schedule(&l, &dst, secs(1)), Some(ids[1]), "hit");
        assert_eq!(s.schedule(&l, &input([4, 0, 0, 2]), secs(1)), Some(ids[0]));
    }

    #[test]
    fn weight_zero_removal_and_nothing_available() {
        let (mut l, ids) = list(&[1, 1]);
        let mut s = Lblc::new();
        let dst = input([5, 0, 0, 1]);
        assert_eq!(s.schedule(&l, &dst, secs(0)), Some(ids[1]));
        l.edit(ids[1], 0, 0, 0).unwrap();
        assert_eq!(s.schedule(&l, &dst, secs(1)), Some(ids[0]));
        l.edit(ids[1], 1, 0, 0).unwrap();
        l.remove(ids[0]).unwrap();
        assert_eq!(
            s.schedule(&l, &dst, secs(2)),
            Some(ids[1]),
            "removed → re-pick"
        );
        l.edit(ids[1], 0, 0, 0).unwrap();
        assert_eq!(s.schedule(&l, &dst, secs(3)), None);
        assert_eq!(
            s.entry(dst.dst).map(|e| e.1),
            Some(secs(3)),
            "lastuse still set"
        );
        let empty = DestList::default();
        assert_eq!(Lblc::new().schedule(&empty, &dst, secs(0)), None);
    }

    #[test]
    fn full_expiration_after_24h_on_the_30th_run() {
        let (l, _) = list(&[1]);
        let mut s = Lblc::new();
        // Timer armed at t = 0: runs at 60 s, 120 s, ...; full checks at runs 30, 60, ...
        // (t = 1800 s·k). An entry used at t = 0 dies at the first full check with
        // t ≥ 0 + 24 h, i.e. exactly at t = 86400 s.
        s.schedule(&l, &input([6, 0, 0, 1]), secs(0));
        s.expire(secs(86_399));
        assert_eq!(s.len(), 1);
        s.expire(secs(86_400));
        assert_eq!(s.len(), 0);
        // Used at t = 100 s: the first full check ≥ 100 + 86400 is at 88200 s.
        let mut s = Lblc::new().with_expiration(Duration::from_secs(86_400));
        s.expire(secs(0));
        s.schedule(&l, &input([6, 0, 0, 2]), secs(100));
        s.expire(secs(88_199));
        assert_eq!(s.len(), 1);
        s.expire(secs(88_200));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn skipping_idle_runs_equals_running_each() {
        let (l, _) = list(&[1]);
        let mut a = Lblc::new().with_expiration(Duration::from_secs(3000));
        let mut b = a.clone();
        for s in [&mut a, &mut b] {
            s.schedule(&l, &input([7, 0, 0, 1]), secs(0));
            s.schedule(&l, &input([7, 0, 0, 2]), secs(2000));
        }
        for t in (0..20_000).step_by(7) {
            a.expire(secs(t));
        }
        b.expire(secs(19_999));
        assert_eq!(a.table.gc_state(), b.table.gc_state());
        assert_eq!(a.len(), b.len());
        assert_eq!(a.len(), 0);
    }

    #[test]
    fn over_full_table_drops_idle_entries_from_the_rover() {
        let (l, _) = list(&[1]);
        let mut s = Lblc::new().with_max_size(8);
        s.expire(secs(0));
        for i in 0..20u8 {
            s.schedule(&l, &input([8, 0, 1, i]), secs(0));
        }
        // Runs at 60 .. 300 s are partial (20 > 8) but nothing is 6 min idle yet; the
        // counter does not advance on partial runs.
        s.expire(secs(359));
        assert_eq!(s.len(), 20);
        assert_eq!(s.table.gc_state().0, 1);
        // Run at 360 s: goal = min((20 - 8)·4/3, 8/2) = 4; whole buckets are emptied,
        // from the one after the rover (0) upwards, until at least 4 entries are gone.
        let mut per_bucket = [0usize; LBLC_TAB_SIZE];
        for i in 0..20u8 {
            per_bucket[LocTable::<Entry>::bucket_of(IpAddr::from([8, 0, 1, i]))] += 1;
        }
        let (mut removed, mut j) = (0, 0);
        for _ in 0..LBLC_TAB_SIZE {
            j = (j + 1) % LBLC_TAB_SIZE;
            removed += per_bucket[j];
            if removed >= 4 {
                break;
            }
        }
        s.expire(secs(360));
        assert_eq!(s.len(), 20 - removed);
        assert_eq!(
            s.table.gc_state().1,
            j,
            "rover stops at the last bucket scanned"
        );
        // Fresh entries survive the partial runs that follow while younger than 6 min.
        for i in 0..4u8 {
            s.schedule(&l, &input([8, 0, 2, i]), secs(400));
        }
        s.expire(secs(700));
        assert!(s.len() <= 8 + 4);
        for i in 0..4u8 {
            assert!(s.entry(IpAddr::from([8, 0, 2, i])).is_some());
        }
    }
}
