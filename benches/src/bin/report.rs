//! The load report: starts release builds of `jwt-auth serve` (SQLite, and PostgreSQL when
//! `REPORT_POSTGRES_URL` names a database) and of the bare Actix-web reference `bare_verify`
//! on 127.0.0.1, measures them with wrk, a small tokio + reqwest driver and the goose user flow
//! (`flow`), and writes `docs/performance.md` with the tables and SVG plots. Run it through
//! `benches/report.sh`, which builds the binaries first. Every run is bounded in time and stays
//! on 127.0.0.1; nothing here is typed by hand into the report but the predecessor's two
//! published figures, named as such.
//!
//! Measured, per backend, on a database of 100,000 users (one registered through HTTP, the
//! other 99,999 imported through the store in one transaction with its password hash; the
//! time is reported):
//! - `GET /api/me` beside bare `GET /verify` (the same HS256 token) at 100, 1,000 and 10,000
//!   connections: requests per second, p99, errors;
//! - the example resource server (`examples/resource-server`, built by report.sh) answering
//!   `GET /stocks/acme` with the same token at 1,000 connections, beside bare `/verify`;
//! - logins per second at 32 connections against the argon2 ceiling (one verification timed
//!   here with the server's parameters, times the cores);
//! - `/api/me` p99 at 100 connections idle and during a wrong-password flood;
//! - refreshes per second and p99: 32 clients that log in once, then each chain refreshes
//!   (presenting the token the previous refresh returned) for the measurement's duration;
//! - the goose user flow: 10,000 users (`--flow-users`) started at 45 a second
//!   (`--flow-rate`), each once through login, five `/api/me`, one refresh and logout; mean,
//!   p99 and failures per request type beside the predecessor's published figures;
//! - on PostgreSQL, the revocation lag between two instances: 200 logouts on A, each timed
//!   from A's answer until B's `/api/me` refuses the token (SQLite is one process);
//! - the server's peak RSS and its thread count (the most at once, and at the end), and bare
//!   `/verify`'s peak RSS after its 10,000-connection run (the floor of Actix-web's own
//!   per-connection buffers).
//!
//! A run takes about 6 minutes per backend with the defaults: the goose flow's 10,000 users ÷
//! 45 a second ≈ 4 minutes, about 2 minutes of wrk and refresh chains at 8 s per measurement,
//! seeding and the revocation lag under a minute (the seeding a few seconds on SQLite, about
//! half a minute on PostgreSQL). With `--duration 2s --flow-users 200` it takes about half a
//! minute on SQLite, a minute on PostgreSQL.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use plotters::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use jwt_auth_benches::{Process, fail, machine, proc_status, quantile, thousands};
use jwt_auth_store::{ExistingEmails, NewUser, Store, StoreError, StoreOptions};

const LEVELS: [u32; 3] = [100, 1_000, 10_000];
const PASSWORD: &str = "report load password";
/// Users in the database while measuring: the report's own registered user and the seeded ones.
const USERS: u64 = 100_000;
/// The seeded accounts' addresses, numbered from 1 to `USERS - 1` (the flow's `FLOW_EMAIL`).
const SEED_EMAIL: &str = "seed-{}@example.com";
/// Clients chaining refreshes at once.
const REFRESH_CLIENTS: usize = 32;
/// Logouts timed between two PostgreSQL instances.
const LAG_LOGOUTS: usize = 200;
/// How long B may go on accepting a token logged out on A before the sample is given up.
const LAG_LIMIT: Duration = Duration::from_secs(5);
/// The published figures of the JWT migration this project descends from, for its user flow:
/// the mean and p99 of its requests. They are the predecessor's, not measured here.
const PREDECESSOR_MEAN_MS: f64 = 45.0;
const PREDECESSOR_P99_MS: f64 = 120.0;

struct Settings {
    bin_dir: PathBuf,
    out: PathBuf,
    duration: String,
    postgres: Option<String>,
    flow_users: u32,
    flow_rate: String,
}

/// One wrk run: requests per second, p99 in milliseconds, and the errors wrk reported.
#[derive(Clone, Default)]
struct Run {
    rps: f64,
    p99_ms: f64,
    errors: String,
}

/// The users seeded before measuring: how many the database holds, and how long it took.
struct Seeding {
    users: u64,
    seconds: f64,
}

/// Refresh chains: refreshes answered 200 per second over the window, their p99, the rest.
#[derive(Default)]
struct Refreshes {
    count: usize,
    rps: f64,
    p99_ms: f64,
    errors: usize,
}

/// The revocation lag between two instances, in milliseconds.
struct Lag {
    samples: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Logouts that B still accepted after `LAG_LIMIT` (counted in the figures at that time).
    given_up: usize,
    /// Tokens B did not accept before the logout (no sample).
    unaccepted: usize,
}

/// The summary `flow` writes (see flow.rs).
#[derive(Deserialize, Default)]
struct Flow {
    users: u64,
    duration_s: f64,
    visits_failed: u64,
    requests: Vec<FlowRequest>,
    errors: Vec<FlowError>,
}

#[derive(Deserialize)]
struct FlowRequest {
    name: String,
    count: u64,
    mean_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    failures: u64,
}

#[derive(Deserialize)]
struct FlowError {
    error: String,
    count: u64,
}

struct Backend {
    name: &'static str,
    seeding: Seeding,
    levels: Vec<(u32, Run, Run)>,
    logins: Run,
    ceiling: f64,
    idle_p99: f64,
    flood_p99: f64,
    flood_logins: f64,
    refreshes: Refreshes,
    flow: Flow,
    lag: Option<Lag>,
    peak_rss_mb: f64,
    /// The most threads the server ran at once (sampled every 100 ms), and at the end.
    most_threads: u64,
    threads_at_end: u64,
    bare_peak_rss_mb: f64,
    /// At 1,000 connections: bare `/verify`, then the example resource server's protected
    /// route (`examples/resource-server`, which verifies with `jwt-auth-verifier`).
    resource: (Run, Run),
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut settings = Settings {
        bin_dir: PathBuf::from(
            std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
        )
        .join("release"),
        out: PathBuf::from("docs"),
        duration: "8s".into(),
        postgres: std::env::var("REPORT_POSTGRES_URL").ok().filter(|u| !u.is_empty()),
        flow_users: 10_000,
        flow_rate: "45".into(),
    };
    const USAGE: &str = "usage: report [--bin-dir DIR] [--out DIR] [--duration 8s] \
                         [--flow-users 10000] [--flow-rate 45]";
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--bin-dir", Some(v)) => settings.bin_dir = v.into(),
            ("--out", Some(v)) => settings.out = v.into(),
            ("--duration", Some(v)) => settings.duration = v,
            ("--flow-users", Some(v)) => {
                settings.flow_users =
                    v.parse().ok().filter(|&n| n > 0).unwrap_or_else(|| fail(USAGE))
            }
            ("--flow-rate", Some(v)) => {
                v.parse::<f64>().ok().filter(|&r| r > 0.0).unwrap_or_else(|| fail(USAGE));
                settings.flow_rate = v;
            }
            _ => fail(USAGE),
        }
    }
    seconds(&settings.duration).unwrap_or_else(|| fail(USAGE));
    if let Some(url) = &settings.postgres
        && !database_name(url).contains("report")
    {
        fail(format!(
            "REPORT_POSTGRES_URL: the run drops its database and creates it again, so its \
             name must contain `report` (got `{}`)",
            database_name(url)
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(format!("a tokio runtime: {e}")));
    let machine = machine();
    eprintln!("report: on {machine}");
    let mut backends = vec![measure("SQLite", None, &settings, &runtime)];
    if let Some(url) = settings.postgres.clone() {
        backends.push(measure("PostgreSQL", Some(url), &settings, &runtime));
    }
    write_report(&settings.out, &machine, &settings, &backends);
}

/// A wrk duration (`8s`, `2m`, `1h`, or seconds) in seconds.
fn seconds(duration: &str) -> Option<f64> {
    let (number, factor) = match duration.char_indices().last()? {
        (i, 's') => (&duration[..i], 1.0),
        (i, 'm') => (&duration[..i], 60.0),
        (i, 'h') => (&duration[..i], 3_600.0),
        _ => (duration, 1.0),
    };
    number.parse::<f64>().ok().filter(|&n| n > 0.0).map(|n| n * factor)
}

/// The database a PostgreSQL URL names.
fn database_name(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.split_once('/').map_or("", |(_, path)| path);
    path.split(['?', '#']).next().unwrap_or("")
}

struct Server {
    process: Process,
    base: String,
}

fn start(bin: &Path, envs: &[(&str, String)], port: u16, path: &str) -> Server {
    let mut command = Command::new(bin);
    if bin.ends_with("jwt-auth") {
        command.arg("serve");
    }
    command
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .env("BIND_ADDRESS", format!("127.0.0.1:{port}"));
    let process = Process::spawn(command.stdout(Stdio::null()).stderr(Stdio::null()));
    let base = format!("http://127.0.0.1:{port}");
    let server = Server { process, base };
    let deadline = Instant::now() + Duration::from_secs(30);
    while curl(&["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("{}{path}", server.base)])
        == "000"
    {
        if Instant::now() > deadline {
            fail(format!("{} did not answer in 30 s", bin.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn curl(args: &[&str]) -> String {
    let output =
        Command::new("curl").args(args).output().unwrap_or_else(|e| fail(format!("curl: {e}")));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn post_json(url: &str, body: &str) -> String {
    curl(&["-s", "-X", "POST", url, "-H", "content-type: application/json", "-d", body])
}

/// Runs wrk and reads its summary.
fn wrk(
    connections: u32,
    duration: &str,
    script: Option<&Path>,
    headers: &[String],
    url: &str,
) -> Run {
    let threads = connections.min(2).to_string();
    let mut command = Command::new("wrk");
    command.args([
        "--latency",
        "-t",
        &threads,
        "-c",
        &connections.to_string(),
        "-d",
        duration,
        "--timeout",
        "10s",
    ]);
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    for header in headers {
        command.args(["-H", header]);
    }
    let output = command
        .arg(url)
        .output()
        .unwrap_or_else(|e| fail(format!("wrk: {e} (apt-get install wrk)")));
    let text = String::from_utf8_lossy(&output.stdout);
    let mut run = Run::default();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", rps] => run.rps = rps.parse().unwrap_or(0.0),
            ["99%", latency] => run.p99_ms = millis(latency),
            _ if line.contains("Socket errors") || line.contains("Non-2xx") => {
                run.errors.push_str(line.trim());
                run.errors.push(' ');
            }
            _ => {}
        }
    }
    run
}

fn millis(latency: &str) -> f64 {
    let (number, factor) = if let Some(v) = latency.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = latency.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = latency.strip_suffix('s') {
        (v, 1_000.0)
    } else {
        (latency, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * factor
}

/// Samples the thread count of a process every 100 ms until `stop` is set; returns the
/// highest seen.
fn sample_threads(
    pid: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut most = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            most = most.max(proc_status(pid, "Threads:").unwrap_or(0.0) as u64);
            std::thread::sleep(Duration::from_millis(100));
        }
        most
    })
}

/// The peak resident memory of a process, in MB.
fn peak_rss_mb(pid: u32) -> f64 {
    proc_status(pid, "VmHWM:").map_or(f64::NAN, |kb| kb / 1_000.0)
}

/// Logins per second the machine's cores can verify: one argon2id verification with the
/// server's parameters (m = 19 MiB, t = 2, p = 1), timed as the median of 15, times the cores.
fn argon2_ceiling() -> f64 {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};
    let argon2 = argon2::Argon2::default();
    let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").expect("a valid salt");
    let hash = argon2.hash_password(PASSWORD.as_bytes(), &salt).expect("a hash");
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let started = Instant::now();
            let _ = argon2.verify_password(b"wrong password", &hash);
            started.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    cores / times[times.len() / 2]
}

fn lua(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let script = format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{body}'\n"
    );
    std::fs::write(&path, script).unwrap_or_else(|e| fail(e));
    path
}

fn measure(
    name: &'static str,
    postgres: Option<String>,
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
) -> Backend {
    eprintln!("report: {name}");
    let work = std::env::temp_dir().join(format!("jwt-auth-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap_or_else(|e| fail(e));
    let secret: String = (0..48)
        .map(|i| char::from(b'a' + ((i * 7 + std::process::id() as usize) % 26) as u8))
        .collect();
    if let Some(url) = &postgres {
        runtime.block_on(recreate_postgres(url));
    }
    let database = postgres
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", work.join("jwt-auth.db").display()));
    let mut envs = vec![
        ("DATABASE_URL", database.clone()),
        ("DATA_DIR", work.display().to_string()),
        ("JWT_SECRET", secret.clone()),
        ("LOGIN_RATE_LIMIT", "0".to_owned()),
        ("LOGIN_FAILURE_BACKOFF", "0".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    if postgres.is_some() {
        // Instances on one PostgreSQL database share their keys under this key; the HS256
        // secret above still signs, so bare /verify checks the very same tokens.
        envs.push(("KEY_ENCRYPTION_KEY", key_encryption_key()));
    }
    let server = start(&settings.bin_dir.join("jwt-auth"), &envs, 18_280, "/ready");
    let stop_sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads = sample_threads(server.process.id(), stop_sampling.clone());
    let bare = start(
        &settings.bin_dir.join("bare_verify"),
        &[("JWT_SECRET", secret.clone())],
        18_281,
        "/verify",
    );
    let email = format!("report-{}@example.com", std::process::id());

    eprintln!("report: {name}: seeding {USERS} users");
    let started = Instant::now();
    let user = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
    post_json(&format!("{}/auth/register", server.base), &user);
    let users = runtime.block_on(seed(&database, &email));
    let seeding = Seeding { users, seconds: started.elapsed().as_secs_f64() };
    eprintln!("report: {name}: {users} users in the database after {:.1} s", seeding.seconds);
    if users < USERS {
        fail(format!("{name}: {users} users in the database, not {USERS}"));
    }

    let login = format!(r#"{{"username":"{email}","password":"{PASSWORD}"}}"#);
    let pair = post_json(&format!("{}/auth/login", server.base), &login);
    let token = pair
        .split("\"access_token\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| fail(format!("login failed: {pair}")))
        .to_owned();
    let bearer = vec![format!("Authorization: Bearer {token}")];
    let duration = settings.duration.as_str();

    let mut levels = Vec::new();
    for connections in LEVELS {
        eprintln!("report: {name}: {connections} connections");
        let verify = wrk(connections, duration, None, &bearer, &format!("{}/verify", bare.base));
        let me = wrk(connections, duration, None, &bearer, &format!("{}/api/me", server.base));
        levels.push((connections, verify, me));
    }

    eprintln!("report: {name}: the example resource server beside bare /verify");
    let resource = {
        let added = Command::new(settings.bin_dir.join("jwt-auth"))
            .args(["clients", "add", "report-resource-server", "--json"])
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap_or_else(|e| fail(format!("jwt-auth clients add: {e}")));
        let client: Value = serde_json::from_slice(&added.stdout)
            .unwrap_or_else(|_| fail(String::from_utf8_lossy(&added.stderr)));
        let rs_envs = [
            ("JWT_AUTH_URL", server.base.clone()),
            ("JWT_ISSUER", "jwt-auth".to_owned()),
            ("JWT_SECRET", secret.clone()),
            ("CLIENT_ID", client["client_id"].as_str().unwrap_or_default().to_owned()),
            ("CLIENT_SECRET", client["client_secret"].as_str().unwrap_or_default().to_owned()),
        ];
        let rs = start(&settings.bin_dir.join("resource-server"), &rs_envs, 18_283, "/ready");
        let verify = wrk(1_000, duration, None, &bearer, &format!("{}/verify", bare.base));
        let stocks = wrk(1_000, duration, None, &bearer, &format!("{}/stocks/acme", rs.base));
        drop(rs);
        (verify, stocks)
    };
    // After its 10,000-connection run: what Actix-web's own per-connection buffers cost.
    let bare_peak_rss_mb = peak_rss_mb(bare.process.id());
    drop(bare);

    eprintln!("report: {name}: logins");
    let ceiling = argon2_ceiling();
    let login_script = lua(&work, "login.lua", &login);
    let logins =
        wrk(32, duration, Some(&login_script), &[], &format!("{}/auth/login", server.base));

    eprintln!("report: {name}: a wrong-password flood beside /api/me");
    let idle = wrk(100, duration, None, &bearer, &format!("{}/api/me", server.base));
    let wrong = format!(r#"{{"username":"{email}","password":"not the password"}}"#);
    let flood_script = lua(&work, "flood.lua", &wrong);
    let flood_url = format!("{}/auth/login", server.base);
    let flood_duration = duration.to_owned();
    let flood =
        std::thread::spawn(move || wrk(64, &flood_duration, Some(&flood_script), &[], &flood_url));
    std::thread::sleep(Duration::from_millis(500));
    let during = wrk(100, duration, None, &bearer, &format!("{}/api/me", server.base));
    let flood = flood.join().unwrap_or_default();

    eprintln!("report: {name}: {REFRESH_CLIENTS} clients chaining refreshes");
    let window = Duration::from_secs_f64(seconds(duration).unwrap_or(8.0));
    let refreshes = runtime.block_on(refresh_chains(&server.base, window));

    let flow = flow(settings, &server.base, &work, name);

    let lag = postgres.is_some().then(|| {
        eprintln!(
            "report: {name}: revocation lag over {LAG_LOGOUTS} logouts between two instances"
        );
        let b = start(&settings.bin_dir.join("jwt-auth"), &envs, 18_282, "/ready");
        let lag = runtime.block_on(revocation_lag(&server.base, &b.base, &email));
        drop(b);
        lag
    });

    let peak_rss_mb = peak_rss_mb(server.process.id());
    let threads_at_end = proc_status(server.process.id(), "Threads:").unwrap_or(0.0) as u64;
    stop_sampling.store(true, std::sync::atomic::Ordering::Relaxed);
    let most_threads = threads.join().unwrap_or(0);
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
    Backend {
        name,
        seeding,
        levels,
        logins,
        ceiling,
        idle_p99: idle.p99_ms,
        flood_p99: during.p99_ms,
        flood_logins: flood.rps,
        refreshes,
        flow,
        lag,
        peak_rss_mb,
        most_threads,
        threads_at_end,
        bare_peak_rss_mb,
        resource,
    }
}

/// 32 random bytes, base64: a key-encryption key for this run.
fn key_encryption_key() -> String {
    use base64::Engine as _;
    let mut bytes = [0_u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap_or_else(|e| fail(format!("/dev/urandom: {e}")));
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Drops the report's database and creates it afresh, from the server's `postgres` database
/// (a database cannot drop itself): what the last run left goes with it, and the server
/// migrates the new one. The store has no call that creates or drops a database; its own
/// tests make theirs the same way.
async fn recreate_postgres(url: &str) {
    let name = database_name(url);
    let (client, connection) =
        tokio_postgres::connect(&with_database(url, "postgres"), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| fail(format!("REPORT_POSTGRES_URL: {e}")));
    tokio::spawn(connection);
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    // One statement a call: neither may run inside a transaction block.
    for statement in [
        format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"),
        format!("CREATE DATABASE {quoted}"),
    ] {
        client
            .batch_execute(&statement)
            .await
            .unwrap_or_else(|e| fail(format!("recreating {name}: {e}")));
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let base = base[authority..].find('/').map_or(base, |i| &base[..authority + i]);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Fills the database up to `USERS` users through the store's user import (what `jwt-auth
/// user import` calls): copies of the registered user `email` (its password hash and roles,
/// created at its time) at the addresses of `SEED_EMAIL`, in one transaction. No password is
/// hashed here: every copy has the registered user's hash. Returns how many users the
/// database then holds.
async fn seed(database: &str, email: &str) -> u64 {
    let failed = |e: StoreError| -> ! { fail(format!("seed: {e}")) };
    // The server has the database open too: wait up to 10 s for its locks (SQLite).
    let options = StoreOptions { busy_timeout: Duration::from_secs(10), ..StoreOptions::default() };
    let store = Store::connect_with(database, options).await.unwrap_or_else(|e| failed(e));
    let registered = store
        .user_by_email(email)
        .await
        .unwrap_or_else(|e| failed(e))
        .unwrap_or_else(|| fail(format!("seed: {email} is not registered")));
    let users: Vec<NewUser> = (1..USERS as usize)
        .map(|n| NewUser {
            email: seeded_email(n),
            password_hash: registered.password_hash.clone(),
            roles: registered.user.roles.clone(),
        })
        .collect();
    store
        .import_users(&users, registered.user.created_at, ExistingEmails::Refuse)
        .await
        .unwrap_or_else(|e| failed(e));
    store.list_users(1, 0).await.unwrap_or_else(|e| failed(e)).total
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| fail(format!("an HTTP client: {e}")))
}

/// POSTs JSON, optionally with a bearer token: the status and the JSON answer (or null).
async fn post(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    body: &Value,
) -> Result<(u16, Value), reqwest::Error> {
    let mut request = client.post(url).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.bytes().await?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// The access and refresh tokens of a token-pair answer.
fn tokens(pair: &Value) -> Option<(String, String)> {
    Some((pair["access_token"].as_str()?.to_owned(), pair["refresh_token"].as_str()?.to_owned()))
}

async fn login(client: &reqwest::Client, base: &str, email: &str) -> (String, String) {
    let body = json!({"username": email, "password": PASSWORD});
    match post(client, &format!("{base}/auth/login"), None, &body).await {
        Ok((200, pair)) => tokens(&pair).unwrap_or_else(|| fail(format!("login: {pair}"))),
        Ok((status, body)) => fail(format!("login of {email}: {status} {body}")),
        Err(e) => fail(format!("login of {email}: {e}")),
    }
}

fn seeded_email(n: usize) -> String {
    SEED_EMAIL.replace("{}", &n.to_string())
}

/// `REFRESH_CLIENTS` clients (seeded accounts) log in, then, all at once, each chains
/// refreshes for `window`: every refresh presents the refresh token the previous one
/// returned. A refused refresh ends that client's chain and counts as an error.
async fn refresh_chains(base: &str, window: Duration) -> Refreshes {
    let client = http_client();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(REFRESH_CLIENTS + 1));
    let mut chains = tokio::task::JoinSet::new();
    for n in 1..=REFRESH_CLIENTS {
        let (client, start, base) = (client.clone(), start.clone(), base.to_owned());
        chains.spawn(async move {
            let (_, mut refresh) = login(&client, &base, &seeded_email(n)).await;
            let url = format!("{base}/auth/refresh");
            start.wait().await;
            let deadline = Instant::now() + window;
            let (mut times, mut errors) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let sent = Instant::now();
                let answer = post(&client, &url, None, &json!({"refresh_token": refresh})).await;
                let next = match answer {
                    Ok((200, pair)) => tokens(&pair),
                    _ => None,
                };
                match next {
                    Some((_, next)) => {
                        times.push(sent.elapsed().as_secs_f64() * 1_000.0);
                        refresh = next;
                    }
                    None => {
                        errors += 1;
                        break;
                    }
                }
            }
            (times, errors)
        });
    }
    start.wait().await;
    let started = Instant::now();
    let mut result = Refreshes::default();
    let mut times = Vec::new();
    while let Some(chain) = chains.join_next().await {
        let (chain_times, errors) = chain.unwrap_or_else(|e| fail(format!("a refresh chain: {e}")));
        times.extend(chain_times);
        result.errors += errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    result.count = times.len();
    result.rps = times.len() as f64 / elapsed;
    result.p99_ms = quantile(&times, 0.99);
    result
}

/// `LAG_LOGOUTS` times: log in on A, see the token accepted on B, log out on A, then ask B's
/// `/api/me` again as soon as it answers until it refuses the token; the lag is the time from
/// A's logout answer to B's refusal.
async fn revocation_lag(a: &str, b: &str, email: &str) -> Lag {
    let client = http_client();
    // `/api/me` on B: the status, and whether a refusal says the token was revoked.
    let me = |token: String| {
        let client = client.clone();
        let url = format!("{b}/api/me");
        async move {
            let response = match client.get(url).bearer_auth(token).send().await {
                Ok(response) => response,
                Err(e) => fail(format!("/api/me on B: {e}")),
            };
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            (status, body["error"] == "token_revoked")
        }
    };
    let (mut lags, mut given_up, mut unaccepted) = (Vec::new(), 0, 0);
    for _ in 0..LAG_LOGOUTS {
        let (access, refresh) = login(&client, a, email).await;
        if me(access.clone()).await.0 != 200 {
            unaccepted += 1;
            continue;
        }
        let body = json!({"refresh_token": refresh});
        match post(&client, &format!("{a}/auth/logout"), Some(&access), &body).await {
            Ok((204, _)) => {}
            Ok((status, body)) => fail(format!("logout on A: {status} {body}")),
            Err(e) => fail(format!("logout on A: {e}")),
        }
        let answered = Instant::now();
        loop {
            match me(access.clone()).await {
                (401, true) => break,
                (200, _) => {}
                (status, _) => fail(format!("/api/me on B answered {status} after a logout on A")),
            }
            if answered.elapsed() > LAG_LIMIT {
                given_up += 1;
                break;
            }
        }
        lags.push(answered.elapsed().as_secs_f64() * 1_000.0);
    }
    lags.sort_by(f64::total_cmp);
    Lag {
        samples: lags.len(),
        p50_ms: quantile(&lags, 0.50),
        p99_ms: quantile(&lags, 0.99),
        max_ms: lags.last().copied().unwrap_or(f64::NAN),
        given_up,
        unaccepted,
    }
}

/// Runs the goose user flow (`flow`) against the server and reads its summary.
fn flow(settings: &Settings, base: &str, work: &Path, name: &str) -> Flow {
    let rate: f64 = settings.flow_rate.parse().unwrap_or(45.0);
    eprintln!(
        "report: {name}: goose flow, {} users started at {} a second (about {:.0} s)",
        settings.flow_users,
        settings.flow_rate,
        f64::from(settings.flow_users) / rate
    );
    let summary = work.join("flow.json");
    let log = work.join("flow.log");
    let output = std::fs::File::create(&log).unwrap_or_else(|e| fail(e));
    let status = Command::new(settings.bin_dir.join("flow"))
        .args(["--host", base, "--users", &settings.flow_users.to_string()])
        .args(["--increase-rate", &settings.flow_rate, "--iterations", "1", "--no-telnet"])
        .env("FLOW_SUMMARY", &summary)
        .env("FLOW_EMAIL", SEED_EMAIL)
        .env("FLOW_ACCOUNTS", (USERS - 1).to_string())
        .env("FLOW_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap_or_else(|e| fail(e)))
        .stderr(output)
        .status()
        .unwrap_or_else(|e| fail(format!("cannot start flow: {e}")));
    let text = std::fs::read_to_string(&summary).unwrap_or_default();
    match serde_json::from_str::<Flow>(&text) {
        Ok(flow) if status.success() => flow,
        _ => {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            fail(format!("flow failed ({status}):\n{}", tail.join("\n")))
        }
    }
}

fn write_report(out: &Path, machine: &str, settings: &Settings, backends: &[Backend]) {
    std::fs::create_dir_all(out.join("performance")).unwrap_or_else(|e| fail(e));
    let mut md = String::new();
    let _ = writeln!(md, "# Performance\n");
    let _ = writeln!(
        md,
        "Generated by `benches/report.sh` on {machine}. Do not edit: run the command again.\n"
    );
    let _ = writeln!(
        md,
        "Server, reference, wrk and the report's own load drivers share the machine's cores, \
         on 127.0.0.1. Each backend is measured with {} users in its database.\n",
        thousands(USERS)
    );
    for b in backends {
        let slug = b.name.to_lowercase();
        let _ = writeln!(md, "## {}\n", b.name);
        let _ = writeln!(md, "### Users in the database\n");
        let _ = writeln!(md, "| measure | value |");
        let _ = writeln!(md, "|---|---|");
        let _ = writeln!(md, "| users while measuring | {} |", thousands(b.seeding.users));
        let _ = writeln!(
            md,
            "| seeding time: one registration through HTTP, then {} users imported in one \
             transaction with its password hash | {:.1} s |\n",
            thousands(USERS - 1),
            b.seeding.seconds
        );
        let _ = writeln!(md, "### `GET /api/me` beside bare Actix-web `GET /verify`\n");
        let _ = writeln!(
            md,
            "| connections | bare /verify req/s | p99 | /api/me req/s | p99 | ratio | errors |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|");
        for (connections, verify, me) in &b.levels {
            let _ = writeln!(
                md,
                "| {connections} | {:.0} | {:.1} ms | {:.0} | {:.1} ms | {:.2}× | {} |",
                verify.rps,
                verify.p99_ms,
                me.rps,
                me.p99_ms,
                me.rps / verify.rps,
                format!("{}{}", verify.errors, me.errors)
                    .trim()
                    .to_owned()
                    .chars()
                    .take(80)
                    .collect::<String>()
                    .replace('|', "/")
            );
        }
        let _ = writeln!(md);
        let _ = writeln!(md, "![requests per second](performance/{slug}-throughput.svg)\n");
        let (verify, stocks) = &b.resource;
        let _ = writeln!(
            md,
            "### The example resource server beside bare `GET /verify`\n\n\
             `examples/resource-server` (actix-web, `jwt-auth-verifier` with this server's \
             HS256 secret, following its revocation feed) answering `GET /stocks/acme` with \
             the same token, at 1,000 connections, right after bare `/verify`.\n"
        );
        let _ = writeln!(md, "| bare /verify req/s | p99 | /stocks req/s | p99 | ratio | errors |");
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        let _ = writeln!(
            md,
            "| {:.0} | {:.1} ms | {:.0} | {:.1} ms | {:.2}× | {} |\n",
            verify.rps,
            verify.p99_ms,
            stocks.rps,
            stocks.p99_ms,
            stocks.rps / verify.rps,
            format!("{}{}", verify.errors, stocks.errors).trim().replace('|', "/")
        );
        let _ = writeln!(md, "### Logins and flood isolation\n");
        let _ = writeln!(md, "| measure | value |");
        let _ = writeln!(md, "|---|---|");
        let _ = writeln!(md, "| logins/s at 32 connections | {:.1} |", b.logins.rps);
        let _ = writeln!(md, "| argon2 ceiling (cores ÷ one verification) | {:.1} |", b.ceiling);
        let _ = writeln!(md, "| logins ÷ ceiling | {:.2} |", b.logins.rps / b.ceiling);
        let _ = writeln!(md, "| `/api/me` p99 at 100 connections, idle | {:.1} ms |", b.idle_p99);
        let _ = writeln!(
            md,
            "| the same during a wrong-password flood (64 connections) | {:.1} ms |",
            b.flood_p99
        );
        let _ = writeln!(md, "| flood ÷ idle p99 | {:.2} |", b.flood_p99 / b.idle_p99);
        let _ =
            writeln!(md, "| failed logins/s answered during the flood | {:.1} |\n", b.flood_logins);

        let r = &b.refreshes;
        let _ = writeln!(md, "### Refreshes\n");
        let _ = writeln!(
            md,
            "Each client logs in once, then chains refreshes for {}: every refresh presents the \
             refresh token the previous one returned. A refused refresh ends its client's chain \
             and counts as an error.\n",
            settings.duration
        );
        let _ = writeln!(md, "| clients | refreshes/s | p99 | refreshes | errors |");
        let _ = writeln!(md, "|---|---|---|---|---|");
        let _ = writeln!(
            md,
            "| {REFRESH_CLIENTS} | {:.0} | {:.1} ms | {} | {} |\n",
            r.rps,
            r.p99_ms,
            thousands(r.count as u64),
            r.errors
        );

        write_flow(&mut md, settings, &b.flow, &slug);
        plot_flow(&out.join(format!("performance/{slug}-flow.svg")), b);

        let _ = writeln!(md, "### Revocation lag between two instances\n");
        match &b.lag {
            Some(lag) => {
                let _ = writeln!(
                    md,
                    "A second `jwt-auth serve` (B) on the same database and key-encryption key. \
                     {LAG_LOGOUTS} times: log in on A, see the token accepted on B, log out on A, \
                     then ask B's `/api/me` again as soon as it answers; the lag runs from A's \
                     logout answer to B's 401 (PostgreSQL pushes the revocation with \
                     LISTEN/NOTIFY, a poll every second is the fallback).\n"
                );
                let _ = writeln!(
                    md,
                    "| logouts timed | p50 | p99 | max | still accepted after {} s | not accepted \
                     on B before |",
                    LAG_LIMIT.as_secs()
                );
                let _ = writeln!(md, "|---|---|---|---|---|---|");
                let _ = writeln!(
                    md,
                    "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {} | {} |\n",
                    lag.samples, lag.p50_ms, lag.p99_ms, lag.max_ms, lag.given_up, lag.unaccepted
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "Not measured: SQLite is served by one process, and instances share no push \
                     feed.\n"
                );
            }
        }

        let _ = writeln!(md, "### Memory and threads\n");
        let _ = writeln!(md, "| measure | value |");
        let _ = writeln!(md, "|---|---|");
        let _ = writeln!(md, "| server peak RSS over the run | {:.1} MB |", b.peak_rss_mb);
        let _ = writeln!(
            md,
            "| bare Actix-web /verify peak RSS after its 10,000-connection run (the floor that \
             Actix-web's own per-connection buffers set) | {:.1} MB |",
            b.bare_peak_rss_mb
        );
        let _ = writeln!(
            md,
            "| server threads: the most at once (sampled every 100 ms), at the end | {}, {} |\n",
            b.most_threads, b.threads_at_end
        );
        plot(&out.join(format!("performance/{slug}-throughput.svg")), b);
    }
    let path = out.join("performance.md");
    std::fs::write(&path, md).unwrap_or_else(|e| fail(e));
    eprintln!("report: wrote {}", path.display());
}

fn write_flow(md: &mut String, settings: &Settings, flow: &Flow, slug: &str) {
    let _ = writeln!(md, "### User flow (goose)\n");
    let _ = writeln!(
        md,
        "{} simulated users started at {} a second (under the argon2 ceiling), each once \
         through: login as one of the seeded users, five `GET /api/me`, one refresh, logout. \
         One shared HTTP client without cookies; times to the answer's headers. The run took \
         {:.0} s; visits that failed: {}.\n",
        thousands(flow.users),
        settings.flow_rate,
        flow.duration_s,
        flow.visits_failed
    );
    let _ = writeln!(md, "| request | requests | mean | p99 | max | failures |");
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for r in &flow.requests {
        let name = if r.name == "all requests" { r.name.clone() } else { format!("`{}`", r.name) };
        let _ = writeln!(
            md,
            "| {name} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
            thousands(r.count),
            r.mean_ms,
            r.p99_ms,
            r.max_ms,
            r.failures
        );
    }
    let _ = writeln!(
        md,
        "| the predecessor's published figures (not measured here) | | {PREDECESSOR_MEAN_MS:.0} \
         ms | {PREDECESSOR_P99_MS:.0} ms | | |\n"
    );
    if !flow.errors.is_empty() {
        let _ = writeln!(md, "Errors, most frequent first:\n");
        for e in &flow.errors {
            let _ = writeln!(md, "- {} × {}", e.count, e.error.replace('|', "/"));
        }
        let _ = writeln!(md);
    }
    let _ = writeln!(md, "![user flow latency](performance/{slug}-flow.svg)\n");
}

/// The flow's mean and p99 per request type as bars, the predecessor's figures as lines.
fn plot_flow(path: &Path, backend: &Backend) {
    let requests = &backend.flow.requests;
    let max = requests.iter().map(|r| r.p99_ms).fold(PREDECESSOR_P99_MS, f64::max) * 1.5;
    let root = SVGBackend::new(path, (720, 360)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let n = requests.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: user flow, mean and p99 by request", backend.name),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..n, 0.0..max)?;
        let labels: Vec<String> = requests.iter().map(|r| r.name.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(labels.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 0.01 {
                    labels.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("ms")
            .draw()?;
        for (series, color, offset) in [("mean", &BLUE, 0.15), ("p99", &RED, 0.5)] {
            chart
                .draw_series(requests.iter().enumerate().map(|(i, r)| {
                    let value = if series == "mean" { r.mean_ms } else { r.p99_ms };
                    let x = i as f64 + offset;
                    Rectangle::new([(x, 0.0), (x + 0.35, value)], color.filled())
                }))?
                .label(series)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        for (series, value, color) in [
            ("predecessor's mean", PREDECESSOR_MEAN_MS, &CYAN),
            ("predecessor's p99", PREDECESSOR_P99_MS, &MAGENTA),
        ] {
            chart
                .draw_series(LineSeries::new([(0.0, value), (n, value)], color.stroke_width(2)))?
                .label(series)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()?;
        root.present()?;
        Ok(())
    };
    if let Err(e) = draw() {
        fail(format!("plot {}: {e}", path.display()));
    }
}

fn plot(path: &Path, backend: &Backend) {
    let max = backend.levels.iter().flat_map(|(_, v, m)| [v.rps, m.rps]).fold(1.0, f64::max) * 1.1;
    let root = SVGBackend::new(path, (720, 360)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{}: requests per second by connections", backend.name),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0..backend.levels.len(), 0.0..max)?;
        let labels: Vec<String> = backend.levels.iter().map(|(c, _, _)| c.to_string()).collect();
        chart
            .configure_mesh()
            .x_labels(labels.len())
            .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
            .x_desc("connections")
            .y_desc("requests/s")
            .draw()?;
        for (series, color) in [("bare /verify", &BLUE), ("/api/me", &RED)] {
            let points: Vec<(usize, f64)> = backend
                .levels
                .iter()
                .enumerate()
                .map(|(i, (_, v, m))| (i, if series == "/api/me" { m.rps } else { v.rps }))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(series)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;
        root.present()?;
        Ok(())
    };
    if let Err(e) = draw() {
        fail(format!("plot {}: {e}", path.display()));
    }
}
