//! GRE headers (RFC 2784 with the RFC 2890 key and sequence extensions).

use super::{be16, be32, put16};
use crate::checksum;
use crate::error::{Layer, ParseError, ParseErrorKind};

/// Checksum-present flag (first byte).
pub const FLAG_CSUM: u8 = 0x80;
/// Routing-present flag (first byte), obsolete and refused.
pub const FLAG_ROUTING: u8 = 0x40;
/// Key-present flag (first byte).
pub const FLAG_KEY: u8 = 0x20;
/// Sequence-present flag (first byte).
pub const FLAG_SEQ: u8 = 0x10;

/// A view of a GRE packet. After [`GrePacket::new_checked`], version is 0, routing is
/// absent and every optional field the flags announce lies within the buffer.
#[derive(Debug, Clone)]
pub struct GrePacket<T> {
    buffer: T,
}

/// Length of a GRE header with the given options.
#[must_use]
pub const fn header_len(csum: bool, key: bool, seq: bool) -> usize {
    4 + if csum { 4 } else { 0 } + if key { 4 } else { 0 } + if seq { 4 } else { 0 }
}

impl<T: AsRef<[u8]>> GrePacket<T> {
    /// Validates the header.
    ///
    /// # Errors
    /// A [`ParseError`] for a short buffer, a version other than 0, or the routing flag.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < 4 {
            return Err(ParseError::truncated(Layer::Gre, 0, 4, b.len()));
        }
        let version = b[1] & 0x07;
        if version != 0 {
            return Err(ParseError::new(
                Layer::Gre,
                1,
                ParseErrorKind::Unsupported(u32::from(version)),
            ));
        }
        if b[0] & FLAG_ROUTING != 0 {
            return Err(ParseError::new(
                Layer::Gre,
                0,
                ParseErrorKind::Unsupported(u32::from(FLAG_ROUTING)),
            ));
        }
        let f = b[0];
        let hl = header_len(f & FLAG_CSUM != 0, f & FLAG_KEY != 0, f & FLAG_SEQ != 0);
        if hl > b.len() {
            return Err(ParseError::truncated(Layer::Gre, 0, hl, b.len()));
        }
        Ok(Self { buffer })
    }

    fn flags(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Header length including the optional fields.
    pub fn header_len(&self) -> usize {
        let f = self.flags();
        header_len(f & FLAG_CSUM != 0, f & FLAG_KEY != 0, f & FLAG_SEQ != 0)
    }

    /// Protocol type (an EtherType) of the payload.
    pub fn protocol(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    /// The checksum, if present.
    pub fn checksum(&self) -> Option<u16> {
        (self.flags() & FLAG_CSUM != 0).then(|| be16(self.buffer.as_ref(), 4))
    }

    /// The key, if present.
    pub fn key(&self) -> Option<u32> {
        let f = self.flags();
        let at = if f & FLAG_CSUM != 0 { 8 } else { 4 };
        (f & FLAG_KEY != 0).then(|| be32(self.buffer.as_ref(), at))
    }

    /// The sequence number, if present.
    pub fn seq(&self) -> Option<u32> {
        let f = self.flags();
        let at = 4 + if f & FLAG_CSUM != 0 { 4 } else { 0 } + if f & FLAG_KEY != 0 { 4 } else { 0 };
        (f & FLAG_SEQ != 0).then(|| be32(self.buffer.as_ref(), at))
    }

    /// Whether the checksum (if present) verifies over header and payload.
    pub fn verify_checksum(&self) -> bool {
        self.checksum().is_none() || checksum::checksum(self.buffer.as_ref()) == 0
    }

    /// The payload after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// Writes a GRE header into `out[..header_len(..)]`; the checksum, if any, is filled by
/// the caller once the payload is in place.
pub(crate) fn emit_header(out: &mut [u8], protocol: u16, csum: bool, key: Option<u32>) {
    out[0] = if csum { FLAG_CSUM } else { 0 } | if key.is_some() { FLAG_KEY } else { 0 };
    out[1] = 0;
    put16(out, 2, protocol);
    let mut at = 4;
    if csum {
        out[4..8].fill(0);
        at = 8;
    }
    if let Some(k) = key {
        out[at..at + 4].copy_from_slice(&k.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_and_checksum() {
        let mut b = [0u8; 16];
        emit_header(&mut b, 0x0800, true, Some(7));
        b[12..16].copy_from_slice(b"data");
        let c = checksum::checksum(&b);
        put16(&mut b, 4, c);
        let g = GrePacket::new_checked(&b[..]).unwrap();
        assert_eq!(g.header_len(), 12);
        assert_eq!(g.key(), Some(7));
        assert_eq!(g.seq(), None);
        assert!(g.verify_checksum());
        assert_eq!(g.payload(), b"data");
        assert!(GrePacket::new_checked(&b[..10]).is_err());
        let mut v = b;
        v[1] = 1;
        assert!(GrePacket::new_checked(&v[..]).is_err());
    }
}
