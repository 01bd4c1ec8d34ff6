//! Internet checksums (RFC 1071 full, RFC 1624 incremental) and SCTP's CRC32c.
//!
//! Partial sums are carried as `u64` accumulators of big-endian 32-bit words: since
//! 2^16 ≡ 1 (mod 0xFFFF), adding 32-bit words and folding at the end gives the same
//! one's-complement sum as adding 16-bit words, in half the additions.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` to a running one's-complement sum (not yet folded or complemented).
///
/// An odd trailing byte is padded with zero on the right, so only the last piece of a
/// checksummed region may have odd length.
#[inline]
#[must_use]
pub fn add(mut acc: u64, data: &[u8]) -> u64 {
    let (chunks, rest) = data.as_chunks::<8>();
    for c in chunks {
        let w = u64::from_be_bytes(*c);
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let (words, tail) = rest.as_chunks::<2>();
    for w in words {
        acc += u64::from(u16::from_be_bytes(*w));
    }
    if let Some(&b) = tail.first() {
        acc += u64::from(b) << 8;
    }
    acc
}

/// Folds a running sum to 16 bits with end-around carry (not complemented).
#[inline]
#[must_use]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Finishes a running sum into the value stored in a checksum field.
#[inline]
#[must_use]
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// RFC 1071 checksum of `data` (the IPv4 header checksum, ICMPv4's, GRE's).
#[inline]
#[must_use]
pub fn checksum(data: &[u8]) -> u16 {
    finish(add(0, data))
}

/// Running sum of the IPv4 pseudo-header for TCP/UDP.
#[inline]
#[must_use]
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u64 {
    u64::from(src.to_bits()) + u64::from(dst.to_bits()) + u64::from(protocol) + u64::from(len)
}

/// Running sum of the IPv6 pseudo-header (RFC 8200 section 8.1) for TCP/UDP/ICMPv6.
#[inline]
#[must_use]
pub fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, protocol: u8, len: u32) -> u64 {
    let a = src.to_bits();
    let b = dst.to_bits();
    let words = |x: u128| {
        (x >> 96) as u64 + ((x >> 64) as u32) as u64 + ((x >> 32) as u32) as u64 + (x as u32) as u64
    };
    words(a) + words(b) + u64::from(protocol) + u64::from(len)
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word changes from `old` to `new`.
#[inline]
#[must_use]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!hc) + u64::from(!old) + u64::from(new))
}

/// RFC 1624 eqn. 3 for a 32-bit field (an IPv4 address), as two 16-bit words.
#[inline]
#[must_use]
pub fn update32(hc: u16, old: u32, new: u32) -> u16 {
    let old_c = u64::from(!(old >> 16) & 0xffff) + u64::from(!old & 0xffff);
    !fold(u64::from(!hc) + old_c + u64::from(new >> 16) + u64::from(new & 0xffff))
}

/// RFC 1624 eqn. 3 for a 128-bit field (an IPv6 address).
#[inline]
#[must_use]
pub fn update128(hc: u16, old: u128, new: u128) -> u16 {
    let mut acc = u64::from(!hc);
    for i in 0..4 {
        let o = (old >> (32 * i)) as u32;
        let n = (new >> (32 * i)) as u32;
        acc += u64::from(!(o >> 16) & 0xffff) + u64::from(!o & 0xffff);
        acc += u64::from(n >> 16) + u64::from(n & 0xffff);
    }
    !fold(acc)
}

/// RFC 1624 eqn. 3 for an address of either family; both must be the same family.
#[inline]
#[must_use]
pub(crate) fn update_addr(hc: u16, old: core::net::IpAddr, new: core::net::IpAddr) -> u16 {
    use core::net::IpAddr::{V4, V6};
    match (old, new) {
        (V4(o), V4(n)) => update32(hc, o.to_bits(), n.to_bits()),
        (V6(o), V6(n)) => update128(hc, o.to_bits(), n.to_bits()),
        // Callers check families first; a mixed pair would be a logic error, leave hc alone.
        _ => hc,
    }
}

/// The CRC32c (Castagnoli) of `data` as SCTP stores it (RFC 9260 appendix A):
/// computed with the checksum field zeroed, written little-endian into the field.
#[must_use]
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_update(!0, data)
}

/// Continues a raw (not yet inverted) CRC32c over `data`, slicing by 8.
#[must_use]
pub(crate) fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    let (chunks, rest) = data.as_chunks::<8>();
    for c in chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let hi = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
        crc = CRC32C[7][(lo & 0xff) as usize]
            ^ CRC32C[6][((lo >> 8) & 0xff) as usize]
            ^ CRC32C[5][((lo >> 16) & 0xff) as usize]
            ^ CRC32C[4][(lo >> 24) as usize]
            ^ CRC32C[3][(hi & 0xff) as usize]
            ^ CRC32C[2][((hi >> 8) & 0xff) as usize]
            ^ CRC32C[1][((hi >> 16) & 0xff) as usize]
            ^ CRC32C[0][(hi >> 24) as usize];
    }
    for &b in rest {
        crc = CRC32C[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

const CRC32C: [[u32; 256]; 8] = crc32c_tables();

const fn crc32c_tables() -> [[u32; 256]; 8] {
    const POLY: u32 = 0x82f6_3b78; // reflected Castagnoli polynomial
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let w = if pair.len() == 2 {
                u16::from_be_bytes([pair[0], pair[1]])
            } else {
                u16::from(pair[0]) << 8
            };
            acc += u32::from(w);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !(acc as u16)
    }

    #[test]
    fn rfc1071_matches_word_by_word_reference() {
        let data: Vec<u8> = (0..1501u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in 0..data.len() {
            assert_eq!(checksum(&data[..len]), reference(&data[..len]), "len {len}");
        }
    }

    #[test]
    fn rfc1624_worked_example() {
        // RFC 1624 section 4: eqn. 3 gives 0x0000 where RFC 1141's form gives 0xFFFF.
        assert_eq!(update16(0xDD2F, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn ipv4_header_known_checksum() {
        // Classic example header (Wikipedia "IPv4 header checksum").
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
    }

    #[test]
    fn crc32c_known_vectors() {
        // RFC 3720 appendix B.4 test vectors.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let inc: Vec<u8> = (0u8..32).collect();
        assert_eq!(crc32c(&inc), 0x46dd_794e);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    proptest::proptest! {
        #[test]
        fn incremental_equals_full(data in proptest::collection::vec(proptest::num::u8::ANY, 2..200),
                                   idx in 0usize..100, new in proptest::num::u16::ANY) {
            let i = (idx % (data.len() / 2)) * 2;
            let old = u16::from_be_bytes([data[i], data[i + 1]]);
            let hc = checksum(&data);
            let mut d2 = data.clone();
            d2[i..i + 2].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&d2);
            let inc = update16(hc, old, new);
            // Eqn. 3 is exact except for the +0/-0 ambiguity of an all-zero buffer.
            if d2.iter().any(|&b| b != 0) {
                proptest::prop_assert_eq!(inc, full);
            }
        }

        #[test]
        fn update32_and_128_equal_full(a in proptest::num::u128::ANY, b in proptest::num::u128::ANY,
                                       mut pad in proptest::collection::vec(proptest::num::u8::ANY, 2..40)) {
            // Fields sit on 16-bit boundaries in every header.
            pad.truncate(pad.len() & !1);
            let mut d = pad.clone();
            d.extend_from_slice(&a.to_be_bytes());
            let hc = checksum(&d);
            let mut d2 = pad.clone();
            d2.extend_from_slice(&b.to_be_bytes());
            if d2.iter().any(|&x| x != 0) {
                proptest::prop_assert_eq!(update128(hc, a, b), checksum(&d2));
            }
            let mut e = pad.clone();
            e.extend_from_slice(&(a as u32).to_be_bytes());
            let hc = checksum(&e);
            let mut e2 = pad;
            e2.extend_from_slice(&(b as u32).to_be_bytes());
            if e2.iter().any(|&x| x != 0) {
                proptest::prop_assert_eq!(update32(hc, a as u32, b as u32), checksum(&e2));
            }
        }
    }
}
