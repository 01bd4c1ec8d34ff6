//! A tournament tree over kernel list positions (beyond the kernel).
//!
//! The kernel's least-connection family (`lc`, `wlc`, `sed`, `nq`) walks the whole
//! destination list on every new connection and keeps the first server whose load is
//! strictly lower than the best so far, so ties go to the earlier entry. [`Tournament`]
//! returns exactly that server in O(1) and re-ranks one server in O(log n): its leaves are
//! the kernel list positions (head first) and every inner node keeps the better of its two
//! children, the *left* (earlier) one winning ties. Because "strictly better" is a strict
//! weak order for every [`Rank`] used here (cross-multiplied exactly in 128 bits), the
//! winner of the tree is the first minimal element of the list, which is what the scan
//! returns.
//!
//! Adding or removing a server shifts list positions, so those mark the tree stale and
//! reserve room for it; the next pick rebuilds it in O(n) without allocating (so a burst
//! of adds, or [`super::Pool::set_scheduler`] telling a new scheduler about every server,
//! costs one rebuild, not one per server). A changed counter or an edited weight updates
//! one leaf and its ancestors.

use super::{DestId, DestList, RealServer, SchedInput, Scheduler};
use crate::time::Instant;

/// How a least-load scheduler ranks one real server.
pub trait Rank: Copy + core::fmt::Debug + Send {
    /// The server's rank, or `None` when the scheduler's scan skips it (overloaded,
    /// weight 0, ...).
    fn key(d: &RealServer) -> Option<Self>;

    /// Whether a server ranked `self`, met *after* the current best `earlier` in list
    /// order, replaces it in the kernel's scan (that is, `self` is strictly better).
    ///
    /// Must be a strict weak order: irreflexive, transitive, with transitive
    /// incomparability. Then the tree's winner is the scan's pick.
    fn beats(self, earlier: Self) -> bool;
}

/// A [`Rank`] that is a whole scheduler: its IPVS name and the kernel's linear scan,
/// the exact reference the tree must agree with.
pub trait RankedScheduler: Rank {
    /// The scheduler's IPVS name.
    const NAME: &'static str;

    /// The kernel's O(n) scan over the list.
    fn linear_scan(dests: &DestList) -> Option<DestId>;
}

/// A scheduler that picks the best server by rank `R` from a [`Tournament`]: O(1) per
/// pick, O(log n) per counter change, the same choice as the kernel's scan (`lc`, `wlc`,
/// `sed`, `nq`, `fo`, `ovf` are this with their ranks).
#[derive(Debug, Clone, Default)]
pub struct TreeScheduler<R> {
    tree: Tournament<R>,
}

impl<R: RankedScheduler> TreeScheduler<R> {
    /// A fresh scheduler (the pool tells it about its servers).
    #[must_use]
    pub fn new() -> Self {
        Self {
            tree: Tournament::default(),
        }
    }
}

impl<R: RankedScheduler> Scheduler for TreeScheduler<R> {
    fn name(&self) -> &'static str {
        R::NAME
    }

    fn schedule(&mut self, dests: &DestList, _input: &SchedInput, _now: Instant) -> Option<DestId> {
        if self.tree.refresh(dests) {
            self.tree.best()
        } else {
            // Not told about the servers (used without a Pool): stay exact.
            R::linear_scan(dests)
        }
    }

    fn dest_added(&mut self, dests: &DestList, _id: DestId) {
        self.tree.invalidate(dests);
    }

    fn dest_updated(&mut self, dests: &DestList, id: DestId) {
        self.tree.update(dests, id);
    }

    fn dest_removed(&mut self, dests: &DestList, _id: DestId) {
        self.tree.invalidate(dests);
    }

    fn load_changed(&mut self, dests: &DestList, id: DestId) {
        self.tree.update(dests, id);
    }

    fn loads_changed(&mut self, dests: &DestList) {
        // Rebuilt in O(n) at the next pick: cheaper than one O(log n) walk per server.
        self.tree.invalidate(dests);
    }
}

/// No candidate under this node.
const NONE: u32 = u32::MAX;

/// A node of the tree: the winning position below it and its rank, kept together so a
/// walk up the tree reads no other array.
#[derive(Debug, Clone, Copy)]
struct Node<R> {
    /// Kernel list position, or [`NONE`] (then `key` is `None`).
    pos: u32,
    key: Option<R>,
}

impl<R> Node<R> {
    const EMPTY: Self = Self {
        pos: NONE,
        key: None,
    };
}

/// A tournament tree over a [`DestList`] ranked by `R`.
#[derive(Debug, Clone)]
pub struct Tournament<R> {
    /// Server handles by kernel list position.
    ids: Vec<DestId>,
    /// Implicit binary tree, root at 1, leaves at `size + position` (a leaf's key is its
    /// server's rank, `None` when the scan skips it); each node holds the winner below
    /// it.
    nodes: Vec<Node<R>>,
    /// Number of leaves (a power of two, at least 1).
    size: usize,
    /// Servers were added or removed since the last rebuild.
    stale: bool,
}

impl<R> Default for Tournament<R> {
    fn default() -> Self {
        Self {
            ids: Vec::new(),
            nodes: vec![Node::EMPTY, Node::EMPTY],
            size: 1,
            stale: false,
        }
    }
}

impl<R: Rank> Tournament<R> {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree over `dests`.
    #[must_use]
    pub fn from_dests(dests: &DestList) -> Self {
        let mut t = Self::new();
        t.rebuild(dests);
        t
    }

    /// Number of servers the tree was built over.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether it was built over no server.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether the tree covers exactly the servers of `dests` (not stale, same count; the
    /// hooks keep the rest in step).
    #[must_use]
    pub fn is_synced(&self, dests: &DestList) -> bool {
        !self.stale && self.ids.len() == dests.len()
    }

    /// The winner: the first server in list order among those of least rank, or `None`
    /// when the scan would skip every server. O(1); meaningful when
    /// [`Tournament::is_synced`].
    #[must_use]
    pub fn best(&self) -> Option<DestId> {
        match self.nodes[1].pos {
            NONE => None,
            p => Some(self.ids[p as usize]),
        }
    }

    /// Marks the tree stale after servers were added or removed, reserving room for a
    /// rebuild over `dests` (control plane: may allocate).
    pub fn invalidate(&mut self, dests: &DestList) {
        let n = dests.len();
        self.stale = true;
        self.ids.reserve(n.saturating_sub(self.ids.len()));
        let nodes = 2 * n.next_power_of_two().max(1);
        self.nodes.reserve(nodes.saturating_sub(self.nodes.len()));
    }

    /// Rebuilds a stale tree if the room reserved for it suffices (then without
    /// allocating), and says whether the tree now covers `dests`. O(1) when up to date.
    pub fn refresh(&mut self, dests: &DestList) -> bool {
        let n = dests.len();
        if self.stale
            && self.ids.capacity() >= n
            && self.nodes.capacity() >= 2 * n.next_power_of_two().max(1)
        {
            self.rebuild(dests);
        }
        self.is_synced(dests)
    }

    /// Rebuilds the tree from `dests` in O(n) (after an add or a remove).
    pub fn rebuild(&mut self, dests: &DestList) {
        let n = dests.len();
        self.ids.clear();
        self.ids.extend(dests.iter().map(RealServer::id));
        self.size = n.next_power_of_two().max(1);
        self.nodes.clear();
        self.nodes.resize(2 * self.size, Node::EMPTY);
        for (p, d) in dests.iter().enumerate() {
            self.nodes[self.size + p] = Self::leaf(p, R::key(d));
        }
        for i in (1..self.size).rev() {
            self.nodes[i] = self.winner(self.nodes[2 * i], self.nodes[2 * i + 1]);
        }
        self.stale = false;
    }

    /// Re-ranks server `id` from `dests` in O(log n) (its counters, overload flag, weight
    /// or thresholds changed). A stale tree is left for the next rebuild, which reads
    /// every rank afresh; a tree out of step is marked stale.
    pub fn update(&mut self, dests: &DestList, id: DestId) {
        if self.stale {
            return;
        }
        let found = self
            .position(id)
            .and_then(|pos| Some((pos, dests.at(pos)?)))
            .filter(|&(_, d)| d.id() == id && self.ids.len() == dests.len());
        let Some((pos, d)) = found else {
            self.invalidate(dests);
            return;
        };
        let mut i = self.size + pos;
        self.nodes[i] = Self::leaf(pos, R::key(d));
        let leaf = u32::try_from(pos).unwrap_or(NONE);
        while i > 1 {
            i /= 2;
            let old = self.nodes[i].pos;
            let new = self.winner(self.nodes[2 * i], self.nodes[2 * i + 1]);
            // Ancestors see only this node's winner and its key: if the winner is the
            // same other server, nothing above changes.
            if new.pos == old && old != leaf {
                return;
            }
            self.nodes[i] = new;
        }
    }

    /// Kernel list position of `id` in the tree. `DestList` hands out increasing handles
    /// and lists the newest first, so positions hold decreasing handles: a binary search,
    /// checked, with a linear search as the fallback should that ever not hold.
    fn position(&self, id: DestId) -> Option<usize> {
        match self.ids.binary_search_by(|probe| id.cmp(probe)) {
            Ok(p) if self.ids[p] == id => Some(p),
            _ => self.ids.iter().position(|&x| x == id),
        }
    }

    fn leaf(pos: usize, key: Option<R>) -> Node<R> {
        match (u32::try_from(pos), key) {
            (Ok(pos), Some(k)) => Node { pos, key: Some(k) },
            _ => Node::EMPTY,
        }
    }

    /// The better of two subtree winners, `left` (earlier in the list) on ties.
    #[inline]
    fn winner(&self, left: Node<R>, right: Node<R>) -> Node<R> {
        match (left.key, right.key) {
            (None, _) => right,
            (_, None) => left,
            (Some(l), Some(r)) if r.beats(l) => right,
            _ => left,
        }
    }
}

/// `a_num / a_den < b_num / b_den` for positive denominators, exactly (the kernel's
/// `(s64)loh * w(d) > (s64)doh * w(least)` with `a` = d and `b` = least).
#[inline]
pub(crate) fn ratio_less(a_num: u64, a_den: u32, b_num: u64, b_den: u32) -> bool {
    if (a_num | b_num) >> 32 == 0 {
        // Both products fit 64 bits (the common case: under 2^24 active connections).
        b_num * u64::from(a_den) > a_num * u64::from(b_den)
    } else {
        u128::from(b_num) * u128::from(a_den) > u128::from(a_num) * u128::from(b_den)
    }
}

#[cfg(test)]
mod tests {
    use crate::scheduler::test_support::{addr, input};
    use crate::scheduler::{
        ConnCount, DestId, DestList, Pool, RealServerConfig, Scheduler, fo, lc, nq, ovf, sed, wlc,
    };
    use crate::time::Instant;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Add {
            weight: u32,
            u: u32,
            l: u32,
        },
        Edit {
            at: usize,
            weight: u32,
            u: u32,
            l: u32,
        },
        Remove {
            at: usize,
        },
        Bind {
            at: usize,
            kind: ConnCount,
        },
        Unbind {
            at: usize,
            kind: ConnCount,
        },
        Counters {
            at: usize,
            active: u32,
            inactive: u32,
        },
    }

    fn weight() -> impl Strategy<Value = u32> {
        prop_oneof![3 => 0u32..4, 1 => 0u32..=65535]
    }

    /// Connection counts: mostly small (ties), some large enough that
    /// `overhead * weight` overflows 32 bits. Kept below 2^30 as `DestList::bind` adds
    /// active + inactive in a `u32`.
    fn count() -> impl Strategy<Value = u32> {
        prop_oneof![4 => 0u32..4, 1 => 0u32..300, 1 => 0u32..(1 << 30)]
    }

    fn thresholds() -> impl Strategy<Value = (u32, u32)> {
        prop_oneof![2 => Just((0, 0)), 1 => (1u32..6).prop_flat_map(|u| (Just(u), 0..=u))]
    }

    fn kind() -> impl Strategy<Value = ConnCount> {
        prop_oneof![
            Just(ConnCount::Active),
            Just(ConnCount::Inactive),
            Just(ConnCount::Persistent)
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        let at = any::<usize>();
        prop_oneof![
            2 => (weight(), thresholds()).prop_map(|(weight, (u, l))| Op::Add { weight, u, l }),
            1 => (at, weight(), thresholds())
                .prop_map(|(at, weight, (u, l))| Op::Edit { at, weight, u, l }),
            1 => at.prop_map(|at| Op::Remove { at }),
            4 => (at, kind()).prop_map(|(at, kind)| Op::Bind { at, kind }),
            3 => (at, kind()).prop_map(|(at, kind)| Op::Unbind { at, kind }),
            2 => (at, count(), count())
                .prop_map(|(at, active, inactive)| Op::Counters { at, active, inactive }),
        ]
    }

    type Reference = fn(&DestList) -> Option<DestId>;

    fn schedulers() -> Vec<(Box<dyn Scheduler>, Reference)> {
        vec![
            (Box::new(lc::Lc::new()), lc::linear_scan as Reference),
            (Box::new(wlc::Wlc::new()), wlc::linear_scan),
            (Box::new(sed::Sed::new()), sed::linear_scan),
            (Box::new(nq::Nq::new()), nq::linear_scan),
            (Box::new(fo::Fo::new()), fo::linear_scan),
            (Box::new(ovf::Ovf::new()), ovf::linear_scan),
        ]
    }

    /// Applies `op` to a pool; `next` numbers the servers' addresses.
    fn apply(p: &mut Pool, op: &Op, next: &mut usize) {
        let n = p.dests().len();
        let id = |at: usize| p.dests().at(at % n.max(1)).map(|d| d.id());
        match *op {
            Op::Add { weight, u, l } => {
                *next += 1;
                let cfg = RealServerConfig::new(addr(*next), 80)
                    .weight(weight)
                    .thresholds(u, l);
                p.add(cfg).unwrap();
            }
            Op::Edit { at, weight, u, l } => {
                if let Some(id) = id(at) {
                    p.edit(id, weight, u, l).unwrap();
                }
            }
            Op::Remove { at } => {
                if let Some(id) = id(at) {
                    p.remove(id).unwrap();
                }
            }
            Op::Bind { at, kind } => {
                if let Some(id) = id(at) {
                    p.bind(id, kind).unwrap();
                }
            }
            Op::Unbind { at, kind } => {
                if let Some(id) = id(at) {
                    p.unbind(id, kind).unwrap();
                }
            }
            Op::Counters {
                at,
                active,
                inactive,
            } => {
                if let Some(id) = id(at) {
                    p.set_counters(id, active, inactive, 0).unwrap();
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// After every operation of a random sequence of adds, edits, removes, binds,
        /// unbinds and counter loads, the tree picks of lc, wlc, sed, nq, fo and ovf are
        /// the kernel's linear scans' picks.
        #[test]
        fn tree_picks_equal_the_linear_scan(ops in proptest::collection::vec(op(), 1..120)) {
            for (sched, reference) in schedulers() {
                let mut p = Pool::new(sched);
                let mut next = 0;
                for op in &ops {
                    apply(&mut p, op, &mut next);
                    let want = reference(p.dests());
                    let got = p.schedule(&input(), Instant::ZERO);
                    prop_assert_eq!(got, want, "{} after {:?}", p.scheduler().name(), op);
                }
            }
        }

        /// The same on random loads, weights and overload flags of a larger list built
        /// first and handed to the scheduler by `set_scheduler`, then after each of many
        /// single-server counter changes.
        #[test]
        fn tree_picks_equal_the_linear_scan_on_random_loads(
            servers in proptest::collection::vec((weight(), count(), count(), any::<bool>()), 1..200),
            changes in proptest::collection::vec((any::<usize>(), count(), count()), 0..64),
        ) {
            for (sched, reference) in schedulers() {
                let mut p = Pool::new(Box::new(crate::scheduler::rr::Rr::new()));
                let mut ids = Vec::new();
                for (i, &(w, a, n, over)) in servers.iter().enumerate() {
                    let cfg = RealServerConfig::new(addr(i), 80).weight(w);
                    let cfg = if over { cfg.thresholds(1, 0) } else { cfg };
                    let id = p.add(cfg).unwrap();
                    p.set_counters(id, a, n, 0).unwrap();
                    if over {
                        p.bind(id, ConnCount::Persistent).unwrap();
                        p.bind(id, ConnCount::Inactive).unwrap();
                    }
                    ids.push(id);
                }
                p.set_scheduler(sched);
                prop_assert_eq!(p.schedule(&input(), Instant::ZERO), reference(p.dests()));
                for &(at, a, n) in &changes {
                    p.set_counters(ids[at % ids.len()], a, n, 0).unwrap();
                    let name = p.scheduler().name();
                    prop_assert_eq!(
                        p.schedule(&input(), Instant::ZERO),
                        reference(p.dests()),
                        "{}",
                        name
                    );
                }
            }
        }
    }
}
