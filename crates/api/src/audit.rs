//! The state as the services see this instance ([`Instance`]: its sessions, user cache,
//! hashing threads, metrics and the feed's wake-up), and its audit: the state's events go to
//! the service's trail, at the time of the state's clock.

pub use jwt_auth_service::audit::Audit;
use jwt_auth_service::grants::Grants;
use jwt_auth_service::instance::Instance;

use crate::extract::ClientContext;
use crate::state::AppState;

impl AppState {
    /// The password and refresh grants, for `client`.
    pub fn grants<'a>(&'a self, client: &'a ClientContext) -> Grants<'a> {
        Grants::new(self.instance(), &self.throttle, client.ip, &client.info)
    }

    /// This instance's parts, for a service to reach at once.
    pub fn instance(&self) -> Instance<'_> {
        Instance {
            store: &self.store,
            sessions: &self.sessions,
            users: &self.users,
            clients: &self.clients,
            passwords: &self.passwords,
            metrics: &self.metrics,
            feed_wake: self.feed.waker(),
        }
    }

    /// Counts, logs and records `event` (see
    /// [`AuditTrail::audit`](jwt_auth_service::audit::AuditTrail::audit)).
    pub async fn audit(&self, event: Audit<'_>) {
        self.instance().trail().audit(event, self.now()).await;
    }
}
