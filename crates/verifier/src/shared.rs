//! What a verifier's request path and its background tasks (the key fetcher and the feed
//! follower) share: the token service, the revocation set, the readiness flags and the
//! status, below all three.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use jwt_core::{DpopVerifier, KeySet, RevocationSet, TokenService};
use tokio::sync::{Notify, watch};

use crate::config::{Timing, UrlPolicy};
use crate::status::FeedState;

/// Where the feed's client gets its token and follows the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeedEndpoints {
    pub(crate) token_endpoint: String,
    pub(crate) revocations_url: String,
}

/// What the request path and the background tasks share.
pub(crate) struct Shared {
    pub(crate) tokens: TokenService,
    pub(crate) revocations: Arc<RevocationSet>,
    /// Checks the proofs of DPoP-bound tokens on the request path, with the one replay cache
    /// of this verifier and every clone of it (on the verifier's clock, without nonces).
    #[cfg_attr(not(any(feature = "actix", feature = "axum")), allow(dead_code))]
    pub(crate) dpop: DpopVerifier,
    /// The external base URL clients address the service with, without a trailing `/`
    /// ([`VerifierBuilder::public_url`](crate::VerifierBuilder::public_url)): a proof's `htu`
    /// is it and the request's path. `None`: `http://` and the request's `Host`.
    #[cfg_attr(not(any(feature = "actix", feature = "axum")), allow(dead_code))]
    pub(crate) public_url: Option<String>,
    pub(crate) timing: Timing,
    pub(crate) http: reqwest::Client,
    pub(crate) urls: UrlPolicy,
    /// Keys and (when followed) the feed's first state are loaded.
    pub(crate) ready: AtomicBool,
    pub(crate) keys_loaded: AtomicBool,
    pub(crate) feed_synced: AtomicBool,
    pub(crate) ready_changed: Notify,
    /// Whether a failure before readiness was logged at ERROR already (it is, once).
    pub(crate) not_ready_logged: AtomicBool,
    /// A token named a `kid` the key set does not have.
    pub(crate) unknown_kid: Notify,
    /// Whether keys come from a JWK set (which an unknown `kid` refetches).
    pub(crate) fetches_keys: bool,
    pub(crate) endpoints: watch::Sender<Option<FeedEndpoints>>,
    pub(crate) state: Mutex<State>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) keys_fetched_at: Option<DateTime<Utc>>,
    pub(crate) keys_fresh_until: Option<DateTime<Utc>>,
    pub(crate) keys_error: Option<(DateTime<Utc>, String)>,
    pub(crate) feed_state: Option<FeedState>,
    pub(crate) feed_since: Option<DateTime<Utc>>,
    pub(crate) feed_cursor: Option<String>,
    pub(crate) feed_last_seen: Option<DateTime<Utc>>,
    pub(crate) feed_error: Option<(DateTime<Utc>, String)>,
}

impl Shared {
    /// The time on the verifier's clock (the system's unless the builder was given another).
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.tokens.clock().now()
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub(crate) fn update_ready(&self) {
        if self.keys_loaded.load(Ordering::Acquire)
            && self.feed_synced.load(Ordering::Acquire)
            && !self.ready.swap(true, Ordering::AcqRel)
        {
            tracing::info!("token verifier ready");
            self.ready_changed.notify_waiters();
        }
    }

    /// A fetched JWK set, fresh for `fresh_for`.
    pub(crate) fn install_keys(&self, keys: KeySet, fresh_for: Duration) {
        let now = self.now();
        self.tokens.replace_keys(keys);
        {
            let mut state = self.state();
            state.keys_fetched_at = Some(now);
            state.keys_fresh_until = Some(
                now + chrono::TimeDelta::from_std(fresh_for).unwrap_or(chrono::TimeDelta::MAX),
            );
            state.keys_error = None;
        }
        self.keys_loaded.store(true, Ordering::Release);
        self.update_ready();
    }

    /// Logs at ERROR, once, why the verifier is not ready yet: until it is, every request is
    /// refused (503), and this is the one line that says why.
    fn not_ready_because(&self, error: &str) {
        if !self.is_ready() && !self.not_ready_logged.swap(true, Ordering::AcqRel) {
            tracing::error!(%error, "the token verifier is not ready, and refuses every request until it is");
        }
    }

    pub(crate) fn keys_failed(&self, error: String) {
        self.not_ready_because(&error);
        tracing::warn!(%error, "fetching the issuer's keys failed; verifying with the keys held");
        self.state().keys_error = Some((self.now(), error));
    }

    /// The feed's first state (or a restarted one) is applied.
    pub(crate) fn feed_synced(&self) {
        self.feed_synced.store(true, Ordering::Release);
        self.update_ready();
    }

    pub(crate) fn feed_state(&self, feed_state: FeedState) {
        let now = self.now();
        let mut state = self.state();
        if state.feed_state != Some(feed_state) {
            state.feed_state = Some(feed_state);
            state.feed_since = Some(now);
        }
        if matches!(feed_state, FeedState::Streaming | FeedState::Polling) {
            state.feed_last_seen = Some(now);
            state.feed_error = None;
        }
    }

    pub(crate) fn feed_seen(&self, cursor: Option<&str>) {
        let mut state = self.state();
        state.feed_last_seen = Some(self.now());
        if let Some(cursor) = cursor {
            state.feed_cursor = Some(cursor.to_owned());
        }
    }

    pub(crate) fn feed_failed(&self, error: String) {
        self.not_ready_because(&error);
        tracing::warn!(%error, "following the revocation feed failed; retrying");
        self.feed_state(FeedState::Disconnected);
        self.state().feed_error = Some((self.now(), error));
    }

    /// A token named a `kid` we lack: ask the key task for a refetch (it rate-limits), unless
    /// the key is revoked (a refetch would not help) or keys are not fetched at all.
    pub(crate) fn on_unknown_key(&self, token: &str) {
        if !self.fetches_keys {
            return;
        }
        let Some(kid) = header_kid(token) else { return };
        if self.revocations.is_key_revoked(&kid) || self.tokens.keys().find(&kid).is_some() {
            return;
        }
        self.unknown_kid.notify_one();
    }
}

/// The `kid` of a token's header, read without verifying anything (only to decide whether
/// to refetch the key set), by jwt-core's own reading of a header.
pub(crate) fn header_kid(token: &str) -> Option<String> {
    let header = jwt_core::dangerous::decode_header_unverified(token).ok()?;
    header.get("kid")?.as_str().map(str::to_owned)
}
