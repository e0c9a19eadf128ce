//! The administrators' API behind the console (beyond the contract's table): one user, one
//! session revoked, users found by a part of their email, the signing keys listed, rotated and
//! revoked over HTTP, and the security-event trail; each refusal beside its positive control,
//! and no admin answer cacheable.

use jwt_core::Algorithm;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::keys::KEK;
use crate::common::{Pair, Reply, TestApp, TestDb, decode, send};

crate::http_tests!(
    the_console_endpoints_are_for_administrators_only,
    one_session_is_revoked_and_the_others_go_on,
    users_are_found_by_a_part_of_their_email_taken_literally,
    stored_keys_are_listed_rotated_and_revoked_over_http,
    pinned_keys_are_listed_and_cannot_be_rotated,
    the_event_trail_filters_by_user_and_kind,
);

async fn call(app: &TestApp, method: Method, path: &str, token: &str) -> Reply {
    send(app.http.request(method, app.url(path)).bearer_auth(token)).await
}

async fn user_id(app: &TestApp, pair: &Pair) -> String {
    app.me(&pair.access).await.body["id"].as_str().expect("id").to_owned()
}

fn assert_private(reply: &Reply) {
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{}", reply.text);
}

async fn the_console_endpoints_are_for_administrators_only(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    app.register("alice@example.com").await;
    let alice = app.login("alice@example.com").await;
    let (id, sid) = (user_id(&app, &alice).await, alice.sid());
    let endpoints = [
        (Method::GET, format!("/api/admin/users/{id}")),
        (Method::POST, format!("/api/admin/users/{id}/sessions/{sid}/revoke")),
        (Method::GET, "/api/admin/keys".to_owned()),
        (Method::POST, "/api/admin/keys/rotate".to_owned()),
        (Method::POST, "/api/admin/keys/some-kid/revoke".to_owned()),
        (Method::GET, "/api/admin/events".to_owned()),
    ];
    for (method, path) in &endpoints {
        let none = send(app.http.request(method.clone(), app.url(path))).await;
        none.assert_error(StatusCode::UNAUTHORIZED, "missing_token");
        let user = call(&app, method.clone(), path, &alice.access).await;
        user.assert_error(StatusCode::FORBIDDEN, "insufficient_role");
    }
    // The control: the administrator gets an answer that is not a refusal of the caller.
    let user = call(&app, Method::GET, &format!("/api/admin/users/{id}"), &admin.access).await;
    assert_eq!(user.status, StatusCode::OK, "{}", user.text);
    assert_eq!(user.body["email"], "alice@example.com");
    assert_private(&user);
    for path in [format!("/api/admin/users/{}", uuid::Uuid::new_v4()), "/api/admin/users/x".into()]
    {
        call(&app, Method::GET, &path, &admin.access)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    let users = call(&app, Method::GET, "/api/users", &admin.access).await;
    assert_private(&users);
    let sessions =
        call(&app, Method::GET, &format!("/api/admin/users/{id}/sessions"), &admin.access).await;
    assert_private(&sessions);
}

async fn one_session_is_revoked_and_the_others_go_on(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    app.register("alice@example.com").await;
    app.register("bob@example.com").await;
    let (lost, kept) = (app.login("alice@example.com").await, app.login("alice@example.com").await);
    let bob = app.login("bob@example.com").await;
    let (alice_id, bob_id) = (user_id(&app, &lost).await, user_id(&app, &bob).await);
    let revoke = |user: &str, sid: &str| format!("/api/admin/users/{user}/sessions/{sid}/revoke");

    // A session is revoked only through its own user.
    let wrong = call(&app, Method::POST, &revoke(&bob_id, &lost.sid()), &admin.access).await;
    wrong.assert_error(StatusCode::NOT_FOUND, "not_found");
    let unknown = revoke(&alice_id, &uuid::Uuid::new_v4().to_string());
    call(&app, Method::POST, &unknown, &admin.access)
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    app.assert_accepted(&lost.access).await;

    let done = call(&app, Method::POST, &revoke(&alice_id, &lost.sid()), &admin.access).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.text);
    app.me(&lost.access).await.assert_token_refused("token_revoked");
    app.refresh(&lost.refresh).await.assert_token_refused("token_revoked");
    // The user's other session and the other user go on.
    app.assert_accepted(&kept.access).await;
    app.assert_accepted(&bob.access).await;
    // Again: still 204, nothing else changes.
    let again = call(&app, Method::POST, &revoke(&alice_id, &lost.sid()), &admin.access).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    app.assert_accepted(&kept.access).await;
    let listed =
        call(&app, Method::GET, &format!("/api/admin/users/{alice_id}/sessions"), &admin.access)
            .await;
    assert_eq!(listed.body["sessions"].as_array().map(Vec::len), Some(1), "{}", listed.text);
    assert_eq!(listed.body["revoked"][0]["revoke_reason"], "admin");
}

async fn users_are_found_by_a_part_of_their_email_taken_literally(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    for email in ["a_b@example.com", "axb@example.com", "Carol.A_B@Example.org"] {
        app.register(email).await;
    }
    let token = admin.access.as_str();
    // `_` and `%` are themselves, not wildcards; case does not matter.
    let mut both = found(&app, token, "a_b").await;
    both.sort();
    assert_eq!(both, ["Carol.A_B@Example.org", "a_b@example.com"]);
    assert_eq!(found(&app, token, "A_B@EXAMPLE.COM").await, ["a_b@example.com"]);
    assert!(found(&app, token, "%").await.is_empty());
    // A NUL, which no stored email holds (PostgreSQL's text cannot): nothing, not a fault.
    assert!(found(&app, token, "a\0b").await.is_empty());
    assert!(found(&app, token, "\\").await.is_empty());
    // The control: a part every user's email has, and no filter at all.
    assert_eq!(found(&app, token, "@").await.len(), 4);
    assert_eq!(found(&app, token, "").await.len(), 4);
    let long = format!("/api/users?email={}", "a".repeat(255));
    call(&app, Method::GET, &long, &admin.access)
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
}

/// The emails `GET /api/users?email=QUERY` finds.
async fn found(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let path = format!("/api/users?email={}", percent_encode(query));
    let reply = call(app, Method::GET, &path, token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let emails: Vec<String> = reply.body["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["email"].as_str().expect("email").to_owned())
        .collect();
    assert_eq!(reply.body["total"].as_u64(), Some(emails.len() as u64));
    emails
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn kid(token: &str) -> String {
    decode(token).0["kid"].as_str().expect("a kid").to_owned()
}

async fn stored_keys_are_listed_rotated_and_revoked_over_http(db: TestDb) {
    let app = TestApp::start_with_stored_keys(db, Algorithm::EdDSA, KEK).await;
    let admin = app.admin().await;
    app.register("alice@example.com").await;
    let before = app.login("alice@example.com").await;
    let old = kid(&before.access);

    let listed = call(&app, Method::GET, "/api/admin/keys", &admin.access).await;
    assert_private(&listed);
    assert_eq!(listed.body["source"], "database");
    let keys = listed.body["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{}", listed.text);
    assert_eq!(
        (keys[0]["kid"].as_str(), keys[0]["state"].as_str()),
        (Some(old.as_str()), Some("active"))
    );
    assert!(keys[0].get("sealed_private_key").is_none() && !listed.text.contains("PRIVATE"));

    // The key that signs cannot be revoked; an unknown kid is 404.
    let active =
        call(&app, Method::POST, &format!("/api/admin/keys/{old}/revoke"), &admin.access).await;
    active.assert_error(StatusCode::CONFLICT, "conflict");
    let unknown =
        call(&app, Method::POST, "/api/admin/keys/no-such-kid/revoke", &admin.access).await;
    unknown.assert_error(StatusCode::NOT_FOUND, "not_found");
    let odd = call(&app, Method::POST, "/api/admin/keys/rotate?now=maybe", &admin.access).await;
    odd.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");

    // Rotate at once: this instance signs with the new key in the answer's wake.
    let rotated = call(&app, Method::POST, "/api/admin/keys/rotate?now=true", &admin.access).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert_private(&rotated);
    let new = rotated.body["kid"].as_str().expect("a kid").to_owned();
    assert_eq!(rotated.body["algorithm"], "EdDSA");
    let after = app.login("alice@example.com").await;
    assert_eq!(kid(&after.access), new);
    app.assert_accepted(&before.access).await;
    let jwks = send(app.get("/.well-known/jwks.json")).await;
    assert!(jwks.text.contains(&old) && jwks.text.contains(&new), "{}", jwks.text);

    // Revoke the old one: its tokens are refused here at once, and it leaves the JWK set.
    let revoked =
        call(&app, Method::POST, &format!("/api/admin/keys/{old}/revoke"), &admin.access).await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(revoked.body["kid"], old.as_str());
    app.me(&before.access).await.assert_token_refused("invalid_token");
    app.assert_accepted(&after.access).await;
    let jwks = send(app.get("/.well-known/jwks.json")).await;
    assert!(!jwks.text.contains(&old) && jwks.text.contains(&new), "{}", jwks.text);
    let listed =
        call(&app, Method::GET, "/api/admin/keys", &app.login("admin@example.com").await.access)
            .await;
    let mut states: Vec<(String, String)> = listed.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| (k["kid"].as_str().unwrap().to_owned(), k["state"].as_str().unwrap().to_owned()))
        .collect();
    states.sort();
    let mut expected = [(old.clone(), "revoked".to_owned()), (new, "active".to_owned())];
    expected.sort();
    assert_eq!(states, expected);
}

async fn pinned_keys_are_listed_and_cannot_be_rotated(db: TestDb) {
    // The harness pins the signing key (JWT_SECRET), as an operator may.
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    let listed = call(&app, Method::GET, "/api/admin/keys", &admin.access).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["source"], "pinned");
    assert_eq!(listed.body["keys"][0]["kid"], app.key.kid());
    assert_eq!(listed.body["keys"][0]["state"], "active");
    let rotate = call(&app, Method::POST, "/api/admin/keys/rotate", &admin.access).await;
    rotate.assert_error(StatusCode::CONFLICT, "conflict");
    let revoke = call(
        &app,
        Method::POST,
        &format!("/api/admin/keys/{}/revoke", app.key.kid()),
        &admin.access,
    )
    .await;
    revoke.assert_error(StatusCode::CONFLICT, "conflict");
    // Nothing changed: the same key signs.
    let pair = app.login("admin@example.com").await;
    assert_eq!(kid(&pair.access), app.key.kid());
}

/// The events `GET /api/admin/events{query}` lists.
async fn events(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let reply = call(app, Method::GET, &format!("/api/admin/events{query}"), token).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_private(&reply);
    reply.body["events"].as_array().expect("events").clone()
}

async fn the_event_trail_filters_by_user_and_kind(db: TestDb) {
    let app = TestApp::start(db).await;
    let admin = app.admin().await;
    app.register("alice@example.com").await;
    app.register("bob@example.com").await;
    let alice = app.login("alice@example.com").await;
    let failed = app.try_login("bob@example.com", "not bob's password").await;
    assert_eq!(failed.status, StatusCode::UNAUTHORIZED);
    let alice_id = user_id(&app, &alice).await;

    let token = admin.access.as_str();
    let all = events(&app, token, "").await;
    assert!(all.len() >= 5, "{all:?}");
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().expect("an id")).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let path = format!("/api/admin/events?user={alice_id}");
    let mine = call(&app, Method::GET, &path, &admin.access).await.body["events"].clone();
    let kinds: Vec<&str> =
        mine.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["login_succeeded", "user_created"]);
    assert!(mine.as_array().unwrap().iter().all(|e| e["user_id"] == alice_id.as_str()));

    let failures = events(&app, token, "?kind=login_failed").await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["ip"], "127.0.0.1");
    assert_eq!(events(&app, token, "?limit=1").await.len(), 1);

    // `refresh` is a kind of event, but counted, never recorded: asking for it is a mistake.
    for bad in ["?kind=nope", "?kind=refresh", "?limit=0", "?limit=1001", "?limit=x"] {
        let reply =
            call(&app, Method::GET, &format!("/api/admin/events{bad}"), &admin.access).await;
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    }
    assert_eq!(events(&app, token, "?limit=1000").await.len(), all.len());
}
