//! Following the revocation feed: a [`RevocationFollower`] keeps one instance's
//! [`RevocationSet`] current with the revocations every instance records in the shared store,
//! and keeps the cursor for it, so that no server has to.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};

use crate::clock::Clock;
use crate::error::Result;
use crate::revocation::RevocationSet;
use crate::store::RevocationStore;
use crate::values::Revocation;

/// How far each poll reaches back before the start of the previous one, by default: far enough
/// for a revocation whose transaction committed after that poll read the feed, and for clocks
/// that differ a little between instances. Applying a revocation twice changes nothing.
pub const REVOCATION_OVERLAP: TimeDelta = TimeDelta::seconds(10);

/// Polls a store's revocation feed into a revocation set, remembering where it got to.
///
/// The first [`poll`](RevocationFollower::poll) loads every revocation that still matters;
/// each later one asks only for those recorded since the previous poll began, less the
/// overlap. Time comes from the clock it is given: [`Sessions::revocation_follower`] gives it
/// the token service's.
///
/// Polling is the catch-up path. A pushed change feed (a database notification, or the
/// revocation feed another service follows over HTTP) can drive the same follower: hand what
/// arrives to [`apply`](RevocationFollower::apply) at once, and keep polling, less often, for
/// whatever a dropped connection missed.
///
/// [`Sessions::revocation_follower`]: crate::Sessions::revocation_follower
///
/// ```
/// use std::sync::Arc;
/// use jwt_core::{
///     Algorithm, ClientInfo, KeySet, MemoryStore, RevokeReason, SessionPolicy, Sessions,
///     SigningKey, Subject, TokenPolicy, TokenService,
/// };
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA)?);
/// let tokens = Arc::new(TokenService::new(TokenPolicy::new("https://auth.example", "api"), keys)?);
/// let store = Arc::new(MemoryStore::new());
/// let alice = Subject { id: "alice".into(), roles: vec![], email: None };
/// store.put_user(alice.clone());
/// // Two instances on one store, each with its own revocation set.
/// let here = Sessions::new(tokens.clone(), store.clone(), SessionPolicy::default());
/// let there = Sessions::new(tokens, store, SessionPolicy::default());
/// let follower = there.revocation_follower();
/// assert!(!follower.is_loaded());
///
/// let pair = here.start(&alice, ClientInfo::default()).await?;
/// here.end(&pair.session_id, RevokeReason::Logout).await?;
/// assert!(there.authenticate(pair.access_token.expose()).is_ok(), "not heard of it yet");
/// follower.poll().await?;
/// assert!(there.authenticate(pair.access_token.expose()).is_err());
/// assert!(follower.is_loaded());
/// # Ok::<(), jwt_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct RevocationFollower<S> {
    store: S,
    revocations: Arc<RevocationSet>,
    clock: Arc<dyn Clock>,
    overlap: TimeDelta,
    /// Where the next poll starts; `None` until the first poll succeeds.
    since: Mutex<Option<DateTime<Utc>>>,
    loaded: AtomicBool,
}

impl<S: RevocationStore> RevocationFollower<S> {
    /// A follower of `store`'s feed into `revocations`, on `clock`, with the default overlap
    /// ([`REVOCATION_OVERLAP`]). Nothing is loaded until the first poll.
    pub fn new(store: S, revocations: Arc<RevocationSet>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            revocations,
            clock,
            overlap: REVOCATION_OVERLAP,
            since: Mutex::new(None),
            loaded: AtomicBool::new(false),
        }
    }

    /// The same follower with another overlap: at least the longest a revocation's
    /// transaction may take to commit, plus the largest clock difference between instances.
    pub fn with_overlap(mut self, overlap: TimeDelta) -> Self {
        self.overlap = overlap.max(TimeDelta::zero());
        self
    }

    /// Loads the revocations recorded since the previous poll (all that still matter, the
    /// first time) into the set, forgets revoked sessions that have ended, and moves the
    /// cursor. Returns how many revocations were read. On an error nothing moves: the next
    /// poll asks again from the same point.
    pub async fn poll(&self) -> Result<usize> {
        let started = self.clock.now();
        let since = self.since().unwrap_or(DateTime::<Utc>::MIN_UTC);
        let revocations = self.store.revocations_since(since).await?;
        self.revocations.apply(&revocations);
        self.revocations.prune(self.clock.now());
        let next = started.checked_sub_signed(self.overlap).unwrap_or(DateTime::<Utc>::MIN_UTC);
        {
            let mut cursor = self.since.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            // Concurrent polls may finish out of order: the cursor never goes back.
            *cursor = Some(cursor.map_or(next, |current| current.max(next)));
        }
        self.loaded.store(true, Ordering::Release);
        Ok(revocations.len())
    }

    /// Applies revocations that arrived by other means (a pushed feed) at once. The cursor
    /// does not move: polling still catches up whatever a push missed.
    pub fn apply(&self, revocations: &[Revocation]) {
        self.revocations.apply(revocations);
    }

    /// Whether a poll has succeeded, so that the set holds every revocation recorded before
    /// it began: until then a server should not report itself ready.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Where the next poll starts (the start of the latest successful poll, less the
    /// overlap); `None` before the first.
    pub fn since(&self) -> Option<DateTime<Utc>> {
        *self.since.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::keys::{Algorithm, KeySet, SigningKey};
    use crate::memory::MemoryStore;
    use crate::sessions::{SessionPolicy, Sessions};
    use crate::store::RevokeReason;
    use crate::tokens::{TokenPolicy, TokenService};
    use crate::values::{ClientInfo, Subject};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).expect("a valid time")
    }

    #[tokio::test]
    async fn a_revocation_made_by_another_instance_is_picked_up_by_the_next_poll() {
        const T0: i64 = 1_700_000_000;
        let clock = ManualClock::new(at(T0));
        let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA).unwrap());
        let tokens = TokenService::new(TokenPolicy::new("jwt-auth", "api"), keys).unwrap();
        let tokens = Arc::new(tokens.with_clock(Arc::new(clock.clone())));
        let store = Arc::new(MemoryStore::new());
        let alice = Subject { id: "alice".into(), roles: vec![], email: None };
        store.put_user(alice.clone());
        let other = Sessions::new(tokens.clone(), store.clone(), SessionPolicy::default());
        let here = Sessions::new(tokens, store, SessionPolicy::default());
        let follower = here.revocation_follower();
        let old = other.start(&alice, ClientInfo::default()).await.unwrap();
        other.end(&old.session_id, RevokeReason::Logout).await.unwrap();

        // The first poll loads what was there before it.
        assert_eq!((follower.is_loaded(), follower.since()), (false, None));
        clock.set(at(T0 + 20));
        assert_eq!(follower.poll().await.unwrap(), 1);
        assert!(follower.is_loaded());
        assert_eq!(follower.since(), Some(at(T0 + 20) - REVOCATION_OVERLAP));
        assert!(here.authenticate(old.access_token.expose()).is_err());

        // A logout on the other instance is heard of here at the next poll, which reads only
        // what was recorded since the previous one (less the overlap).
        let pair = other.start(&alice, ClientInfo::default()).await.unwrap();
        clock.set(at(T0 + 50));
        other.end(&pair.session_id, RevokeReason::Logout).await.unwrap();
        assert!(here.authenticate(pair.access_token.expose()).is_ok(), "not polled yet");
        clock.set(at(T0 + 51));
        assert_eq!(follower.poll().await.unwrap(), 1, "the new logout, not the old one");
        assert!(here.authenticate(pair.access_token.expose()).is_err());
        assert_eq!(follower.since(), Some(at(T0 + 41)), "the cursor advanced");

        // Recorded after the cursor, it is read once more; then the cursor passes it.
        clock.set(at(T0 + 71));
        assert_eq!(follower.poll().await.unwrap(), 1);
        assert_eq!(follower.since(), Some(at(T0 + 61)));
        clock.set(at(T0 + 72));
        assert_eq!(follower.poll().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn pushed_revocations_apply_at_once_and_leave_the_cursor() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at(1_700_000_000)));
        let set = Arc::new(RevocationSet::new());
        let follower = RevocationFollower::new(MemoryStore::new(), set.clone(), clock);
        let session = Revocation::Session { id: "s1".into(), expires_at: at(1_700_000_000 + 3600) };
        follower.apply(&[session]);
        assert!(set.is_revoked("s1", "alice", 1_700_000_000));
        assert_eq!((follower.is_loaded(), follower.since()), (false, None));
    }

    #[tokio::test]
    async fn the_overlap_reaches_back_by_its_length_and_never_forward() {
        let now = at(1_700_000_000);
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(now));
        let follower = |overlap| {
            RevocationFollower::new(
                MemoryStore::new(),
                Arc::new(RevocationSet::new()),
                clock.clone(),
            )
            .with_overlap(overlap)
        };
        let wide = follower(TimeDelta::minutes(2));
        wide.poll().await.unwrap();
        assert_eq!(wide.since(), Some(now - TimeDelta::minutes(2)));
        let negative = follower(TimeDelta::seconds(-5));
        negative.poll().await.unwrap();
        assert_eq!(negative.since(), Some(now), "a negative overlap counts as none");
    }
}
