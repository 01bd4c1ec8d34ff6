//! UDP headers.

use super::{be16, put16};
use crate::error::{Layer, ParseError, ParseErrorKind};

/// UDP header length.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 6;

/// A view of a UDP datagram. After [`UdpPacket::new_checked`] the header lies within the
/// buffer and the length field is at least 8.
#[derive(Debug, Clone)]
pub struct UdpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Validates the header. The length field may exceed the buffer (the first fragment
    /// of a fragmented datagram); callers that know the datagram is whole check that.
    ///
    /// # Errors
    /// A [`ParseError`] for a short buffer or a length field below 8.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(ParseError::truncated(Layer::Udp, 0, HEADER_LEN, b.len()));
        }
        let l = usize::from(be16(b, 4));
        if l < HEADER_LEN {
            return Err(ParseError::new(
                Layer::Udp,
                4,
                ParseErrorKind::BadHeaderLength(l),
            ));
        }
        Ok(Self { buffer })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    /// Length field (header and payload).
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    /// Whether the length field says there is no payload.
    pub fn is_empty(&self) -> bool {
        self.len() as usize == HEADER_LEN
    }

    /// Checksum field (0 over IPv4 means "no checksum").
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), CHECKSUM_OFFSET)
    }

    /// Payload within the buffer, up to the length field.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[HEADER_LEN..usize::from(self.len()).min(b.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port (checksum not updated).
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 0, v);
    }

    /// Sets the destination port (checksum not updated).
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 2, v);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 4, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), CHECKSUM_OFFSET, v);
    }
}

/// A computed UDP checksum of zero is sent as 0xFFFF (RFC 768): zero means "none".
#[inline]
#[must_use]
pub fn mangle_zero(c: u16) -> u16 {
    if c == 0 { 0xffff } else { c }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_floor() {
        let mut b = [0u8; 8];
        b[5] = 8;
        assert!(UdpPacket::new_checked(&b[..]).unwrap().is_empty());
        b[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err().kind,
            ParseErrorKind::BadHeaderLength(7)
        );
        assert!(UdpPacket::new_checked(&b[..7]).is_err());
        assert_eq!(mangle_zero(0), 0xffff);
        assert_eq!(mangle_zero(5), 5);
    }
}
