//! SCTP common headers (RFC 9260 section 3.1).

use super::{be16, be32, put16};
use crate::checksum;
use crate::error::{Layer, ParseError};

/// Length of the SCTP common header.
pub const HEADER_LEN: usize = 12;
/// Offset of the CRC32c field.
pub const CHECKSUM_OFFSET: usize = 8;

/// A view of an SCTP packet (common header and chunks).
#[derive(Debug, Clone)]
pub struct SctpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> SctpPacket<T> {
    /// Validates that the common header fits.
    ///
    /// # Errors
    /// [`crate::ParseErrorKind::Truncated`] for a short buffer.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let n = buffer.as_ref().len();
        if n < HEADER_LEN {
            return Err(ParseError::truncated(Layer::Sctp, 0, HEADER_LEN, n));
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

    /// Verification tag.
    pub fn verification_tag(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    /// The CRC32c field as a number (stored little-endian on the wire).
    pub fn checksum(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_le_bytes([b[8], b[9], b[10], b[11]])
    }

    /// Type of the first chunk, if any.
    pub fn first_chunk_type(&self) -> Option<u8> {
        self.buffer.as_ref().get(HEADER_LEN).copied()
    }

    /// The CRC32c of the whole packet with the checksum field taken as zero.
    pub fn compute_checksum(&self) -> u32 {
        let b = self.buffer.as_ref();
        let crc = checksum::crc32c_update(!0, &b[..CHECKSUM_OFFSET]);
        let crc = checksum::crc32c_update(crc, &[0; 4]);
        !checksum::crc32c_update(crc, &b[HEADER_LEN..])
    }

    /// Whether the CRC32c verifies.
    pub fn verify_checksum(&self) -> bool {
        self.compute_checksum() == self.checksum()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> SctpPacket<T> {
    /// Sets the source port (checksum not updated).
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 0, v);
    }

    /// Sets the destination port (checksum not updated).
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 2, v);
    }

    /// Recomputes the CRC32c over the whole packet.
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.buffer.as_mut()[8..12].copy_from_slice(&c.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_then_verify() {
        let mut b = [0u8; 28];
        b[0..2].copy_from_slice(&5000u16.to_be_bytes());
        b[12] = 1; // INIT
        let mut s = SctpPacket::new_checked(&mut b[..]).unwrap();
        assert!(!s.verify_checksum());
        s.fill_checksum();
        assert!(s.verify_checksum());
        s.set_src_port(5001);
        assert!(!s.verify_checksum());
    }
}
