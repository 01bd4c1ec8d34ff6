//! Instruction counts per rewrite, for figures that do not depend on machine noise.
//!
//! Run under callgrind as `scripts/icount.sh`: each rewrite runs `N` times on a warm
//! packet, once with N = 0 and once with N = 10 000, and the difference of the two totals
//! divided by 10 000 is the cost of one rewrite. Under `cargo test --benches` or
//! `cargo bench` it runs every kind once as a smoke test.

use lvs::forward::{dr, nat, tunnel};
use lvs::wire::MacAddr;
use std::hint::black_box;
use std::net::IpAddr;

/// The rewrites measured, by name.
pub const KINDS: &[&str] = &["nat_inbound", "ipip_encap", "gue_encap", "dr_macs"];

fn run(kind: &str, n: u64) {
    let rips: [IpAddr; 2] = [IpAddr::from([10, 0, 0, 2]), IpAddr::from([10, 0, 0, 3])];
    let pkt = lvs::fuzzing::sample_tcp_v4();
    match kind {
        "nat_inbound" => {
            let mut p = pkt;
            for i in 0..n {
                let f = (i & 1) as usize;
                nat::inbound(black_box(&mut p[..]), rips[f], 8080 + f as u16).unwrap();
            }
        }
        "ipip_encap" | "gue_encap" => {
            let kind = if kind == "ipip_encap" {
                tunnel::TunnelKind::Ipip
            } else {
                tunnel::TunnelKind::Gue {
                    port: 6080,
                    checksum: tunnel::GueChecksum::None,
                }
            };
            let t = tunnel::Tunnel::new(kind, IpAddr::from([192, 0, 2, 254]), rips[0]);
            let mut buf = lvs::PacketBuf::with_headroom(64, &pkt);
            let start = buf.headroom();
            let len = buf.len();
            for i in 0..n {
                buf.set_range(start, start + len).unwrap();
                tunnel::encapsulate(black_box(&mut buf), &t, i as u16).unwrap();
            }
        }
        "dr_macs" => {
            let mut f = [0u8; 14 + 64];
            f[12..14].copy_from_slice(&[0x08, 0x00]);
            f[14..].copy_from_slice(&pkt);
            for i in 0..n {
                let m = MacAddr([2, 0, 0, 0, 0, i as u8]);
                dr::rewrite_macs(black_box(&mut f[..]), m, MacAddr([2; 6])).unwrap();
            }
        }
        other => panic!("unknown kind {other}; one of {KINDS:?}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    match args.as_slice() {
        [kind, n] => run(kind, n.parse().expect("N is a number")),
        _ => {
            for k in KINDS {
                run(k, 1);
            }
        }
    }
}
