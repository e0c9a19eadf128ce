//! Load run: refresh-token rotations per second through `Store::rotate` at 1, 8 and 32
//! concurrent callers (each rotating its own session's chain), on SQLite and on PostgreSQL,
//! printed beside the raw cost of one empty transaction on the same database.
//!
//! `cargo bench -p jwt-auth-benches --bench rotation` (PostgreSQL from `TEST_DATABASE_URL`, or
//! the tests' default; skipped with a note when unreachable). `ROTATION_BENCH_SECS` sets the
//! length of each measurement (default 3).
#![allow(clippy::disallowed_methods)] // test fixtures at the system's time

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use diesel::{Connection, SqliteConnection};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use jwt_auth_store::{NewUser, PasswordHash, Store};
use jwt_auth_testdb::pg;
use jwt_core::{ClientInfo, NewRefreshToken, NewSession, RefreshTokenStore, SessionStore};

const CALLERS: [usize; 3] = [1, 8, 32];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let secs = std::env::var("ROTATION_BENCH_SECS").ok().and_then(|s| s.parse().ok());
    let window = Duration::from_secs(secs.unwrap_or(3));
    runtime.block_on(async {
        println!(
            "{:<10} {:>22} {:>16} {:>16} {:>16}",
            "backend", "empty transaction", "rotations/s @1", "@8", "@32"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("bench.db");
        let url = format!("sqlite://{}", path.display());
        let store = open(&url).await;
        let empty = sqlite_empty_transaction(path.to_str().expect("a UTF-8 path"), window);
        report("sqlite", empty, &rotations(&store, window).await);
        drop(store);

        match pg::PgDatabase::create("jwt_store_bench").await {
            Ok(db) => {
                let store = open(&db.url).await;
                let empty = pg_empty_transaction(&db.url, window).await;
                report("postgres", empty, &rotations(&store, window).await);
                drop(store);
            }
            Err(why) => println!("postgres   skipped: PostgreSQL unreachable ({why})"),
        }
    });
}

async fn open(url: &str) -> Store {
    let store = Store::connect(url).await.expect("the store opens");
    store.migrate().await.expect("the migrations apply");
    store
}

fn report(backend: &str, empty: Duration, rates: &[f64]) {
    let empty = format!("{:.1} µs ({:.0}/s)", micros(empty), 1.0 / empty.as_secs_f64());
    let [one, eight, many] = rates else { unreachable!("one rate per caller count") };
    println!("{backend:<10} {empty:>22} {one:>16.0} {eight:>16.0} {many:>16.0}");
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Rotations per second for each number of callers in [`CALLERS`].
async fn rotations(store: &Store, window: Duration) -> Vec<f64> {
    let store = Arc::new(store.clone());
    let user = NewUser {
        email: format!("bench-{}@example.com", uuid::Uuid::new_v4()),
        password_hash: PasswordHash::new("$argon2id$bench"),
        roles: vec!["user".into()],
    };
    let user = store.create_user(&user, Utc::now()).await.expect("a user");
    let mut rates = Vec::new();
    for callers in CALLERS {
        let mut chains = Vec::new();
        for _ in 0..callers {
            chains.push(start_chain(&store, &user.id).await);
        }
        let deadline = Instant::now() + window;
        let started = Instant::now();
        let tasks: Vec<_> = chains
            .into_iter()
            .map(|(session_id, mut current)| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut done = 0_u64;
                    while Instant::now() < deadline {
                        let next = token(&session_id, Some(current.clone()));
                        store.rotate(&current, &next, Utc::now()).await.expect("rotation");
                        current = next.jti;
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.expect("a caller");
        }
        rates.push(total as f64 / started.elapsed().as_secs_f64());
    }
    rates
}

async fn start_chain(store: &Store, user_id: &str) -> (String, String) {
    let now = Utc::now();
    let session = NewSession {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.to_owned(),
        created_at: now,
        expires_at: now + TimeDelta::days(30),
        client: ClientInfo::default(),
        grant: None,
        code: None,
    };
    let first = token(&session.id, None);
    store.create_session(&session, &first).await.expect("a session");
    (session.id, first.jti)
}

fn token(session_id: &str, parent: Option<String>) -> NewRefreshToken {
    let now = Utc::now();
    NewRefreshToken {
        jti: uuid::Uuid::new_v4().to_string(),
        session_id: session_id.to_owned(),
        parent_jti: parent,
        issued_at: now,
        expires_at: now + TimeDelta::days(7),
        client: ClientInfo {
            ip: Some("10.0.0.1".into()),
            user_agent: Some("bench".into()),
            proven_key: None,
        },
    }
}

/// Mean time of `BEGIN IMMEDIATE; COMMIT` on one connection to the bench's file, with the
/// store's pragmas.
fn sqlite_empty_transaction(path: &str, window: Duration) -> Duration {
    let mut conn = SqliteConnection::establish(path).expect("a SQLite connection");
    diesel::connection::SimpleConnection::batch_execute(
        &mut conn,
        "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
    )
    .expect("pragmas");
    let (started, mut n) = (Instant::now(), 0_u32);
    while started.elapsed() < window / 3 {
        conn.immediate_transaction(|_| Ok::<_, diesel::result::Error>(())).expect("a transaction");
        n += 1;
    }
    started.elapsed() / n
}

/// Mean time of `BEGIN; COMMIT` on one connection to the bench's database.
async fn pg_empty_transaction(url: &str, window: Duration) -> Duration {
    let mut conn = AsyncPgConnection::establish(url).await.expect("a PostgreSQL connection");
    let (started, mut n) = (Instant::now(), 0_u32);
    while started.elapsed() < window / 3 {
        conn.transaction(async |_| Ok::<_, diesel::result::Error>(()))
            .await
            .expect("a transaction");
        n += 1;
    }
    started.elapsed() / n
}
