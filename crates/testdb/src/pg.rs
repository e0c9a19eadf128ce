//! A fresh PostgreSQL database, created under a unique name and dropped (with `FORCE`, so
//! pooled connections do not hold it up) when the value is dropped: each test owns its own.
//! Shared by the tests and the rotation bench.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// Where the tests find PostgreSQL when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl PgDatabase {
    /// Creates a database named `{prefix}_{random}`; `Err` says why PostgreSQL could not be
    /// used (unreachable, refused).
    pub async fn create(prefix: &str) -> Result<Self, String> {
        let admin_url =
            std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let mut conn = admin_connection(&admin_url).await?;
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("CREATE DATABASE failed: {e}"))?;
        let url = jwt_auth_store::postgres_url_with_database(&admin_url, &name);
        Ok(Self { admin_url, name, url })
    }

    /// [`PgDatabase::create`] for a test: `None`, after a loud `SKIPPED` line, when PostgreSQL
    /// cannot be used; but with `CI` set, an unusable PostgreSQL fails the test instead.
    pub async fn for_test(prefix: &str) -> Option<Self> {
        match Self::create(prefix).await {
            Ok(db) => Some(db),
            Err(why) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL is unreachable ({why}) and CI is set")
            }
            Err(why) => {
                eprintln!(
                    "SKIPPED: PostgreSQL unreachable ({why}); set TEST_DATABASE_URL, or CI=1 to \
                     make this a failure"
                );
                None
            }
        }
    }
}

async fn admin_connection(admin_url: &str) -> Result<AsyncPgConnection, String> {
    match tokio::time::timeout(Duration::from_secs(5), AsyncPgConnection::establish(admin_url))
        .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connecting timed out".to_owned()),
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside a runtime (or while panicking): use a thread of our own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime
                .block_on(async {
                    let mut conn = admin_connection(&admin_url).await?;
                    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                        .execute(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<_, String>(())
                })
                .map_err(std::io::Error::other)
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: test database {} was not dropped: {dropped:?}", self.name);
        }
    }
}
