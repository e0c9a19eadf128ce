//! The feed table as the change stream's outbox: every revocation, user change and key change
//! is one row, in commit order; the revocation feed serves only the revocations; the relay's
//! progress only moves forward; and on PostgreSQL one instance at a time leads the relay.

use jwt_auth_store::{OutboxChange, UserUpdate};
use jwt_auth_testdb::backend_tests;
use jwt_core::{Revocation, RevocationStore, RevokeReason};

use crate::common::{Backend, TestDb, connect, secs, session, signing_key, t0, user};

backend_tests!(
    every_change_is_one_outbox_row_in_order_and_the_revocation_feed_keeps_its_kinds,
    the_relay_progress_only_moves_forward,
);

async fn every_change_is_one_outbox_row_in_order_and_the_revocation_feed_keeps_its_kinds(
    db: TestDb,
) {
    let store = &db.store;
    assert!(store.outbox_after(0, 100).await.expect("reads").is_empty());
    let alice = user(store, "alice@example.com").await;
    session(store, "s1", &alice.id, t0(), secs(3600)).await;

    store.add_first_signing_keys(&[signing_key("a", t0())]).await.expect("stored");
    store.revoke_session("s1", RevokeReason::Logout, t0()).await.expect("revoked");
    let roles = UserUpdate { roles: Some(vec!["admin".into()]), disabled: None };
    store.update_user(&alice.id, &roles, t0()).await.expect("updated").expect("alice");
    store.rotate_signing_key(&signing_key("b", t0() + secs(60))).await.expect("rotated");
    // Nothing changed: no row.
    assert!(store.update_user("nobody", &roles, t0()).await.expect("runs").is_none());

    let outbox = store.outbox_after(0, 100).await.expect("reads");
    let changes: Vec<_> = outbox.iter().map(|e| e.change.clone()).collect();
    assert_eq!(
        changes,
        vec![
            OutboxChange::KeysChanged,
            OutboxChange::Revocation(Revocation::Session {
                id: "s1".into(),
                expires_at: t0() + secs(3600)
            }),
            OutboxChange::UserChanged(alice.id.clone()),
            OutboxChange::KeysChanged,
        ]
    );
    let positions: Vec<i64> = outbox.iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");

    // Paged by position and limit.
    let page = store.outbox_after(positions[0], 2).await.expect("reads");
    assert_eq!(page.iter().map(|e| e.position).collect::<Vec<_>>(), positions[1..3]);

    // The revocation feed serves the revocation only; its head is the newest row of all.
    let feed = store.revocation_feed(0, t0()).await.expect("reads");
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].position, positions[1]);
    assert_eq!(store.revocation_feed_head().await.expect("reads"), positions[3]);

    // Rows of changes are pruned a day on; the revocation when its session ends.
    let day = secs(24 * 3600);
    while store.prune_expired(t0() + day + secs(1), 100).await.expect("prunes") > 0 {}
    assert!(store.outbox_after(0, 100).await.expect("reads").is_empty());
}

async fn the_relay_progress_only_moves_forward(db: TestDb) {
    let store = &db.store;
    assert_eq!(store.relay_published().await.expect("reads"), 0);
    store.set_relay_published(5).await.expect("recorded");
    assert_eq!(store.relay_published().await.expect("reads"), 5);
    store.set_relay_published(3).await.expect("no error");
    assert_eq!(store.relay_published().await.expect("reads"), 5, "never back");
    store.set_relay_published(9).await.expect("recorded");
    assert_eq!(store.relay_published().await.expect("reads"), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_leads_alone() {
    let db = TestDb::open(Backend::Sqlite).await.expect("SQLite is always there");
    let first = db.store.relay_leadership().await.expect("runs").expect("held");
    assert!(first.is_held());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_one_leader_at_a_time_and_another_takes_over() {
    let Some(db) = TestDb::open(Backend::Postgres).await else { return };
    let other = connect(&db.url).await;
    let leader = db.store.relay_leadership().await.expect("runs").expect("free, so taken");
    assert!(leader.is_held());
    assert!(other.relay_leadership().await.expect("runs").is_none(), "held by the first");
    assert!(db.store.relay_leadership().await.expect("runs").is_none(), "even from the same store");
    drop(leader);
    // The lock goes with its connection; the server notices the close at once, or nearly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let taken = loop {
        if let Some(taken) = other.relay_leadership().await.expect("runs") {
            break taken;
        }
        assert!(std::time::Instant::now() < deadline, "never released");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(taken.is_held());
}
