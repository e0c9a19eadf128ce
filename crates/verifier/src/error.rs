//! The verifier's errors, and [`AuthError`]: what a protected endpoint answers, the same
//! status, JSON body `{"error", "message"}` and RFC 6750 `WWW-Authenticate` challenge as the
//! `jwt-auth` server itself, whichever framework serves it.

use serde::Serialize;

/// Why [`Verifier::verify`](crate::Verifier::verify) refused a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is not acceptable: malformed, badly signed, by an unknown or revoked key,
    /// for another issuer or audience, expired, or revoked. The [`jwt_core::Error`] says which.
    #[error(transparent)]
    Token(jwt_core::Error),
    /// The verifier has not loaded the issuer's keys, or the first state of the revocation
    /// feed, yet. Accepting a token now could accept a revoked one: it fails closed.
    #[error("the verifier has not loaded its keys and revocations yet")]
    NotReady,
}

impl From<jwt_core::Error> for VerifyError {
    fn from(err: jwt_core::Error) -> Self {
        VerifyError::Token(err)
    }
}

/// A configuration the verifier cannot start with.
#[derive(Debug, thiserror::Error)]
#[error("invalid verifier configuration: {0}")]
pub struct ConfigError(pub(crate) String);

impl ConfigError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// How long a client should wait before retrying after a 503, as the server says it.
const RETRY_UNAVAILABLE_SECONDS: u64 = 1;

/// Why a protected endpoint refuses a request, answered exactly as the `jwt-auth` server
/// answers it:
///
/// | variant | status | `error` | `WWW-Authenticate` |
/// |---|---|---|---|
/// | [`MissingToken`](AuthError::MissingToken) | 401 | `missing_token` | `Bearer realm="jwt-auth"` |
/// | [`Token`](AuthError::Token) | 401 | `invalid_token`, `token_expired` or `token_revoked` | `Bearer realm="jwt-auth", error="invalid_token", error_description="..."` |
/// | [`InsufficientRole`](AuthError::InsufficientRole), [`InsufficientRoles`](AuthError::InsufficientRoles) | 403 | `insufficient_role` | none |
/// | [`Unavailable`](AuthError::Unavailable) | 503 (`Retry-After: 1`) | `unavailable` | none |
/// | [`Internal`](AuthError::Internal) | 500 | `internal_error` | none |
///
/// Every answer carries `Cache-Control: no-store`.
///
/// ```
/// use jwt_auth_verifier::AuthError;
///
/// let expired = AuthError::Token(jwt_core::Error::Expired);
/// assert_eq!(expired.status(), 401);
/// assert_eq!(expired.code(), "token_expired");
/// assert_eq!(
///     expired.www_authenticate().as_deref(),
///     Some(r#"Bearer realm="jwt-auth", error="invalid_token", error_description="token has expired""#),
/// );
/// assert_eq!(AuthError::MissingToken.www_authenticate().as_deref(), Some(r#"Bearer realm="jwt-auth""#));
/// assert_eq!(AuthError::InsufficientRole("admin").status(), 403);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No bearer token was presented.
    #[error("a bearer token is required")]
    MissingToken,
    /// A presented token was refused.
    #[error("{0}")]
    Token(jwt_core::Error),
    /// A valid token without the role the endpoint needs.
    #[error("this endpoint requires the `{0}` role")]
    InsufficientRole(&'static str),
    /// A valid token with none of the roles an endpoint takes (`require_any_role` with more
    /// than one): 403 `insufficient_role` like [`AuthError::InsufficientRole`], the message
    /// naming them all.
    #[error("this endpoint requires one of the roles {}", quoted(.0))]
    InsufficientRoles(Vec<&'static str>),
    /// The verifier is not ready yet (see [`VerifyError::NotReady`]).
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// The application is wired wrongly (no [`Verifier`](crate::Verifier) registered); the
    /// cause is logged, never returned.
    #[error("internal error")]
    Internal(&'static str),
}

impl From<VerifyError> for AuthError {
    fn from(err: VerifyError) -> Self {
        match err {
            VerifyError::Token(e) => AuthError::Token(e),
            VerifyError::NotReady => AuthError::Unavailable,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: String,
}

impl AuthError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::MissingToken => 401,
            AuthError::Token(e) if e.is_token_rejection() => 401,
            AuthError::Token(_) | AuthError::Internal(_) => 500,
            AuthError::InsufficientRole(_) | AuthError::InsufficientRoles(_) => 403,
            AuthError::Unavailable => 503,
        }
    }

    /// The machine-readable code of the body (`error`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::Token(e) => e.http_code(),
            AuthError::InsufficientRole(_) | AuthError::InsufficientRoles(_) => "insufficient_role",
            AuthError::Unavailable => "unavailable",
            AuthError::Internal(_) => "internal_error",
        }
    }

    /// What the body's `message` says: never a token, a secret or a fault's cause.
    pub fn message(&self) -> String {
        match self {
            AuthError::Token(e) if e.is_token_rejection() => e.to_string(),
            AuthError::Token(_) | AuthError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    /// The JSON body, `{"error": code, "message": message}`.
    pub fn body(&self) -> String {
        serde_json::to_string(&Body { error: self.code(), message: self.message() })
            .expect("two strings serialize")
    }

    /// The RFC 6750 §3 challenge of a 401: the realm always, the error and its description
    /// when a token was presented (auth-params separated by commas, RFC 7235 §2.1). `None`
    /// for every other status.
    pub fn www_authenticate(&self) -> Option<String> {
        if self.status() != 401 {
            return None;
        }
        Some(match self {
            AuthError::Token(_) => jwt_core::bearer_challenge(Some(&self.message())),
            _ => jwt_core::bearer_challenge(None),
        })
    }

    /// `Retry-After` in seconds, for a 503.
    pub fn retry_after(&self) -> Option<u64> {
        matches!(self, AuthError::Unavailable).then_some(RETRY_UNAVAILABLE_SECONDS)
    }

    /// Logs a fault of the application's wiring once; client mistakes are not logged.
    #[cfg_attr(not(any(feature = "actix", feature = "axum")), allow(dead_code))]
    pub(crate) fn log_fault(&self) {
        if let AuthError::Internal(cause) = self {
            tracing::error!(cause, "request failed");
        }
    }
}

/// The bearer token of an `Authorization` header value (RFC 6750 §2.1), parsed by
/// [`jwt_core::bearer_token`] as the server parses it: the scheme case-insensitively; no header, or another scheme, is
/// [`AuthError::MissingToken`]; a bearer token that is empty or not ASCII is an invalid token.
///
/// ```
/// use jwt_auth_verifier::{AuthError, bearer_token};
/// assert_eq!(bearer_token(Some(b"Bearer abc")).unwrap(), "abc");
/// assert_eq!(bearer_token(Some(b"bearer abc")).unwrap(), "abc");
/// assert!(matches!(bearer_token(None), Err(AuthError::MissingToken)));
/// assert!(matches!(bearer_token(Some(b"Basic abc")), Err(AuthError::MissingToken)));
/// assert!(matches!(bearer_token(Some(b"Bearer  ")), Err(AuthError::Token(_))));
/// ```
pub fn bearer_token(authorization: Option<&[u8]>) -> Result<&str, AuthError> {
    jwt_core::bearer_token(authorization).map_err(AuthError::Token)?.ok_or(AuthError::MissingToken)
}

/// `` `a`, `b` `` for the message of [`AuthError::InsufficientRoles`].
fn quoted(roles: &[&str]) -> String {
    roles.iter().map(|role| format!("`{role}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_match_the_server() {
        let cases = [
            (AuthError::MissingToken, 401, "missing_token"),
            (AuthError::Token(jwt_core::Error::Expired), 401, "token_expired"),
            (AuthError::Token(jwt_core::Error::Revoked), 401, "token_revoked"),
            (AuthError::Token(jwt_core::Error::UnknownKey), 401, "invalid_token"),
            // Its own reason in jwt-core (`key_revoked`), answered as the server answers it.
            (AuthError::Token(jwt_core::Error::KeyRevoked), 401, "invalid_token"),
            (AuthError::InsufficientRole("admin"), 403, "insufficient_role"),
            (AuthError::Unavailable, 503, "unavailable"),
            (AuthError::Internal("no verifier"), 500, "internal_error"),
        ];
        for (err, status, code) in cases {
            assert_eq!((err.status(), err.code()), (status, code), "{err:?}");
        }
    }

    #[test]
    fn bodies_say_nothing_of_internal_causes() {
        let body: serde_json::Value =
            serde_json::from_str(&AuthError::Internal("no verifier registered").body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "internal_error", "message": "internal error"})
        );
        let body: serde_json::Value =
            serde_json::from_str(&AuthError::InsufficientRole("admin").body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "insufficient_role", "message": "this endpoint requires the `admin` role"})
        );
    }

    #[test]
    fn a_revoked_key_says_so_in_the_message_and_the_challenge() {
        let revoked = AuthError::Token(jwt_core::Error::KeyRevoked);
        assert_eq!(revoked.message(), "token was signed with a revoked key");
        assert_eq!(
            revoked.www_authenticate().as_deref(),
            Some(
                r#"Bearer realm="jwt-auth", error="invalid_token", error_description="token was signed with a revoked key""#
            )
        );
        let unknown = AuthError::Token(jwt_core::Error::UnknownKey);
        assert_eq!(unknown.message(), "token key id is unknown");
    }

    #[test]
    fn only_401s_carry_a_challenge() {
        assert!(AuthError::InsufficientRole("admin").www_authenticate().is_none());
        assert!(AuthError::Unavailable.www_authenticate().is_none());
        assert_eq!(AuthError::Unavailable.retry_after(), Some(1));
    }
}
