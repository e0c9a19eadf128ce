//! The feed table as the outbox of the change stream: every revocation, user change and key
//! change is a row written in the transaction of the change, and one instance at a time (the
//! relay's leader, by [`Store::relay_leadership`](crate::Store::relay_leadership)) publishes
//! the rows in position order, recording how far it got.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jwt_core::Revocation;

use crate::error::StoreError;
use crate::store::{Backend, Store, on_backend};

impl Store {
    /// The outbox after position `after`, oldest first, at most `limit` rows: revocations,
    /// user changes and key changes, each once, in the order they committed.
    pub async fn outbox_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = i64::from(limit.max(1));
        let rows = on_backend!(self, read, |conn| queries::outbox_after(conn, after, limit))?;
        rows.into_iter()
            .map(|(position, row)| {
                let recorded_at = row.recorded_at.and_utc();
                Ok(OutboxEntry { position, recorded_at, change: row.into_outbox()? })
            })
            .collect()
    }

    /// How far the relay has published the outbox (0 before it ever has).
    pub async fn relay_published(&self) -> Result<i64, StoreError> {
        on_backend!(self, read, |conn| queries::relay_published(conn))
    }

    /// Records that the relay has published the outbox up to `position`; a lower position
    /// than the one recorded changes nothing.
    pub async fn set_relay_published(&self, position: i64) -> Result<(), StoreError> {
        on_backend!(self, write, |conn| queries::set_relay_published(conn, position))
    }

    /// Takes the relay's leadership if no other instance holds it; `None` if one does. See
    /// [`Leadership`].
    pub async fn relay_leadership(&self) -> Result<Option<Leadership>, StoreError> {
        match &self.backend {
            Backend::Postgres(db) => db.relay_leadership().await,
            Backend::Sqlite(_) => Ok(Some(Leadership::alone())),
        }
    }
}

/// One row of the outbox: its position (the feed's cursor), when it was recorded, and what
/// changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The row's position: ids only grow, and commit in order.
    pub position: i64,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// What changed.
    pub change: OutboxChange,
}

/// What an [`OutboxEntry`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxChange {
    /// A revocation, as the revocation feed serves it.
    Revocation(Revocation),
    /// A user's record changed (roles, the disabled flag, deletion).
    UserChanged(String),
    /// The signing keys changed (stored, rotated or revoked).
    KeysChanged,
}

/// The relay's leadership, while held: one instance at a time publishes the outbox.
///
/// On PostgreSQL it is a session advisory lock on a connection of its own, so it ends by
/// itself when that connection does (the instance died, or lost the database), and another
/// instance can take it. On SQLite, where one process writes, it is always held.
pub struct Leadership {
    held: Held,
}

enum Held {
    /// The connection that holds the lock, driven by its own task until it ends.
    Postgres {
        _client: tokio_postgres::Client,
        ended: tokio::task::JoinHandle<()>,
    },
    Alone,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership").field("held", &self.is_held()).finish()
    }
}

impl Leadership {
    pub(crate) fn alone() -> Self {
        Self { held: Held::Alone }
    }

    /// Takes the advisory lock `lock` on a new connection to `url`; `None` if another
    /// connection holds it. Errors are the connection's.
    pub(crate) async fn try_take(
        url: &str,
        lock: i64,
        connect_timeout: Duration,
    ) -> Result<Option<Self>, String> {
        let mut config = url.parse::<tokio_postgres::Config>().map_err(|e| e.to_string())?;
        // A peer that vanished without closing the connection is noticed within about a minute.
        config.connect_timeout(connect_timeout).keepalives_idle(Duration::from_secs(30));
        let connected =
            tokio::time::timeout(connect_timeout, config.connect(tokio_postgres::NoTls));
        let (client, connection) = match connected.await {
            Ok(Ok(connected)) => connected,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("could not connect within {connect_timeout:?}")),
        };
        let ended = tokio::spawn(async move {
            let _ = connection.await;
        });
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&lock])
            .await
            .map_err(|e| e.to_string())?;
        if row.get::<_, bool>(0) {
            Ok(Some(Self { held: Held::Postgres { _client: client, ended } }))
        } else {
            ended.abort();
            Ok(None)
        }
    }

    /// Whether the leadership is still held.
    pub fn is_held(&self) -> bool {
        match &self.held {
            Held::Postgres { ended, .. } => !ended.is_finished(),
            Held::Alone => true,
        }
    }

    /// Waits until the leadership is lost (never, on SQLite).
    pub async fn lost(&mut self) {
        match &mut self.held {
            Held::Postgres { ended, .. } => {
                let _ = ended.await;
            }
            Held::Alone => std::future::pending().await,
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // Closing the connection releases the lock.
        if let Held::Postgres { ended, .. } = &self.held {
            ended.abort();
        }
    }
}
