//! Slow start for weighted schedulers (beyond the kernel: IPVS has no slow start).
//!
//! A server just added to a least-connection pool holds no connections, so `wlc` and its
//! kin send it every new connection until it catches up with the others, and `wrr` gives
//! it its full share from the first pick. [`SlowStart`] wraps any [`Scheduler`] and
//! ramps a new server's *effective* weight from 1 (the smallest weight that is not
//! "quiesced") to its configured weight, linearly over a window, in a configurable number
//! of steps: at step `k` of `s` the effective weight is `max(1, weight * k / s)`, and the
//! ramp ends at `weight` once the window has passed.
//!
//! The wrapped scheduler sees the effective weights: the wrapper keeps its own view of
//! the pool's [`DestList`] (same handles, same order, same counters and overload flags,
//! ramping servers at their effective weight) and hands that view to every hook and pick.
//! A step that changes an effective weight is passed on as an edit
//! ([`Scheduler::dest_updated`]), exactly as if an operator had edited the weight, so
//! `wrr` recomputes its gcd and maximum and `wlc` re-ranks one server.
//!
//! A server ramps when it is added to a pool that already serves through another server
//! of positive weight (the first server of a pool, and a pool handed over populated by
//! [`super::Pool::set_scheduler`], take their full weights at once: there is nobody to
//! shield). Time comes only from [`Scheduler::schedule`]'s `now` (the hooks carry none): a
//! ramp starts at the first pick after the server was added, and advances on later picks.
//! Editing a quiesced server (weight 0) back to a positive weight starts a new ramp;
//! editing a ramping server's weight keeps its ramp going towards the new weight; editing
//! it to 0 ends the ramp.
//!
//! Cost: a pick checks each ramping server (O(ramps)), plus an O(n) edit of the view when
//! a step changes. An add is mirrored into the view directly; the view is refreshed from
//! the pool in O(n) on edits, removes and overload-flag changes; a counter change copies
//! one server's counters (as costly as the pool's own lookup of the server).

use super::{DestId, DestList, SchedInput, Scheduler};
use crate::time::Instant;
use core::time::Duration;

/// A server whose effective weight is still ramping up.
#[derive(Debug, Clone, Copy)]
struct Ramp {
    id: DestId,
    /// The configured weight it ramps to.
    weight: u32,
    /// The first pick after it was added (`None`: no pick yet).
    start: Option<Instant>,
    /// The effective weight in the view.
    applied: u32,
}

/// Slow start around a weighted scheduler `S` (beyond the kernel).
#[derive(Debug, Clone)]
pub struct SlowStart<S> {
    inner: S,
    window: Duration,
    steps: u32,
    view: DestList,
    ramps: Vec<Ramp>,
    last_now: Option<Instant>,
}

/// Default number of steps of a ramp.
pub const DEFAULT_STEPS: u32 = 10;

impl<S: Scheduler> SlowStart<S> {
    /// Wraps `inner`; new servers ramp up over `window` in [`DEFAULT_STEPS`] steps.
    #[must_use]
    pub fn new(inner: S, window: Duration) -> Self {
        Self {
            inner,
            window,
            steps: DEFAULT_STEPS,
            view: DestList::default(),
            ramps: Vec::new(),
            last_now: None,
        }
    }

    /// The same with `steps` steps per ramp (at least 1).
    #[must_use]
    pub fn with_steps(mut self, steps: u32) -> Self {
        self.steps = steps.max(1);
        self
    }

    /// The wrapped scheduler.
    #[must_use]
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The view of the servers the wrapped scheduler sees (effective weights).
    #[must_use]
    pub fn view(&self) -> &DestList {
        &self.view
    }

    /// The weight the wrapped scheduler currently sees for `id`.
    #[must_use]
    pub fn effective_weight(&self, id: DestId) -> Option<u32> {
        self.view.get(id).map(|d| d.weight())
    }

    /// Whether `id` is still ramping up.
    #[must_use]
    pub fn is_ramping(&self, id: DestId) -> bool {
        self.ramps.iter().any(|r| r.id == id)
    }

    /// The effective weight of a ramp towards `weight` started at `start`, at `now`, and
    /// whether the ramp is over.
    fn effective(&self, weight: u32, start: Option<Instant>, now: Option<Instant>) -> (u32, bool) {
        let elapsed = match (start, now) {
            (Some(s), Some(n)) => n - s,
            _ => Duration::ZERO,
        };
        if elapsed >= self.window {
            return (weight, true);
        }
        let steps = u128::from(self.steps);
        let k = elapsed.as_micros() * steps / self.window.as_micros().max(1);
        let w = (u128::from(weight) * k / steps) as u32;
        (w.clamp(1, weight.max(1)), false)
    }

    /// Sets `id`'s weight in the view, keeping its thresholds.
    fn set_view_weight(&mut self, id: DestId, weight: u32) {
        if let Some(d) = self.view.get(id) {
            let (u, l) = (d.u_threshold(), d.l_threshold());
            // Same thresholds: the overload flag is kept.
            let _ = self.view.edit(id, weight, u, l);
        }
    }

    /// Copies the pool's list into the view and puts the ramping weights back.
    fn refresh(&mut self, dests: &DestList) {
        self.view.clone_from(dests);
        for i in 0..self.ramps.len() {
            let r = self.ramps[i];
            self.set_view_weight(r.id, r.applied);
        }
    }

    /// Moves every ramp to `now`, telling the wrapped scheduler of changed weights.
    fn advance(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.ramps.len() {
            let r = &mut self.ramps[i];
            let start = *r.start.get_or_insert(now);
            let r = *r;
            let (w, done) = self.effective(r.weight, Some(start), Some(now));
            if w != r.applied {
                self.ramps[i].applied = w;
                self.set_view_weight(r.id, w);
                self.inner.dest_updated(&self.view, r.id);
            }
            if done {
                self.ramps.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }
}

impl<S: Scheduler> Scheduler for SlowStart<S> {
    /// The wrapped scheduler's name (slow start is not an IPVS scheduler of its own).
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn schedule(&mut self, dests: &DestList, input: &SchedInput, now: Instant) -> Option<DestId> {
        self.last_now = Some(now);
        if self.view.len() != dests.len() {
            // Not told about the servers (used without a Pool): no slow start.
            return self.inner.schedule(dests, input, now);
        }
        if !self.ramps.is_empty() {
            self.advance(now);
        }
        self.inner.schedule(&self.view, input, now)
    }

    /// A server added to a pool that already has another server of positive weight starts
    /// ramping. The view follows in O(1) besides `DestList`'s own O(n) duplicate check.
    /// Servers the wrapper learns about in bulk (the list grew by more than one, as when
    /// [`super::Pool::set_scheduler`] hands it a populated pool) join at full weight:
    /// ramping a whole pool together changes no ratio.
    fn dest_added(&mut self, dests: &DestList, id: DestId) {
        let grew = self.view.len() + 1 == dests.len();
        if self.view.len() != dests.len() {
            let head = dests.at(0).filter(|d| d.id() == id);
            let mirrored = match head {
                Some(d) if grew => self.view.add(*d.config()) == Ok(id),
                _ => false,
            };
            if !mirrored {
                self.refresh(dests);
            }
        }
        let w = if grew {
            self.view
                .at(0)
                .filter(|d| d.id() == id)
                .map_or(0, |d| d.weight())
        } else {
            0
        };
        if w > 0 && self.view.iter().any(|d| d.id() != id && d.weight() > 0) && !self.is_ramping(id)
        {
            self.ramps.push(Ramp {
                id,
                weight: w,
                start: None,
                applied: 1,
            });
            self.set_view_weight(id, 1);
        }
        self.inner.dest_added(&self.view, id);
    }

    fn dest_updated(&mut self, dests: &DestList, id: DestId) {
        let was = self.view.get(id).map_or(0, |d| d.weight());
        let now_w = dests.get(id).map_or(0, |d| d.weight());
        let idx = self.ramps.iter().position(|r| r.id == id);
        match idx {
            Some(i) if now_w == 0 => {
                self.ramps.swap_remove(i);
            }
            Some(i) => {
                let (w, done) = self.effective(now_w, self.ramps[i].start, self.last_now);
                if done {
                    self.ramps.swap_remove(i);
                } else {
                    self.ramps[i].weight = now_w;
                    self.ramps[i].applied = w;
                }
            }
            None if was == 0 && now_w > 0 => self.ramps.push(Ramp {
                id,
                weight: now_w,
                start: None,
                applied: 1,
            }),
            None => {}
        }
        self.refresh(dests);
        self.inner.dest_updated(&self.view, id);
    }

    fn dest_removing(&mut self, _dests: &DestList, id: DestId) {
        self.inner.dest_removing(&self.view, id);
    }

    fn dest_removed(&mut self, dests: &DestList, id: DestId) {
        self.ramps.retain(|r| r.id != id);
        if self.view.remove(id).is_err() || self.view.len() != dests.len() {
            self.refresh(dests);
        }
        self.inner.dest_removed(&self.view, id);
    }

    fn load_changed(&mut self, dests: &DestList, id: DestId) {
        match (dests.get(id), self.view.get(id)) {
            (Some(d), Some(v)) if d.is_overloaded() == v.is_overloaded() => {
                let _ = self
                    .view
                    .set_counters(id, d.active(), d.inactive(), d.persistent());
            }
            _ => self.refresh(dests),
        }
        self.inner.load_changed(&self.view, id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::test_support::{addr, input, letter};
    use crate::scheduler::wlc::Wlc;
    use crate::scheduler::wrr::Wrr;
    use crate::scheduler::{ConnCount, RealServerConfig};

    /// A pool that keeps the wrapper reachable (as `Pool` does for a boxed scheduler).
    struct Harness<S> {
        dests: DestList,
        s: SlowStart<S>,
        ids: Vec<DestId>,
    }

    impl<S: Scheduler> Harness<S> {
        fn new(s: SlowStart<S>) -> Self {
            Self {
                dests: DestList::default(),
                s,
                ids: Vec::new(),
            }
        }
        fn add(&mut self, w: u32, u: u32) -> DestId {
            let cfg = RealServerConfig::new(addr(self.ids.len()), 80)
                .weight(w)
                .thresholds(u, 0);
            let id = self.dests.add(cfg).unwrap();
            self.s.dest_added(&self.dests, id);
            self.ids.push(id);
            id
        }
        fn edit(&mut self, id: DestId, w: u32) {
            let d = self.dests.get(id).unwrap();
            let (u, l) = (d.u_threshold(), d.l_threshold());
            self.dests.edit(id, w, u, l).unwrap();
            self.s.dest_updated(&self.dests, id);
        }
        fn remove(&mut self, id: DestId) {
            self.s.dest_removing(&self.dests, id);
            self.dests.remove(id).unwrap();
            self.s.dest_removed(&self.dests, id);
        }
        fn bind(&mut self, id: DestId) {
            self.dests.bind(id, ConnCount::Active).unwrap();
            self.s.load_changed(&self.dests, id);
        }
        fn unbind(&mut self, id: DestId) {
            self.dests.unbind(id, ConnCount::Active).unwrap();
            self.s.load_changed(&self.dests, id);
        }
        fn picks(&mut self, n: usize, secs: f64, bind: bool) -> String {
            let now = Instant::from_micros((secs * 1e6) as i64);
            (0..n)
                .map(|_| {
                    let pick = self.s.schedule(&self.dests, &input(), now);
                    if let (true, Some(id)) = (bind, pick) {
                        self.bind(id);
                    }
                    letter(&self.ids, pick)
                })
                .collect()
        }
        fn weight(&self, id: DestId) -> u32 {
            self.s.effective_weight(id).unwrap()
        }
    }

    fn wrr() -> Harness<Wrr> {
        Harness::new(SlowStart::new(Wrr::new(), Duration::from_secs(10)))
    }

    #[test]
    fn ramps_linearly_in_steps_from_the_first_pick() {
        let mut h = wrr();
        let first = h.add(10, 0);
        assert!(
            !h.s.is_ramping(first),
            "the first server has nobody to be shielded from"
        );
        let a = h.add(10, 0);
        assert_eq!(h.s.name(), "wrr");
        assert_eq!(h.weight(a), 1);
        h.picks(1, 100.0, false); // the ramp starts at this pick, not at the add
        for (t, w) in [(100.0, 1), (101.0, 1), (102.5, 2), (105.0, 5), (109.99, 9)] {
            h.picks(1, t, false);
            assert_eq!(h.weight(a), w, "at {t} s");
            assert!(h.s.is_ramping(a));
        }
        h.picks(1, 110.0, false);
        assert_eq!(h.weight(a), 10);
        assert!(!h.s.is_ramping(a));
        assert_eq!(h.s.view().get(a).unwrap().weight(), 10);
    }

    #[test]
    fn wrr_sees_the_effective_weights() {
        let mut h = wrr();
        let a = h.add(10, 0);
        h.picks(1, 0.0, false);
        h.picks(1, 10.0, false);
        let b = h.add(10, 0);
        // B at weight 1 against A's 10: one B per cycle of 11 (the kernel's wrr on
        // weights 10 and 1, cw kept from A's cycle).
        let s = h.picks(22, 10.0, false);
        assert_eq!(s.matches('B').count(), 2, "{s}");
        assert_eq!(h.weight(b), 1);
        // Half-way: weight 5, 5 in each cycle of 15.
        let _ = h.picks(1, 15.0, false);
        assert_eq!(h.weight(b), 5);
        let s = h.picks(30, 15.0, false);
        assert_eq!(s.matches('B').count(), 10, "{s}");
        let _ = h.picks(1, 20.0, false);
        assert_eq!((h.weight(a), h.weight(b)), (10, 10));
        let s = h.picks(20, 20.0, false);
        assert_eq!(s.matches('B').count(), 10, "{s}");
    }

    #[test]
    fn wlc_does_not_flood_a_new_server() {
        let mut plain = Harness::new(SlowStart::new(Wlc::new(), Duration::ZERO));
        let mut slow = Harness::new(SlowStart::new(Wlc::new(), Duration::from_secs(60)));
        for h in [&mut plain, &mut slow] {
            let a = h.add(10, 0);
            h.picks(1, 0.0, false);
            h.picks(1, 60.0, false);
            for _ in 0..100 {
                h.bind(a);
            }
            h.add(10, 0);
        }
        // Without a ramp (zero window) the idle B takes every new connection.
        assert_eq!(plain.picks(20, 60.0, true), "B".repeat(20));
        // At weight 1, B takes connections while k * 256 / 1 <= 100 * 256 / 10 (ties go
        // to B, first in the list): 11, then A until it reaches 110 = B's 11 * 10.
        assert_eq!(
            slow.picks(21, 60.0, true),
            format!("{}{}", "B".repeat(11), "A".repeat(10))
        );
    }

    #[test]
    fn edits_removes_and_overload() {
        let mut h = wrr();
        let z = h.add(1, 0);
        let a = h.add(4, 0);
        let b = h.add(6, 2);
        h.picks(1, 0.0, false);
        h.picks(1, 5.0, false);
        assert_eq!((h.weight(a), h.weight(b)), (2, 3));
        // A new weight keeps the ramp going towards it.
        h.edit(b, 8);
        assert_eq!(h.weight(b), 4);
        // Quiescing ends the ramp; coming back starts a new one.
        h.edit(a, 0);
        assert!(!h.s.is_ramping(a));
        assert_eq!(h.weight(a), 0);
        h.edit(a, 4);
        assert_eq!(h.weight(a), 1);
        h.picks(1, 6.0, false); // A's new ramp starts here
        h.picks(1, 11.0, false);
        assert_eq!((h.weight(a), h.weight(b)), (2, 8));
        // The view follows the overload flag both ways.
        h.bind(b);
        h.bind(b);
        assert!(h.s.view().get(b).unwrap().is_overloaded());
        assert!(
            !h.picks(6, 11.0, false).contains('C'),
            "B is the third server"
        );
        h.unbind(b);
        h.unbind(b);
        assert!(!h.s.view().get(b).unwrap().is_overloaded());
        assert_eq!(h.s.view().get(b).unwrap().active(), 0);
        // Removing a ramping server.
        h.edit(a, 40);
        assert!(h.s.is_ramping(a));
        h.remove(a);
        assert!(!h.s.is_ramping(a));
        h.remove(z);
        assert_eq!(h.s.view().len(), 1);
        assert_eq!(h.picks(3, 11.0, false), "CCC");
        // Weight 0 on add: nothing to ramp.
        let c = h.add(0, 0);
        assert!(!h.s.is_ramping(c));
    }

    #[test]
    fn in_a_pool() {
        let mut p = crate::scheduler::Pool::new(Box::new(
            SlowStart::new(Wrr::new(), Duration::from_secs(1)).with_steps(4),
        ));
        let a = p.add(RealServerConfig::new(addr(0), 80).weight(3)).unwrap();
        assert_eq!(p.scheduler().name(), "wrr");
        assert_eq!(p.schedule(&input(), Instant::ZERO), Some(a));
        assert_eq!(p.schedule(&input(), Instant::from_secs(2)), Some(a));
        // Handed over populated: nobody ramps (the wrr textbook sequence at once).
        let b = p.add(RealServerConfig::new(addr(1), 80).weight(1)).unwrap();
        p.set_scheduler(Box::new(SlowStart::new(Wrr::new(), Duration::from_secs(1))));
        let s: Vec<_> = (0..4)
            .map(|_| p.schedule(&input(), Instant::ZERO))
            .collect();
        assert_eq!(s, [Some(a), Some(a), Some(b), Some(a)]);
    }
}
