//! The example JWS objects of RFC 7515 (Appendix A.1 HS256, A.3 ES256) and RFC 8037
//! (Appendix A.4 Ed25519), verified with the RFCs' own keys through `jwt_core::verify_jws`, and
//! a resource server's view of our ES256 tokens through our published JWK set.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_core::{
    Algorithm, Error, Jwk, KeySet, ManualClock, Secret, SigningKey, Subject, TokenPolicy,
    TokenService, VerifyingKey, verify_jws,
};
use serde_json::json;

/// RFC 7515 A.1 and A.3 sign the same payload (with CRLF line breaks).
const RFC7515_PAYLOAD: &[u8] =
    b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";

/// RFC 7515 A.1.1: the JWS using HMAC SHA-256.
const RFC7515_A1_JWS: &str = concat!(
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
);

/// RFC 7515 A.1.1: the symmetric key `k` of the HMAC JWK.
const RFC7515_A1_K: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

/// RFC 7515 A.3.1: the JWS using ECDSA P-256 SHA-256.
const RFC7515_A3_JWS: &str = concat!(
    "eyJhbGciOiJFUzI1NiJ9",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q",
);

/// RFC 7515 A.3.1: the P-256 key. Only `x` and `y` are imported; `d` proves they are the RFC's.
const RFC7515_A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const RFC7515_A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const RFC7515_A3_D: &str = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";

/// RFC 8037 A.4: the Ed25519 JWS over "Example of Ed25519 signing".
const RFC8037_A4_JWS: &str = concat!(
    "eyJhbGciOiJFZERTQSJ9",
    ".",
    "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc",
    ".",
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg",
);

/// RFC 8037 A.1: the Ed25519 key (`d` is the seed, `x` the public key).
const RFC8037_A1_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC8037_A1_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

fn decode(b64: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(b64).expect("RFC values are base64url")
}

fn jwk(value: serde_json::Value) -> Jwk {
    serde_json::from_value(value).expect("a well-formed JWK")
}

/// Every variant of `jws` with one character replaced by another base64url character.
fn one_character_off(jws: &str) -> impl Iterator<Item = String> + '_ {
    jws.char_indices().filter(|&(_, c)| c != '.').map(move |(i, c)| {
        let replacement = if c == 'A' { 'B' } else { 'A' };
        let mut forged = jws.to_owned();
        forged.replace_range(i..i + 1, &replacement.to_string());
        forged
    })
}

/// Flipping any one character of a vector must make it fail.
fn every_one_character_change_fails(jws: &str, key: &VerifyingKey) {
    let mut checked = 0;
    for forged in one_character_off(jws) {
        assert!(verify_jws(&forged, key).is_err(), "accepted a forgery: {forged}");
        checked += 1;
    }
    assert_eq!(checked, jws.len() - 2);
}

fn rfc7515_hmac_key() -> VerifyingKey {
    let secret = Secret::new(decode(RFC7515_A1_K)).expect("the RFC key has 64 bytes");
    SigningKey::from_secret(secret).expect("HS256 key").verifying_key().clone()
}

fn rfc7515_p256_key() -> VerifyingKey {
    VerifyingKey::from_jwk(&jwk(json!({
        "kty": "EC", "crv": "P-256", "x": RFC7515_A3_X, "y": RFC7515_A3_Y, "kid": "rfc7515-a3",
    })))
    .expect("the RFC's P-256 key imports")
}

fn rfc8037_ed25519_key() -> VerifyingKey {
    VerifyingKey::from_jwk(&jwk(json!({
        "kty": "OKP", "crv": "Ed25519", "x": RFC8037_A1_X, "kid": "rfc8037-a1",
    })))
    .expect("the RFC's Ed25519 key imports")
}

#[test]
fn rfc7515_a1_hs256_vector_verifies() {
    let key = rfc7515_hmac_key();
    assert_eq!(key.algorithm(), Algorithm::HS256);
    assert_eq!(verify_jws(RFC7515_A1_JWS, &key).unwrap(), RFC7515_PAYLOAD);
    // The vector's signature is the HMAC of the signing input under `k`, computed here
    // independently of jwt-core and jsonwebtoken.
    let (signing_input, signature) = RFC7515_A1_JWS.rsplit_once('.').unwrap();
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &decode(RFC7515_A1_K)),
        signing_input.as_bytes(),
    );
    assert_eq!(tag.as_ref(), decode(signature));
}

#[test]
fn rfc7515_a1_hs256_vector_fails_with_any_character_changed() {
    every_one_character_change_fails(RFC7515_A1_JWS, &rfc7515_hmac_key());
}

#[test]
fn rfc7515_a1_hs256_vector_fails_with_another_secret() {
    let mut k = decode(RFC7515_A1_K);
    k[0] ^= 1;
    let other = SigningKey::from_secret(Secret::new(k).unwrap()).unwrap();
    assert!(matches!(
        verify_jws(RFC7515_A1_JWS, other.verifying_key()),
        Err(Error::InvalidSignature)
    ));
}

#[test]
fn rfc7515_a3_es256_vector_verifies() {
    let key = rfc7515_p256_key();
    assert_eq!((key.kid(), key.algorithm()), ("rfc7515-a3", Algorithm::ES256));
    assert_eq!(verify_jws(RFC7515_A3_JWS, &key).unwrap(), RFC7515_PAYLOAD);
    // ECDSA signatures are randomized, so check the key instead: `d` yields `x` and `y`.
    let public = [vec![4], decode(RFC7515_A3_X), decode(RFC7515_A3_Y)].concat();
    aws_lc_rs::signature::EcdsaKeyPair::from_private_key_and_public_key(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &decode(RFC7515_A3_D),
        &public,
    )
    .expect("the RFC's P-256 key pair is consistent");
}

#[test]
fn rfc7515_a3_es256_vector_fails_with_any_character_changed() {
    every_one_character_change_fails(RFC7515_A3_JWS, &rfc7515_p256_key());
}

#[test]
fn rfc7515_a3_es256_vector_is_refused_by_keys_of_other_algorithms() {
    // The HMAC key of A.1 with the same payload: the header says ES256, the key HS256.
    assert!(matches!(
        verify_jws(RFC7515_A3_JWS, &rfc7515_hmac_key()),
        Err(Error::AlgorithmMismatch)
    ));
    assert!(matches!(
        verify_jws(RFC7515_A1_JWS, &rfc7515_p256_key()),
        Err(Error::AlgorithmMismatch)
    ));
}

#[test]
fn rfc8037_a4_ed25519_vector_verifies() {
    let key = rfc8037_ed25519_key();
    assert_eq!((key.kid(), key.algorithm()), ("rfc8037-a1", Algorithm::EdDSA));
    assert_eq!(verify_jws(RFC8037_A4_JWS, &key).unwrap(), b"Example of Ed25519 signing");
    // Ed25519 is deterministic: the RFC's private key gives exactly the RFC's signature.
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_and_public_key(
        &decode(RFC8037_A1_D),
        &decode(RFC8037_A1_X),
    )
    .expect("the RFC's key pair is consistent");
    let (signing_input, signature) = RFC8037_A4_JWS.rsplit_once('.').unwrap();
    assert_eq!(pair.sign(signing_input.as_bytes()).as_ref(), decode(signature));
}

#[test]
fn rfc8037_a4_ed25519_vector_fails_with_any_character_changed() {
    every_one_character_change_fails(RFC8037_A4_JWS, &rfc8037_ed25519_key());
}

#[test]
fn rfc8037_a4_ed25519_vector_fails_with_another_public_key() {
    let other = SigningKey::generate(Algorithm::EdDSA).unwrap();
    assert!(matches!(
        verify_jws(RFC8037_A4_JWS, other.verifying_key()),
        Err(Error::InvalidSignature)
    ));
}

#[test]
fn our_es256_tokens_verify_with_keys_imported_from_our_jwks() {
    let clock = Arc::new(ManualClock::starting_now());
    let issuer_keys = KeySet::new(SigningKey::generate(Algorithm::ES256).unwrap());
    let issuer = TokenService::new(TokenPolicy::new("jwt-auth", "api"), issuer_keys)
        .unwrap()
        .with_clock(clock.clone());

    // The resource server only ever sees the published JWK set, as JSON.
    let published = serde_json::to_string(&issuer.keys().jwks()).unwrap();
    assert!(!published.contains("\"d\""), "no private key material is published");
    let imported = KeySet::from_jwks(&serde_json::from_str(&published).unwrap()).unwrap();
    assert!(imported.active().is_none(), "a JWK set only verifies");
    let resource = TokenService::new(TokenPolicy::new("jwt-auth", "api"), imported.clone())
        .unwrap()
        .with_clock(clock);

    let alice = Subject { id: "alice".into(), roles: vec!["admin".into()], email: None };
    let issued = issuer.issue_access(&alice, "session-1", None).unwrap();
    let claims = resource.verify_access_ignoring_revocations(issued.token.expose()).unwrap();
    assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("alice", "session-1"));
    assert!(claims.has_role("admin"));

    let key = imported.find(issuer.keys().active().unwrap().kid()).expect("same kid");
    assert_eq!(key.algorithm(), Algorithm::ES256);
    let payload = verify_jws(issued.token.expose(), key).unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(payload["sub"], "alice");

    // The resource server cannot issue, and refuses what another issuer signs.
    assert!(matches!(resource.issue_access(&alice, "session-1", None), Err(Error::NoSigningKey)));
    let stranger = TokenService::new(
        TokenPolicy::new("jwt-auth", "api"),
        KeySet::new(SigningKey::generate(Algorithm::ES256).unwrap()),
    )
    .unwrap();
    let foreign = stranger.issue_access(&alice, "session-1", None).unwrap();
    assert!(matches!(
        resource.verify_access_ignoring_revocations(foreign.token.expose()),
        Err(Error::UnknownKey)
    ));
    for forged in one_character_off(issued.token.expose()).step_by(7) {
        assert!(resource.verify_access_ignoring_revocations(&forged).is_err());
    }
}
