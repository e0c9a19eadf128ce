//! One backend measured end to end: its servers started, its database seeded, then each
//! measurement in turn, in an order that matters (bare `/verify`'s peak RSS is read after its
//! 10,000-connection run; the flood and the flow come after the throughput runs; DPoP comes
//! after the server's memory is read, its replay cache then holding the proofs of the runs).
//! [`prepare`] alone starts the server and seeds its database, for `report --only dpop`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use jwt_auth_benches::{Most, fail, key_encryption_key, peak_rss_mb, proc_status};

use crate::dpop::{self, Dpop};
use crate::logins::{self, Logins};
use crate::refreshes::{self, Refreshes};
use crate::revocations::{self, Lag};
use crate::seed::{self, Seeding};
use crate::servers::{self, Server, post_json};
use crate::sign_ins::{self, SignIns};
use crate::throughput::{self, Level};
use crate::user_flow::{self, Flow};
use crate::wrk::Run;
use crate::{PASSWORD, Settings, seconds};

/// What one backend measured.
pub struct Backend {
    pub name: &'static str,
    pub seeding: Seeding,
    pub levels: Vec<Level>,
    pub logins: Logins,
    pub refreshes: Refreshes,
    pub sign_ins: SignIns,
    pub flow: Flow,
    pub lag: Option<Lag>,
    pub peak_rss_mb: f64,
    /// The most threads the server ran at once (sampled every 100 ms), and at the end.
    pub most_threads: u64,
    pub threads_at_end: u64,
    pub bare_peak_rss_mb: f64,
    /// At 1,000 connections: bare `/verify`, then the example resource server's protected
    /// route (`examples/resource-server`, which verifies with `jwt-auth-verifier`).
    pub resource: (Run, Run),
    /// DPoP-bound `/api/me` beside bearer, measured last.
    pub dpop: Dpop,
}

/// A backend ready to measure: its database seeded, `jwt-auth serve` answering on it.
pub struct Prepared {
    /// The run's own directory (the SQLite database, wrk's scripts), to remove at the end.
    pub work: PathBuf,
    pub envs: Vec<(&'static str, String)>,
    pub secret: String,
    pub server: Server,
    /// The user registered through HTTP (the others are its copies), and its login's body.
    pub email: String,
    pub login: String,
    pub seeding: Seeding,
    /// The most threads the server runs at once, sampled from its start.
    pub threads: Most,
}

/// Starts `jwt-auth serve` on SQLite (`postgres` None, a file in a fresh directory) or on the
/// PostgreSQL database `postgres` names (created afresh first), and seeds its users.
pub fn prepare(
    name: &'static str,
    postgres: Option<&str>,
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
) -> Prepared {
    eprintln!("report: {name}");
    let work = std::env::temp_dir().join(format!("jwt-auth-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap_or_else(|e| fail(e));
    let secret: String = (0..48)
        .map(|i| char::from(b'a' + ((i * 7 + std::process::id() as usize) % 26) as u8))
        .collect();
    if let Some(url) = postgres {
        runtime.block_on(seed::recreate_postgres(url));
    }
    let database = postgres
        .map(str::to_owned)
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
    let server = servers::start(&settings.bin_dir.join("jwt-auth"), &envs, 18_280, "/ready");
    let server_pid = server.process.id();
    let threads = Most::sample(Duration::from_millis(100), move || {
        proc_status(server_pid, "Threads:").unwrap_or(0.0) as u64
    });
    let email = format!("report-{}@example.com", std::process::id());

    eprintln!("report: {name}: seeding {} users", seed::USERS);
    let started = Instant::now();
    let user = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
    post_json(&format!("{}/auth/register", server.base), &user);
    let users = runtime.block_on(seed::seed(&database, &email));
    let seeding = Seeding { users, seconds: started.elapsed().as_secs_f64() };
    eprintln!("report: {name}: {users} users in the database after {:.1} s", seeding.seconds);
    if users < seed::USERS {
        fail(format!("{name}: {users} users in the database, not {}", seed::USERS));
    }
    let login = format!(r#"{{"username":"{email}","password":"{PASSWORD}"}}"#);
    Prepared { work, envs, secret, server, email, login, seeding, threads }
}

/// Measures `jwt-auth serve` on SQLite (`postgres` None, a file in a fresh directory) or on
/// the PostgreSQL database `postgres` names (created afresh first).
pub fn measure(
    name: &'static str,
    postgres: Option<String>,
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
) -> Backend {
    let Prepared { work, envs, secret, server, email, login, seeding, threads } =
        prepare(name, postgres.as_deref(), settings, runtime);
    let server_pid = server.process.id();
    let bare = servers::start(
        &settings.bin_dir.join("bare_verify"),
        &[("JWT_SECRET", secret.clone())],
        18_281,
        "/verify",
    );
    let pair = post_json(&format!("{}/auth/login", server.base), &login);
    let token = pair
        .split("\"access_token\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| fail(format!("login failed: {pair}")))
        .to_owned();
    let bearer = vec![format!("Authorization: Bearer {token}")];
    let duration = settings.duration.as_str();

    let levels = throughput::levels(name, &server, &bare, &bearer, duration);
    let resource =
        throughput::resource_server(name, settings, &envs, &server, &bare, &secret, &bearer);
    // After its 10,000-connection run: what Actix-web's own per-connection buffers cost.
    let bare_peak_rss_mb = peak_rss_mb(bare.process.id());
    drop(bare);

    let logins = logins::measure(name, &server, &work, &email, &login, &bearer, duration);

    eprintln!("report: {name}: {} clients chaining refreshes", refreshes::CLIENTS);
    let window = Duration::from_secs_f64(seconds(duration).unwrap_or(8.0));
    let refreshes = runtime.block_on(refreshes::refresh_chains(&server.base, window));

    eprintln!("report: {name}: {} browsers chaining sign-ins of an application", sign_ins::CLIENTS);
    let app = sign_ins::register_app(&settings.bin_dir.join("jwt-auth"), &envs);
    let sign_ins = runtime.block_on(sign_ins::code_flows(&server.base, &app, window));

    let flow = user_flow::run(settings, &server.base, &work, name);

    let lag = postgres.is_some().then(|| {
        eprintln!(
            "report: {name}: revocation lag over {} logouts between two instances",
            revocations::LOGOUTS
        );
        let b = servers::start(&settings.bin_dir.join("jwt-auth"), &envs, 18_282, "/ready");
        let lag = runtime.block_on(revocations::revocation_lag(&server.base, &b.base, &email));
        drop(b);
        lag
    });

    let peak_rss_mb = peak_rss_mb(server_pid);
    let threads_at_end = proc_status(server_pid, "Threads:").unwrap_or(0.0) as u64;
    let most_threads = threads.stop();
    // Last, after the memory and threads are read: the server's replay cache then holds the
    // proofs of these runs.
    let dpop = dpop::measure(name, &server, &work, &email, duration, runtime);
    drop(server);
    let _ = std::fs::remove_dir_all(&work);
    Backend {
        name,
        seeding,
        levels,
        logins,
        refreshes,
        sign_ins,
        flow,
        lag,
        peak_rss_mb,
        most_threads,
        threads_at_end,
        bare_peak_rss_mb,
        resource,
        dpop,
    }
}
