//! The revocation feed as this instance holds it: every revocation the store records, read by
//! position (the entry's id, which is also the cursor other services resume from), applied to
//! the instance's revocation set, and kept in memory for as long as it matters to a service
//! that verifies access tokens: until the access tokens it voids have expired. One reader of
//! the store, woken by the change feed (pushed on PostgreSQL) and every second; any number of
//! `GET /auth/revocations` readers and streams, served from memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use jwt_auth_store::Store;
use jwt_core::{Clock, FeedEvent, FeedFollower, StoreFeed, feed_position};
use tokio::sync::watch;

/// How many streams one client (one `sub`) may hold open at once.
pub const MAX_STREAMS_PER_CLIENT: usize = 4;

/// Why a cursor cannot be served: the reader starts again without one.
#[derive(Debug, PartialEq, Eq)]
pub struct CursorExpired;

/// The feed in memory.
pub struct FeedLog {
    inner: RwLock<Inner>,
    /// The store's feed, and the follower that applies it to the revocation set.
    source: StoreFeed<Arc<Store>>,
    follower: FeedFollower,
    clock: Arc<dyn Clock>,
    /// One reader of the store at a time.
    reading: tokio::sync::Mutex<()>,
    /// The newest position read, for the streams to wait on.
    head: watch::Sender<i64>,
    /// Open streams per client.
    streams: Arc<Streams>,
    /// Woken by this instance's own revocations, so that the feed is read at once (other
    /// instances' arrive by the store's change feed, or the poll).
    wake: tokio::sync::Notify,
    /// Whether the first read has been made, for [`FeedLog::loaded`].
    loaded: watch::Sender<bool>,
}

#[derive(Default)]
struct Inner {
    /// The events that still matter, by position.
    events: VecDeque<(i64, FeedEvent)>,
    /// The newest position read.
    head: i64,
    /// Positions at or below this may have held events that were dropped: not served.
    floor: i64,
}

impl FeedLog {
    /// The feed of a store (`source`), applied by `follower` to the instance's revocation set,
    /// with events kept until `clock` passes their end (see [`Sessions::store_feed`] and
    /// [`Sessions::revocation_follower`]).
    ///
    /// [`Sessions::store_feed`]: jwt_core::Sessions::store_feed
    /// [`Sessions::revocation_follower`]: jwt_core::Sessions::revocation_follower
    pub fn new(
        source: StoreFeed<Arc<Store>>,
        follower: FeedFollower,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: RwLock::default(),
            source,
            follower,
            clock,
            reading: tokio::sync::Mutex::new(()),
            head: watch::Sender::new(0),
            streams: Arc::default(),
            wake: tokio::sync::Notify::new(),
            loaded: watch::Sender::new(false),
        }
    }

    /// Reads what the store recorded after the newest position read, applies it to the
    /// revocation set, keeps what still matters to other services, and drops what no longer
    /// does (here and in the set). Returns how many entries were read.
    pub async fn advance(&self) -> Result<usize, jwt_core::Error> {
        let _one_reader = self.reading.lock().await;
        let first = !self.follower.is_loaded();
        let events = self.follower.advance(&self.source).await?;
        let position = |event: &FeedEvent| feed_position(&event.cursor).unwrap_or(0);
        let new_head = self.follower.cursor().as_deref().and_then(feed_position).unwrap_or(0);
        let now_secs = self.clock.now().timestamp();
        {
            let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
            if first {
                // Whatever came before the first read and is not returned had ended.
                inner.floor = events.first().map_or(new_head, |e| position(e) - 1);
            }
            for event in &events {
                if event.expires_at > now_secs {
                    inner.events.push_back((position(event), event.clone()));
                }
            }
            let mut floor = inner.floor;
            inner.events.retain(|(id, event)| {
                let keep = event.expires_at > now_secs;
                if !keep {
                    floor = floor.max(*id);
                }
                keep
            });
            inner.floor = floor;
            inner.head = new_head;
        }
        self.head.send_if_modified(|head| std::mem::replace(head, new_head) != new_head);
        if first {
            self.loaded.send_replace(true);
        }
        Ok(events.len())
    }

    /// Applies one change that arrived from the change stream, unless its position is not
    /// past the newest one read (it came from the database already, or it is a redelivery):
    /// a revocation goes to the revocation set and is kept while it matters; any change moves
    /// the position. Returns whether it was new.
    pub async fn apply_streamed(&self, event: &FeedEvent) -> bool {
        let Some(position) = feed_position(&event.cursor) else { return false };
        let _one_reader = self.reading.lock().await;
        if position <= self.read().head {
            return false;
        }
        if event.revocation().is_some() {
            self.follower.apply(std::slice::from_ref(event));
        } else {
            self.follower.skip_to(event.cursor.clone());
        }
        {
            let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
            if event.revocation().is_some() && event.expires_at > self.clock.now().timestamp() {
                inner.events.push_back((position, event.clone()));
            }
            inner.head = position;
        }
        self.head.send_if_modified(|head| std::mem::replace(head, position) != position);
        true
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// What wakes the reader of the store: this instance's own revocations notify it, so that
    /// the feed is read at once.
    pub fn waker(&self) -> &tokio::sync::Notify {
        &self.wake
    }

    /// Whether the first read has been made.
    pub fn is_loaded(&self) -> bool {
        self.follower.is_loaded()
    }

    /// Resolves once the first read has been made.
    pub async fn loaded(&self) {
        // The sender lives in `self`, so the wait ends only by the value.
        let _ = self.loaded.subscribe().wait_for(|loaded| *loaded).await;
    }

    /// The newest position read.
    pub fn head(&self) -> i64 {
        self.read().head
    }

    /// The events after `cursor` (every event that still matters when `None`), oldest first,
    /// and the position to resume from. A cursor ahead of the newest position read or
    /// behind what was dropped is not known.
    pub fn after(&self, cursor: Option<i64>) -> Result<(Vec<FeedEvent>, i64), CursorExpired> {
        let inner = self.read();
        let after = match cursor {
            None => i64::MIN,
            Some(c) if c > inner.head || c < inner.floor => return Err(CursorExpired),
            Some(c) => c,
        };
        let events: Vec<FeedEvent> =
            inner.events.iter().filter(|(id, _)| *id > after).map(|(_, e)| e.clone()).collect();
        Ok((events, inner.head.max(cursor.unwrap_or(i64::MIN))))
    }

    /// Waits for positions past the one seen last.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }

    /// How many streams are open, every client's.
    pub fn open_streams(&self) -> usize {
        self.streams.open.lock().unwrap_or_else(PoisonError::into_inner).values().sum()
    }

    /// Counts a stream of `client`; `None` past [`MAX_STREAMS_PER_CLIENT`]. The stream is
    /// uncounted when the guard drops.
    pub fn open_stream(&self, client: &str) -> Option<StreamGuard> {
        Streams::open(&self.streams, client)
    }
}

/// The streams open per client.
#[derive(Default)]
struct Streams {
    open: Mutex<HashMap<String, usize>>,
}

impl Streams {
    fn open(streams: &Arc<Streams>, client: &str) -> Option<StreamGuard> {
        let mut open = streams.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(client.to_owned()).or_default();
        if *count >= MAX_STREAMS_PER_CLIENT {
            return None;
        }
        *count += 1;
        Some(StreamGuard { streams: Arc::clone(streams), client: client.to_owned() })
    }
}

/// One open stream, counted against its client until dropped.
pub struct StreamGuard {
    streams: Arc<Streams>,
    client: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// A cursor as given (`after=` or `Last-Event-ID`): a position this feed may have given out.
/// Anything else is a cursor it does not recognise, refused as an expired one is.
pub fn parse_cursor(text: &str) -> Result<i64, CursorExpired> {
    feed_position(text).ok_or(CursorExpired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_non_negative_integers() {
        assert_eq!(parse_cursor("42"), Ok(42));
        assert_eq!(parse_cursor("0"), Ok(0));
        assert_eq!(parse_cursor("99999999999999999999"), Ok(i64::MAX), "ahead of any feed");
        for bad in ["", "-1", "+1", "x", "1.5"] {
            assert_eq!(parse_cursor(bad), Err(CursorExpired), "{bad}");
        }
    }

    #[test]
    fn streams_are_bounded_per_client() {
        let streams = Arc::new(Streams::default());
        let held: Vec<_> = (0..MAX_STREAMS_PER_CLIENT)
            .map(|_| Streams::open(&streams, "a").expect("room"))
            .collect();
        assert!(Streams::open(&streams, "a").is_none());
        assert!(Streams::open(&streams, "b").is_some(), "another client is not affected");
        drop(held);
        assert!(Streams::open(&streams, "a").is_some());
    }
}
