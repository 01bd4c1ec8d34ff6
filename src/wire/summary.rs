//! One pass over a packet that tells the engine everything it routes on: family,
//! addresses, protocol, ports, fragment state, and for ICMP errors the quoted packet.

use super::{
    EtherType, EthernetFrame, Ipv4Packet, Ipv6Packet, be16, icmpv4, icmpv6, ipv4, ipv6, proto,
};
use crate::error::{Layer, ParseError, ParseErrorKind};
use core::net::IpAddr;

/// IP version.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    #[must_use]
    pub const fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }
}

/// Transport ports (TCP, UDP, SCTP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ports {
    /// Source port.
    pub src: u16,
    /// Destination port.
    pub dst: u16,
}

/// Where a packet stands in fragmentation.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Fragment {
    /// A whole datagram.
    Unfragmented,
    /// Offset 0 with more to come: carries the transport header.
    First {
        /// IPv4 identification or IPv6 fragment identification.
        ident: u32,
    },
    /// Offset above 0: no transport header, so no ports.
    NonFirst {
        /// IPv4 identification or IPv6 fragment identification.
        ident: u32,
        /// Offset in bytes.
        offset: u16,
    },
}

impl Fragment {
    /// Whether the transport header is in this packet.
    #[must_use]
    pub const fn has_transport_header(self) -> bool {
        !matches!(self, Self::NonFirst { .. })
    }
}

/// The ICMP part of a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct IcmpSummary {
    /// Message type.
    pub msg_type: u8,
    /// Message code.
    pub code: u8,
    /// Echo identifier, for echo requests and replies.
    pub echo_ident: Option<u16>,
}

/// The packet quoted inside an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Quoted {
    /// Source address of the quoted packet.
    pub src: IpAddr,
    /// Destination address of the quoted packet.
    pub dst: IpAddr,
    /// Transport protocol of the quoted packet.
    pub protocol: u8,
    /// Offset of the quoted IP header in the parsed buffer.
    pub l3_offset: usize,
    /// Offset of the quoted transport header in the parsed buffer.
    pub l4_offset: usize,
    /// Bytes of the quoted transport header and payload present in the quote.
    pub l4_len: usize,
    /// Quoted ports (TCP, UDP, SCTP), absent for a quoted non-first fragment.
    pub ports: Option<Ports>,
    /// Quoted echo identifier, for a quoted ICMP echo.
    pub echo_ident: Option<u16>,
    /// Fragment state of the quoted packet.
    pub fragment: Fragment,
}

/// A validated summary of one IP packet.
///
/// Offsets are from the start of the buffer handed to the parser, so a summary made by
/// [`PacketSummary::parse_ethernet`] points into the whole frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PacketSummary {
    /// IP version.
    pub family: Family,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// Offset of the IP header.
    pub l3_offset: usize,
    /// Length of the IP packet (IPv4 total length, or 40 + IPv6 payload length); bytes
    /// after it, such as Ethernet padding, are not part of the packet.
    pub l3_len: usize,
    /// Offset of the transport header (for a non-first fragment: of the fragment data).
    pub l4_offset: usize,
    /// TTL or hop limit.
    pub ttl: u8,
    /// IPv4 TOS or IPv6 traffic class.
    pub tos: u8,
    /// IPv4 don't-fragment flag (always false for IPv6, which routers never fragment).
    pub dont_frag: bool,
    /// Fragment state.
    pub fragment: Fragment,
    /// Ports, for TCP, UDP and SCTP packets that carry the transport header.
    pub ports: Option<Ports>,
    /// TCP flags, for TCP packets that carry the header.
    pub tcp_flags: Option<u8>,
    /// The ICMP header, for ICMP and ICMPv6 packets.
    pub icmp: Option<IcmpSummary>,
    /// The quoted packet, for ICMP errors.
    pub quoted: Option<Quoted>,
}

impl PacketSummary {
    /// Parses an IP packet starting at byte 0 of `packet`.
    ///
    /// # Errors
    /// A [`ParseError`] for anything malformed or truncated: bad version or lengths, a
    /// bad IPv4 header checksum, an extension chain that is too long, a transport header
    /// that does not fit, an ICMP error whose quote is shorter than its IP header plus
    /// 8 bytes.
    pub fn parse(packet: &[u8]) -> Result<Self, ParseError> {
        Self::parse_at(packet, 0)
    }

    /// Parses an Ethernet II frame (one optional 802.1Q tag) carrying IPv4 or IPv6.
    ///
    /// # Errors
    /// As [`PacketSummary::parse`], plus [`ParseErrorKind::Unsupported`] for another
    /// EtherType.
    pub fn parse_ethernet(frame: &[u8]) -> Result<Self, ParseError> {
        let eth = EthernetFrame::new_checked(frame)?;
        match eth.ethertype() {
            EtherType::IPV4 | EtherType::IPV6 => Self::parse_at(frame, eth.header_len()),
            t => Err(ParseError::new(
                Layer::Ethernet,
                eth.header_len() - 2,
                ParseErrorKind::Unsupported(u32::from(t)),
            )),
        }
    }

    /// Parses an IP packet that starts `l3_offset` bytes into `buf`.
    ///
    /// # Errors
    /// As [`PacketSummary::parse`]; error offsets are from the start of `buf`.
    pub fn parse_at(buf: &[u8], l3_offset: usize) -> Result<Self, ParseError> {
        let Some(l3) = buf.get(l3_offset..) else {
            return Err(ParseError::truncated(Layer::Ipv4, l3_offset, 1, 0));
        };
        // The common packet in one lean pass; anything uncommon (or malformed) takes the
        // full parse below, which gives the same summary or the typed error.
        if let Some(l) = super::lean::parse(l3) {
            return Ok(l.summary(l3).shifted(l3_offset));
        }
        Self::parse_full(l3)
            .map(|s| s.shifted(l3_offset))
            .map_err(|e| e.shifted(l3_offset))
    }

    /// The full parse of an IP packet at byte 0 of `l3`, without the lean shortcut.
    pub(crate) fn parse_full(l3: &[u8]) -> Result<Self, ParseError> {
        let first = l3.first().copied().unwrap_or(0);
        match first >> 4 {
            4 => parse_v4(l3),
            6 => parse_v6(l3),
            v if l3.is_empty() => Err(ParseError::truncated(Layer::Ipv4, 0, 1, usize::from(v))),
            v => Err(ParseError::new(
                Layer::Ipv4,
                0,
                ParseErrorKind::BadVersion(v),
            )),
        }
    }

    fn shifted(mut self, by: usize) -> Self {
        self.l3_offset += by;
        self.l4_offset += by;
        if let Some(q) = &mut self.quoted {
            q.l3_offset += by;
            q.l4_offset += by;
        }
        self
    }

    /// The L3 packet bytes of `buf` this summary describes.
    #[must_use]
    pub fn l3<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.l3_offset..self.l3_offset + self.l3_len]
    }

    /// Length of the transport header and payload in this packet.
    #[must_use]
    pub const fn l4_len(&self) -> usize {
        self.l3_offset + self.l3_len - self.l4_offset
    }
}

/// The fragment state an IPv4 header declares.
fn v4_fragment<T: AsRef<[u8]>>(ip: &Ipv4Packet<T>) -> Fragment {
    let (fo, ident) = (ip.frag_offset(), u32::from(ip.ident()));
    if fo != 0 {
        Fragment::NonFirst { ident, offset: fo }
    } else if ip.more_frags() {
        Fragment::First { ident }
    } else {
        Fragment::Unfragmented
    }
}

fn parse_v4(b: &[u8]) -> Result<PacketSummary, ParseError> {
    let ip = Ipv4Packet::new_checked(b)?;
    if !ip.verify_checksum() {
        return Err(ParseError::new(
            Layer::Ipv4,
            10,
            ParseErrorKind::BadChecksum,
        ));
    }
    let hl = ip.header_len();
    if hl > ipv4::MIN_HEADER_LEN {
        ip.check_options()?;
    }
    let total = usize::from(ip.total_len());
    let fragment = v4_fragment(&ip);
    let mut s = PacketSummary {
        family: Family::V4,
        src: ip.src().into(),
        dst: ip.dst().into(),
        protocol: ip.protocol(),
        l3_offset: 0,
        l3_len: total,
        l4_offset: hl,
        ttl: ip.ttl(),
        tos: ip.tos(),
        dont_frag: ip.dont_frag(),
        fragment,
        ports: None,
        tcp_flags: None,
        icmp: None,
        quoted: None,
    };
    transport(&mut s, &b[..total])?;
    Ok(s)
}

fn parse_v6(b: &[u8]) -> Result<PacketSummary, ParseError> {
    let ip = Ipv6Packet::new_checked(b)?;
    let total = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    let chain = ip.extensions()?;
    let fragment = match chain.fragment {
        None => Fragment::Unfragmented,
        Some(f) if f.frag_offset != 0 => Fragment::NonFirst {
            ident: f.ident,
            offset: f.frag_offset,
        },
        Some(f) if f.more => Fragment::First { ident: f.ident },
        // An atomic fragment (offset 0, no more): a whole datagram behind a fragment header.
        Some(_) => Fragment::Unfragmented,
    };
    let mut s = PacketSummary {
        family: Family::V6,
        src: ip.src().into(),
        dst: ip.dst().into(),
        protocol: chain.protocol,
        l3_offset: 0,
        l3_len: total,
        l4_offset: ipv6::HEADER_LEN + chain.len,
        ttl: ip.hop_limit(),
        tos: ip.traffic_class(),
        dont_frag: false,
        fragment,
        ports: None,
        tcp_flags: None,
        icmp: None,
        quoted: None,
    };
    transport(&mut s, &b[..total])?;
    Ok(s)
}

/// Fills ports, TCP flags and ICMP details; `l3` is exactly the IP packet.
fn transport(s: &mut PacketSummary, l3: &[u8]) -> Result<(), ParseError> {
    if !s.fragment.has_transport_header() {
        return Ok(());
    }
    let at = s.l4_offset;
    let l4 = &l3[at..];
    let whole = s.fragment == Fragment::Unfragmented;
    match s.protocol {
        proto::TCP => {
            let t = super::TcpPacket::new_checked(l4).map_err(|e| e.shifted(at))?;
            s.ports = Some(Ports {
                src: t.src_port(),
                dst: t.dst_port(),
            });
            s.tcp_flags = Some(t.flags());
        }
        proto::UDP => {
            let u = super::UdpPacket::new_checked(l4).map_err(|e| e.shifted(at))?;
            if whole && usize::from(u.len()) > l4.len() {
                return Err(ParseError::new(
                    Layer::Udp,
                    at + 4,
                    ParseErrorKind::BadLength(usize::from(u.len())),
                ));
            }
            s.ports = Some(Ports {
                src: u.src_port(),
                dst: u.dst_port(),
            });
        }
        proto::SCTP => {
            let p = super::SctpPacket::new_checked(l4).map_err(|e| e.shifted(at))?;
            s.ports = Some(Ports {
                src: p.src_port(),
                dst: p.dst_port(),
            });
        }
        proto::ICMP if s.family == Family::V4 => {
            let m = super::Icmpv4Packet::new_checked(l4).map_err(|e| e.shifted(at))?;
            let ty = m.msg_type();
            let echo = matches!(ty, icmpv4::types::ECHO_REQUEST | icmpv4::types::ECHO_REPLY);
            s.icmp = Some(IcmpSummary {
                msg_type: ty,
                code: m.code(),
                echo_ident: echo.then(|| m.echo_ident()),
            });
            if icmpv4::is_error(ty) && whole {
                s.quoted = Some(quoted(l3, at + icmpv4::HEADER_LEN, Family::V4)?);
            }
        }
        proto::ICMPV6 if s.family == Family::V6 => {
            let m = super::Icmpv6Packet::new_checked(l4).map_err(|e| e.shifted(at))?;
            let ty = m.msg_type();
            let echo = matches!(ty, icmpv6::types::ECHO_REQUEST | icmpv6::types::ECHO_REPLY);
            s.icmp = Some(IcmpSummary {
                msg_type: ty,
                code: m.code(),
                echo_ident: echo.then(|| m.echo_ident()),
            });
            if icmpv6::is_error(ty) && whole {
                s.quoted = Some(quoted(l3, at + icmpv6::HEADER_LEN, Family::V6)?);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Bytes of the quoted transport header an ICMP error must carry (RFC 792: "the first
/// 64 bits of the original datagram's data").
const QUOTED_L4_MIN: usize = 8;

fn quoted(l3: &[u8], at: usize, family: Family) -> Result<Quoted, ParseError> {
    let q = &l3[at..];
    let wrap = |e: ParseError| ParseError {
        layer: Layer::QuotedIp,
        ..e.shifted(at)
    };
    let (src, dst, protocol, hl, fragment) = match family {
        Family::V4 => {
            let ip = Ipv4Packet::new_checked_header(q).map_err(wrap)?;
            let fragment = v4_fragment(&ip);
            (
                IpAddr::from(ip.src()),
                IpAddr::from(ip.dst()),
                ip.protocol(),
                ip.header_len(),
                fragment,
            )
        }
        Family::V6 => {
            let ip = Ipv6Packet::new_checked_header(q).map_err(wrap)?;
            let chain = ipv6::ExtensionChain::walk(&q[ipv6::HEADER_LEN..], ip.next_header())
                .map_err(|e| wrap(e.shifted(ipv6::HEADER_LEN)))?;
            let fragment = match chain.fragment {
                Some(f) if f.frag_offset != 0 => Fragment::NonFirst {
                    ident: f.ident,
                    offset: f.frag_offset,
                },
                Some(f) if f.more => Fragment::First { ident: f.ident },
                _ => Fragment::Unfragmented,
            };
            (
                IpAddr::from(ip.src()),
                IpAddr::from(ip.dst()),
                chain.protocol,
                ipv6::HEADER_LEN + chain.len,
                fragment,
            )
        }
    };
    let l4 = &q[hl..];
    let mut ports = None;
    let mut echo_ident = None;
    if fragment.has_transport_header() {
        // The protocols `transport` parses for this family: an ICMPv4 header inside IPv6
        // (or ICMPv6 inside IPv4) is an unknown payload there, so it may be shorter than
        // 8 bytes in a packet that parses, and a quote of that whole packet must parse.
        let needs_l4 = match protocol {
            proto::TCP | proto::UDP | proto::SCTP => true,
            proto::ICMP => family == Family::V4,
            proto::ICMPV6 => family == Family::V6,
            _ => false,
        };
        if needs_l4 && l4.len() < QUOTED_L4_MIN {
            return Err(ParseError::truncated(
                Layer::QuotedTransport,
                at + hl,
                QUOTED_L4_MIN,
                l4.len(),
            ));
        }
        match protocol {
            proto::TCP | proto::UDP | proto::SCTP => {
                ports = Some(Ports {
                    src: be16(l4, 0),
                    dst: be16(l4, 2),
                })
            }
            proto::ICMP
                if family == Family::V4
                    && matches!(
                        l4[0],
                        icmpv4::types::ECHO_REQUEST | icmpv4::types::ECHO_REPLY
                    ) =>
            {
                echo_ident = Some(be16(l4, 4));
            }
            proto::ICMPV6
                if family == Family::V6
                    && matches!(
                        l4[0],
                        icmpv6::types::ECHO_REQUEST | icmpv6::types::ECHO_REPLY
                    ) =>
            {
                echo_ident = Some(be16(l4, 4));
            }
            _ => {}
        }
    }
    Ok(Quoted {
        src,
        dst,
        protocol,
        l3_offset: at,
        l4_offset: at + hl,
        l4_len: l4.len(),
        ports,
        echo_ident,
        fragment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder, icmpv4};

    #[test]
    fn tcp_over_ethernet_with_vlan() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(etherparse::VlanId::try_new(7).unwrap())
            .ipv4([1, 2, 3, 4], [5, 6, 7, 8], 9)
            .tcp(1000, 80, 1, 100)
            .syn()
            .write(&mut f, b"abc")
            .unwrap();
        f.extend_from_slice(&[0; 6]); // Ethernet padding is not payload
        let s = PacketSummary::parse_ethernet(&f).unwrap();
        assert_eq!(s.l3_offset, 18);
        assert_eq!(s.l4_offset, 38);
        assert_eq!(s.l3_len, 43);
        assert_eq!(s.ports, Some(Ports { src: 1000, dst: 80 }));
        assert_eq!(s.tcp_flags, Some(crate::wire::tcp::flags::SYN));
        assert_eq!(s.ttl, 9);
        assert_eq!(s.l4_len(), 23);
        assert_eq!(s.fragment, Fragment::Unfragmented);
    }

    #[test]
    fn bad_ipv4_checksum_and_versions() {
        let mut p = Vec::new();
        PacketBuilder::ipv4([1, 2, 3, 4], [5, 6, 7, 8], 9)
            .udp(1, 2)
            .write(&mut p, b"x")
            .unwrap();
        p[10] ^= 1;
        assert_eq!(
            PacketSummary::parse(&p).unwrap_err().kind,
            ParseErrorKind::BadChecksum
        );
        assert_eq!(
            PacketSummary::parse(&[0x50; 40]).unwrap_err().kind,
            ParseErrorKind::BadVersion(5)
        );
        assert!(PacketSummary::parse(&[]).is_err());
        let e = PacketSummary::parse_ethernet(&[0u8; 14]).unwrap_err();
        assert_eq!(
            (e.layer, e.kind),
            (Layer::Ethernet, ParseErrorKind::Unsupported(0))
        );
    }

    #[test]
    fn udp_length_beyond_payload_is_refused() {
        let mut p = Vec::new();
        PacketBuilder::ipv4([1, 2, 3, 4], [5, 6, 7, 8], 9)
            .udp(1, 2)
            .write(&mut p, b"xy")
            .unwrap();
        p[25] = 11;
        let e = PacketSummary::parse(&p).unwrap_err();
        assert_eq!(
            (e.layer, e.offset, e.kind),
            (Layer::Udp, 24, ParseErrorKind::BadLength(11))
        );
    }

    #[test]
    fn ipv6_fragments() {
        let mut p = Vec::new();
        let frag = etherparse::Ipv6FragmentHeader::new(
            etherparse::IpNumber::UDP,
            etherparse::IpFragOffset::try_new(0).unwrap(),
            true,
            0x55,
        );
        let mut ip = etherparse::Ipv6Header {
            payload_length: 8 + 8 + 4,
            next_header: etherparse::IpNumber::IPV6_FRAGMENTATION_HEADER,
            hop_limit: 3,
            source: [1; 16],
            destination: [2; 16],
            ..Default::default()
        };
        ip.write(&mut p).unwrap();
        frag.write(&mut p).unwrap();
        p.extend_from_slice(&[0, 53, 0, 54, 0, 100, 0x12, 0x34, 1, 2, 3, 4]);
        let s = PacketSummary::parse(&p).unwrap();
        assert_eq!(s.fragment, Fragment::First { ident: 0x55 });
        assert_eq!(s.ports, Some(Ports { src: 53, dst: 54 }));
        assert_eq!(s.l4_offset, 48);
        // Non-first: no ports.
        p[42..44].copy_from_slice(&(1480u16).to_be_bytes());
        let s = PacketSummary::parse(&p).unwrap();
        assert_eq!(
            s.fragment,
            Fragment::NonFirst {
                ident: 0x55,
                offset: 1480
            }
        );
        assert_eq!(s.ports, None);
        // Payload length disagreeing with the buffer.
        ip.payload_length = 200;
        let mut q = Vec::new();
        ip.write(&mut q).unwrap();
        q.extend_from_slice(&p[40..]);
        assert!(matches!(
            PacketSummary::parse(&q).unwrap_err().kind,
            ParseErrorKind::Truncated { .. }
        ));
    }

    /// Fuzz regression (`fuzz/corpus/pmtu/regress-icmp-in-ipv6`): an IPv6 packet with next
    /// header 1 (ICMPv4, unknown in IPv6) and a 7-byte payload parses, but the
    /// "packet too big" error quoting all of it was rejected, because the quote parser
    /// demanded 8 transport bytes for ICMP in either family. Likewise ICMPv6 in IPv4.
    #[test]
    fn whole_quote_of_a_packet_that_parses_parses() {
        let mut orig6 = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 9)
            .write(&mut orig6, proto::ICMP.into(), &[1, 4, 0x43, 0x3f, 0, 0, 0])
            .unwrap();
        let s = PacketSummary::parse(&orig6).unwrap();
        assert_eq!((s.protocol, s.icmp), (proto::ICMP, None));
        let mut p6 = Vec::new();
        PacketBuilder::ipv6([2; 16], [1; 16], 64)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
            .write(&mut p6, &orig6)
            .unwrap();
        let q = PacketSummary::parse(&p6).unwrap().quoted.unwrap();
        assert_eq!((q.protocol, q.l4_len, q.echo_ident), (proto::ICMP, 7, None));

        let mut orig4 = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 9)
            .write(&mut orig4, proto::ICMPV6.into(), &[128, 0, 0])
            .unwrap();
        PacketSummary::parse(&orig4).unwrap();
        let mut p4 = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 576 },
            ))
            .write(&mut p4, &orig4)
            .unwrap();
        let q = PacketSummary::parse(&p4).unwrap().quoted.unwrap();
        assert_eq!((q.protocol, q.l4_len), (proto::ICMPV6, 3));
    }

    #[test]
    fn icmp_errors_quote_their_packet() {
        let mut orig = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 9)
            .tcp(1111, 2222, 5, 6)
            .write(&mut orig, b"zz")
            .unwrap();
        let mut p = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 9)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
            ))
            .write(&mut p, &orig[..28])
            .unwrap();
        let s = PacketSummary::parse(&p).unwrap();
        let q = s.quoted.unwrap();
        assert_eq!(s.icmp.unwrap().msg_type, 3);
        assert_eq!((q.l3_offset, q.l4_offset, q.l4_len), (28, 48, 8));
        assert_eq!(
            q.ports,
            Some(Ports {
                src: 1111,
                dst: 2222
            })
        );
        assert_eq!(q.protocol, proto::TCP);
        // Fewer than 8 quoted transport bytes is malformed.
        let mut short = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 1], 9)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut short, &orig[..26])
            .unwrap();
        let e = PacketSummary::parse(&short).unwrap_err();
        assert_eq!((e.layer, e.offset), (Layer::QuotedTransport, 48));

        let mut orig6 = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 9)
            .udp(53, 5353)
            .write(&mut orig6, b"answer")
            .unwrap();
        let mut p6 = Vec::new();
        PacketBuilder::ipv6([2; 16], [1; 16], 9)
            .icmpv6(Icmpv6Type::PacketTooBig { mtu: 1280 })
            .write(&mut p6, &orig6)
            .unwrap();
        let s = PacketSummary::parse(&p6).unwrap();
        let q = s.quoted.unwrap();
        assert_eq!(q.ports, Some(Ports { src: 53, dst: 5353 }));
        assert_eq!(q.src, IpAddr::from([1u8; 16]));
        let mut echo = Vec::new();
        PacketBuilder::ipv6([2; 16], [1; 16], 9)
            .icmpv6_echo_reply(9, 1)
            .write(&mut echo, b"")
            .unwrap();
        assert_eq!(
            PacketSummary::parse(&echo)
                .unwrap()
                .icmp
                .unwrap()
                .echo_ident,
            Some(9)
        );
    }
}
