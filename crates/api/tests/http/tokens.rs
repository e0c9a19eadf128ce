//! Token attacks, forged with the test's own copy of the server's key (and with other keys):
//! every one is refused with 401 and the contract's code, and a faithful re-signing of a real
//! token is accepted, so the forging itself is known to work. Also the JWK set each algorithm
//! publishes.

use jsonwebtoken::{DecodingKey, EncodingKey, jwk::Jwk};
use jwt_core::{Algorithm, SigningKey};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Pair, TestApp, TestDb, b64, decode, encoding_key, forge, jwt_alg, send};

crate::http_tests!(
    hs256_refuses_forged_tokens_and_publishes_no_keys,
    eddsa_refuses_forged_tokens_and_publishes_its_public_key,
    rs256_refuses_forged_tokens_and_publishes_its_public_key,
    es256_refuses_hmac_tokens_made_with_its_public_key,
);

async fn start(db: TestDb, alg: Algorithm) -> (TestApp, Pair) {
    let app = TestApp::start_with(db, |c| c.algorithm = Some(alg)).await;
    app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;
    (app, pair)
}

fn remove(object: &mut Value, member: &str) {
    object.as_object_mut().expect("a JSON object").remove(member);
}

/// `header.claims.signature` with the signature of `token` kept.
fn with_parts(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// Attacks that do not depend on the algorithm. Each is sent as a bearer token to `/api/me`.
async fn refuses_forged_access_tokens(app: &TestApp, pair: &Pair) {
    let (header, claims) = decode(&pair.access);
    let signature = pair.access.rsplit('.').next().expect("a signature").to_owned();
    let alg = jwt_alg(app.key.algorithm());
    let key = app.encoding_key();
    let now = app.now().timestamp();

    // The control: the same header and claims, signed again, are accepted.
    app.assert_accepted(&forge(&header, &claims, &key, alg)).await;

    let edit = |f: &dyn Fn(&mut Value, &mut Value)| app.resign(&pair.access, |h, c| f(h, c));
    let mut none = header.clone();
    none["alg"] = json!("none");
    let mut none_upper = header.clone();
    none_upper["alg"] = json!("NONE");
    let other_key = SigningKey::generate(app.key.algorithm()).expect("a key");
    let oversized = edit(&|_, c| c["padding"] = json!("x".repeat(8 * 1024)));
    assert!(oversized.len() > 8 * 1024);

    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none, no signature", with_parts(&none, &claims, ""), "invalid_token"),
        ("alg none, old signature", with_parts(&none, &claims, &signature), "invalid_token"),
        ("alg NONE", with_parts(&none_upper, &claims, ""), "invalid_token"),
        ("refresh token as bearer", pair.refresh.clone(), "invalid_token"),
        ("typ JWT", edit(&|h, _| h["typ"] = json!("JWT")), "invalid_token"),
        ("typ refresh+jwt", edit(&|h, _| h["typ"] = json!("refresh+jwt")), "invalid_token"),
        ("no typ", edit(&|h, _| remove(h, "typ")), "invalid_token"),
        ("wrong aud", edit(&|_, c| c["aud"] = json!("other-api")), "invalid_token"),
        ("aud list without ours", edit(&|_, c| c["aud"] = json!(["a", "b"])), "invalid_token"),
        ("wrong iss", edit(&|_, c| c["iss"] = json!("https://evil.example")), "invalid_token"),
        ("nbf in the future", edit(&|_, c| c["nbf"] = json!(now + 60)), "invalid_token"),
        ("iat in the future", edit(&|_, c| c["iat"] = json!(now + 3600)), "invalid_token"),
        ("expired", edit(&|_, c| c["exp"] = json!(now - 31)), "token_expired"),
        ("exp not a number", edit(&|_, c| c["exp"] = json!("soon")), "invalid_token"),
        ("no sub", edit(&|_, c| remove(c, "sub")), "invalid_token"),
        ("no sid", edit(&|_, c| remove(c, "sid")), "invalid_token"),
        ("no exp", edit(&|_, c| remove(c, "exp")), "invalid_token"),
        ("unknown kid", edit(&|h, _| h["kid"] = json!("no-such-key")), "invalid_token"),
        ("no kid", edit(&|h, _| remove(h, "kid")), "invalid_token"),
        ("jku", edit(&|h, _| h["jku"] = json!("https://evil.example/jwks.json")), "invalid_token"),
        ("x5u", edit(&|h, _| h["x5u"] = json!("https://evil.example/cert.pem")), "invalid_token"),
        ("jwk", edit(&|h, _| h["jwk"] = json!({"kty": "oct", "k": "AAAA"})), "invalid_token"),
        ("x5c", edit(&|h, _| h["x5c"] = json!(["MIIB"])), "invalid_token"),
        ("crit", edit(&|h, _| h["crit"] = json!(["exp"])), "invalid_token"),
        ("crit null", edit(&|h, _| h["crit"] = Value::Null), "invalid_token"),
        (
            "another key with the right kid",
            forge(&header, &claims, &encoding_key(&other_key), alg),
            "invalid_token",
        ),
        ("truncated signature", pair.access[..pair.access.len() - 4].to_owned(), "invalid_token"),
        ("signature removed", with_parts(&header, &claims, ""), "invalid_token"),
        ("two parts", pair.access.rsplit_once('.').expect("parts").0.to_owned(), "invalid_token"),
        ("four parts", format!("{}.e30", pair.access), "invalid_token"),
        ("garbage", "not-a-token".to_owned(), "invalid_token"),
        ("dots", "...".to_owned(), "invalid_token"),
        ("not base64", "%%%.%%%.%%%".to_owned(), "invalid_token"),
        (
            "header an array",
            format!("{}.{}.{signature}", b64(b"[]"), b64(claims.to_string().as_bytes())),
            "invalid_token",
        ),
        ("over 8 KiB", oversized, "invalid_token"),
        ("40 KiB of garbage", "a".repeat(40 * 1024), "invalid_token"),
    ];
    for (what, token, code) in cases {
        let reply = app.me(&token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}: accepted: {}", reply.text);
        assert_eq!(reply.body["error"], code, "{what}: {}", reply.text);
        reply.assert_token_refused(code);
    }

    // Refresh tokens: the same checks, on `/auth/refresh`.
    let (rheader, rclaims) = decode(&pair.refresh);
    let mut rnone = rheader.clone();
    rnone["alg"] = json!("none");
    let redit = |f: &dyn Fn(&mut Value, &mut Value)| app.resign(&pair.refresh, |h, c| f(h, c));
    let cases: Vec<(&str, String)> = vec![
        ("access token", pair.access.clone()),
        ("alg none", with_parts(&rnone, &rclaims, "")),
        ("typ at+jwt", redit(&|h, _| h["typ"] = json!("at+jwt"))),
        ("wrong iss", redit(&|_, c| c["iss"] = json!("https://evil.example"))),
        ("unknown kid", redit(&|h, _| h["kid"] = json!("no-such-key"))),
        ("jku", redit(&|h, _| h["jku"] = json!("https://evil.example/jwks.json"))),
        ("another key", forge(&rheader, &rclaims, &encoding_key(&other_key), alg)),
        ("truncated", pair.refresh[..pair.refresh.len() - 3].to_owned()),
    ];
    for (what, token) in cases {
        let reply = app.refresh(&token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "refresh, {what}: {}", reply.text);
        reply.assert_token_refused("invalid_token");
    }
    // The real refresh token is still good: nothing above disturbed the session.
    Pair::from_reply(&app.refresh(&pair.refresh).await);
}

/// An HMAC token whose secret is something public about the server's key, with its `kid`.
async fn refuses_hmac_with(app: &TestApp, pair: &Pair, what: &str, secret: &[u8]) {
    let (mut header, claims) = decode(&pair.access);
    header["alg"] = json!("HS256");
    let token =
        forge(&header, &claims, &EncodingKey::from_secret(secret), jsonwebtoken::Algorithm::HS256);
    let reply = app.me(&token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "HS256 with {what}: {}", reply.text);
    reply.assert_token_refused("invalid_token");
}

/// The published JWK set: one key, the server's, public parts only, and it verifies the
/// server's tokens.
async fn published_key(app: &TestApp, pair: &Pair, kty: &str) -> Value {
    let reply = send(app.get("/.well-known/jwks.json")).await;
    assert_eq!(reply.status, StatusCode::OK);
    let keys = reply.body["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{}", reply.text);
    let jwk = keys[0].clone();
    assert_eq!(jwk["kty"], kty);
    assert_eq!(jwk["kid"], app.key.kid());
    assert_eq!(jwk["kid"], decode(&pair.access).0["kid"]);
    assert_eq!(jwk["alg"], app.key.algorithm().as_str());
    assert_eq!(jwk["use"], "sig");
    for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        assert!(jwk.get(private).is_none(), "private member `{private}` published: {jwk}");
    }
    let parsed: Jwk = serde_json::from_value(jwk.clone()).expect("an RFC 7517 key");
    let decoding = DecodingKey::from_jwk(&parsed).expect("a usable key");
    let (message, signature) = pair.access.rsplit_once('.').expect("a JWS");
    let alg = jwt_alg(app.key.algorithm());
    assert!(
        jsonwebtoken::crypto::verify(signature, message.as_bytes(), &decoding, alg)
            .expect("verification runs"),
        "the published key verifies the server's tokens"
    );
    jwk
}

fn base64url(value: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.as_str().expect("a base64url member"))
        .expect("base64url")
}

async fn hs256_refuses_forged_tokens_and_publishes_no_keys(db: TestDb) {
    let (app, pair) = start(db, Algorithm::HS256).await;
    refuses_forged_access_tokens(&app, &pair).await;

    // The reverse switch: an RS256 token with the HMAC key's kid.
    let rsa = SigningKey::generate(Algorithm::RS256).expect("an RSA key");
    let (mut header, claims) = decode(&pair.access);
    header["alg"] = json!("RS256");
    let token = forge(&header, &claims, &encoding_key(&rsa), jsonwebtoken::Algorithm::RS256);
    app.me(&token).await.assert_token_refused("invalid_token");

    let jwks = send(app.get("/.well-known/jwks.json")).await;
    assert_eq!(jwks.status, StatusCode::OK);
    assert_eq!(jwks.body, json!({"keys": []}), "an HMAC secret is never published");
}

async fn eddsa_refuses_forged_tokens_and_publishes_its_public_key(db: TestDb) {
    let (app, pair) = start(db, Algorithm::EdDSA).await;
    refuses_forged_access_tokens(&app, &pair).await;
    let jwk = published_key(&app, &pair, "OKP").await;
    assert_eq!(jwk["crv"], "Ed25519");
    // The classic confusion: HS256 keyed with the public key, in every form it is known by.
    let raw = base64url(&jwk["x"]);
    let mut spki = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    spki.extend_from_slice(&raw);
    let pem = pem_of(&spki);
    refuses_hmac_with(&app, &pair, "the raw public key", &raw).await;
    refuses_hmac_with(&app, &pair, "the SPKI DER", &spki).await;
    refuses_hmac_with(&app, &pair, "the SPKI PEM", pem.as_bytes()).await;
    refuses_hmac_with(&app, &pair, "the JWK", jwk.to_string().as_bytes()).await;
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("ASCII")).collect();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
}

async fn rs256_refuses_forged_tokens_and_publishes_its_public_key(db: TestDb) {
    let (app, pair) = start(db, Algorithm::RS256).await;
    refuses_forged_access_tokens(&app, &pair).await;
    let jwk = published_key(&app, &pair, "RSA").await;
    assert_eq!(jwk["e"], "AQAB");
    assert!(base64url(&jwk["n"]).len() >= 256, "at least 2048 bits");
    refuses_hmac_with(&app, &pair, "the modulus", &base64url(&jwk["n"])).await;
    refuses_hmac_with(&app, &pair, "the JWK", jwk.to_string().as_bytes()).await;
}

async fn es256_refuses_hmac_tokens_made_with_its_public_key(db: TestDb) {
    let (app, pair) = start(db, Algorithm::ES256).await;
    app.assert_accepted(&pair.access).await;
    let jwk = published_key(&app, &pair, "EC").await;
    assert_eq!(jwk["crv"], "P-256");
    let mut point = vec![0x04];
    point.extend(base64url(&jwk["x"]));
    point.extend(base64url(&jwk["y"]));
    refuses_hmac_with(&app, &pair, "the public point", &point).await;
    refuses_hmac_with(&app, &pair, "the JWK", jwk.to_string().as_bytes()).await;
    // And an EdDSA token with its kid: the key decides the algorithm.
    let ed = SigningKey::generate(Algorithm::EdDSA).expect("a key");
    let (mut header, claims) = decode(&pair.access);
    header["alg"] = json!("EdDSA");
    let token = forge(&header, &claims, &encoding_key(&ed), jsonwebtoken::Algorithm::EdDSA);
    app.me(&token).await.assert_token_refused("invalid_token");
}
