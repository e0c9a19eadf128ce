//! Logouts per second with four instances on one PostgreSQL database. A logout is one
//! transaction: the session marked revoked and the revocation recorded in the feed table, under
//! the feed's advisory lock, which orders the feed's ids by commit. On PostgreSQL alone, the
//! transaction also `NOTIFY`s the other instances, and a transaction that notified takes a
//! database-wide lock at commit. With the change stream on NATS nothing is notified: the same
//! logouts, with and without that lock, in one run.
//!
//! Each variant: the database created afresh, four instances started, [`sessions`] logins
//! spread over them (at the argon2 ceiling, not measured), then every session logged out
//! through the instances in turn by `CONCURRENCY` clients at once, timed from the first
//! request to the last answer.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;

use jwt_auth_benches::{fail, key_encryption_key, quantile};

use crate::client::{http_client, login, post};
use crate::nats;
use crate::seed::recreate_postgres;
use crate::servers::{self, Server, post_json};

/// The instances on the one database.
pub const INSTANCES: usize = 4;
/// Sessions logged out per variant.
pub fn sessions() -> usize {
    crate::scaled(4_000, 200)
}
/// Logouts in flight at once.
pub const CONCURRENCY: usize = 64;

/// One variant's figures.
pub struct Run {
    pub label: &'static str,
    pub logouts: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

pub fn measure(bin: &Path, postgres: &str, runtime: &tokio::runtime::Runtime) -> Vec<Run> {
    let mut runs = Vec::new();
    for (label, with_nats) in [
        ("PostgreSQL alone: `NOTIFY` inside each logout's transaction", false),
        ("With `NATS_URL`: no `NOTIFY`", true),
    ] {
        eprintln!("scale: logouts, {label}");
        runtime.block_on(recreate_postgres(postgres));
        let nats = with_nats.then(|| nats::start("logouts"));
        let kek = key_encryption_key();
        let secret = crate::run_secret(11);
        let work = std::env::temp_dir().join(format!("jwt-auth-scale-{}", std::process::id()));
        let instances: Vec<Server> = (0..INSTANCES)
            .map(|i| {
                let dir = work.join(format!("instance-{i}"));
                std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(e));
                let mut envs = crate::instance_env(postgres, &dir, &secret, &kek);
                if let Some(nats) = &nats {
                    envs.push(("NATS_URL", nats.url.clone()));
                }
                servers::start(bin, &envs, nats::free_port(), "/ready")
            })
            .collect();
        let bases: Vec<String> = instances.iter().map(|s| s.base.clone()).collect();
        let email = "scale@example.com";
        let user = format!(r#"{{"email":"{email}","password":"{}"}}"#, crate::PASSWORD);
        post_json(&format!("{}/auth/register", bases[0]), &user);
        let pairs = runtime.block_on(log_in(&bases, email));
        let (per_second, mut latencies) = runtime.block_on(log_out(&bases, pairs));
        latencies.sort_by(f64::total_cmp);
        runs.push(Run {
            label,
            logouts: latencies.len(),
            per_second,
            p50_ms: quantile(&latencies, 0.50),
            p99_ms: quantile(&latencies, 0.99),
        });
        drop(instances);
        let _ = std::fs::remove_dir_all(&work);
    }
    runs
}

/// [`sessions`] logins spread over the instances, 16 at a time: their token pairs.
async fn log_in(bases: &[String], email: &str) -> Vec<(String, String, usize)> {
    let client = http_client();
    let pairs = Arc::new(Mutex::new(Vec::with_capacity(sessions())));
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (client, bases, pairs) = (client.clone(), bases.to_vec(), pairs.clone());
        let email = email.to_owned();
        tasks.spawn(async move {
            for i in (worker..sessions()).step_by(16) {
                let at = i % bases.len();
                let (access, refresh) = login(&client, &bases[at], &email).await;
                pairs.lock().unwrap_or_else(|e| e.into_inner()).push((access, refresh, at));
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    std::mem::take(&mut *pairs.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Logs every session out, `CONCURRENCY` at a time, each through the instance after the one
/// that logged it in: logouts per second, and each one's time in milliseconds.
async fn log_out(bases: &[String], pairs: Vec<(String, String, usize)>) -> (f64, Vec<f64>) {
    let client = http_client();
    let queue = Arc::new(Mutex::new(pairs));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, bases) = (client.clone(), bases.to_vec());
        let (queue, latencies) = (queue.clone(), latencies.clone());
        tasks.spawn(async move {
            loop {
                let Some((access, refresh, at)) =
                    queue.lock().unwrap_or_else(|e| e.into_inner()).pop()
                else {
                    return;
                };
                let url = format!("{}/auth/logout", bases[(at + 1) % bases.len()]);
                let sent = Instant::now();
                match post(&client, &url, Some(&access), &json!({"refresh_token": refresh})).await {
                    Ok((204, _)) => {}
                    Ok((status, body)) => fail(format!("logout: {status} {body}")),
                    Err(e) => fail(format!("logout: {e}")),
                }
                let took = sent.elapsed().as_secs_f64() * 1_000.0;
                latencies.lock().unwrap_or_else(|e| e.into_inner()).push(took);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let seconds = started.elapsed().as_secs_f64();
    let latencies = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    (latencies.len() as f64 / seconds, latencies)
}

/// The section's table.
pub fn markdown(runs: &[Run]) -> String {
    let mut out = format!(
        "### Logouts per second, four instances on one PostgreSQL\n\n{} sessions per \
         variant, logged out by {CONCURRENCY} clients at once through the {INSTANCES} instances \
         in turn.\n\n| | logouts | logouts/s | p50 | p99 |\n|---|---:|---:|---:|---:|\n",
        sessions()
    );
    for run in runs {
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.1} ms | {:.1} ms |\n",
            run.label, run.logouts, run.per_second, run.p50_ms, run.p99_ms
        ));
    }
    if let [alone, stream] = runs {
        out.push_str(&format!(
            "\nWithout `NOTIFY`: {:.2}× the logouts per second.\n",
            stream.per_second / alone.per_second
        ));
    }
    out
}
