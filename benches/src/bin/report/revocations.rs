//! The revocation lag between two instances on one PostgreSQL database: how long B goes on
//! accepting a token logged out on A.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use jwt_auth_benches::{fail, quantile};

use crate::client::{http_client, login, post};

/// Logouts timed between two PostgreSQL instances.
pub const LOGOUTS: usize = 200;
/// How long B may go on accepting a token logged out on A before the sample is given up.
pub const LIMIT: Duration = Duration::from_secs(5);

/// The revocation lag between two instances, in milliseconds.
pub struct Lag {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Logouts that B still accepted after `LIMIT` (counted in the figures at that time).
    pub given_up: usize,
    /// Tokens B did not accept before the logout (no sample).
    pub unaccepted: usize,
}

/// `LOGOUTS` times: log in on A, see the token accepted on B, log out on A, then ask B's
/// `/api/me` again as soon as it answers until it refuses the token; the lag is the time from
/// A's logout answer to B's refusal.
pub async fn revocation_lag(a: &str, b: &str, email: &str) -> Lag {
    let client = http_client();
    // `/api/me` on B: the status, and whether a refusal says the token was revoked.
    let me = |token: String| {
        let client = client.clone();
        let url = format!("{b}/api/me");
        async move {
            let response = match client.get(url).bearer_auth(token).send().await {
                Ok(response) => response,
                Err(e) => fail(format!("/api/me on B: {e}")),
            };
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            (status, body["error"] == "token_revoked")
        }
    };
    let (mut lags, mut given_up, mut unaccepted) = (Vec::new(), 0, 0);
    for _ in 0..LOGOUTS {
        let (access, refresh) = login(&client, a, email).await;
        if me(access.clone()).await.0 != 200 {
            unaccepted += 1;
            continue;
        }
        let body = json!({"refresh_token": refresh});
        match post(&client, &format!("{a}/auth/logout"), Some(&access), &body).await {
            Ok((204, _)) => {}
            Ok((status, body)) => fail(format!("logout on A: {status} {body}")),
            Err(e) => fail(format!("logout on A: {e}")),
        }
        let answered = Instant::now();
        loop {
            match me(access.clone()).await {
                (401, true) => break,
                (200, _) => {}
                (status, _) => fail(format!("/api/me on B answered {status} after a logout on A")),
            }
            if answered.elapsed() > LIMIT {
                given_up += 1;
                break;
            }
        }
        lags.push(answered.elapsed().as_secs_f64() * 1_000.0);
    }
    lags.sort_by(f64::total_cmp);
    Lag {
        samples: lags.len(),
        p50_ms: quantile(&lags, 0.50),
        p99_ms: quantile(&lags, 0.99),
        max_ms: lags.last().copied().unwrap_or(f64::NAN),
        given_up,
        unaccepted,
    }
}
