//! Every packet of the real captures in `../shared/pcaps`, checked against tshark.
//!
//! 1. `PacketSummary` parses every packet without panicking; errors are typed; the
//!    transport protocol it reports equals the first transport layer tshark dissects,
//!    frame by frame (so the TCP/UDP/ICMP/ICMPv6/SCTP counts agree exactly).
//! 2. The rewrites (NAT both ways, IPIP, GRE, GUE) are applied to every packet they apply
//!    to; the output is written to raw-IP pcaps and tshark must find no bad checksum, the
//!    NAT output must be addressed to the real server (or from the VIP), and the tunnel
//!    output must decode to the original inner packet.
//!
//! tshark is required: the test fails if it is missing.

mod common;

use common::{Captured, capture_files, read_capture, tshark, tshark_fields};
use lvs::forward::nat;
use lvs::forward::tunnel::{self, GueChecksum, Tunnel, TunnelKind};
use lvs::{PacketBuf, PacketSummary};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;

/// Parses a capture packet by its link type.
fn summarize(c: &Captured) -> Result<PacketSummary, lvs::ParseError> {
    match c.linktype {
        LINKTYPE_ETHERNET => PacketSummary::parse_ethernet(&c.data),
        LINKTYPE_RAW => PacketSummary::parse(&c.data),
        l => panic!("unexpected link type {l}"),
    }
}

/// tshark's name for the transport layer this crate reports.
fn proto_name(p: u8, s: &PacketSummary) -> Option<&'static str> {
    if !s.fragment.has_transport_header() {
        return Some("data");
    }
    Some(match p {
        6 => "tcp",
        17 => "udp",
        132 => "sctp",
        1 => "icmp",
        58 => "icmpv6",
        4 => "ip",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        _ => return None,
    })
}

/// The first layer after the outermost IP layer (IPv6 extension headers skipped) in
/// tshark's `frame.protocols`.
fn tshark_transport(protocols: &str) -> Option<&str> {
    let mut it = protocols
        .split(':')
        .skip_while(|l| *l != "ip" && *l != "ipv6");
    it.next()?;
    it.find(|l| !l.starts_with("ipv6."))
}

#[test]
fn summaries_match_tshark_on_every_capture() {
    let mut report = String::new();
    let mut mismatches = Vec::new();
    for path in capture_files() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let packets = read_capture(&path);
        let protos = tshark(&[
            "-n",
            "-r",
            path.to_str().unwrap(),
            "-o",
            "ip.defragment:FALSE",
            "-o",
            "ipv6.defragment:FALSE",
            "-T",
            "fields",
            "-e",
            "frame.protocols",
        ]);
        let protos: Vec<&str> = protos.lines().collect();
        assert_eq!(
            protos.len(),
            packets.len(),
            "{name}: tshark and pcap-file disagree on the packet count"
        );
        let mut ok = 0usize;
        let mut stripped = 0usize;
        let mut errors: BTreeMap<String, usize> = BTreeMap::new();
        let mut ours: BTreeMap<&str, usize> = BTreeMap::new();
        let mut theirs: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, (c, tp)) in packets.iter().zip(&protos).enumerate() {
            // A panic here fails the test with the frame number in the message.
            let r = std::panic::catch_unwind(|| summarize(c))
                .unwrap_or_else(|_| panic!("{name} frame {}: PacketSummary panicked", i + 1));
            match r {
                Ok(s) => {
                    ok += 1;
                    assert!(
                        s.l3_offset + s.l3_len <= c.data.len(),
                        "{name} frame {}: l3 range past the frame",
                        i + 1
                    );
                    assert!(
                        s.l4_offset <= s.l3_offset + s.l3_len,
                        "{name} frame {}: l4 offset past the packet",
                        i + 1
                    );
                    let Some(want) = proto_name(s.protocol, &s) else {
                        continue;
                    };
                    let got = tshark_transport(tp).unwrap_or("<none>");
                    if got != want {
                        mismatches.push(format!(
                            "{name} frame {}: tshark dissects {tp:?}, PacketSummary says protocol {} ({:?})",
                            i + 1,
                            s.protocol,
                            s.fragment
                        ));
                        continue;
                    }
                    *ours.entry(want).or_default() += 1;
                    *theirs.entry(got).or_default() += 1;
                }
                Err(e) => {
                    let e: lvs::ParseError = e;
                    // Errors are typed values with an offset inside the frame.
                    assert!(
                        e.offset <= c.data.len(),
                        "{name} frame {}: error offset {} past the frame",
                        i + 1,
                        e.offset
                    );
                    *errors
                        .entry(format!("{:?}/{}", e.layer, kind_name(e.kind)))
                        .or_default() += 1;
                    // parse_ethernet takes one 802.1Q tag; QinQ frames (pcapplusplus 1-20, the
                    // 4in4 file) are refused as Unsupported(0x8100). Strip the tags here and
                    // check the IP packet inside against tshark all the same.
                    let qinq = e.layer == lvs::Layer::Ethernet
                        && e.kind == lvs::ParseErrorKind::Unsupported(0x8100);
                    if let Some(l3) = l3_of(c).filter(|_| qinq) {
                        let s = PacketSummary::parse(l3).unwrap_or_else(|e| {
                            panic!("{name} frame {}: IP packet inside tags: {e}", i + 1)
                        });
                        let Some(want) = proto_name(s.protocol, &s) else {
                            continue;
                        };
                        let got = tshark_transport(tp).unwrap_or("<none>");
                        assert_eq!(
                            got,
                            want,
                            "{name} frame {} (tags stripped): tshark dissects {tp:?}",
                            i + 1
                        );
                        *ours.entry(want).or_default() += 1;
                        *theirs.entry(got).or_default() += 1;
                        stripped += 1;
                    }
                }
            }
        }
        assert_eq!(
            ours, theirs,
            "{name}: per-protocol counts differ from tshark"
        );
        report.push_str(&format!(
            "{name}: {} packets, {ok} parsed, {} errors {errors:?} ({stripped} parsed after stripping VLAN tags); protocols {ours:?}\n",
            packets.len(),
            packets.len() - ok
        ));
        if name.starts_with("suricata-verify__tcp-session-decode-malformed-ipv4") {
            // Frame 8 is the crafted packet: IHL 8 with options 82 02 00 00 00 00 00 00 78 78 78 00
            // (a 2-byte security option, then END followed by garbage). tshark flags the option
            // length and stops dissecting; Linux's ip_options_compile accepts it on receive (it
            // only rejects bad option lengths < 2 or past the header, and overwrites bytes after
            // END), so IPVS would see it. PacketSummary does not validate option contents either.
            let frame8 = &packets[7].data;
            assert_eq!(frame8[14], 0x48, "{name}: frame 8 is the IHL=8 packet");
        }
        if name.starts_with("stopddos__") {
            assert_eq!(
                ours.get("tcp"),
                Some(&37_841),
                "{name}: every SYN of the flood parses as TCP"
            );
        }
    }
    println!("{report}");
    // The only frame where tshark stops before the transport layer while PacketSummary goes
    // on is the crafted IPv4-options packet (see above): tshark refuses, the kernel accepts.
    let known = ["suricata-verify__tcp-session-decode-malformed-ipv4.pcap frame 8:"];
    let unexpected: Vec<&String> = mismatches
        .iter()
        .filter(|m| !known.iter().any(|k| m.starts_with(k)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "PacketSummary and tshark disagree:\n{unexpected:#?}\n{report}"
    );
    assert_eq!(
        mismatches.len(),
        known.len(),
        "expected divergences {known:?}, got {mismatches:#?}"
    );
}

fn kind_name(k: lvs::ParseErrorKind) -> &'static str {
    use lvs::ParseErrorKind as K;
    match k {
        K::Truncated { .. } => "Truncated",
        K::BadVersion(_) => "BadVersion",
        K::BadHeaderLength(_) => "BadHeaderLength",
        K::BadLength(_) => "BadLength",
        K::BadExtensionChain => "BadExtensionChain",
        K::BadChecksum => "BadChecksum",
        K::ZeroUdpChecksumV6 => "ZeroUdpChecksumV6",
        K::Unsupported(_) => "Unsupported",
        _ => "other",
    }
}

/// The IP packet of a captured frame: raw IP as is; Ethernet after any number of 802.1Q /
/// 802.1ad tags, cut to the IP length (drops Ethernet padding). `None` for non-IP frames.
fn l3_of(c: &Captured) -> Option<&[u8]> {
    let d = &c.data[..];
    let l3 = match c.linktype {
        LINKTYPE_RAW => d,
        LINKTYPE_ETHERNET => {
            let mut off = 12;
            loop {
                let t = u16::from_be_bytes([*d.get(off)?, *d.get(off + 1)?]);
                match t {
                    0x8100 | 0x88a8 => off += 4,
                    0x0800 | 0x86dd => break &d[off + 2..],
                    _ => return None,
                }
            }
        }
        _ => return None,
    };
    let len = match l3.first()? >> 4 {
        4 if l3.len() >= 4 => usize::from(u16::from_be_bytes([l3[2], l3[3]])),
        6 if l3.len() >= 6 => 40 + usize::from(u16::from_be_bytes([l3[4], l3[5]])),
        _ => return Some(l3),
    };
    Some(&l3[..len.min(l3.len())])
}

fn tmp_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("captures");
    std::fs::create_dir_all(&d).unwrap();
    d
}

const RIP4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 2);
const RIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
const RPORT: u16 = 8080;
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const VPORT: u16 = 80;
const DIR4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const DIR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
const GUE_PORT: u16 = 6080;

/// Checksum statuses tshark reports (all occurrences); 0 is "Bad" (`tshark -G values`).
/// The first four are never allowed to be bad; the transport ones may be bad only inside
/// the quote of an ICMP error, which IPVS NAT leaves as it was (`QuotedChecksum::Kernel`).
const STATUS_FIELDS: [&str; 7] = [
    "ip.checksum.status",
    "icmp.checksum.status",
    "icmpv6.checksum.status",
    "gre.checksum.status",
    "tcp.checksum.status",
    "udp.checksum.status",
    "sctp.checksum.status",
];

/// Frames of `file` with a bad checksum tshark can see, described.
fn tshark_bad_frames(file: &Path, from: &[Origin], names: &[String]) -> (Vec<String>, usize) {
    let mut bad = Vec::new();
    let mut quoted_bad = 0;
    for (i, f) in tshark_fields(file, &STATUS_FIELDS, None).iter().enumerate() {
        let o = from[i];
        let is_bad = |col: &String| col.split(',').any(|v| v == "0");
        if f[..4].iter().any(is_bad) {
            bad.push(format!(
                "frame {} {f:?} <- {} frame {}",
                i + 1,
                names[o.file],
                o.frame
            ));
        } else if f[4..].iter().any(is_bad) {
            if o.quotes {
                quoted_bad += 1;
            } else {
                bad.push(format!(
                    "frame {} {f:?} <- {} frame {}",
                    i + 1,
                    names[o.file],
                    o.frame
                ));
            }
        }
    }
    (bad, quoted_bad)
}

#[derive(Default, Debug)]
struct Counts {
    frames: usize,
    non_ip: usize,
    unparsed: usize,
    bad_checksum_skipped: usize,
    used: usize,
    nat_in: usize,
    nat_out: usize,
    nat_refused: BTreeMap<String, usize>,
}

/// Where an output packet came from.
#[derive(Clone, Copy)]
struct Origin {
    file: usize,
    frame: usize,
    /// The original packet is an ICMP error (its quote's transport checksum is not ours).
    quotes: bool,
}

fn join(a: &str, b: &str) -> String {
    if b.is_empty() {
        a.to_owned()
    } else {
        format!("{a},{b}")
    }
}

#[test]
fn rewrites_of_every_capture_verify_in_tshark() {
    let files = capture_files();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut counts: Vec<Counts> = files.iter().map(|_| Counts::default()).collect();
    let (mut nat_in, mut nat_out, mut orig, mut ipip, mut gre, mut gue) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let (mut in_from, mut out_from, mut tun_from) = (Vec::new(), Vec::new(), Vec::new());
    let mut gue_inner_offsets = Vec::new();
    for (fi, path) in files.iter().enumerate() {
        let name = &names[fi];
        let k = &mut counts[fi];
        for (i, c) in read_capture(path).iter().enumerate() {
            k.frames += 1;
            let Some(l3) = l3_of(c) else {
                k.non_ip += 1;
                continue;
            };
            let Ok(s) = PacketSummary::parse(l3) else {
                k.unparsed += 1;
                continue;
            };
            // Offloaded or otherwise bad checksums in the capture: not our output to judge.
            if common::verify_packet(l3, common::VerifyOpts::default()).is_err() {
                k.bad_checksum_skipped += 1;
                continue;
            }
            k.used += 1;
            let l3 = &l3[..s.l3_len];
            let origin = Origin {
                file: fi,
                frame: i + 1,
                quotes: s.quoted.is_some(),
            };
            let v6 = s.family == lvs::wire::Family::V6;
            let (rip, vip, dir): (IpAddr, IpAddr, IpAddr) = if v6 {
                (RIP6.into(), VIP6.into(), DIR6.into())
            } else {
                (RIP4.into(), VIP4.into(), DIR4.into())
            };

            let mut p = l3.to_vec();
            match nat::inbound(&mut p, rip, RPORT) {
                Ok(()) => {
                    let v = common::verify_packet(&p, common::VerifyOpts::default());
                    assert!(
                        v.is_ok(),
                        "{name} frame {}: after NAT inbound: {v:?}\n{}",
                        i + 1,
                        common::hex(&p)
                    );
                    k.nat_in += 1;
                    nat_in.push(p);
                    in_from.push(origin);
                }
                Err(e) => {
                    assert_eq!(
                        p,
                        l3,
                        "{name} frame {}: refused NAT changed the packet",
                        i + 1
                    );
                    *k.nat_refused
                        .entry(format!("{e:?}").chars().take(40).collect())
                        .or_default() += 1;
                }
            }
            let mut p = l3.to_vec();
            if nat::outbound(&mut p, vip, VPORT).is_ok() {
                let v = common::verify_packet(&p, common::VerifyOpts::default());
                assert!(
                    v.is_ok(),
                    "{name} frame {}: after NAT outbound: {v:?}\n{}",
                    i + 1,
                    common::hex(&p)
                );
                k.nat_out += 1;
                nat_out.push(p);
                out_from.push(origin);
            } else {
                assert_eq!(
                    p,
                    l3,
                    "{name} frame {}: refused NAT changed the packet",
                    i + 1
                );
            }

            // Tunnels: IPIP in the same family, GRE with checksum over IPv4 (4in4 / 6in4),
            // GUE with UDP checksum over IPv6 (4in6 / 6in6).
            let tunnels = [
                (Tunnel::new(TunnelKind::Ipip, dir, rip), &mut ipip),
                (
                    Tunnel::new(
                        TunnelKind::Gre {
                            checksum: true,
                            key: None,
                        },
                        DIR4.into(),
                        RIP4.into(),
                    ),
                    &mut gre,
                ),
                (
                    Tunnel::new(
                        TunnelKind::Gue {
                            port: GUE_PORT,
                            checksum: GueChecksum::Csum,
                        },
                        DIR6.into(),
                        RIP6.into(),
                    ),
                    &mut gue,
                ),
            ];
            for (t, out) in tunnels {
                let mut buf = PacketBuf::with_headroom(lvs::buf::DEFAULT_HEADROOM, l3);
                let r = tunnel::encapsulate(&mut buf, &t, 0x4242);
                assert!(
                    r.is_ok(),
                    "{name} frame {}: encapsulation {:?} refused: {r:?}",
                    i + 1,
                    t.kind
                );
                let enc = buf.packet().to_vec();
                let v = common::verify_packet(
                    &enc,
                    common::VerifyOpts {
                        gue_ports: &[GUE_PORT],
                    },
                );
                assert!(
                    v.is_ok(),
                    "{name} frame {}: after {:?}: {v:?}",
                    i + 1,
                    t.kind
                );
                let d = tunnel::decapsulate(&mut buf, &[GUE_PORT]);
                assert!(
                    d.is_ok(),
                    "{name} frame {}: decapsulating {:?}: {d:?}",
                    i + 1,
                    t.kind
                );
                assert_eq!(
                    buf.packet(),
                    l3,
                    "{name} frame {}: decapsulate(encapsulate(p)) != p for {:?}",
                    i + 1,
                    t.kind
                );
                if matches!(t.kind, TunnelKind::Gue { .. }) {
                    gue_inner_offsets.push(t.overhead());
                }
                out.push(enc);
            }
            orig.push(l3.to_vec());
            tun_from.push(origin);
        }
    }

    let dir = tmp_dir();
    let write = |n: &str, v: &[Vec<u8>]| {
        let p = dir.join(n);
        common::write_raw_pcap(&p, v);
        p
    };
    let files_out = [
        ("nat_in.pcap", write("nat_in.pcap", &nat_in), &in_from),
        ("nat_out.pcap", write("nat_out.pcap", &nat_out), &out_from),
        ("orig.pcap", write("orig.pcap", &orig), &tun_from),
        ("ipip.pcap", write("ipip.pcap", &ipip), &tun_from),
        ("gre.pcap", write("gre.pcap", &gre), &tun_from),
        ("gue.pcap", write("gue.pcap", &gue), &tun_from),
    ];

    // 1. No bad checksum in any layer tshark dissects (quoted transport checksums aside).
    let mut quoted_bad_report = String::new();
    for (n, p, from) in &files_out {
        let (bad, quoted_bad) = tshark_bad_frames(p, from, &names);
        quoted_bad_report.push_str(&format!(
            "{n}: {quoted_bad} ICMP errors whose quoted transport checksum tshark flags\n"
        ));
        assert!(
            bad.is_empty(),
            "{n} ({}): tshark finds {} frames with a bad checksum:\n{:#?}",
            p.display(),
            bad.len(),
            &bad[..bad.len().min(10)]
        );
    }

    // 2. NAT output is addressed to the real server / comes from the VIP.
    for (i, f) in tshark_fields(&files_out[0].1, &["ip.dst", "ipv6.dst"], None)
        .iter()
        .enumerate()
    {
        let first = if f[0].is_empty() {
            f[1].split(',').next()
        } else {
            f[0].split(',').next()
        };
        let o = in_from[i];
        assert!(
            first == Some(&RIP4.to_string()) || first == Some(&RIP6.to_string()),
            "{} frame {}: NAT inbound output goes to {first:?}, not the real server",
            names[o.file],
            o.frame
        );
    }
    for (i, f) in tshark_fields(&files_out[1].1, &["ip.src", "ipv6.src"], None)
        .iter()
        .enumerate()
    {
        let first = if f[0].is_empty() {
            f[1].split(',').next()
        } else {
            f[0].split(',').next()
        };
        let o = out_from[i];
        assert!(
            first == Some(&VIP4.to_string()) || first == Some(&VIP6.to_string()),
            "{} frame {}: NAT outbound output comes from {first:?}, not the VIP",
            names[o.file],
            o.frame
        );
    }

    // 3. IPIP and GRE output decode in tshark to the original packet: every field of the
    //    original, with the outer header's addresses in front.
    let fields = [
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "tcp.srcport",
        "tcp.dstport",
        "tcp.seq_raw",
        "udp.srcport",
        "udp.dstport",
        "sctp.srcport",
        "sctp.dstport",
        "icmp.type",
        "icmpv6.type",
        "ip.id",
        "ipv6.nxt",
    ];
    let want = tshark_fields(&files_out[2].1, &fields, None);
    for (label, idx, outer_v6) in [("IPIP", 3, None), ("GRE", 4, Some(false))] {
        let got = tshark_fields(&files_out[idx].1, &fields, None);
        assert_eq!(got.len(), want.len(), "{label}: frame count");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let o = tun_from[i];
            let inner_v6 = orig[i][0] >> 4 == 6;
            let ov6 = outer_v6.unwrap_or(inner_v6);
            let (osrc, odst) = if ov6 {
                (DIR6.to_string(), RIP6.to_string())
            } else {
                (DIR4.to_string(), RIP4.to_string())
            };
            let mut expect = w.clone();
            let base = if ov6 { 2 } else { 0 };
            expect[base] = join(&osrc, &w[base]);
            expect[base + 1] = join(&odst, &w[base + 1]);
            if ov6 {
                expect[14] = join(if inner_v6 { "41" } else { "4" }, &w[14]);
            } else {
                expect[13] = join("0x4242", &w[13]);
            }
            if g != &expect {
                // The outer IPv4 identification is 0 when DF was copied from the inner packet.
                let mut e2 = expect.clone();
                if !ov6 {
                    e2[13] = join("0x0000", &w[13]);
                }
                assert_eq!(
                    g, &e2,
                    "{label} output of {} frame {} does not decode to the original inner packet",
                    names[o.file], o.frame
                );
            }
        }
    }

    // 4. GUE: tshark has no GUE decoder; decode the inner packet with etherparse from its
    //    offset and compare with the original (tshark already checked the UDP checksum).
    for (i, enc) in gue.iter().enumerate() {
        let o = tun_from[i];
        let off = gue_inner_offsets[i];
        assert_eq!(
            &enc[off..],
            &orig[i][..],
            "{} frame {}: GUE inner bytes",
            names[o.file],
            o.frame
        );
        let h = etherparse::PacketHeaders::from_ip_slice(&enc[off..]);
        let w = etherparse::PacketHeaders::from_ip_slice(&orig[i]);
        assert_eq!(
            format!("{:?}", h.map(|h| (h.net, h.transport))),
            format!("{:?}", w.map(|h| (h.net, h.transport))),
            "{} frame {}: etherparse decodes the GUE inner packet differently from the original",
            names[o.file],
            o.frame
        );
    }

    let mut report = String::new();
    for (n, k) in names.iter().zip(&counts) {
        report.push_str(&format!(
            "{n}: frames {} non-IP {} unparsed {} skipped(bad checksum in capture) {} used {} -> NAT in {} / out {} (refused {:?}); IPIP/GRE/GUE {} each\n",
            k.frames, k.non_ip, k.unparsed, k.bad_checksum_skipped, k.used, k.nat_in, k.nat_out, k.nat_refused, k.used
        ));
    }
    println!("{report}{quoted_bad_report}");
    assert!(
        nat_in.len() > 40_000,
        "NAT should apply to most packets\n{report}"
    );
}
