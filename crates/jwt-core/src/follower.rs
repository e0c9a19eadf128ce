//! Following a revocation feed by cursor. A [`FeedFollower`] reads what a [`FeedSource`] holds
//! after its cursor, applies it to one [`RevocationSet`], moves the cursor, and starts over
//! without one when the source no longer knows it. The server follows its own store this way
//! ([`StoreFeed`], positions in the store's feed), and a service that verifies tokens follows
//! the server's `GET /auth/revocations` the same way (the cursors the server hands out): one
//! follower, whatever the source.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::TimeDelta;

use crate::clock::Clock;
use crate::error::Error;
use crate::feed::{FeedEvent, FeedPage};
use crate::revocation::RevocationSet;
use crate::store::RevocationStore;

/// The most pages [`FeedFollower::catch_up`] reads in one go.
pub const MAX_PAGES_IN_A_ROW: usize = 1000;

/// Why a [`FeedSource`] gave no page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedReadError<E> {
    /// The source does not know the cursor (it expired, or was never one of its own): the
    /// follower starts again without one.
    CursorExpired,
    /// The source could not be read; the cursor stays where it was.
    Failed(E),
}

/// Where a [`FeedFollower`] reads revocations: a store's feed, or a server's feed over HTTP.
pub trait FeedSource {
    /// Why a read failed.
    type Error;

    /// The events after `cursor` (every event that still matters when `None`), oldest first,
    /// and the cursor to resume from: the last event's, or the one given when none is new.
    fn events_after(
        &self,
        cursor: Option<&str>,
    ) -> impl Future<Output = Result<FeedPage, FeedReadError<Self::Error>>> + Send;
}

/// Keeps one revocation set current with a feed, and the cursor for it.
///
/// [`advance`](FeedFollower::advance) reads one page after the cursor;
/// [`catch_up`](FeedFollower::catch_up) reads until a page brings nothing new. Events that
/// arrive by other means (a stream) go to [`apply`](FeedFollower::apply), which moves the
/// cursor too. Each read also forgets what has expired from the set. One reader at a time:
/// the follower does not order concurrent reads itself.
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
/// let (follower, feed) = (there.revocation_follower(), there.store_feed());
/// assert!(!follower.is_loaded());
///
/// let pair = here.start(&alice, ClientInfo::default()).await?;
/// here.end(&pair.session_id, RevokeReason::Logout).await?;
/// assert!(there.authenticate(pair.access_token.expose()).is_ok(), "not heard of it yet");
/// assert_eq!(follower.catch_up(&feed).await?, 1);
/// assert!(there.authenticate(pair.access_token.expose()).is_err());
/// assert_eq!(follower.cursor().as_deref(), Some("1"));
/// assert_eq!(follower.catch_up(&feed).await?, 0, "nothing new after the cursor");
/// # Ok::<(), jwt_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct FeedFollower {
    revocations: Arc<RevocationSet>,
    clock: Arc<dyn Clock>,
    /// Where the next read starts; `None` before the first, and after the source forgot it.
    cursor: Mutex<Option<String>>,
    loaded: AtomicBool,
}

impl FeedFollower {
    /// A follower into `revocations`, forgetting what has expired by `clock`. Nothing is read
    /// until the first [`advance`](FeedFollower::advance).
    pub fn new(revocations: Arc<RevocationSet>, clock: Arc<dyn Clock>) -> Self {
        Self { revocations, clock, cursor: Mutex::new(None), loaded: AtomicBool::new(false) }
    }

    /// Reads one page after the cursor (from the start, if the source no longer knows the
    /// cursor), applies it, and moves the cursor. Returns the page's events. On an error
    /// nothing moves: the next read asks again from the same point.
    pub async fn advance<S: FeedSource>(&self, source: &S) -> Result<Vec<FeedEvent>, S::Error> {
        let cursor = self.cursor();
        let page = match source.events_after(cursor.as_deref()).await {
            Ok(page) => page,
            Err(FeedReadError::CursorExpired) => {
                self.restart();
                match source.events_after(None).await {
                    Ok(page) => page,
                    Err(FeedReadError::Failed(e)) => return Err(e),
                    // A source that does not know its own start has nothing to give.
                    Err(FeedReadError::CursorExpired) => return Ok(Vec::new()),
                }
            }
            Err(FeedReadError::Failed(e)) => return Err(e),
        };
        self.apply_events(&page.events, &page.cursor);
        self.revocations.prune(self.clock.now());
        self.loaded.store(true, Ordering::Release);
        Ok(page.events)
    }

    /// Reads pages until one brings nothing new (at most [`MAX_PAGES_IN_A_ROW`]). Returns how
    /// many events were read.
    pub async fn catch_up<S: FeedSource>(&self, source: &S) -> Result<usize, S::Error> {
        let mut read = 0;
        for _ in 0..MAX_PAGES_IN_A_ROW {
            let before = self.cursor();
            let events = self.advance(source).await?;
            read += events.len();
            if events.is_empty() || self.cursor() == before {
                break;
            }
        }
        Ok(read)
    }

    /// Applies events that arrived by other means (a stream), oldest first: the cursor moves
    /// to the last one's. What has expired is forgotten at the next read, not here.
    pub fn apply(&self, events: &[FeedEvent]) {
        if let Some(last) = events.last() {
            self.apply_events(events, &last.cursor);
        }
    }

    /// Moves the cursor past an event that could not be read, so that it is not asked for
    /// again.
    pub fn skip_to(&self, cursor: String) {
        *self.lock() = Some(cursor);
    }

    /// Forgets the cursor: the next read starts from every event that still matters. What the
    /// set holds stays (applying an event twice changes nothing).
    pub fn restart(&self) {
        *self.lock() = None;
    }

    /// Where the next read starts; `None` before the first.
    pub fn cursor(&self) -> Option<String> {
        self.lock().clone()
    }

    /// Whether a read has succeeded, so that the set holds every revocation the source held
    /// then: until then a server should not report itself ready.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// The set this follower keeps current.
    pub fn revocations(&self) -> &Arc<RevocationSet> {
        &self.revocations
    }

    /// Applies `events` to the set and moves the cursor to `cursor`.
    fn apply_events(&self, events: &[FeedEvent], cursor: &str) {
        let revocations: Vec<_> = events.iter().filter_map(FeedEvent::revocation).collect();
        self.revocations.apply(&revocations);
        *self.lock() = Some(cursor.to_owned());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.cursor.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A store's revocation feed as a [`FeedSource`]: cursors are positions in the store's feed
/// (decimal), and each entry becomes the event a follower applies, which matters until every
/// access token it voids has expired ([`FeedEvent::from_entry`]).
///
/// ```
/// use std::sync::Arc;
/// use chrono::{TimeDelta, Utc};
/// use jwt_core::{FeedReadError, FeedSource, MemoryStore, RevocationStore, StoreFeed, SystemClock};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// store.void_issued_before(Some("alice"), Utc::now(), Utc::now()).await?;
/// let feed = StoreFeed::new(store, Arc::new(SystemClock), TimeDelta::minutes(15));
/// let page = feed.events_after(None).await.expect("a store in memory answers");
/// assert_eq!((page.events.len(), page.cursor.as_str()), (1, "1"));
/// assert!(matches!(feed.events_after(Some("not a position")).await, Err(FeedReadError::CursorExpired)));
/// # Ok::<(), jwt_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct StoreFeed<S> {
    store: S,
    clock: Arc<dyn Clock>,
    token_lifetime: TimeDelta,
}

impl<S: RevocationStore> StoreFeed<S> {
    /// `store`'s feed, read at `clock`'s time, for access tokens living at most
    /// `token_lifetime` (with the leeway).
    pub fn new(store: S, clock: Arc<dyn Clock>, token_lifetime: TimeDelta) -> Self {
        Self { store, clock, token_lifetime }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

/// A cursor as a position of a store's feed; `None` for anything a store never hands out.
/// Digits past any position a feed can reach count as the furthest one (ahead of the feed).
///
/// ```
/// assert_eq!(jwt_core::feed_position("42"), Some(42));
/// assert_eq!(jwt_core::feed_position("99999999999999999999"), Some(i64::MAX));
/// assert_eq!(jwt_core::feed_position("-1"), None);
/// assert_eq!(jwt_core::feed_position(""), None);
/// ```
pub fn feed_position(cursor: &str) -> Option<i64> {
    let cursor = cursor.trim();
    if cursor.is_empty() || !cursor.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(cursor.parse::<i64>().unwrap_or(i64::MAX))
}

impl<S: RevocationStore> FeedSource for StoreFeed<S> {
    type Error = Error;

    async fn events_after(&self, cursor: Option<&str>) -> Result<FeedPage, FeedReadError<Error>> {
        let after = match cursor {
            None => None,
            Some(text) => Some(feed_position(text).ok_or(FeedReadError::CursorExpired)?),
        };
        // From the start, entries that no longer matter are not returned: the cursor is then
        // the store's newest position, so that it stays past them. That position is read
        // first: an entry recorded between the two reads is past it, so it is returned now
        // or read next time, never skipped.
        let start = match after {
            Some(after) => after,
            None => self.store.revocation_feed_head().await.map_err(FeedReadError::Failed)?,
        };
        let now = self.clock.now();
        let entries = self
            .store
            .revocation_feed(after.unwrap_or(0), now)
            .await
            .map_err(FeedReadError::Failed)?;
        let cursor = entries.last().map_or(start, |e| e.position).max(start);
        let events =
            entries.iter().map(|e| FeedEvent::from_entry(e, self.token_lifetime)).collect();
        Ok(FeedPage { events, cursor: cursor.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::memory::MemoryStore;
    use crate::values::Revocation;
    use chrono::{DateTime, Utc};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).expect("a valid time")
    }

    const T0: i64 = 1_700_000_000;

    /// A source that forgets cursors on demand, over a store.
    struct Forgetful {
        feed: StoreFeed<Arc<MemoryStore>>,
        forget: AtomicBool,
        reads: Mutex<Vec<Option<String>>>,
    }

    impl FeedSource for Forgetful {
        type Error = Error;
        async fn events_after(
            &self,
            cursor: Option<&str>,
        ) -> Result<FeedPage, FeedReadError<Error>> {
            self.reads.lock().unwrap().push(cursor.map(str::to_owned));
            if cursor.is_some() && self.forget.swap(false, Ordering::AcqRel) {
                return Err(FeedReadError::CursorExpired);
            }
            self.feed.events_after(cursor).await
        }
    }

    #[tokio::test]
    async fn the_cursor_moves_past_what_was_read_and_restarts_when_the_source_forgets_it() {
        let clock = ManualClock::new(at(T0));
        let store = Arc::new(MemoryStore::new());
        let set = Arc::new(RevocationSet::new());
        let follower = FeedFollower::new(set.clone(), Arc::new(clock.clone()));
        let source = Forgetful {
            feed: StoreFeed::new(store.clone(), Arc::new(clock.clone()), TimeDelta::minutes(15)),
            forget: AtomicBool::new(false),
            reads: Mutex::default(),
        };
        store.void_issued_before(Some("alice"), at(T0), at(T0)).await.unwrap();

        assert_eq!((follower.is_loaded(), follower.cursor()), (false, None));
        assert_eq!(follower.catch_up(&source).await.unwrap(), 1);
        assert!(follower.is_loaded());
        assert_eq!(follower.cursor().as_deref(), Some("1"));
        assert!(set.is_revoked("any", "alice", T0 - 1));

        store.void_issued_before(Some("bob"), at(T0 + 5), at(T0 + 5)).await.unwrap();
        assert_eq!(follower.catch_up(&source).await.unwrap(), 1, "only the new one");
        assert!(set.is_revoked("any", "bob", T0 + 4));
        assert_eq!(follower.cursor().as_deref(), Some("2"));

        // The source forgets the cursor: the follower reads everything again, once.
        source.forget.store(true, Ordering::Release);
        source.reads.lock().unwrap().clear();
        assert_eq!(follower.advance(&source).await.unwrap().len(), 2);
        assert_eq!(*source.reads.lock().unwrap(), vec![Some("2".to_owned()), None]);
        assert_eq!(follower.cursor().as_deref(), Some("2"));
    }

    #[tokio::test]
    async fn streamed_events_apply_at_once_and_move_the_cursor() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(at(T0)));
        let set = Arc::new(RevocationSet::new());
        let follower = FeedFollower::new(set.clone(), clock);
        let session = Revocation::Session { id: "s1".into(), expires_at: at(T0 + 3600) };
        let event = FeedEvent::from_revocation("9".into(), &session, TimeDelta::minutes(15));
        follower.apply(&[event]);
        assert!(set.is_revoked("s1", "alice", T0));
        assert_eq!(follower.cursor().as_deref(), Some("9"));
        assert!(!follower.is_loaded(), "a stream alone does not load the whole state");
        follower.skip_to("10".into());
        assert_eq!(follower.cursor().as_deref(), Some("10"));
    }

    #[tokio::test]
    async fn from_the_start_the_cursor_is_the_stores_newest_position_and_ended_entries_stay_out() {
        let clock = ManualClock::new(at(T0));
        let store = Arc::new(MemoryStore::new());
        // A key revoked long ago, whose tokens have all expired by now.
        store.record(
            at(T0 - 7200),
            Revocation::Key { kid: "old".into(), expires_at: at(T0 - 3600) },
        );
        let feed = StoreFeed::new(store, Arc::new(clock.clone()), TimeDelta::minutes(15));
        let page = feed.events_after(None).await.unwrap();
        assert!(page.events.is_empty());
        assert_eq!(page.cursor, "1", "past the ended entry");
        assert_eq!(feed.events_after(Some("1")).await.unwrap().cursor, "1");
        assert!(matches!(feed.events_after(Some("x")).await, Err(FeedReadError::CursorExpired)));
    }

    /// A store where another instance records a revocation at the moment the feed's newest
    /// position is read.
    struct Racing {
        inner: MemoryStore,
        at: DateTime<Utc>,
    }

    impl RevocationStore for Racing {
        async fn revoke_session(
            &self,
            id: &str,
            reason: crate::store::RevokeReason,
            at: DateTime<Utc>,
        ) -> crate::error::Result<Option<Revocation>> {
            self.inner.revoke_session(id, reason, at).await
        }

        async fn revoke_user(
            &self,
            user_id: &str,
            reason: crate::store::RevokeReason,
            at: DateTime<Utc>,
        ) -> crate::error::Result<Vec<Revocation>> {
            self.inner.revoke_user(user_id, reason, at).await
        }

        async fn void_issued_before(
            &self,
            user_id: Option<&str>,
            before: DateTime<Utc>,
            at: DateTime<Utc>,
        ) -> crate::error::Result<Revocation> {
            self.inner.void_issued_before(user_id, before, at).await
        }

        async fn revocation_feed(
            &self,
            after: i64,
            now: DateTime<Utc>,
        ) -> crate::error::Result<Vec<crate::feed::FeedEntry>> {
            self.inner.revocation_feed(after, now).await
        }

        async fn revocation_feed_head(&self) -> crate::error::Result<i64> {
            self.inner.void_issued_before(Some("racer"), self.at, self.at).await?;
            self.inner.revocation_feed_head().await
        }
    }

    #[tokio::test]
    async fn a_revocation_recorded_while_the_first_read_runs_is_not_skipped() {
        let clock = ManualClock::new(at(T0));
        let store = Racing { inner: MemoryStore::new(), at: at(T0) };
        let feed = StoreFeed::new(store, Arc::new(clock), TimeDelta::minutes(15));
        let page = feed.events_after(None).await.expect("read");
        let read: Vec<_> = page.events.iter().filter_map(FeedEvent::revocation).collect();
        let racer = Revocation::IssuedBefore { user_id: Some("racer".into()), before: at(T0) };
        assert!(read.contains(&racer), "the cursor {} passed it unread", page.cursor);
        assert_eq!(page.cursor, "1");
    }
}
