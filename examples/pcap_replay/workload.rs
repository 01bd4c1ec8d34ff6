//! The built-in workload: client traffic generated in memory from a seed.
//!
//! Many clients (IPv4 `198.18.0.0/15`, IPv6 `2001:db8:c::/48`; the busier clients chosen by
//! a Zipf law, as real client populations are), flows whose sizes follow a Zipf law (most
//! flows are short, a few are long), Poisson flow arrivals and a per-flow round-trip time:
//!
//! - TCP to `192.0.2.80:80` and `[2001:db8::80]:80`: SYN, the handshake's ACK, data
//!   segments (64, 512 or 1400 bytes), FIN, the last ACK;
//! - UDP to `192.0.2.53:53`: a few datagrams per flow.
//!
//! Only the client side is generated (what a director in DR or tunnel mode sees): the
//! real servers a reply would come from depend on the scheduler being compared. Packets
//! are built on demand from a compact schedule, so millions of packets cost 16 bytes each.

use crate::config::Method;
use lvs::checksum;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The generator's random numbers (SplitMix64: small, fast, and the same everywhere).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n.max(1))) >> 64) as u64
    }
}

/// Zipf's law over `1..=n`: P(k) ∝ 1 / k^s, sampled by inverting the cumulative table.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// The law over `1..=n` with exponent `s`.
    #[must_use]
    pub fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n.max(1));
        let mut acc = 0.0;
        for k in 1..=n.max(1) {
            acc += 1.0 / (k as f64).powf(s);
            cdf.push(acc);
        }
        for c in &mut cdf {
            *c /= acc;
        }
        Self { cdf }
    }

    /// A value in `1..=n`.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf
            .partition_point(|c| *c <= u)
            .min(self.cdf.len() - 1)
            + 1
    }
}

/// The built-in services, in ipvsadm-save form: TCP on an IPv4 and an IPv6 VIP and DNS on
/// UDP, each with five real servers of weights 1, 1, 2, 3, 5, forwarded by `method`.
#[must_use]
pub fn builtin_rules(method: Method) -> String {
    const WEIGHTS: [u32; 5] = [1, 1, 2, 3, 5];
    let opts = method.ipvsadm_options(crate::config::GUE_PORT);
    let mut r = String::new();
    for (svc, v6, port) in [
        ("-t 192.0.2.80:80", false, 80),
        ("-t [2001:db8::80]:80", true, 80),
        ("-u 192.0.2.53:53", false, 53),
    ] {
        r.push_str(&format!("-A {svc} -s wlc\n"));
        for (i, w) in WEIGHTS.iter().enumerate() {
            let rs = if v6 {
                format!("[fd00:200::{}]:{port}", i + 1)
            } else {
                format!("10.200.0.{}:{port}", i + 1)
            };
            r.push_str(&format!("-a {svc} -r {rs} {opts} -w {w}\n"));
        }
    }
    r
}

const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x80);
const DNS4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

#[derive(Debug, Clone, Copy)]
struct Flow {
    client: u32,
    sport: u16,
    /// 0: TCP v4, 1: TCP v6, 2: UDP v4.
    kind: u8,
    isn: u32,
}

/// One scheduled packet: time, flow, what it is.
#[derive(Debug, Clone, Copy)]
struct Slot {
    ts: i64,
    flow: u32,
    /// TCP: 0 SYN, 1 ACK, 2 data, 3 FIN, 4 last ACK. UDP: 2.
    what: u8,
    /// Payload length.
    len: u16,
    /// Sequence offset from the ISN (TCP).
    seq: u32,
}

/// A generated workload.
#[derive(Debug, Clone)]
pub struct Workload {
    flows: Vec<Flow>,
    slots: Vec<Slot>,
    clients: u32,
    scratch: Vec<u8>,
}

/// The workload's first timestamp (2023-11-14 22:13:20 UTC).
pub const START_MICROS: i64 = 1_700_000_000_000_000;

impl Workload {
    /// About `packets` packets (exactly that many, the last flows cut as a capture window
    /// would cut them), all decided by `seed`.
    #[must_use]
    pub fn generate(packets: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let clients = (packets / 25).clamp(64, 1 << 20) as u32;
        let client_law = Zipf::new(clients as usize, 0.9);
        let tcp_size = Zipf::new(400, 1.3);
        let udp_size = Zipf::new(8, 1.5);
        let mut flows = Vec::new();
        let mut slots: Vec<Slot> = Vec::with_capacity(packets + 512);
        // Flows arrive as a Poisson process at about 2,000 flows a second.
        let mut start = START_MICROS;
        while slots.len() < packets {
            start += (-(1.0 - rng.unit()).ln() * 500.0) as i64;
            let r = rng.below(100);
            let kind = match r {
                0..55 => 0,
                55..80 => 1,
                _ => 2,
            };
            // Client index by popularity, then scattered over the address space.
            let client = (client_law.sample(&mut rng) - 1) as u32;
            let f = flows.len() as u32;
            flows.push(Flow {
                client,
                sport: 1024 + rng.below(64_000) as u16,
                kind,
                isn: rng.next_u64() as u32,
            });
            let rtt = 1_000 + rng.below(49_000) as i64;
            let mut t = start;
            let mut push = |t: i64, what: u8, len: u16, seq: u32| {
                slots.push(Slot {
                    ts: t,
                    flow: f,
                    what,
                    len,
                    seq,
                });
            };
            if kind == 2 {
                for _ in 0..udp_size.sample(&mut rng) {
                    push(t, 2, 40 + rng.below(60) as u16, 0);
                    t += rtt + rng.below(1_000) as i64;
                }
                continue;
            }
            push(t, 0, 0, 0);
            t += rtt;
            push(t, 1, 0, 1);
            let mut seq = 1u32;
            for _ in 0..tcp_size.sample(&mut rng) - 1 {
                let len = match rng.below(10) {
                    0..4 => 64,
                    4..8 => 512,
                    _ => 1400,
                };
                push(t, 2, len, seq);
                seq = seq.wrapping_add(u32::from(len));
                t += rtt / 4 + rng.below(500) as i64;
            }
            push(t, 3, 0, seq);
            push(t + rtt, 4, 0, seq.wrapping_add(1));
        }
        slots.sort_by_key(|s| (s.ts, s.flow, s.seq, s.what));
        slots.truncate(packets);
        Self {
            flows,
            slots,
            clients,
            scratch: vec![0u8; 2048],
        }
    }

    /// Number of packets.
    #[must_use]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there is no packet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Distinct client addresses it may use.
    #[must_use]
    pub const fn clients(&self) -> u32 {
        self.clients
    }

    /// The client address of client number `c`.
    #[must_use]
    pub fn client_addr(c: u32, v6: bool) -> IpAddr {
        // Scatter consecutive indices (an odd multiplier is a bijection mod 2^17).
        let x = c.wrapping_mul(0x9e37_79b1) & 0x1_ffff;
        if v6 {
            Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, (x >> 16) as u16, x as u16).into()
        } else {
            Ipv4Addr::from_bits(0xc612_0000 | x).into()
        }
    }

    /// Packet `i`: its timestamp (microseconds) and IP bytes.
    pub fn packet(&mut self, i: usize) -> (i64, &[u8]) {
        let s = self.slots[i];
        let f = self.flows[s.flow as usize];
        let v6 = f.kind == 1;
        let tcp = f.kind != 2;
        let l4_hdr = if tcp { 20 } else { 8 };
        let l3_hdr = if v6 { 40 } else { 20 };
        let l4_len = l4_hdr + usize::from(s.len);
        let total = l3_hdr + l4_len;
        let buf = &mut self.scratch[..total];
        let src = Self::client_addr(f.client, v6);
        let dst: IpAddr = match f.kind {
            0 => VIP4.into(),
            1 => VIP6.into(),
            _ => DNS4.into(),
        };
        let protocol = if tcp { 6 } else { 17 };
        // L4 first, into its place after the IP header.
        {
            let l4 = &mut buf[l3_hdr..];
            l4[0..2].copy_from_slice(&f.sport.to_be_bytes());
            if tcp {
                l4[2..4].copy_from_slice(&80u16.to_be_bytes());
                l4[4..8].copy_from_slice(&f.isn.wrapping_add(s.seq).to_be_bytes());
                let (ack, flags) = match s.what {
                    0 => (0u32, 0x02u8),
                    3 => (1, 0x11),
                    2 => (1, 0x18),
                    _ => (1, 0x10),
                };
                l4[8..12].copy_from_slice(&ack.to_be_bytes());
                l4[12] = 5 << 4;
                l4[13] = flags;
                l4[14..16].copy_from_slice(&65_535u16.to_be_bytes());
                l4[16..20].fill(0);
            } else {
                l4[2..4].copy_from_slice(&53u16.to_be_bytes());
                l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
                l4[6..8].fill(0);
            }
            l4[l4_hdr..l4_len].fill(s.flow as u8);
        }
        let pseudo = match (src, dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => checksum::pseudo_v4(a, b, protocol, l4_len as u16),
            (IpAddr::V6(a), IpAddr::V6(b)) => checksum::pseudo_v6(a, b, protocol, l4_len as u32),
            _ => 0,
        };
        let mut c = checksum::finish(checksum::add(pseudo, &buf[l3_hdr..]));
        if !tcp && c == 0 {
            c = 0xffff;
        }
        let at = l3_hdr + if tcp { 16 } else { 6 };
        buf[at..at + 2].copy_from_slice(&c.to_be_bytes());
        match (src, dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let h = &mut buf[..20];
                h[0] = 0x45;
                h[1] = 0;
                h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                h[4..6].copy_from_slice(&(i as u16).to_be_bytes());
                h[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
                h[8] = 64;
                h[9] = protocol;
                h[10..12].fill(0);
                h[12..16].copy_from_slice(&a.octets());
                h[16..20].copy_from_slice(&b.octets());
                let c = checksum::checksum(h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let h = &mut buf[..40];
                h[0..4].copy_from_slice(&0x6000_0000u32.to_be_bytes());
                h[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
                h[6] = protocol;
                h[7] = 64;
                h[8..24].copy_from_slice(&a.octets());
                h[24..40].copy_from_slice(&b.octets());
            }
            _ => {}
        }
        (s.ts, &self.scratch[..total])
    }
}
