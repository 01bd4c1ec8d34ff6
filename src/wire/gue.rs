//! GUE headers (draft-ietf-intarea-gue, variant 0, as Linux's `fou` module and IPVS use it).
//!
//! Layout of the first four bytes: `ver:2 C:1 hlen:5 | proto/ctype | flags:16`, followed
//! by `hlen * 4` bytes of options. Linux defines one flag, `GUE_FLAG_PRIV` (0x0001), which
//! announces a 4-byte private-flags word; of those, `GUE_PFLAG_REMCSUM` (0x8000_0000)
//! announces a 4-byte remote-checksum-offload option.

use super::{be16, be32, put16};
use crate::error::{Layer, ParseError, ParseErrorKind};

/// Length of the base GUE header.
pub const HEADER_LEN: usize = 4;
/// The private-flags flag.
pub const FLAG_PRIV: u16 = 0x0001;
/// The remote-checksum-offload private flag.
pub const PFLAG_REMCSUM: u32 = 0x8000_0000;

/// A view of a GUE header and its options. After [`GuePacket::new_checked`] the version is
/// 0, the control bit is clear, and the options the flags announce add up to `hlen` and lie
/// within the buffer.
#[derive(Debug, Clone)]
pub struct GuePacket<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GuePacket<T> {
    /// Validates the header as Linux's `validate_gue_flags` does.
    ///
    /// # Errors
    /// A [`ParseError`] for a short buffer, another variant or a control message, unknown
    /// flags, or options that disagree with `hlen`.
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(ParseError::truncated(Layer::Gue, 0, HEADER_LEN, b.len()));
        }
        let version = b[0] >> 6;
        if version != 0 || b[0] & 0x20 != 0 {
            return Err(ParseError::new(
                Layer::Gue,
                0,
                ParseErrorKind::Unsupported(u32::from(b[0] & 0xe0)),
            ));
        }
        let hl = HEADER_LEN + usize::from(b[0] & 0x1f) * 4;
        if hl > b.len() {
            return Err(ParseError::truncated(Layer::Gue, 0, hl, b.len()));
        }
        let flags = be16(b, 2);
        if flags & !FLAG_PRIV != 0 {
            return Err(ParseError::new(
                Layer::Gue,
                2,
                ParseErrorKind::Unsupported(u32::from(flags)),
            ));
        }
        let mut optlen = 0;
        if flags & FLAG_PRIV != 0 {
            optlen = 4;
            if hl < HEADER_LEN + 4 {
                return Err(ParseError::new(
                    Layer::Gue,
                    0,
                    ParseErrorKind::BadHeaderLength(hl),
                ));
            }
            let pflags = be32(b, 4);
            if pflags & !PFLAG_REMCSUM != 0 {
                return Err(ParseError::new(
                    Layer::Gue,
                    4,
                    ParseErrorKind::Unsupported(pflags),
                ));
            }
            if pflags & PFLAG_REMCSUM != 0 {
                optlen += 4;
            }
        }
        if HEADER_LEN + optlen != hl {
            return Err(ParseError::new(
                Layer::Gue,
                0,
                ParseErrorKind::BadHeaderLength(hl),
            ));
        }
        Ok(Self { buffer })
    }

    /// Header length including options.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + usize::from(self.buffer.as_ref()[0] & 0x1f) * 4
    }

    /// Protocol of the payload (4 for IPv4, 41 for IPv6).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[1]
    }

    /// Flags field.
    pub fn flags(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }

    /// Private flags, if present.
    pub fn private_flags(&self) -> Option<u32> {
        (self.flags() & FLAG_PRIV != 0).then(|| be32(self.buffer.as_ref(), 4))
    }

    /// The remote-checksum-offload option (`csum_start`, `csum_offset`), if present.
    pub fn remcsum(&self) -> Option<(u16, u16)> {
        let p = self.private_flags()?;
        (p & PFLAG_REMCSUM != 0).then(|| {
            (
                be16(self.buffer.as_ref(), 8),
                be16(self.buffer.as_ref(), 10),
            )
        })
    }

    /// The payload after header and options.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

/// Writes a 4-byte GUE header with no options.
#[inline]
pub(crate) fn emit_header(out: &mut [u8], protocol: u8) {
    out[0] = 0;
    out[1] = protocol;
    put16(out, 2, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_must_match_hlen() {
        let mut b = [0u8; 12];
        emit_header(&mut b, 4);
        assert_eq!(GuePacket::new_checked(&b[..]).unwrap().header_len(), 4);
        b[0] = 2; // hlen 2 words
        b[3] = 1; // PRIV
        b[4] = 0x80; // REMCSUM
        b[8..10].copy_from_slice(&20u16.to_be_bytes());
        let g = GuePacket::new_checked(&b[..]).unwrap();
        assert_eq!(g.header_len(), 12);
        assert_eq!(g.remcsum(), Some((20, 0)));
        b[0] = 1;
        assert!(
            GuePacket::new_checked(&b[..]).is_err(),
            "hlen disagrees with options"
        );
        b[0] = 0x40;
        assert!(GuePacket::new_checked(&b[..]).is_err(), "variant 1");
        assert!(GuePacket::new_checked(&b[..3]).is_err());
    }
}
