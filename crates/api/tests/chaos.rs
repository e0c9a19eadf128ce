//! Crashes under load, against the real `jwt-auth` binary: what a client was told must still
//! hold after the crash, and the database must come out of it consistent.
//!
//! - `sigkill_during_refresh_rotation_loses_no_pair_and_retires_no_token_twice` (on SQLite and
//!   on PostgreSQL): 32 clients rotate their refresh tokens back to back and the server is
//!   killed with SIGKILL in the middle (no handler, no graceful stop: a power cut as far as
//!   the process is concerned). After a restart on the same database and keys, every pair that
//!   was answered 200 still works, no token was retired twice, and the database passes its
//!   integrity checks. A rotation in flight at the kill may have committed without its answer
//!   reaching the client; the test reads the database to tell which, and asserts the exact
//!   outcome the contract gives for each case.
//! - `postgres_restarted_mid_transaction_loses_nothing_committed_and_recovers`: the server runs
//!   on a private PostgreSQL cluster that is stopped with `pg_ctl stop -m immediate` (a crash:
//!   no checkpoint, open transactions cut off, crash recovery at the next start) and started
//!   again while 16 clients register, log in, refresh and log out without pause. Every request
//!   is answered 503 with `Retry-After` or succeeds, the same server process serves again by
//!   itself, and everything answered with a success was committed and is still there.
//!
//! What is and is not guaranteed in the second test: the server answers a write with a
//! success only after PostgreSQL acknowledged its COMMIT, and an acknowledged COMMIT survives a
//! crash of PostgreSQL (of its processes, not of the host: the private cluster runs with
//! `fsync=off`), so every 201, 204 and 200 must survive the restart. A write answered
//! 503 may or may not have committed (the COMMIT may have reached PostgreSQL and its
//! acknowledgement been lost): the test asks nothing of such a write but what the contract
//! promises a client that retries (a refresh retried after a 503 still gets a pair: the reuse
//! grace exists for lost answers) and the invariants that hold whatever committed (a token
//! retired at most once, with its successor recorded; indexes and tables that pass amcheck).
//! The test cannot point at the one transaction that the stop cut in half; it makes that
//! overwhelmingly likely (16 clients that never pause, and a write transaction seen open in
//! `pg_stat_activity` right before the stop) and its assertions hold whichever statement the
//! stop hits.
//!
//! PostgreSQL tests follow the rule of the other suites: without PostgreSQL (or, for the
//! private cluster, without its server binaries) they print `SKIPPED: <reason>` and pass,
//! except with `CI` set, where they fail.

use crate::common::{cluster, pg, process};

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use process::Server;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";
/// A key-encryption key (32 bytes, base64): on PostgreSQL the signing keys live in the
/// database, sealed with it, so a restarted server signs and verifies with the same keys.
const KEK: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// The bound on every request: a hang fails the test with a timeout instead of stalling it.
/// Far above anything a healthy server takes, even on a loaded machine.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// A client that talks to the server directly (no proxy from the environment).
fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(REQUEST_TIMEOUT).no_proxy().build().expect("an HTTP client")
}

/// A complete answer. A connection that fails, an answer cut off half-way or a request that
/// times out is the `Err` of [`call`].
#[derive(Debug, Clone)]
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    text: String,
    body: Value,
}

async fn call(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    let retry_after =
        response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = response.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer { status, retry_after, text, body })
}

#[derive(Debug, Clone)]
struct Pair {
    access: String,
    refresh: String,
}

impl Pair {
    fn from_answer(answer: &Answer) -> Pair {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let field = |name: &str| {
            answer.body[name].as_str().unwrap_or_else(|| panic!("no {name}: {}", answer.text))
        };
        Pair {
            access: field("access_token").to_owned(),
            refresh: field("refresh_token").to_owned(),
        }
    }

    /// The `jti` of the refresh token: its row in `refresh_tokens`.
    fn refresh_jti(&self) -> String {
        claim(&self.refresh, "jti")
    }

    /// The session of the pair.
    fn sid(&self) -> String {
        claim(&self.refresh, "sid")
    }
}

fn claim(token: &str, name: &str) -> String {
    let (_, claims) = jwt_core::dangerous::decode_unverified(token).expect("a JWT");
    claims[name].as_str().unwrap_or_else(|| panic!("no {name} claim")).to_owned()
}

async fn register(server: &Server, email: &str) {
    let answer = call(
        http()
            .post(server.url("/auth/register"))
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await
    .expect("register");
    assert_eq!(answer.status, StatusCode::CREATED, "register {email}: {}", answer.text);
}

async fn try_login(server: &Server, email: &str) -> Answer {
    call(
        http()
            .post(server.url("/auth/login"))
            .json(&json!({"username": email, "password": PASSWORD})),
    )
    .await
    .unwrap_or_else(|e| panic!("login of {email}: {e}"))
}

async fn login(server: &Server, email: &str) -> Pair {
    let answer = try_login(server, email).await;
    assert_eq!(answer.status, StatusCode::OK, "login of {email}: {}", answer.text);
    Pair::from_answer(&answer)
}

async fn refresh(server: &Server, refresh_token: &str) -> Answer {
    call(http().post(server.url("/auth/refresh")).json(&json!({"refresh_token": refresh_token})))
        .await
        .expect("refresh")
}

async fn me(server: &Server, access_token: &str) -> Answer {
    call(http().get(server.url("/api/me")).bearer_auth(access_token)).await.expect("/api/me")
}

/// Asserts a 401 with the error code `code`.
fn assert_refused(answer: &Answer, code: &str, what: &str) {
    assert_eq!(
        (answer.status, answer.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some(code)),
        "{what}: {}",
        answer.text
    );
}

// ---------------------------------------------------------------------------------------------
// The database, read directly
// ---------------------------------------------------------------------------------------------

/// The server's database, opened by the test itself (with diesel, as the other suites do).
enum Sql {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Sql {
    async fn rows<T>(&self, query: &str) -> Vec<T>
    where
        T: QueryableByName<diesel::sqlite::Sqlite>
            + QueryableByName<diesel::pg::Pg>
            + Send
            + 'static,
    {
        match self {
            Sql::Sqlite(path) => {
                use diesel::{Connection, RunQueryDsl, SqliteConnection};
                let path = path.to_str().expect("a UTF-8 path");
                let mut conn = SqliteConnection::establish(path).expect("the SQLite file opens");
                diesel::sql_query(query)
                    .load(&mut conn)
                    .unwrap_or_else(|e| panic!("`{query}` failed: {e}"))
            }
            Sql::Postgres(url) => {
                use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
                let mut conn =
                    AsyncPgConnection::establish(url).await.expect("PostgreSQL connects");
                diesel::sql_query(query)
                    .load(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("`{query}` failed: {e}"))
            }
        }
    }

    /// The first column of `query` as text.
    async fn texts(&self, query: &str) -> Vec<String> {
        self.rows::<Text1>(query).await.into_iter().map(|r| r.value).collect()
    }

    /// Waits until no other connection to the database is left (PostgreSQL only). The
    /// backends of a killed server see its sockets closed and exit, but one that had already
    /// received a COMMIT carries it out first: only once they are gone is what the test reads
    /// final.
    async fn wait_for_other_connections_to_end(&self) {
        if matches!(self, Sql::Sqlite(_)) {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let others: Vec<Counted> = self
                .rows(
                    "SELECT 'others'::text AS value, COUNT(*) AS n FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                .await;
            if others[0].n == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "the killed server's connections live on");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn tokens(&self) -> Vec<TokenRow> {
        self.rows(
            "SELECT jti, session_id, parent_jti, replaced_by, rotated_at IS NOT NULL AS retired \
             FROM refresh_tokens",
        )
        .await
    }

    async fn sessions(&self) -> HashMap<String, SessionRow> {
        let rows: Vec<SessionRow> = self
            .rows("SELECT id, revoke_reason, revoked_at IS NOT NULL AS revoked FROM sessions")
            .await;
        rows.into_iter().map(|s| (s.id.clone(), s)).collect()
    }
}

#[derive(QueryableByName)]
struct Text1 {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName, Debug, Clone)]
struct TokenRow {
    #[diesel(sql_type = Text)]
    jti: String,
    #[diesel(sql_type = Text)]
    session_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    parent_jti: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    replaced_by: Option<String>,
    #[diesel(sql_type = Bool)]
    retired: bool,
}

#[derive(QueryableByName, Debug)]
struct SessionRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Nullable<Text>)]
    revoke_reason: Option<String>,
    #[diesel(sql_type = Bool)]
    revoked: bool,
}

/// Which sessions may hold more than one usable refresh token: none, when any reuse revokes
/// (`REFRESH_REUSE_GRACE=0`); with a grace, those in which a token was presented twice,
/// because a grace hit records a further token without retiring any.
enum GraceHits<'a> {
    None,
    OnlyIn(&'a HashSet<String>),
}

/// The rotation invariants, in SQL that both backends run:
/// - a token is retired once: no `parent_jti` has two children (without a grace), and every
///   retired token names, in `replaced_by`, an existing successor of its session whose
///   `parent_jti` is that token;
/// - every child's parent exists in the same session and is retired (and, without a grace,
///   names that child as its successor);
/// - every session has exactly one current (unretired) refresh token (or more after grace
///   hits);
/// - no refresh token without its session.
async fn assert_rotation_invariants(sql: &Sql, grace: GraceHits<'_>) {
    let twice: Vec<Counted> = sql
        .rows(
            "SELECT t.session_id AS value, COUNT(*) AS n FROM refresh_tokens t \
             WHERE t.parent_jti IS NOT NULL GROUP BY t.session_id, t.parent_jti \
             HAVING COUNT(*) > 1",
        )
        .await;
    let allowed = |session: &str| match grace {
        GraceHits::None => false,
        GraceHits::OnlyIn(sessions) => sessions.contains(session),
    };
    let twice: Vec<_> = twice.iter().filter(|c| !allowed(&c.value)).map(|c| &c.value).collect();
    assert!(twice.is_empty(), "a token has two successors (retired twice) in sessions {twice:?}");

    let no_successor = sql
        .texts(
            "SELECT t.jti AS value FROM refresh_tokens t WHERE t.rotated_at IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM refresh_tokens s WHERE s.jti = t.replaced_by \
             AND s.parent_jti = t.jti AND s.session_id = t.session_id)",
        )
        .await;
    assert!(no_successor.is_empty(), "retired tokens without their successor: {no_successor:?}");
    let half_retired = sql
        .texts(
            "SELECT jti AS value FROM refresh_tokens WHERE rotated_at IS NULL \
             AND replaced_by IS NOT NULL",
        )
        .await;
    assert!(half_retired.is_empty(), "a successor but no rotation time: {half_retired:?}");

    let successor_check = match grace {
        GraceHits::None => " AND p.replaced_by = c.jti",
        GraceHits::OnlyIn(_) => "",
    };
    let orphans = sql
        .texts(&format!(
            "SELECT c.jti AS value FROM refresh_tokens c WHERE c.parent_jti IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM refresh_tokens p WHERE p.jti = c.parent_jti \
             AND p.session_id = c.session_id AND p.rotated_at IS NOT NULL{successor_check})"
        ))
        .await;
    assert!(orphans.is_empty(), "tokens whose parent does not record them: {orphans:?}");

    let live: Vec<Counted> = sql
        .rows(
            "SELECT id AS value, n FROM (SELECT s.id AS id, (SELECT COUNT(*) FROM \
             refresh_tokens t WHERE t.session_id = s.id AND t.rotated_at IS NULL) AS n \
             FROM sessions s) AS c WHERE n <> 1",
        )
        .await;
    let live: Vec<_> =
        live.iter().filter(|c| c.n == 0 || !allowed(&c.value)).map(|c| (&c.value, c.n)).collect();
    assert!(live.is_empty(), "sessions without exactly one current refresh token: {live:?}");

    let homeless = sql
        .texts(
            "SELECT t.jti AS value FROM refresh_tokens t \
             WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = t.session_id)",
        )
        .await;
    assert!(homeless.is_empty(), "refresh tokens without a session: {homeless:?}");
}

/// SQLite's own checks of the file: `PRAGMA integrity_check` says `ok` and
/// `PRAGMA foreign_key_check` finds nothing.
async fn assert_sqlite_intact(sql: &Sql) {
    let integrity = sql.texts("SELECT integrity_check AS value FROM pragma_integrity_check").await;
    assert_eq!(integrity, ["ok"], "PRAGMA integrity_check");
    let dangling = sql.texts("SELECT \"table\" AS value FROM pragma_foreign_key_check").await;
    assert!(dangling.is_empty(), "PRAGMA foreign_key_check: rows in {dangling:?}");
}

// ---------------------------------------------------------------------------------------------
// 1. SIGKILL during refresh rotation
// ---------------------------------------------------------------------------------------------

/// 32 sessions of one user, each rotated by its own client. One user, not 32: a session is
/// the unit of rotation, so 32 sessions give the same 32 independent rotation chains for a
/// third of the password hashing (1 registration and 32 logins instead of 32 of each), and
/// the reuse detection that may revoke one session must leave its 31 siblings, of the same
/// user, alone.
const ROTATORS: usize = 32;

/// How one rotating client ended: each runs until a request fails, which the kill makes sure
/// of.
#[derive(Debug)]
enum End {
    /// The request never reached a server (connection refused): it cannot have committed.
    NotSent(String),
    /// The request was sent, or may have been, and no complete answer came back: it may have
    /// been cut off before, during or after its commit.
    Cut(String),
    /// A complete answer other than 200; never expected while the server runs.
    Refused(StatusCode, String),
}

#[derive(Debug)]
struct Rotator {
    /// The last pair answered 200: the pair this client holds.
    handed_out: Pair,
    /// How many rotations were answered 200.
    rotations: usize,
    end: End,
}

/// Rotates `pair` until a request fails; counts itself in `started` at its first 200.
async fn rotate_until_killed(url: String, mut pair: Pair, started: Arc<AtomicUsize>) -> Rotator {
    let http = http();
    let mut rotations = 0;
    loop {
        let request = http.post(&url).json(&json!({"refresh_token": pair.refresh}));
        let end = match call(request).await {
            Ok(answer) if answer.status == StatusCode::OK => {
                pair = Pair::from_answer(&answer);
                rotations += 1;
                if rotations == 1 {
                    started.fetch_add(1, Ordering::SeqCst);
                }
                continue;
            }
            Ok(answer) => End::Refused(answer.status, answer.text),
            Err(e) if e.is_connect() => End::NotSent(format!("{e:?}")),
            Err(e) => End::Cut(format!("{e:?}")),
        };
        return Rotator { handed_out: pair, rotations, end };
    }
}

/// A deterministic pseudo-random number from `seed` (SplitMix64).
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_during_refresh_rotation_loses_no_pair_and_retires_no_token_twice() {
        super::sigkill_during_refresh_rotation(super::Backend::Sqlite).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigkill_during_refresh_rotation_loses_no_pair_and_retires_no_token_twice() {
        super::sigkill_during_refresh_rotation(super::Backend::Postgres).await;
    }
}

async fn sigkill_during_refresh_rotation(backend: Backend) {
    let dir = tempfile::tempdir().expect("a directory");
    // The SQLite file sits in the server's directory, with its generated key; the PostgreSQL
    // database is a fresh one on the shared server, dropped at the end.
    let (url, sql, _pg) = match backend {
        Backend::Sqlite => {
            let path = dir.path().join("jwt-auth.db");
            (format!("sqlite://{}", path.display()), Sql::Sqlite(path), None)
        }
        Backend::Postgres => {
            let Some(db) = pg::PgDatabase::for_test("jwt_api_chaos").await else { return };
            (db.url.clone(), Sql::Postgres(db.url.clone()), Some(db))
        }
    };
    // `REFRESH_REUSE_GRACE=0` makes the outcome of presenting a handed-out token after the
    // restart a function of the database alone: if the rotation in flight at the kill
    // committed, the token is retired and presenting it is reuse (401, session revoked);
    // otherwise it is current and rotates (200). With the default 10 s grace, a retired token
    // would get 200 or 401 depending on how long the restart took. Zero also means a token
    // never gains a second successor legitimately, so two successors are a double retirement.
    let mut env = vec![
        ("DATABASE_URL", url.as_str()),
        ("REFRESH_REUSE_GRACE", "0"),
        // 33 logins from 127.0.0.1 in a few seconds.
        ("LOGIN_RATE_LIMIT", "0"),
    ];
    if matches!(backend, Backend::Postgres) {
        env.push(("KEY_ENCRYPTION_KEY", KEK));
    }
    let seed = match std::env::var("CHAOS_SEED") {
        Ok(seed) => seed.parse().expect("CHAOS_SEED is a number"),
        Err(_) => 0x6a77_745f_6b69_6c6c_u64 + backend as u64,
    };
    let delay = Duration::from_millis(300 + splitmix64(seed) % 501);

    let server = Server::start(dir.path(), &env).await;
    let email = "rotator@example.com";
    register(&server, email).await;
    let logins = futures_util::future::join_all((0..ROTATORS).map(|_| login(&server, email))).await;
    let sessions: HashSet<_> = logins.iter().map(Pair::sid).collect();
    assert_eq!(sessions.len(), ROTATORS, "one session per login");

    let started = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = logins
        .into_iter()
        .map(|pair| {
            tokio::spawn(rotate_until_killed(
                server.url("/auth/refresh"),
                pair,
                Arc::clone(&started),
            ))
        })
        .collect();
    // The kill is timed from the moment every client has rotated once, so that all 32 are
    // rotating when it lands (and the positive control below cannot fail for a slow start).
    let deadline = Instant::now() + Duration::from_secs(30);
    while started.load(Ordering::SeqCst) < ROTATORS {
        assert!(
            Instant::now() < deadline && tasks.iter().all(|t| !t.is_finished()),
            "not every client rotated within 30 s, or one stopped; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(delay).await;
    let log = server.sigkill();

    let mut rotators = Vec::with_capacity(ROTATORS);
    for task in tasks {
        let rotator = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("every client ends once the server is gone")
            .expect("the client task");
        rotators.push(rotator);
    }
    for (i, r) in rotators.iter().enumerate() {
        if let End::Refused(status, text) = &r.end {
            panic!("client {i} was refused while the server ran: {status} {text}\n{log}");
        }
        // Positive control: the rotations were really happening before the kill.
        assert!(r.rotations >= 1, "client {i} never rotated");
    }

    // The database as the kill left it, before any server touches it again.
    sql.wait_for_other_connections_to_end().await;
    if matches!(backend, Backend::Sqlite) {
        assert_sqlite_intact(&sql).await;
    }
    assert_rotation_invariants(&sql, GraceHits::None).await;
    let tokens = sql.tokens().await;
    let by_jti: HashMap<&str, &TokenRow> = tokens.iter().map(|t| (t.jti.as_str(), t)).collect();
    // For each client, whether its rotation in flight at the kill committed without its answer
    // arriving (its handed-out token is then retired).
    let mut committed_unanswered = Vec::with_capacity(ROTATORS);
    for (i, r) in rotators.iter().enumerate() {
        let (jti, sid) = (r.handed_out.refresh_jti(), r.handed_out.sid());
        // A pair answered 200 was committed before it was sent: its token is there.
        let row = by_jti.get(jti.as_str()).unwrap_or_else(|| {
            panic!("client {i}: the refresh token answered 200 is not in the database (lost)")
        });
        let in_session: Vec<_> = tokens.iter().filter(|t| t.session_id == sid).collect();
        if row.retired {
            // Only a request that may have reached the server can have retired it, and then
            // exactly one step further: a successor that no client ever saw, still current.
            if let End::NotSent(why) = &r.end {
                panic!(
                    "client {i}: its handed-out token was retired, but its last request never \
                     reached the server: {why}"
                );
            }
            let next = row.replaced_by.as_deref().expect("a retired token names its successor");
            let successor = by_jti.get(next).expect("the successor exists");
            assert!(
                successor.parent_jti.as_deref() == Some(jti.as_str()) && !successor.retired,
                "client {i}: the retired token's successor {successor:?}"
            );
        }
        // No pair lost and none invented: the login's token, one per rotation answered 200,
        // and one more if the rotation in flight committed.
        assert_eq!(
            in_session.len(),
            1 + r.rotations + usize::from(row.retired),
            "client {i}: refresh tokens of its session"
        );
        committed_unanswered.push(row.retired);
    }
    let cut: Vec<&str> = rotators
        .iter()
        .filter_map(|r| match &r.end {
            End::Cut(why) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    let committed = committed_unanswered.iter().filter(|c| **c).count();
    let rotations: usize = rotators.iter().map(|r| r.rotations).sum();
    eprintln!(
        "{backend:?}: seed {seed}, SIGKILL {delay:?} after every client's first rotation; \
         {rotations} rotations answered 200; {} requests cut off by the kill, of which \
         {committed} had committed (the first: {:?})",
        cut.len(),
        cut.first()
    );

    // The same database, keys and settings.
    let server = Server::start(dir.path(), &env).await;
    // Positive control for the refusals below: the user and the keys survived the restart.
    let fresh = login(&server, email).await;
    let rotated = refresh(&server, &fresh.refresh).await;
    assert_eq!(rotated.status, StatusCode::OK, "a fresh session rotates: {}", rotated.text);
    for (i, (r, committed)) in rotators.iter().zip(&committed_unanswered).enumerate() {
        // Until its refresh token is presented, the session of every client is alive.
        let before = me(&server, &r.handed_out.access).await;
        assert_eq!(before.status, StatusCode::OK, "client {i}: access token: {}", before.text);
        let answer = refresh(&server, &r.handed_out.refresh).await;
        if *committed {
            // The rotation in flight committed: the handed-out token was retired by a request
            // whose answer was lost, so presenting it again is reuse. With no grace, that is
            // 401 `refresh_token_reused` and the whole session is revoked: the access token of
            // the handed-out pair stops working too (the successor, never seen by the
            // client, dies with the session). Other sessions of the user are untouched, as the
            // clients that follow, and `fresh`, show.
            assert_refused(&answer, "refresh_token_reused", &format!("client {i}: reuse"));
            let after = me(&server, &r.handed_out.access).await;
            assert_refused(&after, "token_revoked", &format!("client {i}: revoked session"));
        } else {
            // The handed-out pair is the current one: it rotates, and the new pair works.
            assert_eq!(answer.status, StatusCode::OK, "client {i}: rotation: {}", answer.text);
            let next = Pair::from_answer(&answer);
            let after = me(&server, &next.access).await;
            assert_eq!(after.status, StatusCode::OK, "client {i}: new pair: {}", after.text);
        }
    }
    let still = me(&server, &fresh.access).await;
    assert_eq!(still.status, StatusCode::OK, "a sibling session survives reuse: {}", still.text);
    drop(server);

    // And after those rotations and revocations, the same invariants hold.
    if matches!(backend, Backend::Sqlite) {
        assert_sqlite_intact(&sql).await;
    }
    assert_rotation_invariants(&sql, GraceHits::None).await;
    let sessions = sql.sessions().await;
    for (i, (r, committed)) in rotators.iter().zip(&committed_unanswered).enumerate() {
        let session = &sessions[&r.handed_out.sid()];
        if *committed {
            assert!(session.revoked, "client {i}: the reused session is revoked");
            assert_eq!(session.revoke_reason.as_deref(), Some("refresh_reuse"), "client {i}");
        } else {
            assert!(!session.revoked, "client {i}: an honest session is not revoked");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. PostgreSQL restarted under a stream of writes
// ---------------------------------------------------------------------------------------------

const WORKERS: usize = 16;

/// What one request of a worker got.
#[derive(Debug)]
struct Op {
    worker: usize,
    kind: &'static str,
    started: Instant,
    ended: Instant,
    /// A complete answer, or why there was none (refused connection, cut-off, timeout).
    outcome: Result<Answer, String>,
}

/// What one worker was told, and what it holds at the end.
#[derive(Debug, Default)]
struct Worker {
    ops: Vec<Op>,
    /// The session it holds: the last pair answered 200, unless since logged out.
    session: Option<Pair>,
    /// Whether the last refresh of `session` was answered 503 (it may have committed).
    session_ambiguous: bool,
    /// Sessions in which a refresh was answered 503: the retry that follows may be a grace
    /// hit, which leaves the session with two current tokens.
    retried_sessions: HashSet<String>,
    /// Emails whose registration was answered 201.
    registered: Vec<String>,
    /// Pairs of sessions whose logout was answered 204.
    logged_out: Vec<Pair>,
    /// The refresh `jti` of every pair answered 200 (logins and refreshes).
    handed_out: Vec<String>,
}

/// Registers, logs in, refreshes and logs out in a fixed cycle until `stop`: per ten steps a
/// registration, a login, a logout and seven refreshes, so that most requests are quick
/// writes and two are password hashes.
async fn work(
    index: usize,
    base: String,
    email: String,
    first: Pair,
    stop: Arc<AtomicBool>,
    successes: Arc<[AtomicUsize; WORKERS]>,
) -> Worker {
    let http = http();
    let url = |path: &str| format!("{base}{path}");
    let mut worker = Worker { session: Some(first), ..Worker::default() };
    let mut step = 0usize;
    while !stop.load(Ordering::SeqCst) {
        step += 1;
        let new_email = format!("w{index}-{step}@example.com");
        let (kind, request) = match (&worker.session, step % 10) {
            (_, 8) => (
                "register",
                http.post(url("/auth/register"))
                    .json(&json!({"email": new_email, "password": PASSWORD})),
            ),
            (None, _) => (
                "login",
                http.post(url("/auth/login"))
                    .json(&json!({"username": email, "password": PASSWORD})),
            ),
            (Some(pair), 7) => ("logout", http.post(url("/auth/logout")).bearer_auth(&pair.access)),
            (Some(pair), _) => (
                "refresh",
                http.post(url("/auth/refresh")).json(&json!({"refresh_token": pair.refresh})),
            ),
        };
        let started = Instant::now();
        let outcome = call(request).await.map_err(|e| format!("{e:?}"));
        let ended = Instant::now();
        let status = outcome.as_ref().map(|a| a.status).ok();
        match (kind, status) {
            ("register", Some(StatusCode::CREATED)) => worker.registered.push(new_email),
            ("login" | "refresh", Some(StatusCode::OK)) => {
                let pair = Pair::from_answer(outcome.as_ref().expect("an answer"));
                worker.handed_out.push(pair.refresh_jti());
                worker.session = Some(pair);
                worker.session_ambiguous = false;
            }
            ("refresh", Some(StatusCode::SERVICE_UNAVAILABLE)) => {
                // Keep the pair and present it again later: if the rotation committed, the
                // retry is inside the grace and gets a pair of the same session.
                let pair = worker.session.as_ref().expect("a session");
                worker.retried_sessions.insert(pair.sid());
                worker.session_ambiguous = true;
            }
            ("logout", Some(StatusCode::NO_CONTENT)) => {
                worker.logged_out.push(worker.session.take().expect("a session"));
            }
            // A logout answered 503 may or may not have ended the session: forget it.
            ("logout", _) => worker.session = None,
            // Anything unexpected is judged from `ops` at the end; a refresh refused for no
            // good reason would only be refused again, so start a new session.
            ("refresh", _) => worker.session = None,
            _ => {}
        }
        let succeeded =
            matches!(status, Some(StatusCode::OK | StatusCode::CREATED | StatusCode::NO_CONTENT));
        worker.ops.push(Op { worker: index, kind, started, ended, outcome });
        if succeeded {
            successes[index].fetch_add(1, Ordering::SeqCst);
        } else {
            // While PostgreSQL is down, every answer is an immediate 503: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    worker
}

/// Counts the write transactions other connections have open right now (they have been
/// given a transaction id: they have written and not yet committed).
async fn open_write_transactions(conn: &mut diesel_async::AsyncPgConnection) -> i64 {
    use diesel_async::RunQueryDsl;
    let counted: Vec<Counted> = diesel::sql_query(
        "SELECT 'open'::text AS value, COUNT(*) AS n FROM pg_stat_activity \
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() \
         AND backend_xid IS NOT NULL",
    )
    .load(conn)
    .await
    .expect("pg_stat_activity");
    counted[0].n
}

/// amcheck on every index (its entries match the heap: `heapallindexed`) and on every table
/// of the server's schema: what a crash recovery that lost or tore a page would show.
async fn assert_amcheck_clean(url: &str) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(url).await.expect("PostgreSQL connects");
    if let Err(e) =
        diesel::sql_query("CREATE EXTENSION IF NOT EXISTS amcheck").execute(&mut conn).await
    {
        assert!(std::env::var_os("CI").is_none(), "amcheck is not available ({e}) and CI is set");
        eprintln!("SKIPPED: the amcheck part of the check: amcheck is not available ({e})");
        return;
    }
    let indexes: Vec<Text1> = diesel::sql_query(
        "SELECT c.relname::text AS value FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam \
         WHERE n.nspname = 'public' AND a.amname = 'btree'",
    )
    .load(&mut conn)
    .await
    .expect("the indexes");
    assert!(indexes.iter().any(|i| i.value == "refresh_tokens_pkey"), "the indexes are found");
    for index in &indexes {
        diesel::sql_query(format!(
            "SELECT bt_index_check('public.\"{}\"'::regclass, true)",
            index.value
        ))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("amcheck of index {}: {e}", index.value));
    }
    let corrupt: Vec<Text1> = diesel::sql_query(
        "SELECT c.relname || ': ' || v.msg AS value FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace, LATERAL verify_heapam(c.oid) v \
         WHERE n.nspname = 'public' AND c.relkind = 'r'",
    )
    .load(&mut conn)
    .await
    .expect("verify_heapam");
    let corrupt: Vec<_> = corrupt.into_iter().map(|c| c.value).collect();
    assert!(corrupt.is_empty(), "verify_heapam: {corrupt:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_transaction_loses_nothing_committed_and_recovers() {
    let Some(mut cluster) = cluster::Cluster::for_test() else { return };
    let dir = tempfile::tempdir().expect("a directory");
    // A grace far longer than the test: a refresh answered 503 may have committed, and the
    // client retries it with the same token, which is then a grace hit (200, a pair of the
    // same session), as the contract intends for lost answers. With no grace it would be 401
    // and a revoked session, depending on whether that COMMIT made it: not deterministic.
    let env = [
        ("DATABASE_URL", cluster.url.as_str()),
        ("KEY_ENCRYPTION_KEY", KEK),
        ("REFRESH_REUSE_GRACE", "10m"),
        ("LOGIN_RATE_LIMIT", "0"),
    ];
    let mut server = Server::start(dir.path(), &env).await;
    let emails: Vec<String> = (0..WORKERS).map(|i| format!("worker{i}@example.com")).collect();
    futures_util::future::join_all(emails.iter().map(|e| register(&server, e))).await;
    let firsts = futures_util::future::join_all(emails.iter().map(|e| login(&server, e))).await;

    let stop = Arc::new(AtomicBool::new(false));
    // Successes per worker.
    let successes: Arc<[AtomicUsize; WORKERS]> =
        Arc::new(std::array::from_fn(|_| AtomicUsize::new(0)));
    let total = |successes: &[AtomicUsize]| -> usize {
        successes.iter().map(|s| s.load(Ordering::SeqCst)).sum()
    };
    let base = format!("http://{}", server.addr);
    let tasks: Vec<_> = emails
        .iter()
        .zip(firsts)
        .enumerate()
        .map(|(i, (email, first))| {
            tokio::spawn(work(
                i,
                base.clone(),
                email.clone(),
                first,
                Arc::clone(&stop),
                Arc::clone(&successes),
            ))
        })
        .collect();
    // A steady stream first.
    let deadline = Instant::now() + Duration::from_secs(30);
    while total(&successes[..]) < 200 {
        assert!(Instant::now() < deadline, "the stream did not get going in 30 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Stop PostgreSQL the moment a write transaction of the server is seen open.
    let mut watcher = {
        use diesel_async::AsyncConnection;
        diesel_async::AsyncPgConnection::establish(&cluster.url).await.expect("connects")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut open = 0;
    while open == 0 {
        assert!(Instant::now() < deadline, "no write transaction seen open in 10 s");
        open = open_write_transactions(&mut watcher).await;
    }
    drop(watcher);
    let stop_began = Instant::now();
    tokio::task::block_in_place(|| cluster.stop());
    let stopped = Instant::now();
    // Long enough for every worker to meet the outage.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| cluster.start());
    let restarted = Instant::now();

    // The same server process serves again by itself: a login within 10 s (generous: the
    // server probes every 250 ms), with nothing but 503s before it.
    let recovered = loop {
        let answer = try_login(&server, &emails[0]).await;
        if answer.status == StatusCode::OK {
            break Instant::now();
        }
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{}", answer.text);
        assert!(answer.retry_after.is_some(), "a 503 without Retry-After");
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "no login 10 s after PostgreSQL came back; log:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Let the stream go on until every worker has had two more successes: the second began
    // after the recovery, whatever the first was waiting on (a password hash, say).
    let after: Vec<usize> = successes.iter().map(|s| s.load(Ordering::SeqCst)).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while successes.iter().zip(&after).any(|(s, a)| s.load(Ordering::SeqCst) < a + 2) {
        assert!(Instant::now() < deadline, "not every worker resumed within 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut workers = Vec::with_capacity(WORKERS);
    for task in tasks {
        let worker = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("every worker stops")
            .expect("the worker task");
        workers.push(worker);
    }
    assert!(server.is_running(), "the server process kept running");

    // Every answer was a success or a 503 with Retry-After: never a 500, never a dropped
    // connection, never a timeout.
    let ops: Vec<&Op> = workers.iter().flat_map(|w| &w.ops).collect();
    let expected = |op: &Op, status: StatusCode| match op.kind {
        "register" => status == StatusCode::CREATED,
        "logout" => status == StatusCode::NO_CONTENT,
        _ => status == StatusCode::OK,
    };
    let mut unavailable = 0;
    for op in &ops {
        match &op.outcome {
            Ok(answer) if expected(op, answer.status) => {}
            Ok(answer) if answer.status == StatusCode::SERVICE_UNAVAILABLE => {
                assert!(answer.retry_after.is_some(), "a 503 without Retry-After: {op:?}");
                assert_eq!(answer.body["error"], "unavailable", "{op:?}");
                unavailable += 1;
            }
            _ => panic!(
                "{} of worker {}: {:?}\nlog:\n{}",
                op.kind,
                op.worker,
                op.outcome,
                server.log()
            ),
        }
    }
    // Positive controls: the restart was felt, writes were in flight when it began, and every
    // worker got a success after it, without the server being restarted.
    assert!(unavailable > 0, "no request met the outage");
    let in_flight: Vec<_> =
        ops.iter().filter(|op| op.started < stop_began && op.ended > stop_began).collect();
    assert!(!in_flight.is_empty(), "no request was in flight when the stop began");
    let cut_by_outage = ops
        .iter()
        .filter(|op| {
            op.started < stopped
                && op.outcome.as_ref().is_ok_and(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
        })
        .count();
    for (i, worker) in workers.iter().enumerate() {
        let resumed = worker.ops.iter().any(|op| {
            op.started > recovered && op.outcome.as_ref().is_ok_and(|a| expected(op, a.status))
        });
        assert!(resumed, "worker {i} got no success after the recovery");
    }
    let first_success = ops
        .iter()
        .filter(|op| {
            op.started > restarted && op.outcome.as_ref().is_ok_and(|a| expected(op, a.status))
        })
        .map(|op| op.ended)
        .min();
    eprintln!(
        "{} requests, {unavailable} answered 503; {open} write transactions open just before \
         the stop; {} requests in flight when it began, {cut_by_outage} sent before it ended \
         and answered 503; the stop took {:?}; after PostgreSQL started, the first success \
         came {:?} later, and a login {:?} later",
        ops.len(),
        in_flight.len(),
        stopped - stop_began,
        first_success.map(|at| at - restarted),
        recovered - restarted
    );

    // Every registration answered 201 is there: its user logs in.
    let registered: Vec<&String> = workers.iter().flat_map(|w| &w.registered).collect();
    assert!(!registered.is_empty(), "no registration succeeded");
    let logins: Vec<(String, Answer)> = futures_util::stream::iter(registered.iter().copied())
        .map(|email| async { (email.clone(), try_login(&server, email).await) })
        .buffer_unordered(4)
        .collect()
        .await;
    for (email, answer) in &logins {
        assert_eq!(answer.status, StatusCode::OK, "registered {email}, login: {}", answer.text);
    }

    // Every live session's last pair works (the positive control of the refusals after it),
    // and every logout answered 204 is honoured.
    let sql = Sql::Postgres(cluster.url.clone());
    let tokens = sql.tokens().await;
    let by_jti: HashMap<&str, &TokenRow> = tokens.iter().map(|t| (t.jti.as_str(), t)).collect();
    for (i, worker) in workers.iter().enumerate() {
        let Some(pair) = &worker.session else { continue };
        let row = by_jti.get(pair.refresh_jti().as_str()).expect("the last pair's token is stored");
        // Unless a refresh of it was answered 503 (and may have committed), the last pair
        // answered 200 is the current one.
        assert!(worker.session_ambiguous || !row.retired, "worker {i}: its last pair was retired");
        let answer = me(&server, &pair.access).await;
        assert_eq!(answer.status, StatusCode::OK, "worker {i}: live session: {}", answer.text);
        let answer = refresh(&server, &pair.refresh).await;
        assert_eq!(answer.status, StatusCode::OK, "worker {i}: last pair: {}", answer.text);
    }
    let logged_out: Vec<&Pair> = workers.iter().flat_map(|w| &w.logged_out).collect();
    assert!(!logged_out.is_empty(), "no logout succeeded");
    let sessions = sql.sessions().await;
    for pair in &logged_out {
        assert_refused(&me(&server, &pair.access).await, "token_revoked", "logged-out access");
        let answer = refresh(&server, &pair.refresh).await;
        assert_refused(&answer, "token_revoked", "logged-out refresh");
        assert!(sessions[&pair.sid()].revoked, "a logout answered 204 is stored");
    }

    // No pair answered 200 was lost: every refresh token handed out is stored.
    let handed_out: Vec<&String> = workers.iter().flat_map(|w| &w.handed_out).collect();
    let lost: Vec<_> = handed_out.iter().filter(|j| !by_jti.contains_key(j.as_str())).collect();
    assert!(lost.is_empty(), "{} of {} pairs answered 200 are lost", lost.len(), handed_out.len());
    drop(server);

    let retried: HashSet<String> =
        workers.iter().flat_map(|w| w.retried_sessions.iter().cloned()).collect();
    assert_rotation_invariants(&sql, GraceHits::OnlyIn(&retried)).await;
    assert_amcheck_clean(&cluster.url).await;
}
