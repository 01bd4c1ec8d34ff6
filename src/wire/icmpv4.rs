//! ICMPv4 messages.

use super::{be16, be32, put16, put32};
use crate::checksum;
use crate::error::{Layer, ParseError};

/// Length of the ICMP header (type, code, checksum, 4 bytes of rest-of-header).
pub const HEADER_LEN: usize = 8;

/// ICMPv4 types this crate interprets.
pub mod types {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 3;
    /// Source quench (deprecated, still handled by IPVS).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Code of destination-unreachable "fragmentation needed and DF set".
pub const CODE_FRAG_NEEDED: u8 = 4;
/// Code of destination-unreachable "port unreachable".
pub const CODE_PORT_UNREACH: u8 = 3;

/// Whether `ty` is an error message that quotes the offending packet.
#[must_use]
pub const fn is_error(ty: u8) -> bool {
    matches!(
        ty,
        types::DEST_UNREACH
            | types::SOURCE_QUENCH
            | types::REDIRECT
            | types::TIME_EXCEEDED
            | types::PARAM_PROBLEM
    )
}

/// A view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Validates that the 8-byte header fits.
    ///
    /// # Errors
    /// [`crate::ParseErrorKind::Truncated`] for a short buffer.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let n = buffer.as_ref().len();
        if n < HEADER_LEN {
            return Err(ParseError::truncated(Layer::Icmpv4, 0, HEADER_LEN, n));
        }
        Ok(Self { buffer })
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }

    /// Message code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    /// Echo identifier (meaningful for echo request/reply).
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    /// Echo sequence number.
    pub fn echo_seq(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    /// Next-hop MTU of a "fragmentation needed" message.
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    /// The 4 bytes after the checksum.
    pub fn rest_of_header(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    /// Bytes after the 8-byte header (for errors, the quoted packet).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets type and code.
    pub fn set_type_code(&mut self, ty: u8, code: u8) {
        let b = self.buffer.as_mut();
        b[0] = ty;
        b[1] = code;
    }

    /// Sets the 4 bytes after the checksum.
    pub fn set_rest_of_header(&mut self, v: u32) {
        put32(self.buffer.as_mut(), 4, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 2, v);
    }

    /// Recomputes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_fields_and_checksum() {
        let mut b = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i'];
        let mut p = Icmpv4Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.echo_ident(), 0x1234);
        assert!(!is_error(p.msg_type()));
        assert!(is_error(types::DEST_UNREACH));
        assert!(Icmpv4Packet::new_checked(&b[..7]).is_err());
    }
}
