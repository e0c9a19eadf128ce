//! Honest 5xx: a fault of the server (here a stored row that does not parse) is a 500
//! `internal_error` whose answer says nothing of the cause, never a 503, which is only for an
//! unreachable database. Beside it, the same request on a sound row succeeds. And an instance
//! that could not load the revocations fails closed: 503 for every token until it has them.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::common::{Backend, PASSWORD, TestApp, TestDb};

crate::http_tests!(
    a_corrupt_row_is_a_500_that_keeps_its_cause_to_itself,
    an_instance_without_its_revocations_refuses_every_token_with_503_until_it_has_them,
);

/// Overwrites the stored roles of `email` with text that is no JSON list, straight in the
/// database, as a bad manual edit or a broken migration would.
async fn corrupt_roles(app: &TestApp, url: &str, email: &str) {
    let sql = format!("UPDATE users SET roles = 'not a json list' WHERE email = '{email}'");
    execute(app, url, sql).await;
}

/// Runs `sql` straight on the database of `app`.
async fn execute(app: &TestApp, url: &str, sql: String) {
    match app.backend() {
        Backend::Sqlite => {
            use diesel::{Connection, RunQueryDsl, SqliteConnection};
            let path = url.trim_start_matches("sqlite://").to_owned();
            tokio::task::spawn_blocking(move || {
                let mut conn = SqliteConnection::establish(&path).expect("the SQLite file opens");
                diesel::sql_query(sql).execute(&mut conn).expect("the statement runs")
            })
            .await
            .expect("the update runs");
        }
        Backend::Postgres => {
            use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
            let mut conn = AsyncPgConnection::establish(url).await.expect("PostgreSQL connects");
            diesel::sql_query(sql).execute(&mut conn).await.expect("the statement runs");
        }
    }
}

async fn a_corrupt_row_is_a_500_that_keeps_its_cause_to_itself(db: TestDb) {
    let url = db.url.clone();
    let app = TestApp::start(db).await;
    app.register("sound@example.com").await;
    app.register("broken@example.com").await;
    corrupt_roles(&app, &url, "broken@example.com").await;

    let sound = app.try_login("sound@example.com", PASSWORD).await;
    assert_eq!(sound.status, StatusCode::OK, "{}", sound.text);
    let broken = app.try_login("broken@example.com", PASSWORD).await;
    broken.assert_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
    assert_eq!(broken.body["message"], "internal error");
    for leak in ["json", "roles", "corrupt", "users"] {
        assert!(!broken.text.to_lowercase().contains(leak), "{leak}: {}", broken.text);
    }
    assert!(broken.header("retry-after").is_none(), "a fault is no outage");
}

async fn an_instance_without_its_revocations_refuses_every_token_with_503_until_it_has_them(
    db: TestDb,
) {
    let url = db.url.clone();
    let a = TestApp::start(db).await;
    a.register("alice@example.com").await;
    let pair = a.login("alice@example.com").await;
    // The revocation feed cannot be read when B starts (as if the database failed between
    // B reading its keys and its revocations).
    execute(&a, &url, "ALTER TABLE revocations RENAME TO revocations_away".into()).await;
    let b = a.sibling_unready().await;
    let ready = crate::common::send(b.get("/ready")).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ready.text);
    assert_eq!(ready.body["revocations_loaded"], false);
    let refused = b.me(&pair.access).await;
    refused.assert_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(refused.header("retry-after"), Some("1"));
    // Positive control: A, which loaded them, accepts the same token.
    a.assert_accepted(&pair.access).await;

    // Once the feed reads again, B loads it within its next second and accepts the token.
    execute(&a, &url, "ALTER TABLE revocations_away RENAME TO revocations".into()).await;
    let started = Instant::now();
    b.wait_ready().await;
    eprintln!("B loaded the revocations {:?} after the feed came back", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    b.assert_accepted(&pair.access).await;
}
