//! Endpoints about the service itself: the JWK set, RFC 8414 metadata, health, readiness,
//! metrics and the OpenAPI document.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

// The schemas of the JSON answers below, which the handlers write directly.

/// An RFC 7517 JWK set; `keys` is empty for HS256.
#[allow(
    dead_code,
    reason = "a schema of the OpenAPI document: the handler writes this answer itself"
)]
#[derive(utoipa::ToSchema)]
pub struct JwkSet {
    /// The public verification keys (RFC 7517 §4), each with `kid`, `kty`, `alg` and `use`.
    pub keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// RFC 8414 authorization server metadata.
#[allow(
    dead_code,
    reason = "a schema of the OpenAPI document: the handler writes this answer itself"
)]
#[derive(utoipa::ToSchema)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub jwks_uri: String,
    pub grant_types_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
}

/// `{"status": "ok"}`.
#[allow(
    dead_code,
    reason = "a schema of the OpenAPI document: the handler writes this answer itself"
)]
#[derive(utoipa::ToSchema)]
pub struct Health {
    #[schema(pattern = "^ok$")]
    pub status: String,
}

/// Whether this instance is ready (200 needs what `requires` names), and what it holds now:
/// its keys and its copy of the revocation feed, which two instances on one database should
/// agree on within a second.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// The database answers a query.
    pub database: bool,
    /// The revocation set is loaded.
    pub revocations_loaded: bool,
    /// What readiness depends on: `database` and `revocations_loaded`. The change
    /// notifications are not among them: without them, polling every second keeps an
    /// instance current.
    pub requires: Vec<String>,
    /// The keys this instance has loaded; absent while it is starting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<LoadedKeys>,
    /// The revocation feed as this instance holds it; absent while it is starting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed: Option<FeedHealth>,
}

impl Readiness {
    /// The answer of an instance whose database has not answered yet.
    pub fn starting() -> Self {
        Self {
            database: false,
            revocations_loaded: false,
            requires: REQUIRES.map(str::to_owned).to_vec(),
            keys: None,
            feed: None,
        }
    }
}

const REQUIRES: [&str; 2] = ["database", "revocations_loaded"];

/// The keys an instance has loaded.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct LoadedKeys {
    /// The `kid` of the key this instance signs with.
    pub signing_kid: Option<String>,
    /// Its algorithm.
    pub algorithm: Option<String>,
    /// Every `kid` it accepts tokens of, the signing key's included.
    pub verifying_kids: Vec<String>,
}

/// This instance's copy of the revocation feed.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct FeedHealth {
    /// The newest position read, as `GET /auth/revocations` gives cursors.
    pub cursor: String,
    /// Feed streams (`text/event-stream`) open on this instance.
    pub open_streams: usize,
    /// Whether PostgreSQL's change notifications arrive now; `null` on SQLite, which has none.
    pub change_notifications: Option<bool>,
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "meta",
    responses((status = 200, body = JwkSet, description = "the public verification keys",
        headers(("Cache-Control" = String, description = "`public, max-age=60`")))))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=60"))
        .json(state.tokens().keys().jwks())
}

/// RFC 8414 metadata. Every URL starts with `PUBLIC_URL` when it is set (and the issuer is
/// then that URL unless `JWT_ISSUER` says otherwise); without it, with the address the
/// request came to. There is no authorization endpoint, so no response type is served:
/// `response_types_supported`, which RFC 8414 requires, is `["none"]`.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "meta",
    responses((status = 200, body = AuthorizationServerMetadata, description = "RFC 8414 metadata",
        headers(("Cache-Control" = String, description = "`public, max-age=60`")))))]
pub async fn metadata(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let config = &state.config;
    let base = match &config.public_url {
        Some(url) => url.clone(),
        None => crate::caller::public_base_url(&req, &config.trusted_proxies, config.bind),
    };
    HttpResponse::Ok().insert_header((CACHE_CONTROL, "public, max-age=60")).json(json!({
        "issuer": config.issuer,
        "token_endpoint": format!("{base}/auth/token"),
        "revocation_endpoint": format!("{base}/auth/revoke"),
        "introspection_endpoint": format!("{base}/auth/introspect"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": ["password", "refresh_token", "client_credentials"],
        "response_types_supported": ["none"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["bearer"],
    }))
}

#[utoipa::path(get, path = "/health", tag = "meta",
    responses((status = 200, body = Health, description = "the process is up")))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/ready", tag = "meta",
    responses(
        (status = 200, body = Readiness, description = "ready to serve"),
        (status = 503, body = Readiness, description = "the database is unreachable, or the revocations are not loaded yet"),
    ))]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let database = state.store.ping().await.is_ok();
    let revocations = state.is_ready();
    let keys = state.tokens().keys();
    let body = Readiness {
        database,
        revocations_loaded: revocations,
        requires: REQUIRES.map(str::to_owned).to_vec(),
        keys: Some(LoadedKeys {
            signing_kid: keys.active().map(|k| k.kid().to_owned()),
            algorithm: keys.active().map(|k| k.algorithm().as_str().to_owned()),
            verifying_kids: keys.verifying_keys().iter().map(|k| k.kid().to_owned()).collect(),
        }),
        feed: Some(FeedHealth {
            cursor: state.feed.head().to_string(),
            open_streams: state.feed.open_streams(),
            change_notifications: state.store.change_notifications(),
        }),
    };
    if database && revocations {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

#[utoipa::path(get, path = "/metrics", tag = "meta", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.metrics.hash_queue_depth.set(state.passwords.queue_depth() as i64);
    let (feed, store) = (&state.feed, &state.store);
    let notifications = store.change_notifications();
    let keys = state.tokens().keys();
    state.metrics.observe_instance(&keys, feed.head(), feed.open_streams(), notifications);
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(state.metrics.render())
}
