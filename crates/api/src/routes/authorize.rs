//! `GET /auth/authorize` and its pages (HTTP contract v3, "Sign-in for apps"): the
//! authorization endpoint of the code grant. The request is checked by the service
//! ([`authorize::check`]); the browser then signs in on the sign-in page, allows the client on
//! the consent page, and goes back to the client's redirect URI with a code.
//!
//! The pages are plain HTML forms that post back to `/auth/authorize` with the request's own
//! query, so every post is checked again as a new request would be. Each form carries a CSRF
//! token, the same random value as the `__Host-` CSRF cookie (`SameSite=Strict`): another site
//! can neither read it nor set it, so it cannot sign a browser in to an account of its own
//! (login CSRF) nor consent in the user's name. The pages load nothing, run no script, and
//! refuse to be framed.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_auth_service::authorize::{
    self, AuthorizationRequest, AuthorizePolicy, Parameters, Refusal,
};
use jwt_auth_service::code_grant::{self, SignedIn};
use jwt_auth_service::secret::SecretString;
use jwt_auth_service::sign_in::{Next, Progress, SIGN_IN_COOKIE, SignInSessions, next_step};
use jwt_auth_service::{ServiceError, audit::Audit};
use jwt_auth_store::{EventKind, ServiceClient};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::extract::{ClientContext, RawBody};
use crate::responses::ErrorBody;
use crate::routes::pages::secured;
use crate::state::AppState;

/// The pages' policy: nothing loaded, no script, no framing; forms post to this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The CSRF cookie, whose value each form repeats.
pub const CSRF_COOKIE: &str = "__Host-jwt-auth-csrf";

/// The longest CSRF token read (it is 43 characters).
const MAX_CSRF_BYTES: usize = 64;

/// The form of the pages.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct PageForm {
    /// The CSRF token of the page.
    pub csrf: Option<String>,
    /// `sign_in`, `allow` or `deny`.
    pub action: Option<String>,
    /// The email, on the sign-in page.
    pub username: Option<String>,
    /// The password, on the sign-in page.
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<SecretString>,
}

/// `GET /auth/authorize`: the authorization request (RFC 6749 §4.1.1, with PKCE).
#[utoipa::path(get, path = "/auth/authorize", tag = "oauth",
    params(
        ("response_type" = String, Query, description = "`code`"),
        ("client_id" = String, Query, description = "a client with redirect URIs"),
        ("redirect_uri" = String, Query, description = "one of the client's, matched exactly (any port on a loopback URI)"),
        ("code_challenge" = String, Query, description = "PKCE: the base64url SHA-256 of the verifier, 43 characters"),
        ("code_challenge_method" = String, Query, description = "`S256`"),
        ("scope" = Option<String>, Query, description = "space-separated: `openid`, `email`, `offline_access`"),
        ("state" = Option<String>, Query, description = "echoed back exactly"),
        ("nonce" = Option<String>, Query, description = "put in the ID token"),
        ("resource" = Option<String>, Query, description = "RFC 8707: `JWT_AUDIENCE` or one of `RESOURCES`; the access tokens' audience"),
        ("prompt" = Option<String>, Query, description = "`none`, `login` or `consent`"),
        ("max_age" = Option<String>, Query, description = "seconds since the last sign-in after which the user signs in again"),
        ("login_hint" = Option<String>, Query, description = "the email to fill in"),
    ),
    responses(
        (status = 200, description = "the sign-in or the consent page", content_type = "text/html"),
        (status = 302, description = "back to the redirect URI with `code`, `state` and `iss`, or with `error`, `state` and `iss`",
            headers(("Location" = String, description = "the redirect URI with the answer"))),
        (status = 400, description = "an unknown client or a redirect URI not registered for it: an error page, never a redirect", content_type = "text/html"),
        (status = 503, description = "the database is unreachable", content_type = "text/html",
            headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub async fn authorize(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let signed_in = signed_in(&state, &req).await;
    let step = match signed_in {
        Ok(signed_in) => proceed(&state, &req, signed_in, Progress::default()).await,
        Err(e) => Err(e),
    };
    step.unwrap_or_else(|e| failure_page(&e))
}

/// `POST /auth/authorize`: the sign-in and consent pages' forms, posted with the
/// authorization request's query.
#[utoipa::path(post, path = "/auth/authorize", tag = "oauth",
    request_body(content = PageForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the next page, or the sign-in page again when the email or the password is wrong", content_type = "text/html"),
        (status = 302, description = "back to the redirect URI with the answer",
            headers(("Location" = String, description = "the redirect URI with the answer"))),
        (status = 400, description = "an unknown client or redirect URI, or a malformed form", content_type = "text/html"),
        (status = 403, description = "the form's CSRF token is not the cookie's: nothing changed", content_type = "text/html"),
        (status = 413, description = "a body over 64 KiB", body = ErrorBody),
        (status = 415, description = "not a form (`application/x-www-form-urlencoded`)", content_type = "text/html"),
        (status = 429, description = "the sign-in page again: too many attempts", content_type = "text/html",
            headers(("Retry-After" = u64, description = "seconds to wait"))),
        (status = 503, description = "the database is unreachable", content_type = "text/html",
            headers(("Retry-After" = u64, description = "seconds to wait"))),
    ))]
pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    client: ClientContext,
    body: RawBody,
) -> HttpResponse {
    let form = match read_form(&req, &body.0) {
        Ok(form) => form,
        Err(e) => return failure_page(&e),
    };
    submitted(&state, &req, &client, form).await.unwrap_or_else(|e| failure_page(&e))
}

/// The pages' form: form-urlencoded, each field at most once.
fn read_form(req: &HttpRequest, body: &[u8]) -> Result<PageForm, ApiError> {
    let media = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let media = media.unwrap_or_default().split(';').next().unwrap_or_default().trim();
    if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(ApiError::UnsupportedMediaType("expected application/x-www-form-urlencoded"));
    }
    let mut form = PageForm::default();
    for (name, value) in url::form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "csrf" => &mut form.csrf,
            "action" => &mut form.action,
            "username" => &mut form.username,
            "password" => {
                if form.password.replace(SecretString::new(value.into_owned())).is_some() {
                    return Err(ApiError::MalformedBody(
                        "`password` is given more than once".into(),
                    ));
                }
                continue;
            }
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(ApiError::MalformedBody(format!("`{name}` is given more than once")));
        }
    }
    Ok(form)
}

async fn submitted(
    state: &AppState,
    req: &HttpRequest,
    client: &ClientContext,
    form: PageForm,
) -> Result<HttpResponse, ApiError> {
    if !csrf_matches(req, form.csrf.as_deref()) {
        return Ok(page(
            StatusCode::FORBIDDEN,
            "Sign-in expired",
            "<p>This form is not one this server gave to this browser, or it has expired. \
             Go back to the application and sign in again.</p>",
            None,
        ));
    }
    let mut signed_in = signed_in(state, req).await?;
    let mut progress = Progress::default();
    match form.action.as_deref() {
        Some("sign_in") => {
            let (Some(username), Some(password)) = (form.username, form.password) else {
                return Err(ApiError::MalformedBody(
                    "the email and the password are required".into(),
                ));
            };
            if let Err(answer) = checked(state, req).await? {
                return Ok(answer);
            }
            let grants = state.grants(client);
            let attempt = match grants.count_attempt() {
                Ok(()) => grants.check_password(&username, password).await,
                Err(e) => Err(e),
            };
            let user = match attempt {
                Ok(user) => user,
                Err(ServiceError::InvalidCredentials) => {
                    let note = "The email or the password is wrong.";
                    return Ok(sign_in_page(req, StatusCode::OK, note, &username, None));
                }
                Err(ServiceError::RateLimited { retry_after }) => {
                    let note = format!("Too many attempts: try again in {retry_after} seconds.");
                    let mut answer =
                        sign_in_page(req, StatusCode::TOO_MANY_REQUESTS, &note, &username, None);
                    answer.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
                    return Ok(answer);
                }
                Err(e) => return Err(e.into()),
            };
            let (token, who) =
                SignInSessions::new(state.instance()).start(&user.id, &client.info).await?;
            let event = Audit::new(EventKind::LoginSucceeded, &client.info);
            state.audit(event.user(&user.id).session(&who.session_id)).await;
            signed_in = Some(who);
            progress.just_signed_in = true;
            let mut answer = proceed(state, req, signed_in, progress).await?;
            answer
                .add_cookie(&sign_in_cookie(state, token.expose().to_owned()))
                .map_err(cookie_error)?;
            return Ok(answer);
        }
        Some("allow") => {
            let Some(who) = &signed_in else {
                return proceed(state, req, None, progress).await;
            };
            let request = match checked(state, req).await? {
                Ok((request, _)) => request,
                Err(answer) => return Ok(answer),
            };
            let before = state.store.consent(&who.user_id, &request.client_id).await?;
            let mut scopes: Vec<&str> = before
                .as_deref()
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .collect();
            for scope in &request.scopes {
                if !scopes.contains(&scope.as_str()) {
                    scopes.push(scope);
                }
            }
            state
                .store
                .record_consent(&who.user_id, &request.client_id, &scopes.join(" "), state.now())
                .await?;
            progress.just_consented = true;
        }
        Some("deny") => {
            let request = match checked(state, req).await? {
                Ok((request, _)) => request,
                Err(answer) => return Ok(answer),
            };
            return Ok(refuse(
                state,
                req,
                &request.redirect_uri,
                "access_denied",
                "the user refused",
                request.state.as_deref(),
            ));
        }
        _ => return Err(ApiError::MalformedBody("action must be sign_in, allow or deny".into())),
    }
    proceed(state, req, signed_in, progress).await
}

fn cookie_error(e: actix_web::error::HttpError) -> ApiError {
    ApiError::Internal(format!("a cookie: {e}"))
}

/// Who the browser's sign-in cookie says signed in, if it is valid.
async fn signed_in(state: &AppState, req: &HttpRequest) -> Result<Option<SignedIn>, ApiError> {
    let Some(cookie) = req.cookie(SIGN_IN_COOKIE) else { return Ok(None) };
    Ok(SignInSessions::new(state.instance()).check(cookie.value()).await?)
}

/// The request of `req`'s query, checked, with its client; or the answer that refuses it.
async fn checked(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Result<(AuthorizationRequest, ServiceClient), HttpResponse>, ApiError> {
    let pairs = url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned();
    let params = match Parameters::read(pairs) {
        Ok(params) => params,
        Err(refusal) => return Ok(Err(refused(state, req, refusal))),
    };
    let client = match params.client_id() {
        Some(id) if id.len() <= 256 => {
            state.clients.get(&state.store, state.sessions.revocations(), id).await?
        }
        _ => None,
    };
    match authorize::check(&params, client.as_ref(), &policy(state)) {
        Ok(request) => Ok(Ok((request, client.expect("a checked request has its client")))),
        Err(refusal) => Ok(Err(refused(state, req, refusal))),
    }
}

/// What the server offers beside a client's registration.
fn policy(state: &AppState) -> AuthorizePolicy {
    AuthorizePolicy {
        audience: state.config.audience.clone(),
        resources: state.config.resources.clone(),
        openid: authorize::is_openid_issuer(&state.config.issuer),
    }
}

/// The next step of the request of `req` for `signed_in`, after `progress`.
async fn proceed(
    state: &AppState,
    req: &HttpRequest,
    signed_in: Option<SignedIn>,
    progress: Progress,
) -> Result<HttpResponse, ApiError> {
    let (request, app) = match checked(state, req).await? {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    let allowed = match &signed_in {
        Some(who) if !app.first_party => state.store.consent(&who.user_id, &app.id).await?,
        _ => None,
    };
    let now = state.now();
    match next_step(&request, signed_in, app.first_party, allowed.as_deref(), progress, now) {
        Next::SignIn => {
            let hint = request.login_hint.clone().unwrap_or_default();
            Ok(sign_in_page(req, StatusCode::OK, "", &hint, Some(&app)))
        }
        Next::Consent => Ok(consent_page(req, &request, &app)),
        Next::Refuse(error) => {
            let why = match error {
                "login_required" => "the user is not signed in (prompt=none)",
                _ => "the user has not allowed this client these scopes (prompt=none)",
            };
            Ok(refuse(state, req, &request.redirect_uri, error, why, request.state.as_deref()))
        }
        Next::Code(who) => {
            let code = code_grant::issue_code(
                &state.instance(),
                &request,
                &who,
                &state.config.audience,
                now,
            )
            .await?;
            let issuer = state.config.issuer.as_str();
            let mut params = vec![("code", code.expose())];
            if let Some(s) = request.state.as_deref() {
                params.push(("state", s));
            }
            params.push(("iss", issuer));
            Ok(redirect(&code_grant::redirect_location(&request.redirect_uri, &params)))
        }
    }
}

/// The answer to a refused request: a page, or a redirect with the error.
fn refused(state: &AppState, req: &HttpRequest, refusal: Refusal) -> HttpResponse {
    match refusal {
        Refusal::Page(why) => page(
            StatusCode::BAD_REQUEST,
            "This sign-in request is not valid",
            &format!(
                "<p>The application sent a request this server cannot answer: {}.</p>\
                 <p>Nothing was sent back to it.</p>",
                escape(&why)
            ),
            None,
        ),
        Refusal::Redirect { redirect_uri, error, description, state: st } => {
            refuse(state, req, &redirect_uri, error, &description, st.as_deref())
        }
    }
}

/// Back to `redirect_uri` with `error`, `error_description`, `state` and `iss`.
fn refuse(
    state: &AppState,
    _req: &HttpRequest,
    redirect_uri: &str,
    error: &str,
    description: &str,
    request_state: Option<&str>,
) -> HttpResponse {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = request_state {
        params.push(("state", s));
    }
    params.push(("iss", state.config.issuer.as_str()));
    redirect(&code_grant::redirect_location(redirect_uri, &params))
}

pub(crate) fn redirect(location: &str) -> HttpResponse {
    let answer = HttpResponse::Found().insert_header((header::LOCATION, location)).finish();
    secured(answer, CONTENT_SECURITY_POLICY, "no-store")
}

/// The sign-in cookie, for the sign-in session's lifetime.
fn sign_in_cookie(state: &AppState, token: String) -> Cookie<'static> {
    let seconds = state.config.session_max_age.num_seconds();
    Cookie::build(SIGN_IN_COOKIE, token)
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(CookieDuration::seconds(seconds))
        .finish()
}

/// The CSRF token of `req`'s cookie, or a new one; and the cookie to set, if new.
/// Whether `presented` (a form's `csrf`) is the CSRF cookie's value, compared in constant time.
pub(crate) fn csrf_matches(req: &HttpRequest, presented: Option<&str>) -> bool {
    let cookie = req.cookie(CSRF_COOKIE);
    let expected = cookie.as_ref().map(|c| c.value()).filter(|v| v.len() <= MAX_CSRF_BYTES);
    let presented = presented.unwrap_or_default();
    let same = expected.is_some_and(|e| bool::from(e.as_bytes().ct_eq(presented.as_bytes())));
    same && !presented.is_empty()
}

pub(crate) fn csrf_token(req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    if let Some(cookie) = req.cookie(CSRF_COOKIE)
        && cookie.value().len() == 43
        && URL_SAFE_NO_PAD.decode(cookie.value()).is_ok()
    {
        return (cookie.value().to_owned(), None);
    }
    let mut bytes = [0u8; 32];
    let token = match aws_lc_rs::rand::fill(&mut bytes) {
        Ok(()) => URL_SAFE_NO_PAD.encode(bytes),
        // No randomness: an empty token, which no form matches.
        Err(_) => String::new(),
    };
    let cookie = Cookie::build(CSRF_COOKIE, token.clone())
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path("/")
        .finish();
    (token, Some(cookie))
}

/// A form that posts back to this request, with its CSRF token.
fn form_start(req: &HttpRequest, csrf: &str) -> String {
    form_to(&format!("/auth/authorize?{}", req.query_string()), csrf)
}

/// A form that posts to `action`, with the CSRF token `csrf`.
pub(crate) fn form_to(action: &str, csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(action),
        escape(csrf)
    )
}

fn sign_in_page(
    req: &HttpRequest,
    status: StatusCode,
    note: &str,
    username: &str,
    client: Option<&ServiceClient>,
) -> HttpResponse {
    let (csrf, cookie) = csrf_token(req);
    let to = client.map(|c| format!(" to continue to <strong>{}</strong>", escape(&c.name)));
    let note = match note {
        "" => String::new(),
        note => format!("<p class=\"note\" role=\"alert\">{}</p>", escape(note)),
    };
    let body = format!(
        "<p>Sign in{}.</p>{note}{}\
         <label>Email <input type=\"email\" name=\"username\" value=\"{}\" autocomplete=\"username\" required autofocus></label>\
         <label>Password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\" name=\"action\" value=\"sign_in\">Sign in</button></form>",
        to.unwrap_or_default(),
        form_start(req, &csrf),
        escape(username),
    );
    page(status, "Sign in", &body, cookie)
}

fn consent_page(
    req: &HttpRequest,
    request: &AuthorizationRequest,
    client: &ServiceClient,
) -> HttpResponse {
    let (csrf, cookie) = csrf_token(req);
    let mut scopes = String::new();
    for scope in &request.scopes {
        let what = match scope.as_str() {
            "openid" => "know who you are (your account id)",
            "email" => "see your email address",
            "offline_access" => "stay signed in while you are away",
            other => other,
        };
        scopes.push_str(&format!("<li><code>{}</code>: {}</li>", escape(scope), escape(what)));
    }
    let body = format!(
        "<p><strong>{}</strong> asks to sign you in and to use your account on your behalf.</p>\
         <ul>{scopes}</ul>{}\
         <button type=\"submit\" name=\"action\" value=\"allow\">Allow</button> \
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form>",
        escape(&client.name),
        form_start(req, &csrf),
    );
    page(StatusCode::OK, "Allow access", &body, cookie)
}

/// An HTML page with the pages' headers, and a cookie to set.
pub(crate) fn page(
    status: StatusCode,
    title: &str,
    body: &str,
    cookie: Option<Cookie<'static>>,
) -> HttpResponse {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{0}</title><link rel=\"stylesheet\" href=\"/auth/sign-in.css\"></head>\
         <body><main><h1>{0}</h1>{1}</main></body></html>",
        escape(title),
        body
    );
    let mut answer = HttpResponse::build(status);
    if let Some(cookie) = cookie {
        answer.cookie(cookie);
    }
    let answer = answer.content_type("text/html; charset=utf-8").body(html);
    secured(answer, CONTENT_SECURITY_POLICY, "no-store")
}

/// The page of a failure: 503 while the database is unreachable, 400 for a malformed form,
/// 500 otherwise (logged).
fn failure_page(e: &ApiError) -> HttpResponse {
    let status = actix_web::ResponseError::status_code(e);
    let text = match status {
        StatusCode::SERVICE_UNAVAILABLE => {
            "The service is unavailable for a moment. Try again shortly.".to_owned()
        }
        s if s.is_client_error() => e.to_string(),
        _ => {
            tracing::error!(error = %e, "authorization failed");
            "Something went wrong on the server.".to_owned()
        }
    };
    let mut answer = page(status, "Sign-in failed", &format!("<p>{}</p>", escape(&text)), None);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        answer.headers_mut().insert(header::RETRY_AFTER, 1.into());
    }
    answer
}

/// `GET /auth/sign-in.css`: the pages' style.
pub async fn style() -> HttpResponse {
    let answer = HttpResponse::Ok().content_type("text/css; charset=utf-8").body(STYLE);
    secured(answer, CONTENT_SECURITY_POLICY, "public, max-age=3600")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:24rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px;\
box-shadow:0 1px 4px rgba(0,0,0,.15)}h1{font-size:1.4rem;margin-top:0}\
label{display:block;margin:.8rem 0}input[type=email],input[type=password]{display:block;\
width:100%;box-sizing:border-box;padding:.5rem;margin-top:.3rem;font-size:1rem}\
button{padding:.5rem 1.2rem;font-size:1rem;margin-top:.6rem}.note{color:#a40000}";

/// HTML-escapes `text` for element content and quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
