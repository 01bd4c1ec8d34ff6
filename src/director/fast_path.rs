//! The established-connection fast path: a TCP or UDP packet of a connection the table
//! already holds, handled from one lean pass over the headers, with no
//! [`PacketSummary`](crate::wire::PacketSummary) and no `IpAddr` built.
//!
//! It covers what dominates a director's traffic: client packets of NAT, direct-routing
//! and tunnel connections, and NAT replies. For everything else it returns `None`
//! having changed nothing, and the general path takes the packet: a new connection, a SYN
//! on an old one (`conn_reuse_mode`), a removed real server, a one-packet connection, an
//! ICMP error, a fragment, IPv4 options, IPv6 extension headers, SCTP. Where it does
//! handle a packet, it calls the same accounting, state and rewrite steps as the general
//! path in the same order, so both give the same verdict, bytes, state and events: a
//! property test drives two directors, one with the fast path switched off, through the
//! same packets and compares everything.

use super::{Director, Flow, PacketMeta, TtlBytes, Verdict};
use crate::buf::PacketBuf;
use crate::conn_table::{ConnFlags, ConnId, Direction, Hint};
use crate::forward::nat::{self, Side};
use crate::forward::ttl;
use crate::scheduler::SchedInput;
use crate::scheduler::{DestId, ForwardMethod};
use crate::service::ServiceId;
use crate::time::Instant;
use crate::wire::lean::Lean;
use crate::wire::{Family, Ports, proto, tcp};
use core::net::IpAddr;

/// Where a packet the fast path declines goes (see [`Director::fall_back`]).
#[derive(Debug, Clone, Copy)]
enum Fallback {
    /// The general path, with the packet's metadata.
    General(PacketMeta),
    /// The general path's client-packet handling of this (just created) connection.
    InPath(ConnId),
}

/// What a packet's lookups found.
enum Hit {
    /// A reply of this connection (from its real server or virtual address).
    Reply(ConnId),
    /// A client packet of this connection.
    In(ConnId),
    /// Nothing.
    Miss,
}

#[inline(always)]
fn packed_v6(b: &[u8]) -> [u8; 16] {
    let mut p = [0u8; 16];
    p.copy_from_slice(&b[..16]);
    p
}

impl Director {
    /// Handles `buf` if it is a TCP or UDP packet of a known connection that needs
    /// nothing unusual (or a new connection to a plain service); hands it, unchanged, to
    /// the general path otherwise.
    ///
    /// These functions return the verdict, not `Option<Verdict>`, and decline by calling
    /// the general path themselves: an `Option` made the verdict go through a
    /// temporary, written field by field and read back whole, a store-forwarding stall
    /// on every packet.
    #[inline(always)]
    pub(super) fn fast_path<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf<B>,
        l: &Lean,
        meta: PacketMeta,
        hint: Hint,
    ) -> Verdict {
        let general = Fallback::General(meta);
        if !self.fast_path_on
            || !l.has_ports
            || (l.protocol != proto::TCP && l.protocol != proto::UDP)
        {
            return self.fall_back(now, buf, l, general);
        }
        let pkt = buf.packet();
        // `lean::parse` checked the IP header and the transport header's length: these
        // reads do not fail.
        let at = l.l4_offset;
        let flags = if l.protocol == proto::TCP {
            pkt.get(at + 13).copied()
        } else {
            Some(0)
        };
        let (Some(ports), Some(flags)) = (pkt.get(at..at + 4), flags) else {
            return self.fall_back(now, buf, l, general);
        };
        let (sport, dport) = (
            u16::from_be_bytes([ports[0], ports[1]]),
            u16::from_be_bytes([ports[2], ports[3]]),
        );
        // Replies from real servers first, as the general path looks them up. IPv4 by
        // its octets (no 16-byte packed forms built per packet).
        let hit = match l.family {
            Family::V4 => {
                let Some(h) = pkt.first_chunk::<20>() else {
                    return self.fall_back(now, buf, l, general);
                };
                let src = [h[12], h[13], h[14], h[15]];
                let dst = [h[16], h[17], h[18], h[19]];
                let out = hint.outbound();
                match self
                    .conns
                    .lookup_out_v4(l.protocol, src, sport, dst, dport, out)
                {
                    Some(id) => Hit::Reply(id),
                    None => self
                        .conns
                        .lookup_in_v4(l.protocol, src, sport, dst, dport, hint.inbound())
                        .map_or(Hit::Miss, Hit::In),
                }
            }
            Family::V6 => {
                let (src, dst) = (packed_v6(&pkt[8..]), packed_v6(&pkt[24..]));
                let (s, d) = ((&src, true), (&dst, true));
                let out = hint.outbound();
                match self
                    .conns
                    .lookup_out_packed(l.protocol, s, sport, d, dport, out)
                {
                    Some(id) => Hit::Reply(id),
                    None => self
                        .conns
                        .lookup_in_packed(l.protocol, s, sport, d, dport, hint.inbound())
                        .map_or(Hit::Miss, Hit::In),
                }
            }
        };
        match hit {
            Hit::Reply(id) => self.fast_reply(now, buf, l, flags, id, general),
            // A SYN may reuse or replace an old connection: the general path decides.
            Hit::In(_) if l.protocol == proto::TCP && flags & tcp::flags::SYN != 0 => {
                self.fall_back(now, buf, l, general)
            }
            Hit::In(id) => self.fast_in(now, buf, l, flags, id, general),
            Hit::Miss => self.fast_new(now, buf, *l, flags, meta, (sport, dport)),
        }
    }

    /// Where a declined packet goes: the general path, or, for a connection the fast
    /// path has just created, the general path's handling of a client packet.
    #[inline(always)]
    fn fall_back<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf<B>,
        l: &Lean,
        to: Fallback,
    ) -> Verdict {
        self.fast_declined += 1;
        match to {
            Fallback::General(meta) => self.general_path(now, buf, Some(*l), meta),
            Fallback::InPath(id) => {
                let s = l.summary(buf.packet());
                self.in_path(now, buf, &s, id)
            }
        }
    }

    /// A packet that may start a connection to a plain service (found by protocol,
    /// address and port; not persistent, not one-packet): scheduled, recorded and sent
    /// here. Firewall marks, persistence, FTP and port-zero rules, sloppy TCP and the
    /// `drop_packet` defence are the general path's. Out of line, like the general path:
    /// the established path keeps its registers.
    #[inline(never)]
    fn fast_new<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf<B>,
        l: Lean,
        tcp_flags: u8,
        meta: PacketMeta,
        (sport, dport): (u16, u16),
    ) -> Verdict {
        let l = &l;
        let general = Fallback::General(meta);
        if meta.fwmark != 0
            || self.drop_packet_on
            || (l.protocol == proto::TCP
                && (tcp_flags & tcp::flags::SYN == 0
                    || tcp_flags & tcp::flags::RST != 0
                    || sport == 20))
        {
            return self.fall_back(now, buf, l, general);
        }
        let pkt = buf.packet();
        let addrs = match l.family {
            Family::V4 => pkt.first_chunk::<20>().map(|h| {
                (
                    IpAddr::from([h[12], h[13], h[14], h[15]]),
                    IpAddr::from([h[16], h[17], h[18], h[19]]),
                )
            }),
            Family::V6 => pkt.first_chunk::<40>().and_then(|h| {
                Some((
                    IpAddr::from(<[u8; 16]>::try_from(&h[8..24]).ok()?),
                    IpAddr::from(<[u8; 16]>::try_from(&h[24..40]).ok()?),
                ))
            }),
        };
        let Some((src, dst)) = addrs else {
            return self.fall_back(now, buf, l, general);
        };
        let Some(&sid) = self.by_addr.get(&(l.protocol, dst, dport)) else {
            return self.fall_back(now, buf, l, general);
        };
        let Some(svc) = self
            .services
            .get_mut(sid.0 as usize)
            .and_then(Option::as_mut)
            .filter(|v| {
                v.cfg.persistence.is_none() && !(v.cfg.one_packet && l.protocol == proto::UDP)
            })
        else {
            return self.fall_back(now, buf, l, general);
        };
        // From here on the packet is this path's: the scheduler's pick changes its state.
        let input = SchedInput {
            protocol: l.protocol,
            src,
            dst,
            src_port: sport,
            dst_port: dport,
            fwmark: 0,
        };
        let Some(d) = svc.pool.schedule(&input, now) else {
            let s = l.summary(buf.packet());
            return self.leave(buf, &s, sid);
        };
        let flow = Flow {
            protocol: l.protocol,
            src,
            dst,
            ports: Ports {
                src: sport,
                dst: dport,
            },
        };
        let id = match self.new_conn_for(now, sid, d, &flow, None, false) {
            Ok(id) => id,
            Err(v) => return v,
        };
        self.fast_in(now, buf, l, tcp_flags, id, Fallback::InPath(id))
    }

    #[inline(always)]
    fn fast_in<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf<B>,
        l: &Lean,
        tcp_flags: u8,
        id: ConnId,
        decline: Fallback,
    ) -> Verdict {
        let Some(c) = self.conns.get(id) else {
            return self.fall_back(now, buf, l, decline);
        };
        let cflags = c.flags();
        let (sid, d) = (ServiceId(c.svc()), DestId(c.dest()));
        let (daddr, dport) = (self.conns.daddr(c), c.dport());
        // The method from the connection's flags (`conn_method`): NAT and direct routing
        // need nothing from the real server's record, only that it still exists.
        let method = match self.services.get(sid.0 as usize) {
            Some(Some(v)) if !cflags.has(ConnFlags::ONE_PACKET) => {
                match cflags.0 & ConnFlags::FWD_MASK {
                    ConnFlags::MASQ if v.pool.dests().contains(d) => Some(ForwardMethod::Nat),
                    ConnFlags::DROUTE if v.pool.dests().contains(d) => {
                        Some(ForwardMethod::DirectRoute)
                    }
                    _ => v
                        .pool
                        .dests()
                        .get(d)
                        .map(|rs| super::conn_method(cflags, rs.forward())),
                }
            }
            _ => None,
        };
        let Some(method) = method else {
            return self.fall_back(now, buf, l, decline);
        };
        // Only what transmits without a reply or a drop stays here: a packet that needs
        // "fragmentation needed", "time exceeded" or a tunnel goes the general way after
        // the same accounting.
        let simple = matches!(method, ForwardMethod::Nat | ForwardMethod::DirectRoute)
            && l.ttl > 1
            && l.l3_len <= self.cfg.link_mtu as usize
            && (method != ForwardMethod::Nat || Family::of(daddr) == l.family);
        self.count_in(sid, d, l.l3_len);
        self.transition_by(
            now,
            id,
            l.protocol,
            tcp_flags,
            &[],
            Self::in_direction(cflags),
        );
        if !simple {
            let s = l.summary(buf.packet());
            return self.transmit(buf, &s, id);
        }
        let pkt = buf.packet_mut();
        let rewrite = if method == ForwardMethod::Nat {
            Some((Side::Dst, daddr, dport))
        } else {
            None
        };
        if let Err(e) = self.forward_rewrite(pkt, l, rewrite) {
            return Verdict::Drop(super::DropReason::Rewrite(e));
        }
        Verdict::Forward {
            next_hop: daddr,
            method,
            conn: id,
        }
    }

    /// The TTL decrement of forwarding and, with `nat`, the address and port rewrite of
    /// that side: in one pass for IPv4, else one after the other through the general
    /// rewrite. On error the packet is as it came (the caller checked the TTL is above 1).
    #[inline(always)]
    fn forward_rewrite(
        &self,
        pkt: &mut [u8],
        l: &Lean,
        nat: Option<(Side, IpAddr, u16)>,
    ) -> Result<(), crate::RewriteError> {
        if let Some((side, IpAddr::V4(a), port)) = nat
            && nat::fast_v4_lean(pkt, l, side, a.to_bits(), port, true)
        {
            return Ok(());
        }
        let saved = TtlBytes::at(pkt, l.family, 0);
        ttl::decrement_at(pkt, l.family, 0)?;
        if let Some((side, addr, port)) = nat {
            let s = l.summary(pkt);
            if let Err(e) = nat::rewrite(pkt, &s, side, addr, port, self.cfg.nat) {
                saved.restore(pkt);
                return Err(e);
            }
        }
        Ok(())
    }

    #[inline]
    fn fast_reply<B: AsRef<[u8]> + AsMut<[u8]>>(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf<B>,
        l: &Lean,
        tcp_flags: u8,
        id: ConnId,
        decline: Fallback,
    ) -> Verdict {
        let Some(c) = self.conns.get(id) else {
            return self.fall_back(now, buf, l, decline);
        };
        let (sid, d, vport) = (ServiceId(c.svc()), DestId(c.dest()), c.vport());
        let vaddr = self.conns.vaddr(c);
        let pkt = buf.packet();
        let client = match l.family {
            Family::V4 => pkt
                .get(16..20)
                .and_then(|a| <[u8; 4]>::try_from(a).ok())
                .map(IpAddr::from),
            Family::V6 => pkt
                .get(24..40)
                .and_then(|a| <[u8; 16]>::try_from(a).ok())
                .map(IpAddr::from),
        };
        let Some(client) = client.filter(|_| {
            c.flags().0 & ConnFlags::FWD_MASK == ConnFlags::MASQ
                && l.ttl > 1
                && Family::of(vaddr) == l.family
        }) else {
            return self.fall_back(now, buf, l, decline);
        };
        self.count_out(sid, d, l.l3_len);
        self.transition_by(now, id, l.protocol, tcp_flags, &[], Direction::Output);
        let pkt = buf.packet_mut();
        if let Err(e) = self.forward_rewrite(pkt, l, Some((Side::Src, vaddr, vport))) {
            return Verdict::Drop(super::DropReason::Rewrite(e));
        }
        Verdict::Forward {
            next_hop: client,
            method: ForwardMethod::Nat,
            conn: id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, Director, Event, PacketMeta, Verdict};
    use crate::buf::PacketBuf;
    use crate::conn_table::Hint;
    use crate::ipvsadm::ListFormat;
    use crate::ipvsadm::list::{list, list_conns};
    use crate::time::Instant;
    use core::net::{IpAddr, Ipv4Addr};
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    const RULES: &str = "\
-A -t 192.0.2.1:80 -s rr
-a -t 192.0.2.1:80 -r 10.0.0.2:8080 -m -w 1
-a -t 192.0.2.1:80 -r 10.0.0.3:8080 -m -w 1
-a -t 192.0.2.1:80 -r 10.0.0.4:80 -g -w 1
-a -t 192.0.2.1:80 -r 10.0.0.5:80 -i -w 1
-A -u 192.0.2.1:53 -s wlc
-a -u 192.0.2.1:53 -r 10.0.0.2:5353 -m -w 1
-a -u 192.0.2.1:53 -r 10.0.0.3:53 -m -w 2
-A -t [2001:db8::1]:80 -s rr
-a -t [2001:db8::1]:80 -r [2001:db8:1::2]:8080 -m -w 1
-a -t [2001:db8::1]:80 -r [2001:db8:1::3]:80 -g -w 1
-A -t 192.0.2.1:443 -s sh -p 60
-a -t 192.0.2.1:443 -r 10.0.0.2:443 -m -w 1
-a -t 192.0.2.1:443 -r 10.0.0.3:443 -m -w 1
-A -u 192.0.2.1:123 -s sh -b sh-port
-a -u 192.0.2.1:123 -r 10.0.0.2:123 -m -w 1
-a -u 192.0.2.1:123 -r 10.0.0.3:123 -m -w 3
-A -u 192.0.2.1:514 -s rr -o
-a -u 192.0.2.1:514 -r 10.0.0.2:514 -m -w 1
-a -u 192.0.2.1:514 -r 10.0.0.3:514 -g -w 1
";

    /// What a step of a scenario does.
    #[derive(Debug, Clone)]
    enum Op {
        /// A client packet: client, service (0 TCP/80, 1 UDP/53, 2 TCP6/80, 3 TCP/443
        /// persistent, 4 UDP/123 sh by port, 5 UDP/514 one-packet),
        /// TCP flags, TTL, payload length.
        Client(u8, u8, u8, u8, u16),
        /// A reply from the real server of the client's connection, if it has one.
        Reply(u8, u8, u8, u8),
        /// Time passes (milliseconds) and timers run.
        Wait(u32),
        /// A real server's weight becomes 0.
        Quiesce(u8),
        /// A real server is removed.
        Remove(u8),
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let flags = prop_oneof![
            Just(0x02u8),
            Just(0x10),
            Just(0x18),
            Just(0x11),
            Just(0x04),
            Just(0x12),
            any::<u8>()
        ];
        let ttl = prop_oneof![Just(64u8), Just(1), Just(2), Just(0)];
        let len = prop_oneof![Just(0u16), Just(100), Just(1460), Just(1500)];
        let op = prop_oneof![
            6 => (0u8..6, 0u8..6, flags.clone(), ttl.clone(), len).prop_map(|(c, s, f, t, l)| Op::Client(c, s, f, t, l)),
            3 => (0u8..6, 0u8..6, flags, ttl).prop_map(|(c, s, f, t)| Op::Reply(c, s, f, t)),
            1 => (0u32..200_000).prop_map(Op::Wait),
            1 => (0u8..6).prop_map(Op::Quiesce),
            1 => (0u8..6).prop_map(Op::Remove),
        ];
        proptest::collection::vec(op, 1..80)
    }

    fn vip(svc: u8) -> (IpAddr, u16, bool) {
        match svc {
            0 => (IpAddr::from([192, 0, 2, 1]), 80, true),
            1 => (IpAddr::from([192, 0, 2, 1]), 53, false),
            2 => ("2001:db8::1".parse().unwrap(), 80, true),
            3 => (IpAddr::from([192, 0, 2, 1]), 443, true),
            4 => (IpAddr::from([192, 0, 2, 1]), 123, false),
            _ => (IpAddr::from([192, 0, 2, 1]), 514, false),
        }
    }

    fn client(c: u8, v6: bool) -> (IpAddr, u16) {
        let a = if v6 {
            IpAddr::from([0x20, 1, 0xd, 0xb8, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, c + 1])
        } else {
            IpAddr::from([198, 51, 100, c + 1])
        };
        (a, 40_000 + u16::from(c))
    }

    fn packet(
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        tcp: bool,
        flags: u8,
        ttl: u8,
        len: u16,
    ) -> Vec<u8> {
        let b = match (src.0, dst.0) {
            (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), ttl),
            (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s.octets(), d.octets(), ttl),
            _ => unreachable!(),
        };
        let payload = vec![0x5a; usize::from(len)];
        let mut out = Vec::new();
        if tcp {
            let mut t = b.tcp(src.1, dst.1, 1000, 65535);
            if flags & 0x01 != 0 {
                t = t.fin();
            }
            if flags & 0x02 != 0 {
                t = t.syn();
            }
            if flags & 0x04 != 0 {
                t = t.rst();
            }
            if flags & 0x08 != 0 {
                t = t.psh();
            }
            if flags & 0x10 != 0 {
                t = t.ack(1);
            }
            t.write(&mut out, &payload).unwrap();
        } else {
            b.udp(src.1, dst.1).write(&mut out, &payload).unwrap();
        }
        out
    }

    /// The real server of `client`'s connection to `vip`, from the connection table.
    fn server_of(d: &Director, client: (IpAddr, u16), vip: (IpAddr, u16)) -> Option<(IpAddr, u16)> {
        d.conns()
            .iter()
            .find(|(_, c)| {
                !c.is_template()
                    && d.conns().client(c) == client.0
                    && c.cport() == client.1
                    && c.vport() == vip.1
                    && d.conns().vaddr(c) == vip.0
            })
            .map(|(_, c)| (d.conns().daddr(c), c.dport()))
    }

    fn director(fast: bool) -> Director {
        let cfg = Config {
            tunnel_source_v4: Some(Ipv4Addr::new(192, 0, 2, 254)),
            conn_capacity: 256,
            ..Config::default()
        };
        let mut d = Director::from_rules(cfg, [7; 32], RULES).unwrap();
        d.fast_path_on = fast;
        d
    }

    fn drain(d: &mut Director) -> Vec<Event> {
        core::iter::from_fn(|| d.poll_event()).collect()
    }

    /// Packets waiting for a burst, with the verdicts, bytes and events that handling
    /// them one at a time gave.
    #[derive(Default)]
    struct Burst {
        packets: Vec<(Vec<u8>, Verdict, Vec<u8>)>,
        events: Vec<Event>,
    }

    impl Burst {
        /// Hands the waiting packets to `d` as one burst and compares.
        fn flush(&mut self, d: &mut Director, now: Instant) -> Result<(), TestCaseError> {
            let mut ring: Vec<_> = self
                .packets
                .iter()
                .map(|(p, _, _)| PacketBuf::with_headroom(64, p))
                .collect();
            let metas = vec![PacketMeta::default(); ring.len()];
            let mut verdicts = vec![Verdict::Pass; ring.len()];
            d.handle_burst(now, &mut ring, &metas, &mut verdicts)
                .unwrap();
            for ((b, v), (_, want, bytes)) in ring.iter().zip(&verdicts).zip(&self.packets) {
                prop_assert_eq!(v, want);
                prop_assert_eq!(b.packet(), &bytes[..]);
            }
            prop_assert_eq!(drain(d), core::mem::take(&mut self.events));
            self.packets.clear();
            Ok(())
        }
    }

    /// The fast path does take the packets it is for: new connections to plain services,
    /// client packets of NAT, DR and tunnel connections and NAT replies, IPv4 and IPv6.
    #[test]
    fn takes_established_packets() {
        let mut d = director(true);
        let now = Instant::from_secs(10);
        let mut taken = 0;
        for (svc, c) in [(0u8, 0u8), (0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (2, 1)] {
            let (a, p, tcp) = vip(svc);
            let cl = client(c, a.is_ipv6());
            let syn = packet(cl, (a, p), tcp, 0x02, 64, 0);
            let mut b = PacketBuf::with_headroom(64, &syn);
            let l = crate::wire::lean::parse(&syn).unwrap();
            let v = d.fast_path(now, &mut b, &l, PacketMeta::default(), Hint::None);
            assert_eq!(d.fast_declined, 0, "a new connection to a plain service");
            assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
            let ack = packet(cl, (a, p), tcp, 0x10, 64, 20);
            let mut b = PacketBuf::with_headroom(64, &ack);
            let l = crate::wire::lean::parse(&ack).unwrap();
            let v = d.fast_path(now, &mut b, &l, PacketMeta::default(), Hint::None);
            assert_eq!(d.fast_declined, 0, "established packet");
            assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
            taken += 1;
            let rs = server_of(&d, cl, (a, p)).unwrap();
            let reply = packet(rs, cl, tcp, 0x10, 64, 20);
            let mut b = PacketBuf::with_headroom(64, &reply);
            let l = crate::wire::lean::parse(&reply).unwrap();
            let nat = matches!(rs.0, IpAddr::V4(x) if x.octets()[3] <= 3)
                || rs.0 == "2001:db8:1::2".parse::<IpAddr>().unwrap();
            let _ = d.fast_path(now, &mut b, &l, PacketMeta::default(), Hint::None);
            assert_eq!(d.fast_declined == 0, nat, "reply from {rs:?}");
            d.fast_declined = 0;
        }
        assert_eq!(taken, 7);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// The fast path changes nothing observable: verdicts, bytes, events, counters,
        /// connection states and timers equal those of the general path alone.
        #[test]
        ///
        /// A third director takes the same packets in bursts (those between two other
        /// steps, each a burst) through `handle_burst`, and must give the same too.
        fn fast_path_equals_general_path(ops in ops()) {
            let mut fast = director(true);
            let mut slow = director(false);
            let mut burst = director(true);
            let mut pending = Burst::default();
            let mut now = Instant::from_secs(1_000);
            for op in ops {
                if !matches!(op, Op::Client(..) | Op::Reply(..)) {
                    pending.flush(&mut burst, now)?;
                }
                let pkt = match op {
                    Op::Client(c, svc, flags, ttl, len) => {
                        let (a, p, tcp) = vip(svc);
                        Some(packet(client(c, a.is_ipv6()), (a, p), tcp, flags, ttl, len))
                    }
                    Op::Reply(c, svc, flags, ttl) => {
                        let (a, p, tcp) = vip(svc);
                        let cl = client(c, a.is_ipv6());
                        server_of(&fast, cl, (a, p)).map(|rs| packet(rs, cl, tcp, flags, ttl, 10))
                    }
                    Op::Wait(ms) => {
                        now += core::time::Duration::from_millis(u64::from(ms));
                        fast.handle_timeout(now);
                        slow.handle_timeout(now);
                        burst.handle_timeout(now);
                        None
                    }
                    Op::Quiesce(k) | Op::Remove(k) => {
                        for d in [&mut fast, &mut slow, &mut burst] {
                            let ids: Vec<_> = d.services().map(|(id, _)| id).collect();
                            let sid = ids[usize::from(k) % ids.len()];
                            let svc = d.service(sid).unwrap();
                            let Some(server) = svc.pool().dests().iter().next() else { continue };
                            let did = server.id();
                            if matches!(op, Op::Quiesce(_)) {
                                d.edit_server(sid, did, 0, 0, 0).unwrap();
                            } else {
                                d.remove_server(sid, did).unwrap();
                            }
                        }
                        None
                    }
                };
                if let Some(pkt) = pkt {
                    let mut a = PacketBuf::with_headroom(64, &pkt);
                    let mut b = PacketBuf::with_headroom(64, &pkt);
                    let va = fast.handle_packet(now, &mut a, PacketMeta::default());
                    let vb = slow.handle_packet(now, &mut b, PacketMeta::default());
                    prop_assert_eq!(va, vb);
                    prop_assert_eq!(a.packet(), b.packet());
                    if let Verdict::Forward { .. } = va {
                        prop_assert_ne!(crate::fuzzing::l4_checksum_ok(a.packet()), Some(false));
                    }
                    pending.packets.push((pkt, va, a.packet().to_vec()));
                }
                let events = drain(&mut fast);
                prop_assert_eq!(&events, &drain(&mut slow));
                pending.events.extend(events);
                prop_assert_eq!(fast.poll_timeout(), slow.poll_timeout());
                if pending.packets.is_empty() {
                    prop_assert_eq!(fast.poll_timeout(), burst.poll_timeout());
                }
            }
            pending.flush(&mut burst, now)?;
            prop_assert_eq!(fast.poll_timeout(), burst.poll_timeout());
            let f = ListFormat { stats: true, exact: true, ..ListFormat::default() };
            prop_assert_eq!(list(&fast.snapshot(now), &f), list(&slow.snapshot(now), &f));
            prop_assert_eq!(list_conns(&fast.snapshot(now), true), list_conns(&slow.snapshot(now), true));
            prop_assert_eq!(list(&fast.snapshot(now), &f), list(&burst.snapshot(now), &f));
            prop_assert_eq!(list_conns(&fast.snapshot(now), true), list_conns(&burst.snapshot(now), true));
        }
    }
}
