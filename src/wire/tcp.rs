//! TCP headers.

use super::{be16, be32, put16};
use crate::error::{Layer, ParseError, ParseErrorKind};

/// Length of a TCP header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 16;

/// TCP flag bits (low byte of the flags word).
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
}

/// A view of a TCP segment. After [`TcpPacket::new_checked`] the whole header, options
/// included, lies within the buffer.
#[derive(Debug, Clone)]
pub struct TcpPacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Validates that the header fits.
    ///
    /// # Errors
    /// A [`ParseError`] for a short buffer or a data offset below 5.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(ParseError::truncated(
                Layer::Tcp,
                0,
                MIN_HEADER_LEN,
                b.len(),
            ));
        }
        let hl = usize::from(b[12] >> 4) * 4;
        if hl < MIN_HEADER_LEN {
            return Err(ParseError::new(
                Layer::Tcp,
                12,
                ParseErrorKind::BadHeaderLength(hl),
            ));
        }
        if hl > b.len() {
            return Err(ParseError::truncated(Layer::Tcp, 0, hl, b.len()));
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

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    /// Acknowledgement number.
    pub fn ack(&self) -> u32 {
        be32(self.buffer.as_ref(), 8)
    }

    /// Header length in bytes.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[12] >> 4) * 4
    }

    /// Flag bits (see [`flags`]).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[13]
    }

    /// Window.
    pub fn window(&self) -> u16 {
        be16(self.buffer.as_ref(), 14)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), CHECKSUM_OFFSET)
    }

    /// Payload after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port (checksum not updated).
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 0, v);
    }

    /// Sets the destination port (checksum not updated).
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 2, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), CHECKSUM_OFFSET, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bounds() {
        let mut b = [0u8; 24];
        b[12] = 0x60;
        b[13] = flags::SYN | flags::ACK;
        let t = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(t.header_len(), 24);
        assert_eq!(t.flags(), 0x12);
        assert!(TcpPacket::new_checked(&b[..22]).is_err());
        b[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err().kind,
            ParseErrorKind::BadHeaderLength(16)
        );
    }
}
