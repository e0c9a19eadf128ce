//! The verifier's errors, and [`AuthError`]: what a protected endpoint answers, the same
//! status, JSON body `{"error", "message"}` and `WWW-Authenticate` challenge (RFC 6750, or
//! RFC 9449's for DPoP) as the `jwt-auth` server itself, whichever framework serves it.

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
/// | [`Dpop`](AuthError::Dpop) | 401 | `invalid_dpop_proof`, `invalid_token`, `token_expired` or `token_revoked` | `DPoP realm="jwt-auth", error="invalid_dpop_proof", error_description="...", algs="ES256 EdDSA RS256"` (`error="invalid_token"` for a refused token) |
/// | [`RequestUrl`](AuthError::RequestUrl) | 401 | `invalid_dpop_proof` | `DPoP realm="jwt-auth", error="invalid_dpop_proof", error_description="...", algs="ES256 EdDSA RS256"` |
/// | [`InsufficientRole`](AuthError::InsufficientRole), [`InsufficientRoles`](AuthError::InsufficientRoles) | 403 | `insufficient_role` | none |
/// | [`Unavailable`](AuthError::Unavailable) | 503 (`Retry-After: 1`) | `unavailable` | none |
/// | [`Internal`](AuthError::Internal) | 500 | `internal_error` | none |
///
/// Every answer carries `Cache-Control: no-store`.
///
/// DPoP-bound tokens (RFC 9449, a `cnf` claim) are enforced as the server enforces them: such
/// a token is accepted only as `Authorization: DPoP` with a `DPoP` proof of its key for the
/// request's method and URL (see [`public_url`](crate::VerifierBuilder::public_url)), each
/// proof once; a token bound to no key only as `Authorization: Bearer`. What is refused
/// of a token presented with the `DPoP` scheme, and a bound token presented as a bearer token,
/// is [`AuthError::Dpop`]: the body's `error` is the reason's code as with
/// [`AuthError::Token`], the challenge RFC 9449's. No nonce is ever required.
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
///
/// let bearer = AuthError::Dpop(jwt_core::Error::BoundTokenAsBearer);
/// assert_eq!((bearer.status(), bearer.code()), (401, "invalid_token"));
/// assert_eq!(
///     bearer.www_authenticate().as_deref(),
///     Some(
///         "DPoP realm=\"jwt-auth\", error=\"invalid_token\", error_description=\"token \
///          is bound to a key: present it with the DPoP scheme and a proof\", \
///          algs=\"ES256 EdDSA RS256\""
///     ),
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No access token was presented (no `Authorization` header, or one of another scheme
    /// than `Bearer` and `DPoP`).
    #[error("a bearer token is required")]
    MissingToken,
    /// A presented token was refused.
    #[error("{0}")]
    Token(jwt_core::Error),
    /// A token presented with the `DPoP` scheme was refused (whatever the reason: a bad proof,
    /// a token bound to no key, or an invalid, expired or revoked token), or a DPoP-bound
    /// token was presented as a bearer token: 401 with RFC 9449's challenge, whose `error` is
    /// `invalid_dpop_proof` for a refused proof and `invalid_token` otherwise.
    #[error("{0}")]
    Dpop(jwt_core::Error),
    /// The proof of a DPoP-bound token could not be checked: the request shows no URL its
    /// `htu` could name (no `Host` header of a plain `host[:port]` while no
    /// [`public_url`](crate::VerifierBuilder::public_url) is set, or a path that is no URL
    /// path). 401 `invalid_dpop_proof`, the reason in the message.
    #[error("DPoP proof refused: {0}")]
    RequestUrl(&'static str),
    /// A valid token without the role the endpoint needs.
    #[error("this endpoint requires the `{0}` role")]
    InsufficientRole(&'static str),
    /// A valid token with none of the roles an endpoint takes (`require_any_role` with more
    /// than one): 403 `insufficient_role` like [`AuthError::InsufficientRole`], the message
    /// naming them all.
    #[error("this endpoint requires one of the roles {}", quoted(.0))]
    InsufficientRoles(Vec<&'static str>),
    /// The verifier is not ready yet (see [`VerifyError::NotReady`]), or its DPoP replay
    /// cache is full ([`jwt_core::ReplayCacheFull`]): a proof it cannot remember is not
    /// accepted, and the cache has room again within a minute.
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
            AuthError::Dpop(e) if e.is_token_rejection() => 401,
            AuthError::RequestUrl(_) => 401,
            AuthError::Token(_) | AuthError::Dpop(_) | AuthError::Internal(_) => 500,
            AuthError::InsufficientRole(_) | AuthError::InsufficientRoles(_) => 403,
            AuthError::Unavailable => 503,
        }
    }

    /// The machine-readable code of the body (`error`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::Token(e) | AuthError::Dpop(e) => e.http_code(),
            AuthError::RequestUrl(_) => "invalid_dpop_proof",
            AuthError::InsufficientRole(_) | AuthError::InsufficientRoles(_) => "insufficient_role",
            AuthError::Unavailable => "unavailable",
            AuthError::Internal(_) => "internal_error",
        }
    }

    /// What the body's `message` says: never a token, a secret or a fault's cause.
    pub fn message(&self) -> String {
        match self {
            AuthError::Token(e) | AuthError::Dpop(e) if e.is_token_rejection() => e.to_string(),
            AuthError::Token(_) | AuthError::Dpop(_) | AuthError::Internal(_) => {
                "internal error".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The JSON body, `{"error": code, "message": message}`.
    pub fn body(&self) -> String {
        serde_json::to_string(&Body { error: self.code(), message: self.message() })
            .expect("two strings serialize")
    }

    /// The challenge of a 401: RFC 6750 §3's, the realm always, the error and its
    /// description when a token was presented (auth-params separated by commas, RFC 7235
    /// §2.1); RFC 9449 §7.1's for [`AuthError::Dpop`] and [`AuthError::RequestUrl`], with the
    /// algorithms a proof may be signed with. `None` for every other status.
    pub fn www_authenticate(&self) -> Option<String> {
        if self.status() != 401 {
            return None;
        }
        let dpop = |code: &str| {
            let algorithms = jwt_core::DpopPolicy::default().algorithms;
            jwt_core::dpop_challenge(code, &self.message(), &algorithms)
        };
        Some(match self {
            AuthError::Token(_) => jwt_core::bearer_challenge(Some(&self.message())),
            AuthError::Dpop(
                error @ (jwt_core::Error::InvalidDpopProof(_) | jwt_core::Error::UseDpopNonce(_)),
            ) => dpop(error.code()),
            AuthError::Dpop(_) => dpop("invalid_token"),
            AuthError::RequestUrl(_) => dpop("invalid_dpop_proof"),
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
/// The `Bearer` scheme only: the extractors of `actix` and `axum` also take `DPoP`
/// ([`jwt_core::presented_token`]) and check the proof of a DPoP-bound token, which a token
/// read here and given to [`Verifier::verify`](crate::Verifier::verify) is not.
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

    /// What the server answers: the body's code is the reason's, the challenge RFC 9449's,
    /// naming `invalid_dpop_proof` for a refused proof and `invalid_token` for the rest.
    #[test]
    fn dpop_refusals_carry_the_dpop_challenge() {
        let challenge = |code: &str, description: &str| {
            format!(
                r#"DPoP realm="jwt-auth", error="{code}", error_description="{description}", algs="ES256 EdDSA RS256""#
            )
        };
        let cases = [
            (
                AuthError::Dpop(jwt_core::Error::InvalidDpopProof(jwt_core::DpopRefusal::Replayed)),
                "invalid_dpop_proof",
                "invalid_dpop_proof",
                "DPoP proof refused: its `jti` was used already",
            ),
            (
                AuthError::Dpop(jwt_core::Error::UnboundTokenAsDpop),
                "invalid_token",
                "invalid_token",
                "token is not bound to a key: present it with the Bearer scheme",
            ),
            (
                AuthError::Dpop(jwt_core::Error::Expired),
                "token_expired",
                "invalid_token",
                "token has expired",
            ),
            (
                AuthError::Dpop(jwt_core::Error::KeyRevoked),
                "invalid_token",
                "invalid_token",
                "token was signed with a revoked key",
            ),
            (
                AuthError::RequestUrl("the request has no host"),
                "invalid_dpop_proof",
                "invalid_dpop_proof",
                "DPoP proof refused: the request has no host",
            ),
        ];
        for (err, code, challenge_error, message) in cases {
            assert_eq!((err.status(), err.code(), err.message().as_str()), (401, code, message));
            assert_eq!(
                err.www_authenticate(),
                Some(challenge(challenge_error, message)),
                "{err:?}"
            );
            let body: serde_json::Value = serde_json::from_str(&err.body()).unwrap();
            assert_eq!(body, serde_json::json!({"error": code, "message": message}));
        }
        // What is no refusal of a token says nothing of its cause.
        let fault = AuthError::Dpop(jwt_core::Error::storage(std::io::Error::other("disk")));
        assert_eq!((fault.status(), fault.message().as_str()), (500, "internal error"));
        assert_eq!(fault.www_authenticate(), None);
    }

    #[test]
    fn only_401s_carry_a_challenge() {
        assert!(AuthError::InsufficientRole("admin").www_authenticate().is_none());
        assert!(AuthError::Unavailable.www_authenticate().is_none());
        assert_eq!(AuthError::Unavailable.retry_after(), Some(1));
    }
}
