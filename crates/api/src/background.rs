//! The server's background jobs: following the revocation feed and the user changes other
//! instances record, pruning what has expired, and reloading the signing keys.

use std::sync::Arc;
use std::time::Duration;

use jwt_auth_nats::StreamSettings;
use jwt_auth_service::change_stream::{Reader, Relay};
use jwt_auth_store::{Change, Changes};
use jwt_core::Clock;

use crate::state::{AppState, ChangeStream};

/// How often revocations made by other instances are fetched when nothing was pushed: all of
/// them on SQLite, a catch-up on PostgreSQL, which pushes each as it commits.
const REVOCATION_SYNC_EVERY: Duration = Duration::from_secs(1);

pub(crate) fn spawn_background_jobs(state: Arc<AppState>) {
    // Revocations made by other instances: loaded before the server started (see
    // `Application::build`), then applied as they are pushed, and read again every second.
    if state.change_stream.is_some() {
        spawn_change_stream(&state);
    }
    tokio::spawn(sync_revocations(state.clone()));
    tokio::spawn(prune(state.clone()));
    tokio::spawn(reload_web_origins(state.clone()));
    tokio::spawn(reload_keys(state));
}

/// Keeps the revocation set and the user cache current with what other instances record: at
/// once when the store pushes a change (PostgreSQL), and every [`REVOCATION_SYNC_EVERY`]
/// whatever happens, which also catches up after a lost listening connection. The feed is
/// read by position into `state.feed`, which applies it to the revocation set and wakes the
/// streams of `GET /auth/revocations`: one read of the store for all of them.
async fn sync_revocations(state: Arc<AppState>) {
    // With the change stream, the database's notifications are not listened to: the stream
    // brings every change, and the database is read only while it does not.
    let mut changes = match state.change_stream {
        Some(_) => None,
        None => state.store.changes(),
    };
    let mut tick = tokio::time::interval(REVOCATION_SYNC_EVERY);
    // Logged when the feed stops and when it resumes, not once a second while it is down.
    let mut failing = false;
    loop {
        let mut pushed = tokio::select! {
            _ = tick.tick() => Vec::new(),
            _ = state.feed.waker().notified() => Vec::new(),
            Some(change) = next_change(&mut changes) => vec![change],
            _ = stream_stopped(&state) => Vec::new(),
        };
        if follows_stream(&state) {
            continue;
        }
        // A burst of notifications is one read of the feed.
        if let Some(changes) = changes.as_mut() {
            pushed.extend(std::iter::from_fn(|| changes.try_next()));
        }
        // Key changes are the key reloader's (see `reload_keys`).
        if !pushed.is_empty() && pushed.iter().all(|c| matches!(c, Change::Keys { .. })) {
            continue;
        }
        for change in &pushed {
            if let Change::User { id, .. } = change {
                state.users.forget(id).await;
            }
        }
        match state.feed.advance().await {
            Ok(_) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("revocation feed reachable again");
                }
                observe_lag(&state, &pushed);
            }
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "could not load revocations; retrying every second");
            }
            Err(_) => {}
        }
        // After the revocations, which are the urgent part: every user changed lately, pushed
        // or not (an error is retried from the same point at the next turn).
        let _ = state.users.forget_changed(&state.store, state.now()).await;
    }
}

/// Whether the change stream brings every change now, once the feed was loaded from the
/// database: then the database is not read.
fn follows_stream(state: &AppState) -> bool {
    state.change_stream.as_ref().is_some_and(ChangeStream::is_following) && state.feed.is_loaded()
}

/// Resolves when this instance stops following the change stream; never without one.
async fn stream_stopped(state: &AppState) {
    match &state.change_stream {
        Some(stream) => stream.status.stopped().await,
        None => std::future::pending().await,
    }
}

/// How often the relay's leader reads the outbox for rows to publish.
const RELAY_POLL_EVERY: Duration = Duration::from_millis(5);

/// Starts the change stream's relay (which leads only while it can) and reader.
fn spawn_change_stream(state: &Arc<AppState>) {
    let Some(stream) = &state.change_stream else { return };
    let policy = state.tokens().policy();
    let longest = policy.access_ttl.max(policy.refresh_ttl) + policy.leeway;
    let relay = Relay {
        store: state.store.clone(),
        nats: stream.nats.clone(),
        settings: StreamSettings {
            name: jwt_auth_nats::DEFAULT_STREAM.to_owned(),
            max_age: longest.to_std().unwrap_or(Duration::from_secs(86_400)),
            replicas: 1,
        },
        token_lifetime: policy.access_ttl + policy.leeway,
        // Writers do not notify (see `StoreOptions::notify_changes`): the leader reads the
        // outbox often instead, one indexed query.
        poll_every: RELAY_POLL_EVERY,
        status: stream.status.clone(),
    };
    tokio::spawn(relay.run());
    let reader = Reader {
        nats: stream.nats.clone(),
        stream: stream.stream.clone(),
        feed: state.feed.clone(),
        clock: Arc::new(jwt_core::SystemClock),
        status: stream.status.clone(),
    };
    let state = state.clone();
    tokio::spawn(async move { reader.run(&*state).await });
}

/// The next pushed change; never, without a change feed (SQLite) or once it has ended.
async fn next_change(changes: &mut Option<Changes>) -> Option<Change> {
    match changes {
        Some(feed) => match feed.next().await {
            Some(change) => Some(change),
            None => {
                *changes = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// Records how long pushed revocations took from the writer's notification (the database's
/// clock) to being applied here (this host's clock): telemetry for operators, so the wall
/// clock, not the injected one, which tests move by hand.
fn observe_lag(state: &AppState, pushed: &[Change]) {
    let applied = jwt_core::SystemClock.now();
    for change in pushed {
        if let Change::Revocations { sent_at: Some(sent_at) } = change {
            let lag = (applied - *sent_at).to_std().unwrap_or_default();
            state.metrics.revocation_feed_lag.observe(lag.as_secs_f64());
        }
    }
}

/// Deletes expired sessions and tokens in small batches, pausing between them so the
/// database is never held for long.
/// Records the lifetimes of the tokens this instance issues (see
/// [`jwt_auth_store::Store::record_token_lifetimes`]).
pub(crate) async fn record_token_lifetimes(
    state: &AppState,
) -> Result<(), jwt_auth_store::StoreError> {
    let policy = state.tokens().policy();
    let lifetimes =
        jwt_auth_store::TokenLifetimes { access: policy.access_ttl, refresh: policy.refresh_ttl };
    state.store.record_token_lifetimes(lifetimes, state.now()).await
}

async fn prune(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        // Seen again: the lifetimes stay recorded while this instance issues tokens.
        if let Err(e) = record_token_lifetimes(&state).await {
            tracing::error!(error = %e, "recording the token lifetimes failed");
        }
        let mut total = 0;
        loop {
            match state.store.prune_expired(state.now(), 1_000).await {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => {
                    tracing::error!(error = %e, "pruning failed");
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if total > 0 {
            tracing::info!(pruned = total, "pruned expired sessions and tokens");
        }
        // A key retired (or revoked) longer ago than any token lives has no live token left.
        let policy = state.tokens().policy();
        let retention = jwt_core::KeySet::retention(policy.access_ttl, policy.refresh_ttl);
        match state.store.prune_signing_keys(state.now() - retention).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(pruned = n, "deleted signing keys whose tokens have all expired")
            }
            Err(e) => tracing::error!(error = %e, "pruning signing keys failed"),
        }
        state.throttle.forget_stale();
    }
}

/// Picks up keys rotated or revoked by `jwt-auth keys` (possibly on another instance): from
/// the database as soon as the change is pushed (PostgreSQL) and every second whatever
/// happens, or from the key directory every five seconds.
async fn reload_keys(state: Arc<AppState>) {
    let (every, mut changes) = match state.keys.in_the_database() {
        true if state.change_stream.is_some() => (jwt_auth_service::keys::RELOAD_EVERY, None),
        true => (jwt_auth_service::keys::RELOAD_EVERY, state.store.changes()),
        false => (Duration::from_secs(5), None),
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut failing = false;
    loop {
        tokio::select! {
            // While the change stream brings key changes, the database is not polled.
            _ = tick.tick() => if follows_stream(&state) && state.keys.in_the_database() {
                continue;
            },
            _ = stream_stopped(&state) => {}
            _ = state.keys.reload_wanted() => {}
            Some(change) = next_change(&mut changes) => {
                // Other changes are the revocation follower's; a resync may have missed keys.
                if !matches!(change, Change::Keys { .. } | Change::Resync) {
                    continue;
                }
            }
        }
        match state.reload_keys().await {
            Ok(()) => failing = false,
            // Logged once until it works again, not every second while the database is down.
            Err(e) if !std::mem::replace(&mut failing, true) => {
                tracing::error!(error = %e, "could not reload signing keys")
            }
            Err(_) => {}
        }
    }
}

/// Reads the web origins of clients again every `RELOAD_EVERY`, so that a client removed on
/// another instance stops being allowed (one added there is found when its origin first asks).
async fn reload_web_origins(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(jwt_auth_service::web_origins::RELOAD_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = state.origins.reload().await {
            tracing::debug!(error = %e, "could not reload the web origins of clients");
        }
    }
}
