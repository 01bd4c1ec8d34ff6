//! The little ARP a director on a TAP device needs: answer for the virtual addresses,
//! learn neighbours from what it sees, and ask for a neighbour it does not know yet.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use lvs::wire::MacAddr;

/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
const ETH_LEN: usize = 14;
const ARP_LEN: usize = 28;
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;
/// The broadcast MAC.
pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

/// An ARP packet for IPv4 over Ethernet (RFC 826).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1 request, 2 reply.
    pub op: u16,
    /// Sender MAC and IPv4 address.
    pub sha: MacAddr,
    /// Sender IPv4 address.
    pub spa: Ipv4Addr,
    /// Target MAC.
    pub tha: MacAddr,
    /// Target IPv4 address.
    pub tpa: Ipv4Addr,
}

fn mac(b: &[u8]) -> MacAddr {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[..6]);
    MacAddr(m)
}

fn ip(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

impl Arp {
    /// Parses the ARP payload of an Ethernet frame (the bytes after the EtherType);
    /// `None` for anything that is not Ethernet/IPv4 ARP or is truncated.
    pub fn parse(p: &[u8]) -> Option<Self> {
        let p = p.get(..ARP_LEN)?;
        // htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4.
        if p[..6] != [0, 1, 8, 0, 6, 4] {
            return None;
        }
        Some(Self {
            op: u16::from_be_bytes([p[6], p[7]]),
            sha: mac(&p[8..14]),
            spa: ip(&p[14..18]),
            tha: mac(&p[18..24]),
            tpa: ip(&p[24..28]),
        })
    }

    /// The whole Ethernet frame carrying this packet from `src` to `dst`.
    pub fn frame(&self, dst: MacAddr, src: MacAddr) -> [u8; ETH_LEN + ARP_LEN] {
        let mut f = [0u8; ETH_LEN + ARP_LEN];
        f[..6].copy_from_slice(&dst.0);
        f[6..12].copy_from_slice(&src.0);
        f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        let p = &mut f[ETH_LEN..];
        p[..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
        p[6..8].copy_from_slice(&self.op.to_be_bytes());
        p[8..14].copy_from_slice(&self.sha.0);
        p[14..18].copy_from_slice(&self.spa.octets());
        p[18..24].copy_from_slice(&self.tha.0);
        p[24..28].copy_from_slice(&self.tpa.octets());
        f
    }
}

/// The neighbour table and the addresses this director answers for.
#[derive(Debug, Default)]
pub struct Neighbours {
    /// Our own MAC on the segment.
    pub mac: MacAddr,
    /// Sender address of the requests we send (0.0.0.0, an ARP probe, if none).
    pub source: Option<Ipv4Addr>,
    table: HashMap<Ipv4Addr, MacAddr>,
    /// Static entries (`--neigh`), never overwritten by what is learnt.
    fixed: HashMap<Ipv4Addr, MacAddr>,
}

impl Neighbours {
    /// A table for a director whose MAC is `mac`.
    pub fn new(mac: MacAddr, source: Option<Ipv4Addr>) -> Self {
        Self {
            mac,
            source,
            ..Self::default()
        }
    }

    /// Adds a static entry.
    pub fn add_static(&mut self, ip: Ipv4Addr, mac: MacAddr) {
        self.fixed.insert(ip, mac);
    }

    /// The MAC of `ip`, static entries first.
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        self.fixed.get(&ip).or_else(|| self.table.get(&ip)).copied()
    }

    /// Handles a received ARP packet: learns the sender (unless it claims one of
    /// `ours`, which only we answer for) and returns the reply frame to send if it asks
    /// for one of `ours`.
    pub fn receive(
        &mut self,
        payload: &[u8],
        ours: impl Fn(Ipv4Addr) -> bool,
    ) -> Option<[u8; ETH_LEN + ARP_LEN]> {
        let a = Arp::parse(payload)?;
        if !a.spa.is_unspecified() && !ours(a.spa) && a.sha != self.mac {
            self.table.insert(a.spa, a.sha);
        }
        if a.op == OP_REQUEST && ours(a.tpa) {
            let reply = Arp {
                op: OP_REPLY,
                sha: self.mac,
                spa: a.tpa,
                tha: a.sha,
                tpa: a.spa,
            };
            return Some(reply.frame(a.sha, self.mac));
        }
        None
    }

    /// A broadcast request for `ip`.
    pub fn request(&self, ip: Ipv4Addr) -> [u8; ETH_LEN + ARP_LEN] {
        Arp {
            op: OP_REQUEST,
            sha: self.mac,
            spa: self.source.unwrap_or(Ipv4Addr::UNSPECIFIED),
            tha: MacAddr([0; 6]),
            tpa: ip,
        }
        .frame(BROADCAST, self.mac)
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<MacAddr, String> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut m {
        let p = parts.next().ok_or_else(|| format!("bad MAC {s:?}"))?;
        *b = u8::from_str_radix(p, 16).map_err(|_| format!("bad MAC {s:?}"))?;
    }
    if parts.next().is_some() {
        return Err(format!("bad MAC {s:?}"));
    }
    Ok(MacAddr(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_for_ours_and_learns_others() {
        let me = parse_mac("02:00:00:00:00:fe").unwrap();
        let peer = parse_mac("02:00:00:00:00:01").unwrap();
        let mut n = Neighbours::new(me, None);
        let vip = Ipv4Addr::new(10, 0, 2, 100);
        let req = Arp {
            op: OP_REQUEST,
            sha: peer,
            spa: Ipv4Addr::new(10, 0, 1, 1),
            tha: MacAddr([0; 6]),
            tpa: vip,
        }
        .frame(BROADCAST, peer);
        let reply = n.receive(&req[ETH_LEN..], |a| a == vip).unwrap();
        let r = Arp::parse(&reply[ETH_LEN..]).unwrap();
        assert_eq!((r.op, r.sha, r.spa, r.tha), (OP_REPLY, me, vip, peer));
        assert_eq!(n.lookup(Ipv4Addr::new(10, 0, 1, 1)), Some(peer));
        assert!(n.receive(&req[ETH_LEN..], |_| false).is_none());
        assert!(parse_mac("02:00:00:00:00").is_err());
    }
}
