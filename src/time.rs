//! The crate's own clock value. The library never reads a clock: the embedder builds an
//! [`Instant`] from whatever it has (a monotonic clock, a capture timestamp, a test counter).

use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time, in microseconds since an epoch the embedder chooses.
///
/// Only differences between instants matter; all instants fed to one engine must share
/// the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Instant {
    micros: i64,
}

impl Instant {
    /// The epoch.
    pub const ZERO: Self = Self { micros: 0 };

    /// An instant `micros` microseconds after the epoch.
    #[must_use]
    pub const fn from_micros(micros: i64) -> Self {
        Self { micros }
    }

    /// An instant `millis` milliseconds after the epoch.
    #[must_use]
    pub const fn from_millis(millis: i64) -> Self {
        Self {
            micros: millis.saturating_mul(1000),
        }
    }

    /// An instant `secs` seconds after the epoch.
    #[must_use]
    pub const fn from_secs(secs: i64) -> Self {
        Self {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// A capture timestamp (seconds and nanoseconds since the Unix epoch, as pcap stores it).
    #[must_use]
    pub const fn from_timestamp(secs: i64, nanos: u32) -> Self {
        Self {
            micros: secs
                .saturating_mul(1_000_000)
                .saturating_add((nanos / 1000) as i64),
        }
    }

    /// Microseconds since the epoch.
    #[must_use]
    pub const fn micros(self) -> i64 {
        self.micros
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    #[must_use]
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        let d = self.micros.saturating_sub(earlier.micros);
        if d <= 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(d as u64)
        }
    }
}

#[inline]
fn duration_micros(d: Duration) -> i64 {
    // 64-bit arithmetic: `as_micros` is u128, a visible cost per packet.
    const MAX_SECS: u64 = (i64::MAX / 1_000_000) as u64;
    if d.as_secs() < MAX_SECS {
        d.as_secs() as i64 * 1_000_000 + i64::from(d.subsec_micros())
    } else {
        i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
    }
}

impl Add<Duration> for Instant {
    type Output = Self;
    #[inline]
    fn add(self, d: Duration) -> Self {
        Self {
            micros: self.micros.saturating_add(duration_micros(d)),
        }
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Instant {
    type Output = Self;
    fn sub(self, d: Duration) -> Self {
        Self {
            micros: self.micros.saturating_sub(duration_micros(d)),
        }
    }
}

impl Sub for Instant {
    type Output = Duration;
    /// Saturates at zero when `rhs` is later.
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_capture_timestamps() {
        let t = Instant::from_timestamp(1_700_000_000, 123_456_789);
        assert_eq!(t.micros(), 1_700_000_000_123_456);
        assert_eq!((t + Duration::from_millis(5)) - t, Duration::from_millis(5));
        assert_eq!(t - (t + Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(
            Instant::from_secs(2) - Instant::from_millis(500),
            Duration::from_millis(1500)
        );
        assert_eq!(
            Instant::from_micros(i64::MAX) + Duration::from_secs(1),
            Instant::from_micros(i64::MAX)
        );
    }
}
