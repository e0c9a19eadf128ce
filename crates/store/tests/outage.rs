//! PostgreSQL going away and coming back under a running store: calls fail with
//! `Unavailable` within a second while it is down, and succeed again by themselves once it is
//! back, on the same `Store`. The server is a private cluster that the tests stop and start; a
//! pool that is merely busy, on the shared server, is not taken for an outage.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use jwt_auth_store::{NewUser, PasswordHash, Store, StoreError, StoreOptions};

use crate::common::cluster::Cluster;
use crate::common::pg::PgDatabase;
use crate::common::{self, t0, user};

/// The contract's bound on a 503 while the database is unreachable.
const WITHIN: Duration = Duration::from_secs(1);

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.to_owned(),
        password_hash: PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
        roles: vec!["user".to_owned()],
    }
}

/// Asserts that a call started at `started` failed with `Unavailable` within [`WITHIN`].
fn assert_unavailable_at_once<T: Debug>(
    call: &str,
    started: Instant,
    result: Result<T, StoreError>,
) {
    let took = started.elapsed();
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{call}: {result:?}");
    assert!(took < WITHIN, "{call} took {took:?} to fail");
    eprintln!("{call}: unavailable after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_at_once_while_postgres_is_down_and_succeed_when_it_is_back() {
    let Some(mut cluster) = Cluster::for_test() else { return };
    let store = common::connect(&cluster.url).await;

    // Positive control: the calls below succeed while the server runs (and leave connections
    // in the pool, which the outage then closes under it).
    user(&store, "alice@example.com").await;
    assert!(store.user_by_email("alice@example.com").await.expect("a lookup").is_some());
    store.ping().await.expect("a ping");

    cluster.stop();
    let started = Instant::now();
    let found = store.user_by_email("alice@example.com").await;
    assert_unavailable_at_once("user_by_email", started, found);
    let started = Instant::now();
    assert_unavailable_at_once("ping", started, store.ping().await);
    let started = Instant::now();
    let created = store.create_user(&new_user("bob@example.com"), t0()).await;
    assert_unavailable_at_once("create_user", started, created);

    cluster.start();
    let restarted = Instant::now();
    loop {
        match store.user_by_email("alice@example.com").await {
            Ok(found) => {
                assert!(found.is_some(), "alice is still there");
                break;
            }
            Err(StoreError::Unavailable(_)) if restarted.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no recovery {:?} after the restart: {e}", restarted.elapsed()),
        }
    }
    eprintln!("recovered {:?} after the restart", restarted.elapsed());
    store.ping().await.expect("a ping after the restart");
    store.create_user(&new_user("bob@example.com"), t0()).await.expect("a write after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_calls_costs_no_call() {
    let Some(mut cluster) = Cluster::for_test() else { return };
    let store = common::connect(&cluster.url).await;
    user(&store, "alice@example.com").await;
    store.ping().await.expect("a ping");

    // The pooled connections die with the server; none is handed out again.
    cluster.stop();
    cluster.start();
    let found = store.user_by_email("alice@example.com").await.expect("a lookup after a restart");
    assert!(found.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_pool_is_not_an_outage() {
    let Some(db) = PgDatabase::for_test("jwt_store_outage").await else { return };
    let acquire_timeout = Duration::from_millis(300);
    let options = StoreOptions { max_connections: 1, acquire_timeout, ..StoreOptions::default() };
    let store = Store::connect_with(&db.url, options).await.expect("the store opens");
    store.migrate().await.expect("the migrations apply");
    user(&store, "alice@example.com").await;

    // Another session locks `users`: a lookup takes the pool's one connection and waits.
    let mut locker = AsyncPgConnection::establish(&db.url).await.expect("a connection");
    locker.batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE").await.expect("lock");
    let blocked = tokio::spawn({
        let store = store.clone();
        async move { store.user_by_email("alice@example.com").await }
    });
    let waiting = Instant::now();
    loop {
        let waiters: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT count(*) FROM pg_locks WHERE NOT granted)",
        ))
        .get_result(&mut locker)
        .await
        .expect("pg_locks");
        if waiters > 0 {
            break;
        }
        assert!(waiting.elapsed() < Duration::from_secs(10), "the lookup never waited on the lock");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A second call finds no free connection: it waits for one, in vain, and is refused.
    let started = Instant::now();
    let refused = store.ping().await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
    assert!(started.elapsed() >= acquire_timeout - Duration::from_millis(50), "it waited");

    // That was no outage: once the connection is free, the next call succeeds at once.
    locker.batch_execute("COMMIT").await.expect("unlock");
    blocked.await.expect("the lookup ends").expect("the lookup succeeds");
    store.ping().await.expect("a ping right after the busy spell");
}
