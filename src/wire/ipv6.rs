//! IPv6 fixed headers and the extension-header chain (hop-by-hop, routing, destination
//! options, fragment), walked to a bounded depth.

use super::{be16, be32, proto, put16};
use crate::error::{Layer, ParseError, ParseErrorKind};
use core::net::Ipv6Addr;

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;
/// Longest extension-header chain accepted; longer chains are refused, as an attacker
/// could otherwise make every packet cost a long walk.
pub const MAX_IPV6_EXTENSIONS: usize = 8;

/// A view of an IPv6 packet. After [`Ipv6Packet::new_checked`], the fixed header and the
/// payload length it declares lie within the buffer.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Validates the version and that the declared payload fits.
    ///
    /// # Errors
    /// A [`ParseError`] naming the failed check. A payload length of zero (a jumbogram, or
    /// nothing at all behind a header that says it carries something) is
    /// [`ParseErrorKind::BadLength`] unless the next header is "no next header".
    pub fn new_checked(buffer: T) -> Result<Self, ParseError> {
        let b = buffer.as_ref();
        Self::check_header(b)?;
        let total = HEADER_LEN + usize::from(be16(b, 4));
        if total > b.len() {
            return Err(ParseError::truncated(Layer::Ipv6, 0, total, b.len()));
        }
        if be16(b, 4) == 0 && b[6] != proto::IPV6_NONXT {
            return Err(ParseError::new(
                Layer::Ipv6,
                4,
                ParseErrorKind::BadLength(0),
            ));
        }
        Ok(Self { buffer })
    }

    /// Validates only the fixed header (for a header quoted in an ICMPv6 error).
    ///
    /// # Errors
    /// A [`ParseError`] naming the failed check.
    pub fn new_checked_header(buffer: T) -> Result<Self, ParseError> {
        Self::check_header(buffer.as_ref())?;
        Ok(Self { buffer })
    }

    fn check_header(b: &[u8]) -> Result<(), ParseError> {
        if b.len() < HEADER_LEN {
            return Err(ParseError::truncated(Layer::Ipv6, 0, HEADER_LEN, b.len()));
        }
        let version = b[0] >> 4;
        if version != 6 {
            return Err(ParseError::new(
                Layer::Ipv6,
                0,
                ParseErrorKind::BadVersion(version),
            ));
        }
        Ok(())
    }

    /// Traffic class.
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }

    /// Flow label.
    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), 0) & 0x000f_ffff
    }

    /// Payload length field.
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }

    /// Next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[6]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[7]
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), 8)
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), 24)
    }

    /// Bytes after the fixed header, up to the payload length (or the buffer's end for a
    /// header checked with [`Ipv6Packet::new_checked_header`]).
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = (HEADER_LEN + usize::from(self.payload_len())).min(b.len());
        &b[HEADER_LEN..end]
    }

    /// Walks the extension headers behind the fixed header.
    ///
    /// # Errors
    /// As [`ExtensionChain::walk`].
    pub fn extensions(&self) -> Result<ExtensionChain, ParseError> {
        ExtensionChain::walk(self.payload(), self.next_header()).map_err(|e| e.shifted(HEADER_LEN))
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the payload length.
    pub fn set_payload_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), 4, v);
    }

    /// Sets the next header of the fixed header.
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[6] = v;
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[7] = v;
    }

    /// Sets the source address.
    pub fn set_src(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[8..24].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[24..40].copy_from_slice(&a.octets());
    }
}

pub(crate) fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(a)
}

/// Writes a 40-byte IPv6 header into `out[..40]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit_header(
    out: &mut [u8],
    traffic_class: u8,
    flow_label: u32,
    payload_len: u16,
    next_header: u8,
    hop_limit: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) {
    let w = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
    out[0..4].copy_from_slice(&w.to_be_bytes());
    put16(out, 4, payload_len);
    out[6] = next_header;
    out[7] = hop_limit;
    out[8..24].copy_from_slice(&src.octets());
    out[24..40].copy_from_slice(&dst.octets());
}

/// The fragment extension header's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ipv6FragmentHeader {
    /// Offset of this fragment header from the start of the walked bytes.
    pub offset: usize,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
    /// More-fragments flag.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// The result of walking an extension-header chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtensionChain {
    /// The upper-layer protocol the chain ends in (or a header this crate does not walk
    /// through, such as AH, ESP or "no next header").
    pub protocol: u8,
    /// Length of the extension headers, i.e. the offset of the upper-layer header.
    pub len: usize,
    /// Number of extension headers walked.
    pub count: usize,
    /// The fragment header, if present.
    pub fragment: Option<Ipv6FragmentHeader>,
}

impl ExtensionChain {
    /// Walks extension headers in `b` (the bytes behind the fixed header) starting with
    /// `next`.
    ///
    /// The walk stops at a non-first fragment (its next header describes bytes that are
    /// not in this packet).
    ///
    /// # Errors
    /// [`ParseErrorKind::Truncated`] if a header runs past `b`;
    /// [`ParseErrorKind::BadExtensionChain`] if hop-by-hop is not first or the chain is
    /// longer than [`MAX_IPV6_EXTENSIONS`].
    pub fn walk(b: &[u8], mut next: u8) -> Result<Self, ParseError> {
        let mut off = 0usize;
        let mut count = 0usize;
        let mut fragment = None;
        loop {
            match next {
                proto::HOPOPT | proto::IPV6_ROUTE | proto::IPV6_OPTS => {
                    if next == proto::HOPOPT && count != 0 {
                        return Err(ParseError::new(
                            Layer::Ipv6Extension,
                            off,
                            ParseErrorKind::BadExtensionChain,
                        ));
                    }
                    if b.len() < off + 2 {
                        return Err(ParseError::truncated(
                            Layer::Ipv6Extension,
                            off,
                            2,
                            b.len() - off,
                        ));
                    }
                    let len = (usize::from(b[off + 1]) + 1) * 8;
                    if b.len() < off + len {
                        return Err(ParseError::truncated(
                            Layer::Ipv6Extension,
                            off,
                            len,
                            b.len() - off,
                        ));
                    }
                    next = b[off];
                    off += len;
                }
                proto::IPV6_FRAG => {
                    if b.len() < off + 8 {
                        return Err(ParseError::truncated(
                            Layer::Ipv6Extension,
                            off,
                            8,
                            b.len() - off,
                        ));
                    }
                    if fragment.is_some() {
                        return Err(ParseError::new(
                            Layer::Ipv6Extension,
                            off,
                            ParseErrorKind::BadExtensionChain,
                        ));
                    }
                    let word = be16(b, off + 2);
                    let frag = Ipv6FragmentHeader {
                        offset: off,
                        frag_offset: word & 0xfff8,
                        more: word & 1 != 0,
                        ident: be32(b, off + 4),
                    };
                    fragment = Some(frag);
                    next = b[off];
                    off += 8;
                    if frag.frag_offset != 0 {
                        count += 1;
                        break;
                    }
                }
                _ => break,
            }
            count += 1;
            if count > MAX_IPV6_EXTENSIONS {
                return Err(ParseError::new(
                    Layer::Ipv6Extension,
                    off,
                    ParseErrorKind::BadExtensionChain,
                ));
            }
        }
        Ok(Self {
            protocol: next,
            len: off,
            count,
            fragment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_chain_with_fragment() {
        // hop-by-hop (8) -> dest opts (16) -> fragment (8) -> UDP
        let mut b = vec![0u8; 32 + 8];
        b[0] = proto::IPV6_OPTS;
        b[1] = 0;
        b[8] = proto::IPV6_FRAG;
        b[9] = 1;
        b[24] = proto::UDP;
        b[26..28].copy_from_slice(&1u16.to_be_bytes()); // offset 0, M=1
        b[28..32].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        let c = ExtensionChain::walk(&b, proto::HOPOPT).unwrap();
        assert_eq!(c.protocol, proto::UDP);
        assert_eq!(c.len, 32);
        assert_eq!(c.count, 3);
        let f = c.fragment.unwrap();
        assert!(f.more);
        assert_eq!(f.ident, 0xdead_beef);
        assert_eq!(f.frag_offset, 0);
    }

    #[test]
    fn refuses_long_or_misordered_chains() {
        let mut b = vec![0u8; 8 * 12];
        for i in 0..12 {
            b[i * 8] = proto::IPV6_OPTS;
        }
        let e = ExtensionChain::walk(&b, proto::IPV6_OPTS).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::BadExtensionChain);
        let mut b = vec![0u8; 16];
        b[0] = proto::HOPOPT;
        let e = ExtensionChain::walk(&b, proto::IPV6_OPTS).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::BadExtensionChain);
        let b = [proto::UDP, 3, 0, 0];
        assert!(matches!(
            ExtensionChain::walk(&b, proto::IPV6_ROUTE)
                .unwrap_err()
                .kind,
            ParseErrorKind::Truncated { .. }
        ));
    }
}
