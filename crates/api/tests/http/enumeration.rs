//! User enumeration by timing, measured: at `/auth/login`, at the token endpoint's password
//! grant, and at `/auth/register`, a known account and an unknown one (and a disabled one) must
//! take the same time to refuse.
//!
//! How it decides. The leak this catches is a refusal that skips the password verification
//! (or runs a cheaper one) for some class of account: it makes that class faster by up to one
//! verification, `H`. Each round sends every probe once, in a shuffled order, one at a time, so
//! a load on the machine falls on all of them alike; the statistic is the median over the rounds
//! of the paired differences (robust to the odd stalled request).
//! - `H` is measured in the same run, as the median difference between a wrong password and a
//!   request refused before any verification (a malformed body). It is the positive control: a
//!   sign test must find the verification (at least `n/2 + 3.89·√n/2` rounds slower, the
//!   one-sided 5·10⁻⁵ tail of Binomial(n, ½)), or the run could not have seen a leak either.
//! - A class of account leaks when its median difference exceeds `H/4`. A skipped verification
//!   gives `H`, a dummy hash at half the cost `H/2`: both far over. Noise cannot reach it: the
//!   median of `n` differences has a standard error of about `1.25·σ/√n`; the test measures `σ`
//!   (from the median absolute deviation) and adds rounds, in batches of 30, until `H/4` is at
//!   least four standard errors, so a false alarm is a four-sigma event (looking after each batch
//!   costs a little of that margin, not much of it). A run still too noisy after 300 rounds
//!   fails as inconclusive: it never passes silently. The test runs alone (`.config/nextest.toml`).
//!
//! At `/auth/register` the contract's 409 says whether an email is taken; timing cannot tell
//! more, and the test checks that a 409 costs what a 201 does (the password is hashed first).

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{PASSWORD, TestApp, TestDb, send};

crate::http_tests!(
    login_takes_as_long_for_unknown_and_disabled_accounts_as_for_a_wrong_password,
    the_password_grant_takes_as_long_for_unknown_accounts_as_for_a_wrong_password,
    register_takes_as_long_for_a_taken_email_as_for_a_new_one,
);

/// Rounds are run in batches until the run can decide (`H/4` at least four standard errors of
/// every comparison), and at most `MAX_ROUNDS`: a quiet machine decides after the first batch.
const BATCH: usize = 30;
const MAX_ROUNDS: usize = 300;
/// z for the one-sided 5·10⁻⁵ tail of the control's sign test.
const Z: f64 = 3.89;

async fn start(db: TestDb) -> TestApp {
    // No per-IP quota and no per-account back-off: every probe must reach the password check.
    TestApp::start_with(db, |c| {
        c.login_rate_limit = 0;
        c.login_failure_backoff = 0;
    })
    .await
}

/// One kind of request, sent once a round; it returns the status it got.
type Probe<'a> = Box<dyn Fn(usize) -> reqwest::RequestBuilder + 'a>;

/// A batch of rounds of every probe once, in an order shuffled per round, appended to the
/// durations of each probe; every answer must have the status its probe expects.
async fn rounds(probes: &[(&str, StatusCode, Probe<'_>)], times: &mut Vec<Vec<f64>>) {
    if times.is_empty() {
        *times = vec![Vec::new(); probes.len()];
        // A warm-up round: connections, caches and the hashing threads.
        for (_, _, probe) in probes {
            send(probe(usize::MAX)).await;
        }
    }
    let done = times[0].len();
    let mut order: Vec<usize> = (0..probes.len()).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ done as u64;
    for round in done..done + BATCH {
        shuffle(&mut order, &mut seed);
        for &i in &order {
            let (name, expected, probe) = &probes[i];
            let started = Instant::now();
            let reply = send(probe(round)).await;
            let took = started.elapsed();
            assert_eq!(reply.status, *expected, "{name}: {}", reply.text);
            times[i].push(took.as_secs_f64() * 1e3);
        }
    }
}

/// Runs batches of rounds until every comparison of `classes` against `reference` can be
/// decided, then decides: `control` is the probe refused before any verification.
async fn measure(
    probes: &[(&str, StatusCode, Probe<'_>)],
    reference: usize,
    control: usize,
    classes: &[usize],
) {
    let mut times = Vec::new();
    loop {
        rounds(probes, &mut times).await;
        let n = times[0].len();
        let h = median(differences(&times[reference], &times[control]));
        let noisiest =
            classes.iter().map(|&c| paired(&times[c], &times[reference]).1).fold(0.0, f64::max);
        if h / 4.0 >= 4.0 * noisiest || n >= MAX_ROUNDS {
            break;
        }
    }
    let h = verification_time(&times[reference], &times[control]);
    for &c in classes {
        let what = format!("{} against {}", probes[c].0, probes[reference].0);
        assert_same_time(&what, &times[c], &times[reference], h);
    }
}

fn shuffle(order: &mut [usize], seed: &mut u64) {
    for i in (1..order.len()).rev() {
        // xorshift64: reproducible, and any order will do.
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        order.swap(i, (*seed % (i as u64 + 1)) as usize);
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
}

fn differences(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| a - b).collect()
}

/// The median of the paired differences and its standard error (from the median absolute
/// deviation, a σ estimate that one stalled request cannot inflate).
fn paired(a: &[f64], b: &[f64]) -> (f64, f64) {
    let d = differences(a, b);
    let m = median(d.clone());
    let mad = median(d.iter().map(|x| (x - m).abs()).collect());
    let sigma = 1.4826 * mad;
    (m, 1.2533 * sigma / (d.len() as f64).sqrt())
}

/// `H`, the time of one password verification as seen over HTTP: `verified` (a wrong password)
/// against `unverified` (refused before any verification), with the sign test of the module
/// doc as the positive control.
fn verification_time(verified: &[f64], unverified: &[f64]) -> f64 {
    let n = verified.len() as f64;
    let slower = differences(verified, unverified).iter().filter(|d| **d > 0.0).count() as f64;
    let needed = n / 2.0 + Z * n.sqrt() / 2.0;
    let h = median(differences(verified, unverified));
    assert!(
        slower >= needed && h > 0.0,
        "the control failed: a password verification was slower in only {slower} of {n} \
         rounds (needed {needed:.1}); median difference {h:.2} ms"
    );
    h
}

/// Whether `class` takes as long as `reference` to within `H/4`, and the run could tell.
fn assert_same_time(what: &str, class: &[f64], reference: &[f64], h: f64) {
    let (d, se) = paired(class, reference);
    let threshold = h / 4.0;
    eprintln!(
        "{what}: median difference {d:+.2} ms (se {se:.2}), H {h:.2} ms, threshold {threshold:.2}"
    );
    assert!(
        threshold >= 4.0 * se,
        "{what}: inconclusive, too noisy: H/4 = {threshold:.2} ms is under four standard errors \
         ({se:.2} ms each)"
    );
    assert!(
        d.abs() <= threshold,
        "{what}: takes {d:+.2} ms more (median of {} rounds), over H/4 = {threshold:.2} ms: \
         the time tells the accounts apart",
        class.len()
    );
}

async fn disabled_user(app: &TestApp, email: &str) {
    let id = app.create_user(email, &["user"]).await;
    let admin = app.admin().await;
    let reply = send(
        app.http
            .patch(app.url(&format!("/api/admin/users/{id}")))
            .bearer_auth(&admin.access)
            .json(&json!({"disabled": true})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

async fn login_takes_as_long_for_unknown_and_disabled_accounts_as_for_a_wrong_password(db: TestDb) {
    let app = start(db).await;
    app.create_user("known@example.com", &["user"]).await;
    disabled_user(&app, "disabled@example.com").await;
    let app = &app;
    let login = |username: &'static str, password: &'static str| -> Probe<'_> {
        Box::new(move |_| {
            app.post("/auth/login").json(&json!({"username": username, "password": password}))
        })
    };
    let refused = StatusCode::UNAUTHORIZED;
    let probes = [
        ("wrong password", refused, login("known@example.com", "wrong password!")),
        ("unknown account", refused, login("nobody@example.com", "wrong password!")),
        ("disabled account", refused, login("disabled@example.com", PASSWORD)),
        (
            "malformed body",
            StatusCode::BAD_REQUEST,
            Box::new(|_| {
                app.post("/auth/login").header("content-type", "application/json").body("{")
            }) as Probe<'_>,
        ),
    ];
    measure(&probes, 0, 3, &[1, 2]).await;
}

async fn the_password_grant_takes_as_long_for_unknown_accounts_as_for_a_wrong_password(db: TestDb) {
    let app = start(db).await;
    app.create_user("known@example.com", &["user"]).await;
    let app = &app;
    let grant = |username: &'static str| -> Probe<'_> {
        Box::new(move |_| {
            let form = [("grant_type", "password"), ("username", username), ("password", "wrong!")];
            app.post("/auth/token").form(&form)
        })
    };
    let probes = [
        ("wrong password", StatusCode::BAD_REQUEST, grant("known@example.com")),
        ("unknown account", StatusCode::BAD_REQUEST, grant("nobody@example.com")),
        (
            "unsupported grant",
            StatusCode::BAD_REQUEST,
            Box::new(|_| app.post("/auth/token").form(&[("grant_type", "magic")])) as Probe<'_>,
        ),
    ];
    measure(&probes, 0, 2, &[1]).await;
}

async fn register_takes_as_long_for_a_taken_email_as_for_a_new_one(db: TestDb) {
    let app = start(db).await;
    app.create_user("taken@example.com", &["user"]).await;
    let register = |email: String| {
        app.post("/auth/register").json(&json!({"email": email, "password": PASSWORD}))
    };
    let probes: [(&str, StatusCode, Probe<'_>); 3] = [
        (
            "new email",
            StatusCode::CREATED,
            Box::new(|round| register(format!("new-{round}@example.com"))),
        ),
        ("taken email", StatusCode::CONFLICT, Box::new(|_| register("taken@example.com".into()))),
        (
            "bad email",
            StatusCode::UNPROCESSABLE_ENTITY,
            Box::new(|_| register("not an email".into())),
        ),
    ];
    measure(&probes, 0, 2, &[1]).await;
}
