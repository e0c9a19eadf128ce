//! What the three regions of `regions.rs` are measured for: the revocation lag from a logout in
//! A to a refusal elsewhere, and what each fault does. A revocation that never arrives fails
//! the run: these are the harness's assertions as well as its figures.

use std::time::{Duration, Instant};

use serde_json::json;

use jwt_auth_benches::{fail, quantile};

use crate::client::{http_client, login, post};
use crate::regions::{Regions, read_gauge, status, wait_for_gauge};

/// How long a target may go on accepting a logged-out token before the run fails.
const GIVE_UP: Duration = Duration::from_secs(60);

/// Where a token is checked: an instance's `/api/me` or a resource server's `/stocks/acme`.
#[derive(Clone)]
pub struct Target {
    pub label: String,
    pub url: String,
}

pub fn targets(regions: &Regions) -> Vec<Target> {
    let mut targets =
        vec![Target { label: "A, the other instance".into(), url: me(regions, "a2") }];
    for region in ['b', 'c'] {
        let upper = region.to_ascii_uppercase();
        targets.push(Target {
            label: format!("{upper}, an instance"),
            url: me(regions, &format!("{region}1")),
        });
        targets.push(Target {
            label: format!("{upper}, the resource server"),
            url: format!("{}/stocks/acme", regions.resource(region)),
        });
    }
    targets
}

fn me(regions: &Regions, name: &str) -> String {
    format!("{}/api/me", regions.base(name))
}

/// Logins of `email` through `base`, 8 at a time: `n` token pairs.
pub async fn sessions(base: &str, email: &str, n: usize) -> Vec<(String, String)> {
    let client = http_client();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, base, email) = (client.clone(), base.to_owned(), email.to_owned());
        tasks.spawn(async move {
            let mut pairs = Vec::new();
            for _ in (worker..n).step_by(8) {
                pairs.push(login(&client, &base, &email).await);
            }
            pairs
        });
    }
    let mut pairs = Vec::new();
    while let Some(done) = tasks.join_next().await {
        pairs.extend(done.unwrap_or_else(|e| fail(e)));
    }
    pairs
}

/// Logs a session out through `base`.
pub async fn log_out(client: &reqwest::Client, base: &str, pair: &(String, String)) {
    let url = format!("{base}/auth/logout");
    match post(client, &url, Some(&pair.0), &json!({"refresh_token": pair.1})).await {
        Ok((204, _)) => {}
        Ok((status, body)) => fail(format!("logout through {base}: {status} {body}")),
        Err(e) => fail(format!("logout through {base}: {e}")),
    }
}

/// Asks `target` until it refuses `token`: how long that took. Fails the run past
/// [`GIVE_UP`].
pub async fn refused(client: &reqwest::Client, target: &Target, token: &str) -> Duration {
    let started = Instant::now();
    loop {
        match status(client, &target.url, token).await {
            401 => return started.elapsed(),
            // Accepted still, no answer (restarting), or not ready yet (loading).
            200 | 0 | 503 => {}
            other => fail(format!("{}: answered {other}", target.label)),
        }
        if started.elapsed() > GIVE_UP {
            fail(format!("{}: a logout never arrived ({GIVE_UP:?})", target.label));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One row of the lag table, in milliseconds.
pub struct LagRow {
    pub label: String,
    pub samples: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// `logouts` logouts on A, one at a time, each timed from A's answer until every target
/// refuses the token (each target polled on its own, every millisecond). Before each logout,
/// every target accepts the token: the positive control.
pub async fn lag(regions: &Regions, email: &str, logouts: usize) -> Vec<LagRow> {
    let a1 = regions.base("a1");
    let pairs = sessions(&a1, email, logouts).await;
    let targets = targets(regions);
    let client = http_client();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    for pair in &pairs {
        for target in &targets {
            if status(&client, &target.url, &pair.0).await != 200 {
                fail(format!("{}: did not accept a fresh token", target.label));
            }
        }
        log_out(&client, &a1, pair).await;
        let mut waits = tokio::task::JoinSet::new();
        for (i, target) in targets.iter().enumerate() {
            let (client, target, token) = (client.clone(), target.clone(), pair.0.clone());
            waits.spawn(async move { (i, refused(&client, &target, &token).await) });
        }
        while let Some(done) = waits.join_next().await {
            let (i, took) = done.unwrap_or_else(|e| fail(e));
            samples[i].push(took.as_secs_f64() * 1_000.0);
        }
    }
    targets
        .iter()
        .zip(samples)
        .map(|(target, mut ms)| {
            ms.sort_by(f64::total_cmp);
            LagRow {
                label: target.label.clone(),
                samples: ms.len(),
                p50: quantile(&ms, 0.50),
                p99: quantile(&ms, 0.99),
                max: ms.last().copied().unwrap_or(f64::NAN),
            }
        })
        .collect()
}

/// The time until `target` refuses every token of `tokens`.
async fn all_refused(
    client: &reqwest::Client,
    target: &Target,
    tokens: &[(String, String)],
) -> Duration {
    let started = Instant::now();
    for pair in tokens {
        refused(client, target, &pair.0).await;
    }
    started.elapsed()
}

/// The outcome of each fault, as lines of the report.
pub async fn faults(regions: &mut Regions, email: &str) -> Vec<(String, String)> {
    let client = http_client();
    let mut outcomes = Vec::new();
    let b_instance = Target { label: "B, an instance".into(), url: me(regions, "b1") };
    let b_resource = Target {
        label: "B, the resource server".into(),
        url: format!("{}/stocks/acme", regions.resource('b')),
    };

    // 1. Region B's NATS server killed: B's instances read the database, then follow again.
    let pairs = sessions(&regions.base("a1"), email, 40).await;
    regions.nats[1].kill();
    let fell_back =
        wait_for_gauge(&regions.base("b1"), "jwt_auth_change_stream_following", 0).await;
    for pair in &pairs[..20] {
        log_out(&client, &regions.base("a1"), pair).await;
    }
    let during = all_refused(&client, &b_instance, &pairs[..20]).await;
    regions.nats[1].restart();
    let back = wait_for_gauge(&regions.base("b1"), "jwt_auth_change_stream_following", 1).await;
    let caught_up = all_refused(&client, &b_resource, &pairs[..20]).await;
    for pair in &pairs[20..] {
        log_out(&client, &regions.base("a1"), pair).await;
    }
    all_refused(&client, &b_instance, &pairs[20..]).await;
    all_refused(&client, &b_resource, &pairs[20..]).await;
    outcomes.push((
        "Region B's NATS server killed, then started again".to_owned(),
        format!(
            "B's instances read the database {fell_back:.1?} after the kill; the 20 logouts made \
             meanwhile were refused on B within {during:.1?} (from the database); following the \
             stream again {back:.1?} after the restart; B's resource server (which follows the \
             stream only) had all 20 {caught_up:.1?} later; 20 more logouts then came through the \
             stream. Nothing lost."
        ),
    ));

    // 2. The relay's leader killed: another instance takes over.
    let names: Vec<String> = regions.instances.iter().map(|i| i.name.clone()).collect();
    let leader = relay_leader(regions, &names).await;
    let other = if leader == "a1" { "a2" } else { "a1" };
    let pairs = sessions(&regions.base(other), email, 20).await;
    regions.instance(&leader).kill();
    let killed = Instant::now();
    let survivors: Vec<String> = names.iter().filter(|n| **n != leader).cloned().collect();
    let new_leader = relay_leader(regions, &survivors).await;
    let took_over = killed.elapsed();
    for pair in &pairs {
        log_out(&client, &regions.base(other), pair).await;
    }
    let arrived = all_refused(&client, &b_instance, &pairs).await;
    let c1 = Target { label: "C, an instance".into(), url: me(regions, "c1") };
    all_refused(&client, &c1, &pairs).await;
    regions.restart_instance(&leader);
    outcomes.push((
        format!("The relay's leader ({leader}) killed"),
        format!(
            "{new_leader} led the relay {took_over:.1?} after the kill; 20 logouts through {other} \
             then reached B and C ({arrived:.1?} for all of them on B). Nothing lost."
        ),
    ));

    // 3. A reader restarted in the middle of a burst.
    let pairs = sessions(&regions.base("a2"), email, 200).await;
    let b2 = Target { label: "B, the restarted instance".into(), url: me(regions, "b2") };
    let burst = {
        let (client, base, pairs) = (client.clone(), regions.base("a2"), pairs.clone());
        tokio::spawn(async move {
            for pair in &pairs {
                log_out(&client, &base, pair).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    regions.instance("b2").kill();
    regions.restart_instance("b2");
    burst.await.unwrap_or_else(|e| fail(e));
    let complete = all_refused(&client, &b2, &pairs).await;
    let feed = revoked_once(&client, regions, "b2").await;
    outcomes.push((
        "A reader (b2) restarted during a burst of 200 logouts".to_owned(),
        format!(
            "b2 refused all 200 {complete:.1?} after the burst ended; its feed holds each of the \
             {feed} revoked sessions once. Nothing lost, nothing applied twice."
        ),
    ));

    // 4. Region C cut off for 30 s, then healed.
    let pairs = sessions(&regions.base("a1"), email, 100).await;
    let c_targets = [
        Target { label: "C, an instance".into(), url: me(regions, "c1") },
        Target { label: "C, the other instance".into(), url: me(regions, "c2") },
        Target {
            label: "C, the resource server".into(),
            url: format!("{}/stocks/acme", regions.resource('c')),
        },
    ];
    regions.partition('c');
    let cut_at = Instant::now();
    for pair in &pairs {
        log_out(&client, &regions.base("a1"), pair).await;
    }
    // While cut off, C cannot know: its tokens are still accepted from memory.
    let stale = status(&client, &c_targets[0].url, &pairs[0].0).await == 200;
    let remaining = Duration::from_secs(30).saturating_sub(cut_at.elapsed());
    tokio::time::sleep(remaining).await;
    regions.heal();
    let healed_at = Instant::now();
    for target in &c_targets {
        all_refused(&client, target, &pairs).await;
    }
    let complete = healed_at.elapsed();
    outcomes.push((
        "Region C cut off for 30 s (its NATS routes and its database link), then healed".to_owned(),
        format!(
            "100 logouts in A during the cut{}; {complete:.1?} after the heal, C's two instances \
             and its resource server refused all 100. Nothing lost.",
            if stale { ", still accepted in C meanwhile (it cannot know)" } else { "" }
        ),
    ));
    outcomes
}

/// The instance that leads the relay now, failing the run if none does within a minute.
async fn relay_leader(regions: &Regions, names: &[String]) -> String {
    let started = Instant::now();
    loop {
        if let Some(name) = leader_among(regions, names).await {
            return name;
        }
        if started.elapsed() > Duration::from_secs(60) {
            fail("no instance leads the relay");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn leader_among(regions: &Regions, names: &[String]) -> Option<String> {
    for name in names {
        if read_gauge(&regions.base(name), "jwt_auth_change_stream_relay_leader").await == Some(1) {
            return Some(name.clone());
        }
    }
    None
}

/// How many sessions `name`'s feed holds, failing the run if one is there twice.
async fn revoked_once(client: &reqwest::Client, regions: &Regions, name: &str) -> usize {
    let (admin, _) = login(client, &regions.base(name), crate::regions::ADMIN_EMAIL).await;
    let response = client
        .get(format!("{}/auth/revocations", regions.base(name)))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap_or_else(|e| fail(e));
    let body: serde_json::Value = response.json().await.unwrap_or_else(|e| fail(e));
    let sids: Vec<&str> = body["events"]
        .as_array()
        .map(|events| events.iter().filter_map(|e| e["sid"].as_str()).collect())
        .unwrap_or_default();
    let unique: std::collections::HashSet<_> = sids.iter().collect();
    if unique.len() != sids.len() {
        fail(format!("{name}'s feed holds a session twice"));
    }
    sids.len()
}
