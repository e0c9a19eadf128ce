//! The change feed PostgreSQL pushes: every write that adds to the revocation feed, changes a
//! user or changes the signing keys also `NOTIFY`s one channel inside its transaction (so the notification goes out on
//! commit, and never for a rollback), and each instance keeps one dedicated connection that
//! `LISTEN`s on it, reconnecting by itself with backoff. SQLite has none: one process writes.
//!
//! A notification only says that something changed; the feed itself stays the source of truth,
//! read by polling. After any gap (listening started again, a receiver fell behind) a
//! [`Change::Resync`] tells the follower to catch up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio_postgres::AsyncMessage;

/// The channel every change is notified on.
pub(crate) const CHANNEL: &str = "jwt_auth_changes";

/// The first wait before connecting again after the listening connection failed; it doubles
/// up to [`MAX_BACKOFF`] and starts over once listening works again.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How many notifications a receiver may fall behind before it is told to resync instead.
const CAPACITY: usize = 1024;

/// What a notification said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The revocation feed advanced. `sent_at` is when the writing transaction sent the
    /// notification, on the database's clock (for a lag measurement, not for logic).
    Revocations {
        /// The database's time at the `NOTIFY`.
        sent_at: Option<DateTime<Utc>>,
    },
    /// A user's record changed (roles, disabled flag): cached copies are stale.
    User {
        /// The user's id.
        id: String,
        /// The database's time at the `NOTIFY`.
        sent_at: Option<DateTime<Utc>>,
    },
    /// The signing keys changed (a rotation, a revocation, the first keys stored): reload
    /// them.
    Keys {
        /// The database's time at the `NOTIFY`.
        sent_at: Option<DateTime<Utc>>,
    },
    /// Notifications may have been missed (listening started or started again, or this
    /// receiver fell behind): read the feed, and drop whatever was cached from it.
    Resync,
}

impl Change {
    /// Parses a payload `KIND:MILLIS[:USER_ID]` (see `queries::notify_change`). Anything
    /// else asks for a resync: a newer writer's payload is never ignored.
    fn parse(payload: &str) -> Change {
        let mut parts = payload.splitn(3, ':');
        let (kind, millis, rest) = (parts.next(), parts.next(), parts.next());
        let sent_at = millis.and_then(|m| m.parse().ok()).and_then(DateTime::from_timestamp_millis);
        match (kind, rest) {
            (Some("r"), None) => Change::Revocations { sent_at },
            (Some("k"), None) => Change::Keys { sent_at },
            (Some("u"), Some(id)) if !id.is_empty() => Change::User { id: id.to_owned(), sent_at },
            _ => Change::Resync,
        }
    }
}

/// The changes this instance hears of, from [`Store::changes`](crate::store::Store::changes).
/// Receivers are independent: each one sees every change from its creation on.
#[derive(Debug)]
pub struct Changes {
    receiver: broadcast::Receiver<Change>,
    _listener: Arc<Listener>,
}

impl Changes {
    /// The next change, waiting for one; `None` once the listener is gone (the store was
    /// dropped).
    pub async fn next(&mut self) -> Option<Change> {
        match self.receiver.recv().await {
            Ok(change) => Some(change),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Change::Resync),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next change if one is waiting: to handle a burst with one read of the feed.
    pub fn try_next(&mut self) -> Option<Change> {
        match self.receiver.try_recv() {
            Ok(change) => Some(change),
            Err(broadcast::error::TryRecvError::Lagged(_)) => Some(Change::Resync),
            Err(_) => None,
        }
    }
}

/// The listening task and the sender receivers subscribe to; the task stops when the last
/// holder goes.
#[derive(Debug)]
pub(crate) struct Listener {
    sender: broadcast::Sender<Change>,
    task: AbortHandle,
    /// Whether `LISTEN` is in place on a live connection now.
    listening: Arc<AtomicBool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Starts listening on `url` in the background of the current runtime.
    pub fn start(url: &str, connect_timeout: Duration) -> Option<Arc<Listener>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let config = match url.parse::<tokio_postgres::Config>() {
            Ok(config) => config,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for changes: bad database URL");
                return None;
            }
        };
        let (sender, _) = broadcast::channel(CAPACITY);
        let listening = Arc::new(AtomicBool::new(false));
        let task = runtime
            .spawn(listen(config, connect_timeout, sender.clone(), Arc::clone(&listening)))
            .abort_handle();
        Some(Arc::new(Listener { sender, task, listening }))
    }

    /// Whether notifications arrive now: `LISTEN` is in place on a live connection.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    pub fn subscribe(self: &Arc<Self>) -> Changes {
        Changes { receiver: self.sender.subscribe(), _listener: Arc::clone(self) }
    }
}

/// Listens for ever: connects, `LISTEN`s, passes notifications on until the connection
/// fails, then waits (with backoff) and starts again. Each time listening starts, a
/// [`Change::Resync`] covers what was missed.
async fn listen(
    mut config: tokio_postgres::Config,
    connect_timeout: Duration,
    sender: broadcast::Sender<Change>,
    listening: Arc<AtomicBool>,
) {
    // A peer that vanished without closing the connection is noticed within about a minute.
    config.connect_timeout(connect_timeout).keepalives_idle(Duration::from_secs(30));
    let mut backoff = MIN_BACKOFF;
    let mut failing = false;
    loop {
        let ended = listen_once(&config, connect_timeout, &sender, || {
            listening.store(true, Ordering::Release);
            backoff = MIN_BACKOFF;
            if std::mem::take(&mut failing) {
                tracing::info!("listening for changes again");
            }
        })
        .await;
        listening.store(false, Ordering::Release);
        if !failing {
            failing = true;
            tracing::warn!(
                error = %ended,
                "the change listener lost its connection; reconnecting (polling covers the gap)"
            );
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: returns why it ended. `listening` is called once `LISTEN` is in place.
async fn listen_once(
    config: &tokio_postgres::Config,
    connect_timeout: Duration,
    sender: &broadcast::Sender<Change>,
    mut listening: impl FnMut(),
) -> String {
    let connected = tokio::time::timeout(connect_timeout, config.connect(tokio_postgres::NoTls));
    let (client, mut connection) = match connected.await {
        Ok(Ok(connected)) => connected,
        Ok(Err(e)) => return e.to_string(),
        Err(_) => return format!("could not connect within {connect_timeout:?}"),
    };
    let statement = format!("LISTEN {CHANNEL}");
    let subscribe = client.batch_execute(&statement);
    tokio::pin!(subscribe);
    let mut subscribed = false;
    loop {
        // The connection must be polled for `LISTEN` to be sent and answered, so both are
        // driven here together.
        tokio::select! {
            result = &mut subscribe, if !subscribed => match result {
                Ok(()) => {
                    subscribed = true;
                    listening();
                    let _ = sender.send(Change::Resync);
                }
                Err(e) => return e.to_string(),
            },
            message = std::future::poll_fn(|cx| connection.poll_message(cx)) => match message {
                Some(Ok(AsyncMessage::Notification(note))) if note.channel() == CHANNEL => {
                    // No receiver yet is fine: nothing to tell.
                    let _ = sender.send(Change::parse(note.payload()));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return e.to_string(),
                None => return "the connection was closed".to_owned(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_123);
        assert_eq!(Change::parse("r:1700000000123"), Change::Revocations { sent_at: at });
        assert_eq!(
            Change::parse("u:1700000000123:a:b"),
            Change::User { id: "a:b".into(), sent_at: at }
        );
        assert_eq!(Change::parse("r:x"), Change::Revocations { sent_at: None });
        assert_eq!(Change::parse("k:1700000000123"), Change::Keys { sent_at: at });
        for other in ["", "u:1", "u:1:", "k:1:x", "r:1:extra", "x:1"] {
            assert_eq!(Change::parse(other), Change::Resync, "{other}");
        }
    }
}
