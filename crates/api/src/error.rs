//! The one place where failures become HTTP responses: status, JSON body
//! `{"error", "message"}`, the RFC 6750 `WWW-Authenticate` header on 401s, `Retry-After` on
//! 429 and 503 (the OAuth endpoints' RFC 6749 §5.2 body is `oauth_error.rs`'s). Server faults
//! are logged here, once, with their cause.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// How long a client should wait before retrying after a 503.
const RETRY_UNAVAILABLE_SECONDS: u64 = 1;

/// The algorithms a DPoP challenge names (RFC 9449 §7.1 `algs`): those of the policy the
/// server's proof checks run on (`jwt_auth_service::dpop::Dpop::new`), built once.
static DPOP_ALGORITHMS: std::sync::LazyLock<Vec<jwt_core::Algorithm>> =
    std::sync::LazyLock::new(|| jwt_core::DpopPolicy::default().algorithms);

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A protected endpoint was called without a bearer token.
    #[error("a bearer token is required")]
    MissingToken,
    /// A presented token was refused (or jwt-core failed: see `From<jwt_core::Error>`).
    #[error("{0}")]
    Token(jwt_core::Error),
    /// A token presented with the `DPoP` scheme, or its proof, or a DPoP-bound token presented
    /// as a bearer token, was refused (401 with RFC 9449's challenge); with the nonce to use,
    /// for `use_dpop_nonce`.
    #[error("{error}")]
    DpopToken { error: jwt_core::Error, nonce: Option<String> },
    /// The DPoP proof of a token request was refused, or is missing where it is required (400
    /// `invalid_dpop_proof` or `use_dpop_nonce`, with the nonce to use).
    #[error("{error}")]
    ProofRefused { error: jwt_core::Error, nonce: Option<String> },
    /// Unknown user or wrong password (never says which).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Authenticated, but without the role the endpoint needs.
    #[error("this endpoint requires the `{0}` role")]
    InsufficientRole(&'static str),
    /// Authenticated, but the token was not granted the scope the endpoint needs (RFC 6750
    /// §3.1).
    #[error("this endpoint requires a token with scope `{0}`")]
    InsufficientScope(&'static str),
    /// A revocation feed cursor this server does not know (any more): start again without.
    #[error("this cursor is not known (any more); read the feed again without `after`")]
    CursorExpired,
    /// Too many attempts from this client.
    #[error("too many attempts; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// A client holds as many revocation streams open as it may (429 `rate_limited`).
    #[error(
        "this client has {limit} revocation streams open, the most it may; close one, or retry \
         in {retry_after} s"
    )]
    TooManyStreams { limit: usize, retry_after: u64 },
    /// The body is not what the endpoint reads (not exactly one JSON value, a broken form);
    /// the text says what is wrong.
    #[error("{0}")]
    MalformedBody(String),
    /// Neither the body nor the cookie carries a refresh token.
    #[error("refresh_token is required in the body or the refresh cookie")]
    MissingRefreshToken,
    /// The refresh cookie came without `X-Requested-With` (a CSRF guard).
    #[error("the refresh cookie is accepted only with the X-Requested-With header")]
    CsrfRequired,
    /// The body did not arrive in time (the connection is closed after the answer).
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    /// The body is over the size limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body has the wrong content type; the type expected.
    #[error("expected {0}")]
    UnsupportedMediaType(&'static str),
    /// The body parsed, but a field or parameter is invalid; the text says which and why.
    #[error("{0}")]
    InvalidField(String),
    /// No such resource; the text says what was not found.
    #[error("{0}")]
    NotFound(String),
    /// The resource exists, but not with this method; the methods it takes, for `Allow`.
    #[error("this method is not allowed here; allowed: {0}")]
    MethodNotAllowed(&'static str),
    /// Registration is closed on this server.
    #[error("registration is closed")]
    RegistrationClosed,
    /// The email is already registered.
    #[error("this email is already registered")]
    EmailTaken,
    /// The request cannot be carried out in the resource's present state (the key that signs
    /// cannot be revoked; pinned keys cannot be rotated); the text says why and what to do.
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached (or the server is saturated): retry shortly.
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// A fault of ours; the cause is logged, never returned.
    #[error("internal error")]
    Internal(String),
}

/// An unreachable store is an outage (503), whichever layer met it; every other jwt-core
/// error keeps its kind.
impl From<jwt_core::Error> for ApiError {
    fn from(err: jwt_core::Error) -> Self {
        match err {
            jwt_core::Error::Unavailable(_) => ApiError::Unavailable,
            // A cut-off ahead of this instance's clock (clocks apart, or one written before
            // future cut-offs were refused): nothing is handed out until it has passed.
            jwt_core::Error::VoidAtIssuance => {
                tracing::error!(cause = %err, "a token was not issued");
                ApiError::Unavailable
            }
            error @ (jwt_core::Error::InvalidDpopProof(_) | jwt_core::Error::UseDpopNonce(_)) => {
                ApiError::ProofRefused { error, nonce: None }
            }
            other => ApiError::Token(other),
        }
    }
}

/// A hashing queue over its bound is a saturated server (503, retry shortly); any other
/// hashing failure is a fault.
impl From<jwt_auth_service::passwords::HashError> for ApiError {
    fn from(err: jwt_auth_service::passwords::HashError) -> Self {
        match err {
            jwt_auth_service::passwords::HashError::Busy => ApiError::Unavailable,
            other => ApiError::Internal(format!("password hashing: {other}")),
        }
    }
}

impl From<jwt_auth_store::StoreError> for ApiError {
    fn from(err: jwt_auth_store::StoreError) -> Self {
        ApiError::from(&err)
    }
}

/// A service's refusal or failure: a broken rule is 422, the store's failures as above.
impl From<jwt_auth_service::ServiceError> for ApiError {
    fn from(err: jwt_auth_service::ServiceError) -> Self {
        use jwt_auth_service::ServiceError as S;
        match err {
            S::InvalidField(why) => ApiError::InvalidField(why),
            S::InvalidRole(_) => ApiError::InvalidField(
                "roles must be non-empty words of at most 64 characters".into(),
            ),
            S::UnknownSession { .. } => ApiError::NotFound(err.to_string()),
            S::UnknownUserId(id) | S::UnknownUser(id) | S::UserGone(id) => {
                ApiError::NotFound(format!("no user `{id}`"))
            }
            S::ImportedEmailTaken { .. } => ApiError::Conflict(err.to_string()),
            S::UnknownEventKind(name) => {
                ApiError::InvalidField(format!("no recorded kind of event is called `{name}`"))
            }
            S::UnrecordedEventKind(kind) => {
                ApiError::InvalidField(format!("no recorded kind of event is called `{kind}`"))
            }
            S::Hashing(e) => e.into(),
            S::Core(e) => e.into(),
            e @ (S::LimitOutOfRange { .. } | S::OffsetOutOfRange { .. }) => {
                ApiError::InvalidField(e.to_string())
            }
            S::ClientNameTaken(_) => ApiError::Conflict(err.to_string()),
            S::UnknownClient(_) | S::ClientGone(_) => ApiError::NotFound(err.to_string()),
            S::NoRandomness => ApiError::Internal(err.to_string()),
            S::RateLimited { retry_after } => ApiError::RateLimited { retry_after },
            S::ClientAuthenticationFailed | S::InvalidCredentials => ApiError::InvalidCredentials,
            S::InvalidGrant(why) => ApiError::InvalidField(why),
            S::Store(e) => ApiError::from(&e),
            S::SharedStore(e) => ApiError::from(&*e),
        }
    }
}

/// By reference too: a failed load that several requests waited on is shared between them.
impl From<&jwt_auth_store::StoreError> for ApiError {
    fn from(err: &jwt_auth_store::StoreError) -> Self {
        use jwt_auth_store::StoreError as S;
        match err {
            S::EmailTaken => ApiError::EmailTaken,
            S::InvalidEmail(e) => ApiError::InvalidField(e.to_string()),
            // The store logs when the database goes down and when it is back; one line per
            // refused request would flood the log during an outage.
            S::Unavailable(_) => ApiError::Unavailable,
            other => ApiError::Internal(format!("store: {other}")),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: String,
}

impl ApiError {
    /// The machine-readable code of the body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingToken => "missing_token",
            ApiError::Token(e) => e.http_code(),
            ApiError::DpopToken { error, .. } | ApiError::ProofRefused { error, .. } => {
                error.http_code()
            }
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::InsufficientRole(_) => "insufficient_role",
            ApiError::InsufficientScope(_) => "insufficient_scope",
            ApiError::RateLimited { .. } | ApiError::TooManyStreams { .. } => "rate_limited",
            ApiError::CursorExpired => "cursor_expired",
            ApiError::BodyTimeout(_) => "request_timeout",
            ApiError::MalformedBody(_) | ApiError::MissingRefreshToken => "invalid_request",
            ApiError::CsrfRequired => "csrf_required",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::InvalidField(_) => "invalid_field",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::RegistrationClosed => "registration_closed",
            ApiError::EmailTaken => "email_taken",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// What the body's `message` says: never a token, a password, a secret or a fault's cause.
    fn message(&self) -> String {
        match self {
            ApiError::Token(e) if e.is_token_rejection() => e.to_string(),
            ApiError::DpopToken { error, .. } | ApiError::ProofRefused { error, .. } => {
                error.to_string()
            }
            ApiError::Token(_) | ApiError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    /// RFC 6750 §3: the realm always; the error and its description when a token was presented.
    /// Written here rather than with `actix-web-httpauth`'s challenge builder, which separates
    /// auth-params with spaces instead of the commas RFC 7235 §2.1 requires.
    fn www_authenticate(&self) -> HeaderValue {
        let value = match self {
            ApiError::Token(_) => jwt_core::bearer_challenge(Some(&self.message())),
            ApiError::DpopToken { error, .. } => {
                let code = match error {
                    jwt_core::Error::InvalidDpopProof(_) | jwt_core::Error::UseDpopNonce(_) => {
                        error.code()
                    }
                    _ => "invalid_token",
                };
                jwt_core::dpop_challenge(code, &self.message(), &DPOP_ALGORITHMS)
            }
            _ => jwt_core::bearer_challenge(None),
        };
        HeaderValue::from_str(&value)
            .unwrap_or_else(|_| HeaderValue::from_static(r#"Bearer realm="jwt-auth""#))
    }

    /// Logs a server fault once, with its cause; client mistakes are not logged here.
    fn log_fault(&self) {
        match self {
            ApiError::Internal(cause) => tracing::error!(cause = %cause, "request failed"),
            ApiError::Token(e) if !e.is_token_rejection() => {
                tracing::error!(cause = %e, source = ?std::error::Error::source(e), "request failed")
            }
            _ => {}
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MissingToken | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Token(e) if e.is_token_rejection() => StatusCode::UNAUTHORIZED,
            ApiError::DpopToken { .. } => StatusCode::UNAUTHORIZED,
            ApiError::ProofRefused { .. } => StatusCode::BAD_REQUEST,
            ApiError::Token(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::InsufficientRole(_)
            | ApiError::InsufficientScope(_)
            | ApiError::RegistrationClosed => StatusCode::FORBIDDEN,
            ApiError::CsrfRequired => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } | ApiError::TooManyStreams { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::MalformedBody(_) | ApiError::MissingRefreshToken => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::InvalidField(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::EmailTaken | ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::CursorExpired => StatusCode::GONE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log_fault();
        let mut response = HttpResponse::build(self.status_code());
        self.add_headers(&mut response);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        response.json(Body { error: self.code(), message: self.message() })
    }
}

impl ApiError {
    /// `WWW-Authenticate`, `Retry-After` and `Allow`, where the status calls for them.
    fn add_headers(&self, response: &mut actix_web::HttpResponseBuilder) {
        if let ApiError::DpopToken { nonce: Some(nonce), .. }
        | ApiError::ProofRefused { nonce: Some(nonce), .. } = self
        {
            response.insert_header(("DPoP-Nonce", nonce.as_str()));
        }
        match self {
            _ if self.status_code() == StatusCode::UNAUTHORIZED => {
                response.insert_header((header::WWW_AUTHENTICATE, self.www_authenticate()));
            }
            ApiError::RateLimited { retry_after }
            | ApiError::TooManyStreams { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::Unavailable => {
                response
                    .insert_header((header::RETRY_AFTER, RETRY_UNAVAILABLE_SECONDS.to_string()));
            }
            ApiError::MethodNotAllowed(allow) => {
                response.insert_header((header::ALLOW, *allow));
            }
            ApiError::InsufficientScope(scope) => {
                let challenge = format!(
                    "Bearer realm=\"jwt-auth\", error=\"insufficient_scope\", scope=\"{scope}\""
                );
                response.insert_header((header::WWW_AUTHENTICATE, challenge));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_faults_are_500_and_say_nothing_of_their_cause() {
        let err = ApiError::Token(jwt_core::Error::storage(std::io::Error::other("disk on fire")));
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(err.code(), "internal_error");
        assert!(!err.message().contains("fire"));
        let internal = ApiError::Internal("row 7 is broken".into());
        assert_eq!(internal.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!internal.message().contains("row 7"));
    }

    #[test]
    fn an_unreachable_store_is_503_through_jwt_core_too() {
        let err = ApiError::from(jwt_core::Error::unavailable(std::io::Error::other("refused")));
        assert_eq!(err.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code(), "unavailable");
    }

    #[test]
    fn unavailable_is_503_with_retry_after() {
        let response = ApiError::Unavailable.error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "1");
    }

    #[test]
    fn challenges_quote_their_description() {
        let value = ApiError::Token(jwt_core::Error::Expired).www_authenticate();
        assert_eq!(
            value.to_str().unwrap(),
            r#"Bearer realm="jwt-auth", error="invalid_token", error_description="token has expired""#
        );
        assert_eq!(ApiError::MissingToken.www_authenticate(), r#"Bearer realm="jwt-auth""#);
    }
}
