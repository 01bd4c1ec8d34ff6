//! Interned virtual and real-server addresses: a record keeps a 4-byte id instead of two
//! 16-byte addresses, and the packet path finds an address's id with one multiply and
//! (almost always) one probe.
//!
//! Only addresses of configured services and real servers are interned, so a packet's
//! address can only ever probe those few entries: an unkeyed hash is safe here, and the
//! packet path saves a SipHash.

use super::conn::pack_addr;
use core::net::IpAddr;

const EMPTY: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    packed: [u8; 16],
    v6: bool,
    refs: u32,
    addr: IpAddr,
}

/// Interned addresses with reference counts; ids are reused after release.
#[derive(Debug, Clone)]
pub(crate) struct AddrPool {
    entries: Vec<Entry>,
    /// Open addressing with linear probing over ids; at most half full.
    slots: Box<[u32]>,
    live: usize,
    free: Vec<u32>,
    /// One bit per 4096 hash values, set for every interned address: most packets'
    /// addresses are not interned, and this answers that without probing.
    maybe: Box<[u64; 64]>,
    /// Addresses freed since the filter was last redrawn.
    stale: usize,
}

#[inline(always)]
fn home(packed: &[u8; 16], v6: bool, mask: usize) -> usize {
    let (a, b) = packed.split_at(8);
    let a = u64::from_le_bytes(a.try_into().unwrap_or([0; 8]));
    let b = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
    let x = (a ^ b.rotate_left(29) ^ u64::from(v6)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 32) as usize & mask
}

/// [`home`] of the packed form of the IPv4 address `a` (octets in order), computed from
/// the four octets.
#[inline(always)]
fn home_v4(a: [u8; 4], mask: usize) -> usize {
    // The packed form's first eight bytes are zero; its last eight, read little-endian,
    // are 0xffff0000 | a << 32.
    let b = 0xffff_0000 | (u64::from(u32::from_le_bytes(a)) << 32);
    let x = b.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 32) as usize & mask
}

impl AddrPool {
    pub(crate) fn new() -> Self {
        Self {
            entries: Vec::new(),
            slots: vec![EMPTY; 16].into_boxed_slice(),
            live: 0,
            free: Vec::new(),
            maybe: Box::new([0; 64]),
            stale: 0,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The id of a packed address (see [`pack_addr`]), if interned.
    #[inline(always)]
    pub(crate) fn find_packed(&self, packed: &[u8; 16], v6: bool) -> Option<u32> {
        let bit = home(packed, v6, 4095);
        if self.maybe[bit / 64] & (1 << (bit % 64)) == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = home(packed, v6, mask);
        loop {
            let id = self.slots[i];
            if id == EMPTY {
                return None;
            }
            let e = &self.entries[id as usize];
            if e.packed == *packed && e.v6 == v6 {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
    }

    /// [`AddrPool::find_packed`] for an IPv4 address given by its octets.
    #[inline(always)]
    pub(crate) fn find_v4(&self, a: [u8; 4]) -> Option<u32> {
        let bit = home_v4(a, 4095);
        if self.maybe[bit / 64] & (1 << (bit % 64)) == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = home_v4(a, mask);
        loop {
            let id = self.slots[i];
            if id == EMPTY {
                return None;
            }
            let e = &self.entries[id as usize];
            if !e.v6 && e.packed[12..] == a {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
    }

    /// The id of `a`, if interned.
    #[inline]
    pub(crate) fn find(&self, a: IpAddr) -> Option<u32> {
        let (p, v6) = pack_addr(a);
        self.find_packed(&p, v6)
    }

    /// Takes a reference to `a`, interning it if needed.
    pub(crate) fn intern(&mut self, a: IpAddr) -> u32 {
        let (packed, v6) = pack_addr(a);
        if let Some(id) = self.find_packed(&packed, v6) {
            self.entries[id as usize].refs += 1;
            return id;
        }
        let e = Entry {
            packed,
            v6,
            refs: 1,
            addr: a,
        };
        let id = if let Some(id) = self.free.pop() {
            self.entries[id as usize] = e;
            id
        } else {
            self.entries.push(e);
            (self.entries.len() - 1) as u32
        };
        self.live += 1;
        if self.live * 2 > self.slots.len() {
            self.rebuild(self.slots.len() * 2);
        } else {
            self.place(id);
        }
        id
    }

    fn place(&mut self, id: u32) {
        let e = self.entries[id as usize];
        let bit = home(&e.packed, e.v6, 4095);
        self.maybe[bit / 64] |= 1 << (bit % 64);
        let mask = self.mask();
        let mut i = home(&e.packed, e.v6, mask);
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = id;
    }

    fn rebuild(&mut self, size: usize) {
        self.slots = vec![EMPTY; size].into_boxed_slice();
        for id in 0..self.entries.len() as u32 {
            if self.entries[id as usize].refs > 0 {
                self.place(id);
            }
        }
    }

    /// Whether `id` is interned and is `a`'s id (checks a caller's cached id).
    #[inline]
    pub(crate) fn is_id_of(&self, id: u32, a: IpAddr) -> bool {
        self.entries
            .get(id as usize)
            .is_some_and(|e| e.refs > 0 && e.addr == a)
    }

    /// Takes one more reference to an interned `id`.
    #[inline]
    pub(crate) fn add_ref(&mut self, id: u32) {
        if let Some(e) = self.entries.get_mut(id as usize) {
            e.refs += 1;
        }
    }

    /// Drops a reference; the last one frees the id.
    pub(crate) fn release(&mut self, id: u32) {
        let Some(e) = self.entries.get_mut(id as usize) else {
            return;
        };
        e.refs -= 1;
        if e.refs > 0 {
            return;
        }
        let e = *e;
        let mask = self.mask();
        let mut i = home(&e.packed, e.v6, mask);
        while self.slots[i] != id {
            i = (i + 1) & mask;
        }
        // Backward-shift deletion: pull later members of the cluster into the hole unless
        // their home lies cyclically in (hole, j].
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let cur = self.slots[j];
            if cur == EMPTY {
                break;
            }
            let c = &self.entries[cur as usize];
            let h = home(&c.packed, c.v6, mask);
            let stays = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !stays {
                self.slots[hole] = cur;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY;
        self.live -= 1;
        self.free.push(id);
        // The filter keeps the freed address's bit (a false "maybe" costs one probe);
        // it is redrawn once stale bits could outnumber live ones, amortised O(1).
        self.stale += 1;
        if self.stale > self.live + 64 {
            self.stale = 0;
            *self.maybe = [0; 64];
            for e in &self.entries {
                if e.refs > 0 {
                    let bit = home(&e.packed, e.v6, 4095);
                    self.maybe[bit / 64] |= 1 << (bit % 64);
                }
            }
        }
    }

    /// Whether `id` is the packed address `packed`.
    #[inline(always)]
    pub(crate) fn packed_is(&self, id: u32, packed: &[u8; 16], v6: bool) -> bool {
        self.entries
            .get(id as usize)
            .is_some_and(|e| e.packed == *packed && e.v6 == v6)
    }

    /// Whether `id` is the IPv4 address with octets `a`.
    #[inline(always)]
    pub(crate) fn is_v4(&self, id: u32, a: [u8; 4]) -> bool {
        self.entries
            .get(id as usize)
            .is_some_and(|e| !e.v6 && e.packed[12..] == a)
    }

    /// The address behind `id`.
    #[inline]
    pub(crate) fn get(&self, id: u32) -> IpAddr {
        self.entries[id as usize].addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// The IPv4 home is the packed home of the mapped address, for any mask.
        #[test]
        fn home_v4_is_home_of_the_packed_form(a in any::<[u8; 4]>(), bits in 0u32..20) {
            let mask = (1usize << bits) - 1;
            let (p, v6) = pack_addr(IpAddr::from(a));
            prop_assert_eq!(home_v4(a, mask), home(&p, v6, mask));
        }

        /// Interning behaves like a reference-counted map, through growth, id reuse and
        /// deletions inside clusters.
        #[test]
        fn behaves_like_a_counted_map(ops in proptest::collection::vec((any::<bool>(), 0u8..40, any::<bool>()), 1..400)) {
            let mut pool = AddrPool::new();
            let mut model: HashMap<IpAddr, (u32, u32)> = HashMap::new();
            for (add, n, v6) in ops {
                let a = if v6 {
                    IpAddr::from([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n])
                } else {
                    IpAddr::from([10, 0, n / 8, n])
                };
                if add {
                    let id = pool.intern(a);
                    let e = model.entry(a).or_insert((id, 0));
                    prop_assert_eq!(e.0, id);
                    e.1 += 1;
                } else if let Some((id, refs)) = model.get(&a).copied() {
                    pool.release(id);
                    if refs == 1 {
                        model.remove(&a);
                    } else {
                        model.insert(a, (id, refs - 1));
                    }
                }
                for (&a, &(id, _)) in &model {
                    prop_assert_eq!(pool.find(a), Some(id));
                    prop_assert_eq!(pool.get(id), a);
                    if let IpAddr::V4(v) = a {
                        prop_assert_eq!(pool.find_v4(v.octets()), Some(id));
                        prop_assert!(pool.is_v4(id, v.octets()));
                    } else {
                        prop_assert!(!pool.is_v4(id, [10, 0, 0, n]));
                    }
                }
                // An IPv4 address not interned (10.1/16 never is) is not found.
                prop_assert_eq!(pool.find_v4([10, 1, 0, n]), None);
                prop_assert_eq!(pool.live, model.len());
            }
        }
    }

    #[test]
    fn a_mapped_v6_address_is_not_the_v4_one() {
        let mut pool = AddrPool::new();
        let v4 = IpAddr::from([192, 0, 2, 1]);
        let mapped = IpAddr::from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
        let a = pool.intern(v4);
        assert_eq!(pool.find(mapped), None);
        let b = pool.intern(mapped);
        assert_ne!(a, b);
        assert_eq!(pool.get(b), mapped);
    }
}
