//! Honest 5xx: a fault of the server (here a stored row that does not parse) is a 500
//! `internal_error` whose answer says nothing of the cause, never a 503, which is only for an
//! unreachable database. Beside it, the same request on a sound row succeeds.

use reqwest::StatusCode;

use crate::common::{Backend, PASSWORD, TestApp, TestDb};

crate::http_tests!(a_corrupt_row_is_a_500_that_keeps_its_cause_to_itself);

/// Overwrites the stored roles of `email` with text that is no JSON list, straight in the
/// database, as a bad manual edit or a broken migration would.
async fn corrupt_roles(app: &TestApp, url: &str, email: &str) {
    let sql = format!("UPDATE users SET roles = 'not a json list' WHERE email = '{email}'");
    match app.backend() {
        Backend::Sqlite => {
            use diesel::{Connection, RunQueryDsl, SqliteConnection};
            let path = url.trim_start_matches("sqlite://").to_owned();
            tokio::task::spawn_blocking(move || {
                let mut conn = SqliteConnection::establish(&path).expect("the SQLite file opens");
                diesel::sql_query(sql).execute(&mut conn).expect("the row is updated")
            })
            .await
            .expect("the update runs");
        }
        Backend::Postgres => {
            use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
            let mut conn = AsyncPgConnection::establish(url).await.expect("PostgreSQL connects");
            diesel::sql_query(sql).execute(&mut conn).await.expect("the row is updated");
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
