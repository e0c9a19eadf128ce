//! The change feed past one database server, on NATS JetStream (`NATS_URL`).
//!
//! - **The relay.** One instance at a time (the holder of the store's relay leadership, which
//!   it only seeks while NATS is reachable) publishes the outbox to the stream in position
//!   order, each change with its cursor as message id, and records how far it got. A new
//!   leader starts from the recorded position; what the old one published after it is
//!   dropped by the stream as duplicates.
//! - **The reader.** Every instance follows `NATS_STREAM` (a mirror in its own region) and
//!   applies each change once, in order: revocations to the feed it holds (and so to its
//!   revocation set), user changes to its user cache, key changes to its key set. While it
//!   does, it reads nothing from the database; while NATS is unreachable, it says so and the
//!   instance reads the database every second instead, then follows the stream again from the
//!   message after the last one it handled, skipping what the database gave meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::TimeDelta;
use jwt_auth_nats::{Connection, Delivered, Handler, RETRY_AFTER, Start, StreamSettings};
use jwt_auth_store::{OutboxChange, OutboxEntry, Store};
use jwt_core::{Clock, FeedChange, FeedEntry, FeedEvent};
use tokio::sync::Notify;

use crate::feed::FeedLog;

/// How many outbox rows the relay reads at a time.
pub const RELAY_BATCH: u32 = 500;
/// How long before the moment an instance loaded the feed from the database its reader starts
/// the stream: a margin for the clocks of the instance and of the NATS server.
pub const START_MARGIN: TimeDelta = TimeDelta::seconds(60);

/// Whether this instance follows the stream now, for the database readers to stand aside
/// and for `/metrics`.
#[derive(Debug, Default)]
pub struct StreamStatus {
    following: AtomicBool,
    leading: AtomicBool,
    /// Woken when following stops, so that the database is read at once.
    stopped: Notify,
}

impl StreamStatus {
    /// Whether changes arrive from the stream now; while `false` the instance reads the
    /// database every second.
    pub fn is_following(&self) -> bool {
        self.following.load(Ordering::Acquire)
    }

    /// Whether this instance leads the relay now.
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// Resolves when following stops.
    pub async fn stopped(&self) {
        self.stopped.notified().await
    }

    fn set_following(&self, following: bool) {
        if self.following.swap(following, Ordering::AcqRel) == following {
            return;
        }
        if !following {
            self.stopped.notify_waiters();
        }
    }
}

/// The event an outbox entry is published as: a revocation as the revocation feed serves it
/// (it matters until the access tokens it voids have expired, `token_lifetime` with the
/// leeway); a user or key change for as long as the outbox keeps it.
pub fn event_of(entry: &OutboxEntry, token_lifetime: TimeDelta) -> FeedEvent {
    let change = match &entry.change {
        OutboxChange::Revocation(revocation) => {
            let feed_entry = FeedEntry {
                position: entry.position,
                recorded_at: entry.recorded_at,
                revocation: revocation.clone(),
            };
            return FeedEvent::from_entry(&feed_entry, token_lifetime);
        }
        OutboxChange::UserChanged(id) => FeedChange::UserChanged { sub: id.clone() },
        OutboxChange::KeysChanged => FeedChange::KeysChanged,
    };
    let expires_at = (entry.recorded_at + jwt_auth_store::CHANGE_KEPT).timestamp();
    FeedEvent { cursor: entry.position.to_string(), change, expires_at }
}

/// The relay: leads when it can, publishes the outbox while it leads, for ever.
pub struct Relay {
    /// The store whose outbox is published.
    pub store: Arc<Store>,
    /// The connection to NATS.
    pub nats: Connection,
    /// The stream created if missing.
    pub settings: StreamSettings,
    /// The lifetime of access tokens with the leeway, for the revocations' `expires_at`.
    pub token_lifetime: TimeDelta,
    /// How often the outbox is read.
    pub poll_every: Duration,
    /// Where leading is shown.
    pub status: Arc<StreamStatus>,
}

impl Relay {
    /// Runs for ever.
    pub async fn run(self) {
        let mut connected = self.nats.watch();
        loop {
            // Only an instance that reaches NATS seeks to lead: one that does not would hold
            // everyone's changes back.
            if connected.wait_for(|up| *up).await.is_err() {
                return;
            }
            match self.store.relay_leadership().await {
                Ok(Some(leadership)) => {
                    self.status.leading.store(true, Ordering::Release);
                    tracing::info!("leading the change stream's relay");
                    let ended = self.lead(leadership).await;
                    self.status.leading.store(false, Ordering::Release);
                    tracing::warn!(reason = %ended, "stopped leading the change stream's relay");
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "could not seek the relay's leadership"),
            }
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }

    /// Publishes while `leadership` holds and NATS is connected; returns why it stopped. A
    /// failed read or publish is tried again after [`RETRY_AFTER`] from the recorded position,
    /// keeping the leadership: it stays where it is (in the primary's region, when that
    /// instance started first) rather than moving at every hiccup.
    async fn lead(&self, mut leadership: jwt_auth_store::Leadership) -> String {
        let mut connected = self.nats.watch();
        let mut failing = false;
        // The position published up to, and the sequence of the stream's last message once
        // known; read from the store (and the stream made sure of) at the start and after a
        // failure.
        let mut published = None;
        loop {
            let failed = match self.publish_all(&leadership, &mut published).await {
                Ok(()) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("the change stream's relay publishes again");
                    }
                    None
                }
                Err(e) => {
                    published = None;
                    Some(e)
                }
            };
            if let Some(e) = &failed
                && !std::mem::replace(&mut failing, true)
            {
                tracing::warn!(error = %e, "the change stream's relay could not publish; retrying");
            }
            let wait = if failed.is_some() { RETRY_AFTER } else { self.poll_every };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = leadership.lost() => return "the leadership was lost".to_owned(),
                _ = connected.wait_for(|up| !*up) => return "NATS became unreachable".to_owned(),
            }
        }
    }

    /// Publishes the outbox after `published` (the recorded position when `None`), until a
    /// read brings less than a batch.
    ///
    /// After a start or a failure the stream may hold rows past the recorded position (a
    /// leader that died before recording them): rows are then published one at a time, each
    /// acknowledged before the next, until the stream stores one that it did not have. From
    /// there the stream's last message is known (its sequence), and a batch is sent at once,
    /// each message naming the sequence of the one before it as the stream's last (see
    /// [`Connection::publish_after`]).
    async fn publish_all(
        &self,
        leadership: &jwt_auth_store::Leadership,
        position: &mut Option<(i64, Option<u64>)>,
    ) -> Result<(), String> {
        let (mut published, mut last_sequence) = match *position {
            Some(at) => at,
            None => {
                self.nats.ensure_stream(&self.settings).await.map_err(|e| e.to_string())?;
                (self.store.relay_published().await.map_err(|e| e.to_string())?, None)
            }
        };
        *position = Some((published, last_sequence));
        loop {
            let entries =
                self.store.outbox_after(published, RELAY_BATCH).await.map_err(|e| e.to_string())?;
            if !leadership.is_held() {
                return Err("the leadership was lost".to_owned());
            }
            let events: Vec<FeedEvent> =
                entries.iter().map(|entry| event_of(entry, self.token_lifetime)).collect();
            let mut rest = &events[..];
            while last_sequence.is_none()
                && let Some((event, after)) = rest.split_first()
            {
                let stored = self.nats.publish(event).await.map_err(|e| e.to_string())?;
                last_sequence = (!stored.duplicate).then_some(stored.sequence);
                rest = after;
            }
            if let Some(after) = last_sequence
                && !rest.is_empty()
            {
                let last = self.nats.publish_after(after, rest).await.map_err(|e| e.to_string())?;
                last_sequence = Some(last);
            }
            if let Some(entry) = entries.last() {
                published = entry.position;
                self.store.set_relay_published(published).await.map_err(|e| e.to_string())?;
                *position = Some((published, last_sequence));
            }
            if entries.len() < RELAY_BATCH as usize {
                return Ok(());
            }
        }
    }
}

/// What a reader applies changes to, besides the feed: user and key changes.
pub trait ChangeTarget: Send + Sync {
    /// User `id`'s record changed: forget any cached copy.
    fn user_changed(&self, id: &str) -> impl Future<Output = ()> + Send;
    /// The signing keys changed: read them again.
    fn keys_changed(&self);
    /// A delivery took this long from the stream's storing it to being applied here.
    fn observe_lag(&self, lag: Duration);
}

/// The reader: follows `stream` on `nats` for ever, applying each change once.
pub struct Reader {
    /// The connection to NATS.
    pub nats: Connection,
    /// The stream (or mirror) followed.
    pub stream: String,
    /// The feed this instance holds, loaded from the database first.
    pub feed: Arc<FeedLog>,
    /// The wall clock, for the start time and the lag.
    pub clock: Arc<dyn Clock>,
    /// Where following is shown.
    pub status: Arc<StreamStatus>,
}

impl Reader {
    /// Runs for ever (while the connection lives): from a little before now (the feed was
    /// loaded from the database at start-up), then from the message after the last one
    /// handled.
    pub async fn run(self, target: &impl ChangeTarget) {
        let start = Start::Since(self.clock.now() - START_MARGIN);
        let mut steps = ReaderSteps { reader: &self, target };
        self.nats.follow_for_ever(&self.stream, start, &mut steps).await
    }
}

/// What the reader does at each step of following.
struct ReaderSteps<'a, T> {
    reader: &'a Reader,
    target: &'a T,
}

impl<T: ChangeTarget> Handler for ReaderSteps<'_, T> {
    async fn prepare(&mut self) -> Result<(), String> {
        // The stream carries changes from a recent time on: what came before is loaded from
        // the database first, by the instance's database reader.
        self.reader.feed.loaded().await;
        Ok(())
    }

    fn following(&mut self, _last: Option<u64>, resumed: bool) {
        if resumed || !self.reader.status.is_following() {
            tracing::info!(stream = %self.reader.stream, "following the change stream");
        }
        self.reader.status.set_following(true);
    }

    async fn delivered(&mut self, delivered: &Delivered) {
        let Some(event) = &delivered.event else { return };
        // Applied once: unless its position is past the feed's.
        if self.reader.feed.apply_streamed(event).await {
            match &event.change {
                FeedChange::UserChanged { sub } => self.target.user_changed(sub).await,
                FeedChange::KeysChanged | FeedChange::Key { .. } => self.target.keys_changed(),
                _ => {}
            }
        }
        // Against the NATS server's wall clock: the system's, whatever clock the instance runs on.
        let now_ms = jwt_core::SystemClock.now().timestamp_millis();
        let lag = u64::try_from(now_ms - delivered.stored_at_ms).unwrap_or(0);
        self.target.observe_lag(Duration::from_millis(lag));
    }

    fn failed(&mut self, reason: String) {
        self.reader.status.set_following(false);
        tracing::warn!(%reason, stream = %self.reader.stream,
            "not following the change stream; reading the database every second");
    }
}
