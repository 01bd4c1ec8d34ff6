//! Schedulers: which real server a new connection goes to.
//!
//! A virtual service owns a [`Pool`]: its real servers in the kernel's list order and one
//! [`Scheduler`]. The pool keeps the scheduler informed of every change (server added,
//! edited, removed, connection counters moved), the way IPVS calls a scheduler's
//! `add_dest` / `upd_dest` / `del_dest`, so that each scheduler can keep whatever index
//! makes its pick fast.
//!
//! List order matters: IPVS inserts a new real server at the *head* of the service's list
//! (`list_add_rcu` in `__ip_vs_update_dest`), every scheduler walks that list, and ties go
//! to the earlier entry. [`DestList`] reproduces that order, so a rule file restored into a
//! kernel and loaded here picks identically.

pub mod dest;
pub mod dh;
pub mod fo;
pub mod hash;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod maglev;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod slow_start;
pub mod tournament;
pub mod twos;
pub mod wlc;
pub mod wrr;

#[cfg(test)]
mod test_support;

pub use dest::{DestId, DestList, ForwardMethod, PoolError, RealServer, RealServerConfig};

use crate::time::Instant;
use crate::wire::{PacketSummary, proto};
use core::net::IpAddr;
use smallvec::SmallVec;

/// What a scheduler sees of a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SchedInput {
    /// Transport protocol.
    pub protocol: u8,
    /// Client address (the packet's source; for an ICMP error about a reply, the quoted
    /// destination).
    pub src: IpAddr,
    /// Virtual address the client asked for.
    pub dst: IpAddr,
    /// Client port (0 for protocols without ports).
    pub src_port: u16,
    /// Virtual port (0 for protocols without ports).
    pub dst_port: u16,
    /// Firewall mark the embedder attached to the packet (0 for none).
    pub fwmark: u32,
}

impl SchedInput {
    /// The scheduler input of a packet from a client.
    #[must_use]
    pub fn from_summary(s: &PacketSummary, fwmark: u32) -> Self {
        let (src_port, dst_port) = match s.protocol {
            proto::TCP | proto::UDP | proto::SCTP => s.ports.map_or((0, 0), |p| (p.src, p.dst)),
            _ => (0, 0),
        };
        Self {
            protocol: s.protocol,
            src: s.src,
            dst: s.dst,
            src_port,
            dst_port,
            fwmark,
        }
    }
}

/// A scheduling algorithm over a [`DestList`].
///
/// The pool calls the `dest_*` and `load_changed` hooks after it changed the list, so an
/// implementation may cache anything derived from the list and keep it exact.
pub trait Scheduler: core::fmt::Debug + Send {
    /// The scheduler's IPVS name (`"wlc"`, `"mh"`, ...).
    fn name(&self) -> &'static str;

    /// Picks a real server for a new connection, or `None` when every server is
    /// quiesced (weight 0), overloaded or otherwise unavailable.
    fn schedule(&mut self, dests: &DestList, input: &SchedInput, now: Instant) -> Option<DestId>;

    /// A server was added (it is now at the head of the list).
    fn dest_added(&mut self, dests: &DestList, id: DestId) {
        let _ = (dests, id);
    }

    /// A server's weight or thresholds were edited.
    fn dest_updated(&mut self, dests: &DestList, id: DestId) {
        let _ = (dests, id);
    }

    /// A server is about to be removed; it is still in `dests`.
    fn dest_removing(&mut self, dests: &DestList, id: DestId) {
        let _ = (dests, id);
    }

    /// A server was removed; `dests` no longer holds it.
    fn dest_removed(&mut self, dests: &DestList, id: DestId) {
        let _ = (dests, id);
    }

    /// A server's connection counters or overload flag changed.
    fn load_changed(&mut self, dests: &DestList, id: DestId) {
        let _ = (dests, id);
    }

    /// The counters of many servers changed (after a burst of expiries): as
    /// [`Scheduler::load_changed`] for each server, which is what it does by default.
    fn loads_changed(&mut self, dests: &DestList) {
        for d in dests.iter() {
            self.load_changed(dests, d.id());
        }
    }
}

/// Counter changes a [`Pool`] holds back until the scheduler next picks: up to this many
/// servers one by one, beyond it all at once.
const PENDING_MAX: usize = 16;

/// A service's real servers and its scheduler, kept in step.
#[derive(Debug)]
pub struct Pool {
    dests: DestList,
    sched: Box<dyn Scheduler>,
    /// Servers whose counters changed since the scheduler last picked: a new connection
    /// changes its server's counters twice (bound inactive, then active on SYN_RECV) and
    /// expiries come in bursts, so the scheduler hears of them once, just before it picks.
    pending: SmallVec<[DestId; PENDING_MAX]>,
    /// More than `PENDING_MAX` servers changed: tell the scheduler about all of them.
    pending_all: bool,
}

impl Pool {
    /// An empty pool scheduled by `sched`.
    #[must_use]
    pub fn new(sched: Box<dyn Scheduler>) -> Self {
        Self {
            dests: DestList::default(),
            sched,
            pending: SmallVec::new(),
            pending_all: false,
        }
    }

    /// Notes that `id`'s counters changed.
    #[inline]
    fn changed(&mut self, id: DestId) {
        if self.pending_all || self.pending.contains(&id) {
            return;
        }
        if self.pending.len() == PENDING_MAX {
            self.pending_all = true;
            self.pending.clear();
        } else {
            self.pending.push(id);
        }
    }

    /// Tells the scheduler of the counter changes it has not heard of.
    #[inline]
    fn flush(&mut self) {
        if self.pending_all {
            self.pending_all = false;
            self.sched.loads_changed(&self.dests);
        }
        for id in self.pending.drain(..) {
            if self.dests.get(id).is_some() {
                self.sched.load_changed(&self.dests, id);
            }
        }
    }

    /// The real servers, in the kernel's list order.
    #[must_use]
    pub fn dests(&self) -> &DestList {
        &self.dests
    }

    /// The scheduler.
    #[must_use]
    pub fn scheduler(&self) -> &dyn Scheduler {
        &*self.sched
    }

    /// Replaces the scheduler (as editing a service's scheduler name does: the new one
    /// starts fresh and is told about every server, tail first, as if they had been added
    /// in their original order).
    pub fn set_scheduler(&mut self, sched: Box<dyn Scheduler>) {
        self.pending.clear();
        self.pending_all = false;
        self.sched = sched;
        let ids: Vec<DestId> = self.dests.iter().map(|d| d.id()).collect();
        for id in ids.into_iter().rev() {
            self.sched.dest_added(&self.dests, id);
        }
    }

    /// Adds a real server at the head of the list.
    ///
    /// # Errors
    /// [`PoolError::Exists`] for a duplicate address and port; [`PoolError::Range`] for a
    /// weight above 65535 or a lower threshold above the upper one.
    pub fn add(&mut self, cfg: RealServerConfig) -> Result<DestId, PoolError> {
        self.flush();
        let id = self.dests.add(cfg)?;
        self.sched.dest_added(&self.dests, id);
        Ok(id)
    }

    /// Edits a server's weight and thresholds (IPVS `__ip_vs_update_dest`).
    ///
    /// # Errors
    /// [`PoolError::NotFound`] for an unknown id; [`PoolError::Range`] as for [`Pool::add`].
    pub fn edit(
        &mut self,
        id: DestId,
        weight: u32,
        u_threshold: u32,
        l_threshold: u32,
    ) -> Result<(), PoolError> {
        self.flush();
        self.dests.edit(id, weight, u_threshold, l_threshold)?;
        self.sched.dest_updated(&self.dests, id);
        Ok(())
    }

    /// Removes a server.
    ///
    /// # Errors
    /// [`PoolError::NotFound`] for an unknown id.
    pub fn remove(&mut self, id: DestId) -> Result<RealServer, PoolError> {
        if self.dests.get(id).is_none() {
            return Err(PoolError::NotFound);
        }
        self.flush();
        self.sched.dest_removing(&self.dests, id);
        let d = self.dests.remove(id)?;
        self.sched.dest_removed(&self.dests, id);
        Ok(d)
    }

    /// Picks a real server for a new connection.
    #[must_use]
    pub fn schedule(&mut self, input: &SchedInput, now: Instant) -> Option<DestId> {
        self.flush();
        self.sched.schedule(&self.dests, input, now)
    }

    /// Counts a new connection on `id` (active for TCP until established, see the
    /// connection table), applying the kernel's upper-threshold rule.
    ///
    /// # Errors
    /// [`PoolError::NotFound`] for an unknown id.
    pub fn bind(&mut self, id: DestId, kind: ConnCount) -> Result<(), PoolError> {
        self.dests.bind(id, kind)?;
        self.changed(id);
        Ok(())
    }

    /// Uncounts a connection on `id`, applying the kernel's lower-threshold rule.
    ///
    /// # Errors
    /// [`PoolError::NotFound`] for an unknown id.
    pub fn unbind(&mut self, id: DestId, kind: ConnCount) -> Result<(), PoolError> {
        self.dests.unbind(id, kind)?;
        self.changed(id);
        Ok(())
    }

    /// Moves one connection of `id` between active and inactive (a TCP connection
    /// leaving or entering ESTABLISHED), without touching the overload flag, as the
    /// kernel's state transitions do.
    ///
    /// # Errors
    /// [`PoolError::NotFound`] for an unknown id.
    pub fn transfer(
        &mut self,
        id: DestId,
        from: ConnCount,
        to: ConnCount,
    ) -> Result<(), PoolError> {
        self.dests.transfer(id, from, to)?;
        self.changed(id);
        Ok(())
    }

    /// Sets a server's counters directly (for tests and replays that load a snapshot);
    /// the overload flag is left as is.
    ///
    /// # Errors
    /// [`PoolError::NotFound`] for an unknown id.
    pub fn set_counters(
        &mut self,
        id: DestId,
        active: u32,
        inactive: u32,
        persistent: u32,
    ) -> Result<(), PoolError> {
        self.dests.set_counters(id, active, inactive, persistent)?;
        self.sched.load_changed(&self.dests, id);
        Ok(())
    }
}

/// Which counter of a real server a connection is counted in.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ConnCount {
    /// `activeconns`: TCP in ESTABLISHED (and new TCP connections until their first
    /// state change, as IPVS counts them).
    Active,
    /// `inactconns`: everything else (UDP, closing TCP, ...).
    Inactive,
    /// `persistconns`: persistence templates; they do not count towards the
    /// threshold check, which uses active + inactive.
    Persistent,
}

/// A scheduler for a service, by its ipvsadm name and flags (`-s`, `-b`), as the kernel's
/// `ip_vs_scheduler_get` + `init_service` would make it. `seed` seeds the random ones
/// (`twos`).
///
/// Every one of the kernel's fourteen schedulers is here, so this cannot fail.
#[must_use]
pub fn build(
    name: crate::service::SchedulerName,
    flags: crate::service::SchedFlags,
    seed: u64,
) -> Box<dyn Scheduler> {
    use crate::service::{SchedFlags, SchedulerName as N};
    let f1 = flags.contains(SchedFlags::FLAG_1);
    let f2 = flags.contains(SchedFlags::FLAG_2);
    match name {
        N::Rr => Box::new(rr::Rr::new()),
        N::Wrr => Box::new(wrr::Wrr::new()),
        N::Lc => Box::new(lc::Lc::new()),
        N::Wlc => Box::new(wlc::Wlc::new()),
        N::Sed => Box::new(sed::Sed::new()),
        N::Nq => Box::new(nq::Nq::new()),
        N::Fo => Box::new(fo::Fo::new()),
        N::Ovf => Box::new(ovf::Ovf::new()),
        N::Lblc => Box::new(lblc::Lblc::new()),
        N::Lblcr => Box::new(lblcr::Lblcr::new()),
        N::Dh => Box::new(dh::Dh::new()),
        N::Sh => Box::new(sh::Sh::new(f1, f2)),
        N::Mh => Box::new(mh::Mh::new(f1, f2)),
        N::Twos => Box::new(twos::Twos::new(seed)),
    }
}

#[cfg(test)]
mod pending_tests {
    use super::test_support::{input, pool};
    use super::{ConnCount, wlc};
    use crate::time::Instant;
    use proptest::prelude::*;

    proptest! {
        /// Counter changes held back until the next pick, one by one or (past
        /// `PENDING_MAX` servers) all at once, give the pick the kernel's scan gives.
        #[test]
        fn deferred_counter_changes_pick_as_the_scan(
            weights in proptest::collection::vec(0u32..5, 1..40),
            rounds in proptest::collection::vec(proptest::collection::vec((any::<usize>(), 0u8..3), 0..60), 1..8),
        ) {
            let (mut p, ids) = pool(wlc::Wlc::new(), &weights);
            for ops in rounds {
                for (at, op) in ops {
                    let id = ids[at % ids.len()];
                    let _ = match op {
                        0 => p.bind(id, ConnCount::Inactive),
                        1 => p.transfer(id, ConnCount::Inactive, ConnCount::Active),
                        _ => p.unbind(id, ConnCount::Active),
                    };
                }
                let scan = wlc::linear_scan(p.dests());
                prop_assert_eq!(p.schedule(&input(), Instant::ZERO), scan);
            }
        }
    }
}
