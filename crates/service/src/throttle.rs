//! Login throttling: a per-IP quota on the login and token endpoints (`LOGIN_RATE_LIMIT` per
//! minute), and a growing delay after repeated failures of one (account, IP) pair
//! (`LOGIN_FAILURE_BACKOFF`), so that an attacker elsewhere cannot lock a victim out.
//!
//! The delays: the first `LOGIN_FAILURE_BACKOFF` failures of a pair cost nothing; the failure
//! that reaches the threshold starts a delay of 1 s, and each further failure doubles it (2 s,
//! 4 s, …), up to 15 minutes. An attempt inside the delay gets 429 with `Retry-After`, the
//! right password included, and is not counted as a failure. A success clears the pair. The
//! account is the submitted username, case-folded, whether it exists or not, so the answer
//! never tells a known account from an unknown one. Delays run on the server's clock (the
//! injected [`Clock`]), so tests move time instead of sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};
use jwt_core::Clock;

/// The delay that the failure reaching the threshold starts.
const FIRST_DELAY: TimeDelta = TimeDelta::seconds(1);
/// The longest delay imposed on one pair.
pub const MAX_DELAY: TimeDelta = TimeDelta::minutes(15);
/// Pairs are forgotten this long after their last failure (or once their delay is over, if
/// that is later).
const FORGET_AFTER: TimeDelta = TimeDelta::hours(1);

/// The throttles of the login and token endpoints.
pub struct LoginThrottle {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Failures of a pair allowed before delays start; `None` turns the backoff off.
    free_failures: Option<NonZeroU32>,
    failures: Mutex<HashMap<(String, IpAddr), Failures>>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: DateTime<Utc>,
}

/// The delay after `count` failures when `free` are free: none below the threshold, then 1 s
/// doubling per further failure, capped at [`MAX_DELAY`].
fn delay(count: u32, free: NonZeroU32) -> TimeDelta {
    match count.checked_sub(free.get()) {
        None => TimeDelta::zero(),
        Some(extra) => (FIRST_DELAY * (1i32 << extra.min(20))).min(MAX_DELAY),
    }
}

/// Seconds to wait, rounded up and at least one.
fn whole_seconds(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The pair's key: the username case-folded, so `Alice@x.io` and `alice@X.IO` share one.
fn account_key(account: &str, ip: IpAddr) -> (String, IpAddr) {
    (account.to_lowercase(), ip)
}

impl LoginThrottle {
    /// `per_minute` attempts per IP per minute (0 disables the quota); `free_failures` failed
    /// logins of a pair before delays start (0 disables the backoff); delays on `clock`.
    pub fn new(per_minute: u32, free_failures: u32, clock: Arc<dyn Clock>) -> Self {
        let per_ip = NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        Self {
            per_ip,
            free_failures: NonZeroU32::new(free_failures),
            failures: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Counts an attempt from `ip`; `Err(seconds)` when over the quota.
    pub fn attempt(&self, ip: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.per_ip else { return Ok(()) };
        limiter
            .check_key(&ip)
            .map_err(|not_until| whole_seconds(not_until.wait_time_from(limiter.clock().now())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, IpAddr), Failures>> {
        self.failures.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(seconds)` while the (account, IP) pair is still paying for its failures.
    pub fn check_pair(&self, account: &str, ip: IpAddr) -> Result<(), u64> {
        let Some(free) = self.free_failures else { return Ok(()) };
        let failures = self.lock();
        let Some(entry) = failures.get(&account_key(account, ip)) else { return Ok(()) };
        let wait = entry.last + delay(entry.count, free) - self.clock.now();
        match wait.to_std() {
            Ok(wait) if !wait.is_zero() => Err(whole_seconds(wait)),
            _ => Ok(()),
        }
    }

    /// Records a failed login of the pair.
    pub fn failed(&self, account: &str, ip: IpAddr) {
        if self.free_failures.is_none() {
            return;
        }
        let now = self.clock.now();
        let mut failures = self.lock();
        let entry =
            failures.entry(account_key(account, ip)).or_insert(Failures { count: 0, last: now });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }

    /// Clears the pair after a successful login.
    pub fn succeeded(&self, account: &str, ip: IpAddr) {
        if self.free_failures.is_some() {
            self.lock().remove(&account_key(account, ip));
        }
    }

    /// Drops state that no longer matters; called periodically so memory stays bounded.
    pub fn forget_stale(&self) {
        if let Some(limiter) = &self.per_ip {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let Some(free) = self.free_failures else { return };
        let now = self.clock.now();
        self.lock().retain(|_, f| now - f.last < FORGET_AFTER.max(delay(f.count, free)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_core::ManualClock;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn throttle(per_minute: u32, free: u32) -> (LoginThrottle, ManualClock) {
        let clock = ManualClock::starting_now();
        (LoginThrottle::new(per_minute, free, Arc::new(clock.clone())), clock)
    }

    #[test]
    fn quota_per_ip_then_retry_after() {
        let (throttle, _) = throttle(3, 0);
        for _ in 0..3 {
            assert!(throttle.attempt(IP).is_ok());
        }
        let wait = throttle.attempt(IP).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(throttle.attempt(OTHER).is_ok(), "another IP has its own quota");
    }

    #[test]
    fn zero_disables_the_quota_and_the_backoff() {
        let (throttle, _) = throttle(0, 0);
        assert!((0..100).all(|_| throttle.attempt(IP).is_ok()));
        for _ in 0..100 {
            throttle.failed("victim@example.com", IP);
        }
        assert!(throttle.check_pair("victim@example.com", IP).is_ok());
    }

    #[test]
    fn failures_delay_only_their_own_pair() {
        let (throttle, _) = throttle(0, 5);
        for _ in 0..4 {
            throttle.failed("victim@example.com", IP);
            assert!(throttle.check_pair("Victim@example.com", IP).is_ok(), "still free");
        }
        throttle.failed("victim@example.com", IP);
        assert_eq!(throttle.check_pair("victim@EXAMPLE.com", IP), Err(1), "case-folded");
        assert!(throttle.check_pair("victim@example.com", OTHER).is_ok(), "victim elsewhere");
        assert!(throttle.check_pair("other@example.com", IP).is_ok(), "another account");
        throttle.succeeded("victim@example.com", IP);
        assert!(throttle.check_pair("victim@example.com", IP).is_ok());
    }

    #[test]
    fn delays_double_up_to_the_cap_on_the_injected_clock() {
        let (throttle, clock) = throttle(0, 2);
        let mut waits = Vec::new();
        for _ in 0..14 {
            throttle.failed("a@example.com", IP);
            let wait = throttle.check_pair("a@example.com", IP).err().unwrap_or(0);
            waits.push(wait);
            clock.advance(TimeDelta::seconds(wait as i64));
            assert!(throttle.check_pair("a@example.com", IP).is_ok(), "over once waited");
        }
        assert_eq!(waits, [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]);
        assert_eq!(delay(u32::MAX, NonZeroU32::new(1).unwrap()), MAX_DELAY, "no overflow");
    }

    #[test]
    fn stale_pairs_are_forgotten() {
        let (throttle, clock) = throttle(0, 1);
        throttle.failed("a@example.com", IP);
        throttle.forget_stale();
        assert_eq!(throttle.lock().len(), 1);
        clock.advance(FORGET_AFTER);
        throttle.forget_stale();
        assert_eq!(throttle.lock().len(), 0);
    }
}
