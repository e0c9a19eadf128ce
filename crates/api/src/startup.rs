//! Building and running the server: the routes (one `configure` function that the server and
//! the tests both use), body limits and their errors, the per-request span and metrics, and
//! the background jobs (revocation feed, pruning, throttle clean-up).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service};
use actix_web::error::{JsonPayloadError, UrlencodedError};
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, guard, web};
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::error::ApiError;
use crate::metrics::RouteLabels;
use crate::routes::{auth, meta, users};
use crate::state::AppState;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How often revocations made by other instances are fetched.
const REVOCATION_SYNC_EVERY: Duration = Duration::from_secs(1);

fn json_error(err: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let api = match err {
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("expected application/json".into())
        }
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge(MAX_BODY_BYTES)
        }
        JsonPayloadError::Deserialize(e) => from_serde(&e),
        other => ApiError::BadRequest(format!("could not read the body: {other}")),
    };
    api.into()
}

fn from_serde(e: &serde_json::Error) -> ApiError {
    if e.is_data() {
        ApiError::Unprocessable(e.to_string())
    } else {
        ApiError::BadRequest(format!("malformed JSON: {e}"))
    }
}

/// Parses a JSON body read as bytes, with the same errors as the `Json` extractor.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| from_serde(&e))
}

/// Forms are read only by the OAuth endpoints, so their failures take the RFC 6749 body.
fn form_error(err: UrlencodedError, _: &HttpRequest) -> actix_web::Error {
    use actix_web::ResponseError;
    let api = match &err {
        UrlencodedError::ContentType => {
            ApiError::UnsupportedMediaType("expected application/x-www-form-urlencoded".into())
        }
        UrlencodedError::Overflow { .. } => ApiError::PayloadTooLarge(MAX_BODY_BYTES),
        other => ApiError::BadRequest(format!("malformed form: {other}")),
    };
    let response = crate::error::oauth_error(api.status_code(), "invalid_request", api.to_string());
    actix_web::error::InternalError::from_response(err, response).into()
}

fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::Unprocessable(format!("bad query string: {err}")).into()
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

fn patch(path: &str) -> actix_web::Resource {
    resource(path, "PATCH")
}

/// A resource that takes GET and HEAD (RFC 9110 §9.3.2: the same answer without its body).
fn get(path: &str) -> actix_web::Resource {
    resource(path, "GET, HEAD")
}

/// The route of a `get` resource.
fn get_or_head() -> actix_web::Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// Every route and extractor setting; the server and the tests both call it.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::JsonConfig::default().limit(MAX_BODY_BYTES).error_handler(json_error))
        .app_data(web::FormConfig::default().limit(MAX_BODY_BYTES).error_handler(form_error))
        .app_data(web::PayloadConfig::default().limit(MAX_BODY_BYTES))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .service(post("/auth/register").route(web::post().to(auth::register)))
        .service(post("/auth/login").route(web::post().to(auth::login)))
        .service(post("/auth/token").route(web::post().to(auth::token)))
        .service(post("/auth/refresh").route(web::post().to(auth::refresh)))
        .service(post("/auth/logout").route(web::post().to(auth::logout)))
        .service(post("/auth/logout-all").route(web::post().to(auth::logout_all)))
        .service(post("/auth/revoke").route(web::post().to(auth::revoke)))
        .service(post("/auth/introspect").route(web::post().to(auth::introspect)))
        .service(get("/.well-known/jwks.json").route(get_or_head().to(meta::jwks)))
        .service(
            get("/.well-known/oauth-authorization-server").route(get_or_head().to(meta::metadata)),
        )
        .service(get("/api/me").route(get_or_head().to(users::me)))
        .service(get("/api/users").route(get_or_head().to(users::list)))
        .service(get("/api/admin/users/{id}/sessions").route(get_or_head().to(users::sessions)))
        .service(post("/api/admin/users/{id}/revoke").route(web::post().to(users::revoke)))
        .service(patch("/api/admin/users/{id}").route(web::patch().to(users::update)))
        .service(get("/health").route(get_or_head().to(meta::health)))
        .service(get("/ready").route(get_or_head().to(meta::ready)))
        .service(get("/metrics").route(get_or_head().to(meta::metrics)))
        .service(get("/openapi.json").route(get_or_head().to(crate::openapi::document)))
        .default_service(web::to(not_found));
}

/// Starts the HTTP server on an already bound listener (port 0 in tests) and the background
/// jobs; the returned server runs until stopped, then drains in-flight requests.
pub fn run(state: web::Data<AppState>, listener: std::net::TcpListener) -> std::io::Result<Server> {
    spawn_background_jobs(state.clone().into_inner());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
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
    .listen(listener)?
    .shutdown_timeout(30)
    .run();
    Ok(server)
}

fn spawn_background_jobs(state: Arc<AppState>) {
    // Revocations made by other instances: loaded before the server reports ready, then
    // refreshed every second.
    tokio::spawn(sync_revocations(state.clone()));
    tokio::spawn(prune(state.clone()));
    tokio::spawn(reload_keys(state));
}

async fn sync_revocations(state: Arc<AppState>) {
    let follower = state.sessions.revocation_follower();
    let mut tick = tokio::time::interval(REVOCATION_SYNC_EVERY);
    loop {
        tick.tick().await;
        match follower.poll().await {
            Ok(_) => state.revocations_loaded.store(true, Ordering::Release),
            Err(e) => tracing::error!(error = %e, "could not load revocations"),
        }
    }
}

/// Deletes expired sessions and tokens in small batches, pausing between them so the
/// database is never held for long.
async fn prune(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
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
        state.throttle.forget_stale();
    }
}

/// Picks up keys rotated by `jwt-auth keys rotate` (possibly on another instance sharing the
/// data directory).
async fn reload_keys(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    loop {
        tick.tick().await;
        let current = state.tokens().keys();
        match state.load_keys() {
            Ok(keys) => {
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
                    state.tokens().replace_keys(keys);
                }
            }
            Err(e) => tracing::error!(error = %e, "could not reload signing keys"),
        }
    }
}
