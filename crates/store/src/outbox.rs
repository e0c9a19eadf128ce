//! The feed table as the outbox of the change stream: every revocation, user change and key
//! change is a row written in the transaction of the change, and one instance at a time (the
//! relay's leader, by [`Store::relay_leadership`](crate::Store::relay_leadership)) publishes
//! the rows in position order, recording how far it got.

use crate::error::StoreError;
use crate::leadership::Leadership;
use crate::model::OutboxEntry;
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
