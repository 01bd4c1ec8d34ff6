//! The kernel's hash primitives, bit for bit, and table helpers shared by the hashing
//! schedulers (`dh`, `sh`, `mh`, `lblc`, `lblcr`).
//!
//! - [`hash_32`] is `include/linux/hash.h`'s generic `hash_32`: multiply by
//!   [`GOLDEN_RATIO_32`] modulo 2³² and keep the top `bits` bits. (m68k, microblaze and
//!   h8300 once had their own `__hash_32`; every 64-bit architecture uses the generic one.)
//! - [`hsiphash`] is `lib/siphash.c`'s `hsiphash` **as built on a 64-bit kernel**, where
//!   "HalfSipHash-1-3" is in fact SipHash-1-3 over the key's two `unsigned long` words
//!   (`HPREAMBLE` = `PREAMBLE`, one compression round per 8-byte word, three
//!   finalisation rounds), truncated to `u32`. The last block is the remaining 0..7
//!   bytes little-endian with `len << 56` in the top byte, exactly as in reference
//!   SipHash. 32-bit kernels run real HalfSipHash-1-3 and get other values.
//! - [`addr_fold`] is the `ntohl(addr_fold)` every IPVS hashing scheduler feeds in: the
//!   IPv4 address as a number, or the XOR of the four 32-bit words of an IPv6 address.

use super::{DestId, DestList, RealServer};
use core::net::IpAddr;

/// `GOLDEN_RATIO_32` of `include/linux/hash.h`.
pub const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// The kernel's `hash_32(val, bits)`: the top `bits` bits of `val * GOLDEN_RATIO_32`.
///
/// `bits` is 1 to 32 (the kernel never passes 0; here 0 gives 0).
#[must_use]
#[inline]
pub const fn hash_32(val: u32, bits: u32) -> u32 {
    let h = val.wrapping_mul(GOLDEN_RATIO_32);
    match h.checked_shr(32u32.wrapping_sub(bits)) {
        Some(v) if bits != 0 => v,
        _ => 0,
    }
}

/// `ntohl(addr_fold)` as IPVS computes it: an IPv4 address as a host-order number; for
/// IPv6 the XOR of its four 32-bit words (`ip6[0] ^ ip6[1] ^ ip6[2] ^ ip6[3]`).
#[must_use]
#[inline]
pub fn addr_fold(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => {
            let w = u128::from(a);
            // XOR of big-endian words, then ntohl: the same as XOR of the numeric words.
            (w as u32) ^ ((w >> 32) as u32) ^ ((w >> 64) as u32) ^ ((w >> 96) as u32)
        }
    }
}

/// An `hsiphash_key_t` of a 64-bit kernel: two 64-bit words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HsipKey {
    /// `key[0]`.
    pub k0: u64,
    /// `key[1]`.
    pub k1: u64,
}

/// The kernel's `hsiphash(data, len, key)` on a 64-bit kernel: SipHash-1-3 truncated to
/// 32 bits.
#[must_use]
pub fn hsiphash(data: &[u8], key: &HsipKey) -> u32 {
    crate::siphash::siphash13(data, key.k0, key.k1) as u32
}

/// `hsiphash(&v, sizeof(v), key)` for a `u32` `v` stored in memory on a little-endian
/// host, which is also the kernel's `hsiphash_1u32(v, key)` on 64-bit: the four bytes
/// are the whole last block, `b = (4 << 56) | v`.
#[must_use]
#[inline]
pub fn hsiphash_u32(v: u32, key: &HsipKey) -> u32 {
    crate::siphash::Sip::new(key.k0, key.k1).finish((4u64 << 56) | u64::from(v)) as u32
}

/// A hash-table slot naming a real server: its kernel list position when the table was
/// built (for O(1) access) and its id (to check that the position is still right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pos: u32,
    id: DestId,
}

impl Slot {
    /// An empty bucket (the kernel's NULL).
    pub(crate) const EMPTY: Self = Self {
        pos: u32::MAX,
        id: DestId(u32::MAX),
    };

    pub(crate) const fn new(pos: usize, id: DestId) -> Self {
        Self {
            pos: pos as u32,
            id,
        }
    }

    pub(crate) const fn is_empty(self) -> bool {
        self.pos == u32::MAX
    }

    pub(crate) const fn id(self) -> DestId {
        self.id
    }

    /// The server of a non-empty slot: O(1) while the pool keeps the scheduler informed,
    /// a search otherwise; `None` if the server has been removed since.
    #[inline]
    pub(crate) fn resolve(self, dests: &DestList) -> Option<&RealServer> {
        match dests.at(self.pos as usize) {
            Some(d) if d.id() == self.id => Some(d),
            _ => find_dest(dests, self.id),
        }
    }
}

/// The server with handle `id`, in O(log n): [`DestList`] hands out ids in increasing
/// order and keeps add order, so kernel list positions hold decreasing ids. Falls back to
/// a linear search should that ever not hold.
pub(crate) fn find_dest(dests: &DestList, id: DestId) -> Option<&RealServer> {
    let (mut lo, mut hi) = (0usize, dests.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let d = dests.at(mid)?;
        match d.id().cmp(&id) {
            core::cmp::Ordering::Equal => return Some(d),
            // Ids decrease along the list: a larger id means `id` is further on.
            core::cmp::Ordering::Greater => lo = mid + 1,
            core::cmp::Ordering::Less => hi = mid,
        }
    }
    dests.get(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `test_key_hsiphash` of lib/siphash_kunit.c (64-bit build).
    const KUNIT_KEY: HsipKey = HsipKey {
        k0: 0x0706_0504_0302_0100,
        k1: 0x0f0e_0d0c_0b0a_0908,
    };

    /// `test_vectors_hsiphash[64]` of lib/siphash_kunit.c, `#if BITS_PER_LONG == 64`:
    /// `hsiphash(in, i, &key)` with `in[j] = j`.
    const KUNIT_HSIPHASH_64: [u32; 64] = [
        0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7,
        0x9bb11140, 0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7,
        0xc0f95d34, 0x2a519956, 0x7d908b66, 0x63dbd80c, 0xb473e63e, 0x8d297d1c, 0xa6cce040,
        0x2b45f844, 0xa320872e, 0xdae6c123, 0x67349c8c, 0x705b0979, 0xca9913a5, 0x4ade3b35,
        0xef6cd00d, 0x4ab1e1f4, 0x43c5e663, 0x8c21d1bc, 0x16a7b60d, 0x7a8ff9bf, 0x1f2a753e,
        0xbf186b91, 0xada26206, 0xa3c33057, 0xae3a36a1, 0x7b108392, 0x99e41531, 0x3f1ad944,
        0xc8138825, 0xc28949a6, 0xfaf8876b, 0x9f042196, 0x68b1d623, 0x8b5114fd, 0xdf074c46,
        0x12cc86b3, 0x0a52098f, 0x9d292f9a, 0xa2f41f12, 0x43a71ed0, 0x73f0bce6, 0x70a7e980,
        0x243c6d75, 0xfdb71513, 0xa67d8a08, 0xb7e8f148, 0xf7a644ee, 0x0f1837f2, 0x4b6694e0,
        0xb7bbb3a8,
    ];

    #[test]
    fn hsiphash_matches_kunit_vectors_64bit() {
        let input: Vec<u8> = (0u8..64).collect();
        for (i, &want) in KUNIT_HSIPHASH_64.iter().enumerate() {
            assert_eq!(hsiphash(&input[..i], &KUNIT_KEY), want, "length {i}");
        }
        // hsiphash_1u32(0x03020100) is checked against vector 4 in the kunit file.
        assert_eq!(hsiphash_u32(0x0302_0100, &KUNIT_KEY), KUNIT_HSIPHASH_64[4]);
    }

    #[test]
    fn hsiphash_of_a_u32_is_the_one_block_form() {
        for v in [0u32, 1, 0x0a00_0001, u32::MAX, 0xdead_beef] {
            assert_eq!(
                hsiphash_u32(v, &KUNIT_KEY),
                hsiphash(&v.to_le_bytes(), &KUNIT_KEY)
            );
        }
    }

    #[test]
    fn hash_32_by_hand() {
        // 0x0a000001 * 0x61c88647 = 0x3d1d53ec6_000000 + 0x61c88647 ≡ 0x27c88647 (mod 2^32).
        assert_eq!(0x0a00_0001u32.wrapping_mul(GOLDEN_RATIO_32), 0x27c8_8647);
        assert_eq!(hash_32(0x0a00_0001, 8), 0x27);
        assert_eq!(hash_32(0x0a00_0001, 10), 0x27c8_8647 >> 22);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(0xffff_ffff, 32), 0u32.wrapping_sub(GOLDEN_RATIO_32));
        assert_eq!(hash_32(5, 0), 0);
    }

    #[test]
    fn folds() {
        assert_eq!(addr_fold("10.0.0.1".parse().unwrap()), 0x0a00_0001);
        let v6: IpAddr = "2001:db8::1:0:0:7".parse().unwrap();
        assert_eq!(
            addr_fold(v6),
            0x2001_0db8 ^ 0x0001_0000 ^ 7,
            "the zero word drops out"
        );
    }
}
