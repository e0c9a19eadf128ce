//! The databases of the store's and the server's tests: each test gets one of its own, a
//! temporary SQLite file or a fresh PostgreSQL database ([`TestDb`]), and [`backend_tests!`]
//! runs each test once on either [`Backend`]. [`pg`] creates and drops the PostgreSQL
//! databases; [`cluster`] runs a private PostgreSQL cluster that a test may stop and start; [`nats`] a
//! NATS server with JetStream.
//!
//! When PostgreSQL is unreachable, its tests fail if `CI` is set and are otherwise skipped
//! with a loud line on stderr.
//!
//! A development dependency of the tests only (and of the store's rotation bench).

pub mod cluster;
pub mod nats;
pub mod pg;

use std::future::Future;

use jwt_auth_store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What removes the database when the [`TestDb`] goes.
#[allow(dead_code)] // the values are held for their `Drop` only
enum Guard {
    Sqlite(tempfile::TempDir),
    Postgres(pg::PgDatabase),
    /// Someone else owns the database.
    Shared,
    /// The database was dropped under whoever still uses it.
    Dropped,
}

/// A database that lives as long as this value, and what the test holds open on it: nothing
/// (`TestDb`, for a server that opens its own store), or a migrated store (`TestDb<Store>`,
/// for the store's tests).
pub struct TestDb<S = ()> {
    // Declared before the guard: the store's connections close before the database goes.
    pub store: S,
    pub url: String,
    pub backend: Backend,
    guard: Guard,
}

/// What a [`TestDb`] holds open on its database, opened by [`TestDb::open`].
pub trait OnDatabase: Sized {
    fn open(url: &str) -> impl Future<Output = Self> + Send;
}

/// Nothing: the test (a server) opens the database itself.
impl OnDatabase for () {
    async fn open(_url: &str) {}
}

/// A store on the database, migrated.
impl OnDatabase for Store {
    fn open(url: &str) -> impl Future<Output = Self> + Send {
        connect(url)
    }
}

impl<S: OnDatabase> TestDb<S> {
    /// A fresh database, with `S` opened on it. `None` when the test is to be skipped
    /// (PostgreSQL unreachable, `CI` unset).
    pub async fn open(backend: Backend) -> Option<Self> {
        let (url, guard) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("jwt-auth.db").display());
                (url, Guard::Sqlite(dir))
            }
            Backend::Postgres => {
                let db = pg::PgDatabase::for_test("jwt_auth_test").await?;
                (db.url.clone(), Guard::Postgres(db))
            }
        };
        let store = S::open(&url).await;
        Some(Self { store, url, backend, guard })
    }
}

impl TestDb {
    /// A SQLite file at `url` that someone else owns (and cleans up).
    pub fn sqlite_at(url: &str) -> Self {
        Self::owned_elsewhere(url, Backend::Sqlite)
    }

    /// A PostgreSQL database at `url` that someone else owns (a private cluster).
    pub fn postgres_at(url: &str) -> Self {
        Self::owned_elsewhere(url, Backend::Postgres)
    }

    /// The same database, owned by `self`: for a second server on it.
    pub fn shared(&self) -> Self {
        Self::owned_elsewhere(&self.url, self.backend)
    }

    fn owned_elsewhere(url: &str, backend: Backend) -> Self {
        Self { store: (), url: url.to_owned(), backend, guard: Guard::Shared }
    }
}

impl<S> TestDb<S> {
    /// Drops the database now, if this value owns it, under whoever still uses it: a
    /// PostgreSQL database goes with its connections (`DROP DATABASE … WITH (FORCE)`).
    pub fn drop_database(&mut self) {
        self.guard = Guard::Dropped;
    }
}

impl TestDb<Store> {
    /// Closes the store and opens the same database again.
    pub async fn reopen(&mut self) {
        let _ = std::mem::replace(&mut self.store, connect(&self.url).await);
    }
}

/// A store on `url`, migrated.
pub async fn connect(url: &str) -> Store {
    let store = Store::connect(url).await.expect("the store opens");
    store.migrate().await.expect("the migrations apply");
    store
}

/// Runs each named `async fn(TestDb<S>)` once on SQLite and once on PostgreSQL, as tests named
/// `sqlite::NAME` and `postgres::NAME`; `S` is what the function takes (see [`TestDb`]).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::TestDb::open($crate::Backend::Sqlite).await;
                    super::$name(db.expect("SQLite is always there")).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::TestDb::open($crate::Backend::Postgres).await {
                        super::$name(db).await;
                    }
                }
            )+
        }
    };
}
