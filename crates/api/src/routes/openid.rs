//! OpenID Connect endpoints beside the code grant: UserInfo (OpenID Connect Core §5.3) and
//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).

use actix_web::cookie::Cookie;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use jwt_auth_service::code_grant::redirect_location;
use jwt_auth_service::openid;
use jwt_auth_service::redirect::RedirectUri;
use jwt_auth_service::sign_in::{SIGN_IN_COOKIE, SignInSessions};

use crate::error::ApiError;
use crate::extract::Authenticated;
use crate::extract::RawBody;
use crate::responses::{BearerRefused, ErrorBody, Unavailable};
use crate::routes::authorize::{csrf_matches, csrf_token, escape, form_to, page, redirect};
use crate::routes::no_store;
use crate::state::AppState;

/// The UserInfo answer.
#[allow(
    dead_code,
    reason = "a schema of the OpenAPI document: the handler writes this answer itself"
)]
#[derive(utoipa::ToSchema)]
pub struct UserInfo {
    /// The user id.
    pub sub: String,
    /// The email, for a token with scope `email`.
    pub email: Option<String>,
    /// Whether the server verified the email (it does not: `false`), with `email`.
    pub email_verified: Option<bool>,
    /// The roles.
    pub roles: Vec<String>,
}

/// `GET /auth/userinfo`: who the token's user is, for a token granted scope `openid`.
#[utoipa::path(get, path = "/auth/userinfo", tag = "oauth", security(("bearer" = [])),
    responses(
        (status = 200, body = UserInfo, description = "the user: `sub` and `roles`, and `email` with `email_verified` for scope `email`"),
        (status = 403, body = ErrorBody, description = "`insufficient_scope`: the token was not granted `openid`",
            headers(("WWW-Authenticate" = String, description = "RFC 6750 §3.1: `error=\"insufficient_scope\"`"))),
        (status = 404, body = ErrorBody, description = "`not_found`: the user no longer exists"),
        BearerRefused, Unavailable,
    ))]
pub async fn userinfo(
    state: web::Data<AppState>,
    caller: Authenticated,
) -> Result<HttpResponse, ApiError> {
    if !caller.claims.has_scope("openid") {
        return Err(ApiError::InsufficientScope("openid"));
    }
    let Some(user) = state.users.get(&state.store, &caller.claims.sub).await? else {
        return Err(ApiError::NotFound("the user no longer exists".into()));
    };
    let scope = caller.claims.scope.as_deref().unwrap_or_default();
    Ok(no_store(HttpResponse::Ok()).json(openid::user_info(&user, scope)))
}

/// The parameters of `GET /auth/end-session`.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EndSession {
    /// An ID token this server issued to the client, expired or not: whose sign-in to end.
    id_token_hint: Option<String>,
    /// Where to send the browser afterwards: registered for the client.
    post_logout_redirect_uri: Option<String>,
    /// The client, when no `id_token_hint` names it.
    client_id: Option<String>,
    /// Echoed back to the post-logout redirect URI.
    state: Option<String>,
}

impl EndSession {
    /// The parameters of `query`, each at most once and at most 8 KiB.
    fn read(query: &str) -> Result<Self, ApiError> {
        let mut params = EndSession::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "id_token_hint" => &mut params.id_token_hint,
                "post_logout_redirect_uri" => &mut params.post_logout_redirect_uri,
                "client_id" => &mut params.client_id,
                "state" => &mut params.state,
                _ => continue,
            };
            if value.len() > 8 * 1024 {
                return Err(ApiError::MalformedBody(format!("`{name}` is too long")));
            }
            if slot.replace(value.into_owned()).is_some() {
                return Err(ApiError::MalformedBody(format!("`{name}` is given more than once")));
            }
        }
        Ok(params)
    }
}

/// The form of the sign-out confirmation (read by hand: the CSRF token alone).
#[allow(dead_code, reason = "a schema of the OpenAPI document: the handler reads the form itself")]
#[derive(utoipa::ToSchema)]
pub struct SignOutForm {
    /// The CSRF token of the page.
    csrf: Option<String>,
}

/// `GET /auth/end-session`: ends the browser's sign-in session and the sessions it started,
/// then goes back to a registered post-logout redirect URI, or shows a signed-out page.
/// Without an `id_token_hint`, a signed-in browser is asked to confirm first (a form that
/// posts back here), so that no other site can sign the user out with a link.
#[utoipa::path(get, path = "/auth/end-session", tag = "oauth", params(EndSession),
    responses(
        (status = 200, description = "the signed-out page, or the confirmation page", content_type = "text/html"),
        (status = 302, description = "to the post-logout redirect URI, with `state`",
            headers(("Location" = String, description = "the post-logout redirect URI"))),
        (status = 400, description = "an `id_token_hint` this server did not issue, or a post-logout redirect URI not registered for the client: nothing ended, no redirect", content_type = "text/html"),
        (status = 503, description = "the database is unreachable", content_type = "text/html",
            headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub async fn end_session(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let answer = match EndSession::read(req.query_string()) {
        Ok(query) => ended(&state, &req, query, false).await,
        Err(e) => Err(e),
    };
    answer.unwrap_or_else(|e| failure(&e))
}

/// `POST /auth/end-session`: the confirmation of a sign-out without an `id_token_hint`.
#[utoipa::path(post, path = "/auth/end-session", tag = "oauth", params(EndSession),
    request_body(content = SignOutForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the signed-out page", content_type = "text/html"),
        (status = 302, description = "to the post-logout redirect URI, with `state`",
            headers(("Location" = String, description = "the post-logout redirect URI"))),
        (status = 400, description = "a parameter as for `GET`, or a malformed form", content_type = "text/html"),
        (status = 403, description = "the form's CSRF token is not the cookie's: nothing ended", content_type = "text/html"),
        (status = 413, description = "a body over 64 KiB", body = ErrorBody),
        (status = 503, description = "the database is unreachable", content_type = "text/html",
            headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub async fn confirm_end_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: RawBody,
) -> HttpResponse {
    let csrf = url::form_urlencoded::parse(&body.0)
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.into_owned());
    if !csrf_matches(&req, csrf.as_deref()) {
        let body = "<p>This form is not one this server gave to this browser. Nothing changed.</p>";
        return page(StatusCode::FORBIDDEN, "Sign-out not confirmed", body, None);
    }
    let answer = match EndSession::read(req.query_string()) {
        Ok(query) => ended(&state, &req, query, true).await,
        Err(e) => Err(e),
    };
    answer.unwrap_or_else(|e| failure(&e))
}

/// The page of a failure.
fn failure(e: &ApiError) -> HttpResponse {
    let status = actix_web::ResponseError::status_code(e);
    let text = match status {
        StatusCode::SERVICE_UNAVAILABLE => "The service is unavailable for a moment.".into(),
        _ => e.to_string(),
    };
    let body = format!("<p>{}</p>", escape(&text));
    let mut answer = page(status, "Sign-out failed", &body, None);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        answer.headers_mut().insert(header::RETRY_AFTER, 1.into());
    }
    answer
}

async fn ended(
    state: &AppState,
    req: &HttpRequest,
    query: EndSession,
    confirmed: bool,
) -> Result<HttpResponse, ApiError> {
    let refuse = |why: &str| ApiError::MalformedBody(why.to_owned());
    let hint = match &query.id_token_hint {
        Some(token) => Some(
            state
                .tokens()
                .verify_id_token_hint(token)
                .map_err(|_| refuse("id_token_hint is not an ID token of this server"))?,
        ),
        None => None,
    };
    let client_id = match (&hint, &query.client_id) {
        (Some(hint), Some(id)) if hint.aud != *id => {
            return Err(refuse("client_id is not the audience of id_token_hint"));
        }
        (Some(hint), _) => Some(hint.aud.clone()),
        (None, id) => id.clone(),
    };
    // Where to go afterwards is checked before anything ends: never a redirect elsewhere.
    let target = match &query.post_logout_redirect_uri {
        None => None,
        Some(uri) => {
            let Some(client_id) = &client_id else {
                return Err(refuse("post_logout_redirect_uri needs id_token_hint or client_id"));
            };
            let client = state.store.client(client_id).await?;
            let registered = client.is_some_and(|c| {
                c.post_logout_redirect_uris
                    .iter()
                    .filter_map(|r| RedirectUri::parse(r).ok())
                    .any(|r| r.matches(uri))
            });
            if !registered {
                return Err(refuse("post_logout_redirect_uri is not registered for this client"));
            }
            Some(uri.clone())
        }
    };
    let sessions = SignInSessions::new(state.instance());
    let browser = match req.cookie(SIGN_IN_COOKIE) {
        Some(cookie) => sessions.check(cookie.value()).await?,
        None => None,
    };
    // Without a hint, nothing proves the request comes from an application the user signed
    // in to: the user confirms.
    if hint.is_none() && browser.is_some() && !confirmed {
        let (csrf, cookie) = csrf_token(req);
        let action = format!("/auth/end-session?{}", req.query_string());
        let body = format!(
            "<p>Sign out of this server, and of the applications you signed in to through it?</p>\
             {}<button type=\"submit\">Sign out</button></form>",
            form_to(&action, &csrf)
        );
        return Ok(page(StatusCode::OK, "Sign out", &body, cookie));
    }
    // The browser's own sign-in ends; so does the hint's, which its ID token names (a valid
    // hint proves the client held that sign-in's token).
    if let Some(who) = &browser {
        sessions.end(&who.session_id).await?;
    }
    if let Some(hint) = &hint
        && browser.as_ref().is_none_or(|who| who.session_id != hint.sid)
    {
        sessions.end(&hint.sid).await?;
    }
    let mut answer = match target {
        Some(uri) => {
            let params: Vec<(&str, &str)> =
                query.state.as_deref().map(|s| vec![("state", s)]).unwrap_or_default();
            let location = if params.is_empty() { uri } else { redirect_location(&uri, &params) };
            redirect(&location)
        }
        None => page(StatusCode::OK, "Signed out", "<p>You are signed out.</p>", None),
    };
    let mut removal =
        Cookie::build(SIGN_IN_COOKIE, "").path("/").secure(true).http_only(true).finish();
    removal.make_removal();
    answer.add_cookie(&removal).map_err(|e| ApiError::Internal(format!("a cookie: {e}")))?;
    Ok(answer)
}
