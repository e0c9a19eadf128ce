//! JWK and JWK set import, as a resource server does it with an issuer's `jwks_uri`: the input
//! as JSON for a `Jwk` (`VerifyingKey::from_jwk`) and a `JwkSet` (`KeySet::from_jwks`, and the
//! verifier's lenient reading, which skips the keys it cannot use).
//!
//! Asserted of an imported key: its `kid` is the JWK's, its algorithm the one its key type
//! names, it is a signature key; the JWK it publishes holds the same key and imports again to
//! the same `kid` and algorithm; it verifies the fixture's token of its algorithm only if it is
//! the fixture's key. Of a set: the strict import takes every key or none, agrees with the
//! lenient one when it succeeds, holds no duplicate `kid`, cannot sign, and its published set
//! imports again to the same keys.
#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jwt_auth_fuzz::fixture;
use jwt_core::{Algorithm, KeySet, Subject, VerifyingKey};
use libfuzzer_sys::fuzz_target;

/// An access token of each algorithm, signed by the fixture's key, in `Algorithm::ALL` order.
fn fixture_token(alg: Algorithm) -> &'static str {
    static TOKENS: OnceLock<Vec<String>> = OnceLock::new();
    let tokens = TOKENS.get_or_init(|| {
        let subject = Subject { id: "alice".into(), roles: vec![], email: None };
        Algorithm::ALL
            .into_iter()
            .map(|alg| {
                let issued = fixture::service(alg).issue_access(&subject, "s1", None);
                issued.expect("the fixture signs").token.into_string()
            })
            .collect()
    });
    &tokens[Algorithm::ALL.iter().position(|a| *a == alg).expect("every algorithm")]
}

/// A big-endian number from base64url, without leading zeros: the same key may be written
/// with or without them.
fn number(b64: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(b64).ok()?;
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    Some(bytes[start..].to_vec())
}

/// Whether two JWKs hold the same public key.
fn same_key(a: &AlgorithmParameters, b: &AlgorithmParameters) -> bool {
    match (a, b) {
        (AlgorithmParameters::RSA(a), AlgorithmParameters::RSA(b)) => {
            number(&a.n) == number(&b.n) && number(&a.e) == number(&b.e)
        }
        (AlgorithmParameters::EllipticCurve(a), AlgorithmParameters::EllipticCurve(b)) => {
            a.curve == b.curve && number(&a.x) == number(&b.x) && number(&a.y) == number(&b.y)
        }
        (AlgorithmParameters::OctetKeyPair(a), AlgorithmParameters::OctetKeyPair(b)) => {
            a.curve == b.curve && number(&a.x) == number(&b.x)
        }
        _ => false,
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

fn check_jwk(jwk: &Jwk) {
    let Ok(key) = VerifyingKey::from_jwk(jwk) else { return };
    assert_eq!(Some(key.kid()), jwk.common.key_id.as_deref(), "the JWK's kid");
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        other => panic!("imported a key of type {other:?}"),
    };
    assert_eq!(key.algorithm(), implied, "the algorithm of the key type");
    if let Some(named) = jwk.common.key_algorithm {
        assert_eq!(named, key_algorithm(implied), "the JWK's alg agrees");
    }
    let usage = jwk.common.public_key_use.as_ref();
    assert!(usage.is_none_or(|u| *u == PublicKeyUse::Signature), "imported a {usage:?} key");

    let published = key.to_jwk().expect("an imported key is asymmetric and publishes");
    assert_eq!(published.algorithm, jwk.algorithm, "publishes the key it imported");
    assert_eq!(published.common.key_algorithm, Some(key_algorithm(implied)));
    let again = VerifyingKey::from_jwk(published).expect("a published key imports");
    assert_eq!((again.kid(), again.algorithm()), (key.kid(), key.algorithm()));

    let ours = fixture::signing_key(implied).verifying_key().to_jwk();
    let is_ours = ours.is_some_and(|ours| same_key(&ours.algorithm, &jwk.algorithm));
    let verified = jwt_core::verify_jws(fixture_token(implied), &key).is_ok();
    assert!(!verified || is_ours, "a key that is not ours verified our token");
}

fn kids(set: &KeySet) -> Vec<(&str, Algorithm)> {
    set.verifying_keys().iter().map(|k| (k.kid(), k.algorithm())).collect()
}

fn check_set(jwks: &JwkSet) {
    // The verifier's reading (crates/verifier/src/keys.rs `key_set`): a key it cannot use is
    // skipped, not a reason to drop the set.
    let empty = KeySet::from_jwks(&JwkSet { keys: vec![] }).expect("an empty set imports");
    let lenient = jwks.keys.iter().fold(empty, |set, jwk| {
        match VerifyingKey::from_jwk(jwk).and_then(|key| set.clone().with_verifying_key(key)) {
            Ok(with) => with,
            Err(_) => set,
        }
    });
    let mut seen: Vec<&str> = lenient.verifying_keys().iter().map(VerifyingKey::kid).collect();
    seen.sort_unstable();
    let count = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), count, "a duplicate kid in a key set");
    assert!(lenient.active().is_none(), "a set from a JWK set signs");

    let Ok(strict) = KeySet::from_jwks(jwks) else { return };
    assert_eq!(strict.verifying_keys().len(), jwks.keys.len(), "every key or none");
    assert_eq!(kids(&strict), kids(&lenient), "strict and lenient agree on a good set");
    assert!(strict.active().is_none(), "a set from a JWK set signs");
    let republished = KeySet::from_jwks(&strict.jwks()).expect("a published set imports");
    assert_eq!(kids(&republished), kids(&strict), "the published set holds the same keys");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(jwk) = serde_json::from_slice::<Jwk>(data) {
        check_jwk(&jwk);
    }
    if let Ok(jwks) = serde_json::from_slice::<JwkSet>(data) {
        for jwk in &jwks.keys {
            check_jwk(jwk);
        }
        check_set(&jwks);
    }
});
