//! The revocation feed from the change stream on NATS JetStream (feature `nats`): the service
//! follows the stream (or its region's mirror) directly, so that it puts no load on the auth
//! server. The stream keeps every change for the longest token lifetime, so a verifier reads
//! it from its first message at start-up, and is ready once it has read up to the newest
//! message the stream held then. After an interruption it goes on from the message after the
//! last one it handled; a change is applied once, by its cursor, whatever is redelivered.

use std::sync::Arc;

use jwt_auth_nats::{Connection, Delivered, Handler, Start};
use jwt_core::{FeedChange, FeedFollower, feed_position};

use crate::shared::Shared;
use crate::status::FeedState;

/// Where to follow the change stream.
///
/// ```
/// use jwt_auth_verifier::NatsFeedConfig;
///
/// let feed = NatsFeedConfig::new("nats://nats.region-b.internal:4222").stream("JWT_AUTH_FEED_B");
/// assert_eq!(feed.stream_name(), "JWT_AUTH_FEED_B");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsFeedConfig {
    pub(crate) url: String,
    pub(crate) stream: String,
}

impl NatsFeedConfig {
    /// Follows the stream `JWT_AUTH_FEED` on the NATS server(s) at `url` (comma-separated).
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), stream: jwt_auth_nats::DEFAULT_STREAM.to_owned() }
    }

    /// Follows stream `name` instead: a mirror in the service's own region, for example.
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = name.into();
        self
    }

    /// The stream followed.
    pub fn stream_name(&self) -> &str {
        &self.stream
    }
}

pub(crate) async fn run(shared: Arc<Shared>, config: NatsFeedConfig) {
    let nats = match Connection::connect(&config.url, "jwt-auth-verifier").await {
        Ok(nats) => nats,
        Err(e) => {
            shared.feed_failed(format!("change stream: {e}"));
            return;
        }
    };
    let feed = FeedFollower::new(shared.revocations.clone(), shared.tokens.clock().clone());
    let mut steps = Steps { nats: nats.clone(), stream: config.stream, shared, feed, target: 0 };
    nats.follow_for_ever(&steps.stream.clone(), Start::First, &mut steps).await
}

/// What the verifier does at each step of following.
struct Steps {
    nats: Connection,
    stream: String,
    shared: Arc<Shared>,
    feed: FeedFollower,
    /// The newest message the stream held when following (again) began: caught up once it is
    /// handled.
    target: u64,
}

impl Handler for Steps {
    async fn prepare(&mut self) -> Result<(), String> {
        self.target = self.nats.last_sequence(&self.stream).await.map_err(|e| e.to_string())?;
        Ok(())
    }

    fn following(&mut self, last: Option<u64>, resumed: bool) {
        if last.unwrap_or(0) >= self.target {
            self.shared.feed_synced();
        }
        if resumed {
            tracing::info!(stream = %self.stream, "following the change stream again");
        }
        self.shared.feed_state(FeedState::Streaming);
    }

    async fn delivered(&mut self, delivered: &Delivered) {
        if let Some(event) = &delivered.event {
            let applied = self.feed.cursor().as_deref().and_then(feed_position).unwrap_or(0);
            if feed_position(&event.cursor).is_some_and(|position| position > applied) {
                // A key published or revoked: the key task fetches the JWK set again (it
                // spaces its fetches).
                if event.change == FeedChange::KeysChanged && self.shared.fetches_keys {
                    self.shared.unknown_kid.notify_one();
                }
                // A revocation voids tokens; any event moves the cursor.
                self.feed.apply(std::slice::from_ref(event));
                self.shared.feed_seen(Some(&event.cursor));
            }
        }
        if delivered.sequence >= self.target || delivered.pending == 0 {
            self.shared.feed_synced();
        }
    }

    fn failed(&mut self, reason: String) {
        self.shared.feed_failed(format!("change stream `{}`: {reason}", self.stream));
    }
}
