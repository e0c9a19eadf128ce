//! Registration, login, the OAuth 2.0 token endpoint, logout, logout-all and the browser
//! cookie mode.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::common::{PASSWORD, Pair, Reply, TestApp, TestDb, decode, send};

crate::http_tests!(
    registration_creates_a_user_and_refuses_taken_or_invalid_ones,
    registration_can_be_closed,
    login_returns_a_pair_with_the_contract_claims,
    issuer_audience_and_email_claim_follow_the_settings,
    login_refuses_unknown_users_and_wrong_passwords_alike,
    bearer_tokens_are_read_per_rfc_6750,
    token_endpoint_speaks_rfc_6749,
    logout_ends_the_session_and_is_idempotent,
    logout_all_ends_every_session_of_the_caller,
    cookie_mode_keeps_the_refresh_token_in_an_http_only_cookie,
    no_login_hands_out_a_token_that_the_revocation_set_voids_already,
);

/// The issuance invariant: with a cut-off ahead of the server's clock (as an older release
/// stored it, or a peer whose clock runs ahead), a login answers 503 `unavailable` instead of
/// 200 with tokens that every check would refuse; once the cut-off has passed, it answers 200
/// with tokens that work.
async fn no_login_hands_out_a_token_that_the_revocation_set_voids_already(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    app.register("bob@example.com").await;
    let before = app.login("alice@example.com").await;
    let id = crate::common::decode(&before.access).1["sub"].as_str().expect("sub").to_owned();
    let cut_off = app.now() + chrono::TimeDelta::seconds(30);
    let store = &*app.state.store;
    let voided =
        jwt_core::RevocationStore::void_issued_before(store, Some(&id), cut_off, app.now())
            .await
            .expect("stored, as an older release would have");
    app.state.sessions.revocations().apply(&[voided]);

    let refused = app.try_login("alice@example.com", crate::common::PASSWORD).await;
    refused.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert!(refused.header("retry-after").is_some());
    let refreshed = app.refresh(&before.refresh).await;
    assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED, "{}", refreshed.text);
    // Another user is not affected.
    let bob = app.login("bob@example.com").await;
    assert_eq!(app.me(&bob.access).await.status, StatusCode::OK);

    app.advance(31);
    let after = app.login("alice@example.com").await;
    assert_eq!(app.me(&after.access).await.status, StatusCode::OK, "a token that works");
}

fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<_> = value.as_object().expect("an object").keys().cloned().collect();
    keys.sort();
    keys
}

async fn register_reply(app: &TestApp, body: &Value) -> Reply {
    send(app.post("/auth/register").json(body)).await
}

/// Asserts the error format and `status`, whatever the code.
fn assert_status_error(reply: &Reply, status: StatusCode) {
    let code = reply.body["error"].as_str().unwrap_or_default().to_owned();
    reply.assert_error(status, &code);
}

async fn registration_creates_a_user_and_refuses_taken_or_invalid_ones(db: TestDb) {
    let app = TestApp::start(db).await;
    let reply =
        register_reply(&app, &json!({"email": "Alice@Example.com", "password": PASSWORD})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(sorted_keys(&reply.body), ["email", "id", "roles"]);
    assert!(uuid::Uuid::parse_str(reply.body["id"].as_str().expect("id")).is_ok());
    assert_eq!(reply.body["email"], "Alice@Example.com");
    assert_eq!(reply.body["roles"], json!(["user"]));

    // Taken, whatever the case of the email.
    for email in ["Alice@Example.com", "alice@example.com"] {
        let reply = register_reply(&app, &json!({"email": email, "password": PASSWORD})).await;
        reply.assert_error(StatusCode::CONFLICT, "email_taken");
    }

    // Invalid fields: 422. Password lengths are in characters (Unicode code points, as the
    // document's `minLength` and `maxLength` count them), not bytes: an `é` is one, a `😀` too.
    let long = "x".repeat(257);
    let short_in_chars = "é".repeat(7);
    let long_in_chars = "😀".repeat(257);
    for (email, password) in [
        ("not-an-email", PASSWORD),
        ("", PASSWORD),
        ("bob@", PASSWORD),
        ("b ob@example.com", PASSWORD),
        ("bob@example.com", "1234567"),
        ("bob@example.com", ""),
        ("bob@example.com", short_in_chars.as_str()),
        ("bob@example.com", long.as_str()),
        ("bob@example.com", long_in_chars.as_str()),
    ] {
        let reply = register_reply(&app, &json!({"email": email, "password": password})).await;
        assert_status_error(&reply, StatusCode::UNPROCESSABLE_ENTITY);
    }
    for body in [
        json!({"email": "bob@example.com"}),
        json!({"email": 5, "password": PASSWORD}),
        json!({"email": "bob@example.com", "password": null}),
    ] {
        assert_status_error(&register_reply(&app, &body).await, StatusCode::UNPROCESSABLE_ENTITY);
    }

    // The bounds themselves are accepted: 8 and 256 characters, whatever their bytes (8 `é`
    // are 16 bytes, 256 `😀` are 1,024, the most a login takes).
    for (email, password) in [
        ("eight@example.com", "é".repeat(8)),
        ("ascii@example.com", "x".repeat(256)),
        ("long@example.com", "😀".repeat(256)),
    ] {
        let reply = register_reply(&app, &json!({"email": email, "password": password})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{email}: {}", reply.text);
        assert_eq!(app.try_login(email, &password).await.status, StatusCode::OK);
    }

    // Malformed JSON: 400; not JSON at all: 415.
    let malformed = send(
        app.post("/auth/register")
            .header("content-type", "application/json")
            .body(r#"{"email": "carol@example.com", "password": "#),
    )
    .await;
    assert_status_error(&malformed, StatusCode::BAD_REQUEST);
    let text =
        send(app.post("/auth/register").header("content-type", "text/plain").body("hi")).await;
    assert_status_error(&text, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let bare = send(app.post("/auth/register").body(r#"{"email":"c@example.com"}"#)).await;
    assert_status_error(&bare, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // The first user logs in with what it registered.
    app.login("alice@EXAMPLE.com").await;
}

async fn registration_can_be_closed(db: TestDb) {
    let app = TestApp::start_with(db, |c| c.allow_registration = false).await;
    let reply =
        register_reply(&app, &json!({"email": "alice@example.com", "password": PASSWORD})).await;
    assert_status_error(&reply, StatusCode::FORBIDDEN);
    let login = app.try_login("alice@example.com", PASSWORD).await;
    login.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
}

async fn login_returns_a_pair_with_the_contract_claims(db: TestDb) {
    let app = TestApp::start(db).await;
    let user = app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;
    let now = app.now().timestamp();

    let (header, claims) = decode(&pair.access);
    assert_eq!(header, json!({"alg": "HS256", "typ": "at+jwt", "kid": app.key.kid()}));
    assert_eq!(
        sorted_keys(&claims),
        ["aud", "exp", "iat", "iss", "jti", "nbf", "roles", "sid", "sub"],
        "no email unless configured: {claims}"
    );
    assert_eq!(claims["iss"], "jwt-auth");
    assert!(claims["aud"] == "api" || claims["aud"] == json!(["api"]), "{claims}");
    assert_eq!(claims["sub"], user["id"]);
    assert!(uuid::Uuid::parse_str(claims["sub"].as_str().expect("sub")).is_ok());
    assert_eq!(claims["roles"], json!(["user"]));
    assert_eq!(claims["iat"], now);
    assert!(claims["nbf"].as_i64().expect("nbf") <= now);
    assert_eq!(claims["exp"], now + 30 * 60, "TOKEN_EXPIRY defaults to 30m");
    assert_eq!(pair.body["expires_in"], 30 * 60);

    let (header, refresh) = decode(&pair.refresh);
    assert_eq!(header, json!({"alg": "HS256", "typ": "refresh+jwt", "kid": app.key.kid()}));
    assert_eq!(sorted_keys(&refresh), ["exp", "iat", "iss", "jti", "sid", "sub"]);
    assert_eq!(refresh["sid"], claims["sid"]);
    assert_eq!(refresh["sub"], claims["sub"]);
    assert_eq!(refresh["iss"], "jwt-auth");
    assert_eq!(refresh["exp"], now + 7 * 86_400, "REFRESH_TOKEN_EXPIRY defaults to 7d");
    assert_eq!(pair.body["refresh_expires_in"], 7 * 86_400);
    assert_ne!(refresh["jti"], claims["jti"]);

    // Every login is a new session with new token ids.
    let again = app.login("alice@example.com").await;
    assert_ne!(again.sid(), pair.sid());
    assert_ne!(decode(&again.access).1["jti"], claims["jti"]);

    let me = app.me(&pair.access).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body, json!({"id": user["id"], "email": "alice@example.com", "roles": ["user"]}));
}

async fn issuer_audience_and_email_claim_follow_the_settings(db: TestDb) {
    let app = TestApp::start_with(db, |c| {
        c.issuer = "https://auth.example".into();
        c.audience = "orders".into();
        c.token_include_email = true;
    })
    .await;
    app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;
    let (_, claims) = decode(&pair.access);
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["iss"], "https://auth.example");
    assert!(claims["aud"] == "orders" || claims["aud"] == json!(["orders"]), "{claims}");
    assert_eq!(decode(&pair.refresh).1["iss"], "https://auth.example");
    assert!(decode(&pair.refresh).1.get("email").is_none(), "refresh tokens carry no email");
    app.assert_accepted(&pair.access).await;
    // Tokens of the default issuer or audience are someone else's.
    let default_iss = app.resign(&pair.access, |_, c| c["iss"] = json!("jwt-auth"));
    app.me(&default_iss).await.assert_token_refused("invalid_token");
    let default_aud = app.resign(&pair.access, |_, c| c["aud"] = json!("api"));
    app.me(&default_aud).await.assert_token_refused("invalid_token");
    let meta = send(app.get("/.well-known/oauth-authorization-server")).await;
    assert_eq!(meta.body["issuer"], "https://auth.example");
}

async fn login_refuses_unknown_users_and_wrong_passwords_alike(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let (mut wrong, mut unknown) = (Duration::MAX, Duration::MAX);
    let mut bodies = Vec::new();
    for i in 0..2 {
        let started = Instant::now();
        let reply = app.try_login("alice@example.com", "wrong password").await;
        wrong = wrong.min(started.elapsed());
        reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        bodies.push(reply.body);
        let started = Instant::now();
        let reply = app.try_login(&format!("nobody{i}@example.com"), PASSWORD).await;
        unknown = unknown.min(started.elapsed());
        reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        bodies.push(reply.body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one answer for both: {bodies:?}");
    // An unknown user costs a password verification too (the cheapest of several tries).
    assert!(unknown * 3 >= wrong, "unknown user {unknown:?} vs wrong password {wrong:?}");

    // Inputs a database cannot hold are a wrong login, not a server fault.
    let nul = app.try_login("alice\u{0}@example.com", PASSWORD).await;
    nul.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");

    let missing =
        send(app.post("/auth/login").json(&json!({"username": "alice@example.com"}))).await;
    assert_status_error(&missing, StatusCode::UNPROCESSABLE_ENTITY);
    let malformed = send(
        app.post("/auth/login").header("content-type", "application/json").body("{\"username\""),
    )
    .await;
    assert_status_error(&malformed, StatusCode::BAD_REQUEST);
    let form = send(
        app.post("/auth/login").form(&[("username", "alice@example.com"), ("password", PASSWORD)]),
    )
    .await;
    assert_status_error(&form, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    app.login("alice@example.com").await;
}

async fn bearer_tokens_are_read_per_rfc_6750(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;
    let me = |value: reqwest::header::HeaderValue| {
        send(app.get("/api/me").header("authorization", value))
    };

    // No bearer token at all: the challenge has the realm only.
    for reply in [
        send(app.get("/api/me")).await,
        me(HeaderValue::from_static("Basic YWxpY2U6c2VjcmV0")).await,
        me(HeaderValue::from_static("Bearer")).await,
    ] {
        reply.assert_error(StatusCode::UNAUTHORIZED, "missing_token");
        assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="jwt-auth""#));
    }
    // A bearer token that is no token: `invalid_token`, said in the challenge.
    for value in [
        HeaderValue::from_static("Bearer not-a-token"),
        HeaderValue::from_bytes(b"Bearer caf\xc3\xa9.\xff.x").expect("obs-text is allowed"),
    ] {
        me(value).await.assert_token_refused("invalid_token");
    }
    // The scheme is case-insensitive (RFC 7235 §2.1).
    let lower = me(HeaderValue::from_str(&format!("bearer {}", pair.access)).expect("ASCII")).await;
    assert_eq!(lower.status, StatusCode::OK, "{}", lower.text);
}

async fn token(app: &TestApp, form: &[(&str, &str)]) -> Reply {
    send(app.post("/auth/token").form(form)).await
}

async fn token_endpoint_speaks_rfc_6749(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let reply = token(
        &app,
        &[("grant_type", "password"), ("username", "alice@example.com"), ("password", PASSWORD)],
    )
    .await;
    let pair = Pair::from_reply(&reply);
    app.assert_accepted(&pair.access).await;

    let reply =
        token(&app, &[("grant_type", "refresh_token"), ("refresh_token", &pair.refresh)]).await;
    let next = Pair::from_reply(&reply);
    assert_eq!(next.sid(), pair.sid());
    app.assert_accepted(&next.access).await;

    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("grant_type", "password"), ("username", "alice@example.com"), ("password", "nope")],
            "invalid_grant",
        ),
        (
            &[("grant_type", "password"), ("username", "bob@example.com"), ("password", PASSWORD)],
            "invalid_grant",
        ),
        (&[("grant_type", "password"), ("username", "alice@example.com")], "invalid_request"),
        (&[("username", "alice@example.com"), ("password", PASSWORD)], "invalid_request"),
        (&[("grant_type", "implicit")], "unsupported_grant_type"),
        (&[("grant_type", "refresh_token")], "invalid_request"),
        (&[("grant_type", "refresh_token"), ("refresh_token", "garbage")], "invalid_grant"),
        (&[("grant_type", "refresh_token"), ("refresh_token", &pair.access)], "invalid_grant"),
    ];
    for (form, code) in cases {
        token(&app, form).await.assert_oauth_error(code);
    }
    // A repeated parameter makes the form malformed (RFC 6749 §3.2): 400 `invalid_request`.
    let repeated =
        token(&app, &[("grant_type", "password"), ("grant_type", "refresh_token")]).await;
    repeated.assert_oauth_error("invalid_request");

    let json = send(app.post("/auth/token").json(&json!({"grant_type": "password"}))).await;
    json.assert_oauth_error_status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request");
}

async fn logout(app: &TestApp, access: &str) -> Reply {
    send(app.post("/auth/logout").bearer_auth(access)).await
}

async fn logout_ends_the_session_and_is_idempotent(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let first = app.login("alice@example.com").await;
    let rotated = Pair::from_reply(&app.refresh(&first.refresh).await);
    let other = app.login("alice@example.com").await;

    let none = send(app.post("/auth/logout")).await;
    none.assert_error(StatusCode::UNAUTHORIZED, "missing_token");
    assert_eq!(none.header("www-authenticate"), Some(r#"Bearer realm="jwt-auth""#));
    logout(&app, "garbage").await.assert_token_refused("invalid_token");

    let reply = logout(&app, &rotated.access).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert!(reply.text.is_empty());
    // Every token of the session, older ones included, stops working.
    for access in [&first.access, &rotated.access] {
        app.me(access).await.assert_token_refused("token_revoked");
    }
    for refresh in [&first.refresh, &rotated.refresh] {
        app.refresh(refresh).await.assert_token_refused("token_revoked");
    }
    // Other sessions go on.
    app.assert_accepted(&other.access).await;
    Pair::from_reply(&app.refresh(&other.refresh).await);

    let again = logout(&app, &rotated.access).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT, "idempotent: {}", again.text);
}

async fn logout_all_ends_every_session_of_the_caller(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    app.register("bob@example.com").await;
    let a = app.login("alice@example.com").await;
    let b = app.login("alice@example.com").await;
    let bob = app.login("bob@example.com").await;

    send(app.post("/auth/logout-all"))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "missing_token");
    let reply = send(app.post("/auth/logout-all").bearer_auth(&a.access)).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    for pair in [&a, &b] {
        app.me(&pair.access).await.assert_token_refused("token_revoked");
        app.refresh(&pair.refresh).await.assert_token_refused("token_revoked");
    }
    app.assert_accepted(&bob.access).await;
    let again = send(app.post("/auth/logout-all").bearer_auth(&b.access)).await;
    again.assert_token_refused("token_revoked");

    // A login after it starts afresh.
    let later = app.login("alice@example.com").await;
    app.assert_accepted(&later.access).await;
    Pair::from_reply(&app.refresh(&later.refresh).await);
}

/// The `refresh_token` cookie of a `Set-Cookie` header: its value and its attributes.
fn refresh_cookie(reply: &Reply) -> (String, Vec<String>) {
    let cookies = reply.set_cookies();
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("refresh_token="))
        .unwrap_or_else(|| panic!("a refresh_token cookie in {cookies:?}"));
    let mut parts = cookie.split(';').map(str::trim);
    let value = parts.next().expect("name=value").trim_start_matches("refresh_token=").to_owned();
    (value, parts.map(str::to_ascii_lowercase).collect())
}

fn assert_cookie_attributes(attributes: &[String]) {
    for wanted in ["httponly", "secure", "samesite=strict", "path=/auth"] {
        assert!(attributes.iter().any(|a| a == wanted), "{wanted} missing from {attributes:?}");
    }
}

/// A 200 token response of the cookie mode: no refresh token in the body.
fn assert_cookie_body(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(
        sorted_keys(&reply.body),
        ["access_token", "expires_in", "refresh_expires_in", "token_type"]
    );
    assert_eq!(reply.body["token_type"], "Bearer");
}

async fn cookie_mode_keeps_the_refresh_token_in_an_http_only_cookie(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let login = send(
        app.post("/auth/login?cookie=true")
            .json(&json!({"username": "alice@example.com", "password": PASSWORD})),
    )
    .await;
    assert_cookie_body(&login);
    let (cookie, attributes) = refresh_cookie(&login);
    assert_cookie_attributes(&attributes);
    assert_eq!(decode(&cookie).0["typ"], "refresh+jwt");
    let access = login.body["access_token"].as_str().expect("access_token").to_owned();
    app.assert_accepted(&access).await;

    // Without X-Requested-With the cookie is not accepted (CSRF guard) and nothing rotates.
    let guarded =
        send(app.post("/auth/refresh").header("cookie", format!("refresh_token={cookie}"))).await;
    guarded.assert_error(StatusCode::FORBIDDEN, "csrf_required");
    assert!(guarded.set_cookies().is_empty());
    app.assert_accepted(&access).await;

    let refreshed = send(
        app.post("/auth/refresh")
            .header("cookie", format!("refresh_token={cookie}"))
            .header("x-requested-with", "XMLHttpRequest"),
    )
    .await;
    assert_cookie_body(&refreshed);
    let (next, attributes) = refresh_cookie(&refreshed);
    assert_cookie_attributes(&attributes);
    assert_ne!(next, cookie);
    assert_eq!(decode(&next).1["sid"], decode(&access).1["sid"]);

    // Logout by cookie clears it and ends the session.
    let unguarded =
        send(app.post("/auth/logout").header("cookie", format!("refresh_token={next}"))).await;
    unguarded.assert_error(StatusCode::FORBIDDEN, "csrf_required");
    let out = send(
        app.post("/auth/logout")
            .header("cookie", format!("refresh_token={next}"))
            .header("x-requested-with", "fetch"),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    let (cleared, attributes) = refresh_cookie(&out);
    assert!(cleared.is_empty(), "the cookie is emptied: {cleared}");
    assert!(
        attributes.iter().any(|a| a == "max-age=0" || a.starts_with("expires=")),
        "the cookie is expired: {attributes:?}"
    );
    assert!(attributes.iter().any(|a| a == "path=/auth"), "{attributes:?}");
    app.me(&access).await.assert_token_refused("token_revoked");
    let replay = send(
        app.post("/auth/refresh")
            .header("cookie", format!("refresh_token={next}"))
            .header("x-requested-with", "fetch"),
    )
    .await;
    replay.assert_token_refused("token_revoked");

    // Logout with the bearer token clears the cookie too.
    let pair = app.login("alice@example.com").await;
    let out = send(app.post("/auth/logout").bearer_auth(&pair.access)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(refresh_cookie(&out).0.is_empty());
}
