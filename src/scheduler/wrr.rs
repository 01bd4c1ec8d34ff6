//! `wrr`: weighted round robin (`net/netfilter/ipvs/ip_vs_wrr.c`), the kernel's exact
//! state machine.
//!
//! State (`struct ip_vs_wrr_mark`): `cl`, the current server or the list head; `cw`, the
//! current weight; `mw`, the maximum weight less `di - 1`; `di`, the gcd of the weights
//! above 0 (1 when there are none). A pick walks from the entry after `cl` and returns
//! the first server that is not overloaded and has `weight >= cw`; at the end of the list
//! `cw` drops by `di` and the walk starts again at the head. When `cw` would reach 0 it
//! is reset to `mw`, and the pick fails if the walk already made its last pass
//! (`cw <= di`) or started at the head; after a restart the last pass stops at the server
//! it started from. `mw == 0` (every weight 0) fails at once. Passes therefore run at
//! `cw = mw, mw - di, ..., 1`, and from a fresh state one full cycle of
//! `sum(weight) / gcd` picks gives each server `weight / gcd` of them.
//!
//! Every add, edit and remove runs `ip_vs_wrr_dest_changed`: `cl` goes back to the head,
//! `di` and `mw` are recomputed (`mw` over every server, overloaded or not), and `cw` is
//! set to `mw` if it is 0 or above `mw`, else rounded to `(cw / di) * di + 1` when
//! `di > 1`, else **kept**. So a service built by adding servers one by one does not start
//! with the textbook sequence; [`super::Pool::set_scheduler`] (which tells a new scheduler
//! about every server with the whole list present) starts exactly as the kernel's
//! `ip_vs_wrr_init_svc` on a populated service, because `dest_changed` on a fresh mark is
//! idempotent.
//!
//! Verified against the source, including the failure exits: "all overloaded" leaves `cl`
//! at the `stop` server, or at the head when `cw` ran out; `mw == 0` leaves `cl` as it was.

use super::{DestId, DestList, SchedInput, Scheduler};
use crate::time::Instant;

/// The `wrr` scheduler.
#[derive(Debug, Clone)]
pub struct Wrr {
    /// Kernel list position of the current server; `None` is the list head. Every list
    /// change resets it to the head, so a position is never stale.
    cl: Option<usize>,
    /// Current weight.
    cw: i32,
    /// Maximum weight less `di - 1`.
    mw: i32,
    /// Decreasing interval: gcd of the weights above 0.
    di: i32,
    /// Largest weight, gcd of the weights above 0 (0: none) and list length at the last
    /// recompute, so that an add is O(1) (see `dest_added`).
    max: u32,
    g: u32,
    len: usize,
}

impl Default for Wrr {
    fn default() -> Self {
        // ip_vs_wrr_init_svc on an empty service.
        Self {
            cl: None,
            cw: 0,
            mw: 0,
            di: 1,
            max: 0,
            g: 0,
            len: 0,
        }
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The kernel's gcd fold over weights: weights of 0 are left out, 0 means none yet.
fn fold_gcd(g: u32, w: u32) -> u32 {
    match (g, w) {
        (g, 0) => g,
        (0, w) => w,
        (g, w) => gcd(w, g),
    }
}

fn weight(w: u32) -> i32 {
    // Weights are at most 65535 (DestList refuses more).
    i32::try_from(w).unwrap_or(i32::MAX)
}

impl Wrr {
    /// A scheduler for an empty service (the pool tells it about its servers).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The kernel's `ip_vs_wrr_init_svc` on a service that already holds `dests`: the
    /// state from which the textbook sequence starts.
    #[must_use]
    pub fn with_dests(dests: &DestList) -> Self {
        let mut s = Self::new();
        s.recompute(dests);
        s.cw = s.mw;
        s
    }

    /// The current weight `cw`.
    #[must_use]
    pub fn current_weight(&self) -> i32 {
        self.cw
    }

    /// `mw`: the maximum weight less `gcd - 1` (0 when every weight is 0).
    #[must_use]
    pub fn max_weight(&self) -> i32 {
        self.mw
    }

    /// `di`: the gcd of the weights above 0 (1 when none).
    #[must_use]
    pub fn gcd(&self) -> i32 {
        self.di
    }

    /// The server `cl` is at (`None`: the list head).
    #[must_use]
    pub fn current(&self, dests: &DestList) -> Option<DestId> {
        self.cl.and_then(|p| dests.at(p)).map(|d| d.id())
    }

    /// `ip_vs_wrr_gcd_weight` and `ip_vs_wrr_max_weight` over the whole list, O(n);
    /// resets `cl` to the head.
    fn recompute(&mut self, dests: &DestList) {
        self.g = dests.iter().map(|d| d.weight()).fold(0, fold_gcd);
        self.max = dests.iter().map(|d| d.weight()).max().unwrap_or(0);
        self.len = dests.len();
        self.derive();
    }

    /// `di`, `mw` from the running max and gcd; resets `cl` to the head.
    fn derive(&mut self) {
        self.cl = None;
        self.di = if self.g == 0 { 1 } else { weight(self.g) };
        self.mw = weight(self.max) - (self.di - 1);
    }

    /// `ip_vs_wrr_dest_changed`, with `di` and `mw` already recomputed.
    fn dest_changed(&mut self) {
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }
}

impl Scheduler for Wrr {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn schedule(&mut self, dests: &DestList, _input: &SchedInput, _now: Instant) -> Option<DestId> {
        if self.mw == 0 {
            return None;
        }
        let n = dests.len();
        // Out of step (not told about a change): start from the head.
        let last = self.cl.filter(|&p| p < n);
        let mut from = last.map_or(0, |p| p + 1);
        let mut stop = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            for p in from..n {
                let Some(d) = dests.at(p) else { break };
                if !d.is_overloaded() && weight(d.weight()) >= self.cw {
                    self.cl = Some(p);
                    return Some(d.id());
                }
                if stop == Some(p) {
                    self.cl = Some(p);
                    return None;
                }
            }
            from = 0;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
    }

    /// O(1): an add can only raise the maximum and lower the gcd, so both are updated
    /// from the new server alone (the same values the kernel's full walk finds). A call
    /// for a server already counted (the list did not grow: [`super::Pool::set_scheduler`]
    /// telling a new scheduler about each server of a full list) recomputes nothing: the
    /// kernel's `dest_changed` over an unchanged list is idempotent.
    fn dest_added(&mut self, dests: &DestList, id: DestId) {
        match dests.at(0) {
            Some(head) if head.id() == id && dests.len() == self.len + 1 => {
                self.max = self.max.max(head.weight());
                self.g = fold_gcd(self.g, head.weight());
                self.len += 1;
                self.derive();
            }
            _ if dests.len() == self.len => self.derive(),
            _ => self.recompute(dests),
        }
        self.dest_changed();
    }

    fn dest_updated(&mut self, dests: &DestList, _id: DestId) {
        self.recompute(dests);
        self.dest_changed();
    }

    fn dest_removed(&mut self, dests: &DestList, _id: DestId) {
        self.recompute(dests);
        self.dest_changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::rr::Rr;
    use crate::scheduler::test_support::{addr, input, letter, picks, pool};
    use crate::scheduler::{ConnCount, Pool, RealServerConfig};
    use proptest::prelude::*;

    /// A pool whose scheduler was set after the servers were added: the kernel's
    /// `init_svc` on a populated service.
    fn fresh(weights: &[u32]) -> (Pool, Vec<DestId>) {
        let (mut p, ids) = pool(Rr::new(), weights);
        p.set_scheduler(Box::new(Wrr::new()));
        (p, ids)
    }

    #[test]
    fn added_one_by_one_keeps_cw() {
        // A=4, B=3, C=2 added in that order; list C, B, A.
        // add A: di=4, mw=1, cw 0 -> 1; add B: di=1, mw=4, cw 1 kept; add C: cw 1 kept.
        // So the first pass runs at cw=1 (C B A), then cw=4 (A), 3 (B A), 2 (C B A),
        // 1 (C B A), and the textbook cycle from there.
        let (mut p, ids) = pool(Wrr::new(), &[4, 3, 2]);
        assert_eq!(picks(&mut p, &ids, 12), "CBAABACBACBA");
        assert_eq!(picks(&mut p, &ids, 18), "ABACBACBAABACBACBA");
        assert_eq!(p.scheduler().name(), "wrr");
    }

    #[test]
    fn textbook_sequence_on_a_populated_service() {
        let (mut p, ids) = fresh(&[4, 3, 2]);
        assert_eq!(picks(&mut p, &ids, 18), "ABACBACBAABACBACBA");
        let (mut q, _) = pool(Rr::new(), &[4, 3, 2]);
        let w = Wrr::with_dests(q.dests());
        assert_eq!((w.current_weight(), w.max_weight(), w.gcd()), (4, 4, 1));
        q.set_scheduler(Box::new(w));
        assert_eq!(picks(&mut q, &ids, 9), "ABACBACBA");
    }

    #[test]
    fn gcd_above_one() {
        // A=4, B=2: di=2, mw=3; passes at cw=3 (A) and cw=1 (B A).
        let (mut p, ids) = fresh(&[4, 2]);
        assert_eq!(picks(&mut p, &ids, 6), "ABAABA");
        // Added one by one: add A gives di=4, mw=1, cw=1; add B: di=2, mw=3,
        // cw = (1/2)*2+1 = 1: the first pass is the cw=1 one.
        let (mut p, ids) = pool(Wrr::new(), &[4, 2]);
        assert_eq!(picks(&mut p, &ids, 9), "BAABAABAA");
    }

    #[test]
    fn an_edit_resets_cl_but_keeps_cw() {
        let (mut p, ids) = fresh(&[4, 3, 2]);
        assert_eq!(picks(&mut p, &ids, 2), "AB");
        // Thresholds only: upd_dest still runs dest_changed (cl = head, cw 3 kept), so
        // the cw=3 pass starts over and B is picked twice in a row.
        p.edit(ids[2], 2, 100, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 8), "BACBACBA");
    }

    #[test]
    fn weight_zero_and_all_zero() {
        let (mut p, ids) = fresh(&[3, 0, 1]);
        // di=1, mw=3: cw=3 (A), 2 (A), 1 (C A); B never.
        assert_eq!(picks(&mut p, &ids, 8), "AACAAACA");
        let (mut p, ids) = fresh(&[0, 0]);
        assert_eq!(picks(&mut p, &ids, 2), "--");
        p.edit(ids[0], 2, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 2), "AA");
        p.edit(ids[0], 0, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 2), "--");
        let (mut p, ids) = pool(Wrr::new(), &[]);
        assert_eq!(picks(&mut p, &ids, 1), "-");
    }

    #[test]
    fn single_server() {
        let (mut p, ids) = pool(Wrr::new(), &[5]);
        assert_eq!(picks(&mut p, &ids, 6), "AAAAAA");
    }

    fn thresholded(weights: &[u32]) -> (Pool, Vec<DestId>) {
        let mut p = Pool::new(Box::new(Rr::new()));
        let ids = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                p.add(
                    RealServerConfig::new(addr(i), 80)
                        .weight(w)
                        .thresholds(1, 0),
                )
                .unwrap()
            })
            .collect();
        p.set_scheduler(Box::new(Wrr::new()));
        (p, ids)
    }

    fn cw(p: &Pool) -> i32 {
        let dbg = format!("{:?}", p.scheduler());
        let at = dbg.find("cw: ").unwrap() + 4;
        dbg[at..].split(',').next().unwrap().parse().unwrap()
    }

    #[test]
    fn all_overloaded_last_pass_exit() {
        let (mut p, ids) = thresholded(&[4, 3, 2]);
        for want in ["A", "B", "C"] {
            let got = picks(&mut p, &ids, 1);
            assert_eq!(got, want);
            p.bind(
                ids[usize::from(got.as_bytes()[0] - b'A')],
                ConnCount::Active,
            )
            .unwrap();
        }
        // cl = C (cw 2): passes at cw 2 (rest of list) and 1 (last pass) fail, then
        // cw runs out after the last pass: cl = head, cw = mw.
        assert_eq!(picks(&mut p, &ids, 2), "--");
        assert_eq!(cw(&p), 4);
        p.unbind(ids[1], ConnCount::Active).unwrap();
        // From the head at cw 4: B (3) is too light; cw 3: B.
        assert_eq!(picks(&mut p, &ids, 2), "BB");
    }

    #[test]
    fn all_overloaded_stop_exit() {
        let (mut p, ids) = thresholded(&[4, 3, 2]);
        assert_eq!(picks(&mut p, &ids, 7), "ABACBAC");
        assert_eq!(cw(&p), 1);
        for &id in &ids {
            p.bind(id, ConnCount::Active).unwrap();
        }
        // last = C at cw 1: the rest of the list fails, cw runs out and restarts at 4,
        // passes 4, 3, 2 fail, the last pass (cw 1) stops at C: cl = C, cw = 1.
        assert_eq!(picks(&mut p, &ids, 1), "-");
        assert_eq!(cw(&p), 1);
        p.unbind(ids[1], ConnCount::Active).unwrap();
        // Continues after C at cw 1: B. (The last-pass exit would have left cw = 4.)
        assert_eq!(picks(&mut p, &ids, 1), "B");
        assert_eq!(cw(&p), 1);
    }

    #[test]
    fn removing_mid_stream() {
        let (mut p, ids) = fresh(&[4, 3, 2]);
        assert_eq!(picks(&mut p, &ids, 3), "ABA");
        // cw 3; remove B: di = 2, mw = 3, cw = (3/2)*2+1 = 3, cl = head.
        p.remove(ids[1]).unwrap();
        assert_eq!(picks(&mut p, &ids, 6), "ACAACA");
    }

    #[test]
    fn adding_mid_stream() {
        let (mut p, mut ids) = fresh(&[2, 1]);
        // di 1, mw 2: A | B A.
        assert_eq!(picks(&mut p, &ids, 2), "AB");
        // cw 1; add C=3: mw 3, cw 1 kept, cl = head: pass at cw 1 (C B A), then 3 (C),
        // 2 (C A), 1 (C B A).
        crate::scheduler::test_support::add(&mut p, &mut ids, 3);
        assert_eq!(picks(&mut p, &ids, 9), "CBACCACBA");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// From a fresh state (the scheduler set on a populated service), one cycle of
        /// sum(w)/gcd picks gives each server exactly w/gcd picks, and so does the next.
        #[test]
        fn one_cycle_is_proportional(
            weights in proptest::collection::vec(0u32..=12, 1..8)
                .prop_filter("one weight above 0", |w| w.iter().any(|&x| x > 0))
        ) {
            let g = weights.iter().copied().filter(|&w| w > 0).fold(0, gcd);
            let cycle = weights.iter().sum::<u32>() / g;
            let (mut p, ids) = fresh(&weights);
            for _ in 0..2 {
                let mut counts = vec![0u32; weights.len()];
                for _ in 0..cycle {
                    let pick = p.schedule(&input(), Instant::ZERO);
                    let i = usize::from(letter(&ids, pick) as u8 - b'A');
                    counts[i] += 1;
                }
                let want: Vec<u32> = weights.iter().map(|w| w / g).collect();
                prop_assert_eq!(counts, want);
            }
        }
    }
}
