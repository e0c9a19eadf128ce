//! The failures of the OAuth endpoints (`/auth/token`, `/auth/revoke`, `/auth/introspect`) in
//! RFC 6749 §5.2's body `{"error", "error_description"}`, and the RFC 6749 §5.1 headers of
//! their answers.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::error::ApiError;

/// A failure of an OAuth endpoint (`/auth/token`, `/auth/revoke`, `/auth/introspect`): the
/// RFC 6749 §5.2 errors in their own body, or an [`ApiError`] that RFC 6749 has no word for
/// (429, 503, a refused bearer token on introspection), answered as every other endpoint does.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// `invalid_request`: a missing or malformed parameter, or a body the endpoint cannot read
    /// (with the status of that: 400, 413 or 415).
    #[error("{description}")]
    InvalidRequest { status: StatusCode, description: String },
    /// `invalid_grant`: the credentials or the refresh token are not valid.
    #[error("{0}")]
    InvalidGrant(String),
    /// `unsupported_grant_type`.
    #[error("the grant type is not supported; use password, refresh_token or client_credentials")]
    UnsupportedGrantType,
    /// `invalid_client` (401, `WWW-Authenticate: Basic`): client authentication failed.
    #[error("{0}")]
    InvalidClient(String),
    /// `invalid_dpop_proof` or `use_dpop_nonce` (400, RFC 9449 §5 and §8): the request's DPoP
    /// proof was refused, or is missing where it is required; with the nonce to use.
    #[error("{error}")]
    DpopProof { error: jwt_core::Error, nonce: Option<String> },
    /// Everything else.
    #[error(transparent)]
    Api(ApiError),
}

impl OAuthError {
    /// `invalid_request` with status 400.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError::InvalidRequest {
            status: StatusCode::BAD_REQUEST,
            description: description.into(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest { .. } => "invalid_request",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::DpopProof { error, .. } => error.code(),
            OAuthError::Api(e) => e.code(),
        }
    }
}

/// How the OAuth endpoints say what went wrong: bad credentials and refused tokens are
/// `invalid_grant`, unreadable bodies and invalid fields `invalid_request`; the rest keeps
/// its own answer.
impl From<ApiError> for OAuthError {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::InvalidCredentials => {
                OAuthError::InvalidGrant("invalid username or password".into())
            }
            ApiError::Token(e) if e.is_token_rejection() => OAuthError::InvalidGrant(e.to_string()),
            e @ (ApiError::PayloadTooLarge(_) | ApiError::UnsupportedMediaType(_)) => {
                OAuthError::InvalidRequest { status: e.status_code(), description: e.to_string() }
            }
            ApiError::ProofRefused { error, nonce } => OAuthError::DpopProof { error, nonce },
            e @ (ApiError::MalformedBody(_)
            | ApiError::MissingRefreshToken
            | ApiError::InvalidField(_)) => OAuthError::invalid_request(e.to_string()),
            other => OAuthError::Api(other),
        }
    }
}

/// A service's refusal: a client that does not authenticate is `invalid_client`.
impl From<jwt_auth_service::ServiceError> for OAuthError {
    fn from(err: jwt_auth_service::ServiceError) -> Self {
        match err {
            jwt_auth_service::ServiceError::ClientAuthenticationFailed => {
                OAuthError::InvalidClient(err.to_string())
            }
            jwt_auth_service::ServiceError::InvalidGrant(why) => OAuthError::InvalidGrant(why),
            other => ApiError::from(other).into(),
        }
    }
}

impl From<jwt_auth_store::StoreError> for OAuthError {
    fn from(err: jwt_auth_store::StoreError) -> Self {
        OAuthError::Api(err.into())
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            OAuthError::InvalidRequest { status, .. } => *status,
            OAuthError::InvalidGrant(_)
            | OAuthError::UnsupportedGrantType
            | OAuthError::DpopProof { .. } => StatusCode::BAD_REQUEST,
            OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            OAuthError::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            error_description: String,
        }
        if let OAuthError::Api(e) = self {
            return e.error_response();
        }
        let mut response = HttpResponse::build(self.status_code());
        token_no_store(&mut response);
        if let OAuthError::InvalidClient(_) = self {
            // RFC 6749 §5.2: the scheme the client should authenticate with.
            response.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"jwt-auth\""));
        }
        if let OAuthError::DpopProof { nonce: Some(nonce), .. } = self {
            response.insert_header(("DPoP-Nonce", nonce.as_str()));
        }
        response.json(Body { error: self.code(), error_description: self.to_string() })
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, as RFC 6749 §5.1 asks of every response
/// that carries tokens or token errors.
pub fn token_no_store(response: &mut actix_web::HttpResponseBuilder) {
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
}
