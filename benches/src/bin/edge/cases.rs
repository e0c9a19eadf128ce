//! The cases, in turn: each attack beside the legitimate load and probe on one server, then
//! a second server held past its open-files limit; and the limits of the run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_auth_benches::{Most, fail, peak_rss_mb, rss_mb, thousands};

use crate::attacks::{HOLDERS, Opener, flood, hold, second_head};
use crate::keep_alive::{helpers, keep_alive};
use crate::legitimate::{load, probe, warm};
use crate::output::{Limits, Measured, write_report};
use crate::server::{login_token, open_fds, open_files_limit, start, too_many_open_files};
use crate::tally::Tally;
use crate::{REQUEST_LIMIT, Settings};

/// The open-files limit of the second server, and how many connections hold it.
const LIMITED_FDS: u64 = 1_024;
const PAST_LIMIT: usize = 2_000;

const BODIES: &str = "1,000 bodies that never finish (half `Content-Length: 1000` with 10 bytes \
                      sent, half chunked without the last chunk)";
const CL_TE: &str = "`Content-Length` with `Transfer-Encoding`, a request smuggled in the body, \
                     4 clients in a loop";
const SECOND_HEAD: &str = "slowloris after one complete request: 1,000 keep-alive connections, \
                           each sending `GET /health`, reading the answer, then half a request \
                           head and nothing more";
const IDLE_NAME: &str = "20,000 idle keep-alive connections (each `GET /health`, then idle; \
                         reopened once closed)";
const KEPT_NAME: &str = "20,000 keep-alive connections kept open (each `GET /health` every 4 s, \
                         within the 5 s keep-alive timeout)";
const PAST_LIMIT_NAME: &str = "past the open-files limit: a server started with `ulimit -n \
                               1024`, 2,000 keep-alive connections each sending `GET /health` \
                               every 2 s";

/// One server under measurement: its address, the load's token and each window's length.
#[derive(Clone, Copy)]
struct Bench<'a> {
    addr: SocketAddr,
    token: &'a str,
    duration: Duration,
}

impl Bench<'_> {
    /// Runs the load and the probe for `duration` once `ramp` has passed, beside `attack`,
    /// which is given the time to stop; then waits a second for the server to close what it
    /// left.
    async fn measure<F, Fut>(self, name: &'static str, ramp: Duration, attack: F) -> Measured
    where
        F: FnOnce(Instant) -> Fut,
        Fut: std::future::Future<Output = Option<Tally>> + Send + 'static,
    {
        let Bench { addr, token, duration } = self;
        eprintln!("edge: {name}");
        let url = format!("http://{addr}/api/me");
        let clients = warm(&url, token).await;
        let from = Instant::now() + ramp;
        let until = from + duration;
        // The attack outlasts the window by the probe's time limit, so that every probe sent
        // in the window is answered or given up while the attack still runs.
        let attack = tokio::spawn(attack(until + REQUEST_LIMIT));
        let (load, probe) =
            tokio::join!(load(&clients, &url, token, from, until), probe(addr, token, from, until));
        let tally = attack.await.unwrap_or_else(|e| fail(format!("{name}: {e}")));
        drop(clients);
        // The attack's connections are gone; the server's side closes them at once (or at the
        // keep-alive timeout for those it was still answering).
        tokio::time::sleep(Duration::from_secs(1)).await;
        Measured { name, tally, load, probe, note: String::new() }
    }
}

pub async fn run(settings: &Settings) -> String {
    let duration = settings.duration;
    let server = start(&settings.bin_dir, 18_380, None);
    let addr = server.addr;
    let pid = server.process.id();
    let token = login_token(addr).await;
    let idle_fds = open_fds(pid);
    let ramp = Duration::from_secs(1);
    let bench = Bench { addr, token: &token, duration };
    let mut rows: Vec<Measured> = Vec::new();

    let mut m = bench.measure("none (baseline)", ramp, |_| async { None }).await;
    let idle_rss = rss_mb(pid);
    m.note = "the load alone".to_owned();
    rows.push(m);

    let slowloris = "slowloris: 1,000 connections, a header line a second";
    let m = bench.measure(slowloris, ramp, |until| async move {
        let open: Opener = Arc::new(|_| {
            (b"GET /api/me HTTP/1.1\r\nHost: x\r\n".to_vec(), Some(b"X-a: b\r\n".to_vec()))
        });
        Some(hold(addr, HOLDERS, until, open).await)
    });
    rows.push(m.await);

    let m = bench.measure(BODIES, ramp, |until| async move {
        let head = "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
        // Ten bytes of a body: of a thousand announced, or of one chunk.
        let ten = "{\"username";
        let short = format!("{head}Content-Length: 1000\r\n\r\n{ten}").into_bytes();
        let chunked =
            format!("{head}Transfer-Encoding: chunked\r\n\r\na\r\n{ten}\r\n").into_bytes();
        let open: Opener =
            Arc::new(move |i| (if i % 2 == 0 { short.clone() } else { chunked.clone() }, None));
        Some(hold(addr, HOLDERS, until, open).await)
    });
    rows.push(m.await);

    let me = |extra: &str| {
        format!("GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{extra}\r\n")
            .into_bytes()
    };
    let many = me(&"a: b\r\n".repeat(100_000));
    let long = me(&format!("X-Big: {}\r\n", "a".repeat(1 << 20)));
    for (name, request) in [
        ("100,000 header fields (600 KB of head), 4 clients in a loop", many),
        ("a 1 MiB header line, 4 clients in a loop", long),
    ] {
        let m = bench
            .measure(name, ramp, |until| async move { Some(flood(addr, until, request).await) });
        rows.push(m.await);
    }

    let smuggled =
        format!("GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n");
    let clte = format!(
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
    )
    .into_bytes();
    let mut m = bench
        .measure(CL_TE, ramp, |until| async move { Some(flood(addr, until, clte).await) })
        .await;
    if let Some(tally) = &m.tally {
        let smuggled = tally.statuses.get(&200).copied().unwrap_or(0);
        m.note = format!("smuggled requests answered: {smuggled}");
    }
    rows.push(m);

    let mut m =
        bench
            .measure(SECOND_HEAD, ramp, |until| async move {
                Some(second_head(addr, HOLDERS, until).await)
            })
            .await;
    m.note = "actix-web's header timeout runs for a connection's first request only".to_owned();
    rows.push(m);

    // 20,000 keep-alive connections, held by helper processes (each under its own
    // open-files limit), idle then kept open, with the server's open descriptors sampled.
    let fd_limit = open_files_limit(&pid.to_string());
    let mut most_fds = 0;
    for (name, every, ramp) in [
        (IDLE_NAME, None, Duration::from_secs(3)),
        (KEPT_NAME, Some(Duration::from_secs(4)), Duration::from_secs(8)),
    ] {
        let fds = Most::sample(Duration::from_millis(250), move || open_fds(pid));
        let refused_before = too_many_open_files(&server.log);
        let mut m = bench
            .measure(name, ramp, move |until| async move {
                tokio::task::spawn_blocking(move || helpers(addr, until, every)).await.ok()
            })
            .await;
        let most = fds.stop();
        most_fds = most_fds.max(most);
        m.note = format!(
            "the server held at most {} descriptors ({} at rest, its limit {}) and logged \
             \"Too many open files\" {} times",
            thousands(most),
            thousands(idle_fds),
            thousands(fd_limit),
            thousands(too_many_open_files(&server.log) - refused_before)
        );
        rows.push(m);
    }
    let peak_rss = peak_rss_mb(pid);
    drop(server);

    // Past the limit: a server allowed 1,024 descriptors, held by 2,000 keep-alive
    // connections that each send a request every 2 s.
    let limited = start(&settings.bin_dir, 18_381, Some(LIMITED_FDS));
    let limited_pid = limited.process.id();
    let limited_token = login_token(limited.addr).await;
    let limited_idle_fds = open_fds(limited_pid);
    let limited_addr = limited.addr;
    let limited_bench = Bench { addr: limited_addr, token: &limited_token, duration };
    let mut m = limited_bench
        .measure(PAST_LIMIT_NAME, Duration::from_secs(2), |until| async move {
            let every = Some(Duration::from_secs(2));
            Some(keep_alive(limited_addr, PAST_LIMIT, until, every).await)
        })
        .await;
    let emfile = too_many_open_files(&limited.log);
    if let Some(tally) = &m.tally {
        let mut first = tally.first_answer_after.clone();
        first.sort_by(f64::total_cmp);
        let prompt = first.iter().filter(|&&s| s < 1.0).count();
        m.note = format!(
            "{} of {} connections answered within 1 s of opening, {} later, {} never (open, \
             their request unread, until the attack stopped); the server logged \"Too many \
             open files\" {} times ({} descriptors at rest)",
            thousands(prompt as u64),
            thousands(PAST_LIMIT as u64),
            thousands((first.len() - prompt) as u64),
            thousands(tally.unanswered),
            thousands(emfile),
            thousands(limited_idle_fds)
        );
    }
    rows.push(m);
    drop(limited);

    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let limits = Limits { workers, fd_limit, most_fds, idle_fds, somaxconn, idle_rss, peak_rss };
    write_report(&rows, duration, limits)
}
