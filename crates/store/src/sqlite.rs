//! SQLite: diesel's `SqliteConnection` on a bundled libsqlite3, in WAL mode.
//!
//! Why not diesel-async's `SyncConnectionWrapper` as it comes (a `spawn_blocking` per
//! statement): here each store call runs whole on one thread, so it costs one hand-off instead
//! of one per statement, and a call whose caller went away still runs to its end (diesel-async
//! warns that dropping its transaction future leaves the transaction open on the pooled
//! connection). The wrapper is kept, with a runtime that runs each step at once on the current
//! thread, so that the queries are the same async diesel code as PostgreSQL's.
//!
//! Writes go through one connection, owned by a thread that takes them from a queue and runs
//! them back to back: SQLite allows one writer at a time anyway, and an in-process queue beats
//! both its busy handler's sleep-and-retry and a thread hop per write. Write transactions still
//! use `BEGIN IMMEDIATE` and every connection a `busy_timeout`, for other processes on the same
//! file (a second server, `jwt-auth migrate`). Reads run on `spawn_blocking` with an r2d2 pool
//! of `query_only` connections, which WAL lets run beside the writer.

use std::error::Error;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use diesel::connection::{AnsiTransactionManager, SimpleConnection};
use diesel::{Connection, ConnectionError, QueryResult, SqliteConnection};
use diesel_async::TransactionManager;
use diesel_async::sync_connection_wrapper::{
    SpawnBlocking, SyncConnectionWrapper, SyncTransactionManagerWrapper,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use r2d2::ManageConnection;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::error::StoreError;
use crate::model::StoreOptions;

pub(crate) type Conn = SyncConnectionWrapper<SqliteConnection, Inline>;

macro_rules! write_transaction {
    ($conn:expr, $body:expr) => {
        $crate::sqlite::immediate_transaction($conn, $body)
    };
}

/// Nothing to notify: one process writes a SQLite file, and applies its own writes itself.
pub(crate) async fn notify_change(
    _conn: &mut Conn,
    _kind: &str,
    _user_id: Option<&str>,
) -> QueryResult<()> {
    Ok(())
}

/// Executes three statements in turn (the PostgreSQL version pipelines them).
pub(crate) async fn execute_pipelined<A, B, C, FA, FB, FC>(
    conn: &mut Conn,
    a: A,
    b: B,
    c: C,
) -> (QueryResult<usize>, QueryResult<usize>, QueryResult<usize>)
where
    A: FnOnce(&mut Conn) -> FA,
    B: FnOnce(&mut Conn) -> FB,
    C: FnOnce(&mut Conn) -> FC,
    FA: Future<Output = QueryResult<usize>>,
    FB: Future<Output = QueryResult<usize>>,
    FC: Future<Output = QueryResult<usize>>,
{
    let a = a(conn).await;
    let b = b(conn).await;
    (a, b, c(conn).await)
}

/// Nothing to do: SQLite has one writer at a time, so feed ids commit in order.
pub(crate) async fn serialize_feed_writes(_conn: &mut Conn) -> QueryResult<()> {
    Ok(())
}

/// Nothing to do: SQLite's write transactions are immediate, so key writes are serial.
pub(crate) async fn serialize_key_writes(_conn: &mut Conn) -> QueryResult<()> {
    Ok(())
}

#[path = "queries.rs"]
#[allow(clippy::duplicate_mod)] // on purpose: the same queries, compiled for this backend
pub(crate) mod queries;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// A [`SpawnBlocking`] that runs the task at once, on the calling thread: the store is already
/// on a blocking thread when it talks to SQLite.
pub(crate) struct Inline;

impl SpawnBlocking for Inline {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> Pin<Box<dyn Future<Output = Result<R, Box<dyn Error + Send + Sync>>> + Send + 'a>>
    where
        R: Send + 'static,
    {
        Box::pin(std::future::ready(Ok(task())))
    }

    fn get_runtime() -> Self {
        Inline
    }
}

type Wrapped = SyncTransactionManagerWrapper<AnsiTransactionManager>;

/// `f` inside `BEGIN IMMEDIATE … COMMIT` (rolled back if `f` fails): the write lock is taken
/// up front, so two writers never deadlock upgrading a read lock.
pub(crate) async fn immediate_transaction<R, E, F>(conn: &mut Conn, f: F) -> Result<R, E>
where
    F: AsyncFnOnce(&mut Conn) -> Result<R, E>,
    E: From<diesel::result::Error>,
{
    conn.spawn_blocking(|c| AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"))
        .await?;
    match f(&mut *conn).await {
        Ok(value) => {
            Wrapped::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(err) => {
            Wrapped::rollback_transaction(conn).await?;
            Err(err)
        }
    }
}

/// The future of one store call on one connection.
pub(crate) type Job<'c, R> = Pin<Box<dyn Future<Output = Result<R, StoreError>> + 'c>>;

/// Creates the database file if it is missing, readable and writable by its owner alone: it
/// holds password hashes and sealed signing keys, and SQLite would create it with the process's
/// umask (0644, as a rule). SQLite gives its `-wal` and `-shm` files the mode of the database
/// file. An existing file keeps the mode its operator gave it. A file that cannot be created
/// (a missing directory, no permission) is named.
fn create_private(path: &str) -> Result<(), StoreError> {
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    match file.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => {
            Err(StoreError::unavailable(format!("cannot create the SQLite file `{path}`: {e}")))
        }
    }
}

#[derive(Clone)]
pub(crate) struct Database {
    writer: Writer,
    readers: Lane,
}

impl Database {
    pub async fn open(path: String, options: &StoreOptions) -> Result<Self, StoreError> {
        create_private(&path)?;
        let busy_ms = options.busy_timeout.as_millis();
        // busy_timeout first, so that switching to WAL waits for another process's lock.
        let pragmas = format!(
            "PRAGMA busy_timeout = {busy_ms}; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
        );
        let writer = Manager { path: path.clone(), pragmas: pragmas.clone() };
        let readers = Manager { path, pragmas: pragmas + " PRAGMA query_only = ON;" };
        // The writer's connection is opened now: a bad path or a locked file is reported at
        // start, and the file is in WAL mode before any reader opens it.
        let opener = writer.clone();
        let first = tokio::task::spawn_blocking(move || opener.connect())
            .await
            .map_err(StoreError::unavailable)?
            .map_err(StoreError::unavailable)?;
        let writer = Writer::start(writer, first)?;
        let readers = Lane::new(readers, options.max_connections.max(1), options);
        Ok(Self { writer, readers })
    }

    /// Runs `job` on the writer connection.
    pub async fn write<R, F>(&self, job: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> Job<'c, R> + Send + 'static,
    {
        self.writer.run(job).await
    }

    /// Runs `job` on a read-only connection.
    pub async fn read<R, F>(&self, job: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> Job<'c, R> + Send + 'static,
    {
        self.readers.run(job).await
    }

    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        self.write(|conn| {
            Box::pin(async move {
                let applied = conn
                    .spawn_blocking(|c| {
                        Ok(c.run_pending_migrations(MIGRATIONS)
                            .map(|versions| versions.iter().map(ToString::to_string).collect()))
                    })
                    .await?;
                applied.map_err(StoreError::Migration)
            })
        })
        .await
    }
}

/// How many writes may wait for the writer before callers wait to queue.
const WRITE_QUEUE: usize = 1024;

type WriterJob = Box<dyn FnOnce(Result<&mut Conn, StoreError>) + Send>;

/// The thread that owns the writer connection. Writes queue on a channel and run back to
/// back, so a busy writer goes from one transaction to the next without waiting to be woken;
/// each caller is woken once, with its answer. The thread ends when the last `Store` clone
/// is dropped, closing the connection.
#[derive(Clone)]
struct Writer {
    jobs: mpsc::Sender<WriterJob>,
}

impl Writer {
    fn start(manager: Manager, first: Conn) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel(WRITE_QUEUE);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(&manager, first, queue))
            .map_err(StoreError::unavailable)?;
        Ok(Self { jobs })
    }

    async fn run<R, F>(&self, job: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> Job<'c, R> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: WriterJob = Box::new(move |conn| {
            // The caller may have gone away; the job ran to its end all the same.
            let _ = answer.send(conn.and_then(|conn| run_inline(job(conn))));
        });
        let stopped = |_| StoreError::unavailable("the SQLite writer has stopped");
        self.jobs.send(job).await.map_err(stopped)?;
        answered.await.map_err(|_| StoreError::unavailable("the SQLite writer failed"))?
    }
}

fn write_loop(manager: &Manager, first: Conn, mut queue: mpsc::Receiver<WriterJob>) {
    let mut idle = Some(first);
    while let Some(job) = queue.blocking_recv() {
        let mut conn = match idle.take().map_or_else(|| manager.connect(), Ok) {
            Ok(conn) => conn,
            Err(err) => {
                job(Err(StoreError::unavailable(err)));
                continue;
            }
        };
        // A job that panicked (a bug) drops its answer, which its caller sees as an error;
        // the connection is not trusted again.
        let finished = panic::catch_unwind(AssertUnwindSafe(|| job(Ok(&mut conn)))).is_ok();
        if finished && !manager.has_broken(&mut conn) {
            idle = Some(conn);
        }
    }
}

/// A pool and the semaphore that queues callers for it, so that waiting costs no thread.
#[derive(Clone)]
struct Lane {
    pool: r2d2::Pool<Manager>,
    permits: Arc<Semaphore>,
}

impl Lane {
    fn new(manager: Manager, size: u32, options: &StoreOptions) -> Self {
        let pool = r2d2::Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(options.acquire_timeout)
            .build_unchecked(manager);
        Self { pool, permits: Arc::new(Semaphore::new(size as usize)) }
    }

    async fn run<R, F>(&self, job: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> Job<'c, R> + Send + 'static,
    {
        let permit =
            Arc::clone(&self.permits).acquire_owned().await.map_err(StoreError::unavailable)?;
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = pool.get().map_err(StoreError::unavailable)?;
            run_inline(job(&mut conn))
        })
        .await
        .map_err(StoreError::unavailable)?
    }
}

/// Drives a future whose every step runs at once (see [`Inline`]) to its end.
fn run_inline<R>(job: Job<'_, R>) -> Result<R, StoreError> {
    let mut job = job;
    match job.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => {
            Err(StoreError::unavailable("a SQLite call waited instead of running inline"))
        }
    }
}

#[derive(Clone)]
struct Manager {
    path: String,
    pragmas: String,
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = ConnectionError;

    fn connect(&self) -> Result<Conn, ConnectionError> {
        let mut conn = SqliteConnection::establish(&self.path)?;
        conn.batch_execute(&self.pragmas).map_err(ConnectionError::CouldntSetupConfiguration)?;
        Ok(SyncConnectionWrapper::with_runtime(conn, Inline))
    }

    fn is_valid(&self, _conn: &mut Conn) -> Result<(), ConnectionError> {
        // A local file: a connection that opened stays usable.
        Ok(())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        Wrapped::is_broken_transaction_manager(conn)
    }
}
