//! PostgreSQL: diesel-async over tokio-postgres (pure Rust, so no libpq is linked), pooled with
//! bb8. Migrations run through diesel-async's `AsyncConnectionWrapper` on a blocking thread,
//! under an advisory lock so that instances starting together apply them once.
//! A database found unreachable is declared down: calls then fail at once, instead of each
//! waiting on the pool, until a background probe connects again.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::result::DatabaseErrorKind;
use diesel::{ConnectionError, ConnectionResult, QueryResult};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::bb8::{Pool, PooledConnection, RunError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, PoolableConnection, RecyclingMethod,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::Notify;

use crate::changes::{self, Changes, Listener};
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

/// Notifies the change channel, to be delivered when the surrounding transaction commits:
/// `KIND:MILLIS[:USER_ID]`, with the database's clock in milliseconds (see `changes.rs`).
/// Not on a connection where `jwt_auth.notify` is `off` (`StoreOptions::notify_changes`).
pub(crate) async fn notify_change(
    conn: &mut Conn,
    kind: &str,
    user_id: Option<&str>,
) -> QueryResult<()> {
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;
    let suffix = user_id.map(|id| format!(":{id}")).unwrap_or_default();
    diesel::sql_query(
        "SELECT pg_notify($1, $2 || ':' || floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint || $3) \
         WHERE current_setting('jwt_auth.notify', true) IS DISTINCT FROM 'off'",
    )
    .bind::<Text, _>(changes::CHANNEL)
    .bind::<Text, _>(kind)
    .bind::<Text, _>(suffix)
    .execute(conn)
    .await?;
    Ok(())
}

/// Serializes the transactions that write to the revocation feed, until they end: the
/// identity column hands out ids in the order the lock is taken, so they commit in id order
/// and a reader that follows the feed by id never skips an id committed late.
pub(crate) async fn serialize_feed_writes(conn: &mut Conn) -> QueryResult<()> {
    advisory_xact_lock(conn, FEED_LOCK).await
}

/// Serializes the transactions that write signing keys, until they end, across every instance
/// on the database: of instances that start together on an empty key table exactly one stores
/// the first keys (the others then find them), and two rotations never leave two active keys
/// (at READ COMMITTED a rotation would not see the key another one just added).
pub(crate) async fn serialize_key_writes(conn: &mut Conn) -> QueryResult<()> {
    advisory_xact_lock(conn, KEYS_LOCK).await
}

async fn advisory_xact_lock(conn: &mut Conn, lock: i64) -> QueryResult<()> {
    use diesel::sql_types::BigInt;
    use diesel_async::RunQueryDsl;
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(lock)
        .execute(conn)
        .await?;
    Ok(())
}

/// The advisory lock of [`serialize_feed_writes`]; nothing else in the database uses it.
const FEED_LOCK: i64 = 0x6a77_745f_6665_6564; // "jwt_feed"
/// The session advisory lock the relay's leader holds; nothing else in the database uses it.
const RELAY_LOCK: i64 = 0x6a77_745f_7265_6c79; // "jwt_rely"
/// The advisory lock of [`serialize_key_writes`]; nothing else in the database uses it.
const KEYS_LOCK: i64 = 0x6a77_745f_6b65_7973; // "jwt_keys"

#[path = "queries.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: the same queries, compiled for this backend
pub(crate) mod queries;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Any constant will do, as long as nothing else in the database uses it.
const MIGRATION_LOCK: i64 = 0x6a77_745f_6175_7468; // "jwt_auth"

/// How often the background probe tries to connect while the database is down.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// What a call is told while the database is known to be down.
const DOWN: &str = "the database is unreachable; reconnecting in the background";

#[derive(Clone)]
pub(crate) struct Database {
    pool: Pool<Conn>,
    url: String,
    outage: Arc<Outage>,
    acquire_timeout: Duration,
    connect_timeout: Duration,
    /// The one listening connection, started by the first call to `changes`.
    listener: Arc<OnceLock<Option<Arc<Listener>>>>,
}

impl Database {
    /// A pool that connects on first use, so a server can start (and report "not ready")
    /// while the database is still down.
    ///
    /// Waiting and giving up are told apart: a call that finds every connection busy waits up
    /// to `acquire_timeout` and is then refused, but the database is not declared down for
    /// it (a pool that is merely busy is not an outage, and declaring one would refuse every
    /// other call too). What declares it down is evidence that it cannot be reached: a
    /// connection attempt that fails or takes longer than `connect_timeout` (reported to the
    /// pool's error sink), or a query whose connection broke under it. Either wakes every call
    /// waiting on the pool at once, so no call waits longer than one connection attempt for
    /// an unreachable database, however long `acquire_timeout` is.
    pub fn connect(url: &str, options: &StoreOptions) -> Self {
        let outage = Arc::new(Outage {
            down: AtomicBool::new(false),
            went_down: Notify::new(),
            url: url.to_owned(),
            connect_timeout: options.connect_timeout,
        });
        let mut config = ManagerConfig::<Conn>::default();
        // No `SELECT 1` on check-out: a connection that broke while idle in the pool (the
        // server went away, or restarted) is known to be closed without a round trip, and is
        // dropped here; one that breaks during a query is caught on return to the pool.
        // `is_broken` is doc-hidden in diesel-async 0.9, but it is the very check its bb8
        // glue makes on return (`has_broken`); only the moment differs.
        config.recycling_method = RecyclingMethod::CustomFunction(Box::new(|conn| {
            let checked = if PoolableConnection::is_broken(conn) {
                Err(diesel::result::Error::DatabaseError(
                    DatabaseErrorKind::ClosedConnection,
                    Box::new("the pooled connection was closed while idle".to_owned()),
                ))
            } else {
                Ok(())
            };
            Box::pin(std::future::ready(checked))
        }));
        let connect_timeout = options.connect_timeout;
        let notify = options.notify_changes;
        config.custom_setup =
            Box::new(move |url| Box::pin(establish(url.to_owned(), connect_timeout, notify)));
        let manager = AsyncDieselConnectionManager::new_with_config(url, config);
        let pool = Pool::builder()
            .max_size(options.max_connections.max(1))
            .connection_timeout(options.acquire_timeout)
            // The probe retries while the database is down; bb8's own retries would only
            // keep failing attempts going in the background.
            .retry_connection(false)
            .error_sink(Box::new(OutageSink(Arc::clone(&outage))))
            .build_unchecked(manager);
        Self {
            pool,
            url: url.to_owned(),
            outage,
            acquire_timeout: options.acquire_timeout,
            connect_timeout,
            listener: Arc::new(OnceLock::new()),
        }
    }

    /// The changes notified by every instance's writes, from one dedicated connection (not
    /// the pool's) shared by every receiver. `None` outside a tokio runtime.
    pub fn changes(&self) -> Option<Changes> {
        self.listener
            .get_or_init(|| Listener::start(&self.url, self.connect_timeout))
            .as_ref()
            .map(Listener::subscribe)
    }

    /// Takes the relay's advisory lock on a connection of its own (see
    /// [`Leadership`](crate::leadership::Leadership)).
    pub async fn relay_leadership(
        &self,
    ) -> Result<Option<crate::leadership::Leadership>, StoreError> {
        crate::leadership::Leadership::try_take(&self.url, RELAY_LOCK, self.connect_timeout)
            .await
            .map_err(StoreError::unavailable)
    }

    /// Whether the change listener has `LISTEN` in place now (starting it if it was not).
    pub fn is_listening(&self) -> bool {
        let listener =
            self.listener.get_or_init(|| Listener::start(&self.url, self.connect_timeout));
        listener.as_ref().is_some_and(|listener| listener.is_listening())
    }

    /// A pooled connection; at once [`StoreError::Unavailable`] while the database is down.
    pub async fn connection(&self) -> Result<PooledConnection<'_, Conn>, StoreError> {
        // Registered before the check, so that an outage declared in between still ends
        // the wait below.
        let went_down = self.outage.went_down.notified();
        if self.outage.is_down() {
            return Err(StoreError::unavailable(DOWN));
        }
        tokio::select! {
            pooled = self.pool.get() => pooled.map_err(|e| match e {
                RunError::User(e) => {
                    self.outage.begin(&e);
                    StoreError::unavailable(e)
                }
                RunError::TimedOut => StoreError::unavailable(format!(
                    "no database connection was free within {:?}",
                    self.acquire_timeout
                )),
            }),
            () = went_down => Err(StoreError::unavailable(DOWN)),
        }
    }

    /// Passes on the result of a query on `conn`, declaring the database down when the query
    /// failed for want of it: a lost connection, or an error after which the connection is
    /// closed (a server shutting down ends its sessions with a FATAL error of its own).
    pub fn observe<T>(
        &self,
        conn: &mut Conn,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match result {
            Err(StoreError::Unavailable(e)) => {
                self.outage.begin(&e);
                Err(StoreError::Unavailable(e))
            }
            Err(StoreError::Query(e)) if PoolableConnection::is_broken(conn) => {
                self.outage.begin(&e);
                Err(StoreError::unavailable(e))
            }
            other => other,
        }
    }

    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        // Connected here, bounded by the connect timeout (the blocking wrapper's own connect
        // has no bound, and a server that accepts and never answers would hold it for ever).
        let conn = connect_once(&self.url, self.connect_timeout).await?;
        tokio::task::spawn_blocking(move || {
            let mut conn = AsyncConnectionWrapper::<Conn>::from(conn);
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

/// One connection attempt, bounded by `timeout`: TCP connect, start-up, authentication and
/// diesel's session set-up together, so an unroutable host cannot hold a caller for the
/// operating system's connect timeout (minutes), nor a server that accepts and never answers
/// for ever. Connects through tokio-postgres itself rather than `AsyncConnection::establish`,
/// which keeps only the top line of a connection error ("error connecting to server") and
/// drops its cause ("Connection refused").
///
/// Every error names the server as `host:port` (never the URL, which may hold a password): a
/// server that answered and refused (a wrong password, no such database) is
/// [`StoreError::Refused`], which retrying will not mend; anything else (refused or reset
/// connections, no answer in time, a server starting up) is [`StoreError::Unavailable`].
pub(crate) async fn connect_once(url: &str, timeout: Duration) -> Result<Conn, StoreError> {
    let server = server_of(url);
    let attempt = async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| match e.code() {
                Some(code) if refusal(code.code()) => StoreError::Refused(format!(
                    "PostgreSQL at {server} refused the connection: {}",
                    with_causes(&e)
                )),
                _ => StoreError::unavailable(format!(
                    "could not connect to PostgreSQL at {server}: {}",
                    with_causes(&e)
                )),
            })?;
        Conn::try_from_client_and_connection(client, connection).await.map_err(|e| {
            StoreError::unavailable(format!("could not set up a session on {server}: {e}"))
        })
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(connected) => connected,
        Err(_) => Err(StoreError::unavailable(format!(
            "PostgreSQL at {server} did not answer within {} (DATABASE_CONNECT_TIMEOUT)",
            humantime_secs(timeout)
        ))),
    }
}

/// Whether SQLSTATE `code` says the server refused this client for good: invalid
/// authorization (class 28) or no such database (3D000). "The database system is starting
/// up" (57P03) and "too many connections" (53300) pass with time, so they are not.
fn refusal(code: &str) -> bool {
    code.starts_with("28") || code == "3D000"
}

/// `12s`, `1.5s`, `750ms`: a timeout as an operator wrote it.
fn humantime_secs(timeout: Duration) -> String {
    if timeout.subsec_millis() == 0 {
        format!("{}s", timeout.as_secs())
    } else if timeout < Duration::from_secs(1) {
        format!("{}ms", timeout.as_millis())
    } else {
        format!("{:.1}s", timeout.as_secs_f64())
    }
}

/// The server a `postgres://` URL names, as `host:port` (the first, if it lists several), for
/// messages: never the URL itself, which may hold a password.
pub(crate) fn server_of(url: &str) -> String {
    let Ok(config) = url.parse::<tokio_postgres::Config>() else {
        return "the configured server".to_owned();
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) if host.contains(':') => {
            format!("[{host}]:{port}")
        }
        Some(tokio_postgres::config::Host::Tcp(host)) => format!("{host}:{port}"),
        Some(tokio_postgres::config::Host::Unix(dir)) => {
            format!("{}/.s.PGSQL.{port}", dir.display())
        }
        None => format!("localhost:{port}"),
    }
}

/// The pool's connection attempts: [`connect_once`], in the pool's error type.
async fn establish(url: String, timeout: Duration, notify: bool) -> ConnectionResult<Conn> {
    let mut conn = connect_once(&url, timeout)
        .await
        .map_err(|e| ConnectionError::BadConnection(source_text(&e)))?;
    if !notify {
        use diesel_async::SimpleAsyncConnection;
        conn.batch_execute("SET jwt_auth.notify = 'off'").await.map_err(|e| {
            ConnectionError::BadConnection(format!("could not set jwt_auth.notify: {e}"))
        })?;
    }
    Ok(conn)
}

/// What an error of [`connect_once`] says, without the variant's prefix.
fn source_text(err: &StoreError) -> String {
    match err {
        StoreError::Unavailable(cause) => cause.to_string(),
        StoreError::Refused(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `err` and its sources, one after the other.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// Whether the database is known to be unreachable, shared by the clones of a [`Database`]
/// and the pool's error sink. Down starts with the first failure seen and ends when the probe
/// connects again; each transition is logged once, however many calls meet the outage.
struct Outage {
    down: AtomicBool,
    /// Wakes the calls waiting on the pool when the database is declared down.
    went_down: Notify,
    url: String,
    connect_timeout: Duration,
}

impl Outage {
    fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Declares the database down, unless it already is. The one caller that makes the
    /// transition logs it, wakes the waiting calls and starts the probe; so there is exactly
    /// one probe while the database is down, and none while it is up.
    fn begin(self: &Arc<Self>, cause: &dyn fmt::Display) {
        if self.down.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Nothing to probe from: stay up, and let the next call try for itself.
            self.down.store(false, Ordering::Release);
            return;
        };
        tracing::warn!(
            error = %cause,
            "PostgreSQL is unreachable; calls fail at once until a background probe reconnects"
        );
        self.went_down.notify_waiters();
        runtime.spawn(probe(Arc::downgrade(self), self.url.clone(), self.connect_timeout));
    }
}

/// Tries to connect at once and then every [`PROBE_EVERY`] until it succeeds, then declares
/// the database up. The first attempt is immediate so that a false alarm (one connection
/// closed by the server, a lost SYN) ends within one connection attempt. Stops early when the
/// store is dropped.
async fn probe(outage: Weak<Outage>, url: String, connect_timeout: Duration) {
    let started = Instant::now();
    loop {
        let attempt = establish(url.clone(), connect_timeout, true).await;
        let Some(outage) = outage.upgrade() else { return };
        match attempt {
            Ok(_connection) => {
                outage.down.store(false, Ordering::Release);
                tracing::info!(
                    down_for_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "PostgreSQL is reachable again"
                );
                return;
            }
            Err(e) => tracing::debug!(error = %e, "PostgreSQL is still unreachable"),
        }
        drop(outage);
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Receives the pool's errors that belong to no call: failed connection attempts, which
/// declare the database down, and pooled connections found closed at check-out, which the
/// pool replaces by itself.
struct OutageSink(Arc<Outage>);

impl fmt::Debug for OutageSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("OutageSink").field("down", &self.0.is_down()).finish()
    }
}

impl bb8::ErrorSink<PoolError> for OutageSink {
    fn sink(&self, error: PoolError) {
        match error {
            PoolError::ConnectionError(e) => self.0.begin(&e),
            PoolError::QueryError(e) => tracing::debug!(error = %e, "dropped a closed connection"),
        }
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(OutageSink(Arc::clone(&self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_says_why() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            listener.local_addr().expect("an address").port()
        };
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let started = Instant::now();
        let Err(ConnectionError::BadConnection(why)) =
            establish(url, Duration::from_secs(5), true).await
        else {
            panic!("nothing listens on port {port}")
        };
        assert!(started.elapsed() < Duration::from_secs(1), "refused at once");
        let server = format!("could not connect to PostgreSQL at 127.0.0.1:{port}: ");
        let cause = why.strip_prefix(&server).unwrap_or_default();
        assert!(cause.to_lowercase().contains("refused"), "the server and the cause: {why}");
    }

    #[test]
    fn the_server_is_named_by_host_and_port_never_with_the_password() {
        for (url, named) in [
            ("postgres://app:s3cret@db.internal:6432/auth", "db.internal:6432"),
            ("postgres://app:s3cret@127.0.0.1/auth", "127.0.0.1:5432"),
            ("postgresql://[::1]:5433/auth?password=s3cret", "[::1]:5433"),
            ("not a url s3cret", "the configured server"),
        ] {
            assert_eq!(server_of(url), named, "{url}");
        }
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_given_up_on_in_time() {
        // The kernel completes the TCP handshake; nothing ever answers the start-up message.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = silent.local_addr().expect("an address").port();
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let timeout = Duration::from_millis(200);
        let started = Instant::now();
        let Err(ConnectionError::BadConnection(why)) = establish(url, timeout, true).await else {
            panic!("a silent server cannot be connected to")
        };
        let expected = format!("PostgreSQL at 127.0.0.1:{port} did not answer within 200ms");
        assert!(why.starts_with(&expected), "{why}");
        let took = started.elapsed();
        assert!(took >= timeout && took < timeout * 3, "gave up after {took:?}");

        // Migrations connect with the same bound (they used to wait for ever), and say so.
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let options = StoreOptions { connect_timeout: timeout, ..StoreOptions::default() };
        let started = Instant::now();
        let migrated = Database::connect(&url, &options).migrate().await;
        let took = started.elapsed();
        let Err(StoreError::Unavailable(why)) = migrated else { panic!("{migrated:?}") };
        assert!(why.to_string().starts_with(&expected), "{why}");
        assert!(took >= timeout && took < timeout * 3, "gave up after {took:?}");
        drop(silent);
    }
}
