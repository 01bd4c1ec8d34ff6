//! Real servers and the service's list of them, in the kernel's order.

use super::ConnCount;
use crate::forward::tunnel::TunnelKind;
use core::fmt;
use core::net::IpAddr;

/// The largest weight ipvsadm accepts.
pub const MAX_WEIGHT: u32 = 65535;

/// How packets reach a real server.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardMethod {
    /// NAT (ipvsadm `-m`, "Masq").
    Nat,
    /// Tunnel (`-i`, "Tunnel"), of the given kind.
    Tunnel(TunnelKind),
    /// Direct routing (`-g`, "Route"): MAC rewrite only.
    DirectRoute,
    /// Local delivery on the director itself ("Local").
    Local,
}

/// A stable handle to a real server of one pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DestId(pub u32);

impl fmt::Display for DestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dest#{}", self.0)
    }
}

/// What the embedder gives to add a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RealServerConfig {
    /// Address (IPv4 or IPv6; may differ from the service's family only with tunnels).
    pub addr: IpAddr,
    /// Port (0: the virtual port).
    pub port: u16,
    /// Weight, 0 to 65535; 0 quiesces the server.
    pub weight: u32,
    /// Upper connection threshold (0: none).
    pub u_threshold: u32,
    /// Lower connection threshold (0: derived from the upper, see the overload rule).
    pub l_threshold: u32,
    /// Forwarding method.
    pub forward: ForwardMethod,
}

impl RealServerConfig {
    /// A server with weight 1, no thresholds, forwarded by NAT.
    #[must_use]
    pub const fn new(addr: IpAddr, port: u16) -> Self {
        Self {
            addr,
            port,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            forward: ForwardMethod::Nat,
        }
    }

    /// The same with `weight`.
    #[must_use]
    pub const fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// The same with thresholds.
    #[must_use]
    pub const fn thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.u_threshold = upper;
        self.l_threshold = lower;
        self
    }

    /// The same with another forwarding method.
    #[must_use]
    pub const fn forward(mut self, forward: ForwardMethod) -> Self {
        self.forward = forward;
        self
    }
}

/// A real server and the counters schedulers read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    id: DestId,
    cfg: RealServerConfig,
    last_weight: u32,
    active: u32,
    inactive: u32,
    persistent: u32,
    overloaded: bool,
}

impl RealServer {
    /// The handle.
    #[must_use]
    pub const fn id(&self) -> DestId {
        self.id
    }

    /// Address.
    #[must_use]
    pub const fn addr(&self) -> IpAddr {
        self.cfg.addr
    }

    /// Port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.cfg.port
    }

    /// Current weight.
    #[must_use]
    pub const fn weight(&self) -> u32 {
        self.cfg.weight
    }

    /// The last non-zero weight (what Maglev builds its table from).
    #[must_use]
    pub const fn last_weight(&self) -> u32 {
        self.last_weight
    }

    /// Upper threshold (0: none).
    #[must_use]
    pub const fn u_threshold(&self) -> u32 {
        self.cfg.u_threshold
    }

    /// Lower threshold (0: none).
    #[must_use]
    pub const fn l_threshold(&self) -> u32 {
        self.cfg.l_threshold
    }

    /// Forwarding method.
    #[must_use]
    pub const fn forward(&self) -> ForwardMethod {
        self.cfg.forward
    }

    /// The configuration it was added or last edited with.
    #[must_use]
    pub const fn config(&self) -> &RealServerConfig {
        &self.cfg
    }

    /// Active connections.
    #[must_use]
    pub const fn active(&self) -> u32 {
        self.active
    }

    /// Inactive connections.
    #[must_use]
    pub const fn inactive(&self) -> u32 {
        self.inactive
    }

    /// Persistence templates pointing here.
    #[must_use]
    pub const fn persistent(&self) -> u32 {
        self.persistent
    }

    /// Whether the upper threshold was reached and the lower one not yet undercut.
    #[must_use]
    pub const fn is_overloaded(&self) -> bool {
        self.overloaded
    }

    /// The kernel's `ip_vs_dest_conn_overhead`: active × 256 + inactive.
    #[must_use]
    pub const fn overhead(&self) -> u64 {
        ((self.active as u64) << 8) + self.inactive as u64
    }

    /// Whether the server may take new connections: weight above 0 and not overloaded.
    #[must_use]
    pub const fn is_eligible(&self) -> bool {
        self.cfg.weight > 0 && !self.overloaded
    }
}

/// Errors of pool and list operations (the kernel's errno in brackets).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolError {
    /// The address and port are already in the pool (EEXIST).
    Exists,
    /// No such server (ENOENT).
    NotFound,
    /// Weight above 65535, or lower threshold above the upper (ERANGE).
    Range,
    /// More servers than the scheduler's table can hold (Maglev; EINVAL).
    TooMany,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Exists => "real server already exists",
            Self::NotFound => "no such real server",
            Self::Range => "weight or threshold out of range",
            Self::TooMany => "more real servers than the scheduler supports",
        })
    }
}

impl core::error::Error for PoolError {}

/// Real servers in the kernel's list order: the most recently added first.
///
/// Stored in add order (so adding is O(1)) and walked backwards.
#[derive(Debug, Clone, Default)]
pub struct DestList {
    by_add_order: Vec<RealServer>,
    /// Index into `by_add_order` by id (`NONE` once removed): O(1) lookups on the packet
    /// path, kept up to date by the (rarer) adds and removes.
    slot_of: Vec<u32>,
    next_id: u32,
}

const NONE: u32 = u32::MAX;

impl DestList {
    /// Number of servers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_add_order.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_add_order.is_empty()
    }

    /// Servers in kernel list order (head first).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &RealServer> + ExactSizeIterator {
        self.by_add_order.iter().rev()
    }

    /// The server at kernel list position `pos` (0 = head).
    #[must_use]
    pub fn at(&self, pos: usize) -> Option<&RealServer> {
        let n = self.by_add_order.len();
        pos.checked_add(1)
            .and_then(|p| n.checked_sub(p))
            .map(|i| &self.by_add_order[i])
    }

    /// Kernel list position of `id` (0 = head). O(n).
    #[must_use]
    pub fn position(&self, id: DestId) -> Option<usize> {
        let i = self.slot(id)?;
        Some(self.by_add_order.len() - 1 - i)
    }

    #[inline(always)]
    fn slot(&self, id: DestId) -> Option<usize> {
        match self.slot_of.get(id.0 as usize) {
            Some(&i) if i != NONE => Some(i as usize),
            _ => None,
        }
    }

    /// Whether `id` is a server of this list (without reading the server's record).
    #[must_use]
    #[inline(always)]
    pub fn contains(&self, id: DestId) -> bool {
        self.slot(id).is_some()
    }

    /// The server with handle `id`.
    #[must_use]
    #[inline(always)]
    pub fn get(&self, id: DestId) -> Option<&RealServer> {
        self.slot(id).map(|i| &self.by_add_order[i])
    }

    /// The server with address and port.
    #[must_use]
    pub fn find(&self, addr: IpAddr, port: u16) -> Option<&RealServer> {
        self.by_add_order
            .iter()
            .find(|d| d.cfg.addr == addr && d.cfg.port == port)
    }

    fn get_mut(&mut self, id: DestId) -> Result<&mut RealServer, PoolError> {
        let i = self.slot(id).ok_or(PoolError::NotFound)?;
        Ok(&mut self.by_add_order[i])
    }

    fn check(cfg: &RealServerConfig) -> Result<(), PoolError> {
        if cfg.weight > MAX_WEIGHT || cfg.l_threshold > cfg.u_threshold {
            return Err(PoolError::Range);
        }
        Ok(())
    }

    pub(crate) fn add(&mut self, cfg: RealServerConfig) -> Result<DestId, PoolError> {
        Self::check(&cfg)?;
        if self.find(cfg.addr, cfg.port).is_some() {
            return Err(PoolError::Exists);
        }
        let id = DestId(self.next_id);
        self.next_id += 1;
        if self.slot_of.len() <= id.0 as usize {
            self.slot_of.resize(id.0 as usize + 1, NONE);
        }
        self.slot_of[id.0 as usize] = self.by_add_order.len() as u32;
        self.by_add_order.push(RealServer {
            id,
            cfg,
            last_weight: cfg.weight,
            active: 0,
            inactive: 0,
            persistent: 0,
            overloaded: false,
        });
        Ok(id)
    }

    pub(crate) fn edit(
        &mut self,
        id: DestId,
        weight: u32,
        u_threshold: u32,
        l_threshold: u32,
    ) -> Result<(), PoolError> {
        let d = self.get_mut(id)?;
        let cfg = RealServerConfig {
            weight,
            u_threshold,
            l_threshold,
            ..d.cfg
        };
        Self::check(&cfg)?;
        // __ip_vs_update_dest: a raised or removed upper threshold clears the overload.
        if u_threshold == 0 || u_threshold > d.cfg.u_threshold {
            d.overloaded = false;
        }
        if weight != 0 {
            d.last_weight = weight;
        }
        d.cfg = cfg;
        Ok(())
    }

    pub(crate) fn remove(&mut self, id: DestId) -> Result<RealServer, PoolError> {
        let i = self.slot(id).ok_or(PoolError::NotFound)?;
        let d = self.by_add_order.remove(i);
        self.slot_of[id.0 as usize] = NONE;
        for later in &self.by_add_order[i..] {
            self.slot_of[later.id.0 as usize] -= 1;
        }
        Ok(d)
    }

    fn counter(d: &mut RealServer, kind: ConnCount) -> &mut u32 {
        match kind {
            ConnCount::Active => &mut d.active,
            ConnCount::Inactive => &mut d.inactive,
            ConnCount::Persistent => &mut d.persistent,
        }
    }

    pub(crate) fn bind(&mut self, id: DestId, kind: ConnCount) -> Result<(), PoolError> {
        let d = self.get_mut(id)?;
        let c = Self::counter(d, kind);
        *c = c.saturating_add(1);
        // ip_vs_bind_dest: checked after the increment, on active + inactive.
        if d.cfg.u_threshold != 0
            && u64::from(d.active) + u64::from(d.inactive) >= u64::from(d.cfg.u_threshold)
        {
            d.overloaded = true;
        }
        Ok(())
    }

    pub(crate) fn unbind(&mut self, id: DestId, kind: ConnCount) -> Result<(), PoolError> {
        let d = self.get_mut(id)?;
        let c = Self::counter(d, kind);
        *c = c.saturating_sub(1);
        // ip_vs_unbind_dest.
        let total = u64::from(d.active) + u64::from(d.inactive);
        let (u, l) = (u64::from(d.cfg.u_threshold), u64::from(d.cfg.l_threshold));
        if l != 0 {
            if total < l {
                d.overloaded = false;
            }
        } else if u != 0 {
            if total * 4 < u * 3 {
                d.overloaded = false;
            }
        } else {
            d.overloaded = false;
        }
        Ok(())
    }

    pub(crate) fn transfer(
        &mut self,
        id: DestId,
        from: ConnCount,
        to: ConnCount,
    ) -> Result<(), PoolError> {
        let d = self.get_mut(id)?;
        let c = Self::counter(d, from);
        *c = c.saturating_sub(1);
        let c = Self::counter(d, to);
        *c = c.saturating_add(1);
        Ok(())
    }

    pub(crate) fn set_counters(
        &mut self,
        id: DestId,
        active: u32,
        inactive: u32,
        persistent: u32,
    ) -> Result<(), PoolError> {
        let d = self.get_mut(id)?;
        d.active = active;
        d.inactive = inactive;
        d.persistent = persistent;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(last: u8) -> RealServerConfig {
        RealServerConfig::new(IpAddr::from([10, 0, 0, last]), 80)
    }

    #[test]
    fn newest_first_like_the_kernel() {
        let mut l = DestList::default();
        let a = l.add(cfg(1)).unwrap();
        let b = l.add(cfg(2)).unwrap();
        let c = l.add(cfg(3)).unwrap();
        let order: Vec<DestId> = l.iter().map(RealServer::id).collect();
        assert_eq!(order, [c, b, a]);
        assert_eq!(l.position(a), Some(2));
        assert_eq!(l.at(0).unwrap().id(), c);
        assert!(l.at(3).is_none());
        assert_eq!(l.add(cfg(2)), Err(PoolError::Exists));
        l.remove(b).unwrap();
        assert_eq!(l.iter().map(RealServer::id).collect::<Vec<_>>(), [c, a]);
    }

    #[test]
    fn overload_rule() {
        let mut l = DestList::default();
        let a = l.add(cfg(1).thresholds(4, 0)).unwrap();
        for _ in 0..3 {
            l.bind(a, ConnCount::Active).unwrap();
        }
        assert!(!l.get(a).unwrap().is_overloaded());
        l.bind(a, ConnCount::Inactive).unwrap();
        assert!(l.get(a).unwrap().is_overloaded(), "4 >= u_threshold 4");
        l.unbind(a, ConnCount::Active).unwrap();
        assert!(l.get(a).unwrap().is_overloaded(), "3*4 = 12 is not < 4*3");
        l.unbind(a, ConnCount::Active).unwrap();
        assert!(!l.get(a).unwrap().is_overloaded(), "2*4 < 12");
        // With a lower threshold, it clears only below it.
        let b = l.add(cfg(2).thresholds(2, 1)).unwrap();
        l.bind(b, ConnCount::Active).unwrap();
        l.bind(b, ConnCount::Active).unwrap();
        assert!(l.get(b).unwrap().is_overloaded());
        l.unbind(b, ConnCount::Active).unwrap();
        assert!(l.get(b).unwrap().is_overloaded(), "1 is not < 1");
        l.unbind(b, ConnCount::Active).unwrap();
        assert!(!l.get(b).unwrap().is_overloaded());
        // Templates do not count towards the check.
        let c = l.add(cfg(3).thresholds(1, 0)).unwrap();
        l.bind(c, ConnCount::Persistent).unwrap();
        assert!(!l.get(c).unwrap().is_overloaded());
        // Raising the upper threshold clears the flag.
        l.bind(c, ConnCount::Active).unwrap();
        assert!(l.get(c).unwrap().is_overloaded());
        l.edit(c, 1, 5, 0).unwrap();
        assert!(!l.get(c).unwrap().is_overloaded());
        assert_eq!(l.edit(c, 1, 5, 6), Err(PoolError::Range));
        assert_eq!(l.edit(c, 65536, 0, 0), Err(PoolError::Range));
    }

    #[test]
    fn huge_counters_do_not_overflow_and_ids_stay_indexed() {
        let mut l = DestList::default();
        let a = l.add(cfg(1).thresholds(u32::MAX, 0)).unwrap();
        let b = l.add(cfg(2)).unwrap();
        let c = l.add(cfg(3)).unwrap();
        l.set_counters(a, u32::MAX, u32::MAX - 1, 0).unwrap();
        l.bind(a, ConnCount::Inactive).unwrap();
        assert!(l.get(a).unwrap().is_overloaded());
        l.remove(b).unwrap();
        assert_eq!(l.get(c).unwrap().addr(), IpAddr::from([10, 0, 0, 3]));
        assert_eq!(l.get(a).unwrap().addr(), IpAddr::from([10, 0, 0, 1]));
        assert!(l.get(b).is_none());
        assert_eq!(l.position(a), Some(1));
    }

    #[test]
    fn last_weight_keeps_the_last_non_zero() {
        let mut l = DestList::default();
        let a = l.add(cfg(1).weight(5)).unwrap();
        l.edit(a, 0, 0, 0).unwrap();
        assert_eq!(
            (l.get(a).unwrap().weight(), l.get(a).unwrap().last_weight()),
            (0, 5)
        );
        l.edit(a, 7, 0, 0).unwrap();
        assert_eq!(l.get(a).unwrap().last_weight(), 7);
    }
}
