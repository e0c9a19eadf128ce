//! The administrators' endpoints beyond users and keys (role `admin`), for the console and for
//! scripts: ending one session of a user, and the security-event trail. Every answer carries
//! `Cache-Control: no-store`: admin data is not kept by browsers or proxies.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use jwt_auth_service::audit;
use jwt_auth_service::page::Page;
use jwt_auth_store::EventKind;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::{Admin, ClientContext, RequireRole};
use crate::responses::{BearerRefused, ErrorBody, InsufficientRole, Unavailable};
use crate::routes::no_store;
use crate::routes::users::administered;
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
    let users = administered(&state, &admin, &client);
    users.revoke_session(&user_id, &session_id, state.now()).await?;
    Ok(no_store(HttpResponse::NoContent()).finish())
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
    let kind = kind.as_deref().map(audit::recorded_kind).transpose()?;
    let page = Page::new(limit.unwrap_or(100), MAX_EVENTS, 0)?;
    let recorded = audit::events(&state.store, user, kind, page).await?;
    let events = recorded.into_iter().map(EventView::from).collect();
    Ok(no_store(HttpResponse::Ok()).json(EventList { events }))
}

impl From<jwt_auth_store::RecordedEvent> for EventView {
    fn from(recorded: jwt_auth_store::RecordedEvent) -> Self {
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
    }
}
