//! 100 services following the revocation feed at 1,000 events a second: the lag from an
//! event's commit to its application in every follower, and the auth server's CPU, once with
//! the followers on the change stream (NATS JetStream, the server only relays) and once on the
//! server's HTTP feed as Server-Sent Events (the server streams to each of them).
//!
//! The followers are `jwt-auth-verifier`s in this process. The events are written straight to
//! the feed table by one connection, `RATE` a second in batches every 10 ms, each batch one
//! transaction that also notifies (as the server's own writes do without NATS). Every 100 ms
//! one of them is a probe, a cut-off for a user of its own: its lag is the time from its commit
//! until every follower's revocation set holds it, read every millisecond.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_auth_benches::{fail, key_encryption_key, quantile};
use jwt_auth_verifier::{ClientSecret, FeedConfig, KeySource, NatsFeedConfig, Verifier};

use crate::client::{http_client, login, post};
use crate::nats;
use crate::seed::recreate_postgres;
use crate::servers;

/// Followers at once.
pub const FOLLOWERS: usize = 100;
/// Events written a second.
pub const RATE: usize = 1_000;
/// How long the events flow.
pub fn window() -> Duration {
    crate::scaled(Duration::from_secs(10), Duration::from_secs(2))
}

/// One variant's figures.
pub struct Run {
    pub label: &'static str,
    pub probes: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The auth server's CPU over the window, in seconds of CPU per second.
    pub server_cpu: f64,
}

pub fn measure(bin: &Path, postgres: &str, runtime: &tokio::runtime::Runtime) -> Vec<Run> {
    let mut runs = Vec::new();
    for (label, with_nats) in [
        ("On the change stream (NATS JetStream)", true),
        ("On the server's HTTP feed (Server-Sent Events)", false),
    ] {
        eprintln!("scale: {FOLLOWERS} followers, {label}");
        runtime.block_on(recreate_postgres(postgres));
        let nats = with_nats.then(|| nats::start("followers"));
        let work = std::env::temp_dir().join(format!("jwt-auth-followers-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap_or_else(|e| fail(e));
        let secret = crate::run_secret(3);
        let mut envs = crate::instance_env(postgres, &work, &secret, &key_encryption_key());
        envs.push(("ADMIN_EMAIL", crate::regions::ADMIN_EMAIL.to_owned()));
        envs.push(("ADMIN_PASSWORD", crate::PASSWORD.to_owned()));
        if let Some(nats) = &nats {
            envs.push(("NATS_URL", nats.url.clone()));
        }
        let server = servers::start(bin, &envs, nats::free_port(), "/ready");
        let pid = server.process.id();
        let run = runtime.block_on(async {
            let followers = match &nats {
                Some(nats) => on_stream(&nats.url, &secret).await,
                None => on_http(&server.base, &secret).await,
            };
            for follower in &followers {
                if !follower.wait_ready(Duration::from_secs(60)).await {
                    fail(format!("a follower is not ready: {:?}", follower.status()));
                }
            }
            let cpu_before = cpu_seconds(pid);
            let started = Instant::now();
            let lags = write_events(postgres, &followers).await;
            let server_cpu = (cpu_seconds(pid) - cpu_before) / started.elapsed().as_secs_f64();
            let mut lags = lags;
            lags.sort_by(f64::total_cmp);
            Run {
                label,
                probes: lags.len(),
                p50_ms: quantile(&lags, 0.50),
                p99_ms: quantile(&lags, 0.99),
                server_cpu,
            }
        });
        runs.push(run);
        drop(server);
        let _ = std::fs::remove_dir_all(&work);
    }
    runs
}

/// The followers on the stream: no credentials, nothing asked of the server but its keys (an
/// HS256 secret here, so not even those).
async fn on_stream(url: &str, secret: &str) -> Vec<Verifier> {
    (0..FOLLOWERS)
        .map(|_| {
            let key = jwt_core::Secret::new(secret.as_bytes().to_vec()).unwrap_or_else(|e| fail(e));
            Verifier::builder(KeySource::hs256("jwt-auth", key), "api")
                .nats_feed(NatsFeedConfig::new(url))
                .start()
                .unwrap_or_else(|e| fail(e))
        })
        .collect()
}

/// The followers on the HTTP feed: a service client for every four (the server's bound of
/// streams per client), registered by the administrator.
async fn on_http(base: &str, secret: &str) -> Vec<Verifier> {
    let client = http_client();
    let (admin, _) = login(&client, base, crate::regions::ADMIN_EMAIL).await;
    let mut followers = Vec::new();
    for n in 0..FOLLOWERS.div_ceil(4) {
        let body = serde_json::json!({"name": format!("follower-{n}")});
        let created =
            match post(&client, &format!("{base}/api/admin/clients"), Some(&admin), &body).await {
                Ok((201, created)) => created,
                Ok((status, body)) => fail(format!("a service client: {status} {body}")),
                Err(e) => fail(format!("a service client: {e}")),
            };
        let id = created["client_id"].as_str().unwrap_or_default().to_owned();
        let client_secret = created["client_secret"].as_str().unwrap_or_default().to_owned();
        for _ in 0..4 {
            if followers.len() == FOLLOWERS {
                break;
            }
            let key = jwt_core::Secret::new(secret.as_bytes().to_vec()).unwrap_or_else(|e| fail(e));
            let feed = FeedConfig::new(id.clone(), ClientSecret::new(client_secret.clone()))
                .server_url(base);
            followers.push(
                Verifier::builder(KeySource::hs256("jwt-auth", key), "api")
                    .feed(feed)
                    .allow_plain_http(true)
                    .start()
                    .unwrap_or_else(|e| fail(e)),
            );
        }
    }
    followers
}

/// Writes `RATE` events a second for `window()`, a probe every 100 ms; returns each probe's lag
/// at each follower, in milliseconds.
async fn write_events(postgres: &str, followers: &[Verifier]) -> Vec<f64> {
    let (db, connection) = tokio_postgres::connect(postgres, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| fail(format!("PostgreSQL: {e}")));
    tokio::spawn(connection);
    let followers: Arc<Vec<Verifier>> = Arc::new(followers.to_vec());
    let mut checks = tokio::task::JoinSet::new();
    let per_batch = RATE / 100;
    let started = Instant::now();
    let mut batch = 0_u64;
    while started.elapsed() < window() {
        batch += 1;
        let due = started + Duration::from_millis(10 * batch);
        let probe = batch.is_multiple_of(10).then(|| format!("probe-{batch}"));
        let mut sql = String::from("BEGIN;");
        for i in 0..per_batch {
            let user = match (&probe, i) {
                (Some(probe), 0) => probe.clone(),
                _ => format!("user-{batch}-{i}"),
            };
            sql.push_str(&format!(
                "INSERT INTO revocations (recorded_at, kind, user_id, cut_off) \
                 VALUES (now() AT TIME ZONE 'utc', 'issued_before', '{user}', now() AT TIME ZONE 'utc');"
            ));
        }
        sql.push_str("SELECT pg_notify('jwt_auth_changes', 'r:' || floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint); COMMIT;");
        db.batch_execute(&sql).await.unwrap_or_else(|e| fail(format!("writing events: {e}")));
        if let Some(probe) = probe {
            let committed = Instant::now();
            let followers = followers.clone();
            checks.spawn(async move { seen_by_all(&followers, &probe, committed).await });
        }
        tokio::time::sleep_until(due.into()).await;
    }
    let mut lags = Vec::new();
    while let Some(done) = checks.join_next().await {
        lags.extend(done.unwrap_or_else(|e| fail(e)));
    }
    lags
}

/// Every follower's lag for `probe`, asked every millisecond; fails the run past a minute.
async fn seen_by_all(followers: &[Verifier], probe: &str, committed: Instant) -> Vec<f64> {
    let mut lags = vec![None; followers.len()];
    loop {
        for (i, follower) in followers.iter().enumerate() {
            if lags[i].is_none() && follower.revocations().is_revoked("none", probe, 0) {
                lags[i] = Some(committed.elapsed().as_secs_f64() * 1_000.0);
            }
        }
        if lags.iter().all(Option::is_some) {
            return lags.into_iter().flatten().collect();
        }
        if committed.elapsed() > Duration::from_secs(60) {
            fail(format!("{probe} did not reach every follower in a minute"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The CPU time a process has used, in seconds (`/proc/PID/stat`, user and system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<f64>().ok()).sum();
    ticks / 100.0
}

pub fn markdown(runs: &[Run]) -> String {
    let mut out = format!(
        "\n### {FOLLOWERS} followers at {} events a second\n\n{FOLLOWERS} services (`jwt-auth-verifier`s \
         in one process) following the feed while events are written at {} a second for {} s; \
         a probe every 100 ms, timed from its commit until every follower holds it (asked every \
         millisecond). The auth server's CPU is its process's, over the window.\n\n\
         | followers | probe lags | p50 | p99 | auth server CPU |\n|---|---:|---:|---:|---:|\n",
        jwt_auth_benches::thousands(RATE as u64),
        jwt_auth_benches::thousands(RATE as u64),
        window().as_secs()
    );
    for run in runs {
        out.push_str(&format!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.0}% of a core |\n",
            run.label,
            run.probes,
            run.p50_ms,
            run.p99_ms,
            run.server_cpu * 100.0
        ));
    }
    out
}
