//! `LOGIN_FAILURE_BACKOFF`: failed logins of one account (the submitted username, case-folded,
//! known or not) from one client IP, at `/auth/login` and the password grant alike, start
//! growing delays after the threshold; the right password waits too; the same account from
//! another IP does not; a success clears it; `0` turns it off. Time is moved on the server's
//! manual clock, never slept.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{PASSWORD, Reply, TestApp, TestDb, send};

crate::http_tests!(
    delays_start_after_the_threshold_and_grow,
    unknown_accounts_are_treated_exactly_like_known_ones,
    login_and_the_password_grant_count_together_case_folded,
    the_setting_moves_the_threshold_and_zero_turns_it_off,
);

const ATTACKER: &str = "203.0.113.66";
const OWNER: &str = "198.51.100.1";

/// A server that believes `X-Forwarded-For` from the test client, so each request can come
/// from an IP of the test's choice.
async fn start(db: TestDb, backoff: u32, per_ip: u32) -> TestApp {
    TestApp::start_with(db, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a CIDR")];
        c.login_failure_backoff = backoff;
        c.login_rate_limit = per_ip;
    })
    .await
}

async fn login(app: &TestApp, username: &str, password: &str, ip: &str) -> Reply {
    let body = json!({"username": username, "password": password});
    send(app.post("/auth/login").header("x-forwarded-for", ip).json(&body)).await
}

async fn token(app: &TestApp, username: &str, password: &str, ip: &str) -> Reply {
    let form = [("grant_type", "password"), ("username", username), ("password", password)];
    send(app.post("/auth/token").header("x-forwarded-for", ip).form(&form)).await
}

/// Asserts a 429 `rate_limited` and returns its `Retry-After` in seconds.
fn retry_after(reply: &Reply) -> i64 {
    reply.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    reply
        .header("retry-after")
        .expect("Retry-After on a 429")
        .parse()
        .expect("Retry-After in whole seconds")
}

fn assert_refused(reply: &Reply) {
    reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
}

async fn delays_start_after_the_threshold_and_grow(db: TestDb) {
    let app = start(db, 5, 0).await;
    app.register("alice@example.com").await;
    for _ in 0..5 {
        assert_refused(&login(&app, "alice@example.com", "wrong guess", ATTACKER).await);
    }
    // The fifth failure starts a delay of 1 s: even the right password waits, from that IP.
    assert_eq!(retry_after(&login(&app, "alice@example.com", PASSWORD, ATTACKER).await), 1);
    // The owner elsewhere is not delayed, and other accounts from that IP go on.
    let owner = login(&app, "alice@example.com", PASSWORD, OWNER).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.text);
    assert_refused(&login(&app, "bob@example.com", "wrong guess", ATTACKER).await);

    // Each failure after the delay doubles it: 2 s, then 4 s.
    for expected in [2, 4] {
        app.advance(expected / 2);
        assert_refused(&login(&app, "alice@example.com", "wrong guess", ATTACKER).await);
        assert_eq!(retry_after(&login(&app, "alice@example.com", "x", ATTACKER).await), expected);
    }
    // Once the delay is over, the right password gets in, and the success clears the pair.
    app.advance(4);
    let back = login(&app, "alice@example.com", PASSWORD, ATTACKER).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);
    for _ in 0..5 {
        assert_refused(&login(&app, "alice@example.com", "wrong guess", ATTACKER).await);
    }
    assert_eq!(retry_after(&login(&app, "alice@example.com", PASSWORD, ATTACKER).await), 1);
}

async fn unknown_accounts_are_treated_exactly_like_known_ones(db: TestDb) {
    let app = start(db, 5, 0).await;
    app.register("alice@example.com").await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..6 {
        known.push(login(&app, "alice@example.com", "wrong guess", ATTACKER).await);
        unknown.push(login(&app, "ghost@example.com", "wrong guess", ATTACKER).await);
    }
    for (k, u) in known.iter().zip(&unknown) {
        assert_eq!(k.status, u.status, "{} / {}", k.text, u.text);
        assert_eq!(k.body, u.body);
        assert_eq!(k.header("retry-after"), u.header("retry-after"));
    }
    assert_eq!(retry_after(&unknown[5]), 1, "the unknown account is delayed too");
}

async fn login_and_the_password_grant_count_together_case_folded(db: TestDb) {
    let app = start(db, 5, 0).await;
    app.register("alice@example.com").await;
    for _ in 0..3 {
        assert_refused(&login(&app, "Alice@Example.COM", "wrong guess", ATTACKER).await);
    }
    for _ in 0..2 {
        token(&app, "alice@example.com", "wrong guess", ATTACKER)
            .await
            .assert_oauth_error("invalid_grant");
    }
    assert_eq!(retry_after(&token(&app, "ALICE@example.com", PASSWORD, ATTACKER).await), 1);
    assert_eq!(retry_after(&login(&app, "alice@example.com", PASSWORD, ATTACKER).await), 1);
    app.advance(1);
    let granted = token(&app, "alice@example.com", PASSWORD, ATTACKER).await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);
}

async fn the_setting_moves_the_threshold_and_zero_turns_it_off(db: TestDb) {
    // A generous per-IP quota does not hide the backoff: it has its own setting.
    let app = start(db, 10, 100_000).await;
    app.register("alice@example.com").await;
    for _ in 0..10 {
        assert_refused(&login(&app, "alice@example.com", "wrong guess", ATTACKER).await);
    }
    assert_eq!(retry_after(&login(&app, "alice@example.com", PASSWORD, ATTACKER).await), 1);
    drop(app);

    let db = TestDb::open(crate::common::Backend::Sqlite).await.expect("SQLite");
    let app = start(db, 0, 0).await;
    app.register("alice@example.com").await;
    for _ in 0..30 {
        assert_refused(&login(&app, "alice@example.com", "wrong guess", ATTACKER).await);
    }
    let in_at_once = login(&app, "alice@example.com", PASSWORD, ATTACKER).await;
    assert_eq!(in_at_once.status, StatusCode::OK, "{}", in_at_once.text);
}
