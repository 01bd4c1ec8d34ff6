//! Typed errors: what failed, in which header, at which byte offset.

use core::fmt;

/// The header a parse error was found in.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Layer {
    /// Ethernet II header, with its optional 802.1Q tag.
    Ethernet,
    /// IPv4 header and options.
    Ipv4,
    /// IPv6 fixed header.
    Ipv6,
    /// An IPv6 extension header.
    Ipv6Extension,
    /// TCP header.
    Tcp,
    /// UDP header.
    Udp,
    /// SCTP common header.
    Sctp,
    /// ICMPv4 message.
    Icmpv4,
    /// ICMPv6 message.
    Icmpv6,
    /// GRE header.
    Gre,
    /// GUE header.
    Gue,
    /// The IP header quoted inside an ICMP error.
    QuotedIp,
    /// The transport header quoted inside an ICMP error.
    QuotedTransport,
}

/// What was wrong with the bytes.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ParseErrorKind {
    /// The header or the length it declares runs past the end of the buffer.
    Truncated {
        /// Bytes needed from the header's offset.
        needed: usize,
        /// Bytes available from the header's offset.
        available: usize,
    },
    /// The IP version nibble is not the one expected.
    BadVersion(u8),
    /// A header-length field is below the minimum (IPv4 IHL < 5, TCP data offset < 5,
    /// UDP length < 8, ...).
    BadHeaderLength(usize),
    /// A length field disagrees with another length (IPv4 total length below its header,
    /// UDP length beyond the IP payload, IPv6 jumbogram).
    BadLength(usize),
    /// The IPv6 extension-header chain is longer than [`crate::wire::MAX_IPV6_EXTENSIONS`], or
    /// hop-by-hop options are not first.
    BadExtensionChain,
    /// An IPv4 option whose length is below 2 or runs past the header, as Linux's
    /// `ip_options_compile` refuses on receive; the value is the option's type.
    BadOption(u8),
    /// A checksum that must be verified before rewriting does not verify.
    BadChecksum,
    /// A zero UDP checksum over IPv6, which RFC 8200 section 8.1 forbids.
    ZeroUdpChecksumV6,
    /// A field holds a value this crate does not handle (GRE version, GUE variant,
    /// GRE routing, an unknown EtherType).
    Unsupported(u32),
}

/// A packet failed validation. Nothing was modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ParseError {
    /// The header the problem is in.
    pub layer: Layer,
    /// Offset of that header from the start of the buffer handed in.
    pub offset: usize,
    /// The problem.
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) const fn new(layer: Layer, offset: usize, kind: ParseErrorKind) -> Self {
        Self {
            layer,
            offset,
            kind,
        }
    }

    pub(crate) const fn truncated(
        layer: Layer,
        offset: usize,
        needed: usize,
        available: usize,
    ) -> Self {
        Self::new(
            layer,
            offset,
            ParseErrorKind::Truncated { needed, available },
        )
    }

    /// The same error for a header found `by` bytes further into an enclosing buffer.
    #[must_use]
    pub const fn shifted(mut self, by: usize) -> Self {
        self.offset += by;
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} header at byte {}: ", self.layer, self.offset)?;
        match self.kind {
            ParseErrorKind::Truncated { needed, available } => {
                write!(f, "truncated: needs {needed} bytes, {available} available")
            }
            ParseErrorKind::BadVersion(v) => write!(f, "unexpected IP version {v}"),
            ParseErrorKind::BadHeaderLength(l) => write!(f, "header length {l} below the minimum"),
            ParseErrorKind::BadLength(l) => write!(f, "inconsistent length field {l}"),
            ParseErrorKind::BadExtensionChain => {
                f.write_str("IPv6 extension-header chain too long or misordered")
            }
            ParseErrorKind::BadOption(t) => write!(f, "malformed IPv4 option of type {t}"),
            ParseErrorKind::BadChecksum => f.write_str("checksum does not verify"),
            ParseErrorKind::ZeroUdpChecksumV6 => f.write_str("zero UDP checksum over IPv6"),
            ParseErrorKind::Unsupported(v) => write!(f, "unsupported value {v:#x}"),
        }
    }
}

impl core::error::Error for ParseError {}

/// A rewrite was refused. The buffer is byte-for-byte as it was before the call.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum RewriteError {
    /// The packet is malformed or truncated.
    Parse(ParseError),
    /// The new address is of the other family than the packet (NAT cannot change family).
    FamilyMismatch,
    /// The packet's protocol cannot be rewritten this way (for example NAT of ESP, or an
    /// ICMP message that is not an error where an error is required).
    UnsupportedProtocol(u8),
    /// A port rewrite of an SCTP first fragment: its CRC32c covers the whole datagram,
    /// which this fragment does not hold.
    SctpFragment,
    /// Not enough headroom in front of the packet to prepend a header.
    InsufficientHeadroom {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The result would exceed the largest IP packet (65535 bytes of IPv4 total length or
    /// IPv6 payload length).
    TooLong(usize),
    /// The output buffer handed in is too small for the generated packet.
    OutputTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The packet does not carry the expected encapsulation.
    NotEncapsulated,
    /// The TTL or hop limit is already 1 or 0: the packet must not be forwarded.
    TtlExpired,
}

impl From<ParseError> for RewriteError {
    fn from(e: ParseError) -> Self {
        Self::Parse(e)
    }
}

impl fmt::Display for RewriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "malformed packet: {e}"),
            Self::FamilyMismatch => {
                f.write_str("address family of the rewrite differs from the packet's")
            }
            Self::UnsupportedProtocol(p) => {
                write!(f, "IP protocol {p} cannot be rewritten this way")
            }
            Self::SctpFragment => f.write_str("cannot change ports of a fragmented SCTP packet"),
            Self::InsufficientHeadroom { needed, available } => {
                write!(f, "needs {needed} bytes of headroom, {available} available")
            }
            Self::TooLong(l) => write!(f, "result of {l} bytes exceeds the IP length limit"),
            Self::OutputTooSmall { needed, available } => {
                write!(f, "output needs {needed} bytes, {available} available")
            }
            Self::NotEncapsulated => {
                f.write_str("packet does not carry the expected encapsulation")
            }
            Self::TtlExpired => f.write_str("TTL or hop limit exhausted"),
        }
    }
}

impl core::error::Error for RewriteError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Parse(e) => Some(e),
            _ => None,
        }
    }
}
