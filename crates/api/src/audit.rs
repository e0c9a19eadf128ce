//! The audit of security-relevant events: one call counts the event in the metrics, writes
//! its log line, and appends it to the stored audit trail. What each kind counts and how loud
//! it logs is decided here, once.

use jwt_auth_store::{EventKind, SecurityEvent};
use jwt_core::ClientInfo;

use crate::metrics::OutcomeLabels;
use crate::state::AppState;

/// One event to audit.
pub struct Audit<'a> {
    pub kind: EventKind,
    pub user_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub client: &'a ClientInfo,
    /// Free text for operators: who did it, what was replayed. Never a token or a secret.
    pub detail: Option<String>,
}

impl<'a> Audit<'a> {
    pub fn new(kind: EventKind, client: &'a ClientInfo) -> Self {
        Self { kind, user_id: None, session_id: None, client, detail: None }
    }

    pub fn user(mut self, user_id: &'a str) -> Self {
        self.user_id = Some(user_id);
        self
    }

    pub fn maybe_user(mut self, user_id: Option<&'a str>) -> Self {
        self.user_id = user_id;
        self
    }

    pub fn session(mut self, session_id: &'a str) -> Self {
        self.session_id = Some(session_id);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl AppState {
    /// Counts, logs and records `event`. A failure to record is logged, never turned into an
    /// error for the client, whose request has already had its effect.
    pub async fn audit(&self, event: Audit<'_>) {
        let Audit { kind, user_id, session_id, client, detail } = event;
        let metrics = &self.metrics;
        let (ip, user_agent) = (client.ip.as_deref(), client.user_agent.as_deref());
        let detail_text = detail.as_deref();
        match kind {
            EventKind::LoginSucceeded => {
                metrics.logins.get_or_create(&OutcomeLabels { outcome: "ok" }).inc();
                tracing::info!(user_id, session_id, ip, "login ok");
            }
            EventKind::LoginFailed => {
                metrics.logins.get_or_create(&OutcomeLabels { outcome: "failed" }).inc();
                tracing::warn!(user_id, ip, "login failed");
            }
            EventKind::Refresh => {
                metrics.refreshes.get_or_create(&OutcomeLabels { outcome: "ok" }).inc();
            }
            EventKind::RefreshReuseDetected => {
                metrics.refreshes.get_or_create(&OutcomeLabels { outcome: "reused" }).inc();
                metrics.reuse_detections.inc();
                metrics.revocations.inc();
                tracing::warn!(
                    user_id,
                    session_id,
                    replayer_ip = ip,
                    replayer_user_agent = user_agent,
                    detail = detail_text,
                    "refresh token reuse detected; session revoked"
                );
            }
            EventKind::Logout | EventKind::LogoutAll | EventKind::TokenRevoked => {
                metrics.revocations.inc();
                tracing::info!(user_id, session_id, ip, event = %kind, "session revoked");
            }
            EventKind::AdminRevoke | EventKind::TokensVoided => {
                metrics.revocations.inc();
                tracing::warn!(user_id, detail = detail_text, event = %kind, "sessions revoked");
            }
            EventKind::UserCreated => tracing::info!(user_id, ip, "user created"),
            EventKind::UserUpdated => {
                tracing::warn!(user_id, detail = detail_text, "user updated");
            }
            other => tracing::info!(user_id, session_id, event = %other, "security event"),
        }
        if matches!(
            kind,
            EventKind::RefreshReuseDetected
                | EventKind::Logout
                | EventKind::LogoutAll
                | EventKind::TokenRevoked
                | EventKind::AdminRevoke
                | EventKind::TokensVoided
        ) {
            // Written already: the feed's readers hear of it now, not at the next poll.
            self.feed_wake.notify_one();
        }
        if !kind.is_recorded() {
            // Rotations are counted, not stored: one row per refresh would dwarf the trail.
            return;
        }
        let record = SecurityEvent {
            kind,
            at: self.now(),
            user_id: user_id.map(str::to_owned),
            session_id: session_id.map(str::to_owned),
            client: client.clone(),
            detail,
        };
        if let Err(e) = self.store.record_event(&record).await {
            tracing::error!(error = %e, kind = %kind, "could not record security event");
        }
    }
}
