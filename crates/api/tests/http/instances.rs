//! Several instances on one PostgreSQL database, as behind a load balancer: a logout, a
//! revocation or a detected reuse on one is honoured by the others within a second (pushed by
//! PostgreSQL as it commits), and a refresh token is retired once whichever instance serves
//! it. PostgreSQL only: the contract shares a database between instances only there.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use jwt_core::{ClientInfo, Subject};

use crate::common::{Backend, Pair, TestApp, TestDb, send};

/// Two instances on a fresh PostgreSQL database, or `None` when the test is skipped.
async fn two_instances() -> Option<(TestApp, TestApp)> {
    let db = TestDb::open(Backend::Postgres).await?;
    let a = TestApp::start(db).await;
    let b = a.sibling().await;
    Some((a, b))
}

/// Polls `app` until `access` is refused as revoked; fails if that takes over a second (the
/// contract's bound).
async fn refused_within_a_second(app: &TestApp, access: &str) -> Duration {
    refused_within(app, access, Duration::from_secs(1)).await
}

/// Polls `app` until `access` is refused as revoked; fails if that takes longer than `bound`.
pub(crate) async fn refused_within(app: &TestApp, access: &str, bound: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let reply = app.me(access).await;
        if reply.status == StatusCode::UNAUTHORIZED {
            reply.assert_token_refused("token_revoked");
            return started.elapsed();
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert!(started.elapsed() < bound, "still accepted after {bound:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_revocations_reach_every_instance_within_a_second() {
    let Some((a, b)) = two_instances().await else { return };
    a.register("alice@example.com").await;
    let admin = a.admin().await;

    // A logout on A.
    let first = a.login("alice@example.com").await;
    let second = b.login("alice@example.com").await;
    b.assert_accepted(&first.access).await;
    let out = send(a.post("/auth/logout").bearer_auth(&first.access)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    refused_within_a_second(&b, &first.access).await;
    b.assert_accepted(&second.access).await;

    // A reuse detected on B: the session is revoked on A too.
    let rotated = Pair::from_reply(&a.refresh(&second.refresh).await);
    a.advance(11);
    b.refresh(&second.refresh).await.assert_token_refused("refresh_token_reused");
    refused_within_a_second(&a, &rotated.access).await;
    a.refresh(&rotated.refresh).await.assert_token_refused("token_revoked");

    // An administrator's revocation on B, and a disabling on A.
    let third = a.login("alice@example.com").await;
    let id = a.me(&third.access).await.body["id"].as_str().expect("id").to_owned();
    let revoke =
        send(b.post(&format!("/api/admin/users/{id}/revoke")).bearer_auth(&admin.access)).await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT, "{}", revoke.text);
    refused_within_a_second(&a, &third.access).await;
    let fourth = b.login("alice@example.com").await;
    let disable = send(
        a.http
            .patch(a.url(&format!("/api/admin/users/{id}")))
            .bearer_auth(&admin.access)
            .json(&json!({"disabled": true})),
    )
    .await;
    assert_eq!(disable.status, StatusCode::OK, "{}", disable.text);
    refused_within_a_second(&b, &fourth.access).await;
    b.assert_accepted(&admin.access).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_refreshes_across_instances_retire_a_token_once() {
    let Some((a, b)) = two_instances().await else { return };
    a.register("alice@example.com").await;
    let first = a.login("alice@example.com").await;
    let replies = futures_util::future::join_all((0..20).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.refresh(&first.refresh)
    }))
    .await;
    let pairs: Vec<Pair> = replies.iter().map(Pair::from_reply).collect();
    assert!(pairs.iter().all(|p| p.sid() == first.sid()));
    for (i, pair) in pairs.iter().enumerate() {
        let (this, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        other.assert_accepted(&pair.access).await;
        let next = Pair::from_reply(&this.refresh(&pair.refresh).await);
        this.assert_accepted(&next.access).await;
    }
    // The first token was retired once: after the grace it is reuse, on either instance.
    a.advance(11);
    b.refresh(&first.refresh).await.assert_token_refused("refresh_token_reused");
}

/// The count of `/metrics`' pushed-revocation lag histogram.
async fn pushed_revocations(app: &TestApp) -> f64 {
    app.metric("jwt_auth_revocation_feed_lag_seconds_count").await.expect("a lag histogram")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_logout_is_pushed_to_the_other_instance_within_a_second() {
    let Some((a, b)) = two_instances().await else { return };
    a.register("alice@example.com").await;
    let pair = a.login("alice@example.com").await;
    let other = a.login("alice@example.com").await;
    // Positive control: B accepts the token before the logout.
    b.assert_accepted(&pair.access).await;
    let before = pushed_revocations(&b).await;

    let out = send(a.post("/auth/logout").bearer_auth(&pair.access)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let took = refused_within(&b, &pair.access, Duration::from_secs(1)).await;
    eprintln!("refused on B {took:?} after the logout on A answered");
    b.assert_accepted(&other.access).await;
    // It came by push: B measured the lag of a pushed revocation.
    assert!(pushed_revocations(&b).await > before, "no pushed revocation was seen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_an_instance_alone_pushes_nothing_and_needs_nothing_pushed() {
    let db = TestDb::open(Backend::Sqlite).await.expect("SQLite is always there");
    let a = TestApp::start(db).await;
    a.register("alice@example.com").await;
    let pair = a.login("alice@example.com").await;
    a.assert_accepted(&pair.access).await;
    let out = send(a.post("/auth/logout").bearer_auth(&pair.access)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    a.me(&pair.access).await.assert_token_refused("token_revoked");
    assert_eq!(pushed_revocations(&a).await, 0.0);
}

/// The cross-instance revocation lag over 1,000 logouts on A, each timed from the moment the
/// logout request is sent to A until B's revocation set refuses the token (checked in
/// process every millisecond). A measurement, not a test of a figure: run it with
/// `CI=1 cargo test -p jwt-auth-api --test main -- --ignored --nocapture
/// instances::postgres_revocation_lag`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by hand"]
async fn postgres_revocation_lag_between_two_instances() {
    const LOGOUTS: usize = 1_000;
    let Some((a, b)) = two_instances().await else { return };
    let id = a.create_user("alice@example.com", &["user"]).await;
    let alice = Subject { id, roles: vec!["user".into()], email: None };
    let (mut lags, mut answers) = (Vec::with_capacity(LOGOUTS), Vec::with_capacity(LOGOUTS));
    for _ in 0..LOGOUTS {
        let pair =
            a.state.sessions.start(&alice, ClientInfo::default()).await.expect("a session starts");
        let access = pair.access_token.expose().to_owned();
        assert!(b.state.sessions.authenticate(&access).is_ok(), "accepted on B before");
        let started = Instant::now();
        let out = send(a.post("/auth/logout").bearer_auth(&access)).await;
        assert_eq!(out.status, StatusCode::NO_CONTENT);
        answers.push(started.elapsed());
        while b.state.sessions.authenticate(&access).is_ok() {
            assert!(started.elapsed() < Duration::from_secs(5), "never refused on B");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lags.push(started.elapsed());
    }
    let quantiles = |mut all: Vec<Duration>| {
        all.sort();
        let at = |q: f64| all[((all.len() as f64 * q).ceil() as usize).clamp(1, all.len()) - 1];
        format!("p50 {:?}, p99 {:?}, max {:?}", at(0.50), at(0.99), all[all.len() - 1])
    };
    eprintln!("revocation lag A→B over {LOGOUTS} logouts: {}", quantiles(lags));
    eprintln!("of which the logout's answer on A: {}", quantiles(answers));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_role_change_on_one_instance_is_seen_on_the_other_within_a_second() {
    let Some((a, b)) = two_instances().await else { return };
    let admin = a.admin().await;
    a.register("alice@example.com").await;
    let alice = a.login("alice@example.com").await;
    // B caches alice as she is: the control.
    let before = b.me(&alice.access).await;
    assert_eq!(before.body["roles"], json!(["user"]), "{}", before.text);
    let id = before.body["id"].as_str().expect("id").to_owned();

    let patch = send(
        a.http
            .patch(a.url(&format!("/api/admin/users/{id}")))
            .bearer_auth(&admin.access)
            .json(&json!({"roles": ["user", "auditor"]})),
    )
    .await;
    assert_eq!(patch.status, StatusCode::OK, "{}", patch.text);
    let started = Instant::now();
    loop {
        let reply = b.me(&alice.access).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        if reply.body["roles"] == json!(["user", "auditor"]) {
            break;
        }
        assert_eq!(reply.body["roles"], json!(["user"]), "{}", reply.text);
        assert!(started.elapsed() < Duration::from_secs(1), "B still has the old roles after 1 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("B saw the new roles {:?} after the change on A answered", started.elapsed());
}
