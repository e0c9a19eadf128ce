//! Refreshes per second and their p99: `CLIENTS` clients that log in once, then each chain
//! refreshes, presenting the refresh token the previous refresh returned.

use std::time::{Duration, Instant};

use serde_json::json;

use jwt_auth_benches::{fail, quantile};

use crate::client::{http_client, login, post, tokens};
use crate::seed::seeded_email;

/// Clients chaining refreshes at once.
pub const CLIENTS: usize = 32;

/// Refresh chains: refreshes answered 200 per second over the window, their p99, the rest.
#[derive(Default)]
pub struct Refreshes {
    pub count: usize,
    pub rps: f64,
    pub p99_ms: f64,
    pub errors: usize,
}

/// `CLIENTS` clients (seeded accounts) log in, then, all at once, each chains
/// refreshes for `window`: every refresh presents the refresh token the previous one
/// returned. A refused refresh ends that client's chain and counts as an error.
pub async fn refresh_chains(base: &str, window: Duration) -> Refreshes {
    let client = http_client();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS + 1));
    let mut chains = tokio::task::JoinSet::new();
    for n in 1..=CLIENTS {
        let (client, start, base) = (client.clone(), start.clone(), base.to_owned());
        chains.spawn(async move {
            let (_, mut refresh) = login(&client, &base, &seeded_email(n)).await;
            let url = format!("{base}/auth/refresh");
            start.wait().await;
            let deadline = Instant::now() + window;
            let (mut times, mut errors) = (Vec::new(), 0);
            while Instant::now() < deadline {
                let sent = Instant::now();
                let answer = post(&client, &url, None, &json!({"refresh_token": refresh})).await;
                let next = match answer {
                    Ok((200, pair)) => tokens(&pair),
                    _ => None,
                };
                match next {
                    Some((_, next)) => {
                        times.push(sent.elapsed().as_secs_f64() * 1_000.0);
                        refresh = next;
                    }
                    None => {
                        errors += 1;
                        break;
                    }
                }
            }
            (times, errors)
        });
    }
    start.wait().await;
    let started = Instant::now();
    let mut result = Refreshes::default();
    let mut times = Vec::new();
    while let Some(chain) = chains.join_next().await {
        let (chain_times, errors) = chain.unwrap_or_else(|e| fail(format!("a refresh chain: {e}")));
        times.extend(chain_times);
        result.errors += errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    result.count = times.len();
    result.rps = times.len() as f64 / elapsed;
    result.p99_ms = quantile(&times, 0.99);
    result
}
