//! The edge report: what abusive clients at the network edge cost everyone else. Starts the
//! release `jwt-auth serve` on 127.0.0.1 (SQLite in a temporary directory), registers one
//! user, then, for each attack, measures a legitimate `GET /api/me` load beside it and writes
//! a Markdown table (`docs/edge-report.md` through `benches/edge.sh`).
//!
//! Per attack, for `--duration` (10 s):
//! - the load: 32 connections, closed loop (each sends its next request when the last is
//!   answered), opened before the attack starts; p50, p99 and errors;
//! - a new-connection probe: ten fresh connections a second, each one `GET /api/me` with
//!   `Connection: close`, answered within 5 s or counted as failed: what a client arriving
//!   during the attack sees;
//! - what the attacker sees: the statuses answered, and how its connections ended (closed,
//!   reset, or still open when the attack stopped), with the median time to that end.
//!
//! The attacks: none (the baseline); 1,000 slowloris connections (a header line a second);
//! 1,000 bodies that never finish (half short of their `Content-Length`, half chunked without
//! the last chunk); requests with 100,000 header fields, with a 1 MiB header line, and with
//! both `Content-Length` and `Transfer-Encoding` (a request smuggled in the body), each sent
//! in a loop by four clients; 1,000 slowloris connections that first send one complete
//! request; and 20,000 idle keep-alive connections. Every attacking connection the server
//! ends is opened again until the attack stops, so the attack keeps its size.
//!
//! Then the connection limit: a second server started with an open-files limit of 1,024 is
//! held by 2,000 keep-alive connections (a request every 2 s each), to see what clients past
//! the limit get. The limits themselves (workers, actix-web's connections per worker, the
//! open-files limit, the listen backlog) are read from the running server and the kernel.
//!
//! The 20,000 connections are held by two helper processes (this program, run with
//! `--idle-helper`), so that each stays under an open-files limit of 20,000, a common hard
//! limit; the server inherits the limit of the shell that runs the report, and the report
//! says where it met it.
//!
//! Bounded: everything on 127.0.0.1, every wait has a deadline, and a run takes about three
//! minutes with the default duration. Run it through `benches/edge.sh`, which builds the
//! binaries and raises the open-files limit as far as it may.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use jwt_auth_benches::{Process, fail, machine, proc_status, quantile, thousands, track, untrack};

const EMAIL: &str = "edge@example.com";
const PASSWORD: &str = "edge report password";
/// The legitimate load's connections.
const LOAD_CONNECTIONS: usize = 32;
/// Fresh connections of the probe, a second.
const PROBES_PER_SECOND: u64 = 10;
/// How long a probe or a load request may take before it counts as failed.
const REQUEST_LIMIT: Duration = Duration::from_secs(5);
/// Attackers per attack that hold connections.
const HOLDERS: usize = 1_000;
/// Attackers per attack that send requests in a loop.
const LOOPERS: usize = 4;
/// Idle keep-alive connections of the large case, and the helper processes that hold them:
/// each process has its own open-files limit, which may be 20,000 (a common hard limit).
const IDLE: usize = 20_000;
const HELPERS: usize = 2;
/// At most this many connections being opened at once: a burst past the listen backlog
/// would only measure SYN retransmission.
const OPENING: usize = 512;
/// The open-files limit of the second server, and how many connections hold it.
const LIMITED_FDS: u64 = 1_024;
const PAST_LIMIT: usize = 2_000;
/// actix-server's default connections per worker (`max_connections`).
const ACTIX_MAX_CONNECTIONS: u64 = 25_600;

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

struct Settings {
    bin_dir: PathBuf,
    out: PathBuf,
    duration: Duration,
    command: String,
}

fn main() {
    let mut settings = Settings {
        bin_dir: PathBuf::from(
            std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
        )
        .join("release"),
        out: PathBuf::from("docs/edge-report.md"),
        duration: Duration::from_secs(10),
        command: std::env::var("EDGE_COMMAND").unwrap_or_else(|_| "edge".into()),
    };
    const USAGE: &str = "usage: edge [--bin-dir DIR] [--out FILE] [--duration SECONDS]";
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "--idle-helper") {
        args.next();
        idle_helper(args);
    }
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--bin-dir", Some(v)) => settings.bin_dir = v.into(),
            ("--out", Some(v)) => settings.out = v.into(),
            ("--duration", Some(v)) => {
                let seconds = v.trim_end_matches('s').parse::<f64>().ok();
                let seconds = seconds.filter(|s| (1.0..=60.0).contains(s));
                settings.duration = Duration::from_secs_f64(seconds.unwrap_or_else(|| fail(USAGE)));
            }
            _ => fail(USAGE),
        }
    }
    let limit = open_files_limit("self");
    if limit < (IDLE / HELPERS) as u64 + 500 {
        fail(format!(
            "the open-files limit is {limit}; {} connections a helper need more (ulimit -n)",
            IDLE / HELPERS
        ));
    }
    let machine = machine();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(e));
    let report = runtime.block_on(run(&settings));
    let mut md = String::new();
    let _ = writeln!(md, "# Abusive clients at the network edge: measured\n");
    let _ = writeln!(
        md,
        "Generated by `{}` on {machine}. Every figure below is measured by \
         `benches/src/bin/edge.rs`; none is typed by hand. Notes on each case, the limits and \
         the settings that control them: [network-edge.md](network-edge.md).\n",
        settings.command
    );
    md.push_str(&report);
    if let Some(dir) = settings.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| fail(e));
    }
    std::fs::write(&settings.out, md).unwrap_or_else(|e| fail(e));
    eprintln!("edge: wrote {}", settings.out.display());
}

/// The soft open-files limit of a process (`self` or a pid).
fn open_files_limit(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

struct Server {
    process: Process,
    addr: SocketAddr,
    log: PathBuf,
    work: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.process.stop();
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Starts `jwt-auth serve` on `port` with its own SQLite database, under an open-files limit
/// of `fds` if given (through the shell's `ulimit`, which `exec` keeps), and waits until it is
/// ready.
fn start(bin_dir: &Path, port: u16, fds: Option<u64>) -> Server {
    let work = std::env::temp_dir().join(format!("jwt-auth-edge-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap_or_else(|e| fail(e));
    let bin = bin_dir.join("jwt-auth");
    let mut command = match fds {
        None => Command::new(&bin),
        Some(n) => {
            let mut sh = Command::new("sh");
            sh.arg("-c").arg(format!("ulimit -n {n} && exec \"$0\" \"$@\"")).arg(&bin);
            sh
        }
    };
    let secret: String = (0..48).map(|i| char::from(b'a' + ((i * 11 + port) % 26) as u8)).collect();
    let log = work.join("server.log");
    let out = std::fs::File::create(&log).unwrap_or_else(|e| fail(e));
    let err = out.try_clone().unwrap_or_else(|e| fail(e));
    let process = Process::spawn(
        command
            .arg("serve")
            .env("DATABASE_URL", format!("sqlite://{}", work.join("jwt-auth.db").display()))
            .env("DATA_DIR", &work)
            .env("JWT_SECRET", secret)
            .env("LOGIN_RATE_LIMIT", "0")
            .env("LOGIN_FAILURE_BACKOFF", "0")
            .env("RUST_LOG", "warn")
            .env("BIND_ADDRESS", format!("127.0.0.1:{port}"))
            .stdout(out)
            .stderr(err),
    );
    let server = Server { process, addr: SocketAddr::from(([127, 0, 0, 1], port)), log, work };
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready_status(server.addr) != Some(200) {
        if Instant::now() > deadline {
            fail(format!("{} did not get ready in 30 s", bin.display()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// The status of `GET /ready`, over a blocking connection of its own.
fn ready_status(addr: SocketAddr) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    statuses(&answer).first().copied()
}

/// Registers the report's user and logs it in: its access token.
async fn login_token(addr: SocketAddr) -> String {
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let _ = client
        .post(format!("{base}/auth/register"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await;
    let pair: Value = match client
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": EMAIL, "password": PASSWORD}))
        .send()
        .await
    {
        Ok(response) => response.json().await.unwrap_or(Value::Null),
        Err(e) => fail(format!("login: {e}")),
    };
    pair["access_token"].as_str().unwrap_or_else(|| fail(format!("login: {pair}"))).to_owned()
}

/// The status codes of the HTTP/1.1 answers in `bytes`, in order.
fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// The legitimate load of one measurement: latencies in milliseconds, and the failures.
#[derive(Default)]
struct Load {
    ms: Vec<f64>,
    errors: u64,
}

impl Load {
    fn p(&self, q: f64) -> f64 {
        quantile(&self.ms, q)
    }
}

/// `LOAD_CONNECTIONS` clients asking for `/api/me` one request after another until `until`;
/// only the answers that start after `from` count. Each has a client of its own, so that its
/// connection is its own, opened by `warm` before the attack starts.
async fn load(
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
async fn warm(url: &str, token: &str) -> Vec<reqwest::Client> {
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
async fn probe(addr: SocketAddr, token: &str, from: Instant, until: Instant) -> Load {
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

/// How an attacking connection ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// The server closed it.
    Closed,
    /// The server reset it (it closed with bytes of ours unread).
    Reset,
    /// Still open when the attack stopped.
    Held,
}

/// What the attacker saw.
#[derive(Default)]
struct Tally {
    /// Connections opened, and those the kernel refused or did not complete in 5 s.
    opened: u64,
    connect_failed: u64,
    statuses: BTreeMap<u16, u64>,
    closed: u64,
    reset: u64,
    held: u64,
    /// Seconds from each connection's last request (or its opening) to its end by the server.
    ended_after: Vec<f64>,
    /// Seconds from opening to the first answer, for connections that got one.
    first_answer_after: Vec<f64>,
    /// Connections that ended, or were still open, without any answer.
    unanswered: u64,
}

type Shared = Arc<Mutex<Tally>>;

/// What an attacker writes on a fresh connection (given its number), and the line it then
/// trickles a second at a time, if any.
type Opener = Arc<dyn Fn(usize) -> (Vec<u8>, Option<Vec<u8>>) + Send + Sync>;

fn record(tally: &Shared, bytes: &[u8], end: End, after: Duration) {
    let Ok(mut tally) = tally.lock() else { return };
    for status in statuses(bytes) {
        *tally.statuses.entry(status).or_default() += 1;
    }
    match end {
        End::Closed => tally.closed += 1,
        End::Reset => tally.reset += 1,
        End::Held => tally.held += 1,
    }
    if end != End::Held {
        tally.ended_after.push(after.as_secs_f64());
    }
}

/// Opens a connection for an attack (within 5 s), counting it.
async fn connect(addr: SocketAddr, tally: &Shared) -> Option<TcpStream> {
    let stream = tokio::time::timeout(REQUEST_LIMIT, TcpStream::connect(addr)).await;
    let stream = stream.ok().and_then(Result::ok);
    if let Ok(mut tally) = tally.lock() {
        match stream {
            Some(_) => tally.opened += 1,
            None => tally.connect_failed += 1,
        }
    }
    stream
}

/// Reads until the server ends the connection or `until` passes.
async fn read_to_end(reader: &mut (impl AsyncReadExt + Unpin), until: Instant) -> (Vec<u8>, End) {
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        match tokio::time::timeout_at(until.into(), reader.read(&mut buf)).await {
            Err(_) => return (bytes, End::Held),
            Ok(Ok(0)) => return (bytes, End::Closed),
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => return (bytes, End::Reset),
        }
    }
}

/// Reads one answer (its head and a `Content-Length` body) off `stream`, by `until`.
async fn read_answer(stream: &mut TcpStream, until: Instant) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(head) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&bytes[..head]).to_ascii_lowercase();
            let length: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if bytes.len() >= head + 4 + length {
                return Some(bytes);
            }
        }
        match tokio::time::timeout_at(until.into(), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => bytes.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
}

/// `count` attackers, each holding one connection at a time: `open` writes what it writes on
/// a fresh connection and returns what is left to trickle, if anything (a line a second);
/// once the server ends the connection, the attacker opens another, until `until`.
async fn hold(addr: SocketAddr, count: usize, until: Instant, request: Opener) -> Tally {
    let tally = Shared::default();
    let opening = Arc::new(tokio::sync::Semaphore::new(OPENING));
    let mut attackers = JoinSet::new();
    for i in 0..count {
        let (tally, request, opening) = (tally.clone(), request.clone(), opening.clone());
        attackers.spawn(async move {
            while Instant::now() < until {
                let permit = opening.acquire().await;
                let Some(stream) = connect(addr, &tally).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let (mut reader, mut writer) = stream.into_split();
                let (first, trickle) = request(i);
                let sent = Instant::now();
                let _ = writer.write_all(&first).await;
                drop(permit);
                let trickling = tokio::spawn(async move {
                    let Some(line) = trickle else {
                        // Held open, silent, until the attacker stops reading: the server, not
                        // the attacker, is to end it (a close here would end the body).
                        return std::future::pending().await;
                    };
                    loop {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        if writer.write_all(&line).await.is_err() {
                            return;
                        }
                    }
                });
                let (bytes, end) = read_to_end(&mut reader, until).await;
                trickling.abort();
                record(&tally, &bytes, end, sent.elapsed());
            }
        });
    }
    attackers.join_all().await;
    Arc::into_inner(tally).and_then(|t| t.into_inner().ok()).unwrap_or_default()
}

/// `count` attackers, each sending one complete request on a fresh connection, reading its
/// answer, then sending half of the next request's head and nothing more; once the server
/// ends the connection, the attacker opens another, until `until`.
async fn second_head(addr: SocketAddr, count: usize, until: Instant) -> Tally {
    let tally = Shared::default();
    let opening = Arc::new(tokio::sync::Semaphore::new(OPENING));
    let mut attackers = JoinSet::new();
    for _ in 0..count {
        let (tally, opening) = (tally.clone(), opening.clone());
        attackers.spawn(async move {
            while Instant::now() < until {
                let permit = opening.acquire().await;
                let Some(mut stream) = connect(addr, &tally).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let written = stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
                drop(permit);
                let Some(first) = (match written {
                    Ok(()) => read_answer(&mut stream, until).await,
                    Err(_) => None,
                }) else {
                    if let Ok(mut tally) = tally.lock() {
                        tally.unanswered += 1;
                    }
                    continue;
                };
                // Once the answer is read: the connection is then waiting for its next request.
                let sent = Instant::now();
                let _ = stream.write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\n").await;
                let (rest, end) = read_to_end(&mut stream, until).await;
                record(&tally, &[first, rest].concat(), end, sent.elapsed());
            }
        });
    }
    attackers.join_all().await;
    Arc::into_inner(tally).and_then(|t| t.into_inner().ok()).unwrap_or_default()
}

/// `LOOPERS` attackers, each sending `request` on a fresh connection, reading the answer
/// until the server ends the connection, and starting again, until `until`.
async fn flood(addr: SocketAddr, until: Instant, request: Vec<u8>) -> Tally {
    let tally = Shared::default();
    let request = Arc::new(request);
    let mut attackers = JoinSet::new();
    for _ in 0..LOOPERS {
        let (tally, request) = (tally.clone(), request.clone());
        attackers.spawn(async move {
            while Instant::now() < until {
                let Some(stream) = connect(addr, &tally).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let (mut reader, mut writer) = stream.into_split();
                let sent = Instant::now();
                // Everything is written whatever the server says: the writing fails once it
                // has closed.
                let request = request.clone();
                let writing = tokio::spawn(async move {
                    let _ = writer.write_all(&request).await;
                    std::future::pending::<()>().await;
                });
                let (bytes, end) =
                    read_to_end(&mut reader, until.min(Instant::now() + REQUEST_LIMIT)).await;
                writing.abort();
                record(&tally, &bytes, end, sent.elapsed());
            }
        });
    }
    attackers.join_all().await;
    Arc::into_inner(tally).and_then(|t| t.into_inner().ok()).unwrap_or_default()
}

/// `count` keep-alive connections, each sending `GET /health` and then either nothing (idle,
/// `every` = None) or the same again every `every`; a connection the server ends is opened
/// again, until `until`.
async fn keep_alive(
    addr: SocketAddr,
    count: usize,
    until: Instant,
    every: Option<Duration>,
) -> Tally {
    let tally = Shared::default();
    let opening = Arc::new(tokio::sync::Semaphore::new(OPENING));
    let mut attackers = JoinSet::new();
    for _ in 0..count {
        let (tally, opening) = (tally.clone(), opening.clone());
        attackers.spawn(async move {
            while Instant::now() < until {
                let permit = opening.acquire().await;
                let opened = Instant::now();
                let Some(mut stream) = connect(addr, &tally).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let health = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
                let written = stream.write_all(health).await;
                // Released before the answer: past the server's limit, answers never come.
                drop(permit);
                let first = match written {
                    Ok(()) => read_answer(&mut stream, until).await,
                    Err(_) => None,
                };
                let Some(first) = first else {
                    if let Ok(mut tally) = tally.lock() {
                        tally.unanswered += 1;
                    }
                    let end = if Instant::now() >= until { End::Held } else { End::Reset };
                    record(&tally, &[], end, opened.elapsed());
                    continue;
                };
                if let Ok(mut tally) = tally.lock() {
                    tally.first_answer_after.push(opened.elapsed().as_secs_f64());
                }
                let mut bytes = first;
                let mut last = Instant::now();
                let end = loop {
                    match every {
                        None => {
                            let (rest, end) = read_to_end(&mut stream, until).await;
                            bytes.extend(rest);
                            break end;
                        }
                        Some(every) => {
                            let next = (last + every).min(until);
                            let (rest, end) = read_to_end(&mut stream, next).await;
                            bytes.extend(rest);
                            if end != End::Held || Instant::now() >= until {
                                break end;
                            }
                            last = Instant::now();
                            let again = match stream.write_all(health).await {
                                Ok(()) => read_answer(&mut stream, until).await,
                                Err(_) => None,
                            };
                            match again {
                                Some(answer) => bytes.extend(answer),
                                None if Instant::now() >= until => break End::Held,
                                None => break End::Reset,
                            }
                        }
                    }
                };
                record(&tally, &bytes, end, last.elapsed());
            }
        });
    }
    attackers.join_all().await;
    Arc::into_inner(tally).and_then(|t| t.into_inner().ok()).unwrap_or_default()
}

/// How many accepts the server refused for want of descriptors, by its log.
fn too_many_open_files(log: &Path) -> u64 {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    log.lines().filter(|l| l.contains("Too many open files")).count() as u64
}

impl Tally {
    /// The tally as one line of JSON, for a helper process to hand it back.
    fn to_json(&self) -> Value {
        json!({
            "opened": self.opened,
            "connect_failed": self.connect_failed,
            "statuses": self.statuses.iter().map(|(s, n)| (s.to_string(), json!(n)))
                .collect::<serde_json::Map<_, _>>(),
            "closed": self.closed,
            "reset": self.reset,
            "held": self.held,
            "ended_after": self.ended_after,
            "first_answer_after": self.first_answer_after,
            "unanswered": self.unanswered,
        })
    }

    /// Adds a helper's tally (as `to_json` wrote it) to this one.
    fn add_json(&mut self, other: &Value) {
        let count = |key: &str| other[key].as_u64().unwrap_or(0);
        let times = |key: &str| -> Vec<f64> {
            other[key]
                .as_array()
                .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_f64).collect())
        };
        self.opened += count("opened");
        self.connect_failed += count("connect_failed");
        self.closed += count("closed");
        self.reset += count("reset");
        self.held += count("held");
        self.unanswered += count("unanswered");
        self.ended_after.extend(times("ended_after"));
        self.first_answer_after.extend(times("first_answer_after"));
        for (status, n) in other["statuses"].as_object().into_iter().flatten() {
            if let (Ok(status), Some(n)) = (status.parse(), n.as_u64()) {
                *self.statuses.entry(status).or_default() += n;
            }
        }
    }
}

/// Runs `HELPERS` copies of this program, each holding its share of the `IDLE` keep-alive
/// connections until `until` (idle, or sending a request `every`), and adds up what they saw.
fn helpers(addr: SocketAddr, until: Instant, every: Option<Duration>) -> Tally {
    let every = every.map_or(0.0, |e| e.as_secs_f64());
    let seconds = until.saturating_duration_since(Instant::now()).as_secs_f64();
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
    let children: Vec<Child> = (0..HELPERS)
        .map(|_| {
            let child = Command::new(&exe)
                .args(["--idle-helper", &addr.to_string(), &(IDLE / HELPERS).to_string()])
                .arg(format!("{seconds:.3}"))
                .arg(format!("{every:.3}"))
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| fail(format!("a helper: {e}")));
            track(child.id());
            child
        })
        .collect();
    let mut tally = Tally::default();
    for child in children {
        let pid = child.id();
        let output = child.wait_with_output().unwrap_or_else(|e| fail(format!("a helper: {e}")));
        untrack(pid);
        let seen: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| fail(format!("a helper's tally: {e}")));
        tally.add_json(&seen);
    }
    tally
}

/// The helper's side of [`helpers`]: `--idle-helper ADDR COUNT SECONDS EVERY` (EVERY 0: idle).
fn idle_helper(mut args: impl Iterator<Item = String>) -> ! {
    const USAGE: &str = "usage: edge --idle-helper ADDR COUNT SECONDS EVERY";
    let addr: SocketAddr = args.next().and_then(|a| a.parse().ok()).unwrap_or_else(|| fail(USAGE));
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or_else(|| fail(USAGE));
    let seconds: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or_else(|| fail(USAGE));
    let every: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or_else(|| fail(USAGE));
    let every = (every > 0.0).then(|| Duration::from_secs_f64(every));
    let limit = open_files_limit("self");
    if limit < count as u64 + 100 {
        fail(format!("the open-files limit is {limit}; {count} connections need more"));
    }
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(e));
    let tally = runtime.block_on(keep_alive(addr, count, until, every));
    println!("{}", tally.to_json());
    std::process::exit(0)
}

/// One measurement: the load and the probe beside an attack.
struct Measured {
    name: &'static str,
    tally: Option<Tally>,
    load: Load,
    probe: Load,
    /// What else the attack showed, in words.
    note: String,
}

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

/// What the attacker saw, in words: the statuses, then how the connections ended.
fn seen(tally: &Tally) -> String {
    let mut words = Vec::new();
    if !tally.statuses.is_empty() {
        let statuses: Vec<String> =
            tally.statuses.iter().map(|(s, n)| format!("{s} ×{}", thousands(*n))).collect();
        words.push(format!("answered {}", statuses.join(", ")));
    } else {
        words.push("no answer".to_owned());
    }
    let mut ends = Vec::new();
    if tally.closed > 0 {
        ends.push(format!("{} closed", thousands(tally.closed)));
    }
    if tally.reset > 0 {
        ends.push(format!("{} reset", thousands(tally.reset)));
    }
    if !tally.ended_after.is_empty() {
        let mut after = tally.ended_after.clone();
        after.sort_by(f64::total_cmp);
        ends.push(format!(
            "ended a median {} (max {}) after the attacker's last request",
            seconds(quantile(&after, 0.5)),
            seconds(*after.last().unwrap_or(&f64::NAN))
        ));
    }
    if tally.held > 0 {
        ends.push(format!("{} still open when the attack stopped", thousands(tally.held)));
    }
    if tally.connect_failed > 0 {
        ends.push(format!("{} connections not opened", thousands(tally.connect_failed)));
    }
    words.push(format!("{} connections: {}", thousands(tally.opened), ends.join(", ")));
    words.join("; ")
}

fn seconds(s: f64) -> String {
    if s < 0.1 { format!("{:.1} ms", s * 1_000.0) } else { format!("{s:.1} s") }
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".to_owned()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.0}")
    }
}

async fn run(settings: &Settings) -> String {
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
    let idle_rss = proc_status(pid, "VmRSS:").unwrap_or(f64::NAN) / 1_000.0;
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
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let sampling = sampling.clone();
            std::thread::spawn(move || {
                let mut most = 0;
                while sampling.load(Ordering::Relaxed) {
                    most = most.max(open_fds(pid));
                    std::thread::sleep(Duration::from_millis(250));
                }
                most
            })
        };
        let refused_before = too_many_open_files(&server.log);
        let mut m = bench
            .measure(name, ramp, move |until| async move {
                tokio::task::spawn_blocking(move || helpers(addr, until, every)).await.ok()
            })
            .await;
        sampling.store(false, Ordering::Relaxed);
        let most = sampler.join().unwrap_or(0);
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
    let peak_rss = proc_status(pid, "VmHWM:").unwrap_or(f64::NAN) / 1_000.0;
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

struct Limits {
    workers: u64,
    fd_limit: u64,
    /// The most descriptors the server held in the 20,000-connection runs, and at rest.
    most_fds: u64,
    idle_fds: u64,
    somaxconn: String,
    idle_rss: f64,
    peak_rss: f64,
}

fn write_report(rows: &[Measured], duration: Duration, limits: Limits) -> String {
    let mut md = String::new();
    let idle_p99 = rows.first().map_or(f64::NAN, |r| r.load.p(0.99));
    let _ = writeln!(
        md,
        "Each attack ran beside a legitimate load for {} s: {LOAD_CONNECTIONS} connections \
         asking for `GET /api/me` (a valid bearer token) one request after another, opened \
         before the attack, and a probe opening {PROBES_PER_SECOND} fresh connections a second \
         (one `GET /api/me` each). A request not answered 200 within {} s is an error. \
         Latencies in milliseconds. The attacking clients, the load and the server share the \
         machine's cores: part of a latency increase is the attacker's own CPU use, which a \
         remote attacker would not take from the server.\n",
        duration.as_secs(),
        REQUEST_LIMIT.as_secs()
    );
    let _ = writeln!(
        md,
        "| attack | what the server did (as the attacker saw it) | /api/me p50 | /api/me p99 | \
         p99 ÷ idle p99 | /api/me errors | new connections p50 / max | new-connection errors |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let mut did = row.tally.as_ref().map(seen).unwrap_or_default();
        if !row.note.is_empty() {
            if !did.is_empty() {
                did.push_str("; ");
            }
            did.push_str(&row.note);
        }
        let _ = writeln!(
            md,
            "| {} | {did} | {} | {} | {:.1} | {} of {} | {} / {} | {} of {} |",
            row.name,
            ms(row.load.p(0.5)),
            ms(row.load.p(0.99)),
            row.load.p(0.99) / idle_p99,
            thousands(row.load.errors),
            thousands(row.load.ms.len() as u64 + row.load.errors),
            ms(row.probe.p(0.5)),
            ms(row.probe.ms.last().copied().unwrap_or(f64::NAN)),
            thousands(row.probe.errors),
            thousands(row.probe.ms.len() as u64 + row.probe.errors),
        );
    }
    let actix = limits.workers * ACTIX_MAX_CONNECTIONS;
    let (lower, room) = if limits.fd_limit < actix {
        ("the open-files limit", limits.fd_limit.saturating_sub(limits.idle_fds))
    } else {
        ("actix-web's connection limit", actix)
    };
    let _ = writeln!(
        md,
        "\nThe limits of the run: {} actix-web workers (one per core) × {} connections each \
         (actix-web's `max_connections` default) = {} connections; an open-files limit of {} \
         for the server process (inherited from the shell that ran the report); a listen \
         backlog of 4096 (`cli::LISTEN_BACKLOG`), capped by `net.core.somaxconn` = {}. The \
         lower here is {lower}: about {} connections, the server holding {} descriptors at \
         rest. The attacking processes, on the same cores, held the server at {} descriptors \
         at most; the last row shows what clients get past the limit. The server's resident \
         memory: {:.0} MB after the baseline, {:.0} MB at its peak (after the 20,000 \
         connections).",
        limits.workers,
        thousands(ACTIX_MAX_CONNECTIONS),
        thousands(actix),
        thousands(limits.fd_limit),
        limits.somaxconn,
        thousands(room),
        thousands(limits.idle_fds),
        thousands(limits.most_fds),
        limits.idle_rss,
        limits.peak_rss,
    );
    md
}
