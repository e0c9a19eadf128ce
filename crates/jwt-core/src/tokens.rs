//! Issuing and verifying tokens. The verifier checks size, structure and header itself before
//! any signature work: the algorithm comes from the key that `kid` selects, and headers that
//! could redirect key selection (`jku`, `x5u`, `jwk`, `x5c`) or demand unknown processing
//! (`crit`) are refused. Only then does jsonwebtoken's crypto check the signature.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};

use crate::claims::{AccessClaims, Audience, NoExtra, RefreshClaims, require_object};
use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::keys::{Algorithm, KeySet, SigningKey, VerifyingKey};
use crate::revocation::RevocationSet;
use crate::values::{Confirmation, Grant, MAX_LEEWAY, Subject};

/// Header `typ` of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Header `typ` of refresh tokens.
pub const REFRESH_TOKEN_TYPE: &str = "refresh+jwt";
/// Header `typ` of sign-in tokens (see [`SignInClaims`]).
pub const SIGN_IN_TOKEN_TYPE: &str = "signin+jwt";
/// The default size limit of a token, in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What tokens say and how long they live. Start from [`TokenPolicy::new`] and adjust fields;
/// [`TokenService::new`] validates the result.
///
/// ```
/// use chrono::TimeDelta;
/// use jwt_core::TokenPolicy;
/// let mut policy = TokenPolicy::new("https://auth.example.com", "api");
/// policy.access_ttl = TimeDelta::minutes(15);
/// assert_eq!(policy.refresh_ttl, TimeDelta::days(7));
/// assert!(policy.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// The `iss` claim of every token, checked on every token.
    pub issuer: String,
    /// The `aud` claim of access tokens, checked on every access token.
    pub audience: String,
    /// Lifetime of access tokens (default 30 minutes).
    pub access_ttl: TimeDelta,
    /// Lifetime of refresh tokens (default 7 days).
    pub refresh_ttl: TimeDelta,
    /// Clock leeway when checking `exp`, `nbf` and `iat` (default 5 s, at most 30 s).
    pub leeway: TimeDelta,
    /// Tokens longer than this are refused before decoding (default 8 KiB).
    pub max_token_bytes: usize,
    /// Whether access tokens carry the `email` claim (default no).
    pub include_email: bool,
}

impl TokenPolicy {
    /// A policy with the defaults and the given issuer and audience.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            access_ttl: TimeDelta::minutes(30),
            refresh_ttl: TimeDelta::days(7),
            leeway: TimeDelta::seconds(5),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            include_email: false,
        }
    }

    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: &str| Err(Error::InvalidConfig(msg.to_owned()));
        if self.issuer.is_empty() {
            return bad("issuer must not be empty");
        }
        if self.audience.is_empty() {
            return bad("audience must not be empty");
        }
        let ten_years = TimeDelta::days(3650);
        for ttl in [self.access_ttl, self.refresh_ttl] {
            if ttl <= TimeDelta::zero() || ttl > ten_years {
                return bad("token lifetimes must be positive and at most ten years");
            }
        }
        if self.leeway < TimeDelta::zero() || self.leeway > MAX_LEEWAY {
            return bad("leeway must be between 0 and 30 seconds");
        }
        if self.max_token_bytes < 256 {
            return bad("the token size limit must be at least 256 bytes");
        }
        Ok(())
    }
}

macro_rules! redacted_token {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, ::serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(pub(crate) String);

        impl $name {
            /// The compact serialization, to hand to the client. Never log it.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// The compact serialization, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

pub(crate) use redacted_token;

redacted_token!(
    /// A signed access token. `Debug` does not show it.
    AccessToken
);
redacted_token!(
    /// A signed refresh token. `Debug` does not show it.
    RefreshToken
);
redacted_token!(
    /// A signed sign-in token (see [`SignInClaims`]). `Debug` does not show it.
    SignInToken
);

/// The claims of a sign-in token (`typ: signin+jwt`): a browser's sign-in session at the
/// server (the session behind its sign-in cookie), so that the user signs in to each client
/// application without typing the password again. It is good for nothing else: not an access
/// token, not a refresh token. Like an access token it is refused once its session (`sid`) is
/// revoked or its user's tokens are cut off, so ending a user's sessions ends it everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInClaims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// The sign-in session.
    pub sid: String,
    /// When the user typed the password (OpenID Connect `auth_time`), seconds since the epoch.
    pub iat: i64,
    /// The sign-in session's end, seconds since the epoch.
    pub exp: i64,
}

/// A freshly signed token with the facts a caller records about it.
#[derive(Debug, Clone)]
pub struct Issued<T> {
    /// The token.
    pub token: T,
    /// Its `jti`.
    pub jti: String,
    /// Its `iat`.
    pub issued_at: DateTime<Utc>,
    /// Its `exp`.
    pub expires_at: DateTime<Utc>,
}

/// An access and a refresh token, serialized as the OAuth 2.0 token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    /// The access token.
    pub access_token: AccessToken,
    /// The refresh token.
    pub refresh_token: RefreshToken,
    /// `Bearer`, or `DPoP` for a pair bound to a key (RFC 9449 §5).
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: i64,
    /// The session both tokens belong to (not part of the token response).
    #[serde(skip)]
    pub session_id: String,
}

/// The header fields we look at. Absent fields cost nothing; the refused ones are recorded as
/// present whatever their value (`null` included) without parsing it. Duplicate names are a
/// parse error.
#[derive(Deserialize)]
pub(crate) struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default, deserialize_with = "present")]
    jku: bool,
    #[serde(default, deserialize_with = "present")]
    x5u: bool,
    #[serde(default, deserialize_with = "present")]
    jwk: bool,
    #[serde(default, deserialize_with = "present")]
    x5c: bool,
    /// A content type: only a nested JWT (`cty: JWT`) would need one, and nesting is never
    /// what this crate issues or accepts (RFC 8725 §2.8: explicit typing, no guessing).
    #[serde(default, deserialize_with = "present")]
    cty: bool,
}

/// A field that is there, whatever its value.
pub(crate) fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

impl<'a> JoseHeader<'a> {
    pub(crate) fn parse(json: &'a [u8]) -> Result<Self> {
        serde_json::from_slice(require_object(json)?)
            .map_err(|_| Error::Malformed("the header is not a JSON object"))
    }

    /// Refuses headers that could redirect key selection or demand unknown processing, and
    /// returns the named algorithm if it is one we verify.
    pub(crate) fn algorithm(&self) -> Result<Algorithm> {
        for (present, name) in [
            (self.jku, "jku"),
            (self.x5u, "x5u"),
            (self.jwk, "jwk"),
            (self.x5c, "x5c"),
            (self.cty, "cty"),
        ] {
            if present {
                return Err(Error::ForbiddenHeader(name));
            }
        }
        if self.crit {
            return Err(Error::UnknownCritical);
        }
        self.alg.as_deref().and_then(Algorithm::from_jose).ok_or(Error::UnsupportedAlgorithm)
    }
}

/// A compact JWS cut into its three parts, not yet decoded.
pub(crate) struct Compact<'t> {
    token: &'t str,
    pub(crate) header: &'t str,
    pub(crate) payload: &'t str,
    signature: &'t str,
}

impl<'t> Compact<'t> {
    pub(crate) fn split(token: &'t str, max_bytes: usize) -> Result<Self> {
        if token.len() > max_bytes {
            return Err(Error::TokenTooLarge { limit: max_bytes });
        }
        let mut parts = token.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(header), Some(payload), Some(signature), None) => {
                Ok(Self { token, header, payload, signature })
            }
            _ => Err(Error::Malformed("expected three dot-separated parts")),
        }
    }

    /// Checks the signature with `key`, whose algorithm must be the header's `alg`.
    pub(crate) fn verify(&self, key: &VerifyingKey, alg: Algorithm) -> Result<()> {
        if key.algorithm() != alg {
            return Err(Error::AlgorithmMismatch);
        }
        if self.signature_verifies(key.decoding_key(), alg) {
            Ok(())
        } else {
            Err(Error::InvalidSignature)
        }
    }

    /// Whether the signature verifies with `key` under `alg`; the caller has matched the two.
    pub(crate) fn signature_verifies(
        &self,
        key: &jsonwebtoken::DecodingKey,
        alg: Algorithm,
    ) -> bool {
        let message = &self.token.as_bytes()[..self.header.len() + 1 + self.payload.len()];
        matches!(jsonwebtoken::crypto::verify(self.signature, message, key, alg.to_jwt()), Ok(true))
    }
}

/// Verifies a compact JWS with one given key and returns its payload, undecoded from JSON.
///
/// This is the lower layer of [`TokenService`]: it checks size, structure, the header (no
/// `jku`/`x5u`/`jwk`/`x5c`/`crit`, an `alg` equal to the key's) and the signature, but neither
/// `typ`, `kid` nor any claim. Use it for JWS objects that are not this library's tokens.
///
/// ```
/// use jwt_core::{Algorithm, SigningKey, verify_jws};
/// let key = SigningKey::generate(Algorithm::HS256)?;
/// let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
/// assert!(verify_jws(forged, key.verifying_key()).is_err());
/// # Ok::<(), jwt_core::Error>(())
/// ```
pub fn verify_jws(token: &str, key: &VerifyingKey) -> Result<Vec<u8>> {
    let compact = Compact::split(token, DEFAULT_MAX_TOKEN_BYTES)?;
    let header_json = b64_decode(compact.header)?;
    let alg = JoseHeader::parse(&header_json)?.algorithm()?;
    compact.verify(key, alg)?;
    b64_decode(compact.payload)
}

/// Media types compare without regard to case, and `application/` may be left out (RFC 7515 §4.1.9).
pub(crate) fn typ_matches(typ: &str, expected: &str) -> bool {
    let bare = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    bare.eq_ignore_ascii_case(expected)
}

pub(crate) fn b64_decode(part: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| Error::Malformed("a part is not base64url"))
}

/// Issues and verifies access and refresh tokens under one [`TokenPolicy`] and [`KeySet`].
///
/// The key set can be swapped while the service is in use ([`TokenService::replace_keys`]);
/// each call sees one consistent set.
///
/// ```
/// use jwt_core::{Algorithm, KeySet, SigningKey, Subject, TokenPolicy, TokenService};
///
/// let keys = KeySet::new(SigningKey::generate(Algorithm::HS256)?);
/// let tokens = TokenService::new(TokenPolicy::new("jwt-auth", "api"), keys)?;
/// let user = Subject { id: "u1".into(), roles: vec!["user".into()], email: None };
/// let issued = tokens.issue_access(&user, "session-1", None)?;
/// let claims = tokens.verify_access_ignoring_revocations(issued.token.expose())?;
/// assert_eq!(claims.sub, "u1");
/// assert_eq!(claims.sid, "session-1");
/// // An access token is no refresh token:
/// assert!(tokens.verify_refresh(issued.token.expose()).is_err());
/// # Ok::<(), jwt_core::Error>(())
/// ```
pub struct TokenService {
    policy: TokenPolicy,
    keys: ArcSwap<KeySet>,
    /// The keys of ID tokens, when they are not the signing keys (see
    /// [`TokenService::replace_id_token_keys`]).
    pub(crate) id_keys: ArcSwapOption<KeySet>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("policy", &self.policy)
            .field("keys", &self.keys.load())
            .finish_non_exhaustive()
    }
}

enum Kind {
    Access,
    Refresh,
    SignIn,
}

impl Kind {
    fn typ(&self) -> &'static str {
        match self {
            Kind::Access => ACCESS_TOKEN_TYPE,
            Kind::Refresh => REFRESH_TOKEN_TYPE,
            Kind::SignIn => SIGN_IN_TOKEN_TYPE,
        }
    }
}

impl TokenService {
    /// A service on the system clock. Fails if the policy is out of range.
    pub fn new(policy: TokenPolicy, keys: KeySet) -> Result<Self> {
        policy.validate()?;
        Ok(Self {
            policy,
            keys: ArcSwap::from_pointee(keys),
            id_keys: ArcSwapOption::empty(),
            clock: Arc::new(SystemClock),
        })
    }

    /// The same service on another clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The policy.
    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The current key set.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Swaps in another key set, e.g. after [`KeySet::rotate`].
    pub fn replace_keys(&self, keys: KeySet) {
        self.keys.store(Arc::new(keys));
    }

    /// Signs an access token for `subject` in session `session_id`. Its expiry is the
    /// policy's lifetime, cut to `not_after` (the session's end) when that comes first.
    pub fn issue_access(
        &self,
        subject: &Subject,
        session_id: &str,
        not_after: Option<DateTime<Utc>>,
    ) -> Result<Issued<AccessToken>> {
        self.issue_access_with(subject, session_id, not_after, NoExtra {})
    }

    /// [`TokenService::issue_access`] with the caller's own claims flattened in.
    pub fn issue_access_with<X: Serialize>(
        &self,
        subject: &Subject,
        session_id: &str,
        not_after: Option<DateTime<Utc>>,
        extra: X,
    ) -> Result<Issued<AccessToken>> {
        self.issue(subject, session_id, not_after, None, None, extra)
    }

    /// Signs an access token of a session granted to a client application (see [`Grant`]):
    /// [`TokenService::issue_access`] with the grant's `client_id` and `scope` claims, and its
    /// audience instead of the policy's when it has one.
    ///
    /// ```
    /// use jwt_core::{Algorithm, Grant, KeySet, SigningKey, Subject, TokenPolicy, TokenService};
    ///
    /// let keys = KeySet::new(SigningKey::generate(Algorithm::HS256)?);
    /// let tokens = TokenService::new(TokenPolicy::new("jwt-auth", "api"), keys)?;
    /// let user = Subject { id: "u1".into(), roles: vec![], email: None };
    /// let grant = Grant { client_id: "spa".into(), scope: "email".into(), audience: None };
    /// let issued = tokens.issue_granted_access(&user, "s1", None, &grant)?;
    /// let claims = tokens.verify_access_ignoring_revocations(issued.token.expose())?;
    /// assert_eq!(claims.client_id.as_deref(), Some("spa"));
    /// assert!(claims.has_scope("email"));
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn issue_granted_access(
        &self,
        subject: &Subject,
        session_id: &str,
        not_after: Option<DateTime<Utc>>,
        grant: &Grant,
    ) -> Result<Issued<AccessToken>> {
        self.issue(subject, session_id, not_after, Some(grant), None, NoExtra {})
    }

    /// Signs an access token bound to a DPoP key (RFC 9449 §6): [`TokenService::issue_access`],
    /// or [`TokenService::issue_granted_access`] with a `grant`, carrying `cnf`. A resource
    /// server accepts it only with a proof signed by that key
    /// ([`VerifiedProof::check_binding`](crate::VerifiedProof::check_binding)).
    ///
    /// ```
    /// use jwt_core::{Algorithm, Confirmation, KeySet, SigningKey, Subject, TokenPolicy, TokenService};
    ///
    /// let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA)?);
    /// let tokens = TokenService::new(TokenPolicy::new("jwt-auth", "api"), keys)?;
    /// let user = Subject { id: "u1".into(), roles: vec![], email: None };
    /// let cnf = Confirmation { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into() };
    /// let issued = tokens.issue_bound_access(&user, "s1", None, None, &cnf)?;
    /// let claims = tokens.verify_access_ignoring_revocations(issued.token.expose())?;
    /// assert_eq!(claims.cnf, Some(cnf));
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn issue_bound_access(
        &self,
        subject: &Subject,
        session_id: &str,
        not_after: Option<DateTime<Utc>>,
        grant: Option<&Grant>,
        cnf: &Confirmation,
    ) -> Result<Issued<AccessToken>> {
        self.issue(subject, session_id, not_after, grant, Some(cnf), NoExtra {})
    }

    pub(crate) fn issue<X: Serialize>(
        &self,
        subject: &Subject,
        session_id: &str,
        not_after: Option<DateTime<Utc>>,
        grant: Option<&Grant>,
        cnf: Option<&Confirmation>,
        extra: X,
    ) -> Result<Issued<AccessToken>> {
        let (iat, exp) = self.lifetime(self.policy.access_ttl, not_after);
        let jti = uuid::Uuid::new_v4().to_string();
        let audience = grant.and_then(|g| g.audience.as_ref()).unwrap_or(&self.policy.audience);
        let claims = AccessClaims {
            iss: self.policy.issuer.clone(),
            sub: subject.id.clone(),
            aud: Audience::One(audience.clone()),
            exp: exp.timestamp(),
            nbf: iat.timestamp(),
            iat: iat.timestamp(),
            jti: jti.clone(),
            sid: session_id.to_owned(),
            roles: subject.roles.clone(),
            email: if self.policy.include_email { subject.email.clone() } else { None },
            client_id: grant.map(|g| g.client_id.clone()),
            scope: grant.map(|g| g.scope.clone()),
            cnf: cnf.cloned(),
            extra,
        };
        let token = self.sign(Kind::Access, &claims)?;
        Ok(Issued { token: AccessToken(token), jti, issued_at: iat, expires_at: exp })
    }

    /// Signs a refresh token for `subject_id` in session `session_id`, expiring after the
    /// policy's lifetime or at `not_after`, whichever comes first.
    pub fn issue_refresh(
        &self,
        subject_id: &str,
        session_id: &str,
        not_after: Option<DateTime<Utc>>,
    ) -> Result<Issued<RefreshToken>> {
        self.sign_refresh(subject_id, session_id, not_after, None)
    }

    /// [`TokenService::issue_refresh`] bound to a DPoP key (RFC 9449 §5): it carries `cnf`,
    /// and [`Sessions::refresh`](crate::Sessions::refresh) takes it only from a request that
    /// proved that key ([`ClientInfo::proven_key`](crate::ClientInfo::proven_key)).
    ///
    /// ```
    /// use jwt_core::{Algorithm, Confirmation, KeySet, SigningKey, TokenPolicy, TokenService};
    ///
    /// let keys = KeySet::new(SigningKey::generate(Algorithm::EdDSA)?);
    /// let tokens = TokenService::new(TokenPolicy::new("jwt-auth", "api"), keys)?;
    /// let cnf = Confirmation { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into() };
    /// let issued = tokens.issue_bound_refresh("u1", "s1", None, &cnf)?;
    /// assert_eq!(tokens.verify_refresh(issued.token.expose())?.cnf, Some(cnf));
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn issue_bound_refresh(
        &self,
        subject_id: &str,
        session_id: &str,
        not_after: Option<DateTime<Utc>>,
        cnf: &Confirmation,
    ) -> Result<Issued<RefreshToken>> {
        self.sign_refresh(subject_id, session_id, not_after, Some(cnf))
    }

    pub(crate) fn sign_refresh(
        &self,
        subject_id: &str,
        session_id: &str,
        not_after: Option<DateTime<Utc>>,
        cnf: Option<&Confirmation>,
    ) -> Result<Issued<RefreshToken>> {
        let (iat, exp) = self.lifetime(self.policy.refresh_ttl, not_after);
        let claims = RefreshClaims {
            iss: self.policy.issuer.clone(),
            sub: subject_id.to_owned(),
            exp: exp.timestamp(),
            iat: iat.timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
            sid: session_id.to_owned(),
            cnf: cnf.cloned(),
        };
        let token = self.sign(Kind::Refresh, &claims)?;
        Ok(Issued { token: RefreshToken(token), jti: claims.jti, issued_at: iat, expires_at: exp })
    }

    /// Signs a sign-in token for user `subject_id` in sign-in session `session_id`, who typed
    /// the password at `auth_time`; it expires at `expires_at`.
    ///
    /// ```
    /// use chrono::{TimeDelta, Utc};
    /// use jwt_core::{Algorithm, KeySet, RevocationSet, SigningKey, TokenPolicy, TokenService};
    ///
    /// let keys = KeySet::new(SigningKey::generate(Algorithm::HS256)?);
    /// let tokens = TokenService::new(TokenPolicy::new("jwt-auth", "api"), keys)?;
    /// let now = Utc::now();
    /// let token = tokens.issue_sign_in("u1", "browser-1", now, now + TimeDelta::days(1))?;
    /// let claims = tokens.verify_sign_in(token.expose(), &RevocationSet::new())?;
    /// assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("u1", "browser-1"));
    /// // It is no access token:
    /// assert!(tokens.verify_access_ignoring_revocations(token.expose()).is_err());
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn issue_sign_in(
        &self,
        subject_id: &str,
        session_id: &str,
        auth_time: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<SignInToken> {
        let claims = SignInClaims {
            iss: self.policy.issuer.clone(),
            sub: subject_id.to_owned(),
            sid: session_id.to_owned(),
            iat: auth_time.timestamp(),
            exp: expires_at.timestamp(),
        };
        Ok(SignInToken(self.sign(Kind::SignIn, &claims)?))
    }

    /// Verifies a sign-in token without I/O: header, key, signature, `typ`, `iss`, times, and
    /// `revocations` as for access tokens (a revoked key, session or user cut-off refuses it).
    pub fn verify_sign_in(&self, token: &str, revocations: &RevocationSet) -> Result<SignInClaims> {
        let payload =
            self.verify_signed_unless(token, Kind::SignIn, |kid| revocations.is_key_revoked(kid))?;
        let claims: SignInClaims = crate::claims::parse(&payload)?;
        if claims.iss != self.policy.issuer {
            return Err(Error::InvalidIssuer);
        }
        self.check_times(claims.exp, None, claims.iat)?;
        if revocations.is_revoked(&claims.sid, &claims.sub, claims.iat) {
            return Err(Error::Revoked);
        }
        Ok(claims)
    }

    /// Verifies an access token as [`TokenService::verify_access`] does, **without** the
    /// revocation checks: a logged-out session's token passes. For what must accept such a
    /// token (a logout, which may end a session again; introspection of a token's own form);
    /// a request is authenticated with [`TokenService::verify_access`] or
    /// [`Sessions::authenticate`](crate::Sessions::authenticate).
    pub fn verify_access_ignoring_revocations(&self, token: &str) -> Result<AccessClaims<NoExtra>> {
        self.verify_access_ignoring_revocations_with(token)
    }

    /// [`TokenService::verify_access_ignoring_revocations`] for tokens that carry the caller's
    /// own claims `X`.
    pub fn verify_access_ignoring_revocations_with<X: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<AccessClaims<X>> {
        let payload = self.verify_signed(token, Kind::Access)?;
        self.access_claims(&payload)
    }

    /// The claims of a verified access token's payload, checked: issuer, audience, times.
    fn access_claims<X: DeserializeOwned>(&self, payload: &[u8]) -> Result<AccessClaims<X>> {
        let claims = AccessClaims::<X>::from_json(payload)?;
        if claims.iss != self.policy.issuer {
            return Err(Error::InvalidIssuer);
        }
        if !claims.aud.contains(&self.policy.audience) {
            return Err(Error::InvalidAudience);
        }
        self.check_times(claims.exp, Some(claims.nbf), claims.iat)?;
        Ok(claims)
    }

    /// Verifies a refresh token: size, header, key, signature, `typ`, `iss`, `exp`, `iat`.
    /// Whether it is still current is the store's business.
    pub fn verify_refresh(&self, token: &str) -> Result<RefreshClaims> {
        match self.verify_refresh_even_expired(token)? {
            (_, true) => Err(Error::Expired),
            (claims, false) => Ok(claims),
        }
    }

    /// [`TokenService::verify_refresh`], except that an expired but otherwise valid token is
    /// returned, flagged `true`: refresh needs to tell a token that ran out from a session
    /// that ended.
    pub(crate) fn verify_refresh_even_expired(&self, token: &str) -> Result<(RefreshClaims, bool)> {
        let payload = self.verify_signed(token, Kind::Refresh)?;
        let claims = RefreshClaims::from_json(&payload)?;
        if claims.iss != self.policy.issuer {
            return Err(Error::InvalidIssuer);
        }
        match self.check_times(claims.exp, None, claims.iat) {
            Ok(()) => Ok((claims, false)),
            Err(Error::Expired) => Ok((claims, true)),
            Err(e) => Err(e),
        }
    }

    fn lifetime(
        &self,
        ttl: TimeDelta,
        not_after: Option<DateTime<Utc>>,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        let now = self.clock.now();
        let exp = now + ttl;
        (now, not_after.map_or(exp, |cap| exp.min(cap)))
    }

    fn sign<C: Serialize>(&self, kind: Kind, claims: &C) -> Result<String> {
        let keys = self.keys.load();
        let key = keys.active().ok_or(Error::NoSigningKey)?;
        sign_with(key, kind.typ(), claims)
    }

    /// Verifies a token of header `typ` against the first key of `key_sets` its `kid` names:
    /// size, header, key, signature; the decoded payload.
    pub(crate) fn verify_signed_by(
        &self,
        token: &str,
        typ: &str,
        key_sets: &[&KeySet],
    ) -> Result<Vec<u8>> {
        let compact = Compact::split(token, self.policy.max_token_bytes)?;
        let header_json = b64_decode(compact.header)?;
        let header = JoseHeader::parse(&header_json)?;
        let alg = header.algorithm()?;
        if !header.typ.as_deref().is_some_and(|t| typ_matches(t, typ)) {
            return Err(Error::WrongTokenType);
        }
        let kid = header.kid.as_deref().ok_or(Error::MissingKeyId)?;
        let key = key_sets.iter().find_map(|set| set.find(kid)).ok_or(Error::UnknownKey)?;
        compact.verify(key, alg)?;
        b64_decode(compact.payload)
    }

    /// The clock's time, for the other token kinds of this crate.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

/// Signs `claims` with `key` under a header of `typ`.
pub(crate) fn sign_with<C: Serialize>(key: &SigningKey, typ: &str, claims: &C) -> Result<String> {
    let header = encoded_header(key, typ);
    let payload = serde_json::to_vec(claims).map_err(|e| Error::Signing(e.to_string()))?;
    let mut message = String::with_capacity(header.len() + payload.len() * 4 / 3 + 100);
    message.push_str(&header);
    message.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut message);
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        key.encoding_key(),
        key.algorithm().to_jwt(),
    )
    .map_err(|e| Error::Signing(e.to_string()))?;
    message.push('.');
    message.push_str(&signature);
    Ok(message)
}

impl TokenService {
    /// Verifies an access token, all of it, without I/O: size, header, key, signature, `typ`,
    /// `iss`, `aud`, `exp`, `nbf`, `iat` and every claim, then `revocations`: a token signed
    /// with a revoked key is refused as [`Error::KeyRevoked`], one of a revoked session or
    /// issued before its subject's cut-off as [`Error::Revoked`]. What a server, or another
    /// service that follows the server's revocation feed, runs on every request.
    ///
    /// ```
    /// use chrono::{TimeDelta, Utc};
    /// use jwt_core::{
    ///     Algorithm, Error, KeySet, Revocation, RevocationSet, SigningKey, Subject, TokenPolicy,
    ///     TokenService,
    /// };
    ///
    /// let key = SigningKey::generate(Algorithm::EdDSA)?;
    /// let kid = key.kid().to_owned();
    /// let tokens = TokenService::new(TokenPolicy::new("https://auth.example", "api"), KeySet::new(key))?;
    /// let alice = Subject { id: "alice".into(), roles: vec![], email: None };
    /// let issued = tokens.issue_access(&alice, "s1", None)?;
    /// let revocations = RevocationSet::new();
    /// assert!(tokens.verify_access(issued.token.expose(), &revocations).is_ok());
    ///
    /// let expires_at = Utc::now() + TimeDelta::hours(1);
    /// revocations.apply(&[Revocation::Session { id: "s1".into(), expires_at }]);
    /// let refused = tokens.verify_access(issued.token.expose(), &revocations);
    /// assert!(matches!(refused, Err(Error::Revoked)));
    /// revocations.apply(&[Revocation::Key { kid, expires_at }]);
    /// let refused = tokens.verify_access(issued.token.expose(), &revocations);
    /// assert!(matches!(refused, Err(Error::KeyRevoked)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn verify_access(
        &self,
        token: &str,
        revocations: &RevocationSet,
    ) -> Result<AccessClaims<NoExtra>> {
        self.verify_access_with(token, revocations)
    }

    /// [`TokenService::verify_access`] for tokens that carry the caller's own claims.
    pub fn verify_access_with<X: DeserializeOwned>(
        &self,
        token: &str,
        revocations: &RevocationSet,
    ) -> Result<AccessClaims<X>> {
        let payload =
            self.verify_signed_unless(token, Kind::Access, |kid| revocations.is_key_revoked(kid))?;
        let claims = self.access_claims::<X>(&payload)?;
        if revocations.is_revoked(&claims.sid, &claims.sub, claims.iat) {
            return Err(Error::Revoked);
        }
        Ok(claims)
    }

    fn verify_signed(&self, token: &str, kind: Kind) -> Result<Vec<u8>> {
        self.verify_signed_unless(token, kind, |_| false)
    }

    /// Verifies the signature of `token` with the key its `kid` names, unless `revoked` says
    /// that key is revoked.
    fn verify_signed_unless(
        &self,
        token: &str,
        kind: Kind,
        revoked: impl Fn(&str) -> bool,
    ) -> Result<Vec<u8>> {
        let compact = Compact::split(token, self.policy.max_token_bytes)?;
        let header_json = b64_decode(compact.header)?;
        let header = JoseHeader::parse(&header_json)?;
        let alg = header.algorithm()?;
        if !header.typ.as_deref().is_some_and(|typ| typ_matches(typ, kind.typ())) {
            return Err(Error::WrongTokenType);
        }
        let kid = header.kid.as_deref().ok_or(Error::MissingKeyId)?;
        if revoked(kid) {
            return Err(Error::KeyRevoked);
        }
        let keys = self.keys.load();
        let key = keys.find(kid).ok_or(Error::UnknownKey)?;
        compact.verify(key, alg)?;
        b64_decode(compact.payload)
    }

    fn check_times(&self, exp: i64, nbf: Option<i64>, iat: i64) -> Result<()> {
        let now = self.clock.now().timestamp();
        let leeway = self.policy.leeway.num_seconds();
        if now >= exp.saturating_add(leeway) {
            return Err(Error::Expired);
        }
        let now_plus = now.saturating_add(leeway);
        if nbf.is_some_and(|nbf| nbf > now_plus) || iat > now_plus {
            return Err(Error::NotYetValid);
        }
        Ok(())
    }
}

fn encoded_header(key: &SigningKey, typ: &str) -> String {
    #[derive(Serialize)]
    struct Header<'a> {
        alg: &'a str,
        typ: &'a str,
        kid: &'a str,
    }
    let json = serde_json::to_vec(&Header { alg: key.algorithm().as_str(), typ, kid: key.kid() })
        .expect("a header of three strings serializes");
    URL_SAFE_NO_PAD.encode(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_comparison_follows_rfc_7515() {
        assert!(typ_matches("at+jwt", "at+jwt"));
        assert!(typ_matches("AT+JWT", "at+jwt"));
        assert!(typ_matches("application/at+jwt", "at+jwt"));
        assert!(!typ_matches("JWT", "at+jwt"));
        assert!(!typ_matches("refresh+jwt", "at+jwt"));
        assert!(!typ_matches("application/", "at+jwt"));
    }

    /// Found by fuzzing (`fuzz/`, target `token_claims`): a header or claims with invalid
    /// UTF-8 in a member that is not read verified, as serde_json skips such members unchecked.
    #[test]
    fn a_header_or_claims_that_is_not_utf8_is_refused() {
        let key = SigningKey::generate(Algorithm::HS256).unwrap();
        let tokens = TokenService::new(TokenPolicy::new("i", "a"), KeySet::new(key.clone()))
            .unwrap()
            .with_clock(Arc::new(crate::clock::ManualClock::new(
                DateTime::from_timestamp(1_000, 0).unwrap(),
            )));
        let sign = |header: &[u8], claims: &[u8]| {
            let mut token = URL_SAFE_NO_PAD.encode(header);
            token.push('.');
            URL_SAFE_NO_PAD.encode_string(claims, &mut token);
            let signature = jsonwebtoken::crypto::sign(
                token.as_bytes(),
                key.encoding_key(),
                jsonwebtoken::Algorithm::HS256,
            )
            .unwrap();
            format!("{token}.{signature}")
        };
        let header = |extra: &[u8]| {
            let kid = key.kid();
            [
                format!(r#"{{"alg":"HS256","typ":"refresh+jwt","kid":"{kid}","x":""#).as_bytes(),
                extra,
                b"\"}",
            ]
            .concat()
        };
        let claims = |extra: &[u8]| {
            let claims = r#"{"iss":"i","sub":"s","exp":2000,"iat":1000,"jti":"j","sid":"x","x":""#;
            [claims.as_bytes(), extra, b"\"}"].concat()
        };
        assert!(tokens.verify_refresh(&sign(&header(b"ok"), &claims(b"ok"))).is_ok());
        let bad_header = tokens.verify_refresh(&sign(&header(b"\xff"), &claims(b"ok")));
        assert!(matches!(bad_header, Err(Error::Malformed(_))), "{bad_header:?}");
        let bad_claims = tokens.verify_refresh(&sign(&header(b"ok"), &claims(b"\xff")));
        assert!(matches!(bad_claims, Err(Error::InvalidClaims)), "{bad_claims:?}");
    }

    #[test]
    fn policy_refuses_out_of_range_values() {
        let mut p = TokenPolicy::new("i", "a");
        p.leeway = TimeDelta::seconds(31);
        assert!(p.validate().is_err());
        let mut p = TokenPolicy::new("i", "a");
        p.access_ttl = TimeDelta::zero();
        assert!(p.validate().is_err());
        assert!(TokenPolicy::new("", "a").validate().is_err());
    }

    #[test]
    fn policy_refuses_each_bound_and_accepts_its_edge() {
        let edited = |edit: fn(&mut TokenPolicy)| {
            let mut p = TokenPolicy::new("i", "a");
            edit(&mut p);
            p.validate()
        };
        assert!(edited(|_| {}).is_ok(), "the defaults");
        assert!(TokenPolicy::new("i", "").validate().is_err(), "no audience");
        assert!(edited(|p| p.refresh_ttl = TimeDelta::days(3651)).is_err());
        assert!(edited(|p| p.refresh_ttl = TimeDelta::days(3650)).is_ok());
        assert!(edited(|p| p.leeway = TimeDelta::seconds(-1)).is_err());
        assert!(edited(|p| p.leeway = MAX_LEEWAY).is_ok());
        assert!(edited(|p| p.max_token_bytes = 255).is_err());
        assert!(edited(|p| p.max_token_bytes = 256).is_ok());
    }

    #[test]
    fn tokens_and_the_service_debug_without_a_token() {
        let keys = KeySet::new(SigningKey::generate(Algorithm::HS256).unwrap());
        let service = TokenService::new(TokenPolicy::new("i", "a"), keys).unwrap();
        let subject = Subject { id: "u".into(), roles: vec![], email: None };
        let access = service.issue_access(&subject, "s", None).unwrap().token;
        assert_eq!(format!("{access:?}"), "AccessToken([redacted])");
        let refresh = service.issue_refresh("u", "s", None).unwrap().token;
        assert_eq!(format!("{refresh:?}"), "RefreshToken([redacted])");
        assert!(!format!("{service:?}").contains(access.expose()));
        assert!(format!("{service:?}").starts_with("TokenService"));
    }
}
