//! Requests per second of authenticated requests beside bare Actix-web's `GET /verify` (the
//! same HS256 token): the server's `GET /api/me` at each of `LEVELS` connections, and the
//! example resource server's `GET /stocks/acme` at 1,000.

use serde_json::Value;
use std::process::Command;

use jwt_auth_benches::fail;

use crate::Settings;
use crate::servers::{self, Server};
use crate::wrk::{Run, wrk};

/// The connections `/api/me` and bare `/verify` are measured at.
const LEVELS: [u32; 3] = [100, 1_000, 10_000];

/// One level: its connections, bare `/verify`'s run, then `/api/me`'s.
pub type Level = (u32, Run, Run);

/// Bare `/verify`, then `/api/me`, at each of `LEVELS` connections.
pub fn levels(
    name: &str,
    server: &Server,
    bare: &Server,
    bearer: &[String],
    duration: &str,
) -> Vec<Level> {
    let mut levels = Vec::new();
    for connections in LEVELS {
        eprintln!("report: {name}: {connections} connections");
        let verify = wrk(connections, duration, None, bearer, &format!("{}/verify", bare.base));
        let me = wrk(connections, duration, None, bearer, &format!("{}/api/me", server.base));
        levels.push((connections, verify, me));
    }
    levels
}

/// The example resource server (a service client of `server`, verifying with its HS256
/// `secret`) at 1,000 connections, right after bare `/verify`: both runs.
pub fn resource_server(
    name: &str,
    settings: &Settings,
    envs: &[(&str, String)],
    server: &Server,
    bare: &Server,
    secret: &str,
    bearer: &[String],
) -> (Run, Run) {
    eprintln!("report: {name}: the example resource server beside bare /verify");
    let duration = settings.duration.as_str();
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
        ("JWT_SECRET", secret.to_owned()),
        ("CLIENT_ID", client["client_id"].as_str().unwrap_or_default().to_owned()),
        ("CLIENT_SECRET", client["client_secret"].as_str().unwrap_or_default().to_owned()),
    ];
    let rs = servers::start(&settings.bin_dir.join("resource-server"), &rs_envs, 18_283, "/ready");
    let verify = wrk(1_000, duration, None, bearer, &format!("{}/verify", bare.base));
    let stocks = wrk(1_000, duration, None, bearer, &format!("{}/stocks/acme", rs.base));
    drop(rs);
    (verify, stocks)
}
