//! DPoP proofs (RFC 9449): a client signs a short JWT with a key of its own for each request,
//! and a token bound to that key (`cnf.jkt`, [`Confirmation`]) is good for nothing without
//! such a proof. [`DpopVerifier`] checks a proof against the request's method and URL, the
//! clock, the proofs it has seen, and, when required, a server nonce ([`DpopNonces`]) that
//! every instance holding the same secret accepts. The request comes as plain values: nothing
//! here knows HTTP.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use aws_lc_rs::{constant_time, digest, hkdf, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::bearer::TokenScheme;
use crate::claims::require_object;
use crate::clock::{Clock, SystemClock};
use crate::error::{DpopRefusal, Error, NonceRefusal, ReplayCacheFull, Result};
use crate::keys::{Algorithm, MIN_SECRET_BYTES, SigningKey};
use crate::tokens::{Compact, b64_decode, present, typ_matches};
use crate::values::Confirmation;

/// Header `typ` of DPoP proofs (RFC 9449 §4.2).
pub const DPOP_PROOF_TYPE: &str = "dpop+jwt";

/// The default size limit of a proof, in bytes: an RS256 proof of a 4096-bit key takes 2 KiB.
pub const DEFAULT_MAX_PROOF_BYTES: usize = 8 * 1024;

/// At most how many bytes of memory one remembered proof takes in the replay cache of a
/// [`DpopVerifier`]: an 8-byte key and an 8-byte expiry in a hash table, with the table's
/// control byte and its free slots (a table is between 44% and 87% full). Measured over
/// 610,000 and 1,000,000 proofs (resident memory, x86-64): 31 and 38 bytes each.
///
/// A proof is remembered until its `iat` leaves the window ([`DpopPolicy::iat_window`]), so
/// at `r` proofs a second the cache holds about `r` × the window's seconds (up to twice that
/// for proofs dated ahead by clients whose clocks run fast): at 10,000 proofs a second and the
/// default 60 seconds, 610,000 proofs, under 25 MB. The default
/// [`DpopPolicy::replay_capacity`] of 1,000,000 proofs bounds it to 40 MB.
///
/// ```
/// use jwt_core::{DpopPolicy, REPLAY_ENTRY_BYTES};
/// let at_10_000_per_second = 10_000 * 61 * REPLAY_ENTRY_BYTES;
/// assert!(at_10_000_per_second < 25_000_000);
/// let bound = DpopPolicy::default().replay_capacity as usize * REPLAY_ENTRY_BYTES;
/// assert!(bound <= 40_000_000);
/// ```
pub const REPLAY_ENTRY_BYTES: usize = 40;

/// What a [`DpopVerifier`] accepts, in the manner of jsonwebtoken's `Validation`: start from
/// [`DpopPolicy::default`] and adjust fields; [`DpopVerifier::new`] validates the result.
///
/// ```
/// use chrono::TimeDelta;
/// use jwt_core::{Algorithm, DpopPolicy};
///
/// let mut policy = DpopPolicy::default();
/// assert_eq!(policy.algorithms, [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256]);
/// assert_eq!(policy.iat_window, TimeDelta::seconds(60));
/// policy.algorithms = vec![Algorithm::EdDSA];
/// assert!(policy.validate().is_ok());
/// policy.algorithms = vec![Algorithm::HS256];
/// assert!(policy.validate().is_err(), "a proof is never signed with a shared secret");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopPolicy {
    /// The algorithms a proof may be signed with (default ES256, EdDSA and RS256; HS256 is
    /// never accepted, `none` never named).
    pub algorithms: Vec<Algorithm>,
    /// Proofs longer than this are refused before decoding (default 8 KiB, between 2 and
    /// 64 KiB).
    pub max_proof_bytes: usize,
    /// How far a proof's `iat` may be from the clock, either way (default 60 s, between 1 s
    /// and 5 minutes). A proof's `jti` is remembered until its `iat` is that far in the past.
    pub iat_window: TimeDelta,
    /// The longest `jti` accepted, in bytes (default 256, between 16 and 1024).
    pub max_jti_bytes: usize,
    /// How many proofs the replay cache remembers at most (default 1,000,000, at least 1).
    /// When it is full, a new proof is refused with [`ReplayCacheFull`] (inside
    /// [`Error::Unavailable`]) rather than a remembered one forgotten; see
    /// [`REPLAY_ENTRY_BYTES`] for the memory it takes.
    pub replay_capacity: u64,
}

impl Default for DpopPolicy {
    fn default() -> Self {
        Self {
            algorithms: vec![Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256],
            max_proof_bytes: DEFAULT_MAX_PROOF_BYTES,
            iat_window: TimeDelta::seconds(60),
            max_jti_bytes: 256,
            replay_capacity: 1_000_000,
        }
    }
}

impl DpopPolicy {
    /// Checks that every value is in range.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: &str| Err(Error::InvalidConfig(msg.to_owned()));
        if self.algorithms.is_empty() {
            return bad("DPoP proofs need at least one algorithm");
        }
        if self.algorithms.iter().any(|alg| alg.is_symmetric()) {
            return bad("DPoP proofs are signed with a public key: HS256 cannot be accepted");
        }
        if !(2 * 1024..=64 * 1024).contains(&self.max_proof_bytes) {
            return bad("the DPoP proof size limit must be between 2 and 64 KiB");
        }
        if self.iat_window < TimeDelta::seconds(1) || self.iat_window > TimeDelta::minutes(5) {
            return bad("the DPoP `iat` window must be between 1 second and 5 minutes");
        }
        if !(16..=1024).contains(&self.max_jti_bytes) {
            return bad("the DPoP `jti` limit must be between 16 and 1024 bytes");
        }
        if self.replay_capacity == 0 {
            return bad("the DPoP replay cache must hold at least one proof");
        }
        Ok(())
    }
}

/// The request a DPoP proof came with, as plain values.
///
/// `Debug` shows neither the access token nor the URL's query.
///
/// ```
/// use jwt_core::DpopRequest;
/// let request = DpopRequest {
///     method: "GET",
///     url: "https://api.example/me?code=secret",
///     access_token: Some("eyJ..."),
/// };
/// let shown = format!("{request:?}");
/// assert!(!shown.contains("eyJ") && !shown.contains("secret"));
/// ```
#[derive(Clone, Copy)]
pub struct DpopRequest<'a> {
    /// The HTTP method, as sent (`POST`, `GET`): compared with `htm` exactly.
    pub method: &'a str,
    /// The absolute URL the request was sent to (as the client saw it: the public scheme,
    /// host and port); compared with `htu` without query and fragment, after normalisation.
    pub url: &'a str,
    /// The access token presented with the proof, if any: the proof's `ath` must then be its
    /// hash. `None` at the token endpoint, where `ath` is ignored.
    pub access_token: Option<&'a str>,
}

impl fmt::Debug for DpopRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.url.split(['?', '#']).next().unwrap_or_default();
        f.debug_struct("DpopRequest")
            .field("method", &self.method)
            .field("url", &url)
            .field("access_token", &self.access_token.map(|_| "[redacted]"))
            .finish()
    }
}

/// What an accepted DPoP proof establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedProof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key, base64url: the `cnf.jkt` of a
    /// token issued with it, and the key a refresh token is bound to.
    pub jkt: String,
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: DateTime<Utc>,
    /// The algorithm the proof was signed with.
    pub algorithm: Algorithm,
}

impl VerifiedProof {
    /// The `cnf` claim of a token issued with this proof (see [`DpopVerifier::verify`] for a
    /// proof verified).
    pub fn confirmation(&self) -> Confirmation {
        Confirmation { jkt: self.jkt.clone() }
    }

    /// Checks that the access token presented with this proof is bound to the proof's key:
    /// its `cnf.jkt` (`confirmation`) is the proof's thumbprint, compared in constant time.
    /// A token bound to no key is refused too ([`DpopRefusal::TokenNotBound`]): it is no
    /// DPoP token.
    ///
    /// ```
    /// use jwt_core::{Confirmation, DpopRefusal, Error};
    /// # fn check(proof: jwt_core::VerifiedProof) -> Result<(), Error> {
    /// let bound = Confirmation { jkt: proof.jkt.clone() };
    /// proof.check_binding(Some(&bound))?;
    /// let other = Confirmation { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into() };
    /// assert!(matches!(
    ///     proof.check_binding(Some(&other)),
    ///     Err(Error::InvalidDpopProof(DpopRefusal::WrongKey))
    /// ));
    /// assert!(proof.check_binding(None).is_err());
    /// # Ok(()) }
    /// ```
    pub fn check_binding(&self, confirmation: Option<&Confirmation>) -> Result<()> {
        let cnf = confirmation.ok_or(Error::InvalidDpopProof(DpopRefusal::TokenNotBound))?;
        if constant_time::verify_slices_are_equal(cnf.jkt.as_bytes(), self.jkt.as_bytes()).is_err()
        {
            return Err(Error::InvalidDpopProof(DpopRefusal::WrongKey));
        }
        Ok(())
    }
}

/// Checks DPoP proofs (RFC 9449 §4.3): size first; then the header (`typ: dpop+jwt`, an
/// accepted `alg`, a public `jwk` of that algorithm's key type, no `jku`/`x5u`/`x5c`/`cty`/
/// `crit`); the signature with that `jwk`; the claims `htm` and `htu` against the request,
/// `iat` within the window of the clock, `jti`, `ath` when an access token is presented; the
/// server nonce when [`DpopNonces`] are set; and last, that no proof of the same key with the
/// same `jti` was accepted within the window. Each failure is its own [`DpopRefusal`] inside
/// [`Error::InvalidDpopProof`], but a nonce's, [`Error::UseDpopNonce`].
///
/// The replay cache lives in the verifier: share one verifier (in an `Arc`) between every
/// request of an instance. Each instance has its own cache; a replay to another instance
/// within the window is caught only by nonces, whose period bounds it, or not at all.
///
/// ```
/// use std::sync::Arc;
/// use chrono::{TimeZone, Utc};
/// use jwt_core::{DpopPolicy, DpopRefusal, DpopRequest, DpopVerifier, Error, ManualClock};
///
/// let clock = Arc::new(ManualClock::new(Utc.timestamp_opt(1_700_000_000, 0).unwrap()));
/// let verifier = DpopVerifier::new(DpopPolicy::default())?.with_clock(clock);
/// let request = DpopRequest { method: "POST", url: "https://auth.example/token", access_token: None };
/// // A proof signed with `alg: none` is refused before any signature work.
/// let forged = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6Im5vbmUifQ.e30.";
/// assert!(matches!(
///     verifier.verify(forged, &request),
///     Err(Error::InvalidDpopProof(DpopRefusal::UnsupportedAlgorithm))
/// ));
/// # Ok::<(), Error>(())
/// ```
pub struct DpopVerifier {
    policy: DpopPolicy,
    seen: ReplayCache,
    nonces: ArcSwapOption<DpopNonces>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopVerifier")
            .field("policy", &self.policy)
            .field("nonces", &self.nonces.load())
            .field("remembered", &self.seen.len())
            .finish_non_exhaustive()
    }
}

/// The claims of a proof that are read. Absent ones are reported by name; a present one of
/// another type makes the claims invalid.
#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<serde_json::Number>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// The header fields of a proof that are read; the refused ones are recorded as present
/// whatever their value, as in access tokens.
#[derive(Deserialize)]
struct ProofHeader<'a> {
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<Cow<'a, str>>,
    jwk: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    #[serde(default, deserialize_with = "present")]
    jku: bool,
    #[serde(default, deserialize_with = "present")]
    x5u: bool,
    #[serde(default, deserialize_with = "present")]
    x5c: bool,
    #[serde(default, deserialize_with = "present")]
    cty: bool,
}

/// A proof whose signature and claims hold, before its nonce and its `jti` are checked.
struct CheckedProof {
    proof: VerifiedProof,
    nonce: Option<String>,
}

impl DpopVerifier {
    /// A verifier on the system clock, without nonces. Fails if the policy is out of range.
    pub fn new(policy: DpopPolicy) -> Result<Self> {
        policy.validate()?;
        let seen = ReplayCache::new(policy.replay_capacity);
        Ok(Self { policy, seen, nonces: ArcSwapOption::empty(), clock: Arc::new(SystemClock) })
    }

    /// The same verifier on another clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same verifier requiring a current nonce of `nonces` in every proof.
    pub fn with_nonces(self, nonces: DpopNonces) -> Self {
        self.set_nonces(Some(nonces));
        self
    }

    /// Requires a current nonce of `nonces` in every proof from now on (`None`: no nonce), in
    /// place: for nonces whose secret changes, such as those of a signing key
    /// ([`DpopNonces::from_signing_key`]) when the keys rotate.
    pub fn set_nonces(&self, nonces: Option<DpopNonces>) {
        self.nonces.store(nonces.map(Arc::new));
    }

    /// The policy.
    pub fn policy(&self) -> &DpopPolicy {
        &self.policy
    }

    /// The nonce to send now (in a `DPoP-Nonce` header), when nonces are required.
    pub fn nonce(&self) -> Option<String> {
        self.nonces.load().as_ref().map(|nonces| nonces.issue(self.clock.now()))
    }

    /// How many proofs the replay cache remembers now (approximately: expired ones are
    /// counted until the cache sweeps them).
    pub fn remembered(&self) -> u64 {
        self.seen.len()
    }

    /// Checks `proof` (the `DPoP` header's value) for `request`; see [`DpopVerifier`] for
    /// what is checked. An accepted proof is remembered: the same proof again is refused as
    /// [`DpopRefusal::Replayed`].
    ///
    /// `request.url` is built by the server, but its path is the client's: a URL that does
    /// not normalise (a `%` that starts no escape) matches no proof ([`DpopRefusal::WrongUrl`]).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use base64::Engine;
    /// use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    /// use chrono::{TimeZone, Utc};
    /// use jwt_core::{
    ///     Algorithm, Confirmation, DpopPolicy, DpopRefusal, DpopRequest, DpopVerifier, Error,
    ///     ManualClock, SigningKey, access_token_hash,
    /// };
    ///
    /// // The client's key, and a proof it signs for a request to the API with its token.
    /// let key = SigningKey::generate(Algorithm::EdDSA)?;
    /// let token = "the.access.token";
    /// let header = serde_json::json!({
    ///     "typ": "dpop+jwt", "alg": "EdDSA", "jwk": key.verifying_key().to_jwk(),
    /// });
    /// let claims = serde_json::json!({
    ///     "jti": "e1j3V_bKic8-LAEB", "htm": "GET", "htu": "https://api.example/me",
    ///     "iat": 1_700_000_000, "ath": access_token_hash(token),
    /// });
    /// let message = format!(
    ///     "{}.{}",
    ///     URL_SAFE_NO_PAD.encode(header.to_string()),
    ///     URL_SAFE_NO_PAD.encode(claims.to_string()),
    /// );
    /// let signing = jsonwebtoken::EncodingKey::from_ed_pem(key.to_pem()?.as_bytes()).unwrap();
    /// let signature = jsonwebtoken::crypto::sign(
    ///     message.as_bytes(), &signing, jsonwebtoken::Algorithm::EdDSA,
    /// ).unwrap();
    /// let proof = format!("{message}.{signature}");
    ///
    /// // The server, at the time of the proof.
    /// let clock = Arc::new(ManualClock::new(Utc.timestamp_opt(1_700_000_005, 0).unwrap()));
    /// let verifier = DpopVerifier::new(DpopPolicy::default())?.with_clock(clock);
    /// let request = DpopRequest {
    ///     method: "GET",
    ///     url: "https://api.example/me?page=2",
    ///     access_token: Some(token),
    /// };
    /// let verified = verifier.verify(&proof, &request)?;
    /// assert_eq!(verified.jkt, key.kid(), "the key's RFC 7638 thumbprint");
    /// // The token must be bound to that key (its `cnf.jkt`).
    /// verified.check_binding(Some(&Confirmation { jkt: key.kid().to_owned() }))?;
    /// // Once only.
    /// assert!(matches!(
    ///     verifier.verify(&proof, &request),
    ///     Err(Error::InvalidDpopProof(DpopRefusal::Replayed))
    /// ));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn verify(&self, proof: &str, request: &DpopRequest<'_>) -> Result<VerifiedProof> {
        self.verify_for(proof, request, None)
    }

    /// Checks how an access token whose signature and claims were verified was presented
    /// (RFC 9449 §7): a token bound to a key (`cnf`, its claims' `confirmation`) only with
    /// the `DPoP` scheme and a `proof` of that key for `request`, whose `access_token` must be
    /// the token ([`Error::BoundTokenAsBearer`], [`DpopRefusal::Missing`],
    /// [`DpopRefusal::WrongKey`]); a token bound to none only with the `Bearer` scheme
    /// ([`Error::UnboundTokenAsDpop`]), any proof ignored. The proof of a bound token is
    /// remembered only once its key is known to be the token's, so that a proof made with
    /// another key, whoever holds the token, takes no room in the replay cache.
    ///
    /// ```
    /// use jwt_core::{DpopPolicy, DpopRequest, DpopVerifier, Error, TokenScheme};
    /// let verifier = DpopVerifier::new(DpopPolicy::default())?;
    /// let request =
    ///     DpopRequest { method: "GET", url: "https://api.example/me", access_token: Some("t") };
    /// // A bearer token, as before.
    /// assert_eq!(verifier.check_presented(TokenScheme::Bearer, None, None, &request)?, None);
    /// // A bound token as a bearer token: never.
    /// let cnf = jwt_core::Confirmation { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into() };
    /// assert!(matches!(
    ///     verifier.check_presented(TokenScheme::Bearer, Some(&cnf), None, &request),
    ///     Err(Error::BoundTokenAsBearer)
    /// ));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn check_presented(
        &self,
        scheme: TokenScheme,
        confirmation: Option<&Confirmation>,
        proof: Option<&str>,
        request: &DpopRequest<'_>,
    ) -> Result<Option<VerifiedProof>> {
        match (scheme, confirmation) {
            (TokenScheme::Bearer, None) => Ok(None),
            (TokenScheme::Bearer, Some(_)) => Err(Error::BoundTokenAsBearer),
            (TokenScheme::Dpop, None) => Err(Error::UnboundTokenAsDpop),
            (TokenScheme::Dpop, Some(cnf)) => {
                let proof = proof.ok_or(Error::InvalidDpopProof(DpopRefusal::Missing))?;
                if request.access_token.is_none() {
                    return Err(Error::InvalidConfig(
                        "a DPoP-bound token is checked with the request's access token".into(),
                    ));
                }
                self.verify_for(proof, request, Some(cnf)).map(Some)
            }
        }
    }

    fn verify_for(
        &self,
        proof: &str,
        request: &DpopRequest<'_>,
        bound_to: Option<&Confirmation>,
    ) -> Result<VerifiedProof> {
        // The path comes from the client: one that makes no URL (`%zz`) matches no proof.
        let expected_url =
            normalize_htu(request.url).ok_or(Error::InvalidDpopProof(DpopRefusal::WrongUrl))?;
        let now = self.clock.now();
        let checked =
            self.check(proof, request, &expected_url, now).map_err(Error::InvalidDpopProof)?;
        if let Some(nonces) = self.nonces.load().as_ref() {
            let nonce = checked.nonce.ok_or(Error::UseDpopNonce(NonceRefusal::Missing))?;
            nonces.check(&nonce, now)?;
        }
        let proof = checked.proof;
        if let Some(cnf) = bound_to {
            proof.check_binding(Some(cnf))?;
        }
        // Remembered until its `iat` leaves the window, plus a second for the rounding of `iat`.
        let until = (proof.iat + self.policy.iat_window).timestamp() + 1;
        let key = replay_key(&proof.jkt, &proof.jti);
        if !self.seen.remember(key, until, now.timestamp())? {
            return Err(Error::InvalidDpopProof(DpopRefusal::Replayed));
        }
        Ok(proof)
    }

    fn check(
        &self,
        proof: &str,
        request: &DpopRequest<'_>,
        expected_url: &str,
        now: DateTime<Utc>,
    ) -> Result<CheckedProof, DpopRefusal> {
        let compact = Compact::split(proof, self.policy.max_proof_bytes).map_err(|e| match e {
            Error::TokenTooLarge { limit } => DpopRefusal::TooLarge { limit },
            Error::Malformed(why) => DpopRefusal::Malformed(why),
            _ => DpopRefusal::Malformed("expected three dot-separated parts"),
        })?;
        let header_json = b64_decode(compact.header).map_err(|_| NOT_BASE64URL)?;
        let header: ProofHeader<'_> = require_object(&header_json)
            .ok()
            .and_then(|json| serde_json::from_slice(json).ok())
            .ok_or(DpopRefusal::Malformed("the header is not a JSON object"))?;
        for (present, name) in
            [(header.jku, "jku"), (header.x5u, "x5u"), (header.x5c, "x5c"), (header.cty, "cty")]
        {
            if present {
                return Err(DpopRefusal::ForbiddenHeader(name));
            }
        }
        if header.crit {
            return Err(DpopRefusal::UnknownCritical);
        }
        if !header.typ.as_deref().is_some_and(|typ| typ_matches(typ, DPOP_PROOF_TYPE)) {
            return Err(DpopRefusal::WrongType);
        }
        let alg = header
            .alg
            .as_deref()
            .and_then(Algorithm::from_jose)
            .filter(|alg| self.policy.algorithms.contains(alg))
            .ok_or(DpopRefusal::UnsupportedAlgorithm)?;
        let jwk = header.jwk.as_ref().ok_or(DpopRefusal::MissingKey)?;
        let key = PublicJwk::parse(jwk)?;
        if key.algorithm() != alg
            || jwk.get("alg").is_some_and(|named| named.as_str() != Some(alg.as_str()))
        {
            return Err(DpopRefusal::KeyMismatch);
        }
        if jwk.get("use").is_some_and(|usage| usage.as_str() != Some("sig")) {
            return Err(DpopRefusal::InvalidKey("its `use` is not `sig`"));
        }
        if !compact.signature_verifies(&key.decoding_key()?, alg) {
            return Err(DpopRefusal::InvalidSignature);
        }

        let payload = b64_decode(compact.payload).map_err(|_| NOT_BASE64URL)?;
        let claims: ProofClaims =
            crate::claims::parse(&payload).map_err(|_| DpopRefusal::InvalidClaims)?;
        let jti = claims.jti.ok_or(DpopRefusal::MissingClaim("jti"))?;
        if jti.is_empty() || jti.len() > self.policy.max_jti_bytes {
            return Err(DpopRefusal::InvalidClaim("jti"));
        }
        if claims.htm.ok_or(DpopRefusal::MissingClaim("htm"))? != request.method {
            return Err(DpopRefusal::WrongMethod);
        }
        let htu = claims.htu.ok_or(DpopRefusal::MissingClaim("htu"))?;
        if normalize_htu(&htu).ok_or(DpopRefusal::InvalidClaim("htu"))? != expected_url {
            return Err(DpopRefusal::WrongUrl);
        }
        let iat = claims.iat.ok_or(DpopRefusal::MissingClaim("iat"))?;
        let iat = numeric_date(&iat).ok_or(DpopRefusal::InvalidClaim("iat"))?;
        if iat < now - self.policy.iat_window {
            return Err(DpopRefusal::Stale);
        }
        if iat > now + self.policy.iat_window {
            return Err(DpopRefusal::FromFuture);
        }
        if let Some(token) = request.access_token {
            let ath = claims.ath.ok_or(DpopRefusal::MissingClaim("ath"))?;
            let expected = access_token_hash(token);
            if constant_time::verify_slices_are_equal(ath.as_bytes(), expected.as_bytes()).is_err()
            {
                return Err(DpopRefusal::WrongAccessTokenHash);
            }
        }
        Ok(CheckedProof {
            proof: VerifiedProof { jkt: key.thumbprint(), jti, iat, algorithm: alg },
            nonce: claims.nonce,
        })
    }
}

const NOT_BASE64URL: DpopRefusal = DpopRefusal::Malformed("a part is not base64url");

/// The proof of a request from the values of its `DPoP` headers: `Ok(None)` with none, the
/// proof with one; more than one header ([`DpopRefusal::Several`]), or one that is not
/// ASCII ([`DpopRefusal::Malformed`]), is refused (RFC 9449 §4.3).
///
/// ```
/// use jwt_core::{DpopRefusal, Error, dpop_proof};
/// assert_eq!(dpop_proof([b"eyJ.eyJ.sig".as_slice()])?, Some("eyJ.eyJ.sig"));
/// assert_eq!(dpop_proof(Vec::<&[u8]>::new())?, None);
/// assert!(matches!(
///     dpop_proof([b"a".as_slice(), b"b".as_slice()]),
///     Err(Error::InvalidDpopProof(DpopRefusal::Several))
/// ));
/// # Ok::<(), Error>(())
/// ```
pub fn dpop_proof<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<Option<&'a str>> {
    let mut values = values.into_iter();
    let Some(first) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Error::InvalidDpopProof(DpopRefusal::Several));
    }
    let proof = std::str::from_utf8(first)
        .ok()
        .filter(|proof| proof.is_ascii())
        .ok_or(Error::InvalidDpopProof(DpopRefusal::Malformed("the DPoP header is not ASCII")))?;
    Ok(Some(proof.trim()))
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly with a fraction, which is
/// dropped.
fn numeric_date(number: &serde_json::Number) -> Option<DateTime<Utc>> {
    let seconds = match number.as_i64() {
        Some(seconds) => seconds,
        None => {
            let seconds = number.as_f64()?.floor();
            // Beyond ±2^53 a float holds no whole second exactly; no clock is there anyway.
            if !(-9.0e15..=9.0e15).contains(&seconds) {
                return None;
            }
            seconds as i64
        }
    };
    DateTime::from_timestamp(seconds, 0)
}

/// The `ath` of a proof presented with `access_token` (RFC 9449 §4.2): the base64url SHA-256
/// hash of its ASCII text.
///
/// ```
/// use jwt_core::access_token_hash;
/// // RFC 9449 §7.1's example token and its `ath`.
/// let token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
/// assert_eq!(access_token_hash(token), "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
/// ```
pub fn access_token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, access_token.as_bytes()))
}

/// The RFC 7638 SHA-256 thumbprint of a public key, base64url: the `jkt` of a DPoP key. For
/// the key types of DPoP proofs: EC P-256, OKP Ed25519 (RFC 8037 §2) and RSA of 2048 bits or
/// more. Other keys, and a JWK holding private material, are [`Error::InvalidKey`].
///
/// ```
/// use jwt_core::{Algorithm, SigningKey, jwk_thumbprint};
/// // The `kid` of a key is its thumbprint.
/// let key = SigningKey::generate(Algorithm::ES256)?;
/// let jwk = key.verifying_key().to_jwk().expect("an asymmetric key");
/// assert_eq!(jwk_thumbprint(jwk)?, key.kid());
/// # Ok::<(), jwt_core::Error>(())
/// ```
pub fn jwk_thumbprint(jwk: &Jwk) -> Result<String> {
    let refused = |why: DpopRefusal| Error::InvalidKey(format!("no DPoP key thumbprint: {why}"));
    let json = serde_json::to_value(jwk).map_err(|e| Error::InvalidKey(e.to_string()))?;
    let members = json.as_object().ok_or_else(|| refused(DpopRefusal::MissingKey))?;
    Ok(PublicJwk::parse(members).map_err(refused)?.thumbprint())
}

/// The members of a `jwk` that only a private (or symmetric) key has (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A public key of a proof's `jwk`: its required members checked, base64url in canonical
/// form (no padding, no stray bits), which makes its thumbprint unique.
#[derive(Debug, PartialEq, Eq)]
enum PublicJwk {
    /// EC P-256: the coordinates, 32 bytes each.
    P256 { x: String, y: String },
    /// OKP Ed25519: the 32-byte public key.
    Ed25519 { x: String },
    /// RSA: modulus and exponent, big-endian without leading zeros.
    Rsa { n: String, e: String, modulus: Vec<u8>, exponent: Vec<u8> },
}

impl PublicJwk {
    fn parse(jwk: &Map<String, Value>) -> Result<Self, DpopRefusal> {
        if PRIVATE_MEMBERS.iter().any(|name| jwk.contains_key(*name)) {
            return Err(DpopRefusal::PrivateKey);
        }
        let member = |name: &str| {
            jwk.get(name)
                .and_then(Value::as_str)
                .ok_or(DpopRefusal::InvalidKey("a required member is missing or no string"))
        };
        let bytes = |b64: &str| {
            URL_SAFE_NO_PAD
                .decode(b64)
                .map_err(|_| DpopRefusal::InvalidKey("a member is not canonical base64url"))
        };
        match member("kty")? {
            "EC" => {
                if member("crv")? != "P-256" {
                    return Err(DpopRefusal::InvalidKey("its EC curve is not P-256"));
                }
                let (x, y) = (member("x")?, member("y")?);
                if bytes(x)?.len() != 32 || bytes(y)?.len() != 32 {
                    return Err(DpopRefusal::InvalidKey("a P-256 coordinate is not 32 bytes"));
                }
                Ok(Self::P256 { x: x.to_owned(), y: y.to_owned() })
            }
            "OKP" => {
                if member("crv")? != "Ed25519" {
                    return Err(DpopRefusal::InvalidKey("its OKP curve is not Ed25519"));
                }
                let x = member("x")?;
                if bytes(x)?.len() != 32 {
                    return Err(DpopRefusal::InvalidKey("an Ed25519 key is not 32 bytes"));
                }
                Ok(Self::Ed25519 { x: x.to_owned() })
            }
            "RSA" => {
                let (n, e) = (member("n")?, member("e")?);
                let (modulus, exponent) = (bytes(n)?, bytes(e)?);
                let leading_zero = |number: &[u8]| number.first().is_none_or(|b| *b == 0);
                if leading_zero(&modulus) || leading_zero(&exponent) {
                    return Err(DpopRefusal::InvalidKey("an RSA number has leading zeros"));
                }
                // No leading zero: the bit length is the byte length's, less the first byte's
                // unused high bits.
                let bits = modulus.len() * 8 - modulus[0].leading_zeros() as usize;
                if !(2048..=8192).contains(&bits) {
                    return Err(DpopRefusal::InvalidKey(
                        "its RSA modulus is not 2048 to 8192 bits",
                    ));
                }
                if exponent.len() > 4 {
                    return Err(DpopRefusal::InvalidKey("its RSA exponent is too large"));
                }
                Ok(Self::Rsa { n: n.to_owned(), e: e.to_owned(), modulus, exponent })
            }
            _ => Err(DpopRefusal::InvalidKey("its key type is not EC, OKP or RSA")),
        }
    }

    /// The one algorithm of the key type.
    fn algorithm(&self) -> Algorithm {
        match self {
            Self::P256 { .. } => Algorithm::ES256,
            Self::Ed25519 { .. } => Algorithm::EdDSA,
            Self::Rsa { .. } => Algorithm::RS256,
        }
    }

    /// RFC 7638 §3: the required members only, in lexicographic order, no whitespace. The
    /// values are base64url, which needs no escaping in JSON.
    fn thumbprint(&self) -> String {
        let canonical = match self {
            Self::P256 { x, y } => format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
            Self::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
            Self::Rsa { n, e, .. } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
        };
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    fn decoding_key(&self) -> Result<DecodingKey, DpopRefusal> {
        let invalid = |_| DpopRefusal::InvalidKey("not a public key");
        match self {
            Self::P256 { x, y } => DecodingKey::from_ec_components(x, y).map_err(invalid),
            Self::Ed25519 { x } => DecodingKey::from_ed_components(x).map_err(invalid),
            Self::Rsa { modulus, exponent, .. } => {
                Ok(DecodingKey::from_rsa_raw_components(modulus, exponent))
            }
        }
    }
}

/// `url` as RFC 9449 §4.3 compares it: scheme and host in lower case (the `url` crate's
/// parsing does it, with IDNA for hosts, dot segments resolved and an empty path made `/`),
/// the scheme's default port dropped, query and fragment dropped, and percent-encoding
/// normalised (RFC 3986 §6.2.2: unreserved characters decoded, hex digits in upper case).
/// `None` for anything but an absolute `http` or `https` URL without user information, and
/// for a path with a `%` that starts no escape (RFC 3986 §2.1 allows none; decoding the
/// escapes after it could make one, and the result would then differ when normalised again).
pub(crate) fn normalize_htu(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https")
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return None;
    }
    let host = parsed.host_str()?;
    let mut normal = format!("{}://{host}", parsed.scheme());
    if let Some(port) = parsed.port() {
        normal.push(':');
        normal.push_str(&port.to_string());
    }
    normal.push_str(&normalize_percent_encoding(parsed.path())?);
    Some(normal)
}

/// `None` if a `%` is not followed by two hex digits.
fn normalize_percent_encoding(path: &str) -> Option<Cow<'_, str>> {
    if !path.contains('%') {
        return Some(Cow::Borrowed(path));
    }
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&high), Some(&low)) => {
                hex(high).zip(hex(low)).map(|(h, l)| (h * 16 + l) as u8)
            }
            _ => None,
        };
        match escaped {
            Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => {
                out.push(b);
                i += 3;
            }
            Some(_) => {
                out.push(b'%');
                out.push(bytes[i + 1].to_ascii_uppercase());
                out.push(bytes[i + 2].to_ascii_uppercase());
                i += 3;
            }
            None if bytes[i] == b'%' => return None,
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    // Only ASCII was changed, into ASCII: the text is as valid UTF-8 as it was.
    let text = String::from_utf8(out).expect("percent-decoding unreserved ASCII keeps UTF-8");
    Some(Cow::Owned(text))
}

/// The replay cache's key of a proof: the first 64 bits of SHA-256 over its key's thumbprint
/// and its `jti`, so that an entry's size does not depend on the client. Two proofs share a
/// key by chance once in 2^64 (among a million remembered proofs, a new one is taken for a
/// replay with a chance of 1 in 10^13), and finding a proof of one's own key with the key of
/// another's takes about 2^64 hashes.
fn replay_key(jkt: &str, jti: &str) -> u64 {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(jkt.as_bytes());
    context.update(&[0]);
    context.update(jti.as_bytes());
    let digest = context.finish();
    let (first, _) = digest.as_ref().split_at(8);
    u64::from_be_bytes(first.try_into().expect("SHA-256 is 32 bytes"))
}

/// How many shards the replay cache's map is cut into, each behind its own lock.
const REPLAY_SHARDS: usize = 64;

/// The proofs accepted within their window, each until its `iat` leaves it: a key of 8 bytes
/// and an expiry of 8 in a hash map (std's, with its random keys, so that no client can make
/// its entries collide), cut into [`REPLAY_SHARDS`] shards behind their own locks. A shard
/// drops its expired entries at most once a second, when it is next written; it never drops
/// an entry before it expires. The bound is kept per shard, as the capacity's share: at the
/// bound, a new proof is refused.
pub(crate) struct ReplayCache {
    shards: Box<[Mutex<ReplayShard>]>,
    shard_capacity: usize,
    capacity: u64,
    hasher: RandomState,
}

#[derive(Default)]
struct ReplayShard {
    /// Key → the second (Unix time) after which it is forgotten.
    seen: HashMap<u64, i64, BuildHasherDefault<PassThrough>>,
    /// When the expired entries were last dropped.
    swept_at: i64,
}

/// The hash of a key already hashed with the cache's random keys: itself.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl ReplayCache {
    pub(crate) fn new(capacity: u64) -> Self {
        let shards = (0..REPLAY_SHARDS).map(|_| Mutex::default()).collect();
        let shard_capacity =
            usize::try_from(capacity.div_ceil(REPLAY_SHARDS as u64)).unwrap_or(usize::MAX);
        Self { shards, shard_capacity, capacity, hasher: RandomState::new() }
    }

    /// Remembers `key` until the second `until` (Unix time), at the second `now`: `Ok(true)`
    /// if it was new, `Ok(false)` if it is remembered already (a replay), [`ReplayCacheFull`]
    /// if its shard has no room.
    pub(crate) fn remember(&self, key: u64, until: i64, now: i64) -> Result<bool> {
        // The map's hash: the key under the cache's random keys. The shard: its top bits.
        let hash = self.hasher.hash_one(key);
        let shard = &self.shards[(hash >> 58) as usize % REPLAY_SHARDS];
        let mut guard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let shard = &mut *guard;
        if shard.swept_at < now {
            shard.seen.retain(|_, expiry| *expiry >= now);
            shard.swept_at = now;
            // A burst's memory is given back once it has expired.
            let len = shard.seen.len();
            if shard.seen.capacity() > 4 * len.max(1024) {
                shard.seen.shrink_to(2 * len);
            }
        }
        if shard.seen.get(&hash).is_some_and(|expiry| *expiry >= now) {
            return Ok(false);
        }
        if shard.seen.len() >= self.shard_capacity && !shard.seen.contains_key(&hash) {
            return Err(Error::unavailable(ReplayCacheFull { capacity: self.capacity }));
        }
        shard.seen.insert(hash, until);
        Ok(true)
    }

    /// How many proofs are remembered (expired ones included until their shard drops them).
    pub(crate) fn len(&self) -> u64 {
        let len = |shard: &Mutex<ReplayShard>| {
            shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).seen.len() as u64
        };
        self.shards.iter().map(len).sum()
    }
}

/// Server nonces for DPoP proofs (RFC 9449 §8) that every instance holding the same secret
/// issues and accepts alike, with no state shared between them: a nonce is the number of the
/// current period of the clock (5 minutes by default) and an HMAC-SHA256 of it under the
/// secret, truncated to 128 bits, in base64url. The nonces of the current period, the one
/// before (a client may have fetched its nonce just before the change) and the one after (an
/// instance whose clock runs a little ahead) are accepted; a nonce made with another secret,
/// another deployment's, never is.
///
/// `Debug` does not show the secret.
///
/// ```
/// use chrono::{TimeDelta, TimeZone, Utc};
/// use jwt_core::{DpopNonces, Error, NonceRefusal};
///
/// let secret = [7u8; 32];
/// let (here, there) = (DpopNonces::new(&secret)?, DpopNonces::new(&secret)?);
/// let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
/// let nonce = here.issue(now);
/// assert!(there.check(&nonce, now + TimeDelta::minutes(5)).is_ok(), "another instance, later");
/// assert!(matches!(
///     there.check(&nonce, now + TimeDelta::minutes(15)),
///     Err(Error::UseDpopNonce(NonceRefusal::Stale))
/// ));
/// let elsewhere = DpopNonces::new(&[8u8; 32])?;
/// assert!(matches!(
///     elsewhere.check(&nonce, now),
///     Err(Error::UseDpopNonce(NonceRefusal::Invalid))
/// ));
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone)]
pub struct DpopNonces {
    key: hmac::Key,
    /// The key of the nonces issued before a change of secret, still accepted.
    previous: Option<hmac::Key>,
    period: TimeDelta,
}

impl fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopNonces").field("period", &self.period).finish_non_exhaustive()
    }
}

/// What the HMAC of a nonce covers before the period number: a nonce is no MAC of any other
/// message made with the same secret.
const NONCE_LABEL: &[u8] = b"DPoP-Nonce\0";
/// The bytes of the HMAC kept in a nonce.
const NONCE_TAG_BYTES: usize = 16;

impl DpopNonces {
    /// How long one nonce is issued before the next, by default.
    pub const DEFAULT_PERIOD: TimeDelta = TimeDelta::minutes(5);

    /// Nonces under `secret`, which every instance of the deployment holds: at least
    /// [`MIN_SECRET_BYTES`], else [`Error::WeakSecret`].
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::WeakSecret { min: MIN_SECRET_BYTES, len: secret.len() });
        }
        Ok(Self::from_key(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    fn from_key(key: hmac::Key) -> Self {
        Self { key, previous: None, period: Self::DEFAULT_PERIOD }
    }

    /// Nonces under a secret derived from a signing key (HKDF-SHA256 of its private
    /// material, for this use alone): every instance that signs with the same key issues and
    /// accepts the same nonces, with no secret of their own to share. A nonce reveals nothing
    /// of the key.
    ///
    /// ```
    /// use chrono::Utc;
    /// use jwt_core::{Algorithm, DpopNonces, SigningKey};
    /// let key = SigningKey::generate(Algorithm::EdDSA)?;
    /// let now = Utc::now();
    /// let nonce = DpopNonces::from_signing_key(&key).issue(now);
    /// assert!(DpopNonces::from_signing_key(&key).check(&nonce, now).is_ok(), "another instance");
    /// let rotated = DpopNonces::from_signing_key(&SigningKey::generate(Algorithm::EdDSA)?);
    /// assert!(rotated.check(&nonce, now).is_err());
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn from_signing_key(key: &SigningKey) -> Self {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"jwt-core DPoP nonces");
        let prk = salt.extract(key.material());
        let info = [NONCE_LABEL];
        let okm = prk.expand(&info, hmac::HMAC_SHA256).expect("32 bytes is a valid HKDF length");
        Self::from_key(hmac::Key::from(okm))
    }

    /// The same nonces, also accepting those `previous` issued (not those it accepted): for
    /// a change of secret, such as a key rotation, so that a client's nonce of a moment ago
    /// still holds.
    ///
    /// ```
    /// use chrono::Utc;
    /// use jwt_core::DpopNonces;
    /// let (old, now) = (DpopNonces::new(&[1; 32])?, Utc::now());
    /// let nonce = old.issue(now);
    /// let new = DpopNonces::new(&[2; 32])?.accepting(&old);
    /// assert!(new.check(&nonce, now).is_ok());
    /// assert_ne!(new.issue(now), nonce, "new nonces are the new secret's");
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn accepting(mut self, previous: &DpopNonces) -> Self {
        self.previous = Some(previous.key.clone());
        self
    }

    /// The same nonces, each issued for `period` (10 seconds to a day, whole seconds).
    ///
    /// ```
    /// use chrono::TimeDelta;
    /// use jwt_core::DpopNonces;
    /// let nonces = DpopNonces::new(&[1; 32])?;
    /// assert!(DpopNonces::new(&[1; 32])?.with_period(TimeDelta::seconds(5)).is_err());
    /// assert!(nonces.with_period(TimeDelta::minutes(1)).is_ok());
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn with_period(mut self, period: TimeDelta) -> Result<Self> {
        if period < TimeDelta::seconds(10)
            || period > TimeDelta::days(1)
            || period.subsec_nanos() != 0
        {
            return Err(Error::InvalidConfig(
                "the DPoP nonce period must be whole seconds, from 10 seconds to a day".into(),
            ));
        }
        self.period = period;
        Ok(self)
    }

    /// The nonce of the period `now` falls in.
    pub fn issue(&self, now: DateTime<Utc>) -> String {
        let period = self.period_of(now);
        let mut nonce = [0u8; 8 + NONCE_TAG_BYTES];
        nonce[..8].copy_from_slice(&period.to_be_bytes());
        nonce[8..].copy_from_slice(&tag(&self.key, period));
        URL_SAFE_NO_PAD.encode(nonce)
    }

    /// Checks a proof's `nonce` at `now`: [`Error::UseDpopNonce`] with
    /// [`NonceRefusal::Invalid`] if this secret did not make it, [`NonceRefusal::Stale`] if
    /// it did for a period other than the current one or either next to it. The tag is
    /// compared in constant time.
    pub fn check(&self, nonce: &str, now: DateTime<Utc>) -> Result<()> {
        let invalid = Error::UseDpopNonce(NonceRefusal::Invalid);
        let bytes = URL_SAFE_NO_PAD.decode(nonce).map_err(|_| invalid)?;
        let (period, tag) = match bytes.split_first_chunk::<8>() {
            Some((period, tag)) if tag.len() == NONCE_TAG_BYTES => {
                (i64::from_be_bytes(*period), tag)
            }
            _ => return Err(Error::UseDpopNonce(NonceRefusal::Invalid)),
        };
        let made_here = |key: &hmac::Key| {
            constant_time::verify_slices_are_equal(tag, &self::tag(key, period)).is_ok()
        };
        if !made_here(&self.key) && !self.previous.as_ref().is_some_and(made_here) {
            return Err(Error::UseDpopNonce(NonceRefusal::Invalid));
        }
        if period.abs_diff(self.period_of(now)) > 1 {
            return Err(Error::UseDpopNonce(NonceRefusal::Stale));
        }
        Ok(())
    }

    fn period_of(&self, now: DateTime<Utc>) -> i64 {
        now.timestamp().div_euclid(self.period.num_seconds())
    }
}

/// The tag of a nonce of `period` under `key`.
fn tag(key: &hmac::Key, period: i64) -> [u8; NONCE_TAG_BYTES] {
    let mut context = hmac::Context::with_key(key);
    context.update(NONCE_LABEL);
    context.update(&period.to_be_bytes());
    let tag = context.sign();
    let (kept, _) = tag.as_ref().split_at(NONCE_TAG_BYTES);
    kept.try_into().expect("HMAC-SHA256 is 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use proptest::prelude::*;

    /// RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
    #[test]
    fn the_rfc_7638_example_key_has_the_rfc_thumbprint() {
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6\
                  tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4Qy\
                  Q5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpb\
                  ISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCu\
                  r-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }))
        .unwrap();
        assert_eq!(jwk_thumbprint(&jwk).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    /// RFC 8037 Appendix A.3: the example Ed25519 key's thumbprint.
    #[test]
    fn the_rfc_8037_example_key_has_the_rfc_thumbprint() {
        let jwk: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }))
        .unwrap();
        assert_eq!(jwk_thumbprint(&jwk).unwrap(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    /// A key's `kid` is the RFC 7638 thumbprint jsonwebtoken computes: an independent check.
    #[test]
    fn thumbprints_agree_with_the_kid_of_every_key_type() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
            let key = SigningKey::generate(alg).unwrap();
            let jwk = key.verifying_key().to_jwk().unwrap();
            assert_eq!(jwk_thumbprint(jwk).unwrap(), key.kid(), "{alg}");
        }
    }

    #[test]
    fn thumbprints_refuse_symmetric_and_foreign_keys() {
        let oct: Jwk = serde_json::from_value(serde_json::json!({"kty":"oct","k":"AAAA"})).unwrap();
        assert!(matches!(jwk_thumbprint(&oct), Err(Error::InvalidKey(_))));
        let x25519: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "OKP", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"
        }))
        .unwrap();
        assert!(matches!(jwk_thumbprint(&x25519), Err(Error::InvalidKey(_))));
    }

    fn members(json: serde_json::Value) -> Map<String, Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn public_keys_are_checked_member_by_member() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let parse = |json| PublicJwk::parse(&members(json));
        assert!(parse(serde_json::json!({"kty":"OKP","crv":"Ed25519","x": x})).is_ok());
        for private in PRIVATE_MEMBERS {
            let mut jwk = serde_json::json!({"kty":"OKP","crv":"Ed25519","x": x});
            jwk[private] = "AQAB".into();
            assert_eq!(parse(jwk), Err(DpopRefusal::PrivateKey), "{private}");
        }
        let refused = [
            serde_json::json!({"crv":"Ed25519","x": x}),
            serde_json::json!({"kty":"OKP","crv":"Ed448","x": x}),
            serde_json::json!({"kty":"OKP","crv":"Ed25519","x": "AQAB"}),
            serde_json::json!({"kty":"OKP","crv":"Ed25519","x": format!("{x}=")}),
            serde_json::json!({"kty":"OKP","crv":"Ed25519","x": 5}),
            serde_json::json!({"kty":"EC","crv":"P-384","x": x, "y": x}),
            serde_json::json!({"kty":"EC","crv":"P-256","x": x}),
            serde_json::json!({"kty":"RSA","n": URL_SAFE_NO_PAD.encode([0xffu8; 255]), "e":"AQAB"}),
            serde_json::json!({"kty":"RSA","n": URL_SAFE_NO_PAD.encode([0u8; 300]), "e":"AQAB"}),
            serde_json::json!({"kty":"RSA","n": URL_SAFE_NO_PAD.encode([0xffu8; 256]), "e":"AAEAAQ"}),
            serde_json::json!({"kty":"oct"}),
        ];
        for jwk in refused {
            assert!(matches!(parse(jwk.clone()), Err(DpopRefusal::InvalidKey(_))), "{jwk}");
        }
        let rsa =
            serde_json::json!({"kty":"RSA","n": URL_SAFE_NO_PAD.encode([0xffu8; 256]), "e":"AQAB"});
        assert_eq!(parse(rsa).unwrap().algorithm(), Algorithm::RS256, "2048 bits exactly");
    }

    #[test]
    fn htu_normalisation_follows_rfc_9449_and_rfc_3986() {
        let same = [
            ("https://server.example.com/token", "https://server.example.com/token"),
            ("HTTPS://Server.Example.COM:443/token?x=1#f", "https://server.example.com/token"),
            ("http://server.example.com:80", "http://server.example.com/"),
            ("https://server.example.com:8443/a/./b/../c", "https://server.example.com:8443/a/c"),
            (
                "https://server.example.com/%7euser/%2f%e2%82%ac",
                "https://server.example.com/~user/%2F%E2%82%AC",
            ),
            ("https://[::1]:443/x", "https://[::1]/x"),
            ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
        ];
        for (url, normal) in same {
            assert_eq!(normalize_htu(url).as_deref(), Some(normal), "{url}");
        }
        for bad in [
            "/token",
            "ftp://server.example.com/",
            "https://user:pw@server.example.com/",
            "https://server.example.com/%zz",
            "https://server.example.com/100%",
            // Decoding `%30` would make `%a0` of a stray `%`.
            "https://server.example.com/%a%30",
            "token",
            "",
        ] {
            assert_eq!(normalize_htu(bad), None, "{bad}");
        }
        assert_ne!(
            normalize_htu("https://a.example/token"),
            normalize_htu("https://a.example/Token")
        );
        assert_ne!(
            normalize_htu("https://a.example/token"),
            normalize_htu("http://a.example/token")
        );
        assert_ne!(
            normalize_htu("https://a.example/token"),
            normalize_htu("https://a.example:8443/token")
        );
    }

    proptest! {
        #[test]
        fn htu_normalisation_is_idempotent_and_ignores_query_and_fragment(
            scheme in "(?i)https?",
            host in "[a-zA-Z0-9-]{1,12}(\\.[a-zA-Z]{1,6}){0,2}",
            port in proptest::option::of(any::<u16>()),
            path in "(/([a-zA-Z0-9._~!$&'()*+,;=:@-]|%[0-9a-fA-F]{2}|%|\\.\\.?){0,8}){0,5}",
            query in "[a-z0-9=&%]{0,12}",
            fragment in "[a-z0-9]{0,8}",
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let url = format!("{scheme}://{host}{port}{path}");
            if let Some(normal) = normalize_htu(&url) {
                prop_assert_eq!(normalize_htu(&normal), Some(normal.clone()));
                let decorated = format!("{url}?{query}#{fragment}");
                prop_assert_eq!(normalize_htu(&decorated), Some(normal));
            }
        }

        #[test]
        fn thumbprints_do_not_depend_on_the_order_of_members(
            order in Just(vec!["kty", "crv", "x", "kid", "use", "alg"]).prop_shuffle()
        ) {
            let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
            let values = |name: &str| match name {
                "kty" => "OKP", "crv" => "Ed25519", "x" => x, "kid" => "k", "use" => "sig", _ => "EdDSA",
            };
            let text = format!(
                "{{{}}}",
                order.iter().map(|name| format!(r#""{name}":"{}""#, values(name))).collect::<Vec<_>>().join(",")
            );
            let map: Map<String, Value> = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(
                PublicJwk::parse(&map).unwrap().thumbprint(),
                "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
            );
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn nonces_rotate_and_the_neighbouring_periods_are_accepted() {
        let nonces = DpopNonces::new(&[3; 32]).unwrap();
        let period = 300;
        let start = 1_700_000_100 / period * period;
        let nonce = nonces.issue(at(start));
        assert_eq!(nonces.issue(at(start + period - 1)), nonce, "the same period");
        assert_ne!(nonces.issue(at(start + period)), nonce, "the next period");
        assert_eq!(nonce.len(), 32);
        for accepted in [start - period, start, start + period, start + 2 * period - 1] {
            assert!(nonces.check(&nonce, at(accepted)).is_ok(), "at {accepted}");
        }
        for stale in [start - period - 1, start + 2 * period, start + 100 * period] {
            let refused = nonces.check(&nonce, at(stale));
            assert!(matches!(refused, Err(Error::UseDpopNonce(NonceRefusal::Stale))), "{stale}");
        }
    }

    #[test]
    fn a_nonce_of_another_secret_or_changed_or_cut_is_invalid() {
        let nonces = DpopNonces::new(&[3; 32]).unwrap();
        let now = at(1_700_000_000);
        let nonce = nonces.issue(now);
        let invalid = |candidate: &str| {
            matches!(nonces.check(candidate, now), Err(Error::UseDpopNonce(NonceRefusal::Invalid)))
        };
        assert!(invalid(&DpopNonces::new(&[4; 32]).unwrap().issue(now)), "another deployment");
        assert!(invalid(&nonce[..31]));
        assert!(invalid(&format!("{nonce}AAAA")));
        assert!(invalid(""));
        assert!(invalid("not base64url!"));
        let mut bytes = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        bytes[7] ^= 1;
        assert!(invalid(&URL_SAFE_NO_PAD.encode(&bytes)), "another period, same tag");
        assert!(matches!(DpopNonces::new(&[3; 31]), Err(Error::WeakSecret { min: 32, len: 31 })));
        assert!(!format!("{nonces:?}").contains("3, 3"), "no secret in Debug");
    }

    #[test]
    fn the_replay_cache_refuses_a_known_key_and_new_keys_at_capacity_then_makes_room() {
        // Two places per shard: keys fill their shards, and a full shard refuses new keys. (Two,
        // so that the two keys remembered at the end fit even when they share a shard.)
        let capacity = 2 * REPLAY_SHARDS as u64;
        let cache = ReplayCache::new(capacity);
        let (now, until) = (1_700_000_000, 1_700_000_061);
        assert!(cache.remember(1, until, now).unwrap());
        assert!(!cache.remember(1, until, now).unwrap(), "a replay");
        let mut full = None;
        for key in 2..10_000 {
            match cache.remember(key, until, now) {
                Ok(new) => assert!(new),
                Err(Error::Unavailable(source)) => {
                    let refused = source.downcast_ref::<ReplayCacheFull>();
                    assert_eq!(refused, Some(&ReplayCacheFull { capacity }));
                    full = Some(key);
                    break;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        let full = full.expect("a shard filled up");
        assert!(cache.len() <= capacity);
        assert!(
            !cache.remember(1, until, now).unwrap(),
            "still remembered: a full cache forgets nothing"
        );
        // Up to its last second it is remembered; after it, forgotten, and there is room.
        assert!(!cache.remember(1, until, until).unwrap());
        assert!(cache.remember(full, until + 61, until + 1).unwrap(), "room once expired");
        assert!(cache.remember(1, until + 61, until + 1).unwrap(), "forgotten after its second");
    }

    #[test]
    fn policy_refuses_each_bound_and_accepts_its_edge() {
        let edited = |edit: fn(&mut DpopPolicy)| {
            let mut policy = DpopPolicy::default();
            edit(&mut policy);
            policy.validate()
        };
        assert!(edited(|_| {}).is_ok());
        assert!(edited(|p| p.algorithms.clear()).is_err());
        assert!(edited(|p| p.algorithms.push(Algorithm::HS256)).is_err());
        assert!(edited(|p| p.max_proof_bytes = 2047).is_err());
        assert!(edited(|p| p.max_proof_bytes = 2048).is_ok());
        assert!(edited(|p| p.iat_window = TimeDelta::milliseconds(999)).is_err());
        assert!(edited(|p| p.iat_window = TimeDelta::minutes(5)).is_ok());
        assert!(edited(|p| p.iat_window = TimeDelta::seconds(301)).is_err());
        assert!(edited(|p| p.max_jti_bytes = 15).is_err());
        assert!(edited(|p| p.replay_capacity = 0).is_err());
    }

    /// The resident memory of the replay cache per proof, at the size 10,000 proofs a second
    /// for 61 seconds make, and at a million: at most [`REPLAY_ENTRY_BYTES`]. Alone in its
    /// process for a true reading (other tests allocate too), so run on request:
    /// `cargo test --release -p jwt-core --lib replay_cache_memory -- --ignored --nocapture`.
    #[test]
    #[ignore = "reads the process's resident memory: run alone"]
    fn replay_cache_memory_per_proof_is_within_its_bound() {
        fn resident_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
            line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number")
        }
        for proofs in [610_000_u64, 1_000_000] {
            let before = resident_kib();
            let cache = ReplayCache::new(2_000_000);
            for n in 0..proofs {
                let key = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                assert!(cache.remember(key, 1_700_000_061, 1_700_000_000).unwrap());
            }
            let bytes = (resident_kib() - before) * 1024 / proofs;
            println!("{proofs} proofs: {bytes} bytes each");
            assert!(bytes as usize <= REPLAY_ENTRY_BYTES, "{bytes} bytes a proof");
        }
    }

    #[test]
    fn numeric_dates_may_have_a_fraction() {
        let number = |json: &str| serde_json::from_str::<serde_json::Number>(json).unwrap();
        assert_eq!(numeric_date(&number("1700000000")), Some(at(1_700_000_000)));
        assert_eq!(numeric_date(&number("1700000000.9")), Some(at(1_700_000_000)));
        assert_eq!(numeric_date(&number("1e300")), None);
        assert_eq!(numeric_date(&number("18446744073709551615")), None);
    }
}
