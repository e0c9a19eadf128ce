//! Login throttling: a per-IP quota on the login and token endpoints (`LOGIN_RATE_LIMIT` per
//! minute), and a growing delay after repeated failures of one (account, IP) pair, so that an
//! attacker elsewhere cannot lock a victim out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

/// Failures of one pair allowed before delays start.
const FREE_FAILURES: u32 = 3;
/// The longest delay imposed on one pair.
const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Pairs are forgotten this long after their last failure.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

/// The throttles of the login and token endpoints.
pub struct LoginThrottle {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failures: Mutex<HashMap<(String, IpAddr), Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// How long the pair must wait after its last failure before trying again: nothing for
    /// the free failures, then 1 s, doubling with each further failure.
    fn delay(&self) -> Duration {
        match self.count.checked_sub(FREE_FAILURES + 1) {
            None => Duration::ZERO,
            Some(extra) => Duration::from_secs(1u64 << extra.min(10)).min(MAX_DELAY),
        }
    }
}

/// Seconds to wait, rounded up and at least one.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl LoginThrottle {
    /// `per_minute` attempts per IP per minute; 0 disables the per-IP quota.
    pub fn new(per_minute: u32) -> Self {
        let per_ip = NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        Self { per_ip, failures: Mutex::new(HashMap::new()) }
    }

    /// Counts an attempt from `ip`; `Err(seconds)` when over the quota.
    pub fn attempt(&self, ip: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.per_ip else { return Ok(()) };
        limiter
            .check_key(&ip)
            .map_err(|not_until| whole_seconds(not_until.wait_time_from(limiter.clock().now())))
    }

    /// `Err(seconds)` while the (account, IP) pair is still paying for its failures.
    pub fn check_pair(&self, account: &str, ip: IpAddr) -> Result<(), u64> {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = failures.get(&(account.to_lowercase(), ip)) else { return Ok(()) };
        let ready_at = entry.last + entry.delay();
        match ready_at.checked_duration_since(Instant::now()) {
            Some(wait) if !wait.is_zero() => Err(whole_seconds(wait)),
            _ => Ok(()),
        }
    }

    /// Records a failed login of the pair.
    pub fn failed(&self, account: &str, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let entry = failures
            .entry((account.to_lowercase(), ip))
            .or_insert(Failures { count: 0, last: now });
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
    }

    /// Clears the pair after a successful login.
    pub fn succeeded(&self, account: &str, ip: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&(account.to_lowercase(), ip));
    }

    /// Drops state that no longer matters; called periodically so memory stays bounded.
    pub fn forget_stale(&self) {
        if let Some(limiter) = &self.per_ip {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.retain(|_, f| f.last.elapsed() < FORGET_AFTER.max(f.delay()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn quota_per_ip_then_retry_after() {
        let throttle = LoginThrottle::new(3);
        for _ in 0..3 {
            assert!(throttle.attempt(IP).is_ok());
        }
        let wait = throttle.attempt(IP).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(throttle.attempt(OTHER).is_ok(), "another IP has its own quota");
    }

    #[test]
    fn zero_disables_the_quota() {
        let throttle = LoginThrottle::new(0);
        assert!((0..100).all(|_| throttle.attempt(IP).is_ok()));
    }

    #[test]
    fn failures_delay_only_their_own_pair() {
        let throttle = LoginThrottle::new(0);
        for _ in 0..=FREE_FAILURES {
            assert!(throttle.check_pair("Victim@example.com", IP).is_ok());
            throttle.failed("victim@example.com", IP);
        }
        assert!(throttle.check_pair("victim@EXAMPLE.com", IP).is_err());
        assert!(throttle.check_pair("victim@example.com", OTHER).is_ok(), "victim elsewhere");
        throttle.succeeded("victim@example.com", IP);
        assert!(throttle.check_pair("victim@example.com", IP).is_ok());
    }
}
