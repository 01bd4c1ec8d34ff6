//! The table: a slab of [`Conn`] records, one keyed index by client tuple (as the kernel
//! hashes each connection once, by `<protocol, caddr, cport>`), interned virtual and
//! real-server addresses, and a hierarchical timing wheel for expiry.

use super::MAX_CAPACITY;
use super::addr_pool::AddrPool;
use super::conn::{Conn, ConnFlags, NIL, pack_addr, unpack_addr};
use super::store::{FREE, Store};
use crate::time::Instant;
use crate::wire::proto;
use core::hash::BuildHasher;
use core::net::IpAddr;
use core::time::Duration;
use siphasher::sip::SipHasher13;

/// A pause after which every record is due: longer than the longest timeout (31 days)
/// and shorter than the 99 days wrap-aware tick arithmetic can span.
const LONG_GAP: Duration = Duration::from_secs(40 * 86_400);

/// One table tick: 4 ms, the kernel's jiffy at HZ=250 (Debian's default).
pub const TICK: Duration = Duration::from_millis(4);

/// Whether `c` is a connection (not a template) for client port `port` to virtual port
/// `vport` whose client-family and no-client-port flags are `want`
/// (`ip_vs_conn_in_get`'s match). The caller compares the addresses.
#[inline(always)]
fn inbound_of(c: &Conn, protocol: u8, port: u16, vport: u16, want: u16) -> bool {
    c.cport == port
        && c.vport == vport
        && c.protocol == protocol
        && c.flags.0 & (ConnFlags::CLIENT_V6 | ConnFlags::TEMPLATE | ConnFlags::NO_CPORT) == want
}

/// Whether `c` is the connection of a reply from interned address `s`, port `sport`, to
/// client port `cport` (`ip_vs_conn_out_get`'s match): from the real server for NAT, from
/// the virtual address otherwise. The caller compares the client address.
#[inline(always)]
fn replies_to(c: &Conn, protocol: u8, (s, sport): (u32, u16), cport: u16) -> bool {
    let nat = c.flags.0 & ConnFlags::FWD_MASK == ConnFlags::MASQ;
    let (a, p) = if nat {
        (c.daddr, c.dport)
    } else {
        (c.vaddr, c.vport)
    };
    c.cport == cport && a == s && p == sport && c.protocol == protocol
}

/// [`TICK`] in microseconds.
const TICK_MICROS: i64 = TICK.as_micros() as i64;
const _: () = assert!(
    1_000_000 % TICK_MICROS == 0,
    "a second is a whole number of ticks"
);

/// The first 12 bytes of an IPv4-mapped IPv6 address, as IPv4 addresses are packed.
const V4_MAPPED_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

const LEVEL_BITS: u32 = 8;
const SLOTS: usize = 1 << LEVEL_BITS;
const LEVELS: usize = 4;
/// A `t_prev` with this bit set names a wheel slot head instead of a record (so record
/// ids stay below it).
const HEAD: u32 = 0x8000_0000;

/// The distance from slot `start` to the first occupied slot at or after it, going round
/// the level's `SLOTS` slots: a word at a time, not a slot at a time.
#[inline]
fn next_set(bits: &[u64; SLOTS / 64], start: usize) -> Option<usize> {
    let words = SLOTS / 64;
    let (w0, b0) = (start / 64, start % 64);
    // The start word from the start bit, the other words in order, then the start word's
    // bits below the start bit.
    let first = bits[w0] & (!0u64 << b0);
    if first != 0 {
        return Some(first.trailing_zeros() as usize - b0);
    }
    for i in 1..words {
        let w = (w0 + i) % words;
        if bits[w] != 0 {
            let pos = w * 64 + bits[w].trailing_zeros() as usize;
            return Some((pos + SLOTS - start) % SLOTS);
        }
    }
    let low = bits[w0] & !(!0u64 << b0);
    (low != 0).then(|| (w0 * 64 + low.trailing_zeros() as usize + SLOTS - start) % SLOTS)
}

/// The index hash a packet's lookup will need, computed ahead by [`ConnTable::hint`] so
/// that a burst's loads can be issued together (see [`crate::Director::handle_burst`]).
/// A lookup given one uses it instead of hashing; it is a pure function of the packet's
/// bytes and the table's keys, so it is right whatever the table holds by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    /// None: the lookups hash for themselves.
    None,
    /// The hash of `<protocol, source, source port>`: a client packet's `lookup_in`.
    In(u64),
    /// The hash of `<protocol, destination, destination port>`: a reply's `lookup_out`.
    Out(u64),
}

impl Hint {
    /// The hash for `lookup_in`, if this is one.
    #[inline(always)]
    pub(crate) fn inbound(self) -> Option<u64> {
        match self {
            Self::In(h) => Some(h),
            _ => None,
        }
    }

    /// The hash for `lookup_out`, if this is one.
    #[inline(always)]
    pub(crate) fn outbound(self) -> Option<u64> {
        match self {
            Self::Out(h) => Some(h),
            _ => None,
        }
    }
}

/// The hash a [`Hint`] carried (`Some`), checked in debug builds against the one the
/// lookup computes without it, or that one. A macro, not a function taking a closure:
/// LLVM called such a closure out of line, on every packet.
macro_rules! hinted_or {
    ($pre:expr, $hash:expr) => {
        match $pre {
            Some(h) => {
                debug_assert_eq!(h, $hash, "a hint's hash is the lookup's");
                h
            }
            None => $hash,
        }
    };
}

/// Handle to a record in a [`ConnTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConnId(pub u32);

/// What an insert needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewConn {
    /// Transport protocol (0 for a firewall-mark template).
    pub protocol: u8,
    /// Client address (for a template: the client network).
    pub caddr: IpAddr,
    /// Client port (0 for templates and NO_CPORT connections).
    pub cport: u16,
    /// Virtual address (for a firewall-mark template: the mark as an IPv4 address).
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real-server address.
    pub daddr: IpAddr,
    /// Real-server port.
    pub dport: u16,
    /// Flags.
    pub flags: ConnFlags,
    /// The embedder's service index.
    pub svc: u32,
    /// The embedder's real-server id.
    pub dest: u32,
    /// Controlling persistence template (ignored unless it is a live template, and for a
    /// template, which is never controlled).
    pub control: Option<ConnId>,
    /// Initial protocol state.
    pub state: u8,
}

/// The table is at its capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull;

impl core::fmt::Display for TableFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("connection table full")
    }
}

impl core::error::Error for TableFull {}

/// A `BuildHasher` of keyed SipHash-1-3, for maps whose keys an attacker may choose.
#[derive(Debug, Clone, Copy)]
pub struct KeyedSip(pub u64, pub u64);

impl BuildHasher for KeyedSip {
    type Hasher = SipHasher13;
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.0, self.1)
    }
}

/// The connection table.
#[derive(Debug, Clone)]
pub struct ConnTable {
    /// Records and their index (see [`Store`]).
    conns: Store,
    len: usize,
    capacity: usize,
    keys: KeyedSip,
    addrs: AddrPool,
    no_cport: usize,
    /// Set by the first time the table sees, so capture timestamps work as they are.
    epoch: Option<Instant>,
    /// The last time [`ConnTable::expire`] ran.
    last_expire: Option<Instant>,
    now: u32,
    heads: Box<[u32]>,
    occupied: [[u64; SLOTS / 64]; LEVELS],
}

impl ConnTable {
    /// A table for up to `capacity` records (connections and templates), with hash keys
    /// from `seed`. Times count from the first instant the table is given, in 4 ms ticks
    /// that wrap after 198 days (comparisons are wrap-aware; no record lives that long).
    /// Memory is reserved here (64-byte records, touched as they are first used, and an
    /// index of 11 to 22 bytes per record of capacity), at most [`MAX_CAPACITY`] records.
    #[must_use]
    pub fn new(capacity: usize, seed: [u8; 16]) -> Self {
        let k0 = u64::from_le_bytes(seed[..8].try_into().unwrap_or([0; 8]));
        let k1 = u64::from_le_bytes(seed[8..].try_into().unwrap_or([0; 8]));
        let keys = KeyedSip(k0, k1);
        let capacity = capacity.min(MAX_CAPACITY);
        Self {
            conns: Store::with_capacity(capacity),
            len: 0,
            capacity,
            keys,
            addrs: AddrPool::new(),
            no_cport: 0,
            epoch: None,
            last_expire: None,
            now: 0,
            heads: vec![NIL; SLOTS * LEVELS].into_boxed_slice(),
            occupied: [[0; SLOTS / 64]; LEVELS],
        }
    }

    /// Records in the table.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most records the table holds.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    #[inline(always)]
    fn is_live(&self, i: usize) -> bool {
        self.conns.get(i).is_some_and(|c| c.t_prev != FREE)
    }

    /// Bytes the table's arrays take once full (records, index, wheel).
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.conns.bytes() + self.heads.len() * 4
    }

    /// The record behind `id`.
    #[must_use]
    #[inline(always)]
    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        let i = id.0 as usize;
        self.conns.get(i).filter(|c| c.t_prev != FREE)
    }

    /// Virtual address of a record.
    #[must_use]
    pub fn vaddr(&self, c: &Conn) -> IpAddr {
        self.addrs.get(c.vaddr)
    }

    /// Real-server address of a record.
    #[must_use]
    pub fn daddr(&self, c: &Conn) -> IpAddr {
        self.addrs.get(c.daddr)
    }

    /// When the record expires.
    #[must_use]
    pub fn expires(&self, c: &Conn) -> Instant {
        self.epoch.unwrap_or(Instant::ZERO) + TICK * c.expires
    }

    /// The tick `timeout` after `now` (setting the epoch from `now` on first use).
    #[inline(always)]
    fn deadline(&mut self, now: Instant, timeout: Duration) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        // A whole number of seconds after an instant not before the epoch (every kernel
        // timeout, on every packet): the tick of `now + timeout` is `now`'s plus 250 a
        // second, exactly, without the saturating instant arithmetic.
        const MAX_SECS: u64 = 1 << 22;
        if timeout.subsec_nanos() == 0
            && timeout.as_secs() < MAX_SECS
            && now.micros() <= i64::MAX - MAX_SECS as i64 * 1_000_000
            && let Some(since) = now.micros().checked_sub(epoch.micros())
            && since >= 0
        {
            const PER_SEC: u64 = 1_000_000 / TICK_MICROS as u64;
            return ((since / TICK_MICROS) as u32)
                .wrapping_add((timeout.as_secs() * PER_SEC) as u32);
        }
        self.ticks(now + timeout)
    }

    #[inline(always)]
    fn ticks(&mut self, t: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(t);
        // Truncating on purpose: ticks wrap, and every comparison is wrap-aware. (64-bit
        // microseconds: a u128 division here was a visible cost per packet.)
        (t.micros().saturating_sub(epoch.micros()).max(0) / TICK_MICROS) as u32
    }

    /// The index hash of `<protocol, caddr, cport>`: keyed SipHash-1-3 over 7 bytes for an
    /// IPv4 (or IPv4-mapped) client, 19 for IPv6.
    #[inline(always)]
    fn hash(&self, protocol: u8, caddr: &[u8; 16], cport: u16) -> u64 {
        let [p0, p1] = cport.to_be_bytes();
        if caddr[..12] == V4_MAPPED_PREFIX {
            let b = [
                caddr[12], caddr[13], caddr[14], caddr[15], p0, p1, protocol, 0,
            ];
            let w = u64::from_le_bytes(b);
            return crate::siphash::siphash13_short(w, 7, self.keys.0, self.keys.1);
        }
        let mut b = [0u8; 19];
        b[0] = protocol;
        b[1..17].copy_from_slice(caddr);
        b[17..19].copy_from_slice(&[p0, p1]);
        crate::siphash::siphash13(&b, self.keys.0, self.keys.1)
    }

    /// Finds the connection of a client's packet `caddr:cport -> vaddr:vport`
    /// (`ip_vs_conn_in_get`), falling back to a connection that does not know the client
    /// port yet.
    #[must_use]
    pub fn lookup_in(
        &self,
        protocol: u8,
        caddr: IpAddr,
        cport: u16,
        vaddr: IpAddr,
        vport: u16,
    ) -> Option<ConnId> {
        let (ca, v6) = pack_addr(caddr);
        let (va, va6) = pack_addr(vaddr);
        self.lookup_in_packed(protocol, (&ca, v6), cport, (&va, va6), vport, None)
    }

    /// The index hash of `<protocol, a, port>` for an IPv4 address by its octets: equal to
    /// [`ConnTable::hash`] of its packed form, without building it.
    #[inline(always)]
    fn hash_v4(&self, protocol: u8, a: [u8; 4], port: u16) -> u64 {
        let w = u64::from(u32::from_le_bytes(a))
            | u64::from(port.swap_bytes()) << 32
            | u64::from(protocol) << 48;
        crate::siphash::siphash13_short(w, 7, self.keys.0, self.keys.1)
    }

    /// The [`Hint`] for a packet: for an IPv4 packet without options or an IPv6 packet
    /// without extension headers, carrying TCP or UDP, the hash that the fast path's
    /// lookup of it will need (of the destination if the source is an address the table
    /// knows, a real server's or a virtual one's, as `lookup_out` first looks there; of
    /// the source otherwise). Anything else gets [`Hint::None`]. It reads only the bytes
    /// the lookup reads, and checks nothing else: the packet is still parsed and
    /// validated in full before any use of the hint.
    #[inline(always)]
    pub(crate) fn hint(&self, pkt: &[u8]) -> Hint {
        match pkt.first() {
            Some(0x45) => {
                let Some(h) = pkt.first_chunk::<24>() else {
                    return Hint::None;
                };
                if h[9] != proto::TCP && h[9] != proto::UDP {
                    return Hint::None;
                }
                let src = [h[12], h[13], h[14], h[15]];
                if self.addrs.find_v4(src).is_some() {
                    let dst = [h[16], h[17], h[18], h[19]];
                    Hint::Out(self.hash_v4(h[9], dst, u16::from_be_bytes([h[22], h[23]])))
                } else {
                    Hint::In(self.hash_v4(h[9], src, u16::from_be_bytes([h[20], h[21]])))
                }
            }
            Some(v) if v >> 4 == 6 => {
                let Some(h) = pkt.first_chunk::<44>() else {
                    return Hint::None;
                };
                if h[6] != proto::TCP && h[6] != proto::UDP {
                    return Hint::None;
                }
                let mut src = [0u8; 16];
                src.copy_from_slice(&h[8..24]);
                if self.addrs.find_packed(&src, true).is_some() {
                    let mut dst = [0u8; 16];
                    dst.copy_from_slice(&h[24..40]);
                    Hint::Out(self.hash(h[6], &dst, u16::from_be_bytes([h[42], h[43]])))
                } else {
                    Hint::In(self.hash(h[6], &src, u16::from_be_bytes([h[40], h[41]])))
                }
            }
            _ => Hint::None,
        }
    }

    /// The id in the home index slot of `hint`'s hash, whatever it holds (`u32::MAX`
    /// without a hash): its load brings the slot into cache.
    #[inline(always)]
    pub(crate) fn warm_slot(&self, hint: Hint) -> u32 {
        match hint {
            Hint::In(h) | Hint::Out(h) => self.conns.home_id(h),
            Hint::None => u32::MAX,
        }
    }

    /// A word of record `id` (0 if there is none): its load brings the record into
    /// cache.
    #[inline(always)]
    pub(crate) fn warm_record(&self, id: u32) -> u32 {
        self.conns.touch(id)
    }

    /// [`ConnTable::lookup_in`] for an IPv4 client and virtual address, by their octets.
    #[inline(always)]
    pub(crate) fn lookup_in_v4(
        &self,
        protocol: u8,
        ca: [u8; 4],
        cport: u16,
        va: [u8; 4],
        vport: u16,
        pre: Option<u64>,
    ) -> Option<ConnId> {
        let h = hinted_or!(pre, self.hash_v4(protocol, ca, cport));
        if let Some(id) = self.find_in_v4(h, protocol, ca, cport, (va, vport), false) {
            return Some(ConnId(id));
        }
        if self.no_cport > 0 {
            let h = self.hash_v4(protocol, ca, 0);
            return self
                .find_in_v4(h, protocol, ca, 0, (va, vport), true)
                .map(ConnId);
        }
        None
    }

    /// One probe of [`ConnTable::lookup_in_v4`], under hash `h`: a function, not a
    /// closure, so that it inlines (a closure called twice was compiled as a call taking
    /// its captures from the stack).
    #[inline(always)]
    fn find_in_v4(
        &self,
        h: u64,
        protocol: u8,
        ca: [u8; 4],
        port: u16,
        (va, vport): ([u8; 4], u16),
        no_cport: bool,
    ) -> Option<u32> {
        self.conns.find(h, |id| {
            let c = &self.conns[id as usize];
            // A record without CLIENT_V6 holds an IPv4-mapped address: its last four bytes
            // are the client.
            let want = if no_cport { ConnFlags::NO_CPORT } else { 0 };
            inbound_of(c, protocol, port, vport, want)
                && c.caddr[12..] == ca
                && self.addrs.is_v4(c.vaddr, va)
        })
    }

    /// [`ConnTable::lookup_out`] for IPv4 addresses, by their octets.
    #[inline(always)]
    pub(crate) fn lookup_out_v4(
        &self,
        protocol: u8,
        sa: [u8; 4],
        sport: u16,
        ca: [u8; 4],
        cport: u16,
        pre: Option<u64>,
    ) -> Option<ConnId> {
        let s = self.addrs.find_v4(sa)?;
        let h = hinted_or!(pre, self.hash_v4(protocol, ca, cport));
        self.conns
            .find(h, |id| {
                let c = &self.conns[id as usize];
                replies_to(c, protocol, (s, sport), cport)
                    && c.caddr[12..] == ca
                    && c.flags.0 & (ConnFlags::CLIENT_V6 | ConnFlags::TEMPLATE) == 0
            })
            .map(ConnId)
    }

    /// [`ConnTable::lookup_in`] on packed addresses (see `pack_addr`).
    #[inline(always)]
    pub(crate) fn lookup_in_packed(
        &self,
        protocol: u8,
        (ca, v6): (&[u8; 16], bool),
        cport: u16,
        va: (&[u8; 16], bool),
        vport: u16,
        pre: Option<u64>,
    ) -> Option<ConnId> {
        let h = hinted_or!(pre, self.hash(protocol, ca, cport));
        if let Some(id) = self.find_in_packed(h, protocol, (ca, v6), cport, (va, vport), false) {
            return Some(ConnId(id));
        }
        if self.no_cport > 0 {
            let h = self.hash(protocol, ca, 0);
            return self
                .find_in_packed(h, protocol, (ca, v6), 0, (va, vport), true)
                .map(ConnId);
        }
        None
    }

    /// One probe of [`ConnTable::lookup_in_packed`] under hash `h` (a function, not a
    /// closure, as [`ConnTable::find_in_v4`]).
    #[inline(always)]
    fn find_in_packed(
        &self,
        h: u64,
        protocol: u8,
        (ca, v6): (&[u8; 16], bool),
        port: u16,
        ((va, va6), vport): ((&[u8; 16], bool), u16),
        no_cport: bool,
    ) -> Option<u32> {
        self.conns.find(h, |id| {
            let c = &self.conns[id as usize];
            let want = if v6 { ConnFlags::CLIENT_V6 } else { 0 }
                | if no_cport { ConnFlags::NO_CPORT } else { 0 };
            inbound_of(c, protocol, port, vport, want)
                && c.caddr == *ca
                && self.addrs.packed_is(c.vaddr, va, va6)
        })
    }

    /// Finds the connection of a packet from the real-server side `src:sport ->
    /// caddr:cport` (`ip_vs_conn_out_get`): `src` is the real server for NAT
    /// connections and the virtual address for the others.
    #[must_use]
    pub fn lookup_out(
        &self,
        protocol: u8,
        src: IpAddr,
        sport: u16,
        caddr: IpAddr,
        cport: u16,
    ) -> Option<ConnId> {
        let (sa, s6) = pack_addr(src);
        let (ca, v6) = pack_addr(caddr);
        self.lookup_out_packed(protocol, (&sa, s6), sport, (&ca, v6), cport, None)
    }

    /// [`ConnTable::lookup_out`] on packed addresses.
    #[inline(always)]
    pub(crate) fn lookup_out_packed(
        &self,
        protocol: u8,
        (sa, s6): (&[u8; 16], bool),
        sport: u16,
        (ca, v6): (&[u8; 16], bool),
        cport: u16,
        pre: Option<u64>,
    ) -> Option<ConnId> {
        let s = self.addrs.find_packed(sa, s6)?;
        let h = hinted_or!(pre, self.hash(protocol, ca, cport));
        self.conns
            .find(h, |id| {
                let c = &self.conns[id as usize];
                replies_to(c, protocol, (s, sport), cport)
                    && c.caddr == *ca
                    && c.flags.has(ConnFlags::CLIENT_V6) == v6
                    && !c.flags.has(ConnFlags::TEMPLATE)
            })
            .map(ConnId)
    }

    /// Finds a persistence template `<protocol, client network, 0, vaddr, vport>`
    /// (`ip_vs_ct_in_get`).
    #[must_use]
    pub fn lookup_template(
        &self,
        protocol: u8,
        cnet: IpAddr,
        vaddr: IpAddr,
        vport: u16,
    ) -> Option<ConnId> {
        let v = self.addrs.find(vaddr)?;
        let (ca, v6) = pack_addr(cnet);
        let h = self.hash(protocol, &ca, 0);
        self.conns
            .find(h, |id| {
                let c = &self.conns[id as usize];
                c.flags.has(ConnFlags::TEMPLATE)
                    && c.cport == 0
                    && c.vport == vport
                    && c.vaddr == v
                    && c.protocol == protocol
                    && c.caddr == ca
                    && c.flags.has(ConnFlags::CLIENT_V6) == v6
            })
            .map(ConnId)
    }

    /// Inserts a record that expires `timeout` after `now`.
    ///
    /// # Errors
    /// [`TableFull`] at capacity; nothing changes then.
    pub fn insert(
        &mut self,
        n: NewConn,
        now: Instant,
        timeout: Duration,
    ) -> Result<ConnId, TableFull> {
        self.insert_interned(n, None, now, timeout)
    }

    /// [`ConnTable::insert`] with the ids of the virtual and real-server addresses when
    /// the caller holds them pinned (see [`ConnTable::pin_addr`]): no lookup to intern.
    #[inline]
    pub(crate) fn insert_interned(
        &mut self,
        n: NewConn,
        pinned: Option<(u32, u32)>,
        now: Instant,
        timeout: Duration,
    ) -> Result<ConnId, TableFull> {
        if self.len >= self.capacity {
            return Err(TableFull);
        }
        let (caddr, v6) = pack_addr(n.caddr);
        let mut flags = n.flags;
        if v6 {
            flags.0 |= ConnFlags::CLIENT_V6;
        } else {
            flags.0 &= !ConnFlags::CLIENT_V6;
        }
        // A template has no controller (its link counts what it controls).
        let template = flags.has(ConnFlags::TEMPLATE);
        let control = match n.control {
            Some(c) if !template && self.get(c).is_some_and(Conn::is_template) => c.0,
            _ => NIL,
        };
        if let Some(c) = self.conns.get_mut(control as usize) {
            c.link += 1;
        }
        let (vaddr, daddr) = match pinned {
            Some((v, d)) if self.addrs.is_id_of(v, n.vaddr) && self.addrs.is_id_of(d, n.daddr) => {
                self.addrs.add_ref(v);
                self.addrs.add_ref(d);
                (v, d)
            }
            _ => (self.addrs.intern(n.vaddr), self.addrs.intern(n.daddr)),
        };
        let conn = Conn {
            caddr,
            cport: n.cport,
            vport: n.vport,
            dport: n.dport,
            flags,
            vaddr,
            daddr,
            svc: n.svc,
            dest: n.dest,
            link: if template { 0 } else { control },
            expires: 0,
            filed: 0,
            t_next: NIL,
            t_prev: NIL,
            protocol: n.protocol,
            state: n.state,
            old_state: n.state,
            in_pkts: 0,
        };
        let h = self.hash(n.protocol, &caddr, n.cport);
        let Some(id) = self.conns.alloc(h) else {
            return Err(TableFull);
        };
        self.conns[id as usize] = conn;
        self.len += 1;
        if flags.has(ConnFlags::NO_CPORT) {
            self.no_cport += 1;
        }
        self.conns.insert(h, id);
        let exp = self.deadline(now, timeout);
        self.conns[id as usize].expires = exp;
        self.file(id, exp);
        Ok(ConnId(id))
    }

    /// A keyed hash of the connection's client tuple, stable for its life: what a tunnel
    /// derives its GUE source port from (computed per packet from the record, so the
    /// record keeps no copy).
    #[inline]
    pub(crate) fn flow_hash(&self, id: ConnId) -> Option<u32> {
        let c = self.get(id)?;
        Some((self.hash(c.protocol, &c.caddr, c.cport) >> 32) as u32)
    }

    /// Keeps `a` interned while it is configured (a virtual or real-server address), so
    /// that its last connection leaving does not free it only for the next to intern it
    /// again.
    pub(crate) fn pin_addr(&mut self, a: IpAddr) -> u32 {
        self.addrs.intern(a)
    }

    /// Undoes one [`ConnTable::pin_addr`].
    pub(crate) fn unpin_addr(&mut self, a: IpAddr) {
        if let Some(id) = self.addrs.find(a) {
            self.addrs.release(id);
        }
    }

    /// The live record behind `id`, for the engine's per-packet updates; fields that key
    /// the record (addresses, ports, protocol, TEMPLATE / NO_CPORT / CLIENT_V6) must not
    /// be changed through it.
    #[inline]
    pub(crate) fn record_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        let i = id.0 as usize;
        if self.is_live(i) {
            self.conns.get_mut(i)
        } else {
            None
        }
    }

    /// Mutable access for protocol state updates. Fields that key the record cannot be
    /// changed through it.
    pub fn update(&mut self, id: ConnId, f: impl FnOnce(&mut ConnUpdate<'_>)) {
        let i = id.0 as usize;
        if self.is_live(i) {
            f(&mut ConnUpdate {
                c: &mut self.conns[i],
            });
        }
    }

    /// Restarts the record's timer: it now expires `timeout` after `now`
    /// (`ip_vs_conn_put`). O(1): a later expiry only stores the time.
    #[inline(always)]
    pub fn touch(&mut self, id: ConnId, now: Instant, timeout: Duration) {
        let i = id.0 as usize;
        if !self.is_live(i) {
            return;
        }
        let exp = self.deadline(now, timeout);
        let c = &mut self.conns[i];
        c.expires = exp;
        if exp.wrapping_sub(c.filed) as i32 >= 0 {
            return; // filed no later than it expires: the wheel re-files it when reached
        }
        self.unfile(id.0);
        self.file(id.0, exp);
    }

    /// Sets the client port of a NO_CPORT connection (`ip_vs_conn_fill_cport`).
    pub fn fill_cport(&mut self, id: ConnId, cport: u16) {
        let i = id.0 as usize;
        if !self.is_live(i) || !self.conns[i].flags.has(ConnFlags::NO_CPORT) {
            return;
        }
        let c = &self.conns[i];
        let old = self.hash(c.protocol, &c.caddr, c.cport);
        let new = self.hash(c.protocol, &c.caddr, cport);
        self.conns.remove(old, id.0);
        let c = &mut self.conns[i];
        c.cport = cport;
        c.flags.0 &= !ConnFlags::NO_CPORT;
        self.no_cport -= 1;
        self.conns.insert(new, id.0);
    }

    /// Removes a record now, returning it. Its controller's count is decremented.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn> {
        let i = id.0 as usize;
        if !self.is_live(i) {
            return None;
        }
        self.unfile(id.0);
        let c = self.conns[i].clone();
        let h = self.hash(c.protocol, &c.caddr, c.cport);
        self.conns.remove(h, id.0);
        let ctl = c.control_link();
        if ctl != NIL
            && self.get(ConnId(ctl)).is_some_and(Conn::is_template)
            && let Some(t) = self.conns.get_mut(ctl as usize)
        {
            t.link = t.link.saturating_sub(1);
        }
        if c.flags.has(ConnFlags::NO_CPORT) {
            self.no_cport -= 1;
        }
        self.addrs.release(c.vaddr);
        self.addrs.release(c.daddr);
        self.conns.release(id.0);
        self.len -= 1;
        Some(c)
    }

    /// The controlling record of `id`, if any.
    #[must_use]
    pub fn control(&self, id: ConnId) -> Option<ConnId> {
        let c = self.get(id)?;
        let ctl = c.control_link();
        (ctl != NIL && self.is_live(ctl as usize)).then_some(ConnId(ctl))
    }

    /// The earliest time at which [`ConnTable::expire`] may find something to do; an
    /// over-estimate of work, never late.
    #[must_use]
    pub fn next_timeout(&self) -> Option<Instant> {
        let t = self.next_busy_tick()?;
        Some(self.epoch.unwrap_or(Instant::ZERO) + TICK * t)
    }

    /// The wheel tick at which the earliest occupied slot is reached: a level-0 slot's own
    /// tick, or the tick at which a higher level's slot cascades down (never later than
    /// the expiries it holds). The earliest over all levels.
    fn next_busy_tick(&self) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let mut best: Option<u32> = None; // as a distance from `self.now`
        for level in 0..LEVELS {
            let shift = LEVEL_BITS * level as u32;
            let cur = (self.now >> shift) as usize & (SLOTS - 1);
            let unit = 1u32 << shift;
            let bits = &self.occupied[level];
            let Some(mut k) = next_set(bits, cur) else {
                continue;
            };
            // The current slot of a higher level cascades now only if the wheel stands
            // exactly on its boundary; otherwise it is a full revolution away, the last in
            // time: count it as such and look for a nearer one.
            let mut candidates = [None, None];
            if level > 0 && k == 0 && self.now & (unit - 1) != 0 {
                candidates[0] = Some(SLOTS);
                k = match next_set(bits, (cur + 1) & (SLOTS - 1)) {
                    Some(j) if j + 1 < SLOTS => j + 1,
                    _ => SLOTS,
                };
            }
            candidates[1] = Some(k);
            for k in candidates.into_iter().flatten() {
                let t = if level == 0 {
                    self.now.wrapping_add(k as u32)
                } else {
                    (self.now & !(unit - 1)).wrapping_add(unit.wrapping_mul(k as u32))
                };
                let dist = t.wrapping_sub(self.now);
                if best.is_none_or(|b| dist < b) {
                    best = Some(dist);
                }
            }
        }
        best.map(|d| self.now.wrapping_add(d))
    }

    /// Advances the wheel to `now`, calling `on_expire` for each record whose time came.
    /// The callback decides: return `true` to remove the record (it then gets it back
    /// through [`ConnTable::remove`]'s semantics), `false` to keep it, in which case it
    /// must have re-armed the record with [`ConnTable::touch`] (the kernel's "expire
    /// later" for records that still control others).
    pub fn expire(&mut self, now: Instant, mut on_expire: impl FnMut(&mut Self, ConnId) -> bool) {
        let last = self.last_expire.or(self.epoch);
        let target = self.ticks(now);
        self.last_expire = Some(now);
        if last.is_some_and(|l| now.saturating_duration_since(l) > LONG_GAP) {
            // Longer than any timeout and than wrap-aware tick arithmetic can span: every
            // record is due. Empty the wheel and offer each one.
            self.heads.fill(NIL);
            self.occupied = [[0; SLOTS / 64]; LEVELS];
            for c in self.conns.iter_mut().filter(|c| c.t_prev != FREE) {
                c.t_next = NIL;
                c.t_prev = NIL;
            }
            self.now = target;
            for i in 0..self.conns.id_bound() {
                if !self.is_live(i) {
                    continue;
                }
                let id = i as u32;
                self.conns[i].expires = target;
                if on_expire(self, ConnId(id)) {
                    self.remove(ConnId(id));
                } else if self.is_live(i) && self.conns[i].t_prev == NIL {
                    let e = target.wrapping_add(1);
                    self.conns[i].expires = e;
                    self.file(id, e);
                }
            }
            self.now = target.wrapping_add(1);
            return;
        }
        while target.wrapping_sub(self.now) as i32 >= 0 {
            // Jump over ticks with nothing to do (a long idle gap, a capture's pause).
            match self.next_busy_tick() {
                Some(b) if target.wrapping_sub(b) as i32 >= 0 => self.now = b,
                _ => {
                    self.now = target.wrapping_add(1);
                    break;
                }
            }
            let t = self.now;
            let idx0 = (t as usize) & (SLOTS - 1);
            if idx0 == 0 {
                self.cascade(t);
            }
            // Take the whole slot list, then process it.
            let slot = idx0;
            let mut cur = self.heads[slot];
            self.heads[slot] = NIL;
            self.occupied[0][slot / 64] &= !(1 << (slot % 64));
            while cur != NIL {
                let next = self.conns[cur as usize].t_next;
                let c = &mut self.conns[cur as usize];
                c.t_next = NIL;
                c.t_prev = NIL;
                if c.expires.wrapping_sub(t) as i32 > 0 {
                    let e = c.expires;
                    self.file(cur, e); // lazily re-armed to a later time
                } else if !on_expire(self, ConnId(cur)) {
                    let i = cur as usize;
                    if self.is_live(i) && self.conns[i].t_prev == NIL && self.conns[i].t_next == NIL
                    {
                        // Kept but not re-armed: offer it again on the next call, not on
                        // every tick of this one (a long jump would otherwise offer it
                        // once per tick).
                        let e = target.wrapping_add(1);
                        self.conns[i].expires = e;
                        self.file(cur, e);
                    }
                } else {
                    self.remove(ConnId(cur));
                }
                cur = next;
            }
            if t == target {
                self.now = t.wrapping_add(1);
                break;
            }
            self.now = t.wrapping_add(1);
        }
    }

    fn cascade(&mut self, t: u32) {
        for level in 1..LEVELS {
            let shift = LEVEL_BITS * level as u32;
            let idx = (t >> shift) as usize & (SLOTS - 1);
            let slot = level * SLOTS + idx;
            let mut cur = self.heads[slot];
            self.heads[slot] = NIL;
            self.occupied[level][idx / 64] &= !(1 << (idx % 64));
            while cur != NIL {
                let next = self.conns[cur as usize].t_next;
                let c = &mut self.conns[cur as usize];
                c.t_next = NIL;
                c.t_prev = NIL;
                let e = c.expires;
                self.file_from(cur, e, t);
                cur = next;
            }
            if idx != 0 {
                break;
            }
        }
    }

    fn file(&mut self, id: u32, exp: u32) {
        let now = self.now;
        self.file_from(id, exp, now);
    }

    fn file_from(&mut self, id: u32, exp: u32, now: u32) {
        let delta = exp.wrapping_sub(now);
        let (level, at) = if delta as i32 <= 0 {
            (0, now)
        } else if delta < 1 << LEVEL_BITS {
            (0, exp)
        } else if delta < 1 << (2 * LEVEL_BITS) {
            (1, exp)
        } else if delta < 1 << (3 * LEVEL_BITS) {
            (2, exp)
        } else {
            (3, exp)
        };
        let idx = (at >> (LEVEL_BITS * level as u32)) as usize & (SLOTS - 1);
        let slot = level * SLOTS + idx;
        let head = self.heads[slot];
        let c = &mut self.conns[id as usize];
        c.filed = at;
        c.t_prev = HEAD | slot as u32;
        c.t_next = head;
        if head != NIL {
            self.conns[head as usize].t_prev = id;
        }
        self.heads[slot] = id;
        self.occupied[level][idx / 64] |= 1 << (idx % 64);
    }

    fn unfile(&mut self, id: u32) {
        let (prev, next) = {
            let c = &self.conns[id as usize];
            (c.t_prev, c.t_next)
        };
        if prev == NIL {
            return;
        }
        if prev & HEAD != 0 {
            let slot = (prev & !HEAD) as usize;
            self.heads[slot] = next;
            if next == NIL {
                let (level, idx) = (slot / SLOTS, slot % SLOTS);
                self.occupied[level][idx / 64] &= !(1 << (idx % 64));
            }
        } else {
            self.conns[prev as usize].t_next = next;
        }
        if next != NIL {
            self.conns[next as usize].t_prev = prev;
        }
        let c = &mut self.conns[id as usize];
        c.t_prev = NIL;
        c.t_next = NIL;
    }

    /// Every live record, in slot order (for listings such as `ipvsadm -Lnc`).
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> {
        self.conns
            .iter()
            .filter(|(_, c)| c.t_prev != FREE)
            .map(|(i, c)| (ConnId(i), c))
    }

    /// The address a record's client side unpacks to, for callers holding raw fields.
    #[must_use]
    pub fn client(&self, c: &Conn) -> IpAddr {
        unpack_addr(c.caddr, c.flags.has(ConnFlags::CLIENT_V6))
    }
}

/// The mutable part of a record: state, flags other than the keying ones, counters.
#[derive(Debug)]
pub struct ConnUpdate<'a> {
    c: &'a mut Conn,
}

impl ConnUpdate<'_> {
    /// Read access.
    #[must_use]
    pub fn conn(&self) -> &Conn {
        self.c
    }

    /// Sets the protocol state, remembering the old one.
    pub fn set_state(&mut self, s: u8) {
        self.c.old_state = self.c.state;
        self.c.state = s;
    }

    /// Sets flag bits (not TEMPLATE, NO_CPORT or CLIENT_V6, which key the record).
    pub fn set_flags(&mut self, bits: u16) {
        self.c.flags.0 |=
            bits & !(ConnFlags::TEMPLATE | ConnFlags::NO_CPORT | ConnFlags::CLIENT_V6);
    }

    /// Clears flag bits (not the keying ones).
    pub fn clear_flags(&mut self, bits: u16) {
        self.c.flags.0 &=
            !(bits & !(ConnFlags::TEMPLATE | ConnFlags::NO_CPORT | ConnFlags::CLIENT_V6));
    }

    /// Counts a packet from the client.
    pub fn count_in(&mut self) {
        self.c.in_pkts = self.c.in_pkts.saturating_add(1);
    }

    /// Points the record at another real server (persistence re-binding is done by the
    /// engine; the address is not re-interned here, so use only with the same address).
    pub fn set_dest(&mut self, dest: u32) {
        self.c.dest = dest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The whole-seconds shortcut of `deadline` gives the tick of `now + timeout`.
        #[test]
        fn deadline_is_the_tick_of_now_plus_timeout(
            epoch in -(1i64 << 50)..(1i64 << 50),
            offset in -(1i64 << 40)..(1i64 << 45),
            secs in prop_oneof![0u64..4_000_000, Just(u64::MAX / 2)],
            nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
        ) {
            let mut t = ConnTable::new(1, [0; 16]);
            let epoch = Instant::from_micros(epoch);
            t.epoch = Some(epoch);
            let now = Instant::from_micros(epoch.micros() + offset);
            let timeout = Duration::new(secs, nanos);
            let want = t.ticks(now + timeout);
            prop_assert_eq!(t.deadline(now, timeout), want);
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn conn(c: &str, cport: u16) -> NewConn {
        NewConn {
            protocol: 6,
            caddr: ip(c),
            cport,
            vaddr: ip("192.0.2.1"),
            vport: 80,
            daddr: ip("10.0.0.2"),
            dport: 8080,
            flags: ConnFlags(ConnFlags::MASQ | ConnFlags::INACTIVE),
            svc: 0,
            dest: 7,
            control: None,
            state: 0,
        }
    }

    #[test]
    fn fill_cport_rehashes_the_record_in_place() {
        let t0 = Instant::from_secs(1000);
        let mut t = ConnTable::new(64, [3; 16]);
        for p in 1..40 {
            t.insert(conn("198.51.100.8", p), t0, Duration::from_secs(100))
                .unwrap();
        }
        let mut n = conn("198.51.100.7", 0);
        n.flags.0 |= ConnFlags::NO_CPORT;
        let id = t.insert(n, t0, Duration::from_secs(30)).unwrap();
        let find = |t: &ConnTable, port| t.lookup_in(6, n.caddr, port, n.vaddr, 80);
        assert_eq!(find(&t, 5555), Some(id), "any client port, until filled");
        t.fill_cport(id, 5555);
        assert_eq!(find(&t, 5555), Some(id));
        assert_eq!(find(&t, 6666), None, "the port is now the record's");
        let c = t.get(id).unwrap();
        assert_eq!(c.cport(), 5555);
        assert!(!c.flags().has(ConnFlags::NO_CPORT));
        assert_eq!(
            t.lookup_out(6, ip("10.0.0.2"), 8080, n.caddr, 5555),
            Some(id)
        );
        t.fill_cport(id, 1);
        assert_eq!(t.get(id).unwrap().cport(), 5555, "filled once");
        let mut gone = Vec::new();
        t.expire(t0 + Duration::from_secs(31), |_, id| {
            gone.push(id);
            true
        });
        assert_eq!(gone, [id]);
        assert_eq!(t.len(), 39);
        assert_eq!(find(&t, 5555), None);
    }

    /// Packet bytes with the IP addresses and ports a hint reads (the rest zero).
    fn hdr(src: &str, sport: u16, dst: &str, dport: u16, protocol: u8) -> Vec<u8> {
        let ports = [sport.to_be_bytes(), dport.to_be_bytes()].concat();
        match (ip(src), ip(dst)) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut p = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, protocol, 0, 0];
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&ports);
                p.resize(40, 0);
                p
            }
            (s, d) => {
                let (IpAddr::V6(s), IpAddr::V6(d)) = (s, d) else {
                    unreachable!()
                };
                let mut p = vec![0x60, 0, 0, 0, 0, 20, protocol, 64];
                p.extend_from_slice(&s.octets());
                p.extend_from_slice(&d.octets());
                p.extend_from_slice(&ports);
                p.resize(60, 0);
                p
            }
        }
    }

    #[test]
    fn hints_carry_the_hash_of_the_lookup_to_come() {
        let t0 = Instant::ZERO;
        let mut t = ConnTable::new(16, [7; 16]);
        t.insert(conn("198.51.100.7", 40000), t0, Duration::from_secs(60))
            .unwrap();
        let mut six = conn("2001:db8::7", 40000);
        six.daddr = ip("2001:db8:1::2");
        t.insert(six, t0, Duration::from_secs(60)).unwrap();
        let packed = |a: &str| pack_addr(ip(a)).0;
        // A client packet: its source; a reply from a known address: its destination.
        let client = hdr("198.51.100.7", 40000, "192.0.2.1", 80, 6);
        let want = t.hash(6, &packed("198.51.100.7"), 40000);
        assert_eq!(t.hint(&client), Hint::In(want));
        assert_eq!(t.hash_v4(6, [198, 51, 100, 7], 40000), want);
        let reply = hdr("10.0.0.2", 8080, "198.51.100.7", 40000, 6);
        assert_eq!(t.hint(&reply), Hint::Out(want));
        let udp = hdr("198.51.100.9", 53, "192.0.2.1", 53, 17);
        let want = t.hash(17, &packed("198.51.100.9"), 53);
        assert_eq!(t.hint(&udp), Hint::In(want));
        let client = hdr("2001:db8::7", 40000, "2001:db8::1", 80, 6);
        let want = t.hash(6, &packed("2001:db8::7"), 40000);
        assert_eq!(t.hint(&client), Hint::In(want));
        let reply = hdr("2001:db8:1::2", 8080, "2001:db8::7", 40000, 6);
        assert_eq!(t.hint(&reply), Hint::Out(want));
        // The hints carry the lookups (debug builds also check each hash they are given).
        let id = t.lookup_in(6, ip("2001:db8::7"), 40000, ip("192.0.2.1"), 80);
        let (s, d) = (packed("2001:db8:1::2"), packed("2001:db8::7"));
        let out = t.lookup_out_packed(6, (&s, true), 8080, (&d, true), 40000, Some(want));
        assert_eq!((id.is_some(), out), (true, id));
        // Nothing for what the fast path's lookups do not read this way: IPv4 options,
        // IPv6 extension headers, other protocols, short or garbage bytes.
        let mut options = hdr("198.51.100.7", 40000, "192.0.2.1", 80, 6);
        options[0] = 0x46;
        let icmp = hdr("198.51.100.7", 0, "192.0.2.1", 0, 1);
        let hop_by_hop = hdr("2001:db8::7", 40000, "2001:db8::1", 80, 0);
        let short = &hdr("198.51.100.7", 40000, "192.0.2.1", 80, 6)[..23];
        for p in [
            &options[..],
            &icmp,
            &hop_by_hop,
            short,
            &[],
            &[0x45],
            &[0xff; 64],
        ] {
            assert_eq!(t.hint(p), Hint::None, "{p:?}");
        }
    }

    #[test]
    fn lookups_both_ways_and_remove() {
        let t0 = Instant::ZERO;
        let mut t = ConnTable::new(16, [7; 16]);
        let a = t
            .insert(conn("198.51.100.7", 40000), t0, Duration::from_secs(60))
            .unwrap();
        let b = t
            .insert(conn("2001:db8::7", 40000), t0, Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            t.lookup_in(6, ip("198.51.100.7"), 40000, ip("192.0.2.1"), 80),
            Some(a)
        );
        assert_eq!(
            t.lookup_in(6, ip("2001:db8::7"), 40000, ip("192.0.2.1"), 80),
            Some(b)
        );
        assert_eq!(
            t.lookup_in(6, ip("198.51.100.7"), 40001, ip("192.0.2.1"), 80),
            None
        );
        assert_eq!(
            t.lookup_in(17, ip("198.51.100.7"), 40000, ip("192.0.2.1"), 80),
            None
        );
        assert_eq!(
            t.lookup_out(6, ip("10.0.0.2"), 8080, ip("198.51.100.7"), 40000),
            Some(a)
        );
        assert_eq!(
            t.lookup_out(6, ip("192.0.2.1"), 80, ip("198.51.100.7"), 40000),
            None,
            "NAT replies come from the RS"
        );
        assert_eq!(t.get(a).unwrap().caddr(), ip("198.51.100.7"));
        assert_eq!(t.daddr(t.get(a).unwrap()), ip("10.0.0.2"));
        t.remove(a).unwrap();
        assert_eq!(
            t.lookup_in(6, ip("198.51.100.7"), 40000, ip("192.0.2.1"), 80),
            None
        );
        assert!(t.get(a).is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn full_table_refuses() {
        let mut t = ConnTable::new(2, [0; 16]);
        t.insert(
            conn("198.51.100.1", 1),
            Instant::ZERO,
            Duration::from_secs(1),
        )
        .unwrap();
        t.insert(
            conn("198.51.100.1", 2),
            Instant::ZERO,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            t.insert(
                conn("198.51.100.1", 3),
                Instant::ZERO,
                Duration::from_secs(1)
            ),
            Err(TableFull)
        );
    }

    #[test]
    fn expiry_is_on_time_and_touch_extends() {
        let t0 = Instant::from_secs(1000);
        let mut t = ConnTable::new(64, [1; 16]);
        let short = t
            .insert(conn("198.51.100.1", 1), t0, Duration::from_secs(10))
            .unwrap();
        let long = t
            .insert(conn("198.51.100.1", 2), t0, Duration::from_secs(900))
            .unwrap();
        let touched = t
            .insert(conn("198.51.100.1", 3), t0, Duration::from_secs(10))
            .unwrap();
        t.touch(
            touched,
            t0 + Duration::from_secs(5),
            Duration::from_secs(120),
        );
        let mut gone = Vec::new();
        t.expire(t0 + Duration::from_millis(9_990), |_, id| {
            gone.push(id);
            true
        });
        assert!(gone.is_empty());
        t.expire(t0 + Duration::from_secs(10), |_, id| {
            gone.push(id);
            true
        });
        assert_eq!(gone, [short]);
        t.expire(t0 + Duration::from_secs(124), |_, id| {
            gone.push(id);
            true
        });
        assert_eq!(gone, [short]);
        t.expire(t0 + Duration::from_secs(125), |_, id| {
            gone.push(id);
            true
        });
        assert_eq!(gone, [short, touched]);
        // Shortening a timer moves it earlier at once.
        t.touch(long, t0 + Duration::from_secs(130), Duration::from_secs(2));
        t.expire(t0 + Duration::from_secs(132), |_, id| {
            gone.push(id);
            true
        });
        assert_eq!(gone, [short, touched, long]);
        assert!(t.is_empty());
        assert_eq!(t.next_timeout(), None);
    }

    #[test]
    fn a_record_kept_unarmed_is_offered_once_per_call() {
        // The director keeps due records in the table during the walk and removes them
        // afterwards: a jump of many ticks must offer each once, not once per tick.
        let t0 = Instant::from_secs(10);
        let mut t = ConnTable::new(64, [2; 16]);
        for port in 0..50 {
            t.insert(conn("198.51.100.1", port), t0, Duration::from_secs(1))
                .unwrap();
        }
        let mut offered = 0;
        t.expire(t0 + Duration::from_secs(61), |_, _| {
            offered += 1;
            false
        });
        assert_eq!(offered, 50);
        let mut again = Vec::new();
        t.expire(t0 + Duration::from_secs(62), |_, id| {
            again.push(id);
            true
        });
        assert_eq!(again.len(), 50, "still due on the next call");
        assert!(t.is_empty());
    }

    #[test]
    fn a_long_pause_keeps_the_free_list() {
        let t0 = Instant::from_secs(10);
        let mut t = ConnTable::new(8, [4; 16]);
        let ids: Vec<ConnId> = (0..8)
            .map(|p| {
                t.insert(conn("198.51.100.1", p), t0, Duration::from_secs(900))
                    .unwrap()
            })
            .collect();
        for &id in &ids[..4] {
            t.remove(id).unwrap();
        }
        // 50 days later: the survivors are offered and kept; the freed slots stay free.
        t.expire(t0 + Duration::from_secs(50 * 86_400), |tab, id| {
            tab.touch(
                id,
                t0 + Duration::from_secs(50 * 86_400),
                Duration::from_secs(60),
            );
            false
        });
        assert_eq!(t.len(), 4);
        assert_eq!(t.iter().count(), 4, "removed records stay removed");
        assert!(ids[..4].iter().all(|&id| t.get(id).is_none()));
        for p in 100..104 {
            t.insert(
                conn("198.51.100.1", p),
                t0 + Duration::from_secs(50 * 86_400),
                Duration::from_secs(60),
            )
            .unwrap();
        }
        assert_eq!(t.iter().count(), 8);
        assert!(
            t.insert(conn("198.51.100.1", 200), t0, Duration::from_secs(60))
                .is_err(),
            "capacity counts the freed records back in, no more"
        );
    }

    #[test]
    fn a_pause_of_years_expires_everything_without_walking_it() {
        let t0 = Instant::from_secs(1000);
        let mut t = ConnTable::new(8, [5; 16]);
        let a = t
            .insert(conn("198.51.100.1", 1), t0, Duration::from_secs(900))
            .unwrap();
        let b = t
            .insert(conn("198.51.100.1", 2), t0, Duration::from_secs(10))
            .unwrap();
        // A capture timestamp decades later: both are long due.
        let later = Instant::from_secs(1_700_000_000);
        let started = std::time::Instant::now();
        let mut gone = Vec::new();
        t.expire(later, |_, id| {
            gone.push(id);
            true
        });
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        gone.sort();
        assert_eq!(gone, [a, b]);
        // And the table keeps working at the new time.
        let c = t
            .insert(conn("198.51.100.1", 3), later, Duration::from_secs(10))
            .unwrap();
        t.expire(later + Duration::from_secs(9), |_, _| true);
        assert!(t.get(c).is_some());
        t.expire(later + Duration::from_secs(11), |_, _| true);
        assert!(t.get(c).is_none());
    }

    proptest::proptest! {
        #[test]
        fn next_set_equals_a_slot_by_slot_scan(bits in proptest::prelude::any::<[u64; 4]>(), sparse in 0u32..4, start in 0usize..SLOTS) {
            // Mostly sparse maps: keep one word in `sparse + 1` set.
            let bits: [u64; 4] = core::array::from_fn(|i| if (i as u32).is_multiple_of(sparse + 1) { bits[i] & bits[(i + 1) % 4] } else { 0 });
            let naive = (0..SLOTS).find(|k| {
                let s = (start + k) % SLOTS;
                bits[s / 64] & (1 << (s % 64)) != 0
            });
            proptest::prop_assert_eq!(next_set(&bits, start), naive);
        }

        #[test]
        fn expiry_matches_a_model(ops in proptest::collection::vec((0u16..40, 1u64..2_000_000, 0u64..50_000), 1..150)) {
            // (client port, timeout ms, time step ms): insert-or-touch, then advance.
            let t0 = Instant::from_secs(5);
            let mut t = ConnTable::new(64, [3; 16]);
            let mut now = t0;
            let mut model: std::collections::HashMap<u16, (ConnId, Instant)> = Default::default();
            for (port, timeout, step) in ops {
                let timeout = Duration::from_millis(timeout);
                match model.get(&port) {
                    Some(&(id, _)) => t.touch(id, now, timeout),
                    None => {
                        let id = t.insert(conn("198.51.100.9", port), now, timeout).unwrap();
                        model.insert(port, (id, now));
                    }
                }
                model.get_mut(&port).unwrap().1 = now + timeout;
                now += Duration::from_millis(step);
                let mut gone = Vec::new();
                t.expire(now, |tab, id| {
                    gone.push(tab.get(id).unwrap().cport());
                    true
                });
                // Expired exactly those whose time (rounded down to a tick) has come.
                let due: std::collections::BTreeSet<u16> = model
                    .iter()
                    .filter(|(_, (_, e))| {
                        let tick = TICK.as_micros() as i64;
                        (e.micros() - t0.micros()) / tick <= (now.micros() - t0.micros()) / tick
                    })
                    .map(|(p, _)| *p)
                    .collect();
                let got: std::collections::BTreeSet<u16> = gone.iter().copied().collect();
                proptest::prop_assert_eq!(&got, &due);
                for p in got {
                    model.remove(&p);
                }
                proptest::prop_assert_eq!(t.len(), model.len());
                if let Some(next) = t.next_timeout() {
                    let earliest = model.values().map(|(_, e)| *e).min().unwrap();
                    proptest::prop_assert!(next <= earliest + TICK, "next {next:?} earliest {earliest:?}");
                }
            }
        }
    }
}
