//! The signing keys over HTTP (role `admin`), for the console and for scripts: list, rotate,
//! revoke, what `jwt-auth keys` does. Every answer carries `Cache-Control: no-store`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use jwt_auth_service::keys::KeyError;
use jwt_auth_store::EventKind;
use serde::{Deserialize, Serialize};

use crate::audit::Audit;
use crate::error::ApiError;
use crate::extract::{Admin, ClientContext, RequireRole};
use crate::responses::{BearerRefused, ErrorBody, InsufficientRole, Unavailable};
use crate::routes::no_store;
use crate::state::AppState;

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
    // The keys of ID tokens, when they are apart, turn with the signing keys.
    state.rotate_id_token_keys().await.map_err(key_error)?;
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
    state.feed.waker().notify_one();
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
        state.keys.reload_soon();
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
