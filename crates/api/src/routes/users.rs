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
use crate::responses::{BearerRefused, ErrorBody, InsufficientRole, JsonBodyRefusals, Unavailable};
use crate::routes::bodies::UserBody;
use crate::routes::no_store;
use crate::state::AppState;
// Role names are counted in characters (Unicode code points, as JSON Schema's `maxLength`
// counts them, so that the document states the rule exactly).
use jwt_auth_service::accounts::{MAX_ROLE_CHARS, Role, UserId};
use jwt_auth_service::page;

/// The largest page of `GET /api/users`.
const MAX_PAGE: u32 = 100;
/// The characters a role name cannot hold: exactly those of `char::is_whitespace` (Unicode
/// `White_Space`), spelled out so that every regular-expression engine reads the document's
/// pattern alike.
const WHITESPACE: &[(char, char)] = &[
    ('\u{9}', '\u{d}'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

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
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let window = page::Page::new(page.limit.unwrap_or(20), MAX_PAGE, page.offset.unwrap_or(0))?;
    let email = page.email.as_deref().filter(|e| !e.is_empty());
    if email.is_some_and(|e| e.len() > jwt_auth_store::MAX_EMAIL_BYTES) {
        return Err(ApiError::InvalidField("email must be at most 254 bytes".into()));
    }
    let found = state.store.search_users(email, window.limit(), window.offset()).await?;
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

fn no_user(id: &str) -> ApiError {
    ApiError::NotFound(format!("no user `{id}`"))
}

async fn existing_user(state: &AppState, id: &str) -> Result<User, ApiError> {
    let id = UserId::parse(id)?;
    state.store.user_by_id(id.as_str()).await?.ok_or_else(|| no_user(id.as_str()))
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
    let user = existing_user(&state, &id).await?;
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
    let user = existing_user(&state, &id).await?;
    let now = state.now();
    let (active, revoked): (Vec<_>, Vec<_>) = state
        .store
        .sessions_of_user(&user.id, now)
        .await?
        .into_iter()
        .partition(|s| s.revoked_at.is_none());
    Ok(no_store(HttpResponse::Ok()).json(SessionList {
        sessions: active.into_iter().map(SessionView::from).collect(),
        revoked: revoked.into_iter().map(SessionView::from).collect(),
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
    let user = existing_user(&state, &id).await?;
    state.sessions.end_all(&user.id, RevokeReason::Admin).await?;
    state.users.forget(&user.id).await;
    let by = format!("by {}", admin.caller.claims.sub);
    state.audit(Audit::new(EventKind::AdminRevoke, &client.info).user(&user.id).detail(by)).await;
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

/// The schema of `PatchUser::roles`: `null`, or names as [`Role::parse`] takes them.
fn role_list() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let class: String = WHITESPACE
        .iter()
        .map(|&(from, to)| {
            let escape = |c: char| format!("\\u{:04X}", u32::from(c));
            if from == to { escape(from) } else { format!("{}-{}", escape(from), escape(to)) }
        })
        .collect();
    let role = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_ROLE_CHARS))
        .pattern(Some(format!("^[^{class}]+$")))
        .description(Some("1 to 64 characters (Unicode code points), no whitespace"));
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(role)
        .build()
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
    let PatchUser { roles, disabled } = body;
    let roles = roles.map(|names| Role::parse_all(&names).map(Role::names)).transpose();
    let roles = roles.map_err(jwt_auth_service::ServiceError::from)?;
    let update = UserUpdate { roles, disabled };
    let updated = state
        .store
        .update_user(UserId::parse(&id)?.as_str(), &update, state.now())
        .await?
        .ok_or_else(|| no_user(&id))?;
    state.users.put(updated.user.clone()).await;
    if !updated.revocations.is_empty() {
        state.sessions.revocations().apply(&updated.revocations);
        state.metrics.revocations.inc();
        state.feed_wake.notify_one();
    }
    let mut changes = Vec::new();
    if let Some(roles) = &update.roles {
        changes.push(format!("roles: {}", roles.join(",")));
    }
    if let Some(disabled) = update.disabled {
        changes.push(if disabled { "disabled" } else { "enabled" }.to_owned());
    }
    let detail = format!("by {}; {}", admin.caller.claims.sub, changes.join("; "));
    state
        .audit(
            Audit::new(EventKind::UserUpdated, &client.info).user(&updated.user.id).detail(detail),
        )
        .await;
    Ok(no_store(HttpResponse::Ok()).json(UserView::from(updated.user)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_whitespace_is_exactly_what_role_names_refuse() {
        let listed = |c: char| WHITESPACE.iter().any(|&(from, to)| (from..=to).contains(&c));
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(listed(c), c.is_whitespace(), "U+{:04X}", u32::from(c));
            if c.is_ascii() {
                let role = Role::parse(&format!("a{c}b"));
                assert_eq!(role.is_ok(), !c.is_whitespace(), "U+{:04X}", u32::from(c));
            }
        }
        let valid_role = |name: &str| Role::parse(name).is_ok();
        assert!(valid_role(&"é".repeat(64)) && !valid_role(&"é".repeat(65)), "chars, not bytes");
        assert!(valid_role(&"😀".repeat(64)) && !valid_role(&"😀".repeat(65)));
        assert!(!valid_role(""));
    }
}
