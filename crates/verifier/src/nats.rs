//! The revocation feed from the change stream on NATS JetStream (feature `nats`): the service
//! follows the stream (or its region's mirror) directly, so that it puts no load on the auth
//! server. The stream keeps every change for the longest token lifetime, so a verifier reads
//! it from its first message at start-up, and is ready once it has read up to the newest
//! message the stream held then. After an interruption it goes on from the message after the
//! last one it handled; a change is applied once, by its cursor, whatever is redelivered.

use std::sync::Arc;
use std::time::Duration;

use jwt_auth_nats::{Connection, Start};
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

/// How long to wait before following again after a failure while NATS is connected.
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub(crate) async fn run(shared: Arc<Shared>, config: NatsFeedConfig) {
    let nats = match Connection::connect(&config.url, "jwt-auth-verifier").await {
        Ok(nats) => nats,
        Err(e) => {
            shared.feed_failed(format!("change stream: {e}"));
            return;
        }
    };
    let feed = FeedFollower::new(shared.revocations.clone(), shared.tokens.clock().clone());
    let mut connected = nats.watch();
    let mut last_sequence: Option<u64> = None;
    let mut failing = false;
    loop {
        if connected.wait_for(|up| *up).await.is_err() {
            return;
        }
        // Caught up once the newest message the stream holds now is handled.
        let target = match nats.last_sequence(&config.stream).await {
            Ok(target) => target,
            Err(e) => {
                fail(&shared, &mut failing, format!("change stream `{}`: {e}", config.stream));
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        let start = last_sequence.map_or(Start::First, Start::AfterSequence);
        let mut following = match nats.follow(&config.stream, start).await {
            Ok(following) => following,
            Err(e) => {
                fail(&shared, &mut failing, format!("change stream `{}`: {e}", config.stream));
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        if last_sequence.unwrap_or(0) >= target {
            shared.feed_synced();
        }
        if std::mem::take(&mut failing) {
            tracing::info!(stream = %config.stream, "following the change stream again");
        }
        shared.feed_state(FeedState::Streaming);
        let ended = loop {
            let delivered = tokio::select! {
                delivered = following.next() => delivered,
                _ = connected.wait_for(|up| !*up) => break "NATS became unreachable".to_owned(),
            };
            let delivered = match delivered {
                Some(Ok(delivered)) => delivered,
                Some(Err(e)) => break e.to_string(),
                None => break "the consumer ended".to_owned(),
            };
            if let Some(event) = &delivered.event {
                let applied = feed.cursor().as_deref().and_then(feed_position).unwrap_or(0);
                if feed_position(&event.cursor).is_some_and(|position| position > applied) {
                    // A key published or revoked: the key task fetches the JWK set again
                    // (it spaces its fetches).
                    if event.change == FeedChange::KeysChanged && shared.fetches_keys {
                        shared.unknown_kid.notify_one();
                    }
                    // A revocation voids tokens; any event moves the cursor.
                    feed.apply(std::slice::from_ref(event));
                    shared.feed_seen(Some(&event.cursor));
                }
            }
            last_sequence = Some(delivered.sequence);
            if delivered.sequence >= target || delivered.pending == 0 {
                shared.feed_synced();
            }
        };
        fail(&shared, &mut failing, format!("change stream `{}`: {ended}", config.stream));
    }
}

/// Reports a failure once per outage.
fn fail(shared: &Shared, failing: &mut bool, error: String) {
    if !std::mem::replace(failing, true) {
        shared.feed_failed(error);
    }
}
