//! Key loading, as the server does it from its key files and its database: the input as a PEM
//! private key (`SigningKey::from_pem`), as PKCS#8 DER (`SigningKey::from_pkcs8_der`) and as an
//! HS256 secret (`Secret::new`, `SigningKey::from_secret`).
//!
//! Input: a selector byte (bits 0-1: the algorithm asked for), then the key bytes.
//!
//! Asserted of a loaded key: it has the algorithm asked for and a `kid`; stored the way the
//! server stores it (PEM, or the secret) it loads again with the same `kid`; its public JWK
//! imports with the same `kid` and algorithm; and it signs a token that it then verifies, so
//! no key is accepted at load time that fails later. A secret loads exactly when it has
//! `MIN_SECRET_BYTES` or more.
#![no_main]

use jwt_auth_fuzz::fixture;
use jwt_core::{
    Algorithm, Error, KeySet, MIN_SECRET_BYTES, Secret, SigningKey, Subject, VerifyingKey,
};
use libfuzzer_sys::fuzz_target;

fn check_loaded(alg: Algorithm, key: &SigningKey) {
    assert_eq!(key.algorithm(), alg, "loaded for the algorithm asked for");
    assert!(!key.kid().is_empty(), "a key without a kid");
    let again = match key.secret() {
        Some(secret) => {
            assert_eq!(alg, Algorithm::HS256, "only HS256 keys are secrets");
            SigningKey::from_secret(Secret::new(secret.to_vec()).expect("a stored secret is long"))
        }
        None => {
            let pem = key.to_pem().expect("an asymmetric key has a PEM form");
            SigningKey::from_pem(alg, pem.as_bytes())
        }
    };
    let again = again.expect("a key loads again from its stored form");
    assert_eq!(again.kid(), key.kid(), "the kid is derived from the key");
    match key.verifying_key().to_jwk() {
        Some(jwk) => {
            let imported = VerifyingKey::from_jwk(jwk).expect("a published key imports");
            assert_eq!((imported.kid(), imported.algorithm()), (key.kid(), alg));
        }
        None => assert_eq!(alg, Algorithm::HS256, "only HS256 keys are unpublished"),
    }

    let service = fixture::service_over(KeySet::new(key.clone()), fixture::NOW);
    let subject = Subject { id: "alice".into(), roles: vec!["user".into()], email: None };
    let issued = service.issue_access(&subject, "s1", None).expect("a loaded key signs");
    let claims = service.verify_access_ignoring_revocations(issued.token.expose()).expect("and verifies its token");
    assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("alice", "s1"));
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, key)) = data.split_first() else { return };
    let alg = fixture::algorithm_of(selector);
    if let Ok(loaded) = SigningKey::from_pem(alg, key) {
        check_loaded(alg, &loaded);
    }
    if let Ok(loaded) = SigningKey::from_pkcs8_der(alg, key) {
        check_loaded(alg, &loaded);
    }
    match Secret::new(key.to_vec()) {
        Ok(secret) => {
            assert!(key.len() >= MIN_SECRET_BYTES, "a secret of {} bytes", key.len());
            let loaded = SigningKey::from_secret(secret).expect("any long secret is a key");
            check_loaded(Algorithm::HS256, &loaded);
        }
        Err(Error::WeakSecret { min, len }) => {
            assert_eq!((min, len), (MIN_SECRET_BYTES, key.len()));
            assert!(len < min, "refused a secret of {len} bytes");
        }
        Err(other) => panic!("Secret::new failed with {other:?}"),
    }
});
