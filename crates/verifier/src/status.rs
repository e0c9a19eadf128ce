//! What the verifier reports of itself, for a readiness or health check.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A snapshot of the verifier's state ([`Verifier::status`](crate::Verifier::status)).
///
/// `ready` is what a readiness check wants: once true it stays true, because the verifier
/// keeps verifying with what it has while the issuer is unreachable. [`Status::is_healthy`]
/// says whether everything is current; alert on it, do not take instances out of service
/// for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The keys and (when followed) the first state of the revocation feed are loaded:
    /// [`Verifier::verify`](crate::Verifier::verify) verifies instead of failing closed.
    pub ready: bool,
    /// The verification keys.
    pub keys: KeysStatus,
    /// The revocation feed.
    pub feed: FeedStatus,
    /// The last failure of a fetch, a connection or a response, if any since the last
    /// success of the same kind; it never contains a token or a secret.
    pub last_error: Option<String>,
}

impl Status {
    /// Ready, keys fresh, and the feed (if followed) connected.
    pub fn is_healthy(&self) -> bool {
        self.ready
            && self.keys.stale_since.is_none()
            && matches!(
                self.feed.state,
                FeedState::Disabled | FeedState::Streaming | FeedState::Polling
            )
    }
}

/// The state of the verification keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeysStatus {
    /// How many keys verify.
    pub count: usize,
    /// When the JWK set was last fetched; `None` before the first fetch and for HS256.
    pub fetched_at: Option<DateTime<Utc>>,
    /// When the keys went stale (their freshness ran out and no refetch has succeeded
    /// since); `None` while fresh. Stale keys still verify.
    pub stale_since: Option<DateTime<Utc>>,
}

/// The state of the revocation feed follower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedStatus {
    /// Connected how, or not.
    pub state: FeedState,
    /// Since when the feed is in this state.
    pub since: Option<DateTime<Utc>>,
    /// The cursor of the last event applied.
    pub cursor: Option<String>,
    /// When the feed last answered (an event, a page, or a keep-alive).
    pub last_seen: Option<DateTime<Utc>>,
}

/// How the revocation feed is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedState {
    /// No feed is configured: revocations are not followed.
    Disabled,
    /// Not connected yet.
    Connecting,
    /// Connected by Server-Sent Events, or following the change stream on NATS JetStream.
    Streaming,
    /// Polling the JSON form, the last poll succeeded.
    Polling,
    /// The last attempt failed; retrying with backoff.
    Disconnected,
}
