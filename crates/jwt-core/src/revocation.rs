//! The in-memory revocation set a server consults on every request without I/O: revoked
//! session ids (kept until the session would have expired anyway), "tokens issued before
//! T are void" cut-offs per user and for everyone, and revoked signing keys. The store, or the
//! revocation feed of the server for another service, feeds it.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use foldhash::HashMap;

use chrono::{DateTime, Utc};

use crate::error::Error;
use crate::values::{MAX_LEEWAY, Revocation};

/// Checks a cut-off before it is recorded ("every token issued before `before` is void"): it
/// may not be later than `now` plus the clock leeway ([`MAX_LEEWAY`]). A later one would void
/// every token issued until then as soon as it is issued: a lock-out that no login ends.
///
/// ```
/// use chrono::{TimeDelta, Utc};
/// use jwt_core::{Error, check_cut_off};
///
/// let now = Utc::now();
/// assert!(check_cut_off(now, now).is_ok());
/// assert!(check_cut_off(now - TimeDelta::days(1), now).is_ok());
/// assert!(check_cut_off(now + TimeDelta::seconds(10), now).is_ok(), "within the leeway");
/// let future = now + TimeDelta::days(1);
/// assert!(matches!(check_cut_off(future, now), Err(Error::CutOffInFuture(t)) if t == future));
/// ```
pub fn check_cut_off(before: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Error> {
    if before > now + MAX_LEEWAY {
        return Err(Error::CutOffInFuture(before));
    }
    Ok(())
}

/// Revoked sessions, issued-before cut-offs and revoked keys.
///
/// ```
/// use chrono::{TimeDelta, Utc};
/// use jwt_core::{Revocation, RevocationSet};
///
/// let set = RevocationSet::new();
/// let now = Utc::now();
/// set.apply(&[Revocation::Session { id: "s1".into(), expires_at: now + TimeDelta::hours(1) }]);
/// assert!(set.is_revoked("s1", "u1", now.timestamp()));
/// assert!(!set.is_revoked("s2", "u1", now.timestamp()));
/// ```
#[derive(Debug, Default)]
pub struct RevocationSet {
    inner: RwLock<Inner>,
    /// Whether any key is revoked: the common answer, no, without taking the lock.
    any_key: AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    /// Session id → when it expires (seconds since the epoch).
    sessions: HashMap<String, i64>,
    /// User id → tokens with `iat` before this (seconds since the epoch) are void.
    users: HashMap<String, i64>,
    /// Tokens of anyone with `iat` before this are void.
    everyone: Option<i64>,
    /// Key id → when its last token expires (seconds since the epoch).
    keys: HashMap<String, i64>,
}

impl RevocationSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds revocations; applying one twice changes nothing.
    pub fn apply(&self, revocations: &[Revocation]) {
        if revocations.is_empty() {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        for revocation in revocations {
            match revocation {
                Revocation::Session { id, expires_at } => {
                    inner.sessions.insert(id.clone(), expires_at.timestamp());
                }
                Revocation::IssuedBefore { user_id, before } => {
                    // Whole seconds, like `iat`: a token from the cut-off's own second survives
                    // the cut-off (its session may still be revoked on its own).
                    let before = before.timestamp();
                    let slot = match user_id {
                        Some(user) => inner.users.entry(user.clone()).or_insert(before),
                        None => inner.everyone.get_or_insert(before),
                    };
                    *slot = (*slot).max(before);
                }
                Revocation::Key { kid, expires_at } => {
                    inner.keys.insert(kid.clone(), expires_at.timestamp());
                    self.any_key.store(true, Ordering::Release);
                }
            }
        }
    }

    /// Whether a token of session `sid`, subject `sub`, issued at `iat` (seconds since the
    /// epoch) has been revoked.
    pub fn is_revoked(&self, sid: &str, sub: &str, iat: i64) -> bool {
        let inner = self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.everyone.is_some_and(|before| iat < before)
            || inner.sessions.contains_key(sid)
            || inner.users.get(sub).is_some_and(|&before| iat < before)
    }

    /// Whether session `sid` has been revoked: every token of it is void.
    ///
    /// ```
    /// use chrono::{TimeDelta, Utc};
    /// use jwt_core::{Revocation, RevocationSet};
    ///
    /// let set = RevocationSet::new();
    /// let expires_at = Utc::now() + TimeDelta::hours(1);
    /// set.apply(&[Revocation::Session { id: "s1".into(), expires_at }]);
    /// assert!(set.is_session_revoked("s1"));
    /// assert!(!set.is_session_revoked("s2"));
    /// ```
    pub fn is_session_revoked(&self, sid: &str) -> bool {
        let inner = self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.sessions.contains_key(sid)
    }

    /// Whether signing key `kid` has been revoked: every token it signed is void.
    ///
    /// ```
    /// use chrono::{TimeDelta, Utc};
    /// use jwt_core::{Revocation, RevocationSet};
    ///
    /// let set = RevocationSet::new();
    /// let expires_at = Utc::now() + TimeDelta::hours(1);
    /// set.apply(&[Revocation::Key { kid: "k1".into(), expires_at }]);
    /// assert!(set.is_key_revoked("k1"));
    /// assert!(!set.is_key_revoked("k2"));
    /// ```
    pub fn is_key_revoked(&self, kid: &str) -> bool {
        if !self.any_key.load(Ordering::Acquire) {
            return false;
        }
        let inner = self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        inner.keys.contains_key(kid)
    }

    /// Forgets sessions and keys whose tokens have all expired by `now`: they fail on expiry
    /// anyway. Returns how many entries went.
    pub fn prune(&self, now: DateTime<Utc>) -> usize {
        let now = now.timestamp();
        let mut inner = self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = inner.sessions.len() + inner.keys.len();
        inner.sessions.retain(|_, expires| *expires > now);
        inner.keys.retain(|_, expires| *expires > now);
        self.any_key.store(!inner.keys.is_empty(), Ordering::Release);
        before - inner.sessions.len() - inner.keys.len()
    }

    /// How many revoked sessions the set holds.
    pub fn revoked_sessions(&self) -> usize {
        self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner()).sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    #[test]
    fn cut_offs_void_earlier_tokens_only() {
        let set = RevocationSet::new();
        set.apply(&[Revocation::IssuedBefore { user_id: Some("u".into()), before: at(100) }]);
        assert!(set.is_revoked("s", "u", 99));
        assert!(!set.is_revoked("s", "u", 100));
        assert!(!set.is_revoked("s", "other", 99));
        set.apply(&[Revocation::IssuedBefore { user_id: None, before: at(50) }]);
        assert!(set.is_revoked("s", "other", 49));
        // A later, smaller cut-off never shrinks an earlier one.
        set.apply(&[Revocation::IssuedBefore { user_id: Some("u".into()), before: at(10) }]);
        assert!(set.is_revoked("s", "u", 99));
    }

    #[test]
    fn revoked_keys_are_kept_until_their_tokens_expire() {
        let set = RevocationSet::new();
        set.apply(&[Revocation::Key { kid: "k".into(), expires_at: at(10) }]);
        assert!(set.is_key_revoked("k"));
        assert!(!set.is_key_revoked("other"));
        assert!(!set.is_revoked("s", "u", 0), "a key says nothing of sessions");
        assert_eq!(set.prune(at(9)), 0);
        assert_eq!(set.prune(at(10)), 1);
        assert!(!set.is_key_revoked("k"));
    }

    #[test]
    fn expired_sessions_are_pruned() {
        let set = RevocationSet::new();
        set.apply(&[
            Revocation::Session { id: "old".into(), expires_at: at(10) },
            Revocation::Session { id: "new".into(), expires_at: at(10) + TimeDelta::days(1) },
        ]);
        assert_eq!(set.prune(at(11)), 1);
        assert!(!set.is_revoked("old", "u", 0));
        assert!(set.is_revoked("new", "u", 0));
    }
}
