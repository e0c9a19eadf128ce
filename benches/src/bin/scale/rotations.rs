//! Refresh rotations per second with one, two and four instances on one PostgreSQL database:
//! `CLIENTS` clients log in once, then each chains refreshes (presenting the token the previous
//! one returned) through the instances in turn, for `window()`. A rotation is one transaction on
//! the shared database; the instances share the work of answering.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use jwt_auth_benches::{fail, key_encryption_key, quantile};

use crate::client::{http_client, login, post, tokens};
use crate::nats::free_port;
use crate::seed::recreate_postgres;
use crate::servers::{self, Server, post_json};

/// Clients chaining refreshes at once.
pub const CLIENTS: usize = 32;
/// How long each count runs.
pub fn window() -> Duration {
    crate::scaled(Duration::from_secs(8), Duration::from_secs(2))
}

/// Rotations per second and p99 with `instances` instances.
pub struct Row {
    pub instances: usize,
    pub per_second: f64,
    pub p99_ms: f64,
}

pub fn measure(bin: &Path, postgres: &str, runtime: &tokio::runtime::Runtime) -> Vec<Row> {
    let mut rows = Vec::new();
    for instances in [1, 2, 4] {
        eprintln!("scale: refresh rotations with {instances} instance(s)");
        runtime.block_on(recreate_postgres(postgres));
        let secret = crate::run_secret(5);
        let kek = key_encryption_key();
        let work = std::env::temp_dir().join(format!("jwt-auth-rotations-{}", std::process::id()));
        let servers: Vec<Server> = (0..instances)
            .map(|i| {
                let dir = work.join(format!("instance-{i}"));
                std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(e));
                let envs = crate::instance_env(postgres, &dir, &secret, &kek);
                servers::start(bin, &envs, free_port(), "/ready")
            })
            .collect();
        let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
        let email = "rotations@example.com";
        let user = format!(r#"{{"email":"{email}","password":"{}"}}"#, crate::PASSWORD);
        post_json(&format!("{}/auth/register", bases[0]), &user);
        let (count, mut times) = runtime.block_on(chains(&bases, email));
        times.sort_by(f64::total_cmp);
        rows.push(Row {
            instances,
            per_second: count as f64 / window().as_secs_f64(),
            p99_ms: quantile(&times, 0.99),
        });
        drop(servers);
        let _ = std::fs::remove_dir_all(&work);
    }
    rows
}

/// Every client's chain for `window()`: the rotations answered 200, and each one's time in ms.
async fn chains(bases: &[String], email: &str) -> (usize, Vec<f64>) {
    let client = http_client();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..CLIENTS {
        let (client, start, bases) = (client.clone(), start.clone(), bases.to_vec());
        let email = email.to_owned();
        tasks.spawn(async move {
            let (_, mut refresh) = login(&client, &bases[n % bases.len()], &email).await;
            start.wait().await;
            let deadline = Instant::now() + window();
            let mut times = Vec::new();
            let mut k = n;
            while Instant::now() < deadline {
                k += 1;
                let url = format!("{}/auth/refresh", bases[k % bases.len()]);
                let sent = Instant::now();
                match post(&client, &url, None, &json!({"refresh_token": refresh})).await {
                    Ok((200, pair)) => {
                        refresh = tokens(&pair).unwrap_or_else(|| fail("a refresh pair")).1;
                        times.push(sent.elapsed().as_secs_f64() * 1_000.0);
                    }
                    Ok((status, body)) => fail(format!("refresh: {status} {body}")),
                    Err(e) => fail(format!("refresh: {e}")),
                }
            }
            times
        });
    }
    start.wait().await;
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.unwrap_or_else(|e| fail(e)));
    }
    (all.len(), all)
}

pub fn markdown(rows: &[Row]) -> String {
    let mut out = format!(
        "\n### Refresh rotations per second on one PostgreSQL\n\n{CLIENTS} clients, each chaining \
         refreshes through the instances in turn for {} s.\n\n| instances | rotations/s | p99 |\n\
         |---:|---:|---:|\n",
        window().as_secs()
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {:.0} | {:.1} ms |\n",
            row.instances, row.per_second, row.p99_ms
        ));
    }
    out
}
