//! `GET /auth/revocations`, the revocation feed for services that verify tokens themselves:
//! for role `service` or `admin` only; JSON pages by cursor, every event that still matters
//! without one; Server-Sent Events that deliver a revocation as it happens and resume with
//! `Last-Event-ID`; a bound on streams per client; 410 `cursor_expired` for a cursor the
//! server does not know (never issued, malformed or from another format), and for one behind
//! events that no longer matter.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use jwt_auth_service::clients;

use crate::common::{Reply, TestApp, TestDb, send};

crate::http_tests!(
    the_feed_is_for_services_and_admins_and_pages_by_cursor,
    unknown_and_dropped_cursors_are_gone,
    a_stream_delivers_revocations_as_they_happen_and_resumes_after_the_last_event_id,
    streams_are_bounded_per_client,
);

/// A token of a new service client with `roles`.
async fn service_token(app: &TestApp, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    let new = clients::new_client(&uuid::Uuid::new_v4().to_string(), &roles, app.now())
        .expect("a client");
    app.state.store.add_client(&new.client).await.expect("stored");
    let issued = clients::issue(&app.state.sessions, &new.client, None).expect("a token");
    issued.token.expose().to_owned()
}

async fn feed(app: &TestApp, token: &str, after: Option<&str>) -> Reply {
    let path = match after {
        Some(cursor) => format!("/auth/revocations?after={cursor}"),
        None => "/auth/revocations".to_owned(),
    };
    send(app.get(&path).bearer_auth(token)).await
}

fn sid(access: &str) -> String {
    crate::common::decode(access).1["sid"].as_str().expect("sid").to_owned()
}

/// Polls the feed after `cursor` until it has events; returns the page.
async fn next_page(app: &TestApp, token: &str, cursor: &str) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let page = feed(app, token, Some(cursor)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        if !page.body["events"].as_array().expect("events").is_empty() {
            return page;
        }
        assert!(Instant::now() < deadline, "no event after {cursor}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn the_feed_is_for_services_and_admins_and_pages_by_cursor(db: TestDb) {
    let app = TestApp::start(db).await;
    let service = service_token(&app, &[]).await;
    let admin = app.admin().await;
    app.register("alice@example.com").await;
    let alice = app.login("alice@example.com").await;

    // Who may read it.
    let empty = feed(&app, &service, None).await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    assert_eq!(empty.header("cache-control"), Some("no-store"));
    assert_eq!(feed(&app, &admin.access, None).await.status, StatusCode::OK);
    feed(&app, &alice.access, None).await.assert_error(StatusCode::FORBIDDEN, "insufficient_role");
    let anonymous = send(app.get("/auth/revocations")).await;
    anonymous.assert_error(StatusCode::UNAUTHORIZED, "missing_token");
    let start = empty.body["cursor"].as_str().expect("a cursor").to_owned();

    // A logout is a `session` event; a logout everywhere a `user` event.
    let out = send(app.post("/auth/logout").bearer_auth(&alice.access)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let page = next_page(&app, &service, &start).await;
    let events = page.body["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{}", page.text);
    assert_eq!(events[0]["kind"], "session");
    assert_eq!(events[0]["sid"], sid(&alice.access).as_str());
    assert_eq!(page.body["cursor"], events[0]["cursor"]);
    // It matters until alice's access tokens have expired.
    let expires_at = events[0]["expires_at"].as_i64().expect("expires_at");
    let horizon = app.now().timestamp() + 1800;
    assert!((horizon - 60..=horizon + 60).contains(&expires_at), "{expires_at} vs {horizon}");

    let cursor = page.body["cursor"].as_str().expect("cursor").to_owned();
    let again = app.login("alice@example.com").await;
    let all = send(app.post("/auth/logout-all").bearer_auth(&again.access)).await;
    assert_eq!(all.status, StatusCode::NO_CONTENT);
    let page = next_page(&app, &service, &cursor).await;
    let kinds: Vec<&str> = page.body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert!(kinds.contains(&"user"), "{}", page.text);
    let user =
        page.body["events"].as_array().unwrap().iter().find(|e| e["kind"] == "user").unwrap();
    assert_eq!(user["sub"], crate::common::decode(&again.access).1["sub"]);
    assert!(user["not_before"].as_i64().is_some());

    // Without a cursor: every event that still matters, oldest first.
    let everything = feed(&app, &service, None).await;
    let events = everything.body["events"].as_array().expect("events");
    assert!(events.len() >= 2, "{}", everything.text);
    let cursors: Vec<i64> =
        events.iter().map(|e| e["cursor"].as_str().unwrap().parse().unwrap()).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    // Up to date: nothing after the last cursor, which stays the cursor.
    let last = everything.body["cursor"].as_str().expect("cursor");
    let nothing = feed(&app, &service, Some(last)).await;
    assert_eq!(nothing.body["events"], Value::Array(vec![]));
    assert_eq!(nothing.body["cursor"], last);
}

async fn unknown_and_dropped_cursors_are_gone(db: TestDb) {
    let app = TestApp::start(db).await;
    let service = service_token(&app, &["service"]).await;
    app.register("alice@example.com").await;
    let alice = app.login("alice@example.com").await;
    let start = feed(&app, &service, None).await.body["cursor"].as_str().unwrap().to_owned();
    let gone = feed(&app, &service, Some("999999999")).await;
    gone.assert_error(StatusCode::GONE, "cursor_expired");
    // Cursors are opaque: one that was never issued, malformed or from another format, is as
    // unknown as an expired one, so that a reader holding it starts again instead of failing
    // for ever.
    for unknown in ["-1", "bogus", "", "1.5", "v1:17", "99999999999999999999"] {
        let refused = feed(&app, &service, Some(unknown)).await;
        refused.assert_error(StatusCode::GONE, "cursor_expired");
    }
    let served = feed(&app, &service, Some(&start)).await;
    assert_eq!(served.status, StatusCode::OK, "the control: a cursor it gave out");
    send(app.post("/auth/logout").bearer_auth(&alice.access)).await;
    let page = next_page(&app, &service, &start).await;
    assert_eq!(page.body["events"].as_array().unwrap().len(), 1);

    // Once the access tokens it voided have expired, the event is dropped, and a cursor from
    // before it is no longer served: the reader starts again without one.
    let service = {
        app.advance(1900);
        service_token(&app, &["service"]).await
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let reply = feed(&app, &service, Some(&start)).await;
        if reply.status == StatusCode::GONE {
            reply.assert_error(StatusCode::GONE, "cursor_expired");
            break;
        }
        assert!(Instant::now() < deadline, "still served: {}", reply.text);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fresh = feed(&app, &service, None).await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!(fresh.body["events"], Value::Array(vec![]), "nothing matters any more");
}

/// An open event stream.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Events {
        let mut request =
            app.get("/auth/revocations").bearer_auth(token).header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("the stream opens");
        assert_eq!(response.status(), StatusCode::OK);
        let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Events { response, buffer: String::new() }
    }

    /// The next event (id and data), skipping comments; `None` after `wait`.
    async fn next(&mut self, wait: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    frame.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned())
                };
                if let (Some(id), Some(data)) = (field("id:"), field("data:")) {
                    return Some((id, serde_json::from_str(&data).expect("JSON data")));
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await.ok()?;
            let chunk = chunk.expect("the stream reads").expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }
}

async fn a_stream_delivers_revocations_as_they_happen_and_resumes_after_the_last_event_id(
    db: TestDb,
) {
    let app = TestApp::start(db).await;
    let service = service_token(&app, &[]).await;
    app.register("alice@example.com").await;
    let first = app.login("alice@example.com").await;
    let second = app.login("alice@example.com").await;
    let third = app.login("alice@example.com").await;

    let mut stream = Events::open(&app, &service, None).await;
    assert!(stream.next(Duration::from_millis(300)).await.is_none(), "nothing revoked yet");
    send(app.post("/auth/logout").bearer_auth(&first.access)).await;
    let started = Instant::now();
    let (id, event) = stream.next(Duration::from_secs(2)).await.expect("the logout arrives");
    eprintln!("the logout reached the stream after {:?}", started.elapsed());
    assert_eq!(event["kind"], "session");
    assert_eq!(event["sid"], sid(&first.access).as_str());
    assert_eq!(event["cursor"], id.as_str());
    drop(stream);

    // Revoked while the reader was away: resuming after the last id gets that, and only that.
    send(app.post("/auth/logout").bearer_auth(&second.access)).await;
    let mut resumed = Events::open(&app, &service, Some(&id)).await;
    let (next_id, event) = resumed.next(Duration::from_secs(2)).await.expect("the missed one");
    assert_eq!(event["sid"], sid(&second.access).as_str());
    assert!(next_id.parse::<i64>().unwrap() > id.parse::<i64>().unwrap());
    send(app.post("/auth/logout").bearer_auth(&third.access)).await;
    let (_, event) = resumed.next(Duration::from_secs(2)).await.expect("the live one");
    assert_eq!(event["sid"], sid(&third.access).as_str());
    drop(resumed);

    // A `Last-Event-ID` the feed never gave out is refused as the JSON form refuses it, beside
    // the resumed stream above as its control.
    for unknown in ["bogus", "-1", "999999999"] {
        let refused = send(
            app.get("/auth/revocations")
                .bearer_auth(&service)
                .header("accept", "text/event-stream")
                .header("last-event-id", unknown),
        )
        .await;
        refused.assert_error(StatusCode::GONE, "cursor_expired");
    }
}

async fn streams_are_bounded_per_client(db: TestDb) {
    let app = TestApp::start(db).await;
    let service = service_token(&app, &[]).await;
    let other = service_token(&app, &[]).await;
    let mut open = Vec::new();
    for _ in 0..jwt_auth_service::feed::MAX_STREAMS_PER_CLIENT {
        open.push(Events::open(&app, &service, None).await);
    }
    // The instance counts them, in /ready and in /metrics.
    let ready = send(app.get("/ready")).await;
    assert_eq!(ready.body["feed"]["open_streams"], 4, "{}", ready.text);
    let metrics = send(app.get("/metrics")).await.text;
    assert!(metrics.lines().any(|l| l == "jwt_auth_feed_streams 4"), "{metrics}");
    let refused = send(
        app.get("/auth/revocations").bearer_auth(&service).header("accept", "text/event-stream"),
    )
    .await;
    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(refused.header("retry-after").is_some());
    // It names the bound on streams, not a throttle on attempts.
    let message = refused.body["message"].as_str().unwrap_or_default();
    assert!(message.contains("4 revocation streams open, the most it may"), "{message}");
    // Another client is not affected, nor the JSON form.
    drop(Events::open(&app, &other, None).await);
    assert_eq!(feed(&app, &service, None).await.status, StatusCode::OK);
    // A closed stream frees its place once the server notices, at a heartbeat or the next
    // (a write to a closed connection may still succeed once).
    drop(open.pop());
    let closed = Instant::now();
    let deadline = closed + 3 * jwt_auth_api::HEARTBEAT;
    loop {
        let reply = app
            .get("/auth/revocations")
            .bearer_auth(&service)
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("sent");
        if reply.status() == StatusCode::OK {
            eprintln!("the closed stream was noticed after {:?}", closed.elapsed());
            break;
        }
        assert!(Instant::now() < deadline, "the closed stream was never noticed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
