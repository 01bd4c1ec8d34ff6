//! Ethernet II frames with at most one 802.1Q tag.

use super::{be16, put16};
use crate::error::{Layer, ParseError, ParseErrorKind};
use core::fmt;

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// EtherType values this crate interprets.
pub struct EtherType;

impl EtherType {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// Transparent Ethernet bridging (GRE carrying Ethernet).
    pub const TEB: u16 = 0x6558;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = 14;
/// Length of an 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// A view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T> {
    buffer: T,
    header_len: usize,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Validates that the header (and its tag, if any) fits in `buffer`.
    ///
    /// # Errors
    /// [`ParseErrorKind::Truncated`] when the buffer is shorter than the header.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(ParseError::truncated(
                Layer::Ethernet,
                0,
                HEADER_LEN,
                b.len(),
            ));
        }
        let header_len = if be16(b, 12) == EtherType::VLAN {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        };
        if b.len() < header_len {
            return Err(ParseError::truncated(
                Layer::Ethernet,
                0,
                header_len,
                b.len(),
            ));
        }
        if header_len > HEADER_LEN && be16(b, 16) == EtherType::VLAN {
            // Stacked (QinQ) tags are not handled.
            return Err(ParseError::new(
                Layer::Ethernet,
                16,
                ParseErrorKind::Unsupported(u32::from(EtherType::VLAN)),
            ));
        }
        Ok(Self { buffer, header_len })
    }

    /// Destination MAC.
    pub fn dst(&self) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[0..6]);
        MacAddr(m)
    }

    /// Source MAC.
    pub fn src(&self) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[6..12]);
        MacAddr(m)
    }

    /// The 802.1Q tag control information, if tagged.
    pub fn vlan_tci(&self) -> Option<u16> {
        (self.header_len > HEADER_LEN).then(|| be16(self.buffer.as_ref(), 14))
    }

    /// The EtherType of the payload (after the tag, if any).
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), self.header_len - 2)
    }

    /// Header length including the tag.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The payload (L3 packet and any trailing padding).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC.
    pub fn set_dst(&mut self, m: MacAddr) {
        self.buffer.as_mut()[0..6].copy_from_slice(&m.0);
    }

    /// Sets the source MAC.
    pub fn set_src(&mut self, m: MacAddr) {
        self.buffer.as_mut()[6..12].copy_from_slice(&m.0);
    }

    /// Sets the payload EtherType.
    pub fn set_ethertype(&mut self, t: u16) {
        let at = self.header_len - 2;
        put16(self.buffer.as_mut(), at, t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_and_untagged() {
        let mut f = [0u8; 18];
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        f[14..16].copy_from_slice(&[0x00, 0x2a]);
        f[16..18].copy_from_slice(&[0x86, 0xdd]);
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.vlan_tci(), Some(42));
        assert_eq!(e.ethertype(), EtherType::IPV6);
        assert_eq!(e.header_len(), 18);
        assert!(EthernetFrame::new_checked(&f[..16]).is_err());
        assert!(EthernetFrame::new_checked(&f[..13]).is_err());
        let mut g = [0u8; 14];
        g[12] = 0x08;
        let mut e = EthernetFrame::new_checked(&mut g[..]).unwrap();
        assert_eq!(e.vlan_tci(), None);
        e.set_dst(MacAddr([1, 2, 3, 4, 5, 6]));
        assert_eq!(e.dst().to_string(), "01:02:03:04:05:06");
    }
}
