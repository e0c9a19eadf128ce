//! The change stream's relay against PostgreSQL and a NATS server of the test's own: the outbox
//! reaches the stream in position order, each row once (what a previous leader published and
//! did not record is dropped as a duplicate), one instance leads at a time, and when the
//! leader dies another takes over and goes on from where it was.
#![allow(clippy::disallowed_methods)] // the revocations' times are the system's

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use jwt_auth_nats::{Connection, Start, StreamSettings};
use jwt_auth_service::change_stream::{Relay, StreamStatus, event_of};
use jwt_auth_store::Store;
use jwt_auth_testdb::nats::NatsServer;
use jwt_auth_testdb::{Backend, TestDb};
use jwt_core::RevocationStore;

const STREAM: &str = "FEED";

async fn connected(server: &NatsServer) -> Connection {
    let nats = Connection::connect(&server.url(), "test").await.expect("a URL");
    assert!(nats.connected_within(Duration::from_secs(10)).await, "connected in time");
    nats
}

fn relay(store: Arc<Store>, nats: Connection) -> (Relay, Arc<StreamStatus>) {
    let status = Arc::new(StreamStatus::default());
    let relay = Relay {
        store,
        nats,
        settings: StreamSettings {
            name: STREAM.to_owned(),
            max_age: Duration::from_secs(3600),
            replicas: 1,
        },
        token_lifetime: TimeDelta::minutes(15),
        poll_every: Duration::from_millis(50),
        status: status.clone(),
    };
    (relay, status)
}

/// Records `n` revocations (cut-offs for `user`).
async fn revoke(store: &Store, user: &str, n: usize) {
    for _ in 0..n {
        store.void_issued_before(Some(user), Utc::now(), Utc::now()).await.expect("recorded");
    }
}

/// Waits until the stream holds `n` messages, then returns their cursors in stream order.
async fn stream_cursors(nats: &Connection, n: u64) -> Vec<i64> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while nats.last_sequence(STREAM).await.unwrap_or(0) < n {
        assert!(Instant::now() < deadline, "the stream did not reach {n} messages");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut following = nats.follow(STREAM, Start::First).await.expect("follows");
    let mut cursors = Vec::new();
    for _ in 0..n {
        let delivered = following.next().await.expect("a message").expect("no error");
        cursors.push(delivered.event.expect("an event").cursor.parse().expect("a position"));
    }
    cursors
}

async fn outbox_positions(store: &Store) -> Vec<i64> {
    store.outbox_after(0, 10_000).await.expect("reads").iter().map(|e| e.position).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_outbox_reaches_the_stream_in_order_once_and_a_new_leader_goes_on() {
    let Some(server) = NatsServer::start() else { return };
    let Some(db) = TestDb::<Store>::open(Backend::Postgres).await else { return };
    let first = Arc::new(db.store);
    let second = Arc::new(jwt_auth_testdb::connect(&db.url).await);
    let nats = connected(&server).await;

    // A previous leader published the first three rows and died before recording it.
    revoke(&first, "alice", 20).await;
    let outbox = first.outbox_after(0, 3).await.expect("reads");
    nats.ensure_stream(&relay(first.clone(), nats.clone()).0.settings).await.expect("created");
    for entry in &outbox {
        let stored = nats.publish(&event_of(entry, TimeDelta::minutes(15))).await.expect("stored");
        assert!(!stored.duplicate);
    }

    let (leader, leading) = relay(first.clone(), nats.clone());
    let leader = tokio::spawn(leader.run());
    assert_eq!(stream_cursors(&nats, 20).await, outbox_positions(&first).await);
    assert_eq!(first.relay_published().await.expect("reads"), outbox_positions(&first).await[19]);
    assert!(leading.is_leading());

    // A second instance does not lead while the first does.
    let (standby, standing_by) = relay(second.clone(), nats.clone());
    let standby = tokio::spawn(standby.run());
    revoke(&second, "bob", 5).await;
    assert_eq!(stream_cursors(&nats, 25).await, outbox_positions(&first).await);
    assert!(!standing_by.is_leading());

    // The leader dies (its lock goes with its connection): the other takes over, and goes on
    // from the recorded position, each row once.
    leader.abort();
    let _ = leader.await;
    revoke(&second, "carol", 5).await;
    let cursors = stream_cursors(&nats, 30).await;
    assert_eq!(cursors, outbox_positions(&first).await);
    assert!(cursors.windows(2).all(|w| w[0] < w[1]));
    assert!(standing_by.is_leading());
    // Nothing more than the outbox: no message past the thirtieth.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(nats.last_sequence(STREAM).await.expect("info"), 30);
    standby.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_leader_that_loses_nats_stops_leading_and_goes_on_when_it_returns() {
    let Some(mut server) = NatsServer::start() else { return };
    let Some(db) = TestDb::<Store>::open(Backend::Postgres).await else { return };
    let store = Arc::new(db.store);
    let nats = connected(&server).await;
    let (leader, leading) = relay(store.clone(), nats.clone());
    let leader = tokio::spawn(leader.run());
    revoke(&store, "alice", 3).await;
    assert_eq!(stream_cursors(&nats, 3).await, outbox_positions(&store).await);

    server.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    while leading.is_leading() {
        assert!(Instant::now() < deadline, "still leading without NATS");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Written while NATS is away: published once it returns, nothing lost.
    revoke(&store, "alice", 4).await;
    server.resume();
    assert_eq!(stream_cursors(&nats, 7).await, outbox_positions(&store).await);
    leader.abort();
}
