//! SipHash-1-3, the keyed hash for everything an attacker may choose (connection keys,
//! flow hashes) and, with fixed keys, the kernel's `hsiphash` on 64-bit hosts.

const C0: u64 = 0x736f_6d65_7073_6575;
const C1: u64 = 0x646f_7261_6e64_6f6d;
const C2: u64 = 0x6c79_6765_6e65_7261;
const C3: u64 = 0x7465_6462_7974_6573;

/// SipHash state.
#[derive(Clone, Copy)]
pub(crate) struct Sip {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl Sip {
    #[inline(always)]
    pub(crate) const fn new(k0: u64, k1: u64) -> Self {
        Self {
            v0: C0 ^ k0,
            v1: C1 ^ k1,
            v2: C2 ^ k0,
            v3: C3 ^ k1,
        }
    }

    /// `SIPHASH_PERMUTATION`.
    #[inline(always)]
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13);
        self.v1 ^= self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16);
        self.v3 ^= self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21);
        self.v3 ^= self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17);
        self.v1 ^= self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    /// One message word with one compression round (the "1" of 1-3).
    #[inline(always)]
    fn compress(&mut self, m: u64) {
        self.v3 ^= m;
        self.round();
        self.v0 ^= m;
    }

    /// `HPOSTAMBLE` of the 64-bit build: last block, then three finalisation rounds.
    #[inline(always)]
    pub(crate) fn finish(mut self, b: u64) -> u64 {
        self.compress(b);
        self.v2 ^= 0xff;
        self.round();
        self.round();
        self.round();
        (self.v0 ^ self.v1) ^ (self.v2 ^ self.v3)
    }
}

/// SipHash-1-3 of the `len` (at most 7) low-order bytes of `word` taken as a
/// little-endian message: equal to [`siphash13`] of those bytes, in one compression.
#[must_use]
#[inline(always)]
pub fn siphash13_short(word: u64, len: u8, k0: u64, k1: u64) -> u64 {
    debug_assert!(len < 8 && (len == 0 || word >> (8 * u32::from(len)) == 0));
    Sip::new(k0, k1).finish((u64::from(len) << 56) | word)
}

/// SipHash-1-3 of `data` with key words `k0`, `k1` (64-bit result): the function
/// `siphasher::sip::SipHasher13` computes, straight-line for short inputs (no streaming
/// buffer), which is most of the cost saved on a 5- to 37-byte key.
#[must_use]
#[inline]
pub fn siphash13(data: &[u8], k0: u64, k1: u64) -> u64 {
    let mut s = Sip::new(k0, k1);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        s.compress(u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    let mut w = [0u8; 8];
    w[..rest.len()].copy_from_slice(rest);
    let b = ((data.len() as u64) << 56) | u64::from_le_bytes(w);
    s.finish(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::Hasher;

    #[test]
    fn equals_siphasher_for_every_length() {
        let input: Vec<u8> = (0u8..=255).map(|b| b.wrapping_mul(37)).collect();
        for (k0, k1) in [(0, 0), (0x1234, 0x9876_5432_1000), (u64::MAX, 3)] {
            for len in 0..input.len() {
                let mut h = siphasher::sip::SipHasher13::new_with_keys(k0, k1);
                h.write(&input[..len]);
                assert_eq!(siphash13(&input[..len], k0, k1), h.finish(), "len {len}");
                if len < 8 {
                    let mut w = [0u8; 8];
                    w[..len].copy_from_slice(&input[..len]);
                    let short = siphash13_short(u64::from_le_bytes(w), len as u8, k0, k1);
                    assert_eq!(short, h.finish(), "short, len {len}");
                }
            }
        }
    }
}
