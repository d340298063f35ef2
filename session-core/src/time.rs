//! Absolute instants with millisecond precision, the unit every store persists.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An absolute instant: milliseconds since the Unix epoch (UTC).
///
/// Expiry is always an absolute instant, never a relative TTL, so a record means the same
/// thing in every store, and a store can compare it with "now" on its own. Milliseconds are
/// what ThinkJS's `expire` column holds and what Redis' `PEXPIREAT` takes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self(0);

    /// The current wall-clock time.
    pub fn now() -> Self {
        let millis = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(elapsed) => i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            // A clock set before 1970 is a misconfigured host; the epoch is the safest answer.
            Err(_) => 0,
        };
        Self(millis)
    }

    /// The instant `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whether this instant is at or before `now`: a record expiring at `self` is dead.
    pub fn is_reached(self, now: Self) -> bool {
        self.0 <= now.0
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        u64::try_from(self.0.saturating_sub(earlier.0))
            .map(Duration::from_millis)
            .unwrap_or(Duration::ZERO)
    }

    /// This instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        match u64::try_from(self.0) {
            Ok(ms) => UNIX_EPOCH + Duration::from_millis(ms),
            Err(_) => UNIX_EPOCH - Duration::from_millis(self.0.unsigned_abs()),
        }
    }
}

fn millis_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Self;

    /// Saturates instead of overflowing: a huge timeout means "never", not a panic.
    fn add(self, rhs: Duration) -> Self {
        Self(self.0.saturating_add(millis_of(rhs)))
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Self;

    fn sub(self, rhs: Duration) -> Self {
        Self(self.0.saturating_sub(millis_of(rhs)))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({}ms)", self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match u64::try_from(self.0) {
            Ok(_) => write!(
                f,
                "{}",
                humantime::format_rfc3339_millis(self.to_system_time())
            ),
            Err(_) => write!(f, "{}ms", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_millis(i64::MAX - 1);
        assert_eq!((t + Duration::from_secs(10)).as_millis(), i64::MAX);
        assert_eq!((Timestamp::EPOCH - Duration::MAX).as_millis(), i64::MIN + 1);
    }

    #[test]
    fn reached_is_inclusive() {
        let t = Timestamp::from_millis(1_000);
        assert!(t.is_reached(Timestamp::from_millis(1_000)));
        assert!(!t.is_reached(Timestamp::from_millis(999)));
        assert_eq!(
            t.saturating_duration_since(Timestamp::from_millis(400)),
            Duration::from_millis(600)
        );
        assert_eq!(
            Timestamp::from_millis(1).saturating_duration_since(t),
            Duration::ZERO
        );
    }

    #[test]
    fn displays_as_rfc3339() {
        assert_eq!(
            Timestamp::from_millis(1_500).to_string(),
            "1970-01-01T00:00:01.500Z"
        );
    }
}
