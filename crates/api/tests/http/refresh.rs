//! Refresh rotation: a new pair in the same session, the reuse grace, reuse after it revoking
//! the session, concurrent refreshes, the session's maximum age and token expiry. The clock
//! is moved, never slept on.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Pair, Reply, TestApp, TestDb, decode, send};

crate::http_tests!(
    rotation_returns_a_new_pair_in_the_same_session,
    reuse_within_the_grace_gets_a_fresh_pair_in_the_same_session,
    reuse_after_the_grace_revokes_the_whole_session,
    zero_grace_makes_any_reuse_revoke_the_session,
    concurrent_refreshes_of_one_token_all_succeed_and_every_pair_works,
    no_refresh_extends_a_session_past_its_maximum_age,
    expired_tokens_are_refused_as_expired,
    refresh_refuses_malformed_requests_and_wrong_tokens,
);

async fn rotation_returns_a_new_pair_in_the_same_session(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let first = app.login("alice@example.com").await;
    app.advance(60);
    let second = Pair::from_reply(&app.refresh(&first.refresh).await);
    assert_ne!(second.access, first.access);
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(second.sid(), first.sid(), "the session stays the same");
    let (_, claims) = decode(&second.access);
    assert_eq!(claims["iat"], app.now().timestamp(), "a new access token");
    assert_ne!(decode(&second.refresh).1["jti"], decode(&first.refresh).1["jti"]);
    app.assert_accepted(&second.access).await;
    app.assert_accepted(&first.access).await; // access tokens live until they expire

    let third = Pair::from_reply(&app.refresh(&second.refresh).await);
    assert_eq!(third.sid(), first.sid());
    app.assert_accepted(&third.access).await;

    // The presented tokens were retired: once the grace has passed they are reuse.
    app.advance(11);
    let reply = app.refresh(&first.refresh).await;
    reply.assert_token_refused("refresh_token_reused");
}

async fn reuse_within_the_grace_gets_a_fresh_pair_in_the_same_session(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let first = app.login("alice@example.com").await;
    let second = Pair::from_reply(&app.refresh(&first.refresh).await);
    app.advance(9); // REFRESH_REUSE_GRACE defaults to 10s
    let replay = Pair::from_reply(&app.refresh(&first.refresh).await);
    assert_eq!(replay.sid(), first.sid());
    assert_ne!(replay.refresh, second.refresh);
    for pair in [&second, &replay] {
        app.assert_accepted(&pair.access).await;
        let next = Pair::from_reply(&app.refresh(&pair.refresh).await);
        app.assert_accepted(&next.access).await;
    }
}

async fn reuse_after_the_grace_revokes_the_whole_session(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let first = app.login("alice@example.com").await;
    let other = app.login("alice@example.com").await;
    let second = Pair::from_reply(&app.refresh(&first.refresh).await);
    app.advance(5);
    let third = Pair::from_reply(&app.refresh(&second.refresh).await);
    app.advance(11);

    let reply = app.refresh(&second.refresh).await;
    reply.assert_token_refused("refresh_token_reused");
    // Every token of the session stops working, the current refresh token included.
    for pair in [&first, &second, &third] {
        app.me(&pair.access).await.assert_token_refused("token_revoked");
    }
    app.refresh(&third.refresh).await.assert_token_refused("token_revoked");
    app.refresh(&first.refresh).await.assert_token_refused("token_revoked");
    // The user's other session is not touched.
    app.assert_accepted(&other.access).await;
    Pair::from_reply(&app.refresh(&other.refresh).await);

    let metrics = send(app.get("/metrics")).await.text;
    assert!(metrics.lines().any(|l| l == "jwt_auth_refresh_reuse_detections_total 1"), "{metrics}");
}

async fn zero_grace_makes_any_reuse_revoke_the_session(db: TestDb) {
    let app = TestApp::start_with(db, |c| c.refresh_reuse_grace = chrono::TimeDelta::zero()).await;
    app.register("alice@example.com").await;
    let first = app.login("alice@example.com").await;
    let second = Pair::from_reply(&app.refresh(&first.refresh).await);
    app.refresh(&first.refresh).await.assert_token_refused("refresh_token_reused");
    app.me(&second.access).await.assert_token_refused("token_revoked");
    app.refresh(&second.refresh).await.assert_token_refused("token_revoked");
}

async fn concurrent_refreshes_of_one_token_all_succeed_and_every_pair_works(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let first = app.login("alice@example.com").await;
    let replies =
        futures_util::future::join_all((0..20).map(|_| app.refresh(&first.refresh))).await;
    let pairs: Vec<Pair> = replies.iter().map(Pair::from_reply).collect();
    let mut refresh_tokens: Vec<_> = pairs.iter().map(|p| p.refresh.clone()).collect();
    refresh_tokens.sort();
    refresh_tokens.dedup();
    assert_eq!(refresh_tokens.len(), 20, "twenty distinct pairs");
    assert!(pairs.iter().all(|p| p.sid() == first.sid()), "all in the same session");

    let checks = pairs.iter().map(|pair| async {
        app.assert_accepted(&pair.access).await;
        let next = Pair::from_reply(&app.refresh(&pair.refresh).await);
        assert_eq!(next.sid(), first.sid());
        app.assert_accepted(&next.access).await;
    });
    futures_util::future::join_all(checks).await;
}

async fn no_refresh_extends_a_session_past_its_maximum_age(db: TestDb) {
    let app = TestApp::start_with(db, |c| c.session_max_age = chrono::TimeDelta::hours(1)).await;
    app.register("alice@example.com").await;
    let login = app.login("alice@example.com").await;
    let session_end = app.now().timestamp() + 3600;
    assert_eq!(login.body["refresh_expires_in"], 3600, "the refresh token ends with the session");
    assert_eq!(decode(&login.refresh).1["exp"], session_end);

    app.advance(50 * 60);
    let late = Pair::from_reply(&app.refresh(&login.refresh).await);
    assert_eq!(late.body["expires_in"], 600, "cut to the session's end");
    assert_eq!(late.body["refresh_expires_in"], 600);
    assert_eq!(decode(&late.access).1["exp"], session_end);
    assert_eq!(decode(&late.refresh).1["exp"], session_end);

    app.advance(10 * 60 + 1);
    app.refresh(&late.refresh).await.assert_token_refused("session_expired");
    app.advance(60);
    app.refresh(&late.refresh).await.assert_token_refused("session_expired");
    app.me(&late.access).await.assert_token_refused("token_expired");
    // A new login is a new session.
    let again = app.login("alice@example.com").await;
    Pair::from_reply(&app.refresh(&again.refresh).await);
}

async fn expired_tokens_are_refused_as_expired(db: TestDb) {
    let app = TestApp::start_with(db, |c| {
        c.token_expiry = chrono::TimeDelta::minutes(15);
        c.refresh_token_expiry = chrono::TimeDelta::hours(1);
    })
    .await;
    app.register("alice@example.com").await;
    let login = app.login("alice@example.com").await;
    assert_eq!(login.body["expires_in"], 900);

    app.advance(15 * 60 - 1);
    app.assert_accepted(&login.access).await;
    // The clock leeway is at most 30 seconds.
    app.advance(32);
    app.me(&login.access).await.assert_token_refused("token_expired");

    let next = Pair::from_reply(&app.refresh(&login.refresh).await);
    // A token whose own lifetime was shorter than the configured one (as under earlier
    // settings) ends before its session: that is the token expiring, not the session.
    let short = app.resign(&next.refresh, |_, claims| claims["exp"] = claims["iat"].clone());
    app.advance(60);
    app.refresh(&short).await.assert_token_refused("token_expired");
    app.advance(3600 + 31);
    app.refresh(&next.refresh).await.assert_token_refused("token_expired");
}

async fn refresh_refuses_malformed_requests_and_wrong_tokens(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;

    let empty = send(app.post("/auth/refresh")).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.text);
    assert!(empty.body["error"].is_string() && empty.body["message"].is_string());
    let malformed = send(
        app.post("/auth/refresh").header("content-type", "application/json").body("{\"refresh"),
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST, "{}", malformed.text);
    let wrong_type = send(app.post("/auth/refresh").json(&json!({"refresh_token": 42}))).await;
    assert_eq!(wrong_type.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", wrong_type.text);
    let text = send(app.post("/auth/refresh").header("content-type", "text/plain").body("x")).await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", text.text);
    for reply in [&malformed, &wrong_type, &text] {
        assert!(reply.body["error"].is_string() && reply.body["message"].is_string(), "{reply:?}");
    }

    app.refresh("garbage").await.assert_token_refused("invalid_token");
    app.refresh(&pair.access).await.assert_token_refused("invalid_token");
    // Signed with the server's key, but never issued: no such session.
    let unknown = app.resign(&pair.refresh, |_, claims| {
        claims["sid"] = json!(uuid::Uuid::new_v4().to_string());
        claims["jti"] = json!(uuid::Uuid::new_v4().to_string());
    });
    app.refresh(&unknown).await.assert_token_refused("invalid_token");
    // The untouched token still works: the refusals above did not disturb the session.
    let reply: Reply = app.refresh(&pair.refresh).await;
    Pair::from_reply(&reply);
}
