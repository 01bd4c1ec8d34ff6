//! Helpers shared by the integration tests: an independent full-recompute checksum
//! verifier (written from the RFCs, using nothing from `lvs`) and pcap/pcapng I/O.
#![allow(dead_code)]

use std::fmt::Write as _;

/// One's-complement sum of `data` as 16-bit big-endian words, odd byte padded on the right.
pub fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut it = data.chunks_exact(2);
    for w in &mut it {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if let [b] = it.remainder() {
        acc += u32::from(*b) << 8;
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// RFC 1071 checksum of `data`.
pub fn inet_checksum(data: &[u8]) -> u16 {
    !fold(ones_sum(0, data))
}

/// Bitwise CRC32c (Castagnoli, reflected), as SCTP uses it.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Pseudo-header (RFC 793 / RFC 8200 8.1) partial sum.
pub fn pseudo_sum(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u32 {
    let mut acc = ones_sum(0, src);
    acc = ones_sum(acc, dst);
    acc = ones_sum(acc, &[0, proto]);
    let l = len as u32;
    ones_sum(
        acc,
        &[(l >> 24) as u8, (l >> 16) as u8, (l >> 8) as u8, l as u8],
    )
}

/// The value a transport checksum field must hold: the checksum computed with the field
/// zeroed. `at` is the offset of the checksum field in `l4`.
pub fn transport_checksum(src: &[u8], dst: &[u8], proto: u8, l4: &[u8], at: usize) -> u16 {
    let mut copy = l4.to_vec();
    copy[at] = 0;
    copy[at + 1] = 0;
    !fold(ones_sum(pseudo_sum(src, dst, proto, l4.len()), &copy))
}

/// SCTP CRC32c as stored (little-endian) in bytes 8..12.
pub fn sctp_checksum(l4: &[u8]) -> u32 {
    let mut copy = l4.to_vec();
    copy[8..12].fill(0);
    crc32c(&copy)
}

/// What [`verify_packet`] checked.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Number of checksums recomputed and found correct.
    pub checked: usize,
    /// The transport checksum could not be checked (fragment, unknown protocol).
    pub l4_unverifiable: bool,
}

/// Options for [`verify_packet`].
#[derive(Debug, Default, Clone, Copy)]
pub struct VerifyOpts<'a> {
    /// UDP destination ports that carry GUE (decoded and the inner packet verified).
    pub gue_ports: &'a [u16],
}

/// Verifies every checksum of the IP packet `p` (IP header at byte 0, `p` exactly the
/// packet or longer) by full recomputation: IPv4 header, TCP, UDP (zero allowed over IPv4
/// only; a stored value must never be a computed 0 written as 0), SCTP CRC32c,
/// ICMPv4, ICMPv6 (pseudo-header), the IPv4 header quoted in an ICMP error, GRE with the
/// checksum bit, and recursively the inner packet of IPIP/6in4/GRE/GUE.
pub fn verify_packet(p: &[u8], opts: VerifyOpts<'_>) -> Result<Verified, String> {
    let mut v = Verified::default();
    verify_inner(p, opts, &mut v, 0)?;
    Ok(v)
}

fn verify_inner(
    p: &[u8],
    opts: VerifyOpts<'_>,
    v: &mut Verified,
    depth: usize,
) -> Result<(), String> {
    if depth > 3 {
        return Err("encapsulated too deep".into());
    }
    let (src, dst, proto, l4, whole, family6) = split_ip(p)?;
    if let IpHead::V4 { hl } = head_kind(p) {
        if inet_checksum(&p[..hl]) != 0 {
            return Err(format!(
                "IPv4 header checksum {:#06x} does not verify",
                u16::from_be_bytes([p[10], p[11]])
            ));
        }
        v.checked += 1;
    }
    if !whole {
        v.l4_unverifiable = true;
        return Ok(());
    }
    match proto {
        6 => {
            if l4.len() < 20 {
                return Err("TCP header truncated".into());
            }
            let want = transport_checksum(src, dst, 6, l4, 16);
            let have = u16::from_be_bytes([l4[16], l4[17]]);
            if have != want && !(have == 0xffff && want == 0) && !(have == 0 && want == 0xffff) {
                return Err(format!(
                    "TCP checksum {have:#06x}, full recomputation gives {want:#06x}"
                ));
            }
            v.checked += 1;
        }
        17 => {
            if l4.len() < 8 {
                return Err("UDP header truncated".into());
            }
            let ulen = usize::from(u16::from_be_bytes([l4[4], l4[5]]));
            if ulen < 8 || ulen > l4.len() {
                return Err(format!(
                    "UDP length {ulen} inconsistent with {} bytes of payload",
                    l4.len()
                ));
            }
            let l4 = &l4[..ulen];
            let have = u16::from_be_bytes([l4[6], l4[7]]);
            let dport = u16::from_be_bytes([l4[2], l4[3]]);
            if have == 0 {
                // RFC 6935/6936: zero-checksum UDP tunnels over IPv6 are allowed.
                if family6 && !opts.gue_ports.contains(&dport) {
                    return Err("zero UDP checksum over IPv6".into());
                }
            } else {
                let c = transport_checksum(src, dst, 17, l4, 6);
                let want = if c == 0 { 0xffff } else { c };
                if have != want {
                    return Err(format!(
                        "UDP checksum {have:#06x}, full recomputation gives {want:#06x}"
                    ));
                }
                v.checked += 1;
            }
            if opts.gue_ports.contains(&dport) {
                let g = &l4[8..];
                if g.len() < 4 {
                    return Err("GUE header truncated".into());
                }
                let hl = 4 + usize::from(g[0] & 0x1f) * 4;
                if g.len() < hl {
                    return Err("GUE options truncated".into());
                }
                verify_inner(&g[hl..], opts, v, depth + 1)?;
            }
        }
        132 => {
            if l4.len() < 12 {
                return Err("SCTP header truncated".into());
            }
            let have = u32::from_le_bytes([l4[8], l4[9], l4[10], l4[11]]);
            let want = sctp_checksum(l4);
            if have != want {
                return Err(format!(
                    "SCTP CRC32c {have:#010x}, recomputation gives {want:#010x}"
                ));
            }
            v.checked += 1;
        }
        1 if !family6 => {
            if l4.len() < 8 {
                return Err("ICMP header truncated".into());
            }
            if inet_checksum(l4) != 0 {
                return Err(format!(
                    "ICMP checksum {:#06x} does not verify",
                    u16::from_be_bytes([l4[2], l4[3]])
                ));
            }
            v.checked += 1;
            if matches!(l4[0], 3 | 4 | 5 | 11 | 12) {
                let q = &l4[8..];
                if q.len() >= 20 && q[0] >> 4 == 4 {
                    let qhl = usize::from(q[0] & 0xf) * 4;
                    if qhl >= 20 && q.len() >= qhl {
                        if inet_checksum(&q[..qhl]) != 0 {
                            return Err("quoted IPv4 header checksum does not verify".into());
                        }
                        v.checked += 1;
                    }
                }
            }
        }
        58 if family6 => {
            if l4.len() < 8 {
                return Err("ICMPv6 header truncated".into());
            }
            let want = transport_checksum(src, dst, 58, l4, 2);
            let have = u16::from_be_bytes([l4[2], l4[3]]);
            if have != want && !(have == 0xffff && want == 0) {
                return Err(format!(
                    "ICMPv6 checksum {have:#06x}, full recomputation gives {want:#06x}"
                ));
            }
            v.checked += 1;
        }
        4 | 41 => verify_inner(l4, opts, v, depth + 1)?,
        47 => {
            if l4.len() < 4 {
                return Err("GRE header truncated".into());
            }
            let flags = l4[0];
            if flags & 0x80 != 0 {
                if inet_checksum(l4) != 0 {
                    return Err("GRE checksum does not verify".into());
                }
                v.checked += 1;
            }
            let hl = 4
                + 4 * usize::from(flags & 0x80 != 0)
                + 4 * usize::from(flags & 0x20 != 0)
                + 4 * usize::from(flags & 0x10 != 0);
            let ptype = u16::from_be_bytes([l4[2], l4[3]]);
            if (ptype == 0x0800 || ptype == 0x86dd) && l4.len() >= hl {
                verify_inner(&l4[hl..], opts, v, depth + 1)?;
            }
        }
        _ => v.l4_unverifiable = true,
    }
    Ok(())
}

enum IpHead {
    V4 { hl: usize },
    V6,
}

fn head_kind(p: &[u8]) -> IpHead {
    if p[0] >> 4 == 4 {
        IpHead::V4 {
            hl: usize::from(p[0] & 0xf) * 4,
        }
    } else {
        IpHead::V6
    }
}

/// Splits an IP packet: (src, dst, protocol, transport bytes, whole datagram?, is IPv6).
/// "Whole" is false for any fragment (first or not): its transport checksum covers bytes
/// that are not here.
#[allow(clippy::type_complexity)]
pub fn split_ip(p: &[u8]) -> Result<(&[u8], &[u8], u8, &[u8], bool, bool), String> {
    if p.is_empty() {
        return Err("empty packet".into());
    }
    match p[0] >> 4 {
        4 => {
            if p.len() < 20 {
                return Err("IPv4 header truncated".into());
            }
            let hl = usize::from(p[0] & 0xf) * 4;
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            if hl < 20 || total < hl || total > p.len() {
                return Err(format!(
                    "IPv4 IHL {hl} / total length {total} / buffer {}",
                    p.len()
                ));
            }
            let fo = u16::from_be_bytes([p[6], p[7]]);
            let whole = fo & 0x3fff == 0;
            Ok((&p[12..16], &p[16..20], p[9], &p[hl..total], whole, false))
        }
        6 => {
            if p.len() < 40 {
                return Err("IPv6 header truncated".into());
            }
            let total = 40 + usize::from(u16::from_be_bytes([p[4], p[5]]));
            if total > p.len() {
                return Err(format!(
                    "IPv6 payload length runs past the buffer ({total} > {})",
                    p.len()
                ));
            }
            let mut next = p[6];
            let mut off = 40;
            let mut whole = true;
            loop {
                match next {
                    0 | 43 | 60 => {
                        if off + 2 > total {
                            return Err("IPv6 extension truncated".into());
                        }
                        let len = (usize::from(p[off + 1]) + 1) * 8;
                        next = p[off];
                        off += len;
                    }
                    44 => {
                        if off + 8 > total {
                            return Err("IPv6 fragment header truncated".into());
                        }
                        let w = u16::from_be_bytes([p[off + 2], p[off + 3]]);
                        if w & 0xfff9 != 0 {
                            whole = false;
                        }
                        next = p[off];
                        off += 8;
                        if w & 0xfff8 != 0 {
                            break;
                        }
                    }
                    _ => break,
                }
                if off > total {
                    return Err("IPv6 extension chain runs past the payload".into());
                }
            }
            Ok((&p[8..24], &p[24..40], next, &p[off..total], whole, true))
        }
        v => Err(format!("IP version {v}")),
    }
}

/// Hex dump for failure messages.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// One captured packet: link type and bytes.
pub struct Captured {
    /// LINKTYPE_* of the interface it was captured on.
    pub linktype: u32,
    /// Captured bytes.
    pub data: Vec<u8>,
}

/// Reads a pcap or pcapng file, detecting the format by magic number.
pub fn read_capture(path: &std::path::Path) -> Vec<Captured> {
    use pcap_file::pcap::PcapReader;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let magic = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    let mut out = Vec::new();
    match magic {
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => {
            let mut r =
                PcapReader::new(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let linktype = u32::from(r.header().datalink);
            while let Some(p) = r.next_packet() {
                let p = p.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                out.push(Captured {
                    linktype,
                    data: p.data.into_owned(),
                });
            }
        }
        0x0a0d_0d0a => {
            let mut r =
                PcapNgReader::new(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut links = Vec::new();
            while let Some(b) = r.next_block() {
                match b.unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
                    Block::InterfaceDescription(idb) => links.push(u32::from(idb.linktype)),
                    Block::EnhancedPacket(epb) => out.push(Captured {
                        linktype: links[epb.interface_id as usize],
                        data: epb.data.into_owned(),
                    }),
                    Block::SimplePacket(spb) => out.push(Captured {
                        linktype: links[0],
                        data: spb.data.into_owned(),
                    }),
                    _ => {}
                }
            }
        }
        m => panic!("{}: unknown capture magic {m:#010x}", path.display()),
    }
    out
}

/// Writes raw IP packets (LINKTYPE_RAW, 101) to a classic pcap file.
pub fn write_raw_pcap(path: &std::path::Path, packets: &[Vec<u8>]) {
    use pcap_file::DataLink;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let header = PcapHeader {
        datalink: DataLink::RAW,
        snaplen: 262_144,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(f, header).unwrap();
    for (i, p) in packets.iter().enumerate() {
        let pkt = PcapPacket::new(
            std::time::Duration::from_micros(i as u64),
            p.len() as u32,
            p,
        );
        w.write_packet(&pkt).unwrap();
    }
}

/// Like [`split_ip`] for a quoted packet whose lengths describe a longer original: the
/// transport bytes are whatever follows the header(s) in `p`.
#[allow(clippy::type_complexity)]
pub fn split_ip_header_only(p: &[u8]) -> Option<(&[u8], &[u8], u8, &[u8], bool, bool)> {
    let mut fixed = p.to_vec();
    match p.first()? >> 4 {
        4 => fixed[2..4].copy_from_slice(&(p.len() as u16).to_be_bytes()),
        6 => fixed[4..6].copy_from_slice(&(p.len().checked_sub(40)? as u16).to_be_bytes()),
        _ => return None,
    }
    let (_, _, proto, l4, whole, v6) = split_ip(&fixed).ok()?;
    let off = p.len() - l4.len();
    Some((&p[12..16], &p[16..20], proto, &p[off..], whole, v6))
}

/// The shared captures, read in place.
pub const PCAP_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pcaps");

/// Every capture file in [`PCAP_DIR`], sorted (all 16 of MANIFEST.tsv must be there).
pub fn capture_files() -> Vec<std::path::PathBuf> {
    let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(PCAP_DIR)
        .unwrap_or_else(|e| {
            panic!("capture directory {PCAP_DIR} must exist beside the repository: {e}")
        })
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".pcap") || n.ends_with(".pcapng")
        })
        .collect();
    v.sort();
    assert!(
        v.len() >= 16,
        "expected the 16 captures of MANIFEST.tsv in {PCAP_DIR}, found {}",
        v.len()
    );
    v
}

/// Runs tshark with `args` and returns its standard output; panics if it fails.
pub fn tshark(args: &[&str]) -> String {
    let out = std::process::Command::new("tshark")
        .args(args)
        .output()
        .expect("tshark must be installed (apt-get install tshark); the test command installs it");
    assert!(
        out.status.success(),
        "tshark {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tshark output is UTF-8")
}

/// tshark options for checking what we wrote: verify IPv4, TCP, UDP and SCTP (CRC32c)
/// checksums, and no reassembly (every frame is judged on its own).
pub const TSHARK_CHECK_OPTS: [&str; 15] = [
    "-n",
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "tcp.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
    "-o",
    "sctp.checksum:CRC 32c",
    "-o",
    "ip.defragment:FALSE",
    "-o",
    "ipv6.defragment:FALSE",
    "-o",
    "tcp.desegment_tcp_streams:FALSE",
];

/// tshark `fields` of every frame of `file` (all occurrences, comma-separated), read with
/// [`TSHARK_CHECK_OPTS`], optionally only the frames matching the display `filter`.
pub fn tshark_fields(
    file: &std::path::Path,
    fields: &[&str],
    filter: Option<&str>,
) -> Vec<Vec<String>> {
    let f = file.to_str().expect("a UTF-8 path");
    let mut args: Vec<&str> = TSHARK_CHECK_OPTS.to_vec();
    args.extend([
        "-r",
        f,
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    if let Some(y) = filter {
        args.extend(["-Y", y]);
    }
    for x in fields {
        args.extend(["-e", x]);
    }
    tshark(&args)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}
