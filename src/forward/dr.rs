//! Direct routing ("VS/DR"): the frame goes to the real server's MAC unchanged at L3.
//!
//! The kernel's `ip_vs_dr_xmit` routes the packet with `FLOWI_FLAG_KNOWN_NH` so the
//! neighbour layer writes the real server's MAC; the IP header only sees the TTL
//! decrement ([`crate::forward::ttl::decrement`]) done on the way.

use crate::error::RewriteError;
use crate::wire::{EtherType, EthernetFrame, MacAddr, PacketSummary, lean};

/// Sets the destination and source MAC of an Ethernet frame carrying an IP packet.
///
/// # Errors
/// [`RewriteError::Parse`] if the frame or the IP packet in it is malformed; the frame is
/// then unchanged.
///
/// The IP packet is validated exactly as [`PacketSummary::parse_ethernet`] validates it:
/// the common packet by a lean parse that accepts only what the full parse accepts,
/// anything else by the full parse.
pub fn rewrite_macs(frame: &mut [u8], dst: MacAddr, src: MacAddr) -> Result<(), RewriteError> {
    if !lean_ok(frame) {
        validate_full(frame)?;
    }
    if let Some(macs) = frame.first_chunk_mut::<12>() {
        let (d, s) = macs.split_at_mut(6);
        d.copy_from_slice(&dst.0);
        s.copy_from_slice(&src.0);
    }
    Ok(())
}

/// Whether the lean parse accepts the frame: an Ethernet header (one optional tag) with
/// EtherType IPv4 or IPv6 in front of a packet [`lean::parse`] accepts.
#[inline]
fn lean_ok(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    matches!(eth.ethertype(), EtherType::IPV4 | EtherType::IPV6)
        && frame
            .get(eth.header_len()..)
            .and_then(lean::parse)
            .is_some()
}

#[cold]
#[inline(never)]
fn validate_full(frame: &[u8]) -> Result<(), RewriteError> {
    PacketSummary::parse_ethernet(frame)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn frame(vlan: bool) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1, 1, 1, 1, 1, 1], [2, 2, 2, 2, 2, 2]);
        let mut v = Vec::new();
        if vlan {
            b.single_vlan(42.try_into().unwrap())
                .ipv4([10, 0, 0, 1], [192, 0, 2, 1], 64)
                .tcp(40000, 80, 1, 100)
                .write(&mut v, b"x")
                .unwrap();
        } else {
            b.ipv6([1; 16], [2; 16], 64)
                .udp(1, 2)
                .write(&mut v, b"y")
                .unwrap();
        }
        v
    }

    #[test]
    fn sets_macs_and_nothing_else() {
        for vlan in [false, true] {
            let mut f = frame(vlan);
            let before = f.clone();
            let dst = MacAddr([0xaa, 0, 0, 0, 0, 1]);
            let src = MacAddr([0xbb, 0, 0, 0, 0, 2]);
            rewrite_macs(&mut f, dst, src).unwrap();
            assert_eq!(&f[0..6], &dst.0);
            assert_eq!(&f[6..12], &src.0);
            assert_eq!(&f[12..], &before[12..]);
            let p = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
            assert!(p.net.is_some());
        }
    }

    #[test]
    fn malformed_frame_unchanged() {
        let mut f = frame(true);
        let n = f.len();
        f.truncate(n - 1); // TCP payload cut: IPv4 total length now runs past the frame
        let before = f.clone();
        assert!(rewrite_macs(&mut f, MacAddr([9; 6]), MacAddr([8; 6])).is_err());
        assert_eq!(f, before);
        let mut f = frame(false);
        f[12] = 0x08;
        f[13] = 0x06; // ARP
        let before = f.clone();
        assert!(rewrite_macs(&mut f, MacAddr([9; 6]), MacAddr([8; 6])).is_err());
        assert_eq!(f, before);
    }
}

/// The lean DR validation against [`PacketSummary::parse_ethernet`].
#[cfg(test)]
mod lean_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn accepts_and_refuses_as_the_full_parse(
            vlan in any::<bool>(),
            v6 in any::<bool>(),
            body in proptest::collection::vec(any::<u8>(), 0..16),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let b = etherparse::PacketBuilder::ethernet2([1; 6], [2; 6]);
            let mut f = Vec::new();
            match (vlan, v6) {
                (false, false) => b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(1, 2, 3, 4).write(&mut f, &body),
                (false, true) => b.ipv6([1; 16], [2; 16], 64).udp(1, 2).write(&mut f, &body),
                (true, false) => b.single_vlan(5.try_into().unwrap()).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).udp(1, 2).write(&mut f, &body),
                (true, true) => b.single_vlan(5.try_into().unwrap()).ipv6([1; 16], [2; 16], 64).tcp(1, 2, 3, 4).write(&mut f, &body),
            }
            .unwrap();
            prop_assert!(lean_ok(&f), "the common frame takes the lean path");
            for (at, x) in edits {
                let n = f.len();
                f[at % n] ^= x;
            }
            if let Some(c) = cut {
                f.truncate(c % (f.len() + 1));
            }
            let full = PacketSummary::parse_ethernet(&f);
            if lean_ok(&f) {
                prop_assert!(full.is_ok(), "lean accepted what the full parse refuses: {:?}", full);
            }
            let before = f.clone();
            let r = rewrite_macs(&mut f, MacAddr([9; 6]), MacAddr([8; 6]));
            prop_assert_eq!(r.is_ok(), full.is_ok());
            if let Err(e) = r {
                prop_assert_eq!(e, RewriteError::Parse(full.unwrap_err()));
                prop_assert_eq!(&f, &before);
            } else {
                prop_assert_eq!(&f[12..], &before[12..]);
            }
        }
    }
}
