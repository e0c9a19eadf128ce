//! What an attacker saw: the statuses answered, how each connection ended and when, added up
//! over an attack's connections (and over helper processes, through JSON); and the reading
//! of the connections that tells it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use jwt_auth_benches::{quantile, thousands};

use crate::REQUEST_LIMIT;
use crate::server::statuses;

/// How an attacking connection ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server closed it.
    Closed,
    /// The server reset it (it closed with bytes of ours unread).
    Reset,
    /// Still open when the attack stopped.
    Held,
}

/// What the attacker saw.
#[derive(Default)]
pub struct Tally {
    /// Connections opened, and those the kernel refused or did not complete in 5 s.
    pub opened: u64,
    pub connect_failed: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub closed: u64,
    pub reset: u64,
    pub held: u64,
    /// Seconds from each connection's last request (or its opening) to its end by the server.
    pub ended_after: Vec<f64>,
    /// Seconds from opening to the first answer, for connections that got one.
    pub first_answer_after: Vec<f64>,
    /// Connections that ended, or were still open, without any answer.
    pub unanswered: u64,
}

pub type Shared = Arc<Mutex<Tally>>;

pub fn record(tally: &Shared, bytes: &[u8], end: End, after: Duration) {
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
pub async fn connect(addr: SocketAddr, tally: &Shared) -> Option<TcpStream> {
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
pub async fn read_to_end(
    reader: &mut (impl AsyncReadExt + Unpin),
    until: Instant,
) -> (Vec<u8>, End) {
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
pub async fn read_answer(stream: &mut TcpStream, until: Instant) -> Option<Vec<u8>> {
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

impl Tally {
    /// The tally as one line of JSON, for a helper process to hand it back.
    pub fn to_json(&self) -> Value {
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
    pub fn add_json(&mut self, other: &Value) {
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

/// What the attacker saw, in words: the statuses, then how the connections ended.
pub fn seen(tally: &Tally) -> String {
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
