//! The audit of security-relevant events: on a server, one call counts the event in the
//! metrics, writes its log line, wakes the revocation feed's readers and appends the event to
//! the stored trail; what each kind counts and how loud it logs is decided here, once. A
//! command, which has neither metrics nor a feed to wake, records what it did with [`record`].
//! The trail is read back, newest first, with [`events`].

use chrono::{DateTime, Utc};
use jwt_auth_store::{EventKind, EventQuery, RecordedEvent, SecurityEvent, Store, StoreError};
use jwt_core::ClientInfo;
use tokio::sync::Notify;

use crate::error::ServiceError;
use crate::metrics::{Metrics, OutcomeLabels};
use crate::page::Page;

/// One event to audit.
pub struct Audit<'a> {
    /// What happened.
    pub kind: EventKind,
    /// The user it happened to, if any.
    pub user_id: Option<&'a str>,
    /// The session it happened in, if any.
    pub session_id: Option<&'a str>,
    /// Where the request came from.
    pub client: &'a ClientInfo,
    /// Free text for operators: who did it, what was replayed. Never a token or a secret.
    pub detail: Option<String>,
}

impl<'a> Audit<'a> {
    /// An event of `kind`, from `client`, of no user or session yet.
    pub fn new(kind: EventKind, client: &'a ClientInfo) -> Self {
        Self { kind, user_id: None, session_id: None, client, detail: None }
    }

    /// It happened to `user_id`.
    pub fn user(mut self, user_id: &'a str) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// It happened to `user_id`, if the user is known.
    pub fn maybe_user(mut self, user_id: Option<&'a str>) -> Self {
        self.user_id = user_id;
        self
    }

    /// It happened in `session_id`.
    pub fn session(mut self, session_id: &'a str) -> Self {
        self.session_id = Some(session_id);
        self
    }

    /// What operators read of it.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Where a server's events go: its metrics and log, the readers of the revocation feed, and
/// the stored trail.
pub struct AuditTrail<'a> {
    /// The database of the trail.
    pub store: &'a Store,
    /// The instance's metrics.
    pub metrics: &'a Metrics,
    /// Woken by the revocations audited, so that the feed is read at once.
    pub feed_wake: &'a Notify,
}

impl AuditTrail<'_> {
    /// Counts, logs and records `event`, which happened `at`. A failure to record is logged,
    /// never turned into an error for the client, whose request has already had its effect.
    pub async fn audit(&self, event: Audit<'_>, at: DateTime<Utc>) {
        let Audit { kind, user_id, session_id, client, detail } = event;
        let metrics = self.metrics;
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
            at,
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

/// Records in the trail what a command did `at`, to `user_id` (in `session_id`) if to one
/// user: it came from no client, and a failure to record fails the command.
pub async fn record(
    store: &Store,
    kind: EventKind,
    user_id: Option<&str>,
    session_id: Option<&str>,
    detail: String,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let event = SecurityEvent {
        kind,
        at,
        user_id: user_id.map(str::to_owned),
        session_id: session_id.map(str::to_owned),
        client: ClientInfo::default(),
        detail: Some(detail),
    };
    store.record_event(&event).await
}

/// The kind of event called `name`, if the trail records such events:
/// [`ServiceError::UnknownEventKind`] for no kind, [`ServiceError::UnrecordedEventKind`] for
/// one that is only counted (refreshes).
pub fn recorded_kind(name: &str) -> Result<EventKind, ServiceError> {
    let kind: EventKind =
        name.parse().map_err(|_| ServiceError::UnknownEventKind(name.to_owned()))?;
    match kind.is_recorded() {
        true => Ok(kind),
        false => Err(ServiceError::UnrecordedEventKind(kind)),
    }
}

/// The first `page` of the trail's events, newest first: of user `user`, of `kind`, when
/// given.
pub async fn events(
    store: &Store,
    user: Option<String>,
    kind: Option<EventKind>,
    page: Page,
) -> Result<Vec<RecordedEvent>, ServiceError> {
    let query = EventQuery { user_id: user, kind, limit: page.limit() };
    Ok(store.events(&query).await?)
}
