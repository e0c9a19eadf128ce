//! Keep-alive connections by the thousand, idle or sending a request every so often; the
//! 20,000 of the large case held by helper processes (this program run with
//! `--idle-helper`), each under its own open-files limit.

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use jwt_auth_benches::{fail, runtime, track, untrack};

use crate::attacks::OPENING;
use crate::server::open_files_limit;
use crate::tally::{End, Shared, Tally, connect, read_answer, read_to_end, record};

/// Idle keep-alive connections of the large case, and the helper processes that hold them:
/// each process has its own open-files limit, which may be 20,000 (a common hard limit).
pub const IDLE: usize = 20_000;
pub const HELPERS: usize = 2;

/// `count` keep-alive connections, each sending `GET /health` and then either nothing (idle,
/// `every` = None) or the same again every `every`; a connection the server ends is opened
/// again, until `until`.
pub async fn keep_alive(
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

/// Runs `HELPERS` copies of this program, each holding its share of the `IDLE` keep-alive
/// connections until `until` (idle, or sending a request `every`), and adds up what they saw.
pub fn helpers(addr: SocketAddr, until: Instant, every: Option<Duration>) -> Tally {
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
pub fn idle_helper(mut args: impl Iterator<Item = String>) -> ! {
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
    let tally = runtime(1).block_on(keep_alive(addr, count, until, every));
    println!("{}", tally.to_json());
    std::process::exit(0)
}
