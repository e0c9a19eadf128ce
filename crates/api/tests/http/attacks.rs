//! A catalogue of token attacks beyond the contract's list, each test named after its attack.
//! Tokens are forged with the test's own copy of the server's key, so a refusal is the
//! verifier's doing, not a bad signature; each group has its positive control (the same
//! forging, faithful, is accepted). No answer is ever a 500.
//!
//! Found here and fixed: a `cty` header (the mark of a nested JWT) on a token signed with the
//! server's key was accepted; jwt-core now refuses any `cty`, as it never issues one.

use jwt_core::Algorithm;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Pair, TestApp, TestDb, b64, decode, jwt_alg, send};

crate::http_tests!(
    psychic_and_malformed_ecdsa_signatures_are_refused,
    malformed_eddsa_signatures_are_refused,
    unencoded_payload_b64_false_is_refused,
    nested_jwts_and_the_json_serialization_are_refused,
    hostile_headers_are_refused,
    odd_numeric_claims_never_crash_and_are_judged_by_value,
    audience_lists_and_subject_types,
    refresh_tokens_replayed_after_logout_logout_all_or_by_another_user_are_refused,
);

async fn start(db: TestDb, alg: Algorithm) -> (TestApp, Pair) {
    let app = TestApp::start_with(db, |c| c.algorithm = Some(alg)).await;
    app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;
    (app, pair)
}

/// `header.claims` as given (raw JSON text, so duplicates and escapes survive) and a
/// signature, all base64url.
fn raw(header: &str, claims: &str, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()), b64(signature))
}

/// `header.claims` as raw JSON text, signed with the server's key.
fn signed_raw(app: &TestApp, header: &str, claims: &str) -> String {
    let message = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let alg = jwt_alg(app.key.algorithm());
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &app.encoding_key(), alg).expect("signed");
    format!("{message}.{signature}")
}

async fn assert_refused(app: &TestApp, what: &str, token: &str) {
    let reply = app.me(token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}: accepted: {}", reply.text);
    reply.assert_token_refused("invalid_token");
}

/// The signature bytes of a compact JWS.
fn signature(token: &str) -> Vec<u8> {
    use base64::Engine;
    let part = token.rsplit('.').next().expect("a signature");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("base64url")
}

/// The message (`header.claims`) of a compact JWS.
fn message(token: &str) -> &str {
    token.rsplit_once('.').expect("three parts").0
}

async fn psychic_and_malformed_ecdsa_signatures_are_refused(db: TestDb) {
    let (app, pair) = start(db, Algorithm::ES256).await;
    app.assert_accepted(&pair.access).await;
    let good = signature(&pair.access);
    assert_eq!(good.len(), 64, "JOSE ECDSA signatures are r || s, 32 bytes each");
    let message = message(&pair.access);
    let with = |sig: &[u8]| format!("{message}.{}", b64(sig));
    let mut r_only = good.clone();
    r_only[32..].fill(0);
    let mut s_only = good.clone();
    s_only[..32].fill(0);
    // n, the order of P-256: r = s = n is r = s = 0 modulo n.
    let n = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("r = s = 0 (CVE-2022-21449)", vec![0; 64]),
        ("r = s = n", [n.clone(), n].concat()),
        ("r = 0", s_only),
        ("s = 0", r_only),
        ("63 bytes", good[..63].to_vec()),
        ("65 bytes", [good.as_slice(), &[0]].concat()),
        ("DER-encoded instead of r || s", der(&good)),
        ("empty", Vec::new()),
    ];
    for (what, sig) in cases {
        assert_refused(&app, what, &with(&sig)).await;
    }
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// An ECDSA signature as ASN.1 DER (what non-JOSE libraries produce).
fn der(raw: &[u8]) -> Vec<u8> {
    let int = |half: &[u8]| {
        let mut v: Vec<u8> = half.iter().copied().skip_while(|b| *b == 0).collect();
        if v.first().is_some_and(|b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        [vec![0x02, v.len() as u8], v].concat()
    };
    let body = [int(&raw[..32]), int(&raw[32..])].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

async fn malformed_eddsa_signatures_are_refused(db: TestDb) {
    let (app, pair) = start(db, Algorithm::EdDSA).await;
    app.assert_accepted(&pair.access).await;
    let good = signature(&pair.access);
    assert_eq!(good.len(), 64);
    let message = message(&pair.access);
    let with = |sig: &[u8]| format!("{message}.{}", b64(sig));
    let mut flipped = good.clone();
    flipped[63] ^= 0x80;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("all zero", vec![0; 64]),
        ("63 bytes", good[..63].to_vec()),
        ("65 bytes", [good.as_slice(), &[0]].concat()),
        ("S with its top bit flipped (non-canonical)", flipped),
    ];
    for (what, sig) in cases {
        assert_refused(&app, what, &with(&sig)).await;
    }
}

async fn unencoded_payload_b64_false_is_refused(db: TestDb) {
    let (app, pair) = start(db, Algorithm::EdDSA).await;
    let (header, claims) = decode(&pair.access);
    // The control: the same header and claims, re-signed, pass.
    app.assert_accepted(&signed_raw(&app, &header.to_string(), &claims.to_string())).await;
    let mut b64_false = header.clone();
    b64_false["b64"] = json!(false);
    b64_false["crit"] = json!(["b64"]);
    assert_refused(&app, "b64: false, crit b64", &app.resign(&pair.access, |h, _| *h = b64_false))
        .await;
    // RFC 7797 signing input: the payload as it is, not base64url-encoded.
    let mut header_only = header.clone();
    header_only["b64"] = json!(false);
    let input = format!("{}.{}", b64(header_only.to_string().as_bytes()), claims);
    let alg = jwt_alg(app.key.algorithm());
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &app.encoding_key(), alg).unwrap();
    let detached = format!("{}..{sig}", b64(header_only.to_string().as_bytes()));
    assert_refused(&app, "b64: false, detached payload", &detached).await;
    let unencoded = format!(
        "{}.{}.{sig}",
        b64(header_only.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    assert_refused(&app, "b64: false without crit, signed over the raw payload", &unencoded).await;
}

async fn nested_jwts_and_the_json_serialization_are_refused(db: TestDb) {
    let (app, pair) = start(db, Algorithm::EdDSA).await;
    let (header, _) = decode(&pair.access);
    // A JWT whose payload is our own valid access token, `cty: JWT`.
    let mut nested_header = header.clone();
    nested_header["cty"] = json!("JWT");
    let nested = signed_raw(&app, &nested_header.to_string(), &pair.access);
    assert_refused(&app, "nested JWT (cty: JWT)", &nested).await;
    let mut cty_only = header.clone();
    cty_only["cty"] = json!("JWT");
    let (_, claims) = decode(&pair.access);
    assert_refused(
        &app,
        "cty: JWT on plain claims",
        &signed_raw(&app, &cty_only.to_string(), &claims.to_string()),
    )
    .await;
    // The JWS JSON serialization of the very same token (RFC 7515 §7.2.2).
    let mut parts = pair.access.split('.');
    let (protected, payload, signature) =
        (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let flattened = json!({"protected": protected, "payload": payload, "signature": signature});
    assert_refused(&app, "JWS JSON serialization", &flattened.to_string()).await;
    assert_refused(
        &app,
        "JWS JSON serialization, base64url",
        &b64(flattened.to_string().as_bytes()),
    )
    .await;
    app.assert_accepted(&pair.access).await;
}

async fn hostile_headers_are_refused(db: TestDb) {
    let (app, pair) = start(db, Algorithm::EdDSA).await;
    let (header, claims) = decode(&pair.access);
    let claims = claims.to_string();
    let kid = header["kid"].as_str().expect("kid").to_owned();
    // The control, written as raw text like the attacks below.
    let plain = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}"}}"#);
    app.assert_accepted(&signed_raw(&app, &plain, &claims)).await;

    let members: String = (0..1000).map(|i| format!(r#","x{i}":{i}"#)).collect();
    let thousand = format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}"{members}}}"#);
    let cases: Vec<(&str, String)> = vec![
        ("a thousand header members", signed_raw(&app, &thousand, &claims)),
        (
            "alg none spelled with a unicode escape",
            raw(&format!(r#"{{"alg":"\u006eone","typ":"at+jwt","kid":"{kid}"}}"#), &claims, b""),
        ),
        (
            "alg EdDSA spelled with unicode escapes, then none",
            raw(
                &format!(r#"{{"alg":"\u0045dDSA","alg":"none","typ":"at+jwt","kid":"{kid}"}}"#),
                &claims,
                b"",
            ),
        ),
        (
            "duplicate alg, ours first",
            signed_raw(
                &app,
                &format!(r#"{{"alg":"EdDSA","alg":"HS256","typ":"at+jwt","kid":"{kid}"}}"#),
                &claims,
            ),
        ),
        (
            "duplicate kid",
            signed_raw(
                &app,
                &format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","kid":"other"}}"#),
                &claims,
            ),
        ),
        (
            "kid with a NUL",
            signed_raw(
                &app,
                &format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}\u0000"}}"#),
                &claims,
            ),
        ),
        (
            "kid of 4,000 characters",
            signed_raw(
                &app,
                &format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{}"}}"#, "k".repeat(4000)),
                &claims,
            ),
        ),
        ("kid a number", signed_raw(&app, r#"{"alg":"EdDSA","typ":"at+jwt","kid":7}"#, &claims)),
    ];
    for (what, token) in cases {
        assert_refused(&app, what, &token).await;
    }
}

async fn odd_numeric_claims_never_crash_and_are_judged_by_value(db: TestDb) {
    let (app, pair) = start(db, Algorithm::EdDSA).await;
    let (header, claims) = decode(&pair.access);
    let header = header.to_string();
    let exp = claims["exp"].as_i64().expect("exp");
    let with_raw = |member: &str, value: &str| {
        let mut object = claims.clone();
        object.as_object_mut().unwrap().remove(member);
        let text = object.to_string();
        let text = format!("{},\"{member}\":{value}}}", &text[..text.len() - 1]);
        signed_raw(&app, &header, &text)
    };
    // The control.
    app.assert_accepted(&with_raw("exp", &exp.to_string())).await;
    let refused: Vec<(&str, String)> = vec![
        ("exp a float", with_raw("exp", &format!("{exp}.5"))),
        ("exp in exponent notation", with_raw("exp", "1.9e9")),
        ("exp negative", with_raw("exp", "-1")),
        ("exp past i64", with_raw("exp", "99999999999999999999")),
        ("exp a string of digits", with_raw("exp", &format!("\"{exp}\""))),
        ("nbf a float", with_raw("nbf", "1.5")),
        ("iat in exponent notation", with_raw("iat", "1e3")),
        ("iat at i64::MAX (issued in the future)", with_raw("iat", &i64::MAX.to_string())),
    ];
    for (what, token) in refused {
        let reply = app.me(&token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what}: {}", reply.text);
        assert!(
            ["invalid_token", "token_expired"]
                .contains(&reply.body["error"].as_str().unwrap_or("")),
            "{what}: {}",
            reply.text
        );
    }
    // Extreme but well-typed values are judged, not overflowed: an `exp` at i64::MAX signed
    // by the server's own key is a token that never expires (the server never issues one).
    app.assert_accepted(&with_raw("exp", &i64::MAX.to_string())).await;
    app.assert_accepted(&with_raw("nbf", &i64::MIN.to_string())).await;
}

async fn audience_lists_and_subject_types(db: TestDb) {
    let (app, pair) = start(db, Algorithm::EdDSA).await;
    app.assert_accepted(&app.resign(&pair.access, |_, c| c["aud"] = json!(["other", "api"]))).await;
    let cases: Vec<(&str, String)> = vec![
        ("aud a list without ours", app.resign(&pair.access, |_, c| c["aud"] = json!(["other"]))),
        ("aud an empty list", app.resign(&pair.access, |_, c| c["aud"] = json!([]))),
        ("aud a number", app.resign(&pair.access, |_, c| c["aud"] = json!(7))),
        (
            "aud ours with a trailing space",
            app.resign(&pair.access, |_, c| c["aud"] = json!("api ")),
        ),
        ("sub a number", app.resign(&pair.access, |_, c| c["sub"] = json!(42))),
        ("sub null", app.resign(&pair.access, |_, c| c["sub"] = Value::Null)),
        ("roles a string", app.resign(&pair.access, |_, c| c["roles"] = json!("admin"))),
    ];
    for (what, token) in cases {
        assert_refused(&app, what, &token).await;
    }
}

async fn refresh_tokens_replayed_after_logout_logout_all_or_by_another_user_are_refused(
    db: TestDb,
) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    app.register("bob@example.com").await;

    // After a logout: the session's refresh token is dead.
    let first = app.login("alice@example.com").await;
    let out = send(app.post("/auth/logout").bearer_auth(&first.access)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    app.refresh(&first.refresh).await.assert_token_refused("token_revoked");

    // After logout-all: every session's refresh token is dead, the ones rotated too.
    let second = app.login("alice@example.com").await;
    let third = app.login("alice@example.com").await;
    let rotated = Pair::from_reply(&app.refresh(&third.refresh).await);
    let all = send(app.post("/auth/logout-all").bearer_auth(&second.access)).await;
    assert_eq!(all.status, StatusCode::NO_CONTENT);
    for token in [&second.refresh, &third.refresh, &rotated.refresh] {
        let reply = app.refresh(token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }

    // Across users: bob's refresh token re-signed with alice's `sub` (with the server's own
    // key) is refused, and bob's own still works.
    let bob = app.login("bob@example.com").await;
    let alice = app.login("alice@example.com").await;
    let alice_sub = decode(&alice.access).1["sub"].clone();
    let crossed = app.resign(&bob.refresh, |_, c| c["sub"] = alice_sub);
    let reply = app.refresh(&crossed).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(app.refresh(&bob.refresh).await.status, StatusCode::OK);
    assert_eq!(app.refresh(&alice.refresh).await.status, StatusCode::OK);
}
