//! The `/auth` endpoints: registration, login, the OAuth 2.0 token endpoint, refresh,
//! logout, revocation (RFC 7009) and introspection (RFC 7662). Each handler extracts, makes
//! one call into the core or the store, and maps the result to a response.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::cookie::{Cookie, CookieBuilder, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse, web};
use jwt_auth_store::{EventKind, NewUser, PasswordHash, RefreshTokenState, SecurityEvent};
use jwt_core::{
    ClientInfo, Error as CoreError, RefreshClaims, RevokeReason, SessionStore, Subject, TokenPair,
};
use serde::{Deserialize, Serialize};

use crate::client::{client_info, client_ip};
use crate::error::{ApiError, no_store};
use crate::extract::{Admin, Authenticated, RawBody, RequireRole, bearer_token};
use crate::metrics::OutcomeLabels;
use crate::passwords::{HashError, MAX_PASSWORD_BYTES, MIN_PASSWORD_BYTES};
use crate::state::AppState;

const REFRESH_COOKIE: &str = "refresh_token";

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterBody {
    pub email: String,
    pub password: String,
}

/// A user as `POST /auth/register` and `GET /api/me` show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserBody {
    pub id: String,
    pub email: String,
    pub roles: Vec<String>,
}

impl From<jwt_auth_store::User> for UserBody {
    fn from(user: jwt_auth_store::User) -> Self {
        Self { id: user.id, email: user.email, roles: user.roles }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Deserialize)]
pub struct CookieQuery {
    #[serde(default)]
    pub cookie: bool,
}

/// A plausible email: one `@`, something on each side, no spaces, at most 254 bytes.
fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn check_password_length(password: &str) -> Result<(), ApiError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::Unprocessable(format!(
            "password must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterBody,
    responses((status = 201, body = UserBody), (status = 403, body = crate::openapi::ErrorBody, description = "registration closed"),
        (status = 409, body = crate::openapi::ErrorBody, description = "email taken"), (status = 422, body = crate::openapi::ErrorBody)))]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    if !state.config.allow_registration {
        return Err(ApiError::RegistrationClosed);
    }
    let RegisterBody { email, password } = body.into_inner();
    let email = email.trim().to_owned();
    if !valid_email(&email) {
        return Err(ApiError::Unprocessable("email is not a valid address".into()));
    }
    check_password_length(&password)?;
    if password.len() < MIN_PASSWORD_BYTES {
        return Err(ApiError::Unprocessable(format!(
            "password must be at least {MIN_PASSWORD_BYTES} bytes"
        )));
    }
    let hash = state.passwords.hash(password).await.map_err(|e| match e {
        HashError::Busy => ApiError::Unavailable,
        e => {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::Internal
        }
    })?;
    let new_user =
        NewUser { email, password_hash: PasswordHash::new(hash), roles: vec!["user".into()] };
    let user = state.store.create_user(&new_user, state.now()).await?;
    record(
        &state,
        EventKind::UserCreated,
        Some(&user.id),
        None,
        client_info(&req, &state.config.trusted_proxies),
        None,
    )
    .await;
    Ok(HttpResponse::Created().json(UserBody::from(user)))
}

/// Why a password login failed, before it becomes an HTTP answer.
enum LoginFailure {
    Throttled(u64),
    Api(ApiError),
}

impl From<ApiError> for LoginFailure {
    fn from(e: ApiError) -> Self {
        LoginFailure::Api(e)
    }
}

/// Counts an attempt on the login or token endpoint against the client IP's quota
/// (`LOGIN_RATE_LIMIT`); returns the IP.
fn count_attempt(state: &AppState, req: &HttpRequest) -> Result<IpAddr, ApiError> {
    let ip =
        client_ip(req, &state.config.trusted_proxies).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    state.throttle.attempt(ip).map_err(|retry_after| ApiError::RateLimited { retry_after })?;
    Ok(ip)
}

/// The password grant shared by `/auth/login` and `/auth/token`, for a client whose attempt
/// [`count_attempt`] has already counted.
async fn password_login(
    state: &AppState,
    req: &HttpRequest,
    ip: IpAddr,
    username: &str,
    password: String,
) -> Result<TokenPair, LoginFailure> {
    state.throttle.check_pair(username, ip).map_err(LoginFailure::Throttled)?;
    check_password_length(&password)?;
    let client = client_info(req, &state.config.trusted_proxies);
    // A NUL cannot be in any stored email (PostgreSQL text refuses it): no such user, and no
    // query that would fail on it. The dummy verification below still runs.
    let credentials = if username.contains('\0') {
        None
    } else {
        state.store.user_by_email(username).await.map_err(ApiError::from)?
    };
    state.metrics.hash_queue_depth.set(state.passwords.queue_depth() as i64);
    let phc = credentials.as_ref().map(|c| c.password_hash.expose().to_owned());
    let matches = state.passwords.verify(password, phc).await.map_err(|e| match e {
        HashError::Busy => ApiError::Unavailable,
        e => {
            tracing::error!(error = %e, "password verification failed");
            ApiError::Internal
        }
    })?;
    let user = match credentials {
        Some(c) if matches && !c.user.disabled => c.user,
        other => {
            let user_id = other.map(|c| c.user.id);
            state.throttle.failed(username, ip);
            state.metrics.logins.get_or_create(&OutcomeLabels { outcome: "failed" }).inc();
            tracing::warn!(user_id = user_id.as_deref(), ip = client.ip.as_deref(), "login failed");
            record(state, EventKind::LoginFailed, user_id.as_deref(), None, client, None).await;
            return Err(ApiError::InvalidCredentials.into());
        }
    };
    state.throttle.succeeded(username, ip);
    let subject = Subject { id: user.id.clone(), roles: user.roles, email: Some(user.email) };
    let pair = state.sessions.start(&subject, client.clone()).await.map_err(ApiError::from)?;
    state.metrics.logins.get_or_create(&OutcomeLabels { outcome: "ok" }).inc();
    tracing::info!(user_id = %user.id, session_id = %pair.session_id, ip = client.ip.as_deref(), "login ok");
    record(state, EventKind::LoginSucceeded, Some(&user.id), Some(&pair.session_id), client, None)
        .await;
    Ok(pair)
}

#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginBody,
    params(("cookie" = Option<bool>, Query, description = "put the refresh token in an HttpOnly cookie")),
    responses((status = 200, body = crate::openapi::TokenPairBody), (status = 401, body = crate::openapi::ErrorBody, description = "invalid_credentials"),
        (status = 429, body = crate::openapi::ErrorBody, description = "rate_limited, with Retry-After")))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<CookieQuery>,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let ip = count_attempt(&state, &req)?;
    let LoginBody { username, password } = body.into_inner();
    match password_login(&state, &req, ip, &username, password).await {
        Ok(pair) => Ok(token_response(&state, &pair, query.cookie)),
        Err(LoginFailure::Throttled(retry_after)) => Err(ApiError::RateLimited { retry_after }),
        Err(LoginFailure::Api(e)) => Err(e),
    }
}

#[derive(Serialize)]
struct CookieTokenBody<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    refresh_expires_in: i64,
}

/// 200 with the pair; in cookie mode the refresh token goes into an `HttpOnly` cookie instead
/// of the body.
fn token_response(state: &AppState, pair: &TokenPair, cookie: bool) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    if !cookie {
        return response.json(pair);
    }
    let refresh = refresh_cookie(state, pair.refresh_token.expose().to_owned())
        .max_age(CookieDuration::seconds(pair.refresh_expires_in))
        .finish();
    response.cookie(refresh).json(CookieTokenBody {
        access_token: pair.access_token.expose(),
        token_type: pair.token_type,
        expires_in: pair.expires_in,
        refresh_expires_in: pair.refresh_expires_in,
    })
}

/// The refresh cookie with its fixed attributes: `HttpOnly; Secure; SameSite=Strict;
/// Path=/auth` (`Secure` unless `COOKIE_SECURE` is off).
fn refresh_cookie(state: &AppState, value: String) -> CookieBuilder<'static> {
    Cookie::build(REFRESH_COOKIE, value)
        .http_only(true)
        .secure(state.config.cookie_secure)
        .same_site(SameSite::Strict)
        .path("/auth")
}

fn clear_cookie(state: &AppState) -> Cookie<'static> {
    let mut cookie = refresh_cookie(state, String::new()).finish();
    cookie.make_removal();
    cookie
}

#[derive(Debug, Deserialize)]
struct RefreshBody {
    refresh_token: Option<String>,
}

/// The refresh token of a request: the JSON body's, or else the cookie's, which is accepted
/// only with `X-Requested-With` (a CSRF guard: cross-site forms cannot set it).
fn presented_refresh_token(req: &HttpRequest, body: &web::Bytes) -> Result<String, ApiError> {
    if !body.is_empty() {
        let is_json =
            req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType("expected application/json".into()));
        }
        let parsed: RefreshBody = crate::startup::parse_json(body)?;
        if let Some(token) = parsed.refresh_token {
            return Ok(token);
        }
    }
    let cookie = req.cookie(REFRESH_COOKIE).ok_or_else(|| {
        ApiError::BadRequest("refresh_token is required in the body or the cookie".into())
    })?;
    if !req.headers().contains_key("x-requested-with") {
        return Err(ApiError::BadRequest(
            "the refresh cookie is accepted only with the X-Requested-With header".into(),
        ));
    }
    Ok(cookie.value().to_owned())
}

/// Runs a refresh and logs, counts and records what happened.
async fn rotate(state: &AppState, req: &HttpRequest, token: &str) -> Result<TokenPair, ApiError> {
    let client = client_info(req, &state.config.trusted_proxies);
    match state.sessions.refresh(token, client.clone()).await {
        Ok(pair) => {
            state.metrics.refreshes.get_or_create(&OutcomeLabels { outcome: "ok" }).inc();
            Ok(pair)
        }
        Err(CoreError::RefreshReused(details)) => {
            state.metrics.refreshes.get_or_create(&OutcomeLabels { outcome: "reused" }).inc();
            state.metrics.reuse_detections.inc();
            state.metrics.revocations.inc();
            tracing::warn!(
                session_id = %details.session_id,
                user_id = %details.user_id,
                seconds_since_rotation = details.seconds_since_rotation(),
                replayer_ip = client.ip.as_deref(),
                replayer_user_agent = client.user_agent.as_deref(),
                rotated_by_ip = details.rotated_by.ip.as_deref(),
                rotated_by_user_agent = details.rotated_by.user_agent.as_deref(),
                "refresh token reuse detected; session revoked"
            );
            let detail = format!(
                "replayed {} s after rotation; rotated by ip={} ua={}",
                details.seconds_since_rotation(),
                details.rotated_by.ip.as_deref().unwrap_or("-"),
                details.rotated_by.user_agent.as_deref().unwrap_or("-"),
            );
            record(
                state,
                EventKind::RefreshReuseDetected,
                Some(&details.user_id),
                Some(&details.session_id),
                client,
                Some(detail),
            )
            .await;
            Err(ApiError::Token(CoreError::RefreshReused(details)))
        }
        Err(e) => {
            state.metrics.refreshes.get_or_create(&OutcomeLabels { outcome: "rejected" }).inc();
            tracing::warn!(reason = %e, ip = client.ip.as_deref(), "refresh rejected");
            Err(ApiError::from(e))
        }
    }
}

#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body(content = crate::openapi::RefreshRequest, description = "or the refresh_token cookie with X-Requested-With"),
    params(("cookie" = Option<bool>, Query, description = "put the new refresh token in an HttpOnly cookie")),
    responses((status = 200, body = crate::openapi::TokenPairBody), (status = 401, body = crate::openapi::ErrorBody,
        description = "invalid_token, token_expired, token_revoked, refresh_token_reused, session_expired")))]
pub async fn refresh(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<CookieQuery>,
    RawBody(body): RawBody,
) -> Result<HttpResponse, ApiError> {
    let token = presented_refresh_token(&req, &body)?;
    let pair = rotate(&state, &req, &token).await?;
    Ok(token_response(&state, &pair, query.cookie || req.cookie(REFRESH_COOKIE).is_some()))
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    request_body(content = crate::openapi::RefreshRequest, description = "without a bearer token: the refresh token, in the body or the cookie (with X-Requested-With)"),
    responses((status = 204), (status = 401, body = crate::openapi::ErrorBody)))]
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    RawBody(body): RawBody,
) -> Result<HttpResponse, ApiError> {
    // Logging out twice is not an error: a token that is valid but for its revocation may end
    // its (already ended) session again, which changes nothing.
    let (user_id, session_id) = match bearer_token(&req) {
        Ok(token) => {
            let claims = state.tokens().verify_access(token).map_err(ApiError::Token)?;
            (claims.sub, claims.sid)
        }
        Err(ApiError::MissingToken) => {
            let token = presented_refresh_token(&req, &body).map_err(|_| ApiError::MissingToken)?;
            let claims = state.tokens().verify_refresh(&token).map_err(ApiError::Token)?;
            (claims.sub, claims.sid)
        }
        Err(e) => return Err(e),
    };
    state.sessions.end(&session_id, RevokeReason::Logout).await?;
    state.metrics.revocations.inc();
    let client = client_info(&req, &state.config.trusted_proxies);
    tracing::info!(%user_id, %session_id, "logout");
    record(&state, EventKind::Logout, Some(&user_id), Some(&session_id), client, None).await;
    Ok(HttpResponse::NoContent().cookie(clear_cookie(&state)).finish())
}

#[utoipa::path(post, path = "/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = crate::openapi::ErrorBody)))]
pub async fn logout_all(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let claims = caller.claims;
    state.sessions.end_all(&claims.sub, RevokeReason::LogoutAll).await?;
    state.metrics.revocations.inc();
    let client = client_info(&req, &state.config.trusted_proxies);
    tracing::info!(user_id = %claims.sub, "logout everywhere");
    record(&state, EventKind::LogoutAll, Some(&claims.sub), Some(&claims.sid), client, None).await;
    Ok(HttpResponse::NoContent().cookie(clear_cookie(&state)).finish())
}

/// An OAuth error body (RFC 6749 §5.2), status 400.
fn oauth_error(error: &'static str, description: impl Into<String>) -> HttpResponse {
    crate::error::oauth_error(StatusCode::BAD_REQUEST, error, description)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
}

/// `POST /auth/token`: the password and refresh-token grants of RFC 6749.
#[utoipa::path(post, path = "/auth/token", tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = crate::openapi::TokenPairBody), (status = 400, body = crate::openapi::OAuthErrorBody),
        (status = 429, body = crate::openapi::ErrorBody)))]
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, ApiError> {
    let ip = count_attempt(&state, &req)?;
    let form = form.into_inner();
    match form.grant_type.as_deref() {
        None => Ok(oauth_error("invalid_request", "grant_type is required")),
        Some("password") => {
            let (Some(username), Some(password)) = (form.username, form.password) else {
                return Ok(oauth_error("invalid_request", "username and password are required"));
            };
            match password_login(&state, &req, ip, &username, password).await {
                Ok(pair) => Ok(token_response(&state, &pair, false)),
                Err(LoginFailure::Throttled(retry_after)) => {
                    Err(ApiError::RateLimited { retry_after })
                }
                Err(LoginFailure::Api(ApiError::InvalidCredentials)) => {
                    Ok(oauth_error("invalid_grant", "invalid username or password"))
                }
                Err(LoginFailure::Api(ApiError::Unprocessable(msg))) => {
                    Ok(oauth_error("invalid_request", msg))
                }
                Err(LoginFailure::Api(e)) => Err(e),
            }
        }
        Some("refresh_token") => {
            let Some(token) = form.refresh_token else {
                return Ok(oauth_error("invalid_request", "refresh_token is required"));
            };
            match rotate(&state, &req, &token).await {
                Ok(pair) => Ok(token_response(&state, &pair, false)),
                Err(ApiError::Token(e)) if e.is_token_rejection() => {
                    Ok(oauth_error("invalid_grant", e.to_string()))
                }
                Err(e) => Err(e),
            }
        }
        Some(_) => Ok(oauth_error("unsupported_grant_type", "use password or refresh_token")),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TokenParam {
    token: Option<String>,
}

/// `POST /auth/revoke` (RFC 7009): ends the session of a valid access or refresh token; 200
/// whatever the token.
#[utoipa::path(post, path = "/auth/revoke", tag = "oauth",
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "revoked, or the token was unknown or invalid"), (status = 400, body = crate::openapi::OAuthErrorBody)))]
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<TokenParam>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = form.into_inner().token else {
        return Ok(oauth_error("invalid_request", "token is required"));
    };
    let tokens = state.tokens();
    let owner = match tokens.verify_refresh(&token) {
        Ok(claims) => Some((claims.sub, claims.sid)),
        Err(_) => tokens.verify_access(&token).ok().map(|claims| (claims.sub, claims.sid)),
    };
    if let Some((user_id, session_id)) = owner {
        state.sessions.end(&session_id, RevokeReason::TokenRevocation).await?;
        state.metrics.revocations.inc();
        let client = client_info(&req, &state.config.trusted_proxies);
        tracing::info!(%user_id, %session_id, "token revoked");
        record(&state, EventKind::TokenRevoked, Some(&user_id), Some(&session_id), client, None)
            .await;
    }
    let mut response = HttpResponse::Ok();
    no_store(&mut response);
    Ok(response.finish())
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<Vec<String>>,
}

impl Introspection {
    /// The answer for a valid token, without `roles`.
    fn active(
        token_type: &'static str,
        sub: String,
        sid: String,
        jti: String,
        exp: i64,
        iat: i64,
    ) -> Self {
        Self {
            active: true,
            sub: Some(sub),
            exp: Some(exp),
            iat: Some(iat),
            sid: Some(sid),
            jti: Some(jti),
            token_type: Some(token_type),
            roles: None,
        }
    }
}

/// Whether presenting this (validly signed) refresh token would get a pair: its session is
/// live, and the token is not rotated yet or was rotated within the reuse grace. After the
/// grace, presenting it would revoke the session as reuse.
async fn refresh_token_usable(state: &AppState, c: &RefreshClaims) -> Result<bool, ApiError> {
    if state.sessions.revocations().is_revoked(&c.sid, &c.sub, c.iat) {
        return Ok(false);
    }
    let now = state.now();
    let session = state.store.session(&c.sid).await?;
    if !session.is_some_and(|s| s.revoked_at.is_none() && s.expires_at > now) {
        return Ok(false);
    }
    Ok(match state.store.refresh_token(&c.jti, &c.sid).await? {
        Some(RefreshTokenState::Current) => true,
        Some(RefreshTokenState::Retired { rotated_at }) => {
            now - rotated_at < state.config.refresh_reuse_grace
        }
        None => false,
    })
}

/// `POST /auth/introspect` (RFC 7662), for administrators.
#[utoipa::path(post, path = "/auth/introspect", tag = "oauth", security(("bearer" = [])),
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Introspection), (status = 401, body = crate::openapi::ErrorBody), (status = 403, body = crate::openapi::ErrorBody)))]
pub async fn introspect(
    state: web::Data<AppState>,
    _admin: RequireRole<Admin>,
    form: web::Form<TokenParam>,
) -> Result<HttpResponse, ApiError> {
    let Some(token) = form.into_inner().token else {
        return Ok(oauth_error("invalid_request", "token is required"));
    };
    let answer = match state.sessions.authenticate(&token) {
        Ok(c) => Introspection {
            roles: Some(c.roles),
            ..Introspection::active("access_token", c.sub, c.sid, c.jti, c.exp, c.iat)
        },
        Err(_) => match state.tokens().verify_refresh(&token) {
            Ok(c) if refresh_token_usable(&state, &c).await? => {
                Introspection::active("refresh_token", c.sub, c.sid, c.jti, c.exp, c.iat)
            }
            _ => Introspection::default(),
        },
    };
    let mut response = HttpResponse::build(StatusCode::OK);
    no_store(&mut response);
    Ok(response.json(answer))
}

/// Appends to the audit trail; a failure to record is logged, never turned into an error for
/// the client, whose request has already had its effect.
pub async fn record(
    state: &AppState,
    kind: EventKind,
    user_id: Option<&str>,
    session_id: Option<&str>,
    client: ClientInfo,
    detail: Option<String>,
) {
    let event = SecurityEvent {
        kind,
        at: state.now(),
        user_id: user_id.map(str::to_owned),
        session_id: session_id.map(str::to_owned),
        client,
        detail,
    };
    if let Err(e) = state.store.record_event(&event).await {
        tracing::error!(error = %e, kind = %kind, "could not record security event");
    }
}
