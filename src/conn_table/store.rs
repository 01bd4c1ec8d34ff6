//! Where records live: 4 KiB pages of 64 records, each record placed by its key's hash,
//! so that a lookup reads one random page, not two; beside them a compact array of
//! one-byte tags, 64 bytes per page.
//!
//! A key's hash names its home page and a preferred place in it. An insert takes the
//! preferred place when it is free, else its neighbour in the same 128-byte pair of
//! lines, else another among the eight whose tags share a word with it, else another in
//! the home page, and only when the home page is full a place in the next page with room
//! (each page passed counts one more overflow, as folly's F14 does, so that a lookup
//! knows when to stop). A lookup reads the record at the preferred place, then its
//! neighbour: for most keys the only lines it touches. Past them it scans the page's
//! tags (a byte of the hash per record, 0 for a free place) eight at a time, then the
//! next page's while the last page counts overflows. Records never move, so a
//! [`ConnId`](super::ConnId) stays valid for the record's life. Pages are sized for at
//! most 54 records in 64 at full capacity, where about one page in ten overflows.
//!
//! Two layouts were measured against this one on the Director's established path with a
//! million connections (BENCHMARKS.md, "The Director"). A slab of records with a
//! separate linear-probing index read two random pages a packet (index slot, then
//! record); its new connections reused the last freed record, still cached. A layout
//! that kept each index stretch and its records in one page cost new connections a
//! second cold read, of their preferred record, before the write. Here a new connection's
//! lookup miss has already brought its preferred record and its page's tags into the
//! cache, so the insert that follows writes to cached lines.
//!
//! All memory is allocated at construction: nothing per packet.

use super::conn::{Conn, ConnFlags, NIL};
use core::ops::{Index, IndexMut};

/// Records in a page: a record id is its page number shifted left by [`PLACE_BITS`],
/// or'd with its place.
const RECORDS: usize = 1 << PLACE_BITS;
const PLACE_BITS: u32 = 6;
/// Records per page at full capacity: the table sizes its pages by this.
const PER_PAGE: usize = 54;
/// The most pages (record ids stay below 2^30).
const MAX_PAGES: usize = 1 << (30 - PLACE_BITS);
/// The most records a table can have.
pub const MAX_CAPACITY: usize = MAX_PAGES * PER_PAGE;
/// The `t_prev` of a free record (its own liveness mark, read on the packet path with the
/// key it shares a line with).
pub(crate) const FREE: u32 = NIL - 1;

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

/// One page of records (4 KiB: the records' own 64-byte alignment, not the page's, which
/// would only matter to the rare lookup that reads past its pair).
type Page = [Conn; RECORDS];

const _: () = assert!(core::mem::size_of::<Page>() == 4096);

const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The high bit of every byte of `x` that is zero (exact: no borrow between bytes).
#[inline(always)]
const fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Word `w` of a page's tags.
#[inline(always)]
fn tag_word(tags: &[u8; RECORDS], w: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&tags[w * 8..w * 8 + 8]);
    u64::from_le_bytes(b)
}

/// The tag of `hash`: its top byte, never 0 (a free place).
#[inline(always)]
fn tag_of(hash: u64) -> u8 {
    ((hash >> 56) as u8).max(1)
}

/// What a lookup looks for: the caller's comparison of a record with its key. A trait
/// with an always-inlined method rather than a closure, which the compiler called out of
/// line (its captures spilled to the stack) once a lookup used it twice; passed by value,
/// so that the packet path does not build it in memory for the rare call further.
pub(crate) trait Probe: Copy {
    /// Whether live record `c` is the one looked for.
    fn is(&self, c: &Conn) -> bool;
}

/// Records, placed by hash.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pages: Vec<Page>,
    /// Per page, the tags of its records.
    tags: Vec<[u8; RECORDS]>,
    /// Per page: keys homed here or before whose records lie after it.
    overflow: Vec<u32>,
}

impl Store {
    /// Room for `capacity` records.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let n = capacity.clamp(1, MAX_CAPACITY).div_ceil(PER_PAGE);
        Self {
            pages: vec![[FREE_RECORD; RECORDS]; n],
            tags: vec![[0; RECORDS]; n],
            overflow: vec![0; n],
        }
    }

    /// A bound on record ids: every id is below it.
    pub(crate) fn id_bound(&self) -> usize {
        self.pages.len() << PLACE_BITS
    }

    /// Bytes of memory the pages, tags and overflow counts take.
    pub(crate) fn bytes(&self) -> usize {
        core::mem::size_of_val(&*self.pages)
            + core::mem::size_of_val(&*self.tags)
            + core::mem::size_of_val(&*self.overflow)
    }

    /// Home page and preferred place of `hash` (multiply-shift, not a division; the tag
    /// comes from other bits).
    #[inline(always)]
    fn place(&self, hash: u64) -> (usize, usize) {
        let p = ((hash & 0xffff_ffff) * self.pages.len() as u64) >> 32;
        let k = (hash >> 32) as usize % RECORDS;
        (p as usize, k)
    }

    /// Page and place of record `i`.
    #[inline(always)]
    const fn split(i: usize) -> (usize, usize) {
        (i >> PLACE_BITS, i % RECORDS)
    }

    /// Record `i` (ids are places in the pages taken as one array).
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Option<&Conn> {
        self.pages.as_flattened().get(i)
    }

    /// Record `i`, mutably.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut Conn> {
        self.pages.as_flattened_mut().get_mut(i)
    }

    /// Every record with its id, free or not.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Conn)> {
        self.pages.iter().enumerate().flat_map(|(p, page)| {
            page.iter()
                .enumerate()
                .map(move |(k, c)| (((p << PLACE_BITS) | k) as u32, c))
        })
    }

    /// Every record, free or not, mutably.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Conn> {
        self.pages.as_flattened_mut().iter_mut()
    }

    /// The id of the first live record of `hash`'s key for which `probe` holds (the
    /// probe compares the key).
    #[inline(always)]
    pub(crate) fn find(&self, hash: u64, probe: impl Probe) -> Option<u32> {
        let (p, k) = self.place(hash);
        let (tags, page) = (self.tags.get(p)?, self.pages.get(p)?);
        let tag = tag_of(hash);
        // The preferred place, then its neighbour in the same 128-byte pair of lines (which
        // the CPU's adjacent-line prefetch tends to bring with it). Tags first: a key not
        // in the table (a new connection) then reads no record, whose line in a table
        // larger than the caches is a memory round trip the CPU waits for; a key in it
        // has its record read alongside, as the branch predicts the match.
        for k in [k, k ^ 1] {
            if tags[k] == tag && probe.is(&page[k]) {
                return Some(((p << PLACE_BITS) | k) as u32);
            }
        }
        self.find_further(hash, p, k, probe)
    }

    /// [`Store::find`] past the preferred pair: first the seven other places whose tags
    /// share a word with the preferred place's (where an insert puts a key whose pair was
    /// taken), then the rest. Out of line.
    #[cold]
    #[inline(never)]
    fn find_further(&self, hash: u64, home: usize, k: usize, probe: impl Probe) -> Option<u32> {
        let pattern = u64::from(tag_of(hash)) * 0x0101_0101_0101_0101;
        self.match_word(home, k / 8, pattern, k, probe)
            .or_else(|| self.find_rest(home, k, pattern, probe))
    }

    /// The record among the eight places of word `w` of page `p`'s tags whose tag
    /// matches (`pattern` is the tag in every byte) and for which `probe` holds, leaving
    /// out the pair of place `k` (which [`Store::find`] read).
    #[inline(always)]
    fn match_word(
        &self,
        p: usize,
        w: usize,
        pattern: u64,
        k: usize,
        probe: impl Probe,
    ) -> Option<u32> {
        let mut hits = zero_bytes(tag_word(&self.tags[p], w) ^ pattern);
        while hits != 0 {
            let j = w * 8 + (hits.trailing_zeros() / 8) as usize;
            hits &= hits - 1;
            if j | 1 != k | 1 && probe.is(&self.pages[p][j]) {
                return Some(((p << PLACE_BITS) | j) as u32);
            }
        }
        None
    }

    /// [`Store::find_further`] past the preferred word: the home page's other words, then
    /// the pages its overflow reaches.
    #[cold]
    #[inline(never)]
    fn find_rest(&self, home: usize, k: usize, pattern: u64, probe: impl Probe) -> Option<u32> {
        for w in (0..8).filter(|&w| w != k / 8) {
            if let Some(id) = self.match_word(home, w, pattern, k, probe) {
                return Some(id);
            }
        }
        let mut p = home;
        for _ in 1..self.pages.len() {
            if self.overflow[p] == 0 {
                return None;
            }
            p = self.next_page(p);
            // No pair to leave out here: an out-of-range place.
            for w in 0..8 {
                if let Some(id) = self.match_word(p, w, pattern, RECORDS, probe) {
                    return Some(id);
                }
            }
        }
        None
    }

    /// The page after `p`, going round.
    #[inline(always)]
    fn next_page(&self, p: usize) -> usize {
        if p + 1 == self.pages.len() { 0 } else { p + 1 }
    }

    /// A free place for a record of `hash` (see the module's notes); `None` when every
    /// place is taken (the table keeps its count within its capacity, below that). The
    /// caller writes the record and then calls [`Store::insert`] with the same hash.
    pub(crate) fn alloc(&mut self, hash: u64) -> Option<u32> {
        let (home, k) = self.place(hash);
        for k in [k, k ^ 1] {
            if self.tags[home][k] == 0 {
                return Some(((home << PLACE_BITS) | k) as u32);
            }
        }
        let first = k / 8;
        let mut p = home;
        for _ in 0..self.pages.len() {
            for w in (first..first + 8).map(|w| w % 8) {
                let free = zero_bytes(tag_word(&self.tags[p], w));
                if free != 0 {
                    let j = w * 8 + (free.trailing_zeros() / 8) as usize;
                    return Some(((p << PLACE_BITS) | j) as u32);
                }
            }
            p = self.next_page(p);
        }
        None
    }

    /// Records `id`, placed by [`Store::alloc`] for `hash`, as live: its tag, and one more
    /// overflow on each page from its home page to its own.
    pub(crate) fn insert(&mut self, hash: u64, id: u32) {
        let (mut p, _) = self.place(hash);
        let (own, k) = Self::split(id as usize);
        while p != own {
            self.overflow[p] += 1;
            p = self.next_page(p);
        }
        self.tags[own][k] = tag_of(hash);
    }

    /// Forgets `id`, inserted under `hash`; returns whether it was there.
    pub(crate) fn remove(&mut self, hash: u64, id: u32) -> bool {
        let (own, k) = Self::split(id as usize);
        match self.tags.get_mut(own) {
            Some(t) if t[k] != 0 => t[k] = 0,
            _ => return false,
        }
        let (mut p, _) = self.place(hash);
        while p != own {
            self.overflow[p] -= 1;
            p = self.next_page(p);
        }
        true
    }

    /// Marks record `id` free.
    pub(crate) fn release(&mut self, id: u32) {
        if let Some(c) = self.get_mut(id as usize) {
            *c = FREE_RECORD;
        }
    }
}

impl Index<usize> for Store {
    type Output = Conn;
    #[inline(always)]
    fn index(&self, i: usize) -> &Conn {
        &self.pages.as_flattened()[i]
    }
}

impl IndexMut<usize> for Store {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut Conn {
        &mut self.pages.as_flattened_mut()[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// The record whose `svc` is this.
    #[derive(Clone, Copy)]
    struct Svc(u32);

    impl Probe for Svc {
        fn is(&self, c: &Conn) -> bool {
            c.svc == self.0
        }
    }

    /// Adds a record for `hash` as the table does: alloc, write, insert.
    fn add(s: &mut Store, hash: u64, key: u32) -> u32 {
        let id = s.alloc(hash).expect("room");
        s[id as usize] = Conn {
            svc: key,
            t_prev: NIL,
            ..FREE_RECORD
        };
        s.insert(hash, id);
        id
    }

    fn drop_record(s: &mut Store, hash: u64, id: u32) -> bool {
        let was = s.remove(hash, id);
        s.release(id);
        was
    }

    proptest! {
        /// Every live key is found, under its own hash, wherever overflow put it; removed
        /// keys are not; ids stay put. Few distinct hashes and a small store, so pages
        /// fill, overflow and wrap round.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((any::<bool>(), 0u64..40, 0u32..300), 1..600)) {
            let mut s = Store::with_capacity(150);
            prop_assert_eq!(s.pages.len(), 3);
            let mut model: HashMap<u32, (u64, u32)> = HashMap::new();
            for (add_it, hash_sel, key) in ops {
                // Spread the selector over the page, place and tag bits.
                let hash = hash_sel.wrapping_mul(0x9e37_79b9_7f4a_7c15) & 0xff00_003f_c000_0000;
                if add_it && !model.contains_key(&key) && model.len() < 150 {
                    let id = add(&mut s, hash, key);
                    prop_assert!(model.values().all(|&(_, other)| other != id));
                    model.insert(key, (hash, id));
                } else if let Some((h, id)) = model.remove(&key) {
                    prop_assert!(drop_record(&mut s, h, id));
                    prop_assert!(!s.remove(h, id), "removed twice");
                }
                for (&key, &(h, id)) in &model {
                    prop_assert_eq!(s.find(h, Svc(key)), Some(id));
                    prop_assert_eq!(s[id as usize].svc, key);
                }
                for gone in 300..303 {
                    prop_assert_eq!(s.find(hash, Svc(gone)), None);
                }
            }
            for (_, (h, id)) in model.drain() {
                prop_assert!(drop_record(&mut s, h, id));
            }
            prop_assert!(s.overflow.iter().all(|&o| o == 0), "overflow counts return to 0");
            prop_assert!(s.tags.iter().all(|t| t.iter().all(|&t| t == 0)));
        }
    }

    #[test]
    fn fills_every_place_then_refuses() {
        let mut s = Store::with_capacity(PER_PAGE);
        assert_eq!(s.id_bound(), 64);
        let ids: Vec<u32> = (0..RECORDS as u32).map(|i| add(&mut s, 7, i)).collect();
        assert_eq!(s.alloc(7), None, "a full store refuses");
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(s.find(7, Svc(i as u32)), Some(id));
        }
        assert!(drop_record(&mut s, 7, ids[10]));
        assert_eq!(s.alloc(7), Some(ids[10]), "the freed place");
        assert!(s.get(63).is_some());
        assert!(s.get(64).is_none());
    }

    #[test]
    fn a_key_prefers_its_place_then_its_pair_then_its_word_then_the_next_page() {
        let mut s = Store::with_capacity(PER_PAGE * 2);
        let h = 0x5500_0013_0000_0000u64; // page 0, place 0x13 % 64 = 19
        assert_eq!(s.place(h), (0, 19));
        assert_eq!(s.place(h | 0x8000_0000), (1, 19));
        let order: Vec<u32> = (0..5).map(|i| add(&mut s, h, i)).collect();
        assert_eq!(
            order,
            [19, 18, 16, 17, 20],
            "place, pair, then the word's first free"
        );
        for i in 5..RECORDS as u32 {
            let id = add(&mut s, h, i);
            assert_eq!(id >> PLACE_BITS, 0);
        }
        let spilled = add(&mut s, h, 99);
        assert_eq!(spilled >> PLACE_BITS, 1, "into the next page");
        assert_eq!(s.overflow, [1, 0]);
        assert_eq!(s.find(h, Svc(99)), Some(spilled));
        assert_eq!(s.find(h, Svc(3)), Some(17));
        let other_tag = (h ^ 0x0300_0000_0000_0000) | 0x8000_0000;
        assert_eq!(s.find(other_tag, Svc(99)), None, "another tag, in page 1");
        assert!(drop_record(&mut s, h, spilled));
        assert_eq!(s.overflow, [0, 0]);
        assert_eq!(s.find(h, Svc(99)), None);
    }
}
