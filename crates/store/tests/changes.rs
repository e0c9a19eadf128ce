//! The pushed change feed: on PostgreSQL a write that adds to the revocation feed, changes a
//! user or changes the signing keys is heard of, on commit, by another store on the same database; a rolled-back or
//! unrelated write is not; listening resumes by itself after the server restarts. SQLite has
//! nothing to listen on.

use std::time::Duration;

use jwt_auth_store::{Change, Changes, UserUpdate};
use jwt_core::{RevocationStore, RevokeReason};

use crate::common::cluster::Cluster;
use crate::common::{Backend, TestDb, connect, secs, session, signing_key, t0, user};

/// Far more than a notification takes; only a bound, so that a lost one fails the test.
const WITHIN: Duration = Duration::from_secs(5);

/// The next change other than a resync, or `None` if none came within `wait`.
async fn next_change(changes: &mut Changes, wait: Duration) -> Option<Change> {
    tokio::time::timeout(wait, async {
        loop {
            match changes.next().await.expect("the listener runs") {
                Change::Resync => continue,
                other => return other,
            }
        }
    })
    .await
    .ok()
}

/// Waits for the resync that says listening has started.
async fn listening(changes: &mut Changes) {
    let first = tokio::time::timeout(WITHIN, changes.next()).await.expect("listening in time");
    assert_eq!(first, Some(Change::Resync));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_has_no_change_feed() {
    let db = TestDb::open(Backend::Sqlite).await.expect("SQLite is always there");
    assert!(db.store.changes().is_none());
    assert_eq!(db.store.change_notifications(), None, "nothing to be up or down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_revocations_and_user_changes_are_pushed_to_other_stores() {
    let Some(db) = TestDb::open(Backend::Postgres).await else { return };
    let other = connect(&db.url).await;
    let mut changes = other.changes().expect("PostgreSQL has a change feed");
    listening(&mut changes).await;

    // Writes that change neither feed notify nothing.
    let alice = user(&db.store, "alice@example.com").await;
    session(&db.store, "s1", &alice.id, t0(), secs(3600)).await;
    assert_eq!(next_change(&mut changes, Duration::from_millis(300)).await, None);

    // A logout is heard of, with the writer's time.
    db.store.revoke_session("s1", RevokeReason::Logout, t0()).await.expect("revoked");
    let heard = next_change(&mut changes, WITHIN).await;
    assert!(matches!(heard, Some(Change::Revocations { sent_at: Some(_) })), "{heard:?}");

    // A role change names the user.
    let update = UserUpdate { roles: Some(vec!["admin".into()]), disabled: None };
    db.store.update_user(&alice.id, &update, t0()).await.expect("updated").expect("alice");
    let heard = next_change(&mut changes, WITHIN).await;
    assert!(matches!(&heard, Some(Change::User { id, .. }) if *id == alice.id), "{heard:?}");

    // An update of no user rolls back: nothing is heard.
    let missing = db.store.update_user("nobody", &update, t0()).await.expect("no error");
    assert!(missing.is_none());
    assert_eq!(next_change(&mut changes, Duration::from_millis(300)).await, None);

    // Disabling revokes too: both are heard of.
    let disable = UserUpdate { roles: None, disabled: Some(true) };
    db.store.update_user(&alice.id, &disable, t0()).await.expect("disabled");
    let mut heard = vec![
        next_change(&mut changes, WITHIN).await.expect("a change"),
        next_change(&mut changes, WITHIN).await.expect("another change"),
    ];
    heard.sort_by_key(|c| matches!(c, Change::User { .. }));
    assert!(matches!(heard[0], Change::Revocations { .. }), "{heard:?}");
    assert!(matches!(&heard[1], Change::User { id, .. } if *id == alice.id), "{heard:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_key_changes_are_pushed_to_other_stores() {
    let Some(db) = TestDb::open(Backend::Postgres).await else { return };
    let other = connect(&db.url).await;
    let mut changes = other.changes().expect("PostgreSQL has a change feed");
    listening(&mut changes).await;
    let keys_changed =
        |heard: &Option<Change>| matches!(heard, Some(Change::Keys { sent_at: Some(_) }));

    // The first keys, a rotation and a revocation are each heard of.
    assert!(db.store.add_first_signing_keys(&[signing_key("a", t0())]).await.expect("stored"));
    assert!(keys_changed(&next_change(&mut changes, WITHIN).await));
    db.store.rotate_signing_key(&signing_key("b", t0() + secs(60))).await.expect("rotated");
    assert!(keys_changed(&next_change(&mut changes, WITHIN).await));
    db.store
        .revoke_signing_key("a", t0(), t0() + secs(3600))
        .await
        .expect("runs")
        .expect("revoked");
    // A revocation is also an entry of the revocation feed: both are heard of.
    assert!(keys_changed(&next_change(&mut changes, WITHIN).await));
    let heard = next_change(&mut changes, WITHIN).await;
    assert!(matches!(heard, Some(Change::Revocations { .. })), "{heard:?}");

    // Writes that change no key are silent: first keys when some exist, a revocation of a
    // revoked or unknown key.
    assert!(!db.store.add_first_signing_keys(&[signing_key("c", t0())]).await.expect("runs"));
    db.store
        .revoke_signing_key("a", t0(), t0() + secs(3600))
        .await
        .expect("runs")
        .expect("still there");
    assert!(
        db.store.revoke_signing_key("nope", t0(), t0() + secs(3600)).await.expect("runs").is_none()
    );
    assert_eq!(next_change(&mut changes, Duration::from_millis(300)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_listening_resumes_after_a_restart() {
    let Some(mut cluster) = Cluster::for_test() else { return };
    let store = connect(&cluster.url).await;
    let mut changes = store.changes().expect("PostgreSQL has a change feed");
    listening(&mut changes).await;
    assert_eq!(store.change_notifications(), Some(true), "listening, and said so");
    let alice = user(&store, "alice@example.com").await;

    cluster.stop();
    // The lost connection shows, for /ready and the metrics.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while store.change_notifications() != Some(false) {
        assert!(std::time::Instant::now() < deadline, "still said to be listening");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.start();
    // Listening again is announced with a resync, so that the follower catches up.
    let resync = tokio::time::timeout(Duration::from_secs(15), changes.next()).await;
    assert_eq!(resync.expect("listening again in time"), Some(Change::Resync));
    assert_eq!(store.change_notifications(), Some(true), "listening again");
    let store = connect(&cluster.url).await;
    store.revoke_user(&alice.id, RevokeReason::Admin, t0()).await.expect("revoked");
    let heard = next_change(&mut changes, WITHIN).await;
    assert!(matches!(heard, Some(Change::Revocations { .. })), "{heard:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_store_told_not_to_notify_writes_without_notifying() {
    let Some(db) = TestDb::open(Backend::Postgres).await else { return };
    let options = jwt_auth_store::StoreOptions { notify_changes: false, ..Default::default() };
    let quiet = jwt_auth_store::Store::connect_with(&db.url, options).await.expect("opens");
    let listener = connect(&db.url).await;
    let mut changes = listener.changes().expect("PostgreSQL has a change feed");
    listening(&mut changes).await;
    let alice = user(&db.store, "alice@example.com").await;
    session(&db.store, "s1", &alice.id, t0(), secs(3600)).await;
    session(&db.store, "s2", &alice.id, t0(), secs(3600)).await;

    // The quiet store's logout is recorded, and nobody hears of it.
    quiet.revoke_session("s1", RevokeReason::Logout, t0()).await.expect("revoked");
    assert_eq!(next_change(&mut changes, Duration::from_millis(300)).await, None);
    assert_eq!(quiet.outbox_after(0, 10).await.expect("reads").len(), 1, "in the outbox");
    // Positive control: the same write through a notifying store is heard.
    db.store.revoke_session("s2", RevokeReason::Logout, t0()).await.expect("revoked");
    let heard = next_change(&mut changes, WITHIN).await;
    assert!(matches!(heard, Some(Change::Revocations { .. })), "{heard:?}");
}
