//! The user flow of the load report, a goose load test against a running `jwt-auth serve`:
//! every simulated user runs once through login (as one of the accounts the report seeded),
//! five `GET /api/me`, one refresh and a logout, and stops. Users start at a steady rate, so
//! logins stay under the argon2 ceiling and the run is bounded (users ÷ rate seconds).
//!
//! Goose's own command line sets the run; its defaults here are the report's:
//!
//! ```text
//! flow --host http://127.0.0.1:18280                   # 10,000 users, 45 started per second
//! flow --host http://127.0.0.1:18280 --users 200 --increase-rate 45
//! ```
//!
//! The accounts (environment): `FLOW_EMAIL`, the address pattern with `{}` for the number
//! (default `seed-{}@example.com`), `FLOW_ACCOUNTS`, how many there are, numbered from 1
//! (default 99,999), and `FLOW_PASSWORD`, their password. User n logs in as account
//! (n mod `FLOW_ACCOUNTS`) + 1, in the order the visits start. With `FLOW_SUMMARY` set, the
//! count, mean, p99, max and failures of each request type and of all requests together, the
//! failed visits and the most frequent errors are also written there as JSON, for `report`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use goose::client::GooseClientBuilder;
use goose::goose::GooseResponse;
use goose::metrics::{GooseRequestMetricAggregate, GooseRequestMetricTimingData};
use goose::prelude::*;
use serde_json::{Value, json};

/// `GET /api/me` requests per user, between the login and the refresh.
const ME_PER_USER: usize = 5;

struct Accounts {
    email: String,
    count: usize,
    password: String,
}

static ACCOUNTS: OnceLock<Accounts> = OnceLock::new();
static NEXT_ACCOUNT: AtomicUsize = AtomicUsize::new(0);

fn accounts() -> &'static Accounts {
    ACCOUNTS.get_or_init(|| {
        let setting = |name: &str, default: &str| {
            std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.into())
        };
        Accounts {
            email: setting("FLOW_EMAIL", "seed-{}@example.com"),
            count: setting("FLOW_ACCOUNTS", "99999").parse().unwrap_or(99_999).max(1),
            password: setting("FLOW_PASSWORD", "report load password"),
        }
    })
}

/// The token pair of a login or refresh answer.
async fn pair(answer: GooseResponse) -> Result<(String, String), Box<TransactionError>> {
    let response = answer.response?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{} answered {status}", answer.request.name).into());
    }
    let body: Value = response.json().await?;
    match (body["access_token"].as_str(), body["refresh_token"].as_str()) {
        (Some(access), Some(refresh)) => Ok((access.to_owned(), refresh.to_owned())),
        _ => Err(format!("{} answered no token pair", answer.request.name).into()),
    }
}

async fn with_bearer(
    user: &mut GooseUser,
    method: GooseMethod,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<GooseResponse, Box<TransactionError>> {
    let mut builder = user.get_request_builder(&method, path)?.bearer_auth(token);
    if let Some(body) = body {
        builder = builder.json(body);
    }
    let request = GooseRequest::builder().method(method).path(path).set_request_builder(builder);
    user.request(request.build()).await
}

/// One user's visit: login, `/api/me` a few times, one refresh, logout.
async fn visit(user: &mut GooseUser) -> TransactionResult {
    let accounts = accounts();
    let n = NEXT_ACCOUNT.fetch_add(1, Ordering::Relaxed) % accounts.count + 1;
    let email = accounts.email.replace("{}", &n.to_string());
    let login = json!({"username": email, "password": accounts.password});
    let (access, refresh) = pair(user.post_json("/auth/login", &login).await?).await?;
    for _ in 0..ME_PER_USER {
        with_bearer(user, GooseMethod::Get, "/api/me", &access, None).await?;
    }
    let refreshed = user.post_json("/auth/refresh", &json!({"refresh_token": refresh})).await?;
    let (access, refresh) = pair(refreshed).await?;
    let body = json!({"refresh_token": refresh});
    with_bearer(user, GooseMethod::Post, "/auth/logout", &access, Some(&body)).await?;
    Ok(())
}

/// One request type's figures, in milliseconds.
fn figures(name: &str, times: &GooseRequestMetricTimingData, failures: usize) -> Value {
    json!({
        "name": name,
        "count": times.counter,
        "mean_ms": if times.counter == 0 { 0.0 } else { times.average_ms() },
        "p99_ms": times.percentile_us(0.99) as f64 / 1_000.0,
        "max_ms": times.maximum_time_us as f64 / 1_000.0,
        "failures": failures,
    })
}

/// The request types in the order of the flow (then any other goose recorded), all requests
/// together, the failed visits and the most frequent errors.
fn summary(metrics: &GooseMetrics) -> Value {
    const ORDER: [&str; 4] =
        ["POST /auth/login", "GET /api/me", "POST /auth/refresh", "POST /auth/logout"];
    let mut requests: Vec<_> = metrics.requests.values().collect();
    let name = |r: &GooseRequestMetricAggregate| format!("{} {}", r.method, r.path);
    requests.sort_by_key(|r| {
        let name = name(r);
        (ORDER.iter().position(|o| *o == name).unwrap_or(ORDER.len()), name)
    });
    let mut all = GooseRequestMetricTimingData::default();
    let mut all_failures = 0;
    for r in &requests {
        let times = &r.raw_data;
        for (&bucket, &count) in &times.times_us {
            let before = all.times_us.get(&bucket).copied().unwrap_or(0);
            all.times_us.insert(bucket, before + count);
        }
        if times.counter > 0 && (all.counter == 0 || times.minimum_time_us < all.minimum_time_us) {
            all.minimum_time_us = times.minimum_time_us;
        }
        all.maximum_time_us = all.maximum_time_us.max(times.maximum_time_us);
        all.total_time_us += times.total_time_us;
        all.counter += times.counter;
        all_failures += r.fail_count;
    }
    let mut rows: Vec<Value> =
        requests.iter().map(|r| figures(&name(r), &r.raw_data, r.fail_count)).collect();
    rows.push(figures("all requests", &all, all_failures));
    let visits_failed: usize = metrics.transactions.iter().flatten().map(|t| t.fail_count).sum();
    let mut errors: Vec<(usize, String)> =
        metrics.errors.values().map(|e| (e.occurrences, e.error.clone())).collect();
    errors.sort_by_key(|e| std::cmp::Reverse(e.0));
    json!({
        "users": metrics.total_users,
        "duration_s": metrics.duration,
        "visits_failed": visits_failed,
        "requests": rows,
        "errors": errors
            .into_iter()
            .take(5)
            .map(|(count, error)| json!({"error": error, "count": count}))
            .collect::<Vec<_>>(),
    })
}

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    accounts();
    // One client without a cookie store, shared by every user: the tokens travel in headers
    // and bodies, and the load generator does not build 10,000 clients beside the server.
    let client = GooseClientBuilder::new().without_cookies().timeout(Duration::from_secs(30));
    let metrics = GooseAttack::initialize()?
        .set_client_builder_without_cookies(client)?
        .register_scenario(
            scenario!("Visit").register_transaction(transaction!(visit).set_name("visit")),
        )
        .set_default(GooseDefault::Users, 10_000)?
        .set_default(GooseDefault::IncreaseRate, "45")?
        .set_default(GooseDefault::Iterations, 1)?
        .set_default(GooseDefault::NoTelnet, true)?
        .execute()
        .await?;
    if let Some(path) = std::env::var_os("FLOW_SUMMARY") {
        let text = serde_json::to_string_pretty(&summary(&metrics)).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("flow: cannot write {}: {e}", path.to_string_lossy());
            std::process::exit(1);
        }
    }
    Ok(())
}
