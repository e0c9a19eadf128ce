//! Endpoints about the service itself: the JWK set, RFC 8414 metadata, health, readiness,
//! metrics and the OpenAPI document.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use crate::error::ApiError;
use crate::responses::ErrorBody;
use crate::state::AppState;
use jwt_auth_service::authorize::is_openid_issuer;
use jwt_auth_service::openid;

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
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub end_session_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub jwks_uri: String,
    pub grant_types_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub response_modes_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    /// `openid` only when OpenID Connect is on.
    pub scopes_supported: Vec<String>,
    pub claims_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    /// Empty while OpenID Connect is off.
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub authorization_response_iss_parameter_supported: bool,
    pub prompt_values_supported: Vec<String>,
    /// RFC 9449 §5.1: the algorithms of DPoP proofs.
    pub dpop_signing_alg_values_supported: Vec<String>,
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
        .json(state.tokens().jwks())
}

/// RFC 8414 metadata. Every URL starts with `PUBLIC_URL` when it is set (and the issuer is
/// then that URL unless `JWT_ISSUER` says otherwise); without it, with the address the
/// request came to.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "meta",
    responses((status = 200, body = AuthorizationServerMetadata, description = "RFC 8414 metadata",
        headers(("Cache-Control" = String, description = "`public, max-age=60`")))))]
pub async fn metadata(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=60"))
        .json(server_metadata(&state, &req))
}

/// OpenID Connect Discovery 1.0: the RFC 8414 metadata, when the issuer can be an OpenID
/// Connect issuer (an `https` URL, or `http` on a loopback address); 404 otherwise.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "meta",
    responses(
        (status = 200, body = AuthorizationServerMetadata, description = "OpenID Connect Discovery 1.0 metadata",
            headers(("Cache-Control" = String, description = "`public, max-age=60`"))),
        (status = 404, body = ErrorBody, description = "`not_found`: `JWT_ISSUER` is not a URL, so OpenID Connect is off"),
    ))]
pub async fn openid_configuration(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !is_openid_issuer(&state.config.issuer) {
        return Err(ApiError::NotFound(
            "OpenID Connect is off: JWT_ISSUER is not an https URL nor an http URL on a loopback address".into(),
        ));
    }
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=60"))
        .json(server_metadata(&state, &req)))
}

/// What both discovery documents say.
fn server_metadata(state: &AppState, req: &HttpRequest) -> serde_json::Value {
    let config = &state.config;
    let base = crate::caller::public_base(req, config);
    let openid = is_openid_issuer(&config.issuer);
    let scopes: Vec<&str> =
        openid::SCOPES_SUPPORTED.into_iter().filter(|s| openid || *s != "openid").collect();
    let tokens = state.tokens();
    let access_keys = tokens.keys();
    let id_token_algorithms: Vec<&str> = match tokens.id_token_keys() {
        Some(keys) => keys.active().map(|k| k.algorithm().as_str()).into_iter().collect(),
        None => access_keys
            .active()
            .filter(|k| openid && !k.algorithm().is_symmetric())
            .map(|k| k.algorithm().as_str())
            .into_iter()
            .collect(),
    };
    json!({
        "issuer": config.issuer,
        "authorization_endpoint": format!("{base}/auth/authorize"),
        "token_endpoint": format!("{base}/auth/token"),
        "userinfo_endpoint": format!("{base}/auth/userinfo"),
        "end_session_endpoint": format!("{base}/auth/end-session"),
        "revocation_endpoint": format!("{base}/auth/revoke"),
        "introspection_endpoint": format!("{base}/auth/introspect"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "password"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "claims_supported": openid::CLAIMS_SUPPORTED,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": id_token_algorithms,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent"],
        "dpop_signing_alg_values_supported": state.dpop.algorithms().iter().map(|a| a.as_str()).collect::<Vec<_>>(),
    })
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
    if let Some(stream) = &state.change_stream {
        state
            .metrics
            .observe_change_stream(stream.status.is_following(), stream.status.is_leading());
    }
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .body(state.metrics.render())
}
