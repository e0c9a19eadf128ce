//! What every handler shares: configuration, the store, and the services: sessions (tokens +
//! revocation set), the password pool, the login throttle, the metrics, the user cache, the
//! revocation feed and the signing keys.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jwt_auth_store::Store;
use jwt_core::{Sessions, TokenService};

use jwt_auth_service::client_cache::ClientCache;
use jwt_auth_service::dpop::Dpop;
use jwt_auth_service::id_token_keys::IdTokenKeys;
use jwt_auth_service::keys::{KeyError, Keys};
use jwt_auth_service::web_origins::WebOrigins;

use crate::config::Config;
use jwt_auth_service::metrics::Metrics;
use jwt_auth_service::passwords::Passwords;
use jwt_auth_service::throttle::LoginThrottle;
use jwt_auth_service::user_cache::UserCache;

/// The application state behind `web::Data`.
pub struct AppState {
    pub config: Config,
    pub store: Arc<Store>,
    pub sessions: Sessions<Arc<Store>>,
    pub passwords: Passwords,
    pub throttle: LoginThrottle,
    pub metrics: Metrics,
    /// The user records `GET /api/me` answers from.
    pub users: UserCache,
    /// The clients the token and authorization endpoints authenticate.
    pub clients: ClientCache,
    /// The revocation feed as this instance has read it: it feeds the revocation set, and
    /// `GET /auth/revocations` serves other services from it.
    pub feed: Arc<jwt_auth_service::feed::FeedLog>,
    /// Becomes `true` when the server is asked to stop: long-lived answers (the feed's
    /// streams) end, so the graceful stop does not wait for them.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// The signing keys: where they live, and what is done with them.
    pub keys: Keys,
    /// The keys of OpenID Connect ID tokens, beside an HS256 secret (`None` when the signing
    /// keys are asymmetric and sign ID tokens too, or OpenID Connect is off).
    pub id_keys: Option<IdTokenKeys>,
    /// The web origins allowed to call the token, revocation and UserInfo endpoints and
    /// `/api/me` from a browser: those of the clients' redirect URIs.
    pub origins: WebOrigins,
    /// DPoP: the proofs of token requests and of bound access tokens, and the server nonces.
    pub dpop: Dpop,
    /// The change feed on NATS JetStream, with `NATS_URL`.
    pub change_stream: Option<ChangeStream>,
}

/// The connection to NATS, the stream this instance reads, and whether it follows it now.
pub struct ChangeStream {
    pub nats: jwt_auth_nats::Connection,
    pub stream: String,
    pub status: Arc<jwt_auth_service::change_stream::StreamStatus>,
}

impl ChangeStream {
    /// Whether changes arrive from the stream now, so that the database need not be read.
    pub fn is_following(&self) -> bool {
        self.status.is_following()
    }
}

impl jwt_auth_service::change_stream::ChangeTarget for AppState {
    async fn user_changed(&self, id: &str) {
        self.users.forget(id).await;
    }

    fn keys_changed(&self) {
        self.keys.reload_soon();
    }

    fn observe_lag(&self, lag: std::time::Duration) {
        self.metrics.revocation_feed_lag.observe(lag.as_secs_f64());
    }
}

impl AppState {
    pub fn tokens(&self) -> &Arc<TokenService> {
        self.sessions.tokens()
    }

    /// The current time, from the clock the tokens are issued on.
    pub fn now(&self) -> DateTime<Utc> {
        self.tokens().clock().now()
    }

    /// Reads what depends on the clients again after this instance added or removed one:
    /// the web origins allowed to call from a browser.
    pub async fn clients_changed(&self) {
        if let Err(e) = self.origins.reload().await {
            tracing::warn!(error = %e, "could not reload the web origins of clients");
        }
    }

    pub fn is_ready(&self) -> bool {
        self.feed.is_loaded()
    }

    /// Loads the signing keys from where they live and, if they changed, swaps them in: the
    /// background reloader's step, and what an administrator's rotation or revocation runs at
    /// once so that its answer already holds on this instance.
    pub async fn reload_keys(&self) -> Result<(), KeyError> {
        let current = self.tokens().keys();
        let keys = self.keys.load(self.now()).await?;
        let kids = |set: &jwt_core::KeySet| {
            set.verifying_keys().iter().map(|k| k.kid().to_owned()).collect::<Vec<_>>()
        };
        let changed = kids(&keys) != kids(&current)
            || keys.active().map(|k| k.kid()) != current.active().map(|k| k.kid());
        if changed {
            tracing::info!(
                active = keys.active().map(|k| k.kid()).unwrap_or("-"),
                "signing keys changed; reloaded"
            );
            self.dpop.keys_changed(&keys);
            self.tokens().replace_keys(keys);
        }
        if let Some(id_keys) = &self.id_keys {
            let keys = id_keys.load(self.now()).await?;
            let current = self.tokens().id_token_keys();
            let active = |set: Option<&jwt_core::KeySet>| {
                set.and_then(|s| s.active().map(|k| k.kid().to_owned()))
            };
            let published = |set: Option<&jwt_core::KeySet>| {
                set.map(|s| {
                    s.verifying_keys().iter().map(|k| k.kid().to_owned()).collect::<Vec<_>>()
                })
            };
            if active(Some(&keys)) != active(current.as_deref())
                || published(Some(&keys)) != published(current.as_deref())
            {
                tracing::info!(
                    active = active(Some(&keys)).as_deref().unwrap_or("-"),
                    "ID-token keys changed; reloaded"
                );
                self.tokens().replace_id_token_keys(Some(keys));
            }
        }
        Ok(())
    }

    /// Rotates the keys of ID tokens along with the signing keys, when they are apart.
    pub async fn rotate_id_token_keys(&self) -> Result<(), KeyError> {
        if let Some(id_keys) = &self.id_keys {
            let rotation = id_keys.rotate(self.now()).await?;
            tracing::info!(kid = %rotation.record.kid, "rotated the key of ID tokens");
        }
        Ok(())
    }
}
