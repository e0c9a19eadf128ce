//! Keys: the four supported algorithms, signing and verifying keys with a `kid`, and the
//! [`KeySet`] that holds one active signing key beside any number of verify-only keys, so keys
//! rotate without invalidating live tokens. Public keys travel as a JWK set (RFC 7517).
//!
//! Every key is bound to exactly one algorithm; the verifier takes the algorithm from the key,
//! never from a token header.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{self as lc_sig, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{DecodingKey, EncodingKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The minimum length of an HS256 secret, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_BYTES: usize = 32;

/// A JWS signing algorithm this library issues and verifies.
///
/// ```
/// use jwt_core::Algorithm;
/// let alg: Algorithm = "ES256".parse().unwrap();
/// assert_eq!(alg, Algorithm::ES256);
/// assert!("none".parse::<Algorithm>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC with SHA-256: one shared secret signs and verifies.
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys or larger.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// EdDSA on Ed25519 (RFC 8037).
    EdDSA,
}

impl Algorithm {
    /// All supported algorithms.
    pub const ALL: [Algorithm; 4] =
        [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

    /// The JOSE name (`alg` header value).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// Whether one shared secret both signs and verifies (HMAC).
    pub fn is_symmetric(self) -> bool {
        self == Algorithm::HS256
    }

    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }

    /// The exact JOSE name to algorithm; `None` for anything else, `none` included.
    pub(crate) fn from_jose(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::from_jose(s).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "unknown algorithm `{s}`; expected one of HS256, RS256, ES256, EdDSA"
            ))
        })
    }
}

/// An HMAC secret. Its bytes are zeroed on drop and never shown by `Debug`.
///
/// ```
/// use jwt_core::{Error, Secret};
/// assert!(matches!(Secret::new(b"too short".to_vec()), Err(Error::WeakSecret { .. })));
/// let secret = Secret::generate();
/// assert_eq!(format!("{secret:?}"), "Secret([redacted])");
/// ```
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps `bytes`; fewer than [`MIN_SECRET_BYTES`] is [`Error::WeakSecret`].
    pub fn new(bytes: Vec<u8>) -> Result<Self> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(Error::WeakSecret { min: MIN_SECRET_BYTES, len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    /// 32 random bytes from the operating system's generator.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; MIN_SECRET_BYTES]);
        SystemRandom::new().fill(&mut bytes).expect("the operating system's RNG is available");
        Self(bytes)
    }

    /// The secret's bytes: for storing it, never for logging it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A public (or, for HS256, shared) key that verifies tokens, bound to one algorithm and `kid`.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: String,
    alg: Algorithm,
    decoding: DecodingKey,
    /// The public JWK; `None` for HMAC keys, which are never published.
    jwk: Option<Jwk>,
}

impl VerifyingKey {
    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public key as a JWK, with `kid`, `alg` and `use: sig`; `None` for HS256.
    pub fn to_jwk(&self) -> Option<&Jwk> {
        self.jwk.as_ref()
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// Imports a public key from a JWK. The JWK must carry a `kid`; its algorithm comes from
    /// `alg`, or from the key type where that names exactly one algorithm here (RSA → RS256,
    /// P-256 → ES256, Ed25519 → EdDSA). Symmetric (`oct`) keys and encryption keys are refused:
    /// a shared secret never travels in a JWK set.
    ///
    /// ```
    /// use jwt_core::{Algorithm, SigningKey, VerifyingKey};
    /// let key = SigningKey::generate(Algorithm::EdDSA)?;
    /// let jwk = key.verifying_key().to_jwk().unwrap().clone();
    /// let imported = VerifyingKey::from_jwk(&jwk)?;
    /// assert_eq!(imported.kid(), key.kid());
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn from_jwk(jwk: &Jwk) -> Result<Self> {
        let kid = jwk
            .common
            .key_id
            .clone()
            .ok_or_else(|| Error::InvalidKey("JWK has no `kid`".into()))?;
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return Err(Error::InvalidKey(format!("JWK `{kid}` is not a signature key")));
        }
        let implied = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            AlgorithmParameters::OctetKey(_) => {
                return Err(Error::InvalidKey(format!("JWK `{kid}` is a symmetric key")));
            }
            _ => return Err(Error::InvalidKey(format!("JWK `{kid}` has an unsupported key type"))),
        };
        if let Some(alg) = jwk.common.key_algorithm {
            let named = match alg {
                KeyAlgorithm::RS256 => Algorithm::RS256,
                KeyAlgorithm::ES256 => Algorithm::ES256,
                KeyAlgorithm::EdDSA => Algorithm::EdDSA,
                other => {
                    return Err(Error::InvalidKey(format!(
                        "JWK `{kid}` names unsupported algorithm {other:?}"
                    )));
                }
            };
            if named != implied {
                return Err(Error::InvalidKey(format!(
                    "JWK `{kid}` names {named} but holds a key for {implied}"
                )));
            }
        }
        let decoding = DecodingKey::from_jwk(jwk)
            .map_err(|e| Error::InvalidKey(format!("JWK `{kid}`: {e}")))?;
        let mut jwk = jwk.clone();
        jwk.common.key_algorithm = Some(key_algorithm(implied));
        Ok(Self { kid, alg: implied, decoding, jwk: Some(jwk) })
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey").field("kid", &self.kid).field("alg", &self.alg).finish()
    }
}

/// A private (or, for HS256, shared) key that signs tokens, with its `kid`, its algorithm and
/// the matching [`VerifyingKey`].
///
/// The `kid` is derived from the key, so every instance that loads the same key agrees on it:
/// the RFC 7638 thumbprint of the public JWK for asymmetric keys, and an HMAC of a fixed label
/// under the secret for HS256 (which reveals nothing of the secret).
///
/// ```
/// use jwt_core::{Algorithm, SigningKey};
/// let key = SigningKey::generate(Algorithm::ES256)?;
/// let again = SigningKey::from_pem(Algorithm::ES256, key.to_pem()?.as_bytes())?;
/// assert_eq!(key.kid(), again.kid());
/// # Ok::<(), jwt_core::Error>(())
/// ```
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    verifying: VerifyingKey,
    /// The private key as stored: the raw secret for HS256, DER otherwise.
    material: Zeroizing<Vec<u8>>,
    /// The PEM label of `material` (PKCS#8, or PKCS#1 for an RSA key loaded that way).
    pem_tag: &'static str,
}

const PKCS8_TAG: &str = "PRIVATE KEY";
const RSA_PKCS1_TAG: &str = "RSA PRIVATE KEY";

impl SigningKey {
    /// A new random key for `alg`: 32 random bytes for HS256, a 2048-bit RSA key, a P-256 key
    /// or an Ed25519 key.
    pub fn generate(alg: Algorithm) -> Result<Self> {
        let rng = SystemRandom::new();
        match alg {
            Algorithm::HS256 => Self::from_secret(Secret::generate()),
            Algorithm::RS256 => Self::from_pkcs8_der(alg, &crate::rsa::generate_pkcs8()?),
            Algorithm::ES256 => {
                let doc = lc_sig::EcdsaKeyPair::generate_pkcs8(
                    &lc_sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &rng,
                )
                .map_err(|_| Error::InvalidKey("P-256 key generation failed".into()))?;
                Self::from_pkcs8_der(alg, doc.as_ref())
            }
            Algorithm::EdDSA => {
                let doc = lc_sig::Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| Error::InvalidKey("Ed25519 key generation failed".into()))?;
                Self::from_pkcs8_der(alg, doc.as_ref())
            }
        }
    }

    /// An HS256 key from a secret.
    pub fn from_secret(secret: Secret) -> Result<Self> {
        let tag = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.expose()),
            b"jwt-core key id",
        );
        let kid = URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16]);
        let verifying = VerifyingKey {
            kid,
            alg: Algorithm::HS256,
            decoding: DecodingKey::from_secret(secret.expose()),
            jwk: None,
        };
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.expose()),
            verifying,
            material: secret.0.clone(),
            pem_tag: "",
        })
    }

    /// An asymmetric key from a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) for every
    /// algorithm, or PKCS#1 (`BEGIN RSA PRIVATE KEY`) for RS256. For HS256 use
    /// [`SigningKey::from_secret`].
    pub fn from_pem(alg: Algorithm, pem_text: &[u8]) -> Result<Self> {
        let parsed = pem::parse(pem_text)
            .map_err(|e| Error::InvalidKey(format!("not a PEM private key: {e}")))?;
        match (alg, parsed.tag()) {
            (Algorithm::HS256, _) => {
                Err(Error::InvalidKey("an HS256 key is a secret, not a PEM key".into()))
            }
            (_, "PRIVATE KEY") => Self::from_pkcs8_der(alg, parsed.contents()),
            (Algorithm::RS256, "RSA PRIVATE KEY") => {
                Self::from_rsa_pem(pem_text, Zeroizing::new(parsed.into_contents()), RSA_PKCS1_TAG)
            }
            (_, tag) => Err(Error::InvalidKey(format!(
                "expected a PKCS#8 `PRIVATE KEY` PEM for {alg}, found `{tag}`"
            ))),
        }
    }

    /// An asymmetric key from PKCS#8 DER.
    pub fn from_pkcs8_der(alg: Algorithm, der: &[u8]) -> Result<Self> {
        let material = Zeroizing::new(der.to_vec());
        let (encoding, jwk_params) = match alg {
            Algorithm::HS256 => {
                return Err(Error::InvalidKey("an HS256 key is a secret, not a DER key".into()));
            }
            Algorithm::RS256 => {
                let pem_text = pem::encode(&pem::Pem::new(PKCS8_TAG, der.to_vec()));
                return Self::from_rsa_pem(pem_text.as_bytes(), material, PKCS8_TAG);
            }
            Algorithm::ES256 => {
                let pair =
                    lc_sig::EcdsaKeyPair::from_pkcs8(&lc_sig::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                        .map_err(|e| Error::InvalidKey(format!("P-256 PKCS#8 key: {e}")))?;
                let point = pair.public_key().as_ref();
                let params = AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: URL_SAFE_NO_PAD.encode(&point[1..33]),
                    y: URL_SAFE_NO_PAD.encode(&point[33..65]),
                });
                (EncodingKey::from_ec_der(der), params)
            }
            Algorithm::EdDSA => {
                let pair = lc_sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|e| Error::InvalidKey(format!("Ed25519 PKCS#8 key: {e}")))?;
                let params = AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                });
                (EncodingKey::from_ed_der(der), params)
            }
        };
        Self::assemble(alg, encoding, jwk_params, material, PKCS8_TAG)
    }

    /// An RS256 key from PEM text that jsonwebtoken's PEM reader accepts (PKCS#1 or PKCS#8).
    fn from_rsa_pem(
        pem_text: &[u8],
        material: Zeroizing<Vec<u8>>,
        pem_tag: &'static str,
    ) -> Result<Self> {
        let encoding = EncodingKey::from_rsa_pem(pem_text)
            .map_err(|e| Error::InvalidKey(format!("RSA private key: {e}")))?;
        let jwk = Jwk::from_encoding_key(&encoding, jsonwebtoken::Algorithm::RS256)
            .map_err(|e| Error::InvalidKey(format!("RSA private key: {e}")))?;
        if let AlgorithmParameters::RSA(ref rsa) = jwk.algorithm {
            let bits = URL_SAFE_NO_PAD.decode(&rsa.n).map(|n| n.len() * 8).unwrap_or(0);
            if bits < 2048 {
                return Err(Error::InvalidKey(format!(
                    "RSA keys must have at least 2048 bits, this one has {bits}"
                )));
            }
        }
        Self::assemble(Algorithm::RS256, encoding, jwk.algorithm, material, pem_tag)
    }

    fn assemble(
        alg: Algorithm,
        encoding: EncodingKey,
        jwk_params: AlgorithmParameters,
        material: Zeroizing<Vec<u8>>,
        pem_tag: &'static str,
    ) -> Result<Self> {
        let mut jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(key_algorithm(alg)),
                ..Default::default()
            },
            algorithm: jwk_params,
        };
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| Error::InvalidKey(format!("key thumbprint: {e}")))?;
        jwk.common.key_id = Some(kid.clone());
        let decoding = DecodingKey::from_jwk(&jwk)
            .map_err(|e| Error::InvalidKey(format!("public key: {e}")))?;
        let verifying = VerifyingKey { kid, alg, decoding, jwk: Some(jwk) };
        Ok(Self { encoding, verifying, material, pem_tag })
    }

    /// Replaces the derived `kid` with one of the caller's choosing.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        let kid = kid.into();
        if let Some(jwk) = self.verifying.jwk.as_mut() {
            jwk.common.key_id = Some(kid.clone());
        }
        self.verifying.kid = kid;
        self
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.verifying.kid
    }

    /// The one algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.verifying.alg
    }

    /// The matching verification key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The private key as PEM (PKCS#8, or PKCS#1 for an RSA key loaded from PKCS#1), for
    /// storing it; an error for HS256 (see
    /// [`SigningKey::secret`]).
    pub fn to_pem(&self) -> Result<Zeroizing<String>> {
        if self.algorithm().is_symmetric() {
            return Err(Error::InvalidKey("an HS256 key has no PEM form".into()));
        }
        Ok(Zeroizing::new(pem::encode(&pem::Pem::new(self.pem_tag, self.material.to_vec()))))
    }

    /// The HS256 secret, for storing it; `None` for asymmetric keys.
    pub fn secret(&self) -> Option<&[u8]> {
        self.algorithm().is_symmetric().then_some(self.material.as_slice())
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The private key as stored (the secret, or DER), for deriving other secrets from it.
    pub(crate) fn material(&self) -> &[u8] {
        &self.material
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .field("alg", &self.algorithm())
            .finish_non_exhaustive()
    }
}

fn key_algorithm(alg: Algorithm) -> KeyAlgorithm {
    match alg {
        Algorithm::HS256 => KeyAlgorithm::HS256,
        Algorithm::RS256 => KeyAlgorithm::RS256,
        Algorithm::ES256 => KeyAlgorithm::ES256,
        Algorithm::EdDSA => KeyAlgorithm::EdDSA,
    }
}

/// What [`KeySet::retention`] adds to the longest token lifetime, for clocks that differ
/// between instances.
const KEY_CLOCK_SKEW: TimeDelta = TimeDelta::seconds(60);

/// The keys a service signs and verifies with: at most one active signing key, and every key
/// whose tokens may still be alive.
///
/// A key set is immutable; [`KeySet::rotate`] and [`KeySet::retire`] return a new set, which a
/// [`TokenService`](crate::TokenService) swaps in atomically.
///
/// ```
/// use jwt_core::{Algorithm, KeySet, SigningKey};
/// let first = SigningKey::generate(Algorithm::EdDSA)?;
/// let keys = KeySet::new(first.clone());
/// let keys = keys.rotate(SigningKey::generate(Algorithm::EdDSA)?)?;
/// assert_ne!(keys.active().unwrap().kid(), first.kid());
/// assert!(keys.find(first.kid()).is_some(), "the old key still verifies");
/// assert_eq!(keys.jwks().keys.len(), 2);
/// # Ok::<(), jwt_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct KeySet {
    active: Option<SigningKey>,
    /// Every verification key, the active one's included. Few keys: a linear scan beats hashing.
    verifying: Vec<VerifyingKey>,
}

impl KeySet {
    /// A set whose only key is `active`.
    pub fn new(active: SigningKey) -> Self {
        let verifying = vec![active.verifying_key().clone()];
        Self { active: Some(active), verifying }
    }

    /// A set that only verifies: for a resource server that knows an issuer's JWK set.
    /// Keys that cannot be used (unknown types, missing `kid`, symmetric keys) are refused.
    pub fn from_jwks(jwks: &JwkSet) -> Result<Self> {
        let mut set = Self { active: None, verifying: Vec::with_capacity(jwks.keys.len()) };
        for jwk in &jwks.keys {
            set = set.with_verifying_key(VerifyingKey::from_jwk(jwk)?)?;
        }
        Ok(set)
    }

    /// How long a replaced key must keep verifying: until every token it signed has expired,
    /// so the longer of the two token lifetimes, plus a minute for clocks that differ between
    /// instances. The `retention` of [`KeySet::from_history`].
    ///
    /// ```
    /// use chrono::TimeDelta;
    /// use jwt_core::KeySet;
    /// let retention = KeySet::retention(TimeDelta::minutes(30), TimeDelta::days(7));
    /// assert_eq!(retention, TimeDelta::days(7) + TimeDelta::seconds(60));
    /// ```
    pub fn retention(access_ttl: TimeDelta, refresh_ttl: TimeDelta) -> TimeDelta {
        access_ttl.max(refresh_ttl) + KEY_CLOCK_SKEW
    }

    /// The set a service signs and verifies with at `now`, from its key history: `active`
    /// signs, and each earlier key, paired with the time it was replaced (stopped signing),
    /// still verifies until `retention` after that, when the last token it signed has expired
    /// (see [`KeySet::retention`]). A key equal to the active one, or given twice, is kept once.
    ///
    /// ```
    /// use chrono::{TimeDelta, Utc};
    /// use jwt_core::{Algorithm, KeySet, SigningKey};
    ///
    /// let now = Utc::now();
    /// let (old, older) =
    ///     (SigningKey::generate(Algorithm::EdDSA)?, SigningKey::generate(Algorithm::EdDSA)?);
    /// let retention = KeySet::retention(TimeDelta::minutes(30), TimeDelta::days(7));
    /// let keys = KeySet::from_history(
    ///     SigningKey::generate(Algorithm::EdDSA)?,
    ///     [
    ///         (older.verifying_key().clone(), now - TimeDelta::days(8)),
    ///         (old.verifying_key().clone(), now - TimeDelta::days(1)),
    ///     ],
    ///     retention,
    ///     now,
    /// );
    /// assert!(keys.find(old.kid()).is_some(), "replaced a day ago: its tokens may be alive");
    /// assert!(keys.find(older.kid()).is_none(), "replaced 8 days ago: all its tokens expired");
    /// # Ok::<(), jwt_core::Error>(())
    /// ```
    pub fn from_history(
        active: SigningKey,
        replaced: impl IntoIterator<Item = (VerifyingKey, DateTime<Utc>)>,
        retention: TimeDelta,
        now: DateTime<Utc>,
    ) -> Self {
        let mut set = Self::new(active);
        for (key, replaced_at) in replaced {
            // A retention past the end of time keeps the key: better than an overflow.
            let verifies_until = replaced_at.checked_add_signed(retention);
            if verifies_until.is_some_and(|until| until < now) || set.find(key.kid()).is_some() {
                continue;
            }
            set.verifying.push(key);
        }
        set
    }

    /// Adds a verify-only key, e.g. one retired from another instance.
    pub fn with_verifying_key(mut self, key: VerifyingKey) -> Result<Self> {
        if self.find(key.kid()).is_some() {
            return Err(Error::DuplicateKeyId(key.kid().to_owned()));
        }
        self.verifying.push(key);
        Ok(self)
    }

    /// A new set in which `next` signs, and the previously active key only verifies.
    pub fn rotate(&self, next: SigningKey) -> Result<Self> {
        let set = self.clone().with_verifying_key(next.verifying_key().clone())?;
        Ok(Self { active: Some(next), ..set })
    }

    /// A new set without the verify-only key `kid` (tokens it signed stop verifying).
    pub fn retire(&self, kid: &str) -> Result<Self> {
        if self.active.as_ref().is_some_and(|k| k.kid() == kid) {
            return Err(Error::ActiveKeyRetirement);
        }
        let mut set = self.clone();
        set.verifying.retain(|k| k.kid() != kid);
        Ok(set)
    }

    /// The key that signs new tokens, if this set can sign.
    pub fn active(&self) -> Option<&SigningKey> {
        self.active.as_ref()
    }

    /// The verification key with this `kid`.
    pub fn find(&self, kid: &str) -> Option<&VerifyingKey> {
        self.verifying.iter().find(|k| k.kid() == kid)
    }

    /// Every verification key.
    pub fn verifying_keys(&self) -> &[VerifyingKey] {
        &self.verifying
    }

    /// The public keys as an RFC 7517 JWK set (HS256 secrets are never included).
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: self.verifying.iter().filter_map(|k| k.jwk.clone()).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_and_round_trips_through_storage() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            let again = match key.secret() {
                Some(secret) => SigningKey::from_secret(Secret::new(secret.to_vec()).unwrap()),
                None => SigningKey::from_pem(alg, key.to_pem().unwrap().as_bytes()),
            }
            .unwrap();
            assert_eq!(again.kid(), key.kid(), "{alg}: kid is derived from the key");
        }
    }

    #[test]
    fn short_secret_is_an_error() {
        let err = Secret::new(vec![7; 31]).unwrap_err();
        assert!(matches!(err, Error::WeakSecret { min: 32, len: 31 }));
        assert!(Secret::new(vec![7; 32]).is_ok());
    }

    #[test]
    fn jwks_holds_only_public_keys() {
        let hs = KeySet::new(SigningKey::generate(Algorithm::HS256).unwrap());
        assert!(hs.jwks().keys.is_empty());
        let es = KeySet::new(SigningKey::generate(Algorithm::ES256).unwrap());
        let json = serde_json::to_value(es.jwks()).unwrap();
        let jwk = &json["keys"][0];
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        assert!(jwk.get("d").is_none(), "no private part");
    }

    #[test]
    fn jwks_import_refuses_symmetric_and_mismatched_keys() {
        let oct: Jwk =
            serde_json::from_value(serde_json::json!({"kty":"oct","k":"AAAA","kid":"a"})).unwrap();
        assert!(VerifyingKey::from_jwk(&oct).is_err());
        let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let mut jwk = ed.verifying_key().to_jwk().unwrap().clone();
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        assert!(VerifyingKey::from_jwk(&jwk).is_err());
        jwk.common.key_id = None;
        assert!(VerifyingKey::from_jwk(&jwk).is_err());
    }

    #[test]
    fn rotation_keeps_old_keys_and_protects_the_active_one() {
        let a = SigningKey::generate(Algorithm::HS256).unwrap();
        let b = SigningKey::generate(Algorithm::HS256).unwrap();
        let set = KeySet::new(a.clone()).rotate(b.clone()).unwrap();
        assert_eq!(set.active().unwrap().kid(), b.kid());
        assert!(matches!(set.retire(b.kid()), Err(Error::ActiveKeyRetirement)));
        let set = set.retire(a.kid()).unwrap();
        assert!(set.find(a.kid()).is_none());
        assert!(matches!(set.rotate(b), Err(Error::DuplicateKeyId(_))));
    }

    #[test]
    fn a_replaced_key_verifies_for_the_retention_after_its_replacement_and_no_longer() {
        let replaced_at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let retention = KeySet::retention(TimeDelta::minutes(30), TimeDelta::hours(1));
        assert_eq!(retention, TimeDelta::minutes(61));
        let old = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let history = || [(old.verifying_key().clone(), replaced_at)];
        let keys_at = |now| {
            let active = SigningKey::generate(Algorithm::EdDSA).unwrap();
            KeySet::from_history(active, history(), retention, now)
        };
        assert!(keys_at(replaced_at).find(old.kid()).is_some());
        assert!(keys_at(replaced_at + retention).find(old.kid()).is_some(), "the last moment");
        let after = replaced_at + retention + TimeDelta::seconds(1);
        assert!(keys_at(after).find(old.kid()).is_none(), "every token it signed has expired");
        assert_eq!(keys_at(after).verifying_keys().len(), 1, "the active key alone");
        // A retention past the end of time keeps the key rather than overflowing.
        let forever = KeySet::from_history(
            SigningKey::generate(Algorithm::EdDSA).unwrap(),
            history(),
            TimeDelta::MAX,
            replaced_at,
        );
        assert!(forever.find(old.kid()).is_some());
    }

    #[test]
    fn history_never_repeats_a_kid_and_the_active_key_signs() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let active = SigningKey::generate(Algorithm::ES256).unwrap();
        let old = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let recently = now - TimeDelta::minutes(1);
        let history = [
            (active.verifying_key().clone(), recently),
            (old.verifying_key().clone(), recently),
            (old.verifying_key().clone(), now),
        ];
        let keys = KeySet::from_history(active.clone(), history, TimeDelta::hours(1), now);
        assert_eq!(keys.active().unwrap().kid(), active.kid());
        let kids: Vec<&str> = keys.verifying_keys().iter().map(|k| k.kid()).collect();
        assert_eq!(kids, [active.kid(), old.kid()]);
        assert_eq!(keys.jwks().keys.len(), 2);
    }

    #[test]
    fn pem_of_the_wrong_kind_is_refused() {
        let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let pem = ed.to_pem().unwrap();
        assert!(SigningKey::from_pem(Algorithm::ES256, pem.as_bytes()).is_err());
        assert!(SigningKey::from_pem(Algorithm::HS256, pem.as_bytes()).is_err());
        assert!(SigningKey::from_pem(Algorithm::EdDSA, b"garbage").is_err());
    }

    #[test]
    fn every_asymmetric_jwk_imports_with_its_kid_and_algorithm() {
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            let key = SigningKey::generate(alg).unwrap();
            let mut jwk = key.verifying_key().to_jwk().unwrap().clone();
            let imported = VerifyingKey::from_jwk(&jwk).unwrap();
            assert_eq!((imported.kid(), imported.algorithm()), (key.kid(), alg));
            // Without `alg`, the key type names the algorithm.
            jwk.common.key_algorithm = None;
            assert_eq!(VerifyingKey::from_jwk(&jwk).unwrap().algorithm(), alg);
        }
    }

    #[test]
    fn jwk_import_refuses_encryption_keys_other_curves_and_foreign_algorithms() {
        let ed = SigningKey::generate(Algorithm::EdDSA).unwrap();
        let good = ed.verifying_key().to_jwk().unwrap().clone();
        assert!(VerifyingKey::from_jwk(&good).is_ok(), "the control");
        let refusal = |jwk: &Jwk| match VerifyingKey::from_jwk(jwk) {
            Err(Error::InvalidKey(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        };

        let mut encryption = good.clone();
        encryption.common.public_key_use = Some(PublicKeyUse::Encryption);
        assert!(refusal(&encryption).contains("not a signature key"));

        let x25519: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "OKP", "crv": "X25519", "kid": "x",
            "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"
        }))
        .unwrap();
        assert!(refusal(&x25519).contains("unsupported key type"));

        let mut foreign = good.clone();
        foreign.common.key_algorithm = Some(KeyAlgorithm::RS384);
        assert!(refusal(&foreign).contains("unsupported algorithm"));

        let mut broken = good;
        if let AlgorithmParameters::OctetKeyPair(ref mut p) = broken.algorithm {
            p.x = "!!not base64!!".into();
        }
        assert!(refusal(&broken).starts_with("JWK `"));
    }

    #[test]
    fn pkcs1_rsa_keys_load_and_short_ones_are_refused() {
        let pkcs1 = include_bytes!("../tests/fixtures/rsa-2048-pkcs1.pem");
        let key = SigningKey::from_pem(Algorithm::RS256, pkcs1).unwrap();
        assert_eq!(key.algorithm(), Algorithm::RS256);
        let again = SigningKey::from_pem(Algorithm::RS256, key.to_pem().unwrap().as_bytes());
        assert_eq!(again.unwrap().kid(), key.kid(), "it stores in the form it came in");

        // aws-lc refuses keys under 2048 bits itself; the check of our own stays behind it.
        let short = include_bytes!("../tests/fixtures/rsa-1024-pkcs1.pem");
        let refused = SigningKey::from_pem(Algorithm::RS256, short);
        assert!(matches!(refused, Err(Error::InvalidKey(_))), "a 1024-bit key: {refused:?}");
        // PKCS#1 names RSA: it is no key for another algorithm.
        match SigningKey::from_pem(Algorithm::ES256, pkcs1) {
            Err(Error::InvalidKey(why)) => {
                assert!(why.contains("found `RSA PRIVATE KEY`"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hs256_keys_have_no_pem_or_der_form() {
        let hs = SigningKey::generate(Algorithm::HS256).unwrap();
        assert!(hs.secret().is_some());
        assert!(matches!(hs.to_pem(), Err(Error::InvalidKey(_))));
        let es = SigningKey::generate(Algorithm::ES256).unwrap();
        assert!(es.to_pem().is_ok() && es.secret().is_none(), "the control");
        assert!(matches!(
            SigningKey::from_pkcs8_der(Algorithm::HS256, &[0x30, 0x00]),
            Err(Error::InvalidKey(_))
        ));
    }

    #[test]
    fn keys_debug_without_their_material() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg).unwrap();
            let signing = format!("{key:?}");
            let verifying = format!("{:?}", key.verifying_key());
            for shown in [&signing, &verifying] {
                assert!(
                    shown.contains(key.kid()) && shown.contains(&format!("{alg:?}")),
                    "{shown}"
                );
            }
            if let Some(secret) = key.secret() {
                let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
                assert!(!signing.contains(&hex[..16]) && !signing.contains(&format!("{secret:?}")));
            }
            assert!(!signing.contains("PRIVATE KEY") && !signing.contains("material"), "{signing}");
        }
    }
}
