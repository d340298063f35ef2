//! The expiry policy, in one place: when a session stops being usable, which expiry a
//! request leaves it with, and when moving that expiry is worth a write and a fresh cookie.
//!
//! Everything here is a pure function of the configuration and the clock readings it is
//! given, so the table-driven tests below cover each rule and its edges without a store.

use std::time::Duration;

use crate::{SessionConfig, Timestamp};

/// The configured timeouts, as the session handle applies them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExpiryPolicy {
    /// Idle timeout: `timeout`.
    idle: Duration,
    /// Lifetime from creation, whatever the activity: `absolute_timeout`.
    lifetime: Option<Duration>,
    /// Whether use pushes the idle timeout forward: `rolling`.
    rolling: bool,
    /// The smallest step the expiry moves by on a request that changes nothing else:
    /// `touch_after`.
    step: Duration,
}

/// The expiry a flush of a stored session writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NextExpiry {
    /// The session's expiry after this request.
    pub(crate) expires_at: Timestamp,
    /// Whether the expiry moved: the store is told (a `touch` if nothing else changed) and
    /// the response carries a fresh cookie, so cookie and server agree on the end.
    pub(crate) moved: bool,
}

impl ExpiryPolicy {
    /// The policy of `config` (validated: `idle` is not zero, and a rolling `step` is
    /// shorter than `idle`).
    pub(crate) fn new(config: &SessionConfig) -> Self {
        Self {
            idle: config.timeout,
            lifetime: config.absolute_timeout,
            rolling: config.rolling,
            step: config.touch_after,
        }
    }

    /// The same policy with another idle timeout (a remembered session's). Not zero, and
    /// longer than a rolling `step` (the configuration validates both).
    pub(crate) fn with_idle(self, idle: Duration) -> Self {
        Self { idle, ..self }
    }

    /// Whether a stored session that expires at `expires_at` and was created at
    /// `created_at` may still be used at `now`. Both limits are enforced here, on the
    /// server, whatever the cookie says and whether or not gc has run.
    pub(crate) fn is_usable(
        &self,
        expires_at: Timestamp,
        created_at: Timestamp,
        now: Timestamp,
    ) -> bool {
        !expires_at.is_reached(now)
            && !self
                .lifetime_end(created_at)
                .is_some_and(|end| end.is_reached(now))
    }

    /// When a session that expires at `expires_at` was last refreshed, as far as its
    /// expiry tells: the expiry minus the idle timeout, within `created_at..=now`.
    pub(crate) fn last_active(
        &self,
        expires_at: Timestamp,
        created_at: Timestamp,
        now: Timestamp,
    ) -> Timestamp {
        (expires_at - self.idle).clamp(created_at, now.max(created_at))
    }

    /// The expiry of a session first stored at `now`: the idle timeout (or the per-call
    /// `timeout` of `set_with_timeout`), capped by the absolute lifetime.
    pub(crate) fn for_new(&self, now: Timestamp, per_call: Option<Duration>) -> Timestamp {
        self.capped(now + per_call.unwrap_or(self.idle), now)
    }

    /// The expiry a stored session should have after a request at `now`: a per-call
    /// timeout replaces the current one outright; otherwise a rolling session moves
    /// forward to `now` plus the idle timeout, and never back. Always capped by the
    /// absolute lifetime from `created_at`. A request that moves the session to a new id
    /// writes a whole record anyway and takes this as it is.
    pub(crate) fn target(
        &self,
        now: Timestamp,
        created_at: Timestamp,
        current: Timestamp,
        per_call: Option<Duration>,
    ) -> Timestamp {
        let expiry = match per_call {
            Some(timeout) => now + timeout,
            None if self.rolling => current.max(now + self.idle),
            None => current,
        };
        self.capped(expiry, created_at)
    }

    /// The expiry a flush of a stored session under its own id writes: the
    /// [`target`](Self::target), but a move smaller than `touch_after` is not made (unless
    /// a per-call timeout asked for it), so a read-only request costs one read and no write
    /// until the step is due.
    pub(crate) fn after_request(
        &self,
        now: Timestamp,
        created_at: Timestamp,
        current: Timestamp,
        per_call: Option<Duration>,
    ) -> NextExpiry {
        let target = self.target(now, created_at, current, per_call);
        let due = target > current && target.saturating_duration_since(current) >= self.step;
        if per_call.is_some() || due {
            NextExpiry {
                expires_at: target,
                moved: true,
            }
        } else {
            NextExpiry {
                expires_at: current,
                moved: false,
            }
        }
    }

    fn lifetime_end(&self, created_at: Timestamp) -> Option<Timestamp> {
        self.lifetime.map(|lifetime| created_at + lifetime)
    }

    fn capped(&self, expiry: Timestamp, created_at: Timestamp) -> Timestamp {
        match self.lifetime_end(created_at) {
            Some(end) => expiry.min(end),
            None => expiry,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_millis(millis)
    }

    fn ms(duration: Duration) -> i64 {
        i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
    }

    fn policy(
        idle: Duration,
        lifetime: Option<Duration>,
        rolling: bool,
        step: Duration,
    ) -> ExpiryPolicy {
        ExpiryPolicy {
            idle,
            lifetime,
            rolling,
            step,
        }
    }

    /// The defaults: one day idle, rolling, one-minute steps, no absolute lifetime.
    fn defaults() -> ExpiryPolicy {
        ExpiryPolicy::new(&SessionConfig::default())
    }

    #[test]
    fn defaults_come_from_the_configuration() {
        assert_eq!(
            defaults(),
            policy(Duration::from_secs(86_400), None, true, MINUTE)
        );
    }

    #[test]
    fn usable_until_the_idle_expiry_and_the_lifetime_end() {
        let week = Some(7 * 24 * HOUR);
        let created = at(1_000_000);
        let lifetime_end = 1_000_000 + ms(7 * 24 * HOUR);
        // (what, policy, expires_at, now, usable)
        #[rustfmt::skip]
        let table = [
            ("before the idle expiry", defaults(), 5_000_000, 4_999_999, true),
            ("at the idle expiry (reached means expired)", defaults(), 5_000_000, 5_000_000, false),
            ("after the idle expiry", defaults(), 5_000_000, 5_000_001, false),
            ("no lifetime: any age", defaults(), i64::MAX, i64::MAX - 1, true),
            ("within the lifetime", policy(HOUR, week, true, MINUTE), i64::MAX, lifetime_end - 1, true),
            ("at the lifetime end", policy(HOUR, week, true, MINUTE), i64::MAX, lifetime_end, false),
            ("past the lifetime, however active", policy(HOUR, week, true, MINUTE), i64::MAX, lifetime_end + 1, false),
            ("a clock before creation", policy(HOUR, week, true, MINUTE), 2_000_000, 0, true),
        ];
        for (what, policy, expires_at, now, usable) in table {
            assert_eq!(
                policy.is_usable(at(expires_at), created, at(now)),
                usable,
                "{what}"
            );
        }
    }

    #[test]
    fn a_new_session_gets_the_idle_or_per_call_timeout_within_its_lifetime() {
        let now = at(10_000);
        // (what, policy, per-call timeout, expected expiry)
        #[rustfmt::skip]
        let table = [
            ("idle timeout", defaults(), None, 10_000 + ms(24 * HOUR)),
            ("per-call timeout replaces it", defaults(), Some(MINUTE), 10_000 + ms(MINUTE)),
            ("per-call timeout longer than idle", policy(MINUTE, None, true, Duration::ZERO), Some(HOUR), 10_000 + ms(HOUR)),
            ("capped by a shorter lifetime", policy(HOUR, Some(MINUTE), true, Duration::ZERO), None, 10_000 + ms(MINUTE)),
            ("per-call timeout capped too", policy(HOUR, Some(MINUTE), true, Duration::ZERO), Some(HOUR), 10_000 + ms(MINUTE)),
        ];
        for (what, policy, per_call, expected) in table {
            assert_eq!(policy.for_new(now, per_call), at(expected), "{what}");
        }
    }

    #[test]
    fn a_stored_session_moves_in_steps_and_never_back() {
        let idle = HOUR;
        let created = at(0);
        let rolling = policy(idle, None, true, MINUTE);
        let fixed = policy(idle, None, false, MINUTE);
        let day = Some(24 * HOUR);
        // (what, policy, now, current expiry, per-call timeout, expected expiry, moved)
        #[rustfmt::skip]
        let table = [
            ("a step not yet due: no write", rolling, 30_000, ms(idle), None, ms(idle), false),
            ("just under a step", rolling, ms(MINUTE) - 1, ms(idle), None, ms(idle), false),
            ("exactly one step: due", rolling, ms(MINUTE), ms(idle), None, ms(MINUTE) + ms(idle), true),
            ("a late request moves it a long way", rolling, ms(10 * MINUTE), ms(idle), None, ms(10 * MINUTE) + ms(idle), true),
            ("never moved back by an earlier clock", rolling, 0, ms(idle) + 5_000, None, ms(idle) + 5_000, false),
            ("not rolling: stays put", fixed, ms(30 * MINUTE), ms(idle), None, ms(idle), false),
            ("per-call timeout: always written", rolling, 1_000, ms(idle), Some(Duration::from_secs(5)), 6_000, true),
            ("per-call timeout may shorten it", fixed, 1_000, ms(idle), Some(Duration::from_secs(5)), 6_000, true),
            ("rolling stops at the lifetime end", policy(idle, day, true, MINUTE), ms(23 * HOUR + 30 * MINUTE), ms(23 * HOUR + 20 * MINUTE), None, ms(24 * HOUR), true),
            ("at the lifetime end nothing moves", policy(idle, day, true, MINUTE), ms(24 * HOUR), ms(24 * HOUR), None, ms(24 * HOUR), false),
            ("a step smaller than touch_after near the end: no write", policy(idle, day, true, MINUTE), ms(23 * HOUR + 30 * MINUTE), ms(24 * HOUR) - 1_000, None, ms(24 * HOUR) - 1_000, false),
            ("per-call timeout capped by the lifetime", policy(idle, day, true, MINUTE), ms(23 * HOUR), ms(24 * HOUR), Some(2 * HOUR), ms(24 * HOUR), true),
            ("zero step: every later request writes", policy(idle, None, true, Duration::ZERO), 1, ms(idle), None, 1 + ms(idle), true),
        ];
        for (what, policy, now, current, per_call, expected, moved) in table {
            assert_eq!(
                policy.after_request(at(now), created, at(current), per_call),
                NextExpiry {
                    expires_at: at(expected),
                    moved
                },
                "{what}"
            );
        }
    }

    #[test]
    fn a_new_id_takes_the_target_without_waiting_for_a_step() {
        let rolling = policy(HOUR, None, true, MINUTE);
        // Within a step of the current expiry: `after_request` would not move it, the
        // record written under a new id takes the target.
        let (now, current) = (at(1_000), at(ms(HOUR)));
        assert_eq!(
            rolling.target(now, at(0), current, None),
            at(1_000 + ms(HOUR))
        );
        assert!(!rolling.after_request(now, at(0), current, None).moved);
        let fixed = policy(HOUR, Some(HOUR / 2), false, MINUTE);
        assert_eq!(fixed.target(now, at(0), current, None), at(ms(HOUR / 2)));
    }

    #[test]
    fn extreme_clocks_saturate_instead_of_wrapping() {
        let policy = policy(Duration::MAX, Some(Duration::MAX), true, MINUTE);
        let near_end = at(i64::MAX - 10);
        assert!(policy.for_new(near_end, None) >= near_end);
        let next = policy.after_request(near_end, at(0), near_end, None);
        assert!(next.expires_at >= near_end, "{next:?}");
        assert!(policy.is_usable(at(i64::MAX), at(0), near_end));
    }

    #[test]
    fn last_active_is_the_expiry_less_the_idle_timeout_within_the_session_s_life() {
        let policy = policy(HOUR, None, true, MINUTE);
        let (created, now) = (at(0), at(ms(2 * HOUR)));
        let refreshed = at(ms(HOUR + MINUTE));
        let expires_at = refreshed + HOUR;
        assert_eq!(policy.last_active(expires_at, created, now), refreshed);
        assert_eq!(policy.last_active(at(ms(HOUR) / 2), created, now), created);
        assert_eq!(policy.last_active(at(ms(5 * HOUR)), created, now), now);
    }

    #[test]
    fn without_a_step_an_unchanged_expiry_is_not_a_move() {
        let fixed = policy(HOUR, None, false, Duration::ZERO);
        let (now, current) = (at(1_000), at(ms(HOUR)));
        let next = fixed.after_request(now, at(0), current, None);
        assert_eq!(next.expires_at, current);
        assert!(!next.moved, "no write for an expiry that stays");
    }
}
