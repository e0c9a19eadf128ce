//! The JSON endpoints of `/auth`: registration, login, refresh, logout and logout everywhere.
//! Each handler extracts, makes one call into the core or the store, and answers.

use actix_web::{HttpResponse, web};
use jwt_auth_store::{EventKind, NewUser, PasswordHash};
use jwt_core::RevokeReason;

use crate::audit::Audit;
use crate::error::ApiError;
use crate::extract::{Authenticated, BearerToken, ClientContext, Json, PresentedRefreshToken};
use crate::grants::{count_attempt, password_login, rotate};
use crate::routes::body::{CookieQuery, LoginBody, RegisterBody, UserBody, check_password};
use crate::routes::pair::{clear_cookie, token_response};
use crate::state::AppState;

#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterBody,
    responses((status = 201, body = UserBody), (status = 403, body = crate::openapi::ErrorBody, description = "registration_closed"),
        (status = 409, body = crate::openapi::ErrorBody, description = "email_taken")))]
pub async fn register(
    state: web::Data<AppState>,
    client: ClientContext,
    Json(body): Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    if !state.config.allow_registration {
        return Err(ApiError::RegistrationClosed);
    }
    let RegisterBody { email, password } = body;
    let email = crate::email::checked(&email)?;
    check_password(&password, true).map_err(ApiError::InvalidField)?;
    let hash = state
        .passwords
        .hash(password.expose_owned())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let new_user =
        NewUser { email, password_hash: PasswordHash::new(hash), roles: vec!["user".into()] };
    let user = state.store.create_user(&new_user, state.now()).await?;
    state.audit(Audit::new(EventKind::UserCreated, &client.info).user(&user.id)).await;
    Ok(HttpResponse::Created().json(UserBody::from(user)))
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginBody,
    params(("cookie" = Option<bool>, Query, description = "put the refresh token in an HttpOnly cookie")),
    responses((status = 200, body = crate::openapi::TokenPairBody), (status = 401, body = crate::openapi::ErrorBody, description = "invalid_credentials")))]
pub async fn login(
    state: web::Data<AppState>,
    client: ClientContext,
    query: web::Query<CookieQuery>,
    Json(body): Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    count_attempt(&state, &client)?;
    let pair = password_login(&state, &client, &body.username, body.password).await?;
    Ok(token_response(&state, &pair, query.cookie))
}

#[utoipa::path(post, path = "/auth/refresh", tag = "auth",
    request_body(content = crate::openapi::RefreshRequest, description = "or no body, with the refresh_token cookie and X-Requested-With"),
    params(("cookie" = Option<bool>, Query, description = "put the new refresh token in an HttpOnly cookie")),
    responses((status = 200, body = crate::openapi::TokenPairBody), (status = 401, body = crate::openapi::ErrorBody,
        description = "invalid_token, token_expired, token_revoked, refresh_token_reused, session_expired"),
        (status = 403, body = crate::openapi::ErrorBody, description = "csrf_required: the refresh cookie without X-Requested-With")))]
pub async fn refresh(
    state: web::Data<AppState>,
    client: ClientContext,
    query: web::Query<CookieQuery>,
    presented: PresentedRefreshToken,
) -> Result<HttpResponse, ApiError> {
    let pair = rotate(&state, &client, &presented.token).await?;
    Ok(token_response(&state, &pair, query.cookie || presented.from_cookie))
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    request_body(content = crate::openapi::RefreshRequest, description = "without a bearer token: the refresh token, in the body or the cookie (with X-Requested-With)"),
    responses((status = 204), (status = 401, body = crate::openapi::ErrorBody),
        (status = 403, body = crate::openapi::ErrorBody, description = "csrf_required: the refresh cookie without X-Requested-With")))]
pub async fn logout(
    state: web::Data<AppState>,
    client: ClientContext,
    bearer: Result<BearerToken, ApiError>,
    presented: Result<PresentedRefreshToken, ApiError>,
) -> Result<HttpResponse, ApiError> {
    // Logging out twice is not an error: a token that is valid but for its revocation may end
    // its (already ended) session again, which changes nothing.
    let (user_id, session_id) = match bearer {
        Ok(token) => {
            let claims = state.tokens().verify_access(token.expose())?;
            // The bearer token names the session, but a body that was sent must still be one
            // this endpoint reads: 400, 413, 415 and 422 hold with a bearer token too.
            if let Err(
                e @ (ApiError::MalformedBody(_)
                | ApiError::PayloadTooLarge(_)
                | ApiError::UnsupportedMediaType(_)
                | ApiError::InvalidField(_)),
            ) = presented
            {
                return Err(e);
            }
            (claims.sub, claims.sid)
        }
        Err(ApiError::MissingToken) => {
            let presented = presented.map_err(|e| match e {
                ApiError::MissingRefreshToken => ApiError::MissingToken,
                other => other,
            })?;
            let claims = state.tokens().verify_refresh(presented.token.expose())?;
            (claims.sub, claims.sid)
        }
        Err(e) => return Err(e),
    };
    state.sessions.end(&session_id, RevokeReason::Logout).await?;
    state
        .audit(Audit::new(EventKind::Logout, &client.info).user(&user_id).session(&session_id))
        .await;
    Ok(HttpResponse::NoContent().cookie(clear_cookie(&state)).finish())
}

#[utoipa::path(post, path = "/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = crate::openapi::ErrorBody)))]
pub async fn logout_all(
    state: web::Data<AppState>,
    client: ClientContext,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let claims = caller.claims;
    state.sessions.end_all(&claims.sub, RevokeReason::LogoutAll).await?;
    state
        .audit(
            Audit::new(EventKind::LogoutAll, &client.info).user(&claims.sub).session(&claims.sid),
        )
        .await;
    Ok(HttpResponse::NoContent().cookie(clear_cookie(&state)).finish())
}
