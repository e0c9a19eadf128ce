//! wrk runs: the command, its summary read back, and the Lua scripts of its POSTs.

use std::path::{Path, PathBuf};
use std::process::Command;

use jwt_auth_benches::fail;

/// One wrk run: requests per second, p99 in milliseconds, and the errors wrk reported.
#[derive(Clone, Default)]
pub struct Run {
    pub rps: f64,
    pub p99_ms: f64,
    pub errors: String,
}

/// Runs wrk and reads its summary.
pub fn wrk(
    connections: u32,
    duration: &str,
    script: Option<&Path>,
    headers: &[String],
    url: &str,
) -> Run {
    wrk_text(connections, duration, script, headers, url).0
}

/// The threads wrk runs with at `connections`.
pub fn wrk_threads(connections: u32) -> u32 {
    connections.min(2)
}

/// Runs wrk: its summary, and all it printed (what a script's `done` wrote too).
pub fn wrk_text(
    connections: u32,
    duration: &str,
    script: Option<&Path>,
    headers: &[String],
    url: &str,
) -> (Run, String) {
    let threads = wrk_threads(connections).to_string();
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
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
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
    (run, text)
}

/// A wrk latency (`850.00us`, `1.20ms`, `2.00s`) in milliseconds.
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

/// Writes `dir/name`: a wrk script that POSTs `body` as JSON.
pub fn lua(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let script = format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{body}'\n"
    );
    std::fs::write(&path, script).unwrap_or_else(|e| fail(e));
    path
}
