//! IPv4 headers, options included.

use super::{be16, put16};
use crate::checksum;
use crate::error::{Layer, ParseError, ParseErrorKind};
use core::net::Ipv4Addr;

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Don't-fragment flag in the flags/offset word.
pub const FLAG_DF: u16 = 0x4000;
/// More-fragments flag in the flags/offset word.
pub const FLAG_MF: u16 = 0x2000;
/// Fragment offset mask (in 8-byte units) of the flags/offset word.
pub const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet. After [`Ipv4Packet::new_checked`], the header lies within the
/// buffer and the total length is at least the header length and at most the buffer
/// length (trailing bytes, such as Ethernet padding, are not payload).
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Validates version, IHL and total length against the buffer.
    ///
    /// # Errors
    /// A [`ParseError`] naming the failed check, at offset 0.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        Self::check_header(b)?;
        let total = usize::from(be16(b, 2));
        if total > b.len() {
            return Err(ParseError::truncated(Layer::Ipv4, 0, total, b.len()));
        }
        Ok(Self { buffer })
    }

    /// Validates only the header (for an IPv4 header quoted in an ICMP error, whose total
    /// length describes a packet that was cut short).
    ///
    /// # Errors
    /// A [`ParseError`] naming the failed check.
    pub fn new_checked_header(buffer: T) -> Result<Self, ParseError> {
        Self::check_header(buffer.as_ref())?;
        Ok(Self { buffer })
    }

    fn check_header(b: &[u8]) -> Result<(), ParseError> {
        if b.len() < MIN_HEADER_LEN {
            return Err(ParseError::truncated(
                Layer::Ipv4,
                0,
                MIN_HEADER_LEN,
                b.len(),
            ));
        }
        let version = b[0] >> 4;
        if version != 4 {
            return Err(ParseError::new(
                Layer::Ipv4,
                0,
                ParseErrorKind::BadVersion(version),
            ));
        }
        let hl = usize::from(b[0] & 0x0f) * 4;
        if hl < MIN_HEADER_LEN {
            return Err(ParseError::new(
                Layer::Ipv4,
                0,
                ParseErrorKind::BadHeaderLength(hl),
            ));
        }
        if hl > b.len() {
            return Err(ParseError::truncated(Layer::Ipv4, 0, hl, b.len()));
        }
        let total = usize::from(be16(b, 2));
        if total < hl {
            return Err(ParseError::new(
                Layer::Ipv4,
                2,
                ParseErrorKind::BadLength(total),
            ));
        }
        Ok(())
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[0] & 0x0f) * 4
    }

    /// The DSCP and ECN byte (formerly TOS).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// Total length field.
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    /// Identification field.
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    /// The flags and fragment offset word.
    pub fn flags_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[8]
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[9]
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 10)
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }

    /// The options bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// Checks the option list as Linux's `ip_options_compile` does on receive: END stops
    /// the list, NOP is one byte, any other option has a length of at least 2 that stays
    /// inside the header, and record-route, source-route and timestamp pointers are not
    /// below their minimum.
    ///
    /// # Errors
    /// [`ParseErrorKind::BadOption`] at the offending option's offset.
    pub fn check_options(&self) -> Result<(), ParseError> {
        let opts = self.options();
        let mut i = 0;
        while i < opts.len() {
            let ty = opts[i];
            match ty {
                0 => break,
                1 => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            let bad = || {
                ParseError::new(
                    Layer::Ipv4,
                    MIN_HEADER_LEN + i,
                    ParseErrorKind::BadOption(ty),
                )
            };
            let len = usize::from(*opts.get(i + 1).ok_or_else(bad)?);
            if len < 2 || len > opts.len() - i {
                return Err(bad());
            }
            let ptr = opts.get(i + 2).copied();
            let ok = match ty {
                // Record route, loose and strict source route: pointer at least 4.
                7 | 131 | 137 => len >= 3 && ptr.is_some_and(|p| p >= 4),
                // Timestamp: pointer at least 5.
                68 => len >= 4 && ptr.is_some_and(|p| p >= 5),
                _ => true,
            };
            if !ok {
                return Err(bad());
            }
            i += len;
        }
        Ok(())
    }

    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }

    /// The payload, up to the total length (or to the end of the buffer for a header
    /// checked with [`Ipv4Packet::new_checked_header`]).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(b.len());
        &b[self.header_len()..end]
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the TOS byte.
    pub fn set_tos(&mut self, v: u8) {
        self.buffer.as_mut()[1] = v;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 2, v);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 4, v);
    }

    /// Sets the flags and fragment offset word.
    pub fn set_flags_offset(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 6, v);
    }

    /// Sets the TTL.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[8] = v;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[9] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 10, v);
    }

    /// Sets the source address (checksum not updated).
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[12..16].copy_from_slice(&a.octets());
    }

    /// Sets the destination address (checksum not updated).
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[16..20].copy_from_slice(&a.octets());
    }

    /// Recomputes the header checksum in full.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }
}

/// Writes a 20-byte IPv4 header without options into `out[..20]` with its checksum.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn emit_header(
    out: &mut [u8],
    tos: u8,
    total_len: u16,
    ident: u16,
    flags_offset: u16,
    ttl: u8,
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) {
    out[..MIN_HEADER_LEN].copy_from_slice(&header(
        tos,
        total_len,
        ident,
        flags_offset,
        ttl,
        protocol,
        src,
        dst,
    ));
}

/// A 20-byte IPv4 header without options, checksum included, computed from the field
/// values as five 32-bit words rather than read back from memory.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
#[must_use]
pub(crate) fn header(
    tos: u8,
    total_len: u16,
    ident: u16,
    flags_offset: u16,
    ttl: u8,
    protocol: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> [u8; MIN_HEADER_LEN] {
    let w0 = 0x4500_0000 | (u32::from(tos) << 16) | u32::from(total_len);
    let w1 = (u32::from(ident) << 16) | u32::from(flags_offset);
    let w2 = (u32::from(ttl) << 24) | (u32::from(protocol) << 16);
    let (s, d) = (src.to_bits(), dst.to_bits());
    let sum = u64::from(w0) + u64::from(w1) + u64::from(w2) + u64::from(s) + u64::from(d);
    let w2 = w2 | u32::from(checksum::finish(sum));
    let mut h = [0u8; MIN_HEADER_LEN];
    for (chunk, w) in h.as_chunks_mut::<4>().0.iter_mut().zip([w0, w1, w2, s, d]) {
        *chunk = w.to_be_bytes();
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> [u8; 24] {
        let mut h = [0u8; 24];
        emit_header(
            &mut h,
            0,
            24,
            7,
            FLAG_DF,
            64,
            17,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        );
        h
    }

    #[test]
    fn accessors_and_checksum() {
        let h = header();
        let p = Ipv4Packet::new_checked(&h[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.total_len(), 24);
        assert!(p.dont_frag());
        assert_eq!(p.payload().len(), 4);
        assert_eq!(p.src(), Ipv4Addr::new(10, 0, 0, 1));
    }

    #[test]
    fn options_as_the_kernel_checks_them() {
        let with = |opts: &[u8]| {
            let hl = 20 + opts.len();
            let mut h = vec![0u8; hl];
            emit_header(
                &mut h,
                0,
                hl as u16,
                7,
                0,
                64,
                17,
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2),
            );
            h[0] = 0x40 | (hl / 4) as u8;
            h[20..].copy_from_slice(opts);
            Ipv4Packet::new_checked(h)
                .unwrap()
                .check_options()
                .map_err(|e| (e.offset, e.kind))
        };
        assert_eq!(with(&[1, 1, 1, 0]), Ok(()));
        assert_eq!(
            with(&[0x82, 2, 0, 0, 0, 0, 0, 0, 0x78, 0x78, 0x78, 0]),
            Ok(()),
            "END ends the list"
        );
        assert_eq!(with(&[7, 7, 4, 0, 0, 0, 0, 0]), Ok(()));
        assert_eq!(
            with(&[0x82, 1, 0, 0]),
            Err((20, ParseErrorKind::BadOption(0x82)))
        );
        assert_eq!(
            with(&[1, 1, 0x44, 9]),
            Err((22, ParseErrorKind::BadOption(0x44)))
        );
        assert_eq!(
            with(&[1, 1, 1, 0x83]),
            Err((23, ParseErrorKind::BadOption(0x83)))
        );
        assert_eq!(
            with(&[7, 7, 3, 0, 0, 0, 0, 0]),
            Err((20, ParseErrorKind::BadOption(7)))
        );
    }

    #[test]
    fn rejects_bad_headers() {
        let mut h = header();
        h[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&h[..]).unwrap_err().kind,
            ParseErrorKind::BadHeaderLength(16)
        );
        let mut h = header();
        h[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&h[..]).unwrap_err().kind,
            ParseErrorKind::BadVersion(6)
        );
        let mut h = header();
        h[3] = 200;
        assert!(matches!(
            Ipv4Packet::new_checked(&h[..]).unwrap_err().kind,
            ParseErrorKind::Truncated { .. }
        ));
        let mut h = header();
        h[3] = 10;
        assert_eq!(
            Ipv4Packet::new_checked(&h[..]).unwrap_err().kind,
            ParseErrorKind::BadLength(10)
        );
        let mut h = header();
        h[0] = 0x4f;
        assert!(Ipv4Packet::new_checked(&h[..]).is_err());
    }
}
