//! `/api` endpoints: the caller's own profile, and the administrators' views and actions on
//! users and their sessions.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use jwt_auth_store::User;
use jwt_core::SessionRecord;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{Admin, Authenticated, ClientContext, Json, RequireRole};
use crate::responses::{BearerRefused, ErrorBody, InsufficientRole, JsonBodyRefusals, Unavailable};
use crate::routes::bodies::{UserBody, role_list};
use crate::routes::no_store;
use crate::state::AppState;
use jwt_auth_service::accounts::UserId;
use jwt_auth_service::page;
use jwt_auth_service::users::{self, UserChange, Users};

/// The largest page of `GET /api/users`.
const MAX_PAGE: u32 = 100;
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
    responses(
        (status = 200, body = UserBody, description = "the caller"),
        (status = 404, body = ErrorBody, description = "`not_found`: the caller's account no longer exists"),
        BearerRefused, Unavailable,
    ))]
pub async fn me(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let Some(user) = state.users.get(&state.store, &caller.claims.sub).await? else {
        // Only on a miss: a service client's token is valid, but names no user.
        let why = if state.store.client(&caller.claims.sub).await?.is_some() {
            "this token is a service client's (client credentials): service clients have no \
             user record"
        } else {
            "the user no longer exists"
        };
        return Err(ApiError::NotFound(why.into()));
    };
    Ok(HttpResponse::Ok().json(UserBody::from(user)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// How many users, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<u32>,
    /// How many users to skip, in the order of creation.
    #[param(minimum = 0, maximum = 9223372036854775807_i64, default = 0)]
    pub offset: Option<u64>,
    /// Only the users whose email contains this text, without regard to case (at most 254
    /// bytes).
    #[param(max_length = 254, example = "example.com")]
    pub email: Option<String>,
}

impl Page {
    /// The email filter (none when empty, at most 254 bytes) and the page.
    fn parse(&self) -> Result<(Option<&str>, page::Page), ApiError> {
        let window = page::Page::new(self.limit.unwrap_or(20), MAX_PAGE, self.offset.unwrap_or(0))?;
        let email = self.email.as_deref().filter(|e| !e.is_empty());
        if email.is_some_and(|e| e.len() > jwt_auth_store::MAX_EMAIL_BYTES) {
            return Err(ApiError::InvalidField("email must be at most 254 bytes".into()));
        }
        Ok((email, window))
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserList {
    users: Vec<UserView>,
    total: u64,
}

#[utoipa::path(get, path = "/api/users", tag = "admin", security(("bearer" = [])),
    params(Page),
    responses(
        (status = 200, body = UserList, description = "a page of users, and how many there are"),
        (status = 422, body = ErrorBody, description = "`invalid_field`: `limit` or `offset` out of range or not an integer"),
        BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    query: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let (email, page) = query.parse()?;
    let found = users::list(&state.store, email, page).await?;
    Ok(no_store(HttpResponse::Ok()).json(UserList {
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

/// Users as the calling administrator changes them, through this instance.
pub(crate) fn administered<'a>(
    state: &'a AppState,
    admin: &'a RequireRole<Admin>,
    client: &'a ClientContext,
) -> Users<'a> {
    Users::admin(state.instance(), &admin.caller.claims.sub, &client.info)
}

#[utoipa::path(get, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, format = "uuid", description = "the user's id; anything that is not a UUID names no user (404)")),
    responses(
        (status = 200, body = UserView, description = "the user"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such user"),
        BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn get(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = users::get(&state.store, &UserId::parse(&id)?).await?;
    Ok(no_store(HttpResponse::Ok()).json(UserView::from(user)))
}

/// Active sessions of a user, and recently revoked ones with the reason.
#[utoipa::path(get, path = "/api/admin/users/{id}/sessions", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, format = "uuid", description = "the user's id; anything that is not a UUID names no user (404)")),
    responses(
        (status = 200, body = SessionList, description = "the user's active sessions, and recently revoked ones"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such user"),
        BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn sessions(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let found = users::sessions(&state.store, &UserId::parse(&id)?, state.now()).await?;
    Ok(no_store(HttpResponse::Ok()).json(SessionList {
        sessions: found.active.into_iter().map(SessionView::from).collect(),
        revoked: found.revoked.into_iter().map(SessionView::from).collect(),
    }))
}

#[utoipa::path(post, path = "/api/admin/users/{id}/revoke", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, format = "uuid", description = "the user's id; anything that is not a UUID names no user (404)")),
    responses(
        (status = 204, description = "every session of the user is ended"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such user"),
        BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn revoke(
    state: web::Data<AppState>,
    admin: RequireRole<Admin>,
    client: ClientContext,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId::parse(&id)?;
    administered(&state, &admin, &client).revoke_sessions(&id, state.now()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What to change; an absent or `null` field is left as it is.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"roles": ["user", "auditor"], "disabled": false}))]
pub struct PatchUser {
    /// The user's new roles, replacing the old ones.
    #[schema(schema_with = role_list)]
    pub roles: Option<Vec<String>>,
    /// `true` shuts the user out and ends their sessions; `false` lets them in again.
    pub disabled: Option<bool>,
}

#[utoipa::path(patch, path = "/api/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, format = "uuid", description = "the user's id; anything that is not a UUID names no user (404)")), request_body = PatchUser,
    responses(
        (status = 200, body = UserView, description = "the user as updated"),
        (status = 404, body = ErrorBody, description = "`not_found`: no such user"),
        JsonBodyRefusals, BearerRefused, InsufficientRole, Unavailable,
    ))]
pub async fn update(
    state: web::Data<AppState>,
    admin: RequireRole<Admin>,
    client: ClientContext,
    id: web::Path<String>,
    Json(body): Json<PatchUser>,
) -> Result<HttpResponse, ApiError> {
    let change = UserChange::parse(body.roles.as_deref(), body.disabled)?;
    let id = UserId::parse(&id)?;
    let user = administered(&state, &admin, &client).update(&id, change, state.now()).await?;
    Ok(no_store(HttpResponse::Ok()).json(UserView::from(user)))
}
