//! The jwt-auth change feed on NATS JetStream.
//!
//! The auth server's outbox (revocations, user changes, key changes, each with the feed's
//! cursor) is published to one stream, one message per change, in cursor order:
//! - the subject is `jwt-auth.feed.KIND` (`session`, `user`, `all`, `key`, `user_changed`,
//!   `keys_changed`), so a reader can take only what it needs;
//! - the payload is the event as `GET /auth/revocations` serves it ([`FeedEvent`] JSON);
//! - the `Nats-Msg-Id` header is the cursor, so the stream drops a republished change (after a
//!   crash, or a second leader) as a duplicate within its duplicate window.
//!
//! Readers follow the stream, or a mirror of it in their own region, from a stream sequence
//! or a time, and skip what they have applied by its cursor. [`Connection`] tracks whether
//! NATS is reachable, so that a reader can fall back to another source while it is not.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use jwt_core::{FeedChange, FeedEvent};
use tokio::sync::watch;

/// The stream the server publishes to, unless told otherwise.
pub const DEFAULT_STREAM: &str = "JWT_AUTH_FEED";
/// Every subject of the feed starts with this, then `.KIND`.
pub const SUBJECT_PREFIX: &str = "jwt-auth.feed";
/// How long the stream remembers a message id to drop a republish: longer than a leader
/// takes to be replaced and catch up.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// What went wrong talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not one NATS accepts.
    #[error("bad NATS URL: {0}")]
    Url(String),
    /// A JetStream request failed (NATS unreachable, the stream missing, a timeout).
    #[error("NATS JetStream: {0}")]
    JetStream(String),
}

fn jetstream_error(e: impl std::fmt::Display) -> Error {
    Error::JetStream(e.to_string())
}

/// The subject an event is published on: `jwt-auth.feed.KIND`.
///
/// ```
/// use jwt_core::{FeedChange, FeedEvent};
/// let event = FeedEvent { cursor: "7".into(), change: FeedChange::Session { sid: "s".into() }, expires_at: 1 };
/// assert_eq!(jwt_auth_nats::subject(&event), "jwt-auth.feed.session");
/// ```
pub fn subject(event: &FeedEvent) -> String {
    let kind = match &event.change {
        FeedChange::Session { .. } => "session",
        FeedChange::User { .. } => "user",
        FeedChange::All { .. } => "all",
        FeedChange::Key { .. } => "key",
        FeedChange::UserChanged { .. } => "user_changed",
        FeedChange::KeysChanged => "keys_changed",
        FeedChange::Unknown => "unknown",
    };
    format!("{SUBJECT_PREFIX}.{kind}")
}

/// The settings of the stream the server creates when it is missing (an operator may create
/// it beforehand, with more replicas for example; an existing stream is used as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// The stream's name.
    pub name: String,
    /// How long a message is kept: at least the longest lifetime of a token, so that a reader
    /// starting from the stream's first message holds every revocation that still matters.
    pub max_age: Duration,
    /// How many servers hold a copy (1 on a single server; 3 in a cluster).
    pub replicas: usize,
}

impl StreamSettings {
    /// The JetStream configuration: the feed's subjects, kept on disk for `max_age`, with
    /// duplicates dropped by message id within [`DUPLICATE_WINDOW`].
    pub fn config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            subjects: vec![format!("{SUBJECT_PREFIX}.>")],
            max_age: self.max_age,
            duplicate_window: DUPLICATE_WINDOW.min(self.max_age),
            storage: stream::StorageType::File,
            num_replicas: self.replicas.max(1),
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            ..Default::default()
        }
    }
}

/// A client connection to NATS that reconnects by itself, and says whether it is connected
/// now. It is made at once, even while NATS is unreachable.
#[derive(Clone)]
pub struct Connection {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    connected: watch::Receiver<bool>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("connected", &self.is_connected()).finish()
    }
}

/// How often the client pings the server: a server that vanished without closing the
/// connection (a partition) is noticed within about three of these.
pub const PING_EVERY: Duration = Duration::from_secs(1);

impl Connection {
    /// Connects to `url` (one or more servers, comma-separated) as `name`, in the background:
    /// the connection is returned at once and reconnects for ever, after 100 ms, then up to a
    /// second between attempts.
    pub async fn connect(url: &str, name: &str) -> Result<Self, Error> {
        let (state, connected) = watch::channel(false);
        let options = async_nats::ConnectOptions::new()
            .name(name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .ping_interval(PING_EVERY)
            .connection_timeout(Duration::from_secs(2))
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).clamp(100, 1000))
            })
            .event_callback(move |event| {
                let state = state.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            state.send_replace(true);
                        }
                        async_nats::Event::Disconnected | async_nats::Event::Closed => {
                            state.send_replace(false);
                        }
                        _ => {}
                    }
                }
            });
        let client = options.connect(url).await.map_err(|e| Error::Url(e.to_string()))?;
        let jetstream = jetstream::new(client.clone());
        Ok(Self { client, jetstream, connected })
    }

    /// Whether the connection is up now.
    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Waits until the connection is up, at most `within`: whether it is.
    pub async fn connected_within(&self, within: Duration) -> bool {
        let mut connected = self.watch();
        matches!(tokio::time::timeout(within, connected.wait_for(|up| *up)).await, Ok(Ok(_)))
    }

    /// Changes of [`is_connected`](Connection::is_connected), to wait on.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    /// The underlying client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The name of the stream that stores the feed's subjects, created with `settings` if
    /// there is none; an existing one (made by an operator, with any name) is kept as it is.
    pub async fn ensure_stream(&self, settings: &StreamSettings) -> Result<String, Error> {
        if let Ok(name) =
            self.jetstream.stream_by_subject(format!("{SUBJECT_PREFIX}.session")).await
        {
            return Ok(name);
        }
        let stream = self
            .jetstream
            .get_or_create_stream(settings.config())
            .await
            .map_err(jetstream_error)?;
        Ok(stream.cached_info().config.name.clone())
    }

    /// Publishes `event` with its cursor as the message id, and waits for the stream to
    /// store it: where it is, and whether the stream had it already (a duplicate, dropped;
    /// its sequence is then the first copy's).
    pub async fn publish(&self, event: &FeedEvent) -> Result<Stored, Error> {
        let ack = self.send(event, None).await?.await.map_err(jetstream_error)?;
        Ok(Stored { sequence: ack.sequence, duplicate: ack.duplicate })
    }

    /// Publishes `events` one after the other without waiting between them, then waits for
    /// the stream to store them all, in order; returns the sequence of the last one. Each
    /// names the sequence the stream's last message must have (`Nats-Expected-Last-Sequence`:
    /// `after` for the first, then one more for each), so the stream refuses a message whose
    /// predecessor it did not store: the stream never holds them out of order, whatever fails.
    /// Use it once the stream's last message is known to be at `after`; an error leaves an
    /// unknown prefix stored.
    ///
    /// A sequence, not the previous message id (`Nats-Expected-Last-Msg-Id`), because a mirror
    /// checks these headers again as it copies the messages: a mirror keeps the origin's
    /// sequences, so the check holds there too, whereas a mirror's last message id is forgotten
    /// when its server restarts, and the mirror would then stop for good.
    pub async fn publish_after(&self, after: u64, events: &[FeedEvent]) -> Result<u64, Error> {
        let mut acks = Vec::with_capacity(events.len());
        let mut last = after;
        for event in events {
            acks.push(self.send(event, Some(last)).await?);
            last += 1;
        }
        for ack in acks {
            ack.await.map_err(jetstream_error)?;
        }
        Ok(last)
    }

    /// Sends `event` on its subject, its cursor as the message id, and, with `after`, the
    /// sequence the stream's last message must have; returns the acknowledgement to wait for.
    async fn send(
        &self,
        event: &FeedEvent,
        after: Option<u64>,
    ) -> Result<jetstream::context::PublishAckFuture, Error> {
        let payload = serde_json::to_vec(event).map_err(jetstream_error)?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event.cursor.as_str());
        if let Some(after) = after {
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SEQUENCE,
                after.to_string().as_str(),
            );
        }
        self.jetstream
            .publish_with_headers(subject(event), headers, payload.into())
            .await
            .map_err(jetstream_error)
    }

    /// The sequence of the newest message of stream `stream` (0 while it is empty): a reader
    /// that has handled it has caught up with the stream as it was.
    pub async fn last_sequence(&self, stream: &str) -> Result<u64, Error> {
        let stream = self.jetstream.get_stream(stream).await.map_err(jetstream_error)?;
        Ok(stream.cached_info().state.last_sequence)
    }

    /// Follows stream `stream` from `start`, in order. The reader keeps the sequence of the
    /// last message it handled, to start after it next time.
    pub async fn follow(&self, stream: &str, start: Start) -> Result<Following, Error> {
        let deliver_policy = match start {
            Start::First => consumer::DeliverPolicy::All,
            Start::AfterSequence(sequence) => {
                consumer::DeliverPolicy::ByStartSequence { start_sequence: sequence + 1 }
            }
            Start::Since(at) => consumer::DeliverPolicy::ByStartTime {
                start_time: time::OffsetDateTime::from_unix_timestamp_nanos(
                    at.timestamp_nanos_opt().unwrap_or(0).into(),
                )
                .map_err(jetstream_error)?,
            },
        };
        let stream = self.jetstream.get_stream(stream).await.map_err(jetstream_error)?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy,
                filter_subject: format!("{SUBJECT_PREFIX}.>"),
                ..Default::default()
            })
            .await
            .map_err(jetstream_error)?;
        let messages = consumer.messages().await.map_err(jetstream_error)?;
        Ok(Following { messages })
    }
}

/// Where the stream stored a published message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Its sequence in the stream.
    pub sequence: u64,
    /// Whether the stream had it already, and dropped this copy.
    pub duplicate: bool,
}

/// How long [`Connection::follow_for_ever`] waits before it tries again to follow, after a
/// failure while NATS is connected.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a reader does at each step of [`Connection::follow_for_ever`].
pub trait Handler: Send {
    /// Before following, and again after every interruption, once NATS is connected: an
    /// error is a failure to follow, tried again after [`RETRY_AFTER`].
    fn prepare(&mut self) -> impl Future<Output = Result<(), String>> + Send;
    /// Following has begun, after the message with sequence `last` (`None`: from the start);
    /// `resumed` after a failure.
    fn following(&mut self, last: Option<u64>, resumed: bool);
    /// The next message, in order.
    fn delivered(&mut self, delivered: &Delivered) -> impl Future<Output = ()> + Send;
    /// Following failed or stopped, and is tried again when it can be: said once for each
    /// interruption, however many attempts fail.
    fn failed(&mut self, reason: String);
}

impl Connection {
    /// Follows stream `stream` for as long as the connection lives, from `first`, then after
    /// each interruption (NATS unreachable, a failed consumer) from the message after the last
    /// one handled, so that `handler` sees every message once and in order, whatever happens
    /// in between.
    pub async fn follow_for_ever(&self, stream: &str, first: Start, handler: &mut impl Handler) {
        let mut connected = self.watch();
        let mut last: Option<u64> = None;
        let mut failing = false;
        loop {
            if connected.wait_for(|up| *up).await.is_err() {
                return;
            }
            let started = match handler.prepare().await {
                Ok(()) => {
                    let start = last.map_or(first, Start::AfterSequence);
                    self.follow(stream, start).await.map_err(|e| e.to_string())
                }
                Err(e) => Err(e),
            };
            let mut following = match started {
                Ok(following) => following,
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        handler.failed(e);
                    }
                    tokio::time::sleep(RETRY_AFTER).await;
                    continue;
                }
            };
            handler.following(last, std::mem::take(&mut failing));
            let ended = loop {
                let delivered = tokio::select! {
                    delivered = following.next() => delivered,
                    _ = connected.wait_for(|up| !*up) => break "NATS became unreachable".to_owned(),
                };
                match delivered {
                    Some(Ok(delivered)) => {
                        handler.delivered(&delivered).await;
                        last = Some(delivered.sequence);
                    }
                    Some(Err(e)) => break e.to_string(),
                    None => break "the consumer ended".to_owned(),
                }
            };
            failing = true;
            handler.failed(ended);
        }
    }
}

/// Where [`Connection::follow`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// From the stream's first message: every change it still holds.
    First,
    /// After the message with this stream sequence.
    AfterSequence(u64),
    /// From the first message the stream stored at or after this time.
    Since(DateTime<Utc>),
}

/// The messages of a stream, in order.
pub struct Following {
    messages: consumer::pull::Ordered,
}

impl std::fmt::Debug for Following {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Following").finish_non_exhaustive()
    }
}

/// One message of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Its sequence in the stream followed.
    pub sequence: u64,
    /// The event; `None` if the payload is not one (skipped by the reader, never fatal).
    pub event: Option<FeedEvent>,
    /// When the stream followed stored it (a mirror's time for a mirror), on that server's
    /// clock, in milliseconds since the epoch.
    pub stored_at_ms: i64,
    /// How many messages the stream held after this one when it was delivered: 0 once the
    /// reader has caught up.
    pub pending: u64,
}

impl Following {
    /// The next message, waiting for one; `None` if the consumer ended, an error if it failed
    /// (follow again, after the last sequence handled).
    pub async fn next(&mut self) -> Option<Result<Delivered, Error>> {
        let message = match self.messages.next().await? {
            Ok(message) => message,
            Err(e) => return Some(Err(jetstream_error(e))),
        };
        let info = match message.info() {
            Ok(info) => info,
            Err(e) => return Some(Err(jetstream_error(e))),
        };
        let stored_at_ms = (info.published.unix_timestamp_nanos() / 1_000_000) as i64;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        let event = serde_json::from_slice::<FeedEvent>(&message.payload).ok();
        Some(Ok(Delivered { sequence, event, stored_at_ms, pending }))
    }
}
