//! `twos`: power of two choices (`net/netfilter/ipvs/ip_vs_twos.c`), with an injected,
//! seeded random number generator.
//!
//! The kernel sums the weights of the servers that are neither overloaded nor of weight
//! 0, adds 1, and draws two numbers `r1`, `r2` with `get_random_u32_below(total)`, so
//! each lies in `[0, sum]`. It walks the list (same filter) subtracting each weight from
//! both; the first server that brings `r1` to `<= 0` is choice 1, likewise for `r2`. It
//! returns choice 2 when `weight2 * overhead1 > weight1 * overhead2` (the overhead is
//! `active * 256 + inactive`), else choice 1. The first eligible server is drawn with
//! probability `(w + 1) / (sum + 1)`, the others `w / (sum + 1)`.
//!
//! Verified against the source, and reproduced as the kernel computes it: every quantity
//! is a C `int`, and the final products are `int * int` **without** a widening cast
//! (unlike `wlc`), so they wrap once `weight * overhead` passes 2^31 (for example weight
//! 100 with 84,000 active connections). The kernel is built with `-fno-strict-overflow`,
//! so this wraps in two's complement; [`Twos`] uses wrapping `i32` arithmetic for the sum,
//! the draws, the overheads and the products to pick what the kernel picks. Should the
//! walk not find a choice (only possible when the weight sum itself wraps), the kernel
//! falls back to the last eligible server found by its first loop, and so does this.
//!
//! Randomness: [`rand_below`] is the kernel's `__get_random_u32_below` (Lemire's
//! multiply-shift with rejection) over any 32-bit source; [`Twos`] feeds it from a
//! [`SmallRng`] seeded with the `u64` given to [`Twos::new`], so a run is reproducible.
//! The kernel's `get_random_u32` is a ChaCha-based CSPRNG; the draw sequence differs, the
//! mapping from 32-bit draws to picks is the kernel's.

use super::{DestId, DestList, RealServer, SchedInput, Scheduler};
use crate::time::Instant;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The `twos` scheduler.
#[derive(Debug, Clone)]
pub struct Twos {
    rng: SmallRng,
}

impl Twos {
    /// A scheduler drawing from a [`SmallRng`] seeded with `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(seed),
        }
    }
}

/// The kernel's `__get_random_u32_below(ceil)`: a uniform number in `[0, ceil)` from
/// `next`, a source of uniform 32-bit words, by Lemire's multiply-shift: the high half of
/// `ceil * rand`, redrawing while the low half is below `2^32 mod ceil` (checked only
/// when the low half is below `ceil`, as the kernel does). `ceil == 0` returns one raw
/// draw, as the kernel does.
#[must_use]
pub fn rand_below(ceil: u32, mut next: impl FnMut() -> u32) -> u32 {
    let rand = next();
    if ceil == 0 {
        return rand;
    }
    let mut mult = u64::from(ceil) * u64::from(rand);
    if (mult as u32) < ceil {
        let bound = ceil.wrapping_neg() % ceil;
        while (mult as u32) < bound {
            mult = u64::from(ceil) * u64::from(next());
        }
    }
    (mult >> 32) as u32
}

/// The kernel's `int` overhead, `(activeconns << 8) + inactconns`, wrapping.
fn overhead_i32(d: &RealServer) -> i32 {
    (d.active() as i32)
        .wrapping_shl(8)
        .wrapping_add(d.inactive() as i32)
}

fn weight_i32(d: &RealServer) -> i32 {
    d.weight() as i32
}

/// One `ip_vs_twos_schedule` with the two draws taken from `next`.
#[must_use]
pub fn pick_with(dests: &DestList, mut next: impl FnMut() -> u32) -> Option<DestId> {
    let mut total = 0i32;
    let mut fallback = None;
    for d in dests.iter() {
        if !d.is_overloaded() && weight_i32(d) > 0 {
            total = total.wrapping_add(weight_i32(d));
            fallback = Some(d);
        }
    }
    let mut choice1 = fallback?;
    total = total.wrapping_add(1);
    let mut r1 = rand_below(total as u32, &mut next) as i32;
    let mut r2 = rand_below(total as u32, &mut next) as i32;
    let (mut w1, mut w2, mut oh1, mut oh2) = (-1i32, -1i32, 0i32, 0i32);
    let mut choice2 = None;
    for d in dests.iter() {
        let w = weight_i32(d);
        if d.is_overloaded() || w <= 0 {
            continue;
        }
        r1 = r1.wrapping_sub(w);
        r2 = r2.wrapping_sub(w);
        if r1 <= 0 && w1 == -1 {
            choice1 = d;
            w1 = w;
            oh1 = overhead_i32(d);
        }
        if r2 <= 0 && w2 == -1 {
            choice2 = Some(d);
            w2 = w;
            oh2 = overhead_i32(d);
        }
        if w1 != -1 && w2 != -1 {
            break;
        }
    }
    if let Some(c2) = choice2
        && w2.wrapping_mul(oh1) > w1.wrapping_mul(oh2)
    {
        choice1 = c2;
    }
    Some(choice1.id())
}

impl Scheduler for Twos {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn schedule(&mut self, dests: &DestList, _input: &SchedInput, _now: Instant) -> Option<DestId> {
        let rng = &mut self.rng;
        pick_with(dests, || rng.next_u32())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::test_support::{letter, load, picks, picks_binding, pool, pool_thr};
    use crate::scheduler::{ConnCount, Pool};

    /// A raw 32-bit draw that `rand_below(ceil, ..)` maps to `r` without a redraw.
    fn raw(r: u32, ceil: u32) -> u32 {
        u32::try_from(((u64::from(r) << 32) + (1 << 31)) / u64::from(ceil)).unwrap()
    }

    fn pick(p: &Pool, ids: &[DestId], r1: u32, r2: u32, total: u32) -> char {
        let mut draws = [raw(r1, total), raw(r2, total)].into_iter();
        letter(ids, pick_with(p.dests(), || draws.next().unwrap()))
    }

    #[test]
    fn rand_below_is_the_kernels() {
        // 10 * 2^31 = 5 * 2^32: high 5 but low 0 < 2^32 mod 10 = 6, so it redraws;
        // 10 * (2^32 - 1) = 9 * 2^32 + (2^32 - 10): 9.
        let mut d = [0x8000_0000u32, 0xffff_ffff].into_iter();
        assert_eq!(rand_below(10, || d.next().unwrap()), 9);
        assert!(d.next().is_none(), "two draws taken");
        assert_eq!(rand_below(0, || 1234), 1234, "ceil 0: the raw draw");
        assert_eq!(rand_below(1, || u32::MAX), 0);
        assert_eq!(rand_below(3, || 0xaaaa_aaab), 2);
        for r in 0..10 {
            assert_eq!(rand_below(10, || raw(r, 10)), r);
        }
    }

    #[test]
    fn hand_derived_choices() {
        // List C(2), B(3), A(4): total 9 + 1, r in [0, 9]. r <= 2: C, 3..=5: B, 6..=9: A.
        let (mut p, ids) = pool(Twos::new(1), &[4, 3, 2]);
        assert_eq!(p.scheduler().name(), "twos");
        for (r, want) in [(0, 'C'), (2, 'C'), (3, 'B'), (5, 'B'), (6, 'A'), (9, 'A')] {
            assert_eq!(pick(&p, &ids, r, r, 10), want, "r = {r}");
        }
        // Equal loads: choice 1.
        assert_eq!(pick(&p, &ids, 0, 9, 10), 'C');
        // C one active (256 / 2), A idle: choice 2 (A) is strictly better.
        load(&mut p, &ids, &[(0, 0), (0, 0), (1, 0)]);
        assert_eq!(pick(&p, &ids, 0, 9, 10), 'A');
        // B 256 / 3 against A 0 / 4 with A as choice 1: A stays.
        load(&mut p, &ids, &[(0, 0), (1, 0), (0, 0)]);
        assert_eq!(pick(&p, &ids, 9, 3, 10), 'A');
        // 3 * 256 against 4 * 0: B as choice 2 loses; as choice 1 it is replaced.
        assert_eq!(pick(&p, &ids, 3, 9, 10), 'A');
    }

    #[test]
    fn int_products_wrap_as_in_the_kernel() {
        // List B(100), A(100); A holds 84,000 active: overhead 21,504,000, and
        // 100 * 21,504,000 = 2,150,400,000 wraps to a negative int. With A as choice 1
        // and idle B as choice 2, the kernel's `w2 * oh1 > w1 * oh2` is false: it keeps A.
        let (mut p, ids) = pool(Twos::new(1), &[100, 100]);
        load(&mut p, &ids, &[(84_000, 0), (0, 0)]);
        assert_eq!(pick(&p, &ids, 150, 50, 201), 'A');
        // Without the wrap (8,000 active) B wins.
        load(&mut p, &ids, &[(8_000, 0), (0, 0)]);
        assert_eq!(pick(&p, &ids, 150, 50, 201), 'B');
    }

    #[test]
    fn seeded_and_reproducible() {
        let (mut p, ids) = pool(Twos::new(7), &[1, 2, 3]);
        let (mut q, _) = pool(Twos::new(7), &[1, 2, 3]);
        let a = picks_binding(&mut p, &ids, 200);
        assert_eq!(a, picks_binding(&mut q, &ids, 200));
        let (mut r, _) = pool(Twos::new(8), &[1, 2, 3]);
        assert_ne!(a, picks_binding(&mut r, &ids, 200));
        // With no load, choice 1 always stands: C (first) is drawn with probability
        // (1 + 1) / 4 among three weight-1 servers, B and A 1 / 4 each.
        let (mut p, ids) = pool(Twos::new(3), &[1, 1, 1]);
        let s = picks(&mut p, &ids, 4000);
        let c = s.matches('C').count();
        assert!((1850..2150).contains(&c), "C picked {c} times");
    }

    #[test]
    fn weight_zero_overload_single() {
        let (mut p, ids) = pool(Twos::new(5), &[0, 2, 0]);
        assert!(picks(&mut p, &ids, 50).chars().all(|c| c == 'B'));
        p.edit(ids[1], 0, 0, 0).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "-");
        let (mut p, ids) = pool_thr(Twos::new(5), &[(1, 1, 0), (1, 1, 0)]);
        let s = picks_binding(&mut p, &ids, 3);
        assert!(s == "AB-" || s == "BA-", "{s}");
        p.unbind(ids[1], ConnCount::Active).unwrap();
        assert_eq!(picks(&mut p, &ids, 2), "BB");
        p.remove(ids[1]).unwrap();
        assert_eq!(picks(&mut p, &ids, 1), "-");
        let (mut p, ids) = pool(Twos::new(5), &[]);
        assert_eq!(picks(&mut p, &ids, 1), "-");
    }
}
