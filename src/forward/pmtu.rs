//! Path-MTU decisions and "fragmentation needed" / "packet too big" replies, as IPVS
//! makes them in `__ip_vs_get_out_rt[_v6]` and `ensure_mtu_is_adequate`.
//!
//! Kernel rules (net/netfilter/ipvs/ip_vs_xmit.c):
//! - without a tunnel the MTU is the route MTU; with one it is the route MTU minus the
//!   outer IP header (20 or 40) and UDP + GUE (12) or the GRE header; below 68 (IPv4
//!   outer) or 1280 (IPv6 outer) the packet is dropped;
//! - IPv4 packet: through a tunnel with `pmtu_disc` off it is sent regardless (and
//!   fragmented downstream); otherwise if DF is set, it is longer than the MTU and it is
//!   not an ICMP error being relayed, `ICMP_DEST_UNREACH / ICMP_FRAG_NEEDED` with the MTU
//!   is sent and the packet dropped (`icmp_send` itself stays silent for a non-first
//!   fragment). A DF-clear packet, and a relayed ICMP error even with DF (the transmitters
//!   set `skb->ignore_df`, so `ip_fragment` splits it), may be fragmented;
//! - IPv6 packet: longer than the MTU → `ICMPV6_PKT_TOOBIG` with the MTU, sent only for a
//!   first (or unfragmented) packet that is not an ICMP error, and the packet is dropped.
//!
//! The IPv4/IPv6 rule is chosen by the *inner* packet's family, the minimum MTU by the
//! tunnel's *outer* family, as in the kernel. GSO packets are not modelled (every packet
//! here is a single datagram).

use crate::error::RewriteError;
use crate::forward::icmp_reply::{IcmpError, is_icmp_error};
use crate::forward::tunnel::Tunnel;
use crate::wire::{Family, Fragment, PacketSummary};
use core::net::IpAddr;

/// The verdict of [`check`].
#[non_exhaustive]
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MtuCheck {
    /// The packet fits the path.
    Fits,
    /// IPv4 packet longer than the MTU that may be fragmented downstream: DF is clear, it
    /// goes through a tunnel with `pmtu_disc` ([`Tunnel::copy_df`]) off, or it is an ICMP
    /// error being relayed (the kernel skips the check and fragments it despite DF).
    Fragment,
    /// Too big: drop it and reply to the sender with [`build_too_big`] carrying `mtu`.
    TooBig {
        /// The MTU to report.
        mtu: u32,
    },
    /// Drop silently: too big but no reply is allowed (an IPv6 ICMP error being relayed,
    /// a non-first fragment), or the tunnel leaves less than 68 (IPv4 outer) / 1280 (IPv6
    /// outer) bytes of MTU.
    Drop,
}

/// Minimum IPv4 MTU (RFC 791).
pub const IPV4_MIN_MTU: u32 = 68;
/// Minimum IPv6 MTU (RFC 8200).
pub const IPV6_MIN_MTU: u32 = 1280;
/// Largest ICMPv4 error Linux sends (`icmp_send`: "return as much as we can without
/// exceeding 576 bytes").
pub const ICMPV4_ERROR_MAX: usize = crate::forward::icmp_reply::ICMPV4_ERROR_MAX;
/// Largest ICMPv6 error Linux sends (`icmp6_send` caps the quote at
/// `IPV6_MIN_MTU - sizeof(ipv6hdr) - sizeof(icmp6hdr)`).
pub const ICMPV6_ERROR_MAX: usize = crate::forward::icmp_reply::ICMPV6_ERROR_MAX;
/// TTL / hop limit of generated errors (`net.ipv4.ip_default_ttl`, IPv6 default hop
/// limit).
pub const ERROR_TTL: u8 = crate::forward::icmp_reply::ERROR_TTL;

/// Decides whether the packet `s` fits a route of `link_mtu` bytes, through `tunnel` if
/// given, following the kernel's rules listed in the module documentation.
pub fn check(s: &PacketSummary, link_mtu: u32, tunnel: Option<&Tunnel>) -> MtuCheck {
    let mtu = match tunnel {
        None => link_mtu,
        Some(t) => {
            let min = match t.src {
                IpAddr::V4(_) => IPV4_MIN_MTU,
                IpAddr::V6(_) => IPV6_MIN_MTU,
            };
            match link_mtu.checked_sub(t.overhead() as u32) {
                Some(m) if m >= min => m,
                _ => return MtuCheck::Drop,
            }
        }
    };
    let len = s.l3_len as u64;
    let too_big = len > u64::from(mtu);
    let non_first = matches!(s.fragment, Fragment::NonFirst { .. });
    match s.family {
        Family::V4 => {
            if tunnel.is_some_and(|t| !t.copy_df) || !s.dont_frag {
                return if too_big {
                    MtuCheck::Fragment
                } else {
                    MtuCheck::Fits
                };
            }
            if !too_big {
                MtuCheck::Fits
            } else if is_icmp_error(s) {
                // ensure_mtu_is_adequate skips the check for a relayed ICMP error, and the
                // transmitters set skb->ignore_df, so ip_fragment fragments it despite DF.
                MtuCheck::Fragment
            } else if non_first {
                // icmp_send never answers a non-first fragment; the packet is dropped.
                MtuCheck::Drop
            } else {
                MtuCheck::TooBig { mtu }
            }
        }
        Family::V6 => {
            if !too_big {
                MtuCheck::Fits
            } else if is_icmp_error(s) || non_first {
                MtuCheck::Drop
            } else {
                MtuCheck::TooBig { mtu }
            }
        }
    }
}

/// Writes into `out` the ICMP error Linux sends for a packet too big for `mtu`, and
/// returns its length. As [`build_too_big_with_ident`] with IPv4 identification 0.
///
/// # Errors
/// As [`build_too_big_with_ident`].
pub fn build_too_big(orig_l3: &[u8], mtu: u32, out: &mut [u8]) -> Result<usize, RewriteError> {
    build_too_big_with_ident(orig_l3, mtu, 0, out)
}

/// Writes into `out` the ICMP error Linux sends for the packet `orig_l3` that is too big
/// for `mtu`, and returns its length.
///
/// - IPv4: `ICMP_DEST_UNREACH` / `ICMP_FRAG_NEEDED` (3/4), the 32-bit rest-of-header is
///   `htonl(mtu)` as `icmp_send(skb, .., htonl(mtu))` stores it (so the next-hop MTU
///   field holds the low 16 bits); TOS `(orig_tos & 0x1e) | 0xc0` (`RT_TOS(tos) |
///   IPTOS_PREC_INTERNETCONTROL`), TTL 64, DF clear (the ICMP socket uses
///   `IP_PMTUDISC_DONT`), identification `ident`; the quote is as much of the original
///   as fits a 576-byte reply. No IP options are echoed.
/// - IPv6: `ICMPV6_PKT_TOOBIG` (2/0) with the MTU; traffic class 0, flow label 0 (Linux
///   may set an automatic flow label here, which is hash-based and not reproduced), hop
///   limit 64; the quote is as much as fits a 1280-byte reply.
///
/// The reply goes from the original's destination (the VIP, a local address) to its
/// source. Linux quotes the packet after the TTL decrement, so pass it in that state to
/// match byte for byte.
///
/// # Errors
/// [`RewriteError::Parse`] if `orig_l3` is malformed; [`RewriteError::UnsupportedProtocol`]
/// (with the original's protocol) for an ICMP error or a non-first fragment, which Linux
/// never answers; [`RewriteError::OutputTooSmall`] if `out` is too short. `out` is not
/// written on error.
pub fn build_too_big_with_ident(
    orig_l3: &[u8],
    mtu: u32,
    ident: u16,
    out: &mut [u8],
) -> Result<usize, RewriteError> {
    crate::forward::icmp_reply::build(orig_l3, IcmpError::TooBig { mtu }, ident, out)
}

#[cfg(test)]
mod tests;
