//! ipvsadm compatibility: the rule language, `ipvsadm -S -n` and the `ipvsadm -L` listings.
//!
//! - [`rules`]: a typed model of the commands `ipvsadm -R` reads (`-A -E -D -C -a -e -d
//!   --set`), a parser that applies ipvsadm 1.31's own checks, defaults and quirks, and
//!   [`Config`], the rule set those commands build (with the kernel's errors).
//! - [`save`]: prints a rule set exactly as `ipvsadm -S -n` does.
//! - [`list`]: a read-only [`Snapshot`] of the state and the `ipvsadm -L -n` family of
//!   listings, byte for byte.
//!
//! Nothing here resolves names: where ipvsadm would look up a host or service name, the
//! parser reports [`RuleErrorKind::NotNumeric`]; the printers always behave as with `-n`.
//!
//! ```
//! use lvs::ipvsadm::{Config, save};
//! let cfg = Config::from_rules(
//!     "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 192.168.1.1 -m\n",
//! )
//! .unwrap();
//! assert_eq!(
//!     save::save_config(&cfg),
//!     "-A -t 10.0.0.100:80 -s rr\n-a -t 10.0.0.100:80 -r 192.168.1.1:80 -m -w 1\n"
//! );
//! ```

pub mod list;
pub mod rules;
pub mod save;

pub use list::{ConnState, ConnView, Counters, DestView, ListFormat, Rates, ServiceView, Snapshot};
pub use rules::{
    ApplyError, Command, Config, Netmask, PersistenceEngine, Protocol, RuleError, RuleErrorKind,
    SchedFlags, SchedulerName, ServerRule, ServiceConfig, ServiceEntry, ServiceKey, parse_args,
    parse_line, parse_rules,
};

use core::fmt::Write as _;
use core::net::{IpAddr, Ipv6Addr};

/// glibc's `inet_ntop(AF_INET6)`: RFC 5952-like compression of the longest run (first
/// on ties, at least two words), lower-case hex, and the dotted tail for IPv4-mapped
/// (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`) addresses.
pub(crate) fn inet_ntop6(a: Ipv6Addr) -> String {
    let w = a.segments();
    let (mut best, mut best_len) = (usize::MAX, 0usize);
    let (mut cur, mut cur_len) = (usize::MAX, 0usize);
    for (i, &x) in w.iter().enumerate() {
        if x == 0 {
            if cur == usize::MAX {
                cur = i;
                cur_len = 1;
            } else {
                cur_len += 1;
            }
        } else if cur != usize::MAX {
            if best == usize::MAX || cur_len > best_len {
                best = cur;
                best_len = cur_len;
            }
            cur = usize::MAX;
        }
    }
    if cur != usize::MAX && (best == usize::MAX || cur_len > best_len) {
        best = cur;
        best_len = cur_len;
    }
    if best != usize::MAX && best_len < 2 {
        best = usize::MAX;
    }
    let mut s = String::new();
    let mut i = 0;
    while i < 8 {
        if best != usize::MAX && i >= best && i < best + best_len {
            if i == best {
                s.push(':');
            }
            i += 1;
            continue;
        }
        if i != 0 {
            s.push(':');
        }
        if i == 6 && best == 0 && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            let o = a.octets();
            let _ = write!(s, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
            return s;
        }
        let _ = write!(s, "{:x}", w[i]);
        i += 1;
    }
    if best != usize::MAX && best + best_len == 8 {
        s.push(':');
    }
    s
}

/// `addrport_to_anyname` with `FMT_NUMERIC`: `"%s%s%s:%u"`, IPv6 in brackets.
pub(crate) fn fmt_addr_port(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{}]:{port}", inet_ntop6(v6)),
    }
}

/// The four host-order words libipvs compares (`ntohl(addr.in6.s6_addr32[i])`); an IPv4
/// address fills word 0 and leaves the rest zero, as in the kernel's `nf_inet_addr`.
fn words(a: IpAddr) -> [u32; 4] {
    match a {
        IpAddr::V4(v4) => [u32::from(v4), 0, 0, 0],
        IpAddr::V6(v6) => {
            let o = v6.octets();
            core::array::from_fn(|i| {
                u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

/// `int r = ntohl(a) - ntohl(b)` over the first address's family: the subtraction wraps,
/// so addresses more than 2^31 apart compare inverted.
fn cmp_addr(a: IpAddr, b: IpAddr) -> i32 {
    let (wa, wb) = (words(a), words(b));
    let n = if a.is_ipv6() { 4 } else { 1 };
    for i in 0..n {
        #[allow(clippy::cast_possible_wrap)]
        let r = wa[i].wrapping_sub(wb[i]) as i32;
        if r != 0 {
            return r;
        }
    }
    0
}

/// libipvs `ipvs_cmp_dests`: address (with the wrap quirk), then port.
pub(crate) fn cmp_dests(a: (IpAddr, u16), b: (IpAddr, u16)) -> i32 {
    let r = cmp_addr(a.0, b.0);
    if r != 0 {
        return r;
    }
    i32::from(a.1) - i32::from(b.1)
}

/// libipvs `ipvs_cmp_services`: fwmark (wrapping), family (AF_INET 2 < AF_INET6 10),
/// protocol number, address (wrapping), port.
pub(crate) fn cmp_services(a: &ServiceKey, b: &ServiceKey) -> i32 {
    #[allow(clippy::cast_possible_wrap)]
    let r = a.fwmark().wrapping_sub(b.fwmark()) as i32;
    if r != 0 {
        return r;
    }
    let r = a.af_number() - b.af_number();
    if r != 0 {
        return r;
    }
    match (a, b) {
        (
            ServiceKey::Addr {
                protocol: pa,
                addr: aa,
                port: qa,
            },
            ServiceKey::Addr {
                protocol: pb,
                addr: ab,
                port: qb,
            },
        ) => {
            let r = i32::from(pa.number()) - i32::from(pb.number());
            if r != 0 {
                return r;
            }
            cmp_dests((*aa, *qa), (*ab, *qb))
        }
        // Two fwmark services with the same mark and family are the same service.
        _ => 0,
    }
}

/// glibc's `qsort` (the `msort_with_tmp` merge sort every glibc release uses for small
/// arrays): top-down, left half `n / 2`, ties and `cmp <= 0` take the left element. With
/// libipvs's non-transitive comparators the result depends on the algorithm, so it is
/// reproduced exactly rather than left to `slice::sort_by` (which may also panic on an
/// inconsistent order).
pub(crate) fn glibc_msort<T: Clone>(v: &mut [T], cmp: &impl Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    let (l, r) = v.split_at_mut(n1);
    glibc_msort(l, cmp);
    glibc_msort(r, cmp);
    let mut out = Vec::with_capacity(n);
    let (mut i, mut j) = (0, 0);
    while i < l.len() && j < r.len() {
        if cmp(&l[i], &r[j]) <= 0 {
            out.push(l[i].clone());
            i += 1;
        } else {
            out.push(r[j].clone());
            j += 1;
        }
    }
    out.extend_from_slice(&l[i..]);
    out.extend_from_slice(&r[j..]);
    v.clone_from_slice(&out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntop6_matches_glibc() {
        let cases = [
            ("::", "::"),
            ("::1", "::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::2:0", "::0.2.0.0"),
            ("1::", "1::"),
            ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
            ("fe80:0:0:abcd::", "fe80:0:0:abcd::"),
            ("fe80::abcd:0:0:0", "fe80::abcd:0:0:0"),
        ];
        for (i, o) in cases {
            assert_eq!(inet_ntop6(i.parse().unwrap()), o, "{i}");
        }
    }

    #[test]
    fn wrap_quirk() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "192.168.0.1".parse().unwrap();
        // 0x0a000001 - 0xc0a80001 wraps to a positive int: 10.0.0.1 sorts after.
        assert!(cmp_dests((a, 80), (b, 80)) > 0);
        assert!(cmp_dests((b, 80), (a, 80)) < 0);
        let mut v = vec![(a, 80), (b, 80)];
        glibc_msort(&mut v, &|x, y| cmp_dests(*x, *y));
        assert_eq!(v, vec![(b, 80), (a, 80)]);
    }

    #[test]
    fn msort_is_stable_merge() {
        let mut v: Vec<(u8, u8)> = vec![(3, 0), (1, 0), (3, 1), (2, 0), (1, 1)];
        glibc_msort(&mut v, &|a, b| i32::from(a.0) - i32::from(b.0));
        assert_eq!(v, vec![(1, 0), (1, 1), (2, 0), (3, 0), (3, 1)]);
    }
}

#[cfg(test)]
mod rule_tests;

#[cfg(test)]
mod list_tests;
