//! Login rate limiting: sliding windows over recent attempts, pure (the caller passes `now`), so the
//! rules are tested without sleeping.
//!
//! Two limits, because they stop different attacks: failures per `name#tag` stop guessing one user's
//! password from many addresses; attempts (failed or not) per client address stop one client from
//! guessing many users' passwords, and bound the bcrypt work it can cause.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// At most `max` events in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: usize,
    pub window: Duration,
}

/// Keys above this count trigger a sweep of keys whose events have all expired.
const SWEEP_ABOVE_KEYS: usize = 4096;

/// The instants of recent events per key, forgetting those older than the window.
#[derive(Debug)]
pub struct SlidingWindow {
    limit: RateLimit,
    events: HashMap<String, VecDeque<Instant>>,
}

impl SlidingWindow {
    pub fn new(limit: RateLimit) -> Self {
        SlidingWindow {
            limit,
            events: HashMap::new(),
        }
    }

    /// `Ok` when one more event for `key` fits at `now`; otherwise how long until it will.
    pub fn check(&mut self, key: &str, now: Instant) -> Result<(), Duration> {
        let Some(events) = self.events.get_mut(key) else {
            return if self.limit.max == 0 {
                Err(self.limit.window)
            } else {
                Ok(())
            };
        };
        let window = self.limit.window;
        while events
            .front()
            .is_some_and(|first| now.saturating_duration_since(*first) >= window)
        {
            events.pop_front();
        }
        if events.len() < self.limit.max {
            return Ok(());
        }
        // The oldest event that must expire before another fits.
        let blocking = events.len() - self.limit.max;
        let until = events
            .get(blocking)
            .map(|instant| (*instant + window).saturating_duration_since(now))
            .unwrap_or(window);
        Err(until.max(Duration::from_millis(1)))
    }

    /// Counts one event for `key` at `now`.
    pub fn record(&mut self, key: &str, now: Instant) {
        if self.events.len() > SWEEP_ABOVE_KEYS {
            let window = self.limit.window;
            self.events.retain(|_, events| {
                events
                    .back()
                    .is_some_and(|last| now.saturating_duration_since(*last) < window)
            });
        }
        self.events
            .entry(key.to_owned())
            .or_default()
            .push_back(now);
    }

    /// Forgets every event of `key`.
    pub fn clear(&mut self, key: &str) {
        self.events.remove(key);
    }
}

/// The login limiter of the web layer: call [`LoginLimiter::admit`] before checking a password, then
/// [`LoginLimiter::failed`] or [`LoginLimiter::succeeded`].
#[derive(Debug)]
pub struct LoginLimiter {
    failures_per_user: SlidingWindow,
    attempts_per_address: SlidingWindow,
}

impl LoginLimiter {
    pub fn new(failures_per_user: RateLimit, attempts_per_address: RateLimit) -> Self {
        LoginLimiter {
            failures_per_user: SlidingWindow::new(failures_per_user),
            attempts_per_address: SlidingWindow::new(attempts_per_address),
        }
    }

    /// Whether a login for `user` (`name#tag`) from `address` may be checked at `now`; an admitted attempt
    /// counts against the address. On refusal, the wait before the next attempt can succeed.
    pub fn admit(&mut self, user: &str, address: &str, now: Instant) -> Result<(), Duration> {
        let by_user = self.failures_per_user.check(user, now);
        let by_address = self.attempts_per_address.check(address, now);
        match (by_user, by_address) {
            (Ok(()), Ok(())) => {
                self.attempts_per_address.record(address, now);
                Ok(())
            }
            (Err(one), Err(other)) => Err(one.max(other)),
            (Err(wait), Ok(())) | (Ok(()), Err(wait)) => Err(wait),
        }
    }

    /// A wrong password (or an unknown user) for `user`.
    pub fn failed(&mut self, user: &str, now: Instant) {
        self.failures_per_user.record(user, now);
    }

    /// The right password: earlier failures of `user` no longer count.
    pub fn succeeded(&mut self, user: &str) {
        self.failures_per_user.clear(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn limit(max: usize) -> RateLimit {
        RateLimit {
            max,
            window: MINUTE,
        }
    }

    #[test]
    fn a_window_admits_max_events_then_says_when_the_oldest_expires() {
        let start = Instant::now();
        let mut window = SlidingWindow::new(limit(3));
        for second in 0..3 {
            let now = start + Duration::from_secs(second);
            assert_eq!(window.check("k", now), Ok(()));
            window.record("k", now);
        }

        let refused = window.check("k", start + Duration::from_secs(10));

        assert_eq!(refused, Err(Duration::from_secs(50)));
        assert_eq!(window.check("other", start), Ok(()));
    }

    #[test]
    fn a_window_slides_so_old_events_stop_counting() {
        let start = Instant::now();
        let mut window = SlidingWindow::new(limit(2));
        window.record("k", start);
        window.record("k", start + Duration::from_secs(30));

        assert!(window.check("k", start + Duration::from_secs(59)).is_err());
        assert_eq!(window.check("k", start + MINUTE), Ok(()));
        window.record("k", start + MINUTE);
        assert_eq!(
            window.check("k", start + MINUTE),
            Err(Duration::from_secs(30))
        );
    }

    #[test]
    fn failures_per_user_block_that_user_from_every_address_until_a_success_clears_them() {
        let now = Instant::now();
        let mut limiter = LoginLimiter::new(limit(2), limit(100));
        for address in ["a", "b"] {
            assert_eq!(limiter.admit("alice#0001", address, now), Ok(()));
            limiter.failed("alice#0001", now);
        }

        assert!(limiter.admit("alice#0001", "c", now).is_err());
        assert_eq!(limiter.admit("bob#0002", "c", now), Ok(()));

        limiter.succeeded("alice#0001");
        assert_eq!(limiter.admit("alice#0001", "c", now), Ok(()));
    }

    #[test]
    fn attempts_per_address_count_successes_too() {
        let now = Instant::now();
        let mut limiter = LoginLimiter::new(limit(100), limit(2));
        assert_eq!(limiter.admit("alice#0001", "10.0.0.1", now), Ok(()));
        assert_eq!(limiter.admit("bob#0002", "10.0.0.1", now), Ok(()));

        let refused = limiter.admit("carol#0003", "10.0.0.1", now + Duration::from_secs(1));

        assert_eq!(refused, Err(Duration::from_secs(59)));
        assert_eq!(limiter.admit("carol#0003", "10.0.0.2", now), Ok(()));
    }

    #[test]
    fn expired_keys_are_swept_so_memory_stays_bounded() {
        let start = Instant::now();
        let mut window = SlidingWindow::new(limit(1));
        for key in 0..=SWEEP_ABOVE_KEYS {
            window.record(&key.to_string(), start);
        }

        window.record("late", start + MINUTE * 2);

        assert_eq!(window.events.len(), 1);
    }
}
