//! The table of the edge report, a row per case, and the limits of the run under it.

use std::fmt::Write as _;
use std::time::Duration;

use jwt_auth_benches::thousands;

use crate::REQUEST_LIMIT;
use crate::legitimate::{LOAD_CONNECTIONS, Load, PROBES_PER_SECOND};
use crate::tally::{Tally, seen};

/// actix-server's default connections per worker (`max_connections`).
const ACTIX_MAX_CONNECTIONS: u64 = 25_600;

/// One measurement: the load and the probe beside an attack.
pub struct Measured {
    pub name: &'static str,
    pub tally: Option<Tally>,
    pub load: Load,
    pub probe: Load,
    /// What else the attack showed, in words.
    pub note: String,
}

pub struct Limits {
    pub workers: u64,
    pub fd_limit: u64,
    /// The most descriptors the server held in the 20,000-connection runs, and at rest.
    pub most_fds: u64,
    pub idle_fds: u64,
    pub somaxconn: String,
    pub idle_rss: f64,
    pub peak_rss: f64,
}

pub fn write_report(rows: &[Measured], duration: Duration, limits: Limits) -> String {
    let mut md = String::new();
    let idle_p99 = rows.first().map_or(f64::NAN, |r| r.load.p(0.99));
    let _ = writeln!(
        md,
        "Each attack ran beside a legitimate load for {} s: {LOAD_CONNECTIONS} connections \
         asking for `GET /api/me` (a valid bearer token) one request after another, opened \
         before the attack, and a probe opening {PROBES_PER_SECOND} fresh connections a second \
         (one `GET /api/me` each). A request not answered 200 within {} s is an error. \
         Latencies in milliseconds. The attacking clients, the load and the server share the \
         machine's cores: part of a latency increase is the attacker's own CPU use, which a \
         remote attacker would not take from the server.\n",
        duration.as_secs(),
        REQUEST_LIMIT.as_secs()
    );
    let _ = writeln!(
        md,
        "| attack | what the server did (as the attacker saw it) | /api/me p50 | /api/me p99 | \
         p99 ÷ idle p99 | /api/me errors | new connections p50 / max | new-connection errors |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let mut did = row.tally.as_ref().map(seen).unwrap_or_default();
        if !row.note.is_empty() {
            if !did.is_empty() {
                did.push_str("; ");
            }
            did.push_str(&row.note);
        }
        let _ = writeln!(
            md,
            "| {} | {did} | {} | {} | {:.1} | {} of {} | {} / {} | {} of {} |",
            row.name,
            ms(row.load.p(0.5)),
            ms(row.load.p(0.99)),
            row.load.p(0.99) / idle_p99,
            thousands(row.load.errors),
            thousands(row.load.ms.len() as u64 + row.load.errors),
            ms(row.probe.p(0.5)),
            ms(row.probe.ms.last().copied().unwrap_or(f64::NAN)),
            thousands(row.probe.errors),
            thousands(row.probe.ms.len() as u64 + row.probe.errors),
        );
    }
    let actix = limits.workers * ACTIX_MAX_CONNECTIONS;
    let (lower, room) = if limits.fd_limit < actix {
        ("the open-files limit", limits.fd_limit.saturating_sub(limits.idle_fds))
    } else {
        ("actix-web's connection limit", actix)
    };
    let _ = writeln!(
        md,
        "\nThe limits of the run: {} actix-web workers (one per core) × {} connections each \
         (actix-web's `max_connections` default) = {} connections; an open-files limit of {} \
         for the server process (inherited from the shell that ran the report); a listen \
         backlog of 4096 (`cli::LISTEN_BACKLOG`), capped by `net.core.somaxconn` = {}. The \
         lower here is {lower}: about {} connections, the server holding {} descriptors at \
         rest. The attacking processes, on the same cores, held the server at {} descriptors \
         at most; the last row shows what clients get past the limit. The server's resident \
         memory: {:.0} MB after the baseline, {:.0} MB at its peak (after the 20,000 \
         connections).",
        limits.workers,
        thousands(ACTIX_MAX_CONNECTIONS),
        thousands(actix),
        thousands(limits.fd_limit),
        limits.somaxconn,
        thousands(room),
        thousands(limits.idle_fds),
        thousands(limits.most_fds),
        limits.idle_rss,
        limits.peak_rss,
    );
    md
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".to_owned()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.0}")
    }
}
