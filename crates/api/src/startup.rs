//! Building the server from validated settings ([`Application`]), then running it: the
//! routes are [`route_table`](crate::route_table), the server around them `server.rs`, and
//! its background jobs `background.rs`.

use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::web;
use jwt_auth_service::ServiceError;
use jwt_auth_service::users::Users;
use jwt_auth_store::StoreError;
use jwt_core::{Clock, SessionPolicy, Sessions, TokenPolicy, TokenService};

use crate::config::{Config, KeyArgs};
use crate::failure::CliError;
use crate::key_settings::KeySettings;
use crate::state::{AppState, ChangeStream};
use jwt_auth_service::dpop::Dpop;
use jwt_auth_service::feed::FeedLog;
use jwt_auth_service::metrics::Metrics;
use jwt_auth_service::passwords::Passwords;
use jwt_auth_service::throttle::LoginThrottle;
use jwt_auth_service::user_cache::UserCache;
use jwt_auth_service::web_origins::WebOrigins;

pub use crate::server::{CLIENT_BODY_TIMEOUT, CLIENT_REQUEST_TIMEOUT, KEEP_ALIVE};
pub(crate) use crate::server::{starting, stop_requested};

/// A server built from validated settings: the store (migrated), the keys, sessions, the
/// hashing pool, the throttles and the metrics, and the admin account of `ADMIN_EMAIL`. The
/// binary and the tests both build it here, then [`Application::run`] it.
pub struct Application {
    state: web::Data<AppState>,
}

impl Application {
    /// Builds the server's state on `clock` (tests pass a manual one).
    pub async fn build(
        config: Config,
        keys: &KeyArgs,
        clock: Arc<dyn Clock>,
    ) -> Result<Application, CliError> {
        let settings = KeySettings::read(keys, config.database_url.expose())?;
        let store = Arc::new(
            crate::database::open_store_with(&config.database_url, config.store_options.clone())
                .await?,
        );
        let retention =
            jwt_core::KeySet::retention(config.token_expiry, config.refresh_token_expiry);
        let id_keys = settings.id_token_keys(keys, store.clone(), &config.data_dir, retention)?;
        let keys = settings.keys(store.clone(), &config.data_dir).retention(retention);
        let key_set = keys.start(clock.now()).await?;
        let openid = jwt_auth_service::authorize::is_openid_issuer(&config.issuer);
        if !openid {
            tracing::info!(
                issuer = %config.issuer,
                "OpenID Connect is off: JWT_ISSUER is not an https URL nor an http URL on a loopback address (set PUBLIC_URL); the authorization code grant works without scope openid"
            );
        }
        // ID tokens need an asymmetric key: beside an HS256 secret, keys of their own.
        let symmetric = key_set.active().is_some_and(|k| k.algorithm().is_symmetric());
        let id_keys = match openid && symmetric {
            true => {
                let set = id_keys.start(clock.now()).await?;
                Some((id_keys, set))
            }
            false => None,
        };
        let mut policy = TokenPolicy::new(config.issuer.clone(), config.audience.clone());
        policy.access_ttl = config.token_expiry;
        policy.refresh_ttl = config.refresh_token_expiry;
        policy.include_email = config.token_include_email;
        let dpop = Dpop::new(clock.clone(), &key_set, config.dpop_nonce)?;
        let tokens = Arc::new(TokenService::new(policy, key_set)?.with_clock(clock.clone()));
        let id_keys = id_keys.map(|(id_keys, set)| {
            tokens.replace_id_token_keys(Some(set));
            id_keys
        });
        let sessions = Sessions::new(
            tokens,
            store.clone(),
            SessionPolicy {
                max_age: config.session_max_age,
                reuse_grace: config.refresh_reuse_grace,
            },
        );
        let passwords = Passwords::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let throttle = LoginThrottle::new(
            config.login_rate_limit,
            config.login_failure_backoff,
            clock.clone(),
        );
        let metrics = match store.change_notifications() {
            Some(_) => Metrics::new().with_change_notifications(),
            None => Metrics::new(),
        };
        let feed = FeedLog::new(sessions.store_feed(), sessions.revocation_follower(), clock);
        let change_stream = match &config.nats {
            Some(nats) => Some(ChangeStream {
                nats: jwt_auth_nats::Connection::connect(&nats.url, "jwt-auth")
                    .await
                    .map_err(|e| CliError::Usage(format!("NATS_URL: {e}")))?,
                stream: nats.stream.clone(),
                status: Default::default(),
            }),
            None => None,
        };
        let metrics = match &change_stream {
            Some(_) => metrics.with_change_stream(),
            None => metrics,
        };
        let origins = WebOrigins::new(store.clone());
        let state = AppState {
            config,
            store,
            sessions,
            passwords,
            throttle,
            metrics,
            users: UserCache::default(),
            clients: Default::default(),
            feed: Arc::new(feed),
            stopping: tokio::sync::watch::Sender::new(false),
            keys,
            id_keys,
            origins,
            dpop,
            change_stream,
        };
        ensure_admin(&state).await?;
        // Failing here is not fatal: an unknown origin reloads the set.
        if let Err(e) = state.origins.reload().await {
            tracing::warn!(error = %e, "could not read the web origins of clients");
        }
        // Commands that revoke a key or a client read how long the revocation matters here.
        crate::background::record_token_lifetimes(&state).await?;
        // Revocations are loaded before the first request, so that a restarted instance
        // never accepts a token revoked while it was down. Failing that (the database went
        // away since the keys were read), token checks answer 503 until the feed loads.
        let loaded = state.feed.advance().await;
        if let Err(e) = loaded {
            tracing::error!(error = %e, "could not load revocations; retrying every second")
        }
        Ok(Application { state: web::Data::new(state) })
    }

    /// The state every handler shares.
    pub fn state(&self) -> &web::Data<AppState> {
        &self.state
    }

    /// Starts the HTTP server on an already bound listener (port 0 in tests) and the
    /// background jobs; the returned server runs until stopped, then drains in-flight
    /// requests.
    pub fn run(self, listener: std::net::TcpListener) -> std::io::Result<Server> {
        crate::server::run(self.state, listener)
    }
}

/// Creates the admin account of `ADMIN_EMAIL`/`ADMIN_PASSWORD` if no user has that email, and
/// records its `user_created` event; says so when the account exists and the password is left
/// as it is.
async fn ensure_admin(state: &AppState) -> Result<(), CliError> {
    let Some((email, password)) = state.config.admin.clone() else { return Ok(()) };
    if let Some(existing) = state.store.user_by_email(&email).await? {
        tracing::warn!(
            user_id = %existing.user.id,
            "ADMIN_PASSWORD is ignored: the account of ADMIN_EMAIL exists already, and its \
             password and roles are left as they are; change its password with `jwt-auth user \
             set-password <ADMIN_EMAIL> --password-stdin`"
        );
        return Ok(());
    }
    let users = Users::command(&state.store, "ADMIN_EMAIL at start-up");
    match users.add(email, password.expose_owned(), true, state.now()).await {
        Ok(user) => {
            tracing::info!(user_id = %user.id, "created the admin account from ADMIN_EMAIL")
        }
        // Another instance made it meanwhile.
        Err(ServiceError::Store(StoreError::EmailTaken)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
