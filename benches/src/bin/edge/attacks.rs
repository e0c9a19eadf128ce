//! The attackers that hold connections (slowloris, bodies that never finish, slowloris after
//! one complete request) or send an abusive request in a loop (huge heads, `Content-Length`
//! with `Transfer-Encoding`). Each opens its connection again once the server ends it, so an
//! attack keeps its size until it stops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use crate::REQUEST_LIMIT;
use crate::tally::{Shared, Tally, connect, read_answer, read_to_end, record};

/// Attackers per attack that hold connections.
pub const HOLDERS: usize = 1_000;
/// Attackers per attack that send requests in a loop.
const LOOPERS: usize = 4;
/// At most this many connections being opened at once: a burst past the listen backlog
/// would only measure SYN retransmission.
pub const OPENING: usize = 512;

/// What an attacker writes on a fresh connection (given its number), and the line it then
/// trickles a second at a time, if any.
pub type Opener = Arc<dyn Fn(usize) -> (Vec<u8>, Option<Vec<u8>>) + Send + Sync>;

/// `count` attackers, each holding one connection at a time: `open` writes what it writes on
/// a fresh connection and returns what is left to trickle, if anything (a line a second);
/// once the server ends the connection, the attacker opens another, until `until`.
pub async fn hold(addr: SocketAddr, count: usize, until: Instant, request: Opener) -> Tally {
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
pub async fn second_head(addr: SocketAddr, count: usize, until: Instant) -> Tally {
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
pub async fn flood(addr: SocketAddr, until: Instant, request: Vec<u8>) -> Tally {
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
