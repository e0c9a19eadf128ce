//! The server under measurement: `jwt-auth serve` started on its own SQLite database (under
//! an open-files limit if asked) and the report's user logged in; what it holds, read from
//! `/proc` and its log.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use jwt_auth_benches::{Process, fail, wait_until_ready};

const EMAIL: &str = "edge@example.com";
const PASSWORD: &str = "edge report password";

/// The soft open-files limit of a process (`self` or a pid).
pub fn open_files_limit(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

pub struct Server {
    pub process: Process,
    pub addr: SocketAddr,
    pub log: PathBuf,
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
pub fn start(bin_dir: &Path, port: u16, fds: Option<u64>) -> Server {
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
    wait_until_ready(
        || ready_status(server.addr) == Some(200),
        || format!("{} did not get ready in 30 s", bin.display()),
    );
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
pub async fn login_token(addr: SocketAddr) -> String {
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
pub fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// How many accepts the server refused for want of descriptors, by its log.
pub fn too_many_open_files(log: &Path) -> u64 {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    log.lines().filter(|l| l.contains("Too many open files")).count() as u64
}
