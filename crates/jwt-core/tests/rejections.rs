//! Every reason `TokenService` refuses a token, each asserting the exact `jwt_core::Error`. The
//! tokens are forged by hand (header and payload JSON, base64url, signed with the test's own
//! keys) so that each differs from an acceptable token in one respect only.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::EncodingKey;
use jwt_core::{
    AccessClaims, Algorithm, Audience, Clock, Error, KeySet, ManualClock, RefreshClaims, Secret,
    SigningKey, Subject, TokenPolicy, TokenService, verify_jws,
};
use serde_json::{Value, json};

const T0: i64 = 1_700_000_000;
/// The HS256 secret of the service under test: knowing it lets a test sign any header and
/// payload it likes, so that only the part under test is wrong.
const SECRET: &[u8] = b"rejection-tests: the shared HS256 secret, 48 B..";
const OTHER_SECRET: &[u8] = b"rejection-tests: somebody else's secret, 48 B....";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `b64(header).b64(payload).signature`, signed by `signer` or with an empty signature.
fn compact(
    header: &str,
    payload: &str,
    signer: Option<(&EncodingKey, jsonwebtoken::Algorithm)>,
) -> String {
    let message = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    signed(message, signer)
}

/// `message.signature` for an already encoded `header.payload`.
fn signed(message: String, signer: Option<(&EncodingKey, jsonwebtoken::Algorithm)>) -> String {
    let signature = match signer {
        Some((key, alg)) => {
            jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).expect("test keys sign")
        }
        None => String::new(),
    };
    format!("{message}.{signature}")
}

fn hmac(secret: &[u8]) -> (EncodingKey, jsonwebtoken::Algorithm) {
    (EncodingKey::from_secret(secret), jsonwebtoken::Algorithm::HS256)
}

fn hs256_key(secret: &[u8]) -> SigningKey {
    SigningKey::from_secret(Secret::new(secret.to_vec()).expect("48-byte secret"))
        .expect("HS256 key")
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("a valid timestamp")
}

fn user() -> Subject {
    Subject { id: "user-1".into(), roles: vec!["user".into()], email: None }
}

/// `value` with `field` set (`Some`) or removed (`None`).
fn with(mut value: Value, field: &str, to: Option<Value>) -> Value {
    let object = value.as_object_mut().expect("a JSON object");
    match to {
        Some(v) => object.insert(field.to_owned(), v),
        None => object.remove(field),
    };
    value
}

struct Fixture {
    tokens: TokenService,
    clock: ManualClock,
    key: SigningKey,
}

impl Fixture {
    /// A service whose only key is the HS256 key of [`SECRET`], at time [`T0`].
    fn new() -> Self {
        Self::with_key(hs256_key(SECRET))
    }

    fn with_key(key: SigningKey) -> Self {
        Self::with_policy(key, TokenPolicy::new("jwt-auth", "api"))
    }

    fn with_policy(key: SigningKey, policy: TokenPolicy) -> Self {
        let clock = ManualClock::new(at(T0));
        let tokens = TokenService::new(policy, KeySet::new(key.clone()))
            .expect("valid policy")
            .with_clock(Arc::new(clock.clone()));
        Self { tokens, clock, key }
    }

    fn kid(&self) -> &str {
        self.key.kid()
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn header(&self, typ: &str) -> Value {
        json!({"alg": "HS256", "typ": typ, "kid": self.kid()})
    }

    fn access_header(&self) -> Value {
        self.header("at+jwt")
    }

    fn refresh_header(&self) -> Value {
        self.header("refresh+jwt")
    }

    fn access_claims(&self) -> Value {
        let now = self.now();
        json!({
            "iss": "jwt-auth", "sub": "user-1", "aud": "api",
            "exp": now + 600, "nbf": now, "iat": now,
            "jti": "jti-1", "sid": "session-1", "roles": ["user"],
        })
    }

    fn refresh_claims(&self) -> Value {
        let now = self.now();
        json!({
            "iss": "jwt-auth", "sub": "user-1", "exp": now + 600, "iat": now,
            "jti": "jti-2", "sid": "session-1",
        })
    }

    /// Signed with the service's own secret.
    fn sign(&self, header: &Value, payload: &Value) -> String {
        self.sign_raw(&header.to_string(), &payload.to_string())
    }

    fn sign_raw(&self, header: &str, payload: &str) -> String {
        let (key, alg) = hmac(SECRET);
        compact(header, payload, Some((&key, alg)))
    }

    fn access(&self, token: &str) -> jwt_core::Result<AccessClaims> {
        self.tokens.verify_access_ignoring_revocations(token)
    }

    fn refresh(&self, token: &str) -> jwt_core::Result<RefreshClaims> {
        self.tokens.verify_refresh(token)
    }
}

// ----- the baseline: the forging helpers make acceptable tokens ---------------------------

#[test]
fn hand_forged_tokens_with_the_right_secret_are_accepted() {
    let fx = Fixture::new();
    let claims = fx.access(&fx.sign(&fx.access_header(), &fx.access_claims())).unwrap();
    assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("user-1", "session-1"));
    assert_eq!(claims.roles, ["user"]);
    let claims = fx.refresh(&fx.sign(&fx.refresh_header(), &fx.refresh_claims())).unwrap();
    assert_eq!(claims.jti, "jti-2");
}

// ----- alg -------------------------------------------------------------------------------

#[test]
fn alg_none_without_signature_is_unsupported() {
    let fx = Fixture::new();
    for none in ["none", "None", "NONE", "nOnE"] {
        let header = with(fx.access_header(), "alg", Some(json!(none)));
        let token = compact(&header.to_string(), &fx.access_claims().to_string(), None);
        assert!(token.ends_with('.'), "empty signature");
        assert_rejects!(fx.access(&token), Error::UnsupportedAlgorithm);
        assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::UnsupportedAlgorithm);
        let header = with(fx.refresh_header(), "alg", Some(json!(none)));
        let token = compact(&header.to_string(), &fx.refresh_claims().to_string(), None);
        assert_rejects!(fx.refresh(&token), Error::UnsupportedAlgorithm);
    }
}

#[test]
fn alg_none_with_a_valid_hmac_signature_is_unsupported() {
    let fx = Fixture::new();
    let header = with(fx.access_header(), "alg", Some(json!("none")));
    let token = fx.sign(&header, &fx.access_claims());
    assert!(!token.ends_with('.'));
    assert_rejects!(fx.access(&token), Error::UnsupportedAlgorithm);
    assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::UnsupportedAlgorithm);
}

#[test]
fn alg_hs512_is_unsupported_even_when_signed_with_the_right_secret() {
    let fx = Fixture::new();
    for (name, alg) in
        [("HS512", jsonwebtoken::Algorithm::HS512), ("HS384", jsonwebtoken::Algorithm::HS384)]
    {
        let header = with(fx.access_header(), "alg", Some(json!(name)));
        let key = EncodingKey::from_secret(SECRET);
        let token =
            compact(&header.to_string(), &fx.access_claims().to_string(), Some((&key, alg)));
        assert_rejects!(fx.access(&token), Error::UnsupportedAlgorithm);
        assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::UnsupportedAlgorithm);
    }
}

#[test]
fn alg_names_outside_the_four_are_unsupported() {
    let fx = Fixture::new();
    for name in ["", "hs256", "Hs256", "HS256 ", " HS256", "RS512", "PS256", "ES384", "ED25519"] {
        let header = with(fx.access_header(), "alg", Some(json!(name)));
        assert_rejects!(
            fx.access(&fx.sign(&header, &fx.access_claims())),
            Error::UnsupportedAlgorithm
        );
    }
}

#[test]
fn alg_empty_string_is_unsupported() {
    let fx = Fixture::new();
    let header = with(fx.access_header(), "alg", Some(json!("")));
    assert_rejects!(fx.access(&fx.sign(&header, &fx.access_claims())), Error::UnsupportedAlgorithm);
}

#[test]
fn alg_missing_is_unsupported() {
    let fx = Fixture::new();
    let header = with(fx.access_header(), "alg", None);
    let token = fx.sign(&header, &fx.access_claims());
    assert_rejects!(fx.access(&token), Error::UnsupportedAlgorithm);
    assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::UnsupportedAlgorithm);
    let header = with(fx.access_header(), "alg", Some(Value::Null));
    assert_rejects!(fx.access(&fx.sign(&header, &fx.access_claims())), Error::UnsupportedAlgorithm);
}

#[test]
fn alg_that_is_not_a_string_is_malformed() {
    let fx = Fixture::new();
    for alg in [json!(256), json!(["HS256"]), json!({"name": "HS256"}), json!(true)] {
        let header = with(fx.access_header(), "alg", Some(alg));
        assert_rejects!(fx.access(&fx.sign(&header, &fx.access_claims())), Error::Malformed(_));
    }
}

// ----- key confusion: an HMAC token keyed with a public key ------------------------------

fn pkcs8_der(key: &SigningKey) -> Vec<u8> {
    let pem = key.to_pem().expect("asymmetric key");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("PEM body is base64")
}

/// Every byte string an attacker could take for "the public key" when keying HMAC with it:
/// the JWK as published, the raw public key, the X.509 SubjectPublicKeyInfo DER and its PEM.
fn public_key_forms(key: &SigningKey) -> Vec<Vec<u8>> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;

    let jwk = key.verifying_key().to_jwk().expect("asymmetric keys publish a JWK");
    let jwk_value = serde_json::to_value(jwk).unwrap();
    let field = |name: &str| URL_SAFE_NO_PAD.decode(jwk_value[name].as_str().unwrap()).unwrap();
    let der = pkcs8_der(key);
    let (raw, spki) = match key.algorithm() {
        Algorithm::RS256 => {
            let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).unwrap();
            (field("n"), pair.public_key().as_der().unwrap().as_ref().to_vec())
        }
        Algorithm::ES256 => {
            let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &der,
            )
            .unwrap();
            let raw = [vec![4], field("x"), field("y")].concat();
            assert_eq!(raw, pair.public_key().as_ref(), "JWK matches the key pair");
            (raw, pair.public_key().as_der().unwrap().as_ref().to_vec())
        }
        Algorithm::EdDSA => {
            let pair =
                aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
            (field("x"), pair.public_key().as_der().unwrap().as_ref().to_vec())
        }
        Algorithm::HS256 => unreachable!("HS256 has no public key"),
    };
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in STANDARD.encode(&spki).as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    vec![serde_json::to_vec(jwk).unwrap(), raw, spki, pem.into_bytes()]
}

/// The classic attack: the victim verifies with a public key; the attacker signs an HS256
/// token using that public key as the HMAC secret and names the victim's `kid`.
fn hmac_keyed_with_public_key_is_refused(alg: Algorithm) {
    let fx = Fixture::with_key(SigningKey::generate(alg).unwrap());
    let genuine = fx.tokens.issue_access(&user(), "session-1", None).unwrap();
    assert!(fx.access(genuine.token.expose()).is_ok(), "{alg}: the victim's own tokens verify");
    for public in public_key_forms(&fx.key) {
        let (key, hs256) = hmac(&public);
        let header = fx.access_header();
        let token =
            compact(&header.to_string(), &fx.access_claims().to_string(), Some((&key, hs256)));
        assert_rejects!(fx.access(&token), Error::AlgorithmMismatch);
        assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::AlgorithmMismatch);
        let header = fx.refresh_header();
        let token =
            compact(&header.to_string(), &fx.refresh_claims().to_string(), Some((&key, hs256)));
        assert_rejects!(fx.refresh(&token), Error::AlgorithmMismatch);

        let unknown = with(fx.access_header(), "kid", Some(json!("attacker-kid")));
        let token =
            compact(&unknown.to_string(), &fx.access_claims().to_string(), Some((&key, hs256)));
        assert_rejects!(fx.access(&token), Error::UnknownKey);
        let no_kid = with(fx.access_header(), "kid", None);
        let token =
            compact(&no_kid.to_string(), &fx.access_claims().to_string(), Some((&key, hs256)));
        assert_rejects!(fx.access(&token), Error::MissingKeyId);
    }
}

#[test]
fn hs256_token_keyed_with_an_rs256_public_key_is_refused() {
    hmac_keyed_with_public_key_is_refused(Algorithm::RS256);
}

#[test]
fn hs256_token_keyed_with_an_es256_public_key_is_refused() {
    hmac_keyed_with_public_key_is_refused(Algorithm::ES256);
}

#[test]
fn hs256_token_keyed_with_an_eddsa_public_key_is_refused() {
    hmac_keyed_with_public_key_is_refused(Algorithm::EdDSA);
}

#[test]
fn asymmetric_token_naming_an_hmac_kid_is_an_algorithm_mismatch() {
    let fx = Fixture::new();
    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        // A key of another algorithm that claims the HS256 key's kid.
        let impostor = SigningKey::generate(alg).unwrap().with_kid(fx.kid());
        let other = Fixture::with_key(impostor);
        let token = other.tokens.issue_access(&user(), "session-1", None).unwrap();
        assert_rejects!(fx.access(token.token.expose()), Error::AlgorithmMismatch);
        assert_rejects!(
            verify_jws(token.token.expose(), fx.key.verifying_key()),
            Error::AlgorithmMismatch
        );
    }
}

#[test]
fn key_set_mixing_hmac_and_public_keys_still_pins_each_kid_to_its_algorithm() {
    // A migration from HS256 to ES256: both keys verify, each only its own algorithm.
    let es = SigningKey::generate(Algorithm::ES256).unwrap();
    let fx = Fixture::new();
    fx.tokens.replace_keys(fx.tokens.keys().rotate(es.clone()).unwrap());
    let old = fx.sign(&fx.access_header(), &fx.access_claims());
    assert!(fx.access(&old).is_ok(), "HS256 tokens of the old key still verify");
    let new = fx.tokens.issue_access(&user(), "session-1", None).unwrap();
    assert!(fx.access(new.token.expose()).is_ok());
    for public in public_key_forms(&es) {
        let (key, hs256) = hmac(&public);
        let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": es.kid()});
        let token =
            compact(&header.to_string(), &fx.access_claims().to_string(), Some((&key, hs256)));
        assert_rejects!(fx.access(&token), Error::AlgorithmMismatch);
    }
}

// ----- kid -------------------------------------------------------------------------------

#[test]
fn unknown_kid_is_refused() {
    let fx = Fixture::new();
    for kid in ["nope", "", " ", &format!("{} ", fx.kid()), &fx.kid().to_uppercase()] {
        if kid == fx.kid() {
            continue;
        }
        let header = with(fx.access_header(), "kid", Some(json!(kid)));
        assert_rejects!(fx.access(&fx.sign(&header, &fx.access_claims())), Error::UnknownKey);
        let header = with(fx.refresh_header(), "kid", Some(json!(kid)));
        assert_rejects!(fx.refresh(&fx.sign(&header, &fx.refresh_claims())), Error::UnknownKey);
    }
}

#[test]
fn missing_kid_is_refused() {
    let fx = Fixture::new();
    let header = with(fx.access_header(), "kid", None);
    assert_rejects!(fx.access(&fx.sign(&header, &fx.access_claims())), Error::MissingKeyId);
    let header = with(fx.refresh_header(), "kid", None);
    assert_rejects!(fx.refresh(&fx.sign(&header, &fx.refresh_claims())), Error::MissingKeyId);
    let header = with(fx.access_header(), "kid", Some(Value::Null));
    assert_rejects!(fx.access(&fx.sign(&header, &fx.access_claims())), Error::MissingKeyId);
}

#[test]
fn kid_that_is_not_a_string_is_malformed() {
    let fx = Fixture::new();
    let header = with(fx.access_header(), "kid", Some(json!([fx.kid()])));
    assert_rejects!(fx.access(&fx.sign(&header, &fx.access_claims())), Error::Malformed(_));
}

#[test]
fn token_of_another_key_set_with_the_same_alg_is_an_unknown_key() {
    for alg in Algorithm::ALL {
        let fx = Fixture::with_key(SigningKey::generate(alg).unwrap());
        let stranger = Fixture::with_key(SigningKey::generate(alg).unwrap());
        assert_ne!(fx.kid(), stranger.kid());
        let access = stranger.tokens.issue_access(&user(), "session-1", None).unwrap();
        assert_rejects!(fx.access(access.token.expose()), Error::UnknownKey);
        let refresh = stranger.tokens.issue_refresh("user-1", "session-1", None).unwrap();
        assert_rejects!(fx.refresh(refresh.token.expose()), Error::UnknownKey);
    }
}

/// A token whose key was revoked says so ([`Error::KeyRevoked`], code `key_revoked`), not
/// "unknown key id": the key may well still be in the verifier's key set. A key that is not
/// in the set at all stays an unknown key; a key that is neither revoked nor missing verifies.
#[test]
fn a_revoked_key_is_told_apart_from_an_unknown_one() {
    use jwt_core::{Revocation, RevocationSet};
    for alg in [Algorithm::HS256, Algorithm::EdDSA] {
        let fx = Fixture::with_key(SigningKey::generate(alg).unwrap());
        let token = fx.tokens.issue_access(&user(), "session-1", None).unwrap();
        let revocations = RevocationSet::new();
        let verify = || fx.tokens.verify_access(token.token.expose(), &revocations);
        assert!(verify().is_ok(), "the control: the key is not revoked");

        let expires_at = fx.clock.now() + TimeDelta::hours(1);
        revocations.apply(&[Revocation::Key { kid: "another-kid".into(), expires_at }]);
        assert!(verify().is_ok(), "another key's revocation changes nothing");
        revocations.apply(&[Revocation::Key { kid: fx.kid().to_owned(), expires_at }]);
        let refused = verify().unwrap_err();
        assert!(matches!(refused, Error::KeyRevoked), "{refused:?}");
        assert_eq!(refused.code(), "key_revoked");
        assert_eq!(refused.http_code(), "invalid_token");
        assert!(refused.is_token_rejection());
        assert_eq!(refused.to_string(), "token was signed with a revoked key");

        // A stranger's key is unknown, revoked or not.
        let stranger = Fixture::with_key(SigningKey::generate(alg).unwrap());
        let foreign = stranger.tokens.issue_access(&user(), "session-1", None).unwrap();
        let refused = fx.tokens.verify_access(foreign.token.expose(), &revocations);
        assert_rejects!(refused, Error::UnknownKey);
        assert_eq!(Error::UnknownKey.code(), "invalid_token");
    }
}

#[test]
fn known_kid_with_a_signature_by_another_key_is_an_invalid_signature() {
    // HS256 forged by hand with another secret and the victim's kid.
    let fx = Fixture::new();
    let (key, hs256) = hmac(OTHER_SECRET);
    let token = compact(
        &fx.access_header().to_string(),
        &fx.access_claims().to_string(),
        Some((&key, hs256)),
    );
    assert_rejects!(fx.access(&token), Error::InvalidSignature);
    // Every algorithm: another key of the same algorithm that claims the victim's kid.
    for alg in Algorithm::ALL {
        let fx = Fixture::with_key(SigningKey::generate(alg).unwrap());
        let impostor = SigningKey::generate(alg).unwrap().with_kid(fx.kid());
        let other = Fixture::with_key(impostor);
        let access = other.tokens.issue_access(&user(), "session-1", None).unwrap();
        assert_rejects!(fx.access(access.token.expose()), Error::InvalidSignature);
        let refresh = other.tokens.issue_refresh("user-1", "session-1", None).unwrap();
        assert_rejects!(fx.refresh(refresh.token.expose()), Error::InvalidSignature);
        assert_rejects!(
            verify_jws(access.token.expose(), fx.key.verifying_key()),
            Error::InvalidSignature
        );
    }
}

#[test]
fn key_rotated_out_still_verifies_until_it_is_retired() {
    for alg in [Algorithm::HS256, Algorithm::EdDSA] {
        let fx = Fixture::with_key(SigningKey::generate(alg).unwrap());
        let old_kid = fx.kid().to_owned();
        let before = fx.tokens.issue_access(&user(), "session-1", None).unwrap();
        let before_refresh = fx.tokens.issue_refresh("user-1", "session-1", None).unwrap();

        let next = SigningKey::generate(alg).unwrap();
        fx.tokens.replace_keys(fx.tokens.keys().rotate(next.clone()).unwrap());
        let after = fx.tokens.issue_access(&user(), "session-1", None).unwrap();
        let (header, _) = jwt_core::dangerous::decode_unverified(after.token.expose()).unwrap();
        assert_eq!(header["kid"], next.kid(), "new tokens are signed by the new key");
        assert!(fx.access(before.token.expose()).is_ok(), "rotated-out key still verifies");
        assert!(fx.refresh(before_refresh.token.expose()).is_ok());

        fx.tokens.replace_keys(fx.tokens.keys().retire(&old_kid).unwrap());
        assert_rejects!(fx.access(before.token.expose()), Error::UnknownKey);
        assert_rejects!(fx.refresh(before_refresh.token.expose()), Error::UnknownKey);
        assert!(fx.access(after.token.expose()).is_ok(), "the active key is unaffected");
    }
}

// ----- headers that redirect key selection or demand processing -------------------------

fn forbidden_header_is_refused(name: &'static str, value: Value) {
    let fx = Fixture::new();
    let header = with(fx.access_header(), name, Some(value));
    let token = fx.sign(&header, &fx.access_claims());
    assert_rejects!(fx.access(&token), Error::ForbiddenHeader(n) if n == name);
    assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::ForbiddenHeader(n) if n == name);
    let header = with(fx.refresh_header(), name, Some(json!("anything")));
    let token = fx.sign(&header, &fx.refresh_claims());
    assert_rejects!(fx.refresh(&token), Error::ForbiddenHeader(n) if n == name);
}

#[test]
fn jku_header_is_forbidden() {
    forbidden_header_is_refused("jku", json!("https://attacker.example/jwks.json"));
}

#[test]
fn x5u_header_is_forbidden() {
    forbidden_header_is_refused("x5u", json!("https://attacker.example/cert.pem"));
}

#[test]
fn jwk_header_is_forbidden() {
    let attacker = SigningKey::generate(Algorithm::EdDSA).unwrap();
    let jwk = serde_json::to_value(attacker.verifying_key().to_jwk().unwrap()).unwrap();
    forbidden_header_is_refused("jwk", jwk);
}

#[test]
fn x5c_header_is_forbidden() {
    forbidden_header_is_refused("x5c", json!(["MIIBszCCAVmgAwIBAgIUW0zXbH0="]));
}

#[test]

fn forbidden_header_with_a_null_value_is_still_refused() {
    let fx = Fixture::new();
    for name in ["jku", "x5u", "jwk", "x5c"] {
        let header = with(fx.access_header(), name, Some(Value::Null));
        let token = fx.sign(&header, &fx.access_claims());
        assert_rejects!(fx.access(&token), Error::ForbiddenHeader(n) if n == name);
    }
}

#[test]
fn crit_header_is_an_unknown_critical_extension() {
    let fx = Fixture::new();
    let b64_false = with(fx.access_header(), "b64", Some(json!(false)));
    for (header, crit) in [
        (fx.access_header(), json!(["exp"])),
        (fx.access_header(), json!([])),
        (fx.access_header(), json!("exp")),
        (b64_false, json!(["b64"])),
    ] {
        let header = with(header, "crit", Some(crit));
        let token = fx.sign(&header, &fx.access_claims());
        assert_rejects!(fx.access(&token), Error::UnknownCritical);
        assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::UnknownCritical);
    }
    let header = with(fx.refresh_header(), "crit", Some(json!([])));
    assert_rejects!(fx.refresh(&fx.sign(&header, &fx.refresh_claims())), Error::UnknownCritical);
}

#[test]

fn crit_header_with_a_null_value_is_refused() {
    let fx = Fixture::new();
    let header = with(fx.access_header(), "crit", Some(Value::Null));
    assert_rejects!(fx.access(&fx.sign(&header, &fx.access_claims())), Error::UnknownCritical);
}

// ----- typ -------------------------------------------------------------------------------

#[test]
fn access_token_is_not_a_refresh_token_nor_the_reverse() {
    let fx = Fixture::new();
    let access = fx.tokens.issue_access(&user(), "session-1", None).unwrap();
    let refresh = fx.tokens.issue_refresh("user-1", "session-1", None).unwrap();
    assert_rejects!(fx.refresh(access.token.expose()), Error::WrongTokenType);
    assert_rejects!(fx.access(refresh.token.expose()), Error::WrongTokenType);
    // Even with claims that would satisfy the other kind.
    let refresh_typed = fx.sign(&fx.refresh_header(), &fx.access_claims());
    assert_rejects!(fx.access(&refresh_typed), Error::WrongTokenType);
    let access_typed = fx.sign(&fx.access_header(), &fx.refresh_claims());
    assert_rejects!(fx.refresh(&access_typed), Error::WrongTokenType);
}

#[test]
fn typ_missing_or_generic_is_a_wrong_token_type() {
    let fx = Fixture::new();
    for typ in [
        None,
        Some(json!("JWT")),
        Some(json!("jwt")),
        Some(json!("application/jwt")),
        Some(json!("")),
        Some(json!("at+jwt ")),
        Some(json!("application/")),
        Some(json!("application/refresh")),
        Some(json!("xapplication/at+jwt")),
        Some(Value::Null),
    ] {
        let header = with(fx.access_header(), "typ", typ.clone());
        assert_rejects!(fx.access(&fx.sign(&header, &fx.access_claims())), Error::WrongTokenType);
        let header = with(fx.refresh_header(), "typ", typ);
        assert_rejects!(fx.refresh(&fx.sign(&header, &fx.refresh_claims())), Error::WrongTokenType);
    }
}

#[test]
fn typ_spellings_allowed_by_rfc_7515_are_accepted() {
    let fx = Fixture::new();
    for typ in
        ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt", "APPLICATION/AT+JWT"]
    {
        let header = with(fx.access_header(), "typ", Some(json!(typ)));
        assert!(fx.access(&fx.sign(&header, &fx.access_claims())).is_ok(), "typ {typ:?}");
    }
    for typ in ["refresh+jwt", "application/refresh+jwt", "REFRESH+JWT"] {
        let header = with(fx.refresh_header(), "typ", Some(json!(typ)));
        assert!(fx.refresh(&fx.sign(&header, &fx.refresh_claims())).is_ok(), "typ {typ:?}");
    }
}

// ----- iss and aud -----------------------------------------------------------------------

#[test]
fn wrong_issuer_is_refused() {
    let fx = Fixture::new();
    for iss in ["evil", "JWT-AUTH", "jwt-auth ", ""] {
        let claims = with(fx.access_claims(), "iss", Some(json!(iss)));
        assert_rejects!(fx.access(&fx.sign(&fx.access_header(), &claims)), Error::InvalidIssuer);
        let claims = with(fx.refresh_claims(), "iss", Some(json!(iss)));
        assert_rejects!(fx.refresh(&fx.sign(&fx.refresh_header(), &claims)), Error::InvalidIssuer);
    }
}

#[test]
fn wrong_audience_is_refused() {
    let fx = Fixture::new();
    for aud in [json!("web"), json!("API"), json!(""), json!([]), json!(["web", "admin"])] {
        let claims = with(fx.access_claims(), "aud", Some(aud));
        assert_rejects!(fx.access(&fx.sign(&fx.access_header(), &claims)), Error::InvalidAudience);
    }
}

#[test]
fn audience_array_containing_ours_is_accepted() {
    let fx = Fixture::new();
    let claims = with(fx.access_claims(), "aud", Some(json!(["web", "api"])));
    let verified = fx.access(&fx.sign(&fx.access_header(), &claims)).unwrap();
    assert_eq!(verified.aud, Audience::Many(vec!["web".into(), "api".into()]));
}

// ----- required and well-typed claims ----------------------------------------------------

#[test]
fn each_missing_access_claim_is_named() {
    let fx = Fixture::new();
    for name in ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid"] {
        for absent in [None, Some(Value::Null)] {
            let claims = with(fx.access_claims(), name, absent);
            let token = fx.sign(&fx.access_header(), &claims);
            assert_rejects!(fx.access(&token), Error::MissingClaim(n) if n == name);
        }
    }
}

#[test]
fn each_missing_refresh_claim_is_named() {
    let fx = Fixture::new();
    for name in ["iss", "sub", "exp", "iat", "jti", "sid"] {
        let claims = with(fx.refresh_claims(), name, None);
        let token = fx.sign(&fx.refresh_header(), &claims);
        assert_rejects!(fx.refresh(&token), Error::MissingClaim(n) if n == name);
    }
}

#[test]
fn wrongly_typed_claims_are_invalid() {
    let fx = Fixture::new();
    let cases = [
        ("exp", json!("soon")),
        ("exp", json!(1.5)),
        ("exp", json!(u64::MAX)),
        ("nbf", json!(true)),
        ("iat", json!("1700000000")),
        ("aud", json!(42)),
        ("aud", json!(["api", 1])),
        ("iss", json!(["jwt-auth"])),
        ("sub", json!(7)),
        ("jti", json!({})),
        ("sid", json!(["session-1"])),
        ("roles", json!("admin")),
        ("roles", json!([1, 2])),
        ("email", json!(5)),
    ];
    for (name, value) in cases {
        let claims = with(fx.access_claims(), name, Some(value.clone()));
        let token = fx.sign(&fx.access_header(), &claims);
        assert_rejects!(fx.access(&token), Error::InvalidClaims);
    }
    for (name, value) in [("exp", json!("soon")), ("iat", json!(1.5)), ("sid", json!(1))] {
        let claims = with(fx.refresh_claims(), name, Some(value));
        assert_rejects!(fx.refresh(&fx.sign(&fx.refresh_header(), &claims)), Error::InvalidClaims);
    }
}

#[test]
fn payload_that_is_not_one_json_object_is_invalid() {
    let fx = Fixture::new();
    let object = fx.access_claims().to_string();
    for payload in [
        "".to_owned(),
        "null".to_owned(),
        "[]".to_owned(),
        "\"claims\"".to_owned(),
        "not json".to_owned(),
        format!("{object} trailing"),
        format!("{object}{object}"),
    ] {
        let token = fx.sign_raw(&fx.access_header().to_string(), &payload);
        assert_rejects!(fx.access(&token), Error::InvalidClaims);
    }
}

#[test]
fn payload_with_a_duplicate_claim_is_invalid() {
    let fx = Fixture::new();
    let now = fx.now();
    let payload = format!(
        r#"{{"iss":"jwt-auth","sub":"user-1","sub":"admin","aud":"api","exp":{},"nbf":{now},"iat":{now},"jti":"j","sid":"s","roles":[]}}"#,
        now + 600
    );
    let token = fx.sign_raw(&fx.access_header().to_string(), &payload);
    assert_rejects!(fx.access(&token), Error::InvalidClaims);
    let payload = format!(
        r#"{{"iss":"jwt-auth","sub":"user-1","exp":{},"iat":{now},"jti":"j","sid":"s","sid":"t"}}"#,
        now + 600
    );
    let token = fx.sign_raw(&fx.refresh_header().to_string(), &payload);
    assert_rejects!(fx.refresh(&token), Error::InvalidClaims);
}

#[test]

fn refresh_claims_as_a_json_array_are_refused() {
    let fx = Fixture::new();
    let now = fx.now();
    let payload = json!(["jwt-auth", "user-1", now + 600, now, "jti-9", "session-1"]);
    let token = fx.sign(&fx.refresh_header(), &payload);
    assert_rejects!(fx.refresh(&token), Error::InvalidClaims);
}

// ----- exp, nbf, iat ---------------------------------------------------------------------

/// Moves the clock around `expires_at` and checks `verify` at the leeway boundary.
fn expiry_boundary(fx: &Fixture, expires_at: DateTime<Utc>, verify: impl Fn() -> bool) {
    let leeway = fx.tokens.policy().leeway;
    assert_eq!(leeway, TimeDelta::seconds(5));
    fx.clock.set(expires_at);
    assert!(verify(), "at exp, within the leeway");
    fx.clock.set(expires_at + leeway - TimeDelta::seconds(1));
    assert!(verify(), "one second before exp + leeway");
    fx.clock.set(expires_at + leeway);
    assert!(!verify(), "at exp + leeway");
    fx.clock.set(at(T0));
}

#[test]
fn expired_at_exactly_exp_plus_leeway_and_accepted_one_second_before() {
    let fx = Fixture::new();
    let access = fx.tokens.issue_access(&user(), "session-1", None).unwrap();
    let refresh = fx.tokens.issue_refresh("user-1", "session-1", None).unwrap();
    expiry_boundary(&fx, access.expires_at, || fx.access(access.token.expose()).is_ok());
    expiry_boundary(&fx, refresh.expires_at, || fx.refresh(refresh.token.expose()).is_ok());
    fx.clock.set(access.expires_at + TimeDelta::seconds(5));
    assert_rejects!(fx.access(access.token.expose()), Error::Expired);
    fx.clock.set(refresh.expires_at + TimeDelta::seconds(5));
    assert_rejects!(fx.refresh(refresh.token.expose()), Error::Expired);
    fx.clock.set(at(T0));
    // Forged: an exp far in the past, and a negative one.
    for exp in [0, -1, i64::MIN, T0 - 6] {
        let claims = with(fx.access_claims(), "exp", Some(json!(exp)));
        assert_rejects!(fx.access(&fx.sign(&fx.access_header(), &claims)), Error::Expired);
    }
}

#[test]
fn nbf_and_iat_in_the_future_beyond_the_leeway_are_not_yet_valid() {
    let fx = Fixture::new();
    let now = fx.now();
    for name in ["nbf", "iat"] {
        let claims = with(fx.access_claims(), name, Some(json!(now + 5)));
        assert!(fx.access(&fx.sign(&fx.access_header(), &claims)).is_ok(), "{name} within leeway");
        for future in [now + 6, now + 3600, i64::MAX] {
            let claims = with(fx.access_claims(), name, Some(json!(future)));
            let token = fx.sign(&fx.access_header(), &claims);
            assert_rejects!(fx.access(&token), Error::NotYetValid);
        }
    }
    let claims = with(fx.refresh_claims(), "iat", Some(json!(now + 6)));
    assert_rejects!(fx.refresh(&fx.sign(&fx.refresh_header(), &claims)), Error::NotYetValid);
    let claims = with(fx.refresh_claims(), "iat", Some(json!(now + 5)));
    assert!(fx.refresh(&fx.sign(&fx.refresh_header(), &claims)).is_ok());
    // A real token, seen by a verifier whose clock is behind.
    let access = fx.tokens.issue_access(&user(), "session-1", None).unwrap();
    fx.clock.advance(TimeDelta::seconds(-6));
    assert_rejects!(fx.access(access.token.expose()), Error::NotYetValid);
    fx.clock.advance(TimeDelta::seconds(1));
    assert!(fx.access(access.token.expose()).is_ok());
}

// ----- size ------------------------------------------------------------------------------

#[test]
fn token_over_the_size_limit_is_refused_before_decoding() {
    let fx = Fixture::new();
    let limit = jwt_core::DEFAULT_MAX_TOKEN_BYTES;
    assert_eq!(limit, 8 * 1024);
    // Garbage: at the limit it gets as far as the decoder, one byte over it does not.
    assert_rejects!(fx.access(&"!".repeat(limit)), Error::Malformed(_));
    for garbage in ["!".repeat(limit + 1), "\u{1F4A5}".repeat(limit), "a.b.c".repeat(2000)] {
        assert_rejects!(fx.access(&garbage), Error::TokenTooLarge { limit: 8192 });
        assert_rejects!(fx.refresh(&garbage), Error::TokenTooLarge { limit: 8192 });
        assert_rejects!(
            verify_jws(&garbage, fx.key.verifying_key()),
            Error::TokenTooLarge { limit: 8192 }
        );
    }
    // A correctly signed token that is merely too long.
    let padded = |len: usize| {
        let claims = with(fx.access_claims(), "pad", Some(json!("x".repeat(len))));
        fx.sign(&fx.access_header(), &claims)
    };
    let base = padded(0).len();
    // Each 3 bytes of claims take 4 base64 characters; aim just under and just over.
    let fits = padded((limit - base) * 3 / 4 - 3);
    assert!(fits.len() <= limit);
    assert!(fx.access(&fits).is_ok());
    let too_long = padded((limit - base) * 3 / 4 + 3);
    assert!(too_long.len() > limit);
    assert_rejects!(fx.access(&too_long), Error::TokenTooLarge { limit: 8192 });
}

#[test]
fn size_limit_follows_the_policy() {
    let mut policy = TokenPolicy::new("jwt-auth", "api");
    policy.max_token_bytes = 512;
    let fx = Fixture::with_policy(hs256_key(SECRET), policy);
    let big = with(fx.access_claims(), "pad", Some(json!("x".repeat(600))));
    assert_rejects!(
        fx.access(&fx.sign(&fx.access_header(), &big)),
        Error::TokenTooLarge { limit: 512 }
    );
    assert!(fx.access(&fx.sign(&fx.access_header(), &fx.access_claims())).is_ok());
}

// ----- malformed shapes ------------------------------------------------------------------

#[test]
fn wrong_number_of_parts_is_malformed() {
    let fx = Fixture::new();
    let good = fx.sign(&fx.access_header(), &fx.access_claims());
    let (message, signature) = good.rsplit_once('.').unwrap();
    for token in [
        String::new(),
        ".".to_owned(),
        "..".to_owned(),
        "...".to_owned(),
        message.to_owned(),
        signature.to_owned(),
        format!("{good}."),
        format!("{good}.{signature}"),
        format!("{message}..{signature}"),
        format!(".{good}"),
    ] {
        assert_rejects!(fx.access(&token), Error::Malformed(_));
        assert_rejects!(fx.refresh(&token), Error::Malformed(_));
        assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::Malformed(_));
    }
}

#[test]
fn header_that_is_not_base64url_is_malformed() {
    let fx = Fixture::new();
    let header = b64(fx.access_header().to_string().as_bytes());
    let payload = b64(fx.access_claims().to_string().as_bytes());
    // Standard base64 of a header whose JSON makes `+`, `/` and `=` appear.
    let standard =
        STANDARD.encode(with(fx.access_header(), "x", Some(json!("\u{fbff}?>"))).to_string());
    assert!(standard.contains(['+', '/']) && standard.ends_with('='), "{standard}");
    for bad_header in [
        format!("{header}="),
        format!("{header}=="),
        format!("{header}*"),
        format!("{header}A"), // a length no base64 has (4n + 1), or a trailing byte
        format!(" {header}"),
        header.replace(|c: char| c.is_ascii_lowercase(), "+"),
        standard,
    ] {
        let token =
            signed(format!("{bad_header}.{payload}"), Some((&hmac(SECRET).0, hmac(SECRET).1)));
        assert_rejects!(fx.access(&token), Error::Malformed(_));
        assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::Malformed(_));
    }
}

#[test]
fn payload_that_is_not_base64url_is_malformed_even_when_signed() {
    let fx = Fixture::new();
    let header = b64(fx.access_header().to_string().as_bytes());
    let payload = STANDARD.encode(fx.access_claims().to_string());
    let (key, alg) = hmac(SECRET);
    for bad_payload in [format!("{payload}="), "!!!!".to_owned(), format!("{payload}*")] {
        let token = signed(format!("{header}.{bad_payload}"), Some((&key, alg)));
        assert_rejects!(fx.access(&token), Error::Malformed(_));
        assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::Malformed(_));
    }
}

#[test]
fn header_that_is_not_a_json_object_is_malformed() {
    let fx = Fixture::new();
    let header = fx.access_header().to_string();
    for bad in [
        "".to_owned(),
        "not json".to_owned(),
        "null".to_owned(),
        "\"HS256\"".to_owned(),
        "{\"alg\":\"HS256\"".to_owned(),
        format!("{header} x"),
        format!("{header}{header}"),
        "\u{feff}{\"alg\":\"HS256\"}".to_owned(),
    ] {
        let token = fx.sign_raw(&bad, &fx.access_claims().to_string());
        assert_rejects!(fx.access(&token), Error::Malformed(_));
        assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::Malformed(_));
    }
    let not_utf8 = signed(
        format!("{}.{}", b64(&[0xff, 0xfe, b'{', b'}']), b64(b"{}")),
        Some((&hmac(SECRET).0, hmac(SECRET).1)),
    );
    assert_rejects!(fx.access(&not_utf8), Error::Malformed(_));
}

#[test]

fn header_that_is_a_json_array_is_malformed() {
    let fx = Fixture::new();
    let header = json!(["HS256", "at+jwt", fx.kid(), null, null, null, null, null]);
    let token = fx.sign(&header, &fx.access_claims());
    assert_rejects!(fx.access(&token), Error::Malformed(_));
    assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::Malformed(_));
}

#[test]
fn header_with_duplicate_names_is_malformed() {
    let fx = Fixture::new();
    let kid = fx.kid();
    for header in [
        format!(r#"{{"alg":"HS256","alg":"HS256","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"none","alg":"HS256","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{kid}","alg":"none"}}"#),
        format!(r#"{{"alg":"HS256","typ":"JWT","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"other","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"HS256","a\u006cg":"HS256","typ":"at+jwt","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{kid}","crit":[],"crit":[]}}"#),
    ] {
        let token = fx.sign_raw(&header, &fx.access_claims().to_string());
        assert_rejects!(fx.access(&token), Error::Malformed(_));
        assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::Malformed(_));
    }
}

// ----- signatures ------------------------------------------------------------------------

#[test]
fn bad_signature_is_refused() {
    let fx = Fixture::new();
    let good = fx.sign(&fx.access_header(), &fx.access_claims());
    let (message, _) = good.rsplit_once('.').unwrap();
    let other = fx.sign(&fx.access_header(), &with(fx.access_claims(), "sub", Some(json!("x"))));
    let (_, other_signature) = other.rsplit_once('.').unwrap();
    for signature in [
        String::new(),
        b64(&[0; 32]),
        b64(&[0; 31]),
        b64(&[0; 64]),
        other_signature.to_owned(),
        "!!!!".to_owned(),
        format!("{other_signature}="),
    ] {
        let token = format!("{message}.{signature}");
        assert_rejects!(fx.access(&token), Error::InvalidSignature);
        assert_rejects!(verify_jws(&token, fx.key.verifying_key()), Error::InvalidSignature);
    }
    // A signature over the claims alone, or over the header alone.
    let (key, alg) = hmac(SECRET);
    let (header_part, payload_part) = message.split_once('.').unwrap();
    for signed_part in [payload_part, header_part, &format!("{message}.")] {
        let signature = jsonwebtoken::crypto::sign(signed_part.as_bytes(), &key, alg).unwrap();
        assert_rejects!(fx.access(&format!("{message}.{signature}")), Error::InvalidSignature);
    }
}

#[test]
fn one_flipped_signature_bit_is_refused_for_every_bit_and_algorithm() {
    for alg in Algorithm::ALL {
        let fx = Fixture::with_key(SigningKey::generate(alg).unwrap());
        let token = fx.tokens.issue_access(&user(), "session-1", None).unwrap().token;
        assert!(fx.access(token.expose()).is_ok());
        let (message, signature) = token.expose().rsplit_once('.').unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let forged = format!("{message}.{}", b64(&flipped));
            assert_rejects!(fx.access(&forged), Error::InvalidSignature);
        }
    }
}

#[test]
fn signature_with_non_canonical_trailing_bits_is_refused() {
    // 32 signature bytes take 43 characters; the last carries 2 unused bits. A decoder that
    // ignored them would accept four spellings of one signature.
    let fx = Fixture::new();
    let token = fx.sign(&fx.access_header(), &fx.access_claims());
    let (message, signature) = token.rsplit_once('.').unwrap();
    assert_eq!(signature.len(), 43);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = signature.as_bytes()[42];
    let index = ALPHABET.iter().position(|&c| c == last).unwrap();
    for low_bits in 1..4 {
        let sibling = ALPHABET[index ^ low_bits] as char;
        let forged = format!("{message}.{}{sibling}", &signature[..42]);
        assert_rejects!(fx.access(&forged), Error::InvalidSignature);
    }
}
