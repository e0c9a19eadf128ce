//! PostgreSQL: diesel-async over tokio-postgres (pure Rust, so no libpq is linked), pooled with
//! bb8. Migrations run through diesel-async's `AsyncConnectionWrapper` on a blocking thread,
//! under an advisory lock so that instances starting together apply them once.

use diesel::Connection;
use std::future::Future;

use diesel::QueryResult;
use diesel::connection::SimpleConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::StoreError;
use crate::model::StoreOptions;

pub(crate) type Conn = diesel_async::AsyncPgConnection;

macro_rules! write_transaction {
    ($conn:expr, $body:expr) => {
        diesel_async::AsyncConnection::transaction($conn, $body)
    };
}

/// Executes three statements in one round trip: the futures share the connection, so
/// tokio-postgres pipelines them; PostgreSQL runs them in the order given.
pub(crate) async fn execute_pipelined<'c, A, B, C, FA, FB, FC>(
    conn: &'c mut Conn,
    a: A,
    b: B,
    c: C,
) -> (QueryResult<usize>, QueryResult<usize>, QueryResult<usize>)
where
    A: FnOnce(&mut &'c Conn) -> FA,
    B: FnOnce(&mut &'c Conn) -> FB,
    C: FnOnce(&mut &'c Conn) -> FC,
    FA: Future<Output = QueryResult<usize>>,
    FB: Future<Output = QueryResult<usize>>,
    FC: Future<Output = QueryResult<usize>>,
{
    let mut shared: &'c Conn = conn;
    let (fa, fb, fc) = (a(&mut shared), b(&mut shared), c(&mut shared));
    tokio::join!(fa, fb, fc)
}

#[path = "queries.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: the same queries, compiled for this backend
pub(crate) mod queries;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Any constant will do, as long as nothing else in the database uses it.
const MIGRATION_LOCK: i64 = 0x6a77_745f_6175_7468; // "jwt_auth"

#[derive(Clone)]
pub(crate) struct Database {
    pool: Pool<Conn>,
    url: String,
}

impl Database {
    /// A pool that connects on first use, so a server can start (and report "not ready")
    /// while the database is still down.
    pub fn connect(url: &str, options: &StoreOptions) -> Self {
        let mut config = ManagerConfig::default();
        // A broken connection is caught on return to the pool (closed socket, aborted
        // transaction), so checking each one out with an extra `SELECT 1` buys little.
        config.recycling_method = RecyclingMethod::Fast;
        let manager = AsyncDieselConnectionManager::new_with_config(url, config);
        let pool = Pool::builder()
            .max_size(options.max_connections.max(1))
            .connection_timeout(options.acquire_timeout)
            .build_unchecked(manager);
        Self { pool, url: url.to_owned() }
    }

    pub async fn connection(&self) -> Result<PooledConnection<'_, Conn>, StoreError> {
        self.pool.get().await.map_err(StoreError::unavailable)
    }

    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let url = self.url.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn =
                AsyncConnectionWrapper::<Conn>::establish(&url).map_err(StoreError::unavailable)?;
            conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
            let applied = conn
                .run_pending_migrations(MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect())
                .map_err(StoreError::Migration);
            // Closing the connection releases the lock too; this just does it sooner.
            let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"));
            applied
        })
        .await
        .map_err(StoreError::unavailable)?
    }
}
