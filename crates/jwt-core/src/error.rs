//! The one error type of `jwt-core`: a variant per reason, so that a server can map each to an
//! HTTP status and an RFC 6750 error code without matching on strings.

use chrono::{DateTime, Utc};

use crate::values::ClientInfo;

/// Everything that can go wrong in `jwt-core`.
///
/// Validation errors carry no token content. [`Error::is_token_rejection`] groups the
/// variants that mean "the presented token is not acceptable" (RFC 6750 `invalid_token`).
///
/// ```
/// use jwt_core::Error;
///
/// let status = |e: &Error| match e {
///     Error::Expired => "token_expired",
///     Error::Revoked | Error::SessionRevoked => "token_revoked",
///     e if e.is_token_rejection() => "invalid_token",
///     Error::Unavailable(_) => "unavailable",
///     _ => "server_error",
/// };
/// assert_eq!(status(&Error::UnknownKey), "invalid_token");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token is longer than the configured limit; it was not decoded.
    #[error("token is larger than {limit} bytes")]
    TokenTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The token is not three base64url parts of JSON separated by dots.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    /// The header names an algorithm this library does not verify (including `none`).
    #[error("token algorithm is not supported")]
    UnsupportedAlgorithm,
    /// The header's algorithm differs from the algorithm of the key its `kid` selects.
    #[error("token algorithm does not match its key")]
    AlgorithmMismatch,
    /// The header has no `kid`.
    #[error("token header has no key id")]
    MissingKeyId,
    /// No verification key has the header's `kid`.
    #[error("token key id is unknown")]
    UnknownKey,
    /// The key the header's `kid` names was revoked: every token it signed is void. Told
    /// apart from [`Error::UnknownKey`] so that a log or a client sees why, though the HTTP
    /// answer is the same (see [`Error::http_code`]).
    #[error("token was signed with a revoked key")]
    KeyRevoked,
    /// The header carries a parameter that could point the verifier at another key
    /// (`jku`, `x5u`, `jwk`, `x5c`).
    #[error("token header parameter `{0}` is not accepted")]
    ForbiddenHeader(&'static str),
    /// The header has a `crit` parameter; no critical extension is understood.
    #[error("token header has critical extensions that are not understood")]
    UnknownCritical,
    /// The header's `typ` is not the one expected here (an access token where a refresh
    /// token is expected, or the reverse).
    #[error("token type is not accepted here")]
    WrongTokenType,
    /// The signature does not verify with the selected key.
    #[error("token signature is invalid")]
    InvalidSignature,
    /// A required claim is absent.
    #[error("token claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or shape.
    #[error("token claims are invalid")]
    InvalidClaims,
    /// The `iss` claim is not the expected issuer.
    #[error("token issuer is not accepted")]
    InvalidIssuer,
    /// The `aud` claim does not contain the expected audience.
    #[error("token audience is not accepted")]
    InvalidAudience,
    /// `exp` is in the past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// The token was revoked: its session was ended, or its subject's tokens were voided.
    #[error("token has been revoked")]
    Revoked,
    /// The session the token belongs to was revoked.
    #[error("session has been revoked")]
    SessionRevoked,
    /// The session reached its absolute maximum age; the user must log in again.
    #[error("session has expired")]
    SessionExpired,
    /// The refresh token is not known to the store (never issued here, or pruned).
    #[error("refresh token is not known")]
    UnknownRefreshToken,
    /// A refresh token was presented again after its grace period: the session was revoked.
    #[error("refresh token was reused; the session has been revoked")]
    RefreshReused(Box<ReuseDetails>),
    /// The refresh token's session was granted to another client application, or to none,
    /// than the one presenting it: only the client a session was granted to
    /// ([`Grant`](crate::Grant)) refreshes its tokens.
    #[error("refresh token was issued to another client")]
    WrongClient,
    /// The single-use authorization code a session was to start from
    /// ([`NewSession::code`](crate::NewSession::code)) was claimed or used already: no
    /// session was created (RFC 6749 §4.1.2, an `invalid_grant`).
    #[error("the authorization code was used already")]
    CodeUsed,
    /// The token's subject no longer exists or is disabled.
    #[error("token subject is not active")]
    InactiveSubject,
    /// A token about to be issued is void already under the revocation set: its session is
    /// revoked, or its subject's tokens are voided up to a time after its `iat` (a cut-off
    /// in the future, or clocks apart between instances). It is not handed out; the caller
    /// may try again once the cut-off has passed.
    #[error(
        "refusing to issue a token that the revocation set voids already (its session is \
         revoked, or its subject's tokens are voided up to a later time)"
    )]
    VoidAtIssuance,

    /// A DPoP proof (RFC 9449) was refused; the [`DpopRefusal`] says why. A server answers
    /// `invalid_dpop_proof`: 400 at the token endpoint, 401 where a DPoP-bound access token
    /// is presented.
    #[error("DPoP proof refused: {0}")]
    InvalidDpopProof(DpopRefusal),
    /// A DPoP proof was acceptable but for its `nonce`, which is missing, old or not this
    /// deployment's (RFC 9449 §8): a server answers `use_dpop_nonce` with a fresh nonce in a
    /// `DPoP-Nonce` header, and the client tries again with it.
    #[error("DPoP proof needs a current server nonce: {0}")]
    UseDpopNonce(NonceRefusal),
    /// An access token bound to a DPoP key (it has `cnf`) was presented with the `Bearer`
    /// scheme: a bound token is taken only as `Authorization: DPoP` with a proof of its key
    /// (RFC 9449 §7.2), never as a bearer token.
    #[error("token is bound to a key: present it with the DPoP scheme and a proof")]
    BoundTokenAsBearer,
    /// An access token bound to no key was presented with the `DPoP` scheme.
    #[error("token is not bound to a key: present it with the Bearer scheme")]
    UnboundTokenAsDpop,

    /// An HMAC secret shorter than the minimum.
    #[error("HMAC secret must be at least {min} bytes, got {len}")]
    WeakSecret {
        /// The minimum length in bytes.
        min: usize,
        /// The length that was given.
        len: usize,
    },
    /// A key could not be parsed or used.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A stored private key did not decrypt: the key-encryption key is not the one it was
    /// sealed with, or the record was changed.
    #[error("stored key `{kid}` does not decrypt with this key-encryption key")]
    SealedKey {
        /// The key id of the record.
        kid: String,
    },
    /// The key set only verifies: it has no active signing key.
    #[error("the key set has no signing key")]
    NoSigningKey,
    /// A key set must keep its active key; it cannot be retired.
    #[error("the active signing key cannot be retired")]
    ActiveKeyRetirement,
    /// No stored signing key has this key id.
    #[error("no stored key has the kid `{0}`")]
    UnknownKid(String),
    /// The stored key to revoke is the one that signs: another must replace it first.
    #[error("key `{0}` signs now; rotate first, then revoke it")]
    RevokingActiveKey(String),
    /// A key id is already present in the key set.
    #[error("key id `{0}` is already in the key set")]
    DuplicateKeyId(String),
    /// Signing failed inside the crypto backend.
    #[error("signing failed: {0}")]
    Signing(String),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A cut-off ("every token issued before T is void") later than now and the clock leeway:
    /// every token issued until T would be void as soon as it is issued, a lock-out nothing
    /// ends before T. See [`check_cut_off`](crate::check_cut_off).
    #[error(
        "{} is in the future: tokens issued until then would be refused as soon as they are \
         issued; give a time no later than now",
        .0.to_rfc3339()
    )]
    CutOffInFuture(chrono::DateTime<chrono::Utc>),
    /// The storage backend cannot be reached (no connection, a connection that broke, a pool
    /// that gave none in time). Trying again later may succeed; a server answers "unavailable"
    /// (HTTP 503).
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The storage backend failed otherwise (a refused statement, a row that does not parse):
    /// a fault to log and fix, not a reason to retry (HTTP 500).
    #[error("storage failed: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Whether this error means the presented token must be refused (RFC 6750
    /// `invalid_token` family), as opposed to a key, configuration or storage fault.
    pub fn is_token_rejection(&self) -> bool {
        !matches!(
            self,
            Error::WeakSecret { .. }
                | Error::InvalidKey(_)
                | Error::NoSigningKey
                | Error::ActiveKeyRetirement
                | Error::DuplicateKeyId(_)
                | Error::UnknownKid(_)
                | Error::RevokingActiveKey(_)
                | Error::Signing(_)
                | Error::InvalidConfig(_)
                | Error::Unavailable(_)
                | Error::Storage(_)
                | Error::VoidAtIssuance
        )
    }

    /// A stable, machine-readable code for this error, for logs, metrics and callers that
    /// tell refusals apart: `token_expired`, `token_revoked`, `key_revoked`,
    /// `refresh_token_reused`, `session_expired`, `invalid_dpop_proof` and `use_dpop_nonce`
    /// (RFC 9449 §12.2) for a refused DPoP proof, `invalid_token` for every other refused
    /// token, and `internal_error` for what is no refusal ([`Error::is_token_rejection`] is
    /// false). A server answers [`Error::http_code`], which is the same except for
    /// `key_revoked`.
    ///
    /// ```
    /// use jwt_core::Error;
    /// assert_eq!(Error::Expired.code(), "token_expired");
    /// assert_eq!(Error::Revoked.code(), "token_revoked");
    /// assert_eq!(Error::KeyRevoked.code(), "key_revoked");
    /// assert_eq!(Error::UnknownKey.code(), "invalid_token");
    /// assert_eq!(Error::NoSigningKey.code(), "internal_error");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Error::Expired => "token_expired",
            Error::Revoked | Error::SessionRevoked | Error::InactiveSubject => "token_revoked",
            Error::KeyRevoked => "key_revoked",
            Error::RefreshReused(_) => "refresh_token_reused",
            Error::SessionExpired => "session_expired",
            Error::InvalidDpopProof(_) => "invalid_dpop_proof",
            Error::UseDpopNonce(_) => "use_dpop_nonce",
            e if e.is_token_rejection() => "invalid_token",
            _ => "internal_error",
        }
    }

    /// The `error` code of the body a server answers this refusal with (the `jwt-auth` HTTP
    /// contract, whose 401s all carry RFC 6750's `error="invalid_token"` in their challenge):
    /// [`Error::code`], except that a token of a revoked key is answered `invalid_token`, as
    /// the contract has no code of its own for it; the message says which. Every service
    /// that checks these tokens answers alike with it.
    ///
    /// ```
    /// use jwt_core::Error;
    /// assert_eq!(Error::KeyRevoked.http_code(), "invalid_token");
    /// assert_eq!(Error::KeyRevoked.to_string(), "token was signed with a revoked key");
    /// assert_eq!(Error::Expired.http_code(), "token_expired");
    /// assert_eq!(Error::NoSigningKey.http_code(), "internal_error");
    /// ```
    pub fn http_code(&self) -> &'static str {
        match self {
            Error::KeyRevoked => "invalid_token",
            other => other.code(),
        }
    }

    /// Wraps a storage backend's error that is not about reaching it (see
    /// [`Error::unavailable`] for that).
    pub fn storage(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Storage(Box::new(err))
    }

    /// Wraps a storage backend's error that says the backend cannot be reached now.
    ///
    /// ```
    /// use jwt_core::Error;
    ///
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// let err = Error::unavailable(refused);
    /// assert!(matches!(err, Error::Unavailable(_)));
    /// assert!(!err.is_token_rejection(), "the token may be fine: ask again later");
    /// ```
    pub fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Unavailable(Box::new(err))
    }
}

/// Why a DPoP proof was refused ([`Error::InvalidDpopProof`]). No variant carries the proof,
/// the access token or any other presented value.
///
/// ```
/// use jwt_core::{DpopRefusal, Error};
/// let refused = Error::InvalidDpopProof(DpopRefusal::Replayed);
/// assert_eq!(refused.code(), "invalid_dpop_proof");
/// assert_eq!(refused.to_string(), "DPoP proof refused: its `jti` was used already");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopRefusal {
    /// The proof is longer than the configured limit; it was not decoded.
    #[error("it is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The proof is not a compact JWS of base64url JSON objects.
    #[error("it is malformed: {0}")]
    Malformed(&'static str),
    /// The header's `typ` is not `dpop+jwt`.
    #[error("its `typ` is not `dpop+jwt`")]
    WrongType,
    /// The header's `alg` is not one the verifier accepts (`none` and HMAC never are).
    #[error("its algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The header carries a parameter that names another key than its `jwk` (`jku`, `x5u`,
    /// `x5c`) or a content type (`cty`).
    #[error("its header parameter `{0}` is not accepted")]
    ForbiddenHeader(&'static str),
    /// The header has a `crit` parameter; no critical extension is understood.
    #[error("its header has critical extensions that are not understood")]
    UnknownCritical,
    /// The header has no `jwk`.
    #[error("its header has no `jwk`")]
    MissingKey,
    /// The header's `jwk` holds private key material (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`
    /// or a symmetric `k`).
    #[error("its `jwk` holds a private key")]
    PrivateKey,
    /// The header's `jwk` is not a key of the header's `alg` (ES256 wants an EC P-256 key,
    /// EdDSA an OKP Ed25519 key, RS256 an RSA key), or names another `alg` itself.
    #[error("its `jwk` is no key for its `alg`")]
    KeyMismatch,
    /// The header's `jwk` is not a usable public key (a missing or malformed member, an
    /// unknown key type or curve, an RSA modulus under 2048 bits).
    #[error("its `jwk` is invalid: {0}")]
    InvalidKey(&'static str),
    /// The signature does not verify with the header's `jwk`.
    #[error("its signature is invalid")]
    InvalidSignature,
    /// A required claim is absent (`jti`, `htm`, `htu`, `iat`, or `ath` with an access token).
    #[error("its claim `{0}` is missing")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or shape (a `jti` empty or too long, an `htu` that is no
    /// absolute http(s) URL, a non-numeric `iat`).
    #[error("its claim `{0}` is invalid")]
    InvalidClaim(&'static str),
    /// The claims are not a JSON object of the expected members.
    #[error("its claims are invalid")]
    InvalidClaims,
    /// `htm` is not the method of the request.
    #[error("its `htm` is not the request's method")]
    WrongMethod,
    /// `htu` is not the URL of the request (compared without query and fragment, after
    /// normalisation).
    #[error("its `htu` is not the request's URL")]
    WrongUrl,
    /// `iat` is further in the past than the window allows.
    #[error("its `iat` is too old")]
    Stale,
    /// `iat` is further in the future than the window allows.
    #[error("its `iat` is in the future")]
    FromFuture,
    /// A proof of the same key with the same `jti` was accepted already within the window.
    #[error("its `jti` was used already")]
    Replayed,
    /// `ath` is not the base64url SHA-256 hash of the access token presented with it.
    #[error("its `ath` is not the hash of the access token")]
    WrongAccessTokenHash,
    /// The access token is bound to another key than the proof's (its `cnf.jkt` differs).
    #[error("its key is not the key the access token is bound to")]
    WrongKey,
    /// The access token presented with the proof is bound to no key (it has no `cnf.jkt`).
    #[error("the access token is not bound to a key")]
    TokenNotBound,
    /// The request has no proof, and the token it presents is bound to a key (or its client
    /// must prove one).
    #[error("the request has no DPoP proof")]
    Missing,
    /// The request has more than one `DPoP` header (RFC 9449 §4.3).
    #[error("the request has more than one DPoP header")]
    Several,
}

/// Why a DPoP proof's `nonce` was refused ([`Error::UseDpopNonce`]).
///
/// ```
/// use jwt_core::{Error, NonceRefusal};
/// assert_eq!(Error::UseDpopNonce(NonceRefusal::Missing).code(), "use_dpop_nonce");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceRefusal {
    /// The proof has no `nonce`, and one is required.
    #[error("it has none")]
    Missing,
    /// The nonce was issued by this deployment, but too long ago.
    #[error("it has expired")]
    Stale,
    /// The nonce was not issued by this deployment (another key, or no nonce at all).
    #[error("it was not issued here")]
    Invalid,
}

/// The replay cache of a [`DpopVerifier`](crate::DpopVerifier) remembers as many proofs as
/// its capacity allows, none of them old enough to forget: the proof was not accepted, as
/// accepting it unremembered could let its replay through. It comes wrapped in
/// [`Error::Unavailable`] (a server answers 503): the cache has room again as soon as its
/// oldest proofs leave their window.
///
/// ```
/// use jwt_core::{Error, ReplayCacheFull};
/// let err = Error::unavailable(ReplayCacheFull { capacity: 100_000 });
/// assert!(!err.is_token_rejection(), "the proof may be fine: try again shortly");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the DPoP replay cache holds its maximum of {capacity} proofs")]
pub struct ReplayCacheFull {
    /// The capacity of the cache, in proofs.
    pub capacity: u64,
}

/// What an operator needs after a refresh token was replayed past its grace period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReuseDetails {
    /// The session that was revoked.
    pub session_id: String,
    /// The user the session belonged to.
    pub user_id: String,
    /// When the replayed token was rotated.
    pub rotated_at: DateTime<Utc>,
    /// When the replay was seen.
    pub detected_at: DateTime<Utc>,
    /// The client that made the legitimate rotation, as the store recorded it.
    pub rotated_by: ClientInfo,
}

impl ReuseDetails {
    /// Seconds between the rotation and the replay.
    pub fn seconds_since_rotation(&self) -> i64 {
        (self.detected_at - self.rotated_at).num_seconds()
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_code_and_only_token_problems_are_rejections() {
        let reuse = || {
            Error::RefreshReused(Box::new(ReuseDetails {
                session_id: "s".into(),
                user_id: "u".into(),
                rotated_at: DateTime::UNIX_EPOCH,
                detected_at: DateTime::UNIX_EPOCH,
                rotated_by: ClientInfo::default(),
            }))
        };
        let cases: Vec<(Error, &str, bool)> = vec![
            (Error::Expired, "token_expired", true),
            (Error::KeyRevoked, "key_revoked", true),
            (Error::Revoked, "token_revoked", true),
            (Error::SessionRevoked, "token_revoked", true),
            (Error::InactiveSubject, "token_revoked", true),
            (reuse(), "refresh_token_reused", true),
            (Error::SessionExpired, "session_expired", true),
            (Error::UnknownKey, "invalid_token", true),
            (Error::InvalidSignature, "invalid_token", true),
            (Error::WrongClient, "invalid_token", true),
            (Error::InvalidDpopProof(DpopRefusal::Replayed), "invalid_dpop_proof", true),
            (Error::InvalidDpopProof(DpopRefusal::WrongKey), "invalid_dpop_proof", true),
            (Error::UseDpopNonce(NonceRefusal::Stale), "use_dpop_nonce", true),
            (Error::NoSigningKey, "internal_error", false),
            (Error::InvalidConfig("x".into()), "internal_error", false),
            (Error::storage(std::io::Error::other("disk")), "internal_error", false),
            (Error::unavailable(std::io::Error::other("down")), "internal_error", false),
        ];
        for (error, code, rejection) in cases {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.is_token_rejection(), rejection, "{error:?}");
            // The HTTP answer is the code, but for a revoked key, which the contract answers
            // as any other refused token.
            let http = if code == "key_revoked" { "invalid_token" } else { code };
            assert_eq!(error.http_code(), http, "{error:?}");
        }
    }
}
