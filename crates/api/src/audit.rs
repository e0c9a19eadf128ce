//! The server's audit: the state's events go to the service's trail (metrics, log, the
//! revocation feed's readers, the stored trail), at the time of the state's clock.

pub use jwt_auth_service::audit::Audit;
use jwt_auth_service::audit::AuditTrail;

use crate::state::AppState;

impl AppState {
    /// Where this instance's events go.
    pub fn audit_trail(&self) -> AuditTrail<'_> {
        AuditTrail { store: &self.store, metrics: &self.metrics, feed_wake: &self.feed_wake }
    }

    /// Counts, logs and records `event` (see [`AuditTrail::audit`]).
    pub async fn audit(&self, event: Audit<'_>) {
        self.audit_trail().audit(event, self.now()).await;
    }
}
