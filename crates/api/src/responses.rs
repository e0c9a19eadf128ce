//! The answers many endpoints share, as OpenAPI response sets: the error bodies, the token
//! bodies, and the refusals (a body that cannot be read, a missing token, the database away)
//! that each handler's annotation names.
#![allow(
    dead_code,
    reason = "answers of the OpenAPI document: the handlers and the error types write them"
)]

use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

/// The error body of every non-OAuth endpoint.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `invalid_token`.
    pub error: String,
    /// Text for a person.
    pub message: String,
}

/// The error body of the OAuth endpoints (RFC 6749 §5.2).
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_grant`, `unsupported_grant_type` or `invalid_client`.
    pub error: String,
    /// Text for a person.
    pub error_description: String,
}

/// A token pair. In cookie mode `refresh_token` is absent and set as a cookie instead.
#[derive(Serialize, ToSchema)]
pub struct TokenPairBody {
    pub access_token: String,
    #[schema(required = false)]
    pub refresh_token: String,
    /// `Bearer`, or `DPoP` when the request carried a DPoP proof: the tokens are then bound
    /// to its key (RFC 9449 §5).
    #[schema(pattern = "^(Bearer|DPoP)$")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
}

/// The body of `POST /auth/refresh`, and of `POST /auth/logout` without a bearer token.
#[derive(Serialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// The token of a service client (client credentials grant): no refresh token.
#[derive(Serialize, ToSchema)]
pub struct ClientTokenBody {
    pub access_token: String,
    /// `Bearer`, or `DPoP` when the request carried a DPoP proof: the tokens are then bound
    /// to its key (RFC 9449 §5).
    #[schema(pattern = "^(Bearer|DPoP)$")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

/// What `/auth/token` answers: a token pair, or a service client's token.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TokenEndpointBody {
    Pair(TokenPairBody),
    Client(ClientTokenBody),
}

/// A token pair from `/auth/token`, or a client's token for the client credentials grant.
#[derive(IntoResponses)]
#[response(status = 200, headers(
    ("Cache-Control" = String, description = "`no-store`"),
    ("Pragma" = String, description = "`no-cache`")))]
pub struct TokenIssued(pub TokenEndpointBody);

/// `invalid_client`: client authentication failed (client credentials grant).
#[derive(IntoResponses)]
#[response(status = 401, headers(
    ("WWW-Authenticate" = String, description = "`Basic realm=\"jwt-auth\"`"),
    ("Cache-Control" = String, description = "`no-store`")))]
pub struct InvalidClient(pub OAuthErrorBody);

/// A token pair from `/auth/login` or `/auth/refresh`; in cookie mode (`?cookie=true`, or a
/// refresh presented in the cookie) the refresh token is in the cookie instead of the body.
#[derive(IntoResponses)]
#[response(status = 200, headers(
    ("Cache-Control" = String, description = "`no-store`"),
    ("Pragma" = String, description = "`no-cache`"),
    ("Set-Cookie" = String, description = "in cookie mode: `refresh_token`, `HttpOnly; SameSite=Strict; Path=/auth`")))]
pub struct BrowserTokenIssued(pub TokenPairBody);

/// `csrf_required`: the refresh cookie without `X-Requested-With`; nothing changes.
#[derive(IntoResponses)]
#[response(status = 403)]
pub struct CsrfRequired(pub ErrorBody);

/// The refusals of an endpoint that reads a JSON body, in the order they are checked.
#[derive(IntoResponses)]
pub enum JsonBodyRefusals {
    /// `invalid_request`: the body is not exactly one JSON value (trailing characters
    /// included); checked before any field. At `/auth/login` and `/auth/refresh`,
    /// `invalid_dpop_proof` for a refused DPoP proof (`use_dpop_nonce`, with a `DPoP-Nonce`
    /// header, when `DPOP_NONCE` requires a nonce), checked first.
    #[response(status = 400)]
    Malformed(ErrorBody),
    /// `payload_too_large`: the body is over 64 KiB.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// `unsupported_media_type`: the body is not `application/json`.
    #[response(status = 415)]
    WrongMediaType(ErrorBody),
    /// `invalid_field`: a well-formed body (or a query parameter) with a missing or invalid
    /// field; the message says which and why.
    #[response(status = 422)]
    InvalidField(ErrorBody),
}

/// The refusals of an OAuth endpoint's form body that are not 400, in RFC 6749's format.
#[derive(IntoResponses)]
pub enum FormBodyRefusals {
    /// `invalid_request`: the body is over 64 KiB.
    #[response(status = 413, headers(("Cache-Control" = String, description = "`no-store`")))]
    TooLarge(OAuthErrorBody),
    /// `invalid_request`: the body is not `application/x-www-form-urlencoded`.
    #[response(status = 415, headers(("Cache-Control" = String, description = "`no-store`")))]
    WrongMediaType(OAuthErrorBody),
}

/// `missing_token` without a bearer token; `invalid_token`, `token_expired` or
/// `token_revoked` for one that is refused; `invalid_dpop_proof` or `use_dpop_nonce` for a
/// DPoP-bound token whose proof is refused (RFC 9449).
#[derive(IntoResponses)]
#[response(status = 401, headers(("WWW-Authenticate" = String,
    description = "RFC 6750 §3: `Bearer realm=\"jwt-auth\"`, with `error` and `error_description` when a token was presented; for a token presented as `DPoP`, or a DPoP-bound token presented as `Bearer`, RFC 9449 §7.1: `DPoP realm=\"jwt-auth\", error=..., error_description=..., algs=\"ES256 EdDSA RS256\"`")))]
pub struct BearerRefused(pub ErrorBody);

/// `insufficient_role`: the caller lacks the role the endpoint requires.
#[derive(IntoResponses)]
#[response(status = 403)]
pub struct InsufficientRole(pub ErrorBody);

/// `rate_limited`: too many attempts from this client IP (`LOGIN_RATE_LIMIT`), or repeated
/// failures of this account from this IP (`LOGIN_FAILURE_BACKOFF`).
#[derive(IntoResponses)]
#[response(status = 429, headers(("Retry-After" = u64, description = "seconds to wait")))]
pub struct RateLimited(pub ErrorBody);

/// `unavailable`: the database cannot be reached; retry shortly.
#[derive(IntoResponses)]
#[response(status = 503, headers(("Retry-After" = u64, description = "seconds to wait")))]
pub struct Unavailable(pub ErrorBody);
