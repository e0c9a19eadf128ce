//! Publishing and following the feed on a NATS server of the test's own: the stream the
//! server creates, one message per cursor (a republish is a duplicate, dropped), the order
//! kept, and a reader starting from the first message, after a sequence, or from a time.
#![allow(clippy::disallowed_methods)] // the stream's times are the system's

use std::time::Duration;

use jwt_auth_nats::{Connection, Delivered, Start, Stored, StreamSettings};
use jwt_auth_testdb::nats::NatsServer;
use jwt_core::{FeedChange, FeedEvent};

fn settings(name: &str) -> StreamSettings {
    StreamSettings { name: name.to_owned(), max_age: Duration::from_secs(3600), replicas: 1 }
}

fn session(cursor: u32) -> FeedEvent {
    FeedEvent {
        cursor: cursor.to_string(),
        change: FeedChange::Session { sid: format!("s{cursor}") },
        expires_at: 4_000_000_000,
    }
}

async fn connected(server: &NatsServer) -> Connection {
    let nats = Connection::connect(&server.url(), "test").await.expect("a URL");
    assert!(nats.connected_within(Duration::from_secs(10)).await, "connected in time");
    nats
}

/// The next `n` messages from `start`.
async fn read(nats: &Connection, stream: &str, start: Start, n: usize) -> Vec<Delivered> {
    let mut following = nats.follow(stream, start).await.expect("follows");
    let mut got = Vec::new();
    while got.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(5), following.next()).await;
        got.push(next.expect("a message in time").expect("not ended").expect("no error"));
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_stored_once_each_in_order_and_followed_from_any_start() {
    let Some(server) = NatsServer::start() else { return };
    let nats = connected(&server).await;
    let name = nats.ensure_stream(&settings("FEED")).await.expect("created");
    assert_eq!(name, "FEED");
    // Created once: asked again, the same stream, whatever the name asked for.
    assert_eq!(nats.ensure_stream(&settings("OTHER")).await.expect("found"), "FEED");
    assert_eq!(nats.last_sequence("FEED").await.expect("info"), 0);

    for cursor in [3, 5, 9] {
        assert!(!nats.publish(&session(cursor)).await.expect("stored").duplicate, "new");
    }
    // A republish (a second leader, or a leader after a crash) is dropped.
    let again = nats.publish(&session(5)).await.expect("answered");
    assert!(again.duplicate, "a duplicate");
    assert_eq!(again.sequence, 2, "where the first copy is");
    let stream_changes = FeedEvent {
        cursor: "10".into(),
        change: FeedChange::UserChanged { sub: "u".into() },
        expires_at: 4_000_000_000,
    };
    assert!(!nats.publish(&stream_changes).await.expect("stored").duplicate);
    assert_eq!(nats.last_sequence("FEED").await.expect("info"), 4, "four messages, not five");

    let all = read(&nats, "FEED", Start::First, 4).await;
    let cursors: Vec<_> = all.iter().map(|d| d.event.as_ref().unwrap().cursor.clone()).collect();
    assert_eq!(cursors, ["3", "5", "9", "10"]);
    assert_eq!(all.iter().map(|d| d.sequence).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(all[3].event.as_ref().unwrap().change, FeedChange::UserChanged { sub: "u".into() });
    assert_eq!(all[3].pending, 0, "caught up");
    assert!(all[0].pending > 0);

    // After a sequence: the messages after it.
    let rest = read(&nats, "FEED", Start::AfterSequence(2), 2).await;
    assert_eq!(rest.iter().map(|d| d.sequence).collect::<Vec<_>>(), [3, 4]);

    // From a time: what was stored since. An hour ago is everything; a new message after
    // "now" is the only one from now on.
    let since =
        read(&nats, "FEED", Start::Since(chrono::Utc::now() - chrono::TimeDelta::hours(1)), 4)
            .await;
    assert_eq!(since[0].sequence, 1);
    let now = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!nats.publish(&session(11)).await.expect("stored").duplicate);
    let newest = read(&nats, "FEED", Start::Since(now), 1).await;
    assert_eq!(newest[0].event.as_ref().unwrap().cursor, "11");
    assert_eq!(newest[0].sequence, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_says_when_nats_goes_and_comes_back() {
    let Some(mut server) = NatsServer::start() else { return };
    let nats = connected(&server).await;
    assert!(nats.is_connected());
    server.kill();
    let mut up = nats.watch();
    tokio::time::timeout(Duration::from_secs(5), up.wait_for(|up| !*up))
        .await
        .expect("the loss is noticed")
        .expect("the connection lives");
    assert!(!nats.is_connected());
    server.resume();
    tokio::time::timeout(Duration::from_secs(10), up.wait_for(|up| *up))
        .await
        .expect("back by itself")
        .expect("the connection lives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_made_while_nats_is_down_and_connects_when_it_starts() {
    let Some(mut server) = NatsServer::start() else { return };
    server.kill();
    let nats = Connection::connect(&server.url(), "test").await.expect("made at once");
    assert!(!nats.is_connected());
    server.resume();
    let mut up = nats.watch();
    tokio::time::timeout(Duration::from_secs(10), up.wait_for(|up| *up))
        .await
        .expect("connected once NATS is up")
        .expect("the connection lives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_stored_only_after_the_message_it_names_as_the_last() {
    let Some(server) = NatsServer::start() else { return };
    let nats = connected(&server).await;
    nats.ensure_stream(&settings("FEED")).await.expect("created");
    let first = nats.publish(&session(1)).await.expect("stored");
    assert_eq!(first, Stored { sequence: 1, duplicate: false });

    // Named after the stream's last message: stored, in order.
    let batch: Vec<FeedEvent> = (2..=6).map(session).collect();
    assert_eq!(nats.publish_after(1, &batch).await.expect("stored"), 6);
    assert_eq!(nats.last_sequence("FEED").await.expect("info"), 6);

    // Named after a message that is not the stream's last (a gap, or another leader went
    // on): refused, and so is every message after it, which names its refused predecessor.
    let stale: Vec<FeedEvent> = (8..=9).map(session).collect();
    assert!(nats.publish_after(7, &stale).await.is_err());
    assert_eq!(nats.last_sequence("FEED").await.expect("info"), 6, "nothing stored");
    let cursors: Vec<String> = read(&nats, "FEED", Start::First, 6)
        .await
        .into_iter()
        .map(|d| d.event.expect("an event").cursor)
        .collect();
    assert_eq!(cursors, ["1", "2", "3", "4", "5", "6"]);
}

/// A mirror (a region's copy of the stream) copies batches, and goes on copying them after its
/// server restarts: the order a batch is published in is checked by sequence, which a mirror
/// keeps (a check by the previous message id stopped a restarted mirror for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_copies_batches_before_and_after_its_server_restarts() {
    let Some(mut server) = NatsServer::start() else { return };
    let nats = connected(&server).await;
    nats.ensure_stream(&settings("FEED")).await.expect("created");
    let jetstream = async_nats::jetstream::new(nats.client().clone());
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: "FEED_MIRROR".into(),
            mirror: Some(async_nats::jetstream::stream::Source {
                name: "FEED".into(),
                ..Default::default()
            }),
            storage: async_nats::jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .expect("a mirror");
    let first = nats.publish(&session(1)).await.expect("stored");
    let batch: Vec<FeedEvent> = (2..=4).map(session).collect();
    let last = nats.publish_after(first.sequence, &batch).await.expect("stored");
    let copied = read(&nats, "FEED_MIRROR", Start::First, 4).await;
    assert_eq!(copied.iter().map(|d| d.sequence).collect::<Vec<_>>(), [1, 2, 3, 4]);

    server.kill();
    server.resume();
    assert!(nats.connected_within(Duration::from_secs(10)).await, "connected again");
    // JetStream takes a moment to come back after the restart.
    for _ in 0..100 {
        if nats.last_sequence("FEED").await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let batch: Vec<FeedEvent> = (5..=7).map(session).collect();
    assert_eq!(nats.publish_after(last, &batch).await.expect("stored after the restart"), 7);
    let copied = read(&nats, "FEED_MIRROR", Start::AfterSequence(4), 3).await;
    let cursors: Vec<_> = copied.iter().map(|d| d.event.as_ref().unwrap().cursor.clone()).collect();
    assert_eq!(cursors, ["5", "6", "7"]);
}
