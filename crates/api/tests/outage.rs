//! The server while its PostgreSQL is down (contract, "Errors" and "Revocation across
//! instances"): endpoints that need the database answer 503 `unavailable` with `Retry-After`
//! within a second, `/ready` says 503 as fast, and logins work again by themselves once the
//! database is back; `/api/me` answers from memory for the users it holds. The database is a
//! private cluster that the test stops and starts.

use crate::common::{self, cluster};

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use cluster::Cluster;
use common::{PASSWORD, Reply, TestApp, TestDb, send};

/// The contract's bound on a 503 while the database is unreachable.
const WITHIN: Duration = Duration::from_secs(1);

/// Sends a request and returns the reply and how long it took.
async fn timed(request: reqwest::RequestBuilder) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = send(request).await;
    (reply, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_answers_503_at_once_while_postgres_is_down_and_200_when_it_is_back() {
    let Some(mut cluster) = Cluster::for_test() else { return };
    let app = TestApp::start(TestDb::postgres_at(&cluster.url)).await;
    // Positive control.
    app.register("alice@example.com").await;
    app.login("alice@example.com").await;

    cluster.stop();
    let login = || {
        app.post("/auth/login")
            .json(&serde_json::json!({"username": "alice@example.com", "password": PASSWORD}))
    };
    let (reply, took) = timed(login()).await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert!(reply.header("retry-after").is_some(), "503 without Retry-After: {:?}", reply.headers);
    assert!(took < WITHIN, "the first login after the stop took {took:?}");
    eprintln!("first login after the stop: 503 in {took:?}");
    let (reply, took) = timed(login()).await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert!(took < WITHIN, "the second login took {took:?}");
    let (reply, took) = timed(app.get("/ready")).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text);
    assert_eq!(reply.body["database"], false, "{}", reply.text);
    assert!(took < WITHIN, "/ready took {took:?}");
    eprintln!("/ready: 503 in {took:?}");

    cluster.start();
    let restarted = Instant::now();
    loop {
        let reply = send(login()).await;
        if reply.status == StatusCode::OK {
            break;
        }
        reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
        assert!(restarted.elapsed() < Duration::from_secs(10), "no login 10 s after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("logins work again {:?} after the restart", restarted.elapsed());
    let reply = send(app.get("/ready")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_answers_from_memory_while_postgres_is_down_and_503_for_a_user_it_never_loaded() {
    let Some(mut cluster) = Cluster::for_test() else { return };
    let app = TestApp::start(TestDb::postgres_at(&cluster.url)).await;
    app.register("alice@example.com").await;
    let alice = app.login("alice@example.com").await;
    app.assert_accepted(&alice.access).await;
    // Created in the store directly: this instance has never loaded her.
    app.create_user("carol@example.com", &["user"]).await;
    let carol = app.login("carol@example.com").await;

    cluster.stop();
    let (reply, took) = timed(app.get("/api/me").bearer_auth(&alice.access)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["email"], "alice@example.com");
    eprintln!("/api/me of a cached user while down: 200 in {took:?}");
    let (reply, took) = timed(app.get("/api/me").bearer_auth(&carol.access)).await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert!(took < WITHIN, "/api/me of an uncached user took {took:?}");
    eprintln!("/api/me of an uncached user while down: 503 in {took:?}");
    cluster.start();
}
