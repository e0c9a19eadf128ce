//! The relay's leadership: one instance at a time publishes the outbox (see
//! [`Store::relay_leadership`](crate::Store::relay_leadership)).

use std::time::Duration;

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
