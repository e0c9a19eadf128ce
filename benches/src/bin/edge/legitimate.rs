//! The legitimate clients measured beside every attack: a closed-loop `GET /api/me` load on
//! connections opened before the attack, and a probe of fresh connections, which is what a
//! client arriving during the attack sees.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use jwt_auth_benches::{fail, quantile};

use crate::REQUEST_LIMIT;
use crate::server::statuses;

/// The legitimate load's connections.
pub const LOAD_CONNECTIONS: usize = 32;
/// Fresh connections of the probe, a second.
pub const PROBES_PER_SECOND: u64 = 10;

/// The legitimate load of one measurement: latencies in milliseconds, and the failures.
#[derive(Default)]
pub struct Load {
    pub ms: Vec<f64>,
    pub errors: u64,
}

impl Load {
    pub fn p(&self, q: f64) -> f64 {
        quantile(&self.ms, q)
    }
}

/// `LOAD_CONNECTIONS` clients asking for `/api/me` one request after another until `until`;
/// only the answers that start after `from` count. Each has a client of its own, so that its
/// connection is its own, opened by `warm` before the attack starts.
pub async fn load(
    clients: &[reqwest::Client],
    url: &str,
    token: &str,
    from: Instant,
    until: Instant,
) -> Load {
    let mut tasks = JoinSet::new();
    for client in clients {
        let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
        tasks.spawn(async move {
            let mut load = Load::default();
            while Instant::now() < until {
                let started = Instant::now();
                let request = client.get(&url).bearer_auth(&token).send();
                let ok = match tokio::time::timeout(REQUEST_LIMIT, request).await {
                    Ok(Ok(response)) => {
                        let status = response.status().as_u16();
                        response.bytes().await.is_ok() && status == 200
                    }
                    _ => false,
                };
                if started < from {
                    continue;
                }
                if ok {
                    load.ms.push(started.elapsed().as_secs_f64() * 1_000.0);
                } else {
                    load.errors += 1;
                    // Not a spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            load
        });
    }
    let mut total = Load::default();
    for load in tasks.join_all().await {
        total.ms.extend(load.ms);
        total.errors += load.errors;
    }
    total.ms.sort_by(f64::total_cmp);
    total
}

/// One client per load connection, each with its connection opened (by one request).
pub async fn warm(url: &str, token: &str) -> Vec<reqwest::Client> {
    let mut clients = Vec::new();
    for _ in 0..LOAD_CONNECTIONS {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap_or_else(|e| fail(format!("an HTTP client: {e}")));
        let _ = client.get(url).bearer_auth(token).send().await.map(|r| r.bytes());
        clients.push(client);
    }
    clients
}

/// Fresh connections, `PROBES_PER_SECOND` a second from `from` until `until`, each one
/// `GET /api/me`: the time to the answer in milliseconds, or a failure.
pub async fn probe(addr: SocketAddr, token: &str, from: Instant, until: Instant) -> Load {
    let request = format!(
        "GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    tokio::time::sleep_until(from.into()).await;
    let mut tasks = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(1_000 / PROBES_PER_SECOND));
    while Instant::now() < until {
        tick.tick().await;
        let request = request.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let answered = tokio::time::timeout(REQUEST_LIMIT, async {
                let mut stream = TcpStream::connect(addr).await.ok()?;
                stream.write_all(request.as_bytes()).await.ok()?;
                let mut answer = Vec::new();
                stream.read_to_end(&mut answer).await.ok()?;
                (statuses(&answer).first() == Some(&200)).then_some(())
            })
            .await;
            matches!(answered, Ok(Some(()))).then(|| started.elapsed().as_secs_f64() * 1_000.0)
        });
    }
    let mut load = Load::default();
    for answer in tasks.join_all().await {
        match answer {
            Some(ms) => load.ms.push(ms),
            None => load.errors += 1,
        }
    }
    load.ms.sort_by(f64::total_cmp);
    load
}
