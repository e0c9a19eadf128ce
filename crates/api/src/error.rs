//! The one place where failures become HTTP responses: status, JSON body
//! `{"error", "message"}`, and the RFC 6750 `WWW-Authenticate` header on 401s; and the
//! RFC 6749 §5.2 body `{"error", "error_description"}` of the OAuth endpoints.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A protected endpoint was called without a bearer token.
    #[error("a bearer token is required")]
    MissingToken,
    /// A presented token was refused.
    #[error("{0}")]
    Token(#[from] jwt_core::Error),
    /// Unknown user or wrong password (never says which).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// Authenticated, but without the role the endpoint needs.
    #[error("this endpoint requires the `{0}` role")]
    InsufficientRole(&'static str),
    /// Too many attempts from this client.
    #[error("too many attempts; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// The body could not be parsed.
    #[error("{0}")]
    BadRequest(String),
    /// The body is over the size limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body has the wrong content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body parsed, but a field is invalid.
    #[error("{0}")]
    Unprocessable(String),
    /// No such resource.
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
    /// The database cannot be reached.
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// A fault of ours; details are logged, not returned.
    #[error("internal error")]
    Internal,
}

impl From<jwt_auth_store::StoreError> for ApiError {
    fn from(err: jwt_auth_store::StoreError) -> Self {
        use jwt_auth_store::StoreError as S;
        match err {
            S::EmailTaken => ApiError::EmailTaken,
            S::Unavailable(e) => {
                tracing::error!(error = %e, "database unavailable");
                ApiError::Unavailable
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::Internal
            }
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
        use jwt_core::Error as E;
        match self {
            ApiError::MissingToken => "missing_token",
            ApiError::Token(e) => match e {
                E::Expired => "token_expired",
                E::Revoked | E::SessionRevoked | E::InactiveSubject => "token_revoked",
                E::RefreshReused(_) => "refresh_token_reused",
                E::SessionExpired => "session_expired",
                E::Storage(_) => "unavailable",
                e if e.is_token_rejection() => "invalid_token",
                _ => "internal_error",
            },
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::InsufficientRole(_) => "insufficient_role",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::BadRequest(_) => "invalid_request",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unprocessable(_) => "invalid_field",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::RegistrationClosed => "registration_closed",
            ApiError::EmailTaken => "email_taken",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal => "internal_error",
        }
    }

    /// What the body's `message` says: never a token, a password or a secret.
    fn message(&self) -> String {
        match self {
            ApiError::Token(e) if e.is_token_rejection() => e.to_string(),
            ApiError::Token(jwt_core::Error::Storage(_)) => ApiError::Unavailable.to_string(),
            ApiError::Token(_) => ApiError::Internal.to_string(),
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MissingToken | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Token(jwt_core::Error::Storage(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Token(e) if e.is_token_rejection() => StatusCode::UNAUTHORIZED,
            ApiError::Token(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::InsufficientRole(_) | ApiError::RegistrationClosed => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::EmailTaken => StatusCode::CONFLICT,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, self.www_authenticate()));
        }
        if let ApiError::RateLimited { retry_after } = self {
            response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((header::RETRY_AFTER, "1"));
        }
        if let ApiError::MethodNotAllowed(allow) = self {
            response.insert_header((header::ALLOW, *allow));
        }
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        response.json(Body { error: self.code(), message: self.message() })
    }
}

impl ApiError {
    /// RFC 6750 §3: the realm always; the error and its description when a token was presented.
    fn www_authenticate(&self) -> HeaderValue {
        let value = match self {
            ApiError::Token(_) => format!(
                r#"Bearer realm="jwt-auth", error="invalid_token", error_description="{}""#,
                self.message().replace(['"', '\\'], "'")
            ),
            _ => r#"Bearer realm="jwt-auth""#.to_owned(),
        };
        HeaderValue::from_str(&value)
            .unwrap_or_else(|_| HeaderValue::from_static(r#"Bearer realm="jwt-auth""#))
    }
}

/// An OAuth error response (RFC 6749 §5.2): `{"error", "error_description"}`, not cached.
/// The OAuth endpoints (`/auth/token`, `/auth/revoke`, `/auth/introspect`) answer with it
/// for their own failures and for a malformed, oversized or mistyped form.
pub fn oauth_error(
    status: StatusCode,
    error: &'static str,
    description: impl Into<String>,
) -> HttpResponse {
    #[derive(Serialize)]
    struct OAuthError {
        error: &'static str,
        error_description: String,
    }
    let mut response = HttpResponse::build(status);
    no_store(&mut response);
    response.json(OAuthError { error, error_description: description.into() })
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, as RFC 6749 §5.1 asks of every response
/// that carries tokens or token errors.
pub fn no_store(response: &mut actix_web::HttpResponseBuilder) {
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
}
