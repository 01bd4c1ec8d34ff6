//! An open-addressing index from a keyed hash to connection slots: linear probing,
//! 8 bytes a slot (the low 32 bits of the hash, which give both the home slot and a tag,
//! and the record id), backward-shift deletion so no tombstones pile up. Capacity is fixed
//! at construction: no allocation per packet.

/// Marks an empty slot.
const EMPTY: u32 = u32::MAX;

/// The index. It stores ids, not keys: callers confirm a candidate against the record.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    slots: Box<[(u32, u32)]>,
    mask: usize,
}

impl Index {
    /// An index for up to `capacity` entries at a load factor of at most 3/4.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let want = (capacity.max(1) * 4).div_ceil(3).next_power_of_two().max(8);
        Self {
            slots: vec![(0, EMPTY); want].into_boxed_slice(),
            mask: want - 1,
        }
    }

    /// Bytes of memory the slots take.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.len() * core::mem::size_of::<(u32, u32)>()
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

    /// Adds `id` under `hash`. The caller keeps the entry count below the capacity.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        #[test]
        fn behaves_like_a_multimap(ops in proptest::collection::vec((any::<bool>(), 0u64..64, 0u32..40), 1..400)) {
            let mut idx = Index::with_capacity(48);
            // Few distinct hashes, so clusters and wrap-around are exercised.
            let mut model: HashMap<u32, u64> = HashMap::new();
            for (add, hash_sel, id) in ops {
                let hash = hash_sel.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 128;
                if add && !model.contains_key(&id) && model.len() < 48 {
                    idx.insert(hash, id);
                    model.insert(id, hash);
                } else if let Some(h) = model.remove(&id) {
                    prop_assert!(idx.remove(h, id));
                }
                for (&id, &h) in &model {
                    prop_assert_eq!(idx.find(h, |c| c == id), Some(id));
                }
            }
            prop_assert!(!idx.remove(5, 1000));
        }
    }
}
