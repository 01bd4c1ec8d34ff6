//! ICMPv6 messages.

use super::{be16, be32, put16, put32};
use crate::checksum;
use crate::error::{Layer, ParseError};
use core::net::Ipv6Addr;

/// Length of the ICMPv6 header (type, code, checksum, 4 bytes of message body).
pub const HEADER_LEN: usize = 8;

/// ICMPv6 types this crate interprets.
pub mod types {
    /// Destination unreachable.
    pub const DEST_UNREACH: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
}

/// Whether `ty` is an error message (RFC 4443: types below 128) that quotes a packet.
#[must_use]
pub const fn is_error(ty: u8) -> bool {
    matches!(ty, 1..=4)
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Validates that the 8-byte header fits.
    ///
    /// # Errors
    /// [`crate::ParseErrorKind::Truncated`] for a short buffer.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let n = buffer.as_ref().len();
        if n < HEADER_LEN {
            return Err(ParseError::truncated(Layer::Icmpv6, 0, HEADER_LEN, n));
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

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    /// MTU of a packet-too-big message.
    pub fn mtu(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }

    /// Bytes after the 8-byte header (for errors, the quoted packet).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// The checksum this message should carry between `src` and `dst`.
    pub fn compute_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        let b = self.buffer.as_ref();
        let acc = checksum::pseudo_v6(src, dst, super::proto::ICMPV6, b.len() as u32);
        let acc = checksum::add(acc, &b[..2]);
        checksum::finish(checksum::add(acc, &b[4..]))
    }

    /// Whether the checksum verifies with the pseudo-header of `src` and `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let acc = checksum::pseudo_v6(src, dst, super::proto::ICMPV6, b.len() as u32);
        checksum::finish(checksum::add(acc, b)) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets type and code.
    pub fn set_type_code(&mut self, ty: u8, code: u8) {
        let b = self.buffer.as_mut();
        b[0] = ty;
        b[1] = code;
    }

    /// Sets the 4-byte message body after the checksum (the MTU of packet-too-big).
    pub fn set_mtu(&mut self, v: u32) {
        put32(self.buffer.as_mut(), 4, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 2, v);
    }

    /// Recomputes the checksum with the pseudo-header of `src` and `dst`.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let c = self.compute_checksum(src, dst);
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_with_pseudo_header() {
        let s: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut b = [128u8, 0, 0, 0, 0, 7, 0, 1, 1, 2, 3];
        let mut p = Icmpv6Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum(s, d);
        assert!(p.verify_checksum(s, d));
        assert!(!p.verify_checksum(d, "2001:db8::3".parse().unwrap()));
        assert!(is_error(types::PACKET_TOO_BIG));
        assert!(!is_error(types::ECHO_REQUEST));
    }
}
