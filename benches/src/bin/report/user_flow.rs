//! The goose user flow (the `flow` binary): `--flow-users` users started at `--flow-rate` a
//! second, each once through login, five `/api/me`, one refresh and logout; its summary read
//! back.

use std::path::Path;
use std::process::{Command, Stdio};

use serde::Deserialize;

use jwt_auth_benches::fail;

use crate::seed::{SEED_EMAIL, USERS};
use crate::{PASSWORD, Settings};

/// The published figures of the JWT migration this project descends from, for its user flow:
/// the mean and p99 of its requests. They are the predecessor's, not measured here.
pub const PREDECESSOR_MEAN_MS: f64 = 45.0;
pub const PREDECESSOR_P99_MS: f64 = 120.0;

/// The summary `flow` writes (see flow.rs).
#[derive(Deserialize, Default)]
pub struct Flow {
    pub users: u64,
    pub duration_s: f64,
    pub visits_failed: u64,
    pub requests: Vec<FlowRequest>,
    pub errors: Vec<FlowError>,
}

#[derive(Deserialize)]
pub struct FlowRequest {
    pub name: String,
    pub count: u64,
    pub mean_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub failures: u64,
}

#[derive(Deserialize)]
pub struct FlowError {
    pub error: String,
    pub count: u64,
}

/// Runs the goose user flow (`flow`) against the server and reads its summary.
pub fn run(settings: &Settings, base: &str, work: &Path, name: &str) -> Flow {
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
