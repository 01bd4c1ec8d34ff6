//! Where records and their index live: a slab of records (a free list through the free
//! ones, last freed first reused, so a new connection writes a record still in cache)
//! and an open-addressing index from the keyed hash to record ids.
//!
//! The index: linear probing, 8 bytes a slot (the low 32 bits of the keyed hash, which
//! give both the home slot and a tag, and the record id), backward-shift deletion so no
//! tombstones pile up; a power-of-two slot count at a load factor of at most 3/4.
//! Callers confirm a candidate against the record. All memory is reserved at
//! construction: nothing is allocated per packet.
//!
//! A layout that put each key's record in the same 4 KiB page as its index slot (read
//! alongside the slot) was measured against this one, interleaved runs on one machine:
//! 61-67 ns against 74-79 ns per established packet with a million connections, but
//! 2.1-2.4 against 3.2-3.5 million new connections a second in a 4-million-record table,
//! as a new connection wrote its record in a random cold page where the slab reuses the
//! last freed, still cached. New connections are what a SYN flood multiplies, so the
//! slab stays (git history: commits baf4571 to a3a2975). Records placed by hash, with no
//! index (a lookup reads the record at its key's preferred place), gave the same
//! trade: 62.6 against 68-78 ns per established packet, 420-590 against 263-305 ns per
//! new connection (commit fa47f8b, reverted by 96dc51f).

use super::conn::{Conn, ConnFlags, NIL};
use core::ops::{Index, IndexMut};

/// The most records a table can have (ids stay below 2^30).
pub const MAX_CAPACITY: usize = 1 << 30;
/// Marks an empty slot.
const EMPTY: u32 = u32::MAX;
/// The `t_prev` of a free record (its `t_next` links the free list): its own liveness
/// mark, so no side array is read on the packet path.
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

/// Records and index.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    conns: Vec<Conn>,
    capacity: usize,
    /// Head of the free list (through `t_next`), or `NIL`.
    free: u32,
    slots: Box<[(u32, u32)]>,
    mask: usize,
}

impl Store {
    /// Room for `capacity` records (memory for them reserved, touched as used).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        let want = (capacity * 4).div_ceil(3).next_power_of_two().max(8);
        Self {
            conns: Vec::with_capacity(capacity),
            capacity,
            free: NIL,
            slots: vec![(0, EMPTY); want].into_boxed_slice(),
            mask: want - 1,
        }
    }

    /// A bound on record ids: every id is below it.
    pub(crate) fn id_bound(&self) -> usize {
        self.conns.len()
    }

    /// Bytes of memory the records (at capacity) and the index take.
    pub(crate) fn bytes(&self) -> usize {
        self.capacity * core::mem::size_of::<Conn>() + core::mem::size_of_val(&*self.slots)
    }

    /// Record `i`.
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> Option<&Conn> {
        self.conns.get(i)
    }

    /// Record `i`, mutably.
    #[inline(always)]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut Conn> {
        self.conns.get_mut(i)
    }

    /// Every record with its id, free or not.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Conn)> {
        self.conns.iter().enumerate().map(|(i, c)| (i as u32, c))
    }

    /// Every record, free or not, mutably.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Conn> {
        self.conns.iter_mut()
    }

    /// The first id whose hash matches and for which `is_it` holds.
    #[inline(always)]
    pub(crate) fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        let h = hash as u32;
        let mut i = h as usize & self.mask;
        loop {
            let (t, id) = self.slots[i];
            if id == EMPTY {
                return None;
            }
            if t == h && is_it(id) {
                return Some(id);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The id in `hash`'s home slot, whatever it is (maybe `EMPTY`): a load whose use is
    /// to bring the slot's line into cache (see [`crate::Director::handle_burst`]).
    #[inline(always)]
    pub(crate) fn home_id(&self, hash: u64) -> u32 {
        self.slots[hash as u32 as usize & self.mask].1
    }

    /// A word of record `id`, 0 if there is none: a load to bring the record into cache.
    #[inline(always)]
    pub(crate) fn touch(&self, id: u32) -> u32 {
        self.conns.get(id as usize).map_or(0, |c| c.link)
    }

    /// Adds `id` under `hash`. The caller keeps the entry count within the capacity.
    pub(crate) fn insert(&mut self, hash: u64, id: u32) {
        let h = hash as u32;
        let mut i = h as usize & self.mask;
        while self.slots[i].1 != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.slots[i] = (h, id);
    }

    /// Removes `id`, which was inserted under `hash`; returns whether it was there.
    pub(crate) fn remove(&mut self, hash: u64, id: u32) -> bool {
        let mut i = hash as u32 as usize & self.mask;
        loop {
            let (_, cur) = self.slots[i];
            if cur == EMPTY {
                return false;
            }
            if cur == id {
                break;
            }
            i = (i + 1) & self.mask;
        }
        // Backward shift: move later entries of the cluster into the hole unless their home
        // lies cyclically in (hole, j].
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let (h, cur) = self.slots[j];
            if cur == EMPTY {
                break;
            }
            let home = h as usize & self.mask;
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole] = (0, EMPTY);
        true
    }

    /// Takes a free record, the last freed first; `None` when `capacity` are taken. The
    /// caller writes the record at once.
    pub(crate) fn alloc(&mut self, _hash: u64) -> Option<u32> {
        if self.free != NIL {
            let id = self.free;
            self.free = self.conns[id as usize].t_next;
            return Some(id);
        }
        if self.conns.len() >= self.capacity {
            return None;
        }
        self.conns.push(FREE_RECORD);
        Some((self.conns.len() - 1) as u32)
    }

    /// Returns record `id` to the free records and marks it free.
    pub(crate) fn release(&mut self, id: u32) {
        if let Some(c) = self.conns.get_mut(id as usize) {
            *c = FREE_RECORD;
            c.t_next = self.free;
            self.free = id;
        }
    }
}

impl Index<usize> for Store {
    type Output = Conn;
    #[inline(always)]
    fn index(&self, i: usize) -> &Conn {
        &self.conns[i]
    }
}

impl IndexMut<usize> for Store {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut Conn {
        &mut self.conns[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        #[test]
        fn index_behaves_like_a_multimap(ops in proptest::collection::vec((any::<bool>(), 0u64..64, 0u32..40), 1..400)) {
            let mut s = Store::with_capacity(48);
            // Few distinct hashes, so clusters and wrap-around are exercised.
            let mut model: HashMap<u32, u64> = HashMap::new();
            for (add, hash_sel, id) in ops {
                let hash = hash_sel.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 128;
                if add && !model.contains_key(&id) && model.len() < 48 {
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
    }

    #[test]
    fn alloc_fills_the_capacity_and_reuses_the_last_freed() {
        let mut s = Store::with_capacity(3);
        let ids: Vec<u32> = (0..3).map(|_| s.alloc(0).unwrap()).collect();
        assert_eq!(ids, [0, 1, 2]);
        for &id in &ids {
            s[id as usize].t_prev = NIL; // as the table's insert does
        }
        assert_eq!(s.alloc(0), None);
        s.release(0);
        s.release(2);
        assert_eq!(s.get(2).map(|c| c.t_prev), Some(FREE));
        assert_eq!(s.alloc(0), Some(2));
        assert_eq!(s.alloc(0), Some(0));
        assert_eq!(s.alloc(0), None);
    }
}
