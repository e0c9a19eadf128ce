//! The change feed past one database server, measured on this machine: release builds of
//! `jwt-auth serve` on one PostgreSQL database (`SCALE_POSTGRES_URL`, dropped and created
//! afresh: its name must contain `scale`) and `nats-server` processes of the run's own, on
//! 127.0.0.1. Run it through `benches/scale.sh`, which builds the binaries first; it rewrites
//! the measured section of `docs/scale-out.md`, between its markers.
//!
//! Measured:
//! - logouts per second with four instances on one PostgreSQL, the database's notifications
//!   sent inside each writing transaction (PostgreSQL alone) and not sent at all (with the
//!   change stream on NATS), in one run (`logouts.rs`);
//! - three regions 40 ms apart (`regions.rs`): the revocation lag from a logout in A to a
//!   refusal in A, B and C, at the instances and the resource servers, over 1,000 logouts; and
//!   four faults, each failing the run if anything is lost (`wan.rs`);
//! - refresh rotations per second with one, two and four instances on one PostgreSQL
//!   (`rotations.rs`);
//! - the memory of jwt-core's revocation set at 1,000,000 revoked sessions (`memory.rs`);
//! - 100 followers at 1,000 events a second, on the stream and on the HTTP feed: their lag
//!   and the auth server's CPU (`followers.rs`).
//!
//! The parts: `logouts.rs` the logouts; `regions.rs` the regions, `proxy.rs` their delaying
//! links, `wan.rs` what is measured on them; `nats.rs` a lone NATS server; the report's
//! `client.rs`, `servers.rs` and `seed.rs` start the instances, log in and make the database.

#[allow(dead_code)]
#[path = "../report/client.rs"]
mod client;
mod followers;
mod logouts;
mod memory;
mod nats;
mod proxy;
mod regions;
mod rotations;
#[allow(dead_code)]
#[path = "../report/seed.rs"]
mod seed;
#[allow(dead_code)]
#[path = "../report/servers.rs"]
mod servers;
mod wan;

use std::path::PathBuf;

use jwt_auth_benches::{fail, machine, release_dir, runtime};

/// `--quick`: small counts and short windows (a smoke run of the harness).
static QUICK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `full`, or `quick` in a smoke run.
fn scaled<T>(full: T, quick: T) -> T {
    if QUICK.load(std::sync::atomic::Ordering::Relaxed) { quick } else { full }
}

/// The one-way delay between regions.
const DELAY: std::time::Duration = std::time::Duration::from_millis(40);

/// The password of the run's user.
const PASSWORD: &str = "scale load password";

/// The environment of a `jwt-auth serve` of the run: on `database_url`, its files in `dir`, the
/// run's `secret` and `key_encryption_key`, without the login throttles (the run logs in from
/// one address, fast), logging warnings only. The caller adds what its part needs.
fn instance_env(
    database_url: &str,
    dir: &std::path::Path,
    secret: &str,
    key_encryption_key: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("DATA_DIR", dir.display().to_string()),
        ("JWT_SECRET", secret.to_owned()),
        ("KEY_ENCRYPTION_KEY", key_encryption_key.to_owned()),
        ("LOGIN_RATE_LIMIT", "0".to_owned()),
        ("LOGIN_FAILURE_BACKOFF", "0".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ]
}

/// A 48-letter HS256 secret of the run, one per `part`.
fn run_secret(part: u8) -> String {
    (0..48u32).map(|i| char::from(b'a' + ((i * u32::from(part)) % 26) as u8)).collect()
}

/// Where the measured section starts and ends in `docs/scale-out.md`.
const BEGIN: &str = "<!-- measured: begin (benches/scale.sh writes this section) -->";
const END: &str = "<!-- measured: end -->";

fn main() {
    let postgres = std::env::var("SCALE_POSTGRES_URL").unwrap_or_else(|_| {
        fail("set SCALE_POSTGRES_URL to a PostgreSQL database the run owns (its name contains `scale`)")
    });
    if !seed::database_name(&postgres).contains("scale") {
        fail(
            "SCALE_POSTGRES_URL: the database is dropped and created afresh; its name must contain `scale`",
        );
    }
    let mut out = PathBuf::from("docs/scale-out.md");
    let mut lag_logouts = 1_000;
    let mut regions_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = PathBuf::from(args.next().unwrap_or_else(|| fail("--out FILE"))),
            // A smoke run: small counts and short windows, figures not worth keeping.
            "--quick" => QUICK.store(true, std::sync::atomic::Ordering::Relaxed),
            // The regions alone (their lag and faults), to look into them: nothing is written.
            "--regions-only" => regions_only = true,
            "--lag-logouts" => {
                lag_logouts = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| fail("--lag-logouts N"))
            }
            other => fail(format!("unknown argument `{other}`")),
        }
    }
    if QUICK.load(std::sync::atomic::Ordering::Relaxed) {
        lag_logouts = lag_logouts.min(20);
    }
    let bin_dir = release_dir();
    let heading = machine();
    let runtime = runtime(2);
    let parts = (!regions_only).then(|| {
        eprintln!("scale: the revocation set's memory");
        let bytes = memory::bytes_per_session();
        let logouts = logouts::measure(&bin_dir.join("jwt-auth"), &postgres, &runtime);
        let rotations = rotations::measure(&bin_dir.join("jwt-auth"), &postgres, &runtime);
        let followers = followers::measure(&bin_dir.join("jwt-auth"), &postgres, &runtime);
        (bytes, logouts, rotations, followers)
    });

    eprintln!("scale: three regions, {} ms apart", DELAY.as_millis());
    runtime.block_on(seed::recreate_postgres(&postgres));
    let (lag, faults) = runtime.block_on(async {
        let mut regions = regions::Regions::start(&bin_dir, &postgres, DELAY).await;
        let email = "scale@example.com";
        let user = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
        servers::post_json(&format!("{}/auth/register", regions.base("a1")), &user);
        eprintln!("scale: the revocation lag over {lag_logouts} logouts");
        let lag = wan::lag(&regions, email, lag_logouts).await;
        eprintln!("scale: faults");
        let faults = wan::faults(&mut regions, email).await;
        (lag, faults)
    });

    let Some((bytes, logouts, rotations, followers)) = parts else {
        for row in &lag {
            eprintln!(
                "scale: lag at {}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                row.label, row.p50, row.p99, row.max
            );
        }
        for (fault, outcome) in &faults {
            eprintln!("scale: {fault}: {outcome}");
        }
        return;
    };
    let mut section = format!(
        "Measured by `benches/scale.sh` on {heading}. Every process of the run shares this machine's cores.\n\n"
    );
    section.push_str(&logouts::markdown(&logouts));
    section.push_str(&rotations::markdown(&rotations));
    section.push_str(&followers::markdown(&followers));
    section.push_str(&memory::markdown(bytes));
    section.push_str(&format!(
        "\n### Revocation lag across regions\n\nThree regions {} ms apart each way (a delaying \
         proxy on every link between them), the PostgreSQL primary and the stream's origin in A. \
         {lag_logouts} logouts on A, one at a time, each timed from A's answer until each place \
         refuses the token (asked every millisecond). Targets: p99 within one region ≤ 20 ms; \
         across regions ≤ the one-way delay + 50 ms = {} ms.\n\n\
         | refused at | logouts | p50 | p99 | max |\n|---|---:|---:|---:|---:|\n",
        DELAY.as_millis(),
        DELAY.as_millis() + 50
    ));
    for row in &lag {
        section.push_str(&format!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms |\n",
            row.label, row.samples, row.p50, row.p99, row.max
        ));
    }
    section.push_str("\n### Faults\n\n| fault | what happened |\n|---|---|\n");
    for (fault, outcome) in &faults {
        section.push_str(&format!("| {fault} | {outcome} |\n"));
    }
    let page =
        std::fs::read_to_string(&out).unwrap_or_else(|e| fail(format!("{}: {e}", out.display())));
    let (Some(begin), Some(end)) = (page.find(BEGIN), page.find(END)) else {
        fail(format!("{} has no measured section between its markers", out.display()))
    };
    let page = format!("{}{BEGIN}\n\n{section}\n{}", &page[..begin], &page[end..]);
    std::fs::write(&out, page).unwrap_or_else(|e| fail(format!("{}: {e}", out.display())));
    eprintln!("scale: wrote {}", out.display());
}
