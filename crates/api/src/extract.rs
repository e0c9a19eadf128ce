//! Extractors that handlers declare to say what they need: [`Authenticated`] for any valid
//! access token, [`RequireRole`] for a role, [`RawBody`] for a body read as bytes. No handler
//! reads the `Authorization` header or checks a role by hand.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::FutureExt;
use futures_util::future::Map;
use jwt_core::AccessClaims;

use crate::error::ApiError;
use crate::state::AppState;

/// The caller, proven by a valid, unrevoked access token.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub claims: AccessClaims,
}

/// The bearer token of the request (RFC 6750 §2.1); `MissingToken` when there is none.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let value = req.headers().get(AUTHORIZATION).ok_or(ApiError::MissingToken)?.as_bytes();
    let space = value.iter().position(|b| *b == b' ').ok_or(ApiError::MissingToken)?;
    let (scheme, token) = (&value[..space], &value[space + 1..]);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Err(ApiError::MissingToken);
    }
    // A bearer token was presented: from here on, what is wrong with it is `invalid_token`.
    let token = std::str::from_utf8(token)
        .ok()
        .filter(|token| token.is_ascii())
        .ok_or(ApiError::Token(jwt_core::Error::Malformed("the bearer token is not ASCII")))?
        .trim();
    if token.is_empty() {
        return Err(ApiError::Token(jwt_core::Error::Malformed("the bearer token is empty")));
    }
    Ok(token)
}

fn authenticate(req: &HttpRequest) -> Result<Authenticated, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("the app is built with AppState (startup::configure)");
    let token = bearer_token(req)?;
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
        let ip = crate::client::client_ip(req, &state.config.trusted_proxies);
        tracing::warn!(
            reason = %e,
            user_id = claim("sub"),
            session_id = claim("sid"),
            ip = ip.map(|ip| ip.to_string()),
            "rejected access token"
        );
        ApiError::Token(e)
    })?;
    Ok(Authenticated { claims })
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

/// The request body as bytes (at most `startup::MAX_BODY_BYTES`), for handlers that take a
/// JSON body or a cookie. Unlike `web::Bytes`, its failures are [`ApiError`]s, so an oversized
/// body gets the JSON error format like every other.
pub struct RawBody(pub web::Bytes);

type BytesFuture = <web::Bytes as FromRequest>::Future;

fn raw_body(read: Result<web::Bytes, actix_web::Error>) -> Result<RawBody, ApiError> {
    read.map(RawBody).map_err(|e| match e.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => ApiError::PayloadTooLarge(crate::startup::MAX_BODY_BYTES),
        _ => ApiError::BadRequest(format!("could not read the body: {e}")),
    })
}

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future =
        Map<BytesFuture, fn(Result<web::Bytes, actix_web::Error>) -> Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        web::Bytes::from_request(req, payload).map(raw_body)
    }
}
