//! The fixed key material and token services every target and the seed generator share.
//!
//! The keys are files in `fuzz/keys/` (test keys made with `openssl genpkey`, protecting
//! nothing) and a constant HS256 secret, and the services run on a clock that stands still at
//! [`NOW`]: a token the seed generator signs today is exactly as valid when a crash it found is
//! replayed next year, on another machine.

use std::sync::{Arc, OnceLock};

use chrono::DateTime;
use jsonwebtoken::{DecodingKey, EncodingKey};
use jwt_core::{Algorithm, KeySet, ManualClock, Secret, SigningKey, TokenPolicy, TokenService};

/// The issuer of every fixture service.
pub const ISSUER: &str = "https://auth.fuzz.example";
/// The audience of every fixture service.
pub const AUDIENCE: &str = "api";
/// The fixture services' "now", seconds since the epoch (2030-03-17).
pub const NOW: i64 = 1_900_000_000;
/// The HS256 secret: exactly the minimum length.
pub const HS256_SECRET: &[u8; 32] = b"fuzz-only-hs256-secret-32-bytes!";

/// The PKCS#8 PEM private key of `alg`; `None` for HS256, whose key is [`HS256_SECRET`].
pub fn private_pem(alg: Algorithm) -> Option<&'static str> {
    match alg {
        Algorithm::HS256 => None,
        Algorithm::RS256 => Some(include_str!("../keys/rs256.pem")),
        Algorithm::ES256 => Some(include_str!("../keys/es256.pem")),
        Algorithm::EdDSA => Some(include_str!("../keys/eddsa.pem")),
    }
}

/// The SPKI PEM public key of `alg` as openssl derived it (not jwt-core): the independent
/// check that an accepted token was signed by our key. `None` for HS256.
pub fn public_pem(alg: Algorithm) -> Option<&'static str> {
    match alg {
        Algorithm::HS256 => None,
        Algorithm::RS256 => Some(include_str!("../keys/rs256.pub.pem")),
        Algorithm::ES256 => Some(include_str!("../keys/es256.pub.pem")),
        Algorithm::EdDSA => Some(include_str!("../keys/eddsa.pub.pem")),
    }
}

/// The fixture's signing key of `alg`, loaded once through jwt-core.
pub fn signing_key(alg: Algorithm) -> &'static SigningKey {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        Algorithm::ALL
            .into_iter()
            .map(|alg| {
                let loaded = match private_pem(alg) {
                    None => Secret::new(HS256_SECRET.to_vec()).and_then(SigningKey::from_secret),
                    Some(pem) => SigningKey::from_pem(alg, pem.as_bytes()),
                };
                loaded.unwrap_or_else(|e| panic!("the fixture's {alg} key loads: {e}"))
            })
            .collect()
    });
    &keys[index(alg)]
}

/// A key set in which `active` signs and the fixture's other three keys verify: a token may
/// name any of the four keys, and algorithm confusion between them is reachable.
pub fn key_set(active: Algorithm) -> KeySet {
    Algorithm::ALL.into_iter().filter(|alg| *alg != active).fold(
        KeySet::new(signing_key(active).clone()),
        |set, alg| {
            set.with_verifying_key(signing_key(alg).verifying_key().clone())
                .expect("the fixture's kids are distinct")
        },
    )
}

/// The policy of every fixture service: the defaults, with [`ISSUER`] and [`AUDIENCE`].
pub fn policy() -> TokenPolicy {
    TokenPolicy::new(ISSUER, AUDIENCE)
}

/// A service signing with `active`'s key over [`key_set`], its clock standing at `now`.
pub fn service_at(active: Algorithm, now: i64) -> TokenService {
    service_over(key_set(active), now)
}

/// A service with the fixture policy over `keys`, its clock standing at `now`.
pub fn service_over(keys: KeySet, now: i64) -> TokenService {
    let clock = ManualClock::new(DateTime::from_timestamp(now, 0).expect("a fixture time"));
    TokenService::new(policy(), keys)
        .expect("the fixture policy is valid")
        .with_clock(Arc::new(clock))
}

/// [`service_at`] at [`NOW`].
pub fn service(active: Algorithm) -> TokenService {
    service_at(active, NOW)
}

/// jsonwebtoken's signing key for `alg`, made from the fixture's files without jwt-core.
pub fn encoding_key(alg: Algorithm) -> EncodingKey {
    let key = match alg {
        Algorithm::HS256 => return EncodingKey::from_secret(HS256_SECRET),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(pem_bytes(alg)),
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem_bytes(alg)),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem_bytes(alg)),
    };
    key.unwrap_or_else(|e| panic!("the fixture's {alg} key is PEM: {e}"))
}

/// jsonwebtoken's verifying key for `alg`, from openssl's public key ([`public_pem`]).
pub fn decoding_key(alg: Algorithm) -> DecodingKey {
    let public = |alg| public_pem(alg).expect("asymmetric").as_bytes();
    let key = match alg {
        Algorithm::HS256 => return DecodingKey::from_secret(HS256_SECRET),
        Algorithm::RS256 => DecodingKey::from_rsa_pem(public(alg)),
        Algorithm::ES256 => DecodingKey::from_ec_pem(public(alg)),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(public(alg)),
    };
    key.unwrap_or_else(|e| panic!("the fixture's {alg} public key is PEM: {e}"))
}

/// jsonwebtoken's name of `alg`.
pub fn jwt_algorithm(alg: Algorithm) -> jsonwebtoken::Algorithm {
    match alg {
        Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
    }
}

/// The algorithm a selector byte names (its two low bits).
pub fn algorithm_of(selector: u8) -> Algorithm {
    Algorithm::ALL[usize::from(selector & 3)]
}

fn index(alg: Algorithm) -> usize {
    Algorithm::ALL.iter().position(|a| *a == alg).expect("ALL holds every algorithm")
}

fn pem_bytes(alg: Algorithm) -> &'static [u8] {
    private_pem(alg).expect("asymmetric").as_bytes()
}
