//! Building and running the server: the routes (one `configure` function that the server and
//! the tests both use), body limits and their errors, the body deadline, the per-request span
//! and metrics, and the background jobs (revocation feed, pruning, throttle clean-up).

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, Server, Service, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::error::UrlencodedError;
use actix_web::http::{StatusCode, header};
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, guard, web};
use futures_util::{FutureExt, Stream, StreamExt};
use tracing::Instrument;

use jwt_auth_store::{Change, Changes, EventKind, NewUser, PasswordHash};
use jwt_core::{
    ClientInfo, Clock, REVOCATION_OVERLAP, SessionPolicy, Sessions, TokenPolicy, TokenService,
};
use std::sync::atomic::AtomicBool;

use crate::config::{Config, KeyArgs};
use crate::error::{ApiError, OAuthError};
use crate::failure::CliError;
use crate::key_settings::KeySettings;
use crate::metrics::Metrics;
use crate::metrics::RouteLabels;
use crate::passwords::Passwords;
use crate::rate_limit::LoginThrottle;
use crate::routes::{account, admin, console, docs, meta, oauth, revocations, users};
use crate::state::AppState;
use crate::user_cache::UserCache;

/// How long a client may take to send the headers of a connection's first request. Actix-web
/// times no later request head: a keep-alive connection that stops halfway through its second
/// request's head is held until the client goes (see docs/network-edge.md).
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle keep-alive connection stays open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How long a client may take to send a request's body once its headers are in. Actix-web
/// times the headers only: without this, a body that stops short of its `Content-Length` (or
/// of its last chunk) holds the connection and the handler waiting on it for ever.
pub const CLIENT_BODY_TIMEOUT: Duration = Duration::from_secs(5);

pub use crate::extract::MAX_BODY_BYTES;
/// How often revocations made by other instances are fetched when nothing was pushed: all of
/// them on SQLite, a catch-up on PostgreSQL, which pushes each as it commits.
const REVOCATION_SYNC_EVERY: Duration = Duration::from_secs(1);

/// Forms are read only by the OAuth endpoints, so their failures take the RFC 6749 body.
fn form_error(err: UrlencodedError, _: &HttpRequest) -> actix_web::Error {
    let status = match &err {
        UrlencodedError::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        UrlencodedError::Overflow { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    let description = match &err {
        UrlencodedError::ContentType => "expected application/x-www-form-urlencoded".to_owned(),
        UrlencodedError::Overflow { .. } => {
            format!("the request body is larger than {MAX_BODY_BYTES} bytes")
        }
        other => format!("malformed form: {other}"),
    };
    OAuthError::InvalidRequest { status, description }.into()
}

fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::InvalidField(format!("bad query string: {err}")).into()
}

fn path_error(err: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::NotFound(format!("bad path: {err}")).into()
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("no such endpoint".into()))
}

/// A resource whose methods other than `allow` answer 405 in the JSON error format, with
/// `Allow`.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow))
    }))
}

fn post(path: &str) -> actix_web::Resource {
    resource(path, "POST")
}

/// A resource that takes GET and HEAD (RFC 9110 §9.3.2: the same answer without its body).
fn get(path: &str) -> actix_web::Resource {
    resource(path, "GET, HEAD")
}

/// The route of a `get` resource.
fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// A permanent redirect to `path`, the canonical spelling of a page's address (`/docs/` is
/// `/docs`), so that a typed or linked trailing slash finds the page instead of a JSON 404.
fn moved_to(path: &'static str) -> actix_web::Route {
    get_or_head().to(move || async move {
        HttpResponse::PermanentRedirect().insert_header((header::LOCATION, path)).finish()
    })
}

/// A request's body, shared by the handler, which reads it through [`RequestBody::reader`],
/// and by the answer, which holds it until it is sent whole. Actix-web times the request head
/// only, so this is what bounds a body that never finishes:
/// - the reader ends with an error once [`CLIENT_BODY_TIMEOUT`] passes, and the answer is then
///   408 whatever the handler made of that error;
/// - a body still unfinished when its answer is sent makes actix-http close the connection
///   (after at most the 1 s disconnect timeout). Had the handler dropped it, actix-http would
///   instead read a chunked body to its end before the next request: for ever, if it never
///   ends, and with no timer running.
#[derive(Clone)]
struct RequestBody {
    payload: Rc<RefCell<Payload>>,
    late: Rc<Cell<bool>>,
}

impl RequestBody {
    fn new(payload: Payload) -> Self {
        Self { payload: Rc::new(RefCell::new(payload)), late: Rc::default() }
    }

    /// The body as the handler reads it: ended with an error at `deadline`.
    fn reader(&self, deadline: tokio::time::Instant) -> Payload {
        let body = self.clone();
        let mut timer = Box::pin(tokio::time::sleep_until(deadline));
        let mut ended = false;
        let stream = futures_util::stream::poll_fn(move |cx| {
            if ended {
                return Poll::Ready(None);
            }
            // The timer first: a body trickled a byte at a time is always ready when polled.
            if timer.as_mut().poll(cx).is_ready() {
                ended = true;
                body.late.set(true);
                let late = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the request body did not arrive within {CLIENT_BODY_TIMEOUT:?}"),
                );
                return Poll::Ready(Some(Err(PayloadError::Io(late))));
            }
            let next = body.payload.borrow_mut().poll_next_unpin(cx);
            ended = matches!(next, Poll::Ready(None));
            next
        });
        let stream: Pin<Box<dyn Stream<Item = _>>> = Box::pin(stream);
        Payload::from(stream)
    }

    /// The handler's answer, or 408 if the body came too late; either holds the body.
    fn answer<B: MessageBody + 'static>(self, response: ServiceResponse<B>) -> ServiceResponse {
        let response = if self.late.get() {
            let mut late = actix_web::ResponseError::error_response(
                &crate::error::ApiError::BodyTimeout(CLIENT_BODY_TIMEOUT.as_secs()),
            );
            late.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
            response.into_response(late)
        } else {
            response.map_into_boxed_body()
        };
        response.map_body(|_, body| BoxBody::new(Holding { body, _request: self }))
    }
}

/// An answer's body, holding its request's body until actix-http drops it, after its end.
struct Holding {
    body: BoxBody,
    _request: RequestBody,
}

impl MessageBody for Holding {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// Every route and extractor setting; the server and the tests both call it.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::FormConfig::default().limit(MAX_BODY_BYTES).error_handler(form_error))
        .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .service(post("/auth/register").route(web::post().to(account::register)))
        .service(post("/auth/login").route(web::post().to(account::login)))
        .service(post("/auth/token").route(web::post().to(oauth::token)))
        .service(post("/auth/refresh").route(web::post().to(account::refresh)))
        .service(post("/auth/logout").route(web::post().to(account::logout)))
        .service(post("/auth/logout-all").route(web::post().to(account::logout_all)))
        .service(post("/auth/revoke").route(web::post().to(oauth::revoke)))
        .service(post("/auth/introspect").route(web::post().to(oauth::introspect)))
        .service(get("/.well-known/jwks.json").route(get_or_head().to(meta::jwks)))
        .service(
            get("/.well-known/oauth-authorization-server").route(get_or_head().to(meta::metadata)),
        )
        .service(get("/auth/revocations").route(get_or_head().to(revocations::feed)))
        .service(get("/api/me").route(get_or_head().to(users::me)))
        .service(get("/api/users").route(get_or_head().to(users::list)))
        .service(get("/api/admin/users/{id}/sessions").route(get_or_head().to(users::sessions)))
        .service(post("/api/admin/users/{id}/revoke").route(web::post().to(users::revoke)))
        .service(
            resource("/api/admin/users/{id}", "GET, HEAD, PATCH")
                .route(get_or_head().to(users::get))
                .route(web::patch().to(users::update)),
        )
        .service(
            post("/api/admin/users/{id}/sessions/{session_id}/revoke")
                .route(web::post().to(admin::revoke_session)),
        )
        .service(get("/api/admin/keys").route(get_or_head().to(admin::keys)))
        .service(post("/api/admin/keys/rotate").route(web::post().to(admin::rotate)))
        .service(post("/api/admin/keys/{kid}/revoke").route(web::post().to(admin::revoke_key)))
        .service(get("/api/admin/events").route(get_or_head().to(admin::events)))
        .service(get("/health").route(get_or_head().to(meta::health)))
        .service(get("/ready").route(get_or_head().to(meta::ready)))
        .service(get("/metrics").route(get_or_head().to(meta::metrics)))
        .service(get("/openapi.json").route(get_or_head().to(crate::openapi::document)))
        .service(get("/docs").route(get_or_head().to(docs::page)))
        .service(get("/docs/").route(moved_to("/docs")))
        .service(get("/docs/{file}").route(get_or_head().to(docs::asset)))
        .service(get("/console").route(get_or_head().to(console::page)))
        .service(get("/console/").route(moved_to("/console")))
        .service(get("/console/{file}").route(get_or_head().to(console::asset)))
        .default_service(web::to(not_found));
}

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
        let keys = settings.keys(store.clone(), &config.data_dir).retention(retention);
        let key_set = keys.start(clock.now()).await?;
        let mut policy = TokenPolicy::new(config.issuer.clone(), config.audience.clone());
        policy.access_ttl = config.token_expiry;
        policy.refresh_ttl = config.refresh_token_expiry;
        policy.include_email = config.token_include_email;
        let tokens = Arc::new(TokenService::new(policy, key_set)?.with_clock(clock.clone()));
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
        let throttle =
            LoginThrottle::new(config.login_rate_limit, config.login_failure_backoff, clock);
        let metrics = match store.change_notifications() {
            Some(_) => Metrics::new().with_change_notifications(),
            None => Metrics::new(),
        };
        let state = AppState {
            config,
            store,
            sessions,
            passwords,
            throttle,
            metrics,
            users: UserCache::default(),
            revocations_loaded: AtomicBool::new(false),
            feed: Arc::default(),
            stopping: tokio::sync::watch::Sender::new(false),
            feed_wake: tokio::sync::Notify::new(),
            keys,
            key_reload: tokio::sync::Notify::new(),
        };
        ensure_admin(&state).await?;
        // Commands that revoke a key or a client read how long the revocation matters here.
        record_token_lifetimes(&state).await?;
        // Revocations are loaded before the first request, so that a restarted instance
        // never accepts a token revoked while it was down. Failing that (the database went
        // away since the keys were read), token checks answer 503 until the feed loads.
        let loaded = state
            .feed
            .advance(&state.store, state.sessions.revocations(), state.now(), state.feed_lifetime())
            .await;
        match loaded {
            Ok(_) => state.revocations_loaded.store(true, Ordering::Release),
            Err(e) => {
                tracing::error!(error = %e, "could not load revocations; retrying every second")
            }
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
        run(self.state, listener)
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
    let hash = state
        .passwords
        .hash(password.expose_owned())
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let roles = vec!["user".into(), "admin".into()];
    match state
        .store
        .create_user(&NewUser { email, password_hash: PasswordHash::new(hash), roles }, state.now())
        .await
    {
        Ok(user) => {
            tracing::info!(user_id = %user.id, "created the admin account from ADMIN_EMAIL");
            let nobody = ClientInfo::default();
            let event = crate::audit::Audit::new(EventKind::UserCreated, &nobody);
            state.audit(event.user(&user.id).detail("ADMIN_EMAIL at start-up")).await;
        }
        Err(jwt_auth_store::StoreError::EmailTaken) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Starts the HTTP server on an already bound listener (port 0 in tests) and the background
/// jobs; the returned server runs until stopped, then drains in-flight requests.
fn run(state: web::Data<AppState>, listener: std::net::TcpListener) -> std::io::Result<Server> {
    spawn_background_jobs(state.clone().into_inner());
    let stopping = state.stopping.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            // Inside the metrics below, so that they count the 408s of late bodies.
            .wrap_fn(|mut req, srv| {
                let body = match req.take_payload() {
                    Payload::None => None,
                    payload => {
                        let body = RequestBody::new(payload);
                        let deadline = tokio::time::Instant::now() + CLIENT_BODY_TIMEOUT;
                        req.set_payload(body.reader(deadline));
                        Some(body)
                    }
                };
                srv.call(req).map(move |result| {
                    result.map(|response| match body {
                        Some(body) => body.answer(response),
                        None => response.map_into_boxed_body(),
                    })
                })
            })
            .wrap_fn(|req, srv| {
                let started = Instant::now();
                let request_id = uuid::Uuid::new_v4();
                let method = req.method().to_string();
                let span = tracing::info_span!("request", %request_id, %method, path = %req.path());
                req.extensions_mut().insert(request_id);
                let state = req.app_data::<web::Data<AppState>>().cloned();
                srv.call(req)
                    .map(move |result| {
                        if let (Ok(response), Some(state)) = (&result, state) {
                            let labels = RouteLabels {
                                method,
                                route: response
                                    .request()
                                    .match_pattern()
                                    .unwrap_or_else(|| "unmatched".to_owned()),
                                status: response.status().as_u16(),
                            };
                            state.metrics.requests.get_or_create(&labels).inc();
                            state
                                .metrics
                                .latency
                                .get_or_create(&labels)
                                .observe(started.elapsed().as_secs_f64());
                        }
                        result
                    })
                    .instrument(span)
            })
            .configure(configure)
    })
    // A client has this long to send its first request's headers (slowloris: 408, then
    // closed), an idle keep-alive connection is closed after this long, and a closing client
    // this long to finish. Bodies have their own deadline (`CLIENT_BODY_TIMEOUT`, above).
    .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
    .keep_alive(KEEP_ALIVE)
    .client_disconnect_timeout(Duration::from_secs(1))
    .listen(listener)?
    .shutdown_timeout(30)
    .shutdown_signal(async move {
        stop_requested().await;
        // The feed's streams end now; requests in flight get the graceful stop's 30 s.
        stopping.send_replace(true);
    })
    .run();
    Ok(server)
}

/// The server that answers while `serve` waits for an unreachable database: `/health` 200,
/// `/ready` 503 (nothing is loaded), and every other request 503 `unavailable` with
/// `Retry-After`, so that clients and orchestrators see a starting instance rather than a
/// refused connection. Stopped through the returned handle once the real server can start on
/// the same socket; signals are the caller's to watch.
pub(crate) fn starting(
    listener: std::net::TcpListener,
) -> std::io::Result<actix_web::dev::ServerHandle> {
    let server = HttpServer::new(|| {
        App::new()
            .service(get("/health").route(get_or_head().to(meta::health)))
            .service(get("/ready").route(get_or_head().to(|| async {
                HttpResponse::ServiceUnavailable().json(meta::Readiness::starting())
            })))
            .default_service(actix_web::web::to(|| async {
                actix_web::ResponseError::error_response(&ApiError::Unavailable)
            }))
    })
    .workers(1)
    .disable_signals()
    .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
    .keep_alive(KEEP_ALIVE)
    .listen(listener)?
    .shutdown_timeout(5)
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(handle)
}

fn spawn_background_jobs(state: Arc<AppState>) {
    // Revocations made by other instances: loaded before the server started (see
    // `Application::build`), then applied as they are pushed, and read again every second.
    tokio::spawn(sync_revocations(state.clone()));
    tokio::spawn(prune(state.clone()));
    tokio::spawn(reload_keys(state));
}

/// Keeps the revocation set and the user cache current with what other instances record: at
/// once when the store pushes a change (PostgreSQL), and every [`REVOCATION_SYNC_EVERY`]
/// whatever happens, which also catches up after a lost listening connection. The feed is
/// read by position into `state.feed`, which applies it to the revocation set and wakes the
/// streams of `GET /auth/revocations`: one read of the store for all of them.
async fn sync_revocations(state: Arc<AppState>) {
    let mut changes = state.store.changes();
    // Users changed since here are dropped from the cache; it starts empty, so from now on.
    let mut users_since = state.now() - REVOCATION_OVERLAP;
    let mut tick = tokio::time::interval(REVOCATION_SYNC_EVERY);
    // Logged when the feed stops and when it resumes, not once a second while it is down.
    let mut failing = false;
    loop {
        let mut pushed = tokio::select! {
            _ = tick.tick() => Vec::new(),
            _ = state.feed_wake.notified() => Vec::new(),
            Some(change) = next_change(&mut changes) => vec![change],
        };
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
        let lifetime = state.feed_lifetime();
        let revocations = state.sessions.revocations();
        match state.feed.advance(&state.store, revocations, state.now(), lifetime).await {
            Ok(_) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("revocation feed reachable again");
                }
                state.revocations_loaded.store(true, Ordering::Release);
                observe_lag(&state, &pushed);
            }
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "could not load revocations; retrying every second");
            }
            Err(_) => {}
        }
        // After the revocations, which are the urgent part: every user changed lately, pushed
        // or not. Covers a lost notification, and a load that read a record just before it
        // changed.
        let started = state.now();
        if let Ok(changed) = state.store.users_changed_since(users_since).await {
            for id in changed {
                state.users.forget(&id).await;
            }
            users_since = started - REVOCATION_OVERLAP;
        }
    }
}

/// SIGTERM or SIGINT (both stop gracefully). Without signal handling (not Unix, or the
/// handler cannot be installed), never: the server is then stopped through its handle.
pub(crate) async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received; stopping gracefully"),
                _ = int.recv() => tracing::info!("SIGINT received; stopping gracefully"),
            }
            return;
        }
    }
    std::future::pending::<()>().await
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
async fn record_token_lifetimes(state: &AppState) -> Result<(), jwt_auth_store::StoreError> {
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
        true => (jwt_auth_service::keys::RELOAD_EVERY, state.store.changes()),
        false => (Duration::from_secs(5), None),
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.key_reload.notified() => {}
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
