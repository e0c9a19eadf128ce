//! Abusive clients at the network edge, each spoken to over raw TCP and each refusal beside a
//! positive control (a legitimate `GET /api/me` answered 200 at once, during and after):
//! - connections that trickle their headers (slowloris) are answered 408 and closed once the
//!   header timeout passes;
//! - bodies that never finish (short of their `Content-Length`, or without their last chunk,
//!   or trickled a byte at a time) are answered 408 and closed once the body deadline passes,
//!   and one the handler does not read is not waited for after the answer;
//! - request heads with more than 96 header fields, or larger than 128 KiB, are answered 431
//!   and the connection closed at once;
//! - `Content-Length` beside `Transfer-Encoding`, repeated or listed lengths and repeated
//!   transfer codings are answered 400 and the connection closed, so a request smuggled in the
//!   body is never answered;
//! - pipelined requests are answered in order;
//! - idle keep-alive connections are closed once the keep-alive timeout passes.
//!
//! Actix-web's own limits behind these (the 96 header fields and the 128 KiB head buffer of
//! actix-http's HTTP/1 decoder) are asserted at their edges, so that an upgrade that moves
//! them fails here.
//!
//! Not here, because nothing in this server bounds it: a keep-alive connection that sends half
//! of its second request's head and stops is held for ever (actix-web times the first request
//! head of a connection only). `docs/network-edge.md` says more, and `benches/src/bin/edge/`
//! measures it.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use jwt_auth_api::{CLIENT_BODY_TIMEOUT, CLIENT_REQUEST_TIMEOUT, KEEP_ALIVE};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::common::{PASSWORD, TestApp, TestDb};

crate::http_tests!(
    slowloris_connections_are_cut_and_others_are_served,
    a_body_that_never_finishes_is_cut_and_others_are_served,
    a_hundred_thousand_tiny_headers_are_refused_and_others_are_served,
    a_one_mebibyte_header_line_is_refused_and_others_are_served,
    content_length_with_transfer_encoding_is_refused,
    pipelined_requests_are_answered_in_order,
    idle_keep_alive_connections_are_closed_after_the_keep_alive_timeout,
);

/// How many slow connections: well past what one worker would serve at once if it waited.
const SLOW: usize = 200;

/// How long a legitimate request may take while an attack runs: generous, for a loaded
/// two-core machine running a debug build, yet far below any timeout an attack exploits.
const PROMPT: Duration = Duration::from_secs(2);

/// How early the server's timers may fire: actix-web computes deadlines from a clock it
/// refreshes every 500 ms, and the client reads its own clock a little after the server's.
const EARLY: Duration = Duration::from_secs(1);

/// How late past a timeout a cut may come on a loaded machine and still count.
const LATE: Duration = Duration::from_secs(5);

async fn slowloris_connections_are_cut_and_others_are_served(db: TestDb) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let pair = app.login("alice@example.com").await;
    let addr = app.addr;

    // Each slow client sends a request line, then one header line every half second.
    let opened = Instant::now();
    let slow = std::thread::spawn(move || {
        let mut streams: Vec<TcpStream> = (0..SLOW)
            .map(|_| {
                let mut s = TcpStream::connect(addr).expect("connects");
                s.write_all(b"GET /api/me HTTP/1.1\r\nHost: x\r\n").expect("writes");
                s.set_read_timeout(Some(Duration::from_millis(5))).expect("a timeout");
                s
            })
            .collect();
        let mut answers = vec![None; SLOW];
        let deadline = Instant::now() + CLIENT_REQUEST_TIMEOUT + Duration::from_secs(5);
        while answers.iter().any(Option::is_none) && Instant::now() < deadline {
            for (i, s) in streams.iter_mut().enumerate() {
                if answers[i].is_some() {
                    continue;
                }
                let mut buf = [0u8; 64];
                match s.read(&mut buf) {
                    // Closed, with or without a 408 first.
                    Ok(0) => answers[i] = Some((String::new(), Instant::now())),
                    Ok(n) => {
                        answers[i] =
                            Some((String::from_utf8_lossy(&buf[..n]).into(), Instant::now()))
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        let _ = s.write_all(b"X-Trickle: 1\r\n");
                    }
                    Err(_) => answers[i] = Some((String::new(), Instant::now())),
                }
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        answers
    });

    // Meanwhile, everyone else is served at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..20 {
        let started = Instant::now();
        app.assert_accepted(&pair.access).await;
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let answers = slow.join().expect("the slow clients");
    for (i, answer) in answers.iter().enumerate() {
        let (text, at) = answer.as_ref().unwrap_or_else(|| panic!("slow client {i} never cut"));
        let after = at.duration_since(opened);
        assert!(
            after >= CLIENT_REQUEST_TIMEOUT - Duration::from_millis(500),
            "cut early: {after:?}"
        );
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "slow client {i}: {text}");
    }
    eprintln!(
        "{SLOW} slowloris connections cut after the {CLIENT_REQUEST_TIMEOUT:?} header timeout"
    );
}

/// How a connection ended, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The server closed it (FIN).
    Closed,
    /// The server reset it: it closed with bytes of ours left unread.
    Reset,
    /// Neither, within the time the test waited.
    Open,
}

/// What the server sent on a connection until it ended it, and when, from `since`.
#[derive(Debug)]
struct Outcome {
    bytes: Vec<u8>,
    end: End,
    after: Duration,
}

impl Outcome {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The status codes of the answers the server sent, in order.
    fn statuses(&self) -> Vec<u16> {
        self.text()
            .match_indices("HTTP/1.1 ")
            .filter_map(|(i, _)| self.text().get(i + 9..i + 12)?.parse().ok())
            .collect()
    }

    /// Asserts that the server answered exactly `statuses`, then ended the connection.
    fn assert_refused(&self, statuses: &[u16], what: &str) {
        let (after, end) = (self.after, self.end);
        assert_eq!(self.statuses(), statuses, "{what} ({end:?} after {after:?}): {}", self.text());
        assert_ne!(self.end, End::Open, "{what}: left open after {:?}", self.after);
    }
}

/// Reads everything the server sends until it ends the connection or `limit` passes.
async fn read_until_closed(
    reader: &mut (impl AsyncRead + Unpin),
    since: Instant,
    limit: Duration,
) -> Outcome {
    let deadline = tokio::time::Instant::now() + limit;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let end = loop {
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Err(_) => break End::Open,
            Ok(Ok(0)) => break End::Closed,
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break End::Reset,
        }
    };
    Outcome { bytes, end, after: since.elapsed() }
}

/// Sends `request` on a fresh connection while reading the answer, as an attacker that
/// writes everything whatever the server says: the writing may fail once the server closes.
async fn attack(addr: SocketAddr, request: Vec<u8>, limit: Duration) -> Outcome {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
    let (mut reader, mut writer) = stream.into_split();
    let sent = Instant::now();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        // Kept open: the server, not the attacker, is to end the connection.
        tokio::time::sleep(limit).await;
        drop(writer);
    });
    let outcome = read_until_closed(&mut reader, sent, limit).await;
    writing.abort();
    outcome
}

/// The positive control: a legitimate `GET /api/me` with a valid token, answered 200 promptly.
async fn served(app: &TestApp, token: &str) {
    let started = Instant::now();
    app.assert_accepted(token).await;
    let took = started.elapsed();
    assert!(took < PROMPT, "a legitimate request took {took:?}");
}

/// Runs `attack` to its end while a legitimate client asks for `/api/me` every 100 ms, each
/// answered 200 promptly; returns what the attack returned and how many were served.
async fn while_serving<T>(app: &TestApp, token: &str, attack: impl Future<Output = T>) -> (T, u32) {
    let mut attack = std::pin::pin!(attack);
    let mut count = 0;
    loop {
        tokio::select! {
            outcome = &mut attack => return (outcome, count),
            () = async {
                served(app, token).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            } => count += 1,
        }
    }
}

/// A logged-in user whose token the controls present.
async fn start(db: TestDb) -> (TestApp, String) {
    let app = TestApp::start(db).await;
    app.register("alice@example.com").await;
    let access = app.login("alice@example.com").await.access;
    (app, access)
}

fn login_json() -> String {
    format!(r#"{{"username":"alice@example.com","password":"{PASSWORD}"}}"#)
}

async fn a_body_that_never_finishes_is_cut_and_others_are_served(db: TestDb) {
    let (app, token) = start(db).await;
    let addr = app.addr;
    let head = "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
    // Ten bytes of a thousand announced, then nothing.
    let ten = r#"{"username"#;
    assert_eq!(ten.len(), 10);
    let short = format!("{head}Content-Length: 1000\r\n\r\n{ten}");
    // One chunk of ten bytes, and never the last chunk.
    let chunked = format!("{head}Transfer-Encoding: chunked\r\n\r\na\r\n{ten}\r\n");
    // A complete request first, then the stalled body on the same keep-alive connection: the
    // deadline holds for every request, not only the first.
    let second = format!("GET /health HTTP/1.1\r\nHost: x\r\n\r\n{short}");
    // A request answered without its body being read (here a legitimate `/api/me`), the
    // chunked body never finished: left to actix-web, the connection would wait for the last
    // chunk for ever, to read the next request after it.
    let unread = format!(
        "GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Transfer-Encoding: chunked\r\n\r\na\r\n{ten}\r\n"
    );
    // Long enough for the deadline, the 408 and the close, on a loaded machine.
    let limit = CLIENT_BODY_TIMEOUT + LATE;

    const EACH: usize = 20;
    let (outcomes, controls) = while_serving(&app, &token, async {
        let mut attacks = JoinSet::new();
        for _ in 0..EACH {
            for (what, request) in [("Content-Length", &short), ("chunked", &chunked)] {
                let request = request.clone().into_bytes();
                attacks.spawn(async move { (what, attack(addr, request, limit).await) });
            }
        }
        let stalled = attacks.join_all();
        let second = attack(addr, second.into_bytes(), limit);
        let unread = attack(addr, unread.into_bytes(), limit);
        // The body trickled a byte every 200 ms: never idle, never finished.
        let trickled = async {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
            let (mut reader, mut writer) = stream.into_split();
            writer.write_all(short.as_bytes()).await.expect("the head is written");
            let sent = Instant::now();
            let trickling = tokio::spawn(async move {
                while writer.write_all(b" ").await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
            let outcome = read_until_closed(&mut reader, sent, limit).await;
            trickling.abort();
            outcome
        };
        tokio::join!(stalled, second, unread, trickled)
    })
    .await;
    let (stalled, second, unread, trickled) = outcomes;

    for (what, outcome) in &stalled {
        outcome.assert_refused(&[408], &format!("a stalled {what} body"));
        assert!(outcome.after >= CLIENT_BODY_TIMEOUT - EARLY, "cut early: {:?}", outcome.after);
    }
    second.assert_refused(&[200, 408], "a stalled body after a complete request");
    trickled.assert_refused(&[408], "a trickled body");
    assert!(trickled.after >= CLIENT_BODY_TIMEOUT - EARLY, "cut early: {:?}", trickled.after);
    // Answered, then closed within the 1 s disconnect timeout, not left waiting for the body.
    unread.assert_refused(&[200], "an unread chunked body");
    assert!(unread.after < PROMPT + Duration::from_secs(1), "closed after {:?}", unread.after);
    // The 408 says the connection is closed, as it is: the rest of the body is never read.
    assert!(trickled.text().to_ascii_lowercase().contains("connection: close"));
    // And it carries the JSON error body every other error has.
    for (what, outcome) in
        stalled.iter().map(|(what, o)| (*what, o)).chain([("trickled", &trickled)])
    {
        let text = outcome.text();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        let error: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{what}: the 408's body is not JSON ({e}): {text}"));
        assert_eq!(error["error"], "request_timeout", "{what}: {text}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {text}");
        assert!(text.to_ascii_lowercase().contains("content-type: application/json"), "{text}");
    }
    assert!(controls >= 10, "only {controls} legitimate requests while the bodies stalled");
    served(&app, &token).await;
    eprintln!(
        "{} stalled bodies (one after a complete request) and a trickled one answered 408 and \
         closed after the {:?} body deadline (the longest: {:?}); {controls} legitimate \
         requests served meanwhile",
        stalled.len() + 1,
        CLIENT_BODY_TIMEOUT,
        stalled
            .iter()
            .map(|(_, o)| o)
            .chain([&second, &trickled])
            .map(|o| o.after)
            .max()
            .unwrap_or_default()
    );
}

/// A `GET /api/me` with the token and `extra` header lines, Host and Authorization included
/// in the head's count of header fields.
fn me_with(token: &str, extra: &str) -> Vec<u8> {
    format!("GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{extra}\r\n")
        .into_bytes()
}

async fn a_hundred_thousand_tiny_headers_are_refused_and_others_are_served(db: TestDb) {
    let (app, token) = start(db).await;
    let addr = app.addr;

    // The edge: actix-http parses at most 96 header fields (Host and Authorization are two).
    let at_limit = attack(addr, me_with(&token, &"a: b\r\n".repeat(94)), PROMPT).await;
    assert_eq!(at_limit.statuses(), [200], "96 header fields: {}", at_limit.text());
    let past = attack(addr, me_with(&token, &"a: b\r\n".repeat(95)), PROMPT).await;
    past.assert_refused(&[431], "97 header fields");

    // Five clients at once, each sending 100,000 (600 KB of head).
    let flood = me_with(&token, &"a: b\r\n".repeat(100_000));
    let (outcomes, _) = while_serving(&app, &token, async {
        let mut attacks = JoinSet::new();
        for _ in 0..5 {
            attacks.spawn(attack(addr, flood.clone(), CLIENT_REQUEST_TIMEOUT + LATE));
        }
        attacks.join_all().await
    })
    .await;
    for outcome in &outcomes {
        outcome.assert_refused(&[431], "100,000 header fields");
        // At once: not left to the header timeout.
        assert!(outcome.after < PROMPT, "refused only after {:?}", outcome.after);
    }
    served(&app, &token).await;
    eprintln!(
        "100,000 header fields: {:?} in {:?}, the connection {:?}",
        outcomes[0].statuses(),
        outcomes[0].after,
        outcomes[0].end
    );
}

async fn a_one_mebibyte_header_line_is_refused_and_others_are_served(db: TestDb) {
    let (app, token) = start(db).await;
    let addr = app.addr;

    // The edge: a head of up to 128 KiB (actix-http's read buffer) is read whole; this one,
    // 120 KiB, is answered.
    let line = |len: usize| format!("X-Big: {}\r\n", "a".repeat(len));
    let under = attack(addr, me_with(&token, &line(120 * 1024)), PROMPT).await;
    assert_eq!(under.statuses(), [200], "a 120 KiB header line: {}", under.text());

    let mib = 1024 * 1024;
    let header = me_with(&token, &line(mib));
    let target = format!("GET /api/me?{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(mib));
    let (outcomes, _) = while_serving(&app, &token, async {
        let mut attacks = JoinSet::new();
        for i in 0..6 {
            let request = if i % 2 == 0 { header.clone() } else { target.clone().into_bytes() };
            attacks.spawn(attack(addr, request, CLIENT_REQUEST_TIMEOUT + LATE));
        }
        attacks.join_all().await
    })
    .await;
    for outcome in &outcomes {
        outcome.assert_refused(&[431], "a 1 MiB header line or request line");
        assert!(outcome.after < PROMPT, "refused only after {:?}", outcome.after);
    }
    served(&app, &token).await;
    eprintln!(
        "1 MiB header and request lines: {:?} in at most {:?}",
        outcomes[0].statuses(),
        outcomes.iter().map(|o| o.after).max().unwrap_or_default()
    );
}

async fn content_length_with_transfer_encoding_is_refused(db: TestDb) {
    let (app, token) = start(db).await;
    let addr = app.addr;
    let login = login_json();
    // A request smuggled in the body: whichever framing a server believed, the bytes after
    // `0\r\n\r\n` (five bytes, also the end of a chunked body) would be a request of their own,
    // answered 200.
    let smuggled =
        format!("GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n");
    let body = format!("0\r\n\r\n{smuggled}");
    let head = "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
    let post = |framing: &str| format!("{head}{framing}\r\n{body}").into_bytes();

    // The control: the same bytes framed by one Content-Length. The body `0\r\n\r\n` is not a
    // JSON object (422), and the request after it is a request of its own (200): the very
    // request the refusals below must never answer.
    let control = attack(addr, post("Content-Length: 5\r\n"), PROMPT).await;
    assert_eq!(control.statuses(), [422, 200], "one Content-Length: {}", control.text());
    // And a login with one Content-Length is served.
    let one = format!(
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{login}",
        login.len()
    );
    let one = attack(addr, one.into_bytes(), CLIENT_REQUEST_TIMEOUT + LATE).await;
    assert_eq!(one.statuses(), [200], "a login: {}", one.text());

    let framings = [
        (
            "Content-Length, then Transfer-Encoding",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        ),
        (
            "Transfer-Encoding, then Content-Length",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        ),
        (
            "Content-Length: 0 with Transfer-Encoding",
            "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
        ),
        (
            "Transfer-Encoding: identity with Content-Length",
            "Transfer-Encoding: identity\r\nContent-Length: 5\r\n",
        ),
        ("Transfer-Encoding: gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n"),
        ("Transfer-Encoding twice", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
        ("the same Content-Length twice", "Content-Length: 5\r\nContent-Length: 5\r\n"),
        ("conflicting Content-Lengths", "Content-Length: 5\r\nContent-Length: 50\r\n"),
        ("a list of Content-Lengths", "Content-Length: 5, 5\r\n"),
        ("a signed Content-Length", "Content-Length: +5\r\n"),
    ];
    let (outcomes, controls) = while_serving(&app, &token, async {
        let mut attacks = JoinSet::new();
        for (i, (_, framing)) in framings.iter().enumerate() {
            let request = post(framing);
            attacks.spawn(async move { (i, attack(addr, request, PROMPT).await) });
        }
        attacks.join_all().await
    })
    .await;
    for (i, outcome) in outcomes {
        let what = framings[i].0;
        // One 400 and the connection closed: never the smuggled request's 200.
        outcome.assert_refused(&[400], what);
        assert!(outcome.text().to_ascii_lowercase().contains("connection: close"), "{what}");
    }
    // The attacks end at once; served after them as before.
    let _ = controls;
    served(&app, &token).await;
}

/// A connection that reads answers one at a time.
struct Answers {
    stream: tokio::net::TcpStream,
    buffered: Vec<u8>,
}

/// One HTTP/1.1 answer with a `Content-Length` body.
struct Answer {
    status: u16,
    body: Value,
}

impl Answers {
    async fn next(&mut self) -> Answer {
        let deadline = tokio::time::Instant::now() + PROMPT * 5;
        loop {
            if let Some(answer) = self.parse() {
                return answer;
            }
            let mut buf = [0u8; 16 * 1024];
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .expect("an answer in time")
                .expect("the connection stays up");
            assert!(read > 0, "closed before the next answer");
            self.buffered.extend_from_slice(&buf[..read]);
        }
    }

    /// The first answer in the buffer, taken out, if it is all there.
    fn parse(&mut self) -> Option<Answer> {
        let head_end = self.buffered.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&self.buffered[..head_end]).to_ascii_lowercase();
        let status = head.get(9..12)?.parse().expect("a status");
        assert!(!head.contains("transfer-encoding"), "a sized answer: {head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().expect("a length"));
        if self.buffered.len() < head_end + length {
            return None;
        }
        let body = serde_json::from_slice(&self.buffered[head_end..head_end + length])
            .unwrap_or(Value::Null);
        self.buffered.drain(..head_end + length);
        Some(Answer { status, body })
    }
}

async fn pipelined_requests_are_answered_in_order(db: TestDb) {
    let (app, alice) = start(db).await;
    app.register("bob@example.com").await;
    let bob = app.login("bob@example.com").await.access;
    let me = |token: &str| {
        format!("GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n")
    };
    let login = login_json();

    // One write: requests with and without a body, answers of every kind.
    let mut batch = String::new();
    batch += &me(&alice);
    batch += "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    batch += &format!(
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{login}",
        login.len()
    );
    batch += &me("not-a-token");
    batch += "GET /no/such/path HTTP/1.1\r\nHost: x\r\n\r\n";
    batch += &me(&bob);
    // Then 40 alternating users, past actix-http's queue of 16 pipelined requests.
    for i in 0..40 {
        batch += &me(if i % 2 == 0 { &alice } else { &bob });
    }

    let stream = tokio::net::TcpStream::connect(app.addr).await.expect("connects");
    let mut answers = Answers { stream, buffered: Vec::new() };
    answers.stream.write_all(batch.as_bytes()).await.expect("one write");

    let first = answers.next().await;
    assert_eq!((first.status, &first.body["email"]), (200, &"alice@example.com".into()));
    let health = answers.next().await;
    assert_eq!((health.status, &health.body["status"]), (200, &"ok".into()));
    let pair = answers.next().await;
    assert_eq!(pair.status, 200, "{}", pair.body);
    let fresh = pair.body["access_token"].as_str().expect("an access token").to_owned();
    let refused = answers.next().await;
    assert_eq!((refused.status, &refused.body["error"]), (401, &"invalid_token".into()));
    let missing = answers.next().await;
    assert_eq!((missing.status, &missing.body["error"]), (404, &"not_found".into()));
    let second = answers.next().await;
    assert_eq!((second.status, &second.body["email"]), (200, &"bob@example.com".into()));
    for i in 0..40 {
        let answer = answers.next().await;
        let email = if i % 2 == 0 { "alice@example.com" } else { "bob@example.com" };
        assert_eq!((answer.status, &answer.body["email"]), (200, &email.into()), "answer {i}");
    }
    // Nothing more: one answer per request.
    let rest =
        tokio::time::timeout(Duration::from_millis(300), answers.stream.read(&mut [0u8; 64])).await;
    assert!(rest.is_err() && answers.buffered.is_empty(), "an answer too many");

    // The token the pipelined login returned works.
    served(&app, &fresh).await;
}

async fn idle_keep_alive_connections_are_closed_after_the_keep_alive_timeout(db: TestDb) {
    let (app, token) = start(db).await;
    let addr = app.addr;
    /// Moderate: the 20,000-connection case is the edge bench's (benches/src/bin/edge/).
    const IDLE: usize = 500;

    let (outcomes, controls) = while_serving(&app, &token, async {
        let mut idle = JoinSet::new();
        for _ in 0..IDLE {
            idle.spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.expect("connects");
                let mut answers = Answers { stream, buffered: Vec::new() };
                answers
                    .stream
                    .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    .await
                    .expect("writes");
                let answer = answers.next().await;
                assert_eq!(answer.status, 200);
                // Then nothing: the keep-alive timeout runs from the answer.
                let answered = Instant::now();
                let rest = read_until_closed(&mut answers.stream, answered, KEEP_ALIVE + LATE);
                let outcome = rest.await;
                assert!(answers.buffered.is_empty());
                outcome
            });
        }
        idle.join_all().await
    })
    .await;

    for outcome in &outcomes {
        // Closed without another word.
        assert!(outcome.bytes.is_empty(), "{}", outcome.text());
        assert_eq!(outcome.end, End::Closed, "after {:?}", outcome.after);
        assert!(outcome.after >= KEEP_ALIVE - EARLY, "closed early: {:?}", outcome.after);
    }
    assert!(controls >= 10, "only {controls} legitimate requests beside the idle connections");
    served(&app, &token).await;
    let latest = outcomes.iter().map(|o| o.after).max().unwrap_or_default();
    eprintln!(
        "{IDLE} idle keep-alive connections closed {latest:?} at the latest after their answer \
         ({KEEP_ALIVE:?} keep-alive); {controls} legitimate requests served meanwhile"
    );
}
