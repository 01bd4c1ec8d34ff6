//! The `pcap_replay` example, tested through its own modules (included by path, so the
//! test runs the same code as the tool).
//!
//! 1. Every capture in `../shared/pcaps`, with rules that put its busiest destination on a
//!    VIP served by three real servers, replayed once per forwarding method (nat, dr,
//!    ipip, gue, gre) with `--output`; tshark checks the output: no bad checksum (frames
//!    whose input already had a bad checksum aside), NAT output addressed to the real
//!    servers, IPIP and GRE output decoding to the input packet behind the outer header,
//!    GUE laid out as `ipvs-semantics.md` 6.4 says with the input packet behind it, DR
//!    frames sent to the real server's MAC with the packet unchanged; and the report's
//!    counts equal tshark's counts of the input and the output.
//! 2. Unit tests of the modules: capture format detection, link-layer stripping, churn
//!    script errors, service files, the Zipf generator, the report's JSON and its math.
//!
//! tshark is required: the test fails if it is missing.
#![allow(dead_code)]

mod common;
use common::{PCAP_DIR, capture_files, tshark, tshark_fields};

#[path = "../examples/pcap_replay/churn.rs"]
mod churn;
#[path = "../examples/pcap_replay/config.rs"]
mod config;
#[path = "../examples/pcap_replay/input.rs"]
mod input;
#[path = "../examples/pcap_replay/output.rs"]
mod output;
#[path = "../examples/pcap_replay/replay.rs"]
mod replay;
#[path = "../examples/pcap_replay/report.rs"]
mod report;
#[path = "../examples/pcap_replay/svg.rs"]
mod svg;
#[path = "../examples/pcap_replay/workload.rs"]
mod workload;

use config::{Destination, Method, Setup};
use lvs::PacketSummary;
use lvs::scheduler::ForwardMethod;
use lvs::wire::proto;
use replay::Emitted;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

const SEED: [u8; 32] = [7; 32];

/// Fields read from every output frame; the first seven are checksum statuses (0 = bad).
const FIELDS: [&str; 19] = [
    "ip.checksum.status",
    "icmp.checksum.status",
    "icmpv6.checksum.status",
    "gre.checksum.status",
    "tcp.checksum.status",
    "udp.checksum.status",
    "sctp.checksum.status",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "sctp.srcport",
    "sctp.dstport",
    "eth.dst",
    "frame.protocols",
];
const F_IP_SRC: usize = 7;
const F_PORTS: std::ops::Range<usize> = 11..17;
const F_ETH_DST: usize = 17;

/// Every field of every frame (all occurrences, comma-separated).
fn fields(file: &Path, filter: Option<&str>) -> Vec<Vec<String>> {
    tshark_fields(file, &FIELDS, filter)
}

fn join(a: &str, b: &str) -> String {
    if b.is_empty() {
        a.to_owned()
    } else {
        format!("{a},{b}")
    }
}

fn first(col: &str) -> &str {
    col.split(',').next().unwrap_or("")
}

/// The destination the test puts on a VIP: the tool's own choice (busiest destination),
/// or for captures without any TCP/UDP/SCTP header, a TCP service on the most frequent
/// IP destination (nothing may then be forwarded).
fn test_destination(cap: &input::Capture) -> Destination {
    if let Some((d, _)) = config::busiest_destination(cap) {
        return d;
    }
    let mut n: HashMap<IpAddr, usize> = HashMap::new();
    for (i, f) in cap.frames.iter().enumerate() {
        let fr = cap.frame(i);
        if let Some(l3) = input::locate_l3(f.linktype, fr)
            && let Ok(s) = PacketSummary::parse(&fr[l3.ip])
        {
            *n.entry(s.dst).or_default() += 1;
        }
    }
    let addr = n
        .into_iter()
        .max_by_key(|(a, c)| (*c, *a))
        .map(|(a, _)| a)
        .expect("every capture has some IP packet");
    Destination {
        protocol: proto::TCP,
        addr,
        port: 80,
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pcap_replay");
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

struct Run {
    report: report::Report,
    origins: Vec<(usize, Emitted)>,
    out: PathBuf,
}

fn run(cap: &input::Capture, name: &str, rules: &str, method: Method) -> Run {
    let setup = Setup::from_rules(rules.to_owned(), "test rules", cap.frames.len());
    let out = tmp(&format!("{name}.{}.pcap", method.name()));
    let f = std::io::BufWriter::new(std::fs::File::create(&out).unwrap());
    let mut w = output::Output::new(
        f,
        output::output_linktype(cap.linktype, cap.single_linktype),
    )
    .unwrap();
    let mut origins = Vec::new();
    let mut src = replay::CaptureSource {
        cap,
        path: name.to_owned(),
    };
    let report = replay::replay(
        &mut src,
        &setup,
        replay::Options {
            seed: SEED,
            scheduler: None,
            output: Some(&mut w),
            output_pass: false,
            churn: &[],
            progress: false,
            origins: Some(&mut origins),
        },
    )
    .unwrap_or_else(|e| panic!("{name} {method:?}: {e}"));
    use std::io::Write as _;
    w.finish().flush().unwrap();
    Run {
        report,
        origins,
        out,
    }
}

/// The IP packet of frame `i` of `cap`.
fn l3(cap: &input::Capture, i: usize) -> &[u8] {
    let f = cap.frames[i];
    let fr = cap.frame(i);
    let l = input::locate_l3(f.linktype, fr).expect("an emitted frame carried IP");
    &fr[l.ip]
}

/// Checks one capture replayed by one method; returns (output frames, frames checked
/// for checksums).
#[allow(clippy::too_many_lines, clippy::too_many_arguments)]
fn check_method(
    name: &str,
    cap: &input::Capture,
    dest: Destination,
    in_fields: &[Vec<String>],
    vip_count: usize,
    vip_malformed: usize,
    input_bad: &[bool],
    method: Method,
) -> (usize, usize) {
    let rules = config::default_rules(dest, method);
    let r = run(cap, name, &rules, method);
    let p = &r.report.packets;
    let ctx = format!("{name} by {}", method.name());
    let servers: Vec<SocketAddr> = config::default_servers(dest.addr.is_ipv6(), dest.port);
    let server_ips: Vec<String> = servers.iter().map(|s| s.ip().to_string()).collect();

    // Counts: the output holds what was forwarded or replied, one frame each.
    let got = fields(&r.out, None);
    assert_eq!(
        got.len() as u64,
        p.written,
        "{ctx}: tshark frames vs written"
    );
    assert_eq!(p.written, p.forwarded + p.replied, "{ctx}: written");
    assert_eq!(got.len(), r.origins.len(), "{ctx}: origins");
    assert_eq!(
        p.input,
        p.forwarded + p.local + p.passed + p.replied + p.dropped,
        "{ctx}: verdicts add up"
    );
    assert_eq!(p.input as usize, cap.frames.len(), "{ctx}: frames in");
    // Packets to the VIP (first layer, not ICMP) per tshark are the ones the Director
    // forwarded, answered, dropped (non-first fragments aside: they carry no port), or
    // passed as belonging to no connection it saw start. Where one side cannot read a
    // packet, a range: the engine's malformed drops may or may not be addressed to the
    // VIP, and tshark gives no port for packets it finds malformed (the engine, like
    // Linux, accepts e.g. an unknown IPv4 option of length 2).
    let frag = p.dropped_by_reason.get("fragment").copied().unwrap_or(0);
    let malformed = p.dropped_by_reason.get("malformed").copied().unwrap_or(0);
    let sure = p.forwarded + p.replied + p.passed_to_service + (p.dropped - frag - malformed);
    let vip = vip_count as u64;
    assert!(
        vip <= sure + malformed && sure <= vip + vip_malformed as u64,
        "{ctx}: tshark counts {vip} packets to the VIP (+ {vip_malformed} it finds malformed), the report {sure} (+ {malformed} malformed): {p:?}"
    );
    if malformed == 0 && vip_malformed == 0 {
        assert_eq!(vip, sure, "{ctx}");
    }

    let out_frames = if method == Method::Gue {
        common::read_capture(&r.out)
    } else {
        Vec::new()
    };
    let mut checked = 0;
    for (k, g) in got.iter().enumerate() {
        let (i, em) = r.origins[k];
        let fctx = format!("{ctx}: output frame {} (input frame {})", k + 1, i + 1);
        let is_bad = |c: &String| c.split(',').any(|v| v == "0");
        // Checksums: not judged where the input already had a bad one.
        if !input_bad[i] {
            checked += 1;
            assert!(!g[..4].iter().any(is_bad), "{fctx}: bad checksum {g:?}");
            if em != Emitted::Reply {
                assert!(
                    !g[4..7].iter().any(is_bad),
                    "{fctx}: bad transport checksum {g:?}"
                );
            }
        }
        let Emitted::Forward(next_hop, fm) = em else {
            // A generated ICMP error goes back to the sender.
            let want_dst = PacketSummary::parse(l3(cap, i)).unwrap().src.to_string();
            let dst = if g[8].is_empty() { &g[10] } else { &g[8] };
            assert_eq!(first(dst), want_dst, "{fctx}: ICMP reply destination");
            continue;
        };
        assert!(
            servers.iter().any(|s| s.ip() == next_hop),
            "{fctx}: next hop {next_hop} is not a real server"
        );
        let w = &in_fields[i];
        let (dst_col, src_col) = if dest.addr.is_ipv6() { (10, 9) } else { (8, 7) };
        match method {
            Method::Nat => {
                assert_eq!(fm, ForwardMethod::Nat);
                assert!(
                    server_ips.iter().any(|s| s == first(&g[dst_col])),
                    "{fctx}: NAT output goes to {:?}, not a real server",
                    g[dst_col]
                );
                assert_eq!(g[src_col], w[src_col], "{fctx}: NAT keeps the client");
            }
            Method::Dr => {
                assert_eq!(fm, ForwardMethod::DirectRoute);
                assert_eq!(g[dst_col], w[dst_col], "{fctx}: DR keeps the packet");
                assert_eq!(&g[F_PORTS], &w[F_PORTS], "{fctx}: DR keeps the ports");
                if cap.linktype == input::LINKTYPE_ETHERNET {
                    let mac = output::server_mac(next_hop).0;
                    let mac = mac
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":");
                    assert_eq!(
                        first(&g[F_ETH_DST]),
                        mac,
                        "{fctx}: DR frame to the server's MAC"
                    );
                }
            }
            Method::Ipip | Method::Gre => {
                let dir = if dest.addr.is_ipv6() {
                    config::TUNNEL_SOURCE_V6.to_string()
                } else {
                    config::TUNNEL_SOURCE_V4.to_string()
                };
                assert_eq!(g[src_col], join(&dir, &w[src_col]), "{fctx}: outer source");
                assert_eq!(
                    g[dst_col],
                    join(&next_hop.to_string(), &w[dst_col]),
                    "{fctx}: outer destination + inner packet"
                );
                assert_eq!(&g[F_PORTS], &w[F_PORTS], "{fctx}: inner ports");
                let want = if method == Method::Gre {
                    ":gre:"
                } else if dest.addr.is_ipv6() {
                    ":ipv6:ipv6"
                } else {
                    ":ip:ip"
                };
                assert!(g[18].contains(want), "{fctx}: protocols {}", g[18]);
            }
            Method::Gue => {
                // tshark has no GUE decoder: check the layout (ipvs-semantics.md 6.4).
                let fr = &out_frames[k].data;
                let ol = input::locate_l3(out_frames[k].linktype, fr).unwrap();
                let o = &fr[ol.ip];
                let outer = PacketSummary::parse(o).unwrap();
                assert_eq!(outer.protocol, proto::UDP, "{fctx}: GUE is UDP");
                assert_eq!(outer.dst, next_hop, "{fctx}: to the real server");
                let udp = &o[outer.l4_offset..];
                assert_eq!(
                    u16::from_be_bytes([udp[2], udp[3]]),
                    config::GUE_PORT,
                    "{fctx}: GUE port"
                );
                let sport = u16::from_be_bytes([udp[0], udp[1]]);
                assert!(sport >= 1024, "{fctx}: source port from the flow hash");
                let gue = &udp[8..12];
                let inner = l3(cap, i);
                assert_eq!(gue[0], 0, "{fctx}: GUE version 0, C 0, hlen 0");
                let want_proto = if inner[0] >> 4 == 6 { 41 } else { 4 };
                assert_eq!(gue[1], want_proto, "{fctx}: GUE proto/ctype");
                assert_eq!(&gue[2..4], &[0, 0], "{fctx}: GUE flags");
                let got_inner = &udp[12..];
                assert_eq!(got_inner.len(), inner.len(), "{fctx}: inner length");
                let (a, b) = (
                    PacketSummary::parse(got_inner).unwrap(),
                    PacketSummary::parse(inner).unwrap(),
                );
                assert_eq!(
                    (a.src, a.dst, a.protocol, a.ports),
                    (b.src, b.dst, b.protocol, b.ports),
                    "{fctx}: GUE inner packet"
                );
                assert_eq!(a.ttl + 1, b.ttl, "{fctx}: TTL decremented once");
                // Byte for byte but the TTL (and IPv4 header checksum).
                let skip: &[usize] = if inner[0] >> 4 == 4 {
                    &[8, 10, 11]
                } else {
                    &[7]
                };
                for (j, (x, y)) in got_inner.iter().zip(inner).enumerate() {
                    assert!(skip.contains(&j) || x == y, "{fctx}: inner byte {j}");
                }
            }
        }
    }
    (got.len(), checked)
}

#[test]
fn every_capture_by_every_method_verifies_in_tshark() {
    let files = capture_files();
    let mut summary = String::new();
    let results: Vec<String> = std::thread::scope(|sc| {
        let chunks: Vec<Vec<PathBuf>> = (0..2)
            .map(|k| files.iter().skip(k).step_by(2).cloned().collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                sc.spawn(move || {
                    let mut lines = Vec::new();
                    for path in chunk {
                        let name = path.file_name().unwrap().to_string_lossy().into_owned();
                        let bytes = std::fs::read(&path).unwrap();
                        let cap = input::read_capture(&bytes)
                            .unwrap_or_else(|e| panic!("{name}: {e}"));
                        let dest = test_destination(&cap);
                        let in_fields = fields(&path, None);
                        assert_eq!(in_fields.len(), cap.frames.len(), "{name}: frames");
                        let (proto_name, fam) = match dest.protocol {
                            proto::TCP => ("tcp", ""),
                            proto::UDP => ("udp", ""),
                            _ => ("sctp", ""),
                        };
                        let _ = fam;
                        let ipf = if dest.addr.is_ipv6() { "ipv6" } else { "ip" };
                        let filter = format!(
                            "{ipf}.dst#1 == {} && {proto_name}.dstport#1 == {} && !icmp && !icmpv6",
                            dest.addr, dest.port
                        );
                        let vip_count = fields(&path, Some(&filter)).len();
                        let vip_malformed = fields(
                            &path,
                            Some(&format!("{ipf}.dst#1 == {} && _ws.malformed", dest.addr)),
                        )
                        .len();
                        let input_bad: Vec<bool> = (0..cap.frames.len())
                            .map(|i| {
                                let f = cap.frames[i];
                                input::locate_l3(f.linktype, cap.frame(i)).is_none_or(|l| {
                                    common::verify_packet(
                                        &cap.frame(i)[l.ip],
                                        common::VerifyOpts::default(),
                                    )
                                    .is_err()
                                })
                            })
                            .collect();
                        let mut per = Vec::new();
                        let t0 = std::time::Instant::now();
                        for m in Method::ALL {
                            let (n, checked) = check_method(
                                &name,
                                &cap,
                                dest,
                                &in_fields,
                                vip_count,
                                vip_malformed,
                                &input_bad,
                                m,
                            );
                            per.push(format!("{}={n}/{checked}", m.name()));
                        }
                        lines.push(format!(
                            "{name}: {dest}, {vip_count} to the VIP; output frames/checksum-checked {} ({:.1} s)",
                            per.join(" "),
                            t0.elapsed().as_secs_f64()
                        ));
                    }
                    lines
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a capture check failed"))
            .collect()
    });
    for l in &results {
        summary.push_str(l);
        summary.push('\n');
    }
    println!("{summary}");
    assert_eq!(results.len(), files.len());
    // The SYN flood must have been forwarded whole, by every method.
    assert!(
        results
            .iter()
            .any(|l| l.starts_with("stopddos") && l.contains("nat=37841/37841")),
        "{summary}"
    );
}

// ---------------------------------------------------------------- unit tests

/// `Director::handle_burst` on real traffic: every capture through two directors built
/// from the rules the tool makes for it (NAT and DR), one packet at a time and in bursts of
/// up to 32 consecutive packets (each burst, for both, at the time of its last packet).
/// Verdicts, bytes and events are equal packet for packet.
#[test]
fn bursts_equal_one_packet_at_a_time_on_every_capture() {
    use lvs::{Director, Instant, PacketBuf, PacketMeta, Verdict};
    let mut forwarded = 0;
    for path in capture_files() {
        let cap = input::read_capture(&std::fs::read(&path).unwrap()).unwrap();
        let packets: Vec<(i64, &[u8])> = (0..cap.frames.len())
            .filter_map(|i| {
                let fr = cap.frame(i);
                let l3 = input::locate_l3(cap.frames[i].linktype, fr)?;
                Some((cap.frames[i].ts_micros, &fr[l3.ip]))
            })
            .collect();
        for method in [Method::Nat, Method::Dr] {
            let rules = config::default_rules(test_destination(&cap), method);
            let cfg = lvs::Config::default();
            let mut one = Director::from_rules(cfg.clone(), [9; 32], &rules).unwrap();
            let mut many = Director::from_rules(cfg, [9; 32], &rules).unwrap();
            let mut now = Instant::from_micros(packets.first().map_or(0, |p| p.0));
            for (k, burst) in packets.chunks(32).enumerate() {
                now = now.max(Instant::from_micros(burst[burst.len() - 1].0));
                if one.poll_timeout().is_some_and(|t| t <= now) {
                    one.handle_timeout(now);
                    many.handle_timeout(now);
                }
                let mut ring: Vec<_> = burst
                    .iter()
                    .map(|(_, p)| PacketBuf::with_headroom(64, p))
                    .collect();
                let metas = vec![PacketMeta::default(); ring.len()];
                let mut verdicts = vec![Verdict::Pass; ring.len()];
                many.handle_burst(now, &mut ring, &metas, &mut verdicts)
                    .unwrap();
                for (i, (_, p)) in burst.iter().enumerate() {
                    let mut b = PacketBuf::with_headroom(64, p);
                    let v = one.handle_packet(now, &mut b, PacketMeta::default());
                    let at = format!("{} ({method:?}), burst {k}, packet {i}", path.display());
                    assert_eq!(v, verdicts[i], "{at}");
                    assert_eq!(b.packet(), ring[i].packet(), "{at}");
                    forwarded += usize::from(matches!(v, Verdict::Forward { .. }));
                }
                let events =
                    |d: &mut Director| core::iter::from_fn(|| d.poll_event()).collect::<Vec<_>>();
                assert_eq!(events(&mut one), events(&mut many), "{}", path.display());
            }
            assert_eq!(one.conns().len(), many.conns().len());
        }
    }
    eprintln!("bursts on every capture: {forwarded} packets forwarded, all as one at a time");
    assert!(forwarded > 10_000, "{forwarded}");
}

#[test]
fn format_is_told_by_magic_not_extension() {
    use input::{Format, InputError, detect_format};
    assert_eq!(
        detect_format(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]).unwrap(),
        Format::Pcap
    );
    assert_eq!(
        detect_format(&[0xa1, 0xb2, 0xc3, 0xd4]).unwrap(),
        Format::Pcap
    );
    assert_eq!(
        detect_format(&[0x4d, 0x3c, 0xb2, 0xa1]).unwrap(),
        Format::Pcap
    );
    assert_eq!(
        detect_format(&[0x0a, 0x0d, 0x0d, 0x0a, 9]).unwrap(),
        Format::PcapNg
    );
    assert!(matches!(
        detect_format(b"GIF89a"),
        Err(InputError::UnknownMagic(_))
    ));
    assert!(matches!(detect_format(&[1, 2]), Err(InputError::TooShort)));
    // The real pcapng of the shared captures reads as pcapng, the others as pcap.
    for p in capture_files() {
        let b = std::fs::read(&p).unwrap();
        let want = if p.to_string_lossy().ends_with(".pcapng") {
            Format::PcapNg
        } else {
            Format::Pcap
        };
        assert_eq!(detect_format(&b).unwrap(), want, "{}", p.display());
    }
    // A pcap renamed .pcapng is still a pcap: read_capture goes by content.
    let b = std::fs::read(Path::new(PCAP_DIR).join("zeek__smtp.pcap")).unwrap();
    let c = input::read_capture(&b).unwrap();
    assert_eq!((c.linktype, c.frames.len()), (1, 125));
    assert!(matches!(
        input::read_capture(b"not a capture at all"),
        Err(InputError::UnknownMagic(_))
    ));
}

#[test]
fn pcapng_timestamps_are_microseconds() {
    let b = std::fs::read(Path::new(PCAP_DIR).join("libtrace__100_packets.pcapng")).unwrap();
    let c = input::read_capture(&b).unwrap();
    assert_eq!(c.frames.len(), 100);
    // tshark's epoch time of the first frame, to the microsecond.
    let t = tshark(&[
        "-r",
        &Path::new(PCAP_DIR)
            .join("libtrace__100_packets.pcapng")
            .to_string_lossy(),
        "-c",
        "1",
        "-T",
        "fields",
        "-e",
        "frame.time_epoch",
    ]);
    let secs: f64 = t.trim().parse().unwrap();
    assert!(
        ((c.frames[0].ts_micros as f64 / 1e6) - secs).abs() < 1e-5,
        "{t}"
    );
}

#[test]
fn link_layers_are_stripped() {
    let ip = lvs::fuzzing::sample_tcp_v4();
    // Linux SLL: 16 bytes, protocol at 14.
    let mut sll = vec![0u8; 16];
    sll[14..16].copy_from_slice(&0x0800u16.to_be_bytes());
    sll.extend_from_slice(&ip);
    let l = input::locate_l3(input::LINKTYPE_LINUX_SLL, &sll).unwrap();
    assert_eq!((l.l2_len, &sll[l.ip.clone()]), (16, &ip[..]));
    // SLL2: 20 bytes, protocol at 0.
    let mut sll2 = vec![0u8; 20];
    sll2[0..2].copy_from_slice(&0x0800u16.to_be_bytes());
    sll2.extend_from_slice(&ip);
    let l = input::locate_l3(input::LINKTYPE_LINUX_SLL2, &sll2).unwrap();
    assert_eq!((l.l2_len, &sll2[l.ip.clone()]), (20, &ip[..]));
    // Ethernet with an 802.1Q tag and padding behind the packet.
    let mut eth = vec![0u8; 12];
    eth.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x08, 0x00]);
    eth.extend_from_slice(&ip);
    eth.extend_from_slice(&[0; 6]);
    let l = input::locate_l3(input::LINKTYPE_ETHERNET, &eth).unwrap();
    assert_eq!((l.l2_len, &eth[l.ip.clone()]), (18, &ip[..]));
    assert_eq!(
        input::ethertype_offset(input::LINKTYPE_ETHERNET, 18),
        Some(16)
    );
    // ARP is not IP; an unknown SLL protocol neither.
    let mut arp = vec![0u8; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    assert!(input::locate_l3(input::LINKTYPE_ETHERNET, &arp).is_none());
    sll[14..16].copy_from_slice(&0x0806u16.to_be_bytes());
    assert!(input::locate_l3(input::LINKTYPE_LINUX_SLL, &sll).is_none());
    // Raw IP as is.
    let l = input::locate_l3(input::LINKTYPE_RAW, &ip).unwrap();
    assert_eq!((l.l2_len, l.ip), (0, 0..ip.len()));
}

#[test]
fn output_rewraps_in_the_input_link_type() {
    let ip4 = lvs::fuzzing::sample_tcp_v4();
    let ip6 = lvs::fuzzing::sample_udp_v6_long_hop_by_hop();
    let mut sll = vec![0u8; 16];
    sll[14..16].copy_from_slice(&0x0800u16.to_be_bytes());
    let mut w = output::Output::new(Vec::new(), input::LINKTYPE_LINUX_SLL).unwrap();
    // A 4in6 tunnel turns an IPv4 frame into IPv6: the protocol field follows.
    w.write(1, input::LINKTYPE_LINUX_SLL, &sll, &ip6, None)
        .unwrap();
    let bytes = w.finish();
    let c = input::read_capture(&bytes).unwrap();
    assert_eq!(c.linktype, input::LINKTYPE_LINUX_SLL);
    let f = c.frame(0);
    assert_eq!(&f[14..16], &0x86ddu16.to_be_bytes());
    assert_eq!(&f[16..], &ip6[..]);
    // Ethernet DR: MACs rewritten towards the server, from the director.
    let mut eth = vec![0xaa; 6];
    eth.extend_from_slice(&[0xbb; 6]);
    eth.extend_from_slice(&[0x08, 0x00]);
    let mut w = output::Output::new(Vec::new(), input::LINKTYPE_ETHERNET).unwrap();
    let rs: IpAddr = "10.200.0.2".parse().unwrap();
    w.write(1, 1, &eth, &ip4, Some(rs)).unwrap();
    let bytes = w.finish();
    let c = input::read_capture(&bytes).unwrap();
    let f = c.frame(0);
    assert_eq!(&f[..6], &[2, 0, 10, 200, 0, 2]);
    assert_eq!(&f[6..12], &[0xaa; 6]);
    assert_eq!(&f[14..], &ip4[..]);
}

#[test]
fn churn_scripts_parse_and_errors_name_the_line() {
    use churn::{At, ChurnErrorKind, Op};
    let s = "# a script\n\n2.5 remove 10.200.0.2:80\n3 add 10.200.0.4:80 weight 2 method dr # new\n4.0 weight [fd00::1]:80 0 on [2001:db8::1]:80\n@1700000005.5 add 10.0.0.9:80\n";
    let v = churn::parse(s).unwrap();
    assert_eq!(v.len(), 4);
    assert_eq!(
        (v[0].line, v[0].at, v[0].op),
        (3, At::Relative(2.5), Op::Remove)
    );
    assert_eq!(
        v[1].op,
        Op::Add {
            weight: 2,
            method: Some(Method::Dr)
        }
    );
    assert_eq!(v[2].op, Op::Weight(0));
    assert_eq!(v[2].on, Some("[2001:db8::1]:80".parse().unwrap()));
    assert_eq!(v[3].at, At::Absolute(1_700_000_005.5));
    assert_eq!(v[3].at.micros(0), 1_700_000_005_500_000);
    assert_eq!(At::Relative(1.5).micros(10), 1_500_010);
    let err = |t: &str| churn::parse(t).unwrap_err();
    let e = err("1 remove 10.0.0.1:80\n\nx remove 10.0.0.1:80\n");
    assert_eq!((e.line, &e.kind), (3, &ChurnErrorKind::BadTime("x".into())));
    assert!(e.to_string().starts_with("churn script line 3: bad time"));
    assert_eq!(
        err("1 drain 10.0.0.1:80").kind,
        ChurnErrorKind::UnknownOp("drain".into())
    );
    assert_eq!(
        err("1 remove").kind,
        ChurnErrorKind::Missing("server ADDR:PORT")
    );
    assert_eq!(
        err("1 remove 10.0.0.1").kind,
        ChurnErrorKind::BadAddress("10.0.0.1".into())
    );
    assert_eq!(
        err("1 weight 10.0.0.1:80").kind,
        ChurnErrorKind::Missing("weight")
    );
    assert_eq!(
        err("1 weight 10.0.0.1:80 70000").kind,
        ChurnErrorKind::BadWeight("70000".into())
    );
    assert_eq!(
        err("1 add 10.0.0.1:80 method vxlan").kind,
        ChurnErrorKind::BadMethod("vxlan".into())
    );
    assert_eq!(
        err("1 remove 10.0.0.1:80 now").kind,
        ChurnErrorKind::Unexpected("now".into())
    );
    let e = err("2 remove 10.0.0.1:80\n1 remove 10.0.0.2:80");
    assert_eq!((e.line, e.kind), (2, ChurnErrorKind::TimeGoesBack));
    assert_eq!(
        err("-1 remove 10.0.0.1:80").kind,
        ChurnErrorKind::BadTime("-1".into())
    );
}

#[test]
fn churn_moves_flows_only_when_servers_change() {
    // The built-in workload with two servers removed and one added half-way.
    let mut w = workload::Workload::generate(30_000, 3);
    let setup = Setup::from_rules(workload::builtin_rules(Method::Nat), "built-in", 30_000);
    let script = churn::parse(
        "0.5 remove 10.200.0.5:80\n0.5 add 10.200.0.9:80 weight 4\n0.7 weight 10.200.0.1:80 0\n",
    )
    .unwrap();
    let run = |script: &[churn::Change], w: &mut workload::Workload| {
        replay::replay::<_, Vec<u8>>(
            w,
            &setup,
            replay::Options {
                seed: SEED,
                scheduler: None,
                output: None,
                output_pass: false,
                churn: script,
                progress: false,
                origins: None,
            },
        )
        .unwrap()
    };
    let r = run(&script, &mut w);
    let ch = r.churn.as_ref().unwrap();
    assert_eq!(ch.changes.len(), 3);
    assert_eq!(ch.changes[0].services, 1, "{ch:?}");
    // "add" goes to every IPv4 service: TCP 80 and UDP 53.
    assert_eq!(ch.changes[1].services, 2, "{ch:?}");
    assert!(ch.flows_across_change > 0);
    // Connections stay on their server (the table pins them); flows of the removed
    // server are dropped (expire_nodest_conn off), none moves.
    assert_eq!(ch.flows_moved, 0, "{ch:?}");
    assert!(ch.flows_broken > 0, "{ch:?}");
    let svc = &r.services[0];
    let removed = svc.servers.iter().find(|s| s.removed).unwrap();
    assert_eq!(removed.server, "10.200.0.5:80");
    assert!(
        svc.servers
            .iter()
            .any(|s| s.server == "10.200.0.9:80" && s.conns > 0)
    );
    assert!(
        r.packets
            .dropped_by_reason
            .get("server removed")
            .copied()
            .unwrap_or(0)
            > 0
    );
    // Without churn nothing is tracked.
    let r0 = run(&[], &mut w);
    assert!(r0.churn.is_none());
    assert_eq!(r0.packets.dropped, 0);
}

#[test]
fn service_files_in_toml_and_json() {
    let toml = r#"
[director]
conn_capacity = 4096
tunnel_source_v4 = "192.0.2.254"
timeouts = { tcp = 60 }

[[service]]
protocol = "tcp"
address = "10.10.10.10:80"
scheduler = "sh"
persistence = 300
netmask = "255.255.255.0"
method = "gue"

[[service.server]]
address = "10.200.0.1:80"
weight = 3

[[service.server]]
address = "10.200.0.2:80"
method = "dr"
upper_threshold = 100
"#;
    let f = config::parse_service_file(toml).unwrap();
    let s = Setup::from_file(&f, "t", 10).unwrap();
    assert_eq!(s.config.conn_capacity, 4096);
    assert_eq!(
        s.rules,
        "-A -t 10.10.10.10:80 -s sh -p 300 -M 255.255.255.0\n\
         -a -t 10.10.10.10:80 -r 10.200.0.1:80 -i --tun-type gue --tun-port 6080 --tun-csum -w 3\n\
         -a -t 10.10.10.10:80 -r 10.200.0.2:80 -g -w 1 -x 100\n"
    );
    let d = s.build(SEED, None).unwrap();
    let (_, svc) = d.services().next().unwrap();
    assert_eq!(svc.config().persistence, Some(300));
    assert_eq!(svc.pool().dests().len(), 2);
    // The override replaces the scheduler.
    let d = s
        .build(SEED, Some(lvs::service::SchedulerName::Mh))
        .unwrap();
    assert_eq!(
        d.services().next().unwrap().1.config().scheduler,
        lvs::service::SchedulerName::Mh
    );

    let json = r#"{"service": [{"protocol": "udp", "address": "[2001:db8::53]:53",
        "servers": [{"address": "[fd00::1]:53"}]}]}"#;
    let f = config::parse_service_file(json).unwrap();
    let s = Setup::from_file(&f, "j", 10).unwrap();
    assert_eq!(
        s.rules,
        "-A -u [2001:db8::53]:53 -s wlc\n-a -u [2001:db8::53]:53 -r [fd00::1]:53 -m -w 1\n"
    );
    s.build(SEED, None).unwrap();

    // Typed errors.
    let e = config::parse_service_file("[[service]]\nprotocol = 1\n").unwrap_err();
    assert!(matches!(e, config::ConfigError::Toml(_)), "{e}");
    let e = config::parse_service_file("{\"service\": [}").unwrap_err();
    assert!(matches!(e, config::ConfigError::Json(_)), "{e}");
    let e = config::parse_service_file(
        "[[service]]\nprotocol = \"tcp\"\naddress = \"1.2.3.4:80\"\nbogus = 1\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("bogus"), "{e}");
    let f =
        config::parse_service_file("[[service]]\nprotocol = \"icmp\"\naddress = \"1.2.3.4:80\"\n")
            .unwrap();
    let e = Setup::from_file(&f, "x", 1).unwrap_err();
    assert!(
        matches!(e, config::ConfigError::Invalid { service: 0, .. }),
        "{e}"
    );
    let f = config::parse_service_file(
        "[[service]]\nprotocol = \"tcp\"\naddress = \"1.2.3.4:80\"\nscheduler = \"fastest\"\n",
    )
    .unwrap();
    assert!(Setup::from_file(&f, "x", 1).is_err());
    assert!(matches!(
        Setup::from_file(&config::ServiceFile::default(), "x", 1),
        Err(config::ConfigError::NoService)
    ));
    // The engine's refusal (a server twice) is typed too.
    let f = config::parse_service_file(
        "[[service]]\nprotocol = \"tcp\"\naddress = \"1.2.3.4:80\"\n[[service.server]]\naddress = \"10.0.0.1:80\"\n[[service.server]]\naddress = \"10.0.0.1:80\"\n",
    )
    .unwrap();
    let e = Setup::from_file(&f, "x", 1)
        .unwrap()
        .build(SEED, None)
        .unwrap_err();
    assert!(matches!(e, config::ConfigError::Rules(_)), "{e}");
}

#[test]
fn zipf_workload_is_decided_by_its_seed() {
    let z = workload::Zipf::new(100, 1.2);
    let mut r = workload::Rng::new(5);
    let xs: Vec<usize> = (0..20_000).map(|_| z.sample(&mut r)).collect();
    assert!(xs.iter().all(|x| (1..=100).contains(x)));
    // P(1) = 1 / H(100, 1.2) ≈ 0.257; P(1) / P(2) = 2^1.2 ≈ 2.30.
    let c = |k| xs.iter().filter(|x| **x == k).count() as f64;
    assert!((c(1) / 20_000.0 - 0.257).abs() < 0.02, "{}", c(1));
    assert!((c(1) / c(2) - 2.30).abs() < 0.25, "{}", c(1) / c(2));

    let digest = |seed| {
        let mut w = workload::Workload::generate(5_000, seed);
        let mut h = 0u64;
        let mut last = i64::MIN;
        for i in 0..w.len() {
            let (ts, p) = w.packet(i);
            assert!(ts >= last, "timestamps in order");
            last = ts;
            // Every packet is valid, with correct checksums.
            assert!(common::verify_packet(p, common::VerifyOpts::default()).is_ok());
            for b in p {
                h = h.wrapping_mul(0x100_0000_01b3) ^ u64::from(*b);
            }
            h ^= ts as u64;
        }
        (w.len(), h)
    };
    assert_eq!(digest(1), digest(1));
    assert_ne!(digest(1), digest(2));
    assert_eq!(digest(1).0, 5_000);
}

#[test]
fn report_math() {
    use report::{cv, max_mean};
    assert_eq!(cv(&[5.0, 5.0, 5.0]), Some(0.0));
    assert_eq!(max_mean(&[5.0, 5.0, 5.0]), Some(1.0));
    // mean 2, population sd 1 (values 1 and 3).
    assert_eq!(cv(&[1.0, 3.0]), Some(0.5));
    assert_eq!(max_mean(&[1.0, 3.0]), Some(1.5));
    assert_eq!(max_mean(&[0.0, 0.0, 6.0]), Some(3.0));
    assert!((cv(&[0.0, 0.0, 6.0]).unwrap() - 2f64.sqrt()).abs() < 1e-12);
    assert_eq!(cv(&[]), None);
    assert_eq!(cv(&[0.0, 0.0]), None);
    assert_eq!(max_mean(&[]), None);
}

#[test]
fn report_json_shape_and_compare() {
    let mut w = workload::Workload::generate(20_000, 9);
    let setup = Setup::from_rules(workload::builtin_rules(Method::Nat), "built-in", 20_000);
    let mut reports = Vec::new();
    for s in [
        lvs::service::SchedulerName::Rr,
        lvs::service::SchedulerName::Wrr,
    ] {
        let r = replay::replay::<_, Vec<u8>>(
            &mut w,
            &setup,
            replay::Options {
                seed: SEED,
                scheduler: Some(s),
                output: None,
                output_pass: false,
                churn: &[],
                progress: false,
                origins: None,
            },
        )
        .unwrap();
        reports.push(r);
    }
    let v = serde_json::to_value(&reports[0]).unwrap();
    for k in [
        "input",
        "setup",
        "scheduler_override",
        "packets",
        "connections",
        "events",
        "services",
        "churn",
        "capture_seconds",
    ] {
        assert!(v.get(k).is_some(), "JSON lacks {k}: {v}");
    }
    assert_eq!(v["packets"]["input"], 20_000);
    assert_eq!(v["scheduler_override"], "rr");
    let svc = &v["services"][0];
    assert_eq!(svc["service"], "TCP  192.0.2.80:80");
    assert_eq!(svc["servers"].as_array().unwrap().len(), 5);
    for k in [
        "server", "weight", "method", "conns", "packets", "bytes", "share",
    ] {
        assert!(svc["servers"][0].get(k).is_some(), "server lacks {k}");
    }
    for k in ["cv", "max_mean", "cv_per_weight", "max_mean_per_weight"] {
        assert!(svc["imbalance"][k].is_number(), "imbalance lacks {k}");
    }
    // Shares add up to 1; rr spreads connections evenly, wrr by weight (1 1 2 3 5).
    let shares: f64 = reports[0].services[0].servers.iter().map(|s| s.share).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    let rr = &reports[0].services[0].imbalance;
    let wrr = &reports[1].services[0].imbalance;
    assert!(rr.cv.unwrap() < 0.01, "{rr:?}");
    assert!(wrr.cv_per_weight.unwrap() < 0.05, "{wrr:?}");
    assert!(wrr.cv.unwrap() > 0.5, "{wrr:?}");
    let conns: u64 = reports[0].services.iter().map(|s| s.conns).sum();
    assert_eq!(conns, reports[0].connections.created);
    // Side by side and the chart name every scheduler and server.
    let t = report::render_compare(&reports);
    assert!(t.lines().next().unwrap().contains("input:"));
    assert!(
        t.contains("scheduler") && t.contains(" rr") && t.contains("wrr"),
        "{t}"
    );
    assert!(t.contains("10.200.0.5:80 w5"), "{t}");
    let svg = svg::chart(&reports);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(
        svg.matches("<rect x=").count(),
        2 * 15 + 5 * 3,
        "bars + legend"
    );
    let one = report::render(&reports[0]);
    assert!(one.contains("imbalance: CV"), "{one}");
}

#[test]
fn persistence_hits_are_counted() {
    // Clients of the workload come back (Zipf): with persistence, later connections of
    // a client find its template.
    let rules = "-A -t 192.0.2.80:80 -s rr -p 300\n\
                 -a -t 192.0.2.80:80 -r 10.200.0.1:80 -m -w 1\n\
                 -a -t 192.0.2.80:80 -r 10.200.0.2:80 -m -w 1\n";
    let setup = Setup::from_rules(rules.into(), "p", 20_000);
    let mut w = workload::Workload::generate(20_000, 4);
    let r = replay::replay::<_, Vec<u8>>(
        &mut w,
        &setup,
        replay::Options {
            seed: SEED,
            scheduler: None,
            output: None,
            output_pass: false,
            churn: &[],
            progress: false,
            origins: None,
        },
    )
    .unwrap();
    let c = &r.connections;
    // Every connection is either; misses are the distinct clients (one template each,
    // none expires within the 300 s).
    assert_eq!(c.persistence_hits + c.persistence_misses, c.created);
    assert!(c.persistence_hits > 0 && c.persistence_misses > 0, "{c:?}");
    let templates = r.connections.in_table_at_end - (c.created - c.expired);
    assert_eq!(templates, c.persistence_misses, "{c:?}");
}
