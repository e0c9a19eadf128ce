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
//! - sign-ins of an application for browsers signed in already (the sign-in cookie present):
//!   32 browsers chaining the authorization request and the code exchange, per second and
//!   p99, against the refreshes (the target: at least half as many);
//! - the goose user flow: 10,000 users (`--flow-users`) started at 45 a second
//!   (`--flow-rate`), each once through login, five `/api/me`, one refresh and logout; mean,
//!   p99 and failures per request type beside the predecessor's published figures;
//! - on PostgreSQL, the revocation lag between two instances: 200 logouts on A, each timed
//!   from A's answer until B's `/api/me` refuses the token (SQLite is one process);
//! - the server's peak RSS and its thread count (the most at once, and at the end), and bare
//!   `/verify`'s peak RSS after its 10,000-connection run (the floor of Actix-web's own
//!   per-connection buffers);
//! - last, DPoP-bound `GET /api/me` (ES256 and EdDSA proofs, signed beforehand, each sent
//!   once) beside bearer `GET /api/me`, at 100 and 1,000 connections (`dpop.rs`). With
//!   `--only dpop`, only these are measured (on a database seeded as above), and only their
//!   section of `performance.md`, between its markers, is rewritten.
//!
//! A run takes about 6 minutes per backend with the defaults: the goose flow's 10,000 users ÷
//! 45 a second ≈ 4 minutes, about 2 minutes of wrk and refresh chains at 8 s per measurement,
//! seeding and the revocation lag well under a minute. With `--duration 2s --flow-users 200`
//! it takes about half a minute per backend.
//!
//! The parts: `backend.rs` runs one backend's measurements in turn, on the servers of
//! `servers.rs`, after `seed.rs` has filled its database; `wrk.rs` drives wrk, `client.rs`
//! the requests of the refresh chains (`refreshes.rs`) and of the revocation lag
//! (`revocations.rs`); `throughput.rs` measures `/api/me` and the example resource server
//! beside bare `/verify`, `logins.rs` logins and the flood, `user_flow.rs` runs the goose
//! flow, `dpop.rs` DPoP-bound requests; `output.rs` and `plots.rs` write the report.

mod backend;
mod client;
mod dpop;
mod logins;
mod output;
mod plots;
mod refreshes;
mod revocations;
mod seed;
mod servers;
mod sign_ins;
mod throughput;
mod user_flow;
mod wrk;

use std::path::PathBuf;

use jwt_auth_benches::{fail, machine, release_dir, runtime};

/// The password of the registered user and of every seeded one.
const PASSWORD: &str = "report load password";

/// What the command line and `REPORT_POSTGRES_URL` ask for.
struct Settings {
    bin_dir: PathBuf,
    out: PathBuf,
    duration: String,
    postgres: Option<String>,
    flow_users: u32,
    flow_rate: String,
    /// `--only dpop`: measure the DPoP section alone and rewrite only it.
    only_dpop: bool,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut settings = Settings {
        bin_dir: release_dir(),
        out: PathBuf::from("docs"),
        duration: "8s".into(),
        postgres: std::env::var("REPORT_POSTGRES_URL").ok().filter(|u| !u.is_empty()),
        flow_users: 10_000,
        flow_rate: "45".into(),
        only_dpop: false,
    };
    const USAGE: &str = "usage: report [--bin-dir DIR] [--out DIR] [--duration 8s] \
                         [--flow-users 10000] [--flow-rate 45] [--only dpop]";
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
            ("--only", Some(v)) if v == "dpop" => settings.only_dpop = true,
            _ => fail(USAGE),
        }
    }
    seconds(&settings.duration).unwrap_or_else(|| fail(USAGE));
    if let Some(url) = &settings.postgres
        && !seed::database_name(url).contains("report")
    {
        fail(format!(
            "REPORT_POSTGRES_URL: the run drops its database and creates it again, so its \
             name must contain `report` (got `{}`)",
            seed::database_name(url)
        ));
    }
    let runtime = runtime(2);
    let machine = machine();
    eprintln!("report: on {machine}");
    if settings.only_dpop {
        let mut measured = vec![("SQLite", only_dpop("SQLite", None, &settings, &runtime))];
        if let Some(url) = settings.postgres.as_deref() {
            measured.push(("PostgreSQL", only_dpop("PostgreSQL", Some(url), &settings, &runtime)));
        }
        output::rewrite_dpop_section(&settings.out, &machine, &settings, &measured);
        return;
    }
    let mut backends = vec![backend::measure("SQLite", None, &settings, &runtime)];
    if let Some(url) = settings.postgres.clone() {
        backends.push(backend::measure("PostgreSQL", Some(url), &settings, &runtime));
    }
    output::write_report(&settings.out, &machine, &settings, &backends);
}

/// The DPoP section alone on one backend: its database seeded as for the whole report.
fn only_dpop(
    name: &'static str,
    postgres: Option<&str>,
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
) -> dpop::Dpop {
    let prepared = backend::prepare(name, postgres, settings, runtime);
    let measured = dpop::measure(
        name,
        &prepared.server,
        &prepared.work,
        &prepared.email,
        &settings.duration,
        runtime,
    );
    prepared.threads.stop();
    drop(prepared.server);
    let _ = std::fs::remove_dir_all(&prepared.work);
    measured
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
