//! The clients an instance authenticates, kept in memory (see [`ClientCache`]): the sign-in
//! of an app and its code exchange then read no client from the database, and a removal made
//! anywhere reaches the cache through the revocation set.

use std::sync::Arc;
use std::time::Duration;

use jwt_auth_store::{ServiceClient, Store};
use jwt_core::RevocationSet;

use crate::error::ServiceError;

/// How long a client stays in a [`ClientCache`] before it is read again: well inside the
/// time its removal stays in the revocation set (the lifetime of its access tokens).
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(5);
/// The most clients a [`ClientCache`] keeps.
pub const CLIENT_CACHE_CAPACITY: u64 = 10_000;

/// The clients an instance authenticates, kept in memory so that the sign-in of an app and
/// its code exchange read no client from the database. A client changes only by its
/// removal, which revokes its own session (`sid`) through the revocation feed: a cached
/// client whose session the revocation set knows revoked is read again (and found gone), so a
/// removal made on another instance holds here within the feed's bound, as a token
/// revocation does. Unknown ids are not remembered.
pub struct ClientCache {
    clients: moka::future::Cache<String, Arc<ServiceClient>>,
}

impl Default for ClientCache {
    fn default() -> Self {
        let clients = moka::future::Cache::builder()
            .max_capacity(CLIENT_CACHE_CAPACITY)
            .time_to_live(CLIENT_CACHE_TTL)
            .build();
        Self { clients }
    }
}

impl ClientCache {
    /// The client `id`, from memory unless the revocation set says it was removed, else from
    /// the store.
    pub async fn get(
        &self,
        store: &Store,
        revocations: &RevocationSet,
        id: &str,
    ) -> Result<Option<ServiceClient>, ServiceError> {
        if let Some(client) = self.clients.get(id).await {
            if !revocations.is_session_revoked(&client.session_id) {
                return Ok(Some(ServiceClient::clone(&client)));
            }
            self.clients.invalidate(id).await;
        }
        let found = store.client(id).await?;
        if let Some(client) = &found
            && !revocations.is_session_revoked(&client.session_id)
        {
            self.clients.insert(id.to_owned(), Arc::new(client.clone())).await;
        }
        Ok(found)
    }
}
