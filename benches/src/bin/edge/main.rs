//! The edge report: what abusive clients at the network edge cost everyone else. Starts the
//! release `jwt-auth serve` on 127.0.0.1 (SQLite in a temporary directory), registers one
//! user, then, for each attack, measures a legitimate `GET /api/me` load beside it and writes
//! a Markdown table (`docs/edge-report.md` through `benches/edge.sh`).
//!
//! Per attack, for `--duration` (10 s):
//! - the load: 32 connections, closed loop (each sends its next request when the last is
//!   answered), opened before the attack starts; p50, p99 and errors;
//! - a new-connection probe: ten fresh connections a second, each one `GET /api/me` with
//!   `Connection: close`, answered within 5 s or counted as failed: what a client arriving
//!   during the attack sees;
//! - what the attacker sees: the statuses answered, and how its connections ended (closed,
//!   reset, or still open when the attack stopped), with the median time to that end.
//!
//! The attacks: none (the baseline); 1,000 slowloris connections (a header line a second);
//! 1,000 bodies that never finish (half short of their `Content-Length`, half chunked without
//! the last chunk); requests with 100,000 header fields, with a 1 MiB header line, and with
//! both `Content-Length` and `Transfer-Encoding` (a request smuggled in the body), each sent
//! in a loop by four clients; 1,000 slowloris connections that first send one complete
//! request; and 20,000 idle keep-alive connections. Every attacking connection the server
//! ends is opened again until the attack stops, so the attack keeps its size.
//!
//! Then the connection limit: a second server started with an open-files limit of 1,024 is
//! held by 2,000 keep-alive connections (a request every 2 s each), to see what clients past
//! the limit get. The limits themselves (workers, actix-web's connections per worker, the
//! open-files limit, the listen backlog) are read from the running server and the kernel.
//!
//! The 20,000 connections are held by two helper processes (this program, run with
//! `--idle-helper`), so that each stays under an open-files limit of 20,000, a common hard
//! limit; the server inherits the limit of the shell that runs the report, and the report
//! says where it met it.
//!
//! Bounded: everything on 127.0.0.1, every wait has a deadline, and a run takes about three
//! minutes with the default duration. Run it through `benches/edge.sh`, which builds the
//! binaries and raises the open-files limit as far as it may.
//!
//! The parts: `server.rs` starts the server and reads what it holds; `legitimate.rs` is the
//! load and the probe that every attack is measured beside; `attacks.rs` the attackers that
//! hold connections or send requests in a loop, `keep_alive.rs` those that keep connections
//! open (in helper processes for the 20,000), `tally.rs` what they saw; `cases.rs` runs the
//! cases in turn, and `output.rs` writes their table.

mod attacks;
mod cases;
mod keep_alive;
mod legitimate;
mod output;
mod server;
mod tally;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use jwt_auth_benches::{fail, machine, release_dir, runtime};

use crate::keep_alive::{HELPERS, IDLE, idle_helper};
use crate::server::open_files_limit;

/// How long a probe, a load request or an attacker's connection attempt may take before it
/// counts as failed.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);

/// What the command line and `EDGE_COMMAND` ask for.
struct Settings {
    bin_dir: PathBuf,
    out: PathBuf,
    duration: Duration,
    command: String,
}

fn main() {
    let mut settings = Settings {
        bin_dir: release_dir(),
        out: PathBuf::from("docs/edge-report.md"),
        duration: Duration::from_secs(10),
        command: std::env::var("EDGE_COMMAND").unwrap_or_else(|_| "edge".into()),
    };
    const USAGE: &str = "usage: edge [--bin-dir DIR] [--out FILE] [--duration SECONDS]";
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "--idle-helper") {
        args.next();
        idle_helper(args);
    }
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--bin-dir", Some(v)) => settings.bin_dir = v.into(),
            ("--out", Some(v)) => settings.out = v.into(),
            ("--duration", Some(v)) => {
                let seconds = v.trim_end_matches('s').parse::<f64>().ok();
                let seconds = seconds.filter(|s| (1.0..=60.0).contains(s));
                settings.duration = Duration::from_secs_f64(seconds.unwrap_or_else(|| fail(USAGE)));
            }
            _ => fail(USAGE),
        }
    }
    let limit = open_files_limit("self");
    if limit < (IDLE / HELPERS) as u64 + 500 {
        fail(format!(
            "the open-files limit is {limit}; {} connections a helper need more (ulimit -n)",
            IDLE / HELPERS
        ));
    }
    let machine = machine();
    let runtime = runtime(2);
    let report = runtime.block_on(cases::run(&settings));
    let mut md = String::new();
    let _ = writeln!(md, "# Abusive clients at the network edge: measured\n");
    let _ = writeln!(
        md,
        "Generated by `{}` on {machine}. Every figure below is measured by \
         `benches/src/bin/edge/`; none is typed by hand. Notes on each case, the limits and \
         the settings that control them: [network-edge.md](network-edge.md).\n",
        settings.command
    );
    md.push_str(&report);
    if let Some(dir) = settings.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| fail(e));
    }
    std::fs::write(&settings.out, md).unwrap_or_else(|e| fail(e));
    eprintln!("edge: wrote {}", settings.out.display());
}
