//! Extractors that handlers declare to say what they need: [`Authenticated`] for any valid
//! access token, [`RequireRole`] for a role, [`BearerToken`] for a presented bearer token,
//! [`PresentedRefreshToken`] for a refresh token from the body or the cookie (with its CSRF
//! rule), [`ClientContext`] for who is calling, and [`Json`] for a JSON body. No handler reads a
//! header or checks a role by hand.
//!
//! Bearer tokens are parsed here rather than with `actix-web-httpauth`, whose `Bearer` parser
//! matches the scheme case-sensitively (RFC 7235 §2.1 makes it case-insensitive) and folds "no
//! token" and "a token that is no token" into one error, where RFC 6750 §3 answers them
//! differently.

use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::FutureExt;
use futures_util::future::LocalBoxFuture;
use jwt_auth_service::dpop::ProofTarget;
use jwt_core::{AccessClaims, ClientInfo, Confirmation, TokenScheme};
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::ApiError;
use crate::state::AppState;
use jwt_auth_service::secret::SecretString;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The name of the refresh-token cookie of browser clients.
pub const REFRESH_COOKIE: &str = "refresh_token";

fn app_state(req: &HttpRequest) -> &AppState {
    req.app_data::<web::Data<AppState>>()
        .expect("the app is built with AppState (startup::configure)")
}

/// An access token as presented (RFC 6750 §2.1, or RFC 9449 §7.1 with the `DPoP` scheme), not
/// yet verified.
pub struct BearerToken {
    token: SecretString,
    scheme: TokenScheme,
    req: HttpRequest,
}

impl BearerToken {
    pub fn expose(&self) -> &str {
        self.token.expose()
    }

    /// Checks how the token was presented, once its claims are verified: a token bound to a
    /// key only as DPoP with a proof of it, any other only as a bearer token.
    pub fn check_presentation(&self, claims: &AccessClaims) -> Result<(), ApiError> {
        check_presentation(&self.req, self.scheme, self.expose(), claims)
    }
}

impl FromRequest for BearerToken {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(presented_token(req).map(|(scheme, token)| BearerToken {
            token: SecretString::new(token),
            scheme,
            req: req.clone(),
        }))
    }
}

/// The caller, proven by a valid, unrevoked access token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub claims: AccessClaims,
}

/// The URL a client addressed this request to, as a DPoP proof's `htu` names it: the public
/// base URL (`PUBLIC_URL`, or the one the request shows) and the path.
fn request_url(req: &HttpRequest, state: &AppState) -> String {
    format!("{}{}", crate::caller::public_base(req, &state.config), req.path())
}

/// The request's DPoP proof, if it has one `DPoP` header.
fn dpop_proof(req: &HttpRequest) -> Result<Option<&str>, jwt_core::Error> {
    jwt_core::dpop_proof(req.headers().get_all("dpop").map(|value| value.as_bytes()))
}

/// A refused DPoP proof or presentation as answered: a fault of the server (`Unavailable`) as
/// such, any other refusal by `answer` with its error and, for `use_dpop_nonce`, a fresh nonce.
fn proof_refusal(
    state: &AppState,
    error: jwt_core::Error,
    answer: fn(jwt_core::Error, Option<String>) -> ApiError,
) -> ApiError {
    match error {
        error @ jwt_core::Error::Unavailable(_) => ApiError::from(error),
        error => {
            let nonce = matches!(error, jwt_core::Error::UseDpopNonce(_))
                .then(|| state.dpop.nonce())
                .flatten();
            answer(error, nonce)
        }
    }
}

/// The access token of the request and its scheme; `MissingToken` when there is none.
fn presented_token(req: &HttpRequest) -> Result<(TokenScheme, &str), ApiError> {
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    match jwt_core::presented_token(header) {
        Ok(Some(presented)) => Ok(presented),
        Ok(None) => Err(ApiError::MissingToken),
        // A DPoP-scheme header that holds no token is answered with the DPoP challenge.
        Err(error) if is_dpop_scheme(header) => Err(ApiError::DpopToken { error, nonce: None }),
        Err(error) => Err(ApiError::Token(error)),
    }
}

fn is_dpop_scheme(header: Option<&[u8]>) -> bool {
    header.is_some_and(|h| h.len() >= 5 && h[..5].eq_ignore_ascii_case(b"dpop "))
}

fn authenticate(req: &HttpRequest) -> Result<Authenticated, ApiError> {
    let state = app_state(req);
    let (scheme, token) = presented_token(req)?;
    // Until the revocation set is loaded, a revoked token would pass: fail closed.
    if !state.is_ready() {
        return Err(ApiError::Unavailable);
    }
    let claims = state.sessions.authenticate(token).map_err(|e| {
        // These come only after the signature was verified, so the claims are genuine and
        // name who the token was for; for any other refusal they would be the sender's say.
        let signed = matches!(
            e,
            jwt_core::Error::Expired
                | jwt_core::Error::Revoked
                | jwt_core::Error::SessionRevoked
                | jwt_core::Error::InactiveSubject
        );
        let claims = signed.then(|| jwt_core::dangerous::decode_unverified(token).ok()).flatten();
        let claim =
            |name: &str| claims.as_ref().and_then(|(_, c)| c[name].as_str()).map(str::to_owned);
        let ip = crate::caller::client_ip(req, &state.config.trusted_proxies);
        tracing::warn!(
            reason = %e,
            user_id = claim("sub"),
            session_id = claim("sid"),
            ip = ip.map(|ip| ip.to_string()),
            "rejected access token"
        );
        match scheme {
            TokenScheme::Dpop if e.is_token_rejection() => {
                ApiError::DpopToken { error: e, nonce: None }
            }
            _ => ApiError::Token(e),
        }
    })?;
    check_presentation(req, scheme, token, &claims)?;
    Ok(Authenticated { claims })
}

/// The DPoP side of authenticating `token`, whose `claims` are verified (see
/// [`BearerToken::check_presentation`]).
fn check_presentation(
    req: &HttpRequest,
    scheme: TokenScheme,
    token: &str,
    claims: &AccessClaims,
) -> Result<(), ApiError> {
    // A bearer token bound to no key: no DPoP check, and no URL to build.
    if scheme == TokenScheme::Bearer && claims.cnf.is_none() {
        return Ok(());
    }
    let state = app_state(req);
    let dpop_refused = |error: jwt_core::Error| {
        let ip = crate::caller::client_ip(req, &state.config.trusted_proxies);
        tracing::warn!(
            reason = %error,
            user_id = %claims.sub,
            session_id = %claims.sid,
            ip = ip.map(|ip| ip.to_string()),
            "rejected DPoP presentation"
        );
        proof_refusal(state, error, |error, nonce| ApiError::DpopToken { error, nonce })
    };
    let proof = dpop_proof(req).map_err(dpop_refused)?;
    let url = request_url(req, state);
    let target = ProofTarget { method: req.method().as_str(), url: &url };
    state
        .dpop
        .resource_request(scheme, claims.cnf.as_ref(), proof, target, token)
        .map_err(dpop_refused)
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

/// A role an endpoint can require.
pub trait Role {
    /// The role's name in the `roles` claim.
    const NAME: &'static str;
}

/// The `admin` role.
pub struct Admin;

impl Role for Admin {
    const NAME: &'static str = "admin";
}

/// The caller, authenticated and holding role `R` (401 without a valid token, 403 without the
/// role).
pub struct RequireRole<R: Role> {
    pub caller: Authenticated,
    role: PhantomData<R>,
}

impl<R: Role> FromRequest for RequireRole<R> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).and_then(|caller| {
            if caller.claims.has_role(R::NAME) {
                Ok(Self { caller, role: PhantomData })
            } else {
                Err(ApiError::InsufficientRole(R::NAME))
            }
        }))
    }
}

/// The DPoP key a token request proved with its proof (RFC 9449 §5), if it carried one: the
/// tokens it gets are bound to it. A refused proof is 400 `invalid_dpop_proof` (or
/// `use_dpop_nonce`, with a fresh nonce).
pub struct TokenProof(pub Option<Confirmation>);

fn token_proof(req: &HttpRequest) -> Result<TokenProof, ApiError> {
    let state = app_state(req);
    let refused = |error: jwt_core::Error| {
        proof_refusal(state, error, |error, nonce| ApiError::ProofRefused { error, nonce })
    };
    let Some(proof) = dpop_proof(req).map_err(refused)? else { return Ok(TokenProof(None)) };
    let url = request_url(req, state);
    let target = ProofTarget { method: req.method().as_str(), url: &url };
    let key = state.dpop.token_request(proof, target).map_err(refused)?;
    Ok(TokenProof(Some(key)))
}

impl FromRequest for TokenProof {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(token_proof(req))
    }
}

/// Who is calling: the client IP (the peer, or the forwarded address from a trusted proxy)
/// and the user agent, as recorded with sessions and security events.
pub struct ClientContext {
    /// The client IP; `0.0.0.0` when the peer address is unknown.
    pub ip: IpAddr,
    pub info: ClientInfo,
}

impl FromRequest for ClientContext {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let trusted = &app_state(req).config.trusted_proxies;
        let ip =
            crate::caller::client_ip(req, trusted).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        ready(Ok(ClientContext { ip, info: crate::caller::client_info(req, trusted) }))
    }
}

/// The request body as bytes (at most [`MAX_BODY_BYTES`]). Unlike `web::Bytes`, its
/// failures are [`ApiError`]s, so an oversized body gets the JSON error format like every
/// other.
pub struct RawBody(pub web::Bytes);

fn raw_body(read: Result<web::Bytes, actix_web::Error>) -> Result<RawBody, ApiError> {
    read.map(RawBody).map_err(|e| match e.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => ApiError::PayloadTooLarge(MAX_BODY_BYTES),
        _ => ApiError::MalformedBody(format!("could not read the body: {e}")),
    })
}

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        web::Bytes::from_request(req, payload).map(raw_body).boxed_local()
    }
}

/// Whether the request says its body is JSON (`application/json`, any parameters).
fn is_json(req: &HttpRequest) -> bool {
    req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// Parses a JSON body in the contract's order: a body that is not exactly one JSON value
/// (trailing characters included) is 400, checked before any field; a well-formed body with
/// a missing or invalid field is 422, and so is one that is not an object, as every body of
/// this API is (serde would otherwise read a struct from an array of its fields in order).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde_json skips the strings of an ignored value without checking their UTF-8: checked
    // here, or a body with invalid UTF-8 in a string would pass as one JSON value (RFC 8259
    // §8.1: JSON text is UTF-8).
    let body = std::str::from_utf8(body)
        .map_err(|e| ApiError::MalformedBody(format!("malformed JSON: not UTF-8: {e}")))?;
    serde_json::from_str::<IgnoredAny>(body)
        .map_err(|e| ApiError::MalformedBody(format!("malformed JSON: {e}")))?;
    if body.bytes().find(|b| !b.is_ascii_whitespace()) != Some(b'{') {
        return Err(ApiError::InvalidField("the body must be a JSON object".into()));
    }
    serde_json::from_str(body).map_err(|e| ApiError::InvalidField(e.to_string()))
}

/// A JSON body of type `T`: 415 without `Content-Type: application/json`, 413 over the size
/// limit, 400 unless it is exactly one JSON value, 422 for invalid fields.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let body = RawBody::from_request(req, payload);
        async move {
            if !json {
                return Err(ApiError::UnsupportedMediaType("application/json"));
            }
            let RawBody(body) = body.await?;
            parse_json(&body).map(Json)
        }
        .boxed_local()
    }
}

#[derive(serde::Deserialize)]
struct RefreshBody {
    refresh_token: Option<SecretString>,
}

/// A refresh token presented by the client: from the JSON body `{"refresh_token"}`, or else
/// from the refresh cookie, which is accepted only with `X-Requested-With` (a CSRF guard:
/// a cross-site form cannot set it). Refusals: 415/413/400/422 for a body that is not the
/// JSON it should be, 403 `csrf_required` for the cookie without the header, and
/// [`ApiError::MissingRefreshToken`] when there is neither.
pub struct PresentedRefreshToken {
    pub token: SecretString,
    /// Whether it came from the cookie (the answer then sets the next one in the cookie).
    pub from_cookie: bool,
}

fn presented_refresh_token(
    req: &HttpRequest,
    body: Result<RawBody, ApiError>,
) -> Result<PresentedRefreshToken, ApiError> {
    let RawBody(body) = body?;
    if !body.is_empty() {
        if !is_json(req) {
            return Err(ApiError::UnsupportedMediaType("application/json"));
        }
        let parsed: RefreshBody = parse_json(&body)?;
        match parsed.refresh_token {
            Some(token) => return Ok(PresentedRefreshToken { token, from_cookie: false }),
            None if req.cookie(REFRESH_COOKIE).is_none() => {
                return Err(ApiError::InvalidField("missing field `refresh_token`".into()));
            }
            None => {}
        }
    }
    let cookie = req.cookie(REFRESH_COOKIE).ok_or(ApiError::MissingRefreshToken)?;
    if !req.headers().contains_key("x-requested-with") {
        return Err(ApiError::CsrfRequired);
    }
    Ok(PresentedRefreshToken { token: SecretString::new(cookie.value()), from_cookie: true })
}

impl FromRequest for PresentedRefreshToken {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = RawBody::from_request(&req, payload);
        async move { presented_refresh_token(&req, body.await) }.boxed_local()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Login {
        username: String,
    }

    /// Found by fuzzing (`fuzz/`, target `bodies`): invalid UTF-8 inside a JSON string passed
    /// as one JSON value, so it was 422 in a field that is read, and accepted in one that is
    /// ignored, where the contract says 400.
    #[test]
    fn invalid_utf8_in_a_string_is_malformed_json() {
        let read = b"{\"username\":\"correct \xa3orie battery\"}";
        assert!(matches!(parse_json::<Login>(read), Err(ApiError::MalformedBody(_))));
        let ignored = b"{\"username\":\"alice\",\"x\":\"\xff\"}";
        assert!(matches!(parse_json::<Login>(ignored), Err(ApiError::MalformedBody(_))));
        let valid = parse_json::<Login>("{\"username\":\"\u{e9}\"}".as_bytes()).expect("UTF-8");
        assert_eq!(valid.username, "\u{e9}");
    }

    /// Found by fuzzing (`bodies`): a number beyond an f64's range is well-formed JSON (RFC
    /// 8259 §6 leaves the range to the parser), so it is never 400: 422 where it is the body
    /// or in a field that is read, and ignored in a field that is not.
    #[test]
    fn a_number_beyond_f64_is_well_formed_json() {
        let whole = b"2e355555555555555555555555555555555555555";
        assert!(matches!(parse_json::<Login>(whole), Err(ApiError::InvalidField(_))));
        let read = b"{\"username\":1e400}";
        assert!(matches!(parse_json::<Login>(read), Err(ApiError::InvalidField(_))));
        let ignored = parse_json::<Login>(b"{\"username\":\"alice\",\"x\":-1e400}");
        assert_eq!(ignored.expect("accepted").username, "alice");
        // Still 400 when the rest is malformed.
        let malformed = b"{\"username\":\"alice\",\"x\":1e400";
        assert!(matches!(parse_json::<Login>(malformed), Err(ApiError::MalformedBody(_))));
    }
}
