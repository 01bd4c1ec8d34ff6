//! ICMP errors the director itself sends, built as Linux's `icmp_send` / `icmp6_send` build
//! them: "fragmentation needed" / "packet too big" for path MTU, "port unreachable" when a
//! virtual service has no real server left (`ip_vs_leave`), "time exceeded" when a
//! forwarded packet's TTL runs out.

use crate::error::RewriteError;
use crate::wire::{Family, Fragment, PacketSummary, icmpv4, icmpv6, ipv4, ipv6, proto};
use core::net::IpAddr;

/// Largest ICMPv4 error Linux sends (`icmp_send`: "return as much as we can without
/// exceeding 576 bytes").
pub const ICMPV4_ERROR_MAX: usize = 576;
/// Largest ICMPv6 error Linux sends (`icmp6_send` caps the quote at
/// `IPV6_MIN_MTU - sizeof(ipv6hdr) - sizeof(icmp6hdr)`).
pub const ICMPV6_ERROR_MAX: usize = 1280;
/// TTL / hop limit of generated errors (`net.ipv4.ip_default_ttl`, the IPv6 default).
pub const ERROR_TTL: u8 = 64;

/// Which error to send; the family of the offending packet picks type and code.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpError {
    /// IPv4 3/4 "fragmentation needed" with the next-hop MTU, IPv6 2/0 "packet too big".
    TooBig {
        /// The MTU to report.
        mtu: u32,
    },
    /// IPv4 3/3, IPv6 1/4 "port unreachable".
    PortUnreachable,
    /// IPv4 11/0 "TTL exceeded in transit", IPv6 3/0 "hop limit exceeded".
    TimeExceeded,
}

impl IcmpError {
    fn type_code_rest(self, family: Family) -> (u8, u8, u32) {
        match (self, family) {
            (Self::TooBig { mtu }, Family::V4) => {
                (icmpv4::types::DEST_UNREACH, icmpv4::CODE_FRAG_NEEDED, mtu)
            }
            (Self::TooBig { mtu }, Family::V6) => (icmpv6::types::PACKET_TOO_BIG, 0, mtu),
            (Self::PortUnreachable, Family::V4) => {
                (icmpv4::types::DEST_UNREACH, icmpv4::CODE_PORT_UNREACH, 0)
            }
            (Self::PortUnreachable, Family::V6) => (icmpv6::types::DEST_UNREACH, 4, 0),
            (Self::TimeExceeded, Family::V4) => (icmpv4::types::TIME_EXCEEDED, 0, 0),
            (Self::TimeExceeded, Family::V6) => (icmpv6::types::TIME_EXCEEDED, 0, 0),
        }
    }
}

/// Whether `s` is an ICMP error (which is never answered with another).
#[must_use]
pub fn is_icmp_error(s: &PacketSummary) -> bool {
    s.icmp.is_some_and(|i| match s.family {
        Family::V4 => s.protocol == proto::ICMP && icmpv4::is_error(i.msg_type),
        Family::V6 => s.protocol == proto::ICMPV6 && icmpv6::is_error(i.msg_type),
    })
}

/// Writes into `out` the ICMP error `kind` about the packet `orig_l3`, and returns its
/// length.
///
/// - IPv4: the 32-bit rest-of-header is `htonl(info)` as `icmp_send` stores it (for
///   "fragmentation needed" the next-hop MTU field holds the low 16 bits); TOS
///   `(orig_tos & 0x1e) | 0xc0` (`RT_TOS(tos) | IPTOS_PREC_INTERNETCONTROL`), TTL 64, DF
///   clear (the ICMP socket uses `IP_PMTUDISC_DONT`), identification `ident`; the quote is
///   as much of the original as fits a 576-byte reply. No IP options are echoed.
/// - IPv6: traffic class 0, flow label 0 (Linux may set an automatic, hash-based flow
///   label, not reproduced), hop limit 64; the quote is as much as fits 1280 bytes.
///
/// The reply goes from the original's destination (the VIP, a local address) to its
/// source.
///
/// # Errors
/// [`RewriteError::Parse`] if `orig_l3` is malformed; [`RewriteError::UnsupportedProtocol`]
/// (with the original's protocol) for an ICMP error or a non-first fragment, which Linux
/// never answers; [`RewriteError::OutputTooSmall`] if `out` is too short. `out` is not
/// written on error.
pub fn build(
    orig_l3: &[u8],
    kind: IcmpError,
    ident: u16,
    out: &mut [u8],
) -> Result<usize, RewriteError> {
    let s = PacketSummary::parse(orig_l3)?;
    if is_icmp_error(&s) || matches!(s.fragment, Fragment::NonFirst { .. }) {
        return Err(RewriteError::UnsupportedProtocol(s.protocol));
    }
    let orig = s.l3(orig_l3);
    let (ty, code, rest) = kind.type_code_rest(s.family);
    let (ip_len, max) = match s.family {
        Family::V4 => (ipv4::MIN_HEADER_LEN, ICMPV4_ERROR_MAX),
        Family::V6 => (ipv6::HEADER_LEN, ICMPV6_ERROR_MAX),
    };
    let hdr = ip_len + 8;
    let quote = orig.len().min(max - hdr);
    let total = hdr + quote;
    if out.len() < total {
        return Err(RewriteError::OutputTooSmall {
            needed: total,
            available: out.len(),
        });
    }
    let m = &mut out[ip_len..total];
    m[0] = ty;
    m[1] = code;
    m[2..4].fill(0);
    m[4..8].copy_from_slice(&rest.to_be_bytes());
    m[8..].copy_from_slice(&orig[..quote]);
    match (s.src, s.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let c = crate::checksum::checksum(m);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            let tos = (s.tos & 0x1e) | 0xc0;
            ipv4::emit_header(
                out,
                tos,
                total as u16,
                ident,
                0,
                ERROR_TTL,
                proto::ICMP,
                dst,
                src,
            );
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let plen = (total - ip_len) as u16;
            let pseudo = crate::checksum::pseudo_v6(dst, src, proto::ICMPV6, u32::from(plen));
            let c = crate::checksum::finish(crate::checksum::add(pseudo, m));
            m[2..4].copy_from_slice(&c.to_be_bytes());
            ipv6::emit_header(out, 0, 0, plen, proto::ICMPV6, ERROR_TTL, dst, src);
        }
        // PacketSummary never mixes families.
        _ => return Err(RewriteError::FamilyMismatch),
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_unreachable_and_time_exceeded() {
        let syn = crate::fuzzing::sample_tcp_v4();
        let mut out = [0u8; 600];
        let n = build(&syn, IcmpError::PortUnreachable, 9, &mut out).unwrap();
        assert_eq!(n, 28 + 64);
        let s = PacketSummary::parse(&out[..n]).unwrap();
        let i = s.icmp.unwrap();
        assert_eq!((i.msg_type, i.code), (3, 3));
        assert_eq!(
            (s.src, s.dst),
            (
                IpAddr::from([192, 0, 2, 1]),
                IpAddr::from([198, 51, 100, 7])
            )
        );
        assert_eq!(s.quoted.unwrap().ports.unwrap().dst, 80);
        assert_eq!(crate::fuzzing::l4_checksum_ok(&out[..n]), Some(true));
        let n = build(&syn, IcmpError::TimeExceeded, 9, &mut out).unwrap();
        let i = PacketSummary::parse(&out[..n]).unwrap().icmp.unwrap();
        assert_eq!((i.msg_type, i.code), (11, 0));
        // An ICMP error is never answered.
        let before = out;
        assert!(build(&before[..n], IcmpError::PortUnreachable, 0, &mut out).is_err());
        let mut small = [0u8; 40];
        assert!(matches!(
            build(&syn, IcmpError::PortUnreachable, 0, &mut small),
            Err(RewriteError::OutputTooSmall { .. })
        ));
        assert_eq!(small, [0u8; 40], "nothing written on error");
    }
}
