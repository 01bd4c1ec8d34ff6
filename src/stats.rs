//! Traffic counters and the kernel's rate estimator (`ip_vs_est.c`).
//!
//! Every 2 seconds the estimator folds the counters into exponentially weighted moving
//! averages with weight 1/4 ("the rate during the last 8 seconds"), in fixed point:
//! connections and packets per second scaled by 2^10, bytes per second by 2^5. Reported
//! rates round up the same way the kernel's `ip_vs_read_estimator` does, so a replay gives
//! the same `ipvsadm --rate` numbers as the kernel for the same traffic.

use core::time::Duration;

/// How often the kernel runs the estimator.
pub const ESTIMATOR_PERIOD: Duration = Duration::from_secs(2);

/// Cumulative counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Counters {
    /// Connections scheduled (templates not counted).
    pub conns: u64,
    /// Packets from clients.
    pub inpkts: u64,
    /// Packets to clients (seen only with NAT).
    pub outpkts: u64,
    /// Bytes from clients (L3 length, before any rewrite).
    pub inbytes: u64,
    /// Bytes to clients.
    pub outbytes: u64,
}

impl Counters {
    fn minus(self, o: Self) -> Self {
        Self {
            conns: self.conns.wrapping_sub(o.conns),
            inpkts: self.inpkts.wrapping_sub(o.inpkts),
            outpkts: self.outpkts.wrapping_sub(o.outpkts),
            inbytes: self.inbytes.wrapping_sub(o.inbytes),
            outbytes: self.outbytes.wrapping_sub(o.outbytes),
        }
    }
}

/// Rates as `ipvsadm --rate` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets per second from clients.
    pub inpps: u64,
    /// Packets per second to clients.
    pub outpps: u64,
    /// Bytes per second from clients.
    pub inbps: u64,
    /// Bytes per second to clients.
    pub outbps: u64,
}

/// Counters and estimator of one service, real server or the whole director.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    live: Counters,
    /// What the estimator last folded in (the kernel's `kstats`).
    kstats: Counters,
    /// The zero point set by [`Stats::zero`] (`kstats0`).
    kstats0: Counters,
    last: Counters,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

impl Stats {
    /// Counts a new connection.
    pub fn count_conn(&mut self) {
        self.live.conns += 1;
    }

    /// Counts a packet from a client of `bytes` bytes.
    pub fn count_in(&mut self, bytes: usize) {
        self.live.inpkts += 1;
        self.live.inbytes += bytes as u64;
    }

    /// Counts a packet to a client of `bytes` bytes.
    pub fn count_out(&mut self, bytes: usize) {
        self.live.outpkts += 1;
        self.live.outbytes += bytes as u64;
    }

    /// One estimator run (`ip_vs_chain_estimation`); call every [`ESTIMATOR_PERIOD`].
    pub fn estimate(&mut self) {
        self.kstats = self.live;
        let k = self.kstats;
        let ewma = |avg: &mut i64, now: u64, last: u64, shift: u32| {
            let rate = (now.wrapping_sub(last) << shift) as i64;
            *avg += (rate - *avg) >> 2;
        };
        ewma(&mut self.cps, k.conns, self.last.conns, 9);
        ewma(&mut self.inpps, k.inpkts, self.last.inpkts, 9);
        ewma(&mut self.outpps, k.outpkts, self.last.outpkts, 9);
        ewma(&mut self.inbps, k.inbytes, self.last.inbytes, 4);
        ewma(&mut self.outbps, k.outbytes, self.last.outbytes, 4);
        self.last = k;
    }

    /// `ipvsadm -Z`: the counters restart from zero and the rates are cleared
    /// (`ip_vs_zero_stats`).
    pub fn zero(&mut self) {
        self.kstats = self.live;
        self.kstats0 = self.live;
        self.last = self.live;
        self.cps = 0;
        self.inpps = 0;
        self.outpps = 0;
        self.inbps = 0;
        self.outbps = 0;
    }

    /// Counters since the last zero, up to this moment.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.live.minus(self.kstats0)
    }

    /// Counters since the last zero as the kernel reports them: as of the last estimator
    /// run (so up to 2 s behind).
    #[must_use]
    pub fn reported_counters(&self) -> Counters {
        self.kstats.minus(self.kstats0)
    }

    /// Rates, rounded as `ip_vs_read_estimator` does.
    #[must_use]
    pub fn rates(&self) -> Rates {
        let r = |v: i64, add: i64, shift: u32| ((v + add) >> shift).max(0) as u64;
        Rates {
            cps: r(self.cps, 0x1ff, 10),
            inpps: r(self.inpps, 0x1ff, 10),
            outpps: r(self.outpps, 0x1ff, 10),
            inbps: r(self.inbps, 0xf, 5),
            outbps: r(self.outbps, 0xf, 5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_converges_to_the_true_rate() {
        let mut s = Stats::default();
        // 100 connections, 1000 packets and 64000 bytes per second, for three minutes
        // (the 1/4-weight average needs that long to settle within rounding).
        for _ in 0..90 {
            for _ in 0..200 {
                s.count_conn();
            }
            for _ in 0..2000 {
                s.count_in(64);
            }
            s.estimate();
        }
        let r = s.rates();
        assert_eq!((r.cps, r.inpps, r.inbps), (100, 1000, 64000));
        assert_eq!(s.counters().conns, 18000);
    }

    #[test]
    fn first_runs_follow_the_kernel_fixed_point() {
        let mut s = Stats::default();
        for _ in 0..20 {
            s.count_conn();
        }
        s.estimate();
        // rate = 20 << 9 = 10240; cps = 10240 >> 2 = 2560; reported (2560 + 511) >> 10 = 2.
        assert_eq!(s.rates().cps, 2);
        s.estimate();
        // rate 0: cps += (0 - 2560) >> 2 = -640 -> 1920; (1920 + 511) >> 10 = 2.
        assert_eq!(s.rates().cps, 2);
        s.estimate();
        // 1920 - 480 = 1440 -> (1440 + 511) >> 10 = 1.
        assert_eq!(s.rates().cps, 1);
    }

    #[test]
    fn zero_resets_counters_and_rates_and_reported_lags() {
        let mut s = Stats::default();
        s.count_in(100);
        s.estimate();
        s.count_in(50);
        assert_eq!(s.counters().inbytes, 150);
        assert_eq!(
            s.reported_counters().inbytes,
            100,
            "the kernel shows the last estimator run"
        );
        s.zero();
        assert_eq!(s.counters(), Counters::default());
        assert_eq!(s.rates(), Rates::default());
        s.count_out(10);
        s.estimate();
        assert_eq!(s.reported_counters().outbytes, 10);
        assert_eq!(s.rates().outbps, (((10 << 4) >> 2) + 0xf) >> 5);
    }
}
