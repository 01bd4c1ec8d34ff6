//! Direct routing ("VS/DR"): the frame goes to the real server's MAC unchanged at L3.
//!
//! The kernel's `ip_vs_dr_xmit` routes the packet with `FLOWI_FLAG_KNOWN_NH` so the
//! neighbour layer writes the real server's MAC; the IP header only sees the TTL
//! decrement ([`crate::forward::ttl::decrement`]) done on the way.

use crate::error::RewriteError;
use crate::wire::{EthernetFrame, MacAddr, PacketSummary};

/// Sets the destination and source MAC of an Ethernet frame carrying an IP packet.
///
/// # Errors
/// [`RewriteError::Parse`] if the frame or the IP packet in it is malformed; the frame is
/// then unchanged.
pub fn rewrite_macs(frame: &mut [u8], dst: MacAddr, src: MacAddr) -> Result<(), RewriteError> {
    PacketSummary::parse_ethernet(frame)?;
    let mut eth = EthernetFrame::new_checked(frame)?;
    eth.set_dst(dst);
    eth.set_src(src);
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
