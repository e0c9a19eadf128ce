//! Several instances on one PostgreSQL database, as behind a load balancer: a logout, a
//! revocation or a detected reuse on one is honoured by the others within two seconds, and a
//! refresh token is retired once whichever instance serves it. PostgreSQL only: the contract
//! shares a database between instances only there.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Backend, Pair, TestApp, TestDb, send};

/// Two instances on a fresh PostgreSQL database, or `None` when the test is skipped.
async fn two_instances() -> Option<(TestApp, TestApp)> {
    let db = TestDb::open(Backend::Postgres).await?;
    let a = TestApp::start(db).await;
    let b = a.sibling().await;
    Some((a, b))
}

/// Polls `app` until `access` is refused as revoked; fails if that takes over two seconds.
async fn refused_within_two_seconds(app: &TestApp, access: &str) -> Duration {
    let started = Instant::now();
    loop {
        let reply = app.me(access).await;
        if reply.status == StatusCode::UNAUTHORIZED {
            reply.assert_token_refused("token_revoked");
            return started.elapsed();
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert!(started.elapsed() < Duration::from_secs(2), "still accepted after 2 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_revocations_reach_every_instance_within_two_seconds() {
    let Some((a, b)) = two_instances().await else { return };
    a.register("alice@example.com").await;
    let admin = a.admin().await;

    // A logout on A.
    let first = a.login("alice@example.com").await;
    let second = b.login("alice@example.com").await;
    b.assert_accepted(&first.access).await;
    let out = send(a.post("/auth/logout").bearer_auth(&first.access)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    refused_within_two_seconds(&b, &first.access).await;
    b.assert_accepted(&second.access).await;

    // A reuse detected on B: the session is revoked on A too.
    let rotated = Pair::from_reply(&a.refresh(&second.refresh).await);
    a.advance(11);
    b.refresh(&second.refresh).await.assert_token_refused("refresh_token_reused");
    refused_within_two_seconds(&a, &rotated.access).await;
    a.refresh(&rotated.refresh).await.assert_token_refused("token_revoked");

    // An administrator's revocation on B, and a disabling on A.
    let third = a.login("alice@example.com").await;
    let id = a.me(&third.access).await.body["id"].as_str().expect("id").to_owned();
    let revoke =
        send(b.post(&format!("/api/admin/users/{id}/revoke")).bearer_auth(&admin.access)).await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT, "{}", revoke.text);
    refused_within_two_seconds(&a, &third.access).await;
    let fourth = b.login("alice@example.com").await;
    let disable = send(
        a.http
            .patch(a.url(&format!("/api/admin/users/{id}")))
            .bearer_auth(&admin.access)
            .json(&json!({"disabled": true})),
    )
    .await;
    assert_eq!(disable.status, StatusCode::OK, "{}", disable.text);
    refused_within_two_seconds(&b, &fourth.access).await;
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
