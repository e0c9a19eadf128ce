//! The JSON endpoints of `/auth`: registration, login, refresh, logout and logout everywhere.
//! Each handler extracts, makes one call into the core or the store, and answers.

use actix_web::{HttpResponse, web};
use jwt_auth_service::users::Users;
use jwt_auth_store::EventKind;
use jwt_core::RevokeReason;

use crate::audit::Audit;
use crate::error::ApiError;
use crate::extract::{
    Authenticated, BearerToken, ClientContext, Json, PresentedRefreshToken, TokenProof,
};
use crate::responses::{
    BearerRefused, BrowserTokenIssued, CsrfRequired, ErrorBody, JsonBodyRefusals, RateLimited,
    RefreshRequest, Unavailable,
};
use crate::routes::bodies::{CookieQuery, LoginBody, RegisterBody, UserBody};
use crate::routes::token_answer::{clear_cookie, token_response};
use crate::state::AppState;
use jwt_auth_service::passwords::check_password;

#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterBody,
    responses(
        (status = 201, body = UserBody, description = "the new user, with the role `user`"),
        (status = 403, body = ErrorBody, description = "`registration_closed`: registration is off (`ALLOW_REGISTRATION`)"),
        (status = 409, body = ErrorBody, description = "`email_taken`: the email is registered already"),
        JsonBodyRefusals, Unavailable,
    ))]
pub async fn register(
    state: web::Data<AppState>,
    client: ClientContext,
    Json(body): Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    if !state.config.allow_registration {
        return Err(ApiError::RegistrationClosed);
    }
    let RegisterBody { email, password } = body;
    let email = jwt_auth_service::email::checked(&email)?;
    check_password(&password, true).map_err(ApiError::InvalidField)?;
    let users = Users::signing_up(state.instance(), &client.info);
    let user = users.add(email, password.expose_owned(), false, state.now()).await?;
    Ok(HttpResponse::Created().json(UserBody::from(user)))
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginBody,
    params(("cookie" = Option<bool>, Query, description = "`true`: the refresh token is set as the cookie `refresh_token` (`HttpOnly; SameSite=Strict; Path=/auth`) instead of being in the body")),
    responses(
        BrowserTokenIssued,
        (status = 401, body = ErrorBody, description = "`invalid_credentials`: an unknown user, a wrong password or a disabled account, alike",
            headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"jwt-auth\"`"))),
        JsonBodyRefusals, RateLimited, Unavailable,
    ))]
pub async fn login(
    state: web::Data<AppState>,
    mut client: ClientContext,
    proof: TokenProof,
    query: web::Query<CookieQuery>,
    Json(body): Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    client.info.proven_key = proof.0;
    let grants = state.grants(&client);
    grants.count_attempt()?;
    let pair = grants.password(&body.username, body.password).await?;
    Ok(token_response(&state, &pair, query.cookie))
}

/// Rotates a refresh token: the answer is a new pair in the same session, and the token
/// presented is retired (presented again within `REFRESH_REUSE_GRACE` it gets a fresh pair;
/// later, the whole session is revoked).
///
/// Browser mode: no body at all, the refresh token in the cookie `refresh_token` and the
/// header `X-Requested-With` (any value, a CSRF guard); the new refresh token is then set in
/// the cookie again. Without a body and without the cookie: 400.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth",
    request_body(content = RefreshRequest, description = "the refresh token; in browser mode no body (see above)"),
    params(("cookie" = Option<bool>, Query, description = "`true`: the new refresh token is set as the cookie `refresh_token` instead of being in the body")),
    responses(
        BrowserTokenIssued,
        (status = 401, body = ErrorBody, description = "`invalid_token`, `token_expired`, `token_revoked`, `refresh_token_reused` or `session_expired`",
            headers(("WWW-Authenticate" = String, description = "RFC 6750 §3, with `error` and `error_description`"))),
        CsrfRequired, JsonBodyRefusals, Unavailable,
    ))]
pub async fn refresh(
    state: web::Data<AppState>,
    mut client: ClientContext,
    proof: TokenProof,
    query: web::Query<CookieQuery>,
    presented: PresentedRefreshToken,
) -> Result<HttpResponse, ApiError> {
    client.info.proven_key = proof.0;
    let pair = state.grants(&client).refresh(&presented.token).await?;
    Ok(token_response(&state, &pair, query.cookie || presented.from_cookie))
}

/// Ends the caller's session: its access and refresh tokens all stop working. Idempotent.
///
/// The session is the bearer token's; without a bearer token, the refresh token's: in the
/// body `{refresh_token}`, or in browser mode (no body) in the cookie `refresh_token` with the
/// header `X-Requested-With`. A body that is sent must be a valid one, bearer token or not.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security((), ("bearer" = [])),
    request_body(content = RefreshRequest, description = "optional; without a bearer token and without the cookie, the refresh token of the session"),
    responses(
        (status = 204, description = "the session is ended (or was already)",
            headers(("Set-Cookie" = String, description = "removes the refresh cookie"))),
        (status = 401, body = ErrorBody, description = "`missing_token` with neither a bearer nor a refresh token; `invalid_token`, `token_expired` or `token_revoked` for a refused one",
            headers(("WWW-Authenticate" = String, description = "RFC 6750 §3: `Bearer realm=\"jwt-auth\"`, with `error` and `error_description` when a token was presented"))),
        CsrfRequired, JsonBodyRefusals, Unavailable,
    ))]
pub async fn logout(
    state: web::Data<AppState>,
    client: ClientContext,
    bearer: Result<BearerToken, ApiError>,
    presented: Result<PresentedRefreshToken, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, session_id) = session_to_end(&state, bearer, presented)?;
    state.sessions.end(&session_id, RevokeReason::Logout).await?;
    state
        .audit(Audit::new(EventKind::Logout, &client.info).user(&user_id).session(&session_id))
        .await;
    Ok(HttpResponse::NoContent().cookie(clear_cookie(&state)).finish())
}

/// The user and session a logout ends: the bearer token's, or else the presented refresh
/// token's. Logging out twice is not an error: a token that is valid but for its revocation
/// may end its (already ended) session again, which changes nothing.
fn session_to_end(
    state: &AppState,
    bearer: Result<BearerToken, ApiError>,
    presented: Result<PresentedRefreshToken, ApiError>,
) -> Result<(String, String), ApiError> {
    let (user_id, session_id) = match bearer {
        Ok(token) => {
            let claims = state.tokens().verify_access_ignoring_revocations(token.expose())?;
            token.check_presentation(&claims)?;
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
    Ok((user_id, session_id))
}

/// Ends every session of the caller, and voids every token issued to the caller before now.
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "every session is ended",
            headers(("Set-Cookie" = String, description = "removes the refresh cookie"))),
        BearerRefused, Unavailable,
    ))]
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
