//! The revocation feed as this instance holds it: every revocation the store records, read by
//! position (the entry's id, which is also the cursor other services resume from), applied to
//! the instance's revocation set, and kept in memory for as long as it matters to a service
//! that verifies access tokens: until the access tokens it voids have expired. One reader of
//! the store, woken by the change feed (pushed on PostgreSQL) and every second; any number of
//! `GET /auth/revocations` readers and streams, served from memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError, RwLock};

use chrono::{DateTime, TimeDelta, Utc};
use jwt_auth_store::{FeedEntry, Store, StoreError};
use jwt_core::{FeedEvent, Revocation, RevocationSet};
use tokio::sync::watch;

/// How many streams one client (one `sub`) may hold open at once.
pub const MAX_STREAMS_PER_CLIENT: usize = 4;

/// Why a cursor cannot be served: the reader starts again without one.
#[derive(Debug, PartialEq, Eq)]
pub struct CursorExpired;

/// The feed in memory.
pub struct FeedLog {
    inner: RwLock<Inner>,
    /// One reader of the store at a time.
    reading: tokio::sync::Mutex<()>,
    /// The newest position read, for the streams to wait on.
    head: watch::Sender<i64>,
    /// Open streams per client.
    streams: Mutex<HashMap<String, usize>>,
    /// Woken by this instance's own revocations, so that the feed is read at once (other
    /// instances' arrive by the store's change feed, or the poll).
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct Inner {
    /// The events that still matter, by position.
    events: VecDeque<(i64, FeedEvent)>,
    /// The newest position read.
    head: i64,
    /// Positions at or below this may have held events that were dropped: not served.
    floor: i64,
    loaded: bool,
}

impl Default for FeedLog {
    fn default() -> Self {
        Self {
            inner: RwLock::default(),
            reading: tokio::sync::Mutex::new(()),
            head: watch::Sender::new(0),
            streams: Mutex::default(),
            wake: tokio::sync::Notify::new(),
        }
    }
}

/// The feed event for `entry`: it matters until every access token it voids has expired,
/// which is `token_lifetime` after it was recorded at the latest.
pub fn event(entry: &FeedEntry, token_lifetime: TimeDelta) -> FeedEvent {
    let mut event =
        FeedEvent::from_revocation(entry.id.to_string(), &entry.revocation, token_lifetime);
    if matches!(entry.revocation, Revocation::Session { .. } | Revocation::Key { .. }) {
        let horizon = (entry.recorded_at + token_lifetime).timestamp();
        event.expires_at = event.expires_at.min(horizon);
    }
    event
}

impl FeedLog {
    /// Reads what the store recorded after the newest position read, applies it to
    /// `revocations`, keeps what still matters to other services at `now`, and drops what
    /// no longer does (there and in `revocations`). Returns how many entries were read.
    pub async fn advance(
        &self,
        store: &Store,
        revocations: &RevocationSet,
        now: DateTime<Utc>,
        token_lifetime: TimeDelta,
    ) -> Result<usize, StoreError> {
        let _one_reader = self.reading.lock().await;
        let (head, loaded) = {
            let inner = self.read();
            (inner.head, inner.loaded)
        };
        let entries = store.revocation_feed(head, now).await?;
        // On the first read, entries that no longer matter are not returned: the head is the
        // store's newest position, so that cursors other instances gave out stay known.
        let store_head = if loaded { head } else { store.revocation_feed_head().await? };
        let applied: Vec<Revocation> = entries.iter().map(|e| e.revocation.clone()).collect();
        revocations.apply(&applied);
        revocations.prune(now);
        let new_head = entries.last().map_or(head, |e| e.id).max(store_head);
        {
            let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
            if !inner.loaded {
                // Whatever came before the first read and is not returned had ended.
                inner.floor = entries.first().map_or(new_head, |e| e.id - 1);
                inner.loaded = true;
            }
            let now_secs = now.timestamp();
            for entry in &entries {
                let event = event(entry, token_lifetime);
                if event.expires_at > now_secs {
                    inner.events.push_back((entry.id, event));
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
        Ok(entries.len())
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
        self.read().loaded
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
        self.streams.lock().unwrap_or_else(PoisonError::into_inner).values().sum()
    }

    /// Counts a stream of `client`; `None` past [`MAX_STREAMS_PER_CLIENT`]. The stream is
    /// uncounted when the guard drops.
    pub fn open_stream(self: &std::sync::Arc<Self>, client: &str) -> Option<StreamGuard> {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let open = streams.entry(client.to_owned()).or_default();
        if *open >= MAX_STREAMS_PER_CLIENT {
            return None;
        }
        *open += 1;
        Some(StreamGuard { log: std::sync::Arc::clone(self), client: client.to_owned() })
    }
}

/// One open stream, counted against its client until dropped.
pub struct StreamGuard {
    log: std::sync::Arc<FeedLog>,
    client: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut streams = self.log.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = streams.get_mut(&self.client) {
            *open -= 1;
            if *open == 0 {
                streams.remove(&self.client);
            }
        }
    }
}

/// A cursor as given (`after=` or `Last-Event-ID`): a position this feed may have given out.
/// Anything else is a cursor it does not recognise, refused as an expired one is.
pub fn parse_cursor(text: &str) -> Result<i64, CursorExpired> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CursorExpired);
    }
    // Digits past any position this feed can reach: ahead of it, so not known (410).
    Ok(text.parse::<i64>().unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_session_matters_until_its_access_tokens_expire() {
        let t = Utc.timestamp_opt(1_900_000_000, 0).unwrap();
        let lifetime = TimeDelta::minutes(30);
        let long = FeedEntry {
            id: 3,
            recorded_at: t,
            revocation: Revocation::Session { id: "s".into(), expires_at: t + TimeDelta::days(30) },
        };
        assert_eq!(event(&long, lifetime).expires_at, (t + lifetime).timestamp());
        let ending = FeedEntry {
            revocation: Revocation::Session {
                id: "s".into(),
                expires_at: t + TimeDelta::minutes(1),
            },
            ..long
        };
        assert_eq!(event(&ending, lifetime).expires_at, (t + TimeDelta::minutes(1)).timestamp());
        assert_eq!(event(&ending, lifetime).cursor, "3");
    }

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
        let log = std::sync::Arc::new(FeedLog::default());
        let held: Vec<_> =
            (0..MAX_STREAMS_PER_CLIENT).map(|_| log.open_stream("a").expect("room")).collect();
        assert!(log.open_stream("a").is_none());
        assert!(log.open_stream("b").is_some(), "another client is not affected");
        drop(held);
        assert!(log.open_stream("a").is_some());
    }
}
