//! `/api` endpoints: the caller's own profile, and the administrators' views and actions on
//! users and their sessions.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use jwt_auth_store::{EventKind, User, UserUpdate};
use jwt_core::{RevokeReason, SessionRecord};
use serde::{Deserialize, Serialize};

use crate::audit::Audit;
use crate::error::ApiError;
use crate::extract::{Admin, Authenticated, ClientContext, Json, RequireRole};
use crate::routes::body::UserBody;
use crate::state::AppState;

/// The largest page of `GET /api/users`.
const MAX_PAGE: u32 = 100;
/// The largest offset of `GET /api/users`: the database counts rows in an `i64`.
const MAX_OFFSET: u64 = i64::MAX as u64;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            email: u.email,
            roles: u.roles,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

#[utoipa::path(get, path = "/api/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserBody), (status = 401, body = crate::openapi::ErrorBody)))]
pub async fn me(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let user = state
        .store
        .user_by_id(&caller.claims.sub)
        .await?
        .ok_or_else(|| ApiError::NotFound("the user no longer exists".into()))?;
    Ok(HttpResponse::Ok().json(UserBody::from(user)))
}

#[derive(Debug, Deserialize)]
pub struct Page {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserList {
    users: Vec<UserView>,
    total: u64,
}

#[utoipa::path(get, path = "/api/users", tag = "admin", security(("bearer" = [])),
    params(("limit" = Option<u32>, Query, description = "1 to 100, default 20"), ("offset" = Option<u64>, Query)),
    responses((status = 200, body = UserList), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody),
        (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let limit = page.limit.unwrap_or(20);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::InvalidField(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let offset = page.offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::InvalidField(format!("offset must be at most {MAX_OFFSET}")));
    }
    let found = state.store.list_users(limit, offset).await?;
    Ok(HttpResponse::Ok().json(UserList {
        users: found.users.into_iter().map(UserView::from).collect(),
        total: found.total,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    id: String,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    ip: Option<String>,
    user_agent: Option<String>,
    revoked_at: Option<DateTime<Utc>>,
    revoke_reason: Option<&'static str>,
}

impl From<SessionRecord> for SessionView {
    fn from(s: SessionRecord) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            ip: s.client.ip,
            user_agent: s.client.user_agent,
            revoked_at: s.revoked_at,
            revoke_reason: s.revoke_reason.map(|r| r.as_str()),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionView>,
    revoked: Vec<SessionView>,
}

fn no_user(id: &str) -> ApiError {
    ApiError::NotFound(format!("no user `{id}`"))
}

/// User ids are UUIDs (the `sub` claim): anything else names no user and is not sent to the
/// database, which may refuse it (PostgreSQL text cannot hold a NUL).
fn user_id(id: &str) -> Result<&str, ApiError> {
    uuid::Uuid::parse_str(id).map(|_| id).map_err(|_| no_user(id))
}

async fn existing_user(state: &AppState, id: &str) -> Result<User, ApiError> {
    state.store.user_by_id(user_id(id)?).await?.ok_or_else(|| no_user(id))
}

/// Active sessions of a user, and recently revoked ones with the reason.
#[utoipa::path(get, path = "/api/admin/users/{id}/sessions", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = SessionList), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn sessions(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = existing_user(&state, &id).await?;
    let now = state.now();
    let (active, revoked): (Vec<_>, Vec<_>) = state
        .store
        .sessions_of_user(&user.id, now)
        .await?
        .into_iter()
        .partition(|s| s.revoked_at.is_none());
    Ok(HttpResponse::Ok().json(SessionList {
        sessions: active.into_iter().map(SessionView::from).collect(),
        revoked: revoked.into_iter().map(SessionView::from).collect(),
    }))
}

#[utoipa::path(post, path = "/api/admin/users/{id}/revoke", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn revoke(
    state: web::Data<AppState>,
    admin: RequireRole<Admin>,
    client: ClientContext,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = existing_user(&state, &id).await?;
    state.sessions.end_all(&user.id, RevokeReason::Admin).await?;
    let by = format!("by {}", admin.caller.claims.sub);
    state.audit(Audit::new(EventKind::AdminRevoke, &client.info).user(&user.id).detail(by)).await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = PatchUser,
    responses((status = 200, body = UserView), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody),
        (status = 404, body = crate::openapi::ErrorBody), (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn update(
    state: web::Data<AppState>,
    admin: RequireRole<Admin>,
    client: ClientContext,
    id: web::Path<String>,
    Json(body): Json<PatchUser>,
) -> Result<HttpResponse, ApiError> {
    let PatchUser { roles, disabled } = body;
    if let Some(roles) = &roles
        && roles.iter().any(|r| r.is_empty() || r.len() > 64 || r.chars().any(char::is_whitespace))
    {
        return Err(ApiError::InvalidField(
            "roles must be non-empty words of at most 64 bytes".into(),
        ));
    }
    let update = UserUpdate { roles, disabled };
    let updated = state
        .store
        .update_user(user_id(&id)?, &update, state.now())
        .await?
        .ok_or_else(|| no_user(&id))?;
    if !updated.revocations.is_empty() {
        state.sessions.revocations().apply(&updated.revocations);
        state.metrics.revocations.inc();
    }
    let detail = format!("by {}; disabled: {:?}", admin.caller.claims.sub, update.disabled);
    state
        .audit(
            Audit::new(EventKind::UserUpdated, &client.info).user(&updated.user.id).detail(detail),
        )
        .await;
    Ok(HttpResponse::Ok().json(UserView::from(updated.user)))
}
