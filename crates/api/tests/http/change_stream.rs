//! The change feed on NATS JetStream (`NATS_URL`), against a `nats-server` of the test's own:
//! two instances on one PostgreSQL follow the stream (and say so in `/metrics`), a logout on one
//! is refused on the other; with NATS killed, the other falls back to reading the database and
//! still honours a logout; with NATS back, it follows the stream again. An instance restarted in
//! the middle of a burst of logouts misses none and applies none twice.

use std::time::{Duration, Instant};

use jwt_auth_testdb::nats::NatsServer;
use reqwest::StatusCode;

use crate::common::{Backend, TestApp, TestDb, send};
use crate::http::instances::refused_within;

/// Waits until `app` says it follows the stream (`true`) or reads the database (`false`).
async fn following(app: &TestApp, want: bool, within: Duration) {
    let started = Instant::now();
    while app.metric("jwt_auth_change_stream_following").await != Some(f64::from(u8::from(want))) {
        assert!(started.elapsed() < within, "following is not {want} after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Logs `email` in on `a`, checks that `b` accepts the token, logs it out on `a`, and returns
/// how long `b` took to refuse it (failing past `bound`).
async fn logout_reaches(a: &TestApp, b: &TestApp, email: &str, bound: Duration) -> Duration {
    let pair = a.login(email).await;
    b.assert_accepted(&pair.access).await;
    let out = send(a.post("/auth/logout").bearer_auth(&pair.access)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    refused_within(b, &pair.access, bound).await
}

/// An instance on a fresh PostgreSQL database with the change stream on `nats`.
async fn with_stream(nats: &NatsServer) -> Option<TestApp> {
    let db = TestDb::open(Backend::Postgres).await?;
    let url = nats.url();
    let app = TestApp::start_with(db, |config| {
        config.nats = Some(jwt_auth_api::NatsSettings {
            url: url.clone(),
            stream: jwt_auth_nats::DEFAULT_STREAM.to_owned(),
        });
    })
    .await;
    Some(app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_follow_the_stream_fall_back_to_the_database_and_return() {
    let Some(mut nats) = NatsServer::start() else { return };
    let Some(a) = with_stream(&nats).await else { return };
    let b = a.sibling().await;
    a.register("alice@example.com").await;
    following(&a, true, Duration::from_secs(10)).await;
    following(&b, true, Duration::from_secs(10)).await;
    let leaders = a.metric("jwt_auth_change_stream_relay_leader").await.unwrap_or(0.0)
        + b.metric("jwt_auth_change_stream_relay_leader").await.unwrap_or(0.0);
    assert_eq!(leaders, 1.0, "one relay leader");

    // Through the stream: both ways.
    let took = logout_reaches(&a, &b, "alice@example.com", Duration::from_secs(1)).await;
    eprintln!("through the stream, refused on B {took:?} after the logout on A");
    logout_reaches(&b, &a, "alice@example.com", Duration::from_secs(1)).await;

    // NATS gone: both read the database within a second or so, and a logout still reaches B.
    nats.kill();
    following(&b, false, Duration::from_secs(5)).await;
    let took = logout_reaches(&a, &b, "alice@example.com", Duration::from_secs(3)).await;
    eprintln!("from the database, refused on B {took:?} after the logout on A");

    // NATS back: both follow the stream again, and it carries the next logout.
    nats.resume();
    following(&a, true, Duration::from_secs(10)).await;
    following(&b, true, Duration::from_secs(10)).await;
    logout_reaches(&a, &b, "alice@example.com", Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_instance_restarted_in_a_burst_of_logouts_misses_none_and_repeats_none() {
    let Some(nats) = NatsServer::start() else { return };
    let Some(a) = with_stream(&nats).await else { return };
    a.register("alice@example.com").await;
    let mut pairs = Vec::new();
    for _ in 0..30 {
        pairs.push(a.login("alice@example.com").await);
    }
    let kept = a.login("alice@example.com").await;
    let b = a.sibling().await;
    following(&b, true, Duration::from_secs(10)).await;
    b.assert_accepted(&pairs[0].access).await;

    // The burst on A; B is stopped after the first ten and started again meanwhile.
    let mut b = Some(b);
    let mut restarted = None;
    for (i, pair) in pairs.iter().enumerate() {
        let out = send(a.post("/auth/logout").bearer_auth(&pair.access)).await;
        assert_eq!(out.status, StatusCode::NO_CONTENT);
        if i == 10 {
            drop(b.take());
            restarted = Some(a.sibling_unready().await);
        }
    }
    let b = restarted.expect("restarted");
    b.wait_ready().await;
    following(&b, true, Duration::from_secs(10)).await;

    // Every logout is honoured on the restarted instance; the session kept is not revoked.
    let started = Instant::now();
    for pair in &pairs {
        while b.me(&pair.access).await.status != StatusCode::UNAUTHORIZED {
            assert!(started.elapsed() < Duration::from_secs(5), "a logout never reached B");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    b.assert_accepted(&kept.access).await;
    // And its feed holds each revocation once, in order.
    let admin = a.admin().await;
    let feed = send(b.get("/auth/revocations").bearer_auth(&admin.access)).await;
    assert_eq!(feed.status, StatusCode::OK, "{}", feed.text);
    let events = feed.body["events"].as_array().expect("events").clone();
    let sids: Vec<&str> = events.iter().filter_map(|e| e["sid"].as_str()).collect();
    let unique: std::collections::HashSet<_> = sids.iter().collect();
    assert_eq!(sids.len(), 30, "{sids:?}");
    assert_eq!(unique.len(), 30, "each once");
    let cursors: Vec<i64> =
        events.iter().map(|e| e["cursor"].as_str().unwrap().parse().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
}
