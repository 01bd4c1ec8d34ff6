//! TTL / hop-limit decrement, as IPVS's `decrement_ttl` performs it before forwarding a
//! packet to a non-local real server (DR, tunnel, NAT).

use crate::checksum;
use crate::error::RewriteError;
use crate::wire::{Family, PacketSummary};

/// Decrements the TTL (IPv4) or hop limit (IPv6) of the L3 packet `pkt` and returns the
/// new value. The IPv4 header checksum is updated incrementally (RFC 1624 eqn. 3 on the
/// TTL/protocol word), as the kernel's `ip_decrease_ttl` does.
///
/// # Errors
/// [`RewriteError::Parse`] if the packet is malformed; [`RewriteError::TtlExpired`] if the
/// TTL or hop limit is 1 or 0 (the kernel then sends ICMP time exceeded and drops the
/// packet). The buffer is unchanged on error.
pub fn decrement(pkt: &mut [u8]) -> Result<u8, RewriteError> {
    let s = PacketSummary::parse(pkt)?;
    decrement_summarized(pkt, &s)
}

/// [`decrement`] for a packet already parsed into `s` (whose offsets point into `buf`):
/// no second parse. Bounds are checked, so a summary of another packet gives an error or
/// a meaningless change, never a panic.
///
/// # Errors
/// [`RewriteError::TtlExpired`] as for [`decrement`]; [`RewriteError::Parse`] if the
/// summary's offsets do not fit `buf`. The buffer is unchanged on error.
pub fn decrement_summarized(buf: &mut [u8], s: &PacketSummary) -> Result<u8, RewriteError> {
    decrement_at(buf, s.family, s.l3_offset)
}

/// [`decrement`] for an IP header of `family` at `at` in `buf` that is known to be valid.
#[inline]
pub(crate) fn decrement_at(buf: &mut [u8], family: Family, at: usize) -> Result<u8, RewriteError> {
    let hdr = match family {
        Family::V4 => 20,
        Family::V6 => 40,
    };
    let Some(pkt) = buf.get_mut(at..at + hdr) else {
        return Err(crate::error::ParseError::truncated(
            crate::error::Layer::Ipv4,
            at,
            hdr,
            buf.len().saturating_sub(at),
        )
        .into());
    };
    let cur = match family {
        Family::V4 => pkt[8],
        Family::V6 => pkt[7],
    };
    if cur <= 1 {
        return Err(RewriteError::TtlExpired);
    }
    let ttl = cur - 1;
    match family {
        Family::V4 => {
            let old = u16::from_be_bytes([pkt[8], pkt[9]]);
            let new = u16::from_be_bytes([ttl, pkt[9]]);
            let hc = u16::from_be_bytes([pkt[10], pkt[11]]);
            pkt[8] = ttl;
            pkt[10..12].copy_from_slice(&checksum::update16(hc, old, new).to_be_bytes());
        }
        Family::V6 => pkt[7] = ttl,
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn v4(ttl: u8) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], ttl).udp(1000, 53);
        let mut v = Vec::new();
        b.write(&mut v, b"hello").unwrap();
        v
    }

    fn v6(hl: u8) -> Vec<u8> {
        let b = PacketBuilder::ipv6([1; 16], [2; 16], hl).udp(1000, 53);
        let mut v = Vec::new();
        b.write(&mut v, b"hello").unwrap();
        v
    }

    #[test]
    fn decrements_v4_with_valid_checksum() {
        for ttl in [2u8, 64, 255] {
            let mut p = v4(ttl);
            assert_eq!(decrement(&mut p).unwrap(), ttl - 1);
            let h = etherparse::Ipv4HeaderSlice::from_slice(&p).unwrap();
            assert_eq!(h.ttl(), ttl - 1);
            assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum());
            assert_eq!(checksum::checksum(&p[..20]), 0);
        }
    }

    #[test]
    fn decrements_v6() {
        let mut p = v6(64);
        assert_eq!(decrement(&mut p).unwrap(), 63);
        assert_eq!(p[7], 63);
    }

    #[test]
    fn expired_and_malformed_leave_buffer_unchanged() {
        for mut p in [v4(1), v4(0), v6(1), v6(0)] {
            let before = p.clone();
            assert_eq!(decrement(&mut p), Err(RewriteError::TtlExpired));
            assert_eq!(p, before);
        }
        let mut p = v4(64);
        p[10] ^= 1; // bad header checksum
        let before = p.clone();
        assert!(matches!(decrement(&mut p), Err(RewriteError::Parse(_))));
        assert_eq!(p, before);
    }

    proptest::proptest! {
        #[test]
        fn checksum_stays_valid(ttl in 2u8..=255, tos in proptest::num::u8::ANY, len in 0usize..64) {
            let mut p = v4(ttl);
            p[1] = tos;
            p.truncate(28);
            p.extend(std::iter::repeat_n(0xa5, len));
            let total = p.len() as u16;
            p[2..4].copy_from_slice(&total.to_be_bytes());
            p[24..26].copy_from_slice(&((8 + len) as u16).to_be_bytes());
            p[10..12].fill(0);
            let c = checksum::checksum(&p[..20]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            proptest::prop_assert_eq!(decrement(&mut p).unwrap(), ttl - 1);
            proptest::prop_assert_eq!(checksum::checksum(&p[..20]), 0);
        }
    }
}
