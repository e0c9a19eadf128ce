//! The administrators' endpoints beyond users (role `admin`), for the console and for scripts:
//! ending one session of a user, the signing keys (list, rotate, revoke: what `jwt-auth keys`
//! does, here over HTTP), and the security-event trail. Every answer carries
//! `Cache-Control: no-store`: admin data is not kept by browsers or proxies.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use jwt_auth_service::keys::KeyError;
use jwt_auth_store::{EventKind, EventQuery};
use jwt_core::RevokeReason;
use serde::{Deserialize, Serialize};

use crate::audit::Audit;
use crate::error::ApiError;
use crate::extract::{Admin, ClientContext, RequireRole};
use crate::responses::{BearerRefused, ErrorBody, InsufficientRole, Unavailable};
use crate::routes::no_store;
use crate::state::AppState;

/// The most events one call returns.
const MAX_EVENTS: u32 = 1_000;

#[utoipa::path(post, path = "/api/admin/users/{id}/sessions/{session_id}/revoke", tag = "admin",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = "uuid", description = "the user's id"),
        ("session_id" = String, Path, format = "uuid", description = "one of the user's sessions, as `GET /api/admin/users/{id}/sessions` lists them"),
    ),
    responses(
        (status = 204, description = "the session is ended: its access and refresh tokens are refused everywhere within a second"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such user, or no such session of the user that has not expired"),
        BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn revoke_session(
    state: web::Data<AppState>,
    admin: RequireRole<Admin>,
    client: ClientContext,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, session_id) = path.into_inner();
    let missing = || ApiError::NotFound(format!("no session `{session_id}` of user `{user_id}`"));
    if uuid::Uuid::parse_str(&user_id).is_err() {
        return Err(missing());
    }
    let sessions = state.store.sessions_of_user(&user_id, state.now()).await?;
    let session = sessions.iter().find(|s| s.id == session_id).ok_or_else(missing)?;
    if session.revoked_at.is_none() {
        state.sessions.end(&session.id, RevokeReason::Admin).await?;
    }
    let by = format!("by {}", admin.caller.claims.sub);
    let audit =
        Audit::new(EventKind::AdminRevoke, &client.info).user(&user_id).session(&session.id);
    state.audit(audit.detail(by)).await;
    Ok(no_store(HttpResponse::NoContent()).finish())
}

/// A signing key, without its private half.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    kid: String,
    /// `HS256`, `RS256`, `ES256` or `EdDSA`.
    algorithm: String,
    /// `pending` (published, signs from `activates_at`), `active` (signs now), `retired`
    /// (verifies tokens it signed until they expire) or `revoked` (refused everywhere).
    #[schema(example = "active")]
    state: String,
    created_at: DateTime<Utc>,
    /// When it signs (or signed) from; absent for keys kept in files.
    activates_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// The signing keys, oldest first, and where they live.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// `database` (sealed under `KEY_ENCRYPTION_KEY`; rotate and revoke here), `directory`
    /// (`DATA_DIR/keys/`; rotate here, revoke by deleting the file) or `pinned`
    /// (`JWT_SECRET` or `JWT_PRIVATE_KEY_FILE`: neither here).
    #[schema(example = "database")]
    source: &'static str,
    keys: Vec<KeyView>,
}

#[utoipa::path(get, path = "/api/admin/keys", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = KeyList, description = "the signing keys, oldest first"),
        BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn keys(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
) -> Result<HttpResponse, ApiError> {
    let (source, listed) =
        state.keys.view(&state.tokens().keys(), state.now()).await.map_err(key_error)?;
    let keys = listed
        .into_iter()
        .map(|key| KeyView {
            state: key.state.to_string(),
            activates_at: key.scheduled.then_some(key.record.activates_at),
            kid: key.record.kid,
            algorithm: key.record.algorithm.to_string(),
            created_at: key.record.created_at,
            revoked_at: key.record.revoked_at,
        })
        .collect();
    Ok(no_store(HttpResponse::Ok()).json(KeyList { source: source.as_str(), keys }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RotateQuery {
    /// Sign with the new key at once (a compromised key) instead of 61 s from now, once
    /// every cached JWK set has it; verifiers holding a cached set refuse the new tokens
    /// until they fetch it again.
    pub now: Option<bool>,
}

/// What a rotation did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rotated {
    kid: String,
    algorithm: String,
    /// When the new key signs from.
    activates_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/api/admin/keys/rotate", tag = "admin", security(("bearer" = [])),
    params(RotateQuery),
    responses(
        (status = 200, body = Rotated, description = "a new signing key of the deployment's algorithm (the newest stored key's): published now, signing from `activates_at`"),
        (status = 409, body = ErrorBody, description = "`conflict`: the signing key is pinned (`JWT_SECRET`, `JWT_PRIVATE_KEY_FILE`)"),
        (status = 422, body = ErrorBody, description = "`invalid_field`: `now` is not `true` or `false`"),
        BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn rotate(
    state: web::Data<AppState>,
    admin: RequireRole<Admin>,
    client: ClientContext,
    query: web::Query<RotateQuery>,
) -> Result<HttpResponse, ApiError> {
    if state.keys.is_pinned() {
        return Err(ApiError::Conflict(
            "JWT_SECRET or JWT_PRIVATE_KEY_FILE pins the signing key: rotate it by redeploying"
                .into(),
        ));
    }
    // The deployment's algorithm: that of the newest stored key.
    let at_once = query.now.unwrap_or(false);
    let rotation = state.keys.rotate(None, at_once, state.now()).await.map_err(key_error)?;
    let rotated = Rotated {
        kid: rotation.record.kid,
        algorithm: rotation.record.algorithm.to_string(),
        activates_at: rotation.record.activates_at,
    };
    reload(&state).await;
    let detail = format!("key {} rotated by {}", rotated.kid, admin.caller.claims.sub);
    state.audit(Audit::new(EventKind::KeyRotated, &client.info).detail(detail)).await;
    Ok(no_store(HttpResponse::Ok()).json(rotated))
}

/// What a revocation did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RevokedKey {
    kid: String,
    revoked_at: Option<DateTime<Utc>>,
}

#[utoipa::path(post, path = "/api/admin/keys/{kid}/revoke", tag = "admin", security(("bearer" = [])),
    params(("kid" = String, Path, description = "the key's id, as `GET /api/admin/keys` lists it")),
    responses(
        (status = 200, body = RevokedKey, description = "every token signed with the key is refused everywhere within a second, and the key leaves the JWK set"),
        (status = 404, body = ErrorBody, description = "`not_found`: no stored key has this kid"),
        (status = 409, body = ErrorBody, description = "`conflict`: the key signs now (rotate first), or the keys are not in the database"),
        BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn revoke_key(
    state: web::Data<AppState>,
    admin: RequireRole<Admin>,
    client: ClientContext,
    kid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !state.keys.in_the_database() {
        return Err(ApiError::Conflict(
            "the keys are not in the database: revoke a key file by deleting it from \
             DATA_DIR/keys/, or set KEY_ENCRYPTION_KEY"
                .into(),
        ));
    }
    let revoked = state.keys.revoke(&kid, state.now()).await.map_err(key_error)?;
    reload(&state).await;
    state.feed_wake.notify_one();
    let detail = format!("key {} revoked by {}", revoked.kid, admin.caller.claims.sub);
    state.audit(Audit::new(EventKind::KeyRevoked, &client.info).detail(detail)).await;
    Ok(no_store(HttpResponse::Ok())
        .json(RevokedKey { kid: revoked.kid, revoked_at: revoked.revoked_at }))
}

/// Reloads this instance's keys now, so that the answer holds here at once (other instances
/// hear of the change from the database). A failure is left to the background reloader.
async fn reload(state: &AppState) {
    if let Err(e) = state.reload_keys().await {
        tracing::warn!(error = %e, "could not reload the signing keys at once");
        state.key_reload.notify_one();
    }
}

fn key_error(e: KeyError) -> ApiError {
    match e {
        KeyError::UnknownKid(kid) => {
            ApiError::NotFound(format!("no stored key has the kid `{kid}`"))
        }
        KeyError::RevokingActiveKey(kid) => ApiError::Conflict(format!(
            "key `{kid}` signs now: rotate first (with `now` for a compromised key), then revoke it"
        )),
        KeyError::Core(e @ jwt_core::Error::Unavailable(_)) => e.into(),
        other => ApiError::Internal(other.to_string()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only this user's events (a user id).
    pub user: Option<String>,
    /// Only events of this kind.
    #[param(schema_with = event_kinds)]
    pub kind: Option<String>,
    /// At most this many, newest first.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<u32>,
}

/// The schema of `EventFilter::kind`: one of the kinds the trail records.
fn event_kinds() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::Type(Type::String))
        .enum_values(Some(
            EventKind::ALL.iter().filter(|kind| kind.is_recorded()).map(|kind| kind.as_str()),
        ))
        .examples(["refresh_reuse_detected"])
        .build()
}

/// A recorded security event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    id: i64,
    at: DateTime<Utc>,
    /// `login_succeeded`, `login_failed`, `refresh_reuse_detected`, `logout`, `logout_all`,
    /// `admin_revoke`, `user_created`, `user_updated`, `token_revoked`, `tokens_voided`,
    /// `key_rotated`, `key_revoked` or `users_imported`.
    kind: &'static str,
    user_id: Option<String>,
    session_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: Option<String>,
}

/// Security events, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventList {
    events: Vec<EventView>,
}

#[utoipa::path(get, path = "/api/admin/events", tag = "admin", security(("bearer" = [])),
    params(EventFilter),
    responses(
        (status = 200, body = EventList, description = "the security-event trail, newest first"),
        (status = 422, body = ErrorBody, description = "`invalid_field`: an unknown kind (or `refresh`, which is counted, never recorded), or `limit` out of range"),
        BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn events(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    filter: web::Query<EventFilter>,
) -> Result<HttpResponse, ApiError> {
    let EventFilter { user, kind, limit } = filter.into_inner();
    let kind = kind
        .map(|k| {
            k.parse::<EventKind>().ok().filter(|kind| kind.is_recorded()).ok_or_else(|| {
                ApiError::InvalidField(format!("no recorded kind of event is called `{k}`"))
            })
        })
        .transpose()?;
    let limit = jwt_auth_service::page::Page::new(limit.unwrap_or(100), MAX_EVENTS, 0)?.limit();
    let query = EventQuery { user_id: user, kind, limit };
    let events = state
        .store
        .events(&query)
        .await?
        .into_iter()
        .map(|recorded| {
            let e = recorded.event;
            EventView {
                id: recorded.id,
                at: e.at,
                kind: e.kind.as_str(),
                user_id: e.user_id,
                session_id: e.session_id,
                ip: e.client.ip,
                user_agent: e.client.user_agent,
                detail: e.detail,
            }
        })
        .collect();
    Ok(no_store(HttpResponse::Ok()).json(EventList { events }))
}
