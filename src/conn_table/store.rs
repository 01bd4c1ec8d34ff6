//! Where records and their index live: 4 KiB pages, each holding a stretch of the
//! open-addressing index and the records that stretch's keys prefer.
//!
//! A lookup reads an index slot and then a record. With separate arrays those are two
//! random pages per packet, and with a million connections the TLB misses of the two (a
//! nested page walk each, on a virtual machine) cost more than the rest of the packet's
//! work. Here a record is allocated, where it can be, in the page that holds its key's
//! home slot, so a lookup touches one page.
//!
//! The index: linear probing, 8 bytes a slot (the low 32 bits of the keyed hash, which
//! give both the home slot and a tag, and the record id), backward-shift deletion so no
//! tombstones pile up; at most 52 records for 96 slots, a load factor of at most 0.54.
//! Callers confirm a candidate against the record. All memory is allocated at
//! construction: nothing per packet.

use super::conn::{Conn, ConnFlags, NIL};
use core::ops::{Index, IndexMut};

/// Records in a page.
const RECORDS: usize = 52;
/// Index slots in a page.
const SLOTS: usize = 96;
/// Record ids and slot positions are a page number shifted left by these, or'd with the
/// place in the page: shifts and masks on the packet path, not divisions by 52 and 88.
const RECORD_BITS: u32 = 6;
const SLOT_BITS: u32 = 7;
/// The most records a table can have: ids stay below 2^30.
pub const MAX_CAPACITY: usize = (1 << (30 - RECORD_BITS)) * RECORDS;
/// Marks an empty slot.
const EMPTY: u32 = u32::MAX;
/// The `t_prev` of a free record: its own liveness mark, so no side array is read on the
/// packet path.
pub(crate) const FREE: u32 = NIL - 1;

/// One page: index slots, then records; 4096 bytes in all, aligned to a page. Its
/// free-record bits live outside it ([`Store::free`]): a new connection reads them, and
/// a compact array of them stays cached where the pages do not.
#[derive(Debug, Clone)]
#[repr(C, align(4096))]
struct Page {
    slots: [(u32, u32); SLOTS],
    conns: [Conn; RECORDS],
}

const _: () = assert!(core::mem::size_of::<Page>() == 4096);

const FREE_RECORD: Conn = Conn {
    caddr: [0; 16],
    cport: 0,
    vport: 0,
    dport: 0,
    flags: ConnFlags(0),
    vaddr: 0,
    daddr: 0,
    svc: 0,
    dest: 0,
    link: NIL,
    expires: 0,
    filed: 0,
    t_next: NIL,
    t_prev: FREE,
    protocol: 0,
    state: 0,
    old_state: 0,
    in_pkts: 0,
};

impl Page {
    fn empty() -> Self {
        Self {
            slots: [(0, EMPTY); SLOTS],
            conns: [FREE_RECORD; RECORDS],
        }
    }
}

/// The place in its home page a key of `hash` prefers for its record, from the hash's
/// upper half (the home slot comes from the lower): taken when free, so that a lookup
/// can read the record before the index slot has named it.
#[inline(always)]
fn preferred(hash: u64) -> usize {
    (((hash >> 32) * RECORDS as u64) >> 32) as usize
}

/// Records and index.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pages: Box<[Page]>,
    /// Per page: bit `k` set if record `k` is free.
    free: Box<[u64]>,
    /// Bit `p` set: page `p` has a free record.
    has_free: Box<[u64]>,
}

impl Store {
    /// Room for at least `capacity` records.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let n = capacity.clamp(1, MAX_CAPACITY).div_ceil(RECORDS);
        let mut has_free = vec![0u64; n.div_ceil(64)].into_boxed_slice();
        for p in 0..n {
            has_free[p / 64] |= 1 << (p % 64);
        }
        Self {
            pages: (0..n).map(|_| Page::empty()).collect(),
            free: vec![(1 << RECORDS) - 1; n].into_boxed_slice(),
            has_free,
        }
    }

    /// A bound on record ids: every id is below it (not every id below it is a record).
    pub(crate) fn id_bound(&self) -> usize {
        self.pages.len() << RECORD_BITS
    }

    /// Bytes of memory the pages and their bitmap take.
    pub(crate) fn bytes(&self) -> usize {
        core::mem::size_of_val(&*self.pages) + (self.free.len() + self.has_free.len()) * 8
    }

    /// Record `i`.
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Option<&Conn> {
        self.pages
            .get(i >> RECORD_BITS)?
            .conns
            .get(i & ((1 << RECORD_BITS) - 1))
    }

    /// Record `i`, mutably.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut Conn> {
        self.pages
            .get_mut(i >> RECORD_BITS)?
            .conns
            .get_mut(i & ((1 << RECORD_BITS) - 1))
    }

    /// Every record with its id, free or not.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Conn)> {
        self.pages.iter().enumerate().flat_map(|(p, page)| {
            page.conns
                .iter()
                .enumerate()
                .map(move |(k, c)| (((p << RECORD_BITS) | k) as u32, c))
        })
    }

    /// Every record, free or not, mutably.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Conn> {
        self.pages.iter_mut().flat_map(|p| p.conns.iter_mut())
    }

    /// The home slot position of a hash (its low 32 bits): the page by multiply and
    /// shift over the page count, then the slot in it from the product's low half.
    #[inline(always)]
    fn home(&self, h: u32) -> usize {
        let x = u64::from(h) * self.pages.len() as u64;
        let off = ((x & 0xffff_ffff) * SLOTS as u64) >> 32;
        (((x >> 32) as usize) << SLOT_BITS) | off as usize
    }

    #[inline(always)]
    fn slot(&self, i: usize) -> (u32, u32) {
        self.pages[i >> SLOT_BITS].slots[i & ((1 << SLOT_BITS) - 1)]
    }

    #[inline(always)]
    fn set_slot(&mut self, i: usize, v: (u32, u32)) {
        self.pages[i >> SLOT_BITS].slots[i & ((1 << SLOT_BITS) - 1)] = v;
    }

    /// The slot position after `i`, going on to the next page and round.
    #[inline(always)]
    fn next(&self, i: usize) -> usize {
        if i & ((1 << SLOT_BITS) - 1) != SLOTS - 1 {
            return i + 1;
        }
        let p = (i >> SLOT_BITS) + 1;
        if p == self.pages.len() {
            0
        } else {
            p << SLOT_BITS
        }
    }

    /// The first id whose hash matches and for which `is_it` holds.
    #[inline(always)]
    pub(crate) fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        let h = hash as u32;
        let mut i = self.home(h);
        // Start reading the record the key most likely has (its preferred place, see
        // `alloc`) now, alongside the slot that names it, instead of after: two cache
        // misses taken together. Only a read; the slot decides.
        let page = &self.pages[i >> SLOT_BITS];
        core::hint::black_box(page.conns[preferred(hash)].expires);
        loop {
            let (t, id) = self.slot(i);
            if id == EMPTY {
                return None;
            }
            if t == h && is_it(id) {
                return Some(id);
            }
            i = self.next(i);
        }
    }

    /// Adds `id` under `hash`. The caller keeps the entry count within the records.
    pub(crate) fn insert(&mut self, hash: u64, id: u32) {
        let h = hash as u32;
        let mut i = self.home(h);
        while self.slot(i).1 != EMPTY {
            i = self.next(i);
        }
        self.set_slot(i, (h, id));
    }

    /// Removes `id`, which was inserted under `hash`; returns whether it was there.
    pub(crate) fn remove(&mut self, hash: u64, id: u32) -> bool {
        let mut i = self.home(hash as u32);
        loop {
            let (_, cur) = self.slot(i);
            if cur == EMPTY {
                return false;
            }
            if cur == id {
                break;
            }
            i = self.next(i);
        }
        // Backward shift: move later entries of the cluster into the hole unless their home
        // lies cyclically in (hole, j].
        let mut hole = i;
        let mut j = i;
        loop {
            j = self.next(j);
            let (h, cur) = self.slot(j);
            if cur == EMPTY {
                break;
            }
            let home = self.home(h);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                let moved = self.slot(j);
                self.set_slot(hole, moved);
                hole = j;
            }
        }
        self.set_slot(hole, (0, EMPTY));
        true
    }

    /// Takes a free record for a key of `hash`: its preferred place in the page of its
    /// home slot if that record is free, else a free record of that page, else of the
    /// next page round that has one; `None` when every record is taken. The caller
    /// writes the record at once (a record is free while it is marked so).
    ///
    /// The preferred place is checked on the record itself, whose line a lookup has just
    /// read (`find` with `warm`), and the free bits are then left alone: they say "maybe
    /// free" (set for every free record, possibly also for a taken one), and a search
    /// clears what it finds stale. A new connection at a preferred place so reads no
    /// other line.
    pub(crate) fn alloc(&mut self, hash: u64) -> Option<u32> {
        let want = self.home(hash as u32) >> SLOT_BITS;
        let k = preferred(hash);
        if self.pages[want].conns[k].t_prev == FREE {
            return Some(((want << RECORD_BITS) | k) as u32);
        }
        let mut p = want;
        loop {
            while self.free[p] != 0 {
                let k = self.free[p].trailing_zeros() as usize;
                self.free[p] &= !(1 << k);
                if self.pages[p].conns[k].t_prev == FREE {
                    if self.free[p] == 0 {
                        self.has_free[p / 64] &= !(1 << (p % 64));
                    }
                    return Some(((p << RECORD_BITS) | k) as u32);
                }
            }
            self.has_free[p / 64] &= !(1 << (p % 64));
            p = self.page_with_free(p)?;
        }
    }

    /// The first page at or after `from`, going round, with a free record: a word of the
    /// bitmap at a time.
    fn page_with_free(&self, from: usize) -> Option<usize> {
        let words = self.has_free.len();
        let (w0, b0) = (from / 64, from % 64);
        let first = self.has_free[w0] & (u64::MAX << b0);
        if first != 0 {
            return Some(w0 * 64 + first.trailing_zeros() as usize);
        }
        (1..=words).find_map(|k| {
            let w = (w0 + k) % words;
            let bits = self.has_free[w];
            (bits != 0).then(|| w * 64 + bits.trailing_zeros() as usize)
        })
    }

    /// Returns record `id` to the free records and marks it free.
    pub(crate) fn release(&mut self, id: u32) {
        let (p, k) = (
            id as usize >> RECORD_BITS,
            id as usize & ((1 << RECORD_BITS) - 1),
        );
        if k < RECORDS
            && let Some(page) = self.pages.get_mut(p)
        {
            page.conns[k] = FREE_RECORD;
            self.free[p] |= 1 << k;
            self.has_free[p / 64] |= 1 << (p % 64);
        }
    }
}

impl Index<usize> for Store {
    type Output = Conn;
    #[inline(always)]
    fn index(&self, i: usize) -> &Conn {
        &self.pages[i >> RECORD_BITS].conns[i & ((1 << RECORD_BITS) - 1)]
    }
}

impl IndexMut<usize> for Store {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut Conn {
        &mut self.pages[i >> RECORD_BITS].conns[i & ((1 << RECORD_BITS) - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        #[test]
        fn index_behaves_like_a_multimap(ops in proptest::collection::vec((any::<bool>(), 0u64..64, 0u32..150), 1..600)) {
            // Three pages (264 slots); few distinct hashes, so clusters cross pages and wrap.
            let mut s = Store::with_capacity(150);
            let mut model: HashMap<u32, u64> = HashMap::new();
            for (add, hash_sel, id) in ops {
                let hash = (hash_sel.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % 128 * (1 << 25);
                if add && !model.contains_key(&id) && model.len() < 150 {
                    s.insert(hash, id);
                    model.insert(id, hash);
                } else if let Some(h) = model.remove(&id) {
                    prop_assert!(s.remove(h, id));
                }
                for (&id, &h) in &model {
                    prop_assert_eq!(s.find(h, |c| c == id), Some(id));
                }
            }
            prop_assert!(!s.remove(5, 1000));
        }

        #[test]
        fn alloc_prefers_the_home_page_and_fills_every_record(hashes in proptest::collection::vec(any::<u32>(), 156)) {
            let mut s = Store::with_capacity(156);
            let mut taken = std::collections::HashSet::new();
            for &h in &hashes {
                let want = s.home(h) >> SLOT_BITS;
                let had_room = s.pages[want].conns.iter().any(|c| c.t_prev == FREE);
                let id = s.alloc(u64::from(h)).unwrap();
                prop_assert!(taken.insert(id));
                prop_assert_eq!(s[id as usize].t_prev, FREE);
                s[id as usize].t_prev = NIL; // as the table's insert does
                if had_room {
                    prop_assert_eq!(id as usize >> RECORD_BITS, want);
                }
            }
            prop_assert_eq!(s.alloc(7), None);
            // A fresh page gives a key its preferred place.
            let mut fresh = Store::with_capacity(RECORDS);
            let h = u64::from(hashes[0]) << 32 | 5;
            prop_assert_eq!(fresh.alloc(h), Some(preferred(h) as u32));
            s.release(100);
            prop_assert_eq!(s.alloc(0), Some(100));
        }
    }

    #[test]
    fn a_page_is_one_page() {
        assert_eq!(core::mem::size_of::<Page>(), 4096);
        assert_eq!(core::mem::align_of::<Page>(), 4096);
        let s = Store::with_capacity(1);
        assert_eq!(s.id_bound(), 64);
        assert!(s.get(RECORDS).is_none());
        assert!(s.get(RECORDS - 1).is_some());
        assert!(s.get(64).is_none());
        assert_eq!(s.get(0).map(|c| c.t_prev), Some(FREE));
    }
}
