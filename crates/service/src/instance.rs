//! What a running server holds beside the database, which a change made through it reaches at
//! once: the sessions and their revocation set, the user cache, the password-hashing threads,
//! the metrics and the wake-up of the revocation feed's readers. Other instances hear of the
//! change from the database.

use std::sync::Arc;

use jwt_auth_store::Store;
use jwt_core::Sessions;
use tokio::sync::Notify;

use crate::audit::AuditTrail;
use crate::client_cache::ClientCache;
use crate::metrics::Metrics;
use crate::passwords::Passwords;
use crate::user_cache::UserCache;

/// A running server's parts, borrowed for one call.
#[derive(Clone, Copy)]
pub struct Instance<'a> {
    /// The database.
    pub store: &'a Store,
    /// The sessions, with the revocation set this instance checks tokens against.
    pub sessions: &'a Sessions<Arc<Store>>,
    /// The user records this instance answers from.
    pub users: &'a UserCache,
    /// The clients this instance authenticates.
    pub clients: &'a ClientCache,
    /// The password-hashing threads.
    pub passwords: &'a Passwords,
    /// The metrics.
    pub metrics: &'a Metrics,
    /// Woken by this instance's own revocations, so that the feed is read at once.
    pub feed_wake: &'a Notify,
}

impl<'a> Instance<'a> {
    /// Where this instance's events go.
    pub fn trail(&self) -> AuditTrail<'a> {
        AuditTrail { store: self.store, metrics: self.metrics, feed_wake: self.feed_wake }
    }
}
