//! Service clients and the client credentials grant (RFC 6749 §4.4): HTTP Basic gets an access
//! token alone, whose `sub`, `roles` and `sid` are the client's; every kind of bad client
//! authentication is 401 `invalid_client` with a Basic challenge; failures are throttled like
//! logins; removing the client revokes its tokens.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;

use jwt_auth_service::clients;

use crate::common::{Reply, TestApp, TestDb, decode, send};

crate::http_tests!(
    a_client_gets_a_token_of_its_own_with_basic_authentication,
    bad_client_authentication_is_invalid_client_with_a_basic_challenge,
    failed_client_authentication_is_throttled_like_a_login,
    removing_a_client_revokes_its_tokens,
    no_client_token_is_handed_out_that_the_revocation_set_voids_already,
);

/// The issuance invariant for service clients: once the revocation set holds the client's
/// session, its token requests get 503 `unavailable`, never a token every check refuses.
async fn no_client_token_is_handed_out_that_the_revocation_set_voids_already(db: TestDb) {
    let app = TestApp::start(db).await;
    let (id, secret) = add_client(&app, "billing", &[]).await;
    let other = add_client(&app, "reports", &[]).await;
    let granted = client_token(&app, Some(&basic(&id, &secret))).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);
    let stored = app.state.store.client(&id).await.expect("read").expect("the client");
    let expires_at = app.now() + chrono::TimeDelta::hours(1);
    let revoked = jwt_core::Revocation::Session { id: stored.session_id.clone(), expires_at };
    app.state.sessions.revocations().apply(&[revoked]);
    let refused = client_token(&app, Some(&basic(&id, &secret))).await;
    refused.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    let unaffected = client_token(&app, Some(&basic(&other.0, &other.1))).await;
    assert_eq!(unaffected.status, StatusCode::OK, "{}", unaffected.text);
}

/// Registers a client with `roles`; returns its id and secret.
async fn add_client(app: &TestApp, name: &str, roles: &[&str]) -> (String, String) {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    let new = clients::new_client(name, &roles, app.now()).expect("a client");
    app.state.store.add_client(&new.client).await.expect("stored");
    let secret = new.secret.expect("a confidential client has a secret");
    (new.client.id.clone(), secret.expose().to_owned())
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

async fn client_token(app: &TestApp, authorization: Option<&str>) -> Reply {
    let mut request = app.post("/auth/token").form(&[("grant_type", "client_credentials")]);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    send(request).await
}

fn assert_invalid_client(reply: &Reply) {
    reply.assert_oauth_error_status(StatusCode::UNAUTHORIZED, "invalid_client");
    assert_eq!(reply.header("www-authenticate"), Some("Basic realm=\"jwt-auth\""));
}

async fn a_client_gets_a_token_of_its_own_with_basic_authentication(db: TestDb) {
    let app = TestApp::start(db).await;
    let (id, secret) = add_client(&app, "billing", &[]).await;
    let reply = client_token(&app, Some(&basic(&id, &secret))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 1800);
    assert!(reply.body.get("refresh_token").is_none(), "no refresh token: {}", reply.text);
    let (header, claims) = decode(reply.body["access_token"].as_str().expect("a token"));
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["roles"], serde_json::json!(["service"]));
    let stored = app.state.store.client(&id).await.expect("read").expect("the client");
    assert_eq!(claims["sid"], stored.session_id.as_str());

    // RFC 6749 §2.3.1: the id and secret are form-urlencoded inside the Basic credentials.
    let (spaced, spaced_secret) = add_client(&app, "with spaces", &["reports"]).await;
    let encoded = basic(&spaced, &spaced_secret.replace('_', "%5F"));
    let reply = client_token(&app, Some(&encoded)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let (_, claims) = decode(reply.body["access_token"].as_str().expect("a token"));
    assert_eq!(claims["roles"], serde_json::json!(["reports"]));

    // A client's token is good, but names no user: `/api/me` says so rather than that a user
    // is gone. The control: a user's token there.
    let token = reply.body["access_token"].as_str().expect("a token");
    let me = send(app.get("/api/me").bearer_auth(token)).await;
    me.assert_error(StatusCode::NOT_FOUND, "not_found");
    let message = me.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("service clients have no user record"), "{message}");
    app.register("ann@example.com").await;
    let ann = app.login("ann@example.com").await;
    assert_eq!(send(app.get("/api/me").bearer_auth(&ann.access)).await.status, StatusCode::OK);
}

async fn bad_client_authentication_is_invalid_client_with_a_basic_challenge(db: TestDb) {
    let app = TestApp::start(db).await;
    let (id, secret) = add_client(&app, "billing", &[]).await;
    // Positive control.
    assert_eq!(client_token(&app, Some(&basic(&id, &secret))).await.status, StatusCode::OK);
    let (other, other_secret) = add_client(&app, "reports", &[]).await;
    for authorization in [
        None,
        Some(basic(&id, "jas_wrong")),
        Some(basic(&id, &other_secret)),
        Some(basic(&other, &secret)),
        Some(basic("no-such-client", &secret)),
        Some(format!("Bearer {secret}")),
        Some("Basic !!!".to_owned()),
        Some(format!("Basic {}", STANDARD.encode(format!("{id}{secret}")))),
    ] {
        let reply = client_token(&app, authorization.as_deref()).await;
        assert_invalid_client(&reply);
        assert!(!reply.text.contains(&secret), "the secret is not echoed");
    }
}

async fn failed_client_authentication_is_throttled_like_a_login(db: TestDb) {
    let app = TestApp::start_with(db, |c| c.login_rate_limit = 0).await;
    let (id, secret) = add_client(&app, "billing", &[]).await;
    for _ in 0..app.settings().0.login_failure_backoff {
        assert_invalid_client(&client_token(&app, Some(&basic(&id, "jas_guess"))).await);
    }
    // Past the threshold the right secret waits too.
    let reply = client_token(&app, Some(&basic(&id, &secret))).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{}", reply.text);
    assert!(reply.header("retry-after").is_some());
    app.advance(60);
    assert_eq!(client_token(&app, Some(&basic(&id, &secret))).await.status, StatusCode::OK);
}

async fn removing_a_client_revokes_its_tokens(db: TestDb) {
    let app = TestApp::start(db).await;
    let (id, secret) = add_client(&app, "console", &["admin"]).await;
    let reply = client_token(&app, Some(&basic(&id, &secret))).await;
    let token = reply.body["access_token"].as_str().expect("a token").to_owned();
    let users = || send(app.get("/api/users").bearer_auth(&token));
    assert_eq!(users().await.status, StatusCode::OK, "an admin client manages users");

    let removed = clients::remove(&app.state.store, &id, chrono::TimeDelta::minutes(30), app.now())
        .await
        .expect("runs");
    assert_eq!(removed.map(|r| r.client.id), Some(id.clone()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let reply = users().await;
        if reply.status == StatusCode::UNAUTHORIZED {
            reply.assert_token_refused("token_revoked");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still accepted: {}", reply.text);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_invalid_client(&client_token(&app, Some(&basic(&id, &secret))).await);
}
