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

/// The most memory, in bytes, a revoked session takes in a [`RevocationSet`] when its id is a
/// UUID as the server makes them, checked at 1,000,000 sessions (the ignored test
/// `revocation_set_memory_per_session_is_within_its_bound` prints the measured figure): plan a
/// process's memory with it.
///
/// ```
/// // A million sessions revoked before they expire take at most this much.
/// assert!(jwt_core::REVOKED_SESSION_BYTES * 1_000_000 <= 64 << 20);
/// ```
pub const REVOKED_SESSION_BYTES: usize = 64;

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
    /// Session id → when it expires (seconds since the epoch), for the ids in the form the
    /// server makes them, a UUID in lower case with hyphens, kept as its 16 bytes: a third of
    /// the memory of the id's text (see [`REVOKED_SESSION_BYTES`]).
    sessions: HashMap<[u8; 16], i64>,
    /// The same for any other session id, kept as it is.
    other_sessions: HashMap<String, i64>,
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
                    let expires_at = expires_at.timestamp();
                    match uuid_bytes(id) {
                        Some(key) => inner.sessions.insert(key, expires_at),
                        None => inner.other_sessions.insert(id.clone(), expires_at),
                    };
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
            || inner.has_session(sid)
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
        inner.has_session(sid)
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
        let before = inner.session_count() + inner.keys.len();
        inner.sessions.retain(|_, expires| *expires > now);
        inner.other_sessions.retain(|_, expires| *expires > now);
        inner.keys.retain(|_, expires| *expires > now);
        self.any_key.store(!inner.keys.is_empty(), Ordering::Release);
        before - inner.session_count() - inner.keys.len()
    }

    /// How many revoked sessions the set holds.
    pub fn revoked_sessions(&self) -> usize {
        self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner()).session_count()
    }
}

impl Inner {
    fn has_session(&self, sid: &str) -> bool {
        match uuid_bytes(sid) {
            Some(key) => self.sessions.contains_key(&key),
            None => self.other_sessions.contains_key(sid),
        }
    }

    fn session_count(&self) -> usize {
        self.sessions.len() + self.other_sessions.len()
    }
}

/// The 16 bytes of `id` when it is a UUID written as the server writes them (lower case, with
/// hyphens): one text for each 16 bytes and the other way round, so that an id is found
/// whichever way it was stored. Any other text (upper case, braces, no hyphens) is `None`.
fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    if id.len() != 36 || id.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    uuid::Uuid::try_parse(id).ok().map(|uuid| uuid.into_bytes())
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

    #[test]
    fn session_ids_of_any_form_are_found_as_they_were_stored() {
        let set = RevocationSet::new();
        let expires_at = at(1_700_003_600);
        let canonical = "0b3e9f4c-5d6a-4f7e-8a9b-0c1d2e3f4a5b";
        let ids = [
            canonical,
            "0B3E9F4C-5D6A-4F7E-8A9B-0C1D2E3F4A5B",
            "0b3e9f4c5d6a4f7e8a9b0c1d2e3f4a5b",
            "{0b3e9f4c-5d6a-4f7e-8a9b-0c1d2e3f4a5b}",
            "s1",
        ];
        for id in ids {
            assert!(!set.is_session_revoked(id), "{id} before");
        }
        set.apply(&[Revocation::Session { id: canonical.into(), expires_at }]);
        assert!(set.is_session_revoked(canonical));
        for other in &ids[1..] {
            assert!(!set.is_session_revoked(other), "{other}: another id than {canonical}");
        }
        let revocations: Vec<Revocation> = ids[1..]
            .iter()
            .map(|id| Revocation::Session { id: (*id).into(), expires_at })
            .collect();
        set.apply(&revocations);
        for id in ids {
            assert!(set.is_session_revoked(id), "{id}");
            assert!(set.is_revoked(id, "u1", 1_700_000_000), "{id}");
        }
        assert_eq!(set.revoked_sessions(), ids.len());
        set.apply(&[Revocation::Session { id: canonical.into(), expires_at }]);
        assert_eq!(set.revoked_sessions(), ids.len(), "applying one twice changes nothing");
        assert_eq!(set.prune(at(1_700_003_599)), 0);
        assert_eq!(set.prune(at(1_700_003_600)), ids.len(), "every form is pruned");
        assert_eq!(set.revoked_sessions(), 0);
        assert!(!set.is_session_revoked(canonical));
    }

    /// The resident memory a revoked session takes, at 1,000,000 of them (session ids as the
    /// server makes them: UUIDs). Run alone, on a release build:
    /// `cargo test --release -p jwt-core --lib revocation_set_memory -- --ignored --nocapture`.
    #[test]
    #[ignore = "reads the process's resident memory: run alone"]
    fn revocation_set_memory_per_session_is_within_its_bound() {
        fn resident_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
            line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number")
        }
        const SESSIONS: u64 = 1_000_000;
        let expires_at = at(1_700_003_600);
        // The ids are made before the set is measured, and applied in batches as the feed does.
        let ids: Vec<String> = (0..SESSIONS as u128)
            .map(|n| {
                uuid::Uuid::from_u128(n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835))
                    .to_string()
            })
            .collect();
        let before = resident_kib();
        let set = RevocationSet::new();
        for batch in ids.chunks(1_000) {
            let batch: Vec<Revocation> =
                batch.iter().map(|id| Revocation::Session { id: id.clone(), expires_at }).collect();
            set.apply(&batch);
        }
        let bytes = (resident_kib() - before) * 1024 / SESSIONS;
        println!("{SESSIONS} revoked sessions: {bytes} bytes each");
        assert_eq!(set.revoked_sessions(), SESSIONS as usize);
        assert!(set.is_session_revoked(&ids[0]) && set.is_session_revoked(&ids[ids.len() - 1]));
        assert!(bytes as usize <= REVOKED_SESSION_BYTES, "{bytes} bytes a revoked session");
    }
}
